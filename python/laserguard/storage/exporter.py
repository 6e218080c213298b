"""Prometheus collector for the latest per-unit state kept in MongoDB by `laserguard store`.

Every scrape reads the small latest-state collection (one document per unit), never the
telemetry history, so a scrape costs the same whatever the history size.

Naming (design §7): one gauge per channel rather than one gauge with a ``channel`` label,
because the channels have different units and Prometheus names carry the base unit
(a sum or average across a ``channel`` label would mix amperes and volts). The channel's unit
suffix becomes the base unit, with milli-units scaled: ``drive_current_a`` ->
``laserguard_unit_drive_current_amperes``, ``monitor_pd_ma`` -> ``laserguard_unit_monitor_pd_amperes``
(x 1e-3), ``psu_ripple_mv`` -> ``laserguard_unit_psu_ripple_volts`` (x 1e-3), ``diode_temp_c`` ->
``laserguard_unit_diode_temp_celsius``. Labels: ``lcc``, ``unit``.

``laserguard_unit_top_feature_weight`` (labels ``lcc``, ``unit``, ``rank``, ``feature``) carries the
detector's attribution of a flagged unit's latest sample (rank 0 = the feature that contributed
most), so an alert can name the feature; units whose latest sample was normal have no series.

The unit's operating context: ``laserguard_unit_setpoint_amperes`` (the commanded drive current;
no series while unknown) and ``laserguard_unit_state`` (labels ``lcc``, ``unit``, ``state``; enum
style: 1 for the unit's current state, 0 for the others, so ``laserguard_unit_state{state="off"} == 1``
selects the units that are off).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from typing import Any

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from laserguard.model.baseline import explanation_name
from laserguard.storage.schema import ALARM_ACTIVE, LATEST_STATE
from laserguard.wire.codec import UNIT_STATES

# Channel-name unit suffix -> (Prometheus base unit, scale to it). Longest suffixes first.
UNIT_SUFFIXES = (
    ("_ma", "amperes", 1e-3),
    ("_mv", "volts", 1e-3),
    ("_a", "amperes", 1.0),
    ("_v", "volts", 1.0),
    ("_w", "watts", 1.0),
    ("_c", "celsius", 1.0),
)
LABELS = ("lcc", "unit")


def channel_metric(channel: str) -> tuple[str, float]:
    """Metric name and scale of a channel: ``psu_ripple_mv`` -> (``..._psu_ripple_volts``, 1e-3)."""
    for suffix, base_unit, scale in UNIT_SUFFIXES:
        if channel.endswith(suffix):
            return f"laserguard_unit_{channel[: -len(suffix)]}_{base_unit}", scale
    return f"laserguard_unit_{channel}", 1.0


class LatestStateCollector(Collector):
    """Reads ``collection`` (latest state per unit) of ``db`` on each scrape."""

    def __init__(
        self,
        client: Any,
        db_name: str,
        collection: str = LATEST_STATE,
        feature_names: Sequence[str] | None = None,
    ) -> None:
        self.client = client
        self.db_name = db_name
        self.collection = collection
        if feature_names is None:
            from laserguard.wire.codec import CHANNELS  # model features are the telemetry channels, in order

            feature_names = CHANNELS
        self.feature_names = tuple(feature_names)

    def feature_name(self, index: int) -> str:
        """A channel (fleet stage) or ``channel:kind`` (the unit's own baseline), as feedback codes them."""
        return explanation_name(index, self.feature_names)

    def _read(self) -> list[dict[str, Any]]:
        return list(self.client[self.db_name][self.collection].find({}))

    def collect(self) -> Iterator[Metric]:
        from pymongo.errors import PyMongoError

        start = time.perf_counter()
        try:
            documents = self._read()
            up = 1.0
        except PyMongoError:
            documents, up = [], 0.0
        yield GaugeMetricFamily("laserguard_mongodb_up", "1 if MongoDB answered the last scrape", value=up)
        yield from self._unit_metrics(documents)
        yield GaugeMetricFamily(
            "laserguard_exporter_scrape_duration_seconds",
            "Time to read the latest state from MongoDB and build the metrics",
            value=time.perf_counter() - start,
        )

    def _unit_metrics(self, documents: list[dict[str, Any]]) -> Iterator[Metric]:
        channels: dict[str, GaugeMetricFamily] = {}
        score = GaugeMetricFamily(
            "laserguard_unit_anomaly_score", "Latest anomaly score of the unit", labels=LABELS
        )
        anomalous = GaugeMetricFamily(
            "laserguard_unit_anomalous", "1 if the detector flagged the unit's latest sample", labels=LABELS
        )
        alarm_active = GaugeMetricFamily(
            "laserguard_unit_alarm_active",
            "1 while the unit's alarm is raised (hysteresis applied)",
            labels=LABELS,
        )
        alarm_acknowledged = GaugeMetricFamily(
            "laserguard_unit_alarm_acknowledged",
            "1 if the unit's active alarm was acknowledged",
            labels=LABELS,
        )
        last_sample = GaugeMetricFamily(
            "laserguard_unit_last_sample_timestamp_seconds",
            "Sender time of the latest stored sample",
            labels=LABELS,
        )
        model_info = GaugeMetricFamily(
            "laserguard_unit_model_info",
            "Model version that scored the unit's latest sample",
            labels=(*LABELS, "model_version"),
        )
        top_feature = GaugeMetricFamily(
            "laserguard_unit_top_feature_weight",
            "Attribution of a feature to the unit's latest flagged sample (rank 0 contributed most)",
            labels=(*LABELS, "rank", "feature"),
        )
        setpoint = GaugeMetricFamily(
            "laserguard_unit_setpoint_amperes",
            "Drive current the LCC commands for the unit (after derating; 0 when off)",
            labels=LABELS,
        )
        state = GaugeMetricFamily(
            "laserguard_unit_state",
            "1 for the unit's current operating state (off, warming, on, derated), 0 for the others",
            labels=(*LABELS, "state"),
        )
        active_total = 0
        for doc in documents:
            labels = [str(doc.get("lcc")), str(doc.get("unit"))]
            self._add_context(setpoint, state, labels, doc)
            for channel, value in (doc.get("values") or {}).items():
                if channel not in channels:
                    name, _ = channel_metric(channel)
                    channels[channel] = GaugeMetricFamily(
                        name, f"Latest {channel} of the unit (base unit)", labels=LABELS
                    )
                channels[channel].add_metric(labels, float(value) * channel_metric(channel)[1])
            if doc.get("score_seq", -1) >= 0 and "score" in doc:
                score.add_metric(labels, float(doc["score"]))
                anomalous.add_metric(labels, 1.0 if doc.get("anomalous") else 0.0)
                model_info.add_metric([*labels, str(doc.get("model_version", ""))], 1.0)
                if doc.get("anomalous"):
                    self._add_top_features(top_feature, labels, doc)
            is_active = doc.get("alarm_state") == ALARM_ACTIVE
            active_total += is_active
            alarm_active.add_metric(labels, 1.0 if is_active else 0.0)
            alarm_acknowledged.add_metric(labels, 1.0 if is_active and doc.get("alarm_acknowledged") else 0.0)
            if doc.get("seq", -1) >= 0 and "ts_ns" in doc:
                last_sample.add_metric(labels, int(doc["ts_ns"]) / 1e9)
        yield from channels.values()
        yield from (score, anomalous, alarm_active, alarm_acknowledged, last_sample, model_info, top_feature)
        yield from (setpoint, state)
        yield GaugeMetricFamily("laserguard_alarms_active", "Units with a raised alarm", value=active_total)
        yield GaugeMetricFamily(
            "laserguard_units_reporting", "Units in the latest-state collection", value=len(documents)
        )

    @staticmethod
    def _add_context(
        setpoint: GaugeMetricFamily, state: GaugeMetricFamily, labels: list[str], doc: dict[str, Any]
    ) -> None:
        """Setpoint and state of a unit whose latest telemetry carried them (older documents do not)."""
        value = doc.get("setpoint_a")
        if isinstance(value, int | float) and value == value:  # None / NaN: unknown, no sample
            setpoint.add_metric(labels, float(value))
        current = doc.get("state")
        if current in UNIT_STATES:
            for name in UNIT_STATES:
                state.add_metric([*labels, name], 1.0 if name == current else 0.0)

    def _add_top_features(self, family: GaugeMetricFamily, labels: list[str], doc: dict[str, Any]) -> None:
        features = doc.get("top_features") or []
        weights = doc.get("top_weights") or []
        for rank, (index, weight) in enumerate(zip(features, weights, strict=False)):
            if int(index) >= 0:  # -1 marks an empty slot
                family.add_metric([*labels, str(rank), self.feature_name(int(index))], float(weight))
