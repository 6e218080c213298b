"""Rebuild the shipped default model (models/default.lgf + default.card.json), bit for bit.

    python models/make_default_model.py

Trains Pipeline(StandardScaler, IsolationForest) on 30 minutes of simulated nominal
telemetry (2 LCCs x 32 units at 1 Hz, seed 1, no faults) with fixed seeds, so the same
laserguard + sklearn versions reproduce the same file. `laserguard train` (GridSearchCV on
labelled data) produces richer models; this one only has to make `demo` and `detect` work
out of the box.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from sklearn.ensemble import IsolationForest
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

import laserguard
from laserguard import sim
from laserguard.codec import CHANNELS

HERE = Path(__file__).resolve().parent
PARAMS = {"n_estimators": 200, "max_samples": 256, "contamination": 0.01, "random_state": 0}
DATA = {"hours": 0.5, "rate_hz": 1.0, "seed": 1, "fault_mix": "none"}


def main() -> None:
    frame = sim.generate(DATA["hours"], rate_hz=DATA["rate_hz"], seed=DATA["seed"], fault_mix="none")
    X = frame[list(CHANNELS)].to_numpy(np.float64)
    pipeline = Pipeline([("scaler", StandardScaler()), ("model", IsolationForest(**PARAMS))]).fit(X)
    data_hash = laserguard.hash_training_data(X)
    card = {"training_data": {**DATA, "rows": len(X), "sha256": data_hash}, "params": PARAMS}
    version = laserguard.export_model(
        pipeline,
        HERE / "default.lgf",
        feature_names=CHANNELS,
        training_data_sha256=data_hash,
        extra_metadata={"card": card},
    )
    card["model_version"] = version
    (HERE / "default.card.json").write_text(json.dumps(card, indent=2, sort_keys=True) + "\n")
    print(f"wrote {HERE / 'default.lgf'} (version {version})")


if __name__ == "__main__":
    main()
