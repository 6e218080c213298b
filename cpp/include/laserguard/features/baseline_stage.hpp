#pragma once
// The per-unit baseline stage of detection engine v2: every laser unit judged against its
// own baseline, learned from its first rows and then frozen (docs/detection.md).
//
// Per unit and channel c, from the rows pushed so far (streaming and causal, so training,
// `score` over tables and the live detector run the same code):
//   learning   the unit's first baseline_samples rows (or baseline_s seconds): Welford mean
//              mu_c and population std sigma_c of its finite readings; sigma_c floored.
//   level      |z_c| / level_scale_j,  z_c = (x_c - mu_c) / sigma_c
//   spread     |ln max(s_c, 1e-3)| / spread_scale_j,  s_c = sample std of the finite readings
//              among the last `window` rows / sigma_c (stuck sensor -> 0, oscillation -> up)
//   missing    any non-finite reading of any channel in the window (a sensor fault);
//   stuck      stuck_run_c identical consecutive finite readings of channel c (a frozen sensor;
//              a noisy healthy channel never repeats a float exactly that often).
// The two rules are faults by definition rather than by degree: either caps the decision at -1.
// D = max of level and spread over the scored channels; the stage's decision is
// 1 - D / threshold (sklearn's convention: < 0 flags), and at most -1 when a rule fires.
// With mean_tau_s > 0, mu_c follows the unit's unflagged finite readings with an EWMA of
// that time constant (slow ageing is not a fault; a flagged unit's baseline never moves).
//
// With ContextParams (detection engine v3, model format 2.1) the raw level and spread are not
// computed: the context stage (context_stage.hpp) judges each monitored channel's residual from
// its expected value in the unit's operating context and the residuals together; the learning
// period, the rules on raw readings, the threshold and the confirmation stay as above.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "laserguard/features/context_stage.hpp"
#include "laserguard/model/baseline_params.hpp"
#include "laserguard/model/context_params.hpp"

namespace laserguard {

// Explanation code of a baseline deviation: channel * kDeviationKinds + kind. Level and spread
// are v2's (raw readings against the unit's baseline); residual, residual spread and
// relationship are v3's context stage; missing and stuck are the rules of both.
enum class DeviationKind : std::uint8_t {
  kLevel = 0,
  kSpread = 1,
  kMissing = 2,
  kStuck = 3,
  kResidual = 4,
  kResidualSpread = 5,
  kRelationship = 6,
};
inline constexpr std::uint32_t kDeviationKinds = 7;
inline constexpr double kMinSpreadRatio = 1e-3;

enum class UnitPhase : std::uint8_t { kNew = 0, kLearning = 1, kReady = 2 };

struct UnitBaselineInfo {
  UnitPhase phase = UnitPhase::kNew;
  std::uint64_t rows_learned = 0;  // rows that went into the baseline
  double first_time_s = 0.0;       // first row of the unit (learning started)
  double ready_time_s = 0.0;       // when the baseline froze (0 while learning)
  double last_time_s = 0.0;
  std::vector<double> mu, sigma;   // NaN while learning, or for a channel never finite
};

// Per-row outputs of BaselineStage::push (arrays of n_rows, or n_rows * top_k).
struct BaselineOutputs {
  double* decision;        // 1 - D / threshold; NaN while the unit is learning
  std::uint8_t* learning;  // 1 while the unit is learning its baseline
  std::int16_t* top_code;  // top_k explanation codes of a flagged row, -1 otherwise
  float* top_weight;       // in thresholds; missing: 1 + missing fraction; stuck: run / stuck_run
  std::size_t top_k;
  // Optional (nullptr: not computed): per row |z_j| then |ln s_j| of every scored channel,
  // before scaling (2 * n_scored values; NaN while learning or not computable). Training
  // fits level_scale / spread_scale and the threshold on these.
  double* raw_deviation = nullptr;
  // Optional, context stage only: per row ContextStage::raw_width() values (z, |EWMA z|, EW std
  // of z per monitored channel, SPE, T^2; NaN while learning), for fitting the v3 parameters.
  double* context_raw = nullptr;
  // Optional, context stage only: per row n_channels floats, what the fleet forest reads when
  // the model's forest_input is kResidual (ContextStage::forest_input), also while learning.
  float* forest_input = nullptr;
};

// Per-row operating context (rows long each; nullptr: setpoint unknown (NaN) / every unit on).
struct UnitContext {
  const float* setpoint_a = nullptr;
  const std::uint8_t* state = nullptr;  // UnitState wire codes
};

class BaselineStage {
 public:
  // Throws std::invalid_argument for invalid params (naming the field) or zero units.
  BaselineStage(BaselineParams params, std::size_t n_units, std::optional<ContextParams> context = std::nullopt);

  const BaselineParams& params() const noexcept { return params_; }
  std::size_t n_units() const noexcept { return units_.size(); }
  std::size_t n_channels() const noexcept { return params_.n_channels; }
  const ContextStage* context() const noexcept { return context_ ? &*context_ : nullptr; }

  // Rows in processing order: unit[i] in [0, n_units), time_s[i] (a row older than its
  // unit's last row counts as no time elapsed), values row-major n_rows * n_channels.
  // Throws std::invalid_argument for a unit index out of range (before touching any state).
  void push(std::size_t n_rows, const std::uint32_t* unit, const double* time_s, const float* values,
            const BaselineOutputs& out);
  void push(std::size_t n_rows, const std::uint32_t* unit, const double* time_s, const float* values,
            const UnitContext& context, const BaselineOutputs& out);

  UnitBaselineInfo unit_info(std::size_t unit) const;
  // Forget a unit (after maintenance or replacement): it learns a new baseline.
  void reset_unit(std::size_t unit);

  // Every unit's state (baseline, window, EWMA; v3: filters, calibration, residual statistics),
  // versioned and CRC-checked (version 1 without, 3 with a context stage; 2 is still read);
  // load_state refuses
  // data for other channel counts, windows, unit counts or context shapes, naming the mismatch.
  std::vector<std::uint8_t> save_state() const;
  void load_state(const std::uint8_t* data, std::size_t size);
  void save_state_file(const std::string& path) const;  // atomic (temp file + rename)
  void load_state_file(const std::string& path);

  // (n_units, n_channels, window) a saved state was written for, after checking its magic,
  // version and CRC; std::invalid_argument naming the problem otherwise.
  struct StateShape {
    std::uint32_t n_units, n_channels, window;
    std::uint32_t version = 1;
    std::uint32_t n_filters = 0, n_monitored = 0;  // versions 2 and 3 (context stage) only
    std::uint32_t n_context = 0;                   // version 3 only
  };
  static StateShape state_shape(const std::uint8_t* data, std::size_t size);

 private:
  struct UnitState {
    UnitPhase phase = UnitPhase::kNew;
    double first_time = 0.0, ready_time = 0.0, last_time = 0.0;
    std::uint64_t learned = 0;
    std::uint64_t pushes = 0;
    std::vector<double> count, mean, m2;  // Welford while learning
    std::vector<double> mu, sigma;
    std::vector<double> ring;             // window x channels, NaN where not finite / empty
    std::vector<double> ref;              // per channel shift of the running sums
    std::vector<double> sum1, sum2;       // sums of (x - ref) and (x - ref)^2 over the window
    std::vector<std::uint32_t> finite;    // finite readings per channel in the window
    std::vector<double> last;             // previous reading per channel (NaN if none / not finite)
    std::vector<std::uint32_t> run;       // identical consecutive finite readings ending now
    std::uint32_t next = 0, filled = 0;
    ContextUnit ctx;                      // v3 only
  };
  void init_unit(UnitState& u) const;
  void freeze(UnitState& u) const;
  void update_window(UnitState& u, const float* x) const;
  void recompute_sums(UnitState& u) const;
  static double level_of(const UnitState& u, std::size_t c, float reading);
  static double spread_of(const UnitState& u, std::size_t c);
  void score_row(UnitState& u, const float* x, double dt, std::size_t row, const BaselineOutputs& out);

  BaselineParams params_;
  std::optional<ContextStage> context_;
  ContextRow context_row_;  // scratch
  std::vector<UnitState> units_;
};

}  // namespace laserguard
