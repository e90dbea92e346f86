"""The thresholds of the findings, each with its reason. **Frozen.**

What is frozen: every number below is the size of effect a claim must exceed (its whole 95%
interval above it) to be **held** (:func:`sslkit.findings.verdict.verdict_of`). Each was fixed,
with its reason, before the runs it decides were read, and none is ever moved to make a claim
pass or fail: a threshold changed after its verdict was read would turn the verdict into a
choice. The verdicts read against these thresholds on the ``reference`` evidence are recorded
in :mod:`sslkit.findings.recorded`.

Who writes it: a person, by hand, and only before the evidence a threshold decides is read
(a new finding, a new control); the commit says why. No code writes this file. A claim that
needs another size of effect is a new finding with a threshold of its own, fixed here before
its runs are read. Each :class:`~sslkit.findings.verdict.Finding` of
:mod:`sslkit.findings.paper` takes its threshold from here, so none is written twice (the
chapters and chapter 7's table read the finding).
"""

from __future__ import annotations

__all__ = [
    "TWENTIETH",
    "DIFFERENCE",
    "PROBE_GAIN",
    "ABOVE_CHANCE",
    "COLLAPSE",
    "FLOOR_THRESHOLD",
    "ASSOCIATION",
    "THRESHOLD_REASONS",
    "SLOPE_REASON",
    "SHARE_REASON",
    "HEADROOM_REASON",
    "MATCHED_HEADROOM_REASON",
    "COMPRESSION_REASON",
    "DEPTH_SLOPE",
    "R2_DIFFERENCE",
    "SHARE_GAIN",
    "BALANCE_DIFFERENCE",
    "DEPTH_REASON",
    "MATCHED_REASON",
    "R2_REASON",
    "SHARE_GAIN_REASON",
    "IMBALANCE_REASON",
    "BALANCE_REASON",
]

# The thresholds, in the unit of their finding (accuracy as a fraction: 0.05 is 5 points).
TWENTIETH = 0.05  # a gain over a control, a twentieth of its scale
DIFFERENCE = 0.02  # two gains or two runs, each already against its own control
PROBE_GAIN = 0.01  # a linear probe after a pretext task
ABOVE_CHANCE = 0.10  # a task (or raw pixels) above chance
COLLAPSE = 1.0  # orders of magnitude of the embedding spread
FLOOR_THRESHOLD = 0.0  # a floor (the untrained network, raw pixels) is beaten or not
ASSOCIATION = 0.3  # a rank correlation across configurations

# Why each threshold is what it is (the reason a finding shows, where it has none of its own).
THRESHOLD_REASONS = {
    TWENTIETH: "5 points of accuracy: the smallest gain over a control that the book calls "
    "clustering (a twentieth of the scale)",
    DIFFERENCE: "2 points: a difference between two gains or two runs, each already measured "
    "against its own control, so a smaller margin still orders them",
    PROBE_GAIN: "1 point: a linear probe after a pretext task; any gain the interval puts above "
    "1 point counts as more separable",
    ABOVE_CHANCE: "10 points above chance: a task learned beyond doubt, not a lucky batch",
    COLLAPSE: "one order of magnitude of embedding spread: a collapse, not a fluctuation",
    FLOOR_THRESHOLD: "a floor is to be beaten at all: any margin whose whole interval is above 0",
    ASSOCIATION: "a rank correlation of 0.3 across configurations: the conventional lower edge "
    "of a moderate association",
}

# The reasons of the findings whose threshold is read on a scale of its own.
SLOPE_REASON = (
    "2 points of accuracy per tenfold ratio: over the working range (a tenfold span) the most "
    "and least regularized runs then differ by about 2 points, the margin the book asks of any "
    "difference between two runs"
)
SHARE_REASON = (
    "0.05 of the final gain: the sample level must have reached a twentieth more of its gain "
    "than the semantic level at the first evaluation to count as first"
)
HEADROOM_REASON = (
    "5 points of headroom: the same twentieth as the 5-point threshold of the raw gains, on "
    "the scale of the room each target had (left to gain for a rise, there to lose for a "
    "fall; targets that start at different levels have different room in raw points)"
)
MATCHED_HEADROOM_REASON = (
    "5 points of headroom, the threshold of the other headroom comparison, fixed before this "
    "control was measured on any stored run"
)
COMPRESSION_REASON = (
    "0.05 of the width: a twentieth of the feature directions given up, the smallest "
    "compression the book calls one"
)

# --- The findings of the per-image evidence (sslkit.findings.images) and of "Why SSL clusters"
# (chapter 05b). Written on 2026-12-06, before any run of that evidence was trained or read.
# Each reuses a scale above where one fits, so that no new number is invented for a claim.
DEPTH_SLOPE = 0.01  # points of gain over the untrained network, per stage (a slope)
R2_DIFFERENCE = 0.05  # held-out R² of a linear map, between two configurations
SHARE_GAIN = 0.05  # a share of variance (between-class variance in the top directions)
BALANCE_DIFFERENCE = 0.05  # normalised entropy of cluster sizes, between two methods

DEPTH_REASON = (
    "1 point per stage: over the four stages the last then gains 3 points more than the first, "
    "above the 2-point margin the book asks of a difference between two gains"
)
MATCHED_REASON = (
    "2 points: the garment grouping's gain minus the mean gain of the groupings matched to it "
    "on the untrained network, a difference between two gains each against its own control"
)
R2_REASON = (
    "0.05 of R²: a twentieth of the scale of a share of variance explained, the twentieth the "
    "book asks of a gain over a control"
)
SHARE_GAIN_REASON = (
    "0.05 of the between-class variance: a twentieth of its scale moved into the top "
    "principal directions"
)
IMBALANCE_REASON = (
    "2 points: how much more SSL's clustering falls than supervised training's when the same "
    "number of training images is long-tailed, a difference between two falls each against its "
    "own balanced run"
)
BALANCE_REASON = (
    "0.05 of normalised entropy (0: one cluster, 1: equal sizes): a twentieth of its scale"
)
