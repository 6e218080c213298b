#!/usr/bin/env bash
# README's test command: creates a virtualenv, builds and installs laserguard with its test
# extras, lints (ruff, mypy, import-linter layers) and runs the test suite. System packages: scripts/install-system-deps.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${LASERGUARD_VENV:-.venv}
python3 -m venv "$VENV"
"$VENV/bin/pip" install -q --upgrade pip
"$VENV/bin/pip" install -q ".[test,embedded]"
"$VENV/bin/ruff" check python tests benchmarks
"$VENV/bin/ruff" format --check python tests benchmarks
"$VENV/bin/mypy"
"$VENV/bin/lint-imports"  # the layer contracts in pyproject.toml
"$VENV/bin/pytest" -q tests "$@"
