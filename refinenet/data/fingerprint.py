"""Fingerprints: SHA-256 digests of the data as the model sees it, and of single files.

``dataset_fingerprint(ds)`` is the hex SHA-256 of a canonical JSON description of ``ds``
(:func:`dataset_description`); the run id (:mod:`refinenet.engine.identity`) covers it, so a
finished run is never mistaken for one on other data. What the description holds:

========================= ==================================================================
read from                 described by
========================= ==================================================================
a root (CamVid, VOC, SBD) every listed image and label, in sample order: its name (last
                          directory and file name, so the root's location does not count),
                          its size in bytes and its SHA-256; plus the load size of images
                          and of labels (null: as stored)
a pack (CamVid)           the pack's :attr:`~refinenet.data.pack.Pack.content_sha256` (names,
                          codec, size, stored image bytes, labels) and the sizes
the generator (synthetic) its options (n, size, seed, split) and
                          :data:`~refinenet.data.synthetic.GENERATOR_VERSION`
========================= ==================================================================

So any change of a byte of a listed file, of the list, of the load size, or of a generator
option changes the fingerprint. Not covered: the resampling code (a resize from the PNGs
gives what this torch version gives; the code version is the commit's business).

A pack and the root it was made from give *different* fingerprints, even for a raw pack of
exactly the pixels the root would give at that size: the fingerprint names a source, it does
not decode and compare pixels. Two roots holding the same files give the same fingerprint,
and so do two copies of one pack.

Speed: a file is hashed once per process (cache keyed by resolved path, size and mtime_ns)
and, with ``disk_cache=True``, once per machine: the digests are kept in
``<data cache dir>/sha256-cache.json`` (:func:`refinenet.data.paths.default_cache_dir`), one
entry per path. A file modified less than :data:`RACY_SECONDS` ago is hashed but not cached,
since a second write within the file system's timestamp granularity could keep its size and
mtime (the "racy git" problem).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

from .files import atomic_write
from .paths import default_cache_dir

__all__ = [
    "FINGERPRINT_VERSION",
    "camvid_source_fingerprint",
    "dataset_description",
    "dataset_fingerprint",
    "file_entry",
    "file_sha256",
    "pack_sha256",
]

#: Part of every description: bump it when the description of a dataset changes shape.
FINGERPRINT_VERSION = 1
#: Files (and packs) modified this recently are hashed every time, never cached.
RACY_SECONDS = 2.0
DISK_CACHE_NAME = "sha256-cache.json"
_CHUNK = 1 << 20

# resolved path -> (size, mtime_ns, sha256), per process; "file" digests and pack contents.
_memory: dict[str, dict[str, tuple[int, int, str]]] = {"file": {}, "pack": {}}


class _DiskCache:
    """The on-disk digests, read on first use and merged back by :meth:`flush`.

    Any failure to read or write (read-only or missing directory, a file being replaced) only
    costs speed: the cache is an optimisation, never a source of truth beyond its keys.
    """

    def __init__(self) -> None:
        self.path: Path | None = None
        self.entries: dict[str, dict[str, list]] = {}
        self.new: dict[str, dict[str, list]] = {}

    def _load(self, path: Path) -> dict[str, dict[str, list]]:
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            return {}
        if not isinstance(data, dict) or data.get("version") != 1:
            return {}
        return {kind: dict(data.get(kind, {})) for kind in _memory}

    def get(self, kind: str, key: str, size: int, mtime_ns: int) -> str | None:
        path = default_cache_dir() / DISK_CACHE_NAME
        if path != self.path:  # first use, or $REFINENET_CACHE changed
            self.path, self.entries, self.new = path, self._load(path), {}
        entry = self.entries.get(kind, {}).get(key)
        if isinstance(entry, list) and len(entry) == 3 and entry[:2] == [size, mtime_ns]:
            return str(entry[2])
        return None

    def put(self, kind: str, key: str, size: int, mtime_ns: int, sha: str) -> None:
        if self.path is None:
            return
        self.entries.setdefault(kind, {})[key] = [size, mtime_ns, sha]
        self.new.setdefault(kind, {})[key] = [size, mtime_ns, sha]

    def flush(self) -> None:
        if self.path is None or not self.new:
            return
        path, new, self.new = self.path, self.new, {}
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            merged = self._load(path)  # another process may have written since we read
            for kind, entries in new.items():
                merged.setdefault(kind, {}).update(entries)
            self.entries = merged
            atomic_write(path, lambda f: json.dump({"version": 1, **merged}, f, sort_keys=True), text=True)
        except OSError:
            pass


_disk = _DiskCache()


def _cached(kind: str, path: Path, compute, disk_cache: bool) -> str:
    """``compute()`` for the file at ``path``, cached under its (resolved path, size,
    mtime_ns) unless it was modified within :data:`RACY_SECONDS` or during ``compute``."""
    resolved = Path(path).resolve()
    key = str(resolved)
    before = resolved.stat()
    size, mtime = before.st_size, before.st_mtime_ns
    hit = _memory[kind].get(key)
    if hit is not None and hit[:2] == (size, mtime):
        return hit[2]
    if disk_cache:
        sha = _disk.get(kind, key, size, mtime)
        if sha is not None:
            _memory[kind][key] = (size, mtime, sha)
            return sha
    sha = compute()
    after = resolved.stat()
    settled = time.time_ns() - mtime > RACY_SECONDS * 1e9
    if settled and (after.st_size, after.st_mtime_ns) == (size, mtime):
        _memory[kind][key] = (size, mtime, sha)
        if disk_cache:
            _disk.put(kind, key, size, mtime, sha)
    return sha


def _sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _file_sha256(path: str | os.PathLike, disk_cache: bool) -> str:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist or is not a file")
    return _cached("file", path, lambda: _sha256_of(path), disk_cache)


def file_sha256(path: str | os.PathLike, *, disk_cache: bool = True) -> str:
    """Hex SHA-256 of the bytes of the file at ``path`` (e.g. backbone weights), hashed once
    per process and, with ``disk_cache``, once per machine (see the module docstring).
    Raises ``FileNotFoundError`` naming ``path`` if it is not a file."""
    try:
        return _file_sha256(path, disk_cache)
    finally:
        _disk.flush()


def file_entry(path: Path, disk_cache: bool = True) -> list:
    """``["<last directory>/<file name>", size in bytes, sha256]`` of one listed file."""
    # Last directory and file name: "train/0001TP_006690.png", "SegmentationClass/x.png".
    return [f"{path.parent.name}/{path.name}", path.stat().st_size, _file_sha256(path, disk_cache)]


def pack_sha256(pack, disk_cache: bool = True) -> str:
    """The pack's content SHA-256, cached like a file's."""
    # A pack written with its content hash answers at once; an old one is hashed once.
    return _cached("pack", pack.path, lambda: pack.content_sha256, disk_cache)


def camvid_source_fingerprint(files, size, *, disk_cache: bool = True) -> str:
    """The fingerprint of CamVid read from the ``(image, label)`` PNG pairs ``files`` at
    ``size`` (H, W), labels resized with the images: what a pack made from those files at that
    size records as its source, and equal to :func:`dataset_fingerprint` of
    ``CamVid(root, split, size=size, packed=False)``. Costs a ``stat`` per file once the
    digests are cached (module docstring)."""
    size = [int(s) for s in size]
    desc = {"dataset": "camvid", "size": size, "labels_at": size}
    try:
        desc["images"] = {"files": [file_entry(Path(img), disk_cache) for img, _ in files]}
        desc["labels"] = {"files": [file_entry(Path(lab), disk_cache) for _, lab in files]}
    finally:
        _disk.flush()
    return _hash({"fingerprint": FINGERPRINT_VERSION, **desc})


def _hash(description: dict) -> str:
    text = json.dumps(description, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _voc(name: str, ds, disk_cache: bool) -> dict:
    return {
        "dataset": name,
        "size": None,  # loaded as stored, like the labels
        "labels_at": None,
        "images": {"files": [file_entry(p, disk_cache) for p in ds.images]},
        "labels": {"files": [file_entry(p, disk_cache) for p in ds.labels]},
    }


def _synthetic(ds) -> dict:
    from .synthetic import GENERATOR_VERSION

    return {
        "dataset": "synthetic",
        "generator_version": GENERATOR_VERSION,
        "n": ds.n,
        "size": list(ds.size),
        "seed": ds.seed,
        "split": ds.split,  # each split is its own stream of scenes
    }


def dataset_description(dataset, *, disk_cache: bool = True) -> dict:
    """The JSON-able description that :func:`dataset_fingerprint` hashes (see the module
    docstring); useful to see *what* differs between two fingerprints.

    Raises ``TypeError`` for a dataset this module does not know (wrappers such as
    ``Subset`` included: fingerprint the dataset they wrap).
    """
    from .synthetic import SyntheticScenes
    from .voc import SBDTrainAug, VOCSegmentation

    # CamVid describes itself (CamVid.fingerprint_description): it imports this module to
    # check its packs against their source, so this module cannot import it.
    describe = getattr(dataset, "fingerprint_description", None)
    try:
        if callable(describe):
            desc = describe(disk_cache=disk_cache)
        elif isinstance(dataset, SBDTrainAug):
            desc = _voc("sbd", dataset, disk_cache)
        elif isinstance(dataset, VOCSegmentation):
            desc = _voc("voc", dataset, disk_cache)
        elif isinstance(dataset, SyntheticScenes):
            desc = _synthetic(dataset)
        else:
            raise TypeError(f"no fingerprint for {type(dataset).__name__}: only the datasets "
                            "of refinenet.data (CamVid, VOC, SBD, synthetic) have one")
    finally:
        _disk.flush()
    return {"fingerprint": FINGERPRINT_VERSION, **desc}


def dataset_fingerprint(dataset, *, disk_cache: bool = True) -> str:
    """Hex SHA-256 (64 digits) of :func:`dataset_description` as canonical JSON.

    Cost: the first call on CamVid's three splits from the PNGs hashes 182 MB; later calls in
    the process, or in any process with ``disk_cache``, only stat the files. A pack costs
    nothing when it stores its content hash.
    """
    return _hash(dataset_description(dataset, disk_cache=disk_cache))
