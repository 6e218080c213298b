"""The live loop survives a database outage of more than 30 s: nothing lost, nothing twice.

Real processes: lcc-sim (10 Hz, 2 LCCs x 32 units) -> `laserguard store` -> the embedded
MongoDB-wire server, which is stopped mid-run for 32 s and started again on the same port
and files.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pymongo

from laserguard.demo.runner import lcc_sim_executable
from laserguard.storage.embedded_server import EmbeddedMongo
from mongo_fixtures import require_server_executable
from service_support import endpoint, free_port, laserguard_process, metrics, wait_for
from stored_samples import all_samples, unit_sample_count

OUTAGE_S = 32.0
RUN_S = 45.0


def test_database_stopped_for_32_s_mid_run_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    require_server_executable()
    telemetry, feedback = endpoint(), endpoint()
    store_port = free_port()
    with EmbeddedMongo(tmp_path / "db", attach_existing=False) as server:
        store = laserguard_process(
            "store", "--mongo-uri", server.uri, "--db", "outage",
            "--telemetry-endpoint", telemetry, "--feedback-endpoint", "none",
            "--metrics-port", str(store_port), "--spool-dir", str(tmp_path / "spool"),
            log=tmp_path / "store.log",
        )  # fmt: skip
        wait_for(lambda: bool(metrics(store_port)), 60, "store metrics endpoint")
        summary_path = tmp_path / "sim.json"
        sim = subprocess.Popen(
            [
                lcc_sim_executable(), "--rate-hz", "10", "--duration-s", str(RUN_S), "--fault-mix", "none",
                "--telemetry-endpoint", telemetry, "--feedback-endpoint", feedback,
                "--wait-for-subscriber", "20", "--summary-json", str(summary_path), "--log-level", "warning",
            ],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            wait_for(
                lambda: metrics(store_port).get("laserguard_store_unit_samples_written_total", 0) > 0,
                30,
                "first writes",
            )
            server.stop()
            outage_started = time.monotonic()
            wait_for(
                lambda: metrics(store_port).get("laserguard_store_spool_backlog_unit_samples", 0) > 0,
                20,
                "store spooling while the database is down",
            )
            time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - outage_started)))
            backlog_during_outage = metrics(store_port)["laserguard_store_spool_backlog_unit_samples"]
            server.start()
            assert sim.wait(RUN_S + 30) == 0
            wait_for(
                lambda: (
                    metrics(store_port).get("laserguard_store_spool_backlog_unit_samples", 1) == 0
                    and metrics(store_port).get("laserguard_store_pending_frames", 1) == 0
                ),
                60,
                "spool replayed",
            )
            final = metrics(store_port)
        finally:
            if sim.poll() is None:
                sim.send_signal(signal.SIGINT)
                sim.wait(30)
            store.send_signal(signal.SIGTERM)
            assert store.wait(30) == 0, (tmp_path / "store.log").read_text()[-3000:]

        sent = json.loads(summary_path.read_text())["frames_sent"]
        client: Any = pymongo.MongoClient(server.uri, serverSelectionTimeoutMS=5000)
        stored = unit_sample_count(client["outage"])
        keys = {(d["lcc"], d["seq"], d["unit"]) for d in all_samples(client["outage"])}
        client.close()

    assert backlog_during_outage >= 32 * 2 * 10 * (OUTAGE_S - 10)  # the outage really held data back
    assert final["laserguard_store_frames_received_total"] == sent  # store saw every frame from seq 0
    assert stored == sent * 32  # nothing lost
    assert len(keys) == stored  # nothing twice
    expected_per_lcc = sent // 2
    assert keys == {
        (lcc, seq, unit) for lcc in (1, 2) for seq in range(expected_per_lcc) for unit in range(32)
    }
