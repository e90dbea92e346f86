"""The coursework edition (sslkit.course): student notebooks without solutions, otter tests
that call the book's checkers, and a grader that gives full marks, zero and partial marks."""

import copy
import html
import json
import os
import pathlib
import re
import shutil
import sys

import pandas as pd
import pytest

pytest.importorskip(
    "otter", reason="the coursework edition needs otter-grader (the [course] extra)"
)

from sslkit import course, grading
from sslkit.teach import release, sandbox

ROOT = pathlib.Path(__file__).resolve().parent.parent
CHAPTERS = course.chapters(ROOT)


def md(text):
    return {"cell_type": "markdown", "metadata": {}, "source": text}


def code(text):
    return {
        "cell_type": "code",
        "metadata": {},
        "source": text,
        "outputs": [],
        "execution_count": None,
    }


TOY = {
    "metadata": {},
    "nbformat": 4,
    "nbformat_minor": 5,
    "cells": [
        code(
            'import sys\nif "google.colab" in sys.modules:\n    %pip install -q "sslkit @ git+https://x/y@main"'
        ),
        code("import torch\nfrom sslkit import metrics"),
        md(
            "Some prose.\n\n```{exercise} Written one\n:label: ex-w\nWhy?\n```\n\n"
            "```{solution} ex-w\n:class: dropdown\nBecause of the SECRET-WRITTEN reason.\n```\n\n"
            "```{exercise} Coded one\n:label: ex-c\nWrite `my_sq(x)`.\n```\n\n"
            "```{solution-start} ex-c\n:class: dropdown\n```\n\nSECRET-GATED explanation."
        ),
        code(
            "from sslkit import exercises\n\n\ndef my_sq(x):\n    return x * x  # SECRET-CODE\n\n\n"
            "exercises.check_invariance_loss(my_sq)\nprint('SECRET-PRINT')"
        ),
        md("```{solution-end}\n```\n\nProse after the exercises."),
    ],
}


def test_split_removes_every_solution_and_stubs_the_graded_one():
    student, exercises = course.split(TOY, "toy")
    text = json.dumps(student)
    assert "SECRET" not in text
    assert "Prose after the exercises." in text and "Some prose." in text
    assert [e.label for e in exercises] == ["ex-w", "ex-c"]
    written, coded = exercises
    assert not written.graded and "SECRET-WRITTEN" in written.answer
    assert coded.graded and (coded.checker, coded.function) == ("check_invariance_loss", "my_sq")
    assert "SECRET-GATED" in coded.answer and "SECRET-CODE" in coded.code[0]
    answer, check = student["cells"][3:5]
    assert course.ANSWER_TAG in answer["metadata"]["tags"]
    assert check["source"] == 'grader.check("ex_c")'


def test_a_stub_defines_the_function_and_it_raises_a_hint():
    student, _ = course.split(TOY, "toy")
    env = {}
    exec(student["cells"][3]["source"], env)
    with pytest.raises(NotImplementedError, match="replace this line with your code"):
        env["my_sq"](2)


@pytest.mark.parametrize(
    "broken, message",
    [
        (lambda nb: nb["cells"][4].update(source="Prose without an end."), "no solution-end"),
        (
            lambda nb: nb["cells"][2].update(
                source=nb["cells"][2]["source"].replace(":label: ex-w\n", "")
            ),
            "has no :label:",
        ),
        (
            lambda nb: nb["cells"][2].update(
                source=nb["cells"][2]["source"].replace("{solution} ex-w", "{solution} ex-x")
            ),
            "refers to 'ex-x'",
        ),
    ],
)
def test_malformed_exercises_are_refused_with_a_message(broken, message):
    nb = copy.deepcopy(TOY)
    broken(nb)
    with pytest.raises(ValueError, match=message):
        course.split(nb, "toy")


def test_prose_that_uses_a_solutions_glue_is_refused():
    nb = copy.deepcopy(TOY)
    nb["cells"][3]["source"] += '\nbook.glue("sq_value", 4)'
    nb["cells"][4]["source"] += "\n\nIn this build it is {glue:text}`sq_value`."
    with pytest.raises(ValueError, match="`sq_value`, which only a solution computes"):
        course.student_notebook(nb, "toy")
    nb["cells"][1]["source"] += '\nbook.glue("sq_value", 4)'  # glued outside the solution too: fine
    course.student_notebook(nb, "toy")


def test_a_chapter_the_edition_cannot_build_from_says_why():
    nested = copy.deepcopy(TOY)
    nested["cells"][3]["source"] = (
        "def helper():\n    def my_sq(x):\n        return x\n    return my_sq\n\n\n"
        "exercises.check_invariance_loss(my_sq)"
    )
    with pytest.raises(ValueError, match="does not define it at the top level"):
        course.split(nested, "toy")
    no_install = copy.deepcopy(TOY)
    no_install["cells"][0]["source"] = "import sys"
    with pytest.raises(ValueError, match="no Colab install cell"):
        course.student_notebook(no_install, "toy")


def test_the_student_notebook_installs_otter_and_starts_the_grader():
    student, _ = course.student_notebook(TOY, "toy")
    first, grader = student["cells"][:2]
    assert (
        '"sslkit[course] @ git+https://x/y@main"' in first["source"]
        and "torch" not in first["source"]
    )
    assert course.GRADER_TAG in grader["metadata"]["tags"]
    assert (
        'grader = grading.grader({\n    "ex_c": ("check_invariance_loss", "my_sq")\n})'
        in grader["source"]
    )
    assert "import torch" in grader["source"]  # the chapter's imports, for the answers
    tags = [c["metadata"].get("tags", []) for c in student["cells"] if c["cell_type"] == "code"]
    ignored = [course.IGNORE_TAG in t for t in tags]
    assert ignored == [True, False, True, False, False]  # install, grader, imports, answer, check
    assert student["metadata"]["sslkit"] == {"chapter": "toy", "questions": ["ex_c"]}


# --- the real chapters ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def editions():
    return {p.stem: course.student_notebook(json.loads(p.read_text()), p.stem) for p in CHAPTERS}


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_every_chapter_has_an_auto_graded_exercise(path, editions):
    _, exercises = editions[path.stem]
    assert any(e.graded for e in exercises), (
        f"{path.stem}: no exercise calls exercises.check_*(my_*)"
    )


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_student_notebooks_hold_no_solution_text(path, editions):
    student, exercises = editions[path.stem]
    text = "\n".join("".join(c["source"]) for c in student["cells"])
    assert "solution-start" not in text and "{solution}" not in text
    for ex in exercises:
        leaked = [f for f in ex.fragments() if f in text]
        assert not leaked, f"{ex.label}: solution text in the student notebook: {leaked[:3]}"


# A planted wrong answer per auto-graded exercise, and a word the checker's message must contain.
WRONG = {
    "ex_analyze_cdnv": (
        "def my_cdnv(counts, sums, sq_norms):\n    mu = sums / counts[:, None]\n"
        "    var = sq_norms / counts\n    i, j = torch.triu_indices(len(counts), len(counts), 1)\n"
        "    return ((var[i] + var[j]) / (2 * ((mu[i] - mu[j]) ** 2).sum(1))).mean()",
        "CDNV on",
    ),
    "ex_intro_ncc": (
        "ncc = metrics.ncc_accuracy\n"  # bound before the checker blocks sslkit's own answer
        "def my_ncc(features, labels):\n    return 1 - ncc(features, labels)",
        "NCC accuracy",
    ),
    "ex_pretext_rotate": (
        "def my_rotate(images, k):\n    return torch.stack([torch.rot90(x, -int(r), dims=(-2, -1))"
        " for x, r in zip(images, k)])",
        "counter-clockwise",
    ),
    "ex_joint_inv": (
        "def my_invariance(z1, z2):\n    return ((z1 - z2) ** 2).sum(1).mean()",
        "invariance loss",
    ),
    "ex_contrastive_ntxent": (
        "nt_xent = losses.nt_xent\n"
        "def my_nt_xent(z1, z2, temperature):\n    return nt_xent(z1, z2, 1.0).total",
        "NT-Xent",
    ),
    "ex_cluster_cdnv": (
        "cdnv = metrics.cdnv\n"
        "def my_cdnv(features, labels):\n    return cdnv(features, labels) * 1.01",
        "CDNV",
    ),
    "ex_cluster_erank": (
        "def my_effective_rank(features):\n    s = torch.linalg.svdvals(features.double())\n"
        "    p = s / s.sum()\n    return torch.exp(-(p * p.log()).sum()).item()",
        "centre the features",
    ),
    "ex_reg_terms": (
        "inv, var, cov = losses.invariance_loss, losses.variance_loss, losses.covariance_loss\n"
        "def my_vicreg_terms(z1, z2):\n"
        "    return inv(z1, z2), var(z1) + var(z2), cov(z1) + cov(z2)",  # forgot to halve
        "variance term",
    ),
    "ex_reg_barlow": (
        "barlow = losses.barlow_twins\n"
        "def my_barlow_terms(z1, z2):\n    t = barlow(z1, z2, eps=0.0).terms\n"
        "    return t['redundancy'], t['invariance']",
        "invariance (on-diagonal) term",
    ),
    "ex_ratio_code": (
        "def my_ratio(loss):\n"
        "    return loss.get('var_weight', 25.0) / loss.get('inv_weight', 25.0)",
        "raised ZeroDivisionError: float division by zero on loss = ",
    ),
    "ex_random_impl": (
        "def my_random_targets(labels, randomness, seed):\n"
        "    g = torch.Generator().manual_seed(seed)\n"
        "    return torch.randint(0, 10, labels.shape, generator=g)",
        "class sizes changed",
    ),
    "ex_hier_grouping": (
        "def my_random_grouping(fine_labels, coarse_labels, seed):\n    return coarse_labels",
        "fewer than three groupings",
    ),
    "ex_found_holm": (
        "def my_holm(pvalues, alpha):\n    return [p <= alpha / len(pvalues) for p in pvalues]",
        "Holm rejects",
    ),
    "ex_why_r2": (
        "def my_r2(src_train, dst_train, src_test, dst_test, ridge):\n"
        "    x, y, tx, ty = (t.double() for t in (src_train, dst_train, src_test, dst_test))\n"
        "    gram = (x - x.mean(0)).T @ (x - x.mean(0))\n"
        "    lam = ridge * torch.linalg.eigvalsh(gram).mean()\n"
        "    beta = torch.linalg.solve(gram + lam * torch.eye(len(gram), dtype=gram.dtype),\n"
        "                              (x - x.mean(0)).T @ (y - y.mean(0)))\n"
        "    pred = (tx - x.mean(0)) @ beta + y.mean(0)\n"
        "    return float(1 - ((ty - pred) ** 2).sum() / ((ty - y.mean(0)) ** 2).sum())",
        "test targets' own spread",
    ),
    "ex_scale_seeds": (
        "def my_seeds_needed(sd, half_width):\n"
        "    return max(2, round((1.96 * sd / half_width) ** 2))",
        "the reference",
    ),
}


def _graded(editions):
    for chapter, (student, exercises) in editions.items():
        for ex in exercises:
            if ex.graded:
                yield chapter, student, ex


def _answer_env(student, answer, tmp_path, monkeypatch):
    """The namespace otter grades in: the grader cell (imports, tests) then the answer cell."""
    monkeypatch.chdir(tmp_path)
    env = {}
    grader = next(c for c in student["cells"] if course.GRADER_TAG in c["metadata"].get("tags", []))
    exec(grader["source"], env)
    exec(answer, env)
    return env


def _run_test(ex, env):
    from otter.test_files.exception_test import ExceptionTestFile

    test = ExceptionTestFile.from_string(course.test_source(ex.question, ex.checker, ex.function))
    test.run(env)
    return test


def test_every_graded_exercise_has_a_planted_wrong_answer(editions):
    assert sorted(ex.question for _, _, ex in _graded(editions)) == sorted(WRONG)


def test_reference_answers_pass_stubs_and_planted_errors_fail_with_a_message(
    editions, tmp_path, monkeypatch
):
    for _chapter, student, ex in _graded(editions):
        stub = next(
            c["source"]
            for c in student["cells"]
            if ex.function in c["source"] and course.ANSWER_TAG in c["metadata"].get("tags", [])
        )
        reference = _run_test(ex, _answer_env(student, ex.code[0], tmp_path, monkeypatch))
        assert reference.passed_all and reference.grade == 1, (
            f"{ex.label}: reference fails: {reference.summary()}"
        )
        untouched = _run_test(ex, _answer_env(student, stub, tmp_path, monkeypatch))
        assert untouched.grade == 0 and "still raises NotImplementedError" in untouched.summary()
        wrong, word = WRONG[ex.question]
        planted = _run_test(ex, _answer_env(student, wrong, tmp_path, monkeypatch))
        assert planted.grade == 0, f"{ex.label}: the planted wrong answer passes"
        assert word in planted.summary(), (
            f"{ex.label}: message does not name the problem: {planted.summary()}"
        )


def test_a_missing_function_is_named_in_the_message(editions, tmp_path, monkeypatch):
    chapter, student, ex = next(_graded(editions))
    test = _run_test(ex, _answer_env(student, "x = 1", tmp_path, monkeypatch))
    assert test.grade == 0 and f"there is no function named {ex.function}" in test.summary()


# --- the edition, end to end with otter run ----------------------------------------------------


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("student")
    return out, course.build(out, root=ROOT)


def _paste(student, answers):
    out, it = copy.deepcopy(student), iter(answers)
    for c in out["cells"]:
        if course.ANSWER_TAG in c["metadata"].get("tags", []):
            c["source"] = next(it)
    return out


def test_build_writes_notebooks_autograders_and_an_answer_key(built):
    out, exercises = built
    assert sorted(p.name for p in (out / "notebooks").glob("*.ipynb")) == [p.name for p in CHAPTERS]
    assert sorted(p.stem for p in (out / "autograder").glob("*.zip")) == [p.stem for p in CHAPTERS]
    key = (out / "answer_key.html").read_text()
    for ex in exercises:
        assert f"<h3>{html.escape(ex.title)}" in key and course._myst_to_html(ex.answer) in key
        assert all(html.escape(c) in key for c in ex.code)
    for p in (out / "notebooks").glob("*.ipynb"):
        assert "solution-start" not in p.read_text() and "{solution}" not in p.read_text()


def test_every_pip_line_of_every_autograder_is_a_valid_requirement(built):
    """Gradescope installs each zip's environment.yml: every pip line must parse, and sslkit's
    must be the chapter's own git requirement (a stray backslash once joined two lines)."""
    import zipfile

    from packaging.requirements import Requirement

    out, _ = built
    for path in sorted((out / "autograder").glob("*.zip")):
        with zipfile.ZipFile(path) as z:
            text = z.read("environment.yml").decode()
        pip = text.split("- pip:", 1)[1]
        lines = re.findall(r"^\s+- (.+)$", pip, re.M)
        options = [line for line in lines if line.startswith("-")]
        lines = [line for line in lines if not line.startswith("-")]
        assert options == [f"--extra-index-url {release.CPU_TORCH_INDEX}"], (path.name, options)
        assert len(lines) >= 2, (path.name, text)
        reqs = [Requirement(line) for line in lines]  # raises on a malformed line
        sslkit = [r for r in reqs if r.name == "sslkit"]
        chapter = json.loads((ROOT / "chapters" / f"{path.stem}.ipynb").read_text())
        expected = Requirement(course.install_spec(chapter)).url
        assert len(sslkit) == 1 and sslkit[0].url == expected, (path.name, lines)
        assert not any(line.rstrip().endswith("\\") for line in lines), (path.name, lines)


def test_every_autograder_runs_colabs_python_and_cpu_torch(built):
    """Gradescope builds each zip's environment.yml: Colab's Python (3.12, not otter's default
    3.13) and PyTorch's CPU wheel index, without which sslkit's torch comes from PyPI with
    3 GB of CUDA libraries, for checkers on small tensors."""
    import zipfile

    yaml = pytest.importorskip("yaml", reason="reading environment.yml needs PyYAML")
    out, _ = built
    zips = sorted((out / "autograder").glob("*.zip"))
    assert zips
    for path in zips:
        with zipfile.ZipFile(path) as z:
            env = yaml.safe_load(z.read("environment.yml"))
        deps = env["dependencies"]
        assert f"python={release.COLAB_PYTHON}" in deps, (path.name, deps)
        pip = next(d["pip"] for d in deps if isinstance(d, dict))
        assert f"--extra-index-url {release.CPU_TORCH_INDEX}" in pip, (path.name, pip)
        assert any(line.startswith("sslkit") for line in pip), (path.name, pip)


@pytest.mark.skipif(
    sandbox.problem() is not None and os.environ.get("CI") != "true",
    reason=f"its hostile submission needs the grading sandbox: {sandbox.problem()}",
)
def test_the_grader_scores_a_folder_full_zero_and_partial(built, tmp_path):
    out, _ = built
    student = json.loads((out / "notebooks" / "03_clustering.ipynb").read_text())
    _, exercises = course.split(
        json.loads((ROOT / "chapters" / "03_clustering.ipynb").read_text()), "03_clustering"
    )
    reference = [e.code[0] for e in exercises if e.graded]
    assert len(reference) == 2
    subs = tmp_path / "submissions"
    (subs / "ada").mkdir(parents=True)
    (subs / "bob").mkdir()
    (subs / "cy").mkdir()
    (subs / "ada" / "03_clustering.ipynb").write_text(json.dumps(_paste(student, reference)))
    (subs / "bob" / "03_clustering.ipynb").write_text(json.dumps(student))
    (subs / "cy" / "03_clustering.ipynb").write_text(
        json.dumps(_paste(student, [WRONG["ex_cluster_cdnv"][0], reference[1]]))
    )
    (subs / "dan").mkdir()
    (subs / "dan" / "03_clustering.ipynb").write_text("{ not json")
    # Planted: metadata naming a zip outside the autograder folder.
    (tmp_path / "evil.zip").write_bytes((out / "autograder" / "03_clustering.zip").read_bytes())
    elsewhere = copy.deepcopy(student)
    elsewhere["metadata"]["sslkit"]["chapter"] = "../evil"
    (subs / "dan" / "other.ipynb").write_text(json.dumps(elsewhere))
    # Planted: a submission that knows the grader's paths and deletes the autograders and
    # overwrites the other notebooks (it once did, through its parent processes' arguments).
    graders = tmp_path / "autograder"
    shutil.copytree(out / "autograder", graders)
    # It also deletes its own tests (it would read "0 of 0 possible").
    harm = (
        f"import glob, os, shutil\nshutil.rmtree({str(graders)!r}, ignore_errors=True)\n"
        f"for f in glob.glob({str(subs)!r} + '/*/*.ipynb'):\n"
        "    try:\n        open(f, 'w').write('gone')\n    except OSError:\n        pass\n"
        "for f in glob.glob('tests/*.py'):\n    os.remove(f)"
    )
    (subs / "dan" / "harm.ipynb").write_text(json.dumps(_paste(student, [harm, "x = 1"])))
    rewrite = (
        "import glob\nfor f in glob.glob('tests/*.py'):\n    src = open(f).read()\n"
        "    open(f, 'w').write(src.replace('run_check(', '(lambda *a: None)('))"
    )  # passing tests of the same points in place of the real ones
    (subs / "dan" / "rewrite.ipynb").write_text(json.dumps(_paste(student, [rewrite, "x = 1"])))
    broken = "def my_cdnv(features, labels)\n    return 0.0"  # a missing colon
    (subs / "dan" / "syntax.ipynb").write_text(json.dumps(_paste(student, [broken, "x = 1"])))
    ada = (subs / "ada" / "03_clustering.ipynb").read_text()
    # two at a time: the sandbox must keep a hostile submission from its neighbour as well
    table = course.grade(subs, graders, tmp_path / "scores.csv", jobs=2)
    assert sorted(p.name for p in graders.iterdir()) == sorted(
        p.name for p in (out / "autograder").iterdir()
    )
    assert (subs / "ada" / "03_clustering.ipynb").read_text() == ada
    scores = {
        r.submission.split("/")[0]: (r.total, r.possible)
        for r in table.itertuples()
        if r.submission[0] != "d"
    }
    assert scores == {"ada": (2, 2), "bob": (0, 2), "cy": (1, 2)}
    assert (
        "not a readable notebook"
        in table.set_index("submission").loc["dan/03_clustering.ipynb", "error"]
    )
    rows = table.set_index("submission")
    assert "no autograder for chapter '../evil'" in rows.loc["dan/other.ipynb", "error"]
    assert "changed its tests while it was graded" in rows.loc["dan/harm.ipynb", "error"]
    assert "changed its tests while it was graded" in rows.loc["dan/rewrite.ipynb", "error"]
    assert pd.isna(rows.loc["dan/rewrite.ipynb", "total"])
    assert "a cell has a SyntaxError" in rows.loc["dan/syntax.ipynb", "feedback"]
    assert pd.isna(rows.loc["dan/harm.ipynb", "total"])  # blank, never 0
    cy = table.set_index("submission").loc["cy/03_clustering.ipynb"]
    assert cy["ex_cluster_cdnv"] == 0 and cy["ex_cluster_erank"] == 1 and "CDNV" in cy["feedback"]
    assert (
        (tmp_path / "scores.csv")
        .read_text()
        .startswith("submission,student,chapter,total,possible")
    )
    assert dict(zip(table.submission, table.student))["cy/03_clustering.ipynb"] == "cy"


def test_grading_a_notebook_that_is_not_a_chapter_says_so(built, tmp_path, monkeypatch):
    out, _ = built
    (tmp_path / "subs").mkdir()
    (tmp_path / "subs" / "other.ipynb").write_text(
        json.dumps({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5})
    )
    table = course.grade(tmp_path / "subs", out / "autograder", tmp_path / "s.csv")
    assert "no autograder for chapter None" in table.loc[0, "error"]
    assert "--chapter" in table.loc[0, "error"]
    # a Colab copy that lost its metadata: --chapter grades it with that chapter's autograder
    # (otter itself is not run again here: the test above grades real notebooks)
    from sslkit import grading

    used = []

    def graded(nb, zip_path, timeout, box=None):
        used.append(zip_path.name)
        return {"total": 0}

    monkeypatch.setattr(grading, "_grade_in_subprocess", graded)
    table = course.grade(tmp_path / "subs", out / "autograder", tmp_path / "s.csv",
                         chapter="03_clustering", student_pattern=r"^(\w+)")  # fmt: skip
    assert used == ["03_clustering.zip"] and table.loc[0, "student"] == "other"
    with pytest.raises(FileNotFoundError, match="no chapters in"):
        course.build(tmp_path / "edition", root=tmp_path)  # fails closed: nothing to build
    assert not (tmp_path / "edition").exists()


def test_the_answer_key_shows_this_builds_numbers():
    ran = copy.deepcopy(TOY)
    ran["cells"][3]["outputs"] = [
        {"output_type": "stream", "name": "stdout", "text": "SQUARED 4\n"},
        {
            "output_type": "display_data",
            "metadata": {"scrapbook": {"name": "sq_value"}},
            "data": {"application/papermill.record/text/plain": "'4.0%'"},
        },
    ]
    ran["cells"][2]["source"] = ran["cells"][2]["source"].replace(
        "SECRET-GATED explanation.", "It gives {glue:text}`sq_value`."
    )
    _, exercises = course.split(ran, "toy")
    key = course.answer_key(exercises, {"toy": course._glue_and_outputs(ran)})
    assert "It gives 4.0%." in key and "SQUARED 4" in key
    assert "⟨sq_value⟩" in course.answer_key(exercises)  # no build at hand: the key, marked


def test_the_student_sites_config_hides_solutions_and_launch_buttons():
    import yaml

    config = yaml.safe_load(course.student_config((ROOT / "_config.yml").read_text()))
    book = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert config["execute"]["execute_notebooks"] == "off"
    assert config["sphinx"]["config"]["hide_solutions"] is True
    assert "launch_buttons" not in config and config["html"]["use_repository_button"] is False
    assert config["title"].endswith("(student edition)")
    for kept in ("bibtex_bibfiles", "parse", "repository"):  # everything else as in the book
        assert config[kept] == book[kept]
    assert config["sphinx"]["extra_extensions"] == book["sphinx"]["extra_extensions"]


def test_a_checker_names_what_came_back_when_it_is_not_a_number():
    from sslkit import exercises

    with pytest.raises(
        AssertionError, match=r"invariance loss for N=4, D=3: expected one number, got \(4, 3\)"
    ):
        exercises.check_invariance_loss(lambda a, b: (a - b) ** 2)
    with pytest.raises(AssertionError, match="raised ZeroDivisionError: .* on z1, z2 of shape"):
        exercises.check_invariance_loss(lambda a, b: 1 / 0)


def test_the_build_refuses_an_output_folder_it_did_not_create(tmp_path):
    """Planted: `build --out .` in a project with its own notebooks and site."""
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "notebooks" / "thesis.ipynb").write_text("{}")
    (tmp_path / "site").mkdir()
    with pytest.raises(ValueError, match="did not write"):
        course.build(tmp_path, root=ROOT)
    assert (tmp_path / "notebooks" / "thesis.ipynb").read_text() == "{}"
    assert (tmp_path / "site").is_dir()


def test_an_endless_loop_is_stopped_alone_and_the_csv_keeps_every_row(built, tmp_path, monkeypatch):
    """Planted: `while True: pass` in one submission; the timeout stops it, not the class, and
    otter's temporary copy goes with it (graded without a sandbox, whose /tmp is its own)."""
    out, _ = built
    scratch = tmp_path / "scratch"  # the temporary folder the grading process is given
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))
    student = json.loads((out / "notebooks" / "03_clustering.ipynb").read_text())
    (tmp_path / "subs").mkdir()
    (tmp_path / "subs" / "a_loop.ipynb").write_text(
        json.dumps(_paste(student, ["while True:\n    pass", "x = 1"]))
    )
    (tmp_path / "subs" / "b_broken.ipynb").write_text("{ not json")
    table = grading.grade(tmp_path / "subs", out / "autograder", tmp_path / "s.csv", timeout=10,
                          sandboxed=False)  # fmt: skip
    rows = table.set_index("submission")
    assert "stopped after 10 s" in rows.loc["a_loop.ipynb", "error"]
    assert list(scratch.iterdir()) == []  # nothing of otter's left behind
    assert "not a readable notebook" in rows.loc["b_broken.ipynb", "error"]  # graded after it
    assert len(pd.read_csv(tmp_path / "s.csv")) == 2
    with pytest.raises(ValueError, match="timeout must be a positive"):
        grading.grade(tmp_path / "subs", out / "autograder", tmp_path / "s.csv", timeout=0)


def test_a_pinned_edition_installs_one_release():
    nb = json.loads((ROOT / "chapters" / "03_clustering.ipynb").read_text())
    pinned = course.pin(nb, "v0.2.0")
    spec = course.install_spec(pinned)
    assert spec.endswith("@v0.2.0") and "@main" not in spec
    student, _ = course.student_notebook(pinned, "03_clustering")
    text = "".join("".join(c["source"]) for c in student["cells"])
    assert "sslkit[course] @ git+" in text and "@v0.2.0" in text and "@main" not in text
    # the book's own notebook is untouched: it keeps the release it installs
    assert course.install_spec(nb).endswith(f"@{release.tag()}")
    for moving in ("main; rm -rf /", "main", "dev"):
        with pytest.raises(ValueError, match="not a git tag"):
            course.pin(nb, moving)
    line = '%pip install "sslkit[course] @ git+https://x.org/r@main#egg=s"'
    extras = {"cells": [{"cell_type": "code", "source": [line]}]}
    pinned_text = "".join(course.pin(extras, "v1")["cells"][0]["source"])
    assert pinned_text.endswith('"sslkit[course] @ git+https://x.org/r@v1#egg=s"')


def test_student_notebooks_read_as_colab_copies(tmp_path):
    """With the book's glued values and links, a student notebook shows values and links,
    never a raw role or fence; a solution the split left behind is refused, not shipped."""
    from sslkit import colab

    chapter = copy.deepcopy(TOY)
    chapter["cells"][2]["source"] = chapter["cells"][2]["source"].replace(
        "Some prose.", "Some prose on {glue:text}`n_train` images and {term}`NCC`."
    )
    book = "https://example.org/book/"
    links = colab.Links({"ncc": f"{book}g.html#ncc"}, book=book)
    readable = course._colab_copier({"toy": ({"n_train": "7000"}, {})}, links)
    student, _ = course.student_notebook(chapter, "toy")
    out = readable(student, ROOT / "chapters" / "toy.ipynb")
    text = json.dumps(out)
    assert f"Some prose on 7000 images and [NCC]({book}g.html#ncc)." in text
    assert "#### Exercise: Written one" in text and colab.leftovers(out) == []
    assert f"{book}chapters/toy.html" in text  # the note under the title points to the page
    assert "SECRET" not in text
    leaked = copy.deepcopy(student)
    leaked["cells"].append(md("```{solution} ex-w\nBecause.\n```"))
    with pytest.raises(ValueError, match="must have no solutions"):
        readable(leaked, ROOT / "chapters" / "toy.ipynb")
    assert course._colab_copier({}, links) is None  # no build at hand: MyST kept


def test_a_zips_requirements_install_into_a_fresh_environment(built, tmp_path):
    """pip resolves one autograder's pip lines in a fresh virtual environment (``--dry-run``,
    ``--no-index``: no network). The environment sees this machine's installed packages
    through a ``.pth`` file, as an index would offer them; sslkit comes from this checkout
    instead of the git URL. Otter's own ``[grading,plugins]`` extras pull packages the
    Gradescope image downloads (google-api-python-client, …) that no test machine holds:
    that line installs without them here, and is parsed with them above."""
    import subprocess
    import sysconfig
    import venv
    import zipfile

    from packaging.requirements import Requirement

    out, _ = built
    with zipfile.ZipFile(out / "autograder" / "03_clustering.zip") as z:
        text = z.read("environment.yml").decode()
    lines = []
    for line in re.findall(r"^\s+- (.+)$", text.split("- pip:", 1)[1], re.M):
        if line.startswith("-"):  # the CPU torch index: kept, to show pip reads the option
            lines.append(line)  # (--no-index below keeps it from being reached)
            continue
        req = Requirement(line)
        if req.name == "sslkit":
            line = f"sslkit @ {ROOT.as_uri()}"
        elif req.name == "otter-grader":
            line = f"otter-grader{req.specifier}"
        lines.append(line)
    env = tmp_path / "env"
    venv.create(env, with_pip=False)
    python = env / "bin" / "python"
    site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    (pathlib.Path(site) / "_this_machine.pth").write_text(sysconfig.get_paths()["purelib"])
    (tmp_path / "requirements.txt").write_text("\n".join(lines) + "\n")
    report = tmp_path / "report.json"
    done = subprocess.run(
        [sys.executable, "-m", "pip", "--python", python, "install", "--dry-run", "--no-index"]
        + ["--no-build-isolation", "--report", report, "-r", tmp_path / "requirements.txt"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    installed = [i["metadata"]["name"] for i in json.loads(report.read_text())["install"]]
    assert installed == ["sslkit"], installed


def test_the_answer_key_hands_its_math_to_mathjax():
    """Math reaches MathJax whole (Markdown would read ``a_i … b_j`` as emphasis), and the page
    loads MathJax from the student site's own copy."""
    shown = course._myst_to_html("So $a_i < b_j$ and\n\n$$\\sum_i x_i^2$$\n")
    assert '<span class="math inline">\\(a_i &lt; b_j\\)</span>' in shown
    assert "\\[\\sum_i x_i^2\\]" in shown and "<em>" not in shown
    assert f"<script defer src='{course.MATHJAX}'></script>" in course.answer_key([])


def test_a_build_with_the_books_outputs_but_no_links_fails_closed(tmp_path):
    with pytest.raises(FileNotFoundError, match="colab/links.json"):
        course.build(tmp_path / "edition", executed=tmp_path / "cache", root=ROOT)
    assert not (tmp_path / "edition").exists(), "it wrote before refusing"


def test_the_answer_key_links_terms_with_the_books_links():
    """With the book's links, the answer key reads MyST as the Colab copies do: a term is a
    link, a glued value this build's number, and a role inside a code span stays code."""
    from sslkit import colab

    ran = copy.deepcopy(TOY)
    ran["cells"][2]["source"] = ran["cells"][2]["source"].replace(
        "SECRET-GATED explanation.", "Use {term}`NCC` and `` {term}`NCC` ``: {glue:text}`sq`."
    )
    _, exercises = course.split(ran, "toy")
    links = colab.Links({"ncc": "https://example.org/g.html#term-NCC"}, book="https://example.org/")
    key = course.answer_key(exercises, {"toy": ({"sq": "4.0%"}, {})}, links)
    assert '<a href="https://example.org/g.html#term-NCC">NCC</a>' in key
    assert "<code>{term}`NCC`</code>" in key and "4.0%." in key


@pytest.mark.parametrize(
    "flag, wanted", [([], None), (["--sandbox"], True), (["--no-sandbox"], False)]
)
def test_the_grade_command_passes_the_sandbox_choice(tmp_path, monkeypatch, flag, wanted):
    seen = {}

    def grade(*args, **kwargs):
        seen.update(kwargs)
        return pd.DataFrame({"submission": []})

    monkeypatch.setattr(course, "grade", grade)
    assert course.main(["grade", str(tmp_path), "--out", str(tmp_path / "s.csv"), *flag]) == 0
    assert seen["sandboxed"] is wanted


def test_grading_with_sandbox_true_refuses_where_there_is_none(tmp_path, monkeypatch):
    from sslkit.teach import sandbox

    monkeypatch.setattr(sandbox, "problem", lambda: "bwrap is not installed (planted)")
    with pytest.raises(RuntimeError, match="cannot grade in a sandbox: bwrap is not installed"):
        grading.grade(tmp_path, tmp_path, tmp_path / "s.csv", sandboxed=True)


@pytest.mark.parametrize(
    "line", ['{"total": 2, "possible": 2, "ex"', "not json", "[1, 2]", '{"total": "all"}', ""]
)
def test_an_unreadable_grading_result_is_an_error_row_not_a_stop(line):
    assert "could not be read" in grading._result_row(line)["error"]
    assert grading._result_row('{"total": 1, "possible": 2, "f": "ok"}') == {
        "total": 1, "possible": 2, "f": "ok"
    }  # fmt: skip


def test_a_checker_message_is_kept_short():
    class Planted:
        def summary(self):
            return "AssertionError: " + "A" * 70_000

    said = grading._failure(Planted())
    assert len(said) <= grading.MESSAGE_CHARS + 2 and said.endswith("…")


# --- grading in parallel, and the written exercises ---------------------------------------------


def _toy_class(tmp_path, answers: dict[str, str | None]):
    """A folder of toy submissions (``answers``: student → written answer, None for an
    unreadable file) and an autograder folder whose zip lists the written exercise."""
    import zipfile

    student, _ = course.student_notebook(TOY, "toy")
    subs, graders = tmp_path / "subs", tmp_path / "autograder"
    graders.mkdir()
    with zipfile.ZipFile(graders / "toy.zip", "w") as z:
        z.writestr("tests/ex_c.py", "")
        z.writestr(grading.WRITTEN_FILE, json.dumps({"written": [
            {"question": "ex_w", "label": "ex-w", "title": "Written one"}]}))  # fmt: skip
    for name, answer in answers.items():
        (subs / name).mkdir(parents=True)
        nb = copy.deepcopy(student)
        cells = nb["cells"]
        tags = [c["metadata"].get("tags", []) for c in cells]
        at = next(i for i, t in enumerate(tags) if course.WRITTEN_TAG in t)
        if answer:
            cells[at]["source"] = answer
            cells.insert(at + 1, code("plot_this()  # added by the student"))
        text = json.dumps(nb) if answer is not None else "{ not json"
        (subs / name / "toy.ipynb").write_text(text)
    return subs, graders


def test_grading_in_parallel_gives_the_serial_csv_in_order(tmp_path, monkeypatch):
    """Planted: notebooks that finish in the reverse of their order; --jobs 2 grades two at
    once, never more, and writes the very CSV that --jobs 1 writes."""
    import threading
    import time

    names = ["ada", "bob", "cy", "dan", "eve"]
    subs, graders = _toy_class(tmp_path, {n: f"{n} says why" for n in names} | {"fay": None})
    lock, now, most = threading.Lock(), [0], [0]

    def graded(nb_path, zip_path, timeout, box=None):
        with lock:
            now[0] += 1
            most[0] = max(most[0], now[0])
        time.sleep(0.05 * (len(names) - names.index(nb_path.parent.name)))  # later: quicker
        with lock:
            now[0] -= 1
        score = names.index(nb_path.parent.name) % 2
        return {"total": score, "possible": 1, "ex_c": score, "feedback": f"{nb_path.parent.name}"}

    monkeypatch.setattr(grading, "_grade_in_subprocess", graded)
    csv = {}
    for jobs in (1, 2):
        most[0] = 0
        grading.grade(subs, graders, tmp_path / f"s{jobs}.csv", sandboxed=False, jobs=jobs,
                      written_dir=tmp_path / "written")  # fmt: skip
        csv[jobs] = (tmp_path / f"s{jobs}.csv").read_text()
        assert most[0] == jobs
    assert csv[1] == csv[2]
    table = pd.read_csv(tmp_path / "s2.csv")
    assert list(table.student) == [*names, "fay"] and list(table.total[:5]) == [0, 1, 0, 1, 0]
    assert "not a readable notebook" in table.error.iloc[5]
    for jobs in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="jobs must be a whole number"):
            grading.grade(subs, graders, tmp_path / "s.csv", sandboxed=False, jobs=jobs)


def test_written_exercises_get_an_empty_column_and_an_html_page(tmp_path, monkeypatch):
    row = {"total": 1, "possible": 1, "ex_c": 1, "feedback": ""}
    monkeypatch.setattr(grading, "_grade_in_subprocess", lambda *a, **k: dict(row))
    subs, graders = _toy_class(
        tmp_path, {"ada": "Because <script>alert(1)</script> the variance", "bob": ""}
    )
    table = grading.grade(subs, graders, tmp_path / "scores.csv", sandboxed=False)
    header = (tmp_path / "scores.csv").read_text().splitlines()[0].split(",")
    assert header.index("ex_c") < header.index("written_ex_w") < header.index("feedback")
    assert table.written_ex_w.isna().all()  # empty: the hand marks go there
    assert list(table.written_answers) == ["ada__toy.html", "bob__toy.html"]
    ada = (tmp_path / "scores_written" / "ada__toy.html").read_text()
    assert "Written one" in ada and "written_ex_w" in ada
    assert "&lt;script&gt;alert(1)&lt;/script&gt; the variance" in ada and "<script>" not in ada
    assert "plot_this()  # added by the student" in ada
    assert "Prose after the exercises" not in ada and "my_sq" not in ada  # the answer only
    bob = (tmp_path / "scores_written" / "bob__toy.html").read_text()
    assert "no answer found" in bob  # the untouched answer cell is no answer
    # a notebook of an edition without answer cells: the cells the student added after it
    old, _ = course.split(TOY, "toy")
    old["cells"].insert(3, md("My own cell: because of the hinge."))
    found = grading.written_answers(old, [{"label": "ex-w"}])["ex-w"]
    assert [c["source"] for c in found] == ["My own cell: because of the hinge."]


def test_the_student_notebook_has_an_answer_cell_per_written_exercise_and_the_zip_lists_them(
    built,
):
    import zipfile

    student, _ = course.student_notebook(TOY, "toy")
    tagged = [c for c in student["cells"] if course.WRITTEN_TAG in c["metadata"].get("tags", [])]
    assert [c["metadata"]["sslkit"]["answers"] for c in tagged] == ["ex-w"]
    site, _ = course.student_notebook(TOY, "toy", for_site=True)
    assert not any(course.WRITTEN_TAG in c["metadata"].get("tags", []) for c in site["cells"])
    out, exercises = built
    with zipfile.ZipFile(out / "autograder" / "03_clustering.zip") as z:
        listed = json.loads(z.read(grading.WRITTEN_FILE))["written"]
    written = [e.question for e in exercises if e.chapter == "03_clustering" and not e.graded]
    assert [w["question"] for w in listed] == written and written


def test_python_m_sslkit_grade_passes_jobs(tmp_path, monkeypatch):
    from sslkit import cli

    seen = {}

    def grade(*args, **kwargs):
        seen.update(kwargs)
        return pd.DataFrame({"submission": []})

    monkeypatch.setattr(course, "grade", grade)
    assert cli.main(["grade", str(tmp_path), "--out", str(tmp_path / "s.csv"), "--jobs", "2",
                     "--no-sandbox"]) == 0  # fmt: skip
    assert seen["jobs"] == 2 and seen["sandboxed"] is False
    with pytest.raises(SystemExit):
        cli.main(["grade", str(tmp_path), "--jobs", "0"])
