"""The store under overload and SIGTERM with a backlog: the backlog goes to the disk spool, not RAM.

Real processes: lcc-sim (10 LCCs x 32 units at 10 Hz, 3,200 unit-samples/s) -> `laserguard store`
-> the embedded MongoDB-wire server. The database is slowed by freezing its process (SIGSTOP)
for most of each cycle (a duty-cycle throttle), or frozen outright for the SIGTERM test.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pymongo

from laserguard.demo.runner import lcc_sim_executable
from laserguard.storage.embedded_server import EmbeddedMongo
from laserguard.storage.spool import WriteSpool
from mongo_fixtures import require_server_executable
from service_support import endpoint, free_port, laserguard_process, metrics, wait_for
from stored_samples import unit_sample_count

N_LCCS = 10
UNITS = 32
RATE_HZ = 10


@contextmanager
def throttled(pid: int, stopped_s: float, running_s: float) -> Iterator[None]:
    """Freeze the process for ``stopped_s`` of every ``stopped_s + running_s`` seconds."""
    done = threading.Event()

    def cycle() -> None:
        while not done.is_set():
            os.kill(pid, signal.SIGSTOP)
            done.wait(stopped_s)
            os.kill(pid, signal.SIGCONT)
            done.wait(running_s)

    thread = threading.Thread(target=cycle, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()
        os.kill(pid, signal.SIGCONT)


def start_sim(telemetry: str, duration_s: float, summary: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            lcc_sim_executable(), "--lccs", str(N_LCCS), "--rate-hz", str(RATE_HZ),
            "--duration-s", str(duration_s), "--fault-mix", "none", "--hwm", "100000",
            "--telemetry-endpoint", telemetry, "--feedback-endpoint", endpoint(),
            "--wait-for-subscriber", "20", "--summary-json", str(summary), "--log-level", "warning",
        ],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip


def start_store(uri: str, telemetry: str, port: int, tmp_path: Path, log: str) -> subprocess.Popen[bytes]:
    return laserguard_process(
        "store", "--mongo-uri", uri, "--db", "overload", "--telemetry-endpoint", telemetry,
        "--feedback-endpoint", "none", "--metrics-port", str(port), "--spool-dir", str(tmp_path / "spool"),
        "--stop-timeout-s", "3",
        log=tmp_path / log,
    )  # fmt: skip


def stored_frame_ids(uri: str) -> list[str]:
    client: Any = pymongo.MongoClient(uri, serverSelectionTimeoutMS=5000)
    try:
        assert unit_sample_count(client["overload"]) == client["overload"].frames.count_documents({}) * UNITS
        return [d["_id"] for d in client["overload"].frames.find({}, {"_id": 1})]
    finally:
        client.close()


def assert_every_frame_once(ids: list[str], sent: int) -> None:
    assert len(ids) == len(set(ids))  # nothing twice
    assert len(ids) == sent  # nothing lost
    # Exactly the frames of each LCC's boot 0..n-1 (boot ids differ per run: compare lcc and seq).
    keys = {(int(i.split(":")[0]), int(i.split(":")[2])) for i in ids}
    assert keys == {(lcc, seq) for lcc in range(1, N_LCCS + 1) for seq in range(sent // N_LCCS)}


def test_overload_from_a_slowed_database_spools_instead_of_filling_memory_and_loses_nothing(
    tmp_path: Path,
) -> None:
    require_server_executable()
    telemetry, port = endpoint(), free_port()
    run_s, throttle_s = 40.0, 20.0
    with EmbeddedMongo(tmp_path / "db", attach_existing=False) as server:
        assert server.pid is not None
        store = start_store(server.uri, telemetry, port, tmp_path, "store.log")
        try:
            wait_for(lambda: bool(metrics(port)), 60, "store metrics endpoint")
            sim = start_sim(telemetry, run_s, tmp_path / "sim.json")
            wait_for(
                lambda: metrics(port).get("laserguard_store_unit_samples_written_total", 0) > 0, 30, "writes"
            )
            pending_peak = 0.0
            backlog_peak = 0.0
            # 1.5 % duty: at 5 % the embedded server still wrote 69 % of the load on a quiet CI machine.
            with throttled(server.pid, stopped_s=1.97, running_s=0.03):
                before = metrics(port)
                started = time.monotonic()
                while time.monotonic() - started < throttle_s:
                    now = metrics(port)
                    pending_peak = max(pending_peak, now.get("laserguard_store_pending_frames", 0))
                    backlog_peak = max(
                        backlog_peak, now.get("laserguard_store_spool_backlog_unit_samples", 0)
                    )
                    time.sleep(0.2)
                after = metrics(port)
                elapsed = time.monotonic() - started
            written_rate = (
                after["laserguard_store_unit_samples_written_total"]
                - before["laserguard_store_unit_samples_written_total"]
            ) / elapsed
            received_rate = (
                (
                    after["laserguard_store_frames_received_total"]
                    - before["laserguard_store_frames_received_total"]
                )
                * UNITS
                / elapsed
            )
            assert sim.wait(run_s + 30) == 0
            wait_for(
                lambda: (
                    metrics(port).get("laserguard_store_spool_backlog_unit_samples", 1) == 0
                    and metrics(port).get("laserguard_store_pending_frames", 1) == 0
                ),
                120,
                "the spool drained once the database was fast again",
            )
            final = metrics(port)
        finally:
            store.send_signal(signal.SIGTERM)
            status = store.wait(30)
        assert status == 0, (tmp_path / "store.log").read_text()[-3000:]
        sent = json.loads((tmp_path / "sim.json").read_text())["frames_sent"]
        ids = stored_frame_ids(server.uri)
    # The slowed database took less than half of what arrived: at least 2x overload.
    assert written_rate < received_rate / 2, (written_rate, received_rate)
    # The backlog went to the disk spool, and memory held only frames younger than ~2 s
    # (join window 0.5 s + spill after 1 s + one flush; 100 frames/s): without spilling it held
    # every frame of the 20 s.
    assert final["laserguard_store_spilled_batches_total"] > 0
    assert backlog_peak >= 5 * RATE_HZ * N_LCCS * UNITS
    assert pending_peak <= 3 * RATE_HZ * N_LCCS, pending_peak
    assert final["laserguard_store_frames_received_total"] == sent
    assert_every_frame_once(ids, sent)


def test_sigterm_with_a_frozen_database_spools_the_backlog_within_seconds_and_a_restart_stores_it(
    tmp_path: Path,
) -> None:
    require_server_executable()
    telemetry, port = endpoint(), free_port()
    with EmbeddedMongo(tmp_path / "db", attach_existing=False) as server:
        assert server.pid is not None
        store = start_store(server.uri, telemetry, port, tmp_path, "store.log")
        try:
            wait_for(lambda: bool(metrics(port)), 60, "store metrics endpoint")
            sim = start_sim(telemetry, 8.0, tmp_path / "sim.json")
            wait_for(
                lambda: metrics(port).get("laserguard_store_unit_samples_written_total", 0) > 0, 30, "writes"
            )
            os.kill(server.pid, signal.SIGSTOP)  # the database hangs: writes neither finish nor fail
            try:
                assert sim.wait(60) == 0
                sent = json.loads((tmp_path / "sim.json").read_text())["frames_sent"]
                wait_for(
                    lambda: metrics(port).get("laserguard_store_frames_received_total", 0) == sent,
                    30,
                    "the store received every frame",
                )
                held = metrics(port)
                asked = time.monotonic()
                store.send_signal(signal.SIGTERM)
                status = store.wait(30)
                stop_s = time.monotonic() - asked
            finally:
                os.kill(server.pid, signal.SIGCONT)
        finally:
            if store.poll() is None:
                store.kill()
                store.wait()
        log = (tmp_path / "store.log").read_text()
        assert status == 0, log[-3000:]
        # Persisted within seconds (3 s for the writer, then the spool), not racing the database.
        assert stop_s < 8.0, (stop_s, log[-2000:])
        assert "spooled" in log
        spool = WriteSpool(tmp_path / "spool")
        in_spool = spool.backlog_weight
        spool.close()
        written_before = held["laserguard_store_unit_samples_written_total"]
        assert in_spool > 0
        assert written_before + in_spool >= sent * UNITS  # all of it is somewhere durable
        # A new store replays the spool: every frame once.
        store = start_store(server.uri, telemetry, port, tmp_path, "store2.log")
        try:
            wait_for(
                lambda: (
                    metrics(port).get("laserguard_store_replayed_batches_total", 0) > 0
                    and metrics(port).get("laserguard_store_spool_backlog_unit_samples", 1) == 0
                ),
                90,
                "the restarted store replayed the spool",
            )
        finally:
            store.send_signal(signal.SIGTERM)
            assert store.wait(30) == 0, (tmp_path / "store2.log").read_text()[-3000:]
        ids = stored_frame_ids(server.uri)
    assert_every_frame_once(ids, sent)
