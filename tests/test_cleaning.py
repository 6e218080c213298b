"""Raw LCC logs -> cleaning rules -> clean_samples, checked against the injected ground truth."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from laserguard import cli
from laserguard.offline.clean_store import CLEAN_SAMPLES, clean_sample_id
from laserguard.offline.cleaning import RULE_NAMES, CleanResult, clean_files, raw_log_files
from laserguard.offline.raw_format import (
    COLUMNS,
    COLUMNS_V1,
    GROUND_TRUTH_FILE,
    MAGIC,
    MAGIC_V1,
    canonical_unit_name,
    state_name,
    unit_index_from_name,
)
from laserguard.wire.codec import UNIT_STATES
from mongo_fixtures import CHANNELS, db, mongo_client, mongo_server
from raw_pipeline_support import START, write_dataset

__all__ = ["db", "mongo_client", "mongo_server"]  # fixtures used by name


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame, dict[str, Any]]:
    raw = tmp_path_factory.mktemp("raw")
    frame, truth = write_dataset(raw)
    return raw, frame, truth


@pytest.fixture(scope="module")
def cleaned(dataset: tuple[Path, pd.DataFrame, dict[str, Any]]) -> CleanResult:
    return clean_files(raw_log_files(dataset[0]))


@pytest.mark.parametrize("rule", RULE_NAMES)
def test_each_rule_finds_exactly_what_was_injected(
    rule: str, dataset: tuple[Path, pd.DataFrame, dict[str, Any]], cleaned: CleanResult
) -> None:
    truth = dataset[2]
    if rule != "drop_conflicting_duplicates":  # the generator never writes one; see the hand-made file
        assert truth["totals"][rule] > 0, f"the dataset has no {rule} defect, so the test proves nothing"
    assert cleaned.counts[rule] == truth["totals"][rule]
    for name, file_truth in truth["files"].items():
        assert cleaned.per_file[name][rule] == file_truth[rule], name


def test_files_are_per_lcc_and_day_and_gaps_are_measured(
    dataset: tuple[Path, pd.DataFrame, dict[str, Any]], cleaned: CleanResult
) -> None:
    raw, _, truth = dataset
    assert [p.name for p in raw_log_files(raw)] == [
        "lcc01_2026-01-01.log",
        "lcc01_2026-01-02.log",
        "lcc02_2026-01-01.log",
        "lcc02_2026-01-02.log",
    ]
    assert cleaned.gap_missing_samples == truth["totals"]["gap_missing_samples"] > 0
    assert cleaned.rejected_files == []
    assert [d["reason"] for d in cleaned.dropped_lines] == [
        d["reason"] for d in cleaned.dropped_lines if f"fields, expected {len(COLUMNS)}" in d["reason"]
    ]


def test_clean_rows_are_the_simulated_rows(
    dataset: tuple[Path, pd.DataFrame, dict[str, Any]], cleaned: CleanResult
) -> None:
    _, frame, truth = dataset
    rows = cleaned.rows
    assert len(rows) == truth["totals"]["rows_written"]
    assert not rows.duplicated(["lcc", "unit", "epoch_ms"]).any()
    for _, times in rows.groupby("source")["epoch_ms"]:
        assert (np.diff(times.to_numpy()) >= 0).all()  # late rows put back in order
    sim = frame.assign(
        epoch_ms=round(START.timestamp() * 1000) + (frame["time_s"] * 1000).round().astype(np.int64)
    )
    merged = rows.merge(sim, on=["lcc", "unit", "epoch_ms"], suffixes=("", "_sim"), validate="one_to_one")
    assert len(merged) == len(rows)  # every clean row is a simulated sample (keys fully repaired)
    assert (merged["psu"] == merged["psu_sim"]).all()
    assert (merged["label"] == merged["label_sim"]).all()
    assert (merged["fault_type"] == merged["fault_type_sim"].astype(str)).all()
    repaired_cells = 0
    for channel in CHANNELS:
        clean, original = merged[channel].to_numpy(), merged[f"{channel}_sim"].to_numpy()
        both = ~np.isnan(clean) & ~np.isnan(original)
        # Written with 9 significant digits: the float32 reading comes back bit for bit.
        assert np.array_equal(clean[both].astype(np.float32), original[both])
        assert not (~np.isnan(clean) & np.isnan(original)).any()
        repaired_cells += int((np.isnan(clean) & ~np.isnan(original)).sum())
    # The context: the setpoint bit for bit where both are known, the state by name.
    clean_setpoint, sim_setpoint = merged["setpoint_a"].to_numpy(), merged["setpoint_a_sim"].to_numpy()
    both = ~np.isnan(clean_setpoint) & ~np.isnan(sim_setpoint)
    assert np.array_equal(clean_setpoint[both].astype(np.float32), sim_setpoint[both].astype(np.float32))
    assert not (~np.isnan(clean_setpoint) & np.isnan(sim_setpoint)).any()
    repaired_cells += int((np.isnan(clean_setpoint) & ~np.isnan(sim_setpoint)).sum())
    known = merged["state"].notna().to_numpy()
    assert (merged["state"][known] == merged["state_sim"][known].astype(str)).all()
    assert {"off", "warming", "on"} <= set(merged["state"][known]) <= set(UNIT_STATES)  # lab profile
    injected = truth["totals"]
    assert (
        repaired_cells
        == injected["sentinel_to_missing"]
        - injected["simulator_missing_cells"]
        + injected["glitch_to_missing"]
    )
    assert int((~known).sum()) == injected["unknown_state_to_missing"]


def test_raw_files_are_deterministic_from_the_seed(
    dataset: tuple[Path, pd.DataFrame, dict[str, Any]], tmp_path: Path
) -> None:
    raw = dataset[0]
    _, truth_again = write_dataset(tmp_path / "same")
    _, truth_other = write_dataset(tmp_path / "other", seed=6)
    for path in raw_log_files(raw):
        assert (tmp_path / "same" / path.name).read_bytes() == path.read_bytes()
        assert (tmp_path / "other" / path.name).read_bytes() != path.read_bytes()
    assert truth_again == json.loads((raw / GROUND_TRUTH_FILE).read_text())
    assert truth_other["totals"] != truth_again["totals"]


def test_unit_name_spellings() -> None:
    assert [unit_index_from_name(n) for n in ("L01", "l1", "LU-1", "lu01", "U1", " L12 ")] == [
        0,
        0,
        0,
        0,
        0,
        11,
    ]
    assert canonical_unit_name(0) == "L01" and canonical_unit_name(11) == "L12"
    for bad in ("X7", "L0", "", "L-"):
        with pytest.raises(ValueError, match=f"unrecognised unit name {bad!r}"):
            unit_index_from_name(bad)


def _row(
    timestamp: str,
    unit: str,
    power: str = "7.5",
    label: str = "0",
    setpoint: str = "7.5",
    state: str = "on",
    columns: tuple[str, ...] = COLUMNS,
) -> str:
    values = {c: "1.0" for c in columns}
    values.update(timestamp=timestamp, unit=unit, psu="0", optical_power_w=power, fault_type="none")
    values.update(severity="0", label=label)
    if "state" in columns:
        values.update(setpoint_a=setpoint, state=state)
    return ",".join(values[c] for c in columns)


def _write_log(path: Path, rows: list[str], lcc: int = 1, version: int = 2) -> Path:
    magic, columns = (MAGIC, COLUMNS) if version == 2 else (MAGIC_V1, COLUMNS_V1)
    header = [magic, f"# lcc: {lcc}", "# date: 2026-01-01", "# rate_hz: 1", ",".join(columns)]
    path.write_text("\n".join(header + rows) + "\n", encoding="utf-8")
    return path


def test_hand_written_file_every_spelling_and_defect(tmp_path: Path) -> None:
    rows = [
        _row("2026-01-01T00:00:00.000Z", "L01"),
        _row("2026-01-01 00:00:01.000", "l1"),  # other format, other spelling
        _row("01.01.2026 00:00:02.000", "LU-1", power="-999"),
        _row("1767225603.000", "L01", power=""),
        _row("2026-01-01T00:00:03.000Z", "L01", power="7.6"),  # same key as the epoch row, other value
        _row("2026-01-01T01:00:04+01:00", "L01", power="65535"),  # ISO with an offset
        _row("2026-01-01T00:00:04.000Z", "X7"),  # unknown unit -> line dropped
        _row("yesterday", "L02"),  # unparsable time -> line dropped
        _row("2026-01-01T00:00:05.000Z", "L01", label="2"),  # bad label -> line dropped
        _row("2026-01-01T00:00:05.000Z", "L01", power="lots"),  # non-numeric reading -> line dropped
        _row("2026-01-01T00:00:09.000Z", "L01"),  # 5 s step: a gap of 4 samples
        _row("2026-01-01T00:00:09.000Z", "L02"),
        _row("2026-01-01T00:00:08.000Z", "L02"),  # late
    ]
    path = _write_log(tmp_path / "lcc01_2026-01-01.log", rows)
    result = clean_files([path])
    assert result.counts == {
        "drop_duplicate_lines": 0,
        "drop_malformed_lines": 4,
        "normalize_unit_names": 2,
        "normalize_timestamps": 4,
        "sentinel_to_missing": 2,
        "glitch_to_missing": 1,
        "normalize_states": 0,
        "unknown_state_to_missing": 0,
        "drop_conflicting_duplicates": 1,
        "sort_late_rows": 1,
        "gaps": 1,
    }
    assert result.gap_missing_samples == 4
    assert [(d["line"], d["reason"]) for d in result.dropped_lines] == [
        (12, "column 'unit' has unparsable value 'X7'"),
        (13, "column 'timestamp' has unparsable value 'yesterday'"),
        (14, "column 'label' has unparsable value '2'"),
        (15, "column 'optical_power_w' has unparsable value 'lots'"),
    ]
    unit0 = result.rows[result.rows["unit"] == 0]
    assert unit0["epoch_ms"].tolist() == [1767225600000 + 1000 * s for s in (0, 1, 2, 3, 4, 9)]
    assert np.isnan(unit0["optical_power_w"].to_numpy()[[2, 3, 4]]).all()  # -999, empty (kept first), glitch
    assert result.rows[result.rows["unit"] == 1]["epoch_ms"].tolist() == [1767225608000, 1767225609000]


def test_hand_written_file_setpoint_and_state_spellings(tmp_path: Path) -> None:
    t = "2026-01-01T00:00:{:02d}.000Z"
    rows = [
        _row(t.format(0), "L01", setpoint="8", state="on"),
        _row(t.format(1), "L01", setpoint="6.5", state="DERATED"),  # capitals
        _row(t.format(2), "L01", setpoint="0", state="0"),  # the wire code of off
        _row(t.format(3), "L01", setpoint="-999", state=" Warming "),  # sentinel setpoint
        _row(t.format(4), "L01", setpoint="65535", state="standby"),  # glitch, no such state
        _row(t.format(5), "L01", setpoint="", state=""),  # both unknown
        _row(t.format(6), "L01", setpoint="7", state="4"),  # no wire code 4
        _row(t.format(7), "L01", setpoint="lots"),  # a setpoint that is no number: line dropped
    ]
    result = clean_files([_write_log(tmp_path / "lcc01_2026-01-01.log", rows)])
    assert {k: v for k, v in result.counts.items() if v} == {
        "drop_malformed_lines": 1,
        "sentinel_to_missing": 2,
        "glitch_to_missing": 1,
        "normalize_states": 3,
        "unknown_state_to_missing": 3,
    }
    assert result.dropped_lines == [
        {
            "file": "lcc01_2026-01-01.log",
            "line": 13,
            "reason": "column 'setpoint_a' has unparsable value 'lots'",
        }
    ]
    clean = result.rows
    assert clean["state"].tolist() == ["on", "derated", "off", "warming", None, None, None]
    assert np.array_equal(
        clean["setpoint_a"].to_numpy(), [8.0, 6.5, 0.0, np.nan, np.nan, np.nan, 7.0], equal_nan=True
    )
    assert not clean[list(CHANNELS)].isna().to_numpy().any()  # an unknown state keeps the readings
    assert [state_name(code) for code in "0123"] == list(UNIT_STATES)


def test_version_1_log_without_context_still_cleans(tmp_path: Path) -> None:
    t = "2026-01-01T00:00:{:02d}.000Z"
    rows = [_row(t.format(s), u, columns=COLUMNS_V1) for s in range(3) for u in ("L01", "l2")]
    old = _write_log(tmp_path / "lcc01_2026-01-01.log", rows, version=1)
    assert "setpoint_a" not in old.read_text()
    new = _write_log(tmp_path / "lcc02_2026-01-01.log", [_row(t.format(0), "L01")], lcc=2)
    result = clean_files([old, new])
    assert result.rejected_files == [] and result.dropped_lines == []
    assert result.counts["normalize_unit_names"] == 3 and result.counts["unknown_state_to_missing"] == 0
    v1 = result.rows[result.rows["lcc"] == 1]
    assert len(v1) == 6 and v1["state"].isna().all() and v1["setpoint_a"].isna().all()
    assert (v1["optical_power_w"] == 7.5).all()
    v2 = result.rows[result.rows["lcc"] == 2]
    assert v2["state"].tolist() == ["on"] and v2["setpoint_a"].tolist() == [7.5]
    # The magic line decides the column line: a v1 header over v2 columns is refused.
    mixed = tmp_path / "lcc03_2026-01-01.log"
    mixed.write_text(new.read_text().replace(MAGIC, MAGIC_V1), encoding="utf-8")
    (rejected,) = clean_files([mixed]).rejected_files
    assert rejected["line"] == 5 and ",".join(COLUMNS_V1) in rejected["reason"]


@pytest.mark.parametrize(
    ("content", "line", "reason"),
    [
        (b"timestamp,unit\n1,2\n", 1, "expected '# laserguard raw LCC log v2' (or an older version)"),
        (MAGIC.encode() + b"\n# date: 2026-01-01\nx\n", 3, "header has no '# lcc:' line"),
        (MAGIC.encode() + b"\n# lcc: 1\ntime,unit,power\n", 3, "expected the column line"),
        (None, 7, "not UTF-8 text (byte 0xff)"),
    ],
)
def test_unreadable_file_is_named_with_its_line(
    tmp_path: Path, content: bytes | None, line: int, reason: str
) -> None:
    good = _write_log(tmp_path / "lcc01_2026-01-01.log", [_row("2026-01-01T00:00:00.000Z", "L01")])
    bad = tmp_path / "lcc02_2026-01-01.log"
    if content is None:  # a valid file with one corrupt byte in its second data line
        text = _write_log(bad, [_row("2026-01-01T00:00:00.000Z", "L01")] * 2).read_bytes()
        content = text.replace(b"L01", b"L\xff1", 2).replace(b"L\xff1", b"L01", 1)
    bad.write_bytes(content)
    result = clean_files([good, bad])
    assert len(result.rows) == 1 and result.rows["source"].tolist() == [good.name]
    assert len(result.rejected_files) == 1
    rejected = result.rejected_files[0]
    assert (rejected["file"], rejected["line"]) == (bad.name, line)
    assert reason in rejected["reason"]


def _clean_cli(raw: Path, uri: str, db_name: str, report_dir: Path) -> tuple[int, dict[str, Any]]:
    status = cli.main(
        ["clean", str(raw), "--mongo-uri", uri, "--db", db_name, "--report-dir", str(report_dir)]
    )
    report = json.loads((report_dir / "clean_report.json").read_text())
    return status, report


def test_clean_twice_stores_nothing_twice(
    dataset: tuple[Path, pd.DataFrame, dict[str, Any]], mongo_server: Any, db: Any, tmp_path: Path
) -> None:
    raw, _, truth = dataset
    status, first = _clean_cli(raw, mongo_server.uri, db.name, tmp_path / "first")
    assert status == 0
    stored = db[CLEAN_SAMPLES].count_documents({})
    assert stored == first["rows_clean"] == first["upload"]["new"] == truth["totals"]["rows_written"]
    assert {r["rule"]: r["count"] for r in first["rules"]} == {k: truth["totals"][k] for k in RULE_NAMES}
    status, second = _clean_cli(raw, mongo_server.uri, db.name, tmp_path / "second")
    assert status == 0
    assert db[CLEAN_SAMPLES].count_documents({}) == stored
    assert second["upload"]["new"] == 0
    assert second["upload"]["already_stored"] == stored
    assert (tmp_path / "second" / "clean_report.md").read_text().count("0 new") == 1

    # The document: deterministic _id, BSON date, null for a missing reading.
    doc = db[CLEAN_SAMPLES].find_one({"_id": clean_sample_id(1, 0, round(START.timestamp() * 1000))})
    assert doc is not None and doc["lcc"] == 1 and doc["unit"] == 0
    assert doc["time"].replace(tzinfo=START.tzinfo) == START
    assert set(CHANNELS) <= set(doc) and doc["source"] == "lcc01_2026-01-01.log"
    assert db[CLEAN_SAMPLES].count_documents({"optical_power_w": None}) > 0
    # The context: a float and a name, or null when unknown.
    assert isinstance(doc["setpoint_a"], float) and doc["state"] in UNIT_STATES
    assert (
        db[CLEAN_SAMPLES].count_documents({"state": None}) == truth["totals"]["unknown_state_to_missing"] > 0
    )


def test_corrupt_file_is_reported_and_the_rest_loads(
    dataset: tuple[Path, pd.DataFrame, dict[str, Any]], mongo_server: Any, db: Any, tmp_path: Path
) -> None:
    raw = tmp_path / "raw"
    shutil.copytree(dataset[0], raw)
    broken = raw / "lcc02_2026-01-02.log"
    lines = broken.read_bytes().split(b"\n")
    lines[40] = b"\x00\xfe\xfe garbage"
    broken.write_bytes(b"\n".join(lines))
    status, report = _clean_cli(raw, mongo_server.uri, db.name, tmp_path / "report")
    assert status == 1
    assert report["rejected_files"] == [
        {"file": broken.name, "line": 41, "reason": "not UTF-8 text (byte 0xfe)"}
    ]
    expected = sum(t["rows_written"] for n, t in dataset[2]["files"].items() if n != broken.name)
    assert report["files_loaded"] == 3
    assert db[CLEAN_SAMPLES].count_documents({}) == expected == report["upload"]["new"]
    assert db[CLEAN_SAMPLES].count_documents({"source": broken.name}) == 0
    assert "`lcc02_2026-01-02.log` line 41" in (tmp_path / "report" / "clean_report.md").read_text()


def test_simulate_writes_raw_logs_and_their_ground_truth(tmp_path: Path) -> None:
    status = cli.main(
        [
            *("simulate", "--hours", "0.05", "--lccs", "1", "--units", "2", "--units-per-psu", "2"),
            *("--out", str(tmp_path / "sim"), "--raw-out", str(tmp_path / "raw")),
            *("--start", "2026-03-04T05:06:07Z", "--seed", "3"),
        ]
    )
    assert status == 0
    assert (tmp_path / "sim" / "telemetry.csv").is_file()  # the existing output is unchanged
    truth = json.loads((tmp_path / "raw" / GROUND_TRUTH_FILE).read_text())
    assert list(truth["files"]) == ["lcc01_2026-03-04.log"]
    text = (tmp_path / "raw" / "lcc01_2026-03-04.log").read_text().splitlines()
    assert text[:5] == [MAGIC, "# lcc: 1", "# date: 2026-03-04", "# rate_hz: 1", ",".join(COLUMNS)]
    assert text[5].startswith("2026-03-04T05:06:07.000Z,L01,")
    assert truth["rows_simulated"] == 180 * 2
    bad_start = [
        "simulate",
        "--hours",
        "0.01",
        "--out",
        str(tmp_path / "s"),
        "--raw-out",
        str(tmp_path / "r"),
    ]
    assert cli.main([*bad_start, "--start", "noon"]) == 2
    assert not (tmp_path / "s").exists()  # rejected before simulating anything
