// The mbox (mboxrd) backend: splitting, quoting, flags, source/sink round trips,
// durability and locking, and agreement with formail and mblaze.
#include "formats/mbox/mbox.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/magic.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <algorithm>
#include <random>
#include <string>
#include <vector>

#include "engine/fs.h"
#include "formats/mbox/find.h"
#include "formats/mime/mime.h"
#include "tests/test_util.h"

namespace mbx::mbox {
namespace {

using mbx::testing::HaveProgram;
using mbx::testing::ReadFileOrDie;
using mbx::testing::TempDir;
using mbx::testing::WriteFileOrDie;

constexpr char kEpoch[] = "Thu Jan  1 00:00:00 1970";

// Date tests need the full MIME module (asctime parsing and formatting).
bool HaveRealDates() {
  auto t = mime::ParseDate("Tue Jul  1 08:52:37 2003");
  return t && *t == 1057049557 && mime::FormatAsctime(1057049557) == "Tue Jul  1 08:52:37 2003";
}

std::vector<Message> ReadAll(const std::string& path) {
  auto src = OpenSource(path);
  EXPECT_TRUE(src.ok()) << src.status().ToString();
  std::vector<Message> out;
  if (!src.ok()) return out;
  Message m;
  for (;;) {
    auto r = (*src)->Next(&m);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (!r.ok() || !*r) break;
    out.push_back(m);
  }
  return out;
}

std::unique_ptr<MailboxSink> SinkOrDie(const std::string& path) {
  auto s = OpenSink(path, SinkOptions{});
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  return s.ok() ? std::move(s).value() : nullptr;
}

Message Mime(std::string bytes, MessageFlags flags = 0) {
  Message m;
  m.mime = std::move(bytes);
  m.flags = flags;
  return m;
}

// The SIMD search against std::string_view::find: random text over the
// needles' own bytes (so near-misses abound), every start offset, needles at
// the very start and end, and haystacks around the 16-byte block size.
TEST(MboxFindBytes, AgreesWithStringFind) {
  std::mt19937 rng(7);
  constexpr std::string_view kAlphabet = "\nFrom >\rxm";
  const std::string_view needles[] = {"\nFrom ", "From ", ">From ", "Fr", "F", ""};
  int found = 0;
  for (int round = 0; round < 3000; ++round) {
    std::string hay(rng() % 70, 'x');
    for (char& c : hay) c = kAlphabet[rng() % kAlphabet.size()];
    for (std::string_view needle : needles) {
      if (rng() % 4 == 0 && hay.size() >= needle.size()) {  // plant one at an edge
        hay.replace(rng() % 2 ? 0 : hay.size() - needle.size(), needle.size(), needle);
      }
      for (size_t from = 0; from <= hay.size() + 1; ++from) {
        size_t want = std::string_view(hay).find(needle, from);
        ASSERT_EQ(internal::FindBytes(hay, needle, from), want)
            << "needle '" << needle << "' from " << from << " in '" << hay << "'";
        found += want != std::string_view::npos;
      }
    }
  }
  EXPECT_GT(found, 10000);  // the cases are not all misses
}

TEST(MboxSplit, FromInsideBodyDoesNotSplitWithoutEmptyLine) {
  std::string f = "From a@x " + std::string(kEpoch) + "\nSubject: 1\n\nbody\nFrom here on\n\n" +
                  "From b@x " + kEpoch + "\nSubject: 2\n\nx\n\n";
  auto e = Split(f);
  ASSERT_EQ(e.size(), 2u);
  EXPECT_EQ(e[0].stored, "Subject: 1\n\nbody\nFrom here on\n");
  EXPECT_EQ(e[0].from_line, "From a@x " + std::string(kEpoch));
  EXPECT_EQ(e[0].offset, 0u);
  EXPECT_EQ(e[1].stored, "Subject: 2\n\nx\n");
  EXPECT_EQ(e[1].offset, f.find("From b@x"));
}

TEST(MboxSplit, FromAfterEmptyLineInBodySplits) {
  std::string f = "From a@x " + std::string(kEpoch) + "\nS: 1\n\npara\n\nFrom x y\nmore\n";
  auto e = Split(f);
  ASSERT_EQ(e.size(), 2u);
  EXPECT_EQ(e[0].stored, "S: 1\n\npara\n");
  EXPECT_EQ(e[1].from_line, "From x y");
  EXPECT_EQ(e[1].stored, "more\n");
}

TEST(MboxSplit, Crlf) {
  std::string f = "From a@x " + std::string(kEpoch) + "\r\nS: 1\r\n\r\nb1\r\n\r\nFrom b@x " +
                  kEpoch + "\r\nS: 2\r\n\r\nb2\r\n\r\n";
  auto e = Split(f);
  ASSERT_EQ(e.size(), 2u);
  EXPECT_EQ(e[0].from_line, "From a@x " + std::string(kEpoch));
  EXPECT_EQ(e[0].stored, "S: 1\r\n\r\nb1\r\n");
  EXPECT_EQ(e[1].stored, "S: 2\r\n\r\nb2\r\n");
}

TEST(MboxSplit, NoTrailingNewlineAndEmptyMessages) {
  auto e = Split("From a x\nS: 1\n\nlast line");
  ASSERT_EQ(e.size(), 1u);
  EXPECT_EQ(e[0].stored, "S: 1\n\nlast line");
  e = Split("From a x\n\nFrom b x\n\nFrom c x");
  ASSERT_EQ(e.size(), 3u);
  EXPECT_EQ(e[0].stored, "");
  EXPECT_EQ(e[1].stored, "");
  EXPECT_EQ(e[2].from_line, "From c x");
  EXPECT_EQ(e[2].stored, "");
  EXPECT_TRUE(Split("").empty());
}

TEST(MboxSplit, JunkBeforeFirstFromLine) {
  std::string_view junk;
  auto e = Split("garbage\nmore\n\nFrom a x\nS: 1\n\nb\n", &junk);
  ASSERT_EQ(e.size(), 1u);
  EXPECT_EQ(junk, "garbage\nmore\n\n");
  Split("From a x\n\n", &junk);
  EXPECT_EQ(junk, "");
}

TEST(MboxSource, JunkIsCarriedAsFirstMessage) {
  TempDir tmp;
  WriteFileOrDie(tmp / "j.mbox", "Subject: lost?\n\njunk body\n\nFrom a@x " + std::string(kEpoch) +
                                     "\nSubject: real\n\nbody\n\n");
  auto msgs = ReadAll(tmp / "j.mbox");
  ASSERT_EQ(msgs.size(), 2u);
  EXPECT_EQ(msgs[0].mime, "Subject: lost?\n\njunk body\n");
  EXPECT_FALSE(msgs[0].read_error.has_value());
  EXPECT_EQ(msgs[0].origin, "mbox '" + (tmp / "j.mbox") + "' message 1 (offset 0)");
  EXPECT_EQ(msgs[1].mime, "Subject: real\n\nbody\n");
  EXPECT_EQ(msgs[1].envelope_sender, "a@x");
  EXPECT_EQ(msgs[1].origin, "mbox '" + (tmp / "j.mbox") + "' message 2 (offset 27)");

  // A file with no From_ line at all is one (malformed) message.
  WriteFileOrDie(tmp / "plain", "Subject: x\n\nno separator\n");
  msgs = ReadAll(tmp / "plain");
  ASSERT_EQ(msgs.size(), 1u);
  EXPECT_EQ(msgs[0].mime, "Subject: x\n\nno separator\n");
}

TEST(MboxSource, EmptyFile) {
  TempDir tmp;
  WriteFileOrDie(tmp / "e.mbox", "");
  auto src = OpenSource(tmp / "e.mbox");
  ASSERT_TRUE(src.ok());
  auto folders = (*src)->ListFolders();
  ASSERT_TRUE(folders.ok());
  ASSERT_EQ(folders->size(), 1u);
  EXPECT_EQ((*folders)[0].path, "");
  EXPECT_EQ((*folders)[0].messages, 0u);
  Message m;
  auto r = (*src)->Next(&m);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(*r);
}

TEST(MboxSource, EightBitAndNulBytesAndListFolders) {
  TempDir tmp;
  static constexpr char kBody[] = "S: \xe9t\xe9\n\nnul:\0:\xff\xfe\n";
  std::string body(kBody, sizeof kBody - 1);
  std::string f =
      "From a@x " + std::string(kEpoch) + "\n" + body + "\nFrom b@x " + kEpoch + "\nS: 2\n\nx\n\n";
  WriteFileOrDie(tmp / "b.mbox", f);
  auto src = OpenSource(tmp / "b.mbox");
  ASSERT_TRUE(src.ok());
  auto folders = (*src)->ListFolders();
  ASSERT_TRUE(folders.ok());
  EXPECT_EQ((*folders)[0].messages, 2u);
  EXPECT_EQ((*folders)[0].bytes, body.size() + 8);
  auto msgs = ReadAll(tmp / "b.mbox");
  ASSERT_EQ(msgs.size(), 2u);
  EXPECT_EQ(msgs[0].mime, body);
  EXPECT_EQ(msgs[0].folder, "");
}

TEST(MboxSource, FolderFilterSkipsRoot) {
  TempDir tmp;
  WriteFileOrDie(tmp / "a.mbox", "From a x\nS: 1\n\n");
  auto src = OpenSource(tmp / "a.mbox");
  ASSERT_TRUE(src.ok());
  (*src)->SetFolderFilter([](std::string_view) { return false; });
  Message m;
  auto r = (*src)->Next(&m);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(*r);
}

// mboxrd by its definition, one line at a time: the reference Quote() and
// Unquote() must agree with.
std::string RequoteByLines(std::string_view s, bool quote) {
  std::string out;
  size_t pos = 0;
  while (pos < s.size()) {
    size_t nl = s.find('\n', pos);
    size_t end = nl == std::string_view::npos ? s.size() : nl + 1;
    std::string_view line = s.substr(pos, end - pos);
    size_t g = 0;
    while (g < line.size() && line[g] == '>') ++g;
    if (line.substr(g).starts_with("From ")) {
      if (quote) {
        out += '>';
      } else if (g > 0) {
        line.remove_prefix(1);
      }
    }
    out.append(line);
    pos = end;
  }
  return out;
}

TEST(MboxQuote, AgreesWithTheLineByLineDefinition) {
  // Random texts over the bytes that matter, so that every arrangement of
  // '>' runs, "From", blanks and line ends shows up.
  const std::string_view pieces[] = {">", ">>", "From ", "From", " ", "\n", "\r\n", "x", ">From "};
  std::mt19937 rng(2026);
  for (int i = 0; i < 20000; ++i) {
    std::string text;
    int n = static_cast<int>(rng() % 24);
    for (int k = 0; k < n; ++k) text += pieces[rng() % std::size(pieces)];
    ASSERT_EQ(Quote(text), RequoteByLines(text, true)) << "quoting '" << text << "'";
    ASSERT_EQ(Unquote(text), RequoteByLines(text, false)) << "unquoting '" << text << "'";
    ASSERT_EQ(Unquote(Quote(text)), text) << "'" << text << "'";
  }
}

TEST(MboxQuote, MboxrdRoundTrip) {
  std::string msg = "From start\nS: q\n\nFrom a\n>From b\n>>From c\n From d\nFromx\n>From";
  std::string q = Quote(msg);
  EXPECT_EQ(q, ">From start\nS: q\n\n>From a\n>>From b\n>>>From c\n From d\nFromx\n>From");
  EXPECT_EQ(Unquote(q), msg);
  EXPECT_EQ(Unquote(">From x\n>>From y\n"), "From x\n>From y\n");

  TempDir tmp;
  auto sink = SinkOrDie(tmp / "q.mbox");
  ASSERT_TRUE(sink);
  std::string m1 = "Subject: q\n\nline\n\nFrom the past\n>From quoted\n";
  ASSERT_TRUE(sink->Stage(Mime(m1), "").ok());
  ASSERT_TRUE(sink->Stage(Mime("Subject: 2\n\nx\n"), "").ok());
  ASSERT_TRUE(sink->Close().ok());
  std::string file = ReadFileOrDie(tmp / "q.mbox");
  EXPECT_NE(file.find("\n>From the past\n>>From quoted\n"), std::string::npos);
  auto msgs = ReadAll(tmp / "q.mbox");
  ASSERT_EQ(msgs.size(), 2u);
  EXPECT_EQ(msgs[0].mime, m1);
}

TEST(MboxFlags, StatusHeaders) {
  EXPECT_EQ(FlagsFromHeaders("Subject: x\nStatus: RO\nX-Status: AFTD\n\nStatus: body"),
            kFlagSeen | kFlagOld | kFlagAnswered | kFlagFlagged | kFlagDraft | kFlagDeleted);
  EXPECT_EQ(FlagsFromHeaders("status: O\nx-status: F\n"), kFlagOld | kFlagFlagged);
  // Only the header block counts.
  EXPECT_EQ(FlagsFromHeaders("Subject: x\n\nStatus: R\n"), 0);
  EXPECT_EQ(StatusValues(kFlagSeen | kFlagOld | kFlagAnswered | kFlagFlagged),
            std::make_pair(std::string("RO"), std::string("AF")));
  EXPECT_EQ(StatusValues(kFlagForwarded), std::make_pair(std::string(), std::string()));
  EXPECT_EQ(StatusValues(kFlagDraft | kFlagDeleted).second, "TD");
}

TEST(MboxFlags, SinkWritesFlagsAndLeavesMatchingHeadersAlone) {
  TempDir tmp;
  auto sink = SinkOrDie(tmp / "f.mbox");
  ASSERT_TRUE(sink);
  // Already expressed (letters in another order): bytes untouched.
  std::string same = "Subject: same\nStatus: OR\n\nb\n";
  // Maildir flags with no headers: inserted before the empty line.
  std::string bare = "Subject: bare\r\n\r\nStatus: not a header\r\n";
  // Stale headers, folded: replaced.
  std::string stale = "Status: R\nSubject: stale\nX-Status: A\n F\n\nb\n";
  ASSERT_TRUE(sink->Stage(Mime(same, kFlagSeen | kFlagOld), "").ok());
  ASSERT_TRUE(sink->Stage(Mime(bare, kFlagSeen | kFlagFlagged | kFlagAnswered), "").ok());
  ASSERT_TRUE(sink->Stage(Mime(stale, kFlagDraft), "").ok());
  ASSERT_TRUE(sink->Stage(Mime("Subject: none\n\nb\n", kFlagForwarded), "").ok());
  ASSERT_TRUE(sink->Close().ok());
  auto msgs = ReadAll(tmp / "f.mbox");
  ASSERT_EQ(msgs.size(), 4u);
  EXPECT_EQ(msgs[0].mime, same);
  EXPECT_EQ(msgs[1].mime,
            "Subject: bare\r\nStatus: R\r\nX-Status: AF\r\n\r\nStatus: not a header\r\n");
  EXPECT_EQ(msgs[1].flags, kFlagSeen | kFlagFlagged | kFlagAnswered);
  EXPECT_EQ(msgs[2].mime, "Subject: stale\nX-Status: T\n\nb\n");
  EXPECT_EQ(msgs[2].flags, kFlagDraft);
  EXPECT_EQ(msgs[3].mime, "Subject: none\n\nb\n");  // forwarded has no mbox form
}

TEST(MboxSink, EnvelopeFallbacksAndDeterministicDate) {
  TempDir tmp;
  auto sink = SinkOrDie(tmp / "e.mbox");
  ASSERT_TRUE(sink);
  Message with_env = Mime("Subject: 1\n\n");
  with_env.envelope_sender = "env@example.com";
  ASSERT_TRUE(sink->Stage(with_env, "").ok());
  ASSERT_TRUE(
      sink->Stage(Mime("Return-Path: bounce@example.org\nFrom: a@example.com\n\n"), "").ok());
  ASSERT_TRUE(sink->Stage(Mime("From: a@example.com\n\n"), "").ok());
  ASSERT_TRUE(sink->Stage(Mime("Subject: nobody\n\n"), "").ok());
  with_env.envelope_sender = "sp ace\n@x";  // would split the From_ line's fields
  ASSERT_TRUE(sink->Stage(with_env, "").ok());
  ASSERT_TRUE(sink->Close().ok());
  std::string file = ReadFileOrDie(tmp / "e.mbox");
  auto e = Split(file);
  ASSERT_EQ(e.size(), 5u);
  EXPECT_EQ(e[4].from_line, "From sp_ace_@x " + mime::FormatAsctime(0));
  EXPECT_EQ(e[0].from_line, "From env@example.com " + mime::FormatAsctime(0));
  EXPECT_EQ(e[1].from_line, "From bounce@example.org " + mime::FormatAsctime(0));
  EXPECT_EQ(e[2].from_line, "From a@example.com " + mime::FormatAsctime(0));
  EXPECT_EQ(e[3].from_line, "From MAILER-DAEMON " + mime::FormatAsctime(0));
}

TEST(MboxSink, DatesFromContainerThenDateHeader) {
  if (!HaveRealDates()) GTEST_SKIP() << "mime::ParseDate/FormatAsctime not implemented yet";
  TempDir tmp;
  auto sink = SinkOrDie(tmp / "d.mbox");
  ASSERT_TRUE(sink);
  Message m = Mime("Date: Tue, 1 Jul 2003 10:52:37 +0200\n\n");
  ASSERT_TRUE(sink->Stage(m, "").ok());
  m.container_delivered = 1057049557 + 60;
  ASSERT_TRUE(sink->Stage(m, "").ok());
  ASSERT_TRUE(sink->Close().ok());
  auto msgs = ReadAll(tmp / "d.mbox");
  ASSERT_EQ(msgs.size(), 2u);
  EXPECT_EQ(msgs[0].container_delivered, 1057049557);
  EXPECT_EQ(msgs[1].container_delivered, 1057049557 + 60);
  EXPECT_EQ(ParseFromLine("From \"a b\"@x.org Tue Jul  1 08:52:37 2003"),
            std::make_pair(std::string("\"a b\"@x.org"), int64_t{1057049557}));
}

// mbox -> mbox through source and sink reproduces the file byte for byte.
void ExpectByteIdenticalCopy(const std::string& in, const std::string& out) {
  auto src = OpenSource(in);
  ASSERT_TRUE(src.ok());
  auto sink = SinkOrDie(out);
  ASSERT_TRUE(sink);
  Message m;
  for (;;) {
    auto r = (*src)->Next(&m);
    ASSERT_TRUE(r.ok());
    if (!*r) break;
    ASSERT_TRUE(sink->Stage(m, m.folder).ok());
  }
  ASSERT_TRUE(sink->Close().ok());
  EXPECT_EQ(ReadFileOrDie(out), ReadFileOrDie(in));
}

TEST(MboxCopy, ByteIdentical) {
  TempDir tmp;
  std::string f = "From a@x " + std::string(kEpoch) +
                  "\nSubject: 1\nStatus: RO\nX-Status: F\n\nbody\n>From quoted\n\n"
                  "From \"q p\"@x " +
                  kEpoch + "\nSubject: 2\r\n\r\ncrlf body\r\n\nFrom MAILER-DAEMON " + kEpoch +
                  "\n\n";
  WriteFileOrDie(tmp / "in.mbox", f);
  ExpectByteIdenticalCopy(tmp / "in.mbox", tmp / "out.mbox");
}

TEST(MboxCopy, ByteIdenticalWithRealDates) {
  if (!HaveRealDates()) GTEST_SKIP() << "mime::ParseDate/FormatAsctime not implemented yet";
  TempDir tmp;
  WriteFileOrDie(
      tmp / "in.mbox",
      "From a@x Tue Jul  1 08:52:37 2003\nSubject: 1\n\nb\n\n"
      "From b@y Sat Dec 31 23:59:59 2022\nSubject: 2\nDate: Mon, 1 Jan 2001 0:0:0 +0000\n"
      "\nb\n\n");
  ExpectByteIdenticalCopy(tmp / "in.mbox", tmp / "out.mbox");
}

TEST(MboxSink, AppendsAfterExistingContentWithoutSeparator) {
  TempDir tmp;
  WriteFileOrDie(tmp / "a.mbox", "From a x\nS: 1\n\nno blank line at the end");
  auto sink = SinkOrDie(tmp / "a.mbox");
  ASSERT_TRUE(sink);
  ASSERT_TRUE(sink->Stage(Mime("S: 2\n\nnew\n"), "").ok());
  ASSERT_TRUE(sink->Close().ok());
  auto msgs = ReadAll(tmp / "a.mbox");
  ASSERT_EQ(msgs.size(), 2u);
  EXPECT_EQ(msgs[0].mime, "S: 1\n\nno blank line at the end\n");
  EXPECT_EQ(msgs[1].mime, "S: 2\n\nnew\n");
}

TEST(MboxSink, CreatesParentsAndStageWritesNothingUntilFlush) {
  TempDir tmp;
  std::string path = tmp / "new/dir/x.mbox";
  auto sink = SinkOrDie(path);
  ASSERT_TRUE(sink);
  EXPECT_TRUE(sink->SingleFolder());
  ASSERT_TRUE(sink->Stage(Mime("S: 1\n\n"), "Any/Folder").ok());
  EXPECT_EQ(ReadFileOrDie(path), "");
  ASSERT_TRUE(sink->Flush().ok());
  // Durable and visible to others as soon as Flush() returns.
  std::string after_flush = ReadFileOrDie(path);
  EXPECT_EQ(Split(after_flush).size(), 1u);
  ASSERT_TRUE(sink->Stage(Mime("S: 2\n\n"), "").ok());
  sink.reset();  // destroyed without Close(): staged data is dropped
  EXPECT_EQ(ReadFileOrDie(path), after_flush);
  EXPECT_FALSE(fs::Exists(path + ".lock"));

  auto no_create = OpenSink(tmp / "missing.mbox", SinkOptions{.create = false});
  EXPECT_EQ(no_create.status().code(), Status::Code::kNotFound);
}

TEST(MboxSink, RollbackTruncatesToLastGoodFlush) {
  TempDir tmp;
  auto sink = SinkOrDie(tmp / "r.mbox");
  ASSERT_TRUE(sink);
  ASSERT_TRUE(sink->Stage(Mime("S: 1\n\n"), "").ok());
  ASSERT_TRUE(sink->Flush().ok());
  std::string good = ReadFileOrDie(tmp / "r.mbox");
  ASSERT_TRUE(sink->Stage(Mime("S: 2\n\n"), "").ok());
  sink->Rollback();
  ASSERT_TRUE(sink->Stage(Mime("S: 3\n\n"), "").ok());
  ASSERT_TRUE(sink->Close().ok());
  auto msgs = ReadAll(tmp / "r.mbox");
  ASSERT_EQ(msgs.size(), 2u);
  EXPECT_EQ(msgs[1].mime, "S: 3\n\n");
  EXPECT_TRUE(ReadFileOrDie(tmp / "r.mbox").starts_with(good));
}

// While alive, writes past `bytes` fail (EFBIG) instead of raising SIGXFSZ.
class FileSizeLimit {
 public:
  explicit FileSizeLimit(size_t bytes) {
    EXPECT_EQ(::getrlimit(RLIMIT_FSIZE, &old_), 0);
    old_handler_ = ::signal(SIGXFSZ, SIG_IGN);
    struct rlimit lim = old_;
    lim.rlim_cur = bytes;
    EXPECT_EQ(::setrlimit(RLIMIT_FSIZE, &lim), 0);
  }
  ~FileSizeLimit() {
    EXPECT_EQ(::setrlimit(RLIMIT_FSIZE, &old_), 0);
    ::signal(SIGXFSZ, old_handler_);
  }

 private:
  struct rlimit old_;
  sighandler_t old_handler_;
};

// After a failed batch, the sink goes on: the next batch lands after the
// good data (one message there before, "S: 2" after it).
void ExpectTheSinkGoesOn(MailboxSink* sink, const std::string& path) {
  ASSERT_TRUE(sink->Stage(Mime("S: 2\n\n"), "").ok());
  ASSERT_TRUE(sink->Close().ok());
  auto msgs = ReadAll(path);
  ASSERT_EQ(msgs.size(), 2u);
  EXPECT_EQ(msgs[1].mime, "S: 2\n\n");
}

// A write that fails half-way (file size limit) leaves the file as after the last good Flush().
TEST(MboxSink, FailedFlushTruncatesBack) {
  TempDir tmp;
  auto sink = SinkOrDie(tmp / "f.mbox");
  ASSERT_TRUE(sink);
  ASSERT_TRUE(sink->Stage(Mime("S: 1\n\n"), "").ok());
  ASSERT_TRUE(sink->Flush().ok());
  std::string good = ReadFileOrDie(tmp / "f.mbox");

  Status s;
  {
    FileSizeLimit limit(good.size() + 100);
    ASSERT_TRUE(sink->Stage(Mime("S: big\n\n" + std::string(10000, 'x') + "\n"), "").ok());
    s = sink->Flush();
  }

  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("f.mbox"), std::string::npos) << s.ToString();
  EXPECT_EQ(ReadFileOrDie(tmp / "f.mbox"), good);
  ExpectTheSinkGoesOn(sink.get(), tmp / "f.mbox");
}

// A spill (a batch past 1 MiB written before its fsync) that fails loses
// the batch and says so, also when it ran on the sink's writer thread
// (SetWriteThreads, --jobs 2), where the failure is seen only by a later
// Stage(): that one, or the Flush(), fails, and the file is cut back.
class MboxSpillFailure : public ::testing::TestWithParam<int> {};

TEST_P(MboxSpillFailure, LosesTheBatchAndSaysSo) {
  TempDir tmp;
  auto sink = SinkOrDie(tmp / "s.mbox");
  ASSERT_TRUE(sink);
  sink->SetWriteThreads(GetParam());
  ASSERT_TRUE(sink->Stage(Mime("S: 1\n\n"), "").ok());
  ASSERT_TRUE(sink->Flush().ok());
  std::string good = ReadFileOrDie(tmp / "s.mbox");

  const std::string big(5 << 20, 'x');
  ASSERT_TRUE(sink->Stage(Mime("S: a\n\n" + big + "\n"), "").ok());
  std::vector<Status> staged;
  {
    FileSizeLimit limit(good.size() + 100);
    // Each of these starts a spill of what is staged before it; the last
    // waits for the one before.
    staged.push_back(sink->Stage(Mime("S: b\n\n"), ""));
    staged.push_back(sink->Stage(Mime("S: c\n\n" + big + "\n"), ""));
    staged.push_back(sink->Stage(Mime("S: d\n\n"), ""));
  }
  Status flushed = sink->Flush();

  auto failed = std::find_if(staged.begin(), staged.end(), [](const Status& s) { return !s.ok(); });
  ASSERT_NE(failed, staged.end()) << "no Stage() reported the failed spill";
  EXPECT_NE(failed->message().find("s.mbox"), std::string::npos) << failed->ToString();
  EXPECT_FALSE(flushed.ok()) << "the batch that lost its spill was flushed";
  sink->Rollback();
  EXPECT_EQ(ReadFileOrDie(tmp / "s.mbox"), good);
  ExpectTheSinkGoesOn(sink.get(), tmp / "s.mbox");
}

INSTANTIATE_TEST_SUITE_P(WriteThreads, MboxSpillFailure, ::testing::Values(1, 2));

// A sink as --jobs 2 opens it: with a writer thread.
std::unique_ptr<MailboxSink> WritingBehindOrDie(const std::string& path) {
  auto sink = SinkOrDie(path);
  if (sink) sink->SetWriteThreads(2);
  return sink;
}

// --jobs 2: a batch's flush runs on the sink's writer thread while the next
// batch is staged, and spills (after waiting for it): each batch is whole
// and committed once FinishFlush() returns, and the next one's undo record
// starts where it ends.
TEST(MboxSink, FlushesBehindWhileTheNextBatchIsStaged) {
  TempDir tmp;
  const std::string path = tmp / "s.mbox";
  auto sink = WritingBehindOrDie(path);
  ASSERT_TRUE(sink);
  const std::string big(3 << 20, 'x');
  ASSERT_TRUE(sink->Stage(Mime("S: 1\n\n" + big + "\n"), "").ok());
  ASSERT_TRUE(sink->Stage(Mime("S: 2\n\n"), "").ok());  // spills the first
  ASSERT_TRUE(sink->StartFlush().ok());
  // Past the most a sink stages while its writer is busy (4 MiB): the fourth
  // message spills the third, after the flush.
  const std::string bigger(5 << 20, 'y');
  ASSERT_TRUE(sink->Stage(Mime("S: 3\n\n" + bigger + "\n"), "").ok());
  ASSERT_TRUE(sink->Stage(Mime("S: 4\n\n"), "").ok());
  ASSERT_TRUE(sink->FinishFlush().ok());
  std::string undo = ReadFileOrDie(path + ".mbxmerge-undo");
  const size_t first_batch = std::stoul(undo);
  const std::string first_bytes = ReadFileOrDie(path).substr(0, first_batch);
  auto first = Split(first_bytes);  // views into first_bytes
  ASSERT_EQ(first.size(), 2u);
  EXPECT_EQ(Unquote(first[1].stored), "S: 2\n\n");
  ASSERT_TRUE(sink->StartFlush().ok());
  ASSERT_TRUE(sink->FinishFlush().ok());
  EXPECT_FALSE(fs::Exists(path + ".mbxmerge-undo"));
  ASSERT_TRUE(sink->Close().ok());
  auto msgs = ReadAll(path);
  ASSERT_EQ(msgs.size(), 4u);
  for (int i = 0; i < 4; ++i) {
    EXPECT_TRUE(msgs[i].mime.starts_with("S: " + std::to_string(i + 1) + "\n")) << i;
  }
}

// A flush that fails on the writer thread is reported by FinishFlush(),
// naming the file; the batch and the one staged (and spilled) behind it are
// gone, the file is as after the last good flush, and the sink goes on.
TEST(MboxSink, AFlushFailingBehindDropsItsBatchAndTheNext) {
  TempDir tmp;
  const std::string path = tmp / "s.mbox";
  auto sink = WritingBehindOrDie(path);
  ASSERT_TRUE(sink);
  ASSERT_TRUE(sink->Stage(Mime("S: 1\n\n"), "").ok());
  ASSERT_TRUE(sink->Flush().ok());
  std::string good = ReadFileOrDie(path);

  const std::string big(3 << 20, 'x');
  ASSERT_TRUE(sink->Stage(Mime("S: a\n\n" + big + "\n"), "").ok());
  Status finished;
  {
    FileSizeLimit limit(good.size() + 100);
    ASSERT_TRUE(sink->StartFlush().ok());  // fails behind us
    EXPECT_TRUE(sink->Stage(Mime("S: b\n\n" + big + "\n"), "").ok());
    (void)sink->Stage(Mime("S: c\n\n"), "");  // spills b, which fails too
    finished = sink->FinishFlush();
  }
  ASSERT_FALSE(finished.ok()) << "the failed flush was not reported";
  EXPECT_NE(finished.message().find("s.mbox"), std::string::npos) << finished.ToString();
  sink->Rollback();
  EXPECT_EQ(ReadFileOrDie(path), good);
  ExpectTheSinkGoesOn(sink.get(), path);
}

// Resident pages of `path` (mincore over a mapping of it).
size_t ResidentPages(const std::string& path, size_t* total) {
  auto fd = fs::Open(path, O_RDONLY);
  if (!fd.ok()) return 0;
  struct stat st;
  if (::fstat(fd->get(), &st) != 0 || st.st_size == 0) return 0;
  const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  *total = (static_cast<size_t>(st.st_size) + page - 1) / page;
  void* map = ::mmap(nullptr, static_cast<size_t>(st.st_size), PROT_READ, MAP_SHARED, fd->get(), 0);
  if (map == MAP_FAILED) return 0;
  std::vector<unsigned char> in(*total);
  size_t resident = 0;
  if (::mincore(map, static_cast<size_t>(st.st_size), in.data()) == 0) {
    for (unsigned char c : in) resident += c & 1;
  }
  ::munmap(map, static_cast<size_t>(st.st_size));
  return resident;
}

// A durable batch is never read again by the merge: its pages leave the page
// cache (a merge writing gigabytes filled it with its own pages, and its later
// writes cost up to twice the system time). Flushed at once (--jobs 1) and
// behind (--jobs 2). The sink drops the whole file's pages, so none should
// stay; the bound allows one page a batch (the one it shares with the next,
// which the next batch's first write reads back).
TEST(MboxSink, DurableBatchesLeaveThePageCache) {
  TempDir tmp;
  struct statfs fs_info;
  ASSERT_EQ(::statfs(tmp.path().c_str(), &fs_info), 0);
  if (fs_info.f_type == TMPFS_MAGIC) GTEST_SKIP() << "tmpfs keeps its pages: " << tmp.path();
  const std::string big((1 << 20) + 123, 'x');
  for (int threads : {1, 2}) {
    SCOPED_TRACE("write threads " + std::to_string(threads));
    const std::string path = tmp / ("t" + std::to_string(threads) + ".mbox");
    auto sink = SinkOrDie(path);
    ASSERT_TRUE(sink);
    sink->SetWriteThreads(threads);
    constexpr int kBatches = 4;
    for (int b = 0; b < kBatches; ++b) {
      for (int m = 0; m < 3; ++m) {
        ASSERT_TRUE(
            sink->Stage(Mime("S: " + std::to_string(b * 3 + m) + "\n\n" + big + "\n"), "").ok());
      }
      ASSERT_TRUE(sink->StartFlush().ok());
      ASSERT_TRUE(sink->FinishFlush().ok());
    }
    ASSERT_TRUE(sink->Close().ok());
    size_t total = 0;
    size_t resident = ResidentPages(path, &total);
    EXPECT_GT(total, 3000u);
    EXPECT_LE(resident, static_cast<size_t>(kBatches)) << "of " << total << " pages";
    EXPECT_EQ(ReadAll(path).size(), 3u * kBatches);
  }
}

TEST(MboxSink, SecondSinkOnSameFileIsBusy) {
  TempDir tmp;
  auto first = SinkOrDie(tmp / "l.mbox");
  ASSERT_TRUE(first);
  auto second = OpenSink(tmp / "l.mbox", SinkOptions{});
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), Status::Code::kBusy);
  ASSERT_TRUE(first->Close().ok());
  ASSERT_TRUE(first->Close().ok());  // idempotent
  auto third = OpenSink(tmp / "l.mbox", SinkOptions{});
  EXPECT_TRUE(third.ok()) << third.status().ToString();
}

TEST(MboxSink, ScanAndReadExisting) {
  TempDir tmp;
  WriteFileOrDie(tmp / "s.mbox",
                 "junk\n\nFrom a x\nSubject: 1\n\nplain\n\nFrom b x\nSubject: 2\n\n"
                 ">From quoted\nrest\n\n");
  auto sink = SinkOrDie(tmp / "s.mbox");
  ASSERT_TRUE(sink);
  std::vector<ExistingMessage> seen;
  std::vector<std::string> heads;
  ASSERT_TRUE(sink->ScanExisting([&](const ExistingMessage& m) {
                    seen.push_back(m);
                    heads.emplace_back(m.head);
                    return Status::Ok();
                  })
                  .ok());
  ASSERT_EQ(seen.size(), 3u);
  EXPECT_EQ(seen[0].folder, "");
  EXPECT_EQ(heads[0], "junk\n");
  EXPECT_TRUE(seen[0].head_is_complete);
  EXPECT_EQ(heads[1], "Subject: 1\n\nplain\n");
  EXPECT_TRUE(seen[1].head_is_complete);
  EXPECT_TRUE(heads[2].starts_with("Subject: 2\n"));
  EXPECT_FALSE(seen[2].head_is_complete);  // quoted: only ReadExisting() has the real bytes
  auto r = sink->ReadExisting(seen[2].locator);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, "Subject: 2\n\nFrom quoted\nrest\n");
  EXPECT_FALSE(sink->ReadExisting(99).ok());
  // A callback error stops the scan and is returned.
  int calls = 0;
  Status s = sink->ScanExisting([&](const ExistingMessage&) {
    ++calls;
    return Status::Aborted("stop");
  });
  EXPECT_EQ(s.code(), Status::Code::kAborted);
  EXPECT_EQ(calls, 1);
}

// Software nobody here wrote splits what the sink writes the same way.
std::string WriteTricky(const TempDir& tmp) {
  std::string path = tmp / "t.mbox";
  auto sink = SinkOrDie(path);
  if (!sink) return path;
  EXPECT_TRUE(sink->Stage(Mime("Subject: 1\n\nFrom a body line\n\nFrom after blank\n"), "").ok());
  EXPECT_TRUE(sink->Stage(Mime("Subject: 2\n\n>From quoted\n", kFlagSeen | kFlagFlagged), "").ok());
  EXPECT_TRUE(sink->Stage(Mime("Subject: 3\n\nno newline"), "").ok());
  EXPECT_TRUE(sink->Close().ok());
  return path;
}

TEST(MboxInterop, FormailSplitsTheSameMessages) {
  if (!HaveProgram("formail")) GTEST_SKIP() << "formail not installed";
  TempDir tmp;
  std::string path = WriteTricky(tmp);
  auto r = mbx::testing::Run(
      {"sh", "-c", "formail -s sh -c 'cat >/dev/null; echo x' < '" + path + "' | wc -l"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(std::stoi(r.out), 3);
  EXPECT_EQ(ReadAll(path).size(), 3u);
}

TEST(MboxInterop, MblazeDeliversTheSameMessagesAndFlags) {
  if (!HaveProgram("mdeliver")) GTEST_SKIP() << "mblaze not installed";
  TempDir tmp;
  std::string path = WriteTricky(tmp);
  std::string md = tmp / "md";
  ASSERT_TRUE(fs::MakeDirs(md + "/cur").ok());
  ASSERT_TRUE(fs::MakeDirs(md + "/new").ok());
  ASSERT_TRUE(fs::MakeDirs(md + "/tmp").ok());
  auto r = mbx::testing::Run({"sh", "-c", "mdeliver -M -c '" + md + "' < '" + path + "'"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto files = mbx::testing::ListFilesRecursive(md);
  ASSERT_EQ(files.size(), 3u);
  std::vector<std::string> bodies;
  bool flagged_seen = false;
  for (const auto& f : files) {
    bodies.push_back(ReadFileOrDie(md + "/" + f));
    if (f.ends_with(":2,FS")) flagged_seen = true;
  }
  std::sort(bodies.begin(), bodies.end());
  // mdeliver keeps the separator's empty line and turns Status:/X-Status: into Maildir flags.
  EXPECT_EQ(bodies[0], "Subject: 1\n\nFrom a body line\n\nFrom after blank\n\n");
  EXPECT_EQ(bodies[1], "Subject: 2\n\n>From quoted\n\n");
  EXPECT_EQ(bodies[2], "Subject: 3\n\nno newline\n\n");
  EXPECT_TRUE(flagged_seen);
}

TEST(MboxInterop, ReadsWhatMblazeExports) {
  if (!HaveProgram("mexport") || !HaveProgram("mdeliver")) GTEST_SKIP() << "mblaze not installed";
  TempDir tmp;
  std::string md = tmp / "md";
  for (const char* d : {"/cur", "/new", "/tmp"}) ASSERT_TRUE(fs::MakeDirs(md + d).ok());
  WriteFileOrDie(tmp / "m1", "From: a@example.com\nSubject: one\n\nFrom here\n>From there\n");
  auto r = mbx::testing::Run({"sh", "-c",
                              "mdeliver -c '" + md + "' < '" + (tmp / "m1") + "' && mexport '" +
                                  md + "/cur' > '" + (tmp / "out.mbox") + "'"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto msgs = ReadAll(tmp / "out.mbox");
  ASSERT_EQ(msgs.size(), 1u);
  EXPECT_NE(msgs[0].mime.find("\nFrom here\n>From there\n"), std::string::npos) << msgs[0].mime;
}

// The temporary files of an undo record or replace journal that a killed
// run was writing are removed at the next open, unless their writer lives.
TEST(MboxSinkTest, OpenRemovesTempsOfKilledRunsOnly) {
  TempDir tmp;
  const std::string path = tmp / "t.mbox";
  WriteFileOrDie(path, "");
  const std::string dead_undo = path + ".mbxmerge-undo.tmp.99999999";
  const std::string dead_journal = path + ".mbxmerge-replace.tmp.99999999";
  const std::string live_undo = path + ".mbxmerge-undo.tmp." + std::to_string(::getpid());
  for (const auto& f : {dead_undo, dead_journal, live_undo}) WriteFileOrDie(f, "12\n");
  auto sink = OpenSink(path, SinkOptions{});
  ASSERT_TRUE(sink.ok()) << sink.status().ToString();
  EXPECT_FALSE(fs::Exists(dead_undo));
  EXPECT_FALSE(fs::Exists(dead_journal));
  EXPECT_TRUE(fs::Exists(live_undo));
}

}  // namespace
}  // namespace mbx::mbox
