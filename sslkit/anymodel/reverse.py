"""Reverse-engineer any encoder: the book's rulers, layer by layer, on a model trained elsewhere.

:func:`analyze` asks Ben-Shaul et al.'s (2023) questions of any ``torch.nn.Module`` that maps
images to features (a torchvision ResNet, a lightly or solo-learn backbone, a timm model, one
of the book's networks):

- how well each tapped layer clusters the **fine** and **coarse** classes, on the three rulers
  (raw NCC, whitened NCC, the linear probe) plus CDNV and kNN;
- against its **controls**: random groupings of the classes of the coarse level's sizes
  (``coarse_random``) and random functions of the image (``random_function``: k-means of a
  random projection of the pixels), each the mean over many draws;
- against two **floors**: the same architecture untrained (BatchNorm statistics measured on the
  data, as the book does) and the raw pixels.

Everything that needs all the data is a running sum (:mod:`sslkit.streaming`): one forward pass
over the fitting images gives class centres, variances and the whitening statistics (ZCA, ε as
:data:`sslkit.WHITEN_EPS`), one over the scoring images gives NCC and whitened NCC against the
fitting images' centres, and CDNV, so an ImageNet-sized folder never has to fit in memory.
The linear probe and kNN use a stratified subsample of at most ``max_fit`` images per split, and
the settings say so.

What no ruler can measure is refused with the reason and what to do (``ValueError``): fractional
labels, a class with under :data:`MIN_FIT_IMAGES` fitting images or with scoring images only, a
count below 1. Running out of memory says what to do too (``MemoryError``).
"""

from __future__ import annotations

import contextlib
import copy
import math
import numbers
import platform
import re
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pandas as pd
import torch
import torch.nn.functional as F

from ..cache import cached
from ..learn import data as data_mod
from ..measure.evaluation import calibrate_batchnorm
from ..measure.metrics import WHITEN_EPS, knn_accuracy, linear_probe
from ..measure.streaming import ClassStats, NCCScore, whiten
from ..measure.targets import DRAWS, projected_kmeans, random_grouping
from ..runtime import autocast_dtype, progress_enabled
from ..seeds import stream_seed
from .sources import Split, fit_and_score, labels_of
from .taps import Tap, adapt_channels, default_layers, resolve_layers

__all__ = ["analyze", "Analysis", "METRICS", "TARGETS", "default_layers"]

METRICS = ("ncc", "whitened_ncc", "cdnv", "probe", "knn")
TARGETS = ("fine", "coarse", "coarse_random", "random_function")
# Random controls are averaged over DRAWS draws by default: sslkit.targets.DRAWS, the book's.
# The columns of Analysis.table, one row per value.
_COLUMNS = ("network", "layer", "target", "metric", "split", "value")
# The linear probe and kNN are fitted on the features of at most this many images per split.
MAX_FIT = 10_000
# Whitening needs a D×D covariance: layers wider than this are measured without it.
MAX_WHITEN_DIM = 4096
# Raw pixels are average-pooled to at most this side before they are measured (the floor).
PIXEL_SIDE = 32
# Every class needs this many fitting images: a centre, and a spread about it.
MIN_FIT_IMAGES = 2


@dataclass
class Analysis:
    """What :func:`analyze` measured: ``table`` has one row per value, columns ``network``
    (``"model"``, ``"untrained"``, ``"pixels"``), ``layer``, ``target``, ``metric``, ``split``,
    ``value``; a random control has one row per draw (``"coarse_random@3"``). ``settings`` is
    everything that decided the numbers; ``provenance`` where they came from (versions, a
    fingerprint of the weights and of the data, the date, the processes)."""

    table: pd.DataFrame
    settings: dict = field(default_factory=dict)
    provenance: dict = field(default_factory=dict)

    def summary(self, split: str = "test") -> pd.DataFrame:
        """Mean over draws of each control, one row per (network, layer, target), one column
        per metric."""
        t = self.table[self.table.split == split].copy()
        t["target"] = t.target.str.partition("@")[0]
        return t.pivot_table(
            index=["network", "layer", "target"], columns="metric", values="value", sort=False
        )


# --------------------------------------------------------------------------- labels


@dataclass
class _Labels:
    """The label codes: fine classes as ``0..K−1`` (code ``c`` is the label ``classes[c]``),
    both splits' codes, and each class's coarse group (``parent``; None without coarse labels)."""

    classes: torch.Tensor
    fit: torch.Tensor
    score: torch.Tensor
    parent: torch.Tensor | None = None
    n_coarse: int = 0

    @property
    def k(self) -> int:
        return len(self.classes)

    @property
    def remapped(self) -> bool:
        return not torch.equal(self.classes, torch.arange(len(self.classes)))

    def codes(self, y: torch.Tensor) -> torch.Tensor:
        return torch.searchsorted(self.classes, y.long())

    def coarse(self, codes: torch.Tensor) -> torch.Tensor | None:
        """Each image's coarse label: its class's group."""
        return None if self.parent is None else self.parent.to(codes.device)[codes]


def _label_codes(fit: Split, score: Split, batch_size: int) -> _Labels:
    """Codes 0..K−1 for the fine labels (mapped, and said so, when they are other integers),
    and each class's coarse group."""
    fit_fine, fit_coarse = labels_of(fit, batch_size)
    score_fine, score_coarse = labels_of(score, batch_size)
    _check_classes(fit_fine, score_fine)
    classes = torch.unique(torch.cat([fit_fine, score_fine]))
    if len(torch.unique(fit_fine)) < 2:
        raise ValueError(
            f"the fitting images hold one class only ({int(fit_fine[0])}): clustering by class "
            "needs at least two"
        )
    fit_codes, score_codes = (torch.searchsorted(classes, y.long()) for y in (fit_fine, score_fine))
    labels = _Labels(classes, fit_codes, score_codes)
    if labels.remapped:
        warnings.warn(
            f"labels are not 0..K−1 (they are {classes[:5].tolist()}…); mapped to "
            f"0..{len(classes) - 1} in sorted order",
            stacklevel=4,  # the caller of analyze (through _images)
        )
    if fit_coarse is not None:
        labels.parent, labels.n_coarse = _coarse_groups(labels, fit_coarse, score_coarse)
    return labels


def _check_classes(fit_fine: torch.Tensor, score_fine: torch.Tensor) -> None:
    """Refuse splits no ruler can measure: no images, a class with fewer than
    :data:`MIN_FIT_IMAGES` fitting images, a class only in the scoring images (no centre, probe
    or kNN can predict it, so each of its images would count as wrong, as
    :func:`sslkit.metrics.ncc_accuracy` refuses)."""
    need = (
        f"analyze needs at least {MIN_FIT_IMAGES} fitting images of every class (two classes at "
        "least) and one scoring image"
    )
    for name, y in (("fitting", fit_fine), ("scoring", score_fine)):
        if not len(y):
            raise ValueError(f"there are no {name} images: {need}")
    classes, counts = torch.unique(fit_fine, return_counts=True)
    few = classes[counts < MIN_FIT_IMAGES].tolist()
    if few:
        raise ValueError(
            f"classes {few[:10]} have fewer than {MIN_FIT_IMAGES} fitting images: {need}. Give "
            "them more images (one set is split at random, 80% to fit), or leave them out"
        )
    only = torch.unique(score_fine[~torch.isin(score_fine, classes)]).tolist()
    if only:
        raise ValueError(
            f"classes {only[:10]} are in the scoring images only: nothing fitted can predict "
            "them, so each of their images would count as wrong. Give them fitting images, or "
            "leave their scoring images out"
        )


def _coarse_groups(labels: _Labels, fit_coarse, score_coarse) -> tuple[torch.Tensor, int]:
    """Each fine class's coarse group (as codes) and the number of groups; coarse labels must
    group whole fine classes (every class has fitting images: :func:`_check_classes`)."""
    coarse_classes = torch.unique(
        torch.cat([fit_coarse] + ([score_coarse] if score_coarse is not None else []))
    )
    parent = torch.full((labels.k,), -1, dtype=torch.long)
    cc = torch.searchsorted(coarse_classes, fit_coarse.long())
    parent[labels.fit] = cc
    pairs = [(labels.fit, cc)]
    if score_coarse is not None:
        pairs.append((labels.score, torch.searchsorted(coarse_classes, score_coarse)))
    for fine_codes, coarse_codes in pairs:  # every image's coarse label is its class's
        clash = parent[fine_codes] != coarse_codes
        if clash.any():
            raise ValueError(
                f"fine class {int(labels.classes[fine_codes[clash][0]])} has images in more "
                "than one coarse class: coarse labels must group whole fine classes"
            )
    return parent, len(coarse_classes)


# --------------------------------------------------------------------------- images


def _stratified(codes: torch.Tensor, limit: int, seed: int) -> torch.Tensor:
    """At most ``limit`` positions, each class in proportion to its size (all if few)."""
    n = len(codes)
    if n <= limit:
        return torch.arange(n)
    g = torch.Generator().manual_seed(int(seed))
    keep = []
    for c in torch.unique(codes):
        idx = torch.nonzero(codes == c).flatten()
        take = max(1, int(round(limit * len(idx) / n)))
        keep.append(idx[torch.randperm(len(idx), generator=g)[:take]])
    return torch.cat(keep).sort().values


@dataclass
class _Images:
    """The two splits (read in batches of ``batch_size``), how they were made, their label
    codes, and the positions of the images the probe and kNN use (``keep[split name]``: at most
    ``max_fit`` per split, stratified by class)."""

    fit: Split
    score: Split
    how: str
    labels: _Labels
    keep: dict[str, torch.Tensor]
    batch_size: int
    max_fit: int

    @property
    def subsampled(self) -> bool:
        return bool(len(self.keep["fit"]) < self.fit.n or len(self.keep["score"]) < self.score.n)


def _images(data, batch_size: int, max_fit: int, seed: int, limit=None) -> _Images:
    """The splits of ``data`` (:func:`~sslkit.sources.fit_and_score`, at most ``limit`` images),
    their label codes and the probe's stratified subsamples."""
    fit, score, how = fit_and_score(data, seed, limit)
    labels = _label_codes(fit, score, batch_size)
    keep = {
        "fit": _stratified(labels.fit, max_fit, stream_seed(seed, "pixel_subsets", 0)),
        "score": _stratified(labels.score, max_fit, stream_seed(seed, "pixel_subsets", 1)),
    }
    return _Images(fit, score, how, labels, keep, batch_size, max_fit)


def _pixels(x: torch.Tensor) -> torch.Tensor:
    """The pixel floor's features: images average-pooled to at most ``PIXEL_SIDE`` a side."""
    side = min(x.shape[-1], PIXEL_SIDE)
    if x.shape[-1] > side or x.shape[-2] > side:
        x = F.adaptive_avg_pool2d(x, side)
    return x.flatten(1)


# --------------------------------------------------------------------------- networks


def untrained_copy(model, seed: int = 0):
    """The model's architecture at random initialisation: a copy whose every layer with a
    ``reset_parameters`` is re-initialised from ``seed`` (PyTorch's default initialisation of
    that layer). An architecture with its own initialisation scheme (torchvision's ResNets
    initialise convolutions with Kaiming normal) is better served by building it afresh and
    passing it as ``untrained=``."""
    net = copy.deepcopy(model)
    reset = set()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        for m in net.modules():
            if hasattr(m, "reset_parameters") and callable(m.reset_parameters):
                m.reset_parameters()
                reset |= {id(p) for p in m.parameters(recurse=False)}
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.reset_running_stats()
    kept = [name for name, p in net.named_parameters() if id(p) not in reset]
    if kept:  # e.g. a ViT's cls_token or pos_embed: raw parameters no layer resets
        raise ValueError(
            f"the untrained floor would keep trained weights: {', '.join(kept[:5])} have no "
            "layer that re-initialises them. Build the architecture afresh and pass it as "
            "untrained=, or untrained=None for no floor"
        )
    return net


def _floor(model, untrained, seed: int):
    """The untrained floor ``(network or None, how it was made)``."""
    if untrained == "auto":
        floor = untrained_copy(model, stream_seed(seed, "weights"))
        return floor, "the model's layers re-initialised (PyTorch defaults), BatchNorm calibrated"
    if untrained is None:
        return None, "none"
    if isinstance(untrained, torch.nn.Module):
        return copy.deepcopy(untrained), "given; BatchNorm calibrated on the data"
    raise TypeError("untrained must be 'auto', None or a torch.nn.Module")


@dataclass
class _Reader:
    """How features are read from a network: its tapped ``layers`` (label → module name), which
    item of its ``output``, the images' channel adaptation (``adapted`` says which), the device."""

    layers: dict[str, str]
    output: object
    adapt: Callable
    adapted: str
    device: torch.device

    def tap(self, net) -> Tap:
        return Tap(net, self.layers, self.output)

    def features(self, tap: Tap, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Each tapped layer's features (float32) of the images ``x``, under autocast where
        the device computes bfloat16 natively."""
        x = self.adapt(x)
        if self.device.type == "cuda":
            x = x.contiguous(memory_format=torch.channels_last)
        amp = autocast_dtype(self.device)
        with torch.autocast(self.device.type, dtype=amp or torch.bfloat16, enabled=amp is not None):
            feats = tap(x)
        return {k: v.float() for k, v in feats.items()}


def _reader(model, images: _Images, layers: dict, output, device) -> _Reader:
    """The reader of ``model``, after one batch of fitting images through it: its shape problems
    are found before any long pass."""
    device = (
        torch.device(device)
        if device is not None
        else next((p.device for p in model.parameters()), torch.device("cpu"))
    )
    x0, _, _ = next(iter(images.fit.batches(min(images.batch_size, 2))))
    adapt, adapted = adapt_channels(model, x0.shape[1])
    tap = Tap(model, layers, output)
    try:
        with torch.no_grad():
            tap(adapt(x0.to(device)))
    except RuntimeError as err:
        if _out_of_memory(err):
            raise  # not a shape problem: _memory_advice says what to do
        first = str(err).splitlines()[0]
        raise ValueError(
            f"the model cannot take images of shape {tuple(x0.shape)} (N×C×H×W): {first}. Resize "
            "or convert them to what the model was trained on (e.g. with a torchvision "
            "transform; --size N for --data folder:PATH), or give images of the right size"
        ) from None
    finally:
        tap.close()
    return _Reader(layers, output, adapt, adapted, device)


def _calibration_batches(images: _Images, reader: _Reader, seed: int):
    """Equal batches of at most ``max_fit`` fitting images for
    :func:`~sslkit.evaluation.calibrate_batchnorm`, as the book's untrained floor has: 2048
    small images (at most 64×64, as the book's) a batch, or ``batch_size`` larger ones
    (memory). A seeded random draw (a class-sorted folder must not lend its first classes'
    statistics), sorted for sequential reads; all of them when they fit in one batch."""
    split, limit = images.fit, images.max_fit
    x0, _, _ = next(iter(split.batches(1)))
    small = x0.shape[-1] * x0.shape[-2] <= 64 * 64
    size = min(2048 if small else images.batch_size, split.n, limit)
    n = min(split.n, limit)
    g = torch.Generator().manual_seed(stream_seed(seed, "pixel_subsets", 3))
    index = torch.randperm(split.n, generator=g)[: n - n % size].sort().values
    for x, _, _ in split.batches(size, index):
        yield reader.adapt(x.to(reader.device))


# --------------------------------------------------------------------------- targets


class _Targets:
    """Every target's labels for a batch: fine, coarse, random groupings of the fine classes of
    the coarse level's sizes, and random functions of the image (k-means of a random projection
    of the pooled pixels, fitted on the probe's fitting images)."""

    def __init__(self, names, labels: _Labels, pixel_sample, seed):
        self.names = list(names)
        self.k, self.n_coarse = labels.k, labels.n_coarse
        self.maps = {}
        self.functions = {}
        for name in self.names:
            base, _, d = name.partition("@")
            if base == "coarse_random":
                self.maps[name] = random_grouping(
                    torch.arange(self.k),
                    labels.parent,
                    stream_seed(seed, "grouping", int(d)),
                    self.k,
                )
            elif base == "random_function":
                g = torch.Generator().manual_seed(stream_seed(seed, "random_function", int(d)))
                proj, centres = projected_kmeans(pixel_sample, self.k, g)
                self.functions[name] = (proj, centres)
        self.sizes = {n: self._size(n) for n in self.names}

    def _size(self, name):
        base = name.partition("@")[0]
        if base == "coarse" or base == "coarse_random":
            return self.n_coarse
        return self.k

    def __call__(self, pixels, fine, coarse) -> dict[str, torch.Tensor]:
        out = {}
        for name in self.names:
            base = name.partition("@")[0]
            if base == "fine":
                out[name] = fine
            elif base == "coarse":
                out[name] = coarse
            elif base == "coarse_random":
                out[name] = self.maps[name].to(fine.device)[fine]
            else:
                proj, centres = self.functions[name]
                z = pixels.cpu() @ proj
                out[name] = torch.cdist(z, centres).argmin(1).to(fine.device)
        return out


def _target_names(targets, draws: int, labels: _Labels) -> tuple[tuple, list[str]]:
    """The targets asked (the defaults: the coarse ones only where there are coarse labels), and
    every target measured: a random control without a draw stands for ``draws`` draws."""
    have_coarse = labels.parent is not None
    targets = tuple(targets)
    if targets == TARGETS and not have_coarse:
        targets = tuple(t for t in targets if t not in ("coarse", "coarse_random"))
    names = []
    for t in targets:
        base, _, d = t.partition("@")
        if base not in TARGETS:
            raise ValueError(f"unknown target {t!r}; analyze knows {', '.join(TARGETS)}")
        if base in ("coarse", "coarse_random") and not have_coarse:
            raise ValueError(
                f"target {t!r} needs coarse labels: pass (images, labels, coarse_labels), or "
                "leave out the coarse targets"
            )
        if base in ("coarse_random", "random_function") and not d:
            names += [f"{base}@{i}" for i in range(draws)]
        else:
            names.append(t)
    return targets, names


def _pixel_sample(images: _Images, names) -> torch.Tensor | None:
    """The pooled pixels of the probe's fitting images, which random functions are fitted on."""
    if not any(n.startswith("random_function") for n in names):
        return None
    batches = images.fit.batches(images.batch_size, images.keep["fit"])
    return torch.cat([_pixels(x) for x, _, _ in batches]).cpu()


# --------------------------------------------------------------------------- measuring


@dataclass
class _Plan:
    """What the measuring passes read, all decided before the first pass."""

    images: _Images
    reader: _Reader
    names: list[str]  # every target measured, one per draw
    metrics: tuple
    knn_k: int
    seed: int
    pixels: bool
    show: bool


class _Measure:
    """Running sums for one network over both passes: class statistics of every (layer, target)
    on the fitting images; NCC (raw and whitened) and CDNV on the scoring images; the features
    of the images kept for the probe and kNN."""

    def __init__(self, names, sizes, keep, want):
        self.names, self.sizes, self.keep, self.want = names, sizes, keep, want
        self.cov: dict[str, ClassStats] = {}
        self.fit: dict[tuple, ClassStats] = {}
        self.score: dict[tuple, ClassStats] = {}
        self.whiteners: dict = {}
        self.ncc: dict[tuple, NCCScore] = {}  # (layer, target, ruler) -> score
        self.kept = {"fit": {}, "score": {}}

    def _keep(self, split, layer, x, positions):
        mask = torch.isin(positions, self.keep[split])
        if mask.any():
            self.kept[split].setdefault(layer, []).append(x[mask.to(x.device)].cpu())

    def add_fit(self, feats, labels, positions):
        for layer, x in feats.items():
            if "whitened_ncc" in self.want and x.shape[1] <= MAX_WHITEN_DIM:
                self.cov.setdefault(layer, ClassStats(1, covariance=True)).update(
                    x, torch.zeros(len(x), dtype=torch.long, device=x.device)
                )
            for name in self.names:
                key = (layer, name)
                self.fit.setdefault(key, ClassStats(self.sizes[name])).update(x, labels[name])
            self._keep("fit", layer, x, positions)

    def start_scoring(self):
        """The fitted centres (and whiteners) as NCC scores, raw then whitened."""
        self.whiteners = {layer: stats.whitener() for layer, stats in self.cov.items()}
        for (layer, name), stats in self.fit.items():
            if "ncc" in self.want:
                self.ncc[layer, name, "ncc"] = NCCScore(stats)
            if layer in self.whiteners:
                self.ncc[layer, name, "whitened_ncc"] = NCCScore(stats, self.whiteners[layer])

    def add_score(self, feats, labels, positions):
        for layer, x in feats.items():
            # one whitening of the batch for every target's whitened NCC
            white = whiten(x, self.whiteners[layer]) if layer in self.whiteners else None
            for name in self.names:
                y = labels[name]
                if "ncc" in self.want:
                    self.ncc[layer, name, "ncc"].add(x, y)
                if white is not None:
                    self.ncc[layer, name, "whitened_ncc"].add(x, y, whitened=white)
                if "cdnv" in self.want:
                    self.score.setdefault((layer, name), ClassStats(self.sizes[name])).update(x, y)
            self._keep("score", layer, x, positions)

    def values(self, kept_labels, knn_k):
        """``(layer, target, metric, split, value)`` of NCC, CDNV, then the probe and kNN."""
        for (layer, name, metric), score in self.ncc.items():
            yield layer, name, metric, "test", score.accuracy
        if "cdnv" in self.want:
            for (layer, name), stats in self.fit.items():
                yield layer, name, "cdnv", "train", _cdnv_or_nan(stats)
                yield layer, name, "cdnv", "test", _cdnv_or_nan(self.score[layer, name])
        for layer in self.kept["fit"]:
            xtr = torch.cat(self.kept["fit"][layer])
            xte = torch.cat(self.kept["score"].get(layer, [xtr[:0]]))
            if len(xte):
                yield from self._fitted(layer, xtr, xte, kept_labels, knn_k)

    def _fitted(self, layer, xtr, xte, kept_labels, knn_k):
        """The probe and kNN of one layer, fine and coarse targets only."""
        for name in ("fine", "coarse"):
            if name not in kept_labels["fit"]:
                continue
            ytr, yte = kept_labels["fit"][name], kept_labels["score"][name]
            if "probe" in self.want:
                yield layer, name, "probe", "test", linear_probe(xtr, ytr, xte, yte)
            if "knn" in self.want:
                k = min(knn_k, len(xtr))
                yield layer, name, "knn", "test", knn_accuracy(xtr, ytr, xte, yte, k=k)


def _cdnv_or_nan(stats) -> float:
    try:
        return stats.cdnv()
    except ValueError:
        return math.nan


@torch.no_grad()
def _measure_network(network: str, tap: Tap | None, plan: _Plan, targets: _Targets) -> list[dict]:
    """One network's rows (``tap`` None: the pixels): a pass over the fitting images, then one
    over the scoring images, then the probe and kNN on the kept features."""
    m = _Measure(targets.names, targets.sizes, plan.images.keep, plan.metrics)
    fit_labels = _one_pass(network, tap, plan.images.fit, m.add_fit, plan, targets)
    m.start_scoring()
    score_labels = _one_pass(network, tap, plan.images.score, m.add_score, plan, targets)
    kept_labels = {"fit": fit_labels, "score": score_labels}
    return [
        dict(zip(_COLUMNS, (network, *where, float(value))))
        for *where, value in m.values(kept_labels, plan.knn_k)
    ]


def _one_pass(network, tap, split: Split, add, plan: _Plan, targets: _Targets) -> dict:
    """Every batch of ``split`` through ``tap`` into ``add(features, labels, positions)``;
    returns the fine and coarse labels of the images kept for the probe and kNN."""
    labels, device = plan.images.labels, plan.reader.device
    keep, kept = plan.images.keep[split.name], {}
    seen = 0
    bar = _bar(split.n, f"{network}: {split.name}", plan.show)
    for x, fine, _ in split.batches(plan.images.batch_size):
        positions = torch.arange(seen, seen + len(x))
        seen += len(x)
        fine = labels.codes(fine)
        coarse = labels.coarse(fine)
        x = x.to(device, non_blocking=True)
        pixels = _pixels(x)
        y = targets(pixels, fine.to(device), None if coarse is None else coarse.to(device))
        add({"pixels": pixels} if tap is None else plan.reader.features(tap, x), y, positions)
        mask = torch.isin(positions, keep).to(device)
        for name in ("fine", "coarse"):
            if y.get(name) is not None:
                kept.setdefault(name, []).append(y[name][mask].cpu())
        bar.update(len(x))
    bar.close()
    return {name: torch.cat(parts) for name, parts in kept.items()}


def _measure(model, floor, plan: _Plan) -> dict[str, pd.DataFrame]:
    """Every network's rows (the cache's payload, ``{"rows": table}``): the model, the untrained
    floor (its BatchNorm statistics measured on the fitting images first), the raw pixels."""
    images, reader = plan.images, plan.reader
    targets = _Targets(plan.names, images.labels, _pixel_sample(images, plan.names), plan.seed)
    nets = [("model", model)] + ([] if floor is None else [("untrained", floor.to(reader.device))])
    rows = []
    for network, net in nets:
        net.eval()
        if network == "untrained":
            net = calibrate_batchnorm(net, _calibration_batches(images, reader, plan.seed))
        tap = reader.tap(net)
        try:
            rows += _measure_network(network, tap, plan, targets)
        finally:
            tap.close()
    if plan.pixels:
        rows += _measure_network("pixels", None, plan, targets)
    return {"rows": pd.DataFrame(rows)}


@contextlib.contextmanager
def _eval_mode(model):
    """``model`` in eval mode inside the block, its own mode restored after (errors too)."""
    was = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was)


class _NoBar:
    def update(self, n):
        pass

    def close(self):
        pass


def _bar(total, desc, show):
    if not show:
        return _NoBar()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from tqdm.auto import tqdm  # lazy: only when a bar is shown (tqdm.auto probes Jupyter)
    return tqdm(total=total, desc=desc, unit="img", leave=False)


# --------------------------------------------------------------------------- settings


def _settings(plan: _Plan, targets: tuple, draws: int, floor_how: str) -> dict:
    """Everything that decided the numbers (:attr:`Analysis.settings`)."""
    images, reader = plan.images, plan.reader
    return dict(
        data=images.how,
        fit_images=images.fit.n,
        score_images=images.score.n,
        classes=images.labels.k,
        coarse_classes=images.labels.n_coarse,
        labels_mapped=bool(images.labels.remapped),
        layers=reader.layers,
        targets=list(targets),
        draws=draws,
        metrics=list(plan.metrics),
        probe_knn_images=[int(len(images.keep["fit"])), int(len(images.keep["score"]))],
        subsampled=images.subsampled,
        untrained=floor_how,
        pixels=f"average-pooled to at most {PIXEL_SIDE}×{PIXEL_SIDE}" if plan.pixels else "none",
        adapted=reader.adapted,
        whitening=f"ZCA, ε = {WHITEN_EPS} × mean eigenvalue; layers wider than "
        f"{MAX_WHITEN_DIM} not whitened",
        knn_k=plan.knn_k,
        seed=plan.seed,
    )


def _provenance(model, plan: _Plan, key: dict) -> dict:
    """Where the numbers came from: versions, the model's class, fingerprints (SHA-256, 16 hex
    digits) of its weights and of the data, the date, the device and the processes."""
    distributed = torch.distributed.is_available() and torch.distributed.is_initialized()
    return {
        # The package's face holds the version; a wing may not import it (tests/test_layers.py),
        # and it is always loaded before its wings are.
        "sslkit": sys.modules[__name__.partition(".")[0]].__version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "model": f"{type(model).__module__}.{type(model).__qualname__}",
        "weights fingerprint": key["model"],
        "data fingerprint": {
            "fit": plan.images.fit.fingerprint,
            "score": plan.images.score.fingerprint,
        },
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "device": str(plan.reader.device),
        "processes": torch.distributed.get_world_size() if distributed else 1,
        "threads": torch.get_num_threads(),
    }


def _cache_key(model, floor, plan: _Plan, settings: dict) -> dict:
    """The ``evaluate`` cache's key: both networks' weights, the data's fingerprints, every
    setting. Results cached under it are served again: change it only with the results."""
    images = plan.images
    return dict(
        kind="analyze",
        model=data_mod.fingerprint_state(model.state_dict()),
        untrained_weights=None if floor is None else data_mod.fingerprint_state(floor.state_dict()),
        data=[images.fit.fingerprint, images.score.fingerprint],
        **{k: v for k, v in settings.items() if k != "data"},
        how=images.how,
        output=repr(plan.reader.output),
        batch_size=images.batch_size,
    )


def _checked(model, metrics, max_fit: int, **counts) -> tuple:
    """The metrics asked, after the model, ``max_fit`` and the ``counts`` are checked."""
    want = tuple(metrics)
    bad = [m for m in want if m not in METRICS]
    if bad:
        raise ValueError(f"unknown metrics {bad}; analyze measures {', '.join(METRICS)}")
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if max_fit < 2:
        raise ValueError(f"max_fit must be at least 2, got {max_fit}")
    _check_counts(**counts)
    return want


# The counts analyze takes, each a whole number of at least 1, and what each one is.
_COUNTS = {
    "draws": "the draws of each random control (--draws)",
    "batch_size": "the images of one forward pass (--batch-size)",
    "knn_k": "the neighbours that vote in kNN",
}


def _check_counts(**counts) -> None:
    """Refuse a count (draws, batch size, kNN's k) below 1, or not a whole number."""
    for name, value in counts.items():
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
            raise ValueError(f"{name} must be a whole number ≥ 1, got {value!r}: {_COUNTS[name]}")


def _out_of_memory(err: BaseException) -> bool:
    """Whether ``err`` is an allocator's refusal (CPU, CUDA or MPS), not a bug."""
    text = str(err).lower()
    markers = ("out of memory", "can't allocate memory", "not enough memory")
    return isinstance(err, MemoryError) or any(m in text for m in markers)


@contextlib.contextmanager
def _memory_advice(batch_size: int):
    """Inside the block, running out of memory raises a ``MemoryError`` that says what to do
    instead of the allocator's message (large images: a 2048×2048 batch of 256 is 13 GB)."""
    try:
        yield
    except (RuntimeError, MemoryError) as err:
        if not _out_of_memory(err):
            raise
        asked = re.search(r"allocate (\d+) bytes", str(err))
        size = f" (asked for {int(asked[1]) / 2**30:.1f} GiB at once)" if asked else ""
        raise MemoryError(
            f"out of memory reading or measuring the images{size}: resize them to the size the "
            "model was trained on (e.g. 224×224 with torchvision.transforms.v2.Resize), or lower "
            f"batch_size (now {batch_size}; --batch-size on the command line)"
        ) from None


def analyze(
    model,
    data,
    layers=None,
    targets=TARGETS,
    metrics=METRICS,
    *,
    untrained="auto",
    pixels: bool = True,
    output=None,
    draws: int = DRAWS,
    max_fit: int = MAX_FIT,
    batch_size: int = 256,
    knn_k: int = 20,
    device=None,
    seed: int = 0,
    cache: bool = True,
    progress=None,
    limit: int | None = None,
) -> Analysis:
    """Measure how each tapped layer of ``model`` clusters ``data``, with controls and floors.

    Parameters
    ----------
    model : a ``torch.nn.Module`` that maps a batch of images to features (or to a tuple/dict:
        then ``output`` says which item).
    data : a dataset name (``"fashion-mnist"``…: fitted on its training split, scored on its test
        split); a folder of your images, one sub-folder per class (``"folder:PATH"``, or
        :class:`~sslkit.anymodel.folders.Folder` for the image size, coarse labels and
        normalisation; split class by class, 80% of each to fit); ``(images,
        labels[, coarse_labels])`` tensors; a ``torch.utils.data.Dataset`` giving ``(image,
        label)`` items; or a pair ``(fit, score)`` of these. One set alone is split at random,
        80% to fit, 20% to score. uint8 images are scaled to [0, 1] and normalised per channel
        with the fitting images' mean and std; float images are used as given.
    layers : names in ``model.named_modules()`` (a list, or a dict ``label → module name``;
        ``"output"`` is the model's output; a name ending in ``:cls`` takes the layer's first
        token, a class token). ``None``: :func:`default_layers` (a ResNet's stages, a ViT's
        blocks and class token…).
    targets : any of :data:`TARGETS`; a random control stands for ``draws`` draws (one row
        each), or name one draw, ``"random_function@3"``.
    metrics : any of :data:`METRICS`, measured as the module doc says; the probe and kNN on the
        fine and coarse targets only, on at most ``max_fit`` images per split (stratified).
    untrained : the untrained floor, its BatchNorm statistics measured on the fitting images:
        ``"auto"`` (:func:`untrained_copy` of ``model``), a module of the same architecture, or
        ``None`` for no floor.
    pixels : also measure the raw pixels (average-pooled to at most 32×32), the second floor.
    progress : a progress bar over the images of each pass (``None``: where stderr is a
        terminal or a notebook, unless ``TQDM_DISABLE=1``).
    limit : at most this many images in all, stratified by class (seeded), for a quick look at
        a large set (``None``: every image).

    Returns
    -------
    :class:`Analysis`, cached in the ``evaluate`` cache by both networks' weights, the data's
    fingerprints and every setting; its ``provenance`` is taken at each call.
    """
    want = _checked(model, metrics, max_fit, draws=draws, batch_size=batch_size, knn_k=knn_k)
    layer_map = resolve_layers(model, layers)
    show = progress_enabled() if progress is None else progress
    with _eval_mode(model), _memory_advice(batch_size):
        images = _images(data, batch_size, max_fit, seed, limit)
        floor, floor_how = _floor(model, untrained, seed)
        targets, names = _target_names(targets, draws, images.labels)
        reader = _reader(model, images, layer_map, output, device)
        plan = _Plan(images, reader, names, want, knn_k=knn_k, seed=seed, pixels=pixels, show=show)
        settings = _settings(plan, targets, draws, floor_how)
        key = _cache_key(model, floor, plan, settings)
        table = cached("evaluate", key, lambda: _measure(model, floor, plan), enabled=cache)
    return Analysis(table["rows"], settings, _provenance(model, plan, key))
