"""The student edition of `make student` (sslkit/course.py), as a student gets it.

- The student site: every page loads without errors, shows its exercises, links to no
  notebook of the book (those hold the solutions), and holds no solution: neither a solution
  element nor any sentence or code line of a model answer as the full book renders it.
- The student notebooks run top to bottom with the stubs in place: only the check cells
  report the unanswered exercises, and no cell fails.

Run after `make book` and `make student`; the notebooks read the runs `make book` cached.
"""

from __future__ import annotations

import json
import re

import pytest
from bookcheck import ROOT, SCREENSHOTS, BookServer, _watch, book_pages, screenshot_path

from sslkit import course

STUDENT = ROOT / "_build" / "student"
SITE = STUDENT / "site" / "_build" / "html"
PAGES = book_pages()
CHAPTERS = course.chapters(ROOT)
# Chapters show sslkit's own code (inspect.getsource): a line also found there is no leak.
PACKAGE = "\n".join(p.read_text() for p in (ROOT / "sslkit").rglob("*.py"))


def _exercises(chapter):
    return course.split(json.loads(chapter.read_text()), chapter.stem)[1]


@pytest.fixture(scope="module")
def student_server():
    if not (SITE / "index.html").exists():
        pytest.exit(
            f"No student site in {SITE}: run `make book` and `make student` first.", returncode=1
        )
    with BookServer(SITE) as s:
        yield s


def _sentences(text: str) -> list[str]:
    return [
        t for t in (" ".join(x.split()) for x in re.split(r"(?<=[.:;?])\s|\n", text)) if len(t) > 25
    ]


@pytest.fixture(scope="module")
def book_solutions(browser, server):
    """Each chapter's model answers as the full book renders them (the ``.solution``
    elements of _build/html, opened): the text that must not reach the student site."""
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    found = {}
    for page in PAGES:
        if not page.is_chapter:
            continue
        tab = ctx.new_page()
        tab.goto(server.url(page.path), wait_until="load")
        texts = tab.eval_on_selector_all(".solution", "els => els.map(e => [e.id, e.textContent])")
        found[page.path] = {sid: _sentences(t) for sid, t in texts}
        tab.close()
    ctx.close()
    return found


@pytest.mark.parametrize("page", PAGES, ids=[p.path for p in PAGES])
def test_student_page_has_no_solution(page, context, student_server, book_solutions):
    tab = context.new_page()
    problems: list[str] = []
    watching = _watch(tab, student_server, problems)
    response = tab.goto(student_server.url(page.path), wait_until="load")
    assert response is not None and response.status == 200, (
        f"{page.path}: HTTP {response and response.status}"
    )
    tab.wait_for_load_state("networkidle")
    tab.screenshot(path=str(screenshot_path(page, SCREENSHOTS / "student")), full_page=True)
    solutions = tab.locator(".solution, .solution-start, .solution-end").count()
    text = " ".join(tab.text_content("main").split())
    exercises_shown = tab.locator(".exercise").count()
    hrefs = tab.eval_on_selector_all("a[href]", "links => links.map(a => a.href)")
    watching["done"] = True
    tab.close()
    assert not problems, f"{page.path}: {problems}"
    assert solutions == 0, f"{page.path}: {solutions} solution element(s) in the student site"
    # The site's own download of a page (_sources/…) is the student notebook; anything
    # elsewhere (GitHub, Colab, Binder) would be the book's notebook, solutions included.
    to_book = [
        h
        for h in hrefs
        if not h.startswith(student_server.origin) and re.search(r"/chapters/[\w.-]+\.ipynb", h)
    ]
    assert not to_book, (
        f"{page.path}: links open the book's notebooks, solutions included: {to_book[:2]}"
    )
    if page.is_chapter:
        exercises = _exercises(ROOT / page.source)
        assert exercises_shown >= len(exercises), (
            f"{page.path}: {exercises_shown} of {len(exercises)} exercises"
        )
        rendered = book_solutions[page.path]
        assert len(rendered) == len(exercises), (
            f"{page.path}: {len(rendered)} solutions in the book"
        )
        empty = [sid for sid, sentences in rendered.items() if not sentences]
        assert not empty, f"{page.path}: solutions with no text to search for: {empty}"
        stub = ("def my_", "from ", "import ")  # the stub keeps the signature and the imports
        leaked = [
            t
            for sentences in rendered.values()
            for t in sentences
            if t in text and t not in PACKAGE and not t.startswith(stub)
        ]
        assert not leaked, f"{page.path}: model-answer text in the student site: {leaked[:3]}"


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_student_notebook_runs_with_its_stubs(chapter, tmp_path):
    import nbformat
    from nbclient import NotebookClient

    path = STUDENT / "notebooks" / chapter.name
    if not path.exists():
        pytest.exit(f"No student notebook {path}: run `make student` first.", returncode=1)
    nb = nbformat.read(str(path), as_version=4)
    NotebookClient(
        nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()  # a failing cell raises
    checks = [c for c in nb.cells if course.CHECK_TAG in c.metadata.get("tags", [])]
    assert checks, f"{chapter.stem}: no check cell"
    for cell in checks:
        shown = json.dumps(cell.outputs)
        assert "still raises NotImplementedError" in shown, (
            f"{cell.source}: the unanswered stub is not reported"
        )
    assert (tmp_path / "tests").is_dir(), "the grader cell wrote no tests"


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_student_notebook_reads_without_the_book(chapter):
    """What a student opens in Colab: this build's numbers and plain links, no raw MyST."""
    from sslkit.colab import leftovers

    path = STUDENT / "notebooks" / chapter.name
    if not path.exists():
        pytest.exit(f"No student notebook {path}: run `make student` first.", returncode=1)
    nb = json.loads(path.read_text())
    assert leftovers(nb) == [], f"{chapter.stem}: raw MyST in the student notebook"
    assert any(c.get("id") == "colab-note" for c in nb["cells"]), "no note under the title"


def test_answer_key_math_is_typeset(context):
    """The answer key's formulas are typeset by the student site's MathJax, none left raw."""
    key = STUDENT / "answer_key.html"
    if not key.exists():
        pytest.exit(f"No answer key {key}: run `make student` first.", returncode=1)
    with BookServer(STUDENT) as s:
        tab = context.new_page()
        failed = []
        tab.on("requestfailed", lambda r: failed.append(r.url))
        tab.on("response", lambda r: failed.append(r.url) if r.status >= 400 else None)
        tab.goto(s.url("answer_key.html"), wait_until="load")
        tab.wait_for_function("window.MathJax && MathJax.startup && MathJax.startup.promise")
        tab.evaluate("MathJax.startup.promise")
        typeset = tab.eval_on_selector_all(".math mjx-container", "els => els.length")
        raw = tab.eval_on_selector_all(
            ".math", "els => els.filter(e => !e.querySelector('mjx-container')).length"
        )
        errors = tab.eval_on_selector_all("mjx-merror", "els => els.map(e => e.textContent)")
        tab.close()
    assert not failed, f"the answer key could not load {failed[:3]}"
    assert typeset > 20 and raw == 0 and not errors, (typeset, raw, errors[:3])
