"""``refinenet model``: build a model and print its summary, parameters and MACs."""

from __future__ import annotations

import argparse


def _parse_floats(text: str) -> tuple[float, ...]:
    return tuple(float(s) for s in text.split(",") if s)


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "model",
        help="print a RefineNet variant's layers, parameters and MACs",
        description="Build a RefineNet variant (random weights) and print its torchinfo summary, "
        "parameter counts and multiply-accumulates.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--backbone", default="resnet101")
    p.add_argument("--num-classes", type=int, default=21)
    p.add_argument("--cascade", type=int, default=4)
    p.add_argument("--scales", type=_parse_floats, default=(1.0,), help="comma-separated, e.g. 1.2,0.6")
    p.add_argument("--crp-blocks", type=int, default=2)
    p.add_argument("--no-crp-relu", dest="crp_relu", action="store_false")
    p.add_argument("--size", type=int, nargs=2, default=(512, 512), metavar=("H", "W"))
    p.add_argument("--depth", type=int, default=2, help="summary depth (0 = totals only)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..summary import count_macs, summary
    from .refinenet import refinenet

    model = refinenet(
        args.backbone,
        args.num_classes,
        cascade=args.cascade,
        scales=args.scales,
        crp_blocks=args.crp_blocks,
        crp_relu=args.crp_relu,
    )
    size = (1, 3, *args.size)
    if args.depth > 0:
        print(summary(model, size, depth=args.depth))
    total = sum(p.numel() for p in model.parameters())
    backbone = sum(p.numel() for p in model.backbones.parameters())
    macs = count_macs(model, size)
    print(f"model:      {model.extra_repr()}")
    print(f"parameters: {total / 1e6:.2f} M ({backbone / 1e6:.2f} M backbone, {(total - backbone) / 1e6:.2f} M decoder)")
    print(f"MACs:       {macs / 1e9:.1f} G at {args.size[0]}x{args.size[1]}")
    return 0
