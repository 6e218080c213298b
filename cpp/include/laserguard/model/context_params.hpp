#pragma once
// Parameters of the context stage of detection engine v3 (model format 2.1/2.2, docs/model-format.md,
// docs/detection.md "v3"): each monitored channel judged by its residual from the value expected
// in the unit's operating context, and the residuals judged together (PCA SPE).
//
// Per unit and row (streaming, causal; every time constant in seconds, discretised exactly as
// exp(-dt/tau), so a model trained at 1 Hz means the same at the live 10 Hz):
//   signals    g_0 = 1, g_1 = powered (state != off; 1 when the table has no state),
//              g_2 = s (setpoint_a when powered, else 0; only with uses_unit_context),
//              g_{3+i} = (clamp(x[context[i]], context_min[i], context_max[i]) - context_center[i])
//                        / context_scale[i]  (the trained range: a context value never seen in
//                        training, e.g. a supply loaded by a neighbour's fault, is not extrapolated),
//              then one first-order filter per entry of `filters`: y += (1 - e^{-dt/tau}) (h - y),
//              h the source's value at the previous row (held over the interval: exact for steps
//              at any rate); a filter starts at its input (a unit seen first is taken as settled).
//   expected   e_c = sum_t coef[t][c] * g_{term_a[t]} * g_{term_b[t]}   (the fleet model; g_0 = 1
//              makes a term linear), c over the monitored channels.
//   calibrated e'_c = a_uc + b_uc * e_c, the unit's own gain and offset, learned online from the
//              unit's powered rows the stage does not flag (time-weighted sums, forgetting with
//              calib_tau_s; b pulled towards 1 by a prior worth calib_prior_s seconds at spread
//              prior_var, so a unit seen at one operating point gets an offset only; |b - 1| <=
//              gain_limit). An off unit is judged by the fleet model alone (a = 0, b = 1).
//              When the unit's learning period ends its sums are scaled to weigh calib_anchor_s
//              seconds, and afterwards only rows with D <= calib_max_deviation * threshold teach
//              it, except unflagged rows within calib_change_s after an operating change: a residual that
//              appears with a change of operating point is the unit's own slope, one that grows
//              at a constant operating point is a fault (not learned away).
//   residual   z_c = (x_c - e'_c) / sqrt(resid_sigma_c^2 + V_uc (e_c - ebar_uc)^2), where
//              V_uc = gain_sd_c^2 * P / (W var_uc(e) + P) is what the unit's data has not yet told
//              about its gain (P = calib_prior_s * prior_var_c, W var_uc(e) the spread of e in its
//              sums, ebar_uc their mean): a unit that learned at one operating point and moves to
//              another is judged with the fleet's spread of gains until its rows there teach it
//              (format 2.2; gain_sd 0, every 2.1 file: as before, the gain taken as known).
//              Off units (no calibration) and offset-only calibration: V = 0.
//   jump       per context channel i with jump_scale_i > 0 (format 2.2): m_i the EW mean over
//              spread_tau_s of the squared difference between consecutive finite readings (raw,
//              not clamped), max(0, ln(sqrt(m_i) / jump_ref_i)) / jump_scale_i      -> `<channel>:spread`
//              (a context reading that moves faster than training's ever did: a spiking sensor;
//              the context values themselves are not judged, only how they move between samples)
//   level      |EWMA_{level_tau_s}(z_c)| / level_scale_c                  -> `<channel>:residual`
//   spread     max(0, ln(s_c / spread_ref_c)) / spread_scale_c, s_c the EW std of z_c over
//              spread_tau_s (up only: a frozen sensor is the stuck rule's)  -> `:residual_spread`
//   relation   SPE = |z - P P^T z|^2 of the PCA of healthy z (loadings P), EWMA over spe_tau_s,
//              / spe_limit; T^2 likewise / t2_limit when t2_limit > 0       -> `:relationship`
//   D = max of all of them (jumps included); decision 1 - D / threshold (the baseline section's threshold); the
//   baseline section's rules (missing, stuck) still judge the raw readings and cap it at -1.
//   Within change_hold_s after an operating change (state or setpoint changed) D is divided by
//   change_relax (1: no hold-off; bounded by change_hold_s; stated in the model card).
// The fleet forest reads the raw channels (forest_input = kRaw) or, per channel, z_c for a
// monitored channel and the raw reading otherwise (kResidual); the training matrix must be built
// the same way (BaselineStage::push with forest_input output).
#include <cstddef>
#include <cstdint>
#include <vector>

namespace laserguard {

enum class CalibrationMode : std::uint8_t { kNone = 0, kOffset = 1, kAffine = 2 };
enum class ForestInput : std::uint8_t { kRaw = 0, kResidual = 1 };

// Fixed signal indices; context channels follow from kFirstContextSignal, then the filters.
inline constexpr std::uint32_t kSignalOne = 0;
inline constexpr std::uint32_t kSignalPowered = 1;
inline constexpr std::uint32_t kSignalSetpoint = 2;
inline constexpr std::uint32_t kFirstContextSignal = 3;
inline constexpr std::uint32_t kMaxContextTerms = 4096;
inline constexpr std::uint32_t kMaxContextFilters = 256;

struct ContextFilter {
  std::uint32_t source = 0;  // a signal index below this filter's own index
  double tau_s = 1.0;        // finite, > 0
};

struct ContextParams {
  std::uint32_t n_channels = 0;        // must equal the forest's n_features
  bool uses_unit_context = true;       // the setpoint/state of the frame (or table) feed g_1, g_2
  CalibrationMode calibration = CalibrationMode::kAffine;
  ForestInput forest_input = ForestInput::kRaw;

  std::vector<std::uint32_t> context;  // channel indices, strictly increasing, < n_channels
  std::vector<double> context_center;  // per context channel, finite
  std::vector<double> context_scale;   // per context channel, finite, > 0
  std::vector<double> context_min;     // per context channel: the trained range, finite, min <= max
  std::vector<double> context_max;
  std::vector<ContextFilter> filters;  // signals 3 + n_context + i
  std::vector<std::uint32_t> term_a, term_b;  // per term: signal indices (< n_signals)

  std::vector<std::uint32_t> monitored;  // channel indices, strictly increasing, disjoint from context
  std::vector<double> coef;              // n_terms x n_monitored, row-major, finite
  std::vector<double> resid_sigma;       // per monitored channel, finite, > 0
  std::vector<double> prior_var;         // per monitored channel, finite, > 0 (fleet variance of e_c)
  std::vector<double> gain_sd;           // per monitored channel, finite, >= 0 (fleet spread of unit gains)
  std::vector<double> jump_ref;          // per context channel, finite, > 0 (healthy EW rms of its differences)
  std::vector<double> jump_scale;        // per context channel, finite, >= 0 (0: its jumps not judged)

  double calib_tau_s = 0.0;    // forgetting of the unit's calibration sums, >= 0 (0: never forgets)
  double calib_prior_s = 60.0; // weight of the gain prior b = 1, in seconds of data, >= 0
  double gain_limit = 0.25;    // |b - 1| <= gain_limit, in (0, 1]
  double max_dt_s = 10.0;      // a gap counts as at most this much data time, > 0
  double calib_anchor_s = 0.0;       // weight of the learning period's sums once it ends, >= 0 (0: as learned)
  double calib_max_deviation = 1.0;  // rows with D above this fraction of the threshold do not teach, (0, 1]
  double calib_change_s = 0.0;       // ... except within this long after an operating change, >= 0

  double level_tau_s = 0.0;    // EWMA of z before the level, >= 0 (0: this row's z)
  double spread_tau_s = 30.0;  // EW variance of z, > 0
  double spe_tau_s = 0.0;      // EWMA of SPE (and T^2), >= 0
  std::vector<double> level_scale;   // per monitored channel, finite, > 0
  std::vector<double> spread_ref;    // per monitored channel: healthy EW std of z, finite, > 0
  std::vector<double> spread_scale;  // per monitored channel, finite, > 0
  std::vector<std::uint8_t> judge_spread;  // per monitored channel 0/1

  std::uint32_t n_components = 0;    // PCA components kept, 0..n_monitored
  std::vector<double> loadings;      // n_monitored x n_components, row-major, finite
  std::vector<double> eigenvalues;   // n_components, finite, > 0 (for T^2)
  double spe_limit = 0.0;            // finite, > 0 (SPE judged) or 0 (SPE off)
  double t2_limit = 0.0;             // finite, > 0 (T^2 judged) or 0 (off)

  double change_hold_s = 0.0;  // >= 0
  double change_relax = 1.0;   // >= 1 (finite; +inf is refused: a hold-off never mutes outright)

  std::size_t n_signals() const noexcept { return kFirstContextSignal + context.size() + filters.size(); }
  std::size_t n_terms() const noexcept { return term_a.size(); }
};

// Throws std::invalid_argument naming the first field that is out of range.
void validate_context_params(const ContextParams& params);

}  // namespace laserguard
