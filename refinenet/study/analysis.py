"""The pre-registered analysis of the converged study: one linear model, Holm, equivalence.

Every arm trains the same seeds ``0..n-1``; each run gives one score ``y`` (the primary metric:
test mIoU on native labels, in points). The analysis, fixed before the study's runs:

- **Model.** ``y = arm + seed + e``: an additive linear model fitted by least squares to all
  runs of the study's arms at once. A contrast between two arms then uses the residual variance
  pooled over every arm (many more degrees of freedom than a two-sample test on 2 x n runs),
  and the part of the seed-to-seed variation that all arms share (the seed fixes the order of
  the images and their augmentation) drops out. Runs that diverged have no score and are left
  out (the fit stays valid for an unbalanced design); their rate is reported beside.
- **Contrast.** ``a - b`` oriented so that a positive value is what the paper says; its
  standard error from the pooled variance, Student t with the residual degrees of freedom.
- **Holm.** Over the ``m`` claims of the paper, the two-sided p-values are adjusted by Holm's
  step-down method; the claim with the ``k``-th smallest p gets the interval at level
  ``1 - alpha / (m - k + 1)`` while the step-down rejects; from the first claim it does not
  reject on, every claim keeps that step's level, so that an interval excludes 0 exactly when
  the claim's adjusted p is at most ``alpha``.
- **Equivalence.** Two one-sided tests (TOST) with margin ``delta`` (1.0 mIoU): the claim's
  effect is *equivalent to none* when the plain 90% interval lies inside ``(-delta, delta)``.
- **Verdict.** ``supported`` when the Holm-adjusted interval lies above 0, ``contradicted``
  when it lies below 0, else ``equivalent`` when the TOST says so, else ``not resolved``.

:func:`seeds_needed` sizes ``n`` so that the 95% half-width of a difference of two arms is at
most ``delta`` given the residual standard deviation measured in a pilot.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["ALPHA", "MARGIN", "COLLAPSE_SHARE", "END_SHARE", "Fit", "Contrast", "fit", "contrast", "holm",
           "verdicts", "seeds_needed", "half_width", "collapsed", "loss_above_chance", "more_failures"]

ALPHA = 0.05
#: the equivalence margin, in points of the metric
MARGIN = 1.0
#: a run "predicts a single class" when one class takes this share of its val predictions
COLLAPSE_SHARE = 0.95
#: a run's training loss "ends" as the mean over this share of its last steps
END_SHARE = 0.05


@dataclass(frozen=True)
class Fit:
    """Least-squares fit of ``y = arm + seed + e``."""

    arms: tuple[str, ...]
    seeds: tuple[int, ...]
    coef: np.ndarray  # intercept (first arm, first seed), arm effects, seed effects
    cov_unscaled: np.ndarray  # (X'X)^-1
    sigma2: float  # residual variance
    df: int  # residual degrees of freedom
    n_runs: int

    @property
    def sigma(self) -> float:
        return math.sqrt(self.sigma2)


def fit(runs: Sequence[tuple[str, int, float]]) -> Fit:
    """Fit the additive model to ``(arm, seed, score)`` triples; scores that are NaN (diverged
    runs) are left out. Needs at least two arms and more runs than parameters."""
    kept = [(a, int(s), float(y)) for a, s, y in runs if not math.isnan(float(y))]
    arms = tuple(dict.fromkeys(a for a, _, _ in kept))
    seeds = tuple(sorted({s for _, s, _ in kept}))
    if len(arms) < 2:
        raise ValueError(f"the model needs at least two arms with scores, got {list(arms)}")
    p = len(arms) + len(seeds) - 1
    if len(kept) <= p:
        raise ValueError(f"{len(kept)} scored runs cannot fit {p} parameters (arms {len(arms)}, seeds {len(seeds)})")
    x = np.zeros((len(kept), p))
    y = np.array([score for _, _, score in kept])
    for i, (a, s, _) in enumerate(kept):
        x[i, 0] = 1.0
        if arms.index(a) > 0:
            x[i, arms.index(a)] = 1.0
        if seeds.index(s) > 0:
            x[i, len(arms) - 1 + seeds.index(s)] = 1.0
    xtx_inv = np.linalg.pinv(x.T @ x)
    coef = xtx_inv @ x.T @ y
    rank = int(np.linalg.matrix_rank(x))
    df = len(kept) - rank
    if df < 1:
        raise ValueError("no residual degrees of freedom: every run is fitted exactly")
    resid = y - x @ coef
    return Fit(arms, seeds, coef, xtx_inv, float(resid @ resid) / df, df, len(kept))


@dataclass(frozen=True)
class Contrast:
    """A contrast of arm effects from a :class:`Fit` (``a - b``, or an interaction of four
    arms): estimate, standard error, degrees of freedom, p-value."""

    a: str
    b: str
    estimate: float
    se: float
    df: int

    @property
    def p(self) -> float:
        from scipy import stats

        return float(2 * stats.t.sf(abs(self.estimate) / self.se, self.df))

    def interval(self, level: float = 1 - ALPHA) -> tuple[float, float]:
        from scipy import stats

        half = float(stats.t.ppf(0.5 + level / 2, self.df)) * self.se
        return self.estimate - half, self.estimate + half

    def equivalent(self, margin: float = MARGIN, alpha: float = ALPHA) -> bool:
        """TOST at ``alpha``: the ``1 - 2 alpha`` interval inside ``(-margin, margin)``."""
        low, high = self.interval(1 - 2 * alpha)
        return -margin < low and high < margin


def contrast(model: Fit, a: str | Mapping[str, float], b: str | Mapping[str, float]) -> Contrast:
    """The difference of arm effects ``a - b`` (seed effects cancel). ``a`` and ``b`` are arms,
    or ``{arm: weight}`` mixtures: ``contrast(m, {"N=2": 1, "ReLU off, N=0": 1},
    {"ReLU off": 1, "N=0": 1})`` is the interaction (N=2 - ReLU off) - (N=0 - ReLU off, N=0)."""
    weights: dict[str, float] = {}
    for side, sign in ((a, 1.0), (b, -1.0)):
        for arm, w in ({side: 1.0} if isinstance(side, str) else dict(side)).items():
            weights[arm] = weights.get(arm, 0.0) + sign * float(w)
    if abs(sum(weights.values())) > 1e-12:
        raise ValueError(f"the weights of a contrast must sum to 0 (the intercept cancels), got {weights}")
    c = np.zeros(len(model.coef))
    for arm, w in weights.items():
        if arm not in model.arms:
            raise KeyError(f"arm {arm!r} has no scored run in the fit; arms: {list(model.arms)}")
        i = model.arms.index(arm)
        if i > 0:
            c[i] += w
    estimate = float(c @ model.coef)
    se = math.sqrt(model.sigma2 * float(c @ model.cov_unscaled @ c))
    name = lambda side: side if isinstance(side, str) else " + ".join(side)  # noqa: E731
    return Contrast(name(a), name(b), estimate, se, model.df)


def holm(p_values: Sequence[float], alpha: float = ALPHA) -> tuple[list[float], list[float]]:
    """Holm's step-down method: ``(adjusted p-values, interval levels)`` in the input order.

    The ``k``-th smallest p (k = 1..m) is multiplied by ``m - k + 1`` and made monotone. Its
    interval level is ``1 - alpha / (m - k + 1)`` while the step-down rejects; once a claim is
    not rejected, it and every later claim keep that step's level. Then a claim's interval
    excludes 0 if and only if its adjusted p is at most ``alpha`` (a later, larger p at a
    lower level could otherwise exclude 0 while Holm does not reject it)."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted, levels = [0.0] * m, [0.0] * m
    running_p, stopped = 0.0, None
    for k, i in enumerate(order):
        running_p = max(running_p, min(1.0, (m - k) * p_values[i]))
        level = 1 - alpha / (m - k) if stopped is None else stopped
        if stopped is None and running_p > alpha:
            stopped = level
        adjusted[i], levels[i] = running_p, level
    return adjusted, levels


def verdicts(model: Fit, claims: Mapping[str, tuple], *, margin: float = MARGIN, alpha: float = ALPHA):
    """One row per claim ``{name: (what the paper says is better, the other)}``, each side an
    arm or an ``{arm: weight}`` mixture (see :func:`contrast`): estimate,
    plain 95% interval, Holm-adjusted p and interval, the 90% interval of the TOST, verdict."""
    import pandas as pd

    cs = {name: contrast(model, a, b) for name, (a, b) in claims.items()}
    adjusted, levels = holm([c.p for c in cs.values()], alpha)
    rows = []
    for (name, c), p_adj, level in zip(cs.items(), adjusted, levels):
        low, high = c.interval(level)
        eq_low, eq_high = c.interval(1 - 2 * alpha)
        if low > 0:
            verdict = "supported"
        elif high < 0:
            verdict = "contradicted"
        elif c.equivalent(margin, alpha):
            verdict = "equivalent"
        else:
            verdict = "not resolved"
        rows.append({
            "claim": name, "better": c.a, "than": c.b, "difference": c.estimate, "se": c.se, "df": c.df,
            "p": c.p, "Holm p": p_adj, "Holm level": level, "Holm low": low, "Holm high": high,
            "TOST low": eq_low, "TOST high": eq_high, "verdict": verdict,
        })
    return pd.DataFrame(rows)


def seeds_needed(sigma: float, arms: int, *, half_width: float = MARGIN, level: float = 1 - ALPHA,
                 most: int = 100) -> int:
    """The smallest number of seeds per arm for which the ``level`` interval of a difference of
    two arms has half-width at most ``half_width``, given the model's residual standard
    deviation ``sigma`` (per run) and ``arms`` arms sharing the seeds (residual degrees of
    freedom ``(arms - 1)(n - 1)`` in a balanced design). Raises if ``most`` is not enough."""
    from scipy import stats

    if sigma <= 0 or arms < 2:
        raise ValueError(f"need sigma > 0 and at least 2 arms, got {sigma} and {arms}")
    for n in range(2, most + 1):
        df = (arms - 1) * (n - 1)
        if float(stats.t.ppf(0.5 + level / 2, df)) * sigma * math.sqrt(2 / n) <= half_width:
            return n
    raise ValueError(f"more than {most} seeds per arm would be needed for a half-width of {half_width}")


def half_width(model: Fit, level: float = 1 - ALPHA) -> float:
    """What :func:`seeds_needed` aimed at, measured: the plain ``level`` half-width of a
    difference of two arms that both have every seed of ``model``, ``t(df) * sigma * sqrt(2 /
    n)`` with the fit's residual ``sigma`` and degrees of freedom (in a balanced design, the
    half-width of every such contrast; a Holm interval is wider)."""
    from scipy import stats

    return float(stats.t.ppf(0.5 + level / 2, model.df)) * model.sigma * math.sqrt(2 / len(model.seeds))


def collapsed(confusion: Sequence[Sequence[float]], share: float = COLLAPSE_SHARE) -> bool:
    """Whether a model predicts (almost) one class everywhere: one column of the val confusion
    matrix (rows: truth, columns: prediction) holds at least ``share`` of all predictions."""
    predicted = np.asarray(confusion, dtype=float).sum(axis=0)
    total = predicted.sum()
    return bool(total > 0 and predicted.max() / total >= share)


def loss_above_chance(losses: Sequence[float], num_classes: int, share: float = END_SHARE) -> bool:
    """Whether a run's training loss ended above that of a uniform guess, ``ln(num_classes)``:
    training left the model worse than knowing nothing. ``losses``: the loss of every step, in
    order; its end is the mean of the last ``share`` of them (at least one). The loss is a
    (class-weighted) mean cross-entropy, which a uniform prediction scores ``ln C`` with or
    without weights. It catches a loss that blew up without becoming NaN or infinite (which
    stops a run as diverged): such a run has a score, but did not train."""
    values = np.asarray(list(losses), dtype=float)
    if num_classes < 2 or values.size == 0:
        raise ValueError(f"need at least 2 classes and one loss, got {num_classes} and {values.size}")
    end = values[-max(1, int(share * values.size)):]
    return bool(np.isfinite(end).all() and end.mean() > math.log(num_classes))


def more_failures(failed_a: int, total_a: int, failed_b: int, total_b: int) -> float:
    """One-sided p-value of Fisher's exact test that arm ``a`` fails more often than ``b``."""
    from scipy import stats

    table = [[failed_a, total_a - failed_a], [failed_b, total_b - failed_b]]
    return float(stats.fisher_exact(table, alternative="greater").pvalue)
