#include "laserguard/features/unit_baseline_features.hpp"

#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

namespace laserguard {

namespace {
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
}

UnitBaselineFeatures::UnitBaselineFeatures(std::size_t n_units, std::size_t n_channels, UnitBaselineConfig config)
    : n_units_(n_units), n_channels_(n_channels), config_(config), last_time_s_(-std::numeric_limits<double>::infinity()) {
  if (n_units == 0) throw std::invalid_argument("unit baseline features: n_units must be positive, got 0");
  if (n_channels == 0) throw std::invalid_argument("unit baseline features: n_channels must be positive, got 0");
  if (config.window < 2)
    throw std::invalid_argument("unit baseline features: window must be at least 2, got " +
                                std::to_string(config.window));
  if (!(std::isfinite(config.baseline_s) && config.baseline_s > 0.0))
    throw std::invalid_argument("unit baseline features: baseline_s must be positive and finite, got " +
                                std::to_string(config.baseline_s));
  if (!(std::isfinite(config.sigma_floor) && config.sigma_floor > 0.0))
    throw std::invalid_argument("unit baseline features: sigma_floor must be positive and finite, got " +
                                std::to_string(config.sigma_floor));
  units_.resize(n_units);
  for (auto& u : units_) {
    u.count.assign(n_channels, 0.0);
    u.mean.assign(n_channels, 0.0);
    u.m2.assign(n_channels, 0.0);
    u.mu.assign(n_channels, kNaN);
    u.sigma.assign(n_channels, kNaN);
    u.ring.assign(static_cast<std::size_t>(config.window) * n_channels, kNaN);
    u.ring_nan.assign(config.window, 0);
  }
}

void UnitBaselineFeatures::freeze(UnitState& u) const {
  for (std::size_t c = 0; c < n_channels_; ++c) {
    if (u.count[c] > 0.0) {
      u.mu[c] = u.mean[c];
      const double sd = std::sqrt(u.m2[c] / u.count[c]);
      u.sigma[c] = sd > config_.sigma_floor ? sd : config_.sigma_floor;
    }  // a channel with no finite baseline reading keeps NaN: its z and s stay NaN
  }
  u.frozen = true;
}

void UnitBaselineFeatures::push(double time_s, const float* values, double* out) {
  if (!(time_s >= last_time_s_))
    throw std::invalid_argument("unit baseline features: time " + std::to_string(time_s) +
                                " s is before the previous frame's " + std::to_string(last_time_s_) + " s");
  last_time_s_ = time_s;
  const std::size_t window = config_.window;
  const std::size_t n_out = n_features();
  for (std::size_t i = 0; i < n_units_; ++i) {
    UnitState& u = units_[i];
    const float* x = values + i * n_channels_;
    double* row = out + i * n_out;
    if (!u.started) {
      u.started = true;
      u.t0 = time_s;
    }
    if (!u.frozen && time_s - u.t0 >= config_.baseline_s) freeze(u);

    // Ring slot for this frame; readings stored as double (exact for float32).
    bool any_bad = false;
    double* slot = u.ring.data() + u.next * n_channels_;
    for (std::size_t c = 0; c < n_channels_; ++c) {
      const double v = static_cast<double>(x[c]);
      const bool finite = std::isfinite(v);
      any_bad = any_bad || !finite;
      slot[c] = finite ? v : kNaN;
      if (finite && !u.frozen) {  // Welford update of the baseline
        u.count[c] += 1.0;
        const double delta = v - u.mean[c];
        u.mean[c] += delta / u.count[c];
        u.m2[c] += delta * (v - u.mean[c]);
      }
    }
    u.ring_nan[u.next] = any_bad ? 1 : 0;
    u.next = (u.next + 1) % window;
    if (u.filled < window) ++u.filled;

    std::size_t bad_frames = 0;
    for (std::size_t k = 0; k < window; ++k) bad_frames += u.ring_nan[k];
    row[2 * n_channels_] = static_cast<double>(bad_frames) / static_cast<double>(u.filled);

    for (std::size_t c = 0; c < n_channels_; ++c) {
      if (!u.frozen) {
        row[c] = kNaN;
        row[n_channels_ + c] = kNaN;
        continue;
      }
      row[c] = (slot[c] - u.mu[c]) / u.sigma[c];
      // Two-pass sample std over the window's finite readings (at most `window` values).
      double n = 0.0, sum = 0.0;
      for (std::size_t k = 0; k < u.filled; ++k) {
        const double v = u.ring[k * n_channels_ + c];
        if (std::isfinite(v)) {
          n += 1.0;
          sum += v;
        }
      }
      if (n < 2.0) {
        row[n_channels_ + c] = kNaN;
        continue;
      }
      const double m = sum / n;
      double ss = 0.0;
      for (std::size_t k = 0; k < u.filled; ++k) {
        const double v = u.ring[k * n_channels_ + c];
        if (std::isfinite(v)) ss += (v - m) * (v - m);
      }
      row[n_channels_ + c] = std::sqrt(ss / (n - 1.0)) / u.sigma[c];
    }
  }
}

}  // namespace laserguard
