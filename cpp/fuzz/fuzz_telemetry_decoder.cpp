// libFuzzer target: decode_telemetry must either return a view whose values, setpoints and
// states lie inside the input and re-encode to the same bytes, or throw FrameError with a
// known reason, for any byte string.
#include <cstdint>
#include <cstring>
#include <vector>

#include "laserguard/wire/telemetry_codec.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    const auto view = laserguard::decode_telemetry(data, size);
    std::vector<float> values(view.value_count());
    view.copy_values(values.data());  // ASan flags any read past the input
    std::vector<float> setpoints(view.header.n_units);
    std::vector<std::uint8_t> states(view.header.n_units);
    view.copy_setpoints(setpoints.data());
    view.copy_states(states.data());
    for (const auto s : states)
      if (s >= laserguard::kUnitStateCount) __builtin_trap();  // the decoder let a bad state through
    const auto again = laserguard::encode_telemetry(view.header, values.data(), setpoints.data(), states.data());
    if (again.size() != size || std::memcmp(again.data(), data, size) != 0) __builtin_trap();  // not canonical
  } catch (const laserguard::FrameError& e) {
    if (std::strcmp(e.code(), "unknown") == 0) __builtin_trap();
  }
  return 0;
}
