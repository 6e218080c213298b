"""The `laserguard` console script, run as a real subprocess."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
import scipy.io
import skops.io as sio
from sklearn.ensemble import IsolationForest
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from laserguard import ForestModel
from laserguard.cli import COMMAND_MODULES, main

N_ROWS = 120


def laserguard(*args: str | Path) -> subprocess.CompletedProcess[str]:
    script = shutil.which("laserguard", path=os.path.dirname(sys.executable))
    command = [script] if script else [sys.executable, "-m", "laserguard.cli"]
    env = {**os.environ, "COLUMNS": "200"}  # rich: keep each table row on one line
    return subprocess.run(
        [*command, *map(str, args)], capture_output=True, text=True, timeout=120, env=env, check=False
    )


def run_main(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, *args: str | Path
) -> tuple[int, str, str]:
    """The same entry point in this interpreter (a new one costs ~1-2 s of imports here)."""
    monkeypatch.setenv("COLUMNS", "200")
    try:
        status = main([str(a) for a in args])
    except SystemExit as exc:  # argparse exits on usage errors and --help
        status = int(exc.code or 0)
    out, err = capsys.readouterr()
    return status, out, err


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cli")


@pytest.fixture(scope="module")
def estimator() -> Pipeline:
    train = np.random.default_rng(21).normal(size=(400, 4)) * [1, 10, 100, 0.1]
    return make_pipeline(
        StandardScaler(), IsolationForest(n_estimators=40, contamination=0.1, random_state=0)
    ).fit(train)


@pytest.fixture(scope="module")
def skops_file(estimator: Pipeline, workdir: Path) -> Path:
    path = workdir / "model.skops"
    sio.dump(estimator, path)
    return path


@pytest.fixture(scope="module")
def exported(skops_file: Path, workdir: Path) -> Path:
    out = workdir / "model.lgf"
    result = laserguard("export", "--sklearn", skops_file, "--out", out)
    assert result.returncode == 0, result.stderr
    return out


@pytest.fixture(scope="module")
def data() -> np.ndarray:
    X = np.random.default_rng(5).normal(size=(N_ROWS, 4)) * [1, 10, 100, 0.1] * 2
    X[::17, 1] = np.nan
    return X


def test_top_level_help_from_the_console_script() -> None:
    result = laserguard("--help")
    assert result.returncode == 0
    assert result.stdout.startswith("usage: laserguard")
    for name in COMMAND_MODULES:
        assert name in result.stdout


@pytest.mark.parametrize("command", COMMAND_MODULES)
def test_every_command_has_help(
    command: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    status, out, _ = run_main(capsys, monkeypatch, command, "--help")
    assert status == 0
    assert out.startswith(f"usage: laserguard {command}")
    assert "show this help message and exit" in out


def test_no_command_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    status, _, err = run_main(capsys, monkeypatch)
    assert status == 2
    assert "required: COMMAND" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["export", "--sklearn", "a", "--out", "b", "--bogus"], "unrecognized arguments: --bogus"),
        (["compare", "--model", "m.lgf"], "the following arguments are required: --sklearn, --data"),
        (["no-such-command"], "invalid choice: 'no-such-command'"),
        (
            ["compare", "--model", "a", "--sklearn", "b", "--data", "c", "--repeat", "x"],
            "invalid int value: 'x'",
        ),
    ],
)
def test_bad_arguments_exit_2_with_argparse_message(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    status, out, err = run_main(capsys, monkeypatch, *args)
    assert status == 2
    assert message in err
    assert err.startswith("usage: laserguard")
    assert out == ""


def test_a_wrong_flag_in_a_real_process(skops_file: Path, tmp_path: Path) -> None:
    result = laserguard("export", "--sklearn", skops_file, "--out", tmp_path / "m.lgf", "--bogus")
    assert result.returncode == 2
    assert "laserguard: error: unrecognized arguments: --bogus" in result.stderr
    assert not (tmp_path / "m.lgf").exists()


def test_export_from_skops(exported: Path, estimator: Pipeline, data: np.ndarray) -> None:
    model = ForestModel.load(exported)
    assert (model.n_trees, model.n_features) == (40, 4)
    assert np.max(np.abs(model.decision_function(data) - estimator.decision_function(data))) <= 1e-12


def test_export_prints_a_summary(
    skops_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "m.lgf"
    status, stdout, err = run_main(
        capsys, monkeypatch, "export", "--sklearn", skops_file, "--out", out, "--feature-names", "p,t,i,v"
    )
    assert status == 0, err
    version = ForestModel.load(out).version
    assert stdout.strip() == f"wrote {out}: 40 trees, 4 features, version {version}"
    assert ForestModel.load(out).feature_names == ("p", "t", "i", "v")


def test_pickle_needs_trust_flag(estimator: Pipeline, tmp_path: Path, data: np.ndarray) -> None:
    pickled = tmp_path / "model.pkl"
    joblib.dump(estimator, pickled)  # a file this test created itself
    out = tmp_path / "m.lgf"
    refused = laserguard("export", "--sklearn", pickled, "--out", out)
    assert refused.returncode == 2
    assert "--trust-pickle" in refused.stderr and str(pickled) in refused.stderr
    assert not out.exists()
    accepted = laserguard("export", "--sklearn", pickled, "--out", out, "--trust-pickle")
    assert accepted.returncode == 0, accepted.stderr
    delta = ForestModel.load(out).decision_function(data) - estimator.decision_function(data)
    assert np.max(np.abs(delta)) <= 1e-12


def test_export_refuses_a_non_forest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    skops_path = tmp_path / "scaler.skops"
    sio.dump(StandardScaler().fit(np.zeros((3, 2))), skops_path)
    status, _, err = run_main(
        capsys, monkeypatch, "export", "--sklearn", skops_path, "--out", tmp_path / "m.lgf"
    )
    assert status == 2
    assert "cannot export StandardScaler" in err
    assert not (tmp_path / "m.lgf").exists()


def write_data(X: np.ndarray, directory: Path, kind: str) -> Path:
    path = directory / f"data.{kind}"
    if kind == "csv":
        frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(X.shape[1])])
        frame.insert(0, "unit", [f"unit-{i}" for i in range(len(X))])  # non-numeric column ignored
        frame.to_csv(path, index=False)
    elif kind == "npy":
        np.save(path, X)
    elif kind == "npz":
        np.savez(path, X=X, labels=np.arange(len(X)))
    elif kind == "mat":
        scipy.io.savemat(path, {"X": X})
    return path


def table_value(stdout: str, label: str) -> str:
    match = re.search(rf"{re.escape(label)}\s*[│|]\s*(.+?)\s*[│|]", stdout)
    assert match, f"no row {label!r} in:\n{stdout}"
    return match.group(1)


def test_compare_in_a_real_process(exported: Path, skops_file: Path, data: np.ndarray, workdir: Path) -> None:
    path = write_data(data, workdir, "npy")
    result = laserguard(
        "compare", "--model", exported, "--sklearn", skops_file, "--data", path, "--repeat", "1"
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert table_value(result.stdout, "bitwise identical") == f"{N_ROWS} / {N_ROWS}"
    assert table_value(result.stdout, "parity") == "PASS"


@pytest.mark.parametrize("kind", ["csv", "npy", "npz", "mat"])
def test_compare_reports_parity(
    kind: str,
    exported: Path,
    skops_file: Path,
    data: np.ndarray,
    workdir: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = write_data(data, workdir, kind)
    args = ("compare", "--model", exported, "--sklearn", skops_file, "--data", path, "--repeat", "2")
    status, out, err = run_main(capsys, monkeypatch, *args)
    assert status == 0, out + err
    assert table_value(out, "rows") == str(N_ROWS)
    assert float(table_value(out, "max |delta| decision_function")) <= 1e-12
    assert table_value(out, "bitwise identical") == f"{N_ROWS} / {N_ROWS}"
    assert table_value(out, "label agreement") == f"{N_ROWS} / {N_ROWS}"
    assert re.fullmatch(r"[0-9.]+x", table_value(out, "speed ratio (sklearn / laserguard)"))
    assert float(table_value(out, "sklearn median (ms)")) > 0
    assert float(table_value(out, "laserguard median (ms)")) > 0
    assert table_value(out, "parity") == "PASS"


def test_compare_fails_on_a_different_model(
    exported: Path,
    data: np.ndarray,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The sklearn side is another model: parity must fail with exit status 1."""
    other = IsolationForest(n_estimators=40, contamination=0.3, random_state=7).fit(data[:, ::-1])
    sio.dump(other, tmp_path / "other.skops")
    path = write_data(data, tmp_path, "npy")
    args = (
        "compare",
        "--model",
        exported,
        "--sklearn",
        tmp_path / "other.skops",
        "--data",
        path,
        "--repeat",
        "1",
    )
    status, out, _ = run_main(capsys, monkeypatch, *args)
    assert status == 1
    assert table_value(out, "parity") == "FAIL"
    assert float(table_value(out, "max |delta| decision_function")) > 1e-12


def test_compare_reports_bad_data_files(
    exported: Path,
    skops_file: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    narrow = tmp_path / "narrow.npy"
    np.save(narrow, np.zeros((5, 3)))
    base = ("compare", "--model", exported, "--sklearn", skops_file, "--data")
    status, _, err = run_main(capsys, monkeypatch, *base, narrow)
    assert status == 2
    assert "X has 3 features, but the model expects 4" in err
    status, _, err = run_main(capsys, monkeypatch, *base, tmp_path / "none.csv")
    assert status == 2
    assert "data file not found" in err
