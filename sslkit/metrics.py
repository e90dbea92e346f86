"""Clustering and transfer metrics of a set of features, vectorised in torch.

Every function accepts torch tensors or NumPy arrays (N×D features, N integer labels)
and runs on the features' device. ``labels`` need not be 0..K−1: any integers work.

- :func:`ncc_accuracy`: nearest class-centre accuracy (the paper's main clustering measure).
- :func:`cdnv`: class-distance normalised variance (Galanti et al., ICLR 2022).
- :func:`linear_probe`: full-batch multinomial logistic regression.
- :func:`knn_accuracy`: k-nearest-neighbour vote.
- :func:`sample_ncc_accuracy`: sample-level (augmentation) NCC.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["class_centres", "ncc_accuracy", "cdnv", "linear_probe", "knn_accuracy", "sample_ncc_accuracy"]


def _as_features(x, name="features") -> torch.Tensor:
    x = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x)
    if x.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array N×D, got shape {tuple(x.shape)}")
    if not torch.is_floating_point(x):
        x = x.float()
    if x.dtype in (torch.float16, torch.bfloat16):
        x = x.float()
    return x


def _as_labels(y, n: int, device, name="labels") -> torch.Tensor:
    y = torch.as_tensor(np.asarray(y) if not isinstance(y, torch.Tensor) else y).to(device)
    if y.ndim != 1 or len(y) != n:
        raise ValueError(f"{name} must be 1-D with one entry per row of the features ({n}); "
                         f"got shape {tuple(y.shape)}")
    if torch.is_floating_point(y):
        raise ValueError(f"{name} must be integers, got {y.dtype}")
    return y.long()


def _encode(y: torch.Tensor, classes: torch.Tensor | None = None):
    """Map labels to 0..K−1 (``classes`` sorted); returns (codes, classes)."""
    if classes is None:
        classes = torch.unique(y)
    codes = torch.searchsorted(classes, y)
    return codes, classes


def class_centres(features, labels):
    """Class means ``μ_c`` (K×D) and the sorted class values (K)."""
    x = _as_features(features)
    y = _as_labels(labels, len(x), x.device)
    codes, classes = _encode(y)
    k = len(classes)
    sums = torch.zeros(k, x.shape[1], dtype=x.dtype, device=x.device).index_add_(0, codes, x)
    counts = torch.bincount(codes, minlength=k).to(x.dtype)
    return sums / counts[:, None], classes


def ncc_accuracy(features, labels, ref_features=None, ref_labels=None) -> float:
    """Nearest class-centre (NCC) accuracy.

    Each sample is assigned the class whose centre ``μ_c`` (mean feature of class ``c`` in
    the reference set) is nearest in Euclidean distance; the score is the fraction
    assigned their own label (Ben-Shaul et al., 2023, §3). Centres come from
    ``ref_features``/``ref_labels`` if given (e.g. train centres scored on test data),
    else from the same set. Agrees with scikit-learn's ``NearestCentroid``.
    """
    x = _as_features(features)
    y = _as_labels(labels, len(x), x.device)
    if (ref_features is None) != (ref_labels is None):
        raise ValueError("give both ref_features and ref_labels, or neither")
    if ref_features is None:
        centres, classes = class_centres(x, y)
    else:
        rx = _as_features(ref_features, "ref_features").to(x.device)
        if rx.shape[1] != x.shape[1]:
            raise ValueError(f"ref_features have {rx.shape[1]} dimensions, features {x.shape[1]}")
        centres, classes = class_centres(rx, _as_labels(ref_labels, len(rx), x.device, "ref_labels"))
    # argmin ‖x − μ‖² = argmin (‖μ‖² − 2 x·μ), in chunks to bound memory.
    sq = (centres ** 2).sum(1)
    pred = torch.cat([(sq - 2 * chunk @ centres.T).argmin(1) for chunk in x.split(8192)])
    return (classes[pred] == y).double().mean().item()


def cdnv(features, labels) -> float:
    """Class-distance normalised variance (Galanti, György & Hutter, ICLR 2022).

    ``CDNV = mean_{i<j} (Var_i + Var_j) / (2 ‖μ_i − μ_j‖²)``, where
    ``Var_c = mean_{x in c} ‖x − μ_c‖²``. Lower means tighter, better separated clusters.
    """
    x = _as_features(features).double()
    y = _as_labels(labels, len(x), x.device)
    codes, classes = _encode(y)
    k = len(classes)
    if k < 2:
        raise ValueError("cdnv needs at least two classes")
    centres, _ = class_centres(x, y)
    sq_dev = ((x - centres[codes]) ** 2).sum(1)
    var = torch.zeros(k, dtype=x.dtype, device=x.device).index_add_(0, codes, sq_dev)
    var = var / torch.bincount(codes, minlength=k).to(x.dtype)
    dist2 = torch.cdist(centres, centres).pow(2)
    i, j = torch.triu_indices(k, k, offset=1, device=x.device)
    return ((var[i] + var[j]) / (2 * dist2[i, j])).mean().item()


def linear_probe(train_x, train_y, test_x, test_y, *, C: float = 1.0, max_iter: int = 100,
                 standardize: bool = True, return_model: bool = False):
    """Accuracy on the test set of a linear classifier trained on frozen features.

    Multinomial logistic regression with the objective of scikit-learn's
    ``LogisticRegression(C=C)``: ``Σ_i CE(W x_i + b, y_i) + ‖W‖²/(2C)``, minimised
    full-batch with L-BFGS (strong Wolfe line search) on the features' device. Features
    are standardised with the training mean and std first (``standardize=True``).

    Returns the test accuracy (float), or ``(accuracy, W, b, mean, std)`` with
    ``return_model=True``.
    """
    x = _as_features(train_x, "train_x")
    tx = _as_features(test_x, "test_x").to(x.device)
    y = _as_labels(train_y, len(x), x.device, "train_y")
    ty = _as_labels(test_y, len(tx), x.device, "test_y")
    if tx.shape[1] != x.shape[1]:
        raise ValueError(f"train_x has {x.shape[1]} dimensions, test_x {tx.shape[1]}")
    if C <= 0:
        raise ValueError(f"C must be positive, got {C}")
    codes, classes = _encode(y)
    x = x.float()
    if standardize:
        mean, std = x.mean(0), x.std(0).clamp_min(1e-6)
    else:
        mean, std = torch.zeros(x.shape[1], device=x.device), torch.ones(x.shape[1], device=x.device)
    xs = (x - mean) / std
    n, d = xs.shape
    k = len(classes)
    W = torch.zeros(d, k, device=x.device, requires_grad=True)
    b = torch.zeros(k, device=x.device, requires_grad=True)
    opt = torch.optim.LBFGS([W, b], lr=1, max_iter=max_iter, history_size=20,
                            tolerance_grad=1e-6, tolerance_change=1e-9, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        # sklearn's objective divided by n, so the scale does not depend on the data size.
        loss = F.cross_entropy(xs @ W + b, codes) + (W ** 2).sum() / (2 * C * n)
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    with torch.no_grad():
        pred = classes[(((tx.float() - mean) / std) @ W + b).argmax(1)]
        acc = (pred == ty).double().mean().item()
    if return_model:
        return acc, W.detach(), b.detach(), mean, std
    return acc


def knn_accuracy(train_x, train_y, test_x, test_y, k: int = 20, metric: str = "cosine") -> float:
    """k-nearest-neighbour accuracy: each test point takes the majority label of its ``k``
    nearest training points (``metric`` ``"cosine"`` or ``"euclidean"``; ties go to the
    smallest label, as in scikit-learn's ``KNeighborsClassifier``)."""
    x = _as_features(train_x, "train_x")
    tx = _as_features(test_x, "test_x").to(x.device)
    y = _as_labels(train_y, len(x), x.device, "train_y")
    ty = _as_labels(test_y, len(tx), x.device, "test_y")
    if not 1 <= k <= len(x):
        raise ValueError(f"k must be between 1 and the number of training points ({len(x)}), got {k}")
    if metric not in ("cosine", "euclidean"):
        raise ValueError(f"metric must be 'cosine' or 'euclidean', got {metric!r}")
    codes, classes = _encode(y)
    if metric == "cosine":
        x, tx = F.normalize(x, dim=1), F.normalize(tx, dim=1)
    preds = []
    for chunk in tx.split(2048):
        if metric == "cosine":
            idx = (chunk @ x.T).topk(k, dim=1).indices
        else:
            idx = torch.cdist(chunk, x).topk(k, dim=1, largest=False).indices
        votes = F.one_hot(codes[idx], len(classes)).sum(1)
        preds.append(votes.argmax(1))
    return (classes[torch.cat(preds)] == ty).double().mean().item()


def sample_ncc_accuracy(query_views, ref_views=None) -> float:
    """Sample-level NCC: how well views recover the image they were made from.

    ``query_views`` has shape (K, M, D): M augmented views of each of K images. Each
    image's centre is the mean of its views in ``ref_views`` (K, M', D), or of
    ``query_views`` itself when not given; the score is the fraction of query views whose
    nearest centre is their own image's (Ben-Shaul et al., 2023, §4: "sample-level" clustering).
    """
    q = torch.as_tensor(query_views)
    if q.ndim != 3:
        raise ValueError(f"query_views must be K×M×D (images × views × dims), got {tuple(q.shape)}")
    r = q if ref_views is None else torch.as_tensor(ref_views).to(q.device)
    if r.ndim != 3 or r.shape[0] != q.shape[0] or r.shape[2] != q.shape[2]:
        raise ValueError(f"ref_views must be K×M'×D matching query_views {tuple(q.shape)}, got {tuple(r.shape)}")
    k, m, d = q.shape
    ids = torch.arange(k, device=q.device)
    return ncc_accuracy(q.reshape(k * m, d), ids.repeat_interleave(m),
                        r.reshape(-1, d), ids.repeat_interleave(r.shape[1]))
