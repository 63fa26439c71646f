"""VOC 2012 (torchvision layout) and SBD train_aug, on tiny fixtures in the real layouts."""

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import tv_tensors

from refinenet.data import build_dataset
from refinenet.data import paths as data_paths
from refinenet.data.voc import VOC_PALETTE, SBDTrainAug, VOCSegmentation, find_voc_root, read_sbd_mat

from fakes import fake_sbd, fake_voc


@pytest.fixture
def voc(tmp_path):
    return fake_voc(tmp_path / "voc", train=("2007_000032", "2007_000039"), val=("2007_000033",))


@pytest.fixture
def sbd(tmp_path):
    return fake_sbd(tmp_path / "sbd", train=("2008_000002", "2007_000032"),
                    val=("2008_000003", "2007_000033"))


def test_voc_splits_and_samples(voc):
    assert [len(VOCSegmentation(voc, s)) for s in ("train", "val", "trainval")] == [2, 1, 3]
    image, mask = VOCSegmentation(voc, "train")[0]
    assert isinstance(image, tv_tensors.Image) and image.dtype == torch.uint8 and image.shape == (3, 20, 28)
    assert isinstance(mask, tv_tensors.Mask) and mask.dtype == torch.int64 and mask.shape == (20, 28)
    assert (mask[0] == 255).all()  # the border band is ignore
    assert set(mask.unique().tolist()) <= set(range(21)) | {255}
    ds = build_dataset("voc", "val", root=voc)
    assert ds.num_classes == 21 and ds.ignore_index == 255 and len(ds.class_names) == 21
    assert ds.palette[:3] == [(0, 0, 0), (128, 0, 0), (0, 128, 0)] and len(ds.palette) == 21


def test_voc_root_forms(voc):
    base = voc / "VOCdevkit" / "VOC2012"
    assert find_voc_root(voc) == voc
    assert find_voc_root(voc / "VOCdevkit") == voc
    assert find_voc_root(base) == voc
    with pytest.raises(FileNotFoundError, match="does not hold VOC"):
        find_voc_root(base / "JPEGImages")


def test_voc_search(voc, tmp_path, monkeypatch):
    monkeypatch.setattr(data_paths, "project_root", lambda: None)
    monkeypatch.setenv("REFINENET_DATA", str(tmp_path))  # tmp_path/voc holds it
    assert find_voc_root() == voc
    monkeypatch.setenv("REFINENET_DATA", str(tmp_path / "none"))
    monkeypatch.chdir(tmp_path / "voc")
    with pytest.raises(FileNotFoundError, match="searched"):
        find_voc_root()


def test_train_aug_union_and_label_sources(voc, sbd):
    ds = SBDTrainAug(sbd, voc_root=voc)
    # (SBD train + SBD val + VOC train) - VOC val
    names = [p.stem for p in ds.images]
    assert names == ["2007_000032", "2007_000039", "2008_000002", "2008_000003"]
    labels = {p.stem: p for p in ds.labels}
    assert labels["2007_000032"].suffix == ".png"  # VOC's own annotation wins
    assert labels["2008_000002"].suffix == ".mat"
    i = names.index("2008_000002")
    image, mask = ds[i]
    expected = read_sbd_mat(sbd / "benchmark_RELEASE" / "dataset" / "cls" / "2008_000002.mat")
    assert torch.equal(mask, torch.from_numpy(expected.astype(np.int64)))
    assert image.shape == (3, 20, 28)
    # Colours follow the labels (the fixture is colour coded; JPEG adds a little error).
    def colour_error(m):
        return (image.permute(1, 2, 0).int() - torch.tensor(VOC_PALETTE)[m]).abs().float().mean()

    assert colour_error(mask) < 8 < colour_error(mask.flip(-1))
    built = build_dataset("sbd", "train_aug", root=sbd, voc_root=voc)
    assert len(built) == 4
    with pytest.raises(ValueError, match="train_aug"):
        build_dataset("sbd", "train", root=sbd, voc_root=voc)


def test_sbd_mat_matches_what_was_written(tmp_path):
    from scipy.io import savemat

    seg = np.arange(12, dtype=np.uint8).reshape(3, 4)
    savemat(tmp_path / "x.mat", {"GTcls": {"Segmentation": seg}})
    assert np.array_equal(read_sbd_mat(tmp_path / "x.mat"), seg)


def test_voc_palette_png_is_read_as_indices(voc):
    path = voc / "VOCdevkit" / "VOC2012" / "SegmentationClass" / "2007_000033.png"
    assert Image.open(path).mode == "P"
    _, mask = VOCSegmentation(voc, "val")[0]
    assert torch.equal(mask, torch.from_numpy(np.array(Image.open(path)).astype(np.int64)))
