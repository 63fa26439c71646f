# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Performance: how fast, against what ceiling
#
# A faithful RefineNet is only useful if people can afford to train it. This
# chapter reports what `refinenet bench` measured: inference latency and
# training throughput of each **fast path** (bf16 autocast, channels_last
# memory format, torch.compile) against the plain baseline (fp32, NCHW,
# eager) *in the same run*, on the same weights and inputs, and the achieved
# FLOP/s as a fraction of a ceiling the same command measures: the fastest
# large matrix product the machine runs in that precision.
#
# ```{admonition} How the numbers are taken
# :class: tip
# Every path is built and warmed up first, then all paths are timed
# **round-robin** (one call of each per round), so a change in the machine's
# load affects all of them alike and the *ratios* stay fair. Each cell gives
# the median over the rounds. The argmax agreement is the share of pixels
# whose predicted class is the same as the baseline's. This page does not
# benchmark anything itself: it reads the CSV files that `refinenet bench`
# wrote into `results/bench/`, whose commands are shown below.
# ```

# %% tags=["parameters"]
# The study runner sets these from the profile (refinenet/study/profiles/).
profile = "cpu"  # whose runs and settings the page shows (name or .yaml)
device = "auto"  # "auto": CUDA when present, else CPU
dataset = "auto"  # "auto": CamVid when found, else the generator
output_dir = None  # tables and figures (None: results/interactive/...)
bench_dir = None  # the CSVs of `refinenet bench` (None: results/bench)

# %%
import json
import re
import shlex
import tempfile
import textwrap
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns
from IPython.display import display

from refinenet.study.notebook import start
from refinenet.study.runner import find_root

study = start(
    "08_performance",
    profile=profile,
    device=device,
    dataset=dataset,
    output_dir=output_dir,
)


def find_bench_dir():
    """results/bench, from the repository root or from notebooks/."""
    if bench_dir is not None:
        return Path(bench_dir)
    for base in (Path.cwd(), *Path.cwd().parents):
        if (base / "results" / "bench").is_dir():
            return base / "results" / "bench"
    return Path("results") / "bench"


# Paths of this machine, as the page shows them.
MACHINE_PATHS = {
    f"{find_root()}/": "",
    f"{Path.home()}/": "~/",
    f"{tempfile.gettempdir()}/": "$TMPDIR/",
}


def shown(text):
    """A path or a command as the page shows it: the repository's paths
    relative to its root, the home folder as ~, the system's scratch folder
    (where benchmarks write what they do not keep) as $TMPDIR/."""
    text = str(text)
    for path, short in MACHINE_PATHS.items():
        text = re.sub(r"(?<![\w.~/-])" + re.escape(path), short, text)
    return text


def show_command(command):
    """Print ``command:`` and a shell command, ``\\``-continued on lines of
    at most 79 characters (None: the benchmark did not run from the
    command line)."""
    if not command:
        print("command:", command)
        return
    lines = ["command:"]
    for word in map(shlex.quote, shlex.split(shown(command))):
        if len(lines[-1]) + 1 + len(word) > 76:
            lines[-1] += " \\"
            lines.append("   ")
        lines[-1] += " " + word
    print("\n".join(lines))


where = find_bench_dir()
timings = sorted(
    p
    for p in where.glob("*.csv")
    if p.stem != "precision_parity"
    and not p.stem.endswith(("-loader", "-runs", "-runs-each"))
)
loaders = sorted(where.glob("*-loader.csv"))
frames = [pd.read_csv(p) for p in timings]
bench = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
files = ", ".join(p.name for p in timings) or "none"
print(textwrap.fill(f"benchmark files in {shown(where)}: {files}", 79))

# %% [markdown]
# ## The machines and the commands
#
# Each CSV comes with a JSON file holding the command that wrote it.

# %% tags=["full-width"]
if bench.empty:
    print(
        "No benchmark results yet: run `refinenet bench` "
        "(and `refinenet bench --parity ...`)."
    )
else:
    machines = bench.groupby("device", as_index=False).first()[
        ["device", "device_name", "threads", "torch"]
    ]
    commands = []
    for p in timings:
        meta = json.loads(p.with_suffix(".json").read_text())
        commands.append(
            {
                "file": p.name,
                "command": shown(meta.get("command") or ""),
                "wall s": meta.get("wall_s"),
                "date": meta.get("date"),
            }
        )
    display(machines.style.hide(axis="index"))
    display(
        pd.DataFrame(commands)
        .style.format({"wall s": "{:.0f}"})
        .hide(axis="index")
    )

# %% [markdown]
# ## Speed-ups over plain fp32
#
# One row per model configuration and mode; each column a fast path. Values
# are the baseline's median time divided by the path's (above 1 is faster).

# %% tags=["full-width"]
if not bench.empty:
    bench["label"] = bench["config"] + " (" + bench["device"] + ")"
    speed = bench.pivot_table(
        index=["label", "mode"], columns="path", values="speedup", sort=False
    )
    study.save_table(speed.reset_index(), "speedups")
    # On the page: no baseline column (1.00x by definition), and path names
    # that may wrap at their "+".
    view = speed.drop(columns="baseline", errors="ignore").rename(
        columns=lambda path: path.replace("+", " + ")
    )
    display(
        view.style.format("{:.2f}x", na_rep="—")  # —: not measured that run
        .set_caption(
            "Speed-up over fp32 NCHW eager, the baseline (median time ratio)"
        )
        .set_table_styles(
            [{"selector": "td, th", "props": "padding: 0.1em 0.8em"}]
        )
    )

# %% mystnb={"figure": {"caption": "Speed-up of each fast path over fp32 NCHW eager (above 1 is faster) for each model configuration, in inference (left) and training (right); the black line marks the baseline.", "name": "fig-08-speedups"}, "image": {"alt": "Two horizontal bar charts side by side, inference and training, with a group of bars per model configuration, one coloured bar per fast path, and a vertical black line at 1."}}
if not bench.empty:
    g = sns.catplot(
        data=bench, x="speedup", y="label", hue="path", col="mode",
        kind="bar", height=3.0, aspect=1.6, orient="h", legend_out=True,
    )
    for ax in g.axes.flat:
        ax.axvline(1.0, color="black", lw=0.8)
        ax.set_xlabel("speed-up over fp32 NCHW eager")
        ax.set_ylabel("")
    study.save_figure(g.figure, "speedups")
    plt.show()

# %% [markdown]
# ## Absolute numbers, fraction of peak, memory, agreement
#
# `fraction` is the achieved FLOP/s (the model's multiply-accumulates x 2 per
# image, x 3 for a training step) over the measured ceiling in the same
# precision. `memory` is what one call adds at its peak on top of the weights
# already in memory (activations, gradients, workspaces).

# %% tags=["full-width"]
if not bench.empty:
    cols = {
        "label": "config", "mode": "mode", "path": "path", "height": "H",
        "width": "W", "batch": "batch", "median_s": "median s",
        "q1_s": "q1 s", "q3_s": "q3 s", "images_per_s": "images/s",
        "achieved_tflops": "TFLOP/s", "peak_tflops": "peak TFLOP/s",
        "fraction_of_peak": "fraction", "peak_memory_mb": "memory MiB",
        "argmax_agreement": "argmax agreement",
    }
    detail = study.save_table(
        bench[list(cols)].rename(columns=cols), "bench_detail"
    )
    # On the page: the input as one column (batch x H x W), the spread as
    # q1-q3, path names that may wrap at their "+", and two tables (one
    # would be wider than the page): the times, then the rest.
    view = detail.assign(
        input=detail["batch"].astype(str)
        + " × "
        + detail["H"].astype(str)
        + "×"
        + detail["W"].astype(str),
        spread=detail["q1 s"].map("{:.3f}".format)
        + "–"
        + detail["q3 s"].map("{:.3f}".format),
        path=detail["path"].str.replace("+", " + ", regex=False),
    )
    if bench["device"].nunique() == 1:  # the device is in the table above
        view["config"] = bench["config"]
    view = view.rename(
        columns={"spread": "q1–q3 s", "argmax agreement": "agreement"}
    )
    formats = {
        "median s": "{:.3f}", "images/s": "{:.2f}", "TFLOP/s": "{:.3f}",
        "fraction": "{:.0%}", "memory MiB": "{:.0f}", "agreement": "{:.4f}",
    }
    key = ["config", "mode", "path"]
    for columns, what in (
        (["input", "median s", "q1–q3 s", "images/s"], "Time per call"),
        (
            ["TFLOP/s", "fraction", "memory MiB", "agreement"],
            "Achieved FLOP/s, fraction of the peak, memory, agreement",
        ),
    ):
        display(
            view[key + columns]
            .style.format(
                {c: f for c, f in formats.items() if c in columns}, na_rep=""
            )
            .set_caption(what)
            .hide(axis="index")
        )
    peaks = (
        bench.assign(
            precision=bench["amp"].fillna("none").replace({"none": "fp32"})
        )
        .groupby(["label", "precision"], sort=False)["peak_tflops"]
        .first()
        .unstack()
    )
    display(
        peaks.style.format("{:.3f}").set_caption(
            "The peaks: TFLOP/s of a large GEMM, measured in the same run"
        )
    )

# %% [markdown]
# ## Does the data pipeline keep up?
#
# `refinenet bench --loader CONFIG` times the trainer's own batch source for a
# training config (the packed split and its augmentation: random scaling,
# cropping and flipping) with nothing else running, then the training step of
# the same config on those batches. The pipeline should be at least 3x faster
# than the step it feeds. On a CPU the loader runs inside the training
# process (the cores are busy training), so its time adds to every step;
# `loader share` is that fraction of a step. On CUDA the augmentation runs on
# the GPU itself.

# %% tags=["full-width"]
if loaders:
    feed = pd.concat([pd.read_csv(p) for p in loaders], ignore_index=True)
    feed["crop"] = (
        feed["height"].astype(str) + " × " + feed["width"].astype(str)
    )
    cols = {
        "config": "config", "pipeline": "pipeline", "crop": "crop",
        "batch": "batch", "amp": "amp",
        "loader_images_per_s": "loader images/s",
        "step_images_per_s": "step images/s",
        "loader_over_step": "loader / step", "loader_share": "loader share",
    }
    feed = study.save_table(feed[list(cols)].rename(columns=cols), "loader")
    display(
        feed.style.format(
            {
                "loader images/s": "{:.1f}", "step images/s": "{:.1f}",
                "loader / step": "{:.1f}x", "loader share": "{:.1%}",
            },
            na_rep="(overlapped)",
        ).hide(axis="index")
    )
    for p in loaders:
        meta = json.loads(p.with_suffix(".json").read_text())
        show_command(meta.get("command"))
else:
    print(
        "No loader benchmark yet: "
        "`refinenet bench --loader configs/camvid-cpu.yaml`."
    )

# %% [markdown]
# ## Does the fast path keep the accuracy?
#
# A precision or memory-format switch may only become a default if the
# study's models trained with it are as good as in fp32.
# `refinenet bench --parity CONFIG` trains the same configuration with
# several seeds in fp32 and in bf16 + channels_last and compares val mIoU.

# %% tags=["full-width"]
parity_csv = where / "precision_parity.csv"
if parity_csv.is_file():
    parity = pd.read_csv(parity_csv)
    meta = json.loads(parity_csv.with_suffix(".json").read_text())
    summary = (
        parity.groupby("precision", sort=False)["val_miou"]
        .agg(["mean", "std", "count"])
        .mul({"mean": 100, "std": 100, "count": 1})
        .rename(columns={"mean": "val mIoU %", "std": "std", "count": "n"})
    )
    study.save_table(summary.reset_index(), "precision_parity")
    # No speeds here: these runs trained one after the other under whatever
    # load the machine had; the step and whole-run benchmarks above time the
    # paths side by side.
    display(summary.style.format({"val mIoU %": "{:.2f}", "std": "{:.2f}"}))
    verdict = meta["verdict"]
    study.glue("parity_difference", f"{100 * verdict['difference']:+.2f}")
    study.glue(
        "parity_within",
        "within" if verdict["within_seed_spread"] else "outside",
    )
    show_command(meta.get("command"))
else:
    print(
        "No parity run yet: "
        "`refinenet bench --parity configs/camvid-cpu.yaml ...`"
    )
    study.glue("parity_difference", "n/a")
    study.glue("parity_within", "not measured")

# %% [markdown]
# The fast path's mean val mIoU differs from fp32's by
# {glue:text}`parity_difference` points, which is {glue:text}`parity_within`
# the seed spread.
#
# ## Whole runs: what the study's training gets
#
# A training step is not a run. `refinenet bench --runs` trains the study's
# standard model (the profile's recipe) on each **run path**, each run in a
# fresh process, and times it from process start to ledger entry: start-up,
# data, every step, the validations, the test scoring on native labels with
# its kept predictions. A path that trains two runs at once (one thread
# each, as `refinenet study run --jobs 2`) counts both runs' images over the
# wall time from the first start to the last finish. The first path is what
# the study did before this benchmark: one run of two threads, with the
# boundary IoU computed by one erosion per class.

# %%
from refinenet.bench.report import (
    runs_figure,
    runs_parity,
    runs_table,
    time_split,
)
from refinenet.bench.runs import RUN_PATHS

runs_csv = where / "cpu-runs.csv"
whole = (
    pd.read_csv(runs_csv)
    if runs_csv.is_file()
    else pd.DataFrame(columns=["path"])
)
# Each run path's row by its name (refinenet.bench.runs.RUN_PATHS), whatever
# --paths measured.
runs = {
    key: whole[whole["path"] == path.name] for key, path in RUN_PATHS.items()
}
runs = {key: rows.iloc[0] for key, rows in runs.items() if len(rows)}


# %%
def speedup(key, ref="boundary", column="images_per_s"):
    """How many times faster path ``key`` was than ``ref`` (None: one was
    not measured), from images/s, or from seconds (``*_s_mean``) the other
    way round."""
    if key not in runs or ref not in runs:
        return None
    a, b = runs[key][column], runs[ref][column]
    return float(a / b if column == "images_per_s" else b / a)


def value(key, column):
    """Path ``key``'s ``column`` (None: not measured)."""
    return float(runs[key][column]) if key in runs else None


# %% tags=["full-width"]
if runs_csv.is_file():
    each = pd.read_csv(where / "cpu-runs-each.csv")
    runs_meta = json.loads(runs_csv.with_suffix(".json").read_text())
    table = study.save_table(runs_table(whole), "whole_runs")
    display(
        table.style.format(precision=1)
        .format({"speed-up": "{:.2f}x"})
        .hide(axis="index")
    )
    show_command(runs_meta.get("command"))
    print("machine:", runs_meta.get("device_name"), "|",
          runs_meta.get("date"))
else:
    print(
        "No whole-run benchmark yet: `refinenet bench --runs --steps 500`."
    )

# %% mystnb={"figure": {"caption": "Where the wall time of one whole training run goes, per run path: start-up, training steps, validations and set-up, and test scoring (means over the path's runs).", "name": "fig-08-whole-runs"}, "image": {"alt": "A horizontal stacked bar chart with one bar per run path, each bar cut into four segments: start-up in grey, training steps in blue, validation and set-up in orange, and test scoring in green."}}
if runs_csv.is_file():
    study.save_figure(runs_figure(time_split(each)), "whole_runs")
    plt.show()


# %%
def told(x, spec, unit=""):
    """``x`` for the prose, or "not measured"."""
    return "not measured" if x is None else format(x, spec) + unit


def pace(r):
    """A speed ratio in words: "0.99x the speed (1.2% slower)"."""
    if r is None:
        return "not measured"
    change = (
        "no change"
        if abs(r - 1) < 0.0005
        else f"{abs(r - 1):.1%} {'faster' if r > 1 else 'slower'}"
    )
    return f"{r:.2f}x the speed ({change})"


# %%
study.glue(
    "runs_steps",
    told(int(whole["steps"].max()) if len(whole) else None, "d"),
)
study.glue("runs_speedup", told(speedup("jobs", "before"), ".2f", "x"))
study.glue("score_before", told(value("before", "score_s_mean"), ".0f"))
study.glue("score_after", told(value("boundary", "score_s_mean"), ".0f"))
# Each against the same run without it (path "boundary"):
for key in ("fused", "compile"):
    study.glue(f"{key}_pace", pace(speedup(key)))
    study.glue(f"{key}_steps_pace",
               pace(speedup(key, column="train_s_mean")))
study.glue(
    "compile_first_step", told(value("compile", "first_step_s_mean"), ".0f")
)
study.glue(
    "plain_first_step", told(value("boundary", "first_step_s_mean"), ".1f")
)

# %% [markdown]
# ### Where the fraction of the peak stands when two runs share the machine
#
# The step table above times one process of two threads. Two runs of one
# thread each finish more images per second together. Their training
# images per second (the steps alone, data included), times the
# floating-point operations of one training image (measured above for the
# same model and crop), over the bf16 peak of the step benchmark, give the
# fraction of the machine's peak that the study's training reaches.

# %% tags=["full-width"]
step = bench if bench.empty else bench[
    (bench["device"] == "cpu")
    & (bench["mode"] == "train")
    & (bench["path"] == "bf16+channels_last")
    & bench["config"].str.endswith("-standard")
]
if len(whole) and len(step):
    step = step.iloc[0]
    flop_per_image = (
        step["achieved_tflops"] * 1e12 * step["median_s"] / step["batch"]
    )
    # The steps alone:
    train_ips = (
        whole["jobs"] * whole["images"] / whole["runs"]
        / whole["train_s_mean"]
    )
    fractions = pd.DataFrame({
        "run path": whole["path"],
        "training images/s": train_ips,
        "fraction of the bf16 peak": train_ips
        * flop_per_image
        / (step["peak_tflops"] * 1e12),
    })
    study.save_table(fractions, "whole_runs_peak")
    display(
        fractions.style.format(
            {
                "training images/s": "{:.1f}",
                "fraction of the bf16 peak": "{:.0%}",
            }
        ).hide(axis="index")
    )
elif len(whole):
    print(
        "No CPU training step of the standard model in bf16+channels_last "
        "yet (`refinenet bench --preset study`)."
    )

# %%
if "before" in runs and "jobs" in runs:
    verdict = runs_parity(each, runs["before"]["path"], runs["jobs"]["path"])
    (n0, m0, s0), (n1, m1, s1) = verdict["reference"], verdict["candidate"]
    study.glue(
        "runs_parity",
        f"{m1:.1f} ± {s1:.1f}% over {n1} seeds against "
        f"{m0:.1f} ± {s0:.1f}% over {n0}",
    )
    study.glue(
        "runs_parity_within", "within" if verdict["within"] else "outside"
    )
else:
    study.glue("runs_parity", "not measured")
    study.glue("runs_parity_within", "not measured against")

# %% [markdown]
# Parity: the val mIoU of the runs trained two at a time is
# {glue:text}`runs_parity` for the runs trained as before (path `before`),
# {glue:text}`runs_parity_within` the seed spread. The runs are
# deterministic for their own settings (the same seed and thread count give
# the same scores; a test checks it), but one thread and two threads sum in
# different orders, so the same seed does not give the same numbers on both
# paths.
#
# ## What became the default
#
# **Two runs at once.** On a CPU of two cores or more, `refinenet study run`
# trains two runs at once, each in its own process with half the threads
# (`--jobs auto`; `--jobs 1` for one at a time). Together with the cheaper
# boundary IoU below, the study's whole runs of {glue:text}`runs_steps`
# steps went {glue:text}`runs_speedup` faster than before, and the runs
# trained that way score within the seed spread of the runs trained one at
# a time (above). A small model's step leaves threads idle between
# operators, in the data preparation and in the optimiser step; a second run
# fills them. Each run stays deterministic for its own settings.
#
# **Boundary IoU from one band per label map.** A pixel lies in its class's
# contour band exactly when some pixel within the band's width has another
# label (or lies outside the image), so the bands of all classes come from two
# max-pools of the label map instead of one erosion per class
# (`refinenet.engine.metrics.label_band`; a test checks it against the
# per-class definition: the scores do not change). Test scoring
# of one run took {glue:text}`score_before` s before and
# {glue:text}`score_after` s after.
#
# **Not adopted.** Against the same whole run without it (path `boundary`),
# the fused SGD step ran at {glue:text}`fused_pace`, its training steps at
# {glue:text}`fused_steps_pace`; torch.compile ran at
# {glue:text}`compile_pace`, its training steps at
# {glue:text}`compile_steps_pace`, and its first step, which holds the
# compilation, took {glue:text}`compile_first_step` s (without it
# {glue:text}`plain_first_step` s). One run per path: these ratios carry no
# seed spread.
# The data pipeline is a small share of a step (the loader table) and, with
# two runs training, no core is left idle for a loader worker.
#
# **Precision.** On a CPU that computes bf16 natively (AVX512-BF16 or AMX),
# `precision.amp` and `precision.channels_last` left at `auto` mean **bf16
# autocast with channels_last**: the two gain most together (the step table:
# bf16 on NCHW tensors gains less, and channels_last alone can be slower
# than the baseline). On CPUs without native bf16 the defaults stay fp32,
# because there oneDNN emulates bf16. On CUDA the defaults are bf16,
# channels_last, cudnn.benchmark and the fused optimiser; they have not been
# measured here yet, since no GPU was available to this project's runs.

# %% [markdown]
# ## Summary
#
# - Every fast path was timed round-robin against fp32 NCHW eager in the
#   same run, on the same weights and inputs; the tables give the speed-ups,
#   the achieved FLOP/s against the machine's own peak, and the memory.
# - The fast path keeps the accuracy: its mean val mIoU differs from fp32's
#   by {glue:text}`parity_difference` points, {glue:text}`parity_within` the
#   seed spread.
# - Two runs at once and the boundary IoU from one band per label map made
#   the study's whole runs {glue:text}`runs_speedup` faster; test scoring
#   went from {glue:text}`score_before` s to {glue:text}`score_after` s.
# - Not adopted: the fused SGD step ({glue:text}`fused_pace`) and
#   torch.compile ({glue:text}`compile_pace`).
# - bf16 autocast with channels_last is the default on CPUs that compute
#   bf16 natively; elsewhere the defaults stay fp32.
#
# ## Exercises
#
# The commands run from the repository root and write into `out/`, which
# git ignores. Convert the notebook once:
#
# ```bash
# jupytext --to ipynb notebooks/08_performance.py \
#     -o out/08_performance.ipynb
# ```
#
# **1. Benchmark a tiny model** (`bench_dir`). Measure the `tiny` preset
# and point the page at its CSV:
#
# ```bash
# refinenet bench --preset tiny --out out/bench/cpu-tiny.csv
# papermill out/08_performance.ipynb out/08_tiny.ipynb \
#     -p bench_dir out/bench -p output_dir out/08_tiny
# ```
#
# Expect the step tables and the speed-up figure for the tiny model alone,
# and the loader, parity and whole-run sections to say that nothing was
# measured. A model this small leaves the fast paths less work to speed up:
# expect smaller gains than for the study's model, if any.
#
# **2. Add torch.compile** (the bench's `--compile`):
#
# ```bash
# refinenet bench --preset tiny --compile \
#     --out out/bench/cpu-tiny-compile.csv
# papermill out/08_performance.ipynb out/08_compile.ipynb \
#     -p bench_dir out/bench -p output_dir out/08_compile
# ```
#
# Expect the command to take much longer (each compiled path compiles
# first) and the page to gain compiled paths in its tables; the compilation
# is in the warm-up, not in the medians.
