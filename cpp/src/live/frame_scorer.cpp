#include "laserguard/live/frame_scorer.hpp"

#include <cmath>
#include <numeric>
#include <stdexcept>
#include <utility>

#include "laserguard/wire/telemetry_codec.hpp"

namespace laserguard {

FrameScorer::FrameScorer(std::shared_ptr<const ForestModel> model, std::string model_version, std::size_t top_k,
                         PowerOfTwo power)
    : model_(std::move(model)), version_(std::move(model_version)), top_k_(top_k), power_(power) {
  if (!model_) throw std::invalid_argument("frame scorer: no model");
  // Forest-only models explain with at most n_features codes, as UnitScorer does.
  if (!model_->baseline() && top_k_ > model_->n_features()) top_k_ = model_->n_features();
}

UnitScorer& FrameScorer::add_lcc(std::uint32_t lcc_id, std::size_t n_units) {
  Lcc lcc;
  lcc.scorer = std::make_unique<UnitScorer>(model_, n_units, power_);
  auto& slot = lccs_[lcc_id] = std::move(lcc);
  return *slot.scorer;
}

UnitScorer* FrameScorer::scorer(std::uint32_t lcc_id) {
  const auto it = lccs_.find(lcc_id);
  return it == lccs_.end() ? nullptr : it->second.scorer.get();
}

std::vector<std::uint32_t> FrameScorer::lccs() const {
  std::vector<std::uint32_t> out;
  for (const auto& [id, _] : lccs_) out.push_back(id);
  return out;
}

FrameOutcome FrameScorer::score(const std::uint8_t* payload, std::size_t size, std::int64_t now_ns,
                                std::vector<std::uint8_t>& feedback, bool dry_run) {
  const TelemetryFrameView frame = decode_telemetry(payload, size);
  const TelemetryHeader& h = frame.header;
  FrameOutcome out;
  out.lcc_id = h.lcc_id;
  out.boot_id = h.boot_id;
  out.seq = h.seq;
  out.timestamp_ns = h.timestamp_ns;
  out.n_units = h.n_units;
  if (h.n_features != model_->n_features())
    throw std::invalid_argument("frame has " + std::to_string(h.n_features) + " channels, the model expects " +
                                std::to_string(model_->n_features()));
  const auto it = lccs_.find(h.lcc_id);
  if (it == lccs_.end() || it->second.scorer->n_units() != h.n_units) {
    out.needs_lcc = true;
    return out;
  }
  if (!dry_run) {
    score_into(it->second, frame, now_ns, feedback, out);
    return out;
  }
  // The whole frame on a copy of the LCC's scorer: every line a real frame touches (codec,
  // forest, baselines, explanations, encoder) comes back into the caches; nothing kept changes.
  Lcc dry;
  dry.scorer = std::make_unique<UnitScorer>(*it->second.scorer);
  score_into(dry, frame, now_ns, feedback, out);
  return out;
}

void FrameScorer::score_into(Lcc& lcc, const TelemetryFrameView& frame, std::int64_t now_ns,
                             std::vector<std::uint8_t>& feedback, FrameOutcome& out) {
  const TelemetryHeader& h = frame.header;
  const std::size_t n = h.n_units;
  values_.resize(frame.value_count());
  frame.copy_values(values_.data());
  for (const float v : values_) out.nonfinite += std::isinf(v) ? 1U : 0U;
  units_.resize(n);
  std::iota(units_.begin(), units_.end(), 0U);
  times_.assign(n, static_cast<double>(h.timestamp_ns) / 1e9);
  // Each unit's operating context from the frame: a v3 model's expected values follow it.
  setpoints_.resize(n);
  states_.resize(n);
  frame.copy_setpoints(setpoints_.data());
  frame.copy_states(states_.data());
  lcc.score.resize(n);
  lcc.fleet.resize(n);
  lcc.baseline.resize(n);
  lcc.flagged.resize(n);
  lcc.learning.resize(n);
  lcc.stage.resize(n);
  lcc.codes.resize(n * top_k_);
  lcc.weights.resize(n * top_k_);
  lcc.scorer->score(n, units_.data(), times_.data(), values_.data(), UnitContext{setpoints_.data(), states_.data()},
                    UnitScores{lcc.score.data(), lcc.flagged.data(), lcc.learning.data(), lcc.stage.data(),
                               lcc.fleet.data(), lcc.baseline.data(), lcc.codes.data(), lcc.weights.data(), top_k_});

  Feedback fb;
  fb.lcc_id = h.lcc_id;
  fb.boot_id = h.boot_id;  // echoed with seq: the answer names the LCC start it belongs to
  fb.seq = h.seq;
  fb.timestamp_ns = now_ns;  // the detector's send time (docs/protocol.md); seq links it to the frame
  fb.model_version = version_;
  fb.n_features = static_cast<std::uint16_t>(h.n_features);
  fb.n_units = h.n_units;
  fb.top_k = static_cast<std::uint16_t>(top_k_);
  fb.scores.resize(n);
  for (std::size_t u = 0; u < n; ++u) {
    fb.scores[u] = static_cast<float>(lcc.score[u]);
    out.learning += lcc.learning[u];
    if (!lcc.flagged[u]) continue;
    fb.anomalous_units.push_back(static_cast<std::uint32_t>(u));
    out.by_fleet += lcc.stage[u] == kStageFleet ? 1U : 0U;
    out.by_baseline += lcc.stage[u] == kStageBaseline ? 1U : 0U;
  }
  out.anomalous = static_cast<std::uint32_t>(fb.anomalous_units.size());
  fb.top_features = lcc.codes;
  fb.top_weights = lcc.weights;
  encode_feedback(fb, feedback);
}

const std::vector<double>& FrameScorer::last_scores(std::uint32_t lcc_id) const {
  const auto it = lccs_.find(lcc_id);
  if (it == lccs_.end()) throw std::invalid_argument("no LCC " + std::to_string(lcc_id) + " scored yet");
  return it->second.score;
}

const std::vector<double>& FrameScorer::last_baseline(std::uint32_t lcc_id) const {
  const auto it = lccs_.find(lcc_id);
  if (it == lccs_.end()) throw std::invalid_argument("no LCC " + std::to_string(lcc_id) + " scored yet");
  return it->second.baseline;
}

std::vector<std::uint32_t> FrameScorer::set_model(std::shared_ptr<const ForestModel> model, std::string model_version) {
  if (!model) throw std::invalid_argument("frame scorer: no model");
  std::vector<std::uint32_t> relearning;
  std::map<std::uint32_t, Lcc> next;
  model_ = std::move(model);
  version_ = std::move(model_version);
  for (auto& [id, old] : lccs_) {
    Lcc lcc;
    lcc.scorer = std::make_unique<UnitScorer>(model_, old.scorer->n_units(), power_);
    BaselineStage* before = old.scorer->stage();
    BaselineStage* after = lcc.scorer->stage();
    if (before != nullptr && after != nullptr) {
      try {
        const auto state = before->save_state();
        after->load_state(state.data(), state.size());
      } catch (const std::invalid_argument&) {
        relearning.push_back(id);
      }
    }
    next[id] = std::move(lcc);
  }
  lccs_ = std::move(next);
  return relearning;
}

}  // namespace laserguard
