"""Where the shipped default model lives (models/default.lgf, installed into the package)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

DEFAULT_MODEL_NAME = "default.lgf"


def default_model_path() -> Path:
    """Path of the shipped model; FileNotFoundError with the fix if it is not installed."""
    candidate = Path(str(resources.files("laserguard"))) / "models" / DEFAULT_MODEL_NAME
    if not candidate.is_file():
        raise FileNotFoundError(
            f"no default model at {candidate}: reinstall laserguard (pip install .) or pass --model PATH"
        )
    return candidate
