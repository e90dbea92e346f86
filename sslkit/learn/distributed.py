"""Data-parallel training with PyTorch's own engine: ``torchrun`` and DistributedDataParallel.

``torchrun --nproc_per_node=N -m sslkit train …`` starts N processes; each calls
:func:`init_from_env` (NCCL on GPUs, gloo on CPUs), trains on its shard of every global batch
(:func:`shard`), and the joint-embedding losses see the **whole** batch: :func:`gather`
all-gathers the embeddings of every rank, passing gradients back to the rank that made them
(as solo-learn and lightly do). In one process every function here is the identity, so
``sslkit.train.fit`` and the book run unchanged.

Why the gradient is right: every rank computes the same loss ``L`` on the gathered batch. The
backward of :func:`gather` sums the ranks' gradients for each slice (``all_reduce``), so rank
``r`` receives ``N · ∂L/∂z_r``; DistributedDataParallel then averages the parameter gradients
over the N ranks, which leaves ``Σ_r ∂L/∂z_r · ∂z_r/∂θ = ∂L/∂θ``, the single-process gradient
on the global batch.
"""

from __future__ import annotations

import datetime
import os

import torch
import torch.distributed as dist

__all__ = [
    "rank",
    "world_size",
    "is_main",
    "init_from_env",
    "gather",
    "shard",
    "all_finite",
    "barrier",
    "from_main",
    "PeerLost",
    "peer_lost",
    "GlobalBatchNorm",
    "synchronise_batchnorm",
]

# How long a rank waits for the others at a collective before it stops with an error (a rank
# that died must not leave the rest waiting forever); override with $SSLKIT_DIST_TIMEOUT.
TIMEOUT_S = 300


def _active() -> bool:
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    """This process's rank (0 in one process)."""
    return dist.get_rank() if _active() else 0


def world_size() -> int:
    """How many processes train together (1 in one process)."""
    return dist.get_world_size() if _active() else 1


def is_main() -> bool:
    """Whether this process keeps the books: history, checkpoints, cache entries, progress."""
    return rank() == 0


def init_from_env(timeout_s: float | None = None) -> bool:
    """Join the process group that ``torchrun`` describes in the environment (``WORLD_SIZE``,
    ``RANK``, ``LOCAL_RANK``, ``MASTER_ADDR``…): NCCL where CUDA is available, else gloo, with a
    timeout so that a dead rank stops the others. Returns whether training is distributed;
    without ``torchrun`` (``WORLD_SIZE`` unset or 1) nothing happens."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or _active():
        return _active()
    timeout = timeout_s or float(os.environ.get("SSLKIT_DIST_TIMEOUT", TIMEOUT_S))
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group(backend, timeout=datetime.timedelta(seconds=timeout))
    _TIMEOUT[0] = timeout
    return True


_TIMEOUT = [TIMEOUT_S]  # the process group's timeout, for the message of PeerLost


class PeerLost(RuntimeError):
    """Another process of the job stopped answering a collective (it died, was stopped or is
    stuck): the job ends, and says so in words rather than in the backend's."""


def peer_lost(err: RuntimeError) -> RuntimeError:
    """``err`` as a :class:`PeerLost` where a collective failed because another rank stopped
    answering (the backend's timeout or a closed connection); otherwise ``err`` itself."""
    text = str(err).lower()
    words = ("timeout", "timed out", "closed", "connection reset", "broken pipe")
    if world_size() == 1 or not any(w in text for w in words):
        return err
    first = str(err).strip().splitlines()[0][:200] if str(err).strip() else type(err).__name__
    return PeerLost(
        f"rank {rank()} of {world_size()}: another process of the job stopped answering within "
        f"{_TIMEOUT[0]:g} s (SSLKIT_DIST_TIMEOUT): it died, was stopped or is stuck, so the job "
        f"ends here. Resume from the last checkpoint (fit(resume=...)) once every process runs. "
        f"(The backend said: {first})"
    )


class _Gather(torch.autograd.Function):
    """All-gather along the batch dimension; the backward sums each slice's gradient over the
    ranks and returns this rank's slice."""

    @staticmethod
    def forward(ctx, z):
        parts = [torch.empty_like(z) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, z.contiguous())
        ctx.size, ctx.rank = len(z), dist.get_rank()
        return torch.cat(parts)

    @staticmethod
    def backward(ctx, grad):
        grad = grad.contiguous()
        dist.all_reduce(grad)
        start = ctx.rank * ctx.size
        return grad[start : start + ctx.size]


class _AllReduce(torch.autograd.Function):
    """The sum over ranks; its gradient is the sum over ranks of each rank's gradient."""

    @staticmethod
    def forward(ctx, x):
        x = x.clone()
        dist.all_reduce(x)
        return x

    @staticmethod
    def backward(ctx, grad):
        grad = grad.clone()
        dist.all_reduce(grad)
        return grad


def gather(z: torch.Tensor) -> torch.Tensor:
    """The embeddings of the global batch, ranks in order (rank 0's rows first), with gradients
    flowing back to each rank's own rows; ``z`` itself in one process. Every rank must pass
    the same number of rows (:func:`shard` makes equal shards)."""
    if world_size() == 1:
        return z
    return _Gather.apply(z)


def shard(index: torch.Tensor) -> torch.Tensor:
    """This rank's contiguous share of a global batch's indices (all of them in one process).
    The global batch must split evenly, so that gathered batches keep the global order."""
    n = world_size()
    if n == 1:
        return index
    if len(index) % n:
        raise ValueError(
            f"a global batch of {len(index)} does not split evenly over {n} processes; use a "
            "batch size divisible by the number of processes"
        )
    size = len(index) // n
    return index[rank() * size : (rank() + 1) * size]


def from_main(obj):
    """Rank 0's ``obj`` on every rank (``obj`` itself in one process): one pickled broadcast,
    for a result only rank 0 holds whole, so that no rank computes it alone."""
    if world_size() == 1:
        return obj
    box = [obj if is_main() else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def barrier() -> None:
    """Wait for every rank (nothing in one process)."""
    if world_size() > 1:
        dist.barrier()


def all_finite(value: torch.Tensor) -> bool:
    """Whether ``value`` is finite on *every* rank (one all-reduce), so that a NaN on one rank
    stops all of them at the same step with the same message."""
    ok = torch.isfinite(value.detach()).all()
    if world_size() == 1:
        return bool(ok)
    flag = ok.to(torch.int32).reshape(1)
    if flag.device.type == "cpu" and dist.get_backend() == "nccl":
        flag = flag.cuda()
    dist.all_reduce(flag, op=dist.ReduceOp.MIN)
    return bool(flag.item())


class GlobalBatchNorm(torch.nn.modules.batchnorm._BatchNorm):
    """BatchNorm whose training statistics are those of the **global** batch of all ranks, on
    any backend (``torch.nn.SyncBatchNorm`` runs on CUDA only): per channel,
    ``mean = Σ x / n`` and ``var = Σ x² / n − mean²`` over every rank's samples (and pixels),
    the sums all-reduced with gradients (:class:`_AllReduce`: the backward sums each rank's
    gradient), so the backward is that of BatchNorm on the whole batch. In eval mode, or in one
    process, it is plain BatchNorm."""

    def _check_input_dim(self, x):
        if x.ndim < 2:
            raise ValueError(f"expected at least 2-D input (N×C…), got {x.ndim}-D")

    def forward(self, x):
        if not (self.training and world_size() > 1):
            return super().forward(x)
        c = x.shape[1]
        dims = [0, *range(2, x.ndim)]
        count = torch.full((1,), x.numel() / c, device=x.device, dtype=x.dtype)
        sums = _AllReduce.apply(torch.cat([x.sum(dims), (x * x).sum(dims), count]))
        n = sums[-1]
        mean = sums[:c] / n
        var = (sums[c : 2 * c] / n - mean * mean).clamp_min(0)
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked += 1
                m = 1 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
                self.running_mean.mul_(1 - m).add_(m * mean)
                self.running_var.mul_(1 - m).add_(m * var * n / (n - 1))
        shape = (1, c) + (1,) * (x.ndim - 2)
        y = (x - mean.view(shape)) * torch.rsqrt(var.view(shape) + self.eps)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y


def synchronise_batchnorm(model) -> list:
    """Replace every BatchNorm layer of ``model`` by one that normalises over the global batch
    (``torch.nn.SyncBatchNorm`` on CUDA, :class:`GlobalBatchNorm` elsewhere), sharing its
    parameters and statistics. Returns ``(parent, name, original)`` for each, to put back."""
    swapped = []
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if not isinstance(child, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
                continue
            if next(child.parameters(), torch.empty(0)).is_cuda:
                synced = torch.nn.SyncBatchNorm.convert_sync_batchnorm(child)
            else:
                synced = GlobalBatchNorm(child.num_features, child.eps, child.momentum,
                                         child.affine, child.track_running_stats)  # fmt: skip
                synced.weight, synced.bias = child.weight, child.bias
                synced.running_mean, synced.running_var = child.running_mean, child.running_var
                synced.num_batches_tracked = child.num_batches_tracked
            setattr(parent, name, synced)
            swapped.append((parent, name, child))
    return swapped
