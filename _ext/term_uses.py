"""The book's index lists where each glossary term is used, not only where it is defined.

Sphinx indexes a glossary term once, at its definition. This extension adds an index entry
at every ``{term}`` reference of the book, under the term's name as the glossary spells it
(``{term}`nearest centres <NCC>``` and ``{term}`NCC``` are both "NCC"), so the general
index shows the definition (in bold) followed by a link to each use.

It runs as a transform before Sphinx's own index collection (``SphinxDomains``, priority
850), so the entries are collected as any ``{index}`` entry is.
"""

from __future__ import annotations

import re
from pathlib import Path

from docutils import nodes
from sphinx import addnodes
from sphinx.transforms import SphinxTransform


def glossary_terms(text: str) -> dict[str, str]:
    """The terms a MyST ``{glossary}`` block defines, by lower case: each line of the block
    that starts without indentation is a term."""
    terms = {}
    for block in re.findall(r"```\{glossary\}\n(.*?)\n```", text, re.S):
        for line in block.splitlines():
            if line.strip() and not line[0].isspace():
                terms[line.strip().lower()] = line.strip()
    return terms


class TermUses(SphinxTransform):
    default_priority = 800  # before SphinxDomains (850), which collects index entries

    def apply(self, **kwargs) -> None:
        names = getattr(self.app, "_glossary_terms", {})
        refs = [
            r
            for r in self.document.findall(addnodes.pending_xref)
            if r.get("refdomain") == "std" and r.get("reftype") == "term"
        ]
        for n, ref in enumerate(refs):
            target = ref["reftarget"]
            name = names.get(target.lower(), target)
            tid = f"term-use-{n}"
            at = ref.parent.index(ref)
            ref.parent.insert(at, nodes.target("", "", ids=[tid]))
            ref.parent.insert(at, addnodes.index(entries=[("single", name, tid, "", None)]))


def read_glossary(app) -> None:
    """Read the glossary's spelling of each term (``chapters/glossary.md``, or
    ``term_uses_glossary`` relative to the source folder)."""
    path = Path(app.srcdir) / app.config.term_uses_glossary
    app._glossary_terms = glossary_terms(path.read_text(encoding="utf-8")) if path.exists() else {}


def setup(app):
    app.add_config_value("term_uses_glossary", "chapters/glossary.md", "env")
    app.connect("builder-inited", read_glossary)
    app.add_transform(TermUses)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
