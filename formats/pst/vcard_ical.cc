#include "formats/pst/vcard_ical.h"

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdio>
#include <map>
#include <utility>
#include <vector>

#include "formats/mime/mime.h"
#include "formats/pst/mapi_to_mime.h"

namespace mbx::pst {
namespace {

// Property sets ([MS-OXPROPS] 1.3.2), as the name-to-id map stores GUIDs
// (the first three fields little-endian).
const std::string kPsetidAddress("\x04\x20\x06\x00\x00\x00\x00\x00\xC0\x00\x00\x00\x00\x00\x00\x46",
                                 16);
const std::string kPsetidAppointment(
    "\x02\x20\x06\x00\x00\x00\x00\x00\xC0\x00\x00\x00\x00\x00\x00\x46", 16);
const std::string kPsetidCommon("\x08\x20\x06\x00\x00\x00\x00\x00\xC0\x00\x00\x00\x00\x00\x00\x46",
                                16);
const std::string kPsetidMeeting("\x90\xDA\xD8\x6E\x0B\x45\x1B\x10\x98\xDA\x00\xAA\x00\x3F\x13\x05",
                                 16);

// Named properties by long id.
enum : uint32_t {
  // PSETID_Address ([MS-OXOCNTC] 2.2.1)
  kLidFileUnder = 0x8005,
  kLidWorkAddressStreet = 0x8045,
  kLidWorkAddressCity = 0x8046,
  kLidWorkAddressState = 0x8047,
  kLidWorkAddressPostalCode = 0x8048,
  kLidWorkAddressCountry = 0x8049,
  kLidWorkAddressPostOfficeBox = 0x804A,
  kLidInstantMessagingAddress = 0x8062,
  kLidEmail1OriginalDisplayName = 0x8084,
  kLidEmail1EmailAddress = 0x8083,
  kLidEmail2EmailAddress = 0x8093,
  kLidEmail2OriginalDisplayName = 0x8094,
  kLidEmail3EmailAddress = 0x80A3,
  kLidEmail3OriginalDisplayName = 0x80A4,
  kLidBirthdayLocal = 0x80DE,
  // PSETID_Appointment ([MS-OXOCAL] 2.2.1)
  kLidBusyStatus = 0x8205,
  kLidLocation = 0x8208,
  kLidApptStartWhole = 0x820D,
  kLidApptEndWhole = 0x820E,
  kLidApptSubType = 0x8215,  // all-day event
  kLidApptRecur = 0x8216,
  kLidApptSequence = 0x8201,
  kLidTimeZoneStruct = 0x8233,
  // PSETID_Common ([MS-OXORMDR])
  kLidReminderDelta = 0x8501,
  kLidReminderSet = 0x8503,
  // PSETID_Meeting
  kLidGlobalObjectId = 0x0003,
};

// Tags of contacts ([MS-OXOCNTC] 2.2.1) and others the renderers read.
enum : uint16_t {
  kPidGeneration = 0x3A05,
  kPidGivenName = 0x3A06,
  kPidBusinessPhone = 0x3A08,
  kPidHomePhone = 0x3A09,
  kPidSurname = 0x3A11,
  kPidCompanyName = 0x3A16,
  kPidTitle = 0x3A17,
  kPidDepartmentName = 0x3A18,
  kPidPrimaryPhone = 0x3A1A,
  kPidBusiness2Phone = 0x3A1B,
  kPidMobilePhone = 0x3A1C,
  kPidCarPhone = 0x3A1E,
  kPidOtherPhone = 0x3A1F,
  kPidPagerPhone = 0x3A21,
  kPidPrimaryFax = 0x3A23,
  kPidBusinessFax = 0x3A24,
  kPidHomeFax = 0x3A25,
  kPidCountry = 0x3A26,
  kPidLocality = 0x3A27,
  kPidStateOrProvince = 0x3A28,
  kPidStreetAddress = 0x3A29,
  kPidPostalCode = 0x3A2A,
  kPidPostOfficeBox = 0x3A2B,
  kPidIsdn = 0x3A2D,
  kPidAssistantPhone = 0x3A2E,
  kPidHome2Phone = 0x3A2F,
  kPidBirthday = 0x3A42,
  kPidMiddleName = 0x3A44,
  kPidDisplayNamePrefix = 0x3A45,
  kPidNickname = 0x3A4F,
  kPidPersonalHomePage = 0x3A50,
  kPidBusinessHomePage = 0x3A51,
  kPidCompanyMainPhone = 0x3A57,
  kPidHomeAddressCity = 0x3A59,
  kPidHomeAddressCountry = 0x3A5A,
  kPidHomeAddressPostalCode = 0x3A5B,
  kPidHomeAddressState = 0x3A5C,
  kPidHomeAddressStreet = 0x3A5D,
  kPidHomeAddressPostOfficeBox = 0x3A5E,
  kPidOtherAddressCity = 0x3A5F,
  kPidOtherAddressCountry = 0x3A60,
  kPidOtherAddressPostalCode = 0x3A61,
  kPidOtherAddressState = 0x3A62,
  kPidOtherAddressStreet = 0x3A63,
  kPidOtherAddressPostOfficeBox = 0x3A64,
  kPidStartDate = 0x0060,
  kPidEndDate = 0x0061,
  kPidRecipientFlags = 0x5FFD,
};

constexpr int64_t kDay = 86400;
// Minutes from 1601-01-01 to 1970-01-01 (the recurrence blob's dates).
constexpr int64_t kMinutes1601To1970 = 11644473600LL / 60;

// The ids named properties have in one message.
class Named {
 public:
  explicit Named(const PropertyBag& bag) : bag_(bag) {
    for (const auto& [id, v] : bag.all()) {
      if (v.name && !v.name->is_string) ids_[{v.name->guid, v.name->lid}] = id;
    }
  }
  std::optional<uint16_t> Id(const std::string& set, uint32_t lid) const {
    auto it = ids_.find({set, lid});
    if (it == ids_.end()) return std::nullopt;
    return it->second;
  }
  std::string String(const std::string& set, uint32_t lid) const {
    auto id = Id(set, lid);
    return id ? bag_.StringOr(*id) : "";
  }
  std::optional<int64_t> Int(const std::string& set, uint32_t lid) const {
    auto id = Id(set, lid);
    return id ? bag_.Int(*id) : std::nullopt;
  }
  std::optional<int64_t> Time(const std::string& set, uint32_t lid) const {
    auto id = Id(set, lid);
    return id ? bag_.UnixTime(*id) : std::nullopt;
  }
  std::optional<std::string_view> Bytes(const std::string& set, uint32_t lid) const {
    auto id = Id(set, lid);
    return id ? bag_.Bytes(*id) : std::nullopt;
  }

 private:
  const PropertyBag& bag_;
  std::map<std::pair<std::string, uint32_t>, uint16_t> ids_;
};

// ---------------------------------------------------------------------------
// Content lines (RFC 5545 3.1, RFC 2426 2.6)

// A TEXT value: backslash, semicolon, comma and newline escaped; CR dropped
// (CRLF is one newline); other control characters become spaces.
std::string Escape(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 8);
  for (char c : s) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case ';':
        out += "\\;";
        break;
      case ',':
        out += "\\,";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        break;
      default:
        out.push_back((static_cast<unsigned char>(c) < 32 && c != '\t') || c == 127 ? ' ' : c);
    }
  }
  return out;
}

// A parameter value: quoted when it holds ':', ';' or ','; DQUOTE and controls
// cannot appear at all (RFC 5545 3.1 param-value).
std::string ParamValue(std::string_view s) {
  std::string v;
  for (char c : s) {
    if (c == '"' || static_cast<unsigned char>(c) < 32 || c == 127) continue;
    v.push_back(c);
  }
  if (v.find_first_of(":;,") != std::string::npos) return "\"" + v + "\"";
  return v;
}

size_t Utf8Len(unsigned char c) {
  if (c >= 0xf0 && c < 0xf8) return 4;
  if (c >= 0xe0 && c < 0xf0) return 3;
  if (c >= 0xc0 && c < 0xe0) return 2;
  return 1;
}

// Appends `line` folded at 75 octets (continuations start with one space,
// which counts), never inside a UTF-8 sequence, with CRLF.
void AddLine(std::string* out, std::string_view line) {
  size_t col = 0;
  size_t i = 0;
  while (i < line.size()) {
    size_t n = std::min(Utf8Len(static_cast<unsigned char>(line[i])), line.size() - i);
    if (col + n > 75) {
      out->append("\r\n ");
      col = 1;
    }
    out->append(line.substr(i, n));
    col += n;
    i += n;
  }
  out->append("\r\n");
}

void AddText(std::string* out, std::string_view name, std::string_view value) {
  if (value.empty()) return;
  AddLine(out, std::string(name) + ":" + Escape(value));
}

std::string Trim(std::string_view s) {
  size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string_view::npos) return "";
  size_t e = s.find_last_not_of(" \t\r\n");
  return std::string(s.substr(b, e - b + 1));
}

bool LooksLikeSmtp(std::string_view a) {
  return a.find('@') != std::string_view::npos && !a.empty() && a.front() != '/' &&
         a.find_first_of(" \t\r\n<>,;:\"") == std::string_view::npos;
}

// ---------------------------------------------------------------------------
// Times

struct Ymd {
  int y, m, d;
};

// Days since 1970-01-01 -> civil date (proleptic Gregorian).
Ymd CivilFromDays(int64_t z) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const int64_t doe = z - era * 146097;
  const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const int64_t mp = (5 * doy + 2) / 153;
  const int d = static_cast<int>(doy - (153 * mp + 2) / 5 + 1);
  const int m = static_cast<int>(mp < 10 ? mp + 3 : mp - 9);
  return {static_cast<int>(yoe + era * 400 + (m <= 2)), m, d};
}

int64_t FloorDiv(int64_t a, int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); }

std::string FormatDate(int64_t days, bool dashes = false) {
  Ymd c = CivilFromDays(days);
  char buf[16];
  std::snprintf(buf, sizeof buf, dashes ? "%04d-%02d-%02d" : "%04d%02d%02d", c.y, c.m, c.d);
  return buf;
}

std::string FormatUtc(int64_t t) {
  int64_t days = FloorDiv(t, kDay);
  int64_t sec = t - days * kDay;
  char buf[24];
  std::snprintf(buf, sizeof buf, "T%02d%02d%02dZ", static_cast<int>(sec / 3600),
                static_cast<int>(sec / 60 % 60), static_cast<int>(sec % 60));
  return FormatDate(days) + buf;
}

// The local date of an instant that is a local midnight (all-day events,
// birthdays), in days since the epoch. Outlook stores those as the UTC time
// of midnight in the creator's zone: PidLidTimeZoneStruct's standard and
// daylight biases say which offsets to try; without it (or when neither
// lands on midnight) the nearest midnight is taken, right for UTC-12..+12.
int64_t LocalMidnightDay(int64_t utc, std::optional<std::string_view> tz_struct) {
  if (tz_struct && tz_struct->size() >= 12) {
    auto le32 = [&](size_t at) {
      const auto* p = reinterpret_cast<const unsigned char*>(tz_struct->data() + at);
      return static_cast<int32_t>(p[0] | (p[1] << 8) | (p[2] << 16) |
                                  (static_cast<uint32_t>(p[3]) << 24));
    };
    int32_t bias = le32(0);  // minutes: UTC = local + bias
    for (int32_t extra : {le32(4), le32(8)}) {
      int64_t local = utc - static_cast<int64_t>(bias + extra) * 60;
      if (local % kDay == 0) return local / kDay;
    }
  }
  return FloorDiv(utc + kDay / 2, kDay);
}

// ---------------------------------------------------------------------------
// vCard

std::string VCardAddress(const PropertyBag& p, const Named& named, uint16_t pobox, uint16_t street,
                         uint16_t city, uint16_t state, uint16_t postal, uint16_t country,
                         const std::array<uint32_t, 6>* fallback) {
  std::array<std::string, 6> parts = {p.StringOr(pobox), p.StringOr(street), p.StringOr(city),
                                      p.StringOr(state), p.StringOr(postal), p.StringOr(country)};
  for (size_t i = 0; fallback != nullptr && i < parts.size(); ++i) {
    if (parts[i].empty()) parts[i] = named.String(kPsetidAddress, (*fallback)[i]);
  }
  if (std::all_of(parts.begin(), parts.end(), [](const std::string& s) { return s.empty(); }))
    return "";
  // ADR: post office box; extended address; street; locality; region; code; country.
  return Escape(parts[0]) + ";;" + Escape(parts[1]) + ";" + Escape(parts[2]) + ";" +
         Escape(parts[3]) + ";" + Escape(parts[4]) + ";" + Escape(parts[5]);
}

}  // namespace

std::string RenderVCard(const MapiMessage& m) {
  const PropertyBag& p = m.props;
  Named named(p);
  std::string out;
  AddLine(&out, "BEGIN:VCARD");
  AddLine(&out, "VERSION:3.0");
  AddLine(&out, "PRODID:" + std::string(kPimProdId));

  std::string given = p.StringOr(kPidGivenName), surname = p.StringOr(kPidSurname);
  std::string middle = p.StringOr(kPidMiddleName), prefix = p.StringOr(kPidDisplayNamePrefix);
  std::string suffix = p.StringOr(kPidGeneration);
  std::vector<std::string> emails;
  for (auto [addr, orig] : {std::pair{kLidEmail1EmailAddress, kLidEmail1OriginalDisplayName},
                            {kLidEmail2EmailAddress, kLidEmail2OriginalDisplayName},
                            {kLidEmail3EmailAddress, kLidEmail3OriginalDisplayName}}) {
    // An Exchange (EX) address keeps the SMTP form in the original display name.
    std::string a = Trim(named.String(kPsetidAddress, addr));
    if (!LooksLikeSmtp(a)) a = Trim(named.String(kPsetidAddress, orig));
    if (LooksLikeSmtp(a) && std::find(emails.begin(), emails.end(), a) == emails.end())
      emails.push_back(a);
  }
  // FN and N are both required in vCard 3.0.
  std::string fn = Trim(p.StringOr(kPidDisplayName));
  if (fn.empty()) fn = Trim(named.String(kPsetidAddress, kLidFileUnder));
  if (fn.empty()) fn = Trim(given + " " + surname);
  if (fn.empty()) fn = Trim(p.StringOr(kPidSubject));
  if (fn.empty() && !emails.empty()) fn = emails[0];
  AddLine(&out, "FN:" + Escape(fn));
  AddLine(&out, "N:" + Escape(surname) + ";" + Escape(given) + ";" + Escape(middle) + ";" +
                    Escape(prefix) + ";" + Escape(suffix));
  AddText(&out, "NICKNAME", p.StringOr(kPidNickname));
  std::string company = p.StringOr(kPidCompanyName), dept = p.StringOr(kPidDepartmentName);
  if (!company.empty() || !dept.empty())
    AddLine(&out, "ORG:" + Escape(company) + (dept.empty() ? "" : ";" + Escape(dept)));
  AddText(&out, "TITLE", p.StringOr(kPidTitle));
  for (size_t i = 0; i < emails.size(); ++i)
    AddLine(&out,
            std::string("EMAIL;TYPE=INTERNET") + (i == 0 ? ",PREF" : "") + ":" + Escape(emails[i]));
  static constexpr std::pair<uint16_t, std::string_view> kPhones[] = {
      {kPidPrimaryPhone, "PREF,VOICE"},
      {kPidBusinessPhone, "WORK,VOICE"},
      {kPidBusiness2Phone, "WORK,VOICE"},
      {kPidCompanyMainPhone, "WORK,VOICE"},
      {kPidHomePhone, "HOME,VOICE"},
      {kPidHome2Phone, "HOME,VOICE"},
      {kPidMobilePhone, "CELL,VOICE"},
      {kPidCarPhone, "CAR,VOICE"},
      {kPidOtherPhone, "VOICE"},
      {kPidAssistantPhone, "VOICE"},
      {kPidPagerPhone, "PAGER"},
      {kPidIsdn, "ISDN"},
      {kPidBusinessFax, "WORK,FAX"},
      {kPidHomeFax, "HOME,FAX"},
      {kPidPrimaryFax, "FAX"}};
  for (const auto& [id, type] : kPhones) {
    std::string tel = Trim(p.StringOr(id));
    if (!tel.empty()) AddLine(&out, "TEL;TYPE=" + std::string(type) + ":" + Escape(tel));
  }
  static constexpr std::array<uint32_t, 6> kWorkNamed = {
      kLidWorkAddressPostOfficeBox, kLidWorkAddressStreet,     kLidWorkAddressCity,
      kLidWorkAddressState,         kLidWorkAddressPostalCode, kLidWorkAddressCountry};
  std::string work = VCardAddress(p, named, kPidPostOfficeBox, kPidStreetAddress, kPidLocality,
                                  kPidStateOrProvince, kPidPostalCode, kPidCountry, &kWorkNamed);
  if (!work.empty()) AddLine(&out, "ADR;TYPE=WORK:" + work);
  std::string home = VCardAddress(p, named, kPidHomeAddressPostOfficeBox, kPidHomeAddressStreet,
                                  kPidHomeAddressCity, kPidHomeAddressState,
                                  kPidHomeAddressPostalCode, kPidHomeAddressCountry, nullptr);
  if (!home.empty()) AddLine(&out, "ADR;TYPE=HOME:" + home);
  std::string other = VCardAddress(p, named, kPidOtherAddressPostOfficeBox, kPidOtherAddressStreet,
                                   kPidOtherAddressCity, kPidOtherAddressState,
                                   kPidOtherAddressPostalCode, kPidOtherAddressCountry, nullptr);
  if (!other.empty()) AddLine(&out, "ADR;TYPE=POSTAL:" + other);
  // PidLidBirthdayLocal is midnight UTC of the date; PidTagBirthday midnight
  // in the zone it was entered in.
  if (auto b = named.Time(kPsetidAddress, kLidBirthdayLocal)) {
    AddLine(&out, "BDAY:" + FormatDate(FloorDiv(*b + kDay / 2, kDay), true));
  } else if (auto b2 = p.UnixTime(kPidBirthday)) {
    AddLine(&out, "BDAY:" + FormatDate(LocalMidnightDay(*b2, std::nullopt), true));
  }
  AddText(&out, "URL", Trim(p.StringOr(kPidBusinessHomePage)));
  if (p.StringOr(kPidBusinessHomePage).empty())
    AddText(&out, "URL", Trim(p.StringOr(kPidPersonalHomePage)));
  std::string im = Trim(named.String(kPsetidAddress, kLidInstantMessagingAddress));
  AddText(&out, "X-MS-IMADDRESS", im);
  AddText(&out, "NOTE", Trim(p.StringOr(kPidBody)));
  AddLine(&out, "END:VCARD");
  return out;
}

namespace {

// ---------------------------------------------------------------------------
// Recurrence ([MS-OXOCAL] 2.2.1.44.1 RecurrencePattern)

class Reader {
 public:
  explicit Reader(std::string_view s) : s_(s) {}
  bool U16(uint32_t* v) { return Take(2, v); }
  bool U32(uint32_t* v) { return Take(4, v); }
  bool Skip(size_t n) {
    if (pos_ + n > s_.size()) return false;
    pos_ += n;
    return true;
  }

 private:
  bool Take(size_t n, uint32_t* v) {
    if (pos_ + n > s_.size()) return false;
    *v = 0;
    for (size_t i = 0; i < n; ++i)
      *v |= static_cast<uint32_t>(static_cast<unsigned char>(s_[pos_ + i])) << (8 * i);
    pos_ += n;
    return true;
  }
  std::string_view s_;
  size_t pos_ = 0;
};

constexpr std::string_view kDays[] = {"SU", "MO", "TU", "WE", "TH", "FR", "SA"};

std::string ByDay(uint32_t mask) {
  std::string out;
  for (int d = 0; d < 7; ++d) {
    if (mask & (1u << d)) out += (out.empty() ? "" : ",") + std::string(kDays[d]);
  }
  return out;
}

// The RRULE value of a recurrence blob; "" when the pattern is not one we can
// express faithfully (non-Gregorian calendars, unknown types, a cut blob).
// `start_utc` is the series' first start; `all_day` makes UNTIL a DATE.
std::string RecurrenceRule(std::string_view blob, int64_t start_utc, bool all_day) {
  Reader r(blob);
  uint32_t reader_version, writer_version, freq, type, calendar, first_dt, period, sliding;
  if (!r.U16(&reader_version) || !r.U16(&writer_version) || !r.U16(&freq) || !r.U16(&type) ||
      !r.U16(&calendar) || !r.U32(&first_dt) || !r.U32(&period) || !r.U32(&sliding)) {
    return "";
  }
  if (reader_version != 0x3004 || (calendar != 0 && calendar != 1)) return "";
  uint32_t days_mask = 0, day_of_month = 0, nth = 0;
  switch (type) {
    case 0x0:  // Day
      break;
    case 0x1:  // Week
      if (!r.U32(&days_mask)) return "";
      break;
    case 0x2:  // Month
    case 0x4:  // MonthEnd
      if (!r.U32(&day_of_month)) return "";
      break;
    case 0x3:  // MonthNth
      if (!r.U32(&days_mask) || !r.U32(&nth)) return "";
      break;
    default:  // Hijri patterns
      return "";
  }
  uint32_t end_type, count, first_dow, deleted, modified, start_date, end_date;
  if (!r.U32(&end_type) || !r.U32(&count) || !r.U32(&first_dow) || !r.U32(&deleted) ||
      !r.Skip(size_t{4} * deleted) || !r.U32(&modified) || !r.Skip(size_t{4} * modified) ||
      !r.U32(&start_date) || !r.U32(&end_date)) {
    return "";
  }
  // AppointmentRecurrencePattern (2.2.1.44.3) goes on with the local start
  // time of day, which with StartDate gives the zone offset at the start.
  uint32_t reader2 = 0, writer2 = 0, start_offset = 0;
  bool have_offset = r.U32(&reader2) && r.U32(&writer2) && r.U32(&start_offset);

  std::string rule;
  int64_t start_days = static_cast<int64_t>(start_date) / 1440 - kMinutes1601To1970 / 1440;
  Ymd start_civil = CivilFromDays(start_days);
  switch (freq) {
    case 0x200A:  // daily: Period in minutes, or every weekday (Week pattern)
      if (type == 0x0) {
        if (period == 0 || period % 1440 != 0) return "";
        rule = "FREQ=DAILY";
        if (period / 1440 > 1) rule += ";INTERVAL=" + std::to_string(period / 1440);
      } else if (type == 0x1) {
        rule = "FREQ=WEEKLY;BYDAY=" + ByDay(days_mask);
      } else {
        return "";
      }
      break;
    case 0x200B:  // weekly: Period in weeks
      if (type != 0x1 || days_mask == 0) return "";
      rule = "FREQ=WEEKLY";
      if (period > 1) rule += ";INTERVAL=" + std::to_string(period);
      rule += ";BYDAY=" + ByDay(days_mask);
      if (period > 1 && first_dow < 7) rule += ";WKST=" + std::string(kDays[first_dow]);
      break;
    case 0x200C:  // monthly: Period in months
    case 0x200D:  // yearly: Period in months (12)
    {
      bool yearly = freq == 0x200D;
      uint32_t interval = yearly ? period / 12 : period;
      if (interval == 0) return "";
      rule = yearly ? "FREQ=YEARLY" : "FREQ=MONTHLY";
      if (interval > 1) rule += ";INTERVAL=" + std::to_string(interval);
      if (type == 0x2) {
        if (day_of_month < 1 || day_of_month > 31) return "";
        rule += ";BYMONTHDAY=" + std::to_string(day_of_month);
      } else if (type == 0x4) {
        rule += ";BYMONTHDAY=-1";
      } else if (type == 0x3) {
        if (days_mask == 0 || nth < 1 || nth > 5) return "";
        rule +=
            ";BYDAY=" + ByDay(days_mask) + ";BYSETPOS=" + (nth == 5 ? "-1" : std::to_string(nth));
      } else {
        return "";
      }
      if (yearly) rule += ";BYMONTH=" + std::to_string(start_civil.m);
      break;
    }
    default:
      return "";
  }
  if (end_type == 0x2022) {
    if (count == 0) return "";
    rule += ";COUNT=" + std::to_string(count);
  } else if (end_type == 0x2021) {
    int64_t end_days = static_cast<int64_t>(end_date) / 1440 - kMinutes1601To1970 / 1440;
    if (all_day) {
      rule += ";UNTIL=" + FormatDate(end_days);
    } else if (have_offset) {
      // The last instance starts at the series' local time of day on EndDate;
      // the zone offset is the one at the series' start (DTSTART is in UTC,
      // so every instance keeps that offset anyway).
      int64_t local_start =
          (static_cast<int64_t>(start_date) + start_offset) * 60 - kMinutes1601To1970 * 60;
      int64_t offset = local_start - start_utc;
      rule +=
          ";UNTIL=" + FormatUtc(end_days * kDay + static_cast<int64_t>(start_offset) * 60 - offset);
    } else {
      rule += ";UNTIL=" + FormatUtc(end_days * kDay + kDay - 1);
    }
  }  // 0x2023 and 0xFFFFFFFF: no end.
  return rule;
}

// The UID of a Calendar object ([MS-OXCICAL] 2.1.3.1.1.20.26, [MS-ASEMAIL]
// 3.1.4.7): a third-party UID carried after "vCal-Uid", else the hex of
// PidLidGlobalObjectId with its instance date zeroed (one UID for a series).
std::string UidOf(std::string_view goid) {
  if (goid.size() >= 40 + 12 && goid.substr(40, 8) == "vCal-Uid") {
    std::string_view rest = goid.substr(52);
    size_t nul = rest.find('\0');
    std::string uid(rest.substr(0, nul));
    if (!uid.empty()) return uid;
  }
  std::string g(goid);
  if (g.size() >= 20) std::fill(g.begin() + 16, g.begin() + 20, '\0');
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : g) {
    out.push_back(kHex[c >> 4]);
    out.push_back(kHex[c & 15]);
  }
  return out;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  return out;
}

std::string SmtpOf(const PropertyBag& b, uint16_t smtp, uint16_t email) {
  std::string s = Trim(b.StringOr(smtp));
  if (LooksLikeSmtp(s)) return s;
  s = Trim(b.StringOr(email));
  return LooksLikeSmtp(s) ? s : "";
}

// "ORGANIZER;CN=...:mailto:..." and the like; Outlook writes "invalid:nomail"
// for a participant without an address, which keeps the name.
std::string CalAddress(std::string_view prop, std::string params, std::string_view name,
                       std::string_view addr) {
  std::string line(prop);
  std::string n = Trim(name);
  if (!n.empty()) line += ";CN=" + ParamValue(n);
  line += params;
  line += ":";
  line += addr.empty() ? "invalid:nomail" : "mailto:" + std::string(addr);
  return line;
}

std::string BodyText(const MapiMessage& m) {
  if (auto b = m.props.String(kPidBody)) return Trim(*b);
  if (auto rtfc = m.props.Bytes(kPidRtfCompressed)) {
    auto rtf = DecompressRtf(*rtfc);
    if (rtf.ok()) {
      DecodedRtf d = DeEncapsulateRtf(*rtf);
      if (d.kind == DecodedRtf::Kind::kText) return Trim(d.body);
    }
  }
  return "";
}

}  // namespace

std::string RenderICalendar(const MapiMessage& m, std::string_view method) {
  const PropertyBag& p = m.props;
  Named named(p);
  std::string cls = p.StringOr(kPidMessageClass);
  std::string out;
  AddLine(&out, "BEGIN:VCALENDAR");
  AddLine(&out, "PRODID:" + std::string(kPimProdId));
  AddLine(&out, "VERSION:2.0");
  AddLine(&out, "METHOD:" + std::string(method));
  AddLine(&out, "BEGIN:VEVENT");

  std::optional<int64_t> start = named.Time(kPsetidAppointment, kLidApptStartWhole);
  if (!start) start = p.UnixTime(kPidStartDate);
  std::optional<int64_t> end = named.Time(kPsetidAppointment, kLidApptEndWhole);
  if (!end) end = p.UnixTime(kPidEndDate);
  bool all_day = named.Int(kPsetidAppointment, kLidApptSubType).value_or(0) != 0 && start;
  auto tz = named.Bytes(kPsetidAppointment, kLidTimeZoneStruct);

  std::string uid;
  if (auto goid = named.Bytes(kPsetidMeeting, kLidGlobalObjectId); goid && goid->size() >= 16)
    uid = UidOf(*goid);
  if (uid.empty()) {
    // No GlobalObjectId (a plain appointment from an old client): a stable
    // id from what identifies the item, so re-exports keep it.
    std::string key(p.Bytes(kPidSearchKey).value_or(""));
    key += "|" + p.StringOr(kPidSubject) + "|" + std::to_string(start.value_or(0)) + "|" +
           std::to_string(p.UnixTime(kPidCreationTime).value_or(0));
    uid = "mbxmerge-" + Hex64(Fnv1a(key));
  }
  AddLine(&out, "UID:" + Escape(uid));
  // DTSTAMP is required; the item's own times keep the output deterministic.
  std::optional<int64_t> stamp = p.UnixTime(kPidLastModificationTime);
  if (!stamp) stamp = p.UnixTime(kPidCreationTime);
  if (!stamp) stamp = p.UnixTime(kPidClientSubmitTime);
  if (!stamp) stamp = start;
  AddLine(&out, "DTSTAMP:" + FormatUtc(stamp.value_or(0)));
  if (auto c = p.UnixTime(kPidCreationTime)) AddLine(&out, "CREATED:" + FormatUtc(*c));
  if (auto lm = p.UnixTime(kPidLastModificationTime))
    AddLine(&out, "LAST-MODIFIED:" + FormatUtc(*lm));
  if (auto seq = named.Int(kPsetidAppointment, kLidApptSequence); seq && *seq >= 0)
    AddLine(&out, "SEQUENCE:" + std::to_string(*seq));

  std::string subject = p.StringOr(kPidSubject);
  if (subject.size() >= 2 && subject[0] == '\x01') subject.erase(0, 2);
  AddText(&out, "SUMMARY", subject);
  AddText(&out, "LOCATION", Trim(named.String(kPsetidAppointment, kLidLocation)));
  if (start) {
    if (all_day) {
      int64_t d0 = LocalMidnightDay(*start, tz);
      int64_t d1 = end ? LocalMidnightDay(*end, tz) : d0 + 1;
      AddLine(&out, "DTSTART;VALUE=DATE:" + FormatDate(d0));
      AddLine(&out, "DTEND;VALUE=DATE:" + FormatDate(std::max(d1, d0 + 1)));
    } else {
      AddLine(&out, "DTSTART:" + FormatUtc(*start));
      if (end && *end >= *start) AddLine(&out, "DTEND:" + FormatUtc(*end));
    }
  }
  if (auto recur = named.Bytes(kPsetidAppointment, kLidApptRecur); recur && start) {
    std::string rule = RecurrenceRule(*recur, *start, all_day);
    if (!rule.empty()) AddLine(&out, "RRULE:" + rule);
  }
  if (method == "CANCEL") {
    AddLine(&out, "STATUS:CANCELLED");
  } else {
    AddLine(&out, "STATUS:CONFIRMED");
  }
  // Free (0) and working elsewhere (4) do not block time.
  if (auto busy = named.Int(kPsetidAppointment, kLidBusyStatus)) {
    AddLine(&out, std::string("TRANSP:") + (*busy == 0 || *busy == 4 ? "TRANSPARENT" : "OPAQUE"));
    static constexpr std::string_view kBusy[] = {"FREE", "TENTATIVE", "BUSY", "OOF",
                                                 "WORKINGELSEWHERE"};
    if (*busy >= 0 && *busy <= 4)
      AddLine(&out, "X-MICROSOFT-CDO-BUSYSTATUS:" + std::string(kBusy[*busy]));
  }
  if (auto sens = p.Int(kPidSensitivity); sens && (*sens == 2 || *sens == 3))
    AddLine(&out, *sens == 2 ? "CLASS:PRIVATE" : "CLASS:CONFIDENTIAL");

  // Participants: the organizer is who sent it (or on whose behalf).
  std::string org_name = p.StringOr(kPidSentRepresentingName);
  std::string org_addr = SmtpOf(p, kPidSentRepresentingSmtpAddress, kPidSentRepresentingEmail);
  if (org_addr.empty()) org_addr = SmtpOf(p, kPidSenderSmtpAddress, kPidSenderEmail);
  bool reply = method == "REPLY";
  if (reply) {
    // A response: the sender is the attendee answering.
    std::string partstat = "NEEDS-ACTION";
    if (cls.find(".Resp.Pos") != std::string::npos) partstat = "ACCEPTED";
    if (cls.find(".Resp.Neg") != std::string::npos) partstat = "DECLINED";
    if (cls.find(".Resp.Tent") != std::string::npos) partstat = "TENTATIVE";
    AddLine(&out, CalAddress("ATTENDEE", ";PARTSTAT=" + partstat, org_name, org_addr));
    for (const PropertyBag& r : m.recipients) {
      std::string addr = SmtpOf(r, kPidSmtpAddress, kPidEmailAddress);
      AddLine(&out, CalAddress("ORGANIZER", "", r.StringOr(kPidDisplayName), addr));
      break;
    }
  } else {
    if (!org_addr.empty() || (!m.recipients.empty() && !org_name.empty()))
      AddLine(&out, CalAddress("ORGANIZER", "", org_name, org_addr));
    for (const PropertyBag& r : m.recipients) {
      std::string addr = SmtpOf(r, kPidSmtpAddress, kPidEmailAddress);
      std::string name = r.StringOr(kPidDisplayName);
      // recipOrganizer (PidTagRecipientFlags 0x2): the organizer's own row.
      if ((r.Int(kPidRecipientFlags).value_or(0) & 0x2) != 0) continue;
      if (!addr.empty() && !org_addr.empty() && Lower(addr) == Lower(org_addr)) continue;
      if (addr.empty() && Trim(name).empty()) continue;
      int64_t type = r.Int(kPidRecipientType).value_or(1) & 0xf;
      std::string role = type == 2   ? "OPT-PARTICIPANT"
                         : type == 3 ? "NON-PARTICIPANT;CUTYPE=RESOURCE"
                                     : "REQ-PARTICIPANT";
      std::string params = ";ROLE=" + role;
      if (method == "REQUEST") params += ";PARTSTAT=NEEDS-ACTION;RSVP=TRUE";
      AddLine(&out, CalAddress("ATTENDEE", params, name, addr));
    }
  }
  AddText(&out, "DESCRIPTION", BodyText(m));
  if (named.Int(kPsetidCommon, kLidReminderSet).value_or(0) != 0 && method != "CANCEL" && !reply) {
    int64_t delta = named.Int(kPsetidCommon, kLidReminderDelta).value_or(15);
    if (delta >= 0 && delta < 1000000) {
      AddLine(&out, "BEGIN:VALARM");
      AddLine(&out, "TRIGGER:-PT" + std::to_string(delta) + "M");
      AddLine(&out, "ACTION:DISPLAY");
      AddLine(&out, "DESCRIPTION:Reminder");
      AddLine(&out, "END:VALARM");
    }
  }
  AddLine(&out, "END:VEVENT");
  AddLine(&out, "END:VCALENDAR");
  return out;
}

std::optional<PimPart> RenderPimPart(const MapiMessage& m) {
  std::string cls = Lower(m.props.StringOr(kPidMessageClass));
  auto is = [&](std::string_view prefix) {
    return cls == prefix ||
           (cls.size() > prefix.size() && cls.starts_with(prefix) && cls[prefix.size()] == '.');
  };
  PimPart part;
  if (is("ipm.contact")) {
    part.content_type = "text/vcard; charset=utf-8";
    part.filename = "contact.vcf";
    part.text = RenderVCard(m);
    return part;
  }
  std::string method;
  if (is("ipm.appointment")) {
    method = "PUBLISH";
  } else if (is("ipm.schedule.meeting.request")) {
    method = "REQUEST";
  } else if (is("ipm.schedule.meeting.canceled")) {
    method = "CANCEL";
  } else if (is("ipm.schedule.meeting.resp")) {
    method = "REPLY";
  } else {
    return std::nullopt;
  }
  part.content_type = "text/calendar; charset=utf-8; method=" + method;
  part.alternative = method != "PUBLISH";
  if (!part.alternative) part.filename = "event.ics";
  part.text = RenderICalendar(m, method);
  return part;
}

// ---------------------------------------------------------------------------
// Finding our part again (the EML sink)

namespace {

// The value of parameter `name` in a Content-Type value (quoted or not).
std::string ParamOf(std::string_view ct, std::string_view name) {
  std::string lower = Lower(ct);
  size_t pos = 0;
  while ((pos = lower.find(name, pos)) != std::string::npos) {
    bool starts = pos > 0 && (lower[pos - 1] == ';' || lower[pos - 1] == ' ' ||
                              lower[pos - 1] == '\t' || lower[pos - 1] == '\n');
    size_t eq = pos + name.size();
    while (eq < ct.size() && (ct[eq] == ' ' || ct[eq] == '\t')) ++eq;
    if (!starts || eq >= ct.size() || ct[eq] != '=') {
      pos += name.size();
      continue;
    }
    size_t v = eq + 1;
    while (v < ct.size() && (ct[v] == ' ' || ct[v] == '\t')) ++v;
    if (v < ct.size() && ct[v] == '"') {
      size_t e = ct.find('"', v + 1);
      return std::string(ct.substr(v + 1, e == std::string_view::npos ? e : e - v - 1));
    }
    size_t e = ct.find_first_of("; \t\r\n", v);
    return std::string(ct.substr(v, e == std::string_view::npos ? e : e - v));
  }
  return "";
}

// Walks one entity (headers + body); multiparts recursively, attached
// messages (message/rfc822) not: their parts belong to another message.
std::optional<PimFile> FindIn(std::string_view entity, int depth) {
  if (depth > 32) return std::nullopt;
  size_t body_at = mime::BodyOffset(entity);
  std::string_view headers = entity.substr(0, body_at);
  std::string_view body = entity.substr(body_at);
  std::string ct = mime::Unfold(mime::FindField(headers, "Content-Type").value_or("text/plain"));
  std::string type = Lower(Trim(ct.substr(0, ct.find(';'))));
  if (type.starts_with("multipart/")) {
    std::string boundary = ParamOf(ct, "boundary");
    if (boundary.empty()) return std::nullopt;
    std::string delim = "--" + boundary;
    size_t pos = 0;
    std::vector<std::string_view> parts;
    size_t part_start = std::string_view::npos;
    while (pos <= body.size()) {
      size_t eol = body.find('\n', pos);
      std::string_view line = body.substr(pos, eol == std::string_view::npos ? eol : eol - pos);
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      if (line.starts_with(delim)) {
        if (part_start != std::string_view::npos) {
          // The line break before the delimiter belongs to it.
          size_t end = pos;
          if (end > part_start && body[end - 1] == '\n') --end;
          if (end > part_start && body[end - 1] == '\r') --end;
          parts.push_back(body.substr(part_start, end - part_start));
        }
        if (line.substr(delim.size()).starts_with("--")) break;
        part_start = eol == std::string_view::npos ? body.size() : eol + 1;
      }
      if (eol == std::string_view::npos) break;
      pos = eol + 1;
    }
    for (std::string_view part : parts) {
      if (auto found = FindIn(part, depth + 1)) return found;
    }
    return std::nullopt;
  }
  std::string ext = type == "text/calendar" ? "ics" : type == "text/vcard" ? "vcf" : "";
  if (ext.empty()) return std::nullopt;
  std::string cte =
      Lower(mime::Unfold(mime::FindField(headers, "Content-Transfer-Encoding").value_or("7bit")));
  std::string data = cte == "base64" ? mime::DecodeBase64(body) : std::string(body);
  if (data.find("PRODID:" + std::string(kPimProdId)) == std::string::npos) return std::nullopt;
  return PimFile{std::move(ext), std::move(data)};
}

}  // namespace

std::optional<PimFile> FindPimPart(std::string_view mime) {
  // Cheap test first: most messages carry no such part at all.
  if (mime.find("text/calendar") == std::string_view::npos &&
      mime.find("text/vcard") == std::string_view::npos) {
    return std::nullopt;
  }
  return FindIn(mime, 0);
}

}  // namespace mbx::pst
