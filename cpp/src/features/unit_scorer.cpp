#include "laserguard/features/unit_scorer.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

namespace laserguard {
namespace {
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
}

UnitScorer::UnitScorer(std::shared_ptr<const ForestModel> model, std::size_t n_units, PowerOfTwo power)
    : model_(std::move(model)), n_units_(n_units), power_(power) {
  below_.assign(n_units, 0);
  if (!model_) throw std::invalid_argument("unit scorer: no model");
  if (n_units == 0) throw std::invalid_argument("unit scorer: n_units must be positive, got 0");
  if (model_->baseline()) {
    stage_.emplace(*model_->baseline(), n_units, model_->context());
    fleet_cut_ = model_->baseline()->fleet_cut;
    confirm_rows_ = model_->baseline()->confirm_rows;
  }
}

namespace {

// The fleet forest's decision for rows of T; +-inf is a sensor fault, scored as missing
// (StandardScaler would refuse it).
template <typename T>
void fleet_decision(const ForestModel& model, const T* values, std::size_t rows, const PowerOfTwo& power,
                    std::vector<float>& prepared, double* decision) {
  const std::size_t nf = model.n_features();
  prepared.resize(rows * nf);
  std::vector<T> finite_only;
  const T* forest_input = values;
  for (std::size_t i = 0; i < rows * nf; ++i) {
    if (std::isinf(values[i])) {
      finite_only.assign(values, values + rows * nf);
      for (auto& v : finite_only)
        if (std::isinf(v)) v = std::numeric_limits<T>::quiet_NaN();
      forest_input = finite_only.data();
      break;
    }
  }
  const MatrixView<T> view{forest_input, rows, nf, static_cast<std::ptrdiff_t>(nf), 1};
  model.prepare(view, prepared.data());
  model.decision_function(prepared.data(), rows, decision, power);
}

}  // namespace

template <typename T>
void UnitScorer::score(std::size_t rows, const std::uint32_t* unit, const double* time_s, const T* values,
                       const UnitScores& out) {
  score(rows, unit, time_s, values, UnitContext{}, out);
}

template <typename T>
void UnitScorer::score(std::size_t rows, const std::uint32_t* unit, const double* time_s, const T* values,
                       const UnitContext& context, const UnitScores& out) {
  const std::size_t nf = model_->n_features();
  const std::size_t k = out.top_k;
  for (std::size_t r = 0; r < rows * k; ++r) {
    out.top_code[r] = -1;
    out.top_weight[r] = 0.0f;
  }
  // The unit stage first: with a v3 model whose forest reads residuals, it computes them.
  const bool residual_forest = stage_ && stage_->context() != nullptr &&
                               stage_->context()->params().forest_input == ForestInput::kResidual;
  if (stage_) {
    stage_input_.resize(rows * nf);
    for (std::size_t i = 0; i < rows * nf; ++i) stage_input_[i] = static_cast<float>(values[i]);
    stage_codes_.resize(rows * k);
    stage_weights_.resize(rows * k);
    BaselineOutputs stage_out{out.baseline_decision, out.learning, stage_codes_.data(), stage_weights_.data(), k};
    if (residual_forest) {
      forest_input_.resize(rows * nf);
      stage_out.forest_input = forest_input_.data();
    }
    stage_->push(rows, unit, time_s, stage_input_.data(), context, stage_out);
  } else {
    std::fill_n(out.baseline_decision, rows, kNaN);
    std::fill_n(out.learning, rows, std::uint8_t{0});
  }
  if (residual_forest)
    fleet_decision(*model_, forest_input_.data(), rows, power_, prepared_, out.fleet_decision);
  else
    fleet_decision(*model_, values, rows, power_, prepared_, out.fleet_decision);

  std::vector<std::size_t> by_fleet;
  for (std::size_t r = 0; r < rows; ++r) {
    const double fleet = out.fleet_decision[r] - fleet_cut_;
    const double baseline = out.baseline_decision[r];
    const std::uint32_t u = unit != nullptr ? unit[r] : 0;
    if (out.learning[r]) {
      out.score[r] = std::max(fleet, 0.0);
      out.flagged[r] = 0;
      out.stage[r] = kStageNone;
      if (u < n_units_) below_[u] = 0;
      continue;
    }
    // fmin: a NaN baseline (forest-only model, or no judged channel) leaves the fleet's score.
    out.score[r] = std::fmin(fleet, baseline);
    bool below = out.score[r] < 0.0;
    if (u < n_units_) {
      below_[u] = below ? below_[u] + 1 : 0;
      if (below && below_[u] < confirm_rows_) {
        out.score[r] = 0.0;  // not confirmed yet: reads as "not flagged"
        below = false;
      }
    }
    out.flagged[r] = below;
    if (!out.flagged[r]) {
      out.stage[r] = kStageNone;
    } else if (baseline <= fleet) {
      out.stage[r] = kStageBaseline;
      for (std::size_t j = 0; j < k; ++j) {
        const std::int16_t code = stage_codes_[r * k + j];
        out.top_code[r * k + j] = code < 0 ? std::int16_t{-1} : static_cast<std::int16_t>(code + static_cast<std::int16_t>(nf));
        out.top_weight[r * k + j] = code < 0 ? 0.0f : stage_weights_[r * k + j];
      }
    } else {
      out.stage[r] = kStageFleet;
      by_fleet.push_back(r);
    }
  }
  // Fleet explanations (local DIFFI) only for the rows the fleet flagged: the walk costs more
  // than scoring. Ranked like numpy's stable argsort of -attribution (ties: lower feature first).
  const std::size_t kf = std::min(k, nf);
  if (!by_fleet.empty() && kf > 0) {
    std::vector<float> rows_in(by_fleet.size() * nf);
    for (std::size_t i = 0; i < by_fleet.size(); ++i)
      std::copy_n(prepared_.data() + by_fleet[i] * nf, nf, rows_in.data() + i * nf);
    attribution_.resize(by_fleet.size() * nf);
    model_->feature_attribution(rows_in.data(), by_fleet.size(), attribution_.data());
    std::vector<std::uint32_t> order(nf);
    for (std::size_t i = 0; i < by_fleet.size(); ++i) {
      const float* a = attribution_.data() + i * nf;
      for (std::uint32_t f = 0; f < nf; ++f) order[f] = f;
      std::stable_sort(order.begin(), order.end(), [a](std::uint32_t x, std::uint32_t y) { return -a[x] < -a[y]; });
      for (std::size_t j = 0; j < kf; ++j) {
        out.top_code[by_fleet[i] * k + j] = static_cast<std::int16_t>(order[j]);
        out.top_weight[by_fleet[i] * k + j] = a[order[j]];
      }
    }
  }
}

template void UnitScorer::score<float>(std::size_t, const std::uint32_t*, const double*, const float*, const UnitScores&);
template void UnitScorer::score<float>(std::size_t, const std::uint32_t*, const double*, const float*,
                                       const UnitContext&, const UnitScores&);
template void UnitScorer::score<double>(std::size_t, const std::uint32_t*, const double*, const double*,
                                        const UnitContext&, const UnitScores&);
template void UnitScorer::score<double>(std::size_t, const std::uint32_t*, const double*, const double*,
                                        const UnitScores&);

}  // namespace laserguard
