// ExMerge's import methods beyond plain merge: --mode archive from whole-file
// sources (mbox, mboxdir), --mode replace and replace-newer. Each test checks
// where every message ends up, not only the counters.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <utime.h>

#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "formats/maildir/maildir.h"
#include "formats/mbox/mbox.h"
#include "formats/registry.h"
#include "tests/pst_oracles.h"
#include "tests/test_util.h"

namespace mbx {
namespace {

namespace stdfs = std::filesystem;
using testing::MbxgenId;
using testing::MbxgenIdCounts;
using testing::ReadFileOrDie;
using testing::RunMbxgen;
using testing::RunMbxmerge;
using testing::TempDir;
using testing::WriteFileOrDie;

class ModesTest : public ::testing::Test {
 protected:
  TempDir tmp_;
  std::string P(const std::string& name) { return tmp_ / name; }
  void Gen(const std::vector<std::string>& args) {
    auto r = RunMbxgen(args);
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  nlohmann::json Report(const std::string& path) {
    return nlohmann::json::parse(ReadFileOrDie(path));
  }
};

// Messages of one mbox split by mblaze's mdeliver -M (a splitter nobody here
// wrote), by mbxgen id.
std::map<std::string, int> IdsByMdeliver(const std::string& mbox, const std::string& scratch) {
  std::map<std::string, int> out;
  stdfs::create_directories(scratch + "/cur");
  stdfs::create_directories(scratch + "/new");
  stdfs::create_directories(scratch + "/tmp");
  auto r = testing::Run({"sh", "-c", "mdeliver -M '" + scratch + "' < '" + mbox + "'"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  for (const auto& f : testing::ListFilesRecursive(scratch))
    out[MbxgenId(ReadFileOrDie(scratch + "/" + f))]++;
  return out;
}

std::string Msg(const std::string& id, const std::string& subject, const std::string& body) {
  return "From: a@example.com\nTo: b@example.com\nMessage-ID: <" + id +
         "@example.com>\nDate: Mon, 1 Mar 2021 10:00:00 +0000\nSubject: " + subject + "\n\n" +
         body + "\n";
}

TEST_F(ModesTest, ArchiveFromMboxRewritesTheSourceWithoutWhatReachedTheTarget) {
  Gen({"pair", "--format", "mbox", "--out-a", P("orig.mbox"), "--out-b", P("blank.mbox"),
       "--messages", "300", "--dup-rate", "0.3", "--seed", "7"});
  auto before = MbxgenIdCounts(P("blank.mbox"));
  auto target_before = MbxgenIdCounts(P("orig.mbox"));
  ASSERT_GT(before.size(), 80u);
  ::chmod(P("blank.mbox").c_str(), 0640);
  // Only 2021 mail is archived; the rest must stay in the source, byte for byte.
  auto r = RunMbxmerge({"merge", "--mode", "archive", "--from", P("blank.mbox"), "--into",
                        P("orig.mbox"), "--date-field", "sent", "--since", "2021-01-01", "--until",
                        "2021-12-31", "--report", P("r.json"), "--quiet"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto t = Report(P("r.json"))["totals"];
  EXPECT_EQ(t["archived"].get<int>(), t["written"].get<int>() + t["duplicates_skipped"].get<int>());
  EXPECT_GT(t["archived"].get<int>(), 5);
  EXPECT_GT(t["duplicates_skipped"].get<int>(), 0);
  EXPECT_GT(t["not_selected"].get<int>(), 5);

  auto left = IdsByMdeliver(P("blank.mbox"), P("split-left"));
  auto target = IdsByMdeliver(P("orig.mbox"), P("split-target"));
  EXPECT_EQ(left.size(), static_cast<size_t>(t["not_selected"].get<int>()));
  for (const auto& [id, n] : before) {
    EXPECT_EQ(n, 1) << id;
    if (left.count(id)) {
      EXPECT_EQ(left[id], 1) << id;
      EXPECT_EQ(target.count(id), target_before.count(id))
          << id << " stayed in the source and was not merged";
    } else {
      EXPECT_EQ(target[id], 1) << id << " left the source: it must be in the target exactly once";
    }
  }
  struct stat st;
  ASSERT_EQ(::stat(P("blank.mbox").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0640u) << "the rewritten mbox keeps its mode";
  EXPECT_FALSE(stdfs::exists(P("blank.mbox.mbxmerge-tmp")));

  // A rerun finds nothing more to archive and changes nothing.
  std::string left_bytes = ReadFileOrDie(P("blank.mbox"));
  r = RunMbxmerge({"merge", "--mode", "archive", "--from", P("blank.mbox"), "--into",
                   P("orig.mbox"), "--date-field", "sent", "--since", "2021-01-01", "--until",
                   "2021-12-31", "--quiet"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(ReadFileOrDie(P("blank.mbox")), left_bytes);
}

TEST_F(ModesTest, ArchiveFromMboxDirEmptiesEveryFolderFile) {
  Gen({"mailbox", "--format", "mboxdir", "--out", P("src"), "--messages", "120", "--folders", "3",
       "--seed", "3"});
  auto before = MbxgenIdCounts("mboxdir:" + P("src"));
  auto r = RunMbxmerge({"merge", "--mode", "archive", "--from", "mboxdir:" + P("src"), "--into",
                        "maildir:" + P("out"), "--report", P("r.json"), "--quiet"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(Report(P("r.json"))["totals"]["archived"].get<size_t>(), 120u);
  EXPECT_EQ(MbxgenIdCounts("maildir:" + P("out")), before);
  EXPECT_TRUE(MbxgenIdCounts("mboxdir:" + P("src")).empty());
}

// A source not told that removal follows does not remember what it read
// (that costs a hash of every message), so it removes nothing.
TEST_F(ModesTest, MboxRemoveMessagesWithoutNoticeRemovesNothing) {
  std::string file = "From x@y Mon Mar  1 10:00:00 2021\n" + Msg("a", "first", "one") + "\n";
  WriteFileOrDie(P("in.mbox"), file);
  auto src = mbox::OpenSource(P("in.mbox"));
  ASSERT_TRUE(src.ok());
  Message m;
  ASSERT_TRUE(*(*src)->Next(&m));
  std::map<uint64_t, std::string> kept;
  Status s =
      (*src)->RemoveMessages({m.source_token}, [&](uint64_t t, std::string why) { kept[t] = why; });
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(kept.size(), 1u);
  EXPECT_EQ(ReadFileOrDie(P("in.mbox")), file);
}

TEST_F(ModesTest, MboxRemoveMessagesKeepsMailThatChangedOrArrivedAfterReading) {
  std::string a = Msg("a", "first", "one");
  std::string b = Msg("b", "second", "two");
  std::string c = Msg("c", "third", "three");
  std::string file = "From x@y Mon Mar  1 10:00:00 2021\n" + a +
                     "\nFrom x@y Mon Mar  1 10:00:00 2021\n" + b +
                     "\nFrom x@y Mon Mar  1 10:00:00 2021\n" + c + "\n";
  WriteFileOrDie(P("in.mbox"), file);
  auto src = mbox::OpenSource(P("in.mbox"));
  ASSERT_TRUE(src.ok());
  (*src)->WillRemoveMessages();
  std::vector<uint64_t> tokens;
  Message m;
  while (*(*src)->Next(&m)) tokens.push_back(m.source_token);
  ASSERT_EQ(tokens.size(), 3u);
  // After reading: message b is edited in place (same length), and a new one
  // is delivered at the end.
  std::string edited = file;
  edited.replace(edited.find("two"), 3, "TWO");
  std::string d = Msg("d", "late", "four");
  WriteFileOrDie(P("in.mbox"), edited + "From x@y Mon Mar  1 11:00:00 2021\n" + d + "\n");
  std::map<uint64_t, std::string> kept;
  Status s = (*src)->RemoveMessages(tokens, [&](uint64_t t, std::string why) { kept[t] = why; });
  ASSERT_TRUE(s.ok()) << s.ToString();
  ASSERT_EQ(kept.size(), 1u);
  EXPECT_EQ(kept.begin()->first, tokens[1]);
  EXPECT_NE(kept.begin()->second.find("changed"), std::string::npos) << kept.begin()->second;
  std::vector<std::string> left;
  const std::string rewritten = ReadFileOrDie(P("in.mbox"));  // Split() returns views into it
  for (const auto& e : mbox::Split(rewritten)) left.push_back(mbox::Unquote(e.stored));
  ASSERT_EQ(left.size(), 2u);
  EXPECT_NE(left[0].find("TWO"), std::string::npos);
  EXPECT_NE(left[1].find("Subject: late"), std::string::npos);
}

// A target Maildir and a source Maildir holding newer versions (same
// Message-ID, other body and flags) of some of its messages.
struct ReplaceFixture {
  std::map<std::string, std::string> target_files;  // id -> path in the target
};

void PutMaildir(const std::string& root, const std::string& name, const std::string& data,
                time_t mtime) {
  for (const char* sub : {"cur", "new", "tmp"}) stdfs::create_directories(root + "/" + sub);
  std::string path = root + "/cur/" + name;
  WriteFileOrDie(path, data);
  struct utimbuf times {
    mtime, mtime
  };
  ::utime(path.c_str(), &times);
}

std::map<std::string, std::string> BodiesById(const std::string& root) {
  std::map<std::string, std::string> out;
  for (const auto& f : testing::ListFilesRecursive(root)) {
    if (!f.starts_with("cur/") && !f.starts_with("new/")) continue;
    std::string data = ReadFileOrDie(root + "/" + f);
    size_t id = data.find("Message-ID: <");
    size_t at = data.find('@', id);
    EXPECT_TRUE(
        out.emplace(data.substr(id + 13, at - id - 13), data.substr(data.find("\n\n") + 2)).second)
        << "two copies of one message in " << root;
  }
  return out;
}

TEST_F(ModesTest, ReplacePutsTheSourcesCopyInPlaceOfTheTargets) {
  const time_t old_time = 1600000000, new_time = 1700000000;
  for (int i = 0; i < 6; ++i) {
    std::string id = "m" + std::to_string(i);
    PutMaildir(P("target"), "100" + std::to_string(i) + ".x:2,S", Msg(id, "s", "old " + id),
               old_time);
  }
  // m0..m3 have a new version in the source: m0, m1 modified later than the
  // target's copy, m2, m3 earlier; n0 is new.
  for (int i = 0; i < 4; ++i) {
    std::string id = "m" + std::to_string(i);
    PutMaildir(P("source"), "200" + std::to_string(i) + ".x:2,FS", Msg(id, "s", "new " + id),
               i < 2 ? new_time : old_time - 1000);
  }
  PutMaildir(P("source"), "3000.x:2,", Msg("n0", "s", "new n0"), new_time);

  // replace-newer: only m0 and m1 take the target copy's place.
  auto r = RunMbxmerge({"merge", "--mode", "replace-newer", "--dedupe", "message-id", "--from",
                        "maildir:" + P("source"), "--into", "maildir:" + P("target"), "--report",
                        P("r1.json"), "--quiet"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto t = Report(P("r1.json"))["totals"];
  EXPECT_EQ(t["replaced"].get<int>(), 2);
  EXPECT_EQ(t["written"].get<int>(), 3);
  EXPECT_EQ(t["duplicates_skipped"].get<int>(), 2);
  auto bodies = BodiesById(P("target"));
  ASSERT_EQ(bodies.size(), 7u);
  EXPECT_EQ(bodies["m0"], "new m0\n");
  EXPECT_EQ(bodies["m1"], "new m1\n");
  EXPECT_EQ(bodies["m2"], "old m2\n");
  EXPECT_EQ(bodies["m3"], "old m3\n");
  EXPECT_EQ(bodies["m4"], "old m4\n");
  EXPECT_EQ(bodies["n0"], "new n0\n");
  EXPECT_FALSE(stdfs::exists(P("target/.mbxmerge-replace")));

  // replace: every duplicate takes the place of the target's copy, flags too.
  r = RunMbxmerge({"merge", "--mode", "replace", "--dedupe", "message-id", "--from",
                   "maildir:" + P("source"), "--into", "maildir:" + P("target"), "--report",
                   P("r2.json"), "--quiet"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  t = Report(P("r2.json"))["totals"];
  EXPECT_EQ(t["replaced"].get<int>(), 5);
  bodies = BodiesById(P("target"));
  ASSERT_EQ(bodies.size(), 7u);
  for (int i = 0; i < 4; ++i)
    EXPECT_EQ(bodies["m" + std::to_string(i)], "new m" + std::to_string(i) + "\n");
  EXPECT_EQ(bodies["m5"], "old m5\n");
  size_t flagged = 0;
  for (const auto& f : testing::ListFilesRecursive(P("target"))) flagged += f.ends_with(":2,FS");
  EXPECT_EQ(flagged, 4u);
  // The source is untouched by replace modes.
  EXPECT_EQ(BodiesById(P("source")).size(), 5u);
}

TEST_F(ModesTest, ReplaceJournalLeavesExactlyOneCopyAfterACrash) {
  // The state a crash leaves between "new file in place" and "old file
  // removed": the next open finishes the journal.
  PutMaildir(P("md"), "1.old:2,S", Msg("a", "s", "old"), 1600000000);
  PutMaildir(P("md"), "2.new:2,S", Msg("a", "s", "new"), 1600000000);
  PutMaildir(P("md"), "3.old:2,S", Msg("b", "s", "old"), 1600000000);
  WriteFileOrDie(P("md/.mbxmerge-replace"),
                 P("md") + "/cur/2.new:2,S\t" + P("md") + "/cur/1.old:2,S\n" + P("md") +
                     "/cur/4.never-renamed:2,S\t" + P("md") + "/cur/3.old:2,S\n");
  {
    SinkOptions opts;
    auto sink = maildir::OpenSink(P("md"), opts);
    ASSERT_TRUE(sink.ok()) << sink.status().ToString();
    ASSERT_TRUE((*sink)->Close().ok());
  }
  auto bodies = BodiesById(P("md"));
  EXPECT_EQ(bodies.size(), 2u);
  EXPECT_EQ(bodies["a"], "new\n");
  EXPECT_EQ(bodies["b"], "old\n") << "its replacement never appeared: the old copy stays";
  EXPECT_FALSE(stdfs::exists(P("md/.mbxmerge-replace")));
}

TEST_F(ModesTest, ReplaceIsRefusedForTargetsThatCannotReplace) {
  WriteFileOrDie(P("a.mbox"), "From x@y Mon Mar  1 10:00:00 2021\n" + Msg("a", "s", "x") + "\n");
  // A bundle is written once, never edited in place.
  ASSERT_EQ(
      RunMbxmerge({"merge", "--from", P("a.mbox"), "--into", P("t.mbxz"), "--quiet"}).exit_code, 0);
  const std::string target = ReadFileOrDie(P("t.mbxz"));
  auto r =
      RunMbxmerge({"merge", "--mode", "replace", "--from", P("a.mbox"), "--into", P("t.mbxz")});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("cannot replace"), std::string::npos) << r.err;
  EXPECT_EQ(ReadFileOrDie(P("t.mbxz")), target);
  r = RunMbxmerge({"merge", "--mode", "replace", "--dedupe", "none", "--from", P("a.mbox"),
                   "--into", "maildir:" + P("x")});
  EXPECT_EQ(r.exit_code, 2);
  r = RunMbxmerge(
      {"merge", "--mode", "bogus", "--from", P("a.mbox"), "--into", "maildir:" + P("x")});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("replace-newer"), std::string::npos) << r.err;
}

// A PST source in archive mode is rewritten without the archived messages:
// the rest, its folders included, stay; the previous file stays as .bak.
TEST_F(ModesTest, ArchiveFromPstRewritesItWithoutTheArchivedMessages) {
  Gen({"mailbox", "--format", "maildir", "--out", P("md"), "--messages", "120", "--folders", "3",
       "--seed", "5"});
  ASSERT_EQ(
      RunMbxmerge({"merge", "--from", "maildir:" + P("md"), "--into", P("src.pst"), "--quiet"})
          .exit_code,
      0);
  const auto before = MbxgenIdCounts(P("src.pst"));
  const std::string original = ReadFileOrDie(P("src.pst"));
  auto folders_before = RunMbxmerge({"list", "--json", P("src.pst")});
  ASSERT_EQ(before.size(), 120u);
  auto r = RunMbxmerge({"merge", "--mode", "archive", "--from", P("src.pst"), "--into",
                        "maildir:" + P("out"), "--date-field", "sent", "--since", "2021-01-01",
                        "--until", "2021-12-31", "--report", P("r.json"), "--quiet"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto t = Report(P("r.json"))["totals"];
  EXPECT_GT(t["archived"].get<int>(), 5);
  EXPECT_EQ(t["archived"].get<int>(), t["written"].get<int>());
  EXPECT_EQ(testing::PstCheckViolations(P("src.pst")), "");
  EXPECT_EQ(ReadFileOrDie(P("src.pst.bak")), original);
  auto left = MbxgenIdCounts(P("src.pst"));
  auto out = MbxgenIdCounts("maildir:" + P("out"));
  EXPECT_EQ(left.size() + out.size(), before.size());
  EXPECT_EQ(out.size(), static_cast<size_t>(t["archived"].get<int>()));
  for (const auto& [id, n] : before) {
    EXPECT_EQ(left.count(id) + out.count(id), 1u)
        << id << " must be in exactly one of source and target";
  }
  // The folder tree is intact (counts shrink, no folder goes).
  auto folders_after = nlohmann::json::parse(RunMbxmerge({"list", "--json", P("src.pst")}).out);
  EXPECT_EQ(folders_after.size(), nlohmann::json::parse(folders_before.out).size());

  // A rerun archives nothing more and leaves the file as it is.
  const std::string after = ReadFileOrDie(P("src.pst"));
  r = RunMbxmerge({"merge", "--mode", "archive", "--from", P("src.pst"), "--into",
                   "maildir:" + P("out"), "--date-field", "sent", "--since", "2021-01-01",
                   "--until", "2021-12-31", "--quiet"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(ReadFileOrDie(P("src.pst")), after);
}

TEST_F(ModesTest, ArchiveRefusesAnOst) {
  const std::string shared = testing::SharedDataDir();
  if (shared.empty()) GTEST_SKIP() << "../shared/data is absent";
  stdfs::copy_file(shared + "/outlook/pstsdk-sample1.pst", P("a.pst"));
  stdfs::copy_file(shared + "/outlook/pstextractortestpdf@outlook.com.ost", P("a.ost"));
  const std::string ost = ReadFileOrDie(P("a.ost"));
  auto r = RunMbxmerge(
      {"merge", "--mode", "archive", "--from", P("a.ost"), "--into", "maildir:" + P("out")});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("cannot have messages removed"), std::string::npos) << r.err;
  EXPECT_EQ(ReadFileOrDie(P("a.ost")), ost);
  // An Outlook-written PST is archived like ours.
  r = RunMbxmerge({"merge", "--mode", "archive", "--from", P("a.pst"), "--into",
                   "maildir:" + P("out"), "--quiet"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(testing::PstCheckViolations(P("a.pst")), "");
  auto left = RunMbxmerge({"list", "--json", P("a.pst")});
  size_t messages = 0;
  for (const auto& f : nlohmann::json::parse(left.out)) messages += f["messages"].get<size_t>();
  EXPECT_EQ(messages, 0u);
}

std::string FromLine() { return "From x@y Mon Mar  1 10:00:00 2021\n"; }

TEST_F(ModesTest, ReplaceIntoPstTakesTheSourcesVersion) {
  std::string target, source;
  for (int i = 0; i < 5; ++i)
    target += FromLine() + Msg("m" + std::to_string(i), "s", "old") + "\n";
  for (int i = 0; i < 3; ++i)
    source += FromLine() + Msg("m" + std::to_string(i), "s", "new") + "\n";
  source += FromLine() + Msg("n0", "s", "new") + "\n";
  WriteFileOrDie(P("t.mbox"), target);
  WriteFileOrDie(P("s.mbox"), source);
  ASSERT_EQ(
      RunMbxmerge({"merge", "--from", P("t.mbox"), "--into", P("t.pst"), "--quiet"}).exit_code, 0);
  auto r = RunMbxmerge({"merge", "--mode", "replace", "--dedupe", "message-id", "--from",
                        P("s.mbox"), "--into", P("t.pst"), "--report", P("r.json"), "--quiet"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(Report(P("r.json"))["totals"]["replaced"].get<int>(), 3);
  EXPECT_EQ(testing::PstCheckViolations(P("t.pst")), "");
  ASSERT_EQ(RunMbxmerge({"merge", "--mode", "copy", "--from", P("t.pst"), "--into",
                         "maildir:" + P("back"), "--quiet"})
                .exit_code,
            0);
  auto bodies = BodiesById(P("back"));
  ASSERT_EQ(bodies.size(), 6u);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(bodies["m" + std::to_string(i)], "new\n") << i;
  EXPECT_EQ(bodies["m3"], "old\n");
  EXPECT_EQ(bodies["m4"], "old\n");
  EXPECT_EQ(bodies["n0"], "new\n");
}

// ExMerge's rule: PR_SEARCH_KEY decides. A message exported from a PST and
// edited since (other subject and body) is still the same item.
TEST_F(ModesTest, SearchKeyFollowsTheItemAcrossFormats) {
  std::string mbox;
  for (int i = 0; i < 4; ++i)
    mbox += FromLine() + Msg("k" + std::to_string(i), "orig", "body") + "\n";
  WriteFileOrDie(P("a.mbox"), mbox);
  ASSERT_EQ(
      RunMbxmerge({"merge", "--from", P("a.mbox"), "--into", P("a.pst"), "--quiet"}).exit_code, 0);
  ASSERT_EQ(
      RunMbxmerge({"merge", "--from", P("a.pst"), "--into", P("out.mbox"), "--quiet"}).exit_code,
      0);
  std::string exported = ReadFileOrDie(P("out.mbox"));
  size_t keys = 0;
  for (size_t at = 0; (at = exported.find("\nX-Mbxmerge-Search-Key: ", at)) != std::string::npos;
       ++at)
    ++keys;
  ASSERT_EQ(keys, 4u) << exported;
  // Edited: subject and body differ from the PST's copy.
  for (size_t at = 0; (at = exported.find("Subject: orig", at)) != std::string::npos;)
    exported.replace(at, 13, "Subject: edit");
  for (size_t at = 0; (at = exported.find("\nbody", at)) != std::string::npos;)
    exported.replace(at, 5, "\nBODY");
  WriteFileOrDie(P("edited.mbox"), exported);
  auto r = RunMbxmerge({"merge", "--dedupe", "search-key", "--from", P("edited.mbox"), "--into",
                        P("a.pst"), "--report", P("r.json"), "--quiet"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto t = Report(P("r.json"))["totals"];
  EXPECT_EQ(t["duplicates_skipped"].get<int>(), 4);
  EXPECT_EQ(t["written"].get<int>(), 0);
  // Under the auto rule they are other messages.
  r = RunMbxmerge({"merge", "--dedupe", "auto", "--from", P("edited.mbox"), "--into",
                   "maildir:" + P("md"), "--quiet"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = RunMbxmerge({"merge", "--dedupe", "auto", "--from", P("a.pst"), "--into",
                   "maildir:" + P("md"), "--report", P("r2.json"), "--quiet"});
  EXPECT_EQ(Report(P("r2.json"))["totals"]["written"].get<int>(), 4);
  // A message without a search key falls back to the auto rule.
  WriteFileOrDie(P("plain.mbox"),
                 FromLine() + Msg("p", "s", "x") + "\n" + FromLine() + Msg("p", "s", "x") + "\n");
  r = RunMbxmerge({"merge", "--dedupe", "search-key", "--from", P("plain.mbox"), "--into",
                   "maildir:" + P("p"), "--report", P("r3.json"), "--quiet"});
  t = Report(P("r3.json"))["totals"];
  EXPECT_EQ(t["written"].get<int>(), 1);
  EXPECT_EQ(t["duplicates_skipped"].get<int>(), 1);
}

TEST_F(ModesTest, ReplaceIntoEmlTreeTakesTheSourcesVersion) {
  std::string target, source;
  for (int i = 0; i < 4; ++i)
    target += FromLine() + Msg("e" + std::to_string(i), "s", "old") + "\n";
  for (int i = 0; i < 2; ++i)
    source += FromLine() + Msg("e" + std::to_string(i), "s", "new") + "\n";
  WriteFileOrDie(P("t.mbox"), target);
  WriteFileOrDie(P("s.mbox"), source);
  ASSERT_EQ(RunMbxmerge({"merge", "--from", P("t.mbox"), "--into", "eml:" + P("tree"), "--quiet"})
                .exit_code,
            0);
  auto r =
      RunMbxmerge({"merge", "--mode", "replace", "--dedupe", "message-id", "--from", P("s.mbox"),
                   "--into", "eml:" + P("tree"), "--report", P("r.json"), "--quiet"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(Report(P("r.json"))["totals"]["replaced"].get<int>(), 2);
  std::map<std::string, std::string> bodies;
  for (const auto& f : testing::ListFilesRecursive(P("tree"))) {
    ASSERT_TRUE(f.ends_with(".eml")) << f;
    std::string data = ReadFileOrDie(P("tree") + "/" + f);
    size_t id = data.find("Message-ID: <") + 13;
    EXPECT_TRUE(bodies.emplace(data.substr(id, 2), data.substr(data.find("\n\n") + 2)).second)
        << "two copies";
  }
  ASSERT_EQ(bodies.size(), 4u);
  EXPECT_EQ(bodies["e0"], "new\n");
  EXPECT_EQ(bodies["e1"], "new\n");
  EXPECT_EQ(bodies["e2"], "old\n");
  EXPECT_FALSE(stdfs::exists(P("tree/.mbxmerge-replace")));
}

// kill -9 at each named point of a PST rewrite (tests/fault_injection_test.cc
// covers the MIME formats): archive mode from a PST source, then a rerun.
// Every message ends up exactly once in source or target, and in the target
// if it left the source.
TEST_F(ModesTest, ArchiveFromPstSurvivesAKillAtEveryRewritePoint) {
  Gen({"mailbox", "--format", "mbox", "--out", P("gen.mbox"), "--messages", "30", "--seed", "9"});
  ASSERT_EQ(
      RunMbxmerge({"merge", "--from", P("gen.mbox"), "--into", P("gen.pst"), "--quiet"}).exit_code,
      0);
  const auto all = MbxgenIdCounts(P("gen.pst"));
  ASSERT_EQ(all.size(), 30u);
  for (std::string point : {"merge.archive.before-source-rewrite", "pst.copy-existing.message:3",
                            "pst.close.before-finish", "pst.close.after-finish",
                            "pst.close.before-rename", "pst.close.after-rename"}) {
    SCOPED_TRACE(point);
    stdfs::remove_all(P("run"));
    stdfs::create_directories(P("run"));
    stdfs::copy_file(P("gen.pst"), P("run/src.pst"));
    std::vector<std::string> merge = {"merge",
                                      "--mode",
                                      "archive",
                                      "--from",
                                      P("run/src.pst"),
                                      "--into",
                                      "maildir:" + P("run/out"),
                                      "--date-field",
                                      "sent",
                                      "--since",
                                      "2021-01-01",
                                      "--quiet"};
    std::vector<std::string> killed = {"env", "MBXMERGE_CRASH_AT=" + point,
                                       testing::MbxmergePath()};
    killed.insert(killed.end(), merge.begin(), merge.end());
    auto r = testing::Run(killed);
    ASSERT_EQ(r.exit_code, 128 + 9) << r.err;
    r = RunMbxmerge(merge);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(testing::PstCheckViolations(P("run/src.pst")), "");
    auto left = MbxgenIdCounts(P("run/src.pst"));
    auto out = MbxgenIdCounts("maildir:" + P("run/out"));
    EXPECT_GT(out.size(), 5u);
    EXPECT_GT(left.size(), 0u);
    for (const auto& [id, n] : all) {
      EXPECT_EQ(left[id] + out[id], 1) << id;
    }
  }
}

// Replace into an mbox: the old copies go when the file is closed, through a
// journal; killed anywhere and rerun, each message is there exactly once, in
// the source's version.
TEST_F(ModesTest, ReplaceIntoMboxLeavesExactlyOneCopyAfterAKillAnywhere) {
  std::string target, source;
  target += "junk before the first From_ line\n\n";
  for (int i = 0; i < 12; ++i)
    target += FromLine() + Msg("r" + std::to_string(i), "s", "old") + "\n";
  for (int i = 0; i < 12; i += 2)
    source += FromLine() + Msg("r" + std::to_string(i), "s", "new") + "\n";
  source += FromLine() + Msg("fresh", "s", "new") + "\n";
  WriteFileOrDie(P("s.mbox"), source);
  auto bodies = [&](const std::string& mbox) {
    std::map<std::string, std::string> out;
    const std::string file = ReadFileOrDie(mbox);  // Split() returns views into it
    for (const auto& e : mbox::Split(file)) {
      std::string m = mbox::Unquote(e.stored);
      size_t id = m.find("Message-ID: <") + 13;
      std::string key = m.substr(id, m.find('@', id) - id);
      EXPECT_TRUE(out.emplace(key, m.substr(m.find("\n\n") + 2)).second) << "two copies of " << key;
    }
    return out;
  };
  for (std::string point :
       {"", "mbox.append.after-fsync", "mbox.commit.after-undo-remove:2", "merge.close.before",
        "mbox.rewrite.before-rename", "mbox.rewrite.after-rename"}) {
    SCOPED_TRACE(point);
    WriteFileOrDie(P("t.mbox"), target);
    std::vector<std::string> merge = {"merge",      "--mode",  "replace",   "--dedupe",
                                      "message-id", "--from",  P("s.mbox"), "--into",
                                      P("t.mbox"),  "--batch", "2",         "--quiet"};
    if (!point.empty()) {
      std::vector<std::string> killed = {"env", "MBXMERGE_CRASH_AT=" + point,
                                         testing::MbxmergePath()};
      killed.insert(killed.end(), merge.begin(), merge.end());
      ASSERT_EQ(testing::Run(killed).exit_code, 128 + 9) << point;
    }
    auto r = RunMbxmerge(merge);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    auto b = bodies(P("t.mbox"));
    ASSERT_EQ(b.size(), 13u);
    for (int i = 0; i < 12; ++i)
      EXPECT_EQ(b["r" + std::to_string(i)], i % 2 ? "old\n" : "new\n") << i;
    EXPECT_EQ(b["fresh"], "new\n");
    EXPECT_EQ(ReadFileOrDie(P("t.mbox")).rfind("junk before the first From_ line\n\n", 0), 0u);
    EXPECT_FALSE(stdfs::exists(P("t.mbox.mbxmerge-replace")));
    // A rerun replaces them again, with the same result.
    ASSERT_EQ(RunMbxmerge(merge).exit_code, 0);
    EXPECT_EQ(bodies(P("t.mbox")).size(), 13u);
  }
}

}  // namespace
}  // namespace mbx
