#pragma once
// Historical datasets from the live simulator: runs one LccSimulator per LCC for
// n_samples periods and writes every (time, LCC, unit) row into caller-owned columns
// (numpy arrays in the Python binding: no intermediate copy).
#include <cstddef>
#include <cstdint>
#include <vector>

#include "laserguard/sim/fault_injection.hpp"
#include "laserguard/sim/laser_physics.hpp"
#include "laserguard/sim/operating_schedule.hpp"

namespace laserguard {

struct DatasetSpec {
  std::uint32_t n_lccs = 2;
  std::uint32_t first_lcc_id = 1;
  std::uint32_t n_units = 32;
  std::uint32_t units_per_psu = 16;
  double sample_period_s = 1.0;
  std::uint64_t n_samples = 0;
  std::uint64_t seed = 0;
  LaserParams params;
  std::vector<FaultSpec> faults;
  OperatingProfile profile;
  std::vector<OperatingChange> schedule;
};

// Row-major by time, then LCC, then unit; `values` has rows x kChannelCount floats.
struct DatasetColumns {
  float* values;
  double* time_s;
  std::uint32_t* lcc;
  std::uint32_t* unit;
  std::uint32_t* psu;
  std::uint8_t* fault_type;
  float* severity;
  float* setpoint_a;
  std::uint8_t* state;     // UnitState codes
  std::uint8_t* op_event;  // OpEvent codes
};

std::size_t dataset_rows(const DatasetSpec& spec) noexcept;
// Throws std::invalid_argument for a bad spec (before writing anything). Returns the
// operating changes the run applied (every LCC, in time order).
std::vector<OperatingChange> generate_dataset(const DatasetSpec& spec, const DatasetColumns& out);

}  // namespace laserguard
