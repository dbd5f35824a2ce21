#include "formats/pst/ltp/writer.h"

#include <algorithm>
#include <cstring>

namespace mbx::pst::ltp {

using namespace disk;  // NOLINT: the LTP layer speaks the disk vocabulary

namespace {

constexpr size_t kMaxAllocsPerBlock = 2047;  // 11-bit HID index
constexpr uint32_t MakeHid(size_t block, size_t index) {
  return static_cast<uint32_t>((block << 16) | (index << 5));
}

}  // namespace

std::string EncodeMulti(uint16_t type, const std::vector<std::string>& values) {
  std::string out;
  ByteWriter w(out);
  if (FixedSizeOf(static_cast<uint16_t>(type & 0x0FFF)) != 0) {
    for (const auto& v : values) w.Bytes(v);
    return out;
  }
  w.U32(static_cast<uint32_t>(values.size()));
  uint32_t offset = static_cast<uint32_t>(4 + 4 * values.size());
  for (const auto& v : values) {
    w.U32(offset);
    offset += static_cast<uint32_t>(v.size());
  }
  for (const auto& v : values) w.Bytes(v);
  return out;
}

// ---- Heap ----

size_t HeapBuilder::HeaderSize(size_t block_index) const {
  if (block_index == 0) return 12;        // HNHDR
  if (block_index % 128 == 8) return 66;  // HNBITMAPHDR
  return 2;                               // HNPAGEHDR
}

Result<uint32_t> HeapBuilder::Allocate(std::string_view bytes) {
  if (bytes.empty() || bytes.size() > kMaxHeapAlloc)
    return Status::InvalidArgument("PST writer: heap allocation of " +
                                   std::to_string(bytes.size()) + " bytes");
  auto fits = [&](const Block& b, size_t index) {
    const size_t n = b.allocs.size() + 1;
    const size_t data_end = HeaderSize(index) + b.bytes + bytes.size();
    const size_t map = 4 + 2 * (n + 1);
    return n <= kMaxAllocsPerBlock && data_end + (data_end & 1) + map <= kMaxBlockPayload;
  };
  if (blocks_.empty() || !fits(blocks_.back(), blocks_.size() - 1)) {
    if (blocks_.size() == 0xFFFF) return Status::Unsupported("PST writer: heap over 65,535 blocks");
    blocks_.emplace_back();
  }
  Block& b = blocks_.back();
  b.allocs.emplace_back(bytes);
  b.bytes += bytes.size();
  return MakeHid(blocks_.size() - 1, b.allocs.size());
}

Status HeapBuilder::Rewrite(uint32_t hid, std::string_view bytes) {
  const size_t block = hid >> 16;
  const size_t index = (hid >> 5) & 0x7FF;
  if (block >= blocks_.size() || index == 0 || index > blocks_[block].allocs.size() ||
      blocks_[block].allocs[index - 1].size() != bytes.size())
    return Status::InvalidArgument("PST writer: bad heap rewrite");
  blocks_[block].allocs[index - 1].assign(bytes);
  return Status::Ok();
}

std::vector<std::string> HeapBuilder::Finish() const {
  std::vector<std::string> out;
  std::vector<uint8_t> fill(blocks_.size() + 1, 0);
  std::vector<size_t> sizes;
  // Sizes first: the fill levels of later blocks live in earlier headers.
  for (size_t i = 0; i < blocks_.size(); ++i) {
    size_t data_end = HeaderSize(i) + blocks_[i].bytes;
    data_end += data_end & 1;
    const size_t total = data_end + 4 + 2 * (blocks_[i].allocs.size() + 1);
    sizes.push_back(total);
    fill[i] = HeapFillLevel(kMaxBlockPayload - total);
  }
  auto nibbles = [&](ByteWriter& w, size_t first, size_t count) {
    for (size_t k = 0; k < count; k += 2) {
      const uint8_t lo = first + k < blocks_.size() ? fill[first + k] : 0;
      const uint8_t hi = first + k + 1 < blocks_.size() ? fill[first + k + 1] : 0;
      w.U8(static_cast<uint8_t>(lo | (hi << 4)));
    }
  };
  for (size_t i = 0; i < blocks_.size(); ++i) {
    const Block& b = blocks_[i];
    std::string s;
    ByteWriter w(s);
    size_t data_end = HeaderSize(i) + b.bytes;
    data_end += data_end & 1;
    w.U16(static_cast<uint16_t>(data_end));  // ibHnpm
    if (i == 0) {
      w.U8(kHeapSig);
      w.U8(client_sig_);
      w.U32(user_root_);
      nibbles(w, 0, 8);
    } else if (i % 128 == 8) {
      nibbles(w, i, 128);
    }
    std::vector<uint16_t> starts;
    for (const auto& a : b.allocs) {
      starts.push_back(static_cast<uint16_t>(w.size()));
      w.Bytes(a);
    }
    starts.push_back(static_cast<uint16_t>(w.size()));
    if (w.size() & 1) w.U8(0);
    w.U16(static_cast<uint16_t>(b.allocs.size()));  // cAlloc
    w.U16(0);                                       // cFree
    for (uint16_t st : starts) w.U16(st);
    out.push_back(std::move(s));
  }
  return out;
}

// ---- Node ----

Result<uint32_t> NodeBuilder::AddValueSubnode(std::string_view data) {
  MBX_ASSIGN_OR_RETURN(uint64_t bid, ndb_.WriteData(data));
  const uint32_t nid = ndb_.AllocateNid(kNidTypeLtp);
  subnodes_.push_back({nid, bid, 0});
  return nid;
}

Result<uint32_t> NodeBuilder::AddRowsSubnode(const std::vector<std::string>& blocks) {
  MBX_ASSIGN_OR_RETURN(uint64_t bid, ndb_.WriteBlocks(blocks));
  const uint32_t nid = ndb_.AllocateNid(kNidTypeLtp);
  subnodes_.push_back({nid, bid, 0});
  return nid;
}

Result<std::pair<uint64_t, uint64_t>> NodeBuilder::Finish(
    const std::vector<std::string>& heap_blocks) {
  MBX_ASSIGN_OR_RETURN(uint64_t data, ndb_.WriteBlocks(heap_blocks));
  MBX_ASSIGN_OR_RETURN(uint64_t sub, ndb_.WriteSubnodes(std::move(subnodes_)));
  subnodes_.clear();
  return std::make_pair(data, sub);
}

// ---- BTH ----

Result<uint32_t> BuildBth(HeapBuilder& heap, uint8_t cb_key, uint8_t cb_ent,
                          const std::vector<std::string>& records, uint32_t header_hid) {
  std::string header(8, '\0');
  if (header_hid == 0) {
    MBX_ASSIGN_OR_RETURN(header_hid, heap.Allocate(header));
  }
  uint8_t levels = 0;
  uint32_t root = 0;
  if (!records.empty()) {
    std::vector<std::string> level = records;
    size_t rec = size_t{cb_key} + cb_ent;
    while (true) {
      const size_t per = kMaxHeapAlloc / rec;
      std::vector<std::string> up;
      std::vector<uint32_t> hids;
      for (size_t from = 0; from < level.size(); from += per) {
        const size_t to = std::min(level.size(), from + per);
        std::string chunk;
        for (size_t i = from; i < to; ++i) chunk += level[i];
        MBX_ASSIGN_OR_RETURN(uint32_t hid, heap.Allocate(chunk));
        std::string idx = level[from].substr(0, cb_key);
        ByteWriter(idx).U32(hid);
        up.push_back(std::move(idx));
        hids.push_back(hid);
      }
      if (hids.size() == 1) {
        root = hids[0];
        break;
      }
      level = std::move(up);
      rec = size_t{cb_key} + 4;
      ++levels;
    }
  }
  ByteWriter w(header);
  header.clear();
  w.U8(kClientSigBth);
  w.U8(cb_key);
  w.U8(cb_ent);
  w.U8(levels);
  w.U32(root);
  MBX_RETURN_IF_ERROR(heap.Rewrite(header_hid, header));
  return header_hid;
}

// ---- Values in a heap ----

namespace {

// Stores a variable-size value: in the heap when it fits, else in a subnode.
Result<uint32_t> StoreValue(std::string_view v, HeapBuilder& heap, NodeBuilder& node) {
  if (v.empty()) return uint32_t{0};
  if (v.size() <= kMaxHeapAlloc) return heap.Allocate(v);
  return node.AddValueSubnode(v);
}

bool IsInline(uint16_t type) {
  const size_t n = FixedSizeOf(type);
  return n != 0 && n <= 4;
}

}  // namespace

Result<std::vector<std::string>> BuildPropertyContext(std::vector<Property> props,
                                                      NodeBuilder& node) {
  std::sort(props.begin(), props.end(),
            [](const Property& a, const Property& b) { return a.id < b.id; });
  for (size_t i = 1; i < props.size(); ++i)
    if (props[i].id == props[i - 1].id)
      return Status::InvalidArgument("PST writer: property 0x" + std::to_string(props[i].id) +
                                     " set twice");
  HeapBuilder heap(kClientSigPc);
  // The BTH header goes first so that hidUserRoot is 0x20, as in Outlook's files.
  MBX_ASSIGN_OR_RETURN(uint32_t header_hid, heap.Allocate(std::string(8, '\0')));
  std::vector<std::string> records;
  records.reserve(props.size());
  for (const auto& p : props) {
    uint32_t v = 0;
    if (IsInline(p.type)) {
      uint8_t b[4] = {};
      std::memcpy(b, p.value.data(), std::min<size_t>(4, p.value.size()));
      v = Get32(b);
    } else {
      MBX_ASSIGN_OR_RETURN(v, StoreValue(p.value, heap, node));
    }
    std::string rec;
    ByteWriter w(rec);
    w.U16(p.id);
    w.U16(p.type);
    w.U32(v);
    records.push_back(std::move(rec));
  }
  MBX_RETURN_IF_ERROR(BuildBth(heap, 2, 6, records, header_hid).status());
  heap.set_user_root(header_hid);
  return heap.Finish();
}

// ---- Table context ----

const Column* TableSchema::Find(uint32_t tag) const {
  for (const auto& c : columns)
    if (c.tag == tag) return &c;
  return nullptr;
}

TableSchema TableSchema::Layout(const std::vector<uint32_t>& tags) {
  TableSchema s;
  auto cell_size = [](uint32_t tag) -> uint8_t {
    const size_t n = FixedSizeOf(static_cast<uint16_t>(tag & 0xFFFF));
    return static_cast<uint8_t>(n == 0 || n > 8 ? 4 : n);  // an HNID for the rest
  };
  constexpr uint32_t kRowId = 0x67F20003u, kRowVersion = 0x67F30003u;
  // Cells: row id and version first, then 8-, 4-, 2- and 1-byte cells.
  std::vector<uint32_t> order;
  for (uint32_t fixed : {kRowId, kRowVersion})
    if (std::find(tags.begin(), tags.end(), fixed) != tags.end()) order.push_back(fixed);
  uint16_t ib = 0;
  auto place = [&](uint32_t t) {
    const uint8_t cb = cell_size(t);
    s.columns.push_back({t, ib, cb, 0});
    ib = static_cast<uint16_t>(ib + cb);
  };
  for (uint32_t t : order) place(t);
  for (uint8_t size : {8, 4, 2, 1}) {
    for (uint32_t t : tags)
      if (cell_size(t) == size && t != kRowId && t != kRowVersion) place(t);
    if (size == 4) s.end_4b = ib;
    if (size == 2) s.end_2b = ib;
  }
  s.end_1b = ib;
  // Existence bits in the same order as the cells.
  for (size_t i = 0; i < s.columns.size(); ++i) s.columns[i].ibit = static_cast<uint8_t>(i);
  s.end_bm = static_cast<uint16_t>(s.end_1b + (s.columns.size() + 7) / 8);
  std::sort(s.columns.begin(), s.columns.end(),
            [](const Column& a, const Column& b) { return a.tag < b.tag; });
  return s;
}

Result<std::vector<std::string>> BuildTableContext(const TableSchema& schema,
                                                   const std::vector<RowValues>& rows,
                                                   NodeBuilder& node) {
  HeapBuilder heap(kClientSigTc);
  const size_t cols = schema.columns.size();
  const size_t tcinfo_size = 22 + 8 * cols;
  if (tcinfo_size > kMaxHeapAlloc)
    return Status::InvalidArgument("PST writer: too many table columns");
  // The row index header first (HID 0x20), TCINFO second (0x40), as Outlook does.
  MBX_ASSIGN_OR_RETURN(uint32_t index_hid, heap.Allocate(std::string(8, '\0')));
  MBX_ASSIGN_OR_RETURN(uint32_t tcinfo_hid, heap.Allocate(std::string(tcinfo_size, '\0')));

  const size_t row_size = schema.row_size();
  std::string matrix;
  matrix.reserve(rows.size() * row_size);
  std::vector<std::pair<uint32_t, uint32_t>> index;
  for (size_t r = 0; r < rows.size(); ++r) {
    const RowValues& row = rows[r];
    std::string cells(row_size, '\0');
    auto* p = reinterpret_cast<uint8_t*>(cells.data());
    for (const auto& c : schema.columns) {
      std::string_view value;
      std::string row_id;
      if (c.tag == 0x67F20003u) {
        row_id.resize(4);
        Put32(reinterpret_cast<uint8_t*>(row_id.data()), row.row_id);
        value = row_id;
      } else {
        auto it = row.cells.find(c.tag);
        if (it == row.cells.end()) continue;
        value = it->second;
      }
      const uint16_t type = static_cast<uint16_t>(c.tag & 0xFFFF);
      const size_t fixed = FixedSizeOf(type);
      if (fixed != 0 && fixed <= 8) {
        std::memcpy(p + c.ib, value.data(), std::min<size_t>(c.cb, value.size()));
      } else {
        MBX_ASSIGN_OR_RETURN(uint32_t hnid, StoreValue(value, heap, node));
        Put32(p + c.ib, hnid);
      }
      p[schema.end_1b + c.ibit / 8] |= static_cast<uint8_t>(0x80 >> (c.ibit % 8));
    }
    index.emplace_back(row.row_id, static_cast<uint32_t>(r));
    matrix += cells;
  }

  uint32_t rows_hnid = 0;
  if (!matrix.empty()) {
    if (matrix.size() <= kMaxHeapAlloc) {
      MBX_ASSIGN_OR_RETURN(rows_hnid, heap.Allocate(matrix));
    } else {
      // Rows never straddle a block ([MS-PST] 2.3.4.4); each block is padded.
      const size_t per_block = kMaxBlockPayload / row_size;
      std::vector<std::string> blocks;
      for (size_t off = 0; off < matrix.size(); off += per_block * row_size) {
        blocks.push_back(matrix.substr(off, per_block * row_size));
        // Every block but the last is padded to the full 8,176 bytes: readers
        // locate row i at (i / per_block) * 8176 + (i % per_block) * row_size.
        if (off + per_block * row_size < matrix.size())
          blocks.back().resize(kMaxBlockPayload, '\0');
      }
      MBX_ASSIGN_OR_RETURN(rows_hnid, node.AddRowsSubnode(blocks));
    }
  }

  std::sort(index.begin(), index.end());
  for (size_t i = 1; i < index.size(); ++i)
    if (index[i].first == index[i - 1].first)
      return Status::InvalidArgument("PST writer: duplicate table row id " +
                                     std::to_string(index[i].first));
  std::vector<std::string> records;
  records.reserve(index.size());
  for (const auto& [id, at] : index) {
    std::string rec;
    ByteWriter w(rec);
    w.U32(id);
    w.U32(at);
    records.push_back(std::move(rec));
  }
  MBX_RETURN_IF_ERROR(BuildBth(heap, 4, 4, records, index_hid).status());

  std::string info;
  ByteWriter w(info);
  w.U8(kClientSigTc);
  w.U8(static_cast<uint8_t>(cols));
  w.U16(schema.end_4b);
  w.U16(schema.end_2b);
  w.U16(schema.end_1b);
  w.U16(schema.end_bm);
  w.U32(index_hid);
  w.U32(rows_hnid);
  w.U32(0);  // hidIndex: deprecated
  std::vector<Column> sorted = schema.columns;
  std::sort(sorted.begin(), sorted.end(),
            [](const Column& a, const Column& b) { return a.tag < b.tag; });
  for (const auto& c : sorted) {
    w.U32(c.tag);
    w.U16(c.ib);
    w.U8(c.cb);
    w.U8(c.ibit);
  }
  MBX_RETURN_IF_ERROR(heap.Rewrite(tcinfo_hid, info));
  heap.set_user_root(tcinfo_hid);
  return heap.Finish();
}

}  // namespace mbx::pst::ltp
