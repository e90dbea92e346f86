"""The anymodel wing: the book's measurements on any network (``sslkit analyze``).

reverse.analyze (the measuring pass), encoders (model zoo), sources (data), folders (your own
images), taps (layers), report (HTML and JSON). It uses only the foundation, learn and measure.
Nothing here is frozen.
"""

from . import taps
from .taps import default_layers
from .taps import transformer_layers
from .taps import sequential_stages
from .taps import feature_stages
from .taps import resolve_layers
from .taps import FIRST_TOKEN
from .taps import Tap
from .taps import adapt_channels
from . import folders
from .folders import Folder
from .folders import FolderImages
from .folders import read_folder
from .folders import read_coarse
from . import sources
from .sources import Split
from .sources import fit_and_score
from .sources import labels_of
from .sources import stratified_take
from .sources import stratified_split
from . import encoders
from .encoders import build_encoder
from .encoders import load_weights
from .encoders import load_pretrained
from .encoders import ModelInput
from .encoders import model_input
from . import reverse
from .reverse import analyze
from .reverse import Analysis
from .reverse import METRICS
from .reverse import TARGETS
from . import report
from .report import writable_folder
from .report import write_report
from .report import figure
from .report import replaced
from .report import gains
from .report import trend
