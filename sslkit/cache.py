"""Results cached on disk, keyed by a hash of the full configuration.

A rebuild of the book with unchanged code and settings loads every run instead of
training it again. Entries are written atomically (temporary file, then rename), so an
interrupted run never leaves a corrupt entry behind.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Callable

import torch

from .train import atomic_save

__all__ = ["cache_root", "config_hash", "cached"]

# Bump when a change to sslkit makes old results wrong: every entry is then recomputed.
CACHE_VERSION = 1


def cache_root() -> Path:
    """``$SSLKIT_CACHE``, else ``$XDG_CACHE_HOME/sslkit/runs`` (``~/.cache/sslkit/runs``)."""
    env = os.environ.get("SSLKIT_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "sslkit" / "runs"


def config_hash(config: dict) -> str:
    """A short, stable hash of a JSON-serialisable configuration (key order ignored)."""
    text = json.dumps({"cache_version": CACHE_VERSION, **config}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def cached(kind: str, config: dict, compute: Callable[[], dict], *, enabled: bool = True,
           root=None) -> dict:
    """Return ``compute()``'s dict, from ``<root>/<kind>/<hash>.pt`` when present.

    ``compute`` must return a dict that ``torch.save`` can store (tensors, DataFrames,
    plain values). The configuration is stored with it and checked on load, so a hash
    collision cannot return another run's result. An unreadable entry is recomputed.
    """
    path = Path(root or cache_root()) / kind / f"{config_hash(config)}.pt"
    expected = json.loads(json.dumps(config, sort_keys=True, default=str))
    if enabled and path.is_file():
        try:
            entry = torch.load(path, map_location="cpu", weights_only=False)
            if entry.get("config") == expected:
                return entry["result"]
        except Exception:  # truncated or from an incompatible version: recompute
            pass
    result = compute()
    if enabled:
        atomic_save({"config": expected, "result": result}, path)
    return result
