#include "formats/maildir/maildir.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <sstream>

#include "engine/fs.h"
#include "formats/mime/mime.h"
#include "tests/test_util.h"

namespace mbx::maildir {
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

void MakeMaildir(const std::string& dir) {
  for (const char* sub : {"/cur", "/new", "/tmp"}) stdfs::create_directories(dir + sub);
}

std::vector<std::string> Ls(const std::string& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : stdfs::directory_iterator(dir, ec))
    out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
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

Message MimeMessage(std::string bytes, MessageFlags flags = 0) {
  Message m;
  m.mime = std::move(bytes);
  m.flags = flags;
  m.origin = "test";
  return m;
}

ino_t Inode(const std::string& path) {
  struct stat st;
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
  return st.st_ino;
}

// ---- names ----

TEST(MaildirNames, FlagsFromName) {
  EXPECT_EQ(FlagsFromName("1700000000.M1P2Q3.host,S=10:2,FRS"),
            kFlagFlagged | kFlagAnswered | kFlagSeen);
  EXPECT_EQ(FlagsFromName("1.M1.host:2,DPT"), kFlagDraft | kFlagForwarded | kFlagDeleted);
  EXPECT_EQ(FlagsFromName("1.M1.host:2,"), 0);
  EXPECT_EQ(FlagsFromName("1.M1.host"), 0);
  EXPECT_EQ(FlagsFromName("1.M1.host:2,Sab"), kFlagSeen);  // Dovecot keywords are ignored
  EXPECT_EQ(FlagsFromName("1.M1.host:1,S"), 0);            // experimental info, not flags
}

TEST(MaildirNames, InfoSuffixRoundTripsEveryFlagSet) {
  EXPECT_EQ(InfoSuffix(0), ":2,");
  EXPECT_EQ(InfoSuffix(kFlagSeen | kFlagFlagged | kFlagAnswered), ":2,FRS");
  EXPECT_EQ(InfoSuffix(0x3F), ":2,DFPRST");
  EXPECT_EQ(InfoSuffix(kFlagOld | kFlagSeen), ":2,S");  // "old" is cur/, not a letter
  for (int f = 0; f < 64; ++f) {
    EXPECT_EQ(FlagsFromName("123.M4.h" + InfoSuffix(static_cast<MessageFlags>(f))), f) << f;
  }
}

TEST(MaildirNames, ModifiedUtf7FolderNames) {
  EXPECT_EQ(DirNameForFolder(""), "");
  EXPECT_EQ(DirNameForFolder("Sub"), ".Sub");
  EXPECT_EQ(DirNameForFolder("A/B/C"), ".A.B.C");
  EXPECT_EQ(DirNameForFolder("/A//B/"), ".A.B");
  EXPECT_EQ(DirNameForFolder("Entwürfe"), ".Entw&APw-rfe");
  EXPECT_EQ(DirNameForFolder("日本語"), ".&ZeVnLIqe-");  // RFC 3501's own example
  EXPECT_EQ(DirNameForFolder("a&b"), ".a&-b");
  EXPECT_EQ(DirNameForFolder("v1.2/x"), ".v1_2.x");  // '.' is the on-disk separator
  EXPECT_EQ(DirNameForFolder(".."), ".__");
  EXPECT_EQ(DirNameForFolder("😀"), ".&2D3eAA-");  // a surrogate pair

  for (std::string f :
       {"Sub", "A/B/C", "Entwürfe", "日本語", "a&b", "Über/日本語 & more", "😀x", "tab\there"}) {
    EXPECT_EQ(FolderForDirName(DirNameForFolder(f)), f) << f;
  }
  EXPECT_EQ(FolderForDirName("."), "");
  EXPECT_EQ(FolderForDirName(".."), "");
  EXPECT_EQ(FolderForDirName("cur"), "");
  EXPECT_EQ(FolderForDirName(".A..B"), "A/B");
  EXPECT_EQ(FolderForDirName(".Raw UTF-8 Ü"), "Raw UTF-8 Ü");  // written by other tools
  EXPECT_EQ(FolderForDirName(".bad&ZZZ"), "bad&ZZZ");          // not mUTF-7: kept as is
  EXPECT_EQ(FolderForDirName(".x&AC8-y"), "x_y");              // an encoded '/' is no separator
  EXPECT_EQ(DecodeModifiedUtf7("&Jjo-!"), "☺!");
  EXPECT_EQ(DecodeModifiedUtf7("&U,BTFw-"), "台北");
  EXPECT_FALSE(DecodeModifiedUtf7("&2D3-").has_value());  // lone surrogate
  EXPECT_EQ(EncodeModifiedUtf7("\xff"), "&,,0-");         // invalid UTF-8 -> U+FFFD
}

// ---- source ----

class MaildirSourceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = tmp_ / "Maildir";
    MakeMaildir(root_);
    WriteFileOrDie(root_ + "/new/1700000002.M2P1.host,S=40", Mail("new two"));
    WriteFileOrDie(root_ + "/new/1700000001.M1P1.host", Mail("new one"));
    WriteFileOrDie(root_ + "/cur/1600000000.M9P1.host:2,FS", Mail("cur flagged"));
    WriteFileOrDie(root_ + "/cur/junk-name:2,", Mail("cur no stamp"));
    WriteFileOrDie(root_ + "/tmp/1.M1P1.host", Mail("half delivered"));
    WriteFileOrDie(root_ + "/new/.hidden", "x");
    WriteFileOrDie(root_ + "/dovecot-uidlist", "3 V1 N1\n");
    WriteFileOrDie(root_ + "/subscriptions", "Sub\n");
    MakeMaildir(root_ + "/.Sub.Deep");
    WriteFileOrDie(root_ + "/.Sub.Deep/maildirfolder", "");
    WriteFileOrDie(root_ + "/.Sub.Deep/cur/5.M1P1.host:2,R", Mail("deep"));
    MakeMaildir(root_ + "/.Sub");
    WriteFileOrDie(root_ + "/.Sub/new/3.M1P1.host", Mail("sub"));
    MakeMaildir(root_ + "/.Entw&APw-rfe");
    WriteFileOrDie(root_ + "/.Entw&APw-rfe/cur/4.M1P1.host:2,D", Mail("draft"));
    MakeMaildir(root_ + "/.Sub-Sibling");
    stdfs::create_directories(root_ + "/.not-a-maildir/stuff");
    stdfs::create_directories(root_ + "/.git");
    ::utimes((root_ + "/cur/junk-name:2,").c_str(), nullptr);
  }
  TempDir tmp_;
  std::string root_;
};

TEST_F(MaildirSourceTest, ListsFoldersRootFirstParentsBeforeChildren) {
  auto src = OpenSource(root_);
  ASSERT_TRUE(src.ok()) << src.status().ToString();
  auto folders = (*src)->ListFolders();
  ASSERT_TRUE(folders.ok()) << folders.status().ToString();
  std::vector<std::string> paths;
  for (const auto& f : *folders) paths.push_back(f.path);
  EXPECT_THAT(paths, ElementsAre("", "Entwürfe", "Sub", "Sub/Deep", "Sub-Sibling"));
  EXPECT_EQ((*folders)[0].messages, 4u);
  // ",S=40" is trusted as written; the other three files are stat()ed.
  EXPECT_EQ((*folders)[0].bytes,
            40 + Mail("new one").size() + Mail("cur flagged").size() + Mail("cur no stamp").size());
  EXPECT_EQ((*folders)[3].messages, 1u);
  EXPECT_EQ((*folders)[4].messages, 0u);
}

TEST_F(MaildirSourceTest, ReadsNewThenCurSortedWithFlagsAndTimes) {
  auto src = OpenSource(root_);
  ASSERT_TRUE(src.ok());
  auto msgs = ReadAll(src->get());
  ASSERT_EQ(msgs.size(), 7u);
  EXPECT_EQ(msgs[0].mime, Mail("new one"));
  EXPECT_EQ(msgs[0].folder, "");
  EXPECT_EQ(msgs[0].flags, 0);
  EXPECT_EQ(msgs[0].container_delivered, 1700000001);
  EXPECT_EQ(msgs[0].backing_file, root_ + "/new/1700000001.M1P1.host");
  EXPECT_THAT(msgs[0].origin, HasSubstr("folder '' file 'new/1700000001.M1P1.host'"));
  EXPECT_EQ(msgs[1].mime, Mail("new two"));
  EXPECT_EQ(msgs[2].mime, Mail("cur flagged"));
  EXPECT_EQ(msgs[2].flags, kFlagFlagged | kFlagSeen | kFlagOld);
  EXPECT_EQ(msgs[2].container_delivered, 1600000000);
  EXPECT_EQ(msgs[3].mime, Mail("cur no stamp"));
  EXPECT_EQ(msgs[3].flags, kFlagOld);
  EXPECT_GT(msgs[3].container_delivered, 1600000000);  // no stamp in the name: the mtime
  EXPECT_EQ(msgs[3].container_delivered, msgs[3].container_modified);
  EXPECT_EQ(msgs[4].folder, "Entwürfe");
  EXPECT_EQ(msgs[4].flags, kFlagDraft | kFlagOld);
  EXPECT_EQ(msgs[5].folder, "Sub");
  EXPECT_EQ(msgs[5].mime, Mail("sub"));
  EXPECT_EQ(msgs[6].folder, "Sub/Deep");
  EXPECT_EQ(msgs[6].flags, kFlagAnswered | kFlagOld);
  for (const auto& m : msgs) EXPECT_FALSE(m.read_error.has_value()) << m.origin;
}

TEST_F(MaildirSourceTest, FolderFilterSkipsFolders) {
  auto src = OpenSource(root_);
  ASSERT_TRUE(src.ok());
  (*src)->SetFolderFilter([](std::string_view f) { return f.substr(0, 3) == "Sub"; });
  auto msgs = ReadAll(src->get());
  ASSERT_EQ(msgs.size(), 2u);
  EXPECT_EQ(msgs[0].folder, "Sub");
  EXPECT_EQ(msgs[1].folder, "Sub/Deep");
}

TEST_F(MaildirSourceTest, VanishedAndUnreadableFilesAreReadErrorsAndTheRunGoesOn) {
  auto src = OpenSource(root_);
  ASSERT_TRUE(src.ok());
  Message m;
  ASSERT_TRUE(*(*src)->Next(&m));  // lists the root folder
  // A mail client marks the second one read: new/ -> cur/ behind our back.
  stdfs::rename(root_ + "/new/1700000002.M2P1.host,S=40",
                root_ + "/cur/1700000002.M2P1.host,S=40:2,S");
  // And the third becomes something that cannot be read as a file.
  stdfs::remove(root_ + "/cur/1600000000.M9P1.host:2,FS");
  stdfs::create_directory(root_ + "/cur/1600000000.M9P1.host:2,FS");
  ASSERT_TRUE(*(*src)->Next(&m));
  ASSERT_TRUE(m.read_error.has_value());
  EXPECT_EQ(m.read_error->code(), Status::Code::kNotFound);
  EXPECT_THAT(m.read_error->message(), HasSubstr("new/1700000002.M2P1.host,S=40"));
  EXPECT_THAT(m.read_error->message(), HasSubstr("vanished"));
  ASSERT_TRUE(*(*src)->Next(&m));
  ASSERT_TRUE(m.read_error.has_value());
  EXPECT_THAT(m.read_error->message(), HasSubstr("not a regular file"));
  ASSERT_TRUE(*(*src)->Next(&m));
  EXPECT_FALSE(m.read_error.has_value());
  EXPECT_EQ(m.mime, Mail("cur no stamp"));
}

TEST(MaildirSource, RejectsWhatIsNotAMaildir) {
  TempDir tmp;
  EXPECT_EQ(OpenSource(tmp / "missing").status().code(), Status::Code::kNotFound);
  EXPECT_EQ(OpenSource(tmp.path()).status().code(), Status::Code::kInvalidArgument);
}

// ---- sink ----

TEST(MaildirSink, NothingVisibleBeforeFlushExactBytesAfter) {
  TempDir tmp;
  std::string root = tmp / "target";
  auto sink = OpenSink(root, SinkOptions{});
  ASSERT_TRUE(sink.ok()) << sink.status().ToString();
  EXPECT_TRUE(IsMaildir(root));
  std::string big(300000, 'x');
  ASSERT_TRUE((*sink)->Stage(MimeMessage(Mail("plain")), "").ok());
  ASSERT_TRUE((*sink)->Stage(MimeMessage(Mail("seen", big), kFlagSeen | kFlagFlagged), "").ok());
  ASSERT_TRUE((*sink)->Stage(MimeMessage(Mail("old"), kFlagOld), "Sub/Deep").ok());
  ASSERT_TRUE((*sink)->Stage(MimeMessage(Mail("umlaut")), "Entwürfe").ok());
  // Staged: only tmp/ has them.
  EXPECT_TRUE(Ls(root + "/new").empty());
  EXPECT_TRUE(Ls(root + "/cur").empty());
  EXPECT_EQ(Ls(root + "/tmp").size(), 2u);
  EXPECT_TRUE(Ls(root + "/.Sub.Deep/cur").empty());
  EXPECT_EQ(Ls(root + "/.Sub.Deep/tmp").size(), 1u);
  EXPECT_TRUE(stdfs::exists(root + "/.Sub.Deep/maildirfolder"));
  EXPECT_TRUE(stdfs::exists(root + "/.Entw&APw-rfe/maildirfolder"));

  ASSERT_TRUE((*sink)->Flush().ok());
  EXPECT_TRUE(Ls(root + "/tmp").empty());
  auto news = Ls(root + "/new");
  auto curs = Ls(root + "/cur");
  ASSERT_EQ(news.size(), 1u);
  ASSERT_EQ(curs.size(), 1u);
  // "<sec>.M<usec>P<pid>Q<n>.<host>,S=<size>" (no std::regex: GCC warns under ASan).
  const std::string& n = news[0];
  size_t m = n.find(".M"), p = n.find('P', m), q = n.find('Q', p), host = n.find('.', q),
         size = n.rfind(",S=");
  ASSERT_TRUE(m != std::string::npos && p != std::string::npos && q != std::string::npos &&
              host != std::string::npos && size != std::string::npos)
      << n;
  auto digits = [&](size_t from, size_t to) {
    return to > from && std::all_of(n.begin() + from, n.begin() + to, ::isdigit);
  };
  EXPECT_TRUE(digits(0, m) && digits(m + 2, p) && digits(p + 1, q) && digits(q + 1, host)) << n;
  EXPECT_EQ(n.substr(p + 1, q - p - 1), std::to_string(::getpid()));
  EXPECT_EQ(n.substr(size + 3), std::to_string(Mail("plain").size()));
  EXPECT_EQ(ReadFileOrDie(root + "/new/" + news[0]), Mail("plain"));
  EXPECT_TRUE(curs[0].ends_with(",S=" + std::to_string(Mail("seen", big).size()) + ":2,FS"))
      << curs[0];
  EXPECT_EQ(ReadFileOrDie(root + "/cur/" + curs[0]), Mail("seen", big));
  auto deep = Ls(root + "/.Sub.Deep/cur");
  ASSERT_EQ(deep.size(), 1u);
  EXPECT_TRUE(deep[0].ends_with(":2,")) << deep[0];  // old, no letters: still cur/
  EXPECT_EQ(Ls(root + "/.Entw&APw-rfe/new").size(), 1u);

  // Rollback leaves the mailbox as after the last Flush().
  ASSERT_TRUE((*sink)->Stage(MimeMessage(Mail("dropped")), "").ok());
  ASSERT_TRUE((*sink)->Stage(MimeMessage(Mail("dropped too")), "New/Folder").ok());
  (*sink)->Rollback();
  EXPECT_TRUE(Ls(root + "/tmp").empty());
  EXPECT_TRUE(Ls(root + "/.New.Folder/tmp").empty());
  EXPECT_EQ(Ls(root + "/new"), news);
  ASSERT_TRUE((*sink)->Close().ok());
  EXPECT_TRUE((*sink)->Close().ok());  // idempotent
  EXPECT_FALSE(stdfs::exists(root + "/.mbxmerge.lock"));
  // Nothing outside the target.
  EXPECT_THAT(Ls(tmp.path()), ElementsAre("target"));
}

TEST(MaildirSink, PerFileFsyncModeAndReadBackThroughTheSource) {
  TempDir tmp;
  SinkOptions opts;
  opts.batch_sync = false;
  auto sink = OpenSink(tmp / "t", opts);
  ASSERT_TRUE(sink.ok());
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE((*sink)
                    ->Stage(MimeMessage(Mail("m" + std::to_string(i)), i % 2 ? kFlagSeen : 0),
                            i < 3 ? "" : "日本語")
                    .ok());
  }
  ASSERT_TRUE((*sink)->Close().ok());
  auto src = OpenSource(tmp / "t");
  ASSERT_TRUE(src.ok());
  auto msgs = ReadAll(src->get());
  ASSERT_EQ(msgs.size(), 5u);
  std::multiset<std::string> bodies;
  int seen = 0;
  for (const auto& m : msgs) {
    bodies.insert(m.mime);
    if (m.flags & kFlagSeen) ++seen;
  }
  EXPECT_EQ(seen, 2);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(bodies.count(Mail("m" + std::to_string(i))), 1u);
  EXPECT_EQ(msgs.back().folder, "日本語");
}

TEST(MaildirSink, HardLinksOnTheSameFileSystemAndCopiesOtherwise) {
  TempDir tmp;
  std::string src_file = tmp / "src/cur/1.M1P1.h:2,S";
  WriteFileOrDie(src_file, Mail("linked"));
  Message msg = MimeMessage(Mail("linked"), kFlagSeen);
  msg.backing_file = src_file;
  {
    auto sink = OpenSink(tmp / "linked", SinkOptions{});
    ASSERT_TRUE(sink.ok());
    ASSERT_TRUE((*sink)->Stage(msg, "").ok());
    ASSERT_TRUE((*sink)->Close().ok());
    auto curs = Ls(tmp / "linked/cur");
    ASSERT_EQ(curs.size(), 1u);
    EXPECT_EQ(Inode(tmp / "linked/cur/" + curs[0]), Inode(src_file));
    EXPECT_EQ(ReadFileOrDie(tmp / "linked/cur/" + curs[0]), Mail("linked"));
  }
  {
    SinkOptions opts;
    opts.allow_hardlinks = false;
    auto sink = OpenSink(tmp / "copied", opts);
    ASSERT_TRUE(sink.ok());
    ASSERT_TRUE((*sink)->Stage(msg, "").ok());
    ASSERT_TRUE((*sink)->Close().ok());
    auto curs = Ls(tmp / "copied/cur");
    ASSERT_EQ(curs.size(), 1u);
    EXPECT_NE(Inode(tmp / "copied/cur/" + curs[0]), Inode(src_file));
    EXPECT_EQ(ReadFileOrDie(tmp / "copied/cur/" + curs[0]), Mail("linked"));
  }
  {
    // The backing file is gone: link() fails and the bytes are copied.
    Message gone = msg;
    gone.backing_file = tmp / "nowhere";
    auto sink = OpenSink(tmp / "fallback", SinkOptions{});
    ASSERT_TRUE(sink.ok());
    ASSERT_TRUE((*sink)->Stage(gone, "").ok());
    ASSERT_TRUE((*sink)->Close().ok());
    auto curs = Ls(tmp / "fallback/cur");
    ASSERT_EQ(curs.size(), 1u);
    EXPECT_EQ(ReadFileOrDie(tmp / "fallback/cur/" + curs[0]), Mail("linked"));
  }
}

TEST(MaildirSink, SecondWriterIsRefusedAsBusy) {
  TempDir tmp;
  auto first = OpenSink(tmp / "t", SinkOptions{});
  ASSERT_TRUE(first.ok());
  EXPECT_TRUE(stdfs::exists(tmp / "t/.mbxmerge.lock"));
  auto second = OpenSink(tmp / "t", SinkOptions{});
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), Status::Code::kBusy);
  EXPECT_THAT(second.status().message(), HasSubstr(tmp / "t"));
  ASSERT_TRUE((*first)->Close().ok());
  auto third = OpenSink(tmp / "t", SinkOptions{});
  EXPECT_TRUE(third.ok()) << third.status().ToString();
  third->reset();
  // A dotlock left by a crashed run (no flock behind it) is broken.
  WriteFileOrDie(tmp / "t/.mbxmerge.lock", "999999\n");
  auto fourth = OpenSink(tmp / "t", SinkOptions{});
  EXPECT_TRUE(fourth.ok()) << fourth.status().ToString();
}

TEST(MaildirSink, DestroyedWithoutCloseDropsStagedMessages) {
  TempDir tmp;
  {
    auto sink = OpenSink(tmp / "t", SinkOptions{});
    ASSERT_TRUE(sink.ok());
    ASSERT_TRUE((*sink)->Stage(MimeMessage(Mail("x")), "").ok());
  }
  EXPECT_THAT(ListFilesRecursive(tmp / "t"), ::testing::IsEmpty());
}

TEST(MaildirSink, CreateFalseRefusesAMissingMaildir) {
  TempDir tmp;
  SinkOptions opts;
  opts.create = false;
  EXPECT_EQ(OpenSink(tmp / "t", opts).status().code(), Status::Code::kNotFound);
  EXPECT_FALSE(stdfs::exists(tmp / "t"));
}

TEST(MaildirSink, ScanExistingAndReadExisting) {
  TempDir tmp;
  std::string root = tmp / "t";
  MakeMaildir(root);
  std::string long_headers = "From: a@example.org\n";
  while (long_headers.size() < 40000) long_headers += "X-Filler: " + std::string(70, 'f') + "\n";
  std::string big = long_headers + "Subject: big\n\nbody\n";
  WriteFileOrDie(root + "/new/1.M1P1.h", Mail("one"));
  WriteFileOrDie(root + "/cur/2.M1P1.h:2,S", big);
  MakeMaildir(root + "/.&ZeVnLIqe-");
  WriteFileOrDie(root + "/.&ZeVnLIqe-/cur/3.M1P1.h:2,", Mail("three", std::string(50000, 'b')));

  auto sink = OpenSink(root, SinkOptions{});
  ASSERT_TRUE(sink.ok());
  struct Seen {
    std::string folder, head;
    uint64_t locator;
  };
  std::vector<Seen> seen;
  ASSERT_TRUE((*sink)
                  ->ScanExisting([&](const ExistingMessage& e) {
                    seen.push_back({std::string(e.folder), std::string(e.head), e.locator});
                    return Status::Ok();
                  })
                  .ok());
  ASSERT_EQ(seen.size(), 3u);
  EXPECT_EQ(seen[0].folder, "");
  EXPECT_EQ(seen[0].head, Mail("one"));
  EXPECT_EQ(seen[1].folder, "");
  // The header block is longer than 16 KiB: the head is extended to hold it.
  EXPECT_GT(seen[1].head.size(), 16384u);
  EXPECT_LT(mime::BodyOffset(seen[1].head), seen[1].head.size() + 1);
  EXPECT_EQ(mime::HeaderBlock(seen[1].head), mime::HeaderBlock(big));
  EXPECT_EQ(seen[2].folder, "日本語");
  EXPECT_EQ(seen[2].head.size(), 16384u);  // the body is not read
  for (size_t i = 0; i < seen.size(); ++i) {
    auto bytes = (*sink)->ReadExisting(seen[i].locator);
    ASSERT_TRUE(bytes.ok());
    EXPECT_EQ(bytes->substr(0, seen[i].head.size()), seen[i].head);
  }
  EXPECT_EQ(*(*sink)->ReadExisting(seen[1].locator), big);
  // A mail client moved and flagged it since the scan: still found.
  stdfs::rename(root + "/new/1.M1P1.h", root + "/cur/1.M1P1.h:2,RS");
  auto moved = (*sink)->ReadExisting(seen[0].locator);
  ASSERT_TRUE(moved.ok()) << moved.status().ToString();
  EXPECT_EQ(*moved, Mail("one"));
  EXPECT_FALSE((*sink)->ReadExisting(99).ok());
  // A callback error stops the scan and is returned.
  int calls = 0;
  Status s = (*sink)->ScanExisting([&](const ExistingMessage&) {
    ++calls;
    return Status::Aborted("stop");
  });
  EXPECT_EQ(s.code(), Status::Code::kAborted);
  EXPECT_EQ(calls, 1);
}

TEST(MaildirSink, FolderNamesCannotEscapeTheMaildir) {
  TempDir tmp;
  auto sink = OpenSink(tmp / "t", SinkOptions{});
  ASSERT_TRUE(sink.ok());
  for (const char* f : {"..", "../..", "../../etc", "a/../../b", ".hidden", "x/./y"}) {
    ASSERT_TRUE((*sink)->Stage(MimeMessage(Mail(f)), f).ok()) << f;
  }
  ASSERT_TRUE((*sink)->Close().ok());
  EXPECT_THAT(Ls(tmp.path()), ElementsAre("t"));
  for (const auto& name : Ls(tmp / "t")) {
    if (name == "cur" || name == "new" || name == "tmp") continue;
    EXPECT_EQ(name[0], '.') << name;
    EXPECT_NE(name, "..");
    EXPECT_TRUE(IsMaildir(tmp / "t/" + name)) << name;
  }
}

// ---- against software nobody here wrote ----

TEST(MaildirInterop, MblazeSeesOurMessagesAndWeSeeItsFlags) {
  if (!testing::HaveProgram("mlist") || !testing::HaveProgram("mflag"))
    GTEST_SKIP() << "mblaze missing";
  TempDir tmp;
  std::string root = tmp / "t";
  auto sink = OpenSink(root, SinkOptions{});
  ASSERT_TRUE(sink.ok());
  ASSERT_TRUE((*sink)->Stage(MimeMessage(Mail("a")), "").ok());
  ASSERT_TRUE((*sink)->Stage(MimeMessage(Mail("b"), kFlagSeen), "").ok());
  ASSERT_TRUE((*sink)->Stage(MimeMessage(Mail("c"), kFlagSeen | kFlagOld), "").ok());
  ASSERT_TRUE((*sink)->Stage(MimeMessage(Mail("d")), "Sub").ok());
  ASSERT_TRUE((*sink)->Close().ok());

  auto all = testing::Run({"mlist", root});
  ASSERT_EQ(all.exit_code, 0) << all.err;
  EXPECT_EQ(std::count(all.out.begin(), all.out.end(), '\n'), 3);
  auto seen = testing::Run({"mlist", "-S", root});  // only seen messages
  EXPECT_EQ(std::count(seen.out.begin(), seen.out.end(), '\n'), 2);
  auto sub = testing::Run({"mlist", root + "/.Sub"});
  EXPECT_EQ(std::count(sub.out.begin(), sub.out.end(), '\n'), 1);

  // mflag renames the file to add flags; our source reads them back.
  std::string first = all.out.substr(0, all.out.find('\n'));
  auto flagged = testing::Run({"mflag", "-F", "-R", first});
  ASSERT_EQ(flagged.exit_code, 0) << flagged.err;
  auto src = OpenSource(root);
  ASSERT_TRUE(src.ok());
  int flagged_seen = 0;
  for (const auto& m : ReadAll(src->get())) {
    if ((m.flags & kFlagFlagged) && (m.flags & kFlagAnswered)) ++flagged_seen;
  }
  EXPECT_EQ(flagged_seen, 1);
}

// Runs doveadm as an unprivileged user on a copy of `maildir` (doveadm writes its
// index files into the Maildir). Returns stdout, or "" with `*skip` set.
class Doveadm {
 public:
  Doveadm() {
    if (!testing::HaveProgram("doveadm") || !testing::HaveProgram("runuser")) return;
    WriteFileOrDie(tmp_ / "dovecot.conf",
                   "log_path = /dev/stderr\n"
                   "namespace inbox {\n  inbox = yes\n  separator = /\n}\n");
    stdfs::create_directories(tmp_ / "home");
    stdfs::permissions(tmp_.path(), stdfs::perms::all);
    stdfs::permissions(tmp_ / "home", stdfs::perms::all);
    ok_ = true;
  }
  bool ok() const { return ok_; }
  // Copies `maildir` into a directory the unprivileged user owns.
  std::string Copy(const std::string& maildir) {
    std::string dst = tmp_ / "mail";
    stdfs::remove_all(dst);
    stdfs::copy(maildir, dst, stdfs::copy_options::recursive);
    testing::Run({"chown", "-R", "nobody", dst});
    return dst;
  }
  testing::CommandResult Run(const std::string& maildir, const std::vector<std::string>& args,
                             const std::string& stdin_file = "") {
    std::string cmd = "exec runuser -u nobody -- env USER=nobody HOME=" + tmp_ / "home" +
                      " doveadm -c " + tmp_ / "dovecot.conf" +
                      " -o mail_location=maildir:" + maildir;
    for (const auto& a : args) cmd += " '" + a + "'";
    if (!stdin_file.empty()) cmd += " < " + stdin_file;
    return testing::Run({"sh", "-c", cmd});
  }

 private:
  TempDir tmp_;
  bool ok_ = false;
};

TEST(MaildirInterop, DovecotSeesTheSameFoldersAndCounts) {
  Doveadm dove;
  if (!dove.ok()) GTEST_SKIP() << "doveadm or runuser missing";
  TempDir tmp;
  std::string root = tmp / "t";
  {
    auto sink = OpenSink(root, SinkOptions{});
    ASSERT_TRUE(sink.ok());
    int n = 0;
    for (const char* f : {"", "", "Entwürfe", "日本語", "日本語", "a&b", "Sub/Deep", "v1.2"}) {
      ASSERT_TRUE(
          (*sink)
              ->Stage(MimeMessage(Mail(std::to_string(n)), n % 2 ? kFlagSeen | kFlagFlagged : 0), f)
              .ok());
      ++n;
    }
    ASSERT_TRUE((*sink)->Close().ok());
  }
  auto src = OpenSource(root);
  ASSERT_TRUE(src.ok());
  auto folders = (*src)->ListFolders();
  ASSERT_TRUE(folders.ok());
  std::set<std::string> ours;
  for (const auto& f : *folders) {
    ours.insert((f.path.empty() ? "INBOX" : f.path) + " messages=" + std::to_string(f.messages));
  }

  std::string copy = dove.Copy(root);
  auto r = dove.Run(copy, {"mailbox", "status", "messages", "*"});
  if (r.exit_code != 0 && r.err.find("auth") != std::string::npos) GTEST_SKIP() << r.err;
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::set<std::string> theirs;
  std::istringstream lines(r.out);
  for (std::string line; std::getline(lines, line);) {
    if (line.starts_with("Sub messages=0")) continue;  // Dovecot shows the implied parent
    theirs.insert(line);
  }
  EXPECT_EQ(ours, theirs) << r.out;
  EXPECT_TRUE(theirs.count("Entwürfe messages=1"));
  EXPECT_TRUE(theirs.count("日本語 messages=2"));
  EXPECT_TRUE(theirs.count("a&b messages=1"));
  EXPECT_TRUE(theirs.count("v1_2 messages=1"));

  auto flags = dove.Run(copy, {"fetch", "flags", "mailbox", "INBOX"});
  ASSERT_EQ(flags.exit_code, 0) << flags.err;
  EXPECT_THAT(flags.out, HasSubstr("\\Flagged \\Seen"));
}

TEST(MaildirInterop, WeReadWhatDovecotWrites) {
  Doveadm dove;
  if (!dove.ok()) GTEST_SKIP() << "doveadm or runuser missing";
  TempDir tmp;
  std::string empty = tmp / "seed";
  MakeMaildir(empty);
  std::string root = dove.Copy(empty);
  auto made = dove.Run(root, {"mailbox", "create", "Ünïcödé/Kid & Co"});
  if (made.exit_code != 0 && made.err.find("auth") != std::string::npos) GTEST_SKIP() << made.err;
  ASSERT_EQ(made.exit_code, 0) << made.err;
  std::string file = tmp / "msg.eml";
  WriteFileOrDie(file, Mail("from dovecot"));
  stdfs::permissions(tmp.path(), stdfs::perms::all);
  stdfs::permissions(file, stdfs::perms::all);
  auto saved = dove.Run(root, {"save", "-m", "Ünïcödé/Kid & Co"}, file);
  ASSERT_EQ(saved.exit_code, 0) << saved.err;

  auto src = OpenSource(root);
  ASSERT_TRUE(src.ok());
  auto folders = (*src)->ListFolders();
  ASSERT_TRUE(folders.ok());
  std::vector<std::string> paths;
  for (const auto& f : *folders) paths.push_back(f.path);
  // Dovecot creates no directory for the implied parent "Ünïcödé".
  EXPECT_THAT(paths, ElementsAre("", "Ünïcödé/Kid & Co"));
  auto msgs = ReadAll(src->get());
  ASSERT_EQ(msgs.size(), 1u);
  EXPECT_EQ(msgs[0].folder, "Ünïcödé/Kid & Co");
  EXPECT_EQ(msgs[0].mime, Mail("from dovecot"));
}

// Files a killed run of ours staged in tmp/ are removed when the next run
// opens the Maildir; another MDA's delivery in progress (another host's name,
// or a live process) is left alone.
TEST(MaildirSinkTest, OpenRemovesOrphanedTmpFilesOfDeadRunsOnly) {
  TempDir tmp;
  const std::string root = tmp / "md";
  for (const char* sub : {"/tmp", "/new", "/cur", "/.Work/tmp", "/.Work/new", "/.Work/cur"})
    stdfs::create_directories(root + sub);
  WriteFileOrDie(root + "/.Work/maildirfolder", "");
  // pid_max is at most 2^22, so pid 99999999 never exists.
  const std::string host = fs::Hostname();
  const std::string dead = "1700000000.M1P99999999Q3." + host + ",S=5";
  const std::string live = "1700000000.M2P" + std::to_string(::getpid()) + "Q1." + host + ",S=5";
  const std::string other_host = "1700000000.M3P99999999Q1.elsewhere,S=5";
  const std::string other_mda = "1700000000.99999999_1." + host;
  for (const std::string& dir : {root + "/tmp/", root + "/.Work/tmp/"}) {
    for (const auto& name : {dead, live, other_host, other_mda}) WriteFileOrDie(dir + name, "x\n\n");
  }
  auto sink = OpenSink(root, SinkOptions{});
  ASSERT_TRUE(sink.ok()) << sink.status().ToString();
  for (const std::string& dir : {root + "/tmp/", root + "/.Work/tmp/"}) {
    EXPECT_FALSE(stdfs::exists(dir + dead)) << dir;
    EXPECT_TRUE(stdfs::exists(dir + live)) << dir;
    EXPECT_TRUE(stdfs::exists(dir + other_host)) << dir;
    EXPECT_TRUE(stdfs::exists(dir + other_mda)) << dir;
  }
}

}  // namespace
}  // namespace mbx::maildir
