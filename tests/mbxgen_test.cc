// Tests of the sample generator (samples/mbxgen.cc), the oracle other
// end-to-end tests rely on: determinism, manifest counts, layout of every
// format, and that the traps it promises are really in its output.

#include <gtest/gtest.h>

#include <algorithm>
#include <ctime>
#include <filesystem>
#include <map>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "tests/test_util.h"

namespace mbx::testing {
namespace {

struct Row {
  std::string id, folder, kind, in, message_id;
  long long date = 0;
};

std::vector<Row> ReadManifest(const std::string& path) {
  std::vector<Row> rows;
  std::string text = ReadFileOrDie(path);
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    std::string line = text.substr(pos, nl - pos);
    pos = nl == std::string::npos ? text.size() : nl + 1;
    std::vector<std::string> f;
    size_t s = 0;
    for (;;) {
      size_t tab = line.find('\t', s);
      f.push_back(line.substr(s, tab - s));
      if (tab == std::string::npos) break;
      s = tab + 1;
    }
    EXPECT_EQ(f.size(), 6u) << line;
    if (f.size() != 6) continue;
    rows.push_back({f[0], f[1], f[2], f[3], f[5], std::stoll(f[4])});
  }
  return rows;
}

// Values of every line starting with "X-Mbxgen-Id: " (a header, or the body
// line of a message without headers).
std::vector<std::string> IdsIn(const std::string& data) {
  std::vector<std::string> ids;
  const std::string key = "X-Mbxgen-Id: ";
  for (size_t pos = 0; (pos = data.find(key, pos)) != std::string::npos; pos += key.size()) {
    if (pos != 0 && data[pos - 1] != '\n') continue;
    size_t end = data.find_first_of("\r\n", pos);
    ids.push_back(data.substr(pos + key.size(), end - pos - key.size()));
  }
  return ids;
}

std::string HeaderBlock(const std::string& msg) {
  size_t end = msg.find("\n\n");
  size_t end_crlf = msg.find("\r\n\r\n");
  return msg.substr(0, std::min(end, end_crlf));
}

std::string Lf(std::string s) {
  s.erase(std::remove(s.begin(), s.end(), '\r'), s.end());
  return s;
}

std::string BodyOf(const std::string& msg) {
  std::string lf = Lf(msg);
  size_t end = lf.find("\n\n");
  return end == std::string::npos ? "" : lf.substr(end + 2);
}

// The unfolded value of header `name` ("" if absent).
std::string HeaderValue(const std::string& msg, const std::string& name) {
  std::string h = "\n" + Lf(HeaderBlock(msg));
  size_t pos = h.find("\n" + name + ": ");
  if (pos == std::string::npos) return "";
  pos += name.size() + 3;
  std::string v;
  for (;;) {
    size_t nl = h.find('\n', pos);
    v += h.substr(pos, nl - pos);
    if (nl == std::string::npos || nl + 1 >= h.size() || (h[nl + 1] != ' ' && h[nl + 1] != '\t'))
      break;
    pos = nl + 1;
  }
  return v;
}

// Independent mboxrd splitter: a message starts at a "From " line at the file
// start or after a blank line.
std::vector<std::string> SplitMbox(const std::string& data) {
  std::vector<size_t> starts;
  if (data.rfind("From ", 0) == 0) starts.push_back(0);
  for (size_t pos = 0; (pos = data.find("\n\nFrom ", pos)) != std::string::npos; ++pos)
    starts.push_back(pos + 2);
  std::vector<std::string> msgs;
  for (size_t i = 0; i < starts.size(); ++i) {
    size_t begin = data.find('\n', starts[i]) + 1;
    size_t end = i + 1 < starts.size() ? starts[i + 1] - 1 : data.size() - 1;
    msgs.push_back(data.substr(begin, end - begin));
  }
  return msgs;
}

struct Counts {
  size_t a_only = 0, b_only = 0, both = 0;
};

Counts Count(const std::vector<Row>& rows) {
  Counts c;
  for (const Row& r : rows) {
    if (r.in == "A") ++c.a_only;
    if (r.in == "B") ++c.b_only;
    if (r.in == "both") ++c.both;
  }
  return c;
}

std::set<std::string> IdsWhere(const std::vector<Row>& rows, char side) {
  std::set<std::string> ids;
  for (const Row& r : rows)
    if (r.in == "both" || r.in == std::string(1, side)) ids.insert(r.id);
  return ids;
}

// The expected Maildir++ directory of each logical folder (modified UTF-7 as Dovecot).
const std::map<std::string, std::string> kMaildirDirs = {{"", ""},
                                                         {"Projects", ".Projects"},
                                                         {"Projects/Alpha", ".Projects.Alpha"},
                                                         {"Archive/2023", ".Archive.2023"},
                                                         {"Entwürfe", ".Entw&APw-rfe"}};

struct MaildirMessage {
  std::string dir;  // ".Projects" or ""
  std::string path, data;
};

std::vector<MaildirMessage> ReadMaildir(const std::string& root) {
  std::vector<MaildirMessage> out;
  static const std::regex kCur(R"(\d+\.M\d+P\d+Q\d+\.mbxgen,S=(\d+):2,D?F?P?R?S?T?)");
  static const std::regex kNew(R"(\d+\.M\d+P\d+Q\d+\.mbxgen,S=(\d+))");
  for (const std::string& rel : ListFilesRecursive(root)) {
    std::filesystem::path p(rel);
    std::string name = p.filename().string();
    std::string sub = p.parent_path().filename().string();
    std::string dir = p.parent_path().parent_path().string();
    if (name == "maildirfolder") continue;
    EXPECT_TRUE(sub == "cur" || sub == "new") << rel;
    std::smatch m;
    EXPECT_TRUE(std::regex_match(name, m, sub == "cur" ? kCur : kNew)) << rel;
    MaildirMessage msg{dir, root + "/" + rel, ReadFileOrDie(root + "/" + rel)};
    if (m.size() > 1) {
      EXPECT_EQ(std::stoull(m[1].str()), msg.data.size()) << rel;
    }
    out.push_back(std::move(msg));
  }
  return out;
}

bool SameTree(const std::string& a, const std::string& b) {
  std::vector<std::string> fa = ListFilesRecursive(a), fb = ListFilesRecursive(b);
  if (fa != fb) return false;
  for (const std::string& f : fa)
    if (ReadFileOrDie(a + "/" + f) != ReadFileOrDie(b + "/" + f)) return false;
  return true;
}

std::vector<std::string> PairArgs(const std::string& format, const TempDir& t,
                                  const std::string& tag, int messages, int folders,
                                  const std::string& seed = "7") {
  return {"pair",
          "--format",
          format,
          "--out-a",
          t / (tag + "A"),
          "--out-b",
          t / (tag + "B"),
          "--messages",
          std::to_string(messages),
          "--folders",
          std::to_string(folders),
          "--seed",
          seed,
          "--avg-size",
          "2500",
          "--manifest",
          t / (tag + ".tsv")};
}

void Gen(const std::vector<std::string>& args) {
  CommandResult r = RunMbxgen(args);
  ASSERT_EQ(r.exit_code, 0) << r.err;
}

TEST(MbxgenTest, DeterministicForEveryFormat) {
  for (const std::string format : {"mbox", "maildir", "eml", "mboxdir"}) {
    TempDir t;
    int folders = format == "mbox" ? 1 : 4;
    Gen(PairArgs(format, t, "x", 150, folders));
    Gen(PairArgs(format, t, "y", 150, folders));
    Gen(PairArgs(format, t, "z", 150, folders, "8"));
    EXPECT_EQ(ReadFileOrDie(t / "x.tsv"), ReadFileOrDie(t / "y.tsv")) << format;
    if (format == "mbox") {
      EXPECT_EQ(ReadFileOrDie(t / "xA"), ReadFileOrDie(t / "yA"));
      EXPECT_EQ(ReadFileOrDie(t / "xB"), ReadFileOrDie(t / "yB"));
      EXPECT_NE(ReadFileOrDie(t / "xA"), ReadFileOrDie(t / "zA"));
    } else {
      EXPECT_TRUE(SameTree(t / "xA", t / "yA")) << format;
      EXPECT_TRUE(SameTree(t / "xB", t / "yB")) << format;
      EXPECT_FALSE(SameTree(t / "xA", t / "zA")) << format;
    }
    EXPECT_NE(ReadFileOrDie(t / "x.tsv"), ReadFileOrDie(t / "z.tsv")) << format;
  }
}

TEST(MbxgenTest, PairCountsAndDupRateMatchManifest) {
  TempDir t;
  std::vector<std::string> args = PairArgs("maildir", t, "p", 400, 4);
  args.insert(args.end(), {"--dup-rate", "0.2"});
  Gen(args);
  std::vector<Row> rows = ReadManifest(t / "p.tsv");
  Counts c = Count(rows);
  // 400 copies: 200 in A, 200 in B, 20% of B's also in A.
  EXPECT_EQ(c.both, 40u);
  EXPECT_EQ(c.a_only + c.both, 200u);
  EXPECT_EQ(c.b_only + c.both, 200u);
  EXPECT_EQ(rows.size(), 360u);
  std::set<std::string> ids;
  for (const Row& r : rows) ids.insert(r.id);
  EXPECT_EQ(ids.size(), rows.size()) << "ids must be distinct";

  EXPECT_EQ(ReadMaildir(t / "pA").size(), 200u);
  EXPECT_EQ(ReadMaildir(t / "pB").size(), 200u);
}

TEST(MbxgenTest, MailboxModeWritesExactlyNMessages) {
  TempDir t;
  Gen({"mailbox", "--format", "eml", "--out", t / "e", "--messages", "123", "--manifest",
       t / "e.tsv"});
  std::vector<Row> rows = ReadManifest(t / "e.tsv");
  ASSERT_EQ(rows.size(), 123u);
  for (const Row& r : rows) EXPECT_EQ(r.in, "A");
  EXPECT_EQ(ListFilesRecursive(t / "e").size(), 123u);
}

TEST(MbxgenTest, MaildirHoldsEveryIdOnceInItsFolder) {
  TempDir t;
  Gen(PairArgs("maildir", t, "m", 300, 5));
  std::vector<Row> rows = ReadManifest(t / "m.tsv");
  std::map<std::string, const Row*> by_id;
  for (const Row& r : rows) by_id[r.id] = &r;
  for (char side : {'A', 'B'}) {
    std::string root = t / (std::string("m") + side);
    // Every folder exists in both mailboxes, even when empty.
    for (const auto& [folder, dir] : kMaildirDirs)
      for (const char* sub : {"/cur", "/new", "/tmp"})
        EXPECT_TRUE(std::filesystem::is_directory(root + "/" + dir + sub)) << root << dir << sub;
    std::multiset<std::string> seen;
    for (const MaildirMessage& m : ReadMaildir(root)) {
      std::vector<std::string> ids = IdsIn(m.data);
      ASSERT_EQ(ids.size(), 1u) << m.path;
      seen.insert(ids[0]);
      ASSERT_TRUE(by_id.count(ids[0])) << ids[0];
      EXPECT_EQ(kMaildirDirs.at(by_id[ids[0]]->folder), m.dir) << m.path;
    }
    std::set<std::string> expected = IdsWhere(rows, side);
    EXPECT_EQ(seen.size(), expected.size());
    EXPECT_EQ(std::set<std::string>(seen.begin(), seen.end()), expected);
  }
}

TEST(MbxgenTest, DuplicatesDifferInTraceOnly) {
  TempDir t;
  std::vector<std::string> args = PairArgs("maildir", t, "d", 300, 4);
  args.insert(args.end(), {"--dup-rate", "0.5"});
  Gen(args);
  std::map<std::string, std::string> a, b;
  for (const MaildirMessage& m : ReadMaildir(t / "dA")) a[IdsIn(m.data).at(0)] = m.data;
  for (const MaildirMessage& m : ReadMaildir(t / "dB")) b[IdsIn(m.data).at(0)] = m.data;
  int dups = 0, crlf = 0, other_received = 0;
  for (const Row& r : ReadManifest(t / "d.tsv")) {
    if (r.in != "both") continue;
    ++dups;
    const std::string& x = a.at(r.id);
    const std::string& y = b.at(r.id);
    EXPECT_NE(x, y) << r.id;
    EXPECT_EQ(BodyOf(x), BodyOf(y)) << r.id;
    for (const char* h : {"Message-ID", "Date", "From", "To", "Cc", "Subject", "Content-Type"})
      EXPECT_EQ(HeaderValue(x, h), HeaderValue(y, h)) << r.id << " " << h;
    if (y.find("\r\n") != std::string::npos) ++crlf;
    if (HeaderValue(x, "Received") != HeaderValue(y, "Received")) ++other_received;
  }
  EXPECT_EQ(dups, 75);
  EXPECT_GT(crlf, 0);
  EXPECT_LT(crlf, dups);
  EXPECT_GT(other_received, dups / 2);
}

TEST(MbxgenTest, MboxSplitsIntoManifestMessagesWithFormail) {
  if (!HaveProgram("formail")) GTEST_SKIP() << "formail (procmail) not installed";
  TempDir t;
  Gen(PairArgs("mbox", t, "f", 120, 1));
  std::vector<Row> rows = ReadManifest(t / "f.tsv");
  for (char side : {'A', 'B'}) {
    std::string path = t / (std::string("f") + side);
    // The child drains what formail -X leaves unread: a child that exits early makes
    // formail's write fail (EPIPE, exit 74) whenever it is still writing the body.
    CommandResult r = mbx::testing::Run(
        {"sh", "-c",
         "formail -s sh -c 'formail -X X-Mbxgen-Id:; cat >/dev/null' < '" + path + "'"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    std::vector<std::string> ids = IdsIn(r.out);
    EXPECT_EQ(ids.size(), 60u) << side;
    EXPECT_EQ(std::set<std::string>(ids.begin(), ids.end()), IdsWhere(rows, side)) << side;
  }
}

TEST(MbxgenTest, MboxIsMboxrdQuoted) {
  TempDir t;
  Gen(PairArgs("mbox", t, "q", 300, 1));
  std::string data = ReadFileOrDie(t / "qA");
  std::vector<std::string> msgs = SplitMbox(data);
  EXPECT_EQ(msgs.size(), 150u);
  // Every line starting with "From " is a From_ line after a blank line.
  size_t from_lines = 0;
  for (size_t pos = 0; (pos = data.find("\nFrom ", pos)) != std::string::npos; ++pos) ++from_lines;
  EXPECT_EQ(from_lines + 1, msgs.size());
  bool any_trap = false;
  for (const std::string& m : SplitMbox(data + ReadFileOrDie(t / "qB"))) {
    if (m.find("From the archive, as discussed:") == std::string::npos) continue;
    any_trap = true;
    std::string lf = Lf(m);
    EXPECT_NE(lf.find("\n>From the archive, as discussed:\n"), std::string::npos);
    EXPECT_NE(lf.find("\n>>From the quoted reply"), std::string::npos);
    EXPECT_NE(lf.find("\n>>>From two levels deep"), std::string::npos);
    EXPECT_NE(lf.find("\n>From alice@example.org Thu Jan  1"), std::string::npos);
    EXPECT_NE(lf.find("\nFromage is not"), std::string::npos);  // no space: not quoted
  }
  EXPECT_TRUE(any_trap);
  for (const Row& r : ReadManifest(t / "q.tsv")) EXPECT_NE(r.kind, "no-headers");
}

TEST(MbxgenTest, TrapsArePresent) {
  TempDir t;
  Gen(PairArgs("eml", t, "k", 200, 4));
  std::vector<Row> rows = ReadManifest(t / "k.tsv");
  std::map<std::string, std::string> msgs;  // id -> bytes
  for (const char* side : {"kA", "kB"})
    for (const std::string& f : ListFilesRecursive(t / side)) {
      std::string data = ReadFileOrDie(t / side + "/" + f);
      msgs[IdsIn(data).at(0)] = data;
      EXPECT_TRUE(std::regex_match(std::filesystem::path(f).filename().string(),
                                   std::regex(R"([1-9][0-9]*\.eml)")))
          << f;
    }
  std::map<std::string, int> kinds;
  int min_year = 3000, max_year = 0;
  for (const Row& r : rows) {
    ++kinds[r.kind];
    time_t when = static_cast<time_t>(r.date);
    tm parts{};
    ASSERT_NE(gmtime_r(&when, &parts), nullptr);
    int year = 1900 + parts.tm_year;
    min_year = std::min(min_year, year);
    max_year = std::max(max_year, year);
    ASSERT_TRUE(msgs.count(r.id)) << r.id;
    const std::string& m = msgs[r.id];
    if (r.kind == "nul-bytes") {
      EXPECT_NE(m.find('\0'), std::string::npos) << r.id;
    }
    if (r.kind == "raw-8bit-header") {
      std::string h = HeaderBlock(m);
      EXPECT_TRUE(std::any_of(h.begin(), h.end(), [](char c) { return c & 0x80; })) << r.id;
    }
    if (r.kind == "no-headers") {
      EXPECT_EQ(m.find(':'), m.find("X-Mbxgen-Id:") + 11)
          << r.id;  // no header line anywhere before
      EXPECT_EQ(HeaderValue(m, "Message-ID"), "");
    }
    if (r.kind == "no-message-id") {
      EXPECT_EQ(HeaderValue(m, "Message-ID"), "") << r.id;
    }
    if (r.kind == "lookalike-msgid") {
      // Another distinct message carries the same Message-ID but differs.
      int same = 0;
      for (const Row& o : rows)
        if (o.id != r.id && o.message_id == r.message_id) {
          ++same;
          const std::string& other = msgs[o.id];
          EXPECT_TRUE(HeaderValue(m, "From") != HeaderValue(other, "From") ||
                      HeaderValue(m, "Date") != HeaderValue(other, "Date") ||
                      BodyOf(m) != BodyOf(other))
              << r.id;
          EXPECT_EQ(o.folder, r.folder);
        }
      EXPECT_GE(same, 1) << r.id;
    }
    if (r.kind == "lookalike-content") {
      int same = 0;
      for (const auto& [id, other] : msgs)
        if (id != r.id && HeaderValue(other, "Subject") == HeaderValue(m, "Subject") &&
            HeaderValue(other, "From") == HeaderValue(m, "From") &&
            HeaderValue(other, "Date") == HeaderValue(m, "Date")) {
          ++same;
          EXPECT_NE(BodyOf(other), BodyOf(m)) << r.id;
        }
      EXPECT_GE(same, 1) << r.id;
    }
    if (r.kind == "subject-utf8") {
      EXPECT_NE(HeaderValue(m, "Subject").find("=?UTF-8?B?"), std::string::npos) << r.id;
    }
    if (r.kind == "subject-latin1") {
      EXPECT_NE(HeaderValue(m, "Subject").find("=?ISO-8859-1?Q?"), std::string::npos) << r.id;
    }
    if (r.kind == "rfc822") {
      EXPECT_NE(m.find("message/rfc822"), std::string::npos) << r.id;
    }
  }
  for (const char* k :
       {"plain", "alternative", "attachment", "quoted-printable", "nested", "rfc822",
        "subject-utf8", "subject-latin1", "from-lines", "no-message-id", "lookalike-msgid",
        "lookalike-content", "nul-bytes", "raw-8bit-header", "broken-boundary", "no-headers"})
    EXPECT_GE(kinds[k], 1) << k;
  EXPECT_EQ(min_year, 2019);
  EXPECT_EQ(max_year, 2024);
  // RFC 2231 file names appear somewhere.
  bool rfc2231 = false;
  for (const auto& [id, m] : msgs) rfc2231 |= m.find("filename*=utf-8''") != std::string::npos;
  EXPECT_TRUE(rfc2231);
}

TEST(MbxgenTest, MboxDirLayout) {
  TempDir t;
  Gen(PairArgs("mboxdir", t, "b", 200, 5));
  std::vector<Row> rows = ReadManifest(t / "b.tsv");
  std::map<std::string, std::string> files = {{"", "mbox"},
                                              {"Projects", "Projects.mbox"},
                                              {"Projects/Alpha", "Projects/Alpha.mbox"},
                                              {"Archive/2023", "Archive/2023.mbox"},
                                              {"Entwürfe", "Entwürfe.mbox"}};
  for (char side : {'A', 'B'}) {
    std::string root = t / (std::string("b") + side);
    std::vector<std::string> expected_files;
    for (const auto& [folder, file] : files) expected_files.push_back(file);
    std::sort(expected_files.begin(), expected_files.end());
    EXPECT_EQ(ListFilesRecursive(root), expected_files);
    for (const auto& [folder, file] : files) {
      std::set<std::string> got, want;
      for (const std::string& m : SplitMbox(ReadFileOrDie(root + "/" + file))) {
        std::vector<std::string> ids = IdsIn(m);
        ASSERT_EQ(ids.size(), 1u);
        got.insert(ids[0]);
      }
      for (const Row& r : rows)
        if (r.folder == folder && (r.in == "both" || r.in == std::string(1, side)))
          want.insert(r.id);
      EXPECT_EQ(got, want) << side << " " << file;
    }
  }
}

TEST(MbxgenTest, RejectsBadArguments) {
  TempDir t;
  EXPECT_EQ(RunMbxgen({}).exit_code, 2);
  EXPECT_EQ(
      RunMbxgen({"mailbox", "--format", "pst", "--out", t / "x", "--messages", "1"}).exit_code, 2);
  EXPECT_EQ(RunMbxgen({"mailbox", "--format", "mbox", "--messages", "1"}).exit_code, 2);
  EXPECT_EQ(RunMbxgen({"pair", "--format", "mbox", "--out-a", t / "a", "--out-b", t / "b",
                       "--messages", "10", "--dup-rate", "1.5"})
                .exit_code,
            2);
  WriteFileOrDie(t / "full/file", "x");
  EXPECT_NE(RunMbxgen({"mailbox", "--format", "maildir", "--out", t / "full", "--messages", "1"})
                .exit_code,
            0);
}

// samples/data is what the generator makes with the commands in samples/README.md.
TEST(MbxgenTest, CheckedInSamplesAreCurrent) {
  std::filesystem::path src = std::filesystem::path(__FILE__).parent_path().parent_path();
  std::string data = (src / "samples/data").string();
  if (!std::filesystem::is_directory(data)) GTEST_SKIP() << "no " << data;
  TempDir t;
  Gen({"pair", "--format", "mbox", "--out-a", t / "mbox/a.mbox", "--out-b", t / "mbox/b.mbox",
       "--messages", "60", "--seed", "1", "--avg-size", "2000", "--manifest",
       t / "mbox/manifest.tsv"});
  Gen({"pair", "--format", "maildir", "--out-a", t / "maildir/a", "--out-b", t / "maildir/b",
       "--messages", "80", "--folders", "4", "--seed", "2", "--avg-size", "2000", "--manifest",
       t / "maildir/manifest.tsv"});
  std::vector<std::string> want = ListFilesRecursive(t.path());
  std::vector<std::string> got;
  for (const std::string& f : ListFilesRecursive(data))
    if (std::filesystem::path(f).filename() != ".gitkeep" && f.rfind("store/", 0) != 0)
      got.push_back(f);  // store/ is checked by mbxgen_store_test
  EXPECT_EQ(got, want);
  for (const std::string& f : want)
    EXPECT_TRUE(ReadFileOrDie(data + "/" + f) == ReadFileOrDie(t / f)) << f;
}

}  // namespace
}  // namespace mbx::testing
