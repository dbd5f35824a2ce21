// Fuzzes the MIME header scanner and parser (formats/mime/mime.h) and the
// dedupe fingerprints computed on a message (engine/fingerprint.h). Besides
// crashes, checks the documented contracts: views stay inside the input, the
// header block ends where the body starts, decoded text is valid UTF-8, and a
// parsed date survives FormatAsctime -> ParseDate.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "engine/fingerprint.h"
#include "formats/mime/mime.h"

namespace {

void Check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "fuzz_mime: %s\n", what);
    std::abort();
  }
}

bool Inside(std::string_view part, std::string_view whole) {
  return part.data() >= whole.data() && part.data() + part.size() <= whole.data() + whole.size();
}

bool ValidUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (n == 0 || i + n > s.size()) return false;
    for (size_t k = 1; k < n; ++k)
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
    i += n;
  }
  return true;
}

void CheckDate(std::string_view text) {
  auto t = mbx::mime::ParseDate(text);
  if (!t) return;
  // Years of four digits print and parse back exactly.
  if (*t < -62135596800 || *t > 253402300799) return;
  const std::string asctime = mbx::mime::FormatAsctime(*t);
  auto back = mbx::mime::ParseDate(asctime);
  Check(back && *back == *t, "ParseDate(FormatAsctime(t)) != t");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace mbx;  // NOLINT
  const std::string_view msg(reinterpret_cast<const char*>(data), size);

  const size_t body = mime::BodyOffset(msg);
  Check(body <= msg.size(), "BodyOffset past the end");
  const std::string_view headers = mime::HeaderBlock(msg);
  Check(Inside(headers, msg) && headers.data() == msg.data(), "HeaderBlock not a prefix");
  Check(headers.size() <= body, "HeaderBlock reaches into the body");

  mime::FieldScanner scanner(msg);
  mime::Field f;
  size_t fields = 0;
  std::string_view first_name, first_value;
  while (scanner.Next(&f)) {
    Check(++fields <= msg.size(), "FieldScanner yields more fields than bytes");
    Check(Inside(f.name, msg) && Inside(f.value, msg), "Field outside the message");
    Check(f.name.data() < msg.data() + body || body == msg.size(), "Field in the body");
    if (fields == 1) first_name = f.name, first_value = f.value;
    (void)mime::Unfold(f.value);
    Check(ValidUtf8(mime::DecodeHeader(f.value)), "DecodeHeader gave invalid UTF-8");
    CheckDate(f.value);
    (void)mime::FirstAddress(f.value);
  }
  if (fields > 0) {
    auto found = mime::FindField(msg, first_name);
    Check(found && found->data() == first_value.data() && found->size() == first_value.size(),
          "FindField does not find the first field");
  }
  (void)mime::FindField(headers, "Content-Type");
  (void)mime::FirstReceivedDate(headers);

  // The whole input as one header value, one date, one base64 text.
  Check(ValidUtf8(mime::DecodeHeader(msg)), "DecodeHeader gave invalid UTF-8");
  Check(ValidUtf8(mime::CaseFold(msg)), "CaseFold gave invalid UTF-8");
  CheckDate(msg);
  Check(mime::DecodeBase64(msg).size() <= msg.size() * 3 / 4 + 3, "DecodeBase64 grew");
  (void)mime::FirstAddress(msg);
  (void)mime::Unfold(msg);

  for (const auto& name : mime::AttachmentNames(msg))
    Check(ValidUtf8(name), "AttachmentNames gave invalid UTF-8");

  for (auto rule :
       {DedupeRule::kAuto, DedupeRule::kContent, DedupeRule::kMessageId, DedupeRule::kSearchKey}) {
    (void)ComputeHeaderKey(msg, rule);
    const Digest d = ComputeDigest(msg, rule);
    Check(d == ComputeDigest(msg, rule), "ComputeDigest not deterministic");
    (void)CanonicalForm(msg, rule);
  }
  return 0;
}
