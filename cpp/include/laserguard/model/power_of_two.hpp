#pragma once
// 2^x over an array, the last step of sklearn's IsolationForest score (-2 ** (-depths / c)).
//
// sklearn computes it with numpy's float64 `power`, which uses SIMD code where the CPU has
// AVX-512 and so is not libm's pow bit for bit. To stay exact, the caller hands in numpy's
// own inner loop (`PowerLoop`, numpy's PyUFuncGenericFunction signature; the Python layer
// fetches it once and verifies it, laserguard/model/numpy_power.py). Without one, libm's pow
// is used (within 2 ulp).
#include <cstddef>

namespace laserguard {

using PowerLoop = void (*)(char** args, const std::ptrdiff_t* dimensions, const std::ptrdiff_t* steps, void* data);

class PowerOfTwo {
 public:
  PowerOfTwo() = default;
  PowerOfTwo(PowerLoop loop, void* data) noexcept : loop_(loop), data_(data) {}

  bool exact() const noexcept { return loop_ != nullptr; }
  // values[i] = 2 ** values[i], in place.
  void apply(double* values, std::size_t n) const;

 private:
  PowerLoop loop_ = nullptr;
  void* data_ = nullptr;
};

}  // namespace laserguard
