"""Loading a local torchvision-format ResNet state dict."""

import pytest
import torch
from torchvision.models import resnet18, resnet34

from refinenet.models import ResNetBackbone, refinenet


@pytest.fixture
def tv_resnet18(tmp_path):
    torch.manual_seed(123)
    net = resnet18(weights=None).eval()
    # Non-trivial BatchNorm statistics, so that a missed buffer would show.
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    path = tmp_path / "resnet18.pth"
    torch.save(net.state_dict(), path)
    return net, path


def _torchvision_taps(net, x):
    x = net.maxpool(net.relu(net.bn1(net.conv1(x))))
    taps = []
    for layer in (net.layer1, net.layer2, net.layer3, net.layer4):
        x = layer(x)
        taps.append(x)
    return taps


def test_loaded_backbone_reproduces_torchvision_outputs(tv_resnet18):
    net, path = tv_resnet18
    model = refinenet("resnet18", 4, scales=(1.0, 0.5), backbone_weights=path).eval()
    x = torch.randn(2, 3, 70, 90)
    with torch.no_grad():
        expected = _torchvision_taps(net, x)
        for backbone in model.backbones:  # every scale's backbone gets the weights
            for got, want in zip(backbone.eval()(x), expected):
                assert torch.equal(got, want)


def test_state_dict_without_classifier_loads(tv_resnet18, tmp_path):
    net, _ = tv_resnet18
    state = {k: v for k, v in net.state_dict().items() if not k.startswith("fc.")}
    torch.save(state, tmp_path / "nofc.pth")
    backbone = ResNetBackbone("resnet18", weights=tmp_path / "nofc.pth")
    assert torch.equal(backbone.conv1.weight, net.conv1.weight)


def test_wrong_depth_names_unexpected_keys(tmp_path):
    torch.save(resnet34(weights=None).state_dict(), tmp_path / "r34.pth")
    with pytest.raises(ValueError, match=r"unexpected keys: .*layer1\.2\.") as err:
        ResNetBackbone("resnet18", weights=tmp_path / "r34.pth")
    assert "r34.pth" in str(err.value)


def test_missing_and_misshaped_keys_are_named(tv_resnet18, tmp_path):
    net, _ = tv_resnet18
    state = net.state_dict()
    del state["layer3.0.conv1.weight"]
    state["conv1.weight"] = torch.zeros(64, 3, 3, 3)
    torch.save(state, tmp_path / "broken.pth")
    with pytest.raises(ValueError) as err:
        ResNetBackbone("resnet18", weights=tmp_path / "broken.pth")
    msg = str(err.value)
    assert "missing keys: layer3.0.conv1.weight" in msg
    assert "wrong shape keys: conv1.weight: file (64, 3, 3, 3) vs model (64, 3, 7, 7)" in msg


def test_missing_file_and_foreign_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        refinenet("resnet18", 3, backbone_weights=tmp_path / "nope.pth")
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"hello junk\n" * 20)  # torch.load's own error is just "'101'"
    with pytest.raises(ValueError) as err:
        refinenet("resnet18", 3, backbone_weights=junk)
    assert str(err.value) == (
        f"backbone_weights: file '{junk}' is not a torch file (it begins b'hello junk\\nh': "
        "neither a zip archive nor a pickle); expected a torchvision-format resnet18 state dict "
        "(saved with torch.save(model.state_dict(), path))")
    junk.write_bytes(b"")
    with pytest.raises(ValueError, match=f"'{junk}' is empty, not a torch file; expected"):
        refinenet("resnet18", 3, backbone_weights=junk)
    torch.save({"conv1.weight": torch.zeros(1)}, junk)
    junk.write_bytes(junk.read_bytes()[:-40])  # cut short
    with pytest.raises(ValueError, match=f"'{junk}' is a damaged or truncated torch file"):
        refinenet("resnet18", 3, backbone_weights=junk)
    torch.save([1, 2, 3], tmp_path / "list.pth")
    with pytest.raises(ValueError, match="does not hold a state dict"):
        refinenet("resnet18", 3, backbone_weights=tmp_path / "list.pth")
