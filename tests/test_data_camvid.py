"""CamVid: layout, root lookup, metadata; and the real copy when it is there."""

import os

import numpy as np
import pytest
import torch
from torchvision import tv_tensors

from refinenet.data import DataError, build_dataset, dataset_class
from refinenet.data import paths as data_paths
from refinenet.data.camvid import CAMVID_SPLITS, CamVid, find_camvid_root, pack_camvid
from refinenet.data.download import load_manifest, verify_tree
from refinenet.data.pack import MAX_PACK_BYTES, Pack, choose_codec, psnr, write_pack

from fakes import fake_camvid


@pytest.fixture(autouse=True)
def no_user_packs(tmp_path, monkeypatch):
    """Packs in the developer's data/cache must not leak into these tests."""
    monkeypatch.setattr("refinenet.data.camvid.cache_dirs", lambda root=None: [tmp_path / "cache"])


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """A working directory with no data around it: no env, no repository fallback."""
    monkeypatch.delenv("REFINENET_DATA", raising=False)
    monkeypatch.delenv("REFINENET_CACHE", raising=False)
    monkeypatch.setattr(data_paths, "project_root", lambda: None)
    work = tmp_path / "work" / "main"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    return work


@pytest.fixture
def tiny(tmp_path):
    return fake_camvid(tmp_path / "camvid", counts={"train": 3, "val": 2, "test": 1})


def test_splits_and_samples(tiny):
    for split, n in {"train": 3, "val": 2, "test": 1}.items():
        ds = CamVid(tiny, split, packed=False)
        assert len(ds) == n
    image, mask = CamVid(tiny, "train")[1]
    assert isinstance(image, tv_tensors.Image) and image.dtype == torch.uint8 and image.shape == (3, 24, 32)
    assert isinstance(mask, tv_tensors.Mask) and mask.dtype == torch.int64 and mask.shape == (24, 32)
    assert set(mask.unique().tolist()) <= set(range(12)) and 11 in mask.unique()
    # Pixel colours follow the palette of the labels (the fixture is colour coded).
    palette = torch.tensor(CamVid.palette)
    labelled = mask != 11
    assert (image.permute(1, 2, 0)[labelled].int() - palette[mask[labelled]]).abs().max() <= 6


def test_a_split_selected_by_sequence_holds_those_frames_of_the_split(tmp_path):
    """"train:0001TP" and "train:-0001TP" part the split: together its frames, each sample
    the split's own, from the PNGs and from a pack alike; the fingerprint tells them apart."""
    from refinenet.data.fingerprint import dataset_fingerprint

    root = fake_camvid(tmp_path / "camvid", counts={"train": 5, "val": 2}, sequences=("0001TP", "0006R0"))
    whole = CamVid(root, "train", packed=False)
    pack_camvid((24, 32), ("train",), root=root, out=tmp_path / "cache")
    for packed in (False, True):
        only = CamVid(root, "train:0001TP", size=(24, 32), packed=packed)
        rest = CamVid(root, "train:-0001TP", size=(24, 32), packed=packed)
        assert (only.pack is not None) == packed
        assert only.names == [n for n in whole.names if n.startswith("0001TP_")] and len(only) == 3
        assert rest.names == [n for n in whole.names if n.startswith("0006R0_")] and len(rest) == 2
        for ds in (only, rest):
            for i, name in enumerate(ds.names):
                j = whole.names.index(name)
                assert torch.equal(ds[i][1], whole[j][1]) and torch.equal(ds[i][0], whole[j][0])
    assert build_dataset("camvid", "train:-0001TP", root=root).names == rest.names
    fingerprints = {dataset_fingerprint(CamVid(root, s, packed=False), disk_cache=False) for s in ("train", "train:0001TP", "train:-0001TP")}
    assert len(fingerprints) == 3


@pytest.mark.parametrize("split, error, match", [
    ("train:0002XX", ValueError, "sequences must be distinct names of 0001TP, 0006R0, 0016E5, Seq05VD"),
    ("train:", ValueError, "names no sequence after ':'"),
    ("training", ValueError, "unknown CamVid split 'training'; allowed: train, val, test"),
    ("val:Seq05VD", DataError, "split 'val:Seq05VD' selects no frame of the 2 of val; its sequences: 0001TP"),
    ("train:-0001TP,0006R0", DataError, "selects no frame of the 5 of train"),
])
def test_a_bad_sequence_selection_says_what_is_allowed(tmp_path, split, error, match):
    root = fake_camvid(tmp_path / "camvid", counts={"train": 5, "val": 2}, sequences=("0001TP", "0006R0"))
    with pytest.raises(error, match=match):
        CamVid(root, split, packed=False)


def test_list_paths_are_reduced_to_file_names(tiny):
    line = (tiny / "train.txt").read_text().splitlines()[0]
    assert line.startswith("/SegNet/CamVid/train/")  # absolute paths from another machine
    ds = CamVid(tiny, "train")
    assert ds.files[0][0] == tiny / "train" / line.split()[0].rsplit("/", 1)[1]


def test_metadata():
    cls = dataset_class("camvid")
    assert cls.num_classes == 11 and cls.ignore_index == 11
    assert cls.class_names[:3] == ["Sky", "Building", "Pole"] and cls.class_names[-1] == "Bicyclist"
    assert len(cls.palette) == 11 and all(len(c) == 3 for c in cls.palette)
    assert len(cls.mean) == 3 and len(cls.std) == 3


def test_resize_at_load(tiny):
    image, mask = CamVid(tiny, "val", size=(12, 16))[0]
    assert image.shape == (3, 12, 16) and mask.shape == (12, 16)
    full = CamVid(tiny, "val")[0][1]
    assert torch.equal(mask, full[1::2, 1::2])  # nearest-exact: the centre pixel of each 2x2


def test_build_dataset_camvid(tiny):
    ds = build_dataset("camvid", "test", root=tiny)
    assert isinstance(ds, CamVid) and len(ds) == 1
    with pytest.raises(ValueError, match="train, val, test"):
        build_dataset("camvid", "trainval", root=tiny)


def test_root_lookup_order(isolated, tmp_path, monkeypatch):
    env_copy = fake_camvid(tmp_path / "env" / "camvid", counts={"train": 1})
    cwd_copy = fake_camvid(isolated / "data" / "camvid", counts={"train": 2})
    shared = fake_camvid(isolated.parent / "shared" / "data" / "camvid", counts={"train": 3})
    assert find_camvid_root().resolve() == cwd_copy.resolve()
    monkeypatch.setenv("REFINENET_DATA", str(tmp_path / "env"))
    assert find_camvid_root() == env_copy
    assert len(CamVid(split="train")) == 1
    monkeypatch.delenv("REFINENET_DATA")
    import shutil

    shutil.rmtree(cwd_copy)
    assert find_camvid_root().resolve() == shared.resolve()
    assert find_camvid_root(tmp_path / "env" / "camvid") == env_copy  # explicit wins


def test_not_found_lists_places_and_download_command(isolated, monkeypatch):
    monkeypatch.setenv("REFINENET_DATA", "/nonexistent/data")
    with pytest.raises(FileNotFoundError) as err:
        CamVid(split="train")
    msg = str(err.value)
    assert "/nonexistent/data/camvid" in msg
    assert os.path.join("data", "camvid") in msg and os.path.join("shared", "data", "camvid") in msg
    assert "refinenet data download camvid" in msg


# --- The real CamVid (CI has ../shared; REFINENET_REQUIRE_CAMVID=1 turns a skip into a failure)


@pytest.fixture(scope="module")
def camvid_root():
    try:
        return find_camvid_root()
    except (FileNotFoundError, DataError) as err:
        if os.environ.get("REFINENET_REQUIRE_CAMVID") == "1":
            pytest.fail(f"REFINENET_REQUIRE_CAMVID=1 but CamVid is missing: {err}")
        pytest.skip(f"CamVid not available: {err}")


def test_real_camvid_layout_and_manifest(camvid_root):
    for split, n in CAMVID_SPLITS.items():
        assert len(CamVid(camvid_root, split, packed=False)) == n
    # the sequences of the module docstring: val shares 0016E5 with train, test 0001TP
    counts = {s: len(CamVid(camvid_root, s, packed=False)) for s in
              ("train:0001TP", "train:0006R0", "train:0016E5", "train:-0001TP", "val:0016E5", "test:0001TP", "test:Seq05VD")}
    assert counts == {"train:0001TP": 62, "train:0006R0": 101, "train:0016E5": 204, "train:-0001TP": 305,
                      "val:0016E5": 101, "test:0001TP": 62, "test:Seq05VD": 171}
    image, mask = CamVid(camvid_root, "train", packed=False)[0]
    assert image.shape == (3, 360, 480) and mask.shape == (360, 480)
    assert set(mask.unique().tolist()) <= set(range(12))
    manifest = load_manifest()
    assert len(manifest) == 3 + 2 * sum(CAMVID_SPLITS.values())
    assert manifest["train.txt"].startswith("ef3522fe")
    verify_tree(camvid_root)  # the shipped manifest matches the known-good copy, file by file


def test_real_camvid_full_resolution_pack_fits_budget(camvid_root, tmp_path):
    """A JPEG pack of 12 training images, scaled to the 367 of train, stays under 60 MiB;
    labels are exact and images keep > 35 dB PSNR. Raw fits at 180x240."""
    assert choose_codec(max(CAMVID_SPLITS.values()), (360, 480)) == "jpeg"
    assert choose_codec(max(CAMVID_SPLITS.values()), (180, 240)) == "raw"
    ds = CamVid(camvid_root, "train", packed=False)
    ds._frames = ds._frames[::31]  # 12 images spread over the split
    path = write_pack(ds, tmp_path / "p.pack", dataset_name="camvid", split="train",
                      codec="jpeg", names=ds.names, progress=False)
    assert path.stat().st_size / len(ds) * 367 < MAX_PACK_BYTES
    pack = Pack(path)
    for i in (0, 5, 11):
        image, mask = ds.load(i)
        assert torch.equal(pack.label(i).long(), mask)
        assert psnr(pack.image(i), image) > 35
