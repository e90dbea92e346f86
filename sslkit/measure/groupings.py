"""Every grouping of the classes into groups of given sizes, and NCC on all of them at once.

The hierarchy claim asks whether a network clusters a *semantic* grouping of its classes (the
garment groups) more than other groupings. Random groupings start lower on the untrained
network, so the fair control is the groupings that start where the semantic one starts
(a *matched* control). For Fashion-MNIST's coarse sizes 4, 3, 2, 1 there are
10! / (4! 3! 2! 1!) = 12,600 such partitions; this module scores every one.

The trick that makes it cheap: a group's centre is the (size-weighted) mean of its classes'
centres, ``c_g = Σ_{k∈g} w_k μ_k``, so ``‖x − c_g‖² = ‖x‖² − 2 Σ_k w_k (x·μ_k) + wᵀ G w`` with
``G`` the Gram matrix of the class centres: the N×K scores ``x·μ_k`` are computed once, and each
partition costs a small matrix product (:func:`grouping_ncc`, checked against
:func:`sslkit.measure.metrics.ncc_accuracy` in the tests).
"""

from __future__ import annotations

import itertools

import torch

from .metrics import _as_features, _as_labels, class_centres

__all__ = ["partitions", "partition_index", "grouping_ncc"]


def partitions(sizes, k: int | None = None) -> torch.Tensor:
    """Every assignment of ``k = sum(sizes)`` classes to groups ``0..len(sizes)-1`` with group
    ``j`` holding exactly ``sizes[j]`` classes: a P×k tensor (row = one partition, entry =
    the group of each class), in lexicographic order. Groups of equal size are told apart by
    their index, so each unordered partition appears once per ordering of its equal-sized
    groups (none for distinct sizes such as 4, 3, 2, 1).

    >>> partitions((2, 1)).tolist()
    [[0, 0, 1], [0, 1, 0], [1, 0, 0]]
    """
    sizes = tuple(int(s) for s in sizes)
    if not sizes or min(sizes) < 1:
        raise ValueError(f"sizes must be positive group sizes, got {sizes}")
    k = sum(sizes) if k is None else k
    if k != sum(sizes):
        raise ValueError(f"{k} classes cannot fill groups of sizes {sizes} (sum {sum(sizes)})")
    labels = [g for g, s in enumerate(sizes) for _ in range(s)]
    rows = sorted(set(itertools.permutations(labels)))
    return torch.tensor(rows, dtype=torch.long)


def partition_index(grouping, table: torch.Tensor) -> int:
    """The row of ``table`` (:func:`partitions`) equal to ``grouping`` (class -> group)."""
    hit = (table == torch.as_tensor(grouping, dtype=torch.long)).all(1).nonzero()
    if len(hit) != 1:
        raise ValueError(f"grouping {list(grouping)} is not one of the table's partitions")
    return int(hit[0])


@torch.no_grad()
def grouping_ncc(train_x, train_y, test_x, test_y, table: torch.Tensor, chunk: int = 512):
    """Per-image NCC correctness of every grouping in ``table`` (P×K, class -> group), with
    group centres computed from the training features: a P×N boolean tensor (row ``p``:
    which test images NCC assigns to their own group under partition ``p``).

    Equal to ``ncc_accuracy(test_x, g[test_y], train_x, g[train_y], per_sample=True)`` for
    each row ``g``, computed through the class centres (see the module docstring)."""
    x, tx = _as_features(train_x).double(), _as_features(test_x, "test_x").double()
    y = _as_labels(train_y, len(x), x.device)
    ty = _as_labels(test_y, len(tx), tx.device)
    centres, classes = class_centres(x, y)
    k = len(classes)
    table = torch.as_tensor(table, dtype=torch.long, device=x.device)
    if table.shape[1] != k:
        raise ValueError(f"table has {table.shape[1]} columns, the labels {k} classes")
    codes = torch.searchsorted(classes, ty)
    counts = torch.bincount(torch.searchsorted(classes, y), minlength=k).double()
    scores = tx @ centres.T  # N×K: x·μ_k
    gram = centres @ centres.T
    groups = int(table.max()) + 1
    out = []
    for rows in table.split(chunk):
        member = torch.nn.functional.one_hot(rows, groups).double()  # P×K×G
        w = member * counts[None, :, None]
        w = w / w.sum(1, keepdim=True)  # size-weighted: the group's centre is its images' mean
        norms = torch.einsum("pkg,kl,plg->pg", w, gram, w)  # ‖c_g‖²
        dist = norms[:, None, :] - 2 * torch.einsum("nk,pkg->png", scores, w)
        out.append(dist.argmin(2) == rows[:, codes])
    return torch.cat(out)
