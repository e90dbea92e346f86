"""Colab copies (sslkit/colab.py): MyST a reader outside the book build would see raw becomes
plain Markdown; what sslkit cannot render fails loudly."""

import json
import pathlib
import re

import pytest

pytest.importorskip(
    "myst_parser", reason="Colab copies are written by the book's build (jupyter-book)"
)

from sslkit import colab
from sslkit.teach import release

ROOT = pathlib.Path(__file__).resolve().parents[1]
BOOK = "https://example.org/book/"
LINKS = colab.Links(
    terms={"ncc": f"{BOOK}chapters/glossary.html#term-NCC"},
    labels={"chap-x": (f"{BOOK}chapters/x.html#chap-x", "How SSL clusters data")},
    citations={"a2023": ("Ben-Shaul et al.", "2023", "https://arxiv.org/abs/1")},
    book=BOOK,
)


def convert(text, glue=None, folder=ROOT, solutions=True):
    nb = {"cells": [{"cell_type": "markdown", "metadata": {}, "source": text}]}
    out = colab.colab_copy(nb, glue or {}, LINKS, folder, solutions=solutions, where="t")
    return "".join(out["cells"][0]["source"]) if out["cells"] else ""


def test_roles_become_values_and_links():
    text = (
        "(chap-x)=\n# Title\n\n"
        "It holds {glue:text}`n_train` images, {glue:text}`share:.1f` of them, "
        "{glue:text}`/chapters/07.ipynb::verdict` (another page's value).\n"
        "See {term}`nearest centres <NCC>`, {term}`NCC`, {ref}`chap-x`, "
        "{ref}`that chapter <chap-x>`, {cite:p}`a2023` and {cite:t}`a2023`.\n"
        "% a comment the reader never sees\n"
    )
    glue = {"n_train": "7000", "share": "0.4567", "/chapters/07.ipynb::verdict": "held"}
    assert convert(text, glue) == (
        "# Title\n\n"
        "It holds 7000 images, 0.5 of them, held (another page's value).\n"
        f"See [nearest centres]({BOOK}chapters/glossary.html#term-NCC), "
        f"[NCC]({BOOK}chapters/glossary.html#term-NCC), "
        f"[How SSL clusters data]({BOOK}chapters/x.html#chap-x), "
        f"[that chapter]({BOOK}chapters/x.html#chap-x), "
        "([Ben-Shaul et al., 2023](https://arxiv.org/abs/1)) and "
        "[Ben-Shaul et al. (2023)](https://arxiv.org/abs/1)."
    )


def test_code_is_left_as_written():
    """A role inside a code span or a code block is what the reader should type: kept."""
    text = (
        "Write ``{glue:text}`name` `` in a cell, then {glue:text}`x`.\n\n"
        "```python\nprint('{term}`NCC`')\n```\n\n"
        "| a | b |\n|---|---|\n| {glue:text}`x` | {glue:text}`y` |\n"
    )
    out = convert(text, {"x": "1", "y": "2"})
    assert "``{glue:text}`name` ``" in out and "then 1." in out
    assert "print('{term}`NCC`')" in out
    assert "| 1 | 2 |" in out


def test_directives_become_headings_and_quotes():
    text = (
        ":::{admonition} Key takeaways\n:class: tip\n- one {glue:text}`x`\n- two\n:::\n\n"
        "```{exercise} Measure it\n:label: ex-m\nCompute {term}`NCC`.\n```\n\n"
        "```{solution} ex-m\n:class: dropdown\nUse the means.\n```\n"
    )
    out = convert(text, {"x": "3"})
    assert out == (
        "> **Key takeaways**\n>\n> - one 3\n> - two\n\n"
        f"#### Exercise: Measure it\n\nCompute [NCC]({BOOK}chapters/glossary.html#term-NCC).\n\n"
        "<details>\n<summary><b>Solution</b> (click to open)</summary>\n\nUse the means.\n\n"
        "</details>"
    )
    assert colab.leftovers({"cells": [{"cell_type": "markdown", "source": out}]}) == [], (
        "a converted cell still shows raw MyST"
    )


def test_the_same_role_in_code_and_in_text():
    """A code span showing a role's text is stepped over, not mistaken for the role."""
    out = convert("Type ``{glue:text}`x` `` to get {glue:text}`x`.", {"x": "7"})
    assert out == "Type ``{glue:text}`x` `` to get 7."


def test_options_only_at_the_start_and_titles_converted():
    text = (
        ":::{note} About {term}`NCC`\n---\nclass: tip\n---\nBody.\n\n```python\n:x: = 1\n```\n:::\n"
    )
    out = convert(text)
    assert out.startswith(f"> **About [NCC]({BOOK}chapters/glossary.html#term-NCC)**\n>\n> Body.")
    assert "> :x: = 1" in out and "class: tip" not in out


def test_glued_values_are_escaped_for_markdown():
    out = convert("| a | b |\n|---|---|\n| {glue:text}`v` | 1 |\n", {"v": "a|b *c* $5"})
    assert "| a\\|b \\*c\\* \\$5 | 1 |" in out
    assert convert("{glue:text}`v`", {"v": "[+1.0, +2.0]"}) == "[+1.0, +2.0]"  # \\[ is math


@pytest.mark.parametrize(
    "value",
    ["![t](http://example.org/x.png)", "a\n~~~\nb", "x\n# Heading", "[link](javascript:x)"],
)
def test_a_glued_value_injects_no_markdown(value):
    """A glued value is text: no image, link, fence or heading reaches the copy's Markdown."""
    from markdown_it import MarkdownIt

    out = convert("Before {glue:text}`v` after.", {"v": value})
    html = MarkdownIt("commonmark").render(out)
    assert "<img" not in html and "<a " not in html and "<h1" not in html, html
    assert "<pre" not in html and "\n" not in out, out


def test_a_dropped_line_leaves_no_double_blank_and_code_keeps_its_blanks():
    assert convert("a\n\n(x)=\n\nb") == "a\n\nb"
    code = "```python\nx = 1\n\n\n\ny = 2\n```"
    assert convert(code) == code


def test_include_is_inlined(tmp_path):
    (tmp_path / "part.md").write_text("Included, with {glue:text}`x`.\n")
    assert convert("Before.\n\n```{include} part.md\n```\n", {"x": "5"}, tmp_path) == (
        "Before.\n\nIncluded, with 5."
    )


def test_include_stays_inside_the_book_and_never_loops(tmp_path):
    book = tmp_path / "book"
    (book / "chapters").mkdir(parents=True)
    (book / "_config.yml").write_text("title: t\n")
    (book / "part.md").write_text("A part.\n")
    (tmp_path / "secret.txt").write_text("outside the book\n")
    (book / "loop.md").write_text("```{include} loop.md\n```\n")
    folder = book / "chapters"
    assert convert("```{include} ../part.md\n```\n", folder=folder) == "A part."
    for name in ("../../secret.txt", str(tmp_path / "secret.txt"), "/etc/hostname"):
        with pytest.raises(ValueError, match="is outside the book"):
            convert(f"```{{include}} {name}\n```\n", folder=folder)
    with pytest.raises(ValueError, match="includes itself"):
        convert("```{include} ../loop.md\n```\n", folder=folder)


@pytest.mark.parametrize(
    "text, message",
    [
        ("{glue:text}`missing`", "`missing` has no value in this build's glue"),
        ("{term}`nothing`", "the term 'nothing' is not in the book's glossary"),
        ("{ref}`nowhere`", "no label 'nowhere'"),
        ("{cite:p}`b1999`", "no bibliography entry 'b1999'"),
        ("{abbr}`SSL (self-supervised)`", "no Colab rendering for the {abbr} role"),
        ("```{figure} a.png\n```", "no Colab rendering for the {figure} directive"),
        ("{numref}`fig-a`", "no Colab rendering for the {numref} role"),
        ("Term\n: its definition\n", "no Colab rendering for MyST 'dl_open'"),
        ("{{ name }} here", "no Colab rendering for MyST 'substitution_inline'"),
        (
            "A {term}`NCC\nagain` b",
            "cannot find '{term}`NCC again`' in its source lines (write the role on one line",
        ),
    ],
)
def test_what_cannot_be_rendered_is_refused(text, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        convert(text)


def test_a_student_copy_refuses_a_solution():
    with pytest.raises(ValueError, match="must have no solutions"):
        convert("```{solution} ex-m\nUse the means.\n```\n", solutions=False)
    with pytest.raises(ValueError, match="must have no solutions"):
        convert(":::{solution-start} ex-m\n:::\n", solutions=False)


def test_the_note_goes_under_the_title_cell():
    nb = {
        "cells": [
            {"cell_type": "code", "metadata": {}, "source": "import sslkit"},
            {"cell_type": "markdown", "metadata": {}, "source": "# Title"},
            {"cell_type": "markdown", "metadata": {}, "source": "Text."},
        ]
    }
    out = colab.colab_copy(nb, {}, LINKS, ROOT, heading_note=colab.note(BOOK, BOOK + "x.html"))
    kinds = ["".join(c["source"])[:7] for c in out["cells"]]
    assert kinds == ["import ", "# Title", "> **Thi", "Text."]
    assert nb["cells"][1]["source"] == "# Title", "the original notebook was changed"


class _Anything(dict):
    """Links and glue that answer every name: a chapter's copy then shows only what the
    converter could not render."""

    def __init__(self, value):
        super().__init__()
        self.value = value

    def __contains__(self, key):
        return True

    def __getitem__(self, key):
        return self.value(key)

    def get(self, key, default=None):
        return self.value(key)


@pytest.mark.parametrize("path", sorted((ROOT / "chapters").glob("*.ipynb")), ids=lambda p: p.stem)
def test_every_chapter_copy_reads_without_the_build(path):
    links = colab.Links(
        _Anything(lambda k: f"{BOOK}#{k}"),
        _Anything(lambda k: (f"{BOOK}#{k}", k)),
        _Anything(lambda k: ("Someone", "2000", BOOK)),
    )
    nb = json.loads(path.read_text())
    copy = colab.colab_copy(nb, _Anything(lambda k: "7"), links, path.parent, where=path.stem)
    assert colab.leftovers(copy) == []
    code = [c["source"] for c in nb["cells"] if c["cell_type"] == "code"]
    copied = [c["source"] for c in copy["cells"] if c["cell_type"] == "code"]
    filled = [colab.BOOK_VALUES_TAG in c["metadata"].get("tags", []) for c in nb["cells"]
              if c["cell_type"] == "code"]  # fmt: skip
    assert [c for c, f in zip(copied, filled) if not f] == [
        c for c, f in zip(code, filled) if not f
    ]
    assert release.install_refs(copy) == [release.tag()]  # the copy installs the release


def test_citations_read_a_bibtex_file(tmp_path):
    bib = tmp_path / "r.bib"
    bib.write_text(
        "@article{a, author={Ben-Shaul, Ido and Shwartz-Ziv, Ravid and LeCun, Yann},"
        " title={T}, year={2023}, url={https://arxiv.org/abs/2305.15614}}\n"
        "@article{b, author={Xiao, Han and Rasul, Kashif}, title={T}, year={2017},"
        " doi={10.1/x}}\n"
        "@article{c, author={Gy{\\\"o}rgy, Andr{\\'a}s}, title={T}, year={2022}}\n"
    )
    assert colab.citations(bib, "FALLBACK") == {
        "a": ("Ben-Shaul et al.", "2023", "https://arxiv.org/abs/2305.15614"),
        "b": ("Xiao and Rasul", "2017", "https://doi.org/10.1/x"),
        "c": ("György", "2022", "FALLBACK"),
    }


def test_leftovers_read_code_as_code():
    cell = {"cell_type": "markdown", "source": "Type `{glue:text}`x``, see {term}`NCC`.\n"}
    assert colab.leftovers({"cells": [cell]}) == ["{term}`NCC`"]


def test_links_round_trip_through_json():
    assert colab.Links.from_json(LINKS.to_json()) == LINKS


def test_glued_text_and_values_across_pages():
    out = {"data": {"application/papermill.record/text/plain": "'82.3%'"}}
    assert colab.glued_text(out) == "82.3%"
    assert colab.glued_text({"data": {"text/plain": "7000"}}) == "7000"
    pages = {"chapters/07_x": {"n": "8"}, "chapters/03_y": {"m": "1"}}
    assert colab.across_pages(pages) == {
        "/chapters/07_x.ipynb::n": "8",
        "/chapters/03_y.ipynb::m": "1",
    }


def test_the_copy_fills_the_book_values_and_the_table_sets_them_beside_this_run(monkeypatch):
    from sslkit import book

    source = 'BOOK_VALUES = {}  # filled in\nbook.this_run_table({"gain": "NCC gain"}, BOOK_VALUES)'
    cell = {"cell_type": "code", "metadata": {"tags": ["book-values"]}, "source": source}
    nb = {"cells": [cell, {**cell, "metadata": {}}]}
    out = colab.colab_copy(nb, {"gain": "+13.3 points", "other": "1"}, LINKS, ROOT, where="t")
    filled, untagged = ("".join(c["source"]) for c in out["cells"])
    assert filled.startswith("BOOK_VALUES = {\n    'gain': '+13.3 points',\n}  # filled in\n")
    assert untagged == source  # only a tagged cell is filled
    namespace = {}
    exec(filled.split("\nbook.")[0], namespace)  # the filled line is Python
    monkeypatch.delenv("SSLKIT_BOOK_BUILD", raising=False)
    book.glue("gain", "+12.0 points")  # a reader's run
    table = book.this_run_table({"gain": "NCC gain"}, namespace["BOOK_VALUES"])
    assert table.loc["NCC gain"].to_dict() == {
        "this run": "+12.0 points",
        "the book": "+13.3 points",
    }
    assert book.this_run_table({"gain": "NCC gain"}).loc["NCC gain", "the book"] == "–"
    monkeypatch.setenv("SSLKIT_BOOK_BUILD", "1")  # the book's build: this run is the book's
    assert book.this_run_table({"gain": "NCC gain"}).loc["NCC gain", "the book"] == "+12.0 points"
    with pytest.raises(ValueError, match="not glued"):
        book.this_run_table({"never_glued": "x"})
    book.glue("stored_gain", "+13.3 points", source="reference")
    with pytest.raises(ValueError, match="from the reference, not from this run"):
        book.this_run_table({"stored_gain": "NCC gain"})  # a stored number posing as the reader's


def _png(width=40, height=30) -> str:
    """A small figure-like PNG (base64): a white canvas with two coloured lines."""
    import base64
    import io

    from PIL import Image, ImageDraw

    image = Image.new("RGBA", (width, height), "white")
    draw = ImageDraw.Draw(image)
    draw.line((0, 0, width, height), fill="steelblue", width=2)
    draw.line((0, height, width, 0), fill="crimson", width=2)
    out = io.BytesIO()
    image.save(out, "PNG")
    return base64.b64encode(out.getvalue()).decode()


def _code(source, outputs=(), tags=(), cell_id=None, count=None):
    cell = {
        "cell_type": "code",
        "execution_count": count,
        "metadata": {},
        "outputs": list(outputs),
        "source": source,
    }
    if tags:
        cell["metadata"]["tags"] = list(tags)
    if cell_id:
        cell["id"] = cell_id
    return cell


def _unrun(cell):
    return dict(cell, outputs=[], execution_count=None) if cell["cell_type"] == "code" else cell


def _notebook(*cells):
    return {"cells": list(cells), "metadata": {}, "nbformat": 4, "nbformat_minor": 5}


def _figure(png):
    return {
        "output_type": "display_data",
        "metadata": {"image/png": {"width": 20, "height": 15}},
        "data": {"image/png": png, "text/plain": ["<Figure size 200x150 with 1 Axes>"]},
    }


def test_a_copy_carries_the_builds_figures_and_tables_not_its_glue():
    """A figure, a table and printed text come along; a glued value, an error and a hidden
    cell's output do not; the copy is a valid notebook that has not run."""
    nbformat = pytest.importorskip("nbformat")
    figure = _figure(_png())
    table = {
        "output_type": "execute_result",
        "execution_count": 3,
        "metadata": {},
        "data": {"text/html": ["<table><tr><td>1</td></tr></table>"], "text/plain": ["   a\n0  1"]},
    }
    printed = {"output_type": "stream", "name": "stdout", "text": ["n = 7\n"]}
    glued = {
        "output_type": "display_data",
        "metadata": {"scrapbook": {"name": "n", "mime_prefix": ""}},
        "data": {"text/plain": ["7"]},
    }
    hidden_glue = {
        "output_type": "display_data",
        "metadata": {},
        "data": {"application/papermill.record/text/plain": ["7"]},
    }
    error = {"output_type": "error", "ename": "E", "evalue": "x", "traceback": []}
    executed = _notebook(
        _code("setup()", [printed], tags=["remove-cell"], cell_id="a", count=1),
        {"cell_type": "markdown", "id": "m", "metadata": {}, "source": "Text"},
        _code("plot()", [printed, figure, glued, hidden_glue], cell_id="b", count=2),
        _code("table()", [table, error], cell_id="c", count=3),
        _code("changed()", [printed], cell_id="d", count=4),
    )
    source = _notebook(
        *(_unrun(c) for c in executed["cells"][:4]),
        _code("changed(again=True)", cell_id="d"),  # edited since the build: no outputs
    )
    source["cells"].insert(
        1, {"cell_type": "markdown", "id": "n", "metadata": {}, "source": "Note"}
    )
    out = colab.with_outputs(source, executed)
    code = {c["id"]: c for c in out["cells"] if c["cell_type"] == "code"}
    assert code["a"]["outputs"] == [], "the book hides this cell: so does the copy"
    assert [o["output_type"] for o in code["b"]["outputs"]] == ["stream", "display_data"]
    assert code["b"]["outputs"][1]["data"]["text/plain"] == figure["data"]["text/plain"]
    assert code["b"]["outputs"][1]["metadata"] == figure["metadata"]
    assert [o["data"] for o in code["c"]["outputs"]] == [table["data"]]
    assert code["d"]["outputs"] == []
    assert all(c["execution_count"] is None for c in code.values()), "nothing ran yet"
    assert "scrapbook" not in json.dumps(out) and "papermill" not in json.dumps(out)
    nbformat.validate(nbformat.from_dict(out))
    assert source["cells"][3]["outputs"] == [], "the source notebook was changed"


def test_a_copys_figures_shrink_only_where_they_look_the_same():
    import base64
    import io

    import numpy as np
    from PIL import Image

    png = _png(400, 300)
    executed = _notebook(_code("plot()", [_figure(png)], cell_id="b"))
    out = colab.with_outputs(dict(executed, cells=[_code("plot()", cell_id="b")]), executed)
    kept = out["cells"][0]["outputs"][0]["data"]["image/png"]
    before, after = (Image.open(io.BytesIO(base64.b64decode(p))) for p in (png, kept))
    assert after.size == before.size and len(kept) <= len(png)
    assert np.array_equal(np.asarray(after.convert("RGB")), np.asarray(before.convert("RGB")))
    # a photograph-like image (thousands of colours) a palette would spoil stays as it was
    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(noise).save(buffer, "PNG")
    photo = base64.b64encode(buffer.getvalue()).decode()
    assert colab._smaller_png(photo) == photo


def test_an_oversize_output_and_book_only_html_are_left_out():
    big = {"output_type": "display_data", "metadata": {}, "data": {"text/plain": ["x" * 5000]}}
    script = {
        "output_type": "display_data",
        "metadata": {},
        "data": {
            "text/html": ['<div id="p"></div><script>render("p")</script>'],
            "text/plain": ["<pandas.io.formats.style.Styler at 0x7f3a2c1d>"],
        },
    }
    assets = {
        "output_type": "display_data",
        "metadata": {},
        "data": {"text/html": ['<img src="../_static/x.png">'], "text/plain": ["a figure"]},
    }
    small = {"output_type": "stream", "name": "stdout", "text": "ok\n"}
    executed = _notebook(_code("show()", [big, script, assets, small], cell_id="b"))
    out = colab.with_outputs(
        dict(executed, cells=[_code("show()", cell_id="b")]), executed, cap=1000
    )
    outputs = out["cells"][0]["outputs"]
    assert "x" * 5000 not in json.dumps(out) and "<script" not in json.dumps(out)
    assert "left out of this copy" in "".join(outputs[0]["data"]["text/plain"])
    assert [o.get("data", {}).get("text/plain") for o in outputs[1:]] == [["a figure"], None]
    assert outputs[2] == small


def test_a_copy_keeps_a_figure_as_its_png_not_the_books_phone_picture():
    """The book build adds a <picture> (desktop and phone renderings as data: URIs) to each
    figure; a notebook would show that HTML first and carry it at ten times the PNG's size."""
    png = _png()
    picture = f'<picture class="sslkit-figure"><img src="data:image/png;base64,{png}"></picture>'
    figure = _figure(png)
    figure["data"]["text/html"] = [picture * 50]
    kept = colab._carried(figure, colab.OUTPUT_CAP)
    assert set(kept["data"]) == {"image/png", "text/plain"}
    alone = {"output_type": "display_data", "metadata": {}, "data": {"text/html": [picture]}}
    assert colab._carried(alone, colab.OUTPUT_CAP) is not None  # no PNG beside it: kept
