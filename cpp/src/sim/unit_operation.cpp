#include "laserguard/sim/unit_operation.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

namespace laserguard {
namespace {

constexpr double kInfinity = std::numeric_limits<double>::infinity();
constexpr double kTwoPi = 6.283185307179586;

// Exponential waiting time (s) of a Poisson process with `per_hour` events per hour.
double exponential_s(RandomStream& rng, double per_hour) {
  if (!(per_hour > 0.0)) return kInfinity;
  return -std::log(1.0 - rng.uniform()) / per_hour * 3600.0;
}

// Operators type round numbers: setpoints to 10 mA, TEC setpoints and air offsets to 0.1 K,
// durations to whole seconds. Dividing by the integer `per_unit` (100 for 0.01) gives the
// double nearest the decimal (4.85, not 4.8500000000000005).
double round_to(double v, double step) {
  const double per_unit = std::round(1.0 / step);
  return std::round(v * per_unit) / per_unit;
}

}  // namespace

UnitOperation::UnitOperation(const LaserParams& params, const OperatingProfile& profile, RandomStream rng,
                             std::vector<OperatingChange> scheduled)
    : rng_(rng),
      scheduled_(std::move(scheduled)),
      tec_setpoint_c_(params.heatsink_setpoint_c),
      target_a_(params.nominal_drive_current_a),
      random_next_s_(exponential_s(rng_, profile.setpoint_changes_per_hour + profile.power_cycles_per_hour +
                                             profile.tec_changes_per_hour)) {}

double UnitOperation::commanded_a(double t) const noexcept {
  if (ramp_s_ <= 0.0 || t >= ramp_start_s_ + ramp_s_) return target_a_;
  return ramp_from_a_ + (target_a_ - ramp_from_a_) * ((t - ramp_start_s_) / ramp_s_);
}

double UnitOperation::setpoint_a(double t) const noexcept {
  if (!powered_) return 0.0;
  const double c = commanded_a(t);
  if (derate_multiplier_ >= 1.0) return c;
  return std::max(c * derate_multiplier_, std::min(c, derate_floor_a_));
}

void UnitOperation::command(double t, double target_a, double ramp_s) noexcept {
  ramp_from_a_ = commanded_a(t);
  ramp_start_s_ = t;
  ramp_s_ = ramp_s;
  target_a_ = target_a;
}

bool UnitOperation::derate(double t, double factor, double floor_a) noexcept {
  if (!powered_ || !(setpoint_a(t) > floor_a)) return false;
  derate_multiplier_ *= factor;
  derate_floor_a_ = floor_a;
  derate_pending_ = true;
  return true;
}

OpEvent UnitOperation::apply_scheduled(const OperatingChange& c, double t) {
  switch (c.type) {
    case OpEvent::kSetpointStep: command(t, c.setpoint_a, 0.0); return c.type;
    case OpEvent::kSetpointRamp: command(t, c.setpoint_a, c.ramp_s); return c.type;
    case OpEvent::kPowerOff:
      if (!powered_) return OpEvent::kNone;
      powered_ = false;
      return c.type;
    case OpEvent::kPowerOn:
      if (powered_) return OpEvent::kNone;
      powered_ = true;
      return c.type;
    case OpEvent::kTecSetpoint: tec_setpoint_c_ = c.tec_setpoint_c; return c.type;
    default: return OpEvent::kNone;
  }
}

double UnitOperation::next_interval_s(const OperatingProfile& profile) noexcept {
  return exponential_s(rng_, profile.setpoint_changes_per_hour + profile.power_cycles_per_hour +
                                 profile.tec_changes_per_hour);
}

OpEvent UnitOperation::draw_random(double event_s, double t, const LaserParams& params,
                                   const OperatingProfile& profile, OperatingChange& record) {
  if (random_power_on_) {
    random_power_on_ = false;
    random_next_s_ = event_s + next_interval_s(profile);
    if (powered_) return OpEvent::kNone;  // a scheduled power_on came first
    powered_ = true;
    record.type = OpEvent::kPowerOn;
    return record.type;
  }
  // Every kind of change draws the same values whether or not it applies, so the stream
  // stays aligned whatever the unit's state.
  const double total = profile.setpoint_changes_per_hour + profile.power_cycles_per_hour + profile.tec_changes_per_hour;
  const double pick = rng_.uniform() * total;
  const double nominal = params.nominal_drive_current_a;
  if (pick < profile.setpoint_changes_per_hour) {
    const double step = rng_.uniform(profile.step_min_fraction, profile.step_max_fraction) * nominal;
    const bool up = rng_.uniform() < 0.5;
    const bool ramp = rng_.uniform() < profile.ramp_share;
    const double ramp_s = std::max(round_to(rng_.uniform(profile.ramp_min_s, profile.ramp_max_s), 1.0), 1.0);
    random_next_s_ = event_s + next_interval_s(profile);
    if (!powered_) return OpEvent::kNone;
    const double lo = profile.setpoint_min_fraction * nominal, hi = profile.setpoint_max_fraction * nominal;
    const double base = target_a_;
    double target = up ? base + step : base - step;
    if (target > hi || target < lo) target = up ? base - step : base + step;  // no room that way: the other
    if (target > hi || target < lo) target = hi - base > base - lo ? hi : lo;  // no room either: the farther end
    target = std::clamp(round_to(target, 0.01), lo, hi);
    command(t, target, ramp ? ramp_s : 0.0);
    record.type = ramp ? OpEvent::kSetpointRamp : OpEvent::kSetpointStep;
    record.setpoint_a = target;
    record.ramp_s = ramp ? ramp_s : 0.0;
    return record.type;
  }
  if (pick < profile.setpoint_changes_per_hour + profile.power_cycles_per_hour) {
    const double off_s = std::max(round_to(rng_.uniform(profile.off_min_s, profile.off_max_s), 1.0), 1.0);
    if (!powered_) {
      random_next_s_ = event_s + next_interval_s(profile);
      return OpEvent::kNone;
    }
    powered_ = false;
    random_power_on_ = true;
    random_next_s_ = event_s + off_s;
    record.type = OpEvent::kPowerOff;
    return record.type;
  }
  const double tec_c = round_to(rng_.uniform(profile.tec_setpoint_min_c, profile.tec_setpoint_max_c), 0.1);
  random_next_s_ = event_s + next_interval_s(profile);
  if (!powered_) return OpEvent::kNone;
  tec_setpoint_c_ = std::clamp(tec_c, profile.tec_setpoint_min_c, profile.tec_setpoint_max_c);
  record.type = OpEvent::kTecSetpoint;
  record.tec_setpoint_c = tec_setpoint_c_;
  return record.type;
}

OpEvent UnitOperation::advance(double t, const LaserParams& params, const OperatingProfile& profile,
                               std::uint32_t lcc, std::uint32_t unit, std::vector<OperatingChange>& log) {
  OpEvent event = OpEvent::kNone;
  const auto record = [&](OperatingChange c) {
    c.lcc = lcc;
    c.unit = unit;
    c.at_s = t;  // recorded at the sample that applied it: fed back as a schedule it reproduces the run
    log.push_back(c);
    event = c.type;
  };
  for (; next_scheduled_ < scheduled_.size() && scheduled_[next_scheduled_].at_s <= t; ++next_scheduled_) {
    const OperatingChange& c = scheduled_[next_scheduled_];
    if (apply_scheduled(c, t) != OpEvent::kNone) record(c);
  }
  while (random_next_s_ <= t) {
    OperatingChange c;
    if (draw_random(random_next_s_, t, params, profile, c) != OpEvent::kNone) record(c);
  }
  if (derate_pending_) {
    derate_pending_ = false;
    OperatingChange c;
    c.type = OpEvent::kDerate;
    c.setpoint_a = setpoint_a(t);
    record(c);
  }
  return event;
}

RackAir::RackAir(const OperatingProfile& profile, RandomStream rng, std::vector<OperatingChange> scheduled)
    : rng_(rng), scheduled_(std::move(scheduled)), random_next_s_(exponential_s(rng_, profile.hvac_steps_per_hour)) {}

bool RackAir::advance(double t, const OperatingProfile& profile, std::uint32_t lcc, std::vector<OperatingChange>& log) {
  bool stepped = false;
  const auto record = [&](double offset_c) {
    offset_c_ = offset_c;
    OperatingChange c;
    c.lcc = lcc;
    c.type = OpEvent::kAmbientStep;
    c.at_s = t;
    c.ambient_offset_c = offset_c;
    log.push_back(c);
    stepped = true;
  };
  for (; next_scheduled_ < scheduled_.size() && scheduled_[next_scheduled_].at_s <= t; ++next_scheduled_)
    record(scheduled_[next_scheduled_].ambient_offset_c);
  while (random_next_s_ <= t) {
    const double offset = round_to(rng_.uniform(-profile.hvac_step_max_c, profile.hvac_step_max_c), 0.1);
    random_next_s_ += exponential_s(rng_, profile.hvac_steps_per_hour);
    record(offset);
  }
  return stepped;
}

double RackAir::ambient_c(double t, const LaserParams& params, const OperatingProfile& profile) const noexcept {
  double air = params.ambient_c + offset_c_;  // exactly ambient_c under `steady`
  if (profile.ambient_daily_amplitude_c != 0.0) {
    const double hour = profile.run_start_hour + t / 3600.0;
    air += profile.ambient_daily_amplitude_c * std::cos(kTwoPi * (hour - profile.ambient_peak_hour) / 24.0);
  }
  return air;
}

}  // namespace laserguard
