// libFuzzer target: decode_feedback must either return a message that re-encodes to the
// same bytes, or throw FrameError with a known reason, for any byte string.
#include <cstdint>
#include <cstring>

#include "laserguard/wire/telemetry_codec.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    const auto feedback = laserguard::decode_feedback(data, size);
    const auto again = laserguard::encode_feedback(feedback);
    if (again.size() != size || std::memcmp(again.data(), data, size) != 0) __builtin_trap();
  } catch (const laserguard::FrameError& e) {
    if (std::strcmp(e.code(), "unknown") == 0) __builtin_trap();
  }
  return 0;
}
