"""The block diagrams draw what the code builds, readably (``refinenet.models.diagram``)."""

import dataclasses
import inspect
import io

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from refinenet.models import (  # noqa: E402
    RefineNet,
    RefineNetConfig,
    ResidualConvUnit,
    draw_cascade,
    draw_refinenet_block,
    show_source,
)
from refinenet.models.diagram import COLOURS, FONT  # noqa: E402
from refinenet.summary import summary_text  # noqa: E402
from refinenet.study.readable import MIN_TEXT_PX, check_readable  # noqa: E402

SMALL = RefineNetConfig(backbone="resnet18", widths=(64, 32, 32, 32))  # quick to build
NOT_BOXES = {None, "frame", "fusion-sum", "crp-sum", "rcu-sum"}


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def patches(ax, gid):
    return [p for p in ax.patches if p.get_gid() == gid]


def texts(ax, gid):
    return [t.get_text() for t in ax.texts if t.get_gid() == f"{gid}-text"]


def model_of(config):
    with torch.device("meta"):
        return RefineNet(dataclasses.replace(config, num_classes=3))


def n_rcus(module):
    return sum(isinstance(m, ResidualConvUnit) for m in module.modules())


@pytest.mark.parametrize("crp_blocks", [0, 1, 2, 4])
def test_crp_draws_one_stage_and_one_sum_per_pooling_block(crp_blocks):
    ax = draw_refinenet_block(config=dataclasses.replace(SMALL, crp_blocks=crp_blocks))
    assert len(patches(ax, "crp-stage")) == crp_blocks
    assert len(patches(ax, "crp-sum")) == crp_blocks
    assert texts(ax, "crp-relu") == ["ReLU"]


def test_frame_titles_sit_over_the_lines_that_cross_them():
    """The arrow into chained residual pooling passes the frame's title: the title is drawn
    above every line, on a white ground, so its letters stay whole."""
    ax = draw_refinenet_block()
    titles = [t for t in ax.texts if t.get_gid() == "frame-text"]
    arrows = [p for p in ax.patches if type(p).__name__ == "FancyArrowPatch"]
    assert titles and arrows
    for title in titles:
        box = title.get_bbox_patch()
        assert box is not None and matplotlib.colors.to_hex(box.get_facecolor()) == "#ffffff"
        assert title.get_zorder() > max(a.get_zorder() for a in arrows)
    plt.close(ax.figure)


def test_crp_relu_and_order_switches_are_drawn():
    config = dataclasses.replace(SMALL, crp_relu=False, crp_order="conv-pool")
    ax = draw_refinenet_block(config=config)
    assert texts(ax, "crp-relu") == ["no\nReLU"]
    assert all(t.startswith("conv 3×3\nmax-pool 5×5") for t in texts(ax, "crp-stage"))
    ax = draw_refinenet_block(config=SMALL)
    assert all(t.startswith("max-pool 5×5\nconv 3×3") for t in texts(ax, "crp-stage"))


@pytest.mark.parametrize("cascade", [1, 2, 4])
def test_rcus_drawn_are_the_rcus_the_code_runs(cascade):
    """Code layout: the RCUs of the block's tap adaptations and of its output. Paper layout:
    the same number, with as many RCUs on every input as a tap's adaptation has."""
    config = dataclasses.replace(SMALL, cascade=cascade)
    model = model_of(config)
    adaptive = n_rcus(model.adapters[0][0])
    for index, (block, group) in enumerate(zip(model.blocks, model.groups)):
        code = draw_refinenet_block(config=config, index=index, layout="code")
        expected = sum(n_rcus(model.adapters[0][t]) for t in group) + n_rcus(block.output)
        assert len(patches(code, "rcu")) == expected
        paper = draw_refinenet_block(config=config, index=index, layout="paper")
        inputs = len(group) + (index > 0)
        assert len(patches(paper, "rcu")) == adaptive * inputs + n_rcus(block.output) - adaptive
        plt.close("all")


def test_paper_layout_is_figure_3_for_the_standard_model():
    """2 RCUs on each input, 1 output RCU, 2 pooling blocks (paper Fig. 3 and Sec. 3.2)."""
    ax = draw_refinenet_block()
    assert len(patches(ax, "rcu")) == 2 * 2 + 1
    assert len(patches(ax, "crp-stage")) == 2
    assert texts(ax, "input") == ["RefineNet-4 output\n512 ch, 1/32", "layer3\n1024 ch, 1/16"]


def test_fusion_follows_the_inputs_and_the_widths():
    config = dataclasses.replace(SMALL, widths=(96, 48, 48, 48), cascade=1)
    ax = draw_refinenet_block(config=config)
    assert texts(ax, "fusion-conv") == ["conv 3×3\n→ 48"] * 4
    assert texts(ax, "upsample") == ["upsample\n×8", "upsample\n×4", "upsample\n×2"]
    assert len(patches(ax, "fusion-sum")) == 1
    assert "48 ch, 1/4" in texts(ax, "output")[0]
    single = draw_refinenet_block(config=SMALL, index=0)  # RefineNet-4: one input
    assert not patches(single, "fusion-conv") and not patches(single, "upsample")
    assert len(patches(single, "fusion-pass")) == 1


@pytest.mark.parametrize("cascade", [1, 2, 4])
def test_cascade_draws_one_block_per_cascade_level(cascade):
    ax = draw_cascade(config=dataclasses.replace(SMALL, cascade=cascade))
    assert len(patches(ax, "block")) == cascade
    names = [t.split("\n")[0] for t in texts(ax, "block")]
    assert names == [f"RefineNet-{cascade - i}" for i in range(cascade)]
    assert len(patches(ax, "adapt")) == 4
    assert len(patches(ax, "stage")) == 5  # stem and four stages


def test_cascade_labels_come_from_the_backbone_and_head():
    ax = draw_cascade(config=RefineNetConfig(num_classes=11))
    stages = texts(ax, "stage")[1:]
    assert stages == [f"layer{i + 1}\n{c} ch, 1/{s}"
                      for i, (c, s) in enumerate(zip((256, 512, 1024, 2048), (4, 8, 16, 32)))]
    assert texts(ax, "upsample") == ["bilinear upsampling\n×4"]
    assert "11 classes" in texts(ax, "classifier")[0]
    quarter = draw_cascade(config=dataclasses.replace(SMALL, output="quarter"))
    assert not patches(quarter, "upsample")
    fcn = draw_cascade(config=dataclasses.replace(SMALL, refinement=False))
    assert not patches(fcn, "block") and not patches(fcn, "adapt")
    assert texts(fcn, "upsample") == ["bilinear upsampling\n×32"]


def _text_fits_its_box(ax):
    """Every box's text lies inside the box, at the figure's own size."""
    renderer = ax.figure.canvas.get_renderer()
    boxes = [p for p in ax.patches if p.get_gid() not in NOT_BOXES]
    labels = [t for t in ax.texts if (t.get_gid() or "").removesuffix("-text") in COLOURS
              and t.get_gid().endswith("-text") and t.get_gid() != "frame-text"]
    assert len(boxes) == len(labels) > 0
    for patch, text in zip(boxes, labels):
        assert text.get_gid() == f"{patch.get_gid()}-text"
        outer, inner = patch.get_window_extent(renderer), text.get_window_extent(renderer)
        assert outer.x0 <= inner.x0 and inner.x1 <= outer.x1, text.get_text()
        assert outer.y0 <= inner.y0 and inner.y1 <= outer.y1, text.get_text()


@pytest.mark.parametrize("draw", [draw_refinenet_block, draw_cascade])
def test_default_diagrams_render_readably_at_book_width(draw):
    ax = draw()
    width, _ = ax.figure.get_size_inches()
    assert 7 <= width <= 9.5
    assert FONT >= 12
    assert check_readable(ax.figure) >= MIN_TEXT_PX  # every label, shown in the book's column
    _text_fits_its_box(ax)
    png = io.BytesIO()
    ax.figure.savefig(png, format="png", dpi=80)
    assert png.getvalue()[:8] == b"\x89PNG\r\n\x1a\n"


def test_every_variant_renders_and_its_text_fits():
    for config in (dataclasses.replace(SMALL, crp_blocks=4, crp_relu=False),
                   dataclasses.replace(SMALL, scales=(1.2, 0.6), cascade=2)):
        for ax in (draw_refinenet_block(config=config, layout="code"), draw_cascade(config=config)):
            _text_fits_its_box(ax)
            ax.figure.savefig(io.BytesIO(), format="png", dpi=50)
        plt.close("all")


def test_draws_into_a_given_axes_and_rejects_bad_arguments():
    fig, ax = plt.subplots(figsize=(9, 6))
    assert draw_cascade(ax, config=SMALL) is ax
    assert ax.figure.get_size_inches().tolist() == [9, 6]  # a caller's figure keeps its size
    with pytest.raises(TypeError, match="config="):
        draw_refinenet_block(SMALL)
    with pytest.raises(ValueError, match="layout"):
        draw_refinenet_block(config=SMALL, layout="poster")
    with pytest.raises(ValueError, match="index"):
        draw_refinenet_block(config=dataclasses.replace(SMALL, cascade=2), index=2)
    with pytest.raises(ValueError, match="no RefineNet block"):
        draw_refinenet_block(config=dataclasses.replace(SMALL, refinement=False))


def test_show_source_lists_the_code_as_it_is_now():
    from refinenet.models import ChainedResidualPooling

    shown = show_source(ResidualConvUnit, ChainedResidualPooling.forward).data
    assert shown.startswith("```python\nclass ResidualConvUnit(nn.Module):")
    assert shown.endswith("\n```")
    assert inspect.getsource(ResidualConvUnit).rstrip() in shown
    assert "    def forward(self, x: Tensor) -> Tensor:\n        x = self.relu(x)" not in shown
    assert "def forward(self, x: Tensor) -> Tensor:\n    x = self.relu(x)" in shown  # dedented


def test_summary_text_writes_units_as_letters():
    import refinenet

    model = refinenet.refinenet("resnet18", 3, widths=(32, 16, 16, 16))
    stats = refinenet.summary(model, (1, 3, 64, 64), depth=1)
    text = summary_text(stats)
    assert "Units." not in text
    assert "Total mult-adds (M): " in text or "Total mult-adds (G): " in text
    # Everything else is torchinfo's own text, line for line.
    assert len(text.splitlines()) == len(str(stats).splitlines())
    assert f"Total params: {stats.total_params:,}" in text
    # Already clean text (an older Python's format) passes through unchanged.
    assert summary_text(text) == text
