"""The findings the per-image evidence decides (:mod:`sslkit.findings.images`): the claims the
``reference`` store left undecided by design, and chapter 05b's tests of why SSL clusters.

Every effect is paired: a trained network against the untrained network of the same seed, on
the same test images. Where the evidence keeps per-image results, the interval is
:func:`sslkit.experiment.analysis.crossed_interval` over seeds × all 10,000 test images (which
test images exist counts as much as which seeds were drawn); where a finding reads one number
per run (an R², a share, an entropy), it is a t-interval over seeds. The verdict rule is
:func:`sslkit.findings.verdict.verdict_of`, the thresholds are :mod:`sslkit.findings.thresholds`
(written before this evidence was read).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
import torch
from scipy import stats

from ..experiment.analysis import (
    correlation_interval,
    crossed_interval,
    crossed_seeds_for_power,
    holm,
    one_sided_p,
    t_interval,
)
from ..experiment.configs import RATIOS, store_only, trained
from ..learn.augment import pixel_features
from ..measure.geometry import linear_predictability
from ..measure.metrics import linear_probe, ncc_accuracy, whitened_ncc_accuracy, zca_whitener
from ..runtime import register_cache
from .floors import RULERS
from .images import MATCHED_PROBES, ImageEvidence, _eval_sets, _features, _untrained, load_evidence
from .measurements import ASSOCIATION_CONFIGS, _spearman
from .paper import finding
from .thresholds import (
    ASSOCIATION,
    BALANCE_DIFFERENCE,
    BALANCE_REASON,
    DEPTH_REASON,
    DEPTH_SLOPE,
    DIFFERENCE,
    FLOOR_THRESHOLD,
    IMBALANCE_REASON,
    MATCHED_REASON,
    R2_DIFFERENCE,
    R2_REASON,
    SHARE_GAIN,
    SHARE_GAIN_REASON,
    THRESHOLD_REASONS,
    TWENTIETH,
)
from .verdict import verdict_of

__all__ = [
    "Decision",
    "RULER_LABELS",
    "RANKME_CONFIGS",
    "rankme",
    "rankme_rho",
    "decisions",
    "decision",
    "depth_profile",
    "pixel_bits",
    "linear_calibration",
]

RULER_LABELS = {"ncc": "raw NCC", "whitened_ncc": "whitened NCC", "probe": "linear probe"}
LAST = 3  # the last of the four stages
END = 10  # the last epoch of the reference profile
# depth: the per-image slope of the gain over the four stages is Σ_k c_k gain_k
_SLOPE = np.array([-1.5, -0.5, 0.5, 1.5]) / 5.0


@dataclass(frozen=True)
class Decision:
    """One finding on the per-image evidence: what was measured against what, its effect, 95%
    interval and verdict."""

    key: str
    claim: str
    ruler: str
    measurement: str
    control: str
    threshold: float
    reason: str
    effect: float
    lo: float
    hi: float
    seeds: int
    images: int
    verdict: str
    unit: str = "points"
    primary: bool = False
    p: float = float("nan")  # one-sided p of H0: effect ≤ threshold (Holm's input)
    # seeds (on the same test images) for 80% power to hold, if the observed effect is true;
    # 0: not computed (a per-seed finding), -1: no number of seeds would do
    seeds_for_power: int = 0

    def __str__(self) -> str:
        scale = 100 if self.unit == "points" else 1
        digits = 1 if self.unit == "points" else 2
        return (
            f"{self.effect * scale:+.{digits}f} [{self.lo * scale:+.{digits}f}, "
            f"{self.hi * scale:+.{digits}f}]"
        )


def _gain(ev: ImageEvidence, config: str, name: str, seeds, lt=False, stage=LAST, dim="full"):
    """Per-image gain of ``config`` over its untrained network (S×N)."""
    return ev.bits(config, f"{name}/{stage}/{dim}/{END}", seeds, lt) - ev.bits(
        config, f"{name}/{stage}/{dim}/0", seeds, lt
    )


def _common(ev, *configs, lt=(False,)):
    sets = [set(ev.seeds(c, tail)) for c in configs for tail in lt]
    return sorted(set.intersection(*sets)) if sets else []


def _decide(key, claim, ruler, measurement, control, threshold, d, reason=None, primary=False):
    p = np.nan
    if d.shape[0] < 2:  # one seed: no interval (a build still under way)
        mean, lo, hi = (float(d.mean()) if d.size else np.nan), -np.inf, np.inf
    else:
        mean, lo, hi, df = crossed_interval(d)
        se = (hi - lo) / 2 / stats.t.ppf(0.975, df) if np.isfinite(df) else 0.0
        p = float(stats.t.sf((mean - threshold) / se, df)) if se > 0 else float(mean <= threshold)
    need = crossed_seeds_for_power(d, threshold) if d.shape[0] >= 2 else None
    return Decision(
        key, claim, ruler, measurement, control, threshold,
        reason or THRESHOLD_REASONS[threshold], mean, lo, hi, d.shape[0], d.shape[1],
        verdict_of(lo, hi, threshold, complete=d.shape[0] >= 2), primary=primary, p=p,
        seeds_for_power=-1 if need is None else need,
    )  # fmt: skip


def _decide_seeds(key, claim, ruler, measurement, control, threshold, values, reason, unit,
                  primary=False):  # fmt: skip
    values = np.asarray(values, dtype=float)
    if len(values) < 2:
        mean, lo, hi = (float(values.mean()) if len(values) else np.nan), -np.inf, np.inf
    else:
        mean, lo, hi = t_interval(values)
    return Decision(
        key, claim, ruler, measurement, control, threshold, reason, mean, lo, hi, len(values),
        0, verdict_of(lo, hi, threshold, complete=len(values) >= 2), unit=unit, primary=primary,
        p=one_sided_p(values, threshold),
    )  # fmt: skip


# pixel floors and calibrations, computed once per process (no training involved)
_COMPUTED: dict = register_cache({})


def pixel_bits(ruler: str) -> np.ndarray:
    """Per-image correctness of ``ruler`` on raw pixels (scaled to [0, 1]) of all the test
    images, centres, whitener and probe fitted on the evaluation-train images: the second
    floor, image by image."""
    if ruler not in _COMPUTED:
        eval_train, test = _eval_sets()
        xtr, xte = pixel_features(eval_train.images), pixel_features(test.images)
        fn = dict(ncc=ncc_accuracy, whitened_ncc=whitened_ncc_accuracy)
        if ruler == "probe":
            correct = linear_probe(xtr, eval_train.labels, xte, test.labels, per_sample=True)
        else:
            correct = fn[ruler](xte, test.labels, xtr, eval_train.labels, per_sample=True)
        _COMPUTED[ruler] = correct.cpu().numpy().astype(float)
    return _COMPUTED[ruler]


def _over_pixels(ev: ImageEvidence) -> list:
    """Each clustering configuration's last stage against raw pixels of the same images."""
    out = []
    for config in ("VICReg", "regularization only", "SimCLR"):
        seeds = _common(ev, config)
        if len(seeds) < 2:
            continue
        for ruler in RULERS:
            label = RULER_LABELS[ruler]
            final = ev.bits(config, f"fine/{ruler}/{LAST}/full/{END}", seeds)
            out.append(_decide(
                f"{config.split()[0].lower()}_over_pixels_{ruler}",
                "SSL clusters by semantic class", label,
                f"{config}: test {label} accuracy (fine), last stage",
                f"{label} of raw pixels of the same images", FLOOR_THRESHOLD,
                final - pixel_bits(ruler)[None, :],
                primary=config == "VICReg" and ruler == "whitened_ncc",
            ))  # fmt: skip
    return out


def _claims(ev: ImageEvidence) -> list:
    out = _over_pixels(ev)
    vic = _common(ev, "VICReg")
    for ruler in RULERS:
        label = RULER_LABELS[ruler]
        out.append(_decide(
            f"clusters_{ruler}", "SSL clusters by semantic class", label,
            f"VICReg: test {label} accuracy (fine), last stage", "the same network untrained",
            TWENTIETH, _gain(ev, "VICReg", f"fine/{ruler}", vic), primary=ruler == "whitened_ncc",
        ))  # fmt: skip
    # claim 2: the 2×2 of VICReg's terms
    both = _common(ev, "VICReg", "regularization only", "invariance only")
    for ruler in RULERS:
        label = RULER_LABELS[ruler]
        g = {
            c: _gain(ev, c, f"fine/{ruler}", both)
            for c in ("VICReg", "regularization only", "invariance only")
        }
        out += [
            _decide(f"regularization_gain_{ruler}", "driven by the regularization term", label,
                    "regularization only: gain over the untrained network", "0 (no gain)",
                    TWENTIETH, g["regularization only"], primary=ruler == "whitened_ncc"),
            _decide(f"regularization_over_invariance_{ruler}", "driven by the regularization term",
                    label, "gain of regularization only", "gain of invariance only", DIFFERENCE,
                    g["regularization only"] - g["invariance only"],
                    primary=ruler == "whitened_ncc"),
            _decide(f"both_terms_{ruler}", "driven by the regularization term", label,
                    "gain of VICReg (both terms)", "gain of regularization only", DIFFERENCE,
                    g["VICReg"] - g["regularization only"]),
            _decide(f"interaction_{ruler}", "driven by the regularization term", label,
                    "VICReg − regularization only − invariance only + untrained",
                    "0 (the two terms' gains add up)", DIFFERENCE,
                    g["VICReg"] - g["regularization only"] - g["invariance only"]),
        ]  # fmt: skip
    # claim 3: semantic over a random function of the image
    rf = _random_function_gain(ev, "VICReg", vic)
    out.append(_decide(
        "semantic_over_random", "semantic more than random", "raw NCC",
        "VICReg: gain of test NCC (true classes)",
        "the same gain for a random function of the image (mean of its draws)",
        TWENTIETH, _gain(ev, "VICReg", "fine/ncc", vic) - rf, primary=True,
    ))  # fmt: skip
    out += _hierarchy(ev)
    out += _depth(ev)
    return out


def _random_function_gain(ev, config, seeds):
    name = f"random_function/ncc/{LAST}/full"
    rows = []
    for s in seeds:
        end = np.unpackbits(ev.array(config, s, f"{name}/{END}"), axis=1)[:, :10_000].mean(0)
        start = np.unpackbits(ev.array(config, s, f"{name}/0"), axis=1)[:, :10_000].mean(0)
        rows.append(end - start)
    return np.stack(rows)


def _matched(ev, config, ruler, seeds, epoch):
    if ruler == "probe":
        return np.stack([
            np.unpackbits(ev.array(config, s, f"matched/probe/{epoch}"), axis=1)[:, :10_000].mean(0)
            for s in seeds
        ])  # fmt: skip
    n = len(ev.manifest["matched"]["matched"])
    return np.stack([ev.array(config, s, f"matched/{ruler}/{epoch}") / n for s in seeds])


def _hierarchy(ev) -> list:
    """Claim 4: the garment grouping's gain against the gain of the groupings matched to it on
    the untrained networks."""
    out = []
    for config in ("VICReg", "supervised"):
        seeds = _common(ev, config)
        if len(seeds) < 2:
            continue
        for ruler in RULERS:
            label = RULER_LABELS[ruler]
            garment = _gain(ev, config, f"coarse/{ruler}", seeds)
            matched = _matched(ev, config, ruler, seeds, END) - _matched(
                ev, config, ruler, seeds, 0
            )
            k = MATCHED_PROBES if ruler == "probe" else len(ev.manifest["matched"]["matched"])
            out.append(_decide(
                f"hierarchy_matched_{ruler}" + ("" if config == "VICReg" else "_supervised"),
                "several levels of the label hierarchy", label,
                f"{config}: gain of test {label} accuracy on the garment groups",
                f"the mean gain of the {k} groupings closest to it on the untrained networks",
                DIFFERENCE, garment - matched, reason=MATCHED_REASON,
                primary=config == "VICReg" and ruler == "ncc",
            ))  # fmt: skip
    return out


def _depth(ev) -> list:
    """Claim 5: the per-seed slope of the gain over the untrained network across the four
    stages, at equal dimension (primary: whitened NCC) and at full width."""
    out = []
    for config in ("VICReg", "supervised"):
        seeds = _common(ev, config)
        if len(seeds) < 2:
            continue
        for dim in ("equal", "full"):
            for ruler in RULERS:
                label = RULER_LABELS[ruler]
                d = sum(c * _gain(ev, config, f"fine/{ruler}", seeds, stage=k, dim=dim)
                        for k, c in enumerate(_SLOPE))  # fmt: skip
                width = "16 dimensions per stage" if dim == "equal" else "full width"
                out.append(_decide(
                    f"depth_slope_{ruler}_{dim}" + ("" if config == "VICReg" else "_supervised"),
                    "grows with depth", label,
                    f"{config}: slope over the four stages of the gain of test {label} "
                    f"accuracy over the untrained network ({width})",
                    "0 (the same gain at every stage)", DEPTH_SLOPE, d, reason=DEPTH_REASON,
                    primary=config == "VICReg" and dim == "equal" and ruler == "whitened_ncc",
                ))  # fmt: skip
    return out


def depth_profile(ev: ImageEvidence | None = None) -> pd.DataFrame:
    """Gain over the untrained network at each stage (mean and crossed 95% CI), per
    configuration, ruler and dimension: what chapter 06's depth figure draws."""
    ev = ev or load_evidence()
    rows = []
    for config in ("VICReg", "supervised"):
        seeds = _common(ev, config)
        for dim in ("equal", "full"):
            for ruler in RULERS:
                for stage in range(4):
                    mean, lo, hi, _ = crossed_interval(
                        _gain(ev, config, f"fine/{ruler}", seeds, stage=stage, dim=dim)
                    )
                    rows.append(dict(config=config, dim=dim, ruler=ruler, stage=stage + 1,
                                     gain=mean, lo=lo, hi=hi, seeds=len(seeds)))  # fmt: skip
    return pd.DataFrame(rows)


def linear_calibration(seed: int = 0) -> dict:
    """What :func:`~sslkit.measure.geometry.linear_predictability` gives where the answer is
    known, on the untrained network of ``seed`` (last stage): to itself whitened (ZCA, a linear
    map) and to itself times a random matrix (both exactly linear: R² near 1), and from another
    untrained network (seed + 100) to it (no shared weights)."""
    if ("calibration", seed) not in _COMPUTED:
        eval_train, test = _eval_sets()
        xtr, xte = (f[-1].double() for f in _features(_untrained(seed), eval_train, test))
        otr, ote = (f[-1].double() for f in _features(_untrained(seed + 100), eval_train, test))
        mu, w = zca_whitener(xtr)
        g = torch.Generator().manual_seed(seed)
        a = torch.randn(xtr.shape[1], xtr.shape[1], generator=g, dtype=torch.float64)
        _COMPUTED["calibration", seed] = dict(
            whitening=linear_predictability(xtr, (xtr - mu) @ w, xte, (xte - mu) @ w),
            random_linear_map=linear_predictability(xtr, xtr @ a, xte, xte @ a),
            another_untrained_network=linear_predictability(otr, xtr, ote, xte),
        )
    return _COMPUTED["calibration", seed]


def _why(ev: ImageEvidence) -> list:
    """Chapter 05b: the paper's account tested directly, and its rivals."""
    out = []
    v = ev.values()
    fine = v[(v.target == "fine") & (v.dim == "full") & (v.stage == LAST) & (~v.long_tailed)]

    def per_seed(config, metric, epoch=END):
        rows = fine[(fine.config == config) & (fine.metric == metric) & (fine.epoch == epoch)]
        return rows.set_index("seed").value.sort_index()

    both = _common(ev, "VICReg", "regularization only")
    r2_reg = per_seed("regularization only", "r2_from_untrained").loc[both]
    r2_vic = per_seed("VICReg", "r2_from_untrained").loc[both]
    out.append(_decide_seeds(
        "linear_reshaping", "the regularization term only reshapes linearly", "R² (held out)",
        "R² of the best linear map from the untrained network's features to regularization "
        "only's", "the same R² for VICReg (both terms)", R2_DIFFERENCE,
        (r2_reg - r2_vic).values, R2_REASON, "R²",
    ))  # fmt: skip
    control = per_seed("regularization only", "r2_from_other_untrained", epoch=0).loc[both]
    out.append(_decide_seeds(
        "reshaping_over_other_network", "the regularization term only reshapes linearly",
        "R² (held out)",
        "R² from the untrained network to regularization only (the same seed)",
        "R² from another untrained network (another seed) to this untrained network",
        R2_DIFFERENCE, (r2_reg - control).values, R2_REASON, "R²",
    ))  # fmt: skip
    for config in ("regularization only", "VICReg"):
        seeds = _common(ev, config)
        share = per_seed(config, "between_class_share").loc[seeds] - per_seed(
            config, "between_class_share", epoch=0).loc[seeds]  # fmt: skip
        out.append(_decide_seeds(
            f"class_variance_on_top_{config.split()[0].lower()}",
            "training stretches the directions that separate the classes", "share of variance",
            f"{config}: share of the between-class variance in the top 9 principal directions",
            "the same share on the untrained network", SHARE_GAIN, share.values,
            SHARE_GAIN_REASON, "share",
        ))  # fmt: skip
    out += _imbalance(ev)
    return out


def _imbalance(ev) -> list:
    """The uniform-cluster prior (Assran et al., 2023): trained on long-tailed data, SSL's
    clustering of balanced test images falls more than supervised training's, and the clusters
    it forms are more balanced than the classes."""
    out = []
    sup = _common(ev, "supervised", lt=(False, True))
    for method in ("VICReg", "SimCLR"):
        seeds = sorted(set(_common(ev, method, lt=(False, True))) & set(sup))
        if len(seeds) < 2:
            continue
        for ruler in RULERS:
            label = RULER_LABELS[ruler]
            name = f"fine/{ruler}/{LAST}/full/{END}"
            fall = ev.bits(method, name, seeds) - ev.bits(method, name, seeds, True)
            fall_sup = ev.bits("supervised", name, seeds) - ev.bits("supervised", name, seeds, True)
            out.append(_decide(
                f"imbalance_fall_{method.lower()}_{ruler}", "uniform cluster prior", label,
                f"{method}: test {label} accuracy trained on balanced minus long-tailed images",
                "the same fall for supervised training", DIFFERENCE, fall - fall_sup,
                reason=IMBALANCE_REASON,
            ))  # fmt: skip
        v = ev.values()
        bal = v[(v.metric == "cluster_balance_train") & (v.epoch == END) & v.long_tailed]
        b = bal.pivot_table(index="seed", columns="config", values="value")
        if method in b and "supervised" in b:
            diff = (b[method] - b["supervised"]).dropna()
            if len(diff) >= 2:
                out.append(_decide_seeds(
                    f"balanced_clusters_{method.lower()}", "uniform cluster prior",
                    "cluster-size entropy",
                    f"{method} trained long-tailed: normalised entropy of the sizes of 10 k-means "
                    "clusters of its own training images",
                    "the same for supervised training", BALANCE_DIFFERENCE, diff.values,
                    BALANCE_REASON, "entropy",
                ))  # fmt: skip
    return out


# RankMe's test (Garrido et al., ICML 2023): across hyperparameters within one method, the
# effective rank of the features orders the runs as their downstream accuracy does. Here: the
# VICReg runs of the ratio sweep (seven regularization/invariance ratios) of the reference store.
RANKME_CONFIGS = tuple(RATIOS.values())


def rankme(profile="reference") -> pd.DataFrame:
    """The ratio sweep's runs, one row each: ``config, seed, erank`` (the last stage's
    effective rank, test features, last epoch), ``probe`` and ``fewshot`` (10-shot NCC) test
    accuracies."""
    runs = []
    with store_only():
        for config in RANKME_CONFIGS:
            for r in trained(config, profile):
                runs.append(
                    dict(config=config, seed=r.seed, erank=r.final("erank"),
                         probe=r.final("probe"), fewshot=r.final("fewshot_10"))
                )  # fmt: skip
    return pd.DataFrame(runs)


def rankme_rho(runs: pd.DataFrame) -> pd.DataFrame:
    """Per seed, Spearman's ρ across the runs of :func:`rankme` between effective rank and each
    accuracy: rows ``seed, accuracy, rho``."""
    rows = []
    for seed, g in runs.groupby("seed"):
        for acc in ("probe", "fewshot"):
            rows.append(dict(seed=seed, accuracy=acc, rho=stats.spearmanr(g.erank, g[acc])[0]))
    return pd.DataFrame(rows)


def _rankme_decisions() -> list:
    per_seed = rankme_rho(rankme())
    out = []
    for acc, label in (("probe", "linear probe"), ("fewshot", "10-shot NCC")):
        rho = per_seed[per_seed.accuracy == acc].rho.values
        mean, lo, hi = correlation_interval(rho)
        out.append(Decision(
            f"rankme_{acc}", "RankMe: effective rank predicts accuracy", label,
            f"Spearman ρ, across the ratio sweep's {len(RANKME_CONFIGS)} VICReg runs of one seed, "
            f"between effective rank and {label} accuracy", "0 (no association)", ASSOCIATION,
            THRESHOLD_REASONS[ASSOCIATION], mean, lo, hi, len(rho), 0,
            verdict_of(lo, hi, ASSOCIATION, complete=len(rho) >= 2), unit="ρ",
        ))  # fmt: skip
    return out


def _within_epoch(profile="reference", ruler="ncc") -> np.ndarray:
    """Per seed, Spearman's ρ across the SSL configurations between the gain over the untrained
    network on ``ruler`` and the linear-probe gain, computed within each snapshot epoch and
    averaged over the epochs on Fisher's scale: the association between runs, with the
    common rise of both during training (which would inflate a correlation pooled over
    epochs) taken out."""
    with store_only():
        runs = {c: trained(c, profile) for c in ASSOCIATION_CONFIGS}
    seeds = [r.seed for r in runs[ASSOCIATION_CONFIGS[0]]]
    out = []
    for i, _ in enumerate(seeds):
        members = [runs[c][i] for c in ASSOCIATION_CONFIGS]
        zs = []
        for e in members[0].epochs[1:]:
            x = [r.value(ruler, e) - r.value(ruler, 0) for r in members]
            y = [r.value("probe", e) - r.value("probe", 0) for r in members]
            zs.append(np.arctanh(_spearman(x, y)))
        out.append(float(np.tanh(np.mean(zs))))
    return np.array(out)


def _sixth() -> list:
    """The abstract's "clustering enhances downstream classification and compresses the data
    information", on the reference store: its classification half within each epoch (raw and
    whitened NCC against the probe), its compression half as chapter 7 measures it."""
    out = []
    for ruler in ("ncc", "whitened_ncc"):
        rho = _within_epoch(ruler=ruler)
        mean, lo, hi = correlation_interval(rho)
        out.append(Decision(
            f"clustering_helps_classification_{ruler}",
            "clustering enhances classification and compresses", RULER_LABELS[ruler],
            f"per seed, Spearman ρ across the SSL configurations of the {RULER_LABELS[ruler]} "
            "gain and the linear-probe gain, within each epoch (mean over epochs)",
            "0 (no association)", ASSOCIATION, THRESHOLD_REASONS[ASSOCIATION], mean, lo, hi,
            len(rho), 0, verdict_of(lo, hi, ASSOCIATION, complete=len(rho) >= 2), unit="ρ",
            primary=ruler == "ncc", p=one_sided_p(np.arctanh(rho), np.arctanh(ASSOCIATION)),
        ))  # fmt: skip
    v = finding("compression_tracks_clustering").measure("reference")
    out.append(Decision(
        "compression_tracks_clustering", "clustering enhances classification and compresses",
        "raw NCC", v.finding.measurement, v.finding.control, v.finding.threshold,
        THRESHOLD_REASONS[ASSOCIATION], v.effect, v.lo, v.hi, v.n, 0, v.verdict, unit="ρ",
        primary=True,
        p=one_sided_p(np.arctanh(v.per_seed.effect.clip(-0.999, 0.999)), np.arctanh(ASSOCIATION)),
    ))  # fmt: skip
    return out


_CACHE: dict = register_cache({})


def decisions(ev: ImageEvidence | None = None) -> pd.DataFrame:
    """Every finding the per-image evidence decides, one row each (the fields of
    :class:`Decision`), with Holm's correction over the primary claims (column ``holm``)."""
    if ev is None and "all" in _CACHE:
        return _CACHE["all"]
    ev_ = ev or load_evidence()
    rows = [asdict(d) for d in _claims(ev_) + _sixth() + _why(ev_) + _rankme_decisions()]
    df = pd.DataFrame(rows)
    df["holm"] = np.nan
    # Holm over the six claims: a claim's p is the largest of its primary measurements' (it
    # holds only if each does: an intersection-union test). Primaries: claim 1 on whitened NCC
    # over both floors (the untrained network and raw pixels); claim 2 on whitened NCC, the
    # regularization term's gain over the untrained network and over invariance only (the
    # second alone would pass on an untrained network, since invariance only collapses).
    claims = df[df.primary].groupby("claim", sort=False).p.max()
    if claims.notna().all() and len(claims):
        # one-sided at 2.5%: the level whose rejection is a 95% interval's lower end above the
        # threshold, so that "survives Holm" and "held" speak the same language
        rejected = dict(zip(claims.index, holm(claims.values, alpha=0.025)))
        df.loc[df.primary, "holm"] = df[df.primary].claim.map(rejected).astype(float)
    if ev is None:
        _CACHE["all"] = df
    return df


def decision(key: str, ev: ImageEvidence | None = None) -> Decision:
    """One finding of :func:`decisions` by key."""
    df = decisions(ev)
    hit = df[df.key == key]
    if hit.empty:
        raise KeyError(f"no decided finding {key!r}; known: {', '.join(df.key)}")
    fields = hit.iloc[0].to_dict()
    fields.pop("holm")
    fields["seeds_for_power"] = int(fields["seeds_for_power"])
    return Decision(**fields)
