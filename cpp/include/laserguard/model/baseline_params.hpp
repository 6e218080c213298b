#pragma once
// Parameters of the per-unit baseline stage, as a model file v2 carries them next to the
// forest (docs/model-format.md). The stage itself is features/baseline_stage.hpp; these are
// only the numbers a training run fitted, validated like every other field of the file.
#include <cstdint>
#include <vector>

namespace laserguard {

struct BaselineParams {
  std::uint32_t n_channels = 0;        // input columns, the forest's n_features
  std::uint32_t baseline_samples = 0;  // learn from a unit's first N rows ...
  double baseline_s = 0.0;             // ... or its first S seconds (exactly one is > 0)
  std::uint32_t window = 30;           // rolling variability window, rows
  bool missing_flags = true;           // a non-finite reading in the window flags the unit
  double mean_tau_s = 0.0;             // re-baseline: the mean follows unflagged rows (EWMA); 0 = frozen
  double threshold = 1.0;              // deviation D > threshold flags the unit
  double fleet_cut = 0.0;              // the forest flags where decision_function < fleet_cut
  std::vector<double> sigma_floor;     // per channel, absolute, > 0
  // Per channel: this many identical consecutive finite readings flag a stuck sensor
  // (0 = rule off for the channel, e.g. a coarsely quantised one; else >= 2).
  std::vector<std::uint32_t> stuck_run;
  std::vector<std::uint32_t> scored;   // channels judged on level and spread, strictly increasing
  std::vector<double> level_scale;     // per scored channel: |z| is divided by it
  std::vector<double> spread_scale;    // per scored channel: |ln s| is divided by it
  // Per scored channel, 1: judged on spread too; 0: level only (a supply rail, whose
  // variability a neighbour's fault on the same supply also moves).
  std::vector<std::uint8_t> judge_spread;
  // A unit is flagged once its score has been below 0 for this many consecutive rows (>= 1):
  // a single noisy row never flags, a real fault waits one row longer.
  std::uint32_t confirm_rows = 1;
};

inline constexpr std::uint32_t kMaxBaselineWindow = 100000;

// Throws std::invalid_argument naming the first field that is out of range.
void validate_baseline_params(const BaselineParams& params);

}  // namespace laserguard
