#!/usr/bin/env bash
# Sets up a virtualenv, builds and installs laserguard, lints and runs the test suite.
# This is README's test command; .ci/run calls it after installing system packages.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${LASERGUARD_VENV:-.venv}
python3 -m venv "$VENV"
"$VENV/bin/pip" install -q --upgrade pip
"$VENV/bin/pip" install -q ".[test]"
"$VENV/bin/ruff" check python tests benchmarks
"$VENV/bin/ruff" format --check python tests benchmarks
"$VENV/bin/mypy"
"$VENV/bin/pytest" -q tests "$@"
