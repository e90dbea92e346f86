"""sslkit against the pipeline a user would otherwise write, side by side.

Run with ``make bench`` (or ``python benchmarks/run.py [--book] [--quick]``). Each row
measures sslkit and its baseline in the same process, on the same data, model and batch
size, and prints the ratio. The table, with the machine and library versions, is written
to ``benchmarks/RESULTS.md``. Nothing here is a test: timings never fail anything.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "2")
os.environ.setdefault("TQDM_DISABLE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from machine import cpu_name  # noqa: E402  (benchmarks/machine.py)

from sslkit import augment, data, losses, metrics, profiles, runs  # noqa: E402
from sslkit.methods import make_method  # noqa: E402
from sslkit.train import fit  # noqa: E402

THREADS = int(os.environ["OMP_NUM_THREADS"])
torch.set_num_threads(THREADS)


def best_of(fn, repeat=3):
    """Fastest wall time of ``repeat`` calls (seconds) and the last result."""
    best, out = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


# --------------------------------------------------------------------------- 1. training step


def torchvision_views(ds):
    """The conventional pipeline: torchvision.transforms.v2 applied per sample in a DataLoader."""
    from torchvision.transforms import v2

    mean, std = ds.mean_std()
    side = ds.images.shape[-1]

    def pipeline(solarize_p):
        return v2.Compose(
            [
                v2.RandomResizedCrop(side, scale=(0.2, 1.0), antialias=True),
                v2.RandomHorizontalFlip(),
                v2.RandomApply([v2.ColorJitter(0.4, 0.4)], p=0.8),
                v2.RandomSolarize(128, p=solarize_p),
                v2.ToDtype(torch.float32, scale=True),
                v2.Normalize(mean, std),
            ]
        )

    t1, t2 = pipeline(0.0), pipeline(0.2)

    class TwoViews(torch.utils.data.Dataset):
        def __len__(self):
            return len(ds)

        def __getitem__(self, i):
            img = ds.images[i]
            return t1(img), t2(img)

    return TwoViews()


def bench_training_step(prof, n_images: int, workers: int):
    train = data.load(prof.dataset).subset(n_images, seed=0)
    method = make_method("vicreg", train, projector=prof.projector)
    bs = prof.batch_size

    def ours():
        model = runs.build_model(method, prof, train)
        t = time.perf_counter()
        fit(model, method, train, epochs=1, batch_size=bs, lr=prof.lr, progress=False)
        return n_images // bs * bs / (time.perf_counter() - t)

    def baseline():
        model = runs.build_model(method, prof, train)
        opt = torch.optim.AdamW(model.parameters(), lr=prof.lr, weight_decay=prof.weight_decay)
        loader = torch.utils.data.DataLoader(
            torchvision_views(train),
            batch_size=bs,
            shuffle=True,
            num_workers=workers,
            drop_last=True,
        )
        model.train()
        t = time.perf_counter()
        seen = 0
        for x1, x2 in loader:
            z1, z2 = model(torch.cat([x1, x2])).chunk(2)
            out = losses.vicreg(z1, z2)
            opt.zero_grad(set_to_none=True)
            out.total.backward()
            opt.step()
            seen += len(x1)
        return seen / (time.perf_counter() - t)

    ours()  # warm-up (allocator, MKL-DNN primitives)
    return max(ours() for _ in range(2)), max(baseline() for _ in range(2))


def bench_memory_format(prof, n_steps: int = 20):
    """Training steps of the cpu-profile model in channels_last (what sslkit.train uses)
    against the same steps in the default contiguous layout; images per second."""
    train = data.load(prof.dataset).subset(prof.batch_size, seed=0)
    method = make_method("vicreg", train, projector=prof.projector)

    def steps(channels_last: bool) -> float:
        torch.manual_seed(0)
        model = runs.build_model(method, prof, train)
        x = train.images
        if channels_last:
            model, x = (
                model.to(memory_format=torch.channels_last),
                x.contiguous(memory_format=torch.channels_last),
            )
        opt = torch.optim.AdamW(model.parameters(), lr=prof.lr)
        g = torch.Generator().manual_seed(0)
        for i in range(n_steps + 3):
            if i == 3:  # after warm-up
                t = time.perf_counter()
            out = method(model, x, train.labels, g)
            opt.zero_grad(set_to_none=True)
            out.total.backward()
            opt.step()
        return n_steps * len(x) / (time.perf_counter() - t)

    return max(steps(True) for _ in range(2)), max(steps(False) for _ in range(2))


# --------------------------------------------------------------------------- 2. augmentation


def bench_augmentation(ds, n=512):
    imgs = ds.images[:n]
    v1, v2_ = augment.preset("vicreg", ds)
    tv = torchvision_views(ds.select(torch.arange(n)))
    t_ours, _ = best_of(lambda: augment.two_views(imgs, (v1, v2_)), 5)
    t_base, _ = best_of(lambda: [torch.stack(v) for v in zip(*(tv[i] for i in range(n)))], 3)
    return n / t_ours, n / t_base


# --------------------------------------------------------------------------- 3./4. probe, NCC, CDNV


def features_512(prof):
    """Fashion-MNIST train/test features: a trained cpu-profile backbone (cached run),
    lifted to 512 dimensions by a fixed random projection and a ReLU."""
    from sslkit.evaluation import extract_features

    r = runs.train("vicreg", prof, progress=False)
    tr, te = data.load(prof.dataset, "train"), data.load(prof.dataset, "test")
    mean, std = tr.mean_std()
    ftr = extract_features(r.backbone, tr.images, mean, std)
    fte = extract_features(r.backbone, te.images, mean, std)
    proj = (
        torch.randn(ftr.shape[1], 512, generator=torch.Generator().manual_seed(0))
        / ftr.shape[1] ** 0.5
    )
    return torch.relu(ftr @ proj), tr.labels, torch.relu(fte @ proj), te.labels


def numpy_cdnv(x, y):
    classes = np.unique(y)
    mus = np.stack([x[y == c].mean(0) for c in classes])
    var = np.array([((x[y == c] - mus[i]) ** 2).sum(1).mean() for i, c in enumerate(classes)])
    vals = [
        (var[i] + var[j]) / (2 * ((mus[i] - mus[j]) ** 2).sum())
        for i in range(len(classes))
        for j in range(i + 1, len(classes))
    ]
    return float(np.mean(vals))


def bench_probe(x, y, tx, ty):
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    t_ours, acc_ours = best_of(lambda: metrics.linear_probe(x, y, tx, ty), 2)
    xn, txn = x.numpy(), tx.numpy()

    def sk():
        scaler = StandardScaler().fit(xn)
        clf = LogisticRegression(max_iter=1000).fit(scaler.transform(xn), y.numpy())
        return clf.score(scaler.transform(txn), ty.numpy())

    t_base, acc_base = best_of(sk, 1)
    return t_ours, acc_ours, t_base, acc_base


def bench_ncc_cdnv(x, y, tx, ty):
    import warnings

    from sklearn.neighbors import NearestCentroid

    warnings.filterwarnings("ignore", message=".*zero standard deviation.*")

    t_ours, (ncc, cd) = best_of(lambda: (metrics.ncc_accuracy(tx, ty, x, y), metrics.cdnv(x, y)), 3)
    xn, yn, txn, tyn = (
        x.numpy().astype(np.float64),
        y.numpy(),
        tx.numpy().astype(np.float64),
        ty.numpy(),
    )
    t_base, (ncc_b, cd_b) = best_of(
        lambda: (NearestCentroid().fit(xn, yn).score(txn, tyn), numpy_cdnv(xn, yn)), 3
    )
    return t_ours, t_base, abs(ncc - ncc_b), abs(cd - cd_b) / abs(cd_b)


def bench_streaming(x, y, tx, ty):
    """Streaming NCC + CDNV (sslkit.streaming) against the memory floor: what the passes over
    the features cost by themselves (one reduction, per-class sums by index_add_, one product
    with the centres)."""
    from sslkit.streaming import ClassStats, NCCScore

    def stream():
        s = ClassStats(int(y.max()) + 1)
        s.update(x, y)
        score = NCCScore(s)
        score.add(tx, ty)
        return score.accuracy, s.cdnv()

    def floor():
        x.sum(0)
        torch.zeros(10, x.shape[1]).index_add_(0, y, x)
        return tx @ x[:10].T

    t_ours, (ncc, cd) = best_of(stream, 7)
    t_floor, _ = best_of(floor, 7)
    d_ncc = abs(ncc - metrics.ncc_accuracy(tx, ty, x, y))
    d_cd = abs(cd - metrics.cdnv(x, y)) / metrics.cdnv(x, y)
    return t_ours, t_floor, d_ncc, d_cd


def bench_extraction(prof, n: int = 10000):
    """sslkit.analyze (forward passes, running statistics, one network) against a plain
    DataLoader loop doing the same forward passes: images per second."""
    from sslkit.reverse import analyze

    net = runs.build_model(make_method("vicreg", data.load(prof.dataset)), prof,
                           data.load(prof.dataset)).backbone.eval()  # fmt: skip
    ds = data.load(prof.dataset)
    mean, std = ds.mean_std()
    x = augment.to_float(ds.images[:n], mean, std)
    y = ds.labels[:n]

    def plain():
        loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=256)
        with torch.no_grad():
            for xb, _ in loader:
                net.forward_stages(xb)

    def ours():
        analyze(net, ((x[: n // 2], y[: n // 2]), (x[n // 2 :], y[n // 2 :])), targets=("fine",),
                metrics=("ncc", "cdnv"), untrained=None, pixels=False, cache=False,
                progress=False)  # fmt: skip

    t_ours, _ = best_of(ours, 2)
    t_base, _ = best_of(plain, 2)
    return n / t_ours, n / t_base


def peak_rss_of_streaming(repeat: int) -> float:
    """Peak RSS (MB) of a fresh process that streams Fashion-MNIST's training images, repeated
    ``repeat`` times (indices, not copies), through a small network into NCC, CDNV and
    whitening (sslkit.analyze, one layer, no probe)."""
    code = (
        f"import torch; torch.set_num_threads({THREADS})\n"
        "from sslkit import data, models\n"
        "from sslkit.reverse import analyze\n"
        "ds = data.load('fashion-mnist'); n = len(ds)\n"
        "class Rep(torch.utils.data.Dataset):\n"
        "    def __init__(s, k): s.k = k; s.targets = ds.labels.repeat(k)\n"
        "    def __len__(s): return n * s.k\n"
        "    def __getitem__(s, i): return ds.images[i % n].float() / 255, ds.labels[i % n]\n"
        "net = models.build_backbone('convnet', 1, 28, (8, 16, 32, 64))\n"
        f"analyze(net, (Rep({repeat}), Rep(1)), layers={{'last': 'stages.3'}}, "
        "targets=('fine',), metrics=('ncc', 'whitened_ncc', 'cdnv'), untrained=None, "
        "pixels=False, cache=False, progress=False, batch_size=512)\n"
    )
    return peak_rss_of(code)


def ddp_throughput(processes: int, steps: int) -> float:
    """Images per second of the cpu profile's VICReg steps with ``processes`` gloo processes of
    one thread each (benchmarks/ddp.py under torchrun)."""
    out = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone",
         f"--nproc_per_node={processes}", str(ROOT / "benchmarks" / "ddp.py"),
         "--profile", "cpu", "--steps", str(steps)],  # fmt: skip
        capture_output=True, text=True, cwd=ROOT, check=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )  # fmt: skip
    line = next(x for x in out.stdout.splitlines() if x.startswith("images/s"))
    return float(line.split()[1])


# --------------------------------------------------------------------------- 5. memory


def peak_rss_of(code: str) -> float:
    """Peak RSS (MB) of a fresh Python process running ``code``: the child's own VmHWM
    (ru_maxrss would carry over the parent's size across fork/exec)."""
    code += "print(next(l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    )
    return int(out.stdout.strip().splitlines()[-1]) / 1024


def peak_rss_of_cpu_run() -> float:
    """Peak RSS (MB) of a fresh process training the cpu profile's VICReg run (no cache)."""
    return peak_rss_of(
        f"import torch; torch.set_num_threads({THREADS})\n"
        "from sslkit import runs\n"
        "runs.train('vicreg', 'cpu', cache=False, progress=False)\n"
    )


# --------------------------------------------------------------------------- 6. book build


def book_build_times() -> tuple[float, float]:
    """`jupyter-book build` of a copy of the repository with empty caches, then again (warm)."""
    with tempfile.TemporaryDirectory() as tmp:
        files = subprocess.run(
            ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.split()
        for f in files:
            (Path(tmp) / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / f, Path(tmp) / f)
        env = {
            **os.environ,
            "SSLKIT_CACHE": f"{tmp}/runs",
            "SSLKIT_PROFILE": "cpu",
            "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        }
        cmd = [
            str(Path(sys.executable).parent / "jupyter-book"),
            "build",
            tmp,
            "-W",
            "--keep-going",
            "-n",
            "-q",
        ]
        times = []
        for _ in range(2):
            t = time.perf_counter()
            subprocess.run(cmd, env=env, check=True, capture_output=True)
            times.append(time.perf_counter() - t)
        return times[0], times[1]


# --------------------------------------------------------------------------- main


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--book", action="store_true", help="also time the book build (about 12 minutes)"
    )
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a quick look")
    args = parser.parse_args()
    prof = profiles.get_profile("cpu")
    rows = []

    def row(name, ours, base, unit, target, higher_is_better=True, note=""):
        ratio = ours / base if higher_is_better else base / ours
        met = "" if target is None else ("yes" if ratio >= target else "no")
        rows.append((name, ours, base, unit, ratio, target, met, note))
        print(
            f"{name:38s} sslkit {ours:10.3f}  baseline {base:10.3f} {unit:8s} ratio {ratio:6.2f}x "
            f"{note}",
            flush=True,
        )

    n_train = 2048 if args.quick else 5120
    ours, base = bench_training_step(prof, n_train, workers=2)
    row(
        "1. VICReg training step (cpu profile)",
        ours,
        base,
        "img/s",
        1.5,
        note="baseline: transforms.v2 per sample, DataLoader, 2 workers",
    )
    ours, base = bench_memory_format(prof)
    row(
        "1b. the same steps, channels_last",
        ours,
        base,
        "img/s",
        None,
        note="baseline: default (contiguous) memory format, same model and batches",
    )
    fm = data.load(prof.dataset)
    ours, base = bench_augmentation(fm)
    row(
        "2. two views of 512 images",
        ours,
        base,
        "img/s",
        3.0,
        note="baseline: per-sample transforms.v2 loop",
    )
    x, y, tx, ty = features_512(prof)
    if args.quick:
        x, y = x[:10000], y[:10000]
    t_ours, acc_ours, t_base, acc_base = bench_probe(x, y, tx, ty)
    row(
        "3. linear probe, 60000x512 features",
        t_ours,
        t_base,
        "s",
        10.0,
        higher_is_better=False,
        note=f"test acc {100 * acc_ours:.2f}% vs {100 * acc_base:.2f}% "
        f"(Δ {100 * (acc_ours - acc_base):+.2f} pts)",
    )
    t_ours, t_base, d_ncc, d_cdnv = bench_ncc_cdnv(x, y, tx, ty)
    row(
        "4. NCC accuracy + CDNV",
        t_ours,
        t_base,
        "s",
        5.0,
        higher_is_better=False,
        note=f"NCC difference {d_ncc:.1e}, relative CDNV difference {d_cdnv:.1e}",
    )
    t_ours, t_floor, d_ncc, d_cdnv = bench_streaming(x, y, tx, ty)
    row(
        "4b. streaming NCC + CDNV (sslkit.analyze)",
        t_ours,
        t_floor,
        "s",
        1 / 3,
        higher_is_better=False,
        note="baseline: the memory floor (a reduction, per-class index_add_, one product); "
        f"target: within 3x of it; vs in-memory: NCC Δ {d_ncc:.1e}, CDNV rel. Δ {d_cdnv:.1e}",
    )
    ours, base = bench_extraction(prof, 4000 if args.quick else 10000)
    row(
        "4c. analyze: extraction + statistics",
        ours,
        base,
        "img/s",
        None,
        note="baseline: a plain DataLoader loop doing the same forward passes, nothing measured",
    )
    # the lowest of two runs each: the allocator's high-water mark moves by about ±50 MB between
    # identical runs, more than the data's share
    one = min(peak_rss_of_streaming(1) for _ in range(2))
    ten = min(peak_rss_of_streaming(2 if args.quick else 10) for _ in range(2))
    rows.append(
        (
            "4d. peak RSS, analyze on 10x Fashion-MNIST",
            ten,
            one,
            "MB",
            one / ten,
            0.9,
            "yes" if ten <= one / 0.9 else "no",
            "baseline column: the same on 1x (the data repeated by index); target: within 10%",
        )
    )
    print(f"4d. peak RSS of streaming analyze: {one:.0f} MB on 1x, {ten:.0f} MB on 10x", flush=True)
    steps = 8 if args.quick else 20
    two, one = ddp_throughput(2, steps), ddp_throughput(1, steps)
    row(
        "7. data-parallel training, 2 gloo processes",
        two,
        one,
        "img/s",
        None,
        note="baseline: 1 process (1 thread each); on 2 cores this is the overhead, not a speed-up",
    )
    rss = peak_rss_of_cpu_run()
    rows.append(
        (
            "5. peak RSS, cpu-profile VICReg run",
            rss,
            2048.0,
            "MB",
            2048.0 / rss,
            1.0,
            "yes" if rss < 2048 else "no",
            "baseline column: the 2 GB budget",
        )
    )
    print(f"5. peak RSS of a cpu-profile run: {rss:.0f} MB (budget 2048 MB)", flush=True)
    if not args.book:
        previous = ROOT / "benchmarks" / "RESULTS.md"
        kept = (
            [line for line in previous.read_text().splitlines() if line.startswith("| 6.")]
            if previous.exists()
            else []
        )
        if kept:  # keep the last --book measurement rather than drop the row
            rows.append(tuple(kept[0].strip().strip("|").split("|")[:8]))  # its 8 columns
    if args.book:
        cold, warm = book_build_times()
        rows.append(
            (
                "6. book build (cold → warm cache)",
                warm,
                cold,
                "s",
                cold / warm,
                None,
                "",
                "sslkit column: warm rebuild; baseline column: from empty caches",
            )
        )
        print(f"6. book build: {cold:.0f} s from empty caches, {warm:.1f} s warm", flush=True)
    write_results(rows, args)


def write_results(rows, args):
    import sklearn
    import torchvision

    cpu = cpu_name()
    lines = [
        "# Benchmark results",
        "",
        "Written by "
        f"`benchmarks/run.py{' --book' if args.book else ''}{' --quick' if args.quick else ''}` "
        f"on {time.strftime('%Y-%m-%d')}.",
        "",
        f"- machine: {cpu}, {os.cpu_count()} cores, torch threads {THREADS}, "
        f"CUDA: {torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'none'}",
        f"- Python {platform.python_version()}, torch {torch.__version__}, torchvision "
        f"{torchvision.__version__}, "
        f"scikit-learn {sklearn.__version__}, NumPy {np.__version__}",
        "",
        "Ratio: how many times better sslkit is (speed, or time for rows in seconds). "
        "Targets are from the benchmark issue.",
        "",
        "| measurement | sslkit | baseline | unit | ratio | target | met | note |",
        "|---|---:|---:|---|---:|---:|---|---|",
    ]
    for r in rows:
        if isinstance(r[1], str):  # a row kept verbatim from the previous file
            cells = list(r)
            if "(from an earlier" not in cells[7]:
                cells[7] = cells[7].rstrip() + " (from an earlier `--book` run) "
            lines.append("|" + "|".join(cells) + "|")
            continue
        name, ours, base, unit, ratio, target, met, note = r
        tgt = "" if target is None else f"≥ {target:g}x"
        lines.append(
            f"| {name} | {ours:.3f} | {base:.3f} | {unit} | {ratio:.2f}x | {tgt} | {met} | {note} |"
        )
    (ROOT / "benchmarks" / "RESULTS.md").write_text("\n".join(lines) + "\n")
    print(f"\nwritten to {ROOT / 'benchmarks' / 'RESULTS.md'}")


if __name__ == "__main__":
    main()
