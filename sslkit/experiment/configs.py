"""The paper's named configurations: what each one trains, and the runs of one by seed.

A configuration is a method with loss arguments, named the way the book and the paper
speak of it ("VICReg", "regularization only", "ratio 5", …). :func:`trained` gives its runs,
one per seed of a profile: from the evidence store (:mod:`sslkit.store`) where it holds
them, else trained or loaded through :func:`sslkit.runs.train` (one cache for the chapters,
the CLI and the findings).
"""

from __future__ import annotations

import contextlib
import contextvars
import math

from ..learn.losses import VICREG_WEIGHTS, regularization_ratio  # noqa: F401  (a configuration's ratio; defined with the loss)
from ..profiles import get_profile
from . import store
from .runs import filled_loss, train

__all__ = [
    "CONFIGS",
    "RATIOS",
    "RANDOMNESS",
    "COMPARED_METHODS",
    "SOURCES",
    "store_only",
    "trained",
    "regularization_ratio",
]

# The configurations the findings rest on: name -> (method, loss arguments).
CONFIGS: dict[str, tuple[str, dict]] = {
    "VICReg": ("vicreg", {}),
    "invariance only": ("vicreg", {"var_weight": 0, "cov_weight": 0}),
    "regularization only": ("vicreg", {"inv_weight": 0}),
    # The ratio sweep changes the invariance weight only, so every run has a distinct
    # regularization/invariance ratio (a run whose whole loss is scaled is the same run under
    # AdamW).
    "ratio 0.2": ("vicreg", {"inv_weight": VICREG_WEIGHTS["inv_weight"] * 5}),
    "ratio 0.5": ("vicreg", {"inv_weight": VICREG_WEIGHTS["inv_weight"] * 2}),
    "ratio 2": ("vicreg", {"inv_weight": VICREG_WEIGHTS["inv_weight"] / 2}),
    "ratio 5": ("vicreg", {"inv_weight": VICREG_WEIGHTS["inv_weight"] / 5}),
    "SimCLR": ("simclr", {}),
    "Barlow Twins": ("barlow", {}),
    # Barlow Twins' own one-term-at-a-time ablation: the on-diagonal (invariance) term or
    # the off-diagonal (redundancy-reduction) term alone.
    "Barlow invariance only": ("barlow", {"redundancy_weight": 0}),
    "Barlow redundancy only": ("barlow", {"inv_weight": 0}),
    "rotation": ("rotation", {}),
    "jigsaw": ("jigsaw", {}),
    "supervised": ("supervised", {}),
}
# Fractions of the labels shuffled (class sizes kept) for the random-target study.
RANDOMNESS = (0.0, 0.25, 0.5, 0.75, 1.0)
# The VICReg runs of the ratio sweep, by regularization / invariance ratio: seven distinct
# ratios with the two one-term runs at the ends (0: invariance only, ∞: regularization only).
RATIOS = {
    0.0: "invariance only",
    0.2: "ratio 0.2",
    0.5: "ratio 0.5",
    1.0: "VICReg",
    2.0: "ratio 2",
    5.0: "ratio 5",
    math.inf: "regularization only",
}
# The joint-embedding methods whose measurements of chapters 4–6 are reported per method.
COMPARED_METHODS = ("VICReg", "SimCLR", "Barlow Twins")


SOURCES = ("auto", "store", "live")
_STORE_ONLY = contextvars.ContextVar("store_only", default=False)


@contextlib.contextmanager
def store_only():
    """Within this block :func:`trained` never trains: it reads the store or raises
    ``LookupError`` (how the book asks for the reference evidence without training it)."""
    token = _STORE_ONLY.set(True)
    try:
        yield
    finally:
        _STORE_ONLY.reset(token)


def trained(name: str, profile=None, seeds=None, source: str = "auto") -> list:
    """The runs of a named configuration (:data:`CONFIGS`), one per seed of the profile
    (or of ``seeds``).

    ``source="auto"`` reads the evidence store when it holds every one of these runs for
    exactly this profile's settings (:class:`~sslkit.store.StoredRun`), and otherwise trains
    or loads each from the train cache (:class:`~sslkit.runs.Run`); ``"store"`` and
    ``"live"`` insist on one. Both kinds answer ``value``, ``final``, ``initial`` and
    ``losses`` alike, so a finding measures them with the same code.
    """
    if name not in CONFIGS:
        raise ValueError(f"unknown configuration {name!r}; known: {', '.join(CONFIGS)}")
    if source not in SOURCES:
        raise ValueError(f"source must be one of {SOURCES}, got {source!r}")
    prof = get_profile(profile)
    seeds = tuple(seeds or prof.seeds)
    if source == "auto" and _STORE_ONLY.get():
        source = "store"
    method, loss = CONFIGS[name]
    expected = dict(method=method, loss=filled_loss(method, loss))
    if source == "store" or (source == "auto" and store.holds(prof, name, seeds, **expected)):
        if not store.holds(prof, name, seeds, **expected):
            raise store.NotStored(
                f"the evidence store of profile {prof.name!r} does not hold {name} for seeds "
                f"{list(seeds)}; build it with `python -m sslkit evidence build --profile "
                f"{prof.name}`, or use source='live'"
            )
        return store.stored_runs(name, prof, seeds)
    return [train(method, prof, seed=s, loss=loss) for s in seeds]
