"""One training loop for every method.

:func:`fit` takes a model, a *method* (a callable turning a batch into a
:class:`~sslkit.losses.LossOutput`, see :mod:`sslkit.methods`) and a dataset held as whole
tensors on one device. It records every loss term per step and per epoch, calls
evaluation callbacks at chosen epochs, saves and resumes checkpoints, stops on a
non-finite loss, and warns when the embeddings collapse. It returns a tidy pandas
DataFrame: one row per (epoch, step, phase, metric[, stage, target, split]) value.

Multi-GPU: the loop only touches the model through ``model(...)`` and the optimiser, and
draws its shuffling from a generator, so wrapping the model in ``DistributedDataParallel``
and sharding the permutation by rank is the whole change (left to a later issue).
"""
from __future__ import annotations

import math
import os
import random
import sys
import warnings
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import pandas as pd
import torch

__all__ = ["fit", "seed_everything", "CollapseWarning", "atomic_save", "progress_enabled"]


class CollapseWarning(UserWarning):
    """The embeddings have (nearly) collapsed to a point."""


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


def atomic_save(obj, path) -> None:
    """``torch.save`` to a temporary file, then rename: a crash never leaves half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _lr_lambda(warmup_steps: int, total_steps: int) -> Callable[[int], float]:
    def f(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        t = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, t)))
    return f


def _adamw(params, lr: float, weight_decay: float) -> torch.optim.AdamW:
    """AdamW with its fused kernel (one pass over all parameters per step; on the CPU it
    replaced a dozen small element-wise ops per tensor in the profile), else the default."""
    params = list(params)
    try:
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, fused=True)
    except (RuntimeError, TypeError, ValueError):  # older torch, or a device without a fused kernel
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)


def fit(model, method, data, *, epochs: int, batch_size: int = 256, lr: float = 1e-3,
        weight_decay: float = 1e-4, seed: int = 0, callbacks: Iterable[Callable] = (),
        eval_epochs: Iterable[int] | None = None, checkpoint_dir=None, checkpoint_every: int = 0,
        resume=None, progress: bool | None = None, collapse_threshold: float = 0.05,
        device=None) -> pd.DataFrame:
    """Train ``model`` with ``method`` on ``data`` and return the history.

    Parameters
    ----------
    model : torch.nn.Module
        Moved to ``device`` (default: ``data``'s device). On CUDA it runs channels_last
        under bfloat16 autocast; on the CPU in plain float32.
    method : callable ``(model, images, labels, generator) -> LossOutput``
    data : :class:`sslkit.data.Dataset`
        Moved to the device as a whole once; batches are slices of a shuffled index.
    epochs, batch_size, lr, weight_decay
        AdamW with one epoch of linear warm-up, then cosine decay to 0, stepped per batch.
        The last incomplete batch is dropped (batch statistics need full batches).
    seed : int
        Seeds the weights' RNG, shuffling and augmentation: a CPU run is repeatable.
    callbacks : callables ``(model, epoch) -> DataFrame | dict``
        Run at ``eval_epochs`` (default: 0 and ``epochs``; 0 is before training). A dict
        becomes rows ``metric=value``; a DataFrame is appended as is.
    checkpoint_dir, checkpoint_every
        Save ``epoch_{N}.pt`` every ``checkpoint_every`` epochs (and ``last.pt``).
    resume : path, optional
        A checkpoint to continue from (model, optimiser, schedule, RNG and history).
    collapse_threshold : float
        An epoch whose mean ``embedding_std`` is below it adds a ``collapse`` row and a
        :class:`CollapseWarning`.

    Raises
    ------
    FloatingPointError
        On a NaN/Inf loss, naming the epoch, step and the last finite loss terms.
    """
    if epochs < 0 or batch_size < 2:
        raise ValueError(f"need epochs ≥ 0 and batch_size ≥ 2, got {epochs} and {batch_size}")
    device = torch.device(device) if device is not None else data.device
    data = data.to(device)
    n_batches = len(data) // batch_size
    if n_batches == 0:
        raise ValueError(f"batch_size {batch_size} is larger than the dataset ({len(data)} samples); "
                         "lower batch_size")
    if resume is None:
        seed_everything(seed)
    model = model.to(device)
    cuda = device.type == "cuda"
    if cuda:
        model = model.to(memory_format=torch.channels_last)
    opt = _adamw(model.parameters(), lr, weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _lr_lambda(n_batches, epochs * n_batches))
    gen = torch.Generator(device=device).manual_seed(seed)
    eval_epochs = sorted(set(eval_epochs if eval_epochs is not None else (0, epochs)))
    callbacks = list(callbacks)
    rows: list[dict] = []
    frames: list[pd.DataFrame] = []
    start = 1

    if resume is not None:
        state = torch.load(resume, map_location=device, weights_only=False)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        gen.set_state(state["generator"].cpu())
        torch.set_rng_state(state["torch_rng"].cpu())
        frames.append(state["history"])
        start = state["epoch"] + 1

    def run_callbacks(epoch: int) -> None:
        for cb in callbacks:
            res = cb(model, epoch)
            df = res.copy() if isinstance(res, pd.DataFrame) else pd.DataFrame(
                [dict(metric=k, value=float(v)) for k, v in dict(res).items()])
            df.insert(0, "epoch", epoch)
            df.insert(1, "phase", "eval")
            frames.append(df)

    def history() -> pd.DataFrame:
        parts = [f for f in frames + [pd.DataFrame(rows)] if len(f)]
        return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(
            columns=["epoch", "phase", "step", "metric", "value"])

    def save(epoch: int) -> None:
        state = dict(model=model.state_dict(), optimizer=opt.state_dict(), scheduler=sched.state_dict(),
                     generator=gen.get_state(), torch_rng=torch.get_rng_state(), epoch=epoch,
                     history=history())
        atomic_save(state, Path(checkpoint_dir) / f"epoch_{epoch}.pt")
        atomic_save(state, Path(checkpoint_dir) / "last.pt")

    if start == 1 and 0 in eval_epochs:
        run_callbacks(0)
    show = progress_enabled() if progress is None else progress
    from tqdm.auto import tqdm

    step = (start - 1) * n_batches
    last_finite: dict[str, float] = {}
    model.train()
    for epoch in range(start, epochs + 1):
        perm = torch.randperm(len(data), device=device, generator=gen)
        sums: dict[str, float] = {}
        bar = tqdm(range(n_batches), desc=f"epoch {epoch}/{epochs}", disable=not show, leave=False)
        for b in bar:
            idx = perm[b * batch_size:(b + 1) * batch_size]
            images = data.images[idx]
            if cuda:
                images = images.contiguous(memory_format=torch.channels_last)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cuda):
                out = method(model, images, data.labels[idx], gen)
            if not torch.isfinite(out.total):
                raise FloatingPointError(
                    f"non-finite loss ({out.total.item()}) at epoch {epoch}, step {step + 1}. "
                    f"Last finite loss terms: {last_finite or '(none: the first step failed)'}. "
                    "Lower the learning rate or check the input data.")
            opt.zero_grad(set_to_none=True)
            out.total.backward()
            opt.step()
            sched.step()
            step += 1
            values = {"total": out.total.item(), **{k: v.item() for k, v in out.terms.items()}}
            last_finite = values
            for k, v in values.items():
                rows.append(dict(epoch=epoch, phase="step", step=step, metric=k, value=v))
                sums[k] = sums.get(k, 0.0) + v
            if show:
                bar.set_postfix(loss=f"{values['total']:.3f}")
        means = {k: v / n_batches for k, v in sums.items()}
        for k, v in means.items():
            rows.append(dict(epoch=epoch, phase="epoch", step=step, metric=k, value=v))
        if "embedding_std" in means and means["embedding_std"] < collapse_threshold:
            rows.append(dict(epoch=epoch, phase="warning", step=step, metric="collapse",
                             value=means["embedding_std"]))
            warnings.warn(f"epoch {epoch}: the embeddings collapsed (embedding_std "
                          f"{means['embedding_std']:.4f} < {collapse_threshold})", CollapseWarning,
                          stacklevel=2)
        if epoch in eval_epochs:
            run_callbacks(epoch)
        if checkpoint_dir is not None and checkpoint_every and (epoch % checkpoint_every == 0 or epoch == epochs):
            save(epoch)
    model.eval()
    return history()
