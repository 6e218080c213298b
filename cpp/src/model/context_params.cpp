#include "laserguard/model/context_params.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

namespace laserguard {
namespace {

[[noreturn]] void fail(const std::string& message) { throw std::invalid_argument("context stage: " + message); }

std::string num(double v) { return std::to_string(v); }

void require_size(std::size_t got, std::size_t want, const char* what) {
  if (got != want) fail("expected " + std::to_string(want) + " " + what + ", got " + std::to_string(got));
}

void require_finite(const std::vector<double>& values, const char* what) {
  for (std::size_t i = 0; i < values.size(); ++i)
    if (!std::isfinite(values[i])) fail(std::string(what) + "[" + std::to_string(i) + "] is not finite");
}

void require_positive(const std::vector<double>& values, const char* what) {
  for (std::size_t i = 0; i < values.size(); ++i)
    if (!(std::isfinite(values[i]) && values[i] > 0.0))
      fail(std::string(what) + "[" + std::to_string(i) + "] must be finite and > 0, got " + num(values[i]));
}

void require_channels(const std::vector<std::uint32_t>& channels, std::uint32_t n_channels, const char* what) {
  for (std::size_t j = 0; j < channels.size(); ++j) {
    if (channels[j] >= n_channels)
      fail(std::string(what) + " channel " + std::to_string(channels[j]) + " outside [0, " +
           std::to_string(n_channels) + ")");
    if (j > 0 && channels[j] <= channels[j - 1])
      fail(std::string(what) + " channels must be strictly increasing, got " + std::to_string(channels[j - 1]) +
           " then " + std::to_string(channels[j]));
  }
}

void require_time(double v, bool allow_zero, const char* what) {
  if (!(std::isfinite(v) && (allow_zero ? v >= 0.0 : v > 0.0)))
    fail(std::string(what) + " must be finite and " + (allow_zero ? ">= 0" : "> 0") + ", got " + num(v));
}

}  // namespace

void validate_context_params(const ContextParams& p) {
  if (p.n_channels == 0) fail("n_channels must be positive, got 0");
  if (static_cast<std::uint8_t>(p.calibration) > static_cast<std::uint8_t>(CalibrationMode::kAffine))
    fail("calibration must be 0 (none), 1 (offset) or 2 (affine), got " +
         std::to_string(static_cast<unsigned>(p.calibration)));
  if (static_cast<std::uint8_t>(p.forest_input) > static_cast<std::uint8_t>(ForestInput::kResidual))
    fail("forest_input must be 0 (raw) or 1 (residual), got " + std::to_string(static_cast<unsigned>(p.forest_input)));
  require_channels(p.context, p.n_channels, "context");
  require_size(p.context_center.size(), p.context.size(), "context centres");
  require_size(p.context_scale.size(), p.context.size(), "context scales");
  require_finite(p.context_center, "context_center");
  require_positive(p.context_scale, "context_scale");
  require_size(p.context_min.size(), p.context.size(), "context minima");
  require_size(p.context_max.size(), p.context.size(), "context maxima");
  require_finite(p.context_min, "context_min");
  require_finite(p.context_max, "context_max");
  for (std::size_t i = 0; i < p.context.size(); ++i)
    if (p.context_min[i] > p.context_max[i])
      fail("context_min[" + std::to_string(i) + "] " + num(p.context_min[i]) + " > context_max " + num(p.context_max[i]));
  if (p.filters.size() > kMaxContextFilters)
    fail("at most " + std::to_string(kMaxContextFilters) + " filters, got " + std::to_string(p.filters.size()));
  for (std::size_t i = 0; i < p.filters.size(); ++i) {
    const std::size_t own = kFirstContextSignal + p.context.size() + i;
    if (p.filters[i].source >= own)
      fail("filter " + std::to_string(i) + " source signal " + std::to_string(p.filters[i].source) +
           " must be below its own index " + std::to_string(own));
    if (!(std::isfinite(p.filters[i].tau_s) && p.filters[i].tau_s > 0.0))
      fail("filter " + std::to_string(i) + " tau_s must be finite and > 0, got " + num(p.filters[i].tau_s));
  }
  if (p.term_a.empty() || p.term_a.size() > kMaxContextTerms)
    fail("term count must be in [1, " + std::to_string(kMaxContextTerms) + "], got " + std::to_string(p.term_a.size()));
  require_size(p.term_b.size(), p.term_a.size(), "second term signals");
  for (std::size_t t = 0; t < p.term_a.size(); ++t)
    if (p.term_a[t] >= p.n_signals() || p.term_b[t] >= p.n_signals())
      fail("term " + std::to_string(t) + " uses signal " + std::to_string(std::max(p.term_a[t], p.term_b[t])) +
           " of " + std::to_string(p.n_signals()));
  if (p.monitored.empty()) fail("at least one monitored channel is needed");
  require_channels(p.monitored, p.n_channels, "monitored");
  for (const std::uint32_t m : p.monitored)
    for (const std::uint32_t c : p.context)
      if (m == c) fail("channel " + std::to_string(m) + " is both context and monitored");
  const std::size_t nm = p.monitored.size();
  require_size(p.coef.size(), p.term_a.size() * nm, "coefficients (terms x monitored)");
  require_finite(p.coef, "coef");
  require_size(p.resid_sigma.size(), nm, "residual sigmas");
  require_positive(p.resid_sigma, "resid_sigma");
  require_size(p.prior_var.size(), nm, "prior variances");
  require_positive(p.prior_var, "prior_var");
  require_size(p.gain_sd.size(), nm, "gain standard deviations");
  for (std::size_t j = 0; j < nm; ++j)
    if (!(std::isfinite(p.gain_sd[j]) && p.gain_sd[j] >= 0.0))
      fail("gain_sd[" + std::to_string(j) + "] must be finite and >= 0, got " + num(p.gain_sd[j]));
  require_size(p.jump_ref.size(), p.context.size(), "jump references");
  require_positive(p.jump_ref, "jump_ref");
  require_size(p.jump_scale.size(), p.context.size(), "jump scales");
  for (std::size_t i = 0; i < p.context.size(); ++i)
    if (!(std::isfinite(p.jump_scale[i]) && p.jump_scale[i] >= 0.0))
      fail("jump_scale[" + std::to_string(i) + "] must be finite and >= 0, got " + num(p.jump_scale[i]));
  require_time(p.calib_tau_s, true, "calib_tau_s");
  require_time(p.calib_prior_s, true, "calib_prior_s");
  if (!(std::isfinite(p.gain_limit) && p.gain_limit > 0.0 && p.gain_limit <= 1.0))
    fail("gain_limit must be in (0, 1], got " + num(p.gain_limit));
  require_time(p.max_dt_s, false, "max_dt_s");
  require_time(p.calib_anchor_s, true, "calib_anchor_s");
  require_time(p.calib_change_s, true, "calib_change_s");
  if (!(std::isfinite(p.calib_max_deviation) && p.calib_max_deviation > 0.0 && p.calib_max_deviation <= 1.0))
    fail("calib_max_deviation must be in (0, 1], got " + num(p.calib_max_deviation));
  require_time(p.level_tau_s, true, "level_tau_s");
  require_time(p.spread_tau_s, false, "spread_tau_s");
  require_time(p.spe_tau_s, true, "spe_tau_s");
  require_size(p.level_scale.size(), nm, "level scales");
  require_positive(p.level_scale, "level_scale");
  require_size(p.spread_ref.size(), nm, "spread references");
  require_positive(p.spread_ref, "spread_ref");
  require_size(p.spread_scale.size(), nm, "spread scales");
  require_positive(p.spread_scale, "spread_scale");
  require_size(p.judge_spread.size(), nm, "judge_spread flags");
  for (std::size_t j = 0; j < nm; ++j)
    if (p.judge_spread[j] > 1)
      fail("judge_spread[" + std::to_string(j) + "] must be 0 or 1, got " + std::to_string(p.judge_spread[j]));
  if (p.n_components > nm)
    fail("n_components must be in [0, " + std::to_string(nm) + "], got " + std::to_string(p.n_components));
  require_size(p.loadings.size(), nm * p.n_components, "loadings (monitored x components)");
  require_finite(p.loadings, "loadings");
  require_size(p.eigenvalues.size(), p.n_components, "eigenvalues");
  require_positive(p.eigenvalues, "eigenvalues");
  require_time(p.spe_limit, true, "spe_limit");
  require_time(p.t2_limit, true, "t2_limit");
  if (p.t2_limit > 0.0 && p.n_components == 0) fail("t2_limit > 0 needs at least one PCA component");
  require_time(p.change_hold_s, true, "change_hold_s");
  if (!(std::isfinite(p.change_relax) && p.change_relax >= 1.0))
    fail("change_relax must be finite and >= 1, got " + num(p.change_relax));
}

}  // namespace laserguard
