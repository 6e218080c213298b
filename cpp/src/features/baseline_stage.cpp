#include "laserguard/features/baseline_stage.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <utility>

#include "laserguard/model/atomic_file.hpp"
#include "laserguard/model/crc32.hpp"

namespace laserguard {
namespace {

// Explanation code of (channel, kind), as feedback and `score` name it.
constexpr std::size_t code_of(std::size_t channel, DeviationKind kind) {
  return channel * kDeviationKinds + static_cast<std::size_t>(kind);
}

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
// Running window sums drift by rounding on every add/remove; rebuilding them from the ring
// this often keeps them exact to ~1e-12 relative while costing nothing measurable.
constexpr std::uint64_t kRecomputeEvery = 4096;

constexpr char kStateMagic[8] = {'L', 'G', 'B', 'A', 'S', 'E', 'S', 'T'};
// Version 1: v2 stages (no context stage), written exactly as before v3. Version 2: with a
// context stage, each unit's ContextUnit vectors follow its v2 fields. Version 3: as 2, with two
// more context scalars (when the unit was last flagged, and whether it was at its last change)
// and each context channel's jump statistic, its context channel count in the header; a
// version-2 state reads them as never flagged, no jumps seen.
constexpr std::uint32_t kStateVersion = 1;
constexpr std::uint32_t kStateVersionContextV2 = 2;
constexpr std::uint32_t kStateVersionContext = 3;
constexpr std::size_t kContextScalarsV2 = 5;
constexpr std::uint32_t kByteOrderMark = 0x01020304;

[[noreturn]] void fail(const std::string& message) { throw std::invalid_argument("baseline stage: " + message); }

class StateWriter {
 public:
  template <typename T>
  void put(T v) {
    const auto* p = reinterpret_cast<const std::uint8_t*>(&v);
    bytes.insert(bytes.end(), p, p + sizeof(T));
  }
  void put_doubles(const std::vector<double>& v) {
    for (double x : v) put(x);
  }
  std::vector<std::uint8_t> bytes;
};

class StateReader {
 public:
  StateReader(const std::uint8_t* data, std::size_t size) : data_(data), size_(size) {}
  template <typename T>
  T get(const char* what) {
    if (sizeof(T) > size_ - pos_)
      fail("state truncated reading " + std::string(what) + " at byte " + std::to_string(pos_));
    T v;
    std::memcpy(&v, data_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  void get_doubles(std::vector<double>& v, const char* what) {
    for (double& x : v) x = get<double>(what);
  }
  std::size_t remaining() const { return size_ - pos_; }

 private:
  const std::uint8_t* data_;
  std::size_t size_;
  std::size_t pos_ = 0;
};

}  // namespace

BaselineStage::BaselineStage(BaselineParams params, std::size_t n_units, std::optional<ContextParams> context)
    : params_(std::move(params)) {
  validate_baseline_params(params_);
  if (n_units == 0) fail("n_units must be positive, got 0");
  if (context) {
    if (context->n_channels != params_.n_channels)
      fail("context stage has " + std::to_string(context->n_channels) + " channels, the baseline stage " +
           std::to_string(params_.n_channels));
    context_.emplace(std::move(*context));
    context_->init_row(context_row_);
  }
  units_.resize(n_units);
  for (auto& u : units_) init_unit(u);
}

void BaselineStage::init_unit(UnitState& u) const {
  const std::size_t c = params_.n_channels;
  u = UnitState{};
  u.count.assign(c, 0.0);
  u.mean.assign(c, 0.0);
  u.m2.assign(c, 0.0);
  u.mu.assign(c, kNaN);
  u.sigma.assign(c, kNaN);
  u.ring.assign(static_cast<std::size_t>(params_.window) * c, kNaN);
  u.ref.assign(c, kNaN);
  u.sum1.assign(c, 0.0);
  u.sum2.assign(c, 0.0);
  u.finite.assign(c, 0);
  u.last.assign(c, kNaN);
  u.run.assign(c, 0);
  if (context_) context_->init_unit(u.ctx);
}

void BaselineStage::freeze(UnitState& u) const {
  for (std::size_t c = 0; c < params_.n_channels; ++c) {
    if (u.count[c] > 0.0) {
      u.mu[c] = u.mean[c];
      u.sigma[c] = std::max(std::sqrt(u.m2[c] / u.count[c]), params_.sigma_floor[c]);
    }  // a channel with no finite baseline reading keeps NaN and is not judged on level/spread
  }
  u.phase = UnitPhase::kReady;
  u.ready_time = u.last_time;
}

void BaselineStage::recompute_sums(UnitState& u) const {
  const std::size_t nc = params_.n_channels;
  std::fill(u.sum1.begin(), u.sum1.end(), 0.0);
  std::fill(u.sum2.begin(), u.sum2.end(), 0.0);
  std::fill(u.finite.begin(), u.finite.end(), 0U);
  for (std::size_t k = 0; k < u.filled; ++k)
    for (std::size_t c = 0; c < nc; ++c) {
      const double v = u.ring[k * nc + c];
      if (!std::isfinite(v)) continue;
      if (std::isnan(u.ref[c])) u.ref[c] = v;
      const double d = v - u.ref[c];
      u.sum1[c] += d;
      u.sum2[c] += d * d;
      ++u.finite[c];
    }
}

void BaselineStage::update_window(UnitState& u, const float* x) const {
  const std::size_t nc = params_.n_channels;
  double* slot = u.ring.data() + static_cast<std::size_t>(u.next) * nc;
  const bool full = u.filled == params_.window;
  for (std::size_t c = 0; c < nc; ++c) {
    const double old = slot[c];
    if (full && std::isfinite(old)) {
      const double d = old - u.ref[c];
      u.sum1[c] -= d;
      u.sum2[c] -= d * d;
      --u.finite[c];
    }
    const double v = static_cast<double>(x[c]);
    u.run[c] = !std::isfinite(v) ? 0 : (v == u.last[c] ? u.run[c] + 1 : 1);
    u.last[c] = std::isfinite(v) ? v : kNaN;
    if (std::isfinite(v)) {
      if (std::isnan(u.ref[c])) u.ref[c] = v;
      const double d = v - u.ref[c];
      u.sum1[c] += d;
      u.sum2[c] += d * d;
      ++u.finite[c];
      slot[c] = v;
    } else {
      slot[c] = kNaN;
    }
  }
  u.next = (u.next + 1) % params_.window;
  if (!full) ++u.filled;
  if (++u.pushes % kRecomputeEvery == 0) recompute_sums(u);
}

// |z| of a reading, NaN when the reading or the channel's baseline is not finite.
double BaselineStage::level_of(const UnitState& u, std::size_t c, float reading) {
  const double v = static_cast<double>(reading);
  if (!std::isfinite(v) || !std::isfinite(u.mu[c])) return kNaN;
  return std::fabs((v - u.mu[c]) / u.sigma[c]);
}

// |ln s|, s the window's sample std over sigma; NaN with fewer than 2 finite readings.
double BaselineStage::spread_of(const UnitState& u, std::size_t c) {
  const double n = u.finite[c];
  if (n < 2.0 || !std::isfinite(u.sigma[c])) return kNaN;
  const double var = std::max(0.0, (u.sum2[c] - u.sum1[c] * u.sum1[c] / n) / (n - 1.0));
  // |ln max(s, floor)| with s = sqrt(var) / sigma, as half the log of the variance ratio (no sqrt).
  const double ratio = var / (u.sigma[c] * u.sigma[c]);
  return 0.5 * std::fabs(std::log(std::max(ratio, kMinSpreadRatio * kMinSpreadRatio)));
}

void BaselineStage::score_row(UnitState& u, const float* x, double dt, std::size_t row,
                              const BaselineOutputs& out) {
  const BaselineParams& p = params_;
  const std::size_t nc = p.n_channels;
  const std::size_t k = out.top_k;
  std::int16_t* codes = out.top_code ? out.top_code + row * k : nullptr;
  float* weights = out.top_weight ? out.top_weight + row * k : nullptr;
  for (std::size_t i = 0; codes && i < k; ++i) {
    codes[i] = -1;
    weights[i] = 0.0f;
  }

  bool missing = false, stuck = false;
  for (std::size_t c = 0; c < nc; ++c) {
    missing = missing || u.finite[c] < u.filled;
    stuck = stuck || (p.stuck_run[c] > 0 && u.run[c] >= p.stuck_run[c]);
  }
  missing = missing && p.missing_flags;

  const std::size_t n_scored = p.scored.size();
  double* raw = out.raw_deviation ? out.raw_deviation + row * 2 * n_scored : nullptr;
  double deviation = 0.0;
  if (context_) {
    // v3: the context stage's D replaces the raw level and spread (already evaluated for this row).
    if (raw) std::fill_n(raw, 2 * n_scored, kNaN);
    if (out.context_raw) context_->raw_output(context_row_, u.ctx, out.context_raw + row * context_->raw_width());
    if (context_row_.deviation == context_row_.deviation) deviation = context_row_.deviation;
  }
  for (std::size_t j = 0; !context_ && j < n_scored; ++j) {
    const std::size_t c = p.scored[j];
    const double level = level_of(u, c, x[c]);
    const double spread = p.judge_spread[j] ? spread_of(u, c) : std::numeric_limits<double>::quiet_NaN();
    if (raw) {
      raw[j] = level;
      raw[n_scored + j] = spread;
    }
    if (level == level) deviation = std::max(deviation, level / p.level_scale[j]);
    if (spread == spread) deviation = std::max(deviation, spread / p.spread_scale[j]);
  }
  double decision = 1.0 - deviation / p.threshold;
  if (missing || stuck) decision = std::min(decision, -1.0);
  out.decision[row] = decision;
  out.learning[row] = 0;

  if (decision < 0.0 && codes) {
    // Top-k explanation over (channel, kind), in thresholds; computed only for flagged rows.
    auto offer = [&](std::size_t code, float weight) {
      if (!(weight > weights[k - 1]) && codes[k - 1] >= 0) return;
      std::size_t i = k - 1;
      while (i > 0 && (codes[i - 1] < 0 || weight > weights[i - 1])) {
        codes[i] = codes[i - 1];
        weights[i] = weights[i - 1];
        --i;
      }
      codes[i] = static_cast<std::int16_t>(code);
      weights[i] = weight;
    };
    for (std::size_t j = 0; k > 0 && context_ && j < context_->n_monitored(); ++j) {
      const std::size_t c = context_->params().monitored[j];
      const ContextRow& cr = context_row_;
      if (cr.level[j] == cr.level[j]) offer(code_of(c, DeviationKind::kResidual), static_cast<float>(cr.level[j] / p.threshold));
      if (cr.spread[j] > 0.0)
        offer(code_of(c, DeviationKind::kResidualSpread), static_cast<float>(cr.spread[j] / p.threshold));
      if (cr.relation[j] > 0.0)
        offer(code_of(c, DeviationKind::kRelationship), static_cast<float>(cr.relation[j] / p.threshold));
    }
    // A context channel moving faster than training allows: named by v2's kind for variability.
    for (std::size_t i = 0; k > 0 && context_ && i < context_->params().context.size(); ++i)
      if (context_row_.jump[i] > 0.0)
        offer(code_of(context_->params().context[i], DeviationKind::kSpread),
              static_cast<float>(context_row_.jump[i] / p.threshold));
    for (std::size_t j = 0; k > 0 && !context_ && j < n_scored; ++j) {
      const std::size_t c = p.scored[j];
      const double level = level_of(u, c, x[c]);
      const double spread = p.judge_spread[j] ? spread_of(u, c) : std::numeric_limits<double>::quiet_NaN();
      if (level == level) offer(code_of(c, DeviationKind::kLevel), static_cast<float>(level / p.level_scale[j] / p.threshold));
      if (spread == spread)
        offer(code_of(c, DeviationKind::kSpread), static_cast<float>(spread / p.spread_scale[j] / p.threshold));
    }
    for (std::size_t c = 0; k > 0 && missing && c < nc; ++c)
      if (u.finite[c] < u.filled)
        offer(code_of(c, DeviationKind::kMissing), 1.0f + static_cast<float>(u.filled - u.finite[c]) / static_cast<float>(u.filled));
    for (std::size_t c = 0; k > 0 && stuck && c < nc; ++c)
      if (p.stuck_run[c] > 0 && u.run[c] >= p.stuck_run[c])
        offer(code_of(c, DeviationKind::kStuck), static_cast<float>(u.run[c]) / static_cast<float>(p.stuck_run[c]));
  }

  // v3: only rows well inside the threshold teach the unit's calibration (a fault is not learned).
  // Just after an operating change, any unflagged row teaches (the new point shows the slope);
  // a flagged one never does, so a fault that was already there is not learned as slope.
  if (context_ && decision < 0.0) context_->flagged(u.ctx, u.last_time);
  if (context_ && !missing && !stuck &&
      (deviation <= context_->params().calib_max_deviation * p.threshold ||
       (context_row_.after_change && deviation <= p.threshold)))
    context_->learn(u.ctx, x, context_row_, dt);
  // Re-baseline: only a unit the stage does not flag moves its mean (ageing, not faults).
  if (!context_ && p.mean_tau_s > 0.0 && decision >= 0.0 && dt > 0.0) {
    const double alpha = -std::expm1(-dt / p.mean_tau_s);
    for (std::size_t c = 0; c < nc; ++c) {
      const double v = static_cast<double>(x[c]);
      if (std::isfinite(v) && std::isfinite(u.mu[c])) u.mu[c] += alpha * (v - u.mu[c]);
    }
  }
}

void BaselineStage::push(std::size_t n_rows, const std::uint32_t* unit, const double* time_s, const float* values,
                         const BaselineOutputs& out) {
  push(n_rows, unit, time_s, values, UnitContext{}, out);
}

void BaselineStage::push(std::size_t n_rows, const std::uint32_t* unit, const double* time_s, const float* values,
                         const UnitContext& context, const BaselineOutputs& out) {
  for (std::size_t i = 0; i < n_rows; ++i)
    if (unit[i] >= units_.size())
      fail("unit index " + std::to_string(unit[i]) + " at row " + std::to_string(i) + " outside [0, " +
           std::to_string(units_.size()) + ")");
  const std::size_t nc = params_.n_channels;
  for (std::size_t i = 0; i < n_rows; ++i) {
    UnitState& u = units_[unit[i]];
    const float* x = values + i * nc;
    const double t = time_s[i];
    if (u.phase == UnitPhase::kNew) {
      u.phase = UnitPhase::kLearning;
      u.first_time = u.last_time = t;
    }
    const double dt = t > u.last_time ? t - u.last_time : 0.0;
    u.last_time = std::max(u.last_time, t);
    update_window(u, x);
    if (u.phase == UnitPhase::kLearning) {
      const bool done = params_.baseline_samples > 0 ? u.learned >= params_.baseline_samples
                                                     : u.last_time - u.first_time >= params_.baseline_s;
      if (done) {
        freeze(u);
        if (context_) context_->anchor(u.ctx);
      }
    }
    if (context_) {
      const float setpoint = context.setpoint_a ? context.setpoint_a[i] : std::numeric_limits<float>::quiet_NaN();
      const std::uint8_t state = context.state ? context.state[i] : std::uint8_t{2};  // unknown: on
      context_->evaluate(u.ctx, x, setpoint, state, t, dt, context_row_);
      if (out.forest_input) context_->forest_input(x, context_row_, out.forest_input + i * nc);
    }
    if (u.phase == UnitPhase::kLearning) {
      for (std::size_t c = 0; c < nc; ++c) {
        const double v = static_cast<double>(x[c]);
        if (!std::isfinite(v)) continue;
        u.count[c] += 1.0;
        const double delta = v - u.mean[c];
        u.mean[c] += delta / u.count[c];
        u.m2[c] += delta * (v - u.mean[c]);
      }
      ++u.learned;
      if (context_) {
        context_->learn(u.ctx, x, context_row_, dt);  // a learning unit calibrates from every row
        if (out.context_raw) std::fill_n(out.context_raw + i * context_->raw_width(), context_->raw_width(), kNaN);
      }
      out.decision[i] = kNaN;
      out.learning[i] = 1;
      if (out.raw_deviation)
        std::fill_n(out.raw_deviation + i * 2 * params_.scored.size(), 2 * params_.scored.size(), kNaN);
      for (std::size_t j = 0; out.top_code && j < out.top_k; ++j) {
        out.top_code[i * out.top_k + j] = -1;
        out.top_weight[i * out.top_k + j] = 0.0f;
      }
      continue;
    }
    score_row(u, x, dt, i, out);
  }
}

UnitBaselineInfo BaselineStage::unit_info(std::size_t unit) const {
  if (unit >= units_.size())
    fail("unit index " + std::to_string(unit) + " outside [0, " + std::to_string(units_.size()) + ")");
  const UnitState& u = units_[unit];
  return {u.phase, u.learned, u.first_time, u.ready_time, u.last_time, u.mu, u.sigma};
}

void BaselineStage::reset_unit(std::size_t unit) {
  if (unit >= units_.size())
    fail("unit index " + std::to_string(unit) + " outside [0, " + std::to_string(units_.size()) + ")");
  init_unit(units_[unit]);
}

std::vector<std::uint8_t> BaselineStage::save_state() const {
  StateWriter w;
  for (const char ch : kStateMagic) w.put(static_cast<std::uint8_t>(ch));
  w.put(context_ ? kStateVersionContext : kStateVersion);
  w.put(kByteOrderMark);
  w.put(static_cast<std::uint32_t>(units_.size()));
  w.put(params_.n_channels);
  w.put(params_.window);
  if (context_) {
    // Context shape: a state is only usable by a stage with the same filters and channels.
    w.put(static_cast<std::uint32_t>(context_->params().filters.size()));
    w.put(static_cast<std::uint32_t>(context_->n_monitored()));
    w.put(static_cast<std::uint32_t>(context_->params().context.size()));
  }
  for (const UnitState& u : units_) {
    w.put(static_cast<std::uint32_t>(u.phase));
    w.put(u.first_time);
    w.put(u.ready_time);
    w.put(u.last_time);
    w.put(u.learned);
    w.put(u.pushes);
    w.put(u.next);
    w.put(u.filled);
    // The running window sums too: a restored stage continues bit for bit like one never stopped.
    for (const auto* v : {&u.count, &u.mean, &u.m2, &u.mu, &u.sigma, &u.ref, &u.last, &u.sum1, &u.sum2, &u.ring})
      w.put_doubles(*v);
    for (const std::uint32_t r : u.run) w.put(r);
    for (const std::uint32_t f : u.finite) w.put(f);
    if (context_)
      for (const auto* v : {&u.ctx.filter, &u.ctx.calib, &u.ctx.stats, &u.ctx.scalars, &u.ctx.jump}) w.put_doubles(*v);
  }
  w.put(crc32(w.bytes.data(), w.bytes.size()));
  return std::move(w.bytes);
}

namespace {

// Checks magic, CRC, version and byte order; leaves the reader after the shape fields.
StateReader open_state(const std::uint8_t* data, std::size_t size, BaselineStage::StateShape& shape) {
  if (size < sizeof(kStateMagic) + 4 || std::memcmp(data, kStateMagic, sizeof(kStateMagic)) != 0)
    fail("not a baseline state file (bad magic)");
  std::uint32_t stored_crc;
  std::memcpy(&stored_crc, data + size - 4, 4);
  if (crc32(data, size - 4) != stored_crc) fail("baseline state corrupt (CRC mismatch)");
  StateReader r(data + sizeof(kStateMagic), size - sizeof(kStateMagic) - 4);
  const auto version = r.get<std::uint32_t>("version");
  if (version != kStateVersion && version != kStateVersionContextV2 && version != kStateVersionContext)
    fail("baseline state version " + std::to_string(version) + " (this build reads " + std::to_string(kStateVersion) +
         " to " + std::to_string(kStateVersionContext) + ")");
  if (r.get<std::uint32_t>("byte order") != kByteOrderMark) fail("baseline state written with another byte order");
  shape.version = version;
  shape.n_units = r.get<std::uint32_t>("unit count");
  shape.n_channels = r.get<std::uint32_t>("channel count");
  shape.window = r.get<std::uint32_t>("window");
  if (version >= kStateVersionContextV2) {
    shape.n_filters = r.get<std::uint32_t>("context filter count");
    shape.n_monitored = r.get<std::uint32_t>("context monitored count");
    if (version >= kStateVersionContext) shape.n_context = r.get<std::uint32_t>("context channel count");
  }
  return r;
}

}  // namespace

BaselineStage::StateShape BaselineStage::state_shape(const std::uint8_t* data, std::size_t size) {
  StateShape shape{};
  open_state(data, size, shape);
  return shape;
}

void BaselineStage::load_state(const std::uint8_t* data, std::size_t size) {
  StateShape shape{};
  StateReader r = open_state(data, size, shape);
  const auto n_units = shape.n_units;
  const auto n_channels = shape.n_channels;
  const auto window = shape.window;
  if (n_units != units_.size() || n_channels != params_.n_channels || window != params_.window)
    fail("baseline state is for " + std::to_string(n_units) + " units x " + std::to_string(n_channels) +
         " channels, window " + std::to_string(window) + "; this stage has " + std::to_string(units_.size()) +
         " x " + std::to_string(params_.n_channels) + ", window " + std::to_string(params_.window));
  const bool has_context = shape.version >= kStateVersionContextV2;
  if (has_context != context_.has_value())
    fail(has_context ? "baseline state has a context stage (detection engine v3); this model has none"
                     : "baseline state version 1 has no context stage state; this model's v3 context stage cannot "
                       "use it (the units learn afresh)");
  const std::size_t n_context = context_ ? context_->params().context.size() : 0;
  if (context_ && (shape.n_filters != context_->params().filters.size() || shape.n_monitored != context_->n_monitored() ||
                   (shape.version >= kStateVersionContext && shape.n_context != n_context)))
    fail("context state is for " + std::to_string(shape.n_filters) + " filters x " + std::to_string(shape.n_monitored) +
         " monitored channels x " + std::to_string(shape.n_context) + " context channels; this stage has " +
         std::to_string(context_->params().filters.size()) + " x " + std::to_string(context_->n_monitored()) + " x " +
         std::to_string(n_context));
  std::vector<UnitState> loaded(units_.size());
  for (UnitState& u : loaded) {
    init_unit(u);
    const auto phase = r.get<std::uint32_t>("phase");
    if (phase > static_cast<std::uint32_t>(UnitPhase::kReady)) fail("unit phase " + std::to_string(phase) + " unknown");
    u.phase = static_cast<UnitPhase>(phase);
    u.first_time = r.get<double>("first time");
    u.ready_time = r.get<double>("ready time");
    u.last_time = r.get<double>("last time");
    u.learned = r.get<std::uint64_t>("rows learned");
    u.pushes = r.get<std::uint64_t>("pushes");
    u.next = r.get<std::uint32_t>("ring position");
    u.filled = r.get<std::uint32_t>("ring fill");
    if (u.next >= window || u.filled > window)
      fail("ring position " + std::to_string(u.next) + " / fill " + std::to_string(u.filled) + " outside window " +
           std::to_string(window));
    for (auto* v : {&u.count, &u.mean, &u.m2, &u.mu, &u.sigma, &u.ref, &u.last, &u.sum1, &u.sum2, &u.ring})
      r.get_doubles(*v, "unit arrays");
    for (std::uint32_t& run : u.run) run = r.get<std::uint32_t>("stuck runs");
    for (std::uint32_t& f : u.finite) {
      f = r.get<std::uint32_t>("finite counts");
      if (f > u.filled) fail("finite count " + std::to_string(f) + " exceeds the ring fill " + std::to_string(u.filled));
    }
    if (context_) {
      for (auto* v : {&u.ctx.filter, &u.ctx.calib, &u.ctx.stats}) r.get_doubles(*v, "context state");
      const std::size_t n_scalars = shape.version == kStateVersionContextV2 ? kContextScalarsV2 : u.ctx.scalars.size();
      for (std::size_t i = 0; i < n_scalars; ++i) u.ctx.scalars[i] = r.get<double>("context state");
      if (shape.version >= kStateVersionContext) r.get_doubles(u.ctx.jump, "context state");
    }
  }
  if (r.remaining() != 0) fail(std::to_string(r.remaining()) + " unexpected bytes at the end of the state");
  units_ = std::move(loaded);
}

void BaselineStage::save_state_file(const std::string& path) const {
  const auto bytes = save_state();
  write_file_atomically(path, bytes.data(), bytes.size());
}

void BaselineStage::load_state_file(const std::string& path) {
  const auto bytes = read_whole_file(path);
  try {
    load_state(bytes.data(), bytes.size());
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument("'" + path + "': " + e.what());
  }
}

}  // namespace laserguard
