"""The coursework edition of the book, built from its chapters: the chapters stay the one
source of every exercise, and :mod:`sslkit.exercises`' checkers the one definition of a
correct answer, for the book, the student and the grader.

``python -m sslkit.course build`` writes, from the executed chapters of ``make book``:

- ``notebooks/``: **student notebooks**. Every solution is removed. The solution cell of each
  auto-graded exercise becomes a stub whose function raises ``NotImplementedError`` with a
  hint, followed by a ``grader.check(...)`` cell (otter-grader). They run in Colab (the
  first cell installs sslkit with otter and never reinstalls torch), in a local Jupyter and
  under ``jupyter nbconvert --execute``.
- ``autograder/<chapter>.zip``: an **otter-grader autograder** per chapter (``otter run``,
  or Gradescope). Its tests call the checkers; only the answer cells are graded, the other
  cells are tagged ``otter_ignore``, so grading never trains a network.
- ``site/``: the **student site**'s source: the chapters with the outputs of ``make book``
  (from its jupyter-cache), solutions gone, ``hide_solutions`` on; ``make student`` builds it
  into ``site/_build/html`` without executing anything again.
- ``answer_key.html``: every exercise with its model answer, for the instructor only.

``python -m sslkit.course grade FOLDER`` grades every notebook in FOLDER and writes a CSV
(:func:`sslkit.grading.grade`; the student notebooks and the autograders import only
:mod:`sslkit.grading`).

The build assumes a checkout of the book's repository: it reads ``chapters/``, ``_toc.yml``
and ``_config.yml`` from :data:`ROOT` (the folder above the package), and from a pip
install, where they are not, it has nothing to build.

An exercise is **auto-graded** when its gated solution (``solution-start`` … ``solution-end``)
holds a code cell that defines ``my_<name>`` and calls ``exercises.check_<…>(my_<name>)``;
every other exercise is a written question, whose model answer goes to the answer key only.
"""

from __future__ import annotations

import argparse
import ast
import copy
import dataclasses
import html
import json
import pathlib
import re
import shutil
import subprocess
import sys

from . import colab
from .book import REPORT_GLUES

# grader and run_check: student notebooks and autograders built before the split call
# course.grader and sslkit.course.run_check, and keep working.
from .grading import GRADE_TIMEOUT, grade, grader, run_check, test_source  # noqa: F401

# The book's checkout: the build reads its chapters and configuration from here.
ROOT = pathlib.Path(__file__).resolve().parents[2]

_FENCE = re.compile(
    r"```\{(?P<kind>exercise|solution)\}(?P<head>[^\n]*)\n(?P<body>.*?)\n```[ \t]*(?:\n|$)", re.S
)
_START = re.compile(
    r"```\{solution-start\}\s*(?P<label>\S+)[ \t]*\n(?::[^\n]*\n)*```[ \t]*(?:\n|$)"
)
_END = re.compile(r"```\{solution-end\}[ \t]*\n```[ \t]*(?:\n|$)")
_OPTION = re.compile(r"^:(\w[\w-]*):[ \t]*(.*)$", re.M)
GRADER_TAG = "sslkit-grader"  # the cell that writes the tests and starts otter
ANSWER_TAG = "sslkit-answer"  # a stub the student replaces
CHECK_TAG = "sslkit-check"  # grader.check(...) after an answer
IGNORE_TAG = "otter_ignore"  # otter's own tag: not run when grading


@dataclasses.dataclass
class Exercise:
    """One ``{exercise}`` of a chapter and its model answer."""

    chapter: str
    label: str
    title: str
    statement: str
    answer: str = ""  # markdown of the model answer
    code: list[str] = dataclasses.field(default_factory=list)  # the answer's code cells
    checker: str | None = None  # e.g. "check_cdnv"
    function: str | None = None  # e.g. "my_cdnv"

    @property
    def graded(self) -> bool:
        return self.checker is not None

    def fragments(self) -> list[str]:
        """Pieces of the model answer that must never reach a student: its sentences and the
        lines of its code (signatures, imports and the checker call aside)."""
        prose = [t.strip() for t in re.split(r"(?<=[.:;])\s", self.answer) if len(t.strip()) > 30]
        skip = ("def my_", "from ", "import ", "exercises.check")
        lines = [
            ln.strip()
            for c in self.code
            for ln in c.splitlines()
            if len(ln.strip()) > 12 and not ln.strip().startswith(skip)
        ]
        return prose + lines

    @property
    def question(self) -> str:
        """otter's name for the question (a file name: no hyphens)."""
        return self.label.replace("-", "_")


def _src(cell) -> str:
    s = cell["source"]
    return s if isinstance(s, str) else "".join(s)


def _find_check(code: str) -> tuple[str, str] | None:
    """``(checker, function)`` of the first ``exercises.check_x(my_y)`` call in ``code``."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return None
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id == "exercises"
            and node.func.attr.startswith("check_")
            and node.args
            and isinstance(node.args[0], ast.Name)
            and node.args[0].id.startswith("my_")
        ):
            return node.func.attr, node.args[0].id
    return None


def _stub(code: str, ex: Exercise) -> str:
    """The answer cell a student starts from: the solution's imports and the signature of its
    ``my_`` function, whose body raises ``NotImplementedError`` with a hint."""
    tree = ast.parse(code)
    lines = [
        ast.get_source_segment(code, n)
        for n in tree.body
        if isinstance(n, (ast.Import, ast.ImportFrom))
    ]
    fn = next(
        (n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == ex.function), None
    )
    if fn is None:
        raise ValueError(
            f"{ex.chapter}: the solution of {ex.label} checks {ex.function} but does not define it "
            "at the top level of that cell; the stub is made from its signature"
        )
    hint = f"{ex.function}: replace this line with your code"
    body = [
        f"def {fn.name}({ast.unparse(fn.args)}):",
        f'    """Your answer to the exercise \'{ex.title}\'."""',
        "    # YOUR CODE HERE: use only the arguments and imported modules; the grader",
        "    # runs this cell without the chapter's other cells.",
        f"    raise NotImplementedError({hint!r})",
    ]
    return "\n".join(lines + ([""] if lines else []) + ["", *body]).lstrip("\n") + "\n"


def _code_cell(text: str, tags: list[str]) -> dict:
    return {
        "cell_type": "code",
        "execution_count": None,
        "id": None,
        "metadata": {"tags": tags},
        "outputs": [],
        "source": text,
    }


def _imports(cells) -> list[str]:
    """The top-level import statements of the chapter's code cells, in order, once each."""
    seen: list[str] = []
    for cell in cells:
        if cell["cell_type"] != "code":
            continue
        try:
            tree = ast.parse(_src(cell))
        except SyntaxError:  # IPython magics
            continue
        for n in tree.body:
            if isinstance(n, (ast.Import, ast.ImportFrom)):
                line = ast.unparse(n)
                if line not in seen:
                    seen.append(line)
    return seen


def split(nb: dict, chapter: str) -> tuple[dict, list[Exercise]]:
    """Split a chapter into its student version (every solution removed, each auto-graded
    exercise's solution cell replaced by a stub and a check cell) and its exercises."""
    nb = copy.deepcopy(nb)
    exercises: dict[str, Exercise] = {}
    cells, gated = [], None

    def exercise(label: str) -> Exercise:
        if label not in exercises:
            raise ValueError(
                f"{chapter}: a solution refers to {label!r}, which no exercise above it defines; "
                "put the {exercise} before its solution"
            )
        return exercises[label]

    for cell in nb["cells"]:
        text = _src(cell)
        if cell["cell_type"] != "markdown":
            if gated is None:
                cells.append(cell)
                continue
            ex = exercise(gated)
            ex.code.append(text)
            found = _find_check(text)
            if found and not ex.graded:
                ex.checker, ex.function = found
                cells.append(_code_cell(_stub(text, ex), [ANSWER_TAG]))
                cells.append(_code_cell(f'grader.check("{ex.question}")', [CHECK_TAG]))
            continue
        if gated is not None:
            end = _END.search(text)
            if end is None:  # a whole markdown cell inside the solution
                exercise(gated).answer += text + "\n"
                continue
            exercise(gated).answer += text[: end.start()]
            text, gated = text[end.end() :], None
        kept, pos = [], 0
        for m in _FENCE.finditer(text):
            head, body = m["head"].strip(), m["body"]
            options = dict(_OPTION.findall(body))
            content = _OPTION.sub("", body).strip()
            if m["kind"] == "exercise":
                label = options.get("label")
                if not label:
                    raise ValueError(
                        f"{chapter}: exercise {head!r} has no :label:; the grader names it by label"
                    )
                exercises[label] = Exercise(chapter, label, head, content)
                continue
            exercise(head).answer += content
            kept.append(text[pos : m.start()])
            pos = m.end()
        text = "".join(kept) + text[pos:]
        start = _START.search(text)
        if start:
            gated = start["label"]
            exercise(gated).answer += text[start.end() :]
            text = text[: start.start()]
        text = re.sub(r"\n{3,}", "\n\n", text).strip("\n")
        if text:
            cell["source"] = text
            cells.append(cell)
    if gated is not None:
        raise ValueError(
            f"{chapter}: the solution of {gated!r} has a solution-start but no solution-end"
        )
    nb["cells"] = cells
    return nb, list(exercises.values())


def pin(nb: dict, ref: str) -> dict:
    """A copy of ``nb`` whose install line installs sslkit at ``ref`` (a tag or a commit) instead
    of the branch it names: a term's notebooks and autograders then install one fixed release,
    whatever the branch becomes."""
    if not re.fullmatch(r"[\w.\-/]+", ref):
        raise ValueError(f"{ref!r} is not a git tag, branch or commit")
    nb = copy.deepcopy(nb)
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            text = "".join(cell["source"])
            pinned = re.sub(
                r"(sslkit(?:\[[\w,.\-]+\])? @ git\+[^\"'\s@]+@)[^\"'\s#]+", rf"\g<1>{ref}", text
            )
            cell["source"] = pinned.splitlines(True)
    return nb


def _install_for_students(text: str) -> str:
    return re.sub(r'"sslkit @ git\+', '"sslkit[course] @ git+', text)


def student_notebook(nb: dict, chapter: str, for_site: bool = False) -> tuple[dict, list[Exercise]]:
    """The student version of one chapter: :func:`split`, plus the grader cell after the
    Colab install cell and ``otter_ignore`` on every cell the grader need not run.
    ``for_site``: keep the outputs (from the executed book) and hide the grader cell."""
    out, exercises = split(nb, chapter)
    graded = [e for e in exercises if e.graded]
    questions = ",\n".join(f'    "{e.question}": ("{e.checker}", "{e.function}")' for e in graded)
    setup = (
        "# The grader: writes this chapter's tests (each calls a checker of sslkit.exercises)\n"
        "# and starts otter. Your answers may use the names imported here.\n"
        + "\n".join(_imports(nb["cells"]) + ["from sslkit import grading"])
        + f"\n\ngrader = grading.grader({{\n{questions}\n}})\n"
    )
    cells = []
    for cell in out["cells"]:
        tags = cell.get("metadata", {}).get("tags", [])
        if cell["cell_type"] == "code":
            if not for_site:
                cell["outputs"], cell["execution_count"] = [], None
            if ANSWER_TAG not in tags and CHECK_TAG not in tags:
                cell.setdefault("metadata", {})["tags"] = [*tags, IGNORE_TAG]
                if "google.colab" in _src(cell):
                    cell["source"] = _install_for_students(_src(cell))
        cells.append(cell)
        if cell["cell_type"] == "code" and "google.colab" in _src(cell) and graded:
            cells.append(_code_cell(setup, [GRADER_TAG] + (["remove-cell"] if for_site else [])))
    if graded and not any(GRADER_TAG in c.get("metadata", {}).get("tags", []) for c in cells):
        raise ValueError(
            f'{chapter}: no Colab install cell (a code cell that checks "google.colab") to put '
            "the grader cell after; every chapter starts with one"
        )
    _check_glue(cells, [c for e in exercises for c in e.code], chapter)
    for i, cell in enumerate(cells):
        cell["id"] = f"s{i:03d}"
    out["cells"] = cells
    out["metadata"]["sslkit"] = {"chapter": chapter, "questions": [e.question for e in graded]}
    return out, exercises


_GLUE_ROLE = re.compile(r"\{glue(?::\w+)?\}`([^`:]+)`")
_GLUE_CALL = re.compile(r"""\bglue\(\s*f?["']([^"']+)["']""")


def _glued(code: list[str]) -> list[re.Pattern]:
    """The glue keys some code sets (f-string fields match anything), as patterns."""
    keys = [g for c in code for g in _GLUE_CALL.findall(c)]
    keys += [
        f"{k}_{part}"
        for c in code
        for k in re.findall(r"""\breport\(\s*["']([^"']+)["']""", c)
        for part in REPORT_GLUES
    ]
    return [re.compile("^" + re.sub(r"\\\{[^}]*\\\}", ".+", re.escape(k)) + "$") for k in keys]


def _check_glue(cells, removed: list[str], chapter: str) -> None:
    """A ``{glue}`` key of the student version's prose that only a removed solution cell
    computes is a leak of the solution's text, shown with blanks: refuse it."""
    kept = _glued([_src(c) for c in cells if c["cell_type"] == "code"])
    only_removed = _glued(removed)
    for c in cells:
        if c["cell_type"] != "markdown":
            continue
        for key in _GLUE_ROLE.findall(_src(c)):
            if any(p.match(key) for p in only_removed) and not any(p.match(key) for p in kept):
                raise ValueError(
                    f"{chapter}: the student version's prose uses {{glue}} `{key}`, which only a "
                    "solution computes: move that text inside the solution (before solution-end)"
                )


# --- the edition ------------------------------------------------------------------------------


def _myst_to_html(text: str, glue: dict[str, str] | None = None, links=None, where="") -> str:
    """Markdown of an answer as HTML; ``$…$`` and ``$$…$$`` math as ``\\(…\\)`` and
    ``\\[…\\]`` for MathJax, untouched by Markdown. With the book's ``links``
    (:class:`sslkit.colab.Links`), MyST is read as the Colab copies read it (glued values from
    ``glue``, links to the book); without them, roles are shown as plain text and a glued value
    as ``⟨key⟩`` where the book's outputs are not at hand."""
    from markdown_it import MarkdownIt  # lazy: comes with jupyter-book, a build-only dependency
    from mdit_py_plugins.dollarmath import dollarmath_plugin  # as markdown_it (myst-parser's)

    def math(content: str, options: dict) -> str:
        left, right = ("\\[", "\\]") if options.get("display_mode") else ("\\(", "\\)")
        return left + html.escape(content) + right

    glue = glue or {}
    if links is not None:
        text = colab.to_markdown(text, glue, links, ROOT / "chapters", where=f"answer key, {where}")
    else:
        text = re.sub(r"\{(?:term|ref|numref|doc)\}`([^`<]*?)\s*(?:<[^`]*>)?`", r"\1", text)
        text = re.sub(r"\{cite:[pt]\}`([^`]*)`", r"[\1]", text)
        text = re.sub(r"\{glue:text\}`([^`]*)`", lambda m: glue.get(m[1], f"⟨{m[1]}⟩"), text)
    return (
        MarkdownIt("commonmark").enable("table").use(dollarmath_plugin, renderer=math).render(text)
    )


def _glue_and_outputs(nb: dict) -> tuple[dict[str, str], dict[str, str]]:
    """From an executed chapter: its glued values as text, and each code cell's printed output."""
    glue, printed = {}, {}
    for cell in nb["cells"]:
        if cell["cell_type"] != "code":
            continue
        for out in cell.get("outputs", []):
            name = out.get("metadata", {}).get("scrapbook", {}).get("name")
            if name:
                glue[name] = colab.glued_text(out)
            elif out.get("output_type") == "stream":
                printed[_src(cell)] = printed.get(_src(cell), "") + "".join(out.get("text", ""))
    return glue, printed


def answer_key(
    exercises: list[Exercise], executed: dict[str, tuple[dict, dict]] | None = None, links=None
) -> str:
    """An HTML page with every exercise and its model answer, chapter by chapter;
    ``executed`` (chapter: glued values, printed outputs) fills in this build's numbers, and
    ``links`` (the book's :class:`sslkit.colab.Links`) turns terms and references into links."""
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>Answer key</title>",
        "<style>body{font-family:sans-serif;max-width:50em;margin:auto;padding:1em}"
        "pre{background:#f4f4f4;padding:.5em;overflow-x:auto}.graded{color:#1a7f37}</style>",
        # the math as the book shows it: MathJax 3 from the student site's own copy, offline
        f"<script defer src='{MATHJAX}'></script>",
        "</head><body><h1>Answer key (instructors only)</h1>",
        "<p>Every exercise of the book with its model answer. Auto-graded exercises are "
        "marked; the others are written questions to mark by hand.</p>",
    ]
    chapter = None
    for ex in exercises:
        if ex.chapter != chapter:
            chapter = ex.chapter
            parts.append(f"<h2>{html.escape(chapter)}</h2>")
        mark = (
            f" <span class='graded'>(auto-graded: {ex.question}, "
            f"sslkit.exercises.{ex.checker})</span>"
            if ex.graded
            else " (written)"
        )
        parts.append(f"<h3>{html.escape(ex.title)}{mark}</h3>")
        glue, printed = (executed or {}).get(ex.chapter, ({}, {}))
        parts.append(_myst_to_html(ex.statement, glue, links, ex.label))
        parts.append("<h4>Model answer</h4>" + _myst_to_html(ex.answer, glue, links, ex.label))
        for c in ex.code:
            parts.append(f"<pre><code>{html.escape(c)}</code></pre>")
            if printed.get(c):
                parts.append(
                    f"<p>Its output in the book's build:</p><pre>{html.escape(printed[c])}</pre>"
                )
    parts.append("</body></html>")
    return "\n".join(parts)


# MathJax for the answer key's math, relative to the build's output folder: the copy the student
# site's build (`make student`) serves from its _static.
MATHJAX = "site/_build/html/_static/mathjax/tex-chtml.js"

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


def chapters(root: pathlib.Path = ROOT) -> list[pathlib.Path]:
    return sorted((root / "chapters").glob("*.ipynb"))


def build(
    out: pathlib.Path,
    executed: pathlib.Path | None = None,
    root: pathlib.Path = ROOT,
    ref: str | None = None,
    links: pathlib.Path | None = None,
) -> list[Exercise]:
    """Write the student notebooks, the autograders, the student site's source and the answer
    key to ``out``. ``executed``: the book's jupyter-cache (``_build/.jupyter_cache``), whose
    outputs the site shows; without it the site is left out. ``ref``: the tag or commit the
    notebooks and autograders install sslkit at (:func:`pin`); default, the chapters' branch.
    ``links``: the book build's ``colab/links.json``; with it and ``executed``, the student
    notebooks are Colab copies (:mod:`sslkit.colab`: glued values and links in place of MyST,
    and any solution left in them refused)."""
    if not chapters(root):  # fail closed: an empty edition is never a success
        raise FileNotFoundError(
            f"no chapters in {pathlib.Path(root) / 'chapters'}: the coursework edition is built "
            "from a checkout of the book's repository (git clone …; make student), not from a "
            "pip install of sslkit"
        )
    if executed is not None and links is None:  # fail closed: no notebook with raw MyST
        raise FileNotFoundError(
            "the student notebooks need the book's links (colab/links.json, written by "
            "`make book` with this version of the book) to read without its build: run "
            "`make book`, then pass --links _build/html/colab/links.json"
        )
    out = pathlib.Path(out)
    _claim_output(out)
    for sub in OUTPUTS:
        shutil.rmtree(out / sub, ignore_errors=True)
    (out / "notebooks").mkdir(parents=True)
    (out / "autograder").mkdir()
    everything: list[Exercise] = []
    ran: dict[str, tuple[dict, dict]] = {}
    site: dict[str, dict] = {}
    executed_nbs: dict[str, dict] = {}
    if executed is not None:  # the book's outputs: for the answer key and the student site
        for path in chapters(root):
            executed_nb = _with_outputs(path, pathlib.Path(executed))
            executed_nbs[path.stem] = pin(executed_nb, ref) if ref else executed_nb
            ran[path.stem] = _glue_and_outputs(executed_nbs[path.stem])
    found = colab.Links.from_json(pathlib.Path(links).read_text()) if links else None
    readable = _colab_copier(ran, found)
    for path in chapters(root):
        nb = json.loads(path.read_text())
        nb = pin(nb, ref) if ref else nb
        student, exercises = student_notebook(nb, path.stem)
        everything += exercises
        if readable is not None:
            student = readable(student, path)
        (out / "notebooks" / path.name).write_text(
            json.dumps(student, indent=1, ensure_ascii=False) + "\n"
        )
        _autograder(
            [e for e in exercises if e.graded],
            out / "autograder" / f"{path.stem}.zip",
            install_spec(nb),
        )
        if path.stem in executed_nbs:
            site[path.name] = student_notebook(executed_nbs[path.stem], path.stem, for_site=True)[0]
    (out / "answer_key.html").write_text(answer_key(everything, ran, found))
    if executed is not None:
        _site_source(out / "site", site, root)
    return everything


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


def install_spec(nb: dict) -> str:
    """The pip requirement a chapter's Colab cell installs sslkit with (``"sslkit @ git+…"``),
    read from the code cells' text (not from the notebook's JSON, whose escaped quotes would
    leave a backslash in it); ``"sslkit"`` where no cell names one."""
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            found = re.search(r"""["'](sslkit @ git\+[^"'\s]+)["']""", "".join(cell["source"]))
            if found:
                return found[1]
    return "sslkit"


def _autograder(graded: list[Exercise], zip_path: pathlib.Path, install: str) -> None:
    """``otter generate`` on the chapter's tests; the requirements install sslkit (``install``,
    the chapter's own pip spec) with otter."""
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
    (work / "requirements.txt").write_text(f"{install}\notter-grader>=6\n")
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
    g = sub.add_parser("grade", help="grade a folder of student notebooks into a CSV")
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
    args = parser.parse_args(argv)
    if args.command == "build":
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
    if not args.folder.is_dir():
        parser.error(f"{args.folder} is not a folder of notebooks")
    print(
        "Student code runs with your rights on this machine (not a sandbox): grade in a "
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
    )
    print(table.drop(columns=["feedback"], errors="ignore").to_string(index=False))
    print(f"scores written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
