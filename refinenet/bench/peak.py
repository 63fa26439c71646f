"""The machine's attainable FLOP/s, measured the way the model runs: a large matmul."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .timing import time_fn

__all__ = ["matmul_peak"]


def matmul_peak(device: torch.device, dtype: torch.dtype, *, n: int | None = None, repeats: int = 5) -> float:
    """FLOP/s of an ``n x n`` by ``n x n`` matrix product in ``dtype`` on ``device``.

    The product is timed twice, as ``a @ b`` (the BLAS library) and as the identical GEMM
    written as a 1x1 convolution (the convolution library, oneDNN on CPU / cuDNN on CUDA,
    which runs the model's convolutions); the faster one is the ceiling. On AMD CPUs the two
    differ: there oneDNN reached 0.21 TFLOP/s in fp32 where ``torch.matmul`` reached 0.14-0.16,
    and a peak from ``matmul`` alone let the model exceed "100% of peak". ``n`` defaults to
    2048 on CPU and 8192 on CUDA. Returns the median over ``repeats``.
    """
    if n is None:
        n = 8192 if device.type == "cuda" else 2048
    g = torch.Generator(device="cpu").manual_seed(0)
    a = torch.randn(n, n, generator=g).to(device=device, dtype=dtype)
    b = torch.randn(n, n, generator=g).to(device=device, dtype=dtype)
    # The same product as a 1x1 convolution: n input channels, n filters, n pixels (channels_last).
    side = 64
    x = a.t().reshape(1, n, side, n // side).contiguous(memory_format=torch.channels_last)
    w = b.t().reshape(n, n, 1, 1).contiguous()
    with torch.inference_mode():
        t_mm = time_fn(lambda: a @ b, device, warmup=2, repeats=repeats).median
        t_conv = time_fn(lambda: F.conv2d(x, w), device, warmup=2, repeats=repeats).median
    return 2 * n**3 / min(t_mm, t_conv)
