"""The API page lists every public name of sslkit, read from the package at build time.

``.. sslkit-api:: WING`` (inside an ``{eval-rst}`` block of ``chapters/api.md``) documents,
with autodoc, every name in the ``__all__`` of each module of that wing (``foundation``,
``learn``, ``measure``, ``experiment``, ``anymodel``, ``findings``, ``teach``, or ``package``
for the names of ``sslkit`` itself), under the path a user imports it from:

- a name ``import sslkit`` gives (``sslkit.analyze``, ``sslkit.Folder``, ``sslkit.Profile``);
- a module's old flat name where it has one (:data:`sslkit.MOVED`: ``sslkit.metrics``, not
  ``sslkit.measure.metrics``; ``sslkit.grading``, ``sslkit.course``);
- its wing path otherwise (``sslkit.measure.geometry``).

A new module or name appears on the page without anyone editing it; a wing the page does not
list fails ``tests/test_api_listing.py``.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.util.docutils import SphinxDirective
from sphinx.util.nodes import nested_parse_with_titles

#: The names ``import sslkit`` gives (its lazy ones included), and the module each comes from.
PACKAGE_NAMES = {
    "analyze": "anymodel.reverse",
    "Folder": "anymodel.folders",
    "Profile": "profiles",
    "PROFILES": "profiles",
    "get_profile": "profiles",
    "MOVED": "",
}
#: The wings in the package's order; ``foundation`` is the modules at its top.
WINGS = ("package", "foundation", "learn", "measure", "experiment", "anymodel", "findings", "teach")


def user_path(module: str) -> str:
    """The path a user imports ``sslkit.<module>`` by: its old flat name where it has one
    (``measure.metrics`` → ``sslkit.metrics``), else its own."""
    import sslkit

    flat = {new: old for old, new in sslkit.MOVED.items()}
    flat.update({"teach.course": "course", "teach.grading": "grading"})  # python -m sslkit.X
    return f"sslkit.{flat.get(module, module)}"


def public_modules() -> list[tuple[str, str, list[str]]]:
    """``(wing, module, names)`` for each module of sslkit with an ``__all__``, in file order:
    ``module`` its path inside the package (``measure.metrics``), ``names`` its public names
    but those documented at the package's own level (:data:`PACKAGE_NAMES`)."""
    import sslkit

    found = []
    for info in sorted(pkgutil.walk_packages(sslkit.__path__, "sslkit."), key=lambda i: i.name):
        module = info.name.removeprefix("sslkit.")
        if module.partition(".")[0] in sslkit.MOVED or module in ("course", "grading", "__main__"):
            continue  # an old name of a module listed under its wing
        names = getattr(importlib.import_module(info.name), "__all__", None)
        if not names:
            continue
        here = [n for n in names if PACKAGE_NAMES.get(n) != module]
        wing = module.partition(".")[0] if "." in module else "foundation"
        found.append((wing, module, here))
    return found


def listing(wing: str) -> list[tuple[str, list[str]]]:
    """``(user path of a module, its public names' user paths)`` for every module of ``wing``;
    ``package``: the names of ``sslkit`` itself."""
    if wing not in WINGS:
        raise ValueError(f"unknown wing {wing!r}: one of {', '.join(WINGS)}")
    if wing == "package":
        return [("sslkit", [f"sslkit.{n}" for n in PACKAGE_NAMES])]
    return [
        (user_path(module), [f"{user_path(module)}.{n}" for n in names])
        for w, module, names in public_modules()
        if w == wing
    ]


def _directive(path: str) -> str:
    """The autodoc directive of one name, by what the name is."""
    module, _, name = path.rpartition(".")
    obj = getattr(importlib.import_module(module), name)
    if inspect.isclass(obj):
        return f".. autoclass:: {path}\n   :members:\n"
    if callable(obj):
        return f".. autofunction:: {path}\n"
    doc = _comment_of(name, obj, importlib.import_module(module).__name__)
    return f".. py:data:: {path}\n\n" + "".join(f"   {line}\n" for line in doc)


def _comment_of(name: str, obj, module: str) -> list[str]:
    """The ``#:`` comment above a constant, in the module that defines it (``module``, or the
    sslkit module it was imported from): autodoc would show the docstring of its type."""
    from sphinx.pycode import ModuleAnalyzer

    where = [module] + [f"sslkit.{m}" for _, m, names in public_modules() if name in names]
    for candidate in where:
        if getattr(importlib.import_module(candidate), name, None) is not obj:
            continue
        docs = ModuleAnalyzer.for_module(candidate).find_attr_docs().get(("", name))
        if docs:
            return list(docs)
    return []


class SslkitApi(SphinxDirective):
    """``.. sslkit-api:: WING``: a rubric per module (its user path and where its code lives),
    then each of its public names with its docstring."""

    required_arguments = 1

    def run(self) -> list[nodes.Node]:
        lines = []
        for module, names in listing(self.arguments[0]):
            real = importlib.import_module(module).__name__
            where = "" if real == module else f" (the code: ``{real}``)"
            lines += [f".. rubric:: ``{module}``{where}", ""]
            for path in names:
                lines += [*_directive(path).splitlines(), ""]
        box = nodes.container()
        nested_parse_with_titles(self.state, StringList(lines, source="sslkit-api"), box)
        return box.children


def setup(app):
    app.add_directive("sslkit-api", SslkitApi)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
