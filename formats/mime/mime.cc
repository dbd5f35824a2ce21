// Temporary minimal implementation; replaced by the full MIME module.
#include "formats/mime/mime.h"

#include <strings.h>

namespace mbx::mime {

size_t BodyOffset(std::string_view msg) {
  size_t pos = 0;
  while (pos < msg.size()) {
    size_t nl = msg.find('\n', pos);
    if (nl == std::string_view::npos) return msg.size();
    std::string_view line = msg.substr(pos, nl - pos);
    if (line.empty() || line == "\r") return nl + 1;
    pos = nl + 1;
  }
  return msg.size();
}

std::string_view HeaderBlock(std::string_view msg) {
  size_t body = BodyOffset(msg);
  std::string_view h = msg.substr(0, body);
  if (body < msg.size() || (!h.empty() && (h.back() == '\n'))) {
    // drop the empty line
    if (h.size() >= 2 && h.substr(h.size() - 2) == "\r\n" && body < msg.size()) h.remove_suffix(2);
    else if (!h.empty() && h.back() == '\n' && body < msg.size()) h.remove_suffix(1);
  }
  return h;
}

bool FieldScanner::Next(Field* out) {
  while (!rest_.empty()) {
    size_t end = 0;
    for (;;) {
      size_t nl = rest_.find('\n', end);
      if (nl == std::string_view::npos) { end = rest_.size(); break; }
      end = nl + 1;
      if (end >= rest_.size() || (rest_[end] != ' ' && rest_[end] != '\t')) break;
    }
    std::string_view line = rest_.substr(0, end);
    rest_.remove_prefix(end);
    while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.remove_suffix(1);
    size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) continue;
    std::string_view name = line.substr(0, colon);
    if (name.find(' ') != std::string_view::npos) continue;
    std::string_view value = line.substr(colon + 1);
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
    out->name = name;
    out->value = value;
    return true;
  }
  return false;
}

std::optional<std::string_view> FindField(std::string_view headers, std::string_view name) {
  FieldScanner s(headers);
  Field f;
  while (s.Next(&f)) {
    if (f.name.size() == name.size() && strncasecmp(f.name.data(), name.data(), name.size()) == 0) return f.value;
  }
  return std::nullopt;
}

std::string Unfold(std::string_view raw) {
  std::string out;
  bool space = false;
  for (char c : raw) {
    if (c == '\r' || c == '\n' || c == ' ' || c == '\t') { space = !out.empty(); continue; }
    if (space) { out += ' '; space = false; }
    out += c;
  }
  return out;
}

std::string DecodeHeader(std::string_view raw) { return Unfold(raw); }
std::optional<int64_t> ParseDate(std::string_view) { return std::nullopt; }
std::string FormatAsctime(int64_t) { return "Thu Jan  1 00:00:00 1970"; }
std::optional<int64_t> FirstReceivedDate(std::string_view) { return std::nullopt; }
std::string FirstAddress(std::string_view raw) { return Unfold(raw); }
std::vector<std::string> AttachmentNames(std::string_view) { return {}; }
std::string CaseFold(std::string_view s) {
  std::string o(s);
  for (auto& c : o) if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
  return o;
}

}  // namespace mbx::mime
