"""The teach wing: the book, its figures and the coursework built from it.

book (glue, scoreboards), plots, exercises (checkers), colab (Colab copies); course and grading
run as programs (python -m) and are imported by their own path, as are the modules of the
coursework edition that course builds from (checkout, notebooks, answer_key). Nothing here is
frozen.
"""

from . import plots
from .plots import use_style
from .plots import image_grid
from .plots import class_examples
from .plots import views_grid
from .plots import plot_seeds
from .plots import shared_legend
from .plots import log_axis
from .plots import plot_terms
from .plots import plot_verdicts
from .plots import plot_embedding
from .plots import plot_scale_study
from .plots import pipeline_diagram
from .plots import clusters_toy
from .plots import COLORS
from .plots import plot_views
from .plots import plot_decisions
from .plots import plot_stage_gains
from . import exercises
from .exercises import check_rotation
from .exercises import check_invariance_loss
from .exercises import check_variance_loss
from .exercises import check_ncc
from .exercises import check_cdnv
from .exercises import check_random_targets
from .exercises import check_nt_xent
from .exercises import check_barlow_terms
from .exercises import check_regularization_ratio
from .exercises import check_effective_rank
from .exercises import check_vicreg_terms
from .exercises import check_holm
from .exercises import check_random_grouping
from .exercises import check_seeds_needed
from .exercises import check_linear_predictability
from .exercises import check_cdnv_from_sums
from . import colab
from . import book
from .book import setup
from .book import glue
from .book import this_run_table
from .book import pct
from .book import points
from .book import chapter_titles
from .book import glue_finding
from .book import scoreboard
from .book import show_scoreboard
from .book import strict
from .book import stated
from .book import evidence_line
from .book import evidence
from .book import reading
from .book import rulers_table
from .book import primary_table
from .book import per_method_table
from .book import ratio_arms_table
from .book import BOOK_PROFILE
from .book import glue_decision
from .book import ANSWER_KEYS
from .book import decisions_table
