"""Checkers for the book's exercises: a student passes a function, the checker tells
whether it is right by comparing it with sslkit's reference on random inputs.

Each checker returns ``True`` and prints a confirmation, or raises ``AssertionError``
with a hint of what differs. The book's build runs each checker on the reference
solution, so a checker that rejects a correct answer fails the build.
"""

from __future__ import annotations

import contextlib
import functools

import numpy as np
import torch
import torch.nn.functional as F

from .. import MOVED
from ..experiment.analysis import holm
from ..learn import augment, losses
from ..measure import geometry, metrics, streaming, targets

__all__ = [
    "check_rotation",
    "check_invariance_loss",
    "check_variance_loss",
    "check_ncc",
    "check_cdnv",
    "check_random_targets",
    "check_nt_xent",
    "check_barlow_terms",
    "check_regularization_ratio",
    "check_effective_rank",
    "check_vicreg_terms",
    "check_holm",
    "check_random_grouping",
    "check_seeds_needed",
    "check_cdnv_from_sums",
    "check_linear_predictability",
]


def _close(got, expected, what: str, tol: float = 1e-4) -> None:
    try:
        got = float(got) if not isinstance(got, torch.Tensor) else float(got.detach())
    except (TypeError, ValueError, RuntimeError):
        shape = tuple(got.shape) if hasattr(got, "shape") else type(got).__name__
        raise AssertionError(f"{what}: expected one number, got {shape}") from None
    # Relative tolerance, and an absolute one only for values near zero: an absolute
    # tolerance of ``tol`` would accept a 1% error in a CDNV of 0.05.
    if not np.isclose(got, float(expected), rtol=tol, atol=1e-6):
        raise AssertionError(f"{what}: got {got:.6g}, expected {float(expected):.6g}")


# The references of the checker that is running (set by @_own_code): while the student's
# function runs they raise, so that calling sslkit's answer scores nothing.
_REFERENCES: list[tuple[object, str]] = []


class ReferenceCalled(RuntimeError):
    """A student's function called the sslkit function it is meant to re-implement."""


def _own_code(*references: tuple[object, str]):
    """Mark a checker's references ``(module, name)``: a student's function may not call them."""

    def mark(checker):
        @functools.wraps(checker)
        def run(fn):
            _REFERENCES[:] = references
            try:
                return checker(fn)
            finally:
                _REFERENCES.clear()

        return run

    return mark


def _imported_as(module) -> str:
    """The name a student imports ``module`` by (``sslkit.losses``, not its wing's path)."""
    old = {f"sslkit.{new}": f"sslkit.{name}" for name, new in MOVED.items()}
    return old.get(module.__name__, module.__name__)


@contextlib.contextmanager
def _references_blocked():
    saved = [(module, name, getattr(module, name)) for module, name in _REFERENCES]

    def blocked(module, name):
        def refuse(*args, **kwargs):
            raise ReferenceCalled(
                f"it calls sslkit's own {_imported_as(module)}.{name}: call your own code, not "
                "sslkit's answer"
            )

        return refuse

    try:
        for module, name, _ in saved:
            setattr(module, name, blocked(module, name))
        yield
    finally:
        for module, name, original in saved:
            setattr(module, name, original)


def _call(fn, args: tuple, on: str):
    """``fn(*args)``; an error inside the student's function becomes a message that names
    the input it failed on. ``NotImplementedError`` (an untouched stub) passes through. While
    it runs, the checker's own references raise (:func:`_own_code`)."""
    try:
        with _references_blocked():
            return fn(*args)
    except NotImplementedError:
        raise
    except Exception as e:  # noqa: BLE001 - any error of the student's code is reported
        raise AssertionError(f"your function raised {type(e).__name__}: {e} on {on}") from e


def _ok(name: str) -> bool:
    print(f"Correct: the reference and your {name} agree on every test case.")
    return True


@_own_code((augment, "rotate"), (augment, "rotation_batch"))
def check_rotation(fn) -> bool:
    """``fn(images, k)`` must rotate image i by k[i]·90° counter-clockwise (N×C×H×W)."""
    g = torch.Generator().manual_seed(0)
    x = torch.rand(6, 2, 5, 5, generator=g)
    k = torch.tensor([0, 1, 2, 3, 1, 3])
    got = _call(
        fn, (x.clone(), k.clone()), f"6 images of shape {tuple(x.shape[1:])}, k = {k.tolist()}"
    )
    if not isinstance(got, torch.Tensor) or got.shape != x.shape:
        raise AssertionError(
            f"expected a tensor of shape {tuple(x.shape)}, got {getattr(got, 'shape', type(got))}"
        )
    wrong = [i for i in range(6) if not torch.allclose(got[i], augment.rotate(x, k)[i])]
    if wrong:
        raise AssertionError(
            f"images {wrong} (k = {k[wrong].tolist()}) are not rotated correctly; "
            "check the direction (counter-clockwise) and the dims you rotate"
        )
    return _ok("rotation")


@_own_code((losses, "invariance_loss"), (losses, "vicreg"))
def check_invariance_loss(fn) -> bool:
    """``fn(z1, z2)``: VICReg's invariance term, the mean squared error over N×D entries."""
    g = torch.Generator().manual_seed(1)
    for n, d in ((4, 3), (16, 8)):
        z1, z2 = torch.randn(n, d, generator=g), torch.randn(n, d, generator=g)
        _close(
            _call(fn, (z1, z2), f"z1, z2 of shape ({n}, {d})"),
            losses.invariance_loss(z1, z2),
            f"invariance loss for N={n}, D={d}",
        )
    return _ok("invariance loss")


@_own_code((losses, "variance_loss"), (losses, "vicreg"))
def check_variance_loss(fn) -> bool:
    """``fn(z)``: VICReg's variance hinge for one branch, mean_j max(0, 1 − sqrt(Var z_j +
    1e-4))."""
    g = torch.Generator().manual_seed(2)
    for scale in (0.1, 0.5, 2.0):
        z = torch.randn(32, 6, generator=g) * scale
        _close(
            _call(fn, (z,), f"z of shape (32, 6), std ≈ {scale}"),
            losses.variance_loss(z),
            f"variance loss for std ≈ {scale} (use the unbiased variance over the batch, one std "
            "per dimension; the biased one, dividing by N, is the common slip)",
        )
    return _ok("variance loss")


@_own_code((metrics, "ncc_accuracy"), (metrics, "whitened_ncc_accuracy"))
def check_ncc(fn) -> bool:
    """``fn(features, labels)``: nearest class-centre accuracy with centres from the same set.
    A wrong answer is told how many samples it gets wrong and, where a common slip gives its
    value exactly, which slip (:func:`_ncc_slips`)."""
    rng = np.random.default_rng(3)
    for k in (2, 5):
        y = rng.integers(0, k, 200)
        x = rng.normal(size=(k, 4))[y] + rng.normal(size=(200, 4))
        xt, yt = torch.tensor(x, dtype=torch.float32), torch.tensor(y)
        got = _call(fn, (xt, yt), f"200 features in 4 dimensions, {k} classes")
        expected = metrics.ncc_accuracy(xt, yt)
        try:
            _close(got, expected, f"NCC accuracy with {k} classes")
        except AssertionError as wrong:
            raise AssertionError(_ncc_feedback(fn, got, expected, xt, yt, str(wrong))) from None
    return _ok("NCC accuracy")


def _nearest_centre_accuracy(x, y, centres, cosine: bool = False) -> float:
    """The fraction of rows of ``x`` whose nearest centre (Euclidean, or the most similar by
    cosine) is their own class's."""
    if cosine:
        x, centres = F.normalize(x, dim=1), F.normalize(centres, dim=1)
        nearest = (x @ centres.T).argmax(1)
    else:
        nearest = torch.cdist(x, centres).argmin(1)
    return float((nearest == y).float().mean())


def _ncc_slips(x, y) -> dict[str, float]:
    """The accuracy each common slip in NCC gives on ``x``, ``y`` (classes 0..K-1), by the
    advice that fixes it."""
    k = int(y.max()) + 1
    onehot = F.one_hot(y, k).to(x.dtype)
    sums, counts = onehot.T @ x, onehot.sum(0)
    centres = sums / counts[:, None]
    right = _nearest_centre_accuracy(x, y, centres)
    # Each sample left out of its own centre: centres from the other samples, not the same set.
    own = (sums[y] - x) / (counts[y] - 1).clamp(min=1)[:, None]
    dist = torch.cdist(x, centres) ** 2
    dist[torch.arange(len(y)), y] = ((x - own) ** 2).sum(1)
    left_out = float((dist.argmin(1) == y).float().mean())
    unit = F.normalize(x, dim=1)
    unit_centres = (onehot.T @ unit) / counts[:, None]
    return {
        "it is NCC on cosine similarity (normalised features or centres): use the Euclidean "
        "distance to each centre": _nearest_centre_accuracy(x, y, centres, cosine=True),
        "it is NCC on L2-normalised features (cosine similarity's geometry): use the "
        "features as given and the Euclidean distance": (
            _nearest_centre_accuracy(unit, y, unit_centres)
        ),
        "each sample is left out of its own class centre: compute the centres from all of "
        "`features`, the same set you classify": left_out,
        "it is the error rate: return the fraction classified correctly": 1 - right,
        "it is a percentage: return a fraction between 0 and 1": 100 * right,
    }


def _same(a: float, b: float) -> bool:
    return bool(np.isclose(a, b, rtol=1e-4, atol=1e-6))


def _ncc_feedback(fn, got, expected: float, x, y, wrong: str) -> str:
    """What a wrong NCC accuracy ``got`` of ``fn`` on ``x``, ``y`` means: how many samples it
    gets wrong out of how many, and the likely cause: the slip that gives ``got`` here and
    ``fn``'s answer on a second set too (two slips may agree on one small set)."""
    n = len(y)
    try:
        got = float(got)
    except (TypeError, ValueError, RuntimeError):
        return wrong  # not a number: _close says what came back
    said = (
        f"{wrong}: {round(got * n)} of {n} samples classified correctly, the reference "
        f"{round(expected * n)}, so at least {abs(round(got * n) - round(expected * n))} of the "
        f"{n} samples differ"
    )
    if not 0 <= got <= 1:
        said = f"{wrong}: an accuracy is a fraction of the {n} samples, between 0 and 1"
    elif round(got * n) == round(expected * n):
        said = f"{wrong}: close to the reference's {round(expected * n)} of {n}, but not a "
        said += "whole number of samples: return the exact fraction, not a rounded one"
    causes = [c for c, v in _ncc_slips(x, y).items() if _same(got, v) and not _same(v, expected)]
    if causes:
        rng = np.random.default_rng(33)
        y2 = torch.tensor(rng.integers(0, 3, 90))
        x2 = torch.tensor(rng.normal(size=(3, 6))[y2] + 2 * rng.normal(size=(90, 6))).float()
        try:
            again = float(_call(fn, (x2, y2), "90 features in 6 dimensions, 3 classes"))
        except (AssertionError, TypeError, ValueError, RuntimeError):
            again = None
        slips = _ncc_slips(x2, y2)
        causes = [c for c in causes if again is None or _same(again, slips[c])] or causes
        return f"{said}. Likely cause: {causes[0]}"
    return (
        f"{said}. Check: the centres are the mean of each class's rows of `features` (the same "
        "set, not another one or a global variable), each sample goes to the centre at the "
        "smallest Euclidean distance, and the result is the fraction classified correctly"
    )


@_own_code((metrics, "cdnv"))
def check_cdnv(fn) -> bool:
    """``fn(features, labels)``: the CDNV, averaged over all pairs of classes."""
    rng = np.random.default_rng(4)
    for k in (2, 4):
        y = rng.integers(0, k, 300)
        x = rng.normal(size=(k, 3))[y] * 3 + rng.normal(size=(300, 3))
        xt, yt = torch.tensor(x), torch.tensor(y)
        _close(
            _call(fn, (xt, yt), f"300 float64 features in 3 dimensions, {k} classes"),
            metrics.cdnv(xt, yt),
            f"CDNV with {k} classes (Var_c is the mean squared distance to the class mean; average "
            "over "
            "pairs i<j)",
            tol=1e-3,
        )
    return _ok("CDNV")


@_own_code((targets, "random_targets"))
def check_random_targets(fn) -> bool:
    """``fn(labels, randomness, seed)``: class sizes kept, about the right fraction changed."""
    y = torch.arange(2000) % 10
    for r in (0.0, 0.3, 1.0):
        t = torch.as_tensor(
            _call(fn, (y.clone(), r, 0), f"2000 labels of 10 classes, randomness {r}, seed 0")
        )
        if t.shape != y.shape:
            raise AssertionError(f"expected {tuple(y.shape)} targets, got {tuple(t.shape)}")
        if not torch.equal(t.bincount(minlength=10), y.bincount()):
            raise AssertionError(
                f"randomness {r}: class sizes changed; permute labels, don't redraw them"
            )
        changed = (t != y).float().mean().item()
        if not (0.8 * 0.9 * r - 1e-9 <= changed <= r + 1e-9):
            raise AssertionError(
                f"randomness {r}: {changed:.2f} of the labels changed, expected about "
                f"{0.9 * r:.2f} "
                "(a shuffled label keeps its value 1 time in 10)"
            )
    return _ok("random targets")


@_own_code((losses, "nt_xent"))
def check_nt_xent(fn) -> bool:
    """``fn(z1, z2, temperature)``: SimCLR's NT-Xent loss over the 2N views (a scalar)."""
    g = torch.Generator().manual_seed(6)
    for n, d, tau in ((4, 3, 0.5), (8, 5, 0.1)):
        z1, z2 = torch.randn(n, d, generator=g), torch.randn(n, d, generator=g)
        _close(
            _call(fn, (z1, z2, tau), f"z1, z2 of shape ({n}, {d}), temperature {tau}"),
            losses.nt_xent(z1, z2, tau).total,
            f"NT-Xent for N={n}, D={d}, τ={tau} (normalise the embeddings, leave each view out of "
            "its own denominator, and average over all 2N views)",
        )
    return _ok("NT-Xent loss")


@_own_code((losses, "barlow_twins"))
def check_barlow_terms(fn) -> bool:
    """``fn(z1, z2)`` -> ``(invariance, redundancy)``: Barlow Twins' two unweighted terms,
    Σ_i (1 − C_ii)² and Σ_{i≠j} C_ij², with C the cross-correlation of the standardised batches."""
    g = torch.Generator().manual_seed(7)
    for n, d in ((16, 4), (64, 6)):
        z1 = torch.randn(n, d, generator=g)
        z2 = z1 + 0.5 * torch.randn(n, d, generator=g)
        got = _call(fn, (z1, z2), f"z1, z2 of shape ({n}, {d})")
        if not isinstance(got, (tuple, list)) or len(got) != 2:
            raise AssertionError(
                f"return the two terms as a pair (invariance, redundancy); got {type(got).__name__}"
            )
        ref = losses.barlow_twins(z1, z2, eps=0.0).terms
        hint = (
            " (standardise each dimension over the batch with the biased std, then C = Z̃1ᵀZ̃2 / N)"
        )
        _close(
            got[0],
            ref["invariance"],
            f"invariance (on-diagonal) term for N={n}, D={d}" + hint,
            tol=1e-3,
        )
        _close(
            got[1],
            ref["redundancy"],
            f"redundancy (off-diagonal) term for N={n}, D={d}" + hint,
            tol=1e-3,
        )
    return _ok("Barlow Twins terms")


@_own_code((losses, "regularization_ratio"))
def check_regularization_ratio(fn) -> bool:
    """``fn(loss)`` -> the regularization/invariance ratio of VICReg loss weights ``loss``
    (a dict that may omit weights), each weight divided by its default."""
    cases = (
        {},
        {"inv_weight": 5.0},
        {"inv_weight": 50.0},
        {"var_weight": 50.0, "cov_weight": 2.0},
        {"inv_weight": 0.0},
    )
    for loss in cases:
        got, expected = (
            _call(fn, (dict(loss),), f"loss = {loss}"),
            losses.regularization_ratio(loss),
        )
        if expected == float("inf"):
            if got != float("inf"):
                raise AssertionError(
                    f"for {loss} (no invariance term) expected math.inf, got {got!r}"
                )
            continue
        _close(
            got,
            expected,
            f"ratio for {loss} (missing weights take their defaults, {losses.VICREG_WEIGHTS})",
        )
    return _ok("regularization ratio")


@_own_code((metrics, "effective_rank"))
def check_effective_rank(fn) -> bool:
    """``fn(features)``: the effective rank exp(H(σ/Σσ)) of the centred N×D features."""
    g = torch.Generator().manual_seed(8)
    for scales in ((1.0, 1.0, 1.0), (5.0, 1.0, 0.1, 0.1), (3.0, 0.0, 0.0)):
        x = torch.randn(40, len(scales), generator=g) * torch.tensor(scales) + 7.0  # not centred
        _close(
            _call(fn, (x.clone(),), f"40 features with spreads {scales}"),
            metrics.effective_rank(x),
            f"effective rank for spreads {scales} (centre the features first, use singular values, "
            "not "
            "eigenvalues of the covariance, and drop zeros before the logarithm)",
            tol=1e-3,
        )
    return _ok("effective rank")


@_own_code(
    (losses, "vicreg"),
    (losses, "invariance_loss"),
    (losses, "variance_loss"),
    (losses, "covariance_loss"),
)
def check_vicreg_terms(fn) -> bool:
    """``fn(z1, z2)`` -> ``(invariance, variance, covariance)``: VICReg's three unweighted
    terms, with the variance averaged and the covariance summed over the two branches."""
    g = torch.Generator().manual_seed(9)
    for n, d, noise in ((32, 4, 0.1), (64, 8, 1.0)):
        z1 = torch.randn(n, d, generator=g) * torch.linspace(0.2, 2.0, d)
        z2 = z1 + noise * torch.randn(n, d, generator=g)
        got = _call(fn, (z1, z2), f"z1, z2 of shape ({n}, {d})")
        if not isinstance(got, (tuple, list)) or len(got) != 3:
            raise AssertionError(
                "return the three terms as a tuple (invariance, variance, covariance); "
                f"got {type(got).__name__}"
            )
        ref = losses.vicreg(z1, z2).terms
        hints = {
            "invariance": "the mean squared error over all N×D entries",
            "variance": "mean_j max(0, 1 − sqrt(Var z_j + 1e-4)), unbiased variance, averaged over "
            "the two branches",
            "covariance": "squared off-diagonal covariances (divide by N − 1) summed, divided by "
            "D, "
            "summed over the two branches",
        }
        for value, (term, expected) in zip(got, ref.items()):
            _close(value, expected, f"{term} term for N={n}, D={d} ({hints[term]})", tol=1e-3)
    return _ok("VICReg terms")


def check_holm(fn) -> bool:
    """``fn(pvalues, alpha)``: which hypotheses Holm's step-down procedure rejects, one
    boolean per p-value in the order given (:func:`sslkit.analysis.holm`)."""

    cases = [
        ([0.01, 0.04, 0.03], 0.05),  # the second smallest fails 0.05/2: it stops there
        ([0.001, 0.012, 0.02, 0.3], 0.05),  # 0.02 ≤ 0.05/2 passes, 0.3 does not
        ([0.2, 0.001], 0.05),
        ([0.006, 0.006, 0.006, 0.006, 0.006], 0.025),  # all at 0.025/5 = 0.005 fail
        ([0.0004, 0.0015, 0.0001, 0.05, 0.8], 0.025),
    ]
    for p, alpha in cases:
        got = _call(fn, (list(p), alpha), f"p-values {p}, alpha {alpha}")
        got = [bool(g) for g in got]
        if got != holm(p, alpha):
            raise AssertionError(
                f"p-values {p} at alpha {alpha}: you reject {got}, Holm rejects {holm(p, alpha)} "
                "(compare the i-th smallest with alpha / (m − i), and stop at the first that fails)"
            )
    return _ok("Holm correction")


@_own_code((targets, "random_grouping"))
def check_random_grouping(fn) -> bool:
    """``fn(fine_labels, coarse_labels, seed)``: the fine classes dealt into random groups of
    the coarse groups' sizes (in fine classes per group), the same for the same seed."""
    fine = torch.arange(10).repeat(30)
    coarse = torch.tensor([0, 0, 0, 1, 1, 2, 2, 2, 2, 3]).repeat(30)
    sizes = sorted(torch.bincount(torch.tensor([0, 0, 0, 1, 1, 2, 2, 2, 2, 3])).tolist())
    seen = set()
    for seed in range(6):
        on = f"10 fine classes in coarse groups of sizes {sizes}, seed {seed}"
        groups = torch.as_tensor(_call(fn, (fine.clone(), coarse.clone(), seed), on)).long()
        if groups.shape != fine.shape:
            raise AssertionError(f"expected {tuple(fine.shape)} targets, got {tuple(groups.shape)}")
        parent = {}
        for f, g in zip(fine.tolist(), groups.tolist()):
            if parent.setdefault(f, g) != g:
                raise AssertionError(
                    f"{on}: fine class {f} is split over groups; a grouping maps each whole "
                    "class to one group"
                )
        per_group = sorted(torch.bincount(torch.tensor(list(parent.values()))).tolist())
        if [n for n in per_group if n] != sizes:
            raise AssertionError(
                f"{on}: groups of {[n for n in per_group if n]} fine classes, expected {sizes}"
            )
        again = torch.as_tensor(fn(fine.clone(), coarse.clone(), seed)).long()
        if not torch.equal(again, groups):
            raise AssertionError(f"{on}: two calls with one seed gave two groupings")
        seen.add(tuple(parent[f] for f in range(10)))
    if len(seen) < 3:
        raise AssertionError(
            "six seeds gave fewer than three groupings: deal the classes at random, seeded"
        )
    return _ok("random grouping")


def _seeds_needed(sd: float, half_width: float, most: int = 1000) -> int:
    from scipy import stats  # lazy: only this checker needs scipy

    for n in range(2, most + 1):
        if stats.t.ppf(0.975, n - 1) * sd / n**0.5 < half_width:
            return n
    return most


def check_seeds_needed(fn) -> bool:
    """``fn(sd, half_width)``: the fewest seeds ``n ≥ 2`` whose 95% t-interval of a mean,
    ``t_{0.975, n−1} · sd / √n``, is narrower than ``half_width``, for a seed-to-seed standard
    deviation ``sd``."""
    for sd, half in ((0.02, 0.02), (0.05, 0.02), (0.03, 0.01), (0.01, 0.05), (0.08, 0.03)):
        got = _call(fn, (sd, half), f"sd {sd}, half-width {half}")
        want = _seeds_needed(sd, half)
        if got != want:
            raise AssertionError(
                f"sd {sd}, half-width {half}: you need {got} seeds, the reference {want} (the t "
                "quantile has n − 1 degrees of freedom and falls as n grows)"
            )
    return _ok("number of seeds")


@_own_code((metrics, "cdnv"), (streaming.ClassStats, "cdnv"))
def check_cdnv_from_sums(fn) -> bool:
    """``fn(counts, sums, sq_norms)``: CDNV from per-class running sums only (``counts`` K,
    ``sums`` K×D of ``Σ x``, ``sq_norms`` K of ``Σ ‖x‖²``, all float64), as the streaming
    statistics of :mod:`sslkit.streaming` compute it; compared with :func:`sslkit.metrics.cdnv`
    on the same features."""
    g = torch.Generator().manual_seed(0)
    for n, d, k, offset in ((300, 4, 3, 0.0), (500, 16, 5, 0.0), (400, 8, 4, 10.0)):
        y = torch.arange(n) % k
        x = (torch.randn(k, d, generator=g)[y] + 0.5 * torch.randn(n, d, generator=g)).double()
        x = x + offset
        counts = torch.bincount(y, minlength=k).double()
        sums = torch.zeros(k, d, dtype=torch.float64).index_add_(0, y, x)
        sq = torch.zeros(k, dtype=torch.float64).index_add_(0, y, (x**2).sum(1))
        on = f"{n} samples, {d} dimensions, {k} classes" + (f", offset {offset}" if offset else "")
        got = _call(fn, (counts, sums, sq), on)
        _close(got, metrics.cdnv(x, y), f"CDNV on {on}", tol=1e-6)
    return _ok("CDNV from running sums")


@_own_code((geometry, "linear_predictability"))
def check_linear_predictability(fn) -> bool:
    """``fn(src_train, dst_train, src_test, dst_test, ridge)``: the held-out R² of ridge
    regression from ``src`` to ``dst`` features
    (:func:`sslkit.measure.geometry.linear_predictability`,
    ``λ = ridge`` × the mean eigenvalue of the centred ``XᵀX``)."""
    g = torch.Generator().manual_seed(11)
    for d_in, d_out, bend in ((6, 4, 0.0), (8, 3, 1.0), (5, 5, 3.0)):
        # the test images shifted from the training ones, so that "around their mean" matters
        x, tx = torch.randn(200, d_in, generator=g) + 2.0, torch.randn(100, d_in, generator=g) + 2.6
        a = torch.randn(d_in, d_out, generator=g)
        y = x @ a + bend * torch.tanh(x @ a) ** 2
        ty = tx @ a + bend * torch.tanh(tx @ a) ** 2
        on = f"{d_in}→{d_out} features, non-linearity {bend}"
        got = _call(fn, (x.clone(), y.clone(), tx.clone(), ty.clone(), 1e-3), on)
        _close(
            got,
            geometry.linear_predictability(x, y, tx, ty, 1e-3),
            f"R² on {on} (centre both sets with the *training* means, solve "
            "(XᵀX + λI)B = XᵀY, and divide the test residual by the test targets' own spread "
            "around their mean)",
            tol=1e-3,
        )
    return _ok("linear predictability")
