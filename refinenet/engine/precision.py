"""Device, precision and speed switches: "auto" resolved to concrete choices.

CPU: bf16 autocast *together with* channels_last when the processor computes bf16 natively
(AVX512-BF16 or AMX), otherwise fp32. Measured by ``refinenet bench`` on a 2-core AMD EPYC
with AVX512-BF16, quiet machine (results/bench/, the book's performance chapter): bf16 +
channels_last ran RefineNet-101 inference at 512x512 2.3x and its training 2.8x faster than
fp32, the study's model 1.7x, with 99.85% of argmax pixels unchanged and val mIoU within the
seed spread of fp32 training; bf16 alone gained less (1.2-1.5x on the study's model,
1.3x for RefineNet-101 inference) and channels_last alone made RefineNet-101 inference
slower (0.86x), so the two go together.
torch.compile, cuDNN and fused optimisers stay off on CPU. Whole runs of the study's model
with fused SGD and with torch.compile (``refinenet bench --runs``, the same machine) are
timed in results/bench/cpu-runs.csv (run paths "fused" and "compile" against "boundary", the
same run without them); the book's performance chapter states what they gained from that
file. torch.compile also costs a compilation per model variant.

CUDA: bf16 autocast (fp16 with a GradScaler on GPUs without bf16), channels_last,
cudnn.benchmark (off in deterministic mode) and the fused optimiser; standard wins for
convolutional networks on tensor-core GPUs, not yet measured here (no GPU was lent).
torch.compile stays off by default: it costs a compilation per model variant, which the
study's many short runs would pay again and again. Set any switch explicitly to override.
"""

from __future__ import annotations

import contextlib
import functools
import os
import warnings
from dataclasses import dataclass

import torch

from .config import PrecisionSection

__all__ = ["Precision", "check_device_name", "resolve_device", "resolve_precision", "cpu_has_native_bf16", "AMP_DTYPES"]

AMP_DTYPES = {"none": None, "bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass(frozen=True)
class Precision:
    """The resolved switches for one device."""

    device: torch.device
    amp_dtype: torch.dtype | None
    channels_last: bool
    compile: bool
    cudnn_benchmark: bool
    fused_optimizer: bool

    @property
    def amp(self) -> str:
        return {None: "none", torch.bfloat16: "bf16", torch.float16: "fp16"}[self.amp_dtype]

    @property
    def grad_scaler(self) -> bool:
        """fp16 needs loss scaling (its exponent range is narrow); bf16 does not."""
        return self.amp_dtype is torch.float16

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def to_dict(self) -> dict:
        return {
            "device": str(self.device),
            "amp": self.amp,
            "channels_last": self.channels_last,
            "compile": self.compile,
            "cudnn_benchmark": self.cudnn_benchmark,
            "fused_optimizer": self.fused_optimizer,
        }


DEVICE_NAMES = "auto, cpu, cuda or cuda:N"


def check_device_name(device: str) -> None:
    """``ValueError`` listing the allowed values unless ``device`` is one of them (checked
    before torch sees it: its own error is a bare RuntimeError naming every backend)."""
    name = str(device)
    if name in ("auto", "cpu", "cuda") or (name.startswith("cuda:") and name[5:].isdigit()):
        return
    raise ValueError(f"unknown device {name!r}; use {DEVICE_NAMES}")


def resolve_device(device: str, local_rank: int = 0) -> torch.device:
    """``"auto"`` -> this process's GPU if CUDA is available, else the CPU."""
    check_device_name(device)
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ValueError(f"device={device!r} but CUDA is not available here; use device=cpu or device=auto")
        if device == "cuda":
            device = f"cuda:{local_rank}"
        index = torch.device(device).index or 0
        if index >= torch.cuda.device_count():
            raise ValueError(f"device={device!r} but only {torch.cuda.device_count()} CUDA device(s) are visible")
    return torch.device(device)


@functools.lru_cache(maxsize=1)
def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bf16 in hardware (x86 AVX512-BF16 or AMX-BF16; Linux only).

    Without it oneDNN emulates bf16 and autocast makes convolutions slower, not faster.
    ``REFINENET_CPU_BF16=0`` or ``1`` overrides the detection.
    """
    forced = os.environ.get("REFINENET_CPU_BF16")
    if forced in ("0", "1"):
        return forced == "1"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return bool(flags & {"avx512_bf16", "amx_bf16"})
    except OSError:
        pass
    return False


def resolve_precision(section: PrecisionSection, device: torch.device, *, deterministic: bool = False) -> Precision:
    """Turn the config's "auto" values into concrete switches for ``device``."""
    cuda = device.type == "cuda"

    def pick(value, cuda_default: bool) -> bool:
        return (cuda and cuda_default) if value == "auto" else bool(value)

    fast_cpu_bf16 = not cuda and cpu_has_native_bf16()
    if section.amp == "auto":
        if cuda:
            amp = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        else:
            amp = "bf16" if fast_cpu_bf16 else "none"
    else:
        amp = section.amp
    benchmark = pick(section.cudnn_benchmark, True)
    if deterministic and benchmark:
        if section.cudnn_benchmark is True:
            warnings.warn("precision.cudnn_benchmark=true is ignored with deterministic=true", stacklevel=2)
        benchmark = False
    return Precision(
        device=device,
        amp_dtype=AMP_DTYPES[amp],
        # On CPU channels_last is what makes bf16 fast (oneDNN's blocked bf16 kernels).
        channels_last=pick(section.channels_last, True) or (section.channels_last == "auto" and amp == "bf16" and fast_cpu_bf16),
        compile=pick(section.compile, False),
        cudnn_benchmark=benchmark and cuda,
        fused_optimizer=pick(section.fused_optimizer, True),
    )
