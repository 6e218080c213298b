#include "laserguard/sim/detection_tally.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

namespace laserguard {

DetectionTally::DetectionTally(std::vector<FaultSpec> faults) : faults_(std::move(faults)) {}

void DetectionTally::record(std::uint32_t lcc, double frame_time_s, const FaultLabel* labels,
                            const std::uint8_t* flagged, std::uint32_t n_units) {
  for (std::uint32_t u = 0; u < n_units; ++u) {
    const FaultLabel& label = labels[u];
    const bool flag = flagged[u] != 0;
    if (label.type == FaultType::kNone || label.fault < 0) {
      ++healthy_frames_;
      if (flag) {
        ++false_positives_;
        healthy_flagged_units_[{lcc, u}] = true;
      }
      continue;
    }
    const auto t = static_cast<std::size_t>(label.type);
    ++labelled_[t];
    auto it = events_.try_emplace({lcc, u, label.fault}, Event{label.type, -1.0}).first;
    if (flag) {
      ++flagged_[t];
      if (it->second.first_flag_s < 0.0) {
        const double onset = static_cast<std::size_t>(label.fault) < faults_.size()
                                 ? faults_[static_cast<std::size_t>(label.fault)].start_s
                                 : frame_time_s;
        it->second.first_flag_s = std::max(frame_time_s - onset, 0.0);
      }
    }
  }
}

DetectionStats DetectionTally::stats() const {
  DetectionStats s;
  for (const auto& [key, event] : events_) {
    FaultTypeStats& t = s.by_type[static_cast<std::size_t>(event.type)];
    ++t.events;
    if (event.first_flag_s >= 0.0) {
      ++t.true_positives;
      t.time_to_first_flag_s.push_back(event.first_flag_s);
    } else {
      ++t.false_negatives;
    }
  }
  for (std::size_t i = 0; i < kFaultTypeCount; ++i) {
    s.by_type[i].labelled_frames = labelled_[i];
    s.by_type[i].flagged_frames = flagged_[i];
  }
  s.healthy_frames = healthy_frames_;
  s.false_positives = false_positives_;
  s.healthy_units_flagged = healthy_flagged_units_.size();
  return s;
}

double percentile(std::vector<double> values, double q) {
  if (values.empty()) return std::numeric_limits<double>::quiet_NaN();
  std::sort(values.begin(), values.end());
  const double rank = std::ceil(std::clamp(q, 0.0, 100.0) / 100.0 * static_cast<double>(values.size()));
  const auto index = static_cast<std::size_t>(std::max(rank, 1.0)) - 1;
  return values[std::min(index, values.size() - 1)];
}

}  // namespace laserguard
