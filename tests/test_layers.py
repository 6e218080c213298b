"""The package layout is a contract: the hot path loads without the heavy offline/storage stack."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


@pytest.mark.parametrize(
    "module", ["laserguard.live", "laserguard.live.detector", "laserguard.live.model_holder"]
)
def test_hot_path_imports_no_sklearn_pandas_or_pymongo(module: str) -> None:
    # A fresh interpreter: this test process has long imported all of them.
    probe = (
        f"import sys, json, {module}\n"
        "print(json.dumps(sorted(m for m in ('sklearn', 'pandas', 'pymongo') if m in sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == [], f"{module} pulled in {out.stdout.strip()}"


def test_public_api_is_unchanged() -> None:
    import laserguard
    from laserguard import codec, sim

    for name in ("ForestModel", "FrameError", "ModelFormatError", "export_model", "hash_training_data"):
        assert hasattr(laserguard, name), name
    for name in (
        "CHANNELS",
        "encode_telemetry",
        "decode_telemetry",
        "encode_feedback",
        "decode_feedback",
        "telemetry_topic",
        "feedback_topic",
        "FrameError",
        "TelemetryFrame",
        "Feedback",
    ):
        assert hasattr(codec, name), name
    assert callable(sim.generate)
    assert laserguard.FrameError is codec.FrameError
