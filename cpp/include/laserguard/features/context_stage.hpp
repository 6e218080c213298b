#pragma once
// The context stage of detection engine v3 (parameters and equations: model/context_params.hpp,
// docs/detection.md "v3"): per unit, the value each monitored channel should read in the unit's
// operating context, the unit's own gain and offset, and the residual statistics (level,
// spread, PCA SPE / T^2) with their time constants in seconds. BaselineStage owns one per model
// and keeps a ContextUnit per unit next to its learning period and raw-reading rules.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "laserguard/model/context_params.hpp"

namespace laserguard {

// One unit's state. Plain vectors of doubles so BaselineStage can persist them as they are.
struct ContextUnit {
  // 2 x n_filters: each filter's output, then its input held since the previous row (NaN until
  // the input was finite).
  std::vector<double> filter;
  // Calibration sums per monitored channel, 7 blocks of n_monitored: weight, sum(e - e_ref),
  // sum(x - x_ref), sum((e - e_ref)^2), sum((e - e_ref)(x - x_ref)), e_ref, x_ref.
  std::vector<double> calib;
  // Residual statistics, 4 blocks of n_monitored: EWMA of z, EW mean and EW variance of z, EWMA
  // of each channel's SPE contribution (NaN until the channel's first finite z).
  std::vector<double> stats;
  // started, last setpoint, last state, time of the last operating change, EWMA of T^2, time
  // of the last flag, flagged at the last change (0/1).
  std::vector<double> scalars;
  // 2 x n_context: each context channel's last finite reading, EW mean of squared differences.
  std::vector<double> jump;
};

// What one row computed (scratch reused across rows; sizes fixed by the params).
struct ContextRow {
  std::vector<double> signal;        // n_signals
  std::vector<double> product;       // n_terms
  std::vector<double> fleet;         // n_monitored: the fleet model's expectation e
  std::vector<double> expected;      // n_monitored: calibrated expectation a + b e
  std::vector<double> z;             // n_monitored: standardised residual (NaN: not computable)
  std::vector<double> level;         // n_monitored: |EWMA z| / level_scale
  std::vector<double> spread;        // n_monitored: max(0, ln(s / spread_ref)) / spread_scale (0: not judged)
  std::vector<double> spread_std;    // n_monitored: s, the EW std of z
  std::vector<double> relation;      // n_monitored: share of the relationship statistic, in limits
  std::vector<double> projected;     // n_components scratch
  std::vector<double> jump;          // n_context: max(0, ln(rms / jump_ref)) / jump_scale (0: not judged)
  double spe = 0.0;                  // smoothed SPE (NaN: not computable)
  double t2 = 0.0;                   // smoothed T^2 (NaN: not computable or no components)
  double deviation = 0.0;            // D of this row (after any hold-off relaxation)
  bool in_hold = false;
  bool after_change = false;         // within calib_change_s after an operating change
  bool powered = true;               // state != off (always true without unit context)
};

class ContextStage {
 public:
  explicit ContextStage(ContextParams params);  // validates (std::invalid_argument naming the field)

  const ContextParams& params() const noexcept { return params_; }
  std::size_t n_monitored() const noexcept { return params_.monitored.size(); }
  // Values per row of the training output: z, |EWMA z|, EW std of z (n_monitored each), SPE, T^2,
  // then each context channel's EW rms of differences.
  std::size_t raw_width() const noexcept { return 3 * n_monitored() + 2 + params_.context.size(); }

  void init_unit(ContextUnit& u) const;
  void init_row(ContextRow& row) const;
  // Sizes of a unit's state vectors, to check a saved state before using it.
  bool shaped(const ContextUnit& u) const noexcept;

  // One row of a unit: updates its filters and residual statistics and fills `row`. `dt` is
  // the time since the unit's previous row (0 for its first), `state` the UnitState wire code,
  // `setpoint_a` NaN when unknown.
  void evaluate(ContextUnit& u, const float* x, float setpoint_a, std::uint8_t state, double t, double dt,
                ContextRow& row) const;
  // The unit's calibration learns from this row (call for rows the stage did not flag).
  void learn(ContextUnit& u, const float* x, const ContextRow& row, double dt) const;
  // The stage flagged the unit's row at time t (its gain is then taken as known for a while).
  void flagged(ContextUnit& u, double t) const;
  // The unit's learning period ended: its calibration sums weigh calib_anchor_s from now on,
  // and its residual statistics start afresh.
  void anchor(ContextUnit& u) const;
  // What the fleet forest reads for this row (ForestInput::kResidual): z for monitored channels,
  // the raw reading otherwise; n_channels floats.
  void forest_input(const float* x, const ContextRow& row, float* out) const;
  void raw_output(const ContextRow& row, const ContextUnit& u, double* out) const;

 private:
  // The unit's calibration of monitored channel j: e' = a + b e; a residual at e has the
  // further variance gain_var (e - e_mean)^2 from what its sums leave unknown of b.
  struct Calibration {
    double a = 0.0, b = 1.0, gain_var = 0.0, e_mean = 0.0;
  };
  Calibration calibration(const ContextUnit& u, std::size_t j) const;
  ContextParams params_;
  std::vector<std::int32_t> monitored_slot_;  // per channel: index among the monitored, or -1
  // The step weights of the last dt seen (level, spread, SPE, each filter): a scratch cache,
  // so a stage is used by one thread at a time (as its BaselineStage is).
  mutable double weights_dt_ = -1.0;
  mutable std::vector<double> weights_;
};

}  // namespace laserguard
