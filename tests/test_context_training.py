"""`train --context-channels`: detection engine v3 from the CLI on any table, as a user runs it
(real `laserguard` processes), and what it buys over v2 when the operating point changes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import laserguard
from laserguard import sim
from laserguard.wire.codec import CHANNELS

# The unit's context as a foreign table names it: our own setpoint/state column names are kept
# (they are what `score` reads as the unit's operating context).
RENAME = {"lcc": "card", "unit": "slot", "time_s": "t"} | {c: f"ch{i}" for i, c in enumerate(CHANNELS)}
CONTEXT = ",".join(RENAME[c] for c in ("heatsink_temp_c", "psu_current_a", "psu_temp_c"))
SETPOINT_MOVES = [
    {"lcc": 1, "unit": u, "type": "setpoint_step", "at_s": 300 + 5 * u, "setpoint_a": 6.0 + 0.05 * u}
    for u in range(0, 32, 2)
]


# A moved unit degrades at its new operating point.
FAULT = {"lcc": 1, "unit": 4, "type": "facet_damage", "start_s": 600.0, "severity": 0.5}


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "laserguard.cli", *args],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("context")
    columns = ["card", "slot", "t", *[RENAME[c] for c in CHANNELS], "setpoint_a", "state"]
    # Training: the lab profile (setpoints, power cycles, TEC and air changes), no faults.
    train = sim.generate(0.5, rate_hz=1.0, lccs=1, seed=31, fault_mix="none", profile="lab")
    train.rename(columns=RENAME)[columns].to_csv(out / "train.csv", index=False)
    # Test: healthy units, half of them moved to a new setpoint inside the trained range.
    test = sim.generate(
        0.25, rate_hz=1.0, lccs=1, seed=32, fault_mix="none", schedule=SETPOINT_MOVES, faults=[FAULT]
    )
    test.rename(columns=RENAME)[[*columns, "label"]].to_csv(out / "test.csv", index=False)
    return out


def train_and_score(folder: Path, name: str, *flags: str) -> pd.DataFrame:
    trained = run(
        "train", "--data", str(folder / "train.csv"), "--unit-column", "card", "--unit-column", "slot",
        "--time-column", "t", "--out", str(folder / name), *flags,
    )  # fmt: skip
    assert trained.returncode == 0, trained.stderr
    scored = run(
        "score", "--model", str(folder / name / "model.lgf"), "--data", str(folder / "test.csv"),
        "--out", str(folder / f"{name}.csv"),
    )  # fmt: skip
    assert scored.returncode == 0, scored.stderr
    return pd.read_csv(folder / f"{name}.csv")


def test_v3_follows_a_setpoint_change_and_still_sees_a_fault_there(folder: Path) -> None:
    v3 = train_and_score(folder, "v3", "--context-channels", CONTEXT)
    model = laserguard.ForestModel.load(folder / "v3" / "model.lgf")
    assert model.context is not None  # format 2.1: the context stage travels in the file
    assert [model.feature_names[c] for c in model.context.context] == CONTEXT.split(",")
    card = json.loads((folder / "v3" / "model_card.json").read_text())
    assert card["detection_engine"] == "v3" and card["context_channels"] == CONTEXT.split(",")
    v2 = train_and_score(folder, "v2", "--context-channels", "none")
    assert laserguard.ForestModel.load(folder / "v2" / "model.lgf").context is None
    healthy = v3["label"] == 0
    moved = healthy & v3["slot"].isin({c["unit"] for c in SETPOINT_MOVES}) & (v3["t"] >= 360)
    # v3 expects each channel at the new setpoint (measured bounds, not the targets: this
    # is 30 minutes of training data on one LCC).
    assert v3.loc[moved, "is_anomaly"].mean() < 0.01
    assert v3.loc[healthy, "is_anomaly"].mean() < 0.01
    faulty = (v3["label"] == 1) & (v3["t"] >= FAULT["start_s"] + 5)
    assert v3.loc[faulty, "is_anomaly"].mean() > 0.9
    assert v3.loc[faulty & (v3["is_anomaly"] == 1), "top_feature"].str.contains(":").all()  # its own stage
    # v2 fitted on the same lab data: one level per unit over every operating point is so loose
    # that the fault goes unseen (measured: 1.4 % of its rows).
    assert v2.loc[faulty, "is_anomaly"].mean() < 0.5


def test_an_unknown_context_channel_is_named(folder: Path) -> None:
    result = run(
        "train", "--data", str(folder / "train.csv"), "--unit-column", "card", "--time-column", "t",
        "--out", str(folder / "bad"), "--context-channels", "ch5,room_temp",
    )  # fmt: skip
    assert result.returncode == 2
    assert "room_temp" in result.stderr and "not channels of the table" in result.stderr


def test_train_data_dir_fits_context_as_the_shipped_default() -> None:
    # A retrain on laser data without --context-channels must follow the shipped model's recipe
    # (per-channel selection), or a user's model flags a production day the default does not.
    from laserguard.cli import build_parser
    from laserguard.commands.train import _context
    from laserguard.offline.context_fit import ContextFitOptions

    parser = build_parser()
    default = _context(parser.parse_args(["train", "--data-dir", "raw", "--out", "m"]))
    shipped = json.loads((Path(__file__).parents[1] / "models" / "default.card.json").read_text())["context"]
    assert list(default.channels) == shipped["channels"]
    assert default.options == ContextFitOptions(
        **{
            **shipped["options"],
            "context_taus_s": tuple(shipped["options"]["context_taus_s"]),
            "setpoint_taus_s": tuple(shipped["options"]["setpoint_taus_s"]),
        }
    )
    named = _context(
        parser.parse_args(["train", "--data-dir", "raw", "--out", "m", "--context-channels", "psu_temp_c"])
    )
    assert named.options.context_min_gain is None  # named channels: every channel uses them
