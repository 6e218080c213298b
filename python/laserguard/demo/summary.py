"""The human summary of a demo run: one rich table instead of a screen of JSON."""

from __future__ import annotations

from typing import Any

from rich.table import Table


def _fmt(value: Any, unit: str = "") -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        value = f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"
    elif isinstance(value, int):
        value = f"{value:,}"
    return f"{value}{unit}"


def summary_table(summary: dict[str, Any]) -> Table:
    """Frames, gaps, storage, round trip, detection per fault type and component exits."""
    table = Table(title="laserguard demo", show_header=True, header_style="bold")
    table.add_column("what")
    table.add_column("value", justify="right")

    detection = summary.get("detection", {})
    rt = summary.get("roundtrip_us", {})
    rows: list[tuple[str, str]] = [
        (
            "frames published / scored",
            f"{_fmt(summary.get('frames_published'))} / {_fmt(summary.get('frames_scored'))}",
        ),
        ("frame gaps", _fmt(summary.get("frame_gaps"))),
        ("unit-samples stored", _fmt(summary.get("unit_samples_stored"))),
        ("duplicate unit-samples", _fmt(summary.get("duplicate_unit_samples"))),
        ("round trip p50 / p99", f"{_fmt(rt.get('p50'), ' µs')} / {_fmt(rt.get('p99'), ' µs')}"),
        (
            "fault events detected / missed",
            f"{_fmt(detection.get('true_positives'))} / {_fmt(detection.get('false_negatives'))}",
        ),
        ("false alarms (unit-frames)", _fmt(detection.get("false_positives"))),
        ("median time to detect", _fmt(detection.get("median_time_to_detect_s"), " s")),
    ]
    for name, value in rows:
        table.add_row(name, value)
    for fault_type, t in sorted(detection.get("per_fault_type", {}).items()):
        found, missed = int(t.get("true_positives", 0)), int(t.get("false_negatives", 0))
        style = "red" if missed else "green"
        table.add_row(f"  {fault_type}", f"[{style}]{found} detected, {missed} missed[/]")
    components = summary.get("components", {})
    exits = ", ".join(f"{name} {status}" for name, status in components.items()) or "—"
    bad = any(status != 0 for status in components.values())
    table.add_row("component exits", f"[red]{exits}[/]" if bad else exits)
    return table
