"""The report of `laserguard clean`: what each rule did, rejected files and lines, the upload."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from laserguard.offline.clean_store import UploadOutcome
from laserguard.offline.cleaning import RULES, CleanResult

REPORT_JSON = "clean_report.json"
REPORT_MD = "clean_report.md"


def build_report(
    raw_dir: Path,
    n_files: int,
    result: CleanResult,
    upload: UploadOutcome,
    target: Mapping[str, str],
    timings: Mapping[str, float],
) -> dict[str, Any]:
    rows_clean = len(result.rows)
    return {
        "raw_dir": str(raw_dir),
        "files": n_files,
        "files_loaded": n_files - len(result.rejected_files),
        "rows_read": result.rows_read,
        "rows_clean": rows_clean,
        "rules": [
            {"rule": name, "meaning": meaning, "count": result.counts[name]} for name, meaning in RULES
        ],
        "gap_missing_samples": result.gap_missing_samples,
        "rejected_files": result.rejected_files,
        "dropped_lines": result.dropped_lines,
        "per_file": result.per_file,
        "upload": {
            **target,
            "new": upload.inserted,
            "already_stored": upload.already_stored,
            "batches": upload.batches,
        },
        # Timings vary between runs; everything else is reproducible from the same files.
        "timings": {
            **{k: round(v, 3) for k, v in timings.items()},
            "rows_per_s_clean": round(rows_clean / timings["clean_s"]) if timings["clean_s"] > 0 else None,
            "rows_per_s_upload": round(rows_clean / timings["upload_s"]) if timings["upload_s"] > 0 else None,
        },
    }


def report_lines(report: Mapping[str, Any]) -> list[str]:
    """The readable (Markdown) form of the report."""
    upload = report["upload"]
    lines = [
        "# Clean report",
        "",
        f"{report['files_loaded']} of {report['files']} files loaded from `{report['raw_dir']}`: "
        f"{report['rows_read']} data lines read, {report['rows_clean']} clean rows.",
        f"Uploaded to `{upload['database']}.{upload['collection']}`: {upload['new']} new, "
        f"{upload['already_stored']} already stored.",
        "",
        "| rule | count | meaning |",
        "|---|---:|---|",
    ]
    lines += [f"| {r['rule']} | {r['count']} | {r['meaning']} |" for r in report["rules"]]
    lines.append(f"| (gap samples missing) | {report['gap_missing_samples']} | samples inside those gaps |")
    if report["rejected_files"]:
        lines += ["", "## Rejected files", ""]
        lines += [f"- `{r['file']}` line {r['line']}: {r['reason']}" for r in report["rejected_files"]]
    if report["dropped_lines"]:
        lines += ["", "## Dropped lines (first ones)", ""]
        lines += [f"- `{r['file']}` line {r['line']}: {r['reason']}" for r in report["dropped_lines"]]
    timings = report["timings"]
    lines += [
        "",
        f"Timings: clean {timings['clean_s']} s ({timings['rows_per_s_clean']} rows/s), "
        f"upload {timings['upload_s']} s ({timings['rows_per_s_upload']} rows/s).",
        "",
    ]
    return lines


def write_report(out_dir: Path, report: Mapping[str, Any]) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out_dir / REPORT_JSON, out_dir / REPORT_MD
    json_path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    md_path.write_text("\n".join(report_lines(report)), encoding="utf-8")
    return [json_path, md_path]
