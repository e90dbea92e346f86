"""Static checks of the chapters: what the build cannot see (Colab cell, outputs, exercises)."""

import importlib
import json
import pathlib
import re

import pytest

from sslkit import book, paper
from sslkit.findings import decide
from sslkit.teach import release

ROOT = pathlib.Path(__file__).resolve().parent.parent
CHAPTERS = sorted((ROOT / "chapters").glob("*.ipynb"))


def config_value(key: str) -> str:
    block = (ROOT / "_config.yml").read_text().split("repository:")[1]
    return re.search(rf"(?m)^  {key}: (\S+)", block).group(1)


def cells(path):
    return json.loads(path.read_text())["cells"]


def test_there_are_chapters_and_all_are_in_the_toc():
    toc = (ROOT / "_toc.yml").read_text()
    assert CHAPTERS
    for path in CHAPTERS:
        assert f"chapters/{path.stem}" in toc, f"{path.name} is not listed in _toc.yml"


def missing_names(code: str) -> list[tuple[str, str]]:
    """The ``module.name`` a chapter's code reads after ``from sslkit import module`` (or as
    ``sslkit.module.name``) that the module lacks."""
    imported = {
        n.strip() for line in re.findall(r"(?m)^\s*from sslkit import (.+)$", code)
        for n in line.split(",")
    }  # fmt: skip
    missing = []
    for name in sorted(imported):
        try:
            module = importlib.import_module(f"sslkit.{name}")
        except ImportError:  # a name of the package (``PROFILES``), not a module
            continue
        for attr in sorted(set(re.findall(rf"(?<![\w.])(?:sslkit\.)?{name}\.(\w+)", code))):
            if not hasattr(module, attr):
                missing.append((name, attr))
    return missing


def test_the_missing_name_finder_finds_a_planted_one():
    code = "from sslkit import book, scale\nscale.load_study()\ns = scale.summary(t)\nx.summary()"
    assert missing_names(code) == [("scale", "summary")]


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_every_name_a_chapter_reads_from_sslkit_is_there(path):
    """A name renamed in the package is renamed in the chapters too (they are not imported by
    the tests, so nothing else would notice before the book's build)."""
    code = "\n".join("".join(c["source"]) for c in cells(path) if c["cell_type"] == "code")
    assert not missing_names(code), missing_names(code)


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_committed_without_outputs(path):
    for i, c in enumerate(cells(path)):
        if c["cell_type"] == "code":
            assert not c["outputs"] and c["execution_count"] is None, f"cell {i} has outputs"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_first_code_cell_installs_the_release_only_in_colab(path):
    first = next("".join(c["source"]) for c in cells(path) if c["cell_type"] == "code")
    assert '"google.colab" in sys.modules' in first
    url = config_value("url")
    assert f"sslkit @ git+{url}@" in first, "run tools/set_repository.py to sync with _config.yml"
    assert f"sslkit @ git+{url}@{release.tag()}" in first, (
        f"the install cell must name the release {release.tag()} (sslkit.__version__): run "
        "make release (python -m sslkit.teach.release write)"
    )
    assert not re.search(r"pip install[^\n]*\btorch", first), (
        "the Colab cell must not (re)install torch"
    )


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_no_chapter_installs_a_branch_that_moves(path):
    """``@main`` (or any branch) would give a reader next month other code than the book they
    read; a tag or a commit does not move (the planted @main: tests/test_release.py)."""
    nb = json.loads(path.read_text())
    assert release.install_refs(nb), "no install line found: the check would pass vacuously"
    assert not release.moving_refs(nb), (
        f"{path.name} installs sslkit at {release.moving_refs(nb)}, a branch: run make release "
        f"to install the release {release.tag()}"
    )


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_states_goals_and_run_time_in_one_line_linked_to_profiles(path):
    """The box that opens a chapter states its goals and its run time in one line, with a link
    to the one place (chapter 00) where profiles and run time are explained: not the same
    paragraph on every page."""
    intro = "".join(cells(path)[0]["source"])
    assert "In this chapter" in intro
    (line,) = [x for x in intro.splitlines() if x.startswith("**Run time:**")] or [""]
    rest = intro.split(line, 1)[1].split("\n:::", 1)[0] if line else ""
    assert line and "sec-run-time>`" in line + rest, "a run-time line linked to sec-run-time"
    assert len((line + rest).split()) <= 20, "the run time is one line"
    assert "SSLKIT_PROFILE=gpu` selects" not in intro, "profiles are explained once, in chapter 00"
    assert "(sec-run-time)=" in (ROOT / "chapters" / "00_introduction.ipynb").read_text()


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_exercises_with_hidden_solutions_and_a_checked_one(path):
    text = "".join("".join(c["source"]) for c in cells(path))
    exercises = re.findall(r"```\{exercise\}", text)
    solutions = re.findall(r"```\{solution(?:-start)?\} [\w-]+\n:class: dropdown", text)
    assert len(exercises) >= 3, "each chapter ends with at least three exercises"
    assert len(solutions) == len(exercises), "every exercise has a solution hidden in a dropdown"
    assert re.search(r"exercises\.check_\w+\(", text), "at least one exercise is checked by sslkit"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_findings_are_reported_with_a_scoreboard_and_numbers_glued(path):
    text = "".join("".join(c["source"]) for c in cells(path))
    code = [("".join(c["source"])) for c in cells(path) if c["cell_type"] == "code"]
    board = ("show_scoreboard(", "decisions_table(")  # the reference store's, the per-image one
    assert any(b in text for b in board), "every chapter shows the scoreboard of its findings"
    if path.stem != "07_what_we_found":
        assert any(b in code[-1] for b in board), "the scoreboard closes the chapter"
    glued = set(re.findall(r'book\.glue\(\s*f?"([^"]+)"', text))
    reported = {k for k in paper.FINDINGS if f'"{k}"' in text}
    if "paper.per_method(" in text:  # reported in a loop over paper.per_method's keys
        reported |= {k for key in paper.PER_METHOD for k in paper.per_method(key).values()}
    glued |= {f"{k}_{s}" for k in reported for s in book.FINDING_GLUES}
    if "book.setup(chapter=" in text:  # the chapter's estimated run time, glued by book.setup
        glued |= {"run_count", "measure_time"}
        glued |= {f"{p}_time_{d}" for p in ("run", "train") for d in ("cpu", "t4")}
    if "book.setup(" in text:  # the sizes the prose names, glued by book.setup
        glued |= {"reference_seeds", "live_seeds", "n_draws"}
    if "book.glue_decision(" in text:  # findings of the per-image evidence, glued by key
        glued |= {
            f"{k}_{s}" for k in decide.decisions().key for s in ("effect", "ci", "verdict", "seeds")
        }
    if "book.answer(" in text:
        glued |= book.answer_names()
    prefixes = tuple(g.split("{")[0] for g in glued if "{" in g)  # names built in a loop
    used = set(re.findall(r"\{glue:text\}`(\w+)`", text))
    missing = {u for u in used if u not in glued and not (prefixes and u.startswith(prefixes))}
    assert not missing, f"prose uses glue names never glued: {missing}"


def test_set_repository_tool_round_trip(tmp_path, monkeypatch):
    import importlib.util
    import shutil

    (tmp_path / "chapters").mkdir()
    shutil.copy(ROOT / "_config.yml", tmp_path / "_config.yml")
    shutil.copy(CHAPTERS[0], tmp_path / "chapters" / CHAPTERS[0].name)
    spec = importlib.util.spec_from_file_location(
        "set_repository", ROOT / "tools" / "set_repository.py"
    )
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    monkeypatch.setattr(mod, "ROOT", tmp_path)
    mod.main("https://github.com/someone/fork", "dev")
    cfg = (tmp_path / "_config.yml").read_text()
    assert "url: https://github.com/someone/fork" in cfg and "branch: dev" in cfg
    nb = (tmp_path / "chapters" / CHAPTERS[0].name).read_text()
    # the install cell follows the repository and keeps the release's tag, not the branch
    assert f"git+https://github.com/someone/fork@{release.tag()}" in nb and "@dev" not in nb


def test_a_chapter_runs_outside_the_book_build_on_the_smoke_profile(tmp_path, monkeypatch):
    """A reader's run (another profile, no book build): it finishes even where claims differ."""
    pytest.importorskip("nbclient", reason="running a notebook needs Jupyter (the book's build)")
    import nbformat
    from nbclient import NotebookClient

    monkeypatch.setenv("SSLKIT_PROFILE", "smoke")
    monkeypatch.delenv("SSLKIT_BOOK_BUILD", raising=False)
    nb = nbformat.read(ROOT / "chapters" / "06_hierarchy_and_depth.ipynb", as_version=4)
    NotebookClient(
        nb,
        timeout=600,
        kernel_name="python3",
        resources={"metadata": {"path": str(ROOT / "chapters")}},
    ).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "".join(o.get("text", "") for o in outputs)
    assert "→" in text  # each finding printed its verdict
    html = "".join(str(o.get("data", {}).get("text/html", "")) for o in outputs)
    assert "the book states" in html  # the scoreboard was shown


def _glued_comparisons(source: str) -> list[str]:
    """Glue calls whose value is a word chosen by comparing numbers (``"rises" if a > b else
    "falls"``): a verdict without a control or a threshold."""
    import ast

    found = []
    for node in ast.walk(ast.parse(source)):
        if (
            isinstance(node, ast.Call)
            and getattr(node.func, "attr", getattr(node.func, "id", "")) == "glue"
            and len(node.args) >= 2
        ):
            # any word picked by a condition counts, also when the comparison was made on
            # an earlier line (``beyond = a > b`` … ``"above" if beyond else "not above"``)
            if any(isinstance(sub, ast.IfExp) for sub in ast.walk(node.args[1])):
                found.append(ast.unparse(node.args[0]))
    return found


def test_the_glued_comparison_finder_finds_a_planted_one():
    planted = 'book.glue("direction", "rises" if a > b else "falls")\nbook.glue("n", len(x))'
    assert _glued_comparisons(planted) == ["'direction'"]
    earlier = 'beyond = a > b\nbook.glue("reading", "above" if beyond else "not above")'
    assert _glued_comparisons(earlier) == ["'reading'"]


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_no_glued_comparison_word_that_is_not_a_verdict(path):
    def python(source):  # IPython magics and shell lines become `pass`, indentation kept
        return "\n".join(
            line[: len(line) - len(line.lstrip())] + "pass"
            if line.lstrip().startswith(("%", "!"))
            else line
            for line in source.splitlines()
        )

    code = [python("".join(c["source"])) for c in cells(path) if c["cell_type"] == "code"]
    found = [name for src in code for name in _glued_comparisons(src)]
    assert not found, (
        f"glued words chosen by comparing means, with no control or threshold: {found}; make "
        "each a sslkit.paper.Finding (its verdict is glued by book.glue_finding) or delete it"
    )


def test_the_answer_box_uses_only_what_book_answer_glues():
    """The box on the front page and in chapter 7 pastes from chapter 7 by path; each name it
    uses is glued there (by :func:`sslkit.book.answer` or :func:`sslkit.book.setup`)."""
    text = (ROOT / "_parts" / "answer.md").read_text()
    used = set(re.findall(r"\{glue:text\}`/chapters/07_what_we_found\.ipynb::(\w+):s`", text))
    assert used and "{glue" not in re.sub(r"\{glue:text\}`/chapters/[^`]+`", "", text)
    setup = {"reference_seeds", "n_draws"}  # glued by book.setup
    assert used <= book.answer_names() | setup, used - book.answer_names()
    for page in ("index.md", "chapters/07_what_we_found.ipynb"):
        assert "_parts/answer.md" in (ROOT / page).read_text(), page
    # every claim has its paragraph, with the verdict of its primary measurement
    for claim, keys in book.ANSWER_KEYS.items():
        assert f"answer_{keys[0]}_verdict" in used, claim
    # the text says which verdicts it was written for, each of them (book.answer checks them)
    promised = book.written_for(ROOT / "_parts" / "answer.md")
    assert set(promised) == book.answer_findings()
    assert set(promised.values()) <= set(paper.VERDICTS)
    assert "box=box" in (ROOT / "chapters" / "07_what_we_found.ipynb").read_text()


def box_words(text: str) -> int:
    """The words of the answer box a reader reads before opening a dropdown: MyST comments,
    directive lines and options, and every ``:class: dropdown`` admonition left out; a glued
    value or a role counts as one word."""
    lines, skip = [], None
    for line in text.splitlines():
        fence = re.match(r"\s*(:{3,})(\{\w+\})?", line)
        if skip is not None:
            if fence and not fence[2] and len(fence[1]) == skip:
                skip = None
            continue
        if fence and fence[2] and ":class: dropdown" in text.split(line, 1)[1].split("\n", 2)[1]:
            skip = len(fence[1])
            continue
        if not fence and not re.match(r"\s*(%|:\w+:)", line):
            lines.append(line)
    words = re.sub(r"\{glue:text\}`[^`]+`|\{[a-z]+\}`[^`]+`", "w", "\n".join(lines))
    return len(re.findall(r"[\w+\-.%\[\]]+", words))


def test_the_box_word_count_leaves_out_dropdowns_comments_and_directives():
    planted = (
        "% held_key: held\n::::{admonition} Box\n:class: important\n\nOne two {term}`three "
        "<Ruler>` four.\n\n   :::{admonition} The numbers\n   :class: dropdown\n   five six "
        "seven eight\n   :::\nnine {glue:text}`/x.ipynb::y:s`.\n::::\n"
    )
    assert box_words(planted) == 6


def test_the_answer_box_reads_in_two_minutes_in_the_glossarys_words():
    """At most about 250 words before the dropdowns (the rulers, intervals and caveats sit in
    a dropdown under each claim), and every term it links is defined in the glossary."""
    import sys

    pytest.importorskip("docutils", reason="the glossary is read with the book's build tools")
    sys.path.insert(0, str(ROOT / "_ext"))
    from term_uses import glossary_terms

    text = (ROOT / "_parts" / "answer.md").read_text()
    assert ":class: dropdown" in text
    assert box_words(text) <= 260, f"{box_words(text)} words before the dropdowns"
    terms = glossary_terms((ROOT / "chapters" / "glossary.md").read_text())
    used = [
        (m[1] or m[0]).strip().lower()
        for m in re.findall(r"\{term\}`([^`<]*?)\s*(?:<([^>]+)>)?`", text)
    ]
    assert used and not set(used) - set(terms), set(used) - set(terms)
    for verdict in paper.VERDICTS:
        assert verdict in terms, f"the glossary does not define the verdict '{verdict}'"
    for word in ("ruler", "floor", "raw ncc", "whitened ncc", "headroom", "reference evidence",
                 "this run"):  # fmt: skip
        assert word in terms, word


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_no_figure_is_wider_than_the_column_allows(path):
    from sslkit import plots

    code = "".join("".join(c["source"]) for c in cells(path) if c["cell_type"] == "code")
    widths = [float(w) for w in re.findall(r"figsize=\(\s*([\d.]+)\s*,", code)]
    assert all(w <= plots.MAX_WIDTH_IN for w in widths), (
        f"figures {widths} inches wide: at most {plots.MAX_WIDTH_IN} keeps their text legible"
    )


def test_binder_installs_cpu_torch_and_the_chapters_needs_only():
    from packaging.requirements import Requirement

    lines = [
        line.split("#")[0].strip()
        for line in (ROOT / "binder" / "requirements.txt").read_text().splitlines()
    ]
    options = [line for line in lines if line.startswith("-")]
    names = {Requirement(line).name for line in lines if line and not line.startswith("-")}
    assert options == ["--extra-index-url https://download.pytorch.org/whl/cpu"]
    assert {"torch", "torchvision", "umap-learn", "ipykernel"} <= names
    assert not names & {"jupyter-book", "otter-grader", "playwright", "pytest", "ruff"}
    assert "pip install --no-deps -e ." in (ROOT / "binder" / "postBuild").read_text()


def test_the_book_build_skips_every_virtual_environment_the_makefile_makes():
    """A virtual environment in the repository holds packages' own Markdown; read by the book
    build, its warnings fail the build (as .venv312 of `make test-py312` once did)."""
    yaml = pytest.importorskip(
        "yaml", reason="the book's configuration is read by jupyter-book's PyYAML"
    )

    made = re.findall(r"(?m)^VENV\w* := (\S+)$", (ROOT / "Makefile").read_text())
    excluded = yaml.safe_load((ROOT / "_config.yml").read_text())["exclude_patterns"]
    assert made and set(made) <= set(excluded), (made, excluded)


def test_the_book_reruns_its_chapters_when_any_file_of_the_package_changes(tmp_path):
    """`make book` re-executes every chapter when its stamp changes; the stamp hashes
    `make book-inputs`, which must name every file under sslkit/, a wing's modules and the
    evidence store's tables included (a glob of sslkit/*.py once left edits in a wing unseen)."""
    import shutil
    import subprocess

    if not shutil.which("make"):
        pytest.skip("no make on this machine")
    shutil.copy(ROOT / "Makefile", tmp_path / "Makefile")
    planted = ["sslkit/cache.py", "sslkit/learn/loop.py", "sslkit/evidence/reference/evals.csv.gz"]
    for name in planted + ["sslkit/learn/__pycache__/loop.cpython-311.pyc"]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x")
    listed = subprocess.run(
        ["make", "-s", "book-inputs"], cwd=tmp_path, capture_output=True, text=True, check=True
    ).stdout.split()
    assert listed == sorted(planted) + ["_parts/answer.md"]
    real = subprocess.run(
        ["make", "-s", "book-inputs"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    files = {p.relative_to(ROOT).as_posix() for p in (ROOT / "sslkit").rglob("*")}
    assert {f for f in files if (ROOT / f).is_file() and "__pycache__" not in f} <= set(real)


# One source per figure: on a page that states a reference verdict, a figure that draws runs
# draws the stored evidence (this run may sit over it, and its caption names both), or, where
# only the live run can be drawn, its caption says "this run only".
_DRAWS_RUNS = re.compile(
    r"analysis\.collect\(|loss_curves\(|configs\.trained\(|\.backbone|extract_features\("
)
_DRAWS_STORE = re.compile(
    r"reference=True|stored_counterparts|decide\.|evidence\.|load_evidence|\"reference\""
)
_STATES_VERDICT = re.compile(r"glue_finding\(|glue_decision\(|book\.answer\(")


def figure_source_problems(nb: dict) -> list[str]:
    """The figures of one notebook that break the rule above, each with its reason."""
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    if not any(_STATES_VERDICT.search("".join(c["source"])) for c in code):
        return []
    problems = []
    for c in code:
        figure = c.get("metadata", {}).get("mystnb", {}).get("figure")
        source = "".join(c["source"])
        if figure is None or not _DRAWS_RUNS.search(source):
            continue
        caption = figure.get("caption", "").lower()
        if _DRAWS_STORE.search(source):
            if "reference" not in caption and "per-image evidence" not in caption:
                problems.append(
                    f"{c.get('id')}: draws the stored evidence, caption does not say so"
                )
            if "reference=true" in source.lower() and "this run" not in caption:
                problems.append(f"{c.get('id')}: draws this run over the reference, caption silent")
        elif "this run only" not in caption:
            problems.append(f"{c.get('id')}: draws only the live run on a page with a verdict")
    return problems


def _figure(source: str, caption: str) -> dict:
    return {"cell_type": "code", "id": "f", "source": [source],
            "metadata": {"mystnb": {"figure": {"caption": caption}}}}  # fmt: skip


def test_the_figure_source_rule_finds_planted_defects():
    verdict = {"cell_type": "code", "source": ['book.glue_finding("x", profile)']}
    live = 'ev = analysis.collect({"VICReg": vicreg}, targets=("fine",))'
    both = 'ev = analysis.collect({"VICReg": vicreg}, targets=("fine",), reference=True)'
    nb = lambda *figs: {"cells": [verdict, *figs]}  # noqa: E731
    assert figure_source_problems(nb(_figure(live, "NCC over training.")))
    assert figure_source_problems(nb(_figure(both, "NCC: the reference evidence.")))
    assert not figure_source_problems(nb(_figure(live, "NCC. This run only: not stored.")))
    assert not figure_source_problems(nb(_figure(both, "NCC: the reference and this run.")))
    assert not figure_source_problems({"cells": [_figure(live, "NCC over training.")]})


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_no_figure_beside_a_reference_verdict_draws_only_the_live_run(path):
    assert figure_source_problems(json.loads(path.read_text())) == []


def test_the_book_repeats_under_500_words_in_the_pages_read_in_order():
    """Boilerplate is explained once and linked: the words a reader of the front page and the
    chapters reads a second time (8-word runs read before, and verdicts written as "if the
    interval lies above …; if it does not …") stay under 500 (tools/repeated_words.py)."""
    import sys

    sys.path.insert(0, str(ROOT / "tools"))
    import repeated_words

    rows, _ = repeated_words.measure()
    reference = repeated_words.reference_pages()
    assert reference and "glossary" in reference
    repeated = sum(r[2] for r in rows if r[0] not in reference)
    assert repeated < 500, f"{repeated} repeated words: `python tools/repeated_words.py --top 20`"
    everywhere = sum(r[2] for r in rows)  # the glossary, instructors' page and API included
    assert everywhere < 500, f"{everywhere} repeated words in the whole book"
    branch = "If the interval lies above the threshold, it holds; if it does not, it does not."
    assert repeated_words.branches(branch) == len(repeated_words.words(branch))
