"""How long each chapter spends measuring its runs, beside the figures the chapter headers use.

Run with ``make bench-chapters`` (or ``python benchmarks/chapter_times.py [CHAPTER ...]``).
Each chapter runs top to bottom on a fresh kernel, on the profile of
:data:`sslkit.experiment.measured.MEASURING_PROFILE`, with its runs already trained (the
train cache of this machine, read through a link) and an empty evaluation cache: what remains
is the chapter's measuring (features, NCC, probes, kNN, UMAP, random-target draws, figures).
The wall time is printed beside :data:`sslkit.experiment.measured.MEASURING_SECONDS`, written
to ``benchmarks/CHAPTER_TIMES.md``, and given as a dictionary to paste into
``sslkit/experiment/measured.py``.
A chapter whose runs are not all trained is skipped with what to run first (``make book``).
Nothing here is a test: timings never fail anything.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

# 2 CPU cores, as the chapter headers say: two threads for every pool (torch, BLAS, numba's for
# UMAP), no GPU, and this process and its kernels on two cores where the machine has more.
CORES = 2
for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[name] = str(CORES)
os.environ["CUDA_VISIBLE_DEVICES"] = ""
os.environ.setdefault("TQDM_DISABLE", "1")
if hasattr(os, "sched_setaffinity") and len(os.sched_getaffinity(0)) > CORES:
    os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[:CORES])

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import nbformat  # noqa: E402
from machine import cpu_name  # noqa: E402  (benchmarks/machine.py)
from nbclient import NotebookClient  # noqa: E402
from nbclient.exceptions import CellExecutionError  # noqa: E402

from sslkit import cache, plan  # noqa: E402
from sslkit.cost import fmt_duration  # noqa: E402


def chapter_path(chapter: str) -> Path:
    (path,) = ROOT.glob(f"chapters/{chapter}_*.ipynb")
    return path


def _entries(folder: Path) -> dict[str, float]:
    """The train cache's entries and their modification times."""
    return {f.name: f.stat().st_mtime for f in folder.glob("*.pt")}


def time_chapter(chapter: str, train_cache: Path) -> float:
    """Wall seconds of the chapter's cells on a fresh kernel (its start not counted) with the
    runs of ``train_cache`` and an empty evaluation cache. Raises if the chapter trained or
    rewrote a run: that time would be training, not measuring."""
    with tempfile.TemporaryDirectory() as tmp:
        runs = Path(tmp) / "runs"
        runs.mkdir()
        (runs / cache.MARKER).touch()
        (runs / "train").symlink_to(train_cache, target_is_directory=True)
        before_env, before_runs = dict(os.environ), _entries(train_cache)
        os.environ.update(
            SSLKIT_CACHE=str(runs), SSLKIT_PROFILE=plan.MEASURING_PROFILE, MPLBACKEND="Agg"
        )
        os.environ.pop("SSLKIT_BOOK_BUILD", None)  # a reader's run: claims report, never fail
        try:
            path = chapter_path(chapter)
            nb = nbformat.read(path, as_version=4)
            client = NotebookClient(
                nb,
                timeout=1800,
                kernel_name="python3",
                resources={"metadata": {"path": str(path.parent)}},
            )
            with client.setup_kernel():
                start = time.perf_counter()
                for index, cell in enumerate(nb.cells):
                    client.execute_cell(cell, index)
                seconds = time.perf_counter() - start
        finally:
            os.environ.clear()
            os.environ.update(before_env)
        if _entries(train_cache) != before_runs:
            raise RuntimeError(
                f"chapter {chapter} trained or rewrote runs in {train_cache} while it was timed; "
                "run it once (make book), then time it again"
            )
        return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("chapters", nargs="*", help="chapters to time (default: every chapter)")
    args = parser.parse_args()
    chapters = args.chapters or list(plan.CHAPTER_CONFIGS)
    train_cache = cache.cache_root() / "train"
    timed = {}
    for ch in chapters:
        runs = plan.chapter_plan(ch, plan.MEASURING_PROFILE)
        if not runs.cached.all():
            print(
                f"chapter {ch}: {int((~runs.cached).sum())} of {len(runs)} runs are not trained "
                f"on this machine; run `make book` first. Skipped.",
                flush=True,
            )
            continue
        try:
            timed[ch] = time_chapter(ch, train_cache)
        except (CellExecutionError, RuntimeError) as e:
            print(f"chapter {ch}: not timed ({type(e).__name__}: {str(e)[:300]})", flush=True)
            continue
        stated = plan.MEASURING_SECONDS.get(ch)
        print(
            f"chapter {ch}: measuring {timed[ch]:.0f} s (sslkit.plan states "
            f"{'nothing' if stated is None else f'{stated:.0f} s'})",
            flush=True,
        )
    import torch

    cpu = cpu_name()
    lines = [
        "# Chapter measuring times",
        "",
        f"Written by `benchmarks/chapter_times.py` on {time.strftime('%Y-%m-%d')}: each chapter "
        f"on a fresh kernel, {plan.MEASURING_PROFILE} profile, its runs trained, an empty "
        "evaluation cache.",
        "",
        f"- machine: {cpu}, {len(os.sched_getaffinity(0))} of {os.cpu_count()} cores used, "
        f"{CORES} threads per pool, no GPU, Python {platform.python_version()}, "
        f"torch {torch.__version__}",
        "",
        "| chapter | measured now | stated in sslkit.plan | ratio |",
        "|---|---:|---:|---:|",
    ]
    for ch, seconds in timed.items():
        stated = plan.MEASURING_SECONDS.get(ch)
        lines.append(
            f"| {ch} | {fmt_duration(seconds)} ({seconds:.0f} s) | "
            + ("none |  |" if stated is None else f"{stated:.0f} s | {seconds / stated:.2f}x |")
        )
    (ROOT / "benchmarks" / "CHAPTER_TIMES.md").write_text("\n".join(lines) + "\n")
    print(
        "\nfor sslkit/experiment/measured.py:\nMEASURING_SECONDS = "
        + json.dumps({ch: round(s) for ch, s in timed.items()})
    )


if __name__ == "__main__":
    main()
