"""An oracle: sslkit's losses equal a peer library's on the same inputs.

lightly (https://github.com/lightly-ai/lightly, ``lightly/loss/``) implements VICReg, NT-Xent
and Barlow Twins independently of sslkit. ``make test-oracles`` installs it and runs this file;
``make test`` skips it, since lightly is not a dependency. Its conventions, read in its source
(1.6), and how they meet sslkit's (``sslkit/learn/losses.py``):

- ``VICRegLoss(lambda_param=25, mu_param=25, nu_param=1, eps=1e-4)``: invariance
  ``F.mse_loss``; variance ``mean(relu(1 − sqrt(var + eps)))`` with the unbiased variance,
  averaged over the two branches (``0.5 * (v(a) + v(b))``); covariance the squared
  off-diagonal entries of the ``N − 1`` covariance over ``D``, summed over the branches. The
  same as sslkit's ``vicreg``, term by term, with the weights in the same places.
- ``NTXentLoss(temperature=0.5, memory_bank_size=0)``: a cross-entropy over the 2N views, each
  view's positive the other view of its image and the other 2N − 2 views its negatives, the
  mean over the 2N rows. sslkit's ``nt_xent`` is the same mean (and the same 0.5 default).
- ``BarlowTwinsLoss(lambda_param=5e-3)``: each dimension standardised over the batch with
  ``F.batch_norm`` (the biased variance, eps 1e-5: sslkit's ``standardise``), ``C = ZaᵀZb / N``,
  loss ``Σ (1 − C_ii)² + λ Σ_{i≠j} C_ij²``. Older lightly releases divided by ``z.std(0)`` (the
  unbiased one, no eps), which scales ``C`` by about ``(N − 1)/N``: this file asks for lightly
  1.6 or newer, where no factor is needed.

So every comparison below is an equality (float64, to 1e-10), values and gradients, with no
scale factor; each is also shown to fail when sslkit's side is changed on purpose.
"""

import pytest
import torch

from sslkit.learn import losses

lightly_loss = pytest.importorskip(
    "lightly.loss",
    reason="the oracle needs lightly, a peer library that is not a dependency: make test-oracles",
)
lightly = pytest.importorskip("lightly", minversion="1.6")
from lightly.loss import vicreg_loss as lightly_vicreg  # noqa: E402

TOL = {"rtol": 1e-10, "atol": 1e-12}


def _pairs():
    """Pairs of N×D embeddings: independent, correlated views (a small invariance term), a
    collapsed-ish batch (the variance hinge active) and a small batch with D > N."""
    g = torch.Generator().manual_seed(0)
    z = torch.randn(64, 32, generator=g, dtype=torch.float64)
    yield "independent", z, torch.randn(64, 32, generator=g, dtype=torch.float64)
    yield "views", z, z + 0.1 * torch.randn(64, 32, generator=g, dtype=torch.float64)
    small = 0.05 * torch.randn(64, 32, generator=g, dtype=torch.float64)
    yield "collapsing", small, small + 0.01 * torch.randn(64, 32, generator=g, dtype=torch.float64)
    yield "wide", *torch.randn(2, 8, 48, generator=g, dtype=torch.float64)


PAIRS = list(_pairs())


def _both(ours, theirs, z1, z2):
    """Each loss and its gradients with respect to both inputs."""
    results = []
    for fn in (ours, theirs):
        a, b = z1.clone().requires_grad_(), z2.clone().requires_grad_()
        value = fn(a, b)
        value.backward()
        results.append((value.detach(), a.grad, b.grad))
    return results


def _assert_equal(ours, theirs, z1, z2):
    (v1, ga1, gb1), (v2, ga2, gb2) = _both(ours, theirs, z1, z2)
    torch.testing.assert_close(v1, v2, **TOL)
    torch.testing.assert_close(ga1, ga2, **TOL)
    torch.testing.assert_close(gb1, gb2, **TOL)


def _differs(ours, theirs, z1, z2) -> bool:
    (v1, *_), (v2, *_) = _both(ours, theirs, z1, z2)
    return not torch.allclose(v1, v2, **TOL)


@pytest.mark.parametrize("name,z1,z2", PAIRS, ids=[p[0] for p in PAIRS])
@pytest.mark.parametrize("weights", [(25.0, 25.0, 1.0), (0.0, 25.0, 1.0), (5.0, 1.0, 0.04)])
def test_vicreg_equals_lightlys(name, z1, z2, weights):
    lam, mu, nu = weights
    theirs = lightly_loss.VICRegLoss(lambda_param=lam, mu_param=mu, nu_param=nu)
    _assert_equal(
        lambda a, b: losses.vicreg(a, b, inv_weight=lam, var_weight=mu, cov_weight=nu).total,
        theirs,
        z1,
        z2,
    )


@pytest.mark.parametrize("name,z1,z2", PAIRS, ids=[p[0] for p in PAIRS])
def test_vicreg_terms_equal_lightlys(name, z1, z2):
    terms = losses.vicreg(z1, z2).terms
    torch.testing.assert_close(terms["invariance"], lightly_vicreg.invariance_loss(z1, z2), **TOL)
    var = 0.5 * (lightly_vicreg.variance_loss(z1) + lightly_vicreg.variance_loss(z2))
    torch.testing.assert_close(terms["variance"], var, **TOL)
    cov = lightly_vicreg.covariance_loss(z1) + lightly_vicreg.covariance_loss(z2)
    torch.testing.assert_close(terms["covariance"], cov, **TOL)


@pytest.mark.parametrize("name,z1,z2", PAIRS, ids=[p[0] for p in PAIRS])
@pytest.mark.parametrize("temperature", [0.5, 0.1, 1.0])
def test_nt_xent_equals_lightlys(name, z1, z2, temperature):
    theirs = lightly_loss.NTXentLoss(temperature=temperature, memory_bank_size=0)
    _assert_equal(lambda a, b: losses.nt_xent(a, b, temperature).total, theirs, z1, z2)


@pytest.mark.parametrize("name,z1,z2", PAIRS, ids=[p[0] for p in PAIRS])
@pytest.mark.parametrize("lam", [5e-3, 0.0, 0.05])
def test_barlow_twins_equals_lightlys(name, z1, z2, lam):
    theirs = lightly_loss.BarlowTwinsLoss(lambda_param=lam)
    _assert_equal(lambda a, b: losses.barlow_twins(a, b, lam).total, theirs, z1, z2)


def test_the_defaults_are_the_same():
    """Called with no arguments, both libraries compute the same losses."""
    _, z1, z2 = PAIRS[1]
    _assert_equal(lambda a, b: losses.vicreg(a, b).total, lightly_loss.VICRegLoss(), z1, z2)
    _assert_equal(lambda a, b: losses.nt_xent(a, b).total, lightly_loss.NTXentLoss(), z1, z2)
    barlow = lightly_loss.BarlowTwinsLoss()
    _assert_equal(lambda a, b: losses.barlow_twins(a, b).total, barlow, z1, z2)


def test_the_oracle_catches_a_changed_convention():
    """Planted: each convention changed on sslkit's side (the variance term summed over the
    branches instead of averaged, another temperature, the unbiased standardisation of older
    lightly releases) is seen as a difference."""
    _, z1, z2 = PAIRS[2]  # collapsing: the variance hinge is active

    def vicreg_summed_variance(a, b):
        t = losses.vicreg(a, b).terms
        return 25 * t["invariance"] + 25 * 2 * t["variance"] + t["covariance"]

    assert _differs(vicreg_summed_variance, lightly_loss.VICRegLoss(), z1, z2)
    nt_xent_049 = lambda a, b: losses.nt_xent(a, b, 0.49).total  # noqa: E731
    assert _differs(nt_xent_049, lightly_loss.NTXentLoss(), z1, z2)

    def barlow_unbiased(a, b):
        n = a.shape[0]
        c = ((a - a.mean(0)) / a.std(0)).T @ ((b - b.mean(0)) / b.std(0)) / n
        off = c - torch.diag(torch.diagonal(c))
        return (torch.diagonal(c) - 1).pow(2).sum() + 5e-3 * off.pow(2).sum()

    assert _differs(barlow_unbiased, lightly_loss.BarlowTwinsLoss(), z1, z2)
