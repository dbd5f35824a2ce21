// \brief NDB reader for Unicode PSTs ([MS-PST] 2.2): header, B-trees, blocks, data, subnodes.
//
// The reader parses; it does not judge. It verifies only what it needs to
// interpret the bytes (sizes, page types, levels, bounds) and leaves CRCs,
// signatures and cross-structure consistency to the checker (check/check.h),
// which watches the B-tree walk through a TreeObserver. Every loop that file
// content drives is bounded: depth limits and visited sets turn cycles into
// errors.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "engine/fs.h"
#include "engine/status.h"
#include "formats/pst/disk/disk.h"
#include "formats/pst/ndb/types.h"

namespace mbx::pst::ndb {

struct Bref {
  uint64_t bid = 0;
  uint64_t ib = 0;
};

// The header fields ([MS-PST] 2.2.2.6) of a Unicode file.
struct Header {
  uint32_t magic = 0;
  uint32_t crc_partial = 0;
  uint16_t magic_client = 0;
  uint16_t ver = 0;
  uint16_t ver_client = 0;
  uint8_t platform_create = 0;
  uint8_t platform_access = 0;
  uint64_t bid_next_p = 0;
  uint32_t unique = 0;
  std::array<uint32_t, 32> rgnid{};
  uint64_t file_eof = 0;
  uint64_t amap_last = 0;
  uint64_t amap_free = 0;
  uint64_t pmap_free = 0;
  Bref nbt;
  Bref bbt;
  uint8_t amap_valid = 0;
  uint8_t sentinel = 0;
  uint8_t crypt_method = 0;
  uint64_t bid_next_b = 0;
  uint32_t crc_full = 0;
};

struct NodeEntry {
  uint64_t nid = 0;
  uint64_t bid_data = 0;
  uint64_t bid_sub = 0;
  uint32_t nid_parent = 0;
};

struct BlockEntry {
  uint64_t bid = 0;
  uint64_t ib = 0;
  uint16_t cb = 0;
  uint16_t cref = 0;
  // The payload's size after zlib inflation: 4 KiB-page files only, where
  // blocks may be stored compressed (cb < cb_inflated); 0 elsewhere.
  uint16_t cb_inflated = 0;
};

// A block as stored: the BBT entry, the whole aligned extent and its trailer.
struct RawBlock {
  BlockEntry entry;
  std::string_view stored;  // BlockStoredSize(entry.cb) bytes at entry.ib
  std::string_view data() const { return stored.substr(0, entry.cb); }
  uint16_t trailer_cb = 0;
  uint16_t trailer_sig = 0;
  uint32_t trailer_crc = 0;
  uint64_t trailer_bid = 0;
};

// A node's data: the decoded payload of each data block, in order.
struct NodeData {
  struct Block {
    uint64_t bid = 0;
    std::string data;
  };
  std::vector<Block> blocks;
  size_t size() const;
  std::string Concat() const;
};

enum class Tree { kNbt, kBbt };
const char* TreeName(Tree tree);

// One B-tree page met during a walk, before its entries are followed.
struct BtPageVisit {
  Tree tree = Tree::kNbt;
  uint64_t ib = 0;
  uint64_t ref_bid = 0;                // the BID in the BREF that points here
  int depth = 0;                       // 0 at the root
  int expected_level = -1;             // parent's cLevel - 1; -1 at the root
  std::optional<uint64_t> parent_key;  // key of the parent entry pointing here
  const uint8_t* page = nullptr;       // kPageSize bytes
};

// Receives every page of a B-tree walk and every reason a subtree was skipped.
class TreeObserver {
 public:
  virtual ~TreeObserver() = default;
  virtual void OnPage(const BtPageVisit& visit) = 0;
  virtual void OnProblem(std::string location, std::string message) = 0;
};

// "page @0x4600 (NBT level 1)".
std::string PageLocation(uint64_t ib, Tree tree, int level);

class NdbReader {
 public:
  // Maps the file and parses the header. Unsupported for ANSI (wVer 14/15)
  // files; Corruption when it is not a PST at all. 4 KiB-page OSTs (wVer 36,
  // Outlook 2013 and later) are read: their pages are 4096 bytes, blocks
  // 512-aligned with a 24-byte trailer and possibly zlib-compressed. The
  // TreeObserver and the checker know only 512-byte pages.
  static Result<NdbReader> Open(const std::string& path);

  NdbReader(NdbReader&&) = default;
  NdbReader& operator=(NdbReader&&) = default;

  const std::string& path() const { return path_; }
  const Header& header() const { return header_; }
  uint64_t file_size() const { return file_.data().size(); }
  // The raw file bytes [ib, ib + n), or empty when outside the file.
  std::string_view Bytes(uint64_t ib, uint64_t n) const;
  disk::CryptMethod crypt() const { return static_cast<disk::CryptMethod>(header_.crypt_method); }
  bool four_k_pages() const { return header_.ver == kVer4kPages; }
  static constexpr uint16_t kVer4kPages = 36;
  // The largest data block payload: 8,176 bytes, or 65,512 with 4 KiB pages.
  size_t max_block_payload() const;

  // Walks both B-trees into sorted entry vectors. Without an observer the first
  // problem is an error; with one, problems go to the observer, the affected
  // subtree is skipped, and the walk goes on.
  Status LoadTrees(TreeObserver* observer = nullptr);
  const std::vector<NodeEntry>& nodes() const { return nodes_; }     // sorted by nid
  const std::vector<BlockEntry>& blocks() const { return blocks_; }  // sorted by BidKey
  const NodeEntry* FindNode(uint64_t nid) const;
  const BlockEntry* FindBlock(uint64_t bid) const;

  // Stored bytes and trailer. Corruption when the BID is unknown or the
  // extent leaves the file.
  Result<RawBlock> ReadBlockRaw(uint64_t bid) const;
  // The payload, decoded when it is an external block.
  Result<std::string> ReadBlock(uint64_t bid) const;
  // A node's data: one external block, or an XBLOCK/XXBLOCK tree of them. bid 0
  // gives no blocks.
  Result<NodeData> ReadData(uint64_t bid) const;
  // The same data as one string, each block decoded straight into its place
  // (no copy per block, none to join them).
  Result<std::string> ReadDataContiguous(uint64_t bid) const;
  // A subnode tree (SLBLOCK or SIBLOCK of SLBLOCKs), sorted by nid. bid 0 gives
  // an empty list.
  Result<std::vector<SubnodeEntry>> ReadSubnodes(uint64_t bid_sub) const;

 private:
  NdbReader() = default;
  Status Walk(Tree tree, const Bref& ref, int expected_level, std::optional<uint64_t> parent_key,
              int depth, TreeObserver* observer, std::set<uint64_t>& visited);
  Status Problem(TreeObserver* observer, std::string location, std::string message);
  // An internal block's payload: a view of the mapping, or of *inflated
  // when it is stored compressed.
  Result<std::string_view> InternalBlock(uint64_t bid, std::string* inflated) const;
  // Appends a block's payload to *out, decoded when it is an external block.
  Status AppendBlock(uint64_t bid, std::string* out) const;
  // The data blocks of a node's data, in order, and the total its tree claims
  // (none for a single external block).
  struct DataTree {
    std::vector<uint64_t> leaves;
    std::optional<uint64_t> total;
  };
  Result<DataTree> ReadDataTree(uint64_t bid) const;
  Status CheckDataTotal(uint64_t bid, const DataTree& tree, uint64_t total) const;

  std::string path_;
  fs::MappedFile file_;
  // Bytes of blocks read since the mapping's pages were last dropped from
  // our resident set (they stay in the page cache): reading a 10 GiB PST
  // must not make it 10 GiB of our RSS. Shared: the reader is movable.
  std::shared_ptr<std::atomic<uint64_t>> read_since_drop_ =
      std::make_shared<std::atomic<uint64_t>>(0);
  Header header_;
  std::vector<NodeEntry> nodes_;
  std::vector<BlockEntry> blocks_;
};

}  // namespace mbx::pst::ndb
