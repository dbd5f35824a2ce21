// \brief A Unicode PST or OST read through our own NDB/LTP reader (ndb/,
// ltp/) rather than libpff: the same PropertyBag and MapiMessage values the
// libpff path copies out (mapi.h), for the PST source (pst.cc).
//
// Why: libpff resolves every named property of every record through a linear
// search of the store's name-to-id map, which made it most of the cost of a
// PST conversion; here the map is decoded once into a table. The reader works
// on a read-only mapping of the file and keeps no per-read state, so any
// number of threads may read messages at once without handles of their own.
// ANSI files, deleted-item recovery and anything this reader cannot
// interpret stay with libpff (the source falls back message by message).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/status.h"
#include "formats/pst/ltp/types.h"
#include "formats/pst/mapi.h"
#include "formats/pst/ndb/reader.h"

namespace mbx::pst::native {

class Store {
 public:
  // Unsupported for the files this reader leaves to libpff (ANSI, cyclic
  // encoding); Corruption when the B-trees or the name-to-id map are unreadable.
  static Result<std::unique_ptr<Store>> Open(const std::string& path);

  bool Has(uint32_t nid) const { return ndb_.FindNode(nid) != nullptr; }
  // A folder's subfolders, messages or associated messages (NID type
  // kNidTypeNormalFolder, kNidTypeNormalMessage or kNidTypeAssocMessage): the
  // rows of its hierarchy, contents or associated contents table, in row
  // order, as libpff and Outlook list them. A message node whose folder's
  // table does not list it is not offered. Without the table (a damaged
  // folder), the nodes whose parent is the folder, in NID order.
  std::vector<uint32_t> Children(uint32_t folder, uint32_t nid_type) const;
  // The property context of a folder or of the message store.
  Result<PropertyBag> ReadProps(uint32_t nid) const;
  // A message with its recipients and attachments, embedded messages
  // recursively. Safe to call from several threads at once.
  Result<MapiMessage> ReadMessage(uint32_t nid) const;

 private:
  explicit Store(ndb::NdbReader ndb) : ndb_(std::move(ndb)) {}
  Result<MapiMessage> ReadObject(uint64_t bid_data, uint64_t bid_sub, int depth) const;
  // Moves the values out of `props`.
  PropertyBag ToBag(std::vector<ltp::Property>&& props) const;

  ndb::NdbReader ndb_;
  // Named property names by id - 0x8000 (the map's wPropIdx).
  std::vector<std::optional<ltp::PropertyName>> names_;
};

}  // namespace mbx::pst::native
