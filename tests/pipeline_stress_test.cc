// The merge pipeline's threads under load: many workers, a tiny in-flight
// budget, failures, a fatal flush and a cancel from another thread. Every run
// must give the same result as one job. Built and run under ThreadSanitizer by
// `make test` (with the other pipeline tests), where a data race fails the run.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "engine/merge.h"
#include "formats/memory/memory.h"

namespace mbx {
namespace {

using memory::MemorySink;
using memory::MemorySource;

Message Msg(const std::string& folder, int n, const std::string& trace) {
  Message m;
  m.folder = folder;
  // Sizes vary from a few bytes of body to several KiB, so back-pressure and
  // the reorder buffer see both many small and a few large messages.
  m.mime = trace + "From: s" + std::to_string(n % 11) + "@example.com\nSubject: stress " +
           std::to_string(n) + "\nMessage-ID: <" + std::to_string(n) + "@stress>\n\n" +
           std::string(static_cast<size_t>(n % 97) * 53, 'b') + "\n";
  return m;
}

// Two overlapping sources over four folders, every seventh message unreadable.
struct Workload {
  std::vector<Message> a, b;
  Workload() {
    for (int i = 0; i < 600; ++i) {
      Message m = Msg("F" + std::to_string(i % 4), i, "Received: a\n");
      if (i % 7 == 3) {
        m.read_error = Status::Corruption("cannot read message " + std::to_string(i));
        m.origin = "memory:a message " + std::to_string(i);
      }
      a.push_back(std::move(m));
    }
    for (int i = 400; i < 900; ++i)
      b.push_back(Msg("F" + std::to_string(i % 4), i, "Received: b\n"));
  }
};

struct Outcome {
  std::vector<std::string> stored;  // folder|mime, in commit order
  FolderCounts total;
  int exit_code = 0;
};

[[nodiscard]] Outcome RunWorkload(const Workload& w, MergeOptions opt, MemorySink* sink) {
  MemorySource sa(w.a, "memory:a"), sb(w.b, "memory:b");
  std::vector<MailboxSource*> sources{&sa, &sb};
  RunReport r = RunMerge(sources, sink, opt);
  Outcome out;
  for (const auto& [folder, msgs] : sink->durable()) {
    for (const auto& m : msgs) out.stored.push_back(folder + "|" + m.mime);
  }
  out.total = r.Total();
  out.exit_code = r.ExitCode();
  return out;
}

TEST(PipelineStressTest, ManyWorkersAndATinyBudgetGiveTheSingleJobResult) {
  Workload w;
  MergeOptions base;
  base.batch_messages = 17;
  MemorySink one_sink;
  base.jobs = 1;
  Outcome one = RunWorkload(w, base, &one_sink);
  ASSERT_GT(one.total.failed, 0u);
  ASSERT_GT(one.total.duplicates, 0u);
  for (int jobs : {2, 3, 8}) {
    for (size_t budget : {size_t{1}, size_t{4096}, size_t{1} << 20}) {
      MergeOptions opt = base;
      opt.jobs = jobs;
      opt.max_inflight_bytes = budget;
      std::atomic<uint64_t> calls{0}, last{0};
      bool monotonic = true;
      // The committer calls progress; counts must only grow.
      opt.progress = [&](uint64_t done, uint64_t) {
        if (done < last.load()) monotonic = false;
        last = done;
        ++calls;
      };
      MemorySink sink;
      Outcome got = RunWorkload(w, opt, &sink);
      SCOPED_TRACE("jobs=" + std::to_string(jobs) + " budget=" + std::to_string(budget));
      EXPECT_EQ(got.stored, one.stored);
      EXPECT_EQ(got.total.written, one.total.written);
      EXPECT_EQ(got.total.duplicates, one.total.duplicates);
      EXPECT_EQ(got.total.failed, one.total.failed);
      EXPECT_EQ(got.exit_code, one.exit_code);
      EXPECT_TRUE(monotonic);
      EXPECT_GT(calls.load(), 0u);
    }
  }
}

TEST(PipelineStressTest, FatalFlushStopsEveryThreadAndKeepsOnlyDurableBatches) {
  Workload w;
  for (int jobs : {2, 8}) {
    MemorySink sink;
    sink.FailFlushAt(3);
    MergeOptions opt;
    opt.jobs = jobs;
    opt.batch_messages = 25;
    opt.max_inflight_bytes = 2048;
    Outcome got = RunWorkload(w, opt, &sink);
    EXPECT_EQ(got.exit_code, 3) << "jobs=" << jobs;
    // Two good flushes of 25 messages each; the third batch was lost with the
    // failed flush and is not counted as written.
    EXPECT_EQ(got.stored.size(), 50u);
    EXPECT_EQ(got.total.written, 50u);
  }
}

TEST(PipelineStressTest, CancelFromAnotherThreadEndsCleanlyWithAPrefixOfTheFullRun) {
  Workload w;
  MemorySink full_sink;
  MergeOptions opt;
  opt.jobs = 1;
  opt.batch_messages = 9;
  (void)RunWorkload(w, opt, &full_sink);
  for (int round = 0; round < 4; ++round) {
    std::atomic<bool> cancel{false};
    opt.jobs = 4;
    opt.max_inflight_bytes = 512;
    opt.cancel = &cancel;
    std::atomic<uint64_t> seen{0};
    std::atomic<bool> finished{false};
    // Cancel after a varying amount of progress, from outside the pipeline.
    opt.progress = [&](uint64_t done, uint64_t) { seen = done; };
    std::thread canceller([&] {
      while (seen.load() < static_cast<uint64_t>(50 + 150 * round) && !finished.load()) {
        std::this_thread::sleep_for(std::chrono::microseconds(50));
      }
      cancel = true;
    });
    MemorySink sink;
    (void)RunWorkload(w, opt, &sink);
    finished = true;
    canceller.join();
    // In every folder, what was committed before the cancel is exactly the
    // start of what the full run committed there: nothing skipped, nothing doubled.
    for (const auto& [folder, msgs] : sink.durable()) {
      const auto& all = full_sink.durable().at(folder);
      ASSERT_LE(msgs.size(), all.size()) << folder;
      for (size_t i = 0; i < msgs.size(); ++i)
        EXPECT_EQ(msgs[i].mime, all[i].mime) << folder << " #" << i;
    }
  }
}

}  // namespace
}  // namespace mbx
