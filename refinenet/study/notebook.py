"""What every study notebook does first, and how it saves what it shows.

.. code-block:: python

    from refinenet.study.notebook import start
    study = start("01_architecture", profile=profile, device=device, dataset=dataset,
                  output_dir=output_dir)
    study.save_table(df, "parameters")      # results/<profile>/01_architecture/tables/parameters.csv
    study.save_figure(fig, "crp_growth")    # .../figures/crp_growth.png
    study.glue("total_params_m", 118.05)    # for {glue:text}`total_params_m:.2f` in the prose

Run by the study runner, the parameters come from the profile. Run by hand in Jupyter, a
notebook's defaults are those of the ``cpu`` profile, whose runs it reads from the committed
ledger; ``"auto"`` picks the device and the data set the way the runner does, and the tables
and figures go to ``results/interactive/<notebook>/`` (never over a committed page).
"""

from __future__ import annotations

import html
import os
import random
from dataclasses import dataclass
from pathlib import Path

from .readable import check_readable

__all__ = ["Study", "start"]


@dataclass
class Study:
    """A notebook's run: where it writes, on what it runs, with which data."""

    name: str
    #: the profile's name (or the path of its YAML file), as :func:`load_profile` takes it.
    profile: str
    device: str
    dataset: str
    dataset_note: str
    output_dir: Path
    hardware: str
    #: where the page's numbers come from when not from the profile's data (plain text, e.g.
    #: ``"the benchmark files in results/bench"``); ``None``: from the profile's data.
    numbers_from: str | None = None

    @property
    def results_dir(self) -> Path:
        """``results/<profile>/`` of this profile on this data set: its ledger (``runs/``) and
        the pages of the notebooks that came before."""
        from .profiles import load_profile, results_name
        from .runner import find_root

        return find_root() / "results" / results_name(load_profile(self.profile), self.dataset)

    @property
    def profile_name(self) -> str:
        from .profiles import PROFILE_NAMES

        return self.profile if self.profile in PROFILE_NAMES else Path(self.profile).stem

    @property
    def other_profiles(self) -> str:
        """The shipped profiles other than this page's, for the prose: ``"cpu or gpu"``."""
        from .profiles import PROFILE_NAMES

        others = [name for name in PROFILE_NAMES if name != self.profile_name]
        return ", ".join(others[:-1]) + " or " + others[-1] if len(others) > 1 else others[0]

    @property
    def synthetic(self) -> bool:
        return self.dataset == "synthetic"

    def data(self, split: str, size=None, **kwargs):
        """Split ``split`` of this run's data set (CamVid or the generator), loaded at ``size``
        (``(H, W)``; ``None``: the data set's own size). ``kwargs`` go to
        :func:`refinenet.data.build_dataset` (e.g. ``n=16`` for the generator)."""
        from ..data import build_dataset

        if size is not None:
            kwargs["size"] = tuple(size)
        if not self.synthetic:
            kwargs.pop("n", None)
        return build_dataset(self.dataset, split, **kwargs)

    def save_table(self, df, name: str, *, index: bool = False):
        """Write ``df`` to ``tables/<name>.csv`` and return it (so a cell can show it)."""
        path = self.output_dir / "tables" / f"{name}.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        df.to_csv(path, index=index)
        return df

    def save_figure(self, fig, name: str):
        """Write ``fig`` to ``figures/<name>.png`` (150 dpi) and return it; raise
        :class:`~refinenet.study.readable.FigureTooSmallError` instead where its smallest text
        would read under :data:`~refinenet.study.readable.MIN_TEXT_PX` px in the book."""
        path = self.output_dir / "figures" / f"{name}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        check_readable(fig, name=f"{self.name}/{name}", dpi=150)  # before a file exists
        fig.savefig(path, dpi=150, bbox_inches="tight")
        return fig

    def glue(self, key: str, value, display: bool = False) -> None:
        """Make ``value`` available to the prose as ``{glue:text}`key``` (myst-nb).

        Returns nothing, so that a cell ending with it shows no stray value.
        """
        from myst_nb import glue

        if getattr(value, "ndim", None) == 0 and hasattr(value, "item"):
            value = value.item()  # numpy / torch scalars: plain Python, so "{:.1f}" works
        glue(key, value, display=display)

    def banner_html(self) -> str:
        """The note at the top of the page: which profile, hardware and data produced it (or,
        with :attr:`numbers_from`, where its numbers come from instead of the profile's data)."""
        kind = "warning" if self.synthetic and not self.numbers_from else "note"
        if self.numbers_from:
            data = (
                "<b>Numbers:</b> every number and picture on this page comes from "
                f"{html.escape(self.numbers_from)}, not from this profile's data."
            )
        elif self.synthetic:
            data = (
                "<b>Synthetic data.</b> Every number and picture on this page comes from the "
                f"procedural scene generator, not from CamVid: {html.escape(self.dataset_note)}."
            )
        else:
            data = "<b>Data:</b> CamVid."
        return (
            f'<div class="admonition {kind}"><p class="admonition-title">How this page was made</p>'
            f"<p>Profile <b>{html.escape(self.profile_name)}</b> on {html.escape(self.hardware)}. "
            f"{data}</p></div>"
        )


def _output_dir(name: str, output_dir: str | os.PathLike | None) -> Path:
    if output_dir:
        return Path(output_dir)
    from .runner import StudyError, find_root

    try:
        root = find_root()
    except StudyError:
        root = Path.cwd()
    return root / "results" / "interactive" / name


def start(
    name: str,
    *,
    profile: str = "cpu",
    device: str = "auto",
    dataset: str = "auto",
    output_dir: str | os.PathLike | None = None,
    seed: int = 0,
    banner: bool = True,
    numbers_from: str | None = None,
) -> Study:
    """Set up a notebook: device, data set, output folder, seeds, plot style; show the banner.

    ``device`` and ``dataset`` accept ``"auto"`` (CUDA when present; CamVid when found, else
    the synthetic generator), as the runner resolves them. ``numbers_from`` names where the
    page's numbers come from when not from the profile's data (e.g. ``"the benchmark files in
    results/bench"``): the banner says so instead of naming the data set.
    """
    import matplotlib as mpl
    import numpy as np
    import torch

    from .runner import describe_hardware, resolve_dataset, resolve_device

    device = resolve_device(device)
    from .profiles import load_profile

    size = load_profile(profile).study.base("camvid", "cpu").data.size  # packs found at this size
    dataset, note = resolve_dataset(dataset, size)
    if dataset == "synthetic":  # say why: CamVid is missing, or the run chose the generator
        found, why = resolve_dataset("auto", size)
        note = why if found == "synthetic" else "this run asks for it although CamVid is here"
    hardware = {"device": device, "cpu_count": os.cpu_count()}
    if device == "cuda":
        hardware["gpu"] = torch.cuda.get_device_name(0)
    else:
        from ..environment import cpu_name

        hardware["cpu"] = cpu_name()
    out = _output_dir(name, output_dir)
    out.mkdir(parents=True, exist_ok=True)

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    mpl.rcParams.update(
        {
            "figure.figsize": (8.0, 3.6),
            "figure.dpi": 100,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "axes.titlesize": "medium",
            "image.interpolation": "nearest",
        }
    )
    study = Study(
        name, profile, device, dataset, note, out, describe_hardware(hardware), numbers_from
    )
    if banner:
        from IPython.display import HTML, display

        display(HTML(study.banner_html()))
    return study
