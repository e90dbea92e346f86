"""The measurements of the findings: each factory returns ``compute(profile, seeds)``, which
gives one row per seed with the measured ``value`` and its ``control`` (the effect is their
difference, read by :mod:`sslkit.findings.verdict`).

The controls are part of the claim (Ben-Shaul et al., NeurIPS 2023, compare training against
the network at initialisation and semantic targets against random ones): the same network
untrained (:func:`final_vs_initial`), another configuration (:func:`final_a_vs_final_b`), raw
pixels (:func:`final_vs_pixels`), a random control target averaged over its draws
(:func:`gain_vs_gain`), the first stage (:func:`deep_vs_shallow`), chance, or no association.
Every run comes from :func:`sslkit.configs.trained`: the evidence store where it holds the
profile's runs, else trained, so stored and live runs are measured by the same code.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

from ..experiment.configs import RATIOS, trained
from ..experiment.runs import Run, current_subset
from ..learn.augment import pixel_features
from ..learn.data import load
from ..measure.metrics import ncc_accuracy
from ..measure.targets import DRAWN, draws
from ..seeds import stream_seed
from .floors import pixel_floor, pixel_floor_subsets

__all__ = [
    "final_vs_initial",
    "final_a_vs_final_b",
    "final_vs_pixels",
    "level",
    "gain",
    "gain_vs_gain",
    "EQUAL_DIM",
    "deep_vs_shallow",
    "coarse_deeper_than_random_groups",
    "MIN_GAIN_TO_SHARE",
    "sample_before_semantic",
    "compression",
    "collapse",
    "pretext_vs_chance",
    "pixels_vs_chance",
    "WORKING_RATIOS",
    "ratio_slope",
    "ASSOCIATION_CONFIGS",
    "association",
    "gain_at",
]

# --------------------------------------------------------------------------- against a control


def final_vs_initial(config, metric="ncc", split="test", target="fine", stage=None):
    """A configuration's ``metric`` after training against the same network at initialisation
    (epoch 0 of the same run: the first floor)."""

    def compute(prof, seeds):
        rows = []
        for r in trained(config, prof, seeds):
            rows.append(
                dict(
                    seed=r.seed,
                    value=r.final(metric, split, target, stage),
                    control=r.initial(metric, split, target, stage),
                )
            )
        return pd.DataFrame(rows)

    return compute


def final_a_vs_final_b(config_a, config_b, metric="ncc", split="test", target="fine"):
    """``config_a``'s ``metric`` after training against ``config_b``'s, seed by seed."""

    def compute(prof, seeds):
        a, b = trained(config_a, prof, seeds), trained(config_b, prof, seeds)
        return pd.DataFrame(
            [
                dict(
                    seed=ra.seed,
                    value=ra.final(metric, split, target),
                    control=rb.final(metric, split, target),
                )
                for ra, rb in zip(a, b)
            ]
        )

    return compute


def final_vs_pixels(config, metric="ncc"):
    """A configuration's last-stage test ruler after training against the same ruler on raw
    pixels of the same images (the second floor)."""

    def compute(prof, seeds):
        k = current_subset()  # the floor on the same test images as the runs' values
        floor = pixel_floor(prof)[metric] if k is None else pixel_floor_subsets(prof)[metric][k]
        return pd.DataFrame(
            [dict(seed=r.seed, value=r.final(metric), control=floor)
             for r in trained(config, prof, seeds)]
        )  # fmt: skip

    return compute


# --------------------------------------------------------------------------- levels and gains


def level(r, metric, epoch, split="test", target="fine", stage=None, dim=None) -> float:
    """One measured level of run ``r``; for a random control (:data:`~sslkit.targets.DRAWN`),
    the mean over its :data:`~sslkit.targets.DRAWS` draws, so that no single draw decides."""
    if target in DRAWN:
        values = [r.value(metric, epoch, split, t, stage, dim) for t in draws(target)]
        return sum(values) / len(values)
    return r.value(metric, epoch, split, target, stage, dim)


def gain(r, metric, target, split="test", stage=None, dim=None, headroom=False) -> float:
    """Training's gain over the untrained network of the same seed (last epoch − epoch 0); for
    a random control, the mean of its draws' gains.

    ``headroom=True``: each change as a share of the room it had, so that targets that start at
    different levels compare on one scale: a rise as a share of what was left to gain,
    ``(after − before) / (1 − before)``, a fall as a share of what there was to lose,
    ``(after − before) / before`` (dividing a fall by the room to *rise* would inflate it)."""
    names = draws(target) if target in DRAWN else (target,)
    gains = []
    for t in names:
        after = r.value(metric, r.epochs[-1], split, t, stage, dim)
        before = r.value(metric, 0, split, t, stage, dim)
        gains.append(_share(after, before) if headroom else after - before)
    return sum(gains) / len(gains)


def _share(after: float, before: float) -> float:
    """A change as a share of its room: ``(after − before) / (1 − before)`` for a rise,
    ``(after − before) / before`` for a fall (0 where there was no room)."""
    if math.isnan(after) or math.isnan(before):
        return math.nan
    room = (1 - before) if after >= before else before
    return (after - before) / room if room > 0 else 0.0


def gain_vs_gain(
    target, control_target, metric="ncc", split="test", config="VICReg", headroom=False
):
    """Training's gain on ``target`` against its gain on ``control_target`` (each over the untrained
    network; a random control's gain is the mean over its draws; ``headroom``: each as a share
    of what was left to gain, see :func:`gain`)."""

    def compute(prof, seeds):
        rows = []
        for r in trained(config, prof, seeds):
            rows.append(
                dict(
                    seed=r.seed,
                    value=gain(r, metric, target, split, headroom=headroom),
                    control=gain(r, metric, control_target, split, headroom=headroom),
                )
            )
        return pd.DataFrame(rows)

    return compute


# --------------------------------------------------------------------------- depth

# Stages are compared at equal dimension: every stage on its own top principal directions, as
# many as the smallest stage is wide (see sslkit.evaluation.pca_stages). A random window of the
# same size kept more of a low-rank trained stage than of an untrained one and inflated the
# trained gains. PCA has a milder bias of the same sign (a trained stage of lower effective
# rank loses less to the cut than its untrained version), so the full-width reading
# (``deeper_gains_more_full_width``) is measured beside it.
EQUAL_DIM = "pca"


def _depth_gain(r, target: str, metric="ncc", split="test", dim=EQUAL_DIM) -> dict[str, float]:
    """Training's gain over the untrained network at the first and the last stage."""
    first, last = r.stage_names[0], r.stage_names[-1]
    return {s: gain(r, metric, target, split, s, dim) for s in (first, last)}


def deep_vs_shallow(target="fine", config="VICReg", dim=EQUAL_DIM):
    """Training's gain at the last stage against its gain at the first stage, at equal
    dimension (``dim=None``: each stage at its full width)."""

    def compute(prof, seeds):
        rows = []
        for r in trained(config, prof, seeds):
            g = _depth_gain(r, target, dim=dim)
            rows.append(dict(seed=r.seed, value=g[r.stage_names[-1]], control=g[r.stage_names[0]]))
        return pd.DataFrame(rows)

    return compute


def coarse_deeper_than_random_groups(config="VICReg", dim=EQUAL_DIM):
    """How much more depth adds for the coarse level than for random groupings of the same
    fine classes (same group sizes, same chance level; the mean over the groupings' draws):
    (last − first stage gain) of each, at equal dimension."""

    def compute(prof, seeds):
        rows = []
        for r in trained(config, prof, seeds):
            first, last = r.stage_names[0], r.stage_names[-1]
            gains = {t: _depth_gain(r, t, dim=dim) for t in ("coarse", "coarse_random")}
            depth = {t: g[last] - g[first] for t, g in gains.items()}
            rows.append(dict(seed=r.seed, value=depth["coarse"], control=depth["coarse_random"]))
        return pd.DataFrame(rows)

    return compute


# --------------------------------------------------------------------------- dynamics, rank, chance

# A final gain below this (1 point) leaves no gain to share out over the epochs.
MIN_GAIN_TO_SHARE = 0.01


def _share_of_gain_at_first_eval(r: Run, metric: str, target: str) -> float:
    """Fraction of the final gain over the untrained network already reached at the first
    evaluation after epoch 0; NaN when the final change is smaller than :data:`MIN_GAIN_TO_SHARE`
    (the share of almost nothing is noise), which makes the verdict inconclusive."""
    first, last = r.epochs[1], r.epochs[-1]
    v0, v1, vt = (r.value(metric, e, "test", target) for e in (0, first, last))
    return (v1 - v0) / (vt - v0) if abs(vt - v0) >= MIN_GAIN_TO_SHARE else math.nan


def sample_before_semantic(prof, seeds):
    """VICReg's share of the final sample-level NCC gain reached at the first evaluation,
    against the same share of the semantic (fine) NCC gain."""
    return pd.DataFrame(
        [
            dict(
                seed=r.seed,
                value=_share_of_gain_at_first_eval(r, "sample_ncc", "sample"),
                control=_share_of_gain_at_first_eval(r, "ncc", "fine"),
            )
            for r in trained("VICReg", prof, seeds)
        ]
    )


def compression(config="VICReg"):
    """Effective rank of the last stage's test features as a share of its width, after
    training against the untrained network (lower is more compressed)."""

    def compute(prof, seeds):
        rows = []
        for r in trained(config, prof, seeds):
            width = r.out_dim
            rows.append(
                dict(
                    seed=r.seed,
                    value=r.final("erank", target="fine") / width,
                    control=r.initial("erank", target="fine") / width,
                )
            )
        return pd.DataFrame(rows)

    return compute


def collapse(prof, seeds):
    """−log10 of the embedding spread after training with the invariance term alone, against
    the same for full VICReg (a collapsed run's spread is orders of magnitude smaller)."""
    inv, full = trained("invariance only", prof, seeds), trained("VICReg", prof, seeds)

    def spread(r):  # floored so that a spread of exactly 0 is a very large effect, not an error
        return -math.log10(max(r.losses().embedding_std.iloc[-1], 1e-12))

    return pd.DataFrame(
        [dict(seed=a.seed, value=spread(a), control=spread(b)) for a, b in zip(inv, full)]
    )


def pretext_vs_chance(config, chance):
    """A pretext task's accuracy on the training batches at the last epoch, against chance."""

    def compute(prof, seeds):
        return pd.DataFrame(
            [
                dict(seed=r.seed, value=r.losses().accuracy.iloc[-1], control=chance)
                for r in trained(config, prof, seeds)
            ]
        )

    return compute


def pixels_vs_chance(prof, seeds):
    """Test NCC accuracy of raw pixels (scaled to [0, 1]) on a random subset of the images
    per seed, against chance (1 in K)."""
    train_set, test = load(prof.dataset, "train"), load(prof.dataset, "test")
    rows = []
    for s in seeds:  # each seed draws its own subsets of images
        tr = train_set.subset(prof.eval_size, seed=stream_seed(s, "pixel_subsets", 0))
        te = test.subset(prof.eval_size, seed=stream_seed(s, "pixel_subsets", 1))
        acc = ncc_accuracy(
            pixel_features(te.images),
            te.labels,
            pixel_features(tr.images),
            tr.labels,
        )
        rows.append(dict(seed=s, value=acc, control=1 / train_set.num_classes))
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- the ratio sweep

# The ratios over which the sweep's dose-response is read: the runs in which VICReg trains as
# VICReg (both terms weighted), leaving out the one-term ends and the ratio-0.2 arm, whose
# runs may end below the untrained network (chapter 4b flags such an arm).
WORKING_RATIOS = (0.5, 1.0, 2.0, 5.0)


def ratio_slope(metric="ncc", target="fine"):
    """Per seed, the least-squares slope of a ruler after training against log10 of the
    regularization/invariance ratio, over :data:`WORKING_RATIOS` (points per tenfold ratio);
    the control is 0, no dose-response."""

    def compute(prof, seeds):
        x = np.log10(WORKING_RATIOS)
        runs = [trained(RATIOS[r], prof, seeds) for r in WORKING_RATIOS]
        rows = []
        for i, seed in enumerate(seeds):
            y = [arm[i].final(metric, target=target) for arm in runs]
            rows.append(dict(seed=seed, value=float(np.polyfit(x, y, 1)[0]), control=0.0))
        return pd.DataFrame(rows)

    return compute


# --------------------------------------------------------------------------- associations

# The self-supervised configurations an association across runs is measured over: the runs
# that trained as joint-embedding SSL, leaving out the invariance-only run (it collapses) and
# the ratio-0.2 arm (it can end below its untrained network, chapter 4b), so that runs broken
# in every respect cannot make the association alone. The claim is about these runs, on this
# network: seeds repeat the same configurations, they do not sample new ones.
ASSOCIATION_CONFIGS = ("VICReg", "regularization only", "SimCLR", "Barlow Twins", "ratio 5")


def _spearman(xs, ys) -> float:
    """Spearman's rank correlation, clipped to the largest value below 1 that ``n`` points
    without ties can reach, ``1 − 6·2 / (n(n² − 1))`` (a perfect ±1 would dominate a mean on
    Fisher's z)."""
    n = len(xs)
    rmax = 1 - 12 / (n * (n * n - 1))
    return float(np.clip(stats.spearmanr(xs, ys).statistic, -rmax, rmax))


def association(x, y, configs=ASSOCIATION_CONFIGS, over_epochs=False):
    """Per seed, the Spearman correlation across ``configs`` between two per-run quantities
    ``x(run, epoch)`` and ``y(run, epoch)`` at the last epoch, or at every snapshot after
    epoch 0 with ``over_epochs`` (one point per run and epoch); the control is 0."""

    def compute(prof, seeds):
        runs = {c: trained(c, prof, seeds) for c in configs}
        rows = []
        for i, seed in enumerate(seeds):
            points = [
                (r, e)
                for r in (runs[c][i] for c in configs)
                for e in (r.epochs[1:] if over_epochs else r.epochs[-1:])
            ]
            xs, ys = [x(r, e) for r, e in points], [y(r, e) for r, e in points]
            rows.append(dict(seed=seed, value=_spearman(xs, ys), control=0.0))
        return pd.DataFrame(rows)

    return compute


def gain_at(metric, target="fine"):
    """A run's gain over its untrained network at one epoch."""
    return lambda r, e: level(r, metric, e, target=target) - level(r, metric, 0, target=target)
