"""Grading the book's exercises with otter-grader: what a student notebook and an autograder
import, and what an instructor runs on a folder of submissions.

- :func:`grader`: a student notebook's first step; writes the chapter's otter tests and
  starts ``otter.Notebook``.
- :func:`test_source`: one otter test file (exception-based), which calls :func:`run_check`.
- :func:`run_check`: runs a checker of :mod:`sslkit.exercises` on the student's function.
- :func:`grade`: every notebook of a folder with its chapter's autograder, into a CSV.

It needs no checkout of the book: the build of the coursework edition is :mod:`sslkit.course`.
"""

from __future__ import annotations

import json
import pathlib
import re

import pandas as pd

from . import exercises

__all__ = ["grader", "test_source", "run_check", "grade"]


def test_source(question: str, checker: str, function: str) -> str:
    """The otter test file (exception-based format) of one auto-graded exercise."""
    return (
        f'"""otter test of {question}: sslkit.exercises.{checker}({function})."""\n'
        "from otter.test_files import test_case\n\n"
        "OK_FORMAT = False\n"
        f"name = {question!r}\n"
        "points = 1\n\n\n"
        "@test_case(points=1, hidden=False)\n"
        f"def test_{checker}({function}):\n"
        "    from sslkit.grading import run_check\n\n"
        f"    run_check({checker!r}, {function}, {function!r})\n"
    )


def run_check(checker: str, fn, name: str) -> None:
    """Call ``sslkit.exercises.<checker>(fn)``, with a message for the two ways a student
    most often gets nothing: no function of that name, or the untouched stub."""
    if fn is None:
        raise AssertionError(f"there is no function named {name}: run its cell, and keep its name")
    try:
        getattr(exercises, checker)(fn)
    except NotImplementedError:
        raise AssertionError(
            f"{name} still raises NotImplementedError: replace the stub's `raise` "
            "line with your code"
        ) from None


def grader(questions: dict[str, tuple[str, str]], tests_dir: str = "tests"):
    """Write the otter tests of ``questions`` ({question: (checker, function)}) to ``tests_dir``
    and return ``otter.Notebook(tests_dir=...)``: a student notebook's first step."""
    try:
        import otter  # lazy: otter-grader is the optional 'course' extra
    except ImportError:
        raise ImportError(
            "the grader needs otter-grader: pip install 'otter-grader>=6' "
            "(or install sslkit with its 'course' extra)"
        ) from None
    path = pathlib.Path(tests_dir)
    path.mkdir(parents=True, exist_ok=True)
    for question, (checker, function) in questions.items():
        (path / f"{question}.py").write_text(test_source(question, checker, function))
    return otter.Notebook(tests_dir=str(path))


def grade(folder: pathlib.Path, autograders: pathlib.Path, out_csv: pathlib.Path):
    """Grade every notebook under ``folder`` with its chapter's autograder (``otter run``, no
    container) and write one row per submission to ``out_csv``: total, possible, a column per
    question, and the checkers' messages for what failed."""
    from otter.api import grade_submission  # lazy: otter-grader is the optional 'course' extra

    rows = []
    for nb_path in sorted(pathlib.Path(folder).rglob("*.ipynb")):
        if ".ipynb_checkpoints" in nb_path.parts:
            continue
        row = {"submission": str(nb_path.relative_to(folder))}
        try:
            meta = json.loads(nb_path.read_text(encoding="utf-8")).get("metadata", {})
        except (OSError, ValueError) as e:
            rows.append({**row, "error": f"not a readable notebook: {e}"})
            continue
        # The chapter from the notebook's metadata, else from its file name (03_clustering….ipynb).
        chapter = meta.get("sslkit", {}).get("chapter") or next(
            (
                z.stem
                for z in sorted(pathlib.Path(autograders).glob("*.zip"))
                if nb_path.stem.startswith(z.stem)
            ),
            None,
        )
        row["chapter"] = chapter
        zip_path = pathlib.Path(autograders) / f"{chapter}.zip"
        if chapter is None or not zip_path.exists():
            row["error"] = (
                f"no autograder for chapter {chapter!r} in {autograders}: is this a student "
                "notebook of the book (metadata 'sslkit.chapter')?"
            )
            rows.append(row)
            continue
        try:
            results = grade_submission(str(nb_path), str(zip_path), quiet=True)
        except Exception as e:  # noqa: BLE001 - one broken submission must not stop the others
            rows.append({**row, "total": 0, "error": f"grading failed: {type(e).__name__}: {e}"})
            continue
        row.update(total=results.total, possible=results.possible)
        messages = []
        for name in results.test_files:
            row[name] = results.get_score(name)
            if row[name] < results.get_result(name).possible:
                messages.append(f"{name}: {_failure(results.get_result(name))}")
        row["feedback"] = " | ".join(messages)
        rows.append(row)
    table = pd.DataFrame(rows)
    table.to_csv(out_csv, index=False)
    return table


def _failure(test_file) -> str:
    """The first line of the checker's message (its AssertionError), not otter's traceback."""
    text = test_file.summary() if hasattr(test_file, "summary") else str(test_file)
    found = re.findall(r"(?:AssertionError|NotImplementedError|Error): (.+)", text)
    return found[-1].strip() if found else text.strip().splitlines()[-1]
