"""Datasets as whole uint8 tensors: ``load(name)`` is the one path for data in the book.

Every dataset comes back as a :class:`Dataset`: ``images`` (uint8, N×C×H×W), fine
``labels`` and ``coarse_labels`` (int64), and the class names of both levels. The whole
set fits on one device (``dataset.to("cuda")``), so augmentation and training never go
through a ``DataLoader`` (the airbench approach).

Where the files come from, in this order:

1. ``root`` if given, else ``$SSLKIT_DATA``;
2. for Fashion-MNIST, the Debian package ``dataset-fashion-mnist``
   (``/usr/share/datasets/fashion-mnist``);
3. the user cache (``$XDG_CACHE_HOME/sslkit/data`` or ``~/.cache/sslkit/data``),
   downloading there through torchvision if the files are missing.
"""

from __future__ import annotations

import gzip
import hashlib
import math
import os
import pickle
import signal
import socket
import threading
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..runtime import user_cache_home

__all__ = [
    "Dataset",
    "DataNotFoundError",
    "CorruptDataError",
    "load",
    "long_tailed",
    "DATASETS",
    "cache_dir",
]

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")

FASHION_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
# Fashion-MNIST has one label level; the book's coarse level groups the garments by where they
# are worn (upper body; legs and whole body; feet) and bags, a grouping anyone can name
# without looking at the images (fine index -> coarse index). CIFAR-100 ships its own 20
# superclasses; CIFAR-10's split into animals and vehicles is the usual one.
FASHION_COARSE_CLASSES = ("upper body", "trousers and dresses", "footwear", "bags")
FASHION_FINE_TO_COARSE = (0, 1, 0, 1, 0, 2, 0, 2, 3, 2)

CIFAR10_COARSE_CLASSES = ("animal", "vehicle")
# airplane, automobile, bird, cat, deer, dog, frog, horse, ship, truck
CIFAR10_FINE_TO_COARSE = (1, 1, 0, 0, 0, 0, 0, 0, 1, 1)


def fingerprint_tensors(named, *extra: str) -> str:
    """A SHA-256 (16 hex digits) of ``(label, tensor)`` pairs, in order: each label, dtype,
    shape and the tensor's bytes, then the ``extra`` strings. Equal tensors, equal
    fingerprint: what the caches use to know their data (:meth:`Dataset.fingerprint`) and
    their weights (:mod:`sslkit.runs`)."""
    h = hashlib.sha256()
    for label, t in named:
        t = t.detach().cpu().contiguous()
        h.update(f"{label}{t.dtype}:{tuple(t.shape)}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    for text in extra:
        h.update(text.encode())
    return h.hexdigest()[:16]


def fingerprint_state(state: dict) -> str:
    """A fingerprint of a state dict's names, shapes and values (equal weights, equal hash):
    what the caches key a network's evaluations by."""
    return fingerprint_tensors((f"{name}:", state[name]) for name in sorted(state))


class DataNotFoundError(FileNotFoundError):
    """The dataset's files are not on this machine and could not be downloaded."""


class CorruptDataError(ValueError):
    """A dataset file exists but is truncated or not in the expected format."""


@dataclass
class Dataset:
    """One split of a labelled image dataset, held as whole tensors.

    Attributes
    ----------
    name : str
    images : torch.Tensor
        uint8, shape (N, C, H, W).
    labels, coarse_labels : torch.Tensor
        int64, shape (N,).
    classes, coarse_classes : tuple of str
        Names of the fine and coarse classes (index = label).
    """

    name: str
    images: torch.Tensor
    labels: torch.Tensor
    coarse_labels: torch.Tensor
    classes: tuple[str, ...]
    coarse_classes: tuple[str, ...]
    _stats: tuple | None = field(default=None, repr=False, compare=False)
    _fingerprint: str | None = field(default=None, repr=False, compare=False)

    def __post_init__(self):
        if self.images.dtype != torch.uint8 or self.images.ndim != 4:
            raise CorruptDataError(
                f"{self.name}: images must be uint8 N×C×H×W, got {self.images.dtype} "
                f"of shape {tuple(self.images.shape)}"
            )
        n = len(self.images)
        if self.labels.shape != (n,) or self.coarse_labels.shape != (n,):
            raise CorruptDataError(
                f"{self.name}: {n} images but labels of shape {tuple(self.labels.shape)} "
                f"and coarse labels of shape {tuple(self.coarse_labels.shape)}"
            )

    def __len__(self) -> int:
        return len(self.images)

    @property
    def device(self) -> torch.device:
        return self.images.device

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def num_coarse_classes(self) -> int:
        return len(self.coarse_classes)

    def fingerprint(self) -> str:
        """A SHA-256 (16 hex digits) of the images, both label levels and the class names,
        computed once: equal data, equal fingerprint. Part of every cache key that depends on
        the data (:mod:`sslkit.runs`), so a changed or relabelled file never returns a result
        computed on other data."""
        if self._fingerprint is None:
            tensors = [("", t) for t in (self.images, self.labels, self.coarse_labels)]
            names = "\x1f".join(self.classes + ("|",) + self.coarse_classes)
            self._fingerprint = fingerprint_tensors(tensors, names)
        return self._fingerprint

    def hierarchy(self):
        """One row per fine class: its name and its coarse class (the label hierarchy), read
        from the labels; a fine class without a sample has no known parent and is left out.
        Returns a pandas DataFrame with the columns ``fine class`` and ``coarse class``."""
        import pandas as pd  # lazy: the loaders need no pandas

        parent = dict(zip(self.labels.tolist(), self.coarse_labels.tolist()))
        return pd.DataFrame(
            {
                "fine class": [self.classes[f] for f in sorted(parent)],
                "coarse class": [self.coarse_classes[parent[f]] for f in sorted(parent)],
            }
        )

    @property
    def channels(self) -> int:
        return self.images.shape[1]

    def mean_std(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """Per-channel mean and std of the pixels in [0, 1] (computed once, cached)."""
        if self._stats is None:
            # Exact, from a 256-bin histogram per channel: no float copy of the whole dataset.
            values = torch.arange(256, dtype=torch.float64) / 255
            means, stds = [], []
            for c in range(self.channels):
                counts = torch.bincount(self.images[:, c].reshape(-1).cpu(), minlength=256).double()
                n = counts.sum()
                mean = (counts * values).sum() / n
                var = (counts * (values - mean) ** 2).sum() / (n - 1)
                means.append(mean.item())
                stds.append(max(var.sqrt().item(), 1e-3))
            self._stats = (tuple(means), tuple(stds))
        return self._stats

    def to(self, device) -> Dataset:
        """The same dataset with every tensor on ``device``."""
        return Dataset(
            self.name,
            self.images.to(device),
            self.labels.to(device),
            self.coarse_labels.to(device),
            self.classes,
            self.coarse_classes,
            self._stats,
            self._fingerprint,  # the same data on another device
        )

    def subset(self, n: int | None, seed: int = 0) -> Dataset:
        """A fixed random subset of ``n`` samples (all of them if ``n`` is None or ≥ N)."""
        if n is None or n >= len(self):
            return self
        if n <= 0:
            raise ValueError(f"subset size must be positive, got {n}")
        g = torch.Generator().manual_seed(seed)
        idx = torch.randperm(len(self), generator=g)[:n].sort().values.to(self.device)
        return self.select(idx)

    def select(self, index: torch.Tensor) -> Dataset:
        """The samples at ``index`` (a tensor of indices or a boolean mask)."""
        return Dataset(
            self.name,
            self.images[index],
            self.labels[index],
            self.coarse_labels[index],
            self.classes,
            self.coarse_classes,
            self._stats,
        )


def long_tailed(dataset: Dataset, n: int, ratio: float, seed: int = 0) -> Dataset:
    """A fixed long-tailed subset of ``n`` samples: class ``k`` of ``K`` (in label order) gets
    a share proportional to ``ratio**(-k / (K − 1))`` (a power law: the largest class has
    ``ratio`` times the samples of the smallest), rounded so the sizes add up to ``n``; the
    samples of each class are a fixed random draw (``seed``). The class-imbalanced training
    set of the uniform-cluster-prior test (Assran et al., ICLR 2023, predict that SSL's
    volume-maximising regularizers prefer equal-sized clusters)."""
    k = dataset.num_classes
    if not ratio > 1:
        raise ValueError(f"ratio must be > 1 (largest class / smallest), got {ratio}")
    share = torch.tensor([ratio ** (-c / (k - 1)) for c in range(k)], dtype=torch.float64)
    sizes = torch.floor(share / share.sum() * n).long()
    sizes[: n - int(sizes.sum())] += 1  # the remainder to the largest classes
    available = torch.bincount(dataset.labels.cpu(), minlength=k)
    short = [c for c in range(k) if sizes[c] > available[c]]
    if short:
        raise ValueError(
            f"a long-tailed subset of {n} with ratio {ratio} needs {sizes[short].tolist()} "
            f"images of classes {short}, which have only {available[short].tolist()}: "
            "use a smaller n or ratio"
        )
    g = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(dataset), generator=g)
    labels = dataset.labels.cpu()[order]
    keep = torch.cat([order[labels == c][: sizes[c]] for c in range(k)]).sort().values
    return dataset.select(keep.to(dataset.device))


# --------------------------------------------------------------------------- locations


def cache_dir() -> Path:
    """The user cache folder for downloaded data."""
    return user_cache_home() / "sslkit" / "data"


def _roots(root) -> list[Path]:
    if root is not None:
        return [Path(root)]
    env = os.environ.get("SSLKIT_DATA")
    return [Path(env)] if env else []


def _seconds_from_env(name: str, default: str) -> float:
    """A positive number of seconds from the environment variable ``name``."""
    value = os.environ.get(name, default)
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not seconds > 0:
        raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")
    return seconds


def download_timeout() -> float:
    """Seconds a download may wait for the server: ``$SSLKIT_DOWNLOAD_TIMEOUT``, else 60."""
    return _seconds_from_env("SSLKIT_DOWNLOAD_TIMEOUT", "60")


def download_deadline() -> float:
    """Seconds a whole download may take: ``$SSLKIT_DOWNLOAD_DEADLINE``, else 1800."""
    return _seconds_from_env("SSLKIT_DOWNLOAD_DEADLINE", "1800")


def _download(fetch) -> None:
    """Run torchvision's ``fetch()`` with a socket timeout (its ``urlopen`` has none, so a
    server that accepts the connection and never answers would hang forever) and a total
    deadline (a server that drips one byte every few seconds never trips a socket timeout).
    The deadline is a SIGALRM timer, so it applies in the main thread, where notebooks and
    the command line run."""
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(download_timeout())
    deadline = download_deadline()
    timed = hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()

    def expire(signum, frame):
        raise TimeoutError(
            f"the download took longer than {deadline:g} s (SSLKIT_DOWNLOAD_DEADLINE)"
        )

    if timed:
        handler = signal.signal(signal.SIGALRM, expire)
        earlier = signal.setitimer(signal.ITIMER_REAL, deadline)  # another timer, kept
    try:
        fetch()
    finally:
        if timed:
            signal.setitimer(signal.ITIMER_REAL, *earlier)  # 0 if there was none
            signal.signal(signal.SIGALRM, handler)
        socket.setdefaulttimeout(previous)


def _not_found(name: str, looked: list[Path], why: str = "") -> DataNotFoundError:
    where = ", ".join(str(p) for p in looked) or "(nowhere)"
    extra = f" The download failed: {why}" if why else ""
    return DataNotFoundError(
        f"Could not find the {name} files (looked in {where}).{extra} Provide them one of "
        "three ways: (1) pass root=... or set SSLKIT_DATA to a folder holding them; "
        "(2) for fashion-mnist, install the Debian package: apt-get install dataset-fashion-mnist; "
        f"(3) connect to the internet once so torchvision can download them into {cache_dir()}."
    )


# --------------------------------------------------------------------------- digits


def _load_digits(split: str) -> Dataset:
    # lazy: scikit-learn takes a second to import, and only digits need it
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = np.rint(bunch.images * (255.0 / 16.0)).astype(np.uint8)[:, None]  # 0..16 -> 0..255
    labels = bunch.target.astype(np.int64)
    # Fixed split: a seeded permutation, the last 360 images (20%) are the test set.
    order = np.random.default_rng(0).permutation(len(labels))
    idx = order[:-360] if split == "train" else order[-360:]
    fine = torch.from_numpy(labels[idx])
    return Dataset(
        "digits",
        torch.from_numpy(images[idx]),
        fine,
        fine % 2,
        tuple(str(d) for d in range(10)),
        ("even", "odd"),
    )


# --------------------------------------------------------------------------- IDX (MNIST format)


# No IDX file sslkit reads is larger (Fashion-MNIST's training images: 47 MB); a header that
# promises more is corrupt, or a decompression bomb.
MAX_IDX_BYTES = 256 * 2**20


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (``.gz`` or plain), checking its magic number and length.

    The format (LeCun et al.): two zero bytes, a type code (0x08 = uint8), the number of
    dimensions, then one big-endian int32 per dimension, then the data. The header is read
    first and the data with a bound (the size it promises, at most :data:`MAX_IDX_BYTES`),
    so a corrupt header or a gzip bomb is refused without filling the memory.
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            magic = f.read(4)
            if len(magic) < 4 or magic[:3] != b"\x00\x00\x08" or magic[3] not in (1, 2, 3):
                raise CorruptDataError(
                    f"{path}: wrong IDX magic number {magic.hex() or '(empty)'}, "
                    "expected 00000801 (labels) or 00000803 (images)"
                )
            dims = f.read(4 * magic[3])
            if len(dims) < 4 * magic[3]:
                raise CorruptDataError(f"{path}: truncated IDX header")
            shape = tuple(int.from_bytes(dims[4 * i : 4 * i + 4], "big") for i in range(magic[3]))
            size = math.prod(shape)  # a Python int: no overflow
            if size > MAX_IDX_BYTES:
                raise CorruptDataError(
                    f"{path}: IDX header promises shape {shape} ({size:,} bytes), more than any "
                    f"dataset sslkit reads ({MAX_IDX_BYTES:,}); the file is corrupt"
                )
            raw = f.read(size + 1)  # one byte more than promised tells a too-long file
    except (OSError, EOFError, zlib.error) as e:
        raise CorruptDataError(
            f"{path}: cannot be read as {'gzip' if opener is gzip.open else 'IDX'} ({e}); "
            "delete it and provide the file again"
        ) from e
    if len(raw) != size:
        raise CorruptDataError(
            f"{path}: IDX header promises shape {shape} ({size + 4 + 4 * len(shape)} bytes) "
            f"but the file has {'more' if len(raw) > size else len(raw) + 4 + 4 * len(shape)} "
            "bytes; it is truncated or corrupt"
        )
    return np.frombuffer(raw, dtype=np.uint8).reshape(shape)


_IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def _find_idx(folder: Path, stem: str) -> Path | None:
    for sub in ("", "FashionMNIST/raw", "fashion-mnist"):
        for suffix in (".gz", ""):
            p = folder / sub / (stem + suffix)
            if p.is_file():
                return p
    return None


def _load_fashion_mnist(split: str, root, download: bool) -> Dataset:
    img_stem, lab_stem = _IDX_FILES[split]
    # An explicit root is used or fails: never silently replaced by another copy.
    looked = _roots(root) + ([] if root is not None else [DEBIAN_FASHION_MNIST, cache_dir()])
    for folder in looked:
        img, lab = _find_idx(folder, img_stem), _find_idx(folder, lab_stem)
        if img and lab:
            break
    else:
        if not download or root is not None:
            raise _not_found("fashion-mnist", looked)
        try:
            from torchvision.datasets import FashionMNIST  # lazy: only to download

            _download(
                lambda: FashionMNIST(str(cache_dir()), train=(split == "train"), download=True)
            )
        except Exception as e:  # no network, server down, ...
            raise _not_found("fashion-mnist", looked, f"{type(e).__name__}: {e}") from e
        img, lab = _find_idx(cache_dir(), img_stem), _find_idx(cache_dir(), lab_stem)
        if not (img and lab):
            raise _not_found(
                "fashion-mnist", looked, "torchvision finished but the files are missing"
            )
    images, labels = read_idx(img), read_idx(lab)
    if images.shape[1:] != (28, 28) or labels.ndim != 1 or len(images) != len(labels):
        raise CorruptDataError(
            f"fashion-mnist: {img} holds shape {images.shape} and {lab} "
            f"shape {labels.shape}; expected N×28×28 images and N labels"
        )
    if len(images) == 0:
        raise CorruptDataError(f"fashion-mnist: {img} holds no images; provide the file again")
    if labels.max(initial=0) >= 10 or labels.min(initial=0) < 0:
        raise CorruptDataError(
            f"{lab}: labels must be in 0..9, found {labels.min()}..{labels.max()}"
        )
    fine = torch.from_numpy(labels.astype(np.int64))
    coarse = torch.tensor(FASHION_FINE_TO_COARSE)[fine]
    return Dataset(
        "fashion-mnist",
        torch.from_numpy(images.copy())[:, None],
        fine,
        coarse,
        FASHION_CLASSES,
        FASHION_COARSE_CLASSES,
    )


# --------------------------------------------------------------------------- CIFAR (python pickles)

_CIFAR = {
    "cifar10": (
        "cifar-10-batches-py",
        {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]},
        "batches.meta",
    ),
    "cifar100": ("cifar-100-python", {"train": ["train"], "test": ["test"]}, "meta"),
}


# What CIFAR's pickles are made of: dicts, lists, bytes, ints and NumPy arrays. Nothing else
# is ever imported while reading them, so a planted file cannot run code.
_CIFAR_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
}


class _CifarUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) in _CIFAR_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"{module}.{name} is not part of the CIFAR format (refused)")


def _unpickle(path: Path) -> dict:
    try:
        with open(path, "rb") as f:
            d = _CifarUnpickler(f, encoding="bytes").load()
    except Exception as e:
        raise CorruptDataError(
            f"{path}: not a readable CIFAR pickle ({type(e).__name__}: {e}); "
            "delete the folder and provide it again"
        ) from e
    if not isinstance(d, dict):
        raise CorruptDataError(
            f"{path}: a CIFAR pickle holds a dict, this one a {type(d).__name__}; "
            "delete the folder and provide it again"
        )
    return d


def _get(d: dict, key: str, path: Path | None = None):
    for k in (key.encode(), key):
        if k in d:
            return d[k]
    raise CorruptDataError(f"{path or 'CIFAR pickle'}: lacks the key {key!r} (has {list(d)[:6]})")


def _integers(d: dict, key: str, path: Path, low: int, high: int, dtype=np.int64) -> np.ndarray:
    """``d[key]`` as ``dtype``, refused (naming the file) unless every value is an integer in
    ``[low, high]``: a label 0.7 is not truncated, a pixel 300 not wrapped to 44. The range
    is checked on the array as stored, and it is cast once (no int64 copy of the images)."""
    try:
        x = np.asarray(_get(d, key, path))
    except (TypeError, ValueError) as e:  # ragged or unconvertible
        raise CorruptDataError(f"{path}: {key} is not an array of numbers ({e})") from e
    if x.dtype.kind not in "iub":
        raise CorruptDataError(f"{path}: {key} must hold integers, got {x.dtype}")
    if x.size and (x.min() < low or x.max() > high):
        raise CorruptDataError(
            f"{path}: {key} holds values from {x.min()} to {x.max()}, out of range [{low}, {high}]"
        )
    return x.astype(dtype, copy=False)


def _load_cifar(name: str, split: str, root, download: bool) -> Dataset:
    folder_name, files, meta_name = _CIFAR[name]
    looked = _roots(root) + ([] if root is not None else [cache_dir()])
    folder = next(
        (r / folder_name for r in looked if (r / folder_name / meta_name).is_file()), None
    )
    if folder is None:
        if not download or root is not None:
            raise _not_found(name, looked)
        try:
            from torchvision import datasets  # lazy: only to download

            cls = datasets.CIFAR10 if name == "cifar10" else datasets.CIFAR100
            _download(lambda: cls(str(cache_dir()), train=(split == "train"), download=True))
        except Exception as e:
            raise _not_found(name, looked, f"{type(e).__name__}: {e}") from e
        folder = cache_dir() / folder_name
    data, fine, coarse = [], [], []
    for fname in files[split]:
        path = folder / fname
        if not path.is_file():
            raise CorruptDataError(f"{path} is missing; the {name} folder {folder} is incomplete")
        d = _unpickle(path)
        x = _integers(d, "data", path, 0, 255, dtype=np.uint8)
        if x.ndim != 2 or x.shape[1] != 3072:
            raise CorruptDataError(f"{path}: data of shape {x.shape}, expected N×3072")
        y = _integers(d, "labels" if name == "cifar10" else "fine_labels", path, 0, 99)
        if len(y) != len(x):
            raise CorruptDataError(f"{path}: {len(x)} images but {len(y)} labels")
        data.append(x)
        fine.append(y)
        if name == "cifar100":
            coarse.append(_integers(d, "coarse_labels", path, 0, 19))
    meta = _unpickle(folder / meta_name)
    images = torch.from_numpy(np.concatenate(data).reshape(-1, 3, 32, 32))
    fine_t = torch.from_numpy(np.concatenate(fine))
    decode = lambda names: tuple(n.decode() if isinstance(n, bytes) else n for n in names)  # noqa: E731
    if name == "cifar10":
        classes = decode(_get(meta, "label_names"))
        coarse_t = torch.tensor(CIFAR10_FINE_TO_COARSE)[fine_t]
        coarse_classes = CIFAR10_COARSE_CLASSES
    else:
        classes = decode(_get(meta, "fine_label_names"))
        coarse_classes = decode(_get(meta, "coarse_label_names"))
        coarse_t = torch.from_numpy(np.concatenate(coarse))
    if (
        fine_t.max() >= len(classes)
        or coarse_t.max() >= len(coarse_classes)
        or min(fine_t.min(), coarse_t.min()) < 0
    ):
        raise CorruptDataError(
            f"{folder}: labels out of range of the class names in {meta_name} "
            f"(fine {int(fine_t.min())}..{int(fine_t.max())} for {len(classes)} names)"
        )
    return Dataset(name, images, fine_t, coarse_t, classes, coarse_classes)


# --------------------------------------------------------------------------- entry point

DATASETS = ("digits", "fashion-mnist", "cifar10", "cifar100")


def load(name: str, split: str = "train", root=None, download: bool = True) -> Dataset:
    """Load one split of a dataset as whole uint8 tensors.

    Parameters
    ----------
    name : {"digits", "fashion-mnist", "cifar10", "cifar100"}
        ``digits`` is scikit-learn's bundled 8×8 digits and never downloads.
    split : {"train", "test"}
    root : path, optional
        Folder holding the files; default ``$SSLKIT_DATA``, then the system and user caches.
    download : bool
        Allow a download through torchvision when the files are nowhere to be found.

    Examples
    --------
    >>> ds = load("digits")
    >>> ds.images.shape, ds.images.dtype
    (torch.Size([1437, 1, 8, 8]), torch.uint8)
    """
    key = name.lower().replace("_", "-")
    key = {"fashionmnist": "fashion-mnist", "cifar-10": "cifar10", "cifar-100": "cifar100"}.get(
        key, key
    )
    if key not in DATASETS:
        raise ValueError(f"Unknown dataset {name!r}. Known datasets: {', '.join(DATASETS)}.")
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    if key == "digits":
        return _load_digits(split)
    if key == "fashion-mnist":
        return _load_fashion_mnist(split, root, download)
    return _load_cifar(key, split, root, download)
