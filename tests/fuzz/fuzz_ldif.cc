// Fuzzes the LDIF reader (formats/ldif/ldif.h): Parse and Base64Decode on the
// input, and the writer -> reader round trip of the input as an attribute
// value (FormatAttribute folds and base64-encodes; Parse must undo both).
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "formats/ldif/ldif.h"

namespace {

void Check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "fuzz_ldif: %s\n", what);
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace mbx;  // NOLINT
  const std::string_view text(reinterpret_cast<const char*>(data), size);

  auto records = ldif::Parse(text, "fuzz.ldif");
  if (records.ok()) {
    Check(records->size() <= size, "more records than bytes");
    for (const auto& r : *records) {
      size_t values = r.attributes.size();
      Check(values <= size, "more attributes than bytes");
      (void)r.Get("mail");
      (void)r.GetAll("objectClass");
      for (const auto& a : r.attributes) (void)ldif::FormatAttribute(a.name, a.value);
    }
  }
  auto decoded = ldif::Base64Decode(text);
  if (decoded.ok()) Check(decoded->size() <= size * 3 / 4 + 3, "Base64Decode grew");

  auto back = ldif::Base64Decode(ldif::Base64Encode(text));
  Check(back.ok() && *back == text, "Base64Decode(Base64Encode(x)) != x");

  const std::string file =
      ldif::FormatAttribute("dn", "cn=fuzz,o=example") + ldif::FormatAttribute("description", text);
  auto parsed = ldif::Parse(file, "roundtrip.ldif");
  Check(parsed.ok() && parsed->size() == 1, "FormatAttribute output does not parse");
  const std::string* value = (*parsed)[0].Get("description");
  Check(value != nullptr && *value == text, "Parse(FormatAttribute(v)) != v");
  (void)ldif::FormatReplace("cn=fuzz", "description", text);
  return 0;
}
