"""How big must the experiment be? The scale study that chooses the ``reference`` profile.

An effect measured on a network that has not learned says nothing about what SSL learns. The
study asks, for each **design** (the ``cpu`` profile with more training images, more epochs
or wider channels) and each method, over several seeds, whether training ends above its two
floors on each of the three rulers:

- rulers (:data:`~sslkit.findings.floors.RULERS`): test NCC, whitened NCC
  (:func:`sslkit.metrics.whitened_ncc_accuracy`) and the linear probe, on the fine classes at
  the last stage;
- floors: the same network untrained (epoch 0 of the run, BatchNorm calibrated on the data)
  and raw pixels of the same evaluation images
  (:func:`~sslkit.findings.floors.compute_pixel_floor`);
- and, for VICReg, the variance hinge and the embedding spread at the end (a hinge far from 0
  means training stopped early in VICReg's own terms), and the seconds each run took here.

Runs are trained and evaluated through :func:`sslkit.runs.train` and
:meth:`~sslkit.runs.Run.evaluate`, the book's own path and caches. One tidy table
(:data:`TABLE`) gains the rows of each run as soon as it is measured, so a study stopped at
any point resumes where it stopped: ``python -m sslkit evidence scale``.
"""

from __future__ import annotations

import datetime
import json
import math
import os
import time
from pathlib import Path

import pandas as pd

from ..cache import config_hash
from ..experiment.analysis import t_interval
from ..experiment.runs import datasets_for, train, train_config
from ..profiles import Profile, get_profile
from ..runtime import provenance
from .floors import RULERS, compute_pixel_floor

__all__ = [
    "DESIGNS",
    "STUDY_METHODS",
    "TABLE",
    "design_profile",
    "measure",
    "study",
    "load_study",
    "load_pixel_floor",
    "study_margins",
    "choose_reference",
    "JOINT_EMBEDDING",
]

# Changes of the cpu profile, from the book's own scale up to about 4 minutes a run on 2 cores.
# Each doubles one thing at a time, then the last two together: images, epochs, widths.
DESIGNS: dict[str, dict] = {
    "book": dict(train_size=7_000, epochs=5, widths=(8, 16, 32, 64)),
    "4x epochs": dict(train_size=7_000, epochs=20, widths=(8, 16, 32, 64)),
    "2x images, 2x epochs, 2x widths": dict(train_size=14_000, epochs=10, widths=(16, 32, 64, 128)),
}
STUDY_METHODS = ("vicreg", "simclr", "barlow", "supervised")
# Where the study's rows live: inside the package, so a pip install carries them.
TABLE = Path(__file__).resolve().parents[1] / "evidence" / "scale" / "scale_study.csv"
# Snapshots evaluated per run (epoch 0, the last, and evenly between): the learning curves.
CURVE_POINTS = 5


def design_profile(design: str, base: str | Profile = "cpu") -> Profile:
    """The profile of one design of :data:`DESIGNS`: ``base`` with the design's changes, and
    a snapshot every ``epochs / CURVE_POINTS`` epochs for the learning curves."""
    if design not in DESIGNS:
        raise ValueError(f"unknown design {design!r}; the designs are: {', '.join(DESIGNS)}")
    changes = DESIGNS[design]
    every = max(1, changes["epochs"] // CURVE_POINTS)
    return get_profile(base).replace(name=f"scale: {design}", eval_every=every, **changes)


def measure(method: str, design: str, seed: int, base: str | Profile = "cpu") -> pd.DataFrame:
    """Train (or load) one run of the study and measure it: one row per (epoch, ruler) on the
    test images, epoch 0 being the untrained floor, with the run's seconds and, for VICReg,
    its final variance hinge and embedding spread."""
    prof = design_profile(design, base)
    started = time.perf_counter()
    run = train(method, prof, seed=seed, progress=False)
    trained = time.perf_counter() - started
    evals = run.evaluate(targets=("fine",), metrics=RULERS)
    seconds_eval = time.perf_counter() - started - trained
    rows = evals[(evals.split == "test") & (evals.stage == run.last_stage)]
    losses = run.losses()
    last = losses.iloc[-1] if len(losses) else pd.Series(dtype=float)
    return pd.DataFrame(
        dict(
            design=design,
            method=method,
            seed=seed,
            epoch=rows.epoch.to_numpy(),
            ruler=rows.metric.to_numpy(),
            value=rows.value.to_numpy(),
            train_seconds=run.seconds if math.isfinite(run.seconds) else trained,
            eval_seconds=seconds_eval,
            variance_hinge=float(last.get("variance", math.nan)),
            embedding_spread=float(last.get("embedding_std", math.nan)),
            config=run.key,
        )
    )


def _key(method: str, design: str, seed: int, base) -> str:
    """The train cache key a run of the study has (its ``config`` column)."""
    prof = design_profile(design, base)
    data = datasets_for(prof)[0].fingerprint()
    return config_hash(train_config(method, prof, seed, {}, data))


def load_study(path: Path = TABLE) -> pd.DataFrame:
    """The study's table (empty, with its columns, before the first run)."""
    if Path(path).is_file():
        return pd.read_csv(path)
    return pd.DataFrame(columns=["design", "method", "seed", "epoch", "ruler", "value", "config"])


def _write(table: pd.DataFrame, path: Path) -> None:
    """Write the CSV through a temporary file and a rename: an interrupted write never
    leaves half a table."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    table.to_csv(tmp, index=False, float_format="%.6g")
    os.replace(tmp, path)


def _manifest(path: Path, floors: dict) -> None:
    """Write the study's manifest; ``floors``: the pixel floor of each design (its own
    evaluation images), by design then ruler."""
    manifest = dict(
        what="scale study: the three rulers against the two floors, by design and method",
        **provenance(),
        date=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        designs={
            k: {f: list(v) if isinstance(v, tuple) else v for f, v in d.items()}
            for k, d in DESIGNS.items()
        },  # fmt: skip
        pixel_floors=floors,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.with_name("manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")


def study(
    designs=None,
    methods=STUDY_METHODS,
    seeds=(0, 1, 2),
    path: Path = TABLE,
    base: str | Profile = "cpu",
    log=print,
) -> pd.DataFrame:
    """Measure every (design, method, seed) not yet in the table at ``path``, appending each
    run's rows as soon as it is measured; returns the whole table."""
    path = Path(path)
    designs = list(designs or DESIGNS)
    table = load_study(path)
    # A run counts as measured only if its rows come from the configuration it has now
    # (same design, code of the cache keys and data): older rows are dropped and measured again.
    wanted = {(d, m, s): _key(m, d, s, base) for d in designs for m in methods for s in seeds}
    if len(table):
        current = [wanted.get((d, m, s), c) == c for d, m, s, c in
                   zip(table.design, table.method, table.seed, table.config)]  # fmt: skip
        table = table[current].reset_index(drop=True)
    done = set(zip(table.design, table.method, table.seed))
    todo = [k for k in wanted if k not in done]
    floors = {d: compute_pixel_floor(design_profile(d, base)) for d in DESIGNS}
    _manifest(path, floors)
    log(f"scale study: {len(done)} runs measured, {len(todo)} to go; pixels: {floors}")
    for i, (design, method, seed) in enumerate(todo, 1):
        rows = measure(method, design, seed, base)
        table = pd.concat([table, rows], ignore_index=True) if len(table) else rows
        _write(table, path)
        took = rows.train_seconds.iloc[0] + rows.eval_seconds.iloc[0]
        log(f"[{i}/{len(todo)}] {design} | {method} | seed {seed}: {took:.0f} s")
    return table


# The rule that picks the reference profile, fixed before the study's larger designs were
# read (issue "A testbed that can answer the paper's questions"): the cheapest design in which
# every joint-embedding method beats the untrained network on all three rulers and raw pixels
# on test NCC, each with the 95% CI of the per-seed difference above 0.
JOINT_EMBEDDING = ("vicreg", "simclr", "barlow")


def load_pixel_floor(path: Path = TABLE) -> dict[str, dict[str, float]]:
    """The pixel floor the study measured (its manifest) on each design's own evaluation
    images, by design then ruler (a design's training-set size sets its evaluation split)."""
    return json.loads(Path(path).with_name("manifest.json").read_text())["pixel_floors"]


def _floor(pixels: dict, design: str) -> dict[str, float]:
    """``pixels`` by design (:func:`load_pixel_floor`), or one floor for every design."""
    return pixels[design] if isinstance(next(iter(pixels.values())), dict) else pixels


def study_margins(table: pd.DataFrame, pixels: dict[str, float]) -> pd.DataFrame:
    """One row per (design, method, ruler): the final value, the two floors (``pixels``: by
    design, :func:`load_pixel_floor`, or one for all), and the effect over each floor (mean
    and 95% CI over seeds; over the untrained network the difference is taken seed by seed),
    with the seconds a run took and the number of seeds."""
    rows = []
    for (design, method, ruler), g in table.groupby(["design", "method", "ruler"], sort=False):
        by_seed = g.pivot_table(index="seed", columns="epoch", values="value")
        final, start = by_seed[by_seed.columns.max()], by_seed[0]
        floor = _floor(pixels, design)[ruler]
        over_init, over_pixels = t_interval(final - start), t_interval(final - floor)
        rows.append(
            dict(
                design=design,
                method=method,
                ruler=ruler,
                final=final.mean(),
                untrained=start.mean(),
                pixels=floor,
                over_untrained=over_init[0],
                over_untrained_lo=over_init[1],
                over_untrained_hi=over_init[2],
                over_pixels=over_pixels[0],
                over_pixels_lo=over_pixels[1],
                over_pixels_hi=over_pixels[2],
                seconds=g.groupby("seed").train_seconds.first().mean(),
                seeds=len(by_seed),
            )
        )
    return pd.DataFrame(rows)


def choose_reference(margins: pd.DataFrame) -> tuple[str, bool, pd.DataFrame]:
    """The design the rule above picks, whether it meets the rule, and the rule's checks per
    design and joint-embedding method (``above untrained`` on all three rulers, ``above
    pixels`` on test NCC). With no design that meets it: the design that passes the most
    checks (the cheaper one on a tie), reported as not meeting it."""
    joint = margins[margins.method.isin(JOINT_EMBEDDING)]
    rows = {}
    for (design, method), g in joint.groupby(["design", "method"], sort=False):
        rows[design, method] = {
            "above untrained, all rulers": bool((g.over_untrained_lo > 0).all())
            and len(g) == len(RULERS),
            "above pixels, NCC": bool((g[g.ruler == "ncc"].over_pixels_lo > 0).all()),
        }
    checks = pd.DataFrame.from_dict(rows, orient="index")
    checks.index.names = ["design", "method"]
    passed = checks.groupby(level="design", sort=False).sum().sum(axis=1)
    needed = checks.groupby(level="design", sort=False).size() * checks.shape[1]
    seconds = joint.groupby("design", sort=False).seconds.mean()
    complete = {d for d, g in joint.groupby("design") if set(g.method) == set(JOINT_EMBEDDING)}
    meets = [d for d in passed.index if d in complete and passed[d] == needed[d]]
    if meets:
        return min(meets, key=lambda d: seconds[d]), True, checks
    best = max(passed.index, key=lambda d: (passed[d], -seconds[d]))
    return best, False, checks
