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
# # The data
#
# The study trains and tests on **CamVid**, street scenes filmed from a car
# in Cambridge, labelled with 11 classes. The paper's main benchmark is
# PASCAL VOC 2012; we use CamVid because a full ablation study with several
# seeds per variant fits into our time budget on it, and because its thin
# classes (poles, signs, pedestrians, cyclists) are exactly what a network
# that works at 1/32 of the input resolution gets wrong.
#
# When the profile asks for it, or CamVid is not on the machine, every
# notebook runs on a **procedural scene generator** instead: street-like
# pictures drawn from a few random numbers, with thin poles and wires, cars
# over a wide range of sizes, and two classes that only context can tell
# apart. It needs no files, so the tests and the smoke profile always run.
#
# This notebook shows {glue:md}`data_shown`, counts how the pixels are
# shared among the classes, measures what predicting at a coarse resolution
# costs even a perfect classifier, and shows the training augmentation.

# %% tags=["parameters"]
# The study runner sets these from the profile (refinenet/study/profiles/).
profile = "cpu"  # whose runs and settings the page shows (name or .yaml)
device = "auto"  # "auto": CUDA when present, else CPU
dataset = "auto"  # "auto": CamVid when found, else the generator
output_dir = None  # tables and figures (None: results/interactive/...)
image_size = (180, 240)  # (H, W) the images are loaded at; None: native size
stats_limit = None  # images per split for the class statistics (None: all)
oracle_limit = 50  # validation images for the oracle (None: all)
generator_scenes = 64  # generator scenes per split
num_examples = 4  # example images shown
num_augmented = 5  # augmented versions of one training image

# %%
import matplotlib.pyplot as plt
import pandas as pd
import torch
import torch.nn.functional as F
from IPython.display import Markdown

from refinenet.data import augmentation, survey
from refinenet.data.oracle import (
    change_phrase, oracle_figure, oracle_scores, thin_summary,
)
from refinenet.data.visual import denormalize, example_figure
from refinenet.engine.data import SeededSamples, build_train_set
from refinenet.study.notebook import start
from refinenet.study.profiles import load_profile

study = start("02_data", profile=profile, device=device,
              dataset=dataset, output_dir=output_dir)

# %%
from refinenet.study.published import THIN_CLASSES as THIN

SPLITS = ("train", "val", "test")

names = [study.dataset] + ([] if study.synthetic else ["synthetic"])
sets = {
    name: survey.load_splits(
        name, SPLITS, size=image_size, scenes=generator_scenes
    )
    for name in names
}
main = sets[study.dataset]
info = main["train"]

# %% [markdown]
# (sec-02-data-sets)=
# ## The data sets

# %%
table = survey.datasets_table(sets)
loaded = tuple(main["train"][0][1].shape)  # (H, W) of this page's images
# a sentence: pasted as text
study.glue("full_size", Markdown(survey.full_size_sentence(loaded)))
study.glue("data_shown", Markdown(
    "the generator's scenes (this page runs on them)" if study.synthetic
    else "CamVid's images beside the generator's scenes"
))  # a clause: pasted as text
study.save_table(table, "datasets").set_index("data set")

# %% [markdown]
# Examples from the validation split of the data this page runs on, with
# their labels laid over the image. Pixels without a label (CamVid's
# "void", the generator's "clutter") keep the plain image, untinted: they
# are left out of the loss and of every score.

# %% mystnb={"figure": {"caption": "Validation images of the data this page runs on (top row) and their labels laid over them (bottom row), in the class colours of the legend. Pixels without a label are left untinted; no loss or score counts them.", "name": "fig-02-examples"}, "image": {"alt": "Two rows of street scenes: the pictures on top and, below each, the same picture tinted with the colours of its labels; a legend of the classes and their colours on the right."}}
shown = survey.spread_indices(len(main["val"]), num_examples)
fig = example_figure(
    main["val"], shown, title=f"{study.dataset}: images and labels"
)
study.save_figure(fig, f"examples_{study.dataset}")
plt.show()

# %% [markdown]
# The generator's classes are chosen to exercise what RefineNet claims to do
# well: large smooth regions (sky, ground, buildings), structures one or two
# pixels wide (poles, wires), cars whose size follows the perspective from a
# few pixels to half the image, and a balloon and a ball drawn identically,
# one floating above the horizon and one resting on the ground, so that only
# the surroundings tell them apart.

# %% mystnb={"figure": {"caption": "The procedural scene generator beside CamVid: generated scenes of its validation split (top row) and their labels laid over them (bottom row).", "name": "fig-02-generator-examples"}, "image": {"alt": "Two rows of simple generated street scenes with sky, ground, buildings, poles, wires, cars, a balloon and a ball: the pictures on top and, below each, the same picture tinted with the colours of its labels; a legend of the classes on the right."}}
if not study.synthetic:
    generator = sets["synthetic"]["val"]
    shown = survey.spread_indices(len(generator), num_examples)
    fig = example_figure(generator, shown, title="the generator")
    study.save_figure(fig, "examples_synthetic")
    plt.show()

# %% [markdown]
# ## How the pixels are shared
#
# We count, per split, the share of labelled pixels that each class takes,
# and the share of images in which it appears at all.
# {glue:md}`stats_counted`

# %%
pixels, images, counted = {}, {}, {}
for split in SPLITS:
    ds = main[split]
    idx = survey.spread_indices(len(ds), stats_limit)
    counted[split] = len(idx)
    count, seen = survey.class_counts(ds, idx)  # per class, ignore left out
    pixels[f"{split} pixels %"] = 100 * count / count.sum()
    images[f"{split} images %"] = 100 * seen
totals = {split: len(main[split]) for split in SPLITS}
sentence = survey.counted_sentence(counted, totals)
study.glue("stats_counted", Markdown(sentence))  # pasted as text
stats = pd.DataFrame({"class": info.class_names, **pixels, **images})
study.save_table(stats, "class_statistics")
stats.set_index("class").round(1)

# %% mystnb={"figure": {"caption": "The share of the labelled pixels that each class takes in the training, validation and test splits, on a log scale.", "name": "fig-02-class-shares"}, "image": {"alt": "A bar chart with a group of three bars per class, for the train, val and test splits, on a logarithmic axis of percent; the large classes' bars stand far above those of the thin classes."}}
fig = survey.class_share_figure(stats, SPLITS)
study.save_figure(fig, "class_shares")
plt.show()

thin = [c for c in THIN[study.dataset] if c in info.class_names]
train_share = stats.set_index("class")["train pixels %"]
study.glue("thin_classes", ", ".join(thin))
study.glue("thin_share", float(train_share[thin].sum()))
study.glue("largest_class", train_share.idxmax())
study.glue("largest_share", float(train_share.max()))
study.glue("rarest_class", train_share.idxmin())
study.glue("rarest_share", float(train_share.min()))

# %% [markdown]
# The classes are far from balanced. In the training split,
# {glue:text}`largest_class` alone covers {glue:text}`largest_share:.1f`% of
# the labelled pixels, while the thin classes ({glue:text}`thin_classes`)
# together cover {glue:text}`thin_share:.1f`%, and the rarest class,
# {glue:text}`rarest_class`, covers {glue:text}`rarest_share:.2f`%. Pixel
# accuracy would hide them; the study therefore reports the mean IoU over
# classes, where each class counts the same, and looks at the thin classes
# separately.
#
# ## What predicting at low resolution costs
#
# RefineNet predicts at 1/4 of the input resolution and upsamples the class
# scores bilinearly. A plain ResNet classifier predicts at 1/32. How much is
# lost by the resolution alone, before any question of how good the
# classifier is?
#
# An *oracle* answers that: a classifier that knows the true labels but can
# only output one vector of class scores per cell of a grid with stride *s*.
# The best it can do is to give every class the fraction of the cell's
# pixels that belong to it; these scores are upsampled bilinearly, like
# RefineNet's logits, and the highest wins at each pixel.

# %%
def oracle(mask, stride, num_classes, ignore_index):
    """The best prediction with one score vector per stride x stride cell."""
    valid = mask != ignore_index
    onehot = F.one_hot(torch.where(valid, mask, 0), num_classes)
    onehot = (onehot.permute(2, 0, 1).float() * valid)[None]
    cells = F.avg_pool2d(onehot, stride, ceil_mode=True)
    scores = F.interpolate(
        cells, size=mask.shape, mode="bilinear", align_corners=False
    )
    return scores[0].argmax(0)


# %% [markdown]
# We score the result against the true labels of the validation split with
# the study's metrics: mean IoU, and boundary IoU (Cheng et al., 2021), which
# counts only the pixels near the class boundaries, where resolution matters.

# %%
strides = (2, 4, 8, 16, 32)
val = main["val"]
idx = survey.spread_indices(len(val), oracle_limit)
table = oracle_scores(
    oracle, val, idx, strides=strides, device=study.device
)
ot = study.save_table(table, "oracle_by_stride").set_index("stride")
ot[["mIoU %", "boundary IoU %"] + [f"IoU {c} %" for c in thin]].round(1)

# %% mystnb={"figure": {"caption": "What resolution alone costs: the IoU of an oracle that knows the true labels but predicts one score vector per cell, for strides 2 to 32, per class (left; thick lines: the thin classes) and averaged over the classes, with the boundary IoU (right). Validation split.", "name": "fig-02-oracle"}, "image": {"alt": "Two line charts against the resolution of the prediction, from 1/2 on the left to 1/32 on the right. Left: one line per class against the resolution, thick lines for the thin classes. Right: the mean IoU and the boundary IoU over all classes, both falling."}}
fig = oracle_figure(ot, val.class_names, val.palette, thin=thin)
study.save_figure(fig, "oracle_by_stride")
plt.show()

# %%
thin_iou = ot[[f"IoU {c} %" for c in thin]].mean(axis=1)
study.glue("oracle_images", len(idx))
for s in (4, 32):
    study.glue(f"oracle_miou_{s}", float(ot.loc[s, "mIoU %"]))
    study.glue(f"oracle_biou_{s}", float(ot.loc[s, "boundary IoU %"]))
    study.glue(f"oracle_thin_{s}", float(thin_iou[s]))
# "falls from a% to b%", or "stays at a%" when the two are equal
thin_change = change_phrase(thin_iou[4], thin_iou[32])
study.glue("oracle_thin_change", Markdown(thin_change))
biou = ot["boundary IoU %"]
biou_change = change_phrase(biou[4], biou[32])
study.glue("oracle_biou_change", Markdown(biou_change))
# the thin classes against the others, from 1/4 to 1/32
summary = thin_summary(ot, thin, val.class_names, fine=4, coarse=32)
study.glue("oracle_thin_summary", Markdown(summary))

# %% [markdown]
# On {glue:text}`oracle_images` validation images, the oracle reaches
# {glue:text}`oracle_miou_4:.1f`% mean IoU at 1/4 resolution but only
# {glue:text}`oracle_miou_32:.1f`% at 1/32; on the thin classes the mean IoU
# {glue:md}`oracle_thin_change`, and the boundary IoU over all classes
# {glue:md}`oracle_biou_change`.
# This is the ceiling that resolution alone sets for a classifier that is
# otherwise perfect: the room that RefineNet's multi-path refinement is meant
# to win back.
#
# ## Training augmentation
#
# Training sees each image through a random joint transform of image and
# labels, built as in the released code with the settings of this profile's
# recipe: a random rescaling by a factor between {glue:text}`train_scale`
# ({glue:md}`train_scale_released`), a random crop of the recipe's crop
# size, {glue:text}`train_crop` (where the scaled image is smaller, the
# padding is labelled *ignore*), and {glue:md}`train_flip`.
# {glue:md}`train_jitter`
# Below, one training image as loaded, then as the training loop sees it in
# successive epochs (built by the training engine,
# `refinenet.engine.data.build_train_set`, with the data settings of this
# profile's recipe). Each augmentation is drawn from a seed derived from the
# run's seed, the epoch and the image index, so an interrupted run that
# resumes sees exactly the same images.

# %%
options = {"n": generator_scenes} if study.synthetic else {}
# the study's training config, at this page's image size
cfg = load_profile(profile).study.base(study.dataset, "cpu").replace(
    {"data.size": image_size, "data.options": options}
)
words = augmentation.describe_augmentation(cfg.data)  # the settings, phrased
study.glue("train_crop", words["crop"])
study.glue("train_scale", words["scale"])
# clauses and sentences: pasted as text
for key in ("scale_released", "flip", "jitter"):
    study.glue(f"train_{key}", Markdown(words[key]))

# %% mystnb={"figure": {"caption": "One training image and its labels as loaded (left) and as the training loop sees them in successive epochs: the recipe's random rescaling, cropping and flipping, drawn anew each epoch from the run's seed. Black in a label map: no label (the data set's unlabelled pixels and the padding outside a rescaled image), which no loss counts.", "name": "fig-02-augmentation"}, "image": {"alt": "Small pictures in rows, each row of images above a row of their colour-coded labels, the rows named image and labels at their left: the first picture as loaded, each further one the same image rescaled, cropped or mirrored differently, one per epoch."}}
train_set = build_train_set(cfg)
seeded = SeededSamples(train_set, seed=0)
shown = survey.spread_indices(len(train_set), num_examples)
index = shown[min(1, num_examples - 1)]
panels = [(*train_set.load(index), "as loaded")]
for epoch in range(num_augmented):
    image, mask = seeded[(epoch, index)]
    image = denormalize(image, train_set.mean, train_set.std)
    panels.append((image, mask, f"epoch {epoch}"))
fig = augmentation.augmentation_figure(panels, train_set)
study.save_figure(fig, "augmentation")
plt.show()
# draw epoch 0 of the same image twice: same pixels, same labels?
same = all(map(torch.equal, seeded[(0, index)], seeded[(0, index)]))
study.glue("augment_repeatable", "yes" if same else "no")

# %% [markdown]
# Drawing epoch 0 of that image a second time gives the same pixels and
# labels (checked: {glue:text}`augment_repeatable`).
#
# ```{admonition} Departure from the paper: crops
# :class: note
# The released code trains on VOC with random 400 × 400 crops. This
# profile's recipe trains on random {glue:text}`train_crop` crops of the
# rescaled images and evaluates on whole images. A profile that loads
# CamVid below its native 360 × 480 shrinks everything, thin classes
# included; this page's size is the last column of
# {ref}`the table of data sets <sec-02-data-sets>`, and the oracle ceiling
# above is measured at that same size.
# ```

# %% [markdown]
# ## Summary
#
# - The study runs on CamVid's street scenes, or, without them, on a
#   procedural generator whose thin poles and wires, cars of every size and
#   context-only classes exercise what RefineNet claims to do well.
# - The classes are far from balanced: {glue:text}`largest_class` alone
#   covers {glue:text}`largest_share:.1f`% of the labelled training pixels,
#   the thin classes together {glue:text}`thin_share:.1f`%. The study
#   therefore scores the mean IoU over classes and looks at the thin classes
#   on their own.
# - Resolution alone sets a ceiling: an oracle that knows the labels reaches
#   {glue:text}`oracle_miou_4:.1f`% mean IoU at a quarter of the resolution
#   but {glue:text}`oracle_miou_32:.1f`% at a thirty-second;
#   {glue:md}`oracle_thin_summary`.
# - Training sees every image through a random rescaling and crop (and flip,
#   where the recipe asks for one) drawn from the run's seed, the epoch and
#   the image, so a resumed run sees exactly the same images.
#
# ## Exercises
#
# The commands run from the repository root and write into `out/`, which
# git ignores. Convert the notebook once; each exercise then runs it again
# with one parameter changed.
#
# ```bash
# jupytext --to ipynb notebooks/02_data.py -o out/02_data.ipynb
# ```
#
# **1. Another oracle sample** (`oracle_limit`). This page scored the
# oracle on {glue:text}`oracle_images` validation images; try another
# number, e.g. 10:
#
# ```bash
# papermill out/02_data.ipynb out/02_oracle.ipynb \
#     -p oracle_limit 10 -p output_dir out/02_oracle
# ```
#
# Expect the oracle's curves to move a little, since it is another sample
# of images (a smaller sample runs faster; a larger one comes closer to the
# whole split), and keep the shape they have on this page.
#
# **2. Full-size images** (`image_size`). CamVid's native 360 × 480:
#
# ```bash
# papermill out/02_data.ipynb out/02_full.ipynb \
#     -y "image_size: [360, 480]" -p output_dir out/02_full
# ```
#
# Expect a slower page. {glue:md}`full_size`
#
# **3. More epochs of augmentation** (`num_augmented`):
#
# ```bash
# papermill out/02_data.ipynb out/02_augment.ipynb \
#     -p num_augmented 8 -p output_dir out/02_augment
# ```
#
# Expect more panels in the augmentation figure, each a different draw,
# and the first ones identical to this page's: the draws depend only on the
# seed, the epoch and the image.
