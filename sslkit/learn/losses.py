"""SSL losses, each split into the named terms the book plots one by one.

Every loss returns a :class:`LossOutput`: the weighted ``total`` to back-propagate and a
dict of *unweighted* ``terms``. ``z1`` and ``z2`` are the embeddings (N×D) of two views
of the same N images; row ``i`` of both comes from image ``i``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

__all__ = [
    "VICREG_WEIGHTS",
    "regularization_ratio",
    "LossOutput",
    "invariance_loss",
    "variance_loss",
    "covariance_loss",
    "vicreg",
    "nt_xent",
    "barlow_twins",
    "cross_entropy",
]


# VICReg's default weights (Bardes, Ponce & LeCun, 2022): invariance λ, variance μ, covariance ν.
VICREG_WEIGHTS = {"inv_weight": 25.0, "var_weight": 25.0, "cov_weight": 1.0}


@dataclass
class LossOutput:
    """``total``: the scalar to minimise; ``terms``: each unweighted term (scalars)."""

    total: torch.Tensor
    terms: dict[str, torch.Tensor] = field(default_factory=dict)


def _check_pair(z1: torch.Tensor, z2: torch.Tensor, name: str) -> None:
    if z1.ndim != 2 or z1.shape != z2.shape:
        raise ValueError(
            f"{name}: z1 and z2 must both be N×D with the same shape; "
            f"got {tuple(z1.shape)} and {tuple(z2.shape)}"
        )
    if z1.shape[0] < 2:
        raise ValueError(f"{name}: needs a batch of at least 2 embeddings, got {z1.shape[0]}")


def _off_diagonal(m: torch.Tensor) -> torch.Tensor:
    n = m.shape[0]
    return m.flatten()[:-1].view(n - 1, n + 1)[:, 1:].flatten()


def invariance_loss(z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
    """VICReg invariance ``s(Z, Z') = (1/(N D)) Σ_i ‖z_i − z'_i‖²`` (mean squared error)."""
    _check_pair(z1, z2, "invariance_loss")
    return F.mse_loss(z1, z2)


def variance_loss(z: torch.Tensor, eps: float = 1e-4, gamma: float = 1.0) -> torch.Tensor:
    """VICReg variance hinge ``v(Z) = (1/D) Σ_j max(0, γ − sqrt(Var(z_j) + ε))`` for one branch."""
    std = torch.sqrt(z.var(dim=0) + eps)
    return F.relu(gamma - std).mean()


def covariance_loss(z: torch.Tensor) -> torch.Tensor:
    """VICReg covariance ``c(Z) = (1/D) Σ_{i≠j} C(Z)_{ij}²``, ``C = Z̃ᵀZ̃/(N−1)``, Z̃ centred; one
    branch."""
    n, d = z.shape
    zc = z - z.mean(dim=0)
    cov = (zc.T @ zc) / (n - 1)
    return _off_diagonal(cov).pow(2).sum() / d


def vicreg(
    z1: torch.Tensor,
    z2: torch.Tensor,
    inv_weight: float = VICREG_WEIGHTS["inv_weight"],
    var_weight: float = VICREG_WEIGHTS["var_weight"],
    cov_weight: float = VICREG_WEIGHTS["cov_weight"],
) -> LossOutput:
    """VICReg (Bardes, Ponce & LeCun, ICLR 2022, https://arxiv.org/abs/2105.04906).

    ``L = λ s(Z, Z') + μ [v(Z) + v(Z')]/2 + ν [c(Z) + c(Z')]``
    with the paper's defaults :data:`VICREG_WEIGHTS` and the official code's conventions
    (std = sqrt(var + 1e-4), the variance term averaged over the branches, the covariance
    term summed over them). Set a weight to 0 to switch a term off; the unweighted
    ``invariance``, ``variance`` and ``covariance`` terms are always returned.

    Examples
    --------
    >>> out = vicreg(torch.randn(64, 16), torch.randn(64, 16))
    >>> sorted(out.terms)
    ['covariance', 'invariance', 'variance']
    """
    _check_pair(z1, z2, "vicreg")
    inv = invariance_loss(z1, z2)
    var = (variance_loss(z1) + variance_loss(z2)) / 2
    cov = covariance_loss(z1) + covariance_loss(z2)
    total = inv_weight * inv + var_weight * var + cov_weight * cov
    return LossOutput(total, {"invariance": inv, "variance": var, "covariance": cov})


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float = 0.5) -> LossOutput:
    """SimCLR's NT-Xent (Chen et al., ICML 2020, https://arxiv.org/abs/2002.05709).

    With the 2N embeddings L2-normalised and ``s_ij = cos(z_i, z_j) / τ``, each view's
    positive is the other view of its image and the other 2N − 2 views are negatives:
    ``ℓ_i = −log exp(s_{i,p(i)}) / Σ_{k≠i} exp(s_ik)``, averaged over all 2N views.
    Terms: ``alignment`` (mean −s_{i,p(i)}·τ, i.e. minus the positive cosine) and
    ``uniformity`` (the mean log-sum-exp over the other views), so ``total = alignment/τ +
    uniformity``.
    """
    _check_pair(z1, z2, "nt_xent")
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    n = z1.shape[0]
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    sim = (z @ z.T) / temperature
    sim = sim.masked_fill(torch.eye(2 * n, dtype=torch.bool, device=z.device), float("-inf"))
    pos = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(z.device)
    positive = sim[torch.arange(2 * n, device=z.device), pos]
    lse = torch.logsumexp(sim, dim=1)
    total = (lse - positive).mean()
    return LossOutput(
        total, {"alignment": -positive.mean() * temperature, "uniformity": lse.mean()}
    )


def barlow_twins(
    z1: torch.Tensor,
    z2: torch.Tensor,
    redundancy_weight: float = 5e-3,
    inv_weight: float = 1.0,
    eps: float = 1e-5,
) -> LossOutput:
    """Barlow Twins (Zbontar et al., ICML 2021, https://arxiv.org/abs/2103.03230).

    With each embedding dimension standardised over the batch and
    ``C = Z̃₁ᵀ Z̃₂ / N`` the cross-correlation matrix,
    ``L = w_inv Σ_i (1 − C_ii)² + w_red Σ_{i≠j} C_ij²`` (the paper writes λ for ``w_red``).
    Terms: ``invariance`` (the on-diagonal sum) and ``redundancy`` (the off-diagonal sum,
    unweighted), named as VICReg's are. ``inv_weight`` (1 by default) and
    ``redundancy_weight`` (5e-3) scale them; 0 switches a term off for the
    one-term-at-a-time ablation.
    """
    _check_pair(z1, z2, "barlow_twins")
    n = z1.shape[0]

    def standardise(z):
        return (z - z.mean(0)) / torch.sqrt(z.var(0, unbiased=False) + eps)

    c = standardise(z1).T @ standardise(z2) / n
    on = (torch.diagonal(c) - 1).pow(2).sum()
    off = _off_diagonal(c).pow(2).sum()
    return LossOutput(
        inv_weight * on + redundancy_weight * off, {"invariance": on, "redundancy": off}
    )


def cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> LossOutput:
    """Classification loss for the supervised baseline and the pretext tasks.

    Terms: ``cross_entropy`` and ``accuracy`` (of the batch; not differentiated).
    """
    if logits.ndim != 2 or targets.shape != logits.shape[:1]:
        raise ValueError(
            f"cross_entropy: logits N×K and targets N expected; got "
            f"{tuple(logits.shape)} and {tuple(targets.shape)}"
        )
    ce = F.cross_entropy(logits, targets)
    acc = (logits.detach().argmax(1) == targets).float().mean()
    return LossOutput(ce, {"cross_entropy": ce, "accuracy": acc})


def regularization_ratio(loss: dict) -> float:
    """Weight of the variance term relative to the invariance term, each divided by its
    default (:data:`sslkit.losses.VICREG_WEIGHTS`): 1 for the default loss, 0 without
    regularization, ∞ without invariance.

    >>> regularization_ratio({}), regularization_ratio({"inv_weight": 5})
    (1.0, 5.0)
    >>> regularization_ratio({"inv_weight": 0})
    inf
    """
    inv = loss.get("inv_weight", VICREG_WEIGHTS["inv_weight"]) / VICREG_WEIGHTS["inv_weight"]
    reg = loss.get("var_weight", VICREG_WEIGHTS["var_weight"]) / VICREG_WEIGHTS["var_weight"]
    return math.inf if inv == 0 else reg / inv
