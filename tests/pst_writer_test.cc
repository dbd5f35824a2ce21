// The PST writer (formats/pst/{ndb,ltp,messaging}, the PST sink), read back
// by readers nobody here wrote: libpff (through our PST source and pffinfo)
// and libpst's readpst. The three-reader comparison including pst-extractor
// and the structural checks live in pst_readers_test.cc and pst_check_test.cc.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include "formats/pst/check/check.h"
#include "formats/pst/disk/disk.h"
#include "formats/pst/mapi.h"
#include "formats/pst/messaging/store_writer.h"
#include "formats/pst/pst.h"
#include "tests/pst_oracles.h"
#include "tests/test_util.h"

namespace mbx {
namespace {

using namespace pst::messaging;  // NOLINT
using testing::HaveProgram;
using testing::MbxgenIdCounts;
using testing::ReadFileOrDie;
using testing::Run;
using testing::RunMbxgen;
using testing::RunMbxmerge;
using testing::TempDir;

// Every file the writer produces must pass the strict checker.
void ExpectCheckClean(const std::string& path) {
  EXPECT_EQ(testing::PstCheckViolations(path), "") << path;
}

OutMessage SimpleMessage(const std::string& subject, const std::string& body) {
  OutMessage m;
  m.props = {StringProp(0x0037, subject),
             StringProp(0x1000, body),
             StringProp(0x0C1A, "Alice Example"),
             StringProp(0x0C1F, "alice@example.com"),
             StringProp(0x0C1E, "SMTP"),
             StringProp(0x0042, "Alice Example"),
             StringProp(0x0065, "alice@example.com"),
             StringProp(0x0064, "SMTP"),
             StringProp(0x0E04, "Bob Example"),
             TimeProp(0x0039, 132000000000000000ull),
             TimeProp(0x0E06, 132000000000000000ull)};
  m.recipients.push_back({Int32Prop(0x0C15, 1), StringProp(0x3001, "Bob Example"),
                          StringProp(0x3003, "bob@example.com"), StringProp(0x3002, "SMTP"),
                          StringProp(0x39FE, "bob@example.com")});
  return m;
}

// readpst -r: one mbox per folder; returns folder path -> messages' text.
std::map<std::string, std::vector<std::string>> ReadWithReadpst(const std::string& pst,
                                                                const std::string& dir) {
  std::map<std::string, std::vector<std::string>> out;
  std::filesystem::create_directories(dir);
  auto r = testing::Run({"readpst", "-q", "-D", "-r", "-j", "0", "-o", dir, pst});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) {
    if (!e.is_regular_file() || e.path().filename() != "mbox") continue;
    std::string rel = std::filesystem::relative(e.path().parent_path(), dir).string();
    const std::string text = ReadFileOrDie(e.path().string());
    std::vector<std::string>& msgs = out[rel];
    size_t pos = 0;
    while ((pos = text.find("From ", pos)) != std::string::npos) {
      if (pos == 0 || text[pos - 1] == '\n') {
        size_t end = text.find("\nFrom \"", pos + 5);
        msgs.push_back(text.substr(pos, end == std::string::npos ? std::string::npos : end - pos));
      }
      pos += 5;
    }
  }
  return out;
}

// pffexport -d's ItemValues.txt of one item (its first set: the item's own
// properties): tag -> raw value bytes; named properties also by name ("0x8580
// type 3", "Keywords type 4127"), since their ids differ from store to store.
struct ItemValues {
  std::map<uint32_t, std::string> props;
  std::map<std::string, std::string> named;
};
ItemValues ParseItemValues(const std::string& text) {
  ItemValues out;
  auto sets = testing::ParsePffItemValues(text);
  if (sets.empty()) return out;
  for (const auto& [id, v] : sets[0]) {
    out.props[(id << 16) | v.value_type] = v.bytes;
    if (!v.maps_to.empty())
      out.named[v.maps_to + " type " + std::to_string(v.value_type)] = v.bytes;
  }
  return out;
}

// M3: every common property type, multi-valued ones too, reads back through
// libpff byte for byte.
TEST(PstWriterTest, EveryPropertyTypeReadsBackThroughLibpff) {
  if (!HaveProgram("pffexport")) GTEST_SKIP() << "pffexport (pff-tools) not installed";
  using namespace pst;  // NOLINT
  TempDir dir;
  std::vector<ltp::Property> props = {
      StringProp(0x0037, "every type: ünïcødé 😀"),
      {0x6701, disk::kPtypInteger16, std::string("\x34\x12", 2)},
      Int32Prop(0x6702, 0x12345678),
      {0x6703, disk::kPtypFloating64, std::string("\x00\x00\x00\x00\x00\x00\xf8\x3f", 8)},
      {0x6704, disk::kPtypCurrency, std::string("\x10\x27\x00\x00\x00\x00\x00\x00", 8)},
      BoolProp(0x6705, true),
      Int64Prop(0x6706, 0x1122334455667788ull),
      TimeProp(0x6707, 132000000000000000ull),
      {0x6708, disk::kPtypGuid, std::string("0123456789abcdef", 16)},
      BinaryProp(0x6709, std::string("\x00\x01\x02\xff", 4)),
      {0x670A, disk::kPtypMultipleInteger32,
       ltp::EncodeMulti(disk::kPtypMultipleInteger32,
                        {std::string("\x01\0\0\0", 4), std::string("\x02\0\0\0", 4)})},
      {0x670B, disk::kPtypMultipleString,
       ltp::EncodeMulti(disk::kPtypMultipleString,
                        {disk::Utf8ToUtf16le("one"), disk::Utf8ToUtf16le("twö")})},
      {0x670C, disk::kPtypMultipleBinary,
       ltp::EncodeMulti(disk::kPtypMultipleBinary, {"ab", "cde"})},
      {0x670D, disk::kPtypFloating32, std::string("\x00\x00\xc0\x3f", 4)},
      {0x670E, disk::kPtypMultipleInteger64,
       ltp::EncodeMulti(disk::kPtypMultipleInteger64, {std::string(8, '\x07')})},
      {0x670F, disk::kPtypMultipleTime,
       ltp::EncodeMulti(disk::kPtypMultipleTime, {std::string(8, '\x01')})},
      {0x6711, disk::kPtypString8, std::string("ansi string")},
      // Around the heap limit: inline in the heap, and in a subnode.
      BinaryProp(0x6712, std::string(3580, 'h')),
      BinaryProp(0x6713, std::string(3581, 's')),
      BinaryProp(0x6714, std::string(20000, 'x')),
  };
  // Enough mid-sized values that the property context's heap spans blocks.
  for (uint16_t i = 0; i < 12; ++i)
    props.push_back(BinaryProp(0x6720 + i, std::string(3000, static_cast<char>('A' + i))));
  {
    auto w = StoreWriter::Create(dir / "types.pst", {});
    ASSERT_TRUE(w.ok());
    auto inbox = (*w)->CreateFolder(kNidIpmSubtree, "Inbox");
    ASSERT_TRUE(inbox.ok());
    OutMessage m;
    m.props = props;
    ASSERT_TRUE((*w)->AddMessage(*inbox, m).ok());
    ASSERT_TRUE((*w)->Finish().ok());
  }
  ExpectCheckClean(dir / "types.pst");
  auto r = testing::Run({"pffexport", "-q", "-d", "-t", dir / "x", dir / "types.pst"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string values =
      ReadFileOrDie(dir / "x.export/Top of Outlook data file/Inbox/Message00001/ItemValues.txt");
  auto got = ParseItemValues(values).props;
  for (const auto& p : props) {
    auto it = got.find(p.tag());
    ASSERT_NE(it, got.end()) << "property 0x" << std::hex << p.tag() << " missing";
    EXPECT_EQ(it->second, p.value) << "property 0x" << std::hex << p.tag();
  }
}

// A recipient keeps every property it has, beyond Outlook's template columns
// and named ones included (by name, under this store's ids): the recipient
// table grows a column for each, and libpff reads them back byte for byte.
TEST(PstWriterTest, RecipientsKeepEveryPropertyNamedOnesToo) {
  if (!HaveProgram("pffexport")) GTEST_SKIP() << "pffexport (pff-tools) not installed";
  using namespace pst;  // NOLINT
  TempDir dir;
  const std::string common("\x08\x20\x06\x00\x00\x00\x00\x00\xC0\x00\x00\x00\x00\x00\x00\x46", 16);
  const std::string public_strings(
      "\x29\x03\x02\x00\x00\x00\x00\x00\xC0\x00\x00\x00\x00\x00\x00\x46", 16);
  OutMessage m = SimpleMessage("recipient properties", "body");
  m.recipients.push_back({Int32Prop(0x0C15, 2), StringProp(0x3001, "Carol Example"),
                          StringProp(0x3003, "carol@example.com"), StringProp(0x3002, "SMTP"),
                          StringProp(0x5FF6, "Carol (display)"), Int32Prop(0x5FFD, 0x11),
                          TimeProp(0x5FFB, 132000000000000000ull)});
  ltp::PropertyName tag;
  tag.guid = public_strings;
  tag.is_string = true;
  tag.name = "x-recipient-tag";
  ltp::PropertyName lid;
  lid.guid = common;
  lid.lid = 0x8599;
  m.recipients_named = {{},
                        {{tag, disk::kPtypString, disk::Utf8ToUtf16le("tagged")},
                         {lid, disk::kPtypInteger32, std::string("\x2a\0\0\0", 4)}}};
  {
    auto w = StoreWriter::Create(dir / "r.pst", {});
    ASSERT_TRUE(w.ok());
    auto inbox = (*w)->CreateFolder(kNidIpmSubtree, "Inbox");
    ASSERT_TRUE(inbox.ok());
    ASSERT_TRUE((*w)->AddMessage(*inbox, m).ok());
    ASSERT_TRUE((*w)->Finish().ok());
  }
  ExpectCheckClean(dir / "r.pst");
  auto r = testing::Run({"pffexport", "-q", "-d", "-t", dir / "x", dir / "r.pst"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto sets = testing::ParsePffItemValues(ReadFileOrDie(
      dir / "x.export/Top of Outlook data file/Inbox/Message00001/RecipientsItemValues.txt"));
  ASSERT_EQ(sets.size(), 2u);
  const auto& carol = sets[1];
  for (const auto& p : m.recipients[1]) {
    auto it = carol.find(p.id);
    ASSERT_NE(it, carol.end()) << "recipient property 0x" << std::hex << p.id << " missing";
    EXPECT_EQ(it->second.bytes, p.value) << "recipient property 0x" << std::hex << p.id;
  }
  std::map<std::string, std::string> named;
  for (const auto& [id, v] : carol)
    if (id >= 0x8000) named[v.maps_to] = v.bytes;
  EXPECT_EQ(named["x-recipient-tag"], disk::Utf8ToUtf16le("tagged"));
  EXPECT_EQ(named["0x00008599"], std::string("\x2a\0\0\0", 4));
  // (libpff shows the first recipient's cells in those columns as empty
  // values although their existence bits are clear: see pst_roundtrip_test.)
}

// PST -> PST keeps each message's properties as stored, bodies (text, HTML,
// compressed RTF) included, as libpff dumps them from the source and from our
// copy: every property except those that say where the object lives or that
// the writer derives (entry IDs, record key, size, attachment objects).
// Named properties (0x8000 and up) are compared by name: the copy's ids come
// from its own name-to-id map.
TEST(PstWriterTest, PstToPstKeepsPropertiesAsStored) {
  if (!HaveProgram("pffexport")) GTEST_SKIP() << "pffexport (pff-tools) not installed";
  const std::string shared = testing::SharedDataDir();
  if (shared.empty()) GTEST_SKIP() << "../shared/data is absent";
  const std::set<uint32_t> kDerived = {0x0E08, 0x0E09, 0x0E12, 0x0E13, 0x0E20,
                                       0x0FF9, 0x0FFF, 0x3701, 0x67F2, 0x67F3};
  for (const char* name : {"pstsdk-sample1.pst", "pstsdk-submessage.pst"}) {
    SCOPED_TRACE(name);
    TempDir dir;
    const std::string src = shared + "/outlook/" + name;
    auto r = RunMbxmerge({"merge", "--from", src, "--into", dir / "copy.pst"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    ExpectCheckClean(dir / "copy.pst");
    for (const auto& [pst, out] :
         {std::pair{src, dir / "a"}, std::pair{dir / "copy.pst", dir / "b"}}) {
      auto x = testing::Run({"pffexport", "-q", "-d", "-t", out, pst});
      ASSERT_EQ(x.exit_code, 0) << x.err;
    }
    auto message_values = [](const std::string& root) {
      for (const auto& e : std::filesystem::recursive_directory_iterator(root))
        if (e.path().filename() == "ItemValues.txt" &&
            e.path().parent_path().filename() == "Message00001")
          return ReadFileOrDie(e.path().string());
      return std::string();
    };
    auto before_all = ParseItemValues(message_values(dir / "a.export"));
    auto after_all = ParseItemValues(message_values(dir / "b.export"));
    const auto& before = before_all.props;
    const auto& after = after_all.props;
    ASSERT_GT(before.size(), 20u);
    ASSERT_FALSE(before_all.named.empty());
    for (const auto& [name, value] : before_all.named) {
      auto it = after_all.named.find(name);
      ASSERT_NE(it, after_all.named.end()) << "named property " << name << " lost";
      EXPECT_EQ(it->second, value) << "named property " << name;
    }
    int compared = 0;
    for (const auto& [tag, value] : before) {
      const uint32_t id = tag >> 16;
      if (id >= 0x8000 || kDerived.count(id) != 0 || (tag & 0xFFFF) == 0x000D) continue;
      auto it = after.find(tag);
      ASSERT_NE(it, after.end()) << "property 0x" << std::hex << tag << " lost";
      EXPECT_EQ(it->second, value) << "property 0x" << std::hex << tag;
      ++compared;
    }
    EXPECT_GT(compared, 20);
    // The compressed RTF body came across as stored.
    EXPECT_TRUE(before.count(0x10090102) == 0 || after.count(0x10090102) == 1);
  }
}

TEST(PstWriterTest, MergeIntoNewPstKeepsEveryMessageForLibpff) {
  TempDir dir;
  auto gen = RunMbxgen({"mailbox", "--format", "maildir", "--out", dir / "src", "--messages", "120",
                        "--folders", "3", "--seed", "7"});
  ASSERT_EQ(gen.exit_code, 0) << gen.err;
  auto r = RunMbxmerge({"merge", "--from", dir / "src", "--into", dir / "out.pst"});
  ASSERT_EQ(r.exit_code, 0) << r.err << r.out;
  EXPECT_FALSE(std::filesystem::exists(dir / "out.pst.mbxmerge-tmp"));
  ExpectCheckClean(dir / "out.pst");
  // libpff, through our PST source, reads back every message with its
  // original headers (PR_TRANSPORT_MESSAGE_HEADERS).
  auto want = MbxgenIdCounts(dir / "src");
  ASSERT_GE(want.size(), 100u);
  EXPECT_EQ(MbxgenIdCounts(dir / "out.pst"), want);
  // And the folder tree survives: INBOX and the generated folders.
  auto list_src = RunMbxmerge({"list", dir / "src"});
  auto list_pst = RunMbxmerge({"list", dir / "out.pst"});
  ASSERT_EQ(list_pst.exit_code, 0) << list_pst.err;
  for (const char* f : {"(root)"}) {
    EXPECT_NE(list_pst.out.find(f), std::string::npos) << list_pst.out;
  }
  std::regex folder_line(R"(^  (\S[^\n]*?)\s+\d+\s)", std::regex::multiline);
  for (auto it = std::sregex_iterator(list_src.out.begin(), list_src.out.end(), folder_line);
       it != std::sregex_iterator(); ++it) {
    EXPECT_NE(list_pst.out.find((*it)[1].str()), std::string::npos) << (*it)[1].str() << "\n"
                                                                    << list_pst.out;
  }
}

TEST(PstWriterTest, ReadpstReadsEveryMessageAndFolder) {
  if (!HaveProgram("readpst")) GTEST_SKIP() << "readpst (pst-utils) not installed";
  TempDir dir;
  auto gen = RunMbxgen({"mailbox", "--format", "mbox", "--out", dir / "src.mbox", "--messages",
                        "80", "--seed", "3"});
  ASSERT_EQ(gen.exit_code, 0) << gen.err;
  auto r = RunMbxmerge({"merge", "--from", dir / "src.mbox", "--into", dir / "out.pst"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ExpectCheckClean(dir / "out.pst");
  auto folders = ReadWithReadpst(dir / "out.pst", dir / "rp");
  // The mbox's only folder is the Inbox.
  std::set<std::string> ids;
  size_t total = 0;
  for (const auto& [folder, msgs] : folders) {
    total += msgs.size();
    for (const auto& m : msgs) ids.insert(testing::MbxgenId(m.substr(m.find('\n') + 1)));
  }
  auto want = MbxgenIdCounts(dir / "src.mbox");
  EXPECT_EQ(total, 80u);
  std::set<std::string> want_ids;
  for (const auto& [id, n] : want) want_ids.insert(id);
  EXPECT_EQ(ids, want_ids);
  bool inbox = false;
  for (const auto& [folder, msgs] : folders)
    inbox |= folder.size() >= 5 && folder.substr(folder.size() - 5) == "Inbox";
  EXPECT_TRUE(inbox) << "no Inbox folder in readpst's output";
}

// Values on both sides of the heap allocation limit (3,580 bytes) and of the
// block payload limit (8,176 bytes) come back byte for byte.
TEST(PstWriterTest, ValuesAroundHeapAndBlockLimits) {
  if (!HaveProgram("readpst")) GTEST_SKIP() << "readpst (pst-utils) not installed";
  TempDir dir;
  // ... and over 8,346,896 bytes (1,021 blocks): an XXBLOCK.
  const std::vector<size_t> chars = {1, 1789, 1790, 1791, 4087, 4088, 4089, 9000, 30000, 4300000};
  {
    auto w = StoreWriter::Create(dir / "edge.pst", {});
    ASSERT_TRUE(w.ok()) << w.status().ToString();
    auto inbox = (*w)->CreateFolder(kNidIpmSubtree, "Inbox");
    ASSERT_TRUE(inbox.ok());
    for (size_t n : chars) {
      std::string body;
      for (size_t i = 0; i < n; ++i) body.push_back(static_cast<char>('a' + (i * 7 + n) % 26));
      ASSERT_TRUE((*w)->AddMessage(*inbox, SimpleMessage("edge " + std::to_string(n), body)).ok());
    }
    ASSERT_TRUE((*w)->Finish().ok());
  }
  ExpectCheckClean(dir / "edge.pst");
  auto folders = ReadWithReadpst(dir / "edge.pst", dir / "rp");
  std::string all;
  size_t count = 0;
  for (const auto& [f, msgs] : folders)
    for (const auto& m : msgs) {
      all += m;
      ++count;
    }
  EXPECT_EQ(count, chars.size());
  for (size_t n : chars) {
    std::string body;
    for (size_t i = 0; i < n; ++i) body.push_back(static_cast<char>('a' + (i * 7 + n) % 26));
    EXPECT_NE(all.find(body), std::string::npos) << "body of " << n << " characters not read back";
    EXPECT_NE(all.find("Subject: edge " + std::to_string(n) + "\n"), std::string::npos);
  }
}

// Thousands of messages: node and block B-trees several levels deep, a
// contents table whose rows span many blocks, a row index over several heap
// allocations.
TEST(PstWriterTest, ThousandsOfMessagesInOneFolder) {
  TempDir dir;
  constexpr int kMessages = 3000;
  {
    auto w = StoreWriter::Create(dir / "many.pst", {});
    ASSERT_TRUE(w.ok());
    auto inbox = (*w)->CreateFolder(kNidIpmSubtree, "Inbox");
    ASSERT_TRUE(inbox.ok());
    (*w)->SetSpecialFolder(SpecialFolder::kInbox, *inbox);
    for (int i = 0; i < kMessages; ++i)
      ASSERT_TRUE(
          (*w)->AddMessage(*inbox, SimpleMessage("message " + std::to_string(i), "body")).ok());
    ASSERT_TRUE((*w)->Finish().ok());
  }
  ExpectCheckClean(dir / "many.pst");
  auto list = RunMbxmerge({"list", dir / "many.pst"});
  ASSERT_EQ(list.exit_code, 0) << list.err;
  EXPECT_NE(list.out.find("(root)"), std::string::npos);
  EXPECT_NE(list.out.find(std::to_string(kMessages)), std::string::npos) << list.out;
  if (HaveProgram("readpst")) {
    auto folders = ReadWithReadpst(dir / "many.pst", dir / "rp");
    size_t total = 0;
    for (const auto& [f, msgs] : folders) total += msgs.size();
    EXPECT_EQ(total, static_cast<size_t>(kMessages));
  }
}

// The node and block indexes spill to a scratch file past a bound (64K
// entries; 7 here) and are merged back at Finish. The file is the same as one
// written with everything in memory, node for node and block for block, with
// messages interleaved across folders (unsorted node runs) and shared
// template tables referenced after their blocks were spilled.
TEST(PstWriterTest, SpilledIndexesWriteTheSameFile) {
  TempDir dir;
  auto write = [&](const std::string& name, size_t spill) {
    StoreWriter::Options options;
    options.index_spill_entries = spill;
    auto w = StoreWriter::Create(dir / name, options);
    ASSERT_TRUE(w.ok()) << w.status().ToString();
    std::vector<uint32_t> folders;
    for (const char* f : {"Inbox", "Sent Items", "Archive"}) {
      auto nid = (*w)->CreateFolder(kNidIpmSubtree, f);
      ASSERT_TRUE(nid.ok());
      folders.push_back(*nid);
    }
    ASSERT_TRUE((*w)->CreateFolder(kNidIpmSubtree, "Empty").ok());
    for (int i = 0; i < 700; ++i)
      ASSERT_TRUE((*w)->AddMessage(folders[static_cast<size_t>(i * 7 % 3)],
                                   SimpleMessage("m" + std::to_string(i), "b"))
                      .ok());
    ASSERT_TRUE((*w)->Finish().ok());
  };
  write("memory.pst", size_t{1} << 16);
  write("spilled.pst", 7);
  ExpectCheckClean(dir / "spilled.pst");
  auto memory = pst::check::DumpStructure(dir / "memory.pst", true);
  auto spilled = pst::check::DumpStructure(dir / "spilled.pst", true);
  ASSERT_TRUE(memory.ok() && spilled.ok());
  EXPECT_GT(memory->size(), 100000u);
  // Node 0xF01's raw bytes hold two random GUIDs that the dump does not mask.
  const std::regex f01("node 0x00000f01 [^\n]*\n");
  *memory = std::regex_replace(*memory, f01, "");
  *spilled = std::regex_replace(*spilled, f01, "");
  if (*memory != *spilled) {
    size_t at = 0;
    while (at < memory->size() && at < spilled->size() && (*memory)[at] == (*spilled)[at]) ++at;
    const size_t from = at > 300 ? at - 300 : 0;
    ADD_FAILURE() << "the dumps differ at byte " << at << ":\n"
                  << memory->substr(from, 600) << "\n----\n"
                  << spilled->substr(from, 600);
  }
  // No scratch file is left beside the output.
  size_t entries = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir.path())) {
    (void)e;
    ++entries;
  }
  EXPECT_EQ(entries, 2u);
  auto list = RunMbxmerge({"list", dir / "spilled.pst"});
  ASSERT_EQ(list.exit_code, 0) << list.err;
  // Inbox (listed as the root) has i*7%3 == 0: 234 of 700; the others 233.
  EXPECT_TRUE(std::regex_search(list.out, std::regex(R"(\(root\) +234 )"))) << list.out;
  EXPECT_TRUE(std::regex_search(list.out, std::regex(R"(\n *Sent +233 )"))) << list.out;
  EXPECT_TRUE(std::regex_search(list.out, std::regex(R"(\n *Archive +233 )"))) << list.out;
}

// Folders of any depth and Unicode names, the basic multilingual plane and
// beyond; empty folders too.
TEST(PstWriterTest, UnicodeFolderTree) {
  if (!HaveProgram("readpst")) GTEST_SKIP() << "readpst (pst-utils) not installed";
  TempDir dir;
  const std::vector<std::string> names = {"Ünïcødé", "日本語のフォルダ", "Émoji 😀 𝄞", "deep",
                                          "deeper"};
  {
    auto w = StoreWriter::Create(dir / "tree.pst", {});
    ASSERT_TRUE(w.ok());
    uint32_t parent = kNidIpmSubtree;
    for (const auto& n : names) {
      auto f = (*w)->CreateFolder(parent, n);
      ASSERT_TRUE(f.ok()) << f.status().ToString();
      ASSERT_TRUE((*w)->AddMessage(*f, SimpleMessage("in " + n, "text")).ok());
      parent = *f;
    }
    ASSERT_TRUE((*w)->CreateFolder(kNidIpmSubtree, "Empty folder").ok());
    ASSERT_TRUE((*w)->Finish().ok());
  }
  ExpectCheckClean(dir / "tree.pst");
  std::filesystem::create_directories(dir / "rp");
  auto rp =
      testing::Run({"readpst", "-q", "-D", "-r", "-j", "0", "-o", dir / "rp", dir / "tree.pst"});
  ASSERT_EQ(rp.exit_code, 0) << rp.err;
  std::string path = dir / "rp";
  // readpst names the top directory after the store.
  for (const auto& e : std::filesystem::directory_iterator(path)) path = e.path().string();
  for (const auto& n : names) {
    path += "/" + n;
    EXPECT_TRUE(std::filesystem::exists(path + "/mbox")) << path;
  }
  // libpff (20180714) decodes UTF-16 surrogate pairs wrongly, so only the
  // BMP names are compared through it; readpst above sees all of them.
  auto list = RunMbxmerge({"list", dir / "tree.pst"});
  ASSERT_EQ(list.exit_code, 0) << list.err;
  EXPECT_NE(list.out.find("Ünïcødé"), std::string::npos) << list.out;
  EXPECT_NE(list.out.find("日本語のフォルダ"), std::string::npos) << list.out;
  EXPECT_NE(list.out.find("Empty folder"), std::string::npos) << list.out;
}

// The compressible (permutation) encoding, as Outlook's own files use it.
TEST(PstWriterTest, CompressibleEncodingReadsBack) {
  TempDir dir;
  auto gen = RunMbxgen({"mailbox", "--format", "mbox", "--out", dir / "src.mbox", "--messages",
                        "40", "--seed", "9"});
  ASSERT_EQ(gen.exit_code, 0) << gen.err;
  auto r = RunMbxmerge({"merge", "--from", dir / "src.mbox", "--into", dir / "c.pst",
                        "--pst-encoding", "compressible"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string f = ReadFileOrDie(dir / "c.pst");
  ASSERT_GT(f.size(), pst::disk::header::kCryptMethod);
  EXPECT_EQ(f[pst::disk::header::kCryptMethod], 1);
  ExpectCheckClean(dir / "c.pst");
  // Encoded: a subject from the source does not appear in clear.
  EXPECT_EQ(f.find(pst::disk::Utf8ToUtf16le("Subject")), std::string::npos);
  EXPECT_EQ(MbxgenIdCounts(dir / "c.pst"), MbxgenIdCounts(dir / "src.mbox"));
  if (HaveProgram("readpst")) {
    auto folders = ReadWithReadpst(dir / "c.pst", dir / "rp");
    size_t total = 0;
    for (const auto& [folder, msgs] : folders) total += msgs.size();
    EXPECT_EQ(total, 40u);
  }
}

// Merging into an existing PST rewrites it beside itself: everything it held
// plus the new messages, duplicates skipped (also on a rerun), the previous
// file kept as .bak (or not, with --no-backup), the result clean.
TEST(PstWriterTest, MergeIntoExistingPst) {
  TempDir dir;
  auto gen = RunMbxgen({"pair", "--format", "mbox", "--out-a", dir / "a.mbox", "--out-b",
                        dir / "b.mbox", "--messages", "60", "--dup-rate", "0.3", "--seed", "11",
                        "--manifest", dir / "m.tsv"});
  ASSERT_EQ(gen.exit_code, 0) << gen.err;
  ASSERT_EQ(RunMbxmerge({"merge", "--from", dir / "a.mbox", "--into", dir / "t.pst"}).exit_code, 0);
  const std::string before = ReadFileOrDie(dir / "t.pst");
  auto r = RunMbxmerge({"merge", "--from", dir / "b.mbox", "--into", dir / "t.pst"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(ReadFileOrDie(dir / "t.pst.bak"), before);
  EXPECT_FALSE(std::filesystem::exists(dir / "t.pst.mbxmerge-tmp"));
  ExpectCheckClean(dir / "t.pst");
  // Every message of the pair once: a's, then b's that were not duplicates.
  auto ids = MbxgenIdCounts(dir / "t.pst");
  const auto want = testing::ManifestIds(dir / "m.tsv");
  for (const auto& id : want) EXPECT_EQ(ids[id], 1) << id;
  EXPECT_EQ(ids.size(), want.size());
  // A rerun finds everything already there.
  r = RunMbxmerge({"merge", "--from", dir / "b.mbox", "--from", dir / "a.mbox", "--into",
                   dir / "t.pst", "--no-backup"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("0 written"), std::string::npos) << r.out;
  EXPECT_EQ(MbxgenIdCounts(dir / "t.pst"), ids);
  ExpectCheckClean(dir / "t.pst");
}

// One message stored with LF line ends (an mbox) and with CRLF (an EML from
// Windows): a quoted-printable text attachment decodes to the transport's line
// ends, so the PST keeps its canonical CRLF form (RFC 2046 4.1.1). Then both
// copies store the same bytes and the second is a duplicate in a PST target.
TEST(PstWriterTest, LfAndCrlfCopiesOfAQuotedPrintableAttachmentAreOneMessage) {
  TempDir dir;
  const std::string lf =
      "From alice@example.org Mon Jan  1 10:00:00 2024\n"
      "Message-ID: <qp-twin@example.org>\n"
      "From: Alice <alice@example.org>\n"
      "To: Bob <bob@example.org>\n"
      "Subject: notes\n"
      "Date: Mon, 1 Jan 2024 10:00:00 +0000\n"
      "MIME-Version: 1.0\n"
      "Content-Type: multipart/mixed; boundary=\"b1\"\n"
      "\n"
      "--b1\n"
      "Content-Type: text/plain; charset=utf-8\n"
      "Content-Transfer-Encoding: quoted-printable\n"
      "\n"
      "Hello Bob, caf=C3=A9\n"
      "\n"
      "--b1\n"
      "Content-Type: text/plain; charset=utf-8; name=\"notes.txt\"\n"
      "Content-Disposition: attachment; filename=\"notes.txt\"\n"
      "Content-Transfer-Encoding: quoted-printable\n"
      "\n"
      "line one\n"
      "line two =E2=82=AC\n"
      "\n"
      "--b1\n"
      "Content-Type: application/octet-stream; name=\"raw.bin\"\n"
      "Content-Disposition: attachment; filename=\"raw.bin\"\n"
      "Content-Transfer-Encoding: base64\n"
      "\n"
      "YQpiCg==\n"
      "--b1\n"
      "Content-Type: text/plain; charset=utf-16le; name=\"wide.txt\"\n"
      "Content-Disposition: attachment; filename=\"wide.txt\"\n"
      "Content-Transfer-Encoding: quoted-printable\n"
      "\n"
      "a=00=0A=00=\n"
      "--b1--\n";
  std::string crlf;
  for (char c : lf) {
    if (c == '\n') crlf += '\r';
    crlf += c;
  }
  testing::WriteFileOrDie(dir / "lf.mbox", lf);
  testing::WriteFileOrDie(dir / "crlf.mbox", crlf);
  auto attachments = [](const std::string& pst) {
    std::map<std::string, std::string> out;
    auto src = pst::OpenSource(pst);
    EXPECT_TRUE(src.ok()) << src.status().ToString();
    if (!src.ok()) return out;
    Message m;
    while (true) {
      auto more = (*src)->Next(&m);
      EXPECT_TRUE(more.ok());
      if (!more.ok() || !*more) break;
      const pst::MapiMessage* mapi = pst::MapiOf(m);
      EXPECT_NE(mapi, nullptr);
      if (mapi == nullptr) break;
      for (const auto& a : mapi->attachments)
        out[a.props.StringOr(pst::kPidAttachLongFilename)] = a.data;
    }
    return out;
  };
  for (const char* name : {"lf", "crlf"}) {
    auto r = RunMbxmerge({"merge", "--from", dir / (std::string(name) + ".mbox"), "--into",
                          dir / (std::string(name) + ".pst")});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    auto got = attachments(dir / (std::string(name) + ".pst"));
    EXPECT_EQ(got["notes.txt"], "line one\r\nline two \xE2\x82\xAC\r\n") << name;
    // A base64 part is bytes, not lines: kept exactly; so is UTF-16 text,
    // whose line break is not the byte LF.
    EXPECT_EQ(got["raw.bin"], "a\nb\n") << name;
    EXPECT_EQ(got["wide.txt"], std::string("a\0\n\0", 4)) << name;
  }
  auto r = RunMbxmerge({"merge", "--from", dir / "lf.mbox", "--from", dir / "crlf.mbox", "--into",
                        dir / "both.pst"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("1 duplicates skipped, 1 written"), std::string::npos) << r.out;
  // And a rerun of the other copy into an existing target finds it there.
  r = RunMbxmerge({"merge", "--from", dir / "crlf.mbox", "--into", dir / "lf.pst", "--no-backup"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("0 written"), std::string::npos) << r.out;
}

// Any PST libpff reads can be merged into, an ANSI one from Outlook too: the
// result is a Unicode PST with its message and folder plus the new ones.
TEST(PstWriterTest, MergeIntoOutlookAnsiPst) {
  const std::string shared = testing::SharedDataDir();
  if (shared.empty()) GTEST_SKIP() << "../shared/data is absent";
  TempDir dir;
  testing::WriteFileOrDie(dir / "ansi.pst", ReadFileOrDie(shared + "/outlook/pstsdk-sample2.pst"));
  auto gen = RunMbxgen({"mailbox", "--format", "mbox", "--out", dir / "src.mbox", "--messages",
                        "10", "--seed", "4"});
  ASSERT_EQ(gen.exit_code, 0);
  auto before = MbxgenIdCounts(dir / "ansi.pst");
  auto r = RunMbxmerge({"merge", "--from", dir / "src.mbox", "--into", dir / "ansi.pst"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ExpectCheckClean(dir / "ansi.pst");
  const std::string f = ReadFileOrDie(dir / "ansi.pst");
  EXPECT_EQ(pst::disk::Get16(reinterpret_cast<const uint8_t*>(f.data()) + pst::disk::header::kVer),
            23);
  auto after = MbxgenIdCounts(dir / "ansi.pst");
  for (const auto& [id, n] : MbxgenIdCounts(dir / "src.mbox")) EXPECT_EQ(after[id], n) << id;
  EXPECT_EQ(after["(no id)"], before["(no id)"]) << "the Outlook message is kept";
  auto list = RunMbxmerge({"list", dir / "ansi.pst"});
  EXPECT_NE(list.out.find("Sample2"), std::string::npos) << list.out;
}

TEST(PstWriterTest, ExistingNonPstTargetIsRefusedAndUntouched) {
  TempDir dir;
  auto gen = RunMbxgen(
      {"mailbox", "--format", "mbox", "--out", dir / "src.mbox", "--messages", "5", "--seed", "1"});
  ASSERT_EQ(gen.exit_code, 0);
  testing::WriteFileOrDie(dir / "a.pst", "not a PST at all\n");
  auto r = RunMbxmerge({"merge", "--from", dir / "src.mbox", "--into", dir / "a.pst"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("a.pst"), std::string::npos) << r.err;
  EXPECT_EQ(ReadFileOrDie(dir / "a.pst"), "not a PST at all\n");
  EXPECT_FALSE(std::filesystem::exists(dir / "a.pst.mbxmerge-tmp"));
}

// M1: a new store has exactly the nodes, properties, table columns and rows
// of the empty store Outlook itself creates (../shared/pst/Empty.pst).
TEST(PstWriterTest, EmptyStoreMatchesOutlooksEmptyPst) {
  const std::string shared = testing::SharedDataDir();
  if (shared.empty()) GTEST_SKIP() << "../shared/data is absent";
  const std::string outlook = shared + "/../pst/Empty.pst";
  if (!std::filesystem::exists(outlook)) GTEST_SKIP() << outlook << " is absent";
  TempDir dir;
  {
    StoreWriter::Options options;
    options.display_name = "Empty";
    auto w = StoreWriter::Create(dir / "empty.pst", options);
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE((*w)->Finish().ok());
  }
  ExpectCheckClean(dir / "empty.pst");
  auto ours = pst::check::DumpStructure(dir / "empty.pst", true);
  auto theirs = pst::check::DumpStructure(outlook, true);
  ASSERT_TRUE(ours.ok()) << ours.status().ToString();
  ASSERT_TRUE(theirs.ok()) << theirs.status().ToString();
  // Besides what DumpStructure masks (times, GUIDs, keys, entry IDs), three
  // things legitimately differ, and only their values are masked here:
  //  - table row versions (0x67F3): Outlook's update counters;
  //  - node 0xF01's raw data: two per-store GUIDs and the creation time;
  //  - the name-to-id string stream (0x0004): Outlook leaves stale bytes in
  //    the padding between names, we write zeros (the names themselves and
  //    the entry stream, compared above it, are equal).
  auto normalize = [](const std::string& dump) {
    std::istringstream in(dump);
    std::string line, out;
    while (std::getline(in, line)) {
      const size_t first = line.find_first_not_of(' ');
      const std::string body = first == std::string::npos ? "" : line.substr(first);
      if (body.rfind("0x67f30003 ", 0) == 0) line = line.substr(0, first) + "0x67f30003 <version>";
      if (body.rfind("node 0x00000f01 ", 0) == 0)
        line = line.substr(0, line.find(" data bytes=")) + " <raw>";
      if (body.rfind("prop 0x00040102 ", 0) == 0)
        line = line.substr(0, first) + "prop 0x00040102 <strings>";
      out += line + "\n";
    }
    return out;
  };
  EXPECT_EQ(normalize(*ours), normalize(*theirs));
}

TEST(PstWriterTest, HeaderAndMapsAreValid) {
  TempDir dir;
  {
    auto w = StoreWriter::Create(dir / "e.pst", {});
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE((*w)->Finish().ok());
  }
  ExpectCheckClean(dir / "e.pst");
  const std::string f = ReadFileOrDie(dir / "e.pst");
  ASSERT_EQ(f.size() % 512, 0u);
  const auto* p = reinterpret_cast<const uint8_t*>(f.data());
  using namespace pst::disk;  // NOLINT
  EXPECT_EQ(Get32(p), header::kMagicValue);
  EXPECT_EQ(Get16(p + header::kVer), 23);
  EXPECT_EQ(Get32(p + header::kCrcPartial), Crc(p + 8, header::kCrcPartialLen));
  EXPECT_EQ(Get32(p + header::kCrcFull), Crc(p + 8, header::kCrcFullLen));
  EXPECT_EQ(Get64(p + header::kRoot + header::kRootFileEof), f.size());
  // The file grows by whole AMap ranges, as the spec requires.
  EXPECT_EQ((f.size() - kFirstAMapOffset) % kAMapCoverage, 0u);
  if (HaveProgram("pffinfo")) {
    auto r = testing::Run({"pffinfo", dir / "e.pst"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("Subtree, Wastbox, Common views, Finder"), std::string::npos) << r.out;
  }
}

}  // namespace
}  // namespace mbx
