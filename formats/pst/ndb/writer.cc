#include "formats/pst/ndb/writer.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>

namespace mbx::pst::ndb {

using namespace disk;  // NOLINT: this file is the disk layer's main client

namespace {

constexpr size_t kWriteBuffer = 1 << 20;
// Outlook's block reference count is the number of referers plus one.
constexpr uint16_t kInitialRef = 2;

uint64_t AlignUp(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }
uint64_t RangeBase(uint64_t r) { return kFirstAMapOffset + r * kAMapCoverage; }

// Map pages that open AMap range `r`, in file order after the AMap itself
// ([MS-PST] 2.2.2.7.3-5): a PMap every 8 ranges, an FMap every 496 ranges
// from the 128th, an FPMap every 496 x 8 ranges from the 8192nd.
bool HasPMap(uint64_t r) { return r % 8 == 0; }
bool HasFMap(uint64_t r) { return r >= 128 && (r - 128) % 496 == 0; }
bool HasFPMap(uint64_t r) { return r >= 8192 && (r - 8192) % (496 * 8) == 0; }

void FinishPage(uint8_t* p, PageType type, uint64_t ib, uint64_t bid) {
  p[page::kType] = static_cast<uint8_t>(type);
  p[page::kTypeRepeat] = static_cast<uint8_t>(type);
  const bool map = type == PageType::kAMap || type == PageType::kPMap || type == PageType::kFMap ||
                   type == PageType::kFPMap;
  Put16(p + page::kSig, map ? 0 : Signature(ib, bid));
  Put32(p + page::kCrc, Crc(p, page::kTrailer));
  Put64(p + page::kBid, bid);
}

}  // namespace

Result<std::unique_ptr<NdbWriter>> NdbWriter::Create(const std::string& path, Options options) {
  if (options.crypt == CryptMethod::kCyclic)
    return Status::Unsupported("PST writer: the cyclic (high) encoding is not supported");
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Status::FromErrno("cannot create '" + path + "'", errno);
  std::unique_ptr<NdbWriter> w(new NdbWriter(path, fd, options));
  MBX_RETURN_IF_ERROR(w->StartRange(0));
  return w;
}

NdbWriter::NdbWriter(std::string path, int fd, Options options)
    : path_(std::move(path)), fd_(fd), options_(options) {
  // Outlook's fresh-store counters ([MS-PST] 2.2.2.6 rgnid). They hold the
  // last index handed out: folders after 0x400, search folders after 0x4000,
  // messages after 0x10000, associated ones after 0x8000.
  for (auto& n : next_nid_index_) n = 0x400;
  next_nid_index_[kNidTypeSearchFolder] = 0x4000;
  next_nid_index_[kNidTypeNormalMessage] = 0x10000;
  next_nid_index_[kNidTypeAssocMessage] = 0x8000;
}

// Reads a spilled run back in order, a few thousand entries at a time.
template <typename T>
class NdbWriter::RunReader {
 public:
  RunReader(int fd, Run run) : fd_(fd), at_(run.at), left_(run.count) {}
  bool done() const { return pos_ == buf_.size() && left_ == 0; }
  // The next entry; call only when !done().
  Result<T> Next() {
    if (pos_ == buf_.size()) {
      const size_t n = std::min<size_t>(left_, 4096);
      std::string raw(n * T::kRecord, '\0');
      MBX_ASSIGN_OR_RETURN(size_t got, fs::PreadUpTo(fd_, raw.data(), raw.size(), at_,
                                                     "the PST writer's index scratch file"));
      if (got < raw.size())
        return Status::IOError("PST writer: its index scratch file is cut short");
      buf_.clear();
      for (size_t i = 0; i < n; ++i)
        buf_.push_back(T::Decode(reinterpret_cast<const uint8_t*>(raw.data()) + i * T::kRecord));
      pos_ = 0;
      at_ += raw.size();
      left_ -= n;
    }
    return buf_[pos_++];
  }
  // The next entry's key without taking it; call only when !done().
  Result<uint64_t> PeekKey() {
    if (pos_ == buf_.size()) {
      MBX_ASSIGN_OR_RETURN(T t, Next());
      --pos_;
      return t.key();
    }
    return buf_[pos_].key();
  }

 private:
  int fd_;
  uint64_t at_;
  size_t left_;
  std::vector<T> buf_;
  size_t pos_ = 0;
};

template <typename T>
Status NdbWriter::Spill(std::vector<T>& entries, std::vector<Run>& runs) {
  if (!scratch_.valid()) {
    MBX_ASSIGN_OR_RETURN(scratch_, fs::OpenScratch(fs::Dirname(path_)));
  }
  std::string raw(entries.size() * T::kRecord, '\0');
  for (size_t i = 0; i < entries.size(); ++i)
    entries[i].Encode(reinterpret_cast<uint8_t*>(raw.data()) + i * T::kRecord);
  MBX_RETURN_IF_ERROR(fs::PwriteAll(scratch_.get(), raw, scratch_end_,
                                    "the PST writer's index scratch file beside '" + path_ + "'"));
  runs.push_back({scratch_end_, entries.size()});
  scratch_end_ += raw.size();
  entries.clear();
  return Status::Ok();
}

NdbWriter::~NdbWriter() {
  if (fd_ >= 0) ::close(fd_);
}

Status NdbWriter::PWrite(uint64_t ib, std::string_view bytes) {
  const uint64_t end = buf_ib_ + buf_.size();
  if (!buf_.empty() && ib >= end && ib - end < kPageSize &&
      buf_.size() + bytes.size() < kWriteBuffer) {
    buf_.append(ib - end, '\0');
    buf_.append(bytes);
    return Status::Ok();
  }
  MBX_RETURN_IF_ERROR(FlushBuffer());
  buf_ib_ = ib;
  buf_.assign(bytes);
  return Status::Ok();
}

Status NdbWriter::FlushBuffer() {
  MBX_RETURN_IF_ERROR(fs::PwriteAll(fd_, buf_, buf_ib_, "'" + path_ + "'"));
  buf_.clear();
  return Status::Ok();
}

void NdbWriter::MarkAllocated(uint64_t ib, uint64_t size) {
  const uint64_t r = (ib - kFirstAMapOffset) / kAMapCoverage;
  auto& bits = amap_bits_[r];
  const uint64_t first = (ib - RangeBase(r)) / 64;
  const uint64_t count = (size + 63) / 64;
  for (uint64_t i = first; i < first + count; ++i)
    bits[i / 8] |= static_cast<uint8_t>(0x80 >> (i % 8));
}

Status NdbWriter::StartRange(uint64_t r) {
  const uint64_t base = RangeBase(r);
  amap_bits_.resize(r + 1, std::vector<uint8_t>(496, 0));
  uint64_t at = base + kPageSize;
  if (HasPMap(r)) at += kPageSize;
  if (HasFMap(r)) at += kPageSize;
  if (HasFPMap(r)) at += kPageSize;
  MarkAllocated(base, at - base);
  next_ = at;
  eof_ = base + kAMapCoverage;
  return Status::Ok();
}

Result<uint64_t> NdbWriter::Allocate(size_t size, bool is_page) {
  // Space is handed out append-only, so the current range is the last one.
  const uint64_t r = amap_bits_.size() - 1;
  uint64_t at = is_page ? AlignUp(next_, kPageSize) : next_;
  if (at + size > RangeBase(r) + kAMapCoverage) {
    MBX_RETURN_IF_ERROR(StartRange(r + 1));
    at = is_page ? AlignUp(next_, kPageSize) : next_;
  }
  next_ = at + size;
  MarkAllocated(at, size);
  return at;
}

Result<uint64_t> NdbWriter::WriteRawBlock(std::string_view payload, bool internal) {
  if (finished_) return Status::InvalidArgument("PST writer: write after Finish");
  if (payload.size() > kMaxBlockPayload)
    return Status::InvalidArgument("PST writer: block payload over 8,176 bytes");
  const uint64_t bid = next_bid_ | (internal ? kBidInternalBit : 0);
  next_bid_ += 4;
  const size_t stored = BlockStoredSize(payload.size());
  MBX_ASSIGN_OR_RETURN(uint64_t ib, Allocate(stored, false));
  std::string block(stored, '\0');
  auto* p = reinterpret_cast<uint8_t*>(block.data());
  std::memcpy(p, payload.data(), payload.size());
  if (!internal) EncodeBlock(options_.crypt, p, payload.size(), bid);
  uint8_t* t = p + stored - kBlockTrailerSize;
  Put16(t, static_cast<uint16_t>(payload.size()));
  Put16(t + 2, Signature(ib, bid));
  Put32(t + 4, Crc(p, payload.size()));
  Put64(t + 8, bid);
  MBX_RETURN_IF_ERROR(PWrite(ib, block));
  if (blocks_.size() >= options_.spill_entries) MBX_RETURN_IF_ERROR(Spill(blocks_, block_runs_));
  blocks_.push_back({bid, ib, static_cast<uint16_t>(payload.size()), kInitialRef});
  return bid;
}

Result<uint64_t> NdbWriter::WriteBlock(std::string_view payload) {
  return WriteRawBlock(payload, false);
}

Result<uint64_t> NdbWriter::WriteData(std::string_view data) {
  if (data.size() <= kMaxBlockPayload) return WriteBlock(data);
  std::vector<uint64_t> bids, sizes;
  bids.reserve(data.size() / kMaxBlockPayload + 1);
  for (size_t off = 0; off < data.size(); off += kMaxBlockPayload) {
    const std::string_view part = data.substr(off, kMaxBlockPayload);
    MBX_ASSIGN_OR_RETURN(uint64_t bid, WriteBlock(part));
    bids.push_back(bid);
    sizes.push_back(part.size());
  }
  return WriteXTree(bids, sizes);
}

Result<uint64_t> NdbWriter::WriteBlocks(const std::vector<std::string>& blocks) {
  std::vector<uint64_t> bids, sizes;
  for (const auto& b : blocks) {
    MBX_ASSIGN_OR_RETURN(uint64_t bid, WriteBlock(b));
    bids.push_back(bid);
    sizes.push_back(b.size());
  }
  return WriteTree(bids, sizes);
}

Result<uint64_t> NdbWriter::WriteTree(const std::vector<uint64_t>& bids,
                                      const std::vector<uint64_t>& sizes) {
  if (bids.empty()) return uint64_t{0};
  if (bids.size() == 1) return bids[0];
  return WriteXTree(bids, sizes);
}

// One XBLOCK over up to 1,021 data blocks; above that an XXBLOCK over XBLOCKs
// ([MS-PST] 2.2.2.8.3.1-2). lcbTotal is the byte count of the data below, summed
// from `sizes` (heap and row blocks are not full, so it cannot be derived from
// the block count).
Result<uint64_t> NdbWriter::WriteXTree(const std::vector<uint64_t>& bids,
                                       const std::vector<uint64_t>& sizes) {
  uint64_t total = 0;
  for (uint64_t n : sizes) total += n;
  if (total > 0xFFFFFFFFull) return Status::Unsupported("PST writer: one value over 4 GiB");
  auto xblock = [&](size_t from, size_t to, uint32_t bytes, uint8_t lvl) -> Result<uint64_t> {
    std::string s;
    ByteWriter w(s);
    w.U8(kBlockTypeXBlock);
    w.U8(lvl);
    w.U16(static_cast<uint16_t>(to - from));
    w.U32(bytes);
    for (size_t i = from; i < to; ++i) w.U64(bids[i]);
    return WriteRawBlock(s, true);
  };
  if (bids.size() <= kMaxXBlockEntries)
    return xblock(0, bids.size(), static_cast<uint32_t>(total), 1);
  if (bids.size() > kMaxXBlockEntries * kMaxXBlockEntries)
    return Status::Unsupported("PST writer: value too large for an XXBLOCK");
  std::vector<uint64_t> xbids;
  for (size_t from = 0; from < bids.size(); from += kMaxXBlockEntries) {
    const size_t to = std::min(bids.size(), from + kMaxXBlockEntries);
    uint64_t bytes = 0;
    for (size_t i = from; i < to; ++i) bytes += sizes[i];
    MBX_ASSIGN_OR_RETURN(uint64_t x, xblock(from, to, static_cast<uint32_t>(bytes), 1));
    xbids.push_back(x);
  }
  std::string s;
  ByteWriter w(s);
  w.U8(kBlockTypeXBlock);
  w.U8(2);
  w.U16(static_cast<uint16_t>(xbids.size()));
  w.U32(static_cast<uint32_t>(total));
  for (uint64_t b : xbids) w.U64(b);
  return WriteRawBlock(s, true);
}

Result<uint64_t> NdbWriter::WriteSubnodes(std::vector<SubnodeEntry> entries) {
  if (entries.empty()) return uint64_t{0};
  std::sort(entries.begin(), entries.end(),
            [](const SubnodeEntry& a, const SubnodeEntry& b) { return a.nid < b.nid; });
  for (size_t i = 1; i < entries.size(); ++i)
    if (entries[i].nid == entries[i - 1].nid)
      return Status::InvalidArgument("PST writer: duplicate subnode NID");
  return WriteSubnodeLevel(entries);
}

// SLBLOCKs of up to 340 entries; one SIBLOCK above them (up to 510 SLBLOCKs,
// 173,400 subnodes: more than any message has).
Result<uint64_t> NdbWriter::WriteSubnodeLevel(std::vector<SubnodeEntry>& entries) {
  std::vector<std::pair<uint32_t, uint64_t>> leaves;
  for (size_t from = 0; from < entries.size(); from += kMaxSlEntries) {
    const size_t to = std::min(entries.size(), from + kMaxSlEntries);
    std::string s;
    ByteWriter w(s);
    w.U8(kBlockTypeSubnode);
    w.U8(0);
    w.U16(static_cast<uint16_t>(to - from));
    w.U32(0);
    for (size_t i = from; i < to; ++i) {
      w.U64(entries[i].nid);
      w.U64(entries[i].bid_data);
      w.U64(entries[i].bid_sub);
    }
    MBX_ASSIGN_OR_RETURN(uint64_t bid, WriteRawBlock(s, true));
    leaves.emplace_back(entries[from].nid, bid);
  }
  if (leaves.size() == 1) return leaves[0].second;
  if (leaves.size() > kMaxSiEntries)
    return Status::Unsupported("PST writer: too many subnodes in one node");
  std::string s;
  ByteWriter w(s);
  w.U8(kBlockTypeSubnode);
  w.U8(1);
  w.U16(static_cast<uint16_t>(leaves.size()));
  w.U32(0);
  for (const auto& [nid, bid] : leaves) {
    w.U64(nid);
    w.U64(bid);
  }
  return WriteRawBlock(s, true);
}

Status NdbWriter::AddRef(uint64_t bid) {
  if (bid == 0 || bid >= next_bid_)
    return Status::InvalidArgument("PST writer: AddRef of unknown block");
  if (!blocks_.empty() && bid >= blocks_.front().bid) {
    auto it = std::lower_bound(blocks_.begin(), blocks_.end(), bid,
                               [](const BlockInfo& b, uint64_t v) { return b.bid < v; });
    if (it == blocks_.end() || it->bid != bid)
      return Status::InvalidArgument("PST writer: AddRef of unknown block");
    ++it->cref;
    return Status::Ok();
  }
  ++spilled_refs_[bid];
  return Status::Ok();
}

Status NdbWriter::AddNode(uint32_t nid, uint64_t bid_data, uint64_t bid_sub, uint32_t nid_parent) {
  if (nodes_.size() >= options_.spill_entries) {
    std::sort(nodes_.begin(), nodes_.end(),
              [](const NodeInfo& a, const NodeInfo& b) { return a.nid < b.nid; });
    MBX_RETURN_IF_ERROR(Spill(nodes_, node_runs_));
  }
  nodes_.push_back({nid, nid_parent, bid_data, bid_sub});
  ++node_count_;
  return Status::Ok();
}

uint32_t NdbWriter::AllocateNid(uint32_t type) {
  return MakeNid(type & 0x1F, ++next_nid_index_[type & 0x1F]);
}

void NdbWriter::SetLastNidIndex(uint32_t type, uint32_t index) {
  next_nid_index_[type & 0x1F] = index;
}

Result<NdbWriter::PageRef> NdbWriter::WriteBtPage(PageType type, uint8_t level,
                                                  const uint8_t* entries, size_t count,
                                                  size_t entry_size, size_t max_entries,
                                                  uint64_t first_key) {
  uint8_t p[kPageSize] = {};
  if (count != 0) std::memcpy(p, entries, count * entry_size);
  p[page::kCEnt] = static_cast<uint8_t>(count);
  p[page::kCEntMax] = static_cast<uint8_t>(max_entries);
  p[page::kCbEnt] = static_cast<uint8_t>(entry_size);
  p[page::kCLevel] = level;
  MBX_ASSIGN_OR_RETURN(uint64_t ib, Allocate(kPageSize, true));
  const uint64_t bid = next_page_bid_++;
  FinishPage(p, type, ib, bid);
  MBX_RETURN_IF_ERROR(PWrite(ib, std::string_view(reinterpret_cast<char*>(p), kPageSize)));
  return PageRef{first_key, bid, ib};
}

// Builds a B-tree bottom-up from sorted leaf entries: full pages, one level
// of intermediate pages per factor of 20. Leaves are serialized a page at a
// time, so the only per-entry memory is the caller's index.
template <typename Leaf>
Result<NdbWriter::PageRef> NdbWriter::WriteBTree(PageType type, size_t count,
                                                 size_t leaf_entry_size, size_t leaf_max,
                                                 const Leaf& leaf) {
  std::vector<PageRef> level_refs;
  uint8_t entries[kPageSize] = {};
  if (count == 0) return WriteBtPage(type, 0, entries, 0, leaf_entry_size, leaf_max, 0);
  for (size_t from = 0; from < count; from += leaf_max) {
    const size_t to = std::min(count, from + leaf_max);
    std::memset(entries, 0, sizeof(entries));
    uint64_t first_key = 0;
    for (size_t i = from; i < to; ++i) {
      const uint64_t key = leaf(i, entries + (i - from) * leaf_entry_size);
      if (i == from) first_key = key;
    }
    MBX_ASSIGN_OR_RETURN(
        PageRef r, WriteBtPage(type, 0, entries, to - from, leaf_entry_size, leaf_max, first_key));
    level_refs.push_back(r);
  }
  uint8_t level = 0;
  while (level_refs.size() > 1) {
    ++level;
    std::vector<PageRef> up;
    for (size_t from = 0; from < level_refs.size(); from += kBtEntryMax) {
      const size_t to = std::min(level_refs.size(), from + kBtEntryMax);
      std::memset(entries, 0, sizeof(entries));
      for (size_t i = from; i < to; ++i) {
        uint8_t* e = entries + (i - from) * kBtEntrySize;
        Put64(e, level_refs[i].key);
        Put64(e + 8, level_refs[i].bid);
        Put64(e + 16, level_refs[i].ib);
      }
      MBX_ASSIGN_OR_RETURN(PageRef r, WriteBtPage(type, level, entries, to - from, kBtEntrySize,
                                                  kBtEntryMax, level_refs[from].key));
      up.push_back(r);
    }
    level_refs = std::move(up);
  }
  return level_refs[0];
}

Status NdbWriter::WriteMapPages() {
  const uint64_t ranges = amap_bits_.size();
  for (uint64_t r = 0; r < ranges; ++r) {
    const uint64_t base = RangeBase(r);
    uint8_t p[kPageSize] = {};
    std::memcpy(p, amap_bits_[r].data(), 496);
    FinishPage(p, PageType::kAMap, base, base);
    MBX_RETURN_IF_ERROR(PWrite(base, std::string_view(reinterpret_cast<char*>(p), kPageSize)));
    uint64_t at = base + kPageSize;
    // PMaps, FMaps and FPMaps are deprecated; Outlook fills them with 0xFF
    // ("all allocated", "no free run"), as it does the header's rgbFM/rgbFP.
    auto filler = [&](PageType type) -> Status {
      uint8_t q[kPageSize];
      std::memset(q, 0xFF, 496);
      std::memset(q + 496, 0, kPageTrailerSize);
      FinishPage(q, type, at, at);
      MBX_RETURN_IF_ERROR(PWrite(at, std::string_view(reinterpret_cast<char*>(q), kPageSize)));
      at += kPageSize;
      return Status::Ok();
    };
    if (HasPMap(r)) MBX_RETURN_IF_ERROR(filler(PageType::kPMap));
    if (HasFMap(r)) MBX_RETURN_IF_ERROR(filler(PageType::kFMap));
    if (HasFPMap(r)) MBX_RETURN_IF_ERROR(filler(PageType::kFPMap));
  }
  // The density list: empty, which tells Outlook to rebuild it when it needs one.
  uint8_t d[kPageSize] = {};
  FinishPage(d, PageType::kDList, kDListOffset, next_page_bid_);
  return PWrite(kDListOffset, std::string_view(reinterpret_cast<char*>(d), kPageSize));
}

Status NdbWriter::WriteHeader(const PageRef& nbt, const PageRef& bbt) {
  uint8_t h[kHeaderSize] = {};
  Put32(h + header::kMagic, header::kMagicValue);
  Put16(h + header::kMagicClient, header::kMagicClientValue);
  Put16(h + header::kVer, header::kVerUnicode);
  Put16(h + header::kVerClient, header::kVerClientValue);
  h[header::kPlatformCreate] = 1;
  h[header::kPlatformAccess] = 1;
  Put64(h + header::kBidNextP, next_page_bid_);
  Put32(h + header::kUnique, static_cast<uint32_t>(node_count_));
  for (int t = 0; t < 32; ++t) Put32(h + header::kRgnid + 4 * t, next_nid_index_[t]);
  uint8_t* root = h + header::kRoot;
  uint64_t free_bytes = 0;
  for (const auto& bits : amap_bits_)
    for (uint8_t b : bits) free_bytes += 64 * (8 - static_cast<uint64_t>(__builtin_popcount(b)));
  Put64(root + header::kRootFileEof, eof_);
  Put64(root + header::kRootAMapLast, RangeBase(amap_bits_.size() - 1));
  Put64(root + header::kRootAMapFree, free_bytes);
  Put64(root + header::kRootPMapFree, 0);
  Put64(root + header::kRootNbt, nbt.bid);
  Put64(root + header::kRootNbt + 8, nbt.ib);
  Put64(root + header::kRootBbt, bbt.bid);
  Put64(root + header::kRootBbt + 8, bbt.ib);
  root[header::kRootAMapValid] = header::kAMapValid;
  std::memset(h + header::kRgbFM, 0xFF, 128);
  std::memset(h + header::kRgbFP, 0xFF, 128);
  h[header::kSentinel] = 0x80;
  h[header::kCryptMethod] = static_cast<uint8_t>(options_.crypt);
  Put64(h + header::kBidNextB, next_bid_);
  Put32(h + header::kCrcPartial, Crc(h + 8, header::kCrcPartialLen));
  Put32(h + header::kCrcFull, Crc(h + 8, header::kCrcFullLen));
  return PWrite(0, std::string_view(reinterpret_cast<char*>(h), kHeaderSize));
}

Status NdbWriter::Finish() {
  if (finished_) return Status::InvalidArgument("PST writer: Finish called twice");
  // Nodes: the spilled runs and the newest entries, each sorted, merged by
  // NID. Blocks: the spilled runs and the newest entries, already in BID order.
  std::sort(nodes_.begin(), nodes_.end(),
            [](const NodeInfo& a, const NodeInfo& b) { return a.nid < b.nid; });
  std::vector<RunReader<NodeInfo>> node_runs;
  for (const Run& r : node_runs_) node_runs.emplace_back(scratch_.get(), r);
  size_t node_pos = 0;
  Status read_error;
  uint64_t last_nid = 0, duplicate = 0;
  auto next_node = [&](size_t, uint8_t* e) -> uint64_t {
    // The smallest head among the runs and the in-memory entries.
    int best = -1;
    uint64_t best_key = node_pos < nodes_.size() ? nodes_[node_pos].nid : UINT64_MAX;
    for (size_t k = 0; k < node_runs.size(); ++k) {
      if (node_runs[k].done()) continue;
      auto key = node_runs[k].PeekKey();
      if (!key.ok()) {
        read_error = key.status();
        return 0;
      }
      if (*key < best_key) {
        best_key = *key;
        best = static_cast<int>(k);
      }
    }
    NodeInfo n{};
    if (best < 0) {
      n = nodes_[node_pos++];
    } else {
      auto got = node_runs[static_cast<size_t>(best)].Next();
      if (!got.ok()) {
        read_error = got.status();
        return 0;
      }
      n = *got;
    }
    if (n.nid == last_nid && last_nid != 0 && duplicate == 0) duplicate = n.nid;
    last_nid = n.nid;
    n.Encode(e);
    return n.nid;
  };
  MBX_ASSIGN_OR_RETURN(PageRef nbt, WriteBTree(PageType::kNbt, node_count_, kNbtLeafEntrySize,
                                               kNbtLeafMax, next_node));
  MBX_RETURN_IF_ERROR(read_error);
  if (duplicate != 0)
    return Status::InvalidArgument("PST writer: node " + std::to_string(duplicate) +
                                   " added twice");

  size_t block_count = blocks_.size();
  for (const Run& r : block_runs_) block_count += r.count;
  size_t run = 0, block_pos = 0;
  std::optional<RunReader<BlockInfo>> reader;
  auto next_block = [&](size_t, uint8_t* e) -> uint64_t {
    BlockInfo b{};
    while (run < block_runs_.size() && (!reader || reader->done())) {
      if (reader) ++run;
      reader.reset();
      if (run < block_runs_.size()) reader.emplace(scratch_.get(), block_runs_[run]);
    }
    if (reader && !reader->done()) {
      auto got = reader->Next();
      if (!got.ok()) {
        read_error = got.status();
        return 0;
      }
      b = *got;
      if (auto it = spilled_refs_.find(b.bid); it != spilled_refs_.end())
        b.cref = static_cast<uint16_t>(b.cref + it->second);
    } else {
      b = blocks_[block_pos++];
    }
    b.Encode(e);
    return b.bid;
  };
  MBX_ASSIGN_OR_RETURN(PageRef bbt, WriteBTree(PageType::kBbt, block_count, kBbtLeafEntrySize,
                                               kBbtLeafMax, next_block));
  MBX_RETURN_IF_ERROR(read_error);
  MBX_RETURN_IF_ERROR(WriteMapPages());
  MBX_RETURN_IF_ERROR(WriteHeader(nbt, bbt));
  MBX_RETURN_IF_ERROR(FlushBuffer());
  if (::ftruncate(fd_, static_cast<off_t>(eof_)) != 0)
    return Status::FromErrno("cannot size '" + path_ + "'", errno);
  if (::fsync(fd_) != 0) return Status::FromErrno("cannot fsync '" + path_ + "'", errno);
  finished_ = true;
  return Status::Ok();
}

}  // namespace mbx::pst::ndb
