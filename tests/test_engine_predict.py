"""`refinenet predict`: inputs, output names, image decoding and clear errors."""

import numpy as np
import pytest
import torch
from PIL import Image

from refinenet import cli
from refinenet.engine.checkpoint import save_checkpoint
from refinenet.engine.predict import output_names, read_rgb
from refinenet.models import refinenet

PALETTE = [(255, 0, 0), (0, 255, 0), (0, 0, 255)]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, one_thread):
    """A tiny untrained 3-class model (resnet18, narrow paths) trained "at" 32x32."""
    torch.manual_seed(0)
    model = refinenet("resnet18", 3, widths=(16, 8, 8, 8))
    path = tmp_path_factory.mktemp("ckpt") / "checkpoint.pt"
    save_checkpoint(path, {
        "model_config": model.config.to_dict(),
        "model": model.state_dict(),
        "dataset_info": {"num_classes": 3, "palette": PALETTE, "mean": (0.5,) * 3, "std": (0.25,) * 3},
        "train_config": {"data": {"size": [32, 32]}},
    })
    return path


def _image(path, value, size=(24, 40)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((*size, 3), value, np.uint8)).save(path)
    return path


def _predict(capsys, checkpoint, out, *inputs):
    rc = cli.main(["predict", *map(str, inputs), "--checkpoint", str(checkpoint), "--out", str(out),
                   "--device", "cpu"])
    return rc, capsys.readouterr()


def test_inputs_sharing_a_stem_get_distinct_outputs(tmp_path, checkpoint, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    inputs = [_image(tmp_path / "a" / "x.png", 0), _image(tmp_path / "b" / "x.png", 255),
              _image(tmp_path / "x.jpg", 128), _image(tmp_path / "street.png", 60)]
    rc, io = _predict(capsys, checkpoint, tmp_path / "out", *[p.relative_to(tmp_path) for p in inputs])
    assert rc == 0, io.err
    assert f"wrote 12 files (4 images) to {tmp_path / 'out'}" in io.out
    names = ["a__x.png", "b__x.png", "x.jpg", "street"]
    expected = sorted(f"{n}_{k}.png" for n in names for k in ("mask", "overlay", "labels"))
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == expected
    # Each overlay shows its own image: none was written over by another's.
    for name, p in zip(names, inputs):
        overlay = np.asarray(Image.open(tmp_path / "out" / f"{name}_overlay.png"), np.int16)
        mask = np.asarray(Image.open(tmp_path / "out" / f"{name}_mask.png"), np.int16)
        image = np.asarray(Image.open(p).convert("RGB"), np.int16)
        assert np.abs(overlay - (image + mask) / 2).max() <= 1
    assert "a/x.png -> a__x.png_*.png" in io.out


def test_output_names():
    from pathlib import Path

    paths = [Path(p) for p in ("/d/a/x.png", "/d/b/x.png", "/d/x.jpg", "/d/y.png", "/e/a/x.png", "/d/X.JPG")]
    assert output_names(paths) == ["d__a__x.png", "b__x.png", "x.jpg", "y", "e__a__x.png", "X.JPG-2"]


def test_directory_input_is_its_images_sorted(tmp_path, checkpoint, capsys):
    folder = tmp_path / "in"
    _image(folder / "b.png", 10), _image(folder / "a.jpg", 20), _image(folder / "sub" / "c.png", 30)
    (folder / "notes.txt").write_text("not an image")
    rc, io = _predict(capsys, checkpoint, tmp_path / "out", folder, folder / "a.jpg")  # a.jpg once
    assert rc == 0, io.err
    assert "wrote 6 files (2 images)" in io.out
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(
        f"{n}_{k}.png" for n in "ab" for k in ("mask", "overlay", "labels"))
    (tmp_path / "empty").mkdir()
    rc, io = _predict(capsys, checkpoint, tmp_path / "out", tmp_path / "empty")
    assert rc == 1 and io.err.count("\n") == 1
    assert f"directory '{tmp_path / 'empty'}' holds no image files" in io.err


def test_16_bit_images_are_scaled_not_clipped(tmp_path):
    values = np.array([[0, 128, 129, 257 * 100, 65535]], np.uint16)
    Image.fromarray(values).save(tmp_path / "ramp.png")
    assert Image.open(tmp_path / "ramp.png").mode == "I;16"
    rgb = read_rgb(tmp_path / "ramp.png")
    assert rgb.shape == (1, 5, 3) and rgb.dtype == np.uint8
    assert rgb[0, :, 0].tolist() == [0, 0, 1, 100, 255] and (rgb == rgb[..., :1]).all()
    noise = np.random.default_rng(0).integers(0, 65536, (64, 64), dtype=np.uint16)
    Image.fromarray(noise).save(tmp_path / "noise.png")
    rgb = read_rgb(tmp_path / "noise.png")
    assert (rgb == 255).mean() < 0.01 and abs(rgb.mean() - 127.5) < 3  # not 99.6% white


def test_float_images_are_scaled_or_refused(tmp_path):
    Image.fromarray(np.array([[0.0, 0.5, 1.0]], np.float32)).save(tmp_path / "unit.tif")
    assert read_rgb(tmp_path / "unit.tif")[0, :, 0].tolist() == [0, 128, 255]
    Image.fromarray(np.array([[0.0, 2.0]], np.float32)).save(tmp_path / "wide.tif")
    with pytest.raises(ValueError, match=r"wide.tif' holds floating-point values in \[0, 2\]; expected \[0, 1\]"):
        read_rgb(tmp_path / "wide.tif")


def test_exif_orientation_is_applied(tmp_path):
    image = np.zeros((16, 32, 3), np.uint8)
    image[:, :16] = 255  # left half white
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    Image.fromarray(image).save(tmp_path / "phone.jpg", exif=exif, quality=95)
    rgb = read_rgb(tmp_path / "phone.jpg")
    assert rgb.shape == (32, 16, 3)  # upright: portrait
    assert rgb[:12].mean() > 200 and rgb[20:].mean() < 50  # the white half is now on top


def test_decompression_bomb_is_one_clear_error(tmp_path, checkpoint, capsys, monkeypatch):
    bomb = _image(tmp_path / "bomb.png", 0, size=(32, 32))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # 1024 pixels > twice the limit
    rc, io = _predict(capsys, checkpoint, tmp_path / "out", bomb)
    assert rc == 1 and io.err.count("\n") == 1, io.err
    assert f"image '{bomb}' is too large to decode safely" in io.err
    assert "MAX_IMAGE_PIXELS" in io.err


def test_junk_checkpoint_says_what_it_is_not(tmp_path, checkpoint, capsys):
    image = _image(tmp_path / "x.png", 0)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"hello junk\n" * 20)
    rc, io = _predict(capsys, junk, tmp_path / "out", image)
    assert rc == 1 and io.err.count("\n") == 1, io.err
    assert f"checkpoint '{junk}' is not a torch file (it begins b'hello junk" in io.err
    assert "expected a refinenet training checkpoint" in io.err
    cut = tmp_path / "cut.pt"
    cut.write_bytes(checkpoint.read_bytes()[:5000])
    rc, io = _predict(capsys, cut, tmp_path / "out", image)
    assert rc == 1 and io.err.count("\n") == 1, io.err
    assert f"checkpoint '{cut}' is a damaged or truncated torch file" in io.err
