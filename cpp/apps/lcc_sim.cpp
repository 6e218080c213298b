// lcc-sim: simulates N laser control computers x M laser units, publishes their telemetry
// over lcc_link, receives anomaly feedback, acts on it (logs, optional derating) and
// reports round-trip latency and detection quality against its own ground truth.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "laserguard/sim/detection_tally.hpp"
#include "laserguard/sim/fault_injection.hpp"
#include "laserguard/link/lcc_link.hpp"
#include "laserguard/link/link_guard.hpp"
#include "laserguard/sim/lcc_simulator.hpp"
#include "laserguard/sim/random_stream.hpp"
#include "laserguard/sim/sample_reservoir.hpp"
#include "laserguard/wire/telemetry_schema.hpp"
#include "lcc_sim_log.hpp"
#include "lcc_sim_options.hpp"
#include "lcc_sim_security.hpp"

namespace lg = laserguard;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

using lcc_sim::log;
using lcc_sim::LogLevel;
using lcc_sim::Options;

std::atomic<bool> g_stop{false};
extern "C" void on_signal(int /*signo*/) { g_stop.store(true); }

// What the LCC remembers about each sent frame, to match feedback to it.
struct SentFrame {
  std::uint64_t seq = UINT64_MAX;
  Clock::time_point sent_at{};
  bool delivered = false;  // accepted by the socket (not dropped at the HWM)
  bool answered = false;
};

constexpr std::size_t kHistoryFrames = 1 << 14;  // feedback older than this is "stale"
constexpr std::uint64_t kTickPhaseStream = 0x7469636b70686173ULL;  // "tickphas": the phase draws' own stream

// The LCCs that send at the same offset into the period (all of them when aligned).
struct SendSlot {
  Clock::duration offset{};
  std::vector<std::size_t> lccs;  // indices into sims_, in id order
};

class LccLoop {
 public:
  LccLoop(const Options& o, std::vector<lg::FaultSpec> faults, std::vector<lg::OperatingChange> schedule)
      : o_(o), faults_(faults), tally_(faults), period_(1.0 / o.rate_hz) {
    for (std::uint32_t i = 0; i < o.lccs; ++i) {
      lg::SimulatorConfig c;
      c.lcc_id = o.first_lcc_id + i;
      c.n_units = o.units;
      c.units_per_psu = o.units_per_psu;
      c.sample_period_s = period_;
      c.seed = o.seed;
      c.faults = faults;
      c.params = o.params;
      c.profile = o.profile;
      c.schedule = schedule;
      sims_.emplace_back(std::move(c));
      history_.emplace_back(kHistoryFrames);
      labels_.emplace_back(kHistoryFrames * o.units);
      last_log_.emplace_back(o.units, -1e300);
      last_derate_.emplace_back(o.units, -1e300);
    }
    values_.resize(static_cast<std::size_t>(o.units) * lg::kChannelCount);
    context_.resize(o.units);
    setpoints_.resize(o.units);
    states_.resize(o.units);
    flagged_.resize(o.units);
    plan_send_slots();
  }

  int run();

 private:
  // Each LCC's offset into the period, drawn from (seed, lcc id) so a run repeats; grouped by offset.
  void plan_send_slots();
  void tick(lg::TelemetryPublisher& pub, const std::vector<std::size_t>& lccs);
  void on_feedback(const lg::Feedback& fb, Clock::time_point now);
  json summary(const lg::TelemetryPublisher& pub, const lg::FeedbackSubscriber& sub, double elapsed_s) const;
  // The operating changes applied so far (every LCC, in time order), spec form.
  json schedule_json() const;
  std::uint64_t schedule_dropped() const;

  Options o_;
  std::vector<lg::FaultSpec> faults_;
  lg::DetectionTally tally_;
  double period_;
  std::vector<lg::LccSimulator> sims_;
  std::vector<double> phase_s_;     // per LCC: its send offset into the period, seconds
  std::vector<SendSlot> slots_;     // in offset order
  std::vector<std::vector<SentFrame>> history_;
  std::vector<std::vector<lg::FaultLabel>> labels_;
  std::vector<std::vector<double>> last_log_, last_derate_;
  std::vector<float> values_, setpoints_;  // setpoints_/states_: each unit's context on the wire (v3)
  std::vector<lg::UnitState> states_;
  std::vector<lg::UnitContext> context_;
  std::vector<std::uint8_t> flagged_;
  lg::SampleReservoir latencies_us_, tick_cost_us_, lag_us_;
  std::uint64_t ticks_ = 0, late_ticks_ = 0, stale_ = 0, duplicates_ = 0, unknown_lcc_ = 0, shape_mismatch_ = 0;
  std::uint64_t derated_ = 0, flags_ = 0, answered_ = 0, other_boot_ = 0;
  std::uint64_t boot_id_ = 0;  // this start's boot id (every frame carries it)
};

void LccLoop::plan_send_slots() {
  std::vector<Clock::duration> offset(sims_.size(), Clock::duration::zero());
  phase_s_.assign(sims_.size(), 0.0);
  for (std::size_t i = 0; i < sims_.size(); ++i) {
    if (o_.tick_phase == lcc_sim::TickPhase::kAligned) continue;
    // Its own stream, never one the physics draws from: the frame values do not change.
    lg::RandomStream draw(o_.seed, sims_[i].config().lcc_id, 0, kTickPhaseStream);
    offset[i] = std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(draw.uniform() * period_));
    phase_s_[i] = std::chrono::duration<double>(offset[i]).count();
  }
  std::vector<std::size_t> order(sims_.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return offset[a] < offset[b]; });
  for (const std::size_t i : order) {
    if (slots_.empty() || slots_.back().offset != offset[i]) slots_.push_back(SendSlot{offset[i], {}});
    slots_.back().lccs.push_back(i);
  }
}

void LccLoop::tick(lg::TelemetryPublisher& pub, const std::vector<std::size_t>& lccs) {
  const auto wall_ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  for (const std::size_t i : lccs) {
    lg::LccSimulator& sim = sims_[i];
    const std::uint64_t k = sim.samples_taken();
    lg::FaultLabel* labels = &labels_[i][(k % kHistoryFrames) * o_.units];
    sim.step(values_.data(), labels, context_.data());
    for (std::uint32_t u = 0; u < o_.units; ++u) {
      setpoints_[u] = context_[u].setpoint_a;
      states_[u] = context_[u].state;
    }
    const auto result = pub.publish(sim.config().lcc_id, static_cast<std::int64_t>(wall_ns), o_.units,
                                    static_cast<std::uint32_t>(lg::kChannelCount), values_.data(), setpoints_.data(),
                                    states_.data());
    SentFrame& sent = history_[i][result.seq % kHistoryFrames];
    sent = SentFrame{result.seq, Clock::now(), result.sent, false};
    if (!result.sent) log(LogLevel::kDebug, "lcc %u frame %llu dropped at the high-water mark", sim.config().lcc_id,
                          static_cast<unsigned long long>(result.seq));
  }
}

void LccLoop::on_feedback(const lg::Feedback& fb, Clock::time_point now) {
  if (fb.lcc_id < o_.first_lcc_id || fb.lcc_id - o_.first_lcc_id >= sims_.size()) {
    ++unknown_lcc_;
    log(LogLevel::kWarning, "feedback for unknown lcc %u ignored", fb.lcc_id);
    return;
  }
  const std::size_t i = fb.lcc_id - o_.first_lcc_id;
  if (fb.boot_id != boot_id_) {
    // An answer to a frame of an earlier start of this LCC (seq restarted at 0): never
    // mistaken for an answer to this boot's frame with the same seq.
    ++other_boot_;
    log(LogLevel::kDebug, "feedback for boot %016llx ignored (this boot is %016llx)",
        static_cast<unsigned long long>(fb.boot_id), static_cast<unsigned long long>(boot_id_));
    return;
  }
  if (fb.n_units != o_.units) {
    ++shape_mismatch_;
    log(LogLevel::kWarning, "feedback for lcc %u has %u units, this LCC has %u", fb.lcc_id, fb.n_units, o_.units);
    return;
  }
  SentFrame& sent = history_[i][fb.seq % kHistoryFrames];
  if (sent.seq != fb.seq) {
    ++stale_;
    return;
  }
  if (sent.answered) {
    ++duplicates_;
    return;
  }
  sent.answered = true;
  ++answered_;
  latencies_us_.add(std::chrono::duration<double, std::micro>(now - sent.sent_at).count());

  std::fill(flagged_.begin(), flagged_.end(), 0);
  for (const auto u : fb.anomalous_units) flagged_[u] = 1;
  const double frame_time = static_cast<double>(fb.seq) * period_;
  const lg::FaultLabel* labels = &labels_[i][(fb.seq % kHistoryFrames) * o_.units];
  tally_.record(fb.lcc_id, frame_time, labels, flagged_.data(), o_.units);

  lg::LccSimulator& sim = sims_[i];
  for (const auto u : fb.anomalous_units) {
    ++flags_;
    // One log line per unit per second at most: a flagged unit stays flagged every frame.
    if (frame_time - last_log_[i][u] >= 1.0) {
      last_log_[i][u] = frame_time;
      std::string top;
      for (std::size_t r = 0; r < fb.top_k; ++r) {
        const auto feature = fb.top_features[u * fb.top_k + r];
        if (feature < 0) continue;
        const char* name = static_cast<std::size_t>(feature) < lg::kChannelCount
                               ? lg::kChannelNames[static_cast<std::size_t>(feature)]
                               : "?";
        char item[96];
        std::snprintf(item, sizeof item, "%s%s=%.3f", top.empty() ? "" : ", ", name,
                      static_cast<double>(fb.top_weights[u * fb.top_k + r]));
        top += item;
      }
      log(LogLevel::kInfo, "lcc %u unit %u flagged at t=%.2fs (seq %llu, score %.4f, model %s, truth %s): %s",
          fb.lcc_id, u, frame_time, static_cast<unsigned long long>(fb.seq), static_cast<double>(fb.scores[u]),
          fb.model_version.c_str(), lg::fault_type_name(labels[u].type), top.empty() ? "no features" : top.c_str());
    }
    const double floor_a = o_.derate_floor * sim.config().params.nominal_drive_current_a;
    // Through the unit's setpoint: the next frames say `derated`, and later setpoint changes
    // keep the derating (UnitOperation::derate).
    const double before = sim.drive_current(u);
    if (o_.derate && frame_time - last_derate_[i][u] >= 1.0 && sim.derate(u, o_.derate_factor, floor_a)) {
      last_derate_[i][u] = frame_time;
      ++derated_;
      log(LogLevel::kInfo, "lcc %u unit %u derated: drive current %.3f A -> %.3f A", fb.lcc_id, u, before,
          sim.drive_current(u));
    }
  }
}

json stats_of(const std::vector<double>& v) {
  if (v.empty()) return json{{"count", 0}};
  return json{{"count", v.size()},
              {"p50", lg::percentile(v, 50)},
              {"p90", lg::percentile(v, 90)},
              {"p99", lg::percentile(v, 99)},
              {"max", *std::max_element(v.begin(), v.end())}};
}

json stats_of(const lg::SampleReservoir& r) {
  json j = stats_of(r.sample());
  if (r.count() == 0) return j;
  j["count"] = r.count();
  j["max"] = r.max();
  j["mean"] = r.mean();
  return j;
}

json LccLoop::summary(const lg::TelemetryPublisher& pub, const lg::FeedbackSubscriber& sub, double elapsed_s) const {
  const lg::DetectionStats d = tally_.stats();
  json per_type = json::object();
  for (std::size_t t = 1; t < lg::kFaultTypeCount; ++t) {
    const auto& s = d.by_type[t];
    if (s.events == 0 && s.labelled_frames == 0) continue;
    json ttf = stats_of(s.time_to_first_flag_s);
    if (!s.time_to_first_flag_s.empty()) {
      double sum = 0.0;
      for (const double x : s.time_to_first_flag_s) sum += x;
      ttf["mean"] = sum / static_cast<double>(s.time_to_first_flag_s.size());
    }
    per_type[lg::fault_type_name(static_cast<lg::FaultType>(t))] = {
        {"events", s.events},
        {"true_positives", s.true_positives},
        {"false_negatives", s.false_negatives},
        {"recall", s.events ? static_cast<double>(s.true_positives) / static_cast<double>(s.events) : 0.0},
        {"labelled_frames", s.labelled_frames},
        {"flagged_frames", s.flagged_frames},
        {"time_to_first_flag_s", ttf}};
  }
  json rejects = json::object();
  for (const auto& [reason, n] : sub.rejects()) rejects[reason] = n;
  return json{
      {"config",
       {{"lccs", o_.lccs},
        {"units", o_.units},
        {"units_per_psu", o_.units_per_psu},
        {"rate_hz", o_.rate_hz},
        {"tick_phase", o_.tick_phase == lcc_sim::TickPhase::kAligned ? "aligned" : "random"},
        {"duration_s", o_.duration_s},
        {"seed", o_.seed},
        {"fault_mix", o_.fault_mix},
        {"faults_file", o_.faults_path},
        {"profile", o_.profile.name},
        {"schedule_file", o_.schedule_path},
        {"derate_on_anomaly", o_.derate},
        {"telemetry_endpoint", pub.endpoint()},
        {"feedback_endpoint", sub.endpoint()}}},
      {"boot_id", boot_id_},
      {"elapsed_s", elapsed_s},
      {"ticks", ticks_},
      {"achieved_rate_hz", elapsed_s > 0 ? static_cast<double>(ticks_) / elapsed_s : 0.0},
      {"tick_phase_s", phase_s_},
      {"send_slots", slots_.size()},
      {"late_ticks", late_ticks_},
      {"schedule_lag_us", stats_of(lag_us_)},
      {"tick_cost_us", stats_of(tick_cost_us_)},
      {"frames_sent", pub.frames_sent()},
      {"telemetry_subscriptions", pub.subscriptions()},
      {"frames_dropped", pub.frames_dropped()},
      {"feedback_received", sub.received()},
      {"feedback_rejected", rejects},
      {"feedback_stale", stale_},
      {"feedback_other_boot", other_boot_},
      {"feedback_duplicate", duplicates_},
      {"feedback_unknown_lcc", unknown_lcc_},
      {"feedback_shape_mismatch", shape_mismatch_},
      {"frames_without_feedback", pub.frames_sent() - std::min(answered_, pub.frames_sent())},
      {"round_trip_latency_us", stats_of(latencies_us_)},
      {"flags", flags_},
      {"derated", derated_},
      {"detection",
       {{"per_fault_type", per_type},
        {"healthy",
         {{"unit_frames", d.healthy_frames},
          {"false_positives", d.false_positives},
          {"false_positive_rate",
           d.healthy_frames ? static_cast<double>(d.false_positives) / static_cast<double>(d.healthy_frames) : 0.0},
          {"units_ever_flagged", d.healthy_units_flagged}}}}},
      {"faults", json::parse(lg::fault_spec_to_json(faults_))["faults"]},
      {"schedule", schedule_json()},
      {"schedule_dropped", schedule_dropped()}};
}

json LccLoop::schedule_json() const {
  std::vector<lg::OperatingChange> applied;
  for (const auto& sim : sims_) applied.insert(applied.end(), sim.schedule_log().begin(), sim.schedule_log().end());
  std::stable_sort(applied.begin(), applied.end(),
                   [](const lg::OperatingChange& a, const lg::OperatingChange& b) { return a.at_s < b.at_s; });
  return json::parse(lg::schedule_to_json(applied))["changes"];
}

std::uint64_t LccLoop::schedule_dropped() const {
  std::uint64_t n = 0;
  for (const auto& sim : sims_) n += sim.schedule_log_dropped();
  return n;
}

int LccLoop::run() {
  lg::ZmqContext context;
  // Before either socket exists: a CURVE server socket must never run without its ZAP handler.
  const auto guard = lcc_sim::make_link_guard(context, o_.security, {o_.telemetry_endpoint, o_.feedback_endpoint});
  lg::TelemetryPublisher pub(context, o_.telemetry_endpoint, o_.hwm, lg::random_boot_id(), guard);
  boot_id_ = pub.boot_id();
  std::vector<std::uint32_t> ids;
  for (const auto& s : sims_) ids.push_back(s.config().lcc_id);
  lg::FeedbackSubscriber sub(context, o_.feedback_endpoint, o_.hwm, ids, guard);
  log(LogLevel::kInfo, "boot %016llx: telemetry on %s, feedback on %s: %u LCC(s) x %u units at %.1f Hz, %zu fault(s), "
      "operating profile %s",
      static_cast<unsigned long long>(boot_id_), pub.endpoint().c_str(), sub.endpoint().c_str(), o_.lccs, o_.units,
      o_.rate_hz, faults_.size(), o_.profile.name.c_str());

  if (o_.wait_for_subscriber_s > 0) {
    // In short slices, so SIGINT/SIGTERM still stop a long wait promptly.
    const auto until = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                          std::chrono::duration<double>(o_.wait_for_subscriber_s));
    while (!g_stop.load() && Clock::now() < until && !pub.wait_for_subscriber(std::chrono::milliseconds(100), o_.wait_for_subscriptions)) {
    }
    if (pub.subscriptions() >= o_.wait_for_subscriptions)
      log(LogLevel::kInfo, "telemetry subscriber present, starting");
    else if (!g_stop.load())
      log(LogLevel::kWarning, "no telemetry subscriber after %.1f s, starting anyway", o_.wait_for_subscriber_s);
  }
  const auto period = std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(period_));
  const std::uint64_t total_ticks =
      o_.duration_s > 0 ? static_cast<std::uint64_t>(std::llround(o_.duration_s * o_.rate_hz)) : UINT64_MAX;
  const auto start = Clock::now();
  bool stopped = false;
  while (!stopped && ticks_ < total_ticks) {
    // Absolute deadlines: a late slot does not shift the following ones.
    const auto period_start = start + period * static_cast<Clock::rep>(ticks_);
    for (std::size_t s = 0; s < slots_.size(); ++s) {
      const auto due = period_start + slots_[s].offset;
      for (auto now = Clock::now(); now < due && !g_stop.load(); now = Clock::now()) {
        if (auto fb = sub.poll(due - now)) on_feedback(*fb, Clock::now());
      }
      // A stop before the period's first send ends the run; one in mid-period sends the rest
      // of the period at once, so every LCC has sent the same number of frames.
      if (g_stop.load() && s == 0) {
        stopped = true;
        break;
      }
      const auto begin = Clock::now();
      if (!g_stop.load()) {
        if (begin - due > period) ++late_ticks_;
        lag_us_.add(std::chrono::duration<double, std::micro>(begin - due).count());
      }
      tick(pub, slots_[s].lccs);
      tick_cost_us_.add(std::chrono::duration<double, std::micro>(Clock::now() - begin).count());
      pub.poll_subscriptions();
      // Answers already queued are handled between sends, even when the loop runs late.
      while (auto fb = sub.poll(std::chrono::nanoseconds::zero())) on_feedback(*fb, Clock::now());
    }
    if (stopped) break;
    ++ticks_;
    stopped = g_stop.load();
  }
  const double elapsed_s = std::chrono::duration<double>(Clock::now() - start).count();
  // Let in-flight feedback for the last frames arrive (stops early on a second signal).
  const auto drain_until = Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o_.drain_s));
  for (auto now = Clock::now(); now < drain_until; now = Clock::now()) {
    if (auto fb = sub.poll(drain_until - now)) on_feedback(*fb, Clock::now());
  }

  json s = summary(pub, sub, elapsed_s);
  s["link_security"] = lcc_sim::link_security_summary(guard.get());  // refused handshakes by socket and reason
  const std::string text = s.dump(2);
  std::fputs((text + "\n").c_str(), stdout);
  std::fflush(stdout);
  if (!o_.summary_json.empty()) {
    // Temp file + rename: a reader never sees a half-written summary.
    const std::string tmp = o_.summary_json + ".tmp." + std::to_string(::getpid());
    {
      std::ofstream out(tmp);
      out << text << "\n";
      if (!out) {
        log(LogLevel::kError, "cannot write summary to '%s'", tmp.c_str());
        return 1;
      }
    }
    if (std::rename(tmp.c_str(), o_.summary_json.c_str()) != 0) {
      log(LogLevel::kError, "cannot rename '%s' to '%s'", tmp.c_str(), o_.summary_json.c_str());
      return 1;
    }
  }
  return 0;
}

std::vector<lg::FaultSpec> build_faults(const Options& o) {
  std::vector<lg::FaultSpec> spec;
  if (!o.faults_path.empty()) spec = lg::read_fault_spec_file(o.faults_path);
  const double horizon = o.duration_s > 0 ? o.duration_s : o.fault_horizon_s;
  return lg::assemble_faults(std::move(spec), o.fault_mix, o.seed, o.lccs, o.first_lcc_id, o.units, o.units_per_psu,
                             horizon);
}

std::vector<lg::OperatingChange> build_schedule(const Options& o) {
  if (o.schedule_path.empty()) return {};
  auto schedule = lg::read_schedule_file(o.schedule_path);
  lg::check_schedule(schedule, o.profile, o.params, o.first_lcc_id, o.lccs, o.units);
  return schedule;
}

}  // namespace

int main(int argc, char** argv) {
  const Options options = lcc_sim::parse_args(argc, argv);
  lcc_sim::g_log_level = options.log_level;
  struct sigaction action {};
  action.sa_handler = on_signal;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
  try {
    LccLoop loop(options, build_faults(options), build_schedule(options));
    return loop.run();
  } catch (const std::invalid_argument& e) {  // bad fault spec / configuration
    std::fprintf(stderr, "lcc-sim: error: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "lcc-sim: error: %s\n", e.what());
    return 1;
  }
}
