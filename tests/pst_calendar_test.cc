// Contacts as vCard and appointments and meeting messages as iCalendar
// (formats/pst/vcard_ical.h): hand-made items written through our PST writer,
// read back through the PST source (libpff) and checked field by field, by
// our own content-line reader and by independent parsers (Debian's
// python3-icalendar and python3-vobject, the npm mailparser); the EML sink's
// .ics/.vcf files beside the messages; and the calendar items of a real
// Outlook OST against readpst's VEVENTs for the same items.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdlib>
#include <ctime>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "engine/message.h"
#include "formats/pst/disk/disk.h"
#include "formats/pst/mapi.h"
#include "formats/pst/mapi_to_mime.h"
#include "formats/pst/messaging/store_writer.h"
#include "formats/pst/pst.h"
#include "formats/pst/vcard_ical.h"
#include "tests/test_util.h"

namespace mbx {
namespace {

using namespace pst::messaging;  // NOLINT
using testing::HaveProgram;
using testing::ReadFileOrDie;
using testing::TempDir;

// ---------------------------------------------------------------------------
// Inputs: property sets as the name-to-id map stores them, and the values the
// items are made of (every expectation below is derived from these).

const std::string kAddress("\x04\x20\x06\x00\x00\x00\x00\x00\xC0\x00\x00\x00\x00\x00\x00\x46", 16);
const std::string kAppointment("\x02\x20\x06\x00\x00\x00\x00\x00\xC0\x00\x00\x00\x00\x00\x00\x46",
                               16);
const std::string kCommon("\x08\x20\x06\x00\x00\x00\x00\x00\xC0\x00\x00\x00\x00\x00\x00\x46", 16);
const std::string kMeeting("\x90\xDA\xD8\x6E\x0B\x45\x1B\x10\x98\xDA\x00\xAA\x00\x3F\x13\x05", 16);

NamedValue Named(const std::string& set, uint32_t lid, pst::ltp::Property p) {
  NamedValue v;
  v.name.guid = set;
  v.name.lid = lid;
  v.type = p.type;
  v.value = std::move(p.value);
  return v;
}
NamedValue NamedString(const std::string& set, uint32_t lid, const std::string& s) {
  return Named(set, lid, StringProp(0, s));
}
NamedValue NamedTime(const std::string& set, uint32_t lid, int64_t unix_time) {
  return Named(set, lid, TimeProp(0, pst::UnixToFileTime(unix_time)));
}

std::string Le16(uint16_t v) {
  return std::string{static_cast<char>(v), static_cast<char>(v >> 8)};
}
std::string Le32(uint32_t v) { return Le16(static_cast<uint16_t>(v)) + Le16(v >> 16); }

// Unix seconds of a UTC civil time.
int64_t Utc(int y, int mo, int d, int h = 0, int mi = 0) {
  struct tm tm {};
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  return timegm(&tm);
}
// Minutes since 1601-01-01 of a civil date at midnight (the recurrence blob's dates).
uint32_t Minutes1601(int y, int mo, int d) {
  return static_cast<uint32_t>((Utc(y, mo, d) + 11644473600LL) / 60);
}
std::string IcalUtc(int64_t t) {
  char buf[32];
  time_t tt = t;
  struct tm tm {};
  gmtime_r(&tt, &tm);
  std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
  return buf;
}
std::string IsoUtc(int64_t t) {
  char buf[32];
  time_t tt = t;
  struct tm tm {};
  gmtime_r(&tt, &tm);
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S+00:00", &tm);
  return buf;
}

// [MS-OXOCAL] 2.2.1.44.1/.3: a RecurrencePattern with its PatternTypeSpecific
// bytes, followed by the AppointmentRecurrencePattern tail (no exceptions).
std::string RecurrenceBlob(uint16_t freq, uint16_t type, uint32_t period, std::string specific,
                           uint32_t end_type, uint32_t count, uint32_t first_dow,
                           uint32_t start_date, uint32_t end_date, uint32_t start_offset,
                           uint32_t end_offset) {
  std::string b = Le16(0x3004) + Le16(0x3004) + Le16(freq) + Le16(type) + Le16(0) + Le32(0) +
                  Le32(period) + Le32(0) + specific + Le32(end_type) + Le32(count) +
                  Le32(first_dow) + Le32(0) + Le32(0) + Le32(start_date) + Le32(end_date);
  b += Le32(0x3006) + Le32(0x3009) + Le32(start_offset) + Le32(end_offset) + Le16(0) + Le32(0) +
       Le32(0);
  return b;
}

// A GlobalObjectId ([MS-OXOCAL] 2.2.1.27) with an instance date and `data`.
std::string GlobalObjectId(int year, int month, int day, const std::string& data) {
  std::string g("\x04\x00\x00\x00\x82\x00\xE0\x00\x74\xC5\xB7\x10\x1A\x82\xE0\x08", 16);
  g += static_cast<char>(year >> 8);
  g += static_cast<char>(year & 0xff);
  g += static_cast<char>(month);
  g += static_cast<char>(day);
  g += std::string("\x10\x20\x30\x40\x50\x60\xD7\x01", 8) + std::string(8, '\0');
  g += Le32(static_cast<uint32_t>(data.size())) + data;
  return g;
}
std::string Hex(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    out += kHex[c >> 4];
    out += kHex[c & 15];
  }
  return out;
}

struct Contact {
  std::string display = "Müller, Jürgen; Sr.";
  std::string given = "Jürgen", surname = "Müller";
  std::string email1 = "juergen@example.com";
  std::string email2_ex = "/o=Org/ou=Exchange/cn=Recipients/cn=jm";
  std::string email2_smtp = "jm@corp.example";
  std::string email3 = "j.m@example.org";
  std::string business_phone = "+49 30 1234", mobile = "+49 170 5555", home_fax = "+49 30 999";
  std::string company = "ACME, Inc.; Europe", department = "Research", title = "Head of R&D";
  std::string street = "Hauptstraße 1\nHinterhaus", city = "Berlin", postal = "10115",
              country = "Germany";
  std::string url = "https://example.com/~jm?a=1,2;b=3";
  // Entered as 1980-05-17 in UTC+1: stored as 1980-05-16 23:00 UTC.
  int64_t birthday = Utc(1980, 5, 16, 23);
  std::string birthday_date = "1980-05-17";
  std::string note =
      "Line one, with comma; and semicolon\\backslash\r\nLine two: " + std::string(60, 'x') + " " +
      [] {
        std::string s;
        for (int i = 0; i < 70; ++i) s += "é€";
        return s;
      }();
};

struct Appointment {
  std::string subject = "Budget review, Q3; final\\draft – Überprüfung";
  std::string location = "Room 1, Floor 2";
  int64_t start = Utc(2024, 3, 12, 8, 0);  // 10:00 in UTC+2
  int64_t end = Utc(2024, 3, 12, 9, 30);
  std::string body = "Agenda:\n1. numbers, plans; risks";
  int reminder_minutes = 25;
};

OutMessage ContactMessage(const Contact& c) {
  OutMessage m;
  m.props = {StringProp(0x001A, "IPM.Contact"),
             StringProp(0x0037, c.display),
             StringProp(0x3001, c.display),
             StringProp(0x3A06, c.given),
             StringProp(0x3A11, c.surname),
             StringProp(0x3A08, c.business_phone),
             StringProp(0x3A1C, c.mobile),
             StringProp(0x3A25, c.home_fax),
             StringProp(0x3A16, c.company),
             StringProp(0x3A18, c.department),
             StringProp(0x3A17, c.title),
             StringProp(0x3A29, c.street),
             StringProp(0x3A27, c.city),
             StringProp(0x3A2A, c.postal),
             StringProp(0x3A26, c.country),
             StringProp(0x3A51, c.url),
             TimeProp(0x3A42, pst::UnixToFileTime(c.birthday)),
             StringProp(0x1000, c.note)};
  m.named = {NamedString(kAddress, 0x8083, c.email1),      NamedString(kAddress, 0x8082, "SMTP"),
             NamedString(kAddress, 0x8093, c.email2_ex),   NamedString(kAddress, 0x8092, "EX"),
             NamedString(kAddress, 0x8094, c.email2_smtp), NamedString(kAddress, 0x80A3, c.email3)};
  return m;
}

OutMessage AppointmentMessage(const Appointment& a, const std::string& cls = "IPM.Appointment") {
  OutMessage m;
  m.props = {StringProp(0x001A, cls),
             StringProp(0x0037, a.subject),
             StringProp(0x1000, a.body),
             StringProp(0x0042, "Alice Organizer"),
             StringProp(0x0064, "SMTP"),
             StringProp(0x0065, "alice@example.com"),
             TimeProp(0x0060, pst::UnixToFileTime(a.start)),
             TimeProp(0x0061, pst::UnixToFileTime(a.end))};
  m.named = {NamedTime(kAppointment, 0x820D, a.start),
             NamedTime(kAppointment, 0x820E, a.end),
             NamedString(kAppointment, 0x8208, a.location),
             Named(kAppointment, 0x8205, Int32Prop(0, 2)),
             Named(kCommon, 0x8503, BoolProp(0, true)),
             Named(kCommon, 0x8501, Int32Prop(0, static_cast<uint32_t>(a.reminder_minutes)))};
  return m;
}

// ---------------------------------------------------------------------------
// Reading what we wrote

// Content lines of a vCard/iCalendar object, unfolded; the folding itself is
// checked on the way: CRLF everywhere, no line over 75 octets, no UTF-8
// sequence cut by a fold.
std::vector<std::string> Unfold(const std::string& text) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t crlf = text.find("\r\n", pos);
    EXPECT_NE(crlf, std::string::npos) << "line without CRLF at " << pos;
    if (crlf == std::string::npos) break;
    std::string line = text.substr(pos, crlf - pos);
    EXPECT_EQ(line.find('\n'), std::string::npos) << "bare LF in " << line;
    EXPECT_LE(line.size(), 75u) << line;
    if (!line.empty() && (line[0] == ' ' || line[0] == '\t')) {
      EXPECT_NE(static_cast<unsigned char>(line[1]) & 0xC0, 0x80) << "fold inside UTF-8: " << line;
      EXPECT_FALSE(out.empty());
      if (!out.empty()) out.back() += line.substr(1);
    } else {
      out.push_back(line);
    }
    pos = crlf + 2;
  }
  return out;
}

// The value of an RFC 5545/2426 TEXT, unescaped.
std::string Unescape(std::string_view v) {
  std::string out;
  for (size_t i = 0; i < v.size(); ++i) {
    if (v[i] == '\\' && i + 1 < v.size()) {
      char n = v[++i];
      out += n == 'n' || n == 'N' ? '\n' : n;
    } else {
      out += v[i];
    }
  }
  return out;
}

// name (with parameters, as written) -> raw values, in order.
std::multimap<std::string, std::string> Props(const std::string& text) {
  std::multimap<std::string, std::string> out;
  for (const std::string& l : Unfold(text)) {
    // The value starts after the first ':' outside a quoted parameter.
    bool quoted = false;
    size_t colon = std::string::npos;
    for (size_t i = 0; i < l.size(); ++i) {
      if (l[i] == '"') quoted = !quoted;
      if (l[i] == ':' && !quoted) {
        colon = i;
        break;
      }
    }
    if (colon == std::string::npos) continue;
    out.emplace(l.substr(0, colon), l.substr(colon + 1));
  }
  return out;
}
std::string One(const std::multimap<std::string, std::string>& p, const std::string& name) {
  auto it = p.find(name);
  return it == p.end() ? "(absent)" : it->second;
}
std::vector<std::string> All(const std::multimap<std::string, std::string>& p,
                             const std::string& name) {
  std::vector<std::string> out;
  for (auto [b, e] = p.equal_range(name); b != e; ++b) out.push_back(b->second);
  return out;
}

struct Rendered {
  std::string message_class;
  std::string mime;
  std::optional<pst::PimPart> pim;
};

std::map<std::string, Rendered> ReadBack(const std::string& path);

// Writes `messages` into a folder of a new PST and reads them back through
// the PST source: subject -> what we render.
std::map<std::string, Rendered> WriteAndRead(const std::string& path,
                                             const std::vector<OutMessage>& messages) {
  {
    auto w = StoreWriter::Create(path, {});
    EXPECT_TRUE(w.ok());
    if (!w.ok()) return {};
    auto folder = (*w)->CreateFolder(kNidIpmSubtree, "Items");
    EXPECT_TRUE(folder.ok());
    for (const OutMessage& m : messages) EXPECT_TRUE((*w)->AddMessage(*folder, m).ok());
    EXPECT_TRUE((*w)->Finish().ok());
  }
  return ReadBack(path);
}

// Reads a PST through the PST source: subject -> what we render.
std::map<std::string, Rendered> ReadBack(const std::string& path) {
  std::map<std::string, Rendered> out;
  auto src = pst::OpenSource(path);
  EXPECT_TRUE(src.ok()) << src.status().ToString();
  if (!src.ok()) return out;
  Message msg;
  while (true) {
    auto more = (*src)->Next(&msg);
    EXPECT_TRUE(more.ok());
    if (!more.ok() || !*more) break;
    const pst::MapiMessage* mapi = pst::MapiOf(msg);
    EXPECT_NE(mapi, nullptr);
    if (mapi == nullptr) continue;
    Rendered r;
    r.message_class = mapi->props.StringOr(pst::kPidMessageClass);
    r.mime = pst::RenderMime(*mapi);
    r.pim = pst::RenderPimPart(*mapi);
    out[mapi->props.StringOr(pst::kPidSubject)] = std::move(r);
  }
  return out;
}

// ---------------------------------------------------------------------------
// Synthetic items through our PST writer and libpff

TEST(PstCalendarTest, ContactBecomesVCard) {
  TempDir dir;
  Contact c;
  auto items = WriteAndRead(dir / "c.pst", {ContactMessage(c)});
  ASSERT_EQ(items.count(c.display), 1u);
  const Rendered& r = items[c.display];
  ASSERT_TRUE(r.pim.has_value());
  EXPECT_EQ(r.pim->content_type.rfind("text/vcard", 0), 0u);
  auto p = Props(r.pim->text);
  EXPECT_EQ(One(p, "BEGIN"), "VCARD");
  EXPECT_EQ(One(p, "VERSION"), "3.0");
  EXPECT_EQ(Unescape(One(p, "FN")), c.display);
  EXPECT_EQ(One(p, "N"), c.surname + ";" + c.given + ";;;");
  // Email1 as is, Email2 (an EX address) by its SMTP form, Email3.
  std::vector<std::string> emails;  // in the order written
  for (const std::string& l : Unfold(r.pim->text))
    if (l.rfind("EMAIL", 0) == 0) emails.push_back(l.substr(l.find(':') + 1));
  EXPECT_EQ(emails, (std::vector<std::string>{c.email1, c.email2_smtp, c.email3}));
  EXPECT_EQ(All(p, "TEL;TYPE=WORK,VOICE"), std::vector<std::string>{c.business_phone});
  EXPECT_EQ(All(p, "TEL;TYPE=CELL,VOICE"), std::vector<std::string>{c.mobile});
  EXPECT_EQ(All(p, "TEL;TYPE=HOME,FAX"), std::vector<std::string>{c.home_fax});
  // ORG's components are separated by an unescaped ';'.
  EXPECT_EQ(One(p, "ORG"), "ACME\\, Inc.\\; Europe;Research");
  EXPECT_EQ(Unescape(One(p, "TITLE")), c.title);
  EXPECT_EQ(One(p, "ADR;TYPE=WORK"),
            ";;Hauptstraße 1\\nHinterhaus;" + c.city + ";;" + c.postal + ";" + c.country);
  EXPECT_EQ(One(p, "BDAY"), c.birthday_date);
  EXPECT_EQ(Unescape(One(p, "URL")), c.url);
  std::string note = c.note;
  note.erase(note.find('\r'), 1);
  EXPECT_EQ(Unescape(One(p, "NOTE")), note);
  // The MIME message keeps its body and carries the vCard as an attachment.
  EXPECT_NE(r.mime.find("Content-Type: text/vcard; charset=utf-8"), std::string::npos);
  EXPECT_NE(r.mime.find("multipart/mixed"), std::string::npos);
  auto found = pst::FindPimPart(r.mime);
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(found->extension, "vcf");
  EXPECT_EQ(found->data, r.pim->text);
}

TEST(PstCalendarTest, AppointmentBecomesVEventInUtc) {
  TempDir dir;
  Appointment a;
  OutMessage m = AppointmentMessage(a);
  // Weekly on Monday and Wednesday every 2 weeks, 6 times, from 2024-03-11
  // (a Monday) at 10:00 local (UTC+2), weeks starting on Monday.
  m.named.push_back(Named(
      kAppointment, 0x8216,
      BinaryProp(0, RecurrenceBlob(0x200B, 0x0001, 2, Le32(0x02 | 0x08), 0x2022, 6, 1,
                                   Minutes1601(2024, 3, 11), Minutes1601(2024, 4, 10), 600, 690))));
  auto items = WriteAndRead(dir / "a.pst", {m});
  ASSERT_EQ(items.count(a.subject), 1u);
  const Rendered& r = items[a.subject];
  ASSERT_TRUE(r.pim.has_value());
  EXPECT_EQ(r.pim->content_type, "text/calendar; charset=utf-8; method=PUBLISH");
  auto p = Props(r.pim->text);
  EXPECT_EQ(One(p, "METHOD"), "PUBLISH");
  EXPECT_EQ(Unescape(One(p, "SUMMARY")), a.subject);
  EXPECT_EQ(One(p, "SUMMARY"), "Budget review\\, Q3\\; final\\\\draft – Überprüfung");
  EXPECT_EQ(Unescape(One(p, "LOCATION")), a.location);
  EXPECT_EQ(One(p, "DTSTART"), IcalUtc(a.start));
  EXPECT_EQ(One(p, "DTEND"), IcalUtc(a.end));
  EXPECT_EQ(Unescape(One(p, "DESCRIPTION")), a.body);
  EXPECT_EQ(One(p, "RRULE"), "FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,WE;WKST=MO;COUNT=6");
  EXPECT_EQ(One(p, "TRIGGER"), "-PT" + std::to_string(a.reminder_minutes) + "M");
  EXPECT_EQ(One(p, "ORGANIZER;CN=Alice Organizer"), "mailto:alice@example.com");
  EXPECT_NE(One(p, "UID"), "(absent)");
  EXPECT_NE(One(p, "DTSTAMP"), "(absent)");
  // Attached to the message, whose text body is unchanged.
  EXPECT_NE(r.mime.find("Content-Disposition: attachment;\n filename=\"event.ics\""),
            std::string::npos);
  EXPECT_NE(r.mime.find("Content-Type: text/plain"), std::string::npos);
  // Rendering is deterministic: the same item read again gives the same bytes.
  EXPECT_EQ(ReadBack(dir / "a.pst")[a.subject].mime, r.mime);
}

TEST(PstCalendarTest, MonthlyAndYearlyRecurrence) {
  TempDir dir;
  Appointment nth;
  nth.subject = "second tuesday";
  OutMessage m1 = AppointmentMessage(nth);
  // Every month on the 2nd Tuesday until 2024-12-10; 10:00 local in UTC+2,
  // so the last instance starts at 08:00 UTC that day.
  m1.named.push_back(Named(kAppointment, 0x8216,
                           BinaryProp(0, RecurrenceBlob(0x200C, 0x0003, 1, Le32(0x04) + Le32(2),
                                                        0x2021, 10, 0, Minutes1601(2024, 3, 12),
                                                        Minutes1601(2024, 12, 10), 600, 690))));
  Appointment last;
  last.subject = "last friday every 3 months";
  OutMessage m2 = AppointmentMessage(last);
  m2.named.push_back(
      Named(kAppointment, 0x8216,
            BinaryProp(0, RecurrenceBlob(0x200C, 0x0003, 3, Le32(0x20) + Le32(5), 0x2023, 0, 0,
                                         Minutes1601(2024, 3, 29), 0x5AE980DF, 600, 690))));
  Appointment yearly;
  yearly.subject = "anniversary";
  OutMessage m3 = AppointmentMessage(yearly);
  m3.named.push_back(
      Named(kAppointment, 0x8216,
            BinaryProp(0, RecurrenceBlob(0x200D, 0x0002, 12, Le32(12), 0x2023, 0, 0,
                                         Minutes1601(2024, 3, 12), 0x5AE980DF, 600, 690))));
  Appointment daily;
  daily.subject = "every other day";
  OutMessage m4 = AppointmentMessage(daily);
  m4.named.push_back(Named(
      kAppointment, 0x8216,
      BinaryProp(0, RecurrenceBlob(0x200A, 0x0000, 2 * 1440, "", 0x2022, 3, 0,
                                   Minutes1601(2024, 3, 12), Minutes1601(2024, 3, 16), 600, 690))));
  auto items = WriteAndRead(dir / "r.pst", {m1, m2, m3, m4});
  auto rrule = [&](const std::string& subject) {
    return items.count(subject) ? One(Props(items[subject].pim->text), "RRULE") : "(no item)";
  };
  EXPECT_EQ(rrule(nth.subject),
            "FREQ=MONTHLY;BYDAY=TU;BYSETPOS=2;UNTIL=" + IcalUtc(Utc(2024, 12, 10, 10) - 2 * 3600));
  EXPECT_EQ(rrule(last.subject), "FREQ=MONTHLY;INTERVAL=3;BYDAY=FR;BYSETPOS=-1");
  EXPECT_EQ(rrule(yearly.subject), "FREQ=YEARLY;BYMONTHDAY=12;BYMONTH=3");
  EXPECT_EQ(rrule(daily.subject), "FREQ=DAILY;INTERVAL=2;COUNT=3");
}

TEST(PstCalendarTest, AllDayEventsAreDatesInTheirOwnZone) {
  TempDir dir;
  Appointment a;
  a.subject = "all day in Tonga";
  // 2024-07-01 .. 2024-07-03 (exclusive) at local midnight in UTC+13: 11:00
  // UTC the day before, where the nearest UTC midnight would give the wrong date.
  a.start = Utc(2024, 6, 30, 11);
  a.end = Utc(2024, 7, 2, 11);
  OutMessage m = AppointmentMessage(a);
  m.named.push_back(Named(kAppointment, 0x8215, BoolProp(0, true)));
  // TZStruct: lBias -780 (UTC = local - 13h), standard bias 0, daylight bias -60.
  m.named.push_back(
      Named(kAppointment, 0x8233,
            BinaryProp(0, Le32(static_cast<uint32_t>(-780)) + Le32(0) +
                              Le32(static_cast<uint32_t>(-60)) + std::string(36, '\0'))));
  Appointment b;
  b.subject = "all day in New York";
  b.start = Utc(2024, 1, 15, 5);  // midnight EST
  b.end = Utc(2024, 1, 16, 5);
  OutMessage m2 = AppointmentMessage(b);
  m2.named.push_back(Named(kAppointment, 0x8215, BoolProp(0, true)));
  auto items = WriteAndRead(dir / "d.pst", {m, m2});
  auto p = Props(items[a.subject].pim->text);
  EXPECT_EQ(One(p, "DTSTART;VALUE=DATE"), "20240701");
  EXPECT_EQ(One(p, "DTEND;VALUE=DATE"), "20240703");
  // [MS-OXCICAL] 2.1.3.1.1.20.28: the DATE values say it, not an X- property.
  EXPECT_EQ(One(p, "X-MICROSOFT-CDO-ALLDAYEVENT"), "(absent)");
  auto p2 = Props(items[b.subject].pim->text);
  EXPECT_EQ(One(p2, "DTSTART;VALUE=DATE"), "20240115");
  EXPECT_EQ(One(p2, "DTEND;VALUE=DATE"), "20240116");
}

TEST(PstCalendarTest, MeetingRequestCancelAndReply) {
  TempDir dir;
  Appointment a;
  a.subject = "planning meeting";
  OutMessage req = AppointmentMessage(a, "IPM.Schedule.Meeting.Request");
  std::string goid = GlobalObjectId(2024, 3, 12, std::string("0123456789abcdef", 16));
  req.named.push_back(Named(kMeeting, 0x0003, BinaryProp(0, goid)));
  req.recipients.push_back({Int32Prop(0x0C15, 1), StringProp(0x3001, "Bob, the Builder"),
                            StringProp(0x3003, "bob@example.com"), StringProp(0x3002, "SMTP"),
                            StringProp(0x39FE, "bob@example.com")});
  req.recipients.push_back({Int32Prop(0x0C15, 2), StringProp(0x3001, "Carol"),
                            StringProp(0x3003, "carol@example.com"), StringProp(0x3002, "SMTP"),
                            StringProp(0x39FE, "carol@example.com")});
  Appointment c;
  c.subject = "Canceled: planning meeting";
  OutMessage cancel = AppointmentMessage(c, "IPM.Schedule.Meeting.Canceled");
  cancel.named.push_back(Named(
      kMeeting, 0x0003,
      BinaryProp(0, GlobalObjectId(
                        0, 0, 0, "vCal-Uid" + Le32(1) + std::string("abc-123@example.org", 20)))));
  Appointment y;
  y.subject = "Accepted: planning meeting";
  OutMessage reply = AppointmentMessage(y, "IPM.Schedule.Meeting.Resp.Pos");
  reply.recipients.push_back(
      {Int32Prop(0x0C15, 1), StringProp(0x3001, "Dave"), StringProp(0x39FE, "dave@example.com")});
  OutMessage note;
  note.props = {StringProp(0x001A, "IPM.Note"), StringProp(0x0037, "plain mail"),
                StringProp(0x1000, "text")};
  auto items = WriteAndRead(dir / "m.pst", {req, cancel, reply, note});

  const Rendered& r = items[a.subject];
  ASSERT_TRUE(r.pim.has_value());
  EXPECT_TRUE(r.pim->alternative);
  EXPECT_EQ(r.pim->content_type, "text/calendar; charset=utf-8; method=REQUEST");
  auto p = Props(r.pim->text);
  EXPECT_EQ(One(p, "METHOD"), "REQUEST");
  // [MS-ASEMAIL] 3.1.4.7: the GlobalObjectId in hex with its instance date zeroed.
  std::string clean = goid;
  std::fill(clean.begin() + 16, clean.begin() + 20, '\0');
  EXPECT_EQ(One(p, "UID"), Hex(clean));
  EXPECT_EQ(One(p, "ORGANIZER;CN=Alice Organizer"), "mailto:alice@example.com");
  EXPECT_EQ(One(p,
                "ATTENDEE;CN=\"Bob, the Builder\";ROLE=REQ-PARTICIPANT;PARTSTAT=NEEDS-ACTION;"
                "RSVP=TRUE"),
            "mailto:bob@example.com");
  EXPECT_EQ(One(p, "ATTENDEE;CN=Carol;ROLE=OPT-PARTICIPANT;PARTSTAT=NEEDS-ACTION;RSVP=TRUE"),
            "mailto:carol@example.com");
  // An alternative to the text body, as Outlook sends invitations.
  size_t alt = r.mime.find("multipart/alternative");
  size_t cal = r.mime.find("Content-Type: text/calendar; charset=utf-8; method=REQUEST");
  ASSERT_NE(alt, std::string::npos);
  ASSERT_NE(cal, std::string::npos);
  EXPECT_EQ(r.mime.find("multipart/mixed"), std::string::npos);

  auto pc = Props(items[c.subject].pim->text);
  EXPECT_EQ(One(pc, "METHOD"), "CANCEL");
  EXPECT_EQ(One(pc, "STATUS"), "CANCELLED");
  EXPECT_EQ(One(pc, "UID"), "abc-123@example.org");

  auto pr = Props(items[y.subject].pim->text);
  EXPECT_EQ(One(pr, "METHOD"), "REPLY");
  EXPECT_EQ(One(pr, "ATTENDEE;CN=Alice Organizer;PARTSTAT=ACCEPTED"), "mailto:alice@example.com");
  EXPECT_EQ(One(pr, "ORGANIZER;CN=Dave"), "mailto:dave@example.com");

  EXPECT_FALSE(items["plain mail"].pim.has_value());
  EXPECT_EQ(items["plain mail"].mime.find("text/calendar"), std::string::npos);
}

// ---------------------------------------------------------------------------
// Through mbxmerge into an EML tree: .ics/.vcf beside the .eml, read by
// independent parsers.

bool Exists(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0;
}

// Python with Debian's icalendar and vobject (not a pyenv shim without them).
std::string PythonWithParsers() {
  for (const char* py : {"/usr/bin/python3", "python3"}) {
    auto r = testing::Run({py, "-c", "import icalendar, vobject"});
    if (r.exit_code == 0) return py;
  }
  return "";
}

constexpr char kParseScript[] = R"PY(
import json, sys, icalendar, vobject
for path in sys.argv[1:]:
    data = open(path, 'rb').read()
    out = {'file': path}
    if path.endswith('.ics'):
        cal = icalendar.Calendar.from_ical(data)
        out['method'] = str(cal.get('method', ''))
        ev = [c for c in cal.walk('VEVENT')][0]
        out['summary'] = str(ev.get('summary'))
        out['location'] = str(ev.get('location', ''))
        out['description'] = str(ev.get('description', ''))
        out['uid'] = str(ev.get('uid'))
        out['dtstart'] = ev.decoded('dtstart').isoformat()
        out['dtend'] = ev.decoded('dtend').isoformat() if ev.get('dtend') else ''
        out['rrule'] = ev['rrule'].to_ical().decode() if ev.get('rrule') else ''
        att = ev.get('attendee', [])
        att = att if isinstance(att, list) else [att]
        out['attendees'] = sorted(str(a) for a in att)
        # vobject reads the same file too.
        vobject.readOne(data.decode('utf-8'))
    else:
        card = vobject.readOne(data.decode('utf-8'))
        out['fn'] = card.fn.value
        out['emails'] = [e.value for e in card.contents.get('email', [])]
        out['tels'] = sorted(t.value for t in card.contents.get('tel', []))
        out['org'] = card.org.value if hasattr(card, 'org') else []
        out['title'] = card.title.value if hasattr(card, 'title') else ''
        adr = card.adr.value
        out['street'] = adr.street
        out['city'] = adr.city
        out['bday'] = card.bday.value if hasattr(card, 'bday') else ''
        out['note'] = card.note.value if hasattr(card, 'note') else ''
    print(json.dumps(out))
)PY";

// tests/node, found next to this file.
std::string NodeDir() {
  std::string self = __FILE__;
  return self.substr(0, self.rfind('/')) + "/node";
}

TEST(PstCalendarTest, EmlTreeGetsIcsAndVcfThatIndependentParsersRead) {
  TempDir dir;
  Contact c;
  Appointment a;
  Appointment meeting;
  meeting.subject = "planning meeting";
  OutMessage req = AppointmentMessage(meeting, "IPM.Schedule.Meeting.Request");
  req.recipients.push_back(
      {Int32Prop(0x0C15, 1), StringProp(0x3001, "Bob"), StringProp(0x39FE, "bob@example.com")});
  OutMessage note;
  note.props = {StringProp(0x001A, "IPM.Note"), StringProp(0x0037, "plain mail"),
                StringProp(0x1000, "text")};
  WriteAndRead(dir / "in.pst", {ContactMessage(c), AppointmentMessage(a), req, note});
  auto r = testing::RunMbxmerge({"merge", "--from", dir / "in.pst", "--into",
                                 "eml:" + (dir / "out"), "--dedupe", "none", "-q"});
  ASSERT_EQ(r.exit_code, 0) << r.err;

  // Each .ics/.vcf sits beside its .eml and holds exactly the part the
  // message carries; nothing temporary is left behind.
  std::vector<std::string> pim_files, eml_files;
  for (const std::string& f : testing::ListFilesRecursive(dir / "out")) {
    EXPECT_EQ(f.find(".mbxmerge-tmp"), std::string::npos) << f;
    std::string ext = f.size() > 4 ? f.substr(f.size() - 4) : "";
    if (ext == ".eml") eml_files.push_back(f);
    if (ext == ".ics" || ext == ".vcf") pim_files.push_back(f);
  }
  ASSERT_EQ(eml_files.size(), 4u);
  ASSERT_EQ(pim_files.size(), 3u);
  for (const std::string& f : pim_files) {
    std::string eml = dir / "out" + "/" + f.substr(0, f.size() - 4) + ".eml";
    ASSERT_TRUE(Exists(eml)) << f;
    auto part = pst::FindPimPart(ReadFileOrDie(eml));
    ASSERT_TRUE(part.has_value()) << eml;
    EXPECT_EQ(part->data, ReadFileOrDie(dir / "out" + "/" + f));
    EXPECT_EQ("." + part->extension, f.substr(f.size() - 4));
  }

  std::string py = PythonWithParsers();
  if (py.empty()) {
    GTEST_SKIP() << "python3-icalendar/python3-vobject not installed (make deps installs them)";
  }
  testing::WriteFileOrDie(dir / "parse.py", kParseScript);
  std::vector<std::string> args = {py, dir / "parse.py"};
  for (const std::string& f : pim_files) args.push_back(dir / "out" + "/" + f);
  auto parsed = testing::Run(args);
  ASSERT_EQ(parsed.exit_code, 0) << parsed.err;
  int seen = 0;
  std::istringstream lines(parsed.out);
  std::string line;
  while (std::getline(lines, line)) {
    auto j = nlohmann::json::parse(line);
    std::string file = j["file"];
    SCOPED_TRACE(file);
    ++seen;
    if (file.ends_with(".vcf")) {
      EXPECT_EQ(j["fn"], c.display);
      EXPECT_EQ(j["emails"], (std::vector<std::string>{c.email1, c.email2_smtp, c.email3}));
      std::vector<std::string> tels = {c.business_phone, c.mobile, c.home_fax};
      std::sort(tels.begin(), tels.end());
      EXPECT_EQ(j["tels"], tels);
      EXPECT_EQ(j["org"], (std::vector<std::string>{c.company, c.department}));
      EXPECT_EQ(j["title"], c.title);
      EXPECT_EQ(j["street"], c.street);
      EXPECT_EQ(j["city"], c.city);
      EXPECT_EQ(j["bday"], c.birthday_date);
      std::string note = c.note;
      note.erase(note.find('\r'), 1);
      EXPECT_EQ(j["note"], note);
    } else if (j["summary"] == a.subject) {
      EXPECT_EQ(j["method"], "PUBLISH");
      EXPECT_EQ(j["location"], a.location);
      EXPECT_EQ(j["description"], a.body);
      EXPECT_EQ(j["dtstart"], IsoUtc(a.start));
      EXPECT_EQ(j["dtend"], IsoUtc(a.end));
    } else {
      EXPECT_EQ(j["summary"], meeting.subject);
      EXPECT_EQ(j["method"], "REQUEST");
      EXPECT_EQ(j["attendees"], std::vector<std::string>{"mailto:bob@example.com"});
      EXPECT_EQ(j["dtstart"], IsoUtc(meeting.start));
    }
  }
  EXPECT_EQ(seen, 3);

  // mailparser still parses every message, finds the text body and the
  // calendar/vCard part.
  if (!HaveProgram("node") || !Exists(NodeDir() + "/node_modules/mailparser")) {
    GTEST_SKIP() << "node or tests/node/node_modules/mailparser missing (make deps)";
  }
  std::vector<std::string> nargs = {"node", NodeDir() + "/parse_mail.js"};
  for (const std::string& f : eml_files) nargs.push_back(dir / "out" + "/" + f);
  auto mp = testing::Run(nargs);
  ASSERT_EQ(mp.exit_code, 0) << mp.err;
  std::istringstream mlines(mp.out);
  int checked = 0;
  while (std::getline(mlines, line)) {
    auto j = nlohmann::json::parse(line);
    std::set<std::string> types;
    for (const auto& att : j["attachments"]) types.insert(att["contentType"].get<std::string>());
    std::string subject = j["subject"];
    SCOPED_TRACE(subject);
    if (subject == c.display) {
      EXPECT_TRUE(types.count("text/vcard"));
      EXPECT_NE(j["text"].get<std::string>().find("Line two"), std::string::npos);
    } else if (subject == a.subject || subject == meeting.subject) {
      EXPECT_TRUE(types.count("text/calendar"));
      EXPECT_NE(j["text"].get<std::string>().find("Agenda:"), std::string::npos);
    } else {
      EXPECT_TRUE(types.empty());
    }
    ++checked;
  }
  EXPECT_EQ(checked, 4);
}

// ---------------------------------------------------------------------------
// Real Outlook data against readpst

struct Event {
  std::string summary, dtstart, dtend, uid;
  bool all_day = false;
};

// VEVENTs of any text (readpst's .calendar files, its mbox files, our .ics).
std::vector<Event> ParseEvents(const std::string& text) {
  std::vector<Event> out;
  std::string unfolded = std::regex_replace(text, std::regex("\r?\n[ \t]"), "");
  std::regex line_re("([A-Z-]+)((?:;[^:\r\n]*)?):([^\r\n]*)");
  Event cur;
  bool in = false;
  size_t pos = 0;
  while (pos < unfolded.size()) {
    size_t eol = unfolded.find('\n', pos);
    std::string l = unfolded.substr(pos, eol == std::string::npos ? eol : eol - pos);
    if (!l.empty() && l.back() == '\r') l.pop_back();
    pos = eol == std::string::npos ? unfolded.size() : eol + 1;
    std::smatch m;
    if (!std::regex_match(l, m, line_re)) continue;
    std::string name = m[1], params = m[2], value = m[3];
    if (name == "BEGIN" && value == "VEVENT") {
      cur = Event();
      in = true;
    } else if (name == "END" && value == "VEVENT" && in) {
      out.push_back(cur);
      in = false;
    } else if (in && name == "SUMMARY") {
      cur.summary = value;
    } else if (in && name == "UID") {
      cur.uid = value;
    } else if (in && (name == "DTSTART" || name == "DTEND")) {
      (name == "DTSTART" ? cur.dtstart : cur.dtend) = value;
      if (params.find("VALUE=DATE") != std::string::npos &&
          params.find("VALUE=DATE-TIME") == std::string::npos)
        cur.all_day = true;
    }
  }
  return out;
}

// readpst writes all-day events as the UTC instant of local midnight; ours
// are DATE values. The instant names our date when it lies within 14 hours
// of that date's UTC midnight (every zone's offset is smaller).
bool SameTime(const std::string& ours, bool ours_is_date, const std::string& theirs) {
  if (!ours_is_date) return ours == theirs;
  struct tm a {
  }, b{};
  if (!strptime(ours.c_str(), "%Y%m%d", &a) || !strptime(theirs.c_str(), "%Y%m%dT%H%M%SZ", &b))
    return false;
  return std::llabs(static_cast<long long>(timegm(&b) - timegm(&a))) <= 14 * 3600;
}

TEST(PstCalendarTest, RealOstCalendarItemsMatchReadpst) {
  std::string data = testing::SharedDataDir();
  if (data.empty()) GTEST_SKIP() << "shared Outlook files not found";
  std::string ost = data + "/outlook/pstextractortest@outlook.com.ost";
  if (!Exists(ost)) GTEST_SKIP() << ost << " not found";
  if (!HaveProgram("readpst")) GTEST_SKIP() << "readpst (pst-utils) not installed";
  TempDir dir;
  auto r = testing::RunMbxmerge(
      {"merge", "--from", ost, "--into", "eml:" + (dir / "eml"), "--dedupe", "none", "-q"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::vector<Event> ours;
  std::vector<std::string> ics_files;
  for (const std::string& f : testing::ListFilesRecursive(dir / "eml")) {
    if (!f.ends_with(".ics")) continue;
    ics_files.push_back(dir / "eml" + "/" + f);
    auto ev = ParseEvents(ReadFileOrDie(dir / "eml" + "/" + f));
    ASSERT_EQ(ev.size(), 1u) << f;
    ours.push_back(ev[0]);
  }
  ASSERT_GT(ours.size(), 10u);

  // readpst -D (Deleted Items too) writes appointments to "<folder>.calendar"
  // and meeting messages into the mbox files, each VEVENT once or twice (the
  // inline part and the attached copy), its UID the item's node id.
  ASSERT_TRUE(testing::Run({"mkdir", "-p", dir / "rp"}).exit_code == 0);
  auto rp = testing::Run({"readpst", "-q", "-D", "-j", "0", "-o", dir / "rp", ost});
  ASSERT_EQ(rp.exit_code, 0) << rp.err;
  std::map<std::string, Event> theirs;  // by readpst's UID: one per item
  for (const std::string& f : testing::ListFilesRecursive(dir / "rp")) {
    for (const Event& e : ParseEvents(ReadFileOrDie(dir / "rp" + "/" + f))) theirs[e.uid] = e;
  }
  ASSERT_EQ(ours.size(), theirs.size());

  // Pair every one of ours with one of readpst's: same SUMMARY, DTSTART, DTEND.
  std::vector<Event> pool;
  for (const auto& [uid, e] : theirs) pool.push_back(e);
  for (const Event& e : ours) {
    SCOPED_TRACE(e.summary + " " + e.dtstart);
    auto it = std::find_if(pool.begin(), pool.end(), [&](const Event& t) {
      return t.summary == e.summary && SameTime(e.dtstart, e.all_day, t.dtstart) &&
             SameTime(e.dtend, e.all_day, t.dtend);
    });
    EXPECT_NE(it, pool.end()) << "no readpst VEVENT for it";
    if (it != pool.end()) {
      // readpst's UID is its node id ("0x9c78"), not the item's GlobalObjectId;
      // compare only a real one.
      if (!it->uid.starts_with("0x")) {
        EXPECT_EQ(e.uid, it->uid);
      }
      pool.erase(it);
    }
    EXPECT_FALSE(e.uid.empty());
  }
  EXPECT_TRUE(pool.empty());

  // Every file parses with python3-icalendar.
  std::string py = PythonWithParsers();
  if (py.empty()) GTEST_SKIP() << "python3-icalendar/python3-vobject not installed";
  testing::WriteFileOrDie(dir / "parse.py", kParseScript);
  std::vector<std::string> args = {py, dir / "parse.py"};
  args.insert(args.end(), ics_files.begin(), ics_files.end());
  auto parsed = testing::Run(args);
  ASSERT_EQ(parsed.exit_code, 0) << parsed.err;
  EXPECT_EQ(static_cast<size_t>(std::count(parsed.out.begin(), parsed.out.end(), '\n')),
            ics_files.size());
}

}  // namespace
}  // namespace mbx
