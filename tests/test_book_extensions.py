"""The book's own Sphinx extensions (_ext/unique_scripts.py, _ext/term_uses.py)."""

import importlib.util
from pathlib import Path

import pytest

pytest.importorskip("sphinx", reason="the book's Sphinx extensions need jupyter-book")

from sphinx.builders.html._assets import _JavaScript  # noqa: E402

spec = importlib.util.spec_from_file_location(
    "unique_scripts", Path(__file__).resolve().parents[1] / "_ext" / "unique_scripts.py"
)
unique_scripts = importlib.util.module_from_spec(spec)
spec.loader.exec_module(unique_scripts)


def test_repeated_inline_and_file_scripts_are_dropped_in_order():
    thebe = 'const THEBE_JS_URL = "x"'
    scripts = [
        _JavaScript("a.js"),
        _JavaScript(None, body=thebe),
        _JavaScript("b.js", defer="defer"),
        _JavaScript("", body=thebe),
        _JavaScript("a.js", priority=800),
        _JavaScript("b.js"),
        _JavaScript(None, body="other"),
    ]
    context = {"script_files": scripts}
    unique_scripts.drop_repeated_scripts(None, "page", "page.html", context, None)
    kept = [(s.filename, s.attributes) for s in context["script_files"]]
    assert kept == [
        ("a.js", {}),
        (None, {"body": thebe}),
        ("b.js", {"defer": "defer"}),
        ("b.js", {}),
        (None, {"body": "other"}),
    ]


def test_a_page_without_scripts_is_left_alone():
    context = {}
    unique_scripts.drop_repeated_scripts(None, "page", "page.html", context, None)
    assert context == {}


def test_the_index_lists_each_use_of_a_term(tmp_path):
    """A term used on two pages is indexed at its definition and at both uses, under the
    glossary's spelling whatever the reference's case or text."""
    import re

    from sphinx.application import Sphinx

    src = tmp_path / "src"
    (src / "chapters").mkdir(parents=True)
    (src / "conf.py").write_text(
        "import sys\n"
        f"sys.path.insert(0, {str(Path(__file__).resolve().parents[1] / '_ext')!r})\n"
        "extensions = ['myst_parser', 'term_uses']\nmyst_enable_extensions = []\n"
    )
    (src / "index.md").write_text(
        "# Home\n\n```{toctree}\nchapters/glossary\nchapters/one\nchapters/two\n```\n"
    )
    (src / "chapters" / "glossary.md").write_text(
        "# Glossary\n\n```{glossary}\nNCC\n  Nearest class-centre accuracy.\n\n"
        "Linear probe\n  A linear classifier.\n```\n"
    )
    (src / "chapters" / "one.md").write_text("# One\n\nWe use {term}`NCC` here.\n")
    (src / "chapters" / "two.md").write_text(
        "# Two\n\nAgain {term}`nearest centres <NCC>` and {term}`linear probe`.\n"
    )
    out = tmp_path / "html"
    Sphinx(str(src), str(src), str(out), str(tmp_path / "doctrees"), "html", status=None,
           warningiserror=True).build()  # fmt: skip
    index = (out / "genindex.html").read_text()
    ncc = re.search(r"NCC</strong></a>(.*?)</li>", index, re.S)
    assert (
        ncc
        and "chapters/one.html#term-use-0" in ncc[0]
        and "chapters/two.html#term-use-0" in ncc[0]
    )
    assert "glossary.html#term-NCC" in index
    probe = re.search(r"Linear probe</strong></a>(.*?)</li>", index, re.S)
    assert probe and "chapters/two.html#term-use-1" in probe[0], "not under the glossary's spelling"
