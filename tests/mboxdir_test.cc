// The mboxdir backend: folder <-> file names, readpst's layouts, round trips.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>

#include <map>
#include <string>
#include <vector>

#include "engine/fs.h"
#include "formats/mbox/mbox.h"
#include "formats/mime/mime.h"
#include "tests/test_util.h"

namespace mbx::mbox {
namespace {

using mbx::testing::HaveProgram;
using mbx::testing::ListFilesRecursive;
using mbx::testing::ReadFileOrDie;
using mbx::testing::TempDir;
using mbx::testing::WriteFileOrDie;

bool HaveRealDates() {
  auto t = mime::ParseDate("Tue Jul  1 08:52:37 2003");
  return t && *t == 1057049557 && mime::FormatAsctime(1057049557) == "Tue Jul  1 08:52:37 2003";
}

Message Mime(std::string bytes) {
  Message m;
  m.mime = std::move(bytes);
  return m;
}

std::vector<Message> ReadAll(MailboxSource* src) {
  std::vector<Message> out;
  Message m;
  for (;;) {
    auto r = src->Next(&m);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (!r.ok() || !*r) break;
    out.push_back(m);
  }
  return out;
}

std::vector<std::string> Paths(const std::vector<FolderInfo>& folders) {
  std::vector<std::string> out;
  for (const auto& f : folders) out.push_back(f.path);
  return out;
}

TEST(MboxDirNames, EscapingIsReversibleAndSafe) {
  const std::vector<std::string> hostile = {"..",
                                            ".",
                                            ".hidden",
                                            "a%b",
                                            "a%2Fb",
                                            "ctl\x01\x1f\x7f",
                                            std::string("nul\0x", 5),
                                            "new\nline",
                                            "sp ace",
                                            "\xc3\xbcml\xc3\xa4ut",
                                            "mbox",
                                            "x.mbox"};
  for (const auto& name : hostile) {
    std::string esc = EscapeComponent(name);
    EXPECT_EQ(UnescapeComponent(esc), name) << esc;
    EXPECT_EQ(esc.find('/'), std::string::npos) << esc;
    EXPECT_EQ(esc.find('\0'), std::string::npos) << esc;
    EXPECT_NE(esc.front(), '.') << esc;
    for (char c : esc) EXPECT_FALSE(static_cast<unsigned char>(c) < 0x20) << esc;
  }
  EXPECT_EQ(FolderToFile(""), "mbox");
  EXPECT_EQ(FolderToFile("Inbox"), "Inbox.mbox");
  EXPECT_EQ(FolderToFile("Inbox/Projects"), "Inbox/Projects.mbox");
  EXPECT_EQ(FolderToFile("../etc"), "%2E./etc.mbox");
  EXPECT_EQ(FolderToFile("A//B/"), "A/B.mbox");
}

TEST(MboxDir, RoundTripNestedAndHostileFolders) {
  TempDir tmp;
  std::string dir = tmp / "out";
  const std::vector<std::string> folders = {
      "Inbox/Projects", "", "Inbox", "..", "../etc", "a%2Fb", "x\ny/.", "Inbox/Projects/Q"};
  {
    auto sink = OpenDirSink(dir, SinkOptions{});
    ASSERT_TRUE(sink.ok()) << sink.status().ToString();
    EXPECT_FALSE((*sink)->SingleFolder());
    for (size_t i = 0; i < folders.size(); ++i) {
      for (int k = 0; k <= static_cast<int>(i % 2); ++k) {
        ASSERT_TRUE((*sink)
                        ->Stage(Mime("Subject: " + std::to_string(i) + "\n\nFrom x\n"), folders[i])
                        .ok());
      }
    }
    ASSERT_TRUE((*sink)->Close().ok());
  }
  // Nothing escaped the directory.
  for (const auto& f : ListFilesRecursive(tmp.path())) EXPECT_TRUE(f.starts_with("out/")) << f;
  EXPECT_TRUE(fs::IsFile(dir + "/mbox"));
  EXPECT_TRUE(fs::IsFile(dir + "/Inbox/Projects.mbox"));
  EXPECT_TRUE(fs::IsFile(dir + "/%2E./etc.mbox"));

  auto src = OpenDirSource(dir);
  ASSERT_TRUE(src.ok());
  auto listed = (*src)->ListFolders();
  ASSERT_TRUE(listed.ok());
  EXPECT_EQ(Paths(*listed),
            (std::vector<std::string>{"", "..", "../etc", "Inbox", "Inbox/Projects",
                                      "Inbox/Projects/Q", "a%2Fb", "x\ny", "x\ny/."}));
  std::map<std::string, uint64_t> counts;
  for (const auto& f : *listed) counts[f.path] = f.messages;
  EXPECT_EQ(counts["Inbox/Projects"], 1u);
  EXPECT_EQ(counts[""], 2u);
  EXPECT_EQ(counts["x\ny"], 0u);  // an ancestor without a file of its own
  EXPECT_EQ(counts["x\ny/."], 1u);

  auto msgs = ReadAll(src->get());
  ASSERT_EQ(msgs.size(), 12u);
  // Folder order as listed, each message in its folder, content intact.
  EXPECT_EQ(msgs[0].folder, "");
  EXPECT_EQ(msgs[0].mime, "Subject: 1\n\nFrom x\n");
  std::map<std::string, int> per_folder;
  for (const auto& m : msgs) {
    ++per_folder[m.folder];
    std::string subject = m.mime.substr(9, m.mime.find('\n') - 9);
    EXPECT_EQ(folders[std::stoul(subject)], m.folder);
    EXPECT_NE(m.origin.find("message"), std::string::npos);
  }
  EXPECT_EQ(per_folder["Inbox/Projects/Q"], 2);
}

TEST(MboxDir, ReadsReadpstLayoutsAndIgnoresOtherFiles) {
  TempDir tmp;
  std::string d = tmp.path();
  WriteFileOrDie(d + "/mbox", "From a x\nS: root\n\n");
  WriteFileOrDie(d + "/Sent Items.mbox", "From a x\nS: sent\n\n");
  WriteFileOrDie(d + "/Calendar.calendar", "BEGIN:VCALENDAR\n");
  WriteFileOrDie(d + "/Root/Inbox/mbox", "From a x\nS: in1\n\nFrom b x\nS: in2\n\n");
  WriteFileOrDie(d + "/Root/Inbox/Sub.mbox", "From a x\nS: sub\n\n");
  WriteFileOrDie(d + "/Root/Inbox/contacts", "BEGIN:VCARD\n");
  WriteFileOrDie(d + "/Root/.type", "1\n");
  auto src = OpenDirSource(d);
  ASSERT_TRUE(src.ok());
  auto listed = (*src)->ListFolders();
  ASSERT_TRUE(listed.ok());
  EXPECT_EQ(Paths(*listed),
            (std::vector<std::string>{"", "Root", "Root/Inbox", "Root/Inbox/Sub", "Sent Items"}));
  auto msgs = ReadAll(src->get());
  ASSERT_EQ(msgs.size(), 5u);
  EXPECT_EQ(msgs[1].folder, "Root/Inbox");
  EXPECT_EQ(msgs[2].mime, "S: in2\n");
  EXPECT_EQ(msgs[4].folder, "Sent Items");

  // Folder filter: unselected folders are not read.
  auto src2 = OpenDirSource(d);
  ASSERT_TRUE(src2.ok());
  (*src2)->SetFolderFilter([](std::string_view f) { return f == "Root/Inbox/Sub"; });
  msgs = ReadAll(src2->get());
  ASSERT_EQ(msgs.size(), 1u);
  EXPECT_EQ(msgs[0].mime, "S: sub\n");

  // The sink appends to readpst -r's "Root/Inbox/mbox" instead of creating Root/Inbox.mbox.
  auto sink = OpenDirSink(d, SinkOptions{});
  ASSERT_TRUE(sink.ok());
  int existing = 0;
  std::vector<std::string> seen_folders;
  ASSERT_TRUE((*sink)
                  ->ScanExisting([&](const ExistingMessage& m) {
                    ++existing;
                    seen_folders.emplace_back(m.folder);
                    auto r = (*sink)->ReadExisting(m.locator);
                    EXPECT_TRUE(r.ok());
                    if (r.ok()) {
                      EXPECT_EQ(*r, m.head);
                    }
                    return Status::Ok();
                  })
                  .ok());
  EXPECT_EQ(existing, 5);
  EXPECT_EQ(seen_folders[1], "Root/Inbox");
  ASSERT_TRUE((*sink)->Stage(Mime("S: in3\n\n"), "Root/Inbox").ok());
  ASSERT_TRUE((*sink)->Close().ok());
  EXPECT_FALSE(fs::Exists(d + "/Root/Inbox.mbox"));
  EXPECT_EQ(Split(ReadFileOrDie(d + "/Root/Inbox/mbox")).size(), 3u);
}

// Flush is all or nothing across files: one failing file rolls back the others.
TEST(MboxDir, FailedFlushRollsBackEveryFolder) {
  TempDir tmp;
  auto sink = OpenDirSink(tmp.path(), SinkOptions{});
  ASSERT_TRUE(sink.ok());
  ASSERT_TRUE((*sink)->Stage(Mime("S: a\n\n"), "A").ok());
  ASSERT_TRUE((*sink)->Stage(Mime("S: b\n\n"), "B").ok());
  ASSERT_TRUE((*sink)->Flush().ok());
  std::string a = ReadFileOrDie(tmp / "A.mbox"), b = ReadFileOrDie(tmp / "B.mbox");

  ASSERT_TRUE((*sink)->Stage(Mime("S: a2\n\n"), "A").ok());
  ASSERT_TRUE((*sink)->Stage(Mime("S: b2\n\n" + std::string(10000, 'x') + "\n"), "B").ok());
  struct rlimit old;
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &old), 0);
  auto old_handler = ::signal(SIGXFSZ, SIG_IGN);
  struct rlimit lim = old;
  lim.rlim_cur = 1000;
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &lim), 0);
  Status s = (*sink)->Flush();
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &old), 0);
  ::signal(SIGXFSZ, old_handler);
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(ReadFileOrDie(tmp / "A.mbox"), a);
  EXPECT_EQ(ReadFileOrDie(tmp / "B.mbox"), b);
  ASSERT_TRUE((*sink)->Close().ok());
}

TEST(MboxDir, SecondSinkOnSameFolderIsBusy) {
  TempDir tmp;
  auto first = OpenDirSink(tmp.path(), SinkOptions{});
  ASSERT_TRUE(first.ok());
  ASSERT_TRUE((*first)->Stage(Mime("S: 1\n\n"), "Inbox").ok());
  auto second = OpenDirSink(tmp.path(), SinkOptions{});
  ASSERT_TRUE(second.ok());
  Status s = (*second)->Stage(Mime("S: 2\n\n"), "Inbox");
  EXPECT_EQ(s.code(), Status::Code::kBusy) << s.ToString();
  EXPECT_NE(s.message().find("Inbox"), std::string::npos);
  ASSERT_TRUE((*first)->Close().ok());
}

// readpst's own output, copied through source and sink, comes out byte for byte.
// (-j 0: readpst's parallel jobs sometimes crash with a double free.)
TEST(MboxDir, ReadpstOutputCopiesByteIdentical) {
  std::string data = mbx::testing::SharedDataDir();
  if (!HaveProgram("readpst") || data.empty()) GTEST_SKIP() << "readpst or shared data missing";
  if (!HaveRealDates()) GTEST_SKIP() << "mime::ParseDate/FormatAsctime not implemented yet";
  std::string ost = data + "/outlook/pstextractortest@outlook.com.ost";
  if (!fs::Exists(ost)) GTEST_SKIP() << "no " << ost;
  for (std::string mode : {"-q", "-r"}) {
    TempDir tmp;
    std::string in = tmp / "in";
    ASSERT_TRUE(fs::MakeDirs(in).ok());
    auto r = mbx::testing::Run({"readpst", mode, "-q", "-j", "0", "-o", in, ost});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    auto src = OpenDirSource(in);
    ASSERT_TRUE(src.ok());
    auto listed = (*src)->ListFolders();
    ASSERT_TRUE(listed.ok());
    uint64_t total = 0;
    for (const auto& f : *listed) total += f.messages;
    EXPECT_EQ(total, 13u) << mode;  // 10 Inbox, 2 Sent Items, 1 Sync Issues
    auto sink = OpenDirSink(tmp / "out", SinkOptions{});
    ASSERT_TRUE(sink.ok());
    Message m;
    for (;;) {
      auto n = (*src)->Next(&m);
      ASSERT_TRUE(n.ok());
      if (!*n) break;
      ASSERT_FALSE(m.read_error.has_value());
      ASSERT_TRUE((*sink)->Stage(m, m.folder).ok());
    }
    ASSERT_TRUE((*sink)->Close().ok());
    for (const auto& f : ListFilesRecursive(in)) {
      if (f.ends_with("mbox")) {
        std::string out_name = f.ends_with("/mbox") ? f.substr(0, f.size() - 5) + ".mbox" : f;
        EXPECT_EQ(ReadFileOrDie(tmp / "out/" + out_name), ReadFileOrDie(in + "/" + f)) << f;
      }
    }
  }
}

}  // namespace
}  // namespace mbx::mbox
