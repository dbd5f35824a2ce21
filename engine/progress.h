// \brief A progress bar for long runs: messages, MB, rate and ETA on a TTY.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>

namespace mbx {

class ProgressBar {
 public:
  // Draws on stderr only when `enabled` (the CLI passes isatty(2) && !quiet).
  // `total_bytes` may be 0 when unknown (no percentage, no ETA then).
  ProgressBar(bool enabled, uint64_t total_bytes, std::string label);
  ~ProgressBar();
  // Thread-safe; redraws at most ten times a second.
  void Update(uint64_t messages, uint64_t bytes);
  // Clears the bar line.
  void Finish();

  // The text of one frame, for tests: "[#####     ]  50%  1200 msgs  12.0 MB  3.1 MB/s  ETA 0:04".
  static std::string Render(uint64_t messages, uint64_t bytes, uint64_t total_bytes, double seconds,
                            int width);

 private:
  bool enabled_;
  uint64_t total_bytes_;
  std::string label_;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_draw_{};
  std::mutex mu_;
  bool drawn_ = false;
};

}  // namespace mbx
