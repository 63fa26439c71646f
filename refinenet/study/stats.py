"""The statistics of the study: mean ± std over seeds, intervals for differences, verdicts.

Every ablation compares a variant with the standard model over several seeds (independent
training runs). What the notebooks report, and how:

- ``mean ± std (n)``: the sample mean and the sample standard deviation (``ddof=1``) of the
  per-seed scores, and how many seeds there are;
- the difference of two means with a **Welch t interval** (95% by default): unequal
  variances, Welch-Satterthwaite degrees of freedom. With 3 seeds a side the interval is
  wide (t quantile about 2.8 at 4 degrees of freedom): that is the honest price of 3 seeds;
- the spread of a score across a learning-rate grid (the range of the per-rate means), with an
  interval from a parametric simulation: each per-rate mean is redrawn as
  ``mean + std / sqrt(n) * T`` with ``T`` Student-t with ``n - 1`` degrees of freedom (the same
  uncertainty as a t interval), the range is recomputed, and the interval of a difference of
  two spreads is the bias-corrected percentile interval of the simulated differences;
- a **verdict** from the interval of a difference oriented in the paper's direction (positive
  = what the paper says): ``supported`` when the interval lies above 0, ``contradicted`` when
  it lies below 0, and ``not resolved at this scale`` otherwise.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

__all__ = [
    "LEVEL",
    "SUPPORTED",
    "CONTRADICTED",
    "NOT_RESOLVED",
    "VERDICT_RULE",
    "Summary",
    "Difference",
    "summarize",
    "welch",
    "spread",
    "spread_difference",
    "percentile_interval",
    "failure_interval",
    "verdict",
    "pm",
    "interval_text",
]

LEVEL = 0.95
SUPPORTED = "supported"
CONTRADICTED = "contradicted"
NOT_RESOLVED = "not resolved at this scale"
VERDICT_RULE = (
    "Each claim is turned into a difference that is positive when the paper is right "
    "(for example: the standard model's test mIoU minus that of the model without chained "
    "pooling), and we compute a 95% Welch t interval for it from the per-seed scores. The "
    f"claim is **{SUPPORTED}** when the whole interval lies above 0, **{CONTRADICTED}** when "
    f"the whole interval lies below 0, and **{NOT_RESOLVED}** when it contains 0."
)


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


def spread(
    cells: Mapping[float, Sequence[float]],
    *,
    level: float = LEVEL,
    draws: int = 20000,
    seed: int = 0,
) -> tuple[float, np.ndarray]:
    """The range (max - min) of the per-cell means, and simulated draws of it.

    ``cells`` maps a setting (a learning rate) to its per-seed scores. The draws redraw each
    cell's mean as ``mean + std / sqrt(n) * T`` (``T`` Student-t, ``n - 1`` degrees of
    freedom) and take the range; subtract two such arrays (same ``draws`` and ``seed`` are
    fine: the cells differ) and take percentiles for an interval of a difference of ranges.
    """
    rng = np.random.default_rng(seed)
    sims, means = [], []
    for values in cells.values():
        s = summarize(values)
        if s.n < 2:
            raise ValueError("spread needs at least 2 seeds per setting")
        means.append(s.mean)
        sims.append(s.mean + s.std / math.sqrt(s.n) * rng.standard_t(s.n - 1, size=draws))
    sims = np.stack(sims)
    return float(max(means) - min(means)), sims.max(0) - sims.min(0)


def spread_difference(
    cells: Mapping[float, Sequence[float]],
    reference: Mapping[float, Sequence[float]],
    *,
    level: float = LEVEL,
    draws: int = 20000,
    seed: int = 0,
) -> Difference:
    """``spread(cells) - spread(reference)`` with a simulated interval at ``level``.

    The range of noisy means is biased upwards (noise can only widen it on average), so
    the simulated differences are shifted by their mean bias (simulated mean minus the
    measured difference) before the central ``level`` percentiles are taken: a
    bias-corrected percentile interval centred on the measurement.
    """
    value, sims = spread(cells, draws=draws, seed=seed)
    ref_value, ref_sims = spread(reference, draws=draws, seed=seed + 1)
    diff = value - ref_value
    simulated = sims - ref_sims
    low, high = percentile_interval(simulated - (simulated.mean() - diff), level)
    return Difference(diff, low, high, math.nan)


def percentile_interval(draws: np.ndarray, level: float = LEVEL) -> tuple[float, float]:
    """The central ``level`` interval of simulated draws."""
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(draws, [tail, 100 - tail])
    return float(low), float(high)


def verdict(low: float, high: float) -> str:
    """The verdict for an interval of a difference oriented so that positive = the paper's claim."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return NOT_RESOLVED
    if low > 0:
        return SUPPORTED
    if high < 0:
        return CONTRADICTED
    return NOT_RESOLVED


def pm(values_or_summary, digits: int = 1, scale: float = 1.0) -> str:
    """``"mean ± std"`` of per-seed values (or of a :class:`Summary`), times ``scale``."""
    s = values_or_summary if isinstance(values_or_summary, Summary) else summarize(values_or_summary)
    if s.n == 0:
        return "n/a"
    if not math.isfinite(s.std):
        return f"{s.mean * scale:.{digits}f}"
    return f"{s.mean * scale:.{digits}f} ± {s.std * scale:.{digits}f}"


def interval_text(d: Difference | tuple, digits: int = 1, scale: float = 1.0) -> str:
    """``"+1.2 [-0.3, +2.7]"``: a difference and its interval, times ``scale``."""
    diff, low, high = d[0], d[1], d[2]
    return f"{diff * scale:+.{digits}f} [{low * scale:+.{digits}f}, {high * scale:+.{digits}f}]"


def failure_interval(failed: int, total: int, level: float = LEVEL) -> tuple[float, float]:
    """Exact (Clopper-Pearson) interval of a failure rate ``failed / total`` at ``level``."""
    from scipy import stats

    if total < 1 or not 0 <= failed <= total:
        raise ValueError(f"need 0 <= failed <= total and total >= 1, got {failed} of {total}")
    ci = stats.binomtest(failed, total).proportion_ci(confidence_level=level, method="exact")
    return float(ci.low), float(ci.high)
