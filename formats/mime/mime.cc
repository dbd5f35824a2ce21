// \brief MIME support: header scanning, RFC 2047 decoding, dates and addresses are
// hand-written (hot path, no allocation where possible); the attachment walk uses GMime 3.
#include "formats/mime/mime.h"

#include <gmime/gmime.h>
#include <iconv.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>
#include <utility>

namespace mbx::mime {
namespace {

constexpr size_t kNpos = std::string_view::npos;

inline bool IsWsp(char c) { return c == ' ' || c == '\t'; }
inline bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }
inline char AsciiLower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; }
inline bool IsDigit(char c) { return c >= '0' && c <= '9'; }
inline bool IsAlpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (AsciiLower(a[i]) != AsciiLower(b[i])) return false;
  }
  return true;
}

bool StartsWith(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && s.compare(0, prefix.size(), prefix) == 0;
}

// Index just past the LF ending the line that starts at `pos` (s.size() if none).
inline size_t NextLine(std::string_view s, size_t pos) {
  const void* nl = std::memchr(s.data() + pos, '\n', s.size() - pos);
  return nl ? static_cast<size_t>(static_cast<const char*>(nl) - s.data()) + 1 : s.size();
}

// `line` includes its line ending. A lone "\r" at the very end counts as empty too.
inline bool IsEmptyLine(std::string_view line) {
  return line == "\n" || line == "\r\n" || line == "\r" || line.empty();
}

// If `line` starts a header field (RFC 5322 ftext name, optionally followed by white space
// as in the obsolete syntax, then ':'), returns the colon index and sets *name_len.
inline size_t FieldColon(std::string_view line, size_t* name_len) {
  size_t i = 0;
  const size_t n = line.size();
  while (i < n) {
    const auto c = static_cast<unsigned char>(line[i]);
    if (c == ':' || c < 33 || c > 126) break;
    ++i;
  }
  if (i == 0) return kNpos;
  *name_len = i;
  while (i < n && IsWsp(line[i])) ++i;
  if (i >= n || line[i] != ':') return kNpos;
  return i;
}

// The mbox envelope line ("From sender date"), also its quoted form; not the obsolete
// field syntax "From : a@b".
inline bool IsEnvelopeLine(std::string_view line) {
  size_t name_len;
  return (StartsWith(line, "From ") || StartsWith(line, ">From ")) &&
         FieldColon(line.substr(0, NextLine(line, 0)), &name_len) == kNpos;
}

// Splits `msg` into header and body. Returns the body offset; *header_end is where the
// header block ends (before its terminating empty line).
size_t SplitHeader(std::string_view msg, size_t* header_end) {
  const size_t n = msg.size();
  size_t pos = 0;
  if (IsEnvelopeLine(msg)) pos = NextLine(msg, 0);
  // The first line decides whether there is a header block at all: a message that starts
  // with a non-field line is all body (we never swallow its first line as a header).
  const size_t first_end = NextLine(msg, pos);
  std::string_view first = msg.substr(pos, first_end - pos);
  size_t name_len = 0;
  if (IsEmptyLine(first) && pos < n) {
    *header_end = pos;
    return first_end;
  }
  if (pos >= n || FieldColon(first, &name_len) == kNpos) {
    *header_end = pos;
    return pos;
  }
  size_t line = first_end;
  while (line < n) {
    const char c = msg[line];
    if (c == '\n') {
      *header_end = line;
      return line + 1;
    }
    if (c == '\r' && (line + 1 == n || msg[line + 1] == '\n')) {
      *header_end = line;
      return line + 1 == n ? n : line + 2;
    }
    line = NextLine(msg, line);
  }
  *header_end = n;
  return n;
}

// A raw field value: leading white space (also a fold right after the colon) and the
// final line ending removed.
inline std::string_view TrimValue(std::string_view value) {
  size_t b = 0;
  while (b < value.size() && IsSpace(value[b])) ++b;
  value.remove_prefix(b);
  if (!value.empty() && value.back() == '\n') value.remove_suffix(1);
  if (!value.empty() && value.back() == '\r') value.remove_suffix(1);
  return value;
}

// --- UTF-8 ---------------------------------------------------------------------------

// Length of the well-formed UTF-8 sequence at s (n bytes available), 0 if ill-formed.
inline size_t Utf8SeqLen(const unsigned char* s, size_t n) {
  const unsigned c = s[0];
  if (c < 0x80) return 1;
  if (c < 0xC2) return 0;
  if (c < 0xE0) return (n >= 2 && (s[1] & 0xC0) == 0x80) ? 2 : 0;
  if (c < 0xF0) {
    if (n < 3 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80) return 0;
    if (c == 0xE0 && s[1] < 0xA0) return 0;   // overlong
    if (c == 0xED && s[1] >= 0xA0) return 0;  // surrogate
    return 3;
  }
  if (c < 0xF5) {
    if (n < 4 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80 || (s[3] & 0xC0) != 0x80) {
      return 0;
    }
    if (c == 0xF0 && s[1] < 0x90) return 0;   // overlong
    if (c == 0xF4 && s[1] >= 0x90) return 0;  // > U+10FFFF
    return 4;
  }
  return 0;
}

// Appends `in`, keeping well-formed UTF-8 and taking every other byte as Latin-1.
void AppendLenientUtf8(std::string* out, std::string_view in) {
  const auto* s = reinterpret_cast<const unsigned char*>(in.data());
  const size_t n = in.size();
  size_t i = 0;
  while (i < n) {
    size_t run = i;
    while (run < n && s[run] < 0x80) ++run;
    out->append(in.data() + i, run - i);
    i = run;
    if (i >= n) break;
    const size_t len = Utf8SeqLen(s + i, n - i);
    if (len) {
      out->append(in.data() + i, len);
      i += len;
    } else {
      out->push_back(static_cast<char>(0xC0 | (s[i] >> 6)));
      out->push_back(static_cast<char>(0x80 | (s[i] & 0x3F)));
      ++i;
    }
  }
}

bool IsAscii(std::string_view s) {
  for (char c : s) {
    if (static_cast<unsigned char>(c) >= 0x80) return false;
  }
  return true;
}

// --- Charset conversion ----------------------------------------------------------------

// Charset names that MUAs use but glibc iconv does not know.
std::string NormalizeCharset(std::string_view charset) {
  std::string cs;
  cs.reserve(charset.size());
  for (char c : charset) cs.push_back(AsciiLower(c));
  static constexpr std::pair<std::string_view, std::string_view> kAliases[] = {
      {"ks_c_5601-1987", "CP949"},
      {"ks_c_5601", "CP949"},
      {"x-sjis", "SHIFT_JIS"},
      {"iso-8859-8-i", "ISO-8859-8"},
      {"x-euc-jp", "EUC-JP"},
      {"gb2312", "GB18030"},
      {"gbk", "GB18030"},
      {"x-gbk", "GB18030"},
      {"iso-2022-jp-2", "ISO-2022-JP-2"},
      {"x-mac-roman", "MACINTOSH"},
      {"unicode-1-1-utf-7", "UTF-7"},
  };
  for (const auto& [from, to] : kAliases) {
    if (cs == from) return std::string(to);
  }
  return cs;
}

// Per-thread cache of iconv descriptors (opening one loads gconv modules).
class IconvCache {
 public:
  ~IconvCache() {
    for (auto& e : entries_) {
      if (e.second != kInvalid) iconv_close(e.second);
    }
  }
  // Returns kInvalid when iconv does not know `charset`.
  iconv_t Get(const std::string& charset) {
    for (auto& e : entries_) {
      if (e.first == charset) return e.second;
    }
    if (entries_.size() >= kMaxEntries) {
      if (entries_.front().second != kInvalid) iconv_close(entries_.front().second);
      entries_.erase(entries_.begin());
    }
    iconv_t cd = iconv_open("UTF-8", charset.c_str());
    entries_.emplace_back(charset, cd);
    return cd;
  }
  static inline const iconv_t kInvalid = reinterpret_cast<iconv_t>(-1);

 private:
  static constexpr size_t kMaxEntries = 16;
  std::vector<std::pair<std::string, iconv_t>> entries_;
};

// Converts `bytes` in `charset` to UTF-8 (ill-formed input becomes U+FFFD). Returns
// false when the charset is unknown.
bool ConvertToUtf8(std::string_view charset, std::string_view bytes, std::string* out) {
  std::string cs = NormalizeCharset(charset);
  if (cs == "utf-8" || cs == "utf8" || cs == "us-ascii" || cs == "ascii" || cs == "unknown-8bit" ||
      cs == "x-unknown") {
    AppendLenientUtf8(out, bytes);
    return true;
  }
  if (cs == "iso-8859-1" || cs == "latin1" || cs == "iso_8859-1" || cs == "l1") {
    for (char c : bytes) {
      const auto b = static_cast<unsigned char>(c);
      if (b < 0x80) {
        out->push_back(c);
      } else {
        out->push_back(static_cast<char>(0xC0 | (b >> 6)));
        out->push_back(static_cast<char>(0x80 | (b & 0x3F)));
      }
    }
    return true;
  }
  thread_local IconvCache cache;
  iconv_t cd = cache.Get(cs);
  if (cd == IconvCache::kInvalid) return false;
  iconv(cd, nullptr, nullptr, nullptr, nullptr);  // reset shift state
  char* in = const_cast<char*>(bytes.data());
  size_t in_left = bytes.size();
  char buf[1024];
  while (in_left > 0) {
    char* o = buf;
    size_t o_left = sizeof(buf);
    const size_t r = iconv(cd, &in, &in_left, &o, &o_left);
    out->append(buf, static_cast<size_t>(o - buf));
    if (r != static_cast<size_t>(-1)) continue;
    if (errno == E2BIG) continue;
    out->append("\xEF\xBF\xBD");  // U+FFFD for an ill-formed or truncated sequence
    if (errno == EINVAL) break;
    ++in;
    --in_left;
    iconv(cd, nullptr, nullptr, nullptr, nullptr);
  }
  char* o = buf;
  size_t o_left = sizeof(buf);
  iconv(cd, nullptr, nullptr, &o, &o_left);
  out->append(buf, static_cast<size_t>(o - buf));
  return true;
}

// --- RFC 2047 ------------------------------------------------------------------------

struct EncodedWord {
  std::string_view charset;  // language suffix removed
  char encoding;             // 'B' or 'Q'
  std::string_view text;
  size_t end;  // index just past "?="
};

// Parses "=?charset?E?text?=" at s[pos] (which is '=').
bool ParseEncodedWord(std::string_view s, size_t pos, EncodedWord* w) {
  if (pos + 1 >= s.size() || s[pos + 1] != '?') return false;
  size_t i = pos + 2;
  const size_t cs_start = i;
  while (i < s.size() && s[i] != '?') {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c <= 32 || c >= 127 || c == '=' || c == '(' || c == ')' || c == '"') return false;
    ++i;
  }
  if (i == cs_start || i + 3 >= s.size()) return false;
  std::string_view charset = s.substr(cs_start, i - cs_start);
  if (size_t star = charset.find('*'); star != kNpos) charset = charset.substr(0, star);
  if (charset.empty()) return false;
  const char e = AsciiLower(s[i + 1]);
  const char enc = e == 'b' ? 'B' : e == 'q' ? 'Q' : '\0';
  if (!enc || s[i + 2] != '?') return false;
  const size_t text_start = i + 3;
  size_t q = text_start;
  while (q < s.size() && s[q] != '?') {
    if (IsSpace(s[q])) return false;
    ++q;
  }
  if (q + 1 >= s.size() || s[q + 1] != '=') return false;
  w->charset = charset;
  w->encoding = enc;
  w->text = s.substr(text_start, q - text_start);
  w->end = q + 2;
  return true;
}

inline int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

void DecodeQ(std::string_view text, std::string* out) {
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '_') {
      out->push_back(' ');
    } else if (c == '=' && i + 2 < text.size() && HexValue(text[i + 1]) >= 0 &&
               HexValue(text[i + 2]) >= 0) {
      out->push_back(static_cast<char>(HexValue(text[i + 1]) * 16 + HexValue(text[i + 2])));
      i += 2;
    } else {
      out->push_back(c);
    }
  }
}

void DecodeB(std::string_view text, std::string* out) {
  uint32_t acc = 0;
  int bits = 0;
  for (char c : text) {
    int v;
    if (c >= 'A' && c <= 'Z') {
      v = c - 'A';
    } else if (c >= 'a' && c <= 'z') {
      v = c - 'a' + 26;
    } else if (c >= '0' && c <= '9') {
      v = c - '0' + 52;
    } else if (c == '+') {
      v = 62;
    } else if (c == '/') {
      v = 63;
    } else if (c == '=') {
      break;
    } else {
      continue;  // tolerate stray characters
    }
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out->push_back(static_cast<char>((acc >> bits) & 0xFF));
    }
  }
}

// Decoded words must not smuggle line breaks or NULs into a header value.
void SanitizeControls(std::string* s, size_t from) {
  for (size_t i = from; i < s->size(); ++i) {
    char& c = (*s)[i];
    if (c == '\r' || c == '\n' || c == '\0') c = ' ';
  }
}

// --- Dates -----------------------------------------------------------------------------

// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
int64_t DaysFromCivil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

void CivilFromDays(int64_t z, int64_t* y, unsigned* m, unsigned* d) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const auto doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  *d = doy - (153 * mp + 2) / 5 + 1;
  *m = mp < 10 ? mp + 3 : mp - 9;
  *y = static_cast<int64_t>(yoe) + era * 400 + (*m <= 2);
}

bool IsLeap(int y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

int DaysInMonth(int y, int m) {
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && IsLeap(y) ? 29 : kDays[m - 1];
}

constexpr const char* kMonthNames[] = {"january",   "february", "march",    "april",
                                       "may",       "june",     "july",     "august",
                                       "september", "october",  "november", "december"};
constexpr const char* kMonthAbbr[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                      "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
constexpr const char* kWeekdayAbbr[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};

struct DateParts {
  int day = -1;
  int month = -1;
  int year = -1;
  int year_digits = 0;
  int hour = -1;
  int minute = 0;
  int second = 0;
  bool have_zone = false;
  int zone_seconds = 0;  // east of UTC
  int meridiem = 0;      // 0 none, 1 am, 2 pm
};

// Parses up to `max_digits` digits at s[*i]. Returns -1 when there are none.
int ParseNumber(std::string_view s, size_t* i, size_t max_digits, size_t* digits = nullptr) {
  size_t start = *i;
  int v = 0;
  while (*i < s.size() && IsDigit(s[*i]) && *i - start < max_digits) {
    v = v * 10 + (s[*i] - '0');
    ++*i;
  }
  if (digits) *digits = *i - start;
  return *i == start ? -1 : v;
}

// "+hhmm", "-hh", "+hh:mm". Returns false if `tok` is not a numeric zone.
bool ParseNumericZone(std::string_view tok, int* seconds) {
  if (tok.size() < 2 || (tok[0] != '+' && tok[0] != '-') || !IsDigit(tok[1])) return false;
  size_t i = 1;
  size_t digits = 0;
  int v = ParseNumber(tok, &i, 4, &digits);
  int hh, mm;
  if (digits == 4) {
    hh = v / 100;
    mm = v % 100;
  } else if (digits <= 2) {
    hh = v;
    mm = 0;
    if (i < tok.size() && tok[i] == ':') {
      ++i;
      size_t md = 0;
      mm = ParseNumber(tok, &i, 2, &md);
      if (md != 2) return false;
    }
  } else {
    return false;
  }
  if (i != tok.size() || mm > 59) return false;
  *seconds = (tok[0] == '-' ? -1 : 1) * (hh * 3600 + mm * 60);
  return true;
}

// Named zones of RFC 5322 (unknown names mean -0000, i.e. UTC, as the RFC advises).
bool NamedZone(std::string_view w, bool after_time, int* seconds) {
  static constexpr std::pair<std::string_view, int> kZones[] = {
      {"ut", 0},   {"utc", 0},  {"gmt", 0},  {"z", 0},    {"est", -5}, {"edt", -4},
      {"cst", -6}, {"cdt", -5}, {"mst", -7}, {"mdt", -6}, {"pst", -8}, {"pdt", -7},
  };
  for (const auto& [name, hours] : kZones) {
    if (EqualsIgnoreCase(w, name)) {
      *seconds = hours * 3600;
      return true;
    }
  }
  // Military zones (one letter but J): their signs were defined backwards, so RFC 5322
  // says to treat them as -0000. Only after the time, where a lone letter is unambiguous.
  if (after_time && w.size() == 1 && IsAlpha(w[0]) && AsciiLower(w[0]) != 'j') {
    *seconds = 0;
    return true;
  }
  return false;
}

int MonthFromWord(std::string_view w) {
  if (w.size() < 3) return -1;
  for (int m = 0; m < 12; ++m) {
    std::string_view full = kMonthNames[m];
    if (w.size() > full.size()) continue;
    bool prefix = true;
    for (size_t i = 0; i < w.size(); ++i) {
      if (AsciiLower(w[i]) != full[i]) {
        prefix = false;
        break;
      }
    }
    // "Jul", "July", "Sept": a prefix of at least three letters of the full name.
    if (prefix) return m + 1;
  }
  return -1;
}

void HandleDateToken(std::string_view tok, DateParts* p, int depth);

void HandleAlphaToken(std::string_view tok, DateParts* p) {
  // Alphabetic run, possibly followed by a numeric zone ("GMT+0200").
  size_t a = 0;
  while (a < tok.size() && IsAlpha(tok[a])) ++a;
  std::string_view word = tok.substr(0, a);
  std::string_view rest = tok.substr(a);
  if (!rest.empty()) {
    int secs;
    if ((EqualsIgnoreCase(word, "gmt") || EqualsIgnoreCase(word, "ut") ||
         EqualsIgnoreCase(word, "utc")) &&
        ParseNumericZone(rest, &secs) && !p->have_zone) {
      p->have_zone = true;
      p->zone_seconds = secs;
    }
    return;
  }
  if (int m = MonthFromWord(word); m > 0) {
    if (p->month < 0) p->month = m;
    return;
  }
  if (EqualsIgnoreCase(word, "am") || EqualsIgnoreCase(word, "pm")) {
    p->meridiem = AsciiLower(word[0]) == 'a' ? 1 : 2;
    return;
  }
  int secs;
  if (!p->have_zone && NamedZone(word, p->hour >= 0, &secs)) {
    p->have_zone = true;
    p->zone_seconds = secs;
  }
  // Anything else (weekday names, "DST", unknown zones) carries no information we use.
}

void HandleTimeToken(std::string_view tok, DateParts* p) {
  size_t i = 0;
  const int h = ParseNumber(tok, &i, 2);
  if (h < 0 || i >= tok.size() || tok[i] != ':') return;
  ++i;
  size_t md = 0;
  const int m = ParseNumber(tok, &i, 2, &md);
  if (md != 2 && md != 1) return;
  int s = 0;
  if (i < tok.size() && tok[i] == ':') {
    ++i;
    size_t sd = 0;
    s = ParseNumber(tok, &i, 2, &sd);
    if (sd == 0) return;
  }
  if (i < tok.size() && (tok[i] == '.' || tok[i] == ',')) {  // fractional seconds
    ++i;
    while (i < tok.size() && IsDigit(tok[i])) ++i;
  }
  if (p->hour >= 0) return;
  p->hour = h;
  p->minute = m;
  p->second = s;
  if (i < tok.size()) HandleDateToken(tok.substr(i), p, 1);  // "10:52:37+0200", "10:52Z"
}

void HandleNumberToken(std::string_view tok, DateParts* p) {
  if (tok.size() > 4) return;
  int v = 0;
  for (char c : tok) v = v * 10 + (c - '0');
  if (tok.size() <= 2 && p->day < 0) {
    p->day = v;
  } else if (p->year < 0) {
    p->year = v;
    p->year_digits = static_cast<int>(tok.size());
  }
}

void HandleDateToken(std::string_view tok, DateParts* p, int depth) {
  while (!tok.empty() && tok.back() == '.') tok.remove_suffix(1);
  if (tok.empty() || depth > 2) return;
  int secs;
  if (tok[0] == '+' || tok[0] == '-') {
    if (ParseNumericZone(tok, &secs) && !p->have_zone) {
      p->have_zone = true;
      p->zone_seconds = secs;
    }
    return;
  }
  if (IsAlpha(tok[0])) {
    HandleAlphaToken(tok, p);
    return;
  }
  if (!IsDigit(tok[0])) return;
  size_t i = 0;
  while (i < tok.size() && IsDigit(tok[i])) ++i;
  if (i < tok.size() && tok[i] == ':') {
    HandleTimeToken(tok, p);
    return;
  }
  if (i == tok.size()) {
    HandleNumberToken(tok, p);
    return;
  }
  // "01-Jul-2003" (RFC 850) and "2003-07-01" (ISO 8601, optionally "T10:52:37Z").
  if (tok[i] == '-' || tok[i] == '/') {
    std::string_view parts[3];
    size_t np = 0;
    size_t start = 0;
    std::string_view tail;
    for (size_t k = 0; k <= tok.size(); ++k) {
      if (k == tok.size() || tok[k] == '-' || tok[k] == '/' || (np == 2 && tok[k] == 'T')) {
        if (np == 3) return;
        parts[np++] = tok.substr(start, k - start);
        start = k + 1;
        if (k < tok.size() && tok[k] == 'T') {
          tail = tok.substr(k + 1);
          break;
        }
      }
    }
    if (np != 3) return;
    if (parts[0].size() == 4 && parts[1].size() <= 2 && IsDigit(parts[1][0])) {
      size_t k = 0;
      const int y = ParseNumber(parts[0], &k, 4);
      k = 0;
      const int m = ParseNumber(parts[1], &k, 2);
      if (k != parts[1].size()) return;
      k = 0;
      const int d = ParseNumber(parts[2], &k, 2);
      if (k != parts[2].size() || p->year >= 0 || p->day >= 0 || p->month >= 0) return;
      p->year = y;
      p->year_digits = 4;
      p->month = m;
      p->day = d;
      if (!tail.empty()) HandleDateToken(tail, p, depth + 1);
      return;
    }
    if (tok[i] == '-') {
      for (const auto& part : parts) HandleDateToken(part, p, depth + 1);
    }
  }
}

bool IsDateDelimiter(char c) { return static_cast<unsigned char>(c) <= 32 || c == ','; }

// --- Addresses -------------------------------------------------------------------------

// Skips a comment starting at s[i] == '(' (nested, with quoted-pairs); returns the index
// after it.
size_t SkipComment(std::string_view s, size_t i) {
  int depth = 0;
  for (; i < s.size(); ++i) {
    const char c = s[i];
    if (c == '\\') {
      ++i;
    } else if (c == '(') {
      ++depth;
    } else if (c == ')') {
      if (--depth == 0) return i + 1;
    }
  }
  return s.size();
}

std::string NormalizeAddress(std::string addr) {
  // Obsolete route: "@a.example,@b.example:user@c.example".
  if (!addr.empty() && addr[0] == '@') {
    if (size_t colon = addr.rfind(':'); colon != std::string::npos) addr.erase(0, colon + 1);
  }
  if (size_t at = addr.rfind('@'); at != std::string::npos) {
    for (size_t i = at + 1; i < addr.size(); ++i) addr[i] = AsciiLower(addr[i]);
  }
  return addr;
}

// --- GMime -----------------------------------------------------------------------------

std::once_flag gmime_once;

void EnsureGMime() {
  std::call_once(gmime_once, [] { g_mime_init(); });
}

struct GObjectUnref {
  void operator()(void* p) const {
    if (p) g_object_unref(p);
  }
};
template <typename T>
using GPtr = std::unique_ptr<T, GObjectUnref>;

std::string NameOf(GMimeObject* obj) {
  const char* name = g_mime_object_get_content_disposition_parameter(obj, "filename");
  if (!name || !*name) name = g_mime_object_get_content_type_parameter(obj, "name");
  if (!name || !*name) return {};
  std::string_view v(name);
  // GMime decodes RFC 2231 and (loosely) RFC 2047; DecodeHeader catches what it left,
  // and guarantees UTF-8.
  return DecodeHeader(v);
}

constexpr int kMaxMimeDepth = 64;

void CollectNames(GMimeObject* obj, int depth, std::vector<std::string>* out) {
  if (!obj || depth > kMaxMimeDepth) return;
  if (GMIME_IS_MULTIPART(obj)) {
    auto* mp = GMIME_MULTIPART(obj);
    const int count = g_mime_multipart_get_count(mp);
    for (int i = 0; i < count; ++i) CollectNames(g_mime_multipart_get_part(mp, i), depth + 1, out);
    return;
  }
  if (std::string name = NameOf(obj); !name.empty()) out->push_back(std::move(name));
  if (GMIME_IS_MESSAGE_PART(obj)) {
    GMimeMessage* inner = g_mime_message_part_get_message(GMIME_MESSAGE_PART(obj));
    if (inner) CollectNames(g_mime_message_get_mime_part(inner), depth + 1, out);
  }
}

// Case-insensitive search for "name": every attachment name parameter ("name",
// "filename", "filename*0*") contains it, so most messages skip the full parse.
bool MentionsName(std::string_view s) {
  const size_t n = s.size();
  for (size_t i = 0; i + 4 <= n; ++i) {
    // c | 0x20 maps exactly the upper- and lower-case letter to the lower-case one.
    if ((s[i] | 0x20) == 'n' && (s[i + 1] | 0x20) == 'a' && (s[i + 2] | 0x20) == 'm' &&
        (s[i + 3] | 0x20) == 'e') {
      return true;
    }
  }
  return false;
}

}  // namespace

// --- Hot path ----------------------------------------------------------------------------

size_t BodyOffset(std::string_view msg) {
  size_t header_end;
  return SplitHeader(msg, &header_end);
}

std::string_view HeaderBlock(std::string_view msg) {
  size_t header_end;
  SplitHeader(msg, &header_end);
  return msg.substr(0, header_end);
}

bool FieldScanner::Next(Field* out) {
  while (!rest_.empty()) {
    const size_t end = NextLine(rest_, 0);
    std::string_view line = rest_.substr(0, end);
    if (IsEmptyLine(line)) {  // end of the header section
      rest_ = {};
      return false;
    }
    if (state_ == kStart && IsEnvelopeLine(line)) {
      state_ = kAfterEnvelope;
      rest_.remove_prefix(end);
      continue;
    }
    size_t stop = end;  // extend over continuation lines
    while (stop < rest_.size() && IsWsp(rest_[stop])) stop = NextLine(rest_, stop);
    size_t name_len = 0;
    const size_t colon = FieldColon(line, &name_len);
    if (colon == kNpos) {
      if (state_ != kInFields) {  // same rule as BodyOffset: no header block at all
        rest_ = {};
        return false;
      }
      rest_.remove_prefix(stop);
      continue;
    }
    state_ = kInFields;
    out->name = line.substr(0, name_len);
    out->value = TrimValue(rest_.substr(colon + 1, stop - colon - 1));
    rest_.remove_prefix(stop);
    return true;
  }
  return false;
}

std::optional<std::string_view> FindField(std::string_view headers, std::string_view name) {
  // Same rules as FieldScanner, but only lines starting with `name` are looked at closely:
  // this runs several times on every message.
  size_t name_len = 0;
  if (name.empty() || FieldColon(name, &name_len) != kNpos || name_len != name.size()) {
    // Not a valid field name: FieldScanner would never yield it either.
    return std::nullopt;
  }
  const std::string_view h = headers;
  const size_t n = h.size();
  size_t pos = IsEnvelopeLine(h) ? NextLine(h, 0) : 0;
  if (pos >= n || FieldColon(h.substr(pos, NextLine(h, pos) - pos), &name_len) == kNpos) {
    return std::nullopt;
  }
  const char first = AsciiLower(name[0]);
  while (pos < n) {
    const char c = h[pos];
    if (c == '\n' || (c == '\r' && (pos + 1 == n || h[pos + 1] == '\n'))) break;
    if (AsciiLower(c) == first && n - pos > name.size() &&
        EqualsIgnoreCase(h.substr(pos, name.size()), name)) {
      size_t i = pos + name.size();
      while (i < n && IsWsp(h[i])) ++i;
      if (i < n && h[i] == ':') {
        size_t stop = NextLine(h, pos);
        while (stop < n && IsWsp(h[stop])) stop = NextLine(h, stop);
        return TrimValue(h.substr(i + 1, stop - i - 1));
      }
    }
    pos = NextLine(h, pos);
  }
  return std::nullopt;
}

// --- Header text ---------------------------------------------------------------------------

std::string Unfold(std::string_view raw) {
  std::string out;
  out.reserve(raw.size());
  bool pending_space = false;
  for (char c : raw) {
    if (IsSpace(c)) {
      pending_space = !out.empty();
      continue;
    }
    if (pending_space) {
      out.push_back(' ');
      pending_space = false;
    }
    out.push_back(c);
  }
  return out;
}

std::string DecodeHeader(std::string_view raw) {
  const std::string text = Unfold(raw);
  std::string_view s(text);
  std::string out;
  out.reserve(s.size());
  if (s.find("=?") == kNpos) {
    AppendLenientUtf8(&out, s);
    return out;
  }
  // Consecutive words in one charset are converted together: encoders split multi-byte
  // characters across words.
  std::string pending_bytes;
  std::string_view pending_charset;
  size_t pending_start = 0;  // raw text of the pending run, kept if it cannot be decoded
  size_t pending_end = 0;
  bool have_pending = false;
  auto flush = [&] {
    if (!have_pending) return;
    const size_t from = out.size();
    if (ConvertToUtf8(pending_charset, pending_bytes, &out)) {
      SanitizeControls(&out, from);
    } else {
      AppendLenientUtf8(&out, s.substr(pending_start, pending_end - pending_start));
    }
    pending_bytes.clear();
    have_pending = false;
  };

  size_t plain_start = 0;  // start of text not yet emitted
  size_t pos = 0;
  while ((pos = s.find("=?", pos)) != kNpos) {
    EncodedWord w;
    if (!ParseEncodedWord(s, pos, &w)) {
      pos += 2;
      continue;
    }
    std::string_view between = s.substr(plain_start, pos - plain_start);
    const bool only_space = between.find_first_not_of(' ') == kNpos;
    if (!(have_pending && only_space)) {
      flush();
      AppendLenientUtf8(&out, between);
    }
    if (have_pending && !EqualsIgnoreCase(pending_charset, w.charset)) flush();
    if (!have_pending) {
      have_pending = true;
      pending_charset = w.charset;
      pending_start = pos;
    }
    if (w.encoding == 'B') {
      DecodeB(w.text, &pending_bytes);
    } else {
      DecodeQ(w.text, &pending_bytes);
    }
    pending_end = w.end;
    pos = plain_start = w.end;
  }
  flush();
  AppendLenientUtf8(&out, s.substr(plain_start));
  return out;
}

// --- Dates -----------------------------------------------------------------------------

std::optional<int64_t> ParseDate(std::string_view text) {
  DateParts p;
  size_t i = 0;
  const size_t n = text.size();
  while (i < n) {
    const char c = text[i];
    if (c == '(') {
      i = SkipComment(text, i);
      continue;
    }
    if (IsDateDelimiter(c)) {
      ++i;
      continue;
    }
    const size_t start = i;
    while (i < n && !IsDateDelimiter(text[i]) && text[i] != '(') ++i;
    HandleDateToken(text.substr(start, i - start), &p, 0);
  }
  if (p.day < 1 || p.month < 1 || p.year < 0) return std::nullopt;
  int year = p.year;
  if (p.year_digits <= 2) {
    year += year < 50 ? 2000 : 1900;
  } else if (p.year_digits == 3) {
    year += 1900;
  }
  if (year < 1000 || year > 9999 || p.month > 12 || p.day > DaysInMonth(year, p.month)) {
    return std::nullopt;
  }
  int hour = p.hour < 0 ? 0 : p.hour;
  if (p.meridiem != 0) {
    if (hour < 1 || hour > 12) return std::nullopt;
    if (p.meridiem == 1 && hour == 12) hour = 0;
    if (p.meridiem == 2 && hour != 12) hour += 12;
  }
  if (hour > 23 || p.minute > 59 || p.second > 60) return std::nullopt;
  const int64_t days =
      DaysFromCivil(year, static_cast<unsigned>(p.month), static_cast<unsigned>(p.day));
  return days * 86400 + hour * 3600 + p.minute * 60 + p.second - p.zone_seconds;
}

std::string FormatAsctime(int64_t t) {
  int64_t days = t / 86400;
  int64_t secs = t % 86400;
  if (secs < 0) {
    secs += 86400;
    --days;
  }
  int64_t y;
  unsigned m, d;
  CivilFromDays(days, &y, &m, &d);
  int64_t wd = (days + 4) % 7;  // 1970-01-01 was a Thursday
  if (wd < 0) wd += 7;
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%s %s %2u %02d:%02d:%02d %lld", kWeekdayAbbr[wd],
                kMonthAbbr[m - 1], d, static_cast<int>(secs / 3600),
                static_cast<int>(secs / 60 % 60), static_cast<int>(secs % 60),
                static_cast<long long>(y));
  return buf;
}

std::optional<int64_t> FirstReceivedDate(std::string_view headers) {
  const auto received = FindField(headers, "Received");
  if (!received) return std::nullopt;
  const size_t semi = received->rfind(';');
  if (semi == kNpos) return std::nullopt;
  return ParseDate(received->substr(semi + 1));
}

// --- Addresses -------------------------------------------------------------------------

std::string FirstAddress(std::string_view raw) {
  const size_t n = raw.size();
  size_t i = 0;
  std::string fallback;  // first segment without '@' ("MAILER-DAEMON"), if nothing better
  while (i < n) {
    std::string bare;   // the segment without comments and unquoted white space
    std::string angle;  // the content of <...>
    bool in_angle = false;
    bool have_angle = false;
    while (i < n) {
      const char c = raw[i];
      std::string& dst = in_angle ? angle : bare;
      if (c == '(') {
        i = SkipComment(raw, i);
        continue;
      }
      if (c == '"') {  // quoted string, copied with its quotes
        size_t j = i + 1;
        while (j < n && raw[j] != '"') j += raw[j] == '\\' ? 2 : 1;
        j = std::min(j + 1, n);
        dst.append(raw.substr(i, j - i));
        i = j;
        continue;
      }
      ++i;
      if (IsSpace(c)) continue;
      if (in_angle) {
        if (c == '>') {
          in_angle = false;
        } else {
          angle.push_back(c);
        }
        continue;
      }
      if (c == '<') {
        in_angle = have_angle = true;
        angle.clear();
      } else if (c == ',' || c == ';') {
        break;
      } else if (c == ':') {
        bare.clear();  // a group's display name
      } else {
        bare.push_back(c);
      }
    }
    if (have_angle) {
      if (!angle.empty()) return NormalizeAddress(std::move(angle));
    } else if (bare.find('@') != std::string::npos) {
      return NormalizeAddress(std::move(bare));
    } else if (fallback.empty()) {
      fallback = std::move(bare);
    }
  }
  return fallback;
}

// --- Full parse ----------------------------------------------------------------------------

std::vector<std::string> AttachmentNames(std::string_view msg) {
  std::vector<std::string> names;
  if (IsEnvelopeLine(msg)) msg.remove_prefix(NextLine(msg, 0));
  if (!MentionsName(msg)) return names;
  EnsureGMime();
  GPtr<GMimeStream> stream(g_mime_stream_mem_new_with_buffer(msg.data(), msg.size()));
  if (!stream) return names;
  GPtr<GMimeParser> parser(g_mime_parser_new_with_stream(stream.get()));
  if (!parser) return names;
  g_mime_parser_set_format(parser.get(), GMIME_FORMAT_MESSAGE);
  GPtr<GMimeMessage> message(g_mime_parser_construct_message(parser.get(), nullptr));
  if (!message) return names;
  CollectNames(g_mime_message_get_mime_part(message.get()), 0, &names);
  return names;
}

std::string CaseFold(std::string_view utf8) {
  std::string out;
  if (IsAscii(utf8)) {
    out.resize(utf8.size());
    for (size_t i = 0; i < utf8.size(); ++i) out[i] = AsciiLower(utf8[i]);
    return out;
  }
  std::string valid;
  valid.reserve(utf8.size() + 8);
  AppendLenientUtf8(&valid, utf8);
  out.reserve(valid.size());
  // g_utf8_casefold returns a NUL-terminated string, so fold the text between NULs.
  std::string_view v(valid);
  while (true) {
    const size_t nul = v.find('\0');
    std::string_view piece = v.substr(0, nul);
    if (!piece.empty()) {
      gchar* folded = g_utf8_casefold(piece.data(), static_cast<gssize>(piece.size()));
      out.append(folded);
      g_free(folded);
    }
    if (nul == kNpos) break;
    out.push_back('\0');
    v.remove_prefix(nul + 1);
  }
  return out;
}

namespace {

// Bytes a quoted-printable line carries as they are, wherever they stand
// but at the line's end (space, tab) or its start ('F' of "From ", '.').
constexpr auto kQpLiteral = [] {
  std::array<bool, 256> t{};
  for (int c = 33; c <= 126; ++c) t[c] = c != '=';
  t[' '] = t['\t'] = true;
  return t;
}();

// Copies the run of literal bytes at `p` (at most `n`) to `out` and returns
// its length; may write past the run, never past out + n. 16 bytes at a
// time, since text bodies are mostly literal: the byte-by-byte table walk
// and a memcpy call per run were most of the encoder's time.
size_t QpCopyLiteral(const char* p, size_t n, char* out) {
  size_t i = 0;
#if defined(__SSE2__)
  // c + 96 (mod 256) maps 32..126 onto -128..-34 as signed bytes: printable
  // ASCII in one signed compare.
  const __m128i shift = _mm_set1_epi8(96);
  const __m128i below = _mm_set1_epi8(-33);
  const __m128i equals = _mm_set1_epi8('=');
  const __m128i tab = _mm_set1_epi8('\t');
  for (; i + 16 <= n; i += 16) {
    __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i), v);
    __m128i printable = _mm_cmplt_epi8(_mm_add_epi8(v, shift), below);
    __m128i literal = _mm_or_si128(_mm_andnot_si128(_mm_cmpeq_epi8(v, equals), printable),
                                   _mm_cmpeq_epi8(v, tab));
    unsigned other = ~static_cast<unsigned>(_mm_movemask_epi8(literal)) & 0xFFFFu;
    if (other != 0) return i + static_cast<size_t>(__builtin_ctz(other));
  }
#endif
  for (; i < n && kQpLiteral[static_cast<unsigned char>(p[i])]; ++i) out[i] = p[i];
  return i;
}

}  // namespace

std::string EncodeQuotedPrintable(std::string_view in) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  constexpr size_t kMaxCol = 75;  // plus the soft break's '=' makes 76
  // The worst case: every byte as "=XX" plus a soft break per 25 bytes and a
  // newline per line, written through a pointer, uninitialized: this runs
  // over every text body of a PST, and per-byte capacity checks and
  // zeroing four times the input were a third of a PST -> mbox merge.
  std::unique_ptr<char[]> buf(new char[in.size() * 4 + 16]);
  char* o = buf.get();
  auto encoded = [&](unsigned char c) {
    *o++ = '=';
    *o++ = kHex[c >> 4];
    *o++ = kHex[c & 15];
  };
  size_t start = 0;
  while (start <= in.size()) {
    size_t nl = in.find('\n', start);
    bool last = nl == std::string_view::npos;
    std::string_view line = in.substr(start, last ? std::string_view::npos : nl - start);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (last && line.empty()) break;
    const char* p = line.data();
    const size_t n = line.size();
    // The line's trailing space or tab must be encoded: literal runs stop before it.
    const size_t literal_end = n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t') ? n - 1 : n;
    size_t k = 0, col = 0;
    if (n > 0 && (line.starts_with("From ") || p[0] == '.')) {
      encoded(static_cast<unsigned char>(p[0]));
      k = 1;
      col = 3;
    }
    while (k < n) {
      // A run of literal bytes that fits the line, copied at once.
      size_t limit = std::min(literal_end, k + (kMaxCol - col));
      size_t run = QpCopyLiteral(p + k, limit - k, o);
      if (run > 0) {
        o += run;
        col += run;
        k += run;
        continue;
      }
      unsigned char c = static_cast<unsigned char>(p[k]);
      bool literal = kQpLiteral[c] && k < literal_end;
      size_t need = literal ? 1 : 3;
      if (col + need > kMaxCol) {
        *o++ = '=';
        *o++ = '\n';
        col = 0;
      }
      if (literal) {
        *o++ = static_cast<char>(c);
      } else {
        encoded(c);
      }
      col += need;
      ++k;
    }
    *o++ = '\n';
    if (last) break;
    start = nl + 1;
  }
  return std::string(buf.get(), static_cast<size_t>(o - buf.get()));
}

std::string DecodeBase64(std::string_view text) {
  std::string out;
  DecodeB(text, &out);
  return out;
}

}  // namespace mbx::mime
