"""Every variant the paper discusses builds, runs at odd sizes, and can be trained."""

import itertools

import pytest
import torch
import torch.nn.functional as F

from refinenet.models import refinenet

NUM_CLASSES = 5
# Narrow decoder widths keep the 72 cases fast on 2 CPU cores; the wiring does not depend on
# the widths, and test_standard_widths covers the released ones.
NARROW = (64, 32, 32, 32)

VARIANTS = list(
    itertools.product(
        ["resnet18", "resnet50"], [1, 2, 4], [(1.0,), (1.2, 0.6)], [True, False], [0, 2, 4]
    )
)


def _id(v):
    backbone, cascade, scales, relu, blocks = v
    return f"{backbone}-c{cascade}-s{len(scales)}-relu{int(relu)}-crp{blocks}"


def _sgd_step_lowers_loss(model, size=(64, 64), lr=1e-3):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 3, *size, generator=g)
    y = torch.randint(0, NUM_CLASSES, (2, *size), generator=g)
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    model.train()
    loss0 = F.cross_entropy(model(x), y)
    loss0.backward()
    opt.step()
    with torch.no_grad():
        loss1 = F.cross_entropy(model(x), y)
    return loss0.item(), loss1.item()


@pytest.mark.parametrize("variant", VARIANTS, ids=_id)
def test_variant_shapes_and_one_sgd_step(variant):
    backbone, cascade, scales, crp_relu, crp_blocks = variant
    torch.manual_seed(0)
    # dropout=0 so that the loss before and after the step are computed by the same function.
    model = refinenet(
        backbone, NUM_CLASSES, cascade=cascade, scales=scales, crp_relu=crp_relu,
        crp_blocks=crp_blocks, widths=NARROW, dropout=0.0,
    )
    assert len(model.blocks) == cascade
    assert len(model.backbones) == len(scales)
    model.eval()
    with torch.no_grad():
        for size in [(97, 131), (64, 64)]:
            out = model(torch.randn(1, 3, *size))
            assert out.shape == (1, NUM_CLASSES, *size)
            assert torch.isfinite(out).all()
    loss0, loss1 = _sgd_step_lowers_loss(model)
    assert loss1 < loss0


@pytest.mark.parametrize("scales", [(1.0,), (1.2, 0.6)])
@pytest.mark.parametrize("size", [(97, 131), (64, 64), (32, 45)])
def test_quarter_output_size(scales, size):
    model = refinenet("resnet18", 3, scales=scales, widths=NARROW, output="quarter").eval()
    with torch.no_grad():
        out = model(torch.randn(1, 3, *size))
    assert out.shape == (1, 3, -(-size[0] // 4), -(-size[1] // 4))


def test_standard_widths():
    model = refinenet("resnet50", NUM_CLASSES, dropout=0.0)
    model.eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, 97, 131)).shape == (1, NUM_CLASSES, 97, 131)
    loss0, loss1 = _sgd_step_lowers_loss(model)
    assert loss1 < loss0


def test_block_inputs_follow_cascade_groups():
    """RefineNet-3 of the 2-scale, 4-cascade model fuses three inputs (paper Sec. 4.3)."""
    model = refinenet("resnet18", 3, scales=(1.2, 0.6), widths=NARROW)
    assert [len(b.fusion.in_channels) for b in model.blocks] == [2, 3, 3, 3]
    model = refinenet("resnet18", 3, cascade=2, widths=NARROW)
    assert [b.fusion.in_channels for b in model.blocks] == [(64, 32), (32, 32, 32)]
    model = refinenet("resnet18", 3, cascade=1, widths=NARROW)
    assert [b.fusion.in_channels for b in model.blocks] == [(64, 32, 32, 32)]


def test_train_mode_dropout_and_eval_mode_determinism():
    model = refinenet("resnet18", 3, widths=NARROW, dropout=0.5)
    x = torch.randn(1, 3, 64, 64)
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(x), model(x))
    n_dropout = sum(isinstance(m, torch.nn.Dropout) for m in model.modules())
    assert n_dropout == 3  # two deepest taps + classifier


@pytest.mark.parametrize("output", ["full", "quarter"])
def test_no_refinement_is_a_classifier_on_the_deepest_stage_upsampled(output):
    """The FCN-32s reference arm: backbone, 1x1 classifier on layer4, bilinear upsampling."""
    torch.manual_seed(0)
    model = refinenet("resnet18", NUM_CLASSES, refinement=False, output=output, dropout=0.0).eval()
    backbone = sum(p.numel() for p in model.backbones.parameters())
    assert sum(p.numel() for p in model.parameters()) == backbone + 512 * NUM_CLASSES + NUM_CLASSES
    x = torch.randn(2, 3, 97, 131)
    with torch.no_grad():
        out = model(x)
        deep = model.classifier(model.backbones[0](x)[-1])  # (2, 5, 4, 5): stride 32
        size = (97, 131) if output == "full" else (25, 33)
        assert out.shape == (2, NUM_CLASSES, *size) and deep.shape[-2:] == (4, 5)
        assert torch.allclose(out, F.interpolate(deep, size=size, mode="bilinear", align_corners=False))
    if output == "full":
        loss0, loss1 = _sgd_step_lowers_loss(model)
        assert loss1 < loss0
    with pytest.raises(ValueError, match="single scale with refinement=false"):
        refinenet("resnet18", NUM_CLASSES, refinement=False, scales=(1.2, 0.6))


def test_capacity_control_two_backbones_at_one_scale():
    """Two backbones on the same input (scales 1, 1): the 2-scale model's parameters, one scale."""
    two_scale = refinenet("resnet18", NUM_CLASSES, scales=(1.2, 0.6), widths=NARROW)
    control = refinenet("resnet18", NUM_CLASSES, scales=(1.0, 1.0), widths=NARROW)
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(control) == count(two_scale) and len(control.backbones) == 2
    with torch.no_grad():
        assert control.eval()(torch.randn(1, 3, 64, 64)).shape == (1, NUM_CLASSES, 64, 64)
