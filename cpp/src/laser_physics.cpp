#include "laserguard/laser_physics.hpp"

#include <algorithm>
#include <cmath>

#include "laserguard/random_stream.hpp"

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

double threshold_at(const UnitConstants& u, double age_frac, double junction_temp_c, const LaserParams& p) {
  const double aged = u.threshold_current_a + p.ageing_threshold_share * age_frac * p.nominal_drive_current_a;
  return aged * std::exp((junction_temp_c - kReferenceTempC) / u.characteristic_temp_k);
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
