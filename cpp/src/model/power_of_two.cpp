#include "laserguard/model/power_of_two.hpp"

#include <cmath>

namespace laserguard {

void PowerOfTwo::apply(double* values, std::size_t n) const {
  if (n == 0) return;
  if (loop_ == nullptr) {
    for (std::size_t i = 0; i < n; ++i) values[i] = std::pow(2.0, values[i]);
    return;
  }
  // numpy's power(2.0, values, out=values): the scalar base broadcast with stride 0, in place.
  double two = 2.0;
  char* args[3] = {reinterpret_cast<char*>(&two), reinterpret_cast<char*>(values), reinterpret_cast<char*>(values)};
  const std::ptrdiff_t dims[1] = {static_cast<std::ptrdiff_t>(n)};
  const std::ptrdiff_t steps[3] = {0, sizeof(double), sizeof(double)};
  loop_(args, dims, steps, data_);
}

}  // namespace laserguard
