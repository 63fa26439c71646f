"""torchinfo summary and the ``refinenet model`` command."""

import subprocess
import sys

import refinenet
from refinenet.cli import main


def test_summary_counts_match_model():
    model = refinenet.refinenet("resnet18", 5, widths=(32, 16, 16, 16))
    stats = refinenet.summary(model, (1, 3, 64, 64))
    assert stats.total_params == sum(p.numel() for p in model.parameters())
    assert model.training  # summary restores the mode it found
    assert "blocks" in str(stats)


def test_model_command(capsys):
    assert main(["model", "--backbone", "resnet18", "--num-classes", "5", "--size", "64", "64",
                 "--depth", "0", "--crp-blocks", "4"]) == 0
    out = capsys.readouterr().out
    n = sum(p.numel() for p in refinenet.refinenet("resnet18", 5, crp_blocks=4).parameters())
    assert f"parameters: {n / 1e6:.2f} M" in out
    assert "MACs:" in out


def test_model_command_prints_the_summary_with_readable_units(capsys):
    assert main(["model", "--backbone", "resnet18", "--num-classes", "5", "--size", "64", "64",
                 "--depth", "1"]) == 0
    out = capsys.readouterr().out
    assert "Total mult-adds (" in out
    assert "Units." not in out  # torchinfo's enum, as Python 3.11+ formats it


def test_model_command_reports_bad_argument(capsys):
    assert main(["model", "--cascade", "3", "--depth", "0"]) == 1
    assert "cascade=3 (int): expected 1 or 2 or 4" in capsys.readouterr().err


def test_python_dash_m_entry_point():
    out = subprocess.run([sys.executable, "-m", "refinenet", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == f"refinenet {refinenet.__version__}"
