"""laserguard train: the grid, the scorer, the CSV contract, the report and reproducibility."""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import IsolationForest

from laserguard import ForestModel, hash_training_data
from laserguard.cli import main
from laserguard.model.sklearn_io import load_sklearn_model
from laserguard.offline.engine_forest import EngineScoredIsolationForest
from laserguard.offline.shared_fits import sharing_forest_fits
from laserguard.offline.training import (
    ORIGINAL_PARAM_GRID,
    AnomalyPrecisionScorer,
    anomaly_precision,
    build_pipeline,
    grid_size,
    run_grid_search,
    train,
)
from laserguard.offline.training_data import FEATURE_COLUMNS, SchemaError, load_training_data
from synthetic_telemetry import write_csvs

# Two candidates, so a test run takes about a second; the default grid is tested separately.
SMALL_GRID = {
    "model__n_estimators": [50],
    "model__max_samples": ["auto", 0.6],
    "model__contamination": [0.25],
    "model__max_features": [0.8],
}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_csvs(tmp_path_factory.mktemp("telemetry"), n_rows=3000, seed=7)


def _train(data_dir: Path, out: Path, seed: int = 0) -> Any:
    return train(data_dir, out, seed=seed, n_jobs=2, cv_folds=2, param_grid=SMALL_GRID)


@pytest.fixture(scope="module")
def trained(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    return _train(data_dir, tmp_path_factory.mktemp("model"))


# --- the grid -----------------------------------------------------------------------------------


def test_default_grid_is_the_original_one() -> None:
    assert ORIGINAL_PARAM_GRID == {
        "model__n_estimators": [100, 200, 300],
        "model__max_samples": ["auto", 0.8, 0.6],
        "model__contamination": [0.2, 0.3, 0.4],
        "model__max_features": [1.0, 0.8, 0.6],
    }
    assert grid_size(ORIGINAL_PARAM_GRID) == 81
    for function in (train, run_grid_search):
        assert inspect.signature(function).parameters["param_grid"].default is ORIGINAL_PARAM_GRID


def test_search_pipeline_is_scaler_then_isolation_forest() -> None:
    pipeline = build_pipeline(seed=3)
    assert [name for name, _ in pipeline.steps] == ["scaler", "model"]
    assert isinstance(pipeline.named_steps["model"], IsolationForest)
    assert pipeline.named_steps["model"].random_state == 3
    with pytest.raises(ValueError, match="'gpu'"):
        build_pipeline(seed=0, scoring_engine="gpu")  # type: ignore[arg-type]


# --- the scorer ---------------------------------------------------------------------------------


def test_precision_counts_anomalies_as_positives() -> None:
    label = [1, 1, 0, 0, 1]  # ground truth: 1 = anomaly
    predicted = [-1, -1, -1, 1, 1]  # IsolationForest.predict: -1 = anomaly
    # Flagged rows 0, 1, 2: two are anomalies -> 2/3. (Treating +1 as positive would give 1/2.)
    assert anomaly_precision(label, predicted) == pytest.approx(2 / 3)
    assert anomaly_precision([1, 0], [1, 1]) == 0.0  # nothing flagged


def test_precision_rejects_labels_that_are_not_predictions() -> None:
    with pytest.raises(ValueError, match=r"\[0\]"):
        anomaly_precision([1, 0], [0, 1])


def test_scorer_scores_the_estimators_predictions(data_dir: Path) -> None:
    data = load_training_data(data_dir)
    pipeline = build_pipeline(seed=0).set_params(model__n_estimators=20, model__contamination=0.2).fit(data.X)
    calls: list[int] = []
    scorer = AnomalyPrecisionScorer(on_scored=lambda: calls.append(1))
    assert scorer(pipeline, data.X, data.label) == anomaly_precision(data.label, pipeline.predict(data.X))
    assert calls == [1]


def test_engine_scored_forest_equals_sklearn(data_dir: Path) -> None:
    X = load_training_data(data_dir).X
    params = {
        "n_estimators": 40,
        "max_samples": 0.6,
        "contamination": 0.3,
        "max_features": 0.8,
        "random_state": 5,
    }
    ours = EngineScoredIsolationForest(**params).fit(X)
    theirs = IsolationForest(**params).fit(X)
    assert ours.offset_ == theirs.offset_
    np.testing.assert_array_equal(ours.decision_function(X), theirs.decision_function(X))
    np.testing.assert_array_equal(ours.predict(X), theirs.predict(X))


def test_shared_fits_equal_fresh_fits(data_dir: Path) -> None:
    X = load_training_data(data_dir).X
    base = {"max_samples": 0.6, "max_features": 0.8, "random_state": 5}
    # 30 trees fitted, then a 10-tree prefix, then grown to 50 with warm_start.
    requests = [(30, 0.3), (10, 0.2), (50, "auto"), (50, 0.4)]
    with sharing_forest_fits() as shared:
        for n_estimators, contamination in requests:
            params = {**base, "n_estimators": n_estimators, "contamination": contamination}
            ours = EngineScoredIsolationForest(**params).fit(X)
            theirs = IsolationForest(**params).fit(X)
            assert len(ours.estimators_) == n_estimators
            assert ours.offset_ == theirs.offset_
            np.testing.assert_array_equal(ours.decision_function(X), theirs.decision_function(X))
    assert (shared.trees_built, shared.trees_served) == (50, 140)
    # One scoring per forest size: the fit-time offset and decision_function(X) score the same
    # float32 rows, and the two 50-tree candidates share their scores.
    assert shared.scorings == 3


def test_evicted_forests_are_refitted_identically(data_dir: Path) -> None:
    X = load_training_data(data_dir).X
    # A zero budget keeps only the forest in use, so returning to "auto" refits it.
    with sharing_forest_fits(max_bytes=0) as shared:
        for max_samples in ("auto", 0.6, "auto"):
            params = {"n_estimators": 20, "max_samples": max_samples, "contamination": 0.3, "random_state": 2}
            ours = EngineScoredIsolationForest(**params).fit(X)
            theirs = IsolationForest(**params).fit(X)
            assert ours.offset_ == theirs.offset_
            np.testing.assert_array_equal(ours.decision_function(X), theirs.decision_function(X))
        assert shared.forest_bytes > 0
    assert (shared.evictions, shared.trees_built) == (2, 60)


def test_fits_are_not_shared_without_a_fixed_seed(data_dir: Path) -> None:
    X = load_training_data(data_dir).X
    with sharing_forest_fits() as shared:
        EngineScoredIsolationForest(n_estimators=10, random_state=None).fit(X)
    assert shared.trees_built == 0


def test_search_finds_the_same_scores_with_either_engine(data_dir: Path) -> None:
    data = load_training_data(data_dir)
    grid = {**SMALL_GRID, "model__n_estimators": [20, 40], "model__contamination": [0.2, 0.3]}
    kwargs: dict[str, Any] = {"seed": 1, "n_jobs": 2, "cv_folds": 2, "param_grid": grid}
    shared = run_grid_search(data.X, data.label, scoring_engine="cpp", **kwargs)
    separate = run_grid_search(data.X, data.label, scoring_engine="cpp", share_fits=False, **kwargs)
    sklearn = run_grid_search(data.X, data.label, scoring_engine="sklearn", **kwargs)
    scores = sklearn.cv_results_["mean_test_score"]
    assert len(set(scores.tolist())) > 1  # the candidates differ, so equality below means something
    for search in (shared, separate):
        for fold in range(2):
            key = f"split{fold}_test_score"
            np.testing.assert_array_equal(search.cv_results_[key], sklearn.cv_results_[key])
        assert search.best_params_ == sklearn.best_params_


# --- outputs ------------------------------------------------------------------------------------


def test_report_metrics_agree_with_the_confusion_matrix(trained: Any) -> None:
    report = json.loads((trained.out_dir / "report.json").read_text())
    m = report["metrics"]
    cm = m["confusion_matrix"]
    tn, fp, fn, tp = cm["tn"], cm["fp"], cm["fn"], cm["tp"]
    assert tn + fp + fn + tp == m["n"] == report["data"]["n_test"]
    assert tp > 0 and tn > 0 and fp + fn > 0  # a degenerate matrix would make this test vacuous
    assert m["accuracy"] == pytest.approx((tp + tn) / m["n"])
    assert m["fpr"] == pytest.approx(fp / (fp + tn))
    assert m["fnr"] == pytest.approx(fn / (fn + tp))
    assert m["precision"] == pytest.approx(tp / (tp + fp))
    assert m["recall"] == pytest.approx(1 - m["fnr"])
    per_type = m["per_fault_type_recall"]
    assert set(per_type) == {"driver_fault", "facet_damage", "psu_sag", "thermal_runaway"}
    assert sum(v["n"] for v in per_type.values()) == tp + fn
    assert sum(v["recall"] * v["n"] for v in per_type.values()) == pytest.approx(tp)
    by_severity = m["recall_vs_severity"]["all"]
    assert sum(b["n"] for b in by_severity) == tp + fn
    assert sum(b["recall"] * b["n"] for b in by_severity if b["n"]) == pytest.approx(tp)
    assert m["original_model"] == {"accuracy": 0.806, "fpr": 0.0165, "fnr": 0.242}
    md = (trained.out_dir / "report.md").read_text()
    assert f"| actual anomaly | {fn} (FN) | {tp} (TP) |" in md


def test_outputs_are_written_and_consistent(trained: Any, data_dir: Path) -> None:
    out = trained.out_dir
    for name in ("score_histogram.png", "roc.png", "pr.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    card = json.loads((out / "model_card.json").read_text())
    data = load_training_data(data_dir)
    assert card["data"]["training_data_sha256"] == hash_training_data(data.X)
    assert card["data"]["feature_names"] == list(FEATURE_COLUMNS)
    assert card["model_version"] == trained.model_version
    assert card["search"]["best_params"] == trained.best_params
    assert trained.model_version in (out / "model_card.md").read_text()

    model = ForestModel.load(out / "model.lgf")
    assert model.version == trained.model_version
    assert model.feature_names == FEATURE_COLUMNS
    assert model.metadata["training_data_sha256"] == card["data"]["training_data_sha256"]
    pipeline = load_sklearn_model(out / "model.skops")
    assert {f"model__{k}": v for k, v in pipeline.named_steps["model"].get_params().items()}.items() >= (
        trained.best_params.items()
    )
    np.testing.assert_array_equal(model.decision_function(data.X), pipeline.decision_function(data.X))


def test_same_seed_gives_a_byte_identical_model(trained: Any, data_dir: Path, tmp_path: Path) -> None:
    again = _train(data_dir, tmp_path / "again", seed=0)
    assert (again.out_dir / "model.lgf").read_bytes() == (trained.out_dir / "model.lgf").read_bytes()
    assert (again.out_dir / "model_card.json").read_bytes() == (
        trained.out_dir / "model_card.json"
    ).read_bytes()
    other = _train(data_dir, tmp_path / "other", seed=1)
    assert (other.out_dir / "model.lgf").read_bytes() != (trained.out_dir / "model.lgf").read_bytes()


# --- the CSV contract ---------------------------------------------------------------------------


def _copy_with(data_dir: Path, dest: Path, file: str, edit: Any) -> Path:
    dest.mkdir()
    for name in ("lxx_data.csv", "psu_data.csv"):
        frame = pd.read_csv(data_dir / name, dtype=str, keep_default_na=False)
        if name == file:
            frame = edit(frame)
        frame.to_csv(dest / name, index=False)
    return dest


@pytest.mark.parametrize(
    ("file", "column"),
    [("lxx_data.csv", "optical_power_w"), ("lxx_data.csv", "label"), ("psu_data.csv", "psu_ripple_mv")],
)
def test_missing_column_is_named(data_dir: Path, tmp_path: Path, file: str, column: str) -> None:
    broken = _copy_with(data_dir, tmp_path / "broken", file, lambda f: f.drop(columns=[column]))
    with pytest.raises(SchemaError, match=f"{file}.*missing column.*'{column}'"):
        load_training_data(broken)


def test_non_numeric_value_is_named(data_dir: Path, tmp_path: Path) -> None:
    def edit(frame: pd.DataFrame) -> pd.DataFrame:
        frame.loc[5, "diode_temp_c"] = "hot"
        return frame

    broken = _copy_with(data_dir, tmp_path / "broken", "lxx_data.csv", edit)
    with pytest.raises(SchemaError, match="'diode_temp_c' has non-numeric value 'hot'"):
        load_training_data(broken)


def test_bad_label_is_named(data_dir: Path, tmp_path: Path) -> None:
    def edit(frame: pd.DataFrame) -> pd.DataFrame:
        frame.loc[3, "label"] = "2"
        return frame

    broken = _copy_with(data_dir, tmp_path / "broken", "lxx_data.csv", edit)
    with pytest.raises(SchemaError, match=r"'label' must be 0 or 1, found \[2.0\]"):
        load_training_data(broken)


def test_unit_row_without_psu_row_is_reported(data_dir: Path, tmp_path: Path) -> None:
    broken = _copy_with(data_dir, tmp_path / "broken", "psu_data.csv", lambda f: f.iloc[1:])
    with pytest.raises(
        SchemaError, match=r"row\(s\) of .*lxx_data.csv.* have no psu_data.csv row.*'lcc': '1'"
    ):
        load_training_data(broken)


def test_duplicate_key_is_reported(data_dir: Path, tmp_path: Path) -> None:
    broken = _copy_with(data_dir, tmp_path / "broken", "lxx_data.csv", lambda f: pd.concat([f, f.iloc[[0]]]))
    with pytest.raises(SchemaError, match="duplicate key"):
        load_training_data(broken)


def test_row_order_does_not_change_the_data(data_dir: Path, tmp_path: Path) -> None:
    shuffled = _copy_with(
        data_dir, tmp_path / "shuffled", "lxx_data.csv", lambda f: f.sample(frac=1.0, random_state=0)
    )
    np.testing.assert_array_equal(load_training_data(shuffled).X, load_training_data(data_dir).X)


def test_cli_reports_a_schema_error(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = _copy_with(data_dir, tmp_path / "broken", "lxx_data.csv", lambda f: f.drop(columns=["severity"]))
    status = main(["train", "--data-dir", str(broken), "--out", str(tmp_path / "out")])
    assert status == 2
    assert "'severity'" in capsys.readouterr().err
    assert not (tmp_path / "out" / "model.lgf").exists()


def test_mlflow_without_the_extra_says_how_to_install(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    try:
        import mlflow  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("mlflow is installed; this checks the message shown without it")
    status = main(
        ["train", "--data-dir", str(data_dir), "--out", str(tmp_path / "out"), "--mlflow-uri", "file:x"]
    )
    assert status == 2
    assert "laserguard[mlflow]" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_cli_runs_the_full_original_grid(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Small data keeps the 81 x 2 evaluations to a few seconds.
    data = write_csvs(tmp_path / "data", n_rows=800, seed=3)
    out = tmp_path / "out"
    # 800 rows are few per unit: the baseline stage learns from 5 rows each.
    status = main(
        [
            "train",
            "--data-dir",
            str(data),
            "--out",
            str(out),
            "--cv",
            "2",
            "--n-jobs",
            "2",
            "--baseline-samples",
            "5",
        ]
    )
    captured = capsys.readouterr()
    assert status == 0, captured.err
    assert "162/162" in captured.err  # the progress bar counted every (candidate, fold)
    card = json.loads((out / "model_card.json").read_text())
    assert card["search"]["param_grid"] == ORIGINAL_PARAM_GRID
    assert card["model_version"] in captured.out
    model = ForestModel.load(out / "model.lgf")
    assert model.n_trees == card["parameters"]["n_estimators"]
    run = json.loads((out / "run.json").read_text())
    assert run["share_fits"] is True and run["n_rows"] == 800
    # 9 forests per fold grown to 300 trees, against 81 fits per fold without sharing.
    assert run["sharing"]["trees_built"] == 2 * 9 * 300
    assert run["sharing"]["trees_served"] == 2 * 27 * (100 + 200 + 300)


def test_mlflow_logs_params_metrics_and_files(
    trained: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mlflow = pytest.importorskip("mlflow", reason="the mlflow extra is not installed")
    from laserguard.offline.mlflow_logging import log_to_mlflow

    # A local file store keeps the test self-contained (MLflow 3 wants this opt-in for it).
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    uri = (tmp_path / "mlruns").as_uri()
    run_id = log_to_mlflow(uri, trained)
    mlflow.set_tracking_uri(uri)
    run = mlflow.get_run(run_id)
    assert run.data.params["model_version"] == trained.model_version
    assert run.data.params["n_estimators"] == str(trained.best_params["model__n_estimators"])
    assert run.data.metrics["fpr"] == pytest.approx(trained.metrics["fpr"])
    logged = {a.path for a in mlflow.MlflowClient().list_artifacts(run_id)}
    assert {"model.lgf", "model.skops", "model_card.json", "report.md", "roc.png"} <= logged
