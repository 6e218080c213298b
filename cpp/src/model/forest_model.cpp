#include "laserguard/model/forest_model.hpp"

#include <algorithm>
#include <chrono>
#include <cstring>
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define LASERGUARD_HAVE_AVX512_KERNEL 1
#endif
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <type_traits>

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
std::uint32_t append_tree(const TreeSpec& tree, std::vector<WideNode>& nodes, std::vector<double>& values) {
  std::vector<std::int32_t> order{0};  // new position -> sklearn node id
  std::vector<std::uint32_t> level{0};
  std::uint32_t depth = 0;
  for (std::size_t pos = 0; pos < order.size(); ++pos) {
    const auto id = static_cast<std::size_t>(order[pos]);
    WideNode node{};
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

inline std::uint32_t left_of(const WideNode& n) { return n.left; }
inline std::uint32_t left_of(const CompactNode& n) { return n.link >> 12; }
inline std::uint32_t feature_of(const WideNode& n) { return n.feature; }
inline std::uint32_t feature_of(const CompactNode& n) { return (n.link >> 1) & 0x7FFU; }

// NaN fails every comparison (goes right) unless the split sends missing values left.
inline std::uint32_t next_node(const WideNode& n, float x) {
  const auto go_right = static_cast<std::uint32_t>(!(x <= n.threshold)) ^
                        (static_cast<std::uint32_t>(x != x) & n.nan_left);
  return n.left + go_right;
}
inline std::uint32_t next_node(const CompactNode& n, float x) {
  const auto go_right = static_cast<std::uint32_t>(!(x <= n.threshold)) ^
                        (static_cast<std::uint32_t>(x != x) & n.link & 1U);
  return (n.link >> 12) + go_right;
}

bool fits_compact(const std::vector<std::size_t>& offsets, std::size_t total, std::size_t n_features) {
  // Gather offsets are 32-bit signed and count 4-byte words (two per node).
  if (n_features > CompactNode::kMaxFeatures || total >= (std::size_t{1} << 29)) return false;
  for (std::size_t t = 0; t < offsets.size(); ++t) {
    const std::size_t end = t + 1 < offsets.size() ? offsets[t + 1] : total;
    if (end - offsets[t] > CompactNode::kMaxNodes) return false;
  }
  return true;
}

constexpr std::uint32_t kRegisterLevels = 6;  // levels 0-5 (63 nodes) are held in registers
constexpr std::size_t kTopNodes = 64;

#ifdef LASERGUARD_HAVE_AVX512_KERNEL
// GCC 12's AVX-512 intrinsic headers start from an "undefined" vector that
// -Wmaybe-uninitialized flags inside the headers themselves (GCC bug 105593).
#pragma GCC diagnostic push
#if defined(__GNUC__) && !defined(__clang__)  // clang has no -Wmaybe-uninitialized
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#pragma GCC diagnostic ignored "-Wuninitialized"
// The blend kernel's feature fetch: block holds 16 columns of 16 lanes (feature-major) and lane
// l gets block[feature_l * 16 + l] through a four-level blend tree on the feature's bits. On
// the AMD EPYC here a 16-lane gather costs about 21 cycles of throughput (5.7 ns), more than
// these 15 blends; on a 32-row frame it measured 47 -> 39 us (300 trees).
__attribute__((target("avx512f"))) inline __m512 select_feature(const float* block, __m512i feature) {
  __m512 v[8];
  const __mmask16 bit0 = _mm512_test_epi32_mask(feature, _mm512_set1_epi32(1));
  for (int j = 0; j < 8; ++j) v[j] = _mm512_mask_blend_ps(bit0, _mm512_loadu_ps(block + 32 * j), _mm512_loadu_ps(block + 32 * j + 16));
  const __mmask16 bit1 = _mm512_test_epi32_mask(feature, _mm512_set1_epi32(2));
  for (int j = 0; j < 4; ++j) v[j] = _mm512_mask_blend_ps(bit1, v[2 * j], v[2 * j + 1]);
  const __mmask16 bit2 = _mm512_test_epi32_mask(feature, _mm512_set1_epi32(4));
  for (int j = 0; j < 2; ++j) v[j] = _mm512_mask_blend_ps(bit2, v[2 * j], v[2 * j + 1]);
  const __mmask16 bit3 = _mm512_test_epi32_mask(feature, _mm512_set1_epi32(8));
  return _mm512_mask_blend_ps(bit3, v[0], v[1]);
}

// Walks one tree for kBlocks blocks of 16 rows at once (one row per lane). The tree's
// first six levels (63 nodes) come from registers (permutes; measured 59 -> 51 us on the
// 300-tree frame against five levels, no gain from seven), deeper levels are gathered
// (separate 32-bit gathers measured faster here than whole-node 64-bit ones). Several
// independent blocks in flight hide the gather latency. kSelectX: features come from
// select_feature (blocks of 16 columns) instead of a gather (blocks of nf columns).
template <int kBlocks, bool kSelectX>
__attribute__((target("avx512f"))) void walk_tree_avx512(const CompactNode* tree, const double* value,
                                                         std::uint32_t depth, const float* x, std::size_t nf,
                                                         double* out) {
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i one = _mm512_set1_epi32(1);
  const __m512i odd = _mm512_add_epi32(even, one);
  __m512 top_threshold[4];
  __m512i top_link[4];
  for (int h = 0; h < 4; ++h) {
    const __m512i lo = _mm512_loadu_si512(tree + 16 * h);
    const __m512i hi = _mm512_loadu_si512(tree + 16 * h + 8);
    top_threshold[h] = _mm512_castsi512_ps(_mm512_permutex2var_epi32(lo, even, hi));
    top_link[h] = _mm512_permutex2var_epi32(lo, odd, hi);
  }
  const __m512i feature_mask = _mm512_set1_epi32(0x7FF);
  const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  // The first two levels test at most three features, read as whole columns (no gather).
  const std::uint32_t f_root = feature_of(tree[0]);
  const std::uint32_t f_left = feature_of(tree[1]);
  const std::uint32_t f_right = feature_of(tree[2]);
  const __m512i two = _mm512_set1_epi32(2);
  __m512i idx[kBlocks];
  for (int b = 0; b < kBlocks; ++b) idx[b] = _mm512_setzero_si512();
  for (std::uint32_t d = 0; d < depth; ++d) {
    for (int b = 0; b < kBlocks; ++b) {
      __m512 threshold;
      __m512i link;
      if (d < 5) {  // every node reachable in d < 5 steps has index < 31
        threshold = _mm512_permutex2var_ps(top_threshold[0], idx[b], top_threshold[1]);
        link = _mm512_permutex2var_epi32(top_link[0], idx[b], top_link[1]);
      } else if (d < kRegisterLevels) {  // d == 5: index < 63, bit 5 picks the table half
        const __mmask16 upper = _mm512_test_epi32_mask(idx[b], _mm512_set1_epi32(32));
        threshold = _mm512_mask_blend_ps(upper, _mm512_permutex2var_ps(top_threshold[0], idx[b], top_threshold[1]),
                                         _mm512_permutex2var_ps(top_threshold[2], idx[b], top_threshold[3]));
        link = _mm512_mask_blend_epi32(upper, _mm512_permutex2var_epi32(top_link[0], idx[b], top_link[1]),
                                       _mm512_permutex2var_epi32(top_link[2], idx[b], top_link[3]));
      } else {
        const __m512i slot = _mm512_slli_epi32(idx[b], 1);  // two 32-bit words per node
        threshold = _mm512_i32gather_ps(slot, reinterpret_cast<const float*>(tree), 4);
        link = _mm512_i32gather_epi32(slot, reinterpret_cast<const int*>(tree) + 1, 4);
      }
      const float* block = x + static_cast<std::size_t>(b) * 16 * (kSelectX ? 16 : nf);
      __m512 xv;
      if (d == 0) {
        xv = _mm512_loadu_ps(block + 16 * f_root);
      } else if (d == 1) {
        xv = _mm512_mask_blend_ps(_mm512_cmpeq_epi32_mask(idx[b], two), _mm512_loadu_ps(block + 16 * f_left),
                                  _mm512_loadu_ps(block + 16 * f_right));
      } else if (kSelectX) {
        xv = select_feature(block, _mm512_and_si512(_mm512_srli_epi32(link, 1), feature_mask));
      } else {
        const __m512i feature = _mm512_and_si512(_mm512_srli_epi32(link, 1), feature_mask);
        xv = _mm512_i32gather_ps(_mm512_add_epi32(_mm512_slli_epi32(feature, 4), lane), block, 4);
      }
      const __mmask16 nan_left = _mm512_cmp_ps_mask(xv, xv, _CMP_UNORD_Q) & _mm512_test_epi32_mask(link, one);
      const __mmask16 go_left = _mm512_cmp_ps_mask(xv, threshold, _CMP_LE_OQ) | nan_left;
      const __m512i left = _mm512_srli_epi32(link, 12);
      idx[b] = _mm512_mask_add_epi32(left, static_cast<__mmask16>(~go_left), left, one);
    }
  }
  for (int b = 0; b < kBlocks; ++b) {
    double* dst = out + b * 16;
    const __m512d v0 = _mm512_i32gather_pd(_mm512_castsi512_si256(idx[b]), value, 8);
    const __m512d v1 = _mm512_i32gather_pd(_mm512_extracti64x4_epi64(idx[b], 1), value, 8);
    _mm512_storeu_pd(dst, _mm512_add_pd(_mm512_loadu_pd(dst), v0));
    _mm512_storeu_pd(dst + 8, _mm512_add_pd(_mm512_loadu_pd(dst + 8), v1));
  }
}

// One row, sixteen trees per lane group, kGroups groups in flight: used for single rows
// and the last < 16 rows of a batch. Leaf values are added in tree order afterwards. With
// at most 16 features the row sits in one register and a permute picks each lane's feature
// (with the tree groups padded to 16: 2.7 -> 1.7 us for a 300-tree row, AMD EPYC).
template <int kGroups>
__attribute__((target("avx512f"))) void walk_row_avx512(const CompactNode* nodes, const double* leaf_value,
                                                        const std::uint32_t* tree_start, std::uint32_t depth,
                                                        const float* row, std::size_t nf, double* sum) {
  const __m512i one = _mm512_set1_epi32(1);
  const __m512i feature_mask = _mm512_set1_epi32(0x7FF);
  const auto* threshold_base = reinterpret_cast<const float*>(nodes);
  const auto* link_base = reinterpret_cast<const int*>(nodes) + 1;
  const bool in_register = nf <= 16;
  const __m512 row_vector =
      in_register ? _mm512_maskz_loadu_ps(static_cast<__mmask16>((1U << nf) - 1U), row) : _mm512_setzero_ps();
  __m512i base[kGroups];
  __m512i idx[kGroups];
  for (int g = 0; g < kGroups; ++g) {
    base[g] = _mm512_loadu_si512(tree_start + 16 * g);
    idx[g] = base[g];
  }
  for (std::uint32_t d = 0; d < depth; ++d) {
    for (int g = 0; g < kGroups; ++g) {
      const __m512i slot = _mm512_slli_epi32(idx[g], 1);
      const __m512 threshold = _mm512_i32gather_ps(slot, threshold_base, 4);
      const __m512i link = _mm512_i32gather_epi32(slot, link_base, 4);
      const __m512i feature = _mm512_and_si512(_mm512_srli_epi32(link, 1), feature_mask);
      const __m512 xv =
          in_register ? _mm512_permutexvar_ps(feature, row_vector) : _mm512_i32gather_ps(feature, row, 4);
      const __mmask16 nan_left = _mm512_cmp_ps_mask(xv, xv, _CMP_UNORD_Q) & _mm512_test_epi32_mask(link, one);
      const __mmask16 go_left = _mm512_cmp_ps_mask(xv, threshold, _CMP_LE_OQ) | nan_left;
      const __m512i left = _mm512_add_epi32(base[g], _mm512_srli_epi32(link, 12));
      idx[g] = _mm512_mask_add_epi32(left, static_cast<__mmask16>(~go_left), left, one);
    }
  }
  alignas(64) std::uint32_t leaf[16 * kGroups];
  for (int g = 0; g < kGroups; ++g) _mm512_store_si512(leaf + 16 * g, idx[g]);
  for (int k = 0; k < 16 * kGroups; ++k) *sum += leaf_value[leaf[k]];
}


#pragma GCC diagnostic pop

bool cpu_has_avx512() {
  static const bool has = __builtin_cpu_supports("avx512f");
  return has;
}
#else
bool cpu_has_avx512() { return false; }
#endif

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
      metadata_json_(spec.metadata_json),
      baseline_(spec.baseline),
      context_(spec.context) {
  validate_forest(spec);
  for (const auto& tree : spec.trees) {
    tree_offset_.push_back(wide_nodes_.size());
    tree_depth_.push_back(append_tree(tree, wide_nodes_, leaf_value_));
  }
  n_nodes_ = leaf_value_.size();
  if (fits_compact(tree_offset_, wide_nodes_.size() + 1, n_features_)) {
    compact_nodes_.reserve(wide_nodes_.size() + 1 + kTopNodes);
    for (const auto& n : wide_nodes_)
      compact_nodes_.push_back({n.threshold, n.left << 12 | std::uint32_t{n.feature} << 1 | n.nan_left});
    wide_nodes_ = {};
    // A one-leaf tree worth 0 after the last tree: the row kernel walks trees sixteen at a
    // time and pads the last group with it (adding +0.0 leaves a positive sum unchanged).
    const auto empty_tree = static_cast<std::uint32_t>(compact_nodes_.size());
    compact_nodes_.push_back({std::numeric_limits<float>::infinity(), 1U});
    leaf_value_.push_back(0.0);
    // The vector kernel loads each tree's first kTopNodes nodes at once; pad so that
    // never reads past the end. Padding nodes are never visited.
    compact_nodes_.resize(compact_nodes_.size() + kTopNodes, CompactNode{0.0F, 0U});
    // Per group of 16 trees: where each tree starts and the deepest tree's depth, for
    // the kernel that walks one row through many trees at once.
    for (std::size_t g = 0; g < tree_offset_.size(); g += 16) {
      std::uint32_t depth = 0;
      for (std::size_t t = g; t < g + 16; ++t) {
        const bool real = t < tree_offset_.size();
        tree_start_.push_back(real ? static_cast<std::uint32_t>(tree_offset_[t]) : empty_tree);
        if (real) depth = std::max(depth, tree_depth_[t]);
      }
      group_depth_.push_back(depth);
    }
  }
  calibrate_kernel();
}

const char* kernel_name(ForestKernel kernel) {
  switch (kernel) {
    case ForestKernel::kPortable:
      return "portable";
    case ForestKernel::kAvx512Gather:
      return "avx512_gather";
    case ForestKernel::kAvx512Blend:
      return "avx512_blend";
  }
  return "unknown";
}

std::vector<ForestKernel> ForestModel::supported_kernels() const {
  std::vector<ForestKernel> kernels{ForestKernel::kPortable};
  if (compact_layout() && cpu_has_avx512()) kernels.push_back(ForestKernel::kAvx512Gather);
  if (compact_layout() && cpu_has_avx512() && n_features_ <= 16) kernels.push_back(ForestKernel::kAvx512Blend);
  return kernels;
}

void ForestModel::use_kernel(ForestKernel kernel) {
  const auto kernels = supported_kernels();
  if (std::find(kernels.begin(), kernels.end(), kernel) == kernels.end())
    throw std::invalid_argument(std::string("forest kernel ") + kernel_name(kernel) +
                                " is not available for this model on this CPU");
  kernel_ = kernel;
}

ForestKernel ForestModel::calibrate_kernel() {
  const auto kernels = supported_kernels();
  if (kernels.size() == 1) return kernel_ = kernels.front();
  // One 64-row frame (walks cost the same whatever the values: every row goes to full depth),
  // three interleaved rounds, the fastest round of each kernel wins. About 1 ms for 300 trees.
  constexpr std::size_t kRows = 64;
  const std::vector<float> x(kRows * n_features_, 0.0F);
  std::vector<double> out(kRows);
  std::vector<double> best(kernels.size(), std::numeric_limits<double>::infinity());
  for (int round = 0; round < 3; ++round) {
    for (std::size_t k = 0; k < kernels.size(); ++k) {
      kernel_ = kernels[k];
      const auto start = std::chrono::steady_clock::now();
      path_length_sums(x.data(), kRows, out.data());
      best[k] = std::min(best[k], std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    }
  }
  kernel_ = kernels[static_cast<std::size_t>(std::min_element(best.begin(), best.end()) - best.begin())];
  return kernel_;
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
  std::size_t done = 0;
  std::size_t first_tree = 0;
#ifdef LASERGUARD_HAVE_AVX512_KERNEL
  if (kernel_ != ForestKernel::kPortable) {
    done = walk_avx512(x, rows, out);
    first_tree = n_trees();  // the vector kernel walked every tree for the remaining rows
  }
#endif
  if (compact_layout())
    walk_rows(compact_nodes_, x + done * n_features_, rows - done, out + done, first_tree);
  else
    walk_rows(wide_nodes_, x + done * n_features_, rows - done, out + done, first_tree);
}

std::size_t ForestModel::walk_avx512(const float* x, std::size_t rows, double* out) const {
#ifdef LASERGUARD_HAVE_AVX512_KERNEL
  const std::size_t nf = n_features_;
  const std::size_t blocks = rows / 16;
  // Feature-major 16-row blocks: a column of a block is one 64-byte vector. The blend
  // kernel selects among 16 columns, so its blocks are padded to 16.
  const bool blend = kernel_ == ForestKernel::kAvx512Blend;
  const std::size_t cols = blend ? 16 : nf;
  thread_local std::vector<float> transposed;
  transposed.assign(blocks * 16 * cols, 0.0F);
  for (std::size_t b = 0; b < blocks; ++b)
    for (std::size_t f = 0; f < nf; ++f)
      for (std::size_t l = 0; l < 16; ++l) transposed[(b * cols + f) * 16 + l] = x[(b * 16 + l) * nf + f];
  // Chunks of rows small enough to stay in L1 while every tree walks them; within a
  // chunk, trees in order, so each row's sum is accumulated exactly as sklearn does.
  constexpr std::size_t kChunkRows = 256;
  for (std::size_t start = 0; start < blocks * 16; start += kChunkRows) {
    const std::size_t chunk_blocks = std::min(kChunkRows, blocks * 16 - start) / 16;
    const float* xc = transposed.data() + start * cols;
    double* oc = out + start;
    for (std::size_t t = 0; t < tree_offset_.size(); ++t) {
      const CompactNode* tree = compact_nodes_.data() + tree_offset_[t];
      const double* value = leaf_value_.data() + tree_offset_[t];
      const std::uint32_t depth = tree_depth_[t];
      // kBlocks blocks of 16 rows in flight, starting at block b.
      const auto walk = [&](auto blocks_in_flight, std::size_t b) {
        constexpr int kBlocks = decltype(blocks_in_flight)::value;
        const float* xb = xc + b * 16 * cols;
        if (blend)
          walk_tree_avx512<kBlocks, true>(tree, value, depth, xb, nf, oc + b * 16);
        else
          walk_tree_avx512<kBlocks, false>(tree, value, depth, xb, nf, oc + b * 16);
      };
      std::size_t b = 0;
      for (; b + 4 <= chunk_blocks; b += 4) walk(std::integral_constant<int, 4>{}, b);
      // Remaining 1-3 blocks go in flight together too (a 32-unit frame is two blocks).
      switch (chunk_blocks - b) {
        case 3:
          walk(std::integral_constant<int, 3>{}, b);
          break;
        case 2:
          walk(std::integral_constant<int, 2>{}, b);
          break;
        case 1:
          walk(std::integral_constant<int, 1>{}, b);
          break;
        default:
          break;
      }
    }
  }
  // Remaining rows: trees across lanes, up to four groups of 16 trees in flight.
  const std::size_t groups = group_depth_.size();
  for (std::size_t r = blocks * 16; r < rows; ++r) {
    for (std::size_t g = 0; g < groups; g += 4) {
      const std::size_t width = std::min<std::size_t>(4, groups - g);
      const std::uint32_t depth = *std::max_element(group_depth_.begin() + static_cast<std::ptrdiff_t>(g),
                                                    group_depth_.begin() + static_cast<std::ptrdiff_t>(g + width));
      const std::uint32_t* starts = tree_start_.data() + 16 * g;
      const CompactNode* nodes = compact_nodes_.data();
      const double* values = leaf_value_.data();
      const float* row = x + r * nf;
      switch (width) {
        case 4:
          walk_row_avx512<4>(nodes, values, starts, depth, row, nf, out + r);
          break;
        case 3:
          walk_row_avx512<3>(nodes, values, starts, depth, row, nf, out + r);
          break;
        case 2:
          walk_row_avx512<2>(nodes, values, starts, depth, row, nf, out + r);
          break;
        default:
          walk_row_avx512<1>(nodes, values, starts, depth, row, nf, out + r);
          break;
      }
    }
  }
  return blocks * 16;
#else
  (void)x, (void)rows, (void)out;
  return 0;
#endif
}

// Portable walk: a handful of rows (or, for a single row, a handful of trees) in flight
// at once so the dependent loads of one walk overlap with the others.
template <typename NodeT>
void ForestModel::walk_rows(const std::vector<NodeT>& nodes, const float* x, std::size_t rows, double* out,
                            std::size_t first_tree) const {
  const std::size_t nf = n_features_;
  const std::size_t n_trees = tree_offset_.size();
  constexpr std::size_t kLanes = 8;
  std::size_t r = 0;
  for (; r + kLanes <= rows; r += kLanes) {
    const float* block = x + r * nf;
    for (std::size_t t = first_tree; t < n_trees; ++t) {
      const NodeT* tree = nodes.data() + tree_offset_[t];
      std::uint32_t idx[kLanes] = {};
      for (std::uint32_t d = 0; d < tree_depth_[t]; ++d)
        for (std::size_t k = 0; k < kLanes; ++k) {
          const NodeT node = tree[idx[k]];
          idx[k] = next_node(node, block[k * nf + feature_of(node)]);
        }
      const double* value = leaf_value_.data() + tree_offset_[t];
      for (std::size_t k = 0; k < kLanes; ++k) out[r + k] += value[idx[k]];
    }
  }
  for (; r < rows; ++r) {
    const float* row = x + r * nf;
    for (std::size_t t0 = first_tree; t0 < n_trees; t0 += kLanes) {
      const std::size_t width = std::min(kLanes, n_trees - t0);
      std::uint32_t depth = 0;
      for (std::size_t k = 0; k < width; ++k) depth = std::max(depth, tree_depth_[t0 + k]);
      std::uint32_t idx[kLanes] = {};
      // Leaves loop to themselves, so walking past a shallower tree's depth is harmless.
      for (std::uint32_t d = 0; d < depth; ++d)
        for (std::size_t k = 0; k < width; ++k) {
          const NodeT node = nodes[tree_offset_[t0 + k] + idx[k]];
          idx[k] = next_node(node, row[feature_of(node)]);
        }
      for (std::size_t k = 0; k < width; ++k) out[r] += leaf_value_[tree_offset_[t0 + k] + idx[k]];
    }
  }
}

void ForestModel::feature_attribution(const float* x, std::size_t rows, float* out) const {
  if (compact_layout())
    attribute(compact_nodes_, x, rows, out);
  else
    attribute(wide_nodes_, x, rows, out);
}

template <typename NodeT>
void ForestModel::attribute(const std::vector<NodeT>& nodes, const float* x, std::size_t rows, float* out) const {
  const std::size_t nf = n_features_;
  std::vector<std::uint32_t> path;
  for (std::size_t r = 0; r < rows; ++r) {
    const float* row = x + r * nf;
    float* attribution = out + r * nf;
    std::fill(attribution, attribution + nf, 0.0F);
    for (std::size_t t = 0; t < tree_offset_.size(); ++t) {
      const NodeT* tree = nodes.data() + tree_offset_[t];
      path.clear();
      std::uint32_t idx = 0;
      // Stop at the leaf (a node whose left child is itself).
      while (left_of(tree[idx]) != idx) {
        path.push_back(feature_of(tree[idx]));
        idx = next_node(tree[idx], row[feature_of(tree[idx])]);
      }
      if (path.empty()) continue;
      const float weight = 1.0F / static_cast<float>(path.size()) - 1.0F / static_cast<float>(tree_depth_[t]);
      for (const std::uint32_t f : path) attribution[f] += weight;
    }
  }
}

void ForestModel::score_samples(const float* x, std::size_t rows, double* out, const PowerOfTwo& power) const {
  path_length_sums(x, rows, out);
  // sklearn: -2 ** (-depths / denominator); a single-sample forest (denominator 0) uses ratio 1.
  for (std::size_t r = 0; r < rows; ++r) out[r] = -(denominator_ != 0.0 ? out[r] / denominator_ : 1.0);
  power.apply(out, rows);
  for (std::size_t r = 0; r < rows; ++r) out[r] = -out[r];
}

void ForestModel::decision_function(const float* x, std::size_t rows, double* out, const PowerOfTwo& power) const {
  score_samples(x, rows, out, power);
  for (std::size_t r = 0; r < rows; ++r) out[r] -= offset_;
}

}  // namespace laserguard
