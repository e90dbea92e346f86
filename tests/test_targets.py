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
