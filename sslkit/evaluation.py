"""Features of every stage of a backbone, and every metric on them in one tidy table.

This is what the training loop's evaluation callbacks call. It knows models and metrics,
never the training loop.
"""
from __future__ import annotations

from typing import Iterable

import pandas as pd
import torch

from . import metrics
from .augment import to_float

__all__ = ["extract_features", "evaluate", "sample_level_ncc", "embed_2d", "METRICS"]

METRICS = ("ncc", "cdnv", "probe", "knn")


@torch.no_grad()
def extract_features(backbone, images, mean=None, std=None, batch_size: int = 1024,
                     stages: bool = False):
    """Backbone features of uint8 ``images`` in eval mode (training mode is restored after).

    Returns an N×D tensor of the last stage's pooled features, or with ``stages=True`` a
    list with one N×D_s tensor per stage, all from one forward pass per batch.
    """
    was_training = backbone.training
    backbone.eval()
    device = next(backbone.parameters()).device
    out: list[list[torch.Tensor]] = []
    try:
        for chunk in images.split(batch_size):
            x = to_float(chunk.to(device, non_blocking=True), mean, std)
            if device.type == "cuda":
                x = x.contiguous(memory_format=torch.channels_last)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
                feats = backbone.forward_stages(x) if stages else [backbone(x)]
            out.append([f.float() for f in feats])
    finally:
        backbone.train(was_training)
    per_stage = [torch.cat(parts) for parts in zip(*out)]
    return per_stage if stages else per_stage[0]


def evaluate(backbone, train, test, *, targets: dict | None = None,
             metrics_to_run: Iterable[str] = ("ncc", "cdnv", "probe"), stages: str = "last",
             knn_k: int = 20) -> pd.DataFrame:
    """Every requested metric, for every target and stage, on train and test features.

    Parameters
    ----------
    backbone : a backbone from :mod:`sslkit.models`
    train, test : :class:`sslkit.data.Dataset`
        Features are computed once per set; normalised with the *train* statistics.
    targets : dict name -> (train_labels, test_labels), optional
        Default: ``{"fine": labels, "coarse": coarse_labels}``.
    metrics_to_run : subset of ``("ncc", "cdnv", "probe", "knn")``
    stages : ``"last"`` or ``"all"``

    Returns
    -------
    DataFrame with columns ``stage, target, split, metric, value``. NCC uses train
    centres for both splits; the probe and kNN are fit on train and scored on test.
    """
    unknown = set(metrics_to_run) - set(METRICS)
    if unknown:
        raise ValueError(f"unknown metrics {sorted(unknown)}; choose from {METRICS}")
    if stages not in ("last", "all"):
        raise ValueError(f"stages must be 'last' or 'all', got {stages!r}")
    if targets is None:
        targets = {"fine": (train.labels, test.labels), "coarse": (train.coarse_labels, test.coarse_labels)}
    mean, std = train.mean_std()
    every = stages == "all"
    ftr = extract_features(backbone, train.images, mean, std, stages=every)
    fte = extract_features(backbone, test.images, mean, std, stages=every)
    if not every:
        ftr, fte = [ftr], [fte]
    names = backbone.stage_names if every else ("last",)
    rows = []
    for stage, xtr, xte in zip(names, ftr, fte):
        for tname, (ytr, yte) in targets.items():
            ytr, yte = ytr.to(xtr.device), yte.to(xtr.device)

            def add(split, metric, value):
                rows.append(dict(stage=stage, target=tname, split=split, metric=metric, value=value))

            if "ncc" in metrics_to_run:
                add("train", "ncc", metrics.ncc_accuracy(xtr, ytr))
                add("test", "ncc", metrics.ncc_accuracy(xte, yte, xtr, ytr))
            if "cdnv" in metrics_to_run:
                add("train", "cdnv", metrics.cdnv(xtr, ytr))
                add("test", "cdnv", metrics.cdnv(xte, yte))
            if "probe" in metrics_to_run:
                add("test", "probe", metrics.linear_probe(xtr, ytr, xte, yte))
            if "knn" in metrics_to_run:
                add("test", "knn", metrics.knn_accuracy(xtr, ytr, xte, yte, k=knn_k))
    return pd.DataFrame(rows)


@torch.no_grad()
def sample_level_ncc(backbone, images, augment, n_views: int = 8, generator=None) -> float:
    """Sample-level NCC of ``images`` (K uint8 images): centres from ``n_views`` augmented
    views of each image, scored on another ``n_views`` fresh views (see
    :func:`sslkit.metrics.sample_ncc_accuracy`)."""
    k = len(images)
    device = next(backbone.parameters()).device
    images = images.to(device)

    def views():
        batch = images.repeat(n_views, 1, 1, 1)  # view-major: row v*K + i is view v of image i
        f = extract_features(backbone, augment(batch, generator))
        return f.view(n_views, k, -1).transpose(0, 1)

    return metrics.sample_ncc_accuracy(views(), views())


def embed_2d(features, seed: int = 0, perplexity: float = 30.0):
    """A 2-D t-SNE map of features (van der Maaten & Hinton, 2008), after PCA to at most 50
    dimensions; returns a NumPy array N×2. For pictures only: distances in it are not metrics."""
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    x = torch.as_tensor(features).float().cpu().numpy()
    if x.shape[1] > 50:
        x = PCA(50, random_state=seed).fit_transform(x)
    return TSNE(2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(x)
