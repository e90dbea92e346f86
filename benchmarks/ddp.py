"""Training throughput with N data-parallel processes: ``torchrun --nproc_per_node=N
benchmarks/ddp.py --profile cpu --steps 20`` prints the images per second of the global batch
(rank 0). On CPUs (gloo) it shows the overhead of data parallelism; on GPUs (NCCL), the
speed-up. Used by ``benchmarks/run.py`` (row 7) and ``benchmarks/gpu.sh --nproc N``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sslkit import data, distributed, profiles, runs  # noqa: E402
from sslkit.methods import make_method  # noqa: E402
from sslkit.train import fit  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--profile", default="cpu")
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    distributed.init_from_env()
    prof = profiles.get_profile(args.profile)
    device = runs.default_device()
    ds = data.load(prof.dataset).subset(prof.batch_size * args.steps).to(device)
    method = make_method("vicreg", ds, projector=prof.projector)
    torch.manual_seed(0)
    model = runs.build_model(method, prof, ds)
    warm = ds.subset(prof.batch_size * 2)
    fit(model, method, warm, epochs=1, batch_size=prof.batch_size, progress=False)
    if device.type == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    fit(model, method, ds, epochs=1, batch_size=prof.batch_size, progress=False)
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    if distributed.is_main():
        print(f"images/s {prof.batch_size * args.steps / seconds:.1f} "
              f"processes {distributed.world_size()} device {device.type}")  # fmt: skip


if __name__ == "__main__":
    main()
