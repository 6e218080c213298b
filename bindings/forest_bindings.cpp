#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include "laserguard/model/forest_model.hpp"
#include "laserguard/model/model_format.hpp"
#include "power_of_two_arg.hpp"

namespace py = pybind11;
laserguard::BaselineParams baseline_params_from_dict(const py::dict& d);  // baseline_bindings.cpp
py::dict baseline_params_to_dict(const laserguard::BaselineParams& p);
laserguard::ContextParams context_params_from_dict(const py::dict& d);  // context_bindings.cpp
py::dict context_params_to_dict(const laserguard::ContextParams& p);

using laserguard::ForestModel;
using laserguard::ForestSpec;
using laserguard::MatrixView;
using laserguard::TreeSpec;

namespace {

template <typename T>
std::vector<T> to_vector(const py::handle& obj) {
  const auto a = py::array_t<T, py::array::c_style | py::array::forcecast>::ensure(obj);
  if (!a) throw py::type_error("expected an array convertible to " + std::string(py::str(py::dtype::of<T>())));
  return std::vector<T>(a.data(), a.data() + a.size());
}

template <typename T>
MatrixView<T> view_of(const py::array& x) {
  const auto item = static_cast<py::ssize_t>(sizeof(T));
  if (x.strides(0) % item != 0 || x.strides(1) % item != 0)
    throw py::value_error("X strides are not a multiple of its item size");
  return {static_cast<const T*>(x.data()), static_cast<std::size_t>(x.shape(0)),
          static_cast<std::size_t>(x.shape(1)), x.strides(0) / item, x.strides(1) / item};
}

std::size_t checked_rows(const ForestModel& model, const py::array& x) {
  if (x.ndim() != 2)
    throw py::value_error("Expected a 2-D array of shape (n_samples, " + std::to_string(model.n_features()) +
                          "), got " + std::to_string(x.ndim()) + "-D");
  if (static_cast<std::size_t>(x.shape(1)) != model.n_features())
    throw py::value_error("X has " + std::to_string(x.shape(1)) + " features, but the model expects " +
                          std::to_string(model.n_features()));
  return static_cast<std::size_t>(x.shape(0));
}

// Checks dtype, then converts the caller's array once (scaler + float32 rounding) and runs
// `work(prepared, rows)` on it, both with the GIL released.
template <typename Work>
void with_prepared(const ForestModel& model, const py::array& x, Work work) {
  const std::size_t rows = checked_rows(model, x);
  const bool is_f64 = x.dtype().is(py::dtype::of<double>());
  if (!is_f64 && !x.dtype().is(py::dtype::of<float>()))
    throw py::type_error("X must be float32 or float64, got " + std::string(py::str(x.dtype())));
  // One scratch buffer per thread: concurrent callers never share it.
  thread_local std::vector<float> prepared;
  if (is_f64) {
    const auto v = view_of<double>(x);
    py::gil_scoped_release release;
    prepared.resize(rows * model.n_features());
    model.prepare(v, prepared.data());
    work(prepared.data(), rows);
  } else {
    const auto v = view_of<float>(x);
    py::gil_scoped_release release;
    prepared.resize(rows * model.n_features());
    model.prepare(v, prepared.data());
    work(prepared.data(), rows);
  }
}

// One float64 output per row.
template <typename Score>
py::array_t<double> score_rows(const ForestModel& model, const py::array& x, Score score) {
  py::array_t<double> out(static_cast<py::ssize_t>(checked_rows(model, x)));
  double* dst = out.mutable_data();
  with_prepared(model, x, [&](const float* p, std::size_t n) { score(p, n, dst); });
  return out;
}

TreeSpec tree_from_python(const py::dict& d) {
  TreeSpec t;
  t.left = to_vector<std::int32_t>(d["left"]);
  t.right = to_vector<std::int32_t>(d["right"]);
  t.feature = to_vector<std::int32_t>(d["feature"]);
  t.threshold = to_vector<double>(d["threshold"]);
  t.missing_go_left = to_vector<std::uint8_t>(d["missing_go_left"]);
  t.value = to_vector<double>(d["value"]);
  return t;
}

}  // namespace

void bind_forest(py::module_& m) {
  py::register_exception<laserguard::ModelFormatError>(m, "ModelFormatError", PyExc_ValueError);
  // File-system failures surface as OSError with errno, like Python's own I/O.
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const std::system_error& e) {
      py::object error = py::module_::import("builtins").attr("OSError")(e.code().value(), e.what());
      PyErr_SetObject(PyExc_OSError, error.ptr());
    }
  });

  m.attr("MODEL_FORMAT_VERSION") = py::make_tuple(laserguard::kModelVersionMajor, laserguard::kModelVersionMinor);

  m.def(
      "write_forest_file",
      [](const std::string& path, std::uint32_t n_features, bool has_scaler, bool with_mean, bool with_std,
         const py::array_t<double, py::array::c_style | py::array::forcecast>& mean,
         const py::array_t<double, py::array::c_style | py::array::forcecast>& scale, double offset,
         double denominator, const std::vector<std::string>& feature_names, const std::string& metadata_json,
         const py::list& trees, const std::optional<py::dict>& baseline, const std::optional<py::dict>& context) {
        ForestSpec spec;
        spec.n_features = n_features;
        spec.has_scaler = has_scaler;
        spec.with_mean = with_mean;
        spec.with_std = with_std;
        spec.mean = to_vector<double>(mean);
        spec.scale = to_vector<double>(scale);
        spec.offset = offset;
        spec.denominator = denominator;
        spec.feature_names = feature_names;
        spec.metadata_json = metadata_json;
        for (const auto& t : trees) spec.trees.push_back(tree_from_python(t.cast<py::dict>()));
        if (baseline) spec.baseline = baseline_params_from_dict(*baseline);
        if (context) spec.context = context_params_from_dict(*context);
        py::gil_scoped_release release;
        laserguard::write_forest_file(spec, path);
      },
      py::arg("path"), py::arg("n_features"), py::arg("has_scaler"), py::arg("with_mean"), py::arg("with_std"),
      py::arg("mean"), py::arg("scale"), py::arg("offset"), py::arg("denominator"), py::arg("feature_names"),
      py::arg("metadata_json"), py::arg("trees"), py::arg("baseline") = py::none(), py::arg("context") = py::none(),
      "Validate a forest (and the optional baseline stage: format 2.0; and context stage: 2.1) given as "
      "sklearn-shaped arrays and "
      "write it atomically (temp file + rename).");

  py::class_<ForestModel>(m, "ForestModel")
      .def_static(
          "load",
          [](const std::string& path) {
            py::gil_scoped_release release;
            return ForestModel::load(path);
          },
          py::arg("path"))
      .def_static(
          "from_bytes",
          [](const py::bytes& data) {
            const std::string raw = data;
            py::gil_scoped_release release;
            return ForestModel::from_bytes(reinterpret_cast<const std::uint8_t*>(raw.data()), raw.size());
          },
          py::arg("data"))
      .def_property_readonly("n_features", &ForestModel::n_features)
      .def_property_readonly("n_trees", &ForestModel::n_trees)
      .def_property_readonly("n_nodes", &ForestModel::n_nodes)
      .def_property_readonly("has_scaler", &ForestModel::has_scaler)
      .def_property_readonly("offset", &ForestModel::offset)
      .def_property_readonly("denominator", &ForestModel::denominator)
      .def_property_readonly("feature_names", &ForestModel::feature_names)
      .def_property_readonly("metadata_json", &ForestModel::metadata_json)
      .def_property_readonly("baseline",
                             [](const ForestModel& model) -> py::object {
                               if (!model.baseline()) return py::none();
                               return baseline_params_to_dict(*model.baseline());
                             })
      .def_property_readonly("context",
                             [](const ForestModel& model) -> py::object {
                               if (!model.context()) return py::none();
                               return context_params_to_dict(*model.context());
                             })
      .def_property_readonly("kernel", [](const ForestModel& model) { return laserguard::kernel_name(model.kernel()); })
      .def_property_readonly("supported_kernels",
                             [](const ForestModel& model) {
                               std::vector<std::string> names;
                               for (const auto k : model.supported_kernels()) names.emplace_back(laserguard::kernel_name(k));
                               return names;
                             })
      .def(
          "use_kernel",
          [](ForestModel& model, const std::string& name) {
            std::string known;
            for (const auto k : {laserguard::ForestKernel::kPortable, laserguard::ForestKernel::kAvx512Gather,
                                 laserguard::ForestKernel::kAvx512Blend}) {
              if (name == laserguard::kernel_name(k)) return model.use_kernel(k);
              known += (known.empty() ? "" : ", ") + std::string(laserguard::kernel_name(k));
            }
            throw py::value_error("unknown forest kernel '" + name + "' (known: " + known + ")");
          },
          py::arg("name"), "Walk batches with this kernel (ValueError if unknown or unavailable here).")
      .def(
          "path_length_sums",
          [](const ForestModel& model, const py::array& x) {
            return score_rows(model, x, [&](const float* p, std::size_t n, double* o) { model.path_length_sums(p, n, o); });
          },
          py::arg("X"), "Per-row sum of path lengths over all trees (sklearn's `depths`).")
      .def(
          "feature_attribution",
          [](const ForestModel& model, const py::array& x) {
            const auto rows = static_cast<py::ssize_t>(checked_rows(model, x));
            py::array_t<float> out({rows, static_cast<py::ssize_t>(model.n_features())});
            float* dst = out.mutable_data();
            with_prepared(model, x, [&](const float* p, std::size_t n) { model.feature_attribution(p, n, dst); });
            return out;
          },
          py::arg("X"), "Per-row, per-feature local DIFFI attribution (rows x n_features, float32).")
      .def(
          "score_samples",
          [](const ForestModel& model, const py::array& x, std::uintptr_t power_loop, std::uintptr_t power_data) {
            const laserguard::PowerOfTwo power = power_of_two_arg(power_loop, power_data);
            return score_rows(model, x,
                              [&](const float* p, std::size_t n, double* o) { model.score_samples(p, n, o, power); });
          },
          py::arg("X"), py::arg("power_loop") = 0, py::arg("power_data") = 0,
          "score_samples in one native call: exact with numpy's power loop (laserguard.model.numpy_power), "
          "else libm's pow (within 2 ulp of sklearn).")
      .def(
          "decision_function",
          [](const ForestModel& model, const py::array& x, std::uintptr_t power_loop, std::uintptr_t power_data) {
            const laserguard::PowerOfTwo power = power_of_two_arg(power_loop, power_data);
            return score_rows(model, x, [&](const float* p, std::size_t n, double* o) {
              model.decision_function(p, n, o, power);
            });
          },
          py::arg("X"), py::arg("power_loop") = 0, py::arg("power_data") = 0,
          "decision_function in one native call: exact with numpy's power loop, else libm's pow.");
}
