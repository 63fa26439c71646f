"""Does a fast path keep the accuracy? Train the same config in fp32 and with the fast path.

``refinenet bench --parity CONFIG [key=value ...]`` trains ``CONFIG`` once per seed in plain
fp32 NCHW and once with bf16 autocast + channels_last, and writes one row per run (val mIoU,
training time, images/s). A fast path may become a default only if its mean val mIoU lies
within the seed spread of fp32's. Finished runs are reused (the engine keys them by config).
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence

__all__ = ["PRECISIONS", "precision_parity", "parity_verdict"]

# name -> config overrides
PRECISIONS = {
    "fp32": ["precision.amp=none", "precision.channels_last=false"],
    "bf16+channels_last": ["precision.amp=bf16", "precision.channels_last=true"],
}


def precision_parity(config: str, overrides: Sequence[str], seeds: Sequence[int], *, out_dir: str, progress=print) -> list[dict]:
    """Train ``config`` for every seed x precision; one row per run."""
    from ..engine import train

    rows = []
    for seed in seeds:
        for name, switches in PRECISIONS.items():
            run = train(
                config,
                resume=True,
                overrides=[*overrides, f"seed={seed}", f"out_dir={out_dir}", "log.progress=none", *switches],
            )
            row = {
                "precision": name,
                "seed": seed,
                "val_miou": run.metrics["miou"],
                "train_seconds": run.summary.get("train_seconds"),
                "images_per_s": run.summary.get("images_per_s"),
                "steps": run.summary.get("steps"),
                "run": run.dir.name,
            }
            rows.append(row)
            progress(f"parity {name:<20} seed {seed}: val mIoU {100 * row['val_miou']:.2f}  ({run.dir})")
    return rows


def parity_verdict(rows: list[dict]) -> dict:
    """Mean and std of val mIoU per precision, and whether the fast path is within fp32's spread.

    "Within the seed spread": |mean(fast) - mean(fp32)| <= max(std(fp32), std(fast)).
    """
    by = {name: [r["val_miou"] for r in rows if r["precision"] == name] for name in PRECISIONS}
    out = {}
    for name, values in by.items():
        out[name] = {
            "n": len(values),
            "mean": statistics.fmean(values),
            "std": statistics.stdev(values) if len(values) > 1 else float("nan"),
        }
    base, fast = out["fp32"], out["bf16+channels_last"]
    spread = max(base["std"], fast["std"])
    out["difference"] = fast["mean"] - base["mean"]
    out["within_seed_spread"] = abs(out["difference"]) <= spread
    return out
