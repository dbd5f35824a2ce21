#include "engine/faultpoint.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

namespace mbx::fault {
namespace internal {

std::atomic<int> g_state{kUnknown};

namespace {

struct Config {
  bool armed = false;
  std::string crash_at;  // "" = never crash, only list
  uint64_t nth = 1;
  int list_fd = -1;
};

// Read once: the environment does not change under a running merge.
const Config& GetConfig() {
  static const Config config = [] {
    Config c;
    if (const char* at = std::getenv("MBXMERGE_CRASH_AT"); at && *at) {
      c.crash_at = at;
      size_t colon = c.crash_at.rfind(':');
      if (colon != std::string::npos && colon + 1 < c.crash_at.size() &&
          c.crash_at.find_first_not_of("0123456789", colon + 1) == std::string::npos) {
        c.nth = std::strtoull(c.crash_at.c_str() + colon + 1, nullptr, 10);
        c.crash_at.resize(colon);
      }
      c.armed = true;
    }
    if (const char* list = std::getenv("MBXMERGE_CRASH_LIST"); list && *list) {
      c.list_fd = ::open(list, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
      if (c.list_fd >= 0) c.armed = true;
    }
    return c;
  }();
  return config;
}

std::atomic<uint64_t> g_hits{0};

}  // namespace

void Reached(const char* name) {
  const Config& c = GetConfig();
  if (!c.armed) {
    g_state.store(kOff, std::memory_order_relaxed);
    return;
  }
  g_state.store(kOn, std::memory_order_relaxed);
  if (c.list_fd >= 0) {
    // One write() with O_APPEND: lines of concurrent points never interleave.
    std::string line = std::string(name) + "\n";
    (void)!::write(c.list_fd, line.data(), line.size());
  }
  if (!c.crash_at.empty() && c.crash_at == name &&
      g_hits.fetch_add(1, std::memory_order_relaxed) + 1 == c.nth) {
    ::kill(::getpid(), SIGKILL);
    ::pause();  // SIGKILL is delivered before kill() returns; never go on past the point
  }
}

}  // namespace internal
}  // namespace mbx::fault
