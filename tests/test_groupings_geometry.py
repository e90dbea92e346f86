"""The measurements behind the per-image evidence: every grouping's NCC at once, the geometry of
chapter 05b, the crossed (seed × image) interval and the long-tailed training set."""

import math

import numpy as np
import pytest
import torch
from scipy import stats
from sklearn.linear_model import Ridge
from sklearn.neighbors import NearestCentroid

from sslkit.experiment.analysis import crossed_interval, crossed_seeds_for_power
from sslkit.learn.data import Dataset, long_tailed
from sslkit.measure import geometry, groupings
from sslkit.measure.metrics import ncc_accuracy


def test_partitions_count_and_cover_every_grouping_once():
    table = groupings.partitions((4, 3, 2, 1))
    assert table.shape == (math.factorial(10) // (24 * 6 * 2), 10) == (12_600, 10)
    assert len({tuple(r) for r in table.tolist()}) == 12_600
    assert (
        torch.stack([(table == g).sum(1) for g in range(4)], 1) == torch.tensor([4, 3, 2, 1])
    ).all()
    assert groupings.partitions((2, 1)).tolist() == [[0, 0, 1], [0, 1, 0], [1, 0, 0]]
    with pytest.raises(ValueError, match="cannot fill"):
        groupings.partitions((2, 1), k=4)


def test_grouping_ncc_equals_ncc_on_each_grouping_and_scikit_learn():
    g = torch.Generator().manual_seed(0)
    means = torch.randn(6, 5, generator=g) * 2
    y = torch.arange(300) % 6
    y[:7] = 0  # unequal class sizes: group centres are size-weighted
    x = means[y] + torch.randn(300, 5, generator=g)
    ty = torch.randint(0, 6, (200,), generator=g)
    tx = means[ty] + torch.randn(200, 5, generator=g)
    table = groupings.partitions((3, 2, 1))
    fast = groupings.grouping_ncc(x, y, tx, ty, table)
    for p in (0, 17, len(table) - 1):
        rows = table[p]
        slow = ncc_accuracy(tx, rows[ty], x, rows[y], per_sample=True)
        assert torch.equal(fast[p], slow)
        sk = NearestCentroid().fit(x.numpy(), rows[y].numpy()).predict(tx.numpy())
        assert fast[p].double().mean().item() == pytest.approx((sk == rows[ty].numpy()).mean())
    assert groupings.partition_index(table[17], table) == 17
    with pytest.raises(ValueError, match="columns"):
        groupings.grouping_ncc(x, y, tx, ty, groupings.partitions((2, 1)))


def test_linear_predictability_agrees_with_scikit_learn_ridge_and_tells_linear_from_not():
    g = torch.Generator().manual_seed(1)
    x, tx = torch.randn(500, 8, generator=g), torch.randn(300, 8, generator=g)
    a = torch.randn(8, 6, generator=g)
    assert geometry.linear_predictability(x, x @ a, tx, tx @ a) == pytest.approx(1.0, abs=1e-4)
    bent = lambda z: torch.tanh(3 * z @ a) ** 2  # noqa: E731
    r2 = geometry.linear_predictability(x, bent(x), tx, bent(tx))
    xc = x.double() - x.double().mean(0)
    lam = geometry.RIDGE * torch.linalg.eigvalsh(xc.T @ xc).mean().item()
    sk = Ridge(alpha=lam).fit(x.numpy(), bent(x).numpy()).predict(tx.numpy())
    t = bent(tx).numpy()
    expected = 1 - ((t - sk) ** 2).sum() / ((t - t.mean(0)) ** 2).sum()
    assert r2 == pytest.approx(expected, abs=1e-4)
    assert r2 < 0.5


def test_linear_cka_is_one_up_to_rotation_and_scale_and_low_for_unrelated():
    g = torch.Generator().manual_seed(2)
    x = torch.randn(400, 6, generator=g)
    q, _ = torch.linalg.qr(torch.randn(6, 6, generator=g))
    assert geometry.linear_cka(x, 3 * x @ q) == pytest.approx(1.0)
    assert geometry.linear_cka(x, torch.randn(400, 6, generator=g)) < 0.1


def test_between_class_share_is_one_when_classes_lie_along_the_top_directions():
    g = torch.Generator().manual_seed(3)
    y = torch.arange(600) % 3
    spread = torch.zeros(600, 5)
    spread[:, :2] = torch.tensor([[10.0, 0], [0, 10], [-10, -10]])[y]
    x = spread + torch.randn(600, 5, generator=g) * 0.1
    assert geometry.between_class_share(x, y) == pytest.approx(1.0, abs=1e-3)
    # the classes along the *least* spread direction, noise dominating the top ones
    y2 = torch.arange(30_000) % 3
    x2 = torch.randn(30_000, 5, generator=g) * torch.tensor([10.0, 10, 10, 10, 0.1])
    x2[:, 4] += torch.tensor([-1.0, 0, 1])[y2]
    assert geometry.between_class_share(x2, y2) < 0.1


def test_size_entropy_and_cluster_balance():
    assert geometry.size_entropy(torch.tensor([0, 1, 2, 3])) == pytest.approx(1.0)
    assert geometry.size_entropy(torch.tensor([0, 0, 0, 0]), k=4) == pytest.approx(0.0)
    p = np.array([3, 1]) / 4
    assert geometry.size_entropy(torch.tensor([0, 0, 0, 1])) == pytest.approx(
        -(p * np.log(p)).sum() / np.log(2)
    )
    g = torch.Generator().manual_seed(4)
    blobs = torch.randn(4, 3, generator=g) * 20
    x = blobs[torch.arange(400) % 4] + torch.randn(400, 3, generator=g)
    assert geometry.cluster_balance(x, 4, seed=0) > 0.99


def test_crossed_interval_covers_at_its_nominal_rate_where_a_seed_only_interval_does_not():
    """Simulated seeds × images with known variance components: the crossed interval covers the
    true mean about 95% of the time; an interval over seed means alone (which ignores that the
    same images serve every seed) covers far less when image variance dominates."""
    rng = np.random.default_rng(0)
    s, n, cover, cover_seeds = 8, 400, 0, 0
    trials = 300
    for _ in range(trials):
        d = (
            0.1
            + rng.normal(0, 0.01, (s, 1))
            + rng.normal(0, 0.5, (1, n))
            + rng.normal(0, 0.2, (s, n))
        )
        mean, lo, hi, df = crossed_interval(d)
        cover += lo <= 0.1 <= hi
        m = d.mean(1)
        half = stats.t.ppf(0.975, s - 1) * m.std(ddof=1) / np.sqrt(s)
        cover_seeds += m.mean() - half <= 0.1 <= m.mean() + half
        assert mean == pytest.approx(d.mean())
    assert 0.91 <= cover / trials <= 0.99
    assert cover_seeds / trials < 0.5
    # the variance formula against the known one
    var = 0.01**2 / s + 0.5**2 / n + 0.2**2 / (s * n)
    assert (hi - lo) / 2 == pytest.approx(stats.t.ppf(0.975, df) * math.sqrt(var), rel=0.3)
    with pytest.raises(ValueError, match="S×N"):
        crossed_interval(np.zeros(5))


def test_long_tailed_keeps_the_total_and_a_power_law_with_the_stated_ratio():
    labels = torch.arange(10).repeat_interleave(100)
    data = Dataset("demo", torch.zeros(1000, 1, 2, 2, dtype=torch.uint8), labels, labels // 5,
                   tuple("abcdefghij"), ("x", "y"))  # fmt: skip
    lt = long_tailed(data, 300, 10.0, seed=0)
    sizes = torch.bincount(lt.labels, minlength=10)
    assert sizes.sum() == 300
    assert sizes[0] / sizes[-1] == pytest.approx(10, rel=0.1)
    assert (sizes[:-1] >= sizes[1:]).all()
    assert torch.equal(long_tailed(data, 300, 10.0, seed=0).labels, lt.labels)
    with pytest.raises(ValueError, match="have only"):
        long_tailed(data, 900, 10.0)
    with pytest.raises(ValueError, match="ratio"):
        long_tailed(data, 300, 1.0)


def test_seeds_for_power_grows_with_seed_spread_and_stops_at_the_image_term():
    rng = np.random.default_rng(1)
    seeds = np.array([[-1.5], [-1.0], [-0.5], [0.0], [0.0], [0.5], [1.0], [1.5]])  # mean 0
    noise = rng.normal(0, 0.2, (8, 2000))
    noise -= noise.mean()
    small = 0.02 + 0.01 * seeds + noise
    large = 0.02 + 0.04 * seeds + noise
    a, b = crossed_seeds_for_power(small, 0.0), crossed_seeds_for_power(large, 0.0)
    assert a is not None and b is not None and a < b
    # an effect below its threshold: no number of seeds
    assert crossed_seeds_for_power(small, 0.05) is None
    # the image term alone wider than the margin: more seeds cannot help
    images = np.linspace(-3, 3, 200)[None, :]  # mean 0, a wide spread between images
    wide = 0.05 + images + 0.001 * seeds
    assert crossed_seeds_for_power(wide, 0.0) is None
