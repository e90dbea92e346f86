"""The package's shape: every module imports, the wings import only downward (function-local
imports included), no import circle, and a function-local import only with its reason stated
(``# lazy: why``). The wings and their order are the contract of ``sslkit/__init__.py``."""

import ast
import importlib
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "sslkit"

#: The stack, lowest first; a wing may import its own modules and those of earlier ranks.
#: ``anymodel`` sits beside ``experiment`` and uses only foundation, learn and measure.
RANK = {"": 0, "learn": 1, "measure": 2, "experiment": 3, "anymodel": 3, "findings": 4, "teach": 5}
#: The package's programs and its face sit on top: they may import every wing.
TOP = {"cli", "__main__", "__init__", "course", "grading"}


#: The old flat names (``from .. import paper``, ``import sslkit.book``) and where they lead.
OLD_NAMES = {**__import__("sslkit").MOVED, "course": "teach.course", "grading": "teach.grading"}


def module_name(path: pathlib.Path, root: pathlib.Path = PACKAGE) -> str:
    """``sslkit/measure/metrics.py`` → ``measure.metrics``; a wing's face is its own name."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__" and len(parts) > 1:
        parts.pop()
    return ".".join(parts)


def wing(module: str) -> str:
    head, dot, _ = module.partition(".")
    return head if dot or head in RANK else ""


def sources(root: pathlib.Path = PACKAGE) -> dict[str, str]:
    """Every Python file under ``root``, by module name (``learn.loop``, ``cache``, ``learn``)."""
    return {module_name(p, root): p.read_text() for p in sorted(root.rglob("*.py"))}


def resolve(module: str, node: ast.ImportFrom | ast.Import, known) -> list[str]:
    """The package modules an import statement of ``module`` names (absolute, no prefix)."""
    if isinstance(node, ast.Import):
        names = [a.name.removeprefix("sslkit.") for a in node.names if a.name.startswith("sslkit.")]
        return [OLD_NAMES.get(n, n) for n in names]
    if node.level == 0:
        if not (node.module or "").startswith("sslkit"):
            return []
        base = node.module.removeprefix("sslkit").lstrip(".")
    else:
        package = module.split(".") if module in {w for w in RANK if w} else module.split(".")[:-1]
        package = package[: len(package) - (node.level - 1)]
        base = ".".join(package + ([node.module] if node.module else []))
    found = []
    for a in node.names:
        full = f"{base}.{a.name}" if base else a.name
        full = OLD_NAMES.get(full, full)  # an old flat name imports the module it moved to
        found.append(full if full in known else OLD_NAMES.get(base, base))
    return [f for f in found if f]


def imports_of(module: str, source: str, known) -> list[tuple[str, int, bool]]:
    """(package module imported, line, whether inside a function) for each import."""
    tree = ast.parse(source)
    local = {
        id(n)
        for f in ast.walk(tree)
        if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))
        for n in ast.walk(f)
        if isinstance(n, (ast.Import, ast.ImportFrom))
    }
    return [
        (name, node.lineno, id(node) in local)
        for node in ast.walk(tree)
        if isinstance(node, (ast.Import, ast.ImportFrom))
        for name in resolve(module, node, known)
    ]


def graph(srcs: dict[str, str]) -> dict[str, set[str]]:
    return {
        m: {n for n, _, _ in imports_of(m, src, srcs) if n in srcs and n != m}
        for m, src in srcs.items()
    }


def upward_imports(srcs: dict[str, str]) -> list[str]:
    """Each import of a module from a wing above its own (or from the programs on top)."""
    bad = []
    for m, src in srcs.items():
        if m in TOP:
            continue
        for n, line, _ in imports_of(m, src, srcs):
            if n not in srcs or wing(n) == wing(m):
                continue
            sideways = wing(m) in {"anymodel", "experiment"} and wing(n) in {
                "anymodel",
                "experiment",
            }
            if n in TOP or RANK[wing(n)] > RANK[wing(m)] or sideways:
                bad.append(f"{m}:{line} imports {n}")
    return bad


def find_circle(edges: dict[str, set[str]]) -> list[str] | None:
    """One import circle as a list of modules (first == last), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(m):
        state[m] = 1
        path.append(m)
        for n in sorted(edges.get(m, ())):
            if state.get(n) == 1:
                return path[path.index(n) :] + [n]
            if n not in state and (circle := visit(n)):
                return circle
        state[m] = 2
        path.pop()
        return None

    for m in sorted(edges):
        if m not in state and (circle := visit(m)):
            return circle
    return None


MODULES = sorted(m for m in sources() if m != "__main__")


@pytest.mark.parametrize("module", MODULES)
def test_every_module_imports(module):
    importlib.import_module(f"sslkit.{module}" if module != "__init__" else "sslkit")


def test_every_file_is_in_a_wing_of_the_stack():
    strays = [m for m in sources() if m not in TOP and wing(m) not in RANK]
    assert not strays, f"modules outside the wings {sorted(RANK)}: {strays}"


def test_no_wing_imports_from_a_wing_above_it():
    assert not upward_imports(sources()), "\n".join(upward_imports(sources()))


def test_an_upward_import_is_caught(tmp_path):
    """A planted package: metrics (measure) importing the loop is fine, importing runs
    (experiment) is not, not even inside a function; a wing's face counts as its wing."""
    files = {
        "__init__.py": "",
        "cache.py": "import torch\n",
        "learn/__init__.py": "from . import loop\n",
        "learn/loop.py": "from ..cache import x\n",
        "measure/__init__.py": "",
        "measure/metrics.py": "from ..learn import loop\n\ndef f():\n    from ..experiment.runs"
        " import train  # lazy: planted\n",
        "experiment/__init__.py": "",
        "experiment/runs.py": "from ..measure.metrics import y\nimport sslkit.teach\n",
        "experiment/store.py": "from .. import book\nimport sslkit.paper\n",  # old names
        "teach/book.py": "",
        "findings/__init__.py": "",
        "findings/paper.py": "",
        "teach/__init__.py": "from ..learn.loop import fit\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert sorted(upward_imports(sources(tmp_path))) == [
        "experiment.runs:2 imports teach",
        "experiment.store:1 imports teach.book",
        "experiment.store:2 imports findings.paper",
        "measure.metrics:4 imports experiment.runs",
    ]


def test_no_import_circle_function_local_imports_included():
    circle = find_circle(graph(sources()))
    assert circle is None, "import circle: " + " → ".join(circle)


def test_the_circle_finder_finds_a_planted_circle():
    planted = {
        "low": "import torch\n",
        "mid": "from . import low\n",
        "high": "from .mid import x\n\ndef f():\n    from .top import y  # lazy: planted\n",
        "top": "from .high import z\n",
    }
    assert find_circle(graph(planted)) == ["high", "top", "high"]
    assert find_circle(graph({k: v for k, v in planted.items() if k != "top"})) is None


def test_function_local_imports_state_their_reason():
    unexplained = []
    for module, src in sources().items():
        lines = src.splitlines()
        for _, line, is_local in imports_of(module, src, sources()):
            said = "".join(lines[line - 2 : line])  # the line above, its own
            if is_local and "# lazy:" not in said:
                unexplained.append(f"{module}:{line}: {lines[line - 1]}")
    assert not unexplained, "function-local imports without '# lazy: reason':\n" + "\n".join(
        sorted(set(unexplained))
    )


@pytest.mark.parametrize("old", sorted(__import__("sslkit").MOVED) + ["course", "grading"])
def test_every_old_module_name_imports_the_same_module(old):
    """``from sslkit import metrics`` and ``import sslkit.metrics`` as before the wings: the very
    module object of the wing (so a patch through either name patches what the package uses)."""
    import sslkit

    new = "teach." + old if old in {"course", "grading"} else sslkit.MOVED[old]
    moved = importlib.import_module(f"sslkit.{new}")
    assert importlib.import_module(f"sslkit.{old}") is moved
    assert __import__(f"sslkit.{old}").__dict__[old].__name__ == f"sslkit.{new}"
    assert moved.__spec__.name == f"sslkit.{new}"  # the old name leaves the module's own spec


def test_the_names_users_import_from_the_package():
    import sslkit

    assert sslkit.__version__ and sslkit.Profile and sslkit.get_profile("smoke")
    assert sslkit.PROFILES["cpu"].name == "cpu"
    assert callable(sslkit.analyze) and sslkit.analyze.__module__ == "sslkit.anymodel.reverse"


def test_the_readme_maps_every_module_to_its_job():
    """The README's table of the package names every module once, by its wing path, so the map
    cannot drift from the tree again (it once listed 31 of 38 modules)."""
    import re

    readme = (PACKAGE.parent / "README.md").read_text()
    table = readme.split("## The package", 1)[1].split("\n## ", 1)[0]
    named = re.findall(r"(?m)^\| `([\w.]+)` \|", table)
    modules = {m for m in sources() if m not in {"__init__", "__main__", "course", "grading"}}
    modules -= {w for w in RANK if w}  # a wing's face: its heading row names it
    assert sorted(named) == sorted(modules), (
        sorted(set(modules) - set(named)),
        sorted(set(named) - set(modules)),
    )


@pytest.mark.parametrize("wing", [w for w in RANK if w])
def test_each_wing_face_re_exports_the_public_names_of_its_modules(wing):
    """A wing's ``__init__`` imports each public name (``__all__``) of the modules it faces,
    one import a line, so that ``from sslkit.<wing> import name`` finds every one."""
    import re

    face = importlib.import_module(f"sslkit.{wing}")
    src = (PACKAGE / wing / "__init__.py").read_text()
    missing = [
        f"{m}.{name}"
        for m in sorted(set(re.findall(r"(?m)^from \.(\w+) import", src)))
        for name in getattr(importlib.import_module(f"sslkit.{wing}.{m}"), "__all__", [])
        if not hasattr(face, name)
    ]
    assert not missing, f"sslkit/{wing}/__init__.py lacks: {missing}"
