#pragma once
// How the simulated units are operated: the named operating profiles (how often setpoints,
// power, TEC setpoints and rack air change), the operating events that ground truth records,
// and a declarative JSON schedule for exact scenarios (the counterpart of the fault spec).
// The state machine that applies them is in unit_operation.hpp; docs/simulator.md has the
// profiles' values and the schedule format.
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "laserguard/sim/laser_physics.hpp"

namespace laserguard {

// What changed on a unit at one sample (op_event). Codes are stable: the Python binding and
// the CSV use the names, "" for none.
enum class OpEvent : std::uint8_t {
  kNone = 0,
  kSetpointStep,  // drive-current setpoint jumps to a new value
  kSetpointRamp,  // drive-current setpoint starts a linear ramp (recorded at the ramp's start)
  kPowerOff,      // laser and TEC switched off: the unit relaxes to the rack air
  kPowerOn,       // laser and TEC switched on: warming until the heatsink has settled
  kTecSetpoint,   // TEC controller setpoint changed
  kAmbientStep,   // HVAC step of the rack air (on every unit of the LCC)
  kDerate,        // the derate loop lowered the setpoint of a flagged unit
  kCount
};
inline constexpr std::size_t kOpEventCount = static_cast<std::size_t>(OpEvent::kCount);

const char* op_event_name(OpEvent event) noexcept;  // "" for kNone
// Throws std::invalid_argument naming the unknown value and listing the known ones.
OpEvent op_event_from_name(const std::string& name);

// Rates are per unit (rack air: per LCC) and per hour; events of a kind come as a Poisson
// process. Setpoints are fractions of LaserParams::nominal_drive_current_a (the unit's rated
// operating current). Every field can be overridden by name (--param, params=).
struct OperatingProfile {
  std::string name = "steady";
  double setpoint_min_fraction = 0.5;       // lowest setpoint an operator picks
  double setpoint_max_fraction = 1.1;       // highest setpoint (rated current + 10 %)
  double step_min_fraction = 0.05;          // a setpoint change moves by 5 % ..
  double step_max_fraction = 0.40;          // .. 40 % of nominal
  double setpoint_changes_per_hour = 0.0;   // steps and ramps together
  double ramp_share = 0.0;                  // share of setpoint changes that are ramps
  double ramp_min_s = 10.0;
  double ramp_max_s = 120.0;
  double power_cycles_per_hour = 0.0;       // off, then on again after off_min_s..off_max_s
  double off_min_s = 60.0;
  double off_max_s = 600.0;
  double tec_changes_per_hour = 0.0;        // TEC setpoint moves to uniform [min, max]
  double tec_setpoint_min_c = 20.0;
  double tec_setpoint_max_c = 30.0;
  double warm_band_k = 0.1;                 // warming ends when the heatsink is this close to its settled value
  double ambient_daily_amplitude_c = 0.0;   // rack air: ambient_c + amplitude·cos(2π(h − peak)/24)
  double ambient_peak_hour = 15.0;          // warmest hour of the day
  double run_start_hour = 0.0;              // hour of the day at t = 0
  double hvac_steps_per_hour = 0.0;         // per LCC: the rack air's offset jumps to uniform ±max
  double hvac_step_max_c = 1.0;

  bool changes_anything() const noexcept {
    return setpoint_changes_per_hour > 0.0 || power_cycles_per_hour > 0.0 || tec_changes_per_hour > 0.0 ||
           ambient_daily_amplitude_c != 0.0 || hvac_steps_per_hour > 0.0;
  }
};

// "steady" (no changes: the behaviour before profiles existed, bit for bit), "lab" (several
// changes per unit-hour), "production" (long runs, rare changes, a daily rack-air cycle).
const std::vector<std::string>& operating_profile_names();
// Throws std::invalid_argument naming an unknown profile and listing the known ones.
OperatingProfile operating_profile(const std::string& name);

struct ProfileParamField {
  const char* name;
  double OperatingProfile::*member;
};
const std::vector<ProfileParamField>& profile_param_fields();
// Throws std::invalid_argument naming the first inconsistent or non-physical field.
void validate_operating_profile(const OperatingProfile& profile);
// Sets a physics (LaserParams) or operating-profile parameter by name; throws
// std::invalid_argument naming an unknown name.
void set_sim_param(LaserParams& params, OperatingProfile& profile, const std::string& name, double value);

// One operating change in spec form (a schedule file entry, or what a run recorded).
struct OperatingChange {
  std::uint32_t lcc = 0;
  std::uint32_t unit = 0;  // not used by ambient_step (every unit of the LCC)
  OpEvent type = OpEvent::kNone;
  double at_s = 0.0;  // run time; applied at the first sample at or after it
  double setpoint_a = std::numeric_limits<double>::quiet_NaN();      // step/ramp target, derate result
  double ramp_s = 0.0;                                                // setpoint_ramp
  double tec_setpoint_c = std::numeric_limits<double>::quiet_NaN();  // tec_setpoint
  double ambient_offset_c = 0.0;                                      // ambient_step: offset from ambient_c
};

class ScheduleError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

// Parses {"changes": [{"lcc": 1, "unit": 3, "type": "setpoint_step", "at_s": 60,
// "setpoint_a": 6.5}, ...]} (or a bare array). Unknown keys (for the entry's type), types and
// non-finite or negative values are errors naming the entry and the value.
std::vector<OperatingChange> parse_schedule(const std::string& json_text);
std::vector<OperatingChange> read_schedule_file(const std::string& path);
std::string schedule_to_json(const std::vector<OperatingChange>& changes);
// Checks a parsed schedule against the run: LCC ids, unit indices, setpoints inside the
// profile's range, TEC setpoints inside its TEC range. Throws ScheduleError naming the entry.
void check_schedule(const std::vector<OperatingChange>& changes, const OperatingProfile& profile,
                    const LaserParams& params, std::uint32_t first_lcc_id, std::uint32_t n_lccs, std::uint32_t n_units);

}  // namespace laserguard
