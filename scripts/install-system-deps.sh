#!/usr/bin/env bash
# Debian/Ubuntu packages laserguard needs to build (C++ core, ZMQ hardware side, C++ tests).
# Used by README's two commands and by .ci/run, so the lists cannot drift apart.
#   --with-test-tools  also what the test suite drives: clang + libclang-rt (libFuzzer),
#                      prometheus (+ promtool) and chromium (dashboard tests via Playwright)
set -euo pipefail
EXTRA=()
if [ "${1:-}" = "--with-test-tools" ]; then
  EXTRA=(clang libclang-rt-14-dev prometheus chromium)
  shift
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update
$SUDO apt-get install -y --no-install-recommends \
  build-essential cmake ninja-build pkg-config git \
  python3 python3-venv python3-dev \
  libzmq3-dev doctest-dev nlohmann-json3-dev \
  "${EXTRA[@]}" "$@"
