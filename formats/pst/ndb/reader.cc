#include "formats/pst/ndb/reader.h"

#include <zlib.h>

#include <algorithm>
#include <cstdio>

namespace mbx::pst::ndb {
namespace {

using disk::Get16;
using disk::Get32;
using disk::Get64;

// A Unicode B-tree is at most a handful of levels deep (cLevel is a byte, but
// 20^8 pages would be petabytes); deeper walks are cycles or garbage.
constexpr int kMaxTreeDepth = 8;

using disk::Hex;

const uint8_t* U8(std::string_view s) { return reinterpret_cast<const uint8_t*>(s.data()); }

// The 4 KiB-page layout of Outlook 2013's OSTs (wVer 36), which [MS-PST] does
// not describe; libpff's format notes and the files themselves do. A BTPAGE
// is 4096 bytes: 4056 bytes of entries, then cEnt and cEntMax as 16-bit
// values, cbEnt, cLevel, and a 24-byte page trailer at 4072. BBT leaf
// entries carry the inflated size after cb and move cRef to offset 20.
// Blocks are 512-aligned with a 24-byte trailer; a block whose cb is below
// its inflated size is zlib-compressed.
namespace fourk {
constexpr size_t kPageSize = 4096;
constexpr size_t kEntryBytes = 4056;
constexpr size_t kCEnt = 4056;
constexpr size_t kCLevel = 4061;
constexpr size_t kType = 4072;
constexpr size_t kBlockTrailerSize = 24;
constexpr size_t kBlockAlign = 512;
constexpr size_t kMaxBlockPayload = 65512;  // 64 KiB - trailer
}  // namespace fourk

// Inflates a zlib stream that must come to exactly `size` bytes.
Result<std::string> Inflate(std::string_view in, size_t size) {
  std::string out(size, '\0');
  z_stream z{};
  if (inflateInit(&z) != Z_OK) return Status::IOError("zlib: inflateInit failed (out of memory)");
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  z.avail_in = static_cast<uInt>(in.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  const int rc = inflate(&z, Z_FINISH);
  const size_t got = z.total_out;
  inflateEnd(&z);
  if (rc != Z_STREAM_END || got != size) {
    return Status::Corruption("compressed block does not inflate to its " + std::to_string(size) +
                              " bytes (zlib " + std::to_string(rc) + ", " + std::to_string(got) +
                              " bytes)");
  }
  return out;
}

}  // namespace

size_t NodeData::size() const {
  size_t n = 0;
  for (const auto& b : blocks) n += b.data.size();
  return n;
}

std::string NodeData::Concat() const {
  std::string out;
  out.reserve(size());
  for (const auto& b : blocks) out += b.data;
  return out;
}

const char* TreeName(Tree tree) { return tree == Tree::kNbt ? "NBT" : "BBT"; }

std::string PageLocation(uint64_t ib, Tree tree, int level) {
  std::string s = "page @" + Hex(ib) + " (" + TreeName(tree);
  s += level < 0 ? std::string(" root") : " level " + std::to_string(level);
  return s + ")";
}

Result<NdbReader> NdbReader::Open(const std::string& path) {
  MBX_ASSIGN_OR_RETURN(auto file, fs::MappedFile::Open(path));
  const std::string_view d = file.data();
  if (d.size() < 4 || Get32(U8(d)) != disk::header::kMagicValue) {
    return Status::Corruption("'" + path + "' is not a PST file (no !BDN magic)");
  }
  if (d.size() < 16) return Status::Corruption("'" + path + "': header truncated");
  const uint16_t ver = Get16(U8(d) + disk::header::kVer);
  if (ver == 14 || ver == 15) {
    return Status::Unsupported("'" + path + "' is an ANSI (32-bit) PST (wVer " +
                               std::to_string(ver) +
                               "); only Unicode files (wVer 23) are supported");
  }
  if ((ver < 21 || ver > 23) && ver != kVer4kPages) {
    return Status::Unsupported("'" + path + "': unknown PST version wVer " + std::to_string(ver));
  }
  if (d.size() < disk::kHeaderSize) {
    return Status::Corruption("'" + path + "': file shorter than the 564-byte header");
  }
  NdbReader r;
  r.path_ = path;
  const uint8_t* p = U8(d);
  namespace h = disk::header;
  Header& hd = r.header_;
  hd.magic = Get32(p + h::kMagic);
  hd.crc_partial = Get32(p + h::kCrcPartial);
  hd.magic_client = Get16(p + h::kMagicClient);
  hd.ver = ver;
  hd.ver_client = Get16(p + h::kVerClient);
  hd.platform_create = p[h::kPlatformCreate];
  hd.platform_access = p[h::kPlatformAccess];
  hd.bid_next_p = Get64(p + h::kBidNextP);
  hd.unique = Get32(p + h::kUnique);
  for (size_t i = 0; i < 32; ++i) hd.rgnid[i] = Get32(p + h::kRgnid + 4 * i);
  const uint8_t* root = p + h::kRoot;
  hd.file_eof = Get64(root + h::kRootFileEof);
  hd.amap_last = Get64(root + h::kRootAMapLast);
  hd.amap_free = Get64(root + h::kRootAMapFree);
  hd.pmap_free = Get64(root + h::kRootPMapFree);
  hd.nbt = {Get64(root + h::kRootNbt), Get64(root + h::kRootNbt + 8)};
  hd.bbt = {Get64(root + h::kRootBbt), Get64(root + h::kRootBbt + 8)};
  hd.amap_valid = root[h::kRootAMapValid];
  hd.sentinel = p[h::kSentinel];
  hd.crypt_method = p[h::kCryptMethod];
  hd.bid_next_b = Get64(p + h::kBidNextB);
  hd.crc_full = Get32(p + h::kCrcFull);
  r.file_ = std::move(file);
  return r;
}

std::string_view NdbReader::Bytes(uint64_t ib, uint64_t n) const {
  const std::string_view d = file_.data();
  if (ib > d.size() || n > d.size() - ib) return {};
  return d.substr(ib, n);
}

Status NdbReader::Problem(TreeObserver* observer, std::string location, std::string message) {
  if (observer == nullptr) return Status::Corruption(path_ + ": " + location + ": " + message);
  observer->OnProblem(std::move(location), std::move(message));
  return Status::Ok();
}

Status NdbReader::LoadTrees(TreeObserver* observer) {
  nodes_.clear();
  blocks_.clear();
  std::set<uint64_t> visited;
  MBX_RETURN_IF_ERROR(Walk(Tree::kNbt, header_.nbt, -1, std::nullopt, 0, observer, visited));
  MBX_RETURN_IF_ERROR(Walk(Tree::kBbt, header_.bbt, -1, std::nullopt, 0, observer, visited));
  // Stable: duplicates keep walk order, so the checker can name the later one.
  std::stable_sort(nodes_.begin(), nodes_.end(),
                   [](const NodeEntry& a, const NodeEntry& b) { return a.nid < b.nid; });
  std::stable_sort(blocks_.begin(), blocks_.end(), [](const BlockEntry& a, const BlockEntry& b) {
    return disk::BidKey(a.bid) < disk::BidKey(b.bid);
  });
  return Status::Ok();
}

Status NdbReader::Walk(Tree tree, const Bref& ref, int expected_level,
                       std::optional<uint64_t> parent_key, int depth, TreeObserver* observer,
                       std::set<uint64_t>& visited) {
  std::string loc = PageLocation(ref.ib, tree, expected_level);
  if (depth > kMaxTreeDepth) {
    return Problem(observer, loc,
                   "B-tree deeper than " + std::to_string(kMaxTreeDepth) + " levels");
  }
  const bool fourk = four_k_pages();
  const std::string_view bytes = Bytes(ref.ib, fourk ? fourk::kPageSize : disk::kPageSize);
  if (bytes.empty()) {
    return Problem(
        observer, loc,
        "page (bid " + Hex(ref.bid) + ") lies outside the file (size " + Hex(file_size()) + ")");
  }
  if (!visited.insert(ref.ib).second) {
    return Problem(observer, loc,
                   "page reached a second time (bid " + Hex(ref.bid) +
                       "): B-tree cycle or shared page; subtree skipped");
  }
  const uint8_t* p = U8(bytes);
  const uint8_t want_type =
      static_cast<uint8_t>(tree == Tree::kNbt ? disk::PageType::kNbt : disk::PageType::kBbt);
  const uint8_t ptype = p[fourk ? fourk::kType : disk::page::kType];
  if (ptype != want_type) {
    char msg[96];
    std::snprintf(msg, sizeof msg,
                  "ptype 0x%02x where a %s page (0x%02x) was expected; subtree skipped", ptype,
                  TreeName(tree), want_type);
    return Problem(observer, loc, msg);
  }
  const int level = p[fourk ? fourk::kCLevel : disk::page::kCLevel];
  loc = PageLocation(ref.ib, tree, level);
  if (level > kMaxTreeDepth) {
    return Problem(observer, loc,
                   "cLevel " + std::to_string(level) + " is impossible; subtree skipped");
  }
  if (expected_level >= 0 && level != expected_level) {
    MBX_RETURN_IF_ERROR(Problem(observer, loc,
                                "cLevel " + std::to_string(level) + ", expected " +
                                    std::to_string(expected_level) +
                                    " (one less than its parent)"));
    // A level at or above the parent's could loop; below it the walk stays bounded.
    if (level > expected_level) return Status::Ok();
  }
  if (observer != nullptr && !fourk) {
    observer->OnPage({tree, ref.ib, ref.bid, depth, expected_level, parent_key, p});
  }
  const size_t entry_size = level > 0            ? disk::kBtEntrySize
                            : tree == Tree::kNbt ? disk::kNbtLeafEntrySize
                                                 : disk::kBbtLeafEntrySize;
  const size_t max_entries = (fourk ? fourk::kEntryBytes : disk::kBtPageEntryBytes) / entry_size;
  size_t count = fourk ? Get16(p + fourk::kCEnt) : p[disk::page::kCEnt];
  if (count > max_entries) {
    // The observer reports cEnt against cEntMax; here only what fits is read.
    if (observer == nullptr) {
      return Problem(observer, loc,
                     "cEnt " + std::to_string(count) + " exceeds the " +
                         std::to_string(max_entries) + " entries a page holds");
    }
    count = max_entries;
  }
  for (size_t i = 0; i < count; ++i) {
    const uint8_t* e = p + i * entry_size;
    if (level > 0) {
      const Bref child{Get64(e + 8), Get64(e + 16)};
      MBX_RETURN_IF_ERROR(Walk(tree, child, level - 1, Get64(e), depth + 1, observer, visited));
    } else if (tree == Tree::kNbt) {
      nodes_.push_back({Get64(e), Get64(e + 8), Get64(e + 16), Get32(e + 24)});
    } else if (fourk) {
      blocks_.push_back({Get64(e), Get64(e + 8), Get16(e + 16), Get16(e + 20), Get16(e + 18)});
    } else {
      blocks_.push_back({Get64(e), Get64(e + 8), Get16(e + 16), Get16(e + 18)});
    }
  }
  return Status::Ok();
}

size_t NdbReader::max_block_payload() const {
  return four_k_pages() ? fourk::kMaxBlockPayload : disk::kMaxBlockPayload;
}

const NodeEntry* NdbReader::FindNode(uint64_t nid) const {
  auto it = std::lower_bound(nodes_.begin(), nodes_.end(), nid,
                             [](const NodeEntry& e, uint64_t n) { return e.nid < n; });
  return it != nodes_.end() && it->nid == nid ? &*it : nullptr;
}

const BlockEntry* NdbReader::FindBlock(uint64_t bid) const {
  const uint64_t key = disk::BidKey(bid);
  auto it =
      std::lower_bound(blocks_.begin(), blocks_.end(), key,
                       [](const BlockEntry& e, uint64_t k) { return disk::BidKey(e.bid) < k; });
  return it != blocks_.end() && disk::BidKey(it->bid) == key ? &*it : nullptr;
}

Result<RawBlock> NdbReader::ReadBlockRaw(uint64_t bid) const {
  const BlockEntry* e = FindBlock(bid);
  if (e == nullptr) {
    return Status::Corruption(path_ + ": block " + Hex(bid) + " is not in the block B-tree");
  }
  const bool fourk = four_k_pages();
  const size_t max_payload = max_block_payload();
  if (e->cb > max_payload) {
    return Status::Corruption(path_ + ": block " + Hex(bid) + " claims " + std::to_string(e->cb) +
                              " bytes (max " + std::to_string(max_payload) + ")");
  }
  RawBlock raw;
  raw.entry = *e;
  const size_t stored = fourk ? (e->cb + fourk::kBlockTrailerSize + fourk::kBlockAlign - 1) /
                                    fourk::kBlockAlign * fourk::kBlockAlign
                              : disk::BlockStoredSize(e->cb);
  raw.stored = Bytes(e->ib, stored);
  // Every 16 MiB read, the pages read so far leave our resident set. Other
  // threads may be reading: they fault their pages back in from the cache.
  constexpr uint64_t kDropEvery = 16 << 20;
  if (read_since_drop_->fetch_add(stored) + stored >= kDropEvery) {
    read_since_drop_->store(0);
    file_.DontNeed(0, file_size());
  }
  if (raw.stored.empty()) {
    return Status::Corruption(path_ + ": block " + Hex(bid) + " @" + Hex(e->ib) +
                              " lies outside the file");
  }
  const uint8_t* t = U8(raw.stored) + raw.stored.size() -
                     (fourk ? fourk::kBlockTrailerSize : disk::kBlockTrailerSize);
  raw.trailer_cb = Get16(t);
  raw.trailer_sig = Get16(t + 2);
  raw.trailer_crc = Get32(t + 4);
  raw.trailer_bid = Get64(t + 8);
  return raw;
}

Result<std::string> NdbReader::ReadBlock(uint64_t bid) const {
  std::string data;
  MBX_RETURN_IF_ERROR(AppendBlock(bid, &data));
  return data;
}

Status NdbReader::AppendBlock(uint64_t bid, std::string* out) const {
  MBX_ASSIGN_OR_RETURN(RawBlock raw, ReadBlockRaw(bid));
  const bool external = !disk::IsInternalBid(raw.entry.bid);
  if (external && crypt() == disk::CryptMethod::kCyclic) {
    return Status::Unsupported(path_ + ": cyclic (\"high\") block encoding is not supported");
  }
  const std::string_view stored = raw.data();
  if (four_k_pages() && raw.entry.cb_inflated > raw.entry.cb) {
    std::string decoded;  // only an external block needs a decoded copy to inflate
    if (external) {
      decoded.assign(stored);
      disk::DecodeBlock(crypt(), reinterpret_cast<uint8_t*>(decoded.data()), decoded.size(),
                        raw.entry.bid);
    }
    auto inflated = Inflate(external ? std::string_view(decoded) : stored, raw.entry.cb_inflated);
    if (!inflated.ok()) return inflated.status().WithContext(path_ + ": block " + Hex(bid));
    // Into an empty string with no room for it (ReadBlock's): taken over, not copied.
    if (out->empty() && out->capacity() < inflated->size()) {
      *out = std::move(inflated).value();
    } else {
      out->append(*inflated);
    }
    return Status::Ok();
  }
  // Decoded in its place at the end of *out: one copy of the mapped bytes.
  const size_t at = out->size();
  out->append(stored);
  if (external) {
    disk::DecodeBlock(crypt(), reinterpret_cast<uint8_t*>(out->data() + at), stored.size(),
                      raw.entry.bid);
  }
  return Status::Ok();
}

Result<std::string_view> NdbReader::InternalBlock(uint64_t bid, std::string* inflated) const {
  MBX_ASSIGN_OR_RETURN(RawBlock raw, ReadBlockRaw(bid));
  if (!four_k_pages() || raw.entry.cb_inflated <= raw.entry.cb) return raw.data();
  auto r = Inflate(raw.data(), raw.entry.cb_inflated);
  if (!r.ok()) return r.status().WithContext(path_ + ": block " + Hex(bid));
  *inflated = std::move(r).value();
  return std::string_view(*inflated);
}

namespace {

struct XHeader {
  uint8_t btype, level;
  uint16_t count;
  uint32_t total;
};

}  // namespace

Result<NdbReader::DataTree> NdbReader::ReadDataTree(uint64_t bid) const {
  DataTree tree;
  if (bid == 0) return tree;
  if (!disk::IsInternalBid(bid)) {
    tree.leaves.push_back(bid);
    tree.total = std::nullopt;  // a single block holds what it holds
    return tree;
  }
  // XXBLOCK -> XBLOCK -> data: depth is fixed by cLevel, so no cycle can loop.
  auto read_x = [this](uint64_t xbid, uint8_t want_level,
                       std::vector<uint64_t>& children) -> Result<XHeader> {
    std::string inflated;
    MBX_ASSIGN_OR_RETURN(const std::string_view d, InternalBlock(xbid, &inflated));
    if (d.size() < 8) {
      return Status::Corruption(path_ + ": block " + Hex(xbid) +
                                ": internal block shorter than 8 bytes");
    }
    XHeader x{U8(d)[0], U8(d)[1], Get16(U8(d) + 2), Get32(U8(d) + 4)};
    if (x.btype != disk::kBlockTypeXBlock || x.level != want_level) {
      return Status::Corruption(path_ + ": block " + Hex(xbid) + ": btype " +
                                std::to_string(x.btype) + " cLevel " + std::to_string(x.level) +
                                " where an " + (want_level == 2 ? "XXBLOCK" : "XBLOCK") +
                                " was expected");
    }
    if (8 + size_t{x.count} * 8 > d.size()) {
      return Status::Corruption(path_ + ": block " + Hex(xbid) + ": cEnt " +
                                std::to_string(x.count) + " does not fit its " +
                                std::to_string(d.size()) + " bytes");
    }
    for (size_t i = 0; i < x.count; ++i) children.push_back(Get64(U8(d) + 8 + 8 * i));
    return x;
  };
  std::string root_inflated;
  MBX_ASSIGN_OR_RETURN(const std::string_view root_block, InternalBlock(bid, &root_inflated));
  if (root_block.size() < 2) {
    return Status::Corruption(path_ + ": block " + Hex(bid) + ": empty internal block");
  }
  const uint8_t root_level = U8(root_block)[1];
  if (root_level != 1 && root_level != 2) {
    return Status::Corruption(path_ + ": block " + Hex(bid) + ": data tree root has cLevel " +
                              std::to_string(root_level));
  }
  std::vector<uint64_t> top;
  MBX_ASSIGN_OR_RETURN(XHeader root, read_x(bid, root_level, top));
  // Blocks are stored, never compressed (except in 4 KiB-page files, where
  // zlib gains at most ~1000x): a tree claiming more bytes than that can only
  // list blocks over and over (an XXBLOCK so reaches 8 GB).
  const uint64_t max_total = four_k_pages() ? file_size() * 1032 : file_size();
  if (root.total > max_total) {
    return Status::Corruption(path_ + ": data tree " + Hex(bid) + ": lcbTotal " +
                              std::to_string(root.total) + " exceeds what the file (" +
                              std::to_string(file_size()) + " bytes) can hold");
  }
  std::vector<uint64_t>& leaves = tree.leaves;
  if (root_level == 2) {
    for (uint64_t x : top) {
      if (!disk::IsInternalBid(x)) {
        return Status::Corruption(path_ + ": XXBLOCK " + Hex(bid) + " lists data block " + Hex(x) +
                                  " where an XBLOCK belongs");
      }
      std::vector<uint64_t> kids;
      // lcbTotal of each XBLOCK is the checker's business; the root's bounds the read.
      MBX_RETURN_IF_ERROR(read_x(x, 1, kids).status());
      leaves.insert(leaves.end(), kids.begin(), kids.end());
    }
  } else {
    leaves = std::move(top);
  }
  for (uint64_t leaf : leaves) {
    if (disk::IsInternalBid(leaf)) {
      return Status::Corruption(path_ + ": XBLOCK under " + Hex(bid) + " lists internal block " +
                                Hex(leaf) + " where a data block belongs");
    }
  }
  tree.total = root.total;
  return tree;
}

// Blocks past lcbTotal are not read (a runaway list); a sum that differs is corruption.
Status NdbReader::CheckDataTotal(uint64_t bid, const DataTree& tree, uint64_t total) const {
  if (!tree.total || total == *tree.total) return Status::Ok();
  return Status::Corruption(path_ + ": data tree " + Hex(bid) + ": lcbTotal " +
                            std::to_string(*tree.total) + " but its blocks hold " +
                            (total > *tree.total ? "more" : std::to_string(total)) + " bytes");
}

Result<NodeData> NdbReader::ReadData(uint64_t bid) const {
  MBX_ASSIGN_OR_RETURN(const DataTree tree, ReadDataTree(bid));
  NodeData out;
  uint64_t total = 0;
  for (uint64_t leaf : tree.leaves) {
    MBX_ASSIGN_OR_RETURN(std::string data, ReadBlock(leaf));
    total += data.size();
    if (tree.total && total > *tree.total) break;
    out.blocks.push_back({leaf, std::move(data)});
  }
  MBX_RETURN_IF_ERROR(CheckDataTotal(bid, tree, total));
  return out;
}

Result<std::string> NdbReader::ReadDataContiguous(uint64_t bid) const {
  MBX_ASSIGN_OR_RETURN(const DataTree tree, ReadDataTree(bid));
  std::string out;
  // lcbTotal is only a claim: reserve no more than the listed blocks can hold.
  if (tree.total)
    out.reserve(std::min<uint64_t>(*tree.total, tree.leaves.size() * max_block_payload()));
  for (uint64_t leaf : tree.leaves) {
    MBX_RETURN_IF_ERROR(AppendBlock(leaf, &out));
    if (tree.total && out.size() > *tree.total) break;
  }
  MBX_RETURN_IF_ERROR(CheckDataTotal(bid, tree, out.size()));
  return out;
}

Result<std::vector<SubnodeEntry>> NdbReader::ReadSubnodes(uint64_t bid_sub) const {
  std::vector<SubnodeEntry> out;
  if (bid_sub == 0) return out;
  auto read_s = [this](uint64_t sbid, int want_level, std::vector<SubnodeEntry>& entries,
                       std::vector<uint64_t>& children) -> Status {
    if (!disk::IsInternalBid(sbid)) {
      return Status::Corruption(path_ + ": subnode block " + Hex(sbid) +
                                " is not an internal block (SLBLOCK/SIBLOCK)");
    }
    std::string inflated;
    MBX_ASSIGN_OR_RETURN(const std::string_view d, InternalBlock(sbid, &inflated));
    if (d.size() < 8) {
      return Status::Corruption(path_ + ": block " + Hex(sbid) +
                                ": internal block shorter than 8 bytes");
    }
    const uint8_t btype = U8(d)[0], level = U8(d)[1];
    const size_t count = Get16(U8(d) + 2);
    if (btype != disk::kBlockTypeSubnode || (want_level >= 0 && level != want_level) || level > 1) {
      return Status::Corruption(path_ + ": block " + Hex(sbid) + ": btype " +
                                std::to_string(btype) + " cLevel " + std::to_string(level) +
                                " where an SLBLOCK/SIBLOCK was expected");
    }
    const size_t es = level == 0 ? 24 : 16;
    if (8 + count * es > d.size()) {
      return Status::Corruption(path_ + ": block " + Hex(sbid) + ": cEnt " + std::to_string(count) +
                                " does not fit its " + std::to_string(d.size()) + " bytes");
    }
    for (size_t i = 0; i < count; ++i) {
      const uint8_t* e = U8(d) + 8 + i * es;
      if (level == 0) {
        // The 8-byte NID field holds a 32-bit NID; Outlook leaves garbage above.
        entries.push_back({Get64(e) & 0xFFFFFFFF, Get64(e + 8), Get64(e + 16)});
      } else {
        children.push_back(Get64(e + 8));
      }
    }
    return Status::Ok();
  };
  std::vector<uint64_t> children;
  MBX_RETURN_IF_ERROR(read_s(bid_sub, -1, out, children));
  for (uint64_t c : children) {
    std::vector<uint64_t> none;
    MBX_RETURN_IF_ERROR(read_s(c, 0, out, none));
  }
  std::stable_sort(out.begin(), out.end(),
                   [](const SubnodeEntry& a, const SubnodeEntry& b) { return a.nid < b.nid; });
  return out;
}

}  // namespace mbx::pst::ndb
