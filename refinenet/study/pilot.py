"""The recipe pilot of notebook 03: its table, its validation curves and its choice.

A pilot recipe is a whole training recipe (optimiser, schedule, rate, length, ...) trained for
the pilot's seeds and compared on the validation split only. The rule that picks the profile's
recipe is fixed before the runs (:func:`choose_recipe`): the highest mean val mIoU at the last
step among the recipes whose runs fit the budget; within ``tie`` points, the cheaper one.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

__all__ = ["machine_minutes", "pilot_records", "pilot_table", "pilot_curves", "choose_recipe", "plot_pilot_curves",
           "sequence_check", "HELD_OUT", "HELD_OUT_MARGIN", "TIE", "STEP_SKEW", "IDLE_AGREEMENT",
           "measured_minutes", "pilot_families"]

#: The suffix of a pilot recipe that trains without a sequence of the training split and
#: validates on it (notebook 03): a check of how val ranks recipes, not a candidate.
HELD_OUT = ", held-out "


#: Mean over median of the time of a training step on an idle machine: steps are skewed
#: towards slow ones (an epoch's first batch, memory allocation). Measured on the six runs of
#: the pilot's first round (cpu ledger, 2 runs of 1 thread at once): 1.04 to 1.06.
STEP_SKEW = 1.05


def _share(entry) -> float:
    """The run's share of the machine: a run of 1 of 2 threads on a CPU holds half of it."""
    if entry.machine.get("device") != "cpu":
        return 1.0
    return min(1.0, (entry.machine.get("threads") or 1) / (entry.machine.get("cpu_count") or 1))


def _validation_seconds(entry) -> list[float]:
    evals = entry.frame("evals")
    return [float(x) for x in evals["seconds"]] if "seconds" in evals else []


def machine_minutes(entry) -> float:
    """Minutes of the whole machine one run takes: its training, every validation and its test
    scoring, times its share of the machine (:func:`_share`). Start-up (seconds) is left out.

    Training counts as its steps times the median time of one step times
    :data:`STEP_SKEW`, and the validations as their number times the median validation: other
    work on the machine while a run trained slows some of its steps, and should not count
    against its recipe. On an idle machine this equals :func:`measured_minutes` within
    :data:`IDLE_AGREEMENT` (a test checks it on the ledger's first pilot runs). Without a step history: the run's
    measured training and validation seconds."""
    import statistics

    train = float(entry.summary.get("train_seconds") or 0.0)
    steps = entry.frame("steps")
    if {"step", "elapsed_s"} <= set(steps.columns) and len(steps) > 2:
        per_step = (steps["elapsed_s"].diff() / steps["step"].diff())[1:]
        train = float(per_step.median()) * STEP_SKEW * int(steps["step"].iloc[-1])
    evals = _validation_seconds(entry)
    validations = statistics.median(evals) * len(evals) if evals else float(entry.summary.get("eval_seconds") or 0.0)
    seconds = train + validations + float(entry.data.get("score_seconds") or 0.0)
    return seconds * _share(entry) / 60.0


def measured_minutes(entry) -> float:
    """Minutes of the whole machine by the run's own seconds (training, validations, test
    scoring), which count any other work the machine did meanwhile."""
    evals = _validation_seconds(entry)
    validations = sum(evals) if evals else float(entry.summary.get("eval_seconds") or 0.0)
    seconds = float(entry.summary.get("train_seconds") or 0.0) + validations + float(entry.data.get("score_seconds") or 0.0)
    return seconds * _share(entry) / 60.0


def _val(entry, split: str = "val"):
    """The run's validation rows on ``split`` (every ``eval.every`` steps and at the end)."""
    evals = entry.frame("evals")
    if evals.empty or "miou" not in evals:
        return evals.iloc[0:0]
    return evals[evals["split"] == split] if "split" in evals else evals


def pilot_records(runs: Mapping[str, Sequence]):
    """One row per pilot run: recipe, seed, optimiser, schedule, rate, steps, the splits it
    trained and validated on, val mIoU at the end and at its best step, diverged, machine
    minutes."""
    import pandas as pd

    rows = []
    for recipe, entries in runs.items():
        for e in entries:
            cfg = e.config
            val = _val(e, cfg.data.val_split)  # a held-out run validates on its held-out sequence
            best = val.loc[val["miou"].idxmax()] if not val.empty else None
            rows.append({
                "recipe": recipe, "seed": cfg.seed, "optimiser": cfg.optim.name, "schedule": cfg.schedule.name,
                "lr": cfg.optim.lr, "steps": cfg.schedule.steps, "batch": cfg.data.batch_size,
                "trained on": cfg.data.train_split, "validated on": cfg.data.val_split,
                "diverged": e.diverged,
                "val mIoU": 100 * e.miou if not e.diverged else math.nan,
                "best val mIoU": 100 * float(best["miou"]) if best is not None else math.nan,
                "best at step": int(best["step"]) if best is not None else None,
                "machine minutes": machine_minutes(e) if not e.diverged else math.nan,
                "measured minutes": measured_minutes(e) if not e.diverged else math.nan,
            })
    return pd.DataFrame(rows)


def _minutes(x: float) -> str:
    """Minutes to three significant digits (``"0.0123"``, ``"11.5"``, ``"142"``): a tiny run's
    cost does not round to zero."""
    if x != x:  # NaN: no measure
        return "–"
    return f"{x:.0f}" if abs(x) >= 100 else f"{x:.3g}"


def pilot_table(records, chosen: str | None = None):
    """Per recipe: its settings, its seeds, val mIoU at the end (mean over seeds) and at its
    best step, the cost of a run (machine minutes: the least over its runs, as the rule reads
    it; measured: the mean, both to three significant digits), and which one was chosen.
    Headers are short: the table is as wide as the page."""
    import pandas as pd

    out = []
    for recipe, g in records.groupby("recipe", sort=False):
        first = g.iloc[0]
        out.append({
            "recipe": recipe,
            "lr": f"{first['lr']:g}",
            "steps": int(first["steps"]),
            "validated on": first["validated on"],
            "seeds": len(g),
            "mIoU % (end)": "–" if g["val mIoU"].isna().all() else f"{g['val mIoU'].mean():.1f}",
            # the step column holds floats once a row has none: print it as the integer it is
            "best % (step)": f"{g['best val mIoU'].max():.1f} ({int(g.loc[g['best val mIoU'].idxmax(), 'best at step'])})"
            if g["best val mIoU"].notna().any() else ("diverged" if g["diverged"].all() else "–"),
            "machine min": _minutes(g["machine minutes"].min()),
            "measured min": _minutes(g["measured minutes"].mean()),
            "diverged": int(g["diverged"].sum()),
            "chosen": "✔" if recipe == chosen else "",
        })
    return pd.DataFrame(out)


#: On an idle machine :func:`machine_minutes` equals :func:`measured_minutes` within this
#: fraction (tests/test_study_pilot.py checks it on the pilot's first round).
IDLE_AGREEMENT = 0.02

#: Points of val mIoU within which a cheaper recipe wins over the best (the pilot's rule).
TIE = 1.0
#: If the held-out runs rank recipes otherwise than val, the recipes within this many points
#: of the best on val are trained held-out, and the held-out score decides (notebook 03).
HELD_OUT_MARGIN = 2.0


def choose_recipe(records, *, budget_minutes: float, tie: float = TIE) -> tuple[str | None, str]:
    """The pilot's rule (fixed before its runs): among recipes none of whose runs diverged and
    whose cheapest run costs ``budget_minutes`` of the machine or less, the highest mean val mIoU at
    the last step; a recipe within ``tie`` points of it that costs less wins instead. Only
    recipes trained on the whole training split are candidates (not the held-out checks).

    If held-out runs rank their recipes otherwise than val (:func:`sequence_check`), val does
    not decide: among the candidates within :data:`HELD_OUT_MARGIN` points of the best on val,
    the highest held-out score does, once each has a held-out run (until then none is chosen).
    A lone candidate within the margin is chosen: no held-out score could change the choice.
    Returns ``(recipe or None, the reason in words)``."""
    check, agree = sequence_check(records)
    trained = records[records["trained on"] == "train"]
    by = trained.groupby("recipe", sort=False).agg(
        # the least cost over a recipe's runs: other work on the machine only ever slows a run
        miou=("val mIoU", "mean"), minutes=("machine minutes", "min"), diverged=("diverged", "sum"))
    fits = by[(by["diverged"] == 0) & (by["minutes"] <= budget_minutes)]
    if fits.empty:
        return None, f"no recipe trained without divergence within {budget_minutes:g} machine minutes a run"
    best = fits["miou"].max()
    top = str(fits["miou"].idxmax())
    if not check.empty and not agree:
        return _held_out_choice(records, fits, top, best)
    close = fits[fits["miou"] >= best - tie].sort_values(["minutes", "miou"], ascending=[True, False])
    recipe = str(close.index[0])
    why = (f"the highest val mIoU ({best:.1f}%) within {budget_minutes:g} machine minutes a run" if recipe == top else
           f"within {tie:g} point of the best ({top}, {best:.1f}%) at less cost "
           f"({fits.loc[recipe, 'minutes']:.1f} against {fits.loc[top, 'minutes']:.1f} machine minutes)")
    return recipe, why


def _held_out_choice(records, fits, top: str, best: float) -> tuple[str | None, str]:
    """The rule's second branch: the held-out score decides among the recipes near the best."""
    near = [str(r) for r in fits.index[fits["miou"] >= best - HELD_OUT_MARGIN]]
    held = records[records["recipe"].str.contains(HELD_OUT, regex=False)]
    scores = held.assign(base=held["recipe"].str.split(HELD_OUT, regex=False).str[0]).groupby("base")["val mIoU"].mean()
    lead = (f"the held-out runs rank their recipes otherwise than val, so val does not decide; "
            f"among the recipes within {HELD_OUT_MARGIN:g} points of the best on val ({top}, {best:.1f}%)")
    if len(near) == 1:
        return top, f"{lead}, {top} is the only one, and no held-out score could change the choice"
    missing = [r for r in near if r not in scores.index]
    if missing:
        return None, f"{lead}, {', '.join(missing)} still need held-out runs; the held-out score decides"
    recipe = max(near, key=lambda r: scores[r])
    return recipe, f"{lead}, the highest held-out val mIoU ({scores[recipe]:.1f}%)"


def pilot_families(records) -> dict[str, list[str]]:
    """The candidate recipes (trained on the whole training split) by optimiser family,
    ``{"SGD": [...], "AdamW": [...]}`` in the records' order, for plots that stay readable."""
    candidates = records[records["trained on"] == "train"].drop_duplicates("recipe")
    names = {"sgd": "SGD", "adamw": "AdamW"}
    out: dict[str, list[str]] = {"SGD": [], "AdamW": []}
    for recipe, optimiser in zip(candidates["recipe"], candidates["optimiser"]):
        out.setdefault(names.get(optimiser, optimiser), []).append(recipe)
    return out


def pilot_curves(runs: Mapping[str, Sequence]):
    """Long frame of the validation curves: recipe, seed, step, images seen, val mIoU %."""
    import pandas as pd

    frames = []
    for recipe, entries in runs.items():
        for e in entries:
            val = _val(e)
            if val.empty:
                continue
            batch = e.config.data.batch_size
            frames.append(pd.DataFrame({
                "recipe": recipe, "seed": e.config.seed, "step": val["step"].astype(int),
                "images seen": val["step"].astype(int) * batch, "val mIoU %": 100 * val["miou"].astype(float),
            }))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        columns=["recipe", "seed", "step", "images seen", "val mIoU %"])


def plot_pilot_curves(curves, *, train_images: int, ax=None):
    """Val mIoU against passes over the training images, one line per recipe (and seed)."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    if ax is None:
        _, ax = plt.subplots(figsize=(7.5, 4.2))
    data = curves.assign(passes=curves["images seen"] / train_images)
    sns.lineplot(data=data, x="passes", y="val mIoU %", hue="recipe", units="seed", estimator=None,
                 marker="o", markersize=3, ax=ax)
    ax.set_xlabel("passes over the training images")
    ax.set_ylabel("val mIoU %")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=10, loc="lower right")
    return ax


def sequence_check(records):
    """How val ranks recipes against a validation on a sequence training never saw.

    For each held-out recipe (``"<recipe>, held-out <sequence>"``) and its recipe: the val mIoU
    of the recipe (trained on all of train, validated on val) and of its held-out run (trained
    without the sequence, validated on it), means over seeds, with each one's rank among the
    recipes checked (1 = best). Returns ``(frame, orders agree)``."""
    import pandas as pd

    by = records.groupby("recipe", sort=False)["val mIoU"].mean()
    rows = []
    for recipe, score in by.items():
        if HELD_OUT not in recipe:
            continue
        base = recipe.split(HELD_OUT)[0]
        if base not in by.index:
            raise KeyError(f"held-out recipe {recipe!r} checks {base!r}, which is not a pilot recipe")
        split = records.loc[records["recipe"] == recipe, "validated on"].iloc[0]
        rows.append({"recipe": base, "val mIoU %": by[base], "held-out split": split, "held-out val mIoU %": score})
    frame = pd.DataFrame(rows, columns=["recipe", "val mIoU %", "held-out split", "held-out val mIoU %"])
    frame["rank on val"] = frame["val mIoU %"].rank(ascending=False, method="min").astype("Int64")
    frame["rank held out"] = frame["held-out val mIoU %"].rank(ascending=False, method="min").astype("Int64")
    return frame, bool((frame["rank on val"] == frame["rank held out"]).all())
