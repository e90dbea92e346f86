"""One training loop for every method.

:func:`fit` takes a model, a *method* (a callable turning a batch into a
:class:`~sslkit.losses.LossOutput`, see :mod:`sslkit.methods`) and a dataset held as whole
tensors on one device. It records every loss term per step and per epoch, calls
evaluation callbacks at chosen epochs, saves and resumes checkpoints, stops on a
non-finite loss or gradient, and warns when the embeddings collapse. It returns a tidy
pandas DataFrame: one row per (epoch, step, phase, metric[, stage, target, split]) value.

Multi-GPU: the loop only touches the model through ``model(...)`` and the optimiser, and
draws its shuffling from a generator, so wrapping the model in ``DistributedDataParallel``
and sharding the permutation by rank is the whole change (left to a later issue).
"""
from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Callable, Iterable

import pandas as pd
import torch

from .cache import atomic_save, safe_load, to_payload
from .runtime import autocast_dtype, progress_enabled, seed_everything

__all__ = ["fit", "CollapseWarning"]


class CollapseWarning(UserWarning):
    """The embeddings have (nearly) collapsed to a point."""


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


class _History:
    """Rows of loss terms (per step and per epoch) and evaluation frames, joined on demand."""

    def __init__(self, previous: pd.DataFrame | None = None):
        self.rows: list[dict] = []
        self.frames: list[pd.DataFrame] = [previous] if previous is not None and len(previous) else []

    def add(self, **row) -> None:
        self.rows.append(row)

    def add_eval(self, epoch: int, result) -> None:
        if result is None:
            return
        df = result.copy() if isinstance(result, pd.DataFrame) else pd.DataFrame(
            [dict(metric=k, value=float(v)) for k, v in dict(result).items()])
        if len(df):
            df.insert(0, "epoch", epoch)
            df.insert(1, "phase", "eval")
            self.frames.append(df)

    def frame(self) -> pd.DataFrame:
        parts = [f for f in self.frames + [pd.DataFrame(self.rows)] if len(f)]
        return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(
            columns=["epoch", "phase", "step", "metric", "value"])


def _save_checkpoint(folder, epoch: int, model, opt, sched, gen, history: _History) -> None:
    state = to_payload(dict(model=model.state_dict(), optimizer=opt.state_dict(), scheduler=sched.state_dict(),
                            generator=gen.get_state(), torch_rng=torch.get_rng_state(), epoch=epoch,
                            history=history.frame()))
    atomic_save(state, Path(folder) / f"epoch_{epoch}.pt")
    atomic_save(state, Path(folder) / "last.pt")


def _load_checkpoint(path, device, model, opt, sched, gen) -> tuple[int, pd.DataFrame]:
    try:
        state = safe_load(path, map_location=device)
    except Exception as e:
        raise ValueError(f"cannot resume from {path}: not a readable sslkit checkpoint "
                         f"({type(e).__name__}: {e})") from e
    model.load_state_dict(state["model"])
    opt.load_state_dict(state["optimizer"])
    sched.load_state_dict(state["scheduler"])
    gen.set_state(state["generator"].cpu())
    torch.set_rng_state(state["torch_rng"].cpu())
    return int(state["epoch"]), state["history"]


def _gradients_finite(params) -> bool:
    grads = [p.grad for p in params if p.grad is not None]
    return not grads or bool(torch.isfinite(torch.stack(torch._foreach_norm(grads))).all())


def fit(model, method, data, *, epochs: int, batch_size: int = 256, lr: float = 1e-3,
        weight_decay: float = 1e-4, seed: int = 0, callbacks: Iterable[Callable] = (),
        eval_epochs: Iterable[int] | None = None, checkpoint_dir=None, checkpoint_every: int = 0,
        resume=None, progress: bool | None = None, collapse_threshold: float = 0.05,
        device=None) -> pd.DataFrame:
    """Train ``model`` with ``method`` on ``data`` and return the history.

    Parameters
    ----------
    model : torch.nn.Module
        Moved to ``device`` (default: ``data``'s device) in channels_last memory format
        (faster convolutions on the CPU too); under bfloat16 autocast on a GPU that
        computes it natively (:func:`~sslkit.runtime.autocast_dtype`), else in float32.
    method : callable ``(model, images, labels, generator) -> LossOutput``
    data : :class:`sslkit.data.Dataset`
        Moved to the device as a whole once; batches are slices of a shuffled index.
    epochs, batch_size, lr, weight_decay
        AdamW with one epoch of linear warm-up, then cosine decay to 0, stepped per batch.
        The last incomplete batch is dropped (batch statistics need full batches).
    seed : int
        Seeds the weights' RNG, shuffling and augmentation: a CPU run is repeatable.
    callbacks : callables ``(model, epoch) -> DataFrame | dict | None``
        Run at ``eval_epochs`` (default: 0 and ``epochs``; 0 is before training). A dict
        becomes rows ``metric=value``; a DataFrame is appended as is; ``None`` adds nothing.
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
        On a NaN/Inf loss or gradient, naming the epoch, step and the last finite loss terms.
    """
    if epochs < 0 or batch_size < 2:
        raise ValueError(f"need epochs ≥ 0 and batch_size ≥ 2, got {epochs} and {batch_size}")
    if (checkpoint_dir is None) != (not checkpoint_every):
        raise ValueError("give checkpoint_dir and checkpoint_every (≥ 1) together, or neither")
    device = torch.device(device) if device is not None else data.device
    data = data.to(device)
    n_batches = len(data) // batch_size
    if n_batches == 0:
        raise ValueError(f"batch_size {batch_size} is larger than the dataset ({len(data)} samples); "
                         "lower batch_size")
    if resume is None:
        seed_everything(seed)
    model = model.to(device)
    amp = autocast_dtype(device)
    model = model.to(memory_format=torch.channels_last)
    params = list(model.parameters())
    opt = _adamw(params, lr, weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _lr_lambda(n_batches, epochs * n_batches))
    gen = torch.Generator(device=device).manual_seed(seed)
    eval_epochs = sorted(set(eval_epochs if eval_epochs is not None else (0, epochs)))
    callbacks = list(callbacks)
    start, previous = 1, None
    if resume is not None:
        done, previous = _load_checkpoint(resume, device, model, opt, sched, gen)
        start = done + 1
    history = _History(previous)

    def run_callbacks(epoch: int) -> None:
        for cb in callbacks:
            history.add_eval(epoch, cb(model, epoch))

    if start == 1 and 0 in eval_epochs:
        run_callbacks(0)
    show = progress_enabled() if progress is None else progress
    if show:
        with warnings.catch_warnings():  # tqdm.auto warns in a Jupyter without ipywidgets
            warnings.simplefilter("ignore")
            from tqdm.auto import tqdm

    step = (start - 1) * n_batches
    last_finite: dict[str, float] = {}
    model.train()
    for epoch in range(start, epochs + 1):
        perm = torch.randperm(len(data), device=device, generator=gen)
        sums: dict[str, float] = {}
        bar = tqdm(range(n_batches), desc=f"epoch {epoch}/{epochs}", leave=False) if show else range(n_batches)
        for b in bar:
            idx = perm[b * batch_size:(b + 1) * batch_size]
            images = data.images[idx]
            if images.ndim == 4:
                images = images.contiguous(memory_format=torch.channels_last)
            with torch.autocast(device.type, dtype=amp or torch.bfloat16, enabled=amp is not None):
                out = method(model, images, data.labels[idx], gen)
            opt.zero_grad(set_to_none=True)
            finite_loss = bool(torch.isfinite(out.total))
            if finite_loss:
                out.total.backward()
            if not finite_loss or not _gradients_finite(params):
                what = f"loss ({out.total.item()})" if not finite_loss else "gradient"
                raise FloatingPointError(
                    f"non-finite {what} at epoch {epoch}, step {step + 1}; the weights were not updated. "
                    f"Last finite loss terms: {last_finite or '(none: the first step failed)'}. "
                    "Lower the learning rate or check the input data.")
            opt.step()
            sched.step()
            step += 1
            values = {"total": out.total.item(), **{k: v.item() for k, v in out.terms.items()}}
            last_finite = values
            for k, v in values.items():
                history.add(epoch=epoch, phase="step", step=step, metric=k, value=v)
                sums[k] = sums.get(k, 0.0) + v
            if show:
                bar.set_postfix(loss=f"{values['total']:.3f}")
        means = {k: v / n_batches for k, v in sums.items()}
        for k, v in means.items():
            history.add(epoch=epoch, phase="epoch", step=step, metric=k, value=v)
        if "embedding_std" in means and means["embedding_std"] < collapse_threshold:
            history.add(epoch=epoch, phase="warning", step=step, metric="collapse", value=means["embedding_std"])
            warnings.warn(f"epoch {epoch}: the embeddings collapsed (embedding_std "
                          f"{means['embedding_std']:.4f} < {collapse_threshold})", CollapseWarning,
                          stacklevel=2)
        if epoch in eval_epochs:
            run_callbacks(epoch)
        if checkpoint_dir is not None and (epoch % checkpoint_every == 0 or epoch == epochs):
            _save_checkpoint(checkpoint_dir, epoch, model, opt, sched, gen, history)
    model.eval()
    return history.frame()
