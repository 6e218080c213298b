#pragma once
// Wire codec for the telemetry frame (LCC -> consumers) and the anomaly feedback message
// (detector -> LCC). Little-endian, versioned, fixed headers; byte layout in docs/protocol.md.
//
// Decoders validate every size, count, index and string before touching the payload and
// throw FrameError with a machine-readable reason (counted by services in a metric
// label). They never read out of bounds. NaN/inf in a float is data, not an error.
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "laserguard/wire/telemetry_schema.hpp"

namespace laserguard {

enum class FrameErrorReason {
  kBadMagic,        // first 4 bytes are not the expected magic
  kUnknownVersion,  // version field not understood by this decoder
  kTruncated,       // payload shorter than its header says
  kCountMismatch,   // payload longer than its header says, or counts inconsistent
  kOversized,       // a count above the protocol limits
  kBadHeader,       // reserved field not zero
  kSchemaMismatch,  // schema id 0, or feature count does not match a known schema
  kBadIndex,        // unit or feature index out of range / not strictly increasing
  kBadString,       // model version not printable ASCII
  kBadState,        // a unit state byte outside the UnitState codes
};

inline constexpr FrameErrorReason kAllFrameErrorReasons[] = {
    FrameErrorReason::kBadMagic,      FrameErrorReason::kUnknownVersion, FrameErrorReason::kTruncated,
    FrameErrorReason::kCountMismatch, FrameErrorReason::kOversized,      FrameErrorReason::kBadHeader,
    FrameErrorReason::kSchemaMismatch, FrameErrorReason::kBadIndex,      FrameErrorReason::kBadString,
    FrameErrorReason::kBadState,
};

// Short stable code used in logs and metric labels: "bad_magic", "truncated", ...
const char* reason_code(FrameErrorReason reason) noexcept;

class FrameError : public std::runtime_error {
 public:
  FrameError(FrameErrorReason reason, const std::string& message)
      : std::runtime_error(message), reason_(reason) {}
  FrameErrorReason reason() const noexcept { return reason_; }
  const char* code() const noexcept { return reason_code(reason_); }

 private:
  FrameErrorReason reason_;
};

inline constexpr char kTelemetryMagic[4] = {'L', 'G', 'T', 'M'};
inline constexpr char kFeedbackMagic[4] = {'L', 'G', 'A', 'F'};
// Version 2 added the LCC boot id (a random 64-bit value chosen at each LCC start) to both
// headers: sequence numbers restart at 0 on every boot, so (lcc, boot, seq) names a frame.
// Telemetry version 3 appends each unit's setpoint and state (the operating context).
// Feedback version 3 (detection engine v3): same layout, but the explanation codes have 7
// kinds per channel instead of 4 (below), so a version-2 reader would name them wrongly.
inline constexpr std::uint16_t kTelemetryVersion = 3;
inline constexpr std::uint16_t kFeedbackVersion = 3;
inline constexpr std::size_t kTelemetryHeaderBytes = 48;
inline constexpr std::size_t kFeedbackHeaderBytes = 48;
// Limits keep every size computation far from overflow and bound a decoder's allocation.
inline constexpr std::uint32_t kMaxUnits = 4096;
inline constexpr std::uint32_t kMaxFeatures = 1024;
inline constexpr std::uint16_t kMaxTopK = 64;
// Explanation codes per feature in feedback top_features: the fleet forest's feature itself,
// then the unit stage's deviations level, spread, missing, stuck, residual, residual_spread,
// relationship (features/baseline_stage.hpp): code < n_features is the forest's,
// n_features + 7 * channel + kind the unit stage's.
inline constexpr std::uint32_t kExplanationCodesPerFeature = 8;
inline constexpr std::uint16_t kMaxModelVersionBytes = 255;

struct TelemetryHeader {
  std::uint32_t lcc_id = 0;
  std::uint64_t boot_id = 0;  // chosen at LCC start; seq restarts at 0 with each boot
  std::uint64_t seq = 0;
  std::int64_t timestamp_ns = 0;
  std::uint16_t schema_id = 1;
  std::uint32_t n_units = 0;
  std::uint32_t n_features = 0;
};

// A validated telemetry payload. The pointers point into the caller's buffer and are valid
// as long as that buffer is: `values_le` row-major n_units x n_features little-endian
// float32, `setpoint_le` n_units little-endian float32 (A, NaN = unknown), `state` n_units
// bytes, each a valid UnitState code (checked by the decoder).
struct TelemetryFrameView {
  TelemetryHeader header;
  const std::uint8_t* values_le = nullptr;
  const std::uint8_t* setpoint_le = nullptr;
  const std::uint8_t* state = nullptr;

  std::size_t value_count() const noexcept {
    return static_cast<std::size_t>(header.n_units) * header.n_features;
  }
  // Copies the matrix into `out` (value_count() floats), converting byte order if needed.
  void copy_values(float* out) const noexcept;
  // Copies the n_units setpoints (A) into `out`.
  void copy_setpoints(float* out) const noexcept;
  // Copies the n_units state codes into `out` (std::uint8_t or UnitState).
  void copy_states(std::uint8_t* out) const noexcept;
  void copy_states(UnitState* out) const noexcept;
  UnitState unit_state(std::uint32_t unit) const noexcept { return static_cast<UnitState>(state[unit]); }
};

// Bytes of a version-3 frame: header, values, setpoints, states padded to 4 bytes.
std::size_t telemetry_size(std::uint32_t n_units, std::uint32_t n_features) noexcept;

// Encodes into `out` (resized; reuse it across frames to avoid allocating on the hot path).
// `values` is n_units x n_features, `setpoint_a` and `state` n_units each (a setpoint may be
// NaN: unknown). Throws std::invalid_argument naming the offending value when the header is
// out of limits, a pointer is null or a state is not a UnitState code.
void encode_telemetry(const TelemetryHeader& header, const float* values, const float* setpoint_a,
                      const UnitState* state, std::vector<std::uint8_t>& out);
std::vector<std::uint8_t> encode_telemetry(const TelemetryHeader& header, const float* values,
                                           const float* setpoint_a, const UnitState* state);
// The same with the states as raw wire codes (e.g. a numpy uint8 array).
void encode_telemetry(const TelemetryHeader& header, const float* values, const float* setpoint_a,
                      const std::uint8_t* state, std::vector<std::uint8_t>& out);
std::vector<std::uint8_t> encode_telemetry(const TelemetryHeader& header, const float* values,
                                           const float* setpoint_a, const std::uint8_t* state);

TelemetryFrameView decode_telemetry(const std::uint8_t* data, std::size_t size);

struct Feedback {
  std::uint32_t lcc_id = 0;
  std::uint64_t boot_id = 0;       // echoed telemetry boot id
  std::uint64_t seq = 0;           // echoed telemetry sequence number
  std::int64_t timestamp_ns = 0;   // detector's send time
  std::string model_version;       // printable ASCII, at most kMaxModelVersionBytes
  std::uint16_t n_features = 0;    // feature count of the scored frame (bounds top_features)
  std::uint32_t n_units = 0;
  std::uint16_t top_k = 0;
  std::vector<std::uint32_t> anomalous_units;  // strictly increasing, each < n_units
  std::vector<float> scores;                   // n_units (decision function; < 0 = anomalous)
  std::vector<float> top_weights;              // n_units x top_k, row-major
  std::vector<std::int16_t> top_features;      // n_units x top_k; -1 = no feature in that slot
};

std::size_t feedback_size(const Feedback& feedback) noexcept;
void encode_feedback(const Feedback& feedback, std::vector<std::uint8_t>& out);
std::vector<std::uint8_t> encode_feedback(const Feedback& feedback);
Feedback decode_feedback(const std::uint8_t* data, std::size_t size);

// Topics of the multipart messages: "lcc.<id>.telemetry" and "lcc.<id>.anomaly".
std::string telemetry_topic(std::uint32_t lcc_id);
std::string feedback_topic(std::uint32_t lcc_id);

}  // namespace laserguard
