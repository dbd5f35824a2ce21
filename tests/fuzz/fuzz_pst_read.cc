// Fuzzes the PST read paths on one file: (1) libpff through pst::OpenSource,
// every folder and message (associated ones too) read and rendered as MIME,
// as `mbxmerge merge --from X.pst --into mbox` does; (2) our own reader: the
// NDB B-trees, every node's data and subnodes, its heap, property or table
// context and the name-to-id map; (3) the strict checker and the structure
// dump behind `mbxmerge check`.
#include <cstdint>
#include <string>
#include <vector>

#include "formats/pst/check/check.h"
#include "formats/pst/disk/disk.h"
#include "formats/pst/ltp/reader.h"
#include "formats/pst/ndb/reader.h"
#include "formats/pst/pst.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

using namespace mbx;  // NOLINT
namespace disk = pst::disk;
namespace ltp = pst::ltp;
namespace ndb = pst::ndb;

class CollectProblems : public ndb::TreeObserver {
 public:
  void OnPage(const ndb::BtPageVisit&) override { ++pages; }
  void OnProblem(std::string, std::string) override { ++problems; }
  size_t pages = 0, problems = 0;
};

void ReadNode(const ndb::NdbReader& reader, const ndb::NodeEntry& node) {
  auto data = reader.ReadData(node.bid_data);
  if (!data.ok()) return;
  ltp::NodeContext ctx;
  ctx.ndb = &reader;
  auto subnodes = reader.ReadSubnodes(node.bid_sub);
  if (subnodes.ok()) ctx.subnodes = std::move(*subnodes);
  if (data->blocks.empty()) return;
  auto heap = ltp::Heap::Open(std::move(*data));
  if (!heap.ok()) return;
  for (size_t b = 0; b < heap->blocks().size(); ++b) {
    (void)heap->RecordedFillLevel(b);
    (void)heap->FreeBytes(b);
  }
  if (heap->client_sig() == disk::kClientSigPc) {
    auto props = ltp::ReadPropertyContext(*heap, ctx);
    if (!props.ok()) return;
    for (const auto& p : *props) {
      if (ltp::ValidateValue(p.type, p.value).ok() && (p.type & 0x1000))
        (void)ltp::DecodeMultiValue(p.type, p.value);
    }
    if (node.nid == disk::kNidNameToIdMap) (void)ltp::DecodeNameToIdMap(*props);
  } else if (heap->client_sig() == disk::kClientSigTc) {
    auto table = ltp::ReadTableContext(*heap, ctx);
    if (table.ok()) (void)ltp::ValidateTableInfo(table->info);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = fuzz::WriteScratch("in.pst", data, size);

  (void)pst::HasPstMagic(path);
  pst::PstSourceOptions opts;
  opts.associated = true;
  // Recovery scans the whole file; do it for some inputs only.
  opts.recover_deleted = size > 0 && (data[size - 1] & 1) != 0;
  if (auto source = pst::OpenSource(path, opts); source.ok()) {
    (void)pst::FoldersOf(source->get());
    fuzz::Drain(**source);
  }

  if (auto reader = ndb::NdbReader::Open(path); reader.ok()) {
    CollectProblems observer;
    if (reader->LoadTrees(&observer).ok()) {
      for (const auto& node : reader->nodes()) ReadNode(*reader, node);
      for (const auto& block : reader->blocks()) (void)reader->ReadBlockRaw(block.bid);
    }
  }
  (void)pst::check::CheckPst(path);
  (void)pst::check::DumpStructure(path, true);
  return 0;
}
