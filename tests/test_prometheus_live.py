"""deploy/prometheus and deploy/grafana against the real Debian `prometheus` and a running loop.

The loop is `laserguard demo` (database, store, exporter, detect, lcc-sim) plus
`laserguard roundtrip`, all on free ports. Prometheus runs with deploy/prometheus's config and
rules, rewritten only in what a test must change: target ports, 1 s scrape/evaluation intervals,
and shorter `for:` durations. The rule expressions and annotations are the real ones.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import signal
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mongo_fixtures import require_server_executable
from service_support import endpoint, free_port, laserguard_process, wait_for

REPO = Path(__file__).resolve().parents[1]
PROMETHEUS_DIR = REPO / "deploy" / "prometheus"
DASHBOARD = REPO / "deploy" / "grafana" / "dashboards" / "laserguard.json"
DEFAULT_PORTS = {"laserguard-detect": 9101, "laserguard-store": 9102, "laserguard-roundtrip": 9103,
                 "laserguard-exporter": 9216}  # fmt: skip
FAULTED = {"lcc": "1", "unit": "3"}
FAULTS = [
    {"lcc": 1, "unit": 3, "type": "facet_damage", "start_s": 1.0, "severity": 1.0},
    {"lcc": 2, "unit": 20, "type": "driver_overshoot", "start_s": 1.0, "severity": 1.0},
]
RATE_INTERVAL = "10s"  # what Grafana's $__rate_interval becomes at a 1 s scrape interval, rounded up
TEST_FOR = "3s"
LOOP_DURATION_S = 75  # longer than the tests need; the loop is stopped when they finish

PROMETHEUS = shutil.which("prometheus")
PROMTOOL = shutil.which("promtool")
needs_prometheus = pytest.mark.skipif(
    PROMETHEUS is None, reason="Debian package 'prometheus' not installed (apt-get install prometheus)"
)
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool not installed (Debian package 'prometheus')"
)


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run([PROMTOOL, *args], capture_output=True, text=True, timeout=60, check=False)


@needs_promtool
def test_promtool_accepts_the_config_and_rules() -> None:
    config = promtool("check", "config", str(PROMETHEUS_DIR / "prometheus.yml"))
    assert config.returncode == 0, config.stdout + config.stderr
    assert "SUCCESS" in config.stdout
    rules = promtool("check", "rules", str(PROMETHEUS_DIR / "laserguard.rules.yml"))
    assert rules.returncode == 0, rules.stdout + rules.stderr
    assert "9 rules found" in rules.stdout


@needs_promtool
def test_promtool_rule_unit_tests_pass() -> None:
    tests = sorted((PROMETHEUS_DIR / "tests").glob("*.yml"))
    assert tests
    result = promtool("test", "rules", *map(str, tests))
    assert result.returncode == 0, result.stdout + result.stderr


@needs_promtool
def test_promtool_rule_unit_tests_can_fail(tmp_path: Path) -> None:
    """The unit tests are not vacuous: with the anomaly threshold moved they fail."""
    rules = (PROMETHEUS_DIR / "laserguard.rules.yml").read_text()
    broken = rules.replace(
        "laserguard_detect_unit_anomaly_score < 0", "laserguard_detect_unit_anomaly_score < -1"
    )
    assert broken != rules
    (tmp_path / "laserguard.rules.yml").write_text(broken)
    (tmp_path / "tests").mkdir()
    test_text = (PROMETHEUS_DIR / "tests" / "laserguard_rules_test.yml").read_text()
    (tmp_path / "tests" / "rules_test.yml").write_text(test_text)
    result = promtool("test", "rules", str(tmp_path / "tests" / "rules_test.yml"))
    assert result.returncode != 0
    assert "LaserUnitAnomalous" in result.stdout + result.stderr


# ---------------------------------------------------------------- live Prometheus against the loop


@dataclass
class Live:
    prometheus_url: str
    workdir: Path

    def query(self, expr: str) -> list[dict[str, Any]]:
        url = f"{self.prometheus_url}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        body = get_json(url)
        assert body["status"] == "success", body
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def label_values(self, label: str, match: str) -> list[str]:
        url = f"{self.prometheus_url}/api/v1/label/{label}/values?" + urllib.parse.urlencode(
            {"match[]": match}
        )
        values: list[str] = get_json(url)["data"]
        return values

    def alerts(self) -> list[dict[str, Any]]:
        alerts: list[dict[str, Any]] = get_json(f"{self.prometheus_url}/api/v1/alerts")["data"]["alerts"]
        return alerts


def get_json(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=5) as response:
        body: dict[str, Any] = json.loads(response.read().decode())
        return body


def write_test_config(ports: dict[str, int], workdir: Path) -> Path:
    """deploy/prometheus with this test's ports, 1 s intervals and short `for:`; returns the config path."""
    config = (PROMETHEUS_DIR / "prometheus.yml").read_text()
    for job, default in DEFAULT_PORTS.items():
        target = f'"127.0.0.1:{default}"'
        assert config.count(target) == 1, f"{target} of {job} not found once in prometheus.yml"
        config = config.replace(target, f'"127.0.0.1:{ports[job]}"')
    config, n_intervals = re.subn(r"(?m)^(  (?:scrape|evaluation)_interval:) 5s", r"\1 1s", config)
    config, n_timeouts = re.subn(r"(?m)^(  scrape_timeout:) 4s", r"\1 900ms", config)
    assert (n_intervals, n_timeouts) == (2, 1)
    rules = (PROMETHEUS_DIR / "laserguard.rules.yml").read_text()
    rules, n_for = re.subn(r"(?m)^(\s+for:) \S+$", rf"\1 {TEST_FOR}", rules)
    assert n_for == rules.count("- alert:")
    (workdir / "prometheus.yml").write_text(config)
    (workdir / "laserguard.rules.yml").write_text(rules)  # next to the config: same relative path
    return workdir / "prometheus.yml"


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    if PROMETHEUS is None:
        pytest.skip("Debian package 'prometheus' not installed (apt-get install prometheus)")
    require_server_executable()
    workdir = tmp_path_factory.mktemp("prometheus-live")
    ports = {job: free_port() for job in DEFAULT_PORTS}
    telemetry, feedback, observer = endpoint(), endpoint(), endpoint()
    spec = workdir / "faults.json"
    spec.write_text(json.dumps({"faults": FAULTS}))
    demo_log = (workdir / "demo.log").open("wb")
    demo = subprocess.Popen(
        [
            sys.executable, "-m", "laserguard.cli", "demo", "--duration-s", str(LOOP_DURATION_S),
            "--fault-mix", "none", "--faults", str(spec), "--no-progress", "--data-dir", str(workdir / "db"),
            "--telemetry-endpoint", telemetry, "--feedback-endpoint", feedback, "--observer-endpoint", observer,
            "--detect-metrics-port", str(ports["laserguard-detect"]),
            "--store-metrics-port", str(ports["laserguard-store"]),
            "--exporter-port", str(ports["laserguard-exporter"]),
            # The probe below runs separately on its test port; no dashboard needed here. The probe
            # has no keys of the demo's throw-away set, so the link runs without CURVE (CURVE in the
            # demo: test_demo.py, test_link_curve.py).
            "--roundtrip-port", "0", "--dashboard-port", "0", "--no-curve",
        ],
        stdout=demo_log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    probe = laserguard_process(
        "roundtrip", "--telemetry-endpoint", telemetry, "--observer-endpoint", observer,
        "--metrics-port", str(ports["laserguard-roundtrip"]), log=workdir / "probe.log",
    )  # fmt: skip
    prometheus_port = free_port()
    prometheus = subprocess.Popen(
        [
            PROMETHEUS, f"--config.file={write_test_config(ports, workdir)}",
            f"--storage.tsdb.path={workdir / 'tsdb'}", f"--web.listen-address=127.0.0.1:{prometheus_port}",
        ],
        stdout=(workdir / "prometheus.log").open("wb"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    live = Live(f"http://127.0.0.1:{prometheus_port}", workdir)
    try:

        def all_targets_up() -> bool:
            assert demo.poll() is None, (workdir / "demo.log").read_text()[-3000:]
            assert prometheus.poll() is None, (workdir / "prometheus.log").read_text()[-3000:]
            try:
                up = live.query("up == 1")
            except (urllib.error.URLError, ConnectionError):
                return False
            return {sample["metric"]["job"] for sample in up} == set(DEFAULT_PORTS)

        wait_for(all_targets_up, 60, "every laserguard target scraped and up")
        yield live
    finally:
        for process in (prometheus, probe):
            process.send_signal(signal.SIGTERM)
        demo.send_signal(signal.SIGTERM)  # demo stops its children and prints a summary
        for process in (prometheus, probe, demo):
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        demo_log.close()


def dashboard_queries(live: Live) -> list[tuple[str, str]]:
    """(panel title, PromQL) of every panel target, template variables substituted as Grafana would."""
    dashboard = json.loads(DASHBOARD.read_text())
    grid_lccs = live.label_values("lcc", "laserguard_detect_unit_anomaly_score")
    assert grid_lccs == ["1", "2"]
    queries = []
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            continue
        assert panel.get("targets"), f"panel {panel['title']!r} has no query"
        repeats = grid_lccs if panel.get("repeat") == "grid_lcc" else [None]
        for grid_lcc in repeats:
            for target in panel["targets"]:
                expr = target["expr"].replace("$__rate_interval", RATE_INTERVAL)
                expr = expr.replace("$lcc", FAULTED["lcc"]).replace("$unit", FAULTED["unit"])
                if grid_lcc is not None:
                    expr = expr.replace("$grid_lcc", grid_lcc)
                assert "$" not in expr, f"unsubstituted variable in {expr!r}"
                queries.append((f"{panel['title']} [{target['refId']}]", expr))
    return queries


def has_finite_value(result: list[dict[str, Any]]) -> bool:
    return any(math.isfinite(float(sample["value"][1])) for sample in result)


@needs_prometheus
def test_dashboard_variables_resolve(live: Live) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    for variable in dashboard["templating"]["list"]:
        query = variable["query"]["query"].replace("$lcc", FAULTED["lcc"])
        match = re.fullmatch(r"label_values\((.+), (\w+)\)", query)
        assert match, f"variable {variable['name']}: unexpected query {query!r}"
        values = live.label_values(match.group(2), match.group(1))
        expected = ["1", "2"] if match.group(2) == "lcc" else [str(unit) for unit in range(32)]
        assert sorted(values, key=int) == expected, variable["name"]


@needs_prometheus
def test_every_dashboard_panel_query_returns_data(live: Live) -> None:
    queries = dashboard_queries(live)
    assert len(queries) >= 30
    empty: dict[str, str] = dict((title, expr) for title, expr in queries)

    def all_answered() -> bool:
        for title, expr in list(empty.items()):
            if has_finite_value(live.query(expr)):
                del empty[title]
        return not empty

    try:
        wait_for(all_answered, 45, "data for every panel query")
    except AssertionError:
        pytest.fail(f"panel queries without data: {json.dumps(empty, indent=1)}")


@needs_prometheus
def test_unit_grid_has_every_unit_of_both_lccs(live: Live) -> None:
    scores = live.query("laserguard_detect_unit_anomaly_score")
    units = {(s["metric"]["lcc"], int(s["metric"]["unit"])) for s in scores}
    assert units == {(lcc, unit) for lcc in ("1", "2") for unit in range(32)}


@needs_prometheus
def test_round_trip_is_measured_for_nearly_every_scored_frame(live: Live) -> None:
    def per_lcc(expr: str) -> dict[str, float]:
        return {s["metric"]["lcc"]: float(s["value"][1]) for s in live.query(expr)}

    wait_for(
        lambda: min(per_lcc("laserguard_roundtrip_seconds_count").values(), default=0) > 50,
        30,
        "round trips of both LCCs observed by the probe",
    )
    measured = per_lcc("laserguard_roundtrip_seconds_count")
    scored = per_lcc("laserguard_detect_frames_total")
    assert set(measured) == set(scored) == {"1", "2"}
    for lcc in scored:  # the two are scraped up to a second apart (10 frames/s)
        assert 0.8 * scored[lcc] <= measured[lcc] <= scored[lcc] + 20, (lcc, measured, scored)
    p50 = live.query(
        f"histogram_quantile(0.5, sum by (le) (rate(laserguard_roundtrip_seconds_bucket[{RATE_INTERVAL}])))"
    )
    assert 0 < float(p50[0]["value"][1]) < 0.4  # within the finite buckets: the feedback came back


@needs_prometheus
def test_injected_fault_fires_the_anomaly_alert_with_its_top_feature(live: Live) -> None:
    from laserguard.wire.codec import CHANNELS

    def faulted_unit_alert() -> dict[str, Any] | None:
        for alert in live.alerts():
            labels = alert["labels"]
            if (
                labels["alertname"] == "LaserUnitAnomalous"
                and alert["state"] == "firing"
                and {k: labels.get(k) for k in FAULTED} == FAULTED
                and alert["annotations"]["top_feature"] != "unknown"
            ):
                return alert
        return None

    wait_for(lambda: faulted_unit_alert() is not None, 45, "LaserUnitAnomalous firing for LCC 1 unit 3")
    alert = faulted_unit_alert()
    assert alert is not None
    assert alert["labels"]["severity"] == "critical"
    # A channel (fleet forest) or channel:kind (the unit's own baseline), as the exporter names codes.
    assert alert["annotations"]["top_feature"].split(":")[0] in CHANNELS
    assert alert["annotations"]["top_feature"] in alert["annotations"]["description"]
    assert float(alert["value"]) < 0
    firing_units = {
        (a["labels"]["lcc"], a["labels"]["unit"])
        for a in live.alerts()
        if a["labels"]["alertname"] == "LaserUnitAnomalous" and a["state"] == "firing"
    }
    assert len(firing_units) < 16, f"most units alerting: the rule does not separate faults: {firing_units}"
    # The service alerts stay quiet while the loop is healthy.
    service_alerts = {a["labels"]["alertname"] for a in live.alerts() if a["state"] == "firing"}
    assert service_alerts <= {"LaserUnitAnomalous"}, service_alerts
