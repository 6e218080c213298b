#pragma once
// Whole-file replacement that a crash can never tear: a reader sees the old file or the new
// one. Used for model files and for the detector's persisted baseline state.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace laserguard {

// Writes to a unique temporary file in the same directory, fsyncs it, renames it over
// `path` and fsyncs the directory. I/O failures throw std::system_error carrying errno.
void write_file_atomically(const std::string& path, const std::uint8_t* data, std::size_t size);

// The whole file; std::system_error with errno if it cannot be opened or read.
std::vector<std::uint8_t> read_whole_file(const std::string& path);

}  // namespace laserguard
