"""Segmentation metrics from a dataset-level confusion matrix, and boundary IoU.

Everything is accumulated over the whole dataset before dividing (the standard protocol: a
class's IoU is its total intersection over its total union, not a mean of per-image IoUs).
Pixels whose label is the ignore index are excluded everywhere.

Confusion matrix convention: ``confusion[t, p]`` counts pixels of true class ``t`` predicted
as ``p`` (rows: truth, columns: prediction). From it:

- IoU of class c: ``C[c,c] / (row_c + col_c - C[c,c])``; mIoU: mean over classes whose union
  is non-empty (a class absent from both truth and prediction is NaN and left out);
- pixel accuracy: ``trace / total``;
- mean class accuracy: mean over classes present in the truth of ``C[c,c] / row_c``.

Boundary IoU (Cheng, Girshick, Dollar, Berg, Kirillov, "Boundary IoU: Improving Object-Centric
Image Segmentation Evaluation", CVPR 2021): for each class, the IoU of the parts of the truth
mask and of the predicted mask that lie within ``d`` pixels of their own contours, with
``d = max(1, round(0.02 * image diagonal))``. The contour band of a mask ``M`` is
``M - erode(M, d)`` with a (2d+1)x(2d+1) square and the image border counting as background,
exactly as the reference ``mask_to_boundary`` (zero-pad by one pixel, erode d times with a 3x3
kernel). Bands are computed on the full masks; pixels with the ignore label are then left out
of the counts. Intersections and unions are summed over the dataset per class.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "confusion_matrix",
    "scores_from_confusion",
    "ConfusionMatrix",
    "boundary_band",
    "boundary_dilation",
    "label_band",
    "BoundaryIoU",
    "boundary_iou",
    "SegmentationMetrics",
]

BOUNDARY_DILATION_RATIO = 0.02


def _check_pair(pred: Tensor, target: Tensor, num_classes: int, ignore_index: int | None) -> None:
    if pred.shape != target.shape:
        raise ValueError(
            f"prediction {tuple(pred.shape)} and target {tuple(target.shape)} must have the same "
            f"shape (class indices, e.g. logits.argmax(1) against the (N, H, W) mask)"
        )
    if pred.is_floating_point() or target.is_floating_point():
        raise ValueError("prediction and target must hold integer class indices, not floats (take argmax of logits)")
    if target.numel():
        valid = target if ignore_index is None else target[target != ignore_index]
        if valid.numel() and (int(valid.min()) < 0 or int(valid.max()) >= num_classes):
            raise ValueError(
                f"target holds labels outside [0, {num_classes}) that are not the ignore index "
                f"{ignore_index}: min {int(valid.min())}, max {int(valid.max())}"
            )


def confusion_matrix(pred: Tensor, target: Tensor, num_classes: int, ignore_index: int | None = None) -> Tensor:
    """Confusion matrix ``(num_classes, num_classes)``, int64, rows = truth, columns = prediction.

    ``pred`` and ``target``: integer tensors of the same shape (any, e.g. ``(N, H, W)``).
    Pixels with ``target == ignore_index`` are excluded; predictions outside ``[0, C)`` count
    as errors against no class (they are dropped from the columns but kept out of the diagonal:
    such pixels cannot occur for ``argmax`` predictions).
    """
    _check_pair(pred, target, num_classes, ignore_index)
    pred = pred.reshape(-1).long()
    target = target.reshape(-1).long()
    keep = (pred >= 0) & (pred < num_classes)
    if ignore_index is not None:
        keep &= target != ignore_index
    index = target[keep] * num_classes + pred[keep]
    return torch.bincount(index, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def _nanmean(values: Tensor) -> float:
    values = values[~torch.isnan(values)]
    return float(values.mean()) if values.numel() else float("nan")


def scores_from_confusion(confusion: Tensor, class_names: Sequence[str] | None = None) -> dict:
    """mIoU, per-class IoU, pixel accuracy and mean class accuracy from a confusion matrix.

    Returns a dict of plain Python values: ``miou``, ``iou`` (list, NaN for a class absent from
    both truth and prediction), ``pixel_accuracy``, ``mean_class_accuracy``, ``class_accuracy``
    (list, NaN for a class absent from the truth), ``pixels`` (labelled pixels counted), and
    ``class_names`` when given. Values are fractions in [0, 1].
    """
    c = confusion.detach().to("cpu", torch.float64)
    tp = c.diag()
    truth = c.sum(1)
    predicted = c.sum(0)
    union = truth + predicted - tp
    nan = torch.tensor(float("nan"), dtype=torch.float64)
    iou = torch.where(union > 0, tp / union.clamp(min=1), nan)
    class_acc = torch.where(truth > 0, tp / truth.clamp(min=1), nan)
    total = c.sum()
    out = {
        "miou": _nanmean(iou),
        "iou": iou.tolist(),
        "pixel_accuracy": float(tp.sum() / total) if total > 0 else float("nan"),
        "mean_class_accuracy": _nanmean(class_acc),
        "class_accuracy": class_acc.tolist(),
        "pixels": int(total),
    }
    if class_names is not None:
        out["class_names"] = list(class_names)
    return out


class ConfusionMatrix:
    """Accumulates a confusion matrix over batches; ``compute()`` gives :func:`scores_from_confusion`.

    >>> cm = ConfusionMatrix(num_classes=3, ignore_index=255)
    >>> cm.update(logits.argmax(1), masks)        # (N, H, W) each  # doctest: +SKIP
    >>> cm.compute()["miou"]                       # doctest: +SKIP
    """

    def __init__(self, num_classes: int, ignore_index: int | None = None, device: torch.device | str = "cpu") -> None:
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.matrix = torch.zeros(num_classes, num_classes, dtype=torch.int64, device=device)

    def update(self, pred: Tensor, target: Tensor) -> None:
        self.matrix += confusion_matrix(pred, target.to(pred.device), self.num_classes, self.ignore_index).to(
            self.matrix.device
        )

    def compute(self, class_names: Sequence[str] | None = None) -> dict:
        return scores_from_confusion(self.matrix, class_names)


# -- boundary IoU ----------------------------------------------------------------------------


def boundary_dilation(height: int, width: int, ratio: float = BOUNDARY_DILATION_RATIO) -> int:
    """Band width in pixels: ``max(1, round(ratio * sqrt(H^2 + W^2)))`` (Cheng et al.)."""
    return max(1, int(round(ratio * math.sqrt(height * height + width * width))))


def boundary_band(masks: Tensor, dilation: int) -> Tensor:
    """Inner contour band of binary masks: ``mask AND NOT erode(mask, dilation)``.

    ``masks``: bool ``(..., H, W)``. Erosion uses a (2d+1)x(2d+1) square (Chebyshev distance
    ``d``) and treats everything outside the image as background, so a mask touching the image
    border has a band along it (as the reference implementation, which zero-pads). The square
    is applied as two 1-D max-pools (rows then columns), which is the same operation.
    Returns bool of the same shape.
    """
    if dilation < 1:
        raise ValueError(f"dilation must be >= 1 pixel, got {dilation}")
    shape = masks.shape
    x = (~masks).reshape(-1, 1, *shape[-2:]).to(torch.float32)  # background = 1
    d = dilation
    # Erosion of the mask = dilation of the background; pad with background (1) outside.
    x = F.max_pool2d(F.pad(x, (d, d, 0, 0), value=1.0), kernel_size=(1, 2 * d + 1), stride=1)
    x = F.max_pool2d(F.pad(x, (0, 0, d, d), value=1.0), kernel_size=(2 * d + 1, 1), stride=1)
    eroded = (x == 0).reshape(shape)
    return masks & ~eroded


def label_band(labels: Tensor, dilation: int) -> Tensor:
    """The contour bands of every class of a label map at once.

    ``labels``: integer ``(..., H, W)``. A pixel is in the band of its own class when some pixel
    within Chebyshev distance ``dilation`` has another label or lies outside the image, which is
    exactly when it is in ``boundary_band(labels == its label, dilation)``: so the band of class
    ``c`` is ``(labels == c) & label_band(labels, dilation)`` for every ``c`` at once, for the
    cost of two separable max-pools instead of one erosion per class. Returns bool, same shape.
    """
    if dilation < 1:
        raise ValueError(f"dilation must be >= 1 pixel, got {dilation}")
    shape = labels.shape
    x = labels.reshape(-1, 1, *shape[-2:]).to(torch.float32)  # labels < 2**24: exact in float32
    d, outside = dilation, float(2**24)  # outside the image: a label no pixel has

    def window_max(t: Tensor) -> Tensor:
        t = F.max_pool2d(F.pad(t, (d, d, 0, 0), value=outside), kernel_size=(1, 2 * d + 1), stride=1)
        return F.max_pool2d(F.pad(t, (0, 0, d, d), value=outside), kernel_size=(2 * d + 1, 1), stride=1)

    # min <= label <= max over the window; it holds one label only if both equal the label
    # (a window reaching outside the image has max = outside).
    uniform = (window_max(x) == x) & (window_max(-x) == -x)
    return ~uniform.reshape(shape)


class BoundaryIoU:
    """Accumulates per-class boundary intersections and unions over a dataset.

    ``update(pred, target)`` takes integer ``(N, H, W)`` (or ``(H, W)``) predictions and labels;
    the band width is computed from each image's own size. ``compute()`` returns
    ``{"boundary_iou": mean over classes with a non-empty union, "boundary_iou_per_class": [...]}``.
    """

    def __init__(
        self,
        num_classes: int,
        ignore_index: int | None = None,
        dilation_ratio: float = BOUNDARY_DILATION_RATIO,
        device: torch.device | str = "cpu",
    ) -> None:
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.dilation_ratio = dilation_ratio
        self.intersection = torch.zeros(num_classes, dtype=torch.int64, device=device)
        self.union = torch.zeros(num_classes, dtype=torch.int64, device=device)

    def update(self, pred: Tensor, target: Tensor) -> None:
        target = target.to(pred.device)
        _check_pair(pred, target, self.num_classes, self.ignore_index)
        if pred.dim() == 2:
            pred, target = pred[None], target[None]
        height, width = pred.shape[-2:]
        d = boundary_dilation(height, width, self.dilation_ratio)
        valid = torch.ones_like(target, dtype=torch.bool) if self.ignore_index is None else target != self.ignore_index
        # The band of class c is (label == c) & label_band(labels): one band per label map
        # instead of one per class (see label_band), counted per class with bincount.
        gt_band = label_band(target, d) & valid
        pr_band = label_band(pred, d) & valid
        n = self.num_classes
        both = gt_band & pr_band & (pred == target)
        inter = torch.bincount(target[both].long(), minlength=n)[:n]
        gt = torch.bincount(target[gt_band].long(), minlength=n)[:n]
        pr = torch.bincount(pred[pr_band].long(), minlength=n)[:n]
        self.intersection += inter.to(self.intersection.device)
        self.union += (gt + pr - inter).to(self.union.device)

    def compute(self) -> dict:
        inter = self.intersection.cpu().double()
        union = self.union.cpu().double()
        per_class = torch.where(union > 0, inter / union.clamp(min=1), torch.tensor(float("nan"), dtype=torch.float64))
        return {"boundary_iou": _nanmean(per_class), "boundary_iou_per_class": per_class.tolist()}


def boundary_iou(
    pred: Tensor,
    target: Tensor,
    num_classes: int,
    ignore_index: int | None = None,
    dilation_ratio: float = BOUNDARY_DILATION_RATIO,
) -> dict:
    """Boundary IoU of one batch (see :class:`BoundaryIoU` and the module docstring)."""
    acc = BoundaryIoU(num_classes, ignore_index, dilation_ratio, device=pred.device)
    acc.update(pred, target)
    return acc.compute()


class SegmentationMetrics:
    """Confusion-matrix metrics plus (optionally) boundary IoU, accumulated together.

    ``compute()`` returns the keys of :func:`scores_from_confusion` plus ``boundary_iou`` and
    ``boundary_iou_per_class`` when ``boundary=True``.
    """

    def __init__(
        self,
        num_classes: int,
        ignore_index: int | None = None,
        *,
        boundary: bool = True,
        class_names: Sequence[str] | None = None,
        device: torch.device | str = "cpu",
    ) -> None:
        self.class_names = list(class_names) if class_names is not None else None
        self.confusion = ConfusionMatrix(num_classes, ignore_index, device=device)
        self.boundary = BoundaryIoU(num_classes, ignore_index, device=device) if boundary else None

    def update(self, pred: Tensor, target: Tensor) -> None:
        self.confusion.update(pred, target)
        if self.boundary is not None:
            self.boundary.update(pred, target)

    def counts(self) -> list[Tensor]:
        """The int64 count tensors themselves (not copies): summed in place over processes
        (``group.sum``), they give the metrics of all the processes' images, exactly."""
        extra = [self.boundary.intersection, self.boundary.union] if self.boundary is not None else []
        return [self.confusion.matrix, *extra]

    def compute(self) -> dict:
        out = self.confusion.compute(self.class_names)
        if self.boundary is not None:
            out.update(self.boundary.compute())
        out["confusion"] = self.confusion.matrix.cpu().tolist()
        return out
