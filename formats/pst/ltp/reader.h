// \brief LTP reader ([MS-PST] 2.3): heap-on-node, BTH, PC, TC and the name-to-id map.
//
// Everything here works on a node's data as NdbReader returns it (one
// decoded payload per data block) and resolves HNIDs through the node's
// subnodes. Parsers reject what they cannot interpret and bound every walk;
// policy checks that do not stop interpretation live in check/check.cc.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "engine/status.h"
#include "formats/pst/ltp/types.h"
#include "formats/pst/ndb/reader.h"

namespace mbx::pst::ltp {

// Where a property value or table cell lives.

// HID fields ([MS-PST] 2.3.1.1).
inline constexpr uint32_t HidType(uint32_t hid) { return hid & 0x1F; }
inline constexpr uint32_t HidIndex(uint32_t hid) { return (hid >> 5) & 0x7FF; }
inline constexpr uint32_t HidBlock(uint32_t hid) { return hid >> 16; }
// An HNID is an HID when its NID type bits are NID_TYPE_HID (0).
inline constexpr bool HnidIsHid(uint32_t hnid) { return (hnid & 0x1F) == 0; }

// A heap-on-node over the node's data blocks ([MS-PST] 2.3.1).
class Heap {
 public:
  struct Block {
    size_t header_size = 0;  // HNHDR (12), HNPAGEHDR (2) or HNBITMAPHDR (66)
    uint16_t ib_hnpm = 0;
    uint16_t c_alloc = 0;
    uint16_t c_free = 0;
    std::vector<uint16_t> offsets;  // rgibAlloc: c_alloc + 1 entries
  };

  // Parses HNHDR and every block's page header and page map.
  static Result<Heap> Open(ndb::NodeData data);

  uint8_t client_sig() const { return client_sig_; }
  uint32_t user_root() const { return user_root_; }
  const ndb::NodeData& data() const { return data_; }
  const std::vector<Block>& blocks() const { return blocks_; }
  // The fill level the headers record for block i (HNHDR for blocks 0-7,
  // HNBITMAPHDR of block 8 + 128k for the 128 blocks from it).
  uint8_t RecordedFillLevel(size_t block) const;
  // Free bytes of block i: the gap between its last allocation and its page
  // map, plus the room the block has to grow to the largest block payload.
  size_t FreeBytes(size_t block) const;

  // The bytes of an allocation. hid 0 is an error here (callers decide what
  // an empty reference means).
  Result<std::string_view> Get(uint32_t hid) const;

 private:
  ndb::NodeData data_;
  std::vector<Block> blocks_;
  uint8_t client_sig_ = 0;
  uint32_t user_root_ = 0;
};

// A BTH ([MS-PST] 2.3.2) inside a heap.
class Bth {
 public:
  struct Record {
    std::string_view key;
    std::string_view data;
  };
  static Result<Bth> Open(const Heap& heap, uint32_t hid_header);
  uint8_t key_size() const { return key_size_; }
  uint8_t data_size() const { return data_size_; }
  uint8_t levels() const { return levels_; }
  uint32_t root() const { return root_; }
  // Leaf records in key order. Corruption when keys are not strictly increasing
  // or an index record's key is not its child's first key.
  Result<std::vector<Record>> Records() const;

 private:
  const Heap* heap_ = nullptr;
  uint8_t key_size_ = 0;
  uint8_t data_size_ = 0;
  uint8_t levels_ = 0;
  uint32_t root_ = 0;
};

// What a node's HNIDs resolve against: its subnodes.
struct NodeContext {
  const ndb::NdbReader* ndb = nullptr;
  std::vector<ndb::SubnodeEntry> subnodes;  // sorted by nid
  const ndb::SubnodeEntry* FindSubnode(uint64_t nid) const;
};

// Bytes an HNID names: a heap allocation, a subnode's data, or nothing (0).
Result<std::string> ResolveHnid(const Heap& heap, const NodeContext& ctx, uint32_t hnid,
                                Storage* where);

// A property context ([MS-PST] 2.3.3), sorted by property id.
Result<std::vector<Property>> ReadPropertyContext(const Heap& heap, const NodeContext& ctx);
const Property* FindProperty(const std::vector<Property>& props, uint16_t id);

// TCINFO ([MS-PST] 2.3.4.1).
struct TableInfo {
  uint8_t c_cols = 0;
  std::array<uint16_t, 4> rgib{};  // end of 4/8-byte cells, 2-byte, 1-byte, bitmap
  uint32_t hid_row_index = 0;
  uint32_t hnid_rows = 0;
  uint32_t hid_index = 0;
  std::vector<Column> columns;
  size_t row_size() const { return rgib[3]; }
};
// Layout rules of TCINFO that do not stop reading (column order, cell sizes
// for types, groups, bitmap size, the row id columns); one message each.
std::vector<std::string> ValidateTableInfo(const TableInfo& info);

struct Cell {
  bool present = false;  // the cell existence bit
  std::string value;
  Storage where = Storage::kInline;
};
struct Row {
  uint32_t row_id = 0;
  uint32_t row_index = 0;
  std::vector<Cell> cells;  // parallel to TableInfo::columns
};
struct Table {
  TableInfo info;
  Storage rows_where = Storage::kEmpty;
  size_t matrix_rows = 0;  // rows the row matrix has room for
  std::vector<Row> rows;   // in row index (row id) order
};

// A table context ([MS-PST] 2.3.4).
Result<Table> ReadTableContext(const Heap& heap, const NodeContext& ctx);
// Only a table's row ids, in row order (the row index BTH, sorted by row
// position): what listing a folder needs, without reading every cell of a
// contents table that may have 100,000 rows.
Result<std::vector<uint32_t>> ReadTableRowIds(const Heap& heap);

// The elements of a multi-valued property ([MS-PST] 2.3.3.4).
Result<std::vector<std::string>> DecodeMultiValue(uint16_t type, std::string_view raw);
// Checks that a value has the size its type requires (fixed types, MV counts).
Status ValidateValue(uint16_t type, std::string_view raw);

// One named property of the name-to-id map ([MS-PST] 2.4.7).
struct NamedProperty {
  uint16_t id = 0;  // 0x8000 + wPropIdx
  std::array<uint8_t, 16> guid{};
  bool is_string = false;
  uint32_t lid = 0;  // numeric name when !is_string
  std::string name;  // UTF-8 when is_string
};
// Decodes streams 0x0002 (GUIDs), 0x0003 (entries) and 0x0004 (strings) of the
// map's property context.
Result<std::vector<NamedProperty>> DecodeNameToIdMap(const std::vector<Property>& props);

}  // namespace mbx::pst::ltp
