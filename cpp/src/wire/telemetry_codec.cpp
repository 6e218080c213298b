#include "laserguard/wire/telemetry_codec.hpp"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <limits>

#include "laserguard/wire/byte_order.hpp"
#include "laserguard/wire/telemetry_schema.hpp"

namespace laserguard {
namespace {

static_assert(std::numeric_limits<float>::is_iec559, "IEEE-754 float32 required");

// Header offsets (docs/protocol.md, tables 1 and 2).
namespace tm {
constexpr std::size_t kMagic = 0, kVersion = 4, kSchema = 6, kLcc = 8, kReserved = 12, kBoot = 16, kSeq = 24,
                      kTimestamp = 32, kUnits = 40, kFeatures = 44;
}  // namespace tm
namespace fb {
constexpr std::size_t kMagic = 0, kVersion = 4, kFeatures = 6, kLcc = 8, kUnits = 12, kBoot = 16, kSeq = 24,
                      kTimestamp = 32, kAnomalous = 40, kTopK = 44, kVersionLen = 46;
}  // namespace fb

[[noreturn]] void fail(FrameErrorReason reason, const std::string& what) {
  throw FrameError(reason, std::string(reason_code(reason)) + ": " + what);
}

std::size_t padded4(std::size_t n) noexcept { return (n + 3U) & ~std::size_t{3}; }

// Why a sender of an older version must be upgraded: what each version added.
const char* upgrade_hint(std::uint16_t version, std::uint16_t expected, bool feedback) {
  if (version >= expected) return ")";
  if (version < 2) return "; the sender predates boot ids and must be upgraded)";
  if (feedback) return "; the sender predates the explanation codes of detection engine v3 and must be upgraded)";
  return "; the sender predates per-unit setpoint and state and must be upgraded)";
}

// Shared prefix checks: enough bytes for the magic, the right magic, the version this
// decoder reads for that kind of message, then a whole fixed header.
void check_prefix(const std::uint8_t* data, std::size_t size, const char (&magic)[4], std::uint16_t expected_version,
                  std::size_t header_bytes, const char* kind) {
  if (data == nullptr && size != 0) fail(FrameErrorReason::kTruncated, std::string(kind) + " buffer is null");
  if (size < 4)
    fail(FrameErrorReason::kTruncated,
         std::string(kind) + " payload is " + std::to_string(size) + " bytes, shorter than its 4-byte magic");
  if (std::memcmp(data, magic, 4) != 0) {
    char got[9];
    std::snprintf(got, sizeof got, "%02x%02x%02x%02x", data[0], data[1], data[2], data[3]);
    fail(FrameErrorReason::kBadMagic, std::string(kind) + " magic is 0x" + got + ", expected '" +
                                          std::string(magic, 4) + "'");
  }
  if (size < 6)
    fail(FrameErrorReason::kTruncated, std::string(kind) + " payload is " + std::to_string(size) +
                                           " bytes, too short for its version field");
  const auto version = load_le<std::uint16_t>(data + 4);
  if (version != expected_version)
    fail(FrameErrorReason::kUnknownVersion, std::string(kind) + " version " + std::to_string(version) +
                                                " is not supported (this decoder reads version " +
                                                std::to_string(expected_version) +
                                                upgrade_hint(version, expected_version, magic[3] == kFeedbackMagic[3]));
  if (size < header_bytes)
    fail(FrameErrorReason::kTruncated, std::string(kind) + " payload is " + std::to_string(size) +
                                           " bytes, shorter than its " + std::to_string(header_bytes) +
                                           "-byte header");
}

void check_exact_size(std::size_t size, std::size_t expected, const char* kind) {
  if (size < expected)
    fail(FrameErrorReason::kTruncated, std::string(kind) + " payload is " + std::to_string(size) +
                                           " bytes, its header announces " + std::to_string(expected));
  if (size > expected)
    fail(FrameErrorReason::kCountMismatch, std::string(kind) + " payload is " + std::to_string(size) +
                                               " bytes, its header announces only " + std::to_string(expected));
}

void check_units_features(std::uint32_t n_units, std::uint32_t n_features, const char* kind) {
  if (n_units == 0) fail(FrameErrorReason::kCountMismatch, std::string(kind) + " has 0 units");
  if (n_units > kMaxUnits)
    fail(FrameErrorReason::kOversized, std::string(kind) + " unit count " + std::to_string(n_units) +
                                           " exceeds the limit " + std::to_string(kMaxUnits));
  if (n_features == 0) fail(FrameErrorReason::kCountMismatch, std::string(kind) + " has 0 features");
  if (n_features > kMaxFeatures)
    fail(FrameErrorReason::kOversized, std::string(kind) + " feature count " + std::to_string(n_features) +
                                           " exceeds the limit " + std::to_string(kMaxFeatures));
}

void check_schema(std::uint16_t schema_id, std::uint32_t n_features) {
  if (schema_id == 0) fail(FrameErrorReason::kSchemaMismatch, "schema id 0 is reserved");
  if (schema_id == kSchemaLaserV1 && n_features != kChannelCount)
    fail(FrameErrorReason::kSchemaMismatch, "schema 1 has " + std::to_string(kChannelCount) +
                                                " channels, frame has " + std::to_string(n_features));
}

bool printable_ascii(const std::string& s) {
  for (const char c : s)
    if (c < 0x20 || c > 0x7e) return false;
  return true;
}

// Encoder-side argument errors are programming errors of the caller, not wire errors.
void check_encodable(bool ok, const std::string& what) {
  if (!ok) throw std::invalid_argument(what);
}

}  // namespace

const char* reason_code(FrameErrorReason reason) noexcept {
  switch (reason) {
    case FrameErrorReason::kBadMagic: return "bad_magic";
    case FrameErrorReason::kUnknownVersion: return "unknown_version";
    case FrameErrorReason::kTruncated: return "truncated";
    case FrameErrorReason::kCountMismatch: return "count_mismatch";
    case FrameErrorReason::kOversized: return "oversized";
    case FrameErrorReason::kBadHeader: return "bad_header";
    case FrameErrorReason::kSchemaMismatch: return "schema_mismatch";
    case FrameErrorReason::kBadIndex: return "bad_index";
    case FrameErrorReason::kBadString: return "bad_string";
    case FrameErrorReason::kBadState: return "bad_state";
  }
  return "unknown";
}

// ---------------------------------------------------------------------------- telemetry

namespace {

// Offsets of the per-unit context after the values (docs/protocol.md §3).
struct TelemetryLayout {
  std::size_t setpoint, state, padding, end;
};

TelemetryLayout telemetry_layout(std::size_t n_units, std::size_t n_features) noexcept {
  TelemetryLayout l{};
  l.setpoint = kTelemetryHeaderBytes + sizeof(float) * n_units * n_features;
  l.state = l.setpoint + sizeof(float) * n_units;
  l.padding = l.state + n_units;
  l.end = l.state + padded4(n_units);
  return l;
}

}  // namespace

std::size_t telemetry_size(std::uint32_t n_units, std::uint32_t n_features) noexcept {
  return telemetry_layout(n_units, n_features).end;
}

void TelemetryFrameView::copy_values(float* out) const noexcept { load_le_array(out, values_le, value_count()); }
void TelemetryFrameView::copy_setpoints(float* out) const noexcept { load_le_array(out, setpoint_le, header.n_units); }
void TelemetryFrameView::copy_states(std::uint8_t* out) const noexcept {
  if (header.n_units != 0) std::memcpy(out, state, header.n_units);
}
void TelemetryFrameView::copy_states(UnitState* out) const noexcept {
  // UnitState is one byte with std::uint8_t underneath; bytes may be written through any type.
  if (header.n_units != 0) std::memcpy(out, state, header.n_units);
}

void encode_telemetry(const TelemetryHeader& h, const float* values, const float* setpoint_a,
                      const std::uint8_t* state, std::vector<std::uint8_t>& out) {
  try {
    check_units_features(h.n_units, h.n_features, "telemetry frame");
    check_schema(h.schema_id, h.n_features);
  } catch (const FrameError& e) {
    throw std::invalid_argument(std::string("cannot encode: ") + e.what());
  }
  check_encodable(values != nullptr, "cannot encode telemetry: values pointer is null");
  check_encodable(setpoint_a != nullptr, "cannot encode telemetry: setpoint pointer is null");
  check_encodable(state != nullptr, "cannot encode telemetry: state pointer is null");
  for (std::uint32_t u = 0; u < h.n_units; ++u)
    check_encodable(state[u] < kUnitStateCount, "cannot encode telemetry: unit " + std::to_string(u) +
                                                    " has state code " + std::to_string(state[u]) +
                                                    ", valid codes are 0..3");
  const auto l = telemetry_layout(h.n_units, h.n_features);
  out.resize(l.end);
  std::uint8_t* p = out.data();
  std::memcpy(p + tm::kMagic, kTelemetryMagic, 4);
  store_le(p + tm::kVersion, kTelemetryVersion);
  store_le(p + tm::kSchema, h.schema_id);
  store_le(p + tm::kLcc, h.lcc_id);
  store_le(p + tm::kReserved, std::uint32_t{0});
  store_le(p + tm::kBoot, h.boot_id);
  store_le(p + tm::kSeq, h.seq);
  store_le(p + tm::kTimestamp, h.timestamp_ns);
  store_le(p + tm::kUnits, h.n_units);
  store_le(p + tm::kFeatures, h.n_features);
  store_le_array(p + kTelemetryHeaderBytes, values, static_cast<std::size_t>(h.n_units) * h.n_features);
  store_le_array(p + l.setpoint, setpoint_a, h.n_units);
  std::memcpy(p + l.state, state, h.n_units);
  std::fill(p + l.padding, p + l.end, std::uint8_t{0});  // `out` is reused: padding must be rewritten
}

void encode_telemetry(const TelemetryHeader& header, const float* values, const float* setpoint_a,
                      const UnitState* state, std::vector<std::uint8_t>& out) {
  // Reading a UnitState array through unsigned char is always allowed (one byte each).
  encode_telemetry(header, values, setpoint_a, reinterpret_cast<const std::uint8_t*>(state), out);
}

std::vector<std::uint8_t> encode_telemetry(const TelemetryHeader& header, const float* values,
                                           const float* setpoint_a, const std::uint8_t* state) {
  std::vector<std::uint8_t> out;
  encode_telemetry(header, values, setpoint_a, state, out);
  return out;
}

std::vector<std::uint8_t> encode_telemetry(const TelemetryHeader& header, const float* values,
                                           const float* setpoint_a, const UnitState* state) {
  std::vector<std::uint8_t> out;
  encode_telemetry(header, values, setpoint_a, state, out);
  return out;
}

TelemetryFrameView decode_telemetry(const std::uint8_t* data, std::size_t size) {
  check_prefix(data, size, kTelemetryMagic, kTelemetryVersion, kTelemetryHeaderBytes, "telemetry frame");
  const auto reserved = load_le<std::uint32_t>(data + tm::kReserved);
  if (reserved != 0)
    fail(FrameErrorReason::kBadHeader, "telemetry reserved field is " + std::to_string(reserved) + ", must be 0");
  TelemetryFrameView view;
  TelemetryHeader& h = view.header;
  h.schema_id = load_le<std::uint16_t>(data + tm::kSchema);
  h.lcc_id = load_le<std::uint32_t>(data + tm::kLcc);
  h.boot_id = load_le<std::uint64_t>(data + tm::kBoot);
  h.seq = load_le<std::uint64_t>(data + tm::kSeq);
  h.timestamp_ns = load_le<std::int64_t>(data + tm::kTimestamp);
  h.n_units = load_le<std::uint32_t>(data + tm::kUnits);
  h.n_features = load_le<std::uint32_t>(data + tm::kFeatures);
  check_units_features(h.n_units, h.n_features, "telemetry frame");
  check_schema(h.schema_id, h.n_features);
  const auto l = telemetry_layout(h.n_units, h.n_features);
  check_exact_size(size, l.end, "telemetry frame");
  for (std::size_t i = l.padding; i < l.end; ++i)
    if (data[i] != 0)
      fail(FrameErrorReason::kBadHeader, "telemetry state padding byte at offset " + std::to_string(i) +
                                             " is " + std::to_string(data[i]) + ", must be 0");
  for (std::uint32_t u = 0; u < h.n_units; ++u)
    if (data[l.state + u] >= kUnitStateCount)
      fail(FrameErrorReason::kBadState, "unit " + std::to_string(u) + " has state code " +
                                            std::to_string(data[l.state + u]) +
                                            ", valid codes are 0 (off), 1 (warming), 2 (on), 3 (derated)");
  view.values_le = data + kTelemetryHeaderBytes;
  view.setpoint_le = data + l.setpoint;
  view.state = data + l.state;
  return view;
}

// ----------------------------------------------------------------------------- feedback

namespace {

struct FeedbackLayout {
  std::size_t anomalous, scores, weights, features, end;
};

FeedbackLayout feedback_layout(std::size_t version_len, std::size_t n_anomalous, std::size_t n_units,
                               std::size_t top_k) noexcept {
  FeedbackLayout l{};
  l.anomalous = kFeedbackHeaderBytes + padded4(version_len);
  l.scores = l.anomalous + 4 * n_anomalous;
  l.weights = l.scores + 4 * n_units;
  l.features = l.weights + 4 * n_units * top_k;
  l.end = l.features + 2 * n_units * top_k;
  return l;
}

void check_feedback_indices(const Feedback& f) {
  for (std::size_t i = 0; i < f.anomalous_units.size(); ++i) {
    const auto u = f.anomalous_units[i];
    if (u >= f.n_units)
      fail(FrameErrorReason::kBadIndex, "anomalous unit " + std::to_string(u) + " is not below the unit count " +
                                            std::to_string(f.n_units));
    if (i > 0 && u <= f.anomalous_units[i - 1])
      fail(FrameErrorReason::kBadIndex, "anomalous units must be strictly increasing, got " +
                                            std::to_string(f.anomalous_units[i - 1]) + " then " + std::to_string(u));
  }
  const auto n_codes = static_cast<int>(f.n_features * kExplanationCodesPerFeature);
  for (std::size_t i = 0; i < f.top_features.size(); ++i) {
    const auto feat = f.top_features[i];
    if (feat < -1 || feat >= n_codes)
      fail(FrameErrorReason::kBadIndex, "top feature " + std::to_string(feat) + " of unit " +
                                            std::to_string(i / (f.top_k ? f.top_k : 1)) + " is outside [-1, " +
                                            std::to_string(n_codes) + ")");
  }
}

void check_feedback_counts(const Feedback& f) {
  check_units_features(f.n_units, f.n_features, "feedback");
  if (f.top_k > kMaxTopK)
    fail(FrameErrorReason::kOversized, "feedback top_k " + std::to_string(f.top_k) + " exceeds the limit " +
                                           std::to_string(kMaxTopK));
  if (f.model_version.size() > kMaxModelVersionBytes)
    fail(FrameErrorReason::kOversized, "model version is " + std::to_string(f.model_version.size()) +
                                           " bytes, limit " + std::to_string(kMaxModelVersionBytes));
  if (!printable_ascii(f.model_version))
    fail(FrameErrorReason::kBadString, "model version contains a byte outside printable ASCII");
  if (f.anomalous_units.size() > f.n_units)
    fail(FrameErrorReason::kCountMismatch, std::to_string(f.anomalous_units.size()) +
                                               " anomalous units listed for " + std::to_string(f.n_units) + " units");
}

}  // namespace

std::size_t feedback_size(const Feedback& f) noexcept {
  return feedback_layout(f.model_version.size(), f.anomalous_units.size(), f.n_units, f.top_k).end;
}

void encode_feedback(const Feedback& f, std::vector<std::uint8_t>& out) {
  const std::size_t per_unit = static_cast<std::size_t>(f.n_units) * f.top_k;
  try {
    check_feedback_counts(f);
    check_encodable(f.scores.size() == f.n_units, "feedback has " + std::to_string(f.scores.size()) +
                                                      " scores for " + std::to_string(f.n_units) + " units");
    check_encodable(f.top_weights.size() == per_unit && f.top_features.size() == per_unit,
                    "feedback top arrays have " + std::to_string(f.top_features.size()) + " features and " +
                        std::to_string(f.top_weights.size()) + " weights, expected n_units*top_k = " +
                        std::to_string(per_unit));
    check_feedback_indices(f);
  } catch (const FrameError& e) {
    throw std::invalid_argument(std::string("cannot encode: ") + e.what());
  }
  const auto l = feedback_layout(f.model_version.size(), f.anomalous_units.size(), f.n_units, f.top_k);
  out.assign(l.end, 0);  // zero fill also writes the version string's padding
  std::uint8_t* p = out.data();
  std::memcpy(p + fb::kMagic, kFeedbackMagic, 4);
  store_le(p + fb::kVersion, kFeedbackVersion);
  store_le(p + fb::kFeatures, f.n_features);
  store_le(p + fb::kLcc, f.lcc_id);
  store_le(p + fb::kUnits, f.n_units);
  store_le(p + fb::kBoot, f.boot_id);
  store_le(p + fb::kSeq, f.seq);
  store_le(p + fb::kTimestamp, f.timestamp_ns);
  store_le(p + fb::kAnomalous, static_cast<std::uint32_t>(f.anomalous_units.size()));
  store_le(p + fb::kTopK, f.top_k);
  store_le(p + fb::kVersionLen, static_cast<std::uint16_t>(f.model_version.size()));
  if (!f.model_version.empty()) std::memcpy(p + kFeedbackHeaderBytes, f.model_version.data(), f.model_version.size());
  store_le_array(p + l.anomalous, f.anomalous_units.data(), f.anomalous_units.size());
  store_le_array(p + l.scores, f.scores.data(), f.scores.size());
  store_le_array(p + l.weights, f.top_weights.data(), f.top_weights.size());
  store_le_array(p + l.features, f.top_features.data(), f.top_features.size());
}

std::vector<std::uint8_t> encode_feedback(const Feedback& feedback) {
  std::vector<std::uint8_t> out;
  encode_feedback(feedback, out);
  return out;
}

Feedback decode_feedback(const std::uint8_t* data, std::size_t size) {
  check_prefix(data, size, kFeedbackMagic, kFeedbackVersion, kFeedbackHeaderBytes, "feedback");
  Feedback f;
  f.n_features = load_le<std::uint16_t>(data + fb::kFeatures);
  f.lcc_id = load_le<std::uint32_t>(data + fb::kLcc);
  f.n_units = load_le<std::uint32_t>(data + fb::kUnits);
  f.boot_id = load_le<std::uint64_t>(data + fb::kBoot);
  f.seq = load_le<std::uint64_t>(data + fb::kSeq);
  f.timestamp_ns = load_le<std::int64_t>(data + fb::kTimestamp);
  const auto n_anomalous = load_le<std::uint32_t>(data + fb::kAnomalous);
  f.top_k = load_le<std::uint16_t>(data + fb::kTopK);
  const auto version_len = load_le<std::uint16_t>(data + fb::kVersionLen);

  // Counts first (bounded), so the layout below cannot overflow or over-allocate.
  check_units_features(f.n_units, f.n_features, "feedback");
  if (f.top_k > kMaxTopK)
    fail(FrameErrorReason::kOversized, "feedback top_k " + std::to_string(f.top_k) + " exceeds the limit " +
                                           std::to_string(kMaxTopK));
  if (version_len > kMaxModelVersionBytes)
    fail(FrameErrorReason::kOversized, "model version length " + std::to_string(version_len) +
                                           " exceeds the limit " + std::to_string(kMaxModelVersionBytes));
  if (n_anomalous > f.n_units)
    fail(FrameErrorReason::kCountMismatch, std::to_string(n_anomalous) + " anomalous units listed for " +
                                               std::to_string(f.n_units) + " units");
  const auto l = feedback_layout(version_len, n_anomalous, f.n_units, f.top_k);
  check_exact_size(size, l.end, "feedback");

  f.model_version.assign(reinterpret_cast<const char*>(data + kFeedbackHeaderBytes), version_len);
  if (!printable_ascii(f.model_version))
    fail(FrameErrorReason::kBadString, "model version contains a byte outside printable ASCII");
  for (std::size_t i = kFeedbackHeaderBytes + version_len; i < l.anomalous; ++i)
    if (data[i] != 0) fail(FrameErrorReason::kBadHeader, "model version padding byte at offset " +
                                                             std::to_string(i) + " is not zero");
  const std::size_t per_unit = static_cast<std::size_t>(f.n_units) * f.top_k;
  f.anomalous_units.resize(n_anomalous);
  f.scores.resize(f.n_units);
  f.top_weights.resize(per_unit);
  f.top_features.resize(per_unit);
  load_le_array(f.anomalous_units.data(), data + l.anomalous, n_anomalous);
  load_le_array(f.scores.data(), data + l.scores, f.n_units);
  load_le_array(f.top_weights.data(), data + l.weights, per_unit);
  load_le_array(f.top_features.data(), data + l.features, per_unit);
  check_feedback_indices(f);
  return f;
}

std::string telemetry_topic(std::uint32_t lcc_id) { return "lcc." + std::to_string(lcc_id) + ".telemetry"; }
std::string feedback_topic(std::uint32_t lcc_id) { return "lcc." + std::to_string(lcc_id) + ".anomaly"; }

}  // namespace laserguard
