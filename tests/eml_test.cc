#include "formats/eml/eml.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <filesystem>

#include "tests/test_util.h"

namespace mbx::eml {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::ListFilesRecursive;
using testing::ReadFileOrDie;
using testing::TempDir;
using testing::WriteFileOrDie;
namespace stdfs = std::filesystem;

std::string Mail(const std::string& subject, const std::string& body = "body\n") {
  return "From: a@example.org\nSubject: " + subject + "\n\n" + body;
}

Message MimeMessage(std::string bytes) {
  Message m;
  m.mime = std::move(bytes);
  m.origin = "test";
  return m;
}

std::vector<Message> ReadAll(MailboxSource* src) {
  std::vector<Message> out;
  Message m;
  for (;;) {
    auto r = src->Next(&m);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (!r.ok() || !*r) break;
    out.push_back(std::move(m));
  }
  return out;
}

bool ValidUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    auto b = static_cast<unsigned char>(s[i]);
    size_t len = b < 0x80 ? 1 : (b >> 5) == 6 ? 2 : (b >> 4) == 14 ? 3 : (b >> 3) == 30 ? 4 : 0;
    if (len == 0 || i + len > s.size()) return false;
    for (size_t k = 1; k < len; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
    }
    i += len;
  }
  return true;
}

// Every property a safe name component must have.
void ExpectSafe(const std::string& name, size_t max_bytes = 120) {
  SCOPED_TRACE("name '" + name + "'");
  EXPECT_FALSE(name.empty());
  EXPECT_LE(name.size(), max_bytes);
  EXPECT_TRUE(ValidUtf8(name));
  EXPECT_NE(name[0], '.');
  EXPECT_NE(name.back(), '.');
  EXPECT_NE(name.back(), ' ');
  for (unsigned char c : name) {
    EXPECT_FALSE(c < 0x20 || c == 0x7F || c == '/' || c == '\\') << int(c);
  }
}

TEST(EmlSanitize, HostileNames) {
  EXPECT_EQ(SanitizeComponent("Inbox"), "Inbox");
  EXPECT_EQ(SanitizeComponent("Entwürfe 日本語"), "Entwürfe 日本語");
  EXPECT_EQ(SanitizeComponent("../../etc/passwd"), "_._.._etc_passwd");
  EXPECT_EQ(SanitizeComponent(".."), "_");
  EXPECT_EQ(SanitizeComponent("."), "_");
  EXPECT_EQ(SanitizeComponent(".hidden"), "_hidden");
  EXPECT_EQ(SanitizeComponent(""), "_");
  EXPECT_EQ(SanitizeComponent("   "), "_");
  EXPECT_EQ(SanitizeComponent(std::string("a\0b", 3)), "a_b");
  EXPECT_EQ(SanitizeComponent("a\x01\x1b[31mb\x7f"), "a__[31mb_");
  EXPECT_EQ(SanitizeComponent("tab\tand\r\nnewline"), "tab and newline");
  EXPECT_EQ(SanitizeComponent("trailing. . "), "trailing");
  EXPECT_EQ(SanitizeComponent("a:b*c?d\"e<f>g|h\\i"), "a_b_c_d_e_f_g_h_i");
  EXPECT_EQ(SanitizeComponent("bad\xff\xfe utf8"), "bad__ utf8");
  EXPECT_EQ(SanitizeComponent("evil\u202Egpj.exe"), "evilgpj.exe");  // bidi override dropped
  for (const char* reserved : {"CON", "con", "CON.txt", "con .txt", "PRN", "AUX.tar.gz", "NUL",
                               "COM1", "com9.log", "LPT1", "LPT9.x", "COM¹"}) {
    std::string s = SanitizeComponent(reserved);
    EXPECT_EQ(s, "_" + std::string(reserved).substr(0, s.size() - 1)) << reserved;
  }
  EXPECT_EQ(SanitizeComponent("CONSOLE"), "CONSOLE");
  EXPECT_EQ(SanitizeComponent("COM10"), "COM10");
  EXPECT_EQ(SanitizeComponent("LPT0"), "LPT0");

  std::string huge(10000, 'x');
  EXPECT_EQ(SanitizeComponent(huge), std::string(120, 'x'));
  std::string wide;
  for (int i = 0; i < 5000; ++i) wide += "ü";  // 2 bytes each: must not be cut in half
  std::string cut = SanitizeComponent("a" + wide, 120);
  EXPECT_EQ(cut.size(), 119u);
  EXPECT_EQ(SanitizeComponent("x" + std::string(200, ' ') + "y", 20), "x y");  // runs collapse
  for (const std::string& hostile :
       {std::string("../../etc/passwd"), std::string("\0\0\0", 3), std::string(".\x01."),
        std::string(10000, '.'), "a" + wide, std::string("\xc3"), std::string("CON.txt"),
        std::string(" . . ")}) {
    ExpectSafe(SanitizeComponent(hostile));
  }
}

class EmlSourceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = tmp_ / "tree";
    WriteFileOrDie(root_ + "/b.eml", Mail("b"));
    WriteFileOrDie(root_ + "/a.EML", Mail("a"));
    WriteFileOrDie(root_ + "/notes.txt", "not mail");
    WriteFileOrDie(root_ + "/.hidden.eml", Mail("hidden"));
    WriteFileOrDie(root_ + "/Inbox/Projects/p.eml", Mail("p"));
    WriteFileOrDie(root_ + "/Inbox/i.eml", Mail("i"));
    WriteFileOrDie(root_ + "/Inbox-Old/o.eml", Mail("o"));
    WriteFileOrDie(root_ + "/.git/x.eml", Mail("git"));
    stdfs::create_directories(root_ + "/Empty");
    stdfs::create_directory_symlink("/etc", root_ + "/link-out");
  }
  TempDir tmp_;
  std::string root_;
};

TEST_F(EmlSourceTest, FoldersAndMessagesInOrder) {
  auto src = OpenSource(root_);
  ASSERT_TRUE(src.ok());
  auto folders = (*src)->ListFolders();
  ASSERT_TRUE(folders.ok());
  std::vector<std::string> paths;
  for (const auto& f : *folders) paths.push_back(f.path);
  EXPECT_THAT(paths, ElementsAre("", "Empty", "Inbox", "Inbox/Projects", "Inbox-Old"));
  EXPECT_EQ((*folders)[0].messages, 2u);
  EXPECT_EQ((*folders)[0].bytes, Mail("a").size() + Mail("b").size());

  auto msgs = ReadAll(src->get());
  ASSERT_EQ(msgs.size(), 5u);
  EXPECT_EQ(msgs[0].mime, Mail("a"));
  EXPECT_EQ(msgs[0].folder, "");
  EXPECT_EQ(msgs[0].backing_file, root_ + "/a.EML");
  EXPECT_EQ(msgs[0].flags, 0);
  EXPECT_GT(msgs[0].container_modified, 0);
  EXPECT_THAT(msgs[0].origin, HasSubstr("file 'a.EML'"));
  EXPECT_EQ(msgs[1].mime, Mail("b"));
  EXPECT_EQ(msgs[2].folder, "Inbox");
  EXPECT_EQ(msgs[3].folder, "Inbox/Projects");
  EXPECT_EQ(msgs[4].folder, "Inbox-Old");
}

TEST_F(EmlSourceTest, VanishedFileIsAReadError) {
  auto src = OpenSource(root_);
  ASSERT_TRUE(src.ok());
  Message m;
  ASSERT_TRUE(*(*src)->Next(&m));
  stdfs::remove(root_ + "/b.eml");
  ASSERT_TRUE(*(*src)->Next(&m));
  ASSERT_TRUE(m.read_error.has_value());
  EXPECT_THAT(m.read_error->message(), HasSubstr("b.eml"));
  EXPECT_THAT(m.read_error->message(), HasSubstr("vanished"));
  ASSERT_TRUE(*(*src)->Next(&m));
  EXPECT_EQ(m.mime, Mail("i"));
}

TEST(EmlSink, NamesNumbersDurabilityAndRollback) {
  TempDir tmp;
  std::string root = tmp / "out";
  WriteFileOrDie(root + "/Inbox/000041-old.eml", Mail("old"));
  WriteFileOrDie(root + "/Inbox/.mbxmerge-tmp.1.1", "left by a crashed run");
  auto sink = OpenSink(root, SinkOptions{});
  ASSERT_TRUE(sink.ok()) << sink.status().ToString();
  ASSERT_TRUE((*sink)->Stage(MimeMessage(Mail("Hello World")), "").ok());
  ASSERT_TRUE((*sink)->Stage(MimeMessage(Mail("Re: a/b: c?")), "").ok());
  ASSERT_TRUE((*sink)->Stage(MimeMessage("From: x\n\nno subject\n"), "").ok());
  ASSERT_TRUE((*sink)->Stage(MimeMessage(Mail("continued")), "Inbox").ok());
  ASSERT_TRUE((*sink)->Stage(MimeMessage(Mail("folded\n  subject")), "Inbox").ok());
  // Nothing visible before Flush().
  EXPECT_THAT(ListFilesRecursive(root), ::testing::Contains(::testing::EndsWith(".eml")).Times(1));
  ASSERT_TRUE((*sink)->Flush().ok());
  EXPECT_THAT(ListFilesRecursive(root),
              ElementsAre(".mbxmerge.lock", "000001-Hello World.eml", "000002-Re_ a_b_ c_.eml",
                          "000003-untitled.eml", "Inbox/000041-old.eml",
                          "Inbox/000042-continued.eml", "Inbox/000043-folded subject.eml"));
  EXPECT_EQ(ReadFileOrDie(root + "/000002-Re_ a_b_ c_.eml"), Mail("Re: a/b: c?"));

  ASSERT_TRUE((*sink)->Stage(MimeMessage(Mail("dropped")), "Inbox").ok());
  (*sink)->Rollback();
  ASSERT_TRUE((*sink)->Stage(MimeMessage(Mail("kept")), "Inbox").ok());
  ASSERT_TRUE((*sink)->Close().ok());
  auto files = ListFilesRecursive(root);
  EXPECT_EQ(files.size(), 7u);
  EXPECT_TRUE(std::count(files.begin(), files.end(), "Inbox/000044-kept.eml"))
      << ::testing::PrintToString(files);

  // Read back through the source.
  auto src = OpenSource(root);
  ASSERT_TRUE(src.ok());
  auto msgs = ReadAll(src->get());
  ASSERT_EQ(msgs.size(), 7u);
  EXPECT_EQ(msgs[6].mime, Mail("kept"));
}

TEST(EmlSink, HostileSubjectsAndFoldersStayInsideTheTarget) {
  TempDir tmp;
  std::string root = tmp / "out";
  auto sink = OpenSink(root, SinkOptions{});
  ASSERT_TRUE(sink.ok());
  std::vector<std::string> subjects = {"../../etc/passwd",
                                       std::string("nul\0byte", 8),
                                       "ctl\x01\x02\x1b",
                                       std::string(10000, 'S'),
                                       std::string(10000, '.'),
                                       "CON.txt",
                                       "",
                                       "   "};
  std::string wide;
  for (int i = 0; i < 3000; ++i) wide += "日";
  subjects.push_back(wide);
  for (const auto& s : subjects) ASSERT_TRUE((*sink)->Stage(MimeMessage(Mail(s)), "").ok());
  for (const char* f : {"../..", "../../etc", "/abs/path", "CON", ".git", "a/./b", "x\x01y"}) {
    ASSERT_TRUE((*sink)->Stage(MimeMessage(Mail("f")), f).ok()) << f;
  }
  ASSERT_TRUE((*sink)->Close().ok());
  EXPECT_EQ(ListFilesRecursive(tmp.path()).size(), subjects.size() + 7);
  for (const auto& e : stdfs::directory_iterator(tmp.path())) EXPECT_EQ(e.path().filename(), "out");
  for (const auto& e : stdfs::recursive_directory_iterator(root)) {
    for (const auto& comp : stdfs::relative(e.path(), root)) {
      EXPECT_NE(comp, "..");
      EXPECT_NE(comp, ".");
    }
    std::string name = e.path().filename().string();
    ExpectSafe(name, 120);
  }
  EXPECT_TRUE(stdfs::exists(root + "/000006-CON.txt.eml"));  // not reserved behind the number
  EXPECT_TRUE(stdfs::is_directory(root + "/_CON"));
  EXPECT_TRUE(stdfs::is_directory(root + "/_git"));
  EXPECT_TRUE(stdfs::is_directory(root + "/_/_/etc"));
}

TEST(EmlSink, HardLinksAndLockAndScanExisting) {
  TempDir tmp;
  std::string src_file = tmp / "in/x.eml";
  WriteFileOrDie(src_file, Mail("linked"));
  Message msg = MimeMessage(Mail("linked"));
  msg.backing_file = src_file;
  std::string root = tmp / "out";
  WriteFileOrDie(root + "/Sub/000007-existing.eml", Mail("existing", std::string(40000, 'b')));
  auto sink = OpenSink(root, SinkOptions{});
  ASSERT_TRUE(sink.ok());
  auto second = OpenSink(root, SinkOptions{});
  EXPECT_EQ(second.status().code(), Status::Code::kBusy);

  std::vector<std::pair<std::string, uint64_t>> seen;
  ASSERT_TRUE((*sink)
                  ->ScanExisting([&](const ExistingMessage& e) {
                    EXPECT_EQ(e.head.size(), 16384u);
                    seen.emplace_back(std::string(e.folder), e.locator);
                    return Status::Ok();
                  })
                  .ok());
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].first, "Sub");
  EXPECT_EQ(*(*sink)->ReadExisting(seen[0].second), Mail("existing", std::string(40000, 'b')));

  ASSERT_TRUE((*sink)->Stage(msg, "Sub").ok());
  ASSERT_TRUE((*sink)->Close().ok());
  struct stat a, b;
  ASSERT_EQ(::stat(src_file.c_str(), &a), 0);
  ASSERT_EQ(::stat((root + "/Sub/000008-linked.eml").c_str(), &b), 0);
  EXPECT_EQ(a.st_ino, b.st_ino);
  EXPECT_EQ(ReadFileOrDie(root + "/Sub/000008-linked.eml"), Mail("linked"));
  EXPECT_FALSE(stdfs::exists(root + "/.mbxmerge.lock"));
}

}  // namespace
}  // namespace mbx::eml
