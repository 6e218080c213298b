#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "laserguard/wire/byte_order.hpp"
#include "laserguard/wire/telemetry_codec.hpp"
#include "laserguard/wire/telemetry_schema.hpp"

using namespace laserguard;

namespace {

TelemetryHeader header(std::uint32_t units) {
  TelemetryHeader h;
  h.lcc_id = 2;
  h.boot_id = 0xA1B2C3D4E5F60718ULL;
  h.seq = 0x0102030405060708ULL;
  h.timestamp_ns = -5;
  h.schema_id = kSchemaLaserV1;
  h.n_units = units;
  h.n_features = kChannelCount;
  return h;
}

std::vector<float> ramp(std::size_t n) {
  std::vector<float> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<float>(i) * 0.5f - 3.0f;
  return v;
}

// Per-unit context of a frame: setpoints 7.0, 7.5, ... A and states cycling through all four.
struct Context {
  std::vector<float> setpoint_a;
  std::vector<UnitState> state;
};

Context context(std::uint32_t units) {
  Context c;
  for (std::uint32_t u = 0; u < units; ++u) {
    c.setpoint_a.push_back(7.0F + 0.5F * static_cast<float>(u));
    c.state.push_back(static_cast<UnitState>(u % kUnitStateCount));
  }
  return c;
}

std::vector<std::uint8_t> encode(const TelemetryHeader& h, const std::vector<float>& values) {
  const auto c = context(h.n_units);
  return encode_telemetry(h, values.data(), c.setpoint_a.data(), c.state.data());
}

Feedback small_feedback() {
  Feedback f;
  f.lcc_id = 7;
  f.boot_id = 0xFEEDFACECAFEBEEFULL;
  f.seq = 99;
  f.timestamp_ns = 1234567890123;
  f.model_version = "lgf-1.0-abc";
  f.n_features = 11;
  f.n_units = 3;
  f.top_k = 2;
  f.anomalous_units = {0, 2};
  f.scores = {-0.1f, 0.2f, -0.3f};
  f.top_weights = {0.5f, 0.25f, 0.0f, 0.0f, 0.7f, 0.1f};
  f.top_features = {4, 2, -1, -1, 10, 0};
  return f;
}

FrameErrorReason reason_of_telemetry(const std::vector<std::uint8_t>& bytes) {
  try {
    decode_telemetry(bytes.data(), bytes.size());
  } catch (const FrameError& e) {
    return e.reason();
  }
  FAIL("decoder accepted a bad frame");
  return FrameErrorReason::kBadHeader;
}

FrameErrorReason reason_of_feedback(const std::vector<std::uint8_t>& bytes) {
  try {
    decode_feedback(bytes.data(), bytes.size());
  } catch (const FrameError& e) {
    return e.reason();
  }
  FAIL("decoder accepted a bad feedback message");
  return FrameErrorReason::kBadHeader;
}

}  // namespace

TEST_CASE("telemetry round trip keeps header, context and every float bit, NaN included") {
  auto values = ramp(4 * kChannelCount);
  values[5] = std::numeric_limits<float>::quiet_NaN();
  values[6] = -std::numeric_limits<float>::infinity();
  auto ctx = context(4);
  ctx.setpoint_a[1] = std::numeric_limits<float>::quiet_NaN();  // unknown setpoint
  const auto bytes = encode_telemetry(header(4), values.data(), ctx.setpoint_a.data(), ctx.state.data());
  // header, values, 4 setpoints, 4 state bytes (already a multiple of 4: no padding)
  CHECK(bytes.size() == kTelemetryHeaderBytes + 4 * 4 * kChannelCount + 4 * 4 + 4);
  CHECK(bytes.size() == telemetry_size(4, kChannelCount));
  const auto view = decode_telemetry(bytes.data(), bytes.size());
  CHECK(view.header.lcc_id == 2);
  CHECK(view.header.boot_id == 0xA1B2C3D4E5F60718ULL);
  CHECK(view.header.seq == 0x0102030405060708ULL);
  CHECK(view.header.timestamp_ns == -5);
  CHECK(view.header.n_units == 4);
  std::vector<float> back(view.value_count());
  view.copy_values(back.data());
  CHECK(std::memcmp(back.data(), values.data(), back.size() * sizeof(float)) == 0);
  std::vector<float> setpoints(4);
  view.copy_setpoints(setpoints.data());
  CHECK(std::memcmp(setpoints.data(), ctx.setpoint_a.data(), 4 * sizeof(float)) == 0);
  CHECK(std::isnan(setpoints[1]));
  std::vector<UnitState> states(4);
  view.copy_states(states.data());
  CHECK(states == ctx.state);
  CHECK(view.unit_state(3) == UnitState::kDerated);
  std::vector<std::uint8_t> codes(4);
  view.copy_states(codes.data());
  CHECK(codes == std::vector<std::uint8_t>{0, 1, 2, 3});
}

TEST_CASE("unit states have the contract's codes and names") {
  CHECK(static_cast<int>(UnitState::kOff) == 0);
  CHECK(static_cast<int>(UnitState::kWarming) == 1);
  CHECK(static_cast<int>(UnitState::kOn) == 2);
  CHECK(static_cast<int>(UnitState::kDerated) == 3);
  CHECK(std::string(unit_state_name(UnitState::kOff)) == "off");
  CHECK(std::string(unit_state_name(UnitState::kWarming)) == "warming");
  CHECK(std::string(unit_state_name(UnitState::kOn)) == "on");
  CHECK(std::string(unit_state_name(UnitState::kDerated)) == "derated");
  CHECK(std::string(unit_state_name(static_cast<UnitState>(4))) == "invalid");
}

TEST_CASE("the context follows the values: setpoints, states, zero padding to 4 bytes") {
  for (const std::uint32_t units : {1U, 2U, 3U, 4U, 5U}) {
    CAPTURE(units);
    const auto values = ramp(units * kChannelCount);
    const auto ctx = context(units);
    const auto b = encode_telemetry(header(units), values.data(), ctx.setpoint_a.data(), ctx.state.data());
    const std::size_t c = 48 + 4 * units * kChannelCount;
    CHECK(b.size() == c + 4 * units + ((units + 3) & ~3U));
    for (std::uint32_t u = 0; u < units; ++u) {
      CHECK(load_le<float>(&b[c + 4 * u]) == ctx.setpoint_a[u]);
      CHECK(b[c + 4 * units + u] == u % 4);
    }
    for (std::size_t i = c + 5 * units; i < b.size(); ++i) CHECK(b[i] == 0);
  }
}

TEST_CASE("a reused output buffer gets fresh zero padding") {
  const auto values = ramp(kChannelCount);
  const auto ctx = context(1);
  std::vector<std::uint8_t> out(200, 0xAB);
  encode_telemetry(header(1), values.data(), ctx.setpoint_a.data(), ctx.state.data(), out);
  CHECK(out.size() == telemetry_size(1, kChannelCount));
  CHECK_NOTHROW(decode_telemetry(out.data(), out.size()));
}

TEST_CASE("telemetry header sits at the documented little-endian offsets") {
  const auto values = ramp(kChannelCount);
  const auto b = encode(header(1), values);
  CHECK(std::string(b.begin(), b.begin() + 4) == "LGTM");
  CHECK(load_le<std::uint16_t>(&b[4]) == kTelemetryVersion);
  CHECK(load_le<std::uint16_t>(&b[6]) == 1);
  CHECK(load_le<std::uint32_t>(&b[8]) == 2);
  CHECK(kTelemetryVersion == 3);
  CHECK(kFeedbackVersion == 3);
  CHECK(load_le<std::uint64_t>(&b[16]) == 0xA1B2C3D4E5F60718ULL);
  CHECK(b[16] == 0x18);  // boot id least significant byte first
  CHECK(b[24] == 0x08);  // seq least significant byte first
  CHECK(load_le<std::int64_t>(&b[32]) == -5);
  CHECK(load_le<std::uint32_t>(&b[40]) == 1);
  CHECK(load_le<std::uint32_t>(&b[44]) == kChannelCount);
  CHECK(load_le<float>(&b[48]) == values[0]);
}

TEST_CASE("telemetry decoder rejects each kind of bad frame with its reason") {
  const auto values = ramp(2 * kChannelCount);
  const auto good = encode(header(2), values);

  auto b = good;
  b[0] = 'X';
  CHECK(reason_of_telemetry(b) == FrameErrorReason::kBadMagic);
  b = good;
  for (const std::uint16_t other : {std::uint16_t{1}, std::uint16_t{2}, std::uint16_t{4}}) {
    store_le<std::uint16_t>(&b[4], other);
    CHECK(reason_of_telemetry(b) == FrameErrorReason::kUnknownVersion);
  }
  for (std::size_t n : {0UL, 3UL, 5UL, 47UL, good.size() - 1}) {
    CHECK(reason_of_telemetry(std::vector<std::uint8_t>(good.begin(), good.begin() + static_cast<long>(n))) ==
          FrameErrorReason::kTruncated);
  }
  b = good;
  b.push_back(0);
  CHECK(reason_of_telemetry(b) == FrameErrorReason::kCountMismatch);
  b = good;
  store_le<std::uint32_t>(&b[40], 0);
  CHECK(reason_of_telemetry(b) == FrameErrorReason::kCountMismatch);
  b = good;
  store_le<std::uint32_t>(&b[40], 0xFFFFFFFFU);
  CHECK(reason_of_telemetry(b) == FrameErrorReason::kOversized);
  b = good;
  store_le<std::uint32_t>(&b[44], kMaxFeatures + 1);
  CHECK(reason_of_telemetry(b) == FrameErrorReason::kOversized);
  b = good;
  store_le<std::uint32_t>(&b[44], 10);
  CHECK(reason_of_telemetry(b) == FrameErrorReason::kSchemaMismatch);
  b = good;
  store_le<std::uint16_t>(&b[6], 0);
  CHECK(reason_of_telemetry(b) == FrameErrorReason::kSchemaMismatch);
  b = good;
  b[12] = 1;
  CHECK(reason_of_telemetry(b) == FrameErrorReason::kBadHeader);
  // 2 units: state bytes at C + 8 and C + 9, padding at C + 10 and C + 11.
  const std::size_t c = 48 + 4 * 2 * kChannelCount;
  REQUIRE(good.size() == c + 12);
  b = good;
  b[c + 11] = 1;
  CHECK(reason_of_telemetry(b) == FrameErrorReason::kBadHeader);
  b = good;
  b[c + 9] = 4;
  CHECK(reason_of_telemetry(b) == FrameErrorReason::kBadState);
  b = good;
  b[c + 8] = 0xFF;
  CHECK(reason_of_telemetry(b) == FrameErrorReason::kBadState);
  b = good;
  b[c + 9] = 3;  // derated: the highest valid code
  CHECK(decode_telemetry(b.data(), b.size()).unit_state(1) == UnitState::kDerated);
}

TEST_CASE("a bad state byte is named with its unit and value") {
  const auto values = ramp(3 * kChannelCount);
  auto b = encode(header(3), values);
  b[48 + 4 * 3 * kChannelCount + 12 + 2] = 9;
  try {
    decode_telemetry(b.data(), b.size());
    FAIL("state 9 accepted");
  } catch (const FrameError& e) {
    CHECK(std::string(e.code()) == "bad_state");
    CHECK(std::string(e.what()).find("unit 2 has state code 9") != std::string::npos);
  }
}

TEST_CASE("reason codes are the documented short strings") {
  for (const auto r : kAllFrameErrorReasons) CHECK(std::string(reason_code(r)) != "unknown");
  CHECK(std::string(reason_code(FrameErrorReason::kBadMagic)) == "bad_magic");
  CHECK(std::string(reason_code(FrameErrorReason::kTruncated)) == "truncated");
  CHECK(std::string(reason_code(FrameErrorReason::kCountMismatch)) == "count_mismatch");
  CHECK(std::string(reason_code(FrameErrorReason::kUnknownVersion)) == "unknown_version");
  CHECK(std::string(reason_code(FrameErrorReason::kOversized)) == "oversized");
  CHECK(std::string(reason_code(FrameErrorReason::kBadState)) == "bad_state");
}

TEST_CASE("a schema other than 1 may carry any feature count") {
  auto h = header(3);
  h.schema_id = 9;
  h.n_features = 4;
  const auto values = ramp(12);
  const auto b = encode(h, values);
  CHECK(decode_telemetry(b.data(), b.size()).header.n_features == 4);
}

TEST_CASE("the encoder refuses headers the decoder would reject") {
  const auto values = ramp(kChannelCount);
  const float setpoint = 8.0F;
  const UnitState on = UnitState::kOn;
  auto h = header(1);
  h.n_features = 3;
  CHECK_THROWS_AS(encode_telemetry(h, values.data(), &setpoint, &on), std::invalid_argument);
  h = header(kMaxUnits + 1);
  CHECK_THROWS_AS(encode_telemetry(h, values.data(), &setpoint, &on), std::invalid_argument);
  h = header(1);
  const std::uint8_t bad_state = 4;
  CHECK_THROWS_AS(encode_telemetry(h, values.data(), &setpoint, &bad_state), std::invalid_argument);
  CHECK_THROWS_AS(encode_telemetry(h, values.data(), nullptr, &on), std::invalid_argument);
  CHECK_THROWS_AS(encode_telemetry(h, values.data(), &setpoint, static_cast<const UnitState*>(nullptr)),
                  std::invalid_argument);
}

TEST_CASE("feedback round trip keeps every field") {
  const auto f = small_feedback();
  const auto b = encode_feedback(f);
  CHECK(b.size() == feedback_size(f));
  CHECK(b.size() == 48 + 12 + 4 * 2 + 4 * 3 + 4 * 6 + 2 * 6);
  CHECK(load_le<std::uint64_t>(&b[16]) == 0xFEEDFACECAFEBEEFULL);
  CHECK(load_le<std::uint64_t>(&b[24]) == 99);
  const auto back = decode_feedback(b.data(), b.size());
  CHECK(back.lcc_id == 7);
  CHECK(back.boot_id == 0xFEEDFACECAFEBEEFULL);
  CHECK(back.seq == 99);
  CHECK(back.timestamp_ns == 1234567890123);
  CHECK(back.model_version == "lgf-1.0-abc");
  CHECK(back.anomalous_units == f.anomalous_units);
  CHECK(back.scores == f.scores);
  CHECK(back.top_weights == f.top_weights);
  CHECK(back.top_features == f.top_features);
}

TEST_CASE("feedback decoder rejects bad indices, strings, padding and sizes") {
  const auto good = encode_feedback(small_feedback());
  const std::size_t anomalous_at = 48 + 12;  // "lgf-1.0-abc" is 11 bytes, padded to 12
  auto b = good;
  store_le<std::uint32_t>(&b[anomalous_at], 3);  // unit 3 of 3
  CHECK(reason_of_feedback(b) == FrameErrorReason::kBadIndex);
  b = good;
  store_le<std::uint32_t>(&b[anomalous_at + 4], 0);  // 0 after 0: not increasing
  CHECK(reason_of_feedback(b) == FrameErrorReason::kBadIndex);
  b = good;
  // Explanation codes: 11 forest features then 7 unit-stage kinds per channel, so 88 is one past.
  store_le<std::int16_t>(&b[b.size() - 2], 88);
  CHECK(reason_of_feedback(b) == FrameErrorReason::kBadIndex);
  store_le<std::int16_t>(&b[b.size() - 2], 87);
  CHECK(decode_feedback(b.data(), b.size()).top_features.back() == 87);
  b = good;
  b[48] = 0x07;
  CHECK(reason_of_feedback(b) == FrameErrorReason::kBadString);
  b = good;
  b[59] = 'x';  // padding byte
  CHECK(reason_of_feedback(b) == FrameErrorReason::kBadHeader);
  b = good;
  store_le<std::uint32_t>(&b[40], 4);  // 4 anomalous of 3 units
  CHECK(reason_of_feedback(b) == FrameErrorReason::kCountMismatch);
  b = good;
  store_le<std::uint16_t>(&b[44], kMaxTopK + 1);
  CHECK(reason_of_feedback(b) == FrameErrorReason::kOversized);
  b = good;
  store_le<std::uint16_t>(&b[46], 300);
  CHECK(reason_of_feedback(b) == FrameErrorReason::kOversized);
  b = good;
  b.pop_back();
  CHECK(reason_of_feedback(b) == FrameErrorReason::kTruncated);
  b = good;
  b[3] = 'M';
  CHECK(reason_of_feedback(b) == FrameErrorReason::kBadMagic);
  b = good;
  store_le<std::uint16_t>(&b[4], 1);  // a version-1 detector's answer
  CHECK(reason_of_feedback(b) == FrameErrorReason::kUnknownVersion);
}

TEST_CASE("an older telemetry frame is refused with a message naming both versions") {
  // A genuine version-2 frame: the same header, the values, and no context after them.
  const auto values = ramp(kChannelCount);
  auto b = encode(header(1), values);
  b.resize(48 + 4 * kChannelCount);
  for (const std::uint16_t old : {std::uint16_t{2}, std::uint16_t{1}}) {
    store_le<std::uint16_t>(&b[4], old);
    try {
      decode_telemetry(b.data(), b.size());
      FAIL("an old version was accepted");
    } catch (const FrameError& e) {
      CHECK(e.reason() == FrameErrorReason::kUnknownVersion);
      const std::string what = e.what();
      CHECK(what.find("telemetry frame version " + std::to_string(old) + " is not supported") != std::string::npos);
      CHECK(what.find("reads version 3") != std::string::npos);
      CHECK(what.find(old == 2 ? "setpoint and state" : "boot ids") != std::string::npos);
    }
  }
}

TEST_CASE("feedback is version 3 (v3 explanation codes) and refuses version 2, naming why") {
  auto b = encode_feedback(small_feedback());
  CHECK(load_le<std::uint16_t>(&b[4]) == 3);
  store_le<std::uint16_t>(&b[4], 2);
  CHECK(reason_of_feedback(b) == FrameErrorReason::kUnknownVersion);
  try {
    decode_feedback(b.data(), b.size());
  } catch (const FrameError& e) {
    CHECK(std::string(e.what()).find("explanation codes of detection engine v3") != std::string::npos);
  }
}

TEST_CASE("topics name the LCC and the kind") {
  CHECK(telemetry_topic(1) == "lcc.1.telemetry");
  CHECK(feedback_topic(12) == "lcc.12.anomaly");
}
