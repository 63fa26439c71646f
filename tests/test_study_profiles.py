"""Study profiles: the shipped YAML files and how parameters reach each notebook."""

from __future__ import annotations

from pathlib import Path

import pytest

from refinenet.study.profiles import PROFILE_NAMES, Profile, load_profile
from refinenet.study.runner import RUNNER_PARAMETERS, convert, declared_parameters, find_notebooks

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = find_notebooks(ROOT / "notebooks")


def _declared() -> dict[str, set[str]]:
    return {p.stem: declared_parameters(convert(p)) for p in NOTEBOOKS}


@pytest.mark.parametrize("name", PROFILE_NAMES)
def test_shipped_profile_covers_every_notebook_with_declared_parameters(name):
    profile = load_profile(name)
    declared = _declared()
    assert profile.name == name
    assert set(profile.notebooks) == set(declared), "a profile lists exactly the notebooks of notebooks/"
    for notebook, names in declared.items():
        assert set(RUNNER_PARAMETERS) <= names, f"{notebook} must declare {RUNNER_PARAMETERS}"
        params = profile.parameters_for(notebook, names)  # raises on an undeclared parameter
        assert set(params) <= names
    used = set().union(*declared.values())
    unused = set(profile.common) - used
    assert not unused, f"common parameters no notebook declares (typo?): {unused}"


def test_only_gpu_requires_cuda():
    assert [n for n in PROFILE_NAMES if load_profile(n).requires_cuda] == ["gpu"]


def test_parameters_for_merges_common_and_own():
    profile = Profile(
        name="t",
        common={"dataset": "auto", "image_size": [8, 8], "seeds": [0]},
        notebooks={"01_a": {"image_size": [16, 16], "steps": 3}},
    )
    got = profile.parameters_for("01_a", {"dataset", "image_size", "steps"})
    assert got == {"dataset": "auto", "image_size": [16, 16], "steps": 3}  # no "seeds": undeclared
    with pytest.raises(ValueError, match="steps"):
        profile.parameters_for("01_a", {"dataset", "image_size"})
    with pytest.raises(ValueError, match="no entry for notebook '02_b'"):
        profile.parameters_for("02_b", set())


def test_load_profile_from_a_file_and_its_errors(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("name: mine\ncommon: {dataset: synthetic}\nnotebooks:\n  01_a: {x: 1}\n")
    profile = load_profile(path)
    assert (profile.name, profile.common, profile.notebooks) == ("mine", {"dataset": "synthetic"}, {"01_a": {"x": 1}})

    path.write_text("name: mine\nnotebok: {}\n")
    with pytest.raises(ValueError, match="unknown keys"):
        load_profile(path)
    path.write_text("name: ../escape\n")
    with pytest.raises(ValueError, match="simple word"):
        load_profile(path)
    path.write_text("name: smoke\n")
    with pytest.raises(ValueError, match="reserved"):
        load_profile(path)
    with pytest.raises(ValueError, match="unknown profile 'huge'"):
        load_profile("huge")


def test_notebook_defaults_are_the_cpu_profile():
    """Opened in Jupyter and run with its defaults, a notebook shows the cpu profile's page:
    every value of its parameters cell is what the runner gives it for that profile."""
    import json

    from refinenet.study.plan import declared_values

    profile = load_profile("cpu")
    for path in find_notebooks(ROOT / "notebooks"):
        defaults = declared_values(path)
        assert defaults["profile"] == "cpu", path.name
        given = profile.parameters_for(path.stem, set(defaults))
        for key, value in given.items():
            assert json.dumps(defaults[key]) == json.dumps(value), (path.name, key, defaults[key], value)


def test_the_intro_states_the_cpu_profiles_network_and_image_size():
    """The intro's list of departures names the cpu profile's backbone, decoder widths and
    image size as the profile sets them."""
    intro = (ROOT / "book" / "intro.md").read_text()
    train = load_profile("cpu").study.train
    backbone = train["model"]["backbone"]  # e.g. resnet18 -> ResNet-18
    assert f"ResNet-{backbone.removeprefix('resnet')}" in intro
    assert "widths " + ", ".join(map(str, train["model"]["widths"])) in intro
    assert "{} × {}".format(*train["data"]["size"]) in intro


@pytest.mark.parametrize("name", PROFILE_NAMES)
def test_every_arm_of_every_notebook_is_a_valid_config_on_its_profile(name):
    """The arms at the chosen rate are built only once the sweep is in the ledger: a
    contradictory override (say, a weight power without weights) must fail here, not stop a
    study half-way."""
    from refinenet.study.runner import notebook_wants

    profile = load_profile(name)
    design = profile.study
    base = design.base("synthetic", "cpu")
    arms = {arm: overrides for wants in notebook_wants(profile, ROOT).values()
            for arm, overrides in (wants.get("arms") or {}).items()}
    assert "plain cross-entropy" in arms and "N = 0" in arms
    for arm, overrides in arms.items():
        for lr in design.lrs:
            config = design.config(base, overrides, lr=lr, seed=0)  # raises on a bad combination
            assert config.seed == 0
