"""The machine's attainable FLOP/s, measured the same way the model runs: a large matmul."""

from __future__ import annotations

import torch

from .timing import time_fn

__all__ = ["matmul_peak"]


def matmul_peak(device: torch.device, dtype: torch.dtype, *, n: int | None = None, repeats: int = 5) -> float:
    """FLOP/s of an ``n x n @ n x n`` matmul in ``dtype`` on ``device`` (median of repeats).

    This is the ceiling the convolutions (lowered to matrix products by oneDNN / cuDNN) can
    reach on this machine in this precision, measured rather than taken from a data sheet.
    ``n`` defaults to 2048 on CPU (big enough to saturate 2 cores within a second) and 8192
    on CUDA.
    """
    if n is None:
        n = 8192 if device.type == "cuda" else 2048
    g = torch.Generator(device="cpu").manual_seed(0)
    a = torch.randn(n, n, generator=g).to(device=device, dtype=dtype)
    b = torch.randn(n, n, generator=g).to(device=device, dtype=dtype)
    with torch.inference_mode():
        timing = time_fn(lambda: a @ b, device, warmup=2, repeats=repeats)
    return 2 * n**3 / timing.median
