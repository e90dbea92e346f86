import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier, NearestCentroid
from sklearn.preprocessing import StandardScaler

from sslkit import metrics


def blobs(n=600, d=16, k=5, spread=1.2, seed=0, labels_offset=0):
    centres = (
        np.random.default_rng(1234).normal(size=(k, d)) * spread
    )  # shared by train and test sets
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, size=n)
    x = centres[y] + rng.normal(size=(n, d))
    return x.astype(np.float32), (y + labels_offset).astype(np.int64)


def test_ncc_agrees_with_nearest_centroid():
    x, y = blobs(seed=0)
    tx, ty = blobs(seed=0)[0][:200] + 0.3, blobs(seed=0)[1][:200]
    ref = NearestCentroid().fit(x, y)
    assert metrics.ncc_accuracy(x, y) == pytest.approx(ref.score(x, y), abs=1e-12)
    assert metrics.ncc_accuracy(tx, ty, x, y) == pytest.approx(ref.score(tx, ty), abs=1e-12)
    assert metrics.ncc_accuracy(torch.from_numpy(x), torch.from_numpy(y)) == pytest.approx(
        ref.score(x, y)
    )


def test_ncc_with_arbitrary_label_values():
    x, y = blobs(labels_offset=100)
    assert metrics.ncc_accuracy(x, y) == pytest.approx(NearestCentroid().fit(x, y).score(x, y))


def test_cdnv_hand_computed():
    # class 0: points 0 and 2 on a line (mean 1, var 1); class 1: 10 and 10 (mean 10, var 0)
    x = np.array([[0.0], [2.0], [10.0], [10.0]])
    y = np.array([0, 0, 1, 1])
    assert metrics.cdnv(x, y) == pytest.approx((1 + 0) / (2 * 81))


def test_cdnv_matches_a_numpy_loop():
    x, y = blobs(k=4)
    mus = [x[y == c].mean(0) for c in range(4)]
    var = [((x[y == c] - mus[c]) ** 2).sum(1).mean() for c in range(4)]
    vals = [
        (var[i] + var[j]) / (2 * ((mus[i] - mus[j]) ** 2).sum())
        for i in range(4)
        for j in range(i + 1, 4)
    ]
    assert metrics.cdnv(x, y) == pytest.approx(np.mean(vals), rel=1e-6)


def test_tighter_clusters_give_lower_cdnv_and_higher_ncc():
    loose, y = blobs(spread=0.5)
    tight, _ = blobs(spread=3.0)
    assert metrics.cdnv(tight, y) < metrics.cdnv(loose, y)
    assert metrics.ncc_accuracy(tight, y) > metrics.ncc_accuracy(loose, y)


def test_linear_probe_matches_sklearn_logistic_regression():
    x, y = blobs(n=1500, d=32, k=6, spread=0.4, seed=1)
    tx, ty = blobs(n=800, d=32, k=6, spread=0.4, seed=1)
    tx = tx + np.random.default_rng(5).normal(size=tx.shape).astype(np.float32) * 0.5
    scaler = StandardScaler().fit(x)
    ref = LogisticRegression(C=1.0, max_iter=2000).fit(scaler.transform(x), y)
    expected = ref.score(scaler.transform(tx), ty)
    got = metrics.linear_probe(x, y, tx, ty)
    assert 0.3 < expected < 0.99  # not a trivial problem
    assert got == pytest.approx(expected, abs=0.01)


def test_linear_probe_weights_match_sklearn_objective():
    x, y = blobs(n=400, d=8, k=3, spread=0.5, seed=2)
    acc, W, b, mean, std = metrics.linear_probe(x, y, x, y, C=0.5, max_iter=500, return_model=True)
    ref = LogisticRegression(C=0.5, max_iter=5000, tol=1e-10).fit(
        (x - mean.numpy()) / std.numpy(), y
    )
    # multinomial logits are defined up to a shift per sample: compare centred logits
    ours = ((x - mean.numpy()) / std.numpy()) @ W.numpy() + b.numpy()
    theirs = ref.decision_function((x - mean.numpy()) / std.numpy())
    ours -= ours.mean(1, keepdims=True)
    theirs -= theirs.mean(1, keepdims=True)
    assert np.abs(ours - theirs).max() < 2e-2


def test_knn_agrees_with_sklearn():
    x, y = blobs(n=500, spread=0.6, seed=3)
    tx, ty = blobs(n=200, spread=0.6, seed=4)
    for metric in ("cosine", "euclidean"):
        ref = KNeighborsClassifier(n_neighbors=7, metric=metric, algorithm="brute").fit(x, y)
        assert metrics.knn_accuracy(x, y, tx, ty, k=7, metric=metric) == pytest.approx(
            ref.score(tx, ty)
        )


def test_sample_level_ncc():
    # 3 images, 4 views each: views are the image's point plus small noise -> perfect recovery
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 1, 5)) * 10
    views = torch.from_numpy(centres + rng.normal(size=(3, 4, 5)) * 0.1)
    assert metrics.sample_ncc(views) == 1.0
    # if every view is the same point, each view is equidistant: all go to image 0 -> 1/3
    same = torch.zeros(3, 4, 5)
    assert metrics.sample_ncc(same) == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match="K×M×D"):
        metrics.sample_ncc(torch.zeros(3, 5))


def test_view_tightness_by_hand_and_free_of_scale():
    # two images in 1-D: views at 0 and 2 (centre 1), views at 10 and 12 (centre 11)
    views = torch.tensor([[[0.0], [2.0]], [[10.0], [12.0]]])
    # within: every view is 1 from its centre -> 1; between: (11 - 1)^2 = 100 over the one pair
    assert metrics.view_tightness(views) == pytest.approx(1 / 100)
    rng = np.random.default_rng(1)
    v = torch.from_numpy(rng.normal(size=(6, 4, 3)))
    centres = v.mean(1)
    within = ((v - centres[:, None]) ** 2).sum(-1).mean()
    pairs = [((centres[i] - centres[j]) ** 2).sum() for i in range(6) for j in range(6) if i != j]
    assert metrics.view_tightness(v) == pytest.approx(float(within / torch.stack(pairs).mean()))
    # a network that only shrinks its features does not look tighter
    assert metrics.view_tightness(0.01 * v) == pytest.approx(metrics.view_tightness(v))
    with pytest.raises(ValueError, match="same centre"):
        metrics.view_tightness(torch.zeros(3, 2, 4))
    with pytest.raises(ValueError, match="K ≥ 2"):
        metrics.view_tightness(torch.zeros(1, 2, 4))


def test_per_sample_correctness_averages_to_the_accuracy():
    rng = np.random.default_rng(4)
    y = torch.from_numpy(rng.integers(0, 3, 90))
    x = torch.from_numpy(rng.normal(size=(3, 5))[y.numpy()] + rng.normal(size=(90, 5))).float()
    xt, yt = x[:60], y[:60]
    xq, yq = x[60:], y[60:]
    scorers = {  # each scores the queries xq against the references xt
        "ncc": lambda **kw: metrics.ncc_accuracy(xq, yq, xt, yt, **kw),
        "whitened": lambda **kw: metrics.whitened_ncc_accuracy(xq, yq, xt, yt, **kw),
        "knn": lambda **kw: metrics.knn_accuracy(xt, yt, xq, yq, k=5, **kw),
        "probe": lambda **kw: metrics.linear_probe(xt, yt, xq, yq, **kw),
    }
    for name, score in scorers.items():
        correct = score(per_sample=True)
        assert correct.dtype == torch.bool and len(correct) == 30, name
        assert correct.double().mean().item() == pytest.approx(score()), name
    with pytest.raises(ValueError, match="not both"):
        metrics.linear_probe(xt, yt, xq, yq, per_sample=True, return_model=True)


def test_evaluation_subsets_score_each_part_of_the_test_images():
    from sslkit import evaluation

    rng = np.random.default_rng(5)
    y = torch.from_numpy(rng.integers(0, 3, 250))
    x = torch.from_numpy(rng.normal(size=(3, 4))[y.numpy()] + 2 * rng.normal(size=(250, 4))).float()
    (xtr, ytr), (xte, yte) = (x[:100], y[:100]), (x[100:], y[100:])
    rows = evaluation.evaluate_features([xtr], [xte], (ytr, yte), ["s"], "ncc", subsets=5)
    by_split = rows.set_index("split").value
    for k in range(5):  # image i of the test set is in subset i mod 5
        assert by_split[f"test@{k}"] == pytest.approx(
            metrics.ncc_accuracy(xte[k::5], yte[k::5], xtr, ytr)
        )
    parts = [by_split[f"test@{k}"] for k in range(5)]
    assert np.mean(parts) == pytest.approx(by_split["test"])  # 150 images: equal parts
    cdnv = evaluation.evaluate_features([xtr], [xte], (ytr, yte), ["s"], "cdnv", subsets=5)
    assert set(cdnv.split) == {"train", "test"}  # only accuracies are scored per subset


def test_bad_inputs_are_explained():
    with pytest.raises(ValueError, match="one entry per row"):
        metrics.ncc_accuracy(np.zeros((4, 2)), np.zeros(3, dtype=int))
    with pytest.raises(ValueError, match="2-D"):
        metrics.cdnv(np.zeros(4), np.zeros(4, dtype=int))
    with pytest.raises(ValueError, match="integers"):
        metrics.ncc_accuracy(np.zeros((4, 2)), np.zeros(4))
    with pytest.raises(ValueError, match="both"):
        metrics.ncc_accuracy(
            np.zeros((4, 2)), np.zeros(4, dtype=int), ref_features=np.zeros((4, 2))
        )
    with pytest.raises(ValueError, match="k must"):
        metrics.knn_accuracy(
            np.zeros((4, 2)), np.arange(4) % 2, np.zeros((2, 2)), np.zeros(2, dtype=int), k=9
        )


def test_fast_paths_agree_with_the_formulas():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3000, 17, generator=g) * 5 + 100  # an offset that would expose cancellation
    y = torch.randint(0, 7, (3000,), generator=g)
    centres, classes = metrics.class_centres(x, y)
    plain_centres = torch.stack([x[y == c].mean(0) for c in classes])
    assert torch.allclose(centres, plain_centres, atol=1e-4)
    z = torch.randn(3000, 17, generator=g) + 3 * torch.nn.functional.one_hot(y, 17).float()
    zc, _ = metrics.class_centres(z, y)
    nearest = metrics._nearest_centre(z, zc)
    assert torch.equal(nearest, torch.cdist(z.double(), zc.double()).argmin(1))
    codes, _ = metrics._encode(y)
    counts = torch.bincount(codes)
    var = metrics._within_class_variance(x, codes, centres, counts)
    plain = torch.stack(
        [((x[y == c].double() - x[y == c].double().mean(0)) ** 2).sum(1).mean() for c in classes]
    )
    assert torch.allclose(var, plain, rtol=1e-5)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_features_are_rejected_with_the_row_count(bad):
    x = torch.randn(20, 3)
    x[[2, 5], 1] = bad
    y = torch.arange(20) % 2
    for fn, args in [
        (metrics.ncc_accuracy, (x, y)),
        (metrics.cdnv, (x, y)),
        (metrics.linear_probe, (x, y, x, y)),
        (metrics.knn_accuracy, (x, y, x, y, 3)),
    ]:
        with pytest.raises(ValueError, match="non-finite values .* in 2 of 20 rows"):
            fn(*args)


def test_empty_inputs_are_explained():
    with pytest.raises(ValueError, match="empty"):
        metrics.ncc_accuracy(torch.zeros(0, 3), torch.zeros(0, dtype=torch.long))


def test_knn_dimension_mismatch_is_explained():
    with pytest.raises(ValueError, match="train_x has 3 dimensions, test_x 4"):
        metrics.knn_accuracy(
            torch.randn(10, 3), torch.arange(10) % 2, torch.randn(5, 4), torch.arange(5) % 2, k=3
        )


def test_effective_rank_counts_equal_directions_and_matches_the_formula():
    # k orthogonal directions with equal spread: effective rank k
    x = torch.cat([torch.eye(4) * 3, -torch.eye(4) * 3])  # centred, 4 equal singular values
    assert metrics.effective_rank(x) == pytest.approx(4.0)
    assert metrics.effective_rank(torch.ones(10, 3)) == 0.0  # no spread at all
    g = torch.Generator().manual_seed(0)
    y = torch.randn(50, 6, generator=g) * torch.tensor([5.0, 2, 1, 1, 0.1, 0.01])
    s = np.linalg.svd(y.numpy() - y.numpy().mean(0), compute_uv=False)
    p = s / s.sum()
    assert metrics.effective_rank(y) == pytest.approx(
        float(np.exp(-(p * np.log(p)).sum())), rel=1e-6
    )
    assert 1 < metrics.effective_rank(y) < 6


def test_stages_are_projected_to_equal_dimension_with_one_matrix():
    from sslkit.evaluation import project_stages

    g = torch.Generator().manual_seed(0)
    train = [torch.randn(30, d, generator=g) for d in (4, 8, 16)]
    test = [torch.randn(20, d, generator=g) for d in (4, 8, 16)]
    ptr, pte = project_stages(train, test, "smallest")
    assert [x.shape for x in ptr] == [(30, 4)] * 3 and [x.shape for x in pte] == [(20, 4)] * 3
    # the same matrix for train and test: projecting a train row as a test row gives the same vector
    _, again = project_stages(train, [x[:5] for x in train], 4)
    assert all(torch.allclose(a, p[:5]) for a, p in zip(again, ptr))
    with pytest.raises(ValueError, match="smallest stage width 4"):
        project_stages(train, test, 5)


@pytest.mark.parametrize("method", ["umap", "tsne"])
def test_embed_2d_maps_separated_groups_apart(method):
    from sslkit.evaluation import embed_2d

    g = torch.Generator().manual_seed(0)
    x = torch.cat([torch.randn(40, 60, generator=g), torch.randn(40, 60, generator=g) + 20])
    emb = embed_2d(x, method=method)
    assert emb.shape == (80, 2)
    a, b = emb[:40].mean(0), emb[40:].mean(0)
    spread = max(emb[:40].std(0).max(), emb[40:].std(0).max())
    assert np.linalg.norm(a - b) > 2 * spread  # the two groups stay apart in the map
    with pytest.raises(ValueError, match="'umap' or 'tsne'"):
        embed_2d(x, method="pca")


def test_standardised_effective_rank_ignores_the_scale_of_each_dimension():
    g = torch.Generator().manual_seed(3)
    x = torch.randn(500, 8, generator=g)
    scaled = x * torch.tensor([10.0, 5, 2, 1, 1, 0.5, 0.2, 0.1])
    assert metrics.effective_rank(scaled) < 0.8 * metrics.effective_rank(
        x
    )  # raw spectrum: scale counts
    assert metrics.effective_rank(scaled, standardize=True) == pytest.approx(
        metrics.effective_rank(x, standardize=True)
    )
    assert metrics.effective_rank(torch.ones(5, 3), standardize=True) == 0.0


def test_the_smallest_stage_is_only_rotated():
    from sslkit.evaluation import project_stages

    g = torch.Generator().manual_seed(1)
    train = [torch.randn(30, 4, generator=g), torch.randn(30, 16, generator=g)]
    (small, _), _ = project_stages(train, train, "smallest", seed=2)

    def distances(x):
        return torch.cdist(x, x, compute_mode="donot_use_mm_for_euclid_dist")

    assert torch.allclose(distances(small), distances(train[0]), atol=1e-4)
    (other, _), _ = project_stages(train, train, "smallest", seed=3)
    assert not torch.allclose(small, other)  # each seed draws its own projection


def test_uniformity_matches_the_formula_and_prefers_spread_points():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(30, 3, generator=g)
    u = torch.nn.functional.normalize(x, dim=1)
    pairs = [(i, j) for i in range(30) for j in range(30) if i != j]
    direct = np.log(np.mean([np.exp(-2 * float(((u[i] - u[j]) ** 2).sum())) for i, j in pairs]))
    assert metrics.uniformity(x) == pytest.approx(direct, rel=1e-9)
    clumped = torch.tensor([[1.0, 0.0, 0.0]]) + 0.05 * torch.randn(30, 3, generator=g)
    assert metrics.uniformity(clumped) > metrics.uniformity(x)  # clumped: less uniform
    assert metrics.uniformity(5 * x) == pytest.approx(metrics.uniformity(x))  # scale-free
    with pytest.raises(ValueError, match="at least 2 samples"):
        metrics.uniformity(x[:1])


def test_whitened_ncc_cannot_be_fooled_by_a_linear_map():
    """Planted: features that differ from the control only by an invertible linear map. Raw
    NCC sees a gain; whitened NCC sees none (the map added no class information)."""
    rng = np.random.default_rng(0)
    x, y = blobs(n=900, d=12, k=4, spread=0.6, seed=1)
    tx, ty = blobs(n=600, d=12, k=4, spread=0.6, seed=2)
    q1, q2 = (np.linalg.qr(rng.normal(size=(12, 12)))[0] for _ in range(2))
    a = q1 @ np.diag(np.geomspace(0.2, 3, 12)) @ q2  # squash, stretch and mix (above ZCA's floor)
    x_c, tx_c = x @ a, tx @ a  # the "control": a reshaped copy
    raw = metrics.ncc_accuracy(tx, ty, x, y) - metrics.ncc_accuracy(tx_c, ty, x_c, y)
    white = metrics.whitened_ncc_accuracy(tx, ty, x, y) - metrics.whitened_ncc_accuracy(
        tx_c, ty, x_c, y
    )
    assert abs(raw) > 0.05, raw  # raw NCC moves under a linear map
    assert abs(white) < 1e-9, white  # whitened NCC does not


def test_zca_whitener_gives_identity_covariance_and_refuses_bad_eps():
    x, _ = blobs(n=2000, d=6, seed=3)
    x = x @ np.random.default_rng(1).normal(size=(6, 6))
    mu, w = metrics.zca_whitener(x, eps=1e-9)
    z = (torch.from_numpy(x).double() - mu) @ w
    cov = z.T @ z / len(z)
    assert torch.allclose(cov, torch.eye(6, dtype=cov.dtype), atol=1e-5)
    assert torch.allclose(w, w.T)  # ZCA: the symmetric whitener, closest to the identity
    with pytest.raises(ValueError, match="eps must be positive"):
        metrics.zca_whitener(x, eps=0)


def test_degenerate_input_raises_with_the_reason():
    x, y = blobs(n=60, d=4, k=3)
    with pytest.raises(ValueError, match="at least two classes"):
        metrics.ncc_accuracy(x, np.zeros(60, dtype=int))
    test_y = y.copy()
    test_y[:5] = 7  # a class the reference set never saw
    with pytest.raises(ValueError, match=r"labels \[7\] have no reference sample"):
        metrics.ncc_accuracy(x, test_y, x, y)
    with pytest.raises(ValueError, match="same centre"):
        metrics.cdnv(np.ones((60, 4)), y)
    with pytest.raises(ValueError, match="must be integers.*np.unique"):
        metrics.ncc_accuracy(x, np.array(["cat", "dog", "cow"] * 20))
    with pytest.raises(ValueError, match="one class only"):
        metrics.linear_probe(x, np.zeros(60, dtype=int), x, y)


def test_ncc_with_many_classes_keeps_memory_linear():
    """15,000 distinct labels: class sums by index_add_, never a K×N one-hot matrix."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(30_000, 8, generator=g)
    y = torch.arange(30_000) % 15_000
    assert metrics.ncc_accuracy(x, y) == pytest.approx(
        NearestCentroid().fit(x.numpy(), y.numpy()).score(x.numpy(), y.numpy()), abs=1e-12
    )


def test_pca_stages_keep_the_top_principal_directions_like_scikit_learn():
    from sklearn.decomposition import PCA

    from sslkit.evaluation import pca_stages

    g = torch.Generator().manual_seed(0)
    train = [
        torch.randn(300, 4, generator=g),
        torch.randn(300, 16, generator=g) * torch.arange(1, 17),
    ]
    test = [torch.randn(50, 4, generator=g), torch.randn(50, 16, generator=g)]
    out_train, out_test = pca_stages(train, test)
    assert [x.shape[1] for x in out_train + out_test] == [4, 4, 4, 4]
    ref = PCA(n_components=4).fit(train[1].numpy())
    ours = out_test[1].numpy()
    theirs = ref.transform(test[1].numpy())
    # the same subspace and coordinates, up to the sign of each direction
    np.testing.assert_allclose(np.abs(ours), np.abs(theirs), rtol=1e-3, atol=1e-3)
    with pytest.raises(ValueError, match="smallest stage width"):
        pca_stages(train, test, dim=5)


def test_fewshot_ncc_tends_to_ncc_and_needs_enough_images():
    from sslkit import metrics

    g = torch.Generator().manual_seed(0)
    y = torch.arange(300) % 3
    x = torch.randn(3, 5, generator=g)[y] * 4 + torch.randn(300, 5, generator=g)
    tx, ty = x[:150], y[:150]
    # every training image labelled: the centres are the train centres, whatever the draw
    full = metrics.fewshot_ncc_accuracy(x, y, tx, ty, shots=100, draws=3)
    assert full == pytest.approx(metrics.ncc_accuracy(tx, ty, x, y))
    one = metrics.fewshot_ncc_accuracy(x, y, tx, ty, shots=1, draws=20, seed=1)
    assert 1 / 3 < one <= full + 1e-9  # one label per class: above chance, below all labels
    assert one == metrics.fewshot_ncc_accuracy(x, y, tx, ty, shots=1, draws=20, seed=1)
    with pytest.raises(ValueError, match="smallest class's size \\(100\\)"):
        metrics.fewshot_ncc_accuracy(x, y, tx, ty, shots=101)
    with pytest.raises(ValueError, match="test labels \\[7\\] have no training image"):
        metrics.fewshot_ncc_accuracy(x, y, tx, ty.clone().fill_(7), shots=1)
