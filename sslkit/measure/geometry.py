"""How one network's features relate to another's, and where the class variance lies.

The tests of the paper's account of *why* SSL clusters (chapter 05b):

- :func:`linear_predictability`: the held-out R² of the best linear (ridge) map from one set of
  features to another. If training only reshaped the untrained network linearly, a linear map
  from the untrained features would predict the trained ones (R² near 1).
- :func:`linear_cka`: linear centred kernel alignment (Kornblith et al., ICML 2019), the
  similarity of two representations invariant to rotation and scale.
- :func:`between_class_share`: the share of the between-class variance that lies in the top
  principal directions of all the features: whether the directions of most spread are the
  directions that separate the classes.
- :func:`cluster_balance`: how equal the sizes of k-means clusters are (normalised entropy).
"""

from __future__ import annotations

import torch

from .metrics import _as_features, _as_labels, class_centres

__all__ = [
    "RIDGE",
    "linear_predictability",
    "linear_cka",
    "between_class_share",
    "size_entropy",
    "cluster_balance",
]

# Ridge penalty relative to the mean eigenvalue of the source features' covariance: small
# enough to leave every well-measured direction, large enough that dead units do no harm.
RIDGE = 1e-3


@torch.no_grad()
def linear_predictability(src_train, dst_train, src_test, dst_test, ridge: float = RIDGE) -> float:
    """Held-out R² of ridge regression from ``src`` features to ``dst`` features.

    ``B = (XᵀX + λI)⁻¹ XᵀY`` on the centred training features (``λ = ridge`` × the mean
    eigenvalue of ``XᵀX``), then ``R² = 1 − Σ‖Y_test − X_test B‖² / Σ‖Y_test − ȳ‖²`` over all
    output dimensions together (the share of the target's total variance explained)."""
    x, y = _as_features(src_train).double(), _as_features(dst_train, "dst_train").double()
    tx, ty = (
        _as_features(src_test, "src_test").double(),
        _as_features(dst_test, "dst_test").double(),
    )
    if len(x) != len(y) or len(tx) != len(ty):
        raise ValueError("source and target features must describe the same images, row by row")
    mx, my = x.mean(0), y.mean(0)
    xc, yc = x - mx, y - my
    gram = xc.T @ xc
    lam = ridge * torch.linalg.eigvalsh(gram).clamp_min(0).mean()
    beta = torch.linalg.solve(gram + lam * torch.eye(len(gram), dtype=gram.dtype), xc.T @ yc)
    pred = (tx - mx) @ beta + my
    total = ((ty - ty.mean(0)) ** 2).sum()
    if total == 0:
        raise ValueError("the target features do not vary on the test images: R² is undefined")
    return float(1 - ((ty - pred) ** 2).sum() / total)


@torch.no_grad()
def linear_cka(x, y) -> float:
    """Linear CKA, ``‖YᵀX‖²_F / (‖XᵀX‖_F ‖YᵀY‖_F)`` on centred features (Kornblith et al.,
    2019): 1 for representations equal up to rotation and scale."""
    x, y = _as_features(x).double(), _as_features(y, "y").double()
    x, y = x - x.mean(0), y - y.mean(0)
    return float((y.T @ x).norm() ** 2 / ((x.T @ x).norm() * (y.T @ y).norm()))


@torch.no_grad()
def between_class_share(features, labels, top: int | None = None) -> float:
    """The share of the between-class variance in the top ``top`` principal directions of the
    features (default: classes − 1, as many as the class means span):
    ``tr(U_kᵀ S_B U_k) / tr(S_B)``, ``S_B`` the size-weighted covariance of the class means,
    ``U_k`` the top eigenvectors of the total covariance. 1: the directions of most spread are
    exactly where the classes differ."""
    x = _as_features(features).double()
    y = _as_labels(labels, len(x), x.device)
    centres, classes = class_centres(x, y)
    counts = torch.bincount(torch.searchsorted(classes, y), minlength=len(classes)).double()
    mu = x.mean(0)
    diff = (centres - mu) * (counts / len(x)).sqrt()[:, None]
    between = diff.T @ diff
    top = len(classes) - 1 if top is None else int(top)
    if not 1 <= top <= x.shape[1]:
        raise ValueError(f"top must be between 1 and the dimension {x.shape[1]}, got {top}")
    _, vecs = torch.linalg.eigh((x - mu).T @ (x - mu) / len(x))
    u = vecs[:, -top:]
    return float(torch.trace(u.T @ between @ u) / torch.trace(between))


def size_entropy(labels, k: int | None = None) -> float:
    """Normalised entropy of the group sizes, ``−Σ p_j log p_j / log k``: 1 for equal sizes,
    0 when every sample is in one group."""
    y = torch.as_tensor(labels).long()
    k = int(y.max()) + 1 if k is None else k
    p = torch.bincount(y, minlength=k).double() / len(y)
    p = p[p > 0]
    return float(-(p * p.log()).sum() / torch.log(torch.tensor(float(k))))


@torch.no_grad()
def cluster_balance(
    features, k: int, seed: int = 0, iterations: int = 25, restarts: int = 3
) -> float:
    """:func:`size_entropy` of ``k`` k-means clusters of the standardised features: Lloyd's
    algorithm (``iterations`` steps) from k-means++ starts (Arthur & Vassilvitskii, 2007),
    the best of ``restarts`` by within-cluster sum of squares, drawn with ``seed``."""
    x = _as_features(features).float()
    x = (x - x.mean(0)) / x.std(0).clamp_min(1e-6)
    g = torch.Generator().manual_seed(int(seed))
    best, best_cost = None, float("inf")
    for _ in range(restarts):
        centres = _kmeans_pp(x, k, g)
        for _ in range(iterations):
            assign = torch.cdist(x, centres).argmin(1)
            counts = torch.bincount(assign, minlength=k)
            moved = (
                torch.zeros_like(centres).index_add_(0, assign, x) / counts.clamp_min(1)[:, None]
            )
            centres = torch.where(counts[:, None] > 0, moved, centres)
        dist = torch.cdist(x, centres)
        cost = float(dist.min(1).values.pow(2).sum())
        if cost < best_cost:
            best, best_cost = dist.argmin(1), cost
    return size_entropy(best, k)


def _kmeans_pp(x: torch.Tensor, k: int, g: torch.Generator) -> torch.Tensor:
    """k-means++ seeding: each next centre drawn with probability ∝ squared distance to the
    nearest centre so far."""
    centres = [x[torch.randint(len(x), (1,), generator=g)].squeeze(0)]
    d2 = ((x - centres[0]) ** 2).sum(1)
    for _ in range(k - 1):
        i = (
            torch.multinomial(d2 / d2.sum(), 1, generator=g)
            if d2.sum() > 0
            else torch.zeros(1, dtype=torch.long)
        )
        centres.append(x[i].squeeze(0))
        d2 = torch.minimum(d2, ((x - centres[-1]) ** 2).sum(1))
    return torch.stack(centres)
