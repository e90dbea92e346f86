"""What each chapter costs before it runs: its runs, which of them are cached, and the
estimated time on every device of :data:`sslkit.cost.THROUGHPUT`.

- :func:`chapter_plan`: one row per run a chapter uses (configuration × seed).
- :func:`chapter_estimate`: a chapter's time from an empty cache on one device.
- :func:`summary`: one row per chapter (what ``python -m sslkit plan`` prints).

The operations come from :mod:`sslkit.cost`, counted on the model each configuration
builds (the same builder :func:`sslkit.runs.train` uses, at random initialisation).
"""

from __future__ import annotations

import functools

import pandas as pd
import torch

from .cache import cache_exists
from .configs import CONFIGS
from .cost import (
    DATASET_SHAPES,
    THROUGHPUT,
    estimate_seconds,
    fmt_duration,
    forward_flops,
    run_cost,
)
from .data import DataNotFoundError, Dataset
from .methods import make_method
from .profiles import Profile, get_profile
from .runs import build_model, datasets_for, train_config
from .runtime import register_cache

__all__ = ["CHAPTER_CONFIGS", "chapter_plan", "chapter_estimate", "summary", "flops_per_image"]

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
    """One row per run the chapter uses (configuration × seed): method, FLOPs, steps,
    whether it is in the train cache, and the estimated seconds on every device."""
    if chapter not in CHAPTER_CONFIGS:
        raise ValueError(f"unknown chapter {chapter!r}; chapters: {', '.join(CHAPTER_CONFIGS)}")
    prof = get_profile(profile)
    data = _fingerprint(prof) if cache else None  # None: no data here, so nothing is cached
    rows = []
    for name in CHAPTER_CONFIGS[chapter]:
        method, loss = CONFIGS[name]
        cost = run_cost(method, prof, flops_per_image(method, prof))
        for seed in prof.seeds:
            key = train_config(method, prof, seed, loss, data) if data else None
            cached = key is not None and cache_exists("train", key)
            rows.append(
                dict(
                    config=name,
                    seed=seed,
                    method=method,
                    flops=cost.flops,
                    steps=cost.steps,
                    cached=cached,
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


def chapter_estimate(
    chapter: str, profile: str | Profile | None = None, device: str = "cpu"
) -> float:
    """Estimated seconds to run a chapter from an empty cache on ``device`` (its runs only)."""
    plan = chapter_plan(chapter, profile, cache=False)
    return float(plan[device].sum()) if len(plan) else 0.0


def summary(profile: str | Profile | None = None, chapters=None) -> pd.DataFrame:
    """One row per chapter: runs, cached runs, total PFLOP and estimated time per device
    from an empty cache (the chapter's own runs, as if run alone)."""
    rows = []
    for ch in chapters or CHAPTER_CONFIGS:
        plan = chapter_plan(ch, profile)
        row = {
            "chapter": ch,
            "runs": len(plan),
            "cached": int(plan.cached.sum()) if len(plan) else 0,
            "PFLOP": plan.flops.sum() / 1e15 if len(plan) else 0.0,
        }
        row.update({d: fmt_duration(plan[d].sum()) if len(plan) else "0 s" for d in THROUGHPUT})
        rows.append(row)
    return pd.DataFrame(rows).set_index("chapter")
