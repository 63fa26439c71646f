"""The architecture chapter's figures and tables show what they are given (``refinenet.models.views``)."""

import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

import refinenet  # noqa: E402
from refinenet.data.visual import colorize  # noqa: E402
from refinenet.models import (  # noqa: E402
    ChainedResidualPooling,
    RefineNetBlock,
    ResNetBackbone,
    cascade_groups,
    views,
)
from refinenet.study.readable import MIN_TEXT_PX, check_readable  # noqa: E402

PALETTE = [(0, 0, 0), (255, 0, 0), (0, 255, 0), (0, 0, 255)]
SMALL = {"widths": (32, 16, 16, 16)}  # a resnet18 RefineNet that builds in a blink


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def small_model(**switches):
    torch.manual_seed(0)
    return refinenet.refinenet("resnet18", 3, **{**SMALL, **switches})


def image_of(ax) -> np.ndarray:
    return np.asarray(ax.get_images()[0].get_array())


class Scenes:
    """A stand-in for a data set: uint8 images and labels of one size, mean and std."""

    mean, std = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)

    def __init__(self, n=3, size=(40, 60)):
        g = torch.Generator().manual_seed(0)
        self.items = [
            (torch.randint(0, 256, (3, *size), generator=g, dtype=torch.uint8),
             torch.randint(0, 4, size, generator=g))
            for _ in range(n)
        ]

    def __getitem__(self, i):
        return self.items[i]


# --- inputs ------------------------------------------------------------------------------


def test_normalise_scales_to_one_then_standardises_each_channel():
    image = torch.full((3, 2, 2), 255, dtype=torch.uint8)
    image[1] = 0
    out = views.normalise(image, mean=(0.5, 0.5, 0.0), std=(0.5, 0.25, 2.0))
    assert out.dtype == torch.float32 and out.shape == (3, 2, 2)
    assert torch.allclose(out[0], torch.full((2, 2), 1.0))
    assert torch.allclose(out[1], torch.full((2, 2), -2.0))
    assert torch.allclose(out[2], torch.full((2, 2), 0.5))


def test_resized_batch_keeps_the_aspect_and_the_classes():
    data = Scenes(n=3, size=(40, 60))
    x, y = views.resized_batch(data, 2, height=20)
    assert x.shape == (2, 3, 20, 30) and y.shape == (2, 20, 30)
    assert y.dtype == torch.int64
    # Nearest neighbour: labels are sampled, never blended.
    assert set(y.unique().tolist()) <= {0, 1, 2, 3}
    img, lab = data[1]
    expected = F.interpolate(img[None].float(), size=(20, 30), mode="bilinear", align_corners=False)[0]
    assert torch.allclose(x[1], views.normalise(expected, mean=data.mean, std=data.std))
    assert torch.equal(y[1], lab[::2, ::2])  # halving with nearest keeps every other pixel


# --- the backbone's strides --------------------------------------------------------------


def test_taps_table_lists_every_tap_of_every_input():
    with torch.device("meta"):
        backbone = ResNetBackbone("resnet18")
    inputs = [(180, 240), (64, 64)]
    taps = [backbone(torch.empty(1, 3, h, w, device="meta")) for h, w in inputs]
    table = views.taps_table(inputs, taps)
    assert list(table.columns) == ["input", "tap", "stride", "channels", "height", "width"]
    assert len(table) == 8
    assert table.input.tolist() == ["180 × 240"] * 4 + ["64 × 64"] * 4
    assert table.tap.tolist()[:4] == ["layer1", "layer2", "layer3", "layer4"]
    assert table.stride.tolist()[:4] == [4, 8, 16, 32]
    assert table.channels.tolist()[:4] == [64, 128, 256, 512]
    # The sizes round up: 180 / 16 -> 12 (not 11), 180 / 32 -> 6.
    assert table.height.tolist()[:4] == [45, 23, 12, 6]
    assert table.width.tolist()[4:] == [16, 8, 4, 2]
    # The strides are measured on the taps: 180 / 6 = 30 is nearest to 32; 64 / 2 = 32.
    assert table.stride.tolist()[4:] == [4, 8, 16, 32]


def test_table_view_separates_thousands_and_keeps_row_labels_on_one_line():
    df = pd.DataFrame({"group": ["RefineNet-4", "RefineNet-4"], "part": ["crp", "output"],
                       "parameters": [1769472, 512], "GMACs": [1234.5678, 0.5]})
    html = views.table_view(df, index=["group", "part"]).to_html()
    assert "1,769,472" in html and ">512<" in html
    assert "1,234.57" in html and "0.50" in html
    assert "1769472" not in html
    assert "white-space: nowrap" in html  # "RefineNet-4" does not break at its hyphen
    assert 'class="dataframe"' in html
    flat = views.table_view(df[["part", "parameters"]], wrap=True).to_html()
    assert "1,769,472" in flat and "RefineNet" not in flat
    assert ">0<" not in flat  # no index column
    assert df.parameters.tolist() == [1769472, 512]  # the frame itself is untouched


def test_labels_at_strides_shows_the_image_the_labels_and_each_enlarged_grid():
    mask = torch.arange(4).repeat_interleave(8)[None].repeat(16, 1)  # (16, 32): 4 vertical stripes
    image = torch.randint(0, 256, (3, 16, 32), dtype=torch.uint8)
    labels = mask[None, None].float()
    sampled = [F.interpolate(labels, size=s, mode="nearest") for s in [(8, 16), (4, 8), (2, 4), (1, 2)]]
    fig = views.labels_at_strides_figure(image, mask, sampled, palette=PALETTE)
    assert check_readable(fig) >= MIN_TEXT_PX
    axes = fig.axes
    assert len(axes) == 6
    # The second row's titles clear the first row's images.
    renderer = fig.canvas.get_renderer()
    title_top = max(ax.title.get_window_extent(renderer).y1 for ax in axes[3:])
    assert title_top < min(ax.get_window_extent(renderer).y0 for ax in axes[:3])
    assert [ax.get_title() for ax in axes] == [
        "image", "labels", "1/4: 8 × 16", "1/8: 4 × 8", "1/16: 2 × 4", "1/32: 1 × 2"]
    assert np.array_equal(image_of(axes[0]), image.permute(1, 2, 0).numpy())
    assert np.array_equal(image_of(axes[1]), colorize(mask, PALETTE).permute(1, 2, 0).numpy())
    # At 1/32 only two cells are left: stripes 0 and 2 survive, each twice as wide.
    coarse = torch.tensor([0, 2]).repeat_interleave(16)[None].repeat(16, 1)
    assert np.array_equal(image_of(axes[5]), colorize(coarse, PALETTE).permute(1, 2, 0).numpy())


# --- the residual conv unit and fusion ---------------------------------------------------


def test_rcu_figure_shows_the_strongest_channel_on_one_symmetric_scale():
    x = torch.randn(1, 4, 6, 8)
    x[0, 2] *= 10  # the channel with the largest mean |x|
    residual = 0.1 * torch.randn(1, 4, 6, 8)
    out = x + residual
    fig = views.rcu_figure(x, residual, out)
    assert check_readable(fig) >= MIN_TEXT_PX
    axes = fig.axes
    assert [ax.get_title() for ax in axes] == ["input x", "residual F(x)", "output x + F(x)"]
    for ax, t in zip(axes, (x, residual, out)):
        assert np.allclose(image_of(ax), t[0, 2].numpy())
        vmax = float(out[0, 2].abs().max())
        assert ax.get_images()[0].get_clim() == pytest.approx((-vmax, vmax))
    assert fig._suptitle.get_text() == "one channel of the layer1 map (6 × 8) through a fresh RCU"


def test_fusion_inputs_average_the_classes_and_mark_the_edges():
    mask = torch.zeros(64, 96, dtype=torch.long)
    mask[:, :32] = 1  # the left third is class 1
    coarse, fine = views.fusion_inputs(mask, classes=[1])
    assert coarse.shape == (1, 1, 2, 3) and fine.shape == (1, 1, 16, 24)
    assert torch.equal(coarse[0, 0], torch.tensor([[1.0, 0, 0], [1.0, 0, 0]]))
    # The only boundary is between columns 31 and 32: pixel column 31, cell 31 // 4 = 7.
    expected = torch.zeros(16, 24)
    expected[:, 7] = 1
    assert torch.equal(fine[0, 0], expected)


@pytest.mark.parametrize("size", [(96, 128), (180, 240), (45, 61)])
def test_fusion_inputs_lie_on_the_grids_of_the_layer4_and_layer1_taps(size):
    with torch.device("meta"):
        backbone = ResNetBackbone("resnet18")
        taps = backbone(torch.empty(1, 3, *size))
    mask = torch.zeros(size, dtype=torch.long)
    mask[size[0] // 32 * 32:] = 1  # class 1 fills the partial last row of 32 x 32 cells, if any
    coarse, fine = views.fusion_inputs(mask, classes=[1])
    assert coarse.shape[-2:] == taps[3].shape[-2:]
    assert fine.shape[-2:] == taps[0].shape[-2:]
    # A partial cell is the mean of the pixels it covers, not of 32 x 32 with zeros.
    partial = size[0] % 32 != 0
    assert coarse[0, 0, -1].eq(1.0 if partial else 0.0).all()
    assert coarse[0, 0, :-1].eq(0).all()


def test_upsampling_gap_is_zero_where_the_methods_agree_and_measured_in_percent():
    assert views.upsampling_gap(torch.full((1, 1, 3, 4), 2.0), size=(12, 16)) == 0.0
    coarse = torch.zeros(1, 1, 3, 3)
    coarse[0, 0, 1, 1] = 2.0
    up = {m: F.interpolate(coarse, size=(12, 12), mode=m, align_corners=False) for m in ("bilinear", "bicubic")}
    expected = 100 * float((up["bicubic"] - up["bilinear"]).abs().max() / 2.0)
    assert expected > 1
    assert views.upsampling_gap(coarse, size=(12, 12)) == pytest.approx(expected)


def test_fusion_figure_shows_inputs_the_upsampled_coarse_map_and_the_sum():
    coarse, fine = torch.rand(1, 1, 2, 3), torch.rand(1, 1, 8, 12)
    fused = torch.rand(1, 1, 8, 12)
    fig = views.fusion_figure(coarse, fine, fused)
    assert check_readable(fig) >= MIN_TEXT_PX
    axes = fig.axes
    # Every title gives its map's height × width.
    assert [ax.get_title() for ax in axes] == [
        "coarse input: 2 × 3", "upsampled (bilinear): 8 × 12", "fine input: 8 × 12",
        "fused (the sum): 8 × 12"]
    up = F.interpolate(coarse, size=(8, 12), mode="bilinear", align_corners=False)
    for ax, t in zip(axes, (coarse, up, fine, fused)):
        assert np.allclose(image_of(ax), t[0, 0].numpy())
    # The titles of one row stay clear of each other, even at the chapter's grid sizes.
    fig = views.fusion_figure(torch.rand(1, 1, 6, 8), torch.rand(1, 1, 45, 60), torch.rand(1, 1, 45, 60))
    renderer = fig.canvas.get_renderer()
    boxes = [ax.title.get_window_extent(renderer) for ax in fig.axes]
    for left, right in (boxes[:2], boxes[2:]):
        assert left.x1 < right.x0
    assert check_readable(fig) >= MIN_TEXT_PX


def test_kept_shares_count_the_pixels_each_grid_keeps_per_group_of_classes():
    mask = torch.zeros(8, 8, dtype=torch.long)
    mask[:, 1] = 1  # a pole one pixel wide: 8 pixels
    mask[0, 0] = 255  # an ignored pixel, in no group
    labels = mask[None, None].float()
    sampled = [labels, F.interpolate(labels, size=(4, 4), mode="nearest")]
    # At full size every pixel keeps its label; on the 4 x 4 grid, nearest neighbour samples
    # columns 0, 2, 4, 6 and the pole (column 1) is gone.
    assert views.kept_shares(mask, sampled, [1]) == [100.0, 0.0]
    background = views.kept_shares(mask, sampled, [0])
    assert background[0] == 100.0
    # Of the 55 background pixels only (1, 0) is lost: its cell's sample is the ignored corner.
    assert background[1] == pytest.approx(100 * 54 / 55)
    assert all(math.isnan(s) for s in views.kept_shares(mask, sampled, [2]))


def test_kept_sentence_gives_every_stride_of_the_thin_classes_and_the_ends_of_the_rest():
    sentence = views.kept_sentence([43.2, 12.0, 0.4, 0.0], [97.0, 95.0, 90.0, 99.6],
                                   strides=[4, 8, 16, 32], names=["pole", "wire"])
    assert sentence == (
        "Of the pixels of the thin classes (pole, wire), 43% keep their label at 1/4, 12% at "
        "1/8, under 1% at 1/16 and 0% at 1/32; of the other classes' pixels, 97% keep theirs at "
        "1/4 and over 99% at 1/32.")
    nan = float("nan")
    assert views.kept_sentence([nan] * 2, [100.0, 80.0], strides=[4, 32], names=["Pole"]) == (
        "This example has no pixels of the thin classes (Pole); of its other pixels, 100% keep "
        "their label at 1/4 and 80% at 1/32.")
    with pytest.raises(ValueError):
        views.kept_sentence([1.0], [1.0, 2.0], strides=[4, 32], names=["pole"])
    # a share that rises at a coarser stride (one image, a lucky sample) is explained, not left odd
    assert "does not fall stride by stride" not in sentence
    odd = views.kept_sentence([52.0, 32.0, 0.0, 15.0], [96.0, 90.0, 80.0, 72.0], strides=[4, 8, 16, 32],
                              names=["Pole"])
    assert "0% at 1/16 and 15% at 1/32" in odd and "does not fall stride by stride" in odd


# --- recording, pooling reach, the cascade -----------------------------------------------


def test_recording_sees_every_call_in_order_and_then_lets_go():
    a, b = nn.Linear(2, 2), nn.Linear(2, 2)
    x = torch.randn(1, 2)
    with views.recording([a, b]) as calls:
        y = b(a(x))
        a(y)
    assert [c.index for c in calls] == [0, 1, 0]
    assert torch.equal(calls[0].inputs[0], x)
    assert torch.equal(calls[1].output, y)
    b(x)  # the hooks are gone
    assert len(calls) == 3
    assert not a._forward_hooks and not b._forward_hooks


def test_recording_removes_its_hooks_when_the_forward_pass_fails():
    a = nn.Linear(2, 2)
    with pytest.raises(RuntimeError), views.recording([a]):
        a(torch.randn(1, 3))
    assert not a._forward_hooks


def test_crp_reach_widens_by_six_per_block_and_the_figure_says_so():
    point = torch.zeros(1, 1, 41, 41)
    point[0, 0, 20, 20] = 1.0
    crp = ChainedResidualPooling(1, blocks=4)
    with torch.no_grad(), views.recording(crp.convs) as calls:
        for conv in crp.convs:
            conv.weight.fill_(1 / 9)
        total = crp(point)
    outputs = [c.output for c in calls]
    fig = views.crp_reach_figure(outputs, total)
    assert len(fig.axes) == 5  # four blocks and the sum; the sixth panel is removed
    # A 5 x 5 pool adds 4 cells, a 3 x 3 convolution 2: 7, 13, 19, 25.
    assert [ax.get_title() for ax in fig.axes] == [
        "block 1: 7 × 7", "block 2: 13 × 13", "block 3: 19 × 19", "block 4: 25 × 25", "sum of all"]
    assert np.array_equal(image_of(fig.axes[-1]), (total[0, 0] > 0).numpy())
    # Each panel outlines the whole 41 x 41 map, so the squares do not float in white.
    for ax in fig.axes:
        (outline,) = [p for p in ax.patches if p.get_gid() == "map-outline"]
        assert (outline.get_x(), outline.get_y()) == (-0.5, -0.5)
        assert (outline.get_width(), outline.get_height()) == (41, 41)
        assert not outline.get_fill()
    assert check_readable(fig) >= MIN_TEXT_PX


def test_parameter_table_counts_each_part_and_the_whole():
    block = RefineNetBlock([32, 16], crp_blocks=2)
    table = views.parameter_table(block, ["fusion", "crp", "output"], total="whole block")
    assert table.part.tolist() == ["fusion", "crp", "output", "whole block"]
    counts = dict(zip(table.part, table.parameters))
    assert counts["crp"] == 2 * 16 * 16 * 9  # two 3 x 3 convolutions without bias
    assert counts["whole block"] == sum(p.numel() for p in block.parameters())
    assert counts["fusion"] + counts["crp"] + counts["output"] == counts["whole block"]


@pytest.fixture(scope="module")
def model():
    return small_model().eval()


def test_cascade_shapes_and_block_outputs_follow_the_forward_pass(model):
    x = torch.randn(1, 3, 96, 128)
    with torch.no_grad(), views.recording(model.blocks) as calls:
        model(x)
    table = views.cascade_shapes_table(calls, image_size=(96, 128))
    assert table.block.tolist() == ["RefineNet-4", "RefineNet-3", "RefineNet-2", "RefineNet-1"]
    assert table.stride.tolist() == [32, 16, 8, 4]
    assert table["inputs (C, H, W)"].tolist()[:2] == ["(32, 3, 4)", "(32, 3, 4) + (16, 6, 8)"]
    assert table["output (C, H, W)"].tolist()[-1] == "(16, 24, 32)"
    outputs = [c.output for c in calls]
    fig = views.block_outputs_figure(outputs)
    assert check_readable(fig) >= MIN_TEXT_PX
    axes = fig.axes
    assert [ax.get_title() for ax in axes] == [
        "RefineNet-4: 3 × 4", "RefineNet-3: 6 × 8", "RefineNet-2: 12 × 16", "RefineNet-1: 24 × 32"]
    assert np.allclose(image_of(axes[3]), outputs[3][0].abs().mean(0).numpy())


def test_cascade_stride_rounds_to_the_nearest_power_of_two(model):
    with torch.no_grad(), views.recording(model.blocks) as calls:
        model(torch.randn(1, 3, 180, 240))  # layer4: 6 rows, 180 / 6 = 30
    assert views.cascade_shapes_table(calls, image_size=(180, 240)).stride.tolist() == [32, 16, 8, 4]


def test_taps_fused_names_the_taps_of_each_block():
    assert views.taps_fused(cascade_groups(4)) == "{layer4} → {layer3} → {layer2} → {layer1}"
    assert views.taps_fused(cascade_groups(1)) == "{layer4, layer3, layer2, layer1}"
    assert views.taps_fused([[0, 1], [2, 3]]) == "{layer4, layer3} → {layer2, layer1}"


# --- parameters and computation ----------------------------------------------------------


@pytest.fixture(scope="module")
def cost(model):
    macs = refinenet.count_macs(model, (1, 3, 64, 64), by_module=True)
    return model, macs, views.cost_per_component(model, macs)


def test_cost_per_component_accounts_for_every_parameter_and_mac(cost):
    model, macs, table = cost
    assert list(table.columns) == ["group", "component", "parameters (M)", "GMACs", "% parameters", "% MACs"]
    assert len(table) == 5 + 4 + 12 + 1
    assert table.component.tolist()[:5] == ["stem", "layer1", "layer2", "layer3", "layer4"]
    assert table.component.tolist()[5] == "path 4 (layer4)"
    assert table.group.tolist()[9:12] == ["RefineNet-4"] * 3
    total = sum(p.numel() for p in model.parameters())
    assert table["parameters (M)"].sum() * 1e6 == pytest.approx(total)
    assert table["GMACs"].sum() * 1e9 == pytest.approx(macs[""])
    assert table["% parameters"].sum() == pytest.approx(100)
    assert table["% MACs"].sum() == pytest.approx(100)
    row = table.set_index("component").loc["layer2"]
    assert row["parameters (M)"] * 1e6 == sum(p.numel() for p in model.backbones[0].layer2.parameters())
    assert row["GMACs"] * 1e9 == macs["backbones.0.layer2"]


def test_cost_figure_draws_one_bar_per_component_in_both_charts(cost):
    _, _, table = cost
    fig = views.cost_figure(table, macs_size=64, backbone="resnet18")
    left, right = fig.axes
    assert [b.get_width() for b in left.patches] == pytest.approx(table["parameters (M)"].tolist())
    assert [b.get_width() for b in right.patches] == pytest.approx(table["GMACs"].tolist())
    assert right.get_xlabel() == "GMACs at 64 × 64"
    labels = [t.get_text() for t in left.get_yticklabels()]
    assert labels[0] == "stem" and labels[-1] == "classifier · dropout + conv"
    assert left.yaxis_inverted()  # the first component on top
    colours = {matplotlib.colors.to_hex(b.get_facecolor()) for b in left.patches}
    assert len(colours) == 4  # backbone, adaptation, blocks, classifier
    assert "resnet18" in fig._suptitle.get_text()
    assert fig._suptitle.get_text() == views.cost_title(table, backbone="resnet18")
    assert check_readable(fig) >= MIN_TEXT_PX  # component names, shown in the book's column


def test_cost_title_says_which_colours_are_too_small_to_see():
    cost = pd.DataFrame({
        "group": ["backbone", "adaptation", "RefineNet-1", "RefineNet-1", "classifier"],
        "component": ["layer1", "path 1", "fusion", "crp", "dropout + conv"],
        "parameters (M)": [20.0, 2.0, 0.0, 1.0, 0.01],
        "GMACs": [30.0, 40.0, 0.0, 5.0, 0.3],
    })
    title = views.cost_title(cost, backbone="resnet50")
    assert title == ("RefineNet on resnet50: grey backbone, blue adaptation,\n"
                     "green blocks, red classifier (too small to see)")
    # Long enough in one of the two charts (1% of its longest bar) is enough to be seen.
    cost.loc[4, "GMACs"] = 0.4
    assert views.cost_title(cost, backbone="resnet50").endswith("red classifier")


def test_parameter_check_rounds_and_keeps_the_reference_order():
    released = {("resnet50", 2): 90.80, ("resnet50", 4): 99.06}
    ours = {("resnet50", 4): 99.06412, ("resnet50", 2): 90.7949}
    table = views.parameter_check(ours, released)
    assert table.columns.tolist() == ["backbone", "CRP blocks", "ours (M)", "released (M)", "difference (M)"]
    assert table["CRP blocks"].tolist() == [2, 4]
    assert table["ours (M)"].tolist() == [90.79, 99.06]
    assert table["difference (M)"].tolist() == [-0.01, 0.0]
    # a difference that rounds to zero from below shows as 0.0, not -0.0
    tiny = views.parameter_check({("resnet50", 2): 90.7999}, {("resnet50", 2): 90.80})
    assert str(tiny["difference (M)"].iloc[0]) == "0.0"
    assert "-0.0" not in tiny.to_string()


def test_parameter_agreement_says_exactly_when_every_count_matches():
    released = {("resnet50", 2): 90.80, ("resnet50", 4): 99.06}
    same = views.parameter_check({("resnet50", 2): 90.8012, ("resnet50", 4): 99.0581}, released)
    assert views.parameter_agreement(same) == (
        "agree with the released counts exactly (to 0.01 M, their precision)")
    off = views.parameter_check({("resnet50", 2): 90.77, ("resnet50", 4): 99.07}, released)
    assert views.parameter_agreement(off) == (
        "differ from the released counts by at most 0.03 M (those are rounded to 0.01 M)")


# --- gradient flow -----------------------------------------------------------------------


def test_unit_gradient_norms_are_the_norms_of_each_units_gradient():
    backbone = ResNetBackbone("resnet18")
    sum(t.sum() for t in backbone(torch.randn(1, 3, 64, 64))).backward()
    norms = views.unit_gradient_norms(backbone)
    assert list(norms) == [f"layer{s}.{b}" for s in range(1, 5) for b in range(2)]
    grads = torch.cat([p.grad.flatten() for p in backbone.layer3[1].parameters()])
    assert norms["layer3.1"] == pytest.approx(float(grads.double().norm()), rel=1e-4)  # float32 sums


def test_gradient_table_and_verdict():
    with_paths = {"layer1.0": 3.0, "layer4.0": 2.0}
    without = {"layer4.0": 2.0, "layer1.0": 1.5}
    table = views.gradient_table(with_paths, without)
    assert table.columns.tolist() == ["unit", "with long-range paths", "without", "ratio"]
    assert table.without.tolist() == [1.5, 2.0]  # matched by unit, not by position
    assert table.ratio.tolist() == [2.0, 1.0]
    assert views.gradient_verdict(2.0) == "the long-range paths multiply the gradient that reaches layer1 by 2.0"
    small = views.gradient_verdict(1.2)
    assert small.startswith("at initialisation the ResNet's own identity shortcuts already carry most")
    assert small.endswith("the long-range paths add 20% to it")


def test_gradient_figure_plots_both_norms_the_ratio_and_marks_the_stages():
    units = ["layer1.0", "layer1.1", "layer2.0", "layer3.0", "layer4.0", "layer4.1"]
    with_paths = dict(zip(units, [8.0, 6.0, 4.0, 3.0, 2.0, 1.0]))
    without = dict(zip(units, [4.0, 3.0, 2.0, 2.0, 2.0, 1.0]))
    grads = views.gradient_table(with_paths, without)
    fig = views.gradient_figure(grads)
    assert check_readable(fig) >= MIN_TEXT_PX  # ticks, labels and legend
    top, bottom = fig.axes
    assert top.get_yscale() == "log"
    lines = [line for line in top.get_lines() if len(line.get_xdata()) == len(units)]
    assert [list(line.get_ydata()) for line in lines] == [list(with_paths.values()), list(without.values())]
    ratio = [line for line in bottom.get_lines() if len(line.get_xdata()) == len(units)]
    assert list(ratio[0].get_ydata()) == [2.0, 2.0, 2.0, 1.5, 1.0, 1.0]
    assert [t.get_text() for t in bottom.get_xticklabels()] == ["layer1", "layer2", "layer3", "layer4"]
    assert list(bottom.get_xticks()) == [0, 2, 3, 4]
    stage_lines = [line for line in top.get_lines() if list(line.get_xdata()) in ([1.5, 1.5], [2.5, 2.5], [3.5, 3.5])]
    assert len(stage_lines) == 3
