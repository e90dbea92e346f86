"""The book's figures, in one style. Every function returns the matplotlib Figure."""

from __future__ import annotations

import dataclasses
import textwrap
from collections.abc import Callable, Sequence

import matplotlib
import matplotlib.lines
import matplotlib.pyplot as plt
import matplotlib.ticker
import numpy as np
import pandas as pd
import seaborn as sns
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import FancyBboxPatch

from ..measure import metrics

__all__ = [
    "use_style",
    "image_grid",
    "class_examples",
    "views_grid",
    "plot_seeds",
    "shared_legend",
    "log_axis",
    "plot_terms",
    "plot_verdicts",
    "plot_embedding",
    "plot_scale_study",
    "pipeline_diagram",
    "clusters_toy",
    "plot_views",
    "plot_decisions",
    "plot_stage_gains",
    "COLORS",
]

# One colour per configuration, the same in every chapter.
COLORS = {
    "VICReg": "#1f77b4",
    "SimCLR": "#ff7f0e",
    "Barlow Twins": "#2ca02c",
    "supervised": "#d62728",
    "untrained": "#7f7f7f",
    "invariance only": "#9467bd",
    "regularization only": "#8c564b",
    "ratio 0.2": "#e377c2",
    "ratio 0.5": "#f7b6d2",
    "ratio 2": "#9edae5",
    "ratio 5": "#17becf",
    "rotation": "#bcbd22",
    "jigsaw": "#aec7e8",
    # a term alone: the colour family of VICReg's term alone (purple: invariance, brown:
    # redundancy reduction, Barlow Twins' regularization), not three greens
    "Barlow invariance only": "#c5b0d5",
    "Barlow redundancy only": "#c49c94",
}
# Each verdict's colour (Okabe & Ito's palette, told apart with the common colour-vision
# deficiencies) and marker (a second cue, for print and for any reader who cannot tell the
# colours apart).
VERDICT_STYLE = {
    "held": ("#009E73", "o"),
    "positive, below threshold": ("#56B4E9", "s"),
    "positive, size undecided": ("#0072B2", "D"),
    "not held": ("#D55E00", "X"),
    "reversed": ("#CC79A7", "v"),
    "inconclusive": ("#E69F00", "^"),
}
# Train and test split: neutral greys (the colours belong to methods), test solid, train dashed.
SPLIT_STYLE = {"train": ("0.55", (4, 2)), "test": ("0.1", "")}
SEED_BAND = ("pi", 100)  # the band of every multi-seed curve: the range over the seeds

METRIC_LABELS = {
    "ncc": "NCC accuracy",
    "whitened_ncc": "whitened NCC accuracy",
    "probe": "linear-probe accuracy",
    "knn": "kNN accuracy",
    "cdnv": "CDNV (lower = tighter clusters)",
    "sample_ncc": "sample-level NCC accuracy",
    "erank": "effective rank / width",
}


# The smallest text of the style (tick labels, legends); the browser test checks that it
# renders at 9 px or more at the page's column width (about 690 px at a 1280 px window), so
# a figure is at most MAX_WIDTH_IN inches wide (a 2×2 grid rather than a strip of four
# panels); a captioned figure box takes a few pixels of the column, so 9.5 inches no longer fit.
SMALLEST_FONT_PT = 9
MAX_WIDTH_IN = 9.0


def _percent(v, _=None) -> str:
    """An accuracy tick in percent, with a decimal only where a tick needs one (62.5%)."""
    return f"{100 * v:.1f}".rstrip("0").rstrip(".") + "%"


def use_style() -> None:
    """The book's matplotlib style (call once per chapter); in a notebook, figures are
    exported at 2× ("retina") so that they are sharp on HiDPI screens at their intended size."""
    matplotlib.rcParams.update(
        {
            "figure.dpi": 100,
            "savefig.dpi": 100,
            "figure.figsize": (6.4, 3.6),
            "axes.spines.top": False,
            "axes.spines.right": False,
            "axes.grid": True,
            "grid.alpha": 0.3,
            "font.size": 10,
            "axes.titlesize": 10,
            "axes.labelsize": 10,
            "xtick.labelsize": SMALLEST_FONT_PT,
            "ytick.labelsize": SMALLEST_FONT_PT,
            "legend.fontsize": SMALLEST_FONT_PT,
            "legend.title_fontsize": SMALLEST_FONT_PT,
            "legend.frameon": False,
            "axes.prop_cycle": matplotlib.cycler(color=plt.get_cmap("tab10").colors),
        }
    )
    try:
        from IPython import get_ipython  # lazy: optional, only inside IPython
        from matplotlib_inline.backend_inline import set_matplotlib_formats  # lazy: as IPython
    except ImportError:
        return
    if get_ipython() is not None:
        set_matplotlib_formats("retina")


def _to_image(x: torch.Tensor) -> np.ndarray:
    x = x.detach().float().cpu()
    if x.max() > 1.5:
        x = x / 255
    x = x.clamp(0, 1).permute(1, 2, 0).numpy()
    return x[..., 0] if x.shape[-1] == 1 else x


def image_grid(
    rows: Sequence[torch.Tensor],
    row_titles: Sequence[str] | None = None,
    col_titles: Sequence[str] | None = None,
    size: float = 0.8,
) -> Figure:
    """Images in a grid: ``rows`` is a list of rows, each a list (or tensor) of C×H×W images
    (uint8, or float in [0, 1])."""
    n_rows, n_cols = len(rows), max(len(r) for r in rows)
    fig, axes = plt.subplots(
        n_rows,
        n_cols,
        figsize=(size * n_cols + (1.2 if row_titles else 0.2), size * n_rows + 0.3),
        squeeze=False,
    )
    for i, row in enumerate(rows):
        for j, ax in enumerate(axes[i]):
            if j < len(row):
                ax.imshow(_to_image(row[j]), cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([]), ax.set_yticks([])
            ax.grid(False)
            if i == 0 and col_titles is not None and j < len(col_titles):
                ax.set_title(col_titles[j], fontsize=SMALLEST_FONT_PT)
        if row_titles is not None:
            axes[i, 0].set_ylabel(
                row_titles[i], rotation=0, ha="right", va="center", fontsize=SMALLEST_FONT_PT
            )
    fig.tight_layout(pad=0.2)
    return fig


def class_examples(dataset, per_class: int = 8, max_classes: int = 10) -> Figure:
    """A grid of ``per_class`` training images of each class (one row per class)."""
    k = min(dataset.num_classes, max_classes)
    rows = [dataset.images[torch.nonzero(dataset.labels == c)[:per_class, 0]] for c in range(k)]
    return image_grid(rows, row_titles=list(dataset.classes[:k]))


def views_grid(
    images: torch.Tensor,
    augment: Callable,
    n_views: int = 6,
    seed: int = 0,
    titles: Sequence[str] | None = None,
) -> Figure:
    """Each image (a row) next to ``n_views`` of its random views under ``augment``.

    ``augment`` is a :class:`sslkit.augment.ViewAugment`; it is shown without its final
    normalisation so the views look like images.
    """
    shown = (
        dataclasses.replace(augment, mean=None, std=None)
        if dataclasses.is_dataclass(augment)
        else augment
    )
    g = torch.Generator(device=images.device).manual_seed(seed)
    n = len(images)
    views = shown(images.repeat(n_views, 1, 1, 1), g).view(n_views, n, *images.shape[1:])
    rows = [[images[i]] + [views[v, i] for v in range(n_views)] for i in range(n)]
    return image_grid(rows, titles, ["original"] + [f"view {v + 1}" for v in range(n_views)])


def plot_seeds(
    df: pd.DataFrame,
    x: str,
    y: str = "value",
    hue: str | None = None,
    ax: Axes | None = None,
    title: str | None = None,
    ylabel: str | None = None,
    chance: float | None = None,
    palette: dict | str | None = None,
    percent: bool = False,
    **kw,
) -> Figure:
    """Mean over seeds (one row per seed and ``x``) with a band spanning the seeds
    (seaborn ``lineplot``, ``errorbar=("pi", 100)``); optional dashed chance level;
    ``percent``: an accuracy in [0, 1] shown in percent.

    Two or fewer ``x`` values, or categories, are drawn as markers with bars spanning the
    seeds, not as a line (a line would claim values between them). The legend sits outside
    the data, right of the panel; :func:`shared_legend` gathers a grid's legends into one.
    ``ylabel``: default, the metric's name when ``df`` holds one metric (``""`` for none)."""
    if ax is None:
        fig, ax = plt.subplots()
    if "source" in df and df.source.nunique() > 1:
        return _plot_sources(df, x, y, hue, ax, title, ylabel, chance, palette, percent, **kw)
    if palette is None and hue is not None and set(df[hue]) <= set(COLORS):
        palette = COLORS
    split = hue is not None and palette is None and set(df[hue]) <= set(SPLIT_STYLE)
    if split:
        palette = {k: c for k, (c, _) in SPLIT_STYLE.items()}
    if df[x].nunique() <= 2 or not pd.api.types.is_numeric_dtype(df[x]):
        # markers with bars, side by side (dodged) where several series share an x
        levels = df[hue].nunique() if hue is not None else 1
        sns.pointplot(data=df, x=x, y=y, hue=hue, errorbar=SEED_BAND, ax=ax, palette=palette,
                      linestyle="none", dodge=0.25 if levels > 1 else False, capsize=0.08,
                      markersize=5, err_kws={"linewidth": 1.2}, **kw)  # fmt: skip
    else:
        if split:
            kw = {"style": hue, "dashes": {k: d for k, (_, d) in SPLIT_STYLE.items()}, **kw}
        sns.lineplot(data=df, x=x, y=y, hue=hue, errorbar=SEED_BAND, marker="o",
                     markersize=4, ax=ax, palette=palette, **kw)  # fmt: skip
    if chance is not None:
        ax.axhline(chance, ls="--", lw=1, color="0.5", label="chance")
    if pd.api.types.is_integer_dtype(df[x]) and df[x].nunique() > 2:  # epochs: no 1.5
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    _label_axes(ax, df, y, ylabel, percent, title)
    if hue is not None or chance is not None:
        ax.legend(fontsize=SMALLEST_FONT_PT, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.figure.tight_layout()
    return ax.figure


def _label_axes(ax: Axes, df: pd.DataFrame, y: str, ylabel, percent: bool, title) -> None:
    """The y label (default: the metric's name where ``df`` holds one metric), percent ticks
    and the title of a :func:`plot_seeds` panel."""
    if ylabel is None:
        metric = df["metric"].unique() if "metric" in df else ()
        ylabel = METRIC_LABELS.get(metric[0], metric[0]) if len(metric) == 1 else y
        ylabel = "" if ylabel == "value" else ylabel
    ax.set_ylabel(ylabel)
    if percent:
        ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(_percent))
    if title:
        ax.set_title(title, fontsize=10)


def _plot_sources(df, x, y, hue, ax, title, ylabel, chance, palette, percent, **kw) -> Figure:
    """:func:`plot_seeds` of a table with a ``source`` column (``analysis.collect(...,
    reference=True)``): the stored reference runs as the figure (mean and range over their
    seeds), the reader's own runs over them as thin dashed lines or crosses (their mean), each
    source named in the legend with its number of seeds. Both sources share one colour per
    ``hue`` level and, for categories, one order of ``x``."""
    ref, live = df[df.source == "reference"], df[df.source != "reference"]
    levels = list(dict.fromkeys(ref[hue])) + [v for v in dict.fromkeys(live[hue]) if v not in
                                               set(ref[hue])] if hue else [None]  # fmt: skip
    if isinstance(palette, dict):
        colours = palette
    elif hue is not None and set(levels) <= set(COLORS):
        colours = COLORS
    else:
        colours = dict(zip(levels, sns.color_palette(palette, len(levels))))
    if hue is None:
        colours = {None: "0.15"}
    numeric = pd.api.types.is_numeric_dtype(df[x])
    order = sorted(df[x].unique()) if numeric else list(dict.fromkeys(df[x]))
    where = {v: i for i, v in enumerate(order)}
    step = 0.25 / max(len(levels) - 1, 1) if not numeric and len(levels) > 1 else 0.0
    for i, level in enumerate(levels):
        c = colours[level]
        shift = (i - (len(levels) - 1) / 2) * step
        for rows, is_ref in ((ref, True), (live, False)):
            part = rows if level is None else rows[rows[hue] == level]
            if part.empty:
                continue
            g = part.groupby(x, sort=False)[y].agg(["mean", "min", "max"])
            g = g.reindex([v for v in order if v in g.index])
            xs = np.asarray(g.index, float) if numeric else np.array([where[v] for v in g.index])
            xs = xs + shift
            line = numeric and len(g) > 2
            if is_ref:
                label = "_" if level is None else str(level)
                if line:
                    ax.plot(xs, g["mean"], color=c, lw=1.6, marker="o", markersize=4, label=label)
                    ax.fill_between(xs, g["min"], g["max"], color=c, alpha=0.2, lw=0)
                else:
                    ax.errorbar(xs, g["mean"], yerr=[g["mean"] - g["min"], g["max"] - g["mean"]],
                                color=c, fmt="o", markersize=5, capsize=3, lw=1.2,
                                label=label)  # fmt: skip
            else:
                ax.plot(xs, g["mean"], color=c, lw=1.1 if line else 0,
                        ls=(0, (3, 2)), marker="x", markersize=5, label="_")  # fmt: skip
    if not numeric:
        ax.set_xticks(range(len(order)), [str(v) for v in order])
    elif pd.api.types.is_integer_dtype(df[x]):
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax.set_xlabel(x)
    if chance is not None:
        ax.axhline(chance, ls="--", lw=1, color="0.5", label="chance")
    _label_axes(ax, df, y, ylabel, percent, title)
    handles, labels = ax.get_legend_handles_labels()
    handles += [
        matplotlib.lines.Line2D([], [], color="0.2", lw=1.6, marker="o", markersize=4),
        matplotlib.lines.Line2D([], [], color="0.2", lw=1.1, ls=(0, (3, 2)), marker="x"),
    ]
    labels += [f"reference: {ref.seed.nunique()} seeds,\nmean and range",
               f"this run: {live.seed.nunique()} seeds, mean"]  # fmt: skip
    ax.legend(handles, labels, fontsize=SMALLEST_FONT_PT, loc="upper left",
              bbox_to_anchor=(1.01, 1.0))  # fmt: skip
    ax.figure.tight_layout()
    return ax.figure


def shared_legend(fig: Figure, ncol: int | None = None) -> Figure:
    """One legend for a grid of panels, below them, instead of one per panel (each the same
    lines): the panels keep their width and no legend covers data. ``ncol``: columns of the
    legend (default: up to 4)."""
    handles: dict = {}
    for ax in sorted(fig.axes, key=lambda a: a.get_legend() is None):  # legends' order first
        legend = ax.get_legend()  # its entries, those drawn by hand (the sources) included
        pairs = (
            []
            if legend is None
            else zip([t.get_text() for t in legend.get_texts()], legend.legend_handles)
        )
        for label, h in [*pairs, *zip(*ax.get_legend_handles_labels()[::-1])]:
            handles.setdefault(label, h)  # and the lines drawn after that legend
        if ax.get_legend() is not None:
            ax.get_legend().remove()
    if handles:
        _legend_below(fig, list(handles.values()), list(handles), ncol or min(len(handles), 4))
    return fig


def _legend_below(fig: Figure, handles, labels, ncol: int) -> None:
    """A figure legend under the panels, with the panels laid out above it."""
    legend = fig.legend(handles, labels, loc="lower center", ncol=ncol,
                        fontsize=SMALLEST_FONT_PT, bbox_to_anchor=(0.5, 0.0))  # fmt: skip
    fig.canvas.draw()
    fig.tight_layout(rect=(0, legend.get_window_extent().height / fig.bbox.height + 0.01, 1, 1))


def log_axis(ax: Axes, axis: str = "y") -> Axes:
    """A log scale whose ticks read as plain numbers (0.5, 1, 2, 5), not ``6×10⁻¹``, with at
    least two labelled ticks whatever the range: labels at 1, 2 and 5 times a power of ten
    over a decade or more, at every integer mantissa (1, 2, …, 9) over less, and at a few
    evenly spaced values where the data span less than a factor of two (call it after
    plotting, so that the range is known)."""
    target = ax.yaxis if axis == "y" else ax.xaxis
    (ax.set_yscale if axis == "y" else ax.set_xscale)("log")
    low, high = sorted(ax.get_ylim() if axis == "y" else ax.get_xlim())
    span = high / low if low > 0 else np.inf
    if span < 2:  # within one factor of two no power-of-ten mark may fall: plain even steps
        ticks = matplotlib.ticker.MaxNLocator(4).tick_values(low, high)
        target.set_major_locator(
            matplotlib.ticker.FixedLocator(ticks[(ticks >= low) & (ticks <= high)])
        )
        target.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:.3g}"))
        target.set_minor_formatter(matplotlib.ticker.NullFormatter())
        return ax
    marks = [1, 2, 5] if span >= 10 else list(range(1, 10))

    def plain(v, _):
        mantissa = v / 10 ** np.floor(np.log10(v)) if v > 0 else 0
        return f"{v:g}" if np.isclose(mantissa, marks).any() else ""

    target.set_major_formatter(matplotlib.ticker.FuncFormatter(plain))
    target.set_minor_formatter(matplotlib.ticker.FuncFormatter(plain))
    return ax


def plot_terms(
    curves: pd.DataFrame,
    terms: Sequence[str] | None = None,
    x: str = "epoch",
    logy: bool = False,
    hue: str | None = None,
) -> Figure:
    """One panel per loss term over training, mean over seeds with a band spanning them
    (``curves`` from :func:`sslkit.analysis.loss_curves`)."""
    terms = list(terms or dict.fromkeys(curves.term))
    cols = min(len(terms), 2 if len(terms) == 4 else 3)  # never a strip of four panels
    rows = -(-len(terms) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.0 * cols, 2.9 * rows), squeeze=False)
    for ax in axes.flat[len(terms) :]:
        ax.remove()
    for ax, t in zip(axes.flat, terms):
        d = curves[curves.term == t]
        plot_seeds(d, x=x, hue=hue, ax=ax, ylabel="")
        ax.set_title(TERM_LABELS.get(t, t), fontsize=10)
        if logy and (d.value > 0).all():
            log_axis(ax)
    return shared_legend(fig) if hue is not None or "source" in curves else fig


# Loss terms and training curves by their names in the prose, not the code's.
TERM_LABELS = {
    "embedding_std": "spread (embedding std)",
    "total": "total loss",
    "accuracy": "accuracy (training batches)",
    "cross_entropy": "cross-entropy",
}


def plot_verdicts(verdicts: Sequence, groups: dict | None = None) -> Figure:
    """Each finding's effect with its 95% CI across seeds (a forest plot), the threshold as a
    tick, coloured and marked by verdict.

    ``groups``: title → finding keys (:data:`sslkit.paper.GROUPS`). One panel per group and
    unit, titled with both, each on its own scale: a baseline 80 points above its control does
    not squeeze a claim measured in single points, and points are never drawn on one axis with
    a correlation. Findings in no group are drawn last, under "other findings"."""
    shown = {v.finding.key: v for v in verdicts}
    groups = dict(groups or {"": tuple(shown)})
    listed = {k for keys in groups.values() for k in keys}
    groups["other findings"] = tuple(k for k in shown if k not in listed)
    panels = []
    for title, keys in groups.items():
        vs = [shown[k] for k in keys if k in shown]
        for unit in dict.fromkeys(v.finding.unit for v in vs):
            named = f"{title} ({unit})" if title else unit
            panels.append((named, unit, [v for v in vs if v.finding.unit == unit]))
    wrapped = [[textwrap.fill(v.finding.claim, 48) for v in vs] for _, _, vs in panels]
    heights = [0.23 * sum(w.count("\n") + 1 for w in ws) + 0.1 * len(ws) + 0.35 for ws in wrapped]
    fig, axes = plt.subplots(
        len(panels),
        1,
        figsize=(MAX_WIDTH_IN, sum(heights) + 0.7),
        gridspec_kw={"height_ratios": heights},
        squeeze=False,
    )
    handles = {}
    for ax, (title, unit, vs), labels in zip(axes[:, 0], panels, wrapped):
        scale = 100 if unit.startswith("points") else 1
        for i, v in enumerate(vs):
            c, marker = VERDICT_STYLE[v.verdict]
            ax.plot([scale * v.finding.threshold] * 2, [i - 0.3, i + 0.3], color="0.3", lw=2,
                    zorder=1)  # fmt: skip
            handles[v.verdict] = ax.errorbar(
                scale * v.effect,
                i,
                xerr=[[scale * (v.effect - v.lo)], [scale * (v.hi - v.effect)]],
                fmt=marker,
                color=c,
                capsize=3,
                zorder=3,
            )
        ax.set_yticks(range(len(vs)), labels, fontsize=SMALLEST_FONT_PT)
        ax.set_ylim(len(vs) - 0.5, -0.5)
        ax.axvline(0, color="0.5", lw=0.8)
        ax.grid(axis="y", visible=False)
        ax.set_title(title, loc="left", fontsize=10, fontweight="bold")
    axes[-1, 0].set_xlabel(
        "effect over the control, in the unit of its panel; black tick: threshold"
    )
    order = [k for k in VERDICT_STYLE if k in handles]
    _legend_below(fig, [handles[k] for k in order], order, len(order))
    return fig


def plot_scale_study(study: pd.DataFrame, pixels: dict) -> Figure:
    """The scale study's learning curves (:mod:`sslkit.scale`): one panel per design (rows) and
    ruler (columns), one line per method (mean and 95% band over seeds), the raw-pixel floor
    (``pixels``: by design, or one for all) as a grey line; epoch 0 is the untrained network."""
    words = {"vicreg": "VICReg", "simclr": "SimCLR", "barlow": "Barlow Twins"}
    study = study.assign(method=[words.get(m, m) for m in study.method])  # names, not keys
    designs = list(dict.fromkeys(study.design))
    rulers = list(dict.fromkeys(study.ruler))
    fig, axes = plt.subplots(len(designs), len(rulers), figsize=(MAX_WIDTH_IN, 2.2 * len(designs)),
                             sharey="col", squeeze=False)  # fmt: skip
    names = {"ncc": "NCC", "whitened_ncc": "whitened NCC", "probe": "linear probe"}
    for i, design in enumerate(designs):
        for j, ruler in enumerate(rulers):
            ax = axes[i, j]
            d = study[(study.design == design) & (study.ruler == ruler)]
            sns.lineplot(d, x="epoch", y="value", hue="method", errorbar=("ci", 95), ax=ax,
                         legend=(i == 0 and j == len(rulers) - 1))  # fmt: skip
            floor = pixels[design] if isinstance(pixels.get(design), dict) else pixels
            ax.axhline(floor[ruler], color="0.5", lw=1.5, ls="--", label="raw pixels")
            if i == 0:
                ax.set_title(names.get(ruler, ruler), fontsize=SMALLEST_FONT_PT + 1)
            ax.set_xlabel("epoch" if i == len(designs) - 1 else "")
            ax.set_ylabel(textwrap.fill(design, 16) if j == 0 else "", fontsize=SMALLEST_FONT_PT)
            ax.yaxis.set_major_formatter(
                matplotlib.ticker.FuncFormatter(lambda v, _: f"{100 * v:.0f}%")
            )  # accuracies in percent, as in every figure of the book
    return shared_legend(fig, ncol=len(set(study.method)) + 1)  # the methods and the floor


def plot_embedding(
    points: np.ndarray,
    labels: torch.Tensor | np.ndarray,
    class_names: Sequence[str] | None = None,
    ax: Axes | None = None,
    title: str | None = None,
) -> Figure:
    """A 2-D scatter of embedded points coloured by label."""
    if ax is None:
        fig, ax = plt.subplots(figsize=(4.2, 4))
    labels = np.asarray(labels)
    for c in np.unique(labels):
        m = labels == c
        ax.scatter(
            points[m, 0],
            points[m, 1],
            s=3,
            alpha=0.6,
            label=class_names[c] if class_names is not None else str(c),
        )
    ax.set_xticks([]), ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=9)
    return ax.figure


def _box(ax, xy, text, color, w=1.5, h=0.8):
    ax.add_patch(
        FancyBboxPatch(
            (xy[0] - w / 2, xy[1] - h / 2),
            w,
            h,
            boxstyle="round,pad=0.05",
            fc=color,
            ec="0.3",
            lw=1,
        )
    )
    ax.text(*xy, text, ha="center", va="center", fontsize=10)


def _arrow(ax, a, b, text=None, **kw):
    ax.annotate("", xy=b, xytext=a, arrowprops=dict(arrowstyle="->", color="0.3", lw=1.2, **kw))
    if text:
        ax.text(
            (a[0] + b[0]) / 2,
            (a[1] + b[1]) / 2 + 0.12,
            text,
            ha="center",
            va="bottom",
            fontsize=SMALLEST_FONT_PT,
        )


def pipeline_diagram() -> Figure:
    """A joint-embedding method, drawn: image x → two random views → backbone f (the
    features h that NCC, CDNV, the probe and kNN read) → projector g (the embeddings z
    that the loss reads) → the loss terms (VICReg's names)."""
    fig, ax = plt.subplots(figsize=(MAX_WIDTH_IN, 3.4))
    ax.set_xlim(0, 12), ax.set_ylim(0, 4.2), ax.axis("off")
    ax.grid(False)
    y1, y2 = 3.1, 1.1
    _box(ax, (0.8, 2.1), "image $x$", "#eeeeee", w=1.3)
    for y, v, h, z in ((y1, "t", "$h$", "$z$"), (y2, "t'", "$h'$", "$z'$")):
        _box(ax, (3.0, y), f"view ${v}(x)$", "#eeeeee", w=1.5)
        _box(ax, (5.3, y), "backbone $f$", "#c6dbef", w=1.6)
        _box(ax, (7.6, y), "projector $g$", "#fdd0a2", w=1.6)
        _arrow(ax, (1.45, 2.1), (2.25, y))
        _arrow(ax, (3.75, y), (4.5, y))
        _arrow(ax, (6.1, y), (6.8, y), h)
        _arrow(ax, (8.4, y), (9.25, y), z)
        _arrow(
            ax, (8.9, y), (9.6, 2.1 + (0.3 if y > 2.1 else -0.3))
        )  # both branches reach the invariance
    _box(ax, (10.5, y1), "variance,\ncovariance of $Z$", "#d9f0d3", w=2.3, h=0.9)
    _box(ax, (10.5, y2), "variance,\ncovariance of $Z'$", "#d9f0d3", w=2.3, h=0.9)
    _box(ax, (10.5, 2.1), "invariance $s(Z, Z')$", "#fcbba1", w=2.3, h=0.6)
    ax.text(
        5.3,
        0.15,
        "features $h$, $h'$: what NCC, CDNV, the linear probe\nand kNN measure (shared weights)",
        ha="center",
        va="bottom",
        fontsize=SMALLEST_FONT_PT,
        color="#08519c",
    )
    ax.text(
        7.6,
        4.05,
        "embeddings $z$: what the loss reads",
        ha="center",
        va="top",
        fontsize=SMALLEST_FONT_PT,
        color="#a63603",
    )
    fig.tight_layout()
    return fig


def clusters_toy(seed: int = 0, n: int = 60) -> Figure:
    """What NCC and CDNV measure, on three 2-D classes: tight and far apart (left) and loose
    (right), with the class centres, and both numbers computed by :mod:`sslkit.metrics`."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.tensor([[0.0, 0.0], [3.0, 0.0], [1.5, 2.6]])
    labels = torch.arange(3).repeat_interleave(n)
    noise = torch.randn(3 * n, 2, generator=g)
    fig, axes = plt.subplots(1, 2, figsize=(8.4, 3.8), sharex=True, sharey=True)  # < MAX_WIDTH_IN
    for ax, spread, name in zip(axes, (0.35, 1.1), ("tight clusters", "loose clusters")):
        x = centres[labels] + spread * noise
        ncc, cdnv = metrics.ncc_accuracy(x, labels), metrics.cdnv(x, labels)
        for c in range(3):
            m = labels == c
            ax.scatter(x[m, 0], x[m, 1], s=10, alpha=0.7, label=f"class {c + 1}")
            mu = x[m].mean(0)
            ax.scatter(
                mu[0],
                mu[1],
                marker="X",
                s=120,
                color="black",
                zorder=3,
                label="class centre" if c == 0 else None,
            )
        ax.set_title(f"{name}: NCC {100 * ncc:.0f}%, CDNV {cdnv:.2f}")
        ax.set_aspect("equal")
        ax.set_xticks([]), ax.set_yticks([])
    axes[0].legend(loc="upper left", fontsize=SMALLEST_FONT_PT)
    fig.tight_layout()
    return fig


def plot_views(views: dict, labels, class_names, classes=None) -> Figure:
    """Small multiples of features in two dimensions: ``views`` maps a column title to
    ``{"raw": N×2, "whitened": N×2}`` (:func:`sslkit.findings.images.centre_plane`: the test
    images in the plane of their class centres, before and after whitening, in units of the
    within-class spread), ``labels`` the N classes; ``classes``: the classes drawn."""
    from matplotlib.lines import Line2D

    labels = np.asarray(labels)
    classes = sorted(set(labels.tolist())) if classes is None else list(classes)
    palette = dict(zip(classes, sns.color_palette("colorblind", len(classes))))
    rows = (("raw", "plane of the class centres\n(what raw NCC sees)"),
            ("whitened", "the same, whitened\n(what whitened NCC sees)"))  # fmt: skip
    fig, axes = plt.subplots(2, len(views), figsize=(MAX_WIDTH_IN, 5.4), squeeze=False)
    for j, (title, view) in enumerate(views.items()):
        for i, (row, label) in enumerate(rows):
            ax = axes[i, j]
            xy = np.asarray(view[row], dtype=float)
            for c in classes:
                keep = labels == c
                ax.scatter(xy[keep, 0], xy[keep, 1], s=6, alpha=0.7, color=palette[c],
                           linewidths=0)  # fmt: skip
            ax.set_aspect("equal", adjustable="datalim")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.grid(False)
            if i == 0:
                ax.set_title(title)
            if j == 0:
                ax.set_ylabel(label, fontsize=SMALLEST_FONT_PT)
    handles = [Line2D([], [], ls="none", marker="o", color=palette[c]) for c in classes]
    _legend_below(fig, handles, [class_names[c] for c in classes], len(classes))
    return fig


def plot_decisions(decisions: pd.DataFrame, label: str = "label") -> Figure:
    """A forest plot of findings decided on the per-image evidence
    (:func:`sslkit.findings.decide.decisions` rows, with a ``label`` column): effect and 95%
    interval, the threshold as a black tick, coloured and marked by verdict; one panel per
    unit."""
    units = list(dict.fromkeys(decisions.unit))
    sizes = [int((decisions.unit == u).sum()) for u in units]
    height = 0.42 * sum(sizes) + 1.0 * len(units) + 0.6
    ratios = [n + 1 for n in sizes]
    fig, axes = plt.subplots(len(units), 1, figsize=(MAX_WIDTH_IN, height),
                             gridspec_kw={"height_ratios": ratios}, squeeze=False)  # fmt: skip
    handles = {}
    for ax, unit in zip(axes[:, 0], units):
        rows = decisions[decisions.unit == unit].reset_index(drop=True)
        scale = 100 if unit == "points" else 1
        for i, r in rows.iterrows():
            c, marker = VERDICT_STYLE[r.verdict]
            ax.plot([scale * r.threshold] * 2, [i - 0.3, i + 0.3], color="0.2", lw=2, zorder=1)
            handles[r.verdict] = ax.errorbar(
                scale * r.effect, i,
                xerr=[[scale * (r.effect - r.lo)], [scale * (r.hi - r.effect)]],
                fmt=marker, color=c, capsize=3, zorder=3,
            )  # fmt: skip
        ax.set_yticks(range(len(rows)), [textwrap.fill(t, 44) for t in rows[label]],
                      fontsize=SMALLEST_FONT_PT)  # fmt: skip
        ax.set_ylim(len(rows) - 0.5, -0.5)
        ax.axvline(0, color="0.5", lw=0.8)
        ax.grid(axis="y", visible=False)
        ax.set_xlabel(
            f"effect over its control ({'points of accuracy' if unit == 'points' else unit})"
        )
    order = [k for k in VERDICT_STYLE if k in handles]
    _legend_below(fig, [handles[k] for k in order], order, min(len(order), 3))
    return fig


def plot_stage_gains(profile: pd.DataFrame, rulers: dict) -> Figure:
    """Gain over the untrained network at each stage with its 95% interval, one panel per ruler
    (``rulers``: column value -> title), one line per configuration
    (:func:`sslkit.findings.decide.depth_profile` rows of one ``dim``)."""
    fig, axes = plt.subplots(
        1, len(rulers), figsize=(MAX_WIDTH_IN, 3.4), sharey=True, squeeze=False
    )
    for ax, (ruler, title) in zip(axes[0], rulers.items()):
        for config, rows in profile[profile.ruler == ruler].groupby("config", sort=False):
            color = COLORS.get(config, "0.3")
            ax.plot(rows.stage, 100 * rows.gain, marker="o", color=color, label=config)
            ax.fill_between(rows.stage, 100 * rows.lo, 100 * rows.hi, color=color, alpha=0.2, lw=0)
        ax.axhline(0, color="0.5", lw=0.8)
        ax.set_xticks(sorted(profile.stage.unique()))
        ax.set_xlabel("stage")
        ax.set_title(title)
    axes[0, 0].set_ylabel("gain over the untrained\nnetwork (points)")
    handles, names = axes[0, 0].get_legend_handles_labels()
    _legend_below(fig, handles, names, len(names))
    return fig
