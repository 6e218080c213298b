"""Evaluation of a trained model: metrics, figures, the report and the model card."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score, roc_curve

from laserguard.model.unit_scoring import STAGE_BASELINE, STAGE_FLEET

# The model this project replaces (original model-testing notebook, held-out data).
ORIGINAL_MODEL = {"accuracy": 0.806, "fpr": 0.0165, "fnr": 0.242}
SEVERITY_BINS = 5


def _ratio(numerator: int, denominator: int) -> float | None:
    return None if denominator == 0 else numerator / denominator


def _severity_edges(severity: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    low, high = float(np.min(severity)), float(np.max(severity))
    if low == high:
        return np.array([low, high])
    return np.linspace(low, high, SEVERITY_BINS + 1)


def _recall_by_severity(
    detected: npt.NDArray[np.bool_], severity: npt.NDArray[np.float64], edges: npt.NDArray[np.float64]
) -> list[dict[str, Any]]:
    # Bin i holds edges[i] <= s < edges[i+1]; the last bin includes its upper edge.
    index = np.clip(np.searchsorted(edges, severity, side="right") - 1, 0, len(edges) - 2)
    rows = []
    for i in range(len(edges) - 1):
        in_bin = index == i
        n = int(in_bin.sum())
        rows.append(
            {
                "severity_low": float(edges[i]),
                "severity_high": float(edges[i + 1]),
                "n": n,
                "recall": _ratio(int(detected[in_bin].sum()), n),
            }
        )
    return rows


def part_metrics(
    mask: npt.NDArray[np.bool_],
    label: npt.NDArray[np.int64],
    flagged: npt.NDArray[np.bool_],
    stage: npt.NDArray[np.int8],
    rule: npt.NDArray[np.bool_],
) -> dict[str, Any]:
    """One held-out part (rows in `mask`): FPR and recall of the shipped flags, and per stage:
    the fleet forest, the unit's own statistics (baseline or context), the rules (a missing or
    stuck reading, `rule`)."""
    truth = np.asarray(label) == 1
    normal, anomalous = mask & ~truth, mask & truth
    n_normal, n_anomalous = int(normal.sum()), int(anomalous.sum())
    stages = {
        "fleet": stage == STAGE_FLEET,
        "baseline": (stage == STAGE_BASELINE) & ~rule,
        "rules": (stage == STAGE_BASELINE) & rule,
    }
    return {
        "rows": int(mask.sum()),
        "normal_rows": n_normal,
        "anomalous_rows": n_anomalous,
        "fpr": _ratio(int((flagged & normal).sum()), n_normal),
        "recall": _ratio(int((flagged & anomalous).sum()), n_anomalous),
        "fpr_by_stage": {k: _ratio(int((flagged & v & normal).sum()), n_normal) for k, v in stages.items()},
        "recall_by_stage": {
            k: _ratio(int((flagged & v & anomalous).sum()), n_anomalous) for k, v in stages.items()
        },
    }


def compute_metrics(
    label: npt.NDArray[np.int64],
    decision: npt.NDArray[np.float64],
    fault_type: npt.NDArray[np.str_],
    severity: npt.NDArray[np.float64],
) -> dict[str, Any]:
    """Held-out metrics with the anomaly (label 1, decision < 0) as the positive class."""
    truth = np.asarray(label) == 1
    predicted = np.asarray(decision) < 0  # IsolationForest.predict == -1
    anomaly_score = -np.asarray(decision)
    tp = int(np.sum(truth & predicted))
    fp = int(np.sum(~truth & predicted))
    fn = int(np.sum(truth & ~predicted))
    tn = int(np.sum(~truth & ~predicted))
    both_classes = 0 < tp + fn < len(truth)
    metrics: dict[str, Any] = {
        "n": len(truth),
        "confusion_matrix": {"tn": tn, "fp": fp, "fn": fn, "tp": tp},
        "accuracy": _ratio(tp + tn, len(truth)),
        "fpr": _ratio(fp, fp + tn),
        "fnr": _ratio(fn, fn + tp),
        "precision": _ratio(tp, tp + fp),
        "recall": _ratio(tp, tp + fn),
        "roc_auc": float(roc_auc_score(truth, anomaly_score)) if both_classes else None,
        "pr_auc": float(average_precision_score(truth, anomaly_score)) if both_classes else None,
        "original_model": dict(ORIGINAL_MODEL),
    }
    anomalous_types = sorted(set(fault_type[truth].tolist()))
    metrics["per_fault_type_recall"] = {
        kind: {
            "n": int(np.sum(truth & (fault_type == kind))),
            "recall": _ratio(
                int(np.sum(truth & predicted & (fault_type == kind))),
                int(np.sum(truth & (fault_type == kind))),
            ),
        }
        for kind in anomalous_types
    }
    if truth.any():
        edges = _severity_edges(severity[truth])
        metrics["recall_vs_severity"] = {
            "all": _recall_by_severity(predicted[truth], severity[truth], edges),
            **{
                kind: _recall_by_severity(
                    predicted[truth & (fault_type == kind)], severity[truth & (fault_type == kind)], edges
                )
                for kind in anomalous_types
            },
        }
    else:
        metrics["recall_vs_severity"] = {}
    return metrics


def write_figures(out: Path, label: npt.NDArray[np.int64], decision: npt.NDArray[np.float64]) -> list[Path]:
    """Score histograms by class, ROC and PR curves as PNG (Agg canvas, no display needed)."""
    from matplotlib.figure import Figure

    truth = np.asarray(label) == 1
    anomaly_score = -np.asarray(decision)
    paths = []

    fig = Figure(figsize=(6, 4), dpi=100)
    ax = fig.add_subplot()
    bins = np.linspace(float(anomaly_score.min()), float(anomaly_score.max()), 60)
    ax.hist(
        anomaly_score[~truth],
        bins=bins.tolist(),
        alpha=0.6,
        label=f"normal (n={int((~truth).sum())})",
        density=True,
    )
    ax.hist(
        anomaly_score[truth],
        bins=bins.tolist(),
        alpha=0.6,
        label=f"anomaly (n={int(truth.sum())})",
        density=True,
    )
    ax.axvline(0.0, color="k", linestyle="--", linewidth=1, label="threshold (decision = 0)")
    ax.set_xlabel("anomaly score (-decision_function)")
    ax.set_ylabel("density")
    ax.legend()
    paths.append(out / "score_histogram.png")
    fig.savefig(paths[-1])

    if 0 < truth.sum() < len(truth):
        fpr, tpr, _ = roc_curve(truth, anomaly_score)
        fig = Figure(figsize=(5, 5), dpi=100)
        ax = fig.add_subplot()
        ax.plot(fpr, tpr, label=f"ROC-AUC {roc_auc_score(truth, anomaly_score):.3f}")
        ax.plot([0, 1], [0, 1], color="grey", linestyle=":")
        ax.set_xlabel("false positive rate")
        ax.set_ylabel("true positive rate")
        ax.legend(loc="lower right")
        paths.append(out / "roc.png")
        fig.savefig(paths[-1])

        precision, recall, _ = precision_recall_curve(truth, anomaly_score)
        fig = Figure(figsize=(5, 5), dpi=100)
        ax = fig.add_subplot()
        ax.plot(recall, precision, label=f"PR-AUC (AP) {average_precision_score(truth, anomaly_score):.3f}")
        ax.axhline(float(truth.mean()), color="grey", linestyle=":", label="prevalence")
        ax.set_xlabel("recall")
        ax.set_ylabel("precision")
        ax.legend(loc="lower left")
        paths.append(out / "pr.png")
        fig.savefig(paths[-1])
    return paths


def _fmt(value: Any, digits: int = 4) -> str:
    return "—" if value is None else (f"{value:.{digits}f}" if isinstance(value, float) else str(value))


def _dump_json(path: Path, content: Mapping[str, Any]) -> None:
    path.write_text(json.dumps(content, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def write_model_card(out: Path, card: Mapping[str, Any]) -> list[Path]:
    json_path, md_path = out / "model_card.json", out / "model_card.md"
    _dump_json(json_path, card)
    metrics, data, search = card["metrics"], card["data"], card["search"]
    lines = [
        f"# Model card: laserguard {card['model_version']}",
        "",
        f"- Model file: `{card['model_file']}` (C++ engine); "
        f"sklearn original: `{card['sklearn_file']}` (skops)",
        f"- Estimator: `{card['estimator']}`, seed {card['seed']}; scikit-learn {card['sklearn_version']}, "
        f"laserguard {card['laserguard_version']}",
        f"- Training data sha256 (11-channel float64 matrix): `{data['training_data_sha256']}`",
        f"- Labels sha256: `{data['labels_sha256']}`",
        f"- Rows: {data['n_rows']} ({data['n_anomalies']} anomalous); train {data['n_train']}, "
        f"held-out test {data['n_test']}",
        f"- Features: {', '.join(data['feature_names'])}",
        f"- Search: {search['n_candidates']} candidates, {search['cv']}, scoring {search['scoring']}",
        f"- Best parameters: `{json.dumps(search['best_params'], sort_keys=True)}` "
        f"(mean CV precision {search['best_cv_precision']:.4f})",
        "",
        "## Held-out metrics",
        "",
        *_comparison_table(metrics),
    ]
    lines += [
        "",
        "## IsolationForest parameters",
        "",
        "```json",
        json.dumps(card["parameters"], indent=2),
        "```",
        "",
    ]
    md_path.write_text("\n".join(lines), encoding="utf-8")
    return [json_path, md_path]


def _comparison_table(metrics: Mapping[str, Any]) -> list[str]:
    """Markdown rows: this model's held-out metrics next to the original model's."""
    rows = ["| metric | this model | original model |", "|---|---|---|"]
    for key in ("accuracy", "fpr", "fnr", "precision", "recall", "roc_auc", "pr_auc"):
        rows.append(f"| {key} | {_fmt(metrics[key])} | {_fmt(ORIGINAL_MODEL.get(key))} |")
    return rows


def _parts_table(parts: Mapping[str, Any]) -> list[str]:
    """Markdown: each held-out part (a unit's future, unseen units), overall and by stage."""
    if not parts:
        return []
    rows = [
        "## Held-out parts, by stage",
        "",
        "Rows of a held-out unit are judged once it has learnt its baseline. A row counts for the "
        "stage that flagged it: the fleet forest, the unit's own statistics (baseline or context "
        "stage), or a rule (a missing reading in the window, a stuck sensor).",
        "",
        "| part | normal rows | anomalous rows | FPR | FPR fleet | FPR baseline | FPR rules | recall | recall fleet "
        "| recall baseline | recall rules |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    names = {"held_out_time": "last part of each training unit", "held_out_units": "held-out units"}
    for key, p in parts.items():
        rows.append(
            f"| {names.get(key, key)} | {p['normal_rows']} | {p['anomalous_rows']} | {_fmt(p['fpr'])} | "
            + " | ".join(_fmt(p["fpr_by_stage"][k]) for k in ("fleet", "baseline", "rules"))
            + f" | {_fmt(p['recall'])} | "
            + " | ".join(_fmt(p["recall_by_stage"][k]) for k in ("fleet", "baseline", "rules"))
            + " |"
        )
    return [*rows, ""]


def write_report(
    out: Path,
    metrics: Mapping[str, Any],
    search: Mapping[str, Any],
    data: Mapping[str, Any],
    figure_names: Sequence[str],
) -> list[Path]:
    json_path, md_path = out / "report.json", out / "report.md"
    _dump_json(json_path, {"metrics": metrics, "search": search, "data": data})
    cm = metrics["confusion_matrix"]
    lines = [
        "# Training report",
        "",
        f"Held-out test split: {data['n_test']} rows ({data['split']}).",
        "",
        "## Against the original model",
        "",
        *_comparison_table(metrics),
    ]
    lines += [
        "",
        *_parts_table(metrics.get("parts") or {}),
        "## Confusion matrix (positive = anomaly)",
        "",
        "| | predicted normal | predicted anomaly |",
        "|---|---|---|",
        f"| actual normal | {cm['tn']} (TN) | {cm['fp']} (FP) |",
        f"| actual anomaly | {cm['fn']} (FN) | {cm['tp']} (TP) |",
        "",
        "## Recall per fault type",
        "",
        "| fault type | anomalous rows | recall |",
        "|---|---|---|",
    ]
    for kind, row in metrics["per_fault_type_recall"].items():
        lines.append(f"| {kind} | {row['n']} | {_fmt(row['recall'])} |")
    lines += [
        "",
        "## Recall versus severity",
        "",
        "| fault type | severity | rows | recall |",
        "|---|---|---|---|",
    ]
    for kind, rows in metrics["recall_vs_severity"].items():
        for row in rows:
            span = f"{row['severity_low']:.3g} to {row['severity_high']:.3g}"
            lines.append(f"| {kind} | {span} | {row['n']} | {_fmt(row['recall'])} |")
    lines += [
        "",
        "## Grid search (best 10 of the grid)",
        "",
        "| rank | mean CV precision | std | parameters |",
    ]
    lines.append("|---|---|---|---|")
    for cand in search["top_candidates"]:
        params = json.dumps(cand["params"], sort_keys=True)
        lines.append(
            f"| {cand['rank']} | {cand['mean_precision']:.4f} | {cand['std_precision']:.4f} | `{params}` |"
        )
    lines += ["", "## Figures", ""]
    lines += [f"![{name}]({name})" for name in figure_names]
    lines.append("")
    md_path.write_text("\n".join(lines), encoding="utf-8")
    return [json_path, md_path]
