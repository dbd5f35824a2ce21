// The strict PST checker (formats/pst/check) and `mbxmerge check`: Outlook's
// own Unicode files pass with zero violations, ANSI and 4 KiB-page files are
// refused as unsupported, and each deliberately broken copy of Empty.pst is
// caught with the specific violation at the specific location. Broken copies
// keep every other CRC valid, so the named violation is the one under test.
#include <dirent.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <string>
#include <vector>

#include "formats/pst/check/check.h"
#include "formats/pst/disk/disk.h"
#include "formats/pst/ltp/reader.h"
#include "formats/pst/ndb/reader.h"
#include "tests/test_util.h"

namespace mbx::pst::check {
namespace {

using testing::TempDir;

std::string EmptyPstPath() {
  const std::string dir = testing::SharedDataDir();
  if (dir.empty()) return "";
  const std::string p = dir + "/../pst/Empty.pst";
  struct stat st;
  return ::stat(p.c_str(), &st) == 0 ? p : "";
}

#define REQUIRE_EMPTY_PST(var)            \
  const std::string var = EmptyPstPath(); \
  if (var.empty()) GTEST_SKIP() << "shared Empty.pst not present"

std::string Dump(const CheckReport& r) {
  std::string s;
  for (const auto& v : r.violations) s += v.location + ": " + v.message + "\n";
  return s;
}

// True when some violation is at `location` and its message contains `text`.
bool Has(const CheckReport& r, const std::string& location, const std::string& text) {
  return std::any_of(r.violations.begin(), r.violations.end(), [&](const Violation& v) {
    return v.location == location && v.message.find(text) != std::string::npos;
  });
}

// Empty.pst's bytes to break on purpose: edit, then re-CRC what was edited so
// that only the intended rule is broken.
class PstImage {
 public:
  explicit PstImage(const std::string& path) : bytes_(testing::ReadFileOrDie(path)) {}
  uint8_t* at(uint64_t off) { return reinterpret_cast<uint8_t*>(bytes_.data()) + off; }
  void FixPageCrc(uint64_t ib) {
    disk::Put32(at(ib + disk::page::kCrc), disk::Crc(at(ib), disk::page::kTrailer));
  }
  void FixBlockCrc(uint64_t ib, size_t cb) {
    disk::Put32(at(ib + disk::BlockStoredSize(cb) - disk::kBlockTrailerSize + 4),
                disk::Crc(at(ib), cb));
  }
  std::string Save(const TempDir& dir, const std::string& name) const {
    const std::string p = dir / name;
    testing::WriteFileOrDie(p, bytes_);
    return p;
  }
  std::string& bytes() { return bytes_; }

 private:
  std::string bytes_;
};

// Where the B-tree pages of a file are, from a walk of our reader.
struct PageRef {
  ndb::Tree tree;
  uint64_t ib;
  int level;
};
class PageCollector : public ndb::TreeObserver {
 public:
  void OnPage(const ndb::BtPageVisit& v) override {
    pages.push_back({v.tree, v.ib, v.page[disk::page::kCLevel]});
  }
  void OnProblem(std::string, std::string) override {}
  std::vector<PageRef> pages;
};

struct Located {
  ndb::NdbReader reader;
  std::vector<PageRef> pages;
};
Located Locate(const std::string& path) {
  auto r = ndb::NdbReader::Open(path);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  PageCollector c;
  EXPECT_TRUE(r->LoadTrees(&c).ok());
  return {std::move(r).value(), std::move(c.pages)};
}

// The leaf entry whose key is `key`: (page offset, entry offset).
std::pair<uint64_t, uint64_t> FindLeafEntry(PstImage& img, const std::vector<PageRef>& pages,
                                            ndb::Tree tree, uint64_t key) {
  const size_t es = tree == ndb::Tree::kNbt ? disk::kNbtLeafEntrySize : disk::kBbtLeafEntrySize;
  for (const auto& p : pages) {
    if (p.tree != tree || p.level != 0) continue;
    for (size_t i = 0; i < size_t{img.at(p.ib)[disk::page::kCEnt]}; ++i) {
      if (disk::Get64(img.at(p.ib + i * es)) == key) return {p.ib, p.ib + i * es};
    }
  }
  ADD_FAILURE() << "key " << key << " not found";
  return {0, 0};
}

const PageRef* FirstPage(const std::vector<PageRef>& pages, ndb::Tree tree, int level) {
  for (const auto& p : pages) {
    if (p.tree == tree && p.level == level) return &p;
  }
  return nullptr;
}

std::string PageName(uint64_t ib, const char* tree, int level) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "page @0x%llx (%s level %d)", static_cast<unsigned long long>(ib),
                tree, level);
  return buf;
}

// ---- Outlook's files pass ----

TEST(PstCheckTest, EmptyPstHasNoViolations) {
  REQUIRE_EMPTY_PST(path);
  auto r = CheckPst(path);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->violations.empty()) << Dump(*r);
  EXPECT_EQ(r->nodes, 47);
  EXPECT_EQ(r->blocks, 31);
  EXPECT_EQ(r->folders, 5);
  EXPECT_EQ(r->messages, 0);
  EXPECT_EQ(r->pages, 11);  // 5 NBT + 3 BBT + AMap + PMap + DList
}

TEST(PstCheckTest, SharedOutlookFiles) {
  const std::string dir = testing::SharedDataDir();
  if (dir.empty()) GTEST_SKIP() << "shared data not present";
  DIR* d = ::opendir((dir + "/outlook").c_str());
  if (d == nullptr) GTEST_SKIP() << "no shared outlook folder";
  std::vector<std::string> files;
  while (dirent* e = ::readdir(d)) {
    const std::string n = e->d_name;
    if (n.size() > 4 && (n.substr(n.size() - 4) == ".pst" || n.substr(n.size() - 4) == ".ost")) {
      files.push_back(dir + "/outlook/" + n);
    }
  }
  ::closedir(d);
  std::sort(files.begin(), files.end());
  int unicode = 0;
  for (const auto& f : files) {
    const std::string head = testing::ReadFileOrDie(f).substr(0, 16);
    const uint16_t ver =
        disk::Get16(reinterpret_cast<const uint8_t*>(head.data()) + disk::header::kVer);
    auto r = CheckPst(f);
    if (ver == 23) {
      ++unicode;
      ASSERT_TRUE(r.ok()) << f << ": " << r.status().ToString();
      EXPECT_TRUE(r->violations.empty()) << f << "\n" << Dump(*r);
      EXPECT_GT(r->folders, 0) << f;
    } else if (ver == 14 || ver == 15) {
      ASSERT_FALSE(r.ok()) << f;
      EXPECT_EQ(r.status().code(), Status::Code::kUnsupported) << f;
      EXPECT_NE(r.status().message().find("ANSI"), std::string::npos) << r.status().message();
    } else if (ver == 36) {
      ASSERT_FALSE(r.ok()) << f;
      EXPECT_EQ(r.status().code(), Status::Code::kUnsupported) << f;
      EXPECT_NE(r.status().message().find("4 KiB"), std::string::npos) << r.status().message();
    } else {
      ADD_FAILURE() << f << ": unexpected wVer " << ver;
    }
  }
  if (unicode == 0) GTEST_SKIP() << "no Unicode PST in the shared data";
}

// ---- Broken copies are caught ----

TEST(PstCheckTest, HeaderByteFlipBreaksHeaderCrc) {
  REQUIRE_EMPTY_PST(path);
  TempDir dir;
  PstImage img(path);
  *img.at(disk::header::kRgnid) ^= 0x01;  // inside both CRC ranges
  auto r = CheckPst(img.Save(dir, "h.pst"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(Has(*r, "header", "dwCRCPartial")) << Dump(*r);
  EXPECT_TRUE(Has(*r, "header", "dwCRCFull")) << Dump(*r);
}

TEST(PstCheckTest, BlockPayloadFlipBreaksBlockCrc) {
  REQUIRE_EMPTY_PST(path);
  TempDir dir;
  auto loc = Locate(path);
  const ndb::BlockEntry* b =
      loc.reader.FindBlock(loc.reader.FindNode(disk::kNidMessageStore)->bid_data);
  ASSERT_NE(b, nullptr);
  PstImage img(path);
  *img.at(b->ib + b->cb / 2) ^= 0x40;
  auto r = CheckPst(img.Save(dir, "b.pst"));
  ASSERT_TRUE(r.ok());
  char where[64];
  std::snprintf(where, sizeof where, "block bid 0x%llx @0x%llx",
                static_cast<unsigned long long>(b->bid), static_cast<unsigned long long>(b->ib));
  EXPECT_TRUE(Has(*r, where, "block CRC")) << Dump(*r);
}

TEST(PstCheckTest, BtPageFlipBreaksPageCrcOnly) {
  REQUIRE_EMPTY_PST(path);
  TempDir dir;
  auto loc = Locate(path);
  const PageRef* root = FirstPage(loc.pages, ndb::Tree::kNbt, 1);
  ASSERT_NE(root, nullptr);
  PstImage img(path);
  // Past the root's 4 entries: unused bytes, so only the CRC notices.
  ASSERT_LE(img.at(root->ib)[disk::page::kCEnt] * disk::kBtEntrySize, 400u);
  *img.at(root->ib + 400) ^= 0xFF;
  auto r = CheckPst(img.Save(dir, "p.pst"));
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->violations.size(), 1u) << Dump(*r);
  EXPECT_TRUE(Has(*r, PageName(root->ib, "NBT", 1), "page CRC")) << Dump(*r);
}

TEST(PstCheckTest, TrailerBidChangedBreaksBackLinkOnly) {
  REQUIRE_EMPTY_PST(path);
  TempDir dir;
  auto loc = Locate(path);
  const PageRef* leaf = FirstPage(loc.pages, ndb::Tree::kNbt, 0);
  ASSERT_NE(leaf, nullptr);
  PstImage img(path);
  const uint64_t new_bid = disk::Get64(img.at(leaf->ib + disk::page::kBid)) - 4;
  disk::Put64(img.at(leaf->ib + disk::page::kBid), new_bid);
  disk::Put16(img.at(leaf->ib + disk::page::kSig), disk::Signature(leaf->ib, new_bid));
  img.FixPageCrc(leaf->ib);
  auto r = CheckPst(img.Save(dir, "t.pst"));
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->violations.size(), 1u) << Dump(*r);
  EXPECT_TRUE(Has(*r, PageName(leaf->ib, "NBT", 0), "back-link")) << Dump(*r);
}

TEST(PstCheckTest, CEntAboveCEntMax) {
  REQUIRE_EMPTY_PST(path);
  TempDir dir;
  auto loc = Locate(path);
  PstImage img(path);
  const PageRef* full = nullptr;  // an NBT leaf with cEnt == cEntMax (15)
  for (const auto& p : loc.pages) {
    if (p.tree == ndb::Tree::kNbt && p.level == 0 && img.at(p.ib)[disk::page::kCEnt] == 15) {
      full = &p;
    }
  }
  ASSERT_NE(full, nullptr);
  img.at(full->ib)[disk::page::kCEnt] = 16;
  img.FixPageCrc(full->ib);
  auto r = CheckPst(img.Save(dir, "c.pst"));
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(Has(*r, PageName(full->ib, "NBT", 0), "cEnt 16 exceeds cEntMax 15")) << Dump(*r);
}

TEST(PstCheckTest, SwappedKeysInBbtLeaf) {
  REQUIRE_EMPTY_PST(path);
  TempDir dir;
  auto loc = Locate(path);
  const PageRef* leaf = FirstPage(loc.pages, ndb::Tree::kBbt, 0);
  ASSERT_NE(leaf, nullptr);
  PstImage img(path);
  ASSERT_GE(img.at(leaf->ib)[disk::page::kCEnt], 5);
  std::swap_ranges(img.at(leaf->ib + 3 * 24), img.at(leaf->ib + 4 * 24), img.at(leaf->ib + 4 * 24));
  img.FixPageCrc(leaf->ib);
  auto r = CheckPst(img.Save(dir, "k.pst"));
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(Has(*r, PageName(leaf->ib, "BBT", 0), "keys not strictly increasing: entry 4"))
      << Dump(*r);
}

TEST(PstCheckTest, AMapBitClearedForUsedBlock) {
  REQUIRE_EMPTY_PST(path);
  TempDir dir;
  auto loc = Locate(path);
  const ndb::BlockEntry* b =
      loc.reader.FindBlock(loc.reader.FindNode(disk::kNidRootFolder)->bid_data);
  ASSERT_NE(b, nullptr);
  PstImage img(path);
  const uint64_t unit = (b->ib - disk::kFirstAMapOffset) / 64;
  ASSERT_NE(*img.at(disk::kFirstAMapOffset + unit / 8) & (0x80 >> (unit % 8)), 0);
  *img.at(disk::kFirstAMapOffset + unit / 8) &= static_cast<uint8_t>(~(0x80 >> (unit % 8)));
  img.FixPageCrc(disk::kFirstAMapOffset);
  auto r = CheckPst(img.Save(dir, "a.pst"));
  ASSERT_TRUE(r.ok());
  char where[64];
  std::snprintf(where, sizeof where, "block bid 0x%llx @0x%llx",
                static_cast<unsigned long long>(b->bid), static_cast<unsigned long long>(b->ib));
  EXPECT_TRUE(Has(*r, where, "free in AMap @0x4400")) << Dump(*r);
  EXPECT_TRUE(Has(*r, "header", "cbAMapFree")) << Dump(*r);
}

TEST(PstCheckTest, BlockCRefChanged) {
  REQUIRE_EMPTY_PST(path);
  TempDir dir;
  auto loc = Locate(path);
  const ndb::BlockEntry* b =
      loc.reader.FindBlock(loc.reader.FindNode(disk::kNidRootFolder)->bid_data);
  ASSERT_NE(b, nullptr);
  ASSERT_EQ(b->cref, 2);  // one reference + 1
  PstImage img(path);
  auto [page, entry] = FindLeafEntry(img, loc.pages, ndb::Tree::kBbt, b->bid);
  ASSERT_NE(page, 0u);
  disk::Put16(img.at(entry + 18), 3);
  img.FixPageCrc(page);
  auto r = CheckPst(img.Save(dir, "r.pst"));
  ASSERT_TRUE(r.ok());
  char where[64];
  std::snprintf(where, sizeof where, "block bid 0x%llx @0x%llx",
                static_cast<unsigned long long>(b->bid), static_cast<unsigned long long>(b->ib));
  ASSERT_EQ(r->violations.size(), 1u) << Dump(*r);
  EXPECT_TRUE(Has(*r, where, "cRef 3, expected 2")) << Dump(*r);
}

TEST(PstCheckTest, NodeParentIsNotAFolder) {
  REQUIRE_EMPTY_PST(path);
  TempDir dir;
  auto loc = Locate(path);
  PstImage img(path);
  constexpr uint64_t kDeletedItems = 0x8062;
  ASSERT_NE(loc.reader.FindNode(kDeletedItems), nullptr);
  auto [page, entry] = FindLeafEntry(img, loc.pages, ndb::Tree::kNbt, kDeletedItems);
  ASSERT_NE(page, 0u);
  disk::Put32(img.at(entry + 24), 0x9982);  // a folder NID nothing uses
  img.FixPageCrc(page);
  auto r = CheckPst(img.Save(dir, "n.pst"));
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(
      Has(*r, "node 0x8062 (folder 'Deleted Items')", "nidParent 0x9982 is not an existing folder"))
      << Dump(*r);
  // Its old parent's hierarchy table still lists it.
  EXPECT_TRUE(Has(*r, "node 0x802d (hierarchy table of 'Top of Outlook data file')", "row 0x8062"))
      << Dump(*r);
}

TEST(PstCheckTest, FolderContentCountDisagreesWithTable) {
  REQUIRE_EMPTY_PST(path);
  TempDir dir;
  auto loc = Locate(path);
  const ndb::BlockEntry* b = loc.reader.FindBlock(loc.reader.FindNode(0x8062)->bid_data);
  ASSERT_NE(b, nullptr);
  ASSERT_FALSE(disk::IsInternalBid(b->bid));
  PstImage img(path);
  // Decode the folder's PC block, set PidTagContentCount (0x3602, inline
  // Integer32 in its BTH record) to 7, encode, re-CRC.
  std::string block = img.bytes().substr(b->ib, b->cb);
  auto* data = reinterpret_cast<uint8_t*>(block.data());
  disk::DecodeBlock(disk::CryptMethod::kPermute, data, block.size(), b->bid);
  const size_t rec = block.find(std::string("\x02\x36\x03\x00", 4));
  ASSERT_NE(rec, std::string::npos);
  ASSERT_EQ(disk::Get32(data + rec + 4), 0u);
  disk::Put32(data + rec + 4, 7);
  disk::EncodeBlock(disk::CryptMethod::kPermute, data, block.size(), b->bid);
  img.bytes().replace(b->ib, b->cb, block);
  img.FixBlockCrc(b->ib, b->cb);
  auto r = CheckPst(img.Save(dir, "cc.pst"));
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(Has(*r, "node 0x8062 (folder 'Deleted Items')",
                  "content count 0x3602 is 7 but the contents table has 0 rows"))
      << Dump(*r);
}

TEST(PstCheckTest, BTreeCycleIsReportedNotLooped) {
  REQUIRE_EMPTY_PST(path);
  TempDir dir;
  auto loc = Locate(path);
  const PageRef* root = FirstPage(loc.pages, ndb::Tree::kNbt, 1);
  ASSERT_NE(root, nullptr);
  PstImage img(path);
  // Entry 1 of the root points back at the root.
  disk::Put64(img.at(root->ib + 24 + 8), loc.reader.header().nbt.bid);
  disk::Put64(img.at(root->ib + 24 + 16), root->ib);
  img.FixPageCrc(root->ib);
  auto r = CheckPst(img.Save(dir, "cy.pst"));
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(std::any_of(r->violations.begin(), r->violations.end(), [](const Violation& v) {
    return v.message.find("reached a second time") != std::string::npos;
  })) << Dump(*r);
}

TEST(PstCheckTest, SubnodeTreeCycleIsReported) {
  const std::string dir = testing::SharedDataDir();
  const std::string path = dir + "/outlook/pstsdk-sample1.pst";
  struct stat st;
  if (dir.empty() || ::stat(path.c_str(), &st) != 0)
    GTEST_SKIP() << "pstsdk-sample1.pst not present";
  TempDir tmp;
  auto loc = Locate(path);
  const ndb::NodeEntry* msg = loc.reader.FindNode(0x200024);
  ASSERT_NE(msg, nullptr);
  const ndb::BlockEntry* sl = loc.reader.FindBlock(msg->bid_sub);
  ASSERT_NE(sl, nullptr);
  PstImage img(path);
  ASSERT_EQ(*img.at(sl->ib), disk::kBlockTypeSubnode);  // an SLBLOCK (internal: not encoded)
  ASSERT_EQ(*img.at(sl->ib + 1), 0);
  // The first subnode's own subnode tree becomes the SLBLOCK it sits in.
  disk::Put64(img.at(sl->ib + 8 + 16), sl->bid);
  img.FixBlockCrc(sl->ib, sl->cb);
  auto r = CheckPst(img.Save(tmp, "sub.pst"));
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(std::any_of(r->violations.begin(), r->violations.end(), [](const Violation& v) {
    return v.location.rfind("node 0x200024 (message in 'Sample1') subnode ", 0) == 0 &&
           v.message.find("contains itself (cycle)") != std::string::npos;
  })) << Dump(*r);
}

TEST(PstCheckTest, TruncatedFile) {
  REQUIRE_EMPTY_PST(path);
  TempDir dir;
  PstImage img(path);
  img.bytes().resize(0x9000);
  auto r = CheckPst(img.Save(dir, "tr.pst"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(Has(*r, "header", "ibFileEof 0x42400 but the file is 0x9000 bytes")) << Dump(*r);
  EXPECT_TRUE(Has(*r, "file", "truncated")) << Dump(*r);
  // The node B-tree root at 0x9200 is gone.
  EXPECT_TRUE(Has(*r, "page @0x9200 (NBT root)", "outside the file")) << Dump(*r);
}

TEST(PstCheckTest, NotAPst) {
  TempDir dir;
  const std::string p = dir / "notes.txt";
  testing::WriteFileOrDie(p, "Dear diary, this is not a PST file.\n");
  auto r = CheckPst(p);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Status::Code::kCorruption);
  EXPECT_FALSE(CheckPst(dir / "missing.pst").ok());
}

// ---- LTP structures Outlook's samples do not exercise (synthetic) ----

// One heap block: header (HNHDR, HNPAGEHDR or HNBITMAPHDR), allocations, page map.
std::string HeapBlock(size_t index, const std::vector<std::string>& allocs, uint8_t client = 0xBC,
                      uint32_t user_root = 0x20) {
  std::string b;
  disk::ByteWriter w(b);
  const size_t header = index == 0 ? 12 : (index % 128 == 8 ? 66 : 2);
  w.Zeros(header);
  std::vector<uint16_t> offs{static_cast<uint16_t>(header)};
  for (const auto& a : allocs) {
    w.Bytes(a);
    offs.push_back(static_cast<uint16_t>(b.size()));
  }
  if (b.size() % 2) w.U8(0);
  const uint16_t ib_hnpm = static_cast<uint16_t>(b.size());
  w.U16(static_cast<uint16_t>(allocs.size()));
  w.U16(0);
  for (uint16_t o : offs) w.U16(o);
  disk::Put16(reinterpret_cast<uint8_t*>(b.data()), ib_hnpm);
  if (index == 0) {
    b[2] = static_cast<char>(0xEC);
    b[3] = static_cast<char>(client);
    disk::Put32(reinterpret_cast<uint8_t*>(b.data()) + 4, user_root);
  }
  return b;
}

std::string Le(uint64_t v, size_t n) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>(v >> (8 * i));
  return s;
}

constexpr uint32_t Hid(uint32_t block, uint32_t index) { return (block << 16) | (index << 5); }

TEST(PstLtpTest, MultiBlockHeapWithBitmapHeader) {
  ndb::NodeData d;
  for (size_t i = 0; i < 10; ++i) {
    d.blocks.push_back({4 * (i + 1), HeapBlock(i, {"block" + std::to_string(i), "x"})});
  }
  auto heap = ltp::Heap::Open(d);
  ASSERT_TRUE(heap.ok()) << heap.status().ToString();
  EXPECT_EQ(heap->blocks()[8].header_size, 66u);  // HNBITMAPHDR at block 8
  EXPECT_EQ(heap->blocks()[9].header_size, 2u);
  EXPECT_EQ(*heap->Get(Hid(8, 1)), "block8");
  EXPECT_EQ(*heap->Get(Hid(9, 2)), "x");
  EXPECT_EQ(*heap->Get(Hid(0, 1)), "block0");
  EXPECT_FALSE(heap->Get(Hid(0, 3)).ok());      // no third allocation
  EXPECT_FALSE(heap->Get(Hid(10, 1)).ok());     // no block 10
  EXPECT_FALSE(heap->Get(Hid(0, 1) | 1).ok());  // NID type bits set
}

TEST(PstLtpTest, PcThroughIndexedBth) {
  // [1] BTH header, [2] index node, [3] leaf A, [4] leaf B, [5] a string value.
  const std::string bth = "\xB5\x02\x06\x01" + Le(Hid(0, 2), 4);
  const std::string index = Le(0x0001, 2) + Le(Hid(0, 3), 4) + Le(0x3001, 2) + Le(Hid(0, 4), 4);
  const std::string leaf_a =
      Le(0x0001, 2) + Le(0x0003, 2) + Le(7, 4) + Le(0x0E07, 2) + Le(0x000B, 2) + Le(1, 4);
  const std::string leaf_b = Le(0x3001, 2) + Le(0x001F, 2) + Le(Hid(0, 5), 4);
  const std::string hi = disk::Utf8ToUtf16le("Hi");
  ndb::NodeData d;
  d.blocks.push_back({4, HeapBlock(0, {bth, index, leaf_a, leaf_b, hi}, 0xBC, Hid(0, 1))});
  auto heap = ltp::Heap::Open(d);
  ASSERT_TRUE(heap.ok()) << heap.status().ToString();
  ltp::NodeContext ctx;
  auto pc = ltp::ReadPropertyContext(*heap, ctx);
  ASSERT_TRUE(pc.ok()) << pc.status().ToString();
  ASSERT_EQ(pc->size(), 3u);
  EXPECT_EQ((*pc)[0].tag(), 0x00010003u);
  EXPECT_EQ(disk::Get32(reinterpret_cast<const uint8_t*>((*pc)[0].value.data())), 7u);
  EXPECT_EQ((*pc)[1].value, std::string("\x01", 1));  // Boolean: one inline byte
  EXPECT_EQ((*pc)[2].where, ltp::Storage::kHeap);
  EXPECT_EQ(disk::Utf16leToUtf8((*pc)[2].value), "Hi");

  // An index key that is not its child's first key is corrupt.
  const std::string bad_index = Le(0x0002, 2) + Le(Hid(0, 3), 4) + Le(0x3001, 2) + Le(Hid(0, 4), 4);
  ndb::NodeData bad;
  bad.blocks.push_back({4, HeapBlock(0, {bth, bad_index, leaf_a, leaf_b, hi}, 0xBC, Hid(0, 1))});
  auto bad_heap = ltp::Heap::Open(bad);
  ASSERT_TRUE(bad_heap.ok());
  EXPECT_FALSE(ltp::ReadPropertyContext(*bad_heap, ctx).ok());
}

TEST(PstLtpTest, TableWithRowsInTheHeap) {
  // Allocations: [1] TCINFO, [2] row matrix, [3] row index BTH, [4] its leaf, [5] a string.
  // Columns in tag order: display name (ib 8, bit 2), row id (ib 0, bit 0), row version (ib 4, bit
  // 1).
  std::string tcinfo = "\x7C\x03" + Le(12, 2) + Le(12, 2) + Le(12, 2) + Le(13, 2) +
                       Le(Hid(0, 3), 4) + Le(Hid(0, 2), 4) + Le(0, 4);
  tcinfo += Le(0x3001001F, 4) + Le(8, 2) + Le(0x0204, 2);  // cb 4, iBit 2
  tcinfo += Le(0x67F20003, 4) + Le(0, 2) + Le(0x0004, 2);
  tcinfo += Le(0x67F30003, 4) + Le(4, 2) + Le(0x0104, 2);
  const std::string rows = Le(0x8022, 4) + Le(1, 4) + Le(Hid(0, 5), 4) + "\xE0";
  const std::string row_index_bth =
      Le(0x000404B5, 4) + Le(Hid(0, 4), 4);  // keys 4, data 4, leaf root
  const std::string index_leaf = Le(0x8022, 4) + Le(0, 4);
  ndb::NodeData d;
  d.blocks.push_back(
      {4, HeapBlock(0, {tcinfo, rows, row_index_bth, index_leaf, disk::Utf8ToUtf16le("Inbox")},
                    0x7C, Hid(0, 1))});
  auto heap = ltp::Heap::Open(d);
  ASSERT_TRUE(heap.ok()) << heap.status().ToString();
  ltp::NodeContext ctx;
  auto t = ltp::ReadTableContext(*heap, ctx);
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_TRUE(ltp::ValidateTableInfo(t->info).empty());
  ASSERT_EQ(t->rows.size(), 1u);
  EXPECT_EQ(t->rows[0].row_id, 0x8022u);
  ASSERT_TRUE(t->rows[0].cells[0].present);
  EXPECT_EQ(disk::Utf16leToUtf8(t->rows[0].cells[0].value), "Inbox");
  EXPECT_EQ(t->rows_where, ltp::Storage::kHeap);
  EXPECT_EQ(t->matrix_rows, 1u);

  // Columns out of tag order and a wrong cell size are layout violations.
  ltp::TableInfo info = t->info;
  std::swap(info.columns[0], info.columns[1]);
  info.columns[2].cb = 2;
  const auto problems = ltp::ValidateTableInfo(info);
  EXPECT_TRUE(std::any_of(problems.begin(), problems.end(), [](const std::string& m) {
    return m.find("increasing tag order") != std::string::npos;
  }));
  EXPECT_TRUE(std::any_of(problems.begin(), problems.end(), [](const std::string& m) {
    return m.find("has cbData 2, expected 4") != std::string::npos;
  }));
}

TEST(PstLtpTest, MultiValuedProperties) {
  const std::string a = disk::Utf8ToUtf16le("a"), bc = disk::Utf8ToUtf16le("bc");
  const std::string mv = Le(2, 4) + Le(12, 4) + Le(12 + a.size(), 4) + a + bc;
  auto v = ltp::DecodeMultiValue(disk::kPtypMultipleString, mv);
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  ASSERT_EQ(v->size(), 2u);
  EXPECT_EQ(disk::Utf16leToUtf8((*v)[1]), "bc");
  auto ints = ltp::DecodeMultiValue(disk::kPtypMultipleInteger32, Le(1, 4) + Le(2, 4) + Le(3, 4));
  ASSERT_TRUE(ints.ok());
  EXPECT_EQ(ints->size(), 3u);
  EXPECT_FALSE(ltp::DecodeMultiValue(disk::kPtypMultipleInteger32, "12345").ok());
  EXPECT_FALSE(
      ltp::DecodeMultiValue(disk::kPtypMultipleBinary, Le(5, 4)).ok());  // count past the end
  EXPECT_FALSE(ltp::DecodeMultiValue(disk::kPtypMultipleBinary, Le(1, 4) + Le(2, 4))
                   .ok());  // offset in header
  EXPECT_TRUE(ltp::ValidateValue(disk::kPtypInteger64, Le(1, 8)).ok());
  EXPECT_FALSE(ltp::ValidateValue(disk::kPtypInteger64, Le(1, 4)).ok());
  EXPECT_FALSE(ltp::ValidateValue(disk::kPtypString, "abc").ok());
}

TEST(PstLtpTest, NameToIdMap) {
  const std::string guid = "0123456789abcdef";
  std::vector<ltp::Property> props(3);
  props[0].id = 0x0002;
  props[0].type = disk::kPtypBinary;
  props[0].value = guid;
  props[1].id = 0x0003;
  props[1].type = disk::kPtypBinary;
  // A numeric name in PS_MAPI (wGuid 1), then a string name in the stream's first GUID (3).
  props[1].value =
      Le(0x8005, 4) + Le(1 << 1, 2) + Le(0, 2) + Le(0, 4) + Le((3 << 1) | 1, 2) + Le(1, 2);
  props[2].id = 0x0004;
  props[2].type = disk::kPtypBinary;
  props[2].value = Le(8, 4) + disk::Utf8ToUtf16le("Test");
  auto named = ltp::DecodeNameToIdMap(props);
  ASSERT_TRUE(named.ok()) << named.status().ToString();
  ASSERT_EQ(named->size(), 2u);
  EXPECT_EQ((*named)[0].id, 0x8000);
  EXPECT_FALSE((*named)[0].is_string);
  EXPECT_EQ((*named)[0].lid, 0x8005u);
  EXPECT_EQ((*named)[0].guid[0], 0x28);  // PS_MAPI {00020328-...}
  EXPECT_EQ((*named)[1].id, 0x8001);
  EXPECT_TRUE((*named)[1].is_string);
  EXPECT_EQ((*named)[1].name, "Test");
  EXPECT_EQ(std::string((*named)[1].guid.begin(), (*named)[1].guid.end()), guid);
  props[1].value = Le(0, 4) + Le((4 << 1) | 1, 2) + Le(0, 2);  // GUID 4: past the stream
  EXPECT_FALSE(ltp::DecodeNameToIdMap(props).ok());
}

TEST(PstCheckTest, EmptyPstNameToIdMapDecodes) {
  REQUIRE_EMPTY_PST(path);
  auto loc = Locate(path);
  const ndb::NodeEntry* n = loc.reader.FindNode(disk::kNidNameToIdMap);
  ASSERT_NE(n, nullptr);
  auto data = loc.reader.ReadData(n->bid_data);
  ASSERT_TRUE(data.ok());
  auto heap = ltp::Heap::Open(std::move(data).value());
  ASSERT_TRUE(heap.ok());
  ltp::NodeContext ctx{&loc.reader, {}};
  auto pc = ltp::ReadPropertyContext(*heap, ctx);
  ASSERT_TRUE(pc.ok()) << pc.status().ToString();
  auto named = ltp::DecodeNameToIdMap(*pc);
  ASSERT_TRUE(named.ok()) << named.status().ToString();
  EXPECT_EQ(named->size(), 35u);  // 280-byte entry stream
  EXPECT_TRUE(std::any_of(named->begin(), named->end(), [](const ltp::NamedProperty& p) {
    return p.is_string && p.name == "content-class";
  }));
}

// ---- Dump ----

TEST(PstCheckTest, DumpIsDeterministicAndMasks) {
  REQUIRE_EMPTY_PST(path);
  auto a = DumpStructure(path, false);
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  auto b = DumpStructure(path, false);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(*a, *b);
  EXPECT_NE(a->find("node 0x00000122 NORMAL_FOLDER parent=0x00000122 PC props="),
            std::string::npos);
  EXPECT_NE(a->find("prop 0x3001001f String \"Deleted Items\""), std::string::npos);
  EXPECT_NE(a->find("node 0x0000802d HIERARCHY_TABLE parent=0x00000000 TC cols="),
            std::string::npos);
  EXPECT_NE(a->find("  row 0x00008062\n"), std::string::npos);
  // The provider UID (the store's record key) appears unmasked, then masked.
  const std::string uid_hex = "5366e7dd900fb74db6e130cedf3bc077";
  EXPECT_NE(a->find(uid_hex), std::string::npos);
  auto m = DumpStructure(path, true);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->find(uid_hex), std::string::npos);
  EXPECT_NE(m->find("prop 0x0ff90102 Binary <masked>"), std::string::npos);
  // Same lines, only values replaced.
  EXPECT_EQ(std::count(a->begin(), a->end(), '\n'), std::count(m->begin(), m->end(), '\n'));
}

// ---- CLI ----

TEST(PstCheckCliTest, ExitCodes) {
  REQUIRE_EMPTY_PST(path);
  auto ok = testing::RunMbxmerge({"check", path});
  EXPECT_EQ(ok.exit_code, 0) << ok.out << ok.err;
  EXPECT_NE(ok.out.find("0 violations; 47 nodes, 31 blocks, 5 folders, 0 messages"),
            std::string::npos)
      << ok.out;

  TempDir dir;
  auto loc = Locate(path);
  const PageRef* root = FirstPage(loc.pages, ndb::Tree::kNbt, 1);
  ASSERT_NE(root, nullptr);
  PstImage img(path);
  *img.at(root->ib + 400) ^= 0xFF;
  const std::string broken = img.Save(dir, "broken.pst");
  auto bad = testing::RunMbxmerge({"check", broken});
  EXPECT_EQ(bad.exit_code, 1) << bad.out << bad.err;
  EXPECT_NE(bad.out.find(broken + ": " + PageName(root->ib, "NBT", 1) + ": page CRC"),
            std::string::npos)
      << bad.out;
  EXPECT_NE(bad.out.find("1 violation; "), std::string::npos) << bad.out;

  auto json = testing::RunMbxmerge({"check", "--json", broken});
  EXPECT_EQ(json.exit_code, 1);
  EXPECT_NE(json.out.find("\"location\": \"" + PageName(root->ib, "NBT", 1) + "\""),
            std::string::npos)
      << json.out;

  const std::string text = dir / "text.pst";
  testing::WriteFileOrDie(text, "hello\n");
  auto notpst = testing::RunMbxmerge({"check", text});
  EXPECT_EQ(notpst.exit_code, 2);
  EXPECT_EQ(std::count(notpst.err.begin(), notpst.err.end(), '\n'), 1) << notpst.err;
  EXPECT_NE(notpst.err.find("not a PST file"), std::string::npos) << notpst.err;

  auto dump = testing::RunMbxmerge({"check", "--dump", path});
  EXPECT_EQ(dump.exit_code, 0);
  EXPECT_EQ(dump.out, *DumpStructure(path, false));

  auto help = testing::RunMbxmerge({"check", "--help"});
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_NE(help.out.find("--dump"), std::string::npos);
}

// ---- Node data in one piece ----

// Every node's data and every subnode's, read as one string, is what its
// blocks hold joined; a data tree whose lcbTotal disagrees with its blocks is
// refused both ways. The PST is ours: a message with a 100 KB body (an
// XBLOCK of 8 KB blocks) and a 9 MB attachment (an XXBLOCK).
TEST(PstNdbTest, ContiguousDataIsTheBlocksJoined) {
  TempDir dir;
  std::string body, attachment;
  for (int i = 0; body.size() < 100000; ++i) body += "line " + std::to_string(i) + " caf\xc3\xa9\n";
  for (uint32_t x = 1; attachment.size() < 12u << 20; x = x * 1103515245u + 12345u) {
    attachment += "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"[x >> 26];
    if (attachment.size() % 77 == 76) attachment += '\n';
  }
  const std::string mbox =
      "From a@example.org Mon Jan  1 00:00:00 2024\n"
      "From: a@example.org\nTo: b@example.org\nSubject: big\nMessage-ID: <big@example.org>\n"
      "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"b\"\n\n--b\n"
      "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n" +
      body +
      "--b\nContent-Type: application/octet-stream; name=\"x.bin\"\n"
      "Content-Transfer-Encoding: base64\n\n" +
      attachment + "\n--b--\n";
  testing::WriteFileOrDie(dir / "in.mbox", mbox);
  auto merged = testing::RunMbxmerge({"merge", "--from", dir / "in.mbox", "--into", dir / "o.pst"});
  ASSERT_EQ(merged.exit_code, 0) << merged.err;

  auto loc = Locate(dir / "o.pst");
  // Nodes, their subnodes, and the subnodes' own (an attachment's data).
  std::vector<uint64_t> data_bids, sub_bids;
  for (const ndb::NodeEntry& n : loc.reader.nodes()) {
    data_bids.push_back(n.bid_data);
    sub_bids.push_back(n.bid_sub);
  }
  while (!sub_bids.empty()) {
    auto subs = loc.reader.ReadSubnodes(sub_bids.back());
    sub_bids.pop_back();
    ASSERT_TRUE(subs.ok()) << subs.status().ToString();
    for (const ndb::SubnodeEntry& s : *subs) {
      data_bids.push_back(s.bid_data);
      sub_bids.push_back(s.bid_sub);
    }
  }
  size_t most_blocks = 0;
  uint64_t largest = 0;
  for (uint64_t bid : data_bids) {
    auto blocks = loc.reader.ReadData(bid);
    auto joined = loc.reader.ReadDataContiguous(bid);
    ASSERT_TRUE(blocks.ok() && joined.ok()) << disk::Hex(bid);
    ASSERT_EQ(*joined, blocks->Concat()) << disk::Hex(bid);
    if (blocks->blocks.size() > most_blocks) {
      most_blocks = blocks->blocks.size();
      largest = bid;
    }
  }
  EXPECT_GT(most_blocks, 1021u);  // more than an XBLOCK lists: an XXBLOCK

  // The XXBLOCK's lcbTotal one byte short, then one byte over.
  const ndb::BlockEntry* root = loc.reader.FindBlock(largest);
  ASSERT_NE(root, nullptr);
  ASSERT_TRUE(disk::IsInternalBid(root->bid));
  PstImage img(dir / "o.pst");
  const uint32_t total = disk::Get32(img.at(root->ib + 4));
  for (const uint32_t claim : {total - 1, total + 1}) {
    disk::Put32(img.at(root->ib + 4), claim);
    const std::string broken = img.Save(dir, "broken.pst");
    auto r = ndb::NdbReader::Open(broken);
    ASSERT_TRUE(r.ok() && r->LoadTrees().ok());
    auto blocks = r->ReadData(largest);
    auto joined = r->ReadDataContiguous(largest);
    ASSERT_FALSE(blocks.ok());
    ASSERT_FALSE(joined.ok());
    EXPECT_EQ(blocks.status().ToString(), joined.status().ToString());
    const std::string said = claim < total ? "but its blocks hold more bytes"
                                           : "but its blocks hold " + std::to_string(total);
    EXPECT_NE(joined.status().message().find("lcbTotal " + std::to_string(claim) + " " + said),
              std::string::npos)
        << joined.status().ToString();
  }
}

}  // namespace
}  // namespace mbx::pst::check
