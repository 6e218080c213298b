// The per-unit baseline stage: type conversion, shape checks and GIL release only.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>

#include "laserguard/features/baseline_stage.hpp"
#include "laserguard/features/unit_scorer.hpp"
#include "laserguard/model/forest_model.hpp"
#include "laserguard/model/baseline_params.hpp"
#include "power_of_two_arg.hpp"

namespace py = pybind11;
namespace lg = laserguard;

lg::ContextParams context_params_from_dict(const py::dict& d);  // context_bindings.cpp

namespace {

template <typename T>
using CArray = py::array_t<T, py::array::c_style | py::array::forcecast>;

std::string shape_text(const py::array& a) {
  std::string s = "(";
  for (py::ssize_t i = 0; i < a.ndim(); ++i) s += (i ? ", " : "") + std::to_string(a.shape(i));
  return s + (a.ndim() == 1 ? ",)" : ")");
}

// Optional per-row context arrays (None: unknown setpoint / every unit on), shape-checked.
struct ContextArrays {
  std::optional<CArray<float>> setpoint;
  std::optional<CArray<std::uint8_t>> state;
  lg::UnitContext view() const {
    return {setpoint ? setpoint->data() : nullptr, state ? state->data() : nullptr};
  }
};

ContextArrays context_arrays(const py::object& setpoint, const py::object& state, py::ssize_t n) {
  ContextArrays c;
  if (!setpoint.is_none()) {
    c.setpoint = CArray<float>::ensure(setpoint);
    if (!c.setpoint || c.setpoint->ndim() != 1 || c.setpoint->shape(0) != n)
      throw std::invalid_argument("setpoint must have shape (" + std::to_string(n) + ",), got " +
                                  (c.setpoint ? shape_text(*c.setpoint) : std::string("a non-array")));
  }
  if (!state.is_none()) {
    const py::array raw = py::array::ensure(state);
    if (!raw || (raw.dtype().kind() != 'u' && raw.dtype().kind() != 'i'))
      throw py::type_error("state must be an integer array of UnitState codes (0 off, 1 warming, 2 on, 3 derated)");
    if (raw.ndim() != 1 || raw.shape(0) != n)
      throw std::invalid_argument("state must have shape (" + std::to_string(n) + ",), got " + shape_text(raw));
    // Range-checked before narrowing to uint8 (a uint8 array is used as it is, without a copy).
    const auto wide = py::array_t<std::int64_t, py::array::c_style | py::array::forcecast>::ensure(raw);
    for (py::ssize_t i = 0; i < n; ++i)
      if (wide.data()[i] < 0 || wide.data()[i] > 3)
        throw std::invalid_argument("state[" + std::to_string(i) + "] = " + std::to_string(wide.data()[i]) +
                                    " is not a UnitState code (0 off, 1 warming, 2 on, 3 derated)");
    c.state = CArray<std::uint8_t>::ensure(raw);
  }
  return c;
}

}  // namespace

lg::BaselineParams baseline_params_from_dict(const py::dict& d) {
  lg::BaselineParams p;
  p.n_channels = d["n_channels"].cast<std::uint32_t>();
  p.baseline_samples = d["baseline_samples"].cast<std::uint32_t>();
  p.baseline_s = d["baseline_s"].cast<double>();
  p.window = d["window"].cast<std::uint32_t>();
  p.missing_flags = d["missing_flags"].cast<bool>();
  p.mean_tau_s = d["mean_tau_s"].cast<double>();
  p.threshold = d["threshold"].cast<double>();
  p.fleet_cut = d["fleet_cut"].cast<double>();
  p.sigma_floor = d["sigma_floor"].cast<std::vector<double>>();
  p.stuck_run = d["stuck_run"].cast<std::vector<std::uint32_t>>();
  p.scored = d["scored"].cast<std::vector<std::uint32_t>>();
  p.level_scale = d["level_scale"].cast<std::vector<double>>();
  p.spread_scale = d["spread_scale"].cast<std::vector<double>>();
  p.judge_spread = d["judge_spread"].cast<std::vector<std::uint8_t>>();
  p.confirm_rows = d["confirm_rows"].cast<std::uint32_t>();
  return p;
}

py::dict baseline_params_to_dict(const lg::BaselineParams& p) {
  py::dict d;
  d["n_channels"] = p.n_channels;
  d["baseline_samples"] = p.baseline_samples;
  d["baseline_s"] = p.baseline_s;
  d["window"] = p.window;
  d["missing_flags"] = p.missing_flags;
  d["mean_tau_s"] = p.mean_tau_s;
  d["threshold"] = p.threshold;
  d["fleet_cut"] = p.fleet_cut;
  d["sigma_floor"] = p.sigma_floor;
  d["stuck_run"] = p.stuck_run;
  d["scored"] = p.scored;
  d["level_scale"] = p.level_scale;
  d["spread_scale"] = p.spread_scale;
  d["judge_spread"] = p.judge_spread;
  d["confirm_rows"] = p.confirm_rows;
  return d;
}

void bind_baseline(py::module_& m) {
  m.attr("DEVIATION_KINDS") =
      py::make_tuple("level", "spread", "missing", "stuck", "residual", "residual_spread", "relationship");
  m.def(
      "validate_baseline_params",
      [](const py::dict& d) { lg::validate_baseline_params(baseline_params_from_dict(d)); }, py::arg("params"),
      "Raise ValueError naming the first out-of-range field.");

  m.def(
      "baseline_state_shape",
      [](const py::bytes& data) {
        const std::string raw = data;
        const auto shape = lg::BaselineStage::state_shape(reinterpret_cast<const std::uint8_t*>(raw.data()), raw.size());
        return py::make_tuple(shape.n_units, shape.n_channels, shape.window);
      },
      py::arg("data"), "(n_units, n_channels, window) of a saved baseline state; ValueError if it is not sound.");
  m.def(
      "baseline_state_context_shape",
      [](const py::bytes& data) -> py::object {
        const std::string raw = data;
        const auto shape = lg::BaselineStage::state_shape(reinterpret_cast<const std::uint8_t*>(raw.data()), raw.size());
        if (shape.version < 2) return py::none();
        return py::make_tuple(shape.n_filters, shape.n_monitored, shape.n_context);
      },
      py::arg("data"),
      "(n_filters, n_monitored, n_context) of a saved state with a v3 context stage (state version 2 or 3; "
      "n_context 0 for version 2), None for a v2 state.");

  py::class_<lg::BaselineStage>(m, "BaselineStage")
      .def(py::init([](const py::dict& params, std::size_t n_units, const std::optional<py::dict>& context) {
             std::optional<lg::ContextParams> ctx;
             if (context) ctx = context_params_from_dict(*context);
             return lg::BaselineStage(baseline_params_from_dict(params), n_units, ctx);
           }),
           py::arg("params"), py::arg("n_units"), py::arg("context") = py::none())
      .def_property_readonly("n_units", &lg::BaselineStage::n_units)
      .def_property_readonly("n_channels", &lg::BaselineStage::n_channels)
      .def(
          "push",
          [](lg::BaselineStage& self, const CArray<std::uint32_t>& unit, const CArray<double>& time,
             const CArray<float>& values, std::size_t top_k, bool raw, const py::object& setpoint,
             const py::object& state, bool context_raw, bool forest_input) {
            if (unit.ndim() != 1) throw std::invalid_argument("unit must be 1-D, got shape " + shape_text(unit));
            const auto n = unit.shape(0);
            if (time.ndim() != 1 || time.shape(0) != n)
              throw std::invalid_argument("time must have shape (" + std::to_string(n) + ",), got " + shape_text(time));
            if (values.ndim() != 2 || values.shape(0) != n ||
                static_cast<std::size_t>(values.shape(1)) != self.n_channels())
              throw std::invalid_argument("values must have shape (" + std::to_string(n) + ", " +
                                          std::to_string(self.n_channels()) + "), got " + shape_text(values));
            const auto k = static_cast<py::ssize_t>(top_k);
            py::array_t<double> decision(n);
            py::array_t<std::uint8_t> learning(n);
            py::array_t<std::int16_t> codes({n, k});
            py::array_t<float> weights({n, k});
            const auto n_raw = static_cast<py::ssize_t>(raw ? 2 * self.params().scored.size() : 0);
            py::array_t<double> raw_deviation({raw ? n : py::ssize_t{0}, n_raw});
            const ContextArrays ctx = context_arrays(setpoint, state, n);
            const lg::ContextStage* stage_ctx = self.context();
            if ((context_raw || forest_input) && stage_ctx == nullptr)
              throw std::invalid_argument("context_raw / forest_input need a stage with a context stage (v3)");
            const auto width = static_cast<py::ssize_t>(context_raw ? stage_ctx->raw_width() : 0);
            py::array_t<double> ctx_raw({context_raw ? n : py::ssize_t{0}, width});
            const auto nc = static_cast<py::ssize_t>(self.n_channels());
            py::array_t<float> forest_in({forest_input ? n : py::ssize_t{0}, forest_input ? nc : py::ssize_t{0}});
            lg::BaselineOutputs out{decision.mutable_data(), learning.mutable_data(), codes.mutable_data(),
                                    weights.mutable_data(), top_k, raw ? raw_deviation.mutable_data() : nullptr};
            out.context_raw = context_raw ? ctx_raw.mutable_data() : nullptr;
            out.forest_input = forest_input ? forest_in.mutable_data() : nullptr;
            {
              py::gil_scoped_release release;
              self.push(static_cast<std::size_t>(n), unit.data(), time.data(), values.data(), ctx.view(), out);
            }
            return py::make_tuple(decision, learning, codes, weights, raw_deviation, ctx_raw, forest_in);
          },
          py::arg("unit"), py::arg("time_s"), py::arg("values"), py::arg("top_k"), py::arg("raw") = false,
          py::arg("setpoint") = py::none(), py::arg("state") = py::none(), py::arg("context_raw") = false,
          py::arg("forest_input") = false,
          "Push rows in order; returns (decision, learning, top_code, top_weight, raw_deviation, context_raw, "
          "forest_input).")
      .def(
          "unit_info",
          [](const lg::BaselineStage& self, std::size_t unit) {
            const auto info = self.unit_info(unit);
            static const char* phases[] = {"new", "learning", "ready"};
            py::dict d;
            d["phase"] = phases[static_cast<int>(info.phase)];
            d["rows_learned"] = info.rows_learned;
            d["first_time_s"] = info.first_time_s;
            d["ready_time_s"] = info.ready_time_s;
            d["last_time_s"] = info.last_time_s;
            d["mu"] = info.mu;
            d["sigma"] = info.sigma;
            return d;
          },
          py::arg("unit"))
      .def("reset_unit", &lg::BaselineStage::reset_unit, py::arg("unit"))
      .def("save_state",
           [](const lg::BaselineStage& self) {
             const auto bytes = self.save_state();
             return py::bytes(reinterpret_cast<const char*>(bytes.data()), bytes.size());
           })
      .def(
          "load_state",
          [](lg::BaselineStage& self, const py::bytes& data) {
            const std::string raw = data;
            self.load_state(reinterpret_cast<const std::uint8_t*>(raw.data()), raw.size());
          },
          py::arg("data"))
      .def(
          "save_state_file",
          [](const lg::BaselineStage& self, const std::string& path) {
            py::gil_scoped_release release;
            self.save_state_file(path);
          },
          py::arg("path"))
      .def(
          "load_state_file",
          [](lg::BaselineStage& self, const std::string& path) {
            py::gil_scoped_release release;
            self.load_state_file(path);
          },
          py::arg("path"));
}

void bind_unit_scorer(py::module_& m) {
  py::class_<lg::UnitScorer>(m, "UnitScorer")
      .def(py::init([](const lg::ForestModel& model, std::size_t n_units, std::uintptr_t power_loop,
                       std::uintptr_t power_data) {
             return lg::UnitScorer(std::make_shared<const lg::ForestModel>(model), n_units,
                                   power_of_two_arg(power_loop, power_data));
           }),
           py::arg("model"), py::arg("n_units"), py::arg("power_loop") = 0, py::arg("power_data") = 0)
      .def_property_readonly("n_units", &lg::UnitScorer::n_units)
      .def_property_readonly("fleet_cut", &lg::UnitScorer::fleet_cut)
      .def_property_readonly(
          "stage", [](lg::UnitScorer& self) { return self.stage(); }, py::return_value_policy::reference_internal)
      .def(
          "score",
          [](lg::UnitScorer& self, const CArray<std::uint32_t>& unit, const CArray<double>& time, const py::array& values,
             std::size_t top_k, const py::object& setpoint, const py::object& state) {
            const auto nf = static_cast<py::ssize_t>(self.model().n_features());
            if (unit.ndim() != 1) throw std::invalid_argument("unit must be 1-D, got shape " + shape_text(unit));
            const auto n = unit.shape(0);
            if (time.ndim() != 1 || time.shape(0) != n)
              throw std::invalid_argument("time must have shape (" + std::to_string(n) + ",), got " + shape_text(time));
            const bool f64 = values.dtype().is(py::dtype::of<double>());
            if (!f64 && !values.dtype().is(py::dtype::of<float>()))
              throw py::type_error("values must be float32 or float64, got " + std::string(py::str(values.dtype())));
            if (values.ndim() != 2 || values.shape(0) != n || values.shape(1) != nf ||
                !(values.flags() & py::array::c_style))
              throw std::invalid_argument("values must be a C-contiguous (" + std::to_string(n) + ", " +
                                          std::to_string(nf) + ") array, got " + shape_text(values));
            const ContextArrays ctx = context_arrays(setpoint, state, n);
            const auto k = static_cast<py::ssize_t>(top_k);
            py::array_t<double> score(n), fleet(n), baseline(n);
            py::array_t<std::uint8_t> flagged(n), learning(n);
            py::array_t<std::int8_t> stage(n);
            py::array_t<std::int16_t> codes({n, k});
            py::array_t<float> weights({n, k});
            const lg::UnitScores out{score.mutable_data(), flagged.mutable_data(), learning.mutable_data(),
                                     stage.mutable_data(),  fleet.mutable_data(),   baseline.mutable_data(),
                                     codes.mutable_data(),  weights.mutable_data(), top_k};
            {
              py::gil_scoped_release release;
              if (f64)
                self.score(static_cast<std::size_t>(n), unit.data(), time.data(), static_cast<const double*>(values.data()),
                           ctx.view(), out);
              else
                self.score(static_cast<std::size_t>(n), unit.data(), time.data(), static_cast<const float*>(values.data()),
                           ctx.view(), out);
            }
            return py::make_tuple(score, flagged, learning, stage, fleet, baseline, codes, weights);
          },
          py::arg("unit"), py::arg("time_s"), py::arg("values"), py::arg("top_k"), py::arg("setpoint") = py::none(),
          py::arg("state") = py::none(),
          "Both stages and the explanations, one call with the GIL released; returns (score, flagged, learning, "
          "stage, fleet_decision, baseline_decision, top_code, top_weight).");
}
