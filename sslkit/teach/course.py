"""The coursework edition of the book, built from its chapters: the chapters stay the one
source of every exercise, and :mod:`sslkit.exercises`' checkers the one definition of a
correct answer, for the book, the student and the grader.

``python -m sslkit.course build`` writes, from the executed chapters of ``make book``:

- ``notebooks/``: **student notebooks** (:mod:`sslkit.teach.notebooks`). Every solution is
  removed. The solution cell of each auto-graded exercise becomes a stub whose function raises
  ``NotImplementedError`` with a hint, followed by a ``grader.check(...)`` cell (otter-grader).
  They run in Colab (the first cell installs sslkit with otter and never reinstalls torch), in
  a local Jupyter and under ``jupyter nbconvert --execute``.
- ``autograder/<chapter>.zip``: an **otter-grader autograder** per chapter (``otter run``,
  or Gradescope). Its tests call the checkers; only the answer cells are graded, the other
  cells are tagged ``otter_ignore``, so grading never trains a network.
- ``site/``: the **student site**'s source: the chapters with the outputs of ``make book``
  (from its jupyter-cache), solutions gone, ``hide_solutions`` on; ``make student`` builds it
  into ``site/_build/html`` without executing anything again.
- ``answer_key.html``: every exercise with its model answer, for the instructor only
  (:mod:`sslkit.teach.answer_key`).

``python -m sslkit.course grade FOLDER`` grades every notebook in FOLDER and writes a CSV
(:func:`sslkit.grading.grade`; the student notebooks and the autograders import only
:mod:`sslkit.grading`).

The build reads ``chapters/``, ``_toc.yml`` and ``_config.yml`` from a checkout of the book's
repository: ``root``, by default the folder above the package; outside a checkout (a pip
install) that default is refused with a message (:func:`sslkit.teach.checkout.book_root`).
"""

from __future__ import annotations

import argparse
import json
import pathlib
import re
import shutil
import subprocess
import sys
import zipfile

from . import colab, release

# The edition's names as sslkit.course has always offered them, wherever they live now (the
# tests and instructors' scripts use them): the student notebooks' (split, the cell tags), the
# answer key's (MATHJAX, _myst_to_html) and, since student notebooks and autograders built
# before the split call course.grader and sslkit.course.run_check, the grader's.
from .answer_key import MATHJAX, _glue_and_outputs, _myst_to_html, answer_key  # noqa: F401
from .checkout import book_root
from .grading import (  # noqa: F401
    GRADE_TIMEOUT,
    WRITTEN_FILE,
    grade,
    grader,
    run_check,
    test_source,
)
from .notebooks import (  # noqa: F401
    ANSWER_TAG,
    CHECK_TAG,
    GRADER_TAG,
    IGNORE_TAG,
    WRITTEN_TAG,
    Exercise,
    install_spec,
    pin,
    split,
    student_notebook,
)

# What the build writes into its output folder, and the marker that says the folder is its own.
OUTPUTS = ("notebooks", "autograder", "site")
BUILD_MARKER = ".sslkit-student-edition"


def _claim_output(out: pathlib.Path) -> None:
    """Make ``out`` the build's own folder, or refuse it: a build replaces its subfolders
    (:data:`OUTPUTS`), so it never touches a folder holding any of them that an earlier
    build did not create (``--out .`` in a project with its own ``notebooks/``)."""
    if out.exists() and not (out / BUILD_MARKER).is_file():
        theirs = [sub for sub in (*OUTPUTS, "answer_key.html") if (out / sub).exists()]
        if theirs:
            raise ValueError(
                f"{out} holds {', '.join(theirs)} that sslkit.course did not write (no "
                f"{BUILD_MARKER} file); nothing was deleted. Choose another --out, such as "
                "_build/student, or move those files away."
            )
    out.mkdir(parents=True, exist_ok=True)
    (out / BUILD_MARKER).touch()


def chapters(root: pathlib.Path | None = None) -> list[pathlib.Path]:
    """The chapter notebooks of the book's checkout ``root`` (default: the one sslkit is
    imported from, :func:`~sslkit.teach.checkout.book_root`)."""
    return sorted((book_root(root) / "chapters").glob("*.ipynb"))


def build(
    out: pathlib.Path,
    executed: pathlib.Path | None = None,
    root: pathlib.Path | None = None,
    ref: str | None = None,
    links: pathlib.Path | None = None,
) -> list[Exercise]:
    """Write the student notebooks, the autograders, the student site's source and the answer
    key to ``out``. ``executed``: the book's jupyter-cache (``_build/.jupyter_cache``), whose
    outputs the site shows; without it the site is left out. ``root``: the book's checkout
    (default: the one sslkit is imported from). ``ref``: the tag or commit the notebooks and
    autograders install sslkit at (:func:`pin`); default, the chapters' branch.
    ``links``: the book build's ``colab/links.json``; with it and ``executed``, the student
    notebooks are Colab copies (:mod:`sslkit.colab`: glued values and links in place of MyST,
    and any solution left in them refused)."""
    root = book_root(root)
    _refuse_what_cannot_be_built(root, executed, links)
    out = pathlib.Path(out)
    _claim_output(out)
    for sub in OUTPUTS:
        shutil.rmtree(out / sub, ignore_errors=True)
    (out / "notebooks").mkdir(parents=True)
    (out / "autograder").mkdir()
    executed_nbs = _executed_chapters(root, executed, ref)
    ran = {stem: _glue_and_outputs(nb) for stem, nb in executed_nbs.items()}
    found = colab.Links.from_json(pathlib.Path(links).read_text()) if links else None
    readable = _colab_copier(ran, found)
    everything: list[Exercise] = []
    site: dict[str, dict] = {}
    for path in chapters(root):
        everything += _write_chapter(path, out, ref, readable)
        if path.stem in executed_nbs:
            site[path.name] = student_notebook(executed_nbs[path.stem], path.stem, for_site=True)[0]
    (out / "answer_key.html").write_text(answer_key(everything, ran, found, root / "chapters"))
    if executed is not None:
        _site_source(out / "site", site, root)
    return everything


def _refuse_what_cannot_be_built(root: pathlib.Path, executed, links) -> None:
    """Fail closed, before anything is written: an empty edition is never a success, and no
    student notebook may show raw MyST (the book's outputs without its links)."""
    if not chapters(root):
        raise FileNotFoundError(
            f"no chapters in {pathlib.Path(root) / 'chapters'}: the coursework edition is built "
            "from a checkout of the book's repository (git clone …; make student), not from a "
            "pip install of sslkit"
        )
    if executed is not None and links is None:
        raise FileNotFoundError(
            "the student notebooks need the book's links (colab/links.json, written by "
            "`make book` with this version of the book) to read without its build: run "
            "`make book`, then pass --links _build/html/colab/links.json"
        )


def _executed_chapters(root: pathlib.Path, executed, ref: str | None) -> dict[str, dict]:
    """Each chapter (by name) with the outputs of its execution by ``make book`` (``executed``:
    its jupyter-cache), pinned to ``ref``: for the answer key and the student site. None
    without ``executed``."""
    if executed is None:
        return {}
    found = {}
    for path in chapters(root):
        nb = _with_outputs(path, pathlib.Path(executed))
        found[path.stem] = pin(nb, ref) if ref else nb
    return found


def _write_chapter(path: pathlib.Path, out: pathlib.Path, ref: str | None, readable):
    """One chapter's student notebook (a Colab copy where ``readable`` makes one) and its
    autograder, written under ``out``; returns the chapter's exercises."""
    nb = json.loads(path.read_text())
    nb = pin(nb, ref) if ref else nb
    student, exercises = student_notebook(nb, path.stem)
    if readable is not None:
        student = readable(student, path)
    (out / "notebooks" / path.name).write_text(
        json.dumps(student, indent=1, ensure_ascii=False) + "\n"
    )
    _autograder(exercises, out / "autograder" / f"{path.stem}.zip", install_spec(nb))
    return exercises


def _colab_copier(ran: dict[str, tuple[dict, dict]], found):
    """The function that makes a student notebook a Colab copy, or None without the book's
    glued values or its links (``found``, :class:`sslkit.colab.Links`)."""
    if not ran or found is None:
        return None
    everywhere = colab.across_pages({f"chapters/{stem}": glue for stem, (glue, _) in ran.items()})
    book = found.book

    def readable(nb: dict, path: pathlib.Path) -> dict:
        return colab.colab_copy(
            nb,
            {**everywhere, **ran[path.stem][0]},
            found,
            path.parent,
            solutions=False,
            heading_note=colab.note(book, f"{book}chapters/{path.stem}.html") if book else None,
            where=f"student notebook {path.stem}",
        )

    return readable


def _autograder(exercises: list[Exercise], zip_path: pathlib.Path, install: str) -> None:
    """``otter generate`` on the chapter's tests; the requirements install sslkit (``install``,
    the chapter's own pip spec) with otter, in Colab's Python (:data:`release.COLAB_PYTHON`,
    the Python students run), with PyTorch's CPU wheels (:data:`release.CPU_TORCH_INDEX`): the
    checkers need no CUDA libraries, which PyTorch from PyPI brings (3 GB). The zip also holds
    the chapter's written exercises (:data:`sslkit.teach.grading.WRITTEN_FILE`), for the
    grader's hand-marking columns and its HTML export."""
    graded = [e for e in exercises if e.graded]
    if not graded:
        raise ValueError(
            f"{zip_path.stem} has no auto-graded exercise: every chapter needs one (a solution "
            "cell that defines my_<name> and calls exercises.check_<...>(my_<name>))"
        )
    work = zip_path.with_suffix("")
    (work / "tests").mkdir(parents=True)
    for ex in graded:
        (work / "tests" / f"{ex.question}.py").write_text(
            test_source(ex.question, ex.checker, ex.function)
        )
    (work / "requirements.txt").write_text(
        f"--extra-index-url {release.CPU_TORCH_INDEX}\n{install}\notter-grader>=6\n"
    )
    otter = pathlib.Path(sys.executable).with_name("otter")
    done = subprocess.run(
        [
            str(otter) if otter.exists() else "otter",
            "generate",
            "-t",
            "tests",
            "-r",
            "requirements.txt",
            "--no-config",
            "--no-environment",
            "--python-version",
            release.COLAB_PYTHON,
            "-o",
            str(zip_path.resolve()),
        ],
        cwd=work,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"otter generate failed for {zip_path.stem}:\n{done.stderr or done.stdout}"
        )
    shutil.rmtree(work)
    written = [{"question": e.question, "label": e.label, "title": e.title}
               for e in exercises if not e.graded]  # fmt: skip
    with zipfile.ZipFile(zip_path, "a") as z:
        z.writestr(WRITTEN_FILE, json.dumps({"written": written}, indent=1) + "\n")


def _with_outputs(path: pathlib.Path, cache_dir: pathlib.Path) -> dict:
    """The chapter at ``path`` with the outputs of its execution by ``make book``."""
    import nbformat  # lazy: comes with jupyter-book, a build-only dependency
    from jupyter_cache import get_cache  # lazy: as nbformat

    nb = nbformat.read(str(path), as_version=4)
    try:
        _, merged = get_cache(str(cache_dir)).merge_match_into_notebook(nb)
    except KeyError:
        raise FileNotFoundError(
            f"{path.name} has no execution in {cache_dir} that matches its code: run "
            "`make book` first (the student site shows the book's outputs)"
        ) from None
    return json.loads(nbformat.writes(merged))


def student_config(config: str) -> str:
    """The book's ``_config.yml`` for the student site: nothing executed again (the outputs
    come from the book's build), sphinx-exercise's ``hide_solutions`` on, and no launch or
    repository buttons, which would open the book's notebooks with their solutions."""
    config = re.sub(r"execute_notebooks: \w+", 'execute_notebooks: "off"', config)
    config = re.sub(
        r"(?m)^title: (.*)$", lambda m: f'title: "{m[1]} (student edition)"', config, count=1
    )
    config = config.replace("  config:\n", "  config:\n    hide_solutions: true\n", 1)
    # The launch and repository buttons would open the book's notebooks, solutions included:
    # students get the student notebooks from their instructor instead.
    config = re.sub(r"(?m)^launch_buttons:\n(?:  .*\n)+", "", config)
    config = config.replace("use_repository_button: true", "use_repository_button: false")
    return config


def _site_source(site: pathlib.Path, notebooks: dict[str, dict], root: pathlib.Path) -> None:
    """The book's source with the student chapters ``notebooks`` (file name: notebook, with
    the book's outputs), never executed again, with sphinx-exercise's ``hide_solutions`` on."""
    site.mkdir(parents=True)
    for name in ("_toc.yml", "references.bib", "index.md"):
        shutil.copy(root / name, site / name)
    for name in ("_static", "_ext", "_parts"):  # _parts: pages' shared text (the answer box)
        if (root / name).is_dir():
            shutil.copytree(root / name, site / name)
    (site / "chapters").mkdir()
    for name, nb in notebooks.items():
        (site / "chapters" / name).write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
    for md in (root / "chapters").glob("*.md"):
        shutil.copy(md, site / "chapters" / md.name)
    (site / "_config.yml").write_text(student_config((root / "_config.yml").read_text()))


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "build":
        return _build_command(args)
    if not args.folder.is_dir():
        parser.error(f"{args.folder} is not a folder of notebooks")
    return _grade_command(args)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m sslkit.course", description=__doc__.split("\n\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser(
        "build", help="student notebooks, autograders, answer key and the student site's source"
    )
    b.add_argument("--out", default="_build/student", type=pathlib.Path)
    b.add_argument(
        "--ref",
        default=None,
        help="the git tag or commit the notebooks and autograders install sslkit at (default: "
        "the branch the chapters name)",
    )
    b.add_argument(
        "--executed",
        default="_build/.jupyter_cache",
        type=pathlib.Path,
        help="the jupyter-cache of `make book`, whose outputs the student site shows",
    )
    b.add_argument(
        "--links",
        default="_build/html/colab/links.json",
        type=pathlib.Path,
        help="the book build's colab/links.json: the student notebooks then read as Colab "
        "copies (glued values and links instead of MyST roles)",
    )
    _grade_arguments(sub.add_parser("grade", help="grade a folder of student notebooks into a CSV"))
    return parser


def _grade_arguments(g: argparse.ArgumentParser) -> None:
    g.add_argument("folder", type=pathlib.Path)
    g.add_argument("--autograder", default="_build/student/autograder", type=pathlib.Path)
    g.add_argument("--out", default="scores.csv", type=pathlib.Path)
    g.add_argument(
        "--chapter",
        default=None,
        help="the chapter (e.g. 03_clustering) of notebooks whose metadata and name lost it",
    )
    g.add_argument(
        "--student-pattern",
        default=None,
        help="a regular expression whose first group in a file name is the student (default: "
        "the first folder of the path)",
    )
    g.add_argument(
        "--timeout",
        type=float,
        default=GRADE_TIMEOUT,
        help=f"seconds per notebook before it is stopped (default {GRADE_TIMEOUT:g})",
    )
    g.add_argument(
        "--jobs",
        type=_jobs,
        default=1,
        help="notebooks graded at once (default 1); each is a grading process of its own, "
        "bounded in memory by the sandbox's limits, so memory grows with N",
    )
    g.add_argument(
        "--written",
        type=pathlib.Path,
        default=None,
        help="folder for each submission's written answers as an HTML page (default: "
        "OUT's name + _written, beside it)",
    )
    g.add_argument(
        "--sandbox",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="grade each notebook in a bubblewrap sandbox (default: where bwrap works here, "
        "saying so where it does not); --sandbox refuses to grade without one, --no-sandbox "
        "runs student code with your rights",
    )


def _jobs(text: str) -> int:
    try:
        jobs = int(text)
    except ValueError:
        jobs = 0
    if jobs < 1:
        raise argparse.ArgumentTypeError(f"--jobs takes a whole number, 1 or more; got {text!r}")
    return jobs


def _build_command(args: argparse.Namespace) -> int:
    """``build``: the edition, from the book's outputs where ``make book`` left them."""
    executed = args.executed if args.executed.exists() else None
    if executed is None:
        print(
            f"{args.executed} not found: run `make book` first for the student site; "
            "building the notebooks, autograders and answer key only",
            file=sys.stderr,
        )
    links = args.links if args.links.exists() else None
    exs = build(args.out, executed, ref=args.ref, links=links)
    graded = [e.label for e in exs if e.graded]
    print(f"{len(exs)} exercises, {len(graded)} auto-graded: {', '.join(graded)}")
    print(
        f"written to {args.out}/: notebooks/, autograder/, answer_key.html"
        + (", site/" if executed else "")
    )
    return 0


def _grade_command(args: argparse.Namespace) -> int:
    """``grade``: every notebook of a folder, into a CSV (:func:`sslkit.grading.grade`)."""
    if args.sandbox is False:
        print(
            "--no-sandbox: student code runs with your rights on this machine; grade in a "
            "container, a virtual machine or an unprivileged account.",
            file=sys.stderr,
        )
    table = grade(
        args.folder,
        args.autograder,
        args.out,
        timeout=args.timeout,
        chapter=args.chapter,
        student_pattern=args.student_pattern,
        sandboxed=args.sandbox,
        jobs=args.jobs,
        written_dir=args.written,
    )
    print(table.drop(columns=["feedback"], errors="ignore").to_string(index=False))
    print(f"scores written to {args.out}")
    if "written_answers" in table:
        where = args.written or args.out.with_name(f"{args.out.stem}_written")
        print(f"written answers, one page per submission, in {where}/ (marks: written_… columns)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
