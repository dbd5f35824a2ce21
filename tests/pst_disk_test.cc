// The shared PST disk vocabulary (formats/pst/disk): the spec's CRC (checked
// against a fixed vector and the header CRCs Outlook wrote into Empty.pst),
// block/page signatures, the permutative encoding (inverse pair, and a real
// Empty.pst block that decodes to a heap header), and UTF-16 conversion.
#include <gtest/gtest.h>
#include <iconv.h>
#include <sys/stat.h>

#include <algorithm>
#include <random>
#include <string>
#include <vector>

#include "formats/pst/disk/disk.h"
#include "tests/test_util.h"

namespace mbx::pst::disk {
namespace {

std::string EmptyPstPath() {
  const std::string dir = testing::SharedDataDir();
  if (dir.empty()) return "";
  const std::string p = dir + "/../pst/Empty.pst";
  struct stat st;
  return ::stat(p.c_str(), &st) == 0 ? p : "";
}

const uint8_t* U8(const std::string& s) { return reinterpret_cast<const uint8_t*>(s.data()); }

TEST(PstDiskTest, CrcKnownVector) {
  // [MS-PST] 5.3: reflected 0xEDB88320, initial 0, no final XOR. The plain
  // IEEE CRC-32 of "123456789" is 0xCBF43926; this variant gives 0x2DFD2D88.
  const std::string v = "123456789";
  EXPECT_EQ(Crc(v.data(), v.size()), 0x2DFD2D88u);
  EXPECT_EQ(Crc(v.data(), 0), 0u);
  // Incremental use continues from the previous value.
  EXPECT_EQ(Crc(v.data() + 4, 5, Crc(v.data(), 4)), 0x2DFD2D88u);
}

TEST(PstDiskTest, CrcMatchesEmptyPstHeader) {
  const std::string path = EmptyPstPath();
  if (path.empty()) GTEST_SKIP() << "shared Empty.pst not present";
  const std::string h = testing::ReadFileOrDie(path).substr(0, kHeaderSize);
  // Values Outlook stored (also in shared/pst/NOTES.md).
  EXPECT_EQ(Get32(U8(h) + header::kCrcPartial), 0x77BBFE83u);
  EXPECT_EQ(Get32(U8(h) + header::kCrcFull), 0xF0304BC1u);
  EXPECT_EQ(Crc(U8(h) + 8, header::kCrcPartialLen), 0x77BBFE83u);
  EXPECT_EQ(Crc(U8(h) + 8, header::kCrcFullLen), 0xF0304BC1u);
}

TEST(PstDiskTest, SignatureFormula) {
  // x = ib ^ bid; (x >> 16) ^ (x & 0xFFFF).
  EXPECT_EQ(Signature(0x10000, 0x4), 0x0005);
  EXPECT_EQ(Signature(0x4200, 0x17F), 0x437F);  // Empty.pst's DList page
  EXPECT_EQ(Signature(0x12340000, 0x5678), 0x1234 ^ 0x5678);
  EXPECT_EQ(Signature(0x123456789ABCull, 0),
            static_cast<uint16_t>((0x123456789ABCull >> 16) ^ 0x9ABC));
}

TEST(PstDiskTest, SignatureMatchesEmptyPstPages) {
  const std::string path = EmptyPstPath();
  if (path.empty()) GTEST_SKIP() << "shared Empty.pst not present";
  const std::string f = testing::ReadFileOrDie(path);
  // The node B-tree root page: the header names it, its trailer signs it.
  const uint64_t bid = Get64(U8(f) + header::kRoot + header::kRootNbt);
  const uint64_t ib = Get64(U8(f) + header::kRoot + header::kRootNbt + 8);
  ASSERT_LT(ib + kPageSize, f.size());
  const uint8_t* page = U8(f) + ib;
  EXPECT_EQ(page[page::kType], static_cast<uint8_t>(PageType::kNbt));
  EXPECT_EQ(Get64(page + page::kBid), bid);
  EXPECT_EQ(Get16(page + page::kSig), Signature(ib, bid));
  EXPECT_EQ(Get32(page + page::kCrc), Crc(page, page::kTrailer));
}

TEST(PstDiskTest, PermuteEncodeDecodeAreInverse) {
  std::string all(256, '\0');
  for (int i = 0; i < 256; ++i) all[i] = static_cast<char>(i);
  std::string enc = all;
  EncodeBlock(CryptMethod::kPermute, reinterpret_cast<uint8_t*>(enc.data()), enc.size(), 4);
  EXPECT_NE(enc, all);
  std::string dec = enc;
  DecodeBlock(CryptMethod::kPermute, reinterpret_cast<uint8_t*>(dec.data()), dec.size(), 4);
  EXPECT_EQ(dec, all);
  // A substitution: every byte value appears once in the encoded table.
  std::vector<uint8_t> sorted(enc.begin(), enc.end());
  std::sort(sorted.begin(), sorted.end());
  for (int i = 0; i < 256; ++i) EXPECT_EQ(sorted[i], i);
  std::string none = all;
  EncodeBlock(CryptMethod::kNone, reinterpret_cast<uint8_t*>(none.data()), none.size(), 4);
  EXPECT_EQ(none, all);
}

TEST(PstDiskTest, PermuteDecodesEmptyPstStoreBlock) {
  const std::string path = EmptyPstPath();
  if (path.empty()) GTEST_SKIP() << "shared Empty.pst not present";
  const std::string f = testing::ReadFileOrDie(path);
  ASSERT_EQ(f[header::kCryptMethod], static_cast<char>(CryptMethod::kPermute));
  // The message store's property context: block 0x108, 294 bytes at 0x5d40.
  constexpr uint64_t kIb = 0x5d40, kBid = 0x108;
  constexpr size_t kCb = 294;
  std::string block = f.substr(kIb, kCb);
  const uint8_t* trailer = U8(f) + kIb + BlockStoredSize(kCb) - kBlockTrailerSize;
  ASSERT_EQ(Get16(trailer), kCb);
  ASSERT_EQ(Get64(trailer + 8), kBid);
  EXPECT_EQ(Get32(trailer + 4), Crc(block.data(), block.size()));  // CRC of the stored bytes
  EXPECT_EQ(static_cast<uint8_t>(block[2]), 0xFF);                 // encoded
  DecodeBlock(CryptMethod::kPermute, reinterpret_cast<uint8_t*>(block.data()), block.size(), kBid);
  EXPECT_EQ(static_cast<uint8_t>(block[2]), kHeapSig);      // HNHDR bSig
  EXPECT_EQ(static_cast<uint8_t>(block[3]), kClientSigPc);  // a property context
  EXPECT_LT(Get16(U8(block)), kCb);                         // ibHnpm inside the block
}

TEST(PstDiskTest, Utf16RoundTrips) {
  for (const std::string& s :
       {std::string(""), std::string("Inbox"),
        std::string("Gr\xC3\xBC\xC3\x9F"
                    "e"),
        std::string("\xE6\x97\xA5\xE6\x9C\xAC"), std::string("a\xF0\x9F\x98\x80z")}) {
    EXPECT_EQ(Utf16leToUtf8(Utf8ToUtf16le(s)), s) << s;
  }
  // U+1F600 is a surrogate pair D83D DE00, little-endian.
  EXPECT_EQ(Utf8ToUtf16le("\xF0\x9F\x98\x80"), std::string("\x3D\xD8\x00\xDE", 4));
  EXPECT_EQ(Utf8ToUtf16le("A"), std::string("A\0", 2));
  // Invalid UTF-8 and lone surrogates become U+FFFD.
  EXPECT_EQ(Utf8ToUtf16le("\xC3"), std::string("\xFD\xFF", 2));
  EXPECT_EQ(Utf16leToUtf8(std::string("\x00\xD8", 2)), "\xEF\xBF\xBD");
  EXPECT_EQ(Utf16leToUtf8(std::string("\x00\xDC"
                                      "A\0",
                                      4)),
            "\xEF\xBF\xBD"
            "A");
}

// The conversions take ASCII eight bytes (UTF-16 -> UTF-8: 32 bytes) at a
// time: random mixes of ASCII runs and multi-byte characters at every
// alignment agree with glibc's iconv, and an invalid byte anywhere in an
// ASCII run becomes one U+FFFD in place.
TEST(PstDiskTest, Utf16AgreesWithIconvAtEveryAlignment) {
  auto iconv_utf16 = [](const std::string& utf8) {
    iconv_t cd = iconv_open("UTF-16LE", "UTF-8");
    std::string out(utf8.size() * 2 + 8, '\0');
    char* in = const_cast<char*>(utf8.data());
    size_t in_left = utf8.size(), out_left = out.size();
    char* o = out.data();
    EXPECT_NE(iconv(cd, &in, &in_left, &o, &out_left), static_cast<size_t>(-1));
    iconv_close(cd);
    out.resize(out.size() - out_left);
    return out;
  };
  const std::vector<std::string> pieces = {
      "a",    "Hello, world. ",  "\xC3\xBC", "\xE6\x97\xA5", "\xF0\x9F\x98\x80",
      "\r\n", "0123456789abcdef"};
  std::mt19937 rng(7);
  for (int round = 0; round < 500; ++round) {
    std::string s;
    const int n = static_cast<int>(rng() % 40);
    for (int k = 0; k < n; ++k) s += pieces[rng() % pieces.size()];
    const std::string utf16 = Utf8ToUtf16le(s);
    ASSERT_EQ(utf16, iconv_utf16(s)) << s;
    ASSERT_EQ(Utf16leToUtf8(utf16), s) << s;
  }
  const std::string ascii = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGH";  // 2 x 16 + 12
  for (size_t at = 0; at < ascii.size(); ++at) {
    std::string bad = ascii;
    bad[at] = '\xFF';
    std::string good = ascii.substr(0, at) + "\xEF\xBF\xBD" + ascii.substr(at + 1);
    EXPECT_EQ(Utf16leToUtf8(Utf8ToUtf16le(bad)), good) << at;
    std::string lone = Utf8ToUtf16le(ascii);
    lone[2 * at] = '\x00';
    lone[2 * at + 1] = '\xDC';  // a lone low surrogate
    EXPECT_EQ(Utf16leToUtf8(lone), good) << at;
  }
}

// A converted string holds its bytes, not room for the worst case (3 bytes
// a code unit): property bags keep them while a message is in flight.
TEST(PstDiskTest, Utf16ToUtf8KeepsNoSpareCapacity) {
  std::vector<std::string> texts(2, std::string(100000, 'a'));
  texts[1].append("\xC3\xBC");
  for (const std::string& text : texts) {
    std::string out = Utf16leToUtf8(Utf8ToUtf16le(text));
    EXPECT_EQ(out, text);
    EXPECT_LT(out.capacity(), out.size() + 64);
  }
}

TEST(PstDiskTest, SizesAndNids) {
  EXPECT_EQ(BlockStoredSize(0), 64u);
  EXPECT_EQ(BlockStoredSize(48), 64u);
  EXPECT_EQ(BlockStoredSize(49), 128u);
  EXPECT_EQ(BlockStoredSize(kMaxBlockPayload), kMaxBlockStored);
  EXPECT_EQ(NidTypeOf(0x200024), kNidTypeNormalMessage);
  EXPECT_EQ(NidIndexOf(0x8082), 0x404u);
  EXPECT_EQ(WithNidType(0x8082, kNidTypeHierarchyTable), 0x808Du);
  EXPECT_TRUE(IsInternalBid(0x102));
  EXPECT_FALSE(IsInternalBid(0x104));
  EXPECT_EQ(HeapFillLevel(5000), 0);
  EXPECT_EQ(HeapFillLevel(10), 0xF);
}

}  // namespace
}  // namespace mbx::pst::disk
