"""The findings wing: the paper's claims as findings, measured, and the evidence they rest on.

verdict (the rule: effect, interval, threshold → verdict), measurements (what each finding
measures against its control), floors (the three rulers and raw pixels), paper (the registry:
one finding per claim), scale (the scale study), build (the evidence build), verify.
Frozen, each saying so where it starts: thresholds (fixed before the runs were read) and
recorded (the book's verdicts on the reference evidence).
"""

from . import recorded
from .recorded import RECORDED
from .recorded import PROFILE
from . import thresholds
from .thresholds import THRESHOLD_REASONS
from .thresholds import FLOOR_THRESHOLD
from . import verdict
from .verdict import Finding
from .verdict import Verdict
from .verdict import verdict_of
from .verdict import VERDICTS
from .verdict import BELOW
from . import floors
from .floors import RULERS
from .floors import RULER_NAMES
from .floors import compute_pixel_floor
from .floors import pixel_floor
from . import measurements
from .measurements import final_vs_initial
from .measurements import final_a_vs_final_b
from .measurements import final_vs_pixels
from .measurements import level
from .measurements import gain
from .measurements import gain_vs_gain
from .measurements import EQUAL_DIM
from .measurements import deep_vs_shallow
from .measurements import coarse_deeper_than_random_groups
from .measurements import MIN_GAIN_TO_SHARE
from .measurements import WORKING_RATIOS
from .measurements import ratio_slope
from .measurements import ASSOCIATION_CONFIGS
from .measurements import association
from . import paper
from .paper import WRITTEN
from .paper import FINDINGS
from .paper import finding
from .paper import measure_all
from .paper import measure_per_method
from .paper import per_method
from .paper import PER_METHOD
from .paper import VARIANTS
from .paper import CLUSTERING
from .paper import ruler_keys
from .paper import RULER_VARIANTS
from .paper import PRIMARY
from .paper import GROUPS
from . import scale
from .scale import DESIGNS
from .scale import STUDY_METHODS
from .scale import TABLE
from .scale import design_profile
from .scale import measure
from .scale import study
from .scale import load_study
from .scale import load_pixel_floor
from .scale import study_margins
from .scale import choose_reference
from .scale import JOINT_EMBEDDING
from . import build
from .build import evaluation_plan
from .build import plan_version
from .build import SAMPLE_CURVES
from .build import ORDER
from .build import evaluate_run
from . import verify
from .verify import SAMPLE
from .verify import TOLERANCE
from .verify import UNTRAINED_TOLERANCE
from .verify import MEAN_TOLERANCE
from .verify import RESULT
from .verify import recompute
from .verify import compare
from .verify import last_result
from .verify import EvidenceMismatch

__all__ = [
    "recorded",
    "thresholds",
    "verdict",
    "floors",
    "measurements",
    "paper",
    "scale",
    "build",
    "verify",
    "RECORDED",
    "PROFILE",
    "THRESHOLD_REASONS",
    "FLOOR_THRESHOLD",
    "Finding",
    "Verdict",
    "verdict_of",
    "VERDICTS",
    "BELOW",
    "RULERS",
    "RULER_NAMES",
    "compute_pixel_floor",
    "pixel_floor",
    "final_vs_initial",
    "final_a_vs_final_b",
    "final_vs_pixels",
    "level",
    "gain",
    "gain_vs_gain",
    "EQUAL_DIM",
    "deep_vs_shallow",
    "coarse_deeper_than_random_groups",
    "MIN_GAIN_TO_SHARE",
    "WORKING_RATIOS",
    "ratio_slope",
    "ASSOCIATION_CONFIGS",
    "association",
    "WRITTEN",
    "FINDINGS",
    "finding",
    "measure_all",
    "measure_per_method",
    "per_method",
    "PER_METHOD",
    "VARIANTS",
    "CLUSTERING",
    "ruler_keys",
    "RULER_VARIANTS",
    "PRIMARY",
    "GROUPS",
    "DESIGNS",
    "STUDY_METHODS",
    "TABLE",
    "design_profile",
    "measure",
    "study",
    "load_study",
    "load_pixel_floor",
    "study_margins",
    "choose_reference",
    "JOINT_EMBEDDING",
    "evaluation_plan",
    "plan_version",
    "SAMPLE_CURVES",
    "ORDER",
    "evaluate_run",
    "SAMPLE",
    "TOLERANCE",
    "UNTRAINED_TOLERANCE",
    "MEAN_TOLERANCE",
    "RESULT",
    "recompute",
    "compare",
    "last_result",
    "EvidenceMismatch",
]
