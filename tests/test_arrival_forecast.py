"""ArrivalForecast: when detect warms the model up for each LCC's next frame."""

from __future__ import annotations

import pytest

from laserguard.live.arrival_forecast import ArrivalForecast


def test_next_frame_is_due_one_median_interval_after_the_last() -> None:
    forecast = ArrivalForecast(lead_s=0.002, min_gap_s=0.005)
    for t in (0.0, 0.1, 0.2):
        forecast.observe(1, t)
    assert forecast.next_warm_up() is None  # two intervals are not a cadence yet
    forecast.observe(1, 0.35)  # one late frame does not move the median (0.1)
    pending = forecast.next_warm_up()
    assert pending is not None
    assert pending[0] == 1
    assert pending[1] == pytest.approx(0.35 + 0.1 - 0.002)


def test_one_warm_up_per_frame_and_the_earliest_lcc_first() -> None:
    forecast = ArrivalForecast()
    for t in (0.0, 0.1, 0.2, 0.3):
        forecast.observe(1, t)
        forecast.observe(2, t + 0.05)
    assert forecast.next_warm_up() == (1, pytest.approx(0.398))
    forecast.warmed(1)
    assert forecast.next_warm_up() == (2, pytest.approx(0.448))
    forecast.warmed(2)
    assert forecast.next_warm_up() is None  # both done until their next frame arrives
    forecast.observe(1, 0.4)
    assert forecast.next_warm_up() == (1, pytest.approx(0.498))


def test_fast_cadences_get_no_warm_up() -> None:
    forecast = ArrivalForecast(lead_s=0.002, min_gap_s=0.005)
    for i in range(10):
        forecast.observe(1, i * 0.001)  # 1 kHz: the caches never go cold
    assert forecast.next_warm_up() is None
    for i in range(10):
        forecast.observe(2, i * 0.1)  # 10 Hz next to it: only that one is warmed up
    pending = forecast.next_warm_up()
    assert pending is not None and pending[0] == 2


def test_lead_must_be_shorter_than_the_gap_it_targets() -> None:
    with pytest.raises(ValueError, match=r"lead_s=0\.01, min_gap_s=0\.005"):
        ArrivalForecast(lead_s=0.01, min_gap_s=0.005)
