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

// Heap-on-node ([MS-PST] 2.3.1). Built in memory, or with `stream` set,
// written as it grows: a finished block goes to disk at once, except block 0
// and the bitmap blocks (8, 136, ...), whose headers hold the fill levels of
// later blocks. A heap of any size then costs a few blocks of memory.
class HeapBuilder {
 public:
  explicit HeapBuilder(uint8_t client_signature, ndb::NdbWriter* stream = nullptr)
      : client_sig_(client_signature), stream_(stream) {}
  // Allocates `bytes` (1..3,580 of them) and returns the HID.
  Result<uint32_t> Allocate(std::string_view bytes);
  // Overwrites an allocation with the same number of bytes (when streaming,
  // only in block 0 or the block being filled).
  Status Rewrite(uint32_t hid, std::string_view bytes);
  void set_user_root(uint32_t hid) { user_root_ = hid; }
  // The heap's data blocks (not streaming).
  std::vector<std::string> Finish();
  // Streaming: writes the blocks still in memory and returns the root BID of
  // the heap's data (the block, or an XBLOCK tree over them).
  Result<uint64_t> FinishStream();

 private:
  struct Block {
    std::string data;            // allocations back to back
    std::vector<uint16_t> ends;  // end offset of each allocation in `data`
  };
  static size_t HeaderSize(size_t block_index);
  static bool Deferred(size_t block_index) { return block_index == 0 || block_index % 128 == 8; }
  size_t StoredSize(size_t block_index) const;
  // Ends block `i`: its fill level is now known; streamed unless deferred.
  Status Close(size_t i);
  std::string Serialize(size_t i) const;
  uint8_t client_sig_;
  ndb::NdbWriter* stream_;
  uint32_t user_root_ = 0;
  std::vector<Block> blocks_;
  std::vector<uint8_t> fill_;           // per closed block
  std::vector<uint64_t> bids_, sizes_;  // streaming: per block, once written
};

// Collects a node's subnodes while its heap is built.
class NodeBuilder {
 public:
  explicit NodeBuilder(ndb::NdbWriter& ndb) : ndb_(ndb) {}
  ndb::NdbWriter& ndb() { return ndb_; }
  // Stores a value too big for the heap as a subnode; returns its NID.
  Result<uint32_t> AddValueSubnode(std::string_view data);
  // Stores a row matrix written as blocks (each row within one block).
  Result<uint32_t> AddRowsSubnode(const std::vector<uint64_t>& bids,
                                  const std::vector<uint64_t>& sizes);
  void AddSubnode(const ndb::SubnodeEntry& e) { subnodes_.push_back(e); }
  // Writes the heap blocks and the subnode tree; returns {bidData, bidSub}.
  Result<std::pair<uint64_t, uint64_t>> Finish(const std::vector<std::string>& heap_blocks);
  // The same for a streamed heap whose data tree is already written.
  Result<std::pair<uint64_t, uint64_t>> Finish(uint64_t bid_data);

 private:
  ndb::NdbWriter& ndb_;
  std::vector<ndb::SubnodeEntry> subnodes_;
};

// Builds a BTH in `heap` from records sorted by key, packed back to back
// (each cb_key + cb_ent bytes); returns the HID of its header, allocated
// unless `header_hid` names an 8-byte allocation made earlier for it.
Result<uint32_t> BuildBth(HeapBuilder& heap, uint8_t cb_key, uint8_t cb_ent,
                          std::string_view records, uint32_t header_hid = 0);

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

// A table context written row by row; rows keep the order given (the row
// index is by row id). Heap and row-matrix blocks go to disk as they fill, so
// a table of any size costs a few blocks of memory and 8 bytes a row.
class TableWriter {
 public:
  TableWriter(const TableSchema& schema, NodeBuilder& node);
  Status Add(const RowValues& row);
  // Writes the rest and the node's subnode tree; returns {bidData, bidSub}.
  Result<std::pair<uint64_t, uint64_t>> Finish();

 private:
  const TableSchema& schema_;
  NodeBuilder& node_;
  HeapBuilder heap_;
  uint32_t index_hid_ = 0, tcinfo_hid_ = 0;
  size_t per_block_ = 0;  // rows in a row-matrix block
  std::string block_;     // the row-matrix block being filled
  size_t rows_in_block_ = 0;
  std::vector<uint64_t> row_bids_, row_sizes_;        // row-matrix blocks written
  std::vector<std::pair<uint32_t, uint32_t>> index_;  // row id -> row number
  Status first_error_;
};

}  // namespace mbx::pst::ltp
