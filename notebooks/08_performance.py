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
profile = "cpu"  # the profile whose runs and settings this page shows (name or .yaml path)
device = "auto"  # "auto": CUDA when present, else CPU
dataset = "auto"  # "auto": CamVid when found, else the generator
output_dir = None  # tables and figures (None: results/interactive/...)
bench_dir = None  # where `refinenet bench` wrote its CSVs (None: results/bench)

# %%
import json
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from refinenet.study.notebook import start

study = start("08_performance", profile=profile, device=device, dataset=dataset, output_dir=output_dir)


def find_bench_dir():
    """results/bench, from the repository root or from notebooks/."""
    if bench_dir is not None:
        return Path(bench_dir)
    for base in (Path.cwd(), *Path.cwd().parents):
        if (base / "results" / "bench").is_dir():
            return base / "results" / "bench"
    return Path("results") / "bench"


where = find_bench_dir()
timings = sorted(p for p in where.glob("*.csv") if p.stem != "precision_parity" and not p.stem.endswith("-loader"))
loaders = sorted(where.glob("*-loader.csv"))
frames = [pd.read_csv(p) for p in timings]
bench = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
print(f"benchmark files: {[p.name for p in timings] or 'none'} in {where}")

# %% [markdown]
# ## The machines and the commands
#
# Each CSV comes with a JSON file holding the command that wrote it.

# %% tags=["full-width"]
if bench.empty:
    print("No benchmark results yet: run `refinenet bench` (and `refinenet bench --parity ...`).")
else:
    machines = bench.groupby("device", as_index=False).first()[["device", "device_name", "threads", "torch"]]
    commands = []
    for p in timings:
        meta = json.loads(p.with_suffix(".json").read_text())
        commands.append({"file": p.name, "command": meta.get("command") or "", "wall s": meta.get("wall_s"), "date": meta.get("date")})
    display(machines.style.hide(axis="index"))  # noqa: F821  (IPython)
    display(pd.DataFrame(commands).style.format({"wall s": "{:.0f}"}).hide(axis="index"))  # noqa: F821

# %% [markdown]
# ## Speed-ups over plain fp32
#
# One row per model configuration and mode; each column a fast path. Values
# are the baseline's median time divided by the path's (above 1 is faster).

# %% tags=["full-width"]
if not bench.empty:
    bench["label"] = bench["config"] + " (" + bench["device"] + ")"
    speed = bench.pivot_table(index=["label", "mode"], columns="path", values="speedup", sort=False)
    study.save_table(speed.reset_index(), "speedups")
    display(  # noqa: F821
        speed.style.format("{:.2f}x", na_rep="—")  # —: not measured in that run
        .set_caption("Speed-up over fp32 NCHW eager (median time ratio)")
        .set_table_styles([{"selector": "td, th", "props": "padding: 0.1em 0.8em"}])
    )

    g = sns.catplot(
        data=bench, x="speedup", y="label", hue="path", col="mode", kind="bar",
        height=3.0, aspect=1.6, orient="h", legend_out=True,
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
        "label": "config", "mode": "mode", "path": "path", "height": "H", "width": "W", "batch": "batch",
        "median_s": "median s", "q1_s": "q1 s", "q3_s": "q3 s", "images_per_s": "images/s",
        "achieved_tflops": "TFLOP/s", "peak_tflops": "peak TFLOP/s", "fraction_of_peak": "fraction",
        "peak_memory_mb": "memory MiB", "argmax_agreement": "argmax agreement",
    }
    detail = study.save_table(bench[list(cols)].rename(columns=cols), "bench_detail")
    # On the page: the input as one column (batch x H x W) and the spread as q1-q3.
    shown = detail.assign(
        input=detail["batch"].astype(str) + " × " + detail["H"].astype(str) + "×" + detail["W"].astype(str),
        spread=detail["q1 s"].map("{:.3f}".format) + "–" + detail["q3 s"].map("{:.3f}".format),
    )
    if bench["device"].nunique() == 1:  # the device is in the table above
        shown["config"] = bench["config"]
    shown = shown[["config", "mode", "path", "input", "median s", "spread", "images/s", "TFLOP/s",
                   "fraction", "memory MiB", "argmax agreement"]]
    display(  # noqa: F821
        shown.rename(columns={"spread": "q1–q3 s", "argmax agreement": "agreement"})
        .style.format(
            {"median s": "{:.3f}", "images/s": "{:.2f}", "TFLOP/s": "{:.3f}", "fraction": "{:.0%}",
             "memory MiB": "{:.0f}", "agreement": "{:.4f}"},
            na_rep="",
        )
        .hide(axis="index")
    )
    peaks = (
        bench.assign(precision=bench["amp"].fillna("none").replace({"none": "fp32"}))
        .groupby(["label", "precision"], sort=False)["peak_tflops"].first().unstack()
    )
    display(peaks.style.format("{:.3f}").set_caption("The peaks: TFLOP/s of a large GEMM, measured in the same run"))  # noqa: F821

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
    feed["crop"] = feed["height"].astype(str) + " × " + feed["width"].astype(str)
    cols = {
        "config": "config", "pipeline": "pipeline", "crop": "crop", "batch": "batch", "amp": "amp",
        "loader_images_per_s": "loader images/s", "step_images_per_s": "step images/s",
        "loader_over_step": "loader / step", "loader_share": "loader share",
    }
    feed = study.save_table(feed[list(cols)].rename(columns=cols), "loader")
    display(  # noqa: F821
        feed.style.format(
            {"loader images/s": "{:.1f}", "step images/s": "{:.1f}", "loader / step": "{:.1f}x", "loader share": "{:.1%}"},
            na_rep="(overlapped)",
        ).hide(axis="index")
    )
    for p in loaders:
        print("command:", json.loads(p.with_suffix(".json").read_text()).get("command"))
else:
    print("No loader benchmark yet: `refinenet bench --loader configs/camvid-cpu.yaml`.")

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
    summary["images/s"] = parity.groupby("precision", sort=False)["images_per_s"].mean()
    study.save_table(summary.reset_index(), "precision_parity")
    display(summary.style.format({"val mIoU %": "{:.2f}", "std": "{:.2f}", "images/s": "{:.2f}"}))  # noqa: F821
    verdict = meta["verdict"]
    study.glue("parity_difference", f"{100 * verdict['difference']:+.2f}")
    study.glue("parity_within", "within" if verdict["within_seed_spread"] else "outside")
    print("command:", meta.get("command"))
else:
    print("No parity run yet: `refinenet bench --parity configs/camvid-cpu.yaml ...`")
    study.glue("parity_difference", "n/a")
    study.glue("parity_within", "not measured")

# %% [markdown]
# The fast path's mean val mIoU differs from fp32's by
# {glue:text}`parity_difference` points, which is {glue:text}`parity_within`
# the seed spread.
#
# ## What became the default
#
# On a CPU that computes bf16 natively (AVX512-BF16 or AMX), `precision.amp`
# and `precision.channels_last` left at `auto` now mean **bf16 autocast with
# channels_last**: the two gain most together (see the table above: bf16 on
# NCHW tensors gains less, and channels_last alone can be slower than the
# baseline). On CPUs without native bf16 the defaults
# stay fp32, because there oneDNN emulates bf16. On CUDA the defaults are bf16,
# channels_last, cudnn.benchmark and the fused optimiser; they have not been
# measured here yet, since no GPU was available to this project's runs.
# torch.compile is never on by default. In the study's runs on this CPU
# (the `+compile` column above) it sped up inference but made the training
# step slower than bf16 + channels_last alone, and each model variant pays
# its own compilation, which is minutes on 2 cores.
