#pragma once
// Physics of one 9xx-nm broad-area pump laser diode on a TEC-held heatsink, driven by a
// linear current driver from a shared power-supply rail (design §3).
//
// Every parameter lives in LaserParams with a physically sourced default. Sources:
//  [C13] Crump et al., "975 nm high power diode lasers with high efficiency and large
//        optical cavity", IEEE JSTQE 19(4), 2013: > 65 % wall-plug efficiency at ~10 W,
//        slope efficiency 1.0–1.15 W/A, threshold ~0.3–0.6 A, R_s ~ 10–30 mΩ.
//  [CM12] Coldren, Corzine & Mašanović, "Diode Lasers and Photonic Integrated Circuits",
//        2nd ed. 2012: I_th(T) = I_th0·exp(ΔT/T0), T0 = 100–160 K for (In)GaAs QW lasers;
//        η(T) = η0·exp(−ΔT/T1) with T1 of several hundred K; dV/dT ≈ −1.5 mV/K (bandgap).
//  [ME98] Meeker & Escobar, "Statistical Methods for Reliability Data", 1998, GaAs laser
//        degradation data (../shared/data/laser/): operating current at constant power rises
//        1.56–3.02 %/kh per unit; least-squares slopes through the origin have a log-mean of
//        ln(2.00 %/kh) and a log-sd of 0.211 (fitted by tests/test_physics.py from the file).
//  [TEC] Typical single-stage TEC modules (e.g. TE Technology / Laird datasheets): heat
//        pumped ~3–5 W per ampere near ΔT ≈ 0, max current 3–6 A.
// Manufacturing spreads are a few percent, typical of datasheet min/max ranges.
#include <cstdint>
#include <string>
#include <vector>

namespace laserguard {

struct LaserParams {
  // --- diode (per unit, before spread) ---
  double threshold_current_a = 0.5;        // I_th0 at 25 °C [C13]
  double characteristic_temp_k = 130.0;    // T0 of I_th(T) [CM12]
  double slope_efficiency_w_per_a = 1.05;  // η0 at 25 °C, below hν/q = 1.27 W/A at 976 nm [C13]
  double slope_temp_k = 600.0;             // T1 of η(T) = η0·exp(−ΔT/T1) [CM12]
  double turn_on_voltage_v = 1.40;         // V0 at 25 °C [C13]
  double turn_on_voltage_per_k = -0.0015;  // dV0/dT (bandgap shrinkage) [CM12]
  double series_resistance_ohm = 0.020;    // R_s [C13]
  double thermal_resistance_k_per_w = 2.5; // R_th junction → heatsink, single emitter on CuW
  double monitor_ma_per_w = 1.5;           // back-facet photodiode responsivity × tap ratio
  double nominal_drive_current_a = 8.0;    // operating point: ≈ 7.5 W, ≈ 64 % wall-plug [C13]

  // --- heatsink and TEC loop ---
  double heatsink_setpoint_c = 25.0;       // TEC controller set point
  double ambient_c = 30.0;                 // rack air temperature
  double heatsink_time_constant_s = 4.0;   // thermal mass of the mount / TEC loop settling
  double heatsink_to_ambient_k_per_w = 10.0;  // rise per watt the TEC cannot pump
  double tec_a_per_w = 0.25;               // TEC current per watt pumped (≈ 4 W/A) [TEC]
  double tec_max_current_a = 4.0;          // TEC driver limit [TEC]
  double tec_idle_current_a = 0.2;         // holds set point against ambient

  // --- power supply rail (shared by units_per_psu units) ---
  double psu_nominal_v = 3.3;              // low-voltage rail feeding linear current drivers
  double psu_output_resistance_ohm = 0.0005;  // load regulation
  double driver_dropout_v = 0.45;          // headroom the linear driver needs
  double driver_quiescent_a = 0.05;        // per unit
  double psu_efficiency = 0.90;
  double psu_thermal_k_per_w = 0.3;        // PSU case rise per watt lost (forced-air cooled)
  double psu_time_constant_s = 30.0;
  double psu_ripple_mv = 12.0;             // nominal peak-to-peak ripple
  double driver_ripple_rejection = 1e-4;   // fraction of I per mV of rail ripple (finite PSRR)

  // --- ageing [ME98] ---
  double ageing_median_pct_per_kh = 2.00;  // median operating-current rise at constant power
  double ageing_log_sd = 0.211;            // unit-to-unit spread of that rate (lognormal)
  double ageing_threshold_share = 0.5;     // share of the rise due to I_th (rest: η loss)
  double initial_age_max_h = 4000.0;       // units enter service at ages uniform in [0, this]
  double ageing_acceleration = 1.0;        // simulated ageing hours per real hour

  // --- manufacturing spread (relative 1-sigma, normal) ---
  double spread_threshold = 0.05;
  double spread_slope = 0.03;
  double spread_series_resistance = 0.08;
  double spread_turn_on_voltage = 0.005;
  double spread_thermal_resistance = 0.08;
  double spread_char_temp = 0.05;
  double spread_monitor = 0.05;

  // --- sensor noise (absolute 1-sigma, per channel in frame order) ---
  double noise_drive_current_a = 0.004;
  double noise_forward_voltage_v = 0.002;
  double noise_optical_power_w = 0.01;
  double noise_monitor_pd_ma = 0.015;
  double noise_diode_temp_c = 0.05;
  double noise_heatsink_temp_c = 0.03;
  double noise_tec_current_a = 0.01;
  double noise_psu_voltage_v = 0.003;
  double noise_psu_current_a = 0.05;
  double noise_psu_temp_c = 0.1;
  double noise_psu_ripple_mv = 0.8;
};

// Every LaserParams field by name (for overrides from Python and tools).
struct LaserParamField {
  const char* name;
  double LaserParams::*member;
};
const std::vector<LaserParamField>& laser_param_fields();
// Sets the named field; throws std::invalid_argument naming an unknown field.
void set_laser_param(LaserParams& p, const std::string& name, double value);
// Throws std::invalid_argument naming the first non-physical value (negative time
// constant, efficiency outside (0, 1], ...).
void validate_laser_params(const LaserParams& p);

// One unit's own constants after manufacturing spread and its ageing rate.
struct UnitConstants {
  double threshold_current_a;
  double characteristic_temp_k;
  double slope_efficiency_w_per_a;
  double turn_on_voltage_v;
  double series_resistance_ohm;
  double thermal_resistance_k_per_w;
  double monitor_ma_per_w;
  double ageing_pct_per_kh;
  double initial_age_h;
};

class RandomStream;
UnitConstants draw_unit_constants(const LaserParams& p, RandomStream& rng);
// A unit exactly at the nominal parameters (no spread), new (age 0).
UnitConstants nominal_unit_constants(const LaserParams& p);

// Modifiers the fault injector applies on top of a unit's constants at one instant.
struct DiodeModifiers {
  double extra_ageing_fraction = 0.0;    // additional constant-power current rise (degradation)
  double facet_loss = 0.0;               // fraction of output power lost at the front facet (COD)
  double thermal_resistance_factor = 1.0;
};

// Steady-state electrical/optical/thermal point of the diode at a given current and
// heatsink temperature (the junction settles in ms, far faster than any sample period).
struct OperatingPoint {
  double current_a;
  double voltage_v;
  double optical_power_w;     // leaving the front facet
  double internal_power_w;    // generated in the cavity (what the back-facet monitor sees)
  double junction_temp_c;
  double heat_w;              // V·I − P, to be pumped by the TEC
};

OperatingPoint solve_operating_point(const UnitConstants& u, const LaserParams& p, const DiodeModifiers& m,
                                     double age_h, double current_a, double heatsink_temp_c);

// Largest current the linear driver can push with the given rail voltage.
double driver_current_limit(const UnitConstants& u, const LaserParams& p, double rail_v);

}  // namespace laserguard
