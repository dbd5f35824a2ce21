#include "formats/pst/mapi_to_mime.h"

#include <iconv.h>
#define XXH_STATIC_LINKING_ONLY  // an XXH3_state_t on the stack
#include <xxhash.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <ctime>
#include <optional>
#include <vector>

#include "engine/fingerprint.h"
#include "formats/mime/mime.h"
#include "formats/pst/vcard_ical.h"

namespace mbx::pst {

// ---------------------------------------------------------------------------
// PropertyBag

bool PropertyBag::IdBefore(const Entry& e, uint16_t id) { return e.first < id; }

PropValue& PropertyBag::Slot(uint16_t id) {
  // Bags are mostly filled in id order: then this appends.
  if (props_.empty() || props_.back().first < id)
    return props_.emplace_back(id, PropValue{}).second;
  auto it = std::lower_bound(props_.begin(), props_.end(), id, IdBefore);
  if (it == props_.end() || it->first != id) it = props_.emplace(it, id, PropValue{});
  return it->second;
}

void PropertyBag::SetInt32(uint16_t id, int32_t v) {
  std::string b(4, '\0');
  std::memcpy(b.data(), &v, 4);  // little-endian host (x86-64/arm64)
  Slot(id) = PropValue{kPtInt32, std::move(b), {}};
}

void PropertyBag::SetFileTime(uint16_t id, uint64_t filetime) {
  std::string b(8, '\0');
  std::memcpy(b.data(), &filetime, 8);
  Slot(id) = PropValue{kPtSysTime, std::move(b), {}};
}

const PropValue* PropertyBag::Find(uint16_t id) const {
  auto it = std::lower_bound(props_.begin(), props_.end(), id, IdBefore);
  return it == props_.end() || it->first != id ? nullptr : &it->second;
}

std::optional<std::string> PropertyBag::String(uint16_t id) const {
  const PropValue* v = Find(id);
  if (v == nullptr || (v->type != kPtString8 && v->type != kPtUnicode)) return std::nullopt;
  return v->data;
}

std::optional<int64_t> PropertyBag::Int(uint16_t id) const {
  const PropValue* v = Find(id);
  if (v == nullptr) return std::nullopt;
  const auto* p = reinterpret_cast<const unsigned char*>(v->data.data());
  switch (v->type) {
    case kPtBoolean:
    case kPtInt16:
      if (v->data.size() < 1) return std::nullopt;
      return v->data.size() >= 2 ? static_cast<int16_t>(p[0] | (p[1] << 8)) : p[0];
    case kPtInt32: {
      if (v->data.size() < 4) return std::nullopt;
      uint32_t u = p[0] | (p[1] << 8) | (p[2] << 16) | (static_cast<uint32_t>(p[3]) << 24);
      return static_cast<int32_t>(u);
    }
    case kPtInt64:
    case kPtSysTime: {
      if (v->data.size() < 8) return std::nullopt;
      uint64_t u = 0;
      for (int i = 7; i >= 0; --i) u = (u << 8) | p[i];
      return static_cast<int64_t>(u);
    }
    default:
      return std::nullopt;
  }
}

std::optional<int64_t> PropertyBag::UnixTime(uint16_t id) const {
  const PropValue* v = Find(id);
  if (v == nullptr || v->type != kPtSysTime) return std::nullopt;
  auto ft = Int(id);
  if (!ft || *ft <= 0) return std::nullopt;
  return FileTimeToUnix(static_cast<uint64_t>(*ft));
}

std::optional<std::string_view> PropertyBag::Bytes(uint16_t id) const {
  const PropValue* v = Find(id);
  if (v == nullptr) return std::nullopt;
  return std::string_view(v->data);
}

namespace {
constexpr int64_t kFileTimeUnixEpoch = 116444736000000000LL;  // 1970-01-01 in FILETIME ticks
}  // namespace

int64_t FileTimeToUnix(uint64_t filetime) {
  return (static_cast<int64_t>(filetime) - kFileTimeUnixEpoch) / 10000000;
}
uint64_t UnixToFileTime(int64_t unix_time) {
  return static_cast<uint64_t>(unix_time * 10000000 + kFileTimeUnixEpoch);
}

// ---------------------------------------------------------------------------
// RTF: LZFu decompression ([MS-OXRTFCP])

namespace {

constexpr uint32_t kLzfu = 0x75465a4c;  // "LZFu"
constexpr uint32_t kMela = 0x414c454d;  // "MELA"
constexpr std::string_view kRtfPrebuf =
    "{\\rtf1\\ansi\\mac\\deff0\\deftab720{\\fonttbl;}{\\f0\\fnil \\froman \\fswiss \\fmodern "
    "\\fscript \\fdecor MS Sans SerifSymbolArialTimes New RomanCourier{\\colortbl\\red0\\green0"
    "\\blue0\r\n\\par \\pard\\plain\\f0\\fs20\\b\\i\\u\\tab\\tx";

uint32_t Le32(std::string_view s, size_t at) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data() + at);
  return p[0] | (p[1] << 8) | (p[2] << 16) | (static_cast<uint32_t>(p[3]) << 24);
}

}  // namespace

uint32_t RtfCrc(std::string_view data) {
  static const std::array<uint32_t, 256> kTable = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  uint32_t crc = 0;
  for (unsigned char b : data) crc = kTable[(crc ^ b) & 0xff] ^ (crc >> 8);
  return crc;
}

Result<std::string> DecompressRtf(std::string_view in) {
  static_assert(kRtfPrebuf.size() == 207);
  if (in.size() < 16) return Status::Corruption("compressed RTF shorter than its 16-byte header");
  uint32_t comp_size = Le32(in, 0);
  uint32_t raw_size = Le32(in, 4);
  uint32_t type = Le32(in, 8);
  size_t end = std::min<size_t>(in.size(), static_cast<size_t>(comp_size) + 4);
  if (type == kMela) return std::string(in.substr(16, std::min<size_t>(raw_size, end - 16)));
  if (type != kLzfu)
    return Status::Corruption("compressed RTF has unknown type " + std::to_string(type));
  std::array<unsigned char, 4096> dict{};
  std::memcpy(dict.data(), kRtfPrebuf.data(), kRtfPrebuf.size());
  size_t wpos = kRtfPrebuf.size();
  std::string out;
  out.reserve(std::min<size_t>(raw_size, 64u << 20));
  size_t pos = 16;
  while (pos < end) {
    unsigned char control = static_cast<unsigned char>(in[pos++]);
    for (int bit = 0; bit < 8 && pos < end; ++bit) {
      if (control & (1u << bit)) {
        if (pos + 2 > end) return out;  // truncated reference: keep what we have
        size_t ref =
            (static_cast<unsigned char>(in[pos]) << 8) | static_cast<unsigned char>(in[pos + 1]);
        pos += 2;
        size_t offset = ref >> 4;
        size_t len = (ref & 0xf) + 2;
        if (offset == wpos) {  // the end marker
          if (out.size() > raw_size) out.resize(raw_size);
          return out;
        }
        for (size_t i = 0; i < len; ++i) {
          unsigned char c = dict[(offset + i) & 0xfff];
          out.push_back(static_cast<char>(c));
          dict[wpos] = c;
          wpos = (wpos + 1) & 0xfff;
        }
      } else {
        unsigned char c = static_cast<unsigned char>(in[pos++]);
        out.push_back(static_cast<char>(c));
        dict[wpos] = c;
        wpos = (wpos + 1) & 0xfff;
      }
    }
  }
  if (out.size() > raw_size) out.resize(raw_size);
  return out;
}

// ---------------------------------------------------------------------------
// RTF de-encapsulation ([MS-OXRTFEX])

namespace {

void AppendUtf8(std::string* out, uint32_t cp) {
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

bool IsSkippedDestination(std::string_view word) {
  static constexpr std::string_view kDest[] = {"fonttbl",    "colortbl",
                                               "stylesheet", "info",
                                               "pict",       "object",
                                               "header",     "footer",
                                               "headerl",    "headerr",
                                               "footerl",    "footerr",
                                               "listtable",  "listoverridetable",
                                               "rsidtbl",    "generator",
                                               "themedata",  "colorschememapping",
                                               "datastore",  "latentstyles",
                                               "xmlnstbl",   "filetbl",
                                               "revtbl",     "pgdsctbl",
                                               "mhtmltag"};
  return std::find(std::begin(kDest), std::end(kDest), word) != std::end(kDest);
}

class RtfDecoder {
 public:
  explicit RtfDecoder(std::string_view rtf) : s_(rtf) {}

  DecodedRtf Run() {
    DecodedRtf result;
    size_t probe = std::min<size_t>(s_.size(), 4096);
    std::string_view head = s_.substr(0, probe);
    if (head.find("\\fromhtml") != std::string_view::npos) {
      result.kind = DecodedRtf::Kind::kHtml;
    } else if (head.find("\\fromtext") != std::string_view::npos) {
      result.kind = DecodedRtf::Kind::kText;
    } else {
      result.body = std::string(s_);
      return result;
    }
    Decode();
    Flush();
    result.body = std::move(out_);
    return result;
  }

 private:
  struct State {
    bool skip = false;     // inside an ignored destination
    bool htmlrtf = false;  // inside \htmlrtf ... \htmlrtf0 (RTF-only rendering)
    bool htmltag = false;  // inside {\*\htmltag...}: always emitted
    int uc = 1;
  };

  bool Emitting() const { return !st_.skip && (st_.htmltag || !st_.htmlrtf); }

  void EmitByte(char c) {
    if (skip_fallback_ > 0) {
      --skip_fallback_;
      return;
    }
    if (Emitting()) pending_.push_back(c);
  }
  void EmitCodepoint(uint32_t cp) {
    if (!Emitting()) return;
    Flush();
    AppendUtf8(&out_, cp);
  }
  void Flush() {
    AppendCodepage(&out_, pending_, codepage_);
    pending_.clear();
  }

  void Decode() {
    size_t i = 0;
    bool group_start = false;
    while (i < s_.size()) {
      char c = s_[i];
      if (c == '{') {
        stack_.push_back(st_);
        skip_fallback_ = 0;
        group_start = true;
        ++i;
        continue;
      }
      if (c == '}') {
        if (!stack_.empty()) {
          st_ = stack_.back();
          stack_.pop_back();
        }
        skip_fallback_ = 0;
        group_start = false;
        ++i;
        continue;
      }
      bool at_group_start = group_start;
      group_start = false;
      if (c == '\r' || c == '\n') {
        ++i;
        continue;
      }
      if (c != '\\') {
        EmitByte(c);
        ++i;
        continue;
      }
      // A control symbol or control word.
      if (i + 1 >= s_.size()) break;
      char n = s_[i + 1];
      if (n == '\\' || n == '{' || n == '}') {
        EmitByte(n);
        i += 2;
        continue;
      }
      if (n == '\'') {
        if (i + 4 <= s_.size()) {
          int v = HexByte(s_.substr(i + 2, 2));
          if (v >= 0) EmitByte(static_cast<char>(v));
        }
        i += 4;
        continue;
      }
      if (n == '*') {
        // Ignorable destination: skipped unless it is an \htmltag group.
        size_t j = i + 2;
        while (j < s_.size() && (s_[j] == ' ' || s_[j] == '\r' || s_[j] == '\n')) ++j;
        if (s_.substr(j, 9) == "\\htmltag" || s_.substr(j, 8) == "\\htmltag") {
          st_.htmltag = true;
        } else {
          st_.skip = true;
        }
        i += 2;
        continue;
      }
      if (n == '\r' || n == '\n') {  // same as \par
        EmitText("\r\n");
        i += 2;
        continue;
      }
      if (n == '~') {
        if (skip_fallback_ > 0) {
          --skip_fallback_;
        } else {
          EmitCodepoint(0xa0);
        }
        i += 2;
        continue;
      }
      if (!IsAlpha(n)) {  // other control symbols (\- \_ \: \|): ignored
        if (n == '_') EmitByte('-');
        i += 2;
        continue;
      }
      size_t j = i + 1;
      while (j < s_.size() && IsAlpha(s_[j])) ++j;
      std::string_view word = s_.substr(i + 1, j - i - 1);
      bool has_param = false;
      long param = 0;
      bool neg = false;
      if (j < s_.size() && s_[j] == '-') {
        neg = true;
        ++j;
      }
      while (j < s_.size() && s_[j] >= '0' && s_[j] <= '9') {
        has_param = true;
        if (param < 100000000) param = param * 10 + (s_[j] - '0');
        ++j;
      }
      if (neg) param = -param;
      if (j < s_.size() && s_[j] == ' ') ++j;  // the delimiter belongs to the word
      i = j;
      ControlWord(word, has_param, param, at_group_start);
    }
  }

  void EmitText(std::string_view t) {
    if (skip_fallback_ > 0) {
      --skip_fallback_;
      return;
    }
    if (Emitting()) pending_.append(t);
  }

  void ControlWord(std::string_view word, bool has_param, long param, bool at_group_start) {
    if (skip_fallback_ > 0) {
      --skip_fallback_;
      return;
    }
    if (word == "htmlrtf") {
      st_.htmlrtf = !has_param || param != 0;
    } else if (word == "par" || word == "line") {
      EmitText("\r\n");
    } else if (word == "tab") {
      EmitText("\t");
    } else if (word == "u" && has_param) {
      EmitCodepoint(static_cast<uint32_t>(param < 0 ? param + 65536 : param));
      skip_fallback_ = st_.uc;
    } else if (word == "uc" && has_param) {
      st_.uc = static_cast<int>(std::max(0L, param));
    } else if (word == "ansicpg" && has_param) {
      Flush();
      codepage_ = static_cast<int>(param);
    } else if (word == "emdash") {
      EmitCodepoint(0x2014);
    } else if (word == "endash") {
      EmitCodepoint(0x2013);
    } else if (word == "lquote") {
      EmitCodepoint(0x2018);
    } else if (word == "rquote") {
      EmitCodepoint(0x2019);
    } else if (word == "ldblquote") {
      EmitCodepoint(0x201c);
    } else if (word == "rdblquote") {
      EmitCodepoint(0x201d);
    } else if (word == "bullet") {
      EmitCodepoint(0x2022);
    } else if (at_group_start && IsSkippedDestination(word)) {
      st_.skip = true;
    }
  }

  static bool IsAlpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
  static int HexByte(std::string_view h) {
    if (h.size() != 2) return -1;
    int v = 0;
    for (char c : h) {
      v <<= 4;
      if (c >= '0' && c <= '9') {
        v |= c - '0';
      } else if (c >= 'a' && c <= 'f') {
        v |= c - 'a' + 10;
      } else if (c >= 'A' && c <= 'F') {
        v |= c - 'A' + 10;
      } else {
        return -1;
      }
    }
    return v;
  }

  std::string_view s_;
  State st_;
  std::vector<State> stack_;
  int skip_fallback_ = 0;
  int codepage_ = 1252;
  std::string pending_;
  std::string out_;
};

}  // namespace

void AppendCodepage(std::string* out, std::string_view bytes, int codepage) {
  if (bytes.empty()) return;
  bool ascii = std::all_of(bytes.begin(), bytes.end(), [](char c) { return (c & 0x80) == 0; });
  if (ascii || codepage == 65001) {
    out->append(bytes);
    return;
  }
  std::string name = codepage == 0 ? "CP1252" : "CP" + std::to_string(codepage);
  iconv_t cd = iconv_open("UTF-8", name.c_str());
  if (cd != reinterpret_cast<iconv_t>(-1)) {
    std::string buf(bytes.size() * 4 + 16, '\0');
    char* inp = const_cast<char*>(bytes.data());
    size_t inleft = bytes.size();
    char* outp = buf.data();
    size_t outleft = buf.size();
    size_t r = iconv(cd, &inp, &inleft, &outp, &outleft);
    iconv_close(cd);
    if (r != static_cast<size_t>(-1) && inleft == 0) {
      out->append(buf.data(), buf.size() - outleft);
      return;
    }
  }
  for (unsigned char c : bytes) AppendUtf8(out, c);
}

DecodedRtf DeEncapsulateRtf(std::string_view rtf) { return RtfDecoder(rtf).Run(); }

// ---------------------------------------------------------------------------
// MIME writing helpers

namespace {

constexpr char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

// Sized once and written through a pointer: pushing a character at a time
// checked capacity per byte and was a twentieth of a PST -> mbox merge.
std::string Base64(std::string_view in, size_t line_len) {
  const size_t chars = (in.size() + 2) / 3 * 4;
  const size_t breaks = line_len == 0 ? 0 : (chars + line_len - 1) / line_len;
  std::string out(chars + breaks, '\0');
  char* o = out.data();
  const auto* p = reinterpret_cast<const unsigned char*>(in.data());
  size_t left = in.size();
  size_t col = 0;
  auto quad = [&](uint32_t v, int pad) {
    // line_len is a multiple of 4 (76, or 0 for none): a quad never straddles a break.
    o[0] = kB64[v >> 18];
    o[1] = kB64[(v >> 12) & 63];
    o[2] = pad > 1 ? '=' : kB64[(v >> 6) & 63];
    o[3] = pad > 0 ? '=' : kB64[v & 63];
    o += 4;
    col += 4;
    if (col == line_len) {
      *o++ = '\n';
      col = 0;
    }
  };
  for (; left >= 3; p += 3, left -= 3) quad(uint32_t{p[0]} << 16 | uint32_t{p[1]} << 8 | p[2], 0);
  if (left == 2) quad(uint32_t{p[0]} << 16 | uint32_t{p[1]} << 8, 1);
  if (left == 1) quad(uint32_t{p[0]} << 16, 2);
  if (line_len != 0 && col != 0) *o++ = '\n';
  return out;
}

bool IsAsciiPrintable(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c >= 32 && c < 127; }) &&
         s.find("=?") == std::string_view::npos;
}

// Header values must stay on their line: CR, LF and other controls become spaces.
std::string OneLine(std::string_view s, bool trim = true) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    unsigned char u = static_cast<unsigned char>(c);
    out.push_back(u < 32 || u == 127 ? ' ' : c);
  }
  if (!trim) return out;
  size_t b = out.find_first_not_of(' ');
  if (b == std::string::npos) return "";
  size_t e = out.find_last_not_of(' ');
  return out.substr(b, e - b + 1);
}

// Length of the UTF-8 sequence starting with lead byte `c` (1 for invalid bytes).
size_t Utf8Len(unsigned char c) {
  if (c >= 0xf0 && c < 0xf8) return 4;
  if (c >= 0xe0) return c < 0xf0 ? 3 : 1;
  if (c >= 0xc0) return 2;
  return 1;
}

std::string EncodedWords(std::string_view utf8) {
  std::string out;
  size_t i = 0;
  while (i < utf8.size()) {
    size_t j = i;
    while (j < utf8.size()) {
      size_t n = std::min(Utf8Len(static_cast<unsigned char>(utf8[j])), utf8.size() - j);
      if (j + n - i > 45) break;
      j += n;
    }
    if (j == i) j = i + 1;
    if (!out.empty()) out += "\n ";
    out += "=?UTF-8?B?" + Base64(utf8.substr(i, j - i), 0) + "?=";
    i = j;
  }
  return out;
}

// A display name as an RFC 5322 phrase: atoms as they are, specials quoted,
// non-ASCII as encoded words.
std::string Phrase(std::string_view name) {
  std::string n = OneLine(name);
  if (!IsAsciiPrintable(n)) return EncodedWords(n);
  if (n.find_first_of("()<>[]:;@\\,.\"") == std::string::npos) return n;
  std::string q = "\"";
  for (char c : n) {
    if (c == '"' || c == '\\') q.push_back('\\');
    q.push_back(c);
  }
  q.push_back('"');
  return q;
}

bool LooksLikeSmtp(std::string_view a) {
  return !a.empty() && a.find('@') != std::string_view::npos && a.front() != '/' &&
         a.find_first_of(" \t\r\n<>,;\"") == std::string_view::npos && IsAsciiPrintable(a);
}

std::string FormatAddress(std::string_view name, std::string_view addr) {
  std::string n = OneLine(name);
  if (!LooksLikeSmtp(addr)) {
    if (n.empty()) return "";
    return Phrase(n) + ":;";  // an empty group keeps the name without inventing an address
  }
  if (n.empty() || n == addr) return std::string(addr);
  return Phrase(n) + " <" + std::string(addr) + ">";
}

// The SMTP address of a (name, addrtype, email, smtp) property set.
std::string PickAddress(const PropertyBag& p, uint16_t smtp, uint16_t type, uint16_t email) {
  std::string s = p.StringOr(smtp);
  if (LooksLikeSmtp(s)) return s;
  std::string e = p.StringOr(email);
  std::string t = p.StringOr(type);
  if (LooksLikeSmtp(e)) return e;
  (void)t;
  return "";
}

void AddHeader(std::string* out, std::string_view name, std::string_view value) {
  if (value.empty()) return;
  out->append(name);
  out->append(": ");
  out->append(value);
  out->push_back('\n');
}

std::string CleanSubject(std::string s) {
  // PT_STRING8/PT_UNICODE subjects may start with SOH + a prefix length byte.
  if (s.size() >= 2 && s[0] == '\x01') s.erase(0, 2);
  return s;
}

std::string AngleId(std::string_view id) {
  std::string s = OneLine(id);
  if (s.empty()) return s;
  if (s.front() != '<') s = "<" + s;
  if (s.back() != '>') s += ">";
  return s;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  return out;
}

std::string CharsetOfCodepage(int64_t cp) {
  switch (cp) {
    case 65001:
      return "utf-8";
    case 20127:
      return "us-ascii";
    case 28591:
      return "iso-8859-1";
    case 28592:
      return "iso-8859-2";
    case 28595:
      return "iso-8859-5";
    case 28597:
      return "iso-8859-7";
    case 28605:
      return "iso-8859-15";
    case 1250:
      return "windows-1250";
    case 1251:
      return "windows-1251";
    case 1252:
      return "windows-1252";
    case 1253:
      return "windows-1253";
    case 1254:
      return "windows-1254";
    case 1255:
      return "windows-1255";
    case 1256:
      return "windows-1256";
    case 1257:
      return "windows-1257";
    case 1258:
      return "windows-1258";
    case 932:
      return "shift_jis";
    case 936:
      return "gb2312";
    case 949:
      return "ks_c_5601-1987";
    case 950:
      return "big5";
    case 50220:
      return "iso-2022-jp";
    case 51932:
      return "euc-jp";
    case 20866:
      return "koi8-r";
    case 21866:
      return "koi8-u";
    case 54936:
      return "gb18030";
    default:
      return "";
  }
}

bool ValidUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    size_t n = c < 0x80 ? 1 : Utf8Len(c);
    if (c >= 0x80 && (n == 1 || c < 0xc2)) return false;
    if (i + n > s.size()) return false;
    for (size_t k = 1; k < n; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) & 0xc0) != 0x80) return false;
    }
    i += n;
  }
  return true;
}

std::string GuessType(std::string_view filename) {
  static constexpr std::pair<std::string_view, std::string_view> kTypes[] = {
      {"jpg", "image/jpeg"},
      {"jpeg", "image/jpeg"},
      {"png", "image/png"},
      {"gif", "image/gif"},
      {"bmp", "image/bmp"},
      {"tif", "image/tiff"},
      {"tiff", "image/tiff"},
      {"pdf", "application/pdf"},
      {"txt", "text/plain"},
      {"htm", "text/html"},
      {"html", "text/html"},
      {"csv", "text/csv"},
      {"zip", "application/zip"},
      {"doc", "application/msword"},
      {"xls", "application/vnd.ms-excel"},
      {"ppt", "application/vnd.ms-powerpoint"},
      {"docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"},
      {"xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"},
      {"pptx", "application/vnd.openxmlformats-officedocument.presentationml.presentation"},
      {"ics", "text/calendar"},
      {"vcf", "text/vcard"},
      {"eml", "message/rfc822"},
      {"xml", "application/xml"},
      {"rtf", "application/rtf"}};
  size_t dot = filename.rfind('.');
  if (dot == std::string_view::npos) return "application/octet-stream";
  std::string ext = Lower(filename.substr(dot + 1));
  for (const auto& [e, t] : kTypes) {
    if (e == ext) return std::string(t);
  }
  return "application/octet-stream";
}

// A MIME parameter (name="value"): quoted ASCII, or RFC 2231 (param*=UTF-8''%XX)
// for non-ASCII; `ext_ok` false gives an RFC 2047 encoded word instead, which
// is what older readers expect in Content-Type's name=.
std::string Param(std::string_view name, std::string_view value, bool ext_ok) {
  std::string v = OneLine(value);
  if (IsAsciiPrintable(v)) {
    std::string q;
    for (char c : v) {
      if (c == '"' || c == '\\') q.push_back('\\');
      q.push_back(c);
    }
    return std::string(name) + "=\"" + q + "\"";
  }
  if (!ext_ok) return std::string(name) + "=\"" + EncodedWords(v) + "\"";
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string pct;
  for (unsigned char c : v) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
        std::strchr("!#$&+-.^_`|~", c) != nullptr) {
      pct.push_back(static_cast<char>(c));
    } else {
      pct.push_back('%');
      pct.push_back(kHex[c >> 4]);
      pct.push_back(kHex[c & 15]);
    }
  }
  return std::string(name) + "*=UTF-8''" + pct;
}

// A node of the body tree. Leaves hold encoded bytes; multiparts children.
struct Part {
  std::string content_type;          // the full header value
  std::vector<std::string> headers;  // further header lines, without line ends
  std::string body;                  // encoded leaf body, ends with '\n' unless empty
  std::string subtype;               // "mixed", "alternative", "related": a multipart
  std::vector<Part> children;
};

// Rendering consumes the tree: leaf bodies are moved, and each byte is
// copied once into its parent's body, not three or four times.
std::string RenderPart(Part& p, std::string* header_out);

// Renders a multipart's body and returns it; its Content-Type goes to `ct`.
std::string RenderMultipart(Part& p, std::string* ct) {
  std::vector<std::string> rendered;
  // XXH3 (libxxhash), not FNV-1a: a byte at a time, FNV over every rendered
  // byte was half of rendering a message with a large attachment.
  XXH3_state_t hash;
  XXH3_INITSTATE(&hash);
  XXH3_64bits_reset(&hash);
  XXH3_64bits_update(&hash, p.subtype.data(), p.subtype.size());
  size_t bytes = 0;
  for (Part& c : p.children) {
    std::string r;
    std::string body = RenderPart(c, &r);
    r += '\n';
    r += body;
    XXH3_64bits_update(&hash, r.data(), r.size());
    bytes += r.size();
    rendered.push_back(std::move(r));
  }
  // Encoded leaves (QP, base64) cannot contain "=_"; nested multiparts hash
  // differently because they are part of what is hashed here.
  std::string boundary = "=_mbx_" + Hex64(XXH3_64bits_digest(&hash));
  std::string out;
  out.reserve(bytes + (rendered.size() + 1) * (boundary.size() + 6));
  for (const std::string& r : rendered) {
    out.append("--").append(boundary).append("\n").append(r);
    if (!r.empty() && r.back() != '\n') out.push_back('\n');
  }
  out.append("--").append(boundary).append("--\n");
  *ct = "multipart/" + p.subtype + ";\n boundary=\"" + boundary + "\"";
  return out;
}

std::string RenderPart(Part& p, std::string* header_out) {
  std::string body;
  std::string ct = p.content_type;
  if (!p.subtype.empty())
    body = RenderMultipart(p, &ct);
  else
    body = std::move(p.body);
  header_out->append("Content-Type: " + ct + "\n");
  for (const std::string& h : p.headers) header_out->append(h + "\n");
  return body;
}

Part TextPart(std::string_view type, std::string_view charset, std::string_view content) {
  Part p;
  p.content_type = std::string(type) + "; charset=\"" + std::string(charset) + "\"";
  p.headers.push_back("Content-Transfer-Encoding: quoted-printable");
  p.body = mime::EncodeQuotedPrintable(content);
  return p;
}

std::string AttachmentName(const PropertyBag& a) {
  for (uint16_t id : {kPidAttachLongFilename, kPidAttachFilename, kPidDisplayName}) {
    std::string s = OneLine(a.StringOr(id));
    if (!s.empty()) return s;
  }
  return "";
}

Part AttachmentPart(const MapiAttachment& a, bool inline_part) {
  Part p;
  std::string name = AttachmentName(a.props);
  int64_t method = a.props.Int(kPidAttachMethod).value_or(1);
  std::string disposition = inline_part ? "inline" : "attachment";
  if (a.embedded) {
    std::string mime = RenderMime(*a.embedded, /*top_level=*/false);
    bool eight = std::any_of(mime.begin(), mime.end(), [](char c) { return (c & 0x80) != 0; });
    p.content_type = "message/rfc822";
    p.headers.push_back(std::string("Content-Transfer-Encoding: ") + (eight ? "8bit" : "7bit"));
    p.body = std::move(mime);
    if (!p.body.empty() && p.body.back() != '\n') p.body.push_back('\n');
  } else if (method == 2 || method == 3 || method == 4) {
    // By reference: the file lives elsewhere; carry where it was.
    std::string path = a.props.StringOr(0x370d);
    if (path.empty()) path = a.props.StringOr(0x3708);
    p.content_type = "text/plain; charset=\"utf-8\"";
    p.headers.push_back("Content-Transfer-Encoding: quoted-printable");
    p.body = mime::EncodeQuotedPrintable("Attachment by reference: " + path + "\n");
  } else {
    std::string type = Lower(OneLine(a.props.StringOr(kPidAttachMimeTag)));
    if (type.empty() || type.find('/') == std::string::npos ||
        type.find_first_of(" ;\"") != std::string::npos) {
      type = GuessType(name);
    }
    p.content_type = type;
    p.headers.push_back("Content-Transfer-Encoding: base64");
    p.body = Base64(a.data, 76);
  }
  if (!name.empty()) {
    if (!a.embedded) p.content_type += ";\n " + Param("name", name, false);
    disposition += ";\n " + Param("filename", name, true);
  }
  p.headers.push_back("Content-Disposition: " + disposition);
  std::string cid = OneLine(a.props.StringOr(kPidAttachContentId));
  if (!cid.empty()) p.headers.push_back("Content-ID: " + AngleId(cid));
  return p;
}

std::string Bare(std::string_view cid) {
  std::string s = OneLine(cid);
  if (!s.empty() && s.front() == '<') s.erase(0, 1);
  if (!s.empty() && s.back() == '>') s.pop_back();
  return s;
}

// The body structure of `m`: alternative text/html, related inline parts,
// mixed attachments.
Part BodyTree(const MapiMessage& m) {
  std::optional<std::string> text = m.props.String(kPidBody);
  std::optional<std::string> html;
  std::string html_charset = "utf-8";
  if (const PropValue* h = m.props.Find(kPidHtml)) {
    html = h->data;
    if (h->type == kPtBinary) {
      std::string cs = CharsetOfCodepage(m.props.Int(kPidInternetCodepage).value_or(0));
      if (cs.empty()) cs = ValidUtf8(h->data) ? "utf-8" : "windows-1252";
      html_charset = cs;
    }
  }
  std::optional<Part> rtf_part;
  if (!html) {
    if (auto rtfc = m.props.Bytes(kPidRtfCompressed)) {
      auto rtf = DecompressRtf(*rtfc);
      if (rtf.ok()) {
        DecodedRtf d = DeEncapsulateRtf(*rtf);
        if (d.kind == DecodedRtf::Kind::kHtml) {
          html = std::move(d.body);
        } else if (d.kind == DecodedRtf::Kind::kText) {
          if (!text) text = std::move(d.body);
        } else if (!text) {
          Part p;
          p.content_type = "text/rtf";
          p.headers.push_back("Content-Transfer-Encoding: quoted-printable");
          p.body = mime::EncodeQuotedPrintable(d.body);
          rtf_part = std::move(p);
        }
      }
    }
  }

  std::vector<Part> alts;
  if (text) alts.push_back(TextPart("text/plain", "utf-8", *text));
  if (html) alts.push_back(TextPart("text/html", html_charset, *html));
  if (rtf_part) alts.push_back(std::move(*rtf_part));
  // Contacts and calendar items also carry their vCard/iCalendar: meeting
  // messages as the last alternative (as Outlook sends them), others attached.
  std::optional<Part> pim_attachment;
  if (std::optional<PimPart> pim = RenderPimPart(m)) {
    Part p;
    p.content_type = pim->content_type;
    if (!pim->filename.empty()) p.content_type += ";\n " + Param("name", pim->filename, false);
    p.headers.push_back("Content-Transfer-Encoding: base64");
    if (!pim->filename.empty())
      p.headers.push_back("Content-Disposition: attachment;\n " +
                          Param("filename", pim->filename, true));
    p.body = Base64(pim->text, 76);
    (pim->alternative ? alts.emplace_back() : pim_attachment.emplace()) = std::move(p);
  }
  Part core;
  if (alts.empty()) {
    core = TextPart("text/plain", "utf-8", "");
  } else if (alts.size() == 1) {
    core = std::move(alts[0]);
  } else {
    core.subtype = "alternative";
    core.children = std::move(alts);
  }

  std::vector<Part> related;
  std::vector<Part> mixed;
  for (const MapiAttachment& a : m.attachments) {
    std::string cid = Bare(a.props.StringOr(kPidAttachContentId));
    bool is_inline =
        html && !cid.empty() && !a.embedded && html->find("cid:" + cid) != std::string::npos;
    (is_inline ? related : mixed).push_back(AttachmentPart(a, is_inline));
  }
  if (pim_attachment) mixed.push_back(std::move(*pim_attachment));
  if (!related.empty()) {
    Part r;
    r.subtype = "related";
    r.content_type = "";
    r.children.push_back(std::move(core));
    for (Part& p : related) r.children.push_back(std::move(p));
    core = std::move(r);
  }
  if (mixed.empty()) return core;
  Part top;
  top.subtype = "mixed";
  top.children.push_back(std::move(core));
  for (Part& p : mixed) top.children.push_back(std::move(p));
  return top;
}

std::string SynthesizedHeaders(const MapiMessage& m) {
  const PropertyBag& p = m.props;
  std::string h;
  auto date = p.UnixTime(kPidClientSubmitTime);
  if (!date) date = p.UnixTime(kPidDeliveryTime);
  if (!date) date = p.UnixTime(kPidCreationTime);
  if (date) AddHeader(&h, "Date", FormatRfc5322Date(*date));

  std::string from_name = p.StringOr(kPidSentRepresentingName);
  std::string from_addr = PickAddress(p, kPidSentRepresentingSmtpAddress,
                                      kPidSentRepresentingAddrType, kPidSentRepresentingEmail);
  std::string sender_name = p.StringOr(kPidSenderName);
  std::string sender_addr =
      PickAddress(p, kPidSenderSmtpAddress, kPidSenderAddrType, kPidSenderEmail);
  if (from_name.empty() && from_addr.empty()) {
    from_name = sender_name;
    from_addr = sender_addr;
  }
  AddHeader(&h, "From", FormatAddress(from_name, from_addr));
  if ((!sender_addr.empty() && Lower(sender_addr) != Lower(from_addr)) ||
      (sender_addr.empty() && from_addr.empty() && !sender_name.empty() &&
       sender_name != from_name)) {
    AddHeader(&h, "Sender", FormatAddress(sender_name, sender_addr));
  }
  std::string subject = CleanSubject(p.StringOr(kPidSubject));
  AddHeader(&h, "Subject", EncodeHeaderText(OneLine(subject, /*trim=*/false)));

  std::vector<std::string> lists[4];
  for (const PropertyBag& r : m.recipients) {
    int64_t type = r.Int(kPidRecipientType).value_or(1) & 0xf;
    if (type < 1 || type > 3) continue;
    std::string name = r.StringOr(kPidDisplayName);
    if (name.empty()) name = r.StringOr(0x5ff6);
    std::string addr = PickAddress(r, kPidSmtpAddress, kPidAddrType, kPidEmailAddress);
    std::string a = FormatAddress(name, addr);
    if (!a.empty()) lists[type].push_back(std::move(a));
  }
  static constexpr std::string_view kNames[4] = {"", "To", "Cc", "Bcc"};
  for (int t = 1; t <= 3; ++t) {
    std::string v;
    for (const std::string& a : lists[t]) {
      if (!v.empty()) v += ",\n ";
      v += a;
    }
    AddHeader(&h, kNames[t], v);
  }
  AddHeader(&h, "Message-ID", AngleId(p.StringOr(kPidInternetMessageId)));
  AddHeader(&h, "In-Reply-To", OneLine(p.StringOr(kPidInReplyTo)));
  AddHeader(&h, "References", OneLine(p.StringOr(kPidReferences)));
  if (auto imp = p.Int(kPidImportance)) {
    if (*imp == 0) AddHeader(&h, "Importance", "low");
    if (*imp == 2) AddHeader(&h, "Importance", "high");
  }
  if (auto sens = p.Int(kPidSensitivity)) {
    static constexpr std::string_view kSens[] = {"", "Personal", "Private", "Company-Confidential"};
    if (*sens >= 1 && *sens <= 3) AddHeader(&h, "Sensitivity", kSens[*sens]);
  }
  return h;
}

// Keeps the transport headers' fields except the body-structure ones, with
// LF line ends.
std::string TransportHeaders(std::string_view raw) {
  std::string norm;
  norm.reserve(raw.size() + 2);
  for (size_t i = 0; i < raw.size(); ++i) {
    if (raw[i] == '\r') {
      if (i + 1 < raw.size() && raw[i + 1] == '\n') continue;
      norm.push_back('\n');
      continue;
    }
    norm.push_back(raw[i]);
  }
  std::string_view block = mime::HeaderBlock(norm);
  std::string out;
  mime::FieldScanner scan(block);
  mime::Field f;
  while (scan.Next(&f)) {
    std::string name = Lower(f.name);
    if (name == "content-type" || name == "content-transfer-encoding" || name == "mime-version" ||
        name == mime::CaseFold(kSearchKeyHeader))
      continue;
    out.append(f.name);
    out.append(": ");
    out.append(f.value);
    out.push_back('\n');
  }
  return out;
}

}  // namespace

std::string EncodeHeaderText(std::string_view utf8) {
  if (IsAsciiPrintable(utf8)) return std::string(utf8);
  return EncodedWords(utf8);
}

std::string FormatRfc5322Date(int64_t unix_time) {
  static constexpr const char* kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                            "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  time_t t = static_cast<time_t>(unix_time);
  struct tm tm {};
  gmtime_r(&t, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%s, %d %s %04d %02d:%02d:%02d +0000", kDays[tm.tm_wday],
                tm.tm_mday, kMonths[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
                tm.tm_sec);
  return buf;
}

std::string RenderMime(const MapiMessage& m, bool top_level) {
  std::string out;
  std::optional<std::string> transport = m.props.String(kPidTransportHeaders);
  // Transport headers without a single field (junk, or only a body) are ignored.
  if (transport) out = TransportHeaders(*transport);
  if (out.empty()) out = SynthesizedHeaders(m);
  // PR_SEARCH_KEY, so that --dedupe search-key (ExMerge's rule) still finds
  // this message after it has left the PST, and MIME -> PST restores it.
  // Only at the top: an attached message is not deduplicated on its own.
  if (auto key = m.props.Bytes(kPidSearchKey); top_level && key && !key->empty()) {
    AddHeader(&out, kSearchKeyHeader,
              ToHex(reinterpret_cast<const uint8_t*>(key->data()), key->size()));
  }
  out += "MIME-Version: 1.0\n";
  Part tree = BodyTree(m);
  std::string body = RenderPart(tree, &out);
  out.reserve(out.size() + 1 + body.size());
  out += "\n";
  out += body;
  return out;
}

uint64_t Fnv1a(std::string_view s, uint64_t h) {
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return h;
}

std::string Hex64(uint64_t v) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string s(16, '0');
  for (int i = 15; i >= 0; --i) {
    s[i] = kHex[v & 15];
    v >>= 4;
  }
  return s;
}

}  // namespace mbx::pst
