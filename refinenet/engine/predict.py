"""Predict image files with a checkpoint: colourised masks and overlays.

For each input ``path/NAME.ext`` three PNGs are written to the output directory:
``NAME_mask.png`` (classes in the dataset's palette), ``NAME_overlay.png`` (the mask blended
over the image) and ``NAME_labels.png`` (class indices, one 8-bit channel).

By default the image is resized to the resolution the model was trained at (``data.size`` of
its training config) before prediction, and the prediction is resized back to the image
(nearest neighbour), so objects appear at the scale the model learned.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ..data.transforms import resize_mask
from ..data.visual import colorize, overlay, to_pil
from .checkpoint import check_writable_dir, load_model, read_checkpoint
from .inference import predict_labels
from .precision import check_device_name, resolve_device

__all__ = ["predict_files"]


def _read_rgb(path: Path) -> np.ndarray:
    if not path.is_file():
        raise FileNotFoundError(f"image {str(path)!r} does not exist")
    try:
        with Image.open(path) as img:
            return np.array(img.convert("RGB"), dtype=np.uint8)
    except OSError as err:
        raise ValueError(f"could not read image {str(path)!r}: {err}") from err


def predict_files(
    images: Sequence[str | os.PathLike],
    checkpoint: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    scales: Sequence[float] = (1.0,),
    flip: bool = False,
    size: tuple[int, int] | None | str = "train",
    device: str = "auto",
    alpha: float = 0.5,
) -> list[Path]:
    """Predict every image file and write mask, overlay and label PNGs; returns the paths written.

    ``size``: ``"train"`` = the training resolution (``data.size``; native if unset),
    ``None`` = the image's own size, or an explicit ``(H, W)``.
    """
    # Before the checkpoint is read: a bad device or output folder fails at once.
    check_device_name(device)
    check_writable_dir(out_dir, "output folder", "choose another --out")
    state = read_checkpoint(checkpoint)
    model = load_model(state)
    info = state.get("dataset_info") or {}
    if not info.get("palette"):
        raise ValueError(f"checkpoint {checkpoint} has no dataset_info (palette, mean, std); retrain with this version")
    if size == "train":
        size = (state.get("train_config") or {}).get("data", {}).get("size")
    target = resolve_device(device)
    model = model.to(target)
    mean = torch.tensor(info["mean"], device=target).view(1, 3, 1, 1)
    std = torch.tensor(info["std"], device=target).view(1, 3, 1, 1)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for p in images:
        path = Path(p)
        rgb = _read_rgb(path)
        x = torch.from_numpy(rgb).to(target).permute(2, 0, 1)[None].float().div_(255)
        height, width = x.shape[-2:]
        if size is not None and tuple(size) != (height, width):
            x = F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=False, antialias=True)
        x = (x - mean) / std
        labels, _ = predict_labels(model, x, scales=scales, flip=flip)
        if labels.shape[-2:] != (height, width):
            labels = resize_mask(labels, (height, width))  # nearest-exact, at pixel centres
        labels = labels[0].cpu()
        image = torch.from_numpy(rgb).permute(2, 0, 1)
        stem = path.stem
        files = {
            out / f"{stem}_mask.png": to_pil(colorize(labels, info["palette"])),
            out / f"{stem}_overlay.png": to_pil(overlay(image, labels, info["palette"], alpha=alpha)),
            out / f"{stem}_labels.png": Image.fromarray(labels.numpy().astype(np.uint8)),  # 2-D uint8: mode L
        }
        for file, img in files.items():
            img.save(file)
            written.append(file)
    return written
