"""Packed caches: a whole split, decoded once, in one compact file per split and resolution.

Decoding CamVid's PNGs costs ~10 ms an image on one core; a pack opens in milliseconds and
travels as one file (the GPU machine gets it through the 64 MiB carry, so a pack must fit in
:data:`MAX_PACK_BYTES` = 60 MiB).

File: ``<cache>/<dataset>-<split>-<H>x<W>.pack`` (see :mod:`refinenet.data.paths` for
``<cache>``), a ``torch.save`` dict loaded with ``mmap=True, weights_only=True``:

- ``images``: codec ``"raw"``, uint8 ``(N, 3, H, W)``, memory-mapped, nothing to decode; or
  codec ``"jpeg"``, the concatenated JPEG files (uint8 ``(bytes,)``) with ``image_offsets``.
- ``labels``: per-image zlib-compressed uint8 ``(H, W)`` class maps (lossless, always),
  concatenated, with ``label_offsets``.
- ``names`` (source file names, to detect a stale pack), ``meta`` (classes, palette, mean,
  std, ignore index), ``dataset``, ``split``, ``size``, ``codec``, ``quality``;
- ``content_sha256``: :func:`content_sha256` of the payload, written since packs carry it;
  a pack written before has none and :attr:`Pack.content_sha256` computes it when asked.
- ``source_fingerprint``: the fingerprint of the files the pack was made from
  (:func:`refinenet.data.fingerprint.camvid_source_fingerprint`: names, sizes and SHA-256 of
  every image and label, and the size), so a pack whose source has changed since is detected
  (:class:`refinenet.data.camvid.CamVid` checks it when the root is present); ``None`` in
  packs written before, and in packs not made from files.

Codec choice (``"auto"``): raw uint8 when the *largest* split of the dataset fits the budget
at that resolution, so all splits of one resolution share one codec (val and test are never
stored differently); else JPEG. For CamVid that is raw up to 180x240 and JPEG at full
360x480, where raw would take 190 MB for train. **JPEG is lossy** (images only, labels stay
exact): quality 90 without chroma subsampling (4:4:4, which keeps thin coloured structures
such as signs and poles), about 39 dB PSNR on CamVid train; ``tests/test_data_pack.py``
checks the PSNR and the exactness of the labels.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import warnings
import zlib
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from PIL import Image as PILImage

from .base import DataError
from .files import atomic_write

__all__ = [
    "CODECS",
    "MAX_PACK_BYTES",
    "Pack",
    "choose_codec",
    "content_sha256",
    "pack_filename",
    "psnr",
    "write_pack",
]

FORMAT = "refinenet-pack"
VERSION = 1
MAX_PACK_BYTES = 60 * 2**20
CODECS = ("auto", "raw", "jpeg")
DEFAULT_QUALITY = 90
# zlib'd CamVid labels take ~5 KB at 360x480 (~3% of a raw label): budget 1/16 of a pixel.
_LABEL_BYTES_PER_PIXEL = 1 / 16


def pack_filename(dataset: str, split: str, size: Sequence[int]) -> str:
    h, w = size
    return f"{dataset}-{split}-{int(h)}x{int(w)}.pack"


def choose_codec(count: int, size: Sequence[int], budget: int = MAX_PACK_BYTES) -> str:
    """``"raw"`` if ``count`` raw images of ``size`` (plus labels) fit ``budget``, else
    ``"jpeg"``."""
    h, w = size
    estimate = count * h * w * (3 + _LABEL_BYTES_PER_PIXEL) + 2**20
    return "raw" if estimate <= budget else "jpeg"


def psnr(a: np.ndarray | torch.Tensor, b: np.ndarray | torch.Tensor) -> float:
    """Peak signal-to-noise ratio in dB between two uint8 images (inf when equal)."""
    a = torch.as_tensor(np.asarray(a), dtype=torch.float64)
    b = torch.as_tensor(np.asarray(b), dtype=torch.float64)
    mse = ((a - b) ** 2).mean().item()
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


class _ContentHash:
    """SHA-256 of a pack's payload, fed one sample at a time (see :func:`content_sha256`)."""

    def __init__(self, names: Sequence[str], codec: str, size: Sequence[int]) -> None:
        self._sha = hashlib.sha256()
        header = {"names": list(names), "codec": codec, "size": [int(s) for s in size]}
        self._blob(json.dumps(header, sort_keys=True, separators=(",", ":")).encode())

    def _blob(self, data) -> None:
        view = memoryview(data).cast("B")
        # Length-prefixed, so no two different payloads hash the same stream of bytes.
        self._sha.update(len(view).to_bytes(8, "little"))
        self._sha.update(view)

    def add(self, image, label) -> None:
        self._blob(np.ascontiguousarray(image))
        self._blob(np.ascontiguousarray(label, dtype=np.uint8))

    def hexdigest(self) -> str:
        return self._sha.hexdigest()


def content_sha256(
    names: Sequence[str], codec: str, size: Sequence[int], samples: Iterable[tuple]
) -> str:
    """Hex SHA-256 of a pack's content: its names, codec and size, then for each sample the
    image bytes *as stored* (raw: uint8 ``(3, H, W)`` in C order; jpeg: the JPEG file) and the
    uncompressed uint8 ``(H, W)`` labels, each prefixed by its length.

    It depends on the stored bytes only, never on a decoder: the same pack gives the same hash
    on any machine and torch version. Labels are hashed uncompressed so that the zlib version
    that wrote them does not matter. A raw pack and a JPEG pack of the same data differ, as
    do two packs of one split at two sizes.
    """
    h = _ContentHash(names, codec, size)
    for image, label in samples:
        h.add(image, label)
    return h.hexdigest()


def _encode_jpeg(image_chw: torch.Tensor, quality: int) -> bytes:
    buf = io.BytesIO()
    hwc = image_chw.permute(1, 2, 0).contiguous().numpy()
    PILImage.fromarray(hwc).save(buf, "JPEG", quality=quality, subsampling=0)  # 4:4:4
    return buf.getvalue()


def _decode_jpeg_cpu(data: np.ndarray) -> torch.Tensor:
    """JPEG bytes -> uint8 ``(3, H, W)`` with Pillow (libjpeg-turbo)."""
    with PILImage.open(io.BytesIO(data.tobytes())) as img:
        hwc = np.asarray(img if img.mode == "RGB" else img.convert("RGB"))
    return torch.from_numpy(np.ascontiguousarray(hwc.transpose(2, 0, 1)))


def write_pack(
    dataset,
    path: str | Path,
    *,
    dataset_name: str,
    split: str,
    codec: str = "auto",
    quality: int = DEFAULT_QUALITY,
    names: Sequence[str] | None = None,
    source_fingerprint: str | None = None,
    progress: bool = True,
) -> Path:
    """Decode every sample of ``dataset`` (all one size) and write them to ``path`` atomically.

    ``dataset.load(i)`` must return uint8 ``(3, H, W)`` and integer ``(H, W)`` tensors whose
    values fit in uint8. ``codec="auto"`` decides from this split's length; callers that pack
    several splits pass the codec chosen for the largest (see :func:`choose_codec`).
    ``source_fingerprint``: the fingerprint of the files ``dataset`` reads, stored so that a
    reader can tell when they have changed since (module docstring).
    Returns the path written.
    """
    from tqdm.auto import tqdm

    if codec not in CODECS:
        raise ValueError(f"codec must be one of {CODECS}, got {codec!r}")
    if not 1 <= int(quality) <= 100:
        raise ValueError(f"quality must be in 1..100, got {quality!r}")
    n = len(dataset)
    if n == 0:
        raise ValueError(f"cannot pack an empty split ({dataset_name} {split})")
    first_image, _ = dataset.load(0)
    size = tuple(first_image.shape[-2:])
    if codec == "auto":
        codec = choose_codec(n, size)
    path = Path(path)
    names = list(names) if names is not None else [str(i) for i in range(n)]
    if len(names) != n:
        raise ValueError(f"{len(names)} names for {n} samples")
    content = _ContentHash(names, codec, size)

    raw = torch.empty((n, 3, *size), dtype=torch.uint8) if codec == "raw" else None
    jpegs: list[bytes] = []
    labels: list[bytes] = []
    for i in tqdm(range(n), desc=f"pack {dataset_name} {split} {size[0]}x{size[1]} ({codec})",
                  unit="img", disable=not progress):
        image, mask = dataset.load(i)
        if tuple(image.shape[-2:]) != size or tuple(mask.shape) != size:
            raise DataError(f"sample {i} of {dataset_name} {split} is {tuple(image.shape)}, "
                            f"not (3, {size[0]}, {size[1]}): a pack needs one size")
        image = torch.as_tensor(image).to(torch.uint8)
        label = torch.as_tensor(mask).to(torch.uint8).numpy()
        if raw is not None:
            raw[i] = image
            content.add(raw[i].numpy(), label)
        else:
            jpegs.append(_encode_jpeg(image, int(quality)))
            content.add(np.frombuffer(jpegs[-1], np.uint8), label)
        labels.append(zlib.compress(label.tobytes(), 6))

    def concat(blobs: list[bytes]) -> tuple[torch.Tensor, torch.Tensor]:
        offsets = torch.tensor(np.cumsum([0] + [len(b) for b in blobs]), dtype=torch.int64)
        data = torch.frombuffer(bytearray(b"".join(blobs)), dtype=torch.uint8)
        return data, offsets

    label_data, label_offsets = concat(labels)
    record = {
        "format": FORMAT,
        "version": VERSION,
        "dataset": dataset_name,
        "split": split,
        "size": list(size),
        "codec": codec,
        "quality": int(quality) if codec == "jpeg" else None,
        "names": names,
        "content_sha256": content.hexdigest(),
        "source_fingerprint": source_fingerprint,
        "meta": dataset.info(),
        "labels": label_data,
        "label_offsets": label_offsets,
    }
    if raw is not None:
        record["images"], record["image_offsets"] = raw, None
    else:
        record["images"], record["image_offsets"] = concat(jpegs)

    return atomic_write(path, lambda f: torch.save(record, f))


class Pack:
    """A packed split opened read-only (memory-mapped); see the module docstring for the format.

    ``image(i)``: uint8 ``(3, H, W)``; ``label(i)``: uint8 ``(H, W)``; ``images(device)`` and
    ``labels(device)``: the whole split, ``(N, 3, H, W)`` and ``(N, H, W)`` uint8.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"pack {self.path} does not exist")
        try:
            rec = torch.load(self.path, map_location="cpu", mmap=True, weights_only=True)
        except Exception as err:
            raise DataError(f"pack {self.path} is corrupt or truncated ({err})") from err
        if not isinstance(rec, dict) or rec.get("format") != FORMAT:
            raise DataError(f"{self.path} is not a refinenet pack")
        if rec.get("version") != VERSION:
            raise DataError(f"pack {self.path} has format version {rec.get('version')}, this "
                            f"code reads version {VERSION}: rebuild it with `refinenet data pack`")
        self.dataset: str = rec["dataset"]
        self.split: str = rec["split"]
        self.size: tuple[int, int] = tuple(rec["size"])
        self.codec: str = rec["codec"]
        self.quality: int | None = rec["quality"]
        self.names: list[str] = list(rec["names"])
        self.meta: dict = rec["meta"]
        self._content_sha256: str | None = rec.get("content_sha256")
        # What the pack was made from (None: not recorded), to detect a changed source.
        self.source_fingerprint: str | None = rec.get("source_fingerprint")
        # Byte access goes through NumPy views of the mapped file: torch's (multi-threaded)
        # copy of a freshly mapped region stalls for ~10 ms on a busy 2-core machine.
        self._images = rec["images"].numpy()
        offsets = rec["image_offsets"]
        self._image_offsets = None if offsets is None else offsets.tolist()
        self._labels = rec["labels"].numpy()
        self._label_offsets = rec["label_offsets"].tolist()
        if self.codec not in ("raw", "jpeg") or len(self._label_offsets) != len(self.names) + 1:
            raise DataError(f"pack {self.path} is inconsistent (codec {self.codec!r}, "
                            f"{len(self.names)} names, {len(self._label_offsets) - 1} labels)")

    def __len__(self) -> int:
        return len(self.names)

    # DataLoader workers started by spawn/forkserver get the path and map the file again,
    # instead of a pickled copy of the whole split.
    def __getstate__(self) -> dict:
        return {"path": self.path}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["path"])

    @property
    def nbytes(self) -> int:
        return self.path.stat().st_size

    @property
    def content_sha256(self) -> str:
        """The hex :func:`content_sha256` of this pack: the one stored at write time, or, for
        a pack written before packs stored it, computed from the payload on first access
        (about a second for CamVid train at 180x240) and kept for the life of this object."""
        if self._content_sha256 is None:
            self._content_sha256 = self.compute_content_sha256()
        return self._content_sha256

    def compute_content_sha256(self) -> str:
        """:func:`content_sha256` recomputed from the stored payload (ignores the stored one)."""

        def samples():
            for i in range(len(self)):
                if self.codec == "raw":
                    image = self._images[i]
                else:
                    image = self._images[self._image_offsets[i] : self._image_offsets[i + 1]]
                yield image, self.label(i).numpy()

        return content_sha256(self.names, self.codec, self.size, samples())

    def _jpeg(self, i: int) -> torch.Tensor:
        a, b = self._image_offsets[i], self._image_offsets[i + 1]
        return torch.from_numpy(np.array(self._images[a:b]))

    def image(self, i: int) -> torch.Tensor:
        """Image ``i``, uint8 ``(3, H, W)`` (a copy; raw packs read it from the mapped file)."""
        if self.codec == "raw":
            return torch.from_numpy(np.array(self._images[i]))
        return _decode_jpeg_cpu(self._images[self._image_offsets[i] : self._image_offsets[i + 1]])

    def label(self, i: int) -> torch.Tensor:
        """Labels ``i``, uint8 ``(H, W)``."""
        a, b = self._label_offsets[i], self._label_offsets[i + 1]
        data = bytearray(zlib.decompress(self._labels[a:b].tobytes()))
        return torch.from_numpy(np.frombuffer(data, np.uint8).reshape(self.size))

    def images(self, device: str | torch.device | None = None) -> torch.Tensor:
        """All images, uint8 ``(N, 3, H, W)``, on ``device``. JPEG packs decode on the GPU
        (nvJPEG, one batched call) when ``device`` is CUDA, else in a thread pool."""
        device = torch.device(device or "cpu")
        if self.codec == "raw":
            return torch.from_numpy(np.array(self._images)).to(device)
        if device.type == "cuda":
            from torchvision.io import decode_jpeg

            blobs = [self._jpeg(i) for i in range(len(self))]
            with warnings.catch_warnings():  # torchvision >= 0.29 points to TorchCodec
                warnings.simplefilter("ignore", DeprecationWarning)
                return torch.stack(decode_jpeg(blobs, device=device))
        out = np.empty((len(self), 3, *self.size), dtype=np.uint8)

        def decode_into(i: int) -> None:
            a, b = self._image_offsets[i], self._image_offsets[i + 1]
            with PILImage.open(io.BytesIO(self._images[a:b].tobytes())) as img:
                out[i] = np.asarray(img if img.mode == "RGB" else img.convert("RGB")).transpose(2, 0, 1)

        # Pillow releases the GIL while decoding: threads use every core.
        with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
            list(pool.map(decode_into, range(len(self))))
        return torch.from_numpy(out).to(device)

    def labels(self, device: str | torch.device | None = None) -> torch.Tensor:
        """All labels, uint8 ``(N, H, W)``, on ``device``."""
        out = np.empty((len(self), *self.size), dtype=np.uint8)
        for i in range(len(self)):
            a, b = self._label_offsets[i], self._label_offsets[i + 1]
            out[i] = np.frombuffer(zlib.decompress(self._labels[a:b].tobytes()), np.uint8).reshape(self.size)
        return torch.from_numpy(out).to(device or "cpu")

    def __repr__(self) -> str:
        return (f"Pack({self.path}, {self.dataset} {self.split}, {len(self)} x "
                f"{self.size[0]}x{self.size[1]}, {self.codec}, {self.nbytes / 2**20:.1f} MiB)")
