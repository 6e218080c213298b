"""Prometheus metrics of `laserguard store` (names per design §7: base units, `_total` counters)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

WRITE_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class StoreMetrics:
    """All metrics of one store instance, registered in ``registry`` (a fresh one per test)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.frames_received = Counter(
            "laserguard_store_frames_received_total",
            "Valid frames received, by kind (telemetry or feedback)",
            ["kind"],
            registry=registry,
        )
        self.invalid_frames = Counter(
            "laserguard_store_invalid_frames_total",
            "Frames rejected by the decoder or the store, by kind and reason",
            ["kind", "reason"],
            registry=registry,
        )
        self.lcc_restarts = Counter(
            "laserguard_store_lcc_restarts_total",
            "New boot ids seen for an LCC after its first one (the LCC restarted; its seq restarts at 0)",
            ["lcc"],
            registry=registry,
        )
        self.frame_gaps = Counter(
            "laserguard_store_frame_gaps_total",
            "Telemetry frames missing from an LCC boot's sequence as seen by this store",
            ["lcc"],
            registry=registry,
        )
        self.unit_samples_written = Counter(
            "laserguard_store_unit_samples_written_total",
            "Telemetry unit-samples newly stored in MongoDB",
            registry=registry,
        )
        self.duplicate_unit_samples = Counter(
            "laserguard_store_duplicate_unit_samples_total",
            "Unit-samples found already stored on a retry or replay (not written twice)",
            registry=registry,
        )
        self.batches_written = Counter(
            "laserguard_store_batches_written_total", "Write batches applied to MongoDB", registry=registry
        )
        self.write_latency = Histogram(
            "laserguard_store_write_latency_seconds",
            "Time to apply one journaled write batch",
            buckets=WRITE_LATENCY_BUCKETS,
            registry=registry,
        )
        self.write_errors = Counter(
            "laserguard_store_write_errors_total",
            "Failed writes by reason (unavailable: spooled for replay; code_N: refused by the server)",
            ["reason"],
            registry=registry,
        )
        self.spooled_batches = Counter(
            "laserguard_store_spooled_batches_total", "Batches spooled to disk", registry=registry
        )
        self.spilled_batches = Counter(
            "laserguard_store_spilled_batches_total",
            "Batches the receive loop put in the disk spool because the writer was behind (overload)",
            registry=registry,
        )
        self.replayed_batches = Counter(
            "laserguard_store_replayed_batches_total",
            "Spooled batches replayed into MongoDB",
            registry=registry,
        )
        self.spool_backlog_unit_samples = Gauge(
            "laserguard_store_spool_backlog_unit_samples",
            "Unit-samples waiting in the disk spool",
            registry=registry,
        )
        self.spool_backlog_batches = Gauge(
            "laserguard_store_spool_backlog_batches", "Batches waiting in the disk spool", registry=registry
        )
        self.spool_backlog_bytes = Gauge(
            "laserguard_store_spool_backlog_bytes", "Size of the disk spool", registry=registry
        )
        self.database_up = Gauge(
            "laserguard_store_database_up", "1 if the last write reached MongoDB", registry=registry
        )
        self.feedback_unmatched = Counter(
            "laserguard_store_feedback_unmatched_total",
            "Feedback frames whose telemetry frame never arrived (scores kept in latest state only)",
            registry=registry,
        )
        self.late_feedback = Counter(
            "laserguard_store_late_feedback_total",
            "Feedback frames that arrived after their telemetry was written (scores added by update)",
            registry=registry,
        )
        self.alarms_raised = Counter(
            "laserguard_store_alarms_raised_total", "Unit alarms raised (after hysteresis)", registry=registry
        )
        self.alarms_cleared = Counter(
            "laserguard_store_alarms_cleared_total", "Unit alarms cleared", registry=registry
        )
        self.summary_minutes = Counter(
            "laserguard_store_summary_minutes_total",
            "Per-unit minute summaries written (rollup of raw frames)",
            registry=registry,
        )
        self.retention_deleted = Counter(
            "laserguard_store_retention_deleted_documents_total",
            "Documents deleted by the store's own retention (where the server has no TTL indexes)",
            ["collection"],
            registry=registry,
        )
        self.pending_frames = Gauge(
            "laserguard_store_pending_frames",
            "Telemetry frames held in memory waiting for feedback or the next batch",
            registry=registry,
        )
