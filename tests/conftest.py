"""Prints the parity numbers after the run; in CI, refuses skips caused by a missing tool.

With LASERGUARD_REQUIRE_TEST_TOOLS=1 (set by .ci/run) a test skipped because chromium,
playwright, prometheus/promtool or the SecantusDB server is missing fails the run: CI installs
all of them, so such a skip means an install step is broken. Skips for optional extras
(mlflow) and for reference data outside the repository stay skips.
"""

from __future__ import annotations

import os
import tempfile
from typing import Any

import pytest

from detect_support import detector, lcc  # noqa: F401  (fixtures: a detect process, a fake LCC)
from parity_support import NOTES, STATS


def pytest_configure(config: pytest.Config) -> None:
    # Module- and session-scoped fixtures start processes before own_state_dir runs: they share
    # one folder per run, never the user's.
    os.environ["XDG_STATE_HOME"] = tempfile.mkdtemp(prefix="laserguard-test-state-")


@pytest.fixture(autouse=True)
def own_state_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test's processes keep their state (detect's unit baselines) in a folder of their own:
    not in the user's ~/.local/state, where one test's baselines were restored by the next."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path_factory.mktemp("state")))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    lines = STATS.lines() + NOTES
    if lines:
        terminalreporter.section("laserguard parity vs sklearn")
        for line in lines:
            terminalreporter.write_line(line)


# Substrings of the skip reasons that name a tool CI installs.
_REQUIRED_TOOL_REASONS = (
    "chromium",
    "playwright",
    "prometheus",
    "promtool",
    "SecantusDB",
    "the mlflow extra is not installed",
)
_missing_tools: list[str] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped and os.environ.get("LASERGUARD_REQUIRE_TEST_TOOLS") == "1":
        reason = str(report.longrepr[-1]) if isinstance(report.longrepr, tuple) else str(report.longrepr)
        if any(tool in reason for tool in _REQUIRED_TOOL_REASONS):
            _missing_tools.append(f"{report.nodeid}: {reason}")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _missing_tools:
        print("\nskipped for a missing test tool (LASERGUARD_REQUIRE_TEST_TOOLS=1):")
        for line in _missing_tools:
            print(f"  {line}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
