#pragma once
// lcc-sim's stderr log: a level threshold and printf-style lines "lcc-sim LEVEL: ...".
#include <cstdio>

namespace lcc_sim {

enum class LogLevel { kDebug = 0, kInfo, kWarning, kError };

// Set once from the command line before the loop starts.
inline LogLevel g_log_level = LogLevel::kInfo;

template <typename... Args>
void log(LogLevel level, const char* format, Args... args) {
  if (level < g_log_level) return;
  static const char* names[] = {"DEBUG", "INFO", "WARNING", "ERROR"};
  std::fprintf(stderr, "lcc-sim %s: ", names[static_cast<int>(level)]);
  if constexpr (sizeof...(Args) == 0) {
    std::fputs(format, stderr);
  } else {
    std::fprintf(stderr, format, args...);
  }
  std::fputc('\n', stderr);
}

}  // namespace lcc_sim
