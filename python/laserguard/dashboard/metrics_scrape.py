"""Reading another laserguard process's Prometheus endpoint (used by `demo` for progress)."""

from __future__ import annotations

import urllib.error
import urllib.request

from prometheus_client.parser import text_string_to_metric_families


def scrape_totals(url: str, timeout_s: float = 1.0) -> dict[str, float] | None:
    """Sample name -> value summed over labels; None if the endpoint does not answer."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            text = response.read().decode()
    except (urllib.error.URLError, OSError):
        return None
    totals: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            totals[sample.name] = totals.get(sample.name, 0.0) + float(sample.value)
    return totals
