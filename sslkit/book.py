"""Helpers the chapters share: set-up, glued numbers and the checks of each finding.

- :func:`setup` fixes threads, the plotting style and the profile, and prints them.
- :func:`glue` records a number for the prose (myst-nb's ``glue`` when the book is
  built; a plain display in Colab or Jupyter, where myst-nb may be missing).
- :func:`check` asserts a finding on the run that produced it: when it does not hold,
  the cell fails and so does the book's build.
"""
from __future__ import annotations

import os

import torch

from .profiles import Profile, get_profile

__all__ = ["setup", "glue", "check", "pct"]


def setup(profile: str | None = None, threads: int | None = None) -> Profile:
    """Set torch's CPU threads (``$OMP_NUM_THREADS`` or 2), the book's plot style, and
    return the profile (``$SSLKIT_PROFILE``, else ``gpu`` with CUDA, ``cpu`` without)."""
    from .plots import use_style

    threads = threads or int(os.environ.get("OMP_NUM_THREADS", "2") or 2)
    torch.set_num_threads(threads)
    use_style()
    prof = get_profile(profile)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    print(f"profile: {prof.name} ({prof.dataset}, {prof.backbone}, {prof.epochs} epochs) | "
          f"device: {device} | torch {torch.__version__} | threads: {torch.get_num_threads()}")
    return prof


def glue(name: str, value, display: bool = False):
    """Make ``value`` available to the prose as ``{glue:text}`name```; returns it."""
    try:
        from myst_nb import glue as _glue
    except ImportError:  # Colab / plain Jupyter: nothing to glue into
        if display:
            print(f"{name} = {value}")
        return value
    _glue(name, value, display=display)
    return value


def check(condition: bool, finding: str) -> None:
    """Assert a finding the chapter states; fails the cell (and the build) when it does not hold."""
    if not bool(condition):
        raise AssertionError(f"This run does not support the finding: {finding}")
    print(f"✓ {finding}")


def pct(x: float, digits: int = 1) -> str:
    """An accuracy in [0, 1] as a percentage string, e.g. ``pct(0.8234) == '82.3%'``."""
    return f"{100 * x:.{digits}f}%"
