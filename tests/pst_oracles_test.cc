// The three PST readers of tests/pst_oracles.h (pffexport, readpst,
// pst-extractor) on the real Outlook files of ../shared/data/outlook: each opens
// them (or fails exactly where it is known to), they agree with each other
// wherever they all report something, and none takes a broken file for an empty
// store. The PST writer's tests rely on these readers, so what they get wrong is
// stated here by name, file and item.
#include "tests/pst_oracles.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <map>
#include <ostream>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "tests/test_util.h"

namespace mbx::testing {

// Readable parameter names in ctest's list (gtest_discover_tests shows GetParam()).
void PrintTo(Oracle oracle, std::ostream* os) { *os << OracleName(oracle); }

namespace {

constexpr char kSample1[] = "pstsdk-sample1.pst";
constexpr char kSample2[] = "pstsdk-sample2.pst";  // 32-bit ANSI
constexpr char kSubmessage[] = "pstsdk-submessage.pst";
constexpr char kTestUnicode[] = "pstsdk-test_unicode.pst";
constexpr char kTestAnsi[] = "pstsdk-test_ansi.pst";  // 32-bit ANSI
constexpr char kOst[] = "pstextractortest@outlook.com.ost";
constexpr char kOstPdf[] = "pstextractortestpdf@outlook.com.ost";

// What a file is known to hold (from Outlook's own view of it).
struct FileFacts {
  const char* file;
  const char* folder;   // a folder every reader must report
  size_t mail_count;    // mail items in it
  const char* subject;  // one of their subjects; nullptr when none
};

constexpr FileFacts kFiles[] = {
    {kSample1, "Sample1", 1, "Here is a sample message"},
    {kSample2, "Sample2", 1, "Here is a sample message"},
    {kSubmessage, "submessage", 1, "This is a message which has an embedded message attached"},
    {kTestUnicode, "Folder", 0, nullptr},
    {kTestAnsi, "Folder", 0, nullptr},
    {kOst, "Inbox", 7, "text, jpg, pdf attachments"},
    {kOstPdf, "Inbox", 2, "single PDF"},
};

// An item (or, with no subject, a whole folder) on which one reader is known to
// differ; each list below says why.
struct KnownDifference {
  const char* file;
  const char* folder;
  const char* subject;
};

// No transport headers: readpst writes "To:" from PR_DISPLAY_TO, i.e. the display
// name "Pst Extractor", where the MAPI recipient has an SMTP address.
constexpr KnownDifference kReadpstDisplayNameTo[] = {
    {kOst, "Inbox", "Welcome to your new Outlook.com account"},
    {kOstPdf, "Inbox", "Welcome to your new Outlook.com account"},
};

// readpst takes From from the transport headers ("From: epfromer@gmail.com"),
// which name another sender than PR_SENDER_* (Google Calendar) on this reply.
constexpr KnownDifference kReadpstHeaderSender[] = {
    {kOst, "Inbox",
     "Accepted: meeting with attachments (jpg, pdf, text) @ Tue Aug 24, 2021 11am - 12pm (MDT) "
     "(Pst Extractor)"},
};

// pst-extractor assumes 8176-byte row-matrix blocks; this table of an OST with
// 4 KiB pages has bigger ones, so it stops after the first 24 of 160 rows.
constexpr KnownDifference kPstExtractorShortTable[] = {
    {kOst, "Calendar/United States holidays", nullptr},
    {kOstPdf, "Calendar/United States holidays", nullptr},
};

void PrintTo(const FileFacts& facts, std::ostream* os) { *os << facts.file; }

template <size_t N>
bool IsKnown(const KnownDifference (&list)[N], const std::string& file, const std::string& folder,
             const std::string* subject = nullptr) {
  for (const auto& k : list) {
    if (file == k.file && folder == k.folder && (!subject || !k.subject || *subject == k.subject)) {
      return true;
    }
  }
  return false;
}

// pst-extractor 1.12.0 cannot open 32-bit ANSI files (see tests/pst_oracles.h).
bool PstExtractorRejects(Oracle oracle, const std::string& file) {
  return oracle == Oracle::kPstExtractor && (file == kSample2 || file == kTestAnsi);
}

std::string OutlookPath(const std::string& file) {
  std::string data = SharedDataDir();
  if (data.empty()) return "";
  std::string path = data + "/outlook/" + file;
  std::error_code ec;
  return std::filesystem::is_regular_file(path, ec) ? path : "";
}

// The readers take seconds on the OSTs: each (reader, file) runs once per process.
const Result<OracleStore>& Load(Oracle oracle, const std::string& path) {
  static std::map<std::pair<Oracle, std::string>, Result<OracleStore>> cache;
  auto key = std::make_pair(oracle, path);
  auto it = cache.find(key);
  if (it == cache.end()) it = cache.emplace(key, ReadWithOracle(oracle, path)).first;
  return it->second;
}

std::vector<const OracleMessage*> Items(const OracleStore& store, const std::string& folder,
                                        bool (*keep)(const OracleMessage&)) {
  std::vector<const OracleMessage*> out;
  auto it = store.find(folder);
  if (it == store.end()) return out;
  for (const auto& m : it->second.messages) {
    if (keep(m)) out.push_back(&m);
  }
  return out;
}

bool AnyItem(const OracleMessage&) { return true; }
bool IsMeeting(const OracleMessage& m) { return m.kind == OracleKind::kMeeting; }
bool IsPost(const OracleMessage& m) { return m.kind == OracleKind::kPost; }

std::string Sanitize(std::string s) {
  for (char& c : s) {
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  }
  return s;
}

// ---------------------------------------------------------------- each reader, each file

class ReaderOnFileTest : public ::testing::TestWithParam<std::tuple<Oracle, FileFacts>> {};

TEST_P(ReaderOnFileTest, OpensAndSeesTheKnownContent) {
  const auto& [oracle, facts] = GetParam();
  std::string why = OracleUnavailableReason(oracle);
  if (!why.empty()) GTEST_SKIP() << why;
  std::string path = OutlookPath(facts.file);
  if (path.empty()) GTEST_SKIP() << "shared Outlook file " << facts.file << " not found";

  const Result<OracleStore>& store = Load(oracle, path);
  if (PstExtractorRejects(oracle, facts.file)) {
    ASSERT_FALSE(store.ok()) << "pst-extractor reads ANSI files now: drop the exclusion";
    EXPECT_NE(store.status().message().find("findBtreeItem"), std::string::npos)
        << store.status().ToString();
    return;
  }
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  EXPECT_EQ(store->count(""), 1u) << "the IPM subtree must map to \"\"";
  ASSERT_EQ(store->count(facts.folder), 1u) << DescribeOracleStore(*store);
  auto mail = Items(*store, facts.folder, IsMailItem);
  EXPECT_EQ(mail.size(), facts.mail_count) << DescribeOracleStore(*store);
  if (facts.subject) {
    EXPECT_TRUE(std::any_of(mail.begin(), mail.end(), [&](const OracleMessage* m) {
      return m->subject == facts.subject;
    })) << DescribeOracleStore(*store);
  }
  for (const auto& [p, folder] : *store) {
    EXPECT_EQ(p, folder.path);
    EXPECT_EQ(p.find("Top of "), std::string::npos) << "root naming leaked into " << p;
    EXPECT_EQ(p.find("IPM_SUBTREE"), std::string::npos) << "root naming leaked into " << p;
  }
}

INSTANTIATE_TEST_SUITE_P(SharedFiles, ReaderOnFileTest,
                         ::testing::Combine(::testing::ValuesIn(kAllOracles),
                                            ::testing::ValuesIn(kFiles)),
                         [](const ::testing::TestParamInfo<ReaderOnFileTest::ParamType>& info) {
                           return Sanitize(std::string(OracleName(std::get<0>(info.param))) + "_" +
                                           std::get<1>(info.param).file);
                         });

// The files holding one message from an Exchange user.
constexpr FileFacts kSingleMessageFiles[] = {kFiles[0], kFiles[1], kFiles[2]};

class ReaderOnSingleMessageTest : public ::testing::TestWithParam<std::tuple<Oracle, FileFacts>> {};

TEST_P(ReaderOnSingleMessageTest, SeesTheKnownMessageDetails) {
  const auto& [oracle, facts] = GetParam();
  std::string why = OracleUnavailableReason(oracle);
  if (!why.empty()) GTEST_SKIP() << why;
  std::string file = facts.file;
  std::string path = OutlookPath(file);
  if (path.empty()) GTEST_SKIP() << "shared Outlook file " << file << " not found";
  if (PstExtractorRejects(oracle, file)) GTEST_SKIP() << "pst-extractor cannot open " << file;
  const Result<OracleStore>& store = Load(oracle, path);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  auto mail = Items(*store, facts.folder, IsMailItem);
  ASSERT_EQ(mail.size(), 1u);
  const OracleMessage& m = *mail[0];
  // The sender is an Exchange user: every reader must find the SMTP form.
  EXPECT_EQ(m.sender_name, "Terry Mahaffey");
  EXPECT_EQ(m.sender_email, "terrymah@microsoft.com");
  EXPECT_EQ(m.to, std::vector<std::string>{"terrymah@microsoft.com"});
  EXPECT_TRUE(m.cc.empty());
  EXPECT_TRUE(m.bcc.empty());
  ASSERT_EQ(m.attachments.size(), 1u);
  if (file == kSubmessage) {
    EXPECT_EQ(m.body, "This is the body of the regular message");
    EXPECT_EQ(m.attachments[0].first, "message/rfc822: This is an embedded message");
    EXPECT_EQ(m.attachments[0].second, "");
  } else {
    EXPECT_EQ(m.body.rfind("With a sample attachment. It", 0), 0u) << m.body;
    EXPECT_EQ(m.attachments[0].first, "leah_thumper.jpg");
    EXPECT_EQ(m.attachments[0].second.size(), 64u);
    EXPECT_NE(m.body_html.find("<html"), std::string::npos);
  }
}

INSTANTIATE_TEST_SUITE_P(
    SharedFiles, ReaderOnSingleMessageTest,
    ::testing::Combine(::testing::ValuesIn(kAllOracles), ::testing::ValuesIn(kSingleMessageFiles)),
    [](const ::testing::TestParamInfo<ReaderOnSingleMessageTest::ParamType>& info) {
      return Sanitize(std::string(OracleName(std::get<0>(info.param))) + "_" +
                      std::get<1>(info.param).file);
    });

// ---------------------------------------------------------------- agreement

class AgreementTest : public ::testing::TestWithParam<FileFacts> {
 protected:
  // Loads `file` with every reader that runs here and can open it; skips when
  // fewer than two are left.
  void SetUp() override {
    file_ = GetParam().file;
    path_ = OutlookPath(file_);
    if (path_.empty()) GTEST_SKIP() << "shared Outlook file " << file_ << " not found";
    std::string missing;
    for (Oracle o : kAllOracles) {
      std::string why = OracleUnavailableReason(o);
      if (!why.empty()) {
        missing += " " + why + ";";
        continue;
      }
      if (PstExtractorRejects(o, file_)) continue;
      const Result<OracleStore>& store = Load(o, path_);
      ASSERT_TRUE(store.ok()) << OracleName(o) << ": " << store.status().ToString();
      stores_.emplace(o, *store);
    }
    if (stores_.size() < 2) {
      GTEST_SKIP() << "fewer than two readers for " << file_ << ":" << missing;
    }
  }

  bool Have(Oracle a, Oracle b) const { return stores_.count(a) && stores_.count(b); }

  CompareOptions Options(Oracle left, Oracle right) const {
    CompareOptions o;
    o.left_name = OracleName(left);
    o.right_name = OracleName(right);
    // readpst writes no folder without items or subfolders.
    o.tree = left == Oracle::kReadpst ? CompareOptions::Tree::kLeftInRight
                                      : CompareOptions::Tree::kEqual;
    return o;
  }

  std::string Compare(Oracle left, Oracle right, const CompareOptions& o) const {
    return CompareOracleStores(stores_.at(left), stores_.at(right), o);
  }

  // The checks of ReadersAgree, one per difference that matters; a single test
  // per file because pffexport -d takes ~20 s on each OST.
  void CheckMailItems();
  void CheckReadpstDisplayNameTo();
  void CheckItemCounts();
  void CheckMeetings();
  void CheckPosts();

  std::string file_, path_;
  std::map<Oracle, OracleStore> stores_;
};

// The pairs compared; readpst is always on the left (its tree is a subset).
constexpr std::pair<Oracle, Oracle> kPairs[] = {
    {Oracle::kPffexport, Oracle::kPstExtractor},
    {Oracle::kReadpst, Oracle::kPffexport},
    {Oracle::kReadpst, Oracle::kPstExtractor},
};

void AgreementTest::CheckMailItems() {
  for (const auto& [left, right] : kPairs) {
    if (!Have(left, right)) continue;
    SCOPED_TRACE(std::string(OracleName(left)) + " vs " + OracleName(right));
    CompareOptions o = Options(left, right);
    o.aspects = kOracleAllAspects & ~kOracleRecipients;
    EXPECT_EQ(Compare(left, right, o), "");

    // Recipients: everything but the named readpst exception, checked below.
    o.aspects = kOracleRecipients;
    std::string file = file_;
    bool readpst = left == Oracle::kReadpst;
    o.message_filter = [file, readpst](const std::string& folder, const OracleMessage& m) {
      return IsMailItem(m) &&
             !(readpst && IsKnown(kReadpstDisplayNameTo, file, folder, &m.subject));
    };
    EXPECT_EQ(Compare(left, right, o), "");
  }
}

void AgreementTest::CheckReadpstDisplayNameTo() {
  for (const auto& k : kReadpstDisplayNameTo) {
    if (file_ != k.file) continue;
    for (Oracle other : {Oracle::kPffexport, Oracle::kPstExtractor}) {
      if (!Have(Oracle::kReadpst, other)) continue;
      auto find = [&](Oracle o) -> const OracleMessage* {
        for (const auto* m : Items(stores_.at(o), k.folder, IsMailItem)) {
          if (m->subject == k.subject) return m;
        }
        return nullptr;
      };
      const OracleMessage* r = find(Oracle::kReadpst);
      const OracleMessage* x = find(other);
      ASSERT_TRUE(r && x) << k.subject;
      ASSERT_EQ(r->to.size(), 1u);
      ASSERT_EQ(x->to.size(), 1u);
      EXPECT_EQ(r->to[0].find('@'), std::string::npos) << "readpst: " << r->to[0];
      EXPECT_EQ(r->to[0].rfind("pst extractor", 0), 0u) << r->to[0];
      EXPECT_NE(x->to[0].find('@'), std::string::npos) << OracleName(other) << ": " << x->to[0];
    }
  }
}

void AgreementTest::CheckItemCounts() {
  std::string file = file_;
  CompareOptions o;
  o.aspects = kOracleCounts;
  o.message_filter = [](const std::string&, const OracleMessage& m) {
    return m.kind != OracleKind::kPost;  // skipped by pffexport and readpst: CheckPosts
  };
  if (Have(Oracle::kReadpst, Oracle::kPffexport)) {
    o.left_name = "readpst";
    o.right_name = "pffexport";
    EXPECT_EQ(CompareOracleStores(stores_.at(Oracle::kReadpst), stores_.at(Oracle::kPffexport), o),
              "");
  }
  for (Oracle left : {Oracle::kPffexport, Oracle::kReadpst}) {
    if (!Have(left, Oracle::kPstExtractor)) continue;
    o.left_name = OracleName(left);
    o.right_name = "pst-extractor";
    o.folder_filter = [file](const std::string& folder) {
      return !IsKnown(kPstExtractorShortTable, file, folder);
    };
    EXPECT_EQ(CompareOracleStores(stores_.at(left), stores_.at(Oracle::kPstExtractor), o), "");
    for (const auto& k : kPstExtractorShortTable) {
      if (file_ != k.file) continue;
      size_t full = Items(stores_.at(left), k.folder, AnyItem).size();
      size_t seen = Items(stores_.at(Oracle::kPstExtractor), k.folder, AnyItem).size();
      EXPECT_EQ(full, 160u) << OracleName(left) << " " << k.folder;
      EXPECT_LT(seen, full) << "pst-extractor reads all of " << k.folder
                            << " now: drop the exclusion";
      EXPECT_GT(seen, 0u);
    }
  }
}

void AgreementTest::CheckMeetings() {
  std::string file = file_;
  // pffexport writes neither recipients nor attachments of meeting items.
  if (Have(Oracle::kPffexport, Oracle::kPstExtractor)) {
    CompareOptions o = Options(Oracle::kPffexport, Oracle::kPstExtractor);
    o.aspects =
        kOracleCounts | kOracleSubjects | kOracleSenders | kOracleBodies | kOracleHtmlBodies;
    o.message_filter = [](const std::string&, const OracleMessage& m) { return IsMeeting(m); };
    EXPECT_EQ(Compare(Oracle::kPffexport, Oracle::kPstExtractor, o), "");
    for (const auto& [path, folder] : stores_.at(Oracle::kPffexport)) {
      for (const auto* m : Items(stores_.at(Oracle::kPffexport), path, IsMeeting)) {
        EXPECT_TRUE(m->to.empty() && m->attachments.empty()) << path << ": " << m->subject;
      }
    }
  }
  for (Oracle right : {Oracle::kPffexport, Oracle::kPstExtractor}) {
    if (!Have(Oracle::kReadpst, right)) continue;
    SCOPED_TRACE(std::string("readpst vs ") + OracleName(right));
    CompareOptions o = Options(Oracle::kReadpst, right);
    o.aspects = kOracleCounts | kOracleSubjects | kOracleBodies | kOracleHtmlBodies;
    if (right == Oracle::kPstExtractor) o.aspects |= kOracleRecipients | kOracleAttachments;
    o.message_filter = [](const std::string&, const OracleMessage& m) { return IsMeeting(m); };
    EXPECT_EQ(Compare(Oracle::kReadpst, right, o), "");
    o.aspects = kOracleSenders;
    o.message_filter = [file](const std::string& folder, const OracleMessage& m) {
      return IsMeeting(m) && !IsKnown(kReadpstHeaderSender, file, folder, &m.subject);
    };
    EXPECT_EQ(Compare(Oracle::kReadpst, right, o), "");
  }
}

void AgreementTest::CheckPosts() {
  if (!stores_.count(Oracle::kPstExtractor)) return;  // not usable here
  const OracleStore& pstx = stores_.at(Oracle::kPstExtractor);
  std::vector<std::pair<std::string, std::string>> posts;
  for (const auto& [path, folder] : pstx) {
    for (const auto* m : Items(pstx, path, IsPost)) posts.emplace_back(path, m->subject);
  }
  if (file_ == kTestUnicode) {
    std::vector<std::pair<std::string, std::string>> want = {{"", "Test"}, {"Folder", "Post"}};
    EXPECT_EQ(posts, want);
  }
  // pffexport ("Skipped item ... of type: IPM.Post") and readpst skip them.
  for (Oracle o : {Oracle::kPffexport, Oracle::kReadpst}) {
    if (!stores_.count(o)) continue;
    for (const auto& [path, subject] : posts) {
      EXPECT_TRUE(Items(stores_.at(o), path, AnyItem).empty()) << OracleName(o) << " " << path;
    }
  }
}

TEST_P(AgreementTest, ReadersAgree) {
  {
    SCOPED_TRACE("mail items agree on every aspect");
    CheckMailItems();
  }
  {
    SCOPED_TRACE("readpst names recipients of header-less items by display name");
    CheckReadpstDisplayNameTo();
  }
  {
    SCOPED_TRACE("item counts agree for every kind but posts");
    CheckItemCounts();
  }
  {
    SCOPED_TRACE("meetings agree on what each reader writes");
    CheckMeetings();
  }
  {
    SCOPED_TRACE("posts are seen by pst-extractor only");
    CheckPosts();
  }
}

INSTANTIATE_TEST_SUITE_P(SharedFiles, AgreementTest, ::testing::ValuesIn(kFiles),
                         [](const ::testing::TestParamInfo<FileFacts>& info) {
                           return Sanitize(info.param.file);
                         });

// ---------------------------------------------------------------- broken input

class BrokenInputTest : public ::testing::TestWithParam<Oracle> {
 protected:
  void SetUp() override {
    std::string why = OracleUnavailableReason(GetParam());
    if (!why.empty()) GTEST_SKIP() << why;
  }
  TempDir tmp_;
};

TEST_P(BrokenInputTest, FileThatIsNotAPstIsAnError) {
  std::string mbox = tmp_ / "mail.pst";
  WriteFileOrDie(mbox, "From a@b Mon Jan  1 00:00:00 2024\nSubject: x\n\nnot a PST\n");
  auto r = ReadWithOracle(GetParam(), mbox);
  EXPECT_FALSE(r.ok()) << DescribeOracleStore(r.ok() ? *r : OracleStore{});
  std::string empty = tmp_ / "empty.pst";
  WriteFileOrDie(empty, "");
  EXPECT_FALSE(ReadWithOracle(GetParam(), empty).ok());
  EXPECT_FALSE(ReadWithOracle(GetParam(), tmp_ / "missing.pst").ok());
}

TEST_P(BrokenInputTest, PstTruncatedTo8KiBIsAnError) {
  bool any = false;
  for (const char* name : {kSample1, kOst}) {
    std::string path = OutlookPath(name);
    if (path.empty()) continue;
    any = true;
    std::string cut = tmp_ / (std::string("cut-") + name);
    WriteFileOrDie(cut, ReadFileOrDie(path).substr(0, 8192));
    auto r = ReadWithOracle(GetParam(), cut);
    // pffexport exits 0 here and writes nothing; that must not read as empty.
    EXPECT_FALSE(r.ok()) << name << ":\n" << DescribeOracleStore(r.ok() ? *r : OracleStore{});
  }
  if (!any) GTEST_SKIP() << "shared Outlook files not found";
}

INSTANTIATE_TEST_SUITE_P(AllReaders, BrokenInputTest, ::testing::ValuesIn(kAllOracles),
                         [](const ::testing::TestParamInfo<Oracle>& info) {
                           return Sanitize(OracleName(info.param));
                         });

// ---------------------------------------------------------------- the comparison itself

OracleStore TwoFolders() {
  OracleMessage m;
  m.subject = "Hello";
  m.sender_name = "Ann";
  m.sender_email = "ann@example.com";
  m.body = "one\ntwo";
  m.body_html = "<p>one</p>";
  m.submit_time = 100;
  m.to = {"bob@example.com"};
  m.cc = {"carl"};
  m.attachments = {{"a.txt", "00ff"}};
  OracleStore s;
  s[""].path = "";
  s["Inbox"].path = "Inbox";
  s["Inbox"].messages.push_back(m);
  s["Inbox/Sub"].path = "Inbox/Sub";
  return s;
}

OracleMessage& First(OracleStore& s) { return s["Inbox"].messages[0]; }

TEST(CompareOracleStoresTest, EqualStoresHaveNoDifferences) {
  EXPECT_EQ(CompareOracleStores(TwoFolders(), TwoFolders()), "");
}

TEST(CompareOracleStoresTest, EachAspectReportsItsOwnDifference) {
  struct Case {
    unsigned aspect;
    void (*change)(OracleStore&);
    const char* expect;
  };
  const Case cases[] = {
      {kOracleFolderTree, [](OracleStore& s) { s.erase("Inbox/Sub"); },
       "folder 'Inbox/Sub': only in left"},
      {kOracleCounts,
       [](OracleStore& s) {
         OracleMessage twin = First(s);
         s["Inbox"].messages.push_back(twin);
       },
       "folder 'Inbox': 1 messages in left, 2 in right"},
      {kOracleSubjects, [](OracleStore& s) { First(s).subject = "Bye"; },
       "subject 'Hello' 1x in left, 0x"},
      {kOracleSenders, [](OracleStore& s) { First(s).sender_email = ""; },
       "sender left='Ann <ann@example.com>'"},
      {kOracleRecipients, [](OracleStore& s) { First(s).cc.clear(); }, "cc left=[carl] right=[]"},
      {kOracleBodies, [](OracleStore& s) { First(s).body = "one\ntwO"; },
       "bodies differ at byte 6"},
      {kOracleHtmlBodies, [](OracleStore& s) { First(s).body_html = ""; }, "HTML bodies differ"},
      {kOracleAttachments, [](OracleStore& s) { First(s).attachments[0].second = "00fe"; },
       "attachments left=[a.txt 00ff] right=[a.txt 00fe]"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.expect);
    OracleStore left = TwoFolders(), right = TwoFolders();
    c.change(right);
    CompareOptions only;
    only.aspects = c.aspect;
    std::string diff = CompareOracleStores(left, right, only);
    EXPECT_NE(diff.find(c.expect), std::string::npos) << diff;
    CompareOptions others;
    others.aspects = kOracleAllAspects & ~c.aspect;
    if (c.aspect == kOracleCounts || c.aspect == kOracleSubjects) {
      others.aspects &= ~(kOracleCounts | kOracleSubjects);  // one cause, two symptoms
    }
    EXPECT_EQ(CompareOracleStores(left, right, others), "") << "aspect leaks into others";
  }
}

TEST(CompareOracleStoresTest, LeftInRightToleratesFoldersMissingOnTheLeftOnly) {
  OracleStore full = TwoFolders(), partial = TwoFolders();
  partial.erase("Inbox/Sub");
  CompareOptions o;
  o.tree = CompareOptions::Tree::kLeftInRight;
  EXPECT_EQ(CompareOracleStores(partial, full, o), "");
  EXPECT_NE(CompareOracleStores(full, partial, o), "");
  o.tree = CompareOptions::Tree::kEqual;
  EXPECT_NE(CompareOracleStores(partial, full, o), "");
  // A missing folder that holds mail is still a difference in counts.
  partial.erase("Inbox");
  o.tree = CompareOptions::Tree::kLeftInRight;
  EXPECT_NE(CompareOracleStores(partial, full, o).find("0 messages in left, 1 in right"),
            std::string::npos);
}

TEST(CompareOracleStoresTest, FiltersRestrictWhatIsCompared) {
  OracleStore left = TwoFolders(), right = TwoFolders();
  First(right).kind = OracleKind::kMeeting;
  EXPECT_NE(CompareOracleStores(left, right), "") << "default filter compares mail only";
  CompareOptions any;
  any.message_filter = [](const std::string&, const OracleMessage&) { return true; };
  EXPECT_EQ(CompareOracleStores(left, right, any), "") << "kind itself is not an aspect";
  First(right).kind = OracleKind::kMail;
  First(right).body = "changed";
  CompareOptions skip_inbox;
  skip_inbox.folder_filter = [](const std::string& f) { return f != "Inbox"; };
  EXPECT_EQ(CompareOracleStores(left, right, skip_inbox), "");
}

TEST(CompareOracleStoresTest, SameSubjectMessagesPairBySubmitTime) {
  OracleStore left = TwoFolders(), right = TwoFolders();
  OracleMessage later = First(left);
  later.submit_time = 200;
  later.body = "later";
  left["Inbox"].messages.push_back(later);
  right["Inbox"].messages.insert(right["Inbox"].messages.begin(), later);  // other order
  EXPECT_EQ(CompareOracleStores(left, right), "");
  right["Inbox"].messages[0].body = "LATER";
  EXPECT_NE(CompareOracleStores(left, right).find("bodies differ"), std::string::npos);
}

TEST(OracleNormalizationTest, BodiesIgnoreLineEndingsAndTrailingBlanks) {
  EXPECT_EQ(NormalizeOracleBody("a \t\r\nb\rc\r\n\r\n\n  "), "a\nb\nc");
  EXPECT_EQ(NormalizeOracleBody(std::string("x\r\n\0", 4)), "x");
  EXPECT_EQ(NormalizeOracleBody("\xEF\xBB\xBFtext"), "text");
  EXPECT_EQ(NormalizeOracleBody("  lead stays"), "  lead stays");
  EXPECT_NE(NormalizeOracleBody("a\n\nb"), NormalizeOracleBody("a\nb"))
      << "inner blank lines count";
}

TEST(OracleNormalizationTest, FileNamesMapWhatEitherToolRewrites) {
  EXPECT_EQ(OracleFileName("a/b\\c:d"), "a_b_c_d");                     // readpst
  EXPECT_EQ(OracleFileName("~MAPISP(Internal)"), "_MAPISP(Internal)");  // pffexport
  EXPECT_EQ(OracleFileName("x@y!$%&*+;<>?|"), "x_y" + std::string(11, '_'));
  EXPECT_EQ(OracleFileName("Überweisung (2) {1}.pdf"), "Überweisung (2) {1}.pdf");
}

}  // namespace
}  // namespace mbx::testing
