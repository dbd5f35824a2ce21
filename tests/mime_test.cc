#include "formats/mime/mime.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace mbx::mime {
namespace {

using namespace std::string_literals;
using ::std::string_view;

// 2003-07-01 08:52:37 UTC.
constexpr int64_t kJul1 = 1057049557;

std::vector<std::pair<std::string, std::string>> AllFields(string_view headers) {
  std::vector<std::pair<std::string, std::string>> out;
  FieldScanner scanner(headers);
  Field f;
  while (scanner.Next(&f)) out.emplace_back(std::string(f.name), std::string(f.value));
  return out;
}

using Fields = std::vector<std::pair<std::string, std::string>>;

// --- BodyOffset / HeaderBlock -------------------------------------------------------------

TEST(BodyOffset, Lf) {
  std::string m = "Subject: a\nFrom: b\n\nbody\n";
  EXPECT_EQ(m.substr(BodyOffset(m)), "body\n");
  EXPECT_EQ(HeaderBlock(m), "Subject: a\nFrom: b\n");
}

TEST(BodyOffset, Crlf) {
  std::string m = "Subject: a\r\nFrom: b\r\n\r\nbody\r\n";
  EXPECT_EQ(m.substr(BodyOffset(m)), "body\r\n");
  EXPECT_EQ(HeaderBlock(m), "Subject: a\r\nFrom: b\r\n");
}

TEST(BodyOffset, FoldedHeadersAndNoBody) {
  std::string m = "Subject: a\n  continued\nX: y\n";
  EXPECT_EQ(BodyOffset(m), m.size());
  EXPECT_EQ(HeaderBlock(m), m);
  std::string no_nl = "Subject: a";
  EXPECT_EQ(BodyOffset(no_nl), no_nl.size());
  EXPECT_EQ(HeaderBlock(no_nl), no_nl);
  // Headers, then the empty line, then nothing.
  std::string empty_body = "Subject: a\r\n\r\n";
  EXPECT_EQ(BodyOffset(empty_body), empty_body.size());
  EXPECT_EQ(HeaderBlock(empty_body), "Subject: a\r\n");
}

TEST(BodyOffset, EmptyAndBlankFirstLine) {
  EXPECT_EQ(BodyOffset(""), 0u);
  EXPECT_EQ(HeaderBlock(""), "");
  std::string m = "\nbody: not a header\n";
  EXPECT_EQ(BodyOffset(m), 1u);
  EXPECT_EQ(HeaderBlock(m), "");
  std::string c = "\r\nbody";
  EXPECT_EQ(BodyOffset(c), 2u);
}

TEST(BodyOffset, MboxFromLine) {
  std::string m = "From a@b Tue Jul  1 08:52:37 2003\nSubject: x\n\nHi\n";
  EXPECT_EQ(m.substr(BodyOffset(m)), "Hi\n");
  EXPECT_EQ(HeaderBlock(m), "From a@b Tue Jul  1 08:52:37 2003\nSubject: x\n");
}

TEST(BodyOffset, NoHeadersAtAll) {
  // The first line has no colon: the whole message is body.
  std::string m = "Hello there,\nthis is: text\n\nmore\n";
  EXPECT_EQ(BodyOffset(m), 0u);
  EXPECT_EQ(HeaderBlock(m), "");
  EXPECT_FALSE(FindField(m, "this is").has_value());
  EXPECT_TRUE(AllFields(m).empty());
  // Same after a From_ line.
  std::string f = "From x Tue Jul  1 08:52:37 2003\nJust text\n";
  EXPECT_EQ(f.substr(BodyOffset(f)), "Just text\n");
  // A first line that starts with white space is not a field either.
  EXPECT_EQ(BodyOffset(" indented: x\n\nb"), 0u);
}

TEST(BodyOffset, LinesWithoutColonInsideHeaders) {
  std::string m = "Subject: a\ngarbage line\nTo: b\n\nbody";
  EXPECT_EQ(m.substr(BodyOffset(m)), "body");
  EXPECT_EQ(AllFields(m), (Fields{{"Subject", "a"}, {"To", "b"}}));
}

TEST(BodyOffset, NulAnd8BitBytes) {
  std::string m = "Subject: caf\xe9\0x\nX-\xff: y\n\nb\0dy"s;
  EXPECT_EQ(m.substr(BodyOffset(m)), "b\0dy"s);
  EXPECT_EQ(AllFields(m), (Fields{{"Subject", "caf\xe9\0x"s}}));
}

// --- FieldScanner / FindField ----------------------------------------------------------------

TEST(FieldScanner, RawValuesWithFolding) {
  std::string h =
      "From sender@x Tue Jul  1 08:52:37 2003\r\n"
      "Subject: first\r\n second\r\n\tthird\r\n"
      "To:   a@b\r\n"
      "Empty:\r\n"
      "Late:\r\n  folded-only\r\n"
      "Old-Style : v\r\n";
  EXPECT_EQ(AllFields(h), (Fields{{"Subject", "first\r\n second\r\n\tthird"},
                                  {"To", "a@b"},
                                  {"Empty", ""},
                                  {"Late", "folded-only"},
                                  {"Old-Style", "v"}}));
}

TEST(FieldScanner, ObsoleteFromFieldIsNotAnEnvelope) {
  std::string m = "From : a@b\nTo: c@d\n\nbody";
  EXPECT_EQ(AllFields(m), (Fields{{"From", "a@b"}, {"To", "c@d"}}));
  EXPECT_EQ(HeaderBlock(m), "From : a@b\nTo: c@d\n");
  EXPECT_EQ(AttachmentNames("From : a@b\nContent-Type: text/plain; name=x.txt\n\nx"),
            std::vector<std::string>{"x.txt"});
}

TEST(FieldScanner, StopsAtEmptyLine) {
  std::string m = "A: 1\n\nB: 2\n";
  EXPECT_EQ(AllFields(m), (Fields{{"A", "1"}}));
}

TEST(FieldScanner, SkipsJunkAndOrphanContinuations) {
  std::string h = "A: 1\nno colon here\n  orphan: continuation\n:empty name\nB: 2";
  EXPECT_EQ(AllFields(h), (Fields{{"A", "1"}, {"B", "2"}}));
}

TEST(FieldScanner, ColonInValueAndEmptyInput) {
  EXPECT_EQ(AllFields("Date: Tue, 1 Jul 2003 10:52:37 +0200\n"),
            (Fields{{"Date", "Tue, 1 Jul 2003 10:52:37 +0200"}}));
  EXPECT_TRUE(AllFields("").empty());
  FieldScanner s("");
  Field f;
  EXPECT_FALSE(s.Next(&f));
  EXPECT_FALSE(s.Next(&f));
}

TEST(FindField, CaseInsensitiveFirstMatch) {
  std::string h = "Received: one\nreceived: two\nMessage-ID: <x@y>\nSubject: s\n";
  EXPECT_EQ(FindField(h, "received"), "one");
  EXPECT_EQ(FindField(h, "MESSAGE-id"), "<x@y>");
  EXPECT_FALSE(FindField(h, "Subj").has_value());
  EXPECT_FALSE(FindField(h, "Cc").has_value());
  EXPECT_FALSE(FindField("", "Cc").has_value());
}

// FindField has its own fast loop; it must agree with FieldScanner on every input.
TEST(FindField, AgreesWithScanner) {
  const std::vector<std::string> inputs = {
      "A: 1\nB: 2\n\nC: 3\n",
      "From x Tue Jul  1 08:52:37 2003\r\nDate : d\r\n folded\r\nSubject: s\r\n",
      "no header\nA: 1\n",
      "A: 1\njunk\n B: continuation of junk\nB:  two\n",
      "From : obsolete\nA:\n\n",
      "X-\xff: 8bit\nA: \0nul\n",
      "A: 1\r\n\r\nB: 2",
      "A: last-without-newline",
      "AB: 1\nA: 2\nA",
      "",
  };
  for (const auto& in : inputs) {
    for (const char* name :
         {"A", "a", "B", "AB", "Date", "Subject", "From", "X-\xff", "C", "", "A:"}) {
      std::optional<std::string_view> expected;
      FieldScanner scanner(in);
      Field f;
      while (scanner.Next(&f)) {
        if (CaseFold(std::string(f.name)) == CaseFold(name)) {
          expected = f.value;
          break;
        }
      }
      EXPECT_EQ(FindField(in, name), expected) << "input '" << in << "' name " << name;
    }
  }
}

TEST(FindField, ZeroCopy) {
  std::string h = "X: value\n";
  auto v = FindField(h, "x");
  ASSERT_TRUE(v.has_value());
  EXPECT_EQ(v->data(), h.data() + 3);
}

// --- Unfold / DecodeHeader -------------------------------------------------------------------

TEST(Unfold, FoldingAndWhitespace) {
  EXPECT_EQ(Unfold("  a\r\n  b\tc\n\td  "), "a b c d");
  EXPECT_EQ(Unfold(""), "");
  EXPECT_EQ(Unfold(" \r\n "), "");
}

TEST(DecodeHeader, PlainAndFolded) {
  EXPECT_EQ(DecodeHeader("Hello\r\n world"), "Hello world");
  EXPECT_EQ(DecodeHeader("na\xc3\xafve"), "na\xc3\xafve");  // valid UTF-8 kept
  EXPECT_EQ(DecodeHeader("caf\xe9"), "caf\xc3\xa9");        // invalid byte as Latin-1
}

TEST(DecodeHeader, QEncodingWithUnderscores) {
  EXPECT_EQ(DecodeHeader("=?ISO-8859-1?Q?caf=E9_au_lait?="), "caf\xc3\xa9 au lait");
  EXPECT_EQ(DecodeHeader("=?utf-8?q?a=5Fb?="), "a_b");
}

TEST(DecodeHeader, Charsets) {
  EXPECT_EQ(DecodeHeader("=?windows-1252?Q?=80uro_=93quoted=94?="),
            "\xe2\x82\xac"
            "uro \xe2\x80\x9cquoted\xe2\x80\x9d");
  EXPECT_EQ(DecodeHeader("=?KOI8-R?B?8NLJ18XU?="), "Привет");
  EXPECT_EQ(DecodeHeader("=?Shift_JIS?B?k/qWe4zq?="), "日本語");
  EXPECT_EQ(DecodeHeader("=?ISO-2022-JP?B?GyRCJDMkcyRLJEEkTxsoQg==?="), "こんにちは");
  EXPECT_EQ(DecodeHeader("=?UTF-8?B?5pel5pys6Kqe44OG44Kt44K544OI?="), "日本語テキスト");
}

TEST(DecodeHeader, AdjacentWordsJoined) {
  EXPECT_EQ(DecodeHeader("=?utf-8?q?a?= =?utf-8?q?b?="), "ab");
  EXPECT_EQ(DecodeHeader("=?utf-8?q?a?=\r\n =?iso-8859-1?q?=E9?="), "a\xc3\xa9");
  // A multi-byte character split across two B words.
  EXPECT_EQ(DecodeHeader("=?UTF-8?B?5pel5g==?= =?UTF-8?B?nKzoqp7jg4bjgq3jgrnjg4g=?="),
            "日本語テキスト");
  // Text between words keeps its spaces.
  EXPECT_EQ(DecodeHeader("Re: =?utf-8?q?caf=C3=A9?= and =?utf-8?q?th=C3=A9?= !"),
            "Re: caf\xc3\xa9 and th\xc3\xa9 !");
}

TEST(DecodeHeader, LanguageSuffix) {
  EXPECT_EQ(DecodeHeader("=?utf-8*en?q?Hello_World?="), "Hello World");
}

TEST(DecodeHeader, UndecodableKeptAsWritten) {
  EXPECT_EQ(DecodeHeader("=?x-no-such-charset?q?abc?= tail"), "=?x-no-such-charset?q?abc?= tail");
  EXPECT_EQ(DecodeHeader("=?utf-8?x?abc?="), "=?utf-8?x?abc?=");
  EXPECT_EQ(DecodeHeader("=?utf-8?q?unterminated"), "=?utf-8?q?unterminated");
  EXPECT_EQ(DecodeHeader("a =? b ?= c"), "a =? b ?= c");
  EXPECT_EQ(DecodeHeader("=??q?x?="), "=??q?x?=");
}

TEST(DecodeHeader, InvalidBytesInsideWordsAndControls) {
  // UTF-8 word with an invalid byte: the byte is taken as Latin-1.
  EXPECT_EQ(DecodeHeader("=?utf-8?q?caf=E9?="), "caf\xc3\xa9");
  // Decoded line breaks would corrupt the header: they become spaces.
  EXPECT_EQ(DecodeHeader("=?utf-8?q?a=0D=0Ab?="), "a  b");
  // Raw 8-bit text next to an encoded word.
  EXPECT_EQ(DecodeHeader("\xe9t\xe9 =?utf-8?q?x?="), "\xc3\xa9t\xc3\xa9 x");
}

// --- Dates ---------------------------------------------------------------------------------

TEST(ParseDate, Rfc5322) {
  EXPECT_EQ(ParseDate("Tue, 1 Jul 2003 10:52:37 +0200"), kJul1);
  EXPECT_EQ(ParseDate("Tue, 01 Jul 2003 08:52:37 +0000"), kJul1);
  EXPECT_EQ(ParseDate("1 Jul 2003 10:52:37 +0200"), kJul1);  // no weekday
  EXPECT_EQ(ParseDate("Tue, 1 Jul 2003 03:52:37 -0500"), kJul1);
  EXPECT_EQ(ParseDate("Tue, 1 Jul 2003 10:52:37 +0200 (CEST)"), kJul1);
  EXPECT_EQ(ParseDate("  Tue ,  1   Jul   2003\r\n 10:52:37   +0200  "), kJul1);
  EXPECT_EQ(ParseDate("Tue, 1 Jul 2003 08:52 +0000"), kJul1 - 37);  // no seconds
  EXPECT_EQ(ParseDate("Tue, 1 July 2003 10:52:37 +0200"), kJul1);
}

TEST(ParseDate, ObsoleteYearsAndZones) {
  EXPECT_EQ(ParseDate("Tue, 1 Jul 03 08:52:37 GMT"), kJul1);
  EXPECT_EQ(ParseDate("Tue, 1 Jul 03 08:52:37 UT"), kJul1);
  EXPECT_EQ(ParseDate("1 Jul 2003 08:52:37 Z"), kJul1);
  EXPECT_EQ(ParseDate("1 Jul 2003 04:52:37 EDT"), kJul1);
  EXPECT_EQ(ParseDate("1 Jul 2003 03:52:37 EST"), kJul1);
  EXPECT_EQ(ParseDate("1 Jul 2003 03:52:37 CDT"), kJul1);
  EXPECT_EQ(ParseDate("1 Jul 2003 02:52:37 CST"), kJul1);
  EXPECT_EQ(ParseDate("1 Jul 2003 02:52:37 MDT"), kJul1);
  EXPECT_EQ(ParseDate("1 Jul 2003 01:52:37 MST"), kJul1);
  EXPECT_EQ(ParseDate("1 Jul 2003 01:52:37 PDT"), kJul1);
  EXPECT_EQ(ParseDate("1 Jul 2003 00:52:37 PST"), kJul1);
  EXPECT_EQ(ParseDate("1 Jul 2003 08:52:37 A"), kJul1);  // military: treated as 0
  EXPECT_EQ(ParseDate("1 Jul 2003 08:52:37 m"), kJul1);
  EXPECT_EQ(ParseDate("1 Jul 2003 08:52:37 XYZT"), kJul1);   // unknown name: 0
  EXPECT_EQ(ParseDate("1 Jul 99 00:00:00 GMT"), 930787200);  // 1999
  EXPECT_EQ(ParseDate("1 Jul 103 08:52:37 GMT"), kJul1);     // 3-digit year: +1900
  EXPECT_EQ(ParseDate("1 Jul 2003 08:52:37 -0000"), kJul1);
  EXPECT_EQ(ParseDate("Tuesday, 01-Jul-03 08:52:37 GMT"), kJul1);  // RFC 850
  EXPECT_EQ(ParseDate("1 Jul 2003 08:52:37 GMT+0000"), kJul1);
  EXPECT_EQ(ParseDate("1 Jul 2003 10:52:37 (comment (nested)) +0200 (CEST)"), kJul1);
}

TEST(ParseDate, Asctime) {
  EXPECT_EQ(ParseDate("Tue Jul  1 08:52:37 2003"), kJul1);
  EXPECT_EQ(ParseDate("Tue Jul 1 08:52:37 2003"), kJul1);
  EXPECT_EQ(ParseDate("Tue Jul  1 10:52:37 2003 +0200"), kJul1);
  EXPECT_EQ(ParseDate("Tue Jul  1 04:52:37 EDT 2003"), kJul1);
  EXPECT_EQ(ParseDate("Tue Jul  1 08:52:37 MET DST 2003"), kJul1);
}

TEST(ParseDate, OtherForms) {
  EXPECT_EQ(ParseDate("2003-07-01 08:52:37"), kJul1);
  EXPECT_EQ(ParseDate("2003-07-01T10:52:37+02:00"), kJul1);
  EXPECT_EQ(ParseDate("Tue, 1 Jul 2003 8:52:37 AM GMT"), kJul1);
  EXPECT_EQ(ParseDate("Tue, 1 Jul 2003 8:52:37 PM GMT"), kJul1 + 12 * 3600);
  EXPECT_EQ(ParseDate("Tue, 1 Jul 2003 10:52:37.123 +0200"), kJul1);
  EXPECT_EQ(ParseDate("29 Feb 2004 00:00:00 +0000"), 1078012800);
  EXPECT_EQ(ParseDate("1 Jan 1970 00:00:00 +0000"), 0);
  EXPECT_EQ(ParseDate("31 Dec 1969 23:59:59 +0000"), -1);
  EXPECT_EQ(ParseDate("1 Jul 2003"), kJul1 - (8 * 3600 + 52 * 60 + 37));
}

TEST(ParseDate, Garbage) {
  for (const char* s :
       {"", "   ", "garbage", "Tue, 32 Jul 2003 10:52:37 +0200", "29 Feb 2003 00:00:00",
        "1 Foo 2003 10:00:00", "Jul 2003", "1 Jul 2003 25:00:00 +0000", "1 Jul 2003 10:61:00",
        "1 Jul 99999999999999 10:00", "((((((", "1 Jul 10:00:00 +0000", "\xff\xfe\0\x01",
        "13 PM 1 Jul 2003 13:00:00 PM"}) {
    EXPECT_FALSE(ParseDate(s).has_value()) << s;
  }
}

TEST(ParseDate, NeverCrashesOnPrefixes) {
  std::string d = "Tuesday, 01-Jul-2003 10:52:37.5 +02:00 (CEST (x)) GMT+0100 2003-07-01T1";
  for (size_t i = 0; i <= d.size(); ++i) {
    (void)ParseDate(d.substr(0, i));
    (void)ParseDate(d.substr(i));
  }
}

TEST(FormatAsctime, KnownValuesAndRoundTrip) {
  EXPECT_EQ(FormatAsctime(kJul1), "Tue Jul  1 08:52:37 2003");
  EXPECT_EQ(FormatAsctime(0), "Thu Jan  1 00:00:00 1970");
  EXPECT_EQ(FormatAsctime(-1), "Wed Dec 31 23:59:59 1969");
  EXPECT_EQ(FormatAsctime(1078012800), "Sun Feb 29 00:00:00 2004");
  EXPECT_EQ(FormatAsctime(1700000000), "Tue Nov 14 22:13:20 2023");
  for (int64_t t : {int64_t{0}, int64_t{-86400 * 365}, kJul1, int64_t{951782400},
                    int64_t{4102444799}, int64_t{1234567890}}) {
    EXPECT_EQ(ParseDate(FormatAsctime(t)), t) << FormatAsctime(t);
  }
  for (int64_t t = 0; t < 4102444800; t += 7654321) {
    ASSERT_EQ(ParseDate(FormatAsctime(t)), t) << FormatAsctime(t);
  }
}

TEST(FirstReceivedDate, TopmostReceivedAfterLastSemicolon) {
  std::string h =
      "Return-Path: <a@b>\r\n"
      "Received: from mx.example (mx [1.2.3.4]) by mail; for <a@b>;\r\n"
      "\tTue, 1 Jul 2003 10:52:37 +0200\r\n"
      "Received: from older; Mon, 30 Jun 2003 10:00:00 +0000\r\n"
      "Date: Mon, 30 Jun 2003 09:00:00 +0000\r\n";
  EXPECT_EQ(FirstReceivedDate(h), kJul1);
  EXPECT_FALSE(FirstReceivedDate("Subject: x\n").has_value());
  EXPECT_FALSE(FirstReceivedDate("Received: no semicolon\n").has_value());
  EXPECT_FALSE(FirstReceivedDate("Received: x; not a date\n").has_value());
}

// --- FirstAddress --------------------------------------------------------------------------

TEST(FirstAddress, Forms) {
  EXPECT_EQ(FirstAddress("Name <a@B.com>"), "a@b.com");
  EXPECT_EQ(FirstAddress("Upper@EXAMPLE.Org"), "Upper@example.org");
  EXPECT_EQ(FirstAddress("  a@b.com (A Person)  "), "a@b.com");
  EXPECT_EQ(FirstAddress("\"Doe, John\" <john@Doe.COM>, x@y.z"), "john@doe.com");
  EXPECT_EQ(FirstAddress("\"a@fake <b>\" <real@x.org>"), "real@x.org");
  EXPECT_EQ(FirstAddress("Friends: a@b.com, c@d.com;"), "a@b.com");
  EXPECT_EQ(FirstAddress("undisclosed-recipients:;, Me <me@Here.net>"), "me@here.net");
  EXPECT_EQ(FirstAddress("Doe, John <j@d.com>"), "j@d.com");  // unquoted comma
  EXPECT_EQ(FirstAddress("(comment <x@y>) first@Ex.com, second@ex.com"), "first@ex.com");
  EXPECT_EQ(FirstAddress("<@route.a,@route.b:user@C.example>"), "user@c.example");
  EXPECT_EQ(FirstAddress("=?utf-8?q?J=C3=B6rg?= <jorg@X.de>"), "jorg@x.de");
  EXPECT_EQ(FirstAddress("\"quoted local\"@Ex.COM"), "\"quoted local\"@ex.com");
  EXPECT_EQ(FirstAddress("Name\r\n <folded@Ex.com>"), "folded@ex.com");
  EXPECT_EQ(FirstAddress("MAILER-DAEMON"), "MAILER-DAEMON");
  EXPECT_EQ(FirstAddress("<>"), "");
  EXPECT_EQ(FirstAddress(""), "");
  EXPECT_EQ(FirstAddress("undisclosed-recipients:;"), "");
}

TEST(FirstAddress, MalformedDoesNotCrash) {
  EXPECT_EQ(FirstAddress("Name <a@b.com"), "a@b.com");
  EXPECT_EQ(FirstAddress("\"unterminated <A@B>"), "\"unterminated <A@b>");  // kept as written
  EXPECT_EQ(FirstAddress("(unterminated <a@b>"), "");
  EXPECT_EQ(FirstAddress("a\\"), "a\\");
  EXPECT_EQ(FirstAddress("\"\\"), "\"\\");
  EXPECT_EQ(FirstAddress("x@\xC3\x89X.com"), "x@\xC3\x89x.com");  // only ASCII lower-cased
}

// --- AttachmentNames -------------------------------------------------------------------------

const char kNested[] =
    "From: a@b.com\r\n"
    "To: c@d.com\r\n"
    "Subject: nested\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: multipart/mixed; boundary=\"outer\"\r\n"
    "\r\n"
    "--outer\r\n"
    "Content-Type: multipart/alternative; boundary=\"alt\"\r\n"
    "\r\n"
    "--alt\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n"
    "Content-Transfer-Encoding: quoted-printable\r\n"
    "\r\n"
    "caf=C3=A9\r\n"
    "--alt\r\n"
    "Content-Type: text/html\r\n"
    "\r\n"
    "<p>x</p>\r\n"
    "--alt--\r\n"
    "--outer\r\n"
    "Content-Type: application/pdf; name=\"ignored-because-disposition.pdf\"\r\n"
    "Content-Disposition: attachment; filename=\"report.pdf\"\r\n"
    "Content-Transfer-Encoding: base64\r\n"
    "\r\n"
    "JVBERi0xLjQK\r\n"
    "--outer\r\n"
    "Content-Type: image/png; name=\"=?UTF-8?B?R3LDvMOfZS5wZGY=?=\"\r\n"
    "Content-Transfer-Encoding: base64\r\n"
    "\r\n"
    "iVBORw0KGgo=\r\n"
    "--outer\r\n"
    "Content-Type: text/plain\r\n"
    "Content-Disposition: attachment;\r\n"
    " filename*0*=iso-8859-1''R%E9sum%E9%20;\r\n"
    " filename*1=\"final.txt\"\r\n"
    "Content-Transfer-Encoding: quoted-printable\r\n"
    "\r\n"
    "r=C3=A9sum=C3=A9\r\n"
    "--outer\r\n"
    "Content-Type: message/rfc822\r\n"
    "Content-Disposition: attachment; filename=\"forwarded.eml\"\r\n"
    "\r\n"
    "From: x@y.com\r\n"
    "Subject: inner\r\n"
    "MIME-Version: 1.0\r\n"
    "Content-Type: multipart/mixed; boundary=\"inner\"\r\n"
    "\r\n"
    "--inner\r\n"
    "Content-Type: text/plain\r\n"
    "\r\n"
    "inner body\r\n"
    "--inner\r\n"
    "Content-Type: application/octet-stream\r\n"
    "Content-Disposition: attachment; filename*=UTF-8''%E6%97%A5%E6%9C%AC.bin\r\n"
    "Content-Transfer-Encoding: base64\r\n"
    "\r\n"
    "AAEC\r\n"
    "--inner--\r\n"
    "\r\n"
    "--outer--\r\n";

const std::vector<std::string> kNestedNames = {"report.pdf", "Grüße.pdf", "Résumé final.txt",
                                               "forwarded.eml", "日本.bin"};

TEST(AttachmentNames, NestedTree) { EXPECT_EQ(AttachmentNames(kNested), kNestedNames); }

TEST(AttachmentNames, MboxFromLineAndLf) {
  std::string lf;
  for (const char* p = kNested; *p; ++p) {
    if (*p != '\r') lf.push_back(*p);
  }
  EXPECT_EQ(AttachmentNames("From a@b.com Tue Jul  1 08:52:37 2003\n" + lf), kNestedNames);
}

TEST(AttachmentNames, SinglePartAndNone) {
  EXPECT_EQ(AttachmentNames("Content-Type: application/zip; name=\"a.zip\"\n\nPK"),
            std::vector<std::string>{"a.zip"});
  EXPECT_TRUE(AttachmentNames("Subject: hi\n\nplain text, no attachment\n").empty());
  EXPECT_TRUE(AttachmentNames("Subject: name\n\nname\n").empty());
  EXPECT_TRUE(AttachmentNames("").empty());
  EXPECT_TRUE(AttachmentNames("\0\0name\xff\xfe"s).empty());
  // Truncated multipart: no crash, what is there is reported.
  std::string cut(kNested, sizeof(kNested) / 2);
  auto names = AttachmentNames(cut);
  ASSERT_FALSE(names.empty());
  EXPECT_EQ(names[0], "report.pdf");
}

TEST(AttachmentNames, RawEightBitName) {
  auto names = AttachmentNames(
      "Content-Type: multipart/mixed; boundary=b\n\n--b\n"
      "Content-Disposition: attachment; filename=\"caf\xc3\xa9.txt\"\n\nx\n--b--\n");
  EXPECT_EQ(names, std::vector<std::string>{"caf\xc3\xa9.txt"});
}

TEST(AttachmentNames, ConcurrentCalls) {
  constexpr int kThreads = 4;
  std::vector<std::vector<std::string>> results(kThreads);
  std::vector<int> mismatches(kThreads, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([t, &mismatches] {
      for (int i = 0; i < 50; ++i) {
        if (AttachmentNames(kNested) != kNestedNames) ++mismatches[t];
        if (DecodeHeader("=?KOI8-R?B?8NLJ18XU?=") != "Привет") ++mismatches[t];
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(mismatches[t], 0) << "thread " << t;
}

// --- CaseFold ------------------------------------------------------------------------------

TEST(CaseFold, AsciiAndUnicode) {
  EXPECT_EQ(CaseFold("Hello WORLD 123"), "hello world 123");
  EXPECT_EQ(CaseFold("ÉCOLE Ünïcode"), "école ünïcode");
  EXPECT_EQ(CaseFold("Straße"), "strasse");  // full folding: ß -> ss
  EXPECT_EQ(CaseFold("ПРИВЕТ"), "привет");
  EXPECT_EQ(CaseFold("ΣΊΣΥΦΟΣ"), CaseFold("σίσυφος"));
  EXPECT_EQ(CaseFold(""), "");
}

TEST(CaseFold, InvalidUtf8AndNul) {
  EXPECT_EQ(CaseFold("CAF\xc9"), "caf\xc3\xa9");  // Latin-1 É folded to é
  EXPECT_EQ(CaseFold("A\0B"s), "a\0b"s);
  EXPECT_EQ(CaseFold("\xc3\x89\0\xff"s), "\xc3\xa9\0\xc3\xbf"s);
  EXPECT_EQ(CaseFold("\xed\xa0\x80"), "\xc3\xad\xc2\xa0\xc2\x80");  // surrogate: bytes as Latin-1
}

// Quoted-printable by its definition: split into lines, each byte made a
// token (itself or "=XX"), tokens packed into lines of at most 75 with soft
// breaks. The encoder must agree with it byte for byte.
std::string QuotedPrintableByTokens(std::string_view in) {
  std::vector<std::string_view> lines;
  for (size_t start = 0;;) {
    size_t nl = in.find('\n', start);
    lines.push_back(
        in.substr(start, nl == std::string_view::npos ? std::string_view::npos : nl - start));
    if (nl == std::string_view::npos) break;
    start = nl + 1;
  }
  for (auto& line : lines) {
    if (line.ends_with('\r')) line.remove_suffix(1);
  }
  if (lines.back().empty()) lines.pop_back();  // the text ended with a line break
  std::string out;
  for (std::string_view line : lines) {
    std::vector<std::string> tokens;
    for (size_t k = 0; k < line.size(); ++k) {
      unsigned char c = static_cast<unsigned char>(line[k]);
      bool blank = c == ' ' || c == '\t';
      bool plain = (c > 32 && c < 127 && c != '=') || (blank && k + 1 < line.size());
      if (k == 0 && (line.starts_with("From ") || line.starts_with("."))) plain = false;
      char hex[4];
      std::snprintf(hex, sizeof hex, "=%02X", c);
      tokens.push_back(plain ? std::string(1, static_cast<char>(c)) : std::string(hex));
    }
    size_t width = 0;
    for (const auto& t : tokens) {
      if (width + t.size() > 75) {
        out += "=\n";
        width = 0;
      }
      out += t;
      width += t.size();
    }
    out += '\n';
  }
  return out;
}

TEST(QuotedPrintable, EncodesTheRulesThatMatter) {
  EXPECT_EQ(EncodeQuotedPrintable("a=b\r\nc \n"), "a=3Db\nc=20\n");
  EXPECT_EQ(EncodeQuotedPrintable("From me\n.\n"), "=46rom me\n=2E\n");
  EXPECT_EQ(EncodeQuotedPrintable("caf\xc3\xa9"), "caf=C3=A9\n");
  std::string broken(75, 'x');  // a soft break after 75 characters
  broken += "=\n";
  broken.append(25, 'x');
  broken += '\n';
  EXPECT_EQ(EncodeQuotedPrintable(std::string(100, 'x')), broken);
}

TEST(QuotedPrintable, AgreesWithTheDefinition) {
  // Random texts over the bytes that matter, with lines long enough to need
  // soft breaks around encoded bytes.
  const std::string_view pieces[] = {"x", "From ", ".", " ", "\t", "=", "\n", "\r\n", "\r",
                                     "\xc3\xa9", "\x01", "abcdefghijklmnopqrstuvwxyz0123456789",
                                     // The edges of the literal range, for the 16-byte scan.
                                     "~", "\x7f", "\x1f", "!", "\xff", "\x80"};
  std::mt19937 rng(2045);
  for (int i = 0; i < 20000; ++i) {
    std::string text;
    int n = static_cast<int>(rng() % 40);
    for (int k = 0; k < n; ++k) text += pieces[rng() % std::size(pieces)];
    ASSERT_EQ(EncodeQuotedPrintable(text), QuotedPrintableByTokens(text)) << "'" << text << "'";
  }
}

}  // namespace
}  // namespace mbx::mime
