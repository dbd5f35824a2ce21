#include "formats/ldif/ldif.h"

#include <strings.h>

#include "engine/fs.h"

namespace mbx::ldif {
namespace {

std::string_view BaseName(std::string_view attr) {
  size_t semi = attr.find(';');
  return semi == std::string_view::npos ? attr : attr.substr(0, semi);
}

bool EqualsNoCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && strncasecmp(a.data(), b.data(), a.size()) == 0;
}

int B64Value(unsigned char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

// One logical line (folding undone) with the physical line number it starts on.
struct Line {
  std::string text;
  size_t number;
};

std::vector<Line> LogicalLines(std::string_view text) {
  std::vector<Line> out;
  size_t pos = 0, number = 0;
  bool in_comment = false;
  while (pos <= text.size()) {
    if (pos == text.size()) break;
    size_t nl = text.find('\n', pos);
    std::string_view line = text.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
    pos = nl == std::string_view::npos ? text.size() : nl + 1;
    ++number;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (!line.empty() && line.front() == ' ') {
      // A continuation: belongs to the previous logical line (or comment).
      if (in_comment) continue;
      if (!out.empty() && !out.back().text.empty()) out.back().text.append(line.substr(1));
      continue;
    }
    in_comment = !line.empty() && line.front() == '#';
    if (in_comment) continue;
    out.push_back({std::string(line), number});
  }
  return out;
}

}  // namespace

const std::string* Record::Get(std::string_view name) const {
  for (const auto& a : attributes) {
    if (EqualsNoCase(BaseName(a.name), name)) return &a.value;
  }
  return nullptr;
}

std::vector<const std::string*> Record::GetAll(std::string_view name) const {
  std::vector<const std::string*> out;
  for (const auto& a : attributes) {
    if (EqualsNoCase(BaseName(a.name), name)) out.push_back(&a.value);
  }
  return out;
}

std::string Base64Encode(std::string_view bytes) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    uint32_t v = (static_cast<uint8_t>(bytes[i]) << 16) | (static_cast<uint8_t>(bytes[i + 1]) << 8) |
                 static_cast<uint8_t>(bytes[i + 2]);
    out += kAlphabet[v >> 18];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  if (i < bytes.size()) {
    uint32_t v = static_cast<uint8_t>(bytes[i]) << 16;
    if (i + 1 < bytes.size()) v |= static_cast<uint8_t>(bytes[i + 1]) << 8;
    out += kAlphabet[v >> 18];
    out += kAlphabet[(v >> 12) & 63];
    out += i + 1 < bytes.size() ? kAlphabet[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

Result<std::string> Base64Decode(std::string_view text) {
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  size_t pad = 0;
  for (unsigned char c : text) {
    if (c == ' ' || c == '\t' || c == '\r' || c == '\n') continue;
    if (c == '=') {
      ++pad;
      continue;
    }
    int v = B64Value(c);
    if (v < 0 || pad > 0) return Status::Corruption("invalid base64");
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xFF);
    }
  }
  if (pad > 2) return Status::Corruption("invalid base64 padding");
  return out;
}

Result<std::vector<Record>> Parse(std::string_view text, const std::string& file) {
  std::vector<Record> out;
  Record current;
  bool have = false;
  auto where = [&](size_t line) { return "LDIF '" + file + "' line " + std::to_string(line); };
  auto finish = [&] {
    if (have) out.push_back(std::move(current));
    current = Record{};
    have = false;
  };
  for (const Line& l : LogicalLines(text)) {
    if (l.text.empty()) {
      finish();
      continue;
    }
    size_t colon = l.text.find(':');
    if (colon == std::string::npos || colon == 0) {
      return Status::Corruption(where(l.number) + ": expected 'attribute: value', got '" + l.text.substr(0, 60) + "'");
    }
    std::string name = l.text.substr(0, colon);
    std::string_view rest = std::string_view(l.text).substr(colon + 1);
    Attribute attr;
    attr.name = name;
    if (!rest.empty() && rest.front() == ':') {
      rest.remove_prefix(1);
      while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
      auto decoded = Base64Decode(rest);
      if (!decoded.ok()) return Status::Corruption(where(l.number) + ": attribute '" + name + "': invalid base64 value");
      attr.value = std::move(decoded).value();
      attr.was_base64 = true;
    } else if (!rest.empty() && rest.front() == '<') {
      return Status::Unsupported(where(l.number) + ": attribute '" + name +
                                 "' takes its value from a URL (':<'), which mbxmerge does not follow; "
                                 "export the directory with the values inline");
    } else {
      while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
      attr.value = std::string(rest);
    }
    if (!have) {
      if (EqualsNoCase(name, "version")) continue;
      if (!EqualsNoCase(name, "dn")) {
        return Status::Corruption(where(l.number) + ": an entry must start with 'dn:', got '" + name + "'");
      }
      current.dn = attr.value;
      current.line = l.number;
      have = true;
      continue;
    }
    if (EqualsNoCase(name, "changetype")) {
      return Status::Unsupported(where(l.number) + ": change records are not a directory export");
    }
    current.attributes.push_back(std::move(attr));
  }
  finish();
  return out;
}

Result<std::vector<Record>> ParseFile(const std::string& path) {
  auto text = fs::ReadFile(path);
  if (!text.ok()) return text.status();
  return Parse(*text, path);
}

bool IsSafeString(std::string_view v) {
  if (v.empty()) return true;
  unsigned char first = static_cast<unsigned char>(v.front());
  if (first == ' ' || first == ':' || first == '<') return false;
  if (v.back() == ' ') return false;
  for (unsigned char c : v) {
    if (c == 0 || c == '\n' || c == '\r' || c > 127) return false;
  }
  return true;
}

std::string FormatAttribute(std::string_view name, std::string_view value) {
  std::string line(name);
  if (IsSafeString(value)) {
    line += ": ";
    line += value;
  } else {
    line += ":: ";
    line += Base64Encode(value);
  }
  // Fold at 76 columns: continuation lines start with one space.
  std::string out;
  size_t pos = 0;
  size_t width = 76;
  while (line.size() - pos > width) {
    out.append(line, pos, width);
    out += "\n ";
    pos += width;
    width = 75;
  }
  out.append(line, pos, std::string::npos);
  out += '\n';
  return out;
}

std::string FormatReplace(std::string_view dn, std::string_view attribute, std::string_view value) {
  std::string out = FormatAttribute("dn", dn);
  out += "changetype: modify\n";
  out += FormatAttribute("replace", attribute);
  out += FormatAttribute(attribute, value);
  out += "-\n";
  return out;
}

}  // namespace mbx::ldif
