#include "laserguard/features/context_stage.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>

namespace laserguard {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
enum Calib : std::size_t { kWeight = 0, kSumE, kSumX, kSumEE, kSumEX, kRefE, kRefX, kCalibBlocks };
enum Stat : std::size_t { kLevelMean = 0, kSpreadMean, kSpreadVar, kContribution, kStatBlocks };
// kLastFlag: when the stage last flagged the unit; kFlaggedAtChange: 1 if it had been flagged
// within calib_change_s when its operating point last changed (state version 3).
enum Scalar : std::size_t {
  kStarted = 0,
  kLastSetpoint,
  kLastState,
  kLastChange,
  kT2,
  kLastFlag,
  kFlaggedAtChange,
  kScalars
};

// The weight of a first-order filter's new input after dt seconds: exact for a held input,
// so the same time constant means the same at any sampling rate.
double step_weight(double dt, double tau) { return tau > 0.0 ? -std::expm1(-dt / tau) : 1.0; }

}  // namespace

ContextStage::ContextStage(ContextParams params) : params_(std::move(params)) {
  validate_context_params(params_);
  monitored_slot_.assign(params_.n_channels, -1);
  weights_.assign(3 + params_.filters.size(), 0.0);
  for (std::size_t j = 0; j < params_.monitored.size(); ++j)
    monitored_slot_[params_.monitored[j]] = static_cast<std::int32_t>(j);
}

void ContextStage::init_unit(ContextUnit& u) const {
  const std::size_t nm = n_monitored();
  u.filter.assign(2 * params_.filters.size(), kNaN);
  u.calib.assign(kCalibBlocks * nm, 0.0);
  std::fill_n(u.calib.begin() + kRefE * nm, 2 * nm, kNaN);
  u.stats.assign(kStatBlocks * nm, kNaN);
  u.scalars = {0.0, kNaN, kNaN, kNaN, kNaN, kNaN, 0.0};
  u.jump.assign(2 * params_.context.size(), kNaN);
}

bool ContextStage::shaped(const ContextUnit& u) const noexcept {
  const std::size_t nm = n_monitored();
  return u.filter.size() == 2 * params_.filters.size() && u.calib.size() == kCalibBlocks * nm &&
         u.stats.size() == kStatBlocks * nm && u.scalars.size() == kScalars &&
         u.jump.size() == 2 * params_.context.size();
}

void ContextStage::init_row(ContextRow& row) const {
  const std::size_t nm = n_monitored();
  row.signal.assign(params_.n_signals(), kNaN);
  row.product.assign(params_.n_terms(), kNaN);
  for (auto* v : {&row.fleet, &row.expected, &row.z, &row.level, &row.spread, &row.spread_std, &row.relation}) v->assign(nm, kNaN);
  row.projected.assign(params_.n_components, 0.0);
  row.jump.assign(params_.context.size(), 0.0);
}

ContextStage::Calibration ContextStage::calibration(const ContextUnit& u, std::size_t j) const {
  const std::size_t nm = n_monitored();
  const double* c = u.calib.data();
  const double w = c[kWeight * nm + j];
  Calibration cal;
  if (params_.calibration == CalibrationMode::kNone || !(w > 0.0)) return cal;
  const double me = c[kSumE * nm + j] / w, mx = c[kSumX * nm + j] / w;
  cal.e_mean = c[kRefE * nm + j] + me;
  if (params_.calibration == CalibrationMode::kAffine) {
    const double var = std::max(0.0, c[kSumEE * nm + j] / w - me * me);
    const double cov = c[kSumEX * nm + j] / w - me * mx;
    // Ridge towards gain 1: the prior weighs like calib_prior_s seconds spread over prior_var.
    const double prior = params_.calib_prior_s * params_.prior_var[j];
    const double den = w * var + prior;
    if (den > 0.0) {
      cal.b = (w * cov + prior) / den;
      // The prior's share of the estimate is what is still unknown of this unit's gain.
      const double sd = params_.gain_sd[j];
      cal.gain_var = sd * sd * prior / den;
    }
    cal.b = std::clamp(cal.b, 1.0 - params_.gain_limit, 1.0 + params_.gain_limit);
  }
  cal.a = (c[kRefX * nm + j] + mx) - cal.b * cal.e_mean;
  return cal;
}

void ContextStage::evaluate(ContextUnit& u, const float* x, float setpoint_a, std::uint8_t state, double t,
                            double dt, ContextRow& row) const {
  const ContextParams& p = params_;
  const std::size_t nm = n_monitored();
  const bool started = u.scalars[kStarted] != 0.0;
  // Every unit of a frame has the same dt: the filter weights (an expm1 each) are computed once.
  if (!(dt == weights_dt_)) {
    weights_dt_ = dt;
    weights_[0] = step_weight(dt, p.level_tau_s);
    weights_[1] = step_weight(dt, p.spread_tau_s);
    weights_[2] = step_weight(dt, p.spe_tau_s);
    for (std::size_t i = 0; i < p.filters.size(); ++i) weights_[3 + i] = step_weight(dt, p.filters[i].tau_s);
  }
  const double* weights = weights_.data();
  double* g = row.signal.data();
  const bool powered = !p.uses_unit_context || state != 0;
  g[kSignalOne] = 1.0;
  g[kSignalPowered] = powered ? 1.0 : 0.0;
  g[kSignalSetpoint] = !p.uses_unit_context ? 0.0 : (powered ? static_cast<double>(setpoint_a) : 0.0);
  for (std::size_t i = 0; i < p.context.size(); ++i) {
    const double v = static_cast<double>(x[p.context[i]]);
    g[kFirstContextSignal + i] =
        std::isfinite(v) ? (std::clamp(v, p.context_min[i], p.context_max[i]) - p.context_center[i]) / p.context_scale[i]
                         : kNaN;
  }
  const std::size_t first_filter = kFirstContextSignal + p.context.size();
  // The input held over the interval since the previous row is that row's value (a change
  // reported at this row happened at this row), so a step is followed exactly at any rate.
  const std::size_t nf = p.filters.size();
  for (std::size_t i = 0; i < nf; ++i) {
    const double v = g[p.filters[i].source];
    double& y = u.filter[i];
    double& held = u.filter[nf + i];
    if (!started || !std::isfinite(y)) {
      y = v;  // a unit seen for the first time is taken as settled
    } else if (std::isfinite(held)) {
      y += weights[3 + i] * (held - y);
    }
    if (std::isfinite(v)) held = v;
    g[first_filter + i] = y;
  }
  for (std::size_t t_ = 0; t_ < p.n_terms(); ++t_) row.product[t_] = g[p.term_a[t_]] * g[p.term_b[t_]];

  // An operating change (state or setpoint changed) at this row.
  if (p.uses_unit_context) {
    const double sp = static_cast<double>(setpoint_a);
    const double last_sp = u.scalars[kLastSetpoint];
    const bool changed = started && (static_cast<double>(state) != u.scalars[kLastState] ||
                                     (std::isfinite(sp) && std::isfinite(last_sp) && sp != last_sp));
    if (changed) {
      u.scalars[kLastChange] = t;
      u.scalars[kFlaggedAtChange] = t - u.scalars[kLastFlag] < p.calib_change_s ? 1.0 : 0.0;
    }
    u.scalars[kLastState] = static_cast<double>(state);
    u.scalars[kLastSetpoint] = sp;
  }

  // Expected value (fleet model), the unit's calibration, the standardised residual.
  std::fill(row.expected.begin(), row.expected.end(), 0.0);
  for (std::size_t t_ = 0; t_ < p.n_terms(); ++t_) {
    const double f = row.product[t_];
    const double* w = p.coef.data() + t_ * nm;
    for (std::size_t j = 0; j < nm; ++j) row.expected[j] += f * w[j];
  }
  double* st = u.stats.data();
  const double a_level = weights[0];
  const double a_spread = weights[1];
  bool all_finite = true;
  // A unit that was already flagged when its operating point changed, and is still being flagged,
  // is judged with its gain taken as known: a faulty unit that is derated stays flagged instead
  // of having its fault judged within the fleet's spread of gains (and learned as its gain).
  // A flag the change itself brings (a transient) does not count: the unit was healthy before.
  const bool gain_known = u.scalars[kFlaggedAtChange] != 0.0 && t - u.scalars[kLastFlag] < p.calib_change_s;
  row.deviation = 0.0;
  row.powered = powered;
  for (std::size_t j = 0; j < nm; ++j) {
    // An off unit reads what every off unit reads: the fleet model alone judges it. The unit's
    // own gain and offset (learned while powered) would turn a slope difference at its operating
    // point into a false offset at zero current.
    Calibration cal = powered ? calibration(u, j) : Calibration{};
    if (gain_known) cal.gain_var = 0.0;
    const double e = row.expected[j];
    const double v = static_cast<double>(x[p.monitored[j]]);
    row.fleet[j] = e;
    row.expected[j] = cal.a + cal.b * e;
    const double far = e - cal.e_mean;
    const double sigma = std::sqrt(p.resid_sigma[j] * p.resid_sigma[j] + cal.gain_var * far * far);
    const double z = (std::isfinite(v) && std::isfinite(e)) ? (v - row.expected[j]) / sigma : kNaN;
    row.z[j] = z;
    if (!std::isfinite(z)) {
      all_finite = false;
      row.level[j] = row.spread[j] = row.spread_std[j] = kNaN;
      continue;
    }
    double& zs = st[kLevelMean * nm + j];
    double& zm = st[kSpreadMean * nm + j];
    double& zv = st[kSpreadVar * nm + j];
    if (std::isnan(zs)) {
      zs = zm = z;
      zv = p.spread_ref[j] * p.spread_ref[j];
    } else {
      zs += a_level * (z - zs);
      const double d = z - zm;
      zm += a_spread * d;
      zv = (1.0 - a_spread) * (zv + a_spread * d * d);
    }
    row.level[j] = std::fabs(zs) / p.level_scale[j];
    row.spread_std[j] = std::sqrt(zv);
    const double ref2 = p.spread_ref[j] * p.spread_ref[j];
    row.spread[j] = p.judge_spread[j] && zv > ref2 ? 0.5 * std::log(zv / ref2) / p.spread_scale[j] : 0.0;
    row.deviation = std::max({row.deviation, row.level[j], row.spread[j]});
  }

  // How each context channel moves between samples (raw readings: a spike is not clamped away).
  for (std::size_t i = 0; i < p.context.size(); ++i) {
    const double v = static_cast<double>(x[p.context[i]]);
    double& last = u.jump[i];
    double& m = u.jump[p.context.size() + i];
    row.jump[i] = 0.0;
    if (!std::isfinite(v)) continue;
    if (std::isfinite(last)) {
      const double d = v - last;
      m = std::isnan(m) ? p.jump_ref[i] * p.jump_ref[i] : m + a_spread * (d * d - m);
      const double ref2 = p.jump_ref[i] * p.jump_ref[i];
      if (p.jump_scale[i] > 0.0 && m > ref2) {
        row.jump[i] = 0.5 * std::log(m / ref2) / p.jump_scale[i];
        row.deviation = std::max(row.deviation, row.jump[i]);
      }
    }
    last = v;
  }

  // How the channels move together: SPE (and T^2) of the PCA of healthy residuals.
  row.spe = row.t2 = kNaN;
  std::fill(row.relation.begin(), row.relation.end(), 0.0);
  if (all_finite && (p.spe_limit > 0.0 || p.t2_limit > 0.0)) {
    const std::size_t k = p.n_components;
    const double a_spe = weights[2];
    for (std::size_t i = 0; i < k; ++i) row.projected[i] = 0.0;
    for (std::size_t j = 0; j < nm; ++j)
      for (std::size_t i = 0; i < k; ++i) row.projected[i] += p.loadings[j * k + i] * row.z[j];
    double spe = 0.0;
    for (std::size_t j = 0; j < nm; ++j) {
      double r = row.z[j];
      for (std::size_t i = 0; i < k; ++i) r -= p.loadings[j * k + i] * row.projected[i];
      double& c = st[kContribution * nm + j];
      c = std::isnan(c) ? r * r : c + a_spe * (r * r - c);
      spe += c;
    }
    row.spe = spe;
    if (k > 0) {
      double t2 = 0.0;
      for (std::size_t i = 0; i < k; ++i) t2 += row.projected[i] * row.projected[i] / p.eigenvalues[i];
      double& t2s = u.scalars[kT2];
      t2s = std::isnan(t2s) ? t2 : t2s + a_spe * (t2 - t2s);
      row.t2 = t2s;
    }
    if (p.spe_limit > 0.0) {
      row.deviation = std::max(row.deviation, spe / p.spe_limit);
      for (std::size_t j = 0; j < nm; ++j) row.relation[j] = st[kContribution * nm + j] / p.spe_limit;
    }
    if (p.t2_limit > 0.0 && k > 0) {
      row.deviation = std::max(row.deviation, row.t2 / p.t2_limit);
      // Each channel's share of T^2: z_j * sum_i P_ji t_i / lambda_i (those pulling it up).
      double total = 0.0;
      for (std::size_t j = 0; j < nm; ++j) {
        double s = 0.0;
        for (std::size_t i = 0; i < k; ++i) s += p.loadings[j * k + i] * row.projected[i] / p.eigenvalues[i];
        total += std::max(0.0, row.z[j] * s);
      }
      for (std::size_t j = 0; total > 0.0 && j < nm; ++j) {
        double s = 0.0;
        for (std::size_t i = 0; i < k; ++i) s += p.loadings[j * k + i] * row.projected[i] / p.eigenvalues[i];
        row.relation[j] = std::max(row.relation[j], row.t2 / p.t2_limit * std::max(0.0, row.z[j] * s) / total);
      }
    }
  }

  // A bounded hold-off after an operating change, if the model asks for one.
  const double since_change = t - u.scalars[kLastChange];  // NaN before the first change
  row.in_hold = p.change_hold_s > 0.0 && since_change < p.change_hold_s;
  row.after_change = p.calib_change_s > 0.0 && since_change < p.calib_change_s;
  if (row.in_hold) {
    row.deviation /= p.change_relax;
    for (auto* v : {&row.level, &row.spread, &row.relation})
      for (double& d : *v) d /= p.change_relax;
  }
  u.scalars[kStarted] = 1.0;
}

void ContextStage::learn(ContextUnit& u, const float* x, const ContextRow& row, double dt) const {
  const ContextParams& p = params_;
  if (p.calibration == CalibrationMode::kNone || !row.powered) return;
  const std::size_t nm = n_monitored();
  const double w = std::min(dt, p.max_dt_s);
  const double keep = p.calib_tau_s > 0.0 ? std::exp(-dt / p.calib_tau_s) : 1.0;
  double* c = u.calib.data();
  for (std::size_t j = 0; j < nm; ++j) {
    const double v = static_cast<double>(x[p.monitored[j]]);
    const double e = row.fleet[j];
    if (!std::isfinite(v) || !std::isfinite(e)) continue;
    if (std::isnan(c[kRefE * nm + j])) {
      c[kRefE * nm + j] = e;  // shifted sums: no cancellation for channels far from zero
      c[kRefX * nm + j] = v;
    }
    const double de = e - c[kRefE * nm + j], dx = v - c[kRefX * nm + j];
    c[kWeight * nm + j] = keep * c[kWeight * nm + j] + w;
    c[kSumE * nm + j] = keep * c[kSumE * nm + j] + w * de;
    c[kSumX * nm + j] = keep * c[kSumX * nm + j] + w * dx;
    c[kSumEE * nm + j] = keep * c[kSumEE * nm + j] + w * de * de;
    c[kSumEX * nm + j] = keep * c[kSumEX * nm + j] + w * de * dx;
  }
}

void ContextStage::flagged(ContextUnit& u, double t) const { u.scalars[kLastFlag] = t; }

void ContextStage::anchor(ContextUnit& u) const {
  // The residual statistics restart: during learning they measured residuals against a
  // calibration still being learned.
  std::fill(u.stats.begin(), u.stats.end(), kNaN);
  u.scalars[kT2] = kNaN;
  if (params_.calib_anchor_s <= 0.0) return;
  const std::size_t nm = n_monitored();
  double* c = u.calib.data();
  for (std::size_t j = 0; j < nm; ++j) {
    const double w = c[kWeight * nm + j];
    if (!(w > 0.0) || w >= params_.calib_anchor_s) continue;
    const double f = params_.calib_anchor_s / w;  // same means and moments, more weight
    for (const std::size_t block : {kWeight, kSumE, kSumX, kSumEE, kSumEX}) c[block * nm + j] *= f;
  }
}

void ContextStage::forest_input(const float* x, const ContextRow& row, float* out) const {
  for (std::size_t c = 0; c < params_.n_channels; ++c) {
    const std::int32_t j = monitored_slot_[c];
    out[c] = j < 0 ? x[c] : static_cast<float>(row.z[static_cast<std::size_t>(j)]);
  }
}

void ContextStage::raw_output(const ContextRow& row, const ContextUnit& u, double* out) const {
  const std::size_t nm = n_monitored();
  for (std::size_t j = 0; j < nm; ++j) {
    out[j] = row.z[j];
    const double zs = u.stats[kLevelMean * nm + j];
    out[nm + j] = std::isfinite(row.z[j]) ? std::fabs(zs) : kNaN;
    out[2 * nm + j] = row.spread_std[j];
  }
  out[3 * nm] = row.spe;
  out[3 * nm + 1] = row.t2;
  const std::size_t nx = params_.context.size();
  for (std::size_t i = 0; i < nx; ++i) {
    const double m = u.jump[nx + i];
    out[3 * nm + 2 + i] = m >= 0.0 ? std::sqrt(m) : kNaN;
  }
}

}  // namespace laserguard
