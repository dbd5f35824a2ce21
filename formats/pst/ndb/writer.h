// \brief The node database writer ([MS-PST] 2.2): blocks, data trees, subnode
// trees, nodes, and at Finish() the B-trees, allocation maps and header of a
// 64-bit Unicode PST.
//
// Blocks stream to the file as they are written. So do the block and node
// indexes, past their newest entries: to a scratch file beside the output,
// from which Finish() builds the B-trees (the nodes by a merge of sorted
// runs). Memory is bounded whatever the file's size. Space is allocated
// append-only, so the file is a valid PST only after Finish().
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "engine/fs.h"
#include "engine/status.h"
#include "formats/pst/disk/disk.h"
#include "formats/pst/ndb/types.h"

namespace mbx::pst::ndb {

class NdbWriter {
 public:
  struct Options {
    disk::CryptMethod crypt = disk::CryptMethod::kNone;
    // Index entries kept in memory before older ones go to the scratch file
    // (tests make it small).
    size_t spill_entries = size_t{1} << 16;
  };

  // Creates (truncates) `path`. The caller owns atomicity: write to a
  // temporary name and rename after Finish().
  static Result<std::unique_ptr<NdbWriter>> Create(const std::string& path, Options options);
  ~NdbWriter();
  NdbWriter(const NdbWriter&) = delete;
  NdbWriter& operator=(const NdbWriter&) = delete;

  // Writes one external data block (at most kMaxBlockPayload bytes, encoded
  // per Options) and returns its BID, referenced once.
  Result<uint64_t> WriteBlock(std::string_view payload);
  // Writes `data` of any size as one block or an XBLOCK/XXBLOCK tree of
  // blocks of at most 8,176 bytes; returns the root BID.
  Result<uint64_t> WriteData(std::string_view data);
  // Writes pre-cut data blocks (heaps and row matrices must not straddle
  // blocks) under one root: the block itself when there is one, else an
  // XBLOCK/XXBLOCK tree. `total` is the sum of the sizes.
  Result<uint64_t> WriteBlocks(const std::vector<std::string>& blocks);
  // Writes a subnode tree (SLBLOCKs, plus an SIBLOCK above them when more than
  // one is needed); entries need not be sorted. Returns 0 for no entries.
  Result<uint64_t> WriteSubnodes(std::vector<SubnodeEntry> entries);
  // Puts blocks already written (by WriteBlock) under one root: the block
  // itself when there is one, else an XBLOCK/XXBLOCK tree; `sizes` are their
  // payload sizes. For data written piece by piece (a table's heap and rows).
  Result<uint64_t> WriteTree(const std::vector<uint64_t>& bids, const std::vector<uint64_t>& sizes);
  // One more reference to an existing block (a shared template table).
  Status AddRef(uint64_t bid);

  // Adds a node to the node B-tree. Every NID may be added once.
  Status AddNode(uint32_t nid, uint64_t bid_data, uint64_t bid_sub, uint32_t nid_parent);
  // A fresh NID of `type`: the header's rgnid counter plus one.
  uint32_t AllocateNid(uint32_t type);
  // Sets the last index handed out for `type` (rgnid in the header).
  void SetLastNidIndex(uint32_t type, uint32_t index);
  uint32_t LastNidIndex(uint32_t type) const { return next_nid_index_[type & 0x1F]; }

  // Writes the B-trees, the allocation maps, the density list and the header,
  // then fsyncs. The writer is unusable afterwards.
  Status Finish();

  uint64_t bytes_written() const { return eof_; }

 private:
  // Index entries. Their B-tree leaf entries ([MS-PST] 2.2.2.7.7.3-4) are
  // also their records in the scratch file.
  struct BlockInfo {
    uint64_t bid;
    uint64_t ib;
    uint16_t cb;
    uint16_t cref;
    static constexpr size_t kRecord = disk::kBbtLeafEntrySize;
    void Encode(uint8_t* p) const {  // BREF, cb, cRef, 4 bytes padding
      disk::Put64(p, bid);
      disk::Put64(p + 8, ib);
      disk::Put16(p + 16, cb);
      disk::Put16(p + 18, cref);
      disk::Put32(p + 20, 0);
    }
    static BlockInfo Decode(const uint8_t* p) {
      return {disk::Get64(p), disk::Get64(p + 8), disk::Get16(p + 16), disk::Get16(p + 18)};
    }
    uint64_t key() const { return bid; }
  };
  struct NodeInfo {
    uint32_t nid;
    uint32_t nid_parent;
    uint64_t bid_data;
    uint64_t bid_sub;
    static constexpr size_t kRecord = disk::kNbtLeafEntrySize;
    void Encode(uint8_t* p) const {  // nid (8 bytes), bidData, bidSub, nidParent, padding
      disk::Put64(p, nid);
      disk::Put64(p + 8, bid_data);
      disk::Put64(p + 16, bid_sub);
      disk::Put32(p + 24, nid_parent);
      disk::Put32(p + 28, 0);
    }
    static NodeInfo Decode(const uint8_t* p) {
      return {static_cast<uint32_t>(disk::Get64(p)), disk::Get32(p + 24), disk::Get64(p + 8),
              disk::Get64(p + 16)};
    }
    uint64_t key() const { return nid; }
  };
  struct PageRef {
    uint64_t key;
    uint64_t bid;
    uint64_t ib;
  };
  // Entries spilled to the scratch file: `count` of them from offset `at`.
  struct Run {
    uint64_t at;
    size_t count;
  };
  template <typename T>
  class RunReader;

  NdbWriter(std::string path, int fd, Options options);
  Result<uint64_t> WriteRawBlock(std::string_view payload, bool internal);
  Result<uint64_t> WriteXTree(const std::vector<uint64_t>& bids,
                              const std::vector<uint64_t>& sizes);
  Result<uint64_t> WriteSubnodeLevel(std::vector<SubnodeEntry>& entries);
  // Reserves `size` bytes (64-aligned; 512-aligned for pages) that do not
  // cross an AMap range, creating map pages for new ranges as needed.
  Result<uint64_t> Allocate(size_t size, bool page);
  Status StartRange(uint64_t range_index);
  Status PWrite(uint64_t ib, std::string_view bytes);
  Status FlushBuffer();
  Result<PageRef> WriteBtPage(disk::PageType type, uint8_t level, const uint8_t* entries,
                              size_t count, size_t entry_size, size_t max_entries,
                              uint64_t first_key);
  // `leaf(i, out)` writes leaf entry i of `count` (sorted) and returns its key.
  template <typename Leaf>
  Result<PageRef> WriteBTree(disk::PageType type, size_t count, size_t leaf_entry_size,
                             size_t leaf_max, const Leaf& leaf);
  template <typename T>
  Status Spill(std::vector<T>& entries, std::vector<Run>& runs);
  Status WriteMapPages();
  Status WriteHeader(const PageRef& nbt, const PageRef& bbt);
  void MarkAllocated(uint64_t ib, uint64_t size);

  std::string path_;
  int fd_ = -1;
  Options options_;
  uint64_t next_bid_ = 4;       // bidNextB (external; internal ones set bit 1)
  uint64_t next_page_bid_ = 1;  // bidNextP
  uint64_t next_ = 0;           // next free offset
  uint64_t eof_ = 0;            // end of the last AMap range
  uint32_t next_nid_index_[32] = {};
  std::vector<BlockInfo> blocks_;              // the newest blocks, in BID order
  std::vector<Run> block_runs_;                // older ones, in BID order
  std::map<uint64_t, uint16_t> spilled_refs_;  // AddRef()s of spilled blocks
  std::vector<NodeInfo> nodes_;                // the newest nodes, unsorted
  std::vector<Run> node_runs_;                 // older ones, each run sorted by NID
  uint64_t node_count_ = 0;
  fs::Fd scratch_;  // opened at the first spill
  uint64_t scratch_end_ = 0;
  std::vector<std::vector<uint8_t>> amap_bits_;  // one 496-byte bitmap per range
  // A small write-behind buffer for sequential blocks.
  std::string buf_;
  uint64_t buf_ib_ = 0;
  bool finished_ = false;
};

}  // namespace mbx::pst::ndb
