"""The book: table of contents, configuration, choosing and staging a profile."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from refinenet.study import book
from refinenet.study.book import (
    BookError,
    _announcement,
    _provenance,
    choose_profile,
    profile_status,
    stage,
)
from refinenet.study.runner import find_notebooks

ROOT = Path(__file__).resolve().parents[1]


def _toc_files(entries) -> list[str]:
    out = []
    for entry in entries:
        if "file" in entry:
            out.append(entry["file"])
        for key in ("chapters", "sections", "parts"):
            out += _toc_files(entry.get(key, []))
    return out


def test_toc_lists_every_notebook_and_every_page_exists():
    toc = yaml.safe_load((ROOT / "book" / "_toc.yml").read_text())
    files = [toc["root"]] + _toc_files(toc["parts"])
    staged = [f for f in files if f.startswith("notebooks/")]
    notebooks = [p.stem for p in find_notebooks(ROOT / "notebooks")]
    assert staged == [f"notebooks/{n}" for n in notebooks] + ["notebooks/provenance"]
    for f in files:
        if not f.startswith("notebooks/"):
            assert (ROOT / "book" / f"{f}.md").is_file(), f


def test_config_never_executes_notebooks():
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert config["execute"]["execute_notebooks"] == "off"
    assert config["only_build_toc_files"] is True
    ext = config["sphinx"]["local_extensions"]
    assert all((ROOT / path / f"{name}.py").is_file() for name, path in ext.items())


def _fake_results(root: Path, profile: str, names: list[str], status: str = "ok") -> None:
    folder = root / "results" / profile
    for name in names:
        (folder / name).mkdir(parents=True)
        (folder / f"{name}.ipynb").write_text("{}")
        meta = {"status": status, "dataset": "synthetic", "hardware": {"device": "cpu"},
                "parameters": {"x": 1}, "git": {"commit": "a" * 40, "dirty": False}}
        (folder / name / "metadata.json").write_text(json.dumps(meta))


def test_choose_profile_prefers_the_most_complete(tmp_path):
    names = ["01_a", "02_b"]
    with pytest.raises(BookError, match="no executed notebook"):
        choose_profile(tmp_path, names)
    _fake_results(tmp_path, "smoke", names)
    _fake_results(tmp_path, "gpu", names[:1])
    assert choose_profile(tmp_path, names) == "smoke"  # complete beats partial
    _fake_results(tmp_path, "cpu", names)
    assert choose_profile(tmp_path, names) == "cpu"  # cpu beats smoke
    _fake_results(tmp_path, "gpu", names[1:])
    assert choose_profile(tmp_path, names) == "gpu"


def test_profile_status_and_failed_runs(tmp_path):
    _fake_results(tmp_path, "cpu", ["01_a"], status="failed")
    assert profile_status(tmp_path / "results" / "cpu", ["01_a", "02_b"]) == {"01_a": "failed", "02_b": "missing"}


def test_stage_copies_notebooks_and_writes_provenance(tmp_path):
    names = ["01_a", "02_b"]
    _fake_results(tmp_path, "smoke", names[:1])
    with pytest.raises(BookError, match="no finished run of 02_b"):
        stage(tmp_path, "smoke", names, allow_missing=False)
    import os
    import time

    old = time.time() - 3600  # a profile's notebook executed an hour ago
    os.utime(tmp_path / "results" / "smoke" / "01_a.ipynb", (old, old))
    before = time.time()
    metas = stage(tmp_path, "smoke", names, allow_missing=True)
    staged = tmp_path / "book" / "notebooks"
    assert len(metas) == 1
    assert (staged / "01_a.ipynb").read_text() == "{}"
    # newer than any earlier build, whatever profile that showed: Sphinx rebuilds the page
    assert (staged / "01_a.ipynb").stat().st_mtime >= before - 1
    assert "has not been run for profile `smoke`" in (staged / "02_b.md").read_text()
    provenance = (staged / "provenance.md").read_text()
    assert "| 01_a | ok | synthetic |" in provenance and "| 02_b | not run |" in provenance


def test_a_waiting_page_has_its_title_and_says_how_far_its_runs_are(tmp_path, monkeypatch):
    names = ["01_a", "02_b", "03_c"]
    _fake_results(tmp_path, "cpu", names[:1])
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "notebooks" / "02_b.py").write_text("# ---\n# ---\n\n# %% [markdown]\n# # Training the model\n#\n# Text.\n")
    rows = [{"notebook": "02_b", "done": 3, "total": 10, "waiting": 4}, {"notebook": "all (distinct runs)", "done": 3, "total": 10, "waiting": 4}]
    monkeypatch.setattr("refinenet.study.runner.ledger_status", lambda spec, root: (rows, "results/cpu/runs"))
    monkeypatch.setattr("refinenet.study.runner.notebook_wants",
                        lambda spec, root: {"01_a": {}, "02_b": {}, "03_c": {"gathers": ["02_b"]}})
    stage(tmp_path, "cpu", names, allow_missing=True)
    staged = tmp_path / "book" / "notebooks"
    page = (staged / "02_b.md").read_text()
    assert page.startswith("# Training the model\n")
    assert "3 of 10 are in the ledger of profile `cpu`" in page and "4 of the 7 missing wait" in page
    assert "`refinenet study run --profile cpu` trains the rest" in page
    assert "gathers the tables of pages whose runs are not all in the ledger" in (staged / "03_c.md").read_text()
    assert "02_b (3 of 10 runs)" in (staged / "03_c.md").read_text()
    # a ledger this machine's data would put elsewhere says nothing about this folder
    monkeypatch.setattr("refinenet.study.runner.ledger_status", lambda spec, root: (rows, "results/cpu-synthetic/runs"))
    stage(tmp_path, "cpu", names, allow_missing=True)
    assert "has not been run for profile `cpu`" in (staged / "02_b.md").read_text()


def test_banner_names_every_commit_the_pages_come_from():
    meta = {"dataset": "camvid", "hardware": {"device": "cpu"}}
    one = [dict(meta, git={"commit": "a" * 40}), dict(meta, git={"commit": "a" * 40})]
    assert _announcement("cpu", one).endswith("commit aaaaaaaaaa.")
    two = one + [dict(meta, git={"commit": "b" * 40})]
    banner = _announcement("cpu", two)
    assert "commits aaaaaaaaaa, bbbbbbbbbb" in banner and "About these results" in banner


def test_provenance_names_the_machine_once_when_all_pages_share_it():
    meta = {"status": "ok", "dataset": "camvid", "hardware": {"device": "cpu", "cpu_count": 2},
            "git": {"commit": "c" * 40}, "wall_time_s": 12.0, "finished": "2026-11-22T05:10:48+00:00"}
    page = _provenance("cpu", ["01_a", "02_b"], {"01_a": meta, "02_b": meta})
    assert page.count("All of them ran on") == 1 and "| hardware |" not in page
    assert "| 01_a | ok | camvid | 12 s | 2026-11-22 05:10:48 UTC | `cccccccccc` |" in page
    other = dict(meta, hardware={"device": "cuda", "gpu": "H100"})
    page = _provenance("cpu", ["01_a", "02_b"], {"01_a": meta, "02_b": other})
    assert "All of them ran on" not in page and "| hardware |" in page


def test_provenance_quotes_the_profiles_description_in_a_sentence():
    meta = {"status": "ok", "dataset": "camvid", "hardware": {"device": "cpu", "cpu_count": 2},
            "profile_description": "the whole study on 2 CPU cores"}
    page = _provenance("cpu", ["01_a"], {"01_a": meta})
    assert "The profile runs the whole study on 2 CPU cores." in page


def test_a_dated_record_is_shown_before_smoke_and_says_what_it_is(tmp_path):
    names = ["01_a", "02_b"]
    _fake_results(tmp_path, "smoke", names)
    _fake_results(tmp_path, "cpu-2026-11-22", names)
    (tmp_path / "results" / "cpu-2026-11-22" / "FROZEN.md").write_text("# The first study\n\nKept as it was.\n")
    assert choose_profile(tmp_path, names) == "cpu-2026-11-22"
    _fake_results(tmp_path, "cpu", names)
    assert choose_profile(tmp_path, names) == "cpu"  # the live profile, once complete
    metas = stage(tmp_path, "cpu-2026-11-22", names, allow_missing=False)
    provenance = (tmp_path / "book" / "notebooks" / "provenance.md").read_text()
    assert "```{admonition} The first study" in provenance and "Kept as it was." in provenance
    assert "A dated record" in _announcement("cpu-2026-11-22", metas)


def test_a_strict_build_starts_from_an_empty_html_folder(tmp_path, monkeypatch):
    """Sphinx keeps the pages of earlier builds; a strict build must not show one."""
    for folder in ("notebooks", "refinenet", "book"):
        (tmp_path / folder).mkdir()
    (tmp_path / "notebooks" / "01_a.py").write_text("# %%\n")
    (tmp_path / "_config.yml").write_text("title: t\n")
    _fake_results(tmp_path, "smoke", ["01_a"])
    stale = tmp_path / "_build" / "html" / "genindex.html"
    calls = []
    monkeypatch.setattr(book.subprocess, "run", lambda cmd, cwd: calls.append(cmd) or type("R", (), {"returncode": 0}))
    for strict, survives in ((False, True), (True, False)):
        stale.parent.mkdir(parents=True, exist_ok=True)
        stale.write_text("an earlier build's page")
        assert book.build_book(tmp_path, "smoke", strict=strict, echo=lambda _: None) == 0
        assert stale.exists() == survives
        assert ("--all" in calls[-1]) == strict
