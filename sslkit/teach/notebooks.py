"""Student notebooks: a chapter with its solutions removed, for the coursework edition.

:func:`split` reads a chapter's exercises and model answers (an ``{exercise}`` fence, then a
``{solution}`` fence or a gated solution between ``solution-start`` and ``solution-end``) and
removes every solution. An exercise is **auto-graded** when its gated solution holds a code
cell that defines ``my_<name>`` and calls ``exercises.check_<…>(my_<name>)``: the student gets
a stub of that function, which raises ``NotImplementedError`` with a hint, and a
``grader.check(...)`` cell (otter-grader). Every other exercise is a written question, whose
model answer goes to the answer key only (:mod:`sslkit.teach.answer_key`).

:func:`student_notebook` adds the grader cell after the Colab install cell and tags every cell
the grader need not run ``otter_ignore``; :func:`pin` makes a term's notebooks install one
release of sslkit. The edition is built by :mod:`sslkit.teach.course`.
"""

from __future__ import annotations

import ast
import copy
import dataclasses
import re

from . import release
from .book import FINDING_GLUES

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
WRITTEN_TAG = "sslkit-written"  # the cell a written exercise's answer goes in


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
    reading = _Split(chapter)
    for cell in nb["cells"]:
        if cell["cell_type"] == "markdown":
            reading.markdown(cell)
        else:
            reading.code(cell)
    if reading.gated is not None:
        raise ValueError(
            f"{chapter}: the solution of {reading.gated!r} has a solution-start but no solution-end"
        )
    nb["cells"] = reading.cells
    return nb, list(reading.exercises.values())


@dataclasses.dataclass
class _Split:
    """:func:`split` as it reads a chapter's cells in order: the exercises met so far, the
    student's cells, and the label of the gated solution being read (between its
    ``solution-start`` and ``solution-end``), if any."""

    chapter: str
    exercises: dict[str, Exercise] = dataclasses.field(default_factory=dict)
    cells: list[dict] = dataclasses.field(default_factory=list)
    gated: str | None = None

    def exercise(self, label: str) -> Exercise:
        if label not in self.exercises:
            raise ValueError(
                f"{self.chapter}: a solution refers to {label!r}, which no exercise above it "
                "defines; put the {exercise} before its solution"
            )
        return self.exercises[label]

    def code(self, cell: dict) -> None:
        """A code cell: the student's as it is, or, inside a gated solution, the model
        answer's; the first that calls a checker becomes a stub and a check cell."""
        if self.gated is None:
            self.cells.append(cell)
            return
        text = _src(cell)
        ex = self.exercise(self.gated)
        ex.code.append(text)
        found = _find_check(text)
        if found and not ex.graded:
            ex.checker, ex.function = found
            self.cells.append(_code_cell(_stub(text, ex), [ANSWER_TAG]))
            self.cells.append(_code_cell(f'grader.check("{ex.question}")', [CHECK_TAG]))

    def markdown(self, cell: dict) -> None:
        """A Markdown cell: what is left of it once the solutions in it are removed (a gated
        solution's end, the fenced solutions, a gated solution's start) and given to their
        exercises."""
        text = _src(cell)
        if self.gated is not None:
            end = _END.search(text)
            if end is None:  # a whole markdown cell inside the solution
                self.exercise(self.gated).answer += text + "\n"
                return
            self.exercise(self.gated).answer += text[: end.start()]
            text, self.gated = text[end.end() :], None
        text = self._without_solutions(text)
        start = _START.search(text)
        if start:
            self.gated = start["label"]
            self.exercise(self.gated).answer += text[start.end() :]
            text = text[: start.start()]
        text = re.sub(r"\n{3,}", "\n\n", text).strip("\n")
        if text:
            cell["source"] = text
            self.cells.append(cell)

    def _without_solutions(self, text: str) -> str:
        """``text`` without its ``{solution}`` fences, each added to its exercise's answer; each
        ``{exercise}`` fence (kept) is recorded as an exercise."""
        kept, pos = [], 0
        for m in _FENCE.finditer(text):
            head, body = m["head"].strip(), m["body"]
            options = dict(_OPTION.findall(body))
            content = _OPTION.sub("", body).strip()
            if m["kind"] == "exercise":
                label = options.get("label")
                if not label:
                    raise ValueError(
                        f"{self.chapter}: exercise {head!r} has no :label:; the grader names it "
                        "by label"
                    )
                self.exercises[label] = Exercise(self.chapter, label, head, content)
                continue
            self.exercise(head).answer += content
            kept.append(text[pos : m.start()])
            pos = m.end()
        return "".join(kept) + text[pos:]


def pin(nb: dict, ref: str) -> dict:
    """A copy of ``nb`` whose install line installs sslkit at ``ref`` (a release tag or a
    commit, never a branch) instead of the ref it names: a term's notebooks and autograders then
    install one fixed release, whatever the branches become."""
    if not release.is_fixed(ref):
        raise ValueError(f"{ref!r} is not a git tag (v1.2.3) or a commit: a term pins one release")
    nb = copy.deepcopy(nb)
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            text = "".join(cell["source"])
            pinned = release.INSTALL.sub(lambda m: m[0][: m.start("ref") - m.start()] + ref, text)
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
    written = {e.label: e for e in exercises if not e.graded}
    for cell in out["cells"] if for_site else _with_answer_cells(out["cells"], written):
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


def answer_cell(ex: Exercise) -> dict:
    """The Markdown cell a student writes a written exercise's answer in: tagged
    :data:`WRITTEN_TAG`, it names the exercise's label (the grader's HTML export finds it)."""
    return {
        "cell_type": "markdown",
        "id": None,
        "metadata": {"tags": [WRITTEN_TAG], "sslkit": {"answers": ex.label}},
        "source": f"**Your answer to '{ex.title}'** (double-click to edit; add cells below "
        "if you need them):\n\n",
    }


def _piece(cell: dict, text: str) -> dict:
    piece = copy.deepcopy(cell)
    piece["source"] = text.strip("\n")
    return piece


def _with_answer_cells(cells: list[dict], written: dict[str, Exercise]) -> list[dict]:
    """``cells`` with an answer cell after each written exercise's fence (a Markdown cell
    holding several exercises is split after each written one)."""
    out = []
    for cell in cells:
        if cell["cell_type"] != "markdown":
            out.append(cell)
            continue
        text, pos = _src(cell), 0
        for m in _FENCE.finditer(text):
            label = dict(_OPTION.findall(m["body"])).get("label")
            if m["kind"] != "exercise" or label not in written:
                continue
            out += [_piece(cell, text[pos : m.end()]), answer_cell(written[label])]
            pos = m.end()
        if text[pos:].strip():
            out.append(_piece(cell, text[pos:]) if pos else cell)
    return out


_GLUE_ROLE = re.compile(r"\{glue(?::\w+)?\}`([^`:]+)`")
_GLUE_CALL = re.compile(r"""\bglue\(\s*f?["']([^"']+)["']""")


def _glued(code: list[str]) -> list[re.Pattern]:
    """The glue keys some code sets (f-string fields match anything), as patterns."""
    keys = [g for c in code for g in _GLUE_CALL.findall(c)]
    keys += [
        f"{k}_{part}"
        for c in code
        for k in re.findall(r"""\bglue_finding\(\s*["']([^"']+)["']""", c)
        for part in FINDING_GLUES
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
