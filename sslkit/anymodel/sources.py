"""Where :func:`sslkit.analyze` reads images from: a dataset name, tensors, a
``torch.utils.data.Dataset``, or a pair of these, as two splits (one to fit the centres,
whitening and probes, one to score) that yield normalised float batches and their labels.

A split is read batch by batch, never held whole: an ``ImageFolder`` of any size works.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..learn import data as data_mod
from ..learn.augment import to_float
from ..seeds import stream_seed

__all__ = ["Split", "fit_and_score", "labels_of"]


@dataclass
class Split:
    """One split as batches of float images (normalised), fine and coarse label codes."""

    name: str
    n: int
    fingerprint: str
    fine: torch.Tensor | None  # codes 0..K−1, known up front (None: found in a pass)
    coarse: torch.Tensor | None
    batches: object  # callable(batch_size, limit=None) -> iterator of (x, fine, coarse)


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


def fit_and_score(data, seed: int) -> tuple[Split, Split, str]:
    """``(fit, score, how)``: the images the centres, whitening and probes are fitted on, and
    those they are scored on."""
    if isinstance(data, str):
        train, test = data_mod.load(data, "train"), data_mod.load(data, "test")
        mean, std = train.mean_std()
        how = f"{data}: fitted on its training split, scored on its test split"
        return _split_of("fit", train, mean, std), _split_of("score", test, mean, std), how
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
        return _split_of("fit", fit, mean, std), _split_of("score", score, mean, std), how
    # one set: a fixed seeded split, 80% to fit and 20% to score
    whole = data
    if isinstance(whole, data_mod.Dataset):
        mean, std = whole.mean_std()
        whole = (whole.images, whole.labels, whole.coarse_labels)
    elif isinstance(whole, (tuple, list)):
        mean, std = _uint8_stats(whole[0])
    else:
        mean, std = None, None
    n = len(whole[0]) if isinstance(whole, (tuple, list)) else len(whole)
    g = torch.Generator().manual_seed(stream_seed(seed, "pixel_subsets", 2))
    order = torch.randperm(n, generator=g)
    cut = int(round(0.8 * n))
    fit_idx, score_idx = order[:cut].sort().values, order[cut:].sort().values
    how = f"one set split at random (seeded): {cut} images to fit, {n - cut} to score"
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
