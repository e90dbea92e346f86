"""What one training run costs before it runs: operations counted on the model that is about
to train, turned into time with stated device throughputs.

- :func:`forward_flops`: floating-point operations of one forward pass of one image through
  backbone and head, counted by ``torch.utils.flop_counter`` (a multiply-add counts as 2).
- :func:`run_cost`: one training run under a profile. Training costs about 3 forward passes
  per view (forward, and a backward of about twice that). Measuring a trained run (features,
  probes, kNN, UMAP) is not counted here: it is timed per chapter (:mod:`sslkit.plan`).
- :func:`estimate_seconds`: ``FLOPs / throughput + steps × step_overhead`` on a device of
  :data:`THROUGHPUT`. Small networks do not keep a GPU busy, so each device also has a cost
  per optimiser step (kernel launches, augmentation).
- :func:`warn_if_long`: what :func:`sslkit.runs.train` prints before a long run.

This module sits below :mod:`sslkit.runs` and knows nothing of the configurations or the
chapters; :mod:`sslkit.plan` builds the chapter tables on top of it. The throughput figures
are stated, not measured, unless their note says so; measure a card with
``benchmarks/gpu.sh`` and enter it here.
"""

from __future__ import annotations

import dataclasses
import math

import torch
from torch.utils.flop_counter import FlopCounterMode

from ..profiles import Profile
from .measured import THROUGHPUT

__all__ = [
    "THROUGHPUT",
    "DATASET_SHAPES",
    "VIEWS",
    "RunCost",
    "forward_flops",
    "run_cost",
    "estimate_seconds",
    "device_kind",
    "fmt_duration",
    "warn_if_long",
]

# Images of each split, channels, side and classes of each dataset (so that a plan needs no data on
# disk).
DATASET_SHAPES: dict[str, tuple[int, int, int, int, int]] = {
    "digits": (1437, 360, 1, 8, 10),
    "fashion-mnist": (60_000, 10_000, 1, 28, 10),
    "cifar10": (50_000, 10_000, 3, 32, 10),
    "cifar100": (50_000, 10_000, 3, 32, 100),
}

# Forward passes through the network per image and step: two views for joint embedding.
VIEWS = {"vicreg": 2, "simclr": 2, "barlow": 2, "rotation": 1, "jigsaw": 1, "supervised": 1}


@dataclasses.dataclass(frozen=True)
class RunCost:
    """Operations and optimiser steps of one training run."""

    flops: float
    steps: int


def forward_flops(model: torch.nn.Module, channels: int, side: int) -> int:
    """Operations of one forward pass of one ``channels×side×side`` image (eval mode; the
    model's training mode, weights and BatchNorm statistics are left as they were)."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(torch.zeros(1, channels, side, side, device=device))
    finally:
        model.train(was_training)
    return int(counter.get_total_flops())


def run_cost(method: str, profile: Profile, flops_per_image: float) -> RunCost:
    """Training of one run: 3 forward passes per view and image, every epoch, given the
    operations of one forward pass (:func:`forward_flops`). Its measuring is timed, not
    counted (:data:`sslkit.experiment.measured.MEASURING_SECONDS`)."""
    if profile.dataset not in DATASET_SHAPES:
        raise ValueError(f"unknown dataset {profile.dataset!r}; known: {', '.join(DATASET_SHAPES)}")
    if method not in VIEWS:
        raise ValueError(f"unknown method {method!r}; known: {', '.join(VIEWS)}")
    n_train = DATASET_SHAPES[profile.dataset][0]
    images = min(profile.train_size or n_train, n_train)
    steps = profile.epochs * (images // profile.batch_size)
    training = 3 * VIEWS[method] * flops_per_image * steps * profile.batch_size
    return RunCost(training, steps)


def estimate_seconds(cost: RunCost, device: str) -> float:
    """``FLOPs / throughput + steps × step overhead`` on a device of :data:`THROUGHPUT`."""
    if device not in THROUGHPUT:
        raise ValueError(f"unknown device {device!r}; known: {', '.join(THROUGHPUT)}")
    flops_per_s, per_step, _ = THROUGHPUT[device]
    return cost.flops / flops_per_s + cost.steps * per_step


def device_kind() -> str:
    """The row of :data:`THROUGHPUT` for this machine: ``cpu``, or the GPU by name (T4 if
    unknown)."""
    if not torch.cuda.is_available():
        return "cpu"
    name = torch.cuda.get_device_name()
    return next((k for k in ("H100", "A100", "T4") if k in name), "T4")


def fmt_duration(seconds: float) -> str:
    """``'45 s'``, ``'12 min'`` or ``'2.5 h'``.

    >>> fmt_duration(44.6), fmt_duration(720), fmt_duration(9000)
    ('45 s', '12 min', '2.5 h')
    """
    if seconds < 0.5:
        return "0 s"
    if seconds < 90:
        return f"{round(seconds)} s"
    if seconds < 90 * 60:
        return f"{round(seconds / 60)} min"
    return f"{seconds / 3600:.1f} h"


def warn_if_long(
    model: torch.nn.Module, method: str, profile: Profile, limit_s: float = 600.0
) -> float:
    """Count the operations of ``model`` (about to train) and print the estimate, with how to
    pick a smaller profile, when the run is estimated to take longer than ``limit_s`` on this
    machine; returns the estimate in seconds (NaN for a dataset without a known shape)."""
    if profile.dataset not in DATASET_SHAPES:
        return math.nan
    _, _, channels, side, _ = DATASET_SHAPES[profile.dataset]
    seconds = estimate_seconds(
        run_cost(method, profile, forward_flops(model, channels, side)), device_kind()
    )
    if seconds > limit_s and math.isfinite(seconds):
        print(
            f"ⓘ This {method} run on the {profile.name} profile is estimated at "
            f"{fmt_duration(seconds)} on "
            f"this {device_kind()} machine. For a smaller run set SSLKIT_PROFILE=cpu (the book's "
            "own scale) "
            "or pass profile='cpu'; `python -m sslkit plan` lists every chapter's cost."
        )
    return seconds
