"""What the book's prose states: the verdict of every finding on the ``reference`` evidence
store (:mod:`sslkit.store`), recorded once, after the store was built and read. The thresholds
were fixed before (:mod:`sslkit.paper`); a build of the book fails where a verdict of the store
differs from the one recorded here, so the prose cannot contradict the numbers.

Live runs (the chapters' ``cpu`` runs, a reader's Colab run) are shown beside these and never
checked against them: they are smaller, with 3 seeds, and may read otherwise.
"""

from __future__ import annotations

__all__ = ["RECORDED", "PROFILE"]

# The profile whose stored evidence the verdicts below were read from.
PROFILE = "reference"
RECORDED: dict[str, str] = {}
