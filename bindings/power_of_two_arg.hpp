#pragma once
// numpy's float64 power loop reaches the bindings as two integers (function and data pointer),
// found and verified bit for bit by laserguard.model.numpy_power; (0, 0) means libm's pow.
#include <cstdint>

#include "laserguard/model/power_of_two.hpp"

inline laserguard::PowerOfTwo power_of_two_arg(std::uintptr_t loop, std::uintptr_t data) {
  return laserguard::PowerOfTwo(reinterpret_cast<laserguard::PowerLoop>(loop), reinterpret_cast<void*>(data));
}
