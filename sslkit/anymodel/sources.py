"""Where :func:`sslkit.analyze` reads images from: a dataset name, an image folder
(:class:`~sslkit.anymodel.folders.Folder`, or ``"folder:PATH"``), tensors, a
``torch.utils.data.Dataset``, or a pair of these, as two splits (one to fit the centres,
whitening and probes, one to score) that yield normalised float batches and their labels.

A split is read batch by batch, never held whole: an ``ImageFolder`` of any size works. Any
source can be cut to at most ``limit`` images, stratified by class (seeded):
:func:`stratified_take`. A folder is split by class too (:func:`stratified_split`).
"""

from __future__ import annotations

import numbers
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..learn import data as data_mod
from ..learn.augment import to_float
from ..seeds import stream_seed
from .folders import TRANSFORM, Folder, FolderImages, read_folder

__all__ = ["Split", "fit_and_score", "labels_of", "stratified_take", "stratified_split"]

# One set is split this share to fit, the rest to score.
FIT_SHARE = 0.8
# Every class of a folder needs this many fitting images (as analyze's MIN_FIT_IMAGES).
MIN_CLASS_IMAGES = 2
# A folder's mean and std (when not given) are measured on at most this many fitting images.
STATS_IMAGES = 256
# The images of a pass that only reads labels (a Dataset without ``targets``).
LABEL_BATCH = 256
# Keys of the "pixel_subsets" stream drawn here (0–3 are analyze's own).
_LIMIT_KEY, _FOLDER_SPLIT_KEY, _STATS_KEY = 4, 5, 6


@dataclass
class Split:
    """One split as batches of float images (normalised), fine and coarse label codes."""

    name: str
    n: int
    fingerprint: str
    fine: torch.Tensor | None  # codes 0..K−1, known up front (None: found in a pass)
    coarse: torch.Tensor | None
    batches: object  # callable(batch_size, index=None) -> iterator of (x, fine, coarse)


def _integer_labels(y: torch.Tensor, what: str = "labels") -> torch.Tensor:
    """``y`` itself, refused unless it holds integers: a fractional label cast to an integer
    would silently join another class."""
    if torch.is_floating_point(y) or torch.is_complex(y):
        raise ValueError(
            f"{what} must be integers, got {y.dtype} values such as {y.flatten()[:3].tolist()}; "
            "map them to 0..K−1 first, e.g. with np.unique(labels, return_inverse=True)[1]"
        )
    return y


def _from_tensors(name, images, fine, coarse, mean, std) -> Split:
    images = torch.as_tensor(images)
    if images.ndim == 3:
        images = images.unsqueeze(1)
    if images.ndim != 4:
        raise ValueError(
            f"images must be N×C×H×W (or N×H×W for grey images), got shape {tuple(images.shape)}"
        )

    def batches(size, index=None):
        order = torch.arange(len(images)) if index is None else index
        for part in order.split(size):
            x = to_float(images[part], mean, std) if images.dtype == torch.uint8 else images[part]
            yield x.float(), fine[part], None if coarse is None else coarse[part]

    named = [("images", images), ("fine", fine)] + (
        [("coarse", coarse)] if coarse is not None else []
    )
    return Split(name, len(images), data_mod.fingerprint_tensors(named), fine, coarse, batches)


def _from_torch_dataset(name, ds) -> Split:
    targets = getattr(ds, "targets", None)
    fine = None
    if targets is not None:
        fine = _integer_labels(torch.as_tensor(np.asarray(targets)), "the Dataset's targets").long()

    def batches(size, index=None):
        subset = ds if index is None else torch.utils.data.Subset(ds, index.tolist())
        loader = torch.utils.data.DataLoader(
            subset, batch_size=size, shuffle=False, pin_memory=torch.cuda.is_available()
        )
        for item in loader:
            if not isinstance(item, (list, tuple)) or len(item) < 2:
                raise ValueError(
                    "a Dataset for analyze must give (image, label) or (image, label, coarse) "
                    f"items; got {type(item).__name__}"
                )
            x, y = item[0], item[1]
            if not torch.is_tensor(x):
                raise ValueError(
                    "the Dataset gives images that are not tensors: add a transform such as "
                    "torchvision.transforms.v2.Compose([ToImage(), "
                    "ToDtype(torch.float32, scale=True)])"
                )
            coarse = (
                _integer_labels(torch.as_tensor(item[2]), "coarse labels")
                if len(item) > 2
                else None
            )
            yield (
                x.float(),
                _integer_labels(torch.as_tensor(y)).long(),
                None if coarse is None else coarse.long(),
            )

    return Split(name, len(ds), _dataset_fingerprint(ds), fine, None, batches)


def _dataset_fingerprint(ds, sample: int = 16) -> str:
    """What identifies a ``Dataset`` for the cache: its kind, length, folder and transform, the
    tensors of a ``TensorDataset`` (all of them) or of a ``Subset``'s indices and base, the
    labels, and the decoded first and last ``sample`` items (images as the transform makes
    them). Two datasets that differ in any of these never share a cached analysis."""
    named, extra = [], [f"{type(ds).__name__}:{len(ds)}"]
    for part in (ds, getattr(ds, "dataset", None)):  # a Subset: itself and its base
        if part is None:
            continue
        extra += [str(getattr(part, "root", "")), repr(getattr(part, "transform", None))]
        for i, t in enumerate(getattr(part, "tensors", ())):
            named.append((f"tensor{i}", t))
        if getattr(part, "targets", None) is not None:
            named.append(("targets", torch.as_tensor(np.asarray(part.targets))))
    if getattr(ds, "indices", None) is not None:
        named.append(("indices", torch.as_tensor(np.asarray(ds.indices))))
    n = len(ds)
    for i in sorted({*range(min(sample, n)), *range(max(0, n - sample), n)}):
        item = ds[i]
        for j, value in enumerate(item if isinstance(item, (tuple, list)) else (item,)):
            if torch.is_tensor(value):
                named.append((f"item{i}.{j}", value))
            else:
                extra.append(repr(value))
    return data_mod.fingerprint_tensors(named, *extra)


def _split_of(name, obj, mean=None, std=None) -> Split:
    if isinstance(obj, data_mod.Dataset):
        return _from_tensors(name, obj.images, obj.labels, obj.coarse_labels, mean, std)
    if isinstance(obj, (tuple, list)):
        if len(obj) not in (2, 3):
            raise ValueError(
                "data as tensors must be (images, labels) or (images, labels, coarse_labels), "
                f"got a tuple of {len(obj)}"
            )
        images = torch.as_tensor(obj[0])
        fine = _integer_labels(torch.as_tensor(np.asarray(obj[1])))
        coarse = (
            _integer_labels(torch.as_tensor(np.asarray(obj[2])), "coarse labels")
            if len(obj) == 3
            else None
        )
        if len(fine) != len(images) or (coarse is not None and len(coarse) != len(images)):
            raise ValueError(
                f"{len(images)} images but {len(fine)} labels"
                + ("" if coarse is None else f" and {len(coarse)} coarse labels")
            )
        return _from_tensors(name, images, fine, coarse, mean, std)
    if isinstance(obj, torch.utils.data.Dataset):
        return _from_torch_dataset(name, obj)
    raise TypeError(
        f"data of type {type(obj).__name__} is not understood: pass a dataset name "
        f"({', '.join(data_mod.DATASETS)}), (images, labels[, coarse]) tensors, a "
        "torch.utils.data.Dataset, or a pair (fit, score) of any of these"
    )


def _uint8_stats(images):
    """Per-channel mean and std (in [0, 1]) of uint8 images, for normalising them."""
    x = torch.as_tensor(images)
    if x.dtype != torch.uint8 or not len(x):  # no images: refused with the reason later
        return None, None
    if x.ndim == 3:
        x = x.unsqueeze(1)
    flat = x.transpose(0, 1).reshape(x.shape[1], -1).double() / 255
    return tuple(flat.mean(1).tolist()), tuple(flat.std(1).clamp_min(1e-3).tolist())


def fit_and_score(data, seed: int, limit: int | None = None) -> tuple[Split, Split, str]:
    """``(fit, score, how)``: the images the centres, whitening and probes are fitted on, and
    those they are scored on, at most ``limit`` of them in all (stratified by class, seeded:
    one set is cut before it is split; two splits each keep their share)."""
    whole_number = isinstance(limit, numbers.Integral) and not isinstance(limit, bool)
    if limit is not None and (not whole_number or limit < 2):
        raise ValueError(f"limit must be a whole number of images ≥ 2, got {limit!r} (--limit)")
    if isinstance(data, str) and data.startswith("folder:"):
        data = Folder(data.removeprefix("folder:"))
    if isinstance(data, Folder):
        return _folder_splits(data, seed, limit)
    if isinstance(data, str):
        train, test = data_mod.load(data, "train"), data_mod.load(data, "test")
        mean, std = train.mean_std()
        how = f"{data}: fitted on its training split, scored on its test split"
        fit, score = _split_of("fit", train, mean, std), _split_of("score", test, mean, std)
        return (*_limited_pair(fit, score, limit, seed), how + _limit_note(limit))
    pair = isinstance(data, (tuple, list)) and len(data) == 2 and not torch.is_tensor(data[0])
    pair = pair and not isinstance(data[0], np.ndarray)
    if pair:
        fit, score = data
        if isinstance(fit, data_mod.Dataset):
            mean, std = fit.mean_std()
        elif isinstance(fit, (tuple, list)):
            mean, std = _uint8_stats(fit[0])
        else:
            mean, std = None, None
        how = "fitted on the first data given, scored on the second"
        fit, score = _split_of("fit", fit, mean, std), _split_of("score", score, mean, std)
        return (*_limited_pair(fit, score, limit, seed), how + _limit_note(limit))
    return _one_set(data, seed, limit)


def _one_set(whole, seed: int, limit: int | None) -> tuple[Split, Split, str]:
    """One set (tensors, a :class:`~sslkit.data.Dataset` or a torch ``Dataset``), cut to
    ``limit`` images if given, then split at random (seeded): 80% to fit, 20% to score."""
    if isinstance(whole, data_mod.Dataset):
        mean, std = whole.mean_std()
        whole = (whole.images, whole.labels, whole.coarse_labels)
    elif isinstance(whole, (tuple, list)):
        mean, std = _uint8_stats(whole[0])
    else:
        mean, std = None, None
    if limit is not None:
        whole = _cut(whole, limit, seed)
    n = len(whole[0]) if isinstance(whole, (tuple, list)) else len(whole)
    g = torch.Generator().manual_seed(stream_seed(seed, "pixel_subsets", 2))
    order = torch.randperm(n, generator=g)
    cut = int(round(FIT_SHARE * n))
    fit_idx, score_idx = order[:cut].sort().values, order[cut:].sort().values
    how = f"one set split at random (seeded): {cut} images to fit, {n - cut} to score"
    how += _limit_note(limit)
    if isinstance(whole, (tuple, list)):
        parts = [torch.as_tensor(np.asarray(t)) for t in whole]
        fit = tuple(p[fit_idx] for p in parts)
        score = tuple(p[score_idx] for p in parts)
        return _split_of("fit", fit, mean, std), _split_of("score", score, mean, std), how
    ds = whole
    return (
        _split_of("fit", torch.utils.data.Subset(ds, fit_idx.tolist())),
        _split_of("score", torch.utils.data.Subset(ds, score_idx.tolist())),
        how,
    )


# --------------------------------------------------------------------------- stratified subsets


def _codes(labels) -> torch.Tensor:
    """Labels of any kind as codes ``0..K−1`` (in sorted order)."""
    if torch.is_tensor(labels):
        return torch.unique(labels.cpu(), return_inverse=True)[1].flatten()
    return torch.as_tensor(np.unique(np.asarray(labels), return_inverse=True)[1]).flatten()


def _random_ranks(codes: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Each position's rank among the positions of its class, in a seeded random order."""
    n = len(codes)
    shuffled = torch.randperm(n, generator=generator)
    order = shuffled[torch.argsort(codes[shuffled], stable=True)]  # by class, random within
    counts = torch.bincount(codes)
    first = torch.cumsum(counts, 0) - counts
    ranks = torch.empty(n, dtype=torch.long)
    ranks[order] = torch.arange(n) - first[codes[order]]
    return ranks


def _quotas(counts: torch.Tensor, total: int) -> torch.Tensor:
    """How many of each class to take, ``total`` in all, in proportion to the class sizes
    ``counts`` (largest remainders; a tie goes to the first class). None exceeds its class."""
    exact = counts * int(total)
    quota = exact // counts.sum()
    short = int(total) - int(quota.sum())
    largest = torch.argsort(-(exact % counts.sum()), stable=True)
    quota[largest[:short]] += 1
    return quota


def stratified_take(labels, limit: int, seed: int, key: int = 0) -> torch.Tensor:
    """The sorted positions of at most ``limit`` items of ``labels``, each class in proportion to
    its size (largest remainders), drawn at random within each class from ``seed`` (``key``:
    another draw of the same seed): the same call gives the same positions. All positions when
    there are no more than ``limit``.

    >>> stratified_take([0] * 6 + [1] * 3, 6, seed=0).shape
    torch.Size([6])
    >>> torch.bincount(torch.tensor([0] * 6 + [1] * 3)[stratified_take([0] * 6 + [1] * 3, 6, 0)])
    tensor([4, 2])
    """
    codes = _codes(labels)
    if len(codes) <= limit:
        return torch.arange(len(codes))
    g = torch.Generator().manual_seed(stream_seed(seed, "pixel_subsets", _LIMIT_KEY, key))
    quota = _quotas(torch.bincount(codes), limit)
    return torch.nonzero(_random_ranks(codes, g) < quota[codes]).flatten()


def stratified_split(
    labels, seed: int, share: float = FIT_SHARE, minimum: int = MIN_CLASS_IMAGES
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(fit, score)``: sorted positions of ``labels`` split class by class, ``share`` of each
    class to fit (rounded; at least ``minimum`` and at least one left to score where the class
    has more than ``minimum``), drawn at random within each class from ``seed``."""
    codes = _codes(labels)
    counts = torch.bincount(codes)
    floor = counts.clamp(max=minimum)
    fit = torch.floor(counts * share + 0.5).long()
    fit = torch.minimum(torch.maximum(fit, floor), torch.maximum(counts - 1, floor))
    g = torch.Generator().manual_seed(stream_seed(seed, "pixel_subsets", _FOLDER_SPLIT_KEY))
    to_fit = _random_ranks(codes, g) < fit[codes]
    return torch.nonzero(to_fit).flatten(), torch.nonzero(~to_fit).flatten()


def _limit_note(limit: int | None) -> str:
    if limit is None:
        return ""
    return f"; at most {limit} images in all, stratified by class (seeded)"


def _cut(whole, limit: int, seed: int):
    """One set cut to at most ``limit`` images, stratified by class: tensors as tensors, a
    torch ``Dataset`` as a ``Subset`` (its labels read in one pass if it lists no
    ``targets``)."""
    if isinstance(whole, (tuple, list)):
        keep = stratified_take(whole[1], limit, seed)
        return tuple(None if t is None else torch.as_tensor(np.asarray(t))[keep] for t in whole)
    fine, _ = labels_of(_split_of("all", whole), LABEL_BATCH)
    return torch.utils.data.Subset(whole, stratified_take(fine, limit, seed).tolist())


def _subset(split: Split, positions: torch.Tensor, fine, coarse) -> Split:
    """The images of ``split`` (labels ``fine``, ``coarse``) at ``positions``, as a split."""

    def batches(size, index=None):
        return split.batches(size, positions if index is None else positions[index])

    fingerprint = data_mod.fingerprint_tensors([("positions", positions)], split.fingerprint)
    return Split(
        split.name,
        len(positions),
        fingerprint,
        fine[positions],
        None if coarse is None else coarse[positions],
        batches,
    )


def _limited_pair(fit: Split, score: Split, limit: int | None, seed: int):
    """Two splits with at most ``limit`` images in all, each its share, stratified by class."""
    if limit is None or fit.n + score.n <= limit:
        return fit, score
    share = int(round(limit * fit.n / (fit.n + score.n)))
    parts = []
    for key, (split, quota) in enumerate(((fit, share), (score, limit - share))):
        fine, coarse = labels_of(split, LABEL_BATCH)
        parts.append(_subset(split, stratified_take(fine, quota, seed, key), fine, coarse))
    return tuple(parts)


# --------------------------------------------------------------------------- folders


def _folder_splits(folder: Folder, seed: int, limit: int | None) -> tuple[Split, Split, str]:
    """A folder's images (at most ``limit``, stratified), split class by class: 80% of each
    class to fit, the rest to score; normalised with the folder's mean and std if given, else
    with those of the fitting images."""
    images = read_folder(folder)
    keep = torch.arange(len(images.fine))
    if limit is not None:
        keep = stratified_take(images.fine, limit, seed)
    fit_at, score_at = (keep[p] for p in stratified_split(images.fine[keep], seed))
    _check_folder_classes(images, fit_at, limit)
    if folder.mean is not None:
        mean, std, said = folder.mean, folder.std, "the mean and std given (the model's own)"
    else:
        mean, std, m = _folder_stats(images, fit_at, seed)
        said = f"the per-channel mean and std of {m} fitting images"
    how = (
        f"folder {Path(folder.path)}: {len(images.classes)} classes, images as "
        f"{folder.size}×{folder.size} RGB, split class by class (seeded): {len(fit_at)} to fit, "
        f"{len(score_at)} to score; normalised with {said}" + _limit_note(limit)
    )
    return (
        _from_folder("fit", images, fit_at, mean, std),
        _from_folder("score", images, score_at, mean, std),
        how,
    )


def _check_folder_classes(images: FolderImages, fit_at: torch.Tensor, limit) -> None:
    """Refuse a class with fewer than :data:`MIN_CLASS_IMAGES` fitting images, by its folder."""
    counts = torch.bincount(images.fine[fit_at], minlength=len(images.classes))
    few = torch.nonzero(counts < MIN_CLASS_IMAGES).flatten().tolist()
    if few:
        names = ", ".join(f"{images.classes[c]!r} ({int(counts[c])})" for c in few[:10])
        cut = f" after --limit {limit}" if limit is not None else ""
        raise ValueError(
            f"class folders {names} have too few images{cut}: analyze needs at least "
            f"{MIN_CLASS_IMAGES} of every class to fit ({MIN_CLASS_IMAGES + 1} to score one "
            "too); add images"
            + (", raise --limit" if limit is not None else "")
            + " or remove those folders"
        )


def _folder_batches(images: FolderImages, positions: torch.Tensor, size: int):
    """The uint8 images at ``positions``, ``size`` a batch, in order."""
    loader = torch.utils.data.DataLoader(
        torch.utils.data.Subset(images.dataset, positions.tolist()),
        batch_size=size,
        shuffle=False,
        pin_memory=torch.cuda.is_available(),
    )
    return (x for x, _ in loader)


def _folder_stats(images: FolderImages, fit_at: torch.Tensor, seed: int):
    """``(mean, std, how many)``: the per-channel mean and std in [0, 1] of at most
    :data:`STATS_IMAGES` fitting images (a seeded draw)."""
    g = torch.Generator().manual_seed(stream_seed(seed, "pixel_subsets", _STATS_KEY))
    sample = fit_at[torch.randperm(len(fit_at), generator=g)[:STATS_IMAGES]].sort().values
    total = torch.zeros(3, dtype=torch.float64)
    squares = torch.zeros(3, dtype=torch.float64)
    for x in _folder_batches(images, sample, 64):
        x = x.double() / 255
        total += x.sum((0, 2, 3))
        squares += (x * x).sum((0, 2, 3))
    n = len(sample) * images.folder.size**2
    mean = total / n
    std = (squares / n - mean**2).clamp_min(0).sqrt().clamp_min(1e-3)
    return tuple(mean.tolist()), tuple(std.tolist()), len(sample)


def _folder_fingerprint(images: FolderImages, positions, mean, std) -> str:
    """What identifies a folder split for the cache: the positions and labels, each image
    file's path, size and modification time, the transform, the normalisation."""
    root = Path(images.folder.path).expanduser().resolve()
    files = []
    for path in images.files(positions):
        st = os.stat(path)
        files.append(f"{os.path.relpath(path, root)}:{st.st_size}:{st.st_mtime_ns}")
    named = [("positions", positions), ("fine", images.fine[positions])]
    if images.coarse is not None:
        named.append(("coarse", images.coarse[positions]))
    extra = [str(root), str(images.folder.size), TRANSFORM, repr(mean), repr(std)]
    return data_mod.fingerprint_tensors(named, *extra, *files)


def _from_folder(name: str, images: FolderImages, positions, mean, std) -> Split:
    """The folder's images at ``positions`` as a split: uint8 batches, normalised."""
    fine = images.fine[positions]
    coarse = None if images.coarse is None else images.coarse[positions]

    def batches(size, index=None):
        order = torch.arange(len(positions)) if index is None else index
        for x, part in zip(_folder_batches(images, positions[order], size), order.split(size)):
            yield to_float(x, mean, std), fine[part], None if coarse is None else coarse[part]

    fingerprint = _folder_fingerprint(images, positions, mean, std)
    return Split(name, len(positions), fingerprint, fine, coarse, batches)


def labels_of(split: Split, batch_size: int):
    """The fine (and coarse) labels of a split: known up front, or read in one pass."""
    if split.fine is not None:
        return torch.as_tensor(split.fine).long(), (
            None if split.coarse is None else torch.as_tensor(split.coarse).long()
        )
    fine, coarse = [], []
    for _, y, c in split.batches(batch_size):
        fine.append(y)
        if c is not None:
            coarse.append(c)
    return torch.cat(fine), (torch.cat(coarse) if coarse else None)
