"""`laserguard analyze`: clean_samples -> contract CSVs + EDA figures; and the whole offline sequence."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from laserguard import cli
from laserguard.model.forest import ForestModel
from laserguard.offline.clean_store import CLEAN_SAMPLES, read_clean_rows, upload_clean_rows
from laserguard.offline.cleaning import clean_files, raw_log_files
from laserguard.offline.training import train
from laserguard.offline.training_data import (
    FEATURE_COLUMNS,
    LXX_COLUMNS,
    LXX_EXPORT_COLUMNS,
    UNKNOWN_STATE,
    SchemaError,
    load_training_data,
)
from laserguard.offline.training_export import PSU_EXPORT_COLUMNS, apply_missing_policy
from laserguard.sim import FAULT_TYPES
from laserguard.wire.codec import UNIT_STATES
from mongo_fixtures import CHANNELS, mongo_server
from raw_pipeline_support import write_dataset

__all__ = ["mongo_server"]  # fixture used by name

TIME_TEXT = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SMALL_GRID = {
    "model__n_estimators": [50],
    "model__max_samples": ["auto", 0.6],
    "model__contamination": [0.2],
    "model__max_features": [1.0],
}


@pytest.fixture(scope="module")
def cleaned_db(mongo_server: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Any]]:
    """A database filled by `laserguard clean` from the shared small raw dataset."""
    import pymongo

    raw = tmp_path_factory.mktemp("raw")
    write_dataset(raw)
    name = f"lgtest_{uuid.uuid4().hex[:12]}"
    report_dir = tmp_path_factory.mktemp("report")
    args = ["clean", str(raw), "--mongo-uri", mongo_server.uri, "--db", name, "--report-dir", str(report_dir)]
    assert cli.main(args) == 0
    client: Any = pymongo.MongoClient(mongo_server.uri, serverSelectionTimeoutMS=5000, tz_aware=True)
    yield name, client[name]
    client.drop_database(name)
    client.close()


def _analyze(uri: str, db_name: str, out: Path, *extra: str) -> int:
    return cli.main(["analyze", "--mongo-uri", uri, "--db", db_name, "--out", str(out), *extra])


@pytest.fixture(scope="module")
def analyzed(
    mongo_server: Any, cleaned_db: tuple[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> Path:
    out = tmp_path_factory.mktemp("artifacts")
    assert _analyze(mongo_server.uri, cleaned_db[0], out) == 0
    return out


def test_csvs_follow_the_data_contract(analyzed: Path, cleaned_db: tuple[str, Any]) -> None:
    lxx = pd.read_csv(analyzed / "lxx_data.csv", dtype={"time": str})
    psu = pd.read_csv(analyzed / "psu_data.csv", dtype={"time": str})
    assert tuple(lxx.columns) == LXX_EXPORT_COLUMNS
    # The lab profile's states; empty cells where the raw log had an unknown state or setpoint.
    assert {"off", "warming", "on"} <= set(lxx["state"].dropna()) <= set(UNIT_STATES)
    assert lxx["state"].isna().any() and lxx["setpoint_a"].isna().any()
    assert tuple(psu.columns) == PSU_EXPORT_COLUMNS
    assert lxx["time"].str.match(TIME_TEXT).all() and psu["time"].str.match(TIME_TEXT).all()
    assert list(lxx["time"]) == sorted(lxx["time"])  # fixed-width text sorts in time order
    assert set(lxx["fault_type"]) <= set(FAULT_TYPES)
    assert set(lxx["label"]) == {0, 1}

    data = load_training_data(analyzed)  # the reader `laserguard train` uses
    db = cleaned_db[1]
    assert len(data) == len(lxx) == len(psu) == db[CLEAN_SAMPLES].count_documents({})
    # A missing reading is an empty cell, read back as NaN.
    nulls = sum(db[CLEAN_SAMPLES].count_documents({c: None}) for c in FEATURE_COLUMNS)
    assert int(np.isnan(data.X).sum()) == nulls > 0
    assert int(data.label.sum()) == db[CLEAN_SAMPLES].count_documents({"label": 1})
    assert data.feature_names == FEATURE_COLUMNS


def test_csv_values_are_the_stored_values(analyzed: Path, cleaned_db: tuple[str, Any]) -> None:
    stored = read_clean_rows(cleaned_db[1])
    stored = stored.sort_values(["time", "lcc", "unit"], kind="stable").reset_index(drop=True)
    data = load_training_data(analyzed)
    assert np.array_equal(data.X, stored[list(FEATURE_COLUMNS)].to_numpy(np.float64), equal_nan=True)
    assert np.array_equal(data.label, stored["label"].to_numpy(np.int64))
    assert np.array_equal(data.severity, stored["severity"].to_numpy(np.float64))
    # The context columns: carried through the CSV, empty (NaN / "") where unknown.
    assert data.setpoint_a is not None and data.state is not None
    assert np.array_equal(data.setpoint_a, stored["setpoint_a"].to_numpy(np.float64), equal_nan=True)
    assert data.state.tolist() == stored["state"].fillna(UNKNOWN_STATE).tolist()
    assert (data.state == UNKNOWN_STATE).sum() == stored["state"].isna().sum() > 0
    assert np.isfinite(data.setpoint_a).any() and set(data.state) - {UNKNOWN_STATE} <= set(UNIT_STATES)


def test_drop_leaves_out_rows_with_a_missing_reading(
    mongo_server: Any, cleaned_db: tuple[str, Any], tmp_path: Path
) -> None:
    name, db = cleaned_db
    assert _analyze(mongo_server.uri, name, tmp_path, "--missing", "drop", "--no-figures") == 0
    data = load_training_data(tmp_path)
    complete = {"$and": [{c: {"$ne": None}} for c in CHANNELS]}
    assert len(data) == db[CLEAN_SAMPLES].count_documents(complete) < db[CLEAN_SAMPLES].count_documents({})
    assert not np.isnan(data.X).any()
    assert not list(tmp_path.glob("*.png"))


def test_forward_fill_uses_the_units_own_last_reading() -> None:
    rows = pd.DataFrame(
        {
            "time": pd.to_datetime([0, 0, 1, 1, 2, 2], unit="s", utc=True),
            "lcc": [1] * 6,
            "unit": [0, 1, 0, 1, 0, 1],
            **{c: [1.0, 2.0, np.nan, 2.5, 3.0, np.nan] for c in CHANNELS},
        }
    ).iloc[[1, 0, 3, 2, 5, 4]]
    filled, dropped, n_filled = apply_missing_policy(rows, "ffill")
    assert dropped == 0 and n_filled == 2 * len(CHANNELS)
    by_unit = filled.sort_values(["unit", "time"])["drive_current_a"].tolist()
    assert by_unit == [1.0, 1.0, 3.0, 2.0, 2.5, 2.5]
    kept, dropped, _ = apply_missing_policy(rows, "drop")
    assert dropped == 2 and len(kept) == 4
    with pytest.raises(ValueError, match="unknown missing-value policy 'mean'"):
        apply_missing_policy(rows, "mean")  # type: ignore[arg-type]


def test_documents_stored_before_the_context_fields_export_as_unknown(
    mongo_server: Any, tmp_path: Path
) -> None:
    """clean_samples documents without setpoint_a / state (stored by an older `clean`)."""
    import pymongo

    raw = tmp_path / "raw"
    write_dataset(raw)
    rows = clean_files(raw_log_files(raw)[:1]).rows.iloc[:40]
    name = f"lgtest_{uuid.uuid4().hex[:12]}"
    client: Any = pymongo.MongoClient(mongo_server.uri, serverSelectionTimeoutMS=5000, tz_aware=True)
    try:
        upload_clean_rows(client[name], rows)
        older = {"_id": {"$lt": _first_ids(rows, 20)}}
        client[name][CLEAN_SAMPLES].update_many(older, {"$unset": {"setpoint_a": "", "state": ""}})
        assert client[name][CLEAN_SAMPLES].count_documents({"state": {"$exists": False}}) == 20
        assert _analyze(mongo_server.uri, name, tmp_path / "out", "--no-figures") == 0
    finally:
        client.drop_database(name)
        client.close()
    lxx = pd.read_csv(tmp_path / "out" / "lxx_data.csv", dtype={"time": str})
    assert tuple(lxx.columns) == LXX_EXPORT_COLUMNS and len(lxx) == 40
    data = load_training_data(tmp_path / "out")
    assert data.state is not None and data.setpoint_a is not None
    assert (data.state == UNKNOWN_STATE).sum() >= 20 and np.isnan(data.setpoint_a).sum() >= 20
    assert not np.isnan(data.X).all(axis=1).any()  # the readings of those rows are all there


def _first_ids(rows: pd.DataFrame, n: int) -> str:
    """The _id after the first ``n`` of ``rows``' documents (ids sort by lcc, unit, time)."""
    from laserguard.offline.clean_store import clean_sample_id

    ids = sorted(
        clean_sample_id(int(r.lcc), int(r.unit), int(r.epoch_ms)) for r in rows.itertuples(index=False)
    )
    return ids[n]


def test_training_csv_context_columns_are_optional_and_checked(analyzed: Path, tmp_path: Path) -> None:
    lxx = pd.read_csv(analyzed / "lxx_data.csv", dtype=str, keep_default_na=False)
    psu = (analyzed / "psu_data.csv").read_text()
    old = tmp_path / "old"
    old.mkdir()
    lxx[list(LXX_COLUMNS)].to_csv(old / "lxx_data.csv", index=False)
    (old / "psu_data.csv").write_text(psu)
    data = load_training_data(old)
    assert data.setpoint_a is None and data.state is None
    assert np.array_equal(data.X, load_training_data(analyzed).X, equal_nan=True)  # same features

    bad = tmp_path / "bad"
    bad.mkdir()
    lxx.loc[3, "state"] = "standby"
    lxx.to_csv(bad / "lxx_data.csv", index=False)
    (bad / "psu_data.csv").write_text(psu)
    with pytest.raises(SchemaError, match=r"column 'state' has unknown state 'standby' \(data row 4\)"):
        load_training_data(bad)
    lxx.loc[3, "state"] = "on"
    lxx.loc[5, "setpoint_a"] = "high"
    lxx.to_csv(bad / "lxx_data.csv", index=False)
    with pytest.raises(SchemaError, match="column 'setpoint_a' has non-numeric value 'high'"):
        load_training_data(bad)


def test_eda_figures_are_written(analyzed: Path) -> None:
    names = ["channel_distributions_by_unit.png", "correlation_matrix.png", "unit_timeseries_faults.png"]
    for name in names:
        content = (analyzed / name).read_bytes()
        assert content.startswith(PNG_MAGIC), name
        assert len(content) > 10_000, name  # a drawn figure, not an empty canvas


def test_empty_database_is_an_error(
    mongo_server: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    name = f"lgtest_{uuid.uuid4().hex[:12]}"
    assert _analyze(mongo_server.uri, name, tmp_path) == 2
    assert f"{name}.clean_samples is empty" in capsys.readouterr().err
    assert not (tmp_path / "lxx_data.csv").exists()


def test_simulate_clean_analyze_train_sequence(mongo_server: Any, tmp_path: Path) -> None:
    """The README's offline sequence on a small dataset (train with a 2-candidate grid)."""
    import pymongo

    name = f"lgtest_{uuid.uuid4().hex[:12]}"
    uri = mongo_server.uri
    simulate = [
        "simulate",
        "--hours",
        "0.25",
        "--lccs",
        "1",
        "--units",
        "8",
        "--units-per-psu",
        "4",
        "--fault-mix",
        "all",
    ]
    assert cli.main([*simulate, "--out", str(tmp_path / "sim"), "--raw-out", str(tmp_path / "raw")]) == 0
    clean = ["clean", str(tmp_path / "raw"), "--mongo-uri", uri, "--db", name]
    assert cli.main([*clean, "--report-dir", str(tmp_path / "artifacts")]) == 0
    assert _analyze(uri, name, tmp_path / "artifacts", "--no-figures") == 0
    try:
        result = train(
            tmp_path / "artifacts", tmp_path / "model", n_jobs=1, cv_folds=2, param_grid=SMALL_GRID
        )
    finally:
        client: Any = pymongo.MongoClient(uri)
        client.drop_database(name)
        client.close()

    clean_report = json.loads((tmp_path / "artifacts" / "clean_report.json").read_text())
    card = json.loads((tmp_path / "model" / "model_card.json").read_text())
    data = load_training_data(tmp_path / "artifacts")
    assert card["data"]["n_rows"] == len(data) <= clean_report["rows_clean"]
    assert 0.0 <= result.metrics["accuracy"] <= 1.0
    model = ForestModel.load(tmp_path / "model" / "model.lgf")
    scores = model.decision_function(data.X)
    assert scores.shape == (len(data),) and np.isfinite(scores).all()
