"""One vocabulary: every model switch is declared once, in RefineNetConfig, and reaches the
builder, the training YAML and the command line from there."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import pytest
import torch

from refinenet.cli import build_parser
from refinenet.engine import TrainConfig
from refinenet.models import RefineNetConfig, build_from_config, refinenet

ROOT = Path(__file__).resolve().parents[1]
FIELDS = [f.name for f in dataclasses.fields(RefineNetConfig)]
W = (16, 8, 8, 8)

# A non-default value for every field (a new field must be added here, and is then checked
# against the builder, the training config and the command line).
NON_DEFAULT = {
    "backbone": "resnet18",
    "num_classes": 5,
    "cascade": 2,
    "refinement": False,
    "scales": (1.2, 0.6),
    "widths": W,
    "crp_blocks": 4,
    "crp_relu": False,
    "crp_order": "conv-pool",
    "dropout": 0.25,
    "output": "quarter",
    "backbone_weights": "weights.pth",
}


def test_every_field_has_a_docstring_and_a_test_value():
    assert sorted(NON_DEFAULT) == sorted(FIELDS)
    for name in FIELDS:
        assert len(RefineNetConfig.field_help(name)) > 20, name
        assert NON_DEFAULT[name] != getattr(RefineNetConfig(), name), name


@pytest.mark.parametrize("name", FIELDS)
def test_every_field_reaches_builder_yaml_and_cli(name, monkeypatch):
    value = NON_DEFAULT[name]
    base = {"backbone": "resnet18", "num_classes": 3, "widths": W}
    # builder: refinenet(<field>=...) (the network itself is not built: the config is the point)
    monkeypatch.setattr(sys.modules["refinenet.models.refinenet"], "RefineNet", lambda config: config)
    assert getattr(refinenet(**(base | {name: value})), name) == value
    # training YAML: model.<field>
    text = "[" + ", ".join(map(str, value)) + "]" if isinstance(value, tuple) else str(value).lower() if isinstance(value, bool) else str(value)
    cfg = TrainConfig().replace([f"model.{name}={text}"])
    assert getattr(cfg.model, name) == value
    # command line: refinenet model --<field>
    flag = "--" + name.replace("_", "-")
    if isinstance(value, bool):
        cli = ["--no-" + flag[2:]] if value is False else [flag]
    else:
        cli = [flag, ",".join(map(str, value)) if isinstance(value, tuple) else str(value)]
    args = build_parser().parse_args(["model", *cli])
    assert getattr(args, name) == value


def _code_words(path) -> set[str]:
    """Identifiers, keyword names and string constants of a module's code (not its
    docstrings or comments)."""
    import ast

    tree = ast.parse(path.read_text())
    docstrings = {
        id(node.body[0].value) for node in ast.walk(tree)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
        and node.body and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)
    }
    words = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            words.add(node.id)
        elif isinstance(node, ast.Attribute):
            words.add(node.attr)
        elif isinstance(node, (ast.keyword, ast.arg)) and node.arg:
            words.add(node.arg)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            words.update(node.value.replace(".", " ").split())
    return words


def test_switches_are_spelled_only_in_the_model_config():
    # crp_relu stands for every switch: declared in models/config.py, used by the block that
    # implements it and by the model that passes it on, and named in no other code.
    files = {p.relative_to(ROOT).as_posix() for p in (ROOT / "refinenet").rglob("*.py") if "crp_relu" in _code_words(p)}
    assert files <= {"refinenet/models/config.py", "refinenet/models/blocks.py", "refinenet/models/refinenet.py"}, files
    for path in ("refinenet/models/cli.py", "refinenet/engine/config.py", "refinenet/engine/trainer.py"):
        assert "crp_relu" not in (ROOT / path).read_text(), path


def test_readme_examples_build():
    model = refinenet("resnet18", num_classes=11, crp_blocks=4, widths=W)
    assert model.num_classes == 11 and model.config.crp_blocks == 4
    for switch in ({"scales": (1.2, 0.6)}, {"crp_relu": False}, {"crp_order": "conv-pool"}, {"output": "quarter"}):
        assert getattr(refinenet("resnet18", 3, widths=W, **switch).config, *switch) == next(iter(switch.values()))
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert refinenet("resnet18", 3, widths=W, output="quarter").eval()(x).shape == (1, 3, 16, 16)


def test_weights_path_is_initialisation_not_architecture(tmp_path):
    path = tmp_path / "r18.pth"
    torch.save(refinenet("resnet18", 3, widths=W).backbones[0].state_dict(), path)
    model = refinenet("resnet18", 3, widths=W, backbone_weights=path)
    assert model.config.backbone_weights == str(path)
    arch = model.config.to_dict()
    assert "backbone_weights" not in arch and arch["scales"] == [1.0] and arch["num_classes"] == 3
    # a checkpoint's model_config (this one, or one saved before the field existed) rebuilds
    rebuilt = build_from_config(arch)
    assert rebuilt.config == dataclasses.replace(model.config, backbone_weights=None)
    old = {k: v for k, v in arch.items() if k != "output"}
    assert build_from_config(old).config.output == "full"


def test_config_is_frozen_and_hashable():
    config = RefineNetConfig(num_classes=3)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.crp_relu = False
    assert hash(config) == hash(RefineNetConfig(num_classes=3))
    with pytest.raises(ValueError, match="crp_blocks=-1"):
        dataclasses.replace(config, crp_blocks=-1)
