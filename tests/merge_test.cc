// The merge pipeline over in-memory mailboxes: ordering, dedupe, selection, faults.
#include "engine/merge.h"

#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "formats/memory/memory.h"

namespace mbx {
namespace {

using memory::MemorySink;
using memory::MemorySource;

Message M(std::string folder, std::string mime, UnixTime delivered = 0) {
  Message m;
  m.folder = std::move(folder);
  m.mime = std::move(mime);
  m.container_delivered = delivered;
  return m;
}

std::string Mail(int n, const std::string& trace = "", const std::string& subject = "") {
  return trace + "From: sender" + std::to_string(n % 7) + "@example.com\nSubject: " +
         (subject.empty() ? "message " + std::to_string(n) : subject) +
         "\nDate: Mon, 2 Jan 2023 10:00:00 +0000\nMessage-ID: <" + std::to_string(n) + "@x>\n\nbody " +
         std::to_string(n) + "\n";
}

std::vector<std::string> Flatten(const MemorySink& sink) {
  std::vector<std::string> out;
  for (const auto& [folder, msgs] : sink.durable()) {
    for (const auto& m : msgs) out.push_back(folder + "|" + m.mime);
  }
  return out;
}

RunReport Merge(std::vector<Message> a, std::vector<Message> b, MemorySink* sink, MergeOptions opt) {
  MemorySource sa(std::move(a), "memory:a"), sb(std::move(b), "memory:b");
  std::vector<MailboxSource*> sources{&sa, &sb};
  return RunMerge(sources, sink, opt);
}

TEST(MergeTest, DuplicatesAcrossSourcesAndTargetAreSkippedOnce) {
  std::vector<Message> a, b;
  for (int i = 0; i < 100; ++i) a.push_back(M(i % 3 ? "" : "Projects", Mail(i, "Received: a\n")));
  for (int i = 80; i < 150; ++i) b.push_back(M(i % 3 ? "" : "Projects", Mail(i, "Received: b\nDelivered-To: x\n")));
  MemorySink sink;
  sink.Preload("", Mail(1, "Received: earlier\n"));  // already in the target
  MergeOptions opt;
  opt.jobs = 3;
  opt.batch_messages = 7;
  RunReport r = Merge(a, b, &sink, opt);
  FolderCounts t = r.Total();
  EXPECT_EQ(t.read, 170u);
  EXPECT_EQ(t.duplicates, 21u);  // 20 overlapping + 1 already in the target
  EXPECT_EQ(t.written, 149u);
  EXPECT_EQ(r.ExitCode(), 0);
  EXPECT_EQ(r.existing_messages, 1u);
  size_t total = 0;
  for (const auto& [f, msgs] : sink.durable()) total += msgs.size();
  EXPECT_EQ(total, 150u);
  EXPECT_EQ(sink.durable().at("Projects").size(), 50u);
}

TEST(MergeTest, OutputIsIdenticalForAnyNumberOfJobs) {
  std::vector<Message> a, b;
  for (int i = 0; i < 300; ++i) a.push_back(M("F" + std::to_string(i % 4), Mail(i, "", "s" + std::to_string(i % 50))));
  for (int i = 0; i < 300; ++i) b.push_back(M("F" + std::to_string(i % 4), Mail(i * 2, "Received: y\n")));
  std::vector<std::string> first;
  for (int jobs : {1, 2, 5}) {
    MemorySink sink;
    MergeOptions opt;
    opt.jobs = jobs;
    opt.batch_messages = 13;
    Merge(a, b, &sink, opt);
    auto got = Flatten(sink);
    if (first.empty()) first = got;
    EXPECT_EQ(got, first) << "jobs=" << jobs;
  }
  EXPECT_FALSE(first.empty());
}

TEST(MergeTest, CopyModeWritesEverything) {
  std::vector<Message> a{M("", Mail(1)), M("", Mail(1))};
  MemorySink sink;
  MergeOptions opt;
  opt.mode = MergeMode::kCopy;
  RunReport r = Merge(a, {}, &sink, opt);
  EXPECT_EQ(r.Total().written, 2u);
  EXPECT_EQ(r.Total().duplicates, 0u);
}

TEST(MergeTest, FolderScopeVersusMailboxScope) {
  std::vector<Message> a{M("A", Mail(1)), M("B", Mail(1))};
  {
    MemorySink sink;
    RunReport r = Merge(a, {}, &sink, MergeOptions{});
    EXPECT_EQ(r.Total().written, 2u);
  }
  {
    MemorySink sink;
    MergeOptions opt;
    opt.scope = DedupeScope::kMailbox;
    RunReport r = Merge(a, {}, &sink, opt);
    EXPECT_EQ(r.Total().written, 1u);
    EXPECT_EQ(r.Total().duplicates, 1u);
  }
}

TEST(MergeTest, FoldersMapCaseInsensitivelyAndUnderTargetFolder) {
  MemorySink sink;
  sink.Preload("projects", Mail(1));
  MergeOptions opt;
  opt.existing_target_folders = {"", "projects"};
  Merge({M("Projects", Mail(1)), M("Projects", Mail(2)), M("PROJECTS/Sub", Mail(3))}, {}, &sink, opt);
  EXPECT_EQ(sink.durable().at("projects").size(), 2u);  // the duplicate was found there
  EXPECT_EQ(sink.durable().count("Projects"), 0u);
  EXPECT_EQ(sink.durable().count("PROJECTS/Sub"), 1u);

  MemorySink sink2;
  MergeOptions opt2;
  opt2.target_folder = "Recovered";
  Merge({M("", Mail(1)), M("Inbox/X", Mail(2))}, {}, &sink2, opt2);
  EXPECT_EQ(sink2.durable().count("Recovered"), 1u);
  EXPECT_EQ(sink2.durable().count("Recovered/Inbox/X"), 1u);
}

TEST(MergeTest, SingleFolderTargetTakesEveryFolder) {
  MemorySink sink(/*single_folder=*/true);
  RunReport r = Merge({M("A", Mail(1)), M("B/C", Mail(2)), M("B/C", Mail(1))}, {}, &sink, MergeOptions{});
  EXPECT_TRUE(r.single_folder_target);
  ASSERT_EQ(sink.durable().size(), 1u);
  EXPECT_EQ(sink.durable().at("").size(), 2u);  // the same message in two folders is one message here
  EXPECT_NE(r.Summary().find("single mbox"), std::string::npos);
}

TEST(MergeTest, SelectionByDateSubjectAndFolder) {
  std::vector<Message> a{M("Inbox", Mail(1, "", "Budget 2023"), 1672531200 /*2023-01-01*/),
                         M("Inbox", Mail(2, "", "lunch"), 1672531200),
                         M("Inbox", Mail(3, "", "BUDGET old"), 1500000000),
                         M("Inbox/Projects", Mail(4, "", "budget plan"), 1680000000),
                         M("Trash", Mail(5, "", "budget"), 1680000000)};
  MemorySink sink;
  MergeOptions opt;
  opt.selection.since = 1672531200;
  opt.selection.subjects = {"budget"};
  opt.selection.exclude_folder_globs = {"trash"};
  RunReport r = Merge(a, {}, &sink, opt);
  EXPECT_EQ(r.Total().read, 4u);  // Trash is not even read
  EXPECT_EQ(r.Total().written, 2u);
  EXPECT_EQ(r.Total().not_selected, 2u);
}

TEST(MergeTest, UnreadableMessageIsReportedAndTheRunGoesOn) {
  Message bad = M("", "");
  bad.read_error = Status::Corruption("truncated");
  bad.origin = "memory:a message 2";
  MemorySink sink;
  RunReport r = Merge({M("", Mail(1)), bad, M("", Mail(3))}, {}, &sink, MergeOptions{});
  EXPECT_EQ(r.Total().written, 2u);
  EXPECT_EQ(r.Total().failed, 1u);
  ASSERT_EQ(r.failures.size(), 1u);
  EXPECT_EQ(r.failures[0].origin, "memory:a message 2");
  EXPECT_EQ(r.ExitCode(), 1);
  EXPECT_NE(r.ToJson().find("truncated"), std::string::npos);
}

TEST(MergeTest, FailedStageDoesNotMakeALaterCopyADuplicate) {
  MemorySink sink;
  sink.FailStageAt(1);
  RunReport r = Merge({M("", Mail(1))}, {M("", Mail(1, "Received: again\n"))}, &sink, MergeOptions{});
  EXPECT_EQ(r.Total().failed, 1u);
  EXPECT_EQ(r.Total().written, 1u);  // the second copy is carried
  EXPECT_EQ(r.Total().duplicates, 0u);
}

TEST(MergeTest, FailedFlushIsFatalAndNothingCountsAsWritten) {
  MemorySink sink;
  sink.FailFlushAt(2);
  std::vector<Message> a;
  for (int i = 0; i < 30; ++i) a.push_back(M("", Mail(i)));
  MergeOptions opt;
  opt.batch_messages = 10;
  RunReport r = Merge(a, {}, &sink, opt);
  EXPECT_EQ(r.ExitCode(), 3);
  EXPECT_EQ(r.Total().written, 10u);  // only the first batch is durable
  EXPECT_EQ(sink.durable().at("").size(), 10u);
  EXPECT_FALSE(r.fatal.empty());
}

// A sink that flushes behind the caller, as the mbox sink does with a writer
// thread: StartFlush() takes the staged batch, FinishFlush() makes it durable
// or fails, dropping it and whatever was staged since.
class BehindSink : public MemorySink {
 public:
  explicit BehindSink(int fail_finish_at = 0) : fail_finish_at_(fail_finish_at) {}
  Status Stage(const Message& msg, std::string_view) override {
    auto mime = msg.Mime();
    if (!mime.ok()) return mime.status();
    if (flushing_) ++staged_during_flush_;
    staged_.emplace_back(*mime);
    return Status::Ok();
  }
  Status StartFlush() override {
    EXPECT_FALSE(flushing_) << "a flush started before the last one finished";
    batch_ = std::move(staged_);
    staged_.clear();
    flushing_ = true;
    return Status::Ok();
  }
  Status FinishFlush() override {
    if (!flushing_) return Status::Ok();
    flushing_ = false;
    if (++finishes_ == fail_finish_at_) {
      batch_.clear();
      staged_.clear();
      return Status::IOError("the disk went away");
    }
    durable_.insert(durable_.end(), batch_.begin(), batch_.end());
    batch_.clear();
    return Status::Ok();
  }
  Status Flush() override {
    MBX_RETURN_IF_ERROR(FinishFlush());
    MBX_RETURN_IF_ERROR(StartFlush());
    return FinishFlush();
  }
  void Rollback() override { staged_.clear(); }
  Status Close() override { return Flush(); }

  const std::vector<std::string>& durable_mime() const { return durable_; }
  int staged_during_flush() const { return staged_during_flush_; }

 private:
  int fail_finish_at_;
  bool flushing_ = false;
  int finishes_ = 0;
  int staged_during_flush_ = 0;
  std::vector<std::string> staged_, batch_, durable_;
};

// --jobs 2: the next batch is staged while the last one is being flushed,
// and nothing counts as written before its flush has finished.
TEST(MergeTest, NextBatchIsStagedWhileTheLastIsFlushed) {
  std::vector<Message> a;
  for (int i = 0; i < 30; ++i) a.push_back(M("", Mail(i)));
  a.push_back(M("", Mail(3)));  // a duplicate of a message in the first batch
  BehindSink sink;
  MergeOptions opt;
  opt.batch_messages = 10;
  opt.jobs = 2;
  RunReport r = Merge(a, {}, &sink, opt);
  EXPECT_EQ(r.ExitCode(), 0) << r.fatal;
  EXPECT_EQ(r.Total().written, 30u);
  EXPECT_EQ(r.Total().duplicates, 1u);
  EXPECT_EQ(sink.durable_mime().size(), 30u);
  EXPECT_EQ(sink.staged_during_flush(), 20);  // batches 2 and 3
}

// A flush that fails when it finishes takes the batch staged since with it:
// both fail, neither counts as written, the run stops.
TEST(MergeTest, AFlushFailingBehindFailsItsBatchAndTheNext) {
  std::vector<Message> a;
  for (int i = 0; i < 40; ++i) a.push_back(M("", Mail(i)));
  BehindSink sink(/*fail_finish_at=*/2);
  MergeOptions opt;
  opt.batch_messages = 10;
  opt.jobs = 2;
  RunReport r = Merge(a, {}, &sink, opt);
  EXPECT_EQ(r.ExitCode(), 3);
  EXPECT_FALSE(r.fatal.empty());
  EXPECT_NE(r.fatal.find("the disk went away"), std::string::npos) << r.fatal;
  EXPECT_EQ(r.Total().written, 10u);
  EXPECT_EQ(r.Total().failed, 20u);  // batch 2, and batch 3 staged behind it
  EXPECT_EQ(sink.durable_mime().size(), 10u);
  EXPECT_EQ(r.failures.size(), 20u);
}

TEST(MergeTest, HugeMessagesDoNotDeadlockTheInflightBudget) {
  std::vector<Message> a;
  for (int i = 0; i < 20; ++i) a.push_back(M("", Mail(i) + std::string(1 << 16, 'x')));
  MemorySink sink;
  MergeOptions opt;
  opt.max_inflight_bytes = 1000;  // smaller than any one message
  opt.jobs = 4;
  RunReport r = Merge(a, {}, &sink, opt);
  EXPECT_EQ(r.Total().written, 20u);
}

// A native message that remembers whether its MIME form was rendered.
class RenderedNative : public NativeMessage {
 public:
  explicit RenderedNative(std::string mime) : mime_(std::move(mime)) {}
  std::string_view Kind() const override { return "test"; }
  Result<std::string> ToMime() const override {
    rendered_ = true;
    return mime_;
  }
  bool rendered() const { return rendered_; }

 private:
  std::string mime_;
  mutable std::atomic<bool> rendered_{false};
};

// A sink that writes native messages from their native form (as the PST sink
// does a PST source's), so needs no MIME for them. Counts the native
// messages whose MIME the engine had rendered before Stage().
class NativeSink : public MemorySink {
 public:
  bool NeedsMime(const Message& msg) const override { return msg.IsMime(); }
  Status Stage(const Message& msg, std::string_view folder) override {
    if (static_cast<const RenderedNative&>(*msg.native).rendered()) ++rendered_before_stage;
    return MemorySink::Stage(msg, folder);
  }
  int rendered_before_stage = 0;
};

TEST(MergeTest, NativeMessagesAreRenderedOnlyWhenSomethingNeedsMime) {
  auto run = [](DedupeRule dedupe, Selection sel, int* rendered) {
    std::vector<Message> a;
    for (int i = 0; i < 40; ++i) {
      Message m;
      m.native = std::make_shared<RenderedNative>(Mail(i % 30));
      a.push_back(std::move(m));
    }
    NativeSink sink;
    MergeOptions opt;
    opt.jobs = 2;
    opt.dedupe = dedupe;
    opt.selection = std::move(sel);
    RunReport r = Merge(a, {}, &sink, opt);
    *rendered = sink.rendered_before_stage;
    return r.Total().written;
  };
  int rendered = -1;
  EXPECT_EQ(run(DedupeRule::kNone, {}, &rendered), 40u);
  EXPECT_EQ(rendered, 0);  // nothing needed MIME
  EXPECT_EQ(run(DedupeRule::kMessageId, {}, &rendered), 30u);
  EXPECT_EQ(rendered, 30);  // dedupe does
  Selection since;
  since.since = 0;
  EXPECT_EQ(run(DedupeRule::kNone, since, &rendered), 40u);
  EXPECT_EQ(rendered, 40);  // so does a date criterion
}

// A sink that converts on the engine's workers (as the PST sink does): the
// committer stages what Convert() made; a message Convert() cannot convert
// fails alone, with its reason, and the run goes on.
class ConvertingSink : public MemorySink {
 public:
  struct Form : SinkForm {
    std::thread::id made_on;
    size_t SizeHint() const override { return 1; }
  };
  Status Convert(Message* msg) const override {
    if (msg->mime.find("Subject: message 13\n") != std::string::npos)
      return Status::Corruption("cannot convert message 13");
    auto form = std::make_shared<Form>();
    form->made_on = std::this_thread::get_id();
    msg->sink_form = std::move(form);
    return Status::Ok();
  }
  Status Stage(const Message& msg, std::string_view folder) override {
    const auto* form = dynamic_cast<const Form*>(msg.sink_form.get());
    if (form == nullptr) {
      ++unconverted;
    } else if (form->made_on != std::this_thread::get_id()) {
      ++converted_elsewhere;
    }
    return MemorySink::Stage(msg, folder);
  }
  int unconverted = 0, converted_elsewhere = 0;
};

TEST(MergeTest, SinkConvertsOnTheWorkersAndAFailedConversionFailsOneMessage) {
  std::vector<Message> a;
  for (int i = 0; i < 50; ++i) a.push_back(M("", Mail(i)));
  ConvertingSink sink;
  MergeOptions opt;
  opt.jobs = 2;
  RunReport r = Merge(a, {}, &sink, opt);
  EXPECT_EQ(r.Total().written, 49u);
  EXPECT_EQ(r.Total().failed, 1u);
  ASSERT_EQ(r.failures.size(), 1u);
  EXPECT_NE(r.failures[0].reason.find("cannot convert message 13"), std::string::npos);
  EXPECT_EQ(sink.unconverted, 0);
  EXPECT_EQ(sink.converted_elsewhere, 49);  // not on the committer's thread
}

TEST(MergeTest, DryRunCountsButWritesNothing) {
  auto existing = std::make_unique<MemorySource>(std::vector<Message>{M("", Mail(1))});
  auto sink = NewDryRunSink(std::move(existing), "memory:dry", false);
  MergeOptions opt;
  opt.dry_run = true;
  MemorySource a({M("", Mail(1)), M("", Mail(2))});
  std::vector<MailboxSource*> sources{&a};
  RunReport r = RunMerge(sources, sink.get(), opt);
  EXPECT_EQ(r.Total().duplicates, 1u);
  EXPECT_EQ(r.Total().written, 1u);
  EXPECT_NE(r.Summary().find("DRY RUN"), std::string::npos);
}

}  // namespace
}  // namespace mbx
