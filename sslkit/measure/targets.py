"""Targets to measure alignment with: semantic labels and their controls.

Ben-Shaul et al. (2023) compare how well SSL features fit the true classes against
targets with part or all of their relation to the images destroyed. Every target here
has a name understood by :func:`make_targets`:

- ``"fine"``, ``"coarse"``: the dataset's two label levels;
- ``"random_R"``: the fine labels with a fraction ``R`` shuffled (:func:`random_targets`);
- ``"coarse_random"``: the fine classes put into random groups of the same sizes as the
  coarse groups (:func:`random_grouping`): the control of the coarse level;
- ``"random_function"``: a function of the image with no semantics: k-means clusters of a
  fixed random projection of the pixels, as many as there are classes
  (:func:`random_function_targets`). Its clusters are as unequal as the pixels make them;
- ``"untrained_kmeans"``: the matched control: **balanced** k-means clusters (as many, and
  as large, as the classes) of the features of *another* untrained network of the same
  architecture (:func:`untrained_kmeans_targets`). A grouping the architecture can already
  express, of the classes' sizes, that no one named.

Random unions of classes of the same sizes as a label level are ``"coarse_random"``: the
control of the coarse level. (Unions of fine classes with the fine classes' own sizes are the
classes themselves, so the fine level's matched control is ``"untrained_kmeans"``.)

A random control is a distribution, not one draw: ``"coarse_random@3"`` or
``"random_function@3"`` is draw 3 of that control (its own stream key), and :func:`draws`
names the :data:`DRAWS` draws whose mean is the control of a finding, their spread its null
distribution. The name without ``@`` is the single draw the live chapters show.
"""

from __future__ import annotations

import numpy as np
import torch

from ..learn.augment import pixel_features
from ..runtime import register_cache
from ..seeds import stream_seed
from .evaluation import calibrate_batchnorm, extract_features

__all__ = [
    "random_targets",
    "random_grouping",
    "random_function_targets",
    "projected_kmeans",
    "balanced_kmeans",
    "untrained_kmeans_targets",
    "make_targets",
    "draws",
    "DRAWS",
    "DRAWN",
]

# Draws per seed of every random control: the control of a finding is their mean (at least
# 20, so that one lucky or unlucky draw cannot decide a verdict).
DRAWS = 20
# The targets that are random controls, drawn again with ``@d``.
DRAWN = ("coarse_random", "random_function", "untrained_kmeans")


def draws(name: str, n: int | None = None) -> tuple[str, ...]:
    """The names of ``n`` (default :data:`DRAWS`) draws of the random control ``name``.

    >>> draws("coarse_random", 3)
    ('coarse_random@0', 'coarse_random@1', 'coarse_random@2')
    """
    if name not in DRAWN:
        raise ValueError(f"{name!r} is not a random control; these are: {', '.join(DRAWN)}")
    return tuple(f"{name}@{d}" for d in range(DRAWS if n is None else n))


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
        raise ValueError(
            f"labels must be a 1-D integer array, got {y.dtype} of shape {tuple(y.shape)}"
        )
    if not 0.0 <= float(randomness) <= 1.0:
        raise ValueError(
            f"randomness must be in [0, 1] (the fraction of labels shuffled), got {randomness}"
        )
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


def random_grouping(
    fine_labels, coarse_labels, seed: int = 0, num_classes: int | None = None
) -> torch.Tensor:
    """Coarse-like targets with no meaning: the fine classes dealt into random groups of the
    coarse groups' sizes (in fine classes per group).

    If the coarse level clusters only because its fine classes cluster, random groups of
    the same sizes cluster as well; that is the control of a coarse-level claim. The
    grouping depends only on ``seed`` and the fine → coarse map, so two sets (train and
    test) with the same map get the same grouping.

    Examples
    --------
    >>> fine = torch.arange(6).repeat(2); coarse = torch.tensor([0, 0, 0, 1, 1, 2]).repeat(2)
    >>> groups = random_grouping(fine, coarse, seed=3)
    >>> sorted(groups.bincount().tolist()) == sorted(coarse.bincount().tolist())
    True
    """
    fine = torch.as_tensor(fine_labels)
    coarse = torch.as_tensor(coarse_labels)
    if fine.shape != coarse.shape or fine.ndim != 1:
        raise ValueError(
            f"fine and coarse labels must be 1-D of one length, got {tuple(fine.shape)} "
            f"and {tuple(coarse.shape)}"
        )
    k = num_classes or int(fine.max()) + 1
    parent = torch.full((k,), -1, dtype=torch.long)
    parent[fine] = coarse.long()
    if (parent < 0).any():
        raise ValueError(
            f"fine classes {torch.nonzero(parent < 0).flatten().tolist()} have no sample, so "
            "their coarse group is unknown; pass labels that cover every fine class"
        )
    g = torch.Generator().manual_seed(int(seed))
    new_parent = parent[
        torch.randperm(k, generator=g)
    ]  # the same multiset of group sizes, dealt at random
    return new_parent[fine]


def random_function_targets(
    train_images, test_images, k: int, seed: int = 0, dim: int = 32, iterations: int = 25
):
    """Targets that are a function of the image but carry no semantics by design.

    Each image's pixels (scaled to [0, 1]) are mapped by one fixed random Gaussian
    projection to ``dim`` numbers; k-means (Lloyd's algorithm, ``iterations`` steps, started
    from ``k`` random training images) groups the training images into ``k`` clusters, and
    every image is labelled with its nearest centre. Shuffled labels only add label noise;
    these targets are what the paper's "random functions" are: a grouping of the images
    that a network could learn, but that no one named. Cluster sizes are whatever k-means
    finds (not forced to be balanced).
    """
    g = torch.Generator().manual_seed(int(seed))
    x, t = pixel_features(train_images), pixel_features(test_images)
    proj, centres = projected_kmeans(x, k, g, dim, iterations)
    return torch.cdist(x @ proj, centres).argmin(1), torch.cdist(t @ proj, centres).argmin(1)


def projected_kmeans(x: torch.Tensor, k: int, generator, dim: int = 32, iterations: int = 25):
    """``(projection, centres)``: a fixed random Gaussian projection of the rows of ``x`` to
    ``dim`` numbers, and ``k`` k-means centres of the projected rows (Lloyd's algorithm,
    ``iterations`` steps, started from ``k`` random rows); a row's cluster is its nearest
    centre after projection. The random function behind :func:`random_function_targets` and
    :func:`sslkit.analyze`'s ``random_function`` target."""
    proj = torch.randn(x.shape[1], dim, generator=generator) / x.shape[1] ** 0.5
    z = x @ proj
    centres = z[torch.randperm(len(z), generator=generator)[:k]].clone()
    for _ in range(iterations):
        assign = torch.cdist(z, centres).argmin(1)
        counts = torch.bincount(assign, minlength=k)
        moved = torch.zeros_like(centres).index_add_(0, assign, z)
        moved /= counts.clamp_min(1).unsqueeze(1)
        centres = torch.where(counts.unsqueeze(1) > 0, moved, centres)
    return proj, centres


def _balanced_assign(dist: torch.Tensor, capacity: torch.Tensor) -> torch.Tensor:
    """Each row of the N×K distance matrix ``dist`` to one column, column ``j`` taking exactly
    ``capacity[j]`` rows (``capacity.sum() == N``), nearer rows first.

    Rounds of proposals: every unassigned row proposes its nearest column that still has room;
    each column keeps its nearest proposers up to its room. Each round fills a column or
    places every remaining row, so at most K rounds, each vectorized. A greedy assignment (not
    the optimal transport), which is all a control grouping needs.
    """
    n, k = dist.shape
    out = torch.full((n,), -1, dtype=torch.long, device=dist.device)
    room = capacity.clone().to(dist.device)
    for _ in range(k + 1):
        free = out < 0
        if not free.any():
            break
        rows = torch.nonzero(free).flatten()
        d = dist[rows].masked_fill(room.unsqueeze(0) <= 0, float("inf"))
        choice = d.argmin(1)
        near = d.gather(1, choice.unsqueeze(1)).squeeze(1)
        # rank every proposer among those proposing the same column, nearest first
        by_distance = torch.argsort(near)
        order = by_distance[torch.sort(choice[by_distance], stable=True).indices]
        chosen = choice[order]
        first = torch.searchsorted(chosen, torch.arange(k, device=dist.device))
        rank = torch.arange(len(order), device=dist.device) - first[chosen]
        keep = rank < room[chosen]
        out[rows[order[keep]]] = chosen[keep]
        room -= torch.bincount(chosen[keep], minlength=k)
    return out


def balanced_kmeans(x: torch.Tensor, k: int, seed: int = 0, iterations: int = 25) -> torch.Tensor:
    """k-means with clusters of equal size: Lloyd's algorithm in which each assignment step
    gives every cluster ``N / k`` points (sizes differ by at most one), nearer points first
    (:func:`_balanced_assign`). Started from ``k`` random points. Returns the ``k`` centres.

    Ordinary k-means finds clusters as unequal as the data make them; a control target
    matched to balanced classes must be balanced too.
    """
    x = torch.as_tensor(x).float()
    n = len(x)
    if not 2 <= k <= n:
        raise ValueError(f"balanced k-means needs 2 ≤ k ≤ N points, got k={k} and N={n}")
    g = torch.Generator().manual_seed(int(seed))
    capacity = _equal_shares(n, k)
    centres = x[torch.randperm(n, generator=g)[:k].to(x.device)].clone()
    for _ in range(iterations):
        assign = _balanced_assign(torch.cdist(x, centres), capacity)
        moved = torch.zeros_like(centres).index_add_(0, assign, x)
        centres = moved / capacity.to(x.device, x.dtype).unsqueeze(1)
    return centres


def balanced_labels(x: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
    """Each point to one of the ``centres``, every centre taking an equal share (sizes differ
    by at most one), nearer points first."""
    return _balanced_assign(
        torch.cdist(torch.as_tensor(x).float(), centres), _equal_shares(len(x), len(centres))
    )


def _equal_shares(n: int, k: int) -> torch.Tensor:
    """``k`` sizes that add up to ``n`` and differ by at most one."""
    sizes = torch.full((k,), n // k, dtype=torch.long)
    sizes[: n % k] += 1
    return sizes


# (data, architecture, seed) -> targets: one fit serves every run (runtime.clear_caches empties it)
_UNTRAINED_TARGETS: dict = register_cache({})


@torch.no_grad()
def untrained_kmeans_targets(train, test, k: int, make_backbone, seed: int = 0):
    """The matched random function: balanced k-means of an untrained network's features.

    ``make_backbone()`` builds a fresh network of the architecture under study; it is
    initialised from ``seed`` (so not the network being measured, whose own untrained weights
    come from another stream), its BatchNorm statistics are measured on ``train``'s images
    (:func:`~sslkit.evaluation.calibrate_batchnorm`, as for the untrained floor), and its
    last-stage features of the ``train`` images are clustered by :func:`balanced_kmeans` into
    ``k`` clusters of equal size. Both splits are then labelled with equal shares per centre
    (:func:`balanced_labels`), so the targets have the classes' sizes exactly where the
    classes are balanced.

    This control starts where the classes start in one respect that matters: a network of
    this architecture expresses it without training. A trained network that gains more on
    the classes than on it has learned something about the classes, not about what the
    architecture already groups together.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        net = make_backbone()
    key = (train.fingerprint(), test.fingerprint(), repr(net), int(seed), int(k))
    if key not in _UNTRAINED_TARGETS:
        mean, std = train.mean_std()
        net = calibrate_batchnorm(net, train.images, mean, std)
        xtr = extract_features(net, train.images, mean, std)
        xte = extract_features(net, test.images, mean, std)
        scale = xtr.std(0).clamp_min(1e-8)  # every feature on one scale: no unit dominates
        xtr, xte = xtr / scale, xte / scale
        centres = balanced_kmeans(xtr, k, seed=seed)
        _UNTRAINED_TARGETS[key] = (balanced_labels(xtr, centres), balanced_labels(xte, centres))
        while len(_UNTRAINED_TARGETS) > 512:
            _UNTRAINED_TARGETS.pop(next(iter(_UNTRAINED_TARGETS)))
    return _UNTRAINED_TARGETS[key]


def make_targets(name: str, train, test, seed: int = 0, make_backbone=None):
    """``(train_targets, test_targets)`` of a named target for two datasets (see the module doc).

    Random targets draw from the named streams of run ``seed`` (:mod:`sslkit.seeds`): the
    train and test sets get independent draws of shuffled labels, one grouping of the
    classes serves both sets, and a random function is fitted once and applied to both.
    ``make_backbone`` (no arguments → a fresh network of the architecture under study) is
    needed by ``"untrained_kmeans"`` only.
    """
    name, draw = _draw_of(name)
    if name == "fine":
        return train.labels, test.labels
    if name == "coarse":
        return train.coarse_labels, test.coarse_labels
    if name in DRAWN:
        stream = stream_seed(seed, _STREAMS[name], *draw)
        return _random_control(name, train, test, stream, make_backbone)
    r = _shuffled_fraction(name)
    if r is None:
        raise ValueError(
            f"unknown target {name!r}; use fine, coarse, coarse_random, random_function, "
            "untrained_kmeans (or a draw of the last three, NAME@D) or random_R with R in [0, 1]"
        )
    return (
        random_targets(train.labels, r, seed=stream_seed(seed, "targets_train")),
        random_targets(test.labels, r, seed=stream_seed(seed, "targets_test")),
    )


# The stream (sslkit.seeds) each random control draws from.
_STREAMS = {
    "coarse_random": "grouping",
    "random_function": "random_function",
    "untrained_kmeans": "untrained_kmeans",
}


def _draw_of(name: str) -> tuple[str, tuple[int, ...]]:
    """``"coarse_random@3"`` → ``("coarse_random", (3,))``: the control and the key of its
    draw's stream; a name without ``@`` → ``(name, ())``."""
    base, _, draw = name.partition("@")
    if not draw:
        return name, ()
    if base not in DRAWN or not draw.isdigit():
        raise ValueError(
            f"unknown target {name!r}: only {' and '.join(DRAWN)} are drawn again, as "
            "NAME@D with D a non-negative integer"
        )
    return base, (int(draw),)


def _random_control(name: str, train, test, stream: int, make_backbone):
    """The targets of one draw of a random control of :data:`DRAWN`, drawn from ``stream``."""
    k = len(train.classes)
    if name == "coarse_random":
        # one grouping of the classes, from the dataset's class lists, applied to both sets
        return (
            random_grouping(train.labels, train.coarse_labels, stream, k),
            random_grouping(test.labels, test.coarse_labels, stream, k),
        )
    if name == "random_function":
        return random_function_targets(train.images, test.images, k, stream)
    if make_backbone is None:
        raise ValueError(
            "the target 'untrained_kmeans' clusters an untrained network's features: pass "
            "make_backbone, a function with no arguments that builds the architecture"
        )
    return untrained_kmeans_targets(train, test, k, make_backbone, stream)


def _shuffled_fraction(name: str) -> float | None:
    """``R`` of a target ``"random_R"`` with ``R`` in [0, 1], else None."""
    if not name.startswith("random_"):
        return None
    try:
        r = float(name.removeprefix("random_"))
    except ValueError:
        return None
    return r if 0.0 <= r <= 1.0 else None
