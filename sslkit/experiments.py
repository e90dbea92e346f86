"""The book's experiments as functions: configuration in, model and tidy history out.

:func:`run` trains one method under one profile, evaluating the metrics of
:mod:`sslkit.evaluation` along the way, and caches the result by a hash of its whole
configuration (:mod:`sslkit.cache`). The chapters and the CLI call the same function, so
they share the cache: a run trained for one chapter is loaded by the next.
"""
from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass

import pandas as pd
import torch

from . import data as data_mod
from .cache import cached
from .evaluation import evaluate, sample_level_ncc
from .methods import make_method
from .models import SSLModel, build_backbone
from .profiles import Profile, get_profile
from .targets import random_targets
from .train import fit, seed_everything

# Sample-level NCC: this many test images, this many views of each for the centres (and again for the queries).
SAMPLE_LEVEL_IMAGES = 256
SAMPLE_LEVEL_VIEWS = 8

__all__ = ["Run", "run", "summary", "term_correlations", "datasets_for", "build_model", "default_device"]


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@dataclass
class Run:
    """One training run: its configuration, the trained model and the history DataFrame."""

    config: dict
    model: SSLModel
    history: pd.DataFrame

    @property
    def backbone(self):
        return self.model.backbone

    def evals(self, **where) -> pd.DataFrame:
        """Evaluation rows, filtered by column values, e.g. ``run.evals(metric="ncc", split="test")``."""
        df = self.history[self.history.phase == "eval"]
        if where.get("stage") == "last" and "last" not in set(df.stage):
            where = {**where, "stage": self.backbone.stage_names[-1]}
        for col, val in where.items():
            df = df[df[col] == val]
        return df

    def final(self, metric: str, split: str = "test", target: str = "fine", stage: str = "last") -> float:
        """The metric's value at the last evaluated epoch."""
        df = self.evals(metric=metric, split=split, target=target, stage=stage)
        if df.empty:
            raise KeyError(f"no evaluation of {metric}/{split}/{target}/{stage} in this run")
        return float(df.sort_values("epoch").value.iloc[-1])

    def initial(self, metric: str, split: str = "test", target: str = "fine", stage: str = "last") -> float:
        """The metric's value at epoch 0 (the randomly initialised network)."""
        df = self.evals(metric=metric, split=split, target=target, stage=stage, epoch=0)
        if df.empty:
            raise KeyError(f"no epoch-0 evaluation of {metric}/{split}/{target}/{stage} in this run")
        return float(df.value.iloc[0])

    def losses(self, phase: str = "epoch") -> pd.DataFrame:
        """Loss terms per epoch (or per ``step``), one column per term."""
        df = self.history[self.history.phase == phase]
        key = "epoch" if phase == "epoch" else "step"
        return df.pivot_table(index=key, columns="metric", values="value")


@functools.lru_cache(maxsize=8)
def _load(name: str, split: str) -> data_mod.Dataset:
    return data_mod.load(name, split)


def datasets_for(profile: Profile):
    """(SSL training set, evaluation train set, evaluation test set) of a profile.

    The evaluation train set is a fixed subset of the images SSL trained on.
    """
    train = _load(profile.dataset, "train").subset(profile.train_size, seed=0)
    test = _load(profile.dataset, "test").subset(profile.eval_size, seed=1)
    return train, train.subset(profile.eval_size, seed=1), test


def build_model(method, profile: Profile, dataset) -> SSLModel:
    """Backbone of the profile plus the method's head."""
    backbone = build_backbone(profile.backbone, dataset.channels, dataset.images.shape[-1], profile.widths)
    return SSLModel(backbone, method.make_head(backbone.out_dim))


def run(method: str = "vicreg", profile: str | Profile | None = None, *, seed: int = 0,
        loss: dict | None = None, epochs: int | None = None, stages: str = "all",
        metrics: tuple[str, ...] = ("ncc", "cdnv", "probe", "knn"), randomness: tuple[float, ...] = (),
        sample_level: bool = True, cache: bool = True, device=None, progress: bool | None = None) -> Run:
    """Train ``method`` under ``profile`` (evaluating as it goes) or load the cached run.

    Parameters
    ----------
    method : one of :data:`sslkit.methods.METHODS`
    profile : name or :class:`~sslkit.profiles.Profile` (default: ``$SSLKIT_PROFILE``/auto)
    loss : dict, optional
        Loss arguments, e.g. ``{"inv_weight": 0}`` for VICReg without invariance.
    epochs : int, optional
        Override the profile's epochs (0 = evaluate the random initialisation only).
    stages : ``"all"`` (default) or ``"last"``: which backbone stages to evaluate. In
        :meth:`Run.evals` and friends, ``stage="last"`` means the deepest stage either way.
    metrics : which of ncc, cdnv, probe, knn to evaluate.
    randomness : levels r for extra targets ``random_r`` (:func:`sslkit.targets.random_targets`).
    sample_level : also evaluate sample-level NCC (``metric="sample_ncc"``).

    Evaluations happen at epoch 0, every ``profile.eval_every`` epochs and at the end.
    """
    prof = get_profile(profile)
    if epochs is not None:
        prof = prof.replace(epochs=epochs)
    loss = dict(loss or {})
    config = dict(method=method, profile=dataclasses.asdict(prof), seed=seed, loss=loss,
                  stages=stages, metrics=list(metrics), randomness=list(randomness),
                  sample_level=sample_level)
    device = torch.device(device) if device is not None else default_device()
    train, eval_train, eval_test = datasets_for(prof)
    meth = make_method(method, train, projector=prof.projector, **loss)
    targets = {"fine": (eval_train.labels, eval_test.labels),
               "coarse": (eval_train.coarse_labels, eval_test.coarse_labels)}
    for r in randomness:
        targets[f"random_{r:g}"] = (random_targets(eval_train.labels, r, seed=seed),
                                    random_targets(eval_test.labels, r, seed=seed + 1))

    meth_augment = getattr(meth, "augments", (getattr(meth, "augment", None),))[0]

    def evaluation(model, epoch):
        df = evaluate(model.backbone, eval_train, eval_test, targets=targets,
                      metrics_to_run=metrics, stages=stages)
        if sample_level:
            last_stage = model.backbone.stage_names[-1] if stages == "all" else "last"
            g = torch.Generator(device=device).manual_seed(1234)
            acc = sample_level_ncc(model.backbone, eval_test.images[:SAMPLE_LEVEL_IMAGES].to(device),
                                   meth_augment, n_views=SAMPLE_LEVEL_VIEWS, generator=g)
            df = pd.concat([df, pd.DataFrame([dict(stage=last_stage, target="sample", split="test",
                                                   metric="sample_ncc", value=acc)])], ignore_index=True)
        return df

    def compute():
        seed_everything(seed)  # same seed, same initial backbone for every method
        model = build_model(meth, prof, train)
        eval_epochs = sorted({0, prof.epochs, *range(0, prof.epochs + 1, max(1, prof.eval_every))})
        history = fit(model, meth, train.to(device), epochs=prof.epochs, batch_size=prof.batch_size,
                      lr=prof.lr, weight_decay=prof.weight_decay, seed=seed, callbacks=[evaluation],
                      eval_epochs=eval_epochs, progress=progress, device=device)
        return dict(history=history, state_dict={k: v.cpu() for k, v in model.state_dict().items()})

    result = cached("runs", config, compute, enabled=cache)
    model = build_model(meth, prof, train)
    model.load_state_dict(result["state_dict"])
    model.to(device).eval()
    return Run(config, model, result["history"])


def summary(runs: dict, metrics=("ncc", "probe", "knn", "cdnv"), split: str = "test",
            target: str = "fine", stage: str = "last", init_label: str | None = "random init") -> pd.DataFrame:
    """Final metric values of several runs, one row per run (``{label: Run}``).

    With ``init_label``, a first row gives the epoch-0 values of the first run: the
    randomly initialised backbone (the same for every run of one seed and profile).
    """
    rows = {}
    first = next(iter(runs.values()))
    if init_label:
        rows[init_label] = {m: first.initial(m, split, target, stage) for m in metrics}
    for label, r in runs.items():
        rows[label] = {m: r.final(m, split, target, stage) for m in metrics}
    return pd.DataFrame.from_dict(rows, orient="index")


def term_correlations(runs: dict, metric: str = "ncc", terms=("invariance", "variance", "covariance"),
                      split: str = "test", target: str = "fine", stage: str = "last") -> pd.Series:
    """Spearman rank correlation between each loss term and a metric, over training.

    Pools every evaluated epoch ≥ 1 of every run (``{label: Run}``): the epoch's mean of
    each unweighted loss term is paired with the metric measured at the end of that
    epoch. A negative value means that a lower term goes with a higher metric.
    """
    pairs = []
    for r in runs.values():
        losses = r.losses()
        ev = r.evals(metric=metric, split=split, target=target, stage=stage).set_index("epoch").value
        for epoch, value in ev.items():
            if epoch >= 1 and epoch in losses.index:
                pairs.append({**{t: losses.at[epoch, t] for t in terms}, metric: value})
    df = pd.DataFrame(pairs)
    if len(df) < 3:
        raise ValueError(f"need at least 3 (run, epoch) pairs to correlate, got {len(df)}")
    return df.corr(method="spearman")[metric].drop(metric).rename(f"Spearman correlation with {metric}")
