#!/usr/bin/env python3
"""Open every page of the built book in headless Chromium and check it.

Usage (after `refinenet study book --strict`):

    python .ci/book_check.py [--html _build/html] [--log-dir DIR]

Serves the book on 127.0.0.1 and, for every HTML page, checks that

- the page loads (HTTP 200, no uncaught JavaScript error);
- every image has loaded (``naturalWidth > 0``);
- the banner says which profile and data the page shows;
- no executed cell shows a traceback or stderr output;
- every internal link points at a file that exists, and its ``#anchor`` at an element of the
  target page;
- pages whose name matches ``--table-pages`` (the ablations) hold a table with ``±`` in it.

Requests that leave the local server are blocked (CI has no network) and listed. Saves
screenshots and ``book_check.json`` into ``--log-dir`` (CI keeps it as an artefact). Exits
1 when any check fails. Needs the ``playwright`` package and a Chromium (Debian's
``chromium``: ``--chromium /usr/bin/chromium``); no browser is downloaded.
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

WAIT_FOR_IMAGES = """
async () => {
  const images = Array.from(document.images);
  for (const img of images) { img.loading = "eager"; }
  await Promise.all(images.map(img => img.complete ? null :
    new Promise(done => { img.addEventListener("load", done); img.addEventListener("error", done); })));
  return images.filter(img => !(img.naturalWidth > 0)).map(img => img.getAttribute("src"));
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


REDIRECT = re.compile(r'<meta\s+http-equiv="refresh"\s+content="\d+;\s*url=([^"]+)"', re.I)


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


def check(html: Path, log_dir: Path, chromium: str, table_pages: str, screenshots: list[str]) -> int:
    from playwright.sync_api import sync_playwright

    pages = book_pages(html)
    if not pages:
        print(f"book_check: no HTML pages under {html}; build the book first", file=sys.stderr)
        return 1
    log_dir.mkdir(parents=True, exist_ok=True)
    server, base = serve(html)
    problems: dict[str, list[str]] = {}
    facts: dict[str, dict] = {}
    external: set[str] = set()

    def problem(page: str, text: str) -> None:
        problems.setdefault(page, []).append(text)

    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS, headless=True)
            context = browser.new_context(viewport={"width": 1280, "height": 1600})

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
                    continue
                page = context.new_page()
                errors: list[str] = []
                page.on("pageerror", lambda exc, errors=errors: errors.append(str(exc)))
                response = page.goto(base + rel, wait_until="load")
                if response is None or response.status != 200:
                    problem(rel, f"HTTP {response.status if response else 'no response'}")
                    page.close()
                    continue
                for src in page.evaluate(WAIT_FOR_IMAGES):
                    problem(rel, f"image did not load: {src}")
                f = page.evaluate(PAGE_FACTS)
                facts[rel] = f
                for e in errors:
                    problem(rel, f"JavaScript error: {e.splitlines()[0]}")
                if not f["banner"]:
                    problem(rel, "no banner saying which profile and data the page shows")
                for text in f["bad_outputs"]:
                    problem(rel, f"cell output with a traceback or stderr: {text!r}")
                if re.search(table_pages, rel) and not any("±" in t for t in f["tables"]):
                    problem(rel, "no ablation table (a table with mean ± std)")
                if rel in screenshots:
                    shot = log_dir / ("book_" + rel.replace("/", "_").removesuffix(".html") + ".png")
                    page.screenshot(path=str(shot))
                    print(f"book_check: screenshot {shot}")
                page.close()
            browser.close()
    finally:
        server.shutdown()

    # Internal links: the file must exist; an #anchor must be an id on the target page.
    for rel, f in facts.items():
        for href in f["links"]:
            if not href.startswith(base):
                continue
            url, anchor = urldefrag(href)
            target = unquote(urlparse(url).path.lstrip("/")) or "index.html"
            if target.endswith("/"):
                target += "index.html"
            if not (html / target).is_file():
                problem(rel, f"broken link: {href.removeprefix(base)}")
            elif anchor and target in facts and anchor not in facts[target]["ids"]:
                problem(rel, f"broken anchor: {href.removeprefix(base)}")

    ablation_pages = [p for p in pages if re.search(table_pages, p)]
    report = {
        "pages": len(pages),
        "images": sum(f["images"] for f in facts.values()),
        "ablation_pages": ablation_pages,
        "blocked_external_requests": sorted(external),
        "problems": problems,
    }
    (log_dir / "book_check.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(
        f"book_check: {len(pages)} pages, {report['images']} images, "
        f"{len(ablation_pages)} ablation pages, {len(external)} external requests blocked"
    )
    for rel, texts in sorted(problems.items()):
        for t in texts:
            print(f"book_check: {rel}: {t}", file=sys.stderr)
    if problems:
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
    p.add_argument(
        "--screenshot", action="append", default=None, metavar="PAGE",
        help="page to photograph (repeatable; default: notebooks/01_architecture.html)",
    )
    args = p.parse_args(argv)
    if not Path(args.chromium).is_file():
        print(f"book_check: no Chromium at {args.chromium} (apt-get install chromium)", file=sys.stderr)
        return 1
    shots = args.screenshot or ["notebooks/01_architecture.html"]
    return check(args.html, args.log_dir, args.chromium, args.table_pages, shots)


if __name__ == "__main__":
    sys.exit(main())
