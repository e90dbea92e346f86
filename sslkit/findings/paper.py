"""One :class:`Finding` per claim the book states (the configurations they measure are
:mod:`sslkit.configs`).

Each finding holds the claim (a paraphrase; only the abstract of Ben-Shaul et al., NeurIPS
2023, is ever quoted), where the claim comes from, the measurement, its **control** (the
untrained network or a control target), and **one threshold**, fixed here before any run
was read. :meth:`Finding.measure` computes the effect (measurement minus control) on
every seed of the profile and returns a :class:`Verdict`:

- **held**: the whole 95% confidence interval of the effect is above the threshold;
- **positive, below threshold**: the whole interval is above 0 but at or below the threshold:
  an effect, smaller than the claim asks for (never to be read as "false");
- **not held**: the whole interval is at or below the threshold and reaches 0 or below: no
  effect of the size claimed, and none that is positive beyond doubt (it may be negative);
- **inconclusive**: the interval contains the threshold (or there is one seed only).

Each threshold is fixed in advance, with its reason in :data:`THRESHOLD_REASONS`.

The chapters and chapter 7's table call the same objects, so no threshold is written twice.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from ..experiment import store
from ..experiment.analysis import correlation_interval, t_interval
from ..experiment.configs import METHODS, RATIOS, trained
from ..experiment.runs import NoSubsets, Run, current_subset, evaluation_subset
from ..learn.augment import pixel_features
from ..learn.data import load
from ..measure.evaluation import EVAL_SUBSETS
from ..measure.metrics import ncc_accuracy
from ..measure.targets import DRAWN, draws
from ..profiles import Profile, get_profile
from ..runtime import register_cache
from ..seeds import stream_seed
from . import scale
from .recorded import RECORDED

__all__ = [
    "Finding",
    "Verdict",
    "FINDINGS",
    "finding",
    "measure_all",
    "per_method",
    "per_method_table",
    "PER_METHOD",
    "VARIANTS",
    "RULER_VARIANTS",
    "PRIMARY",
    "WORKING_RATIOS",
    "ratio_slope",
    "RULERS",
    "CLUSTERING",
    "VERDICTS",
    "BELOW",
    "THRESHOLD_REASONS",
    "ruler_keys",
    "final_vs_pixels",
    "pixel_floor",
    "level",
    "gain",
    "EQUAL_DIM",
    "MIN_GAIN_TO_SHARE",
    # measurements: each returns compute(profile, seeds) -> one row per seed (seed, value, control)
    "final_vs_initial",
    "final_a_vs_final_b",
    "gain_vs_gain",
    "deep_vs_shallow",
    "coarse_deeper_than_random_groups",
]
# --------------------------------------------------------------------------- findings

# The verdict of an effect that is there, but smaller than the claim's threshold.
BELOW = "positive, below threshold"
VERDICTS = ("held", BELOW, "not held", "inconclusive")
# Why each threshold is what it is (fixed before any run was read; one place).
THRESHOLD_REASONS = {
    0.05: "5 points of accuracy: the smallest gain over a control that the book calls "
    "clustering (a twentieth of the scale)",
    0.02: "2 points: a difference between two gains or two runs, each already measured "
    "against its own control, so a smaller margin still orders them",
    0.01: "1 point: a linear probe after a pretext task; any gain the interval puts above "
    "1 point counts as more separable",
    0.10: "10 points above chance: a task learned beyond doubt, not a lucky batch",
    1.0: "one order of magnitude of embedding spread: a collapse, not a fluctuation",
    0.0: "a floor is to be beaten at all: any margin whose whole interval is above 0",
    0.3: "a rank correlation of 0.3 across configurations: the conventional lower edge of a "
    "moderate association",
}


@dataclass(frozen=True)
class Verdict:
    """The outcome of one finding on one profile: per-seed values, effect, CI and verdict."""

    finding: Finding
    per_seed: pd.DataFrame  # columns seed, value, control, effect
    effect: float
    lo: float
    hi: float
    verdict: str
    # The mean effect on each evaluation subset of the test images, where the runs keep them
    # (the evidence store); the interval then covers which test images were drawn as well as
    # the seeds (sslkit.analysis.standard_error). None: over seeds only.
    subsets: tuple | None = None

    @property
    def n(self) -> int:
        return len(self.per_seed)

    @property
    def value(self) -> float:
        return float(self.per_seed.value.mean())

    @property
    def control(self) -> float:
        return float(self.per_seed.control.mean())

    def row(self) -> dict:
        """The finding's line of a scoreboard."""
        f = self.finding
        return {
            "claim": f.claim,
            "source": f.source,
            "this run": f.fmt_level(self.value),
            "control": f.fmt_level(self.control),
            "effect": f.fmt(self.effect, short=True),
            "95% CI": f"{f.fmt(self.lo, short=True)} to {f.fmt(self.hi, short=True)}",
            "threshold": f.fmt(f.threshold, short=True),
            "seeds": self.n,
            "verdict": self.verdict,
            "the book's build": f.book_verdict,
        }


@dataclass(frozen=True)
class Finding:
    """One claim, its measurement and control, and its threshold (see the module doc).

    ``compute(profile, seeds)`` returns one row per seed with the measurement ``value``
    and its ``control``; the effect is ``value − control`` (for ``lower_is_better``
    quantities, ``control − value``), in the finding's ``unit``.
    """

    key: str
    claim: str
    source: str
    measurement: str
    control: str
    threshold: float
    compute: Callable[[Profile, tuple], pd.DataFrame] = field(repr=False)
    unit: str = "points"
    lower_is_better: bool = False
    # A correlation per seed: averaged and given its interval on Fisher's z = atanh(r), then
    # mapped back, so that the bounds stay within [-1, 1].
    fisher_z: bool = False
    # Why the threshold is what it is, where the shared reasons (THRESHOLD_REASONS) do not say.
    reason: str = ""

    @property
    def book_verdict(self) -> str:
        """What the book's prose states: the verdict on the reference evidence, recorded once
        after the evidence was built (:data:`sslkit.recorded.RECORDED`)."""
        return RECORDED.get(self.key, "not recorded")

    @property
    def threshold_reason(self) -> str:
        """Why the threshold is what it is (:data:`THRESHOLD_REASONS`; a finding of your own
        should have a reason too)."""
        return self.reason or THRESHOLD_REASONS.get(self.threshold, "no reason recorded")

    def fmt(self, x: float, short: bool = False) -> str:
        """An effect in the finding's unit, e.g. ``+12.3 points`` (``+12.3 pts`` when ``short``)."""
        if x != x:
            return "n/a"
        if self.unit.startswith("points"):  # "points", "points of headroom", "… per tenfold ratio"
            unit = self.unit.replace("points", "pts") if short else self.unit
            return f"{100 * x:+.1f} {unit}"
        unit = {"orders of magnitude": "orders"}.get(self.unit, self.unit) if short else self.unit
        return f"{x:+.2f} {unit}".rstrip()

    def fmt_level(self, x: float) -> str:
        """A measured level (not a difference): accuracies as percentages."""
        if x != x:
            return "n/a"
        return f"{100 * x:.1f}%" if self.unit.startswith("points") else f"{x:.3g}"

    def measure(self, profile=None, seeds=None) -> Verdict:
        """Train or load the runs, compute the effect per seed, and give the verdict.

        ``seeds``: the seeds to measure (default: the profile's); each once, at least one."""
        prof = get_profile(profile)
        seeds = tuple(prof.seeds if seeds is None else seeds)
        if not seeds:
            raise ValueError(
                "seeds is empty: pass the seeds to measure (three or more give an interval), "
                "or None for the profile's"
            )
        if len(set(seeds)) != len(seeds):
            raise ValueError(
                f"seeds {list(seeds)} repeat a seed: a repeated run is the same run, and would "
                "shrink the interval without new evidence; pass each seed once"
            )
        return _measure(self, prof, seeds)


def _subset_effects(f: Finding, prof: Profile, seeds: tuple) -> tuple | None:
    """The finding's mean effect on each evaluation subset of the test images, or ``None``
    where its runs do not keep them (live runs) or its effect is a correlation."""
    if f.fisher_z:
        return None
    sign = -1.0 if f.lower_is_better else 1.0
    means = []
    try:
        for k in range(EVAL_SUBSETS):
            with evaluation_subset(k):
                df = f.compute(prof, seeds)
            means.append(float((sign * (df.value - df.control)).mean()))
    except NoSubsets:  # a live run, or a value kept on all the test images only
        return None
    if not np.isfinite(means).all() or np.ptp(means) == 0:  # nothing read from the test images
        return None
    return tuple(means)


@register_cache
@functools.lru_cache(maxsize=256)
def _measure(f: Finding, prof: Profile, seeds: tuple) -> Verdict:
    df = f.compute(prof, seeds).reset_index(drop=True)
    sign = -1.0 if f.lower_is_better else 1.0
    df["effect"] = sign * (df.value - df.control)
    measured = df.effect.dropna()
    subsets = _subset_effects(f, prof, seeds) if len(measured) == len(df) else None
    if f.fisher_z and len(measured):  # on Fisher's z = atanh(r)
        effect, lo, hi = correlation_interval(measured)
    else:
        effect, lo, hi = t_interval(measured, subsets=subsets) if len(measured) else (math.nan,) * 3
    if len(measured) < len(df) or len(df) < 2:  # a seed without a measurement, or one seed only
        verdict = "inconclusive"
    elif lo > f.threshold:
        verdict = "held"
    elif hi <= f.threshold:
        verdict = BELOW if lo > 0 else "not held"
    else:
        verdict = "inconclusive"
    return Verdict(f, df, effect, lo, hi, verdict, subsets)


# --- measurements: each returns one row per seed (seed, value, control)


def final_vs_initial(config, metric="ncc", split="test", target="fine", stage=None):
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


# A final gain below this (1 point) leaves no gain to share out over the epochs.
MIN_GAIN_TO_SHARE = 0.01


def _share_of_gain_at_first_eval(r: Run, metric: str, target: str) -> float:
    """Fraction of the final gain over the untrained network already reached at the first
    evaluation after epoch 0; NaN when the final change is smaller than :data:`MIN_GAIN_TO_SHARE`
    (the share of almost nothing is noise), which makes the verdict inconclusive."""
    first, last = r.epochs[1], r.epochs[-1]
    v0, v1, vt = (r.value(metric, e, "test", target) for e in (0, first, last))
    return (v1 - v0) / (vt - v0) if abs(vt - v0) >= MIN_GAIN_TO_SHARE else math.nan


def _sample_before_semantic(prof, seeds):
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


def _compression(config="VICReg"):
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


def _collapse(prof, seeds):
    inv, full = trained("invariance only", prof, seeds), trained("VICReg", prof, seeds)

    def spread(r):  # floored so that a spread of exactly 0 is a very large effect, not an error
        return -math.log10(max(r.losses().embedding_std.iloc[-1], 1e-12))

    return pd.DataFrame(
        [dict(seed=a.seed, value=spread(a), control=spread(b)) for a, b in zip(inv, full)]
    )


def _pretext_learned(config, chance):
    def compute(prof, seeds):
        return pd.DataFrame(
            [
                dict(seed=r.seed, value=r.losses().accuracy.iloc[-1], control=chance)
                for r in trained(config, prof, seeds)
            ]
        )

    return compute


def _pixels_cluster(prof, seeds):
    train_set, test = load(prof.dataset, "train"), load(prof.dataset, "test")
    rows = []
    for s in seeds:  # each seed draws its own subsets of images
        tr = train_set.subset(prof.eval_size, seed=stream_seed(s, "pixel_subsets", 0))
        te = test.subset(prof.eval_size, seed=stream_seed(s, "pixel_subsets", 1))
        acc = ncc_accuracy(
            pixel_features(te.images), te.labels, pixel_features(tr.images), tr.labels
        )
        rows.append(dict(seed=s, value=acc, control=1 / train_set.num_classes))
    return pd.DataFrame(rows)


# The measurements of chapters 3–6 repeated for every joint-embedding method of METHODS:
# finding key -> measurement, given the configuration. The VICReg findings below use the same
# factories, so a method's version can never drift from VICReg's.
_PER_METHOD = {
    "semantic_over_random": lambda config: gain_vs_gain("fine", "random_function", config=config),
    "coarse_beyond_fine": lambda config: gain_vs_gain("coarse", "coarse_random", config=config),
    "deeper_gains_more": lambda config: deep_vs_shallow(config=config),
    "compression": lambda config: _compression(config),
}

ABSTRACT = "the paper's abstract"
# A testable reading the abstract implies but does not state (a gain over the untrained
# network, a ratio, random groupings, an effective rank): said as such.
DERIVED = "derived from the paper's abstract"
ACCOUNT = "the paper's account of its training dynamics, as reviews of the paper summarise it"
FINDINGS: dict[str, Finding] = {
    f.key: f
    for f in (
        # chapter 0: the floor
        Finding(
            "pixels_cluster",
            "Raw pixels already cluster by class above chance",
            "this book (a baseline)",
            "test NCC accuracy of raw pixels, on a random subset of images per seed",
            "chance (1 in K)",
            0.10,
            _pixels_cluster,
        ),
        # chapter 1: pretext tasks
        Finding(
            "rotation_learned",
            "A network learns to predict an image's rotation",
            "Gidaris et al. (2018)",
            "rotation accuracy on the training batches, last epoch",
            "chance (1 in 4)",
            0.10,
            _pretext_learned("rotation", 0.25),
        ),
        Finding(
            "jigsaw_learned",
            "A network learns to solve 2×2 jigsaw puzzles",
            "Noroozi & Favaro (2016)",
            "permutation accuracy on the training batches, last epoch",
            "chance (1 in 24)",
            0.10,
            _pretext_learned("jigsaw", 1 / 24),
        ),
        Finding(
            "rotation_probe",
            "Rotation prediction makes the classes more linearly separable",
            "Gidaris et al. (2018)",
            "test linear-probe accuracy, last stage, after rotation training",
            "the same network untrained",
            0.01,
            final_vs_initial("rotation", "probe"),
        ),
        # chapter 2: joint embedding
        Finding(
            "collapse",
            "With the invariance term alone, the embeddings collapse",
            "VICReg (Bardes et al., 2022)",
            "−log10 of the embedding spread after training, invariance only",
            "the same for full VICReg",
            1.0,
            _collapse,
            unit="orders of magnitude",
        ),
        Finding(
            "simclr_clusters",
            "SimCLR clusters the classes without labels",
            "SimCLR (Chen et al., 2020)",
            "test NCC accuracy (fine), last stage",
            "the same network untrained",
            0.05,
            final_vs_initial("SimCLR"),
        ),
        Finding(
            "barlow_clusters",
            "Barlow Twins clusters the classes without labels",
            "Barlow Twins (Zbontar et al., 2021)",
            "test NCC accuracy (fine), last stage",
            "the same network untrained",
            0.05,
            final_vs_initial("Barlow Twins"),
        ),
        # chapter 3: clustering
        Finding(
            "semantic_clustering",
            "SSL training clusters samples by semantic class",
            ABSTRACT,
            "VICReg: test NCC accuracy (fine), last stage",
            "the same network untrained",
            0.05,
            final_vs_initial("VICReg"),
        ),
        Finding(
            "sample_clustering",
            "SSL training clusters the views of each image (sample level)",
            "what the loss asks (views of one image)",
            "VICReg: sample-level NCC accuracy, last stage",
            "the same network untrained",
            0.05,
            final_vs_initial("VICReg", "sample_ncc", target="sample"),
        ),
        Finding(
            "supervised_tighter",
            "Training with labels clusters the training set more tightly than SSL",
            "neural collapse (Papyan et al., 2020)",
            "train NCC accuracy (fine), supervised",
            "train NCC accuracy, VICReg",
            0.02,
            final_a_vs_final_b("supervised", "VICReg", split="train"),
        ),
        # chapter 4: regularization vs invariance
        Finding(
            "regularization_clusters",
            "The regularization term alone clusters the classes",
            DERIVED,
            "VICReg without invariance: test NCC accuracy (fine)",
            "the same network untrained",
            0.05,
            final_vs_initial("regularization only"),
        ),
        Finding(
            "ratio_drives_clustering",
            "More weight on the regularization term, more semantic clustering",
            DERIVED,
            "test NCC accuracy (fine), regularization/invariance ratio 5",
            "the same at ratio 0.2",
            0.02,
            final_a_vs_final_b("ratio 5", "ratio 0.2"),
        ),
        Finding(
            "invariance_drives_sample",
            "More weight on the invariance term, tighter sample-level clusters",
            ACCOUNT,
            "sample-level NCC accuracy, regularization/invariance ratio 0.2",
            "the same at ratio 5",
            0.02,
            final_a_vs_final_b("ratio 0.2", "ratio 5", metric="sample_ncc", target="sample"),
        ),
        Finding(
            "sample_before_semantic",
            "Sample-level clustering rises before semantic clustering",
            ACCOUNT,
            "VICReg: share of the final sample-level NCC gain reached after the first epoch",
            "the same share for semantic (fine) NCC",
            0.05,
            _sample_before_semantic,
            reason="0.05 of the final gain: the sample level must have reached a twentieth more "
            "of its gain than the semantic level at the first evaluation to count as first",
        ),
        Finding(
            "barlow_redundancy_clusters",
            "Barlow Twins' redundancy-reduction term alone clusters the classes",
            "the paper's claim, carried to Barlow Twins",
            "Barlow Twins without the invariance term: test NCC (fine)",
            "the same network untrained",
            0.05,
            final_vs_initial("Barlow redundancy only"),
        ),
        Finding(
            "barlow_redundancy_over_invariance",
            "In Barlow Twins, the redundancy term alone clusters more "
            "than the invariance term alone",
            "the paper's claim, carried to Barlow Twins",
            "test NCC (fine), redundancy-reduction term only",
            "the same, invariance term only",
            0.02,
            final_a_vs_final_b("Barlow redundancy only", "Barlow invariance only"),
        ),
        # chapter 5: semantic vs random targets
        Finding(
            "semantic_over_random",
            "Training improves alignment with semantic classes more than with a random "
            "function of the image",
            DERIVED,
            "gain over the untrained network of test NCC accuracy, true classes",
            "the same gain for a random function of the image (k-means of a random projection of "
            "the pixels)",
            0.05,
            _PER_METHOD["semantic_over_random"]("VICReg"),
        ),
        Finding(
            "semantic_over_random_headroom",
            "Training improves alignment with semantic classes more than with a random "
            "function of the image, each gain as a share of its headroom",
            DERIVED,
            "change over the untrained network of test NCC accuracy, true classes, as a share of "
            "its room: a rise over 1 − before (what was left to gain), a fall over before",
            "the same share for the random function of the image (mean over its draws)",
            0.05,
            gain_vs_gain("fine", "random_function", headroom=True),
            unit="points of headroom",
            reason="5 points of headroom: the same twentieth as the 5-point threshold of the "
            "raw gains, on the scale of the room each target had (left to gain for a rise, "
            "there to lose for a fall; targets that start at different levels have different "
            "room in raw points)",
        ),
        Finding(
            "semantic_over_matched_random",
            "Training improves alignment with semantic classes more than with a matched random "
            "function: balanced groups that an untrained network of the same architecture "
            "already forms",
            DERIVED,
            "change over the untrained network of test NCC accuracy, true classes, as a share of "
            "its room: a rise over 1 − before, a fall over before",
            "the same share for balanced k-means clusters of another untrained network's "
            "features, as many and as large as the classes (mean over its draws)",
            0.05,
            gain_vs_gain("fine", "untrained_kmeans", headroom=True),
            unit="points of headroom",
            reason="5 points of headroom, the threshold of the other headroom comparison, fixed "
            "before this control was measured on any stored run",
        ),
        # chapter 6: hierarchy and depth
        Finding(
            "coarse_clustering",
            "SSL training raises NCC at the coarse level (any grouping of clustered classes "
            "would; the next finding is the control)",
            DERIVED,
            "VICReg: test NCC accuracy (coarse), last stage",
            "the same network untrained",
            0.05,
            final_vs_initial("VICReg", target="coarse"),
        ),
        Finding(
            "coarse_beyond_fine",
            "The coarse level gains more than random groupings of the same fine classes",
            DERIVED,
            "gain over the untrained network of test NCC accuracy, coarse groups",
            "the same gain for random groups of the same sizes",
            0.02,
            _PER_METHOD["coarse_beyond_fine"]("VICReg"),
        ),
        Finding(
            "deeper_gains_more",
            "Training raises alignment more in deeper layers",
            DERIVED,
            "gain over the untrained network of test NCC accuracy (fine), last stage, at equal "
            "dimension",
            "the same gain at the first stage",
            0.02,
            _PER_METHOD["deeper_gains_more"]("VICReg"),
        ),
        Finding(
            "deeper_gains_more_full_width",
            "Training raises alignment more in deeper layers (each stage at its full width)",
            DERIVED,
            "gain over the untrained network of test NCC accuracy (fine), last stage, full width",
            "the same gain at the first stage, full width",
            0.02,
            deep_vs_shallow(dim=None),
        ),
        Finding(
            "coarse_deeper_than_fine",
            "Depth adds more for the coarse level than for random groupings of the same classes",
            DERIVED,
            "coarse level: gain at the last stage minus gain at the first, at equal dimension",
            "the same for random groups of the same sizes",
            0.02,
            coarse_deeper_than_random_groups(),
        ),
        # compression
        Finding(
            "compression",
            "SSL training lowers the effective rank of the features (a compression proxy)",
            DERIVED,
            "VICReg: effective rank of the last stage's standardised test features, as a share of "
            "its width",
            "the same network untrained",
            0.05,
            _PER_METHOD["compression"]("VICReg"),
            reason="0.05 of the width: a twentieth of the feature directions given up, the "
            "smallest compression the book calls one",
            lower_is_better=True,
        ),
    )
}


def per_method(key: str) -> dict[str, str]:
    """The keys of one measurement for every method of :data:`METHODS`, e.g.
    ``per_method("coarse_beyond_fine")["SimCLR"] == "coarse_beyond_fine_simclr"``."""
    if key not in _PER_METHOD:
        raise KeyError(f"{key!r} is not measured per method; these are: {', '.join(_PER_METHOD)}")
    return {m: key if m == "VICReg" else f"{key}_{m.split()[0].lower()}" for m in METHODS}


# The measurements repeated per method, and the keys of their non-VICReg versions.
PER_METHOD = tuple(_PER_METHOD)
VARIANTS = frozenset(k for key in PER_METHOD for m, k in per_method(key).items() if m != "VICReg")


def _per_method_variants(findings: dict[str, Finding]) -> dict[str, Finding]:
    """The SimCLR and Barlow Twins versions of the VICReg findings of :data:`PER_METHOD`:
    the same claim and threshold, measured by the same factory on the method's runs."""
    variants = {}
    for key, factory in _PER_METHOD.items():
        base = findings[key]
        for method, k in per_method(key).items():
            if method != "VICReg":
                variants[k] = dataclasses.replace(
                    base,
                    key=k,
                    claim=f"{base.claim} ({method})",
                    measurement=base.measurement.replace("VICReg: ", "") + f" ({method})",
                    compute=factory(method),
                )
    return variants


FINDINGS.update(_per_method_variants(FINDINGS))

# The paper's five claims, as its abstract states them, each with the finding that tests it:
# the primary claims, reported with a Holm correction across the five (the other findings are
# secondary: controls, per-method repeats, rulers and floors, ablations).
PRIMARY = {
    "SSL clusters by semantic class": "semantic_clustering",
    "driven by the regularization term": "regularization_clusters",
    "semantic more than random": "semantic_over_random",
    "several levels of the label hierarchy": "coarse_beyond_fine",
    "grows with depth": "deeper_gains_more",
}

# The findings grouped by the claim of the abstract they bear on (the forest plot of chapter 7
# draws one panel per group), and the baselines every claim rests on. A finding left out of
# every group is drawn under "other findings", never dropped (a test checks the book's).
GROUPS = {
    "baselines and pretext tasks": (
        "pixels_cluster", "rotation_learned", "jigsaw_learned", "rotation_probe", "collapse",
    ),
    "SSL clusters by semantic class": (
        "semantic_clustering", "simclr_clusters", "barlow_clusters", "sample_clustering",
        "sample_before_semantic", "supervised_tighter",
    ),
    "driven by the regularization term": (
        "regularization_clusters", "ratio_drives_clustering", "ratio_slope",
        "ratio_slope_whitened_ncc", "ratio_slope_probe", "invariance_drives_sample",
        "barlow_redundancy_clusters", "barlow_redundancy_over_invariance",
    ),
    "semantic more than random": (
        "semantic_over_random", "semantic_over_random_headroom", "semantic_over_matched_random",
    ),
    "several levels of the label hierarchy": ("coarse_clustering", "coarse_beyond_fine"),
    "grows with depth": (
        "deeper_gains_more", "deeper_gains_more_full_width", "coarse_deeper_than_fine",
    ),
    "clustering compresses and helps classification": (
        "compression", "clustering_helps_classification", "compression_tracks_clustering",
    ),
}  # fmt: skip


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


SLOPE_REASON = (
    "2 points of accuracy per tenfold ratio: over the working range (a tenfold span) the most "
    "and least regularized runs then differ by about 2 points, the margin the book asks of any "
    "difference between two runs"
)

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


def _gain_at(metric, target="fine"):
    """A run's gain over its untrained network at one epoch."""
    return lambda r, e: level(r, metric, e, target=target) - level(r, metric, 0, target=target)


FINDINGS.update(
    {
        f.key: f
        for f in (
            *(
                Finding(
                    "ratio_slope" + ("" if metric == "ncc" else f"_{metric}"),
                    "More weight on the regularization term, more semantic clustering (the "
                    f"dose-response, {name})",
                    DERIVED,
                    f"per seed, slope of test {name} accuracy (fine) against log10 of the "
                    "regularization/invariance ratio, ratios 0.5 to 5",
                    "no dose-response (slope 0)",
                    0.02,
                    ratio_slope(metric),
                    unit="points per tenfold ratio",
                    reason=SLOPE_REASON,
                )
                for metric, name in (
                    ("ncc", "NCC"),
                    ("whitened_ncc", "whitened NCC"),
                    ("probe", "linear probe"),
                )
            ),  # fmt: skip
            Finding(
                "clustering_helps_classification",
                "The more a run clusters the classes, the better its features classify them",
                DERIVED + " (clustering enhances downstream classification)",
                "per seed, Spearman correlation across the SSL runs and their epochs of the test "
                "NCC gain over the untrained network and the linear-probe gain",
                "no association (0)",
                0.3,
                association(_gain_at("ncc"), _gain_at("probe"), over_epochs=True),
                unit="ρ",
                fisher_z=True,
            ),
            Finding(
                "compression_tracks_clustering",
                "The runs that cluster more compress more (lower effective rank)",
                DERIVED + " (clustering compresses the data information)",
                "per seed, Spearman correlation across the SSL configurations of the test NCC "
                "gain and the fall of the effective rank (share of the width)",
                "no association (0)",
                0.3,
                association(_gain_at("ncc"), lambda r, e: -_gain_at("erank")(r, e) / r.out_dim),
                unit="ρ",
                fisher_z=True,
            ),
        )
    }
)

# --------------------------------------------------------------------------- rulers and floors

# The three rulers of a clustering finding. Raw NCC is the primary one: the paper's claims are
# about the geometry of the representation, which nearest-centre accuracy measures. Whitened NCC
# (ZCA fitted on the evaluation training features) and the linear probe do not change when the
# features change by an invertible linear map, so a gain on raw NCC alone is *geometry only*:
# the representation was reshaped, and no class information was added that a linear map of the
# untrained features lacked.
RULERS = ("ncc", "whitened_ncc", "probe")
RULER_NAMES = {"ncc": "NCC", "whitened_ncc": "whitened NCC", "probe": "linear probe"}
# The clustering findings measured on every ruler, against both floors, and their configuration.
CLUSTERING = {
    "semantic_clustering": "VICReg",
    "regularization_clusters": "regularization only",
    "simclr_clusters": "SimCLR",
    "barlow_clusters": "Barlow Twins",
}
# A floor is beaten or not: any margin whose interval is above 0 (THRESHOLD_REASONS).
FLOOR_THRESHOLD = 0.0


@register_cache
@functools.lru_cache(maxsize=8)
def pixel_floor(prof: Profile) -> dict[str, float]:
    """The three rulers on the raw pixels of the profile's evaluation images: from the evidence
    store's manifest where it holds this profile, else computed
    (:func:`sslkit.scale.pixel_floor`)."""
    stored = store.manifest(prof)
    if stored.get("profile") == store.profile_settings(prof) and "pixel_floor" in stored:
        return stored["pixel_floor"]
    return scale.pixel_floor(prof)


def _pixel_floor_subsets(prof: Profile) -> dict[str, list]:
    """The pixel floor on each evaluation subset of the test images, as the store measured it
    (:class:`~sslkit.runs.NoSubsets` where it did not)."""
    stored = store.manifest(prof)
    if stored.get("profile") != store.profile_settings(prof) or "pixel_floor_subsets" not in stored:
        raise NoSubsets(f"the {prof.name} store keeps the pixel floor on all the test images only")
    return stored["pixel_floor_subsets"]


def final_vs_pixels(config, metric="ncc"):
    """A configuration's last-stage test ruler after training against the same ruler on raw
    pixels of the same images (the second floor)."""

    def compute(prof, seeds):
        k = current_subset()  # the floor on the same test images as the runs' values
        floor = pixel_floor(prof)[metric] if k is None else _pixel_floor_subsets(prof)[metric][k]
        return pd.DataFrame(
            [dict(seed=r.seed, value=r.final(metric), control=floor)
             for r in trained(config, prof, seeds)]
        )  # fmt: skip

    return compute


def ruler_keys(key: str) -> dict[tuple[str, str], str]:
    """The keys of one clustering finding on every (ruler, floor), e.g.
    ``ruler_keys("semantic_clustering")["probe", "pixels"]`` is
    ``"semantic_clustering_probe_over_pixels"``."""
    if key not in CLUSTERING:
        raise KeyError(f"{key!r} is not a clustering finding; these are: {', '.join(CLUSTERING)}")
    return {
        (ruler, floor): key + ("" if ruler == "ncc" else f"_{ruler}")
        + ("" if floor == "untrained" else "_over_pixels")
        for ruler in RULERS
        for floor in ("untrained", "pixels")
    }  # fmt: skip


def _ruler_variants(findings: dict[str, Finding]) -> dict[str, Finding]:
    """Each clustering finding on the two other rulers, and on all three against raw pixels."""
    variants = {}
    for key, config in CLUSTERING.items():
        base = findings[key]
        for (ruler, floor), k in ruler_keys(key).items():
            if k == key:
                continue
            name = RULER_NAMES[ruler]
            measurement = base.measurement.replace("test NCC accuracy", f"test {name} accuracy")
            if floor == "pixels":
                variants[k] = dataclasses.replace(
                    base,
                    key=k,
                    claim=f"{config} ends above raw pixels ({name})",
                    source="this book (the pixel floor)",
                    measurement=measurement,
                    control=f"{name} of raw pixels of the same images",
                    threshold=FLOOR_THRESHOLD,
                    compute=final_vs_pixels(config, ruler),
                )
            else:
                variants[k] = dataclasses.replace(
                    base,
                    key=k,
                    claim=f"{base.claim} ({name})",
                    measurement=measurement,
                    compute=final_vs_initial(config, ruler),
                )
    return variants


RULER_VARIANTS = frozenset(_ruler_variants(FINDINGS))
FINDINGS.update(_ruler_variants(FINDINGS))


def finding(key: str) -> Finding:
    """A finding by key, with a clear error listing the keys."""
    if key not in FINDINGS:
        raise KeyError(f"unknown finding {key!r}; known: {', '.join(FINDINGS)}")
    return FINDINGS[key]


def per_method_table(profile=None, seeds=None) -> pd.DataFrame:
    """One row per measurement of :data:`PER_METHOD`, one column per method of
    :data:`METHODS`: the effect, its 95% CI and the verdict."""
    rows = {}
    for key in PER_METHOD:
        row = {}
        for method, k in per_method(key).items():
            cells = finding(k).measure(profile, seeds).row()
            row[method] = f"{cells['effect']} [{cells['95% CI']}]: {cells['verdict']}"
        rows[finding(key).claim] = row
    return pd.DataFrame(rows).T


def measure_all(profile=None, keys=None) -> list[Verdict]:
    """The verdicts of every finding (or of ``keys``) on a profile."""
    return [finding(k).measure(profile) for k in (keys or FINDINGS)]
