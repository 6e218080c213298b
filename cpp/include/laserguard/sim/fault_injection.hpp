#pragma once
// Fault descriptions for the simulator: the fault types of design §3, a declarative JSON
// spec and seeded random fault mixes. How each type acts on the physics is in
// lcc_simulator.cpp; docs/simulator.md lists the channels each one touches.
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace laserguard {

enum class FaultType : std::uint8_t {
  kNone = 0,
  kDegradation,        // gradual η loss / I_th rise (ramped)
  kFacetDamage,        // COD: sudden drop of output power
  kCoolingLoss,        // TEC/fan loses capacity: heatsink and junction heat up, power rolls over
  kThermalResistance,  // solder/mount degradation: R_th rises (ramped)
  kPsuSag,             // rail voltage sags: every unit on that supply
  kPsuRipple,          // rail ripple grows and leaks into the drive current: every unit on it
  kDriverOscillation,  // drive current oscillates
  kDriverOvershoot,    // drive current regulated above its set point
  kSensorStuck,        // one channel freezes at its value at onset
  kSensorDropout,      // one channel reads NaN (a fraction of samples growing with severity)
  kSensorSpikes,       // one channel shows random spikes
  kCount
};

inline constexpr std::size_t kFaultTypeCount = static_cast<std::size_t>(FaultType::kCount);

const char* fault_type_name(FaultType type) noexcept;
// Throws std::invalid_argument naming the unknown value and listing the known ones.
FaultType fault_type_from_name(const std::string& name);
bool is_psu_fault(FaultType type) noexcept;
bool is_sensor_fault(FaultType type) noexcept;

struct FaultSpec {
  std::uint32_t lcc = 0;
  // Unit index within the LCC. For PSU faults the fault hits every unit on this unit's
  // supply (or on `psu` when given).
  std::uint32_t unit = 0;
  std::optional<std::uint32_t> psu;
  FaultType type = FaultType::kNone;
  double start_s = 0.0;  // onset, simulation seconds from the start of the run
  double ramp_s = 0.0;   // time to reach full severity (0 = immediately)
  double end_s = -1.0;   // < 0: lasts to the end of the run
  double severity = 1.0; // (0, 1]
  std::size_t channel = 0;  // sensor faults: the affected channel (frame column)

  bool active_at(double t) const noexcept { return t >= start_s && (end_s < 0.0 || t < end_s); }
  // Severity scaled by the ramp, 0 before onset and after the end.
  double effective_severity(double t) const noexcept;
};

class FaultSpecError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

// Parses {"faults": [{"lcc": 0, "unit": 3, "type": "facet_damage", "start_s": 10,
// "ramp_s": 0, "end_s": null, "severity": 0.8, "channel": "optical_power_w"}, ...]}
// (or a bare array). Unknown keys, types, channels and out-of-range values are errors
// naming the entry and the value.
std::vector<FaultSpec> parse_fault_spec(const std::string& json_text);
std::vector<FaultSpec> read_fault_spec_file(const std::string& path);
std::string fault_spec_to_json(const std::vector<FaultSpec>& faults);

// Named random fault mixes over a run of `horizon_s` seconds: "none", "default" (about one
// unit in seven gets a random unit fault, one supply in ten a PSU fault) and "all" (every
// type at least once, on distinct units where possible). Same seed, same faults.
std::vector<FaultSpec> fault_mix(const std::string& name, std::uint64_t seed, std::uint32_t n_lccs,
                                 std::uint32_t n_units, std::uint32_t units_per_psu, double horizon_s);
const std::vector<std::string>& fault_mix_names();

// The faults of one run: the explicit spec entries plus the named mix (whose LCCs are
// renumbered from first_lcc_id), checked against the simulated LCC ids. Used by lcc-sim
// and laserguard.sim alike.
std::vector<FaultSpec> assemble_faults(std::vector<FaultSpec> spec, const std::string& mix, std::uint64_t seed,
                                       std::uint32_t n_lccs, std::uint32_t first_lcc_id, std::uint32_t n_units,
                                       std::uint32_t units_per_psu, double horizon_s);

// Ground truth of one unit at one sample.
struct FaultLabel {
  FaultType type = FaultType::kNone;
  float severity = 0.0F;     // the fault's spec severity (0 when healthy)
  std::int32_t fault = -1;   // index of the fault in the simulator's fault list (-1 when healthy)
};

}  // namespace laserguard
