#include "engine/fingerprint.h"

#include <openssl/evp.h>
#include <openssl/sha.h>
#include <strings.h>

#include <cctype>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "formats/mime/mime.h"

namespace mbx {
namespace {

// The identity headers: what makes two copies of a message the same message.
// Everything else (Received, Delivered-To, Return-Path, X-*, Status, ...) is
// trace or state data that differs between deliveries of one message.
constexpr std::string_view kAutoFields[] = {"message-id", "from",        "to",         "cc",
                                            "subject",    "date",        "in-reply-to", "references",
                                            "content-type"};
constexpr std::string_view kContentFields[] = {"from",       "to",         "cc",          "subject",
                                               "date",       "in-reply-to", "references", "content-type"};
// The cheap first level: enough to make header-key collisions of distinct messages rare.
constexpr std::string_view kAutoKeyFields[] = {"message-id", "from", "date", "subject"};
constexpr std::string_view kContentKeyFields[] = {"from", "date", "subject", "to"};

bool NameIs(std::string_view name, std::string_view lower) {
  return name.size() == lower.size() && strncasecmp(name.data(), lower.data(), lower.size()) == 0;
}

// SHA-256 fetched from its provider once: EVP_sha256() makes OpenSSL 3 look
// the algorithm up (a lock and a name table) for every digest started.
const EVP_MD* Sha256Md() {
  static const EVP_MD* md = [] {
    EVP_MD* fetched = EVP_MD_fetch(nullptr, "SHA2-256", nullptr);
    return fetched != nullptr ? static_cast<const EVP_MD*>(fetched) : EVP_sha256();
  }();
  return md;
}

class Sha256 {
 public:
  Sha256() : ctx_(EVP_MD_CTX_new()) { EVP_DigestInit_ex(ctx_, Sha256Md(), nullptr); }
  ~Sha256() { EVP_MD_CTX_free(ctx_); }
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void Update(std::string_view s) { EVP_DigestUpdate(ctx_, s.data(), s.size()); }
  Digest Final() {
    Digest d{};
    unsigned int n = 0;
    EVP_DigestFinal_ex(ctx_, d.data(), &n);
    return d;
  }

 private:
  EVP_MD_CTX* ctx_;
};

// Appends "name:value\n" for each wanted field, in the order of `fields`, every
// occurrence in message order, values unfolded with white space collapsed.
template <size_t N>
void AppendFields(std::string_view headers, const std::string_view (&fields)[N], std::string* out) {
  std::vector<std::string> values(N);
  std::vector<bool> seen(N, false);
  mime::FieldScanner scanner(headers);
  mime::Field f;
  while (scanner.Next(&f)) {
    for (size_t i = 0; i < N; ++i) {
      if (NameIs(f.name, fields[i])) {
        if (seen[i]) values[i] += '\x1f';
        seen[i] = true;
        values[i] += mime::Unfold(f.value);
        break;
      }
    }
  }
  for (size_t i = 0; i < N; ++i) {
    if (!seen[i]) continue;
    out->append(fields[i]);
    out->push_back(':');
    out->append(values[i]);
    out->push_back('\n');
  }
}

// "mid:<id>" when the message has a non-empty Message-ID (the message-id rule's key).
std::optional<std::string> MessageIdKey(std::string_view headers) {
  auto v = mime::FindField(headers, "message-id");
  if (!v) return std::nullopt;
  std::string id = mime::Unfold(*v);
  if (id.empty()) return std::nullopt;
  return "mid:" + id;
}

// "sk:<hex>" when the message carries a MAPI search key (PR_SEARCH_KEY, shown
// by our PST reader as X-Mbxmerge-Search-Key): the search-key rule's key.
std::optional<std::string> SearchKeyKey(std::string_view headers) {
  auto v = mime::FindField(headers, kSearchKeyHeader);
  if (!v) return std::nullopt;
  std::string hex;
  for (char c : mime::Unfold(*v)) {
    if (std::isxdigit(static_cast<unsigned char>(c))) hex += static_cast<char>(std::tolower(c));
  }
  if (hex.empty()) return std::nullopt;
  return "sk:" + hex;
}

// The key that alone decides identity under `rule`, when the message has one.
std::optional<std::string> IdentityKey(std::string_view headers, DedupeRule rule) {
  if (rule == DedupeRule::kMessageId) return MessageIdKey(headers);
  if (rule == DedupeRule::kSearchKey) return SearchKeyKey(headers);
  return std::nullopt;
}

// The canonical form used without an identity key: message-id falls back to
// content (its Message-ID is missing anyway), search-key to auto.
DedupeRule Fallback(DedupeRule rule) {
  return rule == DedupeRule::kAuto || rule == DedupeRule::kSearchKey ? DedupeRule::kAuto
                                                                      : DedupeRule::kContent;
}

// The body without trailing blank lines and white space: mbox storage adds a
// newline, other formats do not.
std::string_view TrimBodyEnd(std::string_view body) {
  size_t end = body.size();
  while (end > 0 && (body[end - 1] == '\n' || body[end - 1] == '\r' || body[end - 1] == ' ' ||
                     body[end - 1] == '\t')) {
    --end;
  }
  return body.substr(0, end);
}

// Feeds the body with CRLF folded to LF and trailing blank lines dropped, so
// the same body stored by different mailbox formats hashes the same.
void HashBody(std::string_view body, Sha256* h) {
  body = TrimBodyEnd(body);
  size_t start = 0;
  while (start < body.size()) {
    const void* cr = std::memchr(body.data() + start, '\r', body.size() - start);
    if (!cr) {
      h->Update(body.substr(start));
      break;
    }
    size_t pos = static_cast<size_t>(static_cast<const char*>(cr) - body.data());
    if (pos + 1 < body.size() && body[pos + 1] == '\n') {
      h->Update(body.substr(start, pos - start));  // drop the CR
      start = pos + 1;
    } else {
      h->Update(body.substr(start, pos + 1 - start));  // a lone CR is content
      start = pos + 1;
    }
  }
}

std::string CanonicalHeaders(std::string_view headers, DedupeRule rule) {
  std::string out;
  if (rule == DedupeRule::kAuto) {
    out = "auto\n";
    AppendFields(headers, kAutoFields, &out);
  } else {
    out = "content\n";
    AppendFields(headers, kContentFields, &out);
  }
  return out;
}

}  // namespace

std::string ToHex(const uint8_t* data, size_t n) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out(n * 2, '0');
  for (size_t i = 0; i < n; ++i) {
    out[2 * i] = kDigits[data[i] >> 4];
    out[2 * i + 1] = kDigits[data[i] & 15];
  }
  return out;
}

HeaderKey ComputeHeaderKey(std::string_view message, DedupeRule rule) {
  std::string_view headers = mime::HeaderBlock(message);
  std::string text;
  auto mid = IdentityKey(headers, rule);
  if (mid) {
    text = *mid;
  } else if (Fallback(rule) == DedupeRule::kAuto) {
    text = "auto\n";
    AppendFields(headers, kAutoKeyFields, &text);
  } else {
    text = "content\n";
    AppendFields(headers, kContentKeyFields, &text);
  }
  Sha256 h;
  h.Update(text);
  Digest d = h.Final();
  HeaderKey key;
  std::memcpy(key.data(), d.data(), key.size());
  return key;
}

Digest ComputeDigest(std::string_view message, DedupeRule rule) {
  size_t body_at = mime::BodyOffset(message);
  std::string_view headers = mime::HeaderBlock(message);
  Sha256 h;
  if (auto mid = IdentityKey(headers, rule)) {
    h.Update(*mid);
    return h.Final();
  }
  h.Update(CanonicalHeaders(headers, Fallback(rule)));
  h.Update("\n");
  HashBody(message.substr(body_at), &h);
  return h.Final();
}

Digest Sha256Of(std::string_view bytes) {
  Sha256 h;
  h.Update(bytes);
  return h.Final();
}

std::string CanonicalForm(std::string_view message, DedupeRule rule) {
  size_t body_at = mime::BodyOffset(message);
  std::string_view headers = mime::HeaderBlock(message);
  if (auto mid = IdentityKey(headers, rule)) return *mid;
  std::string out = CanonicalHeaders(headers, Fallback(rule));
  out += '\n';
  std::string_view body = TrimBodyEnd(message.substr(body_at));
  size_t end = body.size();
  for (size_t i = 0; i < end; ++i) {
    if (body[i] == '\r' && i + 1 < end && body[i + 1] == '\n') continue;
    out += body[i];
  }
  return out;
}

}  // namespace mbx
