#include "formats/pst/native_store.h"

#include <algorithm>

#include "formats/pst/disk/disk.h"
#include "formats/pst/ltp/reader.h"
#include "formats/pst/mapi_to_mime.h"

namespace mbx::pst::native {
namespace {

using disk::Get32;

// Subnodes of a message ([MS-PST] 2.4.5, 2.4.6).
constexpr uint64_t kNidRecipientTable = 0x692;
constexpr uint64_t kNidAttachmentTable = 0x671;
constexpr uint16_t kPidAttachDataObject = 0x3701;  // binary or object, as the method says
constexpr int64_t kAttachEmbeddedMessage = 5;
constexpr int64_t kAttachOle = 6;
constexpr int kMaxEmbeddingDepth = 16;

void StripNuls(std::string& s) {
  while (!s.empty() && s.back() == '\0') s.pop_back();
}

using disk::Hex;

// A heap-on-node and what its HNIDs resolve against.
struct Node {
  ltp::Heap heap;
  ltp::NodeContext ctx;
};

Result<Node> OpenNode(const ndb::NdbReader& ndb, uint64_t bid_data, uint64_t bid_sub) {
  MBX_ASSIGN_OR_RETURN(ndb::NodeData data, ndb.ReadData(bid_data));
  MBX_ASSIGN_OR_RETURN(ltp::Heap heap, ltp::Heap::Open(std::move(data)));
  Node n{std::move(heap), {&ndb, {}}};
  MBX_ASSIGN_OR_RETURN(n.ctx.subnodes, ndb.ReadSubnodes(bid_sub));
  return n;
}

}  // namespace

Result<std::unique_ptr<Store>> Store::Open(const std::string& path) {
  MBX_ASSIGN_OR_RETURN(ndb::NdbReader ndb, ndb::NdbReader::Open(path));
  if (ndb.crypt() == disk::CryptMethod::kCyclic) {
    return Status::Unsupported("'" + path + "': cyclic (\"high\") block encoding");
  }
  MBX_RETURN_IF_ERROR(ndb.LoadTrees());
  std::unique_ptr<Store> store(new Store(std::move(ndb)));
  // The name-to-id map, decoded once: named ids index it directly.
  if (const ndb::NodeEntry* map = store->ndb_.FindNode(disk::kNidNameToIdMap)) {
    MBX_ASSIGN_OR_RETURN(Node node, OpenNode(store->ndb_, map->bid_data, map->bid_sub));
    auto props = ltp::ReadPropertyContext(node.heap, node.ctx);
    if (!props.ok()) return props.status().WithContext("'" + path + "': name-to-id map");
    auto named = ltp::DecodeNameToIdMap(*props);
    if (!named.ok()) return named.status().WithContext("'" + path + "': name-to-id map");
    for (const ltp::NamedProperty& np : *named) {
      const size_t index = np.id - 0x8000u;
      if (store->names_.size() <= index) store->names_.resize(index + 1);
      ltp::PropertyName name;
      name.guid.assign(reinterpret_cast<const char*>(np.guid.data()), np.guid.size());
      name.is_string = np.is_string;
      name.lid = np.lid;
      name.name = np.name;
      store->names_[index] = std::move(name);
    }
  }
  return store;
}

std::vector<uint32_t> Store::Children(uint32_t folder, uint32_t nid_type) const {
  const uint32_t table_type = nid_type == disk::kNidTypeNormalFolder ? disk::kNidTypeHierarchyTable
                              : nid_type == disk::kNidTypeAssocMessage
                                  ? disk::kNidTypeAssocContentsTable
                                  : disk::kNidTypeContentsTable;
  // A hierarchy table also lists search folders.
  auto wanted = [nid_type](uint32_t nid) {
    const uint32_t type = nid & 0x1F;
    return type == nid_type ||
           (nid_type == disk::kNidTypeNormalFolder && type == disk::kNidTypeSearchFolder);
  };
  std::vector<uint32_t> out;
  const ndb::NodeEntry* table = ndb_.FindNode(disk::MakeNid(table_type, folder >> 5));
  if (table != nullptr) {
    auto node = OpenNode(ndb_, table->bid_data, table->bid_sub);
    if (node.ok()) {
      auto ids = ltp::ReadTableRowIds(node->heap);
      if (ids.ok()) {
        for (uint32_t id : *ids)
          if (wanted(id)) out.push_back(id);
        return out;
      }
    }
  }
  // No readable table (a damaged folder): the nodes that name it as parent.
  for (const ndb::NodeEntry& e : ndb_.nodes()) {
    const auto nid = static_cast<uint32_t>(e.nid);
    if (e.nid_parent == folder && nid != folder && wanted(nid)) out.push_back(nid);
  }
  return out;
}

// The same values the libpff path stores (pst.cc ReadRecordSet): strings as
// UTF-8 without trailing NULs, multi-valued binaries split, everything else
// as stored; the attachment contents are read separately.
PropertyBag Store::ToBag(std::vector<ltp::Property>&& props) const {
  PropertyBag bag;
  for (ltp::Property& p : props) {
    if (p.id == kPidAttachDataObject) continue;
    PropValue v;
    v.type = p.type;
    if (p.id >= 0x8000) {
      const size_t index = p.id - 0x8000u;
      if (index < names_.size()) v.name = names_[index];
    }
    if (p.type == kPtUnicode) {
      v.data = disk::Utf16leToUtf8(p.value);
      StripNuls(v.data);
    } else if (p.type == kPtString8) {
      AppendCodepage(&v.data, p.value, 1252);  // the code page libpff assumes
      StripNuls(v.data);
    } else if (p.type == kPtMvBinary) {
      auto values = ltp::DecodeMultiValue(p.type, p.value);
      if (!values.ok()) continue;
      v.values = std::move(values).value();
    } else {
      v.data = std::move(p.value);
    }
    bag.Set(p.id, std::move(v));
  }
  return bag;
}

Result<PropertyBag> Store::ReadProps(uint32_t nid) const {
  const ndb::NodeEntry* e = ndb_.FindNode(nid);
  if (e == nullptr) return Status::NotFound("node " + Hex(nid) + " is not in the node B-tree");
  MBX_ASSIGN_OR_RETURN(Node node, OpenNode(ndb_, e->bid_data, e->bid_sub));
  MBX_ASSIGN_OR_RETURN(auto props, ltp::ReadPropertyContext(node.heap, node.ctx));
  return ToBag(std::move(props));
}

Result<MapiMessage> Store::ReadMessage(uint32_t nid) const {
  const ndb::NodeEntry* e = ndb_.FindNode(nid);
  if (e == nullptr) return Status::NotFound("node " + Hex(nid) + " is not in the node B-tree");
  return ReadObject(e->bid_data, e->bid_sub, 0);
}

Result<MapiMessage> Store::ReadObject(uint64_t bid_data, uint64_t bid_sub, int depth) const {
  MBX_ASSIGN_OR_RETURN(Node node, OpenNode(ndb_, bid_data, bid_sub));
  auto pc = ltp::ReadPropertyContext(node.heap, node.ctx);
  if (!pc.ok()) return pc.status().WithContext("its properties");
  MapiMessage m;
  m.props = ToBag(std::move(*pc));

  auto read_table = [&](const ndb::SubnodeEntry& sub, const char* what) -> Result<ltp::Table> {
    auto table_node = OpenNode(ndb_, sub.bid_data, sub.bid_sub);
    if (!table_node.ok()) return table_node.status().WithContext(what);
    auto table = ltp::ReadTableContext(table_node->heap, table_node->ctx);
    if (!table.ok()) return table.status().WithContext(what);
    return table;
  };
  auto row_props = [](const ltp::Table& t, const ltp::Row& row) {
    std::vector<ltp::Property> props;
    for (size_t i = 0; i < t.info.columns.size() && i < row.cells.size(); ++i) {
      if (!row.cells[i].present) continue;
      ltp::Property p;
      p.id = static_cast<uint16_t>(t.info.columns[i].tag >> 16);
      p.type = t.info.columns[i].type();
      p.value = row.cells[i].value;
      props.push_back(std::move(p));
    }
    return props;
  };

  if (const ndb::SubnodeEntry* sub = node.ctx.FindSubnode(kNidRecipientTable)) {
    MBX_ASSIGN_OR_RETURN(ltp::Table t, read_table(*sub, "its recipient table"));
    for (const ltp::Row& row : t.rows) m.recipients.push_back(ToBag(row_props(t, row)));
  }

  if (const ndb::SubnodeEntry* sub = node.ctx.FindSubnode(kNidAttachmentTable)) {
    MBX_ASSIGN_OR_RETURN(ltp::Table t, read_table(*sub, "its attachment table"));
    std::vector<uint32_t> columns;
    for (const ltp::Column& c : t.info.columns)
      if ((c.tag >> 16) < 0x8000) columns.push_back(c.tag);
    int n = 0;
    for (const ltp::Row& row : t.rows) {
      const std::string which = "attachment " + std::to_string(++n);
      const ndb::SubnodeEntry* att_sub = node.ctx.FindSubnode(row.row_id);
      if (att_sub == nullptr) {
        return Status::Corruption(which + ": its subnode " + Hex(row.row_id) + " is missing");
      }
      auto att = OpenNode(ndb_, att_sub->bid_data, att_sub->bid_sub);
      if (!att.ok()) return att.status().WithContext(which);
      auto props = ltp::ReadPropertyContext(att->heap, att->ctx);
      if (!props.ok()) return props.status().WithContext(which);
      MapiAttachment a;
      a.table_columns = columns;
      // The contents are not a property of the bag: taken out first, not copied.
      std::optional<ltp::Property> contents;
      for (ltp::Property& p : *props) {
        if (p.id == kPidAttachDataObject) contents = std::move(p);
      }
      a.props = ToBag(std::move(*props));
      if (const ltp::Property* data = contents ? &*contents : nullptr) {
        const int64_t method = a.props.Int(kPidAttachMethod).value_or(0);
        if (data->type == kPtBinary) {
          a.data = std::move(contents->value);
        } else if (data->type == disk::kPtypObject && data->value.size() >= 4 &&
                   (method == kAttachEmbeddedMessage || method == kAttachOle)) {
          const uint32_t object_nid = Get32(reinterpret_cast<const uint8_t*>(data->value.data()));
          const ndb::SubnodeEntry* object = att->ctx.FindSubnode(object_nid);
          if (object == nullptr) {
            return Status::Corruption(which + ": its object subnode " + Hex(object_nid) +
                                      " is missing");
          }
          if (method == kAttachOle) {
            auto bytes = ndb_.ReadDataContiguous(object->bid_data);
            if (!bytes.ok()) return bytes.status().WithContext(which);
            a.data = std::move(bytes).value();
          } else {
            if (depth >= kMaxEmbeddingDepth)
              return Status::Corruption("embedded messages nested too deeply");
            auto embedded = ReadObject(object->bid_data, object->bid_sub, depth + 1);
            if (!embedded.ok())
              return embedded.status().WithContext("embedded message in " + which);
            a.embedded = std::make_unique<MapiMessage>(std::move(embedded).value());
          }
        }
      }
      m.attachments.push_back(std::move(a));
    }
  }
  return m;
}

}  // namespace mbx::pst::native
