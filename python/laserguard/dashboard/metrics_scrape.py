"""Reading another laserguard process's Prometheus endpoint (`demo` progress, the dashboard)."""

from __future__ import annotations

import urllib.error
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

Sample = tuple[str, dict[str, str], float]


def scrape_samples(url: str, timeout_s: float = 1.0) -> list[Sample] | None:
    """Every sample as (name, labels, value); None if the endpoint does not answer."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            text = response.read().decode()
    except (urllib.error.URLError, OSError):
        return None
    return [
        (s.name, dict(s.labels), float(s.value))
        for family in text_string_to_metric_families(text)
        for s in family.samples
    ]


def totals_of(samples: list[Sample]) -> dict[str, float]:
    """Sample name -> value summed over labels."""
    totals: dict[str, float] = {}
    for name, _, value in samples:
        totals[name] = totals.get(name, 0.0) + value
    return totals


def scrape_totals(url: str, timeout_s: float = 1.0) -> dict[str, float] | None:
    """Sample name -> value summed over labels; None if the endpoint does not answer."""
    samples = scrape_samples(url, timeout_s)
    return None if samples is None else totals_of(samples)
