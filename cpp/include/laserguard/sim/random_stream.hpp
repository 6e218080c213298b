#pragma once
// Seeded pseudo-random streams with a fixed algorithm (xoshiro256**, seeded through
// splitmix64) and our own normal transform, so the same seed gives the same numbers bit
// for bit with any compiler or standard library (std::normal_distribution does not).
#include <cmath>
#include <cstdint>

namespace laserguard {

inline std::uint64_t splitmix64(std::uint64_t& state) noexcept {
  std::uint64_t z = (state += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

class RandomStream {
 public:
  // Independent streams for (seed, a, b, c): e.g. (seed, lcc, unit, purpose).
  explicit RandomStream(std::uint64_t seed, std::uint64_t a = 0, std::uint64_t b = 0, std::uint64_t c = 0) noexcept {
    std::uint64_t sm = seed;
    for (const std::uint64_t salt : {a, b, c}) {
      sm ^= splitmix64(sm) + salt * 0xD1B54A32D192ED03ULL;
    }
    for (auto& word : s_) word = splitmix64(sm);
  }

  std::uint64_t next_u64() noexcept {
    const std::uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const std::uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }

  // Uniform in [0, 1) with 53 random bits.
  double uniform() noexcept { return static_cast<double>(next_u64() >> 11) * 0x1.0p-53; }
  double uniform(double lo, double hi) noexcept { return lo + (hi - lo) * uniform(); }
  std::uint64_t below(std::uint64_t n) noexcept { return n == 0 ? 0 : next_u64() % n; }

  // Standard normal by Box-Muller (the spare value is kept, so draws come in pairs).
  double normal() noexcept {
    if (has_spare_) {
      has_spare_ = false;
      return spare_;
    }
    const double u1 = 1.0 - uniform();  // (0, 1]: log is finite
    const double u2 = uniform();
    const double r = std::sqrt(-2.0 * std::log(u1));
    const double angle = 6.283185307179586 * u2;
    spare_ = r * std::sin(angle);
    has_spare_ = true;
    return r * std::cos(angle);
  }

 private:
  static std::uint64_t rotl(std::uint64_t x, int k) noexcept { return (x << k) | (x >> (64 - k)); }
  std::uint64_t s_[4]{};
  double spare_ = 0.0;
  bool has_spare_ = false;
};

}  // namespace laserguard
