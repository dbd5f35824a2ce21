#include "tests/pst_oracles.h"

#include <gmime/gmime.h>
#include <openssl/evp.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <sstream>
#include <string_view>
#include <tuple>

#include "formats/pst/check/check.h"
#include "tests/test_util.h"

namespace mbx::testing {
namespace {
namespace stdfs = std::filesystem;

// ---------------------------------------------------------------- text helpers

bool IsBlank(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

std::string Trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && IsBlank(s[b])) ++b;
  while (e > b && IsBlank(s[e - 1])) --e;
  return std::string(s.substr(b, e - b));
}

// Trimmed, with runs of white space collapsed: header folding differs by tool.
std::string CleanText(std::string_view s) {
  std::string out;
  bool blank = false;
  for (char c : Trim(s)) {
    if (IsBlank(c)) {
      blank = true;
      continue;
    }
    if (blank) out.push_back(' ');
    blank = false;
    out.push_back(c);
  }
  return out;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// An SMTP address, lower-cased; "" for EX addresses, "MAILER-DAEMON" and names.
std::string SmtpOnly(std::string_view address) {
  std::string a = Lower(CleanText(address));
  if (a.size() >= 2 && a.front() == '<' && a.back() == '>') a = a.substr(1, a.size() - 2);
  if (a.empty() || a.front() == '/' || a.find('@') == std::string::npos) return "";
  return a;
}

// What stands for one recipient in to/cc/bcc.
std::string RecipientKey(std::string_view name, std::string_view smtp, std::string_view email) {
  std::string a = SmtpOnly(smtp);
  if (a.empty()) a = SmtpOnly(email);
  if (a.empty()) a = Lower(CleanText(name));
  if (a.empty()) a = Lower(CleanText(email));
  return a;
}

std::string StripAngles(std::string_view id) {
  std::string s = Trim(id);
  if (s.size() >= 2 && s.front() == '<' && s.back() == '>') s = s.substr(1, s.size() - 2);
  return s;
}

void AppendUtf8(uint32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xc0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xe0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  } else {
    out->push_back(static_cast<char>(0xf0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3f)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  }
}

std::string Utf16leToUtf8(std::string_view b) {
  std::string out;
  for (size_t i = 0; i + 1 < b.size(); i += 2) {
    uint32_t u = static_cast<uint8_t>(b[i]) | (static_cast<uint8_t>(b[i + 1]) << 8);
    if (u >= 0xd800 && u < 0xdc00 && i + 3 < b.size()) {
      uint32_t lo = static_cast<uint8_t>(b[i + 2]) | (static_cast<uint8_t>(b[i + 3]) << 8);
      if (lo >= 0xdc00 && lo < 0xe000) {
        u = 0x10000 + ((u - 0xd800) << 10) + (lo - 0xdc00);
        i += 2;
      }
    }
    AppendUtf8(u, &out);
  }
  return out;
}

std::string Latin1ToUtf8(std::string_view b) {
  std::string out;
  for (char c : b) AppendUtf8(static_cast<uint8_t>(c), &out);
  return out;
}

std::optional<std::string> ReadFile(const stdfs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool IsDir(const stdfs::path& p) {
  std::error_code ec;
  return stdfs::is_directory(p, ec);
}

bool IsFile(const stdfs::path& p) {
  std::error_code ec;
  return stdfs::is_regular_file(p, ec);
}

// Entries of a directory, sorted by name, so that loads are deterministic.
std::vector<stdfs::path> ListDir(const stdfs::path& dir) {
  std::vector<stdfs::path> out;
  std::error_code ec;
  for (const auto& e : stdfs::directory_iterator(dir, ec)) out.push_back(e.path());
  std::sort(out.begin(), out.end());
  return out;
}

std::string JoinPath(const std::string& parent, std::string_view name) {
  std::string c = OracleFileName(name);
  return parent.empty() ? c : parent + "/" + c;
}

OracleKind KindFromClass(std::string_view message_class) {
  std::string c = Lower(Trim(message_class));
  auto starts = [&](std::string_view p) {
    return c.compare(0, p.size(), p) == 0 && (c.size() == p.size() || c[p.size()] == '.');
  };
  if (starts("ipm.note") || starts("report")) return OracleKind::kMail;
  if (starts("ipm.schedule.meeting")) return OracleKind::kMeeting;
  if (starts("ipm.post")) return OracleKind::kPost;
  return OracleKind::kOther;
}

void SortMessage(OracleMessage* m) {
  std::sort(m->to.begin(), m->to.end());
  std::sort(m->cc.begin(), m->cc.end());
  std::sort(m->bcc.begin(), m->bcc.end());
  std::sort(m->attachments.begin(), m->attachments.end());
}

void AddRecipient(OracleMessage* m, int type, std::string key) {
  if (type == 1) m->to.push_back(std::move(key));
  if (type == 2) m->cc.push_back(std::move(key));
  if (type == 3) m->bcc.push_back(std::move(key));
}

std::string LastLine(const std::string& text) {
  std::string t = Trim(text);
  size_t nl = t.rfind('\n');
  return nl == std::string::npos ? t : Trim(t.substr(nl + 1));
}

Status ToolFailed(const char* tool, const CommandResult& r) {
  if (r.exit_code < 0) return Status::NotFound(std::string(tool) + ": " + r.err);
  std::string why = LastLine(r.err);
  if (why.empty()) why = LastLine(r.out);
  return Status::Corruption(std::string(tool) + " failed (exit " + std::to_string(r.exit_code) +
                            "): " + why);
}

// ---------------------------------------------------------------- pffexport

// "Key:\t\t\tValue" lines of OutlookHeaders.txt, Meeting.txt, Recipients.txt
// blocks; the first occurrence of a key wins.
std::map<std::string, std::string> TabFields(std::string_view text) {
  std::map<std::string, std::string> out;
  std::istringstream in{std::string(text)};
  std::string line;
  while (std::getline(in, line)) {
    size_t colon = line.find(":\t");
    if (colon == std::string::npos) continue;
    out.emplace(line.substr(0, colon), Trim(std::string_view(line).substr(colon + 1)));
  }
  return out;
}

// "Mar 15, 2010 17:12:05.000000000 UTC" -> seconds since the epoch.
int64_t PffTime(const std::string& text) {
  static constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                            "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  char mon[4] = {};
  int day = 0, year = 0, hh = 0, mm = 0, ss = 0;
  if (std::sscanf(text.c_str(), "%3s %d, %d %d:%d:%d", mon, &day, &year, &hh, &mm, &ss) != 6) {
    return -1;
  }
  int m = -1;
  for (int i = 0; i < 12; ++i) {
    if (std::strcmp(mon, kMonths[i]) == 0) m = i;
  }
  if (m < 0) return -1;
  std::tm tm{};
  tm.tm_year = year - 1900;
  tm.tm_mon = m;
  tm.tm_mday = day;
  tm.tm_hour = hh;
  tm.tm_min = mm;
  tm.tm_sec = ss;
  return static_cast<int64_t>(::timegm(&tm));
}

// One property of an ItemValues.txt dump: type and raw bytes.
int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// The bytes of one hex-dump line "0x00000000: 49 00 74 00 ...  ...   I.t.." (the
// hex columns have fixed places, so the ASCII column is never read as hex).
void AppendHexLine(std::string_view line, std::string* out) {
  size_t start = line.find(": ");
  if (start == std::string_view::npos) return;
  start += 2;
  for (int i = 0; i < 16; ++i) {
    size_t at = start + static_cast<size_t>(i) * 3 + (i >= 8 ? 1 : 0);
    if (at + 2 > line.size()) return;
    int hi = HexDigit(line[at]), lo = HexDigit(line[at + 1]);
    if (hi < 0 || lo < 0) return;
    out->push_back(static_cast<char>(hi * 16 + lo));
  }
}

}  // namespace

std::vector<PffSet> ParsePffItemValues(std::string_view text) {
  std::vector<PffSet> sets;
  std::istringstream in{std::string(text)};
  std::string line;
  size_t set = 0;
  uint32_t entry_type = 0;
  PffValue* value = nullptr;
  auto field = [&](std::string_view key) -> std::optional<std::string> {
    if (line.compare(0, key.size(), key) != 0) return std::nullopt;
    return Trim(std::string_view(line).substr(key.size()));
  };
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (value && line.compare(0, 2, "0x") == 0) {
      AppendHexLine(line, &value->bytes);
      continue;
    }
    value = nullptr;
    if (auto v = field("Set:")) {
      set = std::strtoul(v->c_str(), nullptr, 10);
      if (sets.size() <= set) sets.resize(set + 1);
    } else if (auto t = field("Entry type:")) {
      entry_type = static_cast<uint32_t>(std::strtoul(t->c_str(), nullptr, 16));
    } else if (auto vt = field("Value type:")) {
      if (sets.size() <= set) sets.resize(set + 1);
      sets[set][entry_type].value_type =
          static_cast<uint32_t>(std::strtoul(vt->c_str(), nullptr, 16));
    } else if (auto m = field("Maps to entry type:")) {
      if (sets.size() <= set) sets.resize(set + 1);
      sets[set][entry_type].maps_to = *m;
    } else if (auto n = field("Maps to entry:")) {
      if (sets.size() <= set) sets.resize(set + 1);
      sets[set][entry_type].maps_to = *n;
    } else if (line == "Value:") {
      if (sets.size() <= set) sets.resize(set + 1);
      value = &sets[set][entry_type];
    }
  }
  return sets;
}

namespace {

std::string PffString(const PffSet& set, uint32_t id) {
  auto it = set.find(id);
  if (it == set.end()) return "";
  std::string s = it->second.value_type == 0x1f ? Utf16leToUtf8(it->second.bytes)
                                                : Latin1ToUtf8(it->second.bytes);
  while (!s.empty() && s.back() == '\0') s.pop_back();
  return s;
}

uint32_t PffLong(const PffSet& set, uint32_t id) {
  auto it = set.find(id);
  if (it == set.end() || it->second.bytes.size() < 4) return 0;
  const std::string& b = it->second.bytes;
  return static_cast<uint8_t>(b[0]) | (static_cast<uint8_t>(b[1]) << 8) |
         (static_cast<uint8_t>(b[2]) << 16) |
         (static_cast<uint32_t>(static_cast<uint8_t>(b[3])) << 24);
}

// iconv's name for a Windows code page.
std::string CodepageCharset(uint32_t cp) {
  if (cp >= 28591 && cp <= 28605) return "ISO-8859-" + std::to_string(cp - 28590);
  switch (cp) {
    case 20127:
      return "US-ASCII";
    case 20866:
      return "KOI8-R";
    case 21866:
      return "KOI8-U";
    case 50220:
    case 50221:
    case 50222:
      return "ISO-2022-JP";
    case 51932:
      return "EUC-JP";
    case 51949:
      return "EUC-KR";
    case 54936:
      return "GB18030";
    default:
      return "CP" + std::to_string(cp);
  }
}

// pffexport writes PR_HTML's bytes as they are, in the message's code page
// (PR_INTERNET_CPID); the other readers decode them to UTF-8.
std::string HtmlToUtf8(const std::string& html, uint32_t cp) {
  if (cp == 0 || cp == 65001 || html.empty()) return html;
  gsize written = 0;
  char* out = g_convert(html.data(), static_cast<gssize>(html.size()), "UTF-8",
                        CodepageCharset(cp).c_str(), nullptr, &written, nullptr);
  if (!out) return html;
  std::string result(out, written);
  g_free(out);
  return result;
}

// Item directories are named <kind><5 digits> and hold a file that only items
// have; a folder of that name holds subdirectories instead.
constexpr const char* kPffItemKinds[] = {"Activity", "Appointment", "Contact", "DistributionList",
                                         "Document", "Feed",        "Item",    "Meeting",
                                         "Message",  "Note",        "Task"};

std::string PffItemKind(const stdfs::path& dir) {
  std::string name = dir.filename().string();
  if (name.size() <= 5) return "";
  std::string kind = name.substr(0, name.size() - 5);
  if (!std::all_of(name.end() - 5, name.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return "";
  }
  for (const char* k : kPffItemKinds) {
    if (kind != k) continue;
    std::string header = kind == "Message" ? "OutlookHeaders.txt" : kind + ".txt";
    if (IsFile(dir / header)) return kind;
  }
  return "";
}

OracleMessage ReadPffItem(const stdfs::path& dir, const std::string& kind, int depth);

void ReadPffAttachments(const stdfs::path& dir, int depth, OracleMessage* m) {
  for (const auto& p : ListDir(dir)) {
    std::string name = p.filename().string();
    if (IsDir(p)) {
      // AttachmentNNNNN/<item>: an embedded message.
      for (const auto& inner : ListDir(p)) {
        std::string kind = PffItemKind(inner);
        if (kind.empty() || depth > 8) continue;
        OracleMessage sub = ReadPffItem(inner, kind, depth + 1);
        m->attachments.emplace_back("message/rfc822: " + sub.subject, "");
      }
      continue;
    }
    if (name == "ItemValues.txt") continue;  // -d's dump of the attachment table
    size_t us = name.find('_');
    bool numbered = us != std::string::npos && us > 0 &&
                    std::all_of(name.begin(), name.begin() + static_cast<long>(us),
                                [](char c) { return c >= '0' && c <= '9'; });
    std::string shown = numbered ? name.substr(us + 1) : name;
    auto bytes = ReadFile(p);
    m->attachments.emplace_back(OracleFileName(shown), Sha256Hex(bytes ? *bytes : ""));
  }
}

OracleMessage ReadPffItem(const stdfs::path& dir, const std::string& kind, int depth) {
  OracleMessage m;
  std::string header_file = kind == "Message" ? "OutlookHeaders.txt" : kind + ".txt";
  auto headers = TabFields(ReadFile(dir / header_file).value_or(""));
  std::vector<PffSet> values = ParsePffItemValues(ReadFile(dir / "ItemValues.txt").value_or(""));
  PffSet item = values.empty() ? PffSet{} : values[0];

  m.message_class = PffString(item, 0x001a);
  if (!m.message_class.empty()) {
    m.kind = KindFromClass(m.message_class);
  } else {
    m.kind = kind == "Message"   ? OracleKind::kMail
             : kind == "Meeting" ? OracleKind::kMeeting
                                 : OracleKind::kOther;
  }
  m.subject = CleanText(headers["Subject"]);
  m.sender_name = CleanText(headers["Sender name"]);
  m.sender_email = SmtpOnly(PffString(item, 0x5d01));  // PR_SENDER_SMTP_ADDRESS
  if (m.sender_email.empty()) m.sender_email = SmtpOnly(headers["Sender email address"]);
  m.submit_time = headers.count("Client submit time") ? PffTime(headers["Client submit time"]) : -1;
  m.message_id = StripAngles(PffString(item, 0x1035));  // PR_INTERNET_MESSAGE_ID
  if (auto body = ReadFile(dir / "Message.txt")) m.body = NormalizeOracleBody(*body);
  if (auto html = ReadFile(dir / "Message.html")) {
    m.body_html = HtmlToUtf8(*html, PffLong(item, 0x3fde));  // PR_INTERNET_CPID
  }

  // Recipients.txt is libpff's rendering; the SMTP address is only in the dump.
  std::vector<PffSet> rvalues =
      ParsePffItemValues(ReadFile(dir / "RecipientsItemValues.txt").value_or(""));
  std::string rtext = ReadFile(dir / "Recipients.txt").value_or("");
  std::vector<std::string> blocks;
  {
    std::istringstream in(rtext);
    std::string line, block;
    while (std::getline(in, line)) {
      if (Trim(line).empty()) {
        if (!block.empty()) blocks.push_back(block);
        block.clear();
      } else {
        block += line + "\n";
      }
    }
    if (!block.empty()) blocks.push_back(block);
  }
  for (size_t i = 0; i < blocks.size(); ++i) {
    auto f = TabFields(blocks[i]);
    std::string type = Lower(f["Recipient type"]);
    int t = type == "to" ? 1 : type == "cc" ? 2 : type == "bcc" ? 3 : 0;
    std::string smtp = blocks.size() == rvalues.size() ? PffString(rvalues[i], 0x39fe) : "";
    AddRecipient(&m, t, RecipientKey(f["Display name"], smtp, f["Email address"]));
  }
  if (IsDir(dir / "Attachments")) ReadPffAttachments(dir / "Attachments", depth, &m);
  SortMessage(&m);
  return m;
}

void ReadPffFolder(const stdfs::path& dir, const std::string& path, OracleStore* store) {
  OracleFolder& folder = (*store)[path];
  folder.path = path;
  for (const auto& p : ListDir(dir)) {
    if (!IsDir(p)) continue;
    std::string kind = PffItemKind(p);
    if (!kind.empty()) {
      folder.messages.push_back(ReadPffItem(p, kind, 0));
    } else {
      ReadPffFolder(p, JoinPath(path, p.filename().string()), store);
    }
  }
}

// ---------------------------------------------------------------- readpst

std::once_flag gmime_once;

template <typename T>
struct GObjectPtr {
  T* p = nullptr;
  explicit GObjectPtr(T* q) : p(q) {}
  ~GObjectPtr() {
    if (p) g_object_unref(p);
  }
  GObjectPtr(const GObjectPtr&) = delete;
  GObjectPtr& operator=(const GObjectPtr&) = delete;
};

std::string TakeGString(char* s) {
  std::string out = s ? s : "";
  g_free(s);
  return out;
}

struct RawAttachment {
  std::string name;
  std::string sha256;
  bool readpst_calendar = false;  // readpst's own "i<digits>.ics" copy of a meeting
};

struct MimeWalk {
  OracleMessage* m = nullptr;
  bool have_text = false;
  bool have_html = false;
  bool meeting = false;
  std::vector<RawAttachment> attachments;
};

std::string PartBytes(GMimePart* part) {
  GMimeDataWrapper* content = g_mime_part_get_content(part);
  if (!content) return "";
  GObjectPtr<GMimeStream> mem(g_mime_stream_mem_new());
  g_mime_data_wrapper_write_to_stream(content, mem.p);  // undoes the transfer encoding
  GByteArray* arr = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(mem.p));
  return arr ? std::string(reinterpret_cast<const char*>(arr->data), arr->len) : "";
}

bool IsReadpstIcsName(std::string_view name) {
  if (name.size() < 6 || name[0] != 'i' || name.substr(name.size() - 4) != ".ics") return false;
  std::string_view digits = name.substr(1, name.size() - 5);
  return !digits.empty() &&
         std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; });
}

void WalkMime(GMimeObject* obj, MimeWalk* w) {
  if (GMIME_IS_MULTIPART(obj)) {
    GMimeMultipart* mp = GMIME_MULTIPART(obj);
    const int n = g_mime_multipart_get_count(mp);
    for (int i = 0; i < n; ++i) WalkMime(g_mime_multipart_get_part(mp, i), w);
    return;
  }
  if (GMIME_IS_MESSAGE_PART(obj)) {
    GMimeMessage* inner = g_mime_message_part_get_message(GMIME_MESSAGE_PART(obj));
    const char* subject = inner ? g_mime_message_get_subject(inner) : nullptr;
    w->attachments.push_back({"message/rfc822: " + CleanText(subject ? subject : ""), "", false});
    return;
  }
  if (!GMIME_IS_PART(obj)) return;
  GMimePart* part = GMIME_PART(obj);
  GMimeContentType* ct = g_mime_object_get_content_type(obj);
  const char* filename = g_mime_part_get_filename(part);
  const char* disposition = g_mime_object_get_disposition(obj);
  bool attachment = (filename && *filename) ||
                    (disposition && g_ascii_strcasecmp(disposition, "attachment") == 0);
  bool text = GMIME_IS_TEXT_PART(obj);
  if (!attachment && text && g_mime_content_type_is_type(ct, "text", "plain") && !w->have_text) {
    w->m->body = NormalizeOracleBody(TakeGString(g_mime_text_part_get_text(GMIME_TEXT_PART(obj))));
    w->have_text = true;
    return;
  }
  if (!attachment && text && g_mime_content_type_is_type(ct, "text", "html") && !w->have_html) {
    w->m->body_html = TakeGString(g_mime_text_part_get_text(GMIME_TEXT_PART(obj)));
    w->have_html = true;
    return;
  }
  if (!attachment && g_mime_content_type_is_type(ct, "text", "calendar") &&
      g_mime_content_type_get_parameter(ct, "method")) {
    w->meeting = true;  // readpst's rendering of a meeting item (write_schedule_part)
    return;
  }
  std::string name = filename ? filename : "";
  bool calendar = g_mime_content_type_is_type(ct, "text", "calendar") && IsReadpstIcsName(name);
  w->attachments.push_back({OracleFileName(name), Sha256Hex(PartBytes(part)), calendar});
}

std::string FirstMailboxName(InternetAddressList* list, std::string* address) {
  if (!list) return "";
  const int n = internet_address_list_length(list);
  for (int i = 0; i < n; ++i) {
    InternetAddress* ia = internet_address_list_get_address(list, i);
    if (INTERNET_ADDRESS_IS_MAILBOX(ia)) {
      const char* addr = internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(ia));
      *address = addr ? addr : "";
      const char* name = internet_address_get_name(ia);
      return name ? name : "";
    }
  }
  return "";
}

void AddressKeys(InternetAddressList* list, std::vector<std::string>* out) {
  if (!list) return;
  const int n = internet_address_list_length(list);
  for (int i = 0; i < n; ++i) {
    InternetAddress* ia = internet_address_list_get_address(list, i);
    if (INTERNET_ADDRESS_IS_GROUP(ia)) {
      AddressKeys(internet_address_group_get_members(INTERNET_ADDRESS_GROUP(ia)), out);
      continue;
    }
    const char* name = internet_address_get_name(ia);
    const char* addr = internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(ia));
    out->push_back(RecipientKey(name ? name : "", "", addr ? addr : ""));
  }
}

Result<OracleMessage> ParseReadpstEml(const stdfs::path& file) {
  std::call_once(gmime_once, [] { g_mime_init(); });
  auto data = ReadFile(file);
  if (!data) return Status::IOError("cannot read " + file.string());
  GObjectPtr<GMimeStream> stream(g_mime_stream_mem_new_with_buffer(data->data(), data->size()));
  GObjectPtr<GMimeParser> parser(g_mime_parser_new_with_stream(stream.p));
  g_mime_parser_set_format(parser.p, GMIME_FORMAT_MESSAGE);
  GObjectPtr<GMimeMessage> msg(g_mime_parser_construct_message(parser.p, nullptr));
  if (!msg.p) return Status::Corruption("GMime cannot parse " + file.string());

  OracleMessage m;
  const char* subject = g_mime_message_get_subject(msg.p);
  m.subject = CleanText(subject ? subject : "");
  std::string from_address;
  m.sender_name = CleanText(FirstMailboxName(g_mime_message_get_from(msg.p), &from_address));
  m.sender_email = SmtpOnly(from_address);
  const char* id = g_mime_message_get_message_id(msg.p);
  m.message_id = StripAngles(id ? id : "");
  if (GDateTime* date = g_mime_message_get_date(msg.p)) m.submit_time = g_date_time_to_unix(date);
  const std::pair<GMimeAddressType, std::vector<std::string>*> fields[] = {
      {GMIME_ADDRESS_TYPE_TO, &m.to},
      {GMIME_ADDRESS_TYPE_CC, &m.cc},
      {GMIME_ADDRESS_TYPE_BCC, &m.bcc}};
  for (const auto& [type, keys] : fields) {
    AddressKeys(g_mime_message_get_addresses(msg.p, type), keys);
    if (!keys->empty()) continue;
    // readpst writes bare display names ("To: Pst Extractor") when the item has
    // no transport headers; GMime drops those, so take them as written.
    const char* header = type == GMIME_ADDRESS_TYPE_TO   ? "To"
                         : type == GMIME_ADDRESS_TYPE_CC ? "Cc"
                                                         : "Bcc";
    const char* raw = g_mime_object_get_header(GMIME_OBJECT(msg.p), header);
    std::string text = raw ? TakeGString(g_mime_utils_header_decode_text(nullptr, raw)) : "";
    size_t start = 0;
    while (start <= text.size()) {
      size_t end = text.find_first_of(",;", start);
      if (end == std::string::npos) end = text.size();
      std::string key = RecipientKey(text.substr(start, end - start), "", "");
      if (!key.empty()) keys->push_back(key);
      start = end + 1;
    }
  }

  MimeWalk walk;
  walk.m = &m;
  if (GMimeObject* top = g_mime_message_get_mime_part(msg.p)) WalkMime(top, &walk);
  m.kind = walk.meeting ? OracleKind::kMeeting : OracleKind::kMail;
  for (auto& a : walk.attachments) {
    if (walk.meeting && a.readpst_calendar) continue;
    m.attachments.emplace_back(std::move(a.name), std::move(a.sha256));
  }
  SortMessage(&m);
  return m;
}

Status ReadReadpstFolder(const stdfs::path& dir, const std::string& path, OracleStore* store) {
  OracleFolder& folder = (*store)[path];
  folder.path = path;
  for (const auto& p : ListDir(dir)) {
    if (IsDir(p)) {
      MBX_RETURN_IF_ERROR(ReadReadpstFolder(p, JoinPath(path, p.filename().string()), store));
      continue;
    }
    if (p.extension() == ".eml") {
      MBX_ASSIGN_OR_RETURN(OracleMessage m, ParseReadpstEml(p));
      (*store)[path].messages.push_back(std::move(m));
    } else {
      OracleMessage other;  // appointment (.ics), contact (.vcf), journal, ...
      other.kind = OracleKind::kOther;
      (*store)[path].messages.push_back(std::move(other));
    }
  }
  return Status::Ok();
}

// ---------------------------------------------------------------- pst-extractor

std::string NodeDir() { return std::string(MBX_SOURCE_DIR) + "/tests/node"; }

std::string JsonString(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}

int64_t IsoTime(const std::string& iso) {
  std::tm tm{};
  if (iso.size() < 19 || !::strptime(iso.c_str(), "%Y-%m-%dT%H:%M:%S", &tm)) return -1;
  return static_cast<int64_t>(::timegm(&tm));
}

OracleMessage FromPstExtractor(const nlohmann::json& j) {
  OracleMessage m;
  m.message_class = JsonString(j, "messageClass");
  m.kind = KindFromClass(m.message_class);
  m.subject = CleanText(JsonString(j, "subject"));
  m.sender_name = CleanText(JsonString(j, "senderName"));
  m.sender_email = SmtpOnly(JsonString(j, "senderSmtpAddress"));
  if (m.sender_email.empty()) m.sender_email = SmtpOnly(JsonString(j, "senderEmailAddress"));
  m.body = NormalizeOracleBody(JsonString(j, "body"));
  m.body_html = JsonString(j, "bodyHTML");
  m.message_id = StripAngles(JsonString(j, "internetMessageId"));
  m.submit_time = IsoTime(JsonString(j, "clientSubmitTime"));
  for (const auto& r : j.value("recipients", nlohmann::json::array())) {
    AddRecipient(
        &m, r.value("type", 0),
        RecipientKey(JsonString(r, "name"), JsonString(r, "smtpAddress"), JsonString(r, "email")));
  }
  for (const auto& a : j.value("attachments", nlohmann::json::array())) {
    auto emb = a.find("embedded");
    if (a.value("attachMethod", 0) == 5) {
      std::string subject = emb != a.end() && emb->is_object() ? JsonString(*emb, "subject")
                                                               : JsonString(a, "displayName");
      m.attachments.emplace_back("message/rfc822: " + CleanText(subject), "");
    } else {
      m.attachments.emplace_back(OracleFileName(JsonString(a, "filename")),
                                 JsonString(a, "sha256"));
    }
  }
  SortMessage(&m);
  return m;
}

void ReadPstExtractorFolder(const nlohmann::json& j, const std::string& path, OracleStore* store) {
  OracleFolder& folder = (*store)[path];
  folder.path = path;
  for (const auto& m : j.value("messages", nlohmann::json::array())) {
    (*store)[path].messages.push_back(FromPstExtractor(m));
  }
  for (const auto& sub : j.value("folders", nlohmann::json::array())) {
    ReadPstExtractorFolder(sub, JoinPath(path, JsonString(sub, "name")), store);
  }
}

// ---------------------------------------------------------------- comparison

const char* KindName(OracleKind k) {
  switch (k) {
    case OracleKind::kMail:
      return "mail";
    case OracleKind::kMeeting:
      return "meeting";
    case OracleKind::kPost:
      return "post";
    case OracleKind::kOther:
      return "other";
  }
  return "?";
}

std::string FolderLabel(const std::string& path) {
  return path.empty() ? "folder (top)" : "folder '" + path + "'";
}

std::string JoinList(const std::vector<std::string>& v) {
  std::string out = "[";
  for (size_t i = 0; i < v.size(); ++i) out += (i ? ", " : "") + v[i];
  return out + "]";
}

std::string AttachmentList(const std::vector<std::pair<std::string, std::string>>& v) {
  std::vector<std::string> items;
  for (const auto& [name, sha] : v) items.push_back(name + " " + sha.substr(0, 12));
  return JoinList(items);
}

std::string Excerpt(const std::string& s, size_t at) {
  size_t b = at > 30 ? at - 30 : 0;
  std::string e = s.substr(b, 80);
  for (char& c : e) {
    if (c == '\n') c = '|';
  }
  return "\"" + e + "\"";
}

std::string BodyDiff(const std::string& a, const std::string& b, const std::string& an,
                     const std::string& bn) {
  size_t i = 0;
  while (i < a.size() && i < b.size() && a[i] == b[i]) ++i;
  std::ostringstream out;
  out << "bodies differ at byte " << i << " (" << an << " " << a.size() << " bytes, " << bn << " "
      << b.size() << " bytes): " << an << "=" << Excerpt(a, i) << " " << bn << "=" << Excerpt(b, i);
  return out.str();
}

std::vector<const OracleMessage*> Selected(const OracleStore& store, const std::string& path,
                                           const CompareOptions& opt) {
  std::vector<const OracleMessage*> out;
  auto it = store.find(path);
  if (it == store.end()) return out;
  for (const auto& m : it->second.messages) {
    if (!opt.message_filter || opt.message_filter(path, m)) out.push_back(&m);
  }
  return out;
}

bool PairOrder(const OracleMessage* a, const OracleMessage* b) {
  return std::tie(a->submit_time, a->sender_email, a->sender_name, a->body) <
         std::tie(b->submit_time, b->sender_email, b->sender_name, b->body);
}

}  // namespace

// ---------------------------------------------------------------- public

std::string OracleFileName(std::string_view name) {
  static constexpr std::string_view kRewritten = "/\\:!$%&*+;<>?@|~";
  std::string out(name);
  for (char& c : out) {
    unsigned char u = static_cast<unsigned char>(c);
    if ((u >= 0x01 && u <= 0x1f) || u == 0x7f || kRewritten.find(c) != std::string_view::npos) {
      c = '_';
    }
  }
  return out;
}

std::string NormalizeOracleBody(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '\r') {
      if (i + 1 < text.size() && text[i + 1] == '\n') ++i;
      c = '\n';
    }
    if (c == '\n') {
      while (!out.empty() && (out.back() == ' ' || out.back() == '\t')) out.pop_back();
    }
    out.push_back(c);
  }
  while (!out.empty() && (IsBlank(out.back()) || out.back() == '\0')) out.pop_back();
  // A UTF-8 byte order mark is an encoding artefact, not text.
  if (out.compare(0, 3, "\xEF\xBB\xBF") == 0) out.erase(0, 3);
  return out;
}

bool IsMailItem(const OracleMessage& message) { return message.kind == OracleKind::kMail; }

const char* OracleName(Oracle oracle) {
  switch (oracle) {
    case Oracle::kPffexport:
      return "pffexport";
    case Oracle::kReadpst:
      return "readpst";
    case Oracle::kPstExtractor:
      return "pst-extractor";
  }
  return "?";
}

std::string OracleUnavailableReason(Oracle oracle) {
  switch (oracle) {
    case Oracle::kPffexport:
      return HaveProgram("pffexport") ? "" : "pffexport not installed (Debian package pff-tools)";
    case Oracle::kReadpst:
      return HaveProgram("readpst") ? "" : "readpst not installed (Debian package pst-utils)";
    case Oracle::kPstExtractor:
      if (!HaveProgram("node")) return "node not installed";
      if (!IsFile(NodeDir() + "/node_modules/pst-extractor/package.json")) {
        return "npm package pst-extractor not installed in tests/node (run `make deps`)";
      }
      return "";
  }
  return "unknown oracle";
}

Result<OracleStore> ReadWithPffexport(const std::string& pst_path) {
  TempDir tmp;
  const std::string target = tmp / "x";
  // -d: ItemValues.txt (message class, SMTP addresses); -f all: plain and HTML bodies.
  CommandResult r =
      Run({"pffexport", "-q", "-d", "-m", "items", "-f", "all", "-t", target, pst_path});
  if (r.exit_code != 0) return ToolFailed("pffexport", r);
  const stdfs::path root = target + ".export";
  if (!IsDir(root)) {
    return Status::Corruption("pffexport exported nothing from " + pst_path +
                              " (root folder unreadable)");
  }
  static constexpr const char* kIpmRoots[] = {"Top of Personal Folders", "Top of Outlook data file",
                                              "Top of Information Store",
                                              "Root - Mailbox/IPM_SUBTREE"};
  std::vector<stdfs::path> found;
  for (const char* name : kIpmRoots) {
    if (IsDir(root / name)) found.push_back(root / name);
  }
  if (found.size() != 1) {
    std::string top;
    for (const auto& p : ListDir(root)) top += " '" + p.filename().string() + "'";
    return Status::Corruption("pffexport output of " + pst_path + " has " +
                              std::to_string(found.size()) +
                              " known IPM subtree folders; top level:" + top);
  }
  OracleStore store;
  ReadPffFolder(found[0], "", &store);
  return store;
}

Result<OracleStore> ReadWithReadpst(const std::string& pst_path) {
  TempDir tmp;
  const std::string out = tmp / "out";
  stdfs::create_directories(out);
  // -D: also Deleted Items; -e: one file per item with an extension; -b: no
  // extra rtf-body.rtf attachment.
  // -j 0: readpst forks workers by default, and then sometimes loses items.
  CommandResult r = Run({"readpst", "-j", "0", "-q", "-D", "-e", "-b", "-o", out, pst_path});
  if (r.exit_code != 0) return ToolFailed("readpst", r);
  std::vector<stdfs::path> top = ListDir(out);
  if (top.size() != 1 || !IsDir(top[0])) {
    return Status::Corruption("readpst wrote " + std::to_string(top.size()) +
                              " top-level entries for " + pst_path + ", expected one folder");
  }
  OracleStore store;
  MBX_RETURN_IF_ERROR(ReadReadpstFolder(top[0], "", &store));
  return store;
}

Result<OracleStore> ReadWithPstExtractor(const std::string& pst_path) {
  CommandResult r = Run({"node", NodeDir() + "/pst_dump.js", pst_path});
  if (r.exit_code != 0) return ToolFailed("pst-extractor", r);
  nlohmann::json doc = nlohmann::json::parse(r.out, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.contains("root") || !doc["root"].is_object()) {
    return Status::Corruption("pst_dump.js printed no folder tree for " + pst_path);
  }
  OracleStore store;
  ReadPstExtractorFolder(doc["root"], "", &store);
  return store;
}

Result<OracleStore> ReadWithOracle(Oracle oracle, const std::string& pst_path) {
  switch (oracle) {
    case Oracle::kPffexport:
      return ReadWithPffexport(pst_path);
    case Oracle::kReadpst:
      return ReadWithReadpst(pst_path);
    case Oracle::kPstExtractor:
      return ReadWithPstExtractor(pst_path);
  }
  return Status::InvalidArgument("unknown oracle");
}

std::string CompareOracleStores(const OracleStore& left, const OracleStore& right,
                                const CompareOptions& opt) {
  std::ostringstream diff;
  const std::string& ln = opt.left_name;
  const std::string& rn = opt.right_name;
  auto wanted = [&](const std::string& p) { return !opt.folder_filter || opt.folder_filter(p); };

  std::set<std::string> paths;
  for (const auto& [p, f] : left) {
    if (wanted(p)) paths.insert(p);
  }
  for (const auto& [p, f] : right) {
    if (wanted(p)) paths.insert(p);
  }

  if (opt.aspects & kOracleFolderTree) {
    for (const auto& p : paths) {
      bool in_left = left.count(p) > 0, in_right = right.count(p) > 0;
      if (in_left && !in_right) diff << FolderLabel(p) << ": only in " << ln << "\n";
      if (!in_left && in_right && opt.tree == CompareOptions::Tree::kEqual) {
        diff << FolderLabel(p) << ": only in " << rn << "\n";
      }
    }
  }

  for (const auto& p : paths) {
    auto a = Selected(left, p, opt);
    auto b = Selected(right, p, opt);
    if ((opt.aspects & kOracleCounts) && a.size() != b.size()) {
      diff << FolderLabel(p) << ": " << a.size() << " messages in " << ln << ", " << b.size()
           << " in " << rn << "\n";
    }
    std::map<std::string, std::vector<const OracleMessage*>> by_subject_a, by_subject_b;
    for (const auto* m : a) by_subject_a[m->subject].push_back(m);
    for (const auto* m : b) by_subject_b[m->subject].push_back(m);
    std::set<std::string> subjects;
    for (const auto& [s, v] : by_subject_a) subjects.insert(s);
    for (const auto& [s, v] : by_subject_b) subjects.insert(s);

    for (const auto& s : subjects) {
      auto& va = by_subject_a[s];
      auto& vb = by_subject_b[s];
      if (va.size() != vb.size()) {
        if (opt.aspects & kOracleSubjects) {
          diff << FolderLabel(p) << ": subject '" << s << "' " << va.size() << "x in " << ln << ", "
               << vb.size() << "x in " << rn << "\n";
        }
        continue;
      }
      std::sort(va.begin(), va.end(), PairOrder);
      std::sort(vb.begin(), vb.end(), PairOrder);
      for (size_t i = 0; i < va.size(); ++i) {
        const OracleMessage& x = *va[i];
        const OracleMessage& y = *vb[i];
        std::string where = FolderLabel(p) + " message '" + s + "': ";
        if ((opt.aspects & kOracleSenders) &&
            (x.sender_name != y.sender_name || x.sender_email != y.sender_email)) {
          diff << where << "sender " << ln << "='" << x.sender_name << " <" << x.sender_email
               << ">' " << rn << "='" << y.sender_name << " <" << y.sender_email << ">'\n";
        }
        if (opt.aspects & kOracleRecipients) {
          const std::pair<const char*, std::vector<std::string> OracleMessage::*> kinds[] = {
              {"to", &OracleMessage::to}, {"cc", &OracleMessage::cc}, {"bcc", &OracleMessage::bcc}};
          for (const auto& [label, field] : kinds) {
            if (x.*field != y.*field) {
              diff << where << label << " " << ln << "=" << JoinList(x.*field) << " " << rn << "="
                   << JoinList(y.*field) << "\n";
            }
          }
        }
        if ((opt.aspects & kOracleBodies) && x.body != y.body) {
          diff << where << BodyDiff(x.body, y.body, ln, rn) << "\n";
        }
        if (opt.aspects & kOracleHtmlBodies) {
          std::string hx = NormalizeOracleBody(x.body_html), hy = NormalizeOracleBody(y.body_html);
          if (hx != hy) diff << where << "HTML " << BodyDiff(hx, hy, ln, rn) << "\n";
        }
        if ((opt.aspects & kOracleAttachments) && x.attachments != y.attachments) {
          diff << where << "attachments " << ln << "=" << AttachmentList(x.attachments) << " " << rn
               << "=" << AttachmentList(y.attachments) << "\n";
        }
      }
    }
  }
  return diff.str();
}

std::string DescribeOracleStore(const OracleStore& store) {
  std::ostringstream out;
  for (const auto& [path, folder] : store) {
    out << (path.empty() ? "(top)" : path) << ": " << folder.messages.size() << " items\n";
    for (const auto& m : folder.messages) {
      out << "  [" << KindName(m.kind) << "] '" << m.subject << "' from '" << m.sender_name << " <"
          << m.sender_email << ">' to " << JoinList(m.to) << ", " << m.attachments.size()
          << " attachments\n";
    }
  }
  return out.str();
}

std::string Sha256Hex(std::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_Digest(data.data(), data.size(), digest, &n, EVP_sha256(), nullptr);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < n; ++i) {
    out.push_back(kHex[digest[i] >> 4]);
    out.push_back(kHex[digest[i] & 15]);
  }
  return out;
}

std::string PstCheckViolations(const std::string& path) {
  auto report = pst::check::CheckPst(path);
  if (!report.ok()) return "cannot check " + path + ": " + report.status().ToString();
  std::string all;
  for (const auto& v : report->violations) all += v.location + ": " + v.message + "\n";
  return all;
}

}  // namespace mbx::testing
