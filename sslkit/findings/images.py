"""The per-image evidence: every test image, scored image by image, for the claims that the
``reference`` store cannot decide (depth, the matched hierarchy control, claims 1 and 2 on the
invariant rulers) and for chapter 05b's tests of *why* SSL clusters.

Design (:data:`DESIGN`, fixed before any of its runs was read): the ``reference`` profile's
training (Fashion-MNIST, the 4-stage ConvNet, 10 epochs), its 2,000 evaluation-train images
(centres, whitener, probe), and **all 10,000 test images**. Each run stores, image by image,
whether each ruler (raw NCC, whitened NCC, linear probe) got it right: at every stage, at full
width and at equal dimension (each stage's top 16 principal directions), on the untrained
network and the last epoch; packed bits, so that an interval can count which test images
exist (:func:`sslkit.experiment.analysis.crossed_interval`). Besides: the garment grouping and
the groupings matched to it, a random-function control, and the geometry of the last stage
(linear predictability from the untrained network, between-class share, effective rank,
cluster balance) at every snapshot.

Runs: the 2×2 of VICReg's terms and the supervised control; SimCLR; the three methods again on
a long-tailed training set (the uniform-cluster-prior test); more seeds of VICReg and
supervised. :func:`build_images` builds what is missing, run by run (resumable;
each run is written with its SHA-256 in the manifest as soon as it is measured).
"""

from __future__ import annotations

import datetime
import hashlib
import io
import json
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..experiment.configs import CONFIGS
from ..experiment.runs import datasets_for, train
from ..learn.data import FASHION_FINE_TO_COARSE, load
from ..measure.evaluation import extract_features, pca_stages
from ..measure.geometry import (
    between_class_share,
    cluster_balance,
    linear_cka,
    linear_predictability,
    size_entropy,
)
from ..measure.groupings import grouping_ncc, partition_index, partitions
from ..measure.metrics import (
    effective_rank,
    linear_probe,
    ncc_accuracy,
    whitened_ncc_accuracy,
    zca_whitener,
)
from ..measure.targets import random_function_targets
from ..profiles import get_profile
from ..runtime import provenance

__all__ = [
    "DESIGN",
    "LONG_TAIL",
    "MATCH_MARGIN",
    "MATCHED",
    "GARMENT",
    "ImageEvidence",
    "folder",
    "matched_groupings",
    "measure_run",
    "build_images",
    "centre_plane",
    "class_size_entropy",
    "build_views",
    "load_evidence",
    "compare_run",
    "ImageMismatch",
]

# The long-tailed training set: the largest class has 10 times the images of the smallest
# (a power law over the classes in label order), 14,000 images in all as in the balanced one.
LONG_TAIL = 10.0
# Garment grouping of Fashion-MNIST's classes, as group labels of sizes 4, 3, 2, 1 (upper body,
# footwear, trousers and dresses, bags): the row of the partition table it is.
GARMENT = tuple(int(g) for g in torch.tensor([0, 2, 1, 3])[torch.tensor(FASHION_FINE_TO_COARSE)])
SIZES = (4, 3, 2, 1)
# The matched control: the groupings whose raw coarse NCC on the untrained networks (last stage,
# mean over seeds) is closest to the garment grouping's own. First written as "within 1 point";
# on the untrained networks (before any trained network was read) no grouping is: the garment
# grouping is the most coherent of all 12,600, the next one 1.2 points below. So the control is
# the MATCHED closest, and MATCH_MARGIN stays as what is reported (how many lie within it).
MATCH_MARGIN = 0.01
MATCHED = 20
MATCH_SEEDS = tuple(range(8))
MATCHED_PROBES = 5  # the matched groupings (closest first) also scored with a probe
RANDOM_FUNCTIONS = 5  # random-function targets (k-means of random projections of the pixels)
FIGURE_IMAGES = 60  # per class, for the two-dimensional views of chapter 05b (build_views)
EQUAL_DIM = 16  # the narrowest stage's width: every stage compared in 16 dimensions

# (configurations, long-tailed?, seeds), in build order: a build stopped early has what the
# earlier claims need. Phase 1: the 2×2 of VICReg's terms and supervised (claims 1, 2, depth,
# hierarchy, mechanism); phase 2: VICReg and supervised on long-tailed images (the
# uniform-cluster-prior test); phase 3: SimCLR, balanced and long-tailed seed by seed; phase 4:
# seeds for power. Within a phase, seed by seed, so that a stopped phase pairs its runs.
DESIGN = (
    (("VICReg", "regularization only", "invariance only", "supervised"), (False,), range(8)),
    (("VICReg", "supervised"), (True,), range(8)),
    (("SimCLR",), (False, True), range(8)),
    (("VICReg", "supervised"), (False,), range(8, 24)),
)
# The configurations whose runs also score the matched groupings and the figure views.
HIERARCHY = ("VICReg", "supervised")
FIGURES = ("VICReg", "regularization only", "invariance only", "supervised")


def _profile(long_tailed: bool):
    prof = get_profile("reference")
    return prof.replace(name="reference-lt", imbalance=LONG_TAIL) if long_tailed else prof


def folder(root: Path | None = None) -> Path:
    """Where the per-image evidence lives (``sslkit/evidence/images``)."""
    return (root or Path(__file__).resolve().parent.parent / "evidence") / "images"


def _order():
    """Every (configuration, long-tailed, seed) of :data:`DESIGN`, in build order (seed by seed
    within a phase, so that a stopped phase has the same seeds for each configuration)."""
    return [
        (c, lt, s) for configs, lts, seeds in DESIGN for s in seeds for c in configs for lt in lts
    ]


def _slug(config: str, long_tailed: bool, seed: int) -> str:
    return f"{config.replace(' ', '_')}{'-lt' if long_tailed else ''}-{seed}"


def _eval_sets():
    prof = get_profile("reference")
    _, eval_train, _ = datasets_for(prof)
    test = load(prof.dataset, "test")
    return eval_train, test


def _features(net, eval_train, test):
    mean, std = eval_train.mean_std()
    return (
        extract_features(net, eval_train.images, mean, std, stages=True, autocast=False),
        extract_features(net, test.images, mean, std, stages=True, autocast=False),
    )


def _untrained(seed: int):
    """The untrained network of ``seed`` (the initial weights of every run of that seed, its
    BatchNorm statistics measured on the evaluation-train images)."""
    return train("supervised", get_profile("reference"), seed=seed, epochs=0).backbone_at(0)


def matched_groupings(seeds=MATCH_SEEDS) -> dict:
    """The groupings matched to the garment grouping on the *untrained* networks only (no trained
    network is read): raw coarse NCC of every partition of the classes into groups of sizes
    4, 3, 2, 1 (12,600) at the last stage, averaged over ``seeds``; matched: the
    :data:`MATCHED` closest to the garment grouping's own (how many lie within
    :data:`MATCH_MARGIN` is reported)."""
    eval_train, test = _eval_sets()
    table = partitions(SIZES)
    garment = partition_index(GARMENT, table)
    total = torch.zeros(len(table), dtype=torch.float64)
    for seed in seeds:
        xtr, xte = _features(_untrained(seed), eval_train, test)
        total += (
            grouping_ncc(xtr[-1], eval_train.labels, xte[-1], test.labels, table).double().mean(1)
        )
    acc = total / len(seeds)
    gap = (acc - acc[garment]).abs()
    gap[garment] = float("inf")
    close = torch.argsort(gap)[:MATCHED]
    return dict(
        garment=garment,
        garment_untrained=float(acc[garment]),
        all_untrained=float(acc.mean()),
        rank=int((acc > acc[garment]).sum()),
        matched=close.tolist(),
        matched_untrained=acc[close].tolist(),
        within_margin=int((gap <= MATCH_MARGIN).sum()),
        seeds=list(seeds),
        margin=MATCH_MARGIN,
    )


# The classes of chapter 05b's picture (T-shirt/top, pullover, sneaker, bag): two that an
# untrained network confuses, two it does not.
VIEW_CLASSES = (0, 2, 7, 8)


def centre_plane(xtr, ytr, xte, yte, classes=VIEW_CLASSES, whiten: bool = False) -> np.ndarray:
    """The test images of ``classes`` in the plane of their class centres: what NCC sees.

    NCC compares ``‖x − μ_a‖² − ‖x − μ_b‖²``, which depends only on ``x``'s projection on the
    span of the centres' differences, so the top two principal directions of the (training)
    centres of a few classes show exactly the geometry NCC decides on; an orthonormal
    projection, in units of the classes' mean within-class spread in that plane.
    ``whiten``: the same after ZCA whitening fitted on all training features (what whitened
    NCC sees). Returns an N×2 float16 array (N: the test images of ``classes``)."""
    xtr, xte = xtr.double(), xte.double()
    if whiten:
        mu, w = zca_whitener(xtr)
        xtr, xte = (xtr - mu) @ w, (xte - mu) @ w
    keep_tr = torch.isin(ytr, torch.tensor(classes))
    keep_te = torch.isin(yte, torch.tensor(classes))
    centres = torch.stack([xtr[ytr == c].mean(0) for c in classes])
    middle = centres.mean(0)
    _, _, vt = torch.linalg.svd(centres - middle, full_matrices=False)
    basis = vt[:2].T
    z_tr = (xtr[keep_tr] - middle) @ basis
    spread = torch.stack([z_tr[ytr[keep_tr] == c].std(0) for c in classes]).pow(2).mean().sqrt()
    return (((xte[keep_te] - middle) @ basis) / spread).numpy().astype(np.float16)


def build_views(root: Path | None = None, seed: int = 0) -> dict:
    """Chapter 05b's picture, from the train cache: for seed ``seed`` of each of
    :data:`FIGURES` (and its untrained network), the first :data:`FIGURE_IMAGES` test images of
    each of :data:`VIEW_CLASSES` in their centre plane, raw and whitened
    (:func:`centre_plane`); written to ``views.npz`` with its SHA-256 in the manifest."""
    root = folder(root)
    eval_train, test = _eval_sets()
    keep = torch.cat([torch.nonzero(test.labels == c)[:FIGURE_IMAGES, 0] for c in VIEW_CLASSES])
    sub_y = test.labels[keep]
    arrays = {"labels": sub_y.numpy().astype(np.uint8)}
    prof = _profile(False)
    for config in FIGURES:
        method, loss = CONFIGS[config]
        run = train(method, prof, seed=seed, loss=loss)
        for epoch in (0, run.epochs[-1]):
            if epoch == 0 and config != FIGURES[0]:
                continue  # one untrained network: every configuration of a seed starts from it
            name = "untrained" if epoch == 0 else config
            xtr, xte = _features(run.backbone_at(epoch), eval_train, test)
            for whiten in (False, True):
                arrays[f"{name}|{'whitened' if whiten else 'raw'}"] = centre_plane(
                    xtr[-1], eval_train.labels, xte[-1][keep], sub_y, whiten=whiten
                )
    path = root / "views.npz"
    np.savez_compressed(path, **arrays)
    manifest = _manifest(root)
    manifest["views"] = dict(sha256=_sha(path), seed=seed, classes=list(VIEW_CLASSES))
    _write_manifest(root, manifest)
    return arrays


def _bits(correct: torch.Tensor) -> np.ndarray:
    return np.packbits(correct.cpu().numpy().astype(bool))


def _rulers(xtr, ytr, xte, yte) -> dict:
    """Per-image correctness on each ruler."""
    return dict(
        ncc=ncc_accuracy(xte, yte, xtr, ytr, per_sample=True),
        whitened_ncc=whitened_ncc_accuracy(xte, yte, xtr, ytr, per_sample=True),
        probe=linear_probe(xtr, ytr, xte, yte, per_sample=True),
    )


def measure_run(run, config: str, matched: dict, untrained_other=None) -> tuple[dict, list]:
    """Everything the per-image evidence keeps of one trained run: ``(arrays, values)``, the
    packed per-image bits (and counts) by name, and a list of value rows
    ``(epoch, stage, target, metric, dim, value)``."""
    eval_train, test = _eval_sets()
    ytr, yte = eval_train.labels, test.labels
    arrays, values = {}, []
    ends = (0, run.epochs[-1])
    coarse = torch.tensor(GARMENT)
    table = partitions(SIZES)
    rf = [
        random_function_targets(eval_train.images, test.images, k=10, seed=d)
        for d in range(RANDOM_FUNCTIONS)
    ]
    feats = {}
    for epoch in run.epochs:
        xtr, xte = _features(run.backbone_at(epoch), eval_train, test)
        feats[epoch] = (xtr, xte)
        last = len(xtr) - 1
        for target, (a, b) in dict(fine=(ytr, yte), coarse=(coarse[ytr], coarse[yte])).items():
            for ruler, correct in _rulers(xtr[-1], a, xte[-1], b).items():
                values.append((epoch, last, target, ruler, "full", correct.double().mean().item()))
                if epoch in ends:
                    arrays[f"{target}/{ruler}/{last}/full/{epoch}"] = _bits(correct)
        rf_correct = torch.stack(
            [ncc_accuracy(xte[-1], t, xtr[-1], r, per_sample=True) for r, t in rf]
        )
        values.append(
            (epoch, last, "random_function", "ncc", "full", rf_correct.double().mean().item())
        )
        if epoch in ends:
            arrays[f"random_function/ncc/{last}/full/{epoch}"] = np.packbits(
                rf_correct.cpu().numpy().astype(bool), axis=1
            )
        geometry = _geometry(feats[0], (xtr, xte), yte, run.seed, untrained_other, epoch)
        for metric, value in geometry.items():
            values.append((epoch, last, "fine", metric, "full", value))
    train_set = datasets_for(run.profile)[0]
    sample = train_set.images[
        torch.randperm(len(train_set), generator=torch.Generator().manual_seed(run.seed))[:5000]
    ]
    for epoch in ends:
        xtr, xte = feats[epoch]
        mean, std = eval_train.mean_std()
        own = extract_features(run.backbone_at(epoch), sample, mean, std, autocast=False)
        values.append((epoch, len(xtr) - 1, "fine", "cluster_balance_train", "full",
                       cluster_balance(own, 10, seed=run.seed)))  # fmt: skip
        ptr, pte = pca_stages(xtr, xte, dim=EQUAL_DIM)
        for stage in range(len(xtr)):
            for dim, (a, b) in dict(full=(xtr, xte), equal=(ptr, pte)).items():
                if dim == "full" and stage == len(xtr) - 1:
                    continue  # stored above
                for ruler, correct in _rulers(a[stage], ytr, b[stage], yte).items():
                    values.append(
                        (epoch, stage, "fine", ruler, dim, correct.double().mean().item())
                    )
                    arrays[f"fine/{ruler}/{stage}/{dim}/{epoch}"] = _bits(correct)
        if config in HIERARCHY and not run.profile.imbalance:
            _groupings(
                arrays, values, xtr[-1], ytr, xte[-1], yte, table, matched, epoch, len(xtr) - 1
            )
    return arrays, values


def _geometry(untrained, trained, yte, seed: int, untrained_other, epoch: int) -> dict:
    """The last stage's geometry at one snapshot: between-class share, effective rank, R² and
    CKA from the untrained network (and, at epoch 0, from another untrained network), cluster
    balance of the test features."""
    (x0tr, x0te), (xtr, xte) = untrained, trained
    geometry = dict(
        between_class_share=between_class_share(xte[-1], yte),
        erank=effective_rank(xte[-1]),
        r2_from_untrained=linear_predictability(x0tr[-1], xtr[-1], x0te[-1], xte[-1]),
        cka_untrained=linear_cka(x0te[-1], xte[-1]),
        cluster_balance=cluster_balance(xte[-1], 10, seed=seed),
    )
    if untrained_other is not None and epoch == 0:
        otr, ote = untrained_other
        geometry["r2_from_other_untrained"] = linear_predictability(
            otr[-1], xtr[-1], ote[-1], xte[-1]
        )
        geometry["cka_other_untrained"] = linear_cka(ote[-1], xte[-1])
    return geometry


def _groupings(arrays, values, xtr, ytr, xte, yte, table, matched, epoch, stage):
    """The garment grouping against every grouping of its sizes and the matched ones."""
    idx = torch.tensor(matched["matched"], dtype=torch.long)
    for ruler, (a, b) in dict(ncc=(xtr, xte), whitened_ncc=_whitened(xtr, xte)).items():
        every = grouping_ncc(a, ytr, b, yte, table)
        values.append((epoch, stage, "every_grouping", ruler, "full", every.double().mean().item()))
        if len(idx):
            arrays[f"matched/{ruler}/{epoch}"] = every[idx].sum(0).numpy().astype(np.uint16)
            for p in matched["matched"]:
                values.append(
                    (epoch, stage, f"grouping@{p}", ruler, "full", every[p].double().mean().item())
                )
    probed = idx[:MATCHED_PROBES]
    if len(probed):
        hits = torch.stack(
            [linear_probe(xtr, table[p][ytr], xte, table[p][yte], per_sample=True) for p in probed]
        )
        arrays[f"matched/probe/{epoch}"] = np.packbits(hits.numpy().astype(bool), axis=1)


def _whitened(xtr, xte):
    mu, w = zca_whitener(xtr)
    return (xtr.double() - mu) @ w, (xte.double() - mu) @ w


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _manifest(root: Path) -> dict:
    path = root / "manifest.json"
    return json.loads(path.read_text()) if path.exists() else {}


def _write_manifest(root: Path, manifest: dict) -> None:
    tmp = root / "manifest.json.tmp"
    tmp.write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    os.replace(tmp, root / "manifest.json")


def build_images(root: Path | None = None, limit: int | None = None, log=print) -> dict:
    """Train (or load from the train cache), measure and store every run of :data:`DESIGN` the
    store lacks, in order; ``limit``: at most this many runs. Returns the manifest."""
    root = folder(root)
    (root / "runs").mkdir(parents=True, exist_ok=True)
    manifest = _manifest(root)
    if "matched" not in manifest:
        log("matching groupings to the garment grouping on the untrained networks …")
        manifest["matched"] = matched_groupings()
        manifest["design"] = dict(
            profile="reference", test_images="all 10,000", long_tail=LONG_TAIL,
            equal_dim=EQUAL_DIM, random_functions=RANDOM_FUNCTIONS,
        )  # fmt: skip
        _write_manifest(root, manifest)
    runs = manifest.setdefault("runs", {})
    todo = [r for r in _order() if _slug(*r) not in runs]
    log(f"{len(todo)} runs to build; {len(runs)} stored")
    eval_train, test = _eval_sets()
    for i, (config, lt, seed) in enumerate(todo[:limit], 1):
        started = time.perf_counter()
        method, loss = CONFIGS[config]
        prof = _profile(lt)
        run = train(method, prof, seed=seed, loss=loss)
        trained_s = time.perf_counter() - started
        other = _features(_untrained(seed + 100), eval_train, test)
        arrays, values = measure_run(run, config, manifest["matched"], untrained_other=other)
        frame = pd.DataFrame(values, columns=["epoch", "stage", "target", "metric", "dim", "value"])
        buf = io.StringIO()
        frame.to_csv(buf, index=False, float_format="%.6g")
        arrays["values.csv"] = np.frombuffer(buf.getvalue().encode(), dtype=np.uint8)
        slug = _slug(config, lt, seed)
        path = root / "runs" / f"{slug}.npz"
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez_compressed(tmp, **{k.replace("/", "|"): v for k, v in arrays.items()})
        os.replace(tmp, path)
        runs[slug] = dict(
            config=config, long_tailed=lt, seed=seed, key=run.key, sha256=_sha(path),
            seconds=round(run.seconds, 1),
            measure_seconds=round(time.perf_counter() - started - trained_s, 1),
            date=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"), **provenance(),
        )  # fmt: skip
        _write_manifest(root, manifest)
        log(f"[{i}/{len(todo)}] {slug}: {time.perf_counter() - started:.0f} s")
    return manifest


class ImageEvidence:
    """The stored per-image evidence, read-only: ``bits(config, name, seeds, long_tailed)`` gives
    an S×N array of one stored per-image result, ``values()`` the table of every value."""

    def __init__(self, root: Path | None = None, check: bool = True):
        self.root = folder(root)
        self.manifest = _manifest(self.root)
        if not self.manifest:
            raise FileNotFoundError(f"no per-image evidence at {self.root}")
        self._arrays = {}
        for slug, entry in self.manifest.get("runs", {}).items():
            path = self.root / "runs" / f"{slug}.npz"
            if not path.exists():
                raise FileNotFoundError(
                    f"{path} is named in the manifest but missing: the per-image evidence is "
                    "incomplete; restore it with git (`git checkout sslkit/evidence/images`) or "
                    "rebuild it with `python -m sslkit evidence images`"
                )
            if check and _sha(path) != entry["sha256"]:
                raise ValueError(
                    f"{path} does not match the SHA-256 its manifest records: the per-image "
                    "evidence was changed by hand or partly written; restore it with git "
                    "(`git checkout sslkit/evidence/images`) or rebuild that run"
                )

    def views(self) -> dict:
        """Chapter 05b's picture (:func:`build_views`): ``{"labels": …, "<network>|raw": N×2,
        "<network>|whitened": N×2}``."""
        path = self.root / "views.npz"
        if _sha(path) != self.manifest.get("views", {}).get("sha256"):
            raise ValueError(f"{path} does not match the SHA-256 its manifest records")
        with np.load(path) as z:
            return {k: z[k] for k in z.files}

    def seeds(self, config: str, long_tailed: bool = False) -> list[int]:
        runs = self.manifest.get("runs", {}).values()
        return sorted(
            e["seed"] for e in runs if e["config"] == config and e["long_tailed"] == long_tailed
        )

    def _load(self, slug: str) -> dict:
        if slug not in self._arrays:
            with np.load(self.root / "runs" / f"{slug}.npz") as z:
                self._arrays[slug] = {k.replace("|", "/"): z[k] for k in z.files}
        return self._arrays[slug]

    def array(self, config: str, seed: int, name: str, long_tailed: bool = False) -> np.ndarray:
        return self._load(_slug(config, long_tailed, seed))[name]

    def bits(self, config: str, name: str, seeds=None, long_tailed: bool = False) -> np.ndarray:
        """S×N 0/1 array of one stored per-image result (``fine/probe/3/full/10``, …)."""
        seeds = self.seeds(config, long_tailed) if seeds is None else seeds
        rows = [np.unpackbits(self.array(config, s, name, long_tailed))[:10_000] for s in seeds]
        return np.stack(rows).astype(float)

    def values(self) -> pd.DataFrame:
        frames = []
        for slug, entry in self.manifest.get("runs", {}).items():
            raw = self._load(slug)["values.csv"].tobytes().decode()
            frames.append(
                pd.read_csv(io.StringIO(raw)).assign(
                    config=entry["config"], long_tailed=entry["long_tailed"], seed=entry["seed"]
                )
            )
        return pd.concat(frames, ignore_index=True)


def load_evidence(root: Path | None = None) -> ImageEvidence:
    """The per-image evidence, its checksums checked."""
    return ImageEvidence(root)


def class_size_entropy(long_tailed: bool) -> float:
    """Normalised entropy of the training set's class sizes (1 when balanced): what a
    clustering of the training images into the classes would score on
    :func:`~sslkit.measure.geometry.size_entropy`."""
    return size_entropy(datasets_for(_profile(long_tailed))[0].labels, 10)


class ImageMismatch(AssertionError):
    """A per-image run re-trained from scratch does not give what the store holds."""


def compare_run(slug: str, arrays: dict, values: pd.DataFrame, root: Path | None = None,
                tolerance: float = 0.04, untrained: float = 2e-3) -> dict:  # fmt: skip
    """Compare a recomputed run with the stored one: every value (relative to its size where it
    exceeds 1, such as an effective rank) and every per-image array (the share of images whose
    result differs), within ``tolerance`` after training and ``untrained`` at epoch 0 (the
    same weights, evaluated again: a borderline image may flip in the last bits). Raises
    :class:`ImageMismatch` naming what differs; returns ``{values, arrays, largest}``."""
    ev = ImageEvidence(root)
    stored = ev._load(slug)
    raw = stored["values.csv"].tobytes().decode()
    old = pd.read_csv(io.StringIO(raw))
    keys = ["epoch", "stage", "target", "metric", "dim"]
    both = old.merge(values, on=keys, how="left", suffixes=("", "_new"))
    scale = both.value.abs().clip(lower=1.0)
    both["difference"] = (both.value_new - both.value).abs() / scale
    limit = both.epoch.map(lambda e: untrained if e == 0 else tolerance)
    bad = [f"{r.target}/{r.metric} stage {r.stage} {r.dim} epoch {r.epoch}: stored "
           f"{r.value:.4f}, recomputed {r.value_new:.4f}"
           for r in both[both.value_new.isna() | (both.difference > limit)].itertuples()
           ]  # fmt: skip
    largest = float(both.difference.max())
    compared = 0
    for name, array in stored.items():
        if name == "values.csv" or name.startswith("view/"):
            continue
        if name not in arrays:
            bad.append(f"{name}: not recomputed")
            continue
        a, b = np.asarray(array), np.asarray(arrays[name])
        if a.dtype == np.uint8 and "matched/ncc" not in name and "matched/whitened" not in name:
            a, b = np.unpackbits(a), np.unpackbits(b)
        share = float(np.mean(a != b)) if a.shape == b.shape else 1.0
        compared += a.size
        epoch = int(name.rsplit("/", 1)[-1]) if name.rsplit("/", 1)[-1].isdigit() else 1
        if share > (untrained if epoch == 0 else tolerance):
            bad.append(f"{name}: {share:.2%} of the entries differ")
    if bad:
        raise ImageMismatch(
            f"{slug}: {len(bad)} stored results differ from a fresh run:\n  "
            + "\n  ".join(bad[:10])
            + "\nThe code or the data changed since the per-image evidence was built: rebuild "
            "that run (`python -m sslkit evidence images`) or find the change."
        )
    return dict(values=len(both), arrays=compared, largest=largest)
