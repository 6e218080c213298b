#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <vector>

#include "laserguard/features/baseline_stage.hpp"
#include "laserguard/model/model_format.hpp"

using namespace laserguard;

namespace {

constexpr float kNaNf = std::numeric_limits<float>::quiet_NaN();

// One channel, judged on level and spread, a 4-row baseline, a 3-row window, no EWMA.
BaselineParams one_channel(std::uint32_t stuck_run = 0) {
  BaselineParams p;
  p.n_channels = 1;
  p.baseline_samples = 4;
  p.window = 3;
  p.threshold = 2.0;
  p.sigma_floor = {1e-9};
  p.stuck_run = {stuck_run};
  p.scored = {0};
  p.level_scale = {1.0};
  p.spread_scale = {10.0};  // spread hardly matters unless it collapses or explodes
  p.judge_spread = {1};
  return p;
}

struct Row {
  double decision;
  bool learning;
  std::int16_t code;
  float weight;
};

Row push(BaselineStage& stage, std::uint32_t unit, double t, float value) {
  double decision = 0;
  std::uint8_t learning = 0;
  std::int16_t code = 0;
  float weight = 0;
  stage.push(1, &unit, &t, &value, BaselineOutputs{&decision, &learning, &code, &weight, 1});
  return {decision, learning != 0, code, weight};
}

}  // namespace

TEST_CASE("baseline stage: each unit against its own baseline, not learning's rows") {
  BaselineStage stage(one_channel(), 2);
  const float base[] = {1.0F, 3.0F, 1.0F, 3.0F};  // mean 2, population std 1
  for (int k = 0; k < 4; ++k) {
    CHECK(push(stage, 0, k, base[k]).learning);
    CHECK(push(stage, 1, k, 10.0F * base[k]).learning);  // ten times higher, also healthy
  }
  CHECK(stage.unit_info(0).phase == UnitPhase::kLearning);  // it freezes when the next row arrives
  CHECK(stage.unit_info(0).rows_learned == 4);
  // |z| = 3 for both (same deviation relative to each unit's own baseline): D = 3 > threshold 2.
  const Row a = push(stage, 0, 4, 5.0F);
  const Row b = push(stage, 1, 4, 50.0F);
  CHECK_FALSE(a.learning);
  CHECK(stage.unit_info(0).phase == UnitPhase::kReady);
  CHECK(a.decision == doctest::Approx(1.0 - 3.0 / 2.0));
  CHECK(b.decision == doctest::Approx(a.decision));
  CHECK(a.code == 0);  // channel 0, kind level
  CHECK(a.weight == doctest::Approx(1.5));
  const Row back = push(stage, 0, 5, 2.0F);  // back at its mean: spread of {3, 5, 2} only
  CHECK(back.decision > 0.0);
  CHECK(back.code == -1);  // not flagged: no explanation
}

TEST_CASE("baseline stage: missing readings and a stuck sensor flag at -1 with their kind") {
  BaselineStage stage(one_channel(/*stuck_run=*/3), 1);
  const float base[] = {1.0F, 3.0F, 1.0F, 3.0F};
  for (int k = 0; k < 4; ++k) push(stage, 0, k, base[k]);
  const Row missing = push(stage, 0, 4, kNaNf);
  CHECK(missing.decision <= -1.0);
  CHECK(missing.code == 2);  // channel 0, kind missing
  for (int k = 5; k < 8; ++k) push(stage, 0, k, 2.0F);  // the NaN leaves the 3-row window
  const Row stuck = push(stage, 0, 8, 2.0F);              // 4 identical readings >= stuck_run 3
  CHECK(stuck.decision <= -1.0);
  CHECK(stuck.code == 3);  // channel 0, kind stuck
}

TEST_CASE("baseline stage: the mean follows unflagged rows with the EWMA, never flagged ones") {
  auto p = one_channel();
  p.mean_tau_s = 10.0;
  BaselineStage stage(p, 1);
  const float base[] = {1.0F, 3.0F, 1.0F, 3.0F};
  for (int k = 0; k < 4; ++k) push(stage, 0, k, base[k]);
  push(stage, 0, 13, 3.0F);  // |z| 1: unflagged, 10 s later: mu moves by (1 - e^-1) of the gap
  CHECK(stage.unit_info(0).mu[0] == doctest::Approx(2.0 + (1.0 - std::exp(-1.0))));
  const double before = stage.unit_info(0).mu[0];
  push(stage, 0, 23, 100.0F);  // flagged: the baseline must not chase a fault
  CHECK(stage.unit_info(0).mu[0] == before);
}

TEST_CASE("baseline stage: state survives save and load bit for bit; mismatches are refused") {
  BaselineStage stage(one_channel(), 2);
  for (int k = 0; k < 12; ++k) push(stage, static_cast<std::uint32_t>(k % 2), k, static_cast<float>(k % 5));
  const auto saved = stage.save_state();
  BaselineStage restored(one_channel(), 2);
  restored.load_state(saved.data(), saved.size());
  CHECK(restored.save_state() == saved);
  const Row after_restore = push(restored, 0, 13, 9.0F);
  const Row uninterrupted = push(stage, 0, 13, 9.0F);
  REQUIRE_FALSE(after_restore.learning);
  CHECK(after_restore.decision == uninterrupted.decision);  // bit for bit

  auto corrupt = saved;
  corrupt[20] ^= 0x01;
  CHECK_THROWS_WITH_AS(restored.load_state(corrupt.data(), corrupt.size()), doctest::Contains("CRC"),
                       std::invalid_argument);
  BaselineStage three_units(one_channel(), 3);
  CHECK_THROWS_WITH_AS(three_units.load_state(saved.data(), saved.size()), doctest::Contains("2 units"),
                       std::invalid_argument);
  CHECK_THROWS_AS(restored.load_state(saved.data(), 7), std::invalid_argument);
  const auto shape = BaselineStage::state_shape(saved.data(), saved.size());
  CHECK(shape.n_units == 2);
  CHECK(shape.window == 3);
  restored.reset_unit(1);
  CHECK(restored.unit_info(1).phase == UnitPhase::kNew);
  CHECK_THROWS_AS(restored.reset_unit(2), std::invalid_argument);
  std::uint32_t bad_unit = 5;
  double t = 0, d = 0;
  std::uint8_t l = 0;
  float x = 0;
  CHECK_THROWS_WITH_AS(restored.push(1, &bad_unit, &t, &x, BaselineOutputs{&d, &l, nullptr, nullptr, 0}),
                       doctest::Contains("unit index 5"), std::invalid_argument);
}

TEST_CASE("baseline params: every field is validated, naming it") {
  auto p = one_channel();
  CHECK_NOTHROW(validate_baseline_params(p));
  auto both = p;
  both.baseline_s = 5.0;
  CHECK_THROWS_WITH_AS(validate_baseline_params(both), doctest::Contains("exactly one"), std::invalid_argument);
  auto window = p;
  window.window = 1;
  CHECK_THROWS_WITH_AS(validate_baseline_params(window), doctest::Contains("window"), std::invalid_argument);
  auto scale = p;
  scale.level_scale = {0.0};
  CHECK_THROWS_WITH_AS(validate_baseline_params(scale), doctest::Contains("level_scale[0]"), std::invalid_argument);
  auto order = p;
  order.n_channels = 2;
  order.sigma_floor = {1.0, 1.0};
  order.stuck_run = {0, 0};
  order.scored = {1, 0};
  order.level_scale = {1.0, 1.0};
  order.spread_scale = {1.0, 1.0};
  order.judge_spread = {1, 1};
  CHECK_THROWS_WITH_AS(validate_baseline_params(order), doctest::Contains("strictly increasing"),
                       std::invalid_argument);
  auto stuck = p;
  stuck.stuck_run = {1};
  CHECK_THROWS_WITH_AS(validate_baseline_params(stuck), doctest::Contains("stuck_run[0]"), std::invalid_argument);
}

TEST_CASE("model format 2.0: the baseline stage round-trips; 1.0 files stay 1.0") {
  ForestSpec spec;
  spec.n_features = 1;
  spec.feature_names = {"x"};
  spec.denominator = 1.0;
  TreeSpec leaf;
  leaf.left = {-1};
  leaf.right = {-1};
  leaf.feature = {-1};
  leaf.threshold = {0.0};
  leaf.missing_go_left = {0};
  leaf.value = {1.0};
  spec.trees = {leaf};
  const auto v1 = serialize_forest(spec);
  CHECK(v1[8] == 1);  // major version 1: no baseline stage
  CHECK_FALSE(parse_forest(v1.data(), v1.size()).baseline.has_value());

  spec.baseline = one_channel(3);
  const auto v2 = serialize_forest(spec);
  CHECK(v2[8] == 2);
  const auto back = parse_forest(v2.data(), v2.size());
  REQUIRE(back.baseline.has_value());
  CHECK(back.baseline->stuck_run == std::vector<std::uint32_t>{3});
  CHECK(back.baseline->threshold == 2.0);
  CHECK(serialize_forest(back) == v2);

  spec.baseline->n_channels = 2;  // != n_features
  CHECK_THROWS_WITH_AS(serialize_forest(spec), doctest::Contains("baseline stage"), ModelFormatError);
}
