"""The package's shape: every module imports, no import circle (function-local imports
included), and a function-local import only with its reason stated (``# lazy: why``)."""

import ast
import importlib
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "sslkit"
MODULES = sorted(p.stem for p in PACKAGE.glob("*.py") if p.stem != "__main__")


def imports_of(source: str) -> list[tuple[str, int, bool]]:
    """(sslkit module imported, line, whether inside a function) for each import of ``source``."""
    tree = ast.parse(source)
    local = {
        id(n)
        for f in ast.walk(tree)
        if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))
        for n in ast.walk(f)
        if isinstance(n, (ast.Import, ast.ImportFrom))
    }
    found = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.ImportFrom) and node.level == 1
        ):  # from . import x / from .x import y
            names = [node.module] if node.module else [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("sslkit"):
            names = [node.module.removeprefix("sslkit").lstrip(".") or a.name for a in node.names]
        elif isinstance(node, ast.Import):
            names = [
                a.name.removeprefix("sslkit.") for a in node.names if a.name.startswith("sslkit.")
            ]
        else:
            continue
        found += [(n.split(".")[0], node.lineno, id(node) in local) for n in names]
    return found


def graph(sources: dict[str, str]) -> dict[str, set[str]]:
    return {
        m: {n for n, _, _ in imports_of(src) if n in sources and n != m}
        for m, src in sources.items()
    }


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


def sources() -> dict[str, str]:
    return {m: (PACKAGE / f"{m}.py").read_text() for m in MODULES}


@pytest.mark.parametrize("module", MODULES)
def test_every_module_imports(module):
    importlib.import_module(f"sslkit.{module}")


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
        tree = ast.parse(src)
        for f in ast.walk(tree):
            if not isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(f):
                if not isinstance(node, (ast.Import, ast.ImportFrom)):
                    continue
                said = "".join(lines[node.lineno - 2 : node.end_lineno])  # the line above, its own
                if "# lazy:" not in said:
                    unexplained.append(f"{module}.py:{node.lineno}: {lines[node.lineno - 1]}")
    assert not unexplained, "function-local imports without '# lazy: reason':\n" + "\n".join(
        unexplained
    )


def test_lower_layers_never_import_higher_ones():
    """The intended shape: losses, metrics, augment and data know nothing of training, runs
    or the book (README, "The package")."""
    edges = graph(sources())
    higher = {
        "train",
        "runs",
        "configs",
        "paper",
        "plan",
        "book",
        "course",
        "grading",
        "analysis",
        "cli",
    }

    def reach(m, seen=None):
        seen = set() if seen is None else seen
        for n in edges[m] - seen:
            seen.add(n)
            reach(n, seen)
        return seen

    for low in ("losses", "metrics", "augment", "data", "seeds", "runtime", "profiles", "cost"):
        assert not reach(low) & higher, (low, reach(low) & higher)
