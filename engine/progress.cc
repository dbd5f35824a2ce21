#include "engine/progress.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>

namespace mbx {

ProgressBar::ProgressBar(bool enabled, uint64_t total_bytes, std::string label)
    : enabled_(enabled), total_bytes_(total_bytes), label_(std::move(label)),
      start_(std::chrono::steady_clock::now()) {}

ProgressBar::~ProgressBar() { Finish(); }

std::string ProgressBar::Render(uint64_t messages, uint64_t bytes, uint64_t total_bytes, double seconds,
                                int width) {
  char buf[256];
  double mb = static_cast<double>(bytes) / 1e6;
  double rate = seconds > 0 ? mb / seconds : 0;
  std::string out;
  if (total_bytes > 0) {
    double frac = std::min(1.0, static_cast<double>(bytes) / static_cast<double>(total_bytes));
    int bar = std::max(10, std::min(40, width - 60));
    int filled = static_cast<int>(frac * bar);
    // append() rather than operator+: GCC 12 -O3 warns falsely (-Wrestrict) on the latter.
    out.append(1, '[');
    out.append(static_cast<size_t>(filled), '#');
    out.append(static_cast<size_t>(bar - filled), ' ');
    out.append(1, ']');
    std::snprintf(buf, sizeof buf, " %3d%%", static_cast<int>(frac * 100));
    out += buf;
  }
  std::snprintf(buf, sizeof buf, "  %llu msgs  %.1f MB  %.1f MB/s", static_cast<unsigned long long>(messages), mb,
                rate);
  out += buf;
  if (total_bytes > 0 && rate > 0 && bytes < total_bytes) {
    auto eta = static_cast<long long>(static_cast<double>(total_bytes - bytes) / 1e6 / rate);
    std::snprintf(buf, sizeof buf, "  ETA %lld:%02lld", eta / 60, eta % 60);
    out += buf;
  }
  return out;
}

void ProgressBar::Update(uint64_t messages, uint64_t bytes) {
  if (!enabled_) return;
  auto now = std::chrono::steady_clock::now();
  std::lock_guard lock(mu_);
  if (drawn_ && now - last_draw_ < std::chrono::milliseconds(100)) return;
  last_draw_ = now;
  struct winsize ws = {};
  int width = ::ioctl(2, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0 ? ws.ws_col : 80;
  double secs = std::chrono::duration<double>(now - start_).count();
  std::string line = label_ + " " + Render(messages, bytes, total_bytes_, secs, width);
  if (static_cast<int>(line.size()) > width - 1) line.resize(static_cast<size_t>(std::max(0, width - 1)));
  std::fprintf(stderr, "\r%s\033[K", line.c_str());
  std::fflush(stderr);
  drawn_ = true;
}

void ProgressBar::Finish() {
  std::lock_guard lock(mu_);
  if (enabled_ && drawn_) {
    std::fprintf(stderr, "\r\033[K");
    std::fflush(stderr);
    drawn_ = false;
  }
}

}  // namespace mbx
