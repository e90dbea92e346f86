"""The book's own Sphinx extension (_ext/unique_scripts.py)."""

import importlib.util
from pathlib import Path

from sphinx.builders.html._assets import _JavaScript

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
