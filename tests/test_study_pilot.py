"""The recipe pilot's rule and its check against a held-out sequence, on hand-made records."""

import math

import pandas as pd
import pytest

from refinenet.study.pilot import choose_recipe, sequence_check


def records(rows):
    cols = ["recipe", "seed", "val mIoU", "machine minutes", "diverged", "trained on", "validated on"]
    return pd.DataFrame([dict(zip(cols, r)) for r in rows])


PILOT = records([
    ("A", 0, 52.0, 11.0, False, "train", "val"),
    ("A", 1, 54.0, 11.0, False, "train", "val"),     # mean 53.0
    ("B", 0, 53.5, 9.0, False, "train", "val"),      # within 1 point of A, cheaper
    ("C", 0, 56.0, 20.0, False, "train", "val"),     # best, but over the budget
    ("D", 0, math.nan, math.nan, True, "train", "val"),
    ("D", 1, 60.0, 5.0, False, "train", "val"),      # one of its runs diverged
    ("A, held-out 0001TP", 0, 68.0, 10.0, False, "train:-0001TP", "train:0001TP"),  # not a candidate
    ("B, held-out 0001TP", 0, 70.0, 10.0, False, "train:-0001TP", "train:0001TP"),
])


def test_the_rule_picks_the_best_within_budget_and_prefers_a_cheaper_tie():
    recipe, why = choose_recipe(PILOT, budget_minutes=12)
    assert recipe == "B"  # B (53.5) is itself the best mean within budget: A's is 53.0
    assert why == "the highest val mIoU (53.5%) within 12 machine minutes a run"
    candidates = PILOT[~PILOT["recipe"].str.contains("held-out")]  # no held-out check
    lower_b = candidates["val mIoU"].where(candidates["recipe"] != "B", 52.5)
    recipe, why = choose_recipe(candidates.assign(**{"val mIoU": lower_b}), budget_minutes=12)
    assert recipe == "B" and why.startswith("within 1 point of the best (A, 53.0%) at less cost (9.0 against 11.0")
    assert choose_recipe(PILOT, budget_minutes=25)[0] == "C"
    assert choose_recipe(PILOT, budget_minutes=1) == (None, "no recipe trained without divergence within 1 machine minutes a run")


def test_a_recipe_costs_its_cheapest_run():
    """Other work on the machine only slows a run: one slowed seed does not push an idle
    recipe over the budget, and the table shows the cost the rule read."""
    from refinenet.study.pilot import pilot_table

    slowed = PILOT.copy()
    slowed.loc[(slowed["recipe"] == "C") , "machine minutes"] = 11.5
    slowed = pd.concat([slowed, records([("C", 1, 58.0, 14.0, False, "train", "val")])], ignore_index=True)
    assert choose_recipe(slowed, budget_minutes=12) == ("C", "the highest val mIoU (57.0%) within 12 machine minutes a run")
    assert choose_recipe(slowed, budget_minutes=11)[0] == "B"  # C's cheapest run, 11.5, is over 11
    table = pilot_table(slowed.assign(lr=0.01, steps=100, **{"best val mIoU": slowed["val mIoU"], "best at step": 100,
                                                           "measured minutes": slowed["machine minutes"]}))
    c = table.set_index("recipe").loc["C"]
    assert (c["seeds"], c["machine min"], c["measured min"]) == (2, "11.5", "12.8")


def test_the_pilot_table_shows_a_tiny_run_s_cost_and_short_headers():
    """Minutes to three significant digits: a run of seconds does not print as 0.00."""
    from refinenet.study.pilot import pilot_table

    tiny = PILOT.assign(lr=0.01, steps=4, **{"best val mIoU": PILOT["val mIoU"], "best at step": 4,
                                            "machine minutes": 0.01234, "measured minutes": 0.0456})
    table = pilot_table(tiny, "A")
    assert table["machine min"].iloc[0] == "0.0123" and table["measured min"].iloc[0] == "0.0456"
    assert table["mIoU % (end)"].iloc[0] == f"{PILOT[PILOT.recipe == 'A']['val mIoU'].mean():.1f}"
    assert max(len(w) for h in table.columns for w in h.split()) <= 9  # no header word is long
    assert all(len(h) <= 13 for h in table.columns)


def test_the_pilot_table_prints_the_best_step_as_an_integer_and_diverged_only_when_it_did():
    from refinenet.study.pilot import pilot_table

    best = PILOT["val mIoU"].where(~PILOT["recipe"].str.startswith("B,"))  # a run without its curve
    steps = pd.array([2800 if b == b else None for b in best], dtype="object")
    rows = PILOT.assign(lr=0.01, steps=2800, **{"best val mIoU": best, "best at step": steps,
                                               "measured minutes": PILOT["machine minutes"]})
    rows["best at step"] = rows["best at step"].astype(float)  # as a frame with a missing step holds it
    table = pilot_table(rows).set_index("recipe")
    assert table.loc["A", "best % (step)"] == "54.0 (2800)"
    assert table.loc["B, held-out 0001TP", "best % (step)"] == "–"  # no curve, and it did not diverge
    d = rows[rows["recipe"] == "D"].assign(**{"best val mIoU": math.nan}, diverged=True)
    assert pilot_table(d).set_index("recipe").loc["D", "best % (step)"] == "diverged"


def test_sequence_check_ranks_each_recipe_on_both_validations():
    frame, agree = sequence_check(PILOT)
    assert frame["recipe"].tolist() == ["A", "B"]
    assert frame["val mIoU %"].tolist() == [53.0, 53.5] and frame["held-out val mIoU %"].tolist() == [68.0, 70.0]
    assert frame["rank on val"].tolist() == [2, 1] and frame["rank held out"].tolist() == [2, 1]
    assert agree
    swapped = PILOT.replace({"val mIoU": {70.0: 60.0}})  # B held out below A: the orders differ
    assert not sequence_check(swapped)[1]
    with pytest.raises(KeyError, match="checks 'E', which is not a pilot recipe"):
        sequence_check(records([("E, held-out 0001TP", 0, 1.0, 1.0, False, "train:-0001TP", "train:0001TP")]))


def test_when_the_held_out_order_differs_the_held_out_score_decides_near_the_best():
    swapped = PILOT.replace({"val mIoU": {70.0: 60.0}})  # held out: A 68 above B 60; val: B above A
    recipe, why = choose_recipe(swapped, budget_minutes=12)
    # A (53.0) and B (53.5) are within 2 points of the best on val; both have held-out runs
    assert recipe == "A" and why.startswith("the held-out runs rank their recipes otherwise than val")
    assert why.endswith("within 2 points of the best on val (B, 53.5%), the highest held-out val mIoU (68.0%)")
    without_a = swapped[swapped["recipe"] != "A, held-out 0001TP"].copy()
    extra = records([("E", 0, 40.0, 5.0, False, "train", "val"),
                     ("E, held-out 0001TP", 0, 80.0, 5.0, False, "train:-0001TP", "train:0001TP")])
    mixed = pd.concat([without_a, extra], ignore_index=True)  # B above E on val, E above B held out
    recipe, why = choose_recipe(mixed, budget_minutes=12)
    assert recipe is None and "A still need held-out runs" in why
    # a lone recipe within the margin is chosen: no held-out score could change it
    lone = mixed.replace({"val mIoU": {53.5: 58.0}})
    recipe, why = choose_recipe(lone, budget_minutes=12)
    assert recipe == "B" and why.endswith("B is the only one, and no held-out score could change the choice")


def test_machine_minutes_equal_the_measured_seconds_on_an_idle_machine():
    """The first pilot round trained on an otherwise idle machine: there, the robust measure
    (median step x STEP_SKEW) agrees with the runs' own seconds within IDLE_AGREEMENT."""
    from pathlib import Path

    from refinenet.study.ledger import Ledger
    from refinenet.study.pilot import IDLE_AGREEMENT, machine_minutes, measured_minutes

    ledger = Ledger(Path(__file__).resolve().parents[1] / "results" / "cpu" / "runs")
    first_round = [e for e in ledger if e.data["arm"] in {
        "pilot: SGD poly, lr 0.01", "pilot: AdamW cosine, lr 0.0003", "pilot: SGD poly, lr 0.01, 8000 steps",
        "pilot: AdamW cosine, lr 0.001", "pilot: SGD poly, lr 0.02", "pilot: SGD poly, lr 0.01, 2000 steps"}]
    assert len(first_round) == 6
    for e in first_round:
        by_hand = (e.summary["train_seconds"] + e.frame("evals")["seconds"].sum() + e.data["score_seconds"]) / 2 / 60
        assert measured_minutes(e) == pytest.approx(by_hand)
        assert machine_minutes(e) == pytest.approx(by_hand, rel=IDLE_AGREEMENT), e.data["arm"]


def test_machine_minutes_do_not_count_steps_slowed_by_other_work(tmp_path):
    """A run whose every fifth step was slowed threefold costs what the idle run costs."""
    import json
    from types import SimpleNamespace

    from refinenet.study.ledger import Entry
    from refinenet.study.pilot import STEP_SKEW, machine_minutes

    def entry(slow):
        folder = tmp_path / f"slow{slow}"
        (folder / "history").mkdir(parents=True)
        t, rows = 0.0, ["step,elapsed_s"]
        for step in range(1, 1001):
            t += 0.4 * (3 if slow and step % 5 == 0 else 1)
            rows.append(f"{step},{t:.3f}")
        (folder / "history" / "steps.csv").write_text("\n".join(rows) + "\n")
        (folder / "history" / "evals.jsonl").write_text(json.dumps({"step": 1000, "seconds": 4.0}) + "\n")
        data = {"train": {"summary": {"train_seconds": t}}, "score_seconds": 20.0,
                "machine": {"device": "cpu", "threads": 1, "cpu_count": 2}}
        return SimpleNamespace(frame=Entry.frame.__get__(SimpleNamespace(dir=folder)), data=data,
                               summary=data["train"]["summary"], machine=data["machine"])

    idle, loaded = machine_minutes(entry(False)), machine_minutes(entry(True))
    assert loaded == pytest.approx(idle)
    assert idle == pytest.approx((1000 * 0.4 * STEP_SKEW + 4.0 + 20.0) / 2 / 60)


def test_pilot_families_hold_the_candidates_by_optimiser():
    from refinenet.study.pilot import pilot_families

    rows = PILOT.assign(optimiser=["sgd", "sgd", "adamw", "sgd", "adamw", "adamw", "adamw", "sgd"])
    assert pilot_families(rows) == {"SGD": ["A", "C"], "AdamW": ["B", "D"]}  # held-out runs left out
