// The dedupe rules of the README, one test each.
#include "engine/fingerprint.h"

#include <gtest/gtest.h>
#include <openssl/sha.h>

#include <string>

namespace mbx {
namespace {

std::string Msg(std::string headers, std::string body) { return headers + "\n" + body; }

const std::string kIdentity =
    "From: Alice <alice@example.com>\n"
    "To: Bob <bob@example.org>\n"
    "Subject: Quarterly numbers\n"
    "Date: Tue, 1 Jul 2003 10:52:37 +0200\n"
    "Message-ID: <abc123@example.com>\n";
const std::string kBody = "Hello Bob,\nthe numbers are attached.\n";

bool Dup(const std::string& a, const std::string& b, DedupeRule rule = DedupeRule::kAuto) {
  return ComputeDigest(a, rule) == ComputeDigest(b, rule);
}

TEST(DedupeRules, Rule1SameMessageWithDifferentTraceDataIsDuplicate) {
  std::string a = Msg(
      "Return-Path: <alice@example.com>\n"
      "Received: from mx1.example.org by mbox1 with ESMTP; Tue, 1 Jul 2003 10:52:40 +0200\n"
      "Delivered-To: bob@example.org\n" +
          kIdentity +
          "X-Spam-Score: 0.1\nStatus: RO\nX-Status: A\nX-Keywords: $Label1\n",
      kBody);
  std::string b = Msg(
      "Received: from mx2.example.org by mbox2 with LMTP; Tue, 1 Jul 2003 10:53:00 +0200\n"
      "Received: from relay by mx2; Tue, 1 Jul 2003 10:52:59 +0200\n"
      "Delivered-To: bob.backup@example.org\n"
      "Return-Path: <bounce@example.com>\n" +
          kIdentity + "X-Original-To: bob@example.org\n",
      kBody);
  // CRLF line endings in one copy, and an extra trailing blank line from mbox storage.
  std::string b_crlf;
  for (char c : b) {
    if (c == '\n') b_crlf += "\r\n";
    else b_crlf += c;
  }
  b_crlf += "\r\n";
  EXPECT_TRUE(Dup(a, b));
  EXPECT_TRUE(Dup(a, b_crlf));
  EXPECT_EQ(ComputeHeaderKey(a, DedupeRule::kAuto), ComputeHeaderKey(b_crlf, DedupeRule::kAuto));
}

TEST(DedupeRules, Rule1FoldingDifferencesDoNotMatter) {
  std::string a = Msg(kIdentity, kBody);
  std::string folded = kIdentity;
  folded.replace(folded.find("Subject: Quarterly numbers"), 26, "Subject: Quarterly\n\tnumbers");
  EXPECT_TRUE(Dup(a, Msg(folded, kBody)));
}

TEST(DedupeRules, Rule2SameMessageIdButDifferentSenderDateOrBodyIsKept) {
  std::string a = Msg(kIdentity, kBody);
  std::string other_sender = kIdentity;
  other_sender.replace(other_sender.find("alice@example.com"), 17, "mallory@example.net");
  std::string other_date = kIdentity;
  other_date.replace(other_date.find("10:52:37"), 8, "11:00:00");
  EXPECT_FALSE(Dup(a, Msg(other_sender, kBody)));
  EXPECT_FALSE(Dup(a, Msg(other_date, kBody)));
  EXPECT_FALSE(Dup(a, Msg(kIdentity, "A different body.\n")));
  // The classic rule would drop them all: that is why it is not the default.
  EXPECT_TRUE(Dup(a, Msg(other_sender, "x\n"), DedupeRule::kMessageId));
}

TEST(DedupeRules, Rule3SameSubjectSenderDateButDifferentBodyIsKept) {
  std::string no_id = kIdentity;
  no_id.erase(no_id.find("Message-ID:"));
  EXPECT_FALSE(Dup(Msg(no_id, "one\n"), Msg(no_id, "two\n")));
  EXPECT_FALSE(Dup(Msg(no_id, "one\n"), Msg(no_id, "two\n"), DedupeRule::kContent));
  // Equal header keys: only the full digest tells them apart.
  EXPECT_EQ(ComputeHeaderKey(Msg(no_id, "one\n"), DedupeRule::kAuto),
            ComputeHeaderKey(Msg(no_id, "two\n"), DedupeRule::kAuto));
}

TEST(DedupeRules, Rule4MessagesWithoutMessageIdCompareByContent) {
  std::string no_id = kIdentity;
  no_id.erase(no_id.find("Message-ID:"));
  EXPECT_TRUE(Dup(Msg("Received: a\n" + no_id, kBody), Msg("Received: b\n" + no_id, kBody)));
  EXPECT_TRUE(Dup(Msg(no_id, kBody), Msg(no_id, kBody), DedupeRule::kMessageId));
  EXPECT_FALSE(Dup(Msg(no_id, kBody), Msg(no_id, "other\n"), DedupeRule::kMessageId));
}

TEST(DedupeRules, Rule5DigestIsSha256OfTheCanonicalForm) {
  std::string m = Msg("Received: x\n" + kIdentity, kBody);
  std::string canon = CanonicalForm(m, DedupeRule::kAuto);
  unsigned char expect[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(canon.data()), canon.size(), expect);
  Digest d = ComputeDigest(m, DedupeRule::kAuto);
  EXPECT_EQ(ToHex(d.data(), d.size()), ToHex(expect, sizeof expect));
  EXPECT_EQ(canon.find("Received"), std::string::npos);
  EXPECT_NE(canon.find("message-id:<abc123@example.com>"), std::string::npos);
  EXPECT_NE(canon.find(kBody.substr(0, 10)), std::string::npos);
}

// The plain hash other keys are derived from (a PST search key made from
// MIME): FIPS 180-2's known answers, empty and "abc".
TEST(DedupeRules, Sha256OfIsSha256) {
  Digest empty = Sha256Of("");
  EXPECT_EQ(ToHex(empty.data(), empty.size()),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  Digest abc = Sha256Of("abc");
  EXPECT_EQ(ToHex(abc.data(), abc.size()),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(DedupeRules, ContentRuleIgnoresMessageId) {
  std::string other_id = kIdentity;
  other_id.replace(other_id.find("abc123"), 6, "zzz999");
  EXPECT_TRUE(Dup(Msg(kIdentity, kBody), Msg(other_id, kBody), DedupeRule::kContent));
  EXPECT_FALSE(Dup(Msg(kIdentity, kBody), Msg(other_id, kBody), DedupeRule::kAuto));
}

TEST(DedupeRules, MalformedInputStillFingerprints) {
  std::string nul("Subject: a\0b\n\nbody\0with NUL\n", 28);
  EXPECT_NE(ComputeDigest(nul, DedupeRule::kAuto), ComputeDigest("Subject: a\n\nbody\n", DedupeRule::kAuto));
  std::string no_headers = "just a body line without a colon\nand more\n";
  std::string other_body = "just a body line without a colon\nand less\n";
  EXPECT_NE(ComputeDigest(no_headers, DedupeRule::kAuto), ComputeDigest(other_body, DedupeRule::kAuto));
  EXPECT_EQ(ComputeDigest("", DedupeRule::kAuto), ComputeDigest("", DedupeRule::kAuto));
}

TEST(DedupeRules, BodyWhitespaceInsideIsSignificant) {
  EXPECT_FALSE(Dup(Msg(kIdentity, "a  b\n"), Msg(kIdentity, "a b\n")));
  EXPECT_FALSE(Dup(Msg(kIdentity, "a\rb\n"), Msg(kIdentity, "ab\n")));
}

}  // namespace
}  // namespace mbx
