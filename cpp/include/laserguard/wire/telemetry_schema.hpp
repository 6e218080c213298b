#pragma once
// Telemetry schema 1: the 11 per-unit channels of design §3, in frame column order.
// The simulator writes them in this order and the codec checks the count for schema 1.
#include <array>
#include <cstddef>
#include <cstdint>

namespace laserguard {

enum Channel : std::size_t {
  kDriveCurrentA = 0,
  kForwardVoltageV,
  kOpticalPowerW,
  kMonitorPdMa,
  kDiodeTempC,
  kHeatsinkTempC,
  kTecCurrentA,
  kPsuVoltageV,
  kPsuCurrentA,
  kPsuTempC,
  kPsuRippleMv,
  kChannelCount
};

inline constexpr std::uint16_t kSchemaLaserV1 = 1;

inline constexpr std::array<const char*, kChannelCount> kChannelNames = {
    "drive_current_a", "forward_voltage_v", "optical_power_w", "monitor_pd_ma",
    "diode_temp_c",    "heatsink_temp_c",   "tec_current_a",   "psu_voltage_v",
    "psu_current_a",   "psu_temp_c",        "psu_ripple_mv",
};

// Operating state of a unit, sent per unit in every telemetry frame (version 3) next to its
// commanded drive current, so consumers can tell a healthy operating change from a fault.
// The numeric codes are the wire bytes; the names are used in documents, CSVs and labels.
enum class UnitState : std::uint8_t { kOff = 0, kWarming = 1, kOn = 2, kDerated = 3 };

inline constexpr std::size_t kUnitStateCount = 4;

inline constexpr std::array<const char*, kUnitStateCount> kUnitStateNames = {"off", "warming", "on", "derated"};

// "off", "warming", "on", "derated"; "invalid" for a code outside the enum (never on a decoded frame).
constexpr const char* unit_state_name(UnitState state) noexcept {
  const auto code = static_cast<std::size_t>(state);
  return code < kUnitStateCount ? kUnitStateNames[code] : "invalid";
}

}  // namespace laserguard
