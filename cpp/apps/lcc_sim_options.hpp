#pragma once
// lcc-sim's command line: every flag, its default and its validation.
#include <cstdint>
#include <string>

#include "laserguard/sim/laser_physics.hpp"
#include "laserguard/sim/operating_schedule.hpp"
#include "lcc_sim_log.hpp"
#include "lcc_sim_security.hpp"

namespace lcc_sim {

namespace lg = laserguard;

// When each LCC sends within the period. Real LCCs are not synchronised: by default each gets
// its own seeded offset; `aligned` sends every LCC's frame in the same instant (a burst).
enum class TickPhase { kRandom, kAligned };

struct Options {
  std::uint32_t lccs = 2;
  std::uint32_t units = 32;
  std::uint32_t units_per_psu = 16;
  std::uint32_t first_lcc_id = 1;
  double rate_hz = 10.0;
  TickPhase tick_phase = TickPhase::kRandom;  // --tick-phase
  double duration_s = 0.0;  // 0 = until SIGINT/SIGTERM
  std::uint64_t seed = 0;
  std::string faults_path;
  std::string fault_mix = "none";
  double fault_horizon_s = 600.0;
  std::string schedule_path;  // --schedule: scheduled operating changes
  lg::OperatingProfile profile;  // --profile (default steady), then --param overrides
  std::string telemetry_endpoint = "tcp://127.0.0.1:5556";
  std::string feedback_endpoint = "tcp://127.0.0.1:5555";
  std::string summary_json;
  int hwm = 1000;
  bool derate = false;
  double derate_factor = 0.8;
  double derate_floor = 0.5;  // never below this fraction of the nominal drive current
  double drain_s = 0.5;
  double wait_for_subscriber_s = 0.0;
  std::uint32_t wait_for_subscriptions = 1;
  lg::LaserParams params;  // --param overrides (physics or profile parameters)
  LogLevel log_level = LogLevel::kInfo;
  SecurityOptions security;  // --curve-keys, --allow-dir, --insecure
};

// Parses argv; prints help and exits 0 for --help, prints the error and exits 2 for a bad flag
// or value (naming it).
Options parse_args(int argc, char** argv);

}  // namespace lcc_sim
