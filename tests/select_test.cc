// Selection: dates, subjects, attachments, folders, and which date counts.
#include "engine/select.h"

#include <gtest/gtest.h>

namespace mbx {
namespace {

Message M(std::string mime, UnixTime delivered = 0, UnixTime modified = 0) {
  Message m;
  m.mime = std::move(mime);
  m.container_delivered = delivered;
  m.container_modified = modified;
  return m;
}

TEST(SelectTest, ParseUserDateForms) {
  EXPECT_EQ(*ParseUserDate("2024-01-31", false), 1706659200);
  EXPECT_EQ(*ParseUserDate("2024-01-31", true), 1706659200 + 86399);
  EXPECT_EQ(*ParseUserDate("2024-01-31T10:20:30", true), 1706659200 + 37230);
  EXPECT_EQ(*ParseUserDate("2024-01-31T10:20Z", false), 1706659200 + 37200);
  EXPECT_EQ(*ParseUserDate("Wed, 31 Jan 2024 12:00:00 +0200", false), 1706659200 + 36000);
  for (const char* bad : {"yesterday", "2024-13-01", "2024-01-31T25:00", "2024-01-31 junk", ""}) {
    auto r = ParseUserDate(bad, false);
    EXPECT_FALSE(r.ok()) << bad;
    if (!r.ok()) {
      EXPECT_EQ(r.status().code(), Status::Code::kInvalidArgument);
    }
  }
}

TEST(SelectTest, FolderGlobsAreCaseInsensitiveAndRootIsInbox) {
  Selection s;
  s.folder_globs = {"Inbox/Projects*", "inbox"};
  s.exclude_folder_globs = {"*/Old"};
  Selector sel(s);
  EXPECT_TRUE(sel.FolderSelected(""));  // the root answers to INBOX
  EXPECT_TRUE(sel.FolderSelected("INBOX/projects"));
  EXPECT_TRUE(sel.FolderSelected("Inbox/Projects/Alpha"));
  EXPECT_FALSE(sel.FolderSelected("Inbox/Projects/Old"));
  EXPECT_FALSE(sel.FolderSelected("Sent"));
  Selector all{Selection{}};
  EXPECT_TRUE(all.FolderSelected("anything/at/all"));
}

TEST(SelectTest, SubjectsMatchDecodedAndUnicodeCaseInsensitive) {
  Selection s;
  s.subjects = {"größe", "invoice"};
  Selector sel(s);
  // Full case folding: "GRÖSSE" and "größe" are the same word (ß folds to ss).
  Message upper = M("Subject: =?UTF-8?Q?GR=C3=96SSE_der_Dateien?=\n\nx\n");
  EXPECT_EQ(sel.Check(upper, upper.mime), Rejection::kNone);
  Message a = M("Subject: =?ISO-8859-1?Q?Gr=F6=DFe?= matters\n\nx\n");
  EXPECT_EQ(sel.Check(a, a.mime), Rejection::kNone);
  Message b = M("Subject: Your INVOICE\n\nx\n");
  EXPECT_EQ(sel.Check(b, b.mime), Rejection::kNone);
  Message c = M("Subject: lunch\n\nx\n");
  EXPECT_EQ(sel.Check(c, c.mime), Rejection::kSubject);
  Message d = M("no headers here\n");
  EXPECT_EQ(sel.Check(d, d.mime), Rejection::kSubject);
}

TEST(SelectTest, AttachmentGlobs) {
  const std::string mime =
      "Subject: x\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b\n\n"
      "--b\nContent-Type: text/plain\n\nhello\n"
      "--b\nContent-Type: application/vnd.ms-excel\nContent-Disposition: attachment; filename=\"Q3 Budget.XLSX\"\n"
      "Content-Transfer-Encoding: base64\n\nAAAA\n--b--\n";
  Selection s;
  s.attachment_globs = {"*.xlsx"};
  EXPECT_EQ(Selector(s).Check(M(mime), mime), Rejection::kNone);
  s.attachment_globs = {"*.pdf"};
  EXPECT_EQ(Selector(s).Check(M(mime), mime), Rejection::kAttachment);
  std::string plain = "Subject: x\n\nno attachments\n";
  s.attachment_globs = {"*"};
  EXPECT_EQ(Selector(s).Check(M(plain), plain), Rejection::kAttachment);
}

TEST(SelectTest, DateFieldsAndRanges) {
  const std::string mime =
      "Received: by mx; Tue, 2 Jan 2024 08:00:00 +0000\nDate: Mon, 1 Jan 2024 10:00:00 +0000\n"
      "Subject: x\n\nbody\n";
  Message m = M(mime, /*delivered=*/1704326400 /*2024-01-04*/, /*modified=*/1704499200 /*2024-01-06*/);
  auto sel_for = [](DateField f) {
    Selection s;
    s.date_field = f;
    s.since = *ParseUserDate("2024-01-03", false);
    s.until = *ParseUserDate("2024-01-04", true);
    return Selector(s);
  };
  EXPECT_EQ(sel_for(DateField::kDelivered).Check(m, mime), Rejection::kNone);  // the container's delivery date
  EXPECT_EQ(sel_for(DateField::kSent).Check(m, mime), Rejection::kDate);       // Date: is Jan 1
  EXPECT_EQ(sel_for(DateField::kModified).Check(m, mime), Rejection::kDate);   // Jan 6
  Message no_container = M(mime);
  Selection s;
  s.since = *ParseUserDate("2024-01-02", false);
  s.until = *ParseUserDate("2024-01-02", true);
  EXPECT_EQ(Selector(s).Check(no_container, mime), Rejection::kNone);  // falls back to Received
  Message undated = M("Subject: x\n\nbody\n");
  EXPECT_EQ(Selector(s).Check(undated, undated.mime), Rejection::kNoDate);
  EXPECT_EQ(Selector(Selection{}).Check(undated, undated.mime), Rejection::kNone);
}

}  // namespace
}  // namespace mbx
