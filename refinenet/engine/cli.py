"""``refinenet train``, ``refinenet evaluate`` and ``refinenet predict``.

::

    refinenet train CONFIG.yaml [key=value ...] [--resume] [--force] [--device D] [--print-config]
    torchrun --nproc_per_node=2 -m refinenet train CONFIG.yaml [key=value ...]
    refinenet evaluate RUN_DIR|CHECKPOINT [--split test] [--scales 0.4,0.6,0.8,1.0,1.2] [--flip]
    refinenet predict IMAGE ... --checkpoint C --out DIR [--scales ...] [--flip]
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import math
import os
import sys
import warnings


def _floats(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(s) for s in text.split(",") if s.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, e.g. 0.4,0.6,0.8,1.0,1.2; got {text!r}") from None
    if not values or any(v <= 0 for v in values):
        raise argparse.ArgumentTypeError(f"scales must be positive numbers, got {text!r}")
    return values


def _split_args(items: list[str], what: str) -> tuple[str | None, list[str]]:
    """Positional words: at most one path, the rest ``key=value`` overrides."""
    from ..errors import CommandError

    paths = [s for s in items if "=" not in s]
    overrides = [s for s in items if "=" in s]
    if len(paths) > 1:
        raise CommandError(f"expected one {what} and key=value overrides, got {len(paths)} paths: {', '.join(paths)}")
    return (paths[0] if paths else None), overrides


def _train_options(p: argparse.ArgumentParser, remainder: bool = False) -> None:
    p.add_argument(
        "args",
        nargs=argparse.REMAINDER if remainder else "*",
        metavar="CONFIG [key=value ...]",
        help="a YAML config, then overrides such as optim.lr=0.01 (options may come anywhere)",
    )
    p.add_argument("--resume", action="store_true", help="continue the partial run in the run directory from its checkpoint")
    p.add_argument("--force", action="store_true", help="retrain even if a finished run of this config exists")
    p.add_argument("--device", default=None, help="auto, cpu, cuda or cuda:N (the same as the override device=...)")
    p.add_argument("--print-config", action="store_true", help="print the resolved config (every key) and exit")


def _evaluate_options(p: argparse.ArgumentParser, remainder: bool = False) -> None:
    p.add_argument(
        "args",
        nargs=argparse.REMAINDER if remainder else "*",
        metavar="CHECKPOINT|RUN_DIR [key=value ...]",
        help="a checkpoint .pt or run directory, then overrides of its training config",
    )
    p.add_argument("--checkpoint", help="the checkpoint (alternative to the positional path)")
    p.add_argument("--split", default=None, help="data split (default: the run's validation split)")
    p.add_argument("--root", default=None, help="data root, if not the one used for training")
    p.add_argument("--scales", type=_floats, default=(1.0,), help="comma-separated input scales whose softmax is averaged")
    p.add_argument("--flip", action="store_true", help="also average the horizontally flipped prediction")
    p.add_argument("--no-boundary", dest="boundary", action="store_false", help="skip boundary IoU")
    p.add_argument("--batch-size", type=int, default=1)
    p.add_argument("--device", default="auto")
    p.add_argument("--amp", default=None, choices=("none", "bf16", "fp16"),
                   help="autocast for evaluation (default: the run's own precision)")
    p.add_argument("--json", dest="json_out", default=None, help="also write the full result to this JSON file")


def _reparse(args: argparse.Namespace, prog: str) -> argparse.Namespace:
    """Options after the first positional word land in ``args.args`` (argparse cannot mix a
    variable-length positional list with options); parse that remainder again, intermixed."""
    parser = argparse.ArgumentParser(prog=f"refinenet {prog}")
    args.options(parser)
    rest = parser.parse_intermixed_args(args.args)
    merged = vars(args).copy()
    defaults = vars(parser.parse_args([]))
    for key, value in vars(rest).items():
        if key == "args" or value != defaults.get(key):
            merged[key] = value
    return argparse.Namespace(**merged)


def _one_line_write_errors(command):
    """Report the engine's write failures (disk full, read-only folder) as one line: they
    are ``OSError``s, which the entry point would otherwise show as a traceback."""

    @functools.wraps(command)
    def wrapper(args: argparse.Namespace) -> int:
        from ..errors import CommandError
        from .checkpoint import NotWritableError, WriteError

        try:
            return command(args)
        except (WriteError, NotWritableError) as err:
            raise CommandError(str(err)) from err

    return wrapper


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "train",
        help="train a RefineNet (config YAML + key=value overrides)",
        description="Train one run. The run directory (<out_dir>/<name or dataset-backbone-hash>) gets "
        "config.yaml, checkpoint.pt, history/, summary.json and metrics.json. A finished run with the "
        "same config is reused unless --force. Under torchrun, trains with DistributedDataParallel.",
    )
    _train_options(p, remainder=True)
    p.set_defaults(func=_one_line_write_errors(run_train), options=_train_options)

    p = subparsers.add_parser(
        "evaluate",
        help="evaluate a checkpoint or run directory (mIoU, per-class IoU, boundary IoU)",
        description="Evaluate a checkpoint on a split of the data it was trained on. key=value overrides "
        "change the stored training config (e.g. data.root=..., data.size=[360,480]).",
    )
    _evaluate_options(p, remainder=True)
    p.set_defaults(func=_one_line_write_errors(run_evaluate), options=_evaluate_options)

    p = subparsers.add_parser(
        "predict",
        help="predict image files: colourised masks and overlays",
        description="Write NAME_mask.png, NAME_overlay.png and NAME_labels.png for each image "
        "(NAME: the file's stem; inputs that share a stem keep their suffix and parent directories, "
        "e.g. a__x.png, so no output overwrites another).",
    )
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files or directories of images")
    p.add_argument("--checkpoint", required=True, help="a checkpoint .pt or a run directory")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--scales", type=_floats, default=(1.0,))
    p.add_argument("--flip", action="store_true")
    p.add_argument("--native-size", action="store_true", help="predict at each image's own size, not the training resolution")
    p.add_argument("--device", default="auto")
    p.set_defaults(func=_one_line_write_errors(run_predict))


def run_train(args: argparse.Namespace) -> int:
    from ..errors import CommandError
    from .config import TrainConfig, load_config
    from .trainer import NonFiniteLossError, train

    args = _reparse(args, "train")
    path, overrides = _split_args(args.args, "config file")
    if args.device is not None:
        overrides.append(f"device={args.device}")  # validated with the config
    if path is None:
        if not args.print_config:
            raise CommandError("give a config file, e.g. refinenet train configs/camvid-cpu.yaml (--print-config shows every key)")
        cfg = TrainConfig().replace(overrides)
    else:
        cfg = load_config(path, overrides)
    if args.print_config:
        print(cfg.to_yaml(), end="")
        return 0
    try:
        run = train(cfg, resume=args.resume, force=args.force)
    except NonFiniteLossError as err:
        raise CommandError(str(err)) from err
    from .distributed import from_env

    if from_env().is_main:
        verb = "found finished run" if run.reused else "finished"
        print(f"{verb}: {run.dir}")
        print(_summary_line(run.metrics))
    return 0


def _pct(x: float) -> str:
    return "  n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:5.1f}"


def _summary_line(m: dict) -> str:
    line = f"{m.get('split') or 'val'}: mIoU {_pct(m['miou'])}  pixel acc {_pct(m['pixel_accuracy'])}  mean class acc {_pct(m['mean_class_accuracy'])}"
    if "boundary_iou" in m:
        line += f"  boundary IoU {_pct(m['boundary_iou'])}"
    return line


def _table(m: dict) -> str:
    names = m.get("class_names") or [str(i) for i in range(len(m["iou"]))]
    width = max(8, max(len(n) for n in names))
    has_b = "boundary_iou_per_class" in m
    lines = [f"{'class':<{width}}   IoU  " + (" bIoU" if has_b else "")]
    for i, name in enumerate(names):
        row = f"{name:<{width}} {_pct(m['iou'][i])}"
        if has_b:
            row += f" {_pct(m['boundary_iou_per_class'][i])}"
        lines.append(row)
    return "\n".join(lines)


def run_evaluate(args: argparse.Namespace) -> int:
    from ..errors import CommandError
    from ..models import RefineNet
    from .checkpoint import atomic_write_json, load_weights, read_checkpoint
    from .config import TrainConfig
    from .data import build_eval_set
    from .evaluation import evaluate

    args = _reparse(args, "evaluate")
    path, overrides = _split_args(args.args, "checkpoint or run directory")
    if args.checkpoint and path:
        raise CommandError("give the checkpoint either positionally or with --checkpoint, not both")
    path = args.checkpoint or path
    if path is None:
        raise CommandError("give a checkpoint or run directory, e.g. refinenet evaluate runs/NAME")
    from .checkpoint import check_writable_dir
    from .precision import check_device_name

    # Cheap checks first: evaluating takes minutes, the result must have somewhere to go.
    check_device_name(args.device)
    if args.json_out:
        check_writable_dir(os.path.dirname(os.path.abspath(args.json_out)), f"--json {args.json_out}: folder", "choose another path")
    state = read_checkpoint(path)
    cfg = TrainConfig.from_saved(state["train_config"]).replace(overrides)
    _check_eval_dataset(state, cfg)
    # the checkpoint's weights replace the backbone's, so its initial weights are not read
    arch = dataclasses.replace(cfg.model, num_classes=state["dataset_info"]["num_classes"], backbone_weights=None)
    model = RefineNet(arch)
    load_weights(model, state)  # a different architecture (model.* overrides) fails here
    try:
        dataset = build_eval_set(cfg, args.split, args.root)
    except TypeError as err:  # the data.options of one dataset given to another
        raise CommandError(
            f"data.options {dict(cfg.data.options)} do not fit dataset {cfg.data.dataset!r} ({err}); "
            f"override data.options too (e.g. data.options={{}})"
        ) from None
    from .precision import resolve_precision

    device = _device(args.device)
    run_precision = resolve_precision(cfg.precision, device)  # the run's own
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # skipped scales are printed below instead
        result = evaluate(
            model.to(device),
            dataset,
            split=args.split or cfg.data.val_split,
            scales=args.scales,
            flip=args.flip,
            boundary=args.boundary,
            batch_size=args.batch_size,
            amp=args.amp or run_precision.amp,
            channels_last=run_precision.channels_last if args.amp is None else False,
            progress=sys.stderr.isatty(),
        )
    print(_table(result))
    print(_summary_line(result) + f"  ({result['images']} images, scales {list(args.scales)}{', flip' if args.flip else ''})")
    if result["skipped_scales"]:
        print(f"note: {result['skipped_scales']} image-scale pairs skipped (below 32 px)")
    if args.json_out:
        atomic_write_json(args.json_out, result)
    return 0


def _check_eval_dataset(state: dict, cfg) -> None:
    """A checkpoint can only be scored on data with the classes it was trained on (a
    ``data.dataset`` override may name a data set with other classes)."""
    from ..data import dataset_class
    from ..errors import CommandError

    info = state.get("dataset_info") or {}
    trained_on = info.get("name") or (state.get("train_config") or {}).get("data", {}).get("dataset")
    if not info.get("class_names") or cfg.data.dataset == trained_on:
        return
    names = list(getattr(dataset_class(cfg.data.dataset), "class_names", []) or [])
    if names != list(info["class_names"]):
        raise CommandError(
            f"checkpoint {state.get('path')} was trained on {trained_on!r} ({len(info['class_names'])} "
            f"classes), but data.dataset={cfg.data.dataset} has other classes ({len(names)}); evaluate "
            f"it on {trained_on!r} (drop the data.dataset override)"
        )


def _device(name: str):
    from .precision import resolve_device

    return resolve_device(name)


def run_predict(args: argparse.Namespace) -> int:
    from .checkpoint import check_writable_dir
    from .precision import check_device_name
    from .predict import image_inputs, output_names, predict_files

    # A bad device or output folder fails before anything is read.
    check_device_name(args.device)
    check_writable_dir(args.out, "output folder", "choose another --out")
    paths = image_inputs(args.images)
    written = predict_files(
        paths,
        args.checkpoint,
        args.out,
        scales=args.scales,
        flip=args.flip,
        size=None if args.native_size else "train",
        device=args.device,
    )
    renamed = [f"{p} -> {n}_*.png" for p, n in zip(paths, output_names(paths)) if n != p.stem]
    if renamed:  # say where the outputs of inputs with a shared stem went
        print(f"note: {len(renamed)} inputs share a file stem; named by suffix and directory: " + ", ".join(renamed))
    print(f"wrote {len(set(written))} files ({len(paths)} images) to {args.out}")
    return 0
