#include "laserguard/sim/laser_physics.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "laserguard/sim/random_stream.hpp"

namespace laserguard {
namespace {

constexpr double kReferenceTempC = 25.0;

double spread(RandomStream& rng, double nominal, double relative_sigma) {
  // Clamp at ±4 sigma so a rare draw cannot produce a non-physical (negative) constant.
  const double z = std::clamp(rng.normal(), -4.0, 4.0);
  return nominal * (1.0 + relative_sigma * z);
}

// Fraction by which the constant-power operating current has risen [ME98].
double age_fraction(const UnitConstants& u, double age_h) { return u.ageing_pct_per_kh / 100.0 * age_h / 1000.0; }

}  // namespace

const std::vector<LaserParamField>& laser_param_fields() {
  static const std::vector<LaserParamField> fields = {
      {"threshold_current_a", &LaserParams::threshold_current_a},
      {"characteristic_temp_k", &LaserParams::characteristic_temp_k},
      {"slope_efficiency_w_per_a", &LaserParams::slope_efficiency_w_per_a},
      {"slope_temp_k", &LaserParams::slope_temp_k},
      {"turn_on_voltage_v", &LaserParams::turn_on_voltage_v},
      {"turn_on_voltage_per_k", &LaserParams::turn_on_voltage_per_k},
      {"series_resistance_ohm", &LaserParams::series_resistance_ohm},
      {"thermal_resistance_k_per_w", &LaserParams::thermal_resistance_k_per_w},
      {"monitor_ma_per_w", &LaserParams::monitor_ma_per_w},
      {"nominal_drive_current_a", &LaserParams::nominal_drive_current_a},
      {"heatsink_setpoint_c", &LaserParams::heatsink_setpoint_c},
      {"ambient_c", &LaserParams::ambient_c},
      {"heatsink_time_constant_s", &LaserParams::heatsink_time_constant_s},
      {"heatsink_to_ambient_k_per_w", &LaserParams::heatsink_to_ambient_k_per_w},
      {"tec_a_per_w", &LaserParams::tec_a_per_w},
      {"tec_max_current_a", &LaserParams::tec_max_current_a},
      {"tec_idle_current_a", &LaserParams::tec_idle_current_a},
      {"psu_nominal_v", &LaserParams::psu_nominal_v},
      {"psu_output_resistance_ohm", &LaserParams::psu_output_resistance_ohm},
      {"driver_dropout_v", &LaserParams::driver_dropout_v},
      {"driver_quiescent_a", &LaserParams::driver_quiescent_a},
      {"psu_efficiency", &LaserParams::psu_efficiency},
      {"psu_thermal_k_per_w", &LaserParams::psu_thermal_k_per_w},
      {"psu_time_constant_s", &LaserParams::psu_time_constant_s},
      {"psu_ripple_mv", &LaserParams::psu_ripple_mv},
      {"driver_ripple_rejection", &LaserParams::driver_ripple_rejection},
      {"ageing_median_pct_per_kh", &LaserParams::ageing_median_pct_per_kh},
      {"ageing_log_sd", &LaserParams::ageing_log_sd},
      {"ageing_threshold_share", &LaserParams::ageing_threshold_share},
      {"initial_age_max_h", &LaserParams::initial_age_max_h},
      {"ageing_acceleration", &LaserParams::ageing_acceleration},
      {"spread_threshold", &LaserParams::spread_threshold},
      {"spread_slope", &LaserParams::spread_slope},
      {"spread_series_resistance", &LaserParams::spread_series_resistance},
      {"spread_turn_on_voltage", &LaserParams::spread_turn_on_voltage},
      {"spread_thermal_resistance", &LaserParams::spread_thermal_resistance},
      {"spread_char_temp", &LaserParams::spread_char_temp},
      {"spread_monitor", &LaserParams::spread_monitor},
      {"noise_drive_current_a", &LaserParams::noise_drive_current_a},
      {"noise_forward_voltage_v", &LaserParams::noise_forward_voltage_v},
      {"noise_optical_power_w", &LaserParams::noise_optical_power_w},
      {"noise_monitor_pd_ma", &LaserParams::noise_monitor_pd_ma},
      {"noise_diode_temp_c", &LaserParams::noise_diode_temp_c},
      {"noise_heatsink_temp_c", &LaserParams::noise_heatsink_temp_c},
      {"noise_tec_current_a", &LaserParams::noise_tec_current_a},
      {"noise_psu_voltage_v", &LaserParams::noise_psu_voltage_v},
      {"noise_psu_current_a", &LaserParams::noise_psu_current_a},
      {"noise_psu_temp_c", &LaserParams::noise_psu_temp_c},
      {"noise_psu_ripple_mv", &LaserParams::noise_psu_ripple_mv},
  };
  return fields;
}

void set_laser_param(LaserParams& p, const std::string& name, double value) {
  for (const auto& f : laser_param_fields()) {
    if (name == f.name) {
      p.*(f.member) = value;
      return;
    }
  }
  throw std::invalid_argument("unknown laser parameter '" + name + "'");
}

void validate_laser_params(const LaserParams& p) {
  for (const auto& f : laser_param_fields()) {
    const double v = p.*(f.member);
    const std::string name = f.name;
    if (!std::isfinite(v)) throw std::invalid_argument("laser parameter " + name + " is not finite");
    // Only the voltage temperature coefficient may be negative.
    if (v < 0.0 && name != "turn_on_voltage_per_k")
      throw std::invalid_argument("laser parameter " + name + " = " + std::to_string(v) + " is negative");
  }
  const auto positive = [](double v, const char* name) {
    if (!(v > 0.0)) throw std::invalid_argument(std::string("laser parameter ") + name + " = " + std::to_string(v) +
                                                " must be positive");
  };
  positive(p.characteristic_temp_k, "characteristic_temp_k");
  positive(p.slope_temp_k, "slope_temp_k");
  positive(p.slope_efficiency_w_per_a, "slope_efficiency_w_per_a");
  positive(p.series_resistance_ohm, "series_resistance_ohm");
  positive(p.heatsink_time_constant_s, "heatsink_time_constant_s");
  positive(p.psu_time_constant_s, "psu_time_constant_s");
  positive(p.tec_a_per_w, "tec_a_per_w");
  positive(p.nominal_drive_current_a, "nominal_drive_current_a");
  if (p.psu_efficiency > 1.0 || !(p.psu_efficiency > 0.0))
    throw std::invalid_argument("laser parameter psu_efficiency = " + std::to_string(p.psu_efficiency) +
                                " is outside (0, 1]");
  if (p.ageing_threshold_share > 1.0)
    throw std::invalid_argument("laser parameter ageing_threshold_share = " +
                                std::to_string(p.ageing_threshold_share) + " is above 1");
  if (p.nominal_drive_current_a <= p.threshold_current_a)
    throw std::invalid_argument("nominal_drive_current_a " + std::to_string(p.nominal_drive_current_a) +
                                " A is not above threshold_current_a " + std::to_string(p.threshold_current_a) + " A");
}

UnitConstants draw_unit_constants(const LaserParams& p, RandomStream& rng) {
  UnitConstants u{};
  u.threshold_current_a = spread(rng, p.threshold_current_a, p.spread_threshold);
  u.characteristic_temp_k = spread(rng, p.characteristic_temp_k, p.spread_char_temp);
  u.slope_efficiency_w_per_a = spread(rng, p.slope_efficiency_w_per_a, p.spread_slope);
  u.turn_on_voltage_v = spread(rng, p.turn_on_voltage_v, p.spread_turn_on_voltage);
  u.series_resistance_ohm = spread(rng, p.series_resistance_ohm, p.spread_series_resistance);
  u.thermal_resistance_k_per_w = spread(rng, p.thermal_resistance_k_per_w, p.spread_thermal_resistance);
  u.monitor_ma_per_w = spread(rng, p.monitor_ma_per_w, p.spread_monitor);
  u.ageing_pct_per_kh = p.ageing_median_pct_per_kh * std::exp(p.ageing_log_sd * std::clamp(rng.normal(), -4.0, 4.0));
  u.initial_age_h = rng.uniform(0.0, p.initial_age_max_h);
  return u;
}

UnitConstants nominal_unit_constants(const LaserParams& p) {
  return UnitConstants{p.threshold_current_a,  p.characteristic_temp_k,      p.slope_efficiency_w_per_a,
                       p.turn_on_voltage_v,    p.series_resistance_ohm,      p.thermal_resistance_k_per_w,
                       p.monitor_ma_per_w,     p.ageing_median_pct_per_kh, 0.0};
}

OperatingPoint solve_operating_point(const UnitConstants& u, const LaserParams& p, const DiodeModifiers& m,
                                     double age_h, double current_a, double heatsink_temp_c) {
  // Ageing as measured by [ME98]: at constant power P_ref the operating current rises by
  // `a`. A share of that comes from a higher threshold, the rest from a lower slope
  // efficiency chosen so that I_op(P_ref) = I_nom·(1 + a) exactly.
  const double a = age_fraction(u, age_h) + m.extra_ageing_fraction;
  const double i_nom = p.nominal_drive_current_a;
  const double p_ref = u.slope_efficiency_w_per_a * (i_nom - u.threshold_current_a);
  const double i_th_aged = u.threshold_current_a + p.ageing_threshold_share * a * i_nom;
  const double eta_aged = p_ref / std::max(i_nom * (1.0 + a) - i_th_aged, 1e-6);
  const double r_th = u.thermal_resistance_k_per_w * m.thermal_resistance_factor;

  OperatingPoint op{};
  op.current_a = std::max(current_a, 0.0);
  double tj = heatsink_temp_c;
  // Junction temperature and output power depend on each other; the map is a strong
  // contraction (R_th·|dP/dT| ≪ 1), so a few fixed-point steps converge to < 1 µK.
  for (int iter = 0; iter < 12; ++iter) {
    const double dt = tj - kReferenceTempC;
    const double i_th = i_th_aged * std::exp(dt / u.characteristic_temp_k);
    const double eta = eta_aged * std::exp(-dt / p.slope_temp_k);
    op.internal_power_w = op.current_a > i_th ? eta * (op.current_a - i_th) : 0.0;
    op.optical_power_w = op.internal_power_w * (1.0 - m.facet_loss);
    const double v0 = u.turn_on_voltage_v + p.turn_on_voltage_per_k * dt;
    op.voltage_v = op.current_a > 0.0 ? v0 + op.current_a * u.series_resistance_ohm : 0.0;
    op.heat_w = std::max(op.voltage_v * op.current_a - op.optical_power_w, 0.0);
    tj = heatsink_temp_c + r_th * op.heat_w;
  }
  op.junction_temp_c = tj;
  return op;
}

double driver_current_limit(const UnitConstants& u, const LaserParams& p, double rail_v) {
  const double headroom = rail_v - p.driver_dropout_v - u.turn_on_voltage_v;
  return std::max(headroom / u.series_resistance_ohm, 0.0);
}

}  // namespace laserguard
