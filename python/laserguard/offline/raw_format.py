"""The raw LCC log format (docs/raw-format.md): names and spellings shared by writer and cleaner.

One file per LCC and UTC day, ``lcc<NN>_<YYYY-MM-DD>.log``: a few ``# key: value`` header lines,
a CSV column line, then one line per unit and sample. Field logs bend every rule below; the
cleaner (laserguard.offline.cleaning) knows each way they do. Version 2 added each unit's
context (``setpoint_a``, ``state``); version-1 logs, written before, are still read.
"""

from __future__ import annotations

import re
from typing import Final

from laserguard.offline.training_data import CONTEXT_COLUMNS, PSU_CHANNELS, UNIT_CHANNELS
from laserguard.wire.codec import UNIT_STATES

MAGIC: Final = "# laserguard raw LCC log v2"
MAGIC_V1: Final = "# laserguard raw LCC log v1"  # no setpoint_a / state columns
FILE_GLOB: Final = "lcc*_*.log"
GROUND_TRUTH_FILE: Final = "injected_defects.json"

CHANNELS: Final[tuple[str, ...]] = UNIT_CHANNELS + PSU_CHANNELS
CONTEXT_FIELDS: Final[tuple[str, ...]] = CONTEXT_COLUMNS  # the unit's setpoint (A) and state name
LABEL_FIELDS: Final = ("fault_type", "severity", "label")
COLUMNS: Final[tuple[str, ...]] = ("timestamp", "unit", "psu", *CHANNELS, *CONTEXT_FIELDS, *LABEL_FIELDS)
COLUMNS_V1: Final[tuple[str, ...]] = ("timestamp", "unit", "psu", *CHANNELS, *LABEL_FIELDS)
# The column line each magic line promises.
COLUMNS_BY_MAGIC: Final[dict[str, tuple[str, ...]]] = {MAGIC: COLUMNS, MAGIC_V1: COLUMNS_V1}
# Numeric cells: the sentinel and glitch rules apply to the channels and the setpoint alike.
NUMERIC_FIELDS: Final[tuple[str, ...]] = (*CHANNELS, "setpoint_a")

# The canonical spellings; everything else the cleaner accepts is counted as a repair.
CANONICAL_TIME_FORMAT: Final = "%Y-%m-%dT%H:%M:%S.%fZ"  # written with milliseconds
SENTINEL_TEXT: Final = ("-999", "-999.0", "")

# Other timestamp spellings found in field logs (all UTC), and the cleaner's parse formats.
TIME_FORMATS: Final[dict[str, str]] = {
    "space": "%Y-%m-%d %H:%M:%S.%f",
    "dotted_day_first": "%d.%m.%Y %H:%M:%S.%f",
}
EPOCH_PATTERN: Final = re.compile(r"^\d{9,11}(\.\d+)?$")
CANONICAL_TIME_PATTERN: Final = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")

# Unit names: front panels count from 1 (L01 is laserguard unit index 0).
UNIT_NAME_PATTERN: Final = re.compile(r"^(?:L|LU-?|U|UNIT)?0*(\d+)$", re.IGNORECASE)
CANONICAL_UNIT_PATTERN: Final = re.compile(r"^L\d{2,}$")


def canonical_unit_name(unit_index: int) -> str:
    return f"L{unit_index + 1:02d}"


def unit_index_from_name(name: str) -> int:
    """``L01``, ``l1``, ``LU-1``, ``U1`` -> 0. Raises ValueError naming the text."""
    match = UNIT_NAME_PATTERN.match(name.strip())
    if match is None or int(match.group(1)) < 1:
        raise ValueError(f"unrecognised unit name {name!r}")
    return int(match.group(1)) - 1


def log_file_name(lcc: int, day: str) -> str:
    return f"lcc{lcc:02d}_{day}.log"


def state_name(text: str) -> str | None:
    """A state as field logs spell it (``on``, `` ON ``, or the wire code ``2``) -> its name, or None."""
    spelled = text.strip().lower()
    if spelled in UNIT_STATES:
        return spelled
    if spelled.isdigit() and int(spelled) < len(UNIT_STATES):
        return UNIT_STATES[int(spelled)]
    return None
