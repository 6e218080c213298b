// The detector's per-frame call: type conversion and GIL release only.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "laserguard/live/frame_scorer.hpp"
#include "power_of_two_arg.hpp"

namespace py = pybind11;
namespace lg = laserguard;

void bind_live(py::module_& m) {
  py::class_<lg::FrameScorer>(m, "FrameScorer")
      .def(py::init([](const lg::ForestModel& model, const std::string& version, std::size_t top_k,
                       std::uintptr_t power_loop, std::uintptr_t power_data) {
             return std::make_unique<lg::FrameScorer>(std::make_shared<const lg::ForestModel>(model), version, top_k,
                                                      power_of_two_arg(power_loop, power_data));
           }),
           py::arg("model"), py::arg("model_version"), py::arg("top_k"), py::arg("power_loop") = 0,
           py::arg("power_data") = 0)
      .def("add_lcc", &lg::FrameScorer::add_lcc, py::arg("lcc_id"), py::arg("n_units"),
           py::return_value_policy::reference_internal)
      .def("scorer", &lg::FrameScorer::scorer, py::arg("lcc_id"), py::return_value_policy::reference_internal)
      .def("lccs", &lg::FrameScorer::lccs)
      .def_property_readonly("model_version", &lg::FrameScorer::model_version)
      .def(
          "score",
          [](lg::FrameScorer& self, const py::buffer& payload, std::int64_t now_ns, bool dry_run) {
            const py::buffer_info info = payload.request();
            if (info.ndim != 1 || info.itemsize != 1)
              throw py::type_error("payload must be bytes, bytearray or a 1-D byte buffer");
            std::vector<std::uint8_t> feedback;
            lg::FrameOutcome o;
            {
              py::gil_scoped_release release;
              o = self.score(static_cast<const std::uint8_t*>(info.ptr), static_cast<std::size_t>(info.size), now_ns,
                             feedback, dry_run);
            }
            py::tuple outcome = py::make_tuple(o.needs_lcc, o.lcc_id, o.boot_id, o.seq, o.timestamp_ns, o.n_units, o.anomalous,
                                               o.by_fleet, o.by_baseline, o.learning, o.nonfinite);
            return py::make_tuple(outcome, py::bytes(reinterpret_cast<const char*>(feedback.data()), feedback.size()));
          },
          py::arg("payload"), py::arg("now_ns"), py::arg("dry_run") = false,
          "Decode, score both stages, explain, encode: one call, GIL released. Returns (outcome, feedback). "
          "dry_run: on a copy of the LCC's state, keeping nothing (refills the caches before a frame is due).")
      .def(
          "last_scores",
          [](const lg::FrameScorer& self, std::uint32_t lcc) {
            const auto& v = self.last_scores(lcc);
            return py::array_t<double>(static_cast<py::ssize_t>(v.size()), v.data());
          },
          py::arg("lcc_id"))
      .def(
          "last_baseline",
          [](const lg::FrameScorer& self, std::uint32_t lcc) {
            const auto& v = self.last_baseline(lcc);
            return py::array_t<double>(static_cast<py::ssize_t>(v.size()), v.data());
          },
          py::arg("lcc_id"))
      .def(
          "set_model",
          [](lg::FrameScorer& self, const lg::ForestModel& model, const std::string& version) {
            return self.set_model(std::make_shared<const lg::ForestModel>(model), version);
          },
          py::arg("model"), py::arg("model_version"));
}
