"""The study runner: jupytext sources in ``notebooks/`` -> executed notebooks in ``results/``.

For each notebook ``notebooks/NN_name.py`` (jupytext percent format) the runner

1. reads it with jupytext and finds the names its ``parameters`` cell declares;
2. takes that notebook's parameters from the profile, plus what the runner decides itself:
   ``profile``, ``device`` (CUDA when present), ``dataset`` (CamVid when the data layer finds
   it, else the synthetic generator) and ``output_dir``;
3. executes it with papermill in a fresh kernel running this very Python (so a fresh clone
   needs no kernel registration), with the repository root as working directory, into
   ``results/<profile>/NN_name.ipynb``; the notebook writes its tables (CSV) and figures into
   ``results/<profile>/NN_name/``, where the runner also writes ``metadata.json`` (status,
   git commit, versions, device, wall time, parameters) and ``log.txt`` (the kernel's output), and
   ``parameters.yaml`` (what papermill received, to re-execute the notebook by hand);
4. prints one progress line per notebook, and echoes what the notebook prints (notebooks
   print only progress lines, one per training run; tables and figures are displayed).

A notebook is skipped when its last run finished with the same source and parameters;
``force=True`` runs it again. Training runs inside notebooks are reused or resumed by the
engine, so re-running a notebook does not retrain what is finished.
"""

from __future__ import annotations

import ast
import contextlib
import datetime as _dt
import functools
import hashlib
import json
import logging
import os
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from ..environment import collect_environment, describe_hardware
from .profiles import Profile
from .training import StudyRuns, default_jobs, job_threads

__all__ = [
    "NotebookResult",
    "ledger_digest",
    "ledger_status",
    "notebook_wants",
    "RUNNER_PARAMETERS",
    "StudyError",
    "collect_environment",
    "convert",
    "declared_parameters",
    "find_notebooks",
    "find_root",
    "notebook_state",
    "resolve_dataset",
    "resolve_device",
    "run_notebook",
    "run_study",
    "select_notebooks",
]

# Parameters the runner sets itself; a notebook receives each one its parameters cell declares.
RUNNER_PARAMETERS = ("profile", "device", "dataset", "output_dir")
METADATA = "metadata.json"
PARAMETERS = "parameters.yaml"
_NOTEBOOK_NAME = re.compile(r"^\d\d_[a-z0-9_]+$")


class StudyError(Exception):
    """A notebook failed, or the study cannot start; the message says which and where."""


@dataclass
class NotebookResult:
    """What happened to one notebook: ``status`` is ``ok``, ``skipped``, ``waiting`` (for runs
    not in the ledger, or for a page it gathers) or ``failed``."""

    name: str
    status: str
    wall_time_s: float
    notebook: Path
    message: str = ""


# --------------------------------------------------------------------------- finding things


def find_root(start: str | os.PathLike | None = None) -> Path:
    """The repository root: the nearest folder at or above ``start`` holding ``notebooks/``."""
    here = Path(start or os.getcwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "notebooks").is_dir() and (folder / "refinenet").is_dir():
            return folder
    raise StudyError(
        f"no repository found at or above {here}: run this from the refinenet-study checkout "
        "(the folder holding notebooks/), or pass --root"
    )


def find_notebooks(notebooks_dir: str | os.PathLike) -> list[Path]:
    """The study's notebooks, ``NN_name.py`` in ``notebooks_dir``, in order."""
    folder = Path(notebooks_dir)
    if not folder.is_dir():
        raise StudyError(f"no notebooks folder at {folder}")
    return sorted(p for p in folder.glob("*.py") if _NOTEBOOK_NAME.match(p.stem))


def select_notebooks(notebooks: Sequence[Path], only: Iterable[str] | None) -> list[Path]:
    """Keep the notebooks named in ``only``: full name (``02_data``), number (``02`` or ``2``)
    or file path. ``None`` or empty keeps all."""
    wanted = [w.strip() for item in (only or ()) for w in str(item).split(",") if w.strip()]
    if not wanted:
        return list(notebooks)
    chosen = []
    for w in wanted:
        stem = Path(w).stem
        hits = [
            p for p in notebooks
            if p.stem == stem or (stem.isdigit() and p.stem[:2] == f"{int(stem):02d}")
        ]
        if not hits:
            names = ", ".join(p.stem for p in notebooks)
            raise StudyError(f"no notebook matches {w!r}; the notebooks are: {names}")
        chosen += [p for p in hits if p not in chosen]
    return [p for p in notebooks if p in chosen]


# --------------------------------------------------------------------------- notebooks


def convert(path: str | os.PathLike):
    """Read a jupytext source into an ``nbformat`` notebook set up for the Python 3 kernel."""
    import jupytext

    nb = jupytext.read(path)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    nb.metadata.setdefault("language_info", {"name": "python"})
    nb.metadata.pop("jupytext", None)
    return nb


def declared_parameters(nb) -> set[str]:
    """Names assigned in the notebook's cell tagged ``parameters`` (papermill's convention)."""
    cells = [c for c in nb.cells if c.cell_type == "code" and "parameters" in c.metadata.get("tags", [])]
    if len(cells) != 1:
        raise StudyError(f"a study notebook needs exactly one cell tagged 'parameters', found {len(cells)}")
    names = set()
    for node in ast.parse(cells[0].source).body:
        targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
        names.update(t.id for t in targets if isinstance(t, ast.Name))
    return names


def _fingerprint(source: bytes, parameters: dict) -> dict:
    return {
        "source_sha256": hashlib.sha256(source).hexdigest(),
        "parameters_sha256": hashlib.sha256(
            json.dumps(parameters, sort_keys=True, default=str).encode()
        ).hexdigest(),
    }


def notebook_state(out_dir: Path, executed: Path, fingerprint: dict) -> tuple[bool, str]:
    """``(finished, why)``: whether an earlier run can be kept, and why (not)."""
    meta_path = out_dir / METADATA
    if not executed.is_file() or not meta_path.is_file():
        return False, "not run yet"
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False, "its metadata is unreadable"
    status = meta.get("status")
    if status != "ok":
        return False, "the last run was interrupted" if status in ("running", "interrupted") else f"the last run {status}"
    if meta.get("source_sha256") != fingerprint["source_sha256"]:
        return False, "the notebook changed since its last run"
    if meta.get("parameters_sha256") != fingerprint["parameters_sha256"]:
        return False, "its parameters changed since its last run"
    if "ledger_sha256" in fingerprint and meta.get("ledger_sha256") != fingerprint["ledger_sha256"]:
        return False, "its runs in the ledger changed since its last run"
    return True, f"finished {meta.get('finished', '?')} in {meta.get('wall_time_s', 0):.0f} s"


# --------------------------------------------------------------------------- environment


def resolve_device(requested: str = "auto", *, requires_cuda: bool = False) -> str:
    """``cuda`` when a CUDA device is present (or asked for), else ``cpu``."""
    import torch

    if requested not in ("auto", "cpu", "cuda"):
        raise StudyError(f"device must be auto, cpu or cuda, got {requested!r}")
    has_cuda = torch.cuda.is_available()
    if requested == "cuda" and not has_cuda:
        raise StudyError(
            "--device cuda was asked for, but torch sees no CUDA device (torch.cuda.is_available() "
            "is False); use --device cpu or --device auto"
        )
    if requires_cuda and not has_cuda:
        raise StudyError("this profile needs a CUDA device and torch sees none (torch.cuda.is_available() is False)")
    if requested == "auto":
        return "cuda" if has_cuda else "cpu"
    return requested


def resolve_dataset(requested: str = "auto", size=None) -> tuple[str, str]:
    """``(dataset, why)``: ``camvid`` when the data layer finds it, else ``synthetic``.

    ``requested`` is ``auto``, ``camvid`` (an error when missing) or ``synthetic``. Without a
    CamVid folder, packs of all three splits at ``size`` (``(H, W)``; None: native) are
    CamVid too: a training machine may receive only the packs.
    """
    if requested == "synthetic":
        return "synthetic", "the profile asks for the synthetic generator"
    if requested not in ("auto", "camvid"):
        raise StudyError(f"dataset must be auto, camvid or synthetic, got {requested!r}")
    from ..data.camvid import find_camvid_root

    try:
        root = find_camvid_root()
    except (FileNotFoundError, ValueError) as err:  # ValueError: DataError, e.g. an empty folder
        packs = _camvid_packs(size)
        if packs:
            return "camvid", f"CamVid packs in {packs} (no CamVid folder on this machine)"
        if requested == "camvid":
            raise StudyError(f"the profile asks for CamVid: {err}") from None
        return "synthetic", (
            "CamVid was not found on this machine (set REFINENET_DATA, or get it with "
            "`refinenet data download camvid`)"
        )
    return "camvid", f"CamVid found at {root}"


def _camvid_packs(size) -> str | None:
    """The folder holding CamVid packs of train, val and test at ``size``, if any."""
    from ..data.camvid import CamVid

    try:
        found = {CamVid(split=s, size=size, packed=True).pack.path.parent for s in ("train", "val", "test")}
    except (FileNotFoundError, ValueError):
        return None
    return ", ".join(sorted(str(p) for p in found))


# Starts ipykernel_launcher with its stderr (fd 2) appended to the file named by
# REFINENET_KERNEL_STDERR: the kernel's own log lines, e.g. the traceback it prints when it is
# shut down mid-cell after a Ctrl-C, then reach the notebook's log.txt, not the terminal.
_LAUNCH_WITH_STDERR_TO_FILE = (
    "import os, runpy; "
    "fd = os.open(os.environ['REFINENET_KERNEL_STDERR'], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644); "
    "os.dup2(fd, 2); os.close(fd); "
    "runpy.run_module('ipykernel_launcher', run_name='__main__', alter_sys=True)"
)


@contextlib.contextmanager
def _kernel_of_this_python(stderr: Path | None = None) -> Iterator[None]:
    """Make kernel ``python3`` start this interpreter, whatever kernels the user has installed.

    A private kernelspec in a temporary folder put first on ``JUPYTER_PATH``; the executed
    notebooks still name the ordinary ``python3`` kernel. ``stderr``: a file that receives
    the kernel process's own stderr (default: this process's).
    """
    with tempfile.TemporaryDirectory(prefix="refinenet-kernel-") as tmp:
        spec_dir = Path(tmp) / "kernels" / "python3"
        spec_dir.mkdir(parents=True)
        launch = ["-m", "ipykernel_launcher"] if stderr is None else ["-c", _LAUNCH_WITH_STDERR_TO_FILE]
        env = {"PYDEVD_DISABLE_FILE_VALIDATION": "1"}
        if stderr is not None:
            env["REFINENET_KERNEL_STDERR"] = str(stderr)
        spec = {
            # ERROR: no start-up chatter (e.g. ipykernel 7's note on TCP without encryption;
            # the kernel listens on localhost only).
            "argv": [
                sys.executable, *launch, "-f", "{connection_file}",
                "--IPKernelApp.log_level=ERROR",
            ],
            "display_name": "Python 3 (ipykernel)",
            "language": "python",
            # PYDEVD_...: silences the debugger's "frozen modules" note on Python >= 3.11.
            "env": env,
        }
        (spec_dir / "kernel.json").write_text(json.dumps(spec), encoding="utf-8")
        old = os.environ.get("JUPYTER_PATH")
        os.environ["JUPYTER_PATH"] = os.pathsep.join([tmp] + ([old] if old else []))
        try:
            yield
        finally:
            if old is None:
                os.environ.pop("JUPYTER_PATH", None)
            else:
                os.environ["JUPYTER_PATH"] = old


class _CountsEveryEquals(logging.Filter):
    """Drops papermill's "Unable to parse line" warning, a false alarm for our notebooks.

    papermill's parameter inspector counts every ``=`` on a line, those inside strings too
    (nteract/papermill#864), so an arm named ``"N = 0"`` trips it. It serves only papermill's
    "unknown parameter" warning; the runner checks the parameters cell itself
    (:func:`declared_parameters`), and the values are injected all the same.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Unable to parse line")


@contextlib.contextmanager
def _quiet_parameter_inspector() -> Iterator[None]:
    """While papermill runs: without :class:`_CountsEveryEquals`' false alarm."""
    logger, quiet = logging.getLogger("papermill.translators"), _CountsEveryEquals()
    logger.addFilter(quiet)
    try:
        yield
    finally:
        logger.removeFilter(quiet)


class _Tee:
    """File-like sink for papermill's stdout/stderr: every line to the log, and to ``echo``."""

    def __init__(self, log, echo: Callable[[str], None] | None, prefix: str = "") -> None:
        self.log, self.echo, self.prefix, self._partial = log, echo, prefix, ""

    def write(self, text: str) -> int:
        self.log.write(text)
        if self.echo is not None:
            lines = (self._partial + text).split("\n")
            self._partial = lines.pop()
            for line in lines:
                if line.strip():
                    self.echo(f"{self.prefix}{line.rstrip()}")
        return len(text)

    def flush(self) -> None:
        self.log.flush()

    def close(self) -> None:
        """Echo what is left of an unfinished last line."""
        if self.echo is not None and self._partial.strip():
            self.echo(f"{self.prefix}{self._partial.rstrip()}")
        self._partial = ""


def _require(*modules: str) -> None:
    import importlib.util

    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        raise StudyError(
            f"the study needs {', '.join(missing)}: install the package's extras with "
            "pip install -e '.[study,book]' (or make venv)"
        )


def _now() -> str:
    return _dt.datetime.now().astimezone().isoformat(timespec="seconds")


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n", encoding="utf-8")
    tmp.replace(path)


# --------------------------------------------------------------------------- running


def run_notebook(
    source: Path,
    parameters: dict,
    *,
    root: Path,
    executed: Path,
    out_dir: Path,
    environment: dict,
    extra_metadata: dict | None = None,
    echo: Callable[[str], None] | None = print,
    nb=None,
) -> float:
    """Execute one jupytext source with ``parameters`` into ``executed``; returns wall seconds.

    ``nb`` is the source already read with :func:`convert`, if at hand. ``out_dir`` is
    emptied first and receives ``metadata.json``, ``parameters.yaml`` and ``log.txt``. Raises :class:`StudyError`
    when a cell fails (the partly executed notebook stays in place).
    """
    import nbformat
    import papermill
    from papermill.exceptions import PapermillExecutionError

    nb = convert(source) if nb is None else nb
    text = source.read_bytes()
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    executed.unlink(missing_ok=True)
    meta = {
        "notebook": source.stem,
        "source": _relative(source, root),
        "status": "running",
        "started": _now(),
        **(extra_metadata or {}),
        "parameters": parameters,
        **_fingerprint(text, parameters),
        **environment,
    }
    _write_json(out_dir / METADATA, meta)
    # For re-executing by hand: papermill NOTEBOOK OUT -f parameters.yaml (see the README).
    (out_dir / PARAMETERS).write_text(yaml.safe_dump(json.loads(json.dumps(parameters, default=str)), sort_keys=False), encoding="utf-8")
    start = time.perf_counter()
    error = interrupted = None
    kernel_stderr = Path(tempfile.mkdtemp(prefix="refinenet-kernel-stderr-")) / "stderr.txt"
    with (open(out_dir / "log.txt", "w", encoding="utf-8") as log, _kernel_of_this_python(kernel_stderr),
          _quiet_parameter_inspector()):
        streams = _Tee(log, echo, "    "), _Tee(log, echo, "    stderr: ")
        try:
            papermill.execute_notebook(
                nb,
                str(executed),
                parameters=parameters,
                kernel_name="python3",
                language="python",
                progress_bar=False,
                cwd=str(root),
                start_timeout=180,
                stdout_file=streams[0],
                stderr_file=streams[1],
            )
        except PapermillExecutionError as err:
            error = f"cell {err.exec_count}: {err.ename}: {err.evalue}"
        except Exception as err:  # kernel died, could not start, ...
            error = f"{type(err).__name__}: {err}"
        except KeyboardInterrupt as err:  # Ctrl-C: record it, then stop (re-raised below)
            interrupted = err
            for stream in streams:
                stream.echo = None  # the kernel's last words (tracebacks) go to log.txt only
        finally:
            for stream in streams:
                stream.close()
            _append_kernel_stderr(log, kernel_stderr)
    wall = time.perf_counter() - start
    if interrupted is not None:
        meta.update(status="interrupted", finished=_now(), wall_time_s=round(wall, 1))
        _write_json(out_dir / METADATA, meta)
        raise interrupted
    if executed.is_file():
        _tidy_executed(executed, nbformat, environment.get("lock"),
                       paths={"input_path": meta["source"], "output_path": _relative(executed, root)})
    meta.update(status="failed" if error else "ok", finished=_now(), wall_time_s=round(wall, 1))
    if error:
        meta["error"] = error
    _write_json(out_dir / METADATA, meta)
    if error:
        where = executed.relative_to(root) if executed.is_relative_to(root) else executed
        raise StudyError(f"{source.stem} failed in {error.splitlines()[0]} (see {where})")
    return wall


def _append_kernel_stderr(log, path: Path) -> None:
    """Add what the kernel process wrote to its stderr to ``log``, then remove its file."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace") if path.is_file() else ""
    finally:
        shutil.rmtree(path.parent, ignore_errors=True)
    if text.strip():
        log.write("\n--- kernel process stderr ---\n" + text)


#: The first line of the injected-parameters cell in an executed notebook (papermill writes
#: "# Parameters"): the page shows this cell, whose values it ran with.
INJECTED_HEADING = "# The values this page ran with (from its profile)"


def _relative(path: Path, root: Path) -> str:
    """``path`` from the repository root (as given when outside it)."""
    return path.relative_to(root).as_posix() if path.is_relative_to(root) else str(path)


def _tidy_executed(path: Path, nbformat, lock: dict | None = None, *, paths: dict | None = None) -> None:
    """Show the values the page ran with: papermill's injected-parameters cell stays visible
    (its values wrapped to the book's column, under :data:`INJECTED_HEADING`) while the
    notebook's own defaults, which the profile overrode, fold away in the book. Record the
    environment lock file the notebook ran with in its metadata, and ``paths`` in place of
    papermill's ``input_path``/``output_path``: papermill records the output's absolute path
    (this machine's folders, in a committed file) and, for a notebook given as an object,
    that whole notebook again as its "input path"."""
    nb = nbformat.read(path, as_version=4)
    if lock is not None:
        nb.metadata.setdefault("refinenet", {})["requirements_lock"] = lock
    if paths and "papermill" in nb.metadata:
        nb.metadata["papermill"].update(paths)
    injected = any("injected-parameters" in cell.metadata.get("tags", []) for cell in nb.cells)
    for cell in nb.cells:
        tags = cell.metadata.setdefault("tags", [])
        if "injected-parameters" in tags:
            lines = wrap_assignments(cell.source).splitlines()
            if lines and lines[0].strip() == "# Parameters":
                lines[0] = INJECTED_HEADING
            cell.source = "\n".join(lines)
            if "hide-input" in tags:
                tags.remove("hide-input")
        elif "parameters" in tags and injected and "hide-input" not in tags:
            tags.append("hide-input")
    nbformat.write(nb, path)


def wrap_assignments(source: str, width: int = 77) -> str:
    """``source`` with each ``name = <literal>`` that is wider than ``width`` rewritten over
    several lines (pprint, keys in their order), so that it fits the book's column (papermill
    writes every parameter on one line). Other lines are kept as they are."""
    import pprint

    out = []
    for line in source.splitlines():
        name, eq, value = line.partition(" = ")
        if len(line) <= width or not eq or not name.isidentifier():
            out.append(line)
            continue
        try:
            literal = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            out.append(line)
            continue
        indent = " " * (len(name) + 3)
        text = pprint.pformat(literal, width=width - len(indent), sort_dicts=False)
        out.append(f"{name} = " + text.replace("\n", "\n" + indent))
    return "\n".join(out)


def run_study(
    profile: Profile,
    *,
    root: str | os.PathLike | None = None,
    only: Iterable[str] | None = None,
    force: bool = False,
    results_dir: str | os.PathLike | None = None,
    device: str = "auto",
    train: bool = True,
    time_budget_s: float | None = None,
    retrain: Sequence[str] = (),
    execute: bool = True,
    jobs: int | None = None,
    echo: Callable[[str], None] | None = print,
) -> list[NotebookResult]:
    """Fill the profile's ledger, then run its notebooks in order (module docstring).

    ``train``: train the runs missing from the ledger first (in plan order, within
    ``time_budget_s``); ``retrain``: run ids, notebook names or ``all`` whose entries are
    trained again; ``execute=False`` only trains (a machine without the notebook libraries);
    ``jobs``: runs trained at once (None: :func:`~refinenet.study.training.default_jobs`).
    A notebook whose runs are not all in the ledger is left ``waiting``.
    Returns one :class:`NotebookResult` per selected notebook; a failure raises
    :class:`StudyError` after its metadata has been written.
    """
    from .ledger import Ledger
    from .plan import declared_values
    from .profiles import results_name

    say = echo or (lambda _line: None)
    if execute:
        _require("papermill", "jupytext", "ipykernel", "nbformat", "myst_nb")
    root = find_root(root) if root is None else Path(root).resolve()
    notebooks_all = find_notebooks(root / "notebooks")
    missing = [p.stem for p in notebooks_all if p.stem not in profile.notebooks]
    if missing:
        raise StudyError(f"profile {profile.name!r} has no entry for {', '.join(missing)} ({profile.path})")
    extra = sorted(set(profile.notebooks) - {p.stem for p in notebooks_all})
    if extra:
        raise StudyError(f"profile {profile.name!r} lists notebooks that do not exist: {', '.join(extra)}")
    notebooks = select_notebooks(notebooks_all, only)

    device = resolve_device(device, requires_cuda=profile.requires_cuda)
    size = profile.study.base("camvid", "cpu").data.size
    dataset, dataset_note = resolve_dataset(str(profile.common.get("dataset", "auto")), size)
    name = results_name(profile, dataset)
    results = Path(results_dir) if results_dir is not None else root / "results" / name
    if not results.is_absolute():
        results = root / results
    _refuse_frozen(results, root)
    results.mkdir(parents=True, exist_ok=True)
    environment = collect_environment(root, device)
    say(
        f"study: profile {profile.name} on {describe_hardware(environment['hardware'])}; "
        f"data: {dataset} ({dataset_note}); results in {_rel(results, root)}/"
    )
    defaults = {p.stem: declared_values(p) for p in notebooks}
    params = {}
    for n, values in defaults.items():
        params[n] = profile.parameters_for(n, set(values))
        runner = {"profile": profile.ref, "device": device, "dataset": dataset, "output_dir": _rel(results / n, root)}
        params[n].update({k: v for k, v in runner.items() if k in values})
    ledger = Ledger(results / "runs")
    ledger.clean()
    wants = {n: {**defaults[n], **params[n]} for n in defaults}
    jobs = default_jobs(device) if jobs is None else jobs
    checkpoints = root / "runs" / name
    study = StudyRuns(profile, dataset, device, ledger, wants, root=root, checkpoints=checkpoints, jobs=jobs)
    if retrain:
        removed = study.forget(retrain)
        say(f"study: retraining {len(removed)} runs ({', '.join(removed) or 'none matched'})")
    if train:
        if jobs > 1:
            say(f"study: training {jobs} runs at once, {job_threads(jobs)} thread{'s' if job_threads(jobs) > 1 else ''} each")
        trained, why = study.fill(budget_s=time_budget_s, say=say)
        say(f"study: {trained} runs trained; {why}")
    plan = study.plan()

    @functools.cache
    def every_plan():
        """The plan of every notebook, not only those run now (--only): a gathered page's runs."""
        if len(notebooks) == len(notebooks_all):
            return plan
        return StudyRuns(profile, dataset, device, ledger, notebook_wants(profile, root), root=root,
                         checkpoints=checkpoints).plan()

    outcome = []
    for i, source in enumerate(notebooks if execute else [], 1):
        name = source.stem
        nb = convert(source)
        if set(declared_parameters(nb)) != set(defaults[name]):
            raise StudyError(f"{source}: every parameter of its parameters cell must be a literal value")
        out_dir = results / name
        executed = results / f"{name}.ipynb"
        tag = f"[{i}/{len(notebooks)}] {name}"
        runs = plan.for_notebook(name)
        have = [r for r in runs if r.ready and r.run_id in ledger]
        # a gathered page waits while any of its runs is missing, whether it runs now or not (--only)
        behind = [g for g in gathered_pages(defaults[name], name, [p.stem for p in notebooks_all])
                  if any(not (r.ready and r.run_id in ledger) for r in every_plan().for_notebook(g))]
        if behind:
            why = f"it gathers the tables of {', '.join(behind)}, which wait for their runs"
            say(f"{tag}: waiting, {why}")
            outcome.append(NotebookResult(name, "waiting", 0.0, executed, why))
            continue
        if len(have) < len(runs):
            why = f"{len(have)} of {len(runs)} runs in the ledger; `refinenet study run --profile {profile.name}` trains the rest"
            say(f"{tag}: waiting, {why}")
            outcome.append(NotebookResult(name, "waiting", 0.0, executed, why))
            continue
        fingerprint = _fingerprint(source.read_bytes(), params[name])
        # the runs it reads, and those of the pages whose tables it gathers
        gathered = [r for g in gathered_pages(defaults[name], name, [p.stem for p in notebooks_all])
                    for r in every_plan().for_notebook(g)]
        fingerprint["ledger_sha256"] = ledger_digest(ledger, sorted({r.run_id for r in runs + gathered}))
        finished, why = notebook_state(out_dir, executed, fingerprint)
        if finished and not force:
            say(f"{tag}: skipped, {why} (--force runs it again)")
            outcome.append(NotebookResult(name, "skipped", 0.0, executed, why))
            continue
        say(f"{tag}: running ({'--force' if finished else why})")
        extra_meta = {
            "profile": profile.name,
            "profile_description": profile.description,
            "dataset": dataset,
            "dataset_note": dataset_note,
            "ledger_sha256": fingerprint["ledger_sha256"],
            "runs": sorted(r.run_id for r in runs),
        }
        try:
            wall = run_notebook(
                source, params[name], root=root, executed=executed, out_dir=out_dir,
                environment=environment, extra_metadata=extra_meta, echo=echo, nb=nb,
            )
        except StudyError as err:
            say(f"{tag}: FAILED")
            outcome.append(NotebookResult(name, "failed", 0.0, executed, str(err)))
            raise
        say(f"{tag}: done in {wall:.1f} s -> {_rel(executed, root)}")
        outcome.append(NotebookResult(name, "ok", wall, executed))
    return outcome


def gathered_pages(values: dict, name: str, notebooks: Sequence[str]) -> list[str]:
    """The pages whose tables notebook ``name`` gathers (its ``gathers`` parameter, in its
    parameters ``values``); each must be one of the study's ``notebooks``."""
    gathers = list(values.get("gathers") or [])
    unknown = [g for g in gathers if g not in notebooks]
    if unknown:
        raise StudyError(f"notebook {name} gathers {', '.join(unknown)}, which are not notebooks of the study "
                         f"({', '.join(notebooks)})")
    return gathers


def notebook_wants(profile: Profile, root: Path) -> dict[str, dict]:
    """``{notebook: its parameters}`` for every notebook of ``root/notebooks``: the literal
    defaults of its parameters cell, overridden by the profile (what the runner gives it,
    but for the runner's own parameters)."""
    from .plan import declared_values

    wants = {}
    for path in find_notebooks(Path(root) / "notebooks"):
        values = declared_values(path)
        wants[path.stem] = {**values, **profile.parameters_for(path.stem, set(values))}
    return wants


def ledger_status(profile: Profile, root: Path) -> tuple[list[dict], str]:
    """``(rows, ledger folder relative to root)``: per notebook with runs, how many are in the
    ledger (``refinenet study status`` and the book's waiting pages; see StudyRuns.status)."""
    from .ledger import Ledger
    from .profiles import results_name
    from .training import StudyRuns, default_jobs

    device = resolve_device("auto", requires_cuda=False)
    size = profile.study.base("camvid", "cpu").data.size
    dataset, _ = resolve_dataset(str(profile.common.get("dataset", "auto")), size)
    name = results_name(profile, dataset)
    wants = notebook_wants(profile, root)
    ledger = Ledger(root / "results" / name / "runs")
    runs = StudyRuns(profile, dataset, device, ledger, wants, root=root, checkpoints=root / "runs" / name,
                     jobs=default_jobs(device))
    return runs.status(), ledger.folder.relative_to(root).as_posix()


def ledger_digest(ledger, run_ids: Iterable[str]) -> str:
    """SHA-256 over the entries of ``run_ids`` (their ``entry.json``): a notebook is run again
    when one of its runs changes."""
    h = hashlib.sha256()
    for run_id in sorted(run_ids):
        h.update(run_id.encode())
        path = ledger.path(run_id) / "entry.json"
        h.update(path.read_bytes() if path.is_file() else b"-")
    return h.hexdigest()


FROZEN = "FROZEN.md"


def _refuse_frozen(results: Path, root: Path) -> None:
    """A results folder holding ``FROZEN.md`` is a dated record, never executed into."""
    if (results / FROZEN).is_file():
        raise StudyError(
            f"{_rel(results, root)}/ is a frozen record ({FROZEN} says what it is); the study "
            "writes to another folder: choose another profile or results folder"
        )


def _rel(path: Path, root: Path) -> str:
    path = Path(path)
    return path.relative_to(root).as_posix() if path.is_relative_to(root) else str(path)
