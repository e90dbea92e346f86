"""Where the book's checkout is: the folder the coursework edition reads its chapters, table of
contents and configuration from.

sslkit ships in a wheel without the book; only a clone of the book's repository holds
``chapters/``, ``_toc.yml`` and ``_config.yml``, with the package beside them (installed with
``pip install -e .``). The edition's build takes that folder as ``root``; by default it is the
folder above the package, and outside a checkout (a pip install, whose site-packages holds no
book) it is refused with a message that says so, never read as a book without chapters.
"""

from __future__ import annotations

import pathlib

__all__ = ["book_root", "BOOK_FILES"]

# The folder above the package: the book's checkout, when sslkit is imported from one.
_ABOVE_PACKAGE = pathlib.Path(__file__).resolve().parents[2]
# What a checkout of the book holds there.
BOOK_FILES = ("chapters", "_toc.yml", "_config.yml")


def book_root(root=None) -> pathlib.Path:
    """``root`` as a path; by default the checkout sslkit is imported from (the folder above
    the package), or ``FileNotFoundError`` naming what it lacks when that is not a checkout."""
    if root is not None:
        return pathlib.Path(root)
    missing = [name for name in BOOK_FILES if not (_ABOVE_PACKAGE / name).exists()]
    if missing:
        raise FileNotFoundError(
            f"sslkit is not imported from a checkout of the book's repository: {_ABOVE_PACKAGE} "
            f"has no {', '.join(missing)}. The coursework edition is built from a checkout "
            "(git clone …; make student), or from the folder passed as root"
        )
    return _ABOVE_PACKAGE
