"""Detection quality of a model on labelled simulator data (issue 5's detection-quality target).

The target: on the simulator's fault types at moderate severity, FNR <= 0.10 at FPR <= 0.01,
and per fault type the minimum severity detected with >= 90 % recall and the median time to
detect. The threshold is chosen on held-out *normal* data (never on the faults it is judged
on): a sample is flagged when its anomaly score (-decision_function) exceeds the largest
normal score left after allowing `max_fpr` of the normal rows above it.

`severity_sweep_faults` builds the labelled test set: the default mix has no severity control
(severities uniform in 0.3-1), so every fault type is injected at each of a list of severities,
with the default mix's timing (onsets in 20-60 % of the run, gradual types ramped over 20 %).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pandas as pd

from laserguard import sim
from laserguard.model.forest import ForestModel
from laserguard.model.unit_scoring import STAGE_BASELINE, STAGE_FLEET, UnitScorer
from laserguard.wire.codec import CHANNELS, state_codes

UNIT_FAULT_TYPES: Final[tuple[str, ...]] = (
    "degradation",
    "facet_damage",
    "cooling_loss",
    "thermal_resistance",
    "driver_oscillation",
    "driver_overshoot",
    "sensor_stuck",
    "sensor_dropout",
    "sensor_spikes",
)
PSU_FAULT_TYPES: Final[tuple[str, ...]] = ("psu_sag", "psu_ripple")
SENSOR_FAULT_TYPES: Final[frozenset[str]] = frozenset({"sensor_stuck", "sensor_dropout", "sensor_spikes"})
# Same as the C++ default mix (fault_injection.cpp): these ramp over a fifth of the run.
GRADUAL_FAULT_TYPES: Final[frozenset[str]] = frozenset({"degradation", "thermal_resistance", "cooling_loss"})
DEFAULT_SEVERITIES: Final[tuple[float, ...]] = (0.1, 0.2, 0.3, 0.5, 0.7, 1.0)
MODERATE_SEVERITY: Final[float] = 0.5
TARGET_MAX_FPR: Final[float] = 0.01
TARGET_MAX_FNR: Final[float] = 0.10
RECALL_FOR_MIN_SEVERITY: Final[float] = 0.90

# The benchmark's data (benchmarks/detection_quality.py and the default model's card use the same).
SWEEP_SET: Final[dict[str, float]] = {"hours": 1.0, "rate_hz": 1.0, "seed": 11, "replicas": 2}
NORMAL_SET: Final[dict[str, float]] = {"hours": 1.0, "rate_hz": 0.25, "lccs": 8, "seed": 12}
UNITS_PER_LCC: Final[int] = 32
UNITS_PER_PSU: Final[int] = 16


def sweep_layout(
    severities: Sequence[float], replicas: int, units: int, units_per_psu: int
) -> tuple[int, int]:
    """(LCCs for unit faults, LCCs for PSU faults) a severity sweep needs; one PSU fault per supply."""
    if units % units_per_psu != 0:
        raise ValueError(f"units ({units}) must be a multiple of units_per_psu ({units_per_psu})")
    unit_faults = len(UNIT_FAULT_TYPES) * len(severities) * replicas
    psu_faults = len(PSU_FAULT_TYPES) * len(severities) * replicas
    psus_per_lcc = units // units_per_psu
    return math.ceil(unit_faults / units), math.ceil(psu_faults / psus_per_lcc)


def severity_sweep_faults(
    horizon_s: float,
    *,
    severities: Sequence[float] = DEFAULT_SEVERITIES,
    replicas: int = 2,
    units: int = 32,
    units_per_psu: int = 16,
    first_lcc_id: int = 1,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Fault spec: every type at every severity, `replicas` times, one fault per unit / supply.

    Unit faults fill the first LCCs unit by unit (the remaining units stay healthy); PSU faults
    take the supplies of the LCCs after them, so no unit carries two faults. Sensor faults cycle
    through the channels. Onsets are drawn (numpy, `seed`) uniform in 20-60 % of the run.
    """
    if not severities or any(not 0.0 < s <= 1.0 for s in severities):
        raise ValueError(f"severities must be non-empty and in (0, 1], got {list(severities)}")
    if replicas < 1:
        raise ValueError(f"replicas must be at least 1, got {replicas}")
    unit_lccs, _ = sweep_layout(severities, replicas, units, units_per_psu)
    rng = np.random.default_rng(seed)
    faults: list[dict[str, Any]] = []
    slot = 0
    for replica in range(replicas):
        for severity in severities:
            for kind in UNIT_FAULT_TYPES:
                entry: dict[str, Any] = {
                    "lcc": first_lcc_id + slot // units,
                    "unit": slot % units,
                    "type": kind,
                    "start_s": round(float(rng.uniform(0.2, 0.6)) * horizon_s, 3),
                    "severity": float(severity),
                }
                if kind in GRADUAL_FAULT_TYPES:
                    entry["ramp_s"] = 0.2 * horizon_s
                if kind in SENSOR_FAULT_TYPES:
                    entry["channel"] = CHANNELS[(slot + replica) % len(CHANNELS)]
                faults.append(entry)
                slot += 1
    psus_per_lcc = units // units_per_psu
    supply = 0
    for _ in range(replicas):
        for severity in severities:
            for kind in PSU_FAULT_TYPES:
                lcc = first_lcc_id + unit_lccs + supply // psus_per_lcc
                psu = supply % psus_per_lcc
                faults.append(
                    {
                        "lcc": lcc,
                        "unit": psu * units_per_psu,
                        "psu": psu,
                        "type": kind,
                        "start_s": round(float(rng.uniform(0.2, 0.6)) * horizon_s, 3),
                        "severity": float(severity),
                    }
                )
                supply += 1
    return faults


def sweep_frame() -> pd.DataFrame:
    """The labelled test set of SWEEP_SET: every fault type at DEFAULT_SEVERITIES."""
    replicas, seed = int(SWEEP_SET["replicas"]), int(SWEEP_SET["seed"])
    faults = severity_sweep_faults(SWEEP_SET["hours"] * 3600.0, replicas=replicas, seed=seed)
    unit_lccs, psu_lccs = sweep_layout(DEFAULT_SEVERITIES, replicas, UNITS_PER_LCC, UNITS_PER_PSU)
    return sim.generate(
        SWEEP_SET["hours"],
        rate_hz=SWEEP_SET["rate_hz"],
        lccs=unit_lccs + psu_lccs,
        units=UNITS_PER_LCC,
        units_per_psu=UNITS_PER_PSU,
        seed=seed,
        faults=faults,
        fault_mix="none",
    )


def normal_frame() -> pd.DataFrame:
    """Fault-free run of NORMAL_SET (other units, other seed) on which thresholds are chosen."""
    return sim.generate(
        NORMAL_SET["hours"],
        rate_hz=NORMAL_SET["rate_hz"],
        lccs=int(NORMAL_SET["lccs"]),
        units=UNITS_PER_LCC,
        units_per_psu=UNITS_PER_PSU,
        seed=int(NORMAL_SET["seed"]),
        fault_mix="none",
    )


def channel_matrix(frame: pd.DataFrame) -> npt.NDArray[np.float64]:
    """The model input: the 11 raw channels in schema order, float64, C-contiguous."""
    return np.ascontiguousarray(frame[list(CHANNELS)].to_numpy(np.float64))


def measure_model(
    model: ForestModel,
    normal_X: npt.NDArray[np.float64],
    frame: pd.DataFrame,
    X: npt.NDArray[np.float64],
    max_fpr: float = TARGET_MAX_FPR,
) -> dict[str, Any]:
    """Threshold on the normal rows' anomaly scores at `max_fpr`, then evaluate on `frame`."""
    threshold = threshold_at_fpr(-model.decision_function(normal_X), max_fpr)
    return evaluate_detection(frame, -model.decision_function(X), threshold)


def unit_index(frame: pd.DataFrame) -> npt.NDArray[np.uint32]:
    """A `sim.generate` frame's (lcc, unit) as one index 0..n_units-1 (rows are in time order)."""
    lcc = frame["lcc"].to_numpy(np.int64)
    index: npt.NDArray[np.uint32] = (
        (lcc - lcc.min()) * UNITS_PER_LCC + frame["unit"].to_numpy(np.int64)
    ).astype(np.uint32)
    return index


def measure_detector(model: ForestModel, frame: pd.DataFrame) -> dict[str, Any]:
    """Detection engine v2 at the model's own thresholds, on the rows scored after each unit's baseline.

    No threshold is re-chosen here: the shipped flags are what is measured. Rows of a unit still
    learning its baseline are never flagged and carry no fault in the sweep (every onset is later),
    so they are left out rather than counted as easy true negatives.
    """
    unit = unit_index(frame)
    # Each unit's setpoint and state, as the frames carry them: a v3 model expects every channel
    # from them (without, it has no expectation and judges only the rules and the forest).
    setpoint = frame["setpoint_a"].to_numpy(np.float32) if "setpoint_a" in frame.columns else None
    state = state_codes(frame["state"].to_numpy(), len(frame)) if "state" in frame.columns else None
    scores = UnitScorer(model, int(unit.max()) + 1).score(
        unit,
        frame["time_s"].to_numpy(np.float64),
        channel_matrix(frame),
        top_k=0,
        setpoint=setpoint,
        state=state,
    )
    judged = ~scores.learning
    rows = frame[judged].reset_index(drop=True)
    metrics = evaluate_detection(rows, scores.flagged[judged].astype(np.float64), 0.5)
    truth = rows["label"].to_numpy() == 1
    stage = scores.stage[judged]
    metrics["threshold"] = None
    metrics["learning_rows"] = int(scores.learning.sum())
    metrics["recall_by_stage"] = {
        "fleet": _ratio(int((truth & (stage == STAGE_FLEET)).sum()), int(truth.sum())),
        "baseline": _ratio(int((truth & (stage == STAGE_BASELINE)).sum()), int(truth.sum())),
    }
    metrics["fpr_by_stage"] = {
        "fleet": _ratio(int((~truth & (stage == STAGE_FLEET)).sum()), int((~truth).sum())),
        "baseline": _ratio(int((~truth & (stage == STAGE_BASELINE)).sum()), int((~truth).sum())),
    }
    return metrics


def threshold_at_fpr(normal_scores: npt.ArrayLike, max_fpr: float = TARGET_MAX_FPR) -> float:
    """Smallest threshold t with mean(normal_scores > t) <= max_fpr (flag: score > t)."""
    scores = np.sort(np.asarray(normal_scores, dtype=np.float64))
    if scores.size == 0 or not np.all(np.isfinite(scores)):
        raise ValueError(f"need a non-empty array of finite normal scores, got {scores.size} values")
    if not 0.0 <= max_fpr < 1.0:
        raise ValueError(f"max_fpr must be in [0, 1), got {max_fpr!r}")
    allowed_above = math.floor(max_fpr * scores.size)
    return float(scores[scores.size - 1 - allowed_above])


def _ratio(numerator: int, denominator: int) -> float | None:
    return None if denominator == 0 else numerator / denominator


def event_table(frame: pd.DataFrame, flagged: npt.NDArray[np.bool_]) -> pd.DataFrame:
    """One row per (fault, unit) event: onset, labelled samples, recall, time to first flag.

    An event is a run of labelled rows of one unit with one (fault_type, severity); its onset
    is the first labelled sample, `time_to_detect_s` is NaN if it was never flagged.
    """
    labelled = frame["label"].to_numpy() == 1
    rows = pd.DataFrame(
        {
            "lcc": frame["lcc"].to_numpy()[labelled],
            "unit": frame["unit"].to_numpy()[labelled],
            "fault_type": frame["fault_type"].astype(str).to_numpy()[labelled],
            "severity": frame["severity"].to_numpy()[labelled],
            "time_s": frame["time_s"].to_numpy()[labelled],
            "flagged": flagged[labelled],
        }
    )
    rows["flag_time"] = np.where(rows["flagged"], rows["time_s"], np.inf)
    events = rows.groupby(["lcc", "unit", "fault_type", "severity"], observed=True, sort=True).agg(
        onset_s=("time_s", "min"),
        samples=("time_s", "size"),
        flagged=("flagged", "sum"),
        first_flag_s=("flag_time", "min"),
    )
    events = events.reset_index()
    events["recall"] = events["flagged"] / events["samples"]
    detect = events["first_flag_s"] - events["onset_s"]
    events["time_to_detect_s"] = detect.where(np.isfinite(events["first_flag_s"]), np.nan)
    return events.drop(columns="first_flag_s")


def evaluate_detection(
    frame: pd.DataFrame,
    anomaly_score: npt.NDArray[np.float64],
    threshold: float,
    *,
    moderate_severity: float = MODERATE_SEVERITY,
    min_recall: float = RECALL_FOR_MIN_SEVERITY,
) -> dict[str, Any]:
    """Metrics of `anomaly_score > threshold` against the frame's ground truth.

    `frame` is a `sim.generate` frame (label, fault_type, severity, lcc, unit, time_s);
    recalls are per sample, times to detect per event (see `event_table`).
    """
    score = np.asarray(anomaly_score, dtype=np.float64)
    if score.shape != (len(frame),):
        raise ValueError(f"anomaly_score has shape {score.shape}, expected ({len(frame)},)")
    # NaN scores cannot come from the engine (NaN inputs route by the tree), but never count them as flags.
    flagged = score > threshold
    truth = frame["label"].to_numpy() == 1
    kinds = frame["fault_type"].astype(str).to_numpy()
    severity = frame["severity"].to_numpy()
    moderate = truth & np.isclose(severity, moderate_severity)
    normal = ~truth
    out: dict[str, Any] = {
        "threshold": float(threshold),
        "rows": len(frame),
        "normal_rows": int(normal.sum()),
        "fault_rows": int(truth.sum()),
        "fpr": _ratio(int((flagged & normal).sum()), int(normal.sum())),
        "fnr_all": _ratio(int((~flagged & truth).sum()), int(truth.sum())),
        "moderate_severity": moderate_severity,
        "fnr_moderate": _ratio(int((~flagged & moderate).sum()), int(moderate.sum())),
    }
    events = event_table(frame, flagged)
    severities = sorted({round(float(s), 6) for s in severity[truth]})
    out["fnr_by_severity"] = {
        f"{s:g}": _ratio(
            int((~flagged & truth & (np.isclose(severity, s))).sum()),
            int((truth & (np.isclose(severity, s))).sum()),
        )
        for s in severities
    }
    per_type: dict[str, Any] = {}
    for kind in sorted(set(kinds[truth].tolist())):
        of_kind = truth & (kinds == kind)
        by_severity: dict[str, float | None] = {}
        for s in severities:
            rows = of_kind & (np.isclose(severity, s))
            by_severity[f"{s:g}"] = _ratio(int((flagged & rows).sum()), int(rows.sum()))
        # Smallest swept severity from which recall stays >= min_recall at every higher one.
        min_severity: float | None = None
        for s in reversed(severities):
            value = by_severity[f"{s:g}"]
            if value is None:
                continue
            if value < min_recall:
                break
            min_severity = s
        kind_events = events[events["fault_type"] == kind]
        moderate_events = kind_events[np.isclose(kind_events["severity"], moderate_severity)]
        ttd = moderate_events["time_to_detect_s"].dropna()
        kind_moderate = of_kind & moderate
        per_type[kind] = {
            "recall_all": _ratio(int((flagged & of_kind).sum()), int(of_kind.sum())),
            "recall_moderate": _ratio(int((flagged & kind_moderate).sum()), int(kind_moderate.sum())),
            "recall_by_severity": by_severity,
            "min_severity_at_recall": min_severity,
            "events_moderate": len(moderate_events),
            "events_moderate_detected": len(ttd),
            "median_time_to_detect_s_moderate": float(np.median(ttd)) if len(ttd) else None,
        }
    out["per_fault_type"] = per_type
    out["min_recall_for_min_severity"] = min_recall
    return out


def meets_target(
    metrics: dict[str, Any], max_fnr: float = TARGET_MAX_FNR, max_fpr: float = TARGET_MAX_FPR
) -> bool:
    fpr, fnr = metrics["fpr"], metrics["fnr_moderate"]
    return fpr is not None and fnr is not None and fpr <= max_fpr and fnr <= max_fnr
