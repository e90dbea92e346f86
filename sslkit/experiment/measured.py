"""Measured numbers the package computes with. **Frozen**: each was measured on a named machine
and is written here from a benchmark's output, never typed by hand or tuned to make an estimate
agree; re-measure (the command beside each) and replace the whole entry.

- :data:`THROUGHPUT`: sustained training FLOP/s and per-step overhead of each device; the ``cpu``
  row from ``make bench`` (benchmarks/run.py), the GPU rows are stated estimates.
- :data:`MEASURING_SECONDS`: each chapter's measuring time, from ``make bench-chapters``
  (benchmarks/chapter_times.py prints the dictionary to paste here).
"""

__all__ = ["THROUGHPUT", "MEASURING_PROFILE", "MEASURING_SECONDS"]

# device -> (sustained training FLOP/s, seconds of overhead per optimiser step, where the figure
# comes from)
THROUGHPUT: dict[str, tuple[float, float, str]] = {
    "cpu": (
        2.2e10,
        0.0,
        "measured: cpu-profile VICReg runs, 2 AMD EPYC cores, torch 2.14, about 15 s each",
    ),
    "T4": (2.0e13, 6e-3, "estimate: about 30% of the T4's 65 TFLOP/s fp16 peak; 6 ms per step"),
    "A100": (
        8.0e13,
        3e-3,
        "estimate: about 25% of the A100's 312 TFLOP/s bf16 peak; 3 ms per step",
    ),
    "H100": (
        2.0e14,
        2e-3,
        "estimate: about 20% of the H100's 990 TFLOP/s bf16 peak; 2 ms per step",
    ),
}

# Seconds each chapter spends measuring its runs once they are trained: the chapter executed
# top to bottom on a fresh kernel (its start not counted), its runs in the train cache, an empty
# evaluation cache (features, NCC, probes, kNN, UMAP, random-target draws, figures, tables), on
# the profile below. Timed on 2 CPU cores (Intel Xeon, torch 2.14, 2026-11-30) by
# `make bench-chapters` (benchmarks/chapter_times.py, which prints its numbers beside these;
# its last table, with the machine, is in benchmarks/CHAPTER_TIMES.md). A GPU speeds up the
# features, probes and kNN but not UMAP or the figures, so the same seconds are assumed on
# every device.
MEASURING_PROFILE = "cpu"
MEASURING_SECONDS: dict[str, float] = {
    "00": 12,
    "01": 23,
    "02": 15,
    "02b": 31,
    "03": 68,
    "04": 80,
    "04b": 46,
    "05": 54,
    "05b": 14,  # benchmarks/chapter_times.py 05b, 2026-12-06, the same machine
    "06": 17,
    "08": 15,
    "09": 28,
    "07": 147,
}
