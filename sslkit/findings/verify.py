"""Verified, not trusted: re-train runs of the evidence store from scratch and compare every
stored value that can be recomputed.

``make verify-evidence`` (called by CI) runs :func:`verify` and fails on any difference beyond
:data:`TOLERANCE`, naming the run and the metric. Two checks:

- **early**: VICReg and the regularization-only configuration (the two runs the paper's first
  claims rest on), seed 0, trained up to the store's first snapshot after epoch 0 on the full
  run's schedule (:func:`sslkit.runs.train` with ``stop_after``);
- **whole**: one run trained to its last epoch, every row the store holds of it compared
  (evaluation subsets ``test@k`` and the loss terms of every epoch included). The run rotates
  with the commit (:func:`rotating`: a hash of ``HEAD`` picks it among the store's runs), so
  that over many CI runs every configuration and seed is re-trained.

The store's tables are also checked against the SHA-256 of its manifest whenever they are read
(:func:`sslkit.experiment.store.check_tables`): a hand edit fails before any re-training.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from pathlib import Path

import pandas as pd

from ..experiment import store
from ..experiment.configs import CONFIGS, trained
from ..experiment.runs import train
from ..profiles import Profile, get_profile
from ..runtime import clear_caches, git
from . import images

__all__ = [
    "SAMPLE",
    "TOLERANCE",
    "UNTRAINED_TOLERANCE",
    "MEAN_TOLERANCE",
    "RESULT",
    "recompute",
    "rotating",
    "recompute_image_run",
    "LOSS_TOLERANCE",
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
# The loss terms of the whole run, relative to their size (|recomputed - stored| / max(1,
# |stored|)): the same kernel noise as the accuracies, in the losses' own units.
LOSS_TOLERANCE = 0.04
# Where `make verify-evidence` leaves its result, for the book to state under its scoreboards:
# the build folder of the repository sslkit is installed from (editable, as `make` installs it).
RESULT = Path(__file__).resolve().parents[2] / "_build" / "verify-evidence.json"


class EvidenceMismatch(AssertionError):
    """A stored evaluation that re-training does not reproduce."""


def recompute(
    config: str, seed: int, profile: Profile, stop_after: int, whole: bool = False
) -> pd.DataFrame:
    """The stored evaluations of one run at epochs ``0..stop_after``, recomputed from a run
    re-trained from scratch, with an empty evaluate cache of its own (so that nothing is read
    back from the build that wrote the store): the store's rows with a ``recomputed``
    column. ``whole``: also the evaluation subsets and, as rows of target ``"loss"``, the
    loss terms of every epoch."""
    with tempfile.TemporaryDirectory() as cache, _cache_at(cache):
        return _recompute(config, seed, profile, stop_after, whole)


def rotating(profile: Profile, commit: str | None = None, with_images: bool = False):
    """The run whose whole training this commit verifies: one of the store's runs, picked by
    the SHA-256 of the commit (``HEAD`` of the checkout sslkit runs from by default).

    ``with_images=True``: the pick is among the reference store's runs *and* the per-image
    evidence's (:mod:`sslkit.findings.images`), and a per-image run comes back as
    ``("images", slug)``; one whole run per commit keeps verification within its budget."""
    runs = sorted(store.manifest(profile).get("runs", {}))
    if with_images:
        path = images.folder() / "manifest.json"
        if path.is_file():
            runs += [
                f"images/{slug}" for slug in sorted(json.loads(path.read_text()).get("runs", {}))
            ]
    if not runs:
        raise store.NotStored(f"the {profile.name} evidence store holds no run to verify")
    commit = commit or git("rev-parse", "HEAD") or "no commit"
    pick = runs[int(hashlib.sha256(commit.encode()).hexdigest(), 16) % len(runs)]
    if pick.startswith("images/"):
        return "images", pick.split("/", 1)[1]
    config, _, seed = pick.rpartition("/")
    return config, int(seed)


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


def recompute_image_run(slug: str, root: Path | None = None) -> tuple[dict, pd.DataFrame]:
    """Re-train the per-image run ``slug`` (:mod:`sslkit.findings.images`) from scratch, with an
    empty cache of its own, and measure it again: ``(arrays, values)`` as
    :func:`~sslkit.findings.images.measure_run` gives them."""
    ev = images.ImageEvidence(root)
    entry = ev.manifest["runs"][slug]
    method, loss = CONFIGS[entry["config"]]
    with tempfile.TemporaryDirectory() as cache, _cache_at(cache):
        prof = images._profile(entry["long_tailed"])
        run = train(method, prof, seed=entry["seed"], loss=loss, progress=False)
        eval_train, test = images._eval_sets()
        other = images._features(images._untrained(entry["seed"] + 100), eval_train, test)
        arrays, values = images.measure_run(run, entry["config"], ev.manifest["matched"], other)
    frame = pd.DataFrame(values, columns=["epoch", "stage", "target", "metric", "dim", "value"])
    return arrays, frame


def _recompute(config, seed, profile, stop_after, whole) -> pd.DataFrame:
    stored = store.evaluations(profile)
    rows = stored[(stored.config == config) & (stored.seed == seed) & (stored.epoch <= stop_after)]
    subsets = sorted({s for s in rows.split if "@" in s})
    if not whole:  # the early check: "test" only (its subsets are the same predictions split)
        rows, subsets = rows[~rows.split.str.contains("@")], []
    method, loss = CONFIGS[config]
    run = train(method, profile, seed=seed, loss=loss, stop_after=stop_after, progress=False)
    recomputed = []
    asked = rows[["epoch", "target", "metric", "dim"]].drop_duplicates()
    for epoch, target, metric, dim in asked.itertuples(index=False):
        if target == "sample":
            df = run.evaluate(targets=(), metrics=(), epochs=[epoch], sample_level=True)
        else:
            df = run.evaluate(targets=(target,), metrics=(metric,), epochs=[epoch],
                              dim=dim or None, subsets=len(subsets))  # fmt: skip
        recomputed.append(df.assign(dim=dim))
    fresh = pd.concat(recomputed, ignore_index=True).rename(columns={"value": "recomputed"})
    keys = ["epoch", "stage", "target", "metric", "split", "dim"]
    out = rows.merge(fresh[[*keys, "recomputed"]].drop_duplicates(keys), on=keys, how="left")
    if whole:
        out = pd.concat([out, _losses(run, profile, config, seed)], ignore_index=True)
    out["difference"] = (out.recomputed - out.value).abs()
    return out


def _losses(run, profile: Profile, config: str, seed: int) -> pd.DataFrame:
    """The stored loss terms of every epoch beside the re-trained run's, as rows of target
    ``"loss"`` (their difference is compared relative to their size)."""
    losses = store.StoredRun(profile, config, seed).history
    fresh = run.losses().stack().rename("recomputed").reset_index()
    out = losses.merge(fresh, on=["epoch", "metric"], how="left")
    return out.assign(stage="", target="loss", split="train", dim="")


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
    loss = table.target == "loss"
    scale = table.value.abs().clip(lower=1.0).where(loss, 1.0)  # losses: relative to their size
    limit = limit.where(~loss, LOSS_TOLERANCE)
    bad = table[table.recomputed.isna() | (table.difference / scale > limit)]
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
    trained_values = table[(table.epoch > 0) & (table.target != "loss")]
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
    whole: tuple[str, int] | None | bool = True,
):
    """Re-train ``sample`` up to the first stored snapshot after epoch 0, and the ``whole`` run
    (``True``: :func:`rotating`'s; ``False``: none) to its last epoch, and compare; returns the
    comparison table, or raises :class:`EvidenceMismatch`. With ``result``, also write a
    summary there (which runs, how many values, the largest difference) for the book to
    state."""
    prof = get_profile(profile)
    if result is not None:  # a failed verification must not leave an old success behind
        Path(result).unlink(missing_ok=True)
    first, last = next(e for e in prof.eval_epochs() if e > 0), prof.eval_epochs()[-1]
    whole = (
        rotating(prof, with_images=prof.name == "reference") if whole is True else (whole or None)
    )
    image_run = None
    if whole and whole[0] == "images":  # this commit's whole run is one of the per-image runs
        image_run, whole = whole[1], None
    early = [(c, s) for c, s in sample if (c, s) != whole]  # a whole run covers its early part
    checks = [(c, s, first, False) for c, s in early] + ([(*whole, last, True)] if whole else [])
    for config, seed, _, _ in checks:
        trained(config, prof, [seed], source="store")  # the store holds it, or a clear error
    tables = []
    for config, seed, upto, all_rows in checks:
        t = recompute(config, seed, prof, upto, whole=all_rows).assign(check=f"{config}/{seed}")
        log(f"{config}, seed {seed}: {len(t)} values at epochs 0–{upto}"
            f"{' (every stored row, losses too)' if all_rows else ''}, largest difference "
            f"{t[t.target != 'loss'].difference.max():.2g}")  # fmt: skip
        tables.append(t)
    table = pd.concat(tables, ignore_index=True)
    compare(table, tolerance)
    largest = float(table[table.target != "loss"].difference.max())
    values = len(table)
    if image_run is not None:
        arrays, fresh = recompute_image_run(image_run)
        found = images.compare_run(image_run, arrays, fresh, tolerance=tolerance)
        log(f"per-image evidence, {image_run}: {found['values']} values and "
            f"{found['arrays']:,} per-image results re-trained and compared, largest "
            f"difference {found['largest']:.2g}")  # fmt: skip
        values += found["values"] + found["arrays"]
        largest = max(largest, found["largest"])
    if result is not None:
        Path(result).parent.mkdir(parents=True, exist_ok=True)
        Path(result).write_text(json.dumps(dict(
            profile=prof.name, runs=len(checks) + (image_run is not None), values=values,
            largest=largest, tolerance=tolerance, early=[f"{c}/{s}" for c, s in early],
            whole=(f"{whole[0]}/{whole[1]}" if whole else f"per-image {image_run}"),
        )))  # fmt: skip
    return table


def last_result(path: Path = RESULT) -> dict:
    """What the last ``make verify-evidence`` of this build found (``{}`` if none ran)."""
    path = Path(path)
    return json.loads(path.read_text()) if path.is_file() else {}
