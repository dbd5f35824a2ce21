// PST -> MIME: the LZFu decompressor on [MS-OXRTFCP]'s example streams, RTF
// de-encapsulation, the MIME rendering of hand-made MAPI messages, and the
// MIME written from the shared Outlook files read back by the npm package
// mailparser (an independent parser) against what pffexport reports.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "formats/mime/mime.h"
#include "formats/pst/mapi.h"
#include "formats/pst/mapi_to_mime.h"
#include "formats/pst/pst.h"
#include "tests/test_util.h"

namespace mbx::pst {
namespace {

std::string Bytes(std::initializer_list<int> b) {
  std::string s;
  for (int c : b) s.push_back(static_cast<char>(c));
  return s;
}

// [MS-OXRTFCP] 3.1.1 Example 1: Simple Compressed RTF.
const std::string kSimple =
    Bytes({0x2d, 0x00, 0x00, 0x00, 0x2b, 0x00, 0x00, 0x00, 0x4c, 0x5a, 0x46, 0x75, 0xf1,
           0xc5, 0xc7, 0xa7, 0x03, 0x00, 0x0a, 0x00, 0x72, 0x63, 0x70, 0x67, 0x31, 0x32,
           0x35, 0x42, 0x32, 0x0a, 0xf3, 0x20, 0x68, 0x65, 0x6c, 0x09, 0x00, 0x20, 0x62,
           0x77, 0x05, 0xb0, 0x6c, 0x64, 0x7d, 0x0a, 0x80, 0x0f, 0xa0});
// [MS-OXRTFCP] 3.1.2 Example 2: a token crossing the write position.
const std::string kCrossing = Bytes({0x1a, 0x00, 0x00, 0x00, 0x1c, 0x00, 0x00, 0x00, 0x4c, 0x5a,
                                     0x46, 0x75, 0xe2, 0xd4, 0x4b, 0x51, 0x41, 0x00, 0x04, 0x20,
                                     0x57, 0x58, 0x59, 0x5a, 0x0d, 0x6e, 0x7d, 0x01, 0x0e, 0xb0});

TEST(LzfuTest, SpecExampleSimple) {
  auto out = DecompressRtf(kSimple);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(*out, "{\\rtf1\\ansi\\ansicpg1252\\pard hello world}\r\n");
  EXPECT_EQ(RtfCrc(std::string_view(kSimple).substr(16)), 0xa7c7c5f1u);
}

TEST(LzfuTest, SpecExampleCrossingWritePosition) {
  auto out = DecompressRtf(kCrossing);
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(*out, "{\\rtf1 WXYZWXYZWXYZWXYZWXYZ}");
  EXPECT_EQ(RtfCrc(std::string_view(kCrossing).substr(16)), 0x514bd4e2u);
}

TEST(LzfuTest, StoredAndBadStreams) {
  std::string body = "{\\rtf1 plain}";
  std::string mela =
      Bytes({static_cast<int>(body.size() + 12), 0, 0, 0, static_cast<int>(body.size()), 0, 0, 0,
             0x4d, 0x45, 0x4c, 0x41, 0, 0, 0, 0}) +
      body;
  auto out = DecompressRtf(mela);
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(*out, body);

  EXPECT_EQ(DecompressRtf("short").status().code(), Status::Code::kCorruption);
  std::string bad = kSimple;
  bad[8] = 'X';
  EXPECT_EQ(DecompressRtf(bad).status().code(), Status::Code::kCorruption);
  // Truncated streams give what was decoded, never a crash.
  for (size_t n = 16; n < kSimple.size(); ++n)
    EXPECT_TRUE(DecompressRtf(kSimple.substr(0, n)).ok());
}

TEST(RtfDecodeTest, DeEncapsulatesHtml) {
  std::string rtf =
      "{\\rtf1\\ansi\\ansicpg1252\\fromhtml1 \\deff0{\\fonttbl{\\f0\\fswiss Arial;}}"
      "{\\*\\htmltag64 <html>}{\\*\\htmltag64 <body>}\\htmlrtf {\\b rtf only}\\htmlrtf0 "
      "Caf\\'e9 \\u8364?{\\*\\htmltag72 </body>}{\\*\\htmltag72 </html>}}";
  DecodedRtf d = DeEncapsulateRtf(rtf);
  EXPECT_EQ(d.kind, DecodedRtf::Kind::kHtml);
  EXPECT_EQ(d.body, "<html><body>Caf\xc3\xa9 \xe2\x82\xac</body></html>");
}

TEST(RtfDecodeTest, DeEncapsulatesText) {
  DecodedRtf d = DeEncapsulateRtf(
      "{\\rtf1\\ansi\\fromtext \\deff0{\\fonttbl{\\f0 Courier;}}Line one\\par\nLine two\\par}");
  EXPECT_EQ(d.kind, DecodedRtf::Kind::kText);
  EXPECT_EQ(d.body, "Line one\r\nLine two\r\n");
}

TEST(RtfDecodeTest, PlainRtfStaysRtf) {
  std::string rtf = "{\\rtf1\\ansi{\\fonttbl{\\f0 Arial;}}\\b Bold\\b0}";
  DecodedRtf d = DeEncapsulateRtf(rtf);
  EXPECT_EQ(d.kind, DecodedRtf::Kind::kRtf);
  EXPECT_EQ(d.body, rtf);
}

PropertyBag Recipient(int type, const std::string& name, const std::string& addr) {
  PropertyBag r;
  r.SetInt32(kPidRecipientType, type);
  r.SetString(kPidDisplayName, name);
  r.SetString(kPidAddrType, "SMTP");
  r.SetString(kPidEmailAddress, addr);
  return r;
}

MapiMessage SampleMessage() {
  MapiMessage m;
  m.props.SetString(kPidSubject,
                    "Grüße aus Köln – a subject long enough to need more than one encoded word");
  m.props.SetString(kPidSentRepresentingName, "Jürgen Müller");
  m.props.SetString(kPidSentRepresentingAddrType, "SMTP");
  m.props.SetString(kPidSentRepresentingEmail, "jm@example.de");
  m.props.SetString(kPidSenderName, "Assistant, The");
  m.props.SetString(kPidSenderSmtpAddress, "assistant@example.de");
  m.props.SetFileTime(kPidClientSubmitTime, UnixToFileTime(1268673125));
  m.props.SetFileTime(kPidDeliveryTime, UnixToFileTime(1268673127));
  m.props.SetString(kPidInternetMessageId, "abc@example.de");
  m.props.SetString(kPidInReplyTo, "<parent@example.de>");
  m.props.SetInt32(kPidImportance, 2);
  m.props.SetInt32(kPidSensitivity, 2);
  m.props.SetString(kPidBody, "Hallo,\r\nFrom here on: ünïcödé.\r\n");
  m.props.SetBinary(kPidHtml, "<html><body>Hallo <img src=\"cid:img1@x\"></body></html>");
  m.props.SetInt32(kPidInternetCodepage, 65001);
  m.recipients.push_back(Recipient(1, "Bob \"The\" Builder", "bob@example.com"));
  m.recipients.push_back(Recipient(1, "Zoë", "zoe@example.com"));
  m.recipients.push_back(Recipient(2, "", "carol@example.com"));
  m.recipients.push_back(Recipient(3, "Dave", "dave@example.com"));

  MapiAttachment img;
  img.props.SetString(kPidAttachLongFilename, "image001.png");
  img.props.SetString(kPidAttachMimeTag, "image/png");
  img.props.SetString(kPidAttachContentId, "img1@x");
  img.props.SetInt32(kPidAttachMethod, 1);
  img.data = std::string("\x89PNG\r\n\x1a\n\0\0binary", 16);
  m.attachments.push_back(std::move(img));

  MapiAttachment doc;
  doc.props.SetString(kPidAttachLongFilename, "Übersicht 2024.pdf");
  doc.props.SetInt32(kPidAttachMethod, 1);
  doc.data = std::string(1000, '\xff');
  m.attachments.push_back(std::move(doc));

  auto inner = std::make_unique<MapiMessage>();
  inner->props.SetString(kPidSubject, "Inner message");
  inner->props.SetString(kPidBody, "inner body");
  MapiAttachment emb;
  emb.props.SetInt32(kPidAttachMethod, 5);
  emb.props.SetString(kPidDisplayName, "Inner message");
  emb.embedded = std::move(inner);
  m.attachments.push_back(std::move(emb));
  return m;
}

std::string Field(const std::string& mime, const char* name) {
  auto f = mime::FindField(mime::HeaderBlock(mime), name);
  return f ? mime::DecodeHeader(*f) : "";
}

TEST(RenderMimeTest, SynthesizesHeadersFromProperties) {
  std::string out = RenderMime(SampleMessage());
  EXPECT_EQ(Field(out, "Subject"),
            "Grüße aus Köln – a subject long enough to need more than one encoded word");
  EXPECT_EQ(Field(out, "From"), "Jürgen Müller <jm@example.de>");
  EXPECT_NE(Field(out, "Sender").find("<assistant@example.de>"), std::string::npos);
  EXPECT_EQ(Field(out, "Date"), "Mon, 15 Mar 2010 17:12:05 +0000");
  std::string to = Field(out, "To");
  EXPECT_NE(to.find("\"Bob \\\"The\\\" Builder\" <bob@example.com>"), std::string::npos) << to;
  EXPECT_NE(to.find("Zoë <zoe@example.com>"), std::string::npos) << to;
  EXPECT_EQ(Field(out, "Cc"), "carol@example.com");
  EXPECT_EQ(Field(out, "Bcc"), "Dave <dave@example.com>");
  EXPECT_EQ(Field(out, "Message-ID"), "<abc@example.de>");
  EXPECT_EQ(Field(out, "In-Reply-To"), "<parent@example.de>");
  EXPECT_EQ(Field(out, "Importance"), "high");
  EXPECT_EQ(Field(out, "Sensitivity"), "Private");
  // Headers are 7-bit: non-ASCII went into encoded words.
  std::string_view head = mime::HeaderBlock(out);
  EXPECT_TRUE(std::all_of(head.begin(), head.end(), [](char c) { return (c & 0x80) == 0; }));
}

TEST(RenderMimeTest, BodyStructure) {
  std::string out = RenderMime(SampleMessage());
  EXPECT_NE(Field(out, "Content-Type").find("multipart/mixed"), std::string::npos);
  size_t related = out.find("Content-Type: multipart/related");
  size_t alternative = out.find("Content-Type: multipart/alternative");
  size_t image = out.find("Content-ID: <img1@x>");
  ASSERT_NE(related, std::string::npos);
  ASSERT_NE(alternative, std::string::npos);
  ASSERT_NE(image, std::string::npos);
  EXPECT_LT(related, alternative);
  EXPECT_NE(out.find("Content-Type: message/rfc822"), std::string::npos);
  EXPECT_NE(out.find("filename*=UTF-8''%C3%9Cbersicht%202024.pdf"), std::string::npos);
  // The mbox-sensitive "From " body line is quoted-printable encoded.
  EXPECT_NE(out.find("\n=46rom here on: =C3=BCn"), std::string::npos);
  EXPECT_EQ(out.find("\nFrom here"), std::string::npos);
  auto names = mime::AttachmentNames(out);
  EXPECT_NE(std::find(names.begin(), names.end(), "Übersicht 2024.pdf"), names.end());
  EXPECT_NE(std::find(names.begin(), names.end(), "image001.png"), names.end());
  // The embedded message is there, whole.
  EXPECT_NE(out.find("Subject: Inner message"), std::string::npos);
  EXPECT_NE(out.find("inner body"), std::string::npos);
}

TEST(RenderMimeTest, DeterministicAndContentDerivedBoundaries) {
  MapiMessage a = SampleMessage();
  std::string first = RenderMime(a);
  EXPECT_EQ(first, RenderMime(SampleMessage()));
  MapiMessage b = SampleMessage();
  b.props.SetString(kPidBody, "another body");
  std::string second = RenderMime(b);
  std::string ba = first.substr(first.find("boundary=\""), 30);
  std::string bb = second.substr(second.find("boundary=\""), 30);
  EXPECT_NE(ba, bb);
}

// Base64 by its definition (RFC 2045 6.8): 24 bits at a time, '=' padding,
// lines of 76 characters, each ended by a line break.
std::string Base64ByDefinition(std::string_view in) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string chars;
  for (size_t i = 0; i < in.size(); i += 3) {
    unsigned char b[3] = {0, 0, 0};
    size_t n = std::min<size_t>(3, in.size() - i);
    for (size_t k = 0; k < n; ++k) b[k] = static_cast<unsigned char>(in[i + k]);
    chars += kAlphabet[b[0] >> 2];
    chars += kAlphabet[((b[0] & 3) << 4) | (b[1] >> 4)];
    chars += n > 1 ? kAlphabet[((b[1] & 15) << 2) | (b[2] >> 6)] : '=';
    chars += n > 2 ? kAlphabet[b[2] & 63] : '=';
  }
  std::string out;
  for (size_t i = 0; i < chars.size(); i += 76) out += chars.substr(i, 76) + "\n";
  return out;
}

TEST(RenderMimeTest, AttachmentsAreBase64ByTheDefinition) {
  // Every remainder of 3 and the sizes around a full 57-byte line.
  for (size_t size : {0, 1, 2, 3, 4, 5, 56, 57, 58, 113, 114, 115, 1000, 4097}) {
    MapiMessage m;
    m.props.SetString(kPidSubject, "sizes");
    m.props.SetString(kPidBody, "see the attachment");
    MapiAttachment a;
    a.props.SetString(kPidAttachLongFilename, "data.bin");
    a.props.SetInt32(kPidAttachMethod, 1);
    for (size_t i = 0; i < size; ++i) a.data.push_back(static_cast<char>((i * 131 + size) & 0xff));
    std::string data = a.data;
    m.attachments.push_back(std::move(a));
    std::string out = RenderMime(m);
    size_t part = out.find("Content-Transfer-Encoding: base64\n");
    ASSERT_NE(part, std::string::npos) << size;
    size_t body = out.find("\n\n", part);
    ASSERT_NE(body, std::string::npos) << size;
    body += 2;
    size_t end = out.find("--=_mbx_", body);
    ASSERT_NE(end, std::string::npos) << size;
    EXPECT_EQ(out.substr(body, end - body), Base64ByDefinition(data)) << size;
    EXPECT_EQ(mime::DecodeBase64(out.substr(body, end - body)), data) << size;
  }
}

TEST(RenderMimeTest, KeepsTransportHeadersAndRebuildsBody) {
  MapiMessage m;
  m.props.SetString(kPidTransportHeaders,
                    "Received: from a by b; Mon, 15 Mar 2010 17:12:05 +0000\r\n"
                    "From: Original <orig@example.com>\r\nSubject: =?iso-8859-1?q?caf=E9?=\r\n"
                    "MIME-Version: 1.0\r\nContent-Type: multipart/mixed;\r\n boundary=\"old\"\r\n"
                    "Content-Transfer-Encoding: 7bit\r\nX-Custom: kept\r\n\r\n");
  m.props.SetString(kPidSubject, "ignored");
  m.props.SetString(kPidBody, "text");
  std::string out = RenderMime(m);
  EXPECT_EQ(Field(out, "From"), "Original <orig@example.com>");
  EXPECT_EQ(Field(out, "Subject"), "café");
  EXPECT_EQ(Field(out, "X-Custom"), "kept");
  EXPECT_EQ(out.find("boundary=\"old\""), std::string::npos);
  EXPECT_EQ(out.find("7bit"), std::string::npos);
  EXPECT_EQ(Field(out, "Content-Type"), "text/plain; charset=\"utf-8\"");
  size_t count = 0;
  for (size_t at = 0; (at = out.find("MIME-Version:", at)) != std::string::npos; ++at) ++count;
  EXPECT_EQ(count, 1u);
}

TEST(RenderMimeTest, RtfOnlyBodies) {
  // A compressed RTF body that encapsulates HTML becomes text/html.
  std::string rtf = "{\\rtf1\\ansi\\fromhtml1 {\\*\\htmltag <p>}hi{\\*\\htmltag </p>}}";
  std::string stored =
      Bytes({static_cast<int>(rtf.size() + 12), 0, 0, 0, static_cast<int>(rtf.size()), 0, 0, 0,
             0x4d, 0x45, 0x4c, 0x41, 0, 0, 0, 0}) +
      rtf;
  MapiMessage m;
  m.props.SetBinary(kPidRtfCompressed, stored);
  std::string out = RenderMime(m);
  EXPECT_NE(out.find("Content-Type: text/html"), std::string::npos) << out;
  EXPECT_NE(out.find("<p>hi</p>"), std::string::npos) << out;
  // Plain RTF is carried as text/rtf.
  MapiMessage plain;
  plain.props.SetBinary(kPidRtfCompressed, kSimple);
  out = RenderMime(plain);
  EXPECT_NE(out.find("Content-Type: text/rtf"), std::string::npos) << out;
  EXPECT_NE(out.find("hello world"), std::string::npos) << out;
}

// ---------------------------------------------------------------------------
// mailparser, on the MIME written from the shared files.

bool Exists(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0;
}

// tests/node, found next to this file (CMake compiles it by absolute path).
std::string NodeDir() {
  std::string self = __FILE__;
  return self.substr(0, self.rfind('/')) + "/node";
}

// Installs tests/node's packages when missing; false (with a reason) when not possible.
bool EnsureMailparser(std::string* why) {
  if (!testing::HaveProgram("node") || !testing::HaveProgram("npm")) {
    *why = "node/npm not installed";
    return false;
  }
  if (Exists(NodeDir() + "/node_modules/mailparser")) return true;
  auto r = testing::Run({"npm", "--prefix", NodeDir(),
                         Exists(NodeDir() + "/package-lock.json") ? "ci" : "install", "--no-audit",
                         "--no-fund"});
  if (r.exit_code != 0 || !Exists(NodeDir() + "/node_modules/mailparser")) {
    *why = "npm could not install mailparser: " + r.err;
    return false;
  }
  return true;
}

std::map<std::string, std::string> ExportFields(const std::string& path) {
  std::map<std::string, std::string> out;
  std::istringstream in(testing::ReadFileOrDie(path));
  std::string line;
  while (std::getline(in, line)) {
    size_t colon = line.find(":\t");
    if (colon == std::string::npos) continue;
    size_t b = line.find_first_not_of('\t', colon + 1);
    std::string v = b == std::string::npos ? "" : line.substr(b);
    while (!v.empty() && (v.back() == '\r' || v.back() == ' ')) v.pop_back();
    out.emplace(line.substr(0, colon), v);
  }
  return out;
}

TEST(MailparserTest, SharedPstsParseToWhatLibpffReports) {
  std::string data = testing::SharedDataDir();
  if (data.empty()) GTEST_SKIP() << "shared Outlook files not found";
  if (!testing::HaveProgram("pffexport")) GTEST_SKIP() << "pffexport not installed";
  std::string why;
  if (!EnsureMailparser(&why)) GTEST_SKIP() << why;
  int checked = 0;
  for (const char* name :
       {"pstsdk-sample1.pst", "pstsdk-sample2.pst", "pstsdk-submessage.pst",
        "pstextractortestpdf@outlook.com.ost", "pstextractortest@outlook.com.ost"}) {
    std::string file = data + "/outlook/" + name;
    if (!Exists(file)) continue;
    SCOPED_TRACE(file);
    testing::TempDir tmp;
    // mbxmerge writes the messages (an EML tree: one file per message).
    auto r = testing::RunMbxmerge(
        {"merge", "--from", file, "--into", "eml:" + (tmp / "eml"), "--dedupe", "none"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    auto files = testing::ListFilesRecursive(tmp / "eml");
    ASSERT_FALSE(files.empty());
    std::vector<std::string> args = {"node", NodeDir() + "/parse_mail.js"};
    for (const std::string& f : files) args.push_back(tmp / "eml" + "/" + f);
    auto parsed = testing::Run(args);
    ASSERT_EQ(parsed.exit_code, 0) << parsed.err;

    // libpff's view of the same messages, keyed by subject.
    r = testing::Run({"pffexport", "-m", "all", "-t", tmp / "x", file});
    ASSERT_EQ(r.exit_code, 0);
    std::multimap<std::string, std::string> by_subject;  // subject -> item dir
    for (const std::string& f : testing::ListFilesRecursive(tmp / "x.export")) {
      if (f.size() < 19 || f.substr(f.size() - 19) != "/OutlookHeaders.txt") continue;
      if (f.find("/Attachments/") != std::string::npos) continue;
      std::string dir = tmp / "x.export" + "/" + f.substr(0, f.size() - 19);
      std::string subject = ExportFields(dir + "/OutlookHeaders.txt")["Subject"];
      by_subject.emplace(subject, dir);
    }

    std::istringstream lines(parsed.out);
    std::string line;
    while (std::getline(lines, line)) {
      auto j = nlohmann::json::parse(line);
      std::string subject = j["subject"];
      auto it = by_subject.find(subject);
      if (it == by_subject.end()) continue;  // an item type pffexport describes differently
      std::string dir = it->second;
      SCOPED_TRACE(dir);
      auto fields = ExportFields(dir + "/OutlookHeaders.txt");
      bool synthesized = !Exists(dir + "/InternetHeaders.txt");
      // Sender.
      ASSERT_FALSE(j["from"].empty());
      std::string from_name = j["from"][0]["name"];
      std::string from_addr = j["from"][0]["address"];
      std::string want_addr = fields["Sent representing email address"];
      if (want_addr.find('@') != std::string::npos) {
        EXPECT_EQ(from_addr, want_addr);
      }
      if (synthesized) {
        EXPECT_EQ(from_name, fields["Sent representing name"]);
      }
      // Recipients: every name libpff lists, when mbxmerge wrote the headers.
      if (synthesized && Exists(dir + "/Recipients.txt")) {
        std::vector<std::string> want, got;
        std::istringstream rin(testing::ReadFileOrDie(dir + "/Recipients.txt"));
        std::string rl;
        while (std::getline(rin, rl)) {
          if (rl.rfind("Display name:", 0) == 0)
            want.push_back(rl.substr(rl.find_first_not_of('\t', 13)));
        }
        for (const char* k : {"to", "cc", "bcc"}) {
          for (const auto& a : j[k]) got.push_back(a["name"].get<std::string>());
        }
        std::sort(want.begin(), want.end());
        std::sort(got.begin(), got.end());
        EXPECT_EQ(got, want);
      } else {
        EXPECT_FALSE(j["to"].empty() && j["cc"].empty() && j["bcc"].empty());
      }
      // Attachments: names and sizes as pffexport wrote them.
      std::map<std::string, uint64_t> want_att;
      std::string adir = dir + "/Attachments";
      if (Exists(adir)) {
        for (const std::string& f : testing::ListFilesRecursive(adir)) {
          if (f.find('/') != std::string::npos) continue;  // inside an embedded message's export
          size_t us = f.find('_');
          want_att[f.substr(us + 1)] = testing::ReadFileOrDie(adir + "/" + f).size();
        }
      }
      std::map<std::string, uint64_t> got_att;
      for (const auto& a : j["attachments"]) {
        if (a["contentType"] == "message/rfc822") continue;
        // An RTF-only body (text/rtf) is the body, though mailparser lists it as an attachment.
        if (a["contentType"] == "text/rtf" && a["filename"] == "") continue;
        got_att[a["filename"].get<std::string>()] = a["size"].get<uint64_t>();
      }
      EXPECT_EQ(got_att, want_att);
      ++checked;
    }
  }
  EXPECT_GT(checked, 5);
}

}  // namespace
}  // namespace mbx::pst
