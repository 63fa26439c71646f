"""Device, precision and speed switches: "auto" resolved to concrete choices.

On CPU every switch defaults to off: bf16 autocast is slower than fp32 on CPUs without AMX,
channels_last and torch.compile gain little for these convolutions on 2 cores, and cuDNN and
fused optimisers do not exist there.

On CUDA the defaults are bf16 autocast (fp16 with a GradScaler on GPUs without bf16),
channels_last, cudnn.benchmark (off in deterministic mode) and the fused optimiser; all are
standard wins for convolutional networks on tensor-core GPUs. torch.compile stays off by
default: it costs a compilation per model variant, which the study's many short runs would
pay again and again. Set any switch explicitly to override.
"""

from __future__ import annotations

import contextlib
import warnings
from dataclasses import dataclass

import torch

from .config import PrecisionSection

__all__ = ["Precision", "resolve_device", "resolve_precision", "AMP_DTYPES"]

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


def resolve_device(device: str, local_rank: int = 0) -> torch.device:
    """``"auto"`` -> this process's GPU if CUDA is available, else the CPU."""
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


def resolve_precision(section: PrecisionSection, device: torch.device, *, deterministic: bool = False) -> Precision:
    """Turn the config's "auto" values into concrete switches for ``device``."""
    cuda = device.type == "cuda"

    def pick(value, cuda_default: bool) -> bool:
        return (cuda and cuda_default) if value == "auto" else bool(value)

    if section.amp == "auto":
        amp = ("bf16" if torch.cuda.is_bf16_supported() else "fp16") if cuda else "none"
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
        channels_last=pick(section.channels_last, True),
        compile=pick(section.compile, False),
        cudnn_benchmark=benchmark and cuda,
        fused_optimizer=pick(section.fused_optimizer, True),
    )
