"""What one training step of a run costs, for timing an arm this machine has not trained yet.

A new arm's first run used to be timed at the median pace of the other arms, so the 2-scale
model and the capacity control (two backbones each) were estimated at about 60% of the time
they took, and ``--time-budget`` could start a run that did not fit. Seconds per step follow
the forward multiply-accumulates of one training batch closely: on the `cpu` ledger's study
arms (180 x 240, one thread of two on a 2-core AMD EPYC, family 25 model 17), 0.048 to 0.058 s
per GMAC, while the arms' paces span 0.33 to 0.75 s per step. So
:func:`~refinenet.study.plan.estimate_seconds` scales the other arms' paces by
:func:`step_macs` of the new arm over theirs.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

__all__ = ["step_macs"]

_NATIVE = (360, 480)  # CamVid's image size, for a config without a size or a crop


def step_macs(cfg: Any) -> int:
    """Forward MACs of one training batch of ``cfg`` (a :class:`~refinenet.engine.TrainConfig`):
    ``data.batch_size`` crops of ``data.crop_size`` (else images of ``data.size``). Counted on
    the ``meta`` device (:func:`refinenet.count_macs`), once per model and input."""
    h, w = cfg.data.crop_size or cfg.data.size or _NATIVE
    model = {k: v for k, v in cfg.model.to_dict().items() if k != "backbone_weights"}
    return _macs(json.dumps(model, sort_keys=True), (int(cfg.data.batch_size), 3, int(h), int(w)))


@lru_cache(maxsize=None)
def _macs(model_json: str, input_size: tuple[int, int, int, int]) -> int:
    from ..models import RefineNet, RefineNetConfig
    from ..summary import count_macs

    fields = json.loads(model_json)
    fields["num_classes"] = fields.get("num_classes") or 11  # the head is a sliver of the cost
    return count_macs(RefineNet(RefineNetConfig(**fields)), input_size)
