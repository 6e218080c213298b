"""`laserguard dashboard` in real headless Chromium, over a real loop.

lcc-sim -> detect -> store -> embedded MongoDB-wire server -> dashboard, all real processes on
free local ports; Chromium (Debian `chromium`) driven by Playwright, which downloads nothing.
The simulator runs a few seconds with three high-severity faults and a few operating changes
(a unit switched off, one switched off and on again, a setpoint step) and then stops, so the
stored state is frozen and the page can be compared with the database and the detector's last
feedback exactly. Set LASERGUARD_DASHBOARD_SCREENSHOT=docs/dashboard.png to refresh the README screenshot.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import zmq

from laserguard.demo.runner import lcc_sim_executable
from laserguard.model.baseline import explanation_name
from laserguard.storage.embedded_server import EmbeddedMongo
from laserguard.wire import codec
from mongo_fixtures import db, mongo_client, mongo_server, require_server_executable
from service_support import endpoint, free_port, laserguard_process, metrics, wait_for

__all__ = ["db", "mongo_client", "mongo_server"]  # fixtures used by name

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
FAULTS = [
    {"lcc": 1, "unit": 3, "type": "facet_damage", "start_s": 1.0, "severity": 1.0},
    {"lcc": 1, "unit": 9, "type": "cooling_loss", "start_s": 1.0, "ramp_s": 1.0, "severity": 1.0},
    {"lcc": 2, "unit": 20, "type": "driver_overshoot", "start_s": 1.0, "severity": 1.0},
]
# Operating changes (lcc-sim --schedule): when the simulator stops, 2:5 is off, 2:7 is warming
# up again and 1:12 runs at a lower setpoint.
SCHEDULE = [
    {"lcc": 2, "unit": 5, "type": "power_off", "at_s": 1.0},
    {"lcc": 2, "unit": 7, "type": "power_off", "at_s": 1.0},
    {"lcc": 2, "unit": 7, "type": "power_on", "at_s": 3.0},
    {"lcc": 1, "unit": 12, "type": "setpoint_step", "at_s": 1.0, "setpoint_a": 6.5},
]
SIM_SECONDS = 6


def require_chromium() -> Any:
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"Debian chromium is not installed at {CHROMIUM} (apt-get install chromium)")
    return pytest.importorskip("playwright.sync_api", reason="pip install playwright (no browser download)")


def http_get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return int(response.status), bytes(response.read())
    except urllib.error.HTTPError as exc:
        return int(exc.code), bytes(exc.read())
    except (urllib.error.URLError, OSError):
        return 0, b""  # not listening (yet)


@dataclass
class Dashboard:
    url: str
    db_name: str
    mongo: EmbeddedMongo
    tmp: Path
    observer: str
    telemetry: str
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def database(self) -> Any:
        import pymongo

        return pymongo.MongoClient(self.mongo.uri, serverSelectionTimeoutMS=5000)[self.db_name]


def stop(process: subprocess.Popen[bytes]) -> int:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return int(process.returncode)


@pytest.fixture(scope="module")
def dashboard(mongo_server: EmbeddedMongo, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dashboard]:
    require_server_executable()
    tmp = tmp_path_factory.mktemp("dashboard")
    port, observer, telemetry = free_port(), endpoint(), endpoint()
    db_name = f"lgdash_{uuid.uuid4().hex[:10]}"
    process = laserguard_process(
        "dashboard", "--port", str(port), "--mongo-uri", mongo_server.uri, "--db", db_name,
        "--observer-endpoint", observer, "--telemetry-endpoint", telemetry,
        "--baseline-state-dir", str(tmp / "baselines"), log=tmp / "dashboard.log",
    )  # fmt: skip
    board = Dashboard(f"http://127.0.0.1:{port}", db_name, mongo_server, tmp, observer, telemetry, [process])
    try:
        wait_for(
            lambda: http_get(board.url + "/")[0] == 200 or process.poll() is not None, 60, "dashboard up"
        )
        assert process.poll() is None, (tmp / "dashboard.log").read_text()
        yield board
    finally:
        status = stop(process)
    assert status == 0, (tmp / "dashboard.log").read_text()[-3000:]


@dataclass
class Loop:
    board: Dashboard
    last_feedback: dict[int, codec.Feedback]
    detect_metrics_port: int


@pytest.fixture(scope="module")
def loop(dashboard: Dashboard) -> Iterator[Loop]:
    """Runs lcc-sim for SIM_SECONDS through detect and store, then leaves the stored state frozen."""
    tmp = dashboard.tmp
    telemetry, feedback = dashboard.telemetry, endpoint()
    detect_port, store_port = free_port(), free_port()
    ctx = zmq.Context()
    watcher = ctx.socket(zmq.SUB)  # the test's own view of the detector's feedback
    watcher.setsockopt(zmq.SUBSCRIBE, b"")
    watcher.setsockopt(zmq.LINGER, 0)
    watcher.connect(dashboard.observer)
    detect = laserguard_process(
        "detect", "--telemetry-endpoint", telemetry, "--feedback-endpoint", feedback,
        "--observer-endpoint", dashboard.observer, "--metrics-port", str(detect_port),
        "--baseline-state-dir", str(tmp / "baselines"), log=tmp / "detect.log",
    )  # fmt: skip
    store = laserguard_process(
        "store", "--mongo-uri", dashboard.mongo.uri, "--db", dashboard.db_name,
        "--telemetry-endpoint", telemetry, "--feedback-endpoint", dashboard.observer,
        "--metrics-port", str(store_port), "--spool-dir", str(tmp / "spool"), log=tmp / "store.log",
    )  # fmt: skip
    services = [detect, store]
    try:
        wait_for(lambda: bool(metrics(detect_port)) and bool(metrics(store_port)), 60, "detect and store up")
        spec = tmp / "faults.json"
        spec.write_text(json.dumps({"faults": FAULTS}))
        schedule = tmp / "schedule.json"
        schedule.write_text(json.dumps({"changes": SCHEDULE}))
        with (tmp / "lcc-sim.log").open("wb") as log:
            sim = subprocess.run(
                [
                    lcc_sim_executable(), "--lccs", "2", "--units", "32", "--rate-hz", "10",
                    "--duration-s", str(SIM_SECONDS), "--fault-mix", "none", "--faults", str(spec),
                    "--schedule", str(schedule),
                    "--telemetry-endpoint", telemetry, "--feedback-endpoint", feedback, "--log-level", "warning",
                ],
                stdout=log, stderr=subprocess.STDOUT, timeout=60, check=False,
            )  # fmt: skip
        assert sim.returncode == 0, (tmp / "lcc-sim.log").read_text()[-2000:]
        last: dict[int, codec.Feedback] = {}
        while watcher.poll(500):
            _topic, payload = watcher.recv_multipart()
            fb = codec.decode_feedback(payload)
            if fb.lcc_id not in last or fb.seq > last[fb.lcc_id].seq:
                last[fb.lcc_id] = fb
        assert set(last) == {1, 2}
        db = dashboard.database()
        # Drained: every unit's newest telemetry and score are the last frame's, so the state is frozen.
        final = {lcc: fb.seq for lcc, fb in last.items()}

        def drained() -> bool:
            docs = list(db.latest_state.find({}, {"lcc": 1, "seq": 1, "score_seq": 1}))
            return len(docs) == 64 and all(d["seq"] == d["score_seq"] == final[d["lcc"]] for d in docs)

        wait_for(drained, 30, "store drained")
        yield Loop(dashboard, last, detect_port)
    finally:
        statuses = [stop(p) for p in services]
        watcher.close(0)
        ctx.term()
    assert statuses == [0, 0], (tmp / "store.log").read_text()[-2000:]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    playwright_api = require_chromium()
    with playwright_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@dataclass
class Page:
    page: Any
    console_errors: list[str]


def open_page(browser: Any, url: str) -> Page:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    page.on("console", lambda m: errors.append(f"{m.type}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(f"pageerror: {e}"))
    page.goto(url)
    return Page(page, errors)


def highlighted_units(page: Any) -> set[tuple[int, int]]:
    ids = page.eval_on_selector_all(".unit.anomalous", "cells => cells.map(c => c.id)")
    return {(json.loads(i)["lcc"], json.loads(i)["unit"]) for i in ids}


# --- tests, in order: the first one runs before any data exists ---------------------------------


def test_casa_lcc_data_is_503_with_a_clear_message_before_any_data(dashboard: Dashboard) -> None:
    status, body = http_get(dashboard.url + "/casa_lcc_data")
    assert status == 503
    assert "No payload available" in json.loads(body)["error"]


def test_casa_lcc_data_serves_the_stored_state_as_json(loop: Loop) -> None:
    db = loop.board.database()
    stored_seqs = {(d["lcc"], d["unit"]): d["seq"] for d in db.latest_state.find({})}

    def current() -> dict[str, Any]:
        status, body = http_get(loop.board.url + "/casa_lcc_data")
        assert status == 200, body
        payload: dict[str, Any] = json.loads(body)
        return payload

    def shown_seqs() -> dict[tuple[int, int], int]:
        return {(lcc["lcc"], u["unit"]): u["seq"] for lcc in current()["lccs"] for u in lcc["units"]}

    # The dashboard re-reads the database once a second; its first read may predate the last writes.
    wait_for(lambda: shown_seqs() == stored_seqs, 10, "payload current")
    payload = current()
    assert [lcc["lcc"] for lcc in payload["lccs"]] == [1, 2]
    for lcc in payload["lccs"]:
        assert [u["unit"] for u in lcc["units"]] == list(range(32))
        stored = {d["unit"]: d for d in db.latest_state.find({"lcc": lcc["lcc"]})}
        for unit in lcc["units"]:
            assert unit["seq"] == stored[unit["unit"]]["seq"]
            assert unit["values"]["optical_power_w"] == pytest.approx(
                stored[unit["unit"]]["values"]["optical_power_w"]
            )
        assert lcc["anomalous_units"] == loop.last_feedback[lcc["lcc"]].anomalous_units.tolist()
    assert payload["feedback"]["model_version"] == loop.last_feedback[1].model_version
    # Sensor timestamp to feedback at the dashboard, matched by (lcc, seq): positive, from many frames.
    assert 0 < payload["feedback"]["latency_ms_p50"] <= payload["feedback"]["latency_ms_p99"]
    assert payload["feedback"]["messages_rejected"] == 0
    assert payload["feedback"]["anomalous_units_in_last_feedback"] == {
        str(lcc): fb.anomalous_units.tolist() for lcc, fb in loop.last_feedback.items()
    }


def test_page_shows_64_units_and_highlights_the_flagged_ones(loop: Loop, browser: Any) -> None:
    view = open_page(browser, loop.board.url + "/")
    page = view.page
    page.wait_for_selector(".unit:not(.nodata)", timeout=20_000)
    assert page.locator(".unit").count() == 64
    flagged_by_detector = {
        (lcc, int(u)) for lcc, fb in loop.last_feedback.items() for u in fb.anomalous_units.tolist()
    }
    in_database = {
        (d["lcc"], d["unit"]) for d in loop.board.database().latest_state.find({"anomalous": True})
    }
    assert in_database == flagged_by_detector
    assert flagged_by_detector, "three high-severity faults should leave flagged units"
    wait_for(lambda: highlighted_units(page) == flagged_by_detector, 10, "page highlights the flagged units")
    assert page.locator(".unit.nodata").count() == 0
    # Flagged units name their top features, in the cell and in the anomaly table.
    lcc, unit = sorted(flagged_by_detector)[0]
    top = loop.last_feedback[lcc].top_features[unit]
    first_feature = explanation_name(int(top[0]), codec.CHANNELS)
    cell = page.locator(f'[id=\'{{"lcc":{lcc},"type":"unit-cell","unit":{unit}}}\']')
    wait_for(lambda: first_feature in cell.inner_text(), 10, f"cell shows top feature {first_feature}")
    assert page.locator(".anomaly-row").count() == len(flagged_by_detector)
    assert loop.last_feedback[1].model_version in page.locator("#status-model").inner_text()
    page.wait_for_timeout(1500)  # a few refresh cycles
    assert view.console_errors == []
    page.close()


def test_rebaseline_button_files_a_reset_request_for_the_selected_unit(loop: Loop, browser: Any) -> None:
    from laserguard.live.baseline_store import pending_resets

    view = open_page(browser, loop.board.url + "/")
    page = view.page
    page.wait_for_selector(".unit:not(.nodata)", timeout=20_000)
    page.locator('[id=\'{"lcc":2,"type":"unit-cell","unit":7}\']').click()
    page.locator("#rebaseline").click()
    page.wait_for_function(
        "document.querySelector('#rebaseline-message').innerText.includes('re-baseline requested')",
        timeout=10_000,
    )
    # The request file reaches the detector of the loop, which is still running: it applies the
    # reset within a second (the LCC is known to it) and removes the file.
    state_dir = loop.board.tmp / "baselines"
    wait_for(
        lambda: metrics(loop.detect_metrics_port).get("laserguard_detect_baseline_resets_total") == 1,
        10,
        "detect applied the reset",
    )
    assert pending_resets(state_dir) == []
    assert view.console_errors == []
    page.close()


def test_clicking_a_unit_shows_its_history_and_score_plot(loop: Loop, browser: Any) -> None:
    view = open_page(browser, loop.board.url + "/")
    page = view.page
    page.wait_for_selector(".unit:not(.nodata)", timeout=20_000)
    lcc, unit = 1, 3
    page.locator(f'[id=\'{{"lcc":{lcc},"type":"unit-cell","unit":{unit}}}\']').click()
    page.wait_for_function(
        "() => document.querySelector('#detail-title').innerText.startsWith('LCC 1 unit 3')", timeout=10_000
    )
    # One frame document per sample of the LCC, each holding every unit's sample.
    stored = loop.board.database().frames.count_documents({"lcc": lcc})
    assert page.locator("#detail-title").inner_text() == f"LCC 1 unit 3: last {min(stored, 300)} samples"
    # The score plot has drawn a line through the stored samples.
    page.wait_for_selector("#score-graph .scatterlayer .trace path.js-line", timeout=10_000)
    assert view.console_errors == []
    page.close()


def test_the_page_shows_the_stored_setpoint_and_state_of_live_units(loop: Loop, browser: Any) -> None:
    db = loop.board.database()
    stored = {(d["lcc"], d["unit"]): d for d in db.latest_state.find({})}
    # What the store kept from the frames: the scheduled states and setpoints.
    assert {key: stored[key]["state"] for key in ((2, 5), (2, 7), (1, 12), (1, 0))} == {
        (2, 5): "off", (2, 7): "warming", (1, 12): "on", (1, 0): "on"
    }  # fmt: skip
    assert stored[(2, 5)]["setpoint_a"] == 0.0 and stored[(1, 12)]["setpoint_a"] == pytest.approx(6.5)
    view = open_page(browser, loop.board.url + "/")
    page = view.page
    page.wait_for_selector(".unit:not(.nodata)", timeout=20_000)

    def shown() -> dict[tuple[int, int], str]:
        cells = page.eval_on_selector_all(
            ".unit", "cells => cells.map(c => [c.id, (c.querySelector('.unit-context') || {}).innerText])"
        )
        return {(json.loads(i)["lcc"], json.loads(i)["unit"]): text for i, text in cells}

    expected = {key: f"{d['setpoint_a']:.2f} A {d['state']}" for key, d in stored.items()}
    wait_for(lambda: shown() == expected, 10, "every cell shows its stored setpoint and state")
    assert "state-off" in (
        page.locator('[id=\'{"lcc":2,"type":"unit-cell","unit":5}\']').get_attribute("class") or ""
    )
    # Flagged units list their context next to the score (the anomaly table is in (lcc, unit) order).
    flagged = sorted(key for key, d in stored.items() if d["anomalous"])
    assert flagged, "the faults and operating changes leave flagged units"
    wait_for(
        lambda: page.locator(".anomaly-context").all_inner_texts() == [expected[key] for key in flagged],
        10,
        "anomaly table shows each flagged unit's setpoint and state",
    )
    # Unit 2:7's history: on, off from 1 s, warming from 3 s; its setpoint dropped to 0 meanwhile.
    page.locator('[id=\'{"lcc":2,"type":"unit-cell","unit":7}\']').click()
    page.wait_for_selector("#setpoint-graph .scatterlayer .trace path.js-line", timeout=10_000)
    figure = page.evaluate(
        "() => { const g = document.querySelector('#setpoint-graph .js-plotly-plot');"
        " return {y: g.data[0].y, bands: (g.layout.shapes || []).map(s => s.name)}; }"
    )
    assert figure["bands"] == ["state-off", "state-warming"]
    assert 0.0 in figure["y"] and max(figure["y"]) > 0.0
    assert view.console_errors == []
    page.close()


def test_an_alarm_is_acknowledged_and_cleared_through_the_page(loop: Loop, browser: Any) -> None:
    db = loop.board.database()
    active = list(db.anomaly_events.find({"state": "active"}))
    assert active, "the faults should have raised alarms"
    event_id = sorted(a["_id"] for a in active)[0]
    view = open_page(browser, loop.board.url + "/")
    page = view.page
    button = page.locator(f'[id=\'{{"event":"{event_id}","type":"alarm-ack"}}\']')
    button.wait_for(timeout=20_000)
    button.click()
    wait_for(lambda: bool(db.anomaly_events.find_one({"_id": event_id})["acknowledged"]), 10, "acknowledged")
    event = db.anomaly_events.find_one({"_id": event_id})
    assert event["state"] == "active"
    assert event["acknowledged_by"].startswith("dashboard@")
    page.wait_for_function(
        f"() => document.querySelector('#alarm-message').innerText === 'acknowledged {event_id}'",
        timeout=10_000,
    )
    clear = page.locator(f'[id=\'{{"event":"{event_id}","type":"alarm-clear"}}\']')
    clear.wait_for(timeout=10_000)
    clear.click()
    wait_for(lambda: db.anomaly_events.find_one({"_id": event_id})["state"] == "cleared", 10, "cleared")
    assert db.anomaly_events.find_one({"_id": event_id})["cleared_by"].startswith("dashboard@")
    # The other alarms are untouched.
    others = [a["_id"] for a in active if a["_id"] != event_id]
    assert all(db.anomaly_events.find_one({"_id": o})["state"] == "active" for o in others)
    assert view.console_errors == []
    # The README screenshot: the unit switched off and on again selected, its history plotted.
    page.locator('[id=\'{"lcc":2,"type":"unit-cell","unit":7}\']').click()
    page.wait_for_selector("#score-graph .scatterlayer .trace path.js-line", timeout=10_000)
    page.wait_for_selector("#setpoint-graph .layer-below .shapelayer path", state="attached", timeout=10_000)
    shot = loop.board.tmp / "dashboard.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    target = os.environ.get("LASERGUARD_DASHBOARD_SCREENSHOT")
    if target:  # a small PNG for the README: 64-colour palette
        from PIL import Image

        Image.open(shot).convert("RGB").quantize(colors=64).save(target, optimize=True)
    page.close()


# --- without a browser: the JSON view and the alarm actions on hand-made documents ----------------


def test_payload_reports_missing_readings_as_null_and_alarm_actions_change_only_their_alarm(db: Any) -> None:
    from laserguard.dashboard.app import create_app
    from laserguard.dashboard.feedback_monitor import FeedbackMonitor
    from laserguard.dashboard.state import DashboardState

    values = dict.fromkeys(codec.CHANNELS, 1.5)
    values["optical_power_w"] = float("nan")  # a sensor dropout is stored as NaN
    db.latest_state.insert_one(
        {
            "_id": "4:0", "lcc": 4, "unit": 0, "seq": 7, "score_seq": 7, "values": values, "score": -0.25,
            "anomalous": True, "top_features": [2, 4, -1], "top_weights": [0.5, 0.25, 0.0], "model_version": "m1",
            "alarm_state": "active", "alarm_event_id": "4:0:5", "alarm_acknowledged": False,
        }
    )  # fmt: skip
    for event_id, unit in (("4:0:5", 0), ("4:1:6", 1)):
        db.anomaly_events.insert_one(
            {
                "_id": event_id,
                "lcc": 4,
                "unit": unit,
                "state": "active",
                "acknowledged": False,
                "top_features": [2],
            }
        )
    state = DashboardState(db)
    state.read()
    client = create_app(state, FeedbackMonitor(None), [4], 2).server.test_client()
    response = client.get("/casa_lcc_data")
    assert response.status_code == 200
    (lcc,) = response.get_json()["lccs"]
    (unit,) = lcc["units"]
    assert unit["values"]["optical_power_w"] is None and unit["values"]["diode_temp_c"] == 1.5
    assert unit["top_features"] == [
        {"channel": "optical_power_w", "weight": 0.5},
        {"channel": "diode_temp_c", "weight": 0.25},
    ]
    assert lcc["anomalous_units"] == [0] and unit["alarm"]["state"] == "active"

    assert state.acknowledge("4:0:5", "operator") and not state.acknowledge("4:9:9", "operator")
    assert db.latest_state.find_one({"_id": "4:0"})["alarm_acknowledged"] is True
    assert state.clear("4:0:5", "operator")
    assert not state.clear("4:0:5", "operator")  # already cleared
    assert db.latest_state.find_one({"_id": "4:0"})["alarm_state"] == "cleared"
    assert [(a.event_id, a.state) for a in state.snapshot.alarms] == [
        ("4:1:6", "active"),
        ("4:0:5", "cleared"),
    ]


def test_unreachable_database_gives_503_naming_it_and_a_busy_port_is_refused(tmp_path: Path) -> None:
    dead_db = f"mongodb://127.0.0.1:{free_port()}/?directConnection=true"
    port = free_port()
    process = laserguard_process(
        "dashboard", "--port", str(port), "--mongo-uri", dead_db, "--observer-endpoint", "none",
        "--telemetry-endpoint", "none",
        log=tmp_path / "dashboard.log",
    )  # fmt: skip
    try:
        wait_for(lambda: http_get(f"http://127.0.0.1:{port}/")[0] == 200, 60, "dashboard up")
        status, body = http_get(f"http://127.0.0.1:{port}/casa_lcc_data")
        assert status == 503
        message = json.loads(body)["error"]
        assert "No payload available" in message and "database" in message
        second = laserguard_process(
            "dashboard", "--port", str(port), "--mongo-uri", dead_db, "--observer-endpoint", "none",
        "--telemetry-endpoint", "none",
            log=tmp_path / "second.log",
        )  # fmt: skip
        try:
            assert second.wait(60) == 2
        finally:
            stop(second)
        assert str(port) in (tmp_path / "second.log").read_text()
    finally:
        status = stop(process)
    assert status == 0


# --- operating context: each unit's setpoint and state, in the grid and in its history ----------


def _context_documents(db: Any) -> None:
    """LCC 5: four units in four situations, and unit 1's history through off and warming.

    Unit 3's documents and unit 1's first samples have no setpoint/state: stored before units
    reported them (they show as unknown, not as an error). The history is in the per-sample
    ``telemetry`` documents of that time (the live test reads today's ``frames``).
    """
    import datetime as dt

    from laserguard.storage.schema import boot_key, latest_state_id, telemetry_id

    t0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    values = dict.fromkeys(codec.CHANNELS, 1.0)
    latest = {0: (8.0, "on"), 1: (8.0, "warming"), 2: (6.5, "derated"), 3: None}
    for unit, context in latest.items():
        doc = {"_id": latest_state_id(5, unit), "lcc": 5, "unit": unit, "boot": boot_key(7), "seq": 39,
               "score_seq": 39, "ts": t0 + dt.timedelta(seconds=39), "values": values, "score": 0.1,
               "anomalous": False}  # fmt: skip
        if context is not None:
            doc.update(setpoint_a=context[0], state=context[1])
        db.latest_state.insert_one(doc)
    history = []
    for seq in range(40):
        doc = {"_id": telemetry_id(5, seq, 1, boot_id=7), "lcc": 5, "unit": 1, "boot": boot_key(7), "seq": seq,
               "ts": t0 + dt.timedelta(seconds=seq), "values": values, "score": 0.1, "anomalous": False}  # fmt: skip
        if seq >= 5:
            state = "on" if seq < 15 else "off" if seq < 25 else "warming"
            doc.update(setpoint_a=0.0 if state == "off" else 8.0, state=state)
        history.append(doc)
    db.telemetry.insert_many(history)


def test_grid_and_history_show_each_units_setpoint_and_state(
    mongo_server: EmbeddedMongo, db: Any, browser: Any, tmp_path: Path
) -> None:
    _context_documents(db)
    port = free_port()
    process = laserguard_process(
        "dashboard", "--port", str(port), "--mongo-uri", mongo_server.uri, "--db", db.name, "--lccs", "5",
        "--units", "4", "--observer-endpoint", "none", "--telemetry-endpoint", "none", log=tmp_path / "dashboard.log",
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for(lambda: http_get(url + "/casa_lcc_data")[0] == 200 or process.poll() is not None, 60, "up")
        (lcc,) = json.loads(http_get(url + "/casa_lcc_data")[1])["lccs"]
        assert [(u["setpoint_a"], u["state"]) for u in lcc["units"]] == [
            (8.0, "on"), (8.0, "warming"), (6.5, "derated"), (None, "unknown")
        ]  # fmt: skip

        view = open_page(browser, url + "/")
        page = view.page
        page.wait_for_selector(".unit:not(.nodata)", timeout=20_000)

        def cell(unit: int) -> Any:
            return page.locator(f'[id=\'{{"lcc":5,"type":"unit-cell","unit":{unit}}}\']')

        shown = ["8.00 A on", "8.00 A warming", "6.50 A derated", "- A unknown"]
        for unit, text in enumerate(shown):
            context = cell(unit).locator(".unit-context")
            wait_for(lambda c=context, t=text: c.inner_text() == t, 10, f"unit {unit} shows {text!r}")
        assert "state-warming" in (cell(1).get_attribute("class") or "")
        assert "state-derated" in (cell(2).get_attribute("class") or "")
        assert "setpoint 6.500 A, state derated" in (cell(2).get_attribute("title") or "")

        cell(1).click()
        page.wait_for_function(
            "() => document.querySelector('#detail-context').innerText === 'setpoint 8.000 A, state warming'",
            timeout=10_000,
        )
        page.wait_for_selector("#setpoint-graph .scatterlayer .trace path.js-line", timeout=10_000)
        # What plotly drew: the setpoint trace (a gap where unknown), shaded off and warming runs.
        figure = page.evaluate(
            "() => { const g = document.querySelector('#setpoint-graph .js-plotly-plot');"
            " return {y: g.data[0].y, shape: g.data[0].line.shape,"
            " bands: (g.layout.shapes || []).map(s => [s.name, s.x0, s.x1])}; }"
        )
        assert figure["y"] == [None] * 5 + [8.0] * 10 + [0.0] * 10 + [8.0] * 15
        assert figure["shape"] == "hv"
        assert [(name, x0[11:19], x1[11:19]) for name, x0, x1 in figure["bands"]] == [
            ("state-off", "00:00:15", "00:00:25"),
            ("state-warming", "00:00:25", "00:00:39"),
        ]
        # The same bands behind the score and the channel history, drawn as shapes.
        for graph in ("#score-graph", "#channel-graph", "#setpoint-graph"):
            page.wait_for_selector(f"{graph} .shapelayer path", state="attached", timeout=10_000)
        assert page.locator("#channel-graph .layer-below .shapelayer path").count() == 2
        assert view.console_errors == []
        page.close()
    finally:
        status = stop(process)
    assert status == 0, (tmp_path / "dashboard.log").read_text()[-3000:]
