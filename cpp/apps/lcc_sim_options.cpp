#include "lcc_sim_options.hpp"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <utility>
#include <vector>

#include "laserguard/wire/telemetry_codec.hpp"

namespace lcc_sim {
namespace {

const char* kUsage = R"(usage: lcc-sim [options]

Simulates laser control computers (LCCs) with laser units, publishes telemetry frames
(docs/protocol.md), receives anomaly feedback and reports latency and detection quality.

  --lccs N                 number of LCCs (default 2); ids are --first-lcc-id .. +N-1
  --units M                laser units per LCC (default 32)
  --units-per-psu K        units sharing one power supply (default 16)
  --first-lcc-id ID        id of the first LCC (default 1)
  --rate-hz R              frames per second per LCC (default 10)
  --tick-phase MODE        random: each LCC sends at its own offset into the period, drawn
                           from --seed and its id, like unsynchronised real LCCs; aligned:
                           every LCC in the same instant, one burst per period (default random)
  --duration-s S           run time in seconds; 0 runs until SIGINT/SIGTERM (default 0)
  --seed N                 random seed: same seed, same telemetry bit for bit (default 0)
  --faults SPEC.json       declarative fault spec (docs/simulator.md)
  --fault-mix NAME         random seeded fault mix: none, default, all (default none)
  --fault-horizon-s S      time span the fault mix is spread over when --duration-s is 0 (600)
  --profile NAME           operating profile: steady, lab, production (default steady;
                           docs/simulator.md): setpoint changes, power cycles, rack air
  --schedule FILE.json     scheduled operating changes for an exact scenario (docs/simulator.md)
  --telemetry-endpoint E   PUB bind endpoint (default tcp://127.0.0.1:5556)
  --feedback-endpoint E    SUB bind endpoint (default tcp://127.0.0.1:5555)
  --hwm N                  high-water mark of both sockets, in messages (default 1000)
  --derate-on-anomaly      lower a flagged unit's drive current (closes the hardware loop)
  --derate-factor F        multiply the drive current by F on each derating (default 0.8)
  --derate-floor F         never derate below F x the nominal drive current (default 0.5)
  --drain-s S              after the run, keep collecting feedback for S seconds (default 0.5)
  --wait-for-subscriber S  before starting, wait up to S seconds for a telemetry subscriber
                           so its first frames are not lost to the late-joiner gap (default 0)
  --subscriptions N        with --wait-for-subscriber: wait for N topic subscriptions, e.g. 2
                           for detect and store (default 1)
  --param NAME=VALUE       override a physics or operating-profile parameter (repeatable; names in
                           laser_physics.hpp and operating_schedule.hpp)
  --summary-json PATH      also write the JSON summary to PATH
  --curve-keys DIR         CurveZMQ on both sockets: DIR/lcc.key_secret is this LCC's key pair,
                           DIR/allow/{command,read}/*.key the clients allowed (only command
                           keys may send feedback); docs/protocol.md section 9
  --allow-dir DIR          allow-list directory (default DIR/allow of --curve-keys)
  --insecure               allow a non-loopback endpoint without --curve-keys (refused otherwise)
  --log-level LEVEL        debug, info, warning or error (default info)
  -h, --help               show this help
)";

[[noreturn]] void usage_error(const std::string& message) {
  std::fprintf(stderr, "lcc-sim: error: %s\n(see lcc-sim --help)\n", message.c_str());
  std::exit(2);
}

double parse_double(const std::string& flag, const std::string& text, double lo, double hi) {
  std::size_t used = 0;
  double v = 0.0;
  try {
    v = std::stod(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != text.size() || !std::isfinite(v)) usage_error(flag + " expects a number, got '" + text + "'");
  if (v < lo || v > hi)
    usage_error(flag + " " + text + " is outside [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
  return v;
}

std::uint64_t parse_uint(const std::string& flag, const std::string& text, std::uint64_t lo, std::uint64_t hi) {
  std::size_t used = 0;
  unsigned long long v = 0;
  try {
    if (!text.empty() && text[0] != '-') v = std::stoull(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != text.size()) usage_error(flag + " expects a non-negative integer, got '" + text + "'");
  if (v < lo || v > hi)
    usage_error(flag + " " + text + " is outside [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
  return v;
}

}  // namespace

Options parse_args(int argc, char** argv) {
  Options o;
  std::string profile_name = "steady";
  std::vector<std::pair<std::string, double>> overrides;  // applied on top of the profile, in order
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    const auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage_error(flag + " needs a value");
      return argv[++i];
    };
    if (flag == "-h" || flag == "--help") {
      std::fputs(kUsage, stdout);
      std::exit(0);
    } else if (flag == "--lccs") {
      o.lccs = static_cast<std::uint32_t>(parse_uint(flag, value(), 1, 1024));
    } else if (flag == "--units") {
      o.units = static_cast<std::uint32_t>(parse_uint(flag, value(), 1, lg::kMaxUnits));
    } else if (flag == "--units-per-psu") {
      o.units_per_psu = static_cast<std::uint32_t>(parse_uint(flag, value(), 1, lg::kMaxUnits));
    } else if (flag == "--first-lcc-id") {
      o.first_lcc_id = static_cast<std::uint32_t>(parse_uint(flag, value(), 0, 1U << 30));
    } else if (flag == "--rate-hz") {
      o.rate_hz = parse_double(flag, value(), 0.001, 1e6);
    } else if (flag == "--tick-phase") {
      const std::string mode = value();
      if (mode == "random") o.tick_phase = TickPhase::kRandom;
      else if (mode == "aligned") o.tick_phase = TickPhase::kAligned;
      else usage_error("--tick-phase expects random or aligned, got '" + mode + "'");
    } else if (flag == "--duration-s") {
      o.duration_s = parse_double(flag, value(), 0.0, 1e9);
    } else if (flag == "--seed") {
      o.seed = parse_uint(flag, value(), 0, UINT64_MAX);
    } else if (flag == "--faults") {
      o.faults_path = value();
    } else if (flag == "--fault-mix") {
      o.fault_mix = value();
    } else if (flag == "--fault-horizon-s") {
      o.fault_horizon_s = parse_double(flag, value(), 1e-3, 1e9);
    } else if (flag == "--profile") {
      profile_name = value();
    } else if (flag == "--schedule") {
      o.schedule_path = value();
    } else if (flag == "--telemetry-endpoint") {
      o.telemetry_endpoint = value();
    } else if (flag == "--feedback-endpoint") {
      o.feedback_endpoint = value();
    } else if (flag == "--hwm") {
      o.hwm = static_cast<int>(parse_uint(flag, value(), 0, 10'000'000));
    } else if (flag == "--derate-on-anomaly") {
      o.derate = true;
    } else if (flag == "--derate-factor") {
      o.derate_factor = parse_double(flag, value(), 0.0, 1.0);
    } else if (flag == "--derate-floor") {
      o.derate_floor = parse_double(flag, value(), 0.0, 1.0);
    } else if (flag == "--drain-s") {
      o.drain_s = parse_double(flag, value(), 0.0, 3600.0);
    } else if (flag == "--wait-for-subscriber") {
      o.wait_for_subscriber_s = parse_double(flag, value(), 0.0, 3600.0);
    } else if (flag == "--subscriptions") {
      o.wait_for_subscriptions = static_cast<std::uint32_t>(parse_uint(flag, value(), 1, 1000));
    } else if (flag == "--param") {
      const std::string assignment = value();
      const auto eq = assignment.find('=');
      if (eq == std::string::npos) usage_error("--param expects NAME=VALUE, got '" + assignment + "'");
      const std::string name = assignment.substr(0, eq);
      overrides.emplace_back(name, parse_double("--param " + name, assignment.substr(eq + 1), -1e12, 1e12));
    } else if (flag == "--curve-keys") {
      o.security.curve_keys = value();
    } else if (flag == "--allow-dir") {
      o.security.allow_dir = value();
    } else if (flag == "--insecure") {
      o.security.insecure = true;
    } else if (flag == "--summary-json") {
      o.summary_json = value();
    } else if (flag == "--log-level") {
      const std::string level = value();
      if (level == "debug") o.log_level = LogLevel::kDebug;
      else if (level == "info") o.log_level = LogLevel::kInfo;
      else if (level == "warning") o.log_level = LogLevel::kWarning;
      else if (level == "error") o.log_level = LogLevel::kError;
      else usage_error("--log-level expects debug, info, warning or error, got '" + level + "'");
    } else {
      usage_error("unknown option '" + flag + "'");
    }
  }
  try {
    o.profile = lg::operating_profile(profile_name);
    for (const auto& [name, v] : overrides) lg::set_sim_param(o.params, o.profile, name, v);
    lg::validate_operating_profile(o.profile);
  } catch (const std::invalid_argument& e) {
    usage_error(e.what());
  }
  return o;
}

}  // namespace lcc_sim
