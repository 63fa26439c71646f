"""The browser check of the built book (``.ci/book_check.py``) on hand-written pages.

Each bad page breaks exactly one rule and must fail that rule only; the clean page, which
holds the allowed forms (captioned figures, a wide table in a full-width cell, a URL with
``/tmp/`` in it, ...), must pass every rule. No Sphinx build: the pages imitate the markup of
sphinx-book-theme and MyST-NB (``article.bd-article``, ``.cell_output``, the banner).
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import os
import struct
import zlib
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path("/srv/ci/checkout/refinenet")  # stands for the repository root of the build machine
HOME = Path("/opt/builder")  # and for its user's home directory


def _load_book_check():
    path = Path(__file__).resolve().parent.parent / ".ci" / "book_check.py"
    spec = importlib.util.spec_from_file_location("book_check", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


book_check = _load_book_check()


def _png(width: int = 8, height: int = 6) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + b"\x80\x40\x20" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


STYLE = """
body { margin: 0; font: 16px/1.5 sans-serif; }
.bd-container { display: flex; }
.bd-sidebar-primary { width: 256px; flex: none; }
main { width: 1024px; flex: none; }
article.bd-article { width: 752px; box-sizing: border-box; padding: 0 32px; }
pre { overflow: auto; margin: 0; }
table { border-collapse: collapse; }
td, th { white-space: nowrap; padding: 0 4px; }
.tag_full-width { width: 936px; }
"""


def page(body: str) -> str:
    """A page in the theme's layout: banner, a sidebar with a logo, the article."""
    return f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>test page</title><style>{STYLE}</style></head>
<body>
<div class="bd-header-announcement"><div class="bd-header-announcement__content">
Profile smoke on cpu; data: the synthetic generator.</div></div>
<div class="bd-container">
<div class="bd-sidebar-primary"><img class="logo" src="img.png"></div>
<main id="main-content"><article class="bd-article" role="main">
<section id="s"><h1>A page</h1>
{body}
</section></article></main></div></body></html>
"""


def cell(output: str, *, tags: str = "") -> str:
    return f"""<div class="cell {tags} docutils container">
<div class="cell_input docutils container"><div class="highlight"><pre>plt.show()</pre></div></div>
<div class="cell_output docutils container">{output}</div></div>"""


IMG = '<img alt="../_images/x.png" src="img.png" />'
PROSE = "<p>The curves show where each recipe stops gaining.</p>"
NOTEBOOK_CAPTION = "<p>Validation mIoU per step. Profile smoke on cpu (2 cores); data: the synthetic generator.</p>"


def table(*cells: str, caption: str = "") -> str:
    row = "".join(f"<td>{c}</td>" for c in cells)
    head = f"<caption>{caption}</caption>" if caption else ""
    return f'<table class="dataframe">{head}<thead><tr><th>arm</th>{"<th>x</th>" * (len(cells) - 1)}' \
           f"</tr></thead><tbody><tr>{row}</tr></tbody></table>"


CLEAN = page(
    # Images with captions: a figure, a wholly emphasised paragraph after a glued figure, the
    # notebooks' caption() in the same cell output, and a Markdown output wrapped in a div.
    f"""<figure class="align-default">{IMG}<figcaption><p><span class="caption-number">Fig. 1 </span>
<span class="caption-text">A figure.</span></p></figcaption></figure>
<p>The figure below shows the labels:</p>
{IMG}
<p><em>The labels of one example, sampled at 1/4 of the resolution (from <a href="#s">here</a>).</em></p>
{cell(IMG + NOTEBOOK_CAPTION)}
{cell(IMG + '<div class="output text_markdown"><p><em>Loss per step.</em></p></div>')}
{PROSE}
""" + table("standard", "61.2 ± 0.4", "financial", "Nanjing", "–", caption="A table. Profile smoke on cpu; data: CamVid.")
    + f"""
<pre>x = 1  # a short line
</pre>
<div class="math notranslate nohighlight"><mjx-container class="MathJax">x</mjx-container></div>
<p>Results go to results/smoke/runs; see https://example.org/tmp/readme and ~/notes.</p>
{cell(table("standard", "x" * 80), tags="tag_full-width")}
<div style="height: 2400px"></div><p>Taller than the viewport (1600 px): the screenshot is full-page.</p>
"""
)

BAD = {  # page -> the one rule it breaks
    "uncaptioned_output.html": ("image-caption", page(cell(IMG) + PROSE)),
    "uncaptioned_figure.html": ("image-caption", page(f'<figure class="align-default">{IMG}</figure>')),
    "uncaptioned_prose.html": ("image-caption", page(f"{IMG}<p>Some <em>text</em> after it.</p>")),
    "path_root.html": ("machine-path", page(f"<p>Written to {ROOT}/results/smoke/x.csv.</p>")),
    "path_home.html": ("machine-path", page(f"<p>The cache is in {HOME}/.cache/refinenet.</p>")),
    "path_tmp.html": ("machine-path", page(
        '<details class="admonition hide above-input"><summary>Show code</summary>'
        "<pre>refinenet bench --runs-dir /tmp/parity/runs</pre></details>")),
    "path_home_user.html": ("machine-path", page('<pre>data = Path("/home/alice/camvid")</pre>')),
    "path_work.html": ("machine-path", page("<p>Read from /work/shared/camvid (file:///work/x).</p>")),
    "nan_value.html": ("table-nan", page(table("standard", "nan"))),
    "nan_pm.html": ("table-nan", page(table("standard", "NaN ± NaN", caption="A caption."))),
    "nan_percent.html": ("table-nan", page(table("standard", "nan%"))),
    "wide_table.html": ("too-wide", page(table("standard", "x" * 80))),
    "wide_code.html": ("too-wide", page(f"<pre>print({'x' * 150!r})</pre>")),
    "wide_full_width.html": ("too-wide", page(cell(table("standard", "x" * 110), tags="tag_full-width"))),
    "raw_math.html": ("math", page('<p>The unit: <span class="math notranslate nohighlight">\\(y = x + f(x)\\)</span>.</p>')),
}


@pytest.fixture(scope="module")
def checked(tmp_path_factory):
    """Run the whole check once on every page: (exit code, book_check.json, stdout, log dir)."""
    pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    if not CHROMIUM.is_file():
        # CI installs Chromium before the tests; REFINENET_REQUIRE_CHROMIUM=1 turns the skip into a failure
        if os.environ.get("REFINENET_REQUIRE_CHROMIUM") == "1":
            pytest.fail(f"REFINENET_REQUIRE_CHROMIUM=1 but there is no Chromium at {CHROMIUM}")
        pytest.skip(f"no Chromium at {CHROMIUM}")
    html = tmp_path_factory.mktemp("html")
    (html / "img.png").write_bytes(_png())
    (html / "clean.html").write_text(CLEAN, encoding="utf-8")
    for name, (_, text) in BAD.items():
        (html / name).write_text(text, encoding="utf-8")
    log_dir = tmp_path_factory.mktemp("log")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        rc = book_check.check(html, log_dir, str(CHROMIUM), "ablation", ROOT, HOME)
    report = json.loads((log_dir / "book_check.json").read_text(encoding="utf-8"))
    return rc, report, out.getvalue(), log_dir


def failed(report: dict, name: str) -> dict[str, list[str]]:
    return {rule: d for rule, d in report["checks"][name]["rules"].items() if d}


def test_clean_page_passes_every_rule(checked):
    rc, report, _, _ = checked
    rules = report["checks"]["clean.html"]["rules"]
    assert failed(report, "clean.html") == {}
    assert {"image-caption", "machine-path", "table-nan", "too-wide"} <= set(rules)
    assert "clean.html" not in report["problems"]


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_page_fails_its_rule_only(checked, name):
    rc, report, stdout, _ = checked
    rule = BAD[name][0]
    assert set(failed(report, name)) == {rule}
    assert f"book_check: {name}: [{rule}] " in stdout
    assert all(p.startswith(f"{rule}: ") for p in report["problems"][name])


def test_failure_details(checked):
    _, report, _, _ = checked
    [root] = failed(report, "path_root.html")["machine-path"]
    assert f"{ROOT}/results/smoke/x.csv" in root and "Written to" in root
    [tmp] = failed(report, "path_tmp.html")["machine-path"]
    assert "/tmp/parity/runs" in tmp
    assert len(failed(report, "path_work.html")["machine-path"]) == 2  # /work/shared/camvid, file:///work/x
    [nan] = failed(report, "nan_pm.html")["table-nan"]
    assert "NaN ± NaN" in nan and "A caption." in nan
    [wide] = failed(report, "wide_table.html")["too-wide"]
    assert wide.startswith("table ") and "content column 688 px" in wide
    [code] = failed(report, "wide_code.html")["too-wide"]
    assert code.startswith("code block ") and "content column 688 px" in code
    [full] = failed(report, "wide_full_width.html")["too-wide"]
    assert "full-width cell 936 px" in full
    assert failed(report, "uncaptioned_output.html")["image-caption"] == ["image without a caption: img.png"]


def test_exit_code_and_screenshots(checked):
    rc, report, stdout, log_dir = checked
    assert rc == 1
    assert set(report["failed_rules"]) == {rule for rule, _ in BAD.values()}
    for name in ["clean.html", *BAD]:
        shot = log_dir / report["checks"][name]["screenshot"]
        assert shot.name == book_check.screenshot_name(name) == "book_" + name.removesuffix(".html") + ".png"
        width, height = struct.unpack(">II", shot.read_bytes()[16:24])
        assert width == 1280
        if name == "clean.html":  # taller than the 1600 px viewport
            assert height > 2400
    assert "book_check: rule too-wide" in stdout


@pytest.mark.parametrize(
    "text, found",
    [
        ("--runs-dir /tmp/parity/runs", "/tmp/parity/runs"),
        ('Path("/home/alice/x")', "/home/alice/x"),
        ("see file:///work/x.html", "/work/x.html"),
        (f"in {ROOT}/results", f"{ROOT}/results"),
        (f"in {ROOT}", f"{ROOT}"),
        (f"in {HOME}/.cache", f"{HOME}/.cache"),
        ("/root/.cache/torch", "/root/.cache/torch"),
        ("https://example.org/tmp/x", None),
        ("results/tmp/x and ~/work/x", None),
        (f"{ROOT}-old/x", None),
        ("/homework/ and /tmpfs", None),
    ],
)
def test_machine_path_patterns(text, found):
    patterns = book_check.machine_path_patterns(ROOT, HOME)
    hits = [m for p in patterns for m in p.finditer(text)]
    if found is None:
        assert hits == []
    else:
        assert hits and text[hits[0].start():].startswith(found)
