// Simulator bindings: run the C++ LCC simulator (the one lcc-sim uses) into numpy arrays,
// and expose the physics' operating point for tests. Type conversion and GIL release only.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "laserguard/fault_injection.hpp"
#include "laserguard/laser_physics.hpp"
#include "laserguard/lcc_simulator.hpp"
#include "laserguard/telemetry_schema.hpp"

namespace py = pybind11;
namespace lg = laserguard;

namespace {

lg::LaserParams params_from(const std::map<std::string, double>& overrides) {
  lg::LaserParams p;
  for (const auto& [name, value] : overrides) lg::set_laser_param(p, name, value);
  lg::validate_laser_params(p);
  return p;
}

py::dict simulate(std::uint32_t n_lccs, std::uint32_t first_lcc_id, std::uint32_t n_units, std::uint32_t units_per_psu,
                  double sample_period_s, std::uint64_t n_samples, std::uint64_t seed, const std::string& faults_json,
                  const std::string& fault_mix, const std::map<std::string, double>& overrides) {
  if (n_lccs == 0) throw py::value_error("n_lccs must be at least 1");
  const lg::LaserParams params = params_from(overrides);
  const double horizon = static_cast<double>(n_samples) * sample_period_s;
  std::vector<lg::FaultSpec> spec = faults_json.empty() ? std::vector<lg::FaultSpec>{} : lg::parse_fault_spec(faults_json);
  const auto faults = lg::assemble_faults(std::move(spec), fault_mix, seed, n_lccs, first_lcc_id, n_units,
                                          units_per_psu, horizon > 0 ? horizon : 1.0);

  const std::size_t rows = static_cast<std::size_t>(n_samples) * n_lccs * n_units;
  const auto r = static_cast<py::ssize_t>(rows);
  py::array_t<float> values({r, static_cast<py::ssize_t>(lg::kChannelCount)});
  py::array_t<double> time(r);
  py::array_t<std::uint32_t> lcc(r), unit(r), psu(r);
  py::array_t<std::uint8_t> fault_type(r);
  py::array_t<float> severity(r);
  float* v = values.mutable_data();
  double* t = time.mutable_data();
  std::uint32_t* l = lcc.mutable_data();
  std::uint32_t* u = unit.mutable_data();
  std::uint32_t* q = psu.mutable_data();
  std::uint8_t* ft = fault_type.mutable_data();
  float* sv = severity.mutable_data();
  {
    py::gil_scoped_release release;
    std::vector<lg::LccSimulator> sims;
    for (std::uint32_t i = 0; i < n_lccs; ++i) {
      lg::SimulatorConfig c;
      c.lcc_id = first_lcc_id + i;
      c.n_units = n_units;
      c.units_per_psu = units_per_psu;
      c.sample_period_s = sample_period_s;
      c.seed = seed;
      c.params = params;
      c.faults = faults;
      sims.emplace_back(std::move(c));
    }
    std::vector<lg::FaultLabel> labels(n_units);
    std::size_t row = 0;
    for (std::uint64_t k = 0; k < n_samples; ++k) {
      for (auto& sim : sims) {
        const double now = sim.time_s();
        sim.step(v + row * lg::kChannelCount, labels.data());
        for (std::uint32_t j = 0; j < n_units; ++j, ++row) {
          t[row] = now;
          l[row] = sim.config().lcc_id;
          u[row] = j;
          q[row] = sim.psu_of(j);
          ft[row] = static_cast<std::uint8_t>(labels[j].type);
          sv[row] = labels[j].severity;
        }
      }
    }
  }
  py::dict out;
  out["values"] = values;
  out["time_s"] = time;
  out["lcc"] = lcc;
  out["unit"] = unit;
  out["psu"] = psu;
  out["fault_type"] = fault_type;
  out["severity"] = severity;
  out["faults_json"] = lg::fault_spec_to_json(faults);
  return out;
}

}  // namespace

void bind_sim(py::module_& m) {
  py::tuple fault_names(lg::kFaultTypeCount);
  for (std::size_t i = 0; i < lg::kFaultTypeCount; ++i)
    fault_names[i] = lg::fault_type_name(static_cast<lg::FaultType>(i));
  m.attr("FAULT_TYPES") = fault_names;
  m.attr("FAULT_MIXES") = lg::fault_mix_names();

  m.def("laser_param_defaults", [] {
    const lg::LaserParams p;
    py::dict d;
    for (const auto& f : lg::laser_param_fields()) d[f.name] = p.*(f.member);
    return d;
  });

  m.def("simulate", &simulate, py::arg("n_lccs"), py::arg("first_lcc_id"), py::arg("n_units"),
        py::arg("units_per_psu"), py::arg("sample_period_s"), py::arg("n_samples"), py::arg("seed"),
        py::arg("faults_json"), py::arg("fault_mix"), py::arg("params"),
        "Run the LCC simulator; returns the labelled samples as numpy arrays (rows: time, lcc, unit).");

  m.def(
      "operating_point",
      [](double current_a, double heatsink_temp_c, double age_h, const std::map<std::string, double>& overrides) {
        const lg::LaserParams p = params_from(overrides);
        const lg::OperatingPoint op =
            lg::solve_operating_point(lg::nominal_unit_constants(p), p, lg::DiodeModifiers{}, age_h, current_a,
                                      heatsink_temp_c);
        py::dict d;
        d["current_a"] = op.current_a;
        d["voltage_v"] = op.voltage_v;
        d["optical_power_w"] = op.optical_power_w;
        d["junction_temp_c"] = op.junction_temp_c;
        d["heat_w"] = op.heat_w;
        return d;
      },
      py::arg("current_a"), py::arg("heatsink_temp_c"), py::arg("age_h") = 0.0,
      py::arg("params") = std::map<std::string, double>{},
      "Steady-state point of a nominal (no spread) diode at a drive current and heatsink temperature.");
}
