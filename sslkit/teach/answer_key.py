"""The answer key of the coursework edition: every exercise of the book with its model answer,
as one HTML page for the instructor (never for students).

The exercises come from :func:`sslkit.teach.notebooks.split`; with the executed chapters of
``make book`` the key shows this build's glued values and printed outputs, and with the book's
links (``colab/links.json``) it reads MyST as the Colab copies do (:mod:`sslkit.teach.colab`).
"""

from __future__ import annotations

import html
import pathlib
import re

from . import colab
from .checkout import book_root
from .notebooks import Exercise, _src

# MathJax for the answer key's math, relative to the build's output folder: the copy the student
# site's build (`make student`) serves from its _static.
MATHJAX = "site/_build/html/_static/mathjax/tex-chtml.js"


def _myst_to_html(
    text: str, glue: dict[str, str] | None = None, links=None, where="", folder=None
) -> str:
    """Markdown of an answer as HTML; ``$…$`` and ``$$…$$`` math as ``\\(…\\)`` and
    ``\\[…\\]`` for MathJax, untouched by Markdown. With the book's ``links``
    (:class:`sslkit.colab.Links`), MyST is read as the Colab copies read it (glued values from
    ``glue``, links to the book, an ``{include}`` from ``folder``, by default the checkout's
    ``chapters/``); without them, roles are shown as plain text and a glued value as ``⟨key⟩``
    where the book's outputs are not at hand."""
    from markdown_it import MarkdownIt  # lazy: comes with jupyter-book, a build-only dependency
    from mdit_py_plugins.dollarmath import dollarmath_plugin  # as markdown_it (myst-parser's)

    def math(content: str, options: dict) -> str:
        left, right = ("\\[", "\\]") if options.get("display_mode") else ("\\(", "\\)")
        return left + html.escape(content) + right

    glue = glue or {}
    if links is not None:
        folder = book_root() / "chapters" if folder is None else folder
        text = colab.to_markdown(text, glue, links, folder, where=f"answer key, {where}")
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
    exercises: list[Exercise],
    executed: dict[str, tuple[dict, dict]] | None = None,
    links=None,
    chapters: pathlib.Path | None = None,
) -> str:
    """An HTML page with every exercise and its model answer, chapter by chapter;
    ``executed`` (chapter: glued values, printed outputs) fills in this build's numbers, and
    ``links`` (the book's :class:`sslkit.colab.Links`) turns terms and references into links
    (an ``{include}`` read from ``chapters``, by default the checkout's ``chapters/``)."""
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
        parts.append(_myst_to_html(ex.statement, glue, links, ex.label, chapters))
        answer = _myst_to_html(ex.answer, glue, links, ex.label, chapters)
        parts.append("<h4>Model answer</h4>" + answer)
        for c in ex.code:
            parts.append(f"<pre><code>{html.escape(c)}</code></pre>")
            if printed.get(c):
                parts.append(
                    f"<p>Its output in the book's build:</p><pre>{html.escape(printed[c])}</pre>"
                )
    parts.append("</body></html>")
    return "\n".join(parts)
