"""Prints the parity numbers (bitwise-identical fractions, max |delta|) after the test run."""

from __future__ import annotations

from typing import Any

from parity_support import NOTES, STATS


def pytest_terminal_summary(terminalreporter: Any) -> None:
    lines = STATS.lines() + NOTES
    if lines:
        terminalreporter.section("laserguard parity vs sklearn")
        for line in lines:
            terminalreporter.write_line(line)
