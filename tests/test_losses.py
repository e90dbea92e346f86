import math

import pytest
import torch

from sslkit import losses


def reference_vicreg(z1, z2, lam=25.0, mu=25.0, nu=1.0):
    """The VICReg formulas written out with explicit loops over dimensions."""
    n, d = z1.shape
    inv = sum(((z1[i] - z2[i]) ** 2).sum() for i in range(n)) / (n * d)

    def var(z):
        total = 0.0
        for j in range(d):
            col = z[:, j]
            v = ((col - col.mean()) ** 2).sum() / (n - 1)
            total += max(0.0, 1 - math.sqrt(v + 1e-4))
        return total / d

    def cov(z):
        zc = z - z.mean(0)
        total = 0.0
        for a in range(d):
            for b in range(d):
                if a != b:
                    total += ((zc[:, a] * zc[:, b]).sum() / (n - 1)) ** 2
        return total / d

    v = (var(z1) + var(z2)) / 2
    c = cov(z1) + cov(z2)
    return lam * inv + mu * v + nu * c, inv, v, c


def test_vicreg_matches_the_written_out_formula():
    g = torch.Generator().manual_seed(0)
    z1 = torch.randn(6, 4, generator=g, dtype=torch.float64) * 0.5
    z2 = torch.randn(6, 4, generator=g, dtype=torch.float64) * 0.5
    out = losses.vicreg(z1, z2)
    total, inv, var, cov = reference_vicreg(z1, z2)
    assert out.total.item() == pytest.approx(float(total), rel=1e-9)
    assert out.terms["invariance"].item() == pytest.approx(float(inv), rel=1e-9)
    assert out.terms["variance"].item() == pytest.approx(float(var), rel=1e-9)
    assert out.terms["covariance"].item() == pytest.approx(float(cov), rel=1e-9)


def test_vicreg_hand_computed_tiny_case():
    # z1 = [[1,0],[-1,0]], z2 = [[1,0],[-1,0]]: identical views
    z = torch.tensor([[1.0, 0.0], [-1.0, 0.0]], dtype=torch.float64)
    out = losses.vicreg(z, z.clone())
    assert out.terms["invariance"].item() == 0.0
    # dim 0: var = 2 -> std>1 -> 0; dim 1: var 0 -> 1 - sqrt(1e-4) = 0.99; mean over dims, avg of
    # branches
    assert out.terms["variance"].item() == pytest.approx(0.99 / 2)
    assert out.terms["covariance"].item() == 0.0  # the two dimensions are uncorrelated
    assert out.total.item() == pytest.approx(25 * 0.99 / 2)


def test_vicreg_weights_switch_terms_off_but_terms_are_still_reported():
    z1, z2 = torch.randn(8, 3), torch.randn(8, 3)
    full = losses.vicreg(z1, z2)
    inv_only = losses.vicreg(z1, z2, var_weight=0, cov_weight=0)
    assert inv_only.total.item() == pytest.approx(25 * full.terms["invariance"].item(), rel=1e-6)
    assert inv_only.terms["covariance"].item() == pytest.approx(full.terms["covariance"].item())


def test_nt_xent_matches_a_loop_over_views():
    g = torch.Generator().manual_seed(1)
    z1, z2 = (
        torch.randn(5, 3, generator=g, dtype=torch.float64),
        torch.randn(5, 3, generator=g, dtype=torch.float64),
    )
    t = 0.3
    z = torch.nn.functional.normalize(torch.cat([z1, z2]), dim=1)
    n = 5
    total = 0.0
    for i in range(2 * n):
        p = (i + n) % (2 * n)
        num = math.exp(float(z[i] @ z[p]) / t)
        den = sum(math.exp(float(z[i] @ z[k]) / t) for k in range(2 * n) if k != i)
        total += -math.log(num / den)
    out = losses.nt_xent(z1, z2, temperature=t)
    assert out.total.item() == pytest.approx(total / (2 * n), rel=1e-9)
    assert out.total.item() == pytest.approx(
        out.terms["alignment"].item() / t + out.terms["uniformity"].item()
    )


def test_nt_xent_is_low_for_matching_views():
    z = torch.eye(8)
    assert losses.nt_xent(z, z, 0.1).total < losses.nt_xent(z, z.roll(1, 0), 0.1).total


def test_barlow_twins_hand_computed():
    # Two standardised, perfectly correlated dimensions: C = [[1, 1], [1, 1]]
    z = torch.tensor([[1.0, 1.0], [-1.0, -1.0]], dtype=torch.float64)
    out = losses.barlow_twins(z, z, redundancy_weight=0.5, eps=0.0)
    assert out.terms["invariance"].item() == pytest.approx(0.0)
    assert out.terms["redundancy"].item() == pytest.approx(2.0)
    assert out.total.item() == pytest.approx(1.0)


def test_cross_entropy_reports_accuracy():
    logits = torch.tensor([[2.0, 0.0], [0.0, 2.0], [3.0, 0.0]])
    out = losses.cross_entropy(logits, torch.tensor([0, 1, 1]))
    assert out.terms["accuracy"].item() == pytest.approx(2 / 3)
    expected = (
        -(2 * math.log(math.exp(2) / (1 + math.exp(2))) + math.log(1 / (1 + math.exp(3)))) / 3
    )
    assert out.total.item() == pytest.approx(expected, rel=1e-6)


def test_shape_errors_print_the_shapes():
    with pytest.raises(ValueError, match=r"\(4, 3\) and \(4, 2\)"):
        losses.vicreg(torch.randn(4, 3), torch.randn(4, 2))
    with pytest.raises(ValueError, match="at least 2"):
        losses.nt_xent(torch.randn(1, 3), torch.randn(1, 3))
    with pytest.raises(ValueError, match="temperature"):
        losses.nt_xent(torch.randn(4, 3), torch.randn(4, 3), temperature=0)
