"""Parse raw LCC logs (docs/raw-format.md) and clean them with named rules.

Each rule repairs or drops one kind of field-log defect and counts what it did; the counts go
into the clean report. Rules run in the order of ``RULES``. A file that cannot be read at all
(bad encoding, missing header) is rejected with its name and line; a single bad line is dropped
and listed with its file and line, and the rest of the file still loads. A version-1 log (no
``setpoint_a`` / ``state`` columns) loads with both unknown: NaN and None.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pandas as pd

from laserguard.offline.raw_format import (
    CANONICAL_TIME_FORMAT,
    CANONICAL_TIME_PATTERN,
    CANONICAL_UNIT_PATTERN,
    COLUMNS_BY_MAGIC,
    EPOCH_PATTERN,
    FILE_GLOB,
    MAGIC,
    NUMERIC_FIELDS,
    SENTINEL_TEXT,
    TIME_FORMATS,
    state_name,
    unit_index_from_name,
)

# (rule name, what its count means), in the order the rules run.
RULES: Final[tuple[tuple[str, str], ...]] = (
    ("drop_duplicate_lines", "rows dropped: exact repeat of an earlier line of the file (re-sent)"),
    ("drop_malformed_lines", "rows dropped: wrong field count or a field that cannot be parsed"),
    ("normalize_unit_names", "rows changed: unit name such as l1 or LU-1 rewritten as L01"),
    ("normalize_timestamps", "rows changed: timestamp in another format rewritten as ISO-8601 UTC"),
    ("sentinel_to_missing", "cells changed: -999 or empty reading or setpoint set to missing"),
    ("glitch_to_missing", "cells changed: physically impossible reading (ADC glitch) set to missing"),
    ("normalize_states", "rows changed: state spelled otherwise (ON, wire code 2) rewritten as its name"),
    (
        "unknown_state_to_missing",
        "cells changed: empty or unknown state (not off/warming/on/derated) set to missing",
    ),
    ("drop_conflicting_duplicates", "rows dropped: same LCC, unit and time as an earlier, different row"),
    ("sort_late_rows", "rows moved: written after a later sample of the same file, put back in order"),
    ("gaps", "gaps found: missing stretches in a unit's series (reported, not filled)"),
)
RULE_NAMES: Final = tuple(name for name, _ in RULES)

# Readings outside these bounds cannot come from the hardware (sensor or ADC glitch); faults,
# however severe, stay well inside them.
PLAUSIBLE_RANGE: Final[dict[str, tuple[float, float]]] = {
    "drive_current_a": (-1.0, 100.0),
    "forward_voltage_v": (-1.0, 20.0),
    "optical_power_w": (-1.0, 200.0),
    "monitor_pd_ma": (-1.0, 1000.0),
    "diode_temp_c": (-60.0, 300.0),
    "heatsink_temp_c": (-60.0, 300.0),
    "tec_current_a": (-50.0, 50.0),
    "psu_voltage_v": (-1.0, 100.0),
    "psu_current_a": (-1.0, 1000.0),
    "psu_temp_c": (-60.0, 300.0),
    "psu_ripple_mv": (-1.0, 10000.0),
    "setpoint_a": (-1.0, 100.0),  # commanded, so within the drive current's range
}
# Timestamp spellings tried after the canonical one (all read as UTC); ISO8601 catches the
# remaining ISO variants (no milliseconds, no Z, an explicit offset).
PARSE_FORMATS: Final = (*TIME_FORMATS.values(), "ISO8601")
# A step longer than this many sample intervals is a gap.
GAP_FACTOR: Final = 1.5
MAX_LISTED_LINES: Final = 50


class RawFileError(ValueError):
    """A raw log that cannot be read at all; names the file and the line."""

    def __init__(self, file: str, line: int, reason: str) -> None:
        super().__init__(f"{file}:{line}: {reason}")
        self.file, self.line, self.reason = file, line, reason


@dataclass
class CleanResult:
    """Clean rows (one per lcc, unit, time; sorted) and what every rule did."""

    rows: pd.DataFrame
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(RULE_NAMES, 0))
    per_file: dict[str, dict[str, int]] = field(default_factory=dict)
    gap_missing_samples: int = 0
    rows_read: int = 0
    rejected_files: list[dict[str, Any]] = field(default_factory=list)
    dropped_lines: list[dict[str, Any]] = field(default_factory=list)  # first MAX_LISTED_LINES


@dataclass
class _FileRows:
    lcc: int
    rate_hz: float | None
    columns: tuple[str, ...]  # COLUMNS, or COLUMNS_V1 for a version-1 log
    fields: list[list[str]]
    line_numbers: list[int]
    duplicates: int
    malformed: list[tuple[int, str]]
    lines_read: int


def _header_value(headers: dict[str, str], key: str, name: str, line: int) -> str:
    if key not in headers:
        raise RawFileError(name, line, f"header has no '# {key}:' line")
    return headers[key]


def read_raw_file(path: Path) -> _FileRows:
    """Split one log into header and data fields; drop repeated and wrongly sized lines."""
    name = path.name
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        bad_line = data.count(b"\n", 0, exc.start) + 1
        raise RawFileError(name, bad_line, f"not UTF-8 text (byte {data[exc.start]:#04x})") from None
    lines = text.split("\n")
    columns = COLUMNS_BY_MAGIC.get(lines[0].strip()) if lines else None
    if columns is None:
        raise RawFileError(name, 1, f"expected {MAGIC!r} (or an older version), found {lines[0][:60]!r}")
    headers: dict[str, str] = {}
    index = 1
    while index < len(lines) and lines[index].startswith("#"):
        key, _, value = lines[index][1:].partition(":")
        headers[key.strip().lower()] = value.strip()
        index += 1
    column_line = index + 1
    lcc_text = _header_value(headers, "lcc", name, column_line)
    try:
        lcc = int(lcc_text)
        rate_hz = float(headers["rate_hz"]) if "rate_hz" in headers else None
    except ValueError:
        raise RawFileError(name, column_line, f"header value is not a number: {headers}") from None
    if index >= len(lines) or tuple(lines[index].strip().split(",")) != columns:
        found = lines[index][:80] if index < len(lines) else "end of file"
        raise RawFileError(
            name, column_line, f"expected the column line {','.join(columns)!r}, found {found!r}"
        )

    seen: set[str] = set()
    fields: list[list[str]] = []
    line_numbers: list[int] = []
    malformed: list[tuple[int, str]] = []
    duplicates = read = 0
    width = len(columns)
    for number, line in enumerate(lines[index + 1 :], start=index + 2):
        if not line.strip():
            continue
        read += 1
        if line in seen:  # rule drop_duplicate_lines
            duplicates += 1
            continue
        seen.add(line)
        parts = line.split(",")
        if len(parts) != width:  # rule drop_malformed_lines (the other causes: _clean_file)
            malformed.append((number, f"{len(parts)} fields, expected {width}"))
            continue
        fields.append(parts)
        line_numbers.append(number)
    return _FileRows(lcc, rate_hz, columns, fields, line_numbers, duplicates, malformed, read)


def normalize_timestamps(
    text: pd.Series,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
    """Rule normalize_timestamps: epoch ms, 'was canonical' and 'could not be parsed' per row."""
    # All units of a sample share its timestamp: parse each distinct text once.
    codes, distinct = pd.factorize(text)
    texts = pd.Series(distinct, dtype=object).str.strip()
    canonical = texts.str.match(CANONICAL_TIME_PATTERN).to_numpy(dtype=bool)
    parsed = pd.to_datetime(texts.where(canonical), format=CANONICAL_TIME_FORMAT, utc=True, errors="coerce")
    for fmt in PARSE_FORMATS:
        todo = parsed.isna().to_numpy()
        if not todo.any():
            break
        parsed = parsed.where(~todo, pd.to_datetime(texts.where(todo), format=fmt, utc=True, errors="coerce"))
    todo = parsed.isna().to_numpy() & texts.str.match(EPOCH_PATTERN).to_numpy(dtype=bool)
    if todo.any():
        seconds = pd.to_numeric(texts.where(todo), errors="coerce")
        parsed = parsed.where(~todo, pd.to_datetime(seconds * 1000.0, unit="ms", utc=True).dt.round("ms"))
    failed = parsed.isna().to_numpy()
    ms = np.zeros(len(texts), dtype=np.int64)
    ms[~failed] = parsed[~failed].astype("datetime64[ms, UTC]").astype("int64").to_numpy()
    return ms[codes], canonical[codes], failed[codes]


def normalize_unit_names(
    text: pd.Series,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
    """Rule normalize_unit_names: unit index, 'was canonical' and 'could not be parsed' per row."""
    codes, distinct = pd.factorize(text)
    unit = np.zeros(len(distinct), dtype=np.int64)
    failed = np.zeros(len(distinct), dtype=bool)
    canonical = np.zeros(len(distinct), dtype=bool)
    for i, name in enumerate(distinct):
        try:
            unit[i] = unit_index_from_name(str(name))
        except ValueError:
            failed[i] = True
        canonical[i] = CANONICAL_UNIT_PATTERN.match(str(name)) is not None
    return unit[codes], canonical[codes], failed[codes]


def sentinel_to_missing(text: pd.Series) -> npt.NDArray[np.bool_]:
    """Rule sentinel_to_missing: cells that mean 'no reading' (-999, empty)."""
    return np.asarray(text.isin(SENTINEL_TEXT).to_numpy(), dtype=bool)


def glitch_to_missing(values: npt.NDArray[np.float64], channel: str) -> npt.NDArray[np.bool_]:
    """Rule glitch_to_missing: readings the hardware cannot produce (outside PLAUSIBLE_RANGE)."""
    lo, hi = PLAUSIBLE_RANGE[channel]
    return ~np.isnan(values) & ((values < lo) | (values > hi))


def normalize_states(text: pd.Series) -> tuple[pd.Series, npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
    """Rules normalize_states and unknown_state_to_missing: the state name (None when unknown),
    'was spelled otherwise' and 'unknown' per row."""
    codes, distinct = pd.factorize(text)
    names = [state_name(str(spelled)) for spelled in distinct]
    canonical = np.asarray(
        [n == str(spelled) for n, spelled in zip(names, distinct, strict=True)], dtype=bool
    )
    unknown = np.asarray([n is None for n in names], dtype=bool)
    states = pd.Series(np.asarray(names, dtype=object)[codes], index=text.index, dtype=object)
    return states, ~canonical[codes] & ~unknown[codes], unknown[codes]


def drop_conflicting_duplicates(clean: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """Rule drop_conflicting_duplicates: keep the first row of each (unit, time) of a file."""
    conflicting = clean.duplicated(subset=["unit", "epoch_ms"], keep="first").to_numpy()
    return clean[~conflicting], int(conflicting.sum())


def sort_late_rows(clean: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """Rule sort_late_rows: count rows whose time is earlier than a line above them, then sort."""
    times = clean["epoch_ms"].to_numpy()
    late = int((times[1:] < np.maximum.accumulate(times)[:-1]).sum()) if len(times) else 0
    return clean.sort_values(["epoch_ms", "unit"], kind="stable").reset_index(drop=True), late


def _clean_file(rows: _FileRows, name: str, result: CleanResult) -> pd.DataFrame:
    counts = dict.fromkeys(RULE_NAMES, 0)
    counts["drop_duplicate_lines"] = rows.duplicates
    table = pd.DataFrame(rows.fields, columns=list(rows.columns), dtype=object)
    lines = np.asarray(rows.line_numbers, dtype=np.int64)
    reasons: list[tuple[int, str]] = list(rows.malformed)
    bad = np.zeros(len(table), dtype=bool)

    def reject(mask: npt.NDArray[np.bool_], column: str) -> None:
        for i in np.flatnonzero(mask & ~bad):
            reasons.append(
                (int(lines[i]), f"column {column!r} has unparsable value {table[column].iloc[i]!r}")
            )
        bad[:] |= mask

    epoch_ms, time_canonical, time_failed = normalize_timestamps(table["timestamp"])
    reject(time_failed, "timestamp")
    unit, unit_canonical, unit_failed = normalize_unit_names(table["unit"])
    reject(unit_failed, "unit")
    clean = pd.DataFrame({"lcc": rows.lcc, "unit": unit, "epoch_ms": epoch_ms})
    for column in ("psu", "label"):
        values = pd.to_numeric(table[column], errors="coerce")
        reject((values.isna() | (values != values.round())).to_numpy(), column)
        clean[column] = values.fillna(0).astype(np.int64)
    reject(~clean["label"].isin((0, 1)).to_numpy(), "label")
    severity = pd.to_numeric(table["severity"].replace("", "0"), errors="coerce")
    reject(severity.isna().to_numpy(), "severity")
    clean["severity"] = severity.fillna(0.0).astype(np.float64)
    clean["fault_type"] = table["fault_type"].replace("", "none")

    numeric = [c for c in NUMERIC_FIELDS if c in table.columns]
    sentinel = np.zeros((len(table), len(numeric)), dtype=bool)
    glitch = np.zeros_like(sentinel)
    for j, column in enumerate(numeric):
        text = table[column]
        sentinel[:, j] = sentinel_to_missing(text)
        values = pd.to_numeric(text.where(~sentinel[:, j]), errors="coerce").to_numpy(dtype=np.float64)
        reject(np.isnan(values) & ~sentinel[:, j], column)
        glitch[:, j] = glitch_to_missing(values, column)
        clean[column] = np.where(sentinel[:, j] | glitch[:, j], np.nan, values)
    if "state" in table.columns:
        clean["state"], state_respelled, state_unknown = normalize_states(table["state"])
    else:  # a version-1 log: the setpoint and state were not recorded
        clean["setpoint_a"] = np.nan
        clean["state"] = pd.Series([None] * len(table), dtype=object)
        state_respelled = state_unknown = np.zeros(len(table), dtype=bool)

    good = ~bad
    counts["drop_malformed_lines"] = len(reasons)
    counts["normalize_unit_names"] = int((~unit_canonical & good).sum())
    counts["normalize_timestamps"] = int((~time_canonical & good).sum())
    counts["sentinel_to_missing"] = int(sentinel[good].sum())
    counts["glitch_to_missing"] = int(glitch[good].sum())
    counts["normalize_states"] = int((state_respelled & good).sum())
    counts["unknown_state_to_missing"] = int((state_unknown & good).sum())
    clean = clean[good].reset_index(drop=True)

    clean, counts["drop_conflicting_duplicates"] = drop_conflicting_duplicates(clean)
    clean, counts["sort_late_rows"] = sort_late_rows(clean)
    gaps, missing = find_gaps(clean, rows.rate_hz)
    counts["gaps"] = gaps
    result.gap_missing_samples += missing
    clean["source"] = name

    for line, reason in sorted(reasons):
        if len(result.dropped_lines) < MAX_LISTED_LINES:
            result.dropped_lines.append({"file": name, "line": line, "reason": reason})
    result.per_file[name] = {"lines_read": rows.lines_read, "rows_clean": len(clean), **counts}
    result.rows_read += rows.lines_read
    for key, value in counts.items():
        result.counts[key] += value
    return clean


def find_gaps(clean: pd.DataFrame, rate_hz: float | None) -> tuple[int, int]:
    """Rule gaps: (number of gaps, samples missing in them) over every unit's series of a file."""
    gaps = missing = 0
    for _, series in clean.groupby("unit", sort=False)["epoch_ms"]:
        steps = np.diff(series.to_numpy())
        if len(steps) == 0:
            continue
        interval = 1000.0 / rate_hz if rate_hz else float(np.median(steps))
        long = steps[steps > GAP_FACTOR * interval]
        gaps += len(long)
        missing += int(np.round(long / interval).sum()) - len(long)
    return gaps, missing


def raw_log_files(raw_dir: Path) -> list[Path]:
    return sorted(p for p in raw_dir.glob(FILE_GLOB) if p.is_file())


def clean_files(paths: Iterable[Path]) -> CleanResult:
    """Read and clean every file; unreadable files are listed in ``rejected_files``."""
    result = CleanResult(rows=pd.DataFrame())
    frames = []
    for path in paths:
        try:
            rows = read_raw_file(path)
        except RawFileError as exc:
            result.rejected_files.append({"file": exc.file, "line": exc.line, "reason": exc.reason})
            continue
        frames.append(_clean_file(rows, path.name, result))
    if frames:
        result.rows = pd.concat(frames, ignore_index=True)
    return result
