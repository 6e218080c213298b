#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "laserguard/sim/dataset_generator.hpp"
#include "laserguard/sim/detection_tally.hpp"
#include "laserguard/sim/fault_injection.hpp"
#include "laserguard/sim/laser_physics.hpp"
#include "laserguard/sim/lcc_simulator.hpp"
#include "laserguard/sim/sample_reservoir.hpp"

using namespace laserguard;

namespace {

std::vector<float> run(SimulatorConfig c, int samples, std::vector<FaultLabel>* labels_out = nullptr) {
  LccSimulator sim(std::move(c));
  std::vector<float> all;
  std::vector<float> v(sim.n_units() * kChannelCount);
  std::vector<FaultLabel> labels(sim.n_units());
  for (int k = 0; k < samples; ++k) {
    sim.step(v.data(), labels.data());
    all.insert(all.end(), v.begin(), v.end());
    if (labels_out) labels_out->insert(labels_out->end(), labels.begin(), labels.end());
  }
  return all;
}

SimulatorConfig small_config(std::uint64_t seed) {
  SimulatorConfig c;
  c.lcc_id = 1;
  c.n_units = 4;
  c.units_per_psu = 2;
  c.sample_period_s = 1.0;
  c.seed = seed;
  return c;
}

}  // namespace

TEST_CASE("same seed gives bit-identical samples, another seed does not") {
  const auto a = run(small_config(5), 50), b = run(small_config(5), 50), c = run(small_config(6), 50);
  CHECK(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
  CHECK(std::memcmp(a.data(), c.data(), a.size() * sizeof(float)) != 0);
}

TEST_CASE("output power is zero below threshold and grows with current above it") {
  LaserParams p;
  p.thermal_resistance_k_per_w = 0.0;
  const auto u = nominal_unit_constants(p);
  CHECK(solve_operating_point(u, p, {}, 0.0, 0.49, 25.0).optical_power_w == 0.0);
  const double p2 = solve_operating_point(u, p, {}, 0.0, 2.0, 25.0).optical_power_w;
  const double p4 = solve_operating_point(u, p, {}, 0.0, 4.0, 25.0).optical_power_w;
  CHECK(p2 == doctest::Approx(p.slope_efficiency_w_per_a * 1.5));
  CHECK(p4 - p2 == doctest::Approx(2.0 * p.slope_efficiency_w_per_a));
  CHECK(solve_operating_point(u, p, {}, 0.0, 4.0, 50.0).optical_power_w < p4);
}

TEST_CASE("labels are exact: the fault's type from its start time on, its supply for PSU faults") {
  auto c = small_config(1);
  c.faults = parse_fault_spec(R"({"faults": [{"lcc": 1, "unit": 0, "type": "psu_sag", "start_s": 3, "severity": 0.4},
                                              {"lcc": 1, "unit": 3, "type": "facet_damage", "start_s": 5, "end_s": 8}]})");
  std::vector<FaultLabel> labels;
  run(c, 10, &labels);
  for (int k = 0; k < 10; ++k) {
    CHECK(labels[k * 4 + 0].type == (k >= 3 ? FaultType::kPsuSag : FaultType::kNone));
    CHECK(labels[k * 4 + 1].type == (k >= 3 ? FaultType::kPsuSag : FaultType::kNone));
    CHECK(labels[k * 4 + 2].type == FaultType::kNone);
    CHECK(labels[k * 4 + 3].type == (k >= 5 && k < 8 ? FaultType::kFacetDamage : FaultType::kNone));
  }
  CHECK(labels[4 * 4].fault == 0);
  CHECK(labels[6 * 4 + 3].fault == 1);
  CHECK(labels[6 * 4 + 3].severity == 1.0F);
}

TEST_CASE("fault spec parser rejects bad entries with the offending value") {
  CHECK_THROWS_WITH_AS(parse_fault_spec("[{\"lcc\": 0, \"unit\": 0, \"type\": \"boom\"}]"),
                       doctest::Contains("unknown fault type 'boom'"), FaultSpecError);
  CHECK_THROWS_WITH_AS(parse_fault_spec("[{\"lcc\": 0, \"unit\": 0, \"type\": \"psu_sag\", \"severity\": 0}]"),
                       doctest::Contains("severity 0.0"), FaultSpecError);
  CHECK_THROWS_WITH_AS(parse_fault_spec("[{\"lcc\": 0, \"unit\": -1, \"type\": \"psu_sag\"}]"),
                       doctest::Contains("'unit' must be a non-negative integer, got -1"), FaultSpecError);
  CHECK_THROWS_WITH_AS(parse_fault_spec("{not json"), doctest::Contains("not valid JSON"), FaultSpecError);
  CHECK_THROWS_AS(parse_fault_spec("[{\"lcc\": 0, \"unit\": 0, \"type\": \"facet_damage\", \"channel\": \"psu_temp_c\"}]"),
                  FaultSpecError);
  const auto ok = parse_fault_spec(fault_spec_to_json(parse_fault_spec(
      R"([{"lcc": 2, "unit": 5, "type": "sensor_stuck", "channel": "psu_temp_c", "start_s": 1.5, "ramp_s": 2}])")));
  REQUIRE(ok.size() == 1);
  CHECK(ok[0].lcc == 2);
  CHECK(ok[0].channel == kPsuTempC);
  CHECK(ok[0].effective_severity(2.5) == doctest::Approx(0.5));
}

TEST_CASE("simulator refuses faults outside its units and bad parameters") {
  auto c = small_config(1);
  c.faults = parse_fault_spec(R"([{"lcc": 1, "unit": 4, "type": "facet_damage"}])");
  CHECK_THROWS_WITH_AS(LccSimulator{c}, doctest::Contains("unit 4 is not below 4"), std::invalid_argument);
  auto d = small_config(1);
  d.params.psu_efficiency = 0.0;
  CHECK_THROWS_WITH_AS(LccSimulator{d}, doctest::Contains("psu_efficiency"), std::invalid_argument);
}

TEST_CASE("fault mixes are deterministic and 'all' has every type") {
  const auto a = fault_mix("all", 3, 2, 32, 16, 100.0), b = fault_mix("all", 3, 2, 32, 16, 100.0);
  REQUIRE(a.size() == kFaultTypeCount - 1);
  for (std::size_t i = 0; i < a.size(); ++i) {
    CHECK(a[i].type == static_cast<FaultType>(i + 1));
    CHECK(a[i].start_s == b[i].start_s);
    CHECK(a[i].start_s >= 20.0);
    CHECK(a[i].start_s <= 60.0);
  }
  CHECK(fault_mix("none", 3, 2, 32, 16, 100.0).empty());
  CHECK_THROWS_AS(fault_mix("chaos", 3, 2, 32, 16, 100.0), FaultSpecError);
}

TEST_CASE("detection tally counts events, misses, false positives and time to first flag") {
  std::vector<FaultSpec> faults(1);
  faults[0].type = FaultType::kCoolingLoss;
  faults[0].start_s = 2.0;
  DetectionTally tally(faults);
  FaultLabel labels[2] = {{FaultType::kCoolingLoss, 1.0F, 0}, {}};
  const std::uint8_t none[2] = {0, 0}, first[2] = {1, 0}, second[2] = {0, 1};
  tally.record(1, 2.0, labels, none, 2);
  tally.record(1, 2.5, labels, first, 2);
  tally.record(1, 3.0, labels, second, 2);
  const auto s = tally.stats();
  const auto& c = s.by_type[static_cast<std::size_t>(FaultType::kCoolingLoss)];
  CHECK(c.events == 1);
  CHECK(c.true_positives == 1);
  CHECK(c.labelled_frames == 3);
  CHECK(c.flagged_frames == 1);
  REQUIRE(c.time_to_first_flag_s.size() == 1);
  CHECK(c.time_to_first_flag_s[0] == doctest::Approx(0.5));
  CHECK(s.healthy_frames == 3);
  CHECK(s.false_positives == 1);
  CHECK(s.healthy_units_flagged == 1);
}

TEST_CASE("percentile is nearest-rank and the reservoir keeps count and max exactly") {
  CHECK(percentile({5, 1, 4, 2, 3}, 50) == 3);
  CHECK(percentile({5, 1, 4, 2, 3}, 100) == 5);
  CHECK(percentile({5, 1, 4, 2, 3}, 0) == 1);
  CHECK(std::isnan(percentile({}, 50)));
  SampleReservoir r(10);
  for (int i = 0; i < 1000; ++i) r.add(i);
  CHECK(r.count() == 1000);
  CHECK(r.max() == 999);
  CHECK(r.sample().size() == 10);
  CHECK(r.mean() == doctest::Approx(499.5));
}

TEST_CASE("dataset rows are time-major, then LCC, then unit, and match the live simulator") {
  DatasetSpec spec;
  spec.n_lccs = 2;
  spec.first_lcc_id = 4;
  spec.n_units = 3;
  spec.units_per_psu = 2;
  spec.n_samples = 5;
  spec.seed = 8;
  const std::size_t rows = dataset_rows(spec);
  REQUIRE(rows == 30);
  std::vector<float> values(rows * kChannelCount);
  std::vector<double> time(rows);
  std::vector<std::uint32_t> lcc(rows), unit(rows), psu(rows);
  std::vector<std::uint8_t> type(rows);
  std::vector<float> severity(rows);
  generate_dataset(spec, {values.data(), time.data(), lcc.data(), unit.data(), psu.data(), type.data(), severity.data()});
  CHECK(lcc[0] == 4);
  CHECK(lcc[3] == 5);
  CHECK(unit[5] == 2);
  CHECK(psu[5] == 1);
  CHECK(time[29] == doctest::Approx(4.0));
  // LCC 5's rows equal a standalone simulator of LCC 5 with the same seed.
  SimulatorConfig c;
  c.lcc_id = 5;
  c.n_units = 3;
  c.units_per_psu = 2;
  c.seed = 8;
  c.sample_period_s = 1.0;
  const auto live = run(c, 5);
  for (std::size_t k = 0; k < 5; ++k)
    CHECK(std::memcmp(&values[(k * 6 + 3) * kChannelCount], &live[k * 3 * kChannelCount],
                      3 * kChannelCount * sizeof(float)) == 0);
}
