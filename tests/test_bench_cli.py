"""The benchmark command runs on a tiny configuration (CI checks it runs; no timing asserted)."""

import csv
import json

import pytest

from refinenet.cli import main


def test_bench_tiny_runs_and_writes_csv(tmp_path, capsys):
    out = tmp_path / "bench.csv"
    assert main(["bench", "--preset", "tiny", "--repeats", "1", "--warmup", "0", "--device", "cpu",
                 "--out", str(out)]) == 0
    rows = list(csv.DictReader(open(out)))
    paths = ["baseline", "channels_last", "bf16", "bf16+channels_last"]
    assert [(r["mode"], r["path"]) for r in rows] == [(m, p) for m in ("inference", "train") for p in paths]
    for row in rows:
        assert float(row["median_s"]) > 0 and float(row["peak_tflops"]) > 0
        assert row["device"] == "cpu" and row["torch"]
    base = rows[0]
    assert float(base["speedup"]) == 1.0 and base["argmax_agreement"] == ""
    assert 0.0 <= float(rows[1]["argmax_agreement"]) <= 1.0
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["rows"] == len(rows)


def test_bench_rejects_unknown_preset(capsys):
    assert main(["bench", "--preset", "huge"]) == 1
    assert "unknown preset(s) ['huge']" in capsys.readouterr().err


@pytest.mark.parametrize("modes", ["", "inference,eval"])
def test_bench_rejects_bad_modes(modes, capsys):
    assert main(["bench", "--preset", "tiny", "--modes", modes]) == 1
    assert "--modes must be" in capsys.readouterr().err
