"""The verdict rule: a :class:`Finding` measured over seeds gives an effect, its 95% confidence
interval and a :class:`Verdict`.

A finding holds a claim (a paraphrase; only the abstract of Ben-Shaul et al., NeurIPS 2023, is
ever quoted), where the claim comes from, the measurement, its **control** (the untrained
network or a control target) and **one threshold** (:mod:`sslkit.findings.thresholds`).
:meth:`Finding.measure` computes the effect (measurement minus control) on every seed of the
profile, its interval (:func:`sslkit.analysis.t_interval`, over the seeds and, where the runs
keep them, the evaluation subsets of the test images), and :func:`verdict_of` reads it:

- **held**: the whole 95% confidence interval of the effect is above the threshold;
- **positive, below threshold**: the whole interval is above 0 but at or below the threshold:
  an effect, smaller than the claim asks for (never to be read as "false");
- **positive, size undecided**: the whole interval is above 0 and contains the threshold: an
  effect in the claimed direction whose size this evidence cannot place above or below the
  threshold;
- **not held**: the whole interval is at or below the threshold and reaches 0 or below (but
  not wholly below it): no effect of the size claimed, and none that is positive beyond doubt;
- **reversed**: the whole interval is below 0: an effect, in the opposite direction from the
  claim;
- **inconclusive**: the interval contains the threshold and reaches 0 or below (or there is
  one seed only, or a seed without a measurement).

(The two readings "positive, size undecided" and "reversed" were added on 2026-12-06, before
the per-image evidence was read; on the older evidence they only rename verdicts that were
"inconclusive" with the interval above 0, and "not held" with the interval below 0.)
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..experiment.analysis import correlation_interval, t_interval
from ..experiment.runs import NoSubsets, evaluation_subset
from ..measure.evaluation import EVAL_SUBSETS
from ..profiles import Profile, get_profile
from ..runtime import register_cache
from .recorded import RECORDED
from .thresholds import THRESHOLD_REASONS

__all__ = ["BELOW", "UNDECIDED", "REVERSED", "VERDICTS", "Verdict", "Finding", "verdict_of"]

# The verdict of an effect that is there, but smaller than the claim's threshold.
BELOW = "positive, below threshold"
# The verdict of an effect above 0 whose interval contains the threshold.
UNDECIDED = "positive, size undecided"
REVERSED = "reversed"
VERDICTS = ("held", BELOW, UNDECIDED, "not held", REVERSED, "inconclusive")


def verdict_of(lo: float, hi: float, threshold: float, complete: bool = True) -> str:
    """The verdict of an effect whose 95% interval is ``[lo, hi]`` (see the module doc).

    ``complete=False`` (a seed without a measurement, or one seed only): inconclusive."""
    if not complete:
        return "inconclusive"
    if lo > threshold:
        return "held"
    if hi < 0:
        return REVERSED
    if hi <= threshold:
        return BELOW if lo > 0 else "not held"
    return UNDECIDED if lo > 0 else "inconclusive"


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
    complete = len(measured) == len(df)
    subsets = _subset_effects(f, prof, seeds) if complete else None
    if f.fisher_z and len(measured):  # on Fisher's z = atanh(r)
        effect, lo, hi = correlation_interval(measured)
    else:
        effect, lo, hi = t_interval(measured, subsets=subsets) if len(measured) else (math.nan,) * 3
    # a seed without a measurement, or one seed only: no interval to read
    verdict = verdict_of(lo, hi, f.threshold, complete=complete and len(df) >= 2)
    return Verdict(f, df, effect, lo, hi, verdict, subsets)
