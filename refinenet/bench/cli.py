"""``refinenet bench``: speed and memory of RefineNet's fast paths against the plain baseline."""

from __future__ import annotations

import argparse
import csv
import json
import shlex
import sys
import time
from pathlib import Path


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "bench",
        help="measure inference latency, training throughput and memory of the fast paths",
        description="Measure RefineNet inference latency, training throughput, peak memory and "
        "achieved FLOP/s (as a fraction of a matmul peak measured by the same command) for "
        "each fast path, against plain fp32 NCHW eager in the same run. Writes a CSV and a "
        "JSON file with the command and the hardware.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--preset", default="paper,study", help="comma-separated: paper, study, tiny")
    p.add_argument("--modes", default="inference,train", help="comma-separated: inference, train")
    p.add_argument("--compile", action="store_true", help="also measure torch.compile (slow to compile)")
    p.add_argument("--device", default="auto", help="auto (CUDA if present), cpu or cuda")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--out", type=Path, default=None, help="CSV path (default results/bench/<device>.csv)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from ..engine.precision import resolve_device
    from .suite import PRESETS, default_paths, run_suite

    names = [n for n in args.preset.split(",") if n]
    unknown = [n for n in names if n not in PRESETS]
    if unknown:
        raise ValueError(f"unknown preset(s) {unknown}; choose from {sorted(PRESETS)}")
    modes = [m for m in args.modes.split(",") if m]
    if not modes or any(m not in ("inference", "train") for m in modes):
        raise ValueError(f"--modes must be a comma-separated subset of inference,train; got {args.modes!r}")
    if args.repeats < 1 or args.warmup < 0:
        raise ValueError("--repeats must be >= 1 and --warmup >= 0")
    device = resolve_device(args.device)
    out = args.out or Path("results") / "bench" / f"{device.type}.csv"
    configs = [c for n in names for c in PRESETS[n]]
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
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".csv.tmp")
    with open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    tmp.replace(out)
    meta = {
        "command": "refinenet " + shlex.join(sys.argv[1:]) if sys.argv and sys.argv[0].endswith("refinenet") else None,
        "arguments": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k != "func"},
        "wall_s": round(time.time() - start, 1),
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "torch": torch.__version__,
        "rows": len(rows),
    }
    out.with_suffix(".json").write_text(json.dumps(meta, indent=2) + "\n")
    print(f"wrote {out} ({len(rows)} rows) in {meta['wall_s']} s")
    return 0
