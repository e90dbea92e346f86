"""The release a reader installs, Binder's environment, and what `make` checks before it starts.

Nothing here downloads: the Makefile's checks run against fake Pythons written by the test.
"""

import datetime
import difflib
import importlib.util
import json
import os
import pathlib
import shutil
import subprocess
import tomllib
import urllib.parse

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

import sslkit
from sslkit.teach import release

ROOT = pathlib.Path(__file__).resolve().parent.parent
CHAPTERS = sorted((ROOT / "chapters").glob("*.ipynb"))
CONFIG = (ROOT / "_config.yml").read_text()


# --- the release's tag in every install line ---------------------------------------------------


def test_fixed_refs_are_tags_and_commits_and_a_branch_moves():
    assert release.tag() == f"v{sslkit.__version__}"
    for ref in ("v0.1.0", "v1.2.0rc1", "v2.0.0.post1", "3f2a9c1", "0" * 40):
        assert release.is_fixed(ref), ref
    for ref in ("main", "master", "dev", "gh-pages", "release/0.1", "HEAD", "v1.x", "latest"):
        assert not release.is_fixed(ref), ref


def _notebook(*code: str) -> dict:
    cells = [{"cell_type": "markdown", "metadata": {}, "source": ["# Title\n"]}]
    cells += [
        {"cell_type": "code", "metadata": {}, "outputs": [], "execution_count": None, "source": c}
        for c in code
    ]
    return {"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}


INSTALL = (
    'if "google.colab" in sys.modules:\n    %pip install -q "sslkit @ git+https://x.org/o/r@{}"'
)


def test_a_planted_moving_branch_in_a_notebook_is_caught():
    """The check the chapters pass (test_chapters.py) fails on @main, @dev or the course's
    extra at a branch, and passes a tag or a commit."""
    for ref in ("main", "dev"):
        assert release.moving_refs(_notebook(INSTALL.format(ref))) == [ref]
    course = _notebook('%pip install "sslkit[course] @ git+https://x.org/o/r@main#egg=sslkit"')
    assert release.moving_refs(course) == ["main"]
    later = _notebook("import sys", INSTALL.format("main"))  # not only the first code cell
    assert release.moving_refs(later) == ["main"]
    for ref in ("v0.1.0", "9c4e2b7"):
        assert release.moving_refs(_notebook(INSTALL.format(ref))) == []


def test_the_release_changes_one_line_of_a_chapters_file():
    text = CHAPTERS[0].read_text()
    new = release.set_install_ref(text, "v9.9.9")
    diff = [
        line
        for line in difflib.unified_diff(text.splitlines(), new.splitlines(), lineterm="", n=0)
        if line.startswith(("+", "-")) and not line.startswith(("+++", "---"))
    ]
    assert len(diff) == 2 and diff[0].endswith(f'@{release.tag()}\\""') and "@v9.9.9" in diff[1]
    assert release.install_refs(json.loads(new))[0] == "v9.9.9"
    assert release.set_install_ref(new, "v9.9.9") == new  # written twice: unchanged


def test_the_release_refuses_a_branch_and_a_notebook_without_an_install_cell():
    text = json.dumps(_notebook(INSTALL.format("v0.1.0")), indent=1)
    with pytest.raises(ValueError, match="would move"):
        release.set_install_ref(text, "main")
    no_install = json.dumps(_notebook("import sys", INSTALL.format("v0.1.0")), indent=1)
    with pytest.raises(ValueError, match="first code cell installs no"):
        release.set_install_ref(no_install, "v0.2.0")


def test_citation_names_the_release():
    cff = (ROOT / "CITATION.cff").read_text()
    assert f'version: "{sslkit.__version__}"' in cff, "run make release"
    day = datetime.date(2031, 1, 2)
    assert release.set_citation(cff, sslkit.__version__, day) == cff  # released: kept
    bumped = release.set_citation(cff, "9.9.9", day)
    assert 'version: "9.9.9"' in bumped and 'date-released: "2031-01-02"' in bumped
    untagged = release.set_citation(cff, sslkit.__version__, day, tagged=False)
    assert 'date-released: "2031-01-02"' in untagged  # being prepared: dated today


def test_write_puts_the_release_everywhere_in_a_checkout(tmp_path):
    for name in ("_config.yml", "_toc.yml", "CITATION.cff", "README.md"):
        shutil.copy(ROOT / name, tmp_path / name)
    (tmp_path / "chapters").mkdir()
    for path in CHAPTERS[:2]:
        shutil.copy(path, tmp_path / "chapters" / path.name)
    changed = release.write(tmp_path, version="9.9.9", today=datetime.date(2031, 1, 2))
    assert sorted(changed) == sorted(
        [f"chapters/{p.name}" for p in CHAPTERS[:2]] + ["CITATION.cff", "README.md"]
    )
    for path in CHAPTERS[:2]:
        nb = json.loads((tmp_path / "chapters" / path.name).read_text())
        assert release.install_refs(nb) == ["v9.9.9"]
    assert 'version: "9.9.9"' in (tmp_path / "CITATION.cff").read_text()
    assert "/v2/gh/ssl-book/reverse-engineering-ssl/v9.9.9?" in (tmp_path / "README.md").read_text()
    assert release.write(tmp_path, version="9.9.9") == []  # a second run changes nothing


def test_release_prints_the_tag_command_and_tags_nothing(capsys):
    assert release.main(["tag"]) == 0
    out = capsys.readouterr().out
    assert f"git tag -a {release.tag()} " in out and "twine upload" in out


def test_the_installed_check_knows_a_checkout_from_the_wheel(tmp_path):
    """make release's last check, run in the fresh environment: sslkit must come from there.
    Planted: run from this checkout against another folder, it refuses; against the checkout's
    own folder everything else it checks holds (imports, evidence tables, dependencies)."""
    with pytest.raises(SystemExit, match="not from the wheel"):
        release.check_installed(tmp_path)
    said = release.check_installed(ROOT)
    assert f"sslkit {sslkit.__version__} imports" in said and "dependencies met" in said


# --- Binder -----------------------------------------------------------------------------------


def test_binders_python_is_one_sslkit_accepts_and_colabs():
    runtime = (ROOT / "binder" / "runtime.txt").read_text().strip()
    assert runtime.startswith("python-"), runtime
    version = runtime.removeprefix("python-")
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert SpecifierSet(requires).contains(f"{version}.0"), (
        f"Binder's Python {version} is not allowed by requires-python {requires}: repo2docker "
        "would stop at pip install"
    )
    assert version == release.COLAB_PYTHON


def test_a_python_outside_requires_python_is_caught():
    """Planted: runtime.txt's missing default (repo2docker's 3.10) fails the check above."""
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert not SpecifierSet(requires).contains("3.10.13")


def test_binders_requirements_parse_and_install_cpu_torch():
    lines = [
        line.split("#")[0].strip()
        for line in (ROOT / "binder" / "requirements.txt").read_text().splitlines()
    ]
    options = [line for line in lines if line.startswith("-")]
    reqs = [Requirement(line) for line in lines if line and not line.startswith("-")]
    assert options == [f"--extra-index-url {release.CPU_TORCH_INDEX}"]
    names = {r.name for r in reqs}
    assert {"torch", "torchvision", "nbgitpuller"} <= names
    # sslkit's own dependencies, with the same ranges (postBuild installs sslkit --no-deps)
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for dep in map(Requirement, project["dependencies"]):
        found = [r for r in reqs if r.name == dep.name]
        assert found and found[0].specifier == dep.specifier, (dep, found)


def _binder_parts(url: str) -> tuple[list[str], dict[str, str]]:
    """Binder's path (``v2/gh/OWNER/REPO/REF``) and the nbgitpuller query it opens."""
    parsed = urllib.parse.urlparse(url)
    path = parsed.path.strip("/").split("/")
    urlpath = urllib.parse.parse_qs(parsed.query)["urlpath"][0]
    assert urlpath.startswith("git-pull?"), urlpath
    pull = {k: v[0] for k, v in urllib.parse.parse_qs(urlpath.split("?", 1)[1]).items()}
    return path, pull


def test_the_readmes_binder_link_starts_the_release_and_opens_the_colab_copies():
    readme = (ROOT / "README.md").read_text()
    links = release._BINDER_LINK.findall(readme)
    assert len(links) == 1
    path, pull = _binder_parts(links[0])
    repository = release.config_value(CONFIG.split("repository:", 1)[1], "url")
    owner, name = urllib.parse.urlparse(repository).path.strip("/").split("/")
    assert path == ["v2", "gh", owner, name, release.tag()], "run make release"
    assert pull["repo"] == repository
    assert pull["branch"] == release.config_value(CONFIG, "colab_copies_branch")
    copies = release.config_value(CONFIG, "colab_copies_dir")
    assert pull["urlpath"] == f"tree/{name}/{copies}/chapters/", pull
    assert links[0] == release.book_binder_url(CONFIG, release.tag())


def test_the_books_binder_button_opens_the_pages_colab_copy_at_the_release():
    spec = importlib.util.spec_from_file_location("colab_copies", ROOT / "_ext" / "colab_copies.py")
    ext = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ext)

    class Config:
        html_theme_options = {
            "repository_url": "https://github.com/o/book",
            "launch_buttons": {
                "notebook_interface": "classic",
                "colab_url": "https://colab.research.google.com",
                "binderhub_url": "https://mybinder.org",
            },
        }
        colab_copies_branch = "gh-pages"
        colab_copies_dir = "colab"
        html_baseurl = ""

    class App:
        config = Config()

    theirs = "https://mybinder.org/v2/gh/o/book/main?urlpath=tree/chapters/03_x.ipynb"
    context = {"header_buttons": [{"buttons": [{"text": "Binder", "url": theirs}]}]}
    ext.point_colab_button(App(), "chapters/03_x", None, context, None)
    url = context["header_buttons"][0]["buttons"][0]["url"]
    path, pull = _binder_parts(url)
    assert path == ["v2", "gh", "o", "book", release.tag()]
    assert pull == {
        "repo": "https://github.com/o/book",
        "branch": "gh-pages",
        "urlpath": "tree/book/colab/chapters/03_x.ipynb",
    }


# --- what make checks first -------------------------------------------------------------------


def _make(tmp_path, *args, env=None, timeout=60):
    if not shutil.which("make"):
        pytest.skip("no make on this machine")
    for name in ("Makefile", "requirements.txt", "pyproject.toml", "requirements-release.txt"):
        if not (tmp_path / name).exists():
            shutil.copy(ROOT / name, tmp_path / name)
    return subprocess.run(
        ["make", *args], cwd=tmp_path, capture_output=True, text=True, env=env, timeout=timeout
    )


def _fake_python(path: pathlib.Path, version: str) -> pathlib.Path:
    """A 'Python' that reports ``version``, passes a version assertion only for that version,
    logs every call, and fails anything else (a venv it was asked to make, a download)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    major, minor = version.split(".")
    path.write_text(
        "#!/bin/sh\n"
        f'echo "$*" >> "{path}.calls"\n'
        'case "$*" in\n'
        f'  *"print("*) echo {version} ;;\n'
        f'  *"== ({major}, {minor})"*) exit 0 ;;\n'
        '  *"== ("*) exit 1 ;;\n'
        "  *) exit 3 ;;\n"
        "esac\n"
    )
    path.chmod(0o755)
    return path


def test_make_stops_at_once_with_one_line_on_a_python_below_311(tmp_path):
    fake = _fake_python(tmp_path / "bin" / "python3.10", "3.10")
    done = _make(tmp_path, "install", f"PY={fake}", timeout=20)
    assert done.returncode != 0
    errors = [line for line in done.stderr.splitlines() if line.startswith("make: ")]
    assert errors and "Python 3.10" in errors[0] and "PY=" in errors[0], done.stderr
    assert "3.11 or newer" in errors[0]
    assert not (tmp_path / ".venv").exists()
    assert "-m venv" not in (tmp_path / "bin" / "python3.10.calls").read_text()


def test_make_goes_on_with_a_python_311_or_newer(tmp_path):
    """Planted the other way: a 3.12 passes the check and make goes on to make .venv (which
    the fake Python then refuses, so nothing is downloaded)."""
    fake = _fake_python(tmp_path / "bin" / "python3.12", "3.12")
    done = _make(tmp_path, "install", f"PY={fake}", timeout=20)
    assert "sslkit needs" not in done.stderr
    assert "-m venv .venv" in (tmp_path / "bin" / "python3.12.calls").read_text()


def test_make_names_a_python_it_cannot_run(tmp_path):
    done = _make(tmp_path, "install", f"PY={tmp_path / 'nowhere' / 'python3'}", timeout=20)
    assert done.returncode != 0 and "PY=" in done.stderr and "cannot run" in done.stderr


def test_the_makefiles_minimum_python_is_requires_python():
    import re

    minimum = re.search(r"(?m)^PY_MIN := (\S+)$", (ROOT / "Makefile").read_text())[1]
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert requires == f">={minimum}"


def test_the_cpu_torch_index_is_an_option_of_the_install(tmp_path):
    plain = _make(tmp_path, "-n", "install", "PY=python3")
    assert "--extra-index-url" not in plain.stdout
    cpu = _make(tmp_path, "-n", "install", "PY=python3", f"TORCH_INDEX={release.CPU_TORCH_INDEX}")
    assert f"--extra-index-url {release.CPU_TORCH_INDEX} -r requirements.txt" in cpu.stdout


def _no_python312_env(tmp_path, pyenv_root: pathlib.Path, pyenv_home=None) -> dict:
    """A PATH with the system's tools, a `pyenv` (in ``pyenv_home``/bin) whose root is
    ``pyenv_root``, no python3.12, and a HOME without .pyenv (as when HOME is not the user's)."""
    bin_dir = (pyenv_home or tmp_path / "fakebin") / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    (bin_dir / "pyenv").write_text(f'#!/bin/sh\n[ "$1" = root ] && echo "{pyenv_root}"\n')
    (bin_dir / "pyenv").chmod(0o755)
    path = f"{bin_dir}:/usr/bin:/bin"
    if shutil.which("python3.12", path=path):
        pytest.skip("this machine has a python3.12 in /usr/bin or /bin")
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "PYENV_ROOT", "PY312")}
    return env | {"PATH": path, "HOME": str(tmp_path / "home")}


def test_test_py312_fails_under_ci_without_a_python_312_and_skips_elsewhere(tmp_path):
    env = _no_python312_env(tmp_path, tmp_path / "empty-pyenv")
    ci = _make(tmp_path, "test-py312", env=env | {"CI": "true"})
    assert ci.returncode != 0, ci.stdout + ci.stderr
    assert "no Python 3.12 found" in ci.stderr and "PY312=" in ci.stderr
    local = _make(tmp_path, "test-py312", env=env)
    assert local.returncode == 0 and "skipped" in local.stdout, local.stderr
    assert not (tmp_path / ".venv312").exists()


@pytest.mark.parametrize("found_by", ["pyenv root", "where pyenv is"])
def test_test_py312_finds_pyenvs_312(tmp_path, found_by):
    """Through `pyenv root`, or, where that names the wrong folder (HOME not the user's own),
    beside the pyenv executable on the PATH."""
    home = tmp_path / "pyenv-home"
    root = tmp_path / "somewhere-else" if found_by == "pyenv root" else home
    fake = _fake_python(root / "versions" / "3.12.9" / "bin" / "python3.12", "3.12")
    wrong = tmp_path / "home" / ".pyenv"
    env = _no_python312_env(tmp_path, root if found_by == "pyenv root" else wrong, home)
    done = _make(tmp_path, "test-py312", env=env | {"CI": "true"})
    assert "no Python 3.12 found" not in done.stderr
    assert "-m venv .venv312" in pathlib.Path(f"{fake}.calls").read_text()


def test_test_py312_refuses_a_py312_that_is_not_312(tmp_path):
    fake = _fake_python(tmp_path / "bin" / "python3", "3.11")
    done = _make(tmp_path, "test-py312", f"PY312={fake}")
    assert done.returncode != 0 and "is not a Python 3.12" in done.stderr
