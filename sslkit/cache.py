"""Results cached on disk, keyed by a hash of the full configuration.

A rebuild of the book with unchanged code and settings loads every run instead of
training it again. Two kinds of entry share this module: trained networks
(:mod:`sslkit.runs`, kind ``"train"``) and their evaluations (kind ``"evaluate"``), so a
new metric or target never retrains a network.

Safety: an entry holds only tensors, numbers, strings, lists and dicts (DataFrames are
stored as columns) and is read with ``torch.load(weights_only=True)``, which refuses to
run code. Entries are written to a temporary file in the same folder, then renamed, so an
interrupted write never leaves a corrupt entry. The cache folder holds a marker file
(:data:`MARKER`); :func:`clean` refuses any folder without it.
"""

from __future__ import annotations

import ast
import hashlib
import json
import math
import os
import re
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from .runtime import user_cache_home

__all__ = [
    "cache_root",
    "config_hash",
    "code_fingerprint",
    "CACHE_VERSION",
    "MEASURE_CODE",
    "normalize_config",
    "cached",
    "cache_exists",
    "atomic_save",
    "safe_load",
    "to_payload",
    "from_payload",
    "clean",
    "CacheWarning",
    "MARKER",
]

# **Frozen**, both: edited by hand only as said here. Bump CACHE_VERSION when a change to sslkit
# makes old results wrong: every entry is then recomputed. MEASURE_CODE is the fingerprint of the
# measuring code (sslkit/measure/, see code_fingerprint) that CACHE_VERSION was last checked
# against: tests/test_cache.py fails when that code changes and this line does not. Then decide:
# a change of results bumps CACHE_VERSION, a refactor does not; either way, record the new
# fingerprint the test prints.
# 3: keys hold the data's fingerprint, evaluations the weights' hash; named random streams.
# 5f92b1b9…: one NCC (streaming.NCCScore) and one BatchNorm calibration serve analyze too, with
# identical results (a refactor, so no bump; tests/test_reverse.py pins the key and values).
# 7d51729d…: linear_probe, evaluate_features and make_targets cut into named steps; 153 cache
# keys and every value recomputed before and after were identical (a refactor, no bump).
# d8f26bd0…: NCC and CDNV in bounded blocks of classes (bit-identical up to 1024 classes and 2^24
# pairs), test-only labels refused by every ruler; results of valid input identical, no bump.
# 10ad6bc7…: the wing's face re-exports every public name, one import a line (no code).
# 99af800c…: the same code, fingerprinted without empty fields (one value on 3.11–3.13).
# a6d93d03…: two new modules (groupings: every grouping's NCC at once; geometry: linear
# predictability, CKA, between-class share, cluster balance); no existing result changes, no bump.
CACHE_VERSION = 3
MEASURE_CODE = "a6d93d03632d25ac"
# Written by sslkit in every cache root; `clean` deletes nothing in a folder without it.
MARKER = ".sslkit-cache"


class CacheWarning(UserWarning):
    """A cache entry could not be read or written; the result is computed (or returned) anyway."""


def cache_root() -> Path:
    """``$SSLKIT_CACHE``, else ``$XDG_CACHE_HOME/sslkit/runs`` (``~/.cache/sslkit/runs``)."""
    env = os.environ.get("SSLKIT_CACHE")
    if env:
        return Path(env).expanduser()
    return user_cache_home() / "sslkit" / "runs"


def normalize_config(config):
    """The configuration as plain JSON values: keys sorted, every number a float.

    ``{"inv_weight": 0}`` (from Python) and ``{"inv_weight": 0.0}`` (from the command line)
    normalise to the same value, so they share one cache entry.

    >>> normalize_config({"b": 1, "a": (0, True, "x")})
    {'a': [0.0, True, 'x'], 'b': 1.0}
    """
    if isinstance(config, dict):
        return {str(k): normalize_config(config[k]) for k in sorted(config, key=str)}
    if isinstance(config, (list, tuple)):
        return [normalize_config(v) for v in config]
    if isinstance(config, bool) or config is None or isinstance(config, str):
        return config
    if isinstance(config, (int, float, np.integer, np.floating)):
        x = float(config)
        if not math.isfinite(x):
            raise ValueError(f"configuration values must be finite numbers, got {config}")
        return x
    return str(config)


def code_fingerprint(folder: Path) -> str:
    """A hash of the code of every module in ``folder``: its syntax tree without docstrings, so
    comments, docstrings and formatting do not count, and any change to what runs does. The
    tree is written out without empty fields, so that Pythons whose trees gained fields (3.12's
    ``type_params``) give the same fingerprint."""
    digest = hashlib.sha256()
    for path in sorted(Path(folder).glob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                first = node.body[0] if node.body else None
                if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                    node.body = node.body[1:] or [ast.Pass()]
        digest.update(f"{path.name}\0{_tree_text(tree)}\0".encode())
    return digest.hexdigest()[:16]


def _tree_text(node) -> str:
    """A syntax tree as text: node names and their non-empty fields (no line numbers)."""
    if isinstance(node, ast.AST):
        fields = [f"{k}={_tree_text(v)}" for k, v in ast.iter_fields(node) if v not in (None, [])]
        return f"{type(node).__name__}({','.join(fields)})"
    if isinstance(node, list):
        return "[" + ",".join(_tree_text(v) for v in node) + "]"
    return repr(node)


def config_hash(config: dict) -> str:
    """A short, stable hash of a configuration (key order and int/float spelling ignored)."""
    text = json.dumps({"cache_version": CACHE_VERSION, **normalize_config(config)}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


# --------------------------------------------------------------------------- payloads


def to_payload(obj):
    """``obj`` with every DataFrame replaced by its columns, so ``weights_only`` loading can read
    it."""
    if isinstance(obj, pd.DataFrame):
        cols = {}
        for name in obj.columns:
            s = obj[name]
            if pd.api.types.is_bool_dtype(s) or pd.api.types.is_numeric_dtype(s):
                cols[str(name)] = torch.from_numpy(s.to_numpy().copy())
            else:
                cols[str(name)] = [None if pd.isna(v) else str(v) for v in s.tolist()]
        return {"__dataframe__": {"columns": [str(c) for c in obj.columns], "data": cols}}
    if isinstance(obj, dict):
        return {k: to_payload(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_payload(v) for v in obj]
    return obj


def from_payload(obj):
    """Inverse of :func:`to_payload`."""
    if isinstance(obj, dict):
        if set(obj) == {"__dataframe__"}:
            spec = obj["__dataframe__"]
            data = {
                c: (v.numpy() if isinstance(v, torch.Tensor) else v)
                for c, v in spec["data"].items()
            }
            return pd.DataFrame(data, columns=spec["columns"])
        return {k: from_payload(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [from_payload(v) for v in obj]
    return obj


def _tmp_prefix(path: Path) -> str:
    return f".{path.name}.{os.getpid()}."


def _umask() -> int:
    """The process's umask: read from ``/proc/self/status`` where Linux shows it (changing it
    to read it would race with other threads), else by setting it and putting it back."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_save(obj, path) -> None:
    """``torch.save`` to a fresh temporary file in the target folder, then rename.

    A crash never leaves half a file under ``path``, two writers never share a temporary
    name, and the temporary file is removed when the save fails.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=_tmp_prefix(path), suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # as open() would create it: a group can share a cache
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def safe_load(path, map_location="cpu"):
    """``torch.load(path, weights_only=True)`` with DataFrames restored; never runs code from the
    file."""
    return from_payload(torch.load(path, map_location=map_location, weights_only=True))


# The temporary files atomic_save makes for an entry: ``.<hash>.pt.<pid>.<random>.tmp``.
_OWN_TEMPORARY = re.compile(r"\.[0-9a-f]{16}\.pt\.(\d+)\.\w+\.tmp")


def _remove_stale_temporaries(folder: Path) -> None:
    """Delete this cache's own temporary files whose writer has died. Only names that
    :func:`atomic_save` makes, only plain files, and never in a folder reached through a link
    (which may be someone else's folder)."""
    if folder.is_symlink():
        return
    for tmp in folder.glob(".*.tmp"):
        own = _OWN_TEMPORARY.fullmatch(tmp.name)
        if not own or tmp.is_symlink() or not tmp.is_file():
            continue
        pid = int(own.group(1))
        if pid == os.getpid():
            continue
        try:
            os.kill(pid, 0)
        except ProcessLookupError:  # the process that wrote it is gone
            tmp.unlink(missing_ok=True)
        except PermissionError:
            pass


def cache_exists(kind: str, config: dict, root=None) -> bool:
    """Whether ``<root>/<kind>`` holds an entry for ``config`` (without reading it)."""
    root = Path(root) if root is not None else cache_root()
    return (root / kind / f"{config_hash(config)}.pt").is_file()


def cached(
    kind: str,
    config: dict,
    compute: Callable[[], dict],
    *,
    enabled: bool = True,
    root=None,
    validate: Callable[[dict], None] | None = None,
    write: bool = True,
) -> dict:
    """Return ``compute()``'s dict, from ``<root>/<kind>/<hash>.pt`` when present.

    ``compute`` must return a dict of tensors, numbers, strings, lists, dicts and
    DataFrames. The configuration is stored with it and checked on load, so a hash
    collision cannot return another run's result. An unreadable entry is recomputed with
    a :class:`CacheWarning` naming the file; so is an entry that ``validate(result)``
    rejects (it raises ``ValueError`` with the reason: wrong shapes, missing keys, NaN). A
    result that cannot be written (full or read-only disk) is returned with a
    :class:`CacheWarning`.
    """
    root = Path(root) if root is not None else cache_root()
    path = root / kind / f"{config_hash(config)}.pt"
    expected = normalize_config(config)
    if enabled and path.is_file():
        try:
            entry = safe_load(path)
            if entry.get("config") == expected:
                if validate is not None:
                    validate(entry["result"])
                return entry["result"]
            warnings.warn(
                f"cache entry {path} belongs to another configuration; recomputing",
                CacheWarning,
                stacklevel=2,
            )
        except Exception as e:  # truncated, unsafe or from an incompatible version
            warnings.warn(
                f"could not read cache entry {path} ({type(e).__name__}: {e}); recomputing",
                CacheWarning,
                stacklevel=2,
            )
    result = compute()
    if enabled and write:  # write=False: read a stored entry, never store one (ranks ≠ 0)
        try:
            _claim(root)
            if path.parent.is_dir():
                _remove_stale_temporaries(path.parent)
            atomic_save({"config": expected, "result": to_payload(result)}, path)
        except (OSError, RuntimeError) as e:
            warnings.warn(f"could not cache this run: {e}", CacheWarning, stacklevel=2)
    return result


# The kinds of entry, each in a subfolder of the cache root; nothing else is ever deleted.
KINDS = ("train", "evaluate")


def _claim(root: Path) -> None:
    """Write the marker into ``root`` if it is new or empty (or already marked): a folder that
    holds other things, such as ``~/.cache``, is never marked, so :func:`clean` refuses it."""
    if (root / MARKER).is_file():
        return
    root.mkdir(parents=True, exist_ok=True)
    if not any(root.iterdir()):
        (root / MARKER).touch()
    else:
        warnings.warn(
            f"{root} already holds files that sslkit did not write, so it is not marked as "
            "sslkit's cache and `clean-cache` will refuse it; point SSLKIT_CACHE at a folder "
            "of its own",
            CacheWarning,
            stacklevel=3,
        )


def clean(root=None) -> int:
    """Delete sslkit's cache entries (and stale temporary files) under ``root``; return how many.

    Only files ``<root>/<kind>/*.pt`` (and ``.*.tmp``) of the kinds :data:`KINDS` are
    deleted, never through a symbolic link, and only when ``root`` holds the :data:`MARKER`
    that sslkit writes into a new or empty folder: a folder such as ``~/.cache`` is refused.
    A kind's folder left empty is removed; no other folder is.
    """
    root = Path(root) if root is not None else cache_root()
    if not root.exists():
        return 0
    if not (root / MARKER).is_file():
        raise ValueError(
            f"{root} does not look like an sslkit cache (no {MARKER} file in it); nothing "
            "deleted. Point SSLKIT_CACHE at the folder sslkit created, or delete it by hand."
        )
    removed = 0
    for name in KINDS:
        kind = root / name
        if kind.is_symlink() or not kind.is_dir():
            continue
        for f in list(kind.glob("*.pt")) + list(kind.glob(".*.tmp")):
            if f.is_symlink() or not f.is_file():
                continue
            f.unlink()
            removed += 1
        if not any(kind.iterdir()):
            kind.rmdir()
    return removed
