"""The findings wing: the paper's claims as findings, measured, and the evidence they rest on.

paper (findings and verdicts), scale (the scale study), build (the evidence build), verify.
Frozen: thresholds (fixed before the runs were read) and recorded.py (the book's verdicts).
"""

from . import recorded
from .recorded import RECORDED
from .recorded import PROFILE
from . import scale
from .scale import DESIGNS
from .scale import STUDY_METHODS
from .scale import RULERS
from .scale import TABLE
from .scale import design_profile
from .scale import pixel_floor
from .scale import measure
from .scale import study
from .scale import load_study
from .scale import load_pixel_floor
from .scale import summary
from .scale import choose_reference
from .scale import JOINT_EMBEDDING
from . import paper
from .paper import Finding
from .paper import Verdict
from .paper import FINDINGS
from .paper import finding
from .paper import measure_all
from .paper import per_method
from .paper import per_method_table
from .paper import PER_METHOD
from .paper import VARIANTS
from .paper import RULER_VARIANTS
from .paper import PRIMARY
from .paper import WORKING_RATIOS
from .paper import ratio_slope
from .paper import CLUSTERING
from .paper import VERDICTS
from .paper import BELOW
from .paper import THRESHOLD_REASONS
from .paper import ruler_keys
from .paper import final_vs_pixels
from .paper import level
from .paper import gain
from .paper import EQUAL_DIM
from .paper import MIN_GAIN_TO_SHARE
from .paper import final_vs_initial
from .paper import final_a_vs_final_b
from .paper import gain_vs_gain
from .paper import deep_vs_shallow
from .paper import coarse_deeper_than_random_groups
from . import build
from .build import plan
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
    "scale",
    "paper",
    "build",
    "verify",
    "RECORDED",
    "PROFILE",
    "DESIGNS",
    "STUDY_METHODS",
    "RULERS",
    "TABLE",
    "design_profile",
    "pixel_floor",
    "measure",
    "study",
    "load_study",
    "load_pixel_floor",
    "summary",
    "choose_reference",
    "JOINT_EMBEDDING",
    "Finding",
    "Verdict",
    "FINDINGS",
    "finding",
    "measure_all",
    "per_method",
    "per_method_table",
    "PER_METHOD",
    "VARIANTS",
    "RULER_VARIANTS",
    "PRIMARY",
    "WORKING_RATIOS",
    "ratio_slope",
    "CLUSTERING",
    "VERDICTS",
    "BELOW",
    "THRESHOLD_REASONS",
    "ruler_keys",
    "final_vs_pixels",
    "level",
    "gain",
    "EQUAL_DIM",
    "MIN_GAIN_TO_SHARE",
    "final_vs_initial",
    "final_a_vs_final_b",
    "gain_vs_gain",
    "deep_vs_shallow",
    "coarse_deeper_than_random_groups",
    "plan",
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
