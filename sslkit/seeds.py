"""Every random stream of a run, derived from the run's seed in one place.

A run has one integer seed (one of its profile's ``seeds``). Each purpose below draws from
a stream of its own, ``SeedSequence([seed, purpose, *keys])`` (NumPy's seed derivation,
which hashes its entropy): streams of one seed are independent of each other, and no stream
of seed ``s`` is another seed's stream (a bare ``seed + 1`` would make the test draw of seed
``s`` the training draw of seed ``s + 1``).

- ``weights``: the initial weights of backbone and head (every method of one seed starts
  from the same backbone); :func:`sslkit.runs.train`.
- ``batches``: shuffling, augmentations and pretext labels in training; :func:`sslkit.train.fit`.
- ``sample_views``: the augmented views of sample-level NCC; :meth:`sslkit.runs.Run.evaluate`.
- ``targets_train``, ``targets_test``: shuffled labels of the evaluation training and test
  images, independent draws; :func:`sslkit.targets.make_targets`.
- ``grouping``: random groupings of the fine classes (one map for both splits);
  :func:`sslkit.targets.make_targets`.
- ``random_function``: the pixel projection and k-means start of random functions;
  :func:`sslkit.targets.make_targets`.
- ``projection``: the orthonormal projection of each stage (key: the stage's index);
  :func:`sslkit.evaluation.project_stages`.
- ``pixel_subsets``: the images of the raw-pixel floor (key: 0 train, 1 test);
  :mod:`sslkit.findings.measurements`.
- ``untrained_kmeans``: the weights of the other untrained network, and the k-means start, of
  the matched random function; :func:`sslkit.targets.make_targets`.

Not a stream of the run: the images a profile trains and evaluates on are fixed subsets of
the dataset (:data:`TRAIN_SUBSET`, :data:`EVAL_SUBSET`), the same for every run and seed, so
that runs differ only in what their seed draws.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["STREAMS", "TRAIN_SUBSET", "EVAL_SUBSET", "stream_seed", "generator"]

STREAMS = (
    "weights",
    "batches",
    "sample_views",
    "targets_train",
    "targets_test",
    "grouping",
    "random_function",
    "projection",
    "pixel_subsets",
    "untrained_kmeans",
)
# Seeds of the fixed subsets of the dataset (sslkit.data.Dataset.subset): the SSL training
# images, and the evaluation images of each split. Part of the profile, not of the run.
TRAIN_SUBSET = 0
EVAL_SUBSET = 1


def stream_seed(seed: int, stream: str, *keys: int) -> int:
    """The integer seed of one named stream of run ``seed`` (``keys`` split a stream further,
    e.g. one projection per stage). A non-negative 63-bit integer, so it seeds a
    ``torch.Generator`` on any device.

    >>> stream_seed(0, "weights") == stream_seed(0, "weights")
    True
    >>> draws = {stream_seed(0, "targets_test"), stream_seed(1, "targets_train")}
    >>> len(draws | {stream_seed(0, "targets_train")})
    3
    """
    if stream not in STREAMS:
        raise ValueError(f"unknown random stream {stream!r}; the streams are: {', '.join(STREAMS)}")
    if int(seed) < 0 or any(int(k) < 0 for k in keys):
        raise ValueError(
            f"seeds and stream keys must be non-negative integers, got {seed} and {keys}"
        )
    entropy = [int(seed), STREAMS.index(stream), *map(int, keys)]
    return int(
        np.random.SeedSequence(entropy).generate_state(1, dtype=np.uint64)[0] >> np.uint64(1)
    )


def generator(seed: int, stream: str, *keys: int, device="cpu") -> torch.Generator:
    """A ``torch.Generator`` on ``device`` seeded with :func:`stream_seed`."""
    return torch.Generator(device=device).manual_seed(stream_seed(seed, stream, *keys))
