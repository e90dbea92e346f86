"""The student edition of `make student` (sslkit/course.py), as a student gets it.

- The student site: every page loads without errors, shows its exercises, and holds no
  solution, neither a solution element nor any sentence or code line of a model answer.
- The student notebooks run top to bottom with the stubs in place: only the check cells
  report the unanswered exercises, and no cell fails.

Run after `make book` and `make student`; the notebooks read the runs `make book` cached.
"""
from __future__ import annotations

import html
import json
import re

import pytest

from bookcheck import ROOT, SCREENSHOTS, BookServer, _watch, book_pages, screenshot_path
from sslkit import course

STUDENT = ROOT / "_build" / "student"
SITE = STUDENT / "site" / "_build" / "html"
PAGES = book_pages()
CHAPTERS = course.chapters(ROOT)
PLAIN = re.compile(r"^[^`$\\{}*_<>|\[\]]+$")  # text that renders as written (no markup)
# Chapters show sslkit's own code (inspect.getsource): a line also found there is no leak.
PACKAGE = "\n".join(p.read_text() for p in (ROOT / "sslkit").glob("*.py"))


def _exercises(chapter):
    return course.split(json.loads(chapter.read_text()), chapter.stem)[1]


@pytest.fixture(scope="module")
def student_server():
    if not (SITE / "index.html").exists():
        pytest.exit(f"No student site in {SITE}: run `make book` and `make student` first.", returncode=1)
    with BookServer(SITE) as s:
        yield s


@pytest.mark.parametrize("page", PAGES, ids=[p.path for p in PAGES])
def test_student_page_has_no_solution(page, context, student_server):
    tab = context.new_page()
    problems: list[str] = []
    watching = _watch(tab, student_server, problems)
    response = tab.goto(student_server.url(page.path), wait_until="load")
    assert response is not None and response.status == 200, f"{page.path}: HTTP {response and response.status}"
    tab.wait_for_load_state("networkidle")
    tab.screenshot(path=str(screenshot_path(page, SCREENSHOTS / "student")), full_page=True)
    solutions = tab.locator(".solution, .solution-start, .solution-end, [id^='solution']").count()
    text = " ".join(tab.inner_text("main").split())
    exercises_shown = tab.locator(".exercise").count()
    watching["done"] = True
    tab.close()
    assert not problems, f"{page.path}: {problems}"
    assert solutions == 0, f"{page.path}: {solutions} solution element(s) in the student site"
    if page.is_chapter:
        exercises = _exercises(ROOT / page.source)
        assert exercises_shown >= len(exercises), f"{page.path}: {exercises_shown} of {len(exercises)} exercises"
        leaked = [f for ex in exercises for f in ex.fragments()
                  if PLAIN.match(f) and f not in PACKAGE and " ".join(f.split()) in text]
        assert not leaked, f"{page.path}: model-answer text in the student site: {leaked[:3]}"


def _page_text(path):
    text = re.sub(r"<[^>]+>", " ", path.read_text(encoding="utf-8"))
    return " ".join(html.unescape(text).split())


def test_the_search_for_solutions_finds_them_in_the_book():
    """The search above is not vacuous: in the full book's page of each chapter (solutions
    included), at least two model-answer fragments it searches for are found."""
    for chapter in CHAPTERS:
        book = _page_text(ROOT / "_build" / "html" / "chapters" / f"{chapter.stem}.html")
        found = [f for ex in _exercises(chapter) for f in ex.fragments()
                 if PLAIN.match(f) and f not in PACKAGE and " ".join(f.split()) in book]
        assert len(found) >= 2, f"{chapter.stem}: only {len(found)} solution fragments found in the book's page"


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_student_notebook_runs_with_its_stubs(chapter, tmp_path):
    import nbformat
    from nbclient import NotebookClient

    path = STUDENT / "notebooks" / chapter.name
    if not path.exists():
        pytest.exit(f"No student notebook {path}: run `make student` first.", returncode=1)
    nb = nbformat.read(str(path), as_version=4)
    NotebookClient(nb, timeout=900, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()  # a failing cell raises
    checks = [c for c in nb.cells if course.CHECK_TAG in c.metadata.get("tags", [])]
    assert checks, f"{chapter.stem}: no check cell"
    for cell in checks:
        shown = json.dumps(cell.outputs)
        assert "still raises NotImplementedError" in shown, f"{cell.source}: the unanswered stub is not reported"
    assert (tmp_path / "tests").is_dir(), "the grader cell wrote no tests"
