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
import matplotlib.pyplot as plt
import pandas as pd
from IPython.display import display

from refinenet.bench import report
from refinenet.bench.results import BenchResults, command_text, shown
from refinenet.study.notebook import start

results = BenchResults.find(bench_dir)  # results/bench, or bench_dir
study = start(
    "08_performance", profile=profile, device=device, dataset=dataset,
    output_dir=output_dir,  # the banner names the benchmark files:
    numbers_from=f"the benchmark files in {shown(results.folder)} (their "
    "machines, commands and dates are listed below)",
)
bench = results.timings()  # one row per config, mode and fast path
print(results.describe())

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
    display(report.machines_view(report.machines_table(bench)))
    display(report.commands_view(results.commands()))

# %% [markdown]
# ## Speed-ups over plain fp32
#
# One row per model configuration and mode; each column a fast path. Values
# are the baseline's median time divided by the path's (above 1 is faster).

# %% tags=["full-width"]
if not bench.empty:
    speed = report.speedup_table(bench)  # (config, mode) x path
    study.save_table(speed.reset_index(), "speedups")
    display(report.speedup_view(speed))

# %% mystnb={"figure": {"caption": "Speed-up of each fast path over fp32 NCHW eager (above 1 is faster) for each model configuration, in inference (top) and training (bottom); the black line marks the baseline.", "name": "fig-08-speedups"}, "image": {"alt": "Two horizontal bar charts, inference above training, with a group of bars per model configuration, one coloured bar per fast path, and a vertical black line at 1."}}
if not bench.empty:
    study.save_figure(report.speedups_figure(bench), "speedups")
    plt.show()

# %% [markdown]
# ## Absolute numbers, fraction of peak, memory, agreement
#
# `of peak` is the achieved FLOP/s (the model's multiply-accumulates × 2 per
# image, × 3 for a training step) over the measured ceiling in the same
# precision. `memory (MiB)` is meant as what one call adds at its peak on top
# of the weights already in memory (activations, gradients, workspaces): on
# CUDA the allocator counts exactly that; on a CPU only the growth of the
# process's resident memory can be seen, which misses the memory the
# allocator reuses from earlier calls, so there the column is a lower bound
# and does not rank the paths (the table's caption says how it was taken).
# `same argmax` is the argmax agreement with the baseline.

# %%
if not bench.empty:
    detail = study.save_table(report.detail_table(bench), "bench_detail")
    # Two tables (one would be wider than the page): the times, the rest.
    for view in report.detail_views(detail, bench):
        display(view)
    peaks = report.peaks_table(bench)  # config x precision: TFLOP/s
    display(report.peaks_view(peaks))

# %% [markdown]
# ## Does the data pipeline keep up?
#
# `refinenet bench --loader CONFIG` times the trainer's own batch source for a
# training config (the packed split and its augmentation: random scaling,
# cropping and flipping) with nothing else running, then the training step of
# the same config on those batches. The pipeline should be at least 3× faster
# than the step it feeds. On a CPU the loader runs inside the training
# process (the cores are busy training), so its time adds to every step;
# `loader share` is that fraction of a step. On CUDA the augmentation runs on
# the GPU itself.

# %% tags=["full-width"]
if results.loader_files:
    feed = report.loader_table(results.loaders())
    study.save_table(feed, "loader")
    names = [p.name for p in results.loader_files]
    display(report.loader_view(feed, files=names))
    for p in results.loader_files:
        print(command_text(results.meta(p.stem).get("command")))
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

# %%
meta = results.meta("precision_parity")  # None: not run
if meta is not None:
    summary = report.parity_summary(results.table("precision_parity"))
    study.save_table(summary.reset_index(), "precision_parity")
    display(report.parity_view(summary))
    print(command_text(meta.get("command")))
else:
    print("No parity run yet: "
          "`refinenet bench --parity configs/camvid-cpu.yaml ...`")
verdict = meta["verdict"] if meta is not None else None
study.glue("parity_difference",
           f"{100 * verdict['difference']:+.2f}" if verdict else "n/a")
study.glue("parity_within", "not measured" if not verdict
           else "within" if verdict["within_seed_spread"] else "outside")

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
from refinenet.bench.runs import RUN_PATHS

runs_meta = results.meta("cpu-runs")  # None: not run
whole = (
    results.table("cpu-runs")
    if runs_meta is not None
    else pd.DataFrame(columns=["path"])
)
# Each run path's row by its key in refinenet.bench.runs.RUN_PATHS
# ("before", "jobs", ...), whatever --paths measured.
runs = report.runs_by_key(whole)
# The row of the run without the fused step or torch.compile, as the
# whole-run table and figure name it:
study.glue("plain_path", report.path_text(RUN_PATHS["boundary"].name))


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
if runs_meta is not None:
    each = results.table("cpu-runs-each")  # one row per run
    table = study.save_table(report.runs_table(whole), "whole_runs")
    display(report.runs_view(table))
    print(command_text(runs_meta.get("command")))
    print("machine:", runs_meta.get("device_name"), "|",
          report.when(runs_meta.get("date")))
else:
    print(
        "No whole-run benchmark yet: `refinenet bench --runs --steps 500`."
    )

# %% mystnb={"figure": {"caption": "Where the wall time of one whole training run goes, per run path: start-up, training steps, validations and set-up, and test scoring (means over the path's runs).", "name": "fig-08-whole-runs"}, "image": {"alt": "A horizontal stacked bar chart with one bar per run path, each bar cut into four segments: start-up in grey, training steps in blue, validation and set-up in orange, and test scoring in green."}}
if runs_meta is not None:
    split = report.time_split(each)  # run path x part: mean seconds
    study.save_figure(report.runs_figure(split), "whole_runs")
    plt.show()

# %%
told, pace = report.told, report.pace  # numbers in words for the prose
steps = int(whole["steps"].max()) if len(whole) else None
study.glue("runs_steps", told(steps, "d"))
study.glue("runs_speedup", told(speedup("jobs", "before"), ".2f", "×"))
study.glue("score_before", told(value("before", "score_s_mean"), ".0f"))
study.glue("score_after", told(value("boundary", "score_s_mean"), ".0f"))
# Each against the same run without it (path "boundary"):
for key in ("fused", "compile"):
    study.glue(f"{key}_pace", pace(speedup(key)))
    study.glue(f"{key}_steps_pace",
               pace(speedup(key, column="train_s_mean")))
first = {k: value(k, "first_step_s_mean") for k in ("compile", "boundary")}
study.glue("compile_first_step", told(first["compile"], ".0f"))
study.glue("plain_first_step", told(first["boundary"], ".1f"))

# %% [markdown]
# ### Where the fraction of the peak stands when two runs share the machine
#
# The step table above times one process of two threads. Two runs of one
# thread each finish more images per second together. Their training
# images per second (the steps alone, data included), times the
# floating-point operations of one training image (measured above for the
# same model and crop), over the bf16 peak of the step benchmark, give the
# fraction of the machine's peak that the study's training reaches.

# %%
step = report.standard_train_step(bench)  # None: not measured
if len(whole) and step is not None:
    # Training images/s (the steps alone, all jobs together) times the
    # FLOP per training image of the step benchmark, over its bf16 peak:
    fractions = report.peak_fractions(whole, step)
    study.save_table(fractions, "whole_runs_peak")
    display(report.peak_fractions_view(fractions, step))
elif len(whole):
    print("No CPU training step of the standard model in bf16+channels_last"
          " yet (`refinenet bench --preset study`).")

# %%
if "before" in runs and "jobs" in runs:
    verdict = report.runs_parity(
        each, runs["before"]["path"], runs["jobs"]["path"]
    )
    (n0, m0, s0), (n1, m1, s1) = verdict["reference"], verdict["candidate"]
    study.glue("runs_parity", f"{m1:.1f} ± {s1:.1f}% over {n1} seeds "
               f"against {m0:.1f} ± {s0:.1f}% over {n0}")
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
# **Not adopted.** Against the same whole run without it (the run path
# "{glue:text}`plain_path`" of the whole-run table and figure), the fused
# SGD step ran at {glue:text}`fused_pace`, its training steps at
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
