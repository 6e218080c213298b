#pragma once
// Little-endian load/store of fixed-width values at arbitrary (unaligned) addresses.
// memcpy keeps this free of aliasing and alignment UB; the byte swap only exists on
// big-endian hosts, so on x86/ARM-LE these compile to plain moves.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <iterator>
#include <type_traits>

namespace laserguard {

inline bool host_is_little_endian() noexcept {
  const std::uint16_t probe = 1;
  std::uint8_t first = 0;
  std::memcpy(&first, &probe, 1);
  return first == 1;
}

template <typename T>
inline void store_le(std::uint8_t* dst, T value) noexcept {
  static_assert(std::is_arithmetic_v<T>);
  std::uint8_t raw[sizeof(T)];
  std::memcpy(raw, &value, sizeof(T));
  if constexpr (sizeof(T) > 1) {
    if (!host_is_little_endian()) std::reverse(std::begin(raw), std::end(raw));
  }
  std::memcpy(dst, raw, sizeof(T));
}

template <typename T>
inline T load_le(const std::uint8_t* src) noexcept {
  static_assert(std::is_arithmetic_v<T>);
  std::uint8_t raw[sizeof(T)];
  std::memcpy(raw, src, sizeof(T));
  if constexpr (sizeof(T) > 1) {
    if (!host_is_little_endian()) std::reverse(std::begin(raw), std::end(raw));
  }
  T value;
  std::memcpy(&value, raw, sizeof(T));
  return value;
}

// Bulk copies of arrays: one memcpy on little-endian hosts, element-wise swap otherwise.
template <typename T>
inline void store_le_array(std::uint8_t* dst, const T* src, std::size_t count) noexcept {
  if (count == 0) return;
  if (host_is_little_endian()) {
    std::memcpy(dst, src, count * sizeof(T));
  } else {
    for (std::size_t i = 0; i < count; ++i) store_le(dst + i * sizeof(T), src[i]);
  }
}

template <typename T>
inline void load_le_array(T* dst, const std::uint8_t* src, std::size_t count) noexcept {
  if (count == 0) return;
  if (host_is_little_endian()) {
    std::memcpy(dst, src, count * sizeof(T));
  } else {
    for (std::size_t i = 0; i < count; ++i) dst[i] = load_le<T>(src + i * sizeof(T));
  }
}

}  // namespace laserguard
