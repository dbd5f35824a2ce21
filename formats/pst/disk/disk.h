// \brief The on-disk vocabulary of a 64-bit Unicode PST ([MS-PST] 2.2, 5):
// sizes, page and block types, NIDs, CRC, signatures, encodings, and
// little-endian access. Shared by our writer, our reader and the checker.
//
// Everything above this layer works with these names, never with raw offsets.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace mbx::pst::disk {

// ---- Sizes ([MS-PST] 2.2.2.6, 2.2.2.7, 2.2.2.8) ----
inline constexpr size_t kHeaderSize = 564;
inline constexpr size_t kPageSize = 512;
inline constexpr size_t kPageTrailerSize = 16;
inline constexpr size_t kBtPageEntryBytes = 488;  // rgentries of a BTPAGE
inline constexpr size_t kBlockTrailerSize = 16;
inline constexpr size_t kBlockAlign = 64;
inline constexpr size_t kMaxBlockPayload = 8176;  // 8192 - trailer
inline constexpr size_t kMaxBlockStored = 8192;
// Bytes one AMap page covers, its own page included: 496 bytes x 8 bits x 64.
inline constexpr uint64_t kAMapCoverage = 496ull * 8 * 64;
inline constexpr uint64_t kFirstAMapOffset = 0x4400;
inline constexpr uint64_t kDListOffset = 0x4200;
// Largest heap allocation; bigger property values live in a subnode.
inline constexpr size_t kMaxHeapAlloc = 3580;
// XBLOCK/XXBLOCK: up to (8176 - 8) / 8 BIDs.
inline constexpr size_t kMaxXBlockEntries = 1021;
// SLBLOCK / SIBLOCK entry counts that fit one block.
inline constexpr size_t kMaxSlEntries = (kMaxBlockPayload - 8) / 24;  // 340
inline constexpr size_t kMaxSiEntries = (kMaxBlockPayload - 8) / 16;  // 510

// ---- Header field offsets (Unicode) ----
namespace header {
inline constexpr size_t kMagic = 0;        // "!BDN"
inline constexpr size_t kCrcPartial = 4;   // CRC of [8, 8+471)
inline constexpr size_t kMagicClient = 8;  // 0x4D53 "SM"
inline constexpr size_t kVer = 10;         // 23 for Unicode
inline constexpr size_t kVerClient = 12;   // 19
inline constexpr size_t kPlatformCreate = 14;
inline constexpr size_t kPlatformAccess = 15;
inline constexpr size_t kBidUnused = 24;
inline constexpr size_t kBidNextP = 32;
inline constexpr size_t kUnique = 40;
inline constexpr size_t kRgnid = 44;  // 32 x uint32
inline constexpr size_t kRoot = 180;  // ROOT, 72 bytes
inline constexpr size_t kAlign = 252;
inline constexpr size_t kRgbFM = 256;     // 128 bytes, 0xFF
inline constexpr size_t kRgbFP = 384;     // 128 bytes, 0xFF
inline constexpr size_t kSentinel = 512;  // 0x80
inline constexpr size_t kCryptMethod = 513;
inline constexpr size_t kBidNextB = 516;
inline constexpr size_t kCrcFull = 524;  // CRC of [8, 8+516)
inline constexpr size_t kCrcPartialLen = 471;
inline constexpr size_t kCrcFullLen = 516;
// ROOT fields, relative to kRoot.
inline constexpr size_t kRootFileEof = 4;
inline constexpr size_t kRootAMapLast = 12;
inline constexpr size_t kRootAMapFree = 20;
inline constexpr size_t kRootPMapFree = 28;
inline constexpr size_t kRootNbt = 36;  // BREF: bid, ib
inline constexpr size_t kRootBbt = 52;
inline constexpr size_t kRootAMapValid = 68;
inline constexpr uint32_t kMagicValue = 0x4E444221;  // "!BDN" little-endian
inline constexpr uint16_t kMagicClientValue = 0x4D53;
inline constexpr uint16_t kVerUnicode = 23;
inline constexpr uint16_t kVerClientValue = 19;
inline constexpr uint8_t kAMapValid = 2;
}  // namespace header

// ---- Page trailer and BTPAGE field offsets ----
namespace page {
inline constexpr size_t kTrailer = kPageSize - kPageTrailerSize;  // 496
inline constexpr size_t kType = kTrailer;
inline constexpr size_t kTypeRepeat = kTrailer + 1;
inline constexpr size_t kSig = kTrailer + 2;
inline constexpr size_t kCrc = kTrailer + 4;
inline constexpr size_t kBid = kTrailer + 8;
inline constexpr size_t kCEnt = 488;
inline constexpr size_t kCEntMax = 489;
inline constexpr size_t kCbEnt = 490;
inline constexpr size_t kCLevel = 491;
}  // namespace page

enum class PageType : uint8_t {
  kBbt = 0x80,
  kNbt = 0x81,
  kFMap = 0x82,
  kPMap = 0x83,
  kAMap = 0x84,
  kFPMap = 0x85,
  kDList = 0x86,
};

// BTPAGE entry sizes and the largest counts that fit 488 bytes.
inline constexpr size_t kBtEntrySize = 24;       // intermediate: key + BREF
inline constexpr size_t kNbtLeafEntrySize = 32;  // nid, bidData, bidSub, nidParent, pad
inline constexpr size_t kBbtLeafEntrySize = 24;  // BREF, cb, cRef, pad
inline constexpr size_t kBtEntryMax = kBtPageEntryBytes / kBtEntrySize;       // 20
inline constexpr size_t kNbtLeafMax = kBtPageEntryBytes / kNbtLeafEntrySize;  // 15
inline constexpr size_t kBbtLeafMax = kBtPageEntryBytes / kBbtLeafEntrySize;  // 20

enum class CryptMethod : uint8_t { kNone = 0, kPermute = 1, kCyclic = 2 };

// ---- NIDs ([MS-PST] 2.2.2.1, 2.4.1) ----
enum NidType : uint8_t {
  kNidTypeHid = 0x00,
  kNidTypeInternal = 0x01,
  kNidTypeNormalFolder = 0x02,
  kNidTypeSearchFolder = 0x03,
  kNidTypeNormalMessage = 0x04,
  kNidTypeAttachment = 0x05,
  kNidTypeSearchUpdateQueue = 0x06,
  kNidTypeSearchCriteriaObject = 0x07,
  kNidTypeAssocMessage = 0x08,
  kNidTypeContentsTableIndex = 0x0A,
  kNidTypeReceiveFolderTable = 0x0B,
  kNidTypeOutgoingQueueTable = 0x0C,
  kNidTypeHierarchyTable = 0x0D,
  kNidTypeContentsTable = 0x0E,
  kNidTypeAssocContentsTable = 0x0F,
  kNidTypeSearchContentsTable = 0x10,
  kNidTypeAttachmentTable = 0x11,
  kNidTypeRecipientTable = 0x12,
  kNidTypeSearchTableIndex = 0x13,
  kNidTypeLtp = 0x1F,
};
inline constexpr uint32_t NidTypeOf(uint64_t nid) { return static_cast<uint32_t>(nid & 0x1F); }
inline constexpr uint32_t NidIndexOf(uint64_t nid) { return static_cast<uint32_t>(nid >> 5); }
inline constexpr uint32_t MakeNid(uint32_t type, uint32_t index) { return (index << 5) | type; }
// The table NIDs that belong to a folder share its index ([MS-PST] 2.4.4).
inline constexpr uint32_t WithNidType(uint32_t nid, uint32_t type) { return (nid & ~0x1Fu) | type; }
const char* NidTypeName(uint32_t type);

// Special NIDs ([MS-PST] 2.4.1).
inline constexpr uint32_t kNidMessageStore = 0x21;
inline constexpr uint32_t kNidNameToIdMap = 0x61;
inline constexpr uint32_t kNidNormalFolderTemplate = 0xA1;
inline constexpr uint32_t kNidSearchFolderTemplate = 0xC1;
inline constexpr uint32_t kNidRootFolder = 0x122;
inline constexpr uint32_t kNidSearchManagementQueue = 0x1E1;
inline constexpr uint32_t kNidSearchActivityList = 0x201;
inline constexpr uint32_t kNidSearchDomainObject = 0x261;
inline constexpr uint32_t kNidHierarchyTableTemplate = 0x60D;
inline constexpr uint32_t kNidContentsTableTemplate = 0x60E;
inline constexpr uint32_t kNidAssocContentsTableTemplate = 0x60F;
inline constexpr uint32_t kNidSearchContentsTableTemplate = 0x610;
inline constexpr uint32_t kNidAttachmentTableTemplate = 0x671;
inline constexpr uint32_t kNidRecipientTableTemplate = 0x692;

// ---- BIDs ([MS-PST] 2.2.2.2) ----
// Bit 1 marks an internal block (XBLOCK, XXBLOCK, SLBLOCK, SIBLOCK); bit 0 is
// reserved (readers mask it). BIDs advance by 4.
inline constexpr uint64_t kBidInternalBit = 0x2;
inline constexpr bool IsInternalBid(uint64_t bid) { return (bid & kBidInternalBit) != 0; }
inline constexpr uint64_t BidKey(uint64_t bid) { return bid & ~uint64_t{1}; }

// Internal block types (btype byte).
inline constexpr uint8_t kBlockTypeXBlock = 0x01;   // XBLOCK (cLevel 1) / XXBLOCK (cLevel 2)
inline constexpr uint8_t kBlockTypeSubnode = 0x02;  // SLBLOCK (cLevel 0) / SIBLOCK (cLevel 1)

// ---- Heap-on-node / BTH / PC / TC signatures ([MS-PST] 2.3) ----
inline constexpr uint8_t kHeapSig = 0xEC;
inline constexpr uint8_t kClientSigTc = 0x7C;
inline constexpr uint8_t kClientSigBth = 0xB5;
inline constexpr uint8_t kClientSigPc = 0xBC;
// HNPAGEHDR fill levels are nibbles: 0 means >= 3584 bytes free, 0xF < 32.
uint8_t HeapFillLevel(size_t free_bytes);

// ---- Checksums and signatures ([MS-PST] 5.3, 5.5) ----
// CRC-32 as the spec defines it: reflected polynomial 0xEDB88320, initial
// value `crc` (0 for a fresh computation), no final XOR.
uint32_t Crc(const void* data, size_t n, uint32_t crc = 0);
// A block or page signature: the folded XOR of its file offset and BID.
inline constexpr uint16_t Signature(uint64_t ib, uint64_t bid) {
  const uint64_t x = ib ^ bid;
  return static_cast<uint16_t>(((x >> 16) ^ x) & 0xFFFF);
}

// ---- Encodings of external block payloads ([MS-PST] 5.1, 5.2) ----
// Encode/decode `n` bytes in place. kPermute is the "compressible" encoding,
// kCyclic the "high" one (keyed by the low 32 bits of the BID).
void EncodeBlock(CryptMethod method, uint8_t* data, size_t n, uint64_t bid);
void DecodeBlock(CryptMethod method, uint8_t* data, size_t n, uint64_t bid);

// Stored size of a block with `payload` bytes: payload + trailer, rounded up to 64.
inline constexpr size_t BlockStoredSize(size_t payload) {
  return (payload + kBlockTrailerSize + kBlockAlign - 1) / kBlockAlign * kBlockAlign;
}

// ---- Little-endian access ----
inline uint16_t Get16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }
inline uint32_t Get32(const uint8_t* p) {
  return uint32_t{p[0]} | (uint32_t{p[1]} << 8) | (uint32_t{p[2]} << 16) | (uint32_t{p[3]} << 24);
}
inline uint64_t Get64(const uint8_t* p) {
  return uint64_t{Get32(p)} | (uint64_t{Get32(p + 4)} << 32);
}
inline void Put16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v);
  p[1] = static_cast<uint8_t>(v >> 8);
}
inline void Put32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
inline void Put64(uint8_t* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}

// Appends little-endian values to a byte string (the builders' output).
class ByteWriter {
 public:
  explicit ByteWriter(std::string& out) : out_(out) {}
  void U8(uint8_t v) { out_.push_back(static_cast<char>(v)); }
  void U16(uint16_t v) {
    uint8_t b[2];
    Put16(b, v);
    Bytes(b, 2);
  }
  void U32(uint32_t v) {
    uint8_t b[4];
    Put32(b, v);
    Bytes(b, 4);
  }
  void U64(uint64_t v) {
    uint8_t b[8];
    Put64(b, v);
    Bytes(b, 8);
  }
  void Bytes(const void* p, size_t n) { out_.append(static_cast<const char*>(p), n); }
  void Bytes(std::string_view s) { out_.append(s); }
  void Zeros(size_t n) { out_.append(n, '\0'); }
  size_t size() const { return out_.size(); }

 private:
  std::string& out_;
};

// ---- Property types ([MS-OXCDATA] 2.11.1) that a PST stores ----
enum PropertyType : uint16_t {
  kPtypInteger16 = 0x0002,
  kPtypInteger32 = 0x0003,
  kPtypFloating32 = 0x0004,
  kPtypFloating64 = 0x0005,
  kPtypCurrency = 0x0006,
  kPtypFloatingTime = 0x0007,
  kPtypErrorCode = 0x000A,
  kPtypBoolean = 0x000B,
  kPtypObject = 0x000D,
  kPtypInteger64 = 0x0014,
  kPtypString8 = 0x001E,
  kPtypString = 0x001F,
  kPtypTime = 0x0040,
  kPtypGuid = 0x0048,
  kPtypServerId = 0x00FB,
  kPtypRestriction = 0x00FD,
  kPtypRuleAction = 0x00FE,
  kPtypBinary = 0x0102,
  kPtypMultipleInteger16 = 0x1002,
  kPtypMultipleInteger32 = 0x1003,
  kPtypMultipleFloating32 = 0x1004,
  kPtypMultipleFloating64 = 0x1005,
  kPtypMultipleCurrency = 0x1006,
  kPtypMultipleFloatingTime = 0x1007,
  kPtypMultipleInteger64 = 0x1014,
  kPtypMultipleString8 = 0x101E,
  kPtypMultipleString = 0x101F,
  kPtypMultipleTime = 0x1040,
  kPtypMultipleGuid = 0x1048,
  kPtypMultipleBinary = 0x1102,
};
// Size of a fixed-size value, or 0 for variable-size types.
size_t FixedSizeOf(uint16_t type);
const char* PropertyTypeName(uint16_t type);

// UTF-8 <-> UTF-16LE (PtypString). Invalid UTF-8 becomes U+FFFD.
// "0x1f4": how node ids, block ids and offsets appear in messages.
std::string Hex(uint64_t v);

std::string Utf8ToUtf16le(std::string_view utf8);
std::string Utf16leToUtf8(std::string_view utf16le);

}  // namespace mbx::pst::disk
