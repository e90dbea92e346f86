"""The book's verdicts: what the prose states of every finding. **Frozen.**

What is frozen: the verdict of every finding (:data:`sslkit.paper.FINDINGS`) on the
``reference`` evidence store (:mod:`sslkit.store`, ``sslkit/evidence/reference/``), read once,
on 2026-11-30, from its 112 runs (14 configurations × seeds 0–7, listed above
:data:`RECORDED`), against thresholds fixed before (:mod:`sslkit.findings.thresholds`). A
build of the book fails where a verdict of the store differs from the one recorded here, so
the prose cannot contradict the numbers; nothing here is changed to make a build pass.

Who writes it: a person, by hand, once per evidence store: after the store is built (or
rebuilt) and verified, every verdict is read from it (``sslkit.paper.measure_all("reference")``)
and written here, the whole table in the same commit as the store and the prose that states
it. No code writes this file; a finding added later gets its verdict the same way, once, after
its runs are in the store.

Live runs (the chapters' ``cpu`` runs, a reader's Colab run) are shown beside these and never
checked against them: they are smaller, with 3 seeds, and may read otherwise.
"""

from __future__ import annotations

__all__ = ["RECORDED", "PROFILE", "DECIDED"]

# The profile whose stored evidence the verdicts below were read from.
PROFILE = "reference"
# Recorded on 2026-11-30 from the store's 112 runs: every configuration the findings use
# (VICReg, regularization only, SimCLR, Barlow Twins, supervised, invariance only, ratios 0.2,
# 0.5, 2 and 5, Barlow invariance only, Barlow redundancy only, rotation, jigsaw), seeds 0-7,
# with intervals that count the seeds and, for test accuracies, 5 evaluation subsets of the
# test images. A finding whose runs the store does not hold would be stated from the chapters'
# live `cpu` runs; none is.
# On 2026-12-06 the rule gained two readings (sslkit.findings.verdict): 14 verdicts below were
# renamed, none moved: "inconclusive" with the interval above 0 became "positive, size
# undecided", "not held" with the interval below 0 became "reversed" (same store, same
# intervals, same thresholds).
RECORDED: dict[str, str] = {
    "pixels_cluster": "held",
    "rotation_learned": "held",
    "jigsaw_learned": "held",
    "rotation_probe": "held",
    "collapse": "held",
    "simclr_clusters": "held",
    "barlow_clusters": "held",
    "semantic_clustering": "held",
    "sample_clustering": "held",
    "supervised_tighter": "held",
    "regularization_clusters": "held",
    "ratio_drives_clustering": "held",
    "invariance_drives_sample": "reversed",
    "sample_before_semantic": "not held",
    "barlow_redundancy_clusters": "reversed",
    "barlow_redundancy_over_invariance": "reversed",
    "semantic_over_random": "held",
    "semantic_over_random_headroom": "held",
    "semantic_over_matched_random": "held",
    "coarse_clustering": "held",
    "coarse_beyond_fine": "positive, size undecided",
    "deeper_gains_more": "inconclusive",
    "deeper_gains_more_full_width": "inconclusive",
    "coarse_deeper_than_fine": "reversed",
    "compression": "held",
    "semantic_over_random_simclr": "positive, size undecided",
    "semantic_over_random_barlow": "held",
    "coarse_beyond_fine_simclr": "held",
    "coarse_beyond_fine_barlow": "held",
    "deeper_gains_more_simclr": "inconclusive",
    "deeper_gains_more_barlow": "inconclusive",
    "compression_simclr": "held",
    "compression_barlow": "held",
    "ratio_slope": "positive, size undecided",
    "ratio_slope_whitened_ncc": "not held",
    "ratio_slope_probe": "not held",
    "clustering_helps_classification": "not held",
    "compression_tracks_clustering": "reversed",
    "semantic_clustering_over_pixels": "inconclusive",
    "semantic_clustering_whitened_ncc": "positive, size undecided",
    "semantic_clustering_whitened_ncc_over_pixels": "held",
    "semantic_clustering_probe": "positive, size undecided",
    "semantic_clustering_probe_over_pixels": "inconclusive",
    "regularization_clusters_over_pixels": "held",
    "regularization_clusters_whitened_ncc": "not held",
    "regularization_clusters_whitened_ncc_over_pixels": "inconclusive",
    "regularization_clusters_probe": "not held",
    "regularization_clusters_probe_over_pixels": "reversed",
    "simclr_clusters_over_pixels": "inconclusive",
    "simclr_clusters_whitened_ncc": "positive, size undecided",
    "simclr_clusters_whitened_ncc_over_pixels": "held",
    "simclr_clusters_probe": "held",
    "simclr_clusters_probe_over_pixels": "inconclusive",
    "barlow_clusters_over_pixels": "inconclusive",
    "barlow_clusters_whitened_ncc": "positive, size undecided",
    "barlow_clusters_whitened_ncc_over_pixels": "held",
    "barlow_clusters_probe": "positive, size undecided",
    "barlow_clusters_probe_over_pixels": "inconclusive",
}


# The verdicts of the findings decided on the per-image evidence (sslkit.findings.decide, on
# sslkit/evidence/images/): written by hand once its runs were built and read.
# Recorded on 2026-12-06 from the per-image evidence's 64 runs, 8 seeds each: VICReg,
# regularization only, invariance only, supervised, SimCLR; VICReg, supervised and SimCLR
# trained long-tailed. Every test image, intervals over seeds x images; thresholds written
# before the runs were read.
DECIDED: dict[str, str] = {
    "vicreg_over_pixels_ncc": "held",
    "vicreg_over_pixels_whitened_ncc": "held",
    "vicreg_over_pixels_probe": "held",
    "regularization_over_pixels_ncc": "held",
    "regularization_over_pixels_whitened_ncc": "held",
    "regularization_over_pixels_probe": "reversed",
    "simclr_over_pixels_ncc": "held",
    "simclr_over_pixels_whitened_ncc": "held",
    "simclr_over_pixels_probe": "held",
    "clusters_ncc": "held",
    "clusters_whitened_ncc": "positive, size undecided",
    "clusters_probe": "held",
    "regularization_gain_ncc": "held",
    "regularization_over_invariance_ncc": "held",
    "both_terms_ncc": "not held",
    "interaction_ncc": "held",
    "regularization_gain_whitened_ncc": "positive, below threshold",
    "regularization_over_invariance_whitened_ncc": "held",
    "both_terms_whitened_ncc": "held",
    "interaction_whitened_ncc": "held",
    "regularization_gain_probe": "reversed",
    "regularization_over_invariance_probe": "inconclusive",
    "both_terms_probe": "held",
    "interaction_probe": "held",
    "semantic_over_random": "held",
    "hierarchy_matched_ncc": "positive, size undecided",
    "hierarchy_matched_whitened_ncc": "reversed",
    "hierarchy_matched_probe": "reversed",
    "hierarchy_matched_ncc_supervised": "not held",
    "hierarchy_matched_whitened_ncc_supervised": "reversed",
    "hierarchy_matched_probe_supervised": "reversed",
    "depth_slope_ncc_equal": "inconclusive",
    "depth_slope_whitened_ncc_equal": "held",
    "depth_slope_probe_equal": "held",
    "depth_slope_ncc_full": "inconclusive",
    "depth_slope_whitened_ncc_full": "positive, size undecided",
    "depth_slope_probe_full": "held",
    "depth_slope_ncc_equal_supervised": "held",
    "depth_slope_whitened_ncc_equal_supervised": "held",
    "depth_slope_probe_equal_supervised": "held",
    "depth_slope_ncc_full_supervised": "held",
    "depth_slope_whitened_ncc_full_supervised": "held",
    "depth_slope_probe_full_supervised": "held",
    "clustering_helps_classification_ncc": "reversed",
    "clustering_helps_classification_whitened_ncc": "held",
    "compression_tracks_clustering": "reversed",
    "linear_reshaping": "reversed",
    "reshaping_over_other_network": "reversed",
    "class_variance_on_top_regularization": "reversed",
    "class_variance_on_top_vicreg": "positive, below threshold",
    "imbalance_fall_vicreg_ncc": "not held",
    "imbalance_fall_vicreg_whitened_ncc": "reversed",
    "imbalance_fall_vicreg_probe": "reversed",
    "balanced_clusters_vicreg": "positive, below threshold",
    "imbalance_fall_simclr_ncc": "positive, below threshold",
    "imbalance_fall_simclr_whitened_ncc": "not held",
    "imbalance_fall_simclr_probe": "not held",
    "balanced_clusters_simclr": "positive, below threshold",
    "rankme_probe": "not held",
    "rankme_fewshot": "held",
}
