#pragma once
// The operator and controller of one laser unit (UnitOperation) and the air of one rack
// (RackAir): they apply the scheduled changes, draw the profile's random ones, and answer
// "what is the commanded drive current, is the unit powered, what does the TEC aim for, how
// warm is the rack air" at each sample. The physics that follows from that is in
// lcc_simulator.cpp.
//
// Random changes come from the unit's own RandomStream (seed, lcc, unit, purpose), drawn at
// continuous event times with a fixed number of draws per event, so they do not depend on
// the sample rate, on other units, on faults or on the derate loop.
#include <cstdint>
#include <vector>

#include "laserguard/sim/laser_physics.hpp"
#include "laserguard/sim/operating_schedule.hpp"
#include "laserguard/sim/random_stream.hpp"

namespace laserguard {

class UnitOperation {
 public:
  // `scheduled`: this unit's entries of a schedule file, sorted by at_s.
  UnitOperation(const LaserParams& params, const OperatingProfile& profile, RandomStream rng,
                std::vector<OperatingChange> scheduled);

  // Applies every change due at or before sample time t (scheduled ones first, then random
  // ones, then a pending derating) and appends what changed to `log`. Returns the op_event
  // of this sample (the last change applied, kNone when nothing changed).
  OpEvent advance(double t, const LaserParams& params, const OperatingProfile& profile, std::uint32_t lcc,
                  std::uint32_t unit, std::vector<OperatingChange>& log);

  bool powered() const noexcept { return powered_; }
  bool derated() const noexcept { return derate_multiplier_ < 1.0; }
  double tec_setpoint_c() const noexcept { return tec_setpoint_c_; }
  // The commanded drive current at t after ramps and derating; 0 while off.
  double setpoint_a(double t) const noexcept;

  // The derate loop: multiplies the commanded current by `factor` from the next sample on,
  // never below floor_a and never raising it; sticks through later setpoint changes and power
  // cycles. Returns false (nothing changed) when the unit is off or already at the floor.
  bool derate(double t, double factor, double floor_a) noexcept;

 private:
  double commanded_a(double t) const noexcept;
  void command(double t, double target_a, double ramp_s) noexcept;
  OpEvent apply_scheduled(const OperatingChange& change, double t);
  OpEvent draw_random(double event_s, double t, const LaserParams& params, const OperatingProfile& profile,
                      OperatingChange& record);
  double next_interval_s(const OperatingProfile& profile) noexcept;

  RandomStream rng_;
  std::vector<OperatingChange> scheduled_;
  std::size_t next_scheduled_ = 0;
  bool powered_ = true;
  double tec_setpoint_c_;
  // Commanded current: a ramp from `ramp_from_a_` at `ramp_start_s_` to `target_a_` over
  // `ramp_s_` seconds (ramp_s_ = 0: a plain setpoint).
  double target_a_;
  double ramp_from_a_ = 0.0, ramp_start_s_ = 0.0, ramp_s_ = 0.0;
  double derate_multiplier_ = 1.0, derate_floor_a_ = 0.0;
  bool derate_pending_ = false;
  double random_next_s_;          // continuous time of the next random change (inf: none)
  bool random_power_on_ = false;  // the next random change is the end of a random power cycle
};

// The rack air of one LCC: ambient_c + HVAC offset (stepped) + daily cycle.
class RackAir {
 public:
  RackAir(const OperatingProfile& profile, RandomStream rng, std::vector<OperatingChange> scheduled);
  // Applies the HVAC steps due at or before t; returns true when the air stepped this sample.
  bool advance(double t, const OperatingProfile& profile, std::uint32_t lcc, std::vector<OperatingChange>& log);
  double ambient_c(double t, const LaserParams& params, const OperatingProfile& profile) const noexcept;

 private:
  RandomStream rng_;
  std::vector<OperatingChange> scheduled_;
  std::size_t next_scheduled_ = 0;
  double offset_c_ = 0.0;
  double random_next_s_;
};

}  // namespace laserguard
