"""Training: GridSearchCV over StandardScaler + IsolationForest with the original grid.

The search scores candidates through the exact C++ engine (EngineScoredIsolationForest); the
saved model is a plain sklearn Pipeline refitted with the best parameters and the same seed.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
import sklearn
from sklearn.ensemble import IsolationForest
from sklearn.metrics import precision_score
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from laserguard.model.baseline import DEVIATION_KINDS
from laserguard.model.export import export_model, hash_training_data
from laserguard.model.forest import ForestModel
from laserguard.model.unit_scoring import STAGE_BASELINE, STAGE_FLEET
from laserguard.offline.detector_training import BaselineOptions, ContextSpec, export_detector, score_table
from laserguard.offline.engine_forest import EngineScoredIsolationForest
from laserguard.offline.sensor_table import SETPOINT_COLUMN, STATE_COLUMN, SensorTable, unit_context
from laserguard.offline.shared_fits import sharing_forest_fits
from laserguard.offline.training_data import TrainingData, load_training_data
from laserguard.offline.training_report import (
    compute_metrics,
    part_metrics,
    write_figures,
    write_model_card,
    write_report,
)
from laserguard.offline.training_split import (
    DEFAULT_HELD_OUT_UNIT_SHARE,
    out_of_fold_fleet_decisions,
    split_summary,
    time_split,
)

ScoringEngine = Literal["cpp", "sklearn"]

# The grid of the original model-testing notebook.
ORIGINAL_PARAM_GRID: dict[str, list[Any]] = {
    "model__n_estimators": [100, 200, 300],
    "model__max_samples": ["auto", 0.8, 0.6],
    "model__contamination": [0.2, 0.3, 0.4],
    "model__max_features": [1.0, 0.8, 0.6],
}
DEFAULT_CV_FOLDS = 3
DEFAULT_TEST_SIZE = 0.25
MODEL_FILE = "model.lgf"
SKOPS_FILE = "model.skops"


def anomaly_precision(label: npt.ArrayLike, predicted: npt.ArrayLike) -> float:
    """Precision with the anomaly as the positive class.

    `label` is the ground truth (1 anomaly, 0 normal); `predicted` is IsolationForest.predict
    output (-1 anomaly, +1 normal). No predicted anomaly gives 0.0.
    """
    truth = np.asarray(label)
    pred = np.asarray(predicted)
    bad = sorted(set(np.unique(pred).tolist()) - {-1, 1})
    if bad:
        raise ValueError(f"predicted labels must be -1 (anomaly) or +1 (normal), found {bad}")
    return float(precision_score(truth == 1, pred == -1, zero_division=0.0))


class AnomalyPrecisionScorer:
    """GridSearchCV scorer: anomaly_precision of the estimator's predictions.

    `on_scored` is called after every (candidate, fold) evaluation, e.g. to advance a progress
    bar; the search runs on threads, so it is called from worker threads.
    """

    def __init__(self, on_scored: Callable[[], None] | None = None) -> None:
        self.on_scored = on_scored

    def __call__(self, estimator: Any, X: Any, y: Any) -> float:
        score = anomaly_precision(y, estimator.predict(X))
        if self.on_scored is not None:
            self.on_scored()
        return score


def build_pipeline(seed: int, scoring_engine: ScoringEngine = "cpp") -> Pipeline:
    forest_class = {"cpp": EngineScoredIsolationForest, "sklearn": IsolationForest}.get(scoring_engine)
    if forest_class is None:
        raise ValueError(f"unknown scoring engine {scoring_engine!r}: expected 'cpp' or 'sklearn'")
    return Pipeline([("scaler", StandardScaler()), ("model", forest_class(random_state=seed))])


def grid_size(param_grid: Mapping[str, Sequence[Any]]) -> int:
    return int(np.prod([len(v) for v in param_grid.values()]))


def run_grid_search(
    X: npt.NDArray[np.float64],
    label: npt.NDArray[np.int64],
    *,
    seed: int,
    n_jobs: int = 1,
    cv_folds: int = DEFAULT_CV_FOLDS,
    param_grid: Mapping[str, Sequence[Any]] = ORIGINAL_PARAM_GRID,
    scoring_engine: ScoringEngine = "cpp",
    share_fits: bool = True,
    on_scored: Callable[[], None] | None = None,
    sharing_stats: dict[str, int] | None = None,
) -> GridSearchCV:
    """Fit GridSearchCV (refit=False) and return it; `cv_results_` and `best_params_` are set.

    With the C++ engine and `share_fits`, candidates that differ only in n_estimators or
    contamination reuse one tree fit per fold (laserguard.offline.shared_fits); the results are
    identical to fitting every candidate, which `scoring_engine="sklearn"` does. If given,
    `sharing_stats` receives the sharing counters (trees built/served, scorings, evictions).
    """
    from joblib import parallel_backend

    search = GridSearchCV(
        build_pipeline(seed, scoring_engine),
        param_grid=dict(param_grid),
        scoring=AnomalyPrecisionScorer(on_scored),
        cv=StratifiedKFold(n_splits=cv_folds, shuffle=True, random_state=seed),
        n_jobs=n_jobs,
        refit=False,
        error_score="raise",
    )
    # Threads: the C++ engine and sklearn's tree builder release the GIL, nothing is copied
    # between processes, and the scorer's progress callback runs in this process.
    if not (share_fits and scoring_engine == "cpp"):
        with parallel_backend("threading", n_jobs=n_jobs):
            search.fit(X, label)
        return search
    with sharing_forest_fits() as shared, parallel_backend("threading", n_jobs=n_jobs):
        search.fit(X, label)
    if sharing_stats is not None:
        sharing_stats.update(
            trees_built=shared.trees_built,
            trees_served=shared.trees_served,
            scorings=shared.scorings,
            evictions=shared.evictions,
        )
    return search


def fit_final_model(X: npt.NDArray[np.float64], best_params: Mapping[str, Any], seed: int) -> Pipeline:
    """The shipped model: a plain sklearn Pipeline (savable with skops) with the best parameters."""
    pipeline = build_pipeline(seed, "sklearn")
    pipeline.set_params(**best_params)
    pipeline.fit(X)
    return pipeline


@dataclass
class TrainingResult:
    out_dir: Path
    model_version: str
    best_params: dict[str, Any]
    best_cv_precision: float
    metrics: dict[str, Any]
    search_seconds: float
    total_seconds: float
    files: list[Path] = field(default_factory=list)


def _table_of(data: TrainingData) -> SensorTable | None:
    """The training rows as the baseline stage sees them (already in time order)."""
    if data.unit is None or data.time_s is None:
        return None
    n_units = int(data.unit.max()) + 1 if len(data) else 0
    setpoint, state = unit_context(
        pd.DataFrame(
            {
                **({} if data.setpoint_a is None else {SETPOINT_COLUMN: data.setpoint_a}),
                **({} if data.state is None else {STATE_COLUMN: data.state}),
            },
            index=pd.RangeIndex(len(data)),
        )
    )
    return SensorTable(
        unit=data.unit,
        time_s=data.time_s,
        values=data.X,
        order=np.arange(len(data), dtype=np.int64),
        unit_keys=[(u,) for u in range(n_units)],
        channels=data.feature_names,
        setpoint=setpoint,
        state=state,
    )


def rule_flags(top_code: npt.NDArray[np.int16], n_channels: int) -> npt.NDArray[np.bool_]:
    """Rows whose top explanation is a rule (`:missing`, `:stuck`), not a deviation statistic."""
    rules = [DEVIATION_KINDS.index(k) for k in ("missing", "stuck")]
    if top_code.shape[1] == 0:
        return np.zeros(len(top_code), dtype=bool)
    code = top_code[:, 0].astype(np.int64)
    kind = (code - n_channels) % len(DEVIATION_KINDS)
    found: npt.NDArray[np.bool_] = (code >= n_channels) & np.isin(kind, rules)
    return found


def _recall_by_stage(stage: npt.NDArray[np.int8], label: npt.NDArray[np.int64]) -> dict[str, float | None]:
    """Of the anomalous rows: the share each stage flagged."""
    truth = label == 1
    n = int(truth.sum())
    return {
        name: (None if n == 0 else float((stage[truth] == code).sum() / n))
        for name, code in (("fleet", STAGE_FLEET), ("baseline", STAGE_BASELINE))
    }


def _json_params(params: Mapping[str, Any]) -> dict[str, Any]:
    return {k: (v.item() if isinstance(v, np.generic) else v) for k, v in sorted(params.items())}


def _top_candidates(search: GridSearchCV, count: int) -> list[dict[str, Any]]:
    results = search.cv_results_
    order = np.argsort(results["rank_test_score"], kind="stable")[:count]
    return [
        {
            "rank": int(results["rank_test_score"][i]),
            "mean_precision": float(results["mean_test_score"][i]),
            "std_precision": float(results["std_test_score"][i]),
            "params": _json_params(results["params"][i]),
        }
        for i in order
    ]


def train(
    data_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    seed: int = 0,
    n_jobs: int = 1,
    cv_folds: int = DEFAULT_CV_FOLDS,
    test_size: float = DEFAULT_TEST_SIZE,
    param_grid: Mapping[str, Sequence[Any]] = ORIGINAL_PARAM_GRID,
    scoring_engine: ScoringEngine = "cpp",
    share_fits: bool = True,
    on_scored: Callable[[], None] | None = None,
    baseline: BaselineOptions | None = None,
    held_out_unit_share: float = DEFAULT_HELD_OUT_UNIT_SHARE,
    context: ContextSpec | None = None,
) -> TrainingResult:
    """Load the CSVs, search, refit, evaluate on the held-out split and write every artefact.

    ``context``: detection engine v3's context stage (None: engine v2)."""
    started = time.perf_counter()
    data = load_training_data(data_dir)
    return train_on(
        data,
        out_dir,
        seed=seed,
        n_jobs=n_jobs,
        cv_folds=cv_folds,
        test_size=test_size,
        param_grid=param_grid,
        scoring_engine=scoring_engine,
        share_fits=share_fits,
        on_scored=on_scored,
        started=started,
        baseline=baseline,
        held_out_unit_share=held_out_unit_share,
        context=context,
    )


def train_on(
    data: TrainingData,
    out_dir: str | os.PathLike[str],
    *,
    seed: int = 0,
    n_jobs: int = 1,
    cv_folds: int = DEFAULT_CV_FOLDS,
    test_size: float = DEFAULT_TEST_SIZE,
    param_grid: Mapping[str, Sequence[Any]] = ORIGINAL_PARAM_GRID,
    scoring_engine: ScoringEngine = "cpp",
    share_fits: bool = True,
    on_scored: Callable[[], None] | None = None,
    started: float | None = None,
    baseline: BaselineOptions | None = None,
    held_out_unit_share: float = DEFAULT_HELD_OUT_UNIT_SHARE,
    context: ContextSpec | None = None,
) -> TrainingResult:
    """Search the fleet forest, fit the per-unit baseline stage on the training part's nominal
    rows (both stages in one format 2.0 file), evaluate on the held-out future of each training
    unit and on the held-out units (training_split), write everything."""
    started = time.perf_counter() if started is None else started
    baseline = baseline or BaselineOptions()
    if not 0.0 < test_size < 1.0:
        raise ValueError(f"test_size must be in (0, 1), got {test_size!r}")
    n_anomalies = int(data.label.sum())
    if n_anomalies < cv_folds or len(data) - n_anomalies < cv_folds:
        raise ValueError(
            f"need at least {cv_folds} anomalous and {cv_folds} normal rows for {cv_folds}-fold "
            f"search, got {n_anomalies} anomalous of {len(data)}"
        )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)

    # Time series stay time series: the last part of each unit's series and whole units are held
    # out (training_split); every stage is fitted on the training part in time order.
    unit = data.unit if data.unit is not None else np.zeros(len(data), dtype=np.uint32)
    split = time_split(unit, test_size=test_size, unit_share=held_out_unit_share, seed=seed)
    train_set = data.subset(np.flatnonzero(split.train))
    test_rows = np.flatnonzero(split.test)
    test_set = data.subset(test_rows)
    train_anomalies = int(train_set.label.sum())
    if train_anomalies < cv_folds or len(train_set) - train_anomalies < cv_folds:
        raise ValueError(
            f"the training part ({split.describe()}) has {train_anomalies} anomalous of {len(train_set)} "
            f"rows: need at least {cv_folds} of each for {cv_folds}-fold search (a smaller --test-size keeps more)"
        )

    search_started = time.perf_counter()
    sharing_stats: dict[str, int] = {}
    search = run_grid_search(
        train_set.X,
        train_set.label,
        seed=seed,
        n_jobs=n_jobs,
        cv_folds=cv_folds,
        param_grid=param_grid,
        scoring_engine=scoring_engine,
        share_fits=share_fits,
        on_scored=on_scored,
        sharing_stats=sharing_stats,
    )
    search_seconds = time.perf_counter() - search_started
    best_params = _json_params(search.best_params_)
    pipeline = fit_final_model(train_set.X, best_params, seed)

    data_sha256 = hash_training_data(data.X)
    labels_sha256 = hash_training_data(data.label)
    feature_names = list(data.feature_names)
    table = _table_of(data)
    nominal = split.train & (data.label == 0)
    fleet_decision: npt.NDArray[np.float64] | None = None
    if table is not None:
        # The fleet cut from forests that never saw the rows (or the units) they score.
        oof = out_of_fold_fleet_decisions(
            train_set.X, unit[split.train], lambda X: fit_final_model(X, best_params, seed)
        )
        fleet_decision = oof[train_set.label == 0]
    # Evaluate the artefact that ships: the exported model scored by the C++ engine; the
    # stages see every row in time order (they are causal), the metrics only held-out rows.
    parts: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="laserguard_train_") as tmp:
        draft = Path(tmp) / MODEL_FILE
        if table is None:
            export_model(pipeline, draft, feature_names=feature_names, training_data_sha256=data_sha256)
            decision = ForestModel.load(draft).decision_function(test_set.X)
            by_stage: dict[str, float | None] = {}
        else:
            export_detector(
                pipeline,
                draft,
                table,
                nominal,
                baseline,
                workdir=tmp,
                fleet_decision=fleet_decision,
                context=context,
            )
            scores = score_table(ForestModel.load(draft), table)
            # A held-out unit's first rows teach it its baseline (never flagged): judged from then on.
            test_rows = test_rows[~scores.learning[test_rows]]
            test_set = data.subset(test_rows)
            decision = scores.score[test_rows]
            by_stage = _recall_by_stage(scores.stage[test_rows], test_set.label)
            rule = rule_flags(scores.top_code, len(feature_names))
            for name, mask in (("held_out_time", split.held_time), ("held_out_units", split.held_units)):
                parts[name] = part_metrics(
                    mask & ~scores.learning, data.label, scores.flagged, scores.stage, rule
                )
    metrics = compute_metrics(test_set.label, decision, test_set.fault_type, test_set.severity)
    metrics["recall_by_stage"] = by_stage
    metrics["parts"] = parts

    search_summary = {
        "param_grid": {k: list(v) for k, v in param_grid.items()},
        "n_candidates": grid_size(param_grid),
        "cv": f"StratifiedKFold(n_splits={cv_folds}, shuffle=True, random_state={seed})",
        "scoring": "precision, anomaly (predict == -1) as the positive class",
        "best_params": best_params,
        "best_cv_precision": float(search.best_score_),
        "top_candidates": _top_candidates(search, 10),
    }
    data_summary = {
        "training_data_sha256": data_sha256,
        "labels_sha256": labels_sha256,
        "n_rows": len(data),
        "n_anomalies": n_anomalies,
        "n_train": len(train_set),
        "n_test": len(test_set),
        "test_size": test_size,
        "split": split.describe(),
        "split_parts": split_summary(split, data.label),
        "feature_names": feature_names,
    }
    headline = {k: metrics[k] for k in ("accuracy", "fpr", "fnr", "precision", "recall", "roc_auc", "pr_auc")}
    model_path = out / MODEL_FILE
    metadata = {
        "seed": seed,
        "metrics": headline,
        "best_params": best_params,
        "table": {"unit_columns": list(data.unit_columns), "time_column": data.time_column},
    }
    if table is None:
        model_version = export_model(
            pipeline,
            model_path,
            feature_names=feature_names,
            training_data_sha256=data_sha256,
            extra_metadata=metadata,
        )
    else:
        with tempfile.TemporaryDirectory(prefix="laserguard_train_") as tmp:
            model_version, _ = export_detector(
                pipeline,
                model_path,
                table,
                nominal,
                baseline,
                training_data_sha256=data_sha256,
                extra_metadata=metadata,
                workdir=tmp,
                fleet_decision=fleet_decision,
                context=context,
            )
    skops_path = out / SKOPS_FILE
    import skops.io as sio

    from laserguard import __version__ as laserguard_version

    sio.dump(pipeline, skops_path)

    card = {
        "model_version": model_version,
        "model_file": MODEL_FILE,
        "sklearn_file": SKOPS_FILE,
        "seed": seed,
        "sklearn_version": sklearn.__version__,
        "laserguard_version": laserguard_version,
        "estimator": "Pipeline([('scaler', StandardScaler()), ('model', IsolationForest())])",
        "detection_engine": "v2" if context is None else "v3",
        "context_channels": None if context is None else list(context.channels),
        "parameters": _json_params(pipeline.named_steps["model"].get_params()),
        "data": data_summary,
        "search": {k: v for k, v in search_summary.items() if k != "top_candidates"},
        "metrics": headline,
    }
    files = [model_path, skops_path]
    files += write_model_card(out, card)
    figures = write_figures(out, test_set.label, decision)
    files += figures
    files += write_report(out, metrics, search_summary, data_summary, [f.name for f in figures])
    total_seconds = time.perf_counter() - started
    run_path = out / "run.json"
    # Timings vary run to run, so they live apart from the reproducible card and model.
    run_path.write_text(
        json.dumps(
            {
                "search_seconds": search_seconds,
                "total_seconds": total_seconds,
                "n_jobs": n_jobs,
                "scoring_engine": scoring_engine,
                "share_fits": share_fits and scoring_engine == "cpp",
                "sharing": sharing_stats,
                "n_rows": len(data),
            },
            indent=2,
        )
        + "\n",
        encoding="utf-8",
    )
    files.append(run_path)
    return TrainingResult(
        out_dir=out,
        model_version=model_version,
        best_params=best_params,
        best_cv_precision=float(search.best_score_),
        metrics=metrics,
        search_seconds=search_seconds,
        total_seconds=total_seconds,
        files=files,
    )
