#include <doctest/doctest.h>

#include <array>
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
#include "laserguard/sim/operating_schedule.hpp"
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
  std::vector<std::uint8_t> type(rows), state(rows), event(rows);
  std::vector<float> severity(rows), setpoint(rows);
  const auto applied = generate_dataset(spec, {values.data(), time.data(), lcc.data(), unit.data(), psu.data(),
                                               type.data(), severity.data(), setpoint.data(), state.data(), event.data()});
  CHECK(applied.empty());
  CHECK(setpoint[7] == 8.0F);
  CHECK(state[7] == static_cast<std::uint8_t>(UnitState::kOn));
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

// ---- operating profiles, schedules and the warm-up physics ----

namespace {

struct Run {
  std::vector<float> values;
  std::vector<FaultLabel> labels;
  std::vector<UnitContext> context;
  std::vector<OperatingChange> log;
};

Run run_with_context(SimulatorConfig c, int samples) {
  LccSimulator sim(std::move(c));
  Run r;
  std::vector<float> v(sim.n_units() * kChannelCount);
  std::vector<FaultLabel> l(sim.n_units());
  std::vector<UnitContext> x(sim.n_units());
  for (int k = 0; k < samples; ++k) {
    sim.step(v.data(), l.data(), x.data());
    r.values.insert(r.values.end(), v.begin(), v.end());
    r.labels.insert(r.labels.end(), l.begin(), l.end());
    r.context.insert(r.context.end(), x.begin(), x.end());
  }
  r.log = sim.schedule_log();
  return r;
}

LaserParams noise_free() {
  LaserParams p;
  for (auto f : {&LaserParams::noise_drive_current_a, &LaserParams::noise_forward_voltage_v,
                  &LaserParams::noise_optical_power_w, &LaserParams::noise_monitor_pd_ma,
                  &LaserParams::noise_diode_temp_c, &LaserParams::noise_heatsink_temp_c,
                  &LaserParams::noise_tec_current_a, &LaserParams::noise_psu_voltage_v,
                  &LaserParams::noise_psu_current_a, &LaserParams::noise_psu_temp_c, &LaserParams::noise_psu_ripple_mv})
    p.*f = 0.0;
  p.driver_ripple_rejection = 0.0;
  return p;
}

std::uint64_t fnv1a(std::uint64_t h, const void* data, std::size_t n) {
  const auto* b = static_cast<const unsigned char*>(data);
  for (std::size_t i = 0; i < n; ++i) {
    h ^= b[i];
    h *= 0x100000001B3ULL;
  }
  return h;
}

}  // namespace

TEST_CASE("steady profile gives the samples of the simulator before profiles existed, bit for bit") {
  // Checksums of 400 samples x 12 units computed from the simulator at commit e6ca802
  // (before operating profiles), for three seeds and fault mixes.
  const char* mixes[] = {"none", "default", "all"};
  const std::uint64_t expected[] = {0x3aba5f1c94690ee0ULL, 0x7afbc246116fd340ULL, 0xa7086e9e3c7d8af4ULL};
  for (std::uint64_t seed = 0; seed < 3; ++seed) {
    SimulatorConfig c;
    c.lcc_id = 2;
    c.n_units = 12;
    c.units_per_psu = 4;
    c.sample_period_s = 0.5;
    c.seed = seed;
    c.faults = assemble_faults({}, mixes[seed], seed, 1, 2, 12, 4, 100.0);
    LccSimulator sim(c);
    std::vector<float> v(12 * kChannelCount);
    std::vector<FaultLabel> l(12);
    std::vector<UnitContext> x(12);
    std::uint64_t h = 0xCBF29CE484222325ULL;
    for (int k = 0; k < 400; ++k) {
      sim.step(v.data(), l.data(), x.data());
      h = fnv1a(h, v.data(), v.size() * sizeof(float));
      for (const auto& label : l) {
        h = fnv1a(h, &label.type, 1);
        h = fnv1a(h, &label.severity, 4);
      }
      for (const auto& ctx : x) {
        CHECK(ctx.state == UnitState::kOn);
        CHECK(ctx.op_event == OpEvent::kNone);
        CHECK(ctx.setpoint_a == static_cast<float>(c.params.nominal_drive_current_a));
      }
    }
    CHECK_MESSAGE(h == expected[seed], "seed ", seed, " mix ", mixes[seed]);
    CHECK(sim.schedule_log().empty());
  }
}

TEST_CASE("lab profile: reproducible, setpoints inside the range, steps of 5-40 % of nominal, all healthy") {
  auto c = small_config(3);
  c.n_units = 6;
  c.profile = operating_profile("lab");
  const int samples = 4 * 3600;
  const Run a = run_with_context(c, samples), b = run_with_context(c, samples);
  REQUIRE(a.values.size() == b.values.size());
  CHECK(std::memcmp(a.values.data(), b.values.data(), a.values.size() * sizeof(float)) == 0);
  REQUIRE(a.log.size() == b.log.size());
  const double nominal = c.params.nominal_drive_current_a;
  const double lo = c.profile.setpoint_min_fraction * nominal, hi = c.profile.setpoint_max_fraction * nominal;
  std::array<int, kOpEventCount> counts{};
  std::vector<double> last_target(c.n_units, nominal);
  for (const auto& change : a.log) {
    ++counts[static_cast<std::size_t>(change.type)];
    if (change.type == OpEvent::kSetpointStep || change.type == OpEvent::kSetpointRamp) {
      CHECK(change.setpoint_a >= lo);
      CHECK(change.setpoint_a <= hi);
      const double step = std::fabs(change.setpoint_a - last_target[change.unit]);
      CHECK(step >= 0.05 * nominal - 0.0051);
      CHECK(step <= 0.40 * nominal + 0.0051);
      last_target[change.unit] = change.setpoint_a;
    }
  }
  // Several changes per unit-hour of each kind the profile draws.
  CHECK(counts[static_cast<std::size_t>(OpEvent::kSetpointStep)] > 0);
  CHECK(counts[static_cast<std::size_t>(OpEvent::kSetpointRamp)] > 0);
  CHECK(counts[static_cast<std::size_t>(OpEvent::kPowerOff)] > 0);
  CHECK(counts[static_cast<std::size_t>(OpEvent::kPowerOn)] > 0);
  CHECK(counts[static_cast<std::size_t>(OpEvent::kAmbientStep)] > 0);
  const double per_unit_hour = static_cast<double>(a.log.size()) / (c.n_units * 4.0);
  CHECK(per_unit_hour > 3.0);
  std::size_t events = 0;
  for (std::size_t i = 0; i < a.context.size(); ++i) {
    const UnitContext& x = a.context[i];
    CHECK(a.labels[i].type == FaultType::kNone);
    if (x.op_event != OpEvent::kNone) ++events;
    if (x.state == UnitState::kOff) {
      CHECK(x.setpoint_a == 0.0F);
      CHECK(std::fabs(a.values[i * kChannelCount + kOpticalPowerW]) < 0.1F);
    } else {
      CHECK(x.setpoint_a >= static_cast<float>(lo) - 1e-4F);
      CHECK(x.setpoint_a <= static_cast<float>(hi) + 1e-4F);
    }
  }
  // Each logged change marks its unit's sample (an ambient step marks every unit).
  CHECK(events >= a.log.size());
}

TEST_CASE("a unit's schedule does not change when other units, faults or the sample rate change") {
  auto c = small_config(9);
  c.profile = operating_profile("lab");
  const Run base = run_with_context(c, 7200);
  auto d = c;
  d.n_units = 8;
  d.faults = parse_fault_spec(R"([{"lcc": 1, "unit": 5, "type": "degradation", "start_s": 10}])");
  const Run more = run_with_context(d, 7200);
  auto e = c;
  e.sample_period_s = 0.5;
  const Run fast = run_with_context(e, 14400);
  const auto unit_changes = [](const Run& r, std::uint32_t unit) {
    std::vector<std::pair<OpEvent, double>> out;
    for (const auto& ch : r.log)
      if (ch.unit == unit && ch.type != OpEvent::kAmbientStep) out.emplace_back(ch.type, ch.setpoint_a);
    return out;
  };
  for (std::uint32_t u = 0; u < 4; ++u) {
    const auto a = unit_changes(base, u);
    CHECK(!a.empty());
    CHECK(unit_changes(more, u).size() == a.size());
    const auto f = unit_changes(fast, u);
    REQUIRE(f.size() == a.size());
    for (std::size_t i = 0; i < a.size(); ++i) {
      CHECK(f[i].first == a[i].first);
      CHECK((std::isnan(a[i].second) ? std::isnan(f[i].second) : f[i].second == a[i].second));
    }
  }
}

TEST_CASE("the recorded schedule, fed back as a schedule file, reproduces the run") {
  auto c = small_config(4);
  c.profile = operating_profile("lab");
  const Run a = run_with_context(c, 3 * 3600);
  REQUIRE(a.log.size() > 10);
  auto d = small_config(4);
  d.profile = OperatingProfile{};  // steady, plus the lab's daily air cycle
  d.profile.ambient_daily_amplitude_c = c.profile.ambient_daily_amplitude_c;
  d.schedule = parse_schedule(schedule_to_json(a.log));
  check_schedule(d.schedule, d.profile, d.params, 1, 1, d.n_units);
  const Run b = run_with_context(d, 3 * 3600);
  CHECK(std::memcmp(a.values.data(), b.values.data(), a.values.size() * sizeof(float)) == 0);
  REQUIRE(b.log.size() == a.log.size());
  for (std::size_t i = 0; i < a.log.size(); ++i) CHECK(b.log[i].at_s == a.log[i].at_s);
}

TEST_CASE("a unit switched on warms up with the heatsink's time constant, switched off it relaxes to the air") {
  SimulatorConfig c = small_config(2);
  c.n_units = 1;
  c.params = noise_free();
  c.params.heatsink_time_constant_s = 60.0;
  c.schedule = parse_schedule(R"({"changes": [{"lcc": 1, "unit": 0, "type": "power_off", "at_s": 100},
                                              {"lcc": 1, "unit": 0, "type": "power_on", "at_s": 1300}]})");
  const Run r = run_with_context(c, 2000);
  const double tau = 60.0, air = c.params.ambient_c, set = c.params.heatsink_setpoint_c;
  const auto hs = [&](int k) { return static_cast<double>(r.values[k * kChannelCount + kHeatsinkTempC]); };
  CHECK(r.context[99].state == UnitState::kOn);
  CHECK(r.context[100].state == UnitState::kOff);
  CHECK(r.context[100].op_event == OpEvent::kPowerOff);
  // Off: the heatsink relaxes from the setpoint to the rack air, exp(-t/tau).
  for (int n = 1; n < 1200; n += 37) {
    const double expected = air + (set - air) * std::exp(-n / tau);
    CHECK(hs(100 + n) == doctest::Approx(expected).epsilon(1e-6));
    CHECK(r.values[(100 + n) * kChannelCount + kDiodeTempC] == r.values[(100 + n) * kChannelCount + kHeatsinkTempC]);
    CHECK(r.values[(100 + n) * kChannelCount + kOpticalPowerW] == 0.0F);
    CHECK(r.values[(100 + n) * kChannelCount + kTecCurrentA] == 0.0F);
  }
  // On: the TEC pulls it back to the setpoint, exp(-t/tau) from where it was at power-on.
  const double start = hs(1300);
  CHECK(r.context[1300].op_event == OpEvent::kPowerOn);
  CHECK(r.context[1300].state == UnitState::kWarming);
  CHECK(r.values[1300 * kChannelCount + kOpticalPowerW] > 5.0F);  // the laser is on while warming
  for (int n = 0; n < 700; n += 13) {
    const double expected = set + (start - set) * std::exp(-n / tau);
    CHECK(hs(1300 + n) == doctest::Approx(expected).epsilon(1e-6));
  }
  // Warming ends at the first sample within warm_band_k of the setpoint: n >= tau ln(dT0/band).
  const int first_on = static_cast<int>(std::ceil(tau * std::log((start - set) / c.profile.warm_band_k)));
  CHECK(r.context[1300 + first_on - 1].state == UnitState::kWarming);
  CHECK(r.context[1300 + first_on].state == UnitState::kOn);
  // Warm, the unit is back where it was before the power cycle.
  for (std::size_t ch = 0; ch < kChannelCount; ++ch)
    CHECK(r.values[1999 * kChannelCount + ch] == doctest::Approx(r.values[99 * kChannelCount + ch]).epsilon(1e-3));
}

TEST_CASE("rack air: a warmer rack loads the TEC and heats the PSU, not the held heatsink") {
  SimulatorConfig c = small_config(2);
  c.params = noise_free();
  c.schedule = parse_schedule(R"([{"lcc": 1, "type": "ambient_step", "at_s": 50, "ambient_offset_c": 2.0}])");
  const Run r = run_with_context(c, 400);
  const auto at = [&](int k, std::size_t ch) { return static_cast<double>(r.values[k * kChannelCount + ch]); };
  for (std::uint32_t u = 0; u < c.n_units; ++u) CHECK(r.context[50 * c.n_units + u].op_event == OpEvent::kAmbientStep);
  // 2 K more air leaks 2 K / heatsink_to_ambient_k_per_w more heat in, which the TEC pumps.
  CHECK(at(60 * 4, kTecCurrentA) - at(40 * 4, kTecCurrentA) ==
        doctest::Approx(c.params.tec_a_per_w * 2.0 / c.params.heatsink_to_ambient_k_per_w).epsilon(1e-3));
  CHECK(at(60 * 4, kHeatsinkTempC) == at(40 * 4, kHeatsinkTempC));
  CHECK(at(399 * 4, kPsuTempC) - at(40 * 4, kPsuTempC) == doctest::Approx(2.0).epsilon(1e-2));
}

TEST_CASE("faults keep their physics at a new setpoint: a degraded unit stays degraded") {
  SimulatorConfig healthy = small_config(5);
  healthy.params = noise_free();
  healthy.schedule = parse_schedule(R"([{"lcc": 1, "unit": 1, "type": "setpoint_step", "at_s": 100, "setpoint_a": 6.0}])");
  SimulatorConfig faulty = healthy;
  faulty.faults = parse_fault_spec(R"([{"lcc": 1, "unit": 1, "type": "degradation", "start_s": 20, "severity": 1},
                                       {"lcc": 1, "unit": 1, "type": "facet_damage", "start_s": 20, "severity": 0.5}])");
  const Run h = run_with_context(healthy, 200), f = run_with_context(faulty, 200);
  const auto power = [](const Run& r, int k) { return static_cast<double>(r.values[(k * 4 + 1) * kChannelCount + kOpticalPowerW]); };
  const double before = power(f, 90) / power(h, 90), after = power(f, 190) / power(h, 190);
  CHECK(before < 0.4);   // 60 % facet loss on top of degradation
  CHECK(after < 0.4);
  CHECK(f.labels[190 * 4 + 1].type == FaultType::kFacetDamage);
  CHECK(h.context[190 * 4 + 1].setpoint_a == 6.0F);
  CHECK(f.context[190 * 4 + 1].setpoint_a == 6.0F);
}

TEST_CASE("derating acts through the setpoint and sticks through later setpoint changes") {
  SimulatorConfig c = small_config(6);
  c.params = noise_free();
  c.schedule = parse_schedule(R"([{"lcc": 1, "unit": 2, "type": "setpoint_step", "at_s": 20, "setpoint_a": 7.0}])");
  LccSimulator sim(c);
  std::vector<float> v(4 * kChannelCount);
  std::vector<FaultLabel> l(4);
  std::vector<UnitContext> x(4);
  for (int k = 0; k < 10; ++k) sim.step(v.data(), l.data(), x.data());
  CHECK(sim.derate(2, 0.8, 4.0));
  CHECK(sim.drive_current(2) == doctest::Approx(6.4));
  sim.step(v.data(), l.data(), x.data());
  CHECK(x[2].state == UnitState::kDerated);
  CHECK(x[2].op_event == OpEvent::kDerate);
  CHECK(x[2].setpoint_a == doctest::Approx(6.4F));
  CHECK(v[2 * kChannelCount + kDriveCurrentA] == doctest::Approx(6.4F));
  CHECK(x[1].state == UnitState::kOn);
  for (int k = 11; k < 25; ++k) sim.step(v.data(), l.data(), x.data());
  CHECK(x[2].state == UnitState::kDerated);
  CHECK(x[2].setpoint_a == doctest::Approx(7.0F * 0.8F));
  CHECK(!sim.derate(2, 0.1, 7.0));  // at or below the floor: nothing changes
  CHECK(sim.derate(2, 0.1, 4.0));   // never below the floor
  sim.step(v.data(), l.data(), x.data());
  CHECK(x[2].setpoint_a == doctest::Approx(4.0F));
  REQUIRE(sim.schedule_log().size() == 3);
  CHECK(sim.schedule_log()[0].type == OpEvent::kDerate);
  CHECK(sim.schedule_log()[1].type == OpEvent::kSetpointStep);
}

TEST_CASE("schedule parser rejects bad entries naming the entry and the value") {
  CHECK_THROWS_WITH_AS(parse_schedule(R"([{"lcc": 1, "unit": 0, "type": "boost", "at_s": 1}])"),
                       doctest::Contains("change 0: unknown operating change type 'boost'"), ScheduleError);
  CHECK_THROWS_WITH_AS(parse_schedule(R"([{"lcc": 1, "unit": 0, "type": "power_on", "at_s": 1},
                                          {"lcc": 1, "unit": 0, "type": "power_off", "at_s": 2, "setpoint_a": 3}])"),
                       doctest::Contains("change 1 (power_off): unknown key 'setpoint_a'"), ScheduleError);
  CHECK_THROWS_WITH_AS(parse_schedule(R"([{"lcc": 1, "unit": 0, "type": "setpoint_ramp", "at_s": 1, "setpoint_a": 6}])"),
                       doctest::Contains("'ramp_s' (a number) is required"), ScheduleError);
  CHECK_THROWS_WITH_AS(parse_schedule(R"([{"lcc": 1, "unit": 0, "type": "setpoint_step", "at_s": -1, "setpoint_a": 6}])"),
                       doctest::Contains("at_s -1.0"), ScheduleError);
  CHECK_THROWS_WITH_AS(parse_schedule(R"([{"lcc": 1, "unit": 0, "type": "ambient_step", "at_s": 1, "ambient_offset_c": 1}])"),
                       doctest::Contains("unknown key 'unit'"), ScheduleError);
  CHECK_THROWS_WITH_AS(parse_schedule(R"([{"lcc": 1, "unit": 0, "type": "derate", "at_s": 1}])"),
                       doctest::Contains("derate loop"), ScheduleError);
  CHECK_THROWS_WITH_AS(parse_schedule(R"({"changes": [], "faults": []})"), doctest::Contains("exactly one key"),
                       ScheduleError);
  CHECK_THROWS_WITH_AS(parse_schedule("{oops"), doctest::Contains("not valid JSON"), ScheduleError);
  const auto ok = parse_schedule(R"([{"lcc": 1, "unit": 0, "type": "setpoint_step", "at_s": 1, "setpoint_a": 12}])");
  CHECK_THROWS_WITH_AS(check_schedule(ok, OperatingProfile{}, LaserParams{}, 1, 1, 4),
                       doctest::Contains("setpoint_a 12.0"), ScheduleError);
  CHECK_THROWS_WITH_AS(check_schedule(ok, OperatingProfile{}, LaserParams{}, 2, 1, 4),
                       doctest::Contains("lcc 1 is not one of"), ScheduleError);
  CHECK_THROWS_WITH_AS(operating_profile("factory"), doctest::Contains("unknown operating profile 'factory'"),
                       std::invalid_argument);
  LaserParams p;
  OperatingProfile prof;
  set_sim_param(p, prof, "ambient_c", 35.0);
  set_sim_param(p, prof, "setpoint_changes_per_hour", 2.0);
  CHECK(p.ambient_c == 35.0);
  CHECK(prof.setpoint_changes_per_hour == 2.0);
  CHECK_THROWS_WITH_AS(set_sim_param(p, prof, "warp", 1.0), doctest::Contains("unknown parameter 'warp'"),
                       std::invalid_argument);
  prof.setpoint_min_fraction = 1.2;
  CHECK_THROWS_WITH_AS(validate_operating_profile(prof), doctest::Contains("setpoint_min_fraction = 1.2"),
                       std::invalid_argument);
}
