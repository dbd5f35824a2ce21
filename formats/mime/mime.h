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
// A leading mbox "From " line belongs to the header block. A message whose first line
// (after that From_ line) is neither a header field nor empty has no header block at all:
// the body starts at that line (0, or just after the From_ line).
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
// 8-bit junk, a leading mbox "From " line) are skipped, never fatal. Scanning stops at
// the first empty line, so a whole message may be passed; like BodyOffset, a first line
// that is not a field means there are no fields at all. Allocation-free.
class FieldScanner {
 public:
  explicit FieldScanner(std::string_view headers) : rest_(headers) {}
  bool Next(Field* out);

 private:
  enum State : unsigned char { kStart, kAfterEnvelope, kInFields };
  std::string_view rest_;
  State state_ = kStart;
};

// The first field named `name` (case-insensitive), raw; nullopt if absent.
std::optional<std::string_view> FindField(std::string_view headers, std::string_view name);

// Base64 content (RFC 2045 6.8) to bytes; stray characters are skipped and
// decoding stops at '='.
std::string DecodeBase64(std::string_view text);

// Quoted-printable (RFC 2045 6.7) with LF hard line breaks (CRLF and LF in
// the input are line breaks), lines of at most 76 characters with soft
// breaks. A line starting with "From " gets its 'F' encoded, so that mbox
// quoting never has to touch the part, and a leading '.' too (lone "." lines
// upset SMTP-minded tools).
std::string EncodeQuotedPrintable(std::string_view in);

// Removes folding (CRLF/LF followed by white space) and collapses runs of
// white space to one space; trims both ends.
std::string Unfold(std::string_view raw);

// Decodes RFC 2047 encoded words ("=?UTF-8?B?...?=", Q encoding, any iconv
// charset) into UTF-8 after unfolding. Undecodable words are kept as written;
// invalid 8-bit bytes are taken as Latin-1. Encoded words separated only by white
// space are joined; decoded CR, LF and NUL become spaces. Thread-safe.
std::string DecodeHeader(std::string_view raw);

// Parses an RFC 5322 date ("Tue, 1 Jul 2003 10:52:37 +0200", also the obsolete
// forms and asctime as in mbox From_ lines). Returns seconds since the epoch (UTC).
// Comments, weekday names and extra white space are ignored; 2-digit years are 19xx
// from 50, else 20xx; unknown zone names, military zones and a missing zone mean UTC;
// a missing time means 00:00:00. nullopt without a valid day, month and year.
std::optional<int64_t> ParseDate(std::string_view text);

// Formats seconds since the epoch as an asctime date for mbox From_ lines
// ("Tue Jul  1 08:52:37 2003", UTC).
std::string FormatAsctime(int64_t t);

// The date after the last ';' of the first (topmost) Received field, if any.
std::optional<int64_t> FirstReceivedDate(std::string_view headers);

// The bare address (local@domain) of the first mailbox in an address field, lower-cased domain.
// Skips display names (quoted or not), comments, group names and empty groups; if no
// mailbox has an '@', the first non-empty one is returned as is ("MAILER-DAEMON"); "" if none.
std::string FirstAddress(std::string_view raw_field);

// File names of attachments in the whole MIME tree (Content-Disposition
// filename, else Content-Type name; RFC 2231 and RFC 2047 decoded to UTF-8),
// including nested multiparts and message/rfc822 parts' own attachments, in tree order.
// Thread-safe: each call has its own GMime objects.
std::vector<std::string> AttachmentNames(std::string_view msg);

// Lower-cases UTF-8 text for case-insensitive matching (full Unicode case folding).
// Bytes that are not valid UTF-8 are taken as Latin-1 first; the result is valid UTF-8.
std::string CaseFold(std::string_view utf8);

}  // namespace mbx::mime
