"""Dataset fingerprints: equal for equal data wherever it lives, different for any change."""

import hashlib
import os
import shutil
import time

import numpy as np
import pytest
import torch
from PIL import Image as PILImage

from refinenet.data import SyntheticScenes, build_dataset
from refinenet.data import fingerprint as fp
from refinenet.data.camvid import CamVid
from refinenet.data.fingerprint import dataset_description, dataset_fingerprint, file_sha256
from refinenet.data.pack import Pack, content_sha256, pack_filename, write_pack
from fakes import fake_camvid, fake_sbd, fake_voc

SPLITS = ("train", "val", "test")


# No packs of the developer's, private digest caches (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("isolated_data_caches")


def _age(root, seconds=3600):
    """Date every file under ``root`` back, past the racy window, so digests get cached."""
    past = time.time() - seconds
    for p in root.rglob("*"):
        if p.is_file():
            os.utime(p, (past, past))


def _fingerprints(root, **kw):
    return {s: dataset_fingerprint(CamVid(root, s, packed=False, **kw)) for s in SPLITS}


@pytest.fixture
def tiny(tmp_path):
    return fake_camvid(tmp_path / "a", counts={"train": 3, "val": 2, "test": 2})


def test_same_files_in_two_roots_give_the_same_fingerprint(tiny, tmp_path):
    copy = shutil.copytree(tiny, tmp_path / "elsewhere" / "camvid")
    first = _fingerprints(tiny, size=(12, 16))
    assert first == _fingerprints(copy, size=(12, 16))
    assert len(set(first.values())) == 3  # the splits list other files
    assert all(len(v) == 64 and int(v, 16) >= 0 for v in first.values())
    # Other data in another root: every split differs.
    other = _fingerprints(fake_camvid(tmp_path / "b", counts={"train": 3, "val": 2, "test": 2},
                                      seed=1), size=(12, 16))
    assert all(first[s] != other[s] for s in SPLITS)


def test_one_label_byte_changes_the_fingerprint(tiny):
    before = dataset_fingerprint(CamVid(tiny, "val", packed=False))
    label = tiny / "valannot" / "0001TP_val_0001.png"
    arr = np.array(PILImage.open(label))
    arr[5, 7] = (arr[5, 7] + 1) % 11
    PILImage.fromarray(arr, mode="L").save(label)
    assert dataset_fingerprint(CamVid(tiny, "val", packed=False)) != before


def test_a_raw_byte_of_an_aged_file_changes_the_fingerprint(tiny):
    """Same size, rewritten later: the cached digest is not reused (the mtime moved)."""
    _age(tiny)
    before = dataset_fingerprint(CamVid(tiny, "train", packed=False))
    image = tiny / "train" / "0001TP_train_0002.png"
    data = bytearray(image.read_bytes())
    data[-20] ^= 0x01
    image.write_bytes(bytes(data))
    assert dataset_fingerprint(CamVid(tiny, "train", packed=False)) != before


def test_list_order_and_load_size_change_the_fingerprint(tiny):
    base = dataset_fingerprint(CamVid(tiny, "train", packed=False))
    assert dataset_fingerprint(CamVid(tiny, "train", size=(12, 16), packed=False)) != base
    assert dataset_fingerprint(CamVid(tiny, "train", size=(12, 15), packed=False)) != \
        dataset_fingerprint(CamVid(tiny, "train", size=(12, 16), packed=False))
    native = CamVid(tiny, "train", size=(12, 16), label_size="native", packed=False)
    assert dataset_fingerprint(native) != \
        dataset_fingerprint(CamVid(tiny, "train", size=(12, 16), packed=False))
    listing = tiny / "train.txt"
    lines = listing.read_text().splitlines()
    listing.write_text("\n".join(lines[::-1]) + "\n")
    assert dataset_fingerprint(CamVid(tiny, "train", packed=False)) != base
    listing.write_text("\n".join(lines[:2]) + "\n")
    assert dataset_fingerprint(CamVid(tiny, "train", packed=False)) != base


def test_files_are_hashed_once_per_process_and_once_per_machine(tiny, monkeypatch, tmp_path):
    _age(tiny)
    calls = []
    real = fp._sha256_of
    monkeypatch.setattr(fp, "_sha256_of", lambda p: calls.append(p) or real(p))
    first = dataset_fingerprint(CamVid(tiny, "train", packed=False))
    assert len(calls) == 6  # 3 images + 3 labels
    assert dataset_fingerprint(CamVid(tiny, "train", packed=False)) == first
    assert len(calls) == 6
    # A new process: nothing in memory, the digests come from the on-disk cache.
    assert (tmp_path / "cache" / fp.DISK_CACHE_NAME).is_file()
    monkeypatch.setattr(fp, "_memory", {"file": {}, "pack": {}})
    monkeypatch.setattr(fp, "_disk", fp._DiskCache())
    assert dataset_fingerprint(CamVid(tiny, "train", packed=False)) == first
    assert len(calls) == 6
    # Without the disk cache, everything is hashed again.
    monkeypatch.setattr(fp, "_memory", {"file": {}, "pack": {}})
    assert dataset_fingerprint(CamVid(tiny, "train", packed=False), disk_cache=False) == first
    assert len(calls) == 12


def test_recently_written_files_are_never_cached(tiny, monkeypatch):
    calls = []
    real = fp._sha256_of
    monkeypatch.setattr(fp, "_sha256_of", lambda p: calls.append(p) or real(p))
    dataset_fingerprint(CamVid(tiny, "val", packed=False))
    dataset_fingerprint(CamVid(tiny, "val", packed=False))
    assert len(calls) == 8  # fake_camvid wrote them just now: hashed each time


def test_file_sha256(tmp_path):
    path = tmp_path / "weights.pth"
    path.write_bytes(b"\x00weights" * 1000)
    assert file_sha256(path) == hashlib.sha256(path.read_bytes()).hexdigest()
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        file_sha256(tmp_path / "nope.pth")


# --- packs --------------------------------------------------------------------------------------


def _pack(ds, path, **kw):
    return write_pack(ds, path, dataset_name="camvid", split=ds.split, names=ds.names,
                      progress=False, **kw)


@pytest.mark.parametrize("codec", ["raw", "jpeg"])
def test_pack_content_hash_is_stored_and_stable(tiny, tmp_path, monkeypatch, codec):
    plain = CamVid(tiny, "train", size=(12, 16), packed=False)
    path = _pack(plain, tmp_path / "packs" / pack_filename("camvid", "train", (12, 16)),
                 codec=codec)
    pack = Pack(path)
    stored = pack._content_sha256
    assert stored is not None and pack.content_sha256 == stored
    assert pack.compute_content_sha256() == stored  # the payload still hashes to it
    assert Pack(path).content_sha256 == stored  # re-opened
    # The hash covers names, codec, size and payload, exactly as documented.
    images = [pack._images[i] if codec == "raw"
              else pack._images[pack._image_offsets[i]:pack._image_offsets[i + 1]]
              for i in range(len(pack))]
    labels = [pack.label(i).numpy() for i in range(len(pack))]
    assert content_sha256(pack.names, codec, (12, 16), zip(images, labels)) == stored
    assert content_sha256(pack.names[::-1], codec, (12, 16), zip(images, labels)) != stored

    used = CamVid(tiny, "train", size=(12, 16))
    assert used.pack is not None
    fingerprint = dataset_fingerprint(used)
    assert dataset_description(used)["images"] == {"pack": stored}
    assert dataset_fingerprint(CamVid(tiny, "train", size=(12, 16))) == fingerprint
    # A copy of the pack, without any root, is the same data.
    monkeypatch.setattr("refinenet.data.camvid.data_roots", lambda name: [])
    copy_dir = tmp_path / "copied"
    copy_dir.mkdir()
    shutil.copy(path, copy_dir / path.name)
    alone = CamVid(None, "train", size=(12, 16), packed=True, cache_dir=copy_dir)
    assert alone.root is None and dataset_fingerprint(alone) == fingerprint
    # A pack and its root are different sources: different fingerprints (documented).
    assert fingerprint != dataset_fingerprint(plain)


def test_old_pack_without_content_hash_gets_it_computed(tiny, tmp_path):
    plain = CamVid(tiny, "val", size=(12, 16), packed=False)
    path = _pack(plain, tmp_path / "new.pack", codec="raw")
    stored = Pack(path).content_sha256
    record = torch.load(path, weights_only=True)
    del record["content_sha256"]
    old = tmp_path / "old.pack"
    torch.save(record, old)
    pack = Pack(old)
    assert pack._content_sha256 is None
    assert pack.content_sha256 == stored


def test_packs_of_other_content_differ(tiny, tmp_path):
    a = _pack(CamVid(tiny, "train", size=(12, 16), packed=False), tmp_path / "a.pack", codec="raw")
    b = _pack(CamVid(tiny, "train", size=(12, 15), packed=False), tmp_path / "b.pack", codec="raw")
    c = _pack(CamVid(tiny, "train", size=(12, 16), packed=False), tmp_path / "c.pack", codec="jpeg")
    assert len({Pack(p).content_sha256 for p in (a, b, c)}) == 3


# --- the generator and VOC ---------------------------------------------------------------------

# The digest of SyntheticScenes(n=3, size=(16, 20), seed=0, split="val"): its tensors and its
# fingerprint. If this test fails on the tensors, the generator's output changed: bump
# refinenet.data.synthetic.GENERATOR_VERSION and update both constants.
PINNED_TENSORS = "1df7a2d9660eeaa2aca20bffb332f84e2b3151d731a3bd370c18c92973e49497"
PINNED_FINGERPRINT = "9df0cffd61dadddad4da9efb94c1ea29f4c4e5e2aa575fd6979d6036b24ff198"


def _tensor_digest(ds) -> str:
    h = hashlib.sha256()
    for i in range(len(ds)):
        image, mask = ds[i]
        h.update(image.numpy().tobytes())
        h.update(mask.numpy().astype(np.int64).tobytes())
    return h.hexdigest()


def test_generator_fingerprint_is_pinned_to_its_output():
    ds = SyntheticScenes(n=3, size=(16, 20), seed=0, split="val")
    assert (_tensor_digest(ds), dataset_fingerprint(ds)) == (PINNED_TENSORS, PINNED_FINGERPRINT), (
        "the synthetic generator's output or its version changed: if the output changed, bump "
        "GENERATOR_VERSION in refinenet/data/synthetic.py and update both pinned digests"
    )


def test_generator_options_change_the_fingerprint():
    base = dict(n=4, size=(16, 20), seed=0, split="train")
    ref = dataset_fingerprint(SyntheticScenes(**base))
    assert dataset_fingerprint(SyntheticScenes(**base, cache=False)) == ref
    for change in ({"n": 5}, {"size": (16, 24)}, {"seed": 1}, {"split": "val"}):
        assert dataset_fingerprint(SyntheticScenes(**{**base, **change})) != ref, change
    # build_dataset's defaults are part of the fingerprint too.
    assert dataset_fingerprint(build_dataset("synthetic", "train", n=4, size=(16, 20))) == ref


def test_voc_and_sbd_fingerprints(tmp_path):
    a, b = fake_voc(tmp_path / "a"), fake_voc(tmp_path / "b")
    assert dataset_fingerprint(build_dataset("voc", "train", root=a)) == \
        dataset_fingerprint(build_dataset("voc", "train", root=b))
    assert dataset_fingerprint(build_dataset("voc", "train", root=a)) != \
        dataset_fingerprint(build_dataset("voc", "val", root=a))
    sbd = fake_sbd(tmp_path / "sbd")
    ds = build_dataset("sbd", "train_aug", root=sbd, voc_root=a)
    desc = dataset_description(ds)
    assert desc["dataset"] == "sbd"
    assert [n for n, _, _ in desc["labels"]["files"]] == \
        [f"{p.parent.name}/{p.name}" for p in ds.labels]
    label = next(p for p in ds.labels if p.suffix == ".mat")
    before = dataset_fingerprint(ds)
    label.write_bytes(label.read_bytes() + b"\x00")
    assert dataset_fingerprint(build_dataset("sbd", "train_aug", root=sbd, voc_root=a)) != before


def test_unknown_datasets_have_no_fingerprint():
    with pytest.raises(TypeError, match="Subset"):
        dataset_fingerprint(torch.utils.data.Subset(SyntheticScenes(n=2), [0]))
