#include "formats/pst/messaging/store_writer.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <random>
#include <set>

#include "engine/fs.h"
#include "formats/pst/messaging/schema.h"

namespace mbx::pst::messaging {

using disk::MakeNid;
using disk::WithNidType;
using ltp::Property;
using Row = ltp::RowValues;

namespace {

constexpr uint32_t kTagRowId = 0x67F20003;
constexpr uint32_t kMsgFlagAssociated = 0x40;  // MSGFLAG_ASSOCIATED
constexpr uint32_t kTagRowVersion = 0x67F30003;

std::string Le32(uint32_t v) {
  std::string s(4, '\0');
  disk::Put32(reinterpret_cast<uint8_t*>(s.data()), v);
  return s;
}
std::string Le64(uint64_t v) {
  std::string s(8, '\0');
  disk::Put64(reinterpret_cast<uint8_t*>(s.data()), v);
  return s;
}

uint64_t NowFileTime() {
  using namespace std::chrono;
  const auto unix_100ns =
      duration_cast<nanoseconds>(system_clock::now().time_since_epoch()).count() / 100;
  return static_cast<uint64_t>(unix_100ns) + 116444736000000000ull;
}

std::string RandomBytes(size_t n) {
  std::random_device rd;
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rd() & 0xFF);
  return s;
}

std::string AsciiLower(std::string_view s) {
  std::string out(s);
  for (auto& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

const Property* FindProp(const std::vector<Property>& props, uint16_t id) {
  for (const auto& p : props)
    if (p.id == id) return &p;
  return nullptr;
}

// A contents- or attachment-table row: the columns the object also has as
// properties carry the same values ([MS-PST] 2.4.4.5.1).
Row RowFromProps(uint32_t row_id, const ltp::TableSchema& schema,
                 const std::vector<Property>& props) {
  Row row;
  row.row_id = row_id;
  row.cells[kTagRowVersion] = Le32(1);
  for (const auto& c : schema.columns) {
    const auto* p = FindProp(props, static_cast<uint16_t>(c.tag >> 16));
    if (p != nullptr && p->tag() == c.tag) row.cells[c.tag] = p->value;
  }
  return row;
}

// A schema's tags in existence-bit order: Outlook's templates give the bits
// in the order of their columns, which is the order Layout() takes.
std::vector<uint32_t> TagsByBit(const ltp::TableSchema& schema) {
  std::vector<std::pair<uint8_t, uint32_t>> by_bit;
  for (const auto& c : schema.columns) by_bit.emplace_back(c.ibit, c.tag);
  std::sort(by_bit.begin(), by_bit.end());
  std::vector<uint32_t> tags;
  for (const auto& [bit, tag] : by_bit) tags.push_back(tag);
  return tags;
}

// The recipient table: Outlook's template columns plus the SMTP address when
// `smtp`, and the recipient's row id, laid out afresh. Without the SMTP column
// when no recipient has one: a column no row fills reads as an empty value
// through libpff, which a copy of an OST's table must not add.
const ltp::TableSchema& RecipientSchema(bool smtp) {
  auto layout = [](bool with_smtp) {
    std::vector<uint32_t> tags = TagsByBit(schema::RecipientTable());
    if (with_smtp) tags.push_back(0x39FE001F);  // PidTagSmtpAddress
    tags.push_back(0x30000003);                 // PidTagRowid
    return ltp::TableSchema::Layout(tags);
  };
  static const ltp::TableSchema with = layout(true), without = layout(false);
  return smtp ? with : without;
}

// `base` with further columns (tags in order, after the template's).
ltp::TableSchema SchemaWith(const ltp::TableSchema& base, const std::set<uint32_t>& extra) {
  if (extra.empty()) return base;
  std::vector<uint32_t> tags = TagsByBit(base);
  for (uint32_t t : extra)
    if (base.Find(t) == nullptr) tags.push_back(t);
  return ltp::TableSchema::Layout(tags);
}

// The recipient table for these rows: RecipientSchema() plus a column for
// each further property any of them has.
ltp::TableSchema RecipientSchemaFor(const std::vector<std::vector<Property>>& rows) {
  std::set<uint32_t> extra;
  for (const auto& props : rows)
    for (const auto& p : props) extra.insert(p.tag());
  const bool smtp = extra.count(0x39FE001F) != 0;
  extra.erase(0x39FE001F);
  return SchemaWith(RecipientSchema(smtp), extra);
}

// Named properties of Outlook's empty store ([MS-PST] 2.4.7): the ids
// 0x8000.. in order, with their property set and numeric id or name.
struct NamedEntry {
  uint16_t guid;  // 2 PS_PUBLIC_STRINGS, 3.. index into kGuids + 3
  uint32_t lid;   // numeric id, when name is empty
  const char* name;
};
constexpr const char* kGuids[] = {
    "\x02\x20\x06\x00\x00\x00\x00\x00\xC0\x00\x00\x00\x00\x00\x00\x46",  // PSETID_Appointment
    "\x86\x03\x02\x00\x00\x00\x00\x00\xC0\x00\x00\x00\x00\x00\x00\x46",  // PS_INTERNET_HEADERS
    "\x08\x20\x06\x00\x00\x00\x00\x00\xC0\x00\x00\x00\x00\x00\x00\x46",  // PSETID_Common
    "\x13\x8F\xF2\x41\xF4\x83\x14\x41\xA5\x84\xEE\xDB\x5A\x6B\x0B\xFF",  // PSETID_Messaging
    "\x14\x20\x06\x00\x00\x00\x00\x00\xC0\x00\x00\x00\x00\x00\x00\x46",  // {00062014-...}
    "\x03\x20\x06\x00\x00\x00\x00\x00\xC0\x00\x00\x00\x00\x00\x00\x46",  // PSETID_Task
};
constexpr NamedEntry kNamed[] = {
    {3, 0x8205, ""},         {3, 0x8223, ""},
    {3, 0x8231, ""},         {3, 0x8216, ""},
    {3, 0x820D, ""},         {3, 0x820E, ""},
    {3, 0x8235, ""},         {3, 0x8236, ""},
    {3, 0x8233, ""},         {4, 0, "content-class"},
    {2, 0, "DRMLicense"},    {4, 0, "x-cr-hashedpuzzle"},
    {4, 0, "x-cr-puzzleid"}, {5, 0x8580, ""},
    {5, 0x8581, ""},         {2, 0, "urn:schemas-microsoft-com:office:outlook#storetypeprivate"},
    {5, 0x8510, ""},         {5, 0x8578, ""},
    {6, 0, "IsMentioned"},   {2, 0, "Keywords"},
    {7, 0x8F05, ""},         {5, 0x8514, ""},
    {7, 0x8F07, ""},         {5, 0x8503, ""},
    {5, 0x85A8, ""},         {5, 0x8502, ""},
    {8, 0x8104, ""},         {8, 0x8105, ""},
    {8, 0x811C, ""},         {4, 0, "x-ms-exchange-organization-authdomain"},
    {2, 0, "DoNotForward"},  {5, 0x8570, ""},
    {8, 0x8101, ""},         {5, 0x85E0, ""},
    {5, 0x8552, ""},
};

const std::string kPsMapi("\x28\x03\x02\x00\x00\x00\x00\x00\xC0\x00\x00\x00\x00\x00\x00\x46", 16);
const std::string kPsPublicStrings(
    "\x29\x03\x02\x00\x00\x00\x00\x00\xC0\x00\x00\x00\x00\x00\x00\x46", 16);

std::vector<ltp::PropertyName> OutlookNamedProperties() {
  std::vector<ltp::PropertyName> out;
  for (const auto& e : kNamed) {
    ltp::PropertyName n;
    n.guid = e.guid == 2 ? kPsPublicStrings : std::string(kGuids[e.guid - 3], 16);
    n.is_string = e.name[0] != '\0';
    n.lid = e.lid;
    n.name = e.name;
    out.push_back(std::move(n));
  }
  return out;
}

// The name-to-id map's streams and hash buckets ([MS-PST] 2.4.7): names[i]
// is property id 0x8000 + i.
std::vector<Property> NameToIdMapProps(const std::vector<ltp::PropertyName>& names) {
  constexpr uint32_t kBuckets = 251;
  std::vector<std::string> guid_list;
  std::string entries, strings;
  std::map<uint16_t, std::string> buckets;
  for (size_t i = 0; i < names.size(); ++i) {
    const auto& e = names[i];
    // wGuid: 1 PS_MAPI, 2 PS_PUBLIC_STRINGS, else 3 + index in the GUID stream.
    uint16_t guid_index = 0;
    if (e.guid == kPsMapi) {
      guid_index = 1;
    } else if (e.guid == kPsPublicStrings) {
      guid_index = 2;
    } else {
      auto it = std::find(guid_list.begin(), guid_list.end(), e.guid);
      if (it == guid_list.end()) it = guid_list.insert(guid_list.end(), e.guid);
      guid_index = static_cast<uint16_t>(3 + (it - guid_list.begin()));
    }
    uint32_t id = e.lid;
    uint32_t hash = e.lid;
    if (e.is_string) {
      const std::string utf16 = disk::Utf8ToUtf16le(e.name);
      id = static_cast<uint32_t>(strings.size());
      hash = disk::Crc(utf16.data(), utf16.size());
      strings += Le32(static_cast<uint32_t>(utf16.size()));
      strings += utf16;
      while (strings.size() % 4 != 0) strings.push_back('\0');
    }
    const uint16_t guid_n = static_cast<uint16_t>((guid_index << 1) | (e.is_string ? 1 : 0));
    auto record = [&](uint32_t first) {
      std::string r = Le32(first);
      r.push_back(static_cast<char>(guid_n & 0xFF));
      r.push_back(static_cast<char>(guid_n >> 8));
      r.push_back(static_cast<char>(i & 0xFF));
      r.push_back(static_cast<char>(i >> 8));
      return r;
    };
    entries += record(id);
    buckets[static_cast<uint16_t>(0x1000 + (hash ^ guid_n) % kBuckets)] += record(hash);
  }
  std::string guids;
  for (const auto& g : guid_list) guids += g;
  std::vector<Property> props = {Int32Prop(0x0001, kBuckets), BinaryProp(0x0002, guids),
                                 BinaryProp(0x0003, entries), BinaryProp(0x0004, strings)};
  for (auto& [id, bytes] : buckets) props.push_back(BinaryProp(id, bytes));
  return props;
}

}  // namespace

// Contents-table rows wait here until Finish() writes the tables, so a folder
// of any size costs 8 bytes a row in memory. A record is its length, the row
// id, the cell count, then each cell's tag, length and bytes.
class RowSpool {
 public:
  static Result<std::unique_ptr<RowSpool>> Open(const std::string& dir) {
    MBX_ASSIGN_OR_RETURN(fs::Fd fd, fs::OpenScratch(dir));
    std::unique_ptr<RowSpool> s(new RowSpool);
    s->fd_ = std::move(fd);
    s->where_ = "the PST writer's scratch file in '" + (dir.empty() ? "." : dir) + "'";
    return s;
  }

  Result<uint64_t> Append(const Row& row) {
    const uint64_t at = end_ + pending_.size();
    disk::ByteWriter w(pending_);
    const size_t len_at = pending_.size();
    w.U32(0);
    w.U32(row.row_id);
    w.U32(static_cast<uint32_t>(row.cells.size()));
    for (const auto& [tag, value] : row.cells) {
      w.U32(tag);
      w.U32(static_cast<uint32_t>(value.size()));
      w.Bytes(value);
    }
    disk::Put32(reinterpret_cast<uint8_t*>(pending_.data() + len_at),
                static_cast<uint32_t>(pending_.size() - len_at - 4));
    if (pending_.size() >= kChunk) MBX_RETURN_IF_ERROR(Flush());
    return at;
  }

  Status Read(uint64_t at, Row* row) {
    if (!pending_.empty()) MBX_RETURN_IF_ERROR(Flush());
    MBX_ASSIGN_OR_RETURN(std::string_view head, View(at, 4));
    const uint32_t len = disk::Get32(reinterpret_cast<const uint8_t*>(head.data()));
    MBX_ASSIGN_OR_RETURN(std::string_view rec, View(at + 4, len));
    size_t pos = 0;
    bool ok = true;
    auto u32 = [&]() -> uint32_t {
      if (rec.size() - pos < 4) {
        ok = false;
        return 0;
      }
      pos += 4;
      return disk::Get32(reinterpret_cast<const uint8_t*>(rec.data() + pos - 4));
    };
    row->row_id = u32();
    const uint32_t cells = u32();
    row->cells.clear();
    for (uint32_t i = 0; i < cells && ok; ++i) {
      const uint32_t tag = u32();
      const uint32_t n = u32();
      if (!ok || rec.size() - pos < n) {
        ok = false;
        break;
      }
      row->cells[tag] = std::string(rec.substr(pos, n));
      pos += n;
    }
    if (!ok) return Status::IOError("a row record in " + where_ + " is cut short");
    return Status::Ok();
  }

 private:
  static constexpr size_t kChunk = 1 << 20;

  Status Flush() {
    MBX_RETURN_IF_ERROR(fs::PwriteAll(fd_.get(), pending_, end_, where_));
    end_ += pending_.size();
    pending_.clear();
    return Status::Ok();
  }

  // `n` bytes at `at`, from a window read ahead of them: a folder's rows are
  // mostly written together, so reads are mostly sequential.
  Result<std::string_view> View(uint64_t at, size_t n) {
    if (at < window_at_ || at + n > window_at_ + window_.size()) {
      if (at + n > end_) return Status::IOError("a row record in " + where_ + " is past its end");
      window_.resize(std::max(n, kChunk));
      MBX_ASSIGN_OR_RETURN(size_t got,
                           fs::PreadUpTo(fd_.get(), window_.data(), window_.size(), at, where_));
      if (got < n) return Status::IOError("a row record in " + where_ + " is cut short");
      window_.resize(got);
      window_at_ = at;
    }
    return std::string_view(window_).substr(at - window_at_, n);
  }

  fs::Fd fd_;
  std::string where_;
  std::string pending_;
  uint64_t end_ = 0;  // bytes in the file
  std::string window_;
  uint64_t window_at_ = 0;
};

Property StringProp(uint16_t id, std::string_view utf8) {
  return {id, disk::kPtypString, disk::Utf8ToUtf16le(utf8)};
}
Property BinaryProp(uint16_t id, std::string_view bytes) {
  return {id, disk::kPtypBinary, std::string(bytes)};
}
Property Int32Prop(uint16_t id, uint32_t v) { return {id, disk::kPtypInteger32, Le32(v)}; }
Property BoolProp(uint16_t id, bool v) {
  return {id, disk::kPtypBoolean, std::string(1, v ? '\1' : '\0')};
}
Property TimeProp(uint16_t id, uint64_t filetime) { return {id, disk::kPtypTime, Le64(filetime)}; }
Property Int64Prop(uint16_t id, uint64_t v) { return {id, disk::kPtypInteger64, Le64(v)}; }

Result<std::unique_ptr<StoreWriter>> StoreWriter::Create(const std::string& path, Options options) {
  ndb::NdbWriter::Options nopts;
  nopts.crypt = options.crypt;
  nopts.spill_entries = std::max<size_t>(1, options.index_spill_entries);
  MBX_ASSIGN_OR_RETURN(auto ndb, ndb::NdbWriter::Create(path, nopts));
  MBX_ASSIGN_OR_RETURN(auto spool, RowSpool::Open(fs::Dirname(path)));
  std::unique_ptr<StoreWriter> w(
      new StoreWriter(std::move(ndb), std::move(spool), std::move(options)));
  MBX_RETURN_IF_ERROR(w->WriteSkeleton());
  return w;
}

StoreWriter::StoreWriter(std::unique_ptr<ndb::NdbWriter> ndb, std::unique_ptr<RowSpool> spool,
                         Options options)
    : ndb_(std::move(ndb)),
      spool_(std::move(spool)),
      options_(std::move(options)),
      record_key_(RandomBytes(16)),
      names_(OutlookNamedProperties()) {
  for (size_t i = 0; i < names_.size(); ++i)
    name_ids_[names_[i]] = static_cast<uint16_t>(0x8000 + i);
}

Result<uint16_t> StoreWriter::NamedPropertyId(const ltp::PropertyName& name) {
  if (auto it = name_ids_.find(name); it != name_ids_.end()) return it->second;
  if (name.guid.size() != 16)
    return Status::InvalidArgument("PST writer: a property set GUID is 16 bytes");
  if (names_.size() >= 0x7FFF)
    return Status::Unsupported("PST writer: more than 32,767 named properties");
  const auto id = static_cast<uint16_t>(0x8000 + names_.size());
  names_.push_back(name);
  name_ids_[name] = id;
  return id;
}

StoreWriter::~StoreWriter() = default;

std::string StoreWriter::EntryId(uint32_t nid) const {
  return std::string(4, '\0') + record_key_ + Le32(nid);
}

Result<uint64_t> StoreWriter::WritePc(uint32_t nid, uint32_t parent, std::vector<Property> props) {
  ltp::NodeBuilder node(*ndb_);
  MBX_ASSIGN_OR_RETURN(auto blocks, ltp::BuildPropertyContext(std::move(props), node));
  MBX_ASSIGN_OR_RETURN(auto bids, node.Finish(blocks));
  MBX_RETURN_IF_ERROR(ndb_->AddNode(nid, bids.first, bids.second, parent));
  return bids.first;
}

Result<uint64_t> StoreWriter::WriteTable(uint32_t nid, const ltp::TableSchema& schema,
                                         const std::vector<Row>& rows) {
  ltp::NodeBuilder node(*ndb_);
  ltp::TableWriter table(schema, node);
  for (const auto& row : rows) MBX_RETURN_IF_ERROR(table.Add(row));
  MBX_ASSIGN_OR_RETURN(auto bids, table.Finish());
  if (nid != 0) MBX_RETURN_IF_ERROR(ndb_->AddNode(nid, bids.first, bids.second, 0));
  return bids.first;
}

Result<uint64_t> StoreWriter::WriteSpooledTable(uint32_t nid, const ltp::TableSchema& schema,
                                                const std::vector<uint64_t>& rows) {
  ltp::NodeBuilder node(*ndb_);
  ltp::TableWriter table(schema, node);
  Row row;
  for (uint64_t at : rows) {
    MBX_RETURN_IF_ERROR(spool_->Read(at, &row));
    MBX_RETURN_IF_ERROR(table.Add(row));
  }
  MBX_ASSIGN_OR_RETURN(auto bids, table.Finish());
  MBX_RETURN_IF_ERROR(ndb_->AddNode(nid, bids.first, bids.second, 0));
  return bids.first;
}

// The nodes of Outlook's empty store that do not depend on the folders
// ([MS-PST] 2.7.1 and Outlook's own Empty.pst): templates, search
// bookkeeping, the spam search folder and the internal nodes.
Status StoreWriter::WriteSkeleton() {
  using namespace disk;  // NOLINT
  MBX_ASSIGN_OR_RETURN(empty_hierarchy_,
                       WriteTable(kNidHierarchyTableTemplate, schema::HierarchyTable(), {}));
  MBX_ASSIGN_OR_RETURN(empty_contents_,
                       WriteTable(kNidContentsTableTemplate, schema::ContentsTable(), {}));
  MBX_ASSIGN_OR_RETURN(
      empty_assoc_, WriteTable(kNidAssocContentsTableTemplate, schema::AssocContentsTable(), {}));
  MBX_ASSIGN_OR_RETURN(empty_search_, WriteTable(kNidSearchContentsTableTemplate,
                                                 schema::SearchContentsTable(), {}));
  MBX_ASSIGN_OR_RETURN(empty_recipients_,
                       WriteTable(kNidRecipientTableTemplate, schema::RecipientTable(), {}));
  MBX_ASSIGN_OR_RETURN(empty_attachments_,
                       WriteTable(kNidAttachmentTableTemplate, schema::AttachmentTable(), {}));
  MBX_RETURN_IF_ERROR(WriteTable(0x64C, schema::OutgoingQueueTable(), {}).status());
  MBX_RETURN_IF_ERROR(WriteTable(0x6B6, schema::Template6B6(), {}).status());
  MBX_RETURN_IF_ERROR(WriteTable(0x6D7, schema::Template6D7(), {}).status());
  MBX_RETURN_IF_ERROR(WriteTable(0x6F8, schema::Template6F8(), {}).status());

  // Search bookkeeping: empty queues, and the activity list naming the one
  // search folder.
  for (uint32_t nid : {kNidSearchManagementQueue, kNidSearchDomainObject, 0xE41u, 0xEC1u, 0xF21u})
    MBX_RETURN_IF_ERROR(ndb_->AddNode(nid, 0, 0, 0));
  MBX_ASSIGN_OR_RETURN(uint64_t activity, ndb_->WriteBlock(Le32(0x2223)));
  MBX_RETURN_IF_ERROR(ndb_->AddNode(kNidSearchActivityList, activity, 0, 0));

  // 0xC01 and 0xE01: heaps with undocumented client signatures, each rooted
  // at an empty BTH, as Outlook writes them.
  {
    ltp::HeapBuilder heap(0x9C);
    MBX_ASSIGN_OR_RETURN(uint32_t root, heap.Allocate(std::string(4, '\0')));
    MBX_ASSIGN_OR_RETURN(uint32_t bth, ltp::BuildBth(heap, 16, 4, {}));
    MBX_RETURN_IF_ERROR(heap.Rewrite(root, Le32(bth)));
    heap.set_user_root(root);
    MBX_ASSIGN_OR_RETURN(uint64_t bid, ndb_->WriteBlocks(heap.Finish()));
    MBX_RETURN_IF_ERROR(ndb_->AddNode(0xC01, bid, 0, 0));
  }
  {
    ltp::HeapBuilder heap(0xCC);
    MBX_ASSIGN_OR_RETURN(uint32_t root, heap.Allocate(std::string(56, '\0')));
    MBX_ASSIGN_OR_RETURN(uint32_t bth, ltp::BuildBth(heap, 4, 4, {}));
    std::string r;
    for (uint32_t v : {bth, 1u, 0x200004u, 0u, 3u, 0u, 0x10u, 0u, 0x48B3u, 0u, 0u, 0u, 0u, 0x1E2u})
      r += Le32(v);
    MBX_RETURN_IF_ERROR(heap.Rewrite(root, r));
    heap.set_user_root(root);
    MBX_ASSIGN_OR_RETURN(uint64_t bid, ndb_->WriteBlocks(heap.Finish()));
    MBX_RETURN_IF_ERROR(ndb_->AddNode(0xE01, bid, 0, 0));
  }
  // 0xEE1: one 28-byte record per top object; 0xF01: two GUIDs and a time.
  {
    std::string r;
    for (uint32_t nid :
         {kNidMessageStore, kNidIpmSubtree, kNidSearchRoot, kNidDeletedItems, kNidCommonViews}) {
      r += Le32(nid);
      r.append(14, '\0');
      r += std::string("\x04\x00\x00", 3);
      r.push_back(nid == kNidCommonViews ? '\x02' : '\x01');
      r.append(6, '\0');
    }
    MBX_ASSIGN_OR_RETURN(uint64_t bid, ndb_->WriteBlock(r));
    MBX_RETURN_IF_ERROR(ndb_->AddNode(0xEE1, bid, 0, 0));
    std::string f(104, '\0');
    f[0] = 8;
    f[29] = 1;
    f[30] = 1;
    const std::string guids = RandomBytes(32);
    f.replace(40, 32, guids);
    f.replace(72, 4, Le32(0x6A));
    f.replace(76, 4, Le32(2));
    f.replace(80, 8, Le64(NowFileTime()));
    f.replace(92, 4, Le32(5));
    f.replace(96, 4, Le32(5));
    MBX_ASSIGN_OR_RETURN(uint64_t fbid, ndb_->WriteBlock(f));
    MBX_RETURN_IF_ERROR(ndb_->AddNode(0xF01, fbid, 0, 0));
  }
  // The spam search folder under the root, with its queue, criteria and an
  // empty search contents table.
  MBX_RETURN_IF_ERROR(WritePc(0x2223, kNidRootFolder,
                              {StringProp(0x3001, "SPAM Search Folder 2"), Int32Prop(0x3602, 0),
                               Int32Prop(0x3603, 0), BoolProp(0x360A, false)})
                          .status());
  MBX_RETURN_IF_ERROR(ndb_->AddNode(0x2226, 0, 0, 0));
  MBX_RETURN_IF_ERROR(WritePc(0x2227, 0, {Int32Prop(0x660B, 0)}).status());
  MBX_RETURN_IF_ERROR(ndb_->AddRef(empty_search_));
  MBX_RETURN_IF_ERROR(ndb_->AddNode(0x2230, empty_search_, 0, 0));

  // Folders every store has; their PCs and tables are written at Finish.
  auto add = [&](uint32_t nid, uint32_t parent, std::string name) {
    Folder f;
    f.nid = nid;
    f.parent = parent;
    f.name = std::move(name);
    folders_[nid] = std::move(f);
  };
  add(kNidRootFolder, kNidRootFolder, "");
  add(kNidIpmSubtree, kNidRootFolder, "Top of Outlook data file");
  add(kNidSearchRoot, kNidRootFolder, "Search Root");
  add(kNidDeletedItems, kNidIpmSubtree, "Deleted Items");
  add(kNidCommonViews, kNidRootFolder, "IPM_COMMON_VIEWS");
  folders_[kNidIpmSubtree].children.push_back(kNidDeletedItems);
  folders_[kNidRootFolder].children = {kNidIpmSubtree, kNidSearchRoot, kNidCommonViews};
  ndb_->SetLastNidIndex(kNidTypeNormalFolder, disk::NidIndexOf(kNidCommonViews));
  return Status::Ok();
}

uint32_t StoreWriter::FindFolder(uint32_t parent, std::string_view name) const {
  auto it = folders_.find(parent);
  if (it == folders_.end()) return 0;
  const std::string want = AsciiLower(name);
  for (uint32_t c : it->second.children)
    if (AsciiLower(folders_.at(c).name) == want) return c;
  return 0;
}

Result<uint32_t> StoreWriter::CreateFolder(uint32_t parent, std::string_view name,
                                           std::string_view container_class) {
  auto it = folders_.find(parent);
  if (it == folders_.end())
    return Status::InvalidArgument("PST writer: no folder " + std::to_string(parent) +
                                   " to create '" + std::string(name) + "' in");
  if (FindFolder(parent, name) != 0)
    return Status::InvalidArgument("PST writer: folder '" + std::string(name) + "' exists");
  const uint32_t nid = ndb_->AllocateNid(disk::kNidTypeNormalFolder);
  Folder f;
  f.nid = nid;
  f.parent = parent;
  f.name = std::string(name);
  f.container_class = std::string(container_class);
  folders_[nid] = std::move(f);
  folders_[parent].children.push_back(nid);
  return nid;
}

// Named values become properties under this store's ids for their names.
Status StoreWriter::AddNamed(const std::vector<NamedValue>& named, std::vector<Property>* props) {
  for (const auto& v : named) {
    MBX_ASSIGN_OR_RETURN(uint16_t id, NamedPropertyId(v.name));
    props->erase(std::remove_if(props->begin(), props->end(),
                                [id](const Property& p) { return p.id == id; }),
                 props->end());
    props->push_back({id, v.type, v.value});
  }
  return Status::Ok();
}

Result<uint32_t> StoreWriter::AddMessage(uint32_t folder, const OutMessage& m) {
  return Add(folder, m, Listing::kContents);
}

Result<uint32_t> StoreWriter::AddAssociatedMessage(uint32_t folder, const OutMessage& m) {
  return Add(folder, m, Listing::kAssociated);
}

Result<uint32_t> StoreWriter::AddUnlistedMessageForTesting(uint32_t parent, const OutMessage& m) {
  return Add(parent, m, Listing::kNone);
}

Result<uint32_t> StoreWriter::Add(uint32_t folder, const OutMessage& m, Listing listing) {
  auto fit = folders_.find(folder);
  if ((fit == folders_.end() || folder == disk::kNidRootFolder) && listing != Listing::kNone)
    return Status::InvalidArgument("PST writer: no folder to add a message to");
  const bool assoc = listing == Listing::kAssociated;
  const uint32_t nid =
      ndb_->AllocateNid(assoc ? disk::kNidTypeAssocMessage : disk::kNidTypeNormalMessage);
  WrittenMessage written;
  if (assoc) {
    // MSGFLAG_ASSOCIATED is what makes it FAI for a client ([MS-OXCMSG] 2.2.1.6).
    OutMessage copy = m;
    uint32_t flags = 0;
    if (const auto* p = FindProp(copy.props, 0x0E07); p != nullptr && p->value.size() >= 4)
      flags = disk::Get32(reinterpret_cast<const uint8_t*>(p->value.data()));
    copy.props.erase(std::remove_if(copy.props.begin(), copy.props.end(),
                                    [](const Property& p) { return p.id == 0x0E07; }),
                     copy.props.end());
    copy.props.push_back(Int32Prop(0x0E07, flags | kMsgFlagAssociated));
    MBX_ASSIGN_OR_RETURN(written, WriteMessage(copy, 0));
  } else {
    MBX_ASSIGN_OR_RETURN(written, WriteMessage(m, 0));
  }
  MBX_RETURN_IF_ERROR(ndb_->AddNode(nid, written.bid_data, written.bid_sub, folder));
  if (listing == Listing::kAssociated) {
    MBX_ASSIGN_OR_RETURN(uint64_t at, spool_->Append(RowFromProps(nid, schema::AssocContentsTable(),
                                                                  written.props)));
    fit->second.associated.push_back(at);
  } else if (listing == Listing::kContents) {
    const auto* flags = FindProp(m.props, 0x0E07);
    if (flags == nullptr || flags->value.size() < 4 ||
        (disk::Get32(reinterpret_cast<const uint8_t*>(flags->value.data())) & 1) == 0)
      ++fit->second.unread;
    MBX_ASSIGN_OR_RETURN(uint64_t at,
                         spool_->Append(RowFromProps(nid, schema::ContentsTable(), written.props)));
    fit->second.contents.push_back(at);
  }
  return nid;
}

Status StoreWriter::SetFolderProperties(uint32_t folder, std::vector<Property> props,
                                        const std::vector<NamedValue>& named) {
  auto it = folders_.find(folder);
  if (it == folders_.end())
    return Status::InvalidArgument("PST writer: no folder " + std::to_string(folder) +
                                   " to set properties of");
  MBX_RETURN_IF_ERROR(AddNamed(named, &props));
  for (auto& p : props) {
    if (p.id == 0x3613 && p.type == disk::kPtypString) {
      it->second.container_class = disk::Utf16leToUtf8(p.value);
      continue;
    }
    auto& mine = it->second.props;
    mine.erase(
        std::remove_if(mine.begin(), mine.end(), [&p](const Property& q) { return q.id == p.id; }),
        mine.end());
    mine.push_back(std::move(p));
  }
  return Status::Ok();
}

std::string StoreWriter::ContainerClass(uint32_t folder) const {
  auto it = folders_.find(folder);
  return it == folders_.end() ? std::string() : it->second.container_class;
}

// A message's node content: its property context, and as subnodes its
// recipient table, its attachments and their table; an embedded message is
// a message node of its own below its attachment ([MS-PST] 2.4.6.2).
Result<StoreWriter::WrittenMessage> StoreWriter::WriteMessage(const OutMessage& m, int depth) {
  using namespace disk;  // NOLINT
  if (depth > 32) return Status::InvalidArgument("PST writer: embedded messages nested too deep");
  ltp::NodeBuilder node(*ndb_);

  // Recipients: a table subnode of the message, with a column for every
  // property a recipient has beyond Outlook's template.
  std::vector<std::vector<Property>> recipients = m.recipients;
  for (size_t i = 0; i < recipients.size(); ++i) {
    if (i < m.recipients_named.size())
      MBX_RETURN_IF_ERROR(AddNamed(m.recipients_named[i], &recipients[i]));
    recipients[i].push_back(Int32Prop(0x3000, static_cast<uint32_t>(i)));
  }
  const ltp::TableSchema recipient_schema = RecipientSchemaFor(recipients);
  std::vector<Row> recipient_rows;
  for (size_t i = 0; i < recipients.size(); ++i)
    recipient_rows.push_back(
        RowFromProps(static_cast<uint32_t>(i), recipient_schema, recipients[i]));
  {
    ltp::NodeBuilder table_node(*ndb_);
    ltp::TableWriter table(recipient_schema, table_node);
    for (const auto& row : recipient_rows) MBX_RETURN_IF_ERROR(table.Add(row));
    MBX_ASSIGN_OR_RETURN(auto bids, table.Finish());
    node.AddSubnode({kNidRecipientTableTemplate, bids.first, bids.second});
  }

  // Attachments: one PC subnode each, and the attachment table.
  uint64_t attachment_bytes = 0;
  if (!m.attachments.empty()) {
    std::set<uint32_t> columns;
    for (const auto& a : m.attachments)
      for (uint32_t tag : a.table_columns)
        if ((tag >> 16) != 0x3701 && (tag & 0xFFFF) != kPtypObject) columns.insert(tag);
    const ltp::TableSchema attachment_schema = SchemaWith(schema::AttachmentTable(), columns);
    std::vector<Row> rows;
    for (const auto& a : m.attachments) {
      const uint32_t anid = ndb_->AllocateNid(kNidTypeAttachment);
      std::vector<Property> props = a.props;
      MBX_RETURN_IF_ERROR(AddNamed(a.named, &props));
      ltp::NodeBuilder att_node(*ndb_);
      auto set = [&props](Property p) {
        props.erase(std::remove_if(props.begin(), props.end(),
                                   [&p](const Property& q) { return q.id == p.id; }),
                    props.end());
        props.push_back(std::move(p));
      };
      if (a.embedded) {
        // PidTagAttachDataObject: the embedded message's NID and size.
        MBX_ASSIGN_OR_RETURN(WrittenMessage inner, WriteMessage(*a.embedded, depth + 1));
        const uint32_t mnid = ndb_->AllocateNid(kNidTypeNormalMessage);
        att_node.AddSubnode({mnid, inner.bid_data, inner.bid_sub});
        set({0x3701, kPtypObject, Le32(mnid) + Le32(static_cast<uint32_t>(inner.size))});
        set(Int32Prop(0x3705, 5));  // ATTACH_EMBEDDED_MSG
        set(Int32Prop(0x0E20, static_cast<uint32_t>(inner.size)));
        attachment_bytes += inner.size;
      } else {
        set(BinaryProp(0x3701, a.data));
        set(Int32Prop(0x0E20, static_cast<uint32_t>(a.data.size())));
        if (FindProp(props, 0x3705) == nullptr) props.push_back(Int32Prop(0x3705, 1));  // by value
        attachment_bytes += a.data.size();
      }
      if (FindProp(props, 0x370B) == nullptr) props.push_back(Int32Prop(0x370B, 0xFFFFFFFF));
      rows.push_back(RowFromProps(anid, attachment_schema, props));
      MBX_ASSIGN_OR_RETURN(auto blocks, ltp::BuildPropertyContext(std::move(props), att_node));
      MBX_ASSIGN_OR_RETURN(auto bids, att_node.Finish(blocks));
      node.AddSubnode({anid, bids.first, bids.second});
    }
    ltp::NodeBuilder table_node(*ndb_);
    ltp::TableWriter table(attachment_schema, table_node);
    for (const auto& row : rows) MBX_RETURN_IF_ERROR(table.Add(row));
    MBX_ASSIGN_OR_RETURN(auto bids, table.Finish());
    node.AddSubnode({kNidAttachmentTableTemplate, bids.first, bids.second});
  }

  std::vector<Property> props = m.props;
  MBX_RETURN_IF_ERROR(AddNamed(m.named, &props));
  const uint64_t now = NowFileTime();
  if (FindProp(props, 0x001A) == nullptr) props.push_back(StringProp(0x001A, "IPM.Note"));
  if (FindProp(props, 0x0E07) == nullptr) props.push_back(Int32Prop(0x0E07, 0));
  if (FindProp(props, 0x0E17) == nullptr) props.push_back(Int32Prop(0x0E17, 0));
  if (FindProp(props, 0x3007) == nullptr) props.push_back(TimeProp(0x3007, now));
  if (FindProp(props, 0x3008) == nullptr) props.push_back(TimeProp(0x3008, now));
  if (FindProp(props, 0x300B) == nullptr) props.push_back(BinaryProp(0x300B, RandomBytes(16)));
  if (!m.attachments.empty() && FindProp(props, 0x0E1B) == nullptr)
    props.push_back(BoolProp(0x0E1B, true));
  // PidTagMessageSize: what the message occupies, as Outlook counts it
  // roughly: every value plus the attachments' bytes.
  props.erase(
      std::remove_if(props.begin(), props.end(), [](const Property& p) { return p.id == 0x0E08; }),
      props.end());
  uint64_t size = attachment_bytes;
  for (const auto& p : props) size += p.value.size() + 8;
  for (const auto& r : m.recipients)
    for (const auto& p : r) size += p.value.size() + 8;
  size = std::min<uint64_t>(size, 0x7FFFFFFF);
  props.push_back(Int32Prop(0x0E08, static_cast<uint32_t>(size)));

  WrittenMessage out;
  out.props = props;
  out.size = size;
  MBX_ASSIGN_OR_RETURN(auto blocks, ltp::BuildPropertyContext(std::move(props), node));
  MBX_ASSIGN_OR_RETURN(auto bids, node.Finish(blocks));
  out.bid_data = bids.first;
  out.bid_sub = bids.second;
  return out;
}

Row StoreWriter::HierarchyRow(const Folder& f) const {
  Row row;
  row.row_id = f.nid;
  row.cells[kTagRowVersion] = Le32(1);
  row.cells[0x3001001F] = disk::Utf8ToUtf16le(f.name);
  row.cells[0x36020003] = Le32(static_cast<uint32_t>(f.contents.size()));
  row.cells[0x36030003] = Le32(f.unread);
  row.cells[0x360A000B] = std::string(1, f.children.empty() ? '\0' : '\1');
  if (!f.container_class.empty()) row.cells[0x3613001F] = disk::Utf8ToUtf16le(f.container_class);
  return row;
}

Status StoreWriter::WriteFolder(const Folder& f) {
  using namespace disk;  // NOLINT
  std::vector<Property> props = {
      StringProp(0x3001, f.name), Int32Prop(0x3602, static_cast<uint32_t>(f.contents.size())),
      Int32Prop(0x3603, f.unread), BoolProp(0x360A, !f.children.empty())};
  if (f.nid == kNidDeletedItems) props.push_back(StringProp(0x3004, "Deleted Items folder"));
  if (f.nid == kNidCommonViews) props.push_back(StringProp(0x3004, ""));
  if (!f.container_class.empty()) props.push_back(StringProp(0x3613, f.container_class));
  if (!f.associated.empty())  // PidTagAssociatedContentCount
    props.push_back(Int32Prop(0x3617, static_cast<uint32_t>(f.associated.size())));
  for (const auto& p : f.props) {
    if (FindProp(props, p.id) == nullptr) props.push_back(p);
  }
  if (f.nid == kNidRootFolder) {
    // Drafts and Junk are found through entry IDs on the root folder.
    if (auto it = special_.find(SpecialFolder::kDrafts); it != special_.end())
      props.push_back(BinaryProp(0x36D7, EntryId(it->second)));
  }
  MBX_RETURN_IF_ERROR(WritePc(f.nid, f.parent, std::move(props)).status());

  std::vector<Row> children;
  for (uint32_t c : f.children) children.push_back(HierarchyRow(folders_.at(c)));
  const uint32_t hier = WithNidType(f.nid, kNidTypeHierarchyTable);
  const uint32_t cont = WithNidType(f.nid, kNidTypeContentsTable);
  const uint32_t assoc = WithNidType(f.nid, kNidTypeAssocContentsTable);
  auto shared = [&](uint32_t nid, uint64_t bid) -> Status {
    MBX_RETURN_IF_ERROR(ndb_->AddRef(bid));
    return ndb_->AddNode(nid, bid, 0, 0);
  };
  // Hierarchy: the IPM subtree and Search Root have wider tables of their own.
  if (f.nid == kNidIpmSubtree) {
    MBX_RETURN_IF_ERROR(WriteTable(hier, schema::IpmSubtreeHierarchyTable(), children).status());
  } else if (f.nid == kNidSearchRoot) {
    MBX_RETURN_IF_ERROR(WriteTable(hier, schema::SearchRootHierarchyTable(), children).status());
  } else if (children.empty()) {
    MBX_RETURN_IF_ERROR(shared(hier, empty_hierarchy_));
  } else {
    MBX_RETURN_IF_ERROR(WriteTable(hier, schema::HierarchyTable(), children).status());
  }
  if (f.nid == kNidIpmSubtree) {
    MBX_RETURN_IF_ERROR(
        WriteSpooledTable(cont, schema::IpmSubtreeContentsTable(), f.contents).status());
  } else if (f.contents.empty()) {
    MBX_RETURN_IF_ERROR(shared(cont, empty_contents_));
  } else {
    MBX_RETURN_IF_ERROR(WriteSpooledTable(cont, schema::ContentsTable(), f.contents).status());
  }
  if (f.nid == kNidRootFolder) {
    MBX_RETURN_IF_ERROR(WriteTable(assoc, schema::RootAssocContentsTable(), {}).status());
  } else if (f.nid == kNidCommonViews) {
    MBX_RETURN_IF_ERROR(
        WriteSpooledTable(assoc, schema::CommonViewsAssocContentsTable(), f.associated).status());
  } else if (f.associated.empty()) {
    MBX_RETURN_IF_ERROR(shared(assoc, empty_assoc_));
  } else {
    MBX_RETURN_IF_ERROR(
        WriteSpooledTable(assoc, schema::AssocContentsTable(), f.associated).status());
  }
  return Status::Ok();
}

Status StoreWriter::WriteStoreAndMaps() {
  using namespace disk;  // NOLINT
  std::string history = Le32(1) + RandomBytes(16) + Le32(1);
  uint32_t valid = 0xC9;  // IPM subtree, wastebasket, common views, finder
  std::vector<Property> props = {BinaryProp(0x0E34, history),
                                 Int32Prop(0x0E38, 0),
                                 BinaryProp(0x0FF9, record_key_),
                                 StringProp(0x3001, options_.display_name),
                                 BinaryProp(0x35E0, EntryId(kNidIpmSubtree)),
                                 BinaryProp(0x35E3, EntryId(kNidDeletedItems)),
                                 BinaryProp(0x35E6, EntryId(kNidCommonViews)),
                                 BinaryProp(0x35E7, EntryId(kNidSearchRoot)),
                                 BoolProp(0x6633, true),
                                 Int32Prop(0x66FA, 0x000E0011),
                                 Int32Prop(0x66FC, 0x0018B2B3),
                                 Int32Prop(0x67FF, 0)};
  if (auto it = special_.find(SpecialFolder::kSentItems); it != special_.end()) {
    props.push_back(BinaryProp(0x35E4, EntryId(it->second)));
    valid |= 0x10;
  }
  if (auto it = special_.find(SpecialFolder::kOutbox); it != special_.end()) {
    props.push_back(BinaryProp(0x35E2, EntryId(it->second)));
    valid |= 0x04;
  }
  uint32_t inbox = kNidRootFolder;
  if (auto it = special_.find(SpecialFolder::kInbox); it != special_.end()) {
    inbox = it->second;
    valid |= 0x02;
  }
  props.push_back(Int32Prop(0x35DF, valid));
  MBX_RETURN_IF_ERROR(WritePc(kNidMessageStore, 0, std::move(props)).status());
  MBX_RETURN_IF_ERROR(WritePc(kNidNameToIdMap, 0, NameToIdMapProps(names_)).status());
  // The receive folder table: where mail of any class is delivered.
  Row receive;
  receive.row_id = 1;
  receive.cells[kTagRowVersion] = Le32(2);
  receive.cells[0x001A001F] = "";
  receive.cells[0x66050003] = Le32(inbox);
  return WriteTable(0x62B, schema::ReceiveFolderTable(), {receive}).status();
}

Status StoreWriter::Finish() {
  if (finished_) return Status::InvalidArgument("PST writer: Finish called twice");
  finished_ = true;
  // The root's hierarchy table lists the four top objects with the versions
  // Outlook gives them, its folders and the spam search folder, then any
  // folder created beside them (a copy of an OST's Shortcuts...).
  const Folder& root = folders_[disk::kNidRootFolder];
  for (const auto& [nid, f] : folders_) {
    if (nid == disk::kNidRootFolder) continue;
    MBX_RETURN_IF_ERROR(WriteFolder(f));
  }
  {
    std::vector<Property> props = {StringProp(0x3001, ""), Int32Prop(0x3602, 0),
                                   Int32Prop(0x3603, 0), BoolProp(0x360A, true)};
    if (auto it = special_.find(SpecialFolder::kDrafts); it != special_.end())
      props.push_back(BinaryProp(0x36D7, EntryId(it->second)));
    if (auto it = special_.find(SpecialFolder::kJunk); it != special_.end())
      props.push_back(BinaryProp(0x36E4, EntryId(it->second)));
    MBX_RETURN_IF_ERROR(
        WritePc(disk::kNidRootFolder, disk::kNidRootFolder, std::move(props)).status());
    std::vector<Row> rows;
    for (uint32_t c : {kNidIpmSubtree, kNidSearchRoot})
      rows.push_back(HierarchyRow(folders_.at(c)));
    Row spam;
    spam.row_id = 0x2223;
    spam.cells[kTagRowVersion] = Le32(1);
    spam.cells[0x3001001F] = disk::Utf8ToUtf16le("SPAM Search Folder 2");
    spam.cells[0x36020003] = Le32(0);
    spam.cells[0x36030003] = Le32(0);
    spam.cells[0x360A000B] = std::string(1, '\0');
    rows.push_back(spam);
    for (uint32_t c : root.children)
      if (c != kNidIpmSubtree && c != kNidSearchRoot) rows.push_back(HierarchyRow(folders_.at(c)));
    MBX_RETURN_IF_ERROR(
        WriteTable(disk::WithNidType(disk::kNidRootFolder, disk::kNidTypeHierarchyTable),
                   schema::HierarchyTable(), rows)
            .status());
    MBX_RETURN_IF_ERROR(ndb_->AddRef(empty_contents_));
    MBX_RETURN_IF_ERROR(
        ndb_->AddNode(disk::WithNidType(disk::kNidRootFolder, disk::kNidTypeContentsTable),
                      empty_contents_, 0, 0));
    MBX_RETURN_IF_ERROR(
        WriteTable(disk::WithNidType(disk::kNidRootFolder, disk::kNidTypeAssocContentsTable),
                   schema::RootAssocContentsTable(), {})
            .status());
  }
  MBX_RETURN_IF_ERROR(WriteStoreAndMaps());
  // Outlook's counters for folder tables follow the folder counter.
  const uint32_t last_folder = ndb_->LastNidIndex(disk::kNidTypeNormalFolder);
  for (uint32_t t : {disk::kNidTypeHierarchyTable, disk::kNidTypeContentsTable,
                     disk::kNidTypeAssocContentsTable})
    ndb_->SetLastNidIndex(t, last_folder);
  return ndb_->Finish();
}

}  // namespace mbx::pst::messaging
