"""Study profiles: how big each notebook runs (``refinenet/study/profiles/*.yaml``).

A profile is a YAML file with a name, a one-line description (what it runs, a phrase that follows
"The profile runs" on the book's provenance page), whether it needs a CUDA device,
``common`` parameters (every notebook that declares one in its ``parameters`` cell receives
it), the ``study`` design (a partial training config plus its grids, see
:mod:`refinenet.study.design`) and one entry per notebook with that notebook's own parameters::

    name: smoke
    description: every notebook end to end in minutes on 2 CPU cores (CI)
    requires_cuda: false
    common:
      dataset: auto
    study:
      train: {model: {backbone: resnet18}, schedule: {steps: 4}}
      seeds: [0, 1, 2]
      lrs: [0.01, 0.05]
    notebooks:
      01_architecture:
        summary_size: 128

The profile must list every notebook in ``notebooks/`` (so that no notebook silently runs at
its full-size defaults) and a notebook's own parameters must exist in its ``parameters`` cell.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import yaml

from .design import StudyDesign

__all__ = ["PROFILE_NAMES", "Profile", "load_profile", "profile_path", "results_name"]

# The shipped profiles, least to most complete (the book shows the most complete one present).
PROFILE_NAMES = ("smoke", "cpu", "gpu")

_KEYS = {"name", "description", "requires_cuda", "common", "study", "notebooks"}


@dataclass(frozen=True)
class Profile:
    """A parsed profile (see the module docstring for the file format)."""

    name: str
    description: str = ""
    requires_cuda: bool = False
    common: dict = field(default_factory=dict)
    notebooks: dict = field(default_factory=dict)
    path: str = ""
    study: StudyDesign = field(default_factory=StudyDesign)

    @property
    def ref(self) -> str:
        """What :func:`load_profile` takes to load this profile again (name or path)."""
        return self.name if self.name in PROFILE_NAMES else self.path

    def parameters_for(self, notebook: str, declared: set[str] | None = None) -> dict:
        """The parameters that ``notebook`` receives from this profile.

        ``common`` parameters are passed only when the notebook declares them (``declared``:
        the names in its ``parameters`` cell; ``None`` passes them all); the notebook's own
        entry overrides them and must name declared parameters only.
        """
        if notebook not in self.notebooks:
            raise ValueError(
                f"profile {self.name!r} has no entry for notebook {notebook!r}; add one under "
                f"'notebooks:' in {self.path or self.name + '.yaml'}"
            )
        own = dict(self.notebooks[notebook] or {})
        if declared is not None:
            unknown = sorted(set(own) - declared)
            if unknown:
                raise ValueError(
                    f"profile {self.name!r} sets {', '.join(unknown)} for {notebook}, which its "
                    f"parameters cell does not declare (declared: {', '.join(sorted(declared)) or 'none'})"
                )
        common = {k: v for k, v in self.common.items() if declared is None or k in declared}
        return {**common, **own}


def default_profile() -> str:
    """The profile for this machine: ``gpu`` with a CUDA device, else ``cpu``."""
    import torch

    return "gpu" if torch.cuda.is_available() else "cpu"


def profile_path(name_or_path: str | os.PathLike) -> Path:
    """The YAML file of a shipped profile name (``smoke``), or the given path to a custom one."""
    text = os.fspath(name_or_path)
    if text in PROFILE_NAMES:
        return Path(str(resources.files("refinenet.study") / "profiles" / f"{text}.yaml"))
    path = Path(text)
    if path.suffix in (".yaml", ".yml") or os.sep in text:
        # Meant as a file: say what is wrong with it, not that the name is unknown.
        if not path.exists():
            raise FileNotFoundError(f"profile file {text} does not exist; give an existing .yaml file or one of {', '.join(PROFILE_NAMES)}")
        if not path.is_file():
            raise ValueError(f"profile {text} is a folder, not a .yaml file")
        if path.suffix not in (".yaml", ".yml"):
            raise ValueError(f"profile file {text} is not a .yaml file")
        return path
    raise ValueError(
        f"unknown profile {text!r}: use one of {', '.join(PROFILE_NAMES)} or the path of a .yaml file"
    )


def load_profile(name_or_path: str | os.PathLike) -> Profile:
    """Load and check a profile by name (``smoke``, ``cpu``, ``gpu``) or by path."""
    path = profile_path(name_or_path)
    with open(path, encoding="utf-8") as f:
        data = yaml.safe_load(f) or {}
    where = f"profile file {path}"
    if not isinstance(data, dict):
        raise ValueError(f"{where}: expected a mapping at the top level")
    unknown = sorted(set(data) - _KEYS)
    if unknown:
        raise ValueError(f"{where}: unknown keys {unknown}; allowed: {sorted(_KEYS)}")
    name = data.get("name", path.stem)
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"{where}: name must be a simple word (it names results/<name>/), got {name!r}")
    if name in PROFILE_NAMES and name != path.stem:
        raise ValueError(f"{where}: name {name!r} is reserved for the shipped profile")
    common = data.get("common") or {}
    notebooks = data.get("notebooks") or {}
    if not isinstance(common, dict):
        raise ValueError(f"{where}: 'common' must be a mapping of parameter: value")
    if not isinstance(notebooks, dict) or not all(isinstance(v, (dict, type(None))) for v in notebooks.values()):
        raise ValueError(f"{where}: 'notebooks' must map each notebook name to a mapping of parameters")
    requires_cuda = data.get("requires_cuda", False)
    if not isinstance(requires_cuda, bool):
        raise ValueError(f"{where}: requires_cuda must be true or false")
    try:
        study = StudyDesign.from_dict(data.get("study"), where=f"{where}: study")
    except ValueError as err:
        raise ValueError(str(err) if str(err).startswith(where) else f"{where}: {err}") from None
    return Profile(
        name=name,
        study=study,
        description=str(data.get("description", "")).strip(),
        requires_cuda=requires_cuda,
        common=dict(common),
        notebooks={k: dict(v or {}) for k, v in notebooks.items()},
        path=str(path),
    )


def results_name(profile: Profile, dataset: str) -> str:
    """The folder under ``results/`` of ``profile`` run on ``dataset``.

    A profile that asks for CamVid (``dataset: auto`` or ``camvid``) but runs on the
    generator, because this machine has no CamVid, writes to ``<name>-synthetic``: another
    data set's study never lands in, or overwrites, the committed CamVid study."""
    asked = str(profile.common.get("dataset", "auto"))
    if dataset == "synthetic" and asked != "synthetic":
        return f"{profile.name}-synthetic"
    return profile.name
