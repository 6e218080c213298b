"""`laserguard train --data` and `laserguard score` on a sensor table with its own column names."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import laserguard
from laserguard import sim
from laserguard.wire.codec import CHANNELS

RENAME = {"lcc": "card", "unit": "slot", "time_s": "t"} | {c: f"ch{i}" for i, c in enumerate(CHANNELS)}
FAULTS = [{"lcc": 1, "unit": 4, "type": "facet_damage", "start_s": 150.0, "severity": 0.5}]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "laserguard.cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture(scope="module")
def tables(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("tables")
    nominal = sim.generate(240 / 3600, rate_hz=1.0, seed=21, fault_mix="none").rename(columns=RENAME)
    faulty = sim.generate(240 / 3600, rate_hz=1.0, seed=22, fault_mix="none", faults=FAULTS).rename(
        columns=RENAME
    )
    columns = ["card", "slot", "t", *[f"ch{i}" for i in range(len(CHANNELS))]]
    nominal[columns].to_csv(folder / "nominal.csv", index=False)
    # Shuffled rows: score must process them per unit in time order and answer in input order.
    faulty[[*columns, "label"]].sample(frac=1.0, random_state=0).to_csv(folder / "faulty.csv", index=False)
    return {"nominal": folder / "nominal.csv", "faulty": folder / "faulty.csv", "folder": folder}


def test_unlabelled_table_trains_both_stages_and_scores_in_input_order(tables: dict[str, Path]) -> None:
    out = tables["folder"] / "model"
    trained = run(
        "train", "--data", str(tables["nominal"]), "--unit-column", "card", "--unit-column", "slot",
        "--time-column", "t", "--target-fpr", "0.01", "--baseline-samples", "40", "--out", str(out),
        # Our column names mean nothing to it: say which channels every unit of a supply shares.
        "--level-only", ",".join(f"ch{CHANNELS.index(c)}" for c in CHANNELS if c.startswith("psu_")),
    )  # fmt: skip
    assert trained.returncode == 0, trained.stderr
    model = laserguard.ForestModel.load(out / "model.lgf")
    assert model.baseline is not None and model.baseline.baseline_samples == 40
    assert model.feature_names == tuple(f"ch{i}" for i in range(len(CHANNELS)))  # every other numeric column
    scored_path = tables["folder"] / "scored.csv"
    # The model remembers its unit and time columns: no flags needed.
    scored = run(
        "score", "--model", str(out / "model.lgf"), "--data", str(tables["faulty"]), "--out", str(scored_path)
    )
    assert scored.returncode == 0, scored.stderr
    data = pd.read_csv(tables["faulty"])
    result = pd.read_csv(scored_path)
    assert list(result.columns) == [*data.columns, "score", "is_anomaly", "top_feature"]
    pd.testing.assert_frame_equal(result[data.columns], data)  # every row, in input order
    flagged = result["is_anomaly"] == 1
    np.testing.assert_array_equal(flagged, result["score"] < 0)
    faulty = result["label"] == 1
    assert flagged[faulty].mean() > 0.9
    assert flagged[~faulty].mean() < 0.02
    # The facet-damaged unit is explained on its power channels by its own per-unit stage (engine v3,
    # the default on any table: `:residual` or `:relationship`; v2 said `:level`).
    assert model.context is not None
    tops = {t.split(":")[0] for t in result.loc[faulty & flagged, "top_feature"] if ":" in t}
    assert tops & {f"ch{CHANNELS.index('optical_power_w')}", f"ch{CHANNELS.index('monitor_pd_ma')}"}
    learning = result.groupby(["card", "slot"], group_keys=False).apply(lambda g: g.nsmallest(40, "t"))
    assert (learning["is_anomaly"] == 0).all()


def test_labelled_table_runs_the_grid_search(tables: dict[str, Path]) -> None:
    out = tables["folder"] / "labelled"
    trained = run(
        "train", "--data", str(tables["faulty"]), "--unit-column", "card", "--unit-column", "slot",
        "--time-column", "t", "--label-column", "label", "--cv", "2", "--baseline-samples", "40", "--out", str(out),
    )  # fmt: skip
    assert trained.returncode == 0, trained.stderr
    assert "162/162" in trained.stderr  # the original 81-candidate grid, 2 folds
    assert "flagged by stage" in trained.stdout
    assert laserguard.ForestModel.load(out / "model.lgf").baseline is not None


def test_bad_table_arguments_are_named(tables: dict[str, Path]) -> None:
    missing = run(
        "train", "--data", str(tables["nominal"]), "--unit-column", "rack", "--time-column", "t", "--out", "x"
    )
    assert missing.returncode == 2 and "'rack'" in missing.stderr
    no_time = run("train", "--data", str(tables["nominal"]), "--unit-column", "card", "--out", "x")
    assert no_time.returncode == 2 and "--time-column" in no_time.stderr
    both = run("train", "--data", str(tables["nominal"]), "--data-dir", "y", "--out", "x")
    assert both.returncode == 2 and "not allowed with argument" in both.stderr


def test_a_channel_that_is_not_numeric_is_named_with_its_first_bad_value(tables: dict[str, Path]) -> None:
    frame = pd.read_csv(tables["nominal"])
    frame["ch3"] = frame["ch3"].astype(object)
    frame.loc[[7, 9], "ch3"] = ["ERR", "overrange"]  # a logger's error code in a numeric channel
    bad_cell = tables["folder"] / "bad_cell.csv"
    frame.to_csv(bad_cell, index=False)
    for channels in ([], ["--channels", "ch0,ch3"]):  # inferred or named, the same answer
        result = run(
            "train", "--data", str(bad_cell), "--unit-column", "card", "--unit-column", "slot",
            "--time-column", "t", "--out", str(tables["folder"] / "never"), *channels,
        )  # fmt: skip
        assert result.returncode == 2, result.stderr
        assert "channel column 'ch3' is not numeric: row 7 has 'ERR'" in result.stderr, result.stderr
    # Decimal commas (quoted): no column holds a single number, so none is taken for a channel.
    commas = frame[["card", "slot", "t"]].assign(power="0,5", temp="25,1")
    comma_table = tables["folder"] / "commas.csv"
    commas.to_csv(comma_table, index=False)
    result = run(
        "train", "--data", str(comma_table), "--unit-column", "card", "--unit-column", "slot",
        "--time-column", "t", "--out", str(tables["folder"] / "never"),
    )  # fmt: skip
    assert result.returncode == 2
    assert "no numeric channel column: 'power' (first value '0,5'), 'temp' (first value '25,1')" in (
        result.stderr
    ), result.stderr
    assert not (tables["folder"] / "never").exists()
