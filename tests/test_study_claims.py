"""The design page's claims as contrasts of the study's arms, their verdict table, C7."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from refinenet.study import analysis
from refinenet.study.claims import (
    CLAIMS,
    SECONDARY,
    claim_fit,
    claim_table,
    family_arms,
    fit_text,
    precision_text,
    secondary_fit,
    failure_table,
    failure_view,
    plot_verdicts,
    secondary_table,
)

ARMS = {"standard": 50.0, "N = 0": 45.0, "ReLU off": 49.0, "ReLU off, N = 0": 44.5, "N = 4": 50.2,
        "cascade 2": 50.0, "cascade 1": 40.0, "2 scales": 52.0, "capacity control": 51.0, "no refinement": 30.0}


def records(arms=ARMS, seeds=6, page_copies=True):
    rng = np.random.default_rng(0)
    seed_effect = rng.normal(0, 1.0, seeds)
    rows = [{"variant": a, "seed": s, "test mIoU": m + seed_effect[s] + rng.normal(0, 0.3)}
            for a, m in arms.items() for s in range(seeds)]
    frame = pd.DataFrame(rows)
    # every page repeats the standard arm's runs: they count once
    return pd.concat([frame, frame[frame.variant == "standard"]] if page_copies else [frame], ignore_index=True)


def test_the_claims_are_the_design_pages_contrasts():
    table = claim_table(records()).set_index("claim")
    assert list(table.index) == ["C1", "C2", "C3", "C4", "C5", "C6"]
    means = records(page_copies=False).groupby("variant")["test mIoU"].mean()
    # a balanced additive model: each contrast is the difference of the arms' means
    assert table.loc["C1", "difference"] == pytest.approx(means["standard"] - means["N = 0"])
    c2 = (means["standard"] - means["ReLU off"]) - (means["N = 0"] - means["ReLU off, N = 0"])
    assert table.loc["C2", "difference"] == pytest.approx(c2)
    assert table.loc["C5", "difference"] == pytest.approx(means["cascade 2"] - means["cascade 1"])
    assert table.loc["C6", "difference"] == pytest.approx(means["2 scales"] - means["standard"])
    # the family's 7 arms only, each run counted once: 7 arms x 6 seeds, 7 + 6 - 1 parameters
    assert table["df"].iloc[0] == 42 - 12
    assert table.loc["C1", "verdict"] == "supported" and table.loc["C5", "verdict"] == "supported"
    assert table.loc["C3", "verdict"] in ("equivalent", "not resolved")
    assert set(CLAIMS) == set(table.index)


def test_a_missing_arm_is_named():
    partial = records({k: v for k, v in ARMS.items() if k != "cascade 1"})
    with pytest.raises(KeyError, match="no scored run of cascade 1"):
        claim_table(partial)


def test_secondary_contrasts_leave_out_arms_without_runs():
    table = secondary_table(records()).set_index("contrast")
    assert list(table.index) == list(SECONDARY)
    means = records(page_copies=False).groupby("variant")["test mIoU"].mean()
    assert table.loc["standard − no refinement", "difference"] == pytest.approx(means["standard"] - means["no refinement"])
    assert (table["low"] < table["difference"]).all() and (table["difference"] < table["high"]).all()
    without = secondary_table(records({k: v for k, v in ARMS.items() if k != "capacity control"}))
    assert "2 scales − capacity control" not in set(without["contrast"])


def test_c7_counts_divergence_and_collapse_as_failures():
    sweep = pd.DataFrame([
        {"variant": v, "lr": lr, "seed": s, "diverged": d, "val collapsed": c, "val mIoU": m}
        for v, lr, s, d, c, m in [
            ("ReLU on", 0.01, 0, False, False, 50.0), ("ReLU on", 0.01, 1, False, False, 52.0),
            ("ReLU on", 0.02, 0, False, True, 3.0), ("ReLU on", 0.02, 1, False, False, 51.0),
            ("ReLU off", 0.01, 0, True, False, math.nan), ("ReLU off", 0.01, 1, False, False, 49.0),
            ("ReLU off", 0.02, 0, True, False, math.nan), ("ReLU off", 0.02, 1, False, True, 2.0),
        ]])
    table, p = failure_table(sweep, arm="ReLU off", reference="ReLU on")
    t = table.set_index(["variant", "lr"])
    assert t.loc[("ReLU off", 0.02), "failed"] == 2 and t.loc[("ReLU on", 0.02), "failed"] == 1
    assert t.loc[("ReLU on", 0.01), "share %"] == 0 and t.loc[("ReLU on", 0.01), "high %"] == pytest.approx(
        100 * sps.binomtest(0, 2).proportion_ci(0.95, method="exact").high)
    assert t.loc[("ReLU on", 0.02), "val mIoU % of the runs that trained"] == 51.0  # the collapsed run left out
    assert p == pytest.approx(sps.fisher_exact([[3, 1], [1, 3]], alternative="greater").pvalue)
    with pytest.raises(KeyError, match="needs runs of 'ReLU off'"):
        failure_table(sweep[sweep.variant == "ReLU on"], arm="ReLU off", reference="ReLU on")


def test_c7_counts_a_finite_loss_that_ended_above_chance_as_a_failure():
    """A loss that blew up without becoming NaN (the run has a score) fails too; the earlier
    count, without that rule, stays available for the results page."""
    sweep = pd.DataFrame([
        {"variant": v, "lr": 0.002, "seed": s, "diverged": False, "val collapsed": False,
         "loss above chance": a, "val mIoU": m}
        for v, s, a, m in [("ReLU on", 0, False, 56.0), ("ReLU on", 1, False, 56.5),
                           ("ReLU off", 0, True, 10.2), ("ReLU off", 1, False, 59.1)]])
    table, p = failure_table(sweep, arm="ReLU off", reference="ReLU on")
    off = table.set_index("variant").loc["ReLU off"]
    assert off["failed"] == 1 and off["val mIoU % of the runs that trained"] == 59.1
    assert p == pytest.approx(sps.fisher_exact([[1, 1], [0, 2]], alternative="greater").pvalue)
    narrow, p_narrow = failure_table(sweep, arm="ReLU off", reference="ReLU on", above_chance=False)
    assert narrow["failed"].sum() == 0 and p_narrow == pytest.approx(1.0)
    # a table written before the column existed counts as before
    old, p_old = failure_table(sweep.drop(columns="loss above chance"), arm="ReLU off", reference="ReLU on")
    assert old["failed"].sum() == 0 and p_old == p_narrow


def test_a_ledger_entry_is_judged_on_its_step_history_and_the_data_sets_classes(tmp_path):
    """CamVid's 11 classes: chance is ln 11 = 2.40; a history ending at 3.0 is above it, the
    same history is below ln 21 = 3.04 on VOC; an entry without a history is not judged."""
    from types import SimpleNamespace

    from refinenet.study.experiments import Experiments
    from refinenet.study.ledger import Entry

    (tmp_path / "history").mkdir()
    pd.DataFrame({"step": range(100), "loss": [1.5] * 50 + [3.0] * 50}).to_csv(
        tmp_path / "history" / "steps.csv", index=False)
    judge = lambda dataset, entry: Experiments.loss_above_chance(  # noqa: E731
        SimpleNamespace(study=SimpleNamespace(dataset=dataset)), entry)
    assert judge("camvid", Entry(tmp_path)) and not judge("voc", Entry(tmp_path))
    assert not judge("camvid", Entry(tmp_path / "elsewhere"))


def test_the_failure_view_writes_each_rate_as_the_grid_does():
    sweep = pd.DataFrame([
        {"variant": v, "lr": lr, "seed": s, "diverged": d, "val collapsed": False, "val mIoU": m}
        for v, lr, s, d, m in [
            ("ReLU on", 0.00025, 0, False, 50.0), ("ReLU on", 0.0005, 0, False, 52.0),
            ("ReLU on", 0.001, 0, False, 51.0), ("ReLU off", 0.00025, 0, True, math.nan),
            ("ReLU off", 0.0005, 0, False, 49.0), ("ReLU off", 0.001, 0, False, 48.0),
        ]])
    view = failure_view(failure_table(sweep, arm="ReLU off", reference="ReLU on")[0])
    # the rates stay apart (a float column shown at 2 decimals reads "0.00" for all three)
    assert list(view["lr"]) == ["0.00025", "0.0005", "0.001"] * 2
    first = view.iloc[0]
    assert (first["variant"], first["failed"], first["runs"], first["share %"]) == ("ReLU off", 1, 1, "100")
    low = 100 * sps.binomtest(1, 1).proportion_ci(0.95, method="exact").low
    assert first["95% interval %"] == f"[{low:.0f}, 100]"
    assert first["val mIoU % of the runs that trained"] == "–"
    assert view.iloc[3]["val mIoU % of the runs that trained"] == "50.0"


def test_the_forest_plot_has_a_row_per_claim_and_the_margin():
    import matplotlib

    matplotlib.use("Agg")
    table = claim_table(records())
    ax = plot_verdicts(table)
    assert len(ax.get_yticks()) == 6 and ax.get_yticklabels()[1].get_text().startswith("C2: ")
    dashed = [line for line in ax.get_lines() if line.get_linestyle() == "--" and line.get_xdata()[0] in (-1, 1)]
    assert len(dashed) == 2 and analysis.MARGIN == 1.0


def test_the_forest_plot_text_is_readable_in_the_book():
    """Shown in the book's column, every label, tick and legend entry reads at MIN_TEXT_PX or
    more."""
    import matplotlib

    matplotlib.use("Agg")
    from refinenet.study.readable import MIN_TEXT_PX, check_readable

    ax = plot_verdicts(claim_table(records()), title="C1 to C6: Holm interval (thin), 90% interval (thick)")
    assert len(ax.figure.legends[0].get_texts()) == 5
    assert check_readable(ax.figure) >= MIN_TEXT_PX
    # the title reads at least as large as the ticks, and inside the figure
    ticks = max(t.get_fontsize() for t in ax.get_xticklabels() + ax.get_yticklabels())
    assert ax.title.get_fontsize() >= ticks
    renderer = ax.figure.canvas.get_renderer()
    box, frame = ax.title.get_window_extent(renderer), ax.figure.bbox
    assert frame.x0 <= box.x0 and box.x1 <= frame.x1


def test_the_verdicts_model_is_fitted_to_the_claims_arms_only():
    """The degrees of freedom the results page states: the scored runs of the seven arms that
    C1 to C6 compare, less one parameter per arm and per seed (but one); the secondary
    contrasts' model fits every arm."""
    arms = family_arms()
    assert arms == ["standard", "N = 0", "ReLU off, N = 0", "ReLU off", "cascade 2", "cascade 1", "2 scales"]
    three = records(seeds=3)  # 10 arms x 3 seeds, the standard runs repeated by every page
    model = claim_fit(three)
    assert set(model.arms) == set(arms) and model.n_runs == 21 and model.df == 21 - (7 + 3 - 1) == 12
    assert model.df == claim_table(three)["df"].iloc[0]
    assert fit_text(model) == ("21 scored runs of 7 arms with 3 seeds: 7 + 3 − 1 = 9 parameters, "
                               "21 − 9 = 12 residual degrees of freedom")
    every = secondary_fit(three)
    assert len(every.arms) == 10 and every.df == 30 - (10 + 3 - 1) == 18
    # a diverged run has no score: one run fewer, one degree of freedom fewer
    three.loc[(three.variant == "cascade 1") & (three.seed == 2), "test mIoU"] = math.nan
    assert claim_fit(three).df == 11 and fit_text(claim_fit(three)).startswith("20 scored runs of 7 arms")


def test_the_precision_reached_is_the_contrasts_half_width_against_the_aim():
    """The results page says whether the fit reached the 95% half-width the design sized n for."""
    from refinenet.study.analysis import contrast

    model = claim_fit(records(seeds=3))
    low, high = contrast(model, "standard", "N = 0").interval()
    width = f"{(high - low) / 2:.2f}"
    text = precision_text(model)
    assert f"all 3 seeds has a 95% half-width of {width} points" in text
    assert f"residual standard deviation is {model.sigma:.2f} points" in text
    # reaching or missing the aim is a fact of the numbers, not a fixed word
    assert ("reaches" in text) == (float(width) <= 1.0)
    assert "misses" in precision_text(model, target=float(width) / 2)
    assert "reaches" in precision_text(model, target=float(width) * 2)


def test_the_design_page_the_notebooks_and_the_claims_name_the_same_arms():
    """The arms table of book/design.md, the arms notebooks 04-06 declare (with the same
    model switches) and the arms the claims compare are one set."""
    import re
    from pathlib import Path

    from refinenet.study.plan import declared_values

    root = Path(__file__).resolve().parents[1]
    page = (root / "book" / "design.md").read_text()
    section = page[page.index("## Arms"):page.index("## Claims")]
    rows = re.findall(r"^\| ([^|]+?) \| [^|]+ \|\s*([^|]*?)\s*\|$", section, flags=re.M)
    design = {name: dict(re.findall(r"([\w.]+): (\[[^\]]*\]|[^,`]+)", switch)) for name, switch in rows if name != "arm"}
    declared = {}
    for nb in ("04_ablation_crp", "05_ablation_cascade", "06_ablation_scales"):
        declared.update(declared_values(root / "notebooks" / f"{nb}.py")["arms"])
    assert set(design) == set(declared)
    for name, switches in design.items():
        as_yaml = {k: str(v).lower() if isinstance(v, bool) else str(v).replace("'", "") for k, v in declared[name].items()}
        assert {k: v.strip() for k, v in switches.items()} == as_yaml, name
    compared = {a for c in [*CLAIMS.values(), *SECONDARY.values()] for side in (c.better, c.worse)
                for a in ([side] if isinstance(side, str) else side)}
    assert compared <= set(declared)


def test_the_setting_box_reads_the_profile_and_the_standard_runs():
    from types import SimpleNamespace

    from refinenet.study.design import StudyDesign
    from refinenet.study.report import scored_on, setting_box, setting_rows

    design = StudyDesign.from_dict({"train": {
        "model": {"backbone": "resnet18", "widths": [64, 32, 32, 32]},
        "data": {"size": [180, 240], "crop_size": [128, 160], "batch_size": 8},
        "optim": {"name": "adamw"}, "schedule": {"name": "cosine", "steps": 2800}}, "seeds": [0, 1, 2, 3]})
    exp = SimpleNamespace(base=design.base("camvid", "cpu"), design=design, profile=SimpleNamespace(name="cpu"),
                          eval_size=(180, 240),
                          study=SimpleNamespace(data=lambda split, size, n: range(367), dataset="camvid"))
    run = lambda val, test: SimpleNamespace(  # noqa: E731
        diverged=False, metrics={"miou": val}, test={"miou": test}, summary={"precision": {"amp": "bf16"}},
        config=SimpleNamespace(optim=SimpleNamespace(lr=0.001)))
    rows = dict(setting_rows(exp, [run(0.54, 0.40), run(0.56, 0.42)]))
    assert rows["backbone"] == "resnet18, random initialisation (from scratch)"
    assert rows["decoder widths"] == "64, 32, 32, 32"
    assert rows["images"] == "180 × 240, random crops 128 × 160; scored on 360 × 480 labels (logits upsampled)"
    assert rows["training"] == "adamw, cosine schedule, 2800 steps of 8 images (61 passes over 367 images)"
    assert rows["seeds"] == "4 per arm" and rows["precision"] == "bf16 autocast"
    assert rows["standard model, val mIoU %"] == "55.0 ± 1.4" and rows["learning rate"] == "0.001"
    assert "<th>decoder widths</th><td>64, 32, 32, 32</td>" in setting_box(exp, None).data
    # on the generator, the labels are those of the evaluation size
    exp.study.dataset, exp.eval_size = "synthetic", (64, 64)
    assert scored_on(exp) == "64 × 64 labels"
    assert dict(setting_rows(exp))["images"].endswith("; scored on 64 × 64 labels")


def test_the_page_views_put_each_interval_in_one_column():
    from refinenet.study.claims import interval_view, verdict_view

    table = claim_table(records())
    view = verdict_view(table)
    assert list(view.columns) == ["claim", "the paper", "difference [Holm interval]", "Holm p", "90% interval", "verdict"]
    row = table.iloc[0]
    assert view.iloc[0, 2] == f"{row['difference']:+.1f} [{row['Holm low']:+.1f}, {row['Holm high']:+.1f}]"
    second = secondary_table(records())
    assert interval_view(second).iloc[0, 2].startswith(f"{second['difference'].iloc[0]:+.1f} [")


def test_contrasts_are_displayed_unambiguously_and_keep_their_keys():
    from refinenet.study.claims import contrast_label, interval_view

    def plain(text):  # the names' non-breaking spaces as spaces
        return text.replace("\u00a0", " ")

    # an arm whose name holds "=" or a comma is one term, in parentheses
    assert plain(contrast_label("N = 4", "standard")) == "(N = 4) − standard"
    assert plain(contrast_label("standard", "ReLU off")) == "standard − ReLU off"
    c2 = CLAIMS["C2"]
    assert plain(contrast_label(c2.better, c2.worse)) == "[standard + (ReLU off, N = 0)] − [ReLU off + (N = 0)]"
    # each name on one line: the only plain spaces are those around the operators
    label = contrast_label("ReLU off, N = 0", "capacity control")
    assert label.split(" ") == ["(ReLU\u00a0off,\u00a0N\u00a0=\u00a00)", "−", "capacity\u00a0control"]
    # display only: the table keeps the keys, the view shows the labels
    second = secondary_table(records())
    assert "N = 4 − standard" in set(second["contrast"])
    shown = [plain(c) for c in interval_view(second)["contrast"]]
    assert "(N = 4) − standard" in shown and "N = 4 − standard" not in shown
    # the paper's and the config's word for the chain's stages
    assert "pooling blocks" in SECONDARY["N = 4 − standard"].text
