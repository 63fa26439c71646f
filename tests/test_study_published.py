"""The published CamVid rows the book sets beside the study's scores."""

from __future__ import annotations


def test_published_per_class_rows_reproduce_the_published_means():
    from refinenet.data.camvid import CamVid
    from refinenet.study.published import PUBLISHED_CAMVID, PUBLISHED_CAMVID_PER_CLASS

    overall = {m["method"]: m["test mIoU %"] for m in PUBLISHED_CAMVID}
    for method, row in PUBLISHED_CAMVID_PER_CLASS.items():
        assert list(row) == list(CamVid.class_names), method  # our names, our order
        assert abs(sum(row.values()) / len(row) - overall[method]) < 0.05, method
