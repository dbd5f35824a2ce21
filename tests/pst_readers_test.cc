// PSTs written by mbxmerge, read back by three readers nobody here wrote
// (libpff's pffexport, libpst's readpst, the npm package pst-extractor; see
// pst_oracles.h): each opens every file and agrees with the source on the
// folder tree, per-folder counts, subjects, senders, recipients, bodies and
// attachments.
#include <gtest/gtest.h>

#include <filesystem>

#include "formats/pst/messaging/store_writer.h"
#include "tests/pst_oracles.h"
#include "tests/test_util.h"

namespace mbx {
namespace {

using testing::CompareOptions;
using testing::CompareOracleStores;
using testing::Oracle;
using testing::OracleMessage;
using testing::OracleStore;
using testing::RunMbxmerge;
using testing::TempDir;

std::string Base64(std::string_view in) {
  static const char* k = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    const uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8) | uint8_t(in[i + 2]);
    for (int s : {18, 12, 6, 0}) out.push_back(k[(v >> s) & 63]);
    if (out.size() % 78 == 76) out += "\r\n";
  }
  if (i + 1 == in.size()) {
    const uint32_t v = uint8_t(in[i]) << 16;
    out += {k[(v >> 18) & 63], k[(v >> 12) & 63], '=', '='};
  } else if (i + 2 == in.size()) {
    const uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8);
    out += {k[(v >> 18) & 63], k[(v >> 12) & 63], k[(v >> 6) & 63], '='};
  }
  return out;
}

struct Person {
  std::string name, email;
};

// One generated message: its MIME form and what every reader must report.
struct Generated {
  std::string mime;
  OracleMessage expect;
};

Generated MakeMessage(int n, const std::string& folder) {
  static const Person kPeople[] = {
      {"Zoë Ångström", "zoe@example.org"},   {"Jürgen Weiß", "juergen@example.de"},
      {"山田 太郎", "taro@example.jp"},      {"Bob Plain", "bob@example.com"},
      {"Ana María Núñez", "ana@example.es"}, {"Émile Zola", "emile@example.fr"}};
  const Person& from = kPeople[n % 6];
  std::vector<Person> to = {kPeople[(n + 1) % 6]};
  if (n % 2 == 0) to.push_back(kPeople[(n + 2) % 6]);
  std::vector<Person> cc;
  if (n % 3 == 0) cc.push_back(kPeople[(n + 3) % 6]);
  const std::string subject = "Nachricht " + std::to_string(n) + " über " +
                              (folder.empty() ? "Inbox" : folder) + (n % 4 == 0 ? " 😀" : "");
  std::string body = "Hallo " + to[0].name + ",\n\nZeile mit Ümläuten und 日本語, Nummer " +
                     std::to_string(n) + ".\nFrom the start of a line.\n\n-- \n" + from.name + "\n";
  const bool html = n % 2 == 1;
  const bool attach = n % 3 == 1;
  std::string att_name = "Bericht " + std::to_string(n) + " — Ü.bin";
  std::string att_bytes;
  for (int i = 0; i < 5000 + n * 37; ++i)
    att_bytes.push_back(static_cast<char>((i * 31 + n) & 0xFF));

  auto encoded = [](const std::string& s) { return "=?UTF-8?B?" + Base64(s) + "?="; };
  auto address = [&](const Person& p) { return encoded(p.name) + " <" + p.email + ">"; };
  auto list = [&](const std::vector<Person>& ps) {
    std::string out;
    for (const auto& p : ps) out += (out.empty() ? "" : ",\r\n ") + address(p);
    return out;
  };
  std::string m = "From: " + address(from) + "\r\nTo: " + list(to) + "\r\n";
  if (!cc.empty()) m += "Cc: " + list(cc) + "\r\n";
  m += "Subject: " + encoded(subject) + "\r\nDate: Tue, 0" + std::to_string(1 + n % 9) +
       " Mar 2022 10:00:00 +0100\r\nMessage-ID: <gen" + std::to_string(n) +
       "@example.org>\r\nMIME-Version: 1.0\r\n";
  std::string text_part =
      "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
      Base64(body) + "\r\n";
  std::string html_body = "<html><body><p>Hallo <b>" + to[0].name + "</b></p><p>Nummer " +
                          std::to_string(n) + "</p></body></html>";
  std::string alt = text_part;
  if (html) {
    alt = "Content-Type: multipart/alternative; boundary=\"alt\"\r\n\r\n--alt\r\n" + text_part +
          "--alt\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: "
          "base64\r\n\r\n" +
          Base64(html_body) + "\r\n--alt--\r\n";
  }
  const bool forward = n % 5 == 2;
  const std::string inner_subject = "Weitergeleitet " + std::to_string(n) + " – Grüße";
  if (attach || forward) {
    m += "Content-Type: multipart/mixed; boundary=\"mix\"\r\n\r\n--mix\r\n" + alt;
    if (attach) {
      std::string pct;
      for (unsigned char c : att_name) {
        if (isalnum(c) || c == '.' || c == '-') {
          pct.push_back(static_cast<char>(c));
        } else {
          char b[4];
          snprintf(b, sizeof b, "%%%02X", c);
          pct += b;
        }
      }
      m += "--mix\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; "
           "filename*=utf-8''" +
           pct + "\r\nContent-Transfer-Encoding: base64\r\n\r\n" + Base64(att_bytes) + "\r\n";
    }
    if (forward) {
      // A forwarded message: an embedded message in the PST.
      m += "--mix\r\nContent-Type: message/rfc822\r\n\r\nFrom: " + address(kPeople[(n + 4) % 6]) +
           "\r\nTo: " + address(from) + "\r\nSubject: " + encoded(inner_subject) +
           "\r\nDate: Mon, 28 Feb 2022 09:00:00 +0100\r\nMIME-Version: 1.0\r\n"
           "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nDas "
           "Original.\r\n";
    }
    m += "--mix--\r\n";
  } else {
    m += alt;
  }
  Generated g;
  g.mime = m;
  auto& e = g.expect;
  e.subject = subject;
  e.sender_name = from.name;
  e.sender_email = from.email;
  e.body = testing::NormalizeOracleBody(body);
  if (html) e.body_html = html_body;
  e.message_id = "gen" + std::to_string(n) + "@example.org";
  for (const auto& p : to) e.to.push_back(p.email);
  for (const auto& p : cc) e.cc.push_back(p.email);
  std::sort(e.to.begin(), e.to.end());
  std::sort(e.cc.begin(), e.cc.end());
  if (attach)
    e.attachments.emplace_back(testing::OracleFileName(att_name), testing::Sha256Hex(att_bytes));
  if (forward) e.attachments.emplace_back("message/rfc822: " + inner_subject, "");
  std::sort(e.attachments.begin(), e.attachments.end());
  return g;
}

// Replaces every character outside the basic multilingual plane (4-byte UTF-8).
std::string NonBmpAsReplacement(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if ((static_cast<unsigned char>(s[i]) & 0xF8) == 0xF0 && i + 3 < s.size()) {
      out += "\xEF\xBF\xBD";
      i += 3;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

// libpff 20180714 decodes UTF-16 surrogate pairs wrongly: the U+1F600 we store
// as D83D DE00 (correct UTF-16, and what readpst and pst-extractor read back)
// comes out of pffexport as U+1F201. For pffexport only, characters outside
// the BMP are compared as U+FFFD on both sides.
void MaskNonBmpSubjects(OracleStore& store) {
  for (auto& [path, folder] : store)
    for (auto& m : folder.messages) m.subject = NonBmpAsReplacement(m.subject);
}

class PstReadersTest : public ::testing::TestWithParam<Oracle> {};

// MIME (an EML tree with non-ASCII everywhere) -> new PST -> each reader.
TEST_P(PstReadersTest, WrittenPstAgreesWithTheSource) {
  const Oracle oracle = GetParam();
  if (auto why = testing::OracleUnavailableReason(oracle); !why.empty()) GTEST_SKIP() << why;
  TempDir dir;
  // Source folder -> the folder the PST shows it as.
  const std::vector<std::pair<std::string, std::string>> folders = {
      {"", "Inbox"},
      {"Projects", "Projects"},
      {"Projects/Ünïcødé 日本", "Projects/Ünïcødé 日本"},
      {"Sent", "Sent Items"}};
  OracleStore want;
  int n = 0;
  for (const auto& [src, shown] : folders) {
    std::filesystem::create_directories(dir / ("src/" + src));
    auto& f = want[shown];
    f.path = shown;
    for (int i = 0; i < 7; ++i, ++n) {
      Generated g = MakeMessage(n, src);
      testing::WriteFileOrDie(dir / ("src/" + src + "/m" + std::to_string(n) + ".eml"), g.mime);
      f.messages.push_back(g.expect);
    }
  }
  want["Deleted Items"].path = "Deleted Items";
  want[""].path = "";  // the top of the store itself
  auto r = RunMbxmerge({"merge", "--from", "eml:" + (dir / "src"), "--into", dir / "out.pst"});
  ASSERT_EQ(r.exit_code, 0) << r.err << r.out;

  EXPECT_EQ(testing::PstCheckViolations(dir / "out.pst"), "");
  auto got = testing::ReadWithOracle(oracle, dir / "out.pst");
  ASSERT_TRUE(got.ok()) << testing::OracleName(oracle) << ": " << got.status().ToString();
  CompareOptions opt;
  opt.left_name = testing::OracleName(oracle);
  opt.right_name = "source";
  if (oracle == Oracle::kPffexport) {
    MaskNonBmpSubjects(*got);
    MaskNonBmpSubjects(want);
  }
  if (oracle == Oracle::kReadpst) {
    // readpst leaves out empty folders, and has no HTML body besides its text.
    opt.tree = CompareOptions::Tree::kLeftInRight;
    opt.aspects &= ~testing::kOracleHtmlBodies;
  }
  EXPECT_EQ(CompareOracleStores(*got, want, opt), "") << testing::DescribeOracleStore(*got);
}

// PST -> PST on real Outlook files: each reader sees in our copy what it sees
// in the original (mail items, their attachments and embedded messages).
TEST_P(PstReadersTest, PstToPstKeepsWhatEachReaderSees) {
  const Oracle oracle = GetParam();
  if (auto why = testing::OracleUnavailableReason(oracle); !why.empty()) GTEST_SKIP() << why;
  const std::string shared = testing::SharedDataDir();
  if (shared.empty()) GTEST_SKIP() << "../shared/data is absent";
  for (const char* name : {"pstsdk-sample1.pst", "pstsdk-submessage.pst"}) {
    SCOPED_TRACE(name);
    TempDir dir;
    const std::string src = shared + "/outlook/" + name;
    auto r = RunMbxmerge({"merge", "--from", src, "--into", dir / "copy.pst"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    auto before = testing::ReadWithOracle(oracle, src);
    auto after = testing::ReadWithOracle(oracle, dir / "copy.pst");
    ASSERT_TRUE(before.ok()) << before.status().ToString();
    ASSERT_TRUE(after.ok()) << after.status().ToString();
    CompareOptions opt;
    opt.left_name = "copy";
    opt.right_name = "original";
    // Our copy holds only folders with messages (the merge creates folders on
    // demand) and always a Deleted Items.
    opt.aspects &= ~testing::kOracleFolderTree;
    EXPECT_EQ(CompareOracleStores(*after, *before, opt), "")
        << "copy:\n"
        << testing::DescribeOracleStore(*after) << "original:\n"
        << testing::DescribeOracleStore(*before);
  }
}

// The edges of the format this writer owns, through every reader: a contents
// table of 1,500 rows (row matrix over many blocks, a row index over several
// heap allocations), node and block B-trees three levels deep, a recipient
// table of 300 rows in a subnode, a property context whose heap spans blocks,
// folders nested eight deep.
TEST_P(PstReadersTest, LargeTablesAndDeepTrees) {
  using namespace pst::messaging;  // NOLINT
  const Oracle oracle = GetParam();
  if (auto why = testing::OracleUnavailableReason(oracle); !why.empty()) GTEST_SKIP() << why;
  TempDir dir;
  OracleStore want;
  want[""].path = "";
  want["Deleted Items"].path = "Deleted Items";
  auto expect = [](const std::string& subject, const std::string& body) {
    OracleMessage e;
    e.subject = subject;
    e.sender_name = "Sender Ü";
    e.sender_email = "sender@example.org";
    e.body = testing::NormalizeOracleBody(body);
    e.to = {"rcpt@example.org"};
    return e;
  };
  auto message = [](const std::string& subject, const std::string& body, int recipients) {
    OutMessage m;
    m.props = {StringProp(0x0037, subject),    StringProp(0x1000, body),
               StringProp(0x0C1A, "Sender Ü"), StringProp(0x0C1F, "sender@example.org"),
               StringProp(0x0C1E, "SMTP"),     StringProp(0x5D01, "sender@example.org"),
               StringProp(0x0042, "Sender Ü"), StringProp(0x0065, "sender@example.org"),
               StringProp(0x0064, "SMTP"),     Int32Prop(0x0E07, 1)};
    std::string display_to;
    for (int i = 0; i < recipients; ++i) {
      const std::string email =
          recipients == 1 ? "rcpt@example.org" : "r" + std::to_string(i) + "@example.org";
      m.recipients.push_back({Int32Prop(0x0C15, 1), StringProp(0x3001, email),
                              StringProp(0x3003, email), StringProp(0x3002, "SMTP"),
                              StringProp(0x39FE, email)});
      display_to += (i ? "; " : "") + email;
    }
    m.props.push_back(StringProp(0x0E04, display_to));
    return m;
  };
  {
    auto w = StoreWriter::Create(dir / "big.pst", {});
    ASSERT_TRUE(w.ok());
    auto big = (*w)->CreateFolder(kNidIpmSubtree, "Big");
    ASSERT_TRUE(big.ok());
    want["Big"].path = "Big";
    for (int i = 0; i < 1500; ++i) {
      const std::string subject = "Zeile " + std::to_string(i) + " – ünïcødé";
      const std::string body = "Text " + std::to_string(i) + "\n";
      ASSERT_TRUE((*w)->AddMessage(*big, message(subject, body, 1)).ok());
      want["Big"].messages.push_back(expect(subject, body));
    }
    // Many recipients, and a body big enough for an XBLOCK.
    std::string long_body;
    for (int i = 0; i < 2000; ++i) long_body += "Zeile " + std::to_string(i) + " öäü\n";
    ASSERT_TRUE((*w)->AddMessage(*big, message("many recipients", long_body, 300)).ok());
    OracleMessage many = expect("many recipients", long_body);
    many.to.clear();
    for (int i = 0; i < 300; ++i) many.to.push_back("r" + std::to_string(i) + "@example.org");
    std::sort(many.to.begin(), many.to.end());
    want["Big"].messages.push_back(many);
    uint32_t parent = kNidIpmSubtree;
    std::string path;
    for (int depth = 0; depth < 8; ++depth) {
      const std::string name = "Ebene " + std::to_string(depth);
      auto f = (*w)->CreateFolder(parent, name);
      ASSERT_TRUE(f.ok());
      parent = *f;
      path += (path.empty() ? "" : "/") + name;
      ASSERT_TRUE(
          (*w)->AddMessage(parent, message("tief " + std::to_string(depth), "x\n", 1)).ok());
      want[path].path = path;
      want[path].messages.push_back(expect("tief " + std::to_string(depth), "x\n"));
    }
    ASSERT_TRUE((*w)->Finish().ok());
  }
  EXPECT_EQ(testing::PstCheckViolations(dir / "big.pst"), "");
  auto got = testing::ReadWithOracle(oracle, dir / "big.pst");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  CompareOptions opt;
  opt.left_name = testing::OracleName(oracle);
  opt.right_name = "written";
  opt.aspects &= ~(testing::kOracleHtmlBodies | testing::kOracleAttachments);
  if (oracle == Oracle::kReadpst) {
    // Without stored transport headers readpst writes To: from PR_DISPLAY_TO
    // (display names), and it leaves out empty folders.
    opt.aspects &= ~testing::kOracleRecipients;
    opt.tree = CompareOptions::Tree::kLeftInRight;
  }
  EXPECT_EQ(CompareOracleStores(*got, want, opt), "");
}

// Values on both sides of the heap allocation limit (3,580 bytes) and of a
// block's payload (8,176 bytes), and a message with 400 attachments (its
// subnode tree needs an SIBLOCK). XXBLOCKs: pst_writer_test.
TEST_P(PstReadersTest, BlockAndHeapLimits) {
  using namespace pst::messaging;  // NOLINT
  const Oracle oracle = GetParam();
  if (auto why = testing::OracleUnavailableReason(oracle); !why.empty()) GTEST_SKIP() << why;
  TempDir dir;
  OracleStore want;
  want[""].path = "";
  want["Deleted Items"].path = "Deleted Items";
  want["Limits"].path = "Limits";
  auto base = [](const std::string& subject, const std::string& body) {
    OutMessage m;
    m.props = {StringProp(0x0037, subject),
               StringProp(0x1000, body),
               StringProp(0x0C1A, "Limit"),
               StringProp(0x0C1F, "limit@example.org"),
               StringProp(0x0C1E, "SMTP"),
               StringProp(0x0042, "Limit"),
               StringProp(0x0065, "limit@example.org"),
               StringProp(0x0064, "SMTP")};
    OracleMessage e;
    e.subject = subject;
    e.sender_name = "Limit";
    e.sender_email = "limit@example.org";
    e.body = testing::NormalizeOracleBody(body);
    return std::make_pair(m, e);
  };
  auto text = [](size_t n, int seed) {
    std::string s;
    s.reserve(n);
    for (size_t i = 0; i < n; ++i)
      s.push_back(i % 61 == 60 ? '\n' : static_cast<char>('a' + (i * 7 + seed) % 26));
    return s;
  };
  {
    auto w = StoreWriter::Create(dir / "limits.pst", {});
    ASSERT_TRUE(w.ok());
    auto f = (*w)->CreateFolder(kNidIpmSubtree, "Limits");
    ASSERT_TRUE(f.ok());
    // UTF-16: 1,790 characters are 3,580 bytes; 4,088 are 8,176.
    for (size_t n : {1789u, 1790u, 1791u, 4088u, 4089u, 20000u}) {
      auto [m, e] = base("body of " + std::to_string(n), text(n, static_cast<int>(n)));
      ASSERT_TRUE((*w)->AddMessage(*f, m).ok());
      want["Limits"].messages.push_back(e);
    }
    auto [m, e] = base("400 attachments", "see attached\n");
    for (int i = 0; i < 400; ++i) {
      OutAttachment a;
      const std::string name = "part " + std::to_string(i) + ".bin";
      a.props = {StringProp(0x3707, name), StringProp(0x3704, name),
                 StringProp(0x370E, "application/octet-stream")};
      a.data = text(100 + i * 13, i);
      e.attachments.emplace_back(testing::OracleFileName(name), testing::Sha256Hex(a.data));
      m.attachments.push_back(std::move(a));
    }
    std::sort(e.attachments.begin(), e.attachments.end());
    // libpst (readpst 0.6.76) reads subnode trees of one level only: on an
    // SIBLOCK it logs "Unknown constant [0x102] at start of id2 values" and
    // sees no attachments. The SIBLOCK is what [MS-PST] 2.2.2.8.3.3.2 asks
    // for beyond 340 subnodes; libpff, pst-extractor and our checker read it.
    if (oracle == Oracle::kReadpst) e.attachments.clear();
    ASSERT_TRUE((*w)->AddMessage(*f, m).ok());
    want["Limits"].messages.push_back(e);
    ASSERT_TRUE((*w)->Finish().ok());
  }
  EXPECT_EQ(testing::PstCheckViolations(dir / "limits.pst"), "");
  auto got = testing::ReadWithOracle(oracle, dir / "limits.pst");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  CompareOptions opt;
  opt.left_name = testing::OracleName(oracle);
  opt.right_name = "written";
  opt.aspects &= ~(testing::kOracleHtmlBodies | testing::kOracleRecipients);
  if (oracle == Oracle::kReadpst) opt.tree = CompareOptions::Tree::kLeftInRight;
  const std::string diff = CompareOracleStores(*got, want, opt);
  EXPECT_EQ(diff.substr(0, 2000), "");
}

INSTANTIATE_TEST_SUITE_P(Readers, PstReadersTest, ::testing::ValuesIn(testing::kAllOracles),
                         [](const auto& info) {
                           std::string n = testing::OracleName(info.param);
                           n.erase(std::remove(n.begin(), n.end(), '-'), n.end());
                           return n;
                         });

}  // namespace
}  // namespace mbx
