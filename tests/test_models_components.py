"""The properties the paper states for RefineNet's components (Sec. 3.2, 3.3)."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from refinenet.models import (
    ChainedResidualPooling,
    MultiResolutionFusion,
    RefineNetBlock,
    ResidualConvUnit,
    refinenet,
)


def _zero_residual_branches(module: nn.Module) -> None:
    """Zero each RCU's last conv and every CRP conv: leaves only the main (identity) paths."""
    for m in module.modules():
        if isinstance(m, ResidualConvUnit):
            nn.init.zeros_(m.conv2.weight)
        if isinstance(m, ChainedResidualPooling):
            for conv in m.convs:
                nn.init.zeros_(conv.weight)


def _identity_kernel(conv: nn.Conv2d) -> None:
    with torch.no_grad():
        conv.weight.zero_()
        for c in range(conv.out_channels):
            conv.weight[c, c, 1, 1] = 1.0


def test_rcu_with_zero_last_conv_is_identity():
    rcu = ResidualConvUnit(8)
    x = torch.randn(2, 8, 9, 7)
    assert not torch.allclose(rcu(x), x)
    nn.init.zeros_(rcu.conv2.weight)
    assert torch.equal(rcu(x), x)


def test_rcu_matches_formula():
    rcu = ResidualConvUnit(4)
    x = torch.randn(1, 4, 6, 6)
    expected = x + rcu.conv2(F.relu(rcu.conv1(F.relu(x))))
    torch.testing.assert_close(rcu(x), expected)
    assert rcu.conv1.bias is not None and rcu.conv2.bias is None


def test_single_input_fusion_is_identity():
    fusion = MultiResolutionFusion([16])
    x = torch.randn(2, 16, 5, 6)
    assert fusion([x]) is x
    assert sum(p.numel() for p in fusion.parameters()) == 0


def test_fusion_matches_reference_computation():
    fusion = MultiResolutionFusion([64, 32])
    lo, hi = torch.randn(2, 64, 4, 5), torch.randn(2, 32, 7, 10)
    up = F.interpolate(fusion.convs[0](lo), size=(7, 10), mode="bilinear", align_corners=False)
    expected = up + fusion.convs[1](hi)
    out = fusion([lo, hi])
    assert out.shape == (2, 32, 7, 10)  # smallest width, largest resolution
    torch.testing.assert_close(out, expected)
    assert all(c.bias is None for c in fusion.convs)


@pytest.mark.parametrize("relu", [True, False])
def test_crp_main_path_nonlinearity(relu):
    crp = ChainedResidualPooling(8, blocks=4, relu=relu)
    assert sum(isinstance(m, nn.ReLU) for m in crp.modules()) == int(relu)
    _zero_residual_branches(crp)
    x = torch.randn(2, 8, 6, 6)
    assert torch.equal(crp(x), F.relu(x) if relu else x)


@pytest.mark.parametrize("relu", [True, False])
def test_block_main_path_has_exactly_the_crp_relu(relu):
    """With every residual branch zeroed, a block is fusion followed by the CRP ReLU (or not)."""
    block = RefineNetBlock([16, 8], crp_blocks=2, crp_relu=relu)
    _zero_residual_branches(block)
    a, b = torch.randn(1, 16, 4, 4), torch.randn(1, 8, 8, 8)
    fused = block.fusion([a, b])
    out = block([a, b])
    if relu:
        assert torch.equal(out, F.relu(fused))
        assert not torch.allclose(block([-a, -b]), -out)  # the one non-linearity is there
    else:
        assert torch.equal(out, fused)
        torch.testing.assert_close(block([-a, -b]), -out)  # linear main path


def test_crp_is_chained_not_parallel():
    """Block i pools block i-1's output, so the pooling window grows: x + P(x) + P(P(x))."""
    crp = ChainedResidualPooling(3, blocks=2, relu=True)
    for conv in crp.convs:
        _identity_kernel(conv)
    x = torch.randn(1, 3, 12, 12)
    pool = lambda t: F.max_pool2d(t, 5, stride=1, padding=2)  # noqa: E731
    r = F.relu(x)
    chained = r + pool(r) + pool(pool(r))
    parallel = r + pool(r) + pool(r)
    assert not torch.allclose(chained, parallel)
    torch.testing.assert_close(crp(x), chained)


def test_crp_conv_pool_order():
    crp = ChainedResidualPooling(2, blocks=2, relu=False, order="conv-pool")
    x = torch.randn(1, 2, 10, 10)
    pool = lambda t: F.max_pool2d(t, 5, stride=1, padding=2)  # noqa: E731
    p1 = pool(crp.convs[0](x))
    p2 = pool(crp.convs[1](p1))
    torch.testing.assert_close(crp(x), x + p1 + p2)


def test_block_takes_any_inputs():
    block = RefineNetBlock([64, 32, 48, 40], crp_blocks=1)
    xs = [torch.randn(2, 64, 8, 8), torch.randn(2, 32, 16, 12), torch.randn(2, 48, 5, 7),
          torch.randn(2, 40, 3, 17)]
    assert block(xs).shape == (2, 32, 16, 17)
    single = RefineNetBlock([24], crp_blocks=0)
    assert single(torch.randn(1, 24, 5, 5)).shape == (1, 24, 5, 5)


def _first_conv_grad(model, x, cut=()):
    """Gradient at the stem conv when the inputs of the modules in ``cut`` are detached."""
    handles = [m.register_forward_pre_hook(lambda mod, inp: (inp[0].detach(),)) for m in cut]
    try:
        model.zero_grad()
        model(x).sum().backward()
        return model.backbones[0].conv1.weight.grad
    finally:
        for h in handles:
            h.remove()


def test_gradient_reaches_first_conv_through_long_range_path():
    torch.manual_seed(0)
    model = refinenet("resnet18", 3, widths=(32, 16, 16, 16), dropout=0.0)
    x = torch.randn(2, 3, 64, 64)
    bb = model.backbones[0]
    # Cut the backbone above stage 1: gradient can reach conv1 only through stage 1's own
    # long-range path (adaptation -> RefineNet-1 -> classifier).
    grad = _first_conv_grad(model, x, cut=[bb.layer2])
    assert grad is not None and grad.abs().sum() > 0
    # Control: cutting that path too leaves no gradient, so the check above is not vacuous.
    grad = _first_conv_grad(model, x, cut=[bb.layer2, model.adapters[0][3]])
    assert grad is None or grad.abs().sum() == 0
