"""``SyntheticScenes``: procedural street-like scenes that need no files.

The embedded default dataset: tests, smoke runs and machines without CamVid use it. Each scene
is drawn from a few random numbers, and every design choice is there to exercise something
RefineNet claims to do well:

========  ==========  ===========================================================================
class     name        what it tests
========  ==========  ===========================================================================
0         sky         large smooth region with a vertical gradient: easy "stuff" class.
1         ground      large textured region below a random horizon: the horizon height varies, so
                      image rows alone do not tell sky from ground.
2         building    large rectangles standing on the horizon with a window grid: a big object
                      recognised by texture; the largest scale.
3         pole        1-2 px wide vertical lines (scaled with the image width): thin structures
                      that a stride-32 feature map cannot resolve; the point of multi-path
                      refinement (paper Section 3) and of the thin CamVid classes.
4         wire        1 px diagonal lines between pole tops: thin and not axis-aligned.
5         car         boxes on the ground whose size follows perspective, from about 2 px near
                      the horizon to about half the image height near the bottom: objects over a
                      wide range of scales (multi-resolution fusion, multi-scale input).
6         balloon     a shaded disc floating above the horizon ...
7         ball        ... and exactly the same disc (same colours, shading and size law) resting
                      on the ground. Only the surroundings tell them apart, and at the centre of
                      a large disc the surroundings are far away: a test of context, i.e. of the
                      large receptive field of chained residual pooling.
255       (ignore)    "clutter": patches of random noise labelled ignore, like CamVid's void.
========  ==========  ===========================================================================

Appearance varies per scene (colours jittered, global brightness and colour cast, smooth
value noise and per-pixel noise), so colour alone is not enough.

Determinism: sample ``i`` of ``SyntheticScenes(n, size, seed, split=s)`` depends only on
``(seed, s, i, size)``, not on ``n``, the machine, or library versions. The random numbers
come from NumPy's PCG64 bit generator (its raw output stream is fixed by NumPy's policy,
unlike its distribution methods) seeded with a ``SeedSequence``; floats are made from raw
bits by hand, and rendering uses only IEEE-exact arithmetic (+, -, *, /, comparisons, no
sin/exp/sum reductions whose last bits could differ between CPUs or SIMD paths).

Versioning: :data:`GENERATOR_VERSION` is part of the dataset's fingerprint (and so of run ids,
see :mod:`refinenet.data.fingerprint`). Bump it with any change that alters a rendered pixel or
label; ``tests/test_data_fingerprint.py`` pins the digest of a small split to catch a change
of output without a bump.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from .base import SegmentationDataset, to_sample

__all__ = [
    "GENERATOR_VERSION",
    "SYNTHETIC_CLASSES",
    "SYNTHETIC_PALETTE",
    "SyntheticScenes",
    "render_scene",
]

#: Bump when :func:`render_scene`'s output changes for any ``(size, entropy)``.
GENERATOR_VERSION = 1

SYNTHETIC_CLASSES = ["sky", "ground", "building", "pole", "wire", "car", "balloon", "ball"]
SYNTHETIC_PALETTE = [
    (70, 130, 180),
    (128, 64, 128),
    (70, 70, 70),
    (153, 153, 153),
    (250, 170, 30),
    (0, 0, 142),
    (220, 20, 60),
    (119, 11, 32),
]
IGNORE_INDEX = 255
SPLITS = ("train", "val", "test")
_SPLIT_CODE = {"train": 0, "val": 1, "test": 2}
SKY, GROUND, BUILDING, POLE, WIRE, CAR, BALLOON, BALL = range(8)


class _Random:
    """Uniform numbers from PCG64's raw 64-bit stream (fixed across NumPy versions/machines)."""

    def __init__(self, entropy: Sequence[int]) -> None:
        self._bits = np.random.PCG64(np.random.SeedSequence(list(entropy)))

    def uniform(self, low: float = 0.0, high: float = 1.0, size: int | tuple | None = None):
        count = 1 if size is None else int(np.prod(size))
        raw = np.asarray(self._bits.random_raw(count), dtype=np.uint64)
        u = (raw >> np.uint64(11)).astype(np.float64) * (1.0 / 9007199254740992.0)  # [0, 1)
        u = low + (high - low) * u
        return float(u[0]) if size is None else u.reshape(size)

    def integer(self, low: int, high: int) -> int:
        """An int in ``[low, high]`` (both ends included)."""
        return low + min(int(self.uniform() * (high - low + 1)), high - low)

    def skewed(self, low: float, high: float) -> float:
        """A number in ``[low, high)``, mostly small: many far/small objects, few large ones.

        ``low + (high - low) * u**3`` rather than a log-uniform draw, which would need
        ``exp``/``log`` (not bit-exact across platforms)."""
        u = self.uniform()
        return low + (high - low) * u * u * u

    def colour(self, base: Sequence[float], jitter: float) -> np.ndarray:
        return np.clip(np.asarray(base, np.float64) + self.uniform(-jitter, jitter, 3), 0.0, 1.0)


def _value_noise(rnd: _Random, h: int, w: int, cell: int) -> np.ndarray:
    """Smooth noise in [0, 1): random values on a coarse grid, bilinearly interpolated."""
    gh, gw = h // cell + 2, w // cell + 2
    grid = rnd.uniform(0.0, 1.0, (gh, gw))
    y = (np.arange(h, dtype=np.float64) + 0.5) / cell
    x = (np.arange(w, dtype=np.float64) + 0.5) / cell
    y0, x0 = np.floor(y).astype(int), np.floor(x).astype(int)
    fy, fx = (y - y0)[:, None], (x - x0)[None, :]
    a = grid[y0][:, x0]
    b = grid[y0][:, x0 + 1]
    c = grid[y0 + 1][:, x0]
    d = grid[y0 + 1][:, x0 + 1]
    return (a * (1 - fx) + b * fx) * (1 - fy) + (c * (1 - fx) + d * fx) * fy


def render_scene(size: tuple[int, int], entropy: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """Draw one scene: uint8 ``(H, W, 3)`` image and uint8 ``(H, W)`` labels (255 = ignore)."""
    h, w = size
    rnd = _Random(entropy)
    img = np.zeros((h, w, 3), np.float64)
    lab = np.zeros((h, w), np.uint8)
    ys = np.arange(h, dtype=np.float64)[:, None] + 0.5  # pixel centres
    xs = np.arange(w, dtype=np.float64)[None, :] + 0.5
    unit = min(h, w) / 128.0  # sizes are stated for a 128 px image and scale with it

    # Sky and ground, split at a random horizon.
    horizon = int(h * rnd.uniform(0.3, 0.55))
    sky_top, sky_bottom = rnd.colour((0.35, 0.55, 0.85), 0.1), rnd.colour((0.7, 0.8, 0.95), 0.08)
    t = np.clip(ys / max(horizon, 1), 0.0, 1.0)[..., None]
    img[:horizon] = (sky_top * (1 - t) + sky_bottom * t)[:horizon]
    lab[:horizon] = SKY
    ground = rnd.colour((0.45, 0.42, 0.4), 0.1)
    grain = _value_noise(rnd, h, w, max(2, int(4 * unit)))[..., None]
    img[horizon:] = (ground * (0.8 + 0.4 * grain))[horizon:]
    lab[horizon:] = GROUND

    # Buildings on the horizon, with a window grid.
    for _ in range(rnd.integer(1, 4)):
        bw = int(w * rnd.uniform(0.1, 0.35))
        bh = int(h * rnd.uniform(0.15, 0.45))
        x0 = rnd.integer(-bw // 2, w - bw // 2)
        y0 = max(0, horizon - bh)
        y1 = min(h, horizon + int(2 * unit))
        xa, xb = max(0, x0), min(w, x0 + bw)
        if xb <= xa or y1 <= y0:
            continue
        wall = rnd.colour((0.55, 0.4, 0.35), 0.15)
        period = max(3, int(rnd.uniform(5, 9) * unit))
        win = (((ys[y0:y1] // period) % 2 == 1) & ((xs[:, xa:xb] // period) % 2 == 1))
        block = np.where(win[..., None], wall * 0.45, wall)
        img[y0:y1, xa:xb] = block
        lab[y0:y1, xa:xb] = BUILDING

    def disc(cls: int, cy: float, cx: float, r: float, colour: np.ndarray) -> None:
        ya, yb = max(0, int(cy - r) - 1), min(h, int(cy + r) + 2)
        xa, xb = max(0, int(cx - r) - 1), min(w, int(cx + r) + 2)
        if yb <= ya or xb <= xa:
            return
        d2 = ((ys[ya:yb] - cy) ** 2 + (xs[:, xa:xb] - cx) ** 2) / (r * r)
        inside = d2 <= 1.0
        shade = (1.1 - 0.5 * d2)[..., None] * colour  # radial shading, no sqrt needed
        img[ya:yb, xa:xb] = np.where(inside[..., None], shade, img[ya:yb, xa:xb])
        lab[ya:yb, xa:xb][inside] = cls

    # Balloons and balls: one appearance model for both, told apart only by context.
    toy = rnd.colour((0.85, 0.3, 0.25), 0.15)
    r_min, r_max = 2.0 * unit, 0.2 * min(h, w)
    for _ in range(rnd.integer(0, 2)):  # balloons: entirely above the horizon
        r = min(rnd.skewed(r_min, r_max), (horizon - 2) / 2)
        if r >= 1.5:
            disc(BALLOON, rnd.uniform(r + 1, horizon - r - 1), rnd.uniform(0, w), r, toy)

    # Poles (thin, vertical) and wires between their tops (thin, diagonal).
    tops = []
    for _ in range(rnd.integer(0, 3)):
        pw = max(1, int(rnd.uniform(1.0, 2.0) * w / 160))
        px = rnd.integer(0, w - pw)
        base = min(h, horizon + int((h - horizon) * rnd.uniform(0.05, 0.6)))
        top = max(0, horizon - int(h * rnd.uniform(0.1, 0.35)))
        img[top:base, px : px + pw] = rnd.colour((0.2, 0.2, 0.22), 0.05)
        lab[top:base, px : px + pw] = POLE
        tops.append((px + pw / 2, top + 0.5))
    tops.sort()
    for (xa_, ya_), (xb_, yb_) in zip(tops, tops[1:]):
        x_lo, x_hi = int(xa_), int(xb_) + 1
        y_lo, y_hi = int(min(ya_, yb_)) - 1, int(max(ya_, yb_)) + 2
        y_lo, y_hi = max(0, y_lo), min(h, y_hi)
        dx, dy = xb_ - xa_, yb_ - ya_
        cross = (xs[:, x_lo:x_hi] - xa_) * dy - (ys[y_lo:y_hi] - ya_) * dx
        on = cross * cross <= 0.25 * (dx * dx + dy * dy)  # distance to the line <= 0.5 px
        img[y_lo:y_hi, x_lo:x_hi][on] = (0.1, 0.1, 0.1)
        lab[y_lo:y_hi, x_lo:x_hi][on] = WIRE

    for _ in range(rnd.integer(0, 2)):  # balls: entirely below the horizon, on the ground
        # (before the cars, which may stand in front of a ball but never under it)
        r = min(rnd.skewed(r_min, r_max), (h - horizon - 2) / 2)
        if r >= 1.5:
            disc(BALL, rnd.uniform(horizon + r + 1, h - r - 1), rnd.uniform(0, w), r, toy)

    # Cars: size from perspective, far ones drawn first so near ones occlude them.
    cars = []
    for _ in range(rnd.integer(0, 5)):
        depth = rnd.skewed(0.02, 1.0)  # 0 at the horizon, 1 at the bottom edge
        bottom = horizon + depth * (h - horizon) * 1.1
        ch = max(2.0, depth * 0.5 * h * rnd.uniform(0.8, 1.2))
        cw = ch * rnd.uniform(1.4, 2.2)
        x0 = rnd.uniform(-cw / 2, w - cw / 2)
        cars.append((bottom, ch, cw, x0, rnd.colour((0.5, 0.5, 0.5), 0.45)))
    for bottom, ch, cw, x0, body in sorted(cars):
        ya, yb = max(0, int(bottom - ch)), min(h, int(bottom))
        xa, xb = max(0, int(x0)), min(w, int(x0 + cw))
        if yb <= ya or xb <= xa:
            continue
        img[ya:yb, xa:xb] = body
        band = int(bottom - ch) + int(ch / 3)  # dark windows in the top third
        img[ya : max(ya, min(yb, band)), xa:xb] = body * 0.35
        lab[ya:yb, xa:xb] = CAR

    # Global light: brightness and colour cast, then smooth and per-pixel noise.
    light = rnd.uniform(0.75, 1.15) * (1.0 + rnd.uniform(-0.08, 0.08, 3))
    shade = 0.9 + 0.2 * _value_noise(rnd, h, w, max(4, int(24 * unit)))[..., None]
    img = img * light * shade + rnd.uniform(-0.04, 0.04, (h, w, 3))

    # Clutter: random-noise patches labelled ignore (like CamVid's void).
    for _ in range(rnd.integer(0, 2)):
        s = max(2, int(rnd.uniform(3, 12) * unit))
        y0, x0 = rnd.integer(0, max(0, h - s)), rnd.integer(0, max(0, w - s))
        patch = img[y0 : y0 + s, x0 : x0 + s]
        img[y0 : y0 + s, x0 : x0 + s] = rnd.uniform(0.0, 1.0, patch.shape)
        lab[y0 : y0 + s, x0 : x0 + s] = IGNORE_INDEX

    out = np.floor(np.clip(img, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    return out, lab


class SyntheticScenes(SegmentationDataset):
    """``n`` procedural scenes of ``size = (H, W)``; deterministic in ``(seed, split, index)``.

    ``split`` selects an independent stream ("train", "val", "test"), so the splits never
    share a scene. Scenes are rendered on first access (a few ms each) and kept if ``cache``.

    Samples: ``tv_tensors.Image`` uint8 ``(3, H, W)``, ``tv_tensors.Mask`` int64 ``(H, W)``
    with classes ``0..7`` and 255 for ignore (before ``transform``).
    """

    num_classes = len(SYNTHETIC_CLASSES)
    ignore_index = IGNORE_INDEX
    class_names = SYNTHETIC_CLASSES
    palette = SYNTHETIC_PALETTE
    # Measured over the first 512 training scenes at 128x160 (rounded to 0.01).
    mean = (0.44, 0.45, 0.49)
    std = (0.15, 0.18, 0.25)

    def __init__(
        self,
        n: int = 256,
        size: tuple[int, int] = (128, 160),
        seed: int = 0,
        *,
        split: str = "train",
        transform: Callable | None = None,
        cache: bool = True,
    ) -> None:
        super().__init__(transform)
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ValueError(f"n must be a non-negative int, got {n!r}")
        size = tuple(int(s) for s in size)
        if len(size) != 2 or min(size) < 8:
            raise ValueError(f"size must be (H, W) with both at least 8, got {size!r}")
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValueError(f"seed must be a non-negative int, got {seed!r}")
        self.n, self.size, self.seed, self.split = n, size, seed, split
        self._cache: dict[int, tuple[np.ndarray, np.ndarray]] | None = {} if cache else None

    def __len__(self) -> int:
        return self.n

    def arrays(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Sample ``index`` as numpy: uint8 ``(H, W, 3)`` image, uint8 ``(H, W)`` labels."""
        if self._cache is not None and index in self._cache:
            return self._cache[index]
        pair = render_scene(self.size, (self.seed, _SPLIT_CODE[self.split], index))
        if self._cache is not None:
            self._cache[index] = pair
        return pair

    def load(self, index: int):
        image, label = self.arrays(index)
        return to_sample(image, label)

    def __repr__(self) -> str:
        return (
            f"SyntheticScenes(n={self.n}, size={self.size}, seed={self.seed}, "
            f"split={self.split!r})"
        )
