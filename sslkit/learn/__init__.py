"""The learn wing: how a network learns without labels, in the order of the data path.

data.load → augment (views) → models (backbone, projector) → losses / methods → loop.fit
(distributed: the same loop on several processes). Nothing here is frozen.
"""

from . import data
from .data import Dataset
from .data import DataNotFoundError
from .data import CorruptDataError
from .data import load
from .data import DATASETS
from .data import cache_dir
from . import augment
from .augment import to_float
from .augment import pixel_features
from .augment import random_resized_crop
from .augment import color_jitter
from .augment import random_grayscale
from .augment import gaussian_blur
from .augment import solarize
from .augment import ViewAugment
from .augment import preset
from .augment import two_views
from .augment import rotate
from .augment import rotation_batch
from .augment import jigsaw_permutations
from .augment import jigsaw
from . import models
from .models import ConvNet
from .models import ResNet18
from .models import Projector
from .models import SSLModel
from .models import build_backbone
from . import losses
from .losses import VICREG_WEIGHTS
from .losses import regularization_ratio
from .losses import LossOutput
from .losses import invariance_loss
from .losses import variance_loss
from .losses import covariance_loss
from .losses import vicreg
from .losses import nt_xent
from .losses import barlow_twins
from .losses import cross_entropy
from . import methods
from .methods import Method
from .methods import JointEmbedding
from .methods import RotationPrediction
from .methods import JigsawPuzzle
from .methods import Supervised
from .methods import make_method
from .methods import canonical_name
from .methods import loss_function
from .methods import METHODS
from . import loop
from .loop import fit
from .loop import CollapseWarning
from . import distributed
from .distributed import rank
from .distributed import world_size
from .distributed import is_main
from .distributed import init_from_env
from .distributed import gather
from .distributed import shard
from .distributed import all_finite
from .distributed import barrier
from .distributed import GlobalBatchNorm
from .distributed import synchronise_batchnorm

__all__ = [
    "data",
    "augment",
    "models",
    "losses",
    "methods",
    "loop",
    "distributed",
    "Dataset",
    "DataNotFoundError",
    "CorruptDataError",
    "load",
    "DATASETS",
    "cache_dir",
    "to_float",
    "pixel_features",
    "random_resized_crop",
    "color_jitter",
    "random_grayscale",
    "gaussian_blur",
    "solarize",
    "ViewAugment",
    "preset",
    "two_views",
    "rotate",
    "rotation_batch",
    "jigsaw_permutations",
    "jigsaw",
    "ConvNet",
    "ResNet18",
    "Projector",
    "SSLModel",
    "build_backbone",
    "VICREG_WEIGHTS",
    "regularization_ratio",
    "LossOutput",
    "invariance_loss",
    "variance_loss",
    "covariance_loss",
    "vicreg",
    "nt_xent",
    "barlow_twins",
    "cross_entropy",
    "Method",
    "JointEmbedding",
    "RotationPrediction",
    "JigsawPuzzle",
    "Supervised",
    "make_method",
    "canonical_name",
    "loss_function",
    "METHODS",
    "fit",
    "CollapseWarning",
    "rank",
    "world_size",
    "is_main",
    "init_from_env",
    "gather",
    "shard",
    "all_finite",
    "barrier",
    "GlobalBatchNorm",
    "synchronise_batchnorm",
]
