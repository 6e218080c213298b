// libFuzzer target: the model loader must either accept a file, whose forest and baseline
// stage then build and score without reading out of bounds, or throw ModelFormatError,
// for any byte string. An accepted x.0 file re-serialises to the same bytes.
#include <cstdint>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <vector>

#include "laserguard/features/baseline_stage.hpp"
#include "laserguard/model/forest_model.hpp"
#include "laserguard/model/model_format.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  laserguard::ForestSpec spec;
  try {
    spec = laserguard::parse_forest(data, size);
  } catch (const laserguard::ModelFormatError&) {
    return 0;
  }
  std::uint16_t minor = 0;
  std::memcpy(&minor, data + 10, sizeof(minor));
  if (minor == 0) {
    const auto again = laserguard::serialize_forest(spec);
    if (again.size() != size || std::memcmp(again.data(), data, size) != 0) __builtin_trap();  // not canonical
  }
  if (spec.n_features > 64 || spec.trees.size() > 64) return 0;  // keep each input fast
  const laserguard::ForestModel model(spec);
  std::vector<float> row(2 * spec.n_features, 0.5f);
  row[0] = std::numeric_limits<float>::quiet_NaN();
  std::vector<double> out(2);
  model.path_length_sums(row.data(), 2, out.data());
  if (spec.baseline) {
    // A validated stage must accept any rows, finite or not.
    laserguard::BaselineStage stage(*spec.baseline, 2);
    const std::uint32_t units[] = {0, 1};
    const double times[] = {0.0, 1.0};
    std::vector<double> decision(2);
    std::vector<std::uint8_t> learning(2);
    std::vector<std::int16_t> codes(2 * 3);
    std::vector<float> weights(2 * 3);
    const laserguard::BaselineOutputs outs{decision.data(), learning.data(), codes.data(), weights.data(), 3};
    for (int i = 0; i < 64; ++i) stage.push(2, units, times, row.data(), outs);
  }
  return 0;
}
