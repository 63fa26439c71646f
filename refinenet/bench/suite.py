"""What ``refinenet bench`` measures: model configurations x fast paths, inference and training.

Every fast path is compared with the plain baseline (fp32, NCHW, eager) *in the same run*, on
the same machine, with the same weights and inputs; speed is reported as a ratio to it and as
the achieved fraction of a matmul peak measured by the same command (:mod:`.peak`).
"""

from __future__ import annotations

import platform
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field

import torch

from ..engine.config import OptimSection
from ..engine.optim import build_optimizer
from ..engine.step import train_step
from ..engine.precision import AMP_DTYPES, Precision
from ..models import refinenet
from ..summary import count_macs
from .peak import matmul_peak
from .timing import PeakMemory, time_interleaved
from ..environment import cpu_name

__all__ = ["BenchConfig", "FastPath", "PRESETS", "PRESET_NAMES", "default_paths", "hardware", "preset_configs", "run_suite", "study_configs"]


@dataclass(frozen=True)
class BenchConfig:
    """One model configuration to measure."""

    name: str
    model: dict = field(default_factory=dict)  # keyword arguments of refinenet()
    size: tuple[int, int] = (512, 512)
    infer_batch: int = 1
    train_batch: int = 2


@dataclass(frozen=True)
class FastPath:
    """A combination of speed switches; ``baseline`` is plain fp32, NCHW, eager."""

    name: str
    amp: str = "none"  # none | bf16 | fp16
    channels_last: bool = False
    compile: bool = False
    fused: bool = False  # the fused optimiser step (always on for CUDA's fast paths)

    def precision(self, device: torch.device) -> Precision:
        cuda = device.type == "cuda"
        fast = self.name != "baseline"
        return Precision(
            device=device,
            amp_dtype=AMP_DTYPES[self.amp],
            channels_last=self.channels_last,
            compile=self.compile,
            cudnn_benchmark=cuda and fast,
            fused_optimizer=(cuda and fast) or self.fused,
        )


BASELINE = FastPath("baseline")


def default_paths(device: torch.device, *, compile: bool) -> list[FastPath]:
    """The paths worth measuring on ``device`` (baseline first)."""
    paths = [
        BASELINE,
        FastPath("channels_last", channels_last=True),
        FastPath("bf16", amp="bf16"),
        FastPath("bf16+channels_last", amp="bf16", channels_last=True),
    ]
    if device.type == "cuda":
        paths += [FastPath("fp16+channels_last", amp="fp16", channels_last=True)]
    else:
        paths += [FastPath("bf16+channels_last+fused", amp="bf16", channels_last=True, fused=True)]
    if compile:
        paths += [FastPath("bf16+channels_last+compile", amp="bf16", channels_last=True, compile=True)]
    return paths


# The paper's model: RefineNet-101 in the released VOC layout (4 pooling blocks) at 512x512.
PRESETS: dict[str, list[BenchConfig]] = {
    "paper": [
        BenchConfig("refinenet101-512", {"backbone": "resnet101", "num_classes": 21, "crp_blocks": 4}),
    ],
    "tiny": [
        BenchConfig("tiny", {"backbone": "resnet18", "num_classes": 3, "widths": (32, 16, 16, 16)}, size=(64, 64), train_batch=2),
    ],
}
PRESET_NAMES = ("paper", "study", "tiny")


def study_configs(device: torch.device) -> list[BenchConfig]:
    """The study's standard and 2-scale models as its profile for ``device`` trains them.

    Read from the study profile (``gpu`` on CUDA, else ``cpu``), so the benchmark measures the
    recipe the study actually runs: its backbone, widths, training crop and batch size.
    """
    from ..study.profiles import load_profile

    profile = load_profile("gpu" if device.type == "cuda" else "cpu")
    cfg = profile.study.base("synthetic", device.type)  # the standard model's training config
    model = {**cfg.model.to_dict(), "num_classes": 11}  # CamVid's classes
    size = tuple(cfg.data.crop_size or cfg.data.size)
    batch = int(cfg.data.batch_size)
    return [
        BenchConfig(f"study-{profile.name}-standard", model, size=size, train_batch=batch),
        BenchConfig(f"study-{profile.name}-2scale", {**model, "scales": (1.2, 0.6)}, size=size, train_batch=batch),
    ]


def preset_configs(name: str, device: torch.device) -> list[BenchConfig]:
    """The configurations of preset ``name`` (``paper``, ``study`` or ``tiny``) on ``device``."""
    if name == "study":
        return study_configs(device)
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose from {list(PRESET_NAMES)}")
    return PRESETS[name]


def hardware(device: torch.device) -> dict:
    """What the numbers were measured on."""
    info = {
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
    }
    return info


def _build(config: BenchConfig, path: FastPath, device: torch.device, *, train: bool):
    torch.manual_seed(0)  # same weights for every path
    model = refinenet(**{**config.model, "dropout": 0.5 if train else 0.0}).to(device)
    if path.channels_last:
        model = model.to(memory_format=torch.channels_last)
    runner = torch.compile(model) if path.compile else model
    return model, runner


def _inputs(config: BenchConfig, batch: int, device: torch.device, channels_last: bool):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(batch, 3, *config.size, generator=g).to(device)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    return x


def prepare_inference(config: BenchConfig, path: FastPath, device: torch.device):
    """A closure running one forward pass (inference_mode) of ``config`` on ``path``."""
    precision = path.precision(device)
    model, runner = _build(config, path, device, train=False)
    model.eval()
    x = _inputs(config, config.infer_batch, device, path.channels_last)

    def step():
        torch.backends.cudnn.benchmark = precision.cudnn_benchmark
        with torch.inference_mode(), precision.autocast():
            return runner(x)

    return step


def prepare_training(config: BenchConfig, path: FastPath, device: torch.device):
    """A closure running one optimisation step: the trainer's own
    :func:`refinenet.engine.step.train_step` (autocast forward, cross-entropy at full
    resolution, backward through the grad scaler, SGD with momentum, fused where the path
    allows) at ``train_batch`` images.
    """
    precision = path.precision(device)
    model, runner = _build(config, path, device, train=True)
    model.train()
    optimizer = build_optimizer(model, OptimSection(), pretrained=False, fused=precision.fused_optimizer)
    scaler = torch.amp.GradScaler(device.type, enabled=precision.grad_scaler)
    x = _inputs(config, config.train_batch, device, path.channels_last)
    g = torch.Generator().manual_seed(2)
    num_classes = config.model.get("num_classes", 21)
    y = torch.randint(0, num_classes, (config.train_batch, *config.size), generator=g).to(device)

    def step():
        torch.backends.cudnn.benchmark = precision.cudnn_benchmark
        train_step(runner, optimizer, scaler, x, y, precision=precision, ignore_index=255)

    return step


def run_suite(
    configs: Iterable[BenchConfig],
    paths: list[FastPath],
    device: torch.device,
    *,
    modes: Iterable[str] = ("inference", "train"),
    warmup: int = 2,
    repeats: int = 5,
    progress=print,
) -> list[dict]:
    """Measure every config x path x mode; returns one row (dict) per measurement.

    Per config and mode, every path is built (same weights, same inputs), warmed up and its
    memory measured on one call; then all paths are timed round-robin (see
    :func:`.timing.time_interleaved`) so their ratios survive a changing machine load.
    """
    modes = tuple(modes)
    amps = sorted({p.amp for p in paths})

    def measure_peaks() -> dict[str, float]:
        return {amp: matmul_peak(device, AMP_DTYPES[amp] or torch.float32) for amp in amps}

    # The ceiling is measured before and after the suite and the higher reading kept, so a
    # busy moment during one measurement does not inflate the fractions.
    peaks = measure_peaks()
    hw = hardware(device)
    rows = []
    for config in configs:
        macs = count_macs(refinenet(**config.model), (1, 3, *config.size))
        for mode in modes:
            prepare = prepare_inference if mode == "inference" else prepare_training
            # the fused optimiser is part of a training step only
            paths_here = [p for p in paths if mode == "train" or not p.fused]
            steps = {path.name: prepare(config, path, device) for path in paths_here}
            memory, agreement = {}, {}
            reference = None
            for path in paths_here:  # warm-up (compilation, autotuning), then one measured call
                steps[path.name]()
                with PeakMemory(device) as mem:
                    out = steps[path.name]()
                memory[path.name] = mem.peak
                if mode == "inference":
                    labels = out.float().argmax(1).cpu()
                    if reference is None:
                        reference = labels
                    else:
                        agreement[path.name] = (labels == reference).float().mean().item()
            timings = time_interleaved(steps, device, warmup=max(0, warmup - 1), repeats=repeats)
            base_time = timings[paths_here[0].name].median
            if mode == "inference":
                batch, flops = config.infer_batch, 2 * macs * config.infer_batch
            else:
                # forward + backward (about twice the forward) per image
                batch, flops = config.train_batch, 3 * 2 * macs * config.train_batch
            for path in paths_here:
                timing = timings[path.name]
                achieved = flops / timing.median
                row = {
                    "config": config.name,
                    "mode": mode,
                    "path": path.name,
                    **{k: v for k, v in asdict(path).items() if k != "name"},
                    "height": config.size[0],
                    "width": config.size[1],
                    "batch": batch,
                    "median_s": timing.median,
                    "q1_s": timing.q1,
                    "q3_s": timing.q3,
                    "repeats": len(timing.times),
                    "images_per_s": batch / timing.median,
                    "speedup": base_time / timing.median,
                    "gmacs_per_image": macs / 1e9,
                    "achieved_tflops": achieved / 1e12,
                    "peak_memory_mb": None if memory[path.name] is None else memory[path.name] / 2**20,
                    "argmax_agreement": agreement.get(path.name),
                    **hw,
                }
                rows.append(row)
                extra = "" if path.name not in agreement else f", argmax agreement {agreement[path.name]:.4f}"
                progress(
                    f"{config.name:>18} {mode:>9} {path.name:<28} {timing.median * 1e3:9.1f} ms "
                    f"(x{row['speedup']:.2f}, {row['achieved_tflops']:.3f} TFLOP/s{extra})"
                )
            del steps
    for amp, value in measure_peaks().items():
        peaks[amp] = max(peaks[amp], value)
        progress(f"matmul peak {amp if amp != 'none' else 'fp32'}: {peaks[amp] / 1e12:.3f} TFLOP/s")
    for row in rows:
        row["peak_tflops"] = peaks[row["amp"]] / 1e12
        row["fraction_of_peak"] = row["achieved_tflops"] / row["peak_tflops"]
    return rows
