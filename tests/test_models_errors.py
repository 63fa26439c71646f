"""Bad arguments raise ValueError saying what is allowed."""

import pytest
import torch

from refinenet.models import refinenet

W = (32, 16, 16, 16)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"cascade": 3}, r"cascade must be one of \(1, 2, 4\)"),
        ({"widths": (512, -256, 256, 256)}, "widths must be four positive ints"),
        ({"widths": (512, 256)}, "widths must be four positive ints"),
        ({"backbone": "vgg16"}, r"unknown backbone 'vgg16'; choose one of \['resnet101'"),
        ({"crp_blocks": -1}, r"crp_blocks must be an int >= 0"),
        ({"crp_order": "pool-pool"}, "crp_order must be one of"),
        ({"scales": ()}, "scales must be a non-empty sequence of positive"),
        ({"scales": (1.0, -0.5)}, "scales must be a non-empty sequence of positive"),
        ({"dropout": 1.0}, r"dropout must be a probability in \[0, 1\)"),
        ({"output": "half"}, "output must be one of"),
        ({"num_classes": 0}, "num_classes must be a positive int"),
        ({"crp_relu": "yes"}, "crp_relu must be True or False"),
    ],
)
def test_bad_arguments(kwargs, message):
    args = {"backbone": "resnet18", "num_classes": 3, "widths": W} | kwargs
    with pytest.raises(ValueError, match=message):
        refinenet(**args)


@pytest.fixture(scope="module")
def model():
    return refinenet("resnet18", 3, widths=W).eval()


@pytest.mark.parametrize(
    "shape, message",
    [
        ((1, 3, 31, 64), r"31x64 px; RefineNet needs at least 32x32"),
        ((1, 3, 64, 16), r"64x16 px; RefineNet needs at least 32x32"),
        ((1, 1, 64, 64), "expects 3-channel RGB input .* got 1 channels"),
        ((1, 4, 64, 64), "got 4 channels"),
        ((3, 64, 64), r"expects a batch of images \(N, 3, H, W\), got \(3, 64, 64\)"),
    ],
)
def test_bad_inputs(model, shape, message):
    with pytest.raises(ValueError, match=message):
        model(torch.randn(*shape))


def test_smallest_input_runs(model):
    with torch.no_grad():
        assert model(torch.randn(1, 3, 32, 32)).shape == (1, 3, 32, 32)
