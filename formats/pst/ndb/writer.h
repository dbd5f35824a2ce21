// \brief The node database writer ([MS-PST] 2.2): blocks, data trees, subnode
// trees, nodes, and at Finish() the B-trees, allocation maps and header of a
// 64-bit Unicode PST.
//
// Blocks stream to the file as they are written; only the block and node
// indexes (24 and 16 bytes per entry) stay in memory. Space is allocated
// append-only, so the file is a valid PST only after Finish().
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "engine/status.h"
#include "formats/pst/disk/disk.h"
#include "formats/pst/ndb/types.h"

namespace mbx::pst::ndb {

class NdbWriter {
 public:
  struct Options {
    disk::CryptMethod crypt = disk::CryptMethod::kNone;
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
  struct BlockInfo {
    uint64_t bid;
    uint64_t ib;
    uint16_t cb;
    uint16_t cref;
  };
  struct NodeInfo {
    uint32_t nid;
    uint32_t nid_parent;
    uint64_t bid_data;
    uint64_t bid_sub;
  };
  struct PageRef {
    uint64_t key;
    uint64_t bid;
    uint64_t ib;
  };

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
  Result<PageRef> WriteBtPage(disk::PageType type, uint8_t level,
                              const std::vector<std::string>& entries, size_t entry_size,
                              size_t max_entries, uint64_t first_key);
  Result<PageRef> WriteBTree(disk::PageType type,
                             std::vector<std::pair<uint64_t, std::string>> leaves,
                             size_t leaf_entry_size, size_t leaf_max);
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
  std::vector<BlockInfo> blocks_;  // in BID order
  std::vector<NodeInfo> nodes_;
  std::vector<std::vector<uint8_t>> amap_bits_;  // one 496-byte bitmap per range
  // A small write-behind buffer for sequential blocks.
  std::string buf_;
  uint64_t buf_ib_ = 0;
  bool finished_ = false;
};

}  // namespace mbx::pst::ndb
