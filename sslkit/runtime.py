"""Process-wide settings of a run: seeds and progress bars.

Kept apart from the training loop so that the cache, the CLI and the chapters can use
them without importing :mod:`sslkit.train`.
"""
from __future__ import annotations

import os
import random
import sys

import numpy as np
import torch

__all__ = ["seed_everything", "progress_enabled", "autocast_dtype"]


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def progress_enabled() -> bool:
    """Progress bars unless ``TQDM_DISABLE=1`` or stderr is not interactive (a notebook counts as interactive)."""
    if os.environ.get("TQDM_DISABLE", "") not in ("", "0"):
        return False
    return "ipykernel" in sys.modules or sys.stderr.isatty()


def autocast_dtype(device) -> torch.dtype | None:
    """The mixed-precision type for ``device``: bfloat16 on a GPU that computes it natively
    (compute capability 8.0 and later: A100, H100, RTX 30xx…), else ``None`` (plain
    float32). A T4 only emulates bfloat16, slowly, and float16 would need loss scaling."""
    device = torch.device(device)
    if device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported(including_emulation=False) else None
