"""What the trained blocks do: a trained model's insides, kept as small artefacts of its entry.

Checkpoints never reach the ledger, so what the book shows of a trained model's internals is
captured when the run is recorded: :func:`capture` runs one forward pass over a few test
images with forward hooks (the model's code is not touched, and the hooks are removed
afterwards), :func:`save` writes the result as PNGs plus ``inside.json`` under
``<entry>/inside/`` (about 50 KB an image at 180 x 240), :func:`load` reads it back and the
``plot_*`` functions draw the book's figures from it alone.

What is captured, per image and per cascade block (coarse to fine; "RefineNet-4" is the first,
deepest block of the 4-cascade model and "RefineNet-1" the last, as in the paper):

``pca`` (uint8 ``(h, w, 3)``, the block's own resolution)
    The block's output features projected on their first three principal components (computed
    over the pixels of this image and block alone), one per colour channel. Each component is
    signed so that its long tail is bright (positive third moment) and stretched from its 1st
    to its 99th percentile to 0-255. Pixels of similar colour have similar features; colours
    say nothing across blocks or images. ``pca_explained``: the fraction of the feature
    variance (over pixels) that each of the three components carries.
``prediction`` (uint8 ``(H, W)``, the input size; ``None`` for the last block)
    The whole trained model's prediction when the backbone taps finer than this block's carry
    no spatial detail: each of their adapted maps (the input adaptation's output) is replaced
    by its own mean over the image, per channel (``lesion="mean"``, the default), so the
    later blocks still get that path's average contribution but not where anything is; with
    ``lesion="zero"`` the maps are zeroed and their terms vanish from the fusion sums (the
    fusion convolutions have no bias). The later blocks still run, as trained: this is a
    lesion of the trained model, not a separately trained head per block, and the model
    never saw such inputs while training, so a poor coarse prediction says that the later
    blocks rely on the finer taps, not what the coarse features "know". The last block's is
    the full prediction (the image's ``prediction``). ``agreement``: the fraction of pixels
    where it equals the full prediction.
``crp`` (uint8 ``(h, w)`` maps, one per term), ``crp_scale``, ``crp_share``
    Chained residual pooling sums its terms: ``out = h_0 + h_1 + ... + h_K`` with ``h_0`` the
    (ReLU'd) input and ``h_k`` the output of pooling stage ``k``. Map ``k`` is ``|h_k|``
    averaged over channels, divided by its own maximum over the image (``crp_scale[k]``,
    in feature units), times 255: it shows where a term is large, its scale how large.
    ``crp_share[k] = mean |h_k| / mean |out|`` (means over channels and pixels): how much of
    the output's magnitude term ``k`` carries. Terms can cancel, so the shares sum to 1 or
    more. ``crp_output`` / ``crp_output_scale``: the same map for ``out``.
``fusion`` (uint8 ``(h, w)``; ``None`` for a block with one input), ``fusion_share``
    Multi-resolution fusion sums one 3x3 conv of each input, upsampled to the largest input.
    The coarser paths are the inputs that are upsampled (the previous block's output, and the
    coarser taps of a multi-tap group); the fine paths are those already at the output size.
    Per pixel, ``c / (c + f) * 255`` with ``c``, ``f`` the channel means of ``|coarse sum|``
    and ``|fine sum|``: dark where the finer backbone tap dominates the fused map, bright
    where the coarser path does. A share of magnitude, not of importance.
    ``fusion_share``: its mean over the image (before rounding).

Per image also: ``prediction`` (uint8 ``(H, W)``, the argmax of the logits resized to the input
size, as evaluation does), ``index`` (e.g. the test image's index) and, when the data set's
mean and std are given, ``input`` (the un-normalised image, uint8 ``(h, w, 3)``, shrunk to
at most 240 pixels wide: it is only there to be shown).

Everything is computed in float32 outside autocast; :func:`capture` checks that the terms it
reads add up to what the model computed (so a change of the model's code that the hooks no
longer follow fails loudly instead of producing wrong pictures).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "INSIDE_DIR",
    "INSIDE_FILE",
    "capture",
    "save",
    "load",
    "plot_cascade",
    "plot_crp_stages",
    "plot_fusion",
    "fusion_share_by_class",
]

INSIDE_DIR = "inside"
INSIDE_FILE = "inside.json"
FORMAT = 1

# Point sizes: the figures are about 8.5 inches wide with their colour bars, so 12 pt reads at
# about 13 px in the book's column, above the floor of refinenet.study.readable (12 px).
TITLE_PT = 12
SMALL_PT = 12  # legends, colour-bar ticks and labels
FIG_WIDTH = 8.0
#: The legend's entry for the pixels the labels leave unlabelled (void), drawn black.
NO_LABEL = "no label"
MAX_COLS = 4


# -- capture ---------------------------------------------------------------------------------


def _block_name(b: int, n: int) -> str:
    return f"RefineNet-{n - b}"


def _stride(group: Sequence[int]) -> int:
    return 32 >> max(group)


def _round(x: float, digits: int = 6) -> float | None:
    x = float(x)
    return float(f"{x:.{digits}g}") if math.isfinite(x) else None


def _u8(x) -> np.ndarray:
    """A float array in [0, 1] as uint8 0-255."""
    return np.clip(np.rint(np.asarray(x, dtype=np.float64) * 255.0), 0, 255).astype(np.uint8)


def _pca_rgb(feat) -> tuple[np.ndarray, list]:
    """``(C, h, w)`` float64 CPU tensor -> uint8 ``(h, w, 3)`` and the explained fractions."""
    import torch

    c, h, w = feat.shape
    x = feat.reshape(c, h * w).T
    x = x - x.mean(0, keepdim=True)
    rgb = np.zeros((h * w, 3))
    explained = [0.0, 0.0, 0.0]
    total = float((x * x).sum())
    if h * w >= 2 and total > 0:
        _, s, vh = torch.linalg.svd(x, full_matrices=False)
        k = min(3, vh.shape[0])
        proj = x @ vh[:k].T
        for j in range(k):
            p = proj[:, j]
            if float((p**3).mean()) < 0:
                p = -p
            lo, hi = float(torch.quantile(p, 0.01)), float(torch.quantile(p, 0.99))
            rgb[:, j] = ((p - lo) / (hi - lo)).clamp(0, 1).numpy() if hi - lo > 1e-12 else 0.5
            explained[j] = _round(float(s[j] ** 2) / total)
    return _u8(rgb.reshape(h, w, 3)), explained


def _abs_mean(t) -> np.ndarray:
    return t.abs().mean(0).numpy()


def _normalised(m: np.ndarray) -> tuple[np.ndarray, float]:
    top = float(m.max()) if m.size else 0.0
    return (_u8(m / top) if top > 0 else np.zeros(m.shape, np.uint8)), _round(top)


def _check_sum(what: str, parts, total) -> None:
    err = float((parts - total).abs().max())
    if err > 1e-4 * float(total.abs().max()) + 1e-6:
        raise RuntimeError(
            f"inside.capture: the {what} terms read by the hooks do not add up to the model's "
            f"output (max error {err:.3g}); the model's code changed, update refinenet.study.inside"
        )


def _labels_u8(pred) -> np.ndarray:
    return pred.to("cpu").numpy().astype(np.uint8)


def _predict(model, images):
    import torch.nn.functional as F

    logits = model(images)
    if logits.shape[-2:] != images.shape[-2:]:
        logits = F.interpolate(logits, size=images.shape[-2:], mode="bilinear", align_corners=False)
    return logits.argmax(1)


LESIONS = ("mean", "zero")


def _silence(output, how: str):
    """What a dropped tap's adapted map becomes: its per-image, per-channel mean over the
    pixels (``"mean"``: its average contribution stays, its spatial detail goes) or zeros."""
    if how == "zero":
        return output * 0
    return output.mean(dim=(-2, -1), keepdim=True).expand_as(output).contiguous()


def capture(
    model,
    images,
    *,
    indices: Sequence[int] | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    class_names: Sequence[str] | None = None,
    palette: Sequence[Sequence[int]] | None = None,
    lesions: bool = True,
    lesion: str = "mean",
    input_width: int = 240,
) -> dict:
    """Capture what the blocks of a trained RefineNet do on ``images`` (see the module doc).

    ``images``: normalised ``(N, 3, H, W)`` (a few: every array is kept). ``indices``: what the
    images are (e.g. test indices), kept with them. ``mean``/``std``: the data set's, to keep
    the un-normalised input too (shrunk to at most ``input_width`` pixels wide: it is only
    shown). ``class_names``/``palette``: kept for the plots. ``lesions``:
    also run the coarse-to-fine lesion passes (one forward pass per block but the last);
    ``lesion``: what a dropped tap's map becomes, ``"mean"`` or ``"zero"`` (module doc).

    Returns ``{"format", "input_size", "num_classes", "config", "class_names", "palette", "lesion",
    "blocks": [per block: name, taps, stride, size, width, inputs, crp_terms, fuses],
    "images": [per image: index, input, prediction, blocks: [per block arrays and floats]]}``.
    The model is left as it was (mode, no hooks).
    """
    import torch
    import torch.nn.functional as F

    from ..models import RefineNet

    if not isinstance(model, RefineNet):
        raise TypeError(f"capture takes a RefineNet, got {type(model).__name__}")
    model.check_input(images)
    if model.num_classes > 256:
        raise ValueError(f"class indices are kept as uint8; {model.num_classes} classes do not fit")
    n_images = images.shape[0]
    if lesion not in LESIONS:
        raise ValueError(f"lesion must be one of {LESIONS}, got {lesion!r}")
    if indices is not None and len(indices) != n_images:
        raise ValueError(f"{len(indices)} indices for {n_images} images")
    device = next(model.parameters()).device
    images = images.detach().to(device=device, dtype=torch.float32)
    n = len(model.blocks)
    kept: dict[Any, Any] = {}

    def keep(key):
        def hook(module, args, output):
            if isinstance(key, list):  # a module called once per stage: keep every call
                key.append(output.detach().clone())
            else:
                kept[key] = output.detach().clone()
        return hook

    stage_calls = {b: [] for b in range(n)}
    handles = []
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), torch.autocast(device.type, enabled=False):
            for b, block in enumerate(model.blocks):
                handles.append(block.register_forward_hook(keep(("out", b))))
                handles.append(block.fusion.register_forward_hook(keep(("fused", b))))
                for i, conv in enumerate(block.fusion.convs):
                    handles.append(conv.register_forward_hook(keep(("fuse", b, i))))
                crp = block.crp
                handles.append(crp.relu.register_forward_hook(keep(("crp_in", b))))
                handles.append(crp.register_forward_hook(keep(("crp_out", b))))
                if crp.order == "pool-conv":  # stage k = convs[k](pool(stage k-1))
                    for k, conv in enumerate(crp.convs):
                        handles.append(conv.register_forward_hook(keep(("crp", b, k))))
                else:  # "conv-pool": stage k = pool(convs[k](stage k-1)); one pool for all
                    handles.append(crp.pool.register_forward_hook(keep(stage_calls[b])))
            prediction = _predict(model, images)
            for h in handles:
                h.remove()
            handles.clear()

            lesioned: dict[int, Any] = {}
            if lesions:
                for b in range(n - 1):
                    dropped = [t for group in model.groups[b + 1:] for t in group]
                    for adapters in model.adapters:
                        for t in dropped:
                            handles.append(adapters[t].register_forward_hook(
                                lambda module, args, output: _silence(output, lesion)))
                    lesioned[b] = _predict(model, images)
                    for h in handles:
                        h.remove()
                    handles.clear()
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)

    height, width = images.shape[-2:]
    scales = list(model.config.scales)
    blocks_meta = []
    per_image: list[dict] = [
        {"index": int(indices[i]) if indices is not None else i, "blocks": []} for i in range(n_images)
    ]
    for i in range(n_images):
        per_image[i]["prediction"] = _labels_u8(prediction[i])
        if mean is not None and std is not None:
            m = torch.tensor(mean, device=device).view(3, 1, 1)
            s = torch.tensor(std, device=device).view(3, 1, 1)
            rgb = (images[i : i + 1] * s + m).clamp(0, 1)
            if width > input_width:
                size = (max(1, round(height * input_width / width)), input_width)
                rgb = F.interpolate(rgb, size=size, mode="bilinear", align_corners=False, antialias=True)
            per_image[i]["input"] = _u8(rgb[0].permute(1, 2, 0).cpu().numpy())

    for b, (block, group) in enumerate(zip(model.blocks, model.groups)):
        out = kept[("out", b)].float()
        fused = kept[("fused", b)].float()
        size = tuple(out.shape[-2:])
        sources = ([_block_name(b - 1, n)] if b > 0 else []) + [
            f"tap 1/{32 >> t}" + (f" at scale {s:g}" if len(scales) > 1 else "") for t in group for s in scales
        ]
        convs = len(block.fusion.convs)
        terms = [kept[("fuse", b, j)].float() for j in range(convs)]
        inputs = [
            {"source": src, "size": list(y.shape[-2:]), "coarse": tuple(y.shape[-2:]) != size}
            for src, y in zip(sources, terms)
        ] if convs else [{"source": sources[0], "size": list(size), "coarse": False}]
        has_fusion = convs > 1 and any(d["coarse"] for d in inputs)
        if convs > 1:
            up = [y if tuple(y.shape[-2:]) == size else
                  F.interpolate(y, size=size, mode="bilinear", align_corners=False) for y in terms]
            coarse = sum(u for u, d in zip(up, inputs) if d["coarse"]) if has_fusion else None
            fine = sum(u for u, d in zip(up, inputs) if not d["coarse"])
            _check_sum(f"fusion ({_block_name(b, n)})", (coarse if has_fusion else 0) + fine, fused)
        crp_in = kept[("crp_in", b)].float()
        crp_out = kept[("crp_out", b)].float()
        if block.crp.order == "pool-conv":
            stages = [kept[("crp", b, k)].float() for k in range(len(block.crp.convs))]
        else:
            stages = [t.float() for t in stage_calls[b]]
        _check_sum(f"chained pooling ({_block_name(b, n)})", crp_in + sum(stages, torch.zeros_like(crp_in)), crp_out)
        blocks_meta.append({
            "name": _block_name(b, n),
            "taps": list(group),
            "stride": _stride(group),
            "size": list(size),
            "width": int(out.shape[1]),
            "inputs": inputs,
            "crp_terms": ["input"] + [f"stage {k + 1}" for k in range(len(stages))],
            "fuses": has_fusion,
        })
        for i in range(n_images):
            pca, explained = _pca_rgb(out[i].double().cpu())
            entry: dict[str, Any] = {"pca": pca, "pca_explained": explained}
            if b in lesioned:
                entry["prediction"] = _labels_u8(lesioned[b][i])
                entry["agreement"] = _round((lesioned[b][i] == prediction[i]).double().mean())
            else:
                entry["prediction"], entry["agreement"] = None, None
            crp_terms = [crp_in[i]] + [t[i] for t in stages]
            total = _abs_mean(crp_out[i].double().cpu())
            maps, scales_k, shares = [], [], []
            for t in crp_terms:
                m = _abs_mean(t.double().cpu())
                png, top = _normalised(m)
                maps.append(png)
                scales_k.append(top)
                shares.append(_round(m.mean() / total.mean()) if total.mean() > 0 else None)
            entry["crp"], entry["crp_scale"], entry["crp_share"] = maps, scales_k, shares
            entry["crp_output"], entry["crp_output_scale"] = _normalised(total)
            if has_fusion:
                c = _abs_mean(coarse[i].double().cpu())
                f = _abs_mean(fine[i].double().cpu())
                denom = c + f
                share = np.divide(c, denom, out=np.full_like(c, 0.5), where=denom > 0)
                entry["fusion"], entry["fusion_share"] = _u8(share), _round(share.mean())
            else:
                entry["fusion"], entry["fusion_share"] = None, None
            per_image[i]["blocks"].append(entry)

    return {
        "format": FORMAT,
        "input_size": [int(height), int(width)],
        "num_classes": int(model.num_classes),
        "config": model.config.to_dict(),
        "class_names": list(class_names) if class_names is not None else None,
        "palette": [[int(v) for v in c] for c in palette] if palette is not None else None,
        "lesion": lesion if lesions else None,
        "blocks": blocks_meta,
        "images": per_image,
    }


# -- files -----------------------------------------------------------------------------------

_ARRAY_KEYS = ("pca", "prediction", "fusion", "crp_output")


def _describe(i: int, meta: dict | None, key: str, k: int | None = None) -> str:
    where = f"image {i}"
    if meta:
        where += f", {meta['name']} (1/{meta['stride']}, {meta['size'][0]}x{meta['size'][1]})"
    return where + ": " + {
        "input": "the input image, un-normalised (RGB)",
        "prediction": ("the full prediction, class index per pixel" if meta is None else
                       "prediction with the finer taps dropped (lesion), class index per pixel"),
        "pca": "block output, first 3 principal components as RGB (1st-99th percentile stretch)",
        "crp": f"chained pooling term {k} ({'ReLU input' if k == 0 else f'stage {k}'}): "
               "mean |h| over channels / crp_scale * 255",
        "crp_output": "chained pooling output: mean |out| over channels / crp_output_scale * 255",
        "fusion": "share of the coarser path(s) in the fused sum: |coarse| / (|coarse| + |fine|) * 255",
    }[key]


def save(folder: str | os.PathLike, captured: dict) -> Path:
    """Write ``captured`` (from :func:`capture`) under ``folder``: one PNG per array (8-bit
    grey, or RGB for ``pca`` and ``input``) and ``inside.json`` with everything else and, in
    place of each array, its file name (``files`` says what each file is). Returns the folder."""
    from PIL import Image

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    files: dict[str, str] = {}

    def write(array: np.ndarray, name: str, text: str) -> str:
        array = np.asarray(array)
        if array.dtype != np.uint8 or array.ndim not in (2, 3):
            raise ValueError(f"{name}: expected a uint8 (h, w) or (h, w, 3) array, got {array.dtype} {array.shape}")
        Image.fromarray(array, mode="L" if array.ndim == 2 else "RGB").save(folder / name, optimize=True)
        files[name] = text
        return name

    images = []
    for i, img in enumerate(captured["images"]):
        row: dict[str, Any] = {k: v for k, v in img.items() if k not in ("blocks", "input", "prediction")}
        if img.get("input") is not None:
            row["input"] = write(img["input"], f"i{i}-input.png", _describe(i, None, "input"))
        row["prediction"] = write(img["prediction"], f"i{i}-prediction.png", _describe(i, None, "prediction"))
        row["blocks"] = []
        for b, (blk, meta) in enumerate(zip(img["blocks"], captured["blocks"])):
            out: dict[str, Any] = {}
            for key, value in blk.items():
                stem = f"i{i}-b{b}"
                if key == "crp":
                    out[key] = [write(m, f"{stem}-crp{k}.png", _describe(i, meta, "crp", k))
                                for k, m in enumerate(value)]
                elif key in _ARRAY_KEYS and value is not None:
                    out[key] = write(value, f"{stem}-{key.replace('_', '-')}.png", _describe(i, meta, key))
                else:
                    out[key] = value
            row["blocks"].append(out)
        images.append(row)
    doc = {k: v for k, v in captured.items() if k != "images"}
    doc["images"] = images
    doc["files"] = files
    (folder / INSIDE_FILE).write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    return folder


def load(folder: str | os.PathLike) -> dict:
    """Read what :func:`save` wrote (``folder`` itself, or a ledger entry holding
    ``inside/``): the dict :func:`capture` returned, arrays as uint8 numpy arrays."""
    from PIL import Image

    folder = Path(folder)
    if not (folder / INSIDE_FILE).is_file() and (folder / INSIDE_DIR / INSIDE_FILE).is_file():
        folder = folder / INSIDE_DIR
    if not (folder / INSIDE_FILE).is_file():
        raise FileNotFoundError(f"no {INSIDE_FILE} in {folder} (the entry kept no insides)")
    doc = json.loads((folder / INSIDE_FILE).read_text(encoding="utf-8"))
    if doc.get("format") != FORMAT:
        raise ValueError(f"{folder / INSIDE_FILE}: format {doc.get('format')!r}, this code reads {FORMAT}")

    def read(name: str) -> np.ndarray:
        with Image.open(folder / name) as im:
            return np.array(im, dtype=np.uint8)

    doc.pop("files", None)
    for img in doc["images"]:
        for key in ("input", "prediction"):
            if img.get(key) is not None:
                img[key] = read(img[key])
        for blk in img["blocks"]:
            for key in _ARRAY_KEYS:
                if blk.get(key) is not None:
                    blk[key] = read(blk[key])
            blk["crp"] = [read(m) for m in blk["crp"]]
    return doc


# -- analysis --------------------------------------------------------------------------------


def fusion_share_by_class(loaded: dict, labels: Sequence | None = None) -> dict:
    """Mean share of the coarser path(s) per class, per fusing block, over the images.

    ``labels``: one ``(H', W')`` class map per image (e.g. the test labels); ``None``: the
    stored predictions. The share maps are resized (bilinear) to the labels; values outside
    ``0 .. num_classes - 1`` (void) are left out. Returns ``{block name: {class: share}}``
    (class names when the capture kept them, else indices).
    """
    from PIL import Image

    num = loaded["num_classes"]
    names = loaded.get("class_names") or list(range(num))
    sums: dict[int, np.ndarray] = {}
    counts: dict[int, np.ndarray] = {}
    for i, img in enumerate(loaded["images"]):
        lab = np.asarray(img["prediction"] if labels is None else labels[i]).astype(np.int64)
        for b, blk in enumerate(img["blocks"]):
            if blk.get("fusion") is None:
                continue
            share = np.asarray(Image.fromarray(blk["fusion"].astype(np.float32) / 255.0, mode="F").resize(
                (lab.shape[1], lab.shape[0]), Image.BILINEAR))
            ok = (lab >= 0) & (lab < num)
            sums.setdefault(b, np.zeros(num))
            counts.setdefault(b, np.zeros(num))
            np.add.at(sums[b], lab[ok], share[ok])
            np.add.at(counts[b], lab[ok], 1)
    out = {}
    for b in sorted(sums):
        out[loaded["blocks"][b]["name"]] = {
            names[c]: float(sums[b][c] / counts[b][c]) for c in range(num) if counts[b][c] > 0
        }
    return out


# -- plots -----------------------------------------------------------------------------------


def _default_palette(n: int) -> list:
    import matplotlib

    cmap = matplotlib.colormaps["tab20"]
    return [[int(round(255 * v)) for v in cmap(k % 20)[:3]] for k in range(n)]


def _colour(labels, palette, num_classes: int) -> np.ndarray:
    lab = np.asarray(labels.cpu() if hasattr(labels, "cpu") else labels).astype(np.int64)
    pal = np.asarray(palette if palette is not None else _default_palette(num_classes), dtype=np.uint8)
    lut = np.zeros((max(256, len(pal)), 3), np.uint8)  # anything else (void): black
    lut[: len(pal)] = pal
    return lut[np.clip(lab, 0, len(lut) - 1)]


def _rgb(image) -> np.ndarray:
    """An image as float RGB ``(H, W, 3)`` in [0, 1]: uint8 or float, CHW or HWC; a float image
    outside [0, 1] (a normalised one) is min-max stretched."""
    a = np.asarray(image.cpu() if hasattr(image, "cpu") else image)
    if a.ndim == 3 and a.shape[0] == 3 and a.shape[-1] != 3:
        a = a.transpose(1, 2, 0)
    if a.dtype == np.uint8:
        return a.astype(np.float64) / 255.0
    a = a.astype(np.float64)
    if a.min() < 0 or a.max() > 1:
        a = (a - a.min()) / max(a.max() - a.min(), 1e-12)
    return a


def _figure(rows: int, cols: int, height_per_row: float):
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(rows, cols, figsize=(FIG_WIDTH, height_per_row * rows), squeeze=False)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    return fig, axes


def _show(ax, array, extent, title, **kwargs):
    ax.imshow(array, extent=extent, interpolation="nearest", **kwargs)
    ax.set_title(title, fontsize=TITLE_PT)
    ax.axis("on")


def _off(axes, used: int) -> None:
    for ax in list(axes)[used:]:
        ax.axis("off")


def _pick(loaded: dict, which: int) -> dict:
    if not loaded.get("blocks"):
        raise ValueError("this capture has no RefineNet blocks (a model without refinement)")
    if not 0 <= which < len(loaded["images"]):
        raise IndexError(f"image {which} of {len(loaded['images'])} captured")
    return loaded["images"][which]


def _row_height(loaded: dict, cols: int) -> float:
    h, w = loaded["input_size"]
    return FIG_WIDTH / cols * h / w + 0.6  # room for a two-line title


LEGEND_COLS = 4  # of the class legend: CamVid's longest names at SMALL_PT fit 8 inches


def _legend(fig, loaded, arrays, class_names, palette) -> float:
    """The class legend of ``arrays`` (label maps) below the panels; returns its height in
    inches (0: no class names, no legend)."""
    names = class_names if class_names is not None else loaded.get("class_names")
    if not names:
        return 0.0
    num = loaded["num_classes"]
    values = {int(v) for a in arrays if a is not None for v in np.unique(np.asarray(a))}
    present = sorted(v for v in values if 0 <= v < num)
    pal = palette if palette is not None else (loaded.get("palette") or _default_palette(num))
    from matplotlib.patches import Patch

    handles = [Patch(color=np.asarray(pal[c]) / 255.0, label=str(names[c])) for c in present]
    if any(not 0 <= v < num for v in values):  # void in the labels: _colour draws it black
        handles.append(Patch(facecolor="black", edgecolor="black", label=NO_LABEL))
    ncol = min(LEGEND_COLS, max(1, len(handles)))
    fig.legend(handles=handles, loc="lower center", ncol=ncol, fontsize=SMALL_PT,
               frameon=False, bbox_to_anchor=(0.5, 0.0))
    return 0.1 + 0.3 * -(-len(handles) // ncol)  # a row of entries: ~1.5 lines of SMALL_PT


def _top_row(axes, loaded, img, image, labels, palette, extent) -> int:
    """Input, labels and full prediction (those given); returns how many panels it used."""
    num = loaded["num_classes"]
    image = image if image is not None else img.get("input")
    used = 0
    if image is not None:
        _show(axes[used], _rgb(image), extent, f"image {img['index']}")
        used += 1
    if labels is not None:
        _show(axes[used], _colour(labels, palette, num), extent, "ground truth")
        used += 1
    _show(axes[used], _colour(img["prediction"], palette, num), extent, "prediction (all taps)")
    return used + 1


def plot_cascade(loaded: dict, image=None, labels=None, palette=None, *, which: int = 0, class_names=None):
    """The cascade from coarse to fine for captured image ``which``.

    Rows: [the image (``image``, else the kept input), ``labels`` and the full prediction, when
    an image or labels are at hand]; each block's output features as PCA colours at the block's
    own resolution; the lesion predictions (only the taps down to that block's stride), the
    last being the full prediction. ``palette``/``class_names`` default to the captured ones.
    """
    img = _pick(loaded, which)
    blocks = loaded["blocks"]
    n = len(blocks)
    palette = palette if palette is not None else loaded.get("palette")
    num = loaded["num_classes"]
    top = image is not None or labels is not None or img.get("input") is not None
    lesion = any(b.get("prediction") is not None for b in img["blocks"]) or n == 1
    cols = min(MAX_COLS, max(n, 3 if top else 1))
    rows_per = -(-n // cols)
    rows = (1 if top else 0) + rows_per * (2 if lesion else 1)
    h, w = loaded["input_size"]
    extent = (0, w, h, 0)
    fig, axes = _figure(rows, cols, _row_height(loaded, cols))
    r = 0
    if top:
        _off(axes[0], _top_row(axes[0], loaded, img, image, labels, palette, extent))
        r = 1
    shown = [labels, img["prediction"]]
    for start in range(0, n, cols):
        part = range(start, min(n, start + cols))
        for j, b in enumerate(part):
            meta, blk = blocks[b], img["blocks"][b]
            ev = sum(x for x in blk["pca_explained"] if x is not None)
            _show(axes[r][j], blk["pca"], extent,
                  f"{meta['name']}: 1/{meta['stride']}\n{meta['size'][0]} × {meta['size'][1]}, PCA {ev:.0%}")
        axes[r][0].set_ylabel("features", fontsize=TITLE_PT)
        _off(axes[r], len(part))
        r += 1
        if lesion:
            for j, b in enumerate(part):
                meta, blk = blocks[b], img["blocks"][b]
                if blk.get("prediction") is not None:
                    title = f"taps to 1/{meta['stride']}\nagrees {blk['agreement']:.0%}"
                    pred = blk["prediction"]
                else:
                    title, pred = "all taps (final)", img["prediction"]
                shown.append(pred)
                _show(axes[r][j], _colour(pred, palette, num), extent, title)
            axes[r][0].set_ylabel("prediction", fontsize=TITLE_PT)
            _off(axes[r], len(part))
            r += 1
    fig.suptitle(f"The cascade, coarse to fine (image {img['index']})", fontsize=TITLE_PT + 1)
    legend_in = _legend(fig, loaded, shown, class_names, palette)
    width, height = fig.get_size_inches()
    fig.set_size_inches(width, height + legend_in)  # the panels keep their size
    fig.tight_layout(rect=(0, legend_in / (height + legend_in), 1, 1))
    return fig


def plot_crp_stages(loaded: dict, *, which: int = 0, scale: str = "own"):
    """What each chained-pooling term adds, for captured image ``which``.

    One column per block (coarse to fine, at the block's own resolution), one row per term:
    the ReLU'd input, each pooling stage, the output. ``scale="own"``: every map stretched to
    its own maximum (where a term acts); ``"shared"``: one scale for the whole figure, mean |h|
    over channels in feature units (how much it adds). Titles give each term's share of the
    output's mean magnitude.
    """
    if scale not in ("own", "shared"):
        raise ValueError(f"scale must be 'own' or 'shared', got {scale!r}")
    img = _pick(loaded, which)
    blocks = loaded["blocks"]
    n = len(blocks)
    h, w = loaded["input_size"]
    extent = (0, w, h, 0)
    terms = max(len(b["crp_terms"]) for b in blocks) + 1
    cols = min(MAX_COLS, n)
    groups = -(-n // cols)
    fig, axes = _figure(terms * groups, cols, _row_height(loaded, cols))
    image = None
    values_of = []
    for blk in img["blocks"]:
        maps = blk["crp"] + [blk["crp_output"]]
        tops = blk["crp_scale"] + [blk["crp_output_scale"]]
        values_of.append([m.astype(np.float64) / 255.0 * ((t or 0.0) if scale == "shared" else 1.0)
                          for m, t in zip(maps, tops)])
    vmax = max(float(v.max()) for vs in values_of for v in vs) if scale == "shared" else 1.0
    for b in range(n):
        meta, blk = blocks[b], img["blocks"][b]
        g, j = divmod(b, cols)
        values = values_of[b]
        for k, v in enumerate(values):
            ax = axes[g * terms + k][j]
            if k < len(blk["crp"]):
                share = blk["crp_share"][k]
                label = "ReLU input" if k == 0 else f"+ stage {k}"
                title = f"{label}: {share:.0%}" if share is not None else label
            else:
                title = "= output"
            if k == 0:
                title = f"{meta['name']} (1/{meta['stride']})\n{title}"
            image = ax.imshow(v, extent=extent, interpolation="nearest", cmap="magma", vmin=0, vmax=vmax or 1.0)
            ax.set_title(title, fontsize=TITLE_PT)
        for k in range(len(values), terms):
            axes[g * terms + k][j].axis("off")
    for g in range(groups):
        for j in range(n - g * cols, cols):
            for k in range(terms):
                axes[g * terms + k][j].axis("off")
    what = ("its magnitude, stretched to its own maximum" if scale == "own"
            else "its magnitude (mean over channels), one scale for all")
    fig.suptitle(f"Chained residual pooling, term by term (image {img['index']})\n"
                 f"title: each term's share of the output's magnitude\nmap: {what}",
                 fontsize=TITLE_PT + 1)
    fig.tight_layout(rect=(0, 0, 0.9, 1))
    if image is not None:
        cax = fig.add_axes((0.91, 0.25, 0.02, 0.5))
        cb = fig.colorbar(image, cax=cax) if scale == "shared" else fig.colorbar(image, cax=cax, ticks=[0, 1])
        cb.ax.tick_params(labelsize=SMALL_PT)
    return fig


def _edges(labels) -> np.ndarray:
    lab = np.asarray(labels.cpu() if hasattr(labels, "cpu") else labels)
    e = np.zeros(lab.shape, bool)
    e[:-1] |= lab[:-1] != lab[1:]
    e[:, :-1] |= lab[:, :-1] != lab[:, 1:]
    if max(lab.shape) > 300:  # thicken, or the lines break up when shown a few inches wide
        e[1:] |= e[:-1].copy()
        e[:, 1:] |= e[:, :-1].copy()
    rgba = np.zeros(lab.shape + (4,))
    rgba[e, 3] = 0.8
    return rgba


def _nearest(labels, shape) -> np.ndarray:
    from PIL import Image

    lab = np.asarray(labels.cpu() if hasattr(labels, "cpu") else labels)
    if lab.shape == tuple(shape):
        return lab
    return np.asarray(Image.fromarray(lab.astype(np.int32), mode="I").resize((shape[1], shape[0]), Image.NEAREST))


def plot_fusion(loaded: dict, image=None, labels=None, palette=None, *, which: int = 0, class_names=None):
    """Where the finer backbone tap matters, for captured image ``which``.

    Rows: [image, ``labels``, full prediction, when at hand]; for each block that fuses, the
    share of the coarser path(s) in the fused map (blue: the finer tap dominates; red: the
    coarser path), with the label edges drawn over it when ``labels`` are given; and, from the
    lesion predictions, the pixels whose class changes when this block's taps are added: in
    the new class's colour, or with ``labels`` green where the change is right and red where
    it is wrong.
    """
    img = _pick(loaded, which)
    blocks = loaded["blocks"]
    fusing = [b for b, m in enumerate(blocks) if m["fuses"]]
    if not fusing:
        raise ValueError("no block of this model fuses more than one resolution")
    palette = palette if palette is not None else loaded.get("palette")
    num = loaded["num_classes"]
    h, w = loaded["input_size"]
    extent = (0, w, h, 0)

    def pred_of(b):
        if b < 0:
            return None
        p = img["blocks"][b].get("prediction")
        return img["prediction"] if b == len(blocks) - 1 else p

    changes = [b for b in fusing if pred_of(b - 1) is not None and pred_of(b) is not None]
    top = image is not None or labels is not None or img.get("input") is not None
    cols = min(MAX_COLS, max(len(fusing), 3 if top else 1))
    chunks = [fusing[s:s + cols] for s in range(0, len(fusing), cols)]
    rows = (1 if top else 0) + sum(1 + (1 if any(b in changes for b in c) else 0) for c in chunks)
    fig, axes = _figure(rows, cols, _row_height(loaded, cols))
    r = 0
    if top:
        _off(axes[0], _top_row(axes[0], loaded, img, image, labels, palette, extent))
        r = 1
    edges = _edges(labels) if labels is not None else None
    lab = _nearest(labels, (h, w)) if labels is not None else None
    shown = None
    for chunk in chunks:
        for j, b in enumerate(chunk):
            meta, blk = blocks[b], img["blocks"][b]
            ax = axes[r][j]
            shown = ax.imshow(blk["fusion"] / 255.0, extent=extent, interpolation="nearest", cmap="coolwarm",
                              vmin=0, vmax=1)
            if edges is not None:
                ax.imshow(edges, extent=extent, interpolation="nearest")
            ax.set_title(f"{meta['name']} (1/{meta['stride']})\ncoarse share {blk['fusion_share']:.0%}",
                         fontsize=TITLE_PT)
        axes[r][0].set_ylabel("fused map", fontsize=TITLE_PT)
        _off(axes[r], len(chunk))
        r += 1
        if any(b in changes for b in chunk):
            for j, b in enumerate(chunk):
                ax = axes[r][j]
                if b not in changes:
                    ax.axis("off")
                    continue
                before, after = pred_of(b - 1), pred_of(b)
                changed = before != after
                if lab is not None:
                    valid = (lab >= 0) & (lab < num)
                    rgb = np.full((h, w, 3), 0.85)
                    rgb[changed & valid & (after == lab)] = (0.1, 0.6, 0.1)
                    rgb[changed & valid & (after != lab) & (before == lab)] = (0.85, 0.1, 0.1)
                    rgb[changed & valid & (after != lab) & (before != lab)] = (0.45, 0.45, 0.45)
                    good = (changed & valid & (after == lab)).sum() / max(1, valid.sum())
                    bad = (changed & valid & (after != lab) & (before == lab)).sum() / max(1, valid.sum())
                    title = (f"adding 1/{blocks[b]['stride']}: {changed.mean():.0%} change\n"
                             f"{good:.0%} fixed, {bad:.0%} broken")
                else:
                    rgb = np.full((h, w, 3), 0.85)
                    rgb[changed] = _colour(after, palette, num)[changed] / 255.0
                    title = f"adding 1/{blocks[b]['stride']}\n{changed.mean():.1%} px change"
                _show(ax, rgb, extent, title)
            axes[r][0].set_ylabel("changed pixels", fontsize=TITLE_PT)
            if lab is not None:
                from matplotlib.patches import Patch

                fig.legend(handles=[Patch(color=(0.1, 0.6, 0.1), label="now right"),
                                    Patch(color=(0.85, 0.1, 0.1), label="was right, now wrong"),
                                    Patch(color=(0.45, 0.45, 0.45), label="changed, wrong both times")],
                           loc="lower center", ncol=3, fontsize=SMALL_PT, frameon=False)
            _off(axes[r], len(chunk))
            r += 1
    fig.suptitle(f"Multi-resolution fusion (image {img['index']})", fontsize=TITLE_PT + 1)
    fig.tight_layout(rect=(0, 0.05 if lab is not None and changes else 0, 0.9, 1))
    if shown is not None:
        cax = fig.add_axes((0.91, 0.3, 0.02, 0.4))
        cb = fig.colorbar(shown, cax=cax, ticks=[0, 0.5, 1])
        cb.set_label("coarser path's share", fontsize=SMALL_PT)
        cb.ax.tick_params(labelsize=SMALL_PT)
    return fig
