"""Each <script> once per page.

sphinx-thebe (0.3.1, loaded by jupyter-book) registers its inline configuration script
``const THEBE_JS_URL = …`` after the HTML builder has started, and the page ends up listing
it twice. The second copy throws ``SyntaxError: Identifier 'THEBE_JS_URL' has already been
declared`` in every reader's browser (the browser test in browser_tests/ caught it). This
extension drops exact repeats (same file or inline body, same attributes) from each page.
"""

from __future__ import annotations


def _key(script) -> tuple:
    filename = getattr(script, "filename", script)
    attributes = getattr(script, "attributes", {})
    # An inline script has no file: None from one registration path, "" from the other.
    return (str(filename) if filename else None, tuple(sorted(attributes.items())))


def drop_repeated_scripts(app, pagename, templatename, context, doctree) -> None:
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, unique = set(), []
    for script in scripts:
        key = _key(script)
        if key not in seen:
            seen.add(key)
            unique.append(script)
    context["script_files"] = unique


def setup(app):
    # Late priority: after every extension that adds scripts to the page.
    app.connect("html-page-context", drop_repeated_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
