"""Optional MLflow logging of a training run (install the `mlflow` extra)."""

from __future__ import annotations

from typing import TYPE_CHECKING

try:
    import mlflow
except ImportError as exc:  # re-raised with the fix, so the CLI can print it
    raise ImportError("--mlflow-uri needs MLflow: pip install 'laserguard[mlflow]'") from exc

if TYPE_CHECKING:
    from laserguard.offline.training import TrainingResult


def log_to_mlflow(tracking_uri: str, result: TrainingResult) -> str:
    """Log the run's parameters, headline metrics and every written file; returns the run id."""
    mlflow.set_tracking_uri(tracking_uri)
    with mlflow.start_run(run_name=f"laserguard-{result.model_version}") as run:
        mlflow.log_params({k.removeprefix("model__"): v for k, v in result.best_params.items()})
        mlflow.log_param("model_version", result.model_version)
        numeric = {
            k: float(v) for k, v in result.metrics.items() if isinstance(v, (int, float)) and v is not None
        }
        numeric["best_cv_precision"] = result.best_cv_precision
        numeric["search_seconds"] = result.search_seconds
        mlflow.log_metrics(numeric)
        for path in result.files:
            mlflow.log_artifact(str(path))
        return str(run.info.run_id)
