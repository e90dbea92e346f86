"""Command line: ``python -m sslkit COMMAND``. It calls the same experiment functions as
the chapters and writes the same cache.

Commands
--------
train        train one method under one profile and print a summary
profiles     list the profiles and their settings
data         load a dataset and describe it
clean-cache  delete sslkit's cached runs (only in a folder sslkit created)
plan         each chapter's runs, how many are cached, operations and estimated time per device
evidence     the stored evidence: ``evidence scale`` runs (or resumes) the scale study
analyze      reverse-engineer any encoder, layer by layer: an HTML report and a JSON file
grade        grade a folder of student notebooks into a CSV (as ``python -m sslkit.course grade``)
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import os
import shlex
import sys
from pathlib import Path

import pandas as pd
import torch

from .anymodel.encoders import build_encoder, load_weights, model_input
from .anymodel.folders import Folder
from .anymodel.report import replaced, writable_folder, write_report
from .anymodel.reverse import analyze
from .cache import cache_root, clean
from .experiment import store
from .experiment.configs import CONFIGS
from .experiment.cost import THROUGHPUT, fmt_duration
from .experiment.plan import (
    CHAPTER_CONFIGS,
    MEASURING_PROFILE,
    chapter_costs,
    chapter_measuring,
    chapter_plan,
)
from .experiment.runs import train
from .findings import build as evidence
from .findings import images, scale, verify
from .learn import distributed
from .learn.data import load
from .learn.methods import METHODS
from .profiles import PROFILES, get_profile
from .seeds import stream_seed
from .teach import course


def _train(args) -> int:
    # under torchrun: join the process group (NCCL or gloo); in one process nothing happens
    distributed.init_from_env()
    if args.threads < 0:
        raise ValueError(
            f"--threads must be 0 (torch's choice) or a positive number, got {args.threads}"
        )
    if args.threads:
        torch.set_num_threads(args.threads)
    loss = {}
    for item in args.loss or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"--loss takes KEY=VALUE (e.g. inv_weight=0), got {item!r}")
        try:
            loss[key] = float(value)
        except ValueError:
            raise ValueError(f"--loss {key}: {value!r} is not a number") from None
    r = train(
        args.method,
        args.profile,
        seed=args.seed,
        loss=loss,
        epochs=args.epochs,
        cache=not args.no_cache,
    )
    if not distributed.is_main():  # rank 0 reports
        return 0
    prof = r.profile
    processes = distributed.world_size()
    backend = torch.distributed.get_backend() if processes > 1 else "none"
    print(
        f"method {args.method} | profile {prof.name} ({prof.dataset}, {prof.backbone}, "
        f"{prof.epochs} epochs) | seed {args.seed} | processes {processes} "
        f"(backend {backend})"
    )
    losses = r.losses()
    if len(losses):
        print("\nloss terms, first and last epoch:")
        print(losses.iloc[[0, -1]].round(4).to_string())
    print("\nmetrics on the test set (fine labels), before → after training:")
    for metric in ("ncc", "probe", "knn", "cdnv"):
        print(f"  {metric:6s} {r.initial(metric):.4f} → {r.final(metric):.4f}")
    return 0


def _profiles(args) -> int:
    print(f"default here: {get_profile().name} (set SSLKIT_PROFILE to change it)\n")
    for p in PROFILES.values():
        fields = ", ".join(f"{k}={v}" for k, v in dataclasses.asdict(p).items() if k != "name")
        print(f"{p.name:6s} {fields}")
    return 0


def _data(args) -> int:
    for split in ("train", "test"):
        ds = load(args.name, split, root=args.root)
        print(
            f"{ds.name} {split}: images {tuple(ds.images.shape)} {ds.images.dtype}, "
            f"{ds.num_classes} classes, {ds.num_coarse_classes} coarse classes"
        )
    print("classes:", ", ".join(ds.classes[:20]))
    print("coarse classes:", ", ".join(ds.coarse_classes))
    return 0


def _clean_cache(args) -> int:
    root = args.root or cache_root()
    print(f"removed {clean(root)} cache entries from {root}")
    return 0


def _plan(args) -> int:
    prof = get_profile(args.profile)
    print(
        f"profile {prof.name}: {prof.dataset}, {prof.backbone}, {prof.epochs} epochs, "
        f"seeds {list(prof.seeds)}\n"
    )
    if args.chapter:
        plan = chapter_plan(args.chapter, prof)
        shown = plan.assign(
            TFLOP=plan.flops / 1e12, **{d: plan[d].map(fmt_duration) for d in THROUGHPUT}
        )
        with pd.option_context("display.width", 120):
            print(
                shown[
                    ["config", "seed", "method", "TFLOP", "steps", "cached", *THROUGHPUT]
                ].to_string(index=False)
            )
        todo = plan[~plan.cached]
        print(
            f"\n{len(plan) - len(todo)} of {len(plan)} runs cached; the rest: "
            + ", ".join(f"{d} {fmt_duration(todo[d].sum())}" for d in THROUGHPUT)
        )
        measuring = chapter_measuring(args.chapter, prof)
        print(
            "Measuring them (features, probes, kNN, UMAP, figures): "
            + (
                f"not timed for the {prof.name} profile"
                if measuring is None
                else f"{fmt_duration(measuring)}, timed on 2 CPU cores"
            )
        )
    else:
        with pd.option_context("display.width", 120):
            print(chapter_costs(prof).to_string())
        print(
            "\nTimes: the chapter from empty caches, as if it ran alone: training every run "
            "(estimated from its operations) plus measuring them ('measuring': timed on 2 CPU "
            f"cores for the {MEASURING_PROFILE} profile, blank where not timed; added as is for "
            "every device, so an overestimate on a GPU)."
        )
    print("\nThroughput figures (FLOP/s, overhead per step):")
    for d, (flops, step, note) in THROUGHPUT.items():
        print(f"  {d:5s} {flops:.1e} FLOP/s, {1000 * step:.0f} ms/step  ({note})")
    return 0


def _evidence(args) -> int:
    seeds = None if args.seeds is None else tuple(args.seeds)
    if seeds is not None and (not seeds or len(set(seeds)) != len(seeds)):
        raise ValueError(f"--seeds must list distinct seeds, got {args.seeds}")
    if args.what == "scale":
        table = scale.study(args.designs, tuple(args.methods), seeds or (0, 1, 2), path=args.out)
        print(f"{len(table)} rows in {args.out}")
    elif args.what == "images":
        m = images.build_images()
        images.build_views()
        print(f"{len(m.get('runs', {}))} runs in {images.folder()}")
    elif args.what == "build":
        prof = get_profile(args.profile or "reference")
        m = evidence.build(prof, args.configs, seeds)
        print(f"{len(m.get('runs', {}))} runs in {store.folder(prof)}")
    else:
        table = verify.verify(args.profile or "reference", result=verify.RESULT)
        print(
            f"verified: {len(table)} stored values recomputed, largest difference "
            f"{table.difference.max():.2g} (tolerance {verify.TOLERANCE})"
        )
    return 0


# The side folder images are resized to when neither --size nor the model says: the book's.
DEFAULT_SIDE = 32


def _analyze_inputs(args):
    """``(model, data, channels, side)`` of ``analyze``'s flags: a named dataset at its own
    size, or a folder at ``--size`` (default: what the model expects, else
    :data:`DEFAULT_SIDE`), normalised as pretrained weights want when ``--pretrained``."""
    if args.pretrained and args.weights:
        raise ValueError(
            "give --pretrained or --weights, not both: --weights loads your own state dict in "
            "place of the model zoo's"
        )
    if not args.data.startswith("folder:"):
        if args.size is not None or args.coarse is not None:
            raise ValueError(
                "--size and --coarse are for --data folder:PATH; a named dataset keeps its own "
                "image size and coarse labels"
            )
        name = "digits" if args.data == "smoke" else args.data  # the smoke profile's data
        fit, score = load(name, "train"), load(name, "test")
        channels, side = fit.channels, fit.images.shape[-1]
        model = build_encoder(args.model, channels, side, args.seed, pretrained=args.pretrained)
        return model, (fit, score), channels, side
    model = build_encoder(
        args.model, 3, args.size or DEFAULT_SIDE, args.seed, pretrained=args.pretrained
    )
    expects = model_input(args.model, model, args.pretrained)
    side = args.size or expects.side or DEFAULT_SIDE
    path = args.data.removeprefix("folder:")
    return model, Folder(path, side, args.coarse, expects.mean, expects.std), 3, side


def _analyze(args) -> int:
    out = writable_folder(args.out)  # before anything is measured
    model, data, channels, side = _analyze_inputs(args)
    if args.weights:
        load_weights(model, args.weights)
    elif not args.pretrained:
        print("note: no --weights given: the model is at random initialisation", file=sys.stderr)
    untrained = None
    if not args.no_untrained:  # the architecture afresh, with its own initialisation
        untrained = build_encoder(
            args.model, channels, side, seed=stream_seed(args.seed, "weights")
        )
    device = (
        torch.device(args.device)
        if args.device
        else (torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu"))
    )
    result = analyze(
        model.to(device),
        data,
        layers=args.layers.split(",") if args.layers else None,
        targets=args.targets.split(","),
        untrained=untrained,
        pixels=not args.no_pixels,
        draws=args.draws,
        max_fit=args.max_fit,
        batch_size=args.batch_size,
        device=device,
        seed=args.seed,
        progress=None if not args.quiet else False,
        limit=args.limit,
    )
    for line in replaced(out):
        print(f"note: {line}", file=sys.stderr)
    try:
        paths = write_report(
            result, out, title=f"{args.model} on {args.data}", provenance=_origin(args)
        )
    except OSError as err:  # a full disk: one line, not a traceback
        print(f"error: {err.strerror or err}", file=sys.stderr)
        return 1
    print(result.summary().round(4).to_string())
    print(f"\nwrote {paths['report']} and {paths['results']}")
    return 0


def _origin(args) -> dict:
    """The report's provenance that only the command line knows: the model as asked, where its
    weights came from (a file with its SHA-256, the zoo's, or none) and the command itself."""
    if args.weights:
        with open(args.weights, "rb") as f:
            digest = hashlib.file_digest(f, "sha256").hexdigest()[:16]
        weights = f"the file {args.weights} (SHA-256 {digest})"
    elif args.pretrained:
        weights = "the model zoo's pretrained weights"
    else:
        weights = f"none: random initialisation (seed {args.seed})"
    argv = getattr(args, "argv", None)
    command = "python -m sslkit " + shlex.join(argv) if argv is not None else None
    return {"model": args.model, "weights": weights, "command": command}


def _count(minimum: int):
    """An argparse type: a whole number of at least ``minimum``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value

    return parse


def _add_profile(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--profile",
        default=None,
        choices=list(PROFILES),
        help="profile (default: $SSLKIT_PROFILE, else cpu)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m sslkit",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser(
        "train", help="train one method and print a summary (cached by configuration)"
    )
    t.add_argument(
        "--method", default="vicreg", choices=METHODS, help="training method (default vicreg)"
    )
    _add_profile(t)
    t.add_argument(
        "--epochs", type=int, default=None, help="override the profile's number of epochs"
    )
    t.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    t.add_argument(
        "--loss",
        action="append",
        metavar="KEY=VALUE",
        help="loss argument, repeatable: e.g. --loss inv_weight=0 --loss var_weight=25",
    )
    t.add_argument(
        "--no-cache",
        action="store_true",
        help="train even if a cached run exists, and do not store it",
    )
    t.add_argument(
        "--threads", type=int, default=0, help="torch CPU threads (default: torch's choice)"
    )
    t.set_defaults(func=_train)
    p = sub.add_parser("profiles", help="list the profiles and their settings")
    p.set_defaults(func=_profiles)
    d = sub.add_parser("data", help="load a dataset (downloading if needed) and describe it")
    d.add_argument("name", help="digits, fashion-mnist, cifar10 or cifar100")
    d.add_argument(
        "--root", default=None, help="folder with the files (default: $SSLKIT_DATA, then caches)"
    )
    d.set_defaults(func=_data)
    c = sub.add_parser("clean-cache", help="delete sslkit's cached runs and evaluations")
    c.add_argument(
        "--root",
        default=None,
        help="cache folder (default: $SSLKIT_CACHE, else ~/.cache/sslkit/runs)",
    )
    c.set_defaults(func=_clean_cache)
    pl = sub.add_parser(
        "plan", help="each chapter's runs, cached runs, operations and estimated time per device"
    )
    _add_profile(pl)
    pl.add_argument(
        "--chapter", default=None, choices=list(CHAPTER_CONFIGS), help="list one chapter's runs"
    )
    pl.set_defaults(func=_plan)
    ev = sub.add_parser(
        "evidence",
        help="the stored evidence: the scale study, the evidence store (both resumable) and its "
        "verification",
    )
    ev.add_argument(
        "what",
        choices=["scale", "build", "verify", "images"],
        help="scale: how big the experiment must be; build: train and evaluate every "
        "configuration of the findings into the store (sslkit/evidence/<profile>/); verify: "
        "re-train a sample of the store and compare; images: build the per-image evidence "
        "(sslkit/evidence/images/, every test image; resumable)",
    )
    _add_profile(ev)
    ev.add_argument(
        "--configs",
        nargs="+",
        choices=list(CONFIGS),
        default=None,
        help="build: these configurations only (default: all, primary first)",
    )
    ev.add_argument("--designs", nargs="+", choices=list(scale.DESIGNS), default=None)
    ev.add_argument(
        "--methods", nargs="+", choices=list(METHODS), default=list(scale.STUDY_METHODS)
    )
    ev.add_argument(
        "--seeds",
        nargs="+",
        type=int,
        default=None,
        help="seeds (default: 0 1 2 for scale, the profile's for build)",
    )
    ev.add_argument(
        "--out",
        type=Path,
        default=scale.TABLE,
        help="the study's table (default: the one in the package, sslkit/evidence/scale/)",
    )
    ev.set_defaults(func=_evidence)
    a = sub.add_parser(
        "analyze",
        help="reverse-engineer an encoder: how each layer clusters the classes, against random "
        "controls, its untrained self and the raw pixels",
    )
    a.add_argument("--model", required=True, help="torchvision:NAME, sslkit:convnet, timm:NAME…")
    a.add_argument("--weights", default=None, help="a state dict saved with torch.save")
    a.add_argument(
        "--pretrained",
        action="store_true",
        help="the model zoo's pretrained weights (torchvision, timm), fetched once into torch's "
        "hub cache; offline, download the file elsewhere and pass it with --weights",
    )
    a.add_argument(
        "--data",
        default="smoke",
        help="smoke, digits, fashion-mnist, cifar10, cifar100, or folder:PATH (your images: one "
        "sub-folder per class, PATH/CLASS/IMAGE.png)",
    )
    a.add_argument(
        "--size",
        type=_count(1),
        default=None,
        help="folder data: the side images are resized and centre-cropped to (default: what the "
        f"model expects, e.g. 224 for a ViT or pretrained weights, else {DEFAULT_SIDE})",
    )
    a.add_argument(
        "--coarse",
        type=Path,
        default=None,
        help="folder data: coarse labels, a CSV file with the header class,coarse (one row a "
        'class folder) or a JSON object {"class folder": "coarse label"}',
    )
    a.add_argument(
        "--limit",
        type=_count(2),
        default=None,
        help="at most N images in all, stratified by class (seeded): a quick look at a large set",
    )
    a.add_argument(
        "--layers",
        default=None,
        help="comma-separated module names; NAME:cls takes a layer's class token (default: a "
        "ResNet's stages, a ViT's blocks and class token…)",
    )
    a.add_argument(
        "--targets", default="fine,coarse,coarse_random,random_function", help="comma-separated"
    )
    a.add_argument("--draws", type=_count(1), default=20, help="draws of each random control")
    a.add_argument("--max-fit", type=_count(2), default=10_000, help="images for the probe and kNN")
    a.add_argument("--batch-size", type=_count(1), default=256)
    a.add_argument("--device", default=None, help="cpu, cuda… (default: cuda if available)")
    a.add_argument("--seed", type=int, default=0)
    a.add_argument("--no-untrained", action="store_true", help="skip the untrained floor")
    a.add_argument("--no-pixels", action="store_true", help="skip the raw-pixel floor")
    a.add_argument(
        "--quiet",
        action="store_true",
        help="no progress bar (none either where stderr is no terminal)",
    )
    a.add_argument(
        "--out", type=Path, required=True, help="folder for report.html and results.json"
    )
    a.set_defaults(func=_analyze)
    g = sub.add_parser("grade", help="grade a folder of student notebooks into a CSV (--jobs N)")
    course._grade_arguments(g)
    g.set_defaults(func=_grade)
    return parser


def _grade(args) -> int:
    """``grade``: the coursework's grader (:func:`sslkit.teach.course._grade_command`)."""
    if not args.folder.is_dir():
        raise FileNotFoundError(f"{args.folder} is not a folder of notebooks")
    return course._grade_command(args)


# What a user's input can raise: one line on stderr and exit code 2, never a traceback
# (SSLKIT_DEBUG=1 shows it, for developers).
USER_ERRORS = (
    ValueError,
    KeyError,
    FileNotFoundError,
    PermissionError,
    FloatingPointError,
    RuntimeError,
    TypeError,
)


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    args.argv = sys.argv[1:] if argv is None else [str(a) for a in argv]  # for the provenance
    try:
        return args.func(args)
    except (*USER_ERRORS, MemoryError) as e:
        if os.environ.get("SSLKIT_DEBUG", "") not in ("", "0"):
            raise
        message = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        advised = "batch_size" in message  # analyze's own advice
        if (isinstance(e, MemoryError) or "out of memory" in message.lower()) and not advised:
            message += (
                " — out of memory: lower batch_size or eval_size (a smaller profile, e.g. "
                "--profile cpu), or use fewer --threads"
            )
        print(f"error: {message} (SSLKIT_DEBUG=1 shows the traceback)", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
