"""The banner at the top of every study page."""

from pathlib import Path

from refinenet.study.notebook import Study


def _study(dataset="synthetic", **kwargs):
    return Study(
        "08_performance", "smoke", "cpu", dataset, "CamVid was not found",
        Path("out"), "2 CPU threads", **kwargs,
    )


def test_banner_names_the_profile_data_by_default():
    synthetic = _study().banner_html()
    assert "procedural scene generator" in synthetic and "admonition warning" in synthetic
    camvid = _study("camvid").banner_html()
    assert "<b>Data:</b> CamVid." in camvid and "admonition note" in camvid


def test_banner_names_where_the_numbers_come_from_when_told():
    for dataset in ("synthetic", "camvid"):
        text = _study(dataset, numbers_from="the benchmark files in results/bench").banner_html()
        assert "the benchmark files in results/bench" in text
        assert "generator" not in text and "<b>Data:</b>" not in text
        assert "admonition note" in text and "Profile <b>smoke</b>" in text


def test_other_profiles_leave_out_the_pages_own():
    assert _study().other_profiles == "cpu or gpu"
    cpu = Study("04_ablation_crp", "cpu", "cpu", "camvid", "", Path("out"), "2 CPU threads")
    assert cpu.other_profiles == "smoke or gpu"
    own = Study("04_ablation_crp", "my.yaml", "cpu", "camvid", "", Path("out"), "2 CPU threads")
    assert own.other_profiles == "smoke, cpu or gpu"
