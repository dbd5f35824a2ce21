// Round trip of random message models through the PST writer and libpff:
// random properties of every type the writer stores (sizes across the heap
// and block limits), random recipients and attachments, embedded messages;
// written, checked by the strict checker, read back with `pffexport -d` and
// compared property by property and attachment byte by byte.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "formats/pst/check/check.h"
#include "formats/pst/disk/disk.h"
#include "formats/pst/messaging/store_writer.h"
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

}  // namespace
}  // namespace mbx
