"""Training methods: how one batch of images becomes a loss.

A method is a callable ``method(model, images, labels, generator) -> LossOutput`` plus
``make_head(feature_dim)``, so :func:`sslkit.train.fit` runs every method with one loop.

- Joint-embedding methods (SimCLR, VICReg, Barlow Twins): two augmented views through
  the same network, a loss on the two embeddings.
- Pretext tasks: predict the rotation (Gidaris et al., ICLR 2018) or the tile
  permutation (Noroozi & Favaro, ECCV 2016) applied to the image.
- Supervised: cross-entropy with the true labels (the baseline for neural collapse).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Protocol, runtime_checkable

import torch

from . import augment as aug
from . import losses
from .distributed import gather
from .models import Projector

__all__ = [
    "Method",
    "JointEmbedding",
    "RotationPrediction",
    "JigsawPuzzle",
    "Supervised",
    "make_method",
    "canonical_name",
    "loss_function",
    "METHODS",
]

METHODS = ("vicreg", "simclr", "barlow", "rotation", "jigsaw", "supervised")
# The joint-embedding methods' losses; the others take no loss arguments.
LOSSES = {"vicreg": losses.vicreg, "simclr": losses.nt_xent, "barlow": losses.barlow_twins}


@runtime_checkable
class Method(Protocol):
    """What :func:`sslkit.train.fit` and :mod:`sslkit.runs` need of a method."""

    name: str

    def make_head(self, feature_dim: int):
        """The head on top of the backbone (projector or classifier)."""

    @property
    def view_augment(self) -> Callable:
        """The augmentation of one view: what sample-level NCC draws its views from."""

    def __call__(self, model, images, labels, generator=None) -> losses.LossOutput:
        """The loss of one batch."""


@dataclass
class JointEmbedding:
    """Two views → one network (views batched together) → ``loss(z1, z2)``.

    Adds the diagnostic term ``embedding_std``: the standard deviation of each embedding
    dimension over the batch, averaged over dimensions. It goes to 0 when the embeddings
    collapse to one point (VICReg's variance term keeps it near 1).
    """

    name: str
    augments: tuple
    loss: Callable
    projector: tuple[int, ...] = (512, 512)

    def make_head(self, feature_dim: int):
        return Projector(feature_dim, self.projector)

    @property
    def view_augment(self) -> Callable:
        return self.augments[0]

    def __call__(self, model, images, labels, generator=None):
        x1, x2 = aug.two_views(images, self.augments, generator)
        z1, z2 = model(torch.cat([x1, x2])).float().chunk(2)
        # several processes: the loss sees every rank's embeddings (identity in one process)
        z1, z2 = gather(z1), gather(z2)
        out = self.loss(z1, z2)
        with torch.no_grad():
            out.terms["embedding_std"] = z1.std(0).mean()
        return out


@dataclass
class RotationPrediction:
    """Rotate images by 0/90/180/270°; a linear head predicts which (4-way cross-entropy).

    By default each image gets one random rotation of its own (one forward pass per
    image); ``all_rotations=True`` feeds all four rotations of every image, as in
    Gidaris et al. (4× the compute per step).
    """

    augment: Callable
    all_rotations: bool = False
    name: str = "rotation"

    @property
    def view_augment(self) -> Callable:
        return self.augment

    def make_head(self, feature_dim: int):
        return Projector(feature_dim, (), out_dim=4)

    def __call__(self, model, images, labels, generator=None):
        x = self.augment(images, generator)
        if self.all_rotations:
            views, rot = aug.rotation_batch(x)
        else:
            rot = torch.randint(4, (len(x),), device=x.device, generator=generator)
            views = aug.rotate(x, rot)
        return losses.cross_entropy(model(views).float(), rot)


@dataclass
class JigsawPuzzle:
    """Tiles shuffled by one of a fixed set of permutations; a linear head predicts which one."""

    augment: Callable
    permutations: torch.Tensor = field(default_factory=lambda: aug.jigsaw_permutations(2))
    name: str = "jigsaw"

    @property
    def view_augment(self) -> Callable:
        return self.augment

    def make_head(self, feature_dim: int):
        return Projector(feature_dim, (), out_dim=len(self.permutations))

    def __call__(self, model, images, labels, generator=None):
        x = self.augment(images, generator)
        idx = torch.randint(len(self.permutations), (len(x),), device=x.device, generator=generator)
        return losses.cross_entropy(model(aug.jigsaw(x, idx, self.permutations)).float(), idx)


@dataclass
class Supervised:
    """Cross-entropy with the labels through a linear head: the supervised baseline."""

    augment: Callable
    num_classes: int
    name: str = "supervised"

    @property
    def view_augment(self) -> Callable:
        return self.augment

    def make_head(self, feature_dim: int):
        return Projector(feature_dim, (), out_dim=self.num_classes)

    def __call__(self, model, images, labels, generator=None):
        return losses.cross_entropy(model(self.augment(images, generator)).float(), labels)


# Other spellings of a method's name, in one place.
ALIASES = {"barlow_twins": "barlow", "barlow twins": "barlow"}


def canonical_name(name: str) -> str:
    """A method's one spelling (:data:`METHODS`): ``"VICReg"`` → ``"vicreg"``,
    ``"Barlow Twins"`` → ``"barlow"``; an unknown name is refused with the known ones."""
    return _key(name)


def _key(name: str) -> str:
    key = str(name).lower()
    key = ALIASES.get(key, key)
    if key not in METHODS:
        raise ValueError(f"unknown method {name!r}; known methods: {', '.join(METHODS)}")
    return key


def loss_function(name: str):
    """The loss function of a joint-embedding method (its keywords are the valid loss
    arguments), or ``None`` for a method that takes none."""
    return LOSSES.get(_key(name))


def make_method(name: str, dataset, projector=(512, 512), **loss_kwargs) -> Method:
    """A method by name, with the augmentation preset of ``dataset``.

    ``loss_kwargs`` go to the loss: e.g. ``make_method("vicreg", ds, inv_weight=0)`` for
    regularisation only, ``temperature=`` for SimCLR, ``inv_weight=``/``redundancy_weight=`` for
    Barlow Twins.
    """
    key = _key(name)
    views = aug.preset(key, dataset)
    if key in LOSSES:
        return JointEmbedding(key, views, partial(LOSSES[key], **loss_kwargs), tuple(projector))
    if loss_kwargs:
        raise ValueError(f"method {key!r} takes no loss arguments, got {sorted(loss_kwargs)}")
    if key == "rotation":
        return RotationPrediction(views[0])
    if key == "jigsaw":
        return JigsawPuzzle(views[0])
    return Supervised(views[0], dataset.num_classes)
