"""The book's own Sphinx extensions (_ext/unique_scripts.py, _ext/term_uses.py,
_ext/phone_figures.py)."""

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


def test_a_figure_gets_its_phone_rendering_with_caption_and_alt_text(tmp_path):
    """_ext/phone_figures.py: an output with the <picture> of sslkit.teach.figures becomes the
    image/png figure (caption, number, alt text as MyST-NB renders them) in a <picture>
    whose <source> is the phone rendering, a file in _images."""
    import os
    import re
    import subprocess
    import sys

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import nbformat

    from sslkit.teach import figures

    ROOT = Path(__file__).resolve().parents[1]
    fig, axes = plt.subplots(1, 3, figsize=(9, 3))
    html = figures.picture_html(fig)
    png = figures._png(fig, 2)[0]
    plt.close(fig)
    src = tmp_path / "src"
    src.mkdir()
    (src / "conf.py").write_text(
        "import sys\n"
        f"sys.path.insert(0, {str(Path(__file__).resolve().parents[1] / '_ext')!r})\n"
        "extensions = ['myst_nb', 'phone_figures']\nnb_execution_mode = 'off'\n"
    )
    (src / "index.md").write_text("# Home\n\n```{toctree}\nfigs\n```\n")
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}  # fmt: skip
    nb.metadata["language_info"] = {"name": "python"}
    cell = nbformat.v4.new_code_cell("fig")
    cell.metadata["mystnb"] = {"figure": {"caption": "Three panels."},
                               "image": {"alt": "Three empty panels."}}  # fmt: skip
    cell.outputs = [
        nbformat.v4.new_output(
            "display_data",
            data={
                "image/png": __import__("base64").b64encode(png).decode(),
                "text/html": html,
                "text/plain": "<Figure>",
            },  # fmt: skip
        )
    ]
    nb.cells = [nbformat.v4.new_markdown_cell("# Figures"), cell]
    nbformat.write(nb, src / "figs.ipynb")
    out = tmp_path / "html"
    # its own process: a second Sphinx app in this one finds MyST's parser unregistered
    run = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "-q", "-b", "html", str(src), str(out)],
        capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    page = (out / "figs.html").read_text()
    assert "data:image" not in page
    figure = re.search(r"(?s)<figure.*?</figure>", page)[0]
    source = re.search(r'<source media="([^"]+)" srcset="(_images/phone-[0-9a-f]+\.png)"', figure)
    assert source and source[1] == figures.PHONE_MEDIA and (out / source[2]).exists()
    # the <img> is the picture's own child (a <source> applies to no other), with its alt text
    assert re.search(r'<picture[^>]*><source [^>]*><img alt="Three empty panels\." ', figure)
    assert re.search(r"<figcaption>.*Three panels\.", figure, re.S)
