"""sslkit: the small, tested package behind the book *How self-supervised learning really works*.

It reproduces *Reverse Engineering Self-Supervised Learning* (Ben-Shaul, Shwartz-Ziv,
Galanti, Dekel & LeCun, NeurIPS 2023, https://arxiv.org/abs/2305.15614).

The data path, one module per step::

    data.load → augment → models → losses / methods → train.fit → metrics / evaluation
              → runs.train (+ cache) → configs → analysis → paper (findings) → plan / book / plots

(``profiles``, ``seeds``, ``runtime``, ``cost`` and ``cache`` sit below the training loop;
the README lists every module with its one job.)
"""

__version__ = "0.1.0"

from .profiles import PROFILES, Profile, get_profile  # noqa: F401


def __getattr__(name):
    # ``sslkit.analyze`` without importing torch and the data layer at ``import sslkit``
    if name == "analyze":
        from .reverse import analyze  # lazy: the first use of sslkit.analyze loads its layers

        return analyze
    raise AttributeError(f"module 'sslkit' has no attribute {name!r}")
