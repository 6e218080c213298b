#pragma once
// Live detection quality of the anomaly feedback against the simulator's own ground truth.
//
// A fault *event* is one fault acting on one unit (a PSU fault on a 16-unit supply is 16
// events). An event is observed once feedback arrives for any frame inside its active
// window; it is a true positive if any such frame flagged the unit, else a false negative.
// Time to first flag = simulation time of the first flagged frame minus the fault's onset.
// False positives are flags on unit-frames whose ground truth is healthy.
#include <array>
#include <cstdint>
#include <map>
#include <tuple>
#include <vector>

#include "laserguard/sim/fault_injection.hpp"

namespace laserguard {

struct FaultTypeStats {
  std::uint64_t events = 0;
  std::uint64_t true_positives = 0;
  std::uint64_t false_negatives = 0;
  std::uint64_t labelled_frames = 0;  // unit-frames with this ground truth that got feedback
  std::uint64_t flagged_frames = 0;   // ... of which the unit was flagged
  std::vector<double> time_to_first_flag_s;
};

struct DetectionStats {
  std::array<FaultTypeStats, kFaultTypeCount> by_type{};
  std::uint64_t healthy_frames = 0;
  std::uint64_t false_positives = 0;  // flagged healthy unit-frames
  std::uint64_t healthy_units_flagged = 0;  // distinct (lcc, unit) flagged while healthy
};

class DetectionTally {
 public:
  explicit DetectionTally(std::vector<FaultSpec> faults);

  // One frame that received feedback: its ground truth and the flagged units (0/1 each).
  void record(std::uint32_t lcc, double frame_time_s, const FaultLabel* labels, const std::uint8_t* flagged,
              std::uint32_t n_units);
  DetectionStats stats() const;

 private:
  struct Event {
    FaultType type;
    double first_flag_s;  // < 0 until flagged
  };
  std::vector<FaultSpec> faults_;
  std::map<std::tuple<std::uint32_t, std::uint32_t, std::int32_t>, Event> events_;
  std::map<std::pair<std::uint32_t, std::uint32_t>, bool> healthy_flagged_units_;
  std::array<std::uint64_t, kFaultTypeCount> labelled_{}, flagged_{};
  std::uint64_t healthy_frames_ = 0, false_positives_ = 0;
};

// Nearest-rank percentile (q in [0, 100]) of unsorted values; NaN when empty.
double percentile(std::vector<double> values, double q);

}  // namespace laserguard
