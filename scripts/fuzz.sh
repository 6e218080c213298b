#!/usr/bin/env bash
# Bounded libFuzzer run of both wire decoders (docs/protocol.md) and the model loader
# (docs/model-format.md) under ASan + UBSan.
# Needs clang and libclang-rt-14-dev. FUZZ_SECONDS (default 30) per target.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_TARGET=${FUZZ_SECONDS:-30}
BUILD=${FUZZ_BUILD_DIR:-build-fuzz}
CC=clang CXX=clang++ cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DLASERGUARD_BUILD_PYTHON=OFF -DLASERGUARD_WITH_ZMQ=OFF -DLASERGUARD_BUILD_FUZZERS=ON
cmake --build "$BUILD" -j2 --target fuzz_telemetry_decoder fuzz_feedback_decoder fuzz_model_loader
for kind in telemetry feedback; do
  work=$(mktemp -d)
  cp cpp/fuzz/corpus/$kind/* "$work/"
  # New inputs go to a scratch corpus; the committed seeds stay untouched.
  ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    "$BUILD/cpp/fuzz/fuzz_${kind}_decoder" -max_total_time="$SECONDS_PER_TARGET" -max_len=4096 \
    -dict=cpp/fuzz/wire.dict -print_final_stats=1 "$work"
  rm -rf "$work"
done
work=$(mktemp -d)
cp cpp/fuzz/corpus/model/* "$work/"
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  "$BUILD/cpp/fuzz/fuzz_model_loader" -max_total_time="$SECONDS_PER_TARGET" -max_len=8192 \
  -print_final_stats=1 "$work"
rm -rf "$work"
