"""Train-or-load one configuration × seed, and evaluate a trained network; both cached.

- :func:`train` trains one method under one profile and seed, or loads it from the
  *train* cache. A :class:`Run` keeps the loss history and a snapshot of the backbone at
  every evaluation epoch of the profile (epoch 0 is the untrained network: the control of
  most findings).
- :meth:`Run.evaluate` measures metrics on targets at those snapshots, cached in the
  *evaluate* cache, so a new target or metric never retrains a network.

The chapters and the CLI call the same functions, so they share the cache.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import inspect
import math
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from ..cache import cached, config_hash
from ..learn import data as data_mod
from ..learn.distributed import from_main, is_main, world_size
from ..learn.loop import fit
from ..learn.methods import Method, canonical_name, loss_function, make_method
from ..learn.models import SSLModel, build_backbone
from ..measure.evaluation import (
    ACCURACIES,
    METRICS,
    calibrate_batchnorm,
    evaluate_features,
    extract_features,
    measure_sample_ncc,
    pca_stages,
    project_stages,
    view_features,
)
from ..measure.metrics import view_tightness
from ..measure.targets import make_targets
from ..profiles import Profile, get_profile
from ..runtime import register_cache
from ..seeds import EVAL_SUBSET, TRAIN_SUBSET, generator, stream_seed
from .cost import warn_if_long

__all__ = [
    "Run",
    "train",
    "train_config",
    "filled_loss",
    "datasets_for",
    "build_model",
    "default_device",
    "SAMPLE_LEVEL_IMAGES",
    "SAMPLE_LEVEL_VIEWS",
    "SAMPLE_METRICS",
    "TRAIN_FIELDS",
    "evaluation_subset",
    "current_subset",
    "NoSubsets",
]

# Sample-level NCC: this many test images, this many views of each for the centres (and again for
# the queries).
SAMPLE_LEVEL_IMAGES = 256
SAMPLE_LEVEL_VIEWS = 8
# What a sample-level evaluation measures on those views: sample-level NCC
# (:func:`~sslkit.metrics.sample_ncc`) and view tightness (:func:`~sslkit.metrics.view_tightness`).
SAMPLE_METRICS = ("sample_ncc", "view_tightness")


class NoSubsets(KeyError):
    """A value asked for on an evaluation subset that the run does not keep on subsets (a live
    run, a metric that is not an accuracy, a floor measured on all images only)."""


# The evaluation subset (split "test@k") of the enclosing evaluation_subset block, which the
# test values a run answers come from; None: all the test images.
_CURRENT_SUBSET: contextvars.ContextVar[int | None] = contextvars.ContextVar("subset", default=None)


@contextlib.contextmanager
def evaluation_subset(k: int):
    """Within this block, every ``"test"`` value a run answers is the one of evaluation subset
    ``k`` (split ``"test@k"``, :func:`~sslkit.evaluation.evaluate_features`): a finding's
    measurement repeated on each subset shows how much it owes to which test images were drawn.
    A run without the subset's values raises :class:`NoSubsets`; train values are unchanged."""
    token = _CURRENT_SUBSET.set(int(k))
    try:
        yield
    finally:
        _CURRENT_SUBSET.reset(token)


def current_subset() -> int | None:
    """The evaluation subset of the enclosing :func:`evaluation_subset` block, or ``None``."""
    return _CURRENT_SUBSET.get()


# The profile settings that change a trained network (the train cache key); eval_size only changes
# evaluations.
TRAIN_FIELDS = (
    "dataset",
    "backbone",
    "widths",
    "train_size",
    "epochs",
    "batch_size",
    "lr",
    "weight_decay",
    "projector",
    "eval_every",
)


# Features of recently evaluated snapshots, kept in memory so that several metrics and
# targets of one snapshot extract them once (oldest dropped first; a few MB each on `cpu`).
_FEATURES: dict = register_cache({})
_FEATURES_KEPT = 32


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


_DATA: dict = register_cache({})  # (name, split) -> Dataset: one copy, however it was asked for


def _load(name: str, split: str, download: bool = True) -> data_mod.Dataset:
    if (name, split) not in _DATA:
        _DATA[name, split] = data_mod.load(name, split, download=download)
    return _DATA[name, split]


def datasets_for(profile: Profile, download: bool = True):
    """(SSL training set, evaluation train set, evaluation test set) of a profile, the same
    objects on every call (so each computes its fingerprint and statistics once).

    The evaluation train set is a fixed subset of the images SSL trained on. ``download``:
    allow a download when the files are nowhere on this machine.
    """
    key = (profile.dataset, profile.train_size, profile.eval_size, profile.imbalance)
    if key not in _PROFILE_DATASETS:
        _PROFILE_DATASETS[key] = _datasets_for(profile, download)
    return _PROFILE_DATASETS[key]


# (dataset, train_size, eval_size) -> the three datasets of datasets_for
_PROFILE_DATASETS: dict = register_cache({})


def _datasets_for(profile: Profile, download: bool):
    """:func:`datasets_for`, computed: the fixed subsets, and the check of ``eval_size``."""
    full = _load(profile.dataset, "train", download)
    train_set = full.subset(profile.train_size, seed=TRAIN_SUBSET)
    test = _load(profile.dataset, "test", download).subset(profile.eval_size, seed=EVAL_SUBSET)
    if profile.eval_size is not None and profile.eval_size < 5 * train_set.num_classes:
        raise ValueError(
            f"profile {profile.name!r}: eval_size {profile.eval_size} leaves fewer than 5 images "
            f"per class of {train_set.num_classes}; the metrics would measure the draw, not the "
            "features. "
            f"Use eval_size ≥ {5 * train_set.num_classes}, or None for all images"
        )
    eval_train = train_set.subset(profile.eval_size, seed=EVAL_SUBSET)
    if profile.imbalance is not None:  # the same evaluation images, long-tailed training
        train_set = data_mod.long_tailed(full, profile.train_size, profile.imbalance, TRAIN_SUBSET)
    return train_set, eval_train, test


def build_model(method: Method, profile: Profile, dataset) -> SSLModel:
    """Backbone of the profile plus the method's head."""
    backbone = build_backbone(
        profile.backbone, dataset.channels, dataset.images.shape[-1], profile.widths
    )
    return SSLModel(backbone, method.make_head(backbone.out_dim))


@dataclass
class Run:
    """One trained network: configuration, final model, loss history and backbone snapshots.

    ``snapshots[epoch]`` is the backbone's state at each evaluation epoch; epoch 0 is the
    untrained network of the same seed (the same for every method of one seed).
    """

    method: str
    profile: Profile
    seed: int
    loss: dict
    model: SSLModel
    history: pd.DataFrame
    snapshots: dict[int, dict] = field(repr=False)
    key: str = ""
    device: torch.device = field(default_factory=default_device, repr=False)
    seconds: float = math.nan  # training's wall time on the machine that trained it
    cache: bool = True  # read and write the evaluate cache (train(cache=False): neither)
    _hashes: dict = field(default_factory=dict, repr=False)  # epoch -> weights hash

    @property
    def backbone(self):
        return self.model.backbone

    @property
    def stage_names(self) -> tuple[str, ...]:
        return self.backbone.stage_names

    @property
    def out_dim(self) -> int:
        """Width of the backbone's last stage (the features the findings measure)."""
        return self.backbone.out_dim

    @property
    def stage_dims(self) -> tuple[int, ...]:
        """Width of each stage of the backbone, shallowest first (the dimension of the
        features each stage's measurements see)."""
        return self.backbone.stage_dims

    @property
    def last_stage(self) -> str:
        return self.backbone.stage_names[-1]

    @property
    def epochs(self) -> list[int]:
        return sorted(self.snapshots)

    def backbone_at(self, epoch: int):
        """A copy of the backbone with its weights at ``epoch`` (one of :attr:`epochs`), in eval
        mode.

        At epoch 0 (the untrained network, the control) its BatchNorm statistics are
        measured on the evaluation training images (:func:`~sslkit.evaluation.calibrate_batchnorm`):
        otherwise the control would lack what any network gets from seeing the data once.
        """
        if epoch not in self.snapshots:
            raise KeyError(f"no snapshot at epoch {epoch}; this run has {self.epochs}")
        net = self.new_backbone()
        net.load_state_dict(self.snapshots[epoch])
        net = net.to(self.device).eval()
        if epoch == 0:
            _, eval_train, _ = datasets_for(self.profile)
            net = calibrate_batchnorm(net, eval_train.images, *eval_train.mean_std())
        return net

    def losses(self, phase: str = "epoch") -> pd.DataFrame:
        """Loss terms per epoch (or per ``step``), one column per term."""
        df = self.history[self.history.phase == phase]
        key = "epoch" if phase == "epoch" else "step"
        return df.pivot_table(index=key, columns="metric", values="value")

    def collapsed(self) -> bool:
        """Whether the trainer recorded a collapse warning (embedding spread below its
        threshold)."""
        return bool((self.history.metric == "collapse").any())

    def evaluate(
        self,
        targets=("fine", "coarse"),
        metrics=("ncc", "cdnv"),
        epochs=None,
        sample_level: bool = False,
        dim=None,
        subsets: int = 0,
    ) -> pd.DataFrame:
        """Metrics of this run's backbone snapshots at every stage, one tidy row per value.

        Each (epoch, target, metric) is cached on its own in the *evaluate* cache, so asking
        for one more target or metric computes only that one.

        Parameters
        ----------
        targets : names known to :func:`sslkit.targets.make_targets` (``"fine"``, ``"coarse"``,
            ``"random_0.5"``, ``"coarse_random"``, …)
        metrics : subset of ``("ncc", "cdnv", "probe", "knn")``
        epochs : which snapshots (default: all of :attr:`epochs`)
        sample_level : also measure sample-level NCC and view tightness (``target="sample"``,
            ``metric`` one of :data:`SAMPLE_METRICS`)
        dim : measure every stage after a fixed random projection to ``dim`` dimensions
            (``"smallest"``: the smallest stage width; :func:`~sslkit.evaluation.project_stages`),
            or, with ``"pca"``, on its top principal directions, as many as the smallest stage
            width (:func:`~sslkit.evaluation.pca_stages`), to compare stages at equal dimension
        subsets : also score the accuracies on this many evaluation subsets of the test images
            (splits ``"test@k"``; see :func:`~sslkit.evaluation.evaluate_features`)

        Returns
        -------
        DataFrame with columns ``epoch, stage, target, split, metric, value``.
        """
        unknown = set(metrics) - set(METRICS)
        if unknown:
            raise ValueError(f"unknown metrics {sorted(unknown)}; choose from {METRICS}")
        if not (targets and metrics) and not sample_level:
            raise ValueError(
                "nothing to evaluate: give at least one target and one metric "
                f"(metrics from {METRICS}), or sample_level=True"
            )
        epochs = self.epochs if epochs is None else list(epochs)
        frames = [
            self._evaluate_epoch(e, tuple(targets), tuple(metrics), sample_level, dim, subsets)
            for e in epochs
        ]
        return pd.concat(frames, ignore_index=True)

    def new_backbone(self):
        """A new network of this run's architecture on its device, with random weights from
        torch's generator: e.g. ``make_backbone`` of :func:`~sslkit.targets.make_targets`."""
        train_set, _, _ = datasets_for(self.profile)
        net = build_backbone(
            self.profile.backbone,
            train_set.channels,
            train_set.images.shape[-1],
            self.profile.widths,
        )
        return net.to(self.device)

    def _snapshot_key(self, epoch: int) -> dict:
        """What identifies the evaluations of one snapshot: its weights (a hash of their
        values), the evaluation images (their fingerprints), the seed (random targets and
        projections draw from its streams), and whether BatchNorm is calibrated on the data
        (epoch 0 only). Every method of one seed starts from the same weights, so their
        epoch-0 evaluations are one; a network trained again gets evaluated again."""
        if epoch not in self._hashes:
            self._hashes[epoch] = data_mod.fingerprint_state(self.snapshots[epoch])
        _, eval_train, eval_test = datasets_for(self.profile)
        return dict(
            weights=self._hashes[epoch],
            seed=self.seed,
            data=[eval_train.fingerprint(), eval_test.fingerprint()],
            batchnorm="calibrated on the evaluation images" if epoch == 0 else "trained",
        )

    def _evaluate_epoch(
        self, epoch, targets, metrics, sample_level, dim=None, subsets=0
    ) -> pd.DataFrame:
        """The rows of one snapshot: every target × metric at every stage, then the sample-level
        metrics; each read from the *evaluate* cache or computed, the features extracted once."""
        snapshot = self._snapshot_key(epoch)
        base = _with_projection(snapshot, dim)
        features = _SnapshotFeatures(self, epoch, snapshot, dim)
        frames = [
            self._evaluate_target(features, base, name, metric, subsets)
            for name in targets
            for metric in metrics
        ]
        if sample_level:
            frames += [self._evaluate_sample(epoch, base, metric) for metric in SAMPLE_METRICS]
        out = pd.concat(frames, ignore_index=True)
        out.insert(0, "epoch", epoch)
        return out[["epoch", "stage", "target", "split", "metric", "value"]]

    def _evaluate_target(self, features, base: dict, name: str, metric: str, subsets: int):
        """One target × metric at every stage of a snapshot (cached)."""
        key = {**base, "target": name, "metric": metric}
        if subsets and metric in ACCURACIES:  # keys without subsets stay as they were
            key["subsets"] = subsets
        compute = functools.partial(self._target_rows, features, name, metric, subsets)
        rows = cached("evaluate", key, compute, enabled=self.cache, validate=_finite_rows)
        return rows["rows"].assign(target=name)

    def _target_rows(self, features, name: str, metric: str, subsets: int) -> dict:
        """:meth:`_evaluate_target`, computed: the targets, then the metric on the features."""
        _, eval_train, eval_test = datasets_for(self.profile)
        labels = make_targets(
            name, eval_train, eval_test, seed=self.seed, make_backbone=self.new_backbone
        )
        xtr, xte = features.seen()
        rows = evaluate_features(xtr, xte, labels, self.stage_names, metric, subsets=subsets)
        return {"rows": rows}

    def _evaluate_sample(self, epoch: int, base: dict, metric: str) -> pd.DataFrame:
        """One of :data:`SAMPLE_METRICS` at the last stage of a snapshot (cached); the views are
        the method's, so the method is part of the key."""
        key = {
            **base,
            "method": self.method,
            "target": "sample",
            "metric": metric,
            "images": SAMPLE_LEVEL_IMAGES,
            "views": SAMPLE_LEVEL_VIEWS,
        }
        compute = functools.partial(self._sample_rows, epoch, metric)
        rows = cached("evaluate", key, compute, enabled=self.cache, validate=_finite_rows)
        return rows["rows"].assign(target="sample")

    def _sample_rows(self, epoch: int, metric: str) -> dict:
        """:meth:`_evaluate_sample`, computed on :data:`SAMPLE_LEVEL_VIEWS` views of each of the
        first :data:`SAMPLE_LEVEL_IMAGES` test images, drawn from the ``sample_views`` stream."""
        _, eval_train, eval_test = datasets_for(self.profile)
        net = self.backbone_at(epoch)
        g = generator(self.seed, "sample_views", device=self.device)
        meth = make_method(self.method, eval_train, projector=self.profile.projector, **self.loss)
        images = eval_test.images[:SAMPLE_LEVEL_IMAGES]
        if metric == "sample_ncc":
            value = measure_sample_ncc(
                net, images, meth.view_augment, n_views=SAMPLE_LEVEL_VIEWS, generator=g
            )
        else:  # the same views as sample-level NCC's centres (same stream)
            value = view_tightness(
                view_features(net, images, meth.view_augment, SAMPLE_LEVEL_VIEWS, g)
            )
        row = dict(stage=self.last_stage, split="test", metric=metric, value=value)
        return {"rows": pd.DataFrame([row])}

    def value(
        self,
        metric: str,
        epoch: int,
        split: str = "test",
        target: str = "fine",
        stage: str | None = None,
        dim=None,
    ) -> float:
        """One evaluated number, e.g. ``run.value("ncc", run.epochs[-1])``; ``stage`` defaults to
        the last."""
        if split == "test" and current_subset() is not None:
            raise NoSubsets(
                "a live run scores evaluation subsets only when asked "
                "(run.evaluate(..., subsets=k)); the evidence store keeps them"
            )
        stage = stage or self.last_stage
        sample = metric in SAMPLE_METRICS
        df = self.evaluate(
            targets=() if sample else (target,),
            metrics=() if sample else (metric,),
            epochs=[epoch],
            sample_level=sample,
            dim=dim,
        )
        df = df[(df.metric == metric) & (df.split == split) & (df.stage == stage)]
        if df.empty:
            raise KeyError(f"no {metric}/{split}/{target}/{stage} at epoch {epoch}")
        return float(df.value.iloc[0])

    def final(
        self,
        metric: str,
        split: str = "test",
        target: str = "fine",
        stage: str | None = None,
        dim=None,
    ) -> float:
        """The metric at the last epoch."""
        return self.value(metric, self.epochs[-1], split, target, stage, dim)

    def initial(
        self,
        metric: str,
        split: str = "test",
        target: str = "fine",
        stage: str | None = None,
        dim=None,
    ) -> float:
        """The metric at epoch 0: the untrained network of the same seed."""
        return self.value(metric, 0, split, target, stage, dim)


def _with_projection(snapshot: dict, dim) -> dict:
    """The key of a snapshot's evaluations: the snapshot's, and the projection the metrics see
    the features through (none, a seeded orthonormal one, or PCA; see :meth:`Run.evaluate`)."""
    base = dict(snapshot)
    if dim == "pca":
        base["dim"] = dim
        base["projection"] = "per-stage PCA to the smallest width, fitted on the train features"
    elif dim is not None:
        base["dim"] = dim
        base["projection"] = "orthonormal, seeded by the run's seed"
    return base


@dataclass
class _SnapshotFeatures:
    """The features of one snapshot at every stage, on the evaluation images: extracted when
    first asked for (and kept in memory for the next snapshot evaluations, :data:`_FEATURES`),
    projected once as ``dim`` asks."""

    run: Run
    epoch: int
    snapshot: dict  # Run._snapshot_key(epoch)
    dim: object = None
    _seen: tuple | None = None

    def extracted(self) -> dict[str, list[torch.Tensor]]:
        """``{"train": [...], "test": [...]}``: one N×D tensor per stage of each split."""
        key = (config_hash(self.snapshot), self.run.profile.eval_size)
        if key not in _FEATURES:
            _, eval_train, eval_test = datasets_for(self.run.profile)
            net = self.run.backbone_at(self.epoch)
            mean, std = eval_train.mean_std()
            _FEATURES[key] = {
                "train": extract_features(net, eval_train.images, mean, std, stages=True),
                "test": extract_features(net, eval_test.images, mean, std, stages=True),
            }
            while len(_FEATURES) > _FEATURES_KEPT:
                _FEATURES.pop(next(iter(_FEATURES)))
        return _FEATURES[key]

    def seen(self) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """(train, test) features as the metrics see them (projected once for all targets)."""
        if self._seen is None:
            xtr, xte = self.extracted()["train"], self.extracted()["test"]
            if self.dim == "pca":
                xtr, xte = pca_stages(xtr, xte)
            elif self.dim is not None:
                xtr, xte = project_stages(xtr, xte, self.dim, seed=self.run.seed)
            self._seen = (xtr, xte)
        return self._seen


def _fit_or_explain_memory(prof: Profile, *args, **kwargs):
    """:func:`~sslkit.train.fit`, with an allocator's out-of-memory error turned into a
    ``MemoryError`` that names the settings to lower."""
    try:
        return fit(*args, **kwargs)
    except (RuntimeError, MemoryError) as e:
        text = str(e).lower()
        if (
            not isinstance(e, MemoryError)
            and "out of memory" not in text
            and "can't allocate" not in text
        ):
            raise
        raise MemoryError(
            f"out of memory training on the {prof.name!r} profile (batch_size {prof.batch_size}, "
            f"widths {prof.widths}): lower batch_size (profile.replace(batch_size=...)) or pick a "
            "smaller profile"
        ) from e


def _check_loss_arguments(method: str, loss: dict) -> dict:
    """Loss keywords validated against the loss's signature, numbers finite, as floats, with
    every default filled in (so ``{}`` and the defaults spelled out are one configuration)."""
    fn = loss_function(method)
    if fn is None:
        if loss:
            raise ValueError(f"method {method!r} takes no loss arguments, got {sorted(loss)}")
        return {}
    params = inspect.signature(fn).parameters
    valid = [p for p in params if p not in ("z1", "z2")]
    out = {p: float(params[p].default) for p in valid}  # the defaults, spelled out or not
    for k, v in loss.items():
        if k not in valid:
            raise ValueError(f"unknown loss argument {k!r} for {method}; valid: {', '.join(valid)}")
        try:
            x = float(v)
        except (TypeError, ValueError):
            raise ValueError(f"loss argument {k} must be a number, got {v!r}") from None
        if not math.isfinite(x):
            raise ValueError(f"loss argument {k} must be finite, got {v}")
        out[k] = x
    return out


def filled_loss(method: str, loss: dict | None) -> dict:
    """A configuration's loss arguments as a run stores them: checked, as floats, every default
    filled in (``{}`` and the defaults spelled out are one configuration)."""
    return _check_loss_arguments(canonical_name(method), dict(loss or {}))


def train_config(method: str, profile: Profile, seed: int, loss: dict, data: str) -> dict:
    """The train cache key of one run: the profile settings that change a trained network,
    the method, the seed, the validated loss arguments (defaults filled in) and the
    fingerprint of the training images (:meth:`~sslkit.data.Dataset.fingerprint`). Under
    ``torchrun`` with N > 1 processes, also N: each rank draws its own views and BatchNorm is
    synchronised, so the network is another one than a single process trains (one process
    keeps the key it always had)."""
    loss = _check_loss_arguments(method, dict(loss or {}))
    key = dict(
        method=method,
        profile={k: getattr(profile, k) for k in TRAIN_FIELDS},
        seed=seed,
        loss=loss,
        data=data,
    )
    if profile.imbalance is not None:  # balanced runs keep the key they always had
        key["profile"]["imbalance"] = profile.imbalance
    if world_size() > 1:
        key["processes"] = world_size()
    return key


def train(
    method: str = "vicreg",
    profile: str | Profile | None = None,
    *,
    seed: int = 0,
    loss: dict | None = None,
    epochs: int | None = None,
    cache: bool = True,
    device=None,
    progress: bool | None = None,
    stop_after: int | None = None,
) -> Run:
    """Train ``method`` under ``profile`` with ``seed``, or load the cached network.

    The backbone is snapshotted at epoch 0, every ``profile.eval_every`` epochs and at
    the end; evaluate the snapshots with :meth:`Run.evaluate`.

    Parameters
    ----------
    method : one of :data:`sslkit.methods.METHODS`
    profile : name or :class:`~sslkit.profiles.Profile` (default: ``$SSLKIT_PROFILE``/auto)
    seed : the network's initialisation, shuffling and augmentations (part of the cache key)
    loss : dict, optional
        Loss arguments, e.g. ``{"inv_weight": 0}`` for VICReg without invariance; checked
        against the loss's signature before anything trains.
    epochs : int, optional
        Override the profile's epochs (0 = the untrained network only).
    stop_after : int, optional
        Train only the first epochs of the run, up to this one, on the full run's schedule
        (never cached: it is not the run of the key; see :mod:`sslkit.verify`).
    """
    method = canonical_name(method)  # one spelling, one cache entry
    prof = get_profile(profile)
    if epochs is not None:
        prof = prof.replace(epochs=epochs)
    train_set, _, _ = datasets_for(prof)
    config = train_config(method, prof, seed, loss, train_set.fingerprint())
    device = torch.device(device) if device is not None else default_device()
    job = _Training(method, prof, seed, config["loss"], train_set, device, progress, stop_after)
    result = _train_or_load(job, config, cache=cache and stop_after is None)
    run = job.run(result, config_hash(config))
    run.cache = cache
    return run


@dataclass
class _Training:
    """One run of :func:`train`: what it trains (:meth:`compute`), how a stored one is checked
    (:meth:`check`), and the :class:`Run` either becomes (:meth:`run`)."""

    method: str
    prof: Profile
    seed: int
    loss: dict  # validated, defaults filled in (train_config)
    train_set: data_mod.Dataset
    device: torch.device
    progress: bool | None = None
    stop_after: int | None = None
    meth: Method = field(init=False)
    snap_epochs: list[int] = field(init=False)  # the epochs whose backbone is kept

    def __post_init__(self):
        self.meth = make_method(
            self.method, self.train_set, projector=self.prof.projector, **self.loss
        )
        self.snap_epochs = [
            e for e in self.prof.eval_epochs() if self.stop_after is None or e <= self.stop_after
        ]

    def model(self) -> SSLModel:
        return build_model(self.meth, self.prof, self.train_set)

    def compute(self) -> dict:
        """Train: the loss history, the backbone at every snapshot epoch, the final weights and
        the wall time."""
        started = time.perf_counter()
        # Same seed, same initial backbone for every method; the caller's random state is
        # left as it was.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(stream_seed(self.seed, "weights"))
            model = self.model()
        warn_if_long(model, self.method, self.prof)
        snapshots = {}

        def snapshot(m, epoch):
            snapshots[str(epoch)] = {
                k: v.detach().cpu().clone() for k, v in m.backbone.state_dict().items()
            }

        prof = self.prof
        history = _fit_or_explain_memory(
            prof,
            model,
            self.meth,
            self.train_set.to(self.device),
            epochs=prof.epochs,
            batch_size=prof.batch_size,
            lr=prof.lr,
            weight_decay=prof.weight_decay,
            seed=self.seed,
            callbacks=[snapshot],
            eval_epochs=self.snap_epochs,
            progress=self.progress,
            device=self.device,
            stop_after=self.stop_after,
        )
        return dict(
            history=history,
            snapshots=snapshots,
            state_dict={k: v.cpu() for k, v in model.state_dict().items()},
            seconds=time.perf_counter() - started,
        )

    def check(self, result: dict) -> None:
        """A stored run must load into this model, with every snapshot, all finite."""
        missing = {"history", "snapshots", "state_dict"} - set(result)
        if missing:
            raise ValueError(f"missing {sorted(missing)}")
        if sorted(int(e) for e in result["snapshots"]) != self.snap_epochs:
            raise ValueError(
                f"snapshots at {sorted(result['snapshots'])}, expected {self.snap_epochs}"
            )
        model = self.model()
        for state in (result["state_dict"], *result["snapshots"].values()):
            target = (
                model.state_dict() if state is result["state_dict"] else model.backbone.state_dict()
            )
            if set(state) != set(target) or any(state[k].shape != target[k].shape for k in state):
                raise ValueError("weights of another architecture")
            if not all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point()):
                raise ValueError("non-finite weights")

    def run(self, result: dict, key: str) -> Run:
        """The trained (or loaded) ``result`` as a :class:`Run` on the device, in eval mode."""
        model = self.model()
        model.load_state_dict(result["state_dict"])
        model.to(self.device).eval()
        snapshots = {int(e): s for e, s in result["snapshots"].items()}
        return Run(
            self.method,
            self.prof,
            self.seed,
            self.loss,
            model,
            result["history"],
            snapshots,
            key,
            self.device,
            seconds=float(result.get("seconds", math.nan)),
        )


def _finite_rows(result: dict) -> None:
    """Refuse a stored evaluation with a value that is not a finite number (recomputed)."""
    values = pd.to_numeric(result["rows"]["value"], errors="coerce").to_numpy(dtype=float)
    if not np.isfinite(values).all():
        raise ValueError("an evaluation holds a value that is not a finite number")


def _train_or_load(job: _Training, config: dict, cache: bool) -> dict:
    """The stored run of ``config``, or ``job`` trained (and stored when ``cache``).

    Several processes (torchrun): rank 0 decides for every rank whether a stored run serves
    (the ranks never decide apart, or one would train alone), the ranks train together where
    none does, rank 0 alone stores the run (and keeps its snapshots), and every rank gets rank
    0's result, broadcast: a cache that cannot be written never leaves a rank to train alone
    either (which once ended a finished run in "Connection closed by peer")."""
    if world_size() == 1:
        return cached("train", config, job.compute, enabled=cache, validate=job.check)
    stored = from_main(_stored(config, job) if cache and is_main() else None)
    if stored is not None:
        return stored
    result = job.compute()  # every rank, together
    if is_main():
        result = cached("train", config, lambda: result, enabled=cache, validate=job.check)
    return from_main(result)


class _NotStored(Exception):
    pass


def _stored(config: dict, job: _Training) -> dict | None:
    """The train cache's run of ``config`` where it holds a usable one, else None."""

    def missing():
        raise _NotStored

    try:
        return cached("train", config, missing, validate=job.check, write=False)
    except _NotStored:
        return None
