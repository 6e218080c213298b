#pragma once
// Bounded memory for long runs: keeps a uniform random sample (reservoir sampling,
// Vitter's algorithm R) of at most `capacity` values, plus the exact count and maximum,
// so percentiles stay meaningful however long lcc-sim runs.
#include <algorithm>
#include <cstdint>
#include <limits>
#include <vector>

#include "laserguard/sim/random_stream.hpp"

namespace laserguard {

class SampleReservoir {
 public:
  explicit SampleReservoir(std::size_t capacity = 1 << 20, std::uint64_t seed = 0x5EED) : capacity_(capacity), rng_(seed) {}

  void add(double value) {
    ++count_;
    max_ = std::max(max_, value);
    sum_ += value;
    if (sample_.size() < capacity_) {
      sample_.push_back(value);
    } else {
      const std::uint64_t j = rng_.below(count_);
      if (j < capacity_) sample_[j] = value;
    }
  }

  std::uint64_t count() const noexcept { return count_; }
  double max() const noexcept { return count_ ? max_ : std::numeric_limits<double>::quiet_NaN(); }
  double mean() const noexcept { return count_ ? sum_ / static_cast<double>(count_) : std::numeric_limits<double>::quiet_NaN(); }
  const std::vector<double>& sample() const noexcept { return sample_; }

 private:
  std::size_t capacity_;
  RandomStream rng_;
  std::vector<double> sample_;
  std::uint64_t count_ = 0;
  double max_ = -std::numeric_limits<double>::infinity();
  double sum_ = 0.0;
};

}  // namespace laserguard
