#pragma once
// Per-unit baseline features: each laser unit judged against its *own* commissioning baseline
// (issue 5's detection-quality finding: the spread between healthy units is wider than a
// moderate fault). Streaming and causal, so training (a time-sorted table pushed frame by
// frame) and live scoring run the same code.
//
// Per unit and channel c, from the frames pushed so far:
//   mu_c, sigma_c  mean and population std of the unit's finite readings during its first
//                  baseline_s seconds (from its first frame), then frozen; sigma floored;
//   z_c            (x_c - mu_c) / sigma_c                           (NaN until the baseline is frozen)
//   s_c            sample std (n-1) of the finite readings among the last `window` frames / sigma_c
//                  (NaN with fewer than 2 finite readings, or until the baseline is frozen);
//   nan_frac       fraction of the last min(window, frames seen) frames with any non-finite channel.
// Output row per unit: z_0..z_{C-1}, s_0..s_{C-1}, nan_frac  (2C + 1 values).
#include <cstddef>
#include <cstdint>
#include <vector>

namespace laserguard {

struct UnitBaselineConfig {
  double baseline_s = 600.0;
  std::uint32_t window = 30;
  double sigma_floor = 1e-6;
};

class UnitBaselineFeatures {
 public:
  // Throws std::invalid_argument naming the value for zero units/channels, window < 2,
  // baseline_s not positive and finite, or sigma_floor not positive and finite.
  UnitBaselineFeatures(std::size_t n_units, std::size_t n_channels, UnitBaselineConfig config = {});

  std::size_t n_units() const { return n_units_; }
  std::size_t n_channels() const { return n_channels_; }
  std::size_t n_features() const { return 2 * n_channels_ + 1; }
  const UnitBaselineConfig& config() const { return config_; }
  bool baseline_frozen(std::size_t unit) const { return units_.at(unit).frozen; }

  // One frame: values[n_units * n_channels] (unit-major), out[n_units * n_features()].
  // time_s must not go backwards (std::invalid_argument naming both times otherwise).
  void push(double time_s, const float* values, double* out);

 private:
  struct UnitState {
    bool started = false;
    bool frozen = false;
    double t0 = 0.0;
    std::vector<double> count, mean, m2;  // Welford per channel, over the baseline window
    std::vector<double> mu, sigma;
    std::vector<double> ring;             // window x channels, NaN where not finite / not yet filled
    std::vector<std::uint8_t> ring_nan;   // per frame slot: any non-finite channel
    std::size_t next = 0;
    std::size_t filled = 0;
  };
  void freeze(UnitState& u) const;

  std::size_t n_units_;
  std::size_t n_channels_;
  UnitBaselineConfig config_;
  std::vector<UnitState> units_;
  double last_time_s_;
};

}  // namespace laserguard
