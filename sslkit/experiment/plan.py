"""What each chapter costs before it runs: its runs, which of them are cached, and the
estimated time on every device of :data:`sslkit.cost.THROUGHPUT`.

- :func:`chapter_plan`: one row per run a chapter uses (configuration × seed).
- :func:`chapter_measuring`: the seconds a chapter spends measuring its runs once they are
  trained (features, NCC, probes, kNN, UMAP, figures), as timed on 2 CPU cores.
- :func:`chapter_time`, :func:`chapter_estimate`: a chapter's time from empty caches on one
  device, as training (:func:`training_seconds` of its plan) and measuring, and their sum.
- :func:`summary`: one row per chapter (what ``python -m sslkit plan`` prints).

Training is estimated from operations, counted by :mod:`sslkit.cost` on the model each
configuration builds (the same builder :func:`sslkit.runs.train` uses, at random
initialisation). Measuring is not a count but a timing (:data:`MEASURING_SECONDS`): its work
(UMAP, a probe's epochs, kNN's distance matrix, plotting) has no single operation count.
"""

from __future__ import annotations

import functools

import pandas as pd
import torch

from ..cache import cache_exists
from ..learn.data import DataNotFoundError, Dataset
from ..learn.methods import make_method
from ..profiles import Profile, get_profile
from ..runtime import register_cache
from .configs import CONFIGS
from .cost import (
    DATASET_SHAPES,
    THROUGHPUT,
    estimate_seconds,
    fmt_duration,
    forward_flops,
    run_cost,
)
from .measured import MEASURING_PROFILE, MEASURING_SECONDS
from .runs import build_model, datasets_for, train_config

__all__ = [
    "CHAPTER_CONFIGS",
    "MEASURING_SECONDS",
    "MEASURING_PROFILE",
    "chapter_plan",
    "chapter_measuring",
    "chapter_time",
    "training_seconds",
    "chapter_estimate",
    "chapter_costs",
    "flops_per_image",
]

# The configurations (sslkit.configs.CONFIGS) each chapter trains or loads, in book order.
CHAPTER_CONFIGS: dict[str, tuple[str, ...]] = {
    "00": (),
    "01": ("rotation", "jigsaw"),
    "02": ("invariance only", "VICReg"),
    "02b": ("SimCLR", "Barlow Twins", "VICReg"),
    "03": ("VICReg", "supervised", "invariance only"),
    "04": (
        "VICReg",
        "invariance only",
        "regularization only",
        "Barlow Twins",
        "Barlow invariance only",
        "Barlow redundancy only",
    ),
    "04b": (
        "invariance only",
        "ratio 0.2",
        "ratio 0.5",
        "VICReg",
        "ratio 2",
        "ratio 5",
        "regularization only",
    ),
    "05": ("VICReg",),
    "05b": ("regularization only", "VICReg"),
    "06": ("VICReg",),
    "08": ("VICReg", "SimCLR", "Barlow Twins"),
    "09": ("VICReg", "supervised"),
    "07": (
        "rotation",
        "jigsaw",
        "invariance only",
        "VICReg",
        "SimCLR",
        "Barlow Twins",
        "supervised",
        "regularization only",
        "Barlow invariance only",
        "Barlow redundancy only",
        "ratio 0.2",
        "ratio 0.5",
        "ratio 2",
        "ratio 5",
    ),
}


def _extra_runs(chapter: str, prof: Profile) -> list[tuple[str, str, Profile, int, dict]]:
    """Runs a chapter trains beyond its configurations × the profile's seeds, as its cells do:
    ``(label, method, profile, seed, loss)``."""
    if chapter == "02b":  # the temperature exercise: seed 0 at τ = 0.1 and 1.0
        return [
            (f"SimCLR, temperature {t:g}", "simclr", prof, 0, {"temperature": t})
            for t in (0.1, 1.0)
        ]
    if chapter == "06" and prof.dataset == "cifar100":  # CIFAR-10 beside CIFAR-100
        cifar10 = prof.replace(dataset="cifar10")
        return [("VICReg on CIFAR-10", "vicreg", cifar10, s, {}) for s in prof.seeds]
    return []


@register_cache
@functools.lru_cache(maxsize=64)
def flops_per_image(method: str, profile: Profile) -> int:
    """Operations of one forward pass of one image through the model that ``method`` trains
    under ``profile`` (built as :func:`sslkit.runs.train` builds it, from a stand-in dataset of
    the profile's shape, so no data need be on disk)."""
    if profile.dataset not in DATASET_SHAPES:
        raise ValueError(f"unknown dataset {profile.dataset!r}; known: {', '.join(DATASET_SHAPES)}")
    _, _, channels, side, classes = DATASET_SHAPES[profile.dataset]
    stand_in = Dataset(
        profile.dataset,
        torch.full((2, channels, side, side), 128, dtype=torch.uint8),
        torch.tensor([0, 1]),
        torch.tensor([0, 1]),
        tuple(map(str, range(classes))),
        ("a", "b"),
    )
    model = build_model(
        make_method(method, stand_in, projector=profile.projector), profile, stand_in
    )
    return forward_flops(model, channels, side)


def chapter_plan(
    chapter: str, profile: str | Profile | None = None, cache: bool = True
) -> pd.DataFrame:
    """One row per run the chapter trains (configuration × seed, and any other run its cells
    train): method, FLOPs, steps, whether it is in the train cache, and the estimated seconds
    of its training on every device."""
    if chapter not in CHAPTER_CONFIGS:
        raise ValueError(f"unknown chapter {chapter!r}; chapters: {', '.join(CHAPTER_CONFIGS)}")
    prof = get_profile(profile)
    wanted = [
        (name, CONFIGS[name][0], prof, seed, CONFIGS[name][1])
        for name in CHAPTER_CONFIGS[chapter]
        for seed in prof.seeds
    ] + _extra_runs(chapter, prof)
    # the data's fingerprint, once per profile (None: no data here, so nothing is cached)
    data = {p: _fingerprint(p) if cache else None for p in {w[2] for w in wanted}}
    rows = []
    for name, method, run_profile, seed, loss in wanted:
        cost = run_cost(method, run_profile, flops_per_image(method, run_profile))
        fingerprint = data[run_profile]
        key = train_config(method, run_profile, seed, loss, fingerprint) if fingerprint else None
        rows.append(
            dict(
                config=name,
                seed=seed,
                method=method,
                flops=cost.flops,
                steps=cost.steps,
                cached=key is not None and cache_exists("train", key),
                **{d: estimate_seconds(cost, d) for d in THROUGHPUT},
            )
        )
    columns = ["config", "seed", "method", "flops", "steps", "cached", *THROUGHPUT]
    return pd.DataFrame(rows, columns=columns)


def _fingerprint(profile: Profile) -> str | None:
    """The fingerprint of the profile's training images (part of every train cache key), or
    ``None`` when the data are not on this machine (a plan needs no data)."""
    try:
        return datasets_for(profile, download=False)[0].fingerprint()
    except DataNotFoundError:
        return None


def chapter_measuring(chapter: str, profile: str | Profile | None = None) -> float | None:
    """Seconds the chapter spends measuring its trained runs (:data:`MEASURING_SECONDS`), or
    ``None`` where that is not timed: another profile than :data:`MEASURING_PROFILE`, or a
    chapter not timed yet."""
    if chapter not in CHAPTER_CONFIGS:
        raise ValueError(f"unknown chapter {chapter!r}; chapters: {', '.join(CHAPTER_CONFIGS)}")
    if get_profile(profile).name != MEASURING_PROFILE:
        return None
    return MEASURING_SECONDS.get(chapter)


def chapter_time(
    chapter: str, profile: str | Profile | None = None, device: str = "cpu"
) -> tuple[float, float | None]:
    """``(training, measuring)``: the estimated seconds to train the chapter's runs on
    ``device`` from an empty cache, and its measuring time (:func:`chapter_measuring`; the
    same on every device, ``None`` where not timed)."""
    return training_seconds(chapter_plan(chapter, profile, cache=False), device), chapter_measuring(
        chapter, profile
    )


def training_seconds(plan: pd.DataFrame, device: str) -> float:
    """Seconds to train a plan's runs on ``device`` (0 for a chapter without runs)."""
    return float(plan[device].sum()) if len(plan) else 0.0


def chapter_estimate(
    chapter: str, profile: str | Profile | None = None, device: str = "cpu"
) -> float:
    """Estimated seconds to run a chapter from empty caches on ``device``: training plus
    measuring (where timed)."""
    training, measuring = chapter_time(chapter, profile, device)
    return training + (measuring or 0.0)


def chapter_costs(profile: str | Profile | None = None, chapters=None) -> pd.DataFrame:
    """One row per chapter: runs, cached runs, total PFLOP, the measuring time (blank where not
    timed) and the estimated time per device from empty caches, training plus measuring (the
    chapter as if run alone)."""
    rows = []
    for ch in chapters or CHAPTER_CONFIGS:
        plan = chapter_plan(ch, profile)
        measuring = chapter_measuring(ch, profile)
        row = {
            "chapter": ch,
            "runs": len(plan),
            "cached": int(plan.cached.sum()) if len(plan) else 0,
            "PFLOP": plan.flops.sum() / 1e15 if len(plan) else 0.0,
            "measuring": "" if measuring is None else fmt_duration(measuring),
        }
        row.update(
            {d: fmt_duration(training_seconds(plan, d) + (measuring or 0.0)) for d in THROUGHPUT}
        )
        rows.append(row)
    return pd.DataFrame(rows).set_index("chapter")
