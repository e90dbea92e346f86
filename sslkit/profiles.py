"""Run profiles: every setting of a scale (smoke, cpu, gpu, paper) in one visible place.

A profile is a small frozen dataclass. Experiments take a profile as an argument and
never read globals; :func:`get_profile` is the one place that looks at the
``SSLKIT_PROFILE`` environment variable.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Profile:
    """Settings of one scale of experiment.

    Attributes
    ----------
    name : str
        Profile name.
    dataset : str
        A name known to :func:`sslkit.data.load`.
    backbone : str
        ``"convnet"`` (small, CPU) or ``"resnet18"`` (CIFAR-style ResNet-18).
    widths : tuple of int
        Channel widths of the ConvNet's stages (ignored by ResNet-18).
    train_size : int or None
        Training images used for SSL (a fixed random subset); ``None`` = all.
    eval_size : int or None
        Images of each split used by the metrics; ``None`` = all.
    epochs : int
        SSL training epochs.
    batch_size : int
        Images per step (each gives two views for joint-embedding methods).
    lr : float
        Peak AdamW learning rate (linear warm-up for one epoch, then cosine decay).
    weight_decay : float
        AdamW weight decay.
    projector : tuple of int
        Hidden and output widths of the projector MLP.
    eval_every : int
        Snapshot the backbone for evaluation every this many epochs (and at epochs 0 and the last).
    seeds : tuple of int
        The seeds every finding is measured over (at least 3 where a claim rests on them).
    imbalance : float or None
        ``None``: class-balanced training images. A number ``r > 1``: a long-tailed training
        set of the same ``train_size``, class ``k`` (in label order) holding a share
        proportional to ``r**(-k / (K - 1))``, so the largest class has ``r`` times the images
        of the smallest (:func:`sslkit.learn.data.long_tailed`). The evaluation images stay
        the balanced profile's.
    """

    name: str
    dataset: str
    backbone: str
    widths: tuple[int, ...] = (32, 64, 128, 256)
    train_size: int | None = None
    eval_size: int | None = None
    epochs: int = 10
    batch_size: int = 256
    lr: float = 2e-3
    weight_decay: float = 1e-4
    projector: tuple[int, ...] = (512, 512)
    eval_every: int = 1
    seeds: tuple[int, ...] = (0, 1, 2)
    imbalance: float | None = None

    def __post_init__(self):
        """Every setting checked once, with what was wrong and what is expected."""

        def positive_int(name, value, minimum=1):
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise ValueError(
                    f"profile {self.name!r}: {name} must be an integer ≥ {minimum}, got {value!r}"
                )

        positive_int("epochs", self.epochs, 0)
        positive_int("batch_size", self.batch_size, 2)
        positive_int("eval_every", self.eval_every)
        for name in ("train_size", "eval_size"):
            if getattr(self, name) is not None:
                positive_int(name, getattr(self, name))
        for name in ("widths", "projector"):
            values = getattr(self, name)
            if not isinstance(values, tuple) or not values:
                raise ValueError(
                    f"profile {self.name!r}: {name} must be a non-empty tuple, got {values!r}"
                )
            for v in values:
                positive_int(name, v)
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"profile {self.name!r}: seeds must be distinct, got {self.seeds!r}")
        for s in self.seeds:
            positive_int("seeds", s, 0)
        if self.imbalance is not None and not (
            isinstance(self.imbalance, (int, float)) and 1 < self.imbalance < float("inf")
        ):
            raise ValueError(
                f"profile {self.name!r}: imbalance must be None (balanced) or a ratio > 1 of the "
                f"largest class to the smallest, got {self.imbalance!r}"
            )
        if self.imbalance is not None and self.train_size is None:
            raise ValueError(
                f"profile {self.name!r}: a long-tailed training set (imbalance) needs a "
                "train_size, the total it keeps"
            )
        if not (isinstance(self.lr, (int, float)) and self.lr > 0 and self.lr < float("inf")):
            raise ValueError(
                f"profile {self.name!r}: lr must be a positive number, got {self.lr!r}"
            )
        if not (
            isinstance(self.weight_decay, (int, float)) and 0 <= self.weight_decay < float("inf")
        ):
            raise ValueError(
                f"profile {self.name!r}: weight_decay must be ≥ 0, got {self.weight_decay!r}"
            )

    def eval_epochs(self) -> list[int]:
        """The epochs whose backbone is snapshotted for evaluation: 0 (the untrained
        network), every ``eval_every`` epochs, and the last.

        >>> PROFILES["smoke"].eval_epochs()
        [0, 4, 8, 12]
        """
        return sorted({0, self.epochs, *range(0, self.epochs + 1, max(1, self.eval_every))})

    def replace(self, **changes) -> Profile:
        """A copy with some settings changed, e.g. ``profile.replace(epochs=2)``."""
        return dataclasses.replace(self, **changes)


PROFILES: dict[str, Profile] = {
    # Seconds on a laptop; used by the tests (a few seconds per run). 8x8 digits, tiny ConvNet.
    "smoke": Profile(
        name="smoke",
        dataset="digits",
        backbone="convnet",
        widths=(16, 32, 64),
        train_size=None,
        eval_size=None,
        epochs=12,
        batch_size=128,
        lr=5e-3,
        projector=(128, 128),
        eval_every=4,
    ),
    # Minutes on 2 CPU cores, seconds to minutes on a GPU; the default everywhere and the profile
    # the book is built with.
    # About 15 s per joint-embedding run (27 steps per epoch), so that every finding gets 3 seeds
    # and the whole book builds from an empty cache within its 20-minute budget.
    "cpu": Profile(
        name="cpu",
        dataset="fashion-mnist",
        backbone="convnet",
        widths=(8, 16, 32, 64),
        train_size=7_000,
        eval_size=2_000,
        epochs=5,
        batch_size=256,
        lr=3e-3,
        projector=(256, 256),
        eval_every=1,
    ),
    # The evidence's scale, chosen by the scale study (sslkit/scale.py, its table in
    # sslkit/evidence/scale/): the cheapest design tried in which VICReg, SimCLR and Barlow
    # Twins each beat the untrained network on test NCC, whitened NCC and the linear probe,
    # and raw pixels on test NCC (95% CIs over 3 seeds above 0). About 1-1.5 minutes a
    # joint-embedding run on 2 CPU cores; 8 seeds, as the stored evidence asks.
    "reference": Profile(
        name="reference",
        dataset="fashion-mnist",
        backbone="convnet",
        widths=(16, 32, 64, 128),
        train_size=14_000,
        eval_size=2_000,
        epochs=10,
        batch_size=256,
        lr=3e-3,
        projector=(256, 256),
        eval_every=2,
        seeds=tuple(range(8)),
    ),  # fmt: skip
    # CIFAR-100 and ResNet-18, by name only: from under an hour to hours per chapter on a
    # Colab T4, the most for the chapters with sweeps (`python -m sslkit plan --profile gpu`).
    "gpu": Profile(
        name="gpu",
        dataset="cifar100",
        backbone="resnet18",
        train_size=None,
        eval_size=10_000,
        epochs=50,
        batch_size=512,
        lr=2e-3,
        weight_decay=1e-4,
        projector=(2048, 2048),
        eval_every=10,
    ),
    # The paper's own setting in size (CIFAR-100, ResNet-18, 400 epochs, VICReg's 8192-wide
    # projector), not a reproduction of any published schedule: its augmentations, optimiser and
    # learning rate are the book's. Hours on one GPU; never run for the book.
    "paper": Profile(
        name="paper",
        dataset="cifar100",
        backbone="resnet18",
        train_size=None,
        eval_size=None,
        epochs=400,
        batch_size=512,
        lr=2e-3,
        weight_decay=1e-4,
        projector=(8192, 8192, 8192),
        eval_every=50,
    ),
}


def default_profile_name() -> str:
    """``$SSLKIT_PROFILE`` if set, else ``"cpu"``, with or without a GPU.

    ``cpu`` is the book's own scale: every chapter fits a few minutes on two CPU cores
    and well under 15 minutes on a Colab T4 (``python -m sslkit plan``), and a reader's
    verdicts compare with the book's. ``gpu`` and ``paper`` (CIFAR-100, ResNet-18) take
    hours per chapter on a T4 and are chosen by name.
    """
    name = os.environ.get("SSLKIT_PROFILE", "").strip()
    return name or "cpu"


def get_profile(name: str | Profile | None = None) -> Profile:
    """Return a profile by name (default: :func:`default_profile_name`).

    Raises
    ------
    ValueError
        If the name is not one of :data:`PROFILES`.
    """
    if isinstance(name, Profile):
        return name
    name = default_profile_name() if name is None else name
    if name not in PROFILES:
        raise ValueError(
            f"Unknown profile {name!r}. Known profiles: {', '.join(PROFILES)}. "
            "Set SSLKIT_PROFILE to one of them or pass it as an argument."
        )
    return PROFILES[name]
