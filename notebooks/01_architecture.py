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
# # The architecture, piece by piece
#
# A classification ResNet shrinks its input by a factor of 32 before it says
# anything about it. That is fine for naming the object in a photo and bad for
# painting a label on every pixel: a pole two pixels wide simply has no cell
# of its own in a map 32 times smaller than the image. RefineNet keeps the
# ResNet, taps it at all four resolutions, and climbs back from the coarsest
# map to a quarter of the input size, refining at every step with the finer
# map of the level below.
#
# This notebook builds that network from its parts, in the order the paper
# introduces them, and looks at what each part does to a feature map:
#
# 1. what resolution the backbone leaves us;
# 2. the residual conv unit (RCU);
# 3. multi-resolution fusion;
# 4. chained residual pooling (CRP);
# 5. one RefineNet block;
# 6. the cascade of four blocks, and the two shorter cascades of the paper's
#    Fig. 7;
# 7. the whole network in a table, with parameters and multiply-accumulates
#    per component;
# 8. how the gradient reaches the first layers.
#
# Nothing here is trained: every weight is random or set by hand, so the
# pictures show what the wiring does, not what a trained network has learned.
# Notebook 3 trains it.

# %% tags=["parameters"]
# The study runner sets these from the profile (refinenet/study/profiles/).
profile = "cpu"  # whose runs and settings the page shows (name or .yaml)
device = "auto"  # "auto": CUDA when present, else CPU
dataset = "auto"  # "auto": CamVid when found, else the generator
output_dir = None  # tables and figures (None: results/interactive/...)
backbone = "resnet101"  # the paper's main backbone
image_size = (180, 240)  # (H, W) of the example images; None: native size
summary_size = 256  # input side of the torchinfo summary (a forward pass)
macs_size = 512  # input side of the MAC counts (free: meta device)
grad_size = 128  # image height in the gradient experiment
grad_batch = 2  # images in that batch

# %%
import matplotlib.pyplot as plt
import pandas as pd
import torch
import torch.nn.functional as F

import refinenet
from refinenet.models import (
    ChainedResidualPooling, MultiResolutionFusion, RefineNetBlock,
    ResidualConvUnit, ResNetBackbone, cascade_groups, draw_cascade,
    draw_refinenet_block, show_source, views,
)
from refinenet.study.notebook import start
from refinenet.study.report import styled

study = start("01_architecture", profile=profile, device=device,
              dataset=dataset, output_dir=output_dir)
dev = torch.device(study.device)

# %% [markdown]
# The example images come from the data this page runs on: CamVid, or the
# synthetic street scenes when the profile asks for the generator or CamVid
# is not on the machine (the note above says which, and why). Notebook 2
# looks at the data itself.

# %%
examples = study.data("val", image_size, n=4)
image, mask = examples[0]
size = tuple(mask.shape)
source = ("synthetic street scene" if study.synthetic
          else "CamVid validation image")
study.glue("example_image", f"{source} of {size[0]} × {size[1]} pixels")

# %% [markdown]
# ## What resolution the backbone leaves
#
# The backbone is a torchvision ResNet cut into a stem (a strided convolution
# and a max-pooling) and four stages (`layer1` to `layer4`), whose outputs
# are the taps. The table gives the size of every tap for our example image
# and for a full CamVid frame of 360 × 480, and its stride: how many times
# smaller than the input the tap is.

# %%
with torch.device("meta"):
    meta_backbone = ResNetBackbone(backbone)
inputs = [size, (360, 480)]  # the example image, a full CamVid frame
# On the meta device the backbone computes shapes, not values.
taps = [
    meta_backbone(torch.empty(1, 3, h, w, device="meta"))
    for h, w in inputs
]
taps_table = study.save_table(
    views.taps_table(inputs, taps), "backbone_taps"
)
views.table_view(taps_table, index=["input", "tap"])

# %%
# The stem alone, on the example image: how much it divides the size by.
stem = meta_backbone.maxpool(meta_backbone.conv1(
    torch.empty(1, 3, *size, device="meta")
))
strides = taps_table.stride.tolist()[:4]  # layer1 to layer4, the example
assert stem.shape[-2:] == taps[0][0].shape[-2:]  # layer1 keeps the size
assert all(b == 2 * a for a, b in zip(strides, strides[1:]))  # then halves
study.glue("stem_stride", round(size[0] / stem.shape[-2]))
study.glue("layer1_stride", strides[0])
study.glue("deeper_strides", ", ".join(str(s) for s in strides[1:]))
deep = taps_table.iloc[-1]  # layer4 of the CamVid frame
study.glue("camvid_deep_size", f"{deep.height} × {deep.width}")
study.glue("deep_channels", int(deep.channels))

# %% [markdown]
# The stem already divides the resolution by {glue:text}`stem_stride`, and
# `layer1` keeps it (stride {glue:text}`layer1_stride`); `layer2`, `layer3`
# and `layer4` each halve it again, to strides {glue:text}`deeper_strides`.
# A full CamVid frame ends as a {glue:text}`camvid_deep_size` grid of
# {glue:text}`deep_channels`-dimensional vectors. What that costs is easiest
# to see on the labels themselves: below, the example's label map is sampled
# at each stride (nearest neighbour, the best any classifier at that
# resolution could do) and blown back up. {glue:md}`thin_kept`

# %% mystnb={"figure": {"caption": "What each stride leaves of the labels: the example image, its label map, and the label map sampled (nearest neighbour) on the grid of each backbone tap, at 1/4, 1/8, 1/16 and 1/32 of the input, then enlarged back. The coarser the grid, the blockier the map; the text above counts how many pixels of the thin classes each grid keeps.", "name": "fig-01-strides"}, "image": {"alt": "Six pictures in a row: a street scene, its colour-coded label map, and four copies of the label map that grow blockier from left to right, thin objects such as poles breaking up first while large regions keep their shape."}}
labels = torch.as_tensor(mask)[None, None].float()
# The grids the backbone's taps have for this image (each side is the
# image's side divided by the stride, rounded up).
grids = [tuple(t.shape[-2:]) for t in taps[0]]
sampled = [F.interpolate(labels, size=g, mode="nearest") for g in grids]
# The figure enlarges each sampled map back to the image's size.
fig = views.labels_at_strides_figure(
    image, mask, sampled,
    palette=examples.palette, ignore_index=examples.ignore_index,
)
study.save_figure(fig, "labels_at_each_stride")
study.glue("fig_labels_at_strides", fig)  # shown in the introduction too
plt.show()

# %%
from IPython.display import Markdown

from refinenet.study.published import THIN_CLASSES

# The share of pixels whose label each grid keeps: thin classes, the rest.
names = [c for c in THIN_CLASSES[study.dataset] if c in examples.class_names]
thin = [examples.class_names.index(c) for c in names]
rest = [c for c in range(examples.num_classes) if c not in thin]
kept = [views.kept_shares(mask, sampled, group) for group in (thin, rest)]
sentence = views.kept_sentence(*kept, strides=strides, names=names)
study.glue("thin_kept", Markdown(sentence))  # a sentence: pasted as text

# %% [markdown]
# ## The residual conv unit
#
# An RCU is a ResNet basic block without batch normalisation: two 3 × 3
# convolutions of the same width, the first with a bias and the second
# without (as in the released code), each after a ReLU, plus the identity:
#
# $$
# \mathrm{RCU}(x) = x + \mathrm{conv}_2\Big(
#   \mathrm{relu}\big(\mathrm{conv}_1(\mathrm{relu}(x))\big)\Big)
# $$
#
# Two things matter for what follows. First, the skip connection takes $x$
# *before* the first ReLU, so the unit passes negative values through
# untouched: it is the identity whenever $\mathrm{conv}_2$ is zero. Second,
# there is no batch normalisation anywhere in the RefineNet blocks (the paper
# removes it); only the backbone has it. The implementation, read from the
# package when this page ran:

# %% tags=["full-width"]
show_source(ResidualConvUnit)

# %% [markdown]
# Below, an RCU with PyTorch's default initialisation is applied to a real
# feature map: the 256 channels of the first backbone stage for the example
# image. We build the whole model here and use its backbone; its weights are
# random, so its channels respond to patterns that mean nothing yet.
# The figure shows one channel of the input, of the residual branch `F(x)`
# and of the output `x + F(x)`, all on the same colour scale.

# %% mystnb={"figure": {"caption": "One channel of the `layer1` feature map of the example image through a freshly initialised residual conv unit (RCU): the input x, the residual branch F(x) and the output x + F(x), on one colour scale (red positive, blue negative).", "name": "fig-01-rcu"}, "image": {"alt": "Three heat maps side by side in red and blue: the input feature map, a fainter map of the residual, and the output, which looks much like the input."}}
x_image = views.normalise(image, mean=examples.mean, std=examples.std)
x_image = x_image[None].to(dev)
torch.manual_seed(0)  # the model serves to the end of the notebook
model = refinenet.refinenet(backbone, examples.num_classes).to(dev).eval()
with torch.no_grad():
    feature = model.backbones[0](x_image)[0]  # the layer1 tap
    rcu = ResidualConvUnit(feature.shape[1]).to(dev)
    residual = rcu.conv2(F.relu(rcu.conv1(F.relu(feature))))
    out = rcu(feature)
    rcu.conv2.weight.zero_()  # then the unit should be the identity
    is_identity = torch.equal(rcu(feature), feature)
study.glue("rcu_ratio", float(residual.norm() / feature.norm()))
study.glue("rcu_identity", "yes" if is_identity else "no")
study.save_figure(views.rcu_figure(feature, residual, out), "rcu")
plt.show()

# %% [markdown]
# At initialisation the residual branch is small next to its input (its norm
# is {glue:text}`rcu_ratio:.2f` times the input's here), so a fresh RCU is
# close to the identity and the signal from the backbone reaches the blocks
# above nearly unchanged; training then learns a correction. With the second
# convolution zeroed the unit is exactly the identity (checked:
# {glue:text}`rcu_identity`). In the network, each backbone tap first goes
# through a 3 × 3 convolution to the path width (512 for the deepest path,
# 256 for the others) and two RCUs; the paper calls them adaptive
# convolutions: they adapt the pre-trained features to the task. (Nothing is
# pre-trained here: see notebook 3.)
#
# ## Multi-resolution fusion
#
# A block with several inputs first brings them to a common shape: a 3 × 3
# convolution maps each input to the smallest width among them, every map is
# upsampled to the largest resolution among them, and the maps are summed.
# The convolutions also rescale the paths so that no path dominates the sum.
# For inputs $x_1, \dots, x_k$ of widths $C_i$ and sizes $H_i \times W_i$:
#
# $$
# \begin{gathered}
# y = \sum_{i=1}^{k} \mathrm{up}_{H \times W}\big(\mathrm{conv}_i(x_i)\big),
# \\
# \mathrm{conv}_i : C_i \to \min_j C_j, \qquad
# H = \max_j H_j,\ W = \max_j W_j
# \end{gathered}
# $$
#
# where $\mathrm{up}$ is bilinear upsampling (the identity for the inputs
# already at $H \times W$). A block with a single input ($k = 1$) has no
# fusion: $y = x_1$. The implementation:

# %% tags=["full-width"]
show_source(MultiResolutionFusion)

# %% [markdown]
# To see the geometry, we build a fusion of two one-channel maps and set both
# convolutions to the identity (a single 1 in the centre of the kernel). The
# coarse map is the evidence for two large classes (buildings and cars)
# averaged over 32 × 32 cells; the fine map marks the label boundaries at
# 1/4. The sum carries the coarse map's *what* and the fine map's *where*.

# %% mystnb={"figure": {"caption": "Multi-resolution fusion with both convolutions set to the identity: the coarse input (buildings and cars averaged over 32 \u00d7 32 cells, the grid of the example's `layer4` tap), that input upsampled bilinearly, the fine input (the label boundaries on the grid of its `layer1` tap, 1/4) and the fused sum, which keeps the coarse map's regions and the fine map's sharp edges. Titles give each map's height \u00d7 width.", "name": "fig-01-fusion"}, "image": {"alt": "Four heat maps in a 2 \u00d7 2 grid: a blocky low-resolution map of bright and dark cells, a smooth blurred version of it, thin bright outlines on black, and their sum, blurred blobs with the sharp outlines drawn over them."}}
big_classes = [2, 5] if study.synthetic else [1, 8]  # building, car
coarse, fine = views.fusion_inputs(mask, classes=big_classes)
# The grids of the layer4 and layer1 taps of this image (the table above).
assert [coarse.shape[-2:], fine.shape[-2:]] == [grids[-1], grids[0]]
fusion = MultiResolutionFusion([1, 1])
with torch.no_grad():
    for conv in fusion.convs:  # the identity: a 1 in the kernel's centre
        conv.weight.zero_()
        conv.weight[0, 0, 1, 1] = 1.0
    fused = fusion([coarse, fine])
study.save_figure(views.fusion_figure(coarse, fine, fused), "fusion")
plt.show()
# Bicubic against bilinear upsampling of the coarse map (% of its range):
gap = views.upsampling_gap(coarse, size=fine.shape[-2:])
study.glue("bicubic_diff", gap)

# %% [markdown]
# ```{admonition} Departure from the released code: bilinear, not bicubic
# :class: note
# The authors' MatConvNet code resizes with MATLAB's `imresize`, which is
# bicubic. Like the PyTorch ports, we upsample bilinearly
# (`align_corners=False`). On the coarse map above the two differ by at most
# {glue:text}`bicubic_diff:.0f`% of the map's range, at the edges of the
# blobs, where bicubic overshoots and bilinear does not. The convolutions
# that follow can absorb such differences, so we do not expect it to matter
# for accuracy.
# ```
#
# ## Chained residual pooling
#
# Fusion gives a map that is sharp where the fine path was sharp. CRP then
# gathers context from a large region around every position, cheaply: a
# chain of $N$ pooling blocks, each a 5 × 5 max-pooling with stride 1 followed
# by a 3 × 3 convolution, each taking the previous block's output (not the
# input), and all block outputs summed with the input:
#
# $$
# h_0 = \mathrm{relu}(x), \qquad
# h_n = \mathrm{conv}_n\big(\mathrm{pool}_{5 \times 5}(h_{n-1})\big)
# \quad (n = 1, \dots, N), \qquad
# y = \sum_{n=0}^{N} h_n
# $$
#
# The paper's text uses $N = 2$; the released VOC model uses $N = 4$
# (`crp_blocks`). The later "improved" variant swaps pool and conv
# (`crp_order="conv-pool"`). The ReLU that makes $h_0$ is the only
# non-linearity on the main path of a block (notebook 4 tests the paper's
# claim that it makes training less sensitive to the learning rate). The
# implementation:

# %% tags=["full-width"]
show_source(ChainedResidualPooling)

# %% [markdown]
# How large is "a large region"? Feed a map that is zero except at one
# position, with every convolution set to a 3 × 3 average, and see where each
# block's output can reach. Each block widens the reach by 4 cells (the
# pooling) plus 2 (the convolution).

# %% mystnb={"figure": {"caption": "How far chained residual pooling reaches: the area that each of four chained pooling blocks (5 \u00d7 5 max-pooling, then a 3 \u00d7 3 averaging convolution) reaches from a single non-zero input position of a 41 \u00d7 41 map (grey outline), and that of their sum. Each block widens the square.", "name": "fig-01-crp-reach"}, "image": {"alt": "Five panels, each a black square in the middle of a white map with a grey outline, the squares growing from left to right; the last panel, the sum of all blocks, is as large as the fourth."}}
point = torch.zeros(1, 1, 41, 41)
point[0, 0, 20, 20] = 1.0  # a single non-zero position
crp = ChainedResidualPooling(1, blocks=4)
with torch.no_grad(), views.recording(crp.convs) as calls:
    for conv in crp.convs:  # a 3 × 3 average
        conv.weight.fill_(1 / 9)
    total = crp(point)
outputs = [c.output for c in calls]  # each conv's output: h_1, ..., h_4
# Reach: the side of the square where a block's output is not 0.
reach = [int((h[0, 0] > 0).any(0).sum()) for h in outputs]
study.save_figure(views.crp_reach_figure(outputs, total), "crp_reach")
plt.show()
for n in (2, 4):
    study.glue(f"crp_reach_{n}", reach[n - 1])
    study.glue(f"crp_reach_{n}_px", reach[n - 1] * 32)

# %% [markdown]
# After two blocks one position sees a {glue:text}`crp_reach_2` ×
# {glue:text}`crp_reach_2` window of the map, after four a
# {glue:text}`crp_reach_4` × {glue:text}`crp_reach_4` window. On the 1/32 map
# of the deepest block that is {glue:text}`crp_reach_2_px` and
# {glue:text}`crp_reach_4_px` pixels of the input: with four blocks, more
# than a whole CamVid frame. Because the blocks are chained rather than
# parallel, the large window needs no large pooling kernel, and because their
# outputs are summed with learned convolutions in between, the network can
# weigh near and far context separately.
#
# ## One RefineNet block
#
# A block is fusion, then CRP, then output convolutions. The diagram shows
# the second block of the standard cascade, RefineNet-3, as the paper's
# Fig. 3 draws it: two RCUs on each input, fusion, CRP, one output RCU.

# %% mystnb={"figure": {"caption": "RefineNet-3 of this page's model, drawn by `refinenet.models.draw_refinenet_block` from the modules its config builds: widths, RCUs and pooling blocks are those of the code. The dropout and the 3 \u00d7 3 convolution on the `layer3` path are the released code's input adaptation, which the paper's figure does not draw. The two RCUs on the RefineNet-4 path run in the code as the last two of RefineNet-4's three output RCUs; `layout=\"code\"` draws that cut (see the note on output convolutions below).", "name": "fig-01-block-diagram"}, "image": {"alt": "A block diagram: two input paths, the output of RefineNet-4 and the layer3 tap, each through its convolutions and residual conv units; multi-resolution fusion, which convolves each path, upsamples it and sums them; chained residual pooling, a ReLU followed by pooling stages whose outputs are added up; and the output residual conv unit. The boxes carry their channel widths, and a small drawing shows what a residual conv unit computes."}}
# Drawn from the modules that the model's config builds: no count is typed.
ax = draw_refinenet_block(config=model.config)
study.save_figure(ax.figure, "block_diagram")
plt.show()

# %% [markdown]
# The code below builds this block on its own: it takes the 512-channel
# output of the first block (at 1/32) and the adapted 256-channel tap of
# `layer3` (at 1/16) and returns 256 channels at 1/16.

# %%
block = RefineNetBlock([512, 256], crp_blocks=2)
x_prev = torch.randn(1, 512, 8, 10)
x_tap = torch.randn(1, 256, 16, 20)
with torch.no_grad():
    y = block([x_prev, x_tap])
parts = ["fusion", "crp", "output"]
block_table = study.save_table(
    views.parameter_table(block, parts, total="whole block"),
    "one_block_parameters",
)
study.glue("block_out_shape", " × ".join(str(s) for s in y.shape[1:]))
views.table_view(block_table, index=["part"])

# %% [markdown]
# The output is {glue:text}`block_out_shape` (channels × height × width): the
# width of the narrower input at the resolution of the finer one.
#
# ```{admonition} Output convolutions: three RCUs
# :class: note
# The released code puts three RCUs after the pooling. The paper's Fig. 3
# draws one output RCU per block, and the two adaptive RCUs on every input of
# the next block (plus two extra RCUs before the classifier). Counted between
# one block's pooling and the next block's fusion, both give three RCUs of
# the same width: the same function and the same number of parameters. We
# follow the code.
# ```
#
# ## The cascade
#
# The standard model is a cascade of four blocks: RefineNet-4 takes the
# adapted `layer4` tap alone (its fusion passes the single input through
# unchanged), and each following block fuses the previous block's output
# with the next finer tap. A classifier (dropout, then a 3 × 3 convolution)
# turns the final 1/4-resolution map into class scores, which are upsampled
# bilinearly to the input size.

# %% mystnb={"figure": {"caption": "The 4-cascade RefineNet of this page (the paper's Fig. 2c), drawn by `refinenet.models.draw_cascade` from the model's config: the backbone's widths and strides are measured on it. Each RefineNet block sits on the row of the one tap it fuses, and every block after RefineNet-4 also takes the output of the block below it. Called with `cascade=2` or `cascade=1`, `draw_cascade` draws the shorter cascades of the paper's Fig. 7, whose blocks span the rows of all the taps they fuse.", "name": "fig-01-cascade-diagram"}, "image": {"alt": "A diagram in four columns: the backbone's stages from the stem to layer4 with their widths and strides; the input adaptation of each tap; the RefineNet blocks from RefineNet-4 at the deepest tap to RefineNet-1 at the finest, each fed by the block before it and by its taps; and the head, the classifier and the upsampling to the input size."}}
ax = draw_cascade(config=model.config)
study.save_figure(ax.figure, "cascade_diagram")
plt.show()

# %% [markdown]
# We trace the shapes through the model for the example image.

# %%
# Record what each block takes and returns during one forward pass.
with torch.no_grad(), views.recording(model.blocks) as calls:
    logits = model(x_image)
shapes = views.cascade_shapes_table(calls, image_size=size)
styled(study.save_table(shapes, "cascade_shapes"), wrap=False)

# %% [markdown]
# Each block's output, averaged over channels: with random weights the maps
# mean nothing yet, but they show the resolution coming back step by step,
# from the coarse grid of `layer4` to a quarter of the input size.

# %% mystnb={"figure": {"caption": "The output of each RefineNet block for the example image, averaged over its channels (random weights): the resolution grows block by block, from the coarse grid of `layer4` to a quarter of the input size.", "name": "fig-01-cascade-outputs"}, "image": {"alt": "Four heat maps in purple, green and yellow, from a coarse grid of a few large cells on the left to a finely detailed map on the right."}}
outputs = [call.output for call in calls]  # deepest block first
study.save_figure(views.block_outputs_figure(outputs), "cascade_outputs")
plt.show()

# %% [markdown]
# ```{admonition} Our reading of the paper's Fig. 7: shorter cascades
# :class: note
# The paper also trains a single block and a 2-cascade (its Fig. 7) but does not
# spell out which taps each block takes. We split the four taps, deepest
# first, into consecutive groups, one per block; each block fuses its group
# plus the previous block's output. A single block therefore fuses all four
# taps at once.
# ```

# %%
rows = []
for c in (1, 2, 4):
    with torch.device("meta"):
        m = refinenet.refinenet(backbone, examples.num_classes, cascade=c)
    macs = refinenet.count_macs(m, (1, 3, macs_size, macs_size))
    rows.append({
        "cascade": c,
        "taps fused, block by block": views.taps_fused(cascade_groups(c)),
        "parameters (M)": sum(p.numel() for p in m.parameters()) / 1e6,
        f"GMACs at {macs_size}²": macs / 1e9,
    })
variants = study.save_table(pd.DataFrame(rows), "cascade_variants")
views.table_view(variants, index=["cascade"], wrap=True)

# %% [markdown]
# ## The whole network
#
# The torchinfo summary of the standard model for one
# {glue:text}`summary_size` × {glue:text}`summary_size` image, listing its
# modules two levels down (torchinfo's `depth=2`, a depth of the listing, not
# of the cascade):

# %% tags=["full-width"]
study.glue("summary_size", summary_size)
stats = refinenet.summary(
    model,
    (1, 3, summary_size, summary_size),
    depth=2,
    col_names=("output_size", "num_params"),
    col_width=16,
)
print(refinenet.summary_text(stats))  # units as letters: "(G)"

# %% [markdown]
# Where do the parameters and the computation go? Below, parameters and
# multiply-accumulates (MACs, counted by `refinenet.count_macs` for a
# {glue:text}`macs_size` × {glue:text}`macs_size` input) per component: the
# backbone by stage, the input adaptation of each path (3 × 3 convolution and
# two RCUs), and each block by part.

# %%
study.glue("macs_size", macs_size)
macs = refinenet.count_macs(
    model, (1, 3, macs_size, macs_size), by_module=True
)
# One row per component: the backbone's stem and stages, each path's
# adaptation, each block's fusion, CRP and output, and the classifier.
cost = views.cost_per_component(model, macs)
total_params = sum(p.numel() for p in model.parameters())
# Every parameter and every MAC belongs to exactly one component:
assert abs(cost["parameters (M)"].sum() * 1e6 - total_params) < 1
assert abs(cost["GMACs"].sum() * 1e9 - macs[""]) < 1e6
study.save_table(cost, "cost_per_component")
views.table_view(cost, index=["group", "component"])

# %% mystnb={"figure": {"caption": "Parameters (left) and multiply-accumulates (right) of each component of the network: the backbone by stage (grey), the input adaptation of each path (blue), each RefineNet block by part (green) and the classifier (red). The title says when a group's bars are too small to see; the table above gives every count.", "name": "fig-01-cost"}, "image": {"alt": "Two horizontal bar charts sharing one list of components: the backbone's stem and stages at the top, then the adaptation of each path, the fusion, pooling and output parts of each block, and the classifier at the bottom. The left chart gives millions of parameters, the right one billions of multiply-accumulates."}}
fig = views.cost_figure(cost, macs_size=macs_size, backbone=backbone)
study.save_figure(fig, "cost_per_component")
plt.show()
is_backbone = cost.group == "backbone"
backbone_params = cost.loc[is_backbone, "parameters (M)"].sum()
top = cost.sort_values("GMACs", ascending=False).iloc[0]
study.glue("total_params_m", total_params / 1e6)
study.glue("backbone_params_m", backbone_params)
study.glue("decoder_params_m", total_params / 1e6 - backbone_params)
study.glue("total_gmacs", macs[""] / 1e9)
study.glue("decoder_share_macs", 100 - cost.loc[is_backbone, "% MACs"].sum())
study.glue("top_component", f"{top.component} of {top.group}")
study.glue("top_component_share", top["% MACs"])

# %% [markdown]
# The model has {glue:text}`total_params_m:.2f` M parameters:
# {glue:text}`backbone_params_m:.2f` M in the backbone and
# {glue:text}`decoder_params_m:.2f` M in the decoder (adaptation, blocks,
# classifier). The decoder's parameters sit mostly in the deepest path, where
# the widths are largest and the maps smallest. Computation goes the other
# way: of the {glue:text}`total_gmacs:.0f` GMACs,
# {glue:text}`decoder_share_macs:.0f`% are spent in the decoder, most of them
# at the finest resolution; the single most expensive component is the
# {glue:text}`top_component` ({glue:text}`top_component_share:.0f`% of all
# MACs).
#
# The same counts for the backbones and pooling depths of the paper (21
# classes), checked against the parameter counts of the authors' released
# VOC models:

# %%
released = {  # millions of parameters (DESIGN.md, section 1)
    ("resnet50", 2): 90.80, ("resnet50", 4): 99.06,
    ("resnet101", 2): 109.79, ("resnet101", 4): 118.05,
    ("resnet152", 2): 125.44, ("resnet152", 4): 133.70,
}
ours = {}
for name, crp_blocks in released:
    with torch.device("meta"):
        m = refinenet.refinenet(name, 21, crp_blocks=crp_blocks)
    ours[name, crp_blocks] = sum(p.numel() for p in m.parameters()) / 1e6
check = study.save_table(
    views.parameter_check(ours, released), "parameter_check"
)
study.glue("param_agreement", views.parameter_agreement(check))
views.table_view(check, index=["backbone", "CRP blocks"])

# %% [markdown]
# Our counts {glue:text}`param_agreement`.
#
# ## How the gradient reaches the first layers
#
# The paper's second argument is about training: every component is a
# residual unit with an identity skip, and every backbone stage is connected
# to the output through such connections (the *long-range residual paths*),
# so the loss gradient reaches the first layers of the ResNet directly
# instead of only through all the layers above them.
#
# We can measure this. Below, the forward pass of the standard model is
# written out by hand (it is the same as `RefineNet.forward` for one input
# scale), with one switch: with `long_range=False`, the taps of `layer1` to
# `layer3` are detached before their adaptation. The forward values are
# identical; only the way the gradient flows back changes: the first stages
# then receive gradient only through the deeper stages of the backbone, as
# in a network that predicts from its last layer.

# %%
def forward(model, x, long_range=True):
    """RefineNet's forward (one scale); long_range=False cuts layer1-3."""
    taps = model.backbones[0](x)[::-1]  # deepest first: layer4 ... layer1
    adapted = [
        adapt(t if i == 0 or long_range else t.detach())
        for i, (adapt, t) in enumerate(zip(model.adapters[0], taps))
    ]
    out = None
    for block, group in zip(model.blocks, model.groups):
        inputs = [adapted[t] for t in group]
        out = block(inputs if out is None else [out] + inputs)
    logits = model.classifier(out)
    return F.interpolate(
        logits, size=x.shape[-2:], mode="bilinear", align_corners=False
    )


# %%
x, y = views.resized_batch(examples, grad_batch, height=grad_size)
x, y = x.to(dev), y.to(dev)
net = model.train()  # the model built above, in training mode
# Only the backbone's gradients are measured: the gradient still flows
# through the decoder, whose weights need none of their own (half the work).
for part in (net.adapters, net.blocks, net.classifier):
    part.requires_grad_(False)
norms = {}
for long_range in (True, False):
    net.zero_grad()
    torch.manual_seed(1)  # the same dropout masks in both passes
    logits = forward(net, x, long_range)
    loss = F.cross_entropy(logits, y, ignore_index=examples.ignore_index)
    loss.backward()
    norms[long_range] = views.unit_gradient_norms(net.backbones[0])

# %% [markdown]
# Both passes compute the same loss from the same values; only the routes of
# the gradient differ. For every residual unit of the backbone, the norm of
# its gradient in each pass, and their ratio:

# %% mystnb={"figure": {"caption": "The gradient that reaches each residual unit of the backbone, for one batch at initialisation, with the long-range paths (blue) and with the taps of layer1 to layer3 detached (orange), on a log scale; below, their ratio. The gradient above a ratio of 1 is what the long-range paths add.", "name": "fig-01-gradient-norms"}, "image": {"alt": "Top: two lines, the gradient norm of every residual unit of the backbone on a log scale, from layer1 on the left to layer4 on the right, one with the long-range paths and one without. Bottom: the ratio of the two lines, with a grey line at 1; in layer4 the two lines meet and the ratio is 1."}}
grads = views.gradient_table(norms[True], norms[False])
study.save_table(grads, "gradient_norms")
stage = grads.unit.str.split(".").str[0]
ratio1 = float(grads.loc[stage == "layer1", "ratio"].mean())
ratio4 = float(grads.loc[stage == "layer4", "ratio"].mean())
study.glue("grad_ratio_layer1", ratio1)
study.glue("grad_ratio_layer4", ratio4)
study.glue("grad_verdict", views.gradient_verdict(ratio1))
study.save_figure(views.gradient_figure(grads), "gradient_norms")
plt.show()

# %% [markdown]
# With the long-range paths, the residual units of `layer1` receive on
# average {glue:text}`grad_ratio_layer1:.2f` times the gradient they get
# without them; in `layer4`, which feeds the first block in both cases, the
# ratio is {glue:text}`grad_ratio_layer4:.2f`. In words:
# {glue:text}`grad_verdict`. This is one batch at initialisation, so it shows
# where the gradient can flow, not how training will go; notebook 3 trains
# the model, and the ablations ask which of these pieces matter for the
# result.

# %% [markdown]
# ## Summary
#
# - A ResNet leaves a coarse map: its deepest tap sees a full CamVid frame as
#   a {glue:text}`camvid_deep_size` grid, where a structure a few pixels wide
#   has no cell of its own; the text before {numref}`fig-01-strides` counts
#   how much of the thin classes the labels sampled at each stride keep.
# - The parts are simple: a residual conv unit is the identity plus a
#   correction that starts small; multi-resolution fusion brings the paths to
#   one width and size and sums them; chained residual pooling gathers
#   context from a window that widens with every pooling block.
# - A RefineNet block chains fusion, pooling and output units; the cascade
#   of blocks climbs from the deepest tap back to a quarter of the input
#   size, one finer tap at a time.
# - The model has {glue:text}`total_params_m:.2f` M parameters, the
#   decoder's mostly in its deepest path, while its computation sits mostly
#   at the finest resolution. Built with the backbones and pooling depths of
#   the authors' released models, our parameter counts
#   {glue:text}`param_agreement`.
# - How the gradient reaches the first layers: {glue:text}`grad_verdict`.
#
# ## Exercises
#
# The commands run from the repository root and write into `out/`, which
# git ignores. Convert the notebook once; each exercise then runs it again
# with one parameter changed.
#
# ```bash
# jupytext --to ipynb notebooks/01_architecture.py \
#     -o out/01_architecture.ipynb
# ```
#
# **1. Another backbone** (`backbone`). ResNet-50 instead of ResNet-101:
#
# ```bash
# papermill out/01_architecture.ipynb out/01_resnet50.ipynb \
#     -p backbone resnet50 -p output_dir out/01_resnet50
# ```
#
# Expect fewer parameters and MACs in the backbone, almost all of the
# reduction in `layer3`, which has far fewer residual units (the gradient figure gets
# shorter there). The decoder's counts do not change: both ResNets have the
# same widths at every tap. The check against the released models does not
# change either: it builds its own models.
#
# **2. A larger input for the MAC counts** (`macs_size`):
#
# ```bash
# papermill out/01_architecture.ipynb out/01_macs.ipynb \
#     -p macs_size 1024 -p output_dir out/01_macs
# ```
#
# Expect every MAC count to grow with the number of pixels (about four
# times for twice the side), the shares of the components to stay close to
# this page's, and the parameter counts not to change at all.
#
# **3. A larger batch for the gradient experiment** (`grad_batch`):
#
# ```bash
# papermill out/01_architecture.ipynb out/01_grad.ipynb \
#     -p grad_batch 4 -p output_dir out/01_grad
# ```
#
# Expect the same picture from more images: the ratio in `layer4` stays
# exactly 1 (both passes reach it the same way), and the ratio in `layer1`
# changes little, since it measures the wiring at initialisation rather
# than the particular images.
