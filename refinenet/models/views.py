"""Figures and tables that look inside RefineNet: feature maps, strides, fusion, pooling reach,
cost per component and gradient flow (the book's architecture chapter).

The chapter computes what it talks about (a tap, a residual, a fused map, a gradient norm) and
hands the tensors to a helper here, which only lays them out: every figure helper returns a
``matplotlib.figure.Figure`` that the caller saves and shows, every table helper a
``pandas.DataFrame``. Tensors may live on any device; they are copied to the CPU to be drawn.

:func:`recording` records what modules are called with and return during a forward pass, so a
page can look at the intermediate maps of the code that runs instead of re-implementing it.

Needs the ``study`` extra (pandas, matplotlib); ``refinenet.models`` does not import it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import pandas as pd
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..data.visual import colorize

__all__ = [
    "Call",
    "block_outputs_figure",
    "cascade_shapes_table",
    "cost_figure",
    "cost_per_component",
    "cost_title",
    "crp_reach_figure",
    "fusion_figure",
    "fusion_inputs",
    "kept_sentence",
    "kept_shares",
    "gradient_figure",
    "gradient_table",
    "gradient_verdict",
    "labels_at_strides_figure",
    "normalise",
    "parameter_agreement",
    "parameter_check",
    "parameter_table",
    "rcu_figure",
    "recording",
    "resized_batch",
    "table_view",
    "taps_fused",
    "taps_table",
    "unit_gradient_norms",
    "upsampling_gap",
]

# Bar colours of the cost figure, per component group; the RefineNet blocks get "C2".
COST_COLOURS = {"backbone": "0.5", "adaptation": "C0", "classifier": "C3"}
# The same colours in the cost figure's title, and the blocks' name there.
COST_WORDS = {"backbone": "grey backbone", "adaptation": "blue adaptation", "blocks": "green blocks",
              "classifier": "red classifier"}
# Points, for every text of these figures: 12 px or more on the page once the book shrinks a
# figure up to 9 inches wide to its 688 px column (12 / 72 * 688 / 9.2 = 12.5 px).
FONT = 12


def _panel(ax, picture, title: str, **imshow) -> None:
    """Draw ``picture`` (an image array or tensor, on any device) on ``ax`` with ``title`` and no
    axis decorations."""
    if isinstance(picture, Tensor):
        picture = picture.detach().cpu().numpy()
    ax.imshow(picture, **imshow)
    ax.set_title(title, fontsize=FONT)
    ax.set_axis_off()


def table_view(df: pd.DataFrame, *, index: Sequence[str] = (), precision: int = 2, wrap: bool = False):
    """``df`` as the chapter displays it (the saved CSV keeps plain numbers): the columns
    ``index`` as row labels, integers with thousands separators ("1,769,472"), floats with
    ``precision`` decimals. Row labels never break (a group such as "RefineNet-4" stays on one
    line); the other cells neither unless ``wrap``. Returns a pandas ``Styler``."""
    shown = df.set_index(list(index)) if index else df
    view = shown.style.format(precision=precision, thousands=",")
    view = view.format_index(thousands=",", axis=0)
    cells = "th.row_heading" + ("" if wrap else ", td")
    view = view.set_table_attributes('class="dataframe"').set_table_styles(
        [{"selector": cells, "props": "white-space: nowrap;"}]
    )
    return view if index else view.hide(axis="index")


def _colour(labels, palette, ignore_index: int | None):
    """Class indices ``(H, W)`` -> RGB ``(H, W, 3)`` uint8 in the palette's colours."""
    return colorize(labels, palette, ignore_index=ignore_index).permute(1, 2, 0)


def _n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# --- inputs ------------------------------------------------------------------------------


def normalise(images: Tensor, *, mean: Sequence[float], std: Sequence[float]) -> Tensor:
    """uint8 (or float in 0..255) images ``(..., 3, H, W)`` -> float, scaled to 0..1 and then
    normalised with the data set's per-channel ``mean`` and ``std``; same shape."""
    m = torch.tensor(mean)[:, None, None]
    s = torch.tensor(std)[:, None, None]
    return (images.float() / 255 - m) / s


def resized_batch(dataset, n: int, *, height: int) -> tuple[Tensor, Tensor]:
    """The first ``n`` samples of ``dataset`` resized to ``height`` rows (the width keeps the
    aspect ratio, rounded down), as a batch.

    ``dataset[i]`` is ``(uint8 image (3, H, W), labels (H, W))``, and ``dataset`` has ``mean``
    and ``std``. Returns normalised images ``(n, 3, height, width)`` (bilinear) and labels
    ``(n, height, width)`` (nearest neighbour, int64), on the CPU.
    """
    images, labels = [], []
    for i in range(n):
        img, lab = dataset[i]
        size = (height, height * lab.shape[-1] // lab.shape[-2])
        img = F.interpolate(img[None].float(), size=size, mode="bilinear", align_corners=False)
        lab = F.interpolate(torch.as_tensor(lab)[None, None].float(), size=size)  # nearest
        images.append(normalise(img[0], mean=dataset.mean, std=dataset.std))
        labels.append(lab[0, 0].long())
    return torch.stack(images), torch.stack(labels)


# --- the backbone's strides --------------------------------------------------------------


def taps_table(inputs: Sequence[tuple[int, int]], taps: Sequence[Sequence[Tensor]]) -> pd.DataFrame:
    """One row per backbone tap and input size: ``input`` ("H × W"), ``tap`` (``layer1`` ...),
    ``stride``, ``channels``, ``height`` and ``width`` of the tap.

    ``taps[k]`` are the backbone's outputs ``(N, C, h, w)`` (shallowest first; meta tensors
    will do) for an input of size ``inputs[k]``. The stride is measured: the power of two
    nearest to input height / tap height (sizes round up: 180 / 6 = 30 -> 32).
    """
    rows = []
    for (h, w), outputs in zip(inputs, taps, strict=True):
        for stage, t in enumerate(outputs, 1):
            rows.append({
                "input": f"{h} × {w}", "tap": f"layer{stage}",
                "stride": 2 ** round(math.log2(h / t.shape[2])),
                "channels": t.shape[1], "height": t.shape[2], "width": t.shape[3],
            })
    return pd.DataFrame(rows)


def labels_at_strides_figure(image: Tensor, mask, sampled: Sequence[Tensor], *, palette,
                             ignore_index: int | None = None,
                             strides: Sequence[int] = (4, 8, 16, 32)):
    """The image, its label map, and the label map as each backbone tap's grid holds it.

    ``image`` is uint8 ``(3, H, W)``, ``mask`` class indices ``(H, W)``; ``sampled[k]`` is the
    label map sampled on the grid of stride ``strides[k]``, ``(1, 1, h, w)`` float. Each is
    enlarged back to ``H × W`` (nearest neighbour) and coloured with ``palette``. Returns a
    2 × 3 figure: image, labels, then one panel per stride titled "1/stride: h × w".
    """
    import matplotlib.pyplot as plt

    size = tuple(torch.as_tensor(mask).shape[-2:])
    fig, axes = plt.subplots(2, 3, figsize=(8, 4.8))
    axes = axes.ravel()
    _panel(axes[0], image.permute(1, 2, 0), "image")
    _panel(axes[1], _colour(mask, palette, ignore_index), "labels")
    for ax, stride, small in zip(axes[2:], strides, sampled, strict=True):
        back = _enlarged(small, size)
        h, w = small.shape[-2:]
        _panel(ax, _colour(back, palette, ignore_index), f"1/{stride}: {h} × {w}")
    fig.tight_layout(h_pad=1.2)  # the second row's titles clear of the images above
    return fig


def _enlarged(small: Tensor, size: Sequence[int]) -> Tensor:
    """A sampled label map ``(1, 1, h, w)`` enlarged back to ``size`` (nearest neighbour), as
    int64 class indices ``(H, W)``."""
    return F.interpolate(small.float(), size=tuple(size), mode="nearest")[0, 0].long()


def kept_shares(mask, sampled: Sequence[Tensor], classes: Sequence[int]) -> list[float]:
    """How much of ``classes`` each sampled label map keeps: of the pixels of ``mask``
    (``(H, W)`` class indices) whose class is in ``classes``, the percentage that has the same
    class in ``sampled[k]`` (``(1, 1, h, w)``) enlarged back to ``H × W`` by nearest neighbour,
    as :func:`labels_at_strides_figure` draws it. One value per map; NaN for every map when
    ``mask`` has no pixel of ``classes``."""
    lab = torch.as_tensor(mask).long().cpu()
    of = torch.isin(lab, torch.tensor(list(classes), dtype=torch.long))
    n = int(of.sum())
    shares = []
    for small in sampled:
        same = _enlarged(small.cpu(), lab.shape[-2:]) == lab
        shares.append(100 * int(same[of].sum()) / n if n else math.nan)
    return shares


def _percent(share: float) -> str:
    """A share in % for the prose: whole percents, "under 1%" and "over 99%" near the ends so
    that only an exact 0 or 100 reads as one."""
    if 0 < share < 1:
        return "under 1%"
    if 99 < share < 100:
        return "over 99%"
    return f"{share:.0f}%"


def _listed(words: Sequence[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def kept_sentence(thin: Sequence[float], rest: Sequence[float], *, strides: Sequence[int],
                  names: Sequence[str]) -> str:
    """What the grids of ``strides`` keep of the labels, as one sentence, from
    :func:`kept_shares` of the thin classes ``names`` (``thin``) and of the other classes
    (``rest``), one share per stride, finest first: every stride for the thin classes, the
    finest and the coarsest for the others."""
    if len(thin) != len(strides) or len(rest) != len(strides):
        raise ValueError("kept_sentence needs one share per stride")
    group = f"the thin classes ({', '.join(names)})" if names else "the thin classes"
    ends = (f"{_percent(rest[0])} keep {{}} at 1/{strides[0]} and {_percent(rest[-1])} at "
            f"1/{strides[-1]}")
    if not names or math.isnan(thin[0]):
        return (f"This example has no pixels of {group}; of its other pixels, "
                f"{ends.format('their label')}.")
    at = [f"{_percent(s)} at 1/{k}" for s, k in zip(thin, strides)]
    at[0] = at[0].replace(" at ", " keep their label at ", 1)
    text = (f"Of the pixels of {group}, {_listed(at)}; of the other classes' pixels, "
            f"{ends.format('theirs')}.")
    if any(b > a for a, b in zip(thin, thin[1:])):
        # A coarser grid is not a subset of a finer one's samples: one sample per cell lands
        # on a thin object or misses it, so on one image the share need not fall stride by stride.
        text += (" The thin classes' share does not fall stride by stride: each cell keeps the label "
                 "of the one pixel it samples, so a thin object survives a grid only where a sample "
                 "happens to land on it.")
    return text


# --- the residual conv unit and fusion ---------------------------------------------------


def rcu_figure(x: Tensor, residual: Tensor, out: Tensor, *, tap: str = "layer1"):
    """One channel of an RCU's input ``x``, residual branch ``F(x)`` and output ``x + F(x)``
    (each ``(1, C, H, W)``), side by side on one symmetric colour scale (red positive).

    The channel shown is the one with the largest mean ``|x|``; the scale is set by the
    output's largest magnitude. ``tap`` names the map in the title. Returns a 1 × 3 figure.
    """
    import matplotlib.pyplot as plt

    channel = int(x[0].abs().mean((1, 2)).argmax())
    vmax = float(out[0, channel].abs().max())
    fig, axes = plt.subplots(1, 3, figsize=(8, 2.6))
    titles = ("input x", "residual F(x)", "output x + F(x)")
    for ax, t, title in zip(axes, (x, residual, out), titles):
        _panel(ax, t[0, channel], title, cmap="RdBu_r", vmin=-vmax, vmax=vmax)
    h, w = x.shape[-2:]
    fig.suptitle(f"one channel of the {tap} map ({h} × {w}) through a fresh RCU", fontsize=FONT)
    fig.tight_layout()
    return fig


def fusion_inputs(mask, *, classes: Sequence[int]) -> tuple[Tensor, Tensor]:
    """Two one-channel maps to fuse, made from a label map ``(H, W)``, on the grids of the
    backbone's ``layer4`` and ``layer1`` taps for an image of that size (sizes round up).

    Returns ``coarse``: where ``classes`` are, averaged over 32 × 32 cells (the last row and
    column of cells over what is left of the image), ``(1, 1, ⌈H / 32⌉, ⌈W / 32⌉)``; and
    ``fine``: the label boundaries (a pixel whose right or lower neighbour has another label),
    max-pooled over 4 × 4 cells, ``(1, 1, ⌈H / 4⌉, ⌈W / 4⌉)``.
    """
    lab = torch.as_tensor(mask).long()
    inside = torch.isin(lab, torch.tensor(list(classes))).float()
    coarse = F.avg_pool2d(inside[None, None], 32, ceil_mode=True)  # partial cells: their mean
    edges = torch.zeros(lab.shape, dtype=torch.bool)
    edges[:-1] |= lab[1:] != lab[:-1]  # the lower neighbour differs
    edges[:, :-1] |= lab[:, 1:] != lab[:, :-1]  # the right one
    fine = F.max_pool2d(edges.float()[None, None], 4, ceil_mode=True)
    return coarse, fine


def upsampling_gap(coarse: Tensor, *, size: Sequence[int]) -> float:
    """How much bicubic and bilinear upsampling (``align_corners=False``) of ``coarse``
    ``(N, C, h, w)`` to ``size`` differ: the largest absolute difference, in % of the largest
    magnitude of ``coarse``."""
    up = {
        mode: F.interpolate(coarse, size=tuple(size), mode=mode, align_corners=False)
        for mode in ("bilinear", "bicubic")
    }
    gap = (up["bicubic"] - up["bilinear"]).abs().max()
    return 100 * float(gap / coarse.abs().max())


def fusion_figure(coarse: Tensor, fine: Tensor, fused: Tensor):
    """Multi-resolution fusion of two one-channel maps, ``(1, 1, h, w)`` each: the coarse
    input, the coarse input upsampled bilinearly to the fine size, the fine input and the
    fused sum, each titled with its ``height × width``. Returns a 2 × 2 figure."""
    import matplotlib.pyplot as plt

    up = F.interpolate(coarse, size=fine.shape[-2:], mode="bilinear", align_corners=False)
    fig, axes = plt.subplots(2, 2, figsize=(7, 5.4))
    titles = (
        "coarse input: {} × {}".format(*coarse.shape[-2:]),
        "upsampled (bilinear): {} × {}".format(*up.shape[-2:]),
        "fine input: {} × {}".format(*fine.shape[-2:]),
        "fused (the sum): {} × {}".format(*fused.shape[-2:]),
    )
    for ax, t, title in zip(axes.ravel(), (coarse, up, fine, fused), titles):
        _panel(ax, t[0, 0], title, cmap="magma")
    fig.tight_layout()
    return fig


# --- what modules compute inside a forward pass ------------------------------------------


@dataclasses.dataclass(frozen=True)
class Call:
    """One recorded call: ``index`` of the module in the sequence given to :func:`recording`,
    its positional ``inputs`` and its ``output``."""

    index: int
    inputs: tuple
    output: Any


@contextlib.contextmanager
def recording(modules: Sequence[nn.Module]) -> Iterator[list[Call]]:
    """Record every call of ``modules`` while the context is open.

    Yields a list that fills, in call order, with one :class:`Call` per call; the hooks are
    removed on leaving the context, so the modules run as before afterwards.
    """
    calls: list[Call] = []

    def hook_of(index: int):
        def hook(module, inputs, output):
            calls.append(Call(index, inputs, output))

        return hook

    handles = [m.register_forward_hook(hook_of(i)) for i, m in enumerate(modules)]
    try:
        yield calls
    finally:
        for handle in handles:
            handle.remove()


def crp_reach_figure(outputs: Sequence[Tensor], total: Tensor):
    """Where chained residual pooling reaches from one non-zero position: the non-zero area
    of each pooling block's output (``outputs[n]``, ``(1, 1, H, W)``) and of their sum
    ``total``, black on white inside a grey outline of the ``H × W`` map. Titles give each
    block's reach, the side of the non-zero square. Returns a figure of ``len(outputs) + 1``
    panels on rows of three."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    panels = list(outputs) + [total]
    rows = -(-len(panels) // 3)
    fig, axes = plt.subplots(rows, 3, figsize=(8, 2.6 * rows))
    axes = axes.ravel()
    for ax in axes[len(panels):]:
        ax.remove()
    for i, (ax, t) in enumerate(zip(axes, panels)):
        side = int((t[0, 0] > 0).any(0).sum())
        title = "sum of all" if i == len(outputs) else f"block {i + 1}: {side} × {side}"
        _panel(ax, t[0, 0] > 0, title, cmap="Greys")
        h, w = t.shape[-2:]  # the map's outline: pixel edges run from -0.5 to size - 0.5
        ax.add_patch(Rectangle((-0.5, -0.5), w, h, fill=False, edgecolor="0.45", lw=1.5,
                               clip_on=False, gid="map-outline"))
    fig.tight_layout()
    return fig


# --- blocks and the cascade --------------------------------------------------------------


def parameter_table(module: nn.Module, parts: Sequence[str], *, total: str = "total") -> pd.DataFrame:
    """Parameters of each submodule ``parts`` of ``module`` (attribute names), and of the
    whole module in a last row named ``total``: columns ``part`` and ``parameters``."""
    counts = {part: _n_params(getattr(module, part)) for part in parts}
    counts[total] = _n_params(module)
    return pd.DataFrame({"part": list(counts), "parameters": list(counts.values())})


def cascade_shapes_table(calls: Sequence[Call], *, image_size: Sequence[int]) -> pd.DataFrame:
    """What each RefineNet block of a cascade took and returned, from :func:`recording` of
    ``model.blocks`` during one forward pass of an image of ``image_size`` ``(H, W)``.

    One row per block, ``RefineNet-n`` down to ``RefineNet-1``: ``inputs (C, H, W)`` (one
    shape per input, joined by " + "), ``output (C, H, W)`` and ``stride`` (the power of two
    nearest to image height / output height: sizes round up, 180 / 32 -> 6).
    """
    rows = []
    for call in calls:
        shape = tuple(call.output.shape[1:])
        rows.append({
            "block": f"RefineNet-{len(calls) - call.index}",
            "inputs (C, H, W)": " + ".join(str(tuple(t.shape[1:])) for t in call.inputs[0]),
            "output (C, H, W)": str(shape),
            "stride": 2 ** round(math.log2(image_size[0] / shape[1])),
        })
    return pd.DataFrame(rows)


def block_outputs_figure(outputs: Sequence[Tensor]):
    """The output of each block of a cascade (``(1, C, h, w)``, deepest block first), averaged
    over channels (mean of ``|x|``), titled ``RefineNet-n: h × w``. Returns a figure of one
    panel per block on rows of two."""
    import matplotlib.pyplot as plt

    rows = -(-len(outputs) // 2)
    fig, axes = plt.subplots(rows, 2, figsize=(7.5, 2.8 * rows), squeeze=False)
    axes = axes.ravel()
    for ax in axes[len(outputs):]:
        ax.remove()
    for i, (ax, output) in enumerate(zip(axes, outputs)):
        h, w = output.shape[-2:]
        _panel(ax, output[0].abs().mean(0), f"RefineNet-{len(outputs) - i}: {h} × {w}",
               cmap="viridis")
    fig.tight_layout()
    return fig


def taps_fused(groups: Sequence[Sequence[int]]) -> str:
    """The taps each block of a cascade fuses, from :func:`cascade_groups` (tap 0 is
    ``layer4``): e.g. ``"{layer4, layer3} → {layer2, layer1}"``."""
    return " → ".join("{" + ", ".join(f"layer{4 - t}" for t in group) + "}" for group in groups)


# --- parameters and computation ----------------------------------------------------------


def _components(model: nn.Module) -> list[tuple[str, str, list[str]]]:
    """``(group, component, module names)`` of a one-scale RefineNet, in the order of the
    forward pass; together the modules hold every parameter and every MAC of the model."""
    n_taps, n_blocks = len(model.adapters[0]), len(model.blocks)
    out = [("backbone", "stem", ["backbones.0.conv1", "backbones.0.bn1"])]
    out += [("backbone", f"layer{i}", [f"backbones.0.layer{i}"]) for i in range(1, 5)]
    out += [
        ("adaptation", f"path {n_taps - t} (layer{4 - t})", [f"adapters.0.{t}"])
        for t in range(n_taps)
    ]
    out += [
        (f"RefineNet-{n_blocks - i}", part, [f"blocks.{i}.{part}"])
        for i in range(n_blocks)
        for part in ("fusion", "crp", "output")
    ]
    out.append(("classifier", "dropout + conv", ["classifier"]))
    return out


def cost_per_component(model: nn.Module, macs: Mapping[str, int]) -> pd.DataFrame:
    """Parameters and multiply-accumulates of each component of a one-scale RefineNet.

    ``macs`` is :func:`refinenet.count_macs` of ``model`` with ``by_module=True``. Components:
    the backbone's stem and four stages, the input adaptation of each path, the fusion, CRP
    and output of each block, the classifier. Columns: ``group``, ``component``,
    ``parameters (M)``, ``GMACs``, ``% parameters`` (of the whole model's) and ``% MACs`` (of
    the components' sum).
    """
    named = dict(model.named_modules())
    rows = []
    for group, part, names in _components(model):
        params = sum(p.numel() for n in names for p in named[n].parameters())
        rows.append({
            "group": group, "component": part, "parameters (M)": params / 1e6,
            "GMACs": sum(macs.get(n, 0) for n in names) / 1e9,
        })
    cost = pd.DataFrame(rows)
    cost["% parameters"] = 100 * cost["parameters (M)"] / _n_params(model) * 1e6
    cost["% MACs"] = 100 * cost["GMACs"] / cost["GMACs"].sum()
    return cost


def cost_title(cost: pd.DataFrame, *, backbone: str, visible: float = 0.01) -> str:
    """The cost figure's title, naming each group's colour (:data:`COST_WORDS`); a group whose
    bars are all shorter than ``visible`` times the longest bar of their chart, in both charts,
    is said to be too small to see."""
    kinds = cost.group.where(cost.group.isin(list(COST_COLOURS)), "blocks")
    words = []
    for kind, word in COST_WORDS.items():
        rows = cost[kinds == kind]
        if rows.empty:
            continue
        seen = any((rows[c] >= visible * cost[c].max()).any() for c in ("parameters (M)", "GMACs"))
        words.append(word if seen else f"{word} (too small to see)")
    half = (len(words) + 1) // 2
    return f"RefineNet on {backbone}: " + ", ".join(words[:half]) + ",\n" + ", ".join(words[half:])


def cost_figure(cost: pd.DataFrame, *, macs_size: int, backbone: str):
    """Two horizontal bar charts sharing the components of :func:`cost_per_component`:
    parameters (left) and GMACs at ``macs_size`` × ``macs_size`` (right), coloured by group
    (:data:`COST_COLOURS`), first component on top, titled by :func:`cost_title`. Returns the
    figure."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 7), sharey=True)
    names = [c if g == "backbone" else f"{g} · {c}" for g, c in zip(cost.group, cost.component)]
    colours = [COST_COLOURS.get(g, "C2") for g in cost.group]
    axes[0].barh(names, cost["parameters (M)"], color=colours)
    axes[0].set_xlabel("parameters (M)", fontsize=12)
    axes[1].barh(names, cost["GMACs"], color=colours)
    axes[1].set_xlabel(f"GMACs at {macs_size} × {macs_size}", fontsize=12)
    axes[0].invert_yaxis()  # shared: the first component on top in both
    for ax in axes:
        ax.tick_params(labelsize=12)  # 12 px or more once the book shrinks 9 in to its column
    fig.suptitle(cost_title(cost, backbone=backbone), fontsize=13)
    fig.tight_layout()
    return fig


def parameter_check(ours: Mapping[tuple[str, int], float],
                    released: Mapping[tuple[str, int], float]) -> pd.DataFrame:
    """Our parameter counts next to the released models', in millions, keyed by ``(backbone,
    CRP blocks)`` in the order of ``released``: columns ``backbone``, ``CRP blocks``,
    ``ours (M)`` and ``difference (M)`` (both rounded to 0.01 M, as the reference is, with no
    negative zero) and ``released (M)``."""
    rows = []
    for (name, crp_blocks), reference in released.items():
        count = ours[name, crp_blocks]
        rows.append({
            "backbone": name, "CRP blocks": crp_blocks, "ours (M)": round(count, 2),
            # + 0.0 turns a rounded -0.0 into 0.0
            "released (M)": reference, "difference (M)": round(count - reference, 2) + 0.0,
        })
    return pd.DataFrame(rows)


def parameter_agreement(check: pd.DataFrame) -> str:
    """How our counts compare with the released ones, in words, from :func:`parameter_check`:
    "agree with the released counts exactly (...)" when every rounded difference is 0, else
    the largest difference."""
    largest = float(check["difference (M)"].abs().max())
    if largest == 0:
        return "agree with the released counts exactly (to 0.01 M, their precision)"
    return (f"differ from the released counts by at most {largest:.2f} M (those are rounded "
            "to 0.01 M)")


# --- gradient flow -----------------------------------------------------------------------


def unit_gradient_norms(backbone: nn.Module) -> dict[str, float]:
    """The L2 norm of the gradient of each residual unit of a ResNet backbone (all its
    parameters together), after a backward pass: ``{"layer1.0": norm, ...}``, input side
    first."""
    return {
        f"layer{s}.{b}": float(torch.sqrt(sum((p.grad**2).sum() for p in unit.parameters())))
        for s in range(1, 5)
        for b, unit in enumerate(getattr(backbone, f"layer{s}"))
    }


def gradient_table(with_paths: Mapping[str, float], without: Mapping[str, float]) -> pd.DataFrame:
    """Gradient norms per residual unit (from :func:`unit_gradient_norms`) with and without the
    long-range paths: columns ``unit``, ``with long-range paths``, ``without`` and ``ratio``
    (with / without)."""
    grads = pd.DataFrame({
        "unit": list(with_paths),
        "with long-range paths": list(with_paths.values()),
        "without": [without[u] for u in with_paths],
    })
    grads["ratio"] = grads["with long-range paths"] / grads["without"]
    return grads


def gradient_verdict(ratio: float) -> str:
    """The gradient experiment in words, from the mean ratio in ``layer1`` (with / without the
    long-range paths): below 1.5 the ResNet's own shortcuts carry most of it."""
    if ratio < 1.5:
        return (
            "at initialisation the ResNet's own identity shortcuts already carry most of the "
            f"gradient down to layer1, and the long-range paths add {100 * (ratio - 1):.0f}% to it"
        )
    return f"the long-range paths multiply the gradient that reaches layer1 by {ratio:.1f}"


def gradient_figure(grads: pd.DataFrame):
    """The two gradient norms of :func:`gradient_table` per residual unit on a log scale
    (top) and their ratio with a line at 1 (bottom); ticks and grey lines mark where each
    stage starts. Returns the figure."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 1, figsize=(8.5, 4.8), sharex=True, height_ratios=(2, 1))
    position = range(len(grads))
    axes[0].semilogy(position, grads["with long-range paths"], ".-", label="long-range paths")
    axes[0].semilogy(position, grads["without"], ".-", label="layer1-3 detached")
    axes[0].set_ylabel("gradient norm", fontsize=FONT)
    axes[0].legend(frameon=False, fontsize=FONT)
    axes[1].plot(position, grads["ratio"], ".-", color="C2")
    axes[1].axhline(1, color="0.6", lw=1)
    axes[1].set_ylabel("ratio", fontsize=FONT)
    starts = [i for i, u in enumerate(grads.unit) if u.endswith(".0")]
    axes[1].set_xticks(starts, [grads.unit[i].split(".")[0] for i in starts])
    axes[1].set_xlabel("residual unit of the backbone, input side on the left", fontsize=FONT)
    for ax in axes:
        ax.tick_params(labelsize=FONT, which="both")
        for s in starts[1:]:
            ax.axvline(s - 0.5, color="0.85", lw=1)
    fig.tight_layout()
    return fig
