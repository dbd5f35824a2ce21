// The PST source against libpff's own exporter: on each real Outlook file in
// the shared data folder, message counts per folder, subjects, bodies and
// attachment bytes equal what pffexport writes; a non-PST file is refused
// with exit status 2 and one error line.
#include "formats/pst/pst.h"

#include <dirent.h>
#include <gmime/gmime.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <functional>
#include <map>
#include <regex>
#include <string>
#include <vector>

#include "formats/pst/vcard_ical.h"
#include "formats/registry.h"
#include "tests/test_util.h"

namespace mbx {
namespace {

using testing::TempDir;

std::vector<std::string> PstFiles() { return testing::SharedOutlookFiles(); }

std::vector<std::string> ListDir(const std::string& dir) {
  std::vector<std::string> out;
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return out;
  while (dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n != "." && n != "..") out.push_back(n);
  }
  ::closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

bool IsDir(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}
bool IsFile(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

// pffexport names an item directory after its type and 1-based index in the folder.
const std::regex kItemDir("^[A-Z][A-Za-z]*([0-9]{5})$");

// Maps a pffexport folder path below the top of the store to mbxmerge's
// folder path (special folders by role, as the PST source does).
std::string MapFolder(const std::vector<std::string>& comps) {
  if (comps.empty()) return "";
  static const std::map<std::string, std::string> kRoles = {{"Sent Items", "Sent"},
                                                            {"Deleted Items", "Trash"},
                                                            {"Drafts", "Drafts"},
                                                            {"Junk Email", "Junk"},
                                                            {"Junk E-mail", "Junk"}};
  std::string out;
  size_t i = 1;
  if (comps[0] == "Inbox") {
    out = comps.size() == 1 ? "" : "INBOX";
  } else if (auto it = kRoles.find(comps[0]); it != kRoles.end()) {
    out = it->second;
  } else {
    out = comps[0];
  }
  for (; i < comps.size(); ++i) out += (out.empty() ? "" : "/") + comps[i];
  return out;
}

struct ExportFolder {
  std::string dir;                   // on disk
  std::map<int, std::string> items;  // index -> item directory
};

// Walks a pffexport tree below the top of the store.
void WalkExport(const std::string& dir, std::vector<std::string> comps,
                std::map<std::string, ExportFolder>* out) {
  ExportFolder& f = (*out)[MapFolder(comps)];
  f.dir = dir;
  for (const std::string& n : ListDir(dir)) {
    std::string p = dir + "/" + n;
    if (!IsDir(p)) continue;
    std::smatch m;
    if (std::regex_match(n, m, kItemDir)) {
      f.items[std::stoi(m[1].str())] = p;
    } else {
      auto c = comps;
      c.push_back(n);
      WalkExport(p, c, out);
    }
  }
}

// The top of the information store in a pffexport tree.
std::string FindTop(const std::string& export_dir) {
  for (const char* top :
       {"Top of Personal Folders", "Top of Outlook data file", "Root - Mailbox/IPM_SUBTREE"}) {
    if (IsDir(export_dir + "/" + top)) return export_dir + "/" + top;
  }
  return "";
}

std::string Crlf2Lf(std::string s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\r' && i + 1 < s.size() && s[i + 1] == '\n') continue;
    out.push_back(s[i]);
  }
  while (!out.empty() && (out.back() == '\n' || out.back() == '\0')) out.pop_back();
  return out;
}

// "Subject:\t\t\t\tvalue" from pffexport's item description files.
std::string ExportSubject(const std::string& item_dir) {
  for (const char* f :
       {"OutlookHeaders.txt", "Appointment.txt", "Meeting.txt", "Contact.txt", "Task.txt"}) {
    std::string p = item_dir + "/" + f;
    if (!IsFile(p)) continue;
    std::string text = testing::ReadFileOrDie(p);
    size_t at = text.find("\nSubject:");
    if (at == std::string::npos) continue;
    size_t b = text.find_first_not_of("\t ", at + 9);
    size_t e = text.find('\n', b);
    return text.substr(b, e - b);
  }
  return "";
}

std::string DecodedContent(GMimePart* part) {
  GMimeDataWrapper* w = g_mime_part_get_content(part);
  if (w == nullptr) return "";
  GMimeStream* mem = g_mime_stream_mem_new();
  g_mime_data_wrapper_write_to_stream(w, mem);
  GByteArray* arr = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(mem));
  std::string s(reinterpret_cast<const char*>(arr->data), arr->len);
  g_object_unref(mem);
  return s;
}

struct Parsed {
  std::string subject;
  std::string text;
  std::string html;
  std::string rtf;
  std::vector<std::pair<std::string, std::string>> attachments;  // name, bytes
  std::vector<GMimeMessage*> embedded;
};

void Collect(GMimeObject* obj, Parsed* out) {
  if (GMIME_IS_MULTIPART(obj)) {
    GMimeMultipart* mp = GMIME_MULTIPART(obj);
    for (int i = 0; i < g_mime_multipart_get_count(mp); ++i)
      Collect(g_mime_multipart_get_part(mp, i), out);
  } else if (GMIME_IS_MESSAGE_PART(obj)) {
    out->embedded.push_back(g_mime_message_part_get_message(GMIME_MESSAGE_PART(obj)));
  } else if (GMIME_IS_PART(obj)) {
    GMimePart* part = GMIME_PART(obj);
    const char* name = g_mime_part_get_filename(part);
    GMimeContentType* ct = g_mime_object_get_content_type(obj);
    // The vCard/iCalendar rendering of a contact or appointment (our PRODID)
    // is not one of the item's attachments; pst_calendar_test checks it.
    if ((g_mime_content_type_is_type(ct, "text", "calendar") ||
         g_mime_content_type_is_type(ct, "text", "vcard")) &&
        DecodedContent(part).find(pst::kPimProdId) != std::string::npos) {
      return;
    }
    if (name != nullptr) {
      out->attachments.emplace_back(name, DecodedContent(part));
    } else if (g_mime_content_type_is_type(ct, "text", "plain") && out->text.empty()) {
      out->text = DecodedContent(part);
    } else if (g_mime_content_type_is_type(ct, "text", "html") && out->html.empty()) {
      out->html = DecodedContent(part);
    } else if (g_mime_content_type_is_type(ct, "text", "rtf") && out->rtf.empty()) {
      out->rtf = DecodedContent(part);
    } else {
      out->attachments.emplace_back("", DecodedContent(part));
    }
  }
}

Parsed Parse(GMimeMessage* msg) {
  Parsed p;
  const char* s = g_mime_message_get_subject(msg);
  p.subject = s ? s : "";
  Collect(g_mime_message_get_mime_part(msg), &p);
  return p;
}

// Compares one rendered message with pffexport's export of it.
void CompareItem(GMimeMessage* msg, const std::string& item_dir) {
  SCOPED_TRACE(item_dir);
  Parsed p = Parse(msg);
  std::string subject = ExportSubject(item_dir);
  // Header parsers drop a header's trailing white space ("Synchronization Log: ").
  while (!subject.empty() && subject.back() == ' ') subject.pop_back();
  if (!subject.empty()) {
    EXPECT_EQ(p.subject, subject);
  }
  if (IsFile(item_dir + "/Message.txt")) {
    EXPECT_EQ(Crlf2Lf(p.text), Crlf2Lf(testing::ReadFileOrDie(item_dir + "/Message.txt")));
  }
  if (IsFile(item_dir + "/Message.html")) {
    EXPECT_EQ(Crlf2Lf(p.html), Crlf2Lf(testing::ReadFileOrDie(item_dir + "/Message.html")));
  }
  // An RTF-only body is carried as text/rtf, decompressed: as libpff decompresses it.
  if (!p.rtf.empty() || (IsFile(item_dir + "/Message.rtf") && !IsFile(item_dir + "/Message.txt") &&
                         !IsFile(item_dir + "/Message.html"))) {
    ASSERT_TRUE(IsFile(item_dir + "/Message.rtf"));
    EXPECT_EQ(Crlf2Lf(p.rtf), Crlf2Lf(testing::ReadFileOrDie(item_dir + "/Message.rtf")));
  }
  // pffexport writes no attachments for meeting requests; the other item types get theirs.
  if (item_dir.substr(item_dir.rfind('/') + 1, 7) == "Meeting") return;
  std::vector<std::pair<std::string, std::string>> want;
  std::vector<std::string> want_embedded;
  std::string adir = item_dir + "/Attachments";
  for (const std::string& n : ListDir(adir)) {
    if (IsDir(adir + "/" + n)) {
      want_embedded.push_back(adir + "/" + n);
      continue;
    }
    size_t us = n.find('_');
    want.emplace_back(us == std::string::npos ? n : n.substr(us + 1),
                      testing::ReadFileOrDie(adir + "/" + n));
  }
  auto got = p.attachments;
  std::sort(got.begin(), got.end());
  std::sort(want.begin(), want.end());
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].first, want[i].first);
    EXPECT_TRUE(got[i].second == want[i].second)
        << "bytes of attachment " << want[i].first << " differ";
  }
  ASSERT_EQ(p.embedded.size(), want_embedded.size());
  for (size_t i = 0; i < want_embedded.size(); ++i) {
    auto inner = ListDir(want_embedded[i]);
    ASSERT_EQ(inner.size(), 1u);
    CompareItem(p.embedded[i], want_embedded[i] + "/" + inner[0]);
  }
}

class PstTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { g_mime_init(); }
  void SetUp() override {
    files_ = PstFiles();
    if (files_.empty()) GTEST_SKIP() << "shared Outlook files not found (../shared/data/outlook)";
  }
  std::vector<std::string> files_;
};

TEST_F(PstTest, MatchesPffexport) {
  if (!testing::HaveProgram("pffexport")) GTEST_SKIP() << "pffexport (pff-tools) not installed";
  for (const std::string& file : files_) {
    SCOPED_TRACE(file);
    TempDir tmp;
    auto r = testing::Run({"pffexport", "-f", "all", "-m", "all", "-t", tmp / "x", file});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    // pffexport skips some item types (IPM.Post): count them, per run.
    size_t skipped = 0;
    for (size_t at = 0; (at = r.out.find("Skipped item", at)) != std::string::npos; ++at) ++skipped;

    std::string top = FindTop(tmp / "x.export");
    ASSERT_FALSE(top.empty());
    std::map<std::string, ExportFolder> exported;
    WalkExport(top, {}, &exported);

    auto src = pst::OpenSource(file);
    ASSERT_TRUE(src.ok()) << src.status().ToString();
    auto folders = (*src)->ListFolders();
    ASSERT_TRUE(folders.ok());
    std::map<std::string, uint64_t> ours;
    for (const FolderInfo& f : *folders) ours[f.path] = f.messages;

    // Every exported folder is listed, with as many messages; what pffexport
    // skipped accounts for the whole difference.
    uint64_t ours_total = 0;
    uint64_t theirs_total = 0;
    for (const auto& [path, f] : exported) {
      ASSERT_TRUE(ours.count(path)) << "folder '" << path << "' missing";
      EXPECT_GE(ours[path], f.items.size()) << path;
      theirs_total += f.items.size();
    }
    for (const auto& [path, n] : ours) {
      EXPECT_TRUE(exported.count(path)) << "folder '" << path << "' not in pffexport's tree";
      ours_total += n;
    }
    EXPECT_EQ(ours_total, theirs_total + skipped);

    // Message by message: the n-th message of a folder is pffexport's item n.
    std::map<std::string, int> index;
    Message m;
    int compared = 0;
    while (true) {
      auto more = (*src)->Next(&m);
      ASSERT_TRUE(more.ok()) << more.status().ToString();
      if (!*more) break;
      int n = ++index[m.folder];
      ASSERT_FALSE(m.read_error.has_value()) << m.read_error->ToString();
      ASSERT_NE(m.native, nullptr);
      EXPECT_EQ(m.native->Kind(), "mapi");
      EXPECT_NE(m.origin.find(file), std::string::npos) << m.origin;
      auto it = exported[m.folder].items.find(n);
      if (it == exported[m.folder].items.end()) continue;  // skipped by pffexport
      auto mime = m.native->ToMime();
      ASSERT_TRUE(mime.ok());
      GMimeStream* stream = g_mime_stream_mem_new_with_buffer(mime->data(), mime->size());
      GMimeParser* parser = g_mime_parser_new_with_stream(stream);
      GMimeMessage* msg = g_mime_parser_construct_message(parser, nullptr);
      ASSERT_NE(msg, nullptr) << *mime;
      CompareItem(msg, it->second);
      ++compared;
      g_object_unref(msg);
      g_object_unref(parser);
      g_object_unref(stream);
    }
    EXPECT_EQ(compared, static_cast<int>(theirs_total));
  }
}

TEST_F(PstTest, SpecialFoldersMapByRole) {
  for (const std::string& file : files_) {
    if (file.find("pstextractortest@") == std::string::npos) continue;
    auto src = pst::OpenSource(file);
    ASSERT_TRUE(src.ok());
    auto folders = (*src)->ListFolders();
    ASSERT_TRUE(folders.ok());
    std::map<std::string, uint64_t> ours;
    for (const FolderInfo& f : *folders) ours[f.path] = f.messages;
    EXPECT_EQ((*folders)[0].path, "");
    EXPECT_EQ(ours[""], 10u);  // the Inbox
    EXPECT_EQ(ours["Sent"], 2u);
    EXPECT_EQ(ours["Trash"], 1u);
    EXPECT_TRUE(ours.count("Junk"));
    EXPECT_TRUE(ours.count("Drafts"));
    EXPECT_FALSE(ours.count("Inbox"));
    EXPECT_FALSE(ours.count("Sent Items"));
    EXPECT_EQ(ours["Calendar/United States holidays"], 160u);
  }
}

TEST_F(PstTest, RenderingIsDeterministicAndFlagsAreKept) {
  for (const std::string& file : files_) {
    SCOPED_TRACE(file);
    std::vector<std::string> first;
    for (int pass = 0; pass < 2; ++pass) {
      auto src = pst::OpenSource(file);
      ASSERT_TRUE(src.ok());
      Message m;
      size_t i = 0;
      while (*(*src)->Next(&m)) {
        auto mime = m.native->ToMime();
        ASSERT_TRUE(mime.ok());
        if (pass == 0) {
          first.push_back(*mime);
        } else {
          ASSERT_LT(i, first.size());
          EXPECT_EQ(*mime, first[i]);
        }
        ++i;
      }
    }
  }
  // sample1: pffexport says "Flags: 0x00000031 (Read, ...)".
  for (const std::string& file : files_) {
    if (file.find("pstsdk-sample1") == std::string::npos) continue;
    auto src = pst::OpenSource(file);
    ASSERT_TRUE(src.ok());
    Message m;
    ASSERT_TRUE(*(*src)->Next(&m));
    EXPECT_TRUE(m.flags & kFlagSeen);
    EXPECT_EQ(m.container_delivered, 1268673127);  // Mar 15, 2010 17:12:07 UTC
    EXPECT_EQ(m.folder, "Sample1");
  }
}

TEST_F(PstTest, FolderFilterSkipsUnselectedFolders) {
  for (const std::string& file : files_) {
    if (file.find("pstextractortest@") == std::string::npos) continue;
    auto src = pst::OpenSource(file);
    ASSERT_TRUE(src.ok());
    (*src)->SetFolderFilter([](std::string_view f) { return f == "Sent"; });
    Message m;
    int n = 0;
    while (*(*src)->Next(&m)) {
      EXPECT_EQ(m.folder, "Sent");
      ++n;
    }
    EXPECT_EQ(n, 2);
  }
}

// What a source yields, message by message, as a comparable text.
std::vector<std::string> ReadEverything(const std::string& file, int threads, bool associated,
                                        const std::function<bool(std::string_view)>& want = {},
                                        pst::PstReader reader = pst::PstReader::kAuto) {
  std::vector<std::string> out;
  pst::PstSourceOptions opts;
  opts.associated = associated;
  opts.reader = reader;
  auto src = pst::OpenSource(file, opts);
  EXPECT_TRUE(src.ok()) << src.status().ToString();
  if (!src.ok()) return out;
  if (want) (*src)->SetFolderFilter(want);
  (*src)->SetReadThreads(threads);
  Message m;
  while (true) {
    auto more = (*src)->Next(&m);
    EXPECT_TRUE(more.ok());
    if (!more.ok() || !*more) break;
    std::string text = m.folder + "\n" + m.origin + "\n" + std::to_string(m.source_token) + " " +
                       std::to_string(m.flags) + " " + std::to_string(m.associated) + "\n";
    if (m.read_error) {
      text += "error: " + m.read_error->ToString();
    } else {
      auto mime = m.native->ToMime();
      text += mime.ok() ? *mime : "render error: " + mime.status().ToString();
    }
    out.push_back(std::move(text));
  }
  return out;
}

// --jobs > 1: helper threads read ahead (sharing our reader, or through
// libpff handles of their own). The messages, their order and everything about
// them are the same as one thread reading, folder filter and associated
// contents included, whichever reader reads.
TEST(PstReadAheadTest, HelpersYieldExactlyWhatOneReaderYields) {
  TempDir tmp;
  auto gen = testing::RunMbxgen({"mailbox", "--format", "mboxdir", "--out", tmp / "src",
                                 "--messages", "300", "--folders", "4", "--seed", "8"});
  ASSERT_EQ(gen.exit_code, 0) << gen.err;
  auto r = testing::RunMbxmerge(
      {"merge", "--from", "mboxdir:" + tmp / "src", "--into", tmp / "big.pst", "-q"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::vector<std::string> files = {tmp / "big.pst"};
  for (const auto& f : PstFiles()) files.push_back(f);
  {
    const auto one = ReadEverything(files.front(), 1, false);
    EXPECT_EQ(one.size(), 300u);
    for (pst::PstReader reader : {pst::PstReader::kNative, pst::PstReader::kLibpff}) {
      SCOPED_TRACE(reader == pst::PstReader::kNative ? "our reader" : "libpff");
      EXPECT_EQ(ReadEverything(files.front(), 1, false, {}, reader), one);
      EXPECT_EQ(ReadEverything(files.front(), 2, false, {}, reader), one);
      EXPECT_EQ(ReadEverything(files.front(), 3, false, {}, reader), one);
    }
  }
  // With their associated contents too (the OSTs have over 64 items each).
  for (const std::string& file : files) {
    SCOPED_TRACE(file);
    const auto one = ReadEverything(file, 1, true);
    EXPECT_EQ(ReadEverything(file, 2, true), one);
    EXPECT_EQ(ReadEverything(file, 2, true, {}, pst::PstReader::kLibpff), one);
  }
  // A folder filter: only what it selects, in the same order.
  std::vector<std::string> folders;
  for (const auto& text : ReadEverything(files.front(), 1, false))
    folders.push_back(text.substr(0, text.find('\n')));
  ASSERT_FALSE(folders.empty());
  const std::string pick = folders.back();
  auto want = [&](std::string_view f) { return f == pick; };
  const auto one = ReadEverything(files.front(), 1, false, want);
  EXPECT_GT(one.size(), 0u);
  EXPECT_LT(one.size(), 300u);
  EXPECT_EQ(ReadEverything(files.front(), 2, false, want), one);
  // And through the CLI: the mbox written with -j 1 and with -j 3 is the same file.
  for (const char* jobs : {"1", "3"}) {
    r = testing::RunMbxmerge({"merge", "--from", tmp / "big.pst", "--into",
                              tmp / (std::string("j") + jobs + ".mbox"), "-j", jobs, "-q"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  EXPECT_EQ(testing::ReadFileOrDie(tmp / "j1.mbox"), testing::ReadFileOrDie(tmp / "j3.mbox"));
}

TEST(PstCliTest, NotAPstIsExitTwoWithOneLine) {
  TempDir tmp;
  std::string fake = tmp / "fake.pst";
  testing::WriteFileOrDie(fake, "From a@b Thu Jan  1 00:00:00 2004\nSubject: x\n\nhello\n");
  for (const std::string& spec : {fake, "pst:" + fake}) {
    auto r = testing::RunMbxmerge({"list", spec});
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_NE(r.err.find("is not a PST/OST file"), std::string::npos) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    r = testing::RunMbxmerge({"merge", "--from", spec, "--into", tmp / "out.mbox"});
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_NE(r.err.find("is not a PST/OST file"), std::string::npos) << r.err;
  }
}

TEST(PstCliTest, UnwritablePstTargetIsOneClearErrorAndNoFile) {
  TempDir tmp;
  std::string src = tmp / "in.mbox";
  testing::WriteFileOrDie(src, "From a@b Thu Jan  1 00:00:00 2004\nSubject: x\n\nhello\n");
  // The temporary file beside the target cannot be created (a directory is in the way).
  ASSERT_EQ(::mkdir((tmp / "out.pst.mbxmerge-tmp").c_str(), 0755), 0);
  auto r = testing::RunMbxmerge({"merge", "--from", src, "--into", tmp / "out.pst"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("out.pst"), std::string::npos) << r.err;
  struct stat st;
  EXPECT_NE(::stat((tmp / "out.pst").c_str(), &st), 0) << "a partial PST was left behind";
}

TEST(PstRegistryTest, DetectsPstByMagicAndSuffix) {
  TempDir tmp;
  std::string magic = tmp / "store.bin";
  testing::WriteFileOrDie(magic, std::string("!BDN") + std::string(600, '\0'));
  auto loc = ParseLocation(magic, false);
  ASSERT_TRUE(loc.ok());
  EXPECT_EQ(loc->kind, FormatKind::kPst);
  loc = ParseLocation(tmp / "new.OST", true);
  ASSERT_TRUE(loc.ok());
  EXPECT_EQ(loc->kind, FormatKind::kPst);
  std::string mbox = tmp / "a.mbox";
  testing::WriteFileOrDie(mbox, "From a@b Thu Jan  1 00:00:00 2004\n\nx\n");
  loc = ParseLocation(mbox, false);
  ASSERT_TRUE(loc.ok());
  EXPECT_EQ(loc->kind, FormatKind::kMbox);
  // A damaged store (right magic, garbage after it) is an error, not a crash.
  auto src = OpenSource(*ParseLocation(magic, false));
  EXPECT_FALSE(src.ok());
}

}  // namespace
}  // namespace mbx
