// Round trip of random message models through the PST writer and libpff:
// random properties of every type the writer stores (sizes across the heap
// and block limits), random recipients and attachments, embedded messages;
// written, checked by the strict checker, read back with `pffexport -d` and
// compared property by property and attachment byte by byte. And our own
// reader (formats/pst/native_store.h) against libpff on the same models and on
// the real Outlook files: the same messages, property by property.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "engine/mailbox.h"
#include "formats/pst/check/check.h"
#include "formats/pst/disk/disk.h"
#include "formats/pst/mapi.h"
#include "formats/pst/messaging/store_writer.h"
#include "formats/pst/ndb/reader.h"
#include "formats/pst/pst.h"
#include "tests/pst_oracles.h"
#include "tests/test_util.h"

namespace mbx {
namespace {

using namespace pst::messaging;  // NOLINT
namespace disk = pst::disk;
namespace ltp = pst::ltp;
using testing::ReadFileOrDie;
using testing::TempDir;

class Model {
 public:
  explicit Model(uint32_t seed) : rng_(seed) {}

  size_t Size() {
    // Sizes around the limits that change how a value is stored.
    static constexpr size_t kEdges[] = {0, 1, 2, 7, 100, 3579, 3580, 3581, 8175, 8176, 8177, 20000};
    if (Pick(3) == 0) return Pick(200);
    return kEdges[Pick(std::size(kEdges))];
  }
  std::string Bytes(size_t n) {
    std::string s(n, '\0');
    for (auto& c : s) c = static_cast<char>(Pick(256));
    return s;
  }
  std::string Text(size_t chars) {
    static const char* kPieces[] = {"a", "Z", " ", "ü", "日", "😀", "\n", "—"};
    std::string s;
    for (size_t i = 0; i < chars; ++i) s += kPieces[Pick(std::size(kPieces))];
    return s;
  }

  ltp::Property RandomProperty(uint16_t id) {
    switch (Pick(12)) {
      case 0:
        return {id, disk::kPtypInteger16, Bytes(2)};
      case 1:
        return {id, disk::kPtypInteger32, Bytes(4)};
      case 2:
        return {id, disk::kPtypFloating64, Bytes(8)};
      case 3:
        return {id, disk::kPtypCurrency, Bytes(8)};
      case 4:
        return BoolProp(id, Pick(2) == 1);
      case 5:
        return {id, disk::kPtypInteger64, Bytes(8)};
      case 6:
        return TimeProp(id, 116444736000000000ull + Pick(1u << 30) * 10000000ull);
      case 7:
        return {id, disk::kPtypGuid, Bytes(16)};
      case 8:
        return BinaryProp(id, Bytes(Size()));
      case 9:
        return StringProp(id, Text(Size() / 2));
      case 10: {
        std::vector<std::string> v;
        for (size_t i = 0, n = Pick(5); i < n; ++i) v.push_back(Bytes(4));
        return {id, disk::kPtypMultipleInteger32,
                ltp::EncodeMulti(disk::kPtypMultipleInteger32, v)};
      }
      default: {
        std::vector<std::string> v;
        for (size_t i = 0, n = 1 + Pick(4); i < n; ++i) v.push_back(Bytes(Pick(300)));
        return {id, disk::kPtypMultipleBinary, ltp::EncodeMulti(disk::kPtypMultipleBinary, v)};
      }
    }
  }

  OutMessage RandomMessage(int depth) {
    OutMessage m;
    m.props.push_back(StringProp(0x0037, "roundtrip " + std::to_string(Pick(1000000))));
    for (uint16_t id = 0x6701, n = static_cast<uint16_t>(id + 1 + Pick(25)); id < n; ++id) {
      m.props.push_back(RandomProperty(id));
    }
    for (size_t i = 0, n = Pick(6); i < n; ++i) {
      const std::string email = "r" + std::to_string(i) + "@example.org";
      m.recipients.push_back({Int32Prop(0x0C15, 1 + static_cast<uint32_t>(Pick(3))),
                              StringProp(0x3001, Text(1 + Pick(20))), StringProp(0x3003, email),
                              StringProp(0x3002, "SMTP")});
    }
    for (size_t i = 0, n = Pick(4); i < n; ++i) {
      OutAttachment a;
      if (depth < 2 && Pick(5) == 0) {
        a.embedded = std::make_shared<const OutMessage>(RandomMessage(depth + 1));
        a.props.push_back(StringProp(0x3001, "embedded"));
      } else {
        const std::string name = "att" + std::to_string(i) + ".bin";
        a.props = {StringProp(0x3707, name), StringProp(0x3704, name)};
        a.data = Bytes(Pick(2) == 0 ? Size() : Pick(40000));
      }
      m.attachments.push_back(std::move(a));
    }
    return m;
  }

 private:
  size_t Pick(size_t n) { return std::uniform_int_distribution<size_t>(0, n - 1)(rng_); }
  std::mt19937 rng_;
};

// pffexport -d's ItemValues.txt of one item (its own properties; recipients
// and attachments have files of their own) as tag -> bytes.
std::map<uint32_t, std::string> FirstRecordSet(const std::string& text) {
  std::map<uint32_t, std::string> out;
  auto sets = testing::ParsePffItemValues(text);
  if (!sets.empty())
    for (const auto& [id, v] : sets[0]) out[(id << 16) | v.value_type] = v.bytes;
  return out;
}

// The digests of the by-value attachments pffexport wrote for one message.
std::multiset<std::string> AttachmentDigests(const std::filesystem::path& message_dir) {
  std::multiset<std::string> out;
  const auto dir = message_dir / "Attachments";
  if (!std::filesystem::exists(dir)) return out;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    if (!e.is_regular_file() || e.path().filename() == "ItemValues.txt") continue;
    out.insert(testing::Sha256Hex(ReadFileOrDie(e.path().string())));
  }
  return out;
}

class PstRoundTripTest : public ::testing::TestWithParam<uint32_t> {};

TEST_P(PstRoundTripTest, RandomModelsReadBackThroughLibpff) {
  if (!testing::HaveProgram("pffexport")) GTEST_SKIP() << "pffexport (pff-tools) not installed";
  Model model(GetParam());
  TempDir dir;
  std::vector<OutMessage> written;
  {
    auto w = StoreWriter::Create(dir / "r.pst", {});
    ASSERT_TRUE(w.ok()) << w.status().ToString();
    auto folder = (*w)->CreateFolder(kNidIpmSubtree, "Random");
    ASSERT_TRUE(folder.ok());
    for (int i = 0; i < 12; ++i) {
      written.push_back(model.RandomMessage(0));
      auto r = (*w)->AddMessage(*folder, written.back());
      ASSERT_TRUE(r.ok()) << r.status().ToString();
    }
    ASSERT_TRUE((*w)->Finish().ok());
  }
  auto report = pst::check::CheckPst(dir / "r.pst");
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_TRUE(report->violations.empty())
      << report->violations.front().location << ": " << report->violations.front().message;

  auto x = testing::Run({"pffexport", "-q", "-d", "-t", dir / "x", dir / "r.pst"});
  ASSERT_EQ(x.exit_code, 0) << x.err;
  const std::filesystem::path folder = dir / "x.export/Top of Outlook data file/Random";
  for (size_t i = 0; i < written.size(); ++i) {
    SCOPED_TRACE("message " + std::to_string(i + 1));
    char name[32];
    snprintf(name, sizeof name, "Message%05zu", i + 1);
    const auto message_dir = folder / name;
    ASSERT_TRUE(std::filesystem::exists(message_dir / "ItemValues.txt")) << message_dir;
    auto got = FirstRecordSet(ReadFileOrDie((message_dir / "ItemValues.txt").string()));
    for (const auto& p : written[i].props) {
      auto it = got.find(p.tag());
      ASSERT_NE(it, got.end()) << "property 0x" << std::hex << p.tag() << " missing";
      EXPECT_EQ(it->second, p.value) << "property 0x" << std::hex << p.tag();
    }
    std::multiset<std::string> want;
    for (const auto& a : written[i].attachments)
      if (!a.embedded && !a.data.empty()) want.insert(testing::Sha256Hex(a.data));
    std::multiset<std::string> have = AttachmentDigests(message_dir);
    // pffexport writes an empty attachment as an empty file too; compare the non-empty ones.
    have.erase(testing::Sha256Hex(""));
    EXPECT_EQ(have, want);
  }
}

INSTANTIATE_TEST_SUITE_P(Seeds, PstRoundTripTest, ::testing::Values(1u, 2u, 3u, 4u, 5u, 6u));

// ---- Our own reader against libpff ----

std::string Describe(const pst::PropValue& v) {
  std::ostringstream o;
  o << "type 0x" << std::hex << v.type << std::dec << ", " << v.data.size() << " bytes, "
    << v.values.size() << " values" << (v.name ? ", named" : "");
  return o.str();
}

// PS_MAPI and PS_PUBLIC_STRINGS, which a name-to-id map entry names by index
// (wGuid 1 and 2, [MS-PST] 2.4.7.1) rather than in its GUID stream.
bool IsWellKnownPropertySet(const std::string& guid) {
  static const std::string kPsMapi(
      "\x28\x03\x02\x00\x00\x00\x00\x00\xC0\x00\x00\x00\x00\x00\x00\x46", 16);
  static const std::string kPsPublicStrings(
      "\x29\x03\x02\x00\x00\x00\x00\x00\xC0\x00\x00\x00\x00\x00\x00\x46", 16);
  return guid == kPsMapi || guid == kPsPublicStrings;
}

// Where the two readers differ, libpff is wrong, and ours is held to the spec:
// - libpff reports a table cell whose existence bit is clear ([MS-PST]
//   2.3.4.4.1) as an empty value; ours leaves the property out.
// - libpff gives a named property in PS_MAPI or PS_PUBLIC_STRINGS an all-zero
//   GUID; ours gives the property set's GUID.
void ExpectSameBag(const pst::PropertyBag& ours, const pst::PropertyBag& libpff,
                   const std::string& where, bool table_row = false) {
  for (const auto& [id, want] : libpff.all()) {
    const pst::PropValue* got = ours.Find(id);
    if (got == nullptr && table_row && want.values.empty() &&
        want.data.find_first_not_of('\0') == std::string::npos)
      continue;  // an absent cell
    if (got == nullptr) {
      ADD_FAILURE() << where << ": property 0x" << std::hex << id << " missing (" << Describe(want)
                    << ")";
      continue;
    }
    EXPECT_EQ(got->type, want.type) << where << ": property 0x" << std::hex << id;
    EXPECT_EQ(got->data, want.data) << where << ": property 0x" << std::hex << id;
    EXPECT_EQ(got->values, want.values) << where << ": property 0x" << std::hex << id;
    EXPECT_EQ(got->name.has_value(), want.name.has_value())
        << where << ": property 0x" << std::hex << id;
    if (got->name && want.name) {
      if (want.name->guid == std::string(16, '\0')) {
        EXPECT_TRUE(IsWellKnownPropertySet(got->name->guid)) << where << ": 0x" << std::hex << id;
      } else {
        EXPECT_EQ(got->name->guid, want.name->guid) << where << ": name of 0x" << std::hex << id;
      }
      EXPECT_EQ(got->name->is_string, want.name->is_string) << where << ": 0x" << std::hex << id;
      EXPECT_EQ(got->name->lid, want.name->lid) << where << ": name of 0x" << std::hex << id;
      EXPECT_EQ(got->name->name, want.name->name) << where << ": name of 0x" << std::hex << id;
    }
  }
  for (const auto& [id, v] : ours.all()) {
    EXPECT_NE(libpff.Find(id), nullptr)
        << where << ": property 0x" << std::hex << id << " only in ours (" << Describe(v) << ")";
  }
}

void ExpectSameMessage(const pst::MapiMessage& ours, const pst::MapiMessage& libpff,
                       const std::string& where) {
  ExpectSameBag(ours.props, libpff.props, where);
  ASSERT_EQ(ours.recipients.size(), libpff.recipients.size()) << where << ": recipients";
  for (size_t i = 0; i < ours.recipients.size(); ++i)
    ExpectSameBag(ours.recipients[i], libpff.recipients[i],
                  where + " recipient " + std::to_string(i + 1), /*table_row=*/true);
  ASSERT_EQ(ours.attachments.size(), libpff.attachments.size()) << where << ": attachments";
  for (size_t i = 0; i < ours.attachments.size(); ++i) {
    const std::string which = where + " attachment " + std::to_string(i + 1);
    const auto& a = ours.attachments[i];
    const auto& b = libpff.attachments[i];
    ExpectSameBag(a.props, b.props, which);
    EXPECT_EQ(testing::Sha256Hex(a.data), testing::Sha256Hex(b.data)) << which << ": contents";
    ASSERT_EQ(a.embedded != nullptr, b.embedded != nullptr) << which << ": embedded message";
    if (a.embedded) ExpectSameMessage(*a.embedded, *b.embedded, which + " embedded");
  }
}

struct Reading {
  std::vector<FolderInfo> folders;
  std::vector<Message> messages;
};

Reading ReadAll(const std::string& path, pst::PstReader reader, bool associated) {
  pst::PstSourceOptions opts;
  opts.reader = reader;
  opts.associated = associated;
  Reading out;
  auto src = pst::OpenSource(path, opts);
  EXPECT_TRUE(src.ok()) << src.status().ToString();
  if (!src.ok()) return out;
  EXPECT_EQ(pst::ReadsNatively(src->get()), reader == pst::PstReader::kNative);
  auto folders = (*src)->ListFolders();
  EXPECT_TRUE(folders.ok());
  if (folders.ok()) out.folders = *folders;
  for (;;) {
    Message m;
    auto more = (*src)->Next(&m);
    EXPECT_TRUE(more.ok()) << more.status().ToString();
    if (!more.ok() || !*more) break;
    out.messages.push_back(std::move(m));
  }
  return out;
}

// Both readers on one file: the same folders with the same counts and sizes,
// the same messages in the same order, property by property, and the same MIME.
void ExpectReadersAgree(const std::string& path, bool associated) {
  SCOPED_TRACE(path + (associated ? " with associated contents" : ""));
  const Reading ours = ReadAll(path, pst::PstReader::kNative, associated);
  const Reading theirs = ReadAll(path, pst::PstReader::kLibpff, associated);
  ASSERT_EQ(ours.folders.size(), theirs.folders.size());
  for (size_t i = 0; i < ours.folders.size(); ++i) {
    EXPECT_EQ(ours.folders[i].path, theirs.folders[i].path);
    EXPECT_EQ(ours.folders[i].messages, theirs.folders[i].messages) << ours.folders[i].path;
    EXPECT_EQ(ours.folders[i].bytes, theirs.folders[i].bytes) << ours.folders[i].path;
  }
  ASSERT_EQ(ours.messages.size(), theirs.messages.size());
  ASSERT_FALSE(ours.messages.empty());
  for (size_t i = 0; i < ours.messages.size(); ++i) {
    const Message& a = ours.messages[i];
    const Message& b = theirs.messages[i];
    const std::string where = "message " + std::to_string(i + 1) + " (" + b.origin + ")";
    EXPECT_EQ(a.folder, b.folder) << where;
    EXPECT_EQ(a.source_token, b.source_token) << where;
    EXPECT_EQ(a.associated, b.associated) << where;
    EXPECT_EQ(a.flags, b.flags) << where;
    EXPECT_EQ(a.origin, b.origin) << where;
    ASSERT_EQ(a.read_error.has_value(), b.read_error.has_value()) << where;
    if (a.read_error) continue;
    const pst::MapiMessage* ma = pst::MapiOf(a);
    const pst::MapiMessage* mb = pst::MapiOf(b);
    ASSERT_TRUE(ma != nullptr && mb != nullptr) << where;
    ExpectSameMessage(*ma, *mb, where);
    auto mime_a = a.Mime();
    auto mime_b = b.Mime();
    ASSERT_TRUE(mime_a.ok() && mime_b.ok()) << where;
    EXPECT_EQ(*mime_a, *mime_b) << where;
  }
}

TEST_P(PstRoundTripTest, RandomModelsReadTheSameThroughOurReaderAndLibpff) {
  Model model(GetParam() + 100);
  TempDir dir;
  {
    auto w = StoreWriter::Create(dir / "r.pst", {});
    ASSERT_TRUE(w.ok()) << w.status().ToString();
    auto folder = (*w)->CreateFolder(kNidIpmSubtree, "Random");
    ASSERT_TRUE(folder.ok());
    auto sub = (*w)->CreateFolder(*folder, "Sub");
    ASSERT_TRUE(sub.ok());
    for (int i = 0; i < 10; ++i) {
      auto r = (*w)->AddMessage(i % 3 == 0 ? *sub : *folder, model.RandomMessage(0));
      ASSERT_TRUE(r.ok()) << r.status().ToString();
    }
    ASSERT_TRUE((*w)->Finish().ok());
  }
  ExpectReadersAgree(dir / "r.pst", false);
}

TEST(PstNativeReaderTest, RealOutlookFilesReadTheSameAsThroughLibpff) {
  const auto files = testing::SharedOutlookFiles();
  if (files.empty()) GTEST_SKIP() << "shared Outlook files not found (../shared/data/outlook)";
  int four_k = 0;
  for (const std::string& path : files) {
    auto ndb = pst::ndb::NdbReader::Open(path);
    if (!ndb.ok()) {
      // ANSI files are libpff's: ours refuses them, and the default reads them through libpff.
      EXPECT_EQ(ndb.status().code(), Status::Code::kUnsupported) << path;
      pst::PstSourceOptions opts;
      opts.reader = pst::PstReader::kNative;
      EXPECT_FALSE(pst::OpenSource(path, opts).ok()) << path;
      auto src = pst::OpenSource(path);
      ASSERT_TRUE(src.ok()) << src.status().ToString();
      EXPECT_FALSE(pst::ReadsNatively(src->get())) << path;
      continue;
    }
    if (ndb->four_k_pages()) ++four_k;
    ExpectReadersAgree(path, false);
    ExpectReadersAgree(path, true);
    // The default reader is ours.
    auto src = pst::OpenSource(path);
    ASSERT_TRUE(src.ok()) << src.status().ToString();
    EXPECT_TRUE(pst::ReadsNatively(src->get())) << path;
  }
  // The 4 KiB-page, zlib-compressed OSTs of Outlook 2013 are among them.
  if (files.size() >= 7) {
    EXPECT_GE(four_k, 2);
  }
}

}  // namespace
}  // namespace mbx
