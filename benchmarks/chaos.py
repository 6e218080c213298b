"""Chaos run (issue 12): the live loop at 10x nominal rate while its parts fail, one after another.

    python benchmarks/chaos.py                      # 300 s at 100 Hz, JSON summary on stdout
    python benchmarks/chaos.py --duration-s 60 --out chaos.json

Real processes on 127.0.0.1: the embedded MongoDB-wire server (secantusd-py), `laserguard
detect`, two `laserguard store`s on the same database (the redundant deployment of
docs/operations.md), and lcc-sim (2 LCCs x 32 units, `--fault-mix default`). In turn:

1. SIGKILL `detect` and start it again at once;
2. SIGKILL store B, start it again 5 s later (store A has everything meanwhile);
3. stop the database for 30 s (both stores spool to disk), start it again on the same files;
4. stop lcc-sim (SIGINT) and start it again: a new boot, seq from 0.

Then the stores drain, stop with SIGTERM, and every (lcc, boot, unit) history in the database is
counted against what lcc-sim published in that boot. Summary: published per boot, stored,
lost, duplicated, the longest feedback gap, feedback after the detect restart, alarms.
Target: 0 lost, 0 duplicated, feedback back within 1 s of a detect restart.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pymongo

from laserguard.storage.embedded_server import EmbeddedMongo
from reliability_support import (
    UNITS,
    Endpoints,
    FeedbackWatch,
    Service,
    detect_service,
    lcc_sim_service,
    metrics,
    report,
    settled,
    store_service,
    wait_until,
)

DB = "chaos"


def count_per_boot(uri: str, boots: list[tuple[int, int]]) -> tuple[dict[str, dict[str, int]], int]:
    """Stored unit-samples per boot and LCC, and documents outside what was published.

    One streaming pass over the frame documents' ids and unit counts (one document per frame).
    """
    ticks = {f"{boot:016x}": n for boot, n in boots}
    counts: dict[str, dict[str, int]] = {b: {"1": 0, "2": 0} for b in ticks}
    unexpected = 0
    client: Any = pymongo.MongoClient(uri, serverSelectionTimeoutMS=10_000, socketTimeoutMS=600_000)
    try:
        for doc in client[DB]["frames"].find({}, {"_id": 1, "n_units": 1}).batch_size(20_000):
            lcc, boot, seq = str(doc["_id"]).split(":")
            units = int(doc["n_units"])
            if boot in ticks and lcc in ("1", "2") and int(seq) < ticks[boot] and units == UNITS:
                counts[boot][lcc] += units
            else:
                unexpected += units
    finally:
        client.close()
    return counts, unexpected


def alarm_counts(uri: str) -> dict[str, int]:
    client: Any = pymongo.MongoClient(uri, serverSelectionTimeoutMS=10_000)
    try:
        events = client[DB]["anomaly_events"]
        return {
            "raised": events.count_documents({}),
            "active_at_end": events.count_documents({"state": "active"}),
        }
    finally:
        client.close()


def run(duration_s: float, rate_hz: float, outage_s: float, workdir: Path, log: Any) -> dict[str, Any]:
    ep = Endpoints()
    server = EmbeddedMongo(workdir / "db", attach_existing=False).start()
    uri = server.uri
    detect = detect_service(ep, workdir)
    stores = [store_service(ep, uri, DB, workdir, name) for name in ("store-a", "store-b")]
    sims: list[Service] = []
    try:
        return _run(ep, server, detect, stores, sims, duration_s, rate_hz, outage_s, workdir, log)
    finally:  # whatever happened, nothing is left running
        for service in (*sims, detect, *stores):
            service.stop()
        server.stop()


def _run(
    ep: Endpoints,
    server: EmbeddedMongo,
    detect: Service,
    stores: list[Service],
    sims: list[Service],
    duration_s: float,
    rate_hz: float,
    outage_s: float,
    workdir: Path,
    log: Any,
) -> dict[str, Any]:
    uri = server.uri
    for service in (detect, *stores):
        service.start()
    for service in (detect, *stores):
        service.ready()
    watch = FeedbackWatch(ep.observer).start()
    events: list[dict[str, Any]] = []
    boots: list[tuple[int, int]] = []  # (boot id, ticks per LCC)
    t_detect, t_store, t_db, t_sim = (duration_s * f for f in (0.15, 0.35, 0.55, 0.8))

    def note(what: str, **details: Any) -> None:
        events.append({"t_s": round(time.monotonic() - start, 2), "event": what, **details})
        print(f"chaos t={events[-1]['t_s']:7.1f}s {what} {details or ''}", file=log, flush=True)

    sim = lcc_sim_service(ep, rate_hz, 0, 3, workdir, "lcc-sim-boot1", seed=1).start()
    sims.append(sim)
    # lcc-sim waits for detect and both stores before its first frame.
    wait_until(lambda: bool(watch.arrivals), 60, "first feedback")
    start = time.monotonic()
    note("lcc-sim boot 1 publishing")
    detect_restart: dict[str, Any] = {}
    try:
        time.sleep(max(0.0, t_detect - (time.monotonic() - start)))
        killed_at = time.monotonic()
        detect.kill()
        note("SIGKILL detect")
        spawned_at = time.monotonic()
        detect.start()
        ready_s = detect.ready()
        ready_at = spawned_at + ready_s
        first = wait_until(
            lambda: watch.first_after(killed_at) is not None, 30, "feedback after detect restart"
        )
        del first
        back = watch.first_after(killed_at)
        assert back is not None
        detect_restart = {
            "kill_to_feedback_s": round(back - killed_at, 3),
            "spawn_to_feedback_s": round(back - spawned_at, 3),
            "ready_to_feedback_s": round(back - ready_at, 3),
            "spawn_to_ready_s": round(ready_s, 3),
        }
        note("detect back", **detect_restart)

        time.sleep(max(0.0, t_store - (time.monotonic() - start)))
        stores[1].kill()
        note("SIGKILL store-b")
        time.sleep(5)
        stores[1].start()
        stores[1].ready()
        note("store-b restarted")

        time.sleep(max(0.0, t_db - (time.monotonic() - start)))
        server.stop()
        note("database stopped")
        time.sleep(outage_s)
        server.start()
        note("database started", port=server.port)

        time.sleep(max(0.0, t_sim - (time.monotonic() - start)))
        sim.stop()
        note("lcc-sim stopped (SIGINT/SIGTERM)")
        summary1 = json.loads((workdir / "lcc-sim-boot1.json").read_text())
        boots.append((int(summary1["boot_id"]), int(summary1["ticks"])))
        sim2 = lcc_sim_service(ep, rate_hz, 0, 3, workdir, "lcc-sim-boot2", seed=2).start()
        sims.append(sim2)
        restart_at = time.monotonic()
        wait_until(lambda: watch.first_after(restart_at) is not None, 60, "feedback for boot 2")
        note("lcc-sim boot 2 publishing")
        time.sleep(max(0.0, duration_s - (time.monotonic() - start)))
        sim2.stop()
        end = time.monotonic()
        note("lcc-sim stopped: run over")
        summary2 = json.loads((workdir / "lcc-sim-boot2.json").read_text())
        boots.append((int(summary2["boot_id"]), int(summary2["ticks"])))
        drain_s = settled([s.metrics_port for s in stores if s.metrics_port is not None], 1800)
        note("stores drained", seconds=round(drain_s, 1))
        store_metrics = {s.name: metrics(s.metrics_port) for s in stores if s.metrics_port is not None}
        detect_metrics = metrics(detect.metrics_port) if detect.metrics_port is not None else {}
        exits = {s.name: s.stop() for s in (*stores, detect)}
        longest_gap = watch.longest_gap(start, end)
    finally:
        watch.close()
    counts, unexpected = count_per_boot(uri, boots)
    alarms = alarm_counts(uri)

    published = {
        f"{boot:016x}": {"ticks_per_lcc": ticks, "unit_samples": 2 * ticks * UNITS} for boot, ticks in boots
    }
    stored_total = sum(sum(c.values()) for c in counts.values())
    expected_total = sum(p["unit_samples"] for p in published.values())
    lost = sum(
        max(0, published[b]["ticks_per_lcc"] * UNITS - n)
        for b, per_lcc in counts.items()
        for n in per_lcc.values()
    )
    # _ids are unique, so a sample stored twice would show as a document outside the published
    # (lcc, boot, seq < ticks, unit) ranges, e.g. under a wrong boot id or seq.
    duplicated = unexpected
    summary1, summary2 = (json.loads((workdir / f"lcc-sim-boot{i}.json").read_text()) for i in (1, 2))
    return {
        "config": {
            "duration_s": duration_s,
            "rate_hz": rate_hz,
            "lccs": 2,
            "units": UNITS,
            "outage_s": outage_s,
            "stores": 2,
        },
        "events": events,
        "published_per_boot": published,
        "frames_dropped_by_lcc": summary1["frames_dropped"] + summary2["frames_dropped"],
        "stored_per_boot": counts,
        "stored": stored_total,
        "expected": expected_total,
        "lost": lost,
        "duplicated": duplicated,
        "duplicate_writes_absorbed": {
            name: m.get("laserguard_store_duplicate_unit_samples_total", 0)
            for name, m in store_metrics.items()
        },
        "spooled_batches": {
            name: m.get("laserguard_store_spooled_batches_total", 0) for name, m in store_metrics.items()
        },
        "lcc_restarts_seen": {
            "detect": detect_metrics.get("laserguard_detect_lcc_restarts_total", 0),
            **{name: m.get("laserguard_store_lcc_restarts_total", 0) for name, m in store_metrics.items()},
        },
        "longest_feedback_gap_s": round(longest_gap, 3),
        "detect_restart": detect_restart,
        "frames_without_feedback": summary1["frames_without_feedback"] + summary2["frames_without_feedback"],
        "drain_after_run_s": round(drain_s, 1),
        "alarms": {"raised": alarms["raised"], "active_at_end": alarms["active_at_end"]},
        "exit_statuses": exits,
        "target_met": lost == 0 and duplicated == 0 and detect_restart.get("ready_to_feedback_s", 99) <= 1.0,
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration-s", type=float, default=300.0)
    parser.add_argument("--rate-hz", type=float, default=100.0, help="per LCC (10x the nominal 10 Hz)")
    parser.add_argument("--outage-s", type=float, default=30.0, help="how long the database is stopped")
    parser.add_argument("--workdir", default=None, help="keep logs and data here (default: a temp dir)")
    parser.add_argument("--out", default=None, help="also write the JSON summary here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="laserguard-chaos-") as tmp:
        workdir = Path(args.workdir) if args.workdir else Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        result = run(args.duration_s, args.rate_hz, args.outage_s, workdir, sys.stderr)
    return report(result, args.out)


if __name__ == "__main__":
    sys.exit(main())
