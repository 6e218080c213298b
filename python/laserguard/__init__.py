"""laserguard: hardware-in-loop anomaly detection for laser units.

The scoring core is an exact C++ IsolationForest evaluator (``ForestModel``) fed by models
exported from scikit-learn with ``export_model``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from laserguard._core import FrameError, ModelFormatError
from laserguard.forest import ForestModel

if TYPE_CHECKING:
    from laserguard.export import export_model, hash_training_data

__all__ = ["ForestModel", "FrameError", "ModelFormatError", "export_model", "hash_training_data"]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    # The exporter pulls in scikit-learn (~1 s to import); services that only score
    # (detect, store) start without it.
    if name in ("export_model", "hash_training_data"):
        from laserguard import export

        return getattr(export, name)
    raise AttributeError(f"module 'laserguard' has no attribute {name!r}")
