"""Keep a whole split on the GPU and augment batches there (the GPU profile).

With a fast GPU, CPU-side decoding and augmentation in DataLoader workers becomes the
bottleneck. :class:`DeviceSplit` holds a split as uint8 tensors on the device (CamVid train at
360x480 is 190 MB: nothing for an H100), and :class:`DeviceLoader` draws batches with the same
augmentation as :func:`refinenet.data.transforms.train_transform`, computed in one batched
gather per batch:

- random scale in ``scale_range`` per sample, random crop of ``crop_size`` with padding where
  the scaled image is smaller (image padded with the mean colour, i.e. 0 after normalisation;
  mask padded with ``ignore_index``), horizontal flip with probability 0.5, normalisation;
- image resampled bilinearly (``grid_sample``, ``align_corners=False``), mask by nearest-exact
  index gather: the same pixel-centre geometry as the CPU path, so they stay aligned.

Departure from the CPU path: no antialiasing when a sample is scaled down (``grid_sample``
has none; at 0.7x the difference is small). Random numbers come from a seeded CPU generator,
so a run is repeatable for a given seed.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
import torch.nn.functional as F

from .pack import Pack
from .transforms import _pair, draw_colour_factors, jitter_colours

__all__ = ["DeviceLoader", "DeviceSplit"]


class DeviceSplit:
    """A split as device tensors: ``images`` uint8 ``(N, 3, H, W)``, ``masks`` uint8 ``(N, H, W)``,
    plus the dataset metadata (``num_classes``, ``ignore_index``, ``mean``, ``std``, ...)."""

    def __init__(self, images: torch.Tensor, masks: torch.Tensor, meta: dict) -> None:
        if images.dim() != 4 or images.shape[1] != 3 or images.dtype != torch.uint8:
            raise ValueError(f"images must be uint8 (N, 3, H, W), got {images.dtype} "
                             f"{tuple(images.shape)}")
        if masks.shape != (images.shape[0], *images.shape[2:]):
            raise ValueError(f"masks must be (N, H, W) = {(images.shape[0], *images.shape[2:])}, "
                             f"got {tuple(masks.shape)}")
        if masks.dtype != torch.uint8:
            raise ValueError(f"masks must be uint8, got {masks.dtype}")
        self.images, self.masks, self.meta = images, masks.to(images.device), dict(meta)
        for key in ("num_classes", "ignore_index", "mean", "std", "class_names", "palette"):
            setattr(self, key, self.meta[key])

    @classmethod
    def from_pack(cls, pack: Pack | str, device: str | torch.device = "cuda") -> DeviceSplit:
        """Load a pack onto ``device`` (JPEG packs are decoded there, in one batched call)."""
        pack = pack if isinstance(pack, Pack) else Pack(pack)
        return cls(pack.images(device), pack.labels(device), pack.meta)

    @classmethod
    def from_dataset(cls, dataset, device: str | torch.device = "cuda") -> DeviceSplit:
        """Load any dataset of one image size (uses its pack when it has one)."""
        if getattr(dataset, "pack", None) is not None:
            return cls.from_pack(dataset.pack, device)
        pairs = [dataset.load(i) for i in range(len(dataset))]
        images = torch.stack([torch.as_tensor(im) for im, _ in pairs]).to(torch.uint8)
        masks = torch.stack([torch.as_tensor(m) for _, m in pairs]).to(torch.uint8)
        return cls(images.to(device), masks.to(device), dataset.info())

    @property
    def device(self) -> torch.device:
        return self.images.device

    def __len__(self) -> int:
        return self.images.shape[0]

    def __repr__(self) -> str:
        n, _, h, w = self.images.shape
        return f"DeviceSplit({n} x {h}x{w} on {self.device})"


class DeviceLoader:
    """Batches from a :class:`DeviceSplit`, augmented on its device.

    Args:
        split: the data.
        batch_size: samples per batch.
        train: augment (scale, crop, flip), shuffle and drop the last partial batch; with
            ``False`` batches are the whole images in order, only normalised.
        crop_size: int or ``(H, W)``; ``None`` keeps the split's size (scaled, then padded or
            cropped back to it).
        scale_range, hflip, color_jitter: as in :func:`refinenet.data.transforms.train_transform`.
        seed: seeds the loader's generator; each pass over the loader continues its stream.

    Yields float32 ``(B, 3, h, w)`` normalised images and int64 ``(B, h, w)`` masks on the
    split's device.
    """

    def __init__(self, split: DeviceSplit, batch_size: int, *, train: bool = True, crop_size=None,
                 scale_range: tuple[float, float] = (0.7, 1.3), hflip: bool = True, color_jitter: float = 0.0,
                 shuffle: bool | None = None, drop_last: bool | None = None, seed: int = 0) -> None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        lo, hi = (float(s) for s in scale_range)
        if not 0 < lo <= hi:
            raise ValueError(f"scale_range must be (low, high) with 0 < low <= high, "
                             f"got {scale_range!r}")
        self.split, self.batch_size, self.train = split, batch_size, train
        full = tuple(split.images.shape[-2:])
        self.crop_size = _pair("crop_size", crop_size) if crop_size is not None else full
        if not 0 <= color_jitter <= 1:
            raise ValueError(f"color_jitter must be in [0, 1], got {color_jitter!r}")
        self.scale_range, self.hflip, self.color_jitter = (lo, hi), hflip, float(color_jitter)
        self.shuffle = train if shuffle is None else shuffle
        self.drop_last = train if drop_last is None else drop_last
        self.generator = torch.Generator().manual_seed(seed)
        dev = split.device
        self._mean = torch.tensor(split.mean, dtype=torch.float32, device=dev)[:, None, None]
        self._std = torch.tensor(split.std, dtype=torch.float32, device=dev)[:, None, None]

    def __len__(self) -> int:
        n = len(self.split)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def _normalise(self, images: torch.Tensor) -> torch.Tensor:
        return (images.float() / 255 - self._mean) / self._std

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n = len(self.split)
        order = torch.randperm(n, generator=self.generator) if self.shuffle else torch.arange(n)
        for b in range(len(self)):
            idx = order[b * self.batch_size : (b + 1) * self.batch_size].to(self.split.device)
            if self.train:
                yield self.augment(idx)
            else:
                yield self._normalise(self.split.images[idx]), self.split.masks[idx].long()

    def augment(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Scale, crop (padding), flip and normalise the samples ``idx`` in one batch."""
        g, dev = self.generator, self.split.device
        B = idx.numel()
        H, W = self.split.images.shape[-2:]
        ch, cw = self.crop_size
        lo, hi = self.scale_range
        s = lo + (hi - lo) * torch.rand(B, generator=g, dtype=torch.float64)
        hs, ws = (H * s).round().clamp(min=1), (W * s).round().clamp(min=1)  # scaled sizes

        def offset(scaled, crop):  # uniform int in [min(0, scaled-crop), max(0, scaled-crop)]
            a, b = (scaled - crop).clamp(max=0), (scaled - crop).clamp(min=0)
            return a + torch.floor(torch.rand(B, generator=g, dtype=torch.float64) * (b - a + 1))

        oy, ox = offset(hs, ch), offset(ws, cw)
        flip = torch.rand(B, generator=g) < 0.5
        if not self.hflip:
            flip[:] = False

        # Position of every output pixel in the scaled image (pixel indices), per sample.
        ys = torch.arange(ch, dtype=torch.float64)[None, :] + oy[:, None]  # (B, ch)
        j = torch.arange(cw, dtype=torch.float64)[None, :].expand(B, cw)
        xs = torch.where(flip[:, None], cw - 1 - j, j) + ox[:, None]  # (B, cw): flip after crop
        valid_y, valid_x = (ys >= 0) & (ys < hs[:, None]), (xs >= 0) & (xs < ws[:, None])
        # Pixel centres map to (i + 0.5) / scale in the source: normalised for grid_sample ...
        gy = (2 * (ys + 0.5) / hs[:, None] - 1).float()
        gx = (2 * (xs + 0.5) / ws[:, None] - 1).float()
        # ... and floor of the same for the nearest-exact label gather.
        ry = ((ys + 0.5) * (H / hs[:, None])).floor().clamp(0, H - 1).long()
        rx = ((xs + 0.5) * (W / ws[:, None])).floor().clamp(0, W - 1).long()
        gy, gx, ry, rx = gy.to(dev), gx.to(dev), ry.to(dev), rx.to(dev)
        valid = (valid_y[:, :, None] & valid_x[:, None, :]).to(dev)  # (B, ch, cw)

        grid = torch.stack(torch.broadcast_tensors(gx[:, None, :], gy[:, :, None]), dim=-1)
        images = self._normalise(self.split.images[idx])
        images = F.grid_sample(images, grid, mode="bilinear", padding_mode="border",
                               align_corners=False)
        images = images * valid[:, None]  # padding: 0 = the mean colour after normalisation
        if self.color_jitter:  # after the geometry, on [0, 1] colours (as the DataLoader path)
            factors = draw_colour_factors(B, self.color_jitter, g).to(dev)
            images = (jitter_colours(images * self._std + self._mean, factors) - self._mean) / self._std

        masks = self.split.masks[idx[:, None, None], ry[:, :, None], rx[:, None, :]].long()
        masks = torch.where(valid, masks, torch.full_like(masks, self.split.ignore_index))
        return images, masks
