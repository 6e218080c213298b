#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <vector>

#include "laserguard/live/frame_scorer.hpp"
#include "laserguard/wire/telemetry_codec.hpp"

using namespace laserguard;

namespace {

// A one-split forest on channel 0 of a 2-channel schema-0 frame, plus a baseline stage.
std::shared_ptr<const ForestModel> small_model(bool with_baseline) {
  ForestSpec spec;
  spec.n_features = 2;
  spec.feature_names = {"a", "b"};
  spec.denominator = 2.0;
  spec.offset = -0.5;
  TreeSpec t;
  t.left = {1, -1, -1};
  t.right = {2, -1, -1};
  t.feature = {0, -1, -1};
  t.threshold = {10.0, 0.0, 0.0};
  t.missing_go_left = {1, 0, 0};
  t.value = {0.0, 2.0, 1.0};  // beyond 10 isolates sooner
  spec.trees = {t, t};
  if (with_baseline) {
    BaselineParams p;
    p.n_channels = 2;
    p.baseline_samples = 5;
    p.window = 4;
    p.threshold = 3.0;
    p.sigma_floor = {1e-6, 1e-6};
    p.stuck_run = {0, 0};
    p.scored = {0, 1};
    p.level_scale = {1.0, 1.0};
    p.spread_scale = {100.0, 100.0};
    p.judge_spread = {1, 1};
    p.fleet_cut = -0.2;
    spec.baseline = p;
  }
  return std::make_shared<const ForestModel>(spec);
}

std::vector<std::uint8_t> frame(std::uint64_t seq, const std::vector<float>& values) {
  TelemetryHeader h;
  h.lcc_id = 3;
  h.seq = seq;
  h.timestamp_ns = static_cast<std::int64_t>(seq) * 1'000'000'000;
  h.schema_id = 7;  // application-defined: two channels
  h.n_units = static_cast<std::uint32_t>(values.size() / 2);
  h.n_features = 2;
  const std::vector<float> setpoints(h.n_units, 8.0F);
  const std::vector<UnitState> states(h.n_units, UnitState::kOn);
  return encode_telemetry(h, values.data(), setpoints.data(), states.data());
}

}  // namespace

TEST_CASE("frame scorer: asks for an unknown LCC, then decodes, scores both stages and encodes") {
  FrameScorer scorer(small_model(true), "m1", 2);
  std::vector<std::uint8_t> feedback;
  const auto first = frame(0, {1.0F, 5.0F, 1.1F, 5.0F});
  const auto asked = scorer.score(first.data(), first.size(), 7, feedback);
  CHECK(asked.needs_lcc);
  CHECK(asked.n_units == 2);
  scorer.add_lcc(3, 2);
  for (std::uint64_t s = 0; s < 8; ++s) {
    const float jitter = (s % 2) ? 0.1F : -0.1F;
    const auto f = frame(s, {1.0F + jitter, 5.0F - jitter, 1.1F - jitter, 5.0F + jitter});
    const auto o = scorer.score(f.data(), f.size(), 7, feedback);
    CHECK_FALSE(o.needs_lcc);
    CHECK(o.learning == (s < 5 ? 2U : 0U));
    CHECK(o.anomalous == 0U);
  }
  // Unit 1's channel 1 steps far from its own baseline (the forest splits only on channel 0).
  const auto step = frame(8, {1.0F, 5.0F, 1.1F, 50.0F});
  const auto o = scorer.score(step.data(), step.size(), 99, feedback);
  CHECK(o.anomalous == 1U);
  CHECK(o.by_baseline == 1U);
  const Feedback fb = decode_feedback(feedback.data(), feedback.size());
  CHECK(fb.seq == 8);
  CHECK(fb.timestamp_ns == 99);
  CHECK(fb.model_version == "m1");
  REQUIRE(fb.anomalous_units == std::vector<std::uint32_t>{1});
  CHECK(fb.top_features[1 * 2] == 2 + 1 * 7 + 0);  // n_features + channel 1 * 7 kinds + level
  CHECK(fb.scores[1] < 0.0F);
  CHECK(scorer.last_scores(3).size() == 2);
  CHECK(std::isfinite(scorer.last_baseline(3)[0]));
  const auto nan = frame(9, {std::numeric_limits<float>::infinity(), 5.0F, 1.1F, 5.0F});
  CHECK(scorer.score(nan.data(), nan.size(), 0, feedback).nonfinite == 1U);
  CHECK_THROWS_AS(scorer.score(step.data(), step.size() - 1, 0, feedback), FrameError);
}

TEST_CASE("frame scorer: a forest-only model flags on the forest; a new model keeps the baselines") {
  FrameScorer scorer(small_model(false), "v1", 3);
  scorer.add_lcc(3, 1);
  std::vector<std::uint8_t> feedback;
  const auto odd = frame(0, {20.0F, 0.0F});
  const auto o = scorer.score(odd.data(), odd.size(), 0, feedback);
  // depths 2 per tree -> 4 / 2 = 2 -> -2^-2 = -0.25 - (-0.5) = 0.25: normal.
  CHECK(o.anomalous == 0U);
  const auto feedback_v1 = decode_feedback(feedback.data(), feedback.size());
  CHECK(feedback_v1.top_k == 2);  // capped at n_features
  FrameScorer v2(small_model(true), "m2", 2);
  v2.add_lcc(3, 1);
  for (std::uint64_t s = 0; s < 7; ++s) {
    const auto f = frame(s, {1.0F + 0.1F * static_cast<float>(s % 2), 5.0F});
    v2.score(f.data(), f.size(), 0, feedback);
  }
  CHECK(v2.scorer(3)->stage()->unit_info(0).phase == UnitPhase::kReady);
  CHECK(v2.set_model(small_model(true), "m3").empty());
  CHECK(v2.model_version() == "m3");
  CHECK(v2.scorer(3)->stage()->unit_info(0).phase == UnitPhase::kReady);  // carried over
}

TEST_CASE("frame scorer: a dry run (detect's warm-up) answers like the real frame and keeps nothing") {
  FrameScorer warmed(small_model(true), "m1", 2);
  FrameScorer plain(small_model(true), "m1", 2);
  std::vector<std::uint8_t> a, b, dry;
  const auto first = frame(0, {1.0F, 5.0F, 1.1F, 5.0F});
  CHECK(warmed.score(first.data(), first.size(), 7, dry, true).needs_lcc);  // a dry run registers nothing
  warmed.add_lcc(3, 2);
  plain.add_lcc(3, 2);
  for (std::uint64_t s = 0; s < 12; ++s) {
    const float jitter = (s % 2) ? 0.1F : -0.1F;
    const float fault = s >= 9 ? 40.0F : 0.0F;
    const auto f = frame(s, {1.0F + jitter, 5.0F - jitter, 1.1F - jitter, 5.0F + jitter + fault});
    const auto od = warmed.score(f.data(), f.size(), 7, dry, true);  // the warm-up, then the frame
    const auto ow = warmed.score(f.data(), f.size(), 7, a);
    const auto op = plain.score(f.data(), f.size(), 7, b);
    CHECK(dry == b);
    CHECK(a == b);
    CHECK(od.anomalous == op.anomalous);
    CHECK(ow.anomalous == op.anomalous);
    CHECK(warmed.last_scores(3) == plain.last_scores(3));
  }
  CHECK(plain.last_scores(3)[1] < 0.0);  // the faulty unit was flagged in both
}
