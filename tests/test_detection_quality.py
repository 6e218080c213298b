"""Detection-quality metrics (laserguard.offline.detection_quality) and the default model's reproducibility."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from laserguard import sim
from laserguard.offline import detection_quality as dq

REPO = Path(__file__).resolve().parents[1]


def test_threshold_keeps_the_false_positive_rate_at_or_below_the_limit() -> None:
    scores = np.random.default_rng(0).normal(size=1000)
    for max_fpr in (0.0, 0.01, 0.05, 0.333):
        threshold = dq.threshold_at_fpr(scores, max_fpr)
        assert np.mean(scores > threshold) <= max_fpr
        # The smallest such threshold: one rank lower would exceed the limit.
        assert np.mean(scores >= threshold) > max_fpr


def test_threshold_refuses_bad_input() -> None:
    with pytest.raises(ValueError, match="finite"):
        dq.threshold_at_fpr([0.1, np.nan])
    with pytest.raises(ValueError, match="max_fpr"):
        dq.threshold_at_fpr([0.1, 0.2], 1.5)


def test_sweep_covers_every_type_and_severity_once_per_replica_without_sharing_a_unit() -> None:
    faults = dq.severity_sweep_faults(3600.0, severities=(0.2, 0.8), replicas=2)
    pairs = [(f["type"], f["severity"]) for f in faults]
    expected = {(t, s) for t in dq.UNIT_FAULT_TYPES + dq.PSU_FAULT_TYPES for s in (0.2, 0.8)}
    assert set(pairs) == expected and len(pairs) == 2 * len(expected)
    unit_slots = [(f["lcc"], f["unit"]) for f in faults if f["type"] in dq.UNIT_FAULT_TYPES]
    psu_slots = [(f["lcc"], f["psu"]) for f in faults if f["type"] in dq.PSU_FAULT_TYPES]
    assert len(set(unit_slots)) == len(unit_slots) and len(set(psu_slots)) == len(psu_slots)
    assert not {lcc for lcc, _ in unit_slots} & {lcc for lcc, _ in psu_slots}
    assert all(720.0 <= f["start_s"] <= 2160.0 for f in faults)  # 20-60 % of the run


def test_sweep_is_accepted_by_the_simulator_and_labels_every_fault() -> None:
    faults = dq.severity_sweep_faults(600.0, severities=(0.5,), replicas=1)
    unit_lccs, psu_lccs = dq.sweep_layout((0.5,), 1, 32, 16)
    frame = sim.generate(
        600 / 3600, rate_hz=0.1, lccs=unit_lccs + psu_lccs, seed=3, faults=faults, fault_mix="none"
    )
    labelled = set(frame.loc[frame["label"] == 1, "fault_type"].astype(str))
    assert labelled == set(dq.UNIT_FAULT_TYPES + dq.PSU_FAULT_TYPES)


def _frame(rows: list[tuple[float, int, str, float, int]]) -> pd.DataFrame:
    time_s, unit, kind, severity, label = zip(*rows, strict=True)
    return pd.DataFrame(
        {
            "time_s": time_s,
            "lcc": 1,
            "unit": unit,
            "fault_type": kind,
            "severity": np.asarray(severity, dtype=np.float32),
            "label": label,
        }
    )


def test_metrics_on_a_hand_built_frame() -> None:
    # Unit 0 healthy; unit 1 degradation 0.5 from t=2; unit 2 degradation 1.0 from t=1.
    rows = [(float(t), 0, "none", 0.0, 0) for t in range(4)]
    rows += [(0.0, 1, "none", 0.0, 0), (1.0, 1, "none", 0.0, 0)]
    rows += [(2.0, 1, "degradation", 0.5, 1), (3.0, 1, "degradation", 0.5, 1)]
    rows += [(0.0, 2, "none", 0.0, 0)] + [(float(t), 2, "degradation", 1.0, 1) for t in (1, 2, 3)]
    frame = _frame(rows)
    score = np.zeros(len(frame))
    score[0] = 5.0  # one false positive among 7 normal rows
    score[7] = 5.0  # unit 1 flagged at t=3 only
    score[9:12] = 5.0  # unit 2 flagged from onset
    metrics = dq.evaluate_detection(frame, score, threshold=1.0)
    assert metrics["fpr"] == pytest.approx(1 / 7)
    assert metrics["fnr_moderate"] == pytest.approx(0.5)
    assert metrics["fnr_all"] == pytest.approx(1 / 5)
    kind = metrics["per_fault_type"]["degradation"]
    assert kind["recall_by_severity"] == {"0.5": 0.5, "1": 1.0}
    assert kind["min_severity_at_recall"] == 1.0
    assert kind["median_time_to_detect_s_moderate"] == pytest.approx(1.0)
    assert not dq.meets_target(metrics)


def test_score_shape_mismatch_is_refused() -> None:
    frame = _frame([(0.0, 0, "none", 0.0, 0)])
    with pytest.raises(ValueError, match="shape"):
        dq.evaluate_detection(frame, np.zeros(3), 0.0)


def _digests(folder: Path) -> dict[str, str]:
    names = ("default.lgf", "default.card.json", "default.card.md")
    return {name: hashlib.sha256((folder / name).read_bytes()).hexdigest() for name in names}


def test_default_model_and_card_regenerate_bit_for_bit(tmp_path: Path) -> None:
    # A few minutes: fits the default model (3 h of `lab`, the v3 context fit) and runs its two
    # detection-quality benchmarks (benchmarks/context_quality.py's eval sets, the steady sweep).
    subprocess.run(
        [sys.executable, str(REPO / "models" / "make_default_model.py"), "--out-dir", str(tmp_path)],
        check=True,
        capture_output=True,
        timeout=1800,
    )
    assert _digests(tmp_path) == _digests(REPO / "models")
