#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "laserguard/crc32.hpp"
#include "laserguard/forest_model.hpp"
#include "laserguard/model_format.hpp"

using namespace laserguard;

namespace {

// Root splits feature 1 at 0.5; left is a leaf, right splits feature 0 at -1.
ForestSpec small_forest() {
  TreeSpec t;
  t.left = {1, -1, 3, -1, -1};
  t.right = {2, -1, 4, -1, -1};
  t.feature = {1, -1, 0, -1, -1};
  t.threshold = {0.5, -2.0, -1.0, -2.0, -2.0};
  t.missing_go_left = {0, 0, 1, 0, 0};
  t.value = {0.0, 1.0, 0.0, 2.5, 3.25};
  ForestSpec spec;
  spec.n_features = 2;
  spec.offset = -0.5;
  spec.denominator = 4.0;
  spec.feature_names = {"a", "b"};
  spec.metadata_json = "{}";
  spec.trees = {t, t};
  return spec;
}

}  // namespace

TEST_CASE("crc32 matches the zlib check value") {
  const char* text = "123456789";
  CHECK(crc32(reinterpret_cast<const std::uint8_t*>(text), 9) == 0xCBF43926U);
}

TEST_CASE("serialize then parse round-trips every field") {
  const auto spec = small_forest();
  const auto bytes = serialize_forest(spec);
  const auto back = parse_forest(bytes.data(), bytes.size());
  CHECK(back.n_features == 2);
  CHECK(back.feature_names == spec.feature_names);
  CHECK(back.trees.size() == 2);
  CHECK(back.trees[0].threshold == spec.trees[0].threshold);
  CHECK(back.trees[1].value == spec.trees[1].value);
}

TEST_CASE("routing follows sklearn: x <= threshold goes left, NaN follows missing_go_left") {
  const ForestModel model(small_forest());
  const float nan = std::numeric_limits<float>::quiet_NaN();
  // rows: (a, b)
  const std::vector<float> x = {0.0F, 0.5F,    // b <= 0.5 -> leaf 1 (1.0)
                                -1.0F, 0.6F,   // b > 0.5, a <= -1 -> leaf 3 (2.5)
                                0.0F, 0.6F,    // -> leaf 4 (3.25)
                                nan, 0.6F,     // NaN on a, missing goes left -> leaf 3
                                0.0F, nan};    // NaN on b, missing goes right -> node 2 -> leaf 4
  std::vector<double> sums(5);
  model.path_length_sums(x.data(), 5, sums.data());
  CHECK(sums[0] == 2.0);
  CHECK(sums[1] == 5.0);
  CHECK(sums[2] == 6.5);
  CHECK(sums[3] == 5.0);
  CHECK(sums[4] == 6.5);
}

TEST_CASE("every truncation of a valid file is rejected with ModelFormatError") {
  const auto bytes = serialize_forest(small_forest());
  for (std::size_t n = 0; n < bytes.size(); ++n) CHECK_THROWS_AS(parse_forest(bytes.data(), n), ModelFormatError);
}

TEST_CASE("every single-byte corruption is rejected") {
  const auto good = serialize_forest(small_forest());
  for (std::size_t i = 0; i < good.size(); ++i) {
    auto bad = good;
    bad[i] ^= 0x5A;
    CHECK_THROWS_AS(parse_forest(bad.data(), bad.size()), ModelFormatError);
  }
}

TEST_CASE("structural errors are named") {
  auto spec = small_forest();
  spec.trees[0].left[0] = 0;  // cycle to itself
  CHECK_THROWS_WITH_AS(serialize_forest(spec), doctest::Contains("not after parent"), ModelFormatError);
  spec = small_forest();
  spec.trees[1].feature[2] = 7;
  CHECK_THROWS_WITH_AS(serialize_forest(spec), doctest::Contains("feature index 7"), ModelFormatError);
}

TEST_CASE("feature attribution credits the splits on the row's path") {
  const ForestModel model(small_forest());
  // Row (0, 0.6): root split on feature 1 (b), then feature 0 (a) -> path length 2, depth 2
  // -> weight 1/2 - 1/2 = 0. Row (0, 0.5): path length 1 -> weight 1 - 1/2 per tree on b.
  const std::vector<float> x = {0.0F, 0.6F, 0.0F, 0.5F};
  std::vector<float> attribution(4);
  model.feature_attribution(x.data(), 2, attribution.data());
  CHECK(attribution[0] == 0.0F);
  CHECK(attribution[1] == 0.0F);
  CHECK(attribution[2] == 0.0F);
  CHECK(attribution[3] == doctest::Approx(1.0));  // two trees x 0.5
}
