"""Predict image files with a checkpoint: colourised masks and overlays.

Inputs are image files or directories (a directory stands for its image files, those whose
suffix is in :data:`IMAGE_SUFFIXES`, sorted by name; subdirectories are not entered). A file
given twice is predicted once.

For each input three PNGs are written to the output directory: ``NAME_mask.png`` (classes in
the dataset's palette), ``NAME_overlay.png`` (the mask blended over the image) and
``NAME_labels.png`` (class indices, one 8-bit channel). ``NAME`` is the file's stem
(``street`` for ``in/street.jpg``) unless another input has the same stem; then it keeps the
suffix (``x.jpg``) and, while still ambiguous, as many parent directories as it takes, joined
by ``__`` (``a__x.png``, ``b__x.png``): see :func:`output_names`. No output overwrites another.

Images are decoded upright (a JPEG's EXIF orientation is applied) and as 8-bit RGB; 16-bit and
floating-point images are scaled by their range (see :func:`read_rgb`), never clipped.

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
from PIL import Image, ImageOps

from ..data.transforms import resize_mask
from ..data.visual import colorize, overlay, to_pil
from .checkpoint import check_writable_dir, load_model, read_checkpoint
from .inference import predict_labels
from .precision import check_device_name, resolve_device

__all__ = ["IMAGE_SUFFIXES", "image_inputs", "output_names", "predict_files", "read_rgb"]

#: Suffixes (lower case) of the files a directory input contributes.
IMAGE_SUFFIXES = (".bmp", ".gif", ".jpeg", ".jpg", ".png", ".ppm", ".tif", ".tiff", ".webp")
OUTPUTS = ("mask", "overlay", "labels")


def _directory_images(directory: Path) -> list[Path]:
    files = sorted(p for p in directory.iterdir()
                   if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith("."))
    if not files:
        raise ValueError(f"directory {str(directory)!r} holds no image files "
                         f"({', '.join(IMAGE_SUFFIXES)}); pass image files or a directory of them")
    return files


def image_inputs(paths: Sequence[str | os.PathLike]) -> list[Path]:
    """The image files to predict, in order: files as given, directories expanded to their
    image files (sorted), each file once. Raises ``FileNotFoundError`` for a missing path and
    ``ValueError`` for a directory without images."""
    out, seen = [], set()
    for p in paths:
        path = Path(p)
        if path.is_dir():
            found = _directory_images(path)
        elif path.is_file():
            found = [path]
        else:
            raise FileNotFoundError(f"image {str(path)!r} does not exist")
        for f in found:
            key = os.path.realpath(f)
            if key not in seen:  # the same file twice would write the same outputs twice
                seen.add(key)
                out.append(f)
    return out


def _candidate(path: Path, depth: int) -> str:
    """``depth`` 0: the stem; 1: the file name; ``d`` >= 2: ``d - 1`` parent directories too."""
    if depth == 0:
        return path.stem
    parents = Path(os.path.abspath(path)).parent.parts[1:]  # without the anchor ("/")
    keep = parents[max(0, len(parents) - (depth - 1)):] if depth > 1 else ()
    return "__".join([*keep, path.name])


def output_names(paths: Sequence[Path]) -> list[str]:
    """One distinct ``NAME`` per input (``NAME_mask.png`` ...), see the module docstring.

    Names are compared case-insensitively (two names that differ only in case are one file on
    macOS and Windows); names that still clash after every directory are numbered: the first
    keeps its file name, the next get ``-2``, ``-3`` ...
    """
    names: list[str | None] = [None] * len(paths)
    taken: set[str] = set()
    max_depth = max((len(Path(os.path.abspath(p)).parts) for p in paths), default=0) + 1
    for depth in range(max_depth + 1):
        pending = [i for i, n in enumerate(names) if n is None]
        if not pending:
            break
        cands = {i: _candidate(paths[i], depth) for i in pending}
        counts: dict[str, int] = {}
        for c in cands.values():
            counts[c.casefold()] = counts.get(c.casefold(), 0) + 1
        for i, c in cands.items():
            if counts[c.casefold()] == 1 and c.casefold() not in taken:
                names[i] = c
                taken.add(c.casefold())
    for i, n in enumerate(names):  # left only by names that no directory tells apart
        if n is None:
            base, k, name = paths[i].name, 1, paths[i].name
            while name.casefold() in taken:
                k += 1
                name = f"{base}-{k}"
            names[i] = name
            taken.add(name.casefold())
    return names


def _scale_16bit(a: np.ndarray) -> np.ndarray:
    """0..65535 -> 0..255, rounded: ``(v + 128) // 257`` = round(v * 255 / 65535)."""
    return ((a.astype(np.uint32) + 128) // 257).astype(np.uint8)


def _to_rgb8(img: Image.Image, path: Path) -> np.ndarray:
    """A decoded image as uint8 ``(H, W, 3)``, scaling wide modes instead of clipping them."""
    mode = img.mode
    if mode.startswith("I;16") or mode == "I" or mode == "F":
        a = np.asarray(img)
        if mode == "F":
            lo, hi = (float(a.min()), float(a.max())) if np.isfinite(a).all() else (np.nan, np.nan)
            if not (0.0 <= lo and hi <= 1.0):
                raise ValueError(f"image {str(path)!r} holds floating-point values in [{lo:g}, {hi:g}]; "
                                 "expected [0, 1] (scaled by 255): save it as an 8-bit image")
            grey = np.rint(a.astype(np.float64) * 255).astype(np.uint8)
        else:
            if mode == "I" and (a.min() < 0 or a.max() > 65535):
                raise ValueError(f"image {str(path)!r} holds 32-bit integers in [{a.min()}, {a.max()}]; "
                                 "expected 0..65535 (16-bit): save it as an 8- or 16-bit image")
            grey = _scale_16bit(a)
        return np.repeat(grey[:, :, None], 3, axis=2)
    return np.array(img if mode == "RGB" else img.convert("RGB"), dtype=np.uint8)


def read_rgb(path: str | os.PathLike) -> np.ndarray:
    """Decode an image file to uint8 ``(H, W, 3)``, upright and in the model's 0..255 range.

    - EXIF orientation (phone JPEGs) is applied, as viewers do.
    - 16-bit images (modes ``I;16*``, and ``I`` holding 0..65535) are scaled by the 16-bit range:
      ``round(v * 255 / 65535)``, so 65535 is white and the image keeps its contrast.
    - Floating-point images (mode ``F``, e.g. float TIFF) must hold values in [0, 1] and are
      scaled by 255; other ranges (or NaN) are refused with ``ValueError``: no range can be
      assumed for them.
    - Grey, palette, alpha and CMYK images are converted by Pillow (alpha is dropped).

    Raises ``FileNotFoundError`` for a missing file and ``ValueError`` (one line, naming the
    file) for an unreadable one or one over Pillow's decompression-bomb limit.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image {str(path)!r} does not exist")
    try:
        with Image.open(path) as img:
            upright = ImageOps.exif_transpose(img)
            upright.load()
    except Image.DecompressionBombError as err:
        raise ValueError(f"image {str(path)!r} is too large to decode safely ({err}); downscale it, "
                         "or raise PIL.Image.MAX_IMAGE_PIXELS if you trust the file") from err
    except Exception as err:  # Pillow raises OSError, SyntaxError, ValueError, ... for bad files
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ValueError(f"could not read image {str(path)!r}: {reason}") from err
    return _to_rgb8(upright, path)


def _outputs(out: Path, name: str) -> dict[str, Path]:
    return {kind: out / f"{name}_{kind}.png" for kind in OUTPUTS}


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
    """Predict every image (files or directories, see :func:`image_inputs`) and write mask,
    overlay and label PNGs; returns the paths written, 3 per image, all distinct.

    ``size``: ``"train"`` = the training resolution (``data.size``; native if unset),
    ``None`` = the image's own size, or an explicit ``(H, W)``.
    """
    # Before the checkpoint is read: a bad device, output folder or input fails at once.
    check_device_name(device)
    check_writable_dir(out_dir, "output folder", "choose another --out")
    paths = image_inputs(images)
    names = output_names(paths)
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
    for path, name in zip(paths, names):
        rgb = read_rgb(path)
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
        files = _outputs(out, name)
        pictures = {
            "mask": to_pil(colorize(labels, info["palette"])),
            "overlay": to_pil(overlay(image, labels, info["palette"], alpha=alpha)),
            "labels": Image.fromarray(labels.numpy().astype(np.uint8)),  # 2-D uint8: mode L
        }
        for kind, file in files.items():
            pictures[kind].save(file)
            written.append(file)
    return written
