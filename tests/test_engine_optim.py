"""Optimiser groups, the lr schedule, the loss, and multi-scale / flip inference."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from refinenet.engine import TrainConfig, predict_labels, predict_probabilities
from refinenet.engine.inference import usable_scales
from refinenet.data.transforms import resize_mask
from refinenet.engine.optim import LrFactor, build_optimizer, build_scheduler, segmentation_loss
from refinenet.models import refinenet


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py


@pytest.fixture(scope="module")
def tiny_model(one_thread):
    torch.manual_seed(0)
    return refinenet("resnet18", 3, widths=(16, 8, 8, 8)).eval()


def test_poly_schedule_with_warmup():
    s = TrainConfig().replace(["schedule.steps=100", "schedule.warmup_steps=10", "schedule.warmup_factor=0.1"]).schedule
    f = LrFactor(s)
    assert f(0) == pytest.approx(0.1 * 1.0)
    assert f(5) == pytest.approx((0.1 + 0.9 * 0.5) * (1 - 5 / 100) ** 0.9)
    assert f(10) == pytest.approx((1 - 10 / 100) ** 0.9)
    assert f(99) == pytest.approx(0.01**0.9)
    step = TrainConfig().replace(["schedule.name=step", "schedule.milestones=[3, 6]", "schedule.warmup_steps=0"]).schedule
    assert [LrFactor(step)(i) for i in (0, 3, 6)] == pytest.approx([1.0, 0.1, 0.01])
    const = TrainConfig().replace(["schedule.name=constant", "schedule.warmup_steps=0"]).schedule
    assert LrFactor(const)(1999) == 1.0


def test_cosine_schedule_halves_at_the_middle_and_ends_at_zero():
    s = TrainConfig().replace(["schedule.name=cosine", "schedule.steps=100", "schedule.warmup_steps=10"]).schedule
    f = LrFactor(s)
    assert f(0) == pytest.approx(0.1 * 1.0)  # the same warm-up as poly
    assert f(10) == pytest.approx((1 + math.cos(math.pi * 0.1)) / 2)
    assert f(50) == pytest.approx(0.5)
    assert f(100) == pytest.approx(0.0, abs=1e-12)
    assert all(f(i) >= f(i + 1) for i in range(10, 100))


def test_scheduler_drives_both_groups_with_backbone_multiplier(tiny_model):
    cfg = TrainConfig().replace(["optim.lr=0.1", "optim.backbone_lr_mult=0.1", "schedule.warmup_steps=0", "schedule.steps=10"])
    opt = build_optimizer(tiny_model, cfg.optim, pretrained=False, fused=False)
    sched = build_scheduler(opt, cfg.schedule)
    backbone, head = opt.param_groups
    assert backbone["name"] == "backbone" and head["name"] == "head"
    assert backbone["lr"] == pytest.approx(0.01) and head["lr"] == pytest.approx(0.1)
    n_backbone = sum(p.numel() for p in backbone["params"])
    assert n_backbone == sum(p.numel() for p in tiny_model.backbones.parameters())
    assert n_backbone + sum(p.numel() for p in head["params"]) == sum(p.numel() for p in tiny_model.parameters())
    opt.step()
    sched.step()
    assert head["lr"] == pytest.approx(0.1 * 0.9**0.9) and backbone["lr"] == pytest.approx(0.01 * 0.9**0.9)
    assert isinstance(opt, torch.optim.SGD) and opt.defaults["momentum"] == 0.9


def test_backbone_multiplier_auto_depends_on_pretraining(tiny_model):
    optim = TrainConfig().optim
    scratch = build_optimizer(tiny_model, optim, pretrained=False, fused=False)
    pretrained = build_optimizer(tiny_model, optim, pretrained=True, fused=False)
    assert scratch.param_groups[0]["lr"] == pytest.approx(optim.lr)
    assert pretrained.param_groups[0]["lr"] == pytest.approx(0.1 * optim.lr)
    adamw = build_optimizer(tiny_model, TrainConfig().replace(["optim.name=adamw"]).optim, pretrained=False, fused=False)
    assert isinstance(adamw, torch.optim.AdamW)


def test_quarter_labels_sample_cell_centres():
    target = torch.arange(64).reshape(1, 8, 8)
    small = resize_mask(target, (2, 2))
    # centre of each 4x4 cell: rows/cols 2 and 6
    assert small.tolist() == [[[target[0, 2, 2].item(), target[0, 2, 6].item()], [target[0, 6, 2].item(), target[0, 6, 6].item()]]]
    odd = resize_mask(torch.zeros(1, 37, 50, dtype=torch.long), (10, 13))
    assert odd.shape == (1, 10, 13) and odd.dtype == torch.long


def test_loss_ignores_labels_and_never_divides_by_zero():
    logits = torch.randn(2, 3, 4, 4, requires_grad=True)
    target = torch.randint(0, 3, (2, 4, 4))
    target[0, 0] = 255
    keep = target != 255
    expected = nn.functional.cross_entropy(logits.detach(), target, ignore_index=255)
    assert float(segmentation_loss(logits, target, 255).detach()) == pytest.approx(float(expected), rel=1e-6)
    assert int(keep.sum()) < target.numel()
    empty = segmentation_loss(logits, torch.full((2, 4, 4), 255), 255)
    assert float(empty.detach()) == 0.0
    empty.backward()  # still differentiable
    # at 1/4: labels are downsampled to the logits
    q = segmentation_loss(torch.randn(2, 3, 4, 4), torch.randint(0, 3, (2, 16, 16)), 255)
    assert torch.isfinite(q)


def test_usable_scales_skip_and_clamp():
    sizes, skipped = usable_scales(37, 53, (0.4, 0.6, 0.8, 1.0, 1.2))
    assert sizes == [(37, 53), (44, 64)] and skipped == 3
    sizes, skipped = usable_scales(20, 40, (1.0,))
    assert sizes == [(32, 64)] and skipped == 1
    assert usable_scales(360, 480, (0.4, 1.0))[1] == 0


def test_single_scale_equals_plain_argmax(tiny_model):
    x = torch.randn(2, 3, 64, 80)
    labels, skipped = predict_labels(tiny_model, x)
    with torch.no_grad():
        assert torch.equal(labels, tiny_model(x).argmax(1))
    probs, _ = predict_probabilities(tiny_model, x)
    assert probs.shape == (2, 3, 64, 80)
    assert torch.allclose(probs.sum(1), torch.ones(2, 64, 80), atol=1e-5)
    assert skipped == 0


class _PixelModel(nn.Module):
    """A per-pixel classifier (1x1 conv): equivariant to flips, so flip averaging changes nothing."""

    num_classes = 3

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 1)

    def forward(self, x):
        return self.conv(x)


class _LeftBiased(_PixelModel):
    """Adds a bias growing from left to right: not flip-equivariant."""

    def forward(self, x):
        ramp = torch.linspace(0, 5, x.shape[-1]).view(1, 1, 1, -1)
        return self.conv(x) + torch.cat([ramp, -ramp, 0 * ramp], 1)


def test_flip_averaging():
    torch.manual_seed(0)
    x = torch.randn(1, 3, 40, 48)
    pixel = _PixelModel().eval()
    p0, _ = predict_probabilities(pixel, x)
    p1, _ = predict_probabilities(pixel, x, flip=True)
    assert torch.allclose(p0, p1, atol=1e-6)
    biased = _LeftBiased().eval()
    b0, _ = predict_probabilities(biased, x)
    b1, _ = predict_probabilities(biased, x, flip=True)
    # flipped image through the biased model, flipped back, averaged in
    with torch.no_grad():
        flipped = biased(x.flip(-1)).softmax(1).flip(-1)
    assert torch.allclose(b1, (b0 + flipped) / 2, atol=1e-6)


def test_multiscale_any_size(tiny_model):
    x = torch.randn(1, 3, 37, 53)
    labels, skipped = predict_labels(tiny_model, x, scales=(0.4, 0.6, 0.8, 1.0, 1.2), flip=True)
    assert labels.shape == (1, 37, 53) and skipped == 3
    labels, skipped = predict_labels(tiny_model, torch.randn(1, 3, 20, 30))
    assert labels.shape == (1, 20, 30) and skipped == 1


def test_cpu_auto_precision_follows_native_bf16(monkeypatch):
    """auto on CPU: bf16 + channels_last together where bf16 is native, else plain fp32."""
    from refinenet.engine import precision as prec
    from refinenet.engine.config import PrecisionSection

    cpu = torch.device("cpu")
    for native, amp, cl in (("1", "bf16", True), ("0", "none", False)):
        monkeypatch.setenv("REFINENET_CPU_BF16", native)
        prec.cpu_has_native_bf16.cache_clear()
        p = prec.resolve_precision(PrecisionSection(), cpu)
        assert (p.amp, p.channels_last, p.compile, p.fused_optimizer) == (amp, cl, False, False)
        # An explicit choice always wins over the detection.
        p = prec.resolve_precision(PrecisionSection(amp="none", channels_last=False), cpu)
        assert (p.amp, p.channels_last) == ("none", False)
    prec.cpu_has_native_bf16.cache_clear()
