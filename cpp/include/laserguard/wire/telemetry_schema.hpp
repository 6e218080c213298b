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

}  // namespace laserguard
