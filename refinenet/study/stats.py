"""Descriptive statistics of the pages: mean ± std over seeds, Welch intervals, failure rates.

Every ablation page compares a variant with the standard model over several seeds
(independent training runs) and describes the comparison:

- ``mean ± std (n)``: the sample mean and the sample standard deviation (``ddof=1``) of the
  per-seed scores, and how many seeds there are;
- the difference of two means with a **Welch t interval** (95% by default): unequal
  variances, Welch-Satterthwaite degrees of freedom;
- the share of failed runs with an exact (Clopper-Pearson) interval.

The verdicts on the paper's claims are not made here but by the analysis the study design
page fixed (:mod:`refinenet.study.analysis`, :mod:`refinenet.study.claims`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = [
    "LEVEL",
    "Summary",
    "Difference",
    "summarize",
    "welch",
    "failure_interval",
    "pm",
    "interval_text",
]

LEVEL = 0.95


class Summary(tuple):
    """``(mean, std, n)`` of per-seed scores; ``std`` is NaN for a single seed."""

    __slots__ = ()

    def __new__(cls, mean: float, std: float, n: int):
        return super().__new__(cls, (float(mean), float(std), int(n)))

    mean = property(lambda self: self[0])
    std = property(lambda self: self[1])
    n = property(lambda self: self[2])

    def __repr__(self) -> str:
        return f"Summary(mean={self.mean:.4g}, std={self.std:.4g}, n={self.n})"


class Difference(tuple):
    """``(diff, low, high, df)``: a difference of means and its interval."""

    __slots__ = ()

    def __new__(cls, diff: float, low: float, high: float, df: float):
        return super().__new__(cls, (float(diff), float(low), float(high), float(df)))

    diff = property(lambda self: self[0])
    low = property(lambda self: self[1])
    high = property(lambda self: self[2])
    df = property(lambda self: self[3])

    def __repr__(self) -> str:
        return f"Difference({self.diff:.4g} [{self.low:.4g}, {self.high:.4g}], df={self.df:.3g})"


def _values(values: Sequence[float]) -> np.ndarray:
    a = np.asarray(list(values), dtype=float)
    a = a[np.isfinite(a)]
    return a


def summarize(values: Sequence[float]) -> Summary:
    """Mean, sample standard deviation (``ddof=1``) and count of the finite values."""
    a = _values(values)
    if a.size == 0:
        return Summary(math.nan, math.nan, 0)
    std = float(a.std(ddof=1)) if a.size > 1 else math.nan
    return Summary(float(a.mean()), std, int(a.size))


def welch(a: Sequence[float], b: Sequence[float], level: float = LEVEL) -> Difference:
    """``mean(a) - mean(b)`` with its Welch t interval at ``level``.

    Needs at least two values on each side; with identical values on both sides (zero
    variance) the interval collapses to the difference itself.
    """
    from scipy import stats

    x, y = _values(a), _values(b)
    if x.size < 2 or y.size < 2:
        raise ValueError(f"a Welch interval needs at least 2 values per side, got {x.size} and {y.size}")
    diff = float(x.mean() - y.mean())
    vx, vy = x.var(ddof=1) / x.size, y.var(ddof=1) / y.size
    se = math.sqrt(vx + vy)
    if se == 0:
        return Difference(diff, diff, diff, math.inf)
    df = (vx + vy) ** 2 / (vx**2 / (x.size - 1) + vy**2 / (y.size - 1))
    half = float(stats.t.ppf(0.5 + level / 2, df)) * se
    return Difference(diff, diff - half, diff + half, df)


def pm(values_or_summary, digits: int = 1, scale: float = 1.0) -> str:
    """``"mean ± std"`` of per-seed values (or of a :class:`Summary`), times ``scale``."""
    s = values_or_summary if isinstance(values_or_summary, Summary) else summarize(values_or_summary)
    if s.n == 0:
        return "n/a"
    if not math.isfinite(s.std):
        return f"{s.mean * scale:.{digits}f}"
    return f"{s.mean * scale:.{digits}f} ± {s.std * scale:.{digits}f}"


def interval_text(d: Difference | tuple, digits: int = 1, scale: float = 1.0) -> str:
    """``"+1.2 [-0.3, +2.7]"``: a difference and its interval, times ``scale``. A value that
    would round to a signed zero gets up to two more digits (``"[-0.04, +2.4]"``, not
    ``"[-0.0, +2.4]"``): whether a bound lies below or above 0 is what the reader looks for."""
    return (f"{_signed(d[0] * scale, digits)} [{_signed(d[1] * scale, digits)}, "
            f"{_signed(d[2] * scale, digits)}]")


def _signed(x: float, digits: int) -> str:
    for more in range(3):
        text = f"{x:+.{digits + more}f}"
        if x == 0 or x != x or text.strip("+-0.") != "":
            return text
    return text


def failure_interval(failed: int, total: int, level: float = LEVEL) -> tuple[float, float]:
    """Exact (Clopper-Pearson) interval of a failure rate ``failed / total`` at ``level``."""
    from scipy import stats

    if total < 1 or not 0 <= failed <= total:
        raise ValueError(f"need 0 <= failed <= total and total >= 1, got {failed} of {total}")
    ci = stats.binomtest(failed, total).proportion_ci(confidence_level=level, method="exact")
    return float(ci.low), float(ci.high)
