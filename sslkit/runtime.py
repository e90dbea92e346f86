"""Process-wide state of sslkit: progress bars, mixed precision, and the in-memory
caches of higher modules.

Kept apart from the training loop so that the cache, the CLI and the chapters can use
them without importing :mod:`sslkit.train`. Random streams are :mod:`sslkit.seeds`' job.

:func:`provenance` says where and with what a stored result was computed.

In-memory caches (what :func:`clear_caches` empties): loaded datasets and extracted features
(:mod:`sslkit.runs`), measured findings (:mod:`sslkit.paper`) and counted operations
(:mod:`sslkit.plan`). Each is registered here by the module that owns it with
:func:`register_cache`, so one call forgets them all, e.g. after the data on disk changed.
The disk caches (:mod:`sslkit.cache`) are not touched.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

import torch

__all__ = [
    "provenance",
    "git",
    "user_cache_home",
    "progress_enabled",
    "autocast_dtype",
    "register_cache",
    "clear_caches",
]

_CACHES: list = []


def user_cache_home() -> Path:
    """The user's cache folder: ``$XDG_CACHE_HOME``, else ``~/.cache`` (the XDG base
    directory rule); sslkit keeps its data and results under ``sslkit/`` in it."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")


def progress_enabled() -> bool:
    """Progress bars unless ``TQDM_DISABLE=1`` or stderr is not interactive (a notebook counts as
    interactive)."""
    if os.environ.get("TQDM_DISABLE", "") not in ("", "0"):
        return False
    return "ipykernel" in sys.modules or sys.stderr.isatty()


def autocast_dtype(device) -> torch.dtype | None:
    """The mixed-precision type for ``device``: bfloat16 on a GPU that computes it natively
    (compute capability 8.0 and later: A100, H100, RTX 30xx…), else ``None`` (plain
    float32). A T4 only emulates bfloat16, slowly, and float16 would need loss scaling."""
    device = torch.device(device)
    if device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported(including_emulation=False) else None


def register_cache(cache):
    """Register an in-memory cache (a ``functools.lru_cache`` function or anything with
    ``clear()``) so that :func:`clear_caches` empties it; returns ``cache``."""
    if not (hasattr(cache, "cache_clear") or hasattr(cache, "clear")):
        raise TypeError(f"{cache!r} has neither cache_clear() nor clear()")
    _CACHES.append(cache)
    return cache


def clear_caches() -> None:
    """Forget every in-memory result of this process (see the module doc); disk caches stay."""
    for cache in _CACHES:
        (cache.cache_clear if hasattr(cache, "cache_clear") else cache.clear)()


def git(*args) -> str:
    """What ``git ARGS`` prints in the checkout sslkit runs from ("" without git or a checkout)."""
    try:
        out = subprocess.run(["git", *args], cwd=Path(__file__).resolve().parent,
                             capture_output=True, text=True, timeout=10)  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return ""
    return out.stdout.strip() if out.returncode == 0 else ""


def provenance() -> dict:
    """Where and with what the runs were computed: sslkit commit (``-dirty`` when the package's
    code had uncommitted changes; the store's own tables do not count), torch, device,
    threads."""
    commit = git("rev-parse", "--short", "HEAD")
    if commit and git("status", "--porcelain", "--", ".", ":(exclude)evidence"):
        commit += "-dirty"
    return dict(
        sslkit_commit=commit or "unknown",
        torch=torch.__version__,
        device=torch.cuda.get_device_name()
        if torch.cuda.is_available()
        else platform.processor() or platform.machine(),
        threads=torch.get_num_threads(),
    )
