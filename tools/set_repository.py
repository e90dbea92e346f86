"""Point the book at another repository: updates _config.yml and every chapter's Colab cell.

Usage: python tools/set_repository.py https://github.com/OWNER/REPO [BRANCH]

BRANCH is the branch of _config.yml (launch buttons, the repository link). The chapters'
install cells keep the release tag they install (``@v…``, written by ``make release``): a
notebook a reader is given never installs a branch that moves.
"""

import json
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
INSTALL = re.compile(r'sslkit @ git\+(?P<url>[^@"]+)@(?P<ref>[^"]+)"')


def main(url: str, branch: str = "main") -> None:
    url = url.rstrip("/")
    if not re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+", url):
        raise SystemExit(f"expected https://github.com/OWNER/REPO, got {url!r}")
    cfg = ROOT / "_config.yml"
    text = cfg.read_text()
    text = re.sub(r"(?m)^(  url: ).*$", rf"\g<1>{url}", text, count=1)
    text = re.sub(r"(?m)^(  branch: ).*$", rf"\g<1>{branch}", text, count=1)
    cfg.write_text(text)
    for nb_path in sorted((ROOT / "chapters").glob("*.ipynb")):
        nb = json.loads(nb_path.read_text())
        for cell in nb["cells"]:
            src = "".join(cell["source"])
            if INSTALL.search(src):
                src = INSTALL.sub(lambda m: f'sslkit @ git+{url}@{m["ref"]}"', src)
                cell["source"] = src.splitlines(keepends=True)
        nb_path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
    print(f"repository set to {url} ({branch})")


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        raise SystemExit(__doc__)
    main(*sys.argv[1:])
