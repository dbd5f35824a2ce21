// \brief Private to the store commands: their per-mailbox merges, run
// several at a time.
#pragma once

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "engine/merge.h"

namespace mbx::recovery {

// The merges of a store command, a mailbox per thread on up to `jobs`
// threads; with fewer mailboxes than jobs, each merge gets the jobs left over
// (one big mailbox keeps all of them). With one thread the merges run on the
// caller's thread, when it asks for each, as they always did.
class MailboxMerges {
 public:
  using Task = std::function<bool(const MergeOptions&)>;
  MailboxMerges(size_t slots, int jobs, const MergeOptions& base)
      : tasks_(slots), base_(base), jobs_(std::max(1, jobs)) {}
  MailboxMerges(const MailboxMerges&) = delete;
  MailboxMerges& operator=(const MailboxMerges&) = delete;
  // An early return of the caller: merges not yet started are not started.
  ~MailboxMerges() {
    stop_ = true;
    for (auto& t : threads_) t.join();
  }

  void Add(size_t slot, Task task) {
    tasks_[slot].fn = std::move(task);
    order_.push_back(slot);
  }

  void Start() {
    if (order_.empty()) return;
    const size_t parallel = std::min(static_cast<size_t>(jobs_), order_.size());
    opts_ = base_;
    opts_.jobs = std::max(1, jobs_ / static_cast<int>(parallel));
    // The in-flight budget is shared, so memory stays what one merge takes.
    opts_.max_inflight_bytes =
        std::max<size_t>(base_.max_inflight_bytes / parallel, size_t{1} << 20);
    if (parallel == 1) return;
    for (size_t k = 0; k < parallel; ++k) threads_.emplace_back([this] { Loop(); });
  }

  // Whether Wait(slot) would return at once: the merge ran on a helper
  // thread and has finished (never with --jobs 1, where Wait() runs it).
  bool Finished(size_t slot) {
    if (threads_.empty()) return false;
    std::lock_guard<std::mutex> l(mu_);
    return tasks_[slot].done;
  }

  // The merge's result (true: merged), waiting for it if needed.
  bool Wait(size_t slot) {
    if (threads_.empty()) return tasks_[slot].fn(opts_);
    std::unique_lock<std::mutex> l(mu_);
    cv_.wait(l, [&] { return tasks_[slot].done; });
    return tasks_[slot].ok;
  }

 private:
  void Loop() {
    for (;;) {
      const size_t i = next_.fetch_add(1);
      if (i >= order_.size() || stop_) return;
      Slot& t = tasks_[order_[i]];
      const bool ok = t.fn(opts_);
      {
        std::lock_guard<std::mutex> g(mu_);
        t.ok = ok;
        t.done = true;
      }
      cv_.notify_all();
    }
  }

  struct Slot {
    Task fn;
    bool done = false, ok = false;
  };
  std::vector<Slot> tasks_;
  std::vector<size_t> order_;
  MergeOptions base_, opts_;
  int jobs_;
  std::vector<std::thread> threads_;
  std::atomic<size_t> next_{0};
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::condition_variable cv_;
};

}  // namespace mbx::recovery
