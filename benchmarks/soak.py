"""Soak run (issue 12): every component at 10x nominal rate; memory and open files over time.

    python benchmarks/soak.py                       # 600 s at 100 Hz, JSON summary on stdout
    python benchmarks/soak.py --duration-s 120 --out soak.json

Real processes on 127.0.0.1: the embedded MongoDB-wire server (secantusd-py), `laserguard
detect`, `store`, `exporter`, `dashboard`, `roundtrip` and lcc-sim (2 LCCs x 32 units,
`--fault-mix default`). While it runs, this script plays Prometheus (scrapes every metrics
endpoint every 5 s) and an open browser tab (GET /casa_lcc_data every second), and every 10 s
records each process's resident memory (VmRSS) and open file descriptors from /proc.
Growth is the least-squares slope of RSS over the samples after the first minute.
Target: < 1 MB/min per process.

To find whose traffic grows a process, leave consumers out one at a time
(``--without exporter,dashboard,roundtrip,clients``; ``clients`` are this script's scrapes and
polls) or pass options to the store (``--store-arg=--retention-mode=ttl``).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from laserguard.storage.embedded_server import EmbeddedMongo
from reliability_support import (
    Endpoints,
    Service,
    detect_service,
    free_port,
    laserguard,
    lcc_sim_service,
    metrics,
    proc_sample,
    report,
    settled,
    store_service,
    wait_until,
)

DB = "soak"
SAMPLE_EVERY_S = 10.0
WARMUP_S = 60.0


def slope_per_minute(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, MB) points, in MB per minute."""
    if len(points) < 2:
        return 0.0
    n = len(points)
    mean_t = sum(t for t, _ in points) / n
    mean_v = sum(v for _, v in points) / n
    var = sum((t - mean_t) ** 2 for t, _ in points)
    if var == 0:
        return 0.0
    return 60.0 * sum((t - mean_t) * (v - mean_v) for t, v in points) / var


class Clients:
    """Prometheus-like scrapes every 5 s and a browser-like JSON poll every second."""

    def __init__(self, metric_ports: list[int], dashboard_url: str) -> None:
        self.metric_ports = metric_ports
        self.dashboard_url = dashboard_url
        self.requests = 0
        self.failures = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> Clients:
        self._thread.start()
        return self

    def _run(self) -> None:
        tick = 0
        while not self._stop.wait(1.0):
            tick += 1
            targets = [self.dashboard_url + "/casa_lcc_data"] if self.dashboard_url else []
            if tick % 5 == 0:
                targets += [f"http://127.0.0.1:{p}/metrics" for p in self.metric_ports]
            for url in targets:
                self.requests += 1
                try:
                    with urllib.request.urlopen(url, timeout=5) as response:
                        response.read()
                except OSError:
                    self.failures += 1

    def stop(self) -> None:
        self._stop.set()
        if self._thread.ident is not None:  # started (not with --without clients)
            self._thread.join(10)


OPTIONAL = ("exporter", "dashboard", "roundtrip", "clients")


def run(
    duration_s: float,
    rate_hz: float,
    workdir: Path,
    log: Any,
    without: frozenset[str] = frozenset(),
    store_args: tuple[str, ...] = (),
) -> dict[str, Any]:
    ep = Endpoints()
    server = EmbeddedMongo(workdir / "db", attach_existing=False).start()
    uri = server.uri
    detect = detect_service(ep, workdir)
    store = store_service(ep, uri, DB, workdir, "store", store_args)
    exporter_port, dashboard_port, roundtrip_port = free_port(), free_port(), free_port()
    exporter = Service(
        "exporter", laserguard("exporter", "--mongo-uri", uri, "--db", DB, "--port", str(exporter_port)), workdir,
        exporter_port,
    )  # fmt: skip
    dashboard = Service(
        "dashboard",
        laserguard(
            "dashboard", "--mongo-uri", uri, "--db", DB, "--port", str(dashboard_port),
            "--observer-endpoint", ep.observer, "--telemetry-endpoint", ep.telemetry,
            "--detect-metrics-url", f"http://127.0.0.1:{detect.metrics_port}/metrics",
        ),
        workdir,
    )  # fmt: skip
    roundtrip = Service(
        "roundtrip",
        laserguard(
            "roundtrip", "--telemetry-endpoint", ep.telemetry, "--observer-endpoint", ep.observer,
            "--metrics-port", str(roundtrip_port),
        ),
        workdir,
        roundtrip_port,
    )  # fmt: skip
    services = [detect, store] + [s for s in (exporter, dashboard, roundtrip) if s.name not in without]
    try:
        return _run(services, server, ep, rate_hz, duration_s, workdir, log, "clients" not in without)
    finally:  # whatever happened, nothing is left running
        for service in reversed(services):
            service.stop()
        server.stop()


def _run(
    services: list[Service],
    server: EmbeddedMongo,
    ep: Endpoints,
    rate_hz: float,
    duration_s: float,
    workdir: Path,
    log: Any,
    with_clients: bool = True,
) -> dict[str, Any]:
    named = {s.name: s for s in services}
    detect, store = named["detect"], named["store"]
    exporter, dashboard, roundtrip = named.get("exporter"), named.get("dashboard"), named.get("roundtrip")
    exporter_port = (exporter.metrics_port or 0) if exporter else 0
    roundtrip_port = (roundtrip.metrics_port or 0) if roundtrip else 0
    for service in services:
        service.start()
    for service in (detect, store, roundtrip):
        if service is not None:
            service.ready()
    if exporter is not None:
        wait_until(lambda: bool(metrics(exporter_port, timeout_s=5)), 60, "exporter")
    dashboard_url = ""
    if dashboard is not None:
        dashboard_url = f"http://127.0.0.1:{dashboard.command[dashboard.command.index('--port') + 1]}"

    def dashboard_up() -> bool:
        try:
            with urllib.request.urlopen(dashboard_url + "/", timeout=2) as response:
                return int(response.status) == 200
        except OSError:
            return False

    if dashboard is not None:
        wait_until(dashboard_up, 60, "dashboard")
    # detect, store, roundtrip and the dashboard subscribe to telemetry: 4 subscriptions.
    subscriptions = 2 + (roundtrip is not None) + (dashboard is not None)
    sim = lcc_sim_service(ep, rate_hz, duration_s, subscriptions, workdir, "lcc-sim", seed=3).start()
    services.append(sim)
    metric_ports = [detect.metrics_port or 0, store.metrics_port or 0, roundtrip_port, exporter_port]
    clients = Clients([p for p in metric_ports if p], dashboard_url)
    assert server.pid is not None
    pids = {s.name: s.pid for s in services}
    pids["secantusd-py"] = server.pid
    samples: dict[str, list[tuple[float, float, int]]] = {name: [] for name in pids}
    wait_until(
        lambda: (metrics(detect.metrics_port or 0).get("laserguard_detect_frames_total", 0)) > 0,
        90,
        "scoring",
    )
    start = time.monotonic()
    if with_clients:
        clients.start()
    print(f"soak: {duration_s:.0f} s at {rate_hz:g} Hz, pids {pids}", file=log, flush=True)
    try:
        next_sample = start
        while sim.process is not None and sim.process.poll() is None:
            now = time.monotonic()
            if now >= next_sample:
                for name, pid in pids.items():
                    sample = proc_sample(pid)
                    if sample is not None:
                        samples[name].append((now - start, sample[0], sample[1]))
                line = " ".join(f"{n}={v[-1][1]:.0f}MB/{v[-1][2]}fd" for n, v in samples.items() if v)
                print(f"soak t={now - start:6.0f}s {line}", file=log, flush=True)
                next_sample += SAMPLE_EVERY_S
            time.sleep(0.5)
        end = time.monotonic()
        clients.stop()
        store_lag = metrics(store.metrics_port or 0)
        drain_s = settled([store.metrics_port or 0], 1800)
        final_store = metrics(store.metrics_port or 0)
        final_detect = metrics(detect.metrics_port or 0)
        final_roundtrip = metrics(roundtrip_port) if roundtrip_port else {}
    finally:
        clients.stop()
    exits = {s.name: s.stop() for s in reversed(services)}
    sim_summary = json.loads((workdir / "lcc-sim.json").read_text())
    processes: dict[str, Any] = {}
    for name, points in samples.items():
        steady = [(t, rss) for t, rss, _ in points if t >= WARMUP_S]
        fds = [fd for _, _, fd in points]
        growth = slope_per_minute(steady)
        # Bounded caches (e.g. the store's 20,000 recently written frames) fill for a while at
        # 10x rate: the second half shows whether growth has stopped.
        half = (points[-1][0] / 2) if points else 0.0
        late = slope_per_minute([(t, rss) for t, rss, _ in points if t >= half])
        processes[name] = {
            "rss_mb_at_1min": round(steady[0][1], 1) if steady else None,
            "rss_mb_end": round(points[-1][1], 1) if points else None,
            "rss_mb_max": round(max(rss for _, rss, _ in points), 1) if points else None,
            "rss_growth_mb_per_min_after_1min": round(growth, 3),
            "rss_growth_mb_per_min_second_half": round(late, 3),
            "open_files_min": min(fds) if fds else None,
            "open_files_max": max(fds) if fds else None,
            "open_files_end": fds[-1] if fds else None,
            "samples": len(points),
            "target_met": growth < 1.0,
        }
    sent = int(sim_summary["frames_sent"])
    return {
        "config": {
            "duration_s": duration_s,
            "rate_hz": rate_hz,
            "lccs": 2,
            "units": 32,
            "sample_every_s": SAMPLE_EVERY_S,
            "without": sorted(
                set(OPTIONAL) - {s.name for s in services} - ({"clients"} if with_clients else set())
            ),
            "store_args": store.command[store.command.index("--spool-dir") + 2 :],
        },
        "elapsed_s": round(end - start, 1),
        "frames_sent": sent,
        "frames_scored": final_detect.get("laserguard_detect_frames_total", 0),
        "unit_samples_written": final_store.get("laserguard_store_unit_samples_written_total", 0),
        "unit_samples_expected": sent * 32,
        "store_pending_frames_at_end_of_run": store_lag.get("laserguard_store_pending_frames", 0),
        "store_drain_after_run_s": round(drain_s, 1),
        "roundtrip_observations": final_roundtrip.get("laserguard_roundtrip_seconds_count", 0),
        "lcc_roundtrip_us": sim_summary.get("round_trip_latency_us"),
        "client_requests": clients.requests,
        "client_failures": clients.failures,
        "processes": processes,
        "exit_statuses": exits,
        "target_met": all(p["target_met"] for p in processes.values()),
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration-s", type=float, default=600.0)
    parser.add_argument("--rate-hz", type=float, default=100.0, help="per LCC (10x the nominal 10 Hz)")
    parser.add_argument("--workdir", default=None, help="keep logs and data here (default: a temp dir)")
    parser.add_argument("--out", default=None, help="also write the JSON summary here")
    parser.add_argument(
        "--without",
        default="",
        metavar="NAMES",
        help=f"comma-separated components to leave out: {', '.join(OPTIONAL)} (default: none)",
    )
    parser.add_argument(
        "--store-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="extra option for `laserguard store` (repeatable), e.g. --store-arg=--retention-mode=ttl",
    )
    args = parser.parse_args()
    without = frozenset(name for name in args.without.split(",") if name)
    if without - set(OPTIONAL):
        parser.error(f"--without {args.without!r}: only {', '.join(OPTIONAL)} can be left out")
    with tempfile.TemporaryDirectory(prefix="laserguard-soak-") as tmp:
        workdir = Path(args.workdir) if args.workdir else Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        result = run(args.duration_s, args.rate_hz, workdir, sys.stderr, without, tuple(args.store_arg))
    return report(result, args.out)


if __name__ == "__main__":
    sys.exit(main())
