"""GPU benchmark: epoch time, images per second and peak memory of the gpu and paper
profiles on CUDA (bf16 autocast and channels_last, as sslkit.train does; optionally
torch.compile), next to the conventional DataLoader pipeline. At most about 8 minutes.

Run ``bash benchmarks/gpu.sh`` on a machine with a GPU. Without the CIFAR-100 files (an
offline machine) it times synthetic uint8 images of the same shape: the timing does not
depend on the pixel values.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from sslkit import data, losses, profiles, runs  # noqa: E402
from sslkit.methods import make_method  # noqa: E402
from sslkit.train import fit  # noqa: E402


def cifar_like(n: int) -> data.Dataset:
    try:
        return data.load("cifar100", download=False).subset(n)
    except FileNotFoundError:
        g = torch.Generator().manual_seed(0)
        images = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=g)
        labels = torch.randint(0, 100, (n,), generator=g)
        return data.Dataset(
            "synthetic-cifar",
            images,
            labels,
            labels // 5,
            tuple(map(str, range(100))),
            tuple(map(str, range(20))),
        )


def measure(prof, steps: int, compile_model: bool):
    ds = cifar_like(prof.batch_size * steps).to("cuda")
    method = make_method("vicreg", ds, projector=prof.projector)
    model = runs.build_model(method, prof, ds).cuda()
    runner = torch.compile(model) if compile_model else model
    fit(
        runner,
        method,
        ds.subset(prof.batch_size * 3),
        epochs=1,
        batch_size=prof.batch_size,
        progress=False,
    )  # warm-up
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    t = time.perf_counter()
    fit(runner, method, ds, epochs=1, batch_size=prof.batch_size, progress=False)
    torch.cuda.synchronize()
    ips = len(ds) / (time.perf_counter() - t)
    return ips, torch.cuda.max_memory_allocated() / 2**30


def measure_baseline(prof, steps: int, workers: int):
    from run import torchvision_views

    ds = cifar_like(prof.batch_size * steps)
    method = make_method("vicreg", ds, projector=prof.projector)
    model = runs.build_model(method, prof, ds).cuda().to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(model.parameters(), lr=prof.lr)
    loader = torch.utils.data.DataLoader(
        torchvision_views(ds),
        batch_size=prof.batch_size,
        shuffle=True,
        num_workers=workers,
        drop_last=True,
        pin_memory=True,
        persistent_workers=True,
    )
    for _epoch in range(2):  # the first epoch warms up workers and kernels
        torch.cuda.synchronize()
        t, seen = time.perf_counter(), 0
        for x1, x2 in loader:
            x = (
                torch.cat([x1, x2])
                .cuda(non_blocking=True)
                .contiguous(memory_format=torch.channels_last)
            )
            with torch.autocast("cuda", dtype=torch.bfloat16):
                z1, z2 = model(x).float().chunk(2)
            out = losses.vicreg(z1, z2)
            opt.zero_grad(set_to_none=True)
            out.total.backward()
            opt.step()
            seen += len(x1)
        torch.cuda.synchronize()
    return seen / (time.perf_counter() - t)


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--steps", type=int, default=40, help="training steps timed per configuration")
    p.add_argument("--compile", action="store_true", help="also time torch.compile")
    p.add_argument("--workers", type=int, default=8, help="DataLoader workers of the baseline")
    args = p.parse_args()
    if not torch.cuda.is_available():
        sys.exit("no CUDA device: run this on a machine with a GPU")
    torch.backends.cudnn.benchmark = True
    print(f"device: {torch.cuda.get_device_name(0)} | torch {torch.__version__}")
    print(f"{'profile':8s} {'mode':10s} {'img/s':>9s} {'epoch (50k) s':>14s} {'peak GiB':>9s}")
    for name in ("gpu", "paper"):
        prof = profiles.get_profile(name)
        modes = [("eager", False)] + ([("compiled", True)] if args.compile else [])
        for mode, comp in modes:
            ips, mem = measure(prof, args.steps, comp)
            print(f"{name:8s} {mode:10s} {ips:9.0f} {50000 / ips:14.1f} {mem:9.2f}", flush=True)
        if name == "gpu":
            base = measure_baseline(prof, min(args.steps, 20), args.workers)
            print(
                f"{name:8s} {'baseline':10s} {base:9.0f} {50000 / base:14.1f} {'':>9s}  "
                f"(transforms.v2 per sample, DataLoader, {args.workers} workers; sslkit/baseline = "
                f"{ips / base:.1f}x)",
                flush=True,
            )


if __name__ == "__main__":
    main()
