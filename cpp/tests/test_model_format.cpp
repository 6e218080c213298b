#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <utility>
#include <vector>

#include "laserguard/model/crc32.hpp"
#include "laserguard/model/forest_model.hpp"
#include "laserguard/model/model_format.hpp"

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

namespace {

// A random sklearn-shaped tree: every node splits with probability `split_p` until max_depth.
TreeSpec random_tree(std::mt19937& rng, std::uint32_t n_features, int max_depth, double split_p) {
  TreeSpec t;
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  std::uniform_int_distribution<int> feature(0, static_cast<int>(n_features) - 1);
  // Depth-first like sklearn: children get indices after their parent.
  std::vector<std::pair<std::size_t, int>> stack;
  auto add_node = [&]() {
    t.left.push_back(-1);
    t.right.push_back(-1);
    t.feature.push_back(-1);
    t.threshold.push_back(-2.0);
    t.missing_go_left.push_back(0);
    t.value.push_back(unit(rng) * 10.0);
    return t.left.size() - 1;
  };
  stack.emplace_back(add_node(), 0);
  while (!stack.empty()) {
    const auto [node, depth] = stack.back();
    stack.pop_back();
    if (depth >= max_depth || unit(rng) > split_p) continue;
    const auto l = add_node();
    const auto r = add_node();
    t.left[node] = static_cast<std::int32_t>(l);
    t.right[node] = static_cast<std::int32_t>(r);
    t.feature[node] = feature(rng);
    t.threshold[node] = unit(rng) * 2.0 - 1.0;
    t.missing_go_left[node] = static_cast<std::uint8_t>(unit(rng) < 0.5);
    stack.emplace_back(r, depth + 1);
    stack.emplace_back(l, depth + 1);
  }
  return t;
}

// sklearn's own routing, straight from the spec: float32(x) compared in double precision.
double reference_sum(const ForestSpec& spec, const float* row) {
  double sum = 0.0;
  for (const auto& t : spec.trees) {
    std::size_t node = 0;
    while (t.left[node] != -1) {
      const float x = row[t.feature[node]];
      const bool left = std::isnan(x) ? t.missing_go_left[node] == 1 : static_cast<double>(x) <= t.threshold[node];
      node = static_cast<std::size_t>(left ? t.left[node] : t.right[node]);
    }
    sum += t.value[node];
  }
  return sum;
}

}  // namespace

TEST_CASE("every kernel (vector blocks, tree lanes, portable tail) matches a plain walk") {
  std::mt19937 rng(42);
  for (const int max_depth : {3, 8, 12}) {
    ForestSpec spec;
    spec.n_features = 7;
    spec.offset = -0.5;
    spec.denominator = 10.0;
    spec.feature_names = {"a", "b", "c", "d", "e", "f", "g"};
    for (int i = 0; i < 130; ++i) spec.trees.push_back(random_tree(rng, spec.n_features, max_depth, 0.85));
    const ForestModel model(spec);
    // 83 rows: five 16-row blocks (one group of four + one) and a 3-row tail.
    const std::size_t rows = 83;
    std::vector<float> x(rows * spec.n_features);
    std::uniform_real_distribution<float> value(-1.2F, 1.2F);
    for (std::size_t i = 0; i < x.size(); ++i)
      x[i] = i % 29 == 0 ? std::numeric_limits<float>::quiet_NaN() : value(rng);
    // Values exactly on some thresholds (rounded to float32) exercise the <= boundary.
    for (std::size_t r = 0; r < rows; r += 5) {
      const auto& t = spec.trees[r % spec.trees.size()];
      if (t.left[0] != -1) x[r * spec.n_features + t.feature[0]] = static_cast<float>(t.threshold[0]);
    }
    ForestModel each(spec);
    for (const ForestKernel kernel : each.supported_kernels()) {
      each.use_kernel(kernel);
      for (const std::size_t n : {rows, std::size_t{1}, std::size_t{16}, std::size_t{37}}) {
        std::vector<double> sums(n);
        each.path_length_sums(x.data(), n, sums.data());
        for (std::size_t r = 0; r < n; ++r) {
          INFO("kernel ", kernel_name(kernel), " depth ", max_depth, " rows ", n, " row ", r);
          CHECK(sums[r] == reference_sum(spec, x.data() + r * spec.n_features));
        }
      }
    }
    // The kernel calibration chose is one of them.
    const auto kernels = model.supported_kernels();
    CHECK(std::find(kernels.begin(), kernels.end(), model.kernel()) != kernels.end());
  }
}

TEST_CASE("a kernel the model or CPU cannot use is refused by name") {
  std::mt19937 rng(7);
  ForestSpec spec;
  spec.n_features = 17;  // the blend kernel selects among at most 16 columns
  spec.offset = -0.5;
  spec.denominator = 10.0;
  for (std::size_t f = 0; f < spec.n_features; ++f) spec.feature_names.push_back("f" + std::to_string(f));
  spec.trees.push_back(random_tree(rng, spec.n_features, 4, 0.85));
  ForestModel model(spec);
  const auto kernels = model.supported_kernels();
  CHECK(kernels.front() == ForestKernel::kPortable);
  CHECK(std::find(kernels.begin(), kernels.end(), ForestKernel::kAvx512Blend) == kernels.end());
  CHECK_THROWS_WITH_AS(model.use_kernel(ForestKernel::kAvx512Blend),
                       "forest kernel avx512_blend is not available for this model on this CPU",
                       std::invalid_argument);
  model.use_kernel(ForestKernel::kPortable);
  CHECK(model.kernel() == ForestKernel::kPortable);
}
