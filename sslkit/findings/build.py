"""The evidence build: train every configuration the findings use, over the profile's seeds,
evaluate each run on everything the findings read (:func:`evaluation_plan`), and add its rows
to the store (:mod:`sslkit.store`) as soon as it is measured.

``python -m sslkit evidence build --profile reference`` runs :func:`build`. A build stopped
at any point resumes where it stopped: a run is skipped when the store already holds it
under the same train cache key (same settings, code version of the key and data).
"""

from __future__ import annotations

import datetime
import time
from pathlib import Path

import pandas as pd

from ..cache import config_hash
from ..experiment import store
from ..experiment.configs import CONFIGS, trained
from ..experiment.cost import device_kind, estimate_seconds, fmt_duration, run_cost
from ..experiment.plan import flops_per_image
from ..experiment.runs import SAMPLE_METRICS, datasets_for, train_config
from ..learn.methods import canonical_name
from ..measure.evaluation import EVAL_SUBSETS, SHOTS
from ..measure.targets import draws
from ..profiles import Profile, get_profile
from ..runtime import provenance
from .floors import compute_pixel_floor

__all__ = ["evaluation_plan", "SAMPLE_CURVES", "ORDER", "evaluate_run", "plan_version", "build"]


def evaluation_plan() -> tuple:
    """What every stored run is evaluated on, as ``(targets, metrics, epochs, dim, splits)``.

    ``"all"``: every snapshot (the learning curves); ``"ends"``: the untrained network and the
    last epoch (what a gain over the untrained network reads). Random controls are stored draw
    by draw (test split), so that their mean is the control and their spread the null
    distribution. Every test accuracy is also scored on the :data:`EVAL_SUBSETS` evaluation
    subsets of the test images (splits ``"test@k"``), so that a finding's interval can cover
    which test images were drawn.
    """
    controls = (*draws("coarse_random"), *draws("random_function"), *draws("untrained_kmeans"))
    return (
        (("fine",), ("ncc", "whitened_ncc", "probe"), "all", None, ("train", "test")),
        (("coarse",), ("ncc", "whitened_ncc", "probe"), "ends", None, ("train", "test")),
        (("fine",), ("cdnv", "knn", "erank"), "ends", None, ("train", "test")),
        (("fine",), tuple(f"fewshot_{s}" for s in SHOTS), "ends", None, ("test",)),
        (controls, ("ncc",), "ends", None, ("test",)),
        (("fine", "coarse", *draws("coarse_random")), ("ncc",), "ends", "pca", ("test",)),
    )


# Sample-level NCC (a few hundred images, eight views each) at every snapshot for the
# configurations whose learning curve a finding reads, at the ends for the others.
SAMPLE_CURVES = ("VICReg",)
# The order runs are built in: the abstract's configurations first, so that a build stopped
# early has decided the primary claims.
ORDER = (
    "VICReg",
    "regularization only",
    "SimCLR",
    "Barlow Twins",
    "ratio 5",
    "ratio 0.2",
    "supervised",
    "invariance only",
    "ratio 0.5",
    "ratio 2",
    "Barlow invariance only",
    "Barlow redundancy only",
    "rotation",
    "jigsaw",
)


def evaluate_run(run, config: str) -> pd.DataFrame:
    """Every value of :func:`evaluation_plan` for one trained run of ``config``, plus its
    sample-level NCC: one row per value, columns ``epoch, stage, target, metric, split, dim,
    value``."""
    frames = []
    for targets, metrics, epochs, dim, splits in evaluation_plan():
        which = run.epochs if epochs == "all" else [0, run.epochs[-1]]
        subsets = EVAL_SUBSETS if "test" in splits else 0
        df = run.evaluate(targets=targets, metrics=metrics, epochs=which, dim=dim, subsets=subsets)
        keep = df.split.isin(splits) | df.split.str.startswith("test@")
        frames.append(df[keep].assign(dim="" if dim is None else dim))
    which = run.epochs if config in SAMPLE_CURVES else [0, run.epochs[-1]]
    sample = run.evaluate(targets=(), metrics=(), epochs=which, sample_level=True)
    frames.append(sample.assign(dim=""))
    return pd.concat(frames, ignore_index=True)[
        ["epoch", "stage", "target", "metric", "split", "dim", "value"]
    ]


def plan_version() -> str:
    """A hash of what every stored run is evaluated on (:func:`evaluation_plan`, the
    sample-level metrics and curves, the evaluation subsets). A run stored under another
    version is evaluated again by :func:`build`, from the train cache when it holds the
    network (no retraining)."""
    return config_hash(
        dict(
            plan=repr(evaluation_plan()),
            sample=SAMPLE_METRICS,
            curves=SAMPLE_CURVES,
            subsets=EVAL_SUBSETS,
        )
    )


def _key(config: str, prof: Profile, seed: int, data: str) -> str:
    method, loss = CONFIGS[config]
    return config_hash(train_config(canonical_name(method), prof, seed, loss, data))


def _todo(prof: Profile, configs, seeds, current: dict, data: str, version: str) -> list:
    """The (configuration, seed) pairs to build: a stored run counts only under the train cache
    key it would have now (same settings, configuration, code version of the key and data) and
    the current evaluation plan; any other is built again (trained only where the train cache
    lacks it)."""
    return [
        (c, s)
        for c in configs
        for s in seeds
        if current.get(f"{c}/{s}", {}).get("key") != _key(c, prof, s, data)
        or current.get(f"{c}/{s}", {}).get("plan") != version
    ]


def _estimates(prof: Profile, todo, current: dict, data: str, kind: str) -> dict:
    """Estimated seconds of each run to build on ``kind``: its training (:mod:`sslkit.cost`),
    or only its evaluation where the network is stored under the same key (train cache)."""
    training = {
        c: estimate_seconds(run_cost(CONFIGS[c][0], prof, flops_per_image(CONFIGS[c][0], prof)),
                            kind)
        for c in {c for c, _ in todo}
    }  # fmt: skip
    return {
        (c, s): current[f"{c}/{s}"].get("evaluate_seconds", 30)
        if current.get(f"{c}/{s}", {}).get("key") == _key(c, prof, s, data)
        else training[c]
        for c, s in todo
    }


def _floor_entries(prof: Profile, held: dict, same: bool, root: Path | None) -> dict:
    """What the manifest states besides the runs: what it is, and the floor on raw pixels and on
    each evaluation subset (the findings' second floor), kept from the store where it holds
    them for these settings, else measured (and written at once to a store that has runs)."""
    stored = dict(what=f"the evidence store of the {prof.name} profile")
    if same and "pixel_floor_subsets" in held:
        stored.update(
            pixel_floor=held["pixel_floor"], pixel_floor_subsets=held["pixel_floor_subsets"]
        )
    else:
        floors, parts = compute_pixel_floor(prof, subsets=EVAL_SUBSETS)
        stored.update(pixel_floor=floors, pixel_floor_subsets=parts)
        if same and held.get("runs"):
            store.update_manifest(prof, stored, root)
    return stored


def _build_run(prof: Profile, config: str, seed: int, version: str, stored: dict, root) -> None:
    """Train (or load) one run, evaluate it on :func:`evaluation_plan` (of ``version``) and add
    it to the store with its provenance."""
    (run,) = trained(config, prof, [seed], source="live")
    trained_at = time.perf_counter()
    rows = evaluate_run(run, config)
    losses = run.history[run.history.phase == "epoch"][["epoch", "metric", "value"]]
    entry = dict(
        method=run.method,
        loss=run.loss,
        key=run.key,
        plan=version,
        out_dim=run.backbone.out_dim,
        stages=list(run.stage_names),
        seconds=round(run.seconds, 1),
        evaluate_seconds=round(time.perf_counter() - trained_at, 1),
        date=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        **provenance(),
    )
    store.write_run(prof, config, seed, rows, losses, entry, stored, root)


def build(
    profile: str | Profile = "reference",
    configs=None,
    seeds=None,
    root: Path | None = None,
    log=print,
) -> dict:
    """Train, evaluate and store every (configuration, seed) the store lacks; returns the
    manifest. ``configs`` default to :data:`ORDER`, ``seeds`` to the profile's."""
    prof = get_profile(profile)
    configs = list(configs or ORDER)
    unknown = [c for c in configs if c not in CONFIGS]
    if unknown:
        raise ValueError(f"unknown configurations {unknown}; known: {', '.join(CONFIGS)}")
    seeds = tuple(prof.seeds if seeds is None else seeds)
    held = store.manifest(prof, root)
    same = held.get("profile") == store.profile_settings(prof)
    current = held.get("runs", {}) if same else {}
    rows = store.with_rows(prof, root) if current else set()
    current = {run: entry for run, entry in current.items() if run in rows}
    data = datasets_for(prof)[0].fingerprint()
    version = plan_version()
    todo = _todo(prof, configs, seeds, current, data, version)
    kind = device_kind()
    estimate = _estimates(prof, todo, current, data, kind)
    left = sum(estimate.values())
    stored = _floor_entries(prof, held, same, root)
    log(f"{len(todo)} runs to build on {kind} (about {fmt_duration(left)} by `sslkit plan`); "
        f"{len(current)} already stored")  # fmt: skip
    for i, (config, seed) in enumerate(todo, 1):
        started = time.perf_counter()
        _build_run(prof, config, seed, version, stored, root)
        left -= estimate[config, seed]
        log(f"[{i}/{len(todo)}] {config}, seed {seed}: {time.perf_counter() - started:.0f} s "
            f"(about {fmt_duration(max(left, 0))} left)")  # fmt: skip
    return store.manifest(prof, root)
