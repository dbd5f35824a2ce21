#include "formats/pst/check/check.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <map>
#include <optional>
#include <set>

#include "formats/pst/disk/disk.h"
#include "formats/pst/ltp/reader.h"
#include "formats/pst/ndb/reader.h"

// Conventions the spec leaves open, taken from Outlook's own files (Empty.pst
// and the Unicode samples under shared/data/outlook):
// - cRef = number of references + 1 for every block (all 183 blocks agree).
// - An AMap bit set where nothing lives is legitimate only inside a page the
//   PMap marks reserved-and-free (PMap bit 0); cbPMapFree counts those pages.
//   Outlook's files have no other such bits, so any other is a violation.
// - rgnid[type] holds the last NID index handed out, not the next one: Outlook
//   writes rgnid[NORMAL_FOLDER] = 0x404 with folder 0x8082 (index 0x404).
// - The DList page at 0x4200 carries BID = bidNextP; older Outlook versions
//   wrote no DList and kept rgbFM/rgbFP up to date (notes, not violations).
// - Nodes that are neither folders nor messages have nidParent 0.

namespace mbx::pst::check {
namespace {

using disk::Get16;
using disk::Get32;
using disk::Get64;
using ndb::Tree;

using disk::Hex;

const uint8_t* U8(std::string_view s) { return reinterpret_cast<const uint8_t*>(s.data()); }

std::string BlockLoc(uint64_t bid, uint64_t ib) { return "block bid " + Hex(bid) + " @" + Hex(ib); }

const char* SpecialNidName(uint64_t nid) {
  switch (nid) {
    case disk::kNidMessageStore:
      return "message store";
    case disk::kNidNameToIdMap:
      return "name-to-id map";
    case disk::kNidNormalFolderTemplate:
      return "normal folder template";
    case disk::kNidSearchFolderTemplate:
      return "search folder template";
    case disk::kNidRootFolder:
      return "root folder";
    case disk::kNidSearchManagementQueue:
      return "search management queue";
    case disk::kNidSearchActivityList:
      return "search activity list";
    case disk::kNidSearchDomainObject:
      return "search domain object";
    case disk::kNidHierarchyTableTemplate:
      return "hierarchy table template";
    case disk::kNidContentsTableTemplate:
      return "contents table template";
    case disk::kNidAssocContentsTableTemplate:
      return "associated contents table template";
    case disk::kNidSearchContentsTableTemplate:
      return "search contents table template";
    case disk::kNidAttachmentTableTemplate:
      return "attachment table template";
    case disk::kNidRecipientTableTemplate:
      return "recipient table template";
    default:
      return nullptr;
  }
}

// What kind of LTP structure a node of this type must hold.
enum class Expect { kAny, kPc, kTc };
Expect ExpectedKind(uint64_t nid) {
  switch (disk::NidTypeOf(nid)) {
    case disk::kNidTypeNormalFolder:
    case disk::kNidTypeSearchFolder:
    case disk::kNidTypeNormalMessage:
    case disk::kNidTypeAttachment:
    case disk::kNidTypeAssocMessage:
      return Expect::kPc;
    case disk::kNidTypeHierarchyTable:
    case disk::kNidTypeContentsTable:
    case disk::kNidTypeAssocContentsTable:
    case disk::kNidTypeSearchContentsTable:
    case disk::kNidTypeAttachmentTable:
    case disk::kNidTypeRecipientTable:
      return Expect::kTc;
    default:
      break;
  }
  if (nid == disk::kNidMessageStore || nid == disk::kNidNameToIdMap) return Expect::kPc;
  return Expect::kAny;
}

// What one node's data turned out to be.
struct NodeInfo {
  uint64_t nid = 0;
  std::vector<ndb::SubnodeEntry> subnodes;
  bool has_pc = false, has_tc = false;
  std::vector<ltp::Property> pc;
  ltp::Table tc;
  uint8_t heap_sig = 0;  // client signature when the data is a heap
  size_t raw_size = 0;   // data size when it is not a heap
  std::string raw;       // first bytes of non-heap data (for the dump)
  std::vector<std::string> errors;
  // Parsed subnodes (each child's nid is its subnode nid). Not pairs: a pair
  // of this still incomplete type does not compile with clang and libstdc++.
  std::vector<NodeInfo> children;
};

std::string PropString(const std::vector<ltp::Property>& pc, uint16_t id) {
  const ltp::Property* p = ltp::FindProperty(pc, id);
  if (p == nullptr) return {};
  if (p->type == disk::kPtypString) return disk::Utf16leToUtf8(p->value);
  if (p->type == disk::kPtypString8) return p->value;
  return {};
}

std::optional<uint32_t> PropU32(const std::vector<ltp::Property>& pc, uint16_t id) {
  const ltp::Property* p = ltp::FindProperty(pc, id);
  if (p == nullptr || p->value.size() < 1) return std::nullopt;
  if (p->type == disk::kPtypBoolean) return static_cast<uint8_t>(p->value[0]);
  if (p->type == disk::kPtypInteger32 && p->value.size() == 4) return Get32(U8(p->value));
  return std::nullopt;
}

// Values longer than this are kept by the checker as a digest (prefix, size,
// CRC), so that a large store's bodies and attachments are not held in memory.
constexpr size_t kKeepValue = 512;

void Digest(std::string& v) {
  if (v.size() <= kKeepValue) return;
  char tail[48];
  std::snprintf(tail, sizeof tail, "#digest:%zu:%08x", v.size(), disk::Crc(v.data(), v.size()));
  v = v.substr(0, 64) + std::string(1, '\0') + tail;
}

// Rows are in row id order (the row index BTH is sorted).
const ltp::Row* FindRow(const ltp::Table& t, uint64_t row_id) {
  auto it = std::lower_bound(t.rows.begin(), t.rows.end(), row_id,
                             [](const ltp::Row& r, uint64_t id) { return r.row_id < id; });
  return it != t.rows.end() && it->row_id == row_id ? &*it : nullptr;
}

// Reads a node's (or subnode's) data as a heap, PC or TC; problems go to errors.
// Subnodes are parsed recursively to `depth_left` levels. With `digest`, long
// values are replaced by Digest() after they were validated.
// Bounds on the subnodes one node's reading may visit: shared or looping
// subnode trees (SLBLOCK entries whose bidSub leads back up) must not explode.
struct SubnodeWalk {
  size_t budget = 100000;
  std::vector<uint64_t> path;  // bidSub of the nodes being read, outermost first
};

NodeInfo ReadNode(const ndb::NdbReader& r, uint64_t nid, uint64_t bid_data, uint64_t bid_sub,
                  int depth_left, bool digest, SubnodeWalk& walk) {
  NodeInfo info;
  info.nid = nid;
  if (bid_sub != 0 && std::find(walk.path.begin(), walk.path.end(), bid_sub) != walk.path.end()) {
    info.errors.push_back("subnode tree " + Hex(bid_sub) +
                          " contains itself (cycle); not followed");
    bid_sub = 0;
  }
  auto subs = r.ReadSubnodes(bid_sub);
  if (!subs.ok()) {
    info.errors.push_back("subnode tree: " + subs.status().message());
  } else {
    info.subnodes = std::move(subs).value();
    for (size_t i = 1; i < info.subnodes.size(); ++i) {
      if (info.subnodes[i].nid == info.subnodes[i - 1].nid) {
        info.errors.push_back("subnode " + Hex(info.subnodes[i].nid) + " appears twice");
      }
    }
  }
  const Expect expect = ExpectedKind(nid);
  if (bid_data == 0) {
    if (expect != Expect::kAny) info.errors.push_back("has no data (bidData 0)");
  } else if (auto data = r.ReadData(bid_data); !data.ok()) {
    info.errors.push_back("data: " + data.status().message());
  } else {
    const std::string& first = data->blocks.empty() ? std::string() : data->blocks[0].data;
    // An NID_TYPE_LTP subnode holds a value stream (a large property value, a
    // row matrix): raw bytes even when byte 2 happens to be the heap signature.
    const bool is_heap = disk::NidTypeOf(nid) != disk::kNidTypeLtp && first.size() >= 4 &&
                         static_cast<uint8_t>(first[2]) == disk::kHeapSig;
    if (!is_heap) {
      info.raw_size = data->size();
      info.raw = data->Concat().substr(0, 64);
      if (expect != Expect::kAny) {
        info.errors.push_back(std::string("data is not a heap-on-node, but a ") +
                              (expect == Expect::kPc ? "property" : "table") +
                              " context belongs here");
      }
    } else if (auto heap = ltp::Heap::Open(std::move(data).value()); !heap.ok()) {
      info.errors.push_back("heap: " + heap.status().message());
    } else {
      info.heap_sig = heap->client_sig();
      info.raw_size = heap->data().size();
      info.raw = heap->data().blocks[0].data.substr(0, 64);
      for (size_t b = 0; b < heap->blocks().size(); ++b) {
        const uint8_t want = disk::HeapFillLevel(heap->FreeBytes(b));
        if (heap->RecordedFillLevel(b) != want) {
          info.errors.push_back("heap block " + std::to_string(b) + ": fill level " +
                                std::to_string(heap->RecordedFillLevel(b)) + " but " +
                                std::to_string(heap->FreeBytes(b)) + " bytes are free (level " +
                                std::to_string(want) + ")");
        }
      }
      ltp::NodeContext ctx{&r, info.subnodes};
      if (heap->client_sig() == disk::kClientSigPc) {
        if (auto pc = ltp::ReadPropertyContext(*heap, ctx); !pc.ok()) {
          info.errors.push_back("property context: " + pc.status().message());
        } else {
          info.has_pc = true;
          info.pc = std::move(pc).value();
          for (auto& p : info.pc) {
            if (Status s = ltp::ValidateValue(p.type, p.value); !s.ok()) {
              info.errors.push_back("property " + Hex(p.tag()) + ": " + s.message());
            }
            if (digest) Digest(p.value);
          }
        }
      } else if (heap->client_sig() == disk::kClientSigTc) {
        if (auto tc = ltp::ReadTableContext(*heap, ctx); !tc.ok()) {
          info.errors.push_back("table context: " + tc.status().message());
        } else {
          info.has_tc = true;
          info.tc = std::move(tc).value();
          for (auto& m : ltp::ValidateTableInfo(info.tc.info)) {
            info.errors.push_back("TCINFO: " + m);
          }
          if (info.tc.matrix_rows != info.tc.rows.size()) {
            info.errors.push_back("row matrix holds " + std::to_string(info.tc.matrix_rows) +
                                  " rows but the row index has " +
                                  std::to_string(info.tc.rows.size()));
          }
          if (info.tc.info.hid_index != 0) {
            info.errors.push_back("TCINFO hidIndex " + Hex(info.tc.info.hid_index) +
                                  " (deprecated; must be 0)");
          }
          for (const auto& row : info.tc.rows) {
            for (size_t c = 0; c < info.tc.info.columns.size(); ++c) {
              const ltp::Column& col = info.tc.info.columns[c];
              const ltp::Cell& cell = row.cells[c];
              if (!cell.present) continue;
              if (col.tag == 0x67F20003 &&
                  (cell.value.size() != 4 || Get32(U8(cell.value)) != row.row_id)) {
                info.errors.push_back("row id " + Hex(row.row_id) +
                                      ": its 0x67f20003 cell disagrees");
              }
              if (Status s = ltp::ValidateValue(col.type(), cell.value); !s.ok()) {
                info.errors.push_back("row id " + Hex(row.row_id) + " column " + Hex(col.tag) +
                                      ": " + s.message());
              }
            }
          }
          if (digest) {
            for (auto& row : info.tc.rows) {
              for (auto& cell : row.cells) Digest(cell.value);
            }
          }
        }
      }
      if (expect == Expect::kPc && !info.has_pc && heap->client_sig() != disk::kClientSigPc) {
        info.errors.push_back("heap client signature " + Hex(heap->client_sig()) +
                              " where a property context (0xbc) belongs");
      }
      if (expect == Expect::kTc && !info.has_tc && heap->client_sig() != disk::kClientSigTc) {
        info.errors.push_back("heap client signature " + Hex(heap->client_sig()) +
                              " where a table context (0x7c) belongs");
      }
    }
  }
  if (depth_left > 0 && !info.subnodes.empty()) {
    walk.path.push_back(bid_sub);
    for (const auto& s : info.subnodes) {
      if (walk.budget == 0) {
        info.errors.push_back(
            "more than 100000 subnodes below one node (shared subtrees?); rest skipped");
        break;
      }
      --walk.budget;
      info.children.push_back(
          ReadNode(r, s.nid, s.bid_data, s.bid_sub, depth_left - 1, digest, walk));
    }
    walk.path.pop_back();
  }
  return info;
}

NodeInfo ReadNode(const ndb::NdbReader& r, uint64_t nid, uint64_t bid_data, uint64_t bid_sub,
                  int depth_left, bool digest) {
  SubnodeWalk walk;
  return ReadNode(r, nid, bid_data, bid_sub, depth_left, digest, walk);
}

std::string FormatValue(uint16_t type, std::string_view v);

// Subnodes nest (message -> attachment -> embedded message); four levels is
// deeper than any real store needs, and bounds hostile files.
constexpr int kSubnodeDepth = 4;

class Checker : public ndb::TreeObserver {
 public:
  Checker(ndb::NdbReader& r, CheckReport& rep) : r_(r), rep_(rep) {}

  void Run() {
    CheckHeader();
    if (Status s = r_.LoadTrees(this); !s.ok()) V("B-trees", s.message());
    rep_.nodes = static_cast<int>(r_.nodes().size());
    rep_.blocks = static_cast<int>(r_.blocks().size());
    CheckDuplicates();
    CheckBlocks();
    CheckNodeRefs();
    CheckRefCounts();
    CheckAllocation();
    if (r_.crypt() == disk::CryptMethod::kCyclic) {
      Note("cyclic block encoding: LTP and messaging checks skipped (not supported)");
    } else {
      ReadAllNodes();
      CheckLtp();
      CheckMessaging();
      CheckCounters();
    }
  }

  void OnPage(const ndb::BtPageVisit& v) override;
  void OnProblem(std::string location, std::string message) override {
    V(std::move(location), std::move(message));
  }

 private:
  struct Extent {
    uint64_t ib, size;
    std::string what;
  };
  struct InternalInfo {
    uint8_t btype = 0, level = 0;
    uint16_t count = 0;
    uint32_t total = 0;
    uint64_t first_nid = 0;
    bool ok = false;
  };

  void V(std::string loc, std::string msg) {
    rep_.violations.push_back({std::move(loc), std::move(msg)});
  }
  void Note(std::string n) { rep_.notes.push_back(std::move(n)); }

  void CheckHeader();
  void CheckDuplicates();
  void CheckBlocks();
  void CheckInternalBlock(const ndb::BlockEntry& e, const ndb::RawBlock& raw,
                          const std::string& loc);
  void CheckNodeRefs();
  void CheckRefCounts();
  void CheckAllocation();
  void CheckMapPage(uint64_t ib, disk::PageType type, const char* name);
  void CheckDList();
  void ReadAllNodes();
  void NoteSubnodeNids(const NodeInfo& info);
  void NoteNid(uint64_t nid);
  void CheckCounters();
  void CheckLtp();
  void EmitNodeErrors(const std::string& loc, const NodeInfo& info);
  void CheckMessaging();
  void CheckFolder(const ndb::NodeEntry& n);
  void CheckMessage(const ndb::NodeEntry& n);
  void CompareRowWithPc(const std::string& loc, const ltp::Table& t, const ltp::Row& row,
                        const std::vector<ltp::Property>& pc, const std::string& what);
  std::string NodeLoc(uint64_t nid) const;
  std::string FolderName(uint64_t nid) const;
  const NodeInfo* Info(uint64_t nid) const {
    auto it = infos_.find(nid);
    return it == infos_.end() ? nullptr : &it->second;
  }
  bool IsFolder(uint64_t nid) const {
    const uint32_t t = disk::NidTypeOf(nid);
    return r_.FindNode(nid) != nullptr &&
           (t == disk::kNidTypeNormalFolder || t == disk::kNidTypeSearchFolder);
  }

  ndb::NdbReader& r_;
  CheckReport& rep_;
  std::vector<Extent> extents_;
  uint64_t max_page_bid_ = 0;
  std::map<std::pair<Tree, int>, uint64_t> last_key_;  // (tree, level) -> last key in walk order
  std::map<uint64_t, int> refs_;                       // BidKey -> references
  std::map<uint64_t, InternalInfo> internal_;          // BidKey -> parsed header
  std::map<uint64_t, NodeInfo> infos_;                 // nid -> parsed node (not messages)
  std::map<uint32_t, std::pair<uint32_t, uint64_t>> max_index_;  // NID type -> (index, nid)
  std::map<uint64_t, size_t> unread_;  // folder -> messages without MSGFLAG_READ
};

// ---- Header ----

void Checker::CheckHeader() {
  const ndb::Header& h = r_.header();
  const std::string_view raw = r_.Bytes(0, disk::kHeaderSize);
  const std::string loc = "header";
  namespace hd = disk::header;
  const uint32_t partial = disk::Crc(U8(raw) + 8, hd::kCrcPartialLen);
  if (partial != h.crc_partial) {
    V(loc, "dwCRCPartial " + Hex(h.crc_partial) + " but bytes 8..478 give " + Hex(partial));
  }
  const uint32_t full = disk::Crc(U8(raw) + 8, hd::kCrcFullLen);
  if (full != h.crc_full) {
    V(loc, "dwCRCFull " + Hex(h.crc_full) + " but bytes 8..523 give " + Hex(full));
  }
  if (h.magic_client == 0x4F53) {
    Note("wMagicClient 0x4f53: an OST (offline store), not a PST");
  } else if (h.magic_client != hd::kMagicClientValue) {
    V(loc, "wMagicClient " + Hex(h.magic_client) + " (expected 0x4d53)");
  }
  if (h.ver != hd::kVerUnicode) V(loc, "wVer " + std::to_string(h.ver) + " (Outlook writes 23)");
  if (h.ver_client != hd::kVerClientValue) {
    V(loc, "wVerClient " + std::to_string(h.ver_client) + " (expected 19)");
  }
  if (h.platform_create != 1 || h.platform_access != 1) {
    V(loc, "bPlatformCreate/bPlatformAccess " + std::to_string(h.platform_create) + "/" +
               std::to_string(h.platform_access) + " (both must be 1)");
  }
  if (h.sentinel != 0x80) V(loc, "bSentinel " + Hex(h.sentinel) + " (must be 0x80)");
  if (h.crypt_method > 2) {
    V(loc, "bCryptMethod " + std::to_string(h.crypt_method) + " is not 0, 1 or 2");
  }
  if (h.amap_valid != hd::kAMapValid) {
    V(loc, "fAMapValid " + std::to_string(h.amap_valid) +
               (h.amap_valid == 0 ? " (AMaps invalid: Outlook must rebuild them)"
                                  : " (deprecated; write 2)"));
  }
  const bool fm_ff = std::all_of(raw.begin() + hd::kRgbFM, raw.begin() + hd::kRgbFM + 128,
                                 [](char c) { return static_cast<uint8_t>(c) == 0xFF; });
  const bool fp_ff = std::all_of(raw.begin() + hd::kRgbFP, raw.begin() + hd::kRgbFP + 128,
                                 [](char c) { return static_cast<uint8_t>(c) == 0xFF; });
  if (!fm_ff || !fp_ff) {
    Note(
        "rgbFM/rgbFP are not all 0xFF: written by an older Outlook that still kept the header "
        "free maps (the spec deprecates them)");
  }
  if (h.file_eof != r_.file_size()) {
    V(loc, "ibFileEof " + Hex(h.file_eof) + " but the file is " + Hex(r_.file_size()) + " bytes");
  }
}

// ---- B-tree pages ----

void Checker::OnPage(const ndb::BtPageVisit& v) {
  const uint8_t* p = v.page;
  const int level = p[disk::page::kCLevel];
  const std::string loc = ndb::PageLocation(v.ib, v.tree, level);
  ++rep_.pages;
  extents_.push_back({v.ib, disk::kPageSize, loc});
  if (v.ib % disk::kPageSize != 0) V(loc, "not 512-byte aligned");
  if (v.ib < disk::kFirstAMapOffset) V(loc, "lies before the first AMap (0x4400)");
  if (p[disk::page::kTypeRepeat] != p[disk::page::kType]) {
    V(loc, "ptypeRepeat " + Hex(p[disk::page::kTypeRepeat]) + " differs from ptype " +
               Hex(p[disk::page::kType]));
  }
  const uint64_t bid = Get64(p + disk::page::kBid);
  max_page_bid_ = std::max(max_page_bid_, bid);
  if (bid != v.ref_bid) {
    V(loc, "trailer BID " + Hex(bid) + " differs from BID " + Hex(v.ref_bid) + " in the " +
               (v.depth == 0 ? "header's root" : "parent page's") +
               " reference (back-link broken)");
  }
  const uint16_t sig = Get16(p + disk::page::kSig);
  if (sig != disk::Signature(v.ib, bid)) {
    V(loc, "wSig " + Hex(sig) + ", expected " + Hex(disk::Signature(v.ib, bid)));
  }
  const uint32_t crc = Get32(p + disk::page::kCrc);
  const uint32_t want_crc = disk::Crc(p, disk::page::kTrailer);
  if (crc != want_crc) V(loc, "page CRC " + Hex(crc) + " but its 496 bytes give " + Hex(want_crc));

  const bool nbt = v.tree == Tree::kNbt;
  const size_t want_cb = level > 0 ? disk::kBtEntrySize
                         : nbt     ? disk::kNbtLeafEntrySize
                                   : disk::kBbtLeafEntrySize;
  const size_t want_max = disk::kBtPageEntryBytes / want_cb;
  const uint8_t c_ent = p[disk::page::kCEnt], c_max = p[disk::page::kCEntMax],
                cb_ent = p[disk::page::kCbEnt];
  if (cb_ent != want_cb) {
    V(loc, "cbEnt " + std::to_string(cb_ent) + ", expected " + std::to_string(want_cb) +
               " for this level");
  }
  if (c_max != want_max) {
    V(loc, "cEntMax " + std::to_string(c_max) + ", expected " + std::to_string(want_max) +
               " for this level");
  }
  if (c_ent > c_max) {
    V(loc, "cEnt " + std::to_string(c_ent) + " exceeds cEntMax " + std::to_string(c_max));
  } else if (c_ent > want_max) {
    V(loc, "cEnt " + std::to_string(c_ent) + " exceeds the " + std::to_string(want_max) +
               " entries a page holds");
  }
  if (c_ent == 0 && v.depth > 0) V(loc, "non-root page with no entries");
  const size_t n = std::min<size_t>(c_ent, want_max);
  for (size_t i = 0; i < n; ++i) {
    const uint8_t* e = p + i * want_cb;
    const uint64_t key = Get64(e);
    if (i == 0) {
      if (v.parent_key && key != *v.parent_key) {
        V(loc, "first key " + Hex(key) + " differs from the key " + Hex(*v.parent_key) +
                   " its parent entry gives it");
      }
      auto it = last_key_.find({v.tree, level});
      if (it != last_key_.end() && key <= it->second) {
        V(loc, "first key " + Hex(key) + " is not above the last key " + Hex(it->second) +
                   " of the previous page on this level");
      }
    } else if (key <= Get64(e - want_cb)) {
      V(loc, "keys not strictly increasing: entry " + std::to_string(i) + " key " + Hex(key) +
                 " after " + Hex(Get64(e - want_cb)));
    }
    if (level == 0 && nbt && (key >> 32) != 0) V(loc, "NID " + Hex(key) + " has bits above 32 set");
    if (level == 0 && !nbt && (key & 1) != 0) V(loc, "BID " + Hex(key) + " has reserved bit 0 set");
  }
  if (n > 0) last_key_[{v.tree, level}] = Get64(p + (n - 1) * want_cb);
}

void Checker::CheckDuplicates() {
  const auto& nodes = r_.nodes();
  for (size_t i = 1; i < nodes.size(); ++i) {
    if (nodes[i].nid == nodes[i - 1].nid) {
      V(NodeLoc(nodes[i].nid), "NID appears twice in the node B-tree");
    }
  }
  const auto& blocks = r_.blocks();
  for (size_t i = 1; i < blocks.size(); ++i) {
    if (disk::BidKey(blocks[i].bid) == disk::BidKey(blocks[i - 1].bid)) {
      V(BlockLoc(blocks[i].bid, blocks[i].ib), "BID appears twice in the block B-tree");
    }
  }
}

// ---- Blocks ----

void Checker::CheckBlocks() {
  // First pass: trailers, CRCs, extents, internal headers.
  for (const auto& e : r_.blocks()) {
    const std::string loc = BlockLoc(e.bid, e.ib);
    if (e.ib % disk::kBlockAlign != 0) V(loc, "not 64-byte aligned");
    if (e.ib < disk::kFirstAMapOffset) V(loc, "lies before the first AMap (0x4400)");
    if (e.cb > disk::kMaxBlockPayload) {
      V(loc, "cb " + std::to_string(e.cb) + " exceeds the 8176-byte maximum");
      continue;
    }
    const uint64_t stored = disk::BlockStoredSize(e.cb);
    if (e.ib > r_.file_size() || stored > r_.file_size() - e.ib) {
      V(loc, "its " + std::to_string(stored) + " stored bytes run past the end of the file (" +
                 Hex(r_.file_size()) + ")");
      continue;
    }
    extents_.push_back({e.ib, stored, loc});
    auto raw = r_.ReadBlockRaw(e.bid);
    if (!raw.ok()) {
      V(loc, raw.status().message());
      continue;
    }
    if (raw->trailer_cb != e.cb) {
      V(loc, "trailer cb " + std::to_string(raw->trailer_cb) + " differs from the BBT's cb " +
                 std::to_string(e.cb));
    }
    if (raw->trailer_bid != e.bid) {
      V(loc, "trailer BID " + Hex(raw->trailer_bid) + " differs from the BBT's BID " + Hex(e.bid));
    }
    if (raw->trailer_sig != disk::Signature(e.ib, e.bid)) {
      V(loc, "wSig " + Hex(raw->trailer_sig) + ", expected " + Hex(disk::Signature(e.ib, e.bid)));
    }
    const uint32_t crc = disk::Crc(raw->stored.data(), e.cb);
    if (crc != raw->trailer_crc) {
      V(loc, "block CRC " + Hex(raw->trailer_crc) + " but its " + std::to_string(e.cb) +
                 " stored bytes give " + Hex(crc));
    }
    if (disk::IsInternalBid(e.bid)) {
      InternalInfo info;
      const std::string_view d = raw->data();
      if (d.size() >= 8) {
        info.btype = U8(d)[0];
        info.level = U8(d)[1];
        info.count = Get16(U8(d) + 2);
        info.total = Get32(U8(d) + 4);
        if (info.btype == disk::kBlockTypeSubnode && info.count > 0 && d.size() >= 16) {
          info.first_nid = Get64(U8(d) + 8) & 0xFFFFFFFF;
        }
        info.ok = true;
      }
      internal_[disk::BidKey(e.bid)] = info;
    }
  }
  // Second pass: internal block structure and references, now that every
  // child's header is known.
  for (const auto& e : r_.blocks()) {
    if (!disk::IsInternalBid(e.bid)) continue;
    auto raw = r_.ReadBlockRaw(e.bid);
    if (!raw.ok()) continue;
    CheckInternalBlock(e, *raw, BlockLoc(e.bid, e.ib));
  }
}

void Checker::CheckInternalBlock(const ndb::BlockEntry& e, const ndb::RawBlock& raw,
                                 const std::string& loc) {
  const std::string_view d = raw.data();
  if (d.size() < 8) {
    V(loc, "internal block of " + std::to_string(d.size()) + " bytes (a header needs 8)");
    return;
  }
  const InternalInfo& me = internal_[disk::BidKey(e.bid)];
  auto child = [&](uint64_t bid) -> const InternalInfo* {
    auto it = internal_.find(disk::BidKey(bid));
    return it == internal_.end() || !it->second.ok ? nullptr : &it->second;
  };
  auto ref = [&](uint64_t bid, const std::string& what) {
    ++refs_[disk::BidKey(bid)];
    if (r_.FindBlock(bid) == nullptr) V(loc, what + " " + Hex(bid) + " is not in the block B-tree");
  };
  if (me.btype == disk::kBlockTypeXBlock && (me.level == 1 || me.level == 2)) {
    const char* name = me.level == 1 ? "XBLOCK" : "XXBLOCK";
    if (me.count > disk::kMaxXBlockEntries || me.count == 0) {
      V(loc, std::string(name) + " cEnt " + std::to_string(me.count) + " (must be 1..1021)");
    }
    if (size_t{8} + size_t{me.count} * 8 != d.size()) {
      V(loc, std::string(name) + " cb " + std::to_string(d.size()) + " but cEnt " +
                 std::to_string(me.count) + " needs " + std::to_string(8 + size_t{me.count} * 8));
    }
    const size_t n = std::min<size_t>(me.count, (d.size() - 8) / 8);
    uint64_t sum = 0;
    for (size_t i = 0; i < n; ++i) {
      const uint64_t bid = Get64(U8(d) + 8 + 8 * i);
      ref(bid, "entry " + std::to_string(i) + ": BID");
      const ndb::BlockEntry* be = r_.FindBlock(bid);
      if (be == nullptr) continue;
      if (me.level == 1) {
        if (disk::IsInternalBid(bid)) {
          V(loc, "XBLOCK entry " + Hex(bid) + " is an internal block, not data");
        }
        sum += be->cb;
      } else {
        const InternalInfo* ci = child(bid);
        if (ci == nullptr || ci->btype != disk::kBlockTypeXBlock || ci->level != 1) {
          V(loc, "XXBLOCK entry " + Hex(bid) + " is not an XBLOCK");
        } else {
          sum += ci->total;
        }
      }
    }
    if (sum != me.total) {
      V(loc, std::string(name) + " lcbTotal " + std::to_string(me.total) +
                 " but its children hold " + std::to_string(sum) + " bytes");
    }
  } else if (me.btype == disk::kBlockTypeSubnode && (me.level == 0 || me.level == 1)) {
    const char* name = me.level == 0 ? "SLBLOCK" : "SIBLOCK";
    const size_t es = me.level == 0 ? 24 : 16;
    const size_t max = me.level == 0 ? disk::kMaxSlEntries : disk::kMaxSiEntries;
    if (me.count > max || me.count == 0) {
      V(loc, std::string(name) + " cEnt " + std::to_string(me.count) + " (must be 1.." +
                 std::to_string(max) + ")");
    }
    if (size_t{8} + me.count * es != d.size()) {
      V(loc, std::string(name) + " cb " + std::to_string(d.size()) + " but cEnt " +
                 std::to_string(me.count) + " needs " + std::to_string(8 + me.count * es));
    }
    const size_t n = std::min<size_t>(me.count, (d.size() - 8) / es);
    for (size_t i = 0; i < n; ++i) {
      const uint8_t* p = U8(d) + 8 + i * es;
      // A 32-bit NID in an 8-byte field; Outlook leaves garbage in the upper half.
      const uint64_t nid = Get64(p) & 0xFFFFFFFF;
      if (i > 0 && nid <= (Get64(p - es) & 0xFFFFFFFF)) {
        V(loc, std::string(name) + " NIDs not strictly increasing at entry " + std::to_string(i));
      }
      if (me.level == 0) {
        const uint64_t data = Get64(p + 8), sub = Get64(p + 16);
        ref(data, "subnode " + Hex(nid) + " bidData");
        if (disk::IsInternalBid(data)) {
          const InternalInfo* ci = child(data);
          if (ci == nullptr || ci->btype != disk::kBlockTypeXBlock) {
            V(loc, "subnode " + Hex(nid) + " bidData " + Hex(data) +
                       " is internal but not an XBLOCK/XXBLOCK");
          }
        }
        if (sub != 0) {
          ref(sub, "subnode " + Hex(nid) + " bidSub");
          const InternalInfo* ci = child(sub);
          if (ci == nullptr || ci->btype != disk::kBlockTypeSubnode) {
            V(loc, "subnode " + Hex(nid) + " bidSub " + Hex(sub) + " is not an SLBLOCK/SIBLOCK");
          }
        }
      } else {
        const uint64_t bid = Get64(p + 8);
        ref(bid, "entry " + std::to_string(i) + ": BID");
        const InternalInfo* ci = child(bid);
        if (ci == nullptr || ci->btype != disk::kBlockTypeSubnode || ci->level != 0) {
          V(loc, "SIBLOCK entry " + Hex(bid) + " is not an SLBLOCK");
        } else if (ci->first_nid != nid) {
          V(loc, "SIBLOCK entry NID " + Hex(nid) + " differs from its SLBLOCK's first NID " +
                     Hex(ci->first_nid));
        }
      }
    }
  } else {
    V(loc, "internal block with btype " + std::to_string(me.btype) + " cLevel " +
               std::to_string(me.level) + " (neither XBLOCK/XXBLOCK nor SLBLOCK/SIBLOCK)");
  }
}

void Checker::CheckNodeRefs() {
  for (const auto& n : r_.nodes()) {
    const std::string loc = NodeLoc(n.nid);
    if (n.bid_data != 0) {
      ++refs_[disk::BidKey(n.bid_data)];
      if (r_.FindBlock(n.bid_data) == nullptr) {
        V(loc, "bidData " + Hex(n.bid_data) + " is not in the block B-tree");
      } else if (disk::IsInternalBid(n.bid_data)) {
        auto it = internal_.find(disk::BidKey(n.bid_data));
        if (it == internal_.end() || it->second.btype != disk::kBlockTypeXBlock) {
          V(loc, "bidData " + Hex(n.bid_data) + " is internal but not an XBLOCK/XXBLOCK");
        }
      }
    }
    if (n.bid_sub != 0) {
      ++refs_[disk::BidKey(n.bid_sub)];
      auto it = internal_.find(disk::BidKey(n.bid_sub));
      if (r_.FindBlock(n.bid_sub) == nullptr) {
        V(loc, "bidSub " + Hex(n.bid_sub) + " is not in the block B-tree");
      } else if (it == internal_.end() || it->second.btype != disk::kBlockTypeSubnode) {
        V(loc, "bidSub " + Hex(n.bid_sub) + " is not an SLBLOCK/SIBLOCK");
      }
    }
  }
}

void Checker::CheckRefCounts() {
  for (const auto& e : r_.blocks()) {
    const std::string loc = BlockLoc(e.bid, e.ib);
    const int refs = refs_.count(disk::BidKey(e.bid)) ? refs_[disk::BidKey(e.bid)] : 0;
    if (refs == 0) {
      V(loc, "nothing references this block (cRef " + std::to_string(e.cref) + "): leaked");
    } else if (e.cref != refs + 1) {
      V(loc, "cRef " + std::to_string(e.cref) + ", expected " + std::to_string(refs + 1) + " (" +
                 std::to_string(refs) + " reference" + (refs == 1 ? "" : "s") +
                 " + 1, Outlook's convention)");
    }
  }
}

// ---- Allocation ----

void Checker::CheckMapPage(uint64_t ib, disk::PageType type, const char* name) {
  const std::string loc = std::string(name) + " page @" + Hex(ib);
  const std::string_view b = r_.Bytes(ib, disk::kPageSize);
  if (b.empty()) {
    V(loc, "missing: past the end of the file");
    return;
  }
  ++rep_.pages;
  extents_.push_back({ib, disk::kPageSize, loc});
  const uint8_t* p = U8(b);
  if (p[disk::page::kType] != static_cast<uint8_t>(type)) {
    V(loc, "ptype " + Hex(p[disk::page::kType]) + " where " + name + " (" +
               Hex(static_cast<uint8_t>(type)) + ") belongs");
  }
  if (p[disk::page::kTypeRepeat] != p[disk::page::kType]) V(loc, "ptypeRepeat differs from ptype");
  if (Get16(p + disk::page::kSig) != 0) {
    V(loc, "wSig " + Hex(Get16(p + disk::page::kSig)) + " (map pages have 0)");
  }
  const uint32_t crc = disk::Crc(p, disk::page::kTrailer);
  if (Get32(p + disk::page::kCrc) != crc) {
    V(loc, "page CRC " + Hex(Get32(p + disk::page::kCrc)) + " but its 496 bytes give " + Hex(crc));
  }
  if (Get64(p + disk::page::kBid) != ib) {
    V(loc, "trailer BID " + Hex(Get64(p + disk::page::kBid)) + " (a map page's BID is its offset)");
  }
}

void Checker::CheckDList() {
  const std::string loc = "DList page @" + Hex(disk::kDListOffset);
  const std::string_view b = r_.Bytes(disk::kDListOffset, disk::kPageSize);
  if (b.empty()) return;
  const uint8_t* p = U8(b);
  if (p[disk::page::kType] != static_cast<uint8_t>(disk::PageType::kDList)) {
    if (std::all_of(b.begin(), b.end(), [](char c) { return c == 0; })) {
      Note("no density list at 0x4200 (older Outlook versions wrote none)");
    } else {
      V(loc, "ptype " + Hex(p[disk::page::kType]) + " where a DList (0x86) or nothing belongs");
    }
    return;
  }
  ++rep_.pages;
  const uint64_t bid = Get64(p + disk::page::kBid);
  if (p[disk::page::kTypeRepeat] != p[disk::page::kType]) V(loc, "ptypeRepeat differs from ptype");
  if (Get16(p + disk::page::kSig) != disk::Signature(disk::kDListOffset, bid)) {
    V(loc, "wSig " + Hex(Get16(p + disk::page::kSig)) + ", expected " +
               Hex(disk::Signature(disk::kDListOffset, bid)));
  }
  const uint32_t crc = disk::Crc(p, disk::page::kTrailer);
  if (Get32(p + disk::page::kCrc) != crc) {
    V(loc, "page CRC " + Hex(Get32(p + disk::page::kCrc)) + " but its 496 bytes give " + Hex(crc));
  }
  // DLISTPAGE: bFlags, cEntDList, wPadding, ulCurrentPage, then 4-byte entries
  // (20-bit AMap page number, 12-bit free slot count).
  const size_t count = p[1];
  const size_t max = (disk::page::kTrailer - 8) / 4;
  if (count > max) {
    V(loc, "cEntDList " + std::to_string(count) + " exceeds the " + std::to_string(max) +
               " entries that fit");
    return;
  }
  const uint64_t amaps = r_.file_size() > disk::kFirstAMapOffset
                             ? (r_.file_size() - disk::kFirstAMapOffset + disk::kAMapCoverage - 1) /
                                   disk::kAMapCoverage
                             : 0;
  for (size_t i = 0; i < count; ++i) {
    const uint32_t ent = Get32(p + 8 + 4 * i);
    if ((ent & 0xFFFFF) >= amaps) {
      V(loc, "entry " + std::to_string(i) + " names AMap page " + std::to_string(ent & 0xFFFFF) +
                 " of " + std::to_string(amaps));
    }
  }
}

void Checker::CheckAllocation() {
  const uint64_t size = r_.file_size();
  const uint64_t base = disk::kFirstAMapOffset, cover = disk::kAMapCoverage;
  CheckDList();
  if (size <= base) {
    V("file", "ends at " + Hex(size) + ", before the first AMap at 0x4400");
    return;
  }
  if ((size - base) % cover != 0) {
    V("file",
      "size " + Hex(size) + " is not 0x4400 plus whole AMap ranges of 253952 bytes (truncated?)");
  }
  const uint64_t amaps = (size - base + cover - 1) / cover;
  const uint64_t last = base + (amaps - 1) * cover;
  if (r_.header().amap_last != last) {
    V("header",
      "ibAMapLast " + Hex(r_.header().amap_last) + " but the last AMap is at " + Hex(last));
  }
  bool fmap_unverified = false;
  for (uint64_t k = 0; k < amaps; ++k) {
    const uint64_t am = base + k * cover;
    CheckMapPage(am, disk::PageType::kAMap, "AMap");
    uint64_t next = am + disk::kPageSize;
    if (k % 8 == 0) {
      CheckMapPage(next, disk::PageType::kPMap, "PMap");
      next += disk::kPageSize;
    }
    // FMaps (every 496 ranges from the 128th) and FPMaps (every 3,968 from the
    // 8192nd) follow the AMap/PMap there. Outlook's placement has not been
    // observed (no file here is that large), so pages found there are checked
    // and counted, and their absence is a note, not a violation.
    if (k >= 128 && (k - 128) % 496 == 0) {
      const std::string_view pb = r_.Bytes(next, disk::kPageSize);
      if (!pb.empty() && U8(pb)[disk::page::kType] == static_cast<uint8_t>(disk::PageType::kFMap)) {
        CheckMapPage(next, disk::PageType::kFMap, "FMap");
        next += disk::kPageSize;
      } else {
        fmap_unverified = true;
      }
    }
    // An FPMap maps 496 x 8 PMaps' worth of ranges. Only those places are
    // looked at: elsewhere the bytes after the AMap belong to blocks, and one
    // whose byte 496 happens to read as an FPMap type is not a page.
    if (k >= 8192 && (k - 8192) % (496 * 8) == 0) {
      const std::string_view pb = r_.Bytes(next, disk::kPageSize);
      if (!pb.empty() &&
          U8(pb)[disk::page::kType] == static_cast<uint8_t>(disk::PageType::kFPMap)) {
        CheckMapPage(next, disk::PageType::kFPMap, "FPMap");
      }
    }
  }
  if (fmap_unverified) {
    Note("file spans " + std::to_string(amaps) +
         " AMap ranges; no FMap page found right after the AMap/PMap of the 128th (+496k) range: "
         "FMap "
         "placement is not verified");
  }

  // Extents must not overlap and must lie inside the AMap-covered area.
  std::sort(extents_.begin(), extents_.end(), [](const Extent& a, const Extent& b) {
    return a.ib < b.ib || (a.ib == b.ib && a.size < b.size);
  });
  const Extent* prev = nullptr;
  for (const Extent& e : extents_) {
    if (prev != nullptr && e.ib < prev->ib + prev->size) V(e.what, "overlaps " + prev->what);
    if (prev == nullptr || e.ib + e.size > prev->ib + prev->size) prev = &e;
  }
  const uint64_t units = (size - base + 63) / 64;
  std::vector<bool> live(units, false);
  auto amap_bit = [&](uint64_t off) -> bool {
    const uint64_t k = (off - base) / cover;
    const std::string_view am = r_.Bytes(base + k * cover, disk::kPageSize);
    if (am.empty()) return false;
    const uint64_t u = (off - base - k * cover) / 64;
    return (U8(am)[u / 8] & (0x80 >> (u % 8))) != 0;
  };
  for (const Extent& e : extents_) {
    if (e.ib < base || e.ib + e.size > size) continue;  // reported where found
    uint64_t clear = 0;
    for (uint64_t off = e.ib; off < e.ib + e.size; off += 64) {
      live[(off - base) / 64] = true;
      if (!amap_bit(off)) ++clear;
    }
    if (clear > 0) {
      const uint64_t k = (e.ib - base) / cover;
      V(e.what, std::to_string(clear) + " of its " + std::to_string(e.size / 64) +
                    " 64-byte units are free in AMap @" + Hex(base + k * cover));
    }
  }
  // PMap: a clear bit is a page reserved from the AMap but not in use.
  auto pmap_reserved = [&](uint64_t off) -> bool {
    const uint64_t k = (off - base) / cover / 8 * 8;
    const std::string_view pm = r_.Bytes(base + k * cover + disk::kPageSize, disk::kPageSize);
    if (pm.empty()) return false;
    const uint64_t page = (off - base - k * cover) / disk::kPageSize;
    return (U8(pm)[page / 8] & (0x80 >> (page % 8))) == 0;
  };
  uint64_t free_bytes = 0, pmap_free = 0;
  uint64_t leak_start = 0, leak_len = 0;
  auto flush_leak = [&]() {
    if (leak_len == 0) return;
    const uint64_t k = (leak_start - base) / cover;
    V("AMap @" + Hex(base + k * cover), Hex(leak_start) + ".." + Hex(leak_start + leak_len) + " (" +
                                            std::to_string(leak_len) +
                                            " bytes) marked allocated but nothing lives there");
    leak_len = 0;
  };
  for (uint64_t u = 0; u < units; ++u) {
    const uint64_t off = base + u * 64;
    const bool set = amap_bit(off);
    if (!set) {
      free_bytes += 64;
      flush_leak();
      continue;
    }
    if (live[u] || pmap_reserved(off)) {
      flush_leak();
      continue;
    }
    if (leak_len > 0 && leak_start + leak_len == off && (off - base) % cover != 0) {
      leak_len += 64;
    } else {
      flush_leak();
      leak_start = off;
      leak_len = 64;
    }
  }
  flush_leak();
  if (free_bytes != r_.header().amap_free) {
    V("header", "cbAMapFree " + std::to_string(r_.header().amap_free) + " but the AMaps have " +
                    std::to_string(free_bytes) + " bytes free");
  }
  for (uint64_t off = base; off < size; off += disk::kPageSize) {
    if (!pmap_reserved(off)) continue;
    pmap_free += disk::kPageSize;
    bool all_set = true, any_live = false;
    for (uint64_t u = off; u < off + disk::kPageSize && u < size; u += 64) {
      all_set = all_set && amap_bit(u);
      any_live = any_live || live[(u - base) / 64];
    }
    const uint64_t k = (off - base) / cover / 8 * 8;
    const std::string loc = "PMap page @" + Hex(base + k * cover + disk::kPageSize);
    if (!all_set) V(loc, "marks page " + Hex(off) + " reserved, but the AMap has it free");
    if (any_live) {
      V(loc, "marks page " + Hex(off) + " reserved and free, but something lives there");
    }
  }
  if (pmap_free != r_.header().pmap_free) {
    V("header", "cbPMapFree " + std::to_string(r_.header().pmap_free) + " but the PMaps reserve " +
                    std::to_string(pmap_free) + " free bytes");
  }
  if (pmap_free > 0) {
    Note(std::to_string(pmap_free) +
         " bytes are allocated in the AMap but reserved-and-free in the PMap "
         "(Outlook's page reservation; counted by cbPMapFree)");
  }
}

// ---- Nodes: read everything once ----

void Checker::ReadAllNodes() {
  // Everything but messages, which CheckMessage reads one at a time.
  for (const auto& n : r_.nodes()) {
    const uint32_t type = disk::NidTypeOf(n.nid);
    if (type == disk::kNidTypeNormalMessage || type == disk::kNidTypeAssocMessage) continue;
    if (infos_.count(n.nid)) continue;  // duplicate NID, reported already
    // The name-to-id map's streams are decoded later, so they stay whole.
    const bool digest = n.nid != disk::kNidNameToIdMap;
    infos_.emplace(n.nid, ReadNode(r_, n.nid, n.bid_data, n.bid_sub, kSubnodeDepth, digest));
    NoteSubnodeNids(infos_.at(n.nid));
  }
}

void Checker::NoteSubnodeNids(const NodeInfo& info) {
  for (const auto& child : info.children) {
    NoteNid(child.nid);
    NoteSubnodeNids(child);
  }
}

void Checker::NoteNid(uint64_t nid) {
  auto& m = max_index_[disk::NidTypeOf(nid)];
  if (disk::NidIndexOf(nid) >= m.first) m = {disk::NidIndexOf(nid), nid};
}

void Checker::CheckCounters() {
  const ndb::Header& h = r_.header();
  uint64_t max_bid = 0;
  for (const auto& b : r_.blocks()) max_bid = std::max(max_bid, disk::BidKey(b.bid));
  if (h.bid_next_b <= max_bid) {
    V("header",
      "bidNextB " + Hex(h.bid_next_b) + " is not above the highest block BID " + Hex(max_bid));
  }
  if (h.bid_next_p <= max_page_bid_) {
    V("header",
      "bidNextP " + Hex(h.bid_next_p) + " is not above the highest page BID " + Hex(max_page_bid_));
  }
  // Per NID type, the highest index in use (top-level nodes and, noted while
  // they were read, subnodes).
  for (const auto& n : r_.nodes()) NoteNid(n.nid);
  for (const auto& [type, m] : max_index_) {
    if (h.rgnid[type] < m.first) {
      V("header", "rgnid[" + Hex(type) + "] (" + disk::NidTypeName(type) + ") " +
                      Hex(h.rgnid[type]) + " is below index " + Hex(m.first) + " of NID " +
                      Hex(m.second));
    }
  }
}

// ---- LTP ----

void Checker::EmitNodeErrors(const std::string& loc, const NodeInfo& info) {
  for (const auto& e : info.errors) V(loc, e);
  for (const auto& child : info.children) {
    EmitNodeErrors(loc + " subnode " + Hex(child.nid) + " (" +
                       disk::NidTypeName(disk::NidTypeOf(child.nid)) + ")",
                   child);
  }
}

void Checker::CheckLtp() {
  for (const auto& [nid, info] : infos_) EmitNodeErrors(NodeLoc(nid), info);
}

// ---- Messaging ----

std::string Checker::FolderName(uint64_t nid) const {
  const NodeInfo* info = Info(nid);
  return info != nullptr && info->has_pc ? PropString(info->pc, 0x3001) : std::string();
}

std::string Checker::NodeLoc(uint64_t nid) const {
  std::string s = "node " + Hex(nid) + " (";
  if (const char* special = SpecialNidName(nid)) return s + special + ")";
  const uint32_t type = disk::NidTypeOf(nid);
  const ndb::NodeEntry* n = r_.FindNode(nid);
  auto in = [&](uint64_t folder) {
    const std::string name = FolderName(folder);
    return name.empty() ? " folder " + Hex(folder) : " '" + name + "'";
  };
  switch (type) {
    case disk::kNidTypeNormalFolder:
      return s + "folder '" + FolderName(nid) + "')";
    case disk::kNidTypeSearchFolder:
      return s + "search folder '" + FolderName(nid) + "')";
    case disk::kNidTypeNormalMessage:
      return s + "message" + (n != nullptr && n->nid_parent != 0 ? " in" + in(n->nid_parent) : "") +
             ")";
    case disk::kNidTypeAssocMessage:
      return s + "associated message" +
             (n != nullptr && n->nid_parent != 0 ? " in" + in(n->nid_parent) : "") + ")";
    case disk::kNidTypeHierarchyTable:
      return s + "hierarchy table of" + in(disk::WithNidType(static_cast<uint32_t>(nid), 2)) + ")";
    case disk::kNidTypeContentsTable:
      return s + "contents table of" + in(disk::WithNidType(static_cast<uint32_t>(nid), 2)) + ")";
    case disk::kNidTypeAssocContentsTable:
      return s + "associated contents table of" +
             in(disk::WithNidType(static_cast<uint32_t>(nid), 2)) + ")";
    default:
      return s + disk::NidTypeName(type) + ")";
  }
}

void Checker::CompareRowWithPc(const std::string& loc, const ltp::Table& t, const ltp::Row& row,
                               const std::vector<ltp::Property>& pc, const std::string& what) {
  for (size_t c = 0; c < t.info.columns.size(); ++c) {
    const ltp::Column& col = t.info.columns[c];
    const uint16_t id = static_cast<uint16_t>(col.tag >> 16);
    if (id == 0x67F2 || id == 0x67F3 || !row.cells[c].present) continue;
    const ltp::Property* p = ltp::FindProperty(pc, id);
    if (p == nullptr || p->tag() != col.tag) continue;
    if (p->value == row.cells[c].value) continue;
    auto shown = [&](const std::string& v) {
      return v.size() > 128 ? "[" + std::to_string(v.size()) + " bytes]" : FormatValue(p->type, v);
    };
    const std::string msg = "row " + Hex(row.row_id) + " column " + Hex(col.tag) + " is " +
                            shown(row.cells[c].value) + " but the " + what + " has " +
                            shown(p->value);
    // Outlook lets the message size drift in contents tables
    // (pstsdk-submessage.pst: row 20613, message 20929).
    if (col.tag == 0x0E080003) {
      Note(loc + ": " + msg + " (Outlook lets PidTagMessageSize drift)");
    } else {
      V(loc, msg);
    }
  }
}

void Checker::CheckMessaging() {
  for (uint64_t nid : {uint64_t{disk::kNidMessageStore}, uint64_t{disk::kNidNameToIdMap},
                       uint64_t{disk::kNidRootFolder}}) {
    if (r_.FindNode(nid) == nullptr) V(NodeLoc(nid), "missing (every PST has it)");
  }
  if (const NodeInfo* map = Info(disk::kNidNameToIdMap); map != nullptr && map->has_pc) {
    auto named = ltp::DecodeNameToIdMap(map->pc);
    if (!named.ok()) {
      V(NodeLoc(disk::kNidNameToIdMap), named.status().message());
    } else {
      std::set<uint16_t> ids;
      for (const auto& np : *named) {
        if (!ids.insert(np.id).second) {
          V(NodeLoc(disk::kNidNameToIdMap), "property id " + Hex(np.id) + " mapped twice");
        }
      }
    }
    if (!PropU32(map->pc, 0x0001)) {
      V(NodeLoc(disk::kNidNameToIdMap), "bucket count 0x00010003 missing");
    }
  }
  if (const NodeInfo* store = Info(disk::kNidMessageStore); store != nullptr && store->has_pc) {
    const ltp::Property* rk = ltp::FindProperty(store->pc, 0x0FF9);
    if (rk == nullptr || rk->value.size() != 16) {
      V(NodeLoc(disk::kNidMessageStore),
        "record key 0x0ff90102 missing or not 16 bytes (the provider UID)");
    }
    // Entry IDs of the IPM subtree, Deleted Items and search root: flags(4) +
    // provider UID(16) + NID(4); readpst finds the top folder through 0x35E0.
    for (uint16_t id : {uint16_t{0x35E0}, uint16_t{0x35E3}, uint16_t{0x35E7}}) {
      const ltp::Property* p = ltp::FindProperty(store->pc, id);
      if (p == nullptr) {
        V(NodeLoc(disk::kNidMessageStore), "entry ID " + Hex(id) + " missing");
        continue;
      }
      if (p->value.size() != 24) {
        V(NodeLoc(disk::kNidMessageStore),
          "entry ID " + Hex(id) + " is " + std::to_string(p->value.size()) + " bytes, not 24");
        continue;
      }
      if (rk != nullptr && rk->value.size() == 16 && p->value.compare(4, 16, rk->value) != 0) {
        V(NodeLoc(disk::kNidMessageStore),
          "entry ID " + Hex(id) + " embeds a provider UID other than the record key");
      }
      const uint32_t target = Get32(U8(p->value) + 20);
      if (!IsFolder(target)) {
        V(NodeLoc(disk::kNidMessageStore),
          "entry ID " + Hex(id) + " names " + Hex(target) + ", not an existing folder");
      }
    }
  }
  // Messages first: they count the unread messages their folders must report.
  for (const auto& n : r_.nodes()) {
    const uint32_t type = disk::NidTypeOf(n.nid);
    if (type == disk::kNidTypeNormalMessage || type == disk::kNidTypeAssocMessage) {
      if (type == disk::kNidTypeNormalMessage) ++rep_.messages;
      CheckMessage(n);
    }
  }
  for (const auto& n : r_.nodes()) {
    const uint32_t type = disk::NidTypeOf(n.nid);
    if (type == disk::kNidTypeNormalFolder || type == disk::kNidTypeSearchFolder) {
      if (type == disk::kNidTypeNormalFolder) ++rep_.folders;
      CheckFolder(n);
    } else if (type != disk::kNidTypeNormalMessage && type != disk::kNidTypeAssocMessage &&
               n.nid_parent != 0 && !IsFolder(n.nid_parent)) {
      V(NodeLoc(n.nid), "nidParent " + Hex(n.nid_parent) + " is not an existing folder");
    }
  }
}

void Checker::CheckFolder(const ndb::NodeEntry& n) {
  const std::string loc = NodeLoc(n.nid);
  const bool search = disk::NidTypeOf(n.nid) == disk::kNidTypeSearchFolder;
  const uint32_t nid = static_cast<uint32_t>(n.nid);
  if (n.nid == disk::kNidRootFolder) {
    if (n.nid_parent != disk::kNidRootFolder) {
      V(loc, "nidParent " + Hex(n.nid_parent) + ": the root folder is its own parent");
    }
  } else if (!IsFolder(n.nid_parent) ||
             disk::NidTypeOf(n.nid_parent) != disk::kNidTypeNormalFolder) {
    V(loc, "nidParent " + Hex(n.nid_parent) + " is not an existing folder");
  } else {
    // The parent's hierarchy table lists this folder.
    const NodeInfo* h = Info(disk::WithNidType(n.nid_parent, disk::kNidTypeHierarchyTable));
    if (h != nullptr && h->has_tc) {
      const ltp::Row* row = FindRow(h->tc, n.nid);
      if (row == nullptr) {
        V(loc, "missing from its parent's hierarchy table " +
                   Hex(disk::WithNidType(n.nid_parent, disk::kNidTypeHierarchyTable)));
      } else if (const NodeInfo* me = Info(n.nid); me != nullptr && me->has_pc) {
        CompareRowWithPc(NodeLoc(disk::WithNidType(n.nid_parent, disk::kNidTypeHierarchyTable)),
                         h->tc, *row, me->pc, "folder " + Hex(n.nid));
      }
    }
  }
  if (search) {
    if (Info(disk::WithNidType(nid, disk::kNidTypeSearchContentsTable)) == nullptr) {
      V(loc, "search contents table " +
                 Hex(disk::WithNidType(nid, disk::kNidTypeSearchContentsTable)) + " missing");
    }
    return;
  }
  const NodeInfo* tables[3] = {};
  const uint32_t kinds[3] = {disk::kNidTypeHierarchyTable, disk::kNidTypeContentsTable,
                             disk::kNidTypeAssocContentsTable};
  const char* names[3] = {"hierarchy", "contents", "associated contents"};
  for (int i = 0; i < 3; ++i) {
    const uint32_t tnid = disk::WithNidType(nid, kinds[i]);
    tables[i] = Info(tnid);
    if (tables[i] == nullptr) {
      V(loc, std::string(names[i]) + " table " + Hex(tnid) + " missing");
    } else if (!tables[i]->has_tc) {
      tables[i] = nullptr;  // its own violation was reported
    }
  }
  const NodeInfo* me = Info(n.nid);
  const std::vector<ltp::Property> none;
  const auto& pc = me != nullptr && me->has_pc ? me->pc : none;
  // Hierarchy rows name existing subfolders of this folder, and vice versa.
  if (tables[0] != nullptr) {
    const std::string tloc = NodeLoc(disk::WithNidType(nid, disk::kNidTypeHierarchyTable));
    for (const auto& row : tables[0]->tc.rows) {
      const ndb::NodeEntry* child = r_.FindNode(row.row_id);
      if (child == nullptr || !IsFolder(row.row_id)) {
        V(tloc, "row " + Hex(row.row_id) + " names no existing folder");
      } else if (child->nid_parent != n.nid) {
        V(tloc,
          "row " + Hex(row.row_id) + " names a folder whose parent is " + Hex(child->nid_parent));
      }
    }
    if (auto sub = PropU32(pc, 0x360A); !sub) {
      V(loc, "subfolders flag 0x360a000b missing");
    } else if ((*sub != 0) != !tables[0]->tc.rows.empty()) {
      V(loc, "subfolders flag 0x360a is " + std::string(*sub ? "true" : "false") +
                 " but the hierarchy table has " + std::to_string(tables[0]->tc.rows.size()) +
                 " rows");
    }
  }
  // Contents (normal messages) and associated contents (type 0x08) rows.
  for (int i = 1; i < 3; ++i) {
    if (tables[i] == nullptr) continue;
    const uint32_t want_type = i == 1 ? disk::kNidTypeNormalMessage : disk::kNidTypeAssocMessage;
    const std::string tloc = NodeLoc(disk::WithNidType(nid, kinds[i]));
    for (const auto& row : tables[i]->tc.rows) {
      const ndb::NodeEntry* m = r_.FindNode(row.row_id);
      if (m == nullptr || disk::NidTypeOf(row.row_id) != want_type) {
        V(tloc, "row " + Hex(row.row_id) + " names no existing " +
                    (i == 1 ? "message" : "associated message"));
        continue;
      }
      if (m->nid_parent != n.nid) {
        V(tloc,
          "row " + Hex(row.row_id) + " names a message whose parent is " + Hex(m->nid_parent));
      }
    }
    if (i == 1) {
      // Unread: its messages whose flags lack MSGFLAG_READ (counted by CheckMessage).
      const size_t unread = unread_.count(n.nid) ? unread_.at(n.nid) : 0;
      if (auto u = PropU32(pc, 0x3603); u && *u != unread) {
        V(loc, "unread count 0x3603 is " + std::to_string(*u) + " but " + std::to_string(unread) +
                   " of its messages lack the read flag");
      }
    }
    const uint16_t count_id = i == 1 ? 0x3602 : 0x3617;
    if (auto count = PropU32(pc, count_id); !count) {
      if (i == 1) V(loc, "content count 0x36020003 missing");
    } else if (*count != tables[i]->tc.rows.size()) {
      V(loc, std::string(i == 1 ? "content count 0x3602" : "associated content count 0x3617") +
                 " is " + std::to_string(*count) + " but the " + names[i] + " table has " +
                 std::to_string(tables[i]->tc.rows.size()) + " rows");
    }
  }
}

void Checker::CheckMessage(const ndb::NodeEntry& n) {
  const std::string loc = NodeLoc(n.nid);
  const bool assoc = disk::NidTypeOf(n.nid) == disk::kNidTypeAssocMessage;
  // Read here, checked, and dropped: a store's messages are not all held at once.
  const NodeInfo me = ReadNode(r_, n.nid, n.bid_data, n.bid_sub, kSubnodeDepth, true);
  EmitNodeErrors(loc, me);
  NoteSubnodeNids(me);
  if (!IsFolder(n.nid_parent) || disk::NidTypeOf(n.nid_parent) != disk::kNidTypeNormalFolder) {
    V(loc, "nidParent " + Hex(n.nid_parent) + " is not an existing folder");
  } else {
    const uint32_t tnid = disk::WithNidType(
        n.nid_parent, assoc ? disk::kNidTypeAssocContentsTable : disk::kNidTypeContentsTable);
    if (const NodeInfo* t = Info(tnid); t != nullptr && t->has_tc) {
      const ltp::Row* row = FindRow(t->tc, n.nid);
      if (row == nullptr) {
        V(loc, std::string("missing from its folder's ") +
                   (assoc ? "associated contents" : "contents") + " table " + Hex(tnid));
      } else if (me.has_pc) {
        CompareRowWithPc(NodeLoc(tnid), t->tc, *row, me.pc, "message");
      }
    }
  }
  if (!me.has_pc) return;
  if (auto flags = PropU32(me.pc, 0x0E07); !assoc && flags && (*flags & 1) == 0) {
    ++unread_[n.nid_parent];
  }
  // Posts have no recipients, and Outlook writes them no table
  // (pstsdk-test_unicode.pst); every other message has one.
  const std::string cls = PropString(me.pc, 0x001A);
  ltp::NodeContext ctx{&r_, me.subnodes};
  if (ctx.FindSubnode(disk::kNidRecipientTableTemplate) == nullptr &&
      cls.rfind("IPM.Post", 0) != 0) {
    V(loc, "has no recipient table (subnode 0x692)");
  }
}

// ---- Dump ----

std::string Escape(std::string_view s, bool bytes) {
  std::string out = "\"";
  for (char ch : s) {
    const auto c = static_cast<uint8_t>(ch);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += ch;
    } else if (c < 0x20 || c == 0x7F || (bytes && c >= 0x80)) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out += ch;
    }
  }
  return out + "\"";
}

std::string HexBytes(std::string_view s) {
  constexpr size_t kMax = 256;
  std::string out;
  char buf[4];
  for (size_t i = 0; i < std::min(s.size(), kMax); ++i) {
    std::snprintf(buf, sizeof buf, "%02x", static_cast<uint8_t>(s[i]));
    out += buf;
  }
  if (s.size() > kMax) {
    char tail[48];
    std::snprintf(tail, sizeof tail, "... crc=%08x", disk::Crc(s.data(), s.size()));
    out += tail;
  }
  return out;
}

std::string FormatTime(uint64_t ft) {
  if (ft == 0) return "0";
  // FILETIME: 100 ns ticks since 1601-01-01.
  constexpr uint64_t kEpochDiff = 116444736000000000ull;
  if (ft < kEpochDiff) return "filetime:" + std::to_string(ft);
  const time_t secs = static_cast<time_t>((ft - kEpochDiff) / 10000000);
  struct tm tm {};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%07uZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<unsigned>((ft - kEpochDiff) % 10000000));
  return buf;
}

std::string FormatGuid(std::string_view g) {
  if (g.size() != 16) return HexBytes(g);
  const uint8_t* p = U8(g);
  char buf[48];
  std::snprintf(buf, sizeof buf, "{%08x-%04x-%04x-%02x%02x-%02x%02x%02x%02x%02x%02x}", Get32(p),
                Get16(p + 4), Get16(p + 6), p[8], p[9], p[10], p[11], p[12], p[13], p[14], p[15]);
  return buf;
}

std::string FormatScalar(uint16_t type, std::string_view v) {
  const uint8_t* p = U8(v);
  char buf[64];
  if (disk::FixedSizeOf(type) != 0 && v.size() != disk::FixedSizeOf(type)) {
    return "bad-size " + HexBytes(v);
  }
  switch (type) {
    case disk::kPtypInteger16:
      return std::to_string(Get16(p));
    case disk::kPtypInteger32:
      return std::to_string(Get32(p));
    case disk::kPtypErrorCode:
      return Hex(Get32(p));
    case disk::kPtypBoolean:
      return p[0] == 0 ? "false" : p[0] == 1 ? "true" : Hex(p[0]);
    case disk::kPtypInteger64:
    case disk::kPtypCurrency:
      return std::to_string(static_cast<int64_t>(Get64(p)));
    case disk::kPtypFloating32: {
      float f;
      std::memcpy(&f, p, 4);
      std::snprintf(buf, sizeof buf, "%.9g", f);
      return buf;
    }
    case disk::kPtypFloating64:
    case disk::kPtypFloatingTime: {
      double d;
      std::memcpy(&d, p, 8);
      std::snprintf(buf, sizeof buf, "%.17g", d);
      return buf;
    }
    case disk::kPtypTime:
      return FormatTime(Get64(p));
    case disk::kPtypGuid:
      return FormatGuid(v);
    case disk::kPtypString:
      return Escape(disk::Utf16leToUtf8(v), false);
    case disk::kPtypString8:
      return Escape(v, true);
    default:
      return "[" + std::to_string(v.size()) + "] " + HexBytes(v);
  }
}

std::string FormatValue(uint16_t type, std::string_view v) {
  if ((type & 0x1000) == 0) return FormatScalar(type, v);
  auto values = ltp::DecodeMultiValue(type, v);
  if (!values.ok()) return "bad-multivalue " + HexBytes(v);
  std::string out = "[" + std::to_string(values->size()) + "] {";
  for (size_t i = 0; i < values->size(); ++i) {
    out += (i ? ", " : "") + FormatScalar(type & ~0x1000, (*values)[i]);
  }
  return out + "}";
}

// DumpStructure's format (1). One item per line, two spaces of indent per level:
//   # mbxmerge PST structure dump, format 1[ (volatile values masked)]
//   node 0x%08x TYPE parent=0x%08x KIND                 every NBT node, in NID order
// where TYPE is disk::NidTypeName and KIND is one of
//   PC props=N         then  prop 0x%08x TYPENAME VALUE       properties in tag order
//   TC cols=N rows=M   then  col 0x%08x TYPENAME ib=I cb=C bit=B   columns in TCINFO order
//                            row 0x%08x                        rows in row id order
//                              0x%08x VALUE                    present cells, column order
//   heap client=0xNN bytes=N HEX   a heap that is neither PC nor TC (first 64 bytes)
//   data bytes=N HEX               data that is not a heap (first 64 bytes, "..." if longer)
//   empty                          bidData 0
// followed by "error MESSAGE" lines for what could not be read, and by
//   subnode 0x%08x TYPE KIND       subnodes in NID order, their content one level deeper.
// VALUE: integers in decimal, ErrorCode in hex, Boolean true/false, floats %.9g/%.17g,
// Time as ISO 8601 UTC with 100 ns digits ("0" when zero), Guid as {...}, strings quoted
// with \" \\ \xNN escapes, Binary and other types "[N] HEX" (first 256 bytes, then
// "... crc=%08x" of the whole value), multi-valued "[N] {v1, v2}", masked "<masked>".
class Dumper {
 public:
  Dumper(const ndb::NdbReader& r, bool mask) : r_(r), mask_(mask) {}

  std::string Run() {
    // The provider UID: any binary that embeds it is store-specific.
    if (const ndb::NodeEntry* store = r_.FindNode(disk::kNidMessageStore)) {
      NodeInfo info = ReadNode(r_, store->nid, store->bid_data, store->bid_sub, 0, false);
      if (const ltp::Property* rk = ltp::FindProperty(info.pc, 0x0FF9);
          rk != nullptr && rk->value.size() == 16) {
        uid_ = rk->value;
      }
    }
    out_ = "# mbxmerge PST structure dump, format 1";
    out_ += mask_ ? " (volatile values masked)\n" : "\n";
    for (const auto& n : r_.nodes()) {
      NodeInfo info = ReadNode(r_, n.nid, n.bid_data, n.bid_sub, kSubnodeDepth, false);
      char head[96];
      std::snprintf(head, sizeof head, "node 0x%08" PRIx64 " %s parent=0x%08x ", n.nid,
                    disk::NidTypeName(disk::NidTypeOf(n.nid)), n.nid_parent);
      Emit(head, info, "  ");
    }
    return out_;
  }

 private:
  bool Volatile(uint32_t tag, std::string_view value) const {
    if (!mask_) return false;
    const uint16_t id = static_cast<uint16_t>(tag >> 16),
                   type = static_cast<uint16_t>(tag & 0xFFFF);
    const uint16_t base = type & ~0x1000;
    if (base == disk::kPtypTime || base == disk::kPtypGuid) return true;
    switch (id) {
      case 0x0E34:  // PidTagReplVersionHistory: embeds a per-store GUID
      case 0x0FF9:  // PidTagRecordKey
      case 0x0FFF:  // PidTagEntryId
      case 0x300B:  // PidTagSearchKey
      case 0x65E0:  // PidTagSourceKey
      case 0x65E1:  // PidTagParentSourceKey
      case 0x65E2:  // PidTagChangeKey
      case 0x65E3:  // PidTagPredecessorChangeList
        return true;
      default:
        break;
    }
    return uid_.size() == 16 && value.find(uid_) != std::string_view::npos;
  }

  std::string Value(uint32_t tag, std::string_view v) const {
    return Volatile(tag, v) ? "<masked>" : FormatValue(static_cast<uint16_t>(tag & 0xFFFF), v);
  }

  void Emit(const std::string& head, const NodeInfo& info, const std::string& ind) {
    char buf[128];
    if (info.has_pc) {
      out_ += head + "PC props=" + std::to_string(info.pc.size()) + "\n";
      for (const auto& p : info.pc) {
        std::snprintf(buf, sizeof buf, "%sprop 0x%08x %s ", ind.c_str(), p.tag(),
                      disk::PropertyTypeName(p.type));
        out_ += buf + Value(p.tag(), p.value) + "\n";
      }
    } else if (info.has_tc) {
      const ltp::Table& t = info.tc;
      out_ += head + "TC cols=" + std::to_string(t.info.columns.size()) +
              " rows=" + std::to_string(t.rows.size()) + "\n";
      for (const auto& c : t.info.columns) {
        std::snprintf(buf, sizeof buf, "%scol 0x%08x %s ib=%u cb=%u bit=%u\n", ind.c_str(), c.tag,
                      disk::PropertyTypeName(c.type()), c.ib, c.cb, c.ibit);
        out_ += buf;
      }
      for (const auto& row : t.rows) {
        std::snprintf(buf, sizeof buf, "%srow 0x%08x\n", ind.c_str(), row.row_id);
        out_ += buf;
        for (size_t i = 0; i < t.info.columns.size(); ++i) {
          if (!row.cells[i].present) continue;
          const ltp::Column& c = t.info.columns[i];
          std::snprintf(buf, sizeof buf, "%s  0x%08x ", ind.c_str(), c.tag);
          out_ += buf + Value(c.tag, row.cells[i].value) + "\n";
        }
      }
    } else if (info.heap_sig != 0) {
      out_ += head + "heap client=" + Hex(info.heap_sig) +
              " bytes=" + std::to_string(info.raw_size) + " " + HexBytes(info.raw) +
              (info.raw_size > info.raw.size() ? "...\n" : "\n");
    } else if (info.raw_size > 0) {
      const bool masked = mask_ && uid_.size() == 16 && info.raw.find(uid_) != std::string::npos;
      out_ += head + "data bytes=" + std::to_string(info.raw_size) + " " +
              (masked ? std::string("<masked>") : HexBytes(info.raw)) +
              (info.raw_size > info.raw.size() ? "...\n" : "\n");
    } else {
      out_ += head + "empty\n";
    }
    for (const auto& e : info.errors) out_ += ind + "error " + e + "\n";
    for (const auto& child : info.children) {
      std::snprintf(buf, sizeof buf, "%ssubnode 0x%08" PRIx64 " %s ", ind.c_str(), child.nid,
                    disk::NidTypeName(disk::NidTypeOf(child.nid)));
      Emit(buf, child, ind + "  ");
    }
  }

  const ndb::NdbReader& r_;
  bool mask_;
  std::string uid_;
  std::string out_;
};

}  // namespace

namespace {

// The checker's rules are [MS-PST]'s, for 512-byte pages; Outlook 2013's
// 4 KiB-page OSTs are read, not judged.
Result<ndb::NdbReader> OpenCheckable(const std::string& path) {
  MBX_ASSIGN_OR_RETURN(ndb::NdbReader reader, ndb::NdbReader::Open(path));
  if (reader.four_k_pages()) {
    return Status::Unsupported("'" + path +
                               "' is a 4 KiB-page Unicode OST (wVer 36); only 512-byte-page files "
                               "(wVer 23) can be checked");
  }
  return reader;
}

}  // namespace

Result<CheckReport> CheckPst(const std::string& path) {
  MBX_ASSIGN_OR_RETURN(ndb::NdbReader reader, OpenCheckable(path));
  CheckReport report;
  Checker(reader, report).Run();
  return report;
}

Result<std::string> DumpStructure(const std::string& path, bool mask_volatile) {
  MBX_ASSIGN_OR_RETURN(ndb::NdbReader reader, OpenCheckable(path));
  MBX_RETURN_IF_ERROR(reader.LoadTrees());
  if (reader.crypt() == disk::CryptMethod::kCyclic) {
    return Status::Unsupported(path + ": cyclic block encoding is not supported");
  }
  return Dumper(reader, mask_volatile).Run();
}

}  // namespace mbx::pst::check
