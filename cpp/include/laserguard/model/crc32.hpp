#pragma once
// CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320), identical to zlib.crc32,
// so any third-party reader can check model files with a stock library.
#include <cstddef>
#include <cstdint>

namespace laserguard {

std::uint32_t crc32(const std::uint8_t* data, std::size_t size, std::uint32_t crc = 0) noexcept;

}  // namespace laserguard
