// Telemetry/feedback codec bindings: buffer <-> numpy conversion, GIL release and the
// FrameError mapping. Argument dtype/shape checks with readable messages live in
// laserguard/codec.py; the arrays arriving here are already of the right dtype.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>
#include <vector>

#include "laserguard/features/baseline_stage.hpp"
#include "laserguard/wire/telemetry_codec.hpp"
#include "laserguard/wire/telemetry_schema.hpp"

// The feedback decoder accepts exactly the explanation codes the unit scorer produces.
static_assert(laserguard::kExplanationCodesPerFeature == 1 + laserguard::kDeviationKinds);

namespace py = pybind11;
using laserguard::Feedback;
using laserguard::FrameError;
using laserguard::TelemetryHeader;

namespace {

// A contiguous read-only view of any bytes-like object (bytes, memoryview, zmq.Frame),
// released when it goes out of scope.
class ByteView {
 public:
  explicit ByteView(const py::handle& obj) {
    if (PyObject_GetBuffer(obj.ptr(), &view_, PyBUF_SIMPLE) != 0) throw py::error_already_set();
  }
  ~ByteView() { PyBuffer_Release(&view_); }
  ByteView(const ByteView&) = delete;
  ByteView& operator=(const ByteView&) = delete;
  const std::uint8_t* data() const { return static_cast<const std::uint8_t*>(view_.buf); }
  std::size_t size() const { return static_cast<std::size_t>(view_.len); }

 private:
  Py_buffer view_{};
};

template <typename T>
py::array_t<T> to_numpy(const std::vector<T>& v, std::size_t rows, std::size_t cols, bool two_d) {
  if (!two_d) {
    py::array_t<T> out(static_cast<py::ssize_t>(v.size()));
    std::copy(v.begin(), v.end(), out.mutable_data());
    return out;
  }
  py::array_t<T> out({static_cast<py::ssize_t>(rows), static_cast<py::ssize_t>(cols)});
  std::copy(v.begin(), v.end(), out.mutable_data());
  return out;
}

py::bytes to_bytes(const std::vector<std::uint8_t>& buf) {
  return py::bytes(reinterpret_cast<const char*>(buf.data()), buf.size());
}

template <typename T>
using CArray = py::array_t<T, py::array::c_style | py::array::forcecast>;

}  // namespace

void bind_codec(py::module_& m) {
  // The module keeps the type alive for the interpreter's lifetime; the translator below
  // (registered later, so tried first) adds the machine-readable `.reason`.
  static PyObject* frame_error_type =
      py::register_exception<FrameError>(m, "FrameError", PyExc_ValueError).ptr();
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const FrameError& e) {
      py::object exc = py::reinterpret_borrow<py::object>(frame_error_type)(e.what());
      exc.attr("reason") = e.code();
      PyErr_SetObject(frame_error_type, exc.ptr());
    }
  });

  py::tuple names(laserguard::kChannelNames.size());
  for (std::size_t i = 0; i < laserguard::kChannelNames.size(); ++i) names[i] = laserguard::kChannelNames[i];
  m.attr("CHANNELS") = names;
  m.attr("TELEMETRY_VERSION") = laserguard::kTelemetryVersion;
  m.attr("FEEDBACK_VERSION") = laserguard::kFeedbackVersion;
  py::tuple states(laserguard::kUnitStateNames.size());
  for (std::size_t i = 0; i < laserguard::kUnitStateNames.size(); ++i) states[i] = laserguard::kUnitStateNames[i];
  m.attr("UNIT_STATES") = states;
  py::list reasons;
  for (const auto r : laserguard::kAllFrameErrorReasons) reasons.append(laserguard::reason_code(r));
  m.attr("FRAME_ERROR_REASONS") = py::tuple(reasons);

  m.def(
      "encode_telemetry",
      [](std::uint32_t lcc_id, std::uint64_t boot_id, std::uint64_t seq, std::int64_t timestamp_ns,
         const CArray<float>& values, const CArray<float>& setpoint_a, const CArray<std::uint8_t>& state,
         std::uint16_t schema_id) {
        if (values.ndim() != 2) throw py::value_error("values must be 2-D, got " + std::to_string(values.ndim()) + "-D");
        // The encoder reads n_units of each: a shorter array would be read past its end.
        if (setpoint_a.ndim() != 1 || setpoint_a.shape(0) != values.shape(0) || state.ndim() != 1 ||
            state.shape(0) != values.shape(0))
          throw py::value_error("setpoint_a and state must be 1-D with one entry per unit (" +
                                std::to_string(values.shape(0)) + ")");
        TelemetryHeader h;
        h.lcc_id = lcc_id;
        h.boot_id = boot_id;
        h.seq = seq;
        h.timestamp_ns = timestamp_ns;
        h.schema_id = schema_id;
        h.n_units = static_cast<std::uint32_t>(values.shape(0));
        h.n_features = static_cast<std::uint32_t>(values.shape(1));
        std::vector<std::uint8_t> out;
        {
          py::gil_scoped_release release;
          laserguard::encode_telemetry(h, values.data(), setpoint_a.data(), state.data(), out);
        }
        return to_bytes(out);
      },
      py::arg("lcc_id"), py::arg("boot_id"), py::arg("seq"), py::arg("timestamp_ns"), py::arg("values"),
      py::arg("setpoint_a"), py::arg("state"), py::arg("schema_id"));

  m.def(
      "decode_telemetry",
      [](const py::handle& payload) {
        const ByteView bytes(payload);
        laserguard::TelemetryFrameView view;
        {
          py::gil_scoped_release release;
          view = laserguard::decode_telemetry(bytes.data(), bytes.size());
        }
        // The one copy: wire bytes straight into the numpy array the caller keeps.
        const auto n_units = static_cast<py::ssize_t>(view.header.n_units);
        py::array_t<float> values({n_units, static_cast<py::ssize_t>(view.header.n_features)});
        py::array_t<float> setpoint_a(n_units);
        py::array_t<std::uint8_t> state(n_units);
        float* dst = values.mutable_data();
        float* setpoint_dst = setpoint_a.mutable_data();
        std::uint8_t* state_dst = state.mutable_data();
        {
          py::gil_scoped_release release;
          view.copy_values(dst);
          view.copy_setpoints(setpoint_dst);
          view.copy_states(state_dst);
        }
        const auto& h = view.header;
        return py::make_tuple(h.lcc_id, h.boot_id, h.seq, h.timestamp_ns, h.schema_id, values, setpoint_a, state);
      },
      py::arg("payload"),
      "Validate a telemetry payload; (lcc_id, boot_id, seq, timestamp_ns, schema_id, values, setpoint_a, state).");

  m.def(
      "encode_feedback",
      [](std::uint32_t lcc_id, std::uint64_t boot_id, std::uint64_t seq, std::int64_t timestamp_ns,
         const std::string& model_version,
         const CArray<float>& scores, const CArray<std::uint32_t>& anomalous_units,
         const CArray<std::int16_t>& top_features, const CArray<float>& top_weights, std::uint16_t n_features) {
        if (scores.ndim() != 1) throw py::value_error("scores must be 1-D, got " + std::to_string(scores.ndim()) + "-D");
        if (top_features.ndim() != 2 || top_weights.ndim() != 2)
          throw py::value_error("top_features and top_weights must be 2-D (n_units, K)");
        Feedback f;
        f.lcc_id = lcc_id;
        f.boot_id = boot_id;
        f.seq = seq;
        f.timestamp_ns = timestamp_ns;
        f.model_version = model_version;
        f.n_features = n_features;
        f.n_units = static_cast<std::uint32_t>(scores.shape(0));
        f.top_k = static_cast<std::uint16_t>(top_features.shape(1));
        if (top_features.shape(1) > laserguard::kMaxTopK)
          throw py::value_error("top_features has K = " + std::to_string(top_features.shape(1)) +
                                " columns, limit " + std::to_string(laserguard::kMaxTopK));
        f.scores.assign(scores.data(), scores.data() + scores.size());
        f.anomalous_units.assign(anomalous_units.data(), anomalous_units.data() + anomalous_units.size());
        f.top_features.assign(top_features.data(), top_features.data() + top_features.size());
        f.top_weights.assign(top_weights.data(), top_weights.data() + top_weights.size());
        std::vector<std::uint8_t> out;
        {
          py::gil_scoped_release release;
          laserguard::encode_feedback(f, out);
        }
        return to_bytes(out);
      },
      py::arg("lcc_id"), py::arg("boot_id"), py::arg("seq"), py::arg("timestamp_ns"), py::arg("model_version"),
      py::arg("scores"),
      py::arg("anomalous_units"), py::arg("top_features"), py::arg("top_weights"), py::arg("n_features"));

  m.def(
      "decode_feedback",
      [](const py::handle& payload) {
        const ByteView bytes(payload);
        Feedback f;
        {
          py::gil_scoped_release release;
          f = laserguard::decode_feedback(bytes.data(), bytes.size());
        }
        return py::make_tuple(f.lcc_id, f.boot_id, f.seq, f.timestamp_ns, f.model_version, f.n_features,
                              to_numpy(f.scores, 0, 0, false), to_numpy(f.anomalous_units, 0, 0, false),
                              to_numpy(f.top_features, f.n_units, f.top_k, true),
                              to_numpy(f.top_weights, f.n_units, f.top_k, true));
      },
      py::arg("payload"),
      "Validate a feedback payload; (lcc_id, boot_id, seq, timestamp_ns, model_version, n_features, scores, "
      "anomalous_units, top_features, top_weights).");

  m.def("telemetry_topic", [](std::uint32_t lcc_id) { return py::bytes(laserguard::telemetry_topic(lcc_id)); },
        py::arg("lcc_id"));
  m.def("feedback_topic", [](std::uint32_t lcc_id) { return py::bytes(laserguard::feedback_topic(lcc_id)); },
        py::arg("lcc_id"));
}
