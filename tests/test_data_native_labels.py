"""CamVid with images at a reduced size and labels at the native 360x480 (for evaluation)."""

import numpy as np
import pytest
import torch
from PIL import Image as PILImage

from refinenet.data.camvid import CamVid
from refinenet.data.pack import pack_filename, write_pack
from fakes import fake_camvid
from refinenet.data.transforms import eval_transform
from refinenet.engine.config import TrainConfig
from refinenet.engine.data import build_eval_set


@pytest.fixture(autouse=True)
def no_user_data(tmp_path, monkeypatch):
    """Packs only from tmp_path/packs; no CamVid root found by searching."""
    monkeypatch.setattr("refinenet.data.camvid.cache_dirs", lambda root=None: [tmp_path / "packs"])
    monkeypatch.setattr("refinenet.data.camvid.data_roots", lambda name: [])


@pytest.fixture(scope="module")
def native(tmp_path_factory):
    """A fake CamVid at the native 360x480."""
    root = tmp_path_factory.mktemp("native") / "camvid"
    return fake_camvid(root, counts={"train": 1, "val": 2, "test": 1}, size=(360, 480))


def _label(root, split, i):
    return torch.from_numpy(np.array(PILImage.open(root / f"{split}annot" /
                                                   f"0001TP_{split}_{i:04d}.png")).astype(np.int64))


def _pack(ds, tmp_path):
    path = tmp_path / "packs" / pack_filename("camvid", ds.split, ds.size or (360, 480))
    return write_pack(ds, path, dataset_name="camvid", split=ds.split, names=ds.names,
                      progress=False)


def test_images_at_size_labels_native_from_the_root(native):
    ds = CamVid(native, "val", size=(90, 120), label_size="native", packed=False)
    reduced = CamVid(native, "val", size=(90, 120), packed=False)
    for i in range(len(ds)):
        image, mask = ds.load(i)
        assert image.shape == (3, 90, 120) and image.dtype == torch.uint8
        assert mask.shape == (360, 480) and mask.dtype == torch.int64
        assert torch.equal(mask, _label(native, "val", i))  # the PNG, not resampled
        assert torch.equal(image, reduced.load(i)[0])  # images as without the option
    assert "labels at native size" in repr(ds)
    # Without a size, native labels change nothing.
    plain = CamVid(native, "val", packed=False)
    assert torch.equal(CamVid(native, "val", label_size="native", packed=False).load(1)[1],
                       plain.load(1)[1])


def test_eval_transform_keeps_differing_sizes(native):
    ds = CamVid(native, "val", size=(90, 120), label_size="native", packed=False)
    ds.transform = eval_transform(mean=ds.mean, std=ds.std)
    image, mask = ds[0]
    assert image.shape == (3, 90, 120) and image.dtype == torch.float32
    assert mask.shape == (360, 480) and torch.equal(mask, _label(native, "val", 0))
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=2)))
    assert batch[0].shape == (2, 3, 90, 120) and batch[1].shape == (2, 360, 480)


def test_images_from_a_pack_labels_from_the_root(native, tmp_path):
    _pack(CamVid(native, "val", size=(90, 120), packed=False), tmp_path)
    ds = CamVid(native, "val", size=(90, 120), label_size="native")
    assert ds.pack is not None and ds.label_pack is None
    image, mask = ds.load(1)
    assert image.shape == (3, 90, 120) and torch.equal(mask, _label(native, "val", 1))


def test_without_a_root_labels_come_from_the_native_pack(native, tmp_path):
    _pack(CamVid(native, "val", size=(90, 120), packed=False), tmp_path)
    with pytest.raises(FileNotFoundError, match=r"PNG root or the pack camvid-val-360x480\.pack"):
        CamVid(None, "val", size=(90, 120), label_size="native")
    _pack(CamVid(native, "val", packed=False), tmp_path)
    ds = CamVid(None, "val", size=(90, 120), label_size="native")
    assert ds.root is None and ds.label_pack is not None
    image, mask = ds.load(0)
    assert image.shape == (3, 90, 120) and torch.equal(mask, _label(native, "val", 0))


def test_bad_label_size():
    with pytest.raises(ValueError, match="label_size"):
        CamVid(None, "val", label_size=(360, 480))


def test_build_eval_set_native_labels(native, tmp_path):
    cfg = TrainConfig.from_dict({"data": {"dataset": "camvid", "root": str(native),
                                          "size": [90, 120], "options": {"packed": False}}})
    image, mask = build_eval_set(cfg, "test", native_labels=True)[0]
    assert image.shape == (3, 90, 120) and mask.shape == (360, 480)
    assert build_eval_set(cfg, "test")[0][1].shape == (90, 120)
    # Generated scenes are native at any size; VOC resized to data.size cannot be.
    synth = TrainConfig.from_dict({"data": {"dataset": "synthetic", "size": [32, 40],
                                            "options": {"n": 2}}})
    assert build_eval_set(synth, native_labels=True)[0][1].shape == (32, 40)
    voc = TrainConfig.from_dict({"data": {"dataset": "voc", "size": [64, 64],
                                          "crop_size": [64, 64]}})
    with pytest.raises(ValueError, match="data.size to null"):
        build_eval_set(voc, native_labels=True)
