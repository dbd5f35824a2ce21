// Fuzzes the .mbxz bundle reader (formats/mbxz/mbxz.h): the input is written
// to a file and read to the end through OpenSource. An input that does not
// start with the zstd magic is first compressed into one zstd frame, so the
// fuzzer mutates the record stream itself (lengths, tags, counts) and not
// only the compressed bytes; inputs with the magic exercise frame handling.
#include <zstd.h>

#include <cstdint>
#include <cstring>
#include <string>

#include "formats/mbxz/mbxz.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace mbx;  // NOLINT
  static constexpr uint8_t kZstdMagic[] = {0x28, 0xB5, 0x2F, 0xFD};
  std::string bytes;
  if (size >= 4 && std::memcmp(data, kZstdMagic, 4) == 0) {
    bytes.assign(reinterpret_cast<const char*>(data), size);
  } else {
    bytes.resize(ZSTD_compressBound(size));
    size_t n = ZSTD_compress(bytes.data(), bytes.size(), data, size, 1);
    if (ZSTD_isError(n)) return 0;
    bytes.resize(n);
  }
  const std::string path =
      fuzz::WriteScratch("in.mbxz", reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  (void)mbxz::HasZstdMagic(path);
  auto source = mbxz::OpenSource(path);
  if (source.ok()) fuzz::Drain(**source);
  return 0;
}
