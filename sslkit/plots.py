"""The book's figures, in one style. Every function returns the matplotlib Figure."""
from __future__ import annotations

import dataclasses

import matplotlib

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

__all__ = ["use_style", "image_grid", "class_examples", "views_grid", "plot_seeds", "plot_terms", "plot_verdicts",
           "plot_embedding", "COLORS"]

# One colour per configuration, the same in every chapter.
COLORS = {
    "VICReg": "#1f77b4", "SimCLR": "#ff7f0e", "Barlow Twins": "#2ca02c", "supervised": "#d62728",
    "untrained": "#7f7f7f", "invariance only": "#9467bd", "regularization only": "#8c564b",
    "ratio 0.2": "#e377c2", "ratio 0.5": "#f7b6d2", "ratio 2": "#9edae5", "ratio 5": "#17becf",
    "rotation": "#bcbd22", "jigsaw": "#aec7e8",
    "Barlow invariance only": "#98df8a", "Barlow redundancy only": "#1b5e20",
}
SEED_BAND = ("pi", 100)  # the band of every multi-seed curve: the range over the seeds

METRIC_LABELS = {
    "ncc": "NCC accuracy", "probe": "linear-probe accuracy", "knn": "kNN accuracy",
    "cdnv": "CDNV (lower = tighter clusters)", "sample_ncc": "sample-level NCC accuracy",
    "erank": "effective rank / width",
}


def use_style() -> None:
    """The book's matplotlib style (call once per chapter)."""
    matplotlib.rcParams.update({
        "figure.dpi": 100, "savefig.dpi": 100, "figure.figsize": (6.4, 3.6),
        "axes.spines.top": False, "axes.spines.right": False, "axes.grid": True,
        "grid.alpha": 0.3, "font.size": 10, "legend.frameon": False,
        "axes.prop_cycle": matplotlib.cycler(color=plt.get_cmap("tab10").colors),
    })


def _to_image(x: torch.Tensor) -> np.ndarray:
    x = x.detach().float().cpu()
    if x.max() > 1.5:
        x = x / 255
    x = x.clamp(0, 1).permute(1, 2, 0).numpy()
    return x[..., 0] if x.shape[-1] == 1 else x


def image_grid(rows, row_titles=None, col_titles=None, size: float = 0.8):
    """Images in a grid: ``rows`` is a list of rows, each a list (or tensor) of C×H×W images
    (uint8, or float in [0, 1])."""
    n_rows, n_cols = len(rows), max(len(r) for r in rows)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(size * n_cols + (1.2 if row_titles else 0.2), size * n_rows + 0.3),
                             squeeze=False)
    for i, row in enumerate(rows):
        for j, ax in enumerate(axes[i]):
            if j < len(row):
                ax.imshow(_to_image(row[j]), cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([]), ax.set_yticks([])
            ax.grid(False)
            if i == 0 and col_titles is not None and j < len(col_titles):
                ax.set_title(col_titles[j], fontsize=8)
        if row_titles is not None:
            axes[i, 0].set_ylabel(row_titles[i], rotation=0, ha="right", va="center", fontsize=8)
    fig.tight_layout(pad=0.2)
    return fig


def class_examples(dataset, per_class: int = 8, max_classes: int = 10):
    """A grid of ``per_class`` training images of each class (one row per class)."""
    k = min(dataset.num_classes, max_classes)
    rows = [dataset.images[torch.nonzero(dataset.labels == c)[:per_class, 0]] for c in range(k)]
    return image_grid(rows, row_titles=list(dataset.classes[:k]))


def views_grid(images: torch.Tensor, augment, n_views: int = 6, seed: int = 0, titles=None):
    """Each image (a row) next to ``n_views`` of its random views under ``augment``.

    ``augment`` is a :class:`sslkit.augment.ViewAugment`; it is shown without its final
    normalisation so the views look like images.
    """
    shown = dataclasses.replace(augment, mean=None, std=None) if dataclasses.is_dataclass(augment) else augment
    g = torch.Generator(device=images.device).manual_seed(seed)
    n = len(images)
    views = shown(images.repeat(n_views, 1, 1, 1), g).view(n_views, n, *images.shape[1:])
    rows = [[images[i]] + [views[v, i] for v in range(n_views)] for i in range(n)]
    return image_grid(rows, titles, ["original"] + [f"view {v + 1}" for v in range(n_views)])


def plot_seeds(df: pd.DataFrame, x: str, y: str = "value", hue: str | None = None, ax=None,
               title: str | None = None, ylabel: str | None = None, chance: float | None = None,
               palette=None, **kw):
    """Mean over seeds (one row per seed and ``x``) with a band spanning the seeds
    (seaborn ``lineplot``, ``errorbar=("pi", 100)``); optional dashed chance level."""
    import seaborn as sns

    if ax is None:
        fig, ax = plt.subplots()
    if palette is None and hue is not None and set(df[hue]) <= set(COLORS):
        palette = COLORS
    sns.lineplot(data=df, x=x, y=y, hue=hue, errorbar=SEED_BAND, marker="o", markersize=4, ax=ax,
                 palette=palette, **kw)
    if chance is not None:
        ax.axhline(chance, ls="--", lw=1, color="0.5", label="chance")
    ax.set_ylabel(ylabel or y)
    if title:
        ax.set_title(title, fontsize=10)
    if hue is not None or chance is not None:
        ax.legend(fontsize=8)
    ax.figure.tight_layout()
    return ax.figure


def plot_terms(curves: pd.DataFrame, terms=None, x: str = "epoch", logy: bool = False, hue: str | None = None):
    """One panel per loss term over training, mean over seeds with a band spanning them
    (``curves`` from :func:`sslkit.analysis.loss_curves`)."""
    terms = list(terms or dict.fromkeys(curves.term))
    fig, axes = plt.subplots(1, len(terms), figsize=(3.4 * len(terms), 3.0), squeeze=False)
    for ax, t in zip(axes[0], terms):
        d = curves[curves.term == t]
        plot_seeds(d, x=x, hue=hue, ax=ax, ylabel="")
        ax.set_title(t, fontsize=10)
        if logy and (d.value > 0).all():
            ax.set_yscale("log")
    fig.tight_layout()
    return fig


def plot_verdicts(verdicts, unit: str = "points"):
    """Each finding's effect with its 95% CI across seeds (a forest plot), the threshold as a
    tick, coloured by verdict; only the findings measured in ``unit``."""
    colors = {"held": "#2ca02c", "not held": "#d62728", "inconclusive": "#ff7f0e"}
    vs = [v for v in verdicts if v.finding.unit == unit]
    scale = 100 if unit == "points" else 1
    fig, ax = plt.subplots(figsize=(7.5, 0.45 * len(vs) + 1.2))
    for i, v in enumerate(vs):
        c = colors[v.verdict]
        ax.errorbar(scale * v.effect, i, xerr=[[scale * (v.effect - v.lo)], [scale * (v.hi - v.effect)]],
                    fmt="o", color=c, capsize=3, label=v.verdict)
        ax.plot([scale * v.finding.threshold] * 2, [i - 0.3, i + 0.3], color="0.3", lw=2)
    ax.set_yticks(range(len(vs)), [v.finding.claim for v in vs], fontsize=8)
    ax.invert_yaxis()
    ax.axvline(0, color="0.5", lw=0.8)
    ax.set_xlabel(f"effect over the control ({unit}); black tick: threshold")
    handles = {h.get_label(): h for h in ax.get_legend_handles_labels()[0]}
    ax.legend(handles.values(), handles.keys(), fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig


def plot_embedding(points: np.ndarray, labels, class_names=None, ax=None, title: str | None = None):
    """A 2-D scatter of embedded points coloured by label."""
    if ax is None:
        fig, ax = plt.subplots(figsize=(4.2, 4))
    labels = np.asarray(labels)
    for c in np.unique(labels):
        m = labels == c
        ax.scatter(points[m, 0], points[m, 1], s=3, alpha=0.6,
                   label=class_names[c] if class_names is not None else str(c))
    ax.set_xticks([]), ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=9)
    return ax.figure
