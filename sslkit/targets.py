"""Targets of graded randomness, to ask whether features align with *semantic* labels.

Ben-Shaul et al. (2023, §5) compare how well SSL features fit the true classes against
targets with part or all of their relation to the images destroyed.
"""
from __future__ import annotations

import numpy as np
import torch

__all__ = ["random_targets"]


def random_targets(labels, randomness: float, seed: int = 0) -> torch.Tensor:
    """Labels with a fraction ``randomness`` of them shuffled among the chosen samples.

    ``round(randomness × N)`` samples are picked at random and their labels permuted
    among themselves, so every class keeps its size. ``randomness=0`` returns the labels
    unchanged; ``randomness=1`` permutes all of them, leaving targets with no relation to
    the images. The same ``seed`` gives the same targets.

    Examples
    --------
    >>> y = torch.arange(10) % 2
    >>> torch.equal(random_targets(y, 0.0), y)
    True
    >>> torch.equal(random_targets(y, 1.0).bincount(), y.bincount())
    True
    """
    y = torch.as_tensor(np.asarray(labels) if not isinstance(labels, torch.Tensor) else labels)
    if y.ndim != 1 or torch.is_floating_point(y):
        raise ValueError(f"labels must be a 1-D integer array, got {y.dtype} of shape {tuple(y.shape)}")
    if not 0.0 <= float(randomness) <= 1.0:
        raise ValueError(f"randomness must be in [0, 1] (the fraction of labels shuffled), got {randomness}")
    n = len(y)
    m = int(round(float(randomness) * n))
    out = y.clone()
    if m < 2:
        return out
    g = torch.Generator().manual_seed(int(seed))
    chosen = torch.randperm(n, generator=g)[:m].to(y.device)
    shuffled = chosen[torch.randperm(m, generator=g).to(y.device)]
    out[chosen] = y[shuffled]
    return out
