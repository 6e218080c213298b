// Simulator bindings: run the C++ LCC simulator (the one lcc-sim uses) into numpy arrays,
// list the operating profiles, and expose the physics' operating point for tests. Type
// conversion and GIL release only.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "laserguard/sim/dataset_generator.hpp"
#include "laserguard/sim/fault_injection.hpp"
#include "laserguard/sim/laser_physics.hpp"
#include "laserguard/sim/operating_schedule.hpp"
#include "laserguard/wire/telemetry_schema.hpp"

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
                  const std::string& fault_mix, const std::map<std::string, double>& overrides,
                  const std::string& profile, const std::string& schedule_json) {
  lg::DatasetSpec spec;
  spec.n_lccs = n_lccs;
  spec.first_lcc_id = first_lcc_id;
  spec.n_units = n_units;
  spec.units_per_psu = units_per_psu;
  spec.sample_period_s = sample_period_s;
  spec.n_samples = n_samples;
  spec.seed = seed;
  // Overrides name physics or profile parameters (the profile's own values first).
  spec.profile = lg::operating_profile(profile);
  for (const auto& [name, value] : overrides) lg::set_sim_param(spec.params, spec.profile, name, value);
  lg::validate_laser_params(spec.params);
  lg::validate_operating_profile(spec.profile);
  if (!schedule_json.empty()) spec.schedule = lg::parse_schedule(schedule_json);
  lg::check_schedule(spec.schedule, spec.profile, spec.params, first_lcc_id, n_lccs, n_units);
  const double horizon = static_cast<double>(n_samples) * sample_period_s;
  spec.faults = lg::assemble_faults(faults_json.empty() ? std::vector<lg::FaultSpec>{} : lg::parse_fault_spec(faults_json),
                                    fault_mix, seed, n_lccs, first_lcc_id, n_units, units_per_psu,
                                    horizon > 0 ? horizon : 1.0);

  const auto r = static_cast<py::ssize_t>(lg::dataset_rows(spec));
  py::array_t<float> values({r, static_cast<py::ssize_t>(lg::kChannelCount)});
  py::array_t<double> time(r);
  py::array_t<std::uint32_t> lcc(r), unit(r), psu(r);
  py::array_t<std::uint8_t> fault_type(r);
  py::array_t<float> severity(r), setpoint(r);
  py::array_t<std::uint8_t> state(r), op_event(r);
  const lg::DatasetColumns columns{values.mutable_data(),   time.mutable_data(),     lcc.mutable_data(),
                                   unit.mutable_data(),     psu.mutable_data(),      fault_type.mutable_data(),
                                   severity.mutable_data(), setpoint.mutable_data(), state.mutable_data(),
                                   op_event.mutable_data()};
  std::vector<lg::OperatingChange> applied;
  {
    py::gil_scoped_release release;
    applied = lg::generate_dataset(spec, columns);
  }
  py::dict out;
  out["values"] = values;
  out["time_s"] = time;
  out["lcc"] = lcc;
  out["unit"] = unit;
  out["psu"] = psu;
  out["fault_type"] = fault_type;
  out["severity"] = severity;
  out["setpoint_a"] = setpoint;
  out["state"] = state;
  out["op_event"] = op_event;
  out["faults_json"] = lg::fault_spec_to_json(spec.faults);
  out["schedule_json"] = lg::schedule_to_json(applied);
  return out;
}

}  // namespace

void bind_sim(py::module_& m) {
  py::tuple fault_names(lg::kFaultTypeCount);
  for (std::size_t i = 0; i < lg::kFaultTypeCount; ++i)
    fault_names[i] = lg::fault_type_name(static_cast<lg::FaultType>(i));
  m.attr("FAULT_TYPES") = fault_names;
  m.attr("FAULT_MIXES") = lg::fault_mix_names();
  py::tuple event_names(lg::kOpEventCount);
  for (std::size_t i = 0; i < lg::kOpEventCount; ++i) event_names[i] = lg::op_event_name(static_cast<lg::OpEvent>(i));
  m.attr("OP_EVENTS") = event_names;  // index 0 is "" (no change)
  m.attr("OPERATING_PROFILES") = lg::operating_profile_names();

  m.def(
      "operating_profile_defaults",
      [](const std::string& name) {
        const lg::OperatingProfile p = lg::operating_profile(name);
        py::dict d;
        for (const auto& f : lg::profile_param_fields()) d[f.name] = p.*(f.member);
        return d;
      },
      py::arg("name"), "Every parameter of the named operating profile with its value.");

  m.def("laser_param_defaults", [] {
    const lg::LaserParams p;
    py::dict d;
    for (const auto& f : lg::laser_param_fields()) d[f.name] = p.*(f.member);
    return d;
  });

  m.def("simulate", &simulate, py::arg("n_lccs"), py::arg("first_lcc_id"), py::arg("n_units"),
        py::arg("units_per_psu"), py::arg("sample_period_s"), py::arg("n_samples"), py::arg("seed"),
        py::arg("faults_json"), py::arg("fault_mix"), py::arg("params"), py::arg("profile") = "steady",
        py::arg("schedule_json") = "",
        "Run the LCC simulator; returns the labelled samples as numpy arrays (rows: time, lcc, unit), "
        "their operating context and the operating changes applied.");

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
