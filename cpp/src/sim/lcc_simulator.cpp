#include "laserguard/sim/lcc_simulator.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

namespace laserguard {
namespace {

constexpr double kTwoPi = 6.283185307179586;
// Stream purposes (the fourth RandomStream key).
constexpr std::uint64_t kStreamConstants = 1, kStreamNoise = 2, kStreamFaults = 3, kStreamPsu = 4,
                        kStreamOperation = 5, kStreamRackAir = 6;

// How hard each fault hits at severity 1 (docs/simulator.md, "Fault effects").
constexpr double kDegradationAgeing = 0.30;      // +30 % constant-power current (3x end of life)
constexpr double kFacetLossMin = 0.30, kFacetLossPerSeverity = 0.60;
constexpr double kCoolingLossMax = 0.97;          // fraction of TEC capacity lost
constexpr double kThermalResistanceRise = 3.0;    // R_th x (1 + 3)
constexpr double kPsuSagMax = 0.45;               // rail drops by up to 45 %
constexpr double kPsuRippleMaxMv = 250.0;
constexpr double kOscillationDepth = 0.15, kOscillationHz = 1.7;
constexpr double kOvershoot = 0.25;

// This LCC's scheduled changes: the rack air's (unit < 0 as key) or one unit's, by time.
std::vector<OperatingChange> scheduled_for(const SimulatorConfig& c, bool rack_air, std::uint32_t unit) {
  std::vector<OperatingChange> out;
  for (const OperatingChange& change : c.schedule) {
    if (change.lcc != c.lcc_id || (change.type == OpEvent::kAmbientStep) != rack_air) continue;
    if (rack_air || change.unit == unit) out.push_back(change);
  }
  std::stable_sort(out.begin(), out.end(),
                   [](const OperatingChange& a, const OperatingChange& b) { return a.at_s < b.at_s; });
  return out;
}

}  // namespace

LccSimulator::LccSimulator(SimulatorConfig config)
    : config_(std::move(config)),
      rack_(config_.profile, RandomStream(config_.seed, config_.lcc_id, 0, kStreamRackAir),
            scheduled_for(config_, true, 0)) {
  const auto& p = config_.params;
  validate_laser_params(p);
  validate_operating_profile(config_.profile);
  if (config_.n_units == 0 || config_.n_units > 4096)
    throw std::invalid_argument("n_units " + std::to_string(config_.n_units) + " is outside 1..4096");
  if (config_.units_per_psu == 0) throw std::invalid_argument("units_per_psu must be at least 1");
  if (!(config_.sample_period_s > 0.0) || !std::isfinite(config_.sample_period_s))
    throw std::invalid_argument("sample period " + std::to_string(config_.sample_period_s) + " s is not positive");

  for (std::size_t i = 0; i < config_.schedule.size(); ++i) {
    const OperatingChange& c = config_.schedule[i];
    if (c.lcc == config_.lcc_id && c.type != OpEvent::kAmbientStep && c.unit >= config_.n_units)
      throw std::invalid_argument("change " + std::to_string(i) + " (" + op_event_name(c.type) + "): unit " +
                                  std::to_string(c.unit) + " is not below " + std::to_string(config_.n_units));
  }

  const std::uint32_t n_psus = (config_.n_units + config_.units_per_psu - 1) / config_.units_per_psu;
  units_.reserve(config_.n_units);
  for (std::uint32_t u = 0; u < config_.n_units; ++u) {
    RandomStream constants_rng(config_.seed, config_.lcc_id, u, kStreamConstants);
    const UnitConstants constants = draw_unit_constants(p, constants_rng);
    UnitRuntime s{constants,
                  RandomStream(config_.seed, config_.lcc_id, u, kStreamNoise),
                  RandomStream(config_.seed, config_.lcc_id, u, kStreamFaults),
                  UnitOperation(p, config_.profile, RandomStream(config_.seed, config_.lcc_id, u, kStreamOperation),
                                scheduled_for(config_, false, u)),
                  p.heatsink_setpoint_c,
                  constants_rng.uniform(0.0, kTwoPi),
                  false,
                  {}};
    units_.push_back(std::move(s));
  }
  for (std::uint32_t q = 0; q < n_psus; ++q) {
    const std::uint32_t first = q * config_.units_per_psu;
    const std::uint32_t count = std::min(config_.units_per_psu, config_.n_units - first);
    const double load = count * (p.nominal_drive_current_a + p.driver_quiescent_a);
    const double loss = p.psu_nominal_v * load * (1.0 / p.psu_efficiency - 1.0);
    psus_.push_back({RandomStream(config_.seed, config_.lcc_id, q, kStreamPsu),
                     rack_.ambient_c(0.0, p, config_.profile) + p.psu_thermal_k_per_w * loss, load, {}});
  }
  for (std::size_t i = 0; i < config_.faults.size(); ++i) {
    const FaultSpec& f = config_.faults[i];
    if (f.lcc != config_.lcc_id) continue;
    const std::string where = "fault " + std::to_string(i) + " (" + fault_type_name(f.type) + ")";
    if (f.unit >= config_.n_units)
      throw std::invalid_argument(where + ": unit " + std::to_string(f.unit) + " is not below " +
                                  std::to_string(config_.n_units));
    if (is_psu_fault(f.type)) {
      const std::uint32_t q = f.psu ? *f.psu : psu_of(f.unit);
      if (q >= n_psus)
        throw std::invalid_argument(where + ": psu " + std::to_string(q) + " is not below " + std::to_string(n_psus));
      psus_[q].faults.push_back(i);
    } else {
      if (f.channel >= kChannelCount)
        throw std::invalid_argument(where + ": channel " + std::to_string(f.channel) + " out of range");
      units_[f.unit].own_faults.push_back(i);
    }
  }
  stuck_values_.assign(config_.faults.size(), std::numeric_limits<float>::quiet_NaN());
  stuck_captured_.assign(config_.faults.size(), 0);
}

bool LccSimulator::derate(std::uint32_t unit, double factor, double floor_a) {
  if (unit >= config_.n_units)
    throw std::out_of_range("unit " + std::to_string(unit) + " is not below " + std::to_string(config_.n_units));
  if (!(factor > 0.0 && factor <= 1.0))
    throw std::invalid_argument("derate factor " + std::to_string(factor) + " is outside (0, 1]");
  return units_[unit].operation.derate(time_s(), factor, floor_a);
}

void LccSimulator::apply_sensor_faults(UnitRuntime& unit, double t, float* row) {
  for (const std::size_t i : unit.own_faults) {
    const FaultSpec& f = config_.faults[i];
    if (!is_sensor_fault(f.type) || !f.active_at(t)) continue;
    const double s = f.effective_severity(t);
    float& v = row[f.channel];
    // Draws happen only while the fault is active, from the unit's own fault stream.
    RandomStream& rng = unit.faults;
    switch (f.type) {
      case FaultType::kSensorStuck:
        if (!stuck_captured_[i]) {
          stuck_values_[i] = v;
          stuck_captured_[i] = 1;
        }
        v = stuck_values_[i];
        break;
      case FaultType::kSensorDropout:
        if (rng.uniform() < 0.1 + 0.9 * s) v = std::numeric_limits<float>::quiet_NaN();
        break;
      case FaultType::kSensorSpikes:
        if (rng.uniform() < 0.02 + 0.18 * s) {
          const double sign = rng.uniform() < 0.5 ? -1.0 : 1.0;
          const double scale = std::max(std::fabs(static_cast<double>(v)), 1.0);
          v = static_cast<float>(v + sign * (0.2 + 0.8 * s) * scale);
        }
        break;
      default:
        break;
    }
  }
}

void LccSimulator::step(float* values, FaultLabel* labels, UnitContext* context) {
  const LaserParams& p = config_.params;
  const OperatingProfile& profile = config_.profile;
  const double t = time_s();
  const bool air_stepped = rack_.advance(t, profile, config_.lcc_id, schedule_log_);
  const double air_c = rack_.ambient_c(t, p, profile);  // exactly ambient_c under `steady`
  const double dt = config_.sample_period_s;
  const double hs_alpha = 1.0 - std::exp(-dt / p.heatsink_time_constant_s);
  const double psu_alpha = 1.0 - std::exp(-dt / p.psu_time_constant_s);

  // Rails first: the drivers see this sample's rail, loaded by the previous sample's draw.
  for (PsuState& psu : psus_) {
    double sag = 0.0, extra_ripple = 0.0;
    for (const std::size_t i : psu.faults) {
      const FaultSpec& f = config_.faults[i];
      const double s = f.effective_severity(t);
      if (f.type == FaultType::kPsuSag) sag = std::max(sag, kPsuSagMax * s);
      if (f.type == FaultType::kPsuRipple) extra_ripple = std::max(extra_ripple, kPsuRippleMaxMv * s);
    }
    psu.volts = p.psu_nominal_v * (1.0 - sag) - p.psu_output_resistance_ohm * psu.load_a;
    psu.ripple_mv = p.psu_ripple_mv + extra_ripple;
    // One reading per supply, shared by every unit on it (they read the same sensor).
    psu.reading[0] = static_cast<float>(psu.volts + p.noise_psu_voltage_v * psu.noise.normal());
    psu.reading[1] = static_cast<float>(psu.load_a + p.noise_psu_current_a * psu.noise.normal());
    psu.reading[2] = static_cast<float>(psu.temp_c + p.noise_psu_temp_c * psu.noise.normal());
    psu.reading[3] = static_cast<float>(psu.ripple_mv + p.noise_psu_ripple_mv * psu.noise.normal());
    psu.next_load_a = 0.0;
  }

  for (std::uint32_t u = 0; u < config_.n_units; ++u) {
    UnitRuntime& unit = units_[u];
    const std::uint32_t q = psu_of(u);
    PsuState& rail = psus_[q];

    OpEvent event = unit.operation.advance(t, p, profile, config_.lcc_id, u, schedule_log_);
    if (event == OpEvent::kNone && air_stepped) event = OpEvent::kAmbientStep;
    if (event == OpEvent::kPowerOn) unit.warming = true;
    const bool powered = unit.operation.powered();
    const double setpoint_a = unit.operation.setpoint_a(t);  // 0 when off

    DiodeModifiers mods;
    double cooling_loss = 0.0;
    // Faults act on the current the driver is asked for and on the diode's constants, so
    // they keep their physics at any setpoint (a degraded diode stays degraded).
    double current = setpoint_a;
    for (const std::size_t i : unit.own_faults) {
      const FaultSpec& f = config_.faults[i];
      const double s = f.effective_severity(t);
      if (s <= 0.0) continue;
      switch (f.type) {
        case FaultType::kDegradation: mods.extra_ageing_fraction += kDegradationAgeing * s; break;
        case FaultType::kFacetDamage:
          mods.facet_loss = std::max(mods.facet_loss, kFacetLossMin + kFacetLossPerSeverity * s);
          break;
        case FaultType::kCoolingLoss: cooling_loss = std::max(cooling_loss, kCoolingLossMax * s); break;
        case FaultType::kThermalResistance: mods.thermal_resistance_factor *= 1.0 + kThermalResistanceRise * s; break;
        case FaultType::kDriverOscillation:
          current *= 1.0 + kOscillationDepth * s * std::sin(kTwoPi * kOscillationHz * t + unit.oscillation_phase);
          break;
        case FaultType::kDriverOvershoot: current *= 1.0 + kOvershoot * s; break;
        default: break;
      }
    }
    // Rail ripple leaks into the drive current through the driver's finite rejection;
    // the ripple's phase at the sampling instant is random (it is far above Nyquist).
    current *= 1.0 + p.driver_ripple_rejection * rail.ripple_mv * std::sin(kTwoPi * unit.noise.uniform());
    current = std::min(current, driver_current_limit(unit.constants, p, rail.volts));
    current = std::max(current, 0.0);

    const double age_h = unit.constants.initial_age_h + t / 3600.0 * p.ageing_acceleration;
    const OperatingPoint op = solve_operating_point(unit.constants, p, mods, age_h, current, unit.heatsink_c);

    // TEC loop: current follows the heat load; a cooling loss makes each watt cost more
    // current, and heat the saturated TEC cannot pump raises the heatsink. The idle current
    // holds the default setpoint against the default rack air; warmer air or a colder
    // setpoint leak more heat in through heatsink_to_ambient_k_per_w (0 W under `steady`).
    // Switched off, the TEC is off and the heatsink relaxes to the rack air.
    const double heatsink_now = unit.heatsink_c;
    double tec_a = 0.0;
    if (powered) {
      const double tec_setpoint_c = unit.operation.tec_setpoint_c();
      const double leak_w = ((air_c - tec_setpoint_c) - (p.ambient_c - p.heatsink_setpoint_c)) /
                            p.heatsink_to_ambient_k_per_w;
      const double load_w = op.heat_w + leak_w;
      const double amps_per_watt = p.tec_a_per_w / (1.0 - cooling_loss);
      tec_a = std::min(p.tec_max_current_a, p.tec_idle_current_a + amps_per_watt * load_w);
      const double pumped_w = (tec_a - p.tec_idle_current_a) / amps_per_watt;
      const double excess_w = std::max(load_w - pumped_w, 0.0);
      const double settled_c = tec_setpoint_c + p.heatsink_to_ambient_k_per_w * excess_w;
      if (unit.warming) {
        // Warming ends once the heatsink is within warm_band_k of the value it settles at
        // (the setpoint, or above it when the TEC saturates): the thermal transient is over.
        // Until then the TEC also pumps the heat stored in the mount, C·dT/dt with
        // C = τ / heatsink_to_ambient_k_per_w.
        if (std::fabs(heatsink_now - settled_c) <= profile.warm_band_k) {
          unit.warming = false;
        } else {
          const double stored_w = (heatsink_now - settled_c) / p.heatsink_to_ambient_k_per_w;
          tec_a = std::clamp(tec_a + amps_per_watt * stored_w, -p.tec_max_current_a, p.tec_max_current_a);
        }
      }
      unit.heatsink_c += (settled_c - unit.heatsink_c) * hs_alpha;
    } else {
      unit.warming = false;
      unit.heatsink_c += (air_c - unit.heatsink_c) * hs_alpha;
    }
    rail.next_load_a += op.current_a + p.driver_quiescent_a;

    float* row = values + static_cast<std::size_t>(u) * kChannelCount;
    RandomStream& n = unit.noise;
    row[kDriveCurrentA] = static_cast<float>(op.current_a + p.noise_drive_current_a * n.normal());
    row[kForwardVoltageV] = static_cast<float>(op.voltage_v + p.noise_forward_voltage_v * n.normal());
    row[kOpticalPowerW] = static_cast<float>(op.optical_power_w + p.noise_optical_power_w * n.normal());
    row[kMonitorPdMa] =
        static_cast<float>(unit.constants.monitor_ma_per_w * op.internal_power_w + p.noise_monitor_pd_ma * n.normal());
    row[kDiodeTempC] = static_cast<float>(op.junction_temp_c + p.noise_diode_temp_c * n.normal());
    row[kHeatsinkTempC] = static_cast<float>(heatsink_now + p.noise_heatsink_temp_c * n.normal());
    row[kTecCurrentA] = static_cast<float>(tec_a + p.noise_tec_current_a * n.normal());
    std::copy(std::begin(rail.reading), std::end(rail.reading), row + kPsuVoltageV);
    apply_sensor_faults(unit, t, row);

    // Ground truth: the most recently started fault active on this unit or its supply.
    FaultLabel label;
    double latest = -1.0;
    const auto consider = [&](std::size_t i) {
      const FaultSpec& f = config_.faults[i];
      if (f.active_at(t) && f.start_s >= latest) {
        latest = f.start_s;
        label.type = f.type;
        label.severity = static_cast<float>(f.severity);
        label.fault = static_cast<std::int32_t>(i);
      }
    };
    for (const std::size_t i : unit.own_faults) consider(i);
    for (const std::size_t i : psus_[q].faults) consider(i);
    labels[u] = label;
    if (context) {
      const UnitState state = !powered          ? UnitState::kOff
                              : unit.warming    ? UnitState::kWarming
                              : unit.operation.derated() ? UnitState::kDerated
                                                         : UnitState::kOn;
      context[u] = UnitContext{static_cast<float>(setpoint_a), state, event};
    }
  }
  if (schedule_log_.size() > kMaxScheduleLog) {
    schedule_log_dropped_ += schedule_log_.size() - kMaxScheduleLog;
    schedule_log_.resize(kMaxScheduleLog);
  }

  for (PsuState& psu : psus_) {
    psu.load_a = psu.next_load_a;
    const double loss_w = psu.volts * psu.load_a * (1.0 / p.psu_efficiency - 1.0);
    psu.temp_c += (air_c + p.psu_thermal_k_per_w * loss_w - psu.temp_c) * psu_alpha;
  }
  ++samples_;
}

}  // namespace laserguard
