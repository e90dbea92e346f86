"""The paper's named configurations: what each one trains, and the runs of one by seed.

A configuration is a method with loss arguments, named the way the book and the paper
speak of it ("VICReg", "regularization only", "ratio 5", …). :func:`trained` gives its runs,
one per seed of a profile, trained or loaded through :func:`sslkit.runs.train` (one cache
for the chapters, the CLI and the findings).
"""

from __future__ import annotations

import math

from .losses import VICREG_WEIGHTS, regularization_ratio  # noqa: F401  (a configuration's ratio; defined with the loss)
from .profiles import get_profile
from .runs import Run, train

__all__ = ["CONFIGS", "RATIOS", "RANDOMNESS", "METHODS", "trained", "regularization_ratio"]

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
METHODS = ("VICReg", "SimCLR", "Barlow Twins")


def trained(name: str, profile=None, seeds=None) -> list[Run]:
    """The runs of a named configuration (:data:`CONFIGS`), one per seed of the profile
    (or of ``seeds``), each trained or loaded from the train cache."""
    if name not in CONFIGS:
        raise ValueError(f"unknown configuration {name!r}; known: {', '.join(CONFIGS)}")
    prof = get_profile(profile)
    method, loss = CONFIGS[name]
    return [train(method, prof, seed=s, loss=loss) for s in (seeds or prof.seeds)]
