"""Block diagrams of RefineNet drawn with matplotlib, and source listings for the book.

:func:`draw_refinenet_block` draws one RefineNet block (paper Fig. 3), :func:`draw_cascade` the
whole network (paper Fig. 2c, and Fig. 7 for the shorter cascades). Neither types a count or a
width: both build the model that a :class:`RefineNetConfig` describes (on the meta device, so
it costs neither memory nor time) and draw the modules they find in it. A diagram therefore
cannot drift from the code: change ``crp_blocks`` and the pooling chain grows.

Every box is a matplotlib patch whose ``gid`` names its kind (``"rcu"``, ``"crp-stage"``,
``"block"``, ...; see :data:`COLOURS`), which is how the tests count what was drawn. The data
units of the axes are inches and the text is :data:`FONT` pt, so a default drawing (about 9
inches wide) reads at 12 px or more where the book shrinks it to its column.

:func:`show_source` lists the source of a class or function, read from the package at run
time, so that a notebook shows the code that ran instead of a copy of it.
"""

from __future__ import annotations

import dataclasses
import inspect
import textwrap

import torch
from torch import nn

from .blocks import ResidualConvUnit
from .config import RefineNetConfig
from .refinenet import RefineNet

__all__ = ["COLOURS", "draw_cascade", "draw_refinenet_block", "show_source"]

FONT = 12  # points: 12 px or more where the book shrinks a 9-inch drawing to its column
BOX_H = 0.48  # inches, every box
GAP = 0.2  # inches between boxes in a row
ROW = 0.78  # inches between rows
MARGIN = 0.15

# Fill colour of each kind of box; the kind is also the patch's gid.
COLOURS = {
    "input": "#e6e6e6", "stage": "#d9d9d9", "dropout": "#f2f2f2", "adapt-conv": "#c6dbef",
    "adapt": "#c6dbef", "rcu": "#9ecae1", "fusion-conv": "#fdd0a2", "upsample": "#fee6ce",
    "fusion-pass": "#fff5eb", "fusion-sum": "#fdae6b", "crp-relu": "#c7e9c0",
    "crp-stage": "#a1d99b", "crp-sum": "#74c476", "output": "#e6e6e6", "block": "#dadaeb",
    "classifier": "#fcbba1", "rcu-detail": "#deebf7", "rcu-sum": "#9ecae1", "frame": "#fafafa",
}
WIDTHS = {  # inches, per kind (each fits its longest label at FONT); others get 1.0
    "input": 1.7, "dropout": 0.78, "adapt-conv": 0.94, "rcu": 0.7, "fusion-conv": 0.94,
    "upsample": 0.94, "fusion-pass": 1.14, "crp-relu": 0.7, "crp-stage": 1.36, "output": 1.62,
    "rcu-detail": 0.92, "stage": 1.94, "adapt": 2.3, "block": 1.6, "classifier": 1.84,
}
TITLES = {  # title of the frame around the convolutions before fusion, per layout
    "paper": "adaptive convolutions", "code": "input adaptation (before the block in the code)",
}


# --- drawing primitives -------------------------------------------------------------------


@dataclasses.dataclass
class _Box:
    """A drawn box: centre ``(x, y)`` and size, in inches."""

    x: float
    y: float
    w: float
    h: float = BOX_H

    @property
    def left(self):
        return (self.x - self.w / 2, self.y)

    @property
    def right(self):
        return (self.x + self.w / 2, self.y)

    @property
    def top(self):
        return (self.x, self.y + self.h / 2)

    @property
    def bottom(self):
        return (self.x, self.y - self.h / 2)


class _Canvas:
    """Boxes, sum nodes, arrows and frames on an Axes whose data units are inches."""

    def __init__(self, ax=None):
        """Draw on ``ax``, or on a new figure that :meth:`finish` sizes to the drawing."""
        from matplotlib import patches
        from matplotlib.path import Path

        self.own_figure = ax is None
        self.ax, self.patches, self.Path = _axes(ax), patches, Path
        self.xmax, self.ymin = 0.0, 0.0

    def _extend(self, x: float, y: float) -> None:
        self.xmax, self.ymin = max(self.xmax, x), min(self.ymin, y)

    def box(self, kind: str, left: float, y: float, text: str, *, w=None, h=BOX_H,
            dashed=False) -> _Box:
        """A rounded box whose left edge is at ``left``, centred on height ``y``."""
        w = WIDTHS.get(kind, 1.0) if w is None else w
        patch = self.patches.FancyBboxPatch(
            (left, y - h / 2), w, h, boxstyle="round,pad=0,rounding_size=0.06",
            facecolor=COLOURS.get(kind, "white"), edgecolor="0.3", lw=0.8,
            linestyle="--" if dashed else "-", gid=kind, zorder=2,
        )
        self.ax.add_patch(patch)
        self.ax.text(left + w / 2, y, text, ha="center", va="center", fontsize=FONT,
                     gid=f"{kind}-text", zorder=3)
        self._extend(left + w, y - h / 2)
        return _Box(left + w / 2, y, w, h)

    def sum_node(self, kind: str, x: float, y: float, r: float = 0.13) -> _Box:
        """A circle with a plus: element-wise sum."""
        self.ax.add_patch(self.patches.Circle((x, y), r, facecolor=COLOURS[kind],
                                              edgecolor="0.3", lw=0.8, gid=kind, zorder=2))
        self.ax.text(x, y, "+", ha="center", va="center", fontsize=FONT + 1, zorder=3)
        self._extend(x + r, y - r)
        return _Box(x, y, 2 * r, 2 * r)

    def arrow(self, *points, head: bool = True) -> None:
        """A line through ``points`` with an arrowhead at the last one."""
        for x, y in points:
            self._extend(x, y)
        path = self.Path(list(points))
        self.ax.add_patch(self.patches.FancyArrowPatch(
            path=path, arrowstyle="-|>" if head else "-", mutation_scale=9, lw=0.9,
            color="0.25", zorder=1, shrinkA=0, shrinkB=0,
        ))

    def dot(self, x: float, y: float) -> None:
        self.ax.add_patch(self.patches.Circle((x, y), 0.03, color="0.25", zorder=2))

    def frame(self, x0: float, y0: float, x1: float, y1: float, title: str) -> None:
        """A dashed background frame with its title above the top-left corner."""
        self.ax.add_patch(self.patches.FancyBboxPatch(
            (x0, y0), x1 - x0, y1 - y0, boxstyle="round,pad=0,rounding_size=0.1",
            facecolor=COLOURS["frame"], edgecolor="0.55", lw=0.8, linestyle=(0, (4, 3)),
            gid="frame", zorder=0,
        ))
        self.ax.text(x0 + 0.08, y1 + 0.05, title, ha="left", va="bottom", fontsize=FONT,
                     style="italic", color="0.2", gid="frame-text", zorder=3,
                     # over any line that passes the title: the line stops at its edge
                     bbox={"facecolor": "white", "edgecolor": "none", "pad": 1})
        self._extend(x1, y0)

    def finish(self, top: float, title: str) -> None:
        """Title the drawing and fit the axes (and a figure we made) to what was drawn."""
        self.ax.text(MARGIN, top - 0.05, title, ha="left", va="top", fontsize=FONT + 1,
                     fontweight="bold", gid="title")
        width, height = self.xmax + MARGIN, top - self.ymin + MARGIN
        self.ax.set_xlim(0, width)
        self.ax.set_ylim(self.ymin - MARGIN, top)
        self.ax.set_aspect("equal")
        self.ax.set_axis_off()
        if self.own_figure:
            self.ax.figure.set_size_inches(width, height)


def _axes(ax):
    """``ax``, checked, or the Axes of a new figure (its size is set once drawn)."""
    if ax is not None:
        if not hasattr(ax, "add_patch"):
            raise TypeError(f"ax must be a matplotlib Axes or None, got {type(ax).__name__} "
                            "(pass a RefineNetConfig as config=...)")
        return ax
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(8.5, 5))
    return fig.add_axes((0, 0, 1, 1))


# --- reading the model ----------------------------------------------------------------------


def _build(config: RefineNetConfig | None) -> tuple[RefineNet, list[int]]:
    """The model ``config`` describes, on the meta device, and its backbone's strides (deepest
    first, like ``config.widths``), measured by a forward pass."""
    config = RefineNetConfig() if config is None else config
    config = dataclasses.replace(config, num_classes=config.num_classes or 1, backbone_weights=None)
    with torch.device("meta"):
        model = RefineNet(config)
        taps = model.backbones[0](torch.empty(1, 3, 256, 256))
    return model, [256 // t.shape[-1] for t in reversed(taps)]


def _fraction(resolution: float) -> str:
    """0.0625 -> "1/16"."""
    return f"1/{1 / resolution:.3g}"


def _block_name(model: RefineNet, index: int) -> str:
    """The paper's name: the deepest of four blocks is RefineNet-4, the last RefineNet-1."""
    return f"RefineNet-{len(model.blocks) - index}"


def _tap_name(model: RefineNet, tap: int, scale: int) -> str:
    multi = len(model.config.scales) > 1
    return f"layer{4 - tap}" + (f" at ×{model.config.scales[scale]:g}" if multi else "")


def _input_resolutions(model: RefineNet, strides: list[int], index: int) -> list[float]:
    """Resolution (fraction of the image side) of each input of block ``index``, in the order
    the block receives them: the previous block's output first, then the taps."""
    own = [s / strides[t] for t in model.groups[index] for s in model.config.scales]
    if index == 0:
        return own
    return [max(_input_resolutions(model, strides, index - 1))] + own


def _adaptive_rcus(model: RefineNet) -> int:
    """RCUs in the adaptation of one backbone tap (the paper's adaptive convolutions)."""
    return sum(isinstance(m, ResidualConvUnit) for m in model.adapters[0][0])


def _module_box(module: nn.Module) -> tuple[str, str]:
    """(kind, text) of one module of an input adaptation or an output."""
    if isinstance(module, ResidualConvUnit):
        return "rcu", f"RCU\n{module.channels}"
    if isinstance(module, nn.Dropout):
        return "dropout", f"dropout\n{module.p:g}"
    if isinstance(module, nn.Conv2d):
        k = module.kernel_size[0]
        return "adapt-conv", f"conv {k}×{k}\n→ {module.out_channels}"
    raise TypeError(f"no box for {type(module).__name__}")


@dataclasses.dataclass
class _Input:
    """One input path of a block: its label, the boxes before fusion, its resolution."""

    label: str
    boxes: list[tuple[str, str]]
    resolution: float


def _block_inputs(model: RefineNet, strides: list[int], index: int, layout: str) -> list[_Input]:
    """The inputs of block ``index`` with the modules each passes before fusion.

    ``layout="code"``: a tap's input adaptation (dropout, conv, RCUs); the previous block's
    output enters as it is. ``layout="paper"`` (Fig. 3): the previous block's output also
    passes through as many RCUs as a tap's adaptation has; the code runs them as the last
    output RCUs of the previous block.
    """
    resolutions = iter(_input_resolutions(model, strides, index))
    inputs = []
    if index > 0:
        prev = model.blocks[index - 1]
        moved = _adaptive_rcus(model) if layout == "paper" else 0
        rcus = list(prev.output)[len(prev.output) - moved:]
        res = next(resolutions)
        label = f"{_block_name(model, index - 1)} output\n{prev.out_channels} ch, {_fraction(res)}"
        inputs.append(_Input(label, [_module_box(m) for m in rcus], res))
    for tap in model.groups[index]:
        for scale, adapters in enumerate(model.adapters):
            res = next(resolutions)
            channels = model.backbones[scale].channels[3 - tap]
            label = f"{_tap_name(model, tap, scale)}\n{channels} ch, {_fraction(res)}"
            inputs.append(_Input(label, [_module_box(m) for m in adapters[tap]], res))
    return inputs


def _output_rcus(model: RefineNet, index: int, layout: str) -> list[nn.Module]:
    """The block's output RCUs: all of them in the code; in the paper's layout, those left
    after the next block's (or the classifier's) adaptive RCUs are taken off the end."""
    rcus = list(model.blocks[index].output)
    moved = _adaptive_rcus(model) if layout == "paper" else 0
    return rcus[: max(len(rcus) - moved, 0)]


# --- one RefineNet block --------------------------------------------------------------------


def draw_refinenet_block(ax=None, *, config: RefineNetConfig | None = None,
                         index: int | None = None, layout: str = "paper"):
    """Draw one RefineNet block of the model ``config`` describes (default: the standard one).

    Shows, left to right and top to bottom: the block's inputs (the previous block's output
    and the backbone taps it fuses), the convolutions on each input path, multi-resolution
    fusion (a 3x3 conv per path, upsampling to the finest input, a sum), chained residual
    pooling (one ReLU, then ``config.crp_blocks`` pooling stages, each fed by the previous
    one and added to the running sum), the output RCUs, and what an RCU computes.

    ``index``: which block, deepest first as in ``model.blocks`` (default: the second block,
    RefineNet-3 of the standard cascade, or the only one). ``layout="paper"`` draws the paper's
    Fig. 3 (2 adaptive RCUs on every input, 1 output RCU); ``"code"`` draws the same
    computation cut as the code cuts it (the adaptive RCUs of the previous block's path are
    its last output RCUs, 3 in all).

    Returns the Axes; with ``ax=None`` a new figure is made, sized to the drawing.
    """
    if layout not in TITLES:
        raise ValueError(f"layout must be one of {sorted(TITLES)}, got {layout!r}")
    model, strides = _build(config)
    if not model.blocks:
        raise ValueError("config.refinement is False: the model has no RefineNet block")
    index = min(1, len(model.blocks) - 1) if index is None else index
    if not 0 <= index < len(model.blocks):
        raise ValueError(f"index must be in [0, {len(model.blocks) - 1}], got {index}")
    canvas = _Canvas(ax)
    block = model.blocks[index]
    inputs = _block_inputs(model, strides, index, layout)
    top = -0.45
    exit_box, bottom = _draw_paths(canvas, inputs, block.fusion, layout, top)
    res = max(i.resolution for i in inputs)
    out_label = f"{_block_name(model, index)}\n{block.out_channels} ch, {_fraction(res)}"
    bottom = _draw_crp_and_output(canvas, block.crp, _output_rcus(model, index, layout),
                                  out_label, exit_box, bottom - 0.55)
    _draw_rcu_detail(canvas, block.output[0], bottom - 0.75)
    cfg = model.config
    canvas.finish(0.0, f"{_block_name(model, index)} of the {len(model.blocks)}-cascade on "
                       f"{cfg.backbone}, {layout}'s layout (crp_blocks={cfg.crp_blocks})")
    return canvas.ax


def _columns(inputs: list[_Input]) -> list[float]:
    """Width of each adaptation column; a path's boxes fill the last columns (right-aligned),
    so that the RCUs of all paths line up."""
    n = max(len(i.boxes) for i in inputs)
    widths = [0.0] * n
    for i in inputs:
        for j, (kind, _) in enumerate(i.boxes, start=n - len(i.boxes)):
            widths[j] = max(widths[j], WIDTHS[kind])
    return widths


def _draw_paths(canvas: _Canvas, inputs: list[_Input], fusion: nn.Module, layout: str,
                top: float) -> tuple[_Box, float]:
    """One row per input, then the fusion sum (or, for one input, fusion's pass-through).
    Returns what the fused map leaves from, and the lowest y drawn."""
    columns = _columns(inputs)
    x_adapt = MARGIN + WIDTHS["input"] + GAP
    x_fusion = x_adapt + sum(w + GAP for w in columns) + 0.1
    ys = [top - 0.5 - r * ROW for r in range(len(inputs))]
    convs = list(fusion.convs) or [None] * len(inputs)
    finest = max(i.resolution for i in inputs)
    ends = [_draw_row(canvas, path, columns, x_adapt, x_fusion, y, conv, finest)
            for path, y, conv in zip(inputs, ys, convs)]
    y_mid = (ys[0] + ys[-1]) / 2
    if fusion.convs:
        out = canvas.sum_node("fusion-sum", max(e.right[0] for e in ends) + 0.45, y_mid)
        for end in ends:  # elbows: along the row, then up or down into the sum
            if abs(end.y - out.y) < 1e-6:
                canvas.arrow(end.right, out.left)
            else:
                canvas.arrow(end.right, (out.x, end.y), out.top if end.y > out.y else out.bottom)
        title = "multi-resolution fusion"
    else:  # one input: the paper's fusion passes it through
        out = canvas.box("fusion-pass", x_fusion, y_mid, "1 input:\nunchanged", dashed=True)
        canvas.arrow(ends[0].right, out.left)
        title = "fusion"
    y_low, y_high = ys[-1] - BOX_H / 2 - 0.12, ys[0] + BOX_H / 2 + 0.12
    if columns:
        canvas.frame(x_adapt - 0.12, y_low, x_fusion - GAP - 0.02, y_high, TITLES[layout])
    canvas.frame(x_fusion - 0.12, y_low, out.right[0] + 0.12, y_high, title)
    return out, y_low


def _draw_row(canvas: _Canvas, path: _Input, columns: list[float], x_adapt: float,
              x_fusion: float, y: float, conv: nn.Conv2d | None, finest: float) -> _Box:
    """One input path: the input, its boxes (in the last of ``columns``), the fusion conv and,
    unless the input is the finest, the upsampling. Returns the last box."""
    chain = [canvas.box("input", MARGIN, y, path.label)]
    skipped = len(columns) - len(path.boxes)
    left = x_adapt + sum(w + GAP for w in columns[:skipped])
    for (kind, text), w in zip(path.boxes, columns[skipped:]):
        chain.append(canvas.box(kind, left + (w - WIDTHS[kind]) / 2, y, text))
        left += w + GAP
    if conv is not None:
        k = conv.kernel_size[0]
        text = f"conv {k}×{k}\n→ {conv.out_channels}"
        chain.append(canvas.box("fusion-conv", x_fusion, y, text))
        if path.resolution < finest:
            chain.append(canvas.box("upsample", chain[-1].right[0] + GAP, y,
                                    f"upsample\n×{finest / path.resolution:.3g}"))
    for a, b in zip(chain, chain[1:]):
        canvas.arrow(a.right, b.left)
    return chain[-1]


def _draw_crp_and_output(canvas: _Canvas, crp: nn.Module, rcus: list[nn.Module], label: str,
                         entry: _Box, top: float) -> float:
    """Chained residual pooling and the output RCUs on a second row, fed from ``entry``.
    Returns the lowest y drawn."""
    y0 = top - 0.55  # the main path
    y1 = y0 - 0.8  # the pooling chain
    x = MARGIN + 0.25
    relu_on = isinstance(crp.relu, nn.ReLU)
    relu = canvas.box("crp-relu", x, y0, "ReLU" if relu_on else "no\nReLU", dashed=not relu_on)
    turn = entry.right[0] + 0.3  # out of the side: fusion's inputs may use the bottom
    canvas.arrow(entry.right, (turn, entry.y), (turn, top + 0.2), (relu.x, top + 0.2), relu.top)
    prev_x, prev_y, last = relu.right[0] + 0.22, y0, relu.right
    for conv in crp.convs:
        steps = [f"max-pool {crp.pool.kernel_size}×{crp.pool.kernel_size}",
                 f"conv {conv.kernel_size[0]}×{conv.kernel_size[1]}"]
        text = "\n".join(steps if crp.order == "pool-conv" else steps[::-1])
        stage = canvas.box("crp-stage", prev_x + 0.2, y1, text)
        canvas.arrow((prev_x, prev_y), (prev_x, y1), stage.left)
        if prev_y == y0:
            canvas.dot(prev_x, y0)
        node = canvas.sum_node("crp-sum", stage.right[0] + 0.32, y0)
        canvas.arrow(last, node.left)
        canvas.arrow(stage.right, (node.x, y1), node.bottom)
        prev_x, prev_y, last = node.x, y1, node.right
    x = max(last[0] + 0.35, prev_x + 0.35, MARGIN + 2.3)  # room for the frame's title
    canvas.frame(MARGIN + 0.13, y1 - BOX_H / 2 - 0.12 if crp.convs else y0 - BOX_H / 2 - 0.12,
                 x - 0.12, y0 + BOX_H / 2 + 0.12, "chained residual pooling")
    chain = []
    for rcu in rcus:
        kind, text = _module_box(rcu)
        chain.append(canvas.box(kind, x, y0, text))
        x += WIDTHS["rcu"] + GAP
    if chain:
        title = "output conv." if len(chain) == 1 else "output convolutions"
        canvas.frame(chain[0].left[0] - 0.1, y0 - BOX_H / 2 - 0.12, chain[-1].right[0] + 0.1,
                     y0 + BOX_H / 2 + 0.12, title)
    chain.append(canvas.box("output", x + 0.12, y0, label))
    canvas.arrow(last, chain[0].left)
    for a, b in zip(chain, chain[1:]):
        canvas.arrow(a.right, b.left)
    return (y1 if crp.convs else y0) - BOX_H / 2 - 0.12


def _draw_rcu_detail(canvas: _Canvas, rcu: ResidualConvUnit, y: float) -> None:
    """What one RCU computes: ReLU, conv, ReLU, conv, plus the identity."""
    canvas.ax.text(MARGIN, y, "RCU:", ha="left", va="center", fontsize=FONT, fontweight="bold")
    x = start = MARGIN + 0.95  # the label "RCU:" stays clear of the incoming line
    canvas.dot(start - 0.2, y)
    chain = []
    for layer in ("relu", rcu.conv1, "relu", rcu.conv2):
        if layer == "relu":
            text = "ReLU"
        else:
            k = layer.kernel_size[0]
            text = f"conv {k}×{k}\n{'bias' if layer.bias is not None else 'no bias'}"
        chain.append(canvas.box("rcu-detail", x, y, text))
        x += WIDTHS["rcu-detail"] + GAP
    node = canvas.sum_node("rcu-sum", x + 0.05, y)
    canvas.arrow((start - 0.3, y), chain[0].left)
    for a, b in zip(chain, chain[1:] + [node]):
        canvas.arrow(a.right, b.left)
    lift = y + BOX_H / 2 + 0.15
    canvas.arrow((start - 0.2, y), (start - 0.2, lift), (node.x, lift), node.top)
    canvas.ax.text((start - 0.2 + node.x) / 2, lift + 0.03, "identity", ha="center", va="bottom",
                   fontsize=FONT, color="0.3")
    canvas.arrow(node.right, (node.right[0] + 0.4, y))


# --- the cascade ----------------------------------------------------------------------------


def draw_cascade(ax=None, *, config: RefineNetConfig | None = None):
    """Draw the whole network ``config`` describes (default: the standard 4-cascade RefineNet,
    paper Fig. 2c; ``cascade=2`` or ``1`` gives the variants of Fig. 7).

    Columns, left to right: the backbone's stages with their widths and strides (measured by
    a forward pass), the input adaptation of every tap, the cascade of RefineNet blocks (each
    fed by the previous block and its group of taps, drawn across the rows of those taps), and
    the head: classifier and upsampling. Returns the Axes; with ``ax=None`` a new figure is
    made, sized to the drawing.
    """
    model, strides = _build(config)
    cfg = model.config
    canvas = _Canvas(ax)
    top = -0.5
    columns = [MARGIN]  # left edges: backbone, adaptation, blocks, head
    for kind, gap in (("stage", 0.32), ("adapt", 0.32), ("block", 0.42)):
        columns.append(columns[-1] + WIDTHS[kind] + gap)
    ys = [top - 0.45 - r * ROW for r in range(6)]  # image, stem, layer1 .. layer4
    _headers(canvas, model, columns, top)
    taps = _draw_backbone(canvas, model, strides, columns[0], ys)
    adapted = _draw_adaptation(canvas, model, taps, columns[1])
    last, res = _draw_blocks(canvas, model, strides, adapted, columns[2])
    if last is None:  # no refinement: the classifier reads the deepest tap
        last, res = taps[0], 1 / strides[0]
    classes = config.num_classes if config is not None and config.num_classes else "K"
    _draw_head(canvas, model, classes, last, res, columns[3], ys)
    scales = f", scales {', '.join(f'{s:g}' for s in cfg.scales)}" if len(cfg.scales) > 1 else ""
    kind = f"{len(model.blocks)}-cascade RefineNet" if model.blocks else "no refinement (FCN-32s)"
    canvas.finish(0.0, f"{kind} on {cfg.backbone}{scales}")
    return canvas.ax


def _headers(canvas: _Canvas, model: RefineNet, xs, top: float) -> None:
    cfg = model.config
    backbones = f"{len(cfg.scales)} × {cfg.backbone}" if len(cfg.scales) > 1 else cfg.backbone
    names = (f"backbone: {backbones}", "input adaptation", "RefineNet blocks", "head")
    for x, name in zip(xs, names):
        if not model.blocks and name in names[1:3]:
            continue
        canvas.ax.text(x, top, name, ha="left", va="center", fontsize=FONT, style="italic",
                       color="0.2", gid="header")


def _draw_backbone(canvas: _Canvas, model: RefineNet, strides: list[int], x: float,
                   ys: list[float]) -> list[_Box]:
    """Image, stem and the four stages downwards; returns the stage boxes, deepest first."""
    backbone = model.backbones[0]
    k = backbone.conv1.kernel_size[0]
    stem = f"stem: conv {k}×{k}, pool\n{backbone.conv1.out_channels} ch, 1/{strides[-1]}"
    chain = [canvas.box("input", x, ys[0], "image\n3 ch, H × W", w=WIDTHS["stage"]),
             canvas.box("stage", x, ys[1], stem)]
    channels = backbone.channels
    for stage in range(4):
        tap = 3 - stage
        chain.append(canvas.box("stage", x, ys[2 + stage],
                                f"layer{stage + 1}\n{channels[stage]} ch, 1/{strides[tap]}"))
    for a, b in zip(chain, chain[1:]):
        canvas.arrow(a.bottom, b.top)
    return chain[2:][::-1]


def _adapt_text(adapter: nn.Module) -> str:
    """One box's text for an input adaptation: "dropout, conv 3×3 → 512 / 2 × RCU 512"."""
    kinds = [_module_box(m)[0] for m in adapter]
    conv = next(m for m in adapter if isinstance(m, nn.Conv2d))
    k = conv.kernel_size[0]
    first = ("dropout, " if "dropout" in kinds else "") + f"conv {k}×{k} → {conv.out_channels}"
    return f"{first}\n{kinds.count('rcu')} × RCU {conv.out_channels}"


def _draw_adaptation(canvas: _Canvas, model: RefineNet, taps: list[_Box], x: float) -> list[_Box]:
    """One box per tap (deepest first), fed by it; none without refinement."""
    boxes = []
    for adapter, box in zip(model.adapters[0] if model.adapters else [], taps):
        boxes.append(canvas.box("adapt", x, box.y, _adapt_text(adapter)))
        canvas.arrow(box.right, boxes[-1].left)
    return boxes


def _draw_blocks(canvas: _Canvas, model: RefineNet, strides: list[int], adapted: list[_Box],
                 x: float) -> tuple[_Box | None, float]:
    """One box per block, across the rows of the taps it fuses, fed by them and by the block
    below; returns the last block and its resolution."""
    box, res = None, 0.0
    for index, (block, group) in enumerate(zip(model.blocks, model.groups)):
        rows = [adapted[t].y for t in group]
        height = max(rows) - min(rows) + BOX_H
        res = max(_input_resolutions(model, strides, index))
        text = f"{_block_name(model, index)}\n{block.out_channels} ch, {_fraction(res)}"
        below = box
        box = canvas.box("block", x, (max(rows) + min(rows)) / 2, text, h=height)
        for t in group:
            canvas.arrow(adapted[t].right, (box.left[0], adapted[t].y))
        if below is not None:
            canvas.arrow(below.top, box.bottom)
    return box, res


def _draw_head(canvas: _Canvas, model: RefineNet, classes, last: _Box, res: float, x: float,
               ys: list[float]) -> None:
    """Classifier next to the last block, then upsampling and the logits, upwards."""
    cfg = model.config
    conv = [m for m in model.classifier if isinstance(m, nn.Conv2d)][0]
    k = conv.kernel_size[0]
    drop = "dropout, " if any(isinstance(m, nn.Dropout) for m in model.classifier) else ""
    classifier = canvas.box("classifier", x, last.y, f"{drop}conv {k}×{k}\n→ {classes} classes")
    canvas.arrow(last.right, classifier.left)
    target = 1.0 if cfg.output == "full" else 0.25
    chain = [classifier]
    if abs(res - target) > 1e-9:  # F.interpolate in RefineNet.forward
        what = "upsampling" if res < target else "resizing"
        chain.append(canvas.box("upsample", x, ys[1], f"bilinear {what}\n×{target / res:.3g}",
                                w=WIDTHS["classifier"]))
    size = "H × W" if cfg.output == "full" else "H/4 × W/4"
    chain.append(canvas.box("output", x, ys[0], f"logits\n{classes} × {size}",
                            w=WIDTHS["classifier"]))
    for a, b in zip(chain, chain[1:]):
        canvas.arrow(a.top, b.bottom)


# --- source listings ------------------------------------------------------------------------


def show_source(*objects):
    """The source of ``objects`` (classes, functions, methods) as one Markdown code block.

    Read from the package at run time with :func:`inspect.getsource`, so a notebook shows
    the code that ran rather than a copy that may have drifted from it.
    """
    from IPython.display import Markdown

    parts = [textwrap.dedent(inspect.getsource(obj)).rstrip() for obj in objects]
    return Markdown("```python\n" + "\n\n\n".join(parts) + "\n```")
