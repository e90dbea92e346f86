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
