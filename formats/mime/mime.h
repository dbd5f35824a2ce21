// \brief MIME understanding for the engine: a zero-copy header scanner on the hot
// path, and full parsing (GMime) for what needs the body structure.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mbx::mime {

// Offset where the body starts: just past the first empty line (LF or CRLF).
// Returns msg.size() when there is no empty line (all headers, no body).
size_t BodyOffset(std::string_view msg);

// The header block (without the terminating empty line).
std::string_view HeaderBlock(std::string_view msg);

// One header field; `value` is raw: folded continuation lines included, the
// line ending of the last line excluded, leading space after ':' stripped.
struct Field {
  std::string_view name;
  std::string_view value;
};

// Zero-copy iteration over header fields. Lines that are not fields (no colon,
// 8-bit junk, a leading mbox "From " line) are skipped, never fatal.
class FieldScanner {
 public:
  explicit FieldScanner(std::string_view headers) : rest_(headers) {}
  bool Next(Field* out);

 private:
  std::string_view rest_;
};

// The first field named `name` (case-insensitive), raw; nullopt if absent.
std::optional<std::string_view> FindField(std::string_view headers, std::string_view name);

// Removes folding (CRLF/LF followed by white space) and collapses runs of
// white space to one space; trims both ends.
std::string Unfold(std::string_view raw);

// Decodes RFC 2047 encoded words ("=?UTF-8?B?...?=", Q encoding, any iconv
// charset) into UTF-8 after unfolding. Undecodable words are kept as written;
// invalid 8-bit bytes are taken as Latin-1.
std::string DecodeHeader(std::string_view raw);

// Parses an RFC 5322 date ("Tue, 1 Jul 2003 10:52:37 +0200", also the obsolete
// forms and asctime as in mbox From_ lines). Returns seconds since the epoch (UTC).
std::optional<int64_t> ParseDate(std::string_view text);

// Formats seconds since the epoch as an asctime date for mbox From_ lines
// ("Tue Jul  1 08:52:37 2003", UTC).
std::string FormatAsctime(int64_t t);

// The date after the last ';' of the first (topmost) Received field, if any.
std::optional<int64_t> FirstReceivedDate(std::string_view headers);

// The bare address (local@domain) of the first mailbox in an address field, lower-cased domain.
std::string FirstAddress(std::string_view raw_field);

// File names of attachments in the whole MIME tree (Content-Disposition
// filename, else Content-Type name; RFC 2231 and RFC 2047 decoded to UTF-8),
// including nested multiparts and message/rfc822 parts' own attachments.
std::vector<std::string> AttachmentNames(std::string_view msg);

// Lower-cases UTF-8 text for case-insensitive matching (full Unicode case folding).
std::string CaseFold(std::string_view utf8);

}  // namespace mbx::mime
