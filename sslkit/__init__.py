"""sslkit: the small, tested package behind the book *How self-supervised learning really works*.

It reproduces *Reverse Engineering Self-Supervised Learning* (Ben-Shaul, Shwartz-Ziv,
Galanti, Dekel & LeCun, NeurIPS 2023, https://arxiv.org/abs/2305.15614).

The package is laid out in wings, one per stage; a wing imports only from the wings before it
(``tests/test_layers.py`` enforces the order)::

    profiles, seeds, runtime, cache        the foundation: settings, random streams, caches
    learn/       data → augment → models → losses / methods → loop.fit (distributed)
    measure/     metrics, streaming statistics, targets, evaluation of a network's features
    experiment/  runs (+ cache), the evidence store, configurations, statistics, chapter costs
    anymodel/    analyze any network (beside experiment: uses foundation, learn and measure)
    findings/    the paper's claims as findings, their verdicts, the evidence build, verify
    teach/       the book's helpers and figures, exercises, grading, the coursework, Colab

Each wing's ``__init__`` lists its public names; the README maps every module to its job.
The old flat names (``from sslkit import metrics``, ``import sslkit.runs``) still import the
same modules: see :data:`MOVED`.
"""

__version__ = "0.1.0"

import importlib
import importlib.abc
import importlib.util
import sys

from .profiles import PROFILES, Profile, get_profile  # noqa: F401

#: The flat module names of sslkit before the wings, and where each module lives now. An old
#: name imports the very same module object (so ``monkeypatch.setattr("sslkit.runs.x", …)``
#: patches what the package uses). ``course`` and ``grading`` are run with ``python -m``, so
#: they keep small files of their own (``sslkit/course.py``, ``sslkit/grading.py``).
MOVED = {
    "data": "learn.data",
    "augment": "learn.augment",
    "models": "learn.models",
    "losses": "learn.losses",
    "methods": "learn.methods",
    "train": "learn.loop",
    "distributed": "learn.distributed",
    "metrics": "measure.metrics",
    "streaming": "measure.streaming",
    "targets": "measure.targets",
    "evaluation": "measure.evaluation",
    "cost": "experiment.cost",
    "runs": "experiment.runs",
    "store": "experiment.store",
    "configs": "experiment.configs",
    "analysis": "experiment.analysis",
    "plan": "experiment.plan",
    "paper": "findings.paper",
    "recorded": "findings.recorded",
    "scale": "findings.scale",
    "collect": "findings.build",
    "verify": "findings.verify",
    "reverse": "anymodel.reverse",
    "encoders": "anymodel.encoders",
    "sources": "anymodel.sources",
    "taps": "anymodel.taps",
    "report": "anymodel.report",
    "book": "teach.book",
    "plots": "teach.plots",
    "exercises": "teach.exercises",
    "colab": "teach.colab",
}


class _OldName(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports ``sslkit.<old name>`` as the module it moved to (:data:`MOVED`)."""

    def find_spec(self, fullname, path=None, target=None):
        package, _, name = fullname.partition(".")
        if package != __name__ or name not in MOVED:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec):
        module = importlib.import_module(f"{__name__}.{MOVED[spec.name.partition('.')[2]]}")
        spec.loader_state = module.__spec__  # the import system sets __spec__ to the old name's
        return module

    def exec_module(self, module):
        module.__spec__ = module.__spec__.loader_state  # it ran when imported under its own name


if not any(isinstance(f, _OldName) for f in sys.meta_path):
    sys.meta_path.append(_OldName())


def __getattr__(name):
    # ``sslkit.analyze`` without importing torch and the data layer at ``import sslkit``
    if name == "analyze":
        from .anymodel.reverse import analyze  # lazy: the first use of sslkit.analyze loads it

        return analyze
    if name == "Folder":  # your own images for sslkit.analyze
        from .anymodel.folders import Folder  # lazy: as analyze

        return Folder
    raise AttributeError(f"module 'sslkit' has no attribute {name!r}")
