"""`laserguard demo`: the whole loop as child processes, watched, stopped and summarised.

Components: the database (embedded server unless a URI is given), `store`, `exporter`,
`detect` and `lcc-sim`. Consumers start first and `lcc-sim` last, so few frames are published
before anyone listens; those that are are counted as gaps, never hidden. The components off
the feedback path run at a lower priority (``OFF_PATH_NICENESS``) so that on a small machine an
arriving frame does not wait behind a database write.
"""

from __future__ import annotations

import json
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from laserguard.dashboard.metrics_scrape import scrape_totals

# Niceness of the components off the LCC -> detect -> LCC path: store, exporter, dashboard and the
# round-trip probe (the embedded database is started earlier by `laserguard demo`, at the default).
OFF_PATH_NICENESS = 10


class ComponentDied(RuntimeError):
    pass


@dataclass
class DemoConfig:
    duration_s: float
    rate_hz: float
    lccs: int
    units: int
    seed: int
    fault_mix: str
    mongo_uri: str
    db: str
    telemetry_endpoint: str
    feedback_endpoint: str
    observer_endpoint: str
    detect_metrics_port: int
    store_metrics_port: int
    exporter_port: int
    model: str | None
    workdir: Path
    extra_sim_args: list[str] = field(default_factory=list)
    dashboard_port: int = 0  # 0: no dashboard
    roundtrip_port: int = 0  # 0: no round-trip probe
    profile: str = "lab"  # lcc-sim operating profile (issue 16: `lab` once engine v3 holds there)
    curve_keys: Path | None = None  # key directory (laserguard keys generate): CURVE on every link socket


def lcc_sim_executable() -> str:
    """lcc-sim installed next to this interpreter (the venv's bin), else on PATH."""
    beside = Path(sys.executable).parent / "lcc-sim"
    if beside.is_file():
        return str(beside)
    found = shutil.which("lcc-sim")
    if found is None:
        raise FileNotFoundError("lcc-sim not found next to the Python interpreter or on PATH: pip install .")
    return found


class Component:
    """One child process with its log file."""

    def __init__(self, name: str, argv: list[str], workdir: Path) -> None:
        self.name = name
        self.log_path = workdir / f"{name}.log"
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(argv, stdout=self._log, stderr=subprocess.STDOUT)

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 15.0) -> int:
        if self.alive():
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
        return int(self.process.returncode)

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "laserguard.cli", *args]


def _wait_until(predicate: Any, timeout_s: float, what: str, components: list[Component]) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for c in components:
            if not c.alive():
                raise ComponentDied(f"{c.name} exited with {c.process.returncode}:\n{c.log_tail()}")
        if predicate():
            return
        time.sleep(0.1)
    raise TimeoutError(f"{what} not ready after {timeout_s:.0f} s")


class Demo:
    def __init__(self, config: DemoConfig) -> None:
        self.config = config
        self.components: dict[str, Component] = {}
        self.sim_summary_path = config.workdir / "lcc-sim-summary.json"
        self.store_stats_path = config.workdir / "store-stats.json"
        self.started = 0.0

    @property
    def detect_url(self) -> str:
        return f"http://127.0.0.1:{self.config.detect_metrics_port}/metrics"

    @property
    def store_url(self) -> str:
        return f"http://127.0.0.1:{self.config.store_metrics_port}/metrics"

    def _spawn(self, name: str, argv: list[str], off_feedback_path: bool = False) -> Component:
        if off_feedback_path:
            # Two cores serve every component: when a frame arrives, detect and lcc-sim should win
            # the CPU over the storage and display side, which only has to keep up on average.
            argv = ["nice", "-n", str(OFF_PATH_NICENESS), *argv]
        component = Component(name, argv, self.config.workdir)
        self.components[name] = component
        return component

    def start(self) -> None:
        c = self.config
        db_args = ["--mongo-uri", c.mongo_uri, "--db", c.db]
        # Each tool picks its own pair from the directory (lcc, detector, observer).
        curve = ["--curve-keys", str(c.curve_keys)] if c.curve_keys is not None else []
        store = self._spawn(
            "store",
            _cli(
                "store", *db_args,
                "--telemetry-endpoint", c.telemetry_endpoint,
                "--feedback-endpoint", c.observer_endpoint,
                "--metrics-port", str(c.store_metrics_port),
                "--spool-dir", str(c.workdir / "spool"),
                "--stats-json", str(self.store_stats_path), *curve,
            ),
            off_feedback_path=True,
        )  # fmt: skip
        exporter = self._spawn(
            "exporter", _cli("exporter", *db_args, "--port", str(c.exporter_port)), off_feedback_path=True
        )
        if c.dashboard_port:
            self._spawn(
                "dashboard",
                _cli(
                    "dashboard", *db_args, "--port", str(c.dashboard_port),
                    "--observer-endpoint", c.observer_endpoint, "--telemetry-endpoint", c.telemetry_endpoint,
                    "--detect-metrics-url", self.detect_url,
                    "--baseline-state-dir", str(c.workdir / "baselines"), *curve,
                ),
                off_feedback_path=True,
            )  # fmt: skip
        if c.roundtrip_port:
            self._spawn(
                "roundtrip",
                _cli(
                    "roundtrip", "--telemetry-endpoint", c.telemetry_endpoint,
                    "--observer-endpoint", c.observer_endpoint, "--metrics-port", str(c.roundtrip_port),
                    *curve,
                ),
                off_feedback_path=True,
            )  # fmt: skip
        detect_args = [
            "detect",
            "--telemetry-endpoint", c.telemetry_endpoint,
            "--feedback-endpoint", c.feedback_endpoint,
            "--observer-endpoint", c.observer_endpoint,
            "--metrics-port", str(c.detect_metrics_port),
            # The demo's simulated units are new every run: so are their baselines.
            "--baseline-state-dir", str(c.workdir / "baselines"), *curve,
        ]  # fmt: skip
        if c.model:
            detect_args += ["--model", c.model]
        detect = self._spawn("detect", _cli(*detect_args))
        consumers = [store, exporter, detect]
        _wait_until(lambda: scrape_totals(self.detect_url) is not None, 60, "detect", consumers)
        _wait_until(lambda: scrape_totals(self.store_url) is not None, 60, "store", consumers)
        self.started = time.monotonic()
        # Every component that subscribes to telemetry; lcc-sim starts at seq 0 once all have.
        subscribers = 2 + bool(c.dashboard_port) + bool(c.roundtrip_port)
        self._spawn(
            "lcc-sim",
            [
                lcc_sim_executable(),
                "--lccs", str(c.lccs), "--units", str(c.units), "--rate-hz", str(c.rate_hz),
                "--duration-s", str(c.duration_s), "--seed", str(c.seed), "--fault-mix", c.fault_mix,
                "--profile", c.profile,
                "--telemetry-endpoint", c.telemetry_endpoint, "--feedback-endpoint", c.feedback_endpoint,
                "--summary-json", str(self.sim_summary_path), "--log-level", "warning",
                "--wait-for-subscriber", "10", "--subscriptions", str(subscribers),
                *curve, *c.extra_sim_args,
            ],
        )  # fmt: skip

    def check_alive(self) -> None:
        for name, component in self.components.items():
            if name != "lcc-sim" and not component.alive():
                raise ComponentDied(
                    f"{name} exited with {component.process.returncode}:\n{component.log_tail()}"
                )
        sim = self.components["lcc-sim"]
        if not sim.alive() and sim.process.returncode != 0:
            raise ComponentDied(f"lcc-sim exited with {sim.process.returncode}:\n{sim.log_tail()}")

    def sim_running(self) -> bool:
        return self.components["lcc-sim"].alive()

    def progress(self) -> dict[str, float]:
        detect = scrape_totals(self.detect_url) or {}
        store = scrape_totals(self.store_url) or {}
        count = detect.get("laserguard_detect_inference_seconds_count", 0.0)
        return {
            "frames_scored": detect.get("laserguard_detect_frames_total", 0.0),
            "anomalous_unit_samples": detect.get("laserguard_detect_anomalous_unit_samples_total", 0.0),
            "frame_gaps": detect.get("laserguard_detect_frame_gaps_total", 0.0),
            "inference_mean_us": 1e6 * detect.get("laserguard_detect_inference_seconds_sum", 0.0) / count
            if count
            else 0.0,
            "unit_samples_stored": store.get("laserguard_store_unit_samples_written_total", 0.0),
            "spool_backlog": store.get("laserguard_store_spool_backlog_unit_samples", 0.0),
        }

    def drain(self, expected_unit_samples: int, timeout_s: float = 30.0) -> None:
        """After lcc-sim stops, wait until store has written what it received (or stalls)."""
        deadline = time.monotonic() + timeout_s
        last, stable_since = -1.0, time.monotonic()
        while time.monotonic() < deadline:
            self.check_alive()
            store = scrape_totals(self.store_url) or {}
            written = store.get("laserguard_store_unit_samples_written_total", 0.0)
            backlog = store.get("laserguard_store_spool_backlog_unit_samples", 0.0)
            pending = store.get("laserguard_store_pending_frames", 0.0)
            if written >= expected_unit_samples and not backlog and not pending:
                return
            if written != last:
                last, stable_since = written, time.monotonic()
            elif time.monotonic() - stable_since > 3.0 and not backlog and not pending:
                return  # nothing more is coming
            time.sleep(0.2)

    def stop(self, interrupt_sim: bool = False) -> dict[str, int]:
        statuses: dict[str, int] = {}
        if "lcc-sim" in self.components:
            sim = self.components["lcc-sim"]
            statuses["lcc-sim"] = sim.stop(signal.SIGINT if interrupt_sim else signal.SIGTERM, timeout_s=30)
        for name in ("detect", "store", "exporter", "dashboard", "roundtrip"):
            if name in self.components:
                statuses[name] = self.components[name].stop()
        return statuses


def database_counts(mongo_uri: str, db: str) -> dict[str, int]:
    """Unit-samples stored (the units of every frame document) and how many frames were stored twice."""
    from pymongo import MongoClient

    from laserguard.storage.unit_history import duplicated_frames, stored_unit_samples

    client: MongoClient[dict[str, Any]]
    with MongoClient(mongo_uri, serverSelectionTimeoutMS=5000) as client:
        return {"stored": stored_unit_samples(client[db]), "duplicates": duplicated_frames(client[db])}


def reset_database(mongo_uri: str, db: str) -> None:
    from pymongo import MongoClient

    client: MongoClient[dict[str, Any]]
    with MongoClient(mongo_uri, serverSelectionTimeoutMS=5000) as client:
        client.drop_database(db)


def detection_summary(sim_summary: dict[str, Any]) -> dict[str, Any]:
    detection = sim_summary.get("detection", {})
    per_type = detection.get("per_fault_type", {})
    times = [
        t["time_to_first_flag_s"]["p50"]
        for t in per_type.values()
        if t.get("time_to_first_flag_s", {}).get("count")
    ]
    return {
        "true_positives": sum(int(t.get("true_positives", 0)) for t in per_type.values()),
        "false_negatives": sum(int(t.get("false_negatives", 0)) for t in per_type.values()),
        "false_positives": int(detection.get("healthy", {}).get("false_positives", 0)),
        # Median over fault types of each type's median time from onset to first flag.
        "median_time_to_detect_s": statistics.median(times) if times else None,
        "per_fault_type": per_type,
    }


def build_summary(
    demo: Demo, final_detect: dict[str, float], statuses: dict[str, int], elapsed_s: float
) -> dict[str, Any]:
    c = demo.config
    sim: dict[str, Any] = {}
    if demo.sim_summary_path.exists():
        sim = json.loads(demo.sim_summary_path.read_text())
    store_stats: dict[str, Any] = {}
    if demo.store_stats_path.exists():
        store_stats = json.loads(demo.store_stats_path.read_text())
    counts = database_counts(c.mongo_uri, c.db)
    latency = sim.get("round_trip_latency_us", {})
    gaps = final_detect.get("laserguard_detect_frame_gaps_total", 0.0) + final_detect.get(
        "laserguard_detect_missed_before_first_frames", 0.0
    )
    return {
        "frames_published": int(sim.get("frames_sent", 0)),
        "frames_scored": int(final_detect.get("laserguard_detect_frames_total", 0)),
        "frame_gaps": int(gaps),
        "frames_without_feedback": int(sim.get("frames_without_feedback", 0)),
        "unit_samples_stored": counts["stored"],  # counted in the database itself
        "unit_samples_written_by_store": store_stats.get("unit_samples_written"),
        "duplicate_unit_samples": counts["duplicates"],
        "roundtrip_us": {k: latency.get(k) for k in ("p50", "p99", "max")},
        "detection": detection_summary(sim),
        "storage_unit_samples_per_s": store_stats.get("unit_samples_per_s"),
        "components": statuses,
        "link_security": sim.get("link_security", {}),  # CURVE on or off, refused handshakes
        "elapsed_s": round(elapsed_s, 2),
        "config": {
            "duration_s": c.duration_s,
            "rate_hz": c.rate_hz,
            "lccs": c.lccs,
            "units": c.units,
            "seed": c.seed,
            "fault_mix": c.fault_mix,
            "profile": c.profile,
            "db": c.db,
        },
        "logs": str(c.workdir),
    }


def make_workdir() -> Path:
    return Path(tempfile.mkdtemp(prefix="laserguard-demo-"))


def terminate_on_signals() -> None:
    """Turn SIGTERM into KeyboardInterrupt so `demo` shuts its children down either way."""

    def handler(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)
