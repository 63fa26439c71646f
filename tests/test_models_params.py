"""Parameter counts and MACs against the figures checked from the released model (DESIGN.md)."""

import pytest
import torch

from refinenet.models import refinenet
from refinenet.summary import count_macs


def _counts(model):
    total = sum(p.numel() for p in model.parameters())
    backbone = sum(p.numel() for p in model.backbones.parameters())
    return total, backbone, total - backbone


def _meta_model(backbone, **kwargs):
    # Built on the meta device: the counts are the same and nothing is initialised.
    with torch.device("meta"):
        return refinenet(backbone, 21, **kwargs)


@pytest.mark.parametrize(
    "backbone, crp_blocks, total_m, backbone_m",
    [
        ("resnet101", 4, 118.05, 42.50),
        ("resnet101", 2, 109.79, 42.50),
        ("resnet50", 4, 99.06, 23.51),
        ("resnet50", 2, 90.80, 23.51),
        ("resnet152", 4, 133.70, 58.14),
        ("resnet152", 2, 125.44, 58.14),
    ],
)
def test_parameter_counts_match_released_model(backbone, crp_blocks, total_m, backbone_m):
    total, bb, decoder = _counts(_meta_model(backbone, crp_blocks=crp_blocks))
    assert round(total / 1e6, 2) == total_m
    assert round(bb / 1e6, 2) == backbone_m
    # The decoder does not depend on the ResNet depth (all have 256..2048-wide stages).
    assert round(decoder / 1e6, 2) == {4: 75.55, 2: 67.29}[crp_blocks]


def test_decoder_parameters_by_hand():
    """The decoder of the standard model, counted conv by conv (3x3 kernels, see blocks.py)."""
    k = 9
    rcu = lambda c: 2 * c * c * k + c  # noqa: E731  (first conv has a bias)
    adapt = 2048 * 512 * k + 2 * rcu(512) + sum(c * 256 * k + 2 * rcu(256) for c in (1024, 512, 256))
    crp = lambda c, n: n * c * c * k  # noqa: E731
    block4 = crp(512, 4) + 3 * rcu(512)
    block3 = (512 + 256) * 256 * k + crp(256, 4) + 3 * rcu(256)
    block21 = 2 * (2 * 256 * 256 * k + crp(256, 4) + 3 * rcu(256))
    classifier = 256 * 21 * k + 21
    expected = adapt + block4 + block3 + block21 + classifier
    assert _counts(_meta_model("resnet101", crp_blocks=4))[2] == expected


def test_two_scale_model_doubles_backbone_and_adaptation():
    one = _meta_model("resnet50", crp_blocks=2)
    two = _meta_model("resnet50", crp_blocks=2, scales=(1.2, 0.6))
    assert len(two.backbones) == 2
    assert _counts(two)[1] == 2 * _counts(one)[1]
    adapters = lambda m: sum(p.numel() for p in m.adapters.parameters())  # noqa: E731
    assert adapters(two) == 2 * adapters(one)


def test_basicblock_backbones_have_their_own_widths():
    model = _meta_model("resnet18")
    assert model.backbones[0].channels == (64, 128, 256, 512)
    first_convs = [a[-3].in_channels for a in model.adapters[0]]  # conv before the 2 RCUs
    assert first_convs == [512, 256, 128, 64]


def test_macs_at_512():
    macs = count_macs(refinenet("resnet101", 21, crp_blocks=4), (1, 3, 512, 512))
    assert 262e9 < macs < 264e9  # DESIGN.md: about 263 GMACs


def test_macs_by_module_add_up():
    model = refinenet("resnet18", 5, widths=(64, 32, 32, 32))
    per_module = count_macs(model, (1, 3, 64, 64), by_module=True)
    total = per_module[""]
    assert total == count_macs(model, (1, 3, 64, 64))
    parts = ["backbones", "adapters", "blocks", "classifier"]
    assert sum(per_module[p] for p in parts) == total
