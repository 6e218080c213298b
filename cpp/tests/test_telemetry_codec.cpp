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

TEST_CASE("telemetry round trip keeps header and every float bit, NaN included") {
  auto values = ramp(4 * kChannelCount);
  values[5] = std::numeric_limits<float>::quiet_NaN();
  values[6] = -std::numeric_limits<float>::infinity();
  const auto bytes = encode_telemetry(header(4), values.data());
  CHECK(bytes.size() == kTelemetryHeaderBytes + 4 * 4 * kChannelCount);
  const auto view = decode_telemetry(bytes.data(), bytes.size());
  CHECK(view.header.lcc_id == 2);
  CHECK(view.header.boot_id == 0xA1B2C3D4E5F60718ULL);
  CHECK(view.header.seq == 0x0102030405060708ULL);
  CHECK(view.header.timestamp_ns == -5);
  CHECK(view.header.n_units == 4);
  std::vector<float> back(view.value_count());
  view.copy_values(back.data());
  CHECK(std::memcmp(back.data(), values.data(), back.size() * sizeof(float)) == 0);
}

TEST_CASE("telemetry header sits at the documented little-endian offsets") {
  const auto values = ramp(kChannelCount);
  const auto b = encode_telemetry(header(1), values.data());
  CHECK(std::string(b.begin(), b.begin() + 4) == "LGTM");
  CHECK(load_le<std::uint16_t>(&b[4]) == kProtocolVersion);
  CHECK(load_le<std::uint16_t>(&b[6]) == 1);
  CHECK(load_le<std::uint32_t>(&b[8]) == 2);
  CHECK(kProtocolVersion == 2);
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
  const auto good = encode_telemetry(header(2), values.data());

  auto b = good;
  b[0] = 'X';
  CHECK(reason_of_telemetry(b) == FrameErrorReason::kBadMagic);
  b = good;
  for (const std::uint16_t other : {std::uint16_t{1}, std::uint16_t{3}}) {
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
}

TEST_CASE("reason codes are the documented short strings") {
  for (const auto r : kAllFrameErrorReasons) CHECK(std::string(reason_code(r)) != "unknown");
  CHECK(std::string(reason_code(FrameErrorReason::kBadMagic)) == "bad_magic");
  CHECK(std::string(reason_code(FrameErrorReason::kTruncated)) == "truncated");
  CHECK(std::string(reason_code(FrameErrorReason::kCountMismatch)) == "count_mismatch");
  CHECK(std::string(reason_code(FrameErrorReason::kUnknownVersion)) == "unknown_version");
  CHECK(std::string(reason_code(FrameErrorReason::kOversized)) == "oversized");
}

TEST_CASE("a schema other than 1 may carry any feature count") {
  auto h = header(3);
  h.schema_id = 9;
  h.n_features = 4;
  const auto values = ramp(12);
  const auto b = encode_telemetry(h, values.data());
  CHECK(decode_telemetry(b.data(), b.size()).header.n_features == 4);
}

TEST_CASE("the encoder refuses headers the decoder would reject") {
  const auto values = ramp(kChannelCount);
  auto h = header(1);
  h.n_features = 3;
  CHECK_THROWS_AS(encode_telemetry(h, values.data()), std::invalid_argument);
  h = header(kMaxUnits + 1);
  CHECK_THROWS_AS(encode_telemetry(h, values.data()), std::invalid_argument);
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
  // Explanation codes: 11 forest features then 4 baseline kinds per channel, so 55 is one past.
  store_le<std::int16_t>(&b[b.size() - 2], 55);
  CHECK(reason_of_feedback(b) == FrameErrorReason::kBadIndex);
  store_le<std::int16_t>(&b[b.size() - 2], 54);
  CHECK(decode_feedback(b.data(), b.size()).top_features.back() == 54);
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

TEST_CASE("a version-1 frame is refused with a message naming both versions") {
  const auto values = ramp(kChannelCount);
  auto b = encode_telemetry(header(1), values.data());
  store_le<std::uint16_t>(&b[4], 1);
  try {
    decode_telemetry(b.data(), b.size());
    FAIL("version 1 accepted");
  } catch (const FrameError& e) {
    CHECK(e.reason() == FrameErrorReason::kUnknownVersion);
    const std::string what = e.what();
    CHECK(what.find("version 1 is not supported") != std::string::npos);
    CHECK(what.find("reads version 2") != std::string::npos);
  }
}

TEST_CASE("topics name the LCC and the kind") {
  CHECK(telemetry_topic(1) == "lcc.1.telemetry");
  CHECK(feedback_topic(12) == "lcc.12.anomaly");
}
