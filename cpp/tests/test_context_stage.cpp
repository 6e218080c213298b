// The context stage of detection engine v3 inside the unit stage: a healthy unit through a
// setpoint step and a power cycle raises nothing, faults are caught and named, the state
// survives a save/load bit for bit, and the model file 2.1/2.2 carries every field.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "laserguard/features/baseline_stage.hpp"
#include "laserguard/live/frame_scorer.hpp"
#include "laserguard/wire/telemetry_codec.hpp"
#include "laserguard/model/crc32.hpp"
#include "laserguard/model/model_format.hpp"

using namespace laserguard;

namespace {

// Channels: 0 drive current (A), 1 optical power (W), 2 heat-sink temperature (context).
// Fleet model: current = s, power = 0.9 s - 0.45 powered (0 when off).
ContextParams laser_context() {
  ContextParams p;
  p.n_channels = 3;
  p.context = {2};
  p.context_center = {25.0};
  p.context_scale = {1.0};
  p.context_min = {15.0};
  p.context_max = {35.0};
  p.filters = {{kSignalSetpoint, 5.0}};  // unused by the terms (coefficient 0), but in the state
  p.term_a = {kSignalOne, kSignalPowered, kSignalSetpoint, kFirstContextSignal, kFirstContextSignal + 1};
  p.term_b = {kSignalOne, kSignalOne, kSignalOne, kSignalOne, kSignalPowered};
  p.monitored = {0, 1};
  p.coef = {0.0, 0.0, 0.0, -0.45, 1.0, 0.9, 0.0, 0.0, 0.0, 0.0};
  p.resid_sigma = {0.01, 0.03};
  p.prior_var = {4.0, 3.0};
  p.gain_sd = {0.0, 0.0};
  p.jump_ref = {0.007};  // the heat sink reading's noise 0.005: differences have rms 0.007
  p.jump_scale = {0.0};
  p.calib_prior_s = 10.0;
  p.calib_change_s = 30.0;
  p.calib_max_deviation = 0.5;
  p.calib_anchor_s = 600.0;
  p.spread_tau_s = 10.0;
  p.level_scale = {4.0, 4.0};
  p.spread_ref = {1.0, 1.0};
  p.spread_scale = {1.0, 1.0};
  p.judge_spread = {1, 1};
  p.n_components = 1;
  p.loadings = {std::sqrt(0.5), std::sqrt(0.5)};
  p.eigenvalues = {1.0};
  p.spe_limit = 16.0;
  return p;
}

BaselineParams laser_baseline() {
  BaselineParams p;
  p.n_channels = 3;
  p.baseline_samples = 20;
  p.window = 10;
  p.threshold = 1.0;
  p.sigma_floor = {1e-9, 1e-9, 1e-9};
  p.stuck_run = {0, 0, 0};
  p.scored = {0, 1, 2};
  p.level_scale = {1.0, 1.0, 1.0};
  p.spread_scale = {1.0, 1.0, 1.0};
  p.judge_spread = {1, 1, 1};
  return p;
}

// One healthy unit whose optical power is 5 % above the fleet's (a slope, not an offset).
struct Unit {
  std::mt19937 rng{7};
  std::normal_distribution<double> noise{0.0, 0.005};
  double gain = 1.05;
  std::vector<float> reading(double setpoint, bool on, double power_factor = 1.0) {
    const double s = on ? setpoint : 0.0;
    const double power = on ? gain * (0.9 * s - 0.45) * power_factor : 0.0;
    return {static_cast<float>(s + noise(rng)), static_cast<float>(power + noise(rng)),
            static_cast<float>(25.0 + noise(rng))};
  }
};

struct Out {
  double decision;
  bool learning;
  std::int16_t code[3];
};

Out push(BaselineStage& stage, double t, const std::vector<float>& x, float setpoint, std::uint8_t state) {
  const std::uint32_t unit = 0;
  Out o{};
  std::uint8_t learning = 0;
  float weights[3];
  const UnitContext ctx{&setpoint, &state};
  stage.push(1, &unit, &t, x.data(), ctx, BaselineOutputs{&o.decision, &learning, o.code, weights, 3});
  o.learning = learning != 0;
  return o;
}

// Code of (channel, kind) as feedback carries it minus n_features.
int code(std::size_t channel, DeviationKind kind) {
  return static_cast<int>(channel * kDeviationKinds + static_cast<std::size_t>(kind));
}

}  // namespace

TEST_CASE("context stage: a healthy unit through a setpoint step and a power cycle raises nothing") {
  BaselineStage stage(laser_baseline(), 1, laser_context());
  Unit unit;
  double t = 0.0;
  std::size_t flagged = 0, judged = 0;
  auto run = [&](double seconds, double setpoint, std::uint8_t state) {
    for (double end = t + seconds; t < end; t += 1.0) {
      const bool on = state != 0;
      const Out o = push(stage, t, unit.reading(setpoint, on), on ? static_cast<float>(setpoint) : 0.0F, state);
      if (o.learning) continue;
      ++judged;
      flagged += o.decision < 0.0 ? 1U : 0U;
    }
  };
  run(100, 5.0, 2);  // learns at 5 A (an offset only: one operating point)
  run(100, 7.0, 2);  // step: the gain shows, and is learned from the rows after the change
  run(30, 0.0, 0);   // off: zero current and power, judged by the fleet model
  run(10, 6.0, 1);   // power on, warming
  run(100, 6.0, 2);
  CHECK(judged == 320);
  CHECK(flagged == 0);
}

TEST_CASE("context stage: a unit's unknown gain is judged with the fleet's spread until it is learned") {
  // A unit 8 % steeper than the fleet learns at 5 A (one operating point: its gain stays at the
  // prior's 1) and then runs at 8 A with no teaching window after the change. Taking the gain as
  // known, its residual there is a false alarm that keeps itself from being learned; with the
  // fleet's spread of gains (gain_sd) it is judged within what that spread allows, its rows
  // teach its gain, and a real fault at 8 A is still caught once the gain is known.
  auto run = [](double gain_sd) {
    ContextParams p = laser_context();
    p.calib_prior_s = 600.0;
    p.calib_change_s = 0.0;
    p.gain_sd = {gain_sd, gain_sd};
    BaselineStage stage(laser_baseline(), 1, p);
    Unit unit;
    unit.gain = 1.08;
    double t = 0.0;
    for (; t < 200.0; t += 1.0) push(stage, t, unit.reading(5.0, true), 5.0F, 2);
    std::size_t flagged = 0;
    for (; t < 800.0; t += 1.0) flagged += push(stage, t, unit.reading(8.0, true), 8.0F, 2).decision < 0.0 ? 1U : 0U;
    std::size_t fault_flagged = 0;
    for (; t < 900.0; t += 1.0)
      fault_flagged += push(stage, t, unit.reading(8.0, true, 0.9), 8.0F, 2).decision < 0.0 ? 1U : 0U;
    return std::make_pair(flagged, fault_flagged);
  };
  const auto known = run(0.0);
  CHECK(known.first == 600);  // flagged on every row at 8 A: the old behaviour
  const auto spread = run(0.1);
  CHECK(spread.first == 0);
  CHECK(spread.second >= 90);  // a 10 % power loss at 8 A: caught within 10 s of 100
}

TEST_CASE("context stage: a flagged unit moved to another operating point (derated) stays flagged") {
  ContextParams p = laser_context();
  p.calib_prior_s = 600.0;
  p.gain_sd = {0.1, 0.1};
  BaselineStage stage(laser_baseline(), 1, p);
  Unit unit;
  double t = 0.0;
  for (; t < 200.0; t += 1.0) push(stage, t, unit.reading(8.0, true), 8.0F, 2);
  // 12 % of the power lost at 8 A: flagged; then derated to 5 A with the fault still there.
  for (; t < 230.0; t += 1.0) CHECK(push(stage, t, unit.reading(8.0, true, 0.88), 8.0F, 2).decision < 0.0);
  std::size_t flagged = 0;
  for (; t < 530.0; t += 1.0) flagged += push(stage, t, unit.reading(5.0, true, 0.88), 5.0F, 3).decision < 0.0 ? 1U : 0U;
  CHECK(flagged == 300);
}

TEST_CASE("context stage: a spiking context sensor is caught and named <channel>:spread") {
  ContextParams p = laser_context();
  p.jump_scale = {1.0};  // flagged once the rms of its differences is e times training's
  BaselineStage stage(laser_baseline(), 1, p);
  Unit unit;
  double t = 0.0;
  std::size_t healthy_flags = 0;
  for (; t < 300.0; t += 1.0) {
    const Out o = push(stage, t, unit.reading(t < 150 ? 5.0 : 7.0, true), t < 150 ? 5.0F : 7.0F, 2);
    healthy_flags += (!o.learning && o.decision < 0.0) ? 1U : 0U;
  }
  CHECK(healthy_flags == 0);
  // The heat sink reading jumps by 5 C on one sample in ten; the channels it explains stay put.
  std::size_t flagged = 0;
  bool named = true;
  for (int k = 0; k < 100; ++k, t += 1.0) {
    std::vector<float> x = unit.reading(7.0, true);
    if (k % 10 == 0) x[2] += 5.0F;
    const Out o = push(stage, t, x, 7.0F, 2);
    if (o.decision < 0.0) {
      ++flagged;
      named = named && o.code[0] == code(2, DeviationKind::kSpread);
    }
  }
  CHECK(flagged >= 90);  // flagged from the first spike on, and between spikes too
  CHECK(named);
}

TEST_CASE("context stage: a power drop at a constant setpoint is caught and named residual") {
  BaselineStage stage(laser_baseline(), 1, laser_context());
  Unit unit;
  double t = 0.0;
  for (; t < 200.0; t += 1.0) {
    const Out o = push(stage, t, unit.reading(7.0, true), 7.0F, 2);
    if (!o.learning) CHECK(o.decision >= 0.0);
  }
  // A developing fault that slowly loses 8 % of the power over 200 s is flagged before the end,
  // and not learned away by the calibration (it grows at one operating point).
  bool caught = false;
  for (int k = 1; k <= 200; ++k, t += 1.0) {
    const Out o = push(stage, t, unit.reading(7.0, true, 1.0 - 0.08 * k / 200.0), 7.0F, 2);
    if (o.decision < 0.0) {
      caught = true;
      CHECK(o.code[0] == code(1, DeviationKind::kResidual));
      break;
    }
  }
  CHECK(caught);
}

TEST_CASE("context stage: channels that stop moving together are caught as relationship") {
  ContextParams p = laser_context();
  p.level_scale = {100.0, 100.0};  // each channel alone stays well inside its range
  p.spread_scale = {100.0, 100.0};
  BaselineStage stage(laser_baseline(), 1, p);
  Unit unit;
  double t = 0.0;
  for (; t < 100.0; t += 1.0) push(stage, t, unit.reading(5.0, true), 5.0F, 2);
  // Current reads 0.1 A high while power reads 0.3 W low: within range one by one, against the
  // learned relation (their residuals move together) together.
  std::vector<float> x = unit.reading(5.0, true);
  x[0] += 0.1F;
  x[1] -= 0.3F;
  const Out o = push(stage, t, x, 5.0F, 2);
  CHECK(o.decision < 0.0);
  const int first = o.code[0];
  CHECK((first == code(0, DeviationKind::kRelationship) || first == code(1, DeviationKind::kRelationship)));
}

TEST_CASE("context stage: the state survives save/load bit for bit; other stages refuse it by name") {
  BaselineStage a(laser_baseline(), 1, laser_context());
  BaselineStage b(laser_baseline(), 1, laser_context());
  Unit ua, ub;
  double t = 0.0;
  for (; t < 150.0; t += 1.0) {
    const double sp = t < 80 ? 5.0 : 7.0;
    push(a, t, ua.reading(sp, true), static_cast<float>(sp), 2);
    push(b, t, ub.reading(sp, true), static_cast<float>(sp), 2);
  }
  const auto state = a.save_state();
  BaselineStage restored(laser_baseline(), 1, laser_context());
  restored.load_state(state.data(), state.size());
  CHECK(restored.save_state() == state);
  for (; t < 250.0; t += 1.0) {
    const auto x = ub.reading(t < 200 ? 7.0 : 0.0, t < 200);
    const float sp = t < 200 ? 7.0F : 0.0F;
    const std::uint8_t st = t < 200 ? 2 : 0;
    const Out ob = push(b, t, x, sp, st);
    const Out orr = push(restored, t, x, sp, st);
    CHECK(std::memcmp(&ob.decision, &orr.decision, sizeof(double)) == 0);
  }
  CHECK(BaselineStage::state_shape(state.data(), state.size()).version == 3);
  // A version-2 state (without the context channel count after the monitored count, the two
  // flag scalars and the jump statistic, the last 4 doubles of this one unit's data) is still
  // read: the unit continues, never flagged, no jumps seen.
  std::vector<std::uint8_t> v2_state(state.begin(), state.end() - 4 * 8 - 4);
  v2_state.erase(v2_state.begin() + 36, v2_state.begin() + 40);
  const std::uint32_t two = 2;
  std::memcpy(v2_state.data() + 8, &two, sizeof(two));
  const std::uint32_t v2_crc = crc32(v2_state.data(), v2_state.size());
  v2_state.insert(v2_state.end(), reinterpret_cast<const std::uint8_t*>(&v2_crc),
                  reinterpret_cast<const std::uint8_t*>(&v2_crc) + sizeof(v2_crc));
  BaselineStage from_v2(laser_baseline(), 1, laser_context());
  from_v2.load_state(v2_state.data(), v2_state.size());
  CHECK(BaselineStage::state_shape(v2_state.data(), v2_state.size()).version == 2);
  CHECK(from_v2.save_state().size() == state.size());

  BaselineStage v2(laser_baseline(), 1);  // no context stage
  CHECK_THROWS_WITH_AS(v2.load_state(state.data(), state.size()),
                       doctest::Contains("has a context stage"), std::invalid_argument);
  const auto v1_state = v2.save_state();
  CHECK(BaselineStage::state_shape(v1_state.data(), v1_state.size()).version == 1);
  CHECK_THROWS_WITH_AS(restored.load_state(v1_state.data(), v1_state.size()),
                       doctest::Contains("version 1 has no context stage"), std::invalid_argument);
  ContextParams other = laser_context();
  other.filters.push_back({kSignalSetpoint, 30.0});
  BaselineStage more_filters(laser_baseline(), 1, other);
  CHECK_THROWS_WITH_AS(more_filters.load_state(state.data(), state.size()),
                       doctest::Contains("1 filters x 2 monitored"), std::invalid_argument);
}

TEST_CASE("context stage: filters in seconds mean the same at 1 Hz and 10 Hz") {
  // Only the filtered setpoint drives the expected current; a unit whose current follows
  // that filter exactly is never flagged at either rate, and both rates see the same residual.
  ContextParams p = laser_context();
  p.coef = {0.0, 0.0, 0.0, -0.45, 0.0, 0.9, 0.0, 0.0, 1.0, 0.0};  // current = s filtered (tau 5 s)
  p.calibration = CalibrationMode::kNone;
  auto residual_after_step = [&](double rate_hz) {
    BaselineStage stage(laser_baseline(), 1, p);
    double last = 0.0;
    const double dt = 1.0 / rate_hz;
    for (int k = 0; k * dt < 60.0; ++k) {
      const double t = k * dt;
      const float sp = t < 30.0 ? 5.0F : 7.0F;
      // the true current: the exact first-order response to the step at 30 s
      const double current = t < 30.0 ? 5.0 : 7.0 - 2.0 * std::exp(-(t - 30.0) / 5.0);
      const std::vector<float> x = {static_cast<float>(current), static_cast<float>(0.9 * sp - 0.45), 25.0F};
      const Out o = push(stage, t, x, sp, 2);
      if (!o.learning) CHECK(o.decision >= 0.0);
      last = o.decision;
    }
    return last;
  };
  CHECK(residual_after_step(1.0) == doctest::Approx(residual_after_step(10.0)).epsilon(1e-3));
}

TEST_CASE("context parameters: every field is validated by name") {
  auto refuses = [](auto mutate, const char* field) {
    ContextParams p = laser_context();
    mutate(p);
    CHECK_THROWS_WITH_AS(validate_context_params(p), doctest::Contains(field), std::invalid_argument);
  };
  refuses([](ContextParams& p) { p.coef.pop_back(); }, "coefficients");
  refuses([](ContextParams& p) { p.context_min = {40.0}; }, "context_min[0]");
  refuses([](ContextParams& p) { p.monitored = {0, 2}; }, "both context and monitored");
  refuses([](ContextParams& p) { p.filters[0].source = 9; }, "filter 0 source");
  refuses([](ContextParams& p) { p.filters[0].tau_s = 0.0; }, "tau_s");
  refuses([](ContextParams& p) { p.term_b[0] = 99; }, "term 0 uses signal 99");
  refuses([](ContextParams& p) { p.gain_limit = 2.0; }, "gain_limit");
  refuses([](ContextParams& p) { p.resid_sigma[1] = 0.0; }, "resid_sigma[1]");
  refuses([](ContextParams& p) { p.gain_sd[0] = -0.1; }, "gain_sd[0]");
  refuses([](ContextParams& p) { p.gain_sd.pop_back(); }, "gain standard deviations");
  refuses([](ContextParams& p) { p.jump_ref[0] = 0.0; }, "jump_ref[0]");
  refuses([](ContextParams& p) { p.jump_scale[0] = -1.0; }, "jump_scale[0]");
  refuses([](ContextParams& p) { p.jump_scale.clear(); }, "jump scales");
  refuses([](ContextParams& p) { p.change_relax = 0.5; }, "change_relax");
  refuses([](ContextParams& p) { p.calib_max_deviation = 0.0; }, "calib_max_deviation");
  refuses([](ContextParams& p) { p.eigenvalues = {}; }, "eigenvalues");
  refuses([](ContextParams& p) { p.t2_limit = 1.0; p.n_components = 0; p.loadings = {}; p.eigenvalues = {}; }, "t2_limit");
}

TEST_CASE("model file 2.2: the context stage round-trips; 2.1 files read gain_sd 0; 2.0 without one") {
  TreeSpec t;
  t.left = {1, -1, -1};
  t.right = {2, -1, -1};
  t.feature = {0, -1, -1};
  t.threshold = {0.5, 0.0, 0.0};
  t.missing_go_left = {0, 0, 0};
  t.value = {0.0, 1.0, 1.0};
  ForestSpec spec;
  spec.n_features = 3;
  spec.offset = -0.5;
  spec.denominator = 2.0;
  spec.feature_names = {"drive_current_a", "optical_power_w", "heatsink_temp_c"};
  spec.metadata_json = "{}";
  spec.trees = {t};
  spec.baseline = laser_baseline();
  const auto v20 = serialize_forest(spec);
  CHECK(v20[10] == 0);  // minor 0: a file without a context stage is a 2.0 file, as before
  CHECK_FALSE(parse_forest(v20.data(), v20.size()).context.has_value());

  spec.context = laser_context();
  spec.context->forest_input = ForestInput::kResidual;
  spec.context->change_hold_s = 3.0;
  spec.context->change_relax = 2.0;
  const auto without_gain = serialize_forest(spec);
  CHECK(without_gain[10] == 1);  // gain_sd all 0: written as 2.1, as before 2.2 existed
  CHECK(serialize_forest(parse_forest(without_gain.data(), without_gain.size())) == without_gain);
  spec.context->gain_sd = {0.05, 0.07};
  spec.context->jump_scale = {2.5};
  const auto v22 = serialize_forest(spec);
  CHECK(v22.size() == without_gain.size() + (2 + 1 + 1) * 8);
  CHECK(v22[8] == 2);
  CHECK(v22[10] == 2);
  const auto back = parse_forest(v22.data(), v22.size());
  REQUIRE(back.context.has_value());
  CHECK(serialize_forest(back) == v22);
  CHECK(back.context->forest_input == ForestInput::kResidual);
  CHECK(back.context->filters.size() == 1);
  CHECK(back.context->filters[0].tau_s == 5.0);
  CHECK(back.context->change_relax == 2.0);
  CHECK(back.context->gain_sd == std::vector<double>{0.05, 0.07});
  CHECK(back.context->jump_ref == std::vector<double>{0.007});
  CHECK(back.context->jump_scale == std::vector<double>{2.5});
  // The same file as 2.1 wrote it (no 2.2 fields, minor 1): read with the gain taken as known
  // and no jumps judged.
  std::vector<std::uint8_t> v21(v22.begin(), v22.end() - (2 + 1 + 1) * 8);
  v21[10] = 1;
  const std::uint64_t payload = v21.size() - kModelHeaderBytes;
  std::memcpy(v21.data() + 16, &payload, sizeof(payload));
  const std::uint32_t crc = crc32(v21.data() + kModelHeaderBytes, payload, crc32(v21.data(), 24));
  std::memcpy(v21.data() + 24, &crc, sizeof(crc));
  const auto old = parse_forest(v21.data(), v21.size());
  REQUIRE(old.context.has_value());
  CHECK(old.context->gain_sd == std::vector<double>{0.0, 0.0});
  CHECK(old.context->jump_scale == std::vector<double>{0.0});
  CHECK(old.context->change_relax == 2.0);
  // A 2.1 file with the 2.2 field appended is refused (2.1 ends at change_relax), and so is a
  // 2.2 file without it (truncated).
  std::vector<std::uint8_t> padded = v22;
  padded[10] = 1;
  const std::uint32_t padded_crc =
      crc32(padded.data() + kModelHeaderBytes, padded.size() - kModelHeaderBytes, crc32(padded.data(), 24));
  std::memcpy(padded.data() + 24, &padded_crc, sizeof(padded_crc));
  CHECK_THROWS_WITH_AS(parse_forest(padded.data(), padded.size()), doctest::Contains("unexpected bytes"),
                       ModelFormatError);
  // Every truncation is refused (no read past the end, no half-read section).
  for (std::size_t n = v20.size() - 32; n < v22.size(); n += 7) {
    auto cut = std::vector<std::uint8_t>(v22.begin(), v22.begin() + static_cast<std::ptrdiff_t>(n));
    CHECK_THROWS_AS(parse_forest(cut.data(), cut.size()), ModelFormatError);
  }
  // A context stage without the baseline stage is refused.
  spec.baseline.reset();
  CHECK_THROWS_WITH_AS(serialize_forest(spec), doctest::Contains("context stage without a baseline stage"),
                       ModelFormatError);
}

TEST_CASE("frame scorer with a 2.1 model: each unit's setpoint and state come from the frame") {
  // A forest that never flags (one split beyond any reading), the baseline and context stages.
  auto make = [](bool with_context) {
    TreeSpec t;
    t.left = {1, -1, -1};
    t.right = {2, -1, -1};
    t.feature = {0, -1, -1};
    t.threshold = {1000.0, 0.0, 0.0};
    t.missing_go_left = {1, 0, 0};
    t.value = {0.0, 2.0, 2.0};
    ForestSpec spec;
    spec.n_features = 3;
    spec.feature_names = {"drive_current_a", "optical_power_w", "heatsink_temp_c"};
    spec.denominator = 2.0;
    spec.offset = -0.9;
    spec.trees = {t};
    spec.baseline = laser_baseline();
    spec.baseline->fleet_cut = -10.0;
    if (with_context) spec.context = laser_context();
    return std::make_shared<const ForestModel>(spec);
  };
  auto run = [](const std::shared_ptr<const ForestModel>& model) {
    FrameScorer scorer(model, "v3", 3);
    scorer.add_lcc(1, 2);
    Unit unit0, unit1;
    unit1.gain = 0.97;
    std::vector<std::uint8_t> feedback;
    std::uint32_t anomalous = 0;
    for (std::uint64_t seq = 0; seq < 300; ++seq) {
      // unit 0 steps 5 -> 7 A at 100 s and is off 200-230 s; unit 1 stays at 6 A.
      const double sp0 = seq < 100 ? 5.0 : 7.0;
      const bool on0 = seq < 200 || seq >= 230;
      std::vector<float> values = unit0.reading(sp0, on0);
      const auto r1 = unit1.reading(6.0, true);
      values.insert(values.end(), r1.begin(), r1.end());
      const float setpoints[2] = {on0 ? static_cast<float>(sp0) : 0.0F, 6.0F};
      const UnitState states[2] = {on0 ? UnitState::kOn : UnitState::kOff, UnitState::kOn};
      TelemetryHeader h;
      h.lcc_id = 1;
      h.seq = seq;
      h.timestamp_ns = static_cast<std::int64_t>(seq) * 1'000'000'000;
      h.schema_id = 7;
      h.n_units = 2;
      h.n_features = 3;
      const auto frame = encode_telemetry(h, values.data(), setpoints, states);
      anomalous += scorer.score(frame.data(), frame.size(), 0, feedback).anomalous;
    }
    return anomalous;
  };
  CHECK(run(make(true)) == 0U);  // v3: the step and the power cycle move the expectation
  CHECK(run(make(false)) > 50U);  // v2 on the same frames: the step and the off period flag
}
