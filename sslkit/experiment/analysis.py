"""Analysis across runs: evaluations of many runs in one table, gains over a control, and
statistics across seeds (mean and a 95% confidence interval).

With 3–10 seeds a point estimate hides how much a number moves from seed to seed; every
effect the book states comes with its interval (Agarwal et al., NeurIPS 2021, make the
case for small-run studies).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
import pandas as pd
from scipy import stats

__all__ = [
    "crossed_interval",
    "crossed_seeds_for_power",
    "one_sided_p",
    "holm",
    "t_interval",
    "standard_error",
    "seed_summary",
    "collect",
    "gain_over_init",
    "within_run_correlation",
    "summary",
    "loss_curves",
    "stored_counterparts",
    "mean_over_seeds",
]


def _finite(values, name="values") -> np.ndarray:
    x = np.asarray(list(values), dtype=float)
    if x.ndim != 1 or len(x) == 0:
        raise ValueError(f"need a non-empty 1-D list of {name}, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError(f"{name} must be finite, got {x.tolist()}")
    return x


def standard_error(values, subsets=None) -> tuple[float, float]:
    """The standard error of the mean of per-seed ``values`` and its degrees of freedom.

    Seeds only: ``s / √n`` with ``n − 1`` degrees of freedom. With ``subsets``, the mean
    effect measured on each of K disjoint evaluation subsets of the test images (the same
    seeds), the test images' own sampling variance is added: ``SE² = s²/n + s_K²/K``, with
    ``s_K`` the standard deviation across subsets (a subset has 1/K of the images, so its
    variance is K times the full set's), and the degrees of freedom of
    Welch–Satterthwaite (Satterthwaite, 1946): ``SE⁴ / ((s²/n)²/(n−1) + (s_K²/K)²/(K−1))``,
    capped at the seeds' ``n − 1``, so that adding a source of variance never narrows an
    interval. The seed-by-image interaction is in both terms, so the estimate errs wide (by
    about a tenth on the book's findings) rather than narrow.
    """
    x = _finite(values)
    seed_var = x.var(ddof=1) / len(x) if len(x) > 1 else math.nan
    if subsets is None:
        return math.sqrt(seed_var), len(x) - 1
    k = _finite(subsets, "subsets")
    if len(k) < 2:
        raise ValueError(f"need at least two evaluation subsets, got {len(k)}")
    eval_var = k.var(ddof=1) / len(k)
    total = seed_var + eval_var
    parts = (seed_var**2 / (len(x) - 1) if seed_var > 0 else 0.0) + eval_var**2 / (len(k) - 1)
    return math.sqrt(total), min(len(x) - 1, total**2 / parts if parts > 0 else math.inf)


def t_interval(values, confidence: float = 0.95, subsets=None) -> tuple[float, float, float]:
    """Mean and Student-t confidence interval of independent per-seed values.

    ``mean ± t_{df} · SE`` (:func:`standard_error`): over seeds only, ``SE = s / √n`` and
    ``df = n − 1``; with ``subsets`` (the mean effect on each evaluation subset of the test
    images), the interval also covers which test images were drawn. With fewer than two
    values the interval is undefined and returned as NaN.

    >>> m, lo, hi = t_interval([1.0, 2.0, 3.0])
    >>> round(m, 3), round(lo, 3), round(hi, 3)
    (2.0, -0.484, 4.484)
    """
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1 (e.g. 0.95), got {confidence}")
    x = _finite(values)
    mean = float(x.mean())
    if len(x) < 2:
        return mean, math.nan, math.nan
    se, df = standard_error(x, subsets)
    half = float(stats.t.ppf(0.5 + confidence / 2, df) * se)
    return mean, mean - half, mean + half


def _mean_squares(d: np.ndarray) -> tuple[float, float, float, float]:
    """The grand mean and the two-way ANOVA mean squares of an S×N array (seeds × images):
    ``(mean, MS_seed, MS_image, MS_resid)``."""
    s, n = d.shape
    mean = d.mean()
    seed_means, image_means = d.mean(1), d.mean(0)
    ms_seed = n * ((seed_means - mean) ** 2).sum() / (s - 1)
    ms_image = s * ((image_means - mean) ** 2).sum() / (n - 1)
    resid = d - seed_means[:, None] - image_means[None, :] + mean
    ms_resid = (resid**2).sum() / ((s - 1) * (n - 1))
    return float(mean), float(ms_seed), float(ms_image), float(ms_resid)


def crossed_interval(d, confidence: float = 0.95) -> tuple[float, float, float, float]:
    """Mean and confidence interval of a per-image effect ``d`` measured on S seeds × N test
    images, the same images for every seed (``d``: an S×N array, e.g. one network's
    correctness minus its untrained network's, image by image). Returns
    ``(mean, lo, hi, df)``.

    Seeds and images are two *crossed* random factors: ``d_si = μ + a_s + b_i + e_si``
    (a seed's luck, an image's difficulty, the rest). The grand mean's variance is
    ``σ_a²/S + σ_b²/N + σ_e²/(SN)``. The two-way ANOVA mean squares have expectations
    ``E[MS_seed] = Nσ_a² + σ_e²``, ``E[MS_image] = Sσ_b² + σ_e²``, ``E[MS_resid] = σ_e²``, so

        Var(mean) = (MS_seed + MS_image − MS_resid) / (SN)

    is unbiased (the cluster-robust variance of a two-way crossed design). The interval is
    ``mean ± t_df · √Var`` with Satterthwaite's degrees of freedom for that combination of
    mean squares. A test image counts once however many seeds score it: an interval over
    seeds alone would miss how much the effect owes to which test images exist, and one over
    seed × image pairs would count each image S times. The evaluation-train images (centres,
    whitener, probe) are one fixed set shared by every network; their variability is not in
    this interval.
    """
    d = np.asarray(d, dtype=float)
    if d.ndim != 2 or d.shape[0] < 2 or d.shape[1] < 2:
        raise ValueError(f"need an S×N array with at least 2 seeds and 2 images, got {d.shape}")
    if not np.isfinite(d).all():
        raise ValueError("per-image effects must be finite")
    s, n = d.shape
    mean, ms_seed, ms_image, ms_resid = _mean_squares(d)
    terms = ((ms_seed, s - 1), (ms_image, n - 1), (ms_resid, (s - 1) * (n - 1)))
    combined = ms_seed + ms_image - ms_resid
    if combined <= 0:  # the unbiased estimate fails: the conservative one, no subtraction
        combined, terms = ms_seed + ms_image, terms[:2]
    if combined == 0:
        return float(mean), float(mean), float(mean), float("inf")
    se = math.sqrt(combined / (s * n))
    df = combined**2 / sum(m**2 / f for m, f in terms)
    half = stats.t.ppf(0.5 + confidence / 2, df) * se
    return float(mean), float(mean - half), float(mean + half), float(df)


def crossed_seeds_for_power(d, threshold: float, power: float = 0.8, most: int = 1000):
    """How many seeds, on the same test images, a seed × image design (:func:`crossed_interval`)
    needs for its 95% interval to lie wholly above ``threshold`` with probability ``power``,
    if the true effect is the one observed in ``d`` (an S×N array) and its variance components
    stay as estimated: ``σ_a² = (MS_seed − MS_resid)/N``, ``σ_b² = (MS_image − MS_resid)/S``,
    ``σ_e² = MS_resid``; with S' seeds the mean's variance is
    ``σ_a²/S' + σ_b²/N + σ_e²/(S'N)``. Normal approximation. Returns ``None`` when no number of
    seeds up to ``most`` does (the effect is not above the threshold, or the image term alone
    is too wide: more test images would be needed, not more seeds)."""
    d = np.asarray(d, dtype=float)
    s, n = d.shape
    mean, ms_seed, ms_image, ms_resid = _mean_squares(d)
    var_a = max(ms_seed - ms_resid, 0.0) / n
    var_b = max(ms_image - ms_resid, 0.0) / s
    z = stats.norm.ppf(0.975) + stats.norm.ppf(power)
    for seeds in range(2, most + 1):
        se = math.sqrt(var_a / seeds + var_b / n + ms_resid / (seeds * n))
        if mean - threshold >= z * se:
            return seeds
    return None


def one_sided_p(values, threshold: float = 0.0, subsets=None) -> float:
    """p-value of a one-sided t-test of H0: mean ≤ ``threshold`` on independent per-seed values
    (small when the values sit clearly above the threshold); ``subsets`` as in
    :func:`t_interval`."""
    x = np.asarray(list(values), dtype=float)
    if len(x) < 2 or not np.isfinite(x).all():
        return math.nan
    se, df = standard_error(x, subsets)
    if se == 0:
        return 0.0 if x.mean() > threshold else 1.0
    return float(stats.t.sf((x.mean() - threshold) / se, df))


def holm(pvalues, alpha: float = 0.05) -> list[bool]:
    """Holm's step-down correction: which hypotheses are rejected at family-wise error
    ``alpha``. Sorted ascending, the i-th smallest p-value (from 0) is compared with
    ``alpha / (m − i)``; the first that fails stops the rejections.

    >>> holm([0.01, 0.04, 0.03], alpha=0.05)
    [True, False, False]
    """
    p = np.asarray(list(pvalues), dtype=float)
    m = len(p)
    rejected = [False] * m
    for i, j in enumerate(np.argsort(np.where(np.isnan(p), np.inf, p))):
        if not p[j] <= alpha / (m - i):
            break
        rejected[j] = True
    return rejected


def correlation_interval(values, confidence: float = 0.95) -> tuple[float, float, float]:
    """Mean and confidence interval of correlations (one per seed) on Fisher's scale,
    ``z = atanh(r)``, back-transformed with ``tanh``: the interval stays inside (−1, 1), where
    a t-interval on ``r`` itself can pass ±1. ``r = ±1`` is clipped so that ``z`` is finite.

    >>> [round(x, 3) for x in correlation_interval([0.9, 0.95, 0.99])]
    [0.963, 0.453, 0.998]
    """
    z = np.arctanh(np.clip(_finite(values), -0.999999, 0.999999))
    return tuple(float(np.tanh(x)) for x in t_interval(z, confidence))


def seed_summary(df: pd.DataFrame, by, value: str = "value", bounds=None) -> pd.DataFrame:
    """Mean, 95% CI (``lo``, ``hi``) and the number of seeds ``n`` of ``value`` for each group of
    ``by``. ``bounds``: the range the values can take (``(-1, 1)`` for correlations); the
    t-interval is clipped to it, where it would claim values that cannot occur."""
    rows = []
    for key, g in df.groupby(by, sort=False):
        m, lo, hi = t_interval(g[value])
        if bounds is not None:
            lo, hi = max(lo, bounds[0]), min(hi, bounds[1])
        key = key if isinstance(key, tuple) else (key,)
        rows.append(
            {
                **dict(zip([by] if isinstance(by, str) else by, key)),
                "mean": m,
                "lo": lo,
                "hi": hi,
                "n": len(g),
            }
        )
    return pd.DataFrame(rows)


def collect(
    configurations: dict, stage=None, split=None, reference: bool = False, **evaluate
) -> pd.DataFrame:
    """Evaluations of several configurations, each a list of runs (one per seed).

    ``configurations`` maps a label to a list of :class:`~sslkit.runs.Run`; ``evaluate`` goes
    to :meth:`Run.evaluate`. The table gains the columns ``run`` (the label) and ``seed``.
    ``stage`` keeps one stage (``"last"``: each run's last), ``split`` one split (``"test"``,
    ``"train"``), so that a chapter never filters the table by hand.

    ``reference=True`` adds the same evaluations of the stored reference runs of each label
    (a configuration name, :func:`stored_counterparts`) and a column ``source``: ``"this run"``
    or ``"reference"``; an epoch that is the live runs' last stands for the stored runs'
    last. :func:`sslkit.plots.plot_seeds` draws the two sources apart.
    """
    frames = []
    for label, seeds in configurations.items():
        for r in seeds:
            df = r.evaluate(**evaluate).assign(run=label, seed=r.seed)
            if stage is not None:
                df = df[df.stage == (r.last_stage if stage == "last" else stage)]
            if split is not None:
                df = df[df.split == split]
            frames.append(df)
    live = pd.concat(frames, ignore_index=True)
    if not reference:
        return live
    stored = stored_counterparts(configurations)
    if evaluate.get("epochs") is not None:
        last = {label: seeds[0].epochs[-1] for label, seeds in configurations.items()}
        frames = []
        for label, runs_ in stored.items():
            epochs = [runs_[0].epochs[-1] if e == last[label] else e for e in evaluate["epochs"]]
            frames.append(collect({label: runs_}, stage, split, **{**evaluate, "epochs": epochs}))
        ref = pd.concat(frames, ignore_index=True)
    else:
        ref = collect(stored, stage, split, **evaluate)
    return pd.concat(
        [live.assign(source=THIS_RUN), ref.assign(source=REFERENCE)], ignore_index=True
    )


THIS_RUN, REFERENCE = "this run", "reference"


def stored_counterparts(configurations: dict) -> dict:
    """The stored reference runs (:class:`~sslkit.store.StoredRun`, every stored seed) of each
    label of ``configurations``, a configuration name of :data:`sslkit.configs.CONFIGS`."""
    from . import configs  # lazy: configs imports this module (the named configurations)

    unknown = [label for label in configurations if label not in configs.CONFIGS]
    if unknown:
        raise ValueError(
            f"reference=True needs configuration names as labels (sslkit.configs.CONFIGS); "
            f"{unknown} are not: label the runs by their configuration, or draw them alone"
        )
    return {label: configs.trained(label, "reference", source="store") for label in configurations}


def gain_over_init(
    evals: pd.DataFrame, by: Iterable[str] = ("run", "seed", "stage", "target", "split", "metric")
) -> pd.DataFrame:
    """For each group, the value at the last epoch minus the value at epoch 0 (the same
    network untrained): the control that every "training did this" claim needs."""
    by = list(by) + (["source"] if "source" in evals and "source" not in by else [])
    g = evals.sort_values("epoch").groupby(by, sort=False).value
    out = (g.last() - g.first()).rename("gain").reset_index()
    return out


def within_run_correlation(
    run, evals: pd.DataFrame, terms=("invariance", "variance", "covariance")
) -> pd.Series:
    """Spearman correlation, over the epochs of *one* run, between each loss term's epoch
    mean and the metric in ``evals`` (one row per epoch ≥ 1). Runs are never pooled: a
    correlation across runs would mix their different losses."""
    losses = run.losses()
    v = evals.set_index("epoch").value
    epochs = [e for e in v.index if e >= 1 and e in losses.index]
    if len(epochs) < 3:
        raise ValueError(f"need at least 3 evaluated epochs to correlate, got {len(epochs)}")
    table = losses.loc[epochs, [t for t in terms if t in losses.columns]].assign(
        metric=v.loc[epochs].values
    )
    return table.corr(method="spearman")["metric"].drop("metric")


def summary(
    configurations: dict,
    metrics=("ncc", "probe"),
    split: str = "test",
    target: str = "fine",
    stage=None,
    untrained: str | None = "untrained",
) -> pd.DataFrame:
    """Final values of several configurations as "mean [95% CI]" strings, one row per
    configuration (``{label: [Run, ...]}``) and one column per metric.

    With ``untrained``, a first row gives the same measurement at epoch 0 of the first
    configuration's runs: the untrained networks (the same for every method of one seed).
    """

    def cell(values, metric):
        m, lo, hi = t_interval(values)
        if metric == "cdnv":
            return f"{m:.2f} [{lo:.2f}, {hi:.2f}]"
        return f"{100 * m:.1f}% [{100 * lo:.1f}, {100 * hi:.1f}]"

    if not configurations or not all(configurations.values()):
        raise ValueError(
            "summary needs at least one configuration with at least one run: {label: [Run, ...]}"
        )
    rows = {}
    first = next(iter(configurations.values()))
    if untrained:
        rows[untrained] = {
            m: cell([r.initial(m, split, target, stage) for r in first], m) for m in metrics
        }
    for label, seeds in configurations.items():
        rows[label] = {
            m: cell([r.final(m, split, target, stage) for r in seeds], m) for m in metrics
        }
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = f"mean [95% CI], {len(first)} seeds"
    return table


def loss_curves(
    configurations: dict, terms=None, phase: str = "epoch", reference: bool = False
) -> pd.DataFrame:
    """Loss terms of several configurations over training, long format with columns
    ``run, seed, <epoch|step>, term, value`` (``{label: [Run, ...]}``). ``reference=True``:
    also the stored reference runs' (per epoch, the store keeps no steps), with a column
    ``source`` as in :func:`collect`."""
    if reference:
        if phase != "epoch":
            raise ValueError("the evidence store keeps losses per epoch: use phase='epoch'")
        live = loss_curves(configurations, terms, phase)
        ref = loss_curves(stored_counterparts(configurations), terms, phase)
        return pd.concat(
            [live.assign(source=THIS_RUN), ref.assign(source=REFERENCE)], ignore_index=True
        )
    key = "epoch" if phase == "epoch" else "step"
    frames = []
    for label, seeds in configurations.items():
        for r in seeds:
            table = r.losses(phase)
            cols = [t for t in (terms or table.columns) if t in table.columns]
            long = table[cols].reset_index().melt(id_vars=key, var_name="term", value_name="value")
            frames.append(long.assign(run=label, seed=r.seed))
    return pd.concat(frames, ignore_index=True)


def mean_over_seeds(
    runs,
    metric: str,
    epoch: int | None = None,
    split: str = "test",
    target: str = "fine",
    stage=None,
) -> float:
    """The mean over seeds of one measurement of a configuration's runs (``[Run, ...]``),
    at ``epoch`` (default: the last; 0 = the untrained control)."""
    if not runs:
        raise ValueError("mean_over_seeds needs at least one run")
    values = [
        r.value(metric, r.epochs[-1] if epoch is None else epoch, split, target, stage)
        for r in runs
    ]
    return sum(values) / len(values)
