// The context stage's parameters (detection engine v3): dict <-> C++ struct, validation.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <string>
#include <vector>

#include "laserguard/model/context_params.hpp"

namespace py = pybind11;
namespace lg = laserguard;

lg::ContextParams context_params_from_dict(const py::dict& d) {
  lg::ContextParams p;
  p.n_channels = d["n_channels"].cast<std::uint32_t>();
  p.uses_unit_context = d["uses_unit_context"].cast<bool>();
  p.calibration = static_cast<lg::CalibrationMode>(d["calibration"].cast<std::uint8_t>());
  p.forest_input = static_cast<lg::ForestInput>(d["forest_input"].cast<std::uint8_t>());
  p.context = d["context"].cast<std::vector<std::uint32_t>>();
  p.context_center = d["context_center"].cast<std::vector<double>>();
  p.context_scale = d["context_scale"].cast<std::vector<double>>();
  p.context_min = d["context_min"].cast<std::vector<double>>();
  p.context_max = d["context_max"].cast<std::vector<double>>();
  const auto sources = d["filter_source"].cast<std::vector<std::uint32_t>>();
  const auto taus = d["filter_tau_s"].cast<std::vector<double>>();
  if (sources.size() != taus.size())
    throw std::invalid_argument("context stage: " + std::to_string(sources.size()) + " filter sources but " +
                                std::to_string(taus.size()) + " filter_tau_s");
  for (std::size_t i = 0; i < sources.size(); ++i) p.filters.push_back({sources[i], taus[i]});
  p.term_a = d["term_a"].cast<std::vector<std::uint32_t>>();
  p.term_b = d["term_b"].cast<std::vector<std::uint32_t>>();
  p.monitored = d["monitored"].cast<std::vector<std::uint32_t>>();
  p.coef = d["coef"].cast<std::vector<double>>();
  p.resid_sigma = d["resid_sigma"].cast<std::vector<double>>();
  p.prior_var = d["prior_var"].cast<std::vector<double>>();
  // Absent (a format 2.1 dict): the gain is taken as known, as 2.1 files are read.
  p.gain_sd = d.contains("gain_sd") ? d["gain_sd"].cast<std::vector<double>>()
                                    : std::vector<double>(p.monitored.size(), 0.0);
  p.jump_ref = d.contains("jump_ref") ? d["jump_ref"].cast<std::vector<double>>()
                                      : std::vector<double>(p.context.size(), 1.0);
  p.jump_scale = d.contains("jump_scale") ? d["jump_scale"].cast<std::vector<double>>()
                                          : std::vector<double>(p.context.size(), 0.0);
  p.calib_tau_s = d["calib_tau_s"].cast<double>();
  p.calib_prior_s = d["calib_prior_s"].cast<double>();
  p.gain_limit = d["gain_limit"].cast<double>();
  p.max_dt_s = d["max_dt_s"].cast<double>();
  p.calib_anchor_s = d["calib_anchor_s"].cast<double>();
  p.calib_max_deviation = d["calib_max_deviation"].cast<double>();
  p.calib_change_s = d["calib_change_s"].cast<double>();
  p.level_tau_s = d["level_tau_s"].cast<double>();
  p.spread_tau_s = d["spread_tau_s"].cast<double>();
  p.spe_tau_s = d["spe_tau_s"].cast<double>();
  p.level_scale = d["level_scale"].cast<std::vector<double>>();
  p.spread_ref = d["spread_ref"].cast<std::vector<double>>();
  p.spread_scale = d["spread_scale"].cast<std::vector<double>>();
  p.judge_spread = d["judge_spread"].cast<std::vector<std::uint8_t>>();
  p.n_components = d["n_components"].cast<std::uint32_t>();
  p.loadings = d["loadings"].cast<std::vector<double>>();
  p.eigenvalues = d["eigenvalues"].cast<std::vector<double>>();
  p.spe_limit = d["spe_limit"].cast<double>();
  p.t2_limit = d["t2_limit"].cast<double>();
  p.change_hold_s = d["change_hold_s"].cast<double>();
  p.change_relax = d["change_relax"].cast<double>();
  return p;
}

py::dict context_params_to_dict(const lg::ContextParams& p) {
  py::dict d;
  d["n_channels"] = p.n_channels;
  d["uses_unit_context"] = p.uses_unit_context;
  d["calibration"] = static_cast<int>(p.calibration);
  d["forest_input"] = static_cast<int>(p.forest_input);
  d["context"] = p.context;
  d["context_center"] = p.context_center;
  d["context_scale"] = p.context_scale;
  d["context_min"] = p.context_min;
  d["context_max"] = p.context_max;
  std::vector<std::uint32_t> sources;
  std::vector<double> taus;
  for (const auto& f : p.filters) {
    sources.push_back(f.source);
    taus.push_back(f.tau_s);
  }
  d["filter_source"] = sources;
  d["filter_tau_s"] = taus;
  d["term_a"] = p.term_a;
  d["term_b"] = p.term_b;
  d["monitored"] = p.monitored;
  d["coef"] = p.coef;
  d["resid_sigma"] = p.resid_sigma;
  d["prior_var"] = p.prior_var;
  d["gain_sd"] = p.gain_sd;
  d["jump_ref"] = p.jump_ref;
  d["jump_scale"] = p.jump_scale;
  d["calib_tau_s"] = p.calib_tau_s;
  d["calib_prior_s"] = p.calib_prior_s;
  d["gain_limit"] = p.gain_limit;
  d["max_dt_s"] = p.max_dt_s;
  d["calib_anchor_s"] = p.calib_anchor_s;
  d["calib_max_deviation"] = p.calib_max_deviation;
  d["calib_change_s"] = p.calib_change_s;
  d["level_tau_s"] = p.level_tau_s;
  d["spread_tau_s"] = p.spread_tau_s;
  d["spe_tau_s"] = p.spe_tau_s;
  d["level_scale"] = p.level_scale;
  d["spread_ref"] = p.spread_ref;
  d["spread_scale"] = p.spread_scale;
  d["judge_spread"] = p.judge_spread;
  d["n_components"] = p.n_components;
  d["loadings"] = p.loadings;
  d["eigenvalues"] = p.eigenvalues;
  d["spe_limit"] = p.spe_limit;
  d["t2_limit"] = p.t2_limit;
  d["change_hold_s"] = p.change_hold_s;
  d["change_relax"] = p.change_relax;
  return d;
}

void bind_context(py::module_& m) {
  m.def(
      "validate_context_params", [](const py::dict& d) { lg::validate_context_params(context_params_from_dict(d)); },
      py::arg("params"), "Raise ValueError naming the first out-of-range field of a v3 context stage.");
  m.attr("CONTEXT_SIGNALS") = py::make_tuple("one", "powered", "setpoint");  // then context channels, filters
}
