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

size_t HeapBuilder::HeaderSize(size_t block_index) {
  if (block_index == 0) return 12;        // HNHDR
  if (block_index % 128 == 8) return 66;  // HNBITMAPHDR
  return 2;                               // HNPAGEHDR
}

// Header, allocations (padded to even), then the page map: cAlloc, cFree and
// one start offset per allocation plus the end.
size_t HeapBuilder::StoredSize(size_t i) const {
  size_t data_end = HeaderSize(i) + blocks_[i].data.size();
  data_end += data_end & 1;
  return data_end + 4 + 2 * (blocks_[i].ends.size() + 1);
}

Result<uint32_t> HeapBuilder::Allocate(std::string_view bytes) {
  if (bytes.empty() || bytes.size() > kMaxHeapAlloc)
    return Status::InvalidArgument("PST writer: heap allocation of " +
                                   std::to_string(bytes.size()) + " bytes");
  auto fits = [&](const Block& b, size_t index) {
    const size_t n = b.ends.size() + 1;
    const size_t data_end = HeaderSize(index) + b.data.size() + bytes.size();
    const size_t map = 4 + 2 * (n + 1);
    return n <= kMaxAllocsPerBlock && data_end + (data_end & 1) + map <= kMaxBlockPayload;
  };
  if (blocks_.empty() || !fits(blocks_.back(), blocks_.size() - 1)) {
    if (blocks_.size() == 0xFFFF) return Status::Unsupported("PST writer: heap over 65,535 blocks");
    if (!blocks_.empty()) MBX_RETURN_IF_ERROR(Close(blocks_.size() - 1));
    blocks_.emplace_back();
  }
  Block& b = blocks_.back();
  b.data.append(bytes);
  b.ends.push_back(static_cast<uint16_t>(b.data.size()));
  return MakeHid(blocks_.size() - 1, b.ends.size());
}

Status HeapBuilder::Rewrite(uint32_t hid, std::string_view bytes) {
  const size_t block = hid >> 16;
  const size_t index = (hid >> 5) & 0x7FF;
  if (block >= blocks_.size() || index == 0 || index > blocks_[block].ends.size())
    return Status::InvalidArgument("PST writer: bad heap rewrite");
  Block& b = blocks_[block];
  const size_t start = index == 1 ? 0 : b.ends[index - 2];
  if (b.ends[index - 1] - start != bytes.size() || b.data.size() < b.ends[index - 1])
    return Status::InvalidArgument("PST writer: bad heap rewrite");
  b.data.replace(start, bytes.size(), bytes);
  return Status::Ok();
}

Status HeapBuilder::Close(size_t i) {
  if (fill_.size() <= i) fill_.resize(i + 1, 0);
  fill_[i] = HeapFillLevel(kMaxBlockPayload - StoredSize(i));
  if (stream_ == nullptr || Deferred(i)) return Status::Ok();
  MBX_ASSIGN_OR_RETURN(uint64_t bid, stream_->WriteBlock(Serialize(i)));
  if (bids_.size() <= i) {
    bids_.resize(i + 1, 0);
    sizes_.resize(i + 1, 0);
  }
  bids_[i] = bid;
  sizes_[i] = StoredSize(i);
  // Its content is on disk; keep only what StoredSize needs (never asked again).
  blocks_[i].data = std::string();
  blocks_[i].ends = std::vector<uint16_t>();
  return Status::Ok();
}

std::string HeapBuilder::Serialize(size_t i) const {
  auto nibbles = [&](ByteWriter& w, size_t first, size_t count) {
    for (size_t k = 0; k < count; k += 2) {
      const uint8_t lo = first + k < fill_.size() ? fill_[first + k] : 0;
      const uint8_t hi = first + k + 1 < fill_.size() ? fill_[first + k + 1] : 0;
      w.U8(static_cast<uint8_t>(lo | (hi << 4)));
    }
  };
  const Block& b = blocks_[i];
  std::string s;
  s.reserve(StoredSize(i));
  ByteWriter w(s);
  size_t data_end = HeaderSize(i) + b.data.size();
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
  const size_t base = w.size();
  w.Bytes(b.data);
  if (w.size() & 1) w.U8(0);
  w.U16(static_cast<uint16_t>(b.ends.size()));  // cAlloc
  w.U16(0);                                     // cFree
  w.U16(static_cast<uint16_t>(base));
  for (uint16_t end : b.ends) w.U16(static_cast<uint16_t>(base + end));
  return s;
}

std::vector<std::string> HeapBuilder::Finish() {
  // Every block but the last was closed (its fill level known) when the next
  // began; the fill levels of later blocks live in earlier headers.
  if (!blocks_.empty()) (void)Close(blocks_.size() - 1);  // not streaming: cannot fail
  std::vector<std::string> out;
  out.reserve(blocks_.size());
  for (size_t i = 0; i < blocks_.size(); ++i) out.push_back(Serialize(i));
  return out;
}

Result<uint64_t> HeapBuilder::FinishStream() {
  if (stream_ == nullptr) return Status::InvalidArgument("PST writer: heap is not streamed");
  if (blocks_.empty()) return uint64_t{0};
  // The last block is closed now; deferred ones are written once every fill
  // level they carry is known.
  const size_t last = blocks_.size() - 1;
  MBX_RETURN_IF_ERROR(Close(last));
  bids_.resize(blocks_.size(), 0);
  sizes_.resize(blocks_.size(), 0);
  for (size_t i = 0; i < blocks_.size(); ++i) {
    if (!Deferred(i)) continue;
    MBX_ASSIGN_OR_RETURN(bids_[i], stream_->WriteBlock(Serialize(i)));
    sizes_[i] = StoredSize(i);
  }
  return stream_->WriteTree(bids_, sizes_);
}

// ---- Node ----

Result<uint32_t> NodeBuilder::AddValueSubnode(std::string_view data) {
  MBX_ASSIGN_OR_RETURN(uint64_t bid, ndb_.WriteData(data));
  const uint32_t nid = ndb_.AllocateNid(kNidTypeLtp);
  subnodes_.push_back({nid, bid, 0});
  return nid;
}

Result<uint32_t> NodeBuilder::AddRowsSubnode(const std::vector<uint64_t>& bids,
                                             const std::vector<uint64_t>& sizes) {
  MBX_ASSIGN_OR_RETURN(uint64_t bid, ndb_.WriteTree(bids, sizes));
  const uint32_t nid = ndb_.AllocateNid(kNidTypeLtp);
  subnodes_.push_back({nid, bid, 0});
  return nid;
}

Result<std::pair<uint64_t, uint64_t>> NodeBuilder::Finish(
    const std::vector<std::string>& heap_blocks) {
  MBX_ASSIGN_OR_RETURN(uint64_t data, ndb_.WriteBlocks(heap_blocks));
  return Finish(data);
}

Result<std::pair<uint64_t, uint64_t>> NodeBuilder::Finish(uint64_t bid_data) {
  MBX_ASSIGN_OR_RETURN(uint64_t sub, ndb_.WriteSubnodes(std::move(subnodes_)));
  subnodes_.clear();
  return std::make_pair(bid_data, sub);
}

// ---- BTH ----

Result<uint32_t> BuildBth(HeapBuilder& heap, uint8_t cb_key, uint8_t cb_ent,
                          std::string_view records, uint32_t header_hid) {
  std::string header(8, '\0');
  if (header_hid == 0) {
    MBX_ASSIGN_OR_RETURN(header_hid, heap.Allocate(header));
  }
  uint8_t levels = 0;
  uint32_t root = 0;
  if (!records.empty()) {
    std::string level(records);
    size_t rec = size_t{cb_key} + cb_ent;
    while (true) {
      const size_t chunk = kMaxHeapAlloc / rec * rec;
      std::string up;
      size_t nodes = 0;
      for (size_t from = 0; from < level.size(); from += chunk) {
        MBX_ASSIGN_OR_RETURN(uint32_t hid,
                             heap.Allocate(std::string_view(level).substr(from, chunk)));
        up.append(level, from, cb_key);
        char h[4];
        Put32(reinterpret_cast<uint8_t*>(h), hid);
        up.append(h, 4);
        root = hid;
        ++nodes;
      }
      if (nodes == 1) break;
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
  std::string records;
  records.reserve(props.size() * 8);
  for (const auto& p : props) {
    uint32_t v = 0;
    if (IsInline(p.type)) {
      uint8_t b[4] = {};
      std::memcpy(b, p.value.data(), std::min<size_t>(4, p.value.size()));
      v = Get32(b);
    } else {
      MBX_ASSIGN_OR_RETURN(v, StoreValue(p.value, heap, node));
    }
    ByteWriter w(records);
    w.U16(p.id);
    w.U16(p.type);
    w.U32(v);
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

TableWriter::TableWriter(const TableSchema& schema, NodeBuilder& node)
    : schema_(schema), node_(node), heap_(kClientSigTc, &node.ndb()) {
  const size_t tcinfo_size = 22 + 8 * schema.columns.size();
  if (tcinfo_size > kMaxHeapAlloc || schema.columns.size() > 255) {
    first_error_ = Status::InvalidArgument("PST writer: too many table columns");
    return;
  }
  // The row index header first (HID 0x20), TCINFO second (0x40), as Outlook does.
  auto index = heap_.Allocate(std::string(8, '\0'));
  auto tcinfo = heap_.Allocate(std::string(tcinfo_size, '\0'));
  if (!index.ok() || !tcinfo.ok()) {
    first_error_ = index.ok() ? tcinfo.status() : index.status();
    return;
  }
  index_hid_ = *index;
  tcinfo_hid_ = *tcinfo;
  per_block_ = std::max<size_t>(1, kMaxBlockPayload / schema.row_size());
}

Status TableWriter::Add(const RowValues& row) {
  MBX_RETURN_IF_ERROR(first_error_);
  const size_t row_size = schema_.row_size();
  if (rows_in_block_ == per_block_) {
    // Rows never straddle a block ([MS-PST] 2.3.4.4), and every block but
    // the last is padded to the full 8,176 bytes: readers locate row i at
    // (i / per_block) * 8176 + (i % per_block) * row_size.
    block_.resize(kMaxBlockPayload, '\0');
    MBX_ASSIGN_OR_RETURN(uint64_t bid, node_.ndb().WriteBlock(block_));
    row_bids_.push_back(bid);
    row_sizes_.push_back(block_.size());
    block_.clear();
    rows_in_block_ = 0;
  }
  const size_t at = block_.size();
  block_.resize(at + row_size, '\0');
  for (const auto& c : schema_.columns) {
    std::string_view value;
    char row_id[4];
    if (c.tag == 0x67F20003u) {
      Put32(reinterpret_cast<uint8_t*>(row_id), row.row_id);
      value = std::string_view(row_id, 4);
    } else {
      auto it = row.cells.find(c.tag);
      if (it == row.cells.end()) continue;
      value = it->second;
    }
    auto* p = reinterpret_cast<uint8_t*>(block_.data() + at);
    const uint16_t type = static_cast<uint16_t>(c.tag & 0xFFFF);
    const size_t fixed = FixedSizeOf(type);
    if (fixed != 0 && fixed <= 8) {
      std::memcpy(p + c.ib, value.data(), std::min<size_t>(c.cb, value.size()));
    } else {
      MBX_ASSIGN_OR_RETURN(uint32_t hnid, StoreValue(value, heap_, node_));
      Put32(p + c.ib, hnid);
    }
    p[schema_.end_1b + c.ibit / 8] |= static_cast<uint8_t>(0x80 >> (c.ibit % 8));
  }
  index_.emplace_back(row.row_id, static_cast<uint32_t>(index_.size()));
  ++rows_in_block_;
  return Status::Ok();
}

Result<std::pair<uint64_t, uint64_t>> TableWriter::Finish() {
  MBX_RETURN_IF_ERROR(first_error_);
  uint32_t rows_hnid = 0;
  if (row_bids_.empty() && block_.size() <= kMaxHeapAlloc) {
    if (!block_.empty()) {
      MBX_ASSIGN_OR_RETURN(rows_hnid, heap_.Allocate(block_));
    }
  } else {
    if (!block_.empty()) {
      MBX_ASSIGN_OR_RETURN(uint64_t bid, node_.ndb().WriteBlock(block_));
      row_bids_.push_back(bid);
      row_sizes_.push_back(block_.size());
    }
    MBX_ASSIGN_OR_RETURN(rows_hnid, node_.AddRowsSubnode(row_bids_, row_sizes_));
  }
  block_ = std::string();

  std::sort(index_.begin(), index_.end());
  std::string records;
  records.reserve(index_.size() * 8);
  ByteWriter rw(records);
  for (size_t i = 0; i < index_.size(); ++i) {
    if (i > 0 && index_[i].first == index_[i - 1].first)
      return Status::InvalidArgument("PST writer: duplicate table row id " +
                                     std::to_string(index_[i].first));
    rw.U32(index_[i].first);
    rw.U32(index_[i].second);
  }
  index_ = {};
  MBX_RETURN_IF_ERROR(BuildBth(heap_, 4, 4, records, index_hid_).status());

  std::string info;
  ByteWriter w(info);
  w.U8(kClientSigTc);
  w.U8(static_cast<uint8_t>(schema_.columns.size()));
  w.U16(schema_.end_4b);
  w.U16(schema_.end_2b);
  w.U16(schema_.end_1b);
  w.U16(schema_.end_bm);
  w.U32(index_hid_);
  w.U32(rows_hnid);
  w.U32(0);  // hidIndex: deprecated
  std::vector<Column> sorted = schema_.columns;
  std::sort(sorted.begin(), sorted.end(),
            [](const Column& a, const Column& b) { return a.tag < b.tag; });
  for (const auto& c : sorted) {
    w.U32(c.tag);
    w.U16(c.ib);
    w.U8(c.cb);
    w.U8(c.ibit);
  }
  MBX_RETURN_IF_ERROR(heap_.Rewrite(tcinfo_hid_, info));
  heap_.set_user_root(tcinfo_hid_);
  MBX_ASSIGN_OR_RETURN(uint64_t bid_data, heap_.FinishStream());
  return node_.Finish(bid_data);
}

}  // namespace mbx::pst::ltp
