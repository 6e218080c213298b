#include "laserguard/model/model_format.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <iterator>
#include <limits>
#include <sstream>
#include <stdexcept>
#include <type_traits>

#include "laserguard/model/atomic_file.hpp"
#include "laserguard/model/crc32.hpp"

namespace laserguard {
namespace {

static_assert(std::numeric_limits<double>::is_iec559, "IEEE-754 doubles required");

// Every multi-byte value is written byte by byte in little-endian order, so the format
// does not depend on the host's endianness.
class ByteWriter {
 public:
  template <typename T>
  void put(T value) {
    static_assert(std::is_arithmetic_v<T>);
    std::uint8_t raw[sizeof(T)];
    std::memcpy(raw, &value, sizeof(T));
    if constexpr (sizeof(T) > 1) {
      if (!is_little_endian()) std::reverse(std::begin(raw), std::end(raw));
    }
    bytes_.insert(bytes_.end(), std::begin(raw), std::end(raw));
  }
  template <typename T>
  void put_array(const std::vector<T>& values) {
    for (const T& v : values) put(v);
  }
  void put_string(const std::string& s) {
    put(static_cast<std::uint32_t>(s.size()));
    bytes_.insert(bytes_.end(), s.begin(), s.end());
  }
  std::vector<std::uint8_t>& bytes() { return bytes_; }

  static bool is_little_endian() {
    const std::uint16_t probe = 1;
    std::uint8_t first = 0;
    std::memcpy(&first, &probe, 1);
    return first == 1;
  }

 private:
  std::vector<std::uint8_t> bytes_;
};

// Bounds-checked reader: every read names what it was reading when the data runs out.
class ByteReader {
 public:
  ByteReader(const std::uint8_t* data, std::size_t size) : data_(data), size_(size) {}

  template <typename T>
  T get(const char* what) {
    require(sizeof(T), what);
    std::uint8_t raw[sizeof(T)];
    std::memcpy(raw, data_ + pos_, sizeof(T));
    if constexpr (sizeof(T) > 1) {
      if (!ByteWriter::is_little_endian()) std::reverse(std::begin(raw), std::end(raw));
    }
    T value;
    std::memcpy(&value, raw, sizeof(T));
    pos_ += sizeof(T);
    return value;
  }
  template <typename T>
  std::vector<T> get_array(std::size_t count, const char* what) {
    if (count > remaining() / sizeof(T)) fail_truncated(count * sizeof(T), what);
    std::vector<T> out(count);
    for (std::size_t i = 0; i < count; ++i) out[i] = get<T>(what);
    return out;
  }
  std::string get_string(const char* what) {
    const auto len = get<std::uint32_t>(what);
    require(len, what);
    std::string s(reinterpret_cast<const char*>(data_ + pos_), len);
    pos_ += len;
    return s;
  }
  std::size_t remaining() const { return size_ - pos_; }
  std::size_t position() const { return pos_; }

 private:
  void require(std::size_t n, const char* what) const {
    if (n > remaining()) fail_truncated(n, what);
  }
  [[noreturn]] void fail_truncated(std::size_t n, const char* what) const {
    std::ostringstream msg;
    msg << "model file truncated: needed " << n << " bytes for " << what << " at offset "
        << kModelHeaderBytes + pos_ << ", only " << remaining() << " left";
    throw ModelFormatError(msg.str());
  }

  const std::uint8_t* data_;
  std::size_t size_;
  std::size_t pos_ = 0;
};

constexpr std::size_t kChecksummedHeaderBytes = 24;

[[noreturn]] void fail(const std::string& message) { throw ModelFormatError(message); }

std::string tree_prefix(std::size_t tree, std::size_t node) {
  return "tree " + std::to_string(tree) + " node " + std::to_string(node) + ": ";
}

void validate_tree(const TreeSpec& t, std::size_t index, std::uint32_t n_features) {
  const std::size_t n = t.n_nodes();
  if (n == 0) fail("tree " + std::to_string(index) + " has no nodes");
  if (n > static_cast<std::size_t>(std::numeric_limits<std::int32_t>::max()))
    fail("tree " + std::to_string(index) + " has too many nodes: " + std::to_string(n));
  if (t.right.size() != n || t.feature.size() != n || t.threshold.size() != n ||
      t.missing_go_left.size() != n || t.value.size() != n)
    fail("tree " + std::to_string(index) + ": node arrays differ in length");

  std::vector<std::uint8_t> parents(n, 0);
  std::vector<std::uint32_t> depth(n, 0);
  for (std::size_t i = 0; i < n; ++i) {
    const std::int32_t l = t.left[i];
    const std::int32_t r = t.right[i];
    if (l == -1 || r == -1) {
      if (l != -1 || r != -1)
        fail(tree_prefix(index, i) + "one child missing (left " + std::to_string(l) +
             ", right " + std::to_string(r) + ")");
      if (!std::isfinite(t.value[i]))
        fail(tree_prefix(index, i) + "leaf value is not finite: " + std::to_string(t.value[i]));
      continue;
    }
    // Children strictly after their parent rules out cycles; a single parent per node
    // (checked below) makes the node set one tree rooted at 0.
    if (l <= static_cast<std::int64_t>(i) || static_cast<std::size_t>(l) >= n ||
        r <= static_cast<std::int64_t>(i) || static_cast<std::size_t>(r) >= n || l == r)
      fail(tree_prefix(index, i) + "child index out of range or not after parent (left " +
           std::to_string(l) + ", right " + std::to_string(r) + ", nodes " + std::to_string(n) +
           ")");
    if (t.feature[i] < 0 || static_cast<std::uint32_t>(t.feature[i]) >= n_features)
      fail(tree_prefix(index, i) + "feature index " + std::to_string(t.feature[i]) +
           " outside [0, " + std::to_string(n_features) + ")");
    if (std::isnan(t.threshold[i])) fail(tree_prefix(index, i) + "threshold is NaN");
    if (t.missing_go_left[i] > 1)
      fail(tree_prefix(index, i) + "missing_go_left must be 0 or 1, got " +
           std::to_string(t.missing_go_left[i]));
    for (const std::int32_t c : {l, r}) {
      const auto child = static_cast<std::size_t>(c);
      if (++parents[child] > 1) fail(tree_prefix(index, child) + "has more than one parent");
      depth[child] = depth[i] + 1;
      if (depth[child] > kMaxTreeDepth)
        fail(tree_prefix(index, child) + "depth exceeds " + std::to_string(kMaxTreeDepth));
    }
  }
  for (std::size_t i = 1; i < n; ++i)
    if (parents[i] != 1) fail(tree_prefix(index, i) + "is not reachable from the root");
}


// Format 2.x: the baseline stage after the last tree (docs/model-format.md).
void put_baseline(ByteWriter& out, const BaselineParams& p) {
  out.put(p.n_channels);
  out.put(p.baseline_samples);
  out.put(p.baseline_s);
  out.put(p.window);
  out.put(static_cast<std::uint8_t>(p.missing_flags));
  for (int i = 0; i < 3; ++i) out.put(static_cast<std::uint8_t>(0));
  out.put(p.mean_tau_s);
  out.put(p.threshold);
  out.put(p.fleet_cut);
  out.put_array(p.sigma_floor);
  out.put_array(p.stuck_run);
  out.put(static_cast<std::uint32_t>(p.scored.size()));
  out.put_array(p.scored);
  out.put_array(p.level_scale);
  out.put_array(p.spread_scale);
  out.put_array(p.judge_spread);
  out.put(p.confirm_rows);
}

BaselineParams get_baseline(ByteReader& in) {
  BaselineParams p;
  p.n_channels = in.get<std::uint32_t>("baseline n_channels");
  if (p.n_channels == 0 || p.n_channels > kMaxModelFeatures)
    fail("baseline stage: n_channels must be in [1, " + std::to_string(kMaxModelFeatures) + "], got " +
         std::to_string(p.n_channels));
  p.baseline_samples = in.get<std::uint32_t>("baseline_samples");
  p.baseline_s = in.get<double>("baseline_s");
  p.window = in.get<std::uint32_t>("baseline window");
  const auto missing = in.get<std::uint8_t>("baseline flags");
  if (missing > 1) fail("baseline stage: missing_flags must be 0 or 1, got " + std::to_string(missing));
  p.missing_flags = missing == 1;
  for (int i = 0; i < 3; ++i)
    if (in.get<std::uint8_t>("baseline reserved") != 0) fail("baseline stage: reserved byte is not zero");
  p.mean_tau_s = in.get<double>("mean_tau_s");
  p.threshold = in.get<double>("baseline threshold");
  p.fleet_cut = in.get<double>("fleet_cut");
  p.sigma_floor = in.get_array<double>(p.n_channels, "sigma floors");
  p.stuck_run = in.get_array<std::uint32_t>(p.n_channels, "stuck-run lengths");
  const auto n_scored = in.get<std::uint32_t>("scored channel count");
  if (n_scored == 0 || n_scored > p.n_channels)
    fail("baseline stage: scored channel count must be in [1, " + std::to_string(p.n_channels) + "], got " +
         std::to_string(n_scored));
  p.scored = in.get_array<std::uint32_t>(n_scored, "scored channels");
  p.level_scale = in.get_array<double>(n_scored, "level scales");
  p.spread_scale = in.get_array<double>(n_scored, "spread scales");
  p.judge_spread = in.get_array<std::uint8_t>(n_scored, "judge_spread flags");
  p.confirm_rows = in.get<std::uint32_t>("confirm_rows");
  return p;
}

// A context stage that uses nothing of 2.2 (gain_sd and jump_scale all 0) is written as 2.1,
// byte-identical to before; otherwise as 2.2.
std::uint16_t context_minor(const ContextParams& p) {
  for (const auto* v : {&p.gain_sd, &p.jump_scale})
    for (const double x : *v)
      if (x != 0.0) return kModelVersionMinorGainPrior;
  return kModelVersionMinorContext;
}

// Format 2.1/2.2: the context stage after the baseline stage (docs/model-format.md).
void put_context(ByteWriter& out, const ContextParams& p) {
  out.put(p.n_channels);
  out.put(static_cast<std::uint8_t>(p.uses_unit_context));
  out.put(static_cast<std::uint8_t>(p.calibration));
  out.put(static_cast<std::uint8_t>(p.forest_input));
  out.put(static_cast<std::uint8_t>(0));
  out.put(static_cast<std::uint32_t>(p.context.size()));
  out.put_array(p.context);
  out.put_array(p.context_center);
  out.put_array(p.context_scale);
  out.put_array(p.context_min);
  out.put_array(p.context_max);
  out.put(static_cast<std::uint32_t>(p.filters.size()));
  for (const auto& f : p.filters) out.put(f.source);
  for (const auto& f : p.filters) out.put(f.tau_s);
  out.put(static_cast<std::uint32_t>(p.term_a.size()));
  out.put_array(p.term_a);
  out.put_array(p.term_b);
  out.put(static_cast<std::uint32_t>(p.monitored.size()));
  out.put_array(p.monitored);
  out.put_array(p.coef);
  out.put_array(p.resid_sigma);
  out.put_array(p.prior_var);
  for (const double v : {p.calib_tau_s, p.calib_prior_s, p.gain_limit, p.max_dt_s, p.calib_anchor_s,
                         p.calib_max_deviation, p.calib_change_s, p.level_tau_s, p.spread_tau_s, p.spe_tau_s})
    out.put(v);
  out.put_array(p.level_scale);
  out.put_array(p.spread_ref);
  out.put_array(p.spread_scale);
  out.put_array(p.judge_spread);
  out.put(p.n_components);
  out.put_array(p.loadings);
  out.put_array(p.eigenvalues);
  for (const double v : {p.spe_limit, p.t2_limit, p.change_hold_s, p.change_relax}) out.put(v);
  if (context_minor(p) >= kModelVersionMinorGainPrior) {
    out.put_array(p.gain_sd);
    out.put_array(p.jump_ref);
    out.put_array(p.jump_scale);
  }
}

ContextParams get_context(ByteReader& in, std::uint16_t minor) {
  ContextParams p;
  p.n_channels = in.get<std::uint32_t>("context n_channels");
  if (p.n_channels == 0 || p.n_channels > kMaxModelFeatures)
    fail("context stage: n_channels must be in [1, " + std::to_string(kMaxModelFeatures) + "], got " +
         std::to_string(p.n_channels));
  const auto uses = in.get<std::uint8_t>("context uses_unit_context");
  if (uses > 1) fail("context stage: uses_unit_context must be 0 or 1, got " + std::to_string(uses));
  p.uses_unit_context = uses == 1;
  const auto calibration = in.get<std::uint8_t>("context calibration");
  if (calibration > static_cast<std::uint8_t>(CalibrationMode::kAffine))
    fail("context stage: calibration must be 0, 1 or 2, got " + std::to_string(calibration));
  p.calibration = static_cast<CalibrationMode>(calibration);
  const auto forest_input = in.get<std::uint8_t>("context forest_input");
  if (forest_input > static_cast<std::uint8_t>(ForestInput::kResidual))
    fail("context stage: forest_input must be 0 or 1, got " + std::to_string(forest_input));
  p.forest_input = static_cast<ForestInput>(forest_input);
  if (in.get<std::uint8_t>("context reserved") != 0) fail("context stage: reserved byte is not zero");
  const auto n_context = in.get<std::uint32_t>("context channel count");
  if (n_context > p.n_channels)
    fail("context stage: context channel count must be in [0, " + std::to_string(p.n_channels) + "], got " +
         std::to_string(n_context));
  p.context = in.get_array<std::uint32_t>(n_context, "context channels");
  p.context_center = in.get_array<double>(n_context, "context centres");
  p.context_scale = in.get_array<double>(n_context, "context scales");
  p.context_min = in.get_array<double>(n_context, "context minima");
  p.context_max = in.get_array<double>(n_context, "context maxima");
  const auto n_filters = in.get<std::uint32_t>("context filter count");
  if (n_filters > kMaxContextFilters)
    fail("context stage: filter count must be in [0, " + std::to_string(kMaxContextFilters) + "], got " +
         std::to_string(n_filters));
  const auto sources = in.get_array<std::uint32_t>(n_filters, "filter sources");
  const auto taus = in.get_array<double>(n_filters, "filter time constants");
  for (std::uint32_t i = 0; i < n_filters; ++i) p.filters.push_back({sources[i], taus[i]});
  const auto n_terms = in.get<std::uint32_t>("context term count");
  if (n_terms == 0 || n_terms > kMaxContextTerms)
    fail("context stage: term count must be in [1, " + std::to_string(kMaxContextTerms) + "], got " +
         std::to_string(n_terms));
  p.term_a = in.get_array<std::uint32_t>(n_terms, "term signals");
  p.term_b = in.get_array<std::uint32_t>(n_terms, "term signals");
  const auto n_monitored = in.get<std::uint32_t>("monitored channel count");
  if (n_monitored == 0 || n_monitored > p.n_channels)
    fail("context stage: monitored channel count must be in [1, " + std::to_string(p.n_channels) + "], got " +
         std::to_string(n_monitored));
  p.monitored = in.get_array<std::uint32_t>(n_monitored, "monitored channels");
  p.coef = in.get_array<double>(static_cast<std::size_t>(n_terms) * n_monitored, "context coefficients");
  p.resid_sigma = in.get_array<double>(n_monitored, "residual sigmas");
  p.prior_var = in.get_array<double>(n_monitored, "prior variances");
  p.calib_tau_s = in.get<double>("calib_tau_s");
  p.calib_prior_s = in.get<double>("calib_prior_s");
  p.gain_limit = in.get<double>("gain_limit");
  p.max_dt_s = in.get<double>("max_dt_s");
  p.calib_anchor_s = in.get<double>("calib_anchor_s");
  p.calib_max_deviation = in.get<double>("calib_max_deviation");
  p.calib_change_s = in.get<double>("calib_change_s");
  p.level_tau_s = in.get<double>("level_tau_s");
  p.spread_tau_s = in.get<double>("spread_tau_s");
  p.spe_tau_s = in.get<double>("spe_tau_s");
  p.level_scale = in.get_array<double>(n_monitored, "context level scales");
  p.spread_ref = in.get_array<double>(n_monitored, "context spread references");
  p.spread_scale = in.get_array<double>(n_monitored, "context spread scales");
  p.judge_spread = in.get_array<std::uint8_t>(n_monitored, "context judge_spread flags");
  p.n_components = in.get<std::uint32_t>("PCA component count");
  if (p.n_components > n_monitored)
    fail("context stage: n_components must be in [0, " + std::to_string(n_monitored) + "], got " +
         std::to_string(p.n_components));
  p.loadings = in.get_array<double>(static_cast<std::size_t>(n_monitored) * p.n_components, "PCA loadings");
  p.eigenvalues = in.get_array<double>(p.n_components, "PCA eigenvalues");
  p.spe_limit = in.get<double>("spe_limit");
  p.t2_limit = in.get<double>("t2_limit");
  p.change_hold_s = in.get<double>("change_hold_s");
  p.change_relax = in.get<double>("change_relax");
  if (minor >= kModelVersionMinorGainPrior) {
    p.gain_sd = in.get_array<double>(n_monitored, "gain standard deviations");
    p.jump_ref = in.get_array<double>(n_context, "jump references");
    p.jump_scale = in.get_array<double>(n_context, "jump scales");
  } else {  // 2.1: the gain taken as known, no jumps judged
    p.gain_sd.assign(n_monitored, 0.0);
    p.jump_ref.assign(n_context, 1.0);
    p.jump_scale.assign(n_context, 0.0);
  }
  return p;
}

}  // namespace

void validate_forest(const ForestSpec& spec) {
  if (spec.n_features == 0 || spec.n_features > kMaxModelFeatures)
    fail("n_features must be in [1, " + std::to_string(kMaxModelFeatures) + "], got " +
         std::to_string(spec.n_features));
  if (spec.trees.empty()) fail("model has no trees");
  if (spec.feature_names.size() != spec.n_features)
    fail("expected " + std::to_string(spec.n_features) + " feature names, got " +
         std::to_string(spec.feature_names.size()));
  if (!std::isfinite(spec.offset)) fail("offset is not finite");
  if (!std::isfinite(spec.denominator) || spec.denominator < 0.0)
    fail("denominator must be finite and >= 0, got " + std::to_string(spec.denominator));
  if (spec.has_scaler) {
    if (spec.mean.size() != spec.n_features || spec.scale.size() != spec.n_features)
      fail("scaler has " + std::to_string(spec.mean.size()) + " means and " +
           std::to_string(spec.scale.size()) + " scales for " + std::to_string(spec.n_features) +
           " features");
    for (std::size_t j = 0; j < spec.n_features; ++j) {
      if (!std::isfinite(spec.mean[j]))
        fail("scaler mean of feature " + std::to_string(j) + " is not finite");
      if (!std::isfinite(spec.scale[j]) || spec.scale[j] <= 0.0)
        fail("scaler scale of feature " + std::to_string(j) + " must be finite and > 0, got " +
             std::to_string(spec.scale[j]));
    }
  } else if (!spec.mean.empty() || !spec.scale.empty() || spec.with_mean || spec.with_std) {
    fail("scaler fields set on a model without a scaler");
  }
  for (std::size_t t = 0; t < spec.trees.size(); ++t)
    validate_tree(spec.trees[t], t, spec.n_features);
  if (spec.baseline) {
    try {
      validate_baseline_params(*spec.baseline);
    } catch (const std::invalid_argument& e) {
      fail(e.what());
    }
    if (spec.baseline->n_channels != spec.n_features)
      fail("baseline stage: n_channels " + std::to_string(spec.baseline->n_channels) + " != n_features " +
           std::to_string(spec.n_features));
  }
  if (spec.context) {
    if (!spec.baseline) fail("context stage without a baseline stage (it needs its learning period and rules)");
    try {
      validate_context_params(*spec.context);
    } catch (const std::invalid_argument& e) {
      fail(e.what());
    }
    if (spec.context->n_channels != spec.n_features)
      fail("context stage: n_channels " + std::to_string(spec.context->n_channels) + " != n_features " +
           std::to_string(spec.n_features));
  }
}

std::vector<std::uint8_t> serialize_forest(const ForestSpec& spec) {
  validate_forest(spec);
  ByteWriter payload;
  payload.put(spec.n_features);
  payload.put(static_cast<std::uint32_t>(spec.trees.size()));
  payload.put(static_cast<std::uint8_t>(spec.has_scaler));
  payload.put(static_cast<std::uint8_t>(spec.with_mean));
  payload.put(static_cast<std::uint8_t>(spec.with_std));
  payload.put(static_cast<std::uint8_t>(0));
  payload.put(spec.offset);
  payload.put(spec.denominator);
  if (spec.has_scaler) {
    payload.put_array(spec.mean);
    payload.put_array(spec.scale);
  }
  for (const auto& name : spec.feature_names) payload.put_string(name);
  payload.put_string(spec.metadata_json);
  for (const auto& t : spec.trees) {
    payload.put(static_cast<std::uint32_t>(t.n_nodes()));
    payload.put_array(t.left);
    payload.put_array(t.right);
    payload.put_array(t.feature);
    payload.put_array(t.threshold);
    payload.put_array(t.missing_go_left);
    payload.put_array(t.value);
  }
  if (spec.baseline) put_baseline(payload, *spec.baseline);
  if (spec.context) put_context(payload, *spec.context);
  const auto& body = payload.bytes();

  ByteWriter file;
  for (const char c : kModelMagic) file.put(static_cast<std::uint8_t>(c));
  file.put(spec.baseline ? kModelVersionMajor : kModelVersionMajorForestOnly);
  file.put(spec.context ? context_minor(*spec.context) : kModelVersionMinor);
  file.put(static_cast<std::uint32_t>(kModelHeaderBytes));
  file.put(static_cast<std::uint64_t>(body.size()));
  // The checksum covers the header's first 24 bytes and the payload.
  const auto header_crc = crc32(file.bytes().data(), kChecksummedHeaderBytes);
  file.put(crc32(body.data(), body.size(), header_crc));
  file.put(static_cast<std::uint32_t>(0));
  auto& out = file.bytes();
  out.insert(out.end(), body.begin(), body.end());
  return out;
}

ForestSpec parse_forest(const std::uint8_t* data, std::size_t size) {
  if (size < kModelHeaderBytes)
    fail("model file truncated: " + std::to_string(size) + " bytes is shorter than the " +
         std::to_string(kModelHeaderBytes) + "-byte header");
  if (std::memcmp(data, kModelMagic, sizeof(kModelMagic)) != 0)
    fail("not a laserguard model file: bad magic (expected \"LGFOREST\")");
  ByteReader header(data + sizeof(kModelMagic), kModelHeaderBytes - sizeof(kModelMagic));
  const auto major = header.get<std::uint16_t>("version");
  const auto minor = header.get<std::uint16_t>("version");
  if (major != kModelVersionMajor && major != kModelVersionMajorForestOnly)
    fail("unsupported model format version " + std::to_string(major) + "." + std::to_string(minor) +
         " (this build reads " + std::to_string(kModelVersionMajorForestOnly) + ".x and " +
         std::to_string(kModelVersionMajor) + ".x)");
  const auto header_bytes = header.get<std::uint32_t>("header size");
  if (header_bytes != kModelHeaderBytes)
    fail("header size " + std::to_string(header_bytes) + " != " +
         std::to_string(kModelHeaderBytes));
  const auto payload_bytes = header.get<std::uint64_t>("payload size");
  const auto expected_crc = header.get<std::uint32_t>("checksum");
  if (header.get<std::uint32_t>("reserved") != 0) fail("reserved header field is not zero");
  if (payload_bytes != size - kModelHeaderBytes)
    fail("model file truncated or padded: header says " + std::to_string(payload_bytes) +
         " payload bytes, file has " + std::to_string(size - kModelHeaderBytes));
  const std::uint8_t* body = data + kModelHeaderBytes;
  const auto actual_crc = crc32(body, payload_bytes, crc32(data, kChecksummedHeaderBytes));
  if (actual_crc != expected_crc) {
    std::ostringstream msg;
    msg << "model file corrupt: CRC-32 0x" << std::hex << actual_crc << " != stored 0x"
        << expected_crc;
    fail(msg.str());
  }

  ByteReader in(body, payload_bytes);
  ForestSpec spec;
  spec.n_features = in.get<std::uint32_t>("n_features");
  const auto n_trees = in.get<std::uint32_t>("n_trees");
  if (spec.n_features == 0 || spec.n_features > kMaxModelFeatures)
    fail("n_features must be in [1, " + std::to_string(kMaxModelFeatures) + "], got " +
         std::to_string(spec.n_features));
  spec.has_scaler = in.get<std::uint8_t>("flags") != 0;
  spec.with_mean = in.get<std::uint8_t>("flags") != 0;
  spec.with_std = in.get<std::uint8_t>("flags") != 0;
  in.get<std::uint8_t>("flags");
  spec.offset = in.get<double>("offset");
  spec.denominator = in.get<double>("denominator");
  if (spec.has_scaler) {
    spec.mean = in.get_array<double>(spec.n_features, "scaler mean");
    spec.scale = in.get_array<double>(spec.n_features, "scaler scale");
  }
  spec.feature_names.reserve(spec.n_features);
  for (std::uint32_t j = 0; j < spec.n_features; ++j)
    spec.feature_names.push_back(in.get_string("feature name"));
  spec.metadata_json = in.get_string("metadata");
  // A lying tree count cannot make us allocate more than the file could hold.
  if (n_trees == 0 || n_trees > in.remaining() / 4)
    fail("tree count " + std::to_string(n_trees) + " impossible for " +
         std::to_string(in.remaining()) + " remaining bytes");
  spec.trees.resize(n_trees);
  for (auto& t : spec.trees) {
    const auto n = in.get<std::uint32_t>("node count");
    t.left = in.get_array<std::int32_t>(n, "left children");
    t.right = in.get_array<std::int32_t>(n, "right children");
    t.feature = in.get_array<std::int32_t>(n, "features");
    t.threshold = in.get_array<double>(n, "thresholds");
    t.missing_go_left = in.get_array<std::uint8_t>(n, "missing_go_left");
    t.value = in.get_array<double>(n, "leaf values");
  }
  if (major == kModelVersionMajor) spec.baseline = get_baseline(in);
  if (major == kModelVersionMajor && minor >= kModelVersionMinorContext) spec.context = get_context(in, minor);
  // Later minor versions may append fields; the versions this build writes must end exactly here.
  if ((minor == 0 || (major == kModelVersionMajor && minor <= kModelVersionMinorGainPrior)) && in.remaining() != 0)
    fail(std::to_string(in.remaining()) + " unexpected bytes after the " +
         (spec.context ? "context stage" : spec.baseline ? "baseline stage" : "last tree"));
  validate_forest(spec);
  return spec;
}

ForestSpec read_forest_file(const std::string& path) {
  const auto bytes = read_whole_file(path);
  try {
    return parse_forest(bytes.data(), bytes.size());
  } catch (const ModelFormatError& e) {
    throw ModelFormatError("'" + path + "': " + e.what());
  }
}

void write_forest_file(const ForestSpec& spec, const std::string& path) {
  const auto bytes = serialize_forest(spec);
  write_file_atomically(path, bytes.data(), bytes.size());
}

}  // namespace laserguard
