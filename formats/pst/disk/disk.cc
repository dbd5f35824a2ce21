#include "formats/pst/disk/disk.h"

#include <zlib.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include <array>
#include <cstdio>
#include <cstring>

namespace mbx::pst::disk {
namespace {

// [MS-PST] 5.1: the substitution applied by the permutative ("compressible")
// encoding. Decoding uses its inverse, computed once.
constexpr std::array<uint8_t, 256> kPermuteEncode = {
    65,  54,  19,  98,  168, 33,  110, 187, 244, 22,  204, 4,   127, 100, 232, 93,   //
    30,  242, 203, 42,  116, 197, 94,  53,  210, 149, 71,  158, 150, 45,  154, 136,  //
    76,  125, 132, 63,  219, 172, 49,  182, 72,  95,  246, 196, 216, 57,  139, 231,  //
    35,  59,  56,  142, 200, 193, 223, 37,  177, 32,  165, 70,  96,  78,  156, 251,  //
    170, 211, 86,  81,  69,  124, 85,  0,   7,   201, 43,  157, 133, 155, 9,   160,  //
    143, 173, 179, 15,  99,  171, 137, 75,  215, 167, 21,  90,  113, 102, 66,  191,  //
    38,  74,  107, 152, 250, 234, 119, 83,  178, 112, 5,   44,  253, 89,  58,  134,  //
    126, 206, 6,   235, 130, 120, 87,  199, 141, 67,  175, 180, 28,  212, 91,  205,  //
    226, 233, 39,  79,  195, 8,   114, 128, 207, 176, 239, 245, 40,  109, 190, 48,   //
    77,  52,  146, 213, 14,  60,  34,  50,  229, 228, 249, 159, 194, 209, 10,  129,  //
    18,  225, 238, 145, 131, 118, 227, 151, 230, 97,  138, 23,  121, 164, 183, 220,  //
    144, 122, 92,  140, 2,   166, 202, 105, 222, 80,  26,  17,  147, 185, 82,  135,  //
    88,  252, 237, 29,  55,  73,  27,  106, 224, 41,  51,  153, 189, 108, 217, 148,  //
    243, 64,  84,  111, 240, 198, 115, 184, 214, 62,  101, 24,  68,  31,  221, 103,  //
    16,  241, 12,  25,  236, 174, 3,   161, 20,  123, 169, 11,  255, 248, 163, 192,  //
    162, 1,   247, 46,  188, 36,  104, 117, 13,  254, 186, 47,  181, 208, 218, 61,
};

constexpr std::array<uint8_t, 256> Invert(const std::array<uint8_t, 256>& t) {
  std::array<uint8_t, 256> inv{};
  for (int i = 0; i < 256; ++i) inv[t[i]] = static_cast<uint8_t>(i);
  return inv;
}
constexpr std::array<uint8_t, 256> kPermuteDecode = Invert(kPermuteEncode);

void Substitute(const std::array<uint8_t, 256>& table, uint8_t* data, size_t n) {
  for (size_t i = 0; i < n; ++i) data[i] = table[data[i]];
}

}  // namespace

// [MS-PST] 5.3's CRC is CRC-32 (0xEDB88320) without zlib's pre- and
// post-inversion, so zlib's (several bytes a cycle, where a table loop does one:
// a fifth of a PST -> PST merge's time) computes it with both undone.
uint32_t Crc(const void* data, size_t n, uint32_t crc) {
  return ~static_cast<uint32_t>(crc32_z(~crc, static_cast<const Bytef*>(data), n));
}

void EncodeBlock(CryptMethod method, uint8_t* data, size_t n, uint64_t /*bid*/) {
  // Cyclic ("high") encoding is read by libpff on the source side; our own
  // reader and writer do not implement it (CheckPst reports it as unsupported).
  if (method == CryptMethod::kPermute) Substitute(kPermuteEncode, data, n);
}

void DecodeBlock(CryptMethod method, uint8_t* data, size_t n, uint64_t /*bid*/) {
  if (method == CryptMethod::kPermute) Substitute(kPermuteDecode, data, n);
}

uint8_t HeapFillLevel(size_t free_bytes) {
  // [MS-PST] 2.3.1.2: FILL_LEVEL_EMPTY (0) ... FILL_LEVEL_FULL (0xF).
  static constexpr size_t kBounds[] = {3584, 2560, 2048, 1792, 1536, 1280, 1024,
                                       768,  512,  256,  128,  64,   32};
  for (size_t i = 0; i < std::size(kBounds); ++i)
    if (free_bytes >= kBounds[i]) return static_cast<uint8_t>(i);
  return 0xF;
}

const char* NidTypeName(uint32_t type) {
  switch (type) {
    case kNidTypeHid:
      return "HID";
    case kNidTypeInternal:
      return "INTERNAL";
    case kNidTypeNormalFolder:
      return "NORMAL_FOLDER";
    case kNidTypeSearchFolder:
      return "SEARCH_FOLDER";
    case kNidTypeNormalMessage:
      return "NORMAL_MESSAGE";
    case kNidTypeAttachment:
      return "ATTACHMENT";
    case kNidTypeSearchUpdateQueue:
      return "SEARCH_UPDATE_QUEUE";
    case kNidTypeSearchCriteriaObject:
      return "SEARCH_CRITERIA_OBJECT";
    case kNidTypeAssocMessage:
      return "ASSOC_MESSAGE";
    case kNidTypeContentsTableIndex:
      return "CONTENTS_TABLE_INDEX";
    case kNidTypeReceiveFolderTable:
      return "RECEIVE_FOLDER_TABLE";
    case kNidTypeOutgoingQueueTable:
      return "OUTGOING_QUEUE_TABLE";
    case kNidTypeHierarchyTable:
      return "HIERARCHY_TABLE";
    case kNidTypeContentsTable:
      return "CONTENTS_TABLE";
    case kNidTypeAssocContentsTable:
      return "ASSOC_CONTENTS_TABLE";
    case kNidTypeSearchContentsTable:
      return "SEARCH_CONTENTS_TABLE";
    case kNidTypeAttachmentTable:
      return "ATTACHMENT_TABLE";
    case kNidTypeRecipientTable:
      return "RECIPIENT_TABLE";
    case kNidTypeSearchTableIndex:
      return "SEARCH_TABLE_INDEX";
    case kNidTypeLtp:
      return "LTP";
    default:
      return "UNKNOWN";
  }
}

size_t FixedSizeOf(uint16_t type) {
  switch (type) {
    case kPtypInteger16:
      return 2;
    case kPtypInteger32:
    case kPtypFloating32:
    case kPtypErrorCode:
      return 4;
    case kPtypBoolean:
      return 1;
    case kPtypFloating64:
    case kPtypCurrency:
    case kPtypFloatingTime:
    case kPtypInteger64:
    case kPtypTime:
      return 8;
    case kPtypGuid:
      return 16;
    default:
      return 0;
  }
}

const char* PropertyTypeName(uint16_t type) {
  switch (type) {
    case kPtypInteger16:
      return "Integer16";
    case kPtypInteger32:
      return "Integer32";
    case kPtypFloating32:
      return "Floating32";
    case kPtypFloating64:
      return "Floating64";
    case kPtypCurrency:
      return "Currency";
    case kPtypFloatingTime:
      return "FloatingTime";
    case kPtypErrorCode:
      return "ErrorCode";
    case kPtypBoolean:
      return "Boolean";
    case kPtypObject:
      return "Object";
    case kPtypInteger64:
      return "Integer64";
    case kPtypString8:
      return "String8";
    case kPtypString:
      return "String";
    case kPtypTime:
      return "Time";
    case kPtypGuid:
      return "Guid";
    case kPtypServerId:
      return "ServerId";
    case kPtypRestriction:
      return "Restriction";
    case kPtypRuleAction:
      return "RuleAction";
    case kPtypBinary:
      return "Binary";
    case kPtypMultipleInteger16:
      return "MultipleInteger16";
    case kPtypMultipleInteger32:
      return "MultipleInteger32";
    case kPtypMultipleFloating32:
      return "MultipleFloating32";
    case kPtypMultipleFloating64:
      return "MultipleFloating64";
    case kPtypMultipleCurrency:
      return "MultipleCurrency";
    case kPtypMultipleFloatingTime:
      return "MultipleFloatingTime";
    case kPtypMultipleInteger64:
      return "MultipleInteger64";
    case kPtypMultipleString8:
      return "MultipleString8";
    case kPtypMultipleString:
      return "MultipleString";
    case kPtypMultipleTime:
      return "MultipleTime";
    case kPtypMultipleGuid:
      return "MultipleGuid";
    case kPtypMultipleBinary:
      return "MultipleBinary";
    default:
      return "Unknown";
  }
}

// Both conversions write through a pointer into room for the worst case and
// take eight ASCII bytes (four code units) at a time: message bodies are
// mostly ASCII, and a PST -> PST merge converts every string both ways.
std::string Utf8ToUtf16le(std::string_view s) {
  std::string out(s.size() * 2, '\0');  // no UTF-8 sequence gives more than 2 bytes a byte
  auto* o = reinterpret_cast<uint8_t*>(out.data());
  const auto* p = reinterpret_cast<const uint8_t*>(s.data());
  const size_t n = s.size();
  auto put = [&o](uint32_t u) {
    o[0] = static_cast<uint8_t>(u & 0xFF);
    o[1] = static_cast<uint8_t>(u >> 8);
    o += 2;
  };
  size_t i = 0;
  while (i < n) {
    if (i + 8 <= n) {
      uint64_t word;
      std::memcpy(&word, p + i, 8);
      if ((word & 0x8080808080808080ULL) == 0) {
        for (int k = 0; k < 8; ++k) {
          o[2 * k] = p[i + static_cast<size_t>(k)];
          o[2 * k + 1] = 0;
        }
        o += 16;
        i += 8;
        continue;
      }
    }
    const uint8_t c = p[i];
    uint32_t cp = 0xFFFD;
    size_t len = 1;
    if (c < 0x80) {
      cp = c;
    } else if ((c >> 5) == 0x6) {
      len = 2;
    } else if ((c >> 4) == 0xE) {
      len = 3;
    } else if ((c >> 3) == 0x1E) {
      len = 4;
    }
    if (len > 1) {
      if (i + len > n) {
        len = 1;
      } else {
        uint32_t v = c & (0x7F >> len);
        bool ok = true;
        for (size_t k = 1; k < len; ++k) {
          const uint8_t cc = p[i + k];
          if ((cc & 0xC0) != 0x80) ok = false;
          v = (v << 6) | (cc & 0x3F);
        }
        static constexpr uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
        if (ok && v >= kMin[len] && v <= 0x10FFFF && (v < 0xD800 || v > 0xDFFF)) {
          cp = v;
        } else {
          len = 1;
        }
      }
    }
    if (cp >= 0x10000) {
      cp -= 0x10000;
      put(0xD800 + (cp >> 10));
      put(0xDC00 + (cp & 0x3FF));
    } else {
      put(cp);
    }
    i += len;
  }
  out.resize(static_cast<size_t>(o - reinterpret_cast<uint8_t*>(out.data())));
  return out;
}

namespace {

// UTF-16LE code units p[0, n) as UTF-8 (unpaired surrogates as U+FFFD):
// written to `o` when kWrite, else only counted. Returns the UTF-8 length.
// One walk for both, so that the count cannot disagree with the writing.
template <bool kWrite>
size_t TranscodeUtf16le(const uint8_t* p, size_t n, uint8_t* o) {
  size_t len = 0;
  auto put = [&](uint32_t cp) {
    if (cp < 0x80) {
      if constexpr (kWrite) o[len] = static_cast<uint8_t>(cp);
      len += 1;
    } else if (cp < 0x800) {
      if constexpr (kWrite) {
        o[len] = static_cast<uint8_t>(0xC0 | (cp >> 6));
        o[len + 1] = static_cast<uint8_t>(0x80 | (cp & 0x3F));
      }
      len += 2;
    } else if (cp < 0x10000) {
      if constexpr (kWrite) {
        o[len] = static_cast<uint8_t>(0xE0 | (cp >> 12));
        o[len + 1] = static_cast<uint8_t>(0x80 | ((cp >> 6) & 0x3F));
        o[len + 2] = static_cast<uint8_t>(0x80 | (cp & 0x3F));
      }
      len += 3;
    } else {
      if constexpr (kWrite) {
        o[len] = static_cast<uint8_t>(0xF0 | (cp >> 18));
        o[len + 1] = static_cast<uint8_t>(0x80 | ((cp >> 12) & 0x3F));
        o[len + 2] = static_cast<uint8_t>(0x80 | ((cp >> 6) & 0x3F));
        o[len + 3] = static_cast<uint8_t>(0x80 | (cp & 0x3F));
      }
      len += 4;
    }
  };
  size_t i = 0;
  while (i < n) {
#if defined(__SSE2__)
    // 16 ASCII code units at a time (most of a Western mailbox's text).
    const __m128i high = _mm_set1_epi16(static_cast<short>(0xFF80));
    while (i + 16 <= n) {
      __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 2 * i));
      __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 2 * i + 16));
      __m128i ascii = _mm_cmpeq_epi16(_mm_and_si128(_mm_or_si128(a, b), high), _mm_setzero_si128());
      if (_mm_movemask_epi8(ascii) != 0xFFFF) break;
      if constexpr (kWrite)
        _mm_storeu_si128(reinterpret_cast<__m128i*>(o + len), _mm_packus_epi16(a, b));
      len += 16;
      i += 16;
    }
#endif
    if (i + 4 <= n) {
      uint64_t word;
      std::memcpy(&word, p + 2 * i, 8);
      if ((word & 0xFF80FF80FF80FF80ULL) == 0) {
        if constexpr (kWrite) {
          for (size_t k = 0; k < 4; ++k) o[len + k] = p[2 * (i + k)];
        }
        len += 4;
        i += 4;
        continue;
      }
    }
    if (i >= n) break;
    uint32_t u = Get16(p + 2 * i);
    if (u >= 0xD800 && u <= 0xDBFF && i + 1 < n) {
      const uint32_t lo = Get16(p + 2 * (i + 1));
      if (lo >= 0xDC00 && lo <= 0xDFFF) {
        put(0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00));
        i += 2;
        continue;
      }
    }
    put((u >= 0xD800 && u <= 0xDFFF) ? 0xFFFD : u);
    ++i;
  }
  return len;
}

}  // namespace

// Counted first, then written into a string of exactly that size: a string
// sized for the worst case (3 bytes a unit) kept that capacity in every
// property bag, and zeroing it was a tenth of reading a PST.
std::string Utf16leToUtf8(std::string_view s) {
  const auto* p = reinterpret_cast<const uint8_t*>(s.data());
  const size_t n = s.size() / 2;
  std::string out(TranscodeUtf16le<false>(p, n, nullptr), '\0');
  TranscodeUtf16le<true>(p, n, reinterpret_cast<uint8_t*>(out.data()));
  return out;
}

std::string Hex(uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

}  // namespace mbx::pst::disk
