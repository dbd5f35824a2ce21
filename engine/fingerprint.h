// \brief Message fingerprints for duplicate detection (the dedupe rules of the README).
//
// Two levels: a cheap header key from the identity headers, and a full SHA-256
// digest of the canonical message (identity headers + normalized body). Two
// messages are duplicates only when their full digests are equal; the header
// key only decides when the full digest is worth computing.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace mbx {

enum class DedupeRule {
  kAuto,       // canonical identity headers incl. Message-ID + normalized body
  kContent,    // the same without Message-ID
  kMessageId,  // Message-ID alone (lossy; messages without one fall back to kContent)
  kSearchKey,  // MAPI PR_SEARCH_KEY alone, as ExMerge matched (messages without one: kAuto)
  kNone,       // no dedupe
};

// The header in which a message converted from MAPI carries its PR_SEARCH_KEY
// (hex), so that the search-key rule works across formats.
inline constexpr std::string_view kSearchKeyHeader = "X-Mbxmerge-Search-Key";

using HeaderKey = std::array<uint8_t, 16>;
using Digest = std::array<uint8_t, 32>;

// The header key of a message from its header block (or the whole message:
// only the header block is read).
HeaderKey ComputeHeaderKey(std::string_view message, DedupeRule rule);

// The full canonical digest of a message.
Digest ComputeDigest(std::string_view message, DedupeRule rule);

// SHA-256 of `bytes` (the hash ComputeDigest() uses), for keys derived from
// a message's bytes elsewhere.
Digest Sha256Of(std::string_view bytes);

// The canonical text that ComputeDigest() hashes, for tests and `--explain`.
std::string CanonicalForm(std::string_view message, DedupeRule rule);

std::string ToHex(const uint8_t* data, size_t n);

}  // namespace mbx
