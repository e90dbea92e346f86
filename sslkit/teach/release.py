"""A release: one version, written everywhere a reader installs sslkit from.

The version lives in one place, :data:`sslkit.__version__`; its git tag is ``v`` + that
version (:func:`tag`). ``make release`` builds and checks the sdist and the wheel, installs
the wheel in a fresh virtual environment, and runs ``python -m sslkit.teach.release``, which
writes the tag

- into each chapter's install cell (``sslkit @ git+…@v0.1.0``; only that line of the
  notebook's file changes), and so into the Colab copies, which the book's build makes from
  the chapters with their code cells unchanged (``_ext/colab_copies.py``);
- into ``CITATION.cff`` (its version, and the release date when the version changes);
- into the README's Binder link (:func:`binder_url`), which starts the release's environment
  and opens the Colab copies; the book's Binder button is made the same way at build time.

It tags nothing and uploads nothing: it prints the ``git tag`` command to run. A notebook a
reader is given installs a release tag or a commit, never a branch that moves
(:func:`moving_refs`); the student notebooks are pinned the same way (``make student REF=``).
"""

from __future__ import annotations

import argparse
import datetime
import json
import pathlib
import re
import subprocess
import urllib.parse

from .. import __version__
from .checkout import book_root

__all__ = [
    "COLAB_PYTHON",
    "CPU_TORCH_INDEX",
    "tag",
    "is_fixed",
    "install_refs",
    "moving_refs",
    "set_install_ref",
    "set_citation",
    "binder_url",
    "set_readme_binder",
    "write",
    "tag_command",
    "check_installed",
]

# The Python of Google Colab's runtime: Binder's runtime.txt and the autograders' environment
# use it too, so that a reader, a student and the grader run the same Python.
COLAB_PYTHON = "3.12"
# PyTorch's CPU-only wheels (about 0.2 GB instead of 3 GB of CUDA libraries), for machines that
# run the chapters without a GPU: Binder and the autograders.
CPU_TORCH_INDEX = "https://download.pytorch.org/whl/cpu"

# sslkit's pip requirement in an install cell: ``sslkit @ git+URL@REF`` (extras allowed).
INSTALL = re.compile(r"""sslkit(?:\[[\w,.\-]+\])? @ git\+(?P<url>[^"'\s@]+)@(?P<ref>[^"'\s#]+)""")
# What does not move: a release tag (v0.1.0, v1.2.0rc1) or a commit (7 to 40 hex digits).
_RELEASE_TAG = re.compile(r"v\d+(\.\d+)*((a|b|rc)\d+)?(\.post\d+)?")
_COMMIT = re.compile(r"[0-9a-f]{7,40}")
_BINDER_LINK = re.compile(r"https://mybinder\.org/v2/gh/[^)\s\"'>]+")


def tag(version: str = __version__) -> str:
    """The git tag of a release: ``v`` + the version (``v0.1.0``)."""
    return f"v{version}"


def is_fixed(ref: str) -> bool:
    """Whether a git ref names one state of the code: a release tag or a commit, not a branch."""
    return bool(_RELEASE_TAG.fullmatch(ref) or _COMMIT.fullmatch(ref))


def install_refs(nb: dict) -> list[str]:
    """The git ref of every ``sslkit @ git+…@REF`` a notebook's code cells install."""
    return [
        m["ref"]
        for cell in nb["cells"]
        if cell["cell_type"] == "code"
        for m in INSTALL.finditer("".join(cell["source"]))
    ]


def moving_refs(nb: dict) -> list[str]:
    """The refs a notebook installs sslkit at that can move (``main``, any branch): a reader
    who runs it next month would run other code than the book they read."""
    return [ref for ref in install_refs(nb) if not is_fixed(ref)]


def set_install_ref(text: str, ref: str) -> str:
    """A notebook file's ``text`` with its first code cell's install line at ``ref``.

    Only that line's string changes in the file (the rest of the JSON is left byte for byte,
    so the diff is one line); ``ValueError`` if the first code cell installs no sslkit."""
    if not is_fixed(ref):
        raise ValueError(f"{ref!r} is not a release tag (v1.2.3) or a commit: it would move")
    nb = json.loads(text)
    first = next((c for c in nb["cells"] if c["cell_type"] == "code"), None)
    lines = [] if first is None else first["source"]
    lines = lines.splitlines(True) if isinstance(lines, str) else lines
    at = next((i for i, line in enumerate(lines) if INSTALL.search(line)), None)
    if at is None:
        raise ValueError(
            "the first code cell installs no 'sslkit @ git+URL@REF': put the Colab install "
            "cell first (see any chapter) before writing the release into it"
        )
    old = lines[at]
    m = INSTALL.search(old)
    new = old[: m.start("ref")] + ref + old[m.end("ref") :]
    if new == old:
        return text
    old_json, new_json = (json.dumps(s, ensure_ascii=False) for s in (old, new))
    if text.count(old_json) != 1:
        raise ValueError(
            f"the install line {old.strip()!r} is written {text.count(old_json)} times in the "
            "notebook's file: edit it by hand"
        )
    out = text.replace(old_json, new_json)
    lines[at] = new
    first["source"] = lines if isinstance(first["source"], list) else "".join(lines)
    if json.loads(out) != nb:
        raise RuntimeError(f"writing {ref} changed more than the install line {old.strip()!r}")
    return out


def set_citation(text: str, version: str, today: datetime.date, tagged: bool = True) -> str:
    """``CITATION.cff``'s text at ``version``. The release date becomes ``today`` when the
    version changes, or while the release is not ``tagged`` yet (it is being prepared)."""
    found = re.search(r'(?m)^version: "?([^"\n]+)"?$', text)
    if found is None:
        raise ValueError('CITATION.cff has no version: line: add one (version: "X.Y.Z")')
    if found[1] == version and tagged:
        return text
    text = text[: found.start()] + f'version: "{version}"' + text[found.end() :]
    return re.sub(r"(?m)^date-released: .*$", f'date-released: "{today.isoformat()}"', text)


def is_tagged(root: pathlib.Path, ref: str) -> bool:
    """Whether the git checkout at ``root`` has the tag ``ref`` (True where git cannot say:
    then the release date is left as it is)."""
    try:
        done = subprocess.run(
            ["git", "-C", str(root), "tag", "--list", ref], capture_output=True, text=True
        )
    except OSError:
        return True
    return done.returncode != 0 or done.stdout.strip() == ref


def binder_url(
    repository: str,
    ref: str,
    page: str = "chapters/",
    copies_branch: str = "gh-pages",
    copies_dir: str = "colab",
    interface: str = "tree",
    binderhub: str = "https://mybinder.org",
) -> str:
    """The Binder address that starts ``repository`` at ``ref`` (its ``binder/``: the release's
    environment) and opens the Colab copy of ``page`` (a chapter's ``chapters/NAME.ipynb``, or
    the folder), which nbgitpuller fetches from ``copies_branch``, where the published site
    keeps them under ``copies_dir``. ``interface``: ``tree`` (classic) or ``lab/tree``."""
    owner_name = urllib.parse.urlparse(repository).path.strip("/").removesuffix(".git")
    if owner_name.count("/") != 1:
        raise ValueError(f"expected https://github.com/OWNER/REPO, got {repository!r}")
    folder = owner_name.split("/")[1]  # where nbgitpuller clones the copies' branch
    inner = "git-pull?" + urllib.parse.urlencode(
        {
            "repo": repository.removesuffix(".git"),
            "branch": copies_branch,
            "urlpath": f"{interface}/{folder}/{copies_dir.strip('/')}/{page}",
        }
    )
    return (
        f"{binderhub.rstrip('/')}/v2/gh/{owner_name}/{ref}"
        f"?urlpath={urllib.parse.quote(inner, safe='')}"
    )


def set_readme_binder(text: str, url: str) -> str:
    """The README's ``text`` with its Binder link replaced by ``url`` (exactly one link)."""
    found = _BINDER_LINK.findall(text)
    if len(found) != 1:
        raise ValueError(f"the README should hold one Binder link, it holds {len(found)}")
    return _BINDER_LINK.sub(url, text)


def config_value(config: str, key: str) -> str:
    """A value of the book's ``_config.yml`` by its key (the first line ``key: value``)."""
    found = re.search(rf"(?m)^\s*{re.escape(key)}:\s*(\S+)", config)
    if found is None:
        raise ValueError(f"_config.yml has no {key}:")
    return found[1]


def book_binder_url(config: str, ref: str, page: str = "chapters/") -> str:
    """:func:`binder_url` with the repository and the Colab copies' place of ``_config.yml``."""
    repository = config_value(config.split("repository:", 1)[1], "url")
    interface = {"classic": "tree", "jupyterlab": "lab/tree"}[
        config_value(config, "notebook_interface")
    ]
    return binder_url(
        repository,
        ref,
        page,
        config_value(config, "colab_copies_branch"),
        config_value(config, "colab_copies_dir"),
        interface,
        config_value(config, "binderhub_url"),
    )


def write(root=None, version: str = __version__, today: datetime.date | None = None) -> list[str]:
    """Write the release ``v{version}`` into the checkout at ``root``; the files it changed."""
    root = book_root(root)
    ref = tag(version)
    changed = []

    def update(path: pathlib.Path, new: str) -> None:
        if path.read_text(encoding="utf-8") != new:
            path.write_text(new, encoding="utf-8")
            changed.append(str(path.relative_to(root)))

    for path in sorted((root / "chapters").glob("*.ipynb")):
        update(path, set_install_ref(path.read_text(encoding="utf-8"), ref))
    cff = root / "CITATION.cff"
    today = today or datetime.date.today()
    update(cff, set_citation(cff.read_text(), version, today, is_tagged(root, ref)))
    readme = root / "README.md"
    url = book_binder_url((root / "_config.yml").read_text(), ref)
    update(readme, set_readme_binder(readme.read_text(encoding="utf-8"), url))
    return changed


def tag_command(version: str = __version__) -> str:
    """What to run once the release's commit builds the book (nothing here tags)."""
    ref = tag(version)
    return (
        f"Release {ref} built and checked. Commit, then tag the commit that builds the book:\n"
        f'  git tag -a {ref} -m "sslkit {version}" && git push origin {ref}\n'
        "Then, from a maintainer's machine: twine upload dist/* (README, Releases)."
    )


def check_installed(prefix) -> str:
    """In the fresh environment ``make release`` installs the wheel in (under ``prefix``): sslkit
    is imported from the wheel, not a checkout, with its evidence tables and every dependency
    its metadata names at an installed version it accepts. ``SystemExit`` says what is not."""
    import importlib
    import importlib.metadata

    from packaging.requirements import Requirement

    here = pathlib.Path(__file__).resolve().parents[1]
    if not here.is_relative_to(pathlib.Path(prefix).resolve()):
        raise SystemExit(f"sslkit was imported from {here}, not from the wheel under {prefix}")
    for name in ("sslkit.metrics", "sslkit.losses", "sslkit.findings", "sslkit.anymodel"):
        importlib.import_module(name)
    tables = {p.name for p in (here / "evidence" / "reference").glob("*")}
    if not {"manifest.json", "evaluations.csv.gz"} <= tables:
        raise SystemExit(f"the wheel lacks the evidence store's tables: it holds {sorted(tables)}")
    needed = [Requirement(r) for r in importlib.metadata.requires("sslkit") or []]
    needed = [r for r in needed if r.marker is None]  # the extras ([course]) aside
    unmet = []
    for req in needed:
        try:
            found = importlib.metadata.version(req.name)
        except importlib.metadata.PackageNotFoundError:
            found = None
        if found is None or not req.specifier.contains(found, prereleases=True):
            unmet.append(f"{req} (installed: {found})")
    if unmet:
        raise SystemExit(f"the wheel's dependencies are not met: {', '.join(unmet)}")
    return (
        f"sslkit {__version__} imports from the wheel in a fresh environment ({here}), with its "
        f"evidence tables and its {len(needed)} dependencies met"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sslkit.teach.release",
        description="make release's steps: `write` writes the tag v<sslkit.__version__> into the "
        "chapters' install cells, CITATION.cff and the README's Binder link; `installed` checks "
        "the wheel installed in a fresh environment; `tag` prints the git tag command to run "
        "(nothing here tags or uploads).",
    )
    parser.add_argument("step", choices=["write", "installed", "tag"])
    parser.add_argument("--root", help="the book's checkout (default: the one sslkit is in)")
    parser.add_argument("--prefix", help="installed: the fresh environment's folder")
    args = parser.parse_args(argv)
    if args.step == "tag":
        print(tag_command())
        return 0
    if args.step == "installed":
        print(check_installed(args.prefix))
        return 0
    changed = write(args.root)
    print(f"release {tag()}: " + (f"wrote {', '.join(changed)}" if changed else "files up to date"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
