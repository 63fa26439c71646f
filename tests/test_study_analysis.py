"""The pre-registered analysis: the additive model against a hand computation, Holm, TOST,
verdicts and the seed count."""

from __future__ import annotations

import math

import numpy as np
import pytest

from refinenet.study import analysis


def _balanced(effects: dict[str, float], n: int, noise: float, seed: int = 0):
    rng = np.random.default_rng(seed)
    seed_effect = rng.normal(0, 2.0, n)  # shared by every arm: the model removes it
    return [(arm, s, 50 + e + seed_effect[s] + rng.normal(0, noise)) for arm, e in effects.items() for s in range(n)]


def test_the_model_matches_the_two_way_anova_by_hand():
    runs = _balanced({"standard": 0.0, "N = 0": -2.0, "cascade 1": -4.0}, n=6, noise=0.7)
    y = np.array([r[2] for r in runs]).reshape(3, 6)  # arms x seeds
    resid = y - y.mean(1, keepdims=True) - y.mean(0, keepdims=True) + y.mean()
    sigma2 = float((resid**2).sum()) / ((3 - 1) * (6 - 1))
    model = analysis.fit(runs)
    assert model.df == 10 and model.sigma2 == pytest.approx(sigma2)
    c = analysis.contrast(model, "standard", "N = 0")
    assert c.estimate == pytest.approx(y[0].mean() - y[1].mean())
    assert c.se == pytest.approx(math.sqrt(2 * sigma2 / 6))
    assert analysis.contrast(model, "N = 0", "standard").estimate == pytest.approx(-c.estimate)


def test_a_diverged_run_is_left_out_and_the_fit_stays_valid():
    runs = _balanced({"a": 0.0, "b": 1.0}, n=5, noise=0.5)
    runs[7] = (runs[7][0], runs[7][1], float("nan"))
    model = analysis.fit(runs)
    assert model.n_runs == 9 and model.df == 9 - (2 + 5 - 1)
    with pytest.raises(KeyError, match="no scored run"):
        analysis.contrast(model, "a", "c")
    with pytest.raises(ValueError, match="at least two arms"):
        analysis.fit([("a", 0, 1.0), ("a", 1, 2.0)])


def test_holm_adjusts_step_down_and_levels_follow():
    adjusted, levels = analysis.holm([0.01, 0.04, 0.03])
    assert adjusted == pytest.approx([0.03, 0.06, 0.06])
    # 0.03 is not rejected (0.06 > 0.05): it and 0.04 keep the level of that step
    assert levels == pytest.approx([1 - 0.05 / 3, 1 - 0.05 / 2, 1 - 0.05 / 2])
    adjusted, levels = analysis.holm([0.001, 0.02, 0.01])  # every step rejects
    assert adjusted == pytest.approx([0.003, 0.02, 0.02])
    assert levels == pytest.approx([1 - 0.05 / 3, 1 - 0.05 / 1, 1 - 0.05 / 2])


def test_a_holm_interval_excludes_zero_exactly_when_holm_rejects():
    """The verdict (from the interval) never disagrees with the adjusted p-value."""
    from scipy import stats

    rng = np.random.default_rng(0)
    for _ in range(200):
        p = rng.uniform(0, 0.2, size=6) ** 2
        adjusted, levels = analysis.holm(p)
        for p_i, adj, level in zip(p, adjusted, levels):
            # a z-test contrast with this two-sided p: its interval at `level` excludes 0 iff p <= 1 - level
            z = stats.norm.isf(p_i / 2)
            assert (z > stats.norm.isf((1 - level) / 2)) == (adj <= 0.05), (p, p_i, adj, level)


def test_verdicts_supported_contradicted_equivalent_not_resolved():
    # each arm: a shared seed effect, its own effect, and a small perturbation summing to 0
    wiggle = {"std": (0.3, -0.3), "worse": (-0.2, 0.2), "better": (0.1, -0.1), "same": (-0.3, 0.3)}
    effect = {"std": 0.0, "worse": -5.0, "better": 5.0, "same": 0.0}
    runs = [(a, s, 50 + effect[a] + 2.0 * math.sin(s) + wiggle[a][s % 2]) for a in effect for s in range(10)]
    model = analysis.fit(runs)
    claims = {"paper right": ("std", "worse"), "paper wrong": ("std", "better"), "no effect": ("std", "same")}
    table = analysis.verdicts(model, claims).set_index("claim")
    assert table["verdict"].to_dict() == {"paper right": "supported", "paper wrong": "contradicted",
                                          "no effect": "equivalent"}
    assert (table["Holm p"] >= table["p"]).all()
    assert (table["Holm high"] - table["Holm low"] > table["TOST high"] - table["TOST low"]).all()
    # the residual variance is pooled: noisy seeds leave a small effect unresolved
    noisy = analysis.fit(_balanced({"std": 0.0, "small": 0.5}, n=4, noise=3.0))
    assert analysis.verdicts(noisy, {"small effect": ("small", "std")})["verdict"].tolist() == ["not resolved"]


def test_seeds_needed_reaches_the_half_width():
    assert analysis.seeds_needed(1.0, 2) == 11  # t(10) x sqrt(2/11) = 0.950; n = 10 gives 1.011
    for sigma, arms in ((0.8, 10), (1.1, 6), (0.5, 2)):
        n = analysis.seeds_needed(sigma, arms)
        from scipy import stats

        def half(k):
            return stats.t.ppf(0.975, (arms - 1) * (k - 1)) * sigma * math.sqrt(2 / k)

        assert half(n) <= 1.0 < half(n - 1) if n > 2 else half(n) <= 1.0
    with pytest.raises(ValueError, match="more than 100 seeds"):
        analysis.seeds_needed(20.0, 2)


def test_the_half_width_is_every_balanced_contrasts_and_meets_seeds_needed():
    model = analysis.fit(_balanced({"a": 0.0, "b": 1.0, "c": -1.0, "d": 0.5}, n=6, noise=0.8))
    width = analysis.half_width(model)
    for a, b in (("a", "b"), ("c", "d"), ("b", "c")):
        low, high = analysis.contrast(model, a, b).interval()
        assert (high - low) / 2 == pytest.approx(width)
    # seeds_needed sizes n for a sigma; a fit with that residual sigma reaches the half-width
    # with n seeds and misses it with n - 1
    sigma = model.sigma
    n = analysis.seeds_needed(sigma, 4, half_width=width * 1.0001)
    assert n == 6


def test_a_loss_that_ends_above_a_uniform_guess_did_not_train():
    chance = math.log(11)
    trained = np.linspace(2.4, 0.4, 2800)  # starts near ln 11, ends far below
    assert not analysis.loss_above_chance(trained, 11)
    blew_up = np.concatenate([np.linspace(1.4, 0.8, 600), np.full(2200, 72.0)])  # finite throughout
    assert analysis.loss_above_chance(blew_up, 11)
    # the end is the mean of the last 5% of the steps: one spike there does not decide it
    spike = trained.copy()
    spike[-1] = 30.0
    assert spike[-140:].mean() < chance and not analysis.loss_above_chance(spike, 11)
    # just above and just below ln C, with fewer classes
    assert analysis.loss_above_chance([math.log(3) + 0.01] * 20, 3)
    assert not analysis.loss_above_chance([math.log(3) - 0.01] * 20, 3)
    # a run of one step is judged on it; a non-finite end is a divergence, not this
    assert analysis.loss_above_chance([5.0], 2) and not analysis.loss_above_chance([1.0, math.nan], 2)
    with pytest.raises(ValueError, match="at least 2 classes"):
        analysis.loss_above_chance([], 11)


def test_an_interaction_of_four_arms():
    # effects: the ReLU adds 2 points with pooling (N=2) and 0 without (N=0): interaction 2
    effect = {"N=2": 0.0, "ReLU off": -2.0, "N=0": -3.0, "ReLU off, N=0": -3.0}
    runs = [(a, s, 50 + e + math.cos(s) + 0.2 * (-1) ** (s + len(a))) for a, e in effect.items() for s in range(6)]
    model = analysis.fit(runs)
    c = analysis.contrast(model, {"N=2": 1, "ReLU off, N=0": 1}, {"ReLU off": 1, "N=0": 1})
    y = {a: np.mean([r[2] for r in runs if r[0] == a]) for a in effect}
    assert c.estimate == pytest.approx(y["N=2"] - y["ReLU off"] - y["N=0"] + y["ReLU off, N=0"])
    assert c.se == pytest.approx(math.sqrt(model.sigma2 * 4 / 6))
    with pytest.raises(ValueError, match="sum to 0"):
        analysis.contrast(model, {"N=2": 2}, "N=0")


def test_collapse_and_failure_test():
    assert analysis.collapsed([[90, 0], [10, 0]])  # everything predicted as class 0
    assert not analysis.collapsed([[60, 10], [10, 20]])
    assert not analysis.collapsed([[0, 0], [0, 0]])
    # 6 of 8 failures against 0 of 8: p = C(8,6) C(8,0) / C(16,6) = 28 / 8008
    assert analysis.more_failures(6, 8, 0, 8) == pytest.approx(28 / 8008)
    assert analysis.more_failures(0, 8, 6, 8) == pytest.approx(1.0)
