"""Helpers the chapters share: set-up, glued numbers, findings and the chapter scoreboard.

- :func:`setup` fixes threads, the plotting style and the profile, and prints them.
- :func:`glue` records a value for the prose (myst-nb's ``glue`` when the book is built;
  nothing, or a plain print, in Colab or Jupyter where myst-nb may be missing).
- :func:`report` measures a :class:`~sslkit.paper.Finding` and glues its numbers.

The build policy: the prose of the book is written for the verdicts of the ``cpu``
profile with its default seeds. In *that* build (``SSLKIT_BOOK_BUILD=1``, set by ``make
book``) a verdict that differs from what the prose states fails the cell, so the text can
never contradict the numbers. Everywhere else (Colab, another profile or seed, a
student's edit) nothing raises: the chapter prints one line where the run differs from
the book's, and its scoreboard shows the verdicts.
"""

from __future__ import annotations

import os

import pandas as pd
import torch

from .cost import fmt_duration
from .paper import finding
from .plan import chapter_plan
from .plots import use_style
from .profiles import Profile, get_profile

__all__ = [
    "setup",
    "glue",
    "pct",
    "report",
    "scoreboard",
    "show_scoreboard",
    "strict",
    "BOOK_PROFILE",
]

# The profile (and its default seeds) the book's prose is written for.
BOOK_PROFILE = "cpu"


def setup(
    profile: str | None = None, threads: int | None = None, chapter: str | None = None
) -> Profile:
    """Set torch's CPU threads (``$OMP_NUM_THREADS`` or 2), the book's plot style, and
    return the profile (``$SSLKIT_PROFILE``, else ``cpu``).

    With ``chapter`` (e.g. ``"04b"``), also glue the chapter's estimated run time from an
    empty cache (``run_time_cpu``, ``run_time_t4``) and its number of runs (``run_count``),
    computed by :mod:`sslkit.plan` for this profile.
    """
    threads = threads or int(os.environ.get("OMP_NUM_THREADS", "2") or 2)
    torch.set_num_threads(threads)
    use_style()
    prof = get_profile(profile)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    print(
        f"profile: {prof.name} ({prof.dataset}, {prof.backbone}, {prof.epochs} epochs, seeds "
        f"{list(prof.seeds)}) | "
        f"device: {device} | torch {torch.__version__} | threads: {torch.get_num_threads()}"
    )
    if chapter is not None:
        plan = chapter_plan(chapter, prof, cache=False)
        glue("run_count", len(plan))
        glue("run_time_cpu", fmt_duration(plan["cpu"].sum()))
        glue("run_time_t4", fmt_duration(plan["T4"].sum()))
    return prof


def glue(name: str, value, display: bool = False):
    """Make ``value`` available to the prose as ``{glue:text}`name```; returns nothing."""
    try:
        from myst_nb import glue as _glue  # lazy: myst-nb is there only when the book is built
    except ImportError:  # Colab / plain Jupyter: nothing to glue into
        if display:
            print(f"{name} = {value}")
        return None
    _glue(name, value, display=display)
    return None


def pct(x: float, digits: int = 1) -> str:
    """An accuracy in [0, 1] as a percentage string, e.g. ``pct(0.8234) == '82.3%'``."""
    return f"{100 * x:.{digits}f}%"


def strict(profile: Profile, seeds=None) -> bool:
    """Whether this is the book's own build, where a verdict that contradicts the prose fails."""
    return (
        os.environ.get("SSLKIT_BOOK_BUILD", "") == "1"
        and profile.name == BOOK_PROFILE
        and tuple(seeds or profile.seeds) == get_profile(BOOK_PROFILE).seeds
    )


# What :func:`report` glues for a finding ``key``: ``{key}_{part}`` for each part.
REPORT_GLUES = ("effect", "ci", "verdict", "value", "control")


def report(key: str, profile: Profile, seeds=None):
    """Measure the finding ``key`` and glue ``{key}_effect``, ``{key}_ci``, ``{key}_verdict``,
    ``{key}_value`` and ``{key}_control`` for the prose; returns the :class:`~sslkit.paper.Verdict`.

    In the book's build a verdict other than the one the prose states raises
    ``AssertionError``; anywhere else it prints one line and carries on.
    """
    f = finding(key)
    v = f.measure(profile, seeds)
    parts = {
        "effect": f.fmt(v.effect),
        "ci": f"{f.fmt(v.lo)} to {f.fmt(v.hi)}",
        "verdict": v.verdict,
        "value": f.fmt_level(v.value),
        "control": f.fmt_level(v.control),
    }
    for part in REPORT_GLUES:
        glue(f"{key}_{part}", parts[part])
    line = (
        f"{f.claim}: effect {f.fmt(v.effect)} (95% CI {f.fmt(v.lo)} to {f.fmt(v.hi)}, {v.n} seeds; "
        f"threshold {f.fmt(f.threshold)}) → {v.verdict}"
    )
    if v.verdict != f.book_verdict:
        message = (
            f"The book's text says '{f.book_verdict}' for this claim; this run says '{v.verdict}'. "
            f"[{line}]"
        )
        if strict(profile, seeds):
            raise AssertionError(
                message + " The prose of the book would contradict its numbers: "
                "update the text (never the threshold)."
            )
        print(f"ⓘ Your run differs from the book's: {message}")
    else:
        print(f"{line} (as the book states)")
    return v


def scoreboard(verdicts) -> pd.DataFrame:
    """One row per finding: claim, source, this run, control, effect and its 95% CI across
    seeds, threshold, verdict, and what the book's build states. Never raises on a verdict."""
    rows = [v.row() for v in verdicts]
    return pd.DataFrame(rows).set_index("claim")


def show_scoreboard(keys, profile: Profile, seeds=None):
    """The chapter's closing scoreboard as a styled table (measures what is not measured yet)."""
    table = scoreboard([finding(k).measure(profile, seeds) for k in keys])
    differs = table[table.verdict != table["the book's build"]]
    for claim in differs.index:
        print(f"ⓘ Your run differs from the book's for: {claim}")
    return table.style.set_properties(**{"text-align": "left"}).set_table_styles(
        [{"selector": "td, th", "props": "font-size: 0.85em; padding: 2px 6px;"}]
    )
