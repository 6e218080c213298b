"""deploy/grafana: provisioning as code, port 3001, no credentials in files, a consistent dashboard.

No Grafana server is installable here; what Grafana would show is checked live against Prometheus
in test_prometheus_live.py (every panel query returns data). This file checks the files themselves.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from laserguard.wire.codec import UNIT_STATES

REPO = Path(__file__).resolve().parents[1]
GRAFANA = REPO / "deploy" / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "laserguard.json"
DATASOURCE = GRAFANA / "provisioning" / "datasources" / "laserguard.yml"
PROVIDER = GRAFANA / "provisioning" / "dashboards" / "laserguard.yml"


def uncommented_lines(path: Path) -> list[str]:
    return [line for line in path.read_text().splitlines() if not line.lstrip().startswith(("#", ";"))]


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def test_grafana_listens_on_3001_locally() -> None:
    settings = "\n".join(uncommented_lines(GRAFANA / "grafana.ini"))
    assert re.search(r"(?m)^http_port = 3001$", settings)
    assert re.search(r"(?m)^http_addr = 127\.0\.0\.1$", settings)


def test_no_credentials_in_deploy_files() -> None:
    secret = re.compile(r"(?i)(password|passwd|secret|token|api_?key)\w*\s*[:=]\s*(?P<value>\S+)")
    for path in sorted((REPO / "deploy").rglob("*")):
        if path.is_file():
            for line in uncommented_lines(path):
                match = secret.search(line)
                # A value may only be a reference to the environment.
                assert match is None or match.group("value").startswith("$"), f"{path}: {line.strip()}"


def test_datasource_and_dashboard_provider_come_from_the_environment() -> None:
    datasource = "\n".join(uncommented_lines(DATASOURCE))
    assert re.search(r"(?m)^\s+type: prometheus$", datasource)
    assert re.search(r"(?m)^\s+url: \$LASERGUARD_PROMETHEUS_URL$", datasource)
    provider = "\n".join(uncommented_lines(PROVIDER))
    assert re.search(r"(?m)^\s+path: \$LASERGUARD_DASHBOARDS_DIR$", provider)
    assert re.search(r"(?m)^\s+type: file$", provider)


def test_every_panel_queries_the_provisioned_datasource() -> None:
    match = re.search(r"(?m)^\s+uid: (\S+)$", DATASOURCE.read_text())
    assert match
    uid = match.group(1)
    board = dashboard()
    for panel in board["panels"]:
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == uid, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == uid, panel["title"]
            assert target["expr"].strip(), panel["title"]
    for variable in board["templating"]["list"]:
        assert variable["datasource"]["uid"] == uid, variable["name"]


def test_panels_have_unique_ids_and_do_not_overlap() -> None:
    panels = dashboard()["panels"]
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids))
    occupied: dict[tuple[int, int], str] = {}
    for panel in panels:
        pos = panel["gridPos"]
        assert 0 <= pos["x"] and pos["x"] + pos["w"] <= 24, panel["title"]
        for x in range(pos["x"], pos["x"] + pos["w"]):
            for y in range(pos["y"], pos["y"] + pos["h"]):
                assert (x, y) not in occupied, f"{panel['title']!r} overlaps {occupied[(x, y)]!r}"
                occupied[(x, y)] = panel["title"]


def test_dashboard_has_the_required_views() -> None:
    board = dashboard()
    variables = {v["name"] for v in board["templating"]["list"]}
    assert {"lcc", "unit", "grid_lcc"} <= variables
    exprs = {
        panel["title"]: " ".join(t["expr"] for t in panel["targets"])
        for panel in board["panels"]
        if panel["type"] != "row"
    }
    grid = [p for p in board["panels"] if p.get("repeat") == "grid_lcc"]
    assert len(grid) == 1 and grid[0]["repeatDirection"] == "v"  # one row of units per LCC
    assert "laserguard_detect_unit_anomaly_score" in grid[0]["targets"][0]["expr"]
    required = {
        "per-unit telemetry": 'laserguard_unit_optical_power_watts{lcc="$lcc",unit="$unit"}',
        "inference latency": "laserguard_detect_inference_seconds_bucket",
        "round-trip latency": "laserguard_roundtrip_seconds_bucket",
        "frame gaps": "laserguard_detect_frame_gaps_total",
        "storage throughput": "laserguard_store_unit_samples_written_total",
        "storage backlog": "laserguard_store_spool_backlog_unit_samples",
        "model version": "laserguard_detect_model_info",
        "unit setpoint": 'laserguard_unit_setpoint_amperes{lcc="$lcc",unit="$unit"}',
        "unit state": 'laserguard_unit_state{lcc="$lcc",unit="$unit",state=',
        "fleet states": "laserguard_unit_state == 1",
    }
    for view, metric in required.items():
        assert any(metric in expr for expr in exprs.values()), view


def panel_titled(prefix: str) -> dict[str, Any]:
    (panel,) = [p for p in dashboard()["panels"] if p["title"].startswith(prefix)]
    return panel


def test_state_panel_names_every_state_by_its_wire_code() -> None:
    panel = panel_titled("State: LCC $lcc unit $unit")
    assert panel["type"] == "state-timeline"
    (mapping,) = panel["fieldConfig"]["defaults"]["mappings"]
    names = {int(code): option["text"] for code, option in mapping["options"].items()}
    assert names == dict(enumerate(UNIT_STATES))
    expr = panel["targets"][0]["expr"]
    assert all(f'state="{name}"' in expr for name in UNIT_STATES if name != "off"), expr
    setpoint = panel_titled("Setpoint and drive current")
    (override,) = setpoint["fieldConfig"]["overrides"]
    assert override["matcher"]["options"] == setpoint["targets"][0]["legendFormat"] == "setpoint"
    # A setpoint is a step, not a slope between two scrapes.
    assert {"id": "custom.lineInterpolation", "value": "stepAfter"} in override["properties"]


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed (Debian 'prometheus')")
def test_state_panel_query_gives_the_wire_code_of_the_current_state(tmp_path: Path) -> None:
    """Evaluated by Prometheus itself (promtool's PromQL unit tests) on a unit going through every
    state the way the exporter reports it: 1 for the current state, 0 for the others."""
    expr = panel_titled("State: LCC $lcc unit $unit")["targets"][0]["expr"]
    expr = expr.replace("$lcc", "1").replace("$unit", "3")
    walk = ["off", "warming", "on", "derated", "on", "off"]  # one state per minute
    series = [
        {
            "series": f'laserguard_unit_state{{job="laserguard-exporter",lcc="1",unit="3",state="{name}"}}',
            "values": " ".join("1" if now == name else "0" for now in walk),
        }
        for name in UNIT_STATES
    ]
    # Another unit in another state must not leak into this unit's row.
    series.append({"series": 'laserguard_unit_state{lcc="1",unit="4",state="derated"}', "values": "1x5"})
    checks = [
        {"expr": expr, "eval_time": f"{minute}m", "exp_samples": [
            {"labels": '{lcc="1",unit="3"}', "value": UNIT_STATES.index(name)}
        ]}
        for minute, name in enumerate(walk)
    ]  # fmt: skip
    spec = {
        "rule_files": [],
        "tests": [{"interval": "1m", "input_series": series, "promql_expr_test": checks}],
    }
    test_file = tmp_path / "state_panel_test.yml"
    test_file.write_text(json.dumps(spec))  # JSON is YAML
    result = subprocess.run(
        ["promtool", "test", "rules", str(test_file)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # Not vacuous: the same checks with the codes shifted by one fail.
    for check in checks:
        check["exp_samples"][0]["value"] += 1  # type: ignore[index, operator]
    test_file.write_text(json.dumps(spec))
    result = subprocess.run(
        ["promtool", "test", "rules", str(test_file)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode != 0
