"""Class statistics from running sums, so that the data never has to fit in memory.

Every clustering ruler of the book needs only a few sums per class (Ben-Shaul et al., 2023,
§3; Galanti et al., 2022):

- class centres ``μ_c = S_c / n_c`` with ``S_c = Σ_{x in c} x``;
- within-class variances ``Var_c = Q_c / n_c − ‖μ_c‖²`` with ``Q_c = Σ_{x in c} ‖x‖²``;
- CDNV ``= mean_{i<j} (Var_i + Var_j) / (2 ‖μ_i − μ_j‖²)``;
- the covariance ``C = M / n − m mᵀ`` (``M = Σ x xᵀ``, ``m`` the mean) behind ZCA whitening;
- NCC accuracy: a second pass scores each sample against the fitted centres.

:class:`ClassStats` adds a batch at a time. Sums are kept in float64 around a shift (the mean
of the first batch's first rows), so that ``Q_c / n_c − ‖μ_c‖²`` does not cancel away when the
features sit far from the origin; each batch is reduced in its own precision first, in blocks of
rows that stay in cache, which keeps this within a small factor of the cost of reading the
features (``make bench``, row 4b). The results equal
:func:`sslkit.metrics.cdnv`, :func:`~sslkit.metrics.ncc_accuracy` and
:func:`~sslkit.metrics.whitened_ncc_accuracy` on the same features (the tests check it).
"""

from __future__ import annotations

import torch

from .metrics import NCC_ROWS, WHITEN_EPS, _argmin_by_blocks, _mean_pair_ratio, _SameCentres

__all__ = ["ClassStats", "NCCScore", "whiten"]


def _shifted_sums(x, y, shift, k: int, block: int = 512):
    """``Σ_{x in c} (x − shift)`` (K×D) and ``Σ_{x in c} ‖x − shift‖²`` (K), in blocks of rows
    small enough to stay in cache: each block is read once from memory, where the whole
    N×D difference would be written out and read back (4x slower on a CPU)."""
    s = torch.zeros(k, x.shape[1], dtype=x.dtype, device=x.device)
    q = torch.zeros(k, dtype=x.dtype, device=x.device)
    for xb, yb in zip(x.split(block), y.split(block)):
        xs = xb - shift
        s.index_add_(0, yb, xs)
        q.index_add_(0, yb, (xs * xs).sum(1))
    return s, q


def _nearest(x: torch.Tensor, centres: torch.Tensor, shift=None) -> torch.Tensor:
    """``argmin_c ‖x − μ_c‖² = argmin_c (‖μ_c‖² − 2 x·μ_c)``, one fused ``addmm`` per block of
    rows and classes (memory bounded however many classes, as :func:`sslkit.metrics.ncc_accuracy`).

    With ``shift`` (a point near the data, e.g. its mean), both sides are taken relative to it
    first: distances do not change, but ``‖μ_c‖²`` no longer dwarfs the differences between
    classes when the features sit far from the origin (float32 would round them away)."""
    if shift is not None:
        centres = centres - shift
    sq = (centres**2).sum(1)
    parts = []
    for xb in x.split(NCC_ROWS):
        if shift is not None:
            xb = xb - shift
        parts.append(_argmin_by_blocks(xb, centres, sq, _addmm_distances))
    return torch.cat(parts)


def _addmm_distances(sq: torch.Tensor, x: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
    """``‖μ_c‖² − 2 x·μ_c`` in one fused ``addmm``."""
    return torch.addmm(sq, x, centres.T, alpha=-2)


class ClassStats:
    """Running per-class counts, sums and sums of squared norms of features (and, with
    ``covariance=True``, the sum of outer products for whitening).

    ``update(x, y)`` takes an N×D batch and its labels ``y`` in ``0..num_classes−1``.

    >>> s = ClassStats(2)
    >>> s.update(torch.tensor([[0.0], [2.0], [10.0]]), torch.tensor([0, 0, 1]))
    >>> s.centres.flatten().tolist(), s.variances.tolist()
    ([1.0, 10.0], [1.0, 0.0])
    """

    def __init__(self, num_classes: int, covariance: bool = False):
        if num_classes < 1:
            raise ValueError(f"num_classes must be at least 1, got {num_classes}")
        self.k = int(num_classes)
        self.covariance_wanted = covariance
        self.n = None  # per-class counts (float64), set by the first batch
        self.shift = None

    def update(self, x: torch.Tensor, y: torch.Tensor) -> None:
        x = x.detach()
        if x.ndim != 2:
            raise ValueError(f"features must be N×D, got shape {tuple(x.shape)}")
        if torch.is_floating_point(x) is False or x.dtype in (torch.float16, torch.bfloat16):
            x = x.float()
        y = y.to(x.device).long()
        if len(y) != len(x):
            raise ValueError(f"{len(x)} feature rows but {len(y)} labels")
        if len(y) and (int(y.min()) < 0 or int(y.max()) >= self.k):
            raise ValueError(
                f"labels must lie in 0..{self.k - 1}, got {int(y.min())}..{int(y.max())}"
            )
        if not len(x):
            return  # an empty batch adds nothing
        # any point near the data will do as the shift: the mean of a few thousand rows
        shift = self.shift if self.shift is not None else x[:4096].mean(0)
        s, q = _shifted_sums(x, y, shift.to(x.dtype), self.k)
        # a NaN or inf anywhere in the batch reaches these sums (q adds squares, which cannot
        # cancel): checked on K numbers, not N×D; nothing is kept from a rejected batch
        if not (torch.isfinite(q).all() and torch.isfinite(s).all()):
            raise ValueError(
                "features have non-finite values (NaN or inf), or values so large that their "
                "squares overflow; drop or fix those rows (a NaN usually comes from a diverged "
                "network); this batch was not added"
            )
        if self.shift is None:
            self.shift = shift
            f64 = dict(dtype=torch.float64, device=x.device)
            self.n = torch.zeros(self.k, **f64)
            self.s = torch.zeros(self.k, x.shape[1], **f64)
            self.q = torch.zeros(self.k, **f64)
            self.m = torch.zeros(x.shape[1], x.shape[1], **f64) if self.covariance_wanted else None
        self.n += torch.bincount(y, minlength=self.k).double()
        self.s += s.double()
        self.q += q.double()
        if self.m is not None:
            xs = x - self.shift.to(x.dtype)
            self.m += (xs.T @ xs).double()

    def _fitted(self):
        if self.n is None:
            raise ValueError("no batch added yet: call update(features, labels) first")
        return self.n > 0

    @property
    def counts(self) -> torch.Tensor:
        self._fitted()
        return self.n.long()

    @property
    def present(self) -> torch.Tensor:
        """The classes with at least one sample."""
        return torch.nonzero(self._fitted()).flatten()

    @property
    def centres(self) -> torch.Tensor:
        """``μ_c`` (K×D, float64); a class without samples has a NaN centre."""
        self._fitted()
        return self.shift.double() + self.s / self.n[:, None]

    @property
    def variances(self) -> torch.Tensor:
        """``Var_c = mean_{x in c} ‖x − μ_c‖² = Q_c / n_c − ‖S_c / n_c‖²`` (shifted sums)."""
        self._fitted()
        mean = self.s / self.n[:, None]
        return (self.q / self.n - (mean**2).sum(1)).clamp_min(0)

    def cdnv(self) -> float:
        """``mean_{i<j} (Var_i + Var_j) / (2 ‖μ_i − μ_j‖²)`` over the classes present, as
        :func:`sslkit.metrics.cdnv`."""
        keep = self.present
        if len(keep) < 2:
            raise ValueError("cdnv needs at least two classes with samples")
        mu, var = (self.s / self.n[:, None])[keep], self.variances[keep]
        try:
            return _mean_pair_ratio(mu, var)
        except _SameCentres:
            raise ValueError(
                "two classes have the same centre (collapsed features?): CDNV is undefined"
            ) from None

    def mean_covariance(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The mean ``m`` and covariance ``M / n − m mᵀ`` of all samples (float64)."""
        self._fitted()
        if self.m is None:
            raise ValueError("create ClassStats(..., covariance=True) to whiten")
        n = self.n.sum()
        mean = self.s.sum(0) / n
        return self.shift.double() + mean, self.m / n - torch.outer(mean, mean)

    def whitener(self, eps: float = WHITEN_EPS) -> tuple[torch.Tensor, torch.Tensor]:
        """ZCA whitening ``(μ, W)`` as :func:`sslkit.metrics.zca_whitener`, from the sums."""
        mu, cov = self.mean_covariance()
        lam, U = torch.linalg.eigh(cov)
        lam = lam.clamp_min(0)
        floor = eps * lam.mean() if lam.mean() > 0 else torch.tensor(1.0, dtype=lam.dtype)
        return mu, (U * (lam + floor).rsqrt()) @ U.T


def whiten(x: torch.Tensor, whitener) -> torch.Tensor:
    """``(x − μ) W`` in float64: features whitened by a ZCA ``whitener = (μ, W)``
    (:meth:`ClassStats.whitener`)."""
    mu, w = whitener
    return (x.double() - mu.to(x.device)) @ w.to(x.device)


class NCCScore:
    """NCC accuracy accumulated over batches against fixed centres: ``add(x, y)`` counts the
    samples whose nearest centre (``argmin_c ‖x − μ_c‖``, among the classes ``present``) is
    their own class. With a ZCA ``whitener = (μ, W)``, features and centres are whitened
    first (the whitened-NCC ruler). ``per_sample=True`` keeps each sample's boolean.

    With one class present, its samples all count as right: a trivial score that
    :func:`sslkit.analyze` reports for a target of one group (where
    :func:`sslkit.metrics.ncc_accuracy` refuses one class)."""

    def __init__(self, stats: ClassStats, whitener=None, per_sample: bool = False):
        self.classes = stats.present
        centres = stats.centres[self.classes]
        self.whitener = whitener
        if whitener is not None:
            mu, w = whitener
            centres = (centres - mu) @ w
        self.centres = centres
        self.shift = None if whitener is not None else stats.shift.double()
        self.correct = 0
        self.total = 0
        self.per_sample = [] if per_sample else None

    def add(self, x: torch.Tensor, y: torch.Tensor, whitened: torch.Tensor | None = None) -> None:
        """Score the N×D batch ``x`` with labels ``y``. ``whitened``: ``whiten(x, whitener)``
        when it is already computed (scores that share a whitener whiten each batch once)."""
        x = x.detach()
        if self.whitener is not None:
            x = whiten(x, self.whitener) if whitened is None else whitened
            centres = self.centres
            shift = None
        else:
            dtype = x.dtype if x.dtype in (torch.float32, torch.float64) else torch.float32
            x = x.to(dtype)
            centres = self.centres.to(x.device, dtype)
            shift = self.shift.to(x.device, dtype)
        hit = self.classes.to(x.device)[_nearest(x, centres.to(x.device), shift)] == y.to(x.device)
        self.correct += int(hit.sum())
        self.total += len(hit)
        if self.per_sample is not None:
            self.per_sample.append(hit.cpu())

    @property
    def accuracy(self) -> float:
        if not self.total:
            raise ValueError("no sample scored yet: call add(features, labels)")
        return self.correct / self.total
