"""The API page (chapters/api.md, built by _ext/api_listing.py) lists every public name of
sslkit under the path a user imports it from, and builds without a Sphinx warning."""

import importlib
import importlib.util
import pathlib
import re
import subprocess
import sys

import pytest

pytest.importorskip("sphinx", reason="the API page's extension needs jupyter-book")

ROOT = pathlib.Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("api_listing", ROOT / "_ext" / "api_listing.py")
api_listing = importlib.util.module_from_spec(spec)
spec.loader.exec_module(api_listing)


def listed() -> dict[str, str]:
    """Every name the page lists, by its user path: the wing it is listed under."""
    return {
        path: wing
        for wing in api_listing.WINGS
        for _, paths in api_listing.listing(wing)
        for path in paths
    }


def test_every_public_name_is_listed_under_the_path_users_import_it_from():
    import sslkit

    paths = listed()
    for file in sorted((ROOT / "sslkit").rglob("*.py")):
        module = ".".join(file.relative_to(ROOT / "sslkit").with_suffix("").parts)
        if module.endswith("__init__") or module in ("__main__", "course", "grading"):
            continue
        names = getattr(importlib.import_module(f"sslkit.{module}"), "__all__", [])
        old = {v: k for k, v in {**sslkit.MOVED, "grading": "teach.grading"}.items()}
        for name in names:
            obj = getattr(importlib.import_module(f"sslkit.{module}"), name)
            at_top = getattr(sslkit, name, None) is obj and name in api_listing.PACKAGE_NAMES
            want = f"sslkit.{name}" if at_top else f"sslkit.{old.get(module, module)}.{name}"
            assert want in paths, f"{module}.{name} is not listed as {want}"
            home, _, attr = want.rpartition(".")
            assert getattr(importlib.import_module(home), attr) is obj, want
    assert "sslkit.analyze" in paths and "sslkit.reverse.analyze" not in paths
    named = ["sslkit.encoders.build_encoder", "sslkit.encoders.load_weights", "sslkit.Folder",
             "sslkit.report.write_report", "sslkit.data.load", "sslkit.grading.grade",
             "sslkit.measure.geometry.linear_predictability"]  # fmt: skip
    assert not [p for p in named if p not in paths]
    assert not any(".measure.metrics." in p or ".learn.data." in p for p in paths)


def test_a_new_public_name_appears_without_editing_the_page(monkeypatch):
    from sslkit.measure import metrics

    monkeypatch.setattr(metrics, "__all__", [*metrics.__all__, "planted"], raising=False)
    monkeypatch.setattr(metrics, "planted", lambda: None, raising=False)
    assert listed()["sslkit.metrics.planted"] == "measure"


def test_the_page_lists_every_wing_once():
    page = (ROOT / "chapters" / "api.md").read_text()
    assert sorted(re.findall(r"(?m)^\.\. sslkit-api:: (\w+)$", page)) == sorted(api_listing.WINGS)
    with pytest.raises(ValueError, match="unknown wing 'metrics'"):
        api_listing.listing("metrics")


def test_the_page_builds_without_a_warning(tmp_path):
    """The book's build fails on any Sphinx warning: a docstring autodoc cannot read, or a
    constant shown with its type's docstring (dict's), would fail it."""
    src = tmp_path / "src"
    (src / "chapters").mkdir(parents=True)
    (src / "chapters" / "api.md").write_text((ROOT / "chapters" / "api.md").read_text())
    (src / "index.md").write_text("# Home\n\n```{toctree}\nchapters/api\n```\n")
    (src / "conf.py").write_text(
        f"import sys\nsys.path.insert(0, {str(ROOT / '_ext')!r})\n"
        "extensions = ['myst_parser', 'sphinx.ext.autodoc', 'sphinx.ext.napoleon', "
        "'api_listing']\nautodoc_typehints = 'none'\n"
    )
    out = tmp_path / "html"
    # in a process of its own: Sphinx registers its nodes process-wide, and a second in-process
    # build with -W (the glossary index test) would fail on "already registered"
    built = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "-q", "-b", "html", str(src), str(out)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    page = (out / "chapters" / "api.html").read_text()
    assert 'id="sslkit.analyze"' in page and 'id="sslkit.data.load"' in page
    assert "dict() -&gt; new empty dictionary" not in page
