#include "laserguard/sim/fault_injection.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "laserguard/sim/random_stream.hpp"
#include "laserguard/wire/telemetry_schema.hpp"

namespace laserguard {
namespace {

using json = nlohmann::json;

constexpr std::array<const char*, kFaultTypeCount> kFaultNames = {
    "none",        "degradation",        "facet_damage",     "cooling_loss",  "thermal_resistance",
    "psu_sag",     "psu_ripple",         "driver_oscillation", "driver_overshoot", "sensor_stuck",
    "sensor_dropout", "sensor_spikes",
};

std::string known_fault_names() {
  std::string out;
  for (std::size_t i = 1; i < kFaultNames.size(); ++i) out += (i > 1 ? ", " : "") + std::string(kFaultNames[i]);
  return out;
}

std::size_t channel_from_name(const std::string& name, const std::string& where) {
  for (std::size_t i = 0; i < kChannelNames.size(); ++i)
    if (name == kChannelNames[i]) return i;
  throw FaultSpecError(where + ": unknown channel '" + name + "'");
}

double number_field(const json& entry, const char* key, double fallback, const std::string& where) {
  if (!entry.contains(key) || entry[key].is_null()) return fallback;
  if (!entry[key].is_number()) throw FaultSpecError(where + ": '" + key + "' must be a number, got " + entry[key].dump());
  const double v = entry[key].get<double>();
  if (!std::isfinite(v)) throw FaultSpecError(where + ": '" + key + "' is not finite");
  return v;
}

std::uint32_t index_field(const json& entry, const char* key, std::uint32_t fallback, const std::string& where) {
  if (!entry.contains(key) || entry[key].is_null()) return fallback;
  if (!entry[key].is_number_integer() || entry[key].get<std::int64_t>() < 0 ||
      entry[key].get<std::int64_t>() > std::int64_t{0xFFFFFFFF})
    throw FaultSpecError(where + ": '" + key + "' must be a non-negative integer, got " + entry[key].dump());
  return static_cast<std::uint32_t>(entry[key].get<std::int64_t>());
}

// Default channel of each sensor fault type when the spec does not name one.
std::size_t default_sensor_channel(FaultType type) {
  switch (type) {
    case FaultType::kSensorStuck: return kOpticalPowerW;
    case FaultType::kSensorDropout: return kMonitorPdMa;
    default: return kDiodeTempC;
  }
}

FaultSpec parse_entry(const json& entry, std::size_t index) {
  const std::string where = "fault " + std::to_string(index);
  if (!entry.is_object()) throw FaultSpecError(where + ": expected an object, got " + entry.dump());
  static const std::array<const char*, 9> kKeys = {"lcc",  "unit",     "psu",     "type",   "start_s",
                                                   "ramp_s", "end_s", "severity", "channel"};
  for (const auto& item : entry.items()) {
    if (std::find_if(kKeys.begin(), kKeys.end(), [&](const char* k) { return item.key() == k; }) == kKeys.end())
      throw FaultSpecError(where + ": unknown key '" + item.key() + "'");
  }
  if (!entry.contains("type") || !entry["type"].is_string())
    throw FaultSpecError(where + ": 'type' (a string) is required; known types: " + known_fault_names());
  FaultSpec f;
  try {
    f.type = fault_type_from_name(entry["type"].get<std::string>());
  } catch (const std::invalid_argument& e) {
    throw FaultSpecError(where + ": " + e.what());
  }
  if (f.type == FaultType::kNone) throw FaultSpecError(where + ": type 'none' is not a fault");
  for (const char* key : {"lcc", "unit"})
    if (!entry.contains(key)) throw FaultSpecError(where + ": '" + key + "' (an integer) is required");
  f.lcc = index_field(entry, "lcc", 0, where);
  f.unit = index_field(entry, "unit", 0, where);
  if (entry.contains("psu") && !entry["psu"].is_null()) {
    if (!is_psu_fault(f.type)) throw FaultSpecError(where + ": 'psu' only applies to psu_sag / psu_ripple");
    f.psu = index_field(entry, "psu", 0, where);
  }
  f.start_s = number_field(entry, "start_s", 0.0, where);
  f.ramp_s = number_field(entry, "ramp_s", 0.0, where);
  f.end_s = number_field(entry, "end_s", -1.0, where);
  f.severity = number_field(entry, "severity", 1.0, where);
  if (f.start_s < 0.0) throw FaultSpecError(where + ": start_s " + std::to_string(f.start_s) + " is negative");
  if (f.ramp_s < 0.0) throw FaultSpecError(where + ": ramp_s " + std::to_string(f.ramp_s) + " is negative");
  if (f.end_s >= 0.0 && f.end_s <= f.start_s)
    throw FaultSpecError(where + ": end_s " + std::to_string(f.end_s) + " is not after start_s");
  if (!(f.severity > 0.0 && f.severity <= 1.0))
    throw FaultSpecError(where + ": severity " + std::to_string(f.severity) + " is outside (0, 1]");
  if (entry.contains("channel") && !entry["channel"].is_null()) {
    if (!is_sensor_fault(f.type)) throw FaultSpecError(where + ": 'channel' only applies to sensor faults");
    if (!entry["channel"].is_string()) throw FaultSpecError(where + ": 'channel' must be a channel name");
    f.channel = channel_from_name(entry["channel"].get<std::string>(), where);
  } else {
    f.channel = default_sensor_channel(f.type);
  }
  return f;
}

}  // namespace

const char* fault_type_name(FaultType type) noexcept {
  const auto i = static_cast<std::size_t>(type);
  return i < kFaultNames.size() ? kFaultNames[i] : "invalid";
}

FaultType fault_type_from_name(const std::string& name) {
  for (std::size_t i = 0; i < kFaultNames.size(); ++i)
    if (name == kFaultNames[i]) return static_cast<FaultType>(i);
  throw std::invalid_argument("unknown fault type '" + name + "'; known types: " + known_fault_names());
}

bool is_psu_fault(FaultType type) noexcept { return type == FaultType::kPsuSag || type == FaultType::kPsuRipple; }

bool is_sensor_fault(FaultType type) noexcept {
  return type == FaultType::kSensorStuck || type == FaultType::kSensorDropout || type == FaultType::kSensorSpikes;
}

double FaultSpec::effective_severity(double t) const noexcept {
  if (!active_at(t)) return 0.0;
  if (ramp_s <= 0.0) return severity;
  return severity * std::min((t - start_s) / ramp_s, 1.0);
}

std::vector<FaultSpec> parse_fault_spec(const std::string& json_text) {
  json doc;
  try {
    doc = json::parse(json_text);
  } catch (const json::parse_error& e) {
    throw FaultSpecError(std::string("fault spec is not valid JSON: ") + e.what());
  }
  const json* list = &doc;
  if (doc.is_object()) {
    if (!doc.contains("faults") || doc.size() != 1)
      throw FaultSpecError("fault spec object must have exactly one key, 'faults'");
    list = &doc["faults"];
  }
  if (!list->is_array()) throw FaultSpecError("fault spec: 'faults' must be an array");
  std::vector<FaultSpec> faults;
  for (std::size_t i = 0; i < list->size(); ++i) faults.push_back(parse_entry((*list)[i], i));
  return faults;
}

std::vector<FaultSpec> read_fault_spec_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw FaultSpecError("cannot open fault spec file '" + path + "'");
  std::stringstream buffer;
  buffer << in.rdbuf();
  return parse_fault_spec(buffer.str());
}

std::string fault_spec_to_json(const std::vector<FaultSpec>& faults) {
  json list = json::array();
  for (const auto& f : faults) {
    json e = {{"lcc", f.lcc},         {"unit", f.unit},     {"type", fault_type_name(f.type)},
              {"start_s", f.start_s}, {"ramp_s", f.ramp_s}, {"severity", f.severity}};
    e["end_s"] = f.end_s < 0.0 ? json(nullptr) : json(f.end_s);
    if (f.psu) e["psu"] = *f.psu;
    if (is_sensor_fault(f.type)) e["channel"] = kChannelNames[f.channel];
    list.push_back(e);
  }
  return json{{"faults", list}}.dump(2);
}

const std::vector<std::string>& fault_mix_names() {
  static const std::vector<std::string> names = {"none", "default", "all"};
  return names;
}

std::vector<FaultSpec> fault_mix(const std::string& name, std::uint64_t seed, std::uint32_t n_lccs,
                                 std::uint32_t n_units, std::uint32_t units_per_psu, double horizon_s) {
  const auto& names = fault_mix_names();
  if (std::find(names.begin(), names.end(), name) == names.end())
    throw FaultSpecError("unknown fault mix '" + name + "'; known mixes: none, default, all");
  if (!(horizon_s > 0.0)) throw FaultSpecError("fault mix horizon " + std::to_string(horizon_s) + " s is not positive");
  std::vector<FaultSpec> faults;
  if (name == "none" || n_lccs == 0 || n_units == 0) return faults;
  RandomStream rng(seed, 0xFA17, n_lccs, n_units);

  // Gradual faults ramp over a fifth of the run; the others start at full severity.
  const auto make = [&](FaultType type, std::uint32_t lcc, std::uint32_t unit) {
    FaultSpec f;
    f.type = type;
    f.lcc = lcc;
    f.unit = unit;
    f.start_s = rng.uniform(0.2, 0.6) * horizon_s;
    const bool gradual = type == FaultType::kDegradation || type == FaultType::kThermalResistance ||
                         type == FaultType::kCoolingLoss;
    f.ramp_s = gradual ? 0.2 * horizon_s : 0.0;
    f.severity = std::round(rng.uniform(0.3, 1.0) * 100.0) / 100.0;
    f.channel = is_sensor_fault(type) ? static_cast<std::size_t>(rng.below(kChannelCount)) : 0;
    return f;
  };

  const std::uint32_t n_psus = (n_units + units_per_psu - 1) / std::max(units_per_psu, 1U);
  if (name == "all") {
    // Every type once. PSU faults take the last supply of the last LCC(s); unit faults are
    // spread over units on other supplies, so no two faults overlap where avoidable.
    std::vector<std::pair<std::uint32_t, std::uint32_t>> psu_slots;  // (lcc, psu)
    for (std::uint32_t k = 0; k < 2; ++k) {
      const std::uint32_t lcc = n_lccs - 1 - (k % n_lccs);
      const std::uint32_t psu = n_psus - 1 - std::min(k / n_lccs, n_psus - 1);
      psu_slots.emplace_back(lcc, psu);
    }
    std::vector<std::pair<std::uint32_t, std::uint32_t>> free_units;
    for (std::uint32_t lcc = 0; lcc < n_lccs; ++lcc)
      for (std::uint32_t unit = 0; unit < n_units; ++unit) {
        const auto slot = std::make_pair(lcc, unit / std::max(units_per_psu, 1U));
        if (std::find(psu_slots.begin(), psu_slots.end(), slot) == psu_slots.end()) free_units.emplace_back(lcc, unit);
      }
    if (free_units.empty())
      for (std::uint32_t lcc = 0; lcc < n_lccs; ++lcc)
        for (std::uint32_t unit = 0; unit < n_units; ++unit) free_units.emplace_back(lcc, unit);
    std::size_t placed = 0;
    const std::size_t n_unit_types = kFaultTypeCount - 3;  // all but none, psu_sag, psu_ripple
    for (std::size_t k = 1; k < kFaultTypeCount; ++k) {
      const auto type = static_cast<FaultType>(k);
      if (is_psu_fault(type)) {
        const auto [lcc, psu] = psu_slots[type == FaultType::kPsuSag ? 0 : 1];
        auto f = make(type, lcc, std::min(psu * units_per_psu, n_units - 1));
        f.psu = psu;
        faults.push_back(f);
        continue;
      }
      const std::size_t index = (placed * free_units.size()) / n_unit_types + free_units.size() / (2 * n_unit_types);
      const auto [lcc, unit] = free_units[std::min(index, free_units.size() - 1)];
      faults.push_back(make(type, lcc, unit));
      ++placed;
    }
    return faults;
  }
  // "default"
  const std::array<FaultType, 9> unit_types = {
      FaultType::kDegradation,       FaultType::kFacetDamage,       FaultType::kCoolingLoss,
      FaultType::kThermalResistance, FaultType::kDriverOscillation, FaultType::kDriverOvershoot,
      FaultType::kSensorStuck,       FaultType::kSensorDropout,     FaultType::kSensorSpikes};
  for (std::uint32_t lcc = 0; lcc < n_lccs; ++lcc) {
    for (std::uint32_t unit = 0; unit < n_units; ++unit) {
      if (rng.uniform() < 1.0 / 7.0) faults.push_back(make(unit_types[rng.below(unit_types.size())], lcc, unit));
    }
    for (std::uint32_t psu = 0; psu < n_psus; ++psu) {
      if (rng.uniform() < 0.1) {
        auto f = make(rng.uniform() < 0.5 ? FaultType::kPsuSag : FaultType::kPsuRipple, lcc, psu * units_per_psu);
        f.psu = psu;
        faults.push_back(f);
      }
    }
  }
  return faults;
}

std::vector<FaultSpec> assemble_faults(std::vector<FaultSpec> spec, const std::string& mix, std::uint64_t seed,
                                       std::uint32_t n_lccs, std::uint32_t first_lcc_id, std::uint32_t n_units,
                                       std::uint32_t units_per_psu, double horizon_s) {
  for (FaultSpec f : fault_mix(mix, seed, n_lccs, n_units, units_per_psu, horizon_s)) {
    f.lcc += first_lcc_id;  // the mix numbers LCCs from 0
    spec.push_back(f);
  }
  for (std::size_t i = 0; i < spec.size(); ++i) {
    if (spec[i].lcc < first_lcc_id || spec[i].lcc - first_lcc_id >= n_lccs)
      throw FaultSpecError("fault " + std::to_string(i) + ": lcc " + std::to_string(spec[i].lcc) +
                           " is not one of the simulated LCC ids " + std::to_string(first_lcc_id) + ".." +
                           std::to_string(first_lcc_id + n_lccs - 1));
    if (spec[i].unit >= n_units)
      throw FaultSpecError("fault " + std::to_string(i) + ": unit " + std::to_string(spec[i].unit) +
                           " is not below the unit count " + std::to_string(n_units));
  }
  return spec;
}

}  // namespace laserguard
