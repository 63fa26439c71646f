"""refinenet.study.inside: a model's insides captured with hooks, saved, loaded and plotted.

Tiny random-weight models on 64 x 80 inputs; the checks recompute what the artefacts claim
(chained-pooling terms, fusion shares, lesion predictions) independently of the hooks, so a
capture that reads the wrong module fails here.
"""

from __future__ import annotations

import copy
import io
import math
import re

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from refinenet.models import ChainedResidualPooling, refinenet
from refinenet.study import inside
from refinenet.study.readable import MIN_TEXT_PX, check_readable

NUM_CLASSES = 5
TINY = (16, 8, 8, 8)
SIZE = (64, 80)


@pytest.fixture(scope="module", autouse=True)
def _threads(one_thread):
    yield


def _model(**switches):
    torch.manual_seed(0)
    switches.setdefault("widths", TINY)
    return refinenet("resnet18", switches.pop("num_classes", NUM_CLASSES), **switches).eval()


def _images(n=2, size=SIZE, seed=1):
    return torch.randn(n, 3, *size, generator=torch.Generator().manual_seed(seed))


def _ceil(a, b):
    return -(-a // b)


def _hooks_left(model) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


@pytest.fixture(scope="module")
def standard():
    model = _model()
    images = _images()
    return model, images, inside.capture(model, images, indices=[5, 9])


# -- shapes -----------------------------------------------------------------------------------

CASES = {
    "c4": ({}, [32, 16, 8, 4]),
    "c2": ({"cascade": 2}, [16, 4]),
    "c1": ({"cascade": 1}, [4]),
    "crp0": ({"crp_blocks": 0}, [32, 16, 8, 4]),
    "crp4": ({"crp_blocks": 4}, [32, 16, 8, 4]),
    "conv-pool": ({"crp_order": "conv-pool"}, [32, 16, 8, 4]),
    "norelu": ({"crp_relu": False}, [32, 16, 8, 4]),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_one_entry_per_block_at_its_resolution(case):
    switches, strides = CASES[case]
    model = _model(**switches)
    cap = inside.capture(model, _images())
    crp_blocks = switches.get("crp_blocks", 2)
    assert [b["stride"] for b in cap["blocks"]] == strides
    assert [b["name"] for b in cap["blocks"]] == [f"RefineNet-{len(strides) - i}" for i in range(len(strides))]
    assert cap["input_size"] == list(SIZE)
    assert len(cap["images"]) == 2
    for img in cap["images"]:
        assert img["prediction"].shape == SIZE and img["prediction"].dtype == np.uint8
        assert int(img["prediction"].max()) < NUM_CLASSES
        assert len(img["blocks"]) == len(strides)
        for b, (blk, meta, s) in enumerate(zip(img["blocks"], cap["blocks"], strides)):
            h, w = _ceil(SIZE[0], s), _ceil(SIZE[1], s)
            assert meta["size"] == [h, w]
            assert blk["pca"].shape == (h, w, 3) and blk["pca"].dtype == np.uint8
            assert len(blk["crp"]) == crp_blocks + 1 == len(meta["crp_terms"])
            for m in blk["crp"] + [blk["crp_output"]]:
                assert m.shape == (h, w) and m.dtype == np.uint8
            last = b == len(strides) - 1
            assert (blk["prediction"] is None) == last
            if not last:
                assert blk["prediction"].shape == SIZE
                assert 0 <= blk["agreement"] <= 1


def test_pca_explains_a_fraction_and_uses_the_range(standard):
    _, _, cap = standard
    for img in cap["images"]:
        for blk in img["blocks"]:
            ev = blk["pca_explained"]
            assert all(0 <= x <= 1 for x in ev) and sum(ev) <= 1 + 1e-6
            assert ev[0] >= ev[1] >= ev[2]
            assert blk["pca"].max() > 200 and blk["pca"].min() < 55  # stretched, not flat


# -- chained residual pooling -----------------------------------------------------------------


def _crp_terms(model, images):
    """The CRP terms recomputed outside the capture: the CRP input via a pre-hook, then the
    chain by hand (pool-conv: conv(pool(.)); conv-pool: pool(conv(.)))."""
    inputs = {}
    handles = [
        blk.crp.register_forward_pre_hook(lambda m, args, b=b: inputs.__setitem__(b, args[0].clone()))
        for b, blk in enumerate(model.blocks)
    ]
    with torch.no_grad():
        model(images)
        for h in handles:
            h.remove()
        terms = {}
        for b, blk in enumerate(model.blocks):
            crp = blk.crp
            x = crp.relu(inputs[b])
            path, ts = x, [x]
            for conv in crp.convs:
                path = conv(crp.pool(path)) if crp.order == "pool-conv" else crp.pool(conv(path))
                ts.append(path)
            terms[b] = ts
    return terms


@pytest.mark.parametrize("order", ["pool-conv", "conv-pool"])
@pytest.mark.parametrize("blocks", [0, 2, 4])
def test_crp_shares_and_maps_match_the_terms(order, blocks):
    model = _model(crp_blocks=blocks, crp_order=order)
    images = _images()
    cap = inside.capture(model, images)
    terms = _crp_terms(model, images)
    for i, img in enumerate(cap["images"]):
        for b, blk in enumerate(img["blocks"]):
            ts = terms[b]
            out = sum(ts)
            mean_out = float(out[i].abs().mean())
            shares = blk["crp_share"]
            assert len(shares) == blocks + 1
            assert all(s is not None and math.isfinite(s) and s > 0 for s in shares)
            # the terms sum to the output, so their magnitudes cover it (triangle inequality)
            assert sum(shares) >= 1 - 1e-4
            for k, t in enumerate(ts):
                m = t[i].abs().mean(0)
                assert shares[k] == pytest.approx(float(m.mean()) / mean_out, rel=1e-4)
                assert blk["crp_scale"][k] == pytest.approx(float(m.max()), rel=1e-4)
                expected = np.rint(m.numpy() / float(m.max()) * 255)
                assert np.abs(blk["crp"][k].astype(int) - expected).max() <= 1
            m = out[i].abs().mean(0)
            assert blk["crp_output_scale"] == pytest.approx(float(m.max()), rel=1e-4)
            if blocks == 0:
                assert shares == [pytest.approx(1.0)]


def test_crp_relu_input_term_is_the_relu_output():
    """Without the ReLU the input term may be negative; the shares still cover the output."""
    model = _model(crp_relu=False)
    cap = inside.capture(model, _images())
    for img in cap["images"]:
        for blk in img["blocks"]:
            assert sum(blk["crp_share"]) >= 1 - 1e-4


# -- multi-resolution fusion ------------------------------------------------------------------


def _fusion_shares(model, images):
    """The coarser paths' share recomputed from the fusion's inputs (pre-hook) by hand."""
    inputs = {}
    handles = [
        blk.fusion.register_forward_pre_hook(lambda m, args, b=b: inputs.__setitem__(b, [x.clone() for x in args[0]]))
        for b, blk in enumerate(model.blocks)
    ]
    with torch.no_grad():
        model(images)
        for h in handles:
            h.remove()
        shares = {}
        for b, blk in enumerate(model.blocks):
            xs = inputs[b]
            if len(xs) == 1:
                shares[b] = None
                continue
            size = (max(x.shape[-2] for x in xs), max(x.shape[-1] for x in xs))
            coarse = fine = 0
            for conv, x in zip(blk.fusion.convs, xs):
                y = conv(x)
                if y.shape[-2:] != size:
                    coarse = coarse + F.interpolate(y, size=size, mode="bilinear", align_corners=False)
                else:
                    fine = fine + y
            c, f = coarse.abs().mean(1), fine.abs().mean(1)
            shares[b] = c / (c + f)
    return shares


@pytest.mark.parametrize(
    "switches, fusing",
    [({}, [False, True, True, True]), ({"cascade": 2}, [True, True]), ({"cascade": 1}, [True]),
     ({"scales": (1.0, 0.5)}, [True, True, True, True])],
    ids=["c4", "c2", "c1", "2-scale"],
)
def test_fusion_maps_exist_only_where_inputs_are_fused(switches, fusing):
    model = _model(**switches)
    images = _images()
    cap = inside.capture(model, images)
    assert [b["fuses"] for b in cap["blocks"]] == fusing
    expected = _fusion_shares(model, images)
    for i, img in enumerate(cap["images"]):
        for b, blk in enumerate(img["blocks"]):
            if not fusing[b]:
                assert blk["fusion"] is None and blk["fusion_share"] is None
                assert len(cap["blocks"][b]["inputs"]) == 1
                continue
            share = expected[b][i].numpy()
            assert blk["fusion"].shape == tuple(cap["blocks"][b]["size"]) and blk["fusion"].dtype == np.uint8
            assert np.abs(blk["fusion"].astype(int) - np.rint(share * 255)).max() <= 1
            assert blk["fusion_share"] == pytest.approx(float(share.mean()), rel=1e-4)
            coarse = [d["coarse"] for d in cap["blocks"][b]["inputs"]]
            assert any(coarse) and not all(coarse)


def test_fusion_inputs_name_their_sources(standard):
    _, _, cap = standard
    b3 = cap["blocks"][1]
    assert [d["source"] for d in b3["inputs"]] == ["RefineNet-4", "tap 1/16"]
    assert [d["coarse"] for d in b3["inputs"]] == [True, False]
    assert b3["inputs"][0]["size"] == cap["blocks"][0]["size"]


# -- lesion predictions -----------------------------------------------------------------------


class _Silenced(nn.Module):
    def __init__(self, inner, how):
        super().__init__()
        self.inner, self.how = inner, how

    def forward(self, x):
        y = self.inner(x)
        if self.how == "zero":
            return torch.zeros_like(y)
        return torch.ones_like(y) * y.mean(dim=(2, 3), keepdim=True)


@pytest.mark.parametrize("how, switches", [("mean", {}), ("zero", {}), ("mean", {"cascade": 2}),
                                           ("mean", {"scales": (1.0, 0.5)})],
                         ids=["mean", "zero", "c2", "2-scale"])
def test_lesion_predictions_drop_the_finer_taps(how, switches):
    model, images = _model(**switches), _images()
    cap = inside.capture(model, images, lesion=how)
    assert cap["lesion"] == how
    with torch.no_grad():
        full = model(images).argmax(1).numpy()
    for i, img in enumerate(cap["images"]):
        assert np.array_equal(img["prediction"], full[i])
    for b in range(len(model.blocks) - 1):
        lesioned = copy.deepcopy(model)
        for adapters in lesioned.adapters:  # every input scale
            for t in range(max(model.groups[b]) + 1, 4):  # the taps finer than block b's
                adapters[t] = _Silenced(adapters[t], how)
        with torch.no_grad():
            pred = lesioned(images).argmax(1).numpy()
        for i, img in enumerate(cap["images"]):
            assert np.array_equal(img["blocks"][b]["prediction"], pred[i])
            assert img["blocks"][b]["agreement"] == pytest.approx(float((pred[i] == full[i]).mean()), abs=1e-6)


def test_lesions_can_be_skipped():
    cap = inside.capture(_model(), _images(), lesions=False)
    assert cap["lesion"] is None
    assert all(blk["prediction"] is None for blk in cap["images"][0]["blocks"])


def test_quarter_output_prediction_is_resized_to_the_input():
    model = _model(output="quarter")
    images = _images()
    cap = inside.capture(model, images)
    with torch.no_grad():
        logits = F.interpolate(model(images), size=SIZE, mode="bilinear", align_corners=False)
    assert np.array_equal(cap["images"][0]["prediction"], logits.argmax(1)[0].numpy())


# -- the model is left alone ------------------------------------------------------------------


def test_hooks_are_removed_and_the_model_is_unchanged():
    model = _model()
    images = _images()
    with torch.no_grad():
        before = model(images)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    model.train()
    inside.capture(model, images)
    assert model.training  # mode restored
    assert _hooks_left(model) == 0
    model.eval()
    with torch.no_grad():
        after = model(images)
    assert torch.equal(before, after)
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())


def test_a_model_the_hooks_misread_fails_loudly_and_leaves_no_hooks(monkeypatch):
    model = _model()
    forward = ChainedResidualPooling.forward
    monkeypatch.setattr(ChainedResidualPooling, "forward", lambda self, x: forward(self, x) + 1.0)
    with pytest.raises(RuntimeError, match="do not add up"):
        inside.capture(model, _images())
    assert _hooks_left(model) == 0


def test_a_forward_that_fails_inside_the_capture_leaves_no_hooks(monkeypatch):
    model = _model().train()

    def boom(self, x):
        raise RuntimeError("boom")

    monkeypatch.setattr(ChainedResidualPooling, "forward", boom)
    with pytest.raises(RuntimeError, match="boom"):
        inside.capture(model, _images())
    assert _hooks_left(model) == 0 and model.training


def test_capture_rejects_what_it_cannot_keep():
    with pytest.raises(TypeError):
        inside.capture(nn.Conv2d(3, 3, 1), _images())
    with pytest.raises(ValueError):
        inside.capture(_model(), _images(size=(16, 16)))
    with pytest.raises(ValueError, match="indices"):
        inside.capture(_model(), _images(), indices=[1])
    with pytest.raises(ValueError, match="lesion"):
        inside.capture(_model(), _images(), lesion="noise")


def test_model_without_refinement_keeps_only_the_prediction():
    cap = inside.capture(_model(refinement=False), _images())
    assert cap["blocks"] == [] and cap["images"][0]["blocks"] == []
    assert cap["images"][0]["prediction"].shape == SIZE
    with pytest.raises(ValueError, match="no RefineNet blocks"):
        inside.plot_cascade(cap)


# -- files ------------------------------------------------------------------------------------


def _assert_same(a, b, path="captured"):
    if isinstance(a, np.ndarray):
        assert isinstance(b, np.ndarray), path
        assert a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b), path
    elif isinstance(a, dict):
        assert isinstance(b, dict) and set(a) == set(b), (path, set(a) ^ set(b))
        for k in a:
            _assert_same(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, (list, tuple)):
        assert isinstance(b, list) and len(a) == len(b), path
        for k, (x, y) in enumerate(zip(a, b)):
            _assert_same(x, y, f"{path}[{k}]")
    else:
        assert type(a) is type(b) and a == b, (path, a, b)


@pytest.mark.parametrize("switches", [{}, {"cascade": 2, "crp_blocks": 4}, {"crp_order": "conv-pool"}])
def test_save_load_round_trips_exactly(tmp_path, switches):
    model = _model(**switches)
    cap = inside.capture(model, _images(), indices=[3, 7], mean=(0.4, 0.45, 0.5), std=(0.25, 0.25, 0.25),
                         class_names=[f"c{k}" for k in range(NUM_CLASSES)],
                         palette=[(k, 2 * k, 3 * k) for k in range(NUM_CLASSES)])
    folder = inside.save(tmp_path / "entry" / inside.INSIDE_DIR, cap)
    _assert_same(cap, inside.load(folder))
    _assert_same(cap, inside.load(tmp_path / "entry"))  # a ledger entry's folder works too
    doc = (folder / inside.INSIDE_FILE).read_text()
    names = sorted(p.name for p in folder.glob("*.png"))
    import json

    files = json.loads(doc)["files"]
    assert sorted(files) == names  # every file is described, nothing else is written
    assert "chained pooling term 1" in files["i0-b0-crp1.png"]
    assert cap["images"][0]["input"].shape == (*SIZE, 3)


def test_load_says_what_is_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match="inside.json"):
        inside.load(tmp_path)


def test_artefacts_of_two_images_stay_small(tmp_path):
    """The study's standard CPU model on two 180 x 240 scenes, input images kept: < 1 MB."""
    from refinenet.data.synthetic import SYNTHETIC_PALETTE, SyntheticScenes
    from refinenet.data.transforms import eval_transform

    data = SyntheticScenes(2, (180, 240), split="test")
    data.transform = eval_transform(mean=data.mean, std=data.std)
    images = torch.stack([data[i][0] for i in range(2)])
    model = _model(widths=(64, 32, 32, 32), num_classes=11)
    cap = inside.capture(model, images, mean=data.mean, std=data.std, class_names=data.class_names,
                         palette=SYNTHETIC_PALETTE)
    folder = inside.save(tmp_path / "inside", cap)
    png = sum(p.stat().st_size for p in folder.glob("*.png"))
    total = sum(p.stat().st_size for p in folder.iterdir())
    assert png < 1_000_000 and total < 1_000_000, (png, total)
    assert [b["size"] for b in cap["blocks"]] == [[6, 8], [12, 15], [23, 30], [45, 60]]


def test_kept_input_is_shrunk_to_the_width_asked():
    cap = inside.capture(_model(), _images(), mean=(0.5,) * 3, std=(0.2,) * 3, input_width=40)
    assert cap["images"][0]["input"].shape == (32, 40, 3)


# -- plots ------------------------------------------------------------------------------------


def _check_figure(fig):
    """Renders; at most 4 image panels a row; about 8 in wide; every title, label, legend
    entry and colour-bar tick reads at MIN_TEXT_PX or more on the page."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=50)
    assert buf.tell() > 1000
    assert fig.get_size_inches()[0] <= 8.5
    rows: dict[float, int] = {}
    for ax in fig.axes:
        if ax.images and ax.axison:
            y = round(ax.get_position().y0, 2)
            rows[y] = rows.get(y, 0) + 1
    assert check_readable(fig) >= MIN_TEXT_PX
    assert rows and max(rows.values()) <= 4, rows
    import matplotlib.pyplot as plt

    plt.close(fig)
    return rows


@pytest.mark.parametrize("switches", [{}, {"cascade": 2}, {"cascade": 1, "crp_blocks": 4}])
def test_plots_render(tmp_path, switches):
    model = _model(**switches)
    images = _images()
    cap = inside.capture(model, images, mean=(0.5,) * 3, std=(0.2,) * 3,
                         class_names=[f"class {k}" for k in range(NUM_CLASSES)])
    loaded = inside.load(inside.save(tmp_path, cap))
    labels = np.random.default_rng(0).integers(0, NUM_CLASSES, size=SIZE)
    labels[:4] = 255  # void
    n = len(model.blocks)
    rows = _check_figure(inside.plot_cascade(loaded, labels=labels, which=1))
    assert sum(rows.values()) == 3 + 2 * n  # image, labels, prediction; features and lesions
    _check_figure(inside.plot_cascade(loaded, image=images[0], palette=[(0, 0, 0)] * NUM_CLASSES))
    rows = _check_figure(inside.plot_crp_stages(loaded))
    assert sum(rows.values()) == n * (len(cap["blocks"][0]["crp_terms"]) + 1)
    _check_figure(inside.plot_crp_stages(loaded, scale="shared"))
    _check_figure(inside.plot_fusion(loaded, labels=labels))
    _check_figure(inside.plot_fusion(loaded))
    with pytest.raises(ValueError):
        inside.plot_crp_stages(loaded, scale="block")
    with pytest.raises(IndexError):
        inside.plot_cascade(loaded, which=2)


def test_the_cascade_legend_names_the_void_pixels_of_the_labels(tmp_path):
    cap = inside.capture(_model(), _images(), class_names=[f"class {k}" for k in range(NUM_CLASSES)])
    loaded = inside.load(inside.save(tmp_path, cap))
    labels = np.zeros(SIZE, int)
    fig = inside.plot_cascade(loaded, labels=labels)
    names = [t.get_text() for t in fig.legends[0].get_texts()]
    assert inside.NO_LABEL not in names and "class 0" in names
    labels[:4] = 255  # void: drawn black, so the legend has an entry for it
    fig = inside.plot_cascade(loaded, labels=labels)
    (legend,) = fig.legends
    assert [t.get_text() for t in legend.get_texts()][-1] == inside.NO_LABEL
    assert tuple(legend.legend_handles[-1].get_facecolor()[:3]) == (0.0, 0.0, 0.0)
    assert check_readable(fig) >= MIN_TEXT_PX


def test_the_cascade_writes_map_sizes_with_a_times_sign(tmp_path):
    cap = inside.capture(_model(), _images())
    loaded = inside.load(inside.save(tmp_path, cap))
    fig = inside.plot_cascade(loaded)
    titles = [ax.get_title() for ax in fig.axes if "PCA" in ax.get_title()]
    assert titles and all(re.search(r"\d+ × \d+, PCA", t) for t in titles), titles
    assert not any(re.search(r"\dx\d", t) for t in titles)


def test_the_pooling_figure_says_what_its_maps_show_in_words(tmp_path):
    cap = inside.capture(_model(), _images())
    loaded = inside.load(inside.save(tmp_path, cap))
    title = inside.plot_crp_stages(loaded)._suptitle.get_text()
    assert "|h|" not in title and "stretched to its own maximum" in title
    assert "|h|" not in inside.plot_crp_stages(loaded, scale="shared")._suptitle.get_text()


def test_fusion_share_by_class(standard):
    _, _, cap = standard
    by_pred = inside.fusion_share_by_class(cap)
    assert list(by_pred) == ["RefineNet-3", "RefineNet-2", "RefineNet-1"]
    for shares in by_pred.values():
        assert all(0 <= v <= 1 for v in shares.values())
    uniform = [np.zeros(SIZE, int) for _ in cap["images"]]
    by_label = inside.fusion_share_by_class(cap, labels=uniform)
    for b, blk in enumerate(cap["images"][0]["blocks"][1:], start=1):
        name = cap["blocks"][b]["name"]
        assert list(by_label[name]) == [0]
        mean = np.mean([img["blocks"][b]["fusion_share"] for img in cap["images"]])
        assert by_label[name][0] == pytest.approx(mean, abs=0.02)
