"""Write simulator output as raw LCC log files with field-log defects (docs/raw-format.md).

Every defect is injected deterministically from the seed into rows that carry no other defect,
and ``injected_defects.json`` records how many of each went into every file, keyed by the name
of the cleaning rule (laserguard.offline.cleaning) that must find it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from laserguard.offline.raw_format import (
    CHANNELS,
    COLUMNS,
    GROUND_TRUTH_FILE,
    MAGIC,
    NUMERIC_FIELDS,
    TIME_FORMATS,
    canonical_unit_name,
    log_file_name,
)
from laserguard.wire.codec import UNIT_STATES

MS_PER_DAY = 86_400_000
# Values a glitching ADC reports: full-scale unsigned and signed 16-bit codes, far outside any
# physically possible reading (cleaning.PLAUSIBLE_RANGE).
GLITCH_VALUES = ("65535", "-32768")
# State cells no LCC should write: empty, a placeholder, a wire code that does not exist.
UNKNOWN_STATE_TEXT = ("", "?", "unknown", "7")
DEFAULT_START = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class DefectRates:
    """Fraction of a file's rows that get each defect (each row gets at most one)."""

    duplicate: float = 0.005
    late: float = 0.002
    time_format: float = 0.02
    unit_name: float = 0.03
    sentinel: float = 0.005
    glitch: float = 0.001
    state_spelling: float = 0.01  # ON, On or the wire code instead of the state's name
    unknown_state: float = 0.002
    truncated_last_line: float = 0.5  # probability per file
    gap_every_frames: int = 7200  # one logger outage per this many frames (at least one per file)


def _canonical_times(epoch_ms: npt.NDArray[np.int64]) -> npt.NDArray[np.str_]:
    stamps = pd.to_datetime(epoch_ms, unit="ms", utc=True).strftime("%Y-%m-%dT%H:%M:%S.%f")
    return np.asarray([s[:-3] + "Z" for s in stamps], dtype=np.str_)


def _variant_time(epoch_ms: int, kind: str) -> str:
    moment = datetime.fromtimestamp(epoch_ms / 1000.0, tz=UTC)
    if kind == "epoch":
        return f"{epoch_ms / 1000.0:.3f}"
    return moment.strftime(TIME_FORMATS[kind])[:-3]


def _variant_unit(unit_index: int, rng: np.random.Generator) -> str:
    number = unit_index + 1
    return (f"l{number}", f"LU-{number}")[int(rng.integers(2))]


def _variant_state(name: str, rng: np.random.Generator) -> str:
    kind = int(rng.integers(3))
    if kind == 2:
        return str(UNIT_STATES.index(name))
    return name.upper() if kind == 0 else name.title()


def _context(rows: pd.DataFrame) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.str_]]:
    """Each row's setpoint (NaN unknown) and state name ("" unknown); frames from before the
    simulator reported them have neither."""
    setpoint = (
        rows["setpoint_a"].to_numpy(dtype=np.float64)
        if "setpoint_a" in rows.columns
        else np.full(len(rows), np.nan)
    )
    state = rows["state"].astype(str).to_numpy() if "state" in rows.columns else np.full(len(rows), "")
    known = np.isin(state, UNIT_STATES)
    return setpoint, np.where(known, state, "").astype(np.str_)


def _clean_lines(rows: pd.DataFrame, epoch_ms: npt.NDArray[np.int64]) -> list[str]:
    table = pd.DataFrame(
        {
            "timestamp": _canonical_times(epoch_ms),
            "unit": [canonical_unit_name(int(u)) for u in rows["unit"]],
            "psu": rows["psu"].to_numpy(),
        }
    )
    for name in CHANNELS:
        # float64 of the float32 reading: '%.9g' round-trips it exactly.
        table[name] = rows[name].to_numpy(dtype=np.float64)
    table["setpoint_a"], table["state"] = _context(rows)
    table["fault_type"] = rows["fault_type"].astype(str).to_numpy()
    table["severity"] = rows["severity"].to_numpy(dtype=np.float64)
    table["label"] = rows["label"].to_numpy(dtype=np.int64)
    text = table.to_csv(index=False, header=False, float_format="%.9g", na_rep="", lineterminator="\n")
    return str(text).splitlines()


def _set_field(line: str, index: int, value: str) -> str:
    fields = line.split(",")
    fields[index] = value
    return ",".join(fields)


def _gap_frames(n_frames: int, every: int, rng: np.random.Generator) -> list[tuple[int, int]]:
    """Logger outages as [first, end) frame ranges, away from the file's edges and each other."""
    if n_frames < 60:
        return []
    count = 1 + n_frames // every
    segment = n_frames // count
    gaps = []
    for k in range(count):
        length = int(rng.integers(3, max(4, min(31, segment // 5))))
        lo = k * segment + segment // 4
        first = int(rng.integers(lo, max(lo + 1, k * segment + 3 * segment // 4 - length)))
        gaps.append((first, first + length))
    return gaps


def _inject_file(
    rows: pd.DataFrame, epoch_ms: npt.NDArray[np.int64], rates: DefectRates, rng: np.random.Generator
) -> tuple[list[str], dict[str, Any]]:
    """The data lines of one file and the ground truth of what was injected into them."""
    n_units = int(rows["unit"].nunique())
    frame_times, frame_of_row = np.unique(epoch_ms, return_inverse=True)
    gaps = _gap_frames(len(frame_times), rates.gap_every_frames, rng)
    keep = np.ones(len(rows), dtype=bool)
    for first, end in gaps:
        keep &= ~((frame_of_row >= first) & (frame_of_row < end))
    rows, epoch_ms = rows[keep], epoch_ms[keep]
    lines = _clean_lines(rows, epoch_ms)
    n = len(lines)
    units = rows["unit"].to_numpy()
    setpoint, state = _context(rows)
    has_missing = rows[list(CHANNELS)].isna().any(axis=1).to_numpy() | np.isnan(setpoint)
    has_state = state != ""

    # Defects go only into rows well before the end, so the last line stays free to be truncated
    # and every late row / duplicate copy still lands inside the file.
    margin = 2 * n_units + 2
    eligible_end = max(0, n - margin)
    taken = np.zeros(n, dtype=bool)
    # Late rows: written 1-2 frames after their time, at positions far enough apart to not interact.
    stride = 4 * n_units + 4
    late_slots = np.arange(0, eligible_end, stride)
    n_late = min(len(late_slots), round(rates.late * n))
    late_rows = np.sort(rng.choice(late_slots, size=n_late, replace=False)) if n_late else np.array([], int)
    late_offsets = rng.integers(n_units, 2 * n_units, size=n_late) if n_late else np.array([], int)
    taken[late_rows] = True

    free = rng.permutation(np.flatnonzero(~taken[:eligible_end]))
    counts = {
        "duplicate": round(rates.duplicate * n),
        "time_format": round(rates.time_format * n),
        "unit_name": round(rates.unit_name * n),
        "sentinel": round(rates.sentinel * n),
        "glitch": round(rates.glitch * n),
        "state_spelling": round(rates.state_spelling * n),
        "unknown_state": round(rates.unknown_state * n),
    }
    chosen: dict[str, npt.NDArray[np.intp]] = {}
    start = 0
    for kind, count in counts.items():
        pool = free[start:]
        if kind in ("sentinel", "glitch"):
            pool = pool[~has_missing[pool]]  # the cell count stays exact
        elif kind in ("state_spelling", "unknown_state"):
            pool = pool[has_state[pool]]
        chosen[kind] = np.sort(pool[:count])
        taken[chosen[kind]] = True
        free = free[~taken[free]]

    for i in chosen["time_format"]:
        kind = ("space", "dotted_day_first", "epoch")[int(rng.integers(3))]
        lines[i] = _set_field(lines[i], 0, _variant_time(int(epoch_ms[i]), kind))
    for i in chosen["unit_name"]:
        lines[i] = _set_field(lines[i], 1, _variant_unit(int(units[i]), rng))
    numeric_field = {name: COLUMNS.index(name) for name in NUMERIC_FIELDS}
    for kind, values in (("sentinel", ("-999", "")), ("glitch", GLITCH_VALUES)):
        for i in chosen[kind]:
            field = numeric_field[NUMERIC_FIELDS[int(rng.integers(len(NUMERIC_FIELDS)))]]
            lines[i] = _set_field(lines[i], field, values[int(rng.integers(len(values)))])
    state_field = COLUMNS.index("state")
    for i in chosen["state_spelling"]:
        lines[i] = _set_field(lines[i], state_field, _variant_state(str(state[i]), rng))
    for i in chosen["unknown_state"]:
        text = UNKNOWN_STATE_TEXT[int(rng.integers(len(UNKNOWN_STATE_TEXT)))]
        lines[i] = _set_field(lines[i], state_field, text)

    # Place every line: a duplicate is re-sent 1..n_units lines later, a late row after its window.
    placed: list[tuple[float, int, str]] = [(float(i), 0, line) for i, line in enumerate(lines)]
    for i in chosen["duplicate"]:
        placed.append((float(i + int(rng.integers(1, n_units + 1))) + 0.5, 1, lines[i]))
    for i, offset in zip(late_rows, late_offsets, strict=True):
        placed[int(i)] = (float(i + offset) + 0.25, 0, lines[int(i)])
    placed.sort(key=lambda item: (item[0], item[1]))
    out = [line for _, _, line in placed]

    truncated = n > 0 and rng.random() < rates.truncated_last_line
    if truncated:
        fields = out[-1].split(",")
        cut = int(rng.integers(3, len(fields) - 2))
        out[-1] = ",".join(fields[:cut]) + "," + fields[cut][: len(fields[cut]) // 2]

    surviving = np.ones(n, dtype=bool)
    if truncated:
        surviving[n - 1] = False  # the last data line is never a defect row (margin above)
    kept = np.flatnonzero(surviving)
    missing_cells = int(rows[list(CHANNELS)].iloc[kept].isna().to_numpy().sum()) + int(
        np.isnan(setpoint[kept]).sum()
    )
    unknown_states = int((~has_state[kept]).sum())
    truth = {
        "rows_written": n - int(truncated),
        "drop_duplicate_lines": len(chosen["duplicate"]),
        "drop_malformed_lines": int(truncated),
        "normalize_unit_names": len(chosen["unit_name"]),
        "normalize_timestamps": len(chosen["time_format"]),
        "sentinel_to_missing": len(chosen["sentinel"]) + missing_cells,
        "glitch_to_missing": len(chosen["glitch"]),
        "normalize_states": len(chosen["state_spelling"]),
        "unknown_state_to_missing": len(chosen["unknown_state"]) + unknown_states,
        "drop_conflicting_duplicates": 0,
        "sort_late_rows": n_late,
        "gaps": len(gaps) * n_units,
        "gap_missing_samples": sum(end - first for first, end in gaps) * n_units,
        "simulator_missing_cells": missing_cells,
        "simulator_unknown_states": unknown_states,
        "gap_frames": [[int(frame_times[a]), int(frame_times[b - 1])] for a, b in gaps],
    }
    return out, truth


def write_raw_logs(
    frame: pd.DataFrame,
    out_dir: str | Path,
    *,
    start: datetime = DEFAULT_START,
    seed: int = 0,
    rates: DefectRates | None = None,
) -> dict[str, Any]:
    """Write ``frame`` (from laserguard.sim.generate) as raw logs; return the ground truth."""
    rates = rates or DefectRates()
    if start.tzinfo is None:
        raise ValueError(f"start time {start.isoformat()!r} needs a timezone (use UTC)")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    start_ms = round(start.timestamp() * 1000)
    epoch_ms = start_ms + np.round(frame["time_s"].to_numpy(dtype=np.float64) * 1000.0).astype(np.int64)
    day = epoch_ms // MS_PER_DAY
    rate_hz = float(frame.attrs.get("rate_hz", 1.0))
    files: dict[str, Any] = {}
    for lcc in sorted(int(x) for x in frame["lcc"].unique()):
        for d in sorted(int(x) for x in np.unique(day[frame["lcc"].to_numpy() == lcc])):
            mask = (frame["lcc"].to_numpy() == lcc) & (day == d)
            order = np.lexsort((frame["unit"].to_numpy()[mask], epoch_ms[mask]))
            rows = frame[mask].iloc[order]
            rng = np.random.default_rng([seed, lcc, d, 0x5241_5700])
            lines, truth = _inject_file(rows, epoch_ms[mask][order], rates, rng)
            day_text = datetime.fromtimestamp(d * MS_PER_DAY / 1000.0, tz=UTC).strftime("%Y-%m-%d")
            name = log_file_name(lcc, day_text)
            header = [
                MAGIC,
                f"# lcc: {lcc}",
                f"# date: {day_text}",
                f"# rate_hz: {rate_hz:g}",
                ",".join(COLUMNS),
            ]
            (out / name).write_text("\n".join(header + lines) + "\n", encoding="utf-8")
            files[name] = truth
    totals: dict[str, int] = {}
    for truth in files.values():
        for key, value in truth.items():
            if isinstance(value, int):
                totals[key] = totals.get(key, 0) + value
    record = {
        "seed": seed,
        "start": start.isoformat(),
        "rates": asdict(rates),
        "rows_simulated": len(frame),
        "totals": totals,
        "files": files,
    }
    (out / GROUND_TRUTH_FILE).write_text(json.dumps(record, indent=2), encoding="utf-8")
    return record
