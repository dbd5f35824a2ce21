// \brief The LTP writer ([MS-PST] 2.3): heap-on-node, BTH, property contexts
// and table contexts, built in memory per node and handed to the NDB writer.
//
// A node's content is its heap blocks (each at most 8,176 bytes, allocations
// never straddling blocks) plus its subnodes (values over 3,580 bytes and row
// matrices too big for the heap).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "engine/status.h"
#include "formats/pst/disk/disk.h"
#include "formats/pst/ltp/types.h"
#include "formats/pst/ndb/writer.h"

namespace mbx::pst::ltp {

// Packed multi-valued layouts ([MS-PST] 2.3.3.4): fixed-size types are the
// values back to back; variable ones (strings, binaries) a count, offsets and
// the values.
std::string EncodeMulti(uint16_t type, const std::vector<std::string>& values);

// Heap-on-node ([MS-PST] 2.3.1).
class HeapBuilder {
 public:
  explicit HeapBuilder(uint8_t client_signature) : client_sig_(client_signature) {}
  // Allocates `bytes` (1..3,580 of them) and returns the HID.
  Result<uint32_t> Allocate(std::string_view bytes);
  // Overwrites an allocation with the same number of bytes.
  Status Rewrite(uint32_t hid, std::string_view bytes);
  void set_user_root(uint32_t hid) { user_root_ = hid; }
  // The heap's data blocks.
  std::vector<std::string> Finish() const;

 private:
  struct Block {
    std::vector<std::string> allocs;
    size_t bytes = 0;
  };
  size_t HeaderSize(size_t block_index) const;
  uint8_t client_sig_;
  uint32_t user_root_ = 0;
  std::vector<Block> blocks_;
};

// Collects a node's subnodes while its heap is built.
class NodeBuilder {
 public:
  explicit NodeBuilder(ndb::NdbWriter& ndb) : ndb_(ndb) {}
  ndb::NdbWriter& ndb() { return ndb_; }
  // Stores a value too big for the heap as a subnode; returns its NID.
  Result<uint32_t> AddValueSubnode(std::string_view data);
  // Stores a row matrix, cut so no row straddles a block.
  Result<uint32_t> AddRowsSubnode(const std::vector<std::string>& blocks);
  void AddSubnode(const ndb::SubnodeEntry& e) { subnodes_.push_back(e); }
  // Writes the heap blocks and the subnode tree; returns {bidData, bidSub}.
  Result<std::pair<uint64_t, uint64_t>> Finish(const std::vector<std::string>& heap_blocks);

 private:
  ndb::NdbWriter& ndb_;
  std::vector<ndb::SubnodeEntry> subnodes_;
};

// Builds a BTH in `heap` from records sorted by key (each cb_key + cb_ent
// bytes); returns the HID of its header, allocated unless `header_hid` names
// an 8-byte allocation made earlier for it.
Result<uint32_t> BuildBth(HeapBuilder& heap, uint8_t cb_key, uint8_t cb_ent,
                          const std::vector<std::string>& records, uint32_t header_hid = 0);

// A property context: the heap blocks of the node (subnodes go to `node`).
Result<std::vector<std::string>> BuildPropertyContext(std::vector<Property> props,
                                                      NodeBuilder& node);

// A table's shape: columns (sorted by tag on disk) and the end offsets of
// the 4/8-byte, 2-byte and 1-byte cell groups and of the bitmap.
struct TableSchema {
  std::vector<Column> columns;
  uint16_t end_4b = 0, end_2b = 0, end_1b = 0, end_bm = 0;
  // Lays out `tags` the way Outlook does: 0x67F2 and 0x67F3 first, then
  // 8- and 4-byte cells, 2-byte, 1-byte; bits in the order given.
  static TableSchema Layout(const std::vector<uint32_t>& tags);
  size_t row_size() const { return end_bm; }
  const Column* Find(uint32_t tag) const;
};

// One row to write: its id (0x67F2) and cell values by tag, in the Property
// encoding.
struct RowValues {
  uint32_t row_id = 0;
  std::map<uint32_t, std::string> cells;
};

// A table context; rows keep the order given (the row index is by row id).
Result<std::vector<std::string>> BuildTableContext(const TableSchema& schema,
                                                   const std::vector<RowValues>& rows,
                                                   NodeBuilder& node);

}  // namespace mbx::pst::ltp
