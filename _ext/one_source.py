"""One source per sentence: no sentence mixes this run's numbers with the reference's unnamed.

A chapter's prose fills in numbers from two runs: the reader's own live run of the chapter
("this run", the ``cpu`` profile) and the book's stored evidence ("reference": the evidence
store and the per-image evidence). ``sslkit.teach.book.glue`` stores each value's source with
its glued output (metadata ``sslkit_source``; myst-nb keeps it in ``<page>.glue.json``). A
sentence, or a figure caption, that uses glued values of both runs must name each run, or a
reader does arithmetic across them ("+8.4 at the first stage and +17.0 at the last … last
minus first +0.4"). Each such sentence is a warning (the build runs with ``-W``: an error).

A sentence names a run when it holds one of these phrases (any case):

- the reference: :data:`NAMES_REFERENCE` ("reference", "stored", "evidence store",
  "per-image evidence");
- this run: :data:`NAMES_THIS_RUN` ("this run", "your run", "this build", "live run").

A value glued as a ``"setting"`` (the same for both runs: a class count, a chance level) names
no run and needs none.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

THIS_RUN, REFERENCE = "this run", "reference"
NAMES_REFERENCE = ("reference", "stored", "evidence store", "per-image evidence")
NAMES_THIS_RUN = ("this run", "your run", "this build", "live run")
SOURCE_KEY = "sslkit_source"  # sslkit.teach.book.SOURCE_KEY

_ROLE = re.compile(r"\{([\w:-]+)\}`([^`]*)`")
_CODE = re.compile(r"`[^`]*`")
_FENCE = re.compile(r"^(```+|:::+)\s*(\{[\w:-]+\})?(.*)$")
_BLOCK_START = re.compile(r"^\s*(?:[-*+] |\d+[.)] |#+ |\|)")
_ABBREVIATIONS = ("e.g.", "i.e.", "cf.", "vs.", "et al.", "Fig.", "approx.")
# a sentence ends at . ! ? (a closing quote or bracket may follow) before a space and a
# character that can start one (not a lower-case letter: "3.4 points", "e.g. the")
_END = re.compile(r"(?<=[.!?])[\"”’)\]*_]*\s+(?=[^a-z\s])")


def glue_name(content: str) -> str:
    """The glued name a ``{glue:...}`` role's content refers to: ``name:spec`` → ``name``,
    ``/page.ipynb::name:spec`` → ``/page.ipynb::name``."""
    page, _, rest = content.rpartition("::")
    name = rest.partition(":")[0].strip()
    return f"{page}::{name}" if page else name


def _prose_lines(text: str) -> list[str]:
    """``text``'s lines of prose: code blocks, directive fences and options, ``%`` comments,
    ``(label)=`` targets and ``+++`` breaks left out (a directive's body is prose)."""
    lines, fence, opened = [], None, []  # opened: the markers of the open directives
    for line in text.splitlines():
        m = _FENCE.match(line.strip())
        if fence is not None:  # inside a code block: only its closing fence ends it
            if m and m[1] == fence and not m[2] and not m[3].strip():
                fence = None
            continue
        if m:
            if m[2]:  # a directive opens: its body is prose
                opened.append(m[1])
            elif not m[3].strip() and opened and opened[-1] == m[1]:
                opened.pop()  # the directive closes
            else:  # a code block opens (```python, or a bare ``` outside a directive's end)
                fence = m[1]
            lines.append("")  # a fence ends a sentence
            continue
        stripped = line.strip()
        if (
            stripped.startswith("% ")
            or stripped == "%"
            or re.fullmatch(r"\(.+\)=", stripped)
            or stripped == "+++"
            or re.match(r"^:[\w-]+:", stripped)
        ):
            lines.append("")
            continue
        lines.append(re.sub(r"^(\s*>)+", "", line))
    return lines


def sentences(text: str) -> list[str]:
    """The sentences of MyST ``text`` (a paragraph, list item, heading or table row splits
    too). Roles and code spans are kept whole: their dots and backticks split nothing."""
    kept: list[str] = []

    def mask(m: re.Match) -> str:
        kept.append(m[0])
        return f"\x00{len(kept) - 1}\x00"

    def unmask(s: str) -> str:
        return re.sub(r"\x00(\d+)\x00", lambda m: kept[int(m[1])], s)

    blocks: list[list[str]] = [[]]
    for line in _prose_lines(text):
        if not line.strip():
            blocks.append([])
            continue
        if _BLOCK_START.match(line):
            blocks.append([])
        blocks[-1].append(line.strip())
    found = []
    for block in blocks:
        joined = _CODE.sub(mask, _ROLE.sub(mask, " ".join(block)))
        for abbreviation in _ABBREVIATIONS:
            joined = joined.replace(abbreviation, abbreviation.replace(".", "\x01"))
        for part in _END.split(joined):
            part = unmask(part.replace("\x01", ".")).strip()
            if part:
                found.append(part)
    return found


def _names(sentence: str, phrases, values: dict[str, str]) -> bool:
    def shown(m: re.Match) -> str:  # a glued value as the reader sees it; other roles as written
        return values.get(glue_name(m[2]), "") if m[1].startswith("glue") else m[0]

    text = _ROLE.sub(shown, sentence).lower()
    return any(p in text for p in phrases)


def mixed(text: str, sources: dict[str, str], values: dict[str, str] | None = None) -> list[str]:
    """The sentences of MyST ``text`` that use glued values of both this run and the reference
    (``sources``: glued name → ``"this run"``, ``"reference"`` or ``"setting"``) without
    naming each run (module docstring). ``values`` (glued name → text) lets a glued value name
    its run itself (``"reference evidence (8 seeds)"``)."""
    values = values or {}
    found = []
    for sentence in sentences(text):
        used = {
            sources.get(glue_name(m[2]))
            for m in _ROLE.finditer(sentence)
            if m[1].startswith("glue")
        }
        if {THIS_RUN, REFERENCE} <= used and not (
            _names(sentence, NAMES_THIS_RUN, values) and _names(sentence, NAMES_REFERENCE, values)
        ):
            found.append(sentence)
    return found


def notebook_texts(nb: dict, folder: Path) -> list[tuple[str, str]]:
    """``(where, text)`` for each Markdown cell of a notebook (its ``{include}`` files read in)
    and each figure caption (code-cell metadata ``mystnb.figure.caption``)."""
    texts = []
    for n, cell in enumerate(nb["cells"]):
        source = "".join(cell["source"])
        if cell["cell_type"] == "markdown":
            source = re.sub(
                r"^```\{include\}\s*(\S+)\s*\n```",
                lambda m: (folder / m[1]).read_text(encoding="utf-8"),
                source,
                flags=re.M,
            )
            texts.append((f"cell {n}", source))
        elif cell["cell_type"] == "code":
            caption = cell["metadata"].get("mystnb", {}).get("figure", {}).get("caption")
            if caption:
                texts.append((f"cell {n}, figure caption", caption))
    return texts


def glued(path: Path) -> tuple[dict[str, str], dict[str, str]]:
    """Each glued name's source and text from myst-nb's ``<page>.glue.json`` (the source
    ``"this run"`` where a value carries none)."""
    if not path.exists():
        return {}, {}
    outputs = json.loads(path.read_text(encoding="utf-8"))
    sources = {
        name: out.get("metadata", {}).get(SOURCE_KEY, THIS_RUN) for name, out in outputs.items()
    }
    texts = {}
    for name, out in outputs.items():
        data = out.get("data", {})
        text = "".join(next((v for k, v in data.items() if k.endswith("text/plain")), ""))
        texts[name] = text.strip("'\"")
    return sources, texts


def check_pages(app, env) -> None:
    from sphinx.util import logging  # lazy: the pure functions above need no Sphinx

    logger = logging.getLogger(__name__)
    executed = Path(app.outdir).parent / "jupyter_execute"
    pages = [d for d in sorted(env.found_docs) if env.doc2path(d).endswith(".ipynb")]
    per_page = {d: glued(executed / f"{d}.glue.json") for d in pages}
    sources, texts = (
        {f"/{d}.ipynb::{k}": v for d, both in per_page.items() for k, v in both[i].items()}
        for i in (0, 1)
    )
    for docname in pages:
        path = Path(env.doc2path(docname))
        nb = json.loads(path.read_text(encoding="utf-8"))
        page_sources, page_texts = per_page[docname]
        for where, text in notebook_texts(nb, path.parent):
            found = mixed(text, {**sources, **page_sources}, {**texts, **page_texts})
            for sentence in found:
                logger.warning(
                    f"{where}: a sentence uses numbers of this run and of the reference "
                    f"without naming each (_ext/one_source.py): {sentence!r}",
                    location=docname,
                    type="one_source",
                )


def setup(app):
    app.connect("env-check-consistency", check_pages)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
