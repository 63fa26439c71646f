"""Train one planned run and record it in the ledger.

:func:`record_run` trains a run with the engine (checkpoints stay under ``runs/``, outside
git, so an interrupted run resumes there), scores it on the test split on the data set's
native labels, keeps the small artefacts the notebooks need, and writes the ledger entry.
"""

from __future__ import annotations

import math
import platform
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .ledger import Entry, Ledger

__all__ = ["record_run", "multiscale_test", "machine", "provenance"]

# The scores an entry keeps from an evaluation (no confusion per scale, no timing noise).
_KEPT = (
    "miou", "iou", "pixel_accuracy", "mean_class_accuracy", "class_accuracy", "boundary_iou",
    "boundary_iou_per_class", "class_names", "confusion", "pixels", "images", "split",
    "scales", "flip", "label_size",
)


@dataclass
class _PerImage:
    """Collects per-image scores and the predictions to keep during one test pass."""

    num_classes: int
    ignore_index: int
    keep: set

    def __post_init__(self) -> None:
        self.rows: list[dict] = []
        self.kept: dict[int, Any] = {}
        self.candidates: list[tuple[float, int, Any]] = []

    def __call__(self, index: int, pred, mask) -> None:
        from ..engine.metrics import confusion_matrix, scores_from_confusion

        cm = confusion_matrix(pred[None], mask[None], self.num_classes, self.ignore_index)
        s = scores_from_confusion(cm)
        self.rows.append({"image": index, "miou": _round(s["miou"]), "pixel_accuracy": _round(s["pixel_accuracy"])})
        if index in self.keep:
            self.kept[index] = pred.to("cpu", copy=True)


def _round(x: float) -> float:
    return round(float(x), 6) if math.isfinite(float(x)) else math.nan


def machine(device: str) -> dict:
    """Where a run trained: device, CPU model, core and thread counts, GPU name."""
    import os

    import torch

    from ..environment import cpu_name

    out = {"device": device, "cpu": cpu_name(), "cpu_count": os.cpu_count(), "threads": torch.get_num_threads()}
    if device.startswith("cuda") and torch.cuda.is_available():
        out["gpu"] = torch.cuda.get_device_name(0)
    return out


def provenance(root) -> dict:
    """Commit and library versions."""
    from ..environment import collect_environment

    env = collect_environment(root, "cpu")
    return {"git": env["git"], "versions": env["versions"], "platform": platform.platform()}


def _kept(metrics: dict, dataset: str | None = None) -> dict:
    """The scores an entry keeps, plus the thin classes' mean IoU (``thin_class_miou``)."""
    out = {k: metrics[k] for k in _KEPT if k in metrics}
    from .published import THIN_CLASSES

    thin = [c for c in THIN_CLASSES.get(dataset or "", ()) if c in out.get("class_names", [])]
    values = [out["iou"][out["class_names"].index(c)] for c in thin]
    values = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    if thin:
        out["thin_classes"] = thin
        out["thin_class_miou"] = sum(values) / len(values) if values else math.nan
    return out


def record_run(
    cfg,
    run_id: str,
    ledger: Ledger,
    *,
    arm: str,
    examples: int,
    failures: int,
    test_scales: Sequence[float] | None = None,
    retrain: bool = False,
    root=None,
    inside: bool = False,
) -> Entry:
    """Train ``cfg`` (resuming its checkpoint if one exists), evaluate, write its entry.

    ``test_scales``: also score the test split with these scales and flips (the released
    code's multi-scale evaluation). ``retrain``: start over even if a finished run of this
    config sits in the checkpoint folder. ``inside``: also keep what the model's blocks do
    on the first two shown test images (:mod:`refinenet.study.inside`, under ``inside/``).
    """
    from ..engine import NonFiniteLossError, train
    from ..engine.identity import run_dir
    from ..engine.precision import resolve_device
    from ..engine.run import Run

    entry: dict[str, Any] = {"run_id": run_id, "arm": arm, "status": "trained", "diverged_at": None}
    try:
        run = train(cfg, resume=True, force=retrain)
    except NonFiniteLossError as err:
        run = Run.load(run_dir(cfg), reused=False)
        entry.update(status="diverged", diverged_at=err.step)
        entry["train"] = {"steps": cfg.schedule.steps, "steps_done": err.step, "train_seconds": None}
        entry["metrics"] = {"val": None, "test": None}
    if entry["status"] == "trained":
        s = run.summary
        entry["train"] = {
            "steps": s.get("steps"),
            "steps_done": s.get("steps"),
            "train_seconds": s.get("train_seconds"),
            "seconds_per_step": round(s["train_seconds"] / s["steps"], 4) if s.get("train_seconds") else None,
            "images_per_s": s.get("images_per_s"),
            "eval_seconds": s.get("eval_seconds"),
            "parameters": s.get("parameters"),
            "precision": s.get("precision"),
            "resumed_from_step": s.get("resumed_from_step"),
        }
        scoring = time.perf_counter()
        test, per_image, kept = _score_test(run, cfg, examples, failures, inside=inside)
        metrics = {"val": _kept(run.metrics, cfg.data.dataset), "test": _kept(test, cfg.data.dataset)}
        if test_scales:
            metrics["test_multiscale"] = multiscale_test(cfg, test_scales)
        entry["metrics"] = metrics
        entry["score_seconds"] = round(time.perf_counter() - scoring, 1)
        entry["artefacts"] = {"examples": sorted(kept["examples"]), "failures": kept["failures"]}
    entry["machine"] = machine(resolve_device(cfg.device).type)
    entry["provenance"] = provenance(root)
    entry["identity"] = _identity(cfg)
    palette = None
    if entry["status"] == "trained":
        palette = [list(c) for c in run.summary.get("dataset_info", {}).get("palette", [])]
    written = ledger.write(
        run_id,
        config_yaml=cfg.to_yaml(),
        entry=entry,
        history_dir=run.dir / "history",
        per_image=per_image if entry["status"] == "trained" else None,
        predictions=kept["predictions"] if entry["status"] == "trained" else None,
        palette=palette,
        inside=kept.get("inside") if entry["status"] == "trained" else None,
    )
    return written


def multiscale_test(cfg, scales: Sequence[float]) -> dict:
    """The test metrics of ``cfg``'s trained run averaged over ``scales`` and flips."""
    from ..engine.identity import run_dir
    from ..engine.run import Run

    run = Run.load(run_dir(cfg))
    result = run.evaluate("test", scales=tuple(scales), flip=True, native_labels=_native_ok(cfg),
                          device=cfg.device, batch_size=1, boundary=cfg.eval.boundary)
    return _kept(result, cfg.data.dataset)


def _identity(cfg) -> dict:
    from ..engine.identity import run_identity

    return run_identity(cfg)


def _score_test(run, cfg, examples: int, failures: int, *, inside: bool = False):
    """One pass over the test split on native labels: metrics, per-image scores, kept
    predictions; with ``inside``, what the blocks do on the first two shown images."""
    import numpy as np

    from ..engine.data import build_eval_set
    from ..engine.evaluation import evaluate

    dataset = build_eval_set(cfg, "test", native_labels=_native_ok(cfg))
    n = len(dataset)
    shown = sorted({int(i) for i in np.linspace(0, n - 1, min(examples, n)).round()}) if examples else []
    collect = _PerImage(int(dataset.num_classes), int(dataset.ignore_index), set(shown))
    # Keep every prediction in memory would cost 233 x 360 x 480 bytes; keep the shown ones
    # now and recompute the worst few after the pass.
    model = run.load_model()
    test = evaluate(
        model, dataset, split="test", batch_size=1, device=cfg.device, boundary=cfg.eval.boundary,
        amp=run.summary["precision"]["amp"], channels_last=run.summary["precision"]["channels_last"],
        on_image=collect,
    )
    rows = collect.rows
    finite = [r for r in rows if math.isfinite(r["miou"])]
    worst = [r["image"] for r in sorted(finite, key=lambda r: (r["miou"], r["image"]))[:failures]]
    missing = [i for i in worst if i not in collect.kept]
    if missing:
        again = _PerImage(collect.num_classes, collect.ignore_index, set(missing))
        subset = _Subset(dataset, missing)
        evaluate(
            model, subset, split="test", batch_size=1, device=cfg.device, boundary=False,
            amp=run.summary["precision"]["amp"], channels_last=run.summary["precision"]["channels_last"],
            on_image=lambda i, pred, mask: again(missing[i], pred, mask),
        )
        collect.kept.update(again.kept)
    names = list(getattr(dataset, "names", [])) or [str(i) for i in range(n)]
    per_image = [{"image": r["image"], "name": names[r["image"]], "miou": r["miou"], "pixel_accuracy": r["pixel_accuracy"]} for r in rows]
    kept = {"examples": shown, "failures": worst, "predictions": collect.kept}
    if inside and shown and getattr(model, "blocks", None):
        import torch

        from .inside import capture

        chosen = shown[:2]  # the same test images in every run; the book reads them from the data
        kept["inside"] = capture(model, torch.stack([dataset[i][0] for i in chosen]), indices=chosen,
                                 class_names=list(dataset.class_names),
                                 palette=run.summary.get("dataset_info", {}).get("palette"))
    return test, per_image, kept


class _Subset:
    """Some images of an evaluation set, keeping its class attributes."""

    def __init__(self, dataset, indices):
        self.dataset, self.indices = dataset, list(indices)
        for name in ("num_classes", "ignore_index", "class_names"):
            setattr(self, name, getattr(dataset, name))

    def __len__(self):
        return len(self.indices)

    def __getitem__(self, i):
        return self.dataset[self.indices[i]]


def _native_ok(cfg) -> bool:
    """Native labels exist for the data sets of fixed native size (CamVid)."""
    return cfg.data.dataset == "camvid"
