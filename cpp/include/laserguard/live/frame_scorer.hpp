#pragma once
// The detector's per-frame work in one call: decode the telemetry frame, score every unit with
// both stages of detection engine v2 (features/unit_scorer.hpp), explain the flagged units and
// encode the feedback message. The caller (Python's control loop) keeps orchestration:
// registering LCCs with their saved baselines, saving, resets, metrics, model reload.
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "laserguard/features/unit_scorer.hpp"
#include "laserguard/model/forest_model.hpp"
#include "laserguard/wire/telemetry_codec.hpp"

namespace laserguard {

struct FrameOutcome {
  bool needs_lcc = false;  // no scorer for this LCC and unit count yet: register one, call again
  std::uint32_t lcc_id = 0;
  std::uint64_t boot_id = 0;
  std::uint64_t seq = 0;
  std::int64_t timestamp_ns = 0;
  std::uint32_t n_units = 0;
  std::uint32_t anomalous = 0;
  std::uint32_t by_fleet = 0;
  std::uint32_t by_baseline = 0;
  std::uint32_t learning = 0;
  std::uint32_t nonfinite = 0;  // +-inf readings (scored as missing)
};

class FrameScorer {
 public:
  FrameScorer(std::shared_ptr<const ForestModel> model, std::string model_version, std::size_t top_k,
              PowerOfTwo power = {});

  // A fresh scorer (units learning) for the LCC, replacing any it had.
  UnitScorer& add_lcc(std::uint32_t lcc_id, std::size_t n_units);
  UnitScorer* scorer(std::uint32_t lcc_id);
  std::vector<std::uint32_t> lccs() const;

  // Throws FrameError for a malformed payload. `feedback` is overwritten (reuse it). A dry run
  // scores on a copy of the LCC's state and keeps nothing: `detect` runs one just before a
  // frame is due, because an idle 100 ms evicts the model and the baselines from the caches
  // and the frame would cost about 4x (docs/benchmarks.md).
  FrameOutcome score(const std::uint8_t* payload, std::size_t size, std::int64_t now_ns,
                     std::vector<std::uint8_t>& feedback, bool dry_run = false);

  // The units' latest v2 scores, baseline decisions and learning flags of an LCC (for gauges).
  const std::vector<double>& last_scores(std::uint32_t lcc_id) const;
  const std::vector<double>& last_baseline(std::uint32_t lcc_id) const;

  // Hot reload: every LCC gets a scorer of the new model; baselines are carried over when the
  // new stage can read them (same channels and window), else the units learn again. Returns
  // the LCCs whose baselines could not be carried over.
  std::vector<std::uint32_t> set_model(std::shared_ptr<const ForestModel> model, std::string model_version);
  const std::string& model_version() const noexcept { return version_; }

 private:
  struct Lcc {
    std::unique_ptr<UnitScorer> scorer;
    std::vector<double> score, fleet, baseline;
    std::vector<std::uint8_t> flagged, learning;
    std::vector<std::int8_t> stage;
    std::vector<std::int16_t> codes;
    std::vector<float> weights;
  };
  void score_into(Lcc& lcc, const TelemetryFrameView& frame, std::int64_t now_ns, std::vector<std::uint8_t>& feedback,
                  FrameOutcome& out);
  std::shared_ptr<const ForestModel> model_;
  std::string version_;
  std::size_t top_k_;
  PowerOfTwo power_;
  std::map<std::uint32_t, Lcc> lccs_;
  std::vector<float> values_;
  std::vector<std::uint32_t> units_;
  std::vector<double> times_;
  std::vector<float> setpoints_;
  std::vector<std::uint8_t> states_;
};

}  // namespace laserguard
