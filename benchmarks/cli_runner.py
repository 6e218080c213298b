"""Runs the laserguard CLI as a user would, for the benchmarks that go through it (tep, foreign_table)."""

from __future__ import annotations

import subprocess
import sys


def laserguard(*args: str) -> str:
    """`python -m laserguard.cli ARGS`; its stdout, or exit naming the command and its stderr."""
    result = subprocess.run(
        [sys.executable, "-m", "laserguard.cli", *args], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise SystemExit(f"laserguard {' '.join(args)} failed:\n{result.stderr}")
    return result.stdout.strip()
