"""Prometheus metrics of `laserguard detect` (names per design §7)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info


class DetectMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.frames = Counter("laserguard_detect_frames", "Telemetry frames scored", ["lcc"], registry=r)
        self.invalid = Counter(
            "laserguard_detect_frames_invalid",
            "Telemetry messages rejected, by reason",
            ["reason"],
            registry=r,
        )
        self.gaps = Counter(
            "laserguard_detect_frame_gaps", "Frames missing from the sequence", ["lcc"], registry=r
        )
        self.resets = Counter(
            "laserguard_detect_sequence_resets",
            "Sequence numbers that did not move forward within one LCC boot (duplicated or reordered frame)",
            ["lcc"],
            registry=r,
        )
        self.restarts = Counter(
            "laserguard_detect_lcc_restarts",
            "New boot ids seen for an LCC after its first one (the LCC restarted; seq restarts at 0)",
            ["lcc"],
            registry=r,
        )
        self.missed_before_first = Gauge(
            "laserguard_detect_missed_before_first_frames",
            "Frames an LCC sent before the first one this detector received (sequences start at 0)",
            ["lcc"],
            registry=r,
        )
        self.nonfinite = Counter(
            "laserguard_detect_nonfinite_values", "Infinite readings scored as missing", ["lcc"], registry=r
        )
        self.inference = Histogram(
            "laserguard_detect_inference_seconds",
            "Decode + score + encode time per frame",
            buckets=(25e-6, 50e-6, 100e-6, 200e-6, 400e-6, 800e-6, 1.6e-3, 3.2e-3, 6.4e-3, 12.8e-3),
            registry=r,
        )
        self.warm_ups = Counter(
            "laserguard_detect_warm_ups",
            "Dry runs of an LCC's last frame just before its next was due, to refill the caches an idle gap empties",
            registry=r,
        )
        self.feedback = Counter(
            "laserguard_detect_feedback_published", "Feedback messages sent", ["lcc"], registry=r
        )
        self.anomalous_units = Counter(
            "laserguard_detect_anomalous_unit_samples", "Unit samples flagged anomalous", ["lcc"], registry=r
        )
        self.unit_score = Gauge(
            "laserguard_detect_unit_anomaly_score",
            "Latest decision_function per unit",
            ["lcc", "unit"],
            registry=r,
        )
        self.reloads = Counter(
            "laserguard_detect_model_reloads", "Model reload attempts", ["result"], registry=r
        )
        self.model = Info("laserguard_detect_model", "Serving model", registry=r)
        self.flagged_by_stage = Counter(
            "laserguard_detect_flagged_unit_samples",
            "Unit samples flagged, by the stage that flagged them (fleet forest or unit baseline)",
            ["lcc", "stage"],
            registry=r,
        )
        self.unit_deviation = Gauge(
            "laserguard_detect_unit_baseline_deviation",
            "Latest largest deviation of the unit from its own baseline, in thresholds (> 1 flags)",
            ["lcc", "unit"],
            registry=r,
        )
        self.units_learning = Gauge(
            "laserguard_detect_units_learning",
            "Units of the LCC still learning their baseline (never flagged meanwhile)",
            ["lcc"],
            registry=r,
        )
        self.baseline_age = Gauge(
            "laserguard_detect_unit_baseline_age_seconds",
            "Time since the unit's baseline was learned (NaN while learning)",
            ["lcc", "unit"],
            registry=r,
        )
        self.baseline_resets = Counter(
            "laserguard_detect_baseline_resets", "Baseline reset requests applied", registry=r
        )
        self.baseline_state_errors = Counter(
            "laserguard_detect_baseline_state_errors",
            "Baseline state files that could not be read or written, by reason",
            ["reason"],
            registry=r,
        )
