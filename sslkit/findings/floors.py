"""The three rulers, and the floor raw pixels set on each: what a representation has to beat
before it adds anything to the image itself.

An effect measured on a network that has not learned says nothing about learning, so every
clustering finding is read on three rulers against two floors: the same network untrained
(epoch 0 of its run) and raw pixels of the same evaluation images (this module). The floor is
computed by :func:`compute_pixel_floor`; the findings look it up with :func:`pixel_floor`,
which reads the evidence store's manifest where it holds the profile.
"""

from __future__ import annotations

import functools

from ..experiment import store
from ..experiment.runs import NoSubsets, datasets_for
from ..learn.augment import pixel_features
from ..measure import metrics
from ..profiles import Profile
from ..runtime import register_cache

__all__ = ["RULERS", "RULER_NAMES", "compute_pixel_floor", "pixel_floor", "pixel_floor_subsets"]

# The three rulers of a clustering finding. Raw NCC is the primary one: the paper's claims are
# about the geometry of the representation, which nearest-centre accuracy measures. Whitened NCC
# (ZCA fitted on the evaluation training features) and the linear probe do not change when the
# features change by an invertible linear map, so a gain on raw NCC alone is *geometry only*:
# the representation was reshaped, and no class information was added that a linear map of the
# untrained features lacked.
RULERS = ("ncc", "whitened_ncc", "probe")
RULER_NAMES = {"ncc": "NCC", "whitened_ncc": "whitened NCC", "probe": "linear probe"}


def compute_pixel_floor(profile: Profile, subsets: int = 0):
    """The three rulers on raw pixels (scaled to [0, 1]) of the profile's evaluation images:
    the floor a representation has to beat before it adds anything to the image itself.

    With ``subsets``, also each ruler on each evaluation subset of the test images (image ``i``
    in subset ``i mod subsets``, as :func:`sslkit.evaluation.evaluate_features` scores the
    networks): returns ``(floors, {ruler: [value on subset 0, 1, …]})``."""
    _, eval_train, eval_test = datasets_for(profile)
    xtr, xte = (pixel_features(d.images) for d in (eval_train, eval_test))
    ytr, yte = eval_train.labels, eval_test.labels
    correct = {
        "ncc": metrics.ncc_accuracy(xte, yte, xtr, ytr, per_sample=True),
        "whitened_ncc": metrics.whitened_ncc_accuracy(xte, yte, xtr, ytr, per_sample=True),
        "probe": metrics.linear_probe(xtr, ytr, xte, yte, per_sample=True),
    }
    floors = {r: c.double().mean().item() for r, c in correct.items()}
    if not subsets:
        return floors
    parts = {
        r: [c[k::subsets].double().mean().item() for k in range(subsets)]
        for r, c in correct.items()
    }
    return floors, parts


@register_cache
@functools.lru_cache(maxsize=8)
def pixel_floor(prof: Profile) -> dict[str, float]:
    """The three rulers on the raw pixels of the profile's evaluation images: from the evidence
    store's manifest where it holds this profile, else computed (:func:`compute_pixel_floor`)."""
    stored = store.manifest(prof)
    if stored.get("profile") == store.profile_settings(prof) and "pixel_floor" in stored:
        return stored["pixel_floor"]
    return compute_pixel_floor(prof)


def pixel_floor_subsets(prof: Profile) -> dict[str, list]:
    """The pixel floor on each evaluation subset of the test images, as the store measured it
    (:class:`~sslkit.runs.NoSubsets` where it did not)."""
    stored = store.manifest(prof)
    if stored.get("profile") != store.profile_settings(prof) or "pixel_floor_subsets" not in stored:
        raise NoSubsets(f"the {prof.name} store keeps the pixel floor on all the test images only")
    return stored["pixel_floor_subsets"]
