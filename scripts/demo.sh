#!/usr/bin/env bash
# README's first command: installs system packages, builds laserguard into .venv with the
# embedded MongoDB-compatible server, and runs the whole loop (`laserguard demo`).
# Extra arguments go to `laserguard demo` (e.g. --duration-s 60).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-system-deps.sh
VENV=${LASERGUARD_VENV:-.venv}
python3 -m venv "$VENV"
"$VENV/bin/pip" install -q --upgrade pip
"$VENV/bin/pip" install -q ".[embedded]"
export PATH="$PWD/$VENV/bin:$PATH"
exec laserguard demo "$@"
