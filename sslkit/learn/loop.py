"""One training loop for every method.

:func:`fit` takes a model, a *method* (a callable turning a batch into a
:class:`~sslkit.losses.LossOutput`, see :mod:`sslkit.methods`) and a dataset held as whole
tensors on one device. It records every loss term per step and per epoch, calls
evaluation callbacks at chosen epochs, saves and resumes checkpoints, stops on a
non-finite loss or gradient, and warns when the embeddings collapse. It returns a tidy
pandas DataFrame: one row per (epoch, step, phase, metric[, stage, target, split]) value.

What :func:`fit` does with its arguments, beyond its docstring:

- The model is trained as it comes (its weights are seeded by whoever built it, e.g.
  :func:`sslkit.runs.train`), in channels_last memory format, under bfloat16 autocast on a GPU
  that computes it natively (:func:`~sslkit.runtime.autocast_dtype`), else in float32.
- The learning rate: AdamW with one epoch of linear warm-up, then cosine decay to 0, stepped
  per batch. The last incomplete batch of an epoch is dropped (batch statistics need full
  batches). The run's ``batches`` stream (:mod:`sslkit.seeds`) draws the shuffling, the
  augmentations and the pretext labels, so a CPU run is repeatable.
- A callback's dict becomes rows ``metric=value``; a DataFrame is appended as it is; ``None``
  adds nothing. A checkpoint (``epoch_{N}.pt`` and ``last.pt``) holds the model, optimiser,
  schedule, random state and history; a resumed run equals the uninterrupted one.
- An epoch whose mean ``embedding_std`` is below ``collapse_threshold`` adds a ``collapse`` row
  and a :class:`CollapseWarning`. ``stop_after`` trains the first epochs of the full run
  exactly, on the schedule of all ``epochs``: how the evidence store is re-verified.

Several processes (``torchrun``, :mod:`sslkit.distributed`): the model is wrapped in
``DistributedDataParallel``, every rank draws the same permutation from the shared ``batches``
stream and trains on its shard of each global batch, and only rank 0 evaluates, checkpoints
and shows progress. In one process nothing changes. ``sync_batchnorm`` synchronises BatchNorm
statistics over the global batch (``SyncBatchNorm``); by default on for the joint-embedding
methods, whose losses compare embeddings across the whole batch: with per-rank statistics each
shard would be normalised on its own, a batch-size change the single-process run never saw
(and a channel through which a rank's views can recognise each other, as SimCLR's authors
note of BatchNorm).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch

from ..cache import atomic_save, safe_load, to_payload
from ..runtime import autocast_dtype, progress_enabled
from ..seeds import generator
from . import distributed as dist

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
        self.frames: list[pd.DataFrame] = (
            [previous] if previous is not None and len(previous) else []
        )
        self.last: dict[str, float] = {}  # the last step's loss terms (all finite)
        self._sums: dict[str, float] = {}
        self._steps = 0

    def add(self, **row) -> None:
        self.rows.append(row)

    def add_step(self, epoch: int, step: int, out) -> None:
        """One optimiser step's total loss and named terms."""
        self.last = {"total": out.total.item(), **{k: v.item() for k, v in out.terms.items()}}
        for k, v in self.last.items():
            self.add(epoch=epoch, phase="step", step=step, metric=k, value=v)
            self._sums[k] = self._sums.get(k, 0.0) + v
        self._steps += 1

    def end_epoch(self, epoch: int, step: int) -> dict[str, float]:
        """Add and return the epoch's mean of every term; start the next epoch's sums."""
        means = {k: v / self._steps for k, v in self._sums.items()}
        for k, v in means.items():
            self.add(epoch=epoch, phase="epoch", step=step, metric=k, value=v)
        self._sums, self._steps = {}, 0
        return means

    def add_eval(self, epoch: int, result) -> None:
        if result is None:
            return
        df = (
            result.copy()
            if isinstance(result, pd.DataFrame)
            else pd.DataFrame([dict(metric=k, value=float(v)) for k, v in dict(result).items()])
        )
        if len(df):
            df.insert(0, "epoch", epoch)
            df.insert(1, "phase", "eval")
            self.frames.append(df)

    def frame(self) -> pd.DataFrame:
        parts = [f for f in self.frames + [pd.DataFrame(self.rows)] if len(f)]
        return (
            pd.concat(parts, ignore_index=True)
            if parts
            else pd.DataFrame(columns=["epoch", "phase", "step", "metric", "value"])
        )


def _describe(model, method, batch_size: int, epochs: int, lr: float, weight_decay: float) -> dict:
    """What a checkpoint must match to be resumed: the method, the architecture (every
    parameter's shape), the batch size and the schedule."""
    return dict(
        method=str(getattr(method, "name", type(method).__name__)),
        batch_size=int(batch_size),
        epochs=int(epochs),
        lr=float(lr),
        weight_decay=float(weight_decay),
        shapes={k: list(v.shape) for k, v in model.state_dict().items()},
    )


def _save_checkpoint(folder, epoch: int, model, opt, sched, gen, history: _History, run: dict):
    state = to_payload(
        dict(
            run=run,
            model=model.state_dict(),
            optimizer=opt.state_dict(),
            scheduler=sched.state_dict(),
            generator=gen.get_state(),
            torch_rng=torch.get_rng_state(),
            epoch=epoch,
            history=history.frame(),
        )
    )
    atomic_save(state, Path(folder) / f"epoch_{epoch}.pt")
    atomic_save(state, Path(folder) / "last.pt")


def _load_checkpoint(path, device, model, opt, sched, gen, run) -> tuple[int, pd.DataFrame]:
    try:
        state = safe_load(path, map_location=device)
    except Exception as e:
        raise ValueError(
            f"cannot resume from {path}: not a readable sslkit checkpoint ({type(e).__name__}: {e})"
        ) from e
    saved = state.get("run", {})
    differs = [k for k in run if k in saved and saved[k] != run[k]]
    if differs:
        shown = {k: (saved[k], run[k]) for k in differs if k != "shapes"}
        if "shapes" in differs:
            shown["architecture"] = "other layers or widths"
        raise ValueError(
            f"cannot resume from {path}: it was saved by another run; (checkpoint, this run): "
            f"{shown}. Resume with the same method, network, batch size and schedule, or start "
            "afresh"
        )
    model.load_state_dict(state["model"])
    opt.load_state_dict(state["optimizer"])
    sched.load_state_dict(state["scheduler"])
    gen.set_state(state["generator"].cpu())
    torch.set_rng_state(state["torch_rng"].cpu())
    return int(state["epoch"]), state["history"]


def _all_finite(tensors) -> bool:
    """Whether every tensor is finite, with one fused norm per group (no loop over elements)."""
    tensors = [t for t in tensors if t is not None]
    return not tensors or bool(torch.isfinite(torch.stack(torch._foreach_norm(tensors))).all())


def _backward(out, params, epoch: int, step: int, last_finite: dict) -> None:
    """``out.total.backward()``, or ``FloatingPointError`` (weights untouched) on a non-finite
    loss or gradient, naming the epoch, the step and the last finite loss terms. With several
    processes, a non-finite loss on any rank stops every rank here, with this message."""
    finite_loss = dist.all_finite(out.total)
    if finite_loss:
        out.total.backward()
    if finite_loss and _all_finite([p.grad for p in params]):
        return
    what = f"loss ({out.total.item()})" if not finite_loss else "gradient"
    raise FloatingPointError(
        f"non-finite {what} at epoch {epoch}, step {step}; the weights were not updated. "
        f"Last finite loss terms: {last_finite or '(none: the first step failed)'}. "
        "Lower the learning rate or check the input data."
    )


class _Quiet:
    """A progress bar that shows nothing: iterates like ``range(n)``."""

    def __init__(self, n: int):
        self.n = n

    def __iter__(self):
        return iter(range(self.n))

    def set_postfix(self, **kwargs) -> None:
        pass


def _progress_bar(n: int, desc: str, progress: bool | None):
    """A bar over ``range(n)`` on rank 0 where ``progress`` asks for one (default:
    :func:`~sslkit.runtime.progress_enabled`), else one that shows nothing."""
    show = (progress_enabled() if progress is None else progress) and dist.is_main()
    if not show:
        return _Quiet(n)
    with warnings.catch_warnings():  # tqdm.auto warns in a Jupyter without ipywidgets
        warnings.simplefilter("ignore")
        from tqdm.auto import tqdm  # lazy: only when a bar is shown (tqdm.auto probes Jupyter)
    return tqdm(range(n), desc=desc, leave=False)


@dataclass
class _EpochEnd:
    """What happens between epochs: the collapse check, evaluation callbacks at their
    epochs, and checkpoints. Parameters are checked to be finite before any of them is
    written, so a diverged network is never stored."""

    callbacks: Iterable[Callable]
    eval_epochs: Iterable[int] | None  # default: 0 (before training) and the last
    epochs: int
    collapse_threshold: float
    checkpoint_dir: object = None
    checkpoint_every: int = 0
    run: dict | None = None  # what a checkpoint must match to be resumed (_describe)

    def __post_init__(self):
        self.callbacks = list(self.callbacks)
        default = (0, self.epochs)
        self.eval_epochs = set(self.eval_epochs if self.eval_epochs is not None else default)

    def checkpoint_to(self, folder, every: int, run: dict) -> None:
        """Checkpoint to ``folder`` every ``every`` epochs and at the last (both, or neither)."""
        if (folder is None) != (not every):
            raise ValueError("give checkpoint_dir and checkpoint_every (≥ 1) together, or neither")
        self.checkpoint_dir, self.checkpoint_every, self.run = folder, every, run

    def evaluate(self, model, epoch: int, history: _History) -> None:
        if epoch in self.eval_epochs:
            for cb in self.callbacks:
                history.add_eval(epoch, cb(model, epoch))

    def __call__(self, model, epoch: int, step: int, history: _History, opt, sched, gen) -> None:
        means = history.end_epoch(epoch, step)
        spread = means.get("embedding_std")
        if spread is not None and spread < self.collapse_threshold:
            history.add(epoch=epoch, phase="warning", step=step, metric="collapse", value=spread)
            warnings.warn(
                f"epoch {epoch}: the embeddings collapsed (embedding_std {spread:.4f} < "
                f"{self.collapse_threshold})",
                CollapseWarning,
                stacklevel=3,
            )
        if not _all_finite(list(model.parameters())):
            raise FloatingPointError(
                f"the weights are not finite after epoch {epoch} (the loss and gradients were); "
                "nothing "
                "was stored. Lower the learning rate."
            )
        if not dist.is_main():  # rank 0 keeps the books: evaluations and checkpoints
            return
        self.evaluate(model, epoch, history)
        if self.checkpoint_dir is not None and (
            epoch % self.checkpoint_every == 0 or epoch == self.epochs
        ):
            _save_checkpoint(self.checkpoint_dir, epoch, model, opt, sched, gen, history, self.run)


def fit(
    model,
    method,
    data,
    *,
    epochs: int,
    batch_size: int = 256,
    lr: float = 1e-3,
    weight_decay: float = 1e-4,
    seed: int = 0,
    callbacks: Iterable[Callable] = (),
    eval_epochs: Iterable[int] | None = None,
    checkpoint_dir=None,
    checkpoint_every: int = 0,
    resume=None,
    progress: bool | None = None,
    collapse_threshold: float = 0.05,
    device=None,
    stop_after: int | None = None,
    sync_batchnorm: bool | None = None,
) -> pd.DataFrame:
    """Train ``model`` with ``method`` on ``data``; return the history, one row per value.

    Parameters
    ----------
    model : moved to ``device`` (default: ``data``'s device) and trained as it comes
    method : callable ``(model, images, labels, generator) -> LossOutput``
    data : :class:`sslkit.data.Dataset`, moved whole; batches slice a shuffled index
    epochs, batch_size, lr, weight_decay : AdamW, linear warm-up, then cosine decay to 0
    seed : the run's seed, whose ``batches`` stream shuffles and augments
    callbacks : ``(model, epoch) -> DataFrame | dict | None`` at ``eval_epochs`` (0, ``epochs``)
    checkpoint_dir, checkpoint_every, resume : ``epoch_{N}.pt`` every N epochs; resume from one
    collapse_threshold, stop_after, sync_batchnorm : collapse warning, early stop, SyncBatchNorm

    Raises ``FloatingPointError`` on a NaN/Inf loss, gradient or weight. More: the module doc.
    """
    device, n_batches = _check_arguments(data, epochs, batch_size, device)
    data, model = data.to(device), model.to(device, memory_format=torch.channels_last)
    net, undo = _parallel(model, method, device, sync_batchnorm)
    opt, sched = _optimiser(model.parameters(), lr, weight_decay, n_batches, epochs)
    gen = generator(seed, "batches", device=device)
    run = _describe(model, method, batch_size, epochs, lr, weight_decay)
    start, history = _resume(resume, device, model, opt, sched, gen, run)
    end_epoch = _EpochEnd(callbacks, eval_epochs, epochs, collapse_threshold)
    end_epoch.checkpoint_to(checkpoint_dir, checkpoint_every, run)
    if start == 1:
        end_epoch.evaluate(model, 0, history)
    step = _Step(net, method, model, opt, sched, history, (start - 1) * n_batches)
    model.train()
    try:
        for epoch in range(start, (epochs if stop_after is None else min(epochs, stop_after)) + 1):
            bar = _progress_bar(n_batches, f"epoch {epoch}/{epochs}", progress)
            for images, labels, views in _batches(data, batch_size, bar, gen, seed, epoch):
                step(images, labels, views, epoch)  # forward, loss, backward, AdamW step
                bar.set_postfix(loss=f"{history.last['total']:.3f}")
            end_epoch(model, epoch, step.count, history, opt, sched, gen)
    finally:
        undo()  # plain BatchNorm again, even after an error
    model.eval()
    return history.frame()


def _batches(data, batch_size: int, bar, gen, seed: int, epoch: int):
    """One epoch's batches ``(images, labels, views)``, one per step of ``bar``: slices of a
    permutation drawn from the run's ``batches`` stream ``gen`` (with several processes, this
    rank's shard of each global batch), and the generator the augmentations draw from."""
    perm = torch.randperm(len(data), device=data.device, generator=gen)
    views = _views_generator(gen, seed, epoch, data.device)
    for b in bar:
        idx = dist.shard(perm[b * batch_size : (b + 1) * batch_size])
        yield _channels_last(data.images[idx]), data.labels[idx], views


@dataclass
class _Step:
    """One optimiser step: the loss of a batch (under bfloat16 autocast where the device
    computes it natively, :func:`~sslkit.runtime.autocast_dtype`), a checked backward pass
    (:func:`_backward`), AdamW and its schedule; the step and its loss terms go to the history."""

    net: torch.nn.Module  # the model, or DistributedDataParallel around it
    method: Callable
    model: torch.nn.Module
    opt: torch.optim.Optimizer
    sched: torch.optim.lr_scheduler.LRScheduler
    history: _History
    count: int = 0  # the steps taken so far (before this call of fit too, when resumed)

    def __post_init__(self):
        self.params = list(self.model.parameters())
        self.device = self.params[0].device
        self.amp = autocast_dtype(self.device)

    def __call__(self, images, labels, views, epoch: int) -> None:
        try:
            with _autocast(self.device, self.amp):
                out = self.method(self.net, images, labels, views)
            self.opt.zero_grad(set_to_none=True)
            _backward(out, self.params, epoch, self.count + 1, self.history.last)
        except RuntimeError as e:  # a collective whose peer stopped answering, said in words
            if (lost := dist.peer_lost(e)) is not e:
                raise lost from e
            raise
        self.opt.step()
        self.sched.step()
        self.count += 1
        self.history.add_step(epoch, self.count, out)


def _autocast(device, amp):
    """bfloat16 autocast where ``amp`` says the device computes it natively, else nothing."""
    return torch.autocast(device.type, dtype=amp or torch.bfloat16, enabled=amp is not None)


def _views_generator(gen, seed: int, epoch: int, device) -> torch.Generator:
    """What augmentations draw from: the run's ``batches`` stream in one process; with several,
    each rank's own stream for the epoch (the shared one keeps the permutation identical)."""
    if dist.world_size() == 1:
        return gen
    return generator(seed, "batches", epoch, 1 + dist.rank(), device=device)


def _parallel(model, method, device, sync_batchnorm):
    """``(net, undo)``: the module to run batches through, and what restores ``model`` after
    training. In one process ``model`` itself; with several, ``DistributedDataParallel`` around
    it, BatchNorm synchronised for the joint-embedding methods (or as ``sync_batchnorm`` says),
    and ``undo`` turns the synchronised layers back into plain BatchNorm with their statistics."""
    if dist.world_size() == 1:
        return model, lambda: None
    from .methods import JointEmbedding  # lazy: methods sit above the loop's own imports

    sync = isinstance(method, JointEmbedding) if sync_batchnorm is None else sync_batchnorm
    swapped = dist.synchronise_batchnorm(model) if sync else []
    ids = None
    if device.type == "cuda":  # torchrun's LOCAL_RANK, set by sslkit.distributed.init_from_env
        ids = [device.index if device.index is not None else torch.cuda.current_device()]
    net = torch.nn.parallel.DistributedDataParallel(model, device_ids=ids)

    def undo():
        for parent, name, child in swapped:
            synced = getattr(parent, name)
            child.load_state_dict(synced.state_dict())
            setattr(parent, name, child)

    return net, undo


def _check_arguments(data, epochs: int, batch_size: int, device) -> tuple[torch.device, int]:
    """The device to train on and the number of full batches per epoch, or a clear error."""
    if epochs < 0 or batch_size < 2:
        raise ValueError(f"need epochs ≥ 0 and batch_size ≥ 2, got {epochs} and {batch_size}")
    n_batches = len(data) // batch_size
    if n_batches == 0:
        raise ValueError(
            f"batch_size {batch_size} is larger than the dataset ({len(data)} samples); "
            "lower batch_size"
        )
    return (torch.device(device) if device is not None else data.device), n_batches


def _optimiser(params, lr: float, weight_decay: float, n_batches: int, epochs: int):
    """AdamW, and its schedule: one epoch of linear warm-up, then cosine decay, per batch."""
    opt = _adamw(params, lr, weight_decay)
    return opt, torch.optim.lr_scheduler.LambdaLR(opt, _lr_lambda(n_batches, epochs * n_batches))


def _resume(checkpoint, device, model, opt, sched, gen, run) -> tuple[int, _History]:
    """The first epoch to train and the history so far: 1 and an empty one, or from a checkpoint."""
    if checkpoint is None:
        return 1, _History()
    done, previous = _load_checkpoint(checkpoint, device, model, opt, sched, gen, run)
    return done + 1, _History(previous)


def _channels_last(images: torch.Tensor) -> torch.Tensor:
    return images.contiguous(memory_format=torch.channels_last) if images.ndim == 4 else images
