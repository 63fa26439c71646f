"""Static checks of the study notebooks' sources (``notebooks/*.py``, jupytext percent format).

The book shows every notebook in a content column 688 px wide and ``.ci/book_check.py`` fails
a page with a code block wider than that, an image without a caption, or a path of the build
machine. These tests find the same problems in the sources, in a second, without executing or
building anything:

- every code line (code cells, hidden or not, the parameters cell with its comments, and the
  fenced code blocks of the prose) is at most 77 characters wide;
- every cell that shows a figure names it and gives it a caption and alt text in its MyST-NB
  metadata (``# %% mystnb={"figure": {"caption": ..., "name": "fig-NN-..."}, "image":
  {"alt": ...}}``), shows that one figure and nothing else (MyST-NB wraps every displayed
  output of the cell in the captioned figure), and figure names are unique in the book;
- every chapter ends with a "Summary" and an "Exercises" section; the summary's numbers come
  from glued values (every ``{glue:...}`` role names a value the notebook glues), and the
  exercises' commands write into ``out/`` only;
- no notebook holds an absolute path of a machine (``/tmp/``, ``/work/``, ``/home/``, ...);
- every code cell the book shows (folded ones too) is at most 15 lines, blank lines aside:
  plotting and table plumbing live in package helpers; the parameters cell is exempt, since
  it shows every value the page ran with.
"""

from __future__ import annotations

import ast
import functools
import re
from pathlib import Path

import pytest

jupytext = pytest.importorskip("jupytext")

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.py"))
MAX_LINE = 77  # 78 monospace characters are 698 px; the column is 688 px at 1280
MAX_CELL = 15  # lines of a shown code cell, blank lines aside

# What shows a figure in a code cell: matplotlib's show, the study's figure writer, the report
# helpers that show one, or display() of a figure object.
FIGURE_CALL = re.compile(
    r"\bplt\.show\(\)|\.save_figure\(|\bshow_ablation_figure\("
    r"|\bdisplay\(\s*[\w.]*fig"
)
# Calls that show one figure each (at most one per cell).
SHOWS = re.compile(r"\bplt\.show\(\)|\bshow_ablation_figure\(")
FIGURE_NAME = re.compile(r"^fig-(\d\d)-[a-z0-9]+(-[a-z0-9]+)*$")
FENCE = re.compile(r"^(`{3,}|~{3,})\s*(\S*)")
# An absolute path of a machine, at the start of a word (as .ci/book_check.py counts them).
MACHINE_PATH = re.compile(r"(?<![\w.~/-])/(tmp|work|home|root|Users)/")
GLUE_ROLE = re.compile(r"\{glue:(?:text|md|any|figure|math)\}`([^`:]+)")


def _ids(path: Path) -> str:
    return path.stem


@functools.lru_cache(maxsize=None)
def cells(path: Path):
    return jupytext.read(path).cells


def code_lines(cell) -> list[str]:
    """The lines of ``cell`` that the book shows as code: a code cell's source, or the
    fenced code blocks of a Markdown cell (not the bodies of directives such as
    ```` ```{admonition} ````, which are prose)."""
    lines = cell.source.splitlines()
    if cell.cell_type == "code":
        return lines
    out, fence = [], None
    for line in lines:
        stripped = line.strip()
        match = FENCE.match(stripped)
        if fence is None and match:
            info = match.group(2)
            fence = (match.group(1), not info.startswith("{") or info in ("{code-block}", "{code}"))
        elif fence is not None and stripped.startswith(fence[0]) and not stripped.strip(fence[0][0]):
            fence = None
        elif fence is not None and fence[1]:
            out.append(line)
    return out


def long_lines(path: Path) -> list[str]:
    return [
        f"cell {i}: {len(line)} characters: {line.strip()[:60]}"
        for i, cell in enumerate(cells(path))
        for line in code_lines(cell)
        if len(line) > MAX_LINE
    ]


def _last_expression_shown(source: str) -> bool:
    """Whether the cell's last statement is an expression whose value Jupyter displays
    (anything but a call of plt.show, show_ablation_figure or a glue)."""
    body = ast.parse(source).body
    if not body or not isinstance(body[-1], ast.Expr):
        return False
    value = body[-1].value
    if isinstance(value, ast.Call):
        func = value.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        return name not in ("show", "show_ablation_figure", "glue")
    return True


def figure_problems(path: Path) -> list[str]:
    problems = []
    for i, cell in enumerate(cells(path)):
        if cell.cell_type != "code":
            continue
        meta = cell.metadata.get("mystnb") or {}
        shows = bool(FIGURE_CALL.search(cell.source))
        if not shows:
            if meta.get("figure"):
                problems.append(f"cell {i}: figure metadata but no figure shown")
            continue
        figure, image = meta.get("figure") or {}, meta.get("image") or {}
        caption, alt = str(figure.get("caption", "")).strip(), str(image.get("alt", "")).strip()
        name = str(figure.get("name", ""))
        if not caption:
            problems.append(f"cell {i}: a figure without mystnb.figure.caption")
        if not alt or alt == caption:
            problems.append(f"cell {i}: a figure without mystnb.image.alt (of its own, not the caption)")
        match = FIGURE_NAME.match(name)
        if not match or match.group(1) != path.stem[:2]:
            problems.append(f"cell {i}: mystnb.figure.name {name!r} is not fig-{path.stem[:2]}-...")
        if len(SHOWS.findall(cell.source)) > 1:
            problems.append(f"cell {i}: shows more than one figure (one figure per cell)")
        if re.search(r"\bdisplay\(", cell.source) and not re.search(r"\bdisplay\(\s*[\w.]*fig", cell.source):
            problems.append(f"cell {i}: displays something beside its figure (it would share the caption)")
        if _last_expression_shown(cell.source):
            problems.append(f"cell {i}: its last expression is displayed beside the figure")
    return problems


def sections(path: Path) -> dict[str, str]:
    """Level-2 sections of the notebook's prose: heading -> text, in order."""
    text = "\n\n".join(c.source for c in cells(path) if c.cell_type == "markdown")
    parts = re.split(r"^## +(.+?) *$", text, flags=re.M)
    return {heading: body for heading, body in zip(parts[1::2], parts[2::2])}


def ending_problems(path: Path) -> list[str]:
    found = sections(path)
    headings = list(found)
    if headings[-2:] != ["Summary", "Exercises"]:
        return [f"the last sections are {headings[-2:]}, not ['Summary', 'Exercises']"]
    problems = []
    bullets = re.findall(r"^- ", found["Summary"], flags=re.M)
    if not 3 <= len(bullets) <= 5:
        problems.append(f"the summary has {len(bullets)} bullet points, not 3 to 5")
    exercises = re.findall(r"^\*\*\d+\. ", found["Exercises"], flags=re.M)
    if not 2 <= len(exercises) <= 3:
        problems.append(f"{len(exercises)} exercises (**1. ...**), not 2 or 3")
    if "```bash" not in found["Exercises"]:
        problems.append("the exercises give no command")
    return problems


def glued_keys(path: Path) -> list[re.Pattern]:
    """The values the notebook glues (f-string keys as patterns)."""
    code = "\n".join(c.source for c in cells(path) if c.cell_type == "code")
    keys = re.findall(r'\bglue\(\s*(f?)"([^"]+)"', code)
    return [
        re.compile((re.sub(r"\\\{[^}]*\\\}", ".+", re.escape(key)) if f else re.escape(key)) + "$")
        for f, key in keys
    ]


def glue_problems(path: Path) -> list[str]:
    keys = glued_keys(path)
    prose = "\n".join(c.source for c in cells(path) if c.cell_type == "markdown")
    return sorted({f"{{glue}}`{name}`: glued nowhere in the notebook"
                   for name in GLUE_ROLE.findall(prose) if not any(k.match(name) for k in keys)})


def command_problems(path: Path) -> list[str]:
    """Exercise commands that would write outside ``out/``."""
    block = "\n".join(
        line for cell in cells(path) if cell.cell_type == "markdown" for line in code_lines(cell)
    )
    commands = re.sub(r"\\\n\s*", " ", block)  # join continued lines
    problems = []
    for line in commands.splitlines():
        words = line.split()
        if "papermill" in words:
            i = words.index("papermill")
            if len(words) < i + 3 or not words[i + 2].startswith("out/"):
                problems.append(f"papermill writes outside out/: {line.strip()}")
            if "output_dir" in words and not words[words.index("output_dir") + 1].startswith("out/"):
                problems.append(f"output_dir outside out/: {line.strip()}")
        if "jupytext" in words and ("-o" not in words or not words[words.index("-o") + 1].startswith("out/")):
            problems.append(f"jupytext writes outside out/: {line.strip()}")
        for flag in ("--out", "out_dir"):
            for word in words:
                if word.startswith(f"{flag}=") and not word.split("=", 1)[1].startswith("out/"):
                    problems.append(f"{flag} outside out/: {line.strip()}")
            if flag in words and not words[words.index(flag) + 1].startswith("out/"):
                problems.append(f"{flag} outside out/: {line.strip()}")
    return problems


def machine_paths(path: Path) -> list[str]:
    return [
        f"line {n}: {line.strip()[:70]}"
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if MACHINE_PATH.search(line)
    ]


def long_cells(path: Path) -> list[str]:
    """The shown code cells of ``path`` longer than :data:`MAX_CELL` lines (blank lines
    aside); the parameters cell and cells the book removes are exempt."""
    out = []
    for i, cell in enumerate(cells(path)):
        tags = set(cell.metadata.get("tags", []))
        if cell.cell_type != "code" or tags & {"parameters", "remove-cell", "remove-input"}:
            continue
        n = sum(1 for line in cell.source.splitlines() if line.strip())
        if n > MAX_CELL:
            out.append(f"cell {i}: {n} lines: {cell.source.strip().splitlines()[0][:60]}")
    return out


def test_the_notebooks_are_found():
    assert len(NOTEBOOKS) >= 8, NOTEBOOKS


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids)
def test_every_code_line_fits_the_page(path):
    assert long_lines(path) == []


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids)
def test_every_shown_code_cell_is_short(path):
    assert long_cells(path) == []


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids)
def test_every_figure_has_a_numbered_caption_and_alt_text(path):
    assert figure_problems(path) == []


def test_figure_names_are_unique_in_the_book():
    names = [
        (cell.metadata.get("mystnb") or {}).get("figure", {}).get("name")
        for path in NOTEBOOKS
        for cell in cells(path)
    ]
    names = [n for n in names if n]
    assert names and len(names) == len(set(names)), sorted(n for n in names if names.count(n) > 1)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids)
def test_every_chapter_ends_with_a_summary_and_exercises(path):
    assert ending_problems(path) == []


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids)
def test_the_prose_pastes_only_values_the_notebook_glues(path):
    assert glue_problems(path) == []


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids)
def test_exercise_commands_write_into_out(path):
    assert command_problems(path) == []


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids)
def test_no_absolute_machine_path_in_a_notebook(path):
    assert machine_paths(path) == []


def test_code_blocks_of_the_book_pages_fit_the_column():
    """The book's own pages (book/*.md): every line of a fenced code block at most 77
    characters, like the notebooks' code."""
    root = Path(__file__).resolve().parents[1]
    wide = []
    for page in sorted((root / "book").glob("*.md")):
        inside = False
        for n, line in enumerate(page.read_text().splitlines(), 1):
            if line.lstrip().startswith("```"):
                inside = not inside
            elif inside and len(line) > MAX_LINE:
                wide.append(f"{page.name}:{n} ({len(line)} characters)")
    assert not wide, wide
