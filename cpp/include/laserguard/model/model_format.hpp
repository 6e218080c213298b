#pragma once
// The laserguard forest model file (.lgf): a versioned, little-endian, checksummed
// container for an exported StandardScaler + IsolationForest. Spec: docs/model-format.md.
//
// ForestSpec is the file's content in sklearn's own terms (depth-first nodes, float64
// thresholds); ForestModel (forest_model.hpp) turns it into the compact scoring layout.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "laserguard/model/baseline_params.hpp"
#include "laserguard/model/context_params.hpp"

namespace laserguard {

// A model file that is corrupt, truncated, foreign or inconsistent.
class ModelFormatError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

inline constexpr char kModelMagic[8] = {'L', 'G', 'F', 'O', 'R', 'E', 'S', 'T'};
// 1.0: the forest alone. 2.0: the forest and the per-unit baseline stage (detection
// engine v2). The writer emits 1.0 when there is no baseline stage, so v1 files stay
// byte-identical; the reader accepts both majors.
inline constexpr std::uint16_t kModelVersionMajor = 2;
// 2.1 (detection engine v3) appends the context stage after the baseline stage; a file without
// one is still written as 2.0, so v2 files stay byte-identical.
inline constexpr std::uint16_t kModelVersionMinor = 0;
inline constexpr std::uint16_t kModelVersionMinorContext = 1;
// 2.2 appends the context stage's gain_sd (the fleet's spread of unit gains) and its context
// channels' jump_ref/jump_scale; a context stage that uses neither is still written as 2.1, and
// a 2.1 file reads as gain_sd 0, no jumps judged.
inline constexpr std::uint16_t kModelVersionMinorGainPrior = 2;
inline constexpr std::uint16_t kModelVersionMajorForestOnly = 1;
inline constexpr std::size_t kModelHeaderBytes = 32;
inline constexpr std::uint32_t kMaxModelFeatures = 65535;  // feature index is stored in 16 bits at run time
inline constexpr std::uint32_t kMaxTreeDepth = 64;

// One isolation tree exactly as sklearn's tree_ stores it: node 0 is the root, children
// come after their parent, leaves have left == right == -1.
struct TreeSpec {
  std::vector<std::int32_t> left;
  std::vector<std::int32_t> right;
  // Column of the model's input (already mapped through estimators_features_); -1 at leaves.
  std::vector<std::int32_t> feature;
  std::vector<double> threshold;
  std::vector<std::uint8_t> missing_go_left;
  // Per node: node_depth + c(n_node_samples) - 1.0, computed by sklearn's own code at
  // export; only leaf entries are used. Summing these tree by tree reproduces sklearn.
  std::vector<double> value;

  std::size_t n_nodes() const noexcept { return left.size(); }
};

struct ForestSpec {
  std::uint32_t n_features = 0;
  bool has_scaler = false;
  bool with_mean = false;
  bool with_std = false;
  std::vector<double> mean;   // n_features entries when has_scaler
  std::vector<double> scale;  // n_features entries when has_scaler
  double offset = 0.0;        // sklearn offset_: decision = score_samples - offset
  double denominator = 0.0;   // n_estimators * c(max_samples_), as sklearn computes it
  std::vector<std::string> feature_names;  // n_features entries
  std::string metadata_json;               // opaque to C++; parsed by the Python layer
  std::vector<TreeSpec> trees;
  std::optional<BaselineParams> baseline;  // present in format 2.x only
  std::optional<ContextParams> context;    // present in format 2.1+ only (needs the baseline stage)
};

// Throws ModelFormatError naming the first inconsistency found.
void validate_forest(const ForestSpec& spec);

std::vector<std::uint8_t> serialize_forest(const ForestSpec& spec);
ForestSpec parse_forest(const std::uint8_t* data, std::size_t size);

ForestSpec read_forest_file(const std::string& path);
// Writes to a unique temporary file in the same directory, fsyncs, then renames over
// `path`, so a reader never sees a half-written model. I/O failures throw
// std::system_error carrying errno.
void write_forest_file(const ForestSpec& spec, const std::string& path);

}  // namespace laserguard
