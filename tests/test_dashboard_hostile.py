"""The dashboard against hostile input (issue 12): the write-action token guard and HTTP limits.

Real `laserguard dashboard` processes on 127.0.0.1, the real embedded MongoDB-wire server, raw
HTTP for the hostile requests and headless Chromium (Debian `chromium`, Playwright) for the page.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from laserguard.dashboard.write_guard import MIN_TOKEN_CHARS, TOKEN_ENV, WriteGuard, guard_for, is_loopback
from laserguard.storage.embedded_server import EmbeddedMongo
from mongo_fixtures import mongo_server, require_server_executable
from service_support import free_port, wait_for
from test_dashboard import CHROMIUM, CHROMIUM_ARGS, require_chromium

__all__ = ["mongo_server"]  # fixture used by name

TOKEN = "t0ken-for-this-test-only-" + uuid.uuid4().hex  # generated per run, never a fixed secret
EVENT = "1:3:42"


def request(url: str, data: bytes | None = None, content_type: str = "application/json") -> tuple[int, str]:
    req = urllib.request.Request(url, data=data, headers={"Content-Type": content_type} if data else {})
    try:
        with urllib.request.urlopen(req, timeout=10) as response:
            return int(response.status), response.read().decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read().decode(errors="replace")


def dashboard_process(port: int, extra: list[str], log: Path, token: str | None) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if k != TOKEN_ENV}
    if token is not None:
        env[TOKEN_ENV] = token
    return subprocess.Popen(
        [sys.executable, "-m", "laserguard.cli", "dashboard", "--port", str(port), *extra],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        env=env,
    )


@dataclass
class Board:
    url: str
    db: Any
    log: Path


@pytest.fixture(scope="module")
def board(mongo_server: EmbeddedMongo, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Board]:
    """A dashboard with a token configured (on loopback: then the token is required too)."""
    require_server_executable()
    import pymongo

    tmp = tmp_path_factory.mktemp("hostile")
    db_name = f"lghostile_{uuid.uuid4().hex[:10]}"
    client: Any = pymongo.MongoClient(mongo_server.uri, serverSelectionTimeoutMS=5000)
    db = client[db_name]
    port = free_port()
    log = tmp / "dashboard.log"
    process = dashboard_process(
        port,
        [
            "--mongo-uri",
            mongo_server.uri,
            "--db",
            db_name,
            "--observer-endpoint",
            "none",
            "--telemetry-endpoint",
            "none",
        ],
        log,
        TOKEN,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: process.poll() is not None or _up(url), 60, "dashboard up")
        assert process.poll() is None, log.read_text()
        yield Board(url, db, log)
    finally:
        process.send_signal(signal.SIGTERM)
        status = process.wait(20)
        client.drop_database(db_name)
        client.close()
    assert status == 0, log.read_text()[-3000:]
    assert "Traceback" not in log.read_text()


def _up(url: str) -> bool:
    try:
        return request(url + "/")[0] == 200
    except OSError:
        return False


def add_alarm(db: Any) -> None:
    db.anomaly_events.replace_one(
        {"_id": EVENT},
        {"_id": EVENT, "lcc": 1, "unit": 3, "state": "active", "raised_seq": 42, "acknowledged": False},
        upsert=True,
    )
    db.latest_state.replace_one(
        {"_id": "1:3"},
        {"_id": "1:3", "lcc": 1, "unit": 3, "seq": 42, "alarm_state": "active", "alarm_event_id": EVENT},
        upsert=True,
    )


def ack_request(token: str | None) -> bytes:
    """The body Dash's front end posts when the Acknowledge button of EVENT is clicked."""
    button = {"event": EVENT, "type": "alarm-ack"}
    return json.dumps(
        {
            "output": "alarm-message.children",
            "outputs": {"id": "alarm-message", "property": "children"},
            "inputs": [
                [{"id": button, "property": "n_clicks", "value": 1}],
                [],
            ],
            "changedPropIds": [json.dumps(button, separators=(",", ":"), sort_keys=True) + ".n_clicks"],
            "state": [{"id": "operator-token", "property": "value", "value": token}],
        }
    ).encode()


# ----------------------------------------------------------------------------- start-up refusals


@pytest.mark.parametrize(
    ("bind", "loopback"),
    [("127.0.0.1", True), ("127.0.0.2", True), ("::1", True), ("localhost", True), ("0.0.0.0", False),
     ("::", False), ("10.1.2.3", False), ("dashboard.example", False)],
)  # fmt: skip
def test_only_loopback_binds_may_run_without_a_token(bind: str, loopback: bool) -> None:
    assert is_loopback(bind) is loopback
    if loopback:
        assert guard_for(bind, None).token_required is False
    else:
        with pytest.raises(ValueError, match=f"--bind {bind} is not a loopback address"):
            guard_for(bind, None)
        assert guard_for(bind, TOKEN).token_required


def test_a_non_loopback_dashboard_without_a_token_refuses_to_start(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "refused.log"
    process = dashboard_process(
        port, ["--bind", "0.0.0.0", "--mongo-uri", "mongodb://127.0.0.1:1"], log, None
    )
    assert process.wait(60) == 2
    text = log.read_text()
    assert "--bind 0.0.0.0 is not a loopback address" in text and TOKEN_ENV in text and "--token-file" in text
    assert "Traceback" not in text


def test_a_short_or_unreadable_token_refuses_to_start_without_echoing_it(tmp_path: Path) -> None:
    short = "x" * (MIN_TOKEN_CHARS - 1)
    log = tmp_path / "short.log"
    assert dashboard_process(free_port(), ["--mongo-uri", "mongodb://127.0.0.1:1"], log, short).wait(60) == 2
    text = log.read_text()
    assert f"has {MIN_TOKEN_CHARS - 1} characters" in text and short not in text
    missing = tmp_path / "no-such-token"
    log = tmp_path / "missing.log"
    args = ["--mongo-uri", "mongodb://127.0.0.1:1", "--token-file", str(missing)]
    assert dashboard_process(free_port(), args, log, None).wait(60) == 2
    assert f"cannot read --token-file '{missing}'" in log.read_text()


def test_the_guard_compares_the_whole_token_and_counts_refusals() -> None:
    guard = WriteGuard(TOKEN)
    assert guard.refusal(TOKEN) is None
    assert guard.refusal(TOKEN[:-1]) == "refused: wrong operator token"
    assert guard.refusal(None) is not None and guard.refusal("") is not None
    assert guard.refused == {"wrong_token": 1, "missing_token": 2}
    assert WriteGuard(None).refusal(None) is None


# --------------------------------------------------------------------------- write actions, HTTP


def test_acknowledge_needs_the_token_when_one_is_configured(board: Board) -> None:
    add_alarm(board.db)
    url = board.url + "/_dash-update-component"
    for token in (None, "", TOKEN[:-1] + "?"):
        status, body = request(url, ack_request(token))
        assert status == 200 and "refused" in body, body
    assert board.db.anomaly_events.find_one({"_id": EVENT})["acknowledged"] is False
    status, body = request(url, ack_request(TOKEN))
    assert status == 200 and f"acknowledged {EVENT}" in body, body
    event = board.db.anomaly_events.find_one({"_id": EVENT})
    assert event["acknowledged"] is True and event["acknowledged_by"].startswith("dashboard@")
    # Refusals are visible in the JSON view (once there is a latest state to show).
    wait_for(lambda: request(board.url + "/casa_lcc_data")[0] == 200, 10, "payload")
    payload = json.loads(request(board.url + "/casa_lcc_data")[1])
    assert payload["write_actions_refused"] == {"missing_token": 2, "wrong_token": 1}


@pytest.mark.parametrize(
    ("path", "body", "content_type", "expected"),
    [
        ("/_dash-update-component", b"{" * 3_000_000, "application/json", 413),  # 3 MB
        ("/_dash-update-component", b"{not json", "application/json", 400),
        ("/_dash-update-component", b"[1, 2, 3]", "application/json", 400),
        ("/_dash-update-component", b"\xff\xfe\x00garbage", "application/octet-stream", 400),
        ("/_dash-update-component", json.dumps({"output": "nope.children", "inputs": []}).encode(), "application/json", 400),
        (
            "/_dash-update-component",
            json.dumps({"output": "alarm-message.children", "inputs": [{"id": 5}], "state": "x"}).encode(),
            "application/json",
            400,
        ),
        ("/" + "a" * 10_000, None, "", 414),
        ("/casa_lcc_data?" + "x=1&" * 3_000, None, "", 414),
    ],
)  # fmt: skip
def test_oversized_or_malformed_requests_get_a_4xx_never_a_stack_trace(
    board: Board, path: str, body: bytes | None, content_type: str, expected: int
) -> None:
    status, text = request(board.url + path, body, content_type)
    assert status == expected, text[:300]
    assert 400 <= status < 500
    assert "Traceback" not in text and 'File "' not in text
    assert len(text) < 2000
    assert _up(board.url)  # and it keeps serving


# -------------------------------------------------------------------------------- page, Chromium


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    playwright_api = require_chromium()
    with playwright_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def test_the_page_asks_for_the_token_and_refuses_a_click_without_it(board: Board, browser: Any) -> None:
    add_alarm(board.db)  # active and not acknowledged, whatever earlier tests did to it
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(board.url + "/")
    clear = page.locator(f'[id=\'{{"event":"{EVENT}","type":"alarm-clear"}}\']')
    # The Acknowledge button shows the table has caught up with the alarm as set above: the table
    # re-renders when an alarm changes, and a click racing that re-render can be lost.
    page.locator(f'[id=\'{{"event":"{EVENT}","type":"alarm-ack"}}\']').wait_for(timeout=20_000)
    token_field = page.locator("#operator-token")
    assert token_field.is_visible()
    clear.click()
    page.wait_for_function(
        "() => document.querySelector('#alarm-message').innerText.startsWith('refused')", timeout=10_000
    )
    assert board.db.anomaly_events.find_one({"_id": EVENT})["state"] == "active"
    token_field.fill(TOKEN)
    clear.click()
    wait_for(lambda: board.db.anomaly_events.find_one({"_id": EVENT})["state"] == "cleared", 10, "cleared")
    assert errors == []
    page.close()
