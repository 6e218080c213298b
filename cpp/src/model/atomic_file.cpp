#include "laserguard/model/atomic_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <system_error>

namespace laserguard {
namespace {

[[noreturn]] void fail_io(int err, const std::string& what) {
  throw std::system_error(err, std::generic_category(), what);
}

std::string directory_of(const std::string& path) {
  const auto slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

}  // namespace

void write_file_atomically(const std::string& path, const std::uint8_t* data, std::size_t size) {
  // A unique temporary in the target's directory, so concurrent writers never share one
  // and the final rename stays within one filesystem (atomic).
  std::string tmp = path + ".tmp.XXXXXX";
  const int fd = ::mkstemp(tmp.data());
  if (fd < 0) fail_io(errno, "cannot create '" + tmp + "'");
  std::size_t written = 0;
  while (written < size) {
    const ssize_t n = ::write(fd, data + written, size - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int err = n < 0 ? errno : EIO;
      ::close(fd);
      ::unlink(tmp.c_str());
      fail_io(err, "failed writing '" + tmp + "'");
    }
    written += static_cast<std::size_t>(n);
  }
  if (::fsync(fd) != 0 || ::fchmod(fd, 0644) != 0) {
    const int err = errno;
    ::close(fd);
    ::unlink(tmp.c_str());
    fail_io(err, "failed writing '" + tmp + "'");
  }
  if (::close(fd) != 0 || std::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    fail_io(err, "cannot replace '" + path + "' with '" + tmp + "'");
  }
  // The rename itself is durable only once the directory entry is on disk.
  const int dir = ::open(directory_of(path).c_str(), O_RDONLY | O_DIRECTORY);
  if (dir >= 0) {
    ::fsync(dir);
    ::close(dir);
  }
}

std::vector<std::uint8_t> read_whole_file(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) fail_io(errno, "cannot open '" + path + "'");
  std::vector<std::uint8_t> bytes((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  if (file.bad()) fail_io(errno ? errno : EIO, "failed reading '" + path + "'");
  return bytes;
}

}  // namespace laserguard
