// Per-unit baseline features: type conversion and GIL release only.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <stdexcept>
#include <string>

#include "laserguard/features/unit_baseline_features.hpp"

namespace py = pybind11;
namespace lg = laserguard;

namespace {

using FloatIn = py::array_t<float, py::array::c_style>;
using TimeIn = py::array_t<double, py::array::c_style>;

std::string shape_text(const py::buffer_info& b) {
  std::string s = "(";
  for (std::size_t i = 0; i < b.shape.size(); ++i) s += (i ? ", " : "") + std::to_string(b.shape[i]);
  return s + ")";
}

// frames: (n_frames, n_units, n_channels) float32; times: (n_frames,) float64, non-decreasing.
py::array_t<double> push_frames(lg::UnitBaselineFeatures& self, const TimeIn& times, const FloatIn& frames) {
  const auto f = frames.request();
  const auto t = times.request();
  if (f.ndim != 3 || static_cast<std::size_t>(f.shape[1]) != self.n_units() ||
      static_cast<std::size_t>(f.shape[2]) != self.n_channels())
    throw std::invalid_argument("frames must have shape (n_frames, " + std::to_string(self.n_units()) + ", " +
                                std::to_string(self.n_channels()) + "), got " + shape_text(f));
  if (t.ndim != 1 || t.shape[0] != f.shape[0])
    throw std::invalid_argument("times must have shape (" + std::to_string(f.shape[0]) + ",), got " + shape_text(t));
  const auto n_frames = f.shape[0];
  py::array_t<double> out({n_frames, static_cast<py::ssize_t>(self.n_units()),
                           static_cast<py::ssize_t>(self.n_features())});
  const float* in = frames.data();
  const double* time = times.data();
  double* dst = out.mutable_data();
  const std::size_t in_stride = self.n_units() * self.n_channels();
  const std::size_t out_stride = self.n_units() * self.n_features();
  {
    py::gil_scoped_release release;
    for (py::ssize_t k = 0; k < n_frames; ++k) {
      const auto i = static_cast<std::size_t>(k);
      self.push(time[i], in + i * in_stride, dst + i * out_stride);
    }
  }
  return out;
}

}  // namespace

void bind_unit_baseline(py::module_& m) {
  py::class_<lg::UnitBaselineFeatures>(m, "UnitBaselineFeatures")
      .def(py::init([](std::size_t n_units, std::size_t n_channels, double baseline_s, std::uint32_t window,
                       double sigma_floor) {
             return lg::UnitBaselineFeatures(n_units, n_channels, lg::UnitBaselineConfig{baseline_s, window, sigma_floor});
           }),
           py::arg("n_units"), py::arg("n_channels"), py::arg("baseline_s"), py::arg("window"), py::arg("sigma_floor"))
      .def_property_readonly("n_units", &lg::UnitBaselineFeatures::n_units)
      .def_property_readonly("n_channels", &lg::UnitBaselineFeatures::n_channels)
      .def_property_readonly("n_features", &lg::UnitBaselineFeatures::n_features)
      .def("baseline_frozen", &lg::UnitBaselineFeatures::baseline_frozen, py::arg("unit"))
      .def("push_frames", &push_frames, py::arg("times"), py::arg("frames"));
}
