#include "formats/ldif/ldif.h"

#include <gtest/gtest.h>

namespace mbx::ldif {
namespace {

TEST(LdifTest, ParsesFoldedLinesBase64CommentsAndAnyOrder) {
  const std::string text =
      "version: 1\r\n"
      "# a comment that is\r\n"
      "  folded over two lines\r\n"
      "dn: CN=Alice Example,OU=Users,\r\n"
      " DC=corp,DC=example\r\n"
      "objectGUID:: /xmWb4aLEdC0LQDAT8lk/w==\r\n"
      "mailNickname: alice\r\n"
      "displayName:: w4FsaWNl\r\n"
      "\r\n"
      "\r\n"
      "dn: CN=Bob,DC=corp\n"
      "displayName: Bob\n"
      "mail:  bob@example.com\n";
  auto r = Parse(text, "dir.ldif");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->size(), 2u);
  const Record& a = (*r)[0];
  EXPECT_EQ(a.dn, "CN=Alice Example,OU=Users,DC=corp,DC=example");
  ASSERT_NE(a.Get("objectguid"), nullptr);
  EXPECT_EQ(*a.Get("objectGUID"), std::string("\xff\x19\x96\x6f\x86\x8b\x11\xd0\xb4\x2d\x00\xc0\x4f\xc9\x64\xff", 16));
  EXPECT_EQ(*a.Get("displayName"), "\xc3\x81lice");
  EXPECT_EQ(*a.Get("MAILNICKNAME"), "alice");
  EXPECT_EQ(a.line, 4u);
  EXPECT_EQ(*(*r)[1].Get("mail"), "bob@example.com");
  EXPECT_EQ((*r)[1].Get("objectGUID"), nullptr);
}

TEST(LdifTest, RefusesUrlValuesWithFileAndLine) {
  auto r = Parse("dn: cn=a\njpegPhoto:< file:///etc/passwd\n", "d.ldif");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("d.ldif' line 2"), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find(":<"), std::string::npos);
}

TEST(LdifTest, ReportsMalformedLines) {
  auto r = Parse("dn: cn=a\nthis line has no colon\n", "d.ldif");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("line 2"), std::string::npos);
  EXPECT_FALSE(Parse("cn: a\n", "d.ldif").ok());
  EXPECT_FALSE(Parse("dn: a\nobjectGUID:: !!!\n", "d.ldif").ok());
}

TEST(LdifTest, FormatsSafeAndUnsafeValuesAndFoldsLongLines) {
  EXPECT_EQ(FormatAttribute("cn", "Alice"), "cn: Alice\n");
  EXPECT_EQ(FormatAttribute("cn", " leading"), "cn:: IGxlYWRpbmc=\n");
  std::string bin("\x00\x01", 2);
  EXPECT_EQ(FormatAttribute("objectGUID", bin), "objectGUID:: AAE=\n");
  std::string long_value(200, 'x');
  std::string folded = FormatAttribute("description", long_value);
  auto back = Parse("dn: cn=a\n" + folded, "x");
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*(*back)[0].Get("description"), long_value);
  for (size_t start = 0, nl; (nl = folded.find('\n', start)) != std::string::npos; start = nl + 1) {
    EXPECT_LE(nl - start, 76u);
  }
}

TEST(LdifTest, ChangeRecordRoundTrip) {
  std::string guid("\xff\x19\x96\x6f\x86\x8b\x11\xd0\xb4\x2d\x00\xc0\x4f\xc9\x64\xff", 16);
  std::string rec = FormatReplace("CN=Alice,DC=corp", "msExchMailboxGUID", guid);
  EXPECT_EQ(rec,
            "dn: CN=Alice,DC=corp\n"
            "changetype: modify\n"
            "replace: msExchMailboxGUID\n"
            "msExchMailboxGUID:: /xmWb4aLEdC0LQDAT8lk/w==\n"
            "-\n");
}

TEST(LdifTest, Base64RoundTrip) {
  for (std::string s : {std::string(), std::string("a"), std::string("ab"), std::string("abc"),
                        std::string("\x00\xff\x10\x80", 4)}) {
    auto d = Base64Decode(Base64Encode(s));
    ASSERT_TRUE(d.ok());
    EXPECT_EQ(*d, s);
  }
}

}  // namespace
}  // namespace mbx::ldif
