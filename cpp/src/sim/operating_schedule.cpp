#include "laserguard/sim/operating_schedule.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

namespace laserguard {
namespace {

using json = nlohmann::json;

constexpr std::array<const char*, kOpEventCount> kOpEventNames = {
    "", "setpoint_step", "setpoint_ramp", "power_off", "power_on", "tec_setpoint", "ambient_step", "derate",
};

std::string known_event_names() {
  std::string out;
  for (std::size_t i = 1; i < kOpEventNames.size(); ++i) out += (i > 1 ? ", " : "") + std::string(kOpEventNames[i]);
  return out;
}

OperatingProfile lab_profile() {
  OperatingProfile p;
  p.name = "lab";
  p.setpoint_changes_per_hour = 4.0;
  p.ramp_share = 0.3;
  p.ramp_min_s = 10.0;
  p.ramp_max_s = 120.0;
  p.power_cycles_per_hour = 0.5;
  p.off_min_s = 60.0;
  p.off_max_s = 600.0;
  p.tec_changes_per_hour = 0.25;
  p.ambient_daily_amplitude_c = 0.5;
  p.hvac_steps_per_hour = 0.5;
  p.hvac_step_max_c = 1.0;
  return p;
}

OperatingProfile production_profile() {
  OperatingProfile p;
  p.name = "production";
  p.setpoint_changes_per_hour = 0.05;   // about one change a day per unit
  p.ramp_share = 0.5;
  p.ramp_min_s = 60.0;
  p.ramp_max_s = 600.0;
  p.power_cycles_per_hour = 1.0 / 72.0;  // every third day
  p.off_min_s = 600.0;
  p.off_max_s = 3600.0;
  p.tec_changes_per_hour = 1.0 / 168.0;  // weekly
  p.ambient_daily_amplitude_c = 1.5;
  p.hvac_steps_per_hour = 1.0 / 6.0;
  p.hvac_step_max_c = 1.5;
  return p;
}

// Entry keys every type accepts, and the extra keys of each type.
const std::vector<std::string>& type_keys(OpEvent type) {
  static const std::vector<std::string> none, step = {"setpoint_a"}, ramp = {"setpoint_a", "ramp_s"},
                                              tec = {"tec_setpoint_c"}, ambient = {"ambient_offset_c"};
  switch (type) {
    case OpEvent::kSetpointStep: return step;
    case OpEvent::kSetpointRamp: return ramp;
    case OpEvent::kTecSetpoint: return tec;
    case OpEvent::kAmbientStep: return ambient;
    default: return none;
  }
}

double number_field(const json& entry, const std::string& key, const std::string& where) {
  if (!entry.contains(key)) throw ScheduleError(where + ": '" + key + "' (a number) is required");
  if (!entry[key].is_number()) throw ScheduleError(where + ": '" + key + "' must be a number, got " + entry[key].dump());
  const double v = entry[key].get<double>();
  if (!std::isfinite(v)) throw ScheduleError(where + ": '" + key + "' is not finite");
  return v;
}

std::uint32_t index_field(const json& entry, const char* key, const std::string& where) {
  if (!entry.contains(key)) throw ScheduleError(where + ": '" + key + "' (an integer) is required");
  const json& v = entry[key];
  if (!v.is_number_integer() || v.get<std::int64_t>() < 0 || v.get<std::int64_t>() > std::int64_t{0xFFFFFFFF})
    throw ScheduleError(where + ": '" + key + "' must be a non-negative integer, got " + v.dump());
  return static_cast<std::uint32_t>(v.get<std::int64_t>());
}

OperatingChange parse_entry(const json& entry, std::size_t index) {
  std::string where = "change " + std::to_string(index);
  if (!entry.is_object()) throw ScheduleError(where + ": expected an object, got " + entry.dump());
  if (!entry.contains("type") || !entry["type"].is_string())
    throw ScheduleError(where + ": 'type' (a string) is required; known types: " + known_event_names());
  OperatingChange c;
  const std::string type_name = entry["type"].get<std::string>();
  try {
    c.type = op_event_from_name(type_name);
  } catch (const std::invalid_argument& e) {
    throw ScheduleError(where + ": " + e.what());
  }
  if (c.type == OpEvent::kDerate)
    throw ScheduleError(where + ": 'derate' is the derate loop's action (lcc-sim --derate-on-anomaly), not a "
                                "scheduled change");
  where += " (" + type_name + ")";
  const bool per_unit = c.type != OpEvent::kAmbientStep;
  const auto& extra = type_keys(c.type);
  for (const auto& item : entry.items()) {
    const std::string& k = item.key();
    const bool common = k == "lcc" || k == "type" || k == "at_s" || (per_unit && k == "unit");
    if (!common && std::find(extra.begin(), extra.end(), k) == extra.end())
      throw ScheduleError(where + ": unknown key '" + k + "'" +
                          (k == "unit" ? " (an ambient step acts on every unit of the LCC)" : ""));
  }
  c.lcc = index_field(entry, "lcc", where);
  if (per_unit) c.unit = index_field(entry, "unit", where);
  c.at_s = number_field(entry, "at_s", where);
  if (c.at_s < 0.0) throw ScheduleError(where + ": at_s " + std::to_string(c.at_s) + " is negative");
  if (c.type == OpEvent::kSetpointStep || c.type == OpEvent::kSetpointRamp) {
    c.setpoint_a = number_field(entry, "setpoint_a", where);
    if (!(c.setpoint_a > 0.0))
      throw ScheduleError(where + ": setpoint_a " + std::to_string(c.setpoint_a) +
                          " A is not positive (use power_off to switch a unit off)");
  }
  if (c.type == OpEvent::kSetpointRamp) {
    c.ramp_s = number_field(entry, "ramp_s", where);
    if (!(c.ramp_s > 0.0)) throw ScheduleError(where + ": ramp_s " + std::to_string(c.ramp_s) + " is not positive");
  }
  if (c.type == OpEvent::kTecSetpoint) c.tec_setpoint_c = number_field(entry, "tec_setpoint_c", where);
  if (c.type == OpEvent::kAmbientStep) {
    c.ambient_offset_c = number_field(entry, "ambient_offset_c", where);
    if (std::fabs(c.ambient_offset_c) > 20.0)
      throw ScheduleError(where + ": ambient_offset_c " + std::to_string(c.ambient_offset_c) +
                          " is outside [-20, 20] K");
  }
  return c;
}

}  // namespace

const char* op_event_name(OpEvent event) noexcept {
  const auto i = static_cast<std::size_t>(event);
  return i < kOpEventNames.size() ? kOpEventNames[i] : "invalid";
}

OpEvent op_event_from_name(const std::string& name) {
  for (std::size_t i = 1; i < kOpEventNames.size(); ++i)
    if (name == kOpEventNames[i]) return static_cast<OpEvent>(i);
  throw std::invalid_argument("unknown operating change type '" + name + "'; known types: " + known_event_names());
}

const std::vector<std::string>& operating_profile_names() {
  static const std::vector<std::string> names = {"steady", "lab", "production"};
  return names;
}

OperatingProfile operating_profile(const std::string& name) {
  if (name == "steady") return OperatingProfile{};
  if (name == "lab") return lab_profile();
  if (name == "production") return production_profile();
  throw std::invalid_argument("unknown operating profile '" + name + "'; known profiles: steady, lab, production");
}

const std::vector<ProfileParamField>& profile_param_fields() {
  static const std::vector<ProfileParamField> fields = {
      {"setpoint_min_fraction", &OperatingProfile::setpoint_min_fraction},
      {"setpoint_max_fraction", &OperatingProfile::setpoint_max_fraction},
      {"step_min_fraction", &OperatingProfile::step_min_fraction},
      {"step_max_fraction", &OperatingProfile::step_max_fraction},
      {"setpoint_changes_per_hour", &OperatingProfile::setpoint_changes_per_hour},
      {"ramp_share", &OperatingProfile::ramp_share},
      {"ramp_min_s", &OperatingProfile::ramp_min_s},
      {"ramp_max_s", &OperatingProfile::ramp_max_s},
      {"power_cycles_per_hour", &OperatingProfile::power_cycles_per_hour},
      {"off_min_s", &OperatingProfile::off_min_s},
      {"off_max_s", &OperatingProfile::off_max_s},
      {"tec_changes_per_hour", &OperatingProfile::tec_changes_per_hour},
      {"tec_setpoint_min_c", &OperatingProfile::tec_setpoint_min_c},
      {"tec_setpoint_max_c", &OperatingProfile::tec_setpoint_max_c},
      {"warm_band_k", &OperatingProfile::warm_band_k},
      {"ambient_daily_amplitude_c", &OperatingProfile::ambient_daily_amplitude_c},
      {"ambient_peak_hour", &OperatingProfile::ambient_peak_hour},
      {"run_start_hour", &OperatingProfile::run_start_hour},
      {"hvac_steps_per_hour", &OperatingProfile::hvac_steps_per_hour},
      {"hvac_step_max_c", &OperatingProfile::hvac_step_max_c},
  };
  return fields;
}

void validate_operating_profile(const OperatingProfile& p) {
  for (const auto& f : profile_param_fields()) {
    const double v = p.*(f.member);
    const std::string name = f.name;
    if (!std::isfinite(v)) throw std::invalid_argument("profile parameter " + name + " is not finite");
    if (v < 0.0) throw std::invalid_argument("profile parameter " + name + " = " + std::to_string(v) + " is negative");
  }
  const auto ordered = [](double lo, double hi, const char* lo_name, const char* hi_name) {
    if (lo > hi)
      throw std::invalid_argument(std::string("profile parameter ") + lo_name + " = " + std::to_string(lo) +
                                  " is above " + hi_name + " = " + std::to_string(hi));
  };
  ordered(p.setpoint_min_fraction, p.setpoint_max_fraction, "setpoint_min_fraction", "setpoint_max_fraction");
  ordered(p.step_min_fraction, p.step_max_fraction, "step_min_fraction", "step_max_fraction");
  ordered(p.ramp_min_s, p.ramp_max_s, "ramp_min_s", "ramp_max_s");
  ordered(p.off_min_s, p.off_max_s, "off_min_s", "off_max_s");
  ordered(p.tec_setpoint_min_c, p.tec_setpoint_max_c, "tec_setpoint_min_c", "tec_setpoint_max_c");
  if (!(p.setpoint_min_fraction > 0.0))
    throw std::invalid_argument("profile parameter setpoint_min_fraction must be positive");
  if (p.ramp_share > 1.0)
    throw std::invalid_argument("profile parameter ramp_share = " + std::to_string(p.ramp_share) + " is above 1");
  if (p.setpoint_changes_per_hour > 0.0 && p.ramp_share > 0.0 && !(p.ramp_min_s > 0.0))
    throw std::invalid_argument("profile parameter ramp_min_s must be positive when ramps are drawn");
  if (!(p.warm_band_k > 0.0)) throw std::invalid_argument("profile parameter warm_band_k must be positive");
  if (p.ambient_peak_hour >= 24.0 || p.run_start_hour >= 24.0)
    throw std::invalid_argument("profile parameters ambient_peak_hour and run_start_hour must be below 24");
}

void set_sim_param(LaserParams& params, OperatingProfile& profile, const std::string& name, double value) {
  for (const auto& f : laser_param_fields()) {
    if (name == f.name) {
      params.*(f.member) = value;
      return;
    }
  }
  for (const auto& f : profile_param_fields()) {
    if (name == f.name) {
      profile.*(f.member) = value;
      return;
    }
  }
  throw std::invalid_argument("unknown parameter '" + name +
                              "' (neither a laser parameter nor an operating-profile parameter)");
}

std::vector<OperatingChange> parse_schedule(const std::string& json_text) {
  json doc;
  try {
    doc = json::parse(json_text);
  } catch (const json::parse_error& e) {
    throw ScheduleError(std::string("schedule is not valid JSON: ") + e.what());
  }
  const json* list = &doc;
  if (doc.is_object()) {
    if (!doc.contains("changes") || doc.size() != 1)
      throw ScheduleError("schedule object must have exactly one key, 'changes'");
    list = &doc["changes"];
  }
  if (!list->is_array()) throw ScheduleError("schedule: 'changes' must be an array");
  std::vector<OperatingChange> changes;
  for (std::size_t i = 0; i < list->size(); ++i) changes.push_back(parse_entry((*list)[i], i));
  return changes;
}

std::vector<OperatingChange> read_schedule_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw ScheduleError("cannot open schedule file '" + path + "'");
  std::stringstream buffer;
  buffer << in.rdbuf();
  return parse_schedule(buffer.str());
}

std::string schedule_to_json(const std::vector<OperatingChange>& changes) {
  json list = json::array();
  for (const auto& c : changes) {
    json e = {{"lcc", c.lcc}, {"type", op_event_name(c.type)}, {"at_s", c.at_s}};
    if (c.type != OpEvent::kAmbientStep) e["unit"] = c.unit;
    switch (c.type) {
      case OpEvent::kSetpointRamp: e["ramp_s"] = c.ramp_s; [[fallthrough]];
      case OpEvent::kSetpointStep:
      case OpEvent::kDerate: e["setpoint_a"] = c.setpoint_a; break;
      case OpEvent::kTecSetpoint: e["tec_setpoint_c"] = c.tec_setpoint_c; break;
      case OpEvent::kAmbientStep: e["ambient_offset_c"] = c.ambient_offset_c; break;
      default: break;
    }
    list.push_back(e);
  }
  return json{{"changes", list}}.dump(2);
}

void check_schedule(const std::vector<OperatingChange>& changes, const OperatingProfile& profile,
                    const LaserParams& params, std::uint32_t first_lcc_id, std::uint32_t n_lccs, std::uint32_t n_units) {
  const double lo = profile.setpoint_min_fraction * params.nominal_drive_current_a;
  const double hi = profile.setpoint_max_fraction * params.nominal_drive_current_a;
  for (std::size_t i = 0; i < changes.size(); ++i) {
    const OperatingChange& c = changes[i];
    const std::string where = "change " + std::to_string(i) + " (" + op_event_name(c.type) + ")";
    if (c.lcc < first_lcc_id || c.lcc - first_lcc_id >= n_lccs)
      throw ScheduleError(where + ": lcc " + std::to_string(c.lcc) + " is not one of the simulated LCC ids " +
                          std::to_string(first_lcc_id) + ".." + std::to_string(first_lcc_id + n_lccs - 1));
    if (c.type != OpEvent::kAmbientStep && c.unit >= n_units)
      throw ScheduleError(where + ": unit " + std::to_string(c.unit) + " is not below the unit count " +
                          std::to_string(n_units));
    if ((c.type == OpEvent::kSetpointStep || c.type == OpEvent::kSetpointRamp) &&
        (c.setpoint_a < lo || c.setpoint_a > hi))
      throw ScheduleError(where + ": setpoint_a " + std::to_string(c.setpoint_a) + " A is outside the range " +
                          std::to_string(lo) + ".." + std::to_string(hi) +
                          " A (setpoint_min_fraction/setpoint_max_fraction x nominal_drive_current_a)");
    if (c.type == OpEvent::kTecSetpoint &&
        (c.tec_setpoint_c < profile.tec_setpoint_min_c || c.tec_setpoint_c > profile.tec_setpoint_max_c))
      throw ScheduleError(where + ": tec_setpoint_c " + std::to_string(c.tec_setpoint_c) + " is outside " +
                          std::to_string(profile.tec_setpoint_min_c) + ".." +
                          std::to_string(profile.tec_setpoint_max_c) + " C (tec_setpoint_min_c/tec_setpoint_max_c)");
  }
}

}  // namespace laserguard
