"""The measure wing: what a trained network's features are measured with.

metrics (NCC, CDNV, probe, kNN, effective rank …), streaming class statistics, targets
(random, coarse, k-means), evaluation of every stage. Frozen: nothing; a change bumps CACHE_VERSION.
"""

from . import metrics
from .metrics import class_centres
from .metrics import ncc_accuracy
from .metrics import cdnv
from .metrics import linear_probe
from .metrics import knn_accuracy
from .metrics import fewshot_ncc_accuracy
from .metrics import sample_ncc
from .metrics import view_tightness
from .metrics import effective_rank
from .metrics import zca_whitener
from .metrics import whitened_ncc_accuracy
from .metrics import WHITEN_EPS
from .metrics import uniformity
from . import streaming
from .streaming import ClassStats
from .streaming import NCCScore
from .streaming import whiten
from . import targets
from .targets import random_targets
from .targets import random_grouping
from .targets import random_function_targets
from .targets import projected_kmeans
from .targets import balanced_kmeans
from .targets import untrained_kmeans_targets
from .targets import make_targets
from .targets import draws
from .targets import DRAWS
from .targets import DRAWN
from . import evaluation
from .evaluation import extract_features
from .evaluation import calibrate_batchnorm
from .evaluation import evaluate_features
from .evaluation import measure_sample_ncc
from .evaluation import view_features
from .evaluation import embed_2d
from .evaluation import project_stages
from .evaluation import pca_stages
from .evaluation import METRICS
from .evaluation import ACCURACIES
from .evaluation import EVAL_SUBSETS
from . import groupings
from .groupings import partitions
from .groupings import partition_index
from .groupings import grouping_ncc
from . import geometry
from .geometry import RIDGE
from .geometry import linear_predictability
from .geometry import linear_cka
from .geometry import between_class_share
from .geometry import size_entropy
from .geometry import cluster_balance
