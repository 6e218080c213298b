#pragma once
// One score per unit sample from the two stages of detection engine v2, in one native call:
// the fleet forest (sklearn's exact decision_function) and the unit's own baseline
// (baseline_stage.hpp), with the explanation of every flagged row (docs/detection.md).
//
//   score = min(decision - fleet_cut, baseline decision), flagged once it has been < 0 for the
//   model's confirm_rows consecutive rows of the unit; until then a negative score reads 0 (so
//   "< 0 flagged" holds for every row). While a unit learns its baseline it is never flagged and
//   scores max(decision - fleet_cut, 0). A forest-only model (format 1.0) scores decision,
//   flagged below 0.
//
// The forest is exact when the caller passes numpy's own power loop (power_of_two.hpp).
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "laserguard/features/baseline_stage.hpp"
#include "laserguard/model/forest_model.hpp"

namespace laserguard {

inline constexpr std::int8_t kStageNone = 0;
inline constexpr std::int8_t kStageFleet = 1;
inline constexpr std::int8_t kStageBaseline = 2;

struct UnitScores {
  double* score;               // n rows
  std::uint8_t* flagged;       // n
  std::uint8_t* learning;      // n
  std::int8_t* stage;          // n: kStage* that flagged the row (the lower of the two scores)
  double* fleet_decision;      // n: the forest's exact decision_function
  double* baseline_decision;   // n: NaN while learning or for a forest-only model
  std::int16_t* top_code;      // n * top_k explanation codes of flagged rows, -1 otherwise
  float* top_weight;           // n * top_k
  std::size_t top_k;
};

class UnitScorer {
 public:
  // n_units baseline states when the model carries a baseline stage (format 2.0).
  UnitScorer(std::shared_ptr<const ForestModel> model, std::size_t n_units, PowerOfTwo power = {});

  const ForestModel& model() const noexcept { return *model_; }
  std::size_t n_units() const noexcept { return n_units_; }
  BaselineStage* stage() noexcept { return stage_ ? &*stage_ : nullptr; }
  double fleet_cut() const noexcept { return fleet_cut_; }

  // Rows in time order per unit; values row-major rows x n_features (float32 or float64, the
  // forest computes in the input's precision as sklearn does; +-inf is scored as missing).
  template <typename T>
  void score(std::size_t rows, const std::uint32_t* unit, const double* time_s, const T* values,
             const UnitScores& out);
  // The same with each row's operating context (setpoint, state), which a v3 model (format 2.1)
  // uses for the unit's expected values; a v2 or forest-only model ignores it.
  template <typename T>
  void score(std::size_t rows, const std::uint32_t* unit, const double* time_s, const T* values,
             const UnitContext& context, const UnitScores& out);

 private:
  std::shared_ptr<const ForestModel> model_;
  std::size_t n_units_;
  std::optional<BaselineStage> stage_;
  double fleet_cut_ = 0.0;
  std::uint32_t confirm_rows_ = 1;
  std::vector<std::uint32_t> below_;  // per unit: consecutive rows with a score below 0
  PowerOfTwo power_;
  // Scratch reused across calls: a scorer is used by one thread at a time.
  std::vector<float> prepared_, stage_input_, attribution_, forest_input_;
  std::vector<std::uint8_t> stage_learning_;
  std::vector<std::int16_t> stage_codes_;
  std::vector<float> stage_weights_;
};

extern template void UnitScorer::score<float>(std::size_t, const std::uint32_t*, const double*, const float*,
                                              const UnitScores&);
extern template void UnitScorer::score<double>(std::size_t, const std::uint32_t*, const double*, const double*,
                                               const UnitScores&);
extern template void UnitScorer::score<float>(std::size_t, const std::uint32_t*, const double*, const float*,
                                              const UnitContext&, const UnitScores&);
extern template void UnitScorer::score<double>(std::size_t, const std::uint32_t*, const double*, const double*,
                                               const UnitContext&, const UnitScores&);

}  // namespace laserguard
