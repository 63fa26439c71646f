"""Packed caches: exact (raw) or near-exact (JPEG) copies that the datasets pick up."""

import os
import stat
import time
import warnings

import numpy as np
import pytest
import torch
from PIL import Image as PILImage

from refinenet import cli
from refinenet.data import DataError, SyntheticScenes
from refinenet.data import paths as data_paths
from refinenet.data.camvid import CamVid, pack_camvid
from refinenet.data.fingerprint import camvid_source_fingerprint
from refinenet.data.pack import MAX_PACK_BYTES, Pack, choose_codec, pack_filename, psnr, write_pack

from fakes import fake_camvid


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """The only directory CamVid searches for packs in these tests."""
    d = tmp_path / "cache"
    monkeypatch.setattr("refinenet.data.camvid.cache_dirs", lambda root=None: [d])
    return d


@pytest.fixture
def tiny(tmp_path):
    return fake_camvid(tmp_path / "camvid", counts={"train": 4, "val": 2}, size=(24, 32))


def _pack(ds, path, **kw):
    """``ds`` (CamVid from its PNGs) written to the pack ``path``, with its source fingerprint."""
    source = camvid_source_fingerprint(ds.files, ds.size or (360, 480))
    return write_pack(ds, path, dataset_name="camvid", split=ds.split, names=ds.names,
                      source_fingerprint=source, progress=False, **kw)


def test_raw_pack_is_exact_and_used(tiny, cache):
    plain = CamVid(tiny, "train", size=(12, 16), packed=False)
    path = _pack(plain, cache / pack_filename("camvid", "train", (12, 16)), codec="raw")
    assert path.name == "camvid-train-12x16.pack"
    assert sorted(p.name for p in cache.iterdir()) == [path.name]  # no temporary files left
    packed = CamVid(tiny, "train", size=(12, 16))
    assert packed.pack is not None and packed.pack.codec == "raw"
    assert len(packed) == len(plain) and packed.names == plain.names
    for i in range(len(plain)):
        (a, m), (b, n) = plain[i], packed[i]
        assert torch.equal(a, b) and torch.equal(m, n)
        assert type(b).__name__ == "Image" and n.dtype == torch.int64
    # Not used for another size, nor when switched off.
    assert CamVid(tiny, "train").pack is None
    assert CamVid(tiny, "train", size=(12, 16), packed=False).pack is None


def test_packed_dataset_pickles_small(tiny, cache):
    """DataLoader workers (spawn/forkserver) receive the pack's path, not its contents."""
    import pickle

    _pack(CamVid(tiny, "train", size=(24, 32), packed=False), cache / pack_filename("camvid", "train", (24, 32)))
    ds = CamVid(tiny, "train", size=(24, 32))
    blob = pickle.dumps(ds)
    assert len(blob) < ds.pack.nbytes / 2
    copy = pickle.loads(blob)
    assert copy.pack is not None and torch.equal(copy[2][0], ds[2][0])


def test_pack_needs_no_root(tiny, cache, tmp_path, monkeypatch):
    _pack(CamVid(tiny, "val", size=(24, 32), packed=False), cache / pack_filename("camvid", "val", (24, 32)))
    monkeypatch.setattr(data_paths, "project_root", lambda: None)
    monkeypatch.delenv("REFINENET_DATA", raising=False)
    monkeypatch.chdir(tmp_path / "cache")  # no data/camvid, no ../shared from here
    ds = CamVid(split="val", size=(24, 32))
    assert ds.root is None and len(ds) == 2 and ds[1][0].shape == (3, 24, 32)
    with pytest.raises(FileNotFoundError, match="searched"):
        CamVid(split="train", size=(24, 32))  # no pack and no data


def test_jpeg_pack_keeps_labels_exact(tmp_path):
    ds = SyntheticScenes(6, (96, 128), seed=0)
    path = write_pack(ds, tmp_path / "s.pack", dataset_name="synthetic",
                      split="train", codec="jpeg", progress=False)
    pack = Pack(path)
    assert pack.codec == "jpeg" and pack.quality == 90 and len(pack) == 6
    values = []
    for i in range(6):
        image, mask = ds.load(i)
        assert torch.equal(pack.label(i).long(), mask)
        values.append(psnr(pack.image(i), image))
    # Lossy, but close: these scenes carry per-pixel noise, which JPEG keeps worst
    # (CamVid measures ~39 dB at quality 90, see test_data_camvid.py).
    assert min(values) > 30
    assert torch.equal(pack.images(), torch.stack([pack.image(i) for i in range(6)]))
    assert torch.equal(pack.labels().long(), torch.stack([ds.load(i)[1] for i in range(6)]))


def test_stale_pack_is_not_used(tiny, cache):
    _pack(CamVid(tiny, "val", size=(24, 32), packed=False), cache / pack_filename("camvid", "val", (24, 32)))
    (tiny / "val.txt").write_text("\n".join((tiny / "val.txt").read_text().splitlines()[:1]) + "\n")
    with pytest.warns(UserWarning, match="does not match"):
        ds = CamVid(tiny, "val", size=(24, 32))
    assert ds.pack is None and len(ds) == 1
    with pytest.raises(DataError, match="does not match"):
        CamVid(tiny, "val", size=(24, 32), packed=True)


def test_packed_true_without_pack_says_how_to_make_it(tiny, cache):
    with pytest.raises(FileNotFoundError, match="refinenet data pack camvid --size 24 32"):
        CamVid(tiny, "train", size=(24, 32), packed=True)
    with pytest.raises(FileNotFoundError, match="refinenet data pack camvid --size 360 480"):
        CamVid(tiny, "train", packed=True)  # default: the native resolution


def test_corrupt_pack_names_the_file(tiny, cache):
    plain = CamVid(tiny, "train", size=(24, 32), packed=False)
    path = _pack(plain, cache / pack_filename("camvid", "train", (24, 32)))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match=f"{path}.*corrupt or truncated"):
        CamVid(tiny, "train", size=(24, 32))
    path.write_bytes(b"not a pack at all")
    with pytest.raises(DataError, match=str(path)):
        Pack(path)


def test_codec_choice():
    assert choose_codec(367, (180, 240)) == "raw"
    assert choose_codec(367, (360, 480)) == "jpeg"
    assert choose_codec(367, (240, 320)) == "jpeg"
    assert choose_codec(10, (360, 480)) == "raw"
    assert MAX_PACK_BYTES == 60 * 2**20
    with pytest.raises(ValueError, match="codec"):
        write_pack(SyntheticScenes(1, (16, 16)), "x.pack", dataset_name="s", split="train", codec="png")


def test_cli_pack(tiny, cache, capsys):
    out = cache
    rc = cli.main(["data", "pack", "camvid", "--root", str(tiny), "--size", "12", "16",
                   "--split", "train", "val", "--out", str(out), "--no-progress"])
    assert rc == 0
    assert sorted(p.name for p in out.iterdir()) == ["camvid-train-12x16.pack", "camvid-val-12x16.pack"]
    printed = capsys.readouterr().out
    assert "raw" in printed and "MiB" in printed
    assert CamVid(tiny, "val", size=(12, 16)).pack is not None
    rc = cli.main(["data", "pack", "camvid", "--root", str(tiny / "nothing"), "--out", str(out)])
    assert rc == 1 and "does not exist" in capsys.readouterr().err


def test_default_cache_locations(tmp_path, monkeypatch):
    monkeypatch.setenv("REFINENET_CACHE", str(tmp_path / "c"))
    assert data_paths.default_cache_dir() == tmp_path / "c"
    assert data_paths.cache_dirs(tmp_path / "root")[0] == tmp_path / "c"
    assert data_paths.cache_dirs(tmp_path / "root")[-1] == tmp_path / "root" / "packed"
    monkeypatch.delenv("REFINENET_CACHE")
    assert data_paths.default_cache_dir() == data_paths.Path("data") / "cache"


# --- A pack remembers its source --------------------------------------------------------------


@pytest.fixture
def digests(tmp_path, monkeypatch):
    """A private on-disk digest cache and an empty memory cache (a fresh process)."""
    from refinenet.data import fingerprint as fp

    monkeypatch.setenv("REFINENET_CACHE", str(tmp_path / "digests"))
    monkeypatch.setattr(fp, "_memory", {"file": {}, "pack": {}})
    monkeypatch.setattr(fp, "_disk", fp._DiskCache())
    return fp


def _age(root, seconds=3600):
    """Date every file under ``root`` back, past the racy window, so digests get cached."""
    past = time.time() - seconds
    for p in root.rglob("*"):
        if p.is_file():
            os.utime(p, (past, past))


def test_pack_of_changed_labels_is_not_used(tiny, cache, digests):
    [path] = pack_camvid((24, 32), ["val"], root=tiny, out=cache, progress=False)
    from refinenet.data.fingerprint import dataset_fingerprint

    # What the pack records is the fingerprint of the PNGs read at its size.
    assert Pack(path).source_fingerprint == dataset_fingerprint(CamVid(tiny, "val", size=(24, 32), packed=False))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert CamVid(tiny, "val", size=(24, 32)).pack is not None  # the source is unchanged
    label = tiny / "valannot" / CamVid(tiny, "val", packed=False).names[0]
    PILImage.fromarray(np.zeros((24, 32), np.uint8), mode="L").save(label)  # same names, new labels
    rebuild = f"refinenet data pack camvid --size 24 32 --split val --root {tiny} --out {cache}"
    with pytest.warns(UserWarning, match=f"{path} was made from other contents.*`{rebuild}`"):
        ds = CamVid(tiny, "val", size=(24, 32))
    assert ds.pack is None and int(ds[0][1].max()) == 0  # the labels as they are now
    with pytest.raises(DataError, match=f"images or labels changed since.*`{rebuild}`"):
        CamVid(tiny, "val", size=(24, 32), packed=True)
    assert cli.main(["data", "pack", "camvid", "--root", str(tiny), "--size", "24", "32",
                     "--split", "val", "--out", str(cache), "--no-progress"]) == 0
    assert CamVid(tiny, "val", size=(24, 32), packed=True).pack is not None


def test_checking_a_pack_reads_the_cached_digests(tiny, cache, digests, monkeypatch):
    _age(tiny)
    pack_camvid((24, 32), ["train"], root=tiny, out=cache, progress=False)
    monkeypatch.setattr(digests, "_memory", {"file": {}, "pack": {}})  # a new process
    monkeypatch.setattr(digests, "_disk", digests._DiskCache())
    hashed = []
    monkeypatch.setattr(digests, "_sha256_of", lambda p: hashed.append(p))
    assert CamVid(tiny, "train", size=(24, 32)).pack is not None
    assert hashed == []  # every digest came from the disk cache: opening costs a stat per file


def test_pack_without_source_fingerprint_warns_and_is_used(tiny, cache, digests):
    ds = CamVid(tiny, "val", size=(24, 32), packed=False)
    write_pack(ds, cache / pack_filename("camvid", "val", (24, 32)), dataset_name="camvid",
               split="val", names=ds.names, progress=False)  # as packs were written before
    with pytest.warns(UserWarning, match="records no fingerprint of its source.*refinenet data pack camvid"):
        assert CamVid(tiny, "val", size=(24, 32)).pack is not None


def test_written_files_get_the_umask_permissions(tiny, cache, digests, tmp_path):
    old = os.umask(0o027)
    try:
        _age(tiny)
        [path] = pack_camvid((24, 32), ["val"], root=tiny, out=cache, progress=False)
        digest_cache = tmp_path / "digests" / digests.DISK_CACHE_NAME
        assert stat.S_IMODE(path.stat().st_mode) == 0o640  # not mkstemp's 0600, nor a fixed 0644
        assert stat.S_IMODE(digest_cache.stat().st_mode) == 0o640
        os.umask(0o002)
        _pack(CamVid(tiny, "train", size=(24, 32), packed=False), path)
        assert stat.S_IMODE(path.stat().st_mode) == 0o664
    finally:
        os.umask(old)
