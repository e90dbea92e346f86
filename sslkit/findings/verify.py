"""Verified, not trusted: re-train a fixed sample of the evidence store's runs from scratch, for
their first epochs, and compare every stored evaluation that can be recomputed.

``make verify-evidence`` (called by CI) runs :func:`verify` and fails on any difference beyond
:data:`TOLERANCE`, naming the run and the metric. The sample is VICReg and the
regularization-only configuration (the two runs the paper's first claims rest on), seed 0,
trained up to the store's first snapshot after epoch 0 on the full run's schedule
(:func:`sslkit.runs.train` with ``stop_after``).
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path

import pandas as pd

from ..experiment import store
from ..experiment.configs import CONFIGS, trained
from ..experiment.runs import train
from ..profiles import Profile, get_profile
from ..runtime import clear_caches

__all__ = [
    "SAMPLE",
    "TOLERANCE",
    "UNTRAINED_TOLERANCE",
    "MEAN_TOLERANCE",
    "RESULT",
    "recompute",
    "compare",
    "verify",
    "last_result",
    "EvidenceMismatch",
]

SAMPLE = (("VICReg", 0), ("regularization only", 0))
# Largest differences accepted between a stored and a recomputed value, in the values' own
# units (accuracies in [0, 1]). CPU kernels differ across instruction sets and thread counts in
# the last bits of a float. Measured on the machine that built the store, re-training VICReg
# seed 0 with 1 thread instead of 2 (the closest stand-in for another CPU we had): the untrained
# network's 165 values differed by at most 5e-5, and after 2 epochs of training (330 values in
# all) by at most 0.017 (NCC at stage 3), since training amplifies the last bits. The
# tolerances are about 2.5x and 20x those: a difference beyond them is a change of the code or
# the data, not of the kernels.
TOLERANCE = 0.04  # after training
UNTRAINED_TOLERANCE = 1e-3  # epoch 0: the same weights, evaluated again
# Kernel noise goes both ways and averages out; a change of the code shifts values one way. The
# mean signed difference of the trained values (21 of them there: -0.0001) must stay within
# this: a systematic shift of one point of accuracy fails even where each value is within
# TOLERANCE.
MEAN_TOLERANCE = 0.01
# Where `make verify-evidence` leaves its result, for the book to state under its scoreboards:
# the build folder of the repository sslkit is installed from (editable, as `make` installs it).
RESULT = Path(__file__).resolve().parents[2] / "_build" / "verify-evidence.json"


class EvidenceMismatch(AssertionError):
    """A stored evaluation that re-training does not reproduce."""


def recompute(config: str, seed: int, profile: Profile, stop_after: int) -> pd.DataFrame:
    """The stored evaluations of one run at epochs ``0..stop_after``, recomputed from a run
    re-trained from scratch, with an empty evaluate cache of its own (so that nothing is read
    back from the build that wrote the store): the store's rows with a ``recomputed``
    column."""
    with tempfile.TemporaryDirectory() as cache, _cache_at(cache):
        return _recompute(config, seed, profile, stop_after)


@contextlib.contextmanager
def _cache_at(folder: str):
    """sslkit's caches (disk and memory) in ``folder`` for the duration, then as they were."""
    before = os.environ.get("SSLKIT_CACHE")
    os.environ["SSLKIT_CACHE"] = folder
    clear_caches()
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("SSLKIT_CACHE", None)
        else:
            os.environ["SSLKIT_CACHE"] = before
        clear_caches()


def _recompute(config: str, seed: int, profile: Profile, stop_after: int) -> pd.DataFrame:
    stored = store.evaluations(profile)
    rows = stored[(stored.config == config) & (stored.seed == seed) & (stored.epoch <= stop_after)]
    # evaluation subsets ("test@k") are the test images' own predictions in five parts: their
    # mean is the "test" value compared here (the store's tests check that it is)
    rows = rows[~rows.split.str.contains("@")]
    method, loss = CONFIGS[config]
    run = train(method, profile, seed=seed, loss=loss, stop_after=stop_after, progress=False)
    recomputed = []
    asked = rows[["epoch", "target", "metric", "dim"]].drop_duplicates()
    for epoch, target, metric, dim in asked.itertuples(index=False):
        if target == "sample":
            df = run.evaluate(targets=(), metrics=(), epochs=[epoch], sample_level=True)
        else:
            df = run.evaluate(targets=(target,), metrics=(metric,), epochs=[epoch], dim=dim or None)
        recomputed.append(df.assign(dim=dim))
    fresh = pd.concat(recomputed, ignore_index=True).rename(columns={"value": "recomputed"})
    keys = ["epoch", "stage", "target", "metric", "split", "dim"]
    out = rows.merge(fresh[[*keys, "recomputed"]], on=keys, how="left")
    out["difference"] = (out.recomputed - out.value).abs()
    return out


def compare(
    table: pd.DataFrame,
    tolerance: float = TOLERANCE,
    untrained: float = UNTRAINED_TOLERANCE,
    mean: float = MEAN_TOLERANCE,
) -> None:
    """Raise :class:`EvidenceMismatch` naming every run and metric whose recomputed value is
    missing or differs from the stored one by more than ``tolerance`` (``untrained`` at
    epoch 0), or when the trained values are shifted one way on average by more than
    ``mean``."""
    limit = table.epoch.map(lambda e: untrained if e == 0 else tolerance)
    bad = table[table.recomputed.isna() | (table.difference > limit)]
    if len(bad):
        lines = [
            f"{r.config}, seed {r.seed}, epoch {r.epoch}, {r.stage}, {r.target}, {r.metric} "
            f"({r.split}{', dim ' + r.dim if r.dim else ''}): stored {r.value:.4f}, "
            f"recomputed {r.recomputed:.4f}"
            for r in bad.head(10).itertuples()
        ]
        raise EvidenceMismatch(
            f"{len(bad)} stored values differ from a fresh run by more than {tolerance} "
            f"({untrained} untrained):\n  "
            + "\n  ".join(lines)
            + "\nThe code or the data changed since the store was built: rebuild it "
            "(`python -m sslkit evidence build --profile reference`) or find the change."
        )
    trained_values = table[table.epoch > 0]
    shift = float((trained_values.recomputed - trained_values.value).mean())
    if abs(shift) > mean:
        raise EvidenceMismatch(
            f"the recomputed values after training are shifted by {shift:+.4f} on average "
            f"(tolerance {mean}): a systematic change, not kernel noise. Rebuild the store "
            "(`python -m sslkit evidence build --profile reference`) or find the change."
        )


def verify(
    profile: str | Profile = "reference",
    sample=SAMPLE,
    tolerance=TOLERANCE,
    log=print,
    result: Path | None = None,
):
    """Re-train ``sample`` up to the first stored snapshot after epoch 0 and compare; returns
    the comparison table, or raises :class:`EvidenceMismatch`. With ``result``, also write a
    summary there (runs, values, largest difference) for the book to state."""
    prof = get_profile(profile)
    if result is not None:  # a failed verification must not leave an old success behind
        Path(result).unlink(missing_ok=True)
    first = next(e for e in prof.eval_epochs() if e > 0)
    for config, seed in sample:
        trained(config, prof, [seed], source="store")  # the store holds it, or a clear error
    tables = []
    for config, seed in sample:
        t = recompute(config, seed, prof, first)
        log(f"{config}, seed {seed}: {len(t)} values at epochs 0–{first}, largest difference "
            f"{t.difference.max():.2g}")  # fmt: skip
        tables.append(t)
    table = pd.concat(tables, ignore_index=True)
    compare(table, tolerance)
    if result is not None:
        Path(result).parent.mkdir(parents=True, exist_ok=True)
        Path(result).write_text(json.dumps(dict(
            profile=prof.name, runs=len(sample), values=len(table),
            largest=float(table.difference.max()), tolerance=tolerance,
        )))  # fmt: skip
    return table


def last_result(path: Path = RESULT) -> dict:
    """What the last ``make verify-evidence`` of this build found (``{}`` if none ran)."""
    path = Path(path)
    return json.loads(path.read_text()) if path.is_file() else {}
