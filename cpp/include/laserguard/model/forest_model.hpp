#pragma once
// ForestModel: an exported StandardScaler + IsolationForest in a compact scoring layout
// that reproduces sklearn's path-length sums bit for bit.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "laserguard/model/model_format.hpp"
#include "laserguard/model/power_of_two.hpp"

namespace laserguard {

// Scoring layout. Children sit side by side (right == left + 1) in breadth-first order,
// and a leaf points to itself with an always-true test, so every row walks its tree's
// full depth without a data-dependent branch. Thresholds are the largest float32 not
// above sklearn's float64 threshold, which routes every float32 input identically.
//
// WideNode (12 bytes) holds any tree; CompactNode (8 bytes, one load per visited node)
// is used when every tree has < 2^20 nodes and the model has < 2^11 features, which
// covers all realistic IsolationForests. The walk is a template over the two.
struct WideNode {
  float threshold;
  std::uint32_t left;     // index of the left child within the tree
  std::uint16_t feature;  // input column
  std::uint8_t nan_left;  // NaN goes left (sklearn's missing_go_to_left)
  std::uint8_t pad;
};
static_assert(sizeof(WideNode) == 12, "WideNode must stay 12 bytes");

struct CompactNode {
  static constexpr std::uint32_t kMaxNodes = 1U << 20;
  static constexpr std::uint32_t kMaxFeatures = 1U << 11;
  float threshold;
  std::uint32_t link;  // left << 12 | feature << 1 | nan_left
};
static_assert(sizeof(CompactNode) == 8, "CompactNode must stay 8 bytes");

// Describes a caller's 2-D array without copying it: element (r, c) lives at
// data[r * row_stride + c * col_stride] (strides in elements, so C and F order both work).
// How path_length_sums walks batches of rows. Every kernel gives the same bits (the tests
// check each); which is fastest depends on the CPU (a 16-lane gather costs very differently
// on Intel and AMD), so a model times the ones it supports when built and keeps the fastest.
enum class ForestKernel : std::uint8_t { kPortable, kAvx512Gather, kAvx512Blend };
const char* kernel_name(ForestKernel kernel);

template <typename T>
struct MatrixView {
  const T* data;
  std::size_t rows;
  std::size_t cols;
  std::ptrdiff_t row_stride;
  std::ptrdiff_t col_stride;
  T at(std::size_t r, std::size_t c) const {
    return data[static_cast<std::ptrdiff_t>(r) * row_stride +
                static_cast<std::ptrdiff_t>(c) * col_stride];
  }
};

class ForestModel {
 public:
  explicit ForestModel(const ForestSpec& spec);
  static ForestModel load(const std::string& path);
  static ForestModel from_bytes(const std::uint8_t* data, std::size_t size);

  std::size_t n_features() const noexcept { return n_features_; }
  std::size_t n_trees() const noexcept { return tree_offset_.size(); }
  std::size_t n_nodes() const noexcept { return n_nodes_; }
  bool compact_layout() const noexcept { return !compact_nodes_.empty(); }
  bool has_scaler() const noexcept { return has_scaler_; }
  double offset() const noexcept { return offset_; }
  double denominator() const noexcept { return denominator_; }
  const std::vector<std::string>& feature_names() const noexcept { return feature_names_; }
  const std::string& metadata_json() const noexcept { return metadata_json_; }
  // The per-unit baseline stage's parameters (model format 2.x), absent in a 1.x file.
  const std::optional<BaselineParams>& baseline() const noexcept { return baseline_; }
  // The context stage of detection engine v3 (model format 2.1), absent before.
  const std::optional<ContextParams>& context() const noexcept { return context_; }

  // The kernels this model can use on this CPU (portable always; the AVX-512 ones need the
  // compact layout, the blend one also <= 16 features), the one in use, and a choice.
  std::vector<ForestKernel> supported_kernels() const;
  ForestKernel kernel() const noexcept { return kernel_; }
  // Throws std::invalid_argument naming the kernel if this model or CPU cannot use it.
  void use_kernel(ForestKernel kernel);
  // Times every supported kernel on a 64-row frame and keeps the fastest (done at construction).
  ForestKernel calibrate_kernel();

  // Applies the scaler exactly as sklearn does for this input dtype and rounds to the
  // float32 values the trees compare. `out` holds rows * n_features floats, row-major.
  // Throws std::invalid_argument on a shape mismatch, or on +-inf when the model has a
  // scaler (sklearn's StandardScaler rejects infinity but lets NaN through).
  void prepare(const MatrixView<double>& x, float* out) const;
  void prepare(const MatrixView<float>& x, float* out) const;

  // Sum over trees, in tree order, of each row's path length (sklearn's `depths`).
  // `x` is prepared row-major input; out has `rows` entries and is overwritten.
  void path_length_sums(const float* x, std::size_t rows, double* out) const;

  // sklearn's score_samples / decision_function, computed entirely in C++. Path sums are
  // bitwise equal to sklearn; so is the result when `power` wraps numpy's own power loop
  // (with libm's pow it may differ by 1 ulp, power_of_two.hpp).
  void score_samples(const float* x, std::size_t rows, double* out, const PowerOfTwo& power = {}) const;
  void decision_function(const float* x, std::size_t rows, double* out, const PowerOfTwo& power = {}) const;

  // Why a row scores as it does (local DIFFI, Carletti et al. 2020): in every tree each
  // split on the row's path adds 1/h - 1/h_max to its feature, h being the row's path
  // length and h_max the tree's depth, so features that isolate the row early dominate.
  // `out` holds rows * n_features floats (row-major), overwritten.
  void feature_attribution(const float* x, std::size_t rows, float* out) const;

 private:
  template <typename T>
  void prepare_impl(const MatrixView<T>& x, float* out) const;

  std::size_t n_features_;
  bool has_scaler_;
  bool with_mean_;
  bool with_std_;
  std::vector<double> mean_;
  std::vector<double> scale_;
  double offset_;
  double denominator_;
  std::vector<std::string> feature_names_;
  std::string metadata_json_;
  std::optional<BaselineParams> baseline_;
  std::optional<ContextParams> context_;

  // Adds each row's path lengths to out; returns how many leading rows it handled.
  std::size_t walk_avx512(const float* x, std::size_t rows, double* out) const;
  template <typename NodeT>
  void attribute(const std::vector<NodeT>& nodes, const float* x, std::size_t rows, float* out) const;
  template <typename NodeT>
  void walk_rows(const std::vector<NodeT>& nodes, const float* x, std::size_t rows, double* out,
                 std::size_t first_tree) const;

  // All trees concatenated, in exactly one of the two layouts.
  std::vector<WideNode> wide_nodes_;
  std::vector<CompactNode> compact_nodes_;
  std::size_t n_nodes_ = 0;
  std::vector<double> leaf_value_;  // parallel to the nodes; meaningful at leaves
  std::vector<std::size_t> tree_offset_;
  std::vector<std::uint32_t> tree_depth_;
  std::vector<std::uint32_t> tree_start_;   // compact layout: first node of each tree, in groups of 16
  std::vector<std::uint32_t> group_depth_;  // deepest tree of each group of 16
  ForestKernel kernel_ = ForestKernel::kPortable;
};

}  // namespace laserguard
