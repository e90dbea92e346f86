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
over the fitting images gives class centres, variances and the whitening statistics, one over
the scoring images gives NCC and CDNV, so an ImageNet-sized folder never has to fit in memory.
The linear probe and kNN use a stratified subsample of at most ``max_fit`` images per split, and
the settings say so.
"""

from __future__ import annotations

import copy
import math
import warnings
from dataclasses import dataclass, field

import pandas as pd
import torch
import torch.nn.functional as F

from ..cache import cached
from ..learn import data as data_mod
from ..measure.metrics import WHITEN_EPS, knn_accuracy, linear_probe
from ..measure.streaming import ClassStats, _nearest
from ..measure.targets import projected_kmeans, random_grouping
from ..runtime import autocast_dtype, progress_enabled
from ..seeds import stream_seed
from .sources import Split, fit_and_score, labels_of
from .taps import Tap, adapt_channels, default_layers, resolve_layers

__all__ = ["analyze", "Analysis", "METRICS", "TARGETS", "default_layers"]

METRICS = ("ncc", "whitened_ncc", "cdnv", "probe", "knn")
TARGETS = ("fine", "coarse", "coarse_random", "random_function")
# Random controls: averaged over this many draws by default (at least 20, as in the book).
DRAWS = 20
# The linear probe and kNN are fitted on the features of at most this many images per split.
MAX_FIT = 10_000
# Whitening needs a D×D covariance: layers wider than this are measured without it.
MAX_WHITEN_DIM = 4096
# Raw pixels are average-pooled to at most this side before they are measured (the floor).
PIXEL_SIDE = 32


@dataclass
class Analysis:
    """What :func:`analyze` measured: ``table`` has one row per value, columns ``network``
    (``"model"``, ``"untrained"``, ``"pixels"``), ``layer``, ``target``, ``metric``, ``split``,
    ``value``; a random control has one row per draw (``"coarse_random@3"``). ``settings`` is
    everything that decided the numbers."""

    table: pd.DataFrame
    settings: dict = field(default_factory=dict)

    def summary(self, split: str = "test") -> pd.DataFrame:
        """Mean over draws of each control, one row per (network, layer, target), one column
        per metric."""
        t = self.table[self.table.split == split].copy()
        t["target"] = t.target.str.partition("@")[0]
        return t.pivot_table(
            index=["network", "layer", "target"], columns="metric", values="value", sort=False
        )


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


@torch.no_grad()
def _calibrate(net, split: Split, adapt, device, batch_size: int, limit: int, seed: int = 0):
    """BatchNorm statistics measured on (at most ``limit``) fitting images, equal batches, as
    :func:`sslkit.evaluation.calibrate_batchnorm` does for the book's untrained floor: batches of
    2048 small images (at most 64×64, as the book's), of ``batch_size`` larger ones (memory)."""
    norms = [m for m in net.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return net
    for m in norms:
        m.reset_running_stats()
        m.momentum = None
    x0, _, _ = next(iter(split.batches(1)))
    small = x0.shape[-1] * x0.shape[-2] <= 64 * 64
    size = min(2048 if small else batch_size, split.n, limit)
    n = min(split.n, limit)
    # a seeded random draw of the fitting images (a class-sorted folder must not lend its first
    # classes' statistics), sorted for sequential reads; all of them when they fit in one batch
    g = torch.Generator().manual_seed(stream_seed(seed, "pixel_subsets", 3))
    index = torch.randperm(split.n, generator=g)[: n - n % size].sort().values
    net.train()
    for x, _, _ in split.batches(size, index):
        net(adapt(x.to(device)))
    return net.eval()


# --------------------------------------------------------------------------- targets


class _Targets:
    """Every target's labels for a batch: fine, coarse, random groupings of the fine classes of
    the coarse level's sizes, and random functions of the image (k-means of a random projection
    of the pooled pixels, fitted on at most ``max_fit`` fitting images)."""

    def __init__(self, names, k, n_coarse, parent, pixel_sample, seed):
        self.names = list(names)
        self.k, self.n_coarse = k, n_coarse
        self.maps = {}
        self.functions = {}
        for name in self.names:
            base, _, d = name.partition("@")
            if base == "coarse_random":
                self.maps[name] = random_grouping(
                    torch.arange(k), parent, stream_seed(seed, "grouping", int(d)), k
                )
            elif base == "random_function":
                g = torch.Generator().manual_seed(stream_seed(seed, "random_function", int(d)))
                proj, centres = projected_kmeans(pixel_sample, k, g)
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


def _expand(targets, draws: int, have_coarse: bool) -> list[str]:
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
    return names


def _pixels(x: torch.Tensor) -> torch.Tensor:
    side = min(x.shape[-1], PIXEL_SIDE)
    if x.shape[-1] > side or x.shape[-2] > side:
        x = F.adaptive_avg_pool2d(x, side)
    return x.flatten(1)


# --------------------------------------------------------------------------- measuring


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


class _Measure:
    """Running sums for one network over both passes."""

    def __init__(self, names, sizes, fit_keep, score_keep, want):
        self.names, self.sizes, self.want = names, sizes, want
        self.fit_keep, self.score_keep = fit_keep, score_keep
        self.cov: dict[str, ClassStats] = {}
        self.fit: dict[tuple, ClassStats] = {}
        self.score: dict[tuple, ClassStats] = {}
        self.hits: dict[tuple, list] = {}  # (layer, target, ruler) -> [right, scored]
        self.kept = {"fit": {}, "score": {}}
        self.whiteners: dict = {}
        self.centres: dict = {}

    def add_fit(self, feats, labels, positions):
        for layer, x in feats.items():
            if "whitened_ncc" in self.want and x.shape[1] <= MAX_WHITEN_DIM:
                self.cov.setdefault(layer, ClassStats(1, covariance=True)).update(
                    x, torch.zeros(len(x), dtype=torch.long, device=x.device)
                )
            for name in self.names:
                key = (layer, name)
                self.fit.setdefault(key, ClassStats(self.sizes[name])).update(x, labels[name])
            self._keep("fit", layer, x, positions, self.fit_keep)

    def _keep(self, split, layer, x, positions, keep):
        mask = torch.isin(positions, keep)
        if mask.any():
            self.kept[split].setdefault(layer, []).append(x[mask.to(x.device)].cpu())

    def start_scoring(self):
        for layer, stats in self.cov.items():
            mu, w = stats.whitener()
            self.whiteners[layer] = (mu, w)
        for (layer, name), stats in self.fit.items():
            classes = stats.present
            centres = stats.centres[classes]
            entry = {"classes": classes, "raw": centres.float(), "shift": stats.shift.float()}
            if layer in self.whiteners:
                mu, w = self.whiteners[layer]
                entry["white"] = (centres - mu) @ w
            self.centres[layer, name] = entry

    def _count(self, key, hit):
        counts = self.hits.setdefault(key, [0, 0])
        counts[0] += int(hit.sum())
        counts[1] += len(hit)

    def add_score(self, feats, labels, positions):
        for layer, x in feats.items():
            white = None
            if layer in self.whiteners:
                mu, w = self.whiteners[layer]
                white = (x.double() - mu.to(x.device)) @ w.to(x.device)
            for name in self.names:
                y = labels[name]
                entry = self.centres[layer, name]
                classes = entry["classes"].to(x.device)
                if "ncc" in self.want:
                    raw, shift = entry["raw"].to(x.device), entry["shift"].to(x.device)
                    hit = classes[_nearest(x, raw, shift)] == y
                    self._count((layer, name, "ncc"), hit)
                if white is not None:
                    hit = classes[_nearest(white, entry["white"].to(x.device))] == y
                    self._count((layer, name, "whitened_ncc"), hit)
                if "cdnv" in self.want:
                    self.score.setdefault((layer, name), ClassStats(self.sizes[name])).update(x, y)
            self._keep("score", layer, x, positions, self.score_keep)

    def rows(self, network, fit_labels, score_labels, knn_k):
        rows = []

        def row(layer, target, metric, split, value):
            rows.append(dict(network=network, layer=layer, target=target, metric=metric,
                             split=split, value=float(value)))  # fmt: skip

        for (layer, name, metric), (right, scored) in self.hits.items():
            row(layer, name, metric, "test", right / scored)
        if "cdnv" in self.want:
            for (layer, name), stats in self.fit.items():
                row(layer, name, "cdnv", "train", _cdnv_or_nan(stats))
                row(layer, name, "cdnv", "test", _cdnv_or_nan(self.score[layer, name]))
        for layer in self.kept["fit"]:
            xtr = torch.cat(self.kept["fit"][layer])
            xte = torch.cat(self.kept["score"].get(layer, [xtr[:0]]))
            if not len(xte):
                continue
            for name in ("fine", "coarse"):
                if name not in fit_labels:
                    continue
                ytr, yte = fit_labels[name], score_labels[name]
                if "probe" in self.want:
                    row(layer, name, "probe", "test", linear_probe(xtr, ytr, xte, yte))
                if "knn" in self.want:
                    k = min(knn_k, len(xtr))
                    row(layer, name, "knn", "test", knn_accuracy(xtr, ytr, xte, yte, k=k))
        return rows


def _cdnv_or_nan(stats) -> float:
    try:
        return stats.cdnv()
    except ValueError:
        return math.nan


@torch.no_grad()
def _measure_network(network, tap, fit, score, targets, want, adapt, device, batch_size,
                     fit_keep, score_keep, knn_k, show, pixels_only=False):  # fmt: skip
    m = _Measure(targets.names, targets.sizes, fit_keep, score_keep, want)
    labels_of = {}
    for split, add in ((fit, m.add_fit), (score, None)):
        if add is None:
            m.start_scoring()
            add = m.add_score
        kept = fit_keep if split is fit else score_keep
        seen = 0
        bar = _bar(split.n, f"{network}: {split.name}", show)
        for x, fine, coarse in split.batches(batch_size):
            positions = torch.arange(seen, seen + len(x))
            seen += len(x)
            fine = split.map_fine(fine)
            coarse = split.map_coarse(fine, coarse)
            x = x.to(device, non_blocking=True)
            pixels = _pixels(x)
            labels = targets(pixels, fine.to(device), None if coarse is None else coarse.to(device))
            if pixels_only:
                feats = {"pixels": pixels}
            else:
                xin = adapt(x)
                if device.type == "cuda":
                    xin = xin.contiguous(memory_format=torch.channels_last)
                amp = autocast_dtype(device)
                with torch.autocast(
                    device.type, dtype=amp or torch.bfloat16, enabled=amp is not None
                ):
                    feats = tap(xin)
                feats = {k: v.float() for k, v in feats.items()}
            add(feats, labels, positions)
            mask = torch.isin(positions, kept)
            for name in ("fine", "coarse"):
                if name in labels and labels[name] is not None:
                    labels_of.setdefault((split.name, name), []).append(
                        labels[name][mask.to(device)].cpu()
                    )
            bar.update(len(x))
        bar.close()
    fit_labels = {n: torch.cat(v) for (s, n), v in labels_of.items() if s == "fit"}
    score_labels = {n: torch.cat(v) for (s, n), v in labels_of.items() if s == "score"}
    return m.rows(network, fit_labels, score_labels, knn_k)


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


def analyze(  # noqa: C901 - cut into named steps (issue 34)
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
) -> Analysis:
    """Measure how every tapped layer of ``model`` clusters ``data``, against the controls and
    the two floors (see the module doc).

    Parameters
    ----------
    model : a ``torch.nn.Module`` that maps a batch of images to features (or to a tuple/dict:
        then ``output`` says which item).
    data : a dataset name (``"fashion-mnist"``…: fitted on its training split, scored on its test
        split); ``(images, labels[, coarse_labels])`` tensors; a ``torch.utils.data.Dataset``
        giving ``(image, label)`` items (e.g. ``ImageFolder`` with a transform); or a pair
        ``(fit, score)`` of these. One set alone is split at random, 80% to fit, 20% to score.
        uint8 images are scaled to [0, 1] and normalised per channel with the fitting images'
        mean and std; float images are used as given.
    layers : names in ``model.named_modules()`` (a list, or a dict ``label → module name``;
        ``"output"`` is the model's output). ``None``: :func:`default_layers`.
    targets : any of :data:`TARGETS`; a random control stands for ``draws`` draws (one row
        each), or name one draw, ``"random_function@3"``.
    metrics : any of :data:`METRICS`. NCC and whitened NCC score the scoring images against
        the fitting images' centres (and ZCA, ε as :data:`sslkit.WHITEN_EPS`); CDNV is
        measured on both; the probe and kNN fit on a stratified subsample of at most
        ``max_fit`` fitting images and score at most ``max_fit`` scoring images, fine and
        coarse targets only.
    untrained : the untrained floor: ``"auto"`` (:func:`untrained_copy` of ``model``), a module
        of the same architecture, or ``None`` for no floor. Its BatchNorm statistics are measured
        on the fitting images first, as the book's untrained floor.
    pixels : also measure the raw pixels (average-pooled to at most 32×32), the second floor.

    Returns
    -------
    :class:`Analysis`. Results are cached in the ``evaluate`` cache, keyed by the weights of
    both networks, the data's fingerprints and every setting.
    """
    want = tuple(metrics)
    bad = [m for m in want if m not in METRICS]
    if bad:
        raise ValueError(f"unknown metrics {bad}; analyze measures {', '.join(METRICS)}")
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if max_fit < 2:
        raise ValueError(f"max_fit must be at least 2, got {max_fit}")
    device = (
        torch.device(device)
        if device is not None
        else next((p.device for p in model.parameters()), torch.device("cpu"))
    )
    show = progress_enabled() if progress is None else progress
    layer_map = resolve_layers(model, layers)
    fit, score, how = fit_and_score(data, seed)
    if untrained == "auto":
        floor = untrained_copy(model, stream_seed(seed, "weights"))
        floor_how = "the model's layers re-initialised (PyTorch defaults), BatchNorm calibrated"
    elif untrained is None:
        floor, floor_how = None, "none"
    elif isinstance(untrained, torch.nn.Module):
        floor, floor_how = copy.deepcopy(untrained), "given; BatchNorm calibrated on the data"
    else:
        raise TypeError("untrained must be 'auto', None or a torch.nn.Module")

    # labels: codes 0..K−1 (mapped, and said so, when they are other integers)
    fit_fine, fit_coarse = labels_of(fit, batch_size)
    score_fine, score_coarse = labels_of(score, batch_size)
    if torch.is_floating_point(fit_fine):
        raise ValueError("labels must be integers; map them first (np.unique(return_inverse=True))")
    classes = torch.unique(torch.cat([fit_fine, score_fine]))
    if len(torch.unique(fit_fine)) < 2:
        raise ValueError(
            f"the fitting images hold one class only ({int(fit_fine[0])}): clustering by class "
            "needs at least two"
        )
    remapped = not torch.equal(classes, torch.arange(len(classes)))
    if remapped:
        warnings.warn(
            f"labels are not 0..K−1 (they are {classes[:5].tolist()}…); mapped to "
            f"0..{len(classes) - 1} in sorted order", stacklevel=2,
        )  # fmt: skip
    k = len(classes)

    def to_codes(y):
        return torch.searchsorted(classes, y.long())

    parent = None
    n_coarse = 0
    if fit_coarse is not None:
        codes = to_codes(fit_fine)
        coarse_classes = torch.unique(
            torch.cat([fit_coarse] + ([score_coarse] if score_coarse is not None else []))
        )
        parent = torch.full((k,), -1, dtype=torch.long)
        cc = torch.searchsorted(coarse_classes, fit_coarse.long())
        parent[codes] = cc
        if (parent < 0).any():  # a class only in the scoring images: its group is unknown
            raise ValueError(
                f"fine classes {classes[parent < 0].tolist()} have no fitting image; every class "
                "needs fitting images"
            )
        pairs = [(codes, cc)]
        if score_coarse is not None:
            pairs.append((to_codes(score_fine), torch.searchsorted(coarse_classes, score_coarse)))
        for fine_codes, coarse_codes in pairs:  # every image's coarse label is its class's
            clash = parent[fine_codes] != coarse_codes
            if clash.any():
                raise ValueError(
                    f"fine class {int(classes[fine_codes[clash][0]])} has images in more than one "
                    "coarse class: coarse labels must group whole fine classes"
                )
        n_coarse = len(coarse_classes)
    have_coarse = parent is not None
    targets = tuple(targets)
    if targets == TARGETS and not have_coarse:  # the defaults: the coarse ones where there are any
        targets = tuple(t for t in targets if t not in ("coarse", "coarse_random"))
    names = _expand(targets, draws, have_coarse)

    for split in (fit, score):
        split.map_fine = to_codes
        if have_coarse:
            split.map_coarse = lambda fine, coarse, p=parent: p.to(fine.device)[fine]
        else:
            split.map_coarse = lambda fine, coarse: None

    fit_keep = _stratified(to_codes(fit_fine), max_fit, stream_seed(seed, "pixel_subsets", 0))
    score_keep = _stratified(to_codes(score_fine), max_fit, stream_seed(seed, "pixel_subsets", 1))

    # one batch through the model: its shape problems are found before any long pass
    x0, _, _ = next(iter(fit.batches(min(batch_size, 2))))
    adapt, adapted = adapt_channels(model, x0.shape[1])
    model_was = model.training
    model.eval()
    tap = Tap(model, layer_map, output)
    try:
        with torch.no_grad():
            tap(adapt(x0.to(device)))
    except (RuntimeError, ValueError) as err:
        tap.close()
        if isinstance(err, ValueError):
            raise
        first = str(err).splitlines()[0]
        raise ValueError(
            f"the model cannot take images of shape {tuple(x0.shape)} (N×C×H×W): {first}. Resize "
            "or convert them to what the model was trained on (e.g. with a torchvision "
            "transform), or give images of the right size"
        ) from None
    tap.close()

    settings = dict(
        data=how,
        fit_images=fit.n,
        score_images=score.n,
        classes=k,
        coarse_classes=n_coarse,
        labels_mapped=bool(remapped),
        layers=layer_map,
        targets=list(targets),
        draws=draws,
        metrics=list(want),
        probe_knn_images=[int(len(fit_keep)), int(len(score_keep))],
        subsampled=bool(len(fit_keep) < fit.n or len(score_keep) < score.n),
        untrained=floor_how,
        pixels=f"average-pooled to at most {PIXEL_SIDE}×{PIXEL_SIDE}" if pixels else "none",
        adapted=adapted,
        whitening=f"ZCA, ε = {WHITEN_EPS} × mean eigenvalue; layers wider than "
        f"{MAX_WHITEN_DIM} not whitened",
        knn_k=knn_k,
        seed=seed,
    )
    key = dict(
        kind="analyze",
        model=data_mod.fingerprint_state(model.state_dict()),
        untrained_weights=None if floor is None else data_mod.fingerprint_state(floor.state_dict()),
        data=[fit.fingerprint, score.fingerprint],
        **{k_: v for k_, v in settings.items() if k_ != "data"},
        how=how,
        output=repr(output),
        batch_size=batch_size,
    )

    def compute():
        pixel_sample = (
            torch.cat([_pixels(x) for x, _, _ in fit.batches(batch_size, fit_keep)]).cpu()
            if any(n.startswith("random_function") for n in names)
            else None
        )
        tgt = _Targets(names, k, n_coarse, parent, pixel_sample, seed)
        rows = []
        nets = [("model", model)]
        if floor is not None:
            nets.append(("untrained", floor.to(device)))
        for network, net in nets:
            net.eval()
            if network == "untrained":
                _calibrate(net, fit, adapt, device, batch_size, max_fit, seed)
            t = Tap(net, layer_map, output)
            try:
                rows += _measure_network(network, t, fit, score, tgt, want, adapt, device,
                                         batch_size, fit_keep, score_keep, knn_k, show)  # fmt: skip
            finally:
                t.close()
        if pixels:
            rows += _measure_network("pixels", None, fit, score, tgt, want, adapt, device,
                                     batch_size, fit_keep, score_keep, knn_k, show,
                                     pixels_only=True)  # fmt: skip
        return {"rows": pd.DataFrame(rows)}

    try:
        table = cached("evaluate", key, compute, enabled=cache)["rows"]
    finally:
        model.train(model_was)
    return Analysis(table, settings)
