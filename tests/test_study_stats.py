"""The study's statistics: mean ± std, Welch intervals, spreads, verdicts."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from refinenet.study import stats


def test_summarize_uses_the_sample_std_and_skips_nan():
    s = stats.summarize([1.0, 2.0, 3.0, float("nan")])
    assert (s.mean, s.n) == (2.0, 3)
    assert s.std == pytest.approx(1.0)  # ddof=1
    assert math.isnan(stats.summarize([4.0]).std)
    assert stats.summarize([]).n == 0
    assert stats.pm([1.0, 2.0, 3.0]) == "2.0 ± 1.0"
    assert stats.pm([0.5], digits=2) == "0.50"
    assert stats.pm([]) == "n/a"


def test_welch_matches_scipy():
    a, b = [31.0, 29.5, 33.2], [27.1, 28.4, 25.0, 26.2]
    d = stats.welch(a, b)
    ref = sps.ttest_ind(a, b, equal_var=False)
    ci = ref.confidence_interval(0.95)
    assert d.diff == pytest.approx(np.mean(a) - np.mean(b))
    assert (d.low, d.high) == (pytest.approx(ci.low), pytest.approx(ci.high))
    assert d.df == pytest.approx(ref.df)


def test_welch_edge_cases():
    with pytest.raises(ValueError, match="at least 2"):
        stats.welch([1.0], [1.0, 2.0])
    same = stats.welch([2.0, 2.0], [1.0, 1.0])  # zero variance: a point interval
    assert (same.diff, same.low, same.high) == (1.0, 1.0, 1.0)


def test_interval_text():
    assert stats.interval_text((1.234, -0.5, 2.96)) == "+1.2 [-0.5, +3.0]"
    # a bound just below 0 keeps its sign readable: not "-0.0"
    assert stats.interval_text((1.2, -0.04, 2.4)) == "+1.2 [-0.04, +2.4]"
    assert stats.interval_text((0.0, 0.004, 0.3)) == "+0.0 [+0.004, +0.3]"
