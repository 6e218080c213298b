#include "laserguard/forest_model.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

namespace laserguard {
namespace {

// sklearn routes float32(x) <= threshold with the threshold in float64. For any float32
// x that equals x <= t32 where t32 is the largest float32 not above the threshold.
float round_threshold_down(double threshold) {
  float t = static_cast<float>(threshold);
  if (static_cast<double>(t) > threshold) t = std::nextafter(t, -std::numeric_limits<float>::infinity());
  return t;
}

// Re-lays one sklearn tree breadth-first with siblings adjacent; returns its depth.
std::uint32_t append_tree(const TreeSpec& tree, std::vector<Node>& nodes, std::vector<double>& values) {
  std::vector<std::int32_t> order{0};  // new position -> sklearn node id
  std::vector<std::uint32_t> level{0};
  std::uint32_t depth = 0;
  for (std::size_t pos = 0; pos < order.size(); ++pos) {
    const auto id = static_cast<std::size_t>(order[pos]);
    Node node{};
    if (tree.left[id] == -1) {
      node.threshold = std::numeric_limits<float>::infinity();
      node.left = static_cast<std::uint32_t>(pos);
      node.feature = 0;
      node.nan_left = 1;
      values.push_back(tree.value[id]);
    } else {
      node.threshold = round_threshold_down(tree.threshold[id]);
      node.left = static_cast<std::uint32_t>(order.size());
      node.feature = static_cast<std::uint16_t>(tree.feature[id]);
      node.nan_left = tree.missing_go_left[id];
      order.push_back(tree.left[id]);
      order.push_back(tree.right[id]);
      level.push_back(level[pos] + 1);
      level.push_back(level[pos] + 1);
      depth = std::max(depth, level[pos] + 1);
      values.push_back(0.0);
    }
    nodes.push_back(node);
  }
  return depth;
}

inline std::uint32_t next_node(const Node& node, float x) {
  // NaN fails every comparison (goes right) unless the split sends missing values left.
  const std::uint32_t go_right = static_cast<std::uint32_t>(!(x <= node.threshold)) ^
                                 (static_cast<std::uint32_t>(x != x) & node.nan_left);
  return node.left + go_right;
}

}  // namespace

ForestModel::ForestModel(const ForestSpec& spec)
    : n_features_(spec.n_features),
      has_scaler_(spec.has_scaler),
      with_mean_(spec.with_mean),
      with_std_(spec.with_std),
      mean_(spec.mean),
      scale_(spec.scale),
      offset_(spec.offset),
      denominator_(spec.denominator),
      feature_names_(spec.feature_names),
      metadata_json_(spec.metadata_json) {
  validate_forest(spec);
  for (const auto& tree : spec.trees) {
    tree_offset_.push_back(nodes_.size());
    tree_depth_.push_back(append_tree(tree, nodes_, leaf_value_));
  }
}

ForestModel ForestModel::load(const std::string& path) { return ForestModel(read_forest_file(path)); }

ForestModel ForestModel::from_bytes(const std::uint8_t* data, std::size_t size) {
  return ForestModel(parse_forest(data, size));
}

template <typename T>
void ForestModel::prepare_impl(const MatrixView<T>& x, float* out) const {
  if (x.cols != n_features_)
    throw std::invalid_argument("X has " + std::to_string(x.cols) + " features, but the model expects " +
                                std::to_string(n_features_));
  for (std::size_t r = 0; r < x.rows; ++r) {
    for (std::size_t c = 0; c < n_features_; ++c) {
      T v = x.at(r, c);
      if (has_scaler_) {
        if (std::isinf(v))
          throw std::invalid_argument("Input X contains infinity (row " + std::to_string(r) + ", column " +
                                      std::to_string(c) + ")");
        // sklearn scales in the input's own precision with the statistics cast to it.
        if (with_mean_) v -= static_cast<T>(mean_[c]);
        if (with_std_) v /= static_cast<T>(scale_[c]);
      }
      out[r * n_features_ + c] = static_cast<float>(v);
    }
  }
}

void ForestModel::prepare(const MatrixView<double>& x, float* out) const { prepare_impl(x, out); }
void ForestModel::prepare(const MatrixView<float>& x, float* out) const { prepare_impl(x, out); }

void ForestModel::path_length_sums(const float* x, std::size_t rows, double* out) const {
  for (std::size_t r = 0; r < rows; ++r) out[r] = 0.0;
  const std::size_t nf = n_features_;
  constexpr std::size_t kLanes = 8;  // independent rows in flight hide the load latency
  for (std::size_t t = 0; t < tree_offset_.size(); ++t) {
    const Node* tree = nodes_.data() + tree_offset_[t];
    const double* value = leaf_value_.data() + tree_offset_[t];
    const std::uint32_t depth = tree_depth_[t];
    std::size_t r = 0;
    for (; r + kLanes <= rows; r += kLanes) {
      const float* block = x + r * nf;
      std::uint32_t idx[kLanes] = {};
      for (std::uint32_t d = 0; d < depth; ++d)
        for (std::size_t k = 0; k < kLanes; ++k) {
          const Node& node = tree[idx[k]];
          idx[k] = next_node(node, block[k * nf + node.feature]);
        }
      for (std::size_t k = 0; k < kLanes; ++k) out[r + k] += value[idx[k]];
    }
    for (; r < rows; ++r) {
      const float* row = x + r * nf;
      std::uint32_t idx = 0;
      for (std::uint32_t d = 0; d < depth; ++d) idx = next_node(tree[idx], row[tree[idx].feature]);
      out[r] += value[idx];
    }
  }
}

void ForestModel::score_samples(const float* x, std::size_t rows, double* out) const {
  path_length_sums(x, rows, out);
  for (std::size_t r = 0; r < rows; ++r) {
    // A single-sample forest has denominator 0; sklearn then uses a ratio of 1.
    const double ratio = denominator_ != 0.0 ? out[r] / denominator_ : 1.0;
    out[r] = -std::pow(2.0, -ratio);
  }
}

void ForestModel::decision_function(const float* x, std::size_t rows, double* out) const {
  score_samples(x, rows, out);
  for (std::size_t r = 0; r < rows; ++r) out[r] -= offset_;
}

}  // namespace laserguard
