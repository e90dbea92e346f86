"""What a chapter costs before it runs: operations counted from the model and the
schedule, turned into time with stated device throughputs.

- :func:`forward_flops`: floating-point operations of one forward pass of one image
  through backbone and head, counted by ``torch.utils.flop_counter`` (a multiply-add
  counts as 2 operations).
- :func:`run_cost`: one training run of a configuration under a profile. Training costs
  about 3 forward passes per view (forward, and a backward of about twice that), every
  evaluation snapshot one forward pass over the evaluation images.
- :func:`chapter_plan`: the runs a chapter uses, which of them are cached, the total
  operations, and the estimated time on each device of :data:`THROUGHPUT`.

Small networks do not keep a GPU busy, so each device also has a cost per optimiser
step (kernel launches, augmentation); the estimate is
``FLOPs / throughput + steps × step_overhead``. The figures are stated, not measured,
unless their note says so; measure a card with ``benchmarks/gpu.sh`` and enter it here.
"""
from __future__ import annotations

import dataclasses
import functools
import math

import pandas as pd
import torch

from .profiles import Profile, get_profile

__all__ = ["THROUGHPUT", "CHAPTER_CONFIGS", "forward_flops", "run_cost", "chapter_plan", "estimate_seconds",
           "fmt_duration", "device_kind"]

# device -> (sustained training FLOP/s, seconds of overhead per optimiser step, where the figure comes from)
THROUGHPUT: dict[str, tuple[float, float, str]] = {
    "cpu": (2.2e10, 0.0, "measured: cpu-profile VICReg runs, 2 AMD EPYC cores, torch 2.14, about 15 s each"),
    "T4": (2.0e13, 6e-3, "estimate: about 30% of the T4's 65 TFLOP/s fp16 peak; 6 ms per step"),
    "A100": (8.0e13, 3e-3, "estimate: about 25% of the A100's 312 TFLOP/s bf16 peak; 3 ms per step"),
    "H100": (2.0e14, 2e-3, "estimate: about 20% of the H100's 990 TFLOP/s bf16 peak; 2 ms per step"),
}

# Images, channels and side of each dataset's splits (so that a plan needs no data on disk).
_DATASETS = {
    "digits": (1437, 360, 1, 8, 10),
    "fashion-mnist": (60_000, 10_000, 1, 28, 10),
    "cifar10": (50_000, 10_000, 3, 32, 10),
    "cifar100": (50_000, 10_000, 3, 32, 100),
}

# The configurations (sslkit.paper.CONFIGS) each chapter trains or loads, in book order.
CHAPTER_CONFIGS: dict[str, tuple[str, ...]] = {
    "00": (),
    "01": ("rotation", "jigsaw"),
    "02": ("invariance only", "VICReg"),
    "02b": ("SimCLR", "Barlow Twins", "VICReg"),
    "03": ("VICReg", "supervised", "invariance only"),
    "04": ("VICReg", "invariance only", "regularization only", "Barlow Twins", "Barlow invariance only",
           "Barlow redundancy only"),
    "04b": ("invariance only", "ratio 0.2", "ratio 0.5", "VICReg", "ratio 2", "ratio 5", "regularization only"),
    "05": ("VICReg",),
    "06": ("VICReg",),
    "07": ("rotation", "jigsaw", "invariance only", "VICReg", "SimCLR", "Barlow Twins", "supervised",
           "regularization only", "Barlow invariance only", "Barlow redundancy only", "ratio 0.2", "ratio 0.5",
           "ratio 2", "ratio 5"),
}

_VIEWS = {"vicreg": 2, "simclr": 2, "barlow": 2, "rotation": 1, "jigsaw": 1, "supervised": 1}


def forward_flops(model: torch.nn.Module, channels: int, side: int) -> int:
    """Operations of one forward pass of one ``channels×side×side`` image (eval mode)."""
    from torch.utils.flop_counter import FlopCounterMode

    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(torch.zeros(1, channels, side, side))
    finally:
        model.train(was_training)
    return int(counter.get_total_flops())


@functools.lru_cache(maxsize=64)
def _model_flops(method: str, backbone: str, widths: tuple, projector: tuple, dataset: str) -> int:
    from .data import Dataset
    from .methods import make_method
    from .models import SSLModel, build_backbone

    _, _, channels, side, classes = _DATASETS[dataset]
    fake = Dataset(dataset, torch.full((2, channels, side, side), 128, dtype=torch.uint8),
                   torch.tensor([0, 1]), torch.tensor([0, 1]), tuple(map(str, range(classes))), ("a", "b"))
    net = build_backbone(backbone, channels, side, widths)
    model = SSLModel(net, make_method(method, fake, projector=projector).make_head(net.out_dim))
    return forward_flops(model, channels, side)


@dataclasses.dataclass(frozen=True)
class RunCost:
    """Operations and optimiser steps of one training run, with its evaluation."""

    flops: float
    steps: int


def run_cost(method: str, profile: Profile) -> RunCost:
    """Training (3 forward passes per view and image, every epoch) plus evaluation (one
    forward pass of the evaluation images at every snapshot) of one run."""
    from .runs import eval_epochs

    if profile.dataset not in _DATASETS:
        raise ValueError(f"unknown dataset {profile.dataset!r}; known: {', '.join(_DATASETS)}")
    n_train, n_test, _, _, _ = _DATASETS[profile.dataset]
    per_image = _model_flops(method, profile.backbone, tuple(profile.widths), tuple(profile.projector), profile.dataset)
    images = min(profile.train_size or n_train, n_train)
    steps = profile.epochs * (images // profile.batch_size)
    training = 3 * _VIEWS[method] * per_image * steps * profile.batch_size
    eval_images = min(profile.eval_size or n_train, n_train) + min(profile.eval_size or n_test, n_test)
    evaluation = len(eval_epochs(profile)) * eval_images * per_image
    return RunCost(training + evaluation, steps)


def estimate_seconds(cost: RunCost, device: str) -> float:
    """``FLOPs / throughput + steps × step overhead`` on a device of :data:`THROUGHPUT`."""
    if device not in THROUGHPUT:
        raise ValueError(f"unknown device {device!r}; known: {', '.join(THROUGHPUT)}")
    flops_per_s, per_step, _ = THROUGHPUT[device]
    return cost.flops / flops_per_s + cost.steps * per_step


def device_kind() -> str:
    """The row of :data:`THROUGHPUT` for this machine: ``cpu``, or the GPU by name (T4 if unknown)."""
    if not torch.cuda.is_available():
        return "cpu"
    name = torch.cuda.get_device_name()
    return next((k for k in ("H100", "A100", "T4") if k in name), "T4")


def fmt_duration(seconds: float) -> str:
    """``'45 s'``, ``'12 min'`` or ``'2.5 h'``."""
    if seconds < 0.5:
        return "0 s"
    if seconds < 90:
        return f"{round(seconds)} s"
    if seconds < 90 * 60:
        return f"{round(seconds / 60)} min"
    return f"{seconds / 3600:.1f} h"


def chapter_plan(chapter: str, profile: str | Profile | None = None, cache: bool = True) -> pd.DataFrame:
    """One row per run the chapter uses (configuration × seed): method, FLOPs, steps,
    whether it is in the train cache, and the estimated seconds on every device."""
    from .cache import cache_exists
    from .paper import CONFIGS
    from .runs import train_config

    if chapter not in CHAPTER_CONFIGS:
        raise ValueError(f"unknown chapter {chapter!r}; chapters: {', '.join(CHAPTER_CONFIGS)}")
    prof = get_profile(profile)
    rows = []
    for name in CHAPTER_CONFIGS[chapter]:
        method, loss = CONFIGS[name]
        cost = run_cost(method, prof)
        for seed in prof.seeds:
            cached = cache and cache_exists("train", train_config(method, prof, seed, loss))
            rows.append(dict(config=name, seed=seed, method=method, flops=cost.flops, steps=cost.steps,
                             cached=cached, **{d: estimate_seconds(cost, d) for d in THROUGHPUT}))
    columns = ["config", "seed", "method", "flops", "steps", "cached", *THROUGHPUT]
    return pd.DataFrame(rows, columns=columns)


def chapter_estimate(chapter: str, profile: str | Profile | None = None, device: str = "cpu") -> float:
    """Estimated seconds to run a chapter from an empty cache on ``device`` (its runs only)."""
    plan = chapter_plan(chapter, profile, cache=False)
    return float(plan[device].sum()) if len(plan) else 0.0


def summary(profile: str | Profile | None = None, chapters=None) -> pd.DataFrame:
    """One row per chapter: runs, cached runs, total PFLOP and estimated time per device
    from an empty cache (the chapter's own runs, as if run alone)."""
    rows = []
    for ch in chapters or CHAPTER_CONFIGS:
        plan = chapter_plan(ch, profile)
        row = {"chapter": ch, "runs": len(plan), "cached": int(plan.cached.sum()) if len(plan) else 0,
               "PFLOP": plan.flops.sum() / 1e15 if len(plan) else 0.0}
        row.update({d: fmt_duration(plan[d].sum()) if len(plan) else "0 s" for d in THROUGHPUT})
        rows.append(row)
    return pd.DataFrame(rows).set_index("chapter")


def warn_if_long(method: str, profile: Profile, limit_s: float = 600.0) -> float:
    """Print the estimate and how to pick a smaller profile when one run is estimated to
    take longer than ``limit_s`` on this machine; returns the estimate in seconds."""
    seconds = estimate_seconds(run_cost(method, profile), device_kind())
    if seconds > limit_s and math.isfinite(seconds):
        print(f"ⓘ This {method} run on the {profile.name} profile is estimated at {fmt_duration(seconds)} on "
              f"this {device_kind()} machine. For a smaller run set SSLKIT_PROFILE=cpu (the book's own scale) "
              f"or pass profile='cpu'; `python -m sslkit plan` lists every chapter's cost.")
    return seconds
