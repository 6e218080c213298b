#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <stdexcept>
#include <vector>

#include "laserguard/features/unit_baseline_features.hpp"

using namespace laserguard;

namespace {
constexpr float kNaNf = std::numeric_limits<float>::quiet_NaN();
}

TEST_CASE("unit baseline: z against the unit's own baseline, NaN until it is frozen") {
  // Two units, one channel; unit 1 runs 10x higher than unit 0 but both are "normal".
  UnitBaselineFeatures f(2, 1, UnitBaselineConfig{4.0, 3, 1e-9});
  CHECK(f.n_features() == 3);
  std::vector<double> out(2 * 3);
  const float base0[] = {1.0F, 3.0F, 1.0F, 3.0F};  // mean 2, population std 1
  for (int k = 0; k < 4; ++k) {
    const float frame[] = {base0[k], 10.0F * base0[k]};
    f.push(static_cast<double>(k), frame, out.data());
    CHECK(std::isnan(out[0]));
    CHECK(std::isnan(out[1]));
    CHECK(out[2] == 0.0);
  }
  CHECK_FALSE(f.baseline_frozen(0));
  const float frame[] = {5.0F, 50.0F};
  f.push(4.0, frame, out.data());
  CHECK(f.baseline_frozen(0));
  CHECK(out[0] == doctest::Approx(3.0));  // (5 - 2) / 1
  CHECK(out[3] == doctest::Approx(3.0));  // (50 - 20) / 10: same deviation relative to its own baseline
  // Window {1, 3, 5}: sample std 2, over baseline sigma 1 (unit 0) and 10 (unit 1, window {10, 30, 50}).
  CHECK(out[1] == doctest::Approx(2.0));
  CHECK(out[4] == doctest::Approx(2.0));
}

TEST_CASE("unit baseline: a stuck channel's rolling std drops to 0, NaN readings raise nan_frac") {
  UnitBaselineFeatures f(1, 2, UnitBaselineConfig{3.0, 4, 1e-9});
  std::vector<double> out(5);
  for (int k = 0; k < 3; ++k) {
    const float frame[] = {static_cast<float>(k % 2), static_cast<float>(k)};
    f.push(static_cast<double>(k), frame, out.data());
  }
  for (int k = 3; k < 7; ++k) {
    const float frame[] = {0.5F, static_cast<float>(k)};
    f.push(static_cast<double>(k), frame, out.data());
  }
  CHECK(out[2] == 0.0);  // channel 0 stuck at 0.5 over the whole window
  CHECK(out[4] == 0.0);
  const float dropped[] = {kNaNf, 7.0F};
  f.push(7.0, dropped, out.data());
  CHECK(std::isnan(out[0]));              // NaN reading: NaN z
  CHECK(out[2] == 0.0);                   // the finite readings of the window are still stuck
  CHECK(out[4] == doctest::Approx(0.25));  // 1 of the last 4 frames had a NaN
}

TEST_CASE("unit baseline: bad configuration and time going backwards are refused") {
  CHECK_THROWS_AS(UnitBaselineFeatures(0, 1), std::invalid_argument);
  CHECK_THROWS_AS(UnitBaselineFeatures(1, 0), std::invalid_argument);
  CHECK_THROWS_AS(UnitBaselineFeatures(1, 1, UnitBaselineConfig{600.0, 1, 1e-6}), std::invalid_argument);
  CHECK_THROWS_AS(UnitBaselineFeatures(1, 1, UnitBaselineConfig{-1.0, 30, 1e-6}), std::invalid_argument);
  CHECK_THROWS_AS(UnitBaselineFeatures(1, 1, UnitBaselineConfig{600.0, 30, 0.0}), std::invalid_argument);
  UnitBaselineFeatures f(1, 1);
  std::vector<double> out(3);
  const float frame[] = {1.0F};
  f.push(2.0, frame, out.data());
  CHECK_THROWS_WITH_AS(f.push(1.0, frame, out.data()), doctest::Contains("before the previous frame"),
                       std::invalid_argument);
}
