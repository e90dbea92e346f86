"""Features of every stage of a backbone, and every metric on them in one tidy table.

This is what the training loop's evaluation callbacks call. It knows models and metrics,
never the training loop.
"""

from __future__ import annotations

import copy
import warnings

import pandas as pd
import torch

from ..learn.augment import to_float
from ..runtime import autocast_dtype
from ..seeds import generator
from . import metrics

__all__ = [
    "extract_features",
    "calibrate_batchnorm",
    "evaluate_features",
    "measure_sample_ncc",
    "view_features",
    "embed_2d",
    "project_stages",
    "pca_stages",
    "METRICS",
    "ACCURACIES",
    "EVAL_SUBSETS",
]

# Few-shot NCC at these numbers of labelled images per class ("fewshot_5": five per class).
# The labelled images are drawn with a seed of their own (the number of shots): every network
# evaluated on the same images gets the same labelled draws, so the comparison is paired.
SHOTS = (1, 5, 10, 50)
METRICS = ("ncc", "whitened_ncc", "cdnv", "probe", "knn", "erank", *(f"fewshot_{s}" for s in SHOTS))
# The metrics that are accuracies on the test images: a mean over images, so they can be scored
# on evaluation subsets (``subsets`` of :func:`evaluate_features`).
ACCURACIES = ("ncc", "whitened_ncc", "probe", "knn")
# Evaluation subsets the evidence store scores each test accuracy on (400 of the reference
# profile's 2,000 test images each): enough to estimate how much an effect owes to which test
# images were drawn (sslkit.analysis.standard_error), few enough to keep the store small.
EVAL_SUBSETS = 5


@torch.no_grad()
def extract_features(
    backbone,
    images,
    mean=None,
    std=None,
    batch_size: int = 1024,
    stages: bool = False,
    autocast: bool = True,
):
    """Backbone features of uint8 ``images`` in eval mode (training mode is restored after).

    Returns an N×D tensor of the last stage's pooled features, or with ``stages=True`` a
    list with one N×D_s tensor per stage, all from one forward pass per batch. ``stages=True``
    needs one of the book's backbones (``forward_stages``); for any other module, such as a
    torchvision ResNet, use :func:`sslkit.analyze`, which taps named layers. ``autocast``:
    bfloat16 on a GPU that computes it natively (as training does); ``False`` keeps float32.
    """
    was_training = backbone.training
    backbone.eval()
    device = next(backbone.parameters()).device
    out: list[list[torch.Tensor]] = []
    try:
        for chunk in images.split(batch_size):
            x = to_float(chunk.to(device, non_blocking=True), mean, std)
            x = x.contiguous(memory_format=torch.channels_last)
            amp = autocast_dtype(device) if autocast else None
            with torch.autocast(device.type, dtype=amp or torch.bfloat16, enabled=amp is not None):
                if stages and not hasattr(backbone, "forward_stages"):
                    raise TypeError(
                        f"{type(backbone).__name__} has no forward_stages: stages=True needs "
                        "one of sslkit's backbones; for another model use sslkit.analyze"
                    )
                feats = backbone.forward_stages(x) if stages else [backbone(x)]
            out.append([f.float() for f in feats])
    finally:
        backbone.train(was_training)
    per_stage = [torch.cat(parts) for parts in zip(*out)]
    return per_stage if stages else per_stage[0]


@torch.no_grad()
def calibrate_batchnorm(backbone, images, mean=None, std=None, batch_size: int = 2048):
    """A copy of ``backbone`` whose BatchNorm statistics are measured on ``images``; no weight
    changes.

    An untrained network's BatchNorm layers hold their initial statistics (mean 0,
    variance 1), so in eval mode they do not normalise at all. A trained network's hold the
    statistics of its data. Comparing the two would credit training with what is only
    BatchNorm calibration; the fair control is the untrained weights with statistics
    measured on the data (the average of equal-sized batches' mean and variance).

    ``images``: uint8 images N×C×H×W (``to_float`` with ``mean``, ``std``; the last
    ``N mod batch_size`` left out), or an iterable of equal-sized float batches ready for the
    network (on its device), for images that do not fit in memory (:func:`sslkit.analyze`).
    """
    net = copy.deepcopy(backbone)
    norms = [m for m in net.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return net.eval()
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # a plain average over the batches
    if torch.is_tensor(images):
        device = next(net.parameters()).device
        n = len(images)
        size = min(batch_size, n)
        chunks = images[: n - n % size].split(size)
        images = (to_float(chunk.to(device), mean, std) for chunk in chunks)
    net.train()
    for x in images:  # equal batches: the average is the data's statistics
        net(x)
    return net.eval()


def evaluate_features(
    train_feats, test_feats, labels, stage_names, metric: str, knn_k: int = 20, subsets: int = 0
) -> pd.DataFrame:
    """One metric at every stage, from features already extracted.

    Parameters
    ----------
    train_feats, test_feats : lists of N×D tensors, one per stage (as from
        :func:`extract_features` with ``stages=True``)
    labels : (train_labels, test_labels)
    stage_names : the stages' names, in the same order
    metric : ``"ncc"`` and ``"cdnv"`` give a train and a test row (NCC scores both splits
        against the *train* centres); ``"whitened_ncc"`` is NCC after ZCA whitening fitted on
        the train features (:func:`~sslkit.metrics.whitened_ncc_accuracy`), train and test
        rows; ``"probe"`` and ``"knn"`` are fit on train and scored
        on test; ``"erank"`` (:func:`~sslkit.metrics.effective_rank` of the standardised
        features, so that rescaling a dimension does not count) ignores the labels;
        ``"fewshot_K"`` (K in :data:`SHOTS`) is NCC on test with centres from K train images per
        class (:func:`~sslkit.metrics.fewshot_ncc_accuracy`, mean over 5 draws), a test row.
    subsets : for the accuracies (:data:`ACCURACIES`), also score the test images in this many
        disjoint **evaluation subsets** (image ``i`` in subset ``i mod subsets``), rows with
        split ``"test@0"``, ``"test@1"``, …: with the model fitted once on train, how much
        the test accuracy moves between subsets measures how much it owes to which test
        images were drawn (:func:`sslkit.analysis.t_interval`).

    Returns
    -------
    DataFrame with columns ``stage, split, metric, value``.
    """
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; choose from {METRICS}")
    ytr, yte = labels
    rows = []
    for stage, xtr, xte in zip(stage_names, train_feats, test_feats):
        ytr, yte = ytr.to(xtr.device), yte.to(xtr.device)
        values = _stage_values(metric, xtr, ytr, xte, yte, knn_k, subsets)
        rows += [
            dict(stage=stage, split=split, metric=metric, value=v) for split, v in values.items()
        ]
    return pd.DataFrame(rows)


def _stage_values(metric: str, xtr, ytr, xte, yte, knn_k: int, subsets: int) -> dict[str, float]:
    """One stage's values of ``metric`` by split (``"train"``, ``"test"``, ``"test@k"``), as
    :func:`evaluate_features` describes them."""
    if metric == "ncc":
        return {
            "train": metrics.ncc_accuracy(xtr, ytr),
            **_scored(metrics.ncc_accuracy(xte, yte, xtr, ytr, per_sample=True), subsets),
        }
    if metric == "whitened_ncc":
        return {
            "train": metrics.whitened_ncc_accuracy(xtr, ytr),
            **_scored(metrics.whitened_ncc_accuracy(xte, yte, xtr, ytr, per_sample=True), subsets),
        }
    if metric == "cdnv":
        return {"train": metrics.cdnv(xtr, ytr), "test": metrics.cdnv(xte, yte)}
    if metric == "probe":
        return _scored(metrics.linear_probe(xtr, ytr, xte, yte, per_sample=True), subsets)
    if metric.startswith("fewshot_"):
        shots = int(metric.removeprefix("fewshot_"))
        return {"test": metrics.fewshot_ncc_accuracy(xtr, ytr, xte, yte, shots, seed=shots)}
    if metric == "erank":
        return {
            "train": metrics.effective_rank(xtr, standardize=True),
            "test": metrics.effective_rank(xte, standardize=True),
        }
    return _scored(metrics.knn_accuracy(xtr, ytr, xte, yte, k=knn_k, per_sample=True), subsets)


def _scored(correct: torch.Tensor, subsets: int) -> dict[str, float]:
    """The test accuracy of per-image booleans, and each evaluation subset's (image ``i`` in
    subset ``i mod subsets``)."""
    out = {"test": correct.double().mean().item()}
    out.update({f"test@{k}": correct[k::subsets].double().mean().item() for k in range(subsets)})
    return out


def _equal_dim(train_feats, dim) -> int:
    """The dimension every stage is brought to: ``dim``, or the smallest stage width for
    ``"smallest"``; refused outside 1..smallest width."""
    smallest = min(x.shape[1] for x in train_feats)
    dim = smallest if dim == "smallest" else int(dim)
    if dim < 1 or dim > smallest:
        raise ValueError(
            f"dim must be between 1 and the smallest stage width {smallest}, got {dim}"
        )
    return dim


def project_stages(train_feats, test_feats, dim, seed: int = 0):
    """Every stage's features through one fixed random orthonormal projection to ``dim``
    dimensions (the same matrix for train and test and for every snapshot of a run of
    this ``seed``: its ``projection`` stream, one per stage).

    Stages grow wider with depth, and NCC depends on the dimension; projecting all of
    them to the smallest width compares stages at equal dimension. The projection has
    orthonormal columns (QR of a Gaussian matrix), so the smallest stage is only rotated
    and a wider one is seen through a random ``dim``-dimensional window.
    ``dim="smallest"`` picks the smallest stage width. Returns the two lists of projected features.
    """
    dim = _equal_dim(train_feats, dim)
    out_train, out_test = [], []
    for i, (xtr, xte) in enumerate(zip(train_feats, test_feats)):
        g = generator(seed, "projection", i)
        w = torch.linalg.qr(torch.randn(xtr.shape[1], dim, generator=g, dtype=torch.float64))[0].to(
            xtr
        )
        out_train.append(xtr @ w)
        out_test.append(xte @ w)
    return out_train, out_test


def pca_stages(train_feats, test_feats, dim="smallest"):
    """Every stage's features projected on its own top ``dim`` principal directions (fitted on
    the train features of that stage, centred on their mean; ``"smallest"``: the smallest
    stage width).

    Unlike a random window (:func:`project_stages`), PCA keeps the most variance each stage
    has in ``dim`` dimensions, so a low-rank trained stage and a full-rank untrained one lose
    in the same, deterministic way: stages compare at equal dimension without a draw.
    """
    dim = _equal_dim(train_feats, dim)
    out_train, out_test = [], []
    for xtr, xte in zip(train_feats, test_feats):
        mean = xtr.mean(0, keepdim=True)
        centred = (xtr - mean).double()
        _, vecs = torch.linalg.eigh(centred.T @ centred)  # ascending eigenvalues
        w = vecs[:, -dim:].flip(1).to(xtr)
        out_train.append((xtr - mean) @ w)
        out_test.append((xte - mean) @ w)
    return out_train, out_test


@torch.no_grad()
def view_features(backbone, images, augment, n_views: int = 8, generator=None) -> torch.Tensor:
    """Features of ``n_views`` augmented views of each of K uint8 ``images``: a K×M×D tensor
    (row ``i`` holds the views of image ``i``)."""
    k = len(images)
    device = next(backbone.parameters()).device
    batch = images.to(device).repeat(
        n_views, 1, 1, 1
    )  # view-major: row v*K + i is view v of image i
    f = extract_features(backbone, augment(batch, generator))
    return f.view(n_views, k, -1).transpose(0, 1)


def measure_sample_ncc(backbone, images, augment, n_views: int = 8, generator=None) -> float:
    """Sample-level NCC of ``images`` (K uint8 images): centres from ``n_views`` augmented
    views of each image, scored on another ``n_views`` fresh views (see
    :func:`sslkit.metrics.sample_ncc`)."""
    centres_from = view_features(backbone, images, augment, n_views, generator)
    queries = view_features(backbone, images, augment, n_views, generator)
    return metrics.sample_ncc(queries, centres_from)


def embed_2d(
    features, method: str = "umap", seed: int = 0, n_neighbors: int = 15, perplexity: float = 30.0
):
    """A 2-D map of N×D features, for pictures only (distances in it are not metrics).

    ``method="umap"`` (McInnes et al., 2018; the maps of Ben-Shaul et al., 2023, Fig. 1)
    or ``"tsne"`` (van der Maaten & Hinton, 2008), after PCA to at most 50 dimensions.
    Returns a NumPy array N×2.
    """
    # lazy: scikit-learn takes a second to import, and only the maps need it
    from sklearn.decomposition import PCA

    if method not in ("umap", "tsne"):
        raise ValueError(f"method must be 'umap' or 'tsne', got {method!r}")
    x = torch.as_tensor(features).float().cpu().numpy()
    if x.shape[1] > 50:
        x = PCA(50, random_state=seed).fit_transform(x)
    with warnings.catch_warnings():  # umap warns that a fixed seed runs on one thread; we want that
        warnings.simplefilter("ignore")
        if method == "umap":
            import umap  # lazy: umap-learn (and numba) take seconds to import, for maps only

            return umap.UMAP(
                n_neighbors=min(n_neighbors, len(x) - 1), random_state=seed
            ).fit_transform(x)
        from sklearn.manifold import TSNE  # lazy: as PCA above

        return TSNE(
            2, perplexity=min(perplexity, (len(x) - 1) / 3), init="pca", random_state=seed
        ).fit_transform(x)
