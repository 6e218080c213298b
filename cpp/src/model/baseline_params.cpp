#include "laserguard/model/baseline_params.hpp"

#include <cmath>
#include <stdexcept>
#include <string>

namespace laserguard {
namespace {

[[noreturn]] void fail(const std::string& message) { throw std::invalid_argument("baseline stage: " + message); }

void require_positive(const std::vector<double>& values, const char* what) {
  for (std::size_t i = 0; i < values.size(); ++i)
    if (!(std::isfinite(values[i]) && values[i] > 0.0))
      fail(std::string(what) + "[" + std::to_string(i) + "] must be finite and > 0, got " + std::to_string(values[i]));
}

}  // namespace

void validate_baseline_params(const BaselineParams& p) {
  if (p.n_channels == 0) fail("n_channels must be positive, got 0");
  const bool by_count = p.baseline_samples > 0;
  const bool by_time = p.baseline_s != 0.0;
  if (by_count == by_time)
    fail("exactly one of baseline_samples (" + std::to_string(p.baseline_samples) + ") and baseline_s (" +
         std::to_string(p.baseline_s) + ") must be set");
  if (by_time && !(std::isfinite(p.baseline_s) && p.baseline_s > 0.0))
    fail("baseline_s must be finite and > 0, got " + std::to_string(p.baseline_s));
  if (p.window < 2 || p.window > kMaxBaselineWindow)
    fail("window must be in [2, " + std::to_string(kMaxBaselineWindow) + "], got " + std::to_string(p.window));
  if (!(std::isfinite(p.mean_tau_s) && p.mean_tau_s >= 0.0))
    fail("mean_tau_s must be finite and >= 0, got " + std::to_string(p.mean_tau_s));
  if (!(std::isfinite(p.threshold) && p.threshold > 0.0))
    fail("threshold must be finite and > 0, got " + std::to_string(p.threshold));
  if (!std::isfinite(p.fleet_cut)) fail("fleet_cut must be finite, got " + std::to_string(p.fleet_cut));
  if (p.sigma_floor.size() != p.n_channels)
    fail("expected " + std::to_string(p.n_channels) + " sigma floors, got " + std::to_string(p.sigma_floor.size()));
  require_positive(p.sigma_floor, "sigma_floor");
  if (p.stuck_run.size() != p.n_channels)
    fail("expected " + std::to_string(p.n_channels) + " stuck-run lengths, got " + std::to_string(p.stuck_run.size()));
  for (std::size_t c = 0; c < p.stuck_run.size(); ++c)
    if (p.stuck_run[c] == 1)
      fail("stuck_run[" + std::to_string(c) + "] must be 0 (off) or >= 2, got 1");
  if (p.scored.empty() || p.scored.size() > p.n_channels)
    fail("scored channel count must be in [1, " + std::to_string(p.n_channels) + "], got " +
         std::to_string(p.scored.size()));
  for (std::size_t j = 0; j < p.scored.size(); ++j) {
    if (p.scored[j] >= p.n_channels)
      fail("scored channel " + std::to_string(p.scored[j]) + " outside [0, " + std::to_string(p.n_channels) + ")");
    if (j > 0 && p.scored[j] <= p.scored[j - 1])
      fail("scored channels must be strictly increasing, got " + std::to_string(p.scored[j - 1]) + " then " +
           std::to_string(p.scored[j]));
  }
  if (p.level_scale.size() != p.scored.size() || p.spread_scale.size() != p.scored.size())
    fail("expected " + std::to_string(p.scored.size()) + " level and spread scales, got " +
         std::to_string(p.level_scale.size()) + " and " + std::to_string(p.spread_scale.size()));
  if (p.judge_spread.size() != p.scored.size())
    fail("expected " + std::to_string(p.scored.size()) + " judge_spread flags, got " + std::to_string(p.judge_spread.size()));
  for (std::size_t j = 0; j < p.judge_spread.size(); ++j)
    if (p.judge_spread[j] > 1)
      fail("judge_spread[" + std::to_string(j) + "] must be 0 or 1, got " + std::to_string(p.judge_spread[j]));
  if (p.confirm_rows < 1 || p.confirm_rows > 1000)
    fail("confirm_rows must be in [1, 1000], got " + std::to_string(p.confirm_rows));
  require_positive(p.level_scale, "level_scale");
  require_positive(p.spread_scale, "spread_scale");
}

}  // namespace laserguard
