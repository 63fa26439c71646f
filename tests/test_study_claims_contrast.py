"""refinenet.study.claims.contrast_text: a page's contrast (an interaction too) from one linear
model of its own runs, checked against the two-way analysis of variance of a balanced design."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from refinenet.study.claims import CLAIMS, contrast_text

MEANS = {"standard": 50.0, "ReLU off": 48.0, "N = 0": 45.0, "ReLU off, N = 0": 46.0, "N = 4": 49.0}


def page(seeds: int = 4) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    seed_effect = rng.normal(0, 2.0, seeds)
    return pd.DataFrame([{"variant": a, "seed": s, "test mIoU": m + seed_effect[s] + rng.normal(0, 0.5)}
                         for a, m in MEANS.items() for s in range(seeds)])


def anova_interval(records: pd.DataFrame, weights: dict[str, float], level: float) -> tuple[float, float, float]:
    """The contrast sum(w * arm mean) of a balanced arm x seed table with its t interval from
    the additive model's residual (arm-by-seed) mean square."""
    y = records.pivot(index="variant", columns="seed", values="test mIoU")
    arms, seeds = y.shape
    resid = y.values - y.mean(axis=1).values[:, None] - y.mean(axis=0).values[None, :] + y.values.mean()
    df = (arms - 1) * (seeds - 1)
    sigma2 = (resid ** 2).sum() / df
    estimate = sum(w * y.loc[a].mean() for a, w in weights.items())
    half = sps.t.ppf(0.5 + level / 2, df) * np.sqrt(sigma2 * sum(w * w for w in weights.values()) / seeds)
    return estimate, estimate - half, estimate + half


def text(estimate: float, low: float, high: float) -> str:
    return f"{estimate:+.1f} [{low:+.1f}, {high:+.1f}]"


def test_the_interaction_of_a_page_is_the_anova_contrast():
    records = page()
    c2 = CLAIMS["C2"]
    weights = {"standard": 1, "ReLU off, N = 0": 1, "ReLU off": -1, "N = 0": -1}
    assert contrast_text(records, c2.better, c2.worse) == text(*anova_interval(records, weights, 0.95))
    # the level is the interval's
    narrow = contrast_text(records, c2.better, c2.worse, level=0.5)
    assert narrow == text(*anova_interval(records, weights, 0.5))
    assert narrow != contrast_text(records, c2.better, c2.worse)


def test_a_difference_of_two_arms_and_its_orientation():
    records = page()
    forward = contrast_text(records, "standard", "N = 4")
    assert forward == text(*anova_interval(records, {"standard": 1, "N = 4": -1}, 0.95))
    backward = contrast_text(records, "N = 4", "standard")
    assert backward == text(*anova_interval(records, {"standard": -1, "N = 4": 1}, 0.95)) != forward


def test_an_arm_without_runs_is_named():
    with pytest.raises(KeyError, match="cascade 1"):
        contrast_text(page(), "standard", "cascade 1")
