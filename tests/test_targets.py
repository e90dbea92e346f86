import numpy as np
import pytest
import torch

from sslkit.targets import random_targets


def test_zero_randomness_returns_the_labels():
    y = torch.randint(0, 5, (100,))
    assert torch.equal(random_targets(y, 0.0), y)


@pytest.mark.parametrize("r", [0.1, 0.25, 0.5, 0.75, 1.0])
def test_class_sizes_are_kept_and_only_the_chosen_fraction_changes(r):
    y = torch.arange(1000) % 10
    t = random_targets(y, r, seed=3)
    assert torch.equal(t.bincount(), y.bincount())
    changed = (t != y).float().mean().item()
    # a permuted label keeps its old value with probability about 1/10
    assert changed <= r + 1e-9 and changed >= 0.8 * r


def test_full_randomness_has_no_relation_to_the_labels():
    y = torch.arange(5000) % 10
    t = random_targets(y, 1.0, seed=0)
    agreement = (t == y).float().mean().item()
    assert abs(agreement - 0.1) < 0.02  # chance level


def test_seeded_and_numpy_input():
    y = np.arange(50) % 3
    assert torch.equal(random_targets(y, 0.5, seed=1), random_targets(y, 0.5, seed=1))
    assert not torch.equal(random_targets(y, 0.5, seed=1), random_targets(y, 0.5, seed=2))


def test_bad_randomness():
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        random_targets(torch.zeros(3, dtype=torch.long), 1.5)


def test_random_grouping_is_one_map_for_train_and_test():
    from sslkit.targets import random_grouping

    coarse_of = torch.tensor([0, 1, 0, 1, 0, 2, 0, 2, 3, 2])
    train = torch.arange(10).repeat(5)
    test = torch.tensor([9, 3, 3, 0, 5, 1, 2, 4, 6, 7, 8])  # another order and other counts
    a = random_grouping(train, coarse_of[train], seed=4)
    b = random_grouping(test, coarse_of[test], seed=4)
    mapping = dict(zip(train.tolist(), a.tolist()))
    assert [mapping[c] for c in test.tolist()] == b.tolist()
    assert sorted(torch.bincount(a[:10]).tolist()) == sorted(torch.bincount(coarse_of).tolist())
    import pytest

    with pytest.raises(ValueError, match="have no sample"):
        random_grouping(torch.tensor([0, 2]), torch.tensor([0, 1]), num_classes=3)


def test_random_function_targets_are_kmeans_clusters_of_the_images():
    from sklearn.metrics import adjusted_rand_score

    from sslkit.targets import random_function_targets

    g = torch.Generator().manual_seed(0)
    # three well-separated kinds of image: k-means must recover them (as a function of the image)
    base = torch.randint(0, 256, (3, 1, 6, 6), generator=g).float()
    kind = torch.arange(300) % 3
    images = (base[kind] + torch.randn(300, 1, 6, 6, generator=g) * 3).clamp(0, 255).to(torch.uint8)
    ytr, yte = random_function_targets(images[:200], images[200:], k=3, seed=1)
    assert (
        adjusted_rand_score(kind[:200], ytr) == 1.0 and adjusted_rand_score(kind[200:], yte) == 1.0
    )
    again = random_function_targets(images[:200], images[200:], k=3, seed=1)
    assert torch.equal(again[0], ytr)  # a fixed function for a fixed seed


def test_each_draw_of_a_random_control_is_its_own_and_repeatable():
    from sslkit import data
    from sslkit.targets import DRAWS, draws, make_targets

    n, k = 200, 10
    labels = torch.arange(n) % k
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n, 1, 4, 4), dtype=torch.uint8, generator=g)
    ds = data.Dataset("t", images, labels, labels % 2, tuple(map(str, range(k))), ("a", "b"))
    assert len(draws("coarse_random")) == DRAWS >= 20
    groupings = [make_targets(t, ds, ds, seed=3)[0] for t in draws("coarse_random", 5)]
    assert len({tuple(x.tolist()) for x in groupings}) > 1  # the draws differ
    again = make_targets("coarse_random@2", ds, ds, seed=3)[0]
    assert torch.equal(again, groupings[2])  # and each is repeatable
    for x in groupings:  # every draw keeps the group sizes
        assert sorted(x.bincount().tolist()) == sorted((labels % 2).bincount().tolist())
    with pytest.raises(ValueError, match="NAME@D"):
        make_targets("fine@1", ds, ds)
    with pytest.raises(ValueError, match="not a random control"):
        draws("fine")


def test_balanced_assignment_fills_every_column_exactly_nearest_first():
    from sslkit.targets import _balanced_assign

    # four points all nearest to column 0, which has room for two: the two nearest stay
    dist = torch.tensor([[0.1, 5.0], [0.4, 1.0], [0.2, 3.0], [0.3, 0.9]])
    out = _balanced_assign(dist, torch.tensor([2, 2]))
    assert out.tolist() == [0, 1, 0, 1]
    # where every point's nearest column has room, it is plain nearest-centre assignment
    g = torch.Generator().manual_seed(0)
    d = torch.rand(60, 3, generator=g)
    loose = _balanced_assign(d, torch.tensor([60, 60, 60]))
    assert torch.equal(loose, d.argmin(1))
    tight = _balanced_assign(d, torch.tensor([20, 20, 20]))
    assert tight.bincount().tolist() == [20, 20, 20]


def test_balanced_kmeans_makes_equal_clusters_where_plain_kmeans_would_not():
    from sklearn.metrics import adjusted_rand_score

    from sslkit.targets import balanced_kmeans, balanced_labels

    g = torch.Generator().manual_seed(1)
    # three separated blobs of equal size are recovered exactly
    centres = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    kind = torch.arange(301) % 3
    x = centres[kind] + torch.randn(301, 2, generator=g) * 0.5
    labels = balanced_labels(x, balanced_kmeans(x, 3, seed=0))
    assert adjusted_rand_score(kind, labels) == 1.0
    assert sorted(labels.bincount().tolist()) == [100, 100, 101]  # sizes differ by at most one
    # one big blob and one small one: the clusters are still equal in size
    x = torch.cat([torch.randn(90, 2, generator=g), torch.randn(10, 2, generator=g) + 20])
    labels = balanced_labels(x, balanced_kmeans(x, 2, seed=0))
    assert labels.bincount().tolist() == [50, 50]
    assert len(set(labels[90:].tolist())) == 1  # the small blob is not split
    with pytest.raises(ValueError, match="2 ≤ k ≤ N"):
        balanced_kmeans(x, 1)


def test_untrained_kmeans_is_a_balanced_function_of_another_untrained_network():
    from sslkit import data, models
    from sslkit import targets as targets_mod
    from sslkit.targets import draws, make_targets

    n, k = 120, 4
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n, 1, 8, 8), dtype=torch.uint8, generator=g)
    labels = torch.arange(n) % k
    ds = data.Dataset("t", images, labels, labels % 2, tuple("abcd"), ("x", "y"))

    def make():
        return models.build_backbone("convnet", 1, 8, (4, 4, 8, 8))

    with pytest.raises(ValueError, match="pass make_backbone"):
        make_targets("untrained_kmeans", ds, ds)
    state = torch.random.get_rng_state()
    ytr, yte = make_targets("untrained_kmeans@0", ds, ds, seed=2, make_backbone=make)
    assert torch.equal(torch.random.get_rng_state(), state)  # the global generator is untouched
    assert ytr.bincount().tolist() == [n // k] * k  # balanced, as large as the classes
    assert torch.equal(ytr, yte)  # one set labelled twice gets the same groups
    other = [
        make_targets(t, ds, ds, seed=2, make_backbone=make)[0] for t in draws("untrained_kmeans", 3)
    ]
    assert torch.equal(other[0], ytr)
    targets_mod._UNTRAINED_TARGETS.clear()  # computed again, not read from memory
    again = make_targets("untrained_kmeans@0", ds, ds, seed=2, make_backbone=make)[0]
    assert torch.equal(again, ytr)  # repeatable
    assert len({tuple(t.tolist()) for t in other}) == 3  # and each draw is its own network
