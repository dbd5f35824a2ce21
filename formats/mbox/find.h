// Substring search for the mbox backend's short needles ("\nFrom ", "From ",
// ">From "). Private to formats/mbox; a header so that tests can check it
// against std::string_view::find.
#pragma once

#include <cstring>
#include <string_view>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace mbx::mbox::internal {

// The offset of the first `needle` in `hay` at or after `from`, or npos.
// glibc's memmem was a quarter of an mbox -> mbox merge: it walks a shift
// table byte by byte. This tests 16 positions at once for the needle's first
// and last bytes together (rare as a pair in mail text, even where '\n' or
// 'F' alone are common) and compares the middle only where both match.
inline size_t FindBytes(std::string_view hay, std::string_view needle, size_t from = 0) {
  const size_t n = hay.size();
  const size_t k = needle.size();
  if (from > n || k > n - from) return std::string_view::npos;
  if (k == 0) return from;
  const char* h = hay.data();
  size_t i = from;
#if defined(__SSE2__)
  if (k >= 2) {
    const __m128i first = _mm_set1_epi8(needle[0]);
    const __m128i last = _mm_set1_epi8(needle[k - 1]);
    // Both 16-byte loads stay inside hay: the last one ends at i + k - 1 + 16 <= n.
    for (; i + k - 1 + 16 <= n; i += 16) {
      const __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(h + i));
      const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(h + i + k - 1));
      unsigned mask = static_cast<unsigned>(
          _mm_movemask_epi8(_mm_and_si128(_mm_cmpeq_epi8(a, first), _mm_cmpeq_epi8(b, last))));
      while (mask != 0) {
        const size_t at = i + static_cast<size_t>(__builtin_ctz(mask));
        if (std::memcmp(h + at + 1, needle.data() + 1, k - 2) == 0) return at;
        mask &= mask - 1;
      }
    }
  }
#endif
  // The tail (or no SSE2): fewer than 16 candidate positions left.
  return hay.find(needle, i);
}

}  // namespace mbx::mbox::internal
