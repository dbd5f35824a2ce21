// The mbox sink's writer thread (--jobs > 1) under load: batches whose spills
// and flushes run behind the caller while it stages the next messages, one
// batch rolled back. Built under ThreadSanitizer too (with the engine only:
// see tests/CMakeLists.txt), where it is the check that the sink's hand-over
// to its writer is race-free.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "engine/mailbox.h"
#include "formats/mbox/mbox.h"

namespace mbx::mbox {
namespace {

class ScratchDir {
 public:
  ScratchDir() {
    char tmpl[] = "/tmp/mbx-writer-XXXXXX";
    path_ = ::mkdtemp(tmpl) ? tmpl : "";
  }
  ~ScratchDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

Message Mail(int n, size_t body_bytes) {
  Message m;
  m.mime = "Subject: " + std::to_string(n) + "\n\n" + std::string(body_bytes, 'a' + n % 26) + "\n";
  return m;
}

TEST(MboxWriter, BatchesFlushedBehindLandWholeAndInOrder) {
  ScratchDir dir;
  ASSERT_FALSE(dir.path().empty());
  const std::string path = dir.path() + "/out.mbox";
  auto opened = OpenSink(path, SinkOptions{});
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  std::unique_ptr<MailboxSink> sink = std::move(opened).value();
  sink->SetWriteThreads(2);

  std::mt19937 rng(11);
  std::vector<int> want;
  int n = 0;
  bool in_flight = false;
  for (int batch = 0; batch < 12; ++batch) {
    std::vector<int> staged;
    for (int k = 0, count = 1 + static_cast<int>(rng() % 6); k < count; ++k) {
      // Now and then a message past the 1 MiB spill size: a spill starts
      // (or, while the writer is busy, staging goes on up to 4 MiB).
      size_t bytes = rng() % 4 == 0 ? (1u << 20) + rng() % (3u << 20) : rng() % 30000;
      ASSERT_TRUE(sink->Stage(Mail(n, bytes), "").ok()) << n;
      staged.push_back(n++);
    }
    if (batch == 7) {
      // Rolled back, after the batch before has finished.
      if (in_flight) {
        ASSERT_TRUE(sink->FinishFlush().ok());
      }
      in_flight = false;
      sink->Rollback();
      continue;
    }
    if (in_flight) {
      ASSERT_TRUE(sink->FinishFlush().ok()) << batch;
    }
    ASSERT_TRUE(sink->StartFlush().ok()) << batch;
    in_flight = true;
    want.insert(want.end(), staged.begin(), staged.end());
  }
  ASSERT_TRUE(sink->Close().ok());  // finishes the last flush

  auto source = OpenSource(path);
  ASSERT_TRUE(source.ok()) << source.status().ToString();
  std::vector<int> got;
  Message m;
  for (;;) {
    auto more = (*source)->Next(&m);
    ASSERT_TRUE(more.ok()) << more.status().ToString();
    if (!*more) break;
    auto mime = m.Mime();
    ASSERT_TRUE(mime.ok());
    got.push_back(std::stoi(std::string(mime->substr(9, mime->find('\n') - 9))));
  }
  EXPECT_EQ(got, want);
  EXPECT_FALSE(std::filesystem::exists(path + ".mbxmerge-undo"));
}

}  // namespace
}  // namespace mbx::mbox
