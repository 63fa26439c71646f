"""Bad arguments raise ValueError saying what is allowed."""

import pytest
import torch

from refinenet.models import RefineNet, RefineNetConfig, refinenet

W = (32, 16, 16, 16)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"cascade": 3}, r"cascade=3 \(int\): expected 1 or 2 or 4"),
        ({"cascade": 2.0}, r"cascade=2.0 \(float\): expected 1 or 2 or 4"),
        ({"widths": (512, -256, 256, 256)}, "widths=.*: expected a list of 4 ints > 0"),
        ({"widths": (512, 256)}, "widths=.*: expected a list of 4 ints > 0"),
        ({"backbone": "vgg16"}, r"backbone='vgg16' \(str\): expected 'resnet18' or .*'resnet101'"),
        ({"crp_blocks": -1}, r"crp_blocks=-1 \(int\): expected an int >= 0"),
        ({"crp_blocks": 1.5}, "crp_blocks=1.5 .*expected an int"),
        ({"crp_order": "pool-pool"}, "crp_order='pool-pool' .*expected 'pool-conv' or 'conv-pool'"),
        ({"scales": ()}, "scales=.*expected a non-empty list of floats > 0"),
        ({"scales": (1.0, -0.5)}, "scales=.*expected a non-empty list of floats > 0"),
        ({"scales": (float("inf"),)}, "scales=.*expected a non-empty list of floats > 0"),
        ({"dropout": 1.0}, r"dropout=1.0 \(float\): expected a float >= 0 and < 1"),
        ({"output": "half"}, "output='half' .*expected 'full' or 'quarter'"),
        ({"num_classes": 0}, "num_classes=0 .*expected an int > 0"),
        ({"crp_relu": "yes"}, "crp_relu='yes' .*expected true/false"),
        ({"crp_relu": 1}, "crp_relu=1 .*expected true/false"),
    ],
)
def test_bad_arguments(kwargs, message):
    args = {"backbone": "resnet18", "num_classes": 3, "widths": W} | kwargs
    with pytest.raises(ValueError, match=message) as info:
        refinenet(**args)
    assert type(info.value) is ValueError and info.value.__cause__ is None  # not pydantic's


def test_unknown_keyword_is_a_type_error_with_a_hint():
    with pytest.raises(TypeError, match="unexpected keyword argument 'crp_rlu'; did you mean 'crp_relu'"):
        refinenet("resnet18", 3, crp_rlu=False)
    with pytest.raises(TypeError, match="unknown RefineNetConfig field 'cascde'; did you mean 'cascade'"):
        RefineNetConfig(cascde=2)


def test_num_classes_from_the_dataset_must_be_set_before_building():
    config = RefineNetConfig(backbone="resnet18", widths=W)
    assert config.num_classes is None
    with pytest.raises(ValueError, match="num_classes is None"):
        RefineNet(config)
    assert RefineNet(config.with_classes(3)).num_classes == 3
    with pytest.raises(ValueError, match="model.num_classes=3 but the data has 4 classes"):
        config.with_classes(3).with_classes(4)


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
