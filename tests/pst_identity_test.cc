// PST -> PST identity as libpff sees it: every real Outlook file in
// ../shared/data (4 KiB-page OSTs and ANSI stores included) is merged into a
// new PST, `pffexport -d` exports the source and the copy, and every item is
// the same in both: each property of the message, of each recipient and of
// each attachment, the attachment files' bytes, every file pffexport renders
// (bodies, headers, recipient lists), embedded messages recursively.
//
// Allowed differences, and only these:
// - properties that say where an object lives or that the writer derives
//   (entry and parent IDs, record keys, sizes, row ids, object pointers);
// - properties the writer adds when the source has none (message class,
//   flags, creation and modification times, search key, attach method);
// - an ANSI source's 8-bit strings are Unicode in the copy: strings compare
//   as text;
// - the folders above the IPM subtree, which the copy names as its own store.
#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>

#include "formats/pst/disk/disk.h"
#include "formats/pst/ltp/reader.h"
#include "formats/pst/mapi_to_mime.h"
#include "tests/pst_oracles.h"
#include "tests/test_util.h"

namespace mbx {
namespace {

namespace fsys = std::filesystem;
using testing::PffSet;

// Location and derived properties, on messages and attachments.
const std::set<uint32_t> kDerived = {0x0E08, 0x0E09, 0x0E12, 0x0E13, 0x0E20,
                                     0x0FF9, 0x0FFF, 0x3701, 0x67F2, 0x67F3};
// On recipients only the row bookkeeping is the writer's.
const std::set<uint32_t> kRecipientDerived = {0x3000, 0x67F2, 0x67F3};
// What the writer supplies when the source has none.
const std::set<uint32_t> kWriterDefaults = {0x001A, 0x0E07, 0x0E17, 0x0E1B, 0x3007,
                                            0x3008, 0x300B, 0x3705, 0x370B};
// The same in the summaries pffexport renders (Appointment.txt...).
const std::set<std::string> kWriterDefaultLabels = {"Creation time", "Modification time", "Status",
                                                    "Flags"};

// A property's identity across stores: its id, or a named property's name
// (ids differ from store to store); strings as one kind, 8-bit or Unicode.
std::string PropKey(uint32_t id, const testing::PffValue& v) {
  uint32_t type = v.value_type;
  if (type == 0x001E) type = 0x001F;
  if (type == 0x101E) type = 0x101F;
  char t[8];
  std::snprintf(t, sizeof t, "%04x", type);
  if (id >= 0x8000) return "named " + v.maps_to + "/" + t;
  char k[16];
  std::snprintf(k, sizeof k, "%04x/%s", id, t);
  return k;
}

std::string PropValue(const testing::PffValue& v) {
  // Long text by its digest, so that a difference reads in one line.
  auto text = [](std::string t) { return t.size() <= 120 ? t : testing::Sha256Hex(t) + " (text)"; };
  // Text without the terminating NULs some writers store (Exchange does).
  auto decode = [](std::string_view raw, bool utf16) {
    std::string out;
    if (utf16) {
      out = pst::disk::Utf16leToUtf8(raw);
    } else {
      pst::AppendCodepage(&out, raw, 0);
    }
    while (!out.empty() && out.back() == '\0') out.pop_back();
    return out;
  };
  if (v.value_type == 0x001F || v.value_type == 0x001E)
    return text(decode(v.bytes, v.value_type == 0x001F));
  if (v.value_type == 0x101F || v.value_type == 0x101E) {
    auto values = pst::ltp::DecodeMultiValue(static_cast<uint16_t>(v.value_type), v.bytes);
    if (values.ok()) {
      std::string out = std::to_string(values->size()) + " strings:";
      for (const auto& value : *values) out += " [" + decode(value, v.value_type == 0x101F) + "]";
      return text(out);
    }
  }
  return testing::Sha256Hex(v.bytes) + " (" + std::to_string(v.bytes.size()) + " bytes)";
}

using Flat = std::map<std::string, std::string>;

void AddSet(Flat* out, const std::string& prefix, const PffSet& set,
            const std::set<uint32_t>& derived) {
  // pffexport names a named property without its property set, so names can
  // repeat (EntityExtraction/Url1.0 in two sets): their values compare as a
  // sorted list, since ids (and so the order) differ between stores.
  std::map<std::string, std::vector<std::string>> values;
  for (const auto& [id, v] : set) {
    if (derived.count(id) != 0 || v.value_type == 0x000D) continue;
    values[prefix + PropKey(id, v)].push_back(PropValue(v));
  }
  for (auto& [key, list] : values) {
    std::sort(list.begin(), list.end());
    std::string joined;
    for (const auto& v : list) joined += (joined.empty() ? "" : " | ") + v;
    (*out)[key] = joined;
  }
}

std::vector<PffSet> ReadSets(const fsys::path& file) {
  if (!fsys::exists(file)) return {};
  return testing::ParsePffItemValues(testing::ReadFileOrDie(file.string()));
}

// A file pffexport renders: a summary of "Label:<tabs>value" lines
// (Appointment.txt, OutlookHeaders.txt, Recipients.txt...) line by line,
// without the size; anything else (bodies, headers) by its digest.
void AddRenderedFile(Flat* out, const std::string& key, const std::string& text) {
  std::vector<std::pair<std::string, std::string>> lines;
  std::istringstream in(text);
  std::string line;
  bool summary = true;
  while (std::getline(in, line)) {
    if (line.empty() || (line.back() == ':' && line.find('\t') == std::string::npos))
      continue;  // a heading ("Message:")
    const size_t colon = line.find(":\t");
    if (colon == std::string::npos) {
      summary = false;
      break;
    }
    const size_t value = line.find_first_not_of('\t', colon + 1);
    lines.emplace_back(line.substr(0, colon), value == std::string::npos ? "" : line.substr(value));
  }
  if (!summary || lines.empty()) {
    (*out)[key] = testing::Sha256Hex(text);
    return;
  }
  std::map<std::string, int> seen;
  for (const auto& [label, value] : lines) {
    if (label == "Size") continue;
    const int n = ++seen[label];
    (*out)[key + ": " + label + (n > 1 ? " #" + std::to_string(n) : "")] = value;
  }
}

// One exported item (a directory like Message00007), flattened.
void FlattenItem(const fsys::path& dir, const std::string& prefix, Flat* out) {
  auto sets = ReadSets(dir / "ItemValues.txt");
  if (!sets.empty()) AddSet(out, prefix, sets[0], kDerived);
  auto recipients = ReadSets(dir / "RecipientsItemValues.txt");
  for (size_t i = 0; i < recipients.size(); ++i)
    AddSet(out, prefix + "recipient " + std::to_string(i) + ": ", recipients[i], kRecipientDerived);
  for (const auto& e : fsys::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (e.is_regular_file() && name.find("ItemValues.txt") == std::string::npos)
      AddRenderedFile(out, prefix + "file " + name, testing::ReadFileOrDie(e.path().string()));
  }
  const fsys::path attachments = dir / "Attachments";
  if (!fsys::is_directory(attachments)) return;
  auto att_sets = ReadSets(attachments / "ItemValues.txt");
  for (size_t i = 0; i < att_sets.size(); ++i)
    AddSet(out, prefix + "attachment " + std::to_string(i) + ": ", att_sets[i], kDerived);
  for (const auto& e : fsys::directory_iterator(attachments)) {
    const std::string name = e.path().filename().string();
    if (e.is_regular_file() && name != "ItemValues.txt") {
      (*out)[prefix + "attachment file " + name] =
          testing::Sha256Hex(testing::ReadFileOrDie(e.path().string()));
    } else if (e.is_directory()) {
      for (const auto& inner : fsys::directory_iterator(e.path()))
        if (inner.is_directory())
          FlattenItem(inner.path(), prefix + name + "/" + inner.path().filename().string() + "/",
                      out);
    }
  }
}

struct Item {
  std::string where;  // the export path, for messages
  Flat flat;
};

// Items by "folder name | class | subject | submit time | n" (n counts equal
// keys in listing order).
std::map<std::string, Item> ExportItems(const std::string& pst, const std::string& target) {
  auto r = testing::Run({"pffexport", "-q", "-d", "-t", target, pst});
  EXPECT_EQ(r.exit_code, 0) << pst << ": " << r.err;
  std::map<std::string, Item> items;
  const std::regex item_dir("[A-Za-z ]+[0-9]{5}");
  std::vector<fsys::path> dirs;
  for (const auto& e : fsys::recursive_directory_iterator(target + ".export")) {
    if (!e.is_directory()) continue;
    const fsys::path p = e.path();
    if (!std::regex_match(p.filename().string(), item_dir)) continue;
    if (p.string().find("/Attachments/") != std::string::npos) continue;
    dirs.push_back(p);
  }
  std::sort(dirs.begin(), dirs.end());
  for (const auto& p : dirs) {
    Item item;
    item.where = p.string();
    FlattenItem(p, "", &item.flat);
    auto field = [&](const char* key) {
      auto it = item.flat.find(key);
      return it == item.flat.end() ? std::string("-") : it->second;
    };
    std::string key = p.parent_path().filename().string() + " | " + field("001a/001f") + " | " +
                      field("0037/001f") + " | " + field("0039/0040");
    int n = 1;
    while (items.count(key + " | " + std::to_string(n)) != 0) ++n;
    items[key + " | " + std::to_string(n)] = std::move(item);
  }
  return items;
}

class PstIdentityTest : public ::testing::TestWithParam<std::string> {};

TEST_P(PstIdentityTest, EveryItemAsPffexportSeesItIsKept) {
  if (!testing::HaveProgram("pffexport")) GTEST_SKIP() << "pffexport (pff-tools) not installed";
  const std::string& source = GetParam();
  testing::TempDir dir;
  auto r = testing::RunMbxmerge({"merge", "--from", source, "--into", dir / "copy.pst"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(testing::PstCheckViolations(dir / "copy.pst"), "");

  const auto before = ExportItems(source, dir / "a");
  const auto after = ExportItems(dir / "copy.pst", dir / "b");
  EXPECT_EQ(before.size(), after.size());
  size_t compared = 0;
  for (const auto& [key, item] : before) {
    SCOPED_TRACE(key);
    auto it = after.find(key);
    if (it == after.end()) {
      ADD_FAILURE() << "no copy of " << item.where;
      continue;
    }
    const Flat& copy = it->second.flat;
    for (const auto& [prop, value] : item.flat) {
      auto c = copy.find(prop);
      if (c == copy.end()) {
        ADD_FAILURE() << item.where << ": " << prop << " lost (was " << value << ")";
      } else if (c->second != value) {
        ADD_FAILURE() << item.where << ": " << prop << " is '" << c->second << "', was '" << value
                      << "'";
      }
      ++compared;
    }
    for (const auto& [prop, value] : copy) {
      if (item.flat.count(prop) != 0) continue;
      // A writer default may be added: "0e17/0003", "... file Appointment.txt: Status".
      const size_t space = prop.rfind(' ');
      const std::string tail = prop.substr(space == std::string::npos ? 0 : space + 1);
      const size_t label = prop.find(".txt: ");
      const bool is_default =
          (tail.size() == 9 && tail[4] == '/' &&
           kWriterDefaults.count(std::stoul(tail.substr(0, 4), nullptr, 16)) != 0) ||
          (label != std::string::npos && kWriterDefaultLabels.count(prop.substr(label + 6)) != 0);
      EXPECT_TRUE(is_default) << it->second.where << ": " << prop << " = '" << value
                              << "' is not in the source";
    }
  }
  for (const auto& [key, item] : after)
    EXPECT_TRUE(before.count(key)) << "an item the source does not have: " << item.where;
  // Something was compared, unless the store holds no items.
  if (!before.empty()) {
    EXPECT_GT(compared, before.size() * 10);
  }
}

std::string FileParamName(const ::testing::TestParamInfo<std::string>& info) {
  std::string name = fsys::path(info.param).filename().string();
  for (char& c : name)
    if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
  return name;
}

INSTANTIATE_TEST_SUITE_P(SharedFiles, PstIdentityTest,
                         ::testing::ValuesIn(testing::SharedOutlookFiles()), FileParamName);
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(PstIdentityTest);

}  // namespace
}  // namespace mbx
