"""The study runner: notebook discovery, parameters, skip/force logic, metadata, execution."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import nbformat
import papermill
import pytest
import yaml

from refinenet.study import runner
from refinenet.study.profiles import load_profile
from refinenet.study.runner import (
    StudyError,
    _kernel_of_this_python,
    collect_environment,
    declared_parameters,
    notebook_state,
    resolve_dataset,
    run_study,
    select_notebooks,
)

ROOT = Path(__file__).resolve().parents[1]

TINY = '''# %% [markdown]
# # A tiny notebook

# %% tags=["parameters"]
profile = "interactive"
output_dir = None
greeting = "hi"
names = ["N = 0"]  # an "=" in a string: papermill's inspector miscounts it (nteract/papermill#864)

# %%
from pathlib import Path

Path(output_dir, "tables").mkdir(parents=True, exist_ok=True)
Path(output_dir, "tables", "greeting.csv").write_text(f"greeting\\n{greeting}\\n")
print(f"{greeting} from {profile}")
'''

FAILING = '''# %% tags=["parameters"]
output_dir = None

# %%
raise RuntimeError("boom")
'''


def _study(tmp_path: Path, sources: dict[str, str], params: dict[str, dict]) -> tuple[Path, object]:
    (tmp_path / "notebooks").mkdir(parents=True)
    for name, text in sources.items():
        (tmp_path / "notebooks" / f"{name}.py").write_text(text)
    lines = ["name: tiny", "common: {dataset: synthetic}", "notebooks:"]
    lines += [f"  {name}: {json.dumps(p)}" for name, p in params.items()]
    (tmp_path / "tiny.yaml").write_text("\n".join(lines) + "\n")
    return tmp_path, load_profile(tmp_path / "tiny.yaml")


def test_declared_parameters_reads_the_tagged_cell():
    import jupytext

    nb = jupytext.reads(TINY, fmt="py:percent")
    assert declared_parameters(nb) == {"profile", "output_dir", "greeting", "names"}
    with pytest.raises(StudyError, match="exactly one cell tagged 'parameters'"):
        declared_parameters(jupytext.reads("# %%\nx = 1\n", fmt="py:percent"))


def test_select_notebooks_by_number_name_or_path():
    paths = [Path("notebooks/01_architecture.py"), Path("notebooks/02_data.py"), Path("notebooks/03_train.py")]
    assert select_notebooks(paths, None) == paths
    assert select_notebooks(paths, ["2"]) == [paths[1]]
    assert select_notebooks(paths, ["03_train,01"]) == [paths[0], paths[2]]  # study order
    assert select_notebooks(paths, ["notebooks/02_data.py"]) == [paths[1]]
    with pytest.raises(StudyError, match="no notebook matches '9'"):
        select_notebooks(paths, ["9"])


def test_notebook_state_decides_what_to_skip(tmp_path):
    out, executed = tmp_path / "01_a", tmp_path / "01_a.ipynb"
    fingerprint = runner._fingerprint(b"source", {"x": 1})
    assert notebook_state(out, executed, fingerprint) == (False, "not run yet")
    out.mkdir()
    executed.write_text("{}")
    meta = {"status": "ok", "finished": "then", "wall_time_s": 3.0, **fingerprint}
    (out / "metadata.json").write_text(json.dumps(meta))
    assert notebook_state(out, executed, fingerprint)[0] is True
    assert notebook_state(out, executed, runner._fingerprint(b"edited", {"x": 1})) == (
        False, "the notebook changed since its last run")
    assert notebook_state(out, executed, runner._fingerprint(b"source", {"x": 2})) == (
        False, "its parameters changed since its last run")
    # the runs it reads (or gathers) changed: a retrained run, a new entry
    (out / "metadata.json").write_text(json.dumps({**meta, "ledger_sha256": "a"}))
    assert notebook_state(out, executed, {**fingerprint, "ledger_sha256": "a"})[0] is True
    assert notebook_state(out, executed, {**fingerprint, "ledger_sha256": "b"}) == (
        False, "its runs in the ledger changed since its last run")
    (out / "metadata.json").write_text(json.dumps({**meta, "status": "running"}))
    assert notebook_state(out, executed, fingerprint) == (False, "the last run was interrupted")


def test_resolve_dataset_falls_back_to_the_generator(monkeypatch):
    import refinenet.data.camvid as camvid

    def missing(root=None):
        raise FileNotFoundError("CamVid not found; searched ...")

    monkeypatch.setattr(camvid, "find_camvid_root", missing)
    monkeypatch.setattr(runner, "_camvid_packs", lambda size: None)  # nor packs in the developer's cache
    assert resolve_dataset("auto")[0] == "synthetic"
    assert resolve_dataset("synthetic")[0] == "synthetic"
    with pytest.raises(StudyError, match="asks for CamVid"):
        resolve_dataset("camvid")
    monkeypatch.setattr(camvid, "find_camvid_root", lambda root=None: Path("/data/camvid"))
    assert resolve_dataset("auto") == ("camvid", "CamVid found at /data/camvid")


def test_environment_records_commit_versions_and_hardware():
    env = collect_environment(ROOT, "cpu")
    assert env["git"]["commit"] is None or len(env["git"]["commit"]) == 40
    assert {"python", "torch", "papermill", "jupytext"} <= set(env["versions"])
    assert env["hardware"]["device"] == "cpu" and env["hardware"]["cpu_count"] >= 1


def test_hardware_reads_as_one_phrase_without_nested_parentheses():
    cpu = {"device": "cpu", "cpu_count": 2, "cpu": "AMD EPYC (family 25, model 17)"}
    assert runner.describe_hardware(cpu) == "cpu, 2 cores of AMD EPYC (family 25, model 17)"
    assert runner.describe_hardware({"device": "cuda", "gpu": "NVIDIA H100"}) == "cuda, NVIDIA H100"


def test_run_executes_with_parameters_then_skips_then_forces(tmp_path, caplog):
    root, profile = _study(tmp_path, {"01_tiny": TINY}, {"01_tiny": {"greeting": "hello"}})
    (root / "requirements.lock").write_text("torch==2.14.1\n")
    lines: list[str] = []
    results = run_study(profile, root=root, echo=lines.append)
    assert [r.status for r in results] == ["ok"]

    executed = root / "results" / "tiny" / "01_tiny.ipynb"
    out = root / "results" / "tiny" / "01_tiny"
    nb = nbformat.read(executed, as_version=4)
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    # profile parameter and runner parameter both injected; a custom profile travels as its
    # path, so that the notebook can load it
    hello = f"hello from {profile.path}"
    assert hello in text
    injected = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    # the book shows the values the page ran with, and folds the defaults they replaced
    assert len(injected) == 1 and "hide-input" not in injected[0].metadata["tags"]
    assert injected[0].source.splitlines()[0] == runner.INJECTED_HEADING
    (defaults,) = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert "hide-input" in defaults.metadata["tags"]
    assert (out / "tables" / "greeting.csv").read_text() == "greeting\nhello\n"
    assert hello in (out / "log.txt").read_text()
    assert any(hello in line for line in lines), "the notebook's prints are echoed"
    assert "Unable to parse line" not in caplog.text, "papermill's false alarm on '=' in a string"
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["status"] == "ok" and meta["wall_time_s"] > 0
    assert meta["parameters"] == {"greeting": "hello", "profile": profile.path, "output_dir": "results/tiny/01_tiny"}
    assert meta["dataset"] == "synthetic" and meta["hardware"]["device"] in ("cpu", "cuda")
    assert {"git", "versions", "started", "finished", "source_sha256"} <= set(meta)
    # the environment lock the notebook ran with, in its metadata and in the notebook itself
    lock = {"file": "requirements.lock", "sha256": hashlib.sha256(b"torch==2.14.1\n").hexdigest()}
    assert meta["lock"] == lock and nb.metadata["refinenet"]["requirements_lock"] == lock
    # a committed notebook names no folder of the machine it ran on
    assert nb.metadata["papermill"]["output_path"] == "results/tiny/01_tiny.ipynb"
    assert nb.metadata["papermill"]["input_path"] == "notebooks/01_tiny.py"
    recorded = {k: v for k, v in nb.metadata["papermill"].items() if k != "parameters"}  # this test's profile path
    assert str(root) not in json.dumps(recorded)

    # parameters.yaml re-executes the notebook by hand (README): the same table again.
    params = yaml.safe_load((out / "parameters.yaml").read_text())
    assert params == meta["parameters"]
    with _kernel_of_this_python():
        papermill.execute_notebook(str(executed), str(tmp_path / "rerun.ipynb"), cwd=str(root), kernel_name="python3",
                                   parameters={**params, "output_dir": str(tmp_path / "rerun")}, progress_bar=False)
    assert (tmp_path / "rerun" / "tables" / "greeting.csv").read_text() == "greeting\nhello\n"

    again = run_study(profile, root=root, echo=lines.append)
    assert [r.status for r in again] == ["skipped"]
    assert json.loads((out / "metadata.json").read_text())["finished"] == meta["finished"]

    (out / "tables" / "stale.csv").write_text("x\n")
    forced = run_study(profile, root=root, force=True, echo=None)
    assert [r.status for r in forced] == ["ok"]
    assert not (out / "tables" / "stale.csv").exists(), "a re-run starts from an empty folder"


def test_only_papermills_false_alarm_on_equals_signs_is_dropped(caplog):
    from papermill.translators import PythonTranslator

    cell = nbformat.v4.new_code_cell('arms = ["N = 0"]\n')
    logger = logging.getLogger("papermill.translators")
    with caplog.at_level(logging.WARNING, logger="papermill"):
        PythonTranslator.inspect(cell)
        assert "Unable to parse line 1" in caplog.text, "the papermill bug this works around"
        caplog.clear()
        with runner._quiet_parameter_inspector():
            PythonTranslator.inspect(cell)
            logger.warning("another warning")
        assert "Unable to parse" not in caplog.text and "another warning" in caplog.text
        caplog.clear()
        PythonTranslator.inspect(cell)
        assert "Unable to parse line 1" in caplog.text, "the filter is removed afterwards"


def test_a_failing_cell_is_reported_and_recorded(tmp_path):
    root, profile = _study(
        tmp_path, {"01_tiny": TINY, "02_fail": FAILING}, {"01_tiny": {}, "02_fail": {}}
    )
    with pytest.raises(StudyError, match=r"02_fail failed in cell \d+: RuntimeError: boom"):
        run_study(profile, root=root, only=["02"], echo=None)
    meta = json.loads((root / "results" / "tiny" / "02_fail" / "metadata.json").read_text())
    assert meta["status"] == "failed" and "boom" in meta["error"]
    assert not (root / "results" / "tiny" / "01_tiny").exists(), "--only ran nothing else"


def test_profile_must_match_the_notebooks(tmp_path):
    root, profile = _study(tmp_path, {"01_tiny": TINY}, {"01_tiny": {}, "02_gone": {}})
    with pytest.raises(StudyError, match="do not exist: 02_gone"):
        run_study(profile, root=root, echo=None)
    root2, profile2 = _study(tmp_path / "b", {"01_tiny": TINY, "02_new": FAILING}, {"01_tiny": {}})
    with pytest.raises(StudyError, match="no entry for 02_new"):
        run_study(profile2, root=root2, echo=None)


def test_cli_registers_study_commands():
    from refinenet.cli import build_parser

    args = build_parser().parse_args(["study", "run", "--profile", "smoke", "--only", "01", "--force"])
    assert (args.profile, args.only, args.force) == ("smoke", ["01"], True)
    args = build_parser().parse_args(["study", "book", "--strict"])
    assert args.strict and args.profile is None


def test_a_study_on_other_data_gets_its_own_folder_and_a_frozen_record_is_never_written(tmp_path):
    from refinenet.study.profiles import results_name

    cpu = load_profile("cpu")
    assert results_name(cpu, "camvid") == "cpu"
    assert results_name(cpu, "synthetic") == "cpu-synthetic"  # no CamVid here: not over the CamVid study
    assert results_name(load_profile("smoke"), "synthetic") == "smoke"  # smoke asks for the generator

    root, profile = _study(tmp_path, {"01_tiny": TINY}, {"01_tiny": {}})
    record = root / "results" / "tiny"
    record.mkdir(parents=True)
    (record / "FROZEN.md").write_text("# a dated record\n")
    (record / "01_tiny.ipynb").write_text("{}")
    with pytest.raises(StudyError, match="frozen record"):
        run_study(profile, root=root, echo=None)
    assert (record / "01_tiny.ipynb").read_text() == "{}"


RUNS = '''# %% tags=["parameters"]
output_dir = None
arms = {"standard": {}}

# %%
raise RuntimeError("runs before its ledger entries")
'''

GATHERS = '''# %% tags=["parameters"]
output_dir = None
gathers = ["02_runs"]

# %%
raise RuntimeError("gathered a page that waits")
'''


def test_a_page_that_gathers_a_waiting_page_waits_too(tmp_path):
    """With its runs missing a page waits; a page that gathers its tables waits with it
    instead of failing, and the others still run (``make all`` on a partial ledger)."""
    sources = {"01_tiny": TINY, "02_runs": RUNS, "03_gathers": GATHERS}
    root, profile = _study(tmp_path, sources, {name: {} for name in sources})
    lines: list[str] = []
    results = run_study(profile, root=root, train=False, echo=lines.append)
    assert [(r.name, r.status) for r in results] == [("01_tiny", "ok"), ("02_runs", "waiting"), ("03_gathers", "waiting")]
    assert "gathers the tables of 02_runs" in results[2].message
    assert any("[3/3] 03_gathers: waiting" in line for line in lines)
    # run alone (--only), it still waits for the page it gathers
    alone = run_study(profile, root=root, train=False, only=["03"], echo=None)
    assert [(r.name, r.status) for r in alone] == [("03_gathers", "waiting")]
    assert "gathers the tables of 02_runs" in alone[0].message


def test_a_parameter_the_planner_cannot_read_is_an_error(tmp_path):
    from refinenet.study.plan import declared_values

    path = tmp_path / "01_x.py"
    path.write_text('# %% tags=["parameters"]\nbase = {"optim.lr": 0.1}\narms = {"a": {**base}}\n')
    with pytest.raises(ValueError, match=r"parameter 'arms' \(line 2 of its parameters cell\) is not a literal"):
        declared_values(path)


def test_gathering_a_page_that_is_not_in_the_study_is_an_error(tmp_path):
    root, profile = _study(tmp_path, {"01_tiny": TINY, "03_gathers": GATHERS}, {"01_tiny": {}, "03_gathers": {}})
    with pytest.raises(StudyError, match="notebook 03_gathers gathers 02_runs, which are not notebooks of the study"):
        run_study(profile, root=root, train=False, echo=None)


def test_injected_parameters_are_wrapped_to_the_books_column():
    import ast

    from refinenet.study.runner import wrap_assignments

    pilot = {f"recipe {i}": {"optim.lr": 0.001 * i, "schedule.steps": 2800, "data.size": [180, 240]} for i in range(4)}
    source = f'# Parameters\nprofile = "cpu"\npilot = {pilot!r}\n'
    assert max(map(len, source.splitlines())) > 77
    wrapped = wrap_assignments(source)
    assert max(map(len, wrapped.splitlines())) <= 77
    values = {t.targets[0].id: ast.literal_eval(t.value) for t in ast.parse(wrapped).body}
    assert values == {"profile": "cpu", "pilot": pilot} and list(values["pilot"]) == list(pilot)
    assert wrapped.splitlines()[:2] == ["# Parameters", 'profile = "cpu"']
