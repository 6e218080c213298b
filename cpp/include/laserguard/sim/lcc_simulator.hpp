#pragma once
// One simulated laser control computer: n_units laser units (laser_physics.hpp) on shared
// power supplies, with injected faults (fault_injection.hpp) and exact ground truth.
// Used by lcc-sim (live) and laserguard.sim.generate (historical): one physics for both.
//
// Operation (operating_schedule.hpp, unit_operation.hpp): setpoint changes, power cycles with
// their thermal warm-up, TEC setpoint changes and the rack air act through the same physics;
// the `steady` profile changes nothing and gives the samples it gave before profiles existed.
//
// Determinism: every random draw comes from RandomStreams keyed by (seed, lcc, unit,
// purpose), so the same config gives the same samples bit for bit, and one unit's
// numbers do not change when other units or faults are added.
#include <cstdint>
#include <vector>

#include "laserguard/sim/fault_injection.hpp"
#include "laserguard/sim/laser_physics.hpp"
#include "laserguard/sim/operating_schedule.hpp"
#include "laserguard/sim/random_stream.hpp"
#include "laserguard/sim/unit_operation.hpp"
#include "laserguard/wire/telemetry_schema.hpp"

namespace laserguard {

struct SimulatorConfig {
  std::uint32_t lcc_id = 0;
  std::uint32_t n_units = 32;
  std::uint32_t units_per_psu = 16;
  double sample_period_s = 0.1;
  std::uint64_t seed = 0;
  LaserParams params;
  std::vector<FaultSpec> faults;  // entries for other LCCs are ignored
  OperatingProfile profile;       // default: steady
  std::vector<OperatingChange> schedule;  // scheduled changes; entries for other LCCs are ignored
};

// A unit's operating context at one sample (what its LCC knows besides the channels).
struct UnitContext {
  float setpoint_a = 0.0F;  // commanded drive current after ramps and derating; 0 when off
  UnitState state = UnitState::kOn;
  OpEvent op_event = OpEvent::kNone;  // the change applied at this sample
};

class LccSimulator {
 public:
  // Throws std::invalid_argument naming a bad count, period, profile parameter, or fault or
  // schedule unit/psu index.
  explicit LccSimulator(SimulatorConfig config);

  // Produces the sample at time_s() and advances one period. `values` receives
  // n_units × kChannelCount floats in frame order, `labels` n_units ground-truth labels,
  // `context` (if given) n_units operating contexts.
  void step(float* values, FaultLabel* labels, UnitContext* context = nullptr);

  double time_s() const noexcept { return static_cast<double>(samples_) * config_.sample_period_s; }
  std::uint64_t samples_taken() const noexcept { return samples_; }
  std::uint32_t n_units() const noexcept { return config_.n_units; }
  std::uint32_t n_psus() const noexcept { return static_cast<std::uint32_t>(psus_.size()); }
  std::uint32_t psu_of(std::uint32_t unit) const noexcept { return unit / config_.units_per_psu; }
  const SimulatorConfig& config() const noexcept { return config_; }
  const UnitConstants& unit_constants(std::uint32_t unit) const { return units_.at(unit).constants; }

  // The hardware loop's actuator: lowers a flagged unit's setpoint from the next sample on
  // (UnitOperation::derate). Returns false when nothing changed (off, or at the floor).
  bool derate(std::uint32_t unit, double factor, double floor_a);
  // Commanded drive current of the next sample.
  double drive_current(std::uint32_t unit) const { return units_.at(unit).operation.setpoint_a(time_s()); }

  // Every operating change applied so far (spec form, at_s = the sample that applied it), in
  // order; at most kMaxScheduleLog entries are kept, the rest only counted.
  static constexpr std::size_t kMaxScheduleLog = std::size_t{1} << 17;
  const std::vector<OperatingChange>& schedule_log() const noexcept { return schedule_log_; }
  std::uint64_t schedule_log_dropped() const noexcept { return schedule_log_dropped_; }

 private:
  struct UnitRuntime {
    UnitConstants constants;
    RandomStream noise;   // sensor noise and ripple phase
    RandomStream faults;  // intermittent sensor-fault draws
    UnitOperation operation;
    double heatsink_c;
    double oscillation_phase;
    bool warming = false;  // since power-on, until the heatsink has settled (warm_band_k)
    std::vector<std::size_t> own_faults;  // indices into config_.faults
  };
  struct PsuState {
    RandomStream noise;
    double temp_c;
    double load_a;  // total current drawn in the previous sample
    std::vector<std::size_t> faults;
    // This sample's rail and its (shared) sensor readings.
    double volts = 0.0, ripple_mv = 0.0, next_load_a = 0.0;
    float reading[4] = {};  // psu_voltage_v, psu_current_a, psu_temp_c, psu_ripple_mv
  };

  void apply_sensor_faults(UnitRuntime& unit, double t, float* row);

  SimulatorConfig config_;
  RackAir rack_;
  std::vector<UnitRuntime> units_;
  std::vector<PsuState> psus_;
  std::vector<float> stuck_values_;  // per fault: value frozen at onset (NaN until captured)
  std::vector<unsigned char> stuck_captured_;
  std::uint64_t samples_ = 0;
  std::vector<OperatingChange> schedule_log_;
  std::uint64_t schedule_log_dropped_ = 0;
};

}  // namespace laserguard
