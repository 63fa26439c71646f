#!/usr/bin/env python3
"""Open every page of the built book in headless Chromium and check it.

Usage (after `refinenet study book --strict`):

    python .ci/book_check.py [--html _build/html] [--log-dir DIR] [--root REPO]

Serves the book on 127.0.0.1, opens every HTML page at a 1280 px wide viewport and checks
it. Each rule has a name, which is how a failure is reported:

- ``http``: the page loads (HTTP 200);
- ``javascript``: no uncaught JavaScript error;
- ``image-load``: every image has loaded (``naturalWidth > 0``);
- ``banner``: the banner says which profile and data the page shows;
- ``cell-output``: no executed cell shows a traceback or stderr output;
- ``ablation-table``: pages whose name matches ``--table-pages`` (the ablations) hold a table
  with ``±`` in it;
- ``image-caption``: every image of the page's content (``article.bd-article``: text,
  figures and cell outputs; the theme's logos and icons are outside it) has a caption. An
  image is captioned when

  * it sits in a ``<figure>`` with a non-empty ``<figcaption>`` (Sphinx's ``figure`` and
    MyST-NB's ``glue:figure`` with a caption), or
  * the element that follows it is a caption. The following element is the image's next
    sibling; when the image is the last thing in its block (a ``<p>``, a cell output, the
    cell), the next sibling of that block, climbing no further than the section. It is a
    caption when it is a ``<figcaption>`` or has the class ``caption``, or is a paragraph
    that is wholly emphasised (``*The labels of one example ...*``, the book's Markdown
    convention under a glued figure), or whose text carries the signature of the notebooks'
    ``refinenet.study.report.caption()`` ("... Profile <name> on <hardware>; data: <data>.",
    e.g. shown with ``display(Markdown(caption(study, "...")))`` right after the figure).

  Alt text is not required: the notebooks' figures (``plt.show()`` outputs and glued
  figures) carry none, and Sphinx fills ``alt`` in with the image's file name;
- ``machine-path``: the page's text (every text node of the body outside ``<script>`` and
  ``<style>``, collapsed cells included) holds no absolute path of the build machine: the
  repository root (``--root``, default the parent of ``.ci``), the user's home directory, or
  ``/tmp/``, ``/home/<user>/``, ``/Users/<user>/``, ``/root/``, ``/work/``. A path counts when
  it starts a word (not preceded by a letter, digit, ``.``, ``~``, ``-`` or ``/``, so the path
  part of a URL does not count) or follows ``file://``;
- ``table-nan``: no cell (``<td>``/``<th>``) of a table in the content holds the word ``nan``
  in any case (a whole word: ``nan``, ``NaN``, ``nan%``, ``NaN ± NaN``; not ``financial``);
- ``too-wide``: no table or code block (``<table>``, ``<pre>``, ``.highlight``) of the content
  is wider than the content column at 1280 px: its ``scrollWidth`` exceeds the width of the
  column by more than 2 px. The column is the content box of ``article.bd-article`` (its
  client width less its padding). A cell tagged ``full-width`` is widened by the theme into
  the margin on purpose: inside one, the allowed width is that cell's width. Collapsed blocks
  (``<details>``, e.g. hidden cell inputs) are opened for the measurement and closed again;
  an element inside a wider one already reported is not reported again;
- ``math``: every formula of the content (Sphinx's ``.math`` elements: MyST's ``$...$`` and
  ``$$...$$``) has been typeset by MathJax (holds an ``mjx-container``) once MathJax's
  start-up has finished, rather than shown as raw TeX. The book serves its own MathJax
  (``sphinx-mathjax-offline``), so this holds without a network;
- ``link``: every internal link points at a file that exists, and its ``#anchor`` at an
  element of the target page.

Requests that leave the local server are blocked (CI has no network) and listed. Saves a
full-page screenshot of every page at 1280 px (``book_<page path with / as _>.png``, e.g.
``book_notebooks_01_architecture.png``) and ``book_check.json`` into ``--log-dir`` (CI keeps
it as an artefact); the JSON lists, per page, its screenshot and each rule's failures (an
empty list: the rule passed). Every failure is printed on stdout as ``book_check: PAGE:
[RULE] DETAIL``. Exits 1 when any check fails. Needs the ``playwright`` package and a
Chromium (Debian's ``chromium``: ``--chromium /usr/bin/chromium``); no browser is downloaded.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import json
import re
import sys
import threading
from pathlib import Path
from urllib.parse import unquote, urldefrag, urlparse

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SKIP_DIRS = ("_static", "_sources", "_images", "_sphinx_design_static")
VIEWPORT = {"width": 1280, "height": 1600}
WIDTH_TOLERANCE_PX = 2
MAX_DETAILS = 10  # failures of one rule listed per page; the rest are counted

RULES = {
    "http": "the page loads (HTTP 200)",
    "javascript": "no uncaught JavaScript error",
    "image-load": "every image has loaded",
    "banner": "a banner says which profile and data the page shows",
    "cell-output": "no cell output with a traceback or stderr",
    "ablation-table": "an ablation page holds a table with mean ± std",
    "image-caption": "every image of the content has a caption",
    "machine-path": "no absolute path of the build machine in the page's text",
    "table-nan": "no 'nan' in a table cell",
    "too-wide": "no table or code block wider than the content column at 1280 px",
    "math": "every formula typeset by MathJax, none left as raw TeX",
    "link": "internal links and anchors resolve",
}

# The page's content: the article of sphinx-book-theme, else <main>, else the body.
CONTENT_ROOT = (
    'const root = document.querySelector("article.bd-article") || document.querySelector("main")'
    " || document.body;"
)

WAIT_FOR_IMAGES = """
async () => {
  const images = Array.from(document.images);
  for (const img of images) { img.loading = "eager"; }
  await Promise.all(images.map(img => img.complete ? null :
    new Promise(done => { img.addEventListener("load", done); img.addEventListener("error", done); })));
  await document.fonts.ready;
  return images.filter(img => !(img.naturalWidth > 0)).map(img => img.getAttribute("src"));
}
"""

# Formulas MathJax left as raw TeX, after its start-up (typesetting) has finished.
RAW_MATH = """
async () => {
  """ + CONTENT_ROOT + """
  const maths = Array.from(root.querySelectorAll(".math"));
  if (!maths.length) return [];
  const mj = window.MathJax;
  if (mj && mj.startup && mj.startup.promise) { await mj.startup.promise; }
  return maths.filter(m => !m.querySelector("mjx-container"))
    .map(m => (m.textContent || "").replace(/\\s+/g, " ").trim().slice(0, 60));
}
"""

PAGE_FACTS = """
() => ({
  ids: Array.from(document.querySelectorAll("[id], a[name]")).map(e => e.id || e.getAttribute("name")),
  links: Array.from(document.querySelectorAll("a[href]")).map(a => a.href),
  images: document.images.length,
  banner: (document.querySelector(".bd-header-announcement") || {innerText: ""}).innerText.trim(),
  bad_outputs: Array.from(document.querySelectorAll(".output.stderr, .output.traceback, .output.error"))
    .map(e => e.innerText.slice(0, 200)),
  tables: Array.from(document.querySelectorAll("table")).map(t => t.innerText),
  title: document.title,
})
"""

# The signature of refinenet.study.report.caption(): "... Profile <name> on <hw>; data: <data>."
NOTEBOOK_CAPTION = r"\bProfile \S+ on [^;]+; data: [^.]+"

UNCAPTIONED_IMAGES = r"""
() => {
  """ + CONTENT_ROOT + r"""
  const text = e => (e.textContent || "").replace(/\s+/g, " ").trim();
  const signature = new RegExp(""" + json.dumps(NOTEBOOK_CAPTION) + r""");
  const isCaption = e => {
    if (!e || !text(e)) return false;
    if (e.matches("figcaption, .caption")) return true;
    const only = e.children.length === 1 ? e.children[0] : null;
    if (e.matches("div")) return isCaption(only);  // a wrapper, e.g. a Markdown output's <div><p>
    if (!e.matches("p")) return false;
    if (only && only.matches("em, i") && text(only) === text(e)) return true;  // *A caption.*
    return signature.test(text(e));  // Markdown(caption(study, "..."))
  };
  const following = img => {  // the next sibling of the image, or of the block that ends with it
    let e = img;
    while (!e.nextElementSibling) {
      const up = e.parentElement;
      if (!up || up === root || up.matches("section, article, main, body, figure")) return null;
      e = up;
    }
    return e.nextElementSibling;
  };
  return Array.from(root.querySelectorAll("img")).filter(img => {
    const figure = img.closest("figure");
    if (figure && root.contains(figure)) {
      const caption = figure.querySelector("figcaption");
      return !(caption && text(caption));
    }
    return !isCaption(following(img));
  }).map(img => img.getAttribute("src"));
}
"""

# Every text node of the body, collapsed ones included; not scripts or styles.
PAGE_TEXT = """
() => {
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT, {
    acceptNode: n => n.parentElement && n.parentElement.closest("script, style, noscript, template")
      ? NodeFilter.FILTER_REJECT : NodeFilter.FILTER_ACCEPT,
  });
  const parts = [];
  while (walker.nextNode()) parts.push(walker.currentNode.nodeValue);
  return parts.join(" ");
}
"""

NAN_CELLS = r"""
() => {
  """ + CONTENT_ROOT + r"""
  const text = e => (e.textContent || "").replace(/\s+/g, " ").trim();
  return Array.from(root.querySelectorAll("table")).flatMap((table, t) => {
    const caption = table.caption ? text(table.caption).slice(0, 60) : "";
    return Array.from(table.querySelectorAll("td, th"))
      .filter(cell => /\bnan\b/i.test(text(cell)))
      .map(cell => ({table: t + 1, caption, row: cell.parentElement.rowIndex,
                     cell: text(cell).slice(0, 60)}));
  });
}
"""

TOO_WIDE = r"""
(tolerance) => {
  """ + CONTENT_ROOT + r"""
  const style = getComputedStyle(root);
  const column = root.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
  const closed = Array.from(root.querySelectorAll("details:not([open])"));
  closed.forEach(d => { d.open = true; });
  const reported = [];
  const found = [];
  for (const el of root.querySelectorAll("table, pre, .highlight")) {
    if (reported.some(r => r.contains(el))) continue;
    const wide = el.closest(".tag_full-width, .full-width");
    const allowed = wide && root.contains(wide)
      ? Math.max(column, wide.getBoundingClientRect().width) : column;
    if (el.scrollWidth > allowed + tolerance) {
      reported.push(el);
      const table = el.tagName === "TABLE";
      const hint = table ? (el.caption ? el.caption.textContent : el.textContent) : el.textContent;
      found.push({
        kind: table ? "table" : "code block",
        scroll_width: el.scrollWidth,
        allowed: Math.round(allowed),
        column: Math.round(column),
        full_width_cell: !!wide,
        collapsed: closed.some(d => d.contains(el)),
        text: hint.replace(/\s+/g, " ").trim().slice(0, 60),
      });
    }
  }
  closed.forEach(d => { d.open = false; });
  return found;
}
"""

REDIRECT = re.compile(r'<meta\s+http-equiv="refresh"\s+content="\d+;\s*url=([^"]+)"', re.I)

# A path starts a word (not inside a URL's path or a longer name), or follows file://.
_PATH_START = r"(?:(?<=file://)|(?<![\w.~/-]))"
GENERIC_MACHINE_PATHS = [r"/tmp/", r"/home/[\w.-]+/", r"/Users/[\w.-]+/", r"/root/", r"/work/"]


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # keep the CI log readable
        pass


def serve(folder: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    handler = functools.partial(_Quiet, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


def book_pages(html: Path) -> list[str]:
    return sorted(
        p.relative_to(html).as_posix()
        for p in html.rglob("*.html")
        if not p.relative_to(html).parts[0] in SKIP_DIRS
    )


def screenshot_name(rel: str) -> str:
    """``notebooks/01_architecture.html`` -> ``book_notebooks_01_architecture.png``."""
    return "book_" + rel.replace("/", "_").removesuffix(".html") + ".png"


def _capped(details: list[str]) -> list[str]:
    if len(details) <= MAX_DETAILS:
        return details
    return details[:MAX_DETAILS] + [f"... and {len(details) - MAX_DETAILS} more"]


# --- the rules on one loaded page: each returns the failures' details ---------------------

def uncaptioned_images(page) -> list[str]:
    return _capped([f"image without a caption: {src}" for src in page.evaluate(UNCAPTIONED_IMAGES)])


def machine_path_patterns(root: Path, home: Path | None = None) -> list[re.Pattern]:
    """The absolute paths of the build machine: ``root``, ``home`` and the generic ones."""
    home = Path.home() if home is None else home
    patterns = []
    for path in (root, home):
        path = str(path).rstrip("/")
        if len(path) > 1:  # not "/" itself
            patterns.append(re.compile(_PATH_START + re.escape(path) + r"(?![\w.-])"))
    return patterns + [re.compile(_PATH_START + p) for p in GENERIC_MACHINE_PATHS]


def machine_paths(page, patterns: list[re.Pattern]) -> list[str]:
    text = page.evaluate(PAGE_TEXT)
    found: dict[str, str] = {}  # the path -> the text around its first occurrence
    for pattern in patterns:
        for m in pattern.finditer(text):
            path = re.match(r"[^\s\"'`<>()\[\]{},;]*", text[m.start():]).group(0)
            if path not in found:
                around = " ".join(text[max(0, m.start() - 40):m.start() + len(path) + 40].split())
                found[path] = around
    return _capped([f"absolute path {path!r} in: {around!r}" for path, around in found.items()])


def nan_cells(page) -> list[str]:
    return _capped([
        f"'nan' in table {c['table']}" + (f" ({c['caption']!r})" if c["caption"] else "")
        + f", row {c['row']}: {c['cell']!r}"
        for c in page.evaluate(NAN_CELLS)
    ])


def too_wide(page, tolerance: int = WIDTH_TOLERANCE_PX) -> list[str]:
    return _capped([
        f"{w['kind']} {w['scroll_width']} px wide, the "
        + ("full-width cell" if w["full_width_cell"] and w["allowed"] > w["column"] else "content column")
        + f" {w['allowed']} px" + (" (in a collapsed block)" if w["collapsed"] else "")
        + f": {w['text']!r}"
        for w in page.evaluate(TOO_WIDE, tolerance)
    ])


def page_problems(page, rel: str, *, table_pages: str, path_patterns: list[re.Pattern]) -> tuple[dict, dict]:
    """Run every rule on a loaded page: ``(facts, {rule: [failure details]})``."""
    results: dict[str, list[str]] = {}
    results["image-load"] = [f"image did not load: {src}" for src in page.evaluate(WAIT_FOR_IMAGES)]
    facts = page.evaluate(PAGE_FACTS)
    results["banner"] = [] if facts["banner"] else ["no banner saying which profile and data the page shows"]
    results["cell-output"] = [f"cell output with a traceback or stderr: {t!r}" for t in facts["bad_outputs"]]
    if re.search(table_pages, rel):
        has_table = any("±" in t for t in facts["tables"])
        results["ablation-table"] = [] if has_table else ["no ablation table (a table with mean ± std)"]
    results["image-caption"] = uncaptioned_images(page)
    results["machine-path"] = machine_paths(page, path_patterns)
    results["table-nan"] = nan_cells(page)
    results["too-wide"] = too_wide(page)
    results["math"] = _capped([f"formula shown as raw TeX: {t!r}" for t in page.evaluate(RAW_MATH)])
    return facts, results


def check(html: Path, log_dir: Path, chromium: str, table_pages: str, root: Path,
          home: Path | None = None) -> int:
    from playwright.sync_api import sync_playwright

    pages = book_pages(html)
    if not pages:
        print(f"book_check: no HTML pages under {html}; build the book first", file=sys.stderr)
        return 1
    log_dir.mkdir(parents=True, exist_ok=True)
    patterns = machine_path_patterns(root, home)
    server, base = serve(html)
    results: dict[str, dict[str, list[str]]] = {}  # page -> rule -> failure details
    screenshots: dict[str, str] = {}
    facts: dict[str, dict] = {}
    external: set[str] = set()

    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS, headless=True)
            context = browser.new_context(viewport=VIEWPORT)

            def route(r):
                if r.request.url.startswith(base) or r.request.url.startswith("data:"):
                    return r.continue_()
                external.add(r.request.url)
                return r.abort()

            context.route("**/*", route)
            for rel in pages:
                redirect = REDIRECT.search((html / rel).read_text(encoding="utf-8", errors="replace"))
                if redirect:  # e.g. index.html -> intro.html: only its target must exist
                    facts[rel] = {"ids": [], "links": [base + str(Path(rel).parent / redirect.group(1))],
                                  "images": 0}
                    results[rel] = {}
                    continue
                page = context.new_page()
                errors: list[str] = []
                page.on("pageerror", lambda exc, errors=errors: errors.append(str(exc)))
                response = page.goto(base + rel, wait_until="load")
                if response is None or response.status != 200:
                    results[rel] = {"http": [f"HTTP {response.status if response else 'no response'}"]}
                    page.close()
                    continue
                facts[rel], found = page_problems(page, rel, table_pages=table_pages, path_patterns=patterns)
                javascript = [f"JavaScript error: {e.splitlines()[0]}" for e in errors]
                results[rel] = {"http": [], "javascript": javascript, **found}
                shot = log_dir / screenshot_name(rel)
                page.screenshot(path=str(shot), full_page=True)
                screenshots[rel] = shot.name
                page.close()
            browser.close()
    finally:
        server.shutdown()

    # Internal links: the file must exist; an #anchor must be an id on the target page.
    for rel, f in facts.items():
        broken = results[rel].setdefault("link", [])
        for href in f["links"]:
            if not href.startswith(base):
                continue
            url, anchor = urldefrag(href)
            target = unquote(urlparse(url).path.lstrip("/")) or "index.html"
            if target.endswith("/"):
                target += "index.html"
            if not (html / target).is_file():
                broken.append(f"broken link: {href.removeprefix(base)}")
            elif anchor and target in facts and anchor not in facts[target]["ids"]:
                broken.append(f"broken anchor: {href.removeprefix(base)}")

    return report(log_dir, pages, facts, results, screenshots, external, table_pages)


def report(log_dir: Path, pages: list[str], facts: dict, results: dict, screenshots: dict,
           external: set[str], table_pages: str) -> int:
    """Write book_check.json, print every failure on stdout; 1 when any rule failed."""
    problems = {
        rel: [f"{rule}: {d}" for rule, details in results.get(rel, {}).items() for d in details]
        for rel in pages
    }
    problems = {rel: texts for rel, texts in problems.items() if texts}
    ablation_pages = [p for p in pages if re.search(table_pages, p)]
    failed_rules = sorted({rule for r in results.values() for rule, details in r.items() if details})
    summary = {
        "pages": len(pages),
        "images": sum(f["images"] for f in facts.values()),
        "ablation_pages": ablation_pages,
        "blocked_external_requests": sorted(external),
        "rules": RULES,
        "failed_rules": failed_rules,
        "checks": {rel: {"screenshot": screenshots.get(rel), "rules": results.get(rel, {})} for rel in pages},
        "problems": problems,
    }
    (log_dir / "book_check.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n",
                                             encoding="utf-8")
    print(
        f"book_check: {len(pages)} pages, {summary['images']} images, "
        f"{len(ablation_pages)} ablation pages, {len(external)} external requests blocked, "
        f"{len(screenshots)} screenshots in {log_dir}"
    )
    for rel in sorted(problems):
        for rule, details in results[rel].items():
            for d in details:
                print(f"book_check: {rel}: [{rule}] {d}")
    if problems:
        for rule in failed_rules:
            where = [rel for rel, r in results.items() if r.get(rule)]
            print(f"book_check: rule {rule} ({RULES[rule]}) failed on {len(where)} pages: {', '.join(where)}")
        print(f"book_check: FAILED ({sum(map(len, problems.values()))} problems)", file=sys.stderr)
        return 1
    print("book_check: all pages OK")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--html", type=Path, default=Path("_build/html"))
    p.add_argument("--log-dir", type=Path, default=Path("_build/book-check"))
    p.add_argument("--chromium", default="/usr/bin/chromium", help="the Chromium executable")
    p.add_argument("--table-pages", default=r"ablation", help="regex: pages that must hold an ablation table")
    p.add_argument("--root", type=Path, default=Path(__file__).resolve().parent.parent,
                   help="the repository root, an absolute path no page may show (default: the parent of .ci)")
    args = p.parse_args(argv)
    if not Path(args.chromium).is_file():
        print(f"book_check: no Chromium at {args.chromium} (apt-get install chromium)", file=sys.stderr)
        return 1
    return check(args.html, args.log_dir, args.chromium, args.table_pages, args.root.resolve())


if __name__ == "__main__":
    sys.exit(main())
