"""The paper's study as named runs, and its findings measured on them.

Chapters 4–7 and :func:`findings` call the same named configurations, so every run is
trained once and shared through the cache. The claims are quoted from the abstract of
Ben-Shaul et al. (NeurIPS 2023); the numbers are always this build's own.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import pandas as pd

from .experiments import Run, run

__all__ = ["ABLATIONS", "RANDOMNESS", "ablation_runs", "random_target_run", "alignment", "regularization_ratio",
           "Finding", "FINDINGS", "findings"]

# VICReg weights (invariance λ, variance μ, covariance ν); the defaults are 25 / 25 / 1.
ABLATIONS: dict[str, dict] = {
    "full VICReg": {},
    "invariance only": {"var_weight": 0, "cov_weight": 0},
    "regularization only": {"inv_weight": 0},
    "invariance ×0.2": {"inv_weight": 5},
    "invariance ×4": {"inv_weight": 100},
    "regularization ×0.2": {"var_weight": 5, "cov_weight": 0.2},
    "regularization ×5": {"var_weight": 125, "cov_weight": 5},
}
# Fractions of the labels shuffled (class sizes kept) for the random-target study.
RANDOMNESS = (0.0, 0.1, 0.25, 0.5, 0.75, 1.0)


def regularization_ratio(loss: dict) -> float:
    """Weight of the regularization terms relative to the invariance term, each divided by
    its default: 1 for the default VICReg loss, 0 without regularization, ∞ without invariance."""
    inv = loss.get("inv_weight", 25.0) / 25.0
    reg = loss.get("var_weight", 25.0) / 25.0
    return math.inf if inv == 0 else reg / inv


def ablation_runs(profile=None, names=None) -> dict[str, Run]:
    """The VICReg ablation runs (all of :data:`ABLATIONS`, or ``names``)."""
    return {n: run("vicreg", profile, loss=ABLATIONS[n]) for n in (names or ABLATIONS)}


def random_target_run(profile=None) -> Run:
    """VICReg evaluated against targets of every randomness in :data:`RANDOMNESS`."""
    return run("vicreg", profile, randomness=RANDOMNESS)


def alignment(r: Run, metric: str = "ncc", split: str = "train", **where) -> pd.DataFrame:
    """Evaluation rows of the random targets only, with their ``randomness`` as a number."""
    ev = r.evals(metric=metric, split=split, **where)
    ev = ev[ev.target.str.startswith("random_")]
    return ev.assign(randomness=ev.target.str.removeprefix("random_").astype(float))


# --------------------------------------------------------------------------- findings

@dataclass(frozen=True)
class Finding:
    """A claim of the paper, the measurement that tests it here, and how to compute it.

    ``measure(profile)`` returns ``(number, held)``: the number as display text and
    whether this build supports the claim.
    """

    claim: str
    measurement: str
    measure: Callable[[object], tuple[str, bool]]


def _pts(x: float) -> str:
    return f"{100 * x:+.1f} pts"


def _semantic_clustering(profile):
    r = run("vicreg", profile)
    gain = r.final("ncc") - r.initial("ncc")
    return _pts(gain), gain > 0.05


def _regularization_drives(profile):
    runs = ablation_runs(profile, ["regularization only", "invariance only"])
    reg, inv = (r.final("ncc") - r.initial("ncc") for r in runs.values())
    return f"{_pts(reg)} vs {_pts(inv)}", reg > inv and reg > 0


def _invariance_collapses(profile):
    runs = ablation_runs(profile, ["invariance only", "full VICReg"])
    inv, full = (r.losses().embedding_std.iloc[-1] for r in runs.values())
    return f"std {inv:.3f} vs {full:.2f}", inv < 0.1 * full


def _final_targets(profile) -> pd.Series:
    r = random_target_run(profile)
    ev = alignment(r, stage="last", epoch=r.config["profile"]["epochs"])
    return ev.set_index("randomness").value.sort_index()


def _semantic_over_random(profile):
    s = _final_targets(profile)
    return f"{100 * s.iloc[0]:.1f}% vs {100 * s.iloc[-1]:.1f}%", s.iloc[0] > s.iloc[-1] + 0.1


def _less_random_better(profile):
    s = _final_targets(profile)
    rho = pd.Series(s.index).corr(pd.Series(s.values), method="spearman")
    return f"ρ = {rho:.2f}", rho < -0.9


def _gap_grows(profile):
    r = random_target_run(profile)
    ev = r.evals(metric="ncc", split="train", stage="last")
    gap = (ev[ev.target == "random_0"].set_index("epoch").value - ev[ev.target == "random_1"].set_index("epoch").value)
    return f"{_pts(gap.iloc[0])} → {_pts(gap.iloc[-1])}", gap.iloc[-1] > gap.iloc[0]


def _hierarchy(profile):
    r = run("vicreg", profile)
    gains = {t: r.final("ncc", target=t) - r.initial("ncc", target=t) for t in ("fine", "coarse")}
    return f"fine {_pts(gains['fine'])}, coarse {_pts(gains['coarse'])}", min(gains.values()) > 0


def _depth(profile):
    r = run("vicreg", profile)
    stages = r.backbone.stage_names
    last = r.config["profile"]["epochs"]
    ev = r.evals(metric="probe", split="test", epoch=last)
    deltas = {}
    for t in ("fine", "coarse"):
        v = ev[ev.target == t].set_index("stage").value
        deltas[t] = v[stages[-1]] - v[stages[0]]
    return f"fine {_pts(deltas['fine'])}, coarse {_pts(deltas['coarse'])}", min(deltas.values()) > 0


FINDINGS: tuple[Finding, ...] = (
    Finding("SSL training clusters samples by semantic class",
            "VICReg: test NCC accuracy (fine), last epoch minus initialisation", _semantic_clustering),
    Finding("Semantic clustering is driven by the regularization term",
            "NCC gain: regularization only vs invariance only", _regularization_drives),
    Finding("The invariance term alone collapses",
            "embedding std: invariance only vs full VICReg", _invariance_collapses),
    Finding("Representations align more with semantic classes than with random classes",
            "train NCC accuracy: true labels vs fully random targets", _semantic_over_random),
    Finding("The less random the targets, the better the alignment",
            "rank correlation of randomness with train NCC accuracy", _less_random_better),
    Finding("The semantic–random gap grows during training",
            "train NCC gap (true − random), initialisation → last epoch", _gap_grows),
    Finding("Clustering appears at several levels of the label hierarchy",
            "test NCC gain over training, fine and coarse labels", _hierarchy),
    Finding("Alignment increases when going deeper into the network",
            "test linear probe: last stage minus first stage", _depth),
)


def findings(profile=None) -> pd.DataFrame:
    """One row per finding: the claim, the measurement, this build's number, whether it held."""
    rows = []
    for f in FINDINGS:
        number, held = f.measure(profile)
        rows.append({"claim": f.claim, "measurement": f.measurement, "this build": number,
                     "held": "yes" if held else "no"})
    return pd.DataFrame(rows)
