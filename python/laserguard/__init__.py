"""laserguard: hardware-in-loop anomaly detection for laser units.

The scoring core is an exact C++ IsolationForest evaluator (``ForestModel``) fed by models
exported from scikit-learn with ``export_model``.
"""

from laserguard._core import FrameError, ModelFormatError
from laserguard.model.export import export_model, hash_training_data
from laserguard.model.forest import ForestModel

__all__ = ["ForestModel", "FrameError", "ModelFormatError", "export_model", "hash_training_data"]
__version__ = "0.1.0"
