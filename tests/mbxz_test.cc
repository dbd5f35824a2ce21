// The .mbxz bundle: round trip, appending, truncation, bad input.
#include "formats/mbxz/mbxz.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "tests/test_util.h"

namespace mbx::mbxz {
namespace {

using testing::ReadFileOrDie;
using testing::TempDir;
using testing::WriteFileOrDie;

Message M(std::string folder, std::string mime, MessageFlags flags = 0, UnixTime delivered = 0) {
  Message m;
  m.folder = std::move(folder);
  m.mime = std::move(mime);
  m.flags = flags;
  m.container_delivered = delivered;
  m.container_modified = delivered + 5;
  m.envelope_sender = "sender@example.com";
  return m;
}

std::vector<Message> ReadBack(const std::string& path) {
  auto src = OpenSource(path);
  EXPECT_TRUE(src.ok()) << src.status().ToString();
  std::vector<Message> out;
  if (!src.ok()) return out;
  Message m;
  for (;;) {
    auto more = (*src)->Next(&m);
    EXPECT_TRUE(more.ok()) << more.status().ToString();
    if (!more.ok() || !*more) break;
    out.push_back(m);
  }
  return out;
}

void Write(const std::string& path, const std::vector<Message>& msgs, size_t batch) {
  auto sink = OpenSink(path, SinkOptions{});
  ASSERT_TRUE(sink.ok()) << sink.status().ToString();
  size_t n = 0;
  for (const auto& m : msgs) {
    ASSERT_TRUE((*sink)->Stage(m, m.folder).ok());
    if (++n % batch == 0) {
      ASSERT_TRUE((*sink)->Flush().ok());
    }
  }
  ASSERT_TRUE((*sink)->Close().ok());
}

TEST(MbxzTest, RoundTripKeepsBytesFoldersFlagsAndDates) {
  TempDir tmp;
  std::string binary("Subject: bin\n\n\x00\xff\r\n>From x\n", 27);
  std::vector<Message> in{M("", "Subject: a\n\nbody\n", kFlagSeen, 1600000000), M("Inbox/Entwürfe", binary, kFlagFlagged | kFlagAnswered, 1700000000),
                          M("Archive/2023", std::string(100000, 'x'), 0, 0)};
  Write(tmp / "b.mbxz", in, 2);
  auto out = ReadBack(tmp / "b.mbxz");
  ASSERT_EQ(out.size(), in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    EXPECT_EQ(out[i].mime, in[i].mime);
    EXPECT_EQ(out[i].folder, in[i].folder);
    EXPECT_EQ(out[i].flags, in[i].flags);
    EXPECT_EQ(out[i].container_delivered, in[i].container_delivered);
    EXPECT_EQ(out[i].container_modified, in[i].container_modified);
    EXPECT_EQ(out[i].envelope_sender, "sender@example.com");
    EXPECT_FALSE(out[i].read_error.has_value());
  }
  // Compressed: 100 KB of 'x' takes far less.
  EXPECT_LT(std::filesystem::file_size(tmp / "b.mbxz"), 5000u);
  EXPECT_FALSE(std::filesystem::exists(tmp / "b.mbxz.tmp"));
  EXPECT_FALSE(std::filesystem::exists(tmp / "b.mbxz.lock"));

  auto src = OpenSource(tmp / "b.mbxz");
  auto folders = (*src)->ListFolders();
  ASSERT_TRUE(folders.ok());
  std::vector<std::string> paths;
  for (const auto& f : *folders) paths.push_back(f.path);
  EXPECT_EQ(paths, (std::vector<std::string>{"", "Archive", "Archive/2023", "Inbox", "Inbox/Entwürfe"}));
}

TEST(MbxzTest, AppendingKeepsTheOldFramesAndScanSeesThem) {
  TempDir tmp;
  Write(tmp / "b.mbxz", {M("", "Subject: 1\n\none\n")}, 10);
  std::string before = ReadFileOrDie(tmp / "b.mbxz");
  auto sink = OpenSink(tmp / "b.mbxz", SinkOptions{});
  ASSERT_TRUE(sink.ok());
  int existing = 0;
  ASSERT_TRUE((*sink)->ScanExisting([&](const ExistingMessage& e) {
                       EXPECT_TRUE(e.head_is_complete);
                       EXPECT_EQ(e.head, "Subject: 1\n\none\n");
                       ++existing;
                       return Status::Ok();
                     }).ok());
  EXPECT_EQ(existing, 1);
  ASSERT_TRUE((*sink)->Stage(M("X", "Subject: 2\n\ntwo\n"), "X").ok());
  ASSERT_TRUE((*sink)->Close().ok());
  std::string after = ReadFileOrDie(tmp / "b.mbxz");
  EXPECT_EQ(after.substr(0, before.size()), before);  // old frames untouched
  auto out = ReadBack(tmp / "b.mbxz");
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[1].folder, "X");
}

TEST(MbxzTest, TruncatedBundleKeepsWhatItHoldsAndSaysSo) {
  TempDir tmp;
  std::vector<Message> in;
  for (int i = 0; i < 50; ++i) in.push_back(M("", "Subject: " + std::to_string(i) + "\n\n" + std::string(2000, 'a' + i % 26) + "\n"));
  Write(tmp / "b.mbxz", in, 10);  // five frames
  std::string data = ReadFileOrDie(tmp / "b.mbxz");
  WriteFileOrDie(tmp / "cut.mbxz", data.substr(0, data.size() - 20));
  auto out = ReadBack(tmp / "cut.mbxz");
  ASSERT_GE(out.size(), 41u);  // the first four frames are whole
  EXPECT_TRUE(out.back().read_error.has_value());
  EXPECT_NE(out.back().read_error->message().find("truncated"), std::string::npos);
  for (size_t i = 0; i + 1 < out.size(); ++i) EXPECT_EQ(out[i].mime, in[i].mime);
}

TEST(MbxzTest, NotABundleIsAClearError) {
  TempDir tmp;
  WriteFileOrDie(tmp / "x.mbxz", "From a@b Thu Jan  1 00:00:00 1970\n\nhello\n");
  auto src = OpenSource(tmp / "x.mbxz");
  ASSERT_FALSE(src.ok());
  EXPECT_NE(src.status().message().find("x.mbxz"), std::string::npos);
  auto sink = OpenSink(tmp / "x.mbxz", SinkOptions{});
  ASSERT_FALSE(sink.ok());
}

TEST(MbxzTest, RollbackAndAbandonedSinkLeaveNoFile) {
  TempDir tmp;
  {
    auto sink = OpenSink(tmp / "b.mbxz", SinkOptions{});
    ASSERT_TRUE(sink.ok());
    ASSERT_TRUE((*sink)->Stage(M("", "Subject: x\n\ny\n"), "").ok());
    (*sink)->Rollback();
    // destroyed without Close(): nothing appears
  }
  EXPECT_FALSE(std::filesystem::exists(tmp / "b.mbxz"));
  EXPECT_FALSE(std::filesystem::exists(tmp / "b.mbxz.tmp"));
}

}  // namespace
}  // namespace mbx::mbxz
