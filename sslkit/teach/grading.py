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

import concurrent.futures
import html
import json
import os
import pathlib
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import zipfile
from types import SimpleNamespace

import pandas as pd

from . import exercises, sandbox
from .notebooks import ANSWER_TAG, CHECK_TAG, GRADER_TAG, IGNORE_TAG, WRITTEN_TAG, answer_cell

__all__ = ["grader", "test_source", "run_check", "grade", "written_answers"]


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
    """Call ``sslkit.exercises.<checker>(fn)``, with a message for the ways a student most
    often gets nothing: no function of that name (a cell that did not run, or did not parse),
    or the untouched stub."""
    if fn is None:
        last = getattr(sys, "last_value", None)  # the last error a cell raised (IPython sets it)
        if isinstance(last, SyntaxError):
            raise AssertionError(
                f"there is no function named {name}: a cell has a SyntaxError ({last.msg}, "
                f"line {last.lineno}); fix it and run the cell again"
            )
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


# Seconds one notebook may take to grade before it is stopped (an endless loop in a submission
# must not hang the class's grading); a notebook runs only the grader and answer cells.
GRADE_TIMEOUT = 300.0
# The longest checker message a row keeps (a submission can raise any message it likes).
MESSAGE_CHARS = 500
#: The file of an autograder zip that lists its chapter's written (hand-marked) exercises.
WRITTEN_FILE = "sslkit-written.json"
# The longest written answer the HTML export shows, in characters.
ANSWER_CHARS = 20_000


def grade(
    folder: pathlib.Path,
    autograders: pathlib.Path,
    out_csv: pathlib.Path,
    timeout: float = GRADE_TIMEOUT,
    chapter: str | None = None,
    student_pattern: str | None = None,
    sandboxed: bool | None = None,
    limits: sandbox.Limits | None = None,
    jobs: int = 1,
    written_dir: pathlib.Path | None = None,
) -> pd.DataFrame:
    r"""Grade every notebook under ``folder`` with its chapter's autograder (``otter run``, no
    container) and write one row per submission to ``out_csv``: total, possible, a column per
    question, an empty ``written_<question>`` column per written exercise (for hand marks),
    ``written_answers`` (the submission's page of written answers) and the checkers' messages
    for what failed.

    The ``student`` column is the first folder of a submission's path under ``folder``
    (``ada/03_clustering.ipynb`` → ``ada``), or, with ``student_pattern``, the first group of
    that regular expression searched in the file name (``r"^(\w+?)_"`` for ``ada_03….ipynb``).
    ``chapter`` grades notebooks whose chapter is unknown (a Colab "Copy of …" loses the
    metadata and the file name) with that chapter's autograder.

    Each notebook is graded in a process of its own, stopped after ``timeout`` seconds; one
    that cannot be graded (unreadable, no autograder, timed out, crashed) gets an ``error``
    and a blank total, and the others are graded. ``jobs`` notebooks are graded at once (at
    most ``jobs`` grading processes, each bounded by ``limits.memory``); the rows are the same,
    in the same order, for any ``jobs``. The CSV is rewritten after every notebook, so an
    interrupted run keeps what it graded.

    Each submission's answers to its chapter's written exercises (the chapters named in the
    autograders, :data:`WRITTEN_FILE`) are written as one HTML page to ``written_dir``
    (default: ``<out_csv's name>_written/`` beside it), for hand grading.

    ``sandboxed``: each notebook runs in a sandbox (:mod:`sslkit.teach.sandbox`: the system
    read-only, ``folder``, ``autograders`` and the CSV's folder hidden, no network, bounded
    processes, memory, file sizes and ``/tmp``, as ``nobody`` when the grader is root) with
    ``limits``. ``None`` (the default) sandboxes where bubblewrap works here and says so on
    standard error where it does not; ``True`` refuses to grade without one; ``False`` runs
    student code with the rights of the user who grades.
    """
    if not timeout > 0:
        raise ValueError(f"timeout must be a positive number of seconds, got {timeout}")
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(
            f"jobs must be a whole number, 1 or more (notebooks at once); got {jobs!r}"
        )
    out_csv = pathlib.Path(out_csv)
    written_dir = pathlib.Path(written_dir or out_csv.with_name(f"{out_csv.stem}_written"))
    hide = [folder, autograders, out_csv.parent]
    if out_csv.parent.resolve() not in written_dir.resolve().parents:
        written_dir.mkdir(parents=True, exist_ok=True)  # hidden from student code too
        hide.append(written_dir)
    box = _sandbox_for(sandboxed, limits, hide)
    paths = [p for p in sorted(pathlib.Path(folder).rglob("*.ipynb"))
             if ".ipynb_checkpoints" not in p.parts]  # fmt: skip

    def one(nb_path: pathlib.Path) -> dict:
        rel = nb_path.relative_to(folder)
        row = {"submission": str(rel), "student": _student_of(rel, student_pattern)}
        graded = _grade_notebook(nb_path, autograders, chapter, timeout, box)
        return _with_written(row, graded, nb_path, written_dir)

    rows: list[dict | None] = [None] * len(paths)
    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:  # threads: each
        running = {pool.submit(one, p): i for i, p in enumerate(paths)}  # waits on its process
        try:
            for done in concurrent.futures.as_completed(running):
                rows[running[done]] = done.result()
                _write_csv([r for r in rows if r is not None], out_csv)
        except BaseException:
            for future in running:
                future.cancel()  # an interrupt: no new notebook starts
            raise
    return _write_csv(rows, out_csv)


def _with_written(row: dict, graded: dict, nb_path, written_dir: pathlib.Path) -> dict:
    """A submission's row: its scores, an empty column per written exercise of its chapter
    (before the feedback) and the page of its written answers, which this writes."""
    written = graded.pop("_written", [])
    tail = {k: graded.pop(k) for k in ("feedback", "error") if k in graded}
    row = {**row, **graded}
    if written:
        page = written_dir / (row["submission"].replace("/", "__").removesuffix(".ipynb") + ".html")
        written_dir.mkdir(parents=True, exist_ok=True)
        page.write_text(_written_page(row, written, nb_path), encoding="utf-8")
        row.update({f"written_{w['question']}": None for w in written})
        row["written_answers"] = page.name
    return {**row, **tail}


def _written_of(zip_path: pathlib.Path) -> list[dict]:
    """The written exercises an autograder lists (:data:`WRITTEN_FILE`; none in a zip built
    before it was added: build the edition again)."""
    try:
        with zipfile.ZipFile(zip_path) as z:
            found = json.loads(z.read(WRITTEN_FILE)).get("written", [])
    except (KeyError, OSError, ValueError, zipfile.BadZipFile):
        return []
    return [w for w in found if isinstance(w, dict) and {"question", "label", "title"} <= set(w)]


def written_answers(nb: dict, written: list[dict]) -> dict[str, list[dict]]:
    """The cells a submission answers each written exercise with, by label: the answer cell
    (tagged ``sslkit-written``; in notebooks built without one, the cell of the exercise
    itself is skipped) and the cells the student added after it, up to the next cell of
    the edition's own."""
    cells = [c for c in nb.get("cells", []) if isinstance(c, dict)] if isinstance(nb, dict) else []
    found = {}
    for w in written:
        start = next((i for i, c in enumerate(cells) if _answers(c) == w["label"]), None)
        if start is None:  # an edition without answer cells: after the exercise's own cell
            fence = f":label: {w['label']}"
            start = next((i + 1 for i, c in enumerate(cells) if fence in _text(c)), None)
            if start is not None and start < len(cells) and _is_edition(cells[start]):
                start = None
        if start is None:
            found[w["label"]] = []
            continue
        answer = [cells[start]]
        for c in cells[start + 1 :]:
            if _is_edition(c):
                break
            answer.append(c)
        found[w["label"]] = answer
    return found


def _text(cell: dict) -> str:
    src = cell.get("source", "")
    return src if isinstance(src, str) else "".join(map(str, src)) if isinstance(src, list) else ""


def _answers(cell: dict) -> str | None:
    meta = cell.get("metadata")
    mine = meta.get("sslkit") if isinstance(meta, dict) else None
    return mine.get("answers") if isinstance(mine, dict) else None


def _is_edition(cell: dict) -> bool:
    """Whether a cell is one of the edition's own (tagged by it, or an exercise), not one a
    student added."""
    meta = cell.get("metadata")
    tags = meta.get("tags", []) if isinstance(meta, dict) else []
    ours = {WRITTEN_TAG, ANSWER_TAG, CHECK_TAG, GRADER_TAG, IGNORE_TAG}
    tagged = isinstance(tags, list) and any(isinstance(t, str) and t in ours for t in tags)
    return tagged or "```{exercise}" in _text(cell)


def _written_page(row: dict, written: list[dict], nb_path) -> str:
    """One submission's written answers as an HTML page: the student's text, escaped (never
    rendered: it is theirs), under each exercise's title."""
    try:
        nb = json.loads(pathlib.Path(nb_path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        nb = {}
    answers = written_answers(nb, written)
    esc = html.escape
    parts = [
        "<!DOCTYPE html>\n<html><head><meta charset='utf-8'>",
        f"<title>{esc(row['submission'])}: written answers</title>",
        "<style>body{font-family:sans-serif;max-width:50rem;margin:auto}"
        "pre{white-space:pre-wrap;background:#f4f4f4;padding:.5rem}"
        ".md{white-space:pre-wrap;border-left:3px solid #ccc;padding-left:.5rem}</style>",
        "</head><body>",
        f"<h1>{esc(str(row.get('student', '')))}: {esc(row['submission'])}</h1>",
        f"<p>Chapter {esc(str(row.get('chapter', '')))}. Put the marks in the CSV's "
        "<code>written_…</code> columns.</p>",
    ]
    for w in written:
        cells = answers.get(w["label"], [])
        parts.append(f"<h2 id='{esc(w['question'])}'>{esc(w['title'])} "
                     f"(<code>written_{esc(w['question'])}</code>)</h2>")  # fmt: skip
        stub = answer_cell(SimpleNamespace(**w))["source"].strip()  # the untouched answer cell
        shown = [c for c in cells if _text(c).strip() and _text(c).strip() != stub]
        if not shown:
            parts.append("<p><em>no answer found</em></p>")
        for c in shown:
            text = _text(c)
            text = text if len(text) <= ANSWER_CHARS else text[:ANSWER_CHARS] + " …"
            kind = "pre" if c.get("cell_type") == "code" else "div class='md'"
            parts.append(f"<{kind}>{esc(text)}</{kind.split()[0]}>")
    return "\n".join([*parts, "</body></html>\n"])


def _grade_notebook(nb_path, autograders, chapter, timeout, box) -> dict:
    """The chapter and scores of one notebook (or the error that stopped its grading)."""
    try:
        found = _chapter_of(json.loads(nb_path.read_text(encoding="utf-8")))
    except (OSError, ValueError) as e:
        return {"error": f"not a readable notebook: {e}"}
    # The chapter from the notebook's metadata, else from its file name (03_clustering….ipynb).
    # Only the course's own autograders, by name: the metadata cannot point anywhere else.
    known = {z.stem: z for z in sorted(pathlib.Path(autograders).glob("*.zip"))}
    found = found or next((stem for stem in known if nb_path.stem.startswith(stem)), None)
    found = found or chapter
    if found not in known:
        return {
            "chapter": found,
            "error": f"no autograder for chapter {found!r} in {autograders}: is this a student "
            "notebook of the book (metadata 'sslkit.chapter')? Pass --chapter NAME for "
            "notebooks that lost it",
        }
    graded = _grade_in_subprocess(nb_path, known[found], timeout, box)
    return {"chapter": found, **graded, "_written": _written_of(known[found])}


def _sandbox_for(wanted: bool | None, limits, hide) -> dict | None:
    """How each notebook is sandboxed (``command`` arguments), or None: see :func:`grade`."""
    if wanted is False:
        return None
    problem = sandbox.problem()
    if problem is None:
        return {"hide": [pathlib.Path(p) for p in hide], "limits": limits or sandbox.Limits()}
    if wanted:
        raise RuntimeError(f"cannot grade in a sandbox: {problem}")
    print(
        f"grading WITHOUT a sandbox ({problem}): student code runs with your rights; "
        "pass sandboxed=False (--no-sandbox) to say so, or grade in a container",
        file=sys.stderr,
    )
    return None


def _student_of(rel: pathlib.Path, pattern: str | None) -> str:
    """Who submitted ``rel`` (a path under the graded folder): see :func:`grade`."""
    if pattern:
        found = re.search(pattern, rel.name)
        if found is None:
            return ""
        return (found.group(1) if found.groups() else found.group(0)) or ""
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def _chapter_of(nb) -> str | None:
    """The chapter a notebook's metadata names (``metadata.sslkit.chapter``), or None; a
    notebook that is not a JSON object is refused with ``ValueError``."""
    if not isinstance(nb, dict):
        raise ValueError(f"a notebook is a JSON object, this one is a {type(nb).__name__}")
    meta = nb.get("metadata")
    sslkit = meta.get("sslkit") if isinstance(meta, dict) else None
    chapter = sslkit.get("chapter") if isinstance(sslkit, dict) else None
    return chapter if isinstance(chapter, str) else None


def _write_csv(rows: list[dict], out_csv) -> pd.DataFrame:
    table = pd.DataFrame(rows)
    tmp = pathlib.Path(f"{out_csv}.tmp")
    table.to_csv(tmp, index=False)
    os.replace(tmp, out_csv)
    return table


def _grade_in_subprocess(
    nb_path: pathlib.Path, zip_path: pathlib.Path, timeout: float, box: dict | None = None
) -> dict:
    """One notebook graded by ``python -m sslkit.teach.grading NOTEBOOK ZIP /dev/fd/N`` in a
    process of its own, on read-only copies of the notebook and its autograder; it writes its
    scores to a pipe of its own (never to the output that student code shares), in a sandbox
    where ``box`` says how (:func:`_sandbox_for`). Past ``timeout`` seconds it is killed with
    every process it started, the notebook's kernel included (Jupyter starts kernels in
    sessions of their own). Its temporary files go with the folder it ran in."""
    with tempfile.TemporaryDirectory(prefix="sslkit-grade-") as tmp:
        work, scratch = pathlib.Path(tmp) / "work", pathlib.Path(tmp) / "tmp"
        work.mkdir()
        scratch.mkdir()
        shutil.copyfile(nb_path, work / "submission.ipynb")
        shutil.copyfile(zip_path, work / "autograder.zip")
        for path in (work, *work.iterdir()):  # readable by the sandbox's user, never writable
            path.chmod(0o755 if path.is_dir() else 0o644)
        inside = pathlib.Path(sandbox.WORK) if box else work
        read, write = os.pipe()
        cmd = [sys.executable, "-m", "sslkit.teach.grading", str(inside / "submission.ipynb"),
               str(inside / "autograder.zip"), f"/dev/fd/{write}"]  # fmt: skip
        if box:
            cmd = sandbox.command(cmd, work, **box)
        elif shutil.which("prlimit"):  # no sandbox: still bound memory, files and output
            cmd = sandbox.bounded(cmd, sandbox.Limits())
        result = _Drain(read)
        with open(pathlib.Path(tmp) / "log.txt", "w+b") as log:
            try:
                proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                        start_new_session=True, pass_fds=(write,),
                                        env={**os.environ, "TMPDIR": str(scratch)})  # fmt: skip
            finally:
                os.close(write)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                return {"error": f"grading stopped after {timeout:g} s: does a cell loop forever?"}
            finally:
                _kill_tree(proc)  # a grader past its time, or what a finished one left running
                result.join()
            last = _last_line(log)
        if proc.returncode != 0 or not result.lines:
            return {"error": f"grading failed (exit {proc.returncode}): {last}"}
        return _result_row(result.lines[-1])


def _result_row(line: str) -> dict:
    """The grading child's row, read with suspicion (the submission shares its process tree):
    a JSON object of scores, or an error row; never an exception that stops the class."""
    try:
        row = json.loads(line)
    except ValueError:
        row = None
    scores = ("total", "possible")
    if not isinstance(row, dict) or not (
        "error" in row or all(isinstance(row.get(k), (int, float)) for k in scores)
    ):
        return {"error": "the grading result could not be read: grade this notebook again"}
    return {k: v for k, v in row.items() if isinstance(v, (int, float, str, type(None)))}


class _Drain(threading.Thread):
    """Reads a pipe to its end, keeping its last 64 KiB (the grading child's result line)."""

    def __init__(self, fd: int):
        super().__init__(daemon=True)
        self.fd, self.data = fd, b""
        self.start()

    def run(self):
        with os.fdopen(self.fd, "rb") as f:
            for chunk in iter(lambda: f.read(65536), b""):
                self.data = (self.data + chunk)[-65536:]

    @property
    def lines(self) -> list[str]:
        return self.data.decode("utf-8", "replace").strip().splitlines()


def _last_line(log) -> str:
    """The last line of a log, read from its end (a submission may print a gigabyte)."""
    size = log.seek(0, os.SEEK_END)
    log.seek(max(0, size - 4096))
    lines = log.read().decode("utf-8", "replace").strip().splitlines()
    return lines[-1][:500] if lines else "no output"


def _kill_tree(proc: subprocess.Popen) -> None:
    """SIGKILL a process and all its descendants, whatever session they moved to."""
    import psutil  # lazy: comes with IPython, which otter-grader (the 'course' extra) brings

    try:
        children = psutil.Process(proc.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        children = []
    for p in [*children]:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _points_of(zip_path) -> float:
    """The points an autograder gives: one per test file (each of :func:`test_source`'s is 1)."""
    with zipfile.ZipFile(zip_path) as z:
        return float(sum(n.startswith("tests/") and n.endswith(".py") for n in z.namelist()))


def _grade_one(nb_path: str, zip_path: str) -> dict:
    """The scores of one notebook (what the child process prints as its last line)."""
    from otter import run as otter_run  # lazy: otter-grader is the optional 'course' extra
    from otter.api import grade_submission  # lazy: as above

    changed: list[str] = []
    run_tests = otter_run.run_autograder_main

    def run_and_compare(ag_dir, *args, **kwargs):  # the tests as the zip holds them, after?
        try:
            return run_tests(ag_dir, *args, **kwargs)
        finally:
            changed.extend(_tests_changed(pathlib.Path(ag_dir) / "submission", zip_path))

    otter_run.run_autograder_main = run_and_compare
    try:
        results = grade_submission(nb_path, zip_path, quiet=True)
    except Exception as e:  # noqa: BLE001 - reported in the notebook's row
        return {"error": f"grading failed: {type(e).__name__}: {e}"}
    finally:
        otter_run.run_autograder_main = run_tests
    if changed:
        return {
            "error": f"the notebook changed its tests while it was graded ({', '.join(changed)}): "
            "its scores cannot be trusted; grade a fresh copy, and read its code"
        }
    row = {"total": results.total, "possible": results.possible}
    expected = _points_of(zip_path)
    if results.possible != expected:
        return {
            "possible": results.possible,
            "error": f"the notebook was graded out of {results.possible:g} points, its autograder "
            f"gives {expected:g}: were its tests deleted or overwritten? Grade a fresh copy",
        }
    messages = []
    for name in results.test_files:
        row[name] = results.get_score(name)
        if row[name] < results.get_result(name).possible:
            messages.append(f"{name}: {_failure(results.get_result(name))}")
    row["feedback"] = " | ".join(messages)
    return row


def _tests_changed(graded: pathlib.Path, zip_path) -> list[str]:
    """The test files of ``zip_path`` that the folder a notebook was graded in (otter copies
    them to its ``tests/``) no longer holds as they were: changed, replaced or deleted."""
    with zipfile.ZipFile(zip_path) as z:
        given = {n: z.read(n) for n in z.namelist() if n.startswith("tests/") and n.endswith(".py")}
    return sorted(n for n, text in given.items()
                  if not (graded / n).is_file() or (graded / n).read_bytes() != text)  # fmt: skip


def _failure(test_file) -> str:
    """The first line of the checker's message (its AssertionError), not otter's traceback."""
    text = test_file.summary() if hasattr(test_file, "summary") else str(test_file)
    found = re.findall(r"(?:AssertionError|NotImplementedError|Error): (.+)", text)
    said = found[-1].strip() if found else (text.strip().splitlines() or ["failed"])[-1]
    return said if len(said) <= MESSAGE_CHARS else said[:MESSAGE_CHARS] + " …"


def main_child(argv: list[str]) -> None:
    """The child process of :func:`_grade_in_subprocess`: NOTEBOOK ZIP RESULT, RESULT a file
    or a pipe's ``/dev/fd/N``; the scores are one line of JSON."""
    row = json.dumps(_grade_one(argv[0], argv[1]))
    fd = argv[2].removeprefix("/dev/fd/")  # the inherited descriptor itself: a pipe the grader
    with os.fdopen(int(fd), "w") if fd.isdigit() else open(argv[2], "w") as f:  # owns
        f.write(row + "\n")


if __name__ == "__main__":
    main_child(sys.argv[1:])
