"""The paper's claims: one :class:`~sslkit.findings.verdict.Finding` per claim the book states,
in one registry, :data:`FINDINGS` (the configurations they measure are :mod:`sslkit.configs`).

The registry is one expression: the findings as written (:data:`WRITTEN`, in the order of the
chapters), then each measurement of :data:`PER_METHOD` on SimCLR and Barlow Twins
(:func:`per_method`), then each clustering finding of :data:`CLUSTERING` on every ruler and
floor (:func:`ruler_keys`). The verdict rule is :mod:`~sslkit.findings.verdict`, the
measurements :mod:`~sslkit.findings.measurements`, the thresholds (frozen)
:mod:`~sslkit.findings.thresholds`, the floor of raw pixels :mod:`~sslkit.findings.floors`;
this module re-exports their names, so that ``from sslkit import paper`` reaches everything a
chapter uses. The chapters and chapter 7's table call the same objects, so no threshold is
written twice.
"""

from __future__ import annotations

import dataclasses

import pandas as pd

from ..experiment.configs import COMPARED_METHODS
from .floors import RULER_NAMES, RULERS, pixel_floor
from .measurements import (
    ASSOCIATION_CONFIGS,
    EQUAL_DIM,
    MIN_GAIN_TO_SHARE,
    WORKING_RATIOS,
    association,
    coarse_deeper_than_random_groups,
    collapse,
    compression,
    deep_vs_shallow,
    final_a_vs_final_b,
    final_vs_initial,
    final_vs_pixels,
    gain,
    gain_at,
    gain_vs_gain,
    level,
    pixels_vs_chance,
    pretext_vs_chance,
    ratio_slope,
    sample_before_semantic,
)
from .thresholds import (
    ABOVE_CHANCE,
    ASSOCIATION,
    COLLAPSE,
    COMPRESSION_REASON,
    DIFFERENCE,
    FLOOR_THRESHOLD,
    HEADROOM_REASON,
    MATCHED_HEADROOM_REASON,
    PROBE_GAIN,
    SHARE_REASON,
    SLOPE_REASON,
    THRESHOLD_REASONS,
    TWENTIETH,
)
from .verdict import BELOW, VERDICTS, Finding, Verdict, verdict_of

__all__ = [
    # the registry
    "WRITTEN",
    "FINDINGS",
    "finding",
    "measure_all",
    "measure_per_method",
    "per_method",
    "PER_METHOD",
    "VARIANTS",
    "CLUSTERING",
    "ruler_keys",
    "RULER_VARIANTS",
    "PRIMARY",
    "GROUPS",
    "ABSTRACT",
    "DERIVED",
    "ACCOUNT",
    # re-exported: the verdict rule
    "Finding",
    "Verdict",
    "verdict_of",
    "VERDICTS",
    "BELOW",
    # re-exported: the thresholds (frozen)
    "THRESHOLD_REASONS",
    "FLOOR_THRESHOLD",
    "SLOPE_REASON",
    # re-exported: the rulers and the floor of raw pixels
    "RULERS",
    "RULER_NAMES",
    "pixel_floor",
    # re-exported: measurements, each returns compute(profile, seeds) -> one row per seed
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
    "WORKING_RATIOS",
    "ratio_slope",
    "ASSOCIATION_CONFIGS",
    "association",
]

# --------------------------------------------------------------------------- where claims come from

ABSTRACT = "the paper's abstract"
# A testable reading the abstract implies but does not state (a gain over the untrained
# network, a ratio, random groupings, an effective rank): said as such.
DERIVED = "derived from the paper's abstract"
ACCOUNT = "the paper's account of its training dynamics, as reviews of the paper summarise it"

# --------------------------------------------------------------------------- the variants' keys

# The measurements of chapters 3–6 repeated for every joint-embedding method of
# COMPARED_METHODS: finding key -> measurement, given the configuration. The VICReg findings use
# the same factories, so a method's version can never drift from VICReg's.
_PER_METHOD = {
    "semantic_over_random": lambda config: gain_vs_gain("fine", "random_function", config=config),
    "coarse_beyond_fine": lambda config: gain_vs_gain("coarse", "coarse_random", config=config),
    "deeper_gains_more": lambda config: deep_vs_shallow(config=config),
    "compression": compression,
}
# The measurements repeated per method.
PER_METHOD = tuple(_PER_METHOD)


def per_method(key: str) -> dict[str, str]:
    """The keys of one measurement for every method of :data:`COMPARED_METHODS`, e.g.
    ``per_method("coarse_beyond_fine")["SimCLR"] == "coarse_beyond_fine_simclr"``."""
    if key not in _PER_METHOD:
        raise KeyError(f"{key!r} is not measured per method; these are: {', '.join(_PER_METHOD)}")
    return {m: key if m == "VICReg" else f"{key}_{m.split()[0].lower()}" for m in COMPARED_METHODS}


# The clustering findings measured on every ruler, against both floors, and their configuration.
CLUSTERING = {
    "semantic_clustering": "VICReg",
    "regularization_clusters": "regularization only",
    "simclr_clusters": "SimCLR",
    "barlow_clusters": "Barlow Twins",
}


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


# The keys of the per-method repeats and of the clustering findings on other rulers and floors.
VARIANTS = frozenset(k for key in PER_METHOD for k in per_method(key).values() if k != key)
RULER_VARIANTS = frozenset(k for key in CLUSTERING for k in ruler_keys(key).values() if k != key)


def _on_method(base: Finding, method: str, key: str) -> Finding:
    """A VICReg finding of :data:`PER_METHOD` on ``method``'s runs: the same claim and
    threshold, measured by the same factory."""
    return dataclasses.replace(
        base,
        key=key,
        claim=f"{base.claim} ({method})",
        measurement=base.measurement.replace("VICReg: ", "") + f" ({method})",
        compute=_PER_METHOD[base.key](method),
    )


def _on_ruler(base: Finding, ruler: str, floor: str, key: str) -> Finding:
    """A clustering finding of :data:`CLUSTERING` on another ruler, against the untrained
    network (the same threshold) or raw pixels (:data:`FLOOR_THRESHOLD`)."""
    config, name = CLUSTERING[base.key], RULER_NAMES[ruler]
    measurement = base.measurement.replace("test NCC accuracy", f"test {name} accuracy")
    if floor == "untrained":
        return dataclasses.replace(
            base,
            key=key,
            claim=f"{base.claim} ({name})",
            measurement=measurement,
            compute=final_vs_initial(config, ruler),
        )
    return dataclasses.replace(
        base,
        key=key,
        claim=f"{config} ends above raw pixels ({name})",
        source="this book (the pixel floor)",
        measurement=measurement,
        control=f"{name} of raw pixels of the same images",
        threshold=FLOOR_THRESHOLD,
        compute=final_vs_pixels(config, ruler),
    )


# --------------------------------------------------------------------------- the registry

# The findings as written, one per claim, in the order of the chapters.
WRITTEN: dict[str, Finding] = {
    f.key: f
    for f in (
        # chapter 0: the floor
        Finding(
            "pixels_cluster",
            "Raw pixels already cluster by class above chance",
            "this book (a baseline)",
            "test NCC accuracy of raw pixels, on a random subset of images per seed",
            "chance (1 in K)",
            ABOVE_CHANCE,
            pixels_vs_chance,
        ),
        # chapter 1: pretext tasks
        Finding(
            "rotation_learned",
            "A network learns to predict an image's rotation",
            "Gidaris et al. (2018)",
            "rotation accuracy on the training batches, last epoch",
            "chance (1 in 4)",
            ABOVE_CHANCE,
            pretext_vs_chance("rotation", 0.25),
        ),
        Finding(
            "jigsaw_learned",
            "A network learns to solve 2×2 jigsaw puzzles",
            "Noroozi & Favaro (2016)",
            "permutation accuracy on the training batches, last epoch",
            "chance (1 in 24)",
            ABOVE_CHANCE,
            pretext_vs_chance("jigsaw", 1 / 24),
        ),
        Finding(
            "rotation_probe",
            "Rotation prediction makes the classes more linearly separable",
            "Gidaris et al. (2018)",
            "test linear-probe accuracy, last stage, after rotation training",
            "the same network untrained",
            PROBE_GAIN,
            final_vs_initial("rotation", "probe"),
        ),
        # chapter 2: joint embedding
        Finding(
            "collapse",
            "With the invariance term alone, the embeddings collapse",
            "VICReg (Bardes et al., 2022)",
            "−log10 of the embedding spread after training, invariance only",
            "the same for full VICReg",
            COLLAPSE,
            collapse,
            unit="orders of magnitude",
        ),
        Finding(
            "simclr_clusters",
            "SimCLR clusters the classes without labels",
            "SimCLR (Chen et al., 2020)",
            "test NCC accuracy (fine), last stage",
            "the same network untrained",
            TWENTIETH,
            final_vs_initial("SimCLR"),
        ),
        Finding(
            "barlow_clusters",
            "Barlow Twins clusters the classes without labels",
            "Barlow Twins (Zbontar et al., 2021)",
            "test NCC accuracy (fine), last stage",
            "the same network untrained",
            TWENTIETH,
            final_vs_initial("Barlow Twins"),
        ),
        # chapter 3: clustering
        Finding(
            "semantic_clustering",
            "SSL training clusters samples by semantic class",
            ABSTRACT,
            "VICReg: test NCC accuracy (fine), last stage",
            "the same network untrained",
            TWENTIETH,
            final_vs_initial("VICReg"),
        ),
        Finding(
            "sample_clustering",
            "SSL training clusters the views of each image (sample level)",
            "what the loss asks (views of one image)",
            "VICReg: sample-level NCC accuracy, last stage",
            "the same network untrained",
            TWENTIETH,
            final_vs_initial("VICReg", "sample_ncc", target="sample"),
        ),
        Finding(
            "supervised_tighter",
            "Training with labels clusters the training set more tightly than SSL",
            "neural collapse (Papyan et al., 2020)",
            "train NCC accuracy (fine), supervised",
            "train NCC accuracy, VICReg",
            DIFFERENCE,
            final_a_vs_final_b("supervised", "VICReg", split="train"),
        ),
        # chapter 4: regularization vs invariance
        Finding(
            "regularization_clusters",
            "The regularization term alone clusters the classes",
            DERIVED,
            "VICReg without invariance: test NCC accuracy (fine)",
            "the same network untrained",
            TWENTIETH,
            final_vs_initial("regularization only"),
        ),
        Finding(
            "ratio_drives_clustering",
            "More weight on the regularization term, more semantic clustering (two arms only; "
            "secondary to the slope over all the working ratios, ratio_slope: the ratio-0.2 arm "
            "ends below its untrained network)",
            DERIVED,
            "test NCC accuracy (fine), regularization/invariance ratio 5",
            "the same at ratio 0.2",
            DIFFERENCE,
            final_a_vs_final_b("ratio 5", "ratio 0.2"),
        ),
        Finding(
            "invariance_drives_sample",
            "More weight on the invariance term, tighter sample-level clusters",
            ACCOUNT,
            "sample-level NCC accuracy, regularization/invariance ratio 0.2",
            "the same at ratio 5",
            DIFFERENCE,
            final_a_vs_final_b("ratio 0.2", "ratio 5", metric="sample_ncc", target="sample"),
        ),
        Finding(
            "sample_before_semantic",
            "Sample-level clustering rises before semantic clustering",
            ACCOUNT,
            "VICReg: share of the final sample-level NCC gain reached after the first epoch",
            "the same share for semantic (fine) NCC",
            TWENTIETH,
            sample_before_semantic,
            reason=SHARE_REASON,
        ),
        Finding(
            "barlow_redundancy_clusters",
            "Barlow Twins' redundancy-reduction term alone clusters the classes",
            "the paper's claim, carried to Barlow Twins",
            "Barlow Twins without the invariance term: test NCC (fine)",
            "the same network untrained",
            TWENTIETH,
            final_vs_initial("Barlow redundancy only"),
        ),
        Finding(
            "barlow_redundancy_over_invariance",
            "In Barlow Twins, the redundancy term alone clusters more "
            "than the invariance term alone",
            "the paper's claim, carried to Barlow Twins",
            "test NCC (fine), redundancy-reduction term only",
            "the same, invariance term only",
            DIFFERENCE,
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
            TWENTIETH,
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
            TWENTIETH,
            gain_vs_gain("fine", "random_function", headroom=True),
            unit="points of headroom",
            reason=HEADROOM_REASON,
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
            TWENTIETH,
            gain_vs_gain("fine", "untrained_kmeans", headroom=True),
            unit="points of headroom",
            reason=MATCHED_HEADROOM_REASON,
        ),
        # chapter 6: hierarchy and depth
        Finding(
            "coarse_clustering",
            "SSL training raises NCC at the coarse level (any grouping of clustered classes "
            "would; the next finding is the control)",
            DERIVED,
            "VICReg: test NCC accuracy (coarse), last stage",
            "the same network untrained",
            TWENTIETH,
            final_vs_initial("VICReg", target="coarse"),
        ),
        Finding(
            "coarse_beyond_fine",
            "The coarse level gains more than random groupings of the same fine classes",
            DERIVED,
            "gain over the untrained network of test NCC accuracy, coarse groups",
            "the same gain for random groups of the same sizes",
            DIFFERENCE,
            _PER_METHOD["coarse_beyond_fine"]("VICReg"),
        ),
        Finding(
            "deeper_gains_more",
            "Training raises alignment more in deeper layers",
            DERIVED,
            "gain over the untrained network of test NCC accuracy (fine), last stage, at equal "
            "dimension",
            "the same gain at the first stage",
            DIFFERENCE,
            _PER_METHOD["deeper_gains_more"]("VICReg"),
        ),
        Finding(
            "deeper_gains_more_full_width",
            "Training raises alignment more in deeper layers (each stage at its full width)",
            DERIVED,
            "gain over the untrained network of test NCC accuracy (fine), last stage, full width",
            "the same gain at the first stage, full width",
            DIFFERENCE,
            deep_vs_shallow(dim=None),
        ),
        Finding(
            "coarse_deeper_than_fine",
            "Depth adds more for the coarse level than for random groupings of the same classes",
            DERIVED,
            "coarse level: gain at the last stage minus gain at the first, at equal dimension",
            "the same for random groups of the same sizes",
            DIFFERENCE,
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
            TWENTIETH,
            _PER_METHOD["compression"]("VICReg"),
            reason=COMPRESSION_REASON,
            lower_is_better=True,
        ),
        # the ratio sweep's dose-response, on the three rulers (read in chapter 7)
        *(
            Finding(
                "ratio_slope" + ("" if metric == "ncc" else f"_{metric}"),
                "More weight on the regularization term, more semantic clustering (the "
                f"dose-response, {name})",
                DERIVED,
                f"per seed, slope of test {name} accuracy (fine) against log10 of the "
                "regularization/invariance ratio, ratios 0.5 to 5",
                "no dose-response (slope 0)",
                DIFFERENCE,
                ratio_slope(metric),
                unit="points per tenfold ratio",
                reason=SLOPE_REASON,
            )
            for metric, name in RULER_NAMES.items()
        ),
        # associations across the SSL runs (read in chapter 7)
        Finding(
            "clustering_helps_classification",
            "The more a run clusters the classes, the better its features classify them",
            DERIVED + " (clustering enhances downstream classification)",
            "per seed, Spearman correlation across the SSL runs and their epochs of the test "
            "NCC gain over the untrained network and the linear-probe gain",
            "no association (0)",
            ASSOCIATION,
            association(gain_at("ncc"), gain_at("probe"), over_epochs=True),
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
            ASSOCIATION,
            association(gain_at("ncc"), lambda r, e: -gain_at("erank")(r, e) / r.out_dim),
            unit="ρ",
            fisher_z=True,
        ),
    )
}

# Every finding: those written, then the per-method repeats, then the rulers and floors.
FINDINGS: dict[str, Finding] = {
    **WRITTEN,
    **{
        k: _on_method(WRITTEN[key], method, k)
        for key in PER_METHOD
        for method, k in per_method(key).items()
        if k != key
    },
    **{
        k: _on_ruler(WRITTEN[key], ruler, floor, k)
        for key in CLUSTERING
        for (ruler, floor), k in ruler_keys(key).items()
        if k != key
    },
}

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
        "regularization_clusters", "ratio_slope", "ratio_drives_clustering",
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


def finding(key: str) -> Finding:
    """A finding by key, with a clear error listing the keys."""
    if key not in FINDINGS:
        raise KeyError(f"unknown finding {key!r}; known: {', '.join(FINDINGS)}")
    return FINDINGS[key]


def measure_all(profile=None, keys=None) -> list[Verdict]:
    """The verdicts of every finding (or of ``keys``) on a profile."""
    return [finding(k).measure(profile) for k in (keys or FINDINGS)]


def measure_per_method(profile=None, seeds=None) -> pd.DataFrame:
    """Measure every finding of :data:`PER_METHOD` on each method of
    :data:`COMPARED_METHODS`: one row per measurement, one column per method, each cell the
    effect, its 95% CI and the verdict (the book's table of the same, beside the reference
    evidence, is :func:`sslkit.book.per_method_table`)."""
    rows = {}
    for key in PER_METHOD:
        row = {}
        for method, k in per_method(key).items():
            cells = finding(k).measure(profile, seeds).row()
            row[method] = f"{cells['effect']} [{cells['95% CI']}]: {cells['verdict']}"
        rows[finding(key).claim] = row
    return pd.DataFrame(rows).T
