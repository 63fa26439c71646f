"""The helpers of refinenet.study.report that the ablation pages (4 to 6) and the results page
(7) call for the numbers they paste into the prose and the tables they gather."""

import math
import re
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from refinenet.study import report, stats
from refinenet.study.published import PUBLISHED_CAMVID


def runs(scores: dict[str, list[float]], column: str = "test mIoU") -> pd.DataFrame:
    """A per-run frame: ``{variant: scores}``, NaN for a run that diverged."""
    return pd.DataFrame([
        {"variant": v, "seed": s, column: y, "diverged": math.isnan(y)}
        for v, ys in scores.items() for s, y in enumerate(ys)
    ])


def test_welch_text_is_scipys_welch_interval_of_the_scored_runs():
    a, b = [50.0, 52.5, 49.0, 51.0], [47.0, 48.5, 44.0]
    records = runs({"standard": a, "N = 0": b + [math.nan]})  # the diverged run left out
    ci = sps.ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
    diff = np.mean(a) - np.mean(b)
    assert report.welch_text(records, "standard", "N = 0") == f"{diff:+.1f} [{ci.low:+.1f}, {ci.high:+.1f}]"
    # oriented: better minus worse
    assert report.welch_text(records, "N = 0", "standard").startswith(f"{-diff:+.1f} [")


def test_welch_text_of_an_unmeasured_column_says_so_only_when_asked():
    records = runs({"standard": [50.0, 51.0, 52.0], "cascade 1": [40.0, 41.0, 39.0]})
    records["test boundary IoU"] = math.nan  # eval.boundary=false
    text = report.welch_text(records, "standard", "cascade 1", column="test boundary IoU",
                             missing="(not measured)")
    assert text == "(not measured)"
    with pytest.raises(ValueError, match="at least 2 values"):
        report.welch_text(records, "standard", "cascade 1", column="test boundary IoU")
    # measured: the interval, whatever ``missing`` says
    scored = report.welch_text(records, "standard", "cascade 1", missing="(not measured)")
    assert scored.startswith("+11.0 [")


def test_failure_counts_follow_the_given_order_with_exact_intervals():
    records = runs({"standard": [50.0, 51.0, 49.0], "ReLU off": [math.nan, 40.0, math.nan]})
    text = report.failure_counts_text(records, ["ReLU off", "standard"])
    ci = sps.binomtest(2, 3).proportion_ci(0.95, method="exact")
    nb = "\u00a0"
    assert text == (f"`ReLU{nb}off` 2 of 3 [{100 * ci.low:.0f}%, {100 * ci.high:.0f}%]; "
                    "`standard` 0 of 3 [0%, 71%]")
    # no colon after a name that holds one's own "N = 0"
    three = runs({"ReLU off, N = 0": [50.0, 51.0, 49.0]})
    assert report.failure_counts_text(three, ["ReLU off, N = 0"]) == (
        f"`ReLU{nb}off,{nb}N{nb}={nb}0` 0 of 3 [0%, 71%]")


def test_sweep_records_gathers_every_rate_of_each_arm_under_its_new_name():
    grid = {"standard": {0.01: ["s1", "s2"], 0.02: ["s3", "s4"]}, "ReLU off": {0.01: ["o1"], 0.02: ["o2", "o3"]}}
    calls = []

    def records(variants, *, test=True):
        calls.append(test)
        return pd.DataFrame([{"variant": name, "run": e} for name, entries in variants.items() for e in entries])

    blew_up = {"o2"}  # each run's own judgement lands on its own row
    exp = SimpleNamespace(sweep=lambda arm: grid[arm], records=records,
                          loss_above_chance=lambda run: run in blew_up)
    frame = report.sweep_records(exp, {"ReLU on": "standard", "ReLU off": "ReLU off"})
    assert list(frame["variant"]) == ["ReLU on"] * 4 + ["ReLU off"] * 3
    assert list(frame["run"]) == ["s1", "s2", "s3", "s4", "o1", "o2", "o3"]
    assert list(frame.loc[frame["loss above chance"], "run"]) == ["o2"]
    assert list(frame.index) == list(range(7)) and calls == [False, False]  # val scores only


def test_cascade_layout_names_the_taps_each_block_fuses():
    from refinenet.models import cascade_groups

    arms = {4: "standard", 2: "cascade 2", 1: "cascade 1"}
    table = report.cascade_layout({name: cascade_groups(c) for c, name in arms.items()})
    assert list(table.columns) == ["arm", "blocks", "taps fused by each block, first to last"]
    assert list(table["arm"]) == list(arms.values()) and list(table["blocks"]) == [4, 2, 1]
    assert list(table.iloc[:, 2]) == [
        "[layer4] → [layer3] → [layer2] → [layer1]",
        "[layer4 + layer3] → [layer2 + layer1]",
        "[layer4 + layer3 + layer2 + layer1]",
    ]
    # the paper's names beside the arms' own, which every other table and figure uses
    paper = {"standard": "4-cascade", "cascade 2": "2-cascade", "cascade 1": "single block"}
    described = report.cascade_layout({name: cascade_groups(c) for c, name in arms.items()}, described=paper)
    assert list(described.columns[:3]) == ["arm", "in the paper", "blocks"]
    assert list(described["in the paper"]) == ["4-cascade", "2-cascade", "single block"]


def test_standard_view_writes_mean_and_std_as_text():
    summary = pd.DataFrame({"metric": ["mean IoU over classes", "pixel accuracy"], "mean %": [14.594, 44.55],
                            "std %": [1.442, math.nan], "n": [3, 1], "key": ["test mIoU", "test pixel accuracy"]})
    view = report.standard_view(summary)
    assert list(view.columns) == ["metric", "mean ± std %", "n"]
    assert list(view["mean ± std %"]) == ["14.6 ± 1.4", "44.5"]  # one seed: no spread
    assert list(view["n"]) == [3, 1] and list(view["metric"]) == list(summary["metric"])


def test_standing_text_sets_the_score_beside_the_best_model_trained_from_scratch():
    best = max((r for r in PUBLISHED_CAMVID if r["from scratch"]), key=lambda r: r["test mIoU %"])
    text = report.standing_text(50.0, synthetic=False)
    assert text == (f"is {best['test mIoU %'] - 50:.1f} points below {best['method']} ({best['test mIoU %']}%), "
                    "the best published CamVid model trained from scratch")
    rows = [{"method": "A", "test mIoU %": 70.0, "from scratch": False},
            {"method": "B", "test mIoU %": 55.5, "from scratch": True},
            {"method": "C", "test mIoU %": 52.0, "from scratch": True}]
    assert report.standing_text(50.25, synthetic=False, published=rows).startswith("is 5.2 points below B (55.5%)")
    assert "synthetic generator" in report.standing_text(50.0, synthetic=True, published=rows)
    assert "below" not in report.standing_text(50.0, synthetic=True)


def test_all_variants_keeps_each_variant_once_under_one_difference_column():
    crp = pd.DataFrame({"variant": ["standard", "N = 0"], "n": [3, 3], "test mIoU %": ["14.6 ± 1.4", "9.5 ± 3.8"],
                        "Δ vs standard [95% CI]": ["(reference)", "-5.1 [-13.3, +3.0]"],
                        "diverged runs [95% CI]": ["0 of 3", "0 of 3"], "params (M)": ["11.6", "11.57"],
                        "GMACs": ["0.16", "0.16"], "train s / run": ["1", "1"]})
    scales = pd.DataFrame({"variant": ["standard", "2 scales"], "n": [3, 3],
                           "test mIoU %": ["14.6 ± 1.4", "7.5 ± 4.7"],
                           "Δ vs one scale [95% CI]": ["(reference)", "-7.1 [-17.5, +3.4]"],
                           "params (M)": ["11.6", "23.08"], "GMACs": ["0.16", "0.37"],
                           "train s / run": ["1", "1"]})
    table = report.all_variants({"04": crp, "06": scales})
    assert list(table["variant"]) == ["standard", "N = 0", "2 scales"]
    # no boundary IoU in these tables, and no column of one page only (diverged runs)
    assert list(table.columns) == ["variant", "n", "test mIoU %", "Δ test mIoU vs standard [95% CI]",
                                   "params (M)", "GMACs", "train s / run"]
    assert list(table["Δ test mIoU vs standard [95% CI]"]) == ["(reference)", "-5.1 [-13.3, +3.0]",
                                                               "-7.1 [-17.5, +3.4]"]
    assert list(table["GMACs"]) == ["0.16", "0.16", "0.37"]  # without the runs, as the pages wrote them
    # from the runs, the costs are written again at one precision for the whole table
    costs = {"standard": (11.599704, 0.163768), "N = 0": (11.567448, 0.163546), "2 scales": (23.0782, 0.366729)}
    records = pd.DataFrame([{"variant": v, "seed": s, "parameters (M)": p, "GMACs": g, "training s": 0.5 + s}
                            for v, (p, g) in costs.items() for s in range(2)])
    table = report.all_variants({"04": crp, "06": scales}, records)
    assert list(table["GMACs"]) == ["0.1638", "0.1635", "0.3667"]
    assert list(table["params (M)"]) == ["11.60", "11.57", "23.08"]
    assert list(table["train s / run"]) == ["1.00"] * 3
    # at the study's decimals (cost_decimals), as every page writes them
    table = report.all_variants({"04": crp, "06": scales}, records, places={"parameters (M)": 2, "GMACs": 3})
    assert list(table["GMACs"]) == ["0.164", "0.164", "0.367"]
    assert list(table["params (M)"]) == ["11.60", "11.57", "23.08"]


def test_costs_keep_three_significant_digits_and_distinct_values_apart():
    # 3 significant digits would write the first two as 0.164 and 0.162 and the last two alike
    assert report.cost_texts([0.163768, 0.162146, 0.161815]) == ["0.1638", "0.1621", "0.1618"]
    assert report.cost_texts([0.163768, 0.162146, 0.162146]) == ["0.164", "0.162", "0.162"]
    assert report.cost_texts([1234.4, 12.3]) == ["1234.4", "12.3"]
    # training seconds: significant digits only, so that a ratio of two can be read off
    assert report.cost_texts([0.658667, 1.286], apart=False) == ["0.659", "1.286"]
    assert report.cost_texts([2345.6, 4100.2, math.nan], apart=False) == ["2346", "4100", "–"]


def test_the_ablation_table_writes_costs_precisely_enough_to_compare():
    rows = [("standard", 11.599704, 0.163768, 0.65), ("cascade 2", 11.505096, 0.162146, 0.80),
            ("cascade 1", 11.484312, 0.161815, 1.30)]
    records = pd.DataFrame([
        {"variant": v, "seed": s, "test mIoU": 40.0 + s, "diverged": False, "parameters (M)": p, "GMACs": g,
         "training s": t} for v, p, g, t in rows for s in range(2)])
    table = report.ablation_table(records).set_index("variant")
    assert list(table["GMACs"]) == ["0.1638", "0.1621", "0.1618"]
    assert list(table["params (M)"]) == ["11.60", "11.51", "11.48"]
    assert list(table["train s / run"]) == ["0.650", "0.800", "1.300"]


def test_the_ablation_table_gives_each_arms_boundary_iou_with_its_welch_interval():
    records = pd.DataFrame([
        {"variant": v, "seed": s, "test mIoU": 40.0 + s, "test boundary IoU": b, "parameters (M)": 1.0,
         "GMACs": 0.1, "training s": 1.0}
        for v, bs in {"standard": [29.0, 30.0, 29.5], "ReLU off": [30.5, 31.5, 30.0]}.items()
        for s, b in enumerate(bs)])
    table = report.ablation_table(records).set_index("variant")
    d = stats.welch([30.5, 31.5, 30.0], [29.0, 30.0, 29.5])
    assert table.loc["standard", "boundary IoU %"] == "29.5 ± 0.5"
    assert table.loc["ReLU off", "boundary IoU %"] == f"30.7 ± 0.8 ({d.diff:+.1f} [{d.low:+.1f}, {d.high:+.1f}])"
    assert table.loc["ReLU off", "boundary IoU %"].endswith("(+1.2 [-0.4, +2.7])")
    # a bound that rounds to zero keeps its sign (interval_text): which side of 0 it lies on
    near = records.assign(**{"test boundary IoU": [29.0, 30.0, 29.5, 30.2, 30.5, 30.8]})
    assert report.ablation_table(near).set_index("variant").loc["ReLU off", "boundary IoU %"] == (
        "30.5 ± 0.3 (+1.0 [-0.02, +2.0])")
    # a profile that does not score boundaries: no interval, no error
    table = report.ablation_table(records.assign(**{"test boundary IoU": math.nan})).set_index("variant")
    assert table.loc["ReLU off", "boundary IoU %"] == "n/a"


def test_an_arms_training_time_is_the_median_of_its_runs():
    # one run that shared the machine (9 s) must not set its arm's time, as a mean would (3.67)
    records = pd.DataFrame([
        {"variant": "standard", "seed": s, "test mIoU": 40.0 + s, "parameters (M)": 11.6, "GMACs": 0.16,
         "training s": t} for s, t in enumerate([1.0, 1.0, 9.0])] + [
        {"variant": "N = 0", "seed": s, "test mIoU": 40.0 + s, "parameters (M)": 11.5, "GMACs": 0.15,
         "training s": t} for s, t in enumerate([1.2, 1.4, 1.3])])
    costs = report.variant_costs(records)
    assert costs.loc["standard", "training s"] == 1.0
    assert costs.loc["N = 0", "training s"] == pytest.approx(1.3)
    assert costs.loc["standard", "parameters (M)"] == pytest.approx(11.6)
    assert list(report.ablation_table(records)["train s / run"]) == ["1.00", "1.30"]
    everything = report.all_variants({"04": report.ablation_table(records)}, records)
    assert list(everything["train s / run"]) == ["1.00", "1.30"]


def test_styled_shows_floats_at_the_precision_asked():
    check = pd.DataFrame({"arm": ["ReLU off"], "val mIoU % at it": [6.8], "gain": [13.3]})
    two = report.styled(check).to_html()
    one = report.styled(check, precision=1).to_html()
    assert "6.80" in two and "13.30" in two
    assert ">6.8<" in one and ">13.3<" in one and "6.80" not in one


def test_the_study_writes_p_values_at_three_decimals():
    assert report.p_text(1.0) == "1.000" and report.p_text(0.04217) == "0.042"
    assert report.p_text(np.float64(0.5)) == "0.500"


def test_cost_decimals_are_the_studys_and_grow_only_to_keep_arms_apart():
    # (parameters, MACs) per arm, as Experiments.cost counts them
    sizes = {(): (11_599_704, 163_768_000), ("N = 0",): (11_567_448, 163_546_000),
             ("cascade 1",): (11_484_312, 161_815_000), ("cascade 2",): (11_505_096, 162_146_000),
             ("2 scales",): (23_078_200, 366_729_000), ("capacity control",): (23_078_200, 320_900_000)}
    exp = SimpleNamespace(cost=lambda overrides: sizes[tuple(overrides)])
    arms = {"standard": {}, "N = 0": {"N = 0": 1}, "cascade 2": {"cascade 2": 1}, "cascade 1": {"cascade 1": 1},
            "2 scales": {"2 scales": 1}, "capacity control": {"capacity control": 1}}
    # 0.162 would write both shorter cascades alike: one decimal more, for every arm
    assert report.cost_decimals(exp, arms) == {"parameters (M)": 2, "GMACs": 4}
    # arms of equal size (the two 2-backbone models' parameters) need no more
    far = {k: v for k, v in arms.items() if k not in ("cascade 1", "N = 0")}
    assert report.cost_decimals(exp, far) == report.COST_DECIMALS == {"parameters (M)": 2, "GMACs": 3}
    # a table written at those decimals
    records = pd.DataFrame([{"variant": v, "seed": s, "test mIoU": 40.0 + s, "diverged": False,
                             "parameters (M)": sizes[tuple(o)][0] / 1e6, "GMACs": sizes[tuple(o)][1] / 1e9,
                             "training s": 1.0} for v, o in far.items() for s in range(2)])
    table = report.ablation_table(records, places=report.cost_decimals(exp, far))
    assert list(table["params (M)"]) == ["11.60", "11.51", "23.08", "23.08"]
    assert list(table["GMACs"]) == ["0.164", "0.162", "0.367", "0.321"]


def test_the_rate_check_shows_short_headers_over_the_same_rows():
    check = pd.DataFrame([{"arm": "ReLU off", "common rate": "0.001", "val mIoU % at it": 50.1,
                           "its best rate": "0.002", "val mIoU % at that": 51.0, "gain": 0.9,
                           "noise (larger spread)": 1.2, "trains at": "0.001"}])
    view = report.rate_check_view(check)
    assert list(view.columns) == ["arm", "common rate", "val % at common", "best rate", "val % at best", "gain",
                                  "noise", "trains at"]
    assert view.values.tolist() == check.values.tolist()
    # each header is short enough not to wrap onto several lines
    assert max(len(c) for c in view.columns) <= 15
    for short in ("val %", "gain", "noise"):
        assert short in report.RATE_CHECK_KEY


def test_arm_names_in_prose_and_which_arms_were_swept():
    def plain(text):  # the names' non-breaking spaces as spaces
        return text.replace("\u00a0", " ")

    assert report.arm_text("ReLU off, N = 0") == "ReLU\u00a0off,\u00a0N\u00a0=\u00a0" + "0"
    assert report.names_md(["N = 4"]) == "`N\u00a0=\u00a04`"
    names = report.names_md(["ReLU off", "N = 0", "ReLU off, N = 0"])
    assert plain(names) == "`ReLU off`, `N = 0` and `ReLU off, N = 0`"
    # a name never breaks: no plain space inside a code span
    assert all(" " not in span for span in names.split("`")[1::2])
    arms = ["standard", "ReLU off", "N = 0", "ReLU off, N = 0", "N = 4"]
    text = report.swept_text(arms, ["standard", "ReLU off", "N = 0", "ReLU off, N = 0"])
    assert plain(text) == ("Of the other arms, `ReLU off`, `N = 0` and `ReLU off, N = 0` were also trained "
                           "at the grid's other rates; `N = 4` was not and trains at the common rate.")
    text = report.swept_text(["standard", "2 scales", "capacity control"], ["2 scales"])
    assert plain(text) == ("Of the other arms, `2 scales` was also trained at the grid's other rates; "
                           "`capacity control` was not and trains at the common rate.")
    assert report.swept_text(["standard", "cascade 2"], ["cascade 2"]).endswith("other rates.")


def test_the_other_rates_are_named_in_the_singular_where_there_is_one():
    one = report.swept_text(["standard", "2 scales"], ["2 scales"], lrs=[0.01, 0.05], common=0.05)
    assert one.endswith("also trained at the grid's other rate, 0.01.")
    two = report.swept_text(["standard", "2 scales"], ["2 scales"], lrs=[0.0005, 0.001, 0.002], common=0.001)
    assert two.endswith("also trained at the grid's other rates, 0.0005 and 0.002.")
    none = report.swept_text(["standard", "N = 4"], [], lrs=[0.01, 0.05], common=0.05)
    assert none == "No arm but the standard model was trained at the grid's other rate, 0.01."


def test_the_grid_note_says_where_the_chosen_rate_lies():
    cpu = report.grid_text([0.0005, 0.001, 0.002], 0.001)
    assert cpu == "The grid has only three rates, 0.0005, 0.001 and 0.002, around the chosen one (0.001)."
    top = report.grid_text([0.05, 0.01], 0.05)
    assert top == ("The grid has only two rates, 0.01 and 0.05, and the chosen one (0.05) is its highest: "
                   "no rate above it is tried.")
    assert report.grid_text([0.01, 0.05], 0.01).endswith("is its lowest: no rate below it is tried.")
    assert "around" not in top and "around" not in report.grid_text([0.01, 0.05], 0.01)
    assert report.grid_text([0.01], 0.01) == "The grid has a single rate, the chosen one (0.01)."


def test_the_other_data_set_is_the_one_the_page_is_not_on():
    on_generator = report.other_dataset_texts(True)
    assert on_generator["this"] == "the synthetic generator"
    assert (on_generator["other"], on_generator["other_words"]) == ("camvid", "CamVid")
    assert "results/cpu/" in on_generator["expect"]
    on_camvid = report.other_dataset_texts(False)
    assert on_camvid["this"] == "CamVid"
    assert (on_camvid["other"], on_camvid["other_words"]) == ("synthetic", "the synthetic generator")
    assert "results/cpu-synthetic/runs" in on_camvid["expect"]


def test_styled_keeps_the_cells_of_the_nowrap_columns_on_one_line():
    table = pd.DataFrame({"variant": ["ReLU off, N = 0"], "90% interval": ["[+3.9, +21.4]"], "words": ["a b"]})
    html = report.styled(table, nowrap=["variant", "90% interval", "absent"]).to_html()
    # the data cells of columns 0 and 1 (td.col0, td.col1), not those of column 2
    assert re.search(r"td\.col0\s*\{\s*white-space: nowrap;", html)
    assert re.search(r"td\.col1\s*\{\s*white-space: nowrap;", html)
    assert "col2" not in html.split("</style>")[0]
    # the other cells wrap as before, the headers too
    assert "white-space: normal" in html and not re.search(r"th\.col\d\s*\{\s*white-space", html)


def test_the_ablation_figure_reads_in_the_book_with_titles_as_large_as_ticks():
    import matplotlib

    matplotlib.use("Agg")
    from refinenet.study.readable import MIN_TEXT_PX, check_readable

    records = runs({"standard": [50.0, 51.0, 52.0], "ReLU off": [45.0, 47.0, 44.0],
                    "ReLU off, N = 0": [40.0, 42.0, 41.5], "N = 4": [49.0, 50.5, 51.0]})
    fig = report.ablation_figure(records)
    assert check_readable(fig) >= MIN_TEXT_PX
    for ax in fig.axes:
        ticks = max(t.get_fontsize() for t in ax.get_xticklabels() + ax.get_yticklabels())
        assert ax.title.get_fontsize() >= ticks
    assert fig.axes[1].get_title() == "difference to standard, 95% interval"


def test_the_rate_sweep_figure_reads_in_the_book():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from refinenet.study.readable import MIN_TEXT_PX, check_readable

    sweep = pd.DataFrame([{"variant": v, "lr": lr, "seed": s, "val mIoU": 40.0 + s + 10 * lr}
                          for v in ("ReLU on", "ReLU off") for lr in (0.0005, 0.001, 0.002) for s in range(2)])
    ax = report.plot_rate_sweep(sweep, [0.0005, 0.001, 0.002], hue={"ReLU on": "C0", "ReLU off": "C1"})
    ax.set_title("val mIoU per rate: mean ± std over seeds; dots: seeds")  # as notebook 4 titles it
    assert check_readable(ax.figure) >= MIN_TEXT_PX
    plt.close(ax.figure)
