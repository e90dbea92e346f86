"""Clustering and transfer metrics of a set of features, vectorised in torch.

Every function accepts torch tensors or NumPy arrays (N×D features, N integer labels)
and runs on the features' device. ``labels`` need not be 0..K−1: any integers work.

- :func:`ncc_accuracy`: nearest class-centre accuracy (the paper's main clustering measure).
- :func:`whitened_ncc_accuracy`: NCC after ZCA whitening (:func:`zca_whitener`), which a
  linear reshaping of the features cannot raise (exactly so for maps that keep every
  direction above the whitening floor :data:`WHITEN_EPS`).
- :func:`cdnv`: class-distance normalised variance (Galanti et al., ICLR 2022).
- :func:`linear_probe`: full-batch multinomial logistic regression.
- :func:`knn_accuracy`: k-nearest-neighbour vote.
- :func:`fewshot_ncc_accuracy`: NCC with centres from ``shots`` labelled images per class
  (few-shot transfer: what tight clusters buy when labels are scarce).
- :func:`sample_ncc`: sample-level (augmentation) NCC.
- :func:`view_tightness`: how close each image's views lie, relative to the distances between
  images (scale-free).
- :func:`effective_rank`: how many directions the features use (a compression proxy).

The public functions read like their formulas; the speed tricks (one-hot matrix products,
cache-sized blocks, a bincount label code) live in private helpers, and the tests check
that both give the same numbers.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

# Features (N×D) or labels (N): a torch tensor or anything NumPy turns into an array.
ArrayLike = torch.Tensor | np.ndarray

__all__ = [
    "class_centres",
    "ncc_accuracy",
    "cdnv",
    "linear_probe",
    "knn_accuracy",
    "fewshot_ncc_accuracy",
    "sample_ncc",
    "view_tightness",
    "effective_rank",
    "zca_whitener",
    "whitened_ncc_accuracy",
    "WHITEN_EPS",
    "uniformity",
]


def _as_features(x, name="features") -> torch.Tensor:
    x = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x)
    if x.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array N×D, got shape {tuple(x.shape)}")
    if not torch.is_floating_point(x):
        x = x.float()
    if x.dtype in (torch.float16, torch.bfloat16):
        x = x.float()
    if len(x) == 0:
        raise ValueError(f"{name} is empty (0 rows); pass at least one sample")
    bad = int((~torch.isfinite(x)).any(1).sum()) if x.numel() else 0
    if bad:
        raise ValueError(
            f"{name} has non-finite values (NaN or inf) in {bad} of {len(x)} rows; "
            "drop or fix those rows (a NaN usually comes from a diverged network)"
        )
    return x


def _as_labels(y, n: int, device, name="labels") -> torch.Tensor:
    if not isinstance(y, torch.Tensor):
        y = np.asarray(y)
        if y.dtype.kind not in "iub":
            raise ValueError(
                f"{name} must be integers, got {y.dtype} values such as {y.ravel()[:3].tolist()}; "
                "map them to 0..K−1 first, e.g. with np.unique(labels, return_inverse=True)[1]"
            )
    y = torch.as_tensor(y).to(device)
    if y.ndim != 1 or len(y) != n:
        raise ValueError(
            f"{name} must be 1-D with one entry per row of the features ({n}); "
            f"got shape {tuple(y.shape)}"
        )
    if torch.is_floating_point(y):
        raise ValueError(f"{name} must be integers, got {y.dtype}")
    return y.long()


def _check_train_test(train_x, train_y, test_x, test_y):
    """Features and labels of a train and a test split, validated together: 2-D finite
    features of one width, one integer label per row, all on the training features' device."""
    x = _as_features(train_x, "train_x")
    tx = _as_features(test_x, "test_x").to(x.device)
    y = _as_labels(train_y, len(x), x.device, "train_y")
    ty = _as_labels(test_y, len(tx), x.device, "test_y")
    if tx.shape[1] != x.shape[1]:
        raise ValueError(f"train_x has {x.shape[1]} dimensions, test_x {tx.shape[1]}")
    if len(torch.unique(y)) < 2:
        raise ValueError(f"train_y holds one class only ({y[0].item()}): nothing to classify")
    unseen = _unseen(ty, y)
    if unseen:
        raise ValueError(
            f"test labels {unseen} have no training image, so nothing fitted on the training "
            "images can predict them (each of their test images would count as wrong); give "
            "every class training images, or drop those test images"
        )
    return x, y, tx, ty


def _unseen(labels: torch.Tensor, known: torch.Tensor) -> list[int]:
    """The first ten distinct ``labels`` that are not among the ``known`` ones: classes that a
    classifier fitted on ``known`` can never predict (NCC, the probe and kNN refuse them)."""
    return torch.unique(labels[~torch.isin(labels, known)]).tolist()[:10]


def _encode(y: torch.Tensor):
    """Map labels to codes 0..K−1 of the sorted distinct labels; returns (codes, classes).

    Small non-negative labels (the usual case) take a bincount and a lookup table, which
    is far cheaper than the sort behind ``torch.unique``.
    """
    if len(y) and int(y.min()) >= 0 and int(y.max()) < 4 * len(y) + 1024:
        present = torch.bincount(y) > 0
        classes = torch.nonzero(present).flatten()
        lookup = torch.cumsum(present, 0) - 1
        return lookup[y], classes
    classes = torch.unique(y)
    return torch.searchsorted(classes, y), classes


def _centres(x: torch.Tensor, codes: torch.Tensor, k: int):
    """Class means from codes, and counts: per-class sums by ``index_add_`` (memory O(K·D),
    however many classes; a one-hot K×N matrix would be O(K·N))."""
    counts = torch.bincount(codes, minlength=k).to(x.dtype)
    sums = torch.zeros(k, x.shape[1], dtype=x.dtype, device=x.device).index_add_(0, codes, x)
    return sums / counts[:, None], counts


def class_centres(features: ArrayLike, labels: ArrayLike) -> tuple[torch.Tensor, torch.Tensor]:
    """Class means ``μ_c`` (K×D) and the sorted class values (K)."""
    x = _as_features(features)
    y = _as_labels(labels, len(x), x.device)
    codes, classes = _encode(y)
    return _centres(x, codes, len(classes))[0], classes


def ncc_accuracy(
    features: ArrayLike,
    labels: ArrayLike,
    ref_features: ArrayLike | None = None,
    ref_labels: ArrayLike | None = None,
    per_sample: bool = False,
) -> float | torch.Tensor:
    """Nearest class-centre (NCC) accuracy.

    Each sample is assigned the class whose centre ``μ_c`` (mean feature of class ``c`` in
    the reference set) is nearest in Euclidean distance; the score is the fraction
    assigned their own label (Ben-Shaul et al., 2023, §3). Centres come from
    ``ref_features``/``ref_labels`` if given (e.g. train centres scored on test data),
    else from the same set. Agrees with scikit-learn's ``NearestCentroid``.
    ``per_sample=True`` returns the N booleans (assigned its own label or not) whose mean is
    the accuracy, e.g. to score subsets of the samples.
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
        centres, classes = class_centres(
            rx, _as_labels(ref_labels, len(rx), x.device, "ref_labels")
        )
    if len(classes) < 2:
        raise ValueError(
            f"NCC needs at least two classes, got only {classes.tolist()}: every sample would be "
            "nearest its own class's centre"
        )
    unseen = _unseen(y, classes)
    if unseen:
        raise ValueError(
            f"labels {unseen} have no reference sample, so no centre: their samples "
            "can never be classified right; give every class a sample in the reference set"
        )
    nearest = _nearest_centre(x, centres)  # argmin_c ‖x − μ_c‖
    correct = classes[nearest] == y
    return correct if per_sample else correct.double().mean().item()


# ZCA's regulariser, relative to the mean eigenvalue of the covariance: directions with less
# than a thousandth of the average spread are damped rather than blown up (they are mostly
# noise, and a dead ReLU gives exactly zero spread).
WHITEN_EPS = 1e-3


def zca_whitener(features: ArrayLike, eps: float = WHITEN_EPS) -> tuple[torch.Tensor, torch.Tensor]:
    """ZCA whitening fitted on ``features``: the mean ``μ`` and the matrix
    ``W = U (Λ + ε·mean(Λ))^(−1/2) Uᵀ`` from the eigendecomposition ``U Λ Uᵀ`` of their
    covariance (float64); ``(x − μ) W`` has (almost) identity covariance. An invertible
    linear map of the features gives the same whitened features up to a rotation, which no
    Euclidean measure sees, as long as it keeps every direction's variance well above the
    floor ``ε·mean(Λ)`` (below it, a direction is damped rather than whitened)."""
    x = _as_features(features).double()
    if not eps > 0:
        raise ValueError(f"eps must be positive (a share of the mean eigenvalue), got {eps}")
    mu = x.mean(0)
    lam, U = torch.linalg.eigh((x - mu).T @ (x - mu) / len(x))
    lam = lam.clamp_min(0)
    floor = eps * lam.mean() if lam.mean() > 0 else torch.tensor(1.0, dtype=lam.dtype)
    return mu, (U * (lam + floor).rsqrt()) @ U.T


def whitened_ncc_accuracy(
    features: ArrayLike,
    labels: ArrayLike,
    ref_features: ArrayLike | None = None,
    ref_labels: ArrayLike | None = None,
    eps: float = WHITEN_EPS,
    per_sample: bool = False,
) -> float | torch.Tensor:
    """NCC accuracy after ZCA whitening fitted on the reference features (:func:`zca_whitener`).

    Raw NCC rises when a network merely spreads and decorrelates its features; after
    whitening, a linear reshaping of the features no longer counts, so a gain here is
    class information that no linear map of the control's features had (the book's
    "whitened NCC" ruler). ``per_sample``: as in :func:`ncc_accuracy`."""
    x = _as_features(features).double()
    ref = x if ref_features is None else _as_features(ref_features, "ref_features").double()
    ref_y = labels if ref_features is None else ref_labels
    mu, w = zca_whitener(ref, eps)
    return ncc_accuracy(
        (x - mu) @ w, labels, (ref.to(x.device) - mu) @ w, ref_y, per_sample=per_sample
    )


# NCC's distances are computed for at most NCC_ROWS samples × NCC_CLASSES classes at a time, so
# memory stays bounded however many classes there are (15,000 classes once took 1.5 GB for
# 240 KB of features); up to NCC_CLASSES classes nothing is split (the results are identical).
NCC_ROWS, NCC_CLASSES = 8192, 1024


def _nearest_centre(x: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
    """``argmin_c ‖x − μ_c‖²`` as ``argmin_c (‖μ_c‖² − 2 x·μ_c)``: one matrix product per block
    of rows and classes instead of an N×K×D difference tensor."""
    sq = (centres**2).sum(1)
    return torch.cat(
        [_argmin_by_blocks(chunk, centres, sq, _distances) for chunk in x.split(NCC_ROWS)]
    )


def _distances(sq: torch.Tensor, x: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
    """``‖μ_c‖² − 2 x·μ_c``: the squared distances of the rows of ``x`` to the centres, less
    ``‖x‖²`` (the same for every class, so it changes no argmin)."""
    return sq - 2 * x @ centres.T


def _argmin_by_blocks(x, centres, sq, distances, size: int | None = None) -> torch.Tensor:
    """Each row's nearest centre, ``argmin`` of ``distances(sq, x, centres)`` taken ``size``
    classes at a time (memory O(rows × size)); the first minimum wins, as in one ``argmin``
    over all classes (which it is when there are at most ``size``)."""
    size, k = size or NCC_CLASSES, len(centres)
    if k <= size:
        return distances(sq, x, centres).argmin(1)
    best, where = distances(sq[:size], x, centres[:size]).min(1)
    for a in range(size, k, size):
        value, index = distances(sq[a : a + size], x, centres[a : a + size]).min(1)
        closer = value < best  # a tie keeps the earlier class
        best = torch.where(closer, value, best)
        where = torch.where(closer, index + a, where)
    return where


# CDNV's pairs of classes are taken a block of rows at a time, at most CDNV_BLOCK numbers of
# centre differences per block; up to CDNV_PAIRS pairs their ratios are averaged at once, as
# the formula reads (identical results), beyond that block by block (memory stays bounded: 15,000
# classes once asked for 14 GB).
CDNV_BLOCK, CDNV_PAIRS = 1 << 21, 1 << 24


class _SameCentres(ValueError):
    """Classes ``pair = (i, j)`` (positions in the centres) share a centre: CDNV is undefined."""

    def __init__(self, i: int, j: int):
        super().__init__(f"classes {i} and {j} have the same centre: their CDNV is undefined")
        self.pair = (i, j)


def _mean_pair_ratio(mu: torch.Tensor, var: torch.Tensor) -> float:
    """``mean_{i<j} (var_i + var_j) / (2 ‖μ_i − μ_j‖²)`` over blocks of rows ``i`` (pairs in the
    order of ``triu_indices``); raises :class:`_SameCentres` for the first pair at distance 0."""
    k, d = mu.shape
    rows = max(1, CDNV_BLOCK // (k * max(d, 1)))
    pairs = k * (k - 1) // 2
    parts, total = [], torch.zeros((), dtype=var.dtype, device=var.device)
    for a in range(0, k - 1, rows):
        i, j = _pairs_of_rows(a, min(a + rows, k - 1), k, mu.device)
        dist = ((mu[i] - mu[j]) ** 2).sum(1)
        if (dist == 0).any():
            raise _SameCentres(i[dist == 0][0].item(), j[dist == 0][0].item())
        ratio = (var[i] + var[j]) / (2 * dist)
        if pairs <= CDNV_PAIRS:
            parts.append(ratio)
        else:
            total += ratio.sum()
    return (torch.cat(parts).mean() if parts else total / pairs).item()


def _pairs_of_rows(a: int, b: int, k: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """The pairs ``(i, j)``, ``a ≤ i < b``, ``i < j < k``, in the order of ``triu_indices``."""
    i = torch.arange(a, b, device=device)[:, None].expand(-1, k)
    j = torch.arange(k, device=device)[None, :].expand(b - a, -1)
    keep = j > i
    return i[keep], j[keep]


def cdnv(features: ArrayLike, labels: ArrayLike) -> float:
    """Class-distance normalised variance (Galanti, György & Hutter, ICLR 2022).

    ``CDNV = mean_{i<j} (Var_i + Var_j) / (2 ‖μ_i − μ_j‖²)``, where
    ``Var_c = mean_{x in c} ‖x − μ_c‖²``. Lower means tighter, better separated clusters.
    """
    x = _as_features(features)
    y = _as_labels(labels, len(x), x.device)
    codes, classes = _encode(y)
    k = len(classes)
    if k < 2:
        raise ValueError("cdnv needs at least two classes")
    centres, counts = _centres(x, codes, k)  # μ_c
    var = _within_class_variance(x, codes, centres, counts)  # Var_c = mean_{x in c} ‖x − μ_c‖²
    try:
        return _mean_pair_ratio(centres.double(), var)  # over all pairs i < j
    except _SameCentres as same:
        i, j = same.pair
        raise ValueError(
            f"classes {classes[i].item()} and {classes[j].item()} have the same centre "
            "(constant or collapsed features?): their CDNV is undefined"
        ) from None


def _within_class_variance(x, codes, centres, counts) -> torch.Tensor:
    """``Var_c = mean_{x in c} ‖x − μ_c‖²`` (float64), computed in blocks of rows that stay in
    cache (3-4x faster than one N×D temporary on a CPU); deviations are taken in the
    features' precision after centring, so nothing cancels, and summed in float64."""
    var = torch.zeros(len(centres), dtype=torch.float64, device=x.device)
    for xb, cb in zip(x.split(4096), codes.split(4096)):
        var.index_add_(0, cb, (xb - centres[cb]).pow_(2).sum(1).double())
    return var / counts.double()


def linear_probe(
    train_x: ArrayLike,
    train_y: ArrayLike,
    test_x: ArrayLike,
    test_y: ArrayLike,
    *,
    C: float = 1.0,
    max_iter: int = 50,
    standardize: bool = True,
    whiten: bool = True,
    return_model: bool = False,
    per_sample: bool = False,
) -> float | tuple[float, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Accuracy on the test set of a linear classifier trained on frozen features.

    Multinomial logistic regression with the objective of scikit-learn's
    ``LogisticRegression(C=C)``: ``Σ_i CE(W x_i + b, y_i) + ‖W‖²/(2C)``, minimised
    full-batch with L-BFGS (strong Wolfe line search) on the features' device. Features
    are standardised with the training mean and std first (``standardize=True``).

    Speed: with ``whiten=True`` the same objective is solved in whitened coordinates,
    ``W = P V`` with ``P = U (Λ + δ)^(-1/2)`` from the eigendecomposition ``U Λ Uᵀ`` of the
    features' covariance; the loss becomes ``CE(X P V + b) + ‖P V‖²/(2C)``, whose curvature is
    close to uniform, so L-BFGS needs tens of iterations instead of hundreds. The
    gradient is written out (``(softmax − onehot)ᵀ X P``) so that the large product reads the
    features in memory order.

    Returns the test accuracy (float), or ``(accuracy, W, b, mean, std)`` with
    ``return_model=True`` (``W`` in standardised coordinates, D×K), or with ``per_sample=True``
    the test samples' booleans (predicted right or not) whose mean is the accuracy.
    """
    if return_model and per_sample:
        raise ValueError("ask for return_model or per_sample, not both")
    x, y, tx, ty = _check_train_test(train_x, train_y, test_x, test_y)
    if C <= 0:
        raise ValueError(f"C must be positive, got {C}")
    codes, classes = _encode(y)
    x = x.float()
    mean, std = _standardiser(x, standardize)
    xs = (x - mean) / std
    P = _whitener(xs) if whiten else torch.eye(x.shape[1], device=x.device)
    V, b = _fit_logistic(xs @ P, P, F.one_hot(codes, len(classes)).float(), C, max_iter)
    W = P @ V
    pred = classes[(((tx.float() - mean) / std) @ W + b).argmax(1)]
    if per_sample:
        return pred == ty
    acc = (pred == ty).double().mean().item()
    if return_model:
        return acc, W, b, mean, std
    return acc


def _standardiser(x: torch.Tensor, standardize: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """The training features' mean and std (clamped at 1e-6), or 0 and 1 to leave them as they
    are."""
    if standardize:
        return x.mean(0), x.std(0).clamp_min(1e-6)
    d = x.shape[1]
    return torch.zeros(d, device=x.device), torch.ones(d, device=x.device)


def _whitener(xs: torch.Tensor) -> torch.Tensor:
    """``P = U (Λ + δ)^(-1/2)`` from the eigendecomposition ``U Λ Uᵀ`` of the (standardised)
    features' second moment, in double precision; ``δ`` = 1e-3 × the mean eigenvalue."""
    lam, U = torch.linalg.eigh((xs.T @ xs).double() / len(xs))
    return (U * (lam.clamp_min(0) + 1e-3 * lam.clamp_min(0).mean() + 1e-12).rsqrt()).float()


def _fit_logistic(xw, P, onehot, C: float, max_iter: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(V, b)`` minimising ``Σ_i CE(xw_i V + b, y_i)/n + ‖P V‖²/(2Cn)`` (scikit-learn's
    objective divided by n, so that its scale does not depend on the data size), full-batch
    L-BFGS with a strong Wolfe line search from zero; the gradient written out,
    ``(softmax − onehot)ᵀ xw``, so that the large product reads the features in memory order."""
    n, d = xw.shape
    k = onehot.shape[1]
    V = torch.zeros(d, k, device=xw.device)
    b = torch.zeros(k, device=xw.device)
    V.grad, b.grad = torch.zeros_like(V), torch.zeros_like(b)
    opt = torch.optim.LBFGS(
        [V, b],
        lr=1,
        max_iter=max_iter,
        history_size=20,
        tolerance_grad=1e-7,
        tolerance_change=1e-10,
        line_search_fn="strong_wolfe",
    )

    def closure():
        logp = torch.log_softmax(xw @ V + b, dim=1)
        W = P @ V
        loss = -(logp * onehot).sum() / n + (W**2).sum() / (2 * C * n)
        g = (logp.exp() - onehot) / n  # n×k
        V.grad.copy_((g.T @ xw).T + P.T @ W / (C * n))
        b.grad.copy_(g.sum(0))
        return loss

    opt.step(closure)
    return V, b


def knn_accuracy(
    train_x: ArrayLike,
    train_y: ArrayLike,
    test_x: ArrayLike,
    test_y: ArrayLike,
    k: int = 20,
    metric: str = "cosine",
    per_sample: bool = False,
) -> float | torch.Tensor:
    """k-nearest-neighbour accuracy: each test point takes the majority label of its ``k``
    nearest training points (``metric`` ``"cosine"`` or ``"euclidean"``; ties go to the
    smallest label, as in scikit-learn's ``KNeighborsClassifier``). ``per_sample``: the test
    samples' booleans instead of their mean."""
    x, y, tx, ty = _check_train_test(train_x, train_y, test_x, test_y)
    if not 1 <= k <= len(x):
        raise ValueError(
            f"k must be between 1 and the number of training points ({len(x)}), got {k}; "
            "with fewer training points (a small eval_size), lower k"
        )
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
    correct = classes[torch.cat(preds)] == ty
    return correct if per_sample else correct.double().mean().item()


def fewshot_ncc_accuracy(
    train_x: ArrayLike,
    train_y: ArrayLike,
    test_x: ArrayLike,
    test_y: ArrayLike,
    shots: int,
    draws: int = 5,
    seed: int = 0,
) -> float:
    """Few-shot accuracy of the nearest class centre: each class's centre is the mean of
    ``shots`` of its training images, drawn at random, and every test image takes the class of
    the nearest centre; the mean over ``draws`` draws of the labelled images (seeded).

    With one shot per class this is a 1-nearest-prototype classifier; as ``shots`` grows it
    tends to :func:`ncc_accuracy` with train centres. Features that cluster by class need few
    labels to place good centres, the link between clustering and downstream classification
    with scarce labels (Snell et al.'s prototypical networks, NeurIPS 2017, classify so).
    """
    x, y, tx, ty = _check_train_test(train_x, train_y, test_x, test_y)
    codes, classes = _encode(y)
    k = len(classes)
    sizes = torch.bincount(codes, minlength=k)
    if draws < 1:
        raise ValueError(f"draws must be at least 1, got {draws}")
    if shots < 1 or int(sizes.min()) < shots:
        raise ValueError(
            f"shots must be between 1 and the smallest class's size ({int(sizes.min())}), got "
            f"{shots}"
        )
    g = torch.Generator().manual_seed(int(seed))
    start = torch.cumsum(sizes.cpu(), 0) - sizes.cpu()  # where each class begins, sorted by class
    correct = 0.0
    for _ in range(draws):
        keys = torch.rand(len(codes), generator=g)
        order = torch.argsort(codes.cpu().double() * 2 + keys.double())  # by class, then at random
        chosen = order[(start[:, None] + torch.arange(shots)[None, :]).flatten()].to(x.device)
        centres, _ = _centres(x[chosen], codes[chosen], k)
        correct += (classes[_nearest_centre(tx, centres)] == ty).double().mean().item()
    return correct / draws


def sample_ncc(query_views: ArrayLike, ref_views: ArrayLike | None = None) -> float:
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
        raise ValueError(
            f"ref_views must be K×M'×D matching query_views {tuple(q.shape)}, got {tuple(r.shape)}"
        )
    k, m, d = q.shape
    ids = torch.arange(k, device=q.device)
    return ncc_accuracy(
        q.reshape(k * m, d),
        ids.repeat_interleave(m),
        r.reshape(-1, d),
        ids.repeat_interleave(r.shape[1]),
    )


def view_tightness(views: ArrayLike) -> float:
    """How tightly the views of each image cluster, relative to how far apart the images are.

    ``views`` is K×M×D: M augmented views of each of K images, with centres
    ``c_i = mean_m v_im``. The value is

        (1/K Σ_i 1/M Σ_m ‖v_im − c_i‖²) / (1/(K(K−1)) Σ_{i≠j} ‖c_i − c_j‖²),

    the mean squared distance of a view from its image's centre over the mean squared
    distance between two images' centres. Multiplying every feature by a constant changes
    neither, so unlike the raw spread of the views it does not fall when a network merely
    shrinks its features. 0: every view on its centre; near 1 or above: views of one image
    are as far apart as different images.
    """
    v = torch.as_tensor(views).double()
    if v.ndim != 3 or v.shape[0] < 2:
        raise ValueError(f"views must be K×M×D with K ≥ 2 images, got {tuple(v.shape)}")
    k = v.shape[0]
    centres = v.mean(1)
    within = (v - centres[:, None]).pow(2).sum(-1).mean()
    # Σ_{i≠j} ‖c_i − c_j‖² = 2K Σ_i ‖c_i − c̄‖²: no K×K matrix needed
    between = 2 * k * (centres - centres.mean(0)).pow(2).sum() / (k * (k - 1))
    if between == 0:
        raise ValueError("all images have the same centre: view tightness is undefined")
    return float(within / between)


def effective_rank(features: ArrayLike, standardize: bool = False) -> float:
    """Effective rank (Roy & Vetterli, 2007) of N×D features: ``exp(H(p))`` with
    ``p_i = σ_i / Σ_j σ_j`` the normalised singular values of the centred features and
    ``H`` the Shannon entropy. It is D when all D directions carry equal spread, 1 when a
    single direction carries it all, and 0 for features with no spread at all.

    With ``standardize=True`` each dimension is first divided by its standard deviation
    (the spectrum of the correlation matrix), so that rescaling a dimension, which loses
    no information, does not change the result; dimensions without spread are dropped.
    """
    x = _as_features(features).double()
    x = x - x.mean(0)
    if standardize:
        std = x.std(0)
        x = x[:, std > 0] / std[std > 0]
        if x.shape[1] == 0:
            return 0.0
    sigma = torch.linalg.svdvals(x)
    if sigma.sum() <= 0:
        return 0.0
    p = sigma / sigma.sum()
    p = p[p > 0]
    return float(torch.exp(-(p * p.log()).sum()))


def uniformity(features: ArrayLike, t: float = 2.0) -> float:
    """Uniformity of Wang & Isola (ICML 2020): ``log mean_{i≠j} exp(−t ‖f_i − f_j‖²)`` of the
    L2-normalised features. Lower means spread more evenly over the sphere; its minimum
    depends only on the dimension and the number of points, not on a loss's temperature."""
    x = F.normalize(_as_features(features).double(), dim=1)
    n = len(x)
    if n < 2:
        raise ValueError(f"uniformity needs at least 2 samples, got {n}")
    sq = torch.cdist(x, x).pow(2)
    off = ~torch.eye(n, dtype=torch.bool)
    return float(torch.logsumexp(-t * sq[off], dim=0) - np.log(n * (n - 1)))
