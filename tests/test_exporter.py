"""The MongoDB exporter scraped over real HTTP, in-process and as the `laserguard exporter` command."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.parser import text_string_to_metric_families

from laserguard.storage.alarms import AlarmTracker
from laserguard.storage.batch_writer import BatchWriter
from laserguard.storage.embedded_server import EmbeddedMongo, free_tcp_port
from laserguard.storage.exporter import LatestStateCollector, channel_metric
from laserguard.storage.spool import WriteSpool
from laserguard.storage.telemetry_store import TelemetryStore
from mongo_fixtures import CHANNELS, db, mongo_client, mongo_server

__all__ = ["db", "mongo_client", "mongo_server"]  # fixtures used by name

N_UNITS = 4


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def unit_labels(lcc: int, unit: int) -> tuple[tuple[str, str], ...]:
    return (("lcc", str(lcc)), ("unit", str(unit)))


def fill_database(database: Any, tmp_path: Path) -> np.ndarray:
    """Two frames of LCC 1 (unit 2 anomalous three times: alarm raised) through the storage layer."""
    # No refresh throttle (interval, upsert budget): every frame's latest state is written.
    store = TelemetryStore(
        CHANNELS,
        alarms=AlarmTracker(raise_after=2, clear_after=2, clear_after_s=0.0),
        latest_interval_s=0.0,
        latest_upserts_per_s=math.inf,
    )
    writer = BatchWriter(database, WriteSpool(tmp_path / "spool"))
    values = np.zeros((N_UNITS, len(CHANNELS)), dtype=np.float32)
    for seq in (1, 2):
        values = (np.arange(N_UNITS * len(CHANNELS), dtype=np.float32).reshape(N_UNITS, -1) + seq) / 4
        store.add_telemetry(1, seq, seq * 1_000_000_000, values)
        scores = np.full(N_UNITS, 0.25, dtype=np.float32)
        scores[2] = -0.125
        empty = np.zeros((N_UNITS, 0))
        store.add_feedback(1, seq, seq * 1_000_000_000, "model-v7", scores, np.array([2]), empty, empty)
        batch = store.take_batch()
        assert batch is not None
        writer.write(batch)
    return values


@pytest.fixture()
def exporter_port(mongo_client: Any, db: Any) -> Iterator[int]:
    registry = CollectorRegistry()
    registry.register(LatestStateCollector(mongo_client, db.name))
    port = free_tcp_port()
    server, _ = start_http_server(port, addr="127.0.0.1", registry=registry)
    yield port
    server.shutdown()


def test_channel_metric_names_carry_prometheus_base_units() -> None:
    assert channel_metric("drive_current_a") == ("laserguard_unit_drive_current_amperes", 1.0)
    assert channel_metric("monitor_pd_ma") == ("laserguard_unit_monitor_pd_amperes", 1e-3)
    assert channel_metric("psu_ripple_mv") == ("laserguard_unit_psu_ripple_volts", 1e-3)
    assert channel_metric("diode_temp_c") == ("laserguard_unit_diode_temp_celsius", 1.0)
    assert channel_metric("optical_power_w") == ("laserguard_unit_optical_power_watts", 1.0)
    assert channel_metric("mystery") == ("laserguard_unit_mystery", 1.0)


def test_scrape_shows_latest_telemetry_scores_and_alarms(db: Any, tmp_path: Path, exporter_port: int) -> None:
    values = fill_database(db, tmp_path)
    metrics = scrape(exporter_port)
    assert metrics[("laserguard_mongodb_up", ())] == 1.0
    assert metrics[("laserguard_units_reporting", ())] == N_UNITS
    for unit in range(N_UNITS):
        labels = unit_labels(1, unit)
        for index, channel in enumerate(CHANNELS):
            name, scale = channel_metric(channel)
            assert metrics[(name, labels)] == pytest.approx(float(values[unit, index]) * scale, rel=1e-12)
        assert metrics[("laserguard_unit_anomaly_score", labels)] == (-0.125 if unit == 2 else 0.25)
        assert metrics[("laserguard_unit_anomalous", labels)] == (1.0 if unit == 2 else 0.0)
        assert metrics[("laserguard_unit_alarm_active", labels)] == (1.0 if unit == 2 else 0.0)
        assert metrics[("laserguard_unit_alarm_acknowledged", labels)] == 0.0
        assert metrics[("laserguard_unit_last_sample_timestamp_seconds", labels)] == 2.0
        assert (
            metrics[("laserguard_unit_model_info", tuple(sorted((*labels, ("model_version", "model-v7")))))]
            == 1.0
        )
    assert metrics[("laserguard_alarms_active", ())] == 1.0
    assert metrics[("laserguard_exporter_scrape_duration_seconds", ())] > 0


def test_scrape_of_an_unreachable_database_reports_it_down() -> None:
    import pymongo

    dead_port = free_tcp_port()  # nothing listens here
    client: Any = pymongo.MongoClient(f"mongodb://127.0.0.1:{dead_port}/", serverSelectionTimeoutMS=200)
    registry = CollectorRegistry()
    registry.register(LatestStateCollector(client, "laserguard"))
    port = free_tcp_port()
    server, _ = start_http_server(port, addr="127.0.0.1", registry=registry)
    try:
        metrics = scrape(port)
    finally:
        server.shutdown()
        client.close()
    assert metrics[("laserguard_mongodb_up", ())] == 0.0
    assert metrics[("laserguard_units_reporting", ())] == 0.0


def test_exporter_command_serves_metrics_and_stops_on_sigterm(
    mongo_server: EmbeddedMongo, db: Any, tmp_path: Path
) -> None:
    values = fill_database(db, tmp_path)
    port = free_tcp_port()
    command = [sys.executable, "-m", "laserguard.cli", "exporter", "--mongo-uri", mongo_server.uri,
               "--db", db.name, "--port", str(port)]  # fmt: skip
    process = subprocess.Popen(command, stderr=subprocess.PIPE, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        metrics: dict[Any, float] = {}
        deadline = time.monotonic() + 30
        while not metrics and time.monotonic() < deadline:
            assert process.poll() is None, process.stderr.read().decode() if process.stderr else ""
            try:
                metrics = scrape(port)
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.1)
        name, _ = channel_metric(CHANNELS[0])
        assert metrics[(name, unit_labels(1, 3))] == pytest.approx(float(values[3, 0]))
        assert metrics[("laserguard_mongodb_up", ())] == 1.0
    finally:
        process.send_signal(signal.SIGTERM)
        status = process.wait(timeout=20)
    assert status == 0


def test_top_features_of_flagged_units_are_exported_by_name(
    db: Any, tmp_path: Path, exporter_port: int
) -> None:
    store = TelemetryStore(CHANNELS)
    writer = BatchWriter(db, WriteSpool(tmp_path / "spool"))
    values = np.ones((N_UNITS, len(CHANNELS)), dtype=np.float32)
    store.add_telemetry(1, 5, 5_000_000_000, values)
    scores = np.array([0.2, -0.3, 0.1, 0.2], dtype=np.float32)
    top_features = np.full((N_UNITS, 2), -1, dtype=np.int16)
    top_weights = np.zeros((N_UNITS, 2), dtype=np.float32)
    top_features[1] = [4, 2]
    top_weights[1] = [0.75, 0.125]
    store.add_feedback(1, 5, 5_000_000_000, "model-v7", scores, np.array([1]), top_features, top_weights)
    batch = store.take_batch()
    assert batch is not None
    writer.write(batch)
    metrics = scrape(exporter_port)
    top = {
        labels: value
        for (name, labels), value in metrics.items()
        if name == "laserguard_unit_top_feature_weight"
    }
    assert top == {
        tuple(sorted((*unit_labels(1, 1), ("rank", "0"), ("feature", CHANNELS[4])))): 0.75,
        tuple(sorted((*unit_labels(1, 1), ("rank", "1"), ("feature", CHANNELS[2])))): 0.125,
    }


def test_setpoint_and_state_of_each_unit_are_exported(db: Any, tmp_path: Path, exporter_port: int) -> None:
    store = TelemetryStore(CHANNELS, latest_interval_s=0.0)
    writer = BatchWriter(db, WriteSpool(tmp_path / "spool"))
    values = np.ones((N_UNITS, len(CHANNELS)), dtype=np.float32)
    setpoints = np.array([8.0, 6.5, 0.0, np.nan], dtype=np.float32)  # unit 3: setpoint unknown
    states = ["on", "derated", "off", "warming"]
    store.add_telemetry(1, 5, 5_000_000_000, values, setpoint_a=setpoints, state=states)
    batch = store.take_batch(flush_all=True)
    assert batch is not None
    writer.write(batch)
    # A unit whose latest state an older store wrote (no setpoint, no state): no context series.
    db.latest_state.insert_one({"_id": "2:0", "lcc": 2, "unit": 0, "seq": 1, "ts_ns": 1, "values": {}})
    metrics = scrape(exporter_port)
    setpoint = {
        labels: value
        for (name, labels), value in metrics.items()
        if name == "laserguard_unit_setpoint_amperes"
    }
    assert setpoint == {unit_labels(1, 0): 8.0, unit_labels(1, 1): 6.5, unit_labels(1, 2): 0.0}
    state = {labels: value for (name, labels), value in metrics.items() if name == "laserguard_unit_state"}
    expected = {
        tuple(sorted((*unit_labels(1, unit), ("state", name)))): 1.0 if name == states[unit] else 0.0
        for unit in range(N_UNITS)
        for name in ("off", "warming", "on", "derated")
    }
    assert state == expected
