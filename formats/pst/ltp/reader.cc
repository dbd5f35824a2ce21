#include "formats/pst/ltp/reader.h"

#include <algorithm>
#include <cstdio>
#include <set>

namespace mbx::pst::ltp {
namespace {

using disk::Get16;
using disk::Get32;

constexpr size_t kHnHdrSize = 12;
constexpr size_t kHnPageHdrSize = 2;
constexpr size_t kHnBitmapHdrSize = 66;
constexpr size_t kTcInfoSize = 22;
constexpr size_t kTcColDescSize = 8;
constexpr uint16_t kMultiValueFlag = 0x1000;

const uint8_t* U8(std::string_view s) { return reinterpret_cast<const uint8_t*>(s.data()); }

using disk::Hex;

// Little-endian keys compare from their most significant byte.
int CompareKeys(std::string_view a, std::string_view b) {
  for (size_t i = a.size(); i-- > 0;) {
    const auto x = static_cast<uint8_t>(a[i]), y = static_cast<uint8_t>(b[i]);
    if (x != y) return x < y ? -1 : 1;
  }
  return 0;
}

std::string KeyHex(std::string_view key) {
  uint64_t v = 0;
  for (size_t i = std::min<size_t>(key.size(), 8); i-- > 0;) {
    v = (v << 8) | static_cast<uint8_t>(key[i]);
  }
  return Hex(v);
}

// PS_MAPI and PS_PUBLIC_STRINGS ([MS-OXPROPS] 1.3.2), as stored (little-endian fields).
constexpr std::array<uint8_t, 16> kPsMapi = {0x28, 0x03, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00,
                                             0xC0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x46};
constexpr std::array<uint8_t, 16> kPsPublicStrings = {
    0x29, 0x03, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0xC0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x46};

}  // namespace

const char* StorageName(Storage where) {
  switch (where) {
    case Storage::kInline:
      return "inline";
    case Storage::kHeap:
      return "heap";
    case Storage::kSubnode:
      return "subnode";
    case Storage::kEmpty:
      return "empty";
  }
  return "?";
}

// ---- Heap ----

Result<Heap> Heap::Open(ndb::NodeData data) {
  Heap h;
  if (data.blocks.empty()) return Status::Corruption("heap: the node has no data");
  for (size_t i = 0; i < data.blocks.size(); ++i) {
    const std::string& b = data.blocks[i].data;
    const std::string where =
        "heap block " + std::to_string(i) + " (bid " + Hex(data.blocks[i].bid) + ")";
    Block blk;
    blk.header_size = i == 0 ? kHnHdrSize : (i % 128 == 8 ? kHnBitmapHdrSize : kHnPageHdrSize);
    if (b.size() < blk.header_size + 4) {
      return Status::Corruption(where + ": " + std::to_string(b.size()) +
                                " bytes cannot hold its header and page map");
    }
    const uint8_t* p = U8(b);
    if (i == 0) {
      if (p[2] != disk::kHeapSig) {
        char msg[80];
        std::snprintf(msg, sizeof msg, "heap signature 0x%02x (expected 0xEC)", p[2]);
        return Status::Corruption(msg);
      }
      h.client_sig_ = p[3];
      h.user_root_ = Get32(p + 4);
    }
    blk.ib_hnpm = Get16(p);
    if (blk.ib_hnpm < blk.header_size || size_t{blk.ib_hnpm} + 4 > b.size()) {
      return Status::Corruption(where + ": ibHnpm " + std::to_string(blk.ib_hnpm) +
                                " outside the block (" + std::to_string(b.size()) + " bytes)");
    }
    blk.c_alloc = Get16(p + blk.ib_hnpm);
    blk.c_free = Get16(p + blk.ib_hnpm + 2);
    if (size_t{blk.ib_hnpm} + 4 + 2 * (size_t{blk.c_alloc} + 1) > b.size()) {
      return Status::Corruption(where + ": page map with cAlloc " + std::to_string(blk.c_alloc) +
                                " runs past the block");
    }
    for (size_t k = 0; k <= blk.c_alloc; ++k) {
      blk.offsets.push_back(Get16(p + blk.ib_hnpm + 4 + 2 * k));
    }
    if (blk.offsets[0] < blk.header_size) {
      return Status::Corruption(where + ": first allocation at " + std::to_string(blk.offsets[0]) +
                                " overlaps the block header");
    }
    for (size_t k = 1; k < blk.offsets.size(); ++k) {
      if (blk.offsets[k] < blk.offsets[k - 1]) {
        return Status::Corruption(where + ": page map offsets decrease at allocation " +
                                  std::to_string(k));
      }
    }
    if (blk.offsets.back() > blk.ib_hnpm) {
      return Status::Corruption(where + ": allocations end at " +
                                std::to_string(blk.offsets.back()) + ", past the page map at " +
                                std::to_string(blk.ib_hnpm));
    }
    h.blocks_.push_back(std::move(blk));
  }
  h.data_ = std::move(data);
  return h;
}

uint8_t Heap::RecordedFillLevel(size_t block) const {
  const std::string* hdr = nullptr;
  size_t base = 0, index = block;
  if (block < 8) {
    hdr = &data_.blocks[0].data;
    base = 8;  // HNHDR.rgbFillLevel
  } else {
    const size_t owner = 8 + (block - 8) / 128 * 128;
    if (owner >= data_.blocks.size()) return 0;
    hdr = &data_.blocks[owner].data;
    base = 2;  // HNBITMAPHDR.rgbFillLevel
    index = block - owner;
  }
  const auto byte = static_cast<uint8_t>((*hdr)[base + index / 2]);
  return index % 2 == 0 ? (byte & 0x0F) : (byte >> 4);
}

size_t Heap::FreeBytes(size_t block) const {
  // A heap block can grow to the largest block payload; Outlook writes compact
  // blocks and records the room left to that size (fill level 0 on small heaps).
  const Block& b = blocks_[block];
  const size_t size = data_.blocks[block].data.size();
  const size_t gap = b.ib_hnpm - b.offsets.back();
  return size >= disk::kMaxBlockPayload ? gap : disk::kMaxBlockPayload - size + gap;
}

Result<std::string_view> Heap::Get(uint32_t hid) const {
  if (HidType(hid) != 0) return Status::Corruption("HID " + Hex(hid) + " has NID type bits set");
  const uint32_t index = HidIndex(hid), block = HidBlock(hid);
  if (index == 0) return Status::Corruption("HID " + Hex(hid) + " has index 0");
  if (block >= blocks_.size()) {
    return Status::Corruption("HID " + Hex(hid) + " names heap block " + std::to_string(block) +
                              " of " + std::to_string(blocks_.size()));
  }
  const Block& b = blocks_[block];
  if (index > b.c_alloc) {
    return Status::Corruption("HID " + Hex(hid) + " names allocation " + std::to_string(index) +
                              " of block " + std::to_string(block) + ", which has " +
                              std::to_string(b.c_alloc));
  }
  const std::string& d = data_.blocks[block].data;
  return std::string_view(d).substr(b.offsets[index - 1], b.offsets[index] - b.offsets[index - 1]);
}

// ---- BTH ----

Result<Bth> Bth::Open(const Heap& heap, uint32_t hid_header) {
  MBX_ASSIGN_OR_RETURN(std::string_view h, heap.Get(hid_header));
  if (h.size() != 8) {
    return Status::Corruption("BTH header " + Hex(hid_header) + " is " + std::to_string(h.size()) +
                              " bytes, not 8");
  }
  const uint8_t* p = U8(h);
  if (p[0] != disk::kClientSigBth) {
    char msg[80];
    std::snprintf(msg, sizeof msg, "BTH header bType 0x%02x (expected 0xB5)", p[0]);
    return Status::Corruption(msg);
  }
  Bth b;
  b.heap_ = &heap;
  b.key_size_ = p[1];
  b.data_size_ = p[2];
  b.levels_ = p[3];
  b.root_ = Get32(p + 4);
  if (b.key_size_ != 2 && b.key_size_ != 4 && b.key_size_ != 8 && b.key_size_ != 16) {
    return Status::Corruption("BTH cbKey " + std::to_string(b.key_size_) +
                              " (must be 2, 4, 8 or 16)");
  }
  if (b.data_size_ == 0 || b.data_size_ > 32) {
    return Status::Corruption("BTH cbEnt " + std::to_string(b.data_size_) + " (must be 1..32)");
  }
  return b;
}

Result<std::vector<Bth::Record>> Bth::Records() const {
  std::vector<Record> out;
  if (root_ == 0) {
    if (levels_ != 0) {
      return Status::Corruption("BTH has no root but " + std::to_string(levels_) + " index levels");
    }
    return out;
  }
  std::set<uint32_t> visited;
  std::string_view last_leaf_key;
  // Recursion depth is bounded by bIdxLevels, which decreases at each step.
  auto visit = [&](auto& self, uint32_t hid, int level, std::string_view want_first) -> Status {
    if (!visited.insert(hid).second) {
      return Status::Corruption("BTH node " + Hex(hid) + " reached twice");
    }
    MBX_ASSIGN_OR_RETURN(std::string_view node, heap_->Get(hid));
    const size_t rec = key_size_ + (level > 0 ? 4 : data_size_);
    if (node.empty() || node.size() % rec != 0) {
      return Status::Corruption("BTH " + std::string(level > 0 ? "index" : "leaf") + " node " +
                                Hex(hid) + " is " + std::to_string(node.size()) +
                                " bytes, not a multiple of " + std::to_string(rec));
    }
    std::string_view prev;
    for (size_t off = 0; off < node.size(); off += rec) {
      const std::string_view key = node.substr(off, key_size_);
      if (off == 0 && !want_first.empty() && CompareKeys(key, want_first) != 0) {
        return Status::Corruption("BTH index key " + KeyHex(want_first) +
                                  " differs from the first key " + KeyHex(key) + " of its child " +
                                  Hex(hid));
      }
      if (!prev.empty() && CompareKeys(prev, key) >= 0) {
        return Status::Corruption("BTH keys not strictly increasing in node " + Hex(hid) + ": " +
                                  KeyHex(prev) + " then " + KeyHex(key));
      }
      prev = key;
      if (level > 0) {
        MBX_RETURN_IF_ERROR(self(self, Get32(U8(node) + off + key_size_), level - 1, key));
      } else {
        if (!last_leaf_key.empty() && CompareKeys(last_leaf_key, key) >= 0) {
          return Status::Corruption("BTH keys not strictly increasing across leaves: " +
                                    KeyHex(last_leaf_key) + " then " + KeyHex(key));
        }
        last_leaf_key = key;
        out.push_back({key, node.substr(off + key_size_, data_size_)});
      }
    }
    return Status::Ok();
  };
  MBX_RETURN_IF_ERROR(visit(visit, root_, levels_, {}));
  return out;
}

// ---- HNID, PC ----

const ndb::SubnodeEntry* NodeContext::FindSubnode(uint64_t nid) const {
  auto it = std::lower_bound(subnodes.begin(), subnodes.end(), nid,
                             [](const ndb::SubnodeEntry& e, uint64_t n) { return e.nid < n; });
  return it != subnodes.end() && it->nid == nid ? &*it : nullptr;
}

Result<std::string> ResolveHnid(const Heap& heap, const NodeContext& ctx, uint32_t hnid,
                                Storage* where) {
  if (hnid == 0) {
    *where = Storage::kEmpty;
    return std::string();
  }
  if (HnidIsHid(hnid)) {
    *where = Storage::kHeap;
    MBX_ASSIGN_OR_RETURN(std::string_view v, heap.Get(hnid));
    return std::string(v);
  }
  *where = Storage::kSubnode;
  const ndb::SubnodeEntry* sub = ctx.FindSubnode(hnid);
  if (sub == nullptr) {
    return Status::Corruption("HNID " + Hex(hnid) + " names a subnode the node does not have");
  }
  if (ctx.ndb == nullptr) {
    return Status::Corruption("HNID " + Hex(hnid) + ": no reader to resolve subnodes");
  }
  return ctx.ndb->ReadDataContiguous(sub->bid_data);
}

Result<std::vector<Property>> ReadPropertyContext(const Heap& heap, const NodeContext& ctx) {
  if (heap.client_sig() != disk::kClientSigPc) {
    char msg[80];
    std::snprintf(msg, sizeof msg, "heap client signature 0x%02x is not a PC (0xBC)",
                  heap.client_sig());
    return Status::Corruption(msg);
  }
  MBX_ASSIGN_OR_RETURN(Bth bth, Bth::Open(heap, heap.user_root()));
  if (bth.key_size() != 2 || bth.data_size() != 6) {
    return Status::Corruption("PC BTH has cbKey " + std::to_string(bth.key_size()) + " cbEnt " +
                              std::to_string(bth.data_size()) + " (expected 2 and 6)");
  }
  MBX_ASSIGN_OR_RETURN(auto records, bth.Records());
  std::vector<Property> out;
  out.reserve(records.size());
  for (const auto& r : records) {
    Property p;
    p.id = Get16(U8(r.key));
    p.type = Get16(U8(r.data));
    const size_t fixed = disk::FixedSizeOf(p.type);
    if (fixed > 0 && fixed <= 4) {
      p.where = Storage::kInline;
      p.value = std::string(r.data.substr(2, fixed));
    } else {
      p.hnid = Get32(U8(r.data) + 2);
      auto v = ResolveHnid(heap, ctx, p.hnid, &p.where);
      if (!v.ok()) return v.status().WithContext("property " + Hex(p.tag()));
      p.value = std::move(v).value();
    }
    out.push_back(std::move(p));
  }
  return out;
}

const Property* FindProperty(const std::vector<Property>& props, uint16_t id) {
  auto it = std::lower_bound(props.begin(), props.end(), id,
                             [](const Property& p, uint16_t i) { return p.id < i; });
  return it != props.end() && it->id == id ? &*it : nullptr;
}

// ---- TC ----

namespace {

// The cell size a column of this type must have in a row.
size_t CellSizeFor(uint16_t type) {
  const size_t fixed = disk::FixedSizeOf(type);
  return fixed > 0 && fixed <= 8 ? fixed : 4;
}

}  // namespace

std::vector<std::string> ValidateTableInfo(const TableInfo& info) {
  std::vector<std::string> out;
  const auto& g = info.rgib;
  if (!(g[0] <= g[1] && g[1] <= g[2] && g[2] <= g[3])) {
    out.push_back("TCINFO rgib end offsets not increasing: " + std::to_string(g[0]) + ", " +
                  std::to_string(g[1]) + ", " + std::to_string(g[2]) + ", " + std::to_string(g[3]));
  }
  const size_t ceb = (info.c_cols + 7) / 8;
  if (g[3] < g[2] || size_t{g[3]} - g[2] != ceb) {
    out.push_back("cell existence bitmap is " + std::to_string(int{g[3]} - int{g[2]}) + " bytes; " +
                  std::to_string(info.c_cols) + " columns need " + std::to_string(ceb));
  }
  std::set<uint8_t> bits;
  for (size_t i = 0; i < info.columns.size(); ++i) {
    const Column& c = info.columns[i];
    const std::string name = "column " + Hex(c.tag);
    if (i > 0 && info.columns[i - 1].tag >= c.tag) {
      out.push_back(name + " is not in increasing tag order after " + Hex(info.columns[i - 1].tag));
    }
    const size_t want = CellSizeFor(c.type());
    if (c.cb != want) {
      out.push_back(name + " (" + disk::PropertyTypeName(c.type()) + ") has cbData " +
                    std::to_string(c.cb) + ", expected " + std::to_string(want));
    }
    // The group a cell of cb bytes belongs to ([MS-PST] 2.3.4.2).
    size_t lo = 0, hi = g[0];
    if (c.cb == 2) {
      lo = g[0];
      hi = g[1];
    } else if (c.cb == 1) {
      lo = g[1];
      hi = g[2];
    }
    if (c.ib < lo || size_t{c.ib} + c.cb > hi) {
      out.push_back(name + " at ib " + std::to_string(c.ib) + " cb " + std::to_string(c.cb) +
                    " lies outside its size group [" + std::to_string(lo) + ", " +
                    std::to_string(hi) + ")");
    }
    if (c.ibit >= info.c_cols) {
      out.push_back(name + " iBit " + std::to_string(c.ibit) + " >= cCols " +
                    std::to_string(info.c_cols));
    }
    if (!bits.insert(c.ibit).second) out.push_back(name + " shares iBit " + std::to_string(c.ibit));
    if (c.tag == 0x67F20003 && (c.ib != 0 || c.ibit != 0)) {
      out.push_back("row id column 0x67f20003 must be at ib 0, iBit 0");
    }
    if (c.tag == 0x67F30003 && (c.ib != 4 || c.ibit != 1)) {
      out.push_back("row version column 0x67f30003 must be at ib 4, iBit 1");
    }
  }
  for (size_t i = 0; i < info.columns.size(); ++i) {
    for (size_t k = i + 1; k < info.columns.size(); ++k) {
      const Column& a = info.columns[i];
      const Column& b = info.columns[k];
      if (a.ib < b.ib + b.cb && b.ib < a.ib + a.cb) {
        out.push_back("columns " + Hex(a.tag) + " and " + Hex(b.tag) + " overlap in the row");
      }
    }
  }
  return out;
}

Result<std::vector<uint32_t>> ReadTableRowIds(const Heap& heap) {
  if (heap.client_sig() != disk::kClientSigTc) return Status::Corruption("not a TC heap");
  MBX_ASSIGN_OR_RETURN(std::string_view ti, heap.Get(heap.user_root()));
  if (ti.size() < kTcInfoSize || U8(ti)[0] != disk::kClientSigTc)
    return Status::Corruption("TCINFO missing or without bType 0x7C");
  const uint32_t hid_row_index = Get32(U8(ti) + 10);
  std::vector<std::pair<uint32_t, uint32_t>> index;  // position, row id
  if (hid_row_index != 0) {
    MBX_ASSIGN_OR_RETURN(Bth bth, Bth::Open(heap, hid_row_index));
    if (bth.key_size() != 4 || bth.data_size() != 4)
      return Status::Corruption("row index BTH is not 4 + 4 bytes a record");
    MBX_ASSIGN_OR_RETURN(auto records, bth.Records());
    index.reserve(records.size());
    for (const auto& r : records) index.emplace_back(Get32(U8(r.data)), Get32(U8(r.key)));
  }
  std::sort(index.begin(), index.end());
  std::vector<uint32_t> ids;
  ids.reserve(index.size());
  for (const auto& [at, id] : index) ids.push_back(id);
  return ids;
}

Result<Table> ReadTableContext(const Heap& heap, const NodeContext& ctx) {
  if (heap.client_sig() != disk::kClientSigTc) {
    char msg[80];
    std::snprintf(msg, sizeof msg, "heap client signature 0x%02x is not a TC (0x7C)",
                  heap.client_sig());
    return Status::Corruption(msg);
  }
  MBX_ASSIGN_OR_RETURN(std::string_view ti, heap.Get(heap.user_root()));
  if (ti.size() < kTcInfoSize || U8(ti)[0] != disk::kClientSigTc) {
    return Status::Corruption("TCINFO missing or without bType 0x7C");
  }
  Table t;
  const uint8_t* p = U8(ti);
  t.info.c_cols = p[1];
  for (size_t i = 0; i < 4; ++i) t.info.rgib[i] = Get16(p + 2 + 2 * i);
  t.info.hid_row_index = Get32(p + 10);
  t.info.hnid_rows = Get32(p + 14);
  t.info.hid_index = Get32(p + 18);
  if (ti.size() < kTcInfoSize + kTcColDescSize * size_t{t.info.c_cols}) {
    return Status::Corruption("TCINFO of " + std::to_string(ti.size()) + " bytes cannot hold " +
                              std::to_string(t.info.c_cols) + " column descriptors");
  }
  for (size_t i = 0; i < t.info.c_cols; ++i) {
    const uint8_t* c = p + kTcInfoSize + kTcColDescSize * i;
    t.info.columns.push_back({Get32(c), Get16(c + 4), c[6], c[7]});
  }
  const size_t row_size = t.info.row_size();
  for (const Column& c : t.info.columns) {
    if (size_t{c.ib} + c.cb > row_size) {
      return Status::Corruption("column " + Hex(c.tag) + " ends past the " +
                                std::to_string(row_size) + "-byte row");
    }
  }
  if (t.info.rgib[2] > row_size) {
    return Status::Corruption("cell existence bitmap starts past the row");
  }

  // Row index: row id -> row position in the matrix.
  std::vector<std::pair<uint32_t, uint32_t>> index;
  if (t.info.hid_row_index != 0) {
    MBX_ASSIGN_OR_RETURN(Bth bth, Bth::Open(heap, t.info.hid_row_index));
    if (bth.key_size() != 4 || bth.data_size() != 4) {
      return Status::Corruption("row index BTH has cbKey " + std::to_string(bth.key_size()) +
                                " cbEnt " + std::to_string(bth.data_size()) +
                                " (expected 4 and 4)");
    }
    MBX_ASSIGN_OR_RETURN(auto records, bth.Records());
    for (const auto& r : records) index.emplace_back(Get32(U8(r.key)), Get32(U8(r.data)));
  }

  // Row matrix: one heap allocation, or a subnode whose blocks each hold whole rows.
  std::vector<std::string> blocks;
  if (t.info.hnid_rows != 0) {
    if (HnidIsHid(t.info.hnid_rows)) {
      t.rows_where = Storage::kHeap;
      MBX_ASSIGN_OR_RETURN(std::string_view v, heap.Get(t.info.hnid_rows));
      blocks.emplace_back(v);
    } else {
      t.rows_where = Storage::kSubnode;
      const ndb::SubnodeEntry* sub = ctx.FindSubnode(t.info.hnid_rows);
      if (sub == nullptr) {
        return Status::Corruption("row matrix subnode " + Hex(t.info.hnid_rows) + " is missing");
      }
      if (ctx.ndb == nullptr) return Status::Corruption("row matrix in a subnode: no reader");
      MBX_ASSIGN_OR_RETURN(ndb::NodeData d, ctx.ndb->ReadData(sub->bid_data));
      for (auto& b : d.blocks) blocks.push_back(std::move(b.data));
    }
  }
  if (!index.empty() && row_size == 0) return Status::Corruption("table has rows of size 0");
  // Rows never straddle blocks: each block holds as many as its largest payload fits.
  const size_t max_payload =
      ctx.ndb != nullptr ? ctx.ndb->max_block_payload() : disk::kMaxBlockPayload;
  const size_t per_block =
      t.rows_where == Storage::kSubnode ? max_payload / std::max<size_t>(row_size, 1) : SIZE_MAX;
  size_t capacity = 0;
  for (const auto& b : blocks) {
    if (row_size > 0) capacity += std::min(per_block, b.size() / row_size);
  }
  t.matrix_rows = capacity;
  auto locate = [&](uint32_t r) -> std::string_view {
    if (row_size == 0) return {};
    const size_t bi = t.rows_where == Storage::kSubnode ? r / per_block : 0;
    const size_t off = (t.rows_where == Storage::kSubnode ? r % per_block : r) * row_size;
    if (bi >= blocks.size() || off + row_size > blocks[bi].size()) return {};
    return std::string_view(blocks[bi]).substr(off, row_size);
  };
  std::set<uint32_t> used;
  const size_t ceb_at = t.info.rgib[2];
  for (const auto& [row_id, row_index] : index) {
    const std::string_view row = locate(row_index);
    if (row.empty()) {
      return Status::Corruption("row id " + Hex(row_id) + " points at row " +
                                std::to_string(row_index) + ", outside the row matrix (" +
                                std::to_string(capacity) + " rows)");
    }
    if (!used.insert(row_index).second) {
      return Status::Corruption("row " + std::to_string(row_index) + " is indexed twice");
    }
    Row out;
    out.row_id = row_id;
    out.row_index = row_index;
    for (const Column& c : t.info.columns) {
      Cell cell;
      const size_t byte = ceb_at + c.ibit / 8;
      cell.present = byte < row.size() && (U8(row)[byte] & (0x80 >> (c.ibit % 8))) != 0;
      if (cell.present) {
        const size_t fixed = disk::FixedSizeOf(c.type());
        if (fixed > 0 && fixed <= 8 && c.cb == fixed) {
          cell.where = Storage::kInline;
          cell.value = std::string(row.substr(c.ib, c.cb));
        } else if (c.cb == 4) {
          auto v = ResolveHnid(heap, ctx, Get32(U8(row) + c.ib), &cell.where);
          if (!v.ok()) {
            return v.status().WithContext("row id " + Hex(row_id) + " column " + Hex(c.tag));
          }
          cell.value = std::move(v).value();
        } else {
          return Status::Corruption("column " + Hex(c.tag) + ": cbData " + std::to_string(c.cb) +
                                    " cannot hold a " + disk::PropertyTypeName(c.type()));
        }
      }
      out.cells.push_back(std::move(cell));
    }
    t.rows.push_back(std::move(out));
  }
  return t;
}

// ---- Values ----

Result<std::vector<std::string>> DecodeMultiValue(uint16_t type, std::string_view raw) {
  if ((type & kMultiValueFlag) == 0) {
    return Status::InvalidArgument("type " + Hex(type) + " is not multi-valued");
  }
  const uint16_t base = type & ~kMultiValueFlag;
  std::vector<std::string> out;
  if (const size_t fixed = disk::FixedSizeOf(base); fixed > 0) {
    if (raw.size() % fixed != 0) {
      return Status::Corruption(std::to_string(raw.size()) + " bytes is not a whole number of " +
                                std::to_string(fixed) + "-byte values");
    }
    for (size_t off = 0; off < raw.size(); off += fixed) out.emplace_back(raw.substr(off, fixed));
    return out;
  }
  if (base != disk::kPtypString && base != disk::kPtypString8 && base != disk::kPtypBinary) {
    return Status::Corruption("multi-valued type " + Hex(type) + " is not one a PST stores");
  }
  if (raw.empty()) return out;
  if (raw.size() < 4) {
    return Status::Corruption("multi-value of " + std::to_string(raw.size()) +
                              " bytes has no count");
  }
  const size_t count = Get32(U8(raw));
  if (count > (raw.size() - 4) / 4) {
    return Status::Corruption("multi-value count " + std::to_string(count) + " exceeds its " +
                              std::to_string(raw.size()) + " bytes");
  }
  std::vector<size_t> offs;
  for (size_t i = 0; i < count; ++i) offs.push_back(Get32(U8(raw) + 4 + 4 * i));
  offs.push_back(raw.size());
  for (size_t i = 0; i < count; ++i) {
    if (offs[i] < 4 + 4 * count || offs[i] > offs[i + 1]) {
      return Status::Corruption("multi-value offset " + std::to_string(i) + " (" +
                                std::to_string(offs[i]) + ") out of order or inside the header");
    }
    out.emplace_back(raw.substr(offs[i], offs[i + 1] - offs[i]));
  }
  return out;
}

Status ValidateValue(uint16_t type, std::string_view raw) {
  if ((type & kMultiValueFlag) != 0) {
    MBX_ASSIGN_OR_RETURN(auto values, DecodeMultiValue(type, raw));
    if ((type & ~kMultiValueFlag) == disk::kPtypString) {
      for (const auto& v : values) {
        if (v.size() % 2 != 0) return Status::Corruption("a UTF-16 element has an odd byte count");
      }
    }
    return Status::Ok();
  }
  if (const size_t fixed = disk::FixedSizeOf(type); fixed > 0 && raw.size() != fixed) {
    return Status::Corruption(std::string(disk::PropertyTypeName(type)) + " value of " +
                              std::to_string(raw.size()) + " bytes (expected " +
                              std::to_string(fixed) + ")");
  }
  if (type == disk::kPtypString && raw.size() % 2 != 0) {
    return Status::Corruption("UTF-16 string of odd length " + std::to_string(raw.size()));
  }
  return Status::Ok();
}

// ---- Name-to-id map ----

Result<std::vector<NamedProperty>> DecodeNameToIdMap(const std::vector<Property>& props) {
  const Property* guids = FindProperty(props, 0x0002);
  const Property* entries = FindProperty(props, 0x0003);
  const Property* strings = FindProperty(props, 0x0004);
  if (guids == nullptr || entries == nullptr || strings == nullptr) {
    return Status::Corruption(
        "name-to-id map lacks its GUID (0x0002), entry (0x0003) or string (0x0004) stream");
  }
  if (guids->value.size() % 16 != 0) {
    return Status::Corruption("GUID stream is not a whole number of GUIDs");
  }
  if (entries->value.size() % 8 != 0) {
    return Status::Corruption("entry stream is not a whole number of 8-byte entries");
  }
  std::vector<NamedProperty> out;
  const std::string_view s = strings->value;
  for (size_t off = 0; off < entries->value.size(); off += 8) {
    const uint8_t* e = U8(entries->value) + off;
    NamedProperty np;
    const uint32_t prop = Get32(e);
    const uint16_t guid_n = Get16(e + 4);
    np.id = static_cast<uint16_t>(0x8000 + Get16(e + 6));
    np.is_string = (guid_n & 1) != 0;
    const size_t gi = guid_n >> 1;
    if (gi == 1) {
      np.guid = kPsMapi;
    } else if (gi == 2) {
      np.guid = kPsPublicStrings;
    } else if (gi >= 3) {
      if ((gi - 3) * 16 + 16 > guids->value.size()) {
        return Status::Corruption("entry " + std::to_string(off / 8) + " names GUID " +
                                  std::to_string(gi) + " beyond the GUID stream");
      }
      std::copy_n(U8(guids->value) + (gi - 3) * 16, 16, np.guid.begin());
    }
    if (np.is_string) {
      if (size_t{prop} + 4 > s.size()) {
        return Status::Corruption("entry " + std::to_string(off / 8) + " names string offset " +
                                  std::to_string(prop) + " beyond the string stream");
      }
      const size_t len = Get32(U8(s) + prop);
      if (len > s.size() - prop - 4) {
        return Status::Corruption("string at offset " + std::to_string(prop) +
                                  " runs past the stream");
      }
      np.name = disk::Utf16leToUtf8(s.substr(prop + 4, len));
    } else {
      np.lid = prop;
    }
    out.push_back(std::move(np));
  }
  return out;
}

}  // namespace mbx::pst::ltp
