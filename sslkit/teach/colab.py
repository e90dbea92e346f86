"""Colab copies: a chapter notebook whose Markdown reads without the book's build.

A chapter's Markdown is MyST: ``{glue:text}`n_train``` takes a value the build computed,
``{term}``, ``{ref}`` and ``{cite:p}`` link into the book, and ``{exercise}``/``{solution}``
fences become numbered boxes. Jupyter and Colab show all of these as raw text. A Colab copy
replaces each with what a reader of the book sees:

- a glued value by the value this build glued (the copy says so at its top: the cells still
  recompute everything, and a reader's run can differ);
- a term, a cross-reference or a citation by a plain Markdown link to the published book (a
  citation to the paper itself where the bibliography has its address);
- an exercise, a solution or an admonition by a heading or a quoted block;
- an ``{include}`` by the included file; a ``(label)=`` target, a ``%`` comment and a
  ``+++`` break are left out.

The Markdown is read with myst-parser's own tokenizer (the parser the book is built with), so
a role inside a code span, or a fence inside a code block, is left as the reader wrote it. A
role or directive this module has no rendering for raises: a Colab copy never shows one raw.

Book build: the ``colab_copies`` extension (``_ext/``) writes one copy per chapter under
``_build/html/colab/`` and the Colab button opens it, with the outputs the build gave its
code cells (:func:`with_outputs`: figures and tables, no glued values, nothing over
:data:`OUTPUT_CAP`), so a reader sees the figures before running anything; ``sslkit.course``
writes the students' notebooks the same way, without solutions.
"""

from __future__ import annotations

import codecs
import copy
import dataclasses
import json
import pathlib
import re
from dataclasses import dataclass, field

MYST_EXTENSIONS = {"colon_fence", "dollarmath", "amsmath", "deflist", "substitution"}
# Directives shown as a quoted block with a bold title.
ADMONITIONS = {"admonition", "note", "tip", "important", "warning", "caution", "seealso", "hint"}
SOLUTION_DIRECTIVES = {"solution", "solution-start", "solution-end"}
_OPTION = re.compile(r"^:[\w-]+:.*$")


@dataclass
class Links:
    """Where a term, a label and a citation lead in the published book.

    ``terms``: glossary term (lower case) → URL; ``labels``: label → (URL, title);
    ``citations``: bibliography key → (author text, year, URL); ``book``: the published
    book's address."""

    terms: dict[str, str] = field(default_factory=dict)
    labels: dict[str, tuple[str, str]] = field(default_factory=dict)
    citations: dict[str, tuple[str, str, str]] = field(default_factory=dict)
    book: str = ""

    def to_json(self) -> str:
        return json.dumps(
            {
                "book": self.book,
                "terms": self.terms,
                "labels": self.labels,
                "citations": self.citations,
            },
            indent=1,
        )

    @classmethod
    def from_json(cls, text: str) -> Links:
        raw = json.loads(text)
        return cls(
            raw["terms"],
            {k: tuple(v) for k, v in raw["labels"].items()},
            {k: tuple(v) for k, v in raw["citations"].items()},
            raw.get("book", ""),
        )


def glued_text(output: dict) -> str:
    """The text of one glued value as MyST-NB stored it (the ``text/plain`` of its output, a
    Python repr): a string without its quotes."""
    data = output.get("data", {})  # MyST-NB: "application/papermill.record/text/plain"
    text = "".join(next((v for k, v in data.items() if k.endswith("text/plain")), ""))
    return text[1:-1] if text[:1] == text[-1:] and text[:1] in "'\"" else text


def across_pages(pages: dict[str, dict[str, str]]) -> dict[str, str]:
    """Each page's glued values (``pages``: docname → name → text) under the name another
    page's roles give them: ``/chapters/07_what_we_found.ipynb::name``."""
    return {f"/{page}.ipynb::{k}": v for page, values in pages.items() for k, v in values.items()}


def citations(bib: pathlib.Path, fallback_url: str) -> dict[str, tuple[str, str, str]]:
    """Author-year text and address of every entry of a BibTeX file (the entry's ``url``, its
    DOI, else ``fallback_url``: the book's bibliography)."""
    # lazy: build-only dependencies (jupyter-book's); latexcodec registers the "ulatex" codec
    import latexcodec  # noqa: F401
    from pybtex.database import parse_file  # lazy: as latexcodec

    def plain(name: str) -> str:  # LaTeX accents as Unicode: Gy{\"o}rgy -> György
        return codecs.decode(name, "ulatex").replace("{", "").replace("}", "")

    found = {}
    for key, entry in parse_file(str(bib)).entries.items():
        people = entry.persons.get("author", [])
        last = [plain(" ".join(p.last_names)) for p in people]
        if len(last) > 2:
            who = f"{last[0]} et al."
        else:
            who = " and ".join(last) or key
        doi = entry.fields.get("doi")
        url = entry.fields.get("url") or (f"https://doi.org/{doi}" if doi else fallback_url)
        found[key] = (who, entry.fields.get("year", "n.d."), url)
    return found


def _parser():
    # lazy: myst-parser comes with jupyter-book, a build-only dependency
    from markdown_it.renderer import RendererHTML
    from myst_parser.config.main import MdParserConfig  # lazy: as markdown_it
    from myst_parser.parsers.mdit import create_md_parser  # lazy: as markdown_it

    return create_md_parser(MdParserConfig(enable_extensions=MYST_EXTENSIONS), RendererHTML)


@dataclass
class _Context:
    glue: dict[str, str]
    links: Links
    folder: pathlib.Path
    solutions: bool
    where: str
    md: object = None
    including: tuple = ()  # the files being included, outermost first


def _glue(value: str, spec: str) -> str:
    """A glued value as the book shows it: formatted by MyST-NB's own rule for ``name:spec``,
    and escaped so that Markdown shows it as text (a ``|`` splits no table, a ``*`` or ``_``
    starts no emphasis, a ``$`` no math, a ``#``, ``~`` or line break no heading or fence, a
    ``](`` no link or image). Brackets stay: Jupyter reads ``\\[`` as math."""
    if spec:
        from myst_nb.core.variables import format_plain_text  # lazy: as myst-parser

        value = format_plain_text(value, spec)
    value = " ".join(value.splitlines())  # one line: a value starts no heading, list or fence
    value = re.sub(r"([\\`*_<>|$!~#&])", r"\\\1", value)
    return value.replace("](", "&#93;(")  # no link or image: \] would be math in Jupyter


def _role(name: str, content: str, ctx: _Context) -> str:
    """Markdown for one role."""
    if content.rstrip().endswith(">") and "<" in content:  # "text <target>"
        text, _, target = content.rstrip()[:-1].rpartition("<")
        text, target = text.strip(), target.strip()
    else:
        text = target = content.strip()
    if name in ("glue", "glue:text"):
        # "name:spec", or "/page.ipynb::name:spec" for a value another page glued
        page, _, rest = content.rpartition("::")
        key, _, spec = rest.partition(":")
        key = f"{page}::{key}" if page else key
        if key not in ctx.glue:
            raise ValueError(
                f"{ctx.where}: {{{name}}}`{content}` has no value in this build's glue; "
                "the chapter must glue it (book.glue) before the copy is written"
            )
        return _glue(ctx.glue[key], spec)
    if name == "term":
        url = ctx.links.terms.get(target.lower())
        if url is None:
            raise ValueError(f"{ctx.where}: the term {target!r} is not in the book's glossary")
        return f"[{text}]({url})"
    if name in ("ref", "doc"):
        if target not in ctx.links.labels:
            raise ValueError(f"{ctx.where}: no label {target!r} in the book to link to")
        url, title = ctx.links.labels[target]
        shown = text if text != target else title
        if not shown.strip():
            raise ValueError(
                f"{ctx.where}: the label {target!r} has no title; write {{ref}}`text <{target}>`"
            )
        return f"[{shown}]({url})"
    if name in ("cite:p", "cite:t"):
        parts = []
        for key in (k.strip() for k in content.split(",")):
            if key not in ctx.links.citations:
                raise ValueError(f"{ctx.where}: no bibliography entry {key!r}")
            who, year, url = ctx.links.citations[key]
            parts.append(
                f"[{who}, {year}]({url})" if name == "cite:p" else f"[{who} ({year})]({url})"
            )
        return f"({'; '.join(parts)})" if name == "cite:p" else ", ".join(parts)
    raise ValueError(
        f"{ctx.where}: no Colab rendering for the {{{name}}} role; add one to sslkit/teach/colab.py"
    )


def _body(body: str) -> str:
    """A directive's content without its options: the ``:key: value`` lines, or the ``---``
    YAML block, at its start (an option-like line further down is content)."""
    lines = body.split("\n")
    if lines and lines[0].strip() == "---" and "---" in (s.strip() for s in lines[1:]):
        end = next(i for i, s in enumerate(lines[1:], 1) if s.strip() == "---")
        lines = lines[end + 1 :]
    else:
        while lines and _OPTION.match(lines[0]):
            lines = lines[1:]
    return "\n".join(lines).strip("\n")


def _directive(info: str, body: str, ctx: _Context) -> str:
    """Markdown for one ```{name} args``` fence (or ``:::{name}``), its body converted too."""
    m = re.fullmatch(r"\{([\w:-]+)\}\s*(.*)", info.strip())
    name, args = m[1], convert_markdown(m[2].strip(), ctx).strip()
    inner = _body(body)
    if name in SOLUTION_DIRECTIVES and not ctx.solutions:
        raise ValueError(
            f"{ctx.where}: a {{{name}}} is left in a notebook that must have no solutions"
        )
    if name == "exercise":
        return f"#### Exercise: {args}\n\n{convert_markdown(inner, ctx)}"
    if name == "solution":  # folded, as the book's dropdown
        return (
            "<details>\n<summary><b>Solution</b> (click to open)</summary>\n\n"
            f"{convert_markdown(inner, ctx)}\n\n</details>"
        )
    if name == "solution-start":  # its code cells follow: a heading, not a fold
        return f"#### Solution\n\n{convert_markdown(inner, ctx)}".rstrip() + "\n"
    if name == "solution-end":
        return "*End of the solution.*"
    if name in ADMONITIONS:
        title = args or name.capitalize()
        quoted = "\n".join(
            f"> {line}".rstrip() for line in convert_markdown(inner, ctx).splitlines()
        )
        return f"> **{title}**\n>\n{quoted}"
    if name == "include":
        path = _included(args, ctx)
        inner = dataclasses.replace(ctx, folder=path.parent, including=(*ctx.including, path))
        return convert_markdown(path.read_text(encoding="utf-8"), inner).strip("\n")
    raise ValueError(
        f"{ctx.where}: no Colab rendering for the {{{name}}} directive; add one to "
        "sslkit/teach/colab.py"
    )


def _included(name: str, ctx: _Context) -> pathlib.Path:
    """The file an ``{include}`` names: a relative path inside the book (the folder of its
    ``_config.yml``), not one being included already."""
    root = next((f for f in (ctx.folder, *ctx.folder.parents) if (f / "_config.yml").is_file()),
                ctx.folder).resolve()  # fmt: skip
    path = (ctx.folder / name).resolve()
    if pathlib.Path(name).is_absolute() or root not in path.parents:
        raise ValueError(f"{ctx.where}: {{include}} {name} is outside the book ({root})")
    if path in ctx.including:
        raise ValueError(f"{ctx.where}: {{include}} {name} includes itself")
    return path


# Tokens of MyST syntax this module has no rendering for: refused rather than shown raw.
_UNRENDERED = ("substitution_block", "substitution_inline", "dl_open", "footnote_ref",
               "footnote_block_open")  # fmt: skip
_DROPPED = ("myst_target", "myst_line_comment", "myst_block_break")


def _walk(tokens):
    """Every token, the inline ones' children too, in document order."""
    for tok in tokens:
        yield tok
        yield from tok.children or ()


def convert_markdown(text: str, ctx: _Context) -> str:
    """MyST Markdown → plain Markdown (see the module docstring)."""
    ctx.md = ctx.md or _parser()
    lines = text.split("\n")
    tokens = ctx.md.parse(text)
    unrendered = [t.type for t in _walk(tokens) if t.type in _UNRENDERED]
    if unrendered:
        raise ValueError(
            f"{ctx.where}: no Colab rendering for MyST {unrendered[0]!r}; write it without "
            "that syntax or add a rendering to sslkit/teach/colab.py"
        )
    edits = _block_edits(tokens, ctx) + _role_edits(tokens, lines, ctx)
    return _apply_edits(lines, edits, ctx)


def _block_edits(tokens, ctx: _Context) -> list[tuple[int, int, str]]:
    """``(first line, end line, replacement)`` of every directive fence (converted) and every
    dropped line (a target, a comment, a block break)."""
    edits = []
    for tok in tokens:
        if tok.type in ("fence", "colon_fence") and tok.info.strip().startswith("{"):
            edits.append((tok.map[0], tok.map[1], _directive(tok.info, tok.content, ctx)))
        elif tok.type in _DROPPED:
            edits.append((tok.map[0], tok.map[1], ""))
    return edits


def _role_edits(tokens, lines: list[str], ctx: _Context) -> list[tuple[int, int, str]]:
    """``(first line, end line, replacement)`` of every run of source lines whose inline text
    holds a role (a paragraph, a heading, a table row's cells), its roles replaced."""
    rows: dict[tuple[int, int], list] = {}  # inline tokens by source lines (a table row's cells)
    for tok in tokens:
        if tok.type == "inline" and tok.map:
            rows.setdefault(tuple(tok.map), []).append(tok)
    edits = []
    for (start, end), group in rows.items():
        children = [c for t in group for c in (t.children or [])]
        if any(c.type == "myst_role" for c in children):
            edits.append((start, end, _replace_roles("\n".join(lines[start:end]), children, ctx)))
    return edits


def _replace_roles(chunk: str, children, ctx: _Context) -> str:
    """``chunk`` with each role of the inline tokens ``children`` replaced (:func:`_role`), found
    in source order, stepping over code spans (a role in one stays as written)."""
    at = 0
    for child in children:
        if child.type == "code_inline":
            opened = chunk.find(child.markup, at)
            closed = chunk.find(child.markup, opened + len(child.markup))
            if opened >= 0 and closed >= 0:
                at = closed + len(child.markup)
        elif child.type == "myst_role":
            raw = f"{{{child.meta['name']}}}`{child.content}`"
            at = chunk.find(raw, at)
            if at < 0:
                raise ValueError(
                    f"{ctx.where}: cannot find {raw!r} in its source lines (write the role "
                    "on one line, with single backticks)"
                )
            new = _role(child.meta["name"], child.content, ctx)
            chunk = chunk[:at] + new + chunk[at + len(raw) :]
            at += len(new)
    return chunk


def _apply_edits(lines: list[str], edits: list[tuple[int, int, str]], ctx: _Context) -> str:
    """``lines`` with every edit's lines replaced (none may overlap); a dropped line between two
    blank ones leaves one blank line, not two."""
    edits = sorted(edits)
    for (_, end, _), (start, _, _) in zip(edits, edits[1:]):
        if start < end:
            raise ValueError(f"{ctx.where}: overlapping MyST constructs; cannot convert")
    out, line = [], 0
    for start, end, new in edits:
        out += lines[line:start] + ([new] if new else [])
        if not new and out and start > 0 and not out[-1].strip() and end < len(lines):
            if not lines[end].strip():
                end += 1
        line = end
    out += lines[line:]
    return "\n".join(out)


def to_markdown(
    text: str, glue: dict[str, str], links: Links, folder=".", where: str = "text"
) -> str:
    """One MyST text (an exercise's answer, say) as plain Markdown: :func:`convert_markdown`
    outside a notebook, solutions allowed."""
    return convert_markdown(text, _Context(glue, links, pathlib.Path(folder), True, where))


def note(book_url: str, page_url: str, outputs: bool = False) -> str:
    """The cell a Colab copy opens with, under the chapter's title (``outputs``: the copy shows
    the build's outputs, :func:`with_outputs`)."""
    shown = (
        " The outputs under the cells, figures included, are the build's too, until you run "
        "the cells."
        if outputs
        else ""
    )
    return (
        f"> **This is the Colab copy of a chapter of the book** "
        f"[*How self-supervised learning really works*]({book_url}) "
        f"([this chapter in the book]({page_url})). The numbers in its text are the ones the "
        "book's build measured; the cells below recompute every one of them, so your run can "
        "differ (a different device, seed count or profile), and its printed results say what "
        f"it found.{shown} Links lead to the book's glossary, chapters and references."
    )


BOOK_VALUES_TAG = "book-values"  # sslkit.teach.book.BOOK_VALUES_TAG
_BOOK_VALUES = re.compile(r"^BOOK_VALUES = \{\}", re.M)


def fill_book_values(cell: dict, glue: dict[str, str]) -> dict:
    """A code cell tagged ``book-values`` with its ``BOOK_VALUES = {}`` line filled: the value
    this build glued for each name the cell quotes (``"gain_ncc"``), so that a reader's run
    shows the book's numbers beside its own (:func:`sslkit.teach.book.this_run_table`)."""
    source = "".join(cell["source"])
    if BOOK_VALUES_TAG not in cell.get("metadata", {}).get("tags", []):
        return cell
    if not _BOOK_VALUES.search(source):
        raise ValueError(f"a cell tagged {BOOK_VALUES_TAG!r} has no line `BOOK_VALUES = {{}}`")
    quoted = dict.fromkeys(re.findall(r"[\"'](\w+)[\"']", source))
    values = {k: glue.get(k) for k in quoted if glue.get(k) is not None}
    filled = "BOOK_VALUES = {\n" + "".join(f"    {k!r}: {v!r},\n" for k, v in values.items()) + "}"
    cell = copy.deepcopy(cell)
    cell["source"] = _BOOK_VALUES.sub(lambda _: filled, source, count=1).splitlines(True)
    return cell


def colab_copy(
    nb: dict,
    glue: dict[str, str],
    links: Links,
    folder: pathlib.Path,
    solutions: bool = True,
    heading_note: str | None = None,
    where: str = "notebook",
) -> dict:
    """A copy of ``nb`` whose Markdown cells read without the book's build (module docstring).

    ``glue``: this build's glued values as text (another page's as ``"/page.ipynb::name"``,
    as MyST-NB names them); ``folder``: the notebook's folder (for
    ``{include}``); ``solutions=False`` refuses any solution left in the notebook;
    ``heading_note``: a Markdown cell put after the first Markdown cell."""
    nb = copy.deepcopy(nb)
    ctx = _Context(glue, links, pathlib.Path(folder), solutions, where)
    cells = []
    for cell in nb["cells"]:
        if cell["cell_type"] == "markdown":
            text = convert_markdown("".join(cell["source"]), ctx).strip("\n")
            if not text:
                continue
            cell["source"] = text.splitlines(True)
        elif cell["cell_type"] == "code":
            cell = fill_book_values(cell, glue)
        cells.append(cell)
    if heading_note:
        first = next((i for i, c in enumerate(cells) if c["cell_type"] == "markdown"), -1)
        cells.insert(
            first + 1,
            {"cell_type": "markdown", "id": "colab-note", "metadata": {}, "source": heading_note},
        )
    nb["cells"] = cells
    return nb


def leftovers(nb: dict) -> list[str]:
    """The MyST a copy would still show raw in its Markdown cells (a role, a directive fence,
    a target or a comment, as myst-parser reads them; code spans and blocks are code), as
    short excerpts."""
    md = _parser()
    found = []
    for cell in nb["cells"]:
        if cell["cell_type"] != "markdown":
            continue
        for tok in _walk(md.parse("".join(cell["source"]))):
            if tok.type == "myst_role":
                found.append(f"{{{tok.meta['name']}}}`{tok.content}`")
            elif tok.type in ("fence", "colon_fence") and tok.info.strip().startswith("{"):
                found.append(f"```{tok.info.strip()}")
            elif tok.type in _DROPPED + _UNRENDERED:
                found.append(f"{tok.type}: {tok.content[:40]}")
    return found


# Outputs a Colab copy carries from the book's executed notebook (:func:`with_outputs`).
OUTPUT_CAP = 500_000  # characters of one output as stored (a PNG's base64): larger is left out
# Output types of the book's page only: a glued value (MyST-NB's mime prefix), script and widgets.
_BOOK_ONLY_MIMES = ("application/papermill.record/", "application/javascript",
                    "application/vnd.jupyter.widget", "text/vnd.plotly")  # fmt: skip
# HTML that needs the book's page: a script, a frame, or the built site's own files.
_BOOK_ONLY_HTML = re.compile(r"<script|<iframe|[\"'(](?:\.\./)*_(?:static|images)/", re.I)
# A repr of an object with no view of its own: "<pandas.io.formats.style.Styler at 0x7f...>"
_BARE_REPR = re.compile(r"^<[\w.]+ (?:object )?at 0x[0-9a-f]+>$")
# The book build's <picture> of a figure and its phone rendering (sslkit.teach.figures), beside
# the figure's own image/png: hundreds of kB of data: URIs a notebook shows before the PNG.
_PHONE_PICTURE = 'class="sslkit-figure"'
_HIDDEN = {"remove-cell", "remove-output"}  # the book shows no output of a cell tagged so


def _smaller_png(b64) -> str:
    """A PNG (base64) as a 256-colour palette PNG where that is smaller and looks the same
    (matplotlib's figures hold a few hundred colours: the mean pixel moves by < 1 of 255 and
    under 1 % of pixels by more than 16); else the PNG as it was."""
    import base64  # lazy: only a copy with figures needs these
    import io

    import numpy as np
    from PIL import Image  # lazy: Pillow comes with matplotlib

    text = "".join(b64) if isinstance(b64, list) else b64
    try:
        raw = base64.b64decode(text)
        image = Image.open(io.BytesIO(raw))
        image.load()
    except Exception:  # not a PNG Pillow reads: left as it is
        return text
    pixels = np.asarray(image.convert("RGBA"))
    if pixels[..., 3].min() < 255:  # transparency: a palette would lose it
        return text
    small = image.convert("RGB").quantize(256, Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    error = np.abs(np.asarray(small.convert("RGB"), dtype=int) - pixels[..., :3]).max(axis=2)
    if error.mean() > 1.0 or (error > 16).mean() > 0.01:
        return text
    out = io.BytesIO()
    small.save(out, "PNG", optimize=True)
    return base64.b64encode(out.getvalue()).decode() if out.tell() < len(raw) else text


def _output_size(output: dict) -> int:
    return len(json.dumps(output, ensure_ascii=False))


def _left_out(size: int) -> dict:
    """What stands for an output left out for its size."""
    return {
        "output_type": "display_data",
        "metadata": {},
        "data": {
            "text/plain": f"[an output of {size / 1e6:.1f} MB is left out of this copy: run the "
            "cell to see it, or see it in the book]"
        },
    }


def _carried(output: dict, cap: int) -> dict | None:
    """One output of the executed notebook as the copy keeps it, or ``None`` (module-level
    rules: no glued value, no error, no book-only HTML, figures recompressed, none over
    ``cap`` characters)."""
    kind = output.get("output_type")
    if kind == "stream":
        size = _output_size(output)
        return copy.deepcopy(output) if size <= cap else _left_out(size)
    if kind not in ("display_data", "execute_result"):
        return None  # an error (the book's build shows none), or an unknown kind
    if "scrapbook" in output.get("metadata", {}):
        return None  # a glued value (myst_nb.glue): the copy's text holds it
    data = {}
    bundle = output.get("data", {})
    for mime, value in bundle.items():
        if mime.startswith(_BOOK_ONLY_MIMES):
            continue
        if mime == "text/html" and _BOOK_ONLY_HTML.search("".join(value)):
            continue
        if mime == "text/html" and _PHONE_PICTURE in "".join(value) and "image/png" in bundle:
            continue  # the book's phone rendering: the copy keeps the plain figure
        data[mime] = _smaller_png(value) if mime == "image/png" else copy.deepcopy(value)
    plain = "".join(data.get("text/plain", "")).strip()
    if not data or (set(data) == {"text/plain"} and _BARE_REPR.match(plain)):
        return None
    kept = {"output_type": "display_data", "metadata": {}, "data": data}
    meta = output.get("metadata", {})
    kept["metadata"] = {k: copy.deepcopy(v) for k, v in meta.items() if k in data}
    size = _output_size(kept)
    return kept if size <= cap else _left_out(size)


def with_outputs(nb: dict, executed: dict, cap: int = OUTPUT_CAP) -> dict:
    """A copy of ``nb`` (a Colab copy) whose code cells show the outputs the book's build gave
    them (``executed``: the executed notebook, ``jupyter_execute/<page>.ipynb``), so a reader
    sees the figures before running anything.

    A code cell takes the outputs of the next executed code cell with the same source (and the
    same id, where both have one): a cell the build did not run, or whose source changed since,
    shows none. Left out: a glued value (MyST-NB's ``scrapbook`` outputs), an error, HTML or
    JavaScript meant for the book's page (a script, a frame, the site's own files), a bare
    object repr left without its HTML, every output of a cell the book hides
    (``remove-cell``, ``remove-output``), and any output larger than ``cap`` characters (a note
    says so). Figures are stored as palette PNGs where that looks the same and is smaller.
    Execution counts are cleared: nothing has run in the reader's session."""
    nb = copy.deepcopy(nb)
    ran = [c for c in executed.get("cells", []) if c.get("cell_type") == "code"]
    at = 0
    for cell in nb["cells"]:
        if cell["cell_type"] != "code":
            continue
        cell["execution_count"] = None
        cell["outputs"] = []
        source = "".join(cell["source"])
        match = next(
            (
                i
                for i in range(at, len(ran))
                if "".join(ran[i]["source"]) == source
                and (cell.get("id") is None or ran[i].get("id") in (None, cell["id"]))
            ),
            None,
        )
        if match is None:
            continue
        at = match + 1
        if _HIDDEN & set(cell.get("metadata", {}).get("tags", [])):
            continue
        for output in ran[match].get("outputs", []):
            kept = _carried(output, cap)
            if kept is not None:
                cell["outputs"].append(kept)
    return nb
