"""``train(cfg)``: one training run, from config to a finished run directory.

The loop, step by step (``step`` counts optimisation steps done):

1. Lock the run directory (one process trains a run at a time; an output folder that is not
   writable fails here, before any work), then decide what it holds (new / finished /
   partial); a finished run with the same config is returned as is, unless ``force``.
2. Build the data (a missing data root or a label outside the classes in the validation
   split fails here, before anything is written or trained), the model,
   optimiser, schedule and grad scaler; on ``resume``, load them and the RNG states from the
   checkpoint and drop history rows past its step.
3. Train. Losses are checked for NaN/inf at every flush (every step on CPU; every
   ``log.every`` steps on CUDA, where reading the loss costs a device sync), and always before
   a checkpoint is written, so a checkpoint never holds weights that produced a bad loss.
4. At the end: final checkpoint, validation, ``summary.json``, then ``metrics.json`` (whose
   presence marks the run finished).

Exact resume: the data order is a function of (seed, epoch), each sample's augmentation of
(seed, epoch, index), and everything else that is random (dropout) comes from the global torch
RNG, which is saved in the checkpoint. A resumed run therefore computes the same steps, bit
for bit on CPU with ``deterministic=true``, as one that never stopped.
"""

from __future__ import annotations

import math
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from . import distributed
from .checkpoint import atomic_write_json, atomic_write_text, load_weights, read_checkpoint, rng_state, save_checkpoint, set_rng_state
from .class_weights import median_frequency_weights
from .config import TrainConfig, load_config
from .data import DatasetInfo, EpochSampler, SeededSamples, build_eval_set, build_train_set, resolve_workers, train_loader
from .evaluation import evaluate
from ..environment import cpu_name
from .history import HistoryWriter
from .identity import run_id as run_dir_id
from .optim import backbone_lr_mult, build_optimizer, build_scheduler
from .precision import Precision, resolve_device, resolve_precision
from .progress import progress_bar
from .reproducibility import sample_seed, seed_everything, set_deterministic
from .run import Run, RunLock, inspect_run_dir
from .step import train_step

__all__ = ["train", "NonFiniteLossError", "batch_source"]

EVAL_ROW_KEYS = ("miou", "pixel_accuracy", "mean_class_accuracy", "boundary_iou", "iou", "boundary_iou_per_class", "images", "seconds")


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or infinite; the message names the step and the last good checkpoint."""

    def __init__(self, step: int, value: float, checkpoint: Path | None, checkpoint_step: int | None) -> None:
        self.step, self.value, self.checkpoint, self.checkpoint_step = step, value, checkpoint, checkpoint_step
        kept = (
            f"the last good checkpoint is {checkpoint} (step {checkpoint_step})"
            if checkpoint_step
            else "no checkpoint had been written yet"
        )
        super().__init__(
            f"loss is {value} at step {step}; training stopped and {kept}. Lower optim.lr, add "
            f"schedule.warmup_steps or optim.grad_clip, or use precision.amp=none"
        )


def _as_config(cfg: Any, overrides: Any) -> TrainConfig:
    if isinstance(cfg, (str, os.PathLike)):
        return load_config(cfg, overrides)
    if isinstance(cfg, dict):
        cfg = TrainConfig.from_dict(cfg)
    if not isinstance(cfg, TrainConfig):
        raise ValueError(f"train() takes a TrainConfig, a dict or a YAML path, got {type(cfg).__name__}")
    # Re-validate: fields may have been assigned after construction.
    cfg = TrainConfig.from_dict(cfg.to_dict())
    return cfg.replace(overrides) if overrides else cfg


def train(
    cfg: TrainConfig | dict | str | os.PathLike,
    *,
    resume: bool = False,
    force: bool = False,
    overrides: list[str] | dict | None = None,
) -> Run:
    """Train one run and return it (or return the finished run already on disk).

    Args:
        cfg: a :class:`TrainConfig`, a nested dict, or the path of a YAML config.
        resume: continue a partial run in the same directory from its checkpoint (exactly:
            same steps, same data, same random numbers). Without a checkpoint it starts afresh.
        force: retrain even if a finished run with this config exists (its files are
            replaced). A directory holding a *different* run is never overwritten.
        overrides: ``["optim.lr=0.1", ...]`` or ``{"optim.lr": 0.1}`` applied to ``cfg``.

    Returns a :class:`Run` (directory, config, history, final validation metrics).

    Raises:
        ValueError: bad config values, a data/model mismatch, a checkpoint of another
            architecture or process count.
        FileNotFoundError: missing data root or files.
        FileExistsError: the run directory holds another run, or a partial run of this config
            and neither ``resume`` nor ``force`` was given; ``RunBusyError`` when another
            process is training this run.
        PermissionError: ``NotWritableError``, the output folder does not allow writing.
        OSError: ``WriteError``, a file could not be written (disk full); files written
            before are intact.
        NonFiniteLossError: the loss diverged (the last good checkpoint is kept).

    Side effects: seeds the global RNGs of this process (from ``cfg.seed``); deterministic
    and cuDNN flags are restored when it returns.
    """
    cfg = _as_config(cfg, overrides)
    env = distributed.from_env()
    device = resolve_device(cfg.device, env.local_rank)
    precision = resolve_precision(cfg.precision, device, deterministic=cfg.deterministic)
    if cfg.distributed.sync_bn and env.enabled and device.type != "cuda":
        raise ValueError("distributed.sync_bn=true needs CUDA (SyncBatchNorm has no CPU kernel); set it to false")
    flags = (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
        torch.backends.cudnn.deterministic,
        torch.backends.cudnn.benchmark,
    )
    try:
        with distributed.join(cfg.distributed.backend, device) as group:
            return _Trainer(cfg, group, device, precision).run(resume=resume, force=force)
    finally:
        torch.use_deterministic_algorithms(flags[0], warn_only=flags[1])
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = flags[2], flags[3]


@dataclass
class _Pending:
    step: int
    epoch: int
    loss: torch.Tensor
    lr: float
    lr_backbone: float


class _Trainer:
    """One run's training. Written for one process: whatever differs with several goes
    through ``self.group`` (:mod:`refinenet.engine.distributed`), which is the identity for a
    group of one; files are written by rank 0 only (``group.only_main``)."""

    def __init__(self, cfg: TrainConfig, group: distributed.SingleProcess, device: torch.device, precision: Precision) -> None:
        self.cfg = cfg
        self.group = group
        self.device = device
        self.precision = precision
        self.global_batch = cfg.data.batch_size * group.world_size

    # -- set-up -------------------------------------------------------------------------------

    def _inspect(self) -> tuple[Any, str | None]:
        try:
            return inspect_run_dir(self.cfg), None
        except FileExistsError as err:
            return None, str(err)

    def _decide(self, resume: bool, force: bool):
        """Rank 0 inspects the run directory; every rank gets the same verdict."""
        state, error = self.group.from_main(self._inspect)
        if error:
            raise FileExistsError(error)
        if state.status == "partial" and not force and state.unreadable:
            # Nothing to continue from: starting over is the only way on.
            raise FileExistsError(
                f"{state.dir} holds an unfinished run of this config whose checkpoint cannot be read "
                f"({state.unreadable}); pass force=True (--force) to start it over from step 0"
            )
        if state.status == "partial" and not resume and not force:
            raise FileExistsError(
                f"{state.dir} holds an unfinished run of this config (checkpoint at step "
                f"{state.checkpoint_step}); pass resume=True (--resume) to continue it or force=True "
                f"(--force) to start over"
            )
        return state

    def _lock(self, force: bool) -> Exception | None:
        """Rank 0 locks the run directory; returns the error (sent to every rank) or None.

        A finished run in a folder that is not writable is still reused (read only, unlocked).
        """
        from .checkpoint import NotWritableError
        from .identity import run_dir

        self.lock = RunLock(run_dir(self.cfg))
        try:
            self.lock.acquire()
        except NotWritableError as err:
            self.lock = None
            state, _ = self._inspect()
            if state is not None and state.status == "finished" and not force:
                return None
            return err
        except FileExistsError as err:  # RunBusyError
            self.lock = None
            return err
        return None

    def _unlock(self) -> None:
        if self.lock is not None:
            self.lock.release()

    def _open_run_dir(self, run_dir: Path, fresh: bool) -> HistoryWriter:
        """Prepare the run directory (rank 0): config.yaml written, history ready to append."""
        run_dir.mkdir(parents=True, exist_ok=True)
        for stale in run_dir.glob(".*.tmp"):  # left by a process killed mid-write
            stale.unlink()
        if fresh:
            _clear_run(run_dir)
        atomic_write_text(run_dir / "config.yaml", self.cfg.to_yaml())
        return HistoryWriter(run_dir, tensorboard=self.cfg.log.tensorboard)

    def run(self, *, resume: bool, force: bool) -> Run:
        self.lock = None
        error = self.group.from_main(self._lock, force)
        if error is not None:
            raise error
        try:
            return self._run(resume=resume, force=force)
        finally:
            self.group.only_main(self._unlock)

    def _run(self, *, resume: bool, force: bool) -> Run:
        cfg, group, device, precision = self.cfg, self.group, self.device, self.precision
        state = self._decide(resume, force)
        run_dir = state.dir
        self.run_id = run_dir_id(cfg)
        if state.status == "finished" and not force:
            return Run.load(run_dir, reused=True)
        resume_from = run_dir / "checkpoint.pt" if state.status == "partial" and resume and not force else None

        if cfg.log.tensorboard:
            _require_tensorboard()
        # Data first: a missing root or a bad split fails before anything is written.
        train_set = build_train_set(cfg)
        val_set = build_eval_set(cfg)
        ds_info = DatasetInfo.of(cfg.data.dataset, train_set)
        check_eval_labels(val_set, cfg.data.val_split, ds_info)
        batch, world = cfg.data.batch_size, group.world_size
        steps_per_epoch = (len(train_set) // world) // batch
        if steps_per_epoch < 1:
            raise ValueError(
                f"the {cfg.data.train_split!r} split of {cfg.data.dataset!r} has {len(train_set)} images, fewer "
                f"than one batch of data.batch_size={batch} x {world} process(es); lower data.batch_size"
            )

        class_weight = None
        if cfg.loss.class_weights == "median_frequency":
            # From the raw training masks, the same on every rank (no RNG involved).
            class_weight = median_frequency_weights(train_set, ds_info.num_classes, ds_info.ignore_index, cfg.loss.class_weight_power).to(device)

        set_deterministic(cfg.deterministic)
        seed_everything(cfg.seed)
        model = self._build_model(ds_info)
        group.reseed(cfg.seed)
        optimizer = build_optimizer(
            model, cfg.optim, pretrained=cfg.model.backbone_weights is not None, fused=precision.fused_optimizer and device.type == "cuda"
        )
        scheduler = build_scheduler(optimizer, cfg.schedule)
        scaler = torch.amp.GradScaler(device.type, enabled=precision.grad_scaler)

        step, train_seconds = 0, 0.0
        if resume_from is not None:
            ckpt = read_checkpoint(resume_from)
            self._check_resumable(ckpt, steps_per_epoch)
            load_weights(model, ckpt)
            optimizer.load_state_dict(ckpt["optimizer"])
            scheduler.load_state_dict(ckpt["scheduler"])
            scaler.load_state_dict(ckpt["scaler"])
            set_rng_state(ckpt["rng"][group.rank])
            step, train_seconds = int(ckpt["step"]), float(ckpt.get("train_seconds", 0.0))

        torch.backends.cudnn.benchmark = precision.cudnn_benchmark
        trained = group.wrap(model, device)
        if precision.compile:
            trained = torch.compile(trained)

        history = group.only_main(self._open_run_dir, run_dir, fresh=resume_from is None)
        # History rows up to the resume step: read by rank 0, the same on every rank (the
        # logged losses are means over the ranks).
        kept = group.from_main(history.start, step)

        self.model, self.trained, self.optimizer, self.scheduler, self.scaler = model, trained, optimizer, scheduler, scaler
        self.history, self.run_dir, self.ds_info, self.class_weight = history, run_dir, ds_info, class_weight
        self.val_set, self.steps_per_epoch = val_set, steps_per_epoch
        self.step, self.train_seconds, self.start_step = step, train_seconds, step
        self.checkpoint_step = step if resume_from is not None else None
        epoch_now = step // steps_per_epoch
        self.epoch_losses = [r["loss"] for r in kept["steps"] if r["epoch"] == epoch_now]
        try:
            if cfg.log.progress != "none":
                group.only_main(print, self._banner(resume_from), file=sys.stderr, flush=True)
            self._loop(train_set)
            final = self._final_eval()
        finally:
            history.close()
        group.barrier()
        # Off rank 0, which wrote no files: the final metrics only.
        return group.only_main(Run.load, run_dir, reused=False) or Run(run_dir, cfg, final, {}, {}, False)

    def _build_model(self, ds_info: DatasetInfo) -> nn.Module:
        from ..models import RefineNet

        # Everything but the class count comes from cfg.model (model.output="quarter": logits,
        # and so the loss, at 1/4 of the input). A model.num_classes that disagrees with the
        # data fails here, before the run directory is touched.
        where = f"dataset {self.cfg.data.dataset!r}"
        model = RefineNet(self.cfg.model.with_classes(ds_info.num_classes, where))
        if self.cfg.distributed.sync_bn:
            model = self.group.sync_batchnorm(model)
        model = model.to(self.device)
        if self.precision.channels_last:
            model = model.to(memory_format=torch.channels_last)
        return model

    def _check_resumable(self, ckpt: dict, steps_per_epoch: int) -> None:
        where = ckpt.get("path")
        if ckpt.get("run_id") != self.run_id:
            raise ValueError(
                f"checkpoint {where} belongs to another run (id {ckpt.get('run_id')}, this one is {self.run_id}: "
                f"another config, data or backbone weights); cannot resume from it"
            )
        if ckpt.get("world_size") != self.group.world_size or ckpt.get("steps_per_epoch") != steps_per_epoch:
            raise ValueError(
                f"checkpoint {where} was written by {ckpt.get('world_size')} process(es) with "
                f"{ckpt.get('steps_per_epoch')} steps per epoch; this run has {self.group.world_size} and "
                f"{steps_per_epoch}. Resume with the same number of processes and the same data"
            )

    def _banner(self, resume_from: Path | None) -> str:
        cfg, p = self.cfg, self.precision
        what = f"resuming at step {self.step}" if resume_from else "training"
        return (
            f"refinenet: {what} {self.run_dir} | {cfg.schedule.steps} steps x {self.global_batch} "
            f"images | {self.steps_per_epoch} steps/epoch | device {p.device} x{self.group.world_size} | amp {p.amp}, "
            f"channels_last {p.channels_last}, compile {p.compile}"
            + (f" | class weights {cfg.loss.class_weights}" if cfg.loss.class_weights != "none" else "")
        )

    # -- the loop -----------------------------------------------------------------------------

    def _loop(self, train_set) -> None:
        cfg, device = self.cfg, self.device
        total = cfg.schedule.steps
        if self.step >= total:
            return
        batches = batch_source(train_set, cfg, self.group, device)
        flush_every = 1 if device.type == "cpu" else cfg.log.every
        bar = self.group.only_main(
            progress_bar,
            total=total,
            initial=self.step,
            desc=self.run_dir.name,
            disable=cfg.log.progress == "none",
            live=True if cfg.log.progress == "bar" else None,
        )
        self.bar, self.pending = bar, []
        self.window_start, self.window_images = time.perf_counter(), 0
        self.epoch_seconds_start = self.train_seconds
        try:
            while self.step < total:
                epoch, offset = divmod(self.step, self.steps_per_epoch)
                for images, masks in batches.epoch(epoch, offset):
                    lrs = [g["lr"] for g in self.optimizer.param_groups]  # [backbone, head]
                    loss = self._train_step(images, masks)
                    self.step += 1
                    self.pending.append(_Pending(self.step, epoch, loss.detach(), lrs[1], lrs[0]))
                    self.window_images += self.global_batch
                    finished = self.step >= total
                    end_of_epoch = self.step % self.steps_per_epoch == 0
                    do_eval = cfg.eval.every > 0 and self.step % cfg.eval.every == 0 and not finished
                    do_ckpt = finished or self.step % cfg.checkpoint_every == 0
                    if len(self.pending) >= flush_every or finished or end_of_epoch or do_eval or do_ckpt:
                        self._flush()
                    if end_of_epoch:
                        self._epoch_row(epoch)
                    if do_eval:
                        self._eval_row(self._evaluate())
                    if do_ckpt:
                        self._save_checkpoint()
                    if do_eval or do_ckpt:
                        self.window_start = time.perf_counter()  # not training time
                    if finished:
                        break
        finally:
            bar.close()

    def _train_step(self, images: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        loss = train_step(
            self.trained,
            self.optimizer,
            self.scaler,
            images.to(self.device, non_blocking=True),
            masks.to(self.device, non_blocking=True),
            precision=self.precision,
            ignore_index=self.ds_info.ignore_index,
            grad_clip=self.cfg.optim.grad_clip,
            clip_params=self.model.parameters(),
            class_weight=self.class_weight,
        )
        self.scheduler.step()
        return loss

    def _flush(self) -> None:
        """Check and record the pending losses (one device sync; one all-reduce under DDP)."""
        if not self.pending:
            return
        losses = self.group.mean(torch.stack([p.loss.float() for p in self.pending]))
        values = losses.cpu().tolist()
        now = time.perf_counter()
        seconds = now - self.window_start
        self.train_seconds += seconds
        ips = self.window_images / seconds if seconds > 0 else float("nan")
        rows = [
            {
                "step": p.step,
                "epoch": p.epoch,
                "loss": v,
                "lr": p.lr,
                "lr_backbone": p.lr_backbone,
                "images_per_s": round(ips, 3),
                "elapsed_s": round(self.train_seconds, 3),
            }
            for p, v in zip(self.pending, values)
        ]
        bad = next((r for r in rows if not math.isfinite(r["loss"])), None)
        if bad is not None:
            rows = rows[: rows.index(bad) + 1]
        self.history.steps(rows)
        self.epoch_losses += [r["loss"] for r in rows]
        self.bar.update(len(rows))
        self.bar.set_postfix(loss=f"{values[-1]:.4f}", lr=f"{rows[-1]['lr']:.2e}", img_s=f"{ips:.1f}", refresh=False)
        self.pending = []
        self.window_start, self.window_images = now, 0
        if bad is not None:
            ckpt = self.run_dir / "checkpoint.pt" if self.checkpoint_step else None
            raise NonFiniteLossError(bad["step"], bad["loss"], ckpt, self.checkpoint_step)

    def _epoch_row(self, epoch: int) -> None:
        seconds = self.train_seconds - self.epoch_seconds_start
        images = self.steps_per_epoch * self.global_batch
        self.history.epoch(
            {
                "epoch": epoch,
                "step": self.step,
                "loss": sum(self.epoch_losses) / max(1, len(self.epoch_losses)),
                "images": images,
                "seconds": round(seconds, 3),
                "images_per_s": round(images / seconds, 3) if seconds > 0 else None,
            }
        )
        self.epoch_losses = []
        self.epoch_seconds_start = self.train_seconds

    def _evaluate(self) -> dict:
        e, p = self.cfg.eval, self.precision
        self.group.sync_buffers(self.model)  # evaluate (and checkpoint) rank 0's BatchNorm statistics
        return evaluate(
            self.model,
            self.val_set,
            split=self.cfg.data.val_split,
            scales=e.scales,
            flip=e.flip,
            boundary=e.boundary,
            batch_size=e.batch_size,
            num_workers=resolve_workers(self.cfg.data.num_workers, self.device),
            device=self.device,
            amp=p.amp,
            channels_last=p.channels_last,
            group=self.group,
        )

    def _eval_row(self, metrics: dict) -> None:
        row = {"step": self.step, "epoch": (self.step - 1) // self.steps_per_epoch, "split": metrics.get("split")}
        row.update({k: metrics[k] for k in EVAL_ROW_KEYS if k in metrics})
        self.history.eval(row)
        if self.bar is not None and self.cfg.log.progress != "none":
            self.bar.write(f"step {self.step}: val mIoU {metrics['miou']:.4f}")

    def _save_checkpoint(self) -> None:
        rngs = self.group.gather(rng_state())  # every rank's, for an exact resume
        self.group.only_main(self._write_checkpoint, rngs)
        self.checkpoint_step = self.step
        self.group.barrier()

    def _write_checkpoint(self, rngs: list[dict]) -> None:
        kept = f"its checkpoint of step {self.checkpoint_step} is intact" if self.checkpoint_step else "no checkpoint had been written yet"
        save_checkpoint(
            self.run_dir / "checkpoint.pt",
            {
                "step": self.step,
                "epoch": self.step // self.steps_per_epoch,
                "steps_per_epoch": self.steps_per_epoch,
                "world_size": self.group.world_size,
                "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
                "scaler": self.scaler.state_dict(),
                "rng": rngs,
                "model_config": self.model.config.to_dict(),
                "train_config": self.cfg.to_dict(),
                "run_id": self.run_id,
                "dataset_info": self.ds_info.to_dict(),
                "train_seconds": self.train_seconds,
                "torch_version": torch.__version__,
            },
            hint=f"Training stopped at step {self.step}; {kept}. Free space, then run again with --resume",
        )

    def _final_eval(self) -> dict:
        self.bar = None
        metrics = self._evaluate()
        self._eval_row(metrics)
        self.group.only_main(self._write_results, metrics)
        return metrics

    def _write_results(self, metrics: dict) -> None:
        """``summary.json``, then ``metrics.json`` (whose presence marks the run finished)."""
        cfg, p = self.cfg, self.precision
        images = cfg.schedule.steps * self.global_batch
        summary = {
            "steps": cfg.schedule.steps,
            "steps_this_session": cfg.schedule.steps - self.start_step,
            "resumed_from_step": self.start_step or None,
            "steps_per_epoch": self.steps_per_epoch,
            "batch_size": self.global_batch,
            "world_size": self.group.world_size,
            "images": images,
            "train_seconds": round(self.train_seconds, 3),
            "images_per_s": round(images / self.train_seconds, 3) if self.train_seconds > 0 else None,
            "eval_seconds": round(metrics["seconds"], 3),
            "parameters": sum(t.numel() for t in self.model.parameters()),
            "backbone_lr_mult": backbone_lr_mult(cfg.optim, cfg.model.backbone_weights is not None),
            "precision": p.to_dict(),
            "device_name": torch.cuda.get_device_name(p.device) if p.device.type == "cuda" else cpu_name(),
            "threads": torch.get_num_threads(),
            "torch": torch.__version__,
            "run_id": self.run_id,
            "dataset_info": self.ds_info.to_dict(),
        }
        atomic_write_json(self.run_dir / "summary.json", summary)
        atomic_write_json(self.run_dir / "metrics.json", metrics)  # last: marks the run finished


def check_eval_labels(dataset, split: str, info: DatasetInfo) -> None:
    """Raise ``ValueError`` naming the sample if a label of ``dataset`` lies outside the classes
    (and is not the ignore index): one pass over the raw samples before the first step, so that
    bad validation labels do not surface only at the first evaluation, after training."""
    import numpy as np

    allowed = set(range(info.num_classes)) | {info.ignore_index}
    load = getattr(dataset, "load", None)
    names = getattr(dataset, "names", None)
    for i in range(len(dataset)):
        # load() skips the transforms; datasets that check their labels raise here themselves
        mask = load(i)[1] if load is not None else dataset[i][1]
        values = set(np.unique(np.asarray(mask)).tolist())
        bad = sorted(values - allowed)
        if bad:
            which = f"sample {i}" + (f" ({names[i]})" if names is not None and i < len(names) else "")
            shown = ", ".join(map(str, bad[:8])) + (", ..." if len(bad) > 8 else "")
            raise ValueError(
                f"the {split!r} split: {which} has label values {shown} outside the classes "
                f"0..{info.num_classes - 1} and the ignore index {info.ignore_index}; fix its label "
                f"file (found before training, nothing was trained)"
            )


def _require_tensorboard() -> None:
    try:
        import tensorboard  # noqa: F401
    except ImportError as err:
        raise ValueError(
            "log.tensorboard=true needs the tensorboard package (pip install tensorboard), or set log.tensorboard=false"
        ) from err


class _LoaderBatches:
    """Batches from a DataLoader: per-sample augmentation on the CPU (workers optional)."""

    on_device = False

    def __init__(self, train_set, cfg: TrainConfig, group: distributed.SingleProcess, device: torch.device) -> None:
        self.batch_size = cfg.data.batch_size
        self.sampler = EpochSampler(SeededSamples(train_set, cfg.seed), num_replicas=group.world_size, rank=group.rank, seed=cfg.seed)
        self.loader = train_loader(
            self.sampler.dataset,
            self.sampler,
            batch_size=cfg.data.batch_size,
            num_workers=resolve_workers(cfg.data.num_workers, device),
            device=device,
            seed=cfg.seed,
        )

    def epoch(self, epoch: int, offset: int):
        """The batches of ``epoch`` from batch ``offset`` on."""
        self.sampler.set_position(epoch, offset * self.batch_size)
        return iter(self.loader)


class _DeviceBatches:
    """Batches augmented on the device from the whole split held there
    (:class:`refinenet.data.gpu.DeviceLoader`). The same sampler gives the order; the
    augmentation generator is re-seeded per batch from (seed, epoch, first index), so a
    resumed run draws the same numbers."""

    on_device = True

    def __init__(self, train_set, cfg: TrainConfig, group: distributed.SingleProcess, device: torch.device) -> None:
        from ..data.gpu import DeviceLoader, DeviceSplit

        d = cfg.data
        self.batch_size, self.seed, self.device = d.batch_size, cfg.seed, device
        self.sampler = EpochSampler(train_set, num_replicas=group.world_size, rank=group.rank, seed=cfg.seed)
        split = DeviceSplit.from_dataset(train_set, device)
        self.loader = DeviceLoader(
            split, d.batch_size, train=True, crop_size=d.crop_size, scale_range=tuple(d.scale_range), hflip=d.hflip,
            color_jitter=d.color_jitter, seed=cfg.seed,
        )

    def epoch(self, epoch: int, offset: int):
        self.sampler.set_position(epoch, offset * self.batch_size)
        indices = [i for _, i in self.sampler]
        for b in range(len(indices) // self.batch_size):
            idx = indices[b * self.batch_size : (b + 1) * self.batch_size]
            self.loader.generator.manual_seed(sample_seed(self.seed, epoch, idx[0]))
            yield self.loader.augment(torch.tensor(idx, device=self.device))


def batch_source(train_set, cfg: TrainConfig, group: distributed.SingleProcess, device: torch.device):
    """The training batches as the trainer draws them: ``.epoch(epoch, offset)`` yields
    ``(images (N,3,H,W), masks (N,H,W))``; ``.on_device`` says whether they are augmented on
    the device (CUDA, fixed-size data) or in a DataLoader. Also timed by ``refinenet bench --loader``.
    """
    on_device = cfg.data.on_device
    if on_device == "auto":
        # Fixed-size datasets only (the split is stacked into one tensor); CUDA only, where
        # CPU-side augmentation would starve the GPU.
        on_device = device.type == "cuda" and cfg.data.dataset in ("camvid", "synthetic")
    return (_DeviceBatches if on_device else _LoaderBatches)(train_set, cfg, group, device)


def _clear_run(run_dir: Path) -> None:
    """Remove the files of an earlier run of the same config (``force`` or a restart)."""
    for name in ("metrics.json", "summary.json", "checkpoint.pt", "config.yaml"):
        (run_dir / name).unlink(missing_ok=True)
    for path in run_dir.glob("eval-*.json"):
        path.unlink()
    for name in ("history", "tensorboard"):
        if (run_dir / name).is_dir():
            shutil.rmtree(run_dir / name)
