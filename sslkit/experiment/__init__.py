"""The experiment wing: runs of a configuration × seed, cached, and what is read across them.

runs (train-or-load), the evidence store, the named configurations, statistics across seeds,
and the cost of a run or a chapter. Frozen: measured.py (throughput, measuring times).
"""

from . import measured
from .measured import THROUGHPUT
from .measured import MEASURING_PROFILE
from .measured import MEASURING_SECONDS
from . import cost
from .cost import DATASET_SHAPES
from .cost import VIEWS
from .cost import RunCost
from .cost import forward_flops
from .cost import run_cost
from .cost import estimate_seconds
from .cost import device_kind
from .cost import fmt_duration
from .cost import warn_if_long
from . import runs
from .runs import Run
from .runs import train
from .runs import train_config
from .runs import filled_loss
from .runs import datasets_for
from .runs import build_model
from .runs import default_device
from .runs import SAMPLE_LEVEL_IMAGES
from .runs import SAMPLE_LEVEL_VIEWS
from .runs import SAMPLE_METRICS
from .runs import TRAIN_FIELDS
from .runs import evaluation_subset
from .runs import current_subset
from .runs import NoSubsets
from . import store
from .store import EVIDENCE
from .store import COLUMNS
from .store import StoredRun
from .store import folder
from .store import profile_settings
from .store import manifest
from .store import holds
from .store import stored_runs
from .store import evaluations
from .store import write_run
from .store import NotStored
from . import configs
from .configs import CONFIGS
from .configs import RATIOS
from .configs import RANDOMNESS
from .configs import COMPARED_METHODS
from .configs import SOURCES
from .configs import store_only
from .configs import trained
from .configs import regularization_ratio
from . import analysis
from .analysis import one_sided_p
from .analysis import holm
from .analysis import t_interval
from .analysis import standard_error
from .analysis import seed_summary
from .analysis import collect
from .analysis import gain_over_init
from .analysis import within_run_correlation
from .analysis import summary
from .analysis import loss_curves
from .analysis import mean_over_seeds
from . import plan
from .plan import CHAPTER_CONFIGS
from .plan import chapter_plan
from .plan import chapter_measuring
from .plan import chapter_time
from .plan import training_seconds
from .plan import chapter_estimate
from .plan import chapter_costs
from .plan import flops_per_image

__all__ = [
    "measured",
    "cost",
    "runs",
    "store",
    "configs",
    "analysis",
    "plan",
    "THROUGHPUT",
    "MEASURING_PROFILE",
    "MEASURING_SECONDS",
    "DATASET_SHAPES",
    "VIEWS",
    "RunCost",
    "forward_flops",
    "run_cost",
    "estimate_seconds",
    "device_kind",
    "fmt_duration",
    "warn_if_long",
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
    "EVIDENCE",
    "COLUMNS",
    "StoredRun",
    "folder",
    "profile_settings",
    "manifest",
    "holds",
    "stored_runs",
    "evaluations",
    "write_run",
    "NotStored",
    "CONFIGS",
    "RATIOS",
    "RANDOMNESS",
    "COMPARED_METHODS",
    "SOURCES",
    "store_only",
    "trained",
    "regularization_ratio",
    "one_sided_p",
    "holm",
    "t_interval",
    "standard_error",
    "seed_summary",
    "collect",
    "gain_over_init",
    "within_run_correlation",
    "summary",
    "loss_curves",
    "mean_over_seeds",
    "CHAPTER_CONFIGS",
    "chapter_plan",
    "chapter_measuring",
    "chapter_time",
    "training_seconds",
    "chapter_estimate",
    "chapter_costs",
    "flops_per_image",
]
