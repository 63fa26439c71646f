"""Model summaries (torchinfo) and multiply-accumulate counts (torch's FLOP counter)."""

from __future__ import annotations

import copy
import re
from collections.abc import Sequence

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

__all__ = ["summary", "summary_text", "count_macs"]


def summary(model: nn.Module, input_size: Sequence[int] = (1, 3, 512, 512), **kwargs):
    """torchinfo summary of ``model`` for an input of ``input_size`` (N, C, H, W).

    Keyword arguments go to ``torchinfo.summary`` (e.g. ``depth``, ``col_names``, ``verbose``).
    Returns torchinfo's ``ModelStatistics``; ``print`` it for the table.
    """
    import torchinfo

    kwargs.setdefault("depth", 3)
    kwargs.setdefault("col_names", ("output_size", "num_params", "mult_adds"))
    kwargs.setdefault("row_settings", ("var_names",))
    kwargs.setdefault("verbose", 0)
    kwargs.setdefault("device", next(model.parameters()).device)
    was_training = model.training
    try:
        return torchinfo.summary(model, input_size=tuple(input_size), mode="eval", **kwargs)
    finally:
        model.train(was_training)


def count_macs(
    model: nn.Module, input_size: Sequence[int] = (1, 3, 512, 512), *, by_module: bool = False
):
    """Multiply-accumulates of one forward pass at ``input_size`` (N, C, H, W).

    Counted by ``torch.utils.flop_counter`` on a copy of the model on the ``meta`` device, so
    nothing is computed and any input size is cheap. Convolutions and matrix products are
    counted (1 MAC = 2 FLOPs); pooling, additions, ReLUs and resizing are not, which is the
    usual convention and is below 1% for RefineNet.

    Returns the total, or with ``by_module=True`` a dict ``{module name: MACs}`` with one entry
    per module of ``named_modules()`` (``""`` is the whole model; parents include children).
    """
    meta_model = copy.deepcopy(model).to("meta").eval()
    x = torch.empty(tuple(input_size), device="meta")
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        meta_model(x)
    if not by_module:
        return counter.get_total_flops() // 2
    prefix = type(meta_model).__name__
    recorded = {}
    for name, ops in counter.get_flop_counts().items():
        key = "" if name in ("Global", prefix) else name.removeprefix(prefix + ".")
        recorded[key] = sum(ops.values()) // 2

    # Containers without a forward of their own (ModuleList) are not recorded: sum children.
    def macs_of(name: str, module: nn.Module) -> int:
        if name in recorded:
            return recorded[name]
        return sum(macs_of(f"{name}.{c}" if name else c, m) for c, m in module.named_children())

    return {name: macs_of(name, m) for name, m in meta_model.named_modules()}


def summary_text(stats) -> str:
    """torchinfo's summary ``stats`` (what :func:`refinenet.summary` returns) as text, with the
    units of its totals as torchinfo means them: "Total mult-adds (G): 8.29".

    torchinfo 1.8 writes a unit by formatting its ``Units`` enum, which Python 3.11 and later
    spell "Units.GIGABYTES" instead of the enum's value "G"; this puts the value back.
    """
    from torchinfo.enums import Units

    def unit(match: re.Match) -> str:
        value = Units[match.group(1)].value
        return f" ({value})" if value else ""

    return re.sub(r" \(Units\.([A-Z]+)\)", unit, str(stats))
