// \brief MAPI -> MIME: renders a MapiMessage (mapi.h) as RFC 5322 bytes, and
// the RTF helpers it needs (LZFu decompression, HTML/text de-encapsulation).
//
// Pure C++ over copied-out data: no libpff, safe on any thread. Output is a
// function of the message alone (boundaries derive from a hash of the content;
// no clock, no randomness), so the same PST message always renders to the same
// bytes and dedupes against an earlier export of itself.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "engine/status.h"
#include "formats/pst/mapi.h"

namespace mbx::pst {

// Renders `msg` (embedded messages recursively as message/rfc822 parts) with
// LF line ends. Uses PR_TRANSPORT_MESSAGE_HEADERS when present (minus its
// MIME-Version, Content-Type and Content-Transfer-Encoding), else synthesizes
// the headers from the properties and the recipient table. A top-level
// message also carries its PR_SEARCH_KEY as X-Mbxmerge-Search-Key (hex).
std::string RenderMime(const MapiMessage& msg, bool top_level = true);

// FNV-1a over `s`, continuing from `h`, and its 16 lower-case hex digits: the
// stable, content-derived UID of an appointment without a GlobalObjectId.
// (MIME boundaries hash the parts with XXH3: they hash every rendered byte.)
uint64_t Fnv1a(std::string_view s, uint64_t h = 1469598103934665603ULL);
std::string Hex64(uint64_t v);

// Appends `bytes`, text in Windows code page `codepage` (0: 1252), as UTF-8;
// Latin-1 when iconv does not know the code page or the bytes are invalid in it.
void AppendCodepage(std::string* out, std::string_view bytes, int codepage);

// Decompresses PR_RTF_COMPRESSED ([MS-OXRTFCP]): "LZFu" compressed or
// "MELA" stored streams. Corruption for anything else or a truncated header.
Result<std::string> DecompressRtf(std::string_view compressed);

// The [MS-OXRTFCP] CRC-32 (table driven, initial value 0, no final xor) that
// the header's CRC field holds for the bytes after the header.
uint32_t RtfCrc(std::string_view data);

// What an RTF body turns into ([MS-OXRTFEX]).
struct DecodedRtf {
  enum class Kind { kRtf, kHtml, kText };
  Kind kind = Kind::kRtf;
  std::string body;  // UTF-8 HTML or text for kHtml/kText; the RTF itself for kRtf
};
DecodedRtf DeEncapsulateRtf(std::string_view rtf);

// RFC 2047 "=?UTF-8?B?...?=" words for a UTF-8 header text; ASCII text that
// needs no encoding is returned as is.
std::string EncodeHeaderText(std::string_view utf8);

// RFC 5322 date ("Mon, 15 Mar 2010 17:12:05 +0000") of Unix seconds, UTC.
std::string FormatRfc5322Date(int64_t unix_time);

}  // namespace mbx::pst
