#include "laserguard/sim/dataset_generator.hpp"

#include <algorithm>
#include <stdexcept>

#include "laserguard/sim/lcc_simulator.hpp"
#include "laserguard/wire/telemetry_schema.hpp"

namespace laserguard {

std::size_t dataset_rows(const DatasetSpec& spec) noexcept {
  return static_cast<std::size_t>(spec.n_samples) * spec.n_lccs * spec.n_units;
}

std::vector<OperatingChange> generate_dataset(const DatasetSpec& spec, const DatasetColumns& out) {
  if (spec.n_lccs == 0) throw std::invalid_argument("n_lccs must be at least 1");
  std::vector<LccSimulator> sims;
  sims.reserve(spec.n_lccs);
  for (std::uint32_t i = 0; i < spec.n_lccs; ++i) {
    SimulatorConfig c;
    c.lcc_id = spec.first_lcc_id + i;
    c.n_units = spec.n_units;
    c.units_per_psu = spec.units_per_psu;
    c.sample_period_s = spec.sample_period_s;
    c.seed = spec.seed;
    c.params = spec.params;
    c.faults = spec.faults;
    c.profile = spec.profile;
    c.schedule = spec.schedule;
    sims.emplace_back(std::move(c));  // validates everything before the first row is written
  }
  std::vector<FaultLabel> labels(spec.n_units);
  std::vector<UnitContext> context(spec.n_units);
  std::size_t row = 0;
  for (std::uint64_t k = 0; k < spec.n_samples; ++k) {
    for (auto& sim : sims) {
      const double now = sim.time_s();
      sim.step(out.values + row * kChannelCount, labels.data(), context.data());
      for (std::uint32_t j = 0; j < spec.n_units; ++j, ++row) {
        out.time_s[row] = now;
        out.lcc[row] = sim.config().lcc_id;
        out.unit[row] = j;
        out.psu[row] = sim.psu_of(j);
        out.fault_type[row] = static_cast<std::uint8_t>(labels[j].type);
        out.severity[row] = labels[j].severity;
        out.setpoint_a[row] = context[j].setpoint_a;
        out.state[row] = static_cast<std::uint8_t>(context[j].state);
        out.op_event[row] = static_cast<std::uint8_t>(context[j].op_event);
      }
    }
  }
  std::vector<OperatingChange> applied;
  for (const auto& sim : sims) {
    if (sim.schedule_log_dropped() > 0)
      throw std::length_error("more than " + std::to_string(LccSimulator::kMaxScheduleLog) +
                              " operating changes on one LCC: split the run");
    applied.insert(applied.end(), sim.schedule_log().begin(), sim.schedule_log().end());
  }
  std::stable_sort(applied.begin(), applied.end(),
                   [](const OperatingChange& a, const OperatingChange& b) { return a.at_s < b.at_s; });
  return applied;
}

}  // namespace laserguard
