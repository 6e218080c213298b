"""The raw LCC log format (docs/raw-format.md): names and spellings shared by writer and cleaner.

One file per LCC and UTC day, ``lcc<NN>_<YYYY-MM-DD>.log``: a few ``# key: value`` header lines,
a CSV column line, then one line per unit and sample. Field logs bend every rule below; the
cleaner (laserguard.offline.cleaning) knows each way they do.
"""

from __future__ import annotations

import re
from typing import Final

from laserguard.offline.training_data import PSU_CHANNELS, UNIT_CHANNELS

MAGIC: Final = "# laserguard raw LCC log v1"
FILE_GLOB: Final = "lcc*_*.log"
GROUND_TRUTH_FILE: Final = "injected_defects.json"

CHANNELS: Final[tuple[str, ...]] = UNIT_CHANNELS + PSU_CHANNELS
LABEL_FIELDS: Final = ("fault_type", "severity", "label")
COLUMNS: Final[tuple[str, ...]] = ("timestamp", "unit", "psu", *CHANNELS, *LABEL_FIELDS)

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
