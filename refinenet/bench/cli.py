"""``refinenet bench``: speed and memory of RefineNet's fast paths against the plain baseline."""

from __future__ import annotations

import argparse
import csv
import json
import shlex
import sys
import time
from pathlib import Path

from ..cli_help import HelpFormatter

#: ``refinenet bench --runs --paths``: see refinenet.bench.runs.RUN_PATHS (not imported here:
#: the CLI starts without torch).
RUN_PATH_NAMES = ("before", "boundary", "fused", "compile", "jobs")


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "bench",
        help="measure inference latency, training throughput and memory of the fast paths",
        description="Measure RefineNet inference latency, training throughput, peak memory and "
        "achieved FLOP/s (as a fraction of a matmul peak measured by the same command) for "
        "each fast path, against plain fp32 NCHW eager in the same run. Writes a CSV and a "
        "JSON file with the command and the hardware.",
        formatter_class=HelpFormatter,
    )
    p.add_argument("--preset", default="paper,study", help="comma-separated: paper, study, tiny")
    p.add_argument("--modes", default="inference,train", help="comma-separated: inference, train")
    p.add_argument("--compile", action="store_true", help="also measure torch.compile (slow to compile)")
    p.add_argument("--device", default="auto", help="auto (CUDA if present), cpu or cuda")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--out", type=Path, default=None, help="CSV path (default results/bench/<device>.csv)")
    p.add_argument(
        "--parity", metavar="CONFIG", default=None,
        help="instead of timing: train CONFIG in fp32 and in bf16+channels_last for each seed and "
        "compare val mIoU (writes results/bench/precision_parity.csv)",
    )
    p.add_argument(
        "--loader", metavar="CONFIG", default=None,
        help="instead of timing the model: time CONFIG's training data pipeline against its training "
        "step (writes results/bench/<device>-loader.csv)",
    )
    p.add_argument("--batches", type=int, default=20, help="with --loader: batches to time")
    p.add_argument(
        "--runs", action="store_true",
        help="instead of timing steps: time whole runs of the study's standard model on each run path "
        "(jobs at once, threads, boundary IoU, fused SGD, compile), start-up to ledger entry "
        "(writes results/bench/<device>-runs.csv and <device>-runs-each.csv)",
    )
    p.add_argument("--paths", default=",".join(RUN_PATH_NAMES), help="with --runs: comma-separated, the first is the reference")
    p.add_argument("--profile", default="cpu", help="with --runs: the study profile whose recipe is trained")
    p.add_argument("--steps", type=int, default=500, help="with --runs: training steps of each run")
    p.add_argument("--evals", type=int, default=2, help="with --runs: validations per run (the last at the end)")
    p.add_argument("--seeds", default="0,1,2", help="with --parity: comma-separated seeds")
    p.add_argument("--runs-dir", default="runs/parity", help="with --parity: where the runs go")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="with --parity or --loader: config overrides")
    p.set_defaults(func=run)


def _write_csv(rows: list[dict], out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".csv.tmp")
    with open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    tmp.replace(out)


def _command(args: argparse.Namespace) -> dict:
    return {
        "command": "refinenet " + shlex.join(sys.argv[1:]) if sys.argv and sys.argv[0].endswith("refinenet") else None,
        "arguments": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k != "func"},
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def run_parity(args: argparse.Namespace) -> int:
    from .parity import parity_verdict, precision_parity
    from .suite import hardware
    from ..engine.precision import resolve_device

    seeds = [int(s) for s in args.seeds.split(",") if s]
    if len(seeds) < 2:
        raise ValueError("--parity needs at least 2 seeds (--seeds 0,1,2) to have a seed spread")
    start = time.time()
    rows = precision_parity(args.parity, args.overrides, seeds, out_dir=args.runs_dir,
                            progress=lambda line: print(line, flush=True))
    hw = hardware(resolve_device("auto"))
    rows = [{**r, **hw} for r in rows]
    out = args.out or Path("results") / "bench" / "precision_parity.csv"
    _write_csv(rows, out)
    verdict = parity_verdict(rows)
    meta = {**_command(args), "wall_s": round(time.time() - start, 1), "verdict": verdict}
    out.with_suffix(".json").write_text(json.dumps(meta, indent=2) + "\n")
    for name in ("fp32", "bf16+channels_last"):
        v = verdict[name]
        print(f"{name:<20} val mIoU {100 * v['mean']:.2f} +- {100 * v['std']:.2f} (n={v['n']})")
    print(f"difference {100 * verdict['difference']:+.2f} points; within the seed spread: {verdict['within_seed_spread']}")
    print(f"wrote {out}")
    return 0


def run_loader(args: argparse.Namespace) -> int:
    import torch

    from .loader import loader_vs_step
    from .suite import hardware

    start = time.time()
    row = loader_vs_step(args.loader, args.overrides, device=args.device, batches=args.batches,
                         warmup=args.warmup, repeats=args.repeats)
    device = torch.device(row.pop("device"))  # the config's own device when --device is auto
    row = {**row, **hardware(device)}
    out = args.out or Path("results") / "bench" / f"{device.type}-loader.csv"
    _write_csv([row], out)
    meta = {**_command(args), "wall_s": round(time.time() - start, 1), "torch": torch.__version__, "rows": 1}
    out.with_suffix(".json").write_text(json.dumps(meta, indent=2) + "\n")
    print(
        f"loader {row['loader_images_per_s']:.1f} images/s ({row['pipeline']}), training step "
        f"{row['step_images_per_s']:.1f} images/s: the loader is {row['loader_over_step']:.1f}x faster"
    )
    print(f"wrote {out}")
    return 0


def run_runs(args: argparse.Namespace) -> int:
    import torch

    from .runs import RUN_PATHS, run_paths
    from .suite import hardware

    names = [n for n in args.paths.split(",") if n]
    if not names:
        raise ValueError(f"--paths: no run path given; choose from {list(RUN_PATHS)}")
    unknown = [n for n in names if n not in RUN_PATHS]
    if unknown:
        raise ValueError(f"--paths: unknown {unknown}; choose from {list(RUN_PATHS)}")
    if args.steps < 1 or args.evals < 1:
        raise ValueError(f"--steps and --evals must be >= 1, got {args.steps} and {args.evals}")
    start = time.time()
    rows, each = run_paths([RUN_PATHS[n] for n in names], profile=args.profile, steps=args.steps, evals=args.evals,
                           progress=lambda line: print(line, flush=True))
    hw = hardware(torch.device("cpu"))
    out = args.out or Path("results") / "bench" / "cpu-runs.csv"
    _write_csv([{**r, **hw} for r in rows], out)
    _write_csv(each, out.with_name(out.stem + "-each.csv"))
    meta = {**_command(args), "wall_s": round(time.time() - start, 1), "torch": torch.__version__, "rows": len(rows), **hw}
    out.with_suffix(".json").write_text(json.dumps(meta, indent=2) + "\n")
    for r in rows:
        print(f"{r['path']:<48} x{r['speedup']:.2f}")
    print(f"wrote {out}")
    return 0


def run(args: argparse.Namespace) -> int:
    if sum(map(bool, (args.parity, args.loader, args.runs))) > 1:
        raise ValueError("--parity, --loader and --runs are separate measurements: give one of them")
    if args.runs:
        return run_runs(args)
    if args.parity:
        return run_parity(args)
    if args.loader:
        return run_loader(args)
    if args.overrides:
        raise ValueError(f"key=value overrides ({args.overrides[0]}, ...) only apply with --parity or --loader CONFIG")
    import torch

    from ..engine.precision import resolve_device
    from .suite import PRESET_NAMES, default_paths, preset_configs, run_suite

    names = [n for n in args.preset.split(",") if n]
    unknown = [n for n in names if n not in PRESET_NAMES]
    if unknown:
        raise ValueError(f"unknown preset(s) {unknown}; choose from {list(PRESET_NAMES)}")
    modes = [m for m in args.modes.split(",") if m]
    if not modes or any(m not in ("inference", "train") for m in modes):
        raise ValueError(f"--modes must be a comma-separated subset of inference,train; got {args.modes!r}")
    if args.repeats < 1 or args.warmup < 0:
        raise ValueError("--repeats must be >= 1 and --warmup >= 0")
    device = resolve_device(args.device)
    out = args.out or Path("results") / "bench" / f"{device.type}.csv"
    configs = [c for n in names for c in preset_configs(n, device)]
    start = time.time()
    rows = run_suite(
        configs,
        default_paths(device, compile=args.compile),
        device,
        modes=modes,
        warmup=args.warmup,
        repeats=args.repeats,
        progress=lambda line: print(line, flush=True),
    )
    _write_csv(rows, out)
    meta = {**_command(args), "wall_s": round(time.time() - start, 1), "torch": torch.__version__, "rows": len(rows)}
    out.with_suffix(".json").write_text(json.dumps(meta, indent=2) + "\n")
    print(f"wrote {out} ({len(rows)} rows) in {meta['wall_s']} s")
    return 0
