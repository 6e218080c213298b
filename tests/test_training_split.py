"""train holds out time and whole units (never scattered rows); fleet cut from unseen folds; the
rules do not eat the thresholds' budget; a table's setpoint/state reach the scorer."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from laserguard.offline.baseline_fit import fit_baseline
from laserguard.offline.sensor_table import TableError, sensor_table, unit_context
from laserguard.offline.training import train
from laserguard.offline.training_split import fleet_folds, out_of_fold_fleet_decisions, time_split
from synthetic_telemetry import write_csvs


def _series(n_units: int, rows_per_unit: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows in time order, units interleaved like a fleet's frames."""
    unit = np.tile(np.arange(n_units, dtype=np.uint32), rows_per_unit)
    time_s = np.repeat(np.arange(rows_per_unit, dtype=np.float64), n_units)
    return unit, time_s


def test_split_holds_out_each_units_future_and_whole_units() -> None:
    unit, time_s = _series(16, 100)
    split = time_split(unit, test_size=0.25, unit_share=0.125, seed=3)
    assert len(split.held_unit_ids) == 2
    assert (split.train ^ split.held_time ^ split.held_units).all()  # a partition
    for u in range(16):
        rows = unit == u
        if u in split.held_unit_ids:
            assert split.held_units[rows].all()
            continue
        assert split.train[rows].sum() == 75 and split.held_time[rows].sum() == 25
        # Every held-out row is later than every training row of the same unit.
        assert time_s[rows & split.train].max() < time_s[rows & split.held_time].min()
    again = time_split(unit, test_size=0.25, unit_share=0.125, seed=3)
    assert again.held_unit_ids == split.held_unit_ids
    other = [time_split(unit, test_size=0.25, unit_share=0.125, seed=s).held_unit_ids for s in range(6)]
    assert len(set(other)) > 1  # the seed chooses the units


def test_few_units_hold_out_time_only() -> None:
    unit, _ = _series(3, 40)
    split = time_split(unit, test_size=0.5, seed=0)
    assert split.held_unit_ids == () and not split.held_units.any()
    assert split.held_time.sum() == 60
    with pytest.raises(ValueError, match="test_size"):
        time_split(unit, test_size=1.0)


def test_out_of_fold_scores_come_from_forests_that_never_saw_the_fold() -> None:
    unit, _ = _series(8, 10)
    X = np.arange(len(unit), dtype=np.float64)[:, None]
    fitted_on: list[set[int]] = []

    class Recorder:
        def __init__(self, rows: np.ndarray) -> None:
            self.rows = {int(r) for r in rows[:, 0]}
            fitted_on.append(self.rows)

        def decision_function(self, rows: np.ndarray) -> np.ndarray:
            # 1 when the forest saw the row (it must never), else 0.
            return np.array([float(int(r) in self.rows) for r in rows[:, 0]])

    decisions = out_of_fold_fleet_decisions(X, unit, Recorder, folds=4)
    assert len(fitted_on) == 4 and (decisions == 0).all()
    folds = fleet_folds(unit, 4)
    for u in range(8):  # a unit's rows all in one fold when there are enough units
        assert len(set(folds[unit == u].tolist())) == 1
    one_unit = np.zeros(100, dtype=np.uint32)  # too few units: contiguous blocks of time
    assert fleet_folds(one_unit, 4).tolist() == sorted(fleet_folds(one_unit, 4).tolist())


def test_missing_cells_in_training_data_do_not_silence_the_stage() -> None:
    rng = np.random.default_rng(0)
    unit, time_s = _series(8, 600)
    values = rng.normal(size=(len(unit), 2))
    values[rng.random(len(unit)) < 0.01, 0] = np.nan  # ~1 % dropouts: the 30-row window flags ~25 %
    fit = fit_baseline(
        unit, time_s, values, n_units=8, scored=[0, 1], baseline_samples=50, window=30, target_fpr=0.01
    )
    other_rows = fit.nominal_rows - fit.missing_flagged
    assert fit.missing_flagged > 0.1 * fit.nominal_rows
    # The statistic still flags about target_fpr of the rows the rule leaves (not zero).
    assert 0.5 * 0.01 * other_rows <= fit.baseline_flagged <= 0.01 * other_rows


def test_context_columns_become_the_scorers_setpoint_and_state() -> None:
    frame = pd.DataFrame(
        {
            "unit": [1, 1, 2],
            "t": [0.0, 1.0, 0.0],
            "x": [1.0, 2.0, 3.0],
            "setpoint_a": [8.0, np.nan, 0.0],
            "state": ["on", "", "off"],
        }
    )
    table = sensor_table(frame, unit_columns=["unit"], time_column="t", channels=["x"])
    assert table.state is not None and table.setpoint is not None
    # processing order is time order: rows 0, 2, 1
    assert table.state.tolist() == [2, 0, 2]  # empty state = on, as an old recording replays
    np.testing.assert_array_equal(table.setpoint, np.array([8.0, 0.0, np.nan], dtype=np.float32))
    assert unit_context(frame.drop(columns=["setpoint_a", "state"])) == (None, None)
    codes = unit_context(pd.DataFrame({"state": [0, 3]}))[1]
    assert codes is not None and codes.tolist() == [0, 3]
    with pytest.raises(TableError, match="'idle'"):
        unit_context(pd.DataFrame({"state": ["on", "idle"]}))
    with pytest.raises(TableError, match="state code 7"):
        unit_context(pd.DataFrame({"state": [2, 7]}))


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Any:
    data = write_csvs(tmp_path_factory.mktemp("telemetry"), n_rows=4000, seed=5)
    grid = {
        "model__n_estimators": [50],
        "model__max_samples": ["auto"],
        "model__contamination": [0.25],
        "model__max_features": [1.0],
    }
    return train(data, tmp_path_factory.mktemp("model"), n_jobs=1, cv_folds=2, param_grid=grid)


def test_report_gives_each_held_out_part_by_stage(trained: Any) -> None:
    report = json.loads((Path(trained.out_dir) / "report.json").read_text())
    parts = report["metrics"]["parts"]
    assert set(parts) == {"held_out_time", "held_out_units"}
    split = report["data"]["split_parts"]
    assert split["held_out_units"]["units"] and split["held_out_units"]["rows"] > 0
    for part in parts.values():
        assert part["normal_rows"] > 0 and part["anomalous_rows"] > 0
        flagged = part["fpr"] * part["normal_rows"]
        by_stage = sum(v * part["normal_rows"] for v in part["fpr_by_stage"].values())
        assert by_stage == pytest.approx(flagged)  # every flag belongs to exactly one stage
    assert "Held-out parts, by stage" in (Path(trained.out_dir) / "report.md").read_text()
    assert "time split" in report["data"]["split"]
