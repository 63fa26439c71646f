"""Bad input fails with an error that names the file and the problem."""

import re

import numpy as np
import pytest
from PIL import Image

from refinenet.data import DataError
from refinenet.data.camvid import CamVid
from refinenet.data.voc import SBDTrainAug, VOCSegmentation

from fakes import fake_camvid, fake_sbd, fake_voc


@pytest.fixture(autouse=True)
def no_user_packs(tmp_path, monkeypatch):
    monkeypatch.setattr("refinenet.data.camvid.cache_dirs", lambda root=None: [tmp_path / "cache"])


@pytest.fixture
def camvid(tmp_path):
    return fake_camvid(tmp_path / "camvid", counts={"train": 2, "val": 1})


def first(root, split="train"):
    name = sorted(p.name for p in (root / split).iterdir())[0]
    return root / split / name, root / f"{split}annot" / name


def raises(exc, *parts):
    """pytest.raises whose message must contain every part, in order."""
    return pytest.raises(exc, match=".*".join(re.escape(str(p)) for p in parts))


def test_corrupt_image(camvid):
    image, _ = first(camvid)
    image.write_bytes(b"this is not a png" * 10)
    with raises(DataError, image, "corrupt or truncated"):
        CamVid(camvid, "train")[0]


def test_truncated_image(camvid):
    image, _ = first(camvid)
    data = image.read_bytes()
    image.write_bytes(data[: len(data) // 2])
    with raises(DataError, image, "corrupt or truncated"):
        CamVid(camvid, "train")[0]


def test_truncated_label(camvid):
    _, label = first(camvid)
    data = label.read_bytes()
    label.write_bytes(data[: len(data) // 2])
    with raises(DataError, "label", label, "corrupt or truncated"):
        CamVid(camvid, "train")[0]


def test_image_label_size_mismatch(camvid):
    image, label = first(camvid)
    Image.fromarray(np.zeros((20, 32), np.uint8), mode="L").save(label)
    with raises(DataError, "size mismatch", image, "32x24", label, "32x20"):
        CamVid(camvid, "train")[0]


def test_label_values_outside_classes(camvid):
    _, label = first(camvid)
    arr = np.array(Image.open(label))
    arr[3, 4], arr[5, 6] = 12, 200
    Image.fromarray(arr, mode="L").save(label)
    with raises(DataError, label, "values 12, 200", "classes 0..10", "ignore index 11"):
        CamVid(camvid, "train")[0]


def test_label_with_colour_channels(camvid):
    _, label = first(camvid)
    Image.new("RGB", (32, 24)).save(label)
    with raises(DataError, label, "mode 'RGB'"):
        CamVid(camvid, "train")[0]


def test_missing_file_listed_in_split_file(camvid):
    image, label = first(camvid)
    label.unlink()
    with raises(FileNotFoundError, label, "listed in", camvid / "train.txt", "line 1", "missing"):
        CamVid(camvid, "train")


def test_malformed_split_file(camvid):
    (camvid / "val.txt").write_text("only-one-path.png\n")
    with raises(DataError, camvid / "val.txt", "line 1", "expected 'IMAGE LABEL'"):
        CamVid(camvid, "val")


def test_empty_directory(tmp_path):
    (tmp_path / "empty").mkdir()
    with raises(DataError, tmp_path / "empty", "empty directory"):
        CamVid(tmp_path / "empty", "train")


def test_empty_split_directory(tmp_path):
    root = tmp_path / "camvid"
    (root / "train").mkdir(parents=True)
    with raises(DataError, root / "train", "is empty"):
        CamVid(root, "train")


def test_empty_split_file(camvid):
    (camvid / "val.txt").write_text("\n")
    with raises(DataError, camvid / "val.txt", "lists no files"):
        CamVid(camvid, "val")


# --- VOC / SBD -------------------------------------------------------------------------------


@pytest.fixture
def voc(tmp_path):
    return fake_voc(tmp_path / "voc", train=("2007_000032",), val=("2007_000033",))


def test_voc_missing_listed_file(voc):
    jpg = voc / "VOCdevkit" / "VOC2012" / "JPEGImages" / "2007_000033.jpg"
    jpg.unlink()
    with raises(FileNotFoundError, jpg, "2007_000033", "val.txt", "missing"):
        VOCSegmentation(voc, "val")


def test_voc_label_values_outside_classes(voc):
    png = voc / "VOCdevkit" / "VOC2012" / "SegmentationClass" / "2007_000032.png"
    img = Image.open(png)
    arr = np.array(img)
    arr[5, 5] = 30
    out = Image.fromarray(arr, mode="P")
    out.putpalette(img.getpalette())
    out.save(png)
    with raises(DataError, png, "values 30", "classes 0..20", "ignore index 255"):
        VOCSegmentation(voc, "train")[0]


def test_voc_empty_split_list(voc):
    listing = voc / "VOCdevkit" / "VOC2012" / "ImageSets" / "Segmentation" / "train.txt"
    listing.write_text("")
    with raises(DataError, listing, "is empty"):
        VOCSegmentation(voc, "train")


def test_sbd_corrupt_mat(voc, tmp_path):
    sbd = fake_sbd(tmp_path / "sbd", train=("2008_000002",), val=("2008_000003",))
    mat = sbd / "benchmark_RELEASE" / "dataset" / "cls" / "2008_000002.mat"
    mat.write_bytes(b"MATLAB 5.0 garbage")
    ds = SBDTrainAug(sbd, voc_root=voc)
    i = [p.stem for p in ds.images].index("2008_000002")
    with raises(DataError, mat, "corrupt"):
        ds[i]


def test_sbd_missing_image(voc, tmp_path):
    sbd = fake_sbd(tmp_path / "sbd", train=("2008_000002",), val=("2008_000003",))
    jpg = sbd / "benchmark_RELEASE" / "dataset" / "img" / "2008_000002.jpg"
    jpg.unlink()
    with raises(FileNotFoundError, jpg, "2008_000002", "missing"):
        SBDTrainAug(sbd, voc_root=voc)
