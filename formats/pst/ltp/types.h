// \brief LTP values shared by our PST reader and writer: a property as
// stored, and a table column descriptor.
#pragma once

#include <cstdint>
#include <string>

namespace mbx::pst::ltp {

// Where a value lives.
enum class Storage : uint8_t {
  kInline,   // in the PC record or the row itself
  kHeap,     // a heap allocation (HID)
  kSubnode,  // a subnode's data (NID)
  kEmpty,    // HNID 0: a zero-length value
};
const char* StorageName(Storage where);

// A property as the PST stores it: `value` holds the on-disk bytes (fixed
// types little-endian at their exact size, PtypString UTF-16LE without a
// terminator, multi-valued types in their packed layout). The reader also
// says where the value lived; the writer decides that itself.
struct Property {
  uint16_t id = 0;
  uint16_t type = 0;
  std::string value;
  Storage where = Storage::kInline;
  uint32_t hnid = 0;  // dwValueHnid when not inline (reader)
  uint32_t tag() const { return (uint32_t{id} << 16) | type; }
};

// One column of a table context ([MS-PST] 2.3.4.2 TCOLDESC).
struct Column {
  uint32_t tag = 0;  // id << 16 | type
  uint16_t ib = 0;   // offset of the cell in the row
  uint8_t cb = 0;    // cell size: the value's size, or 4 for an HNID
  uint8_t ibit = 0;  // bit in the cell existence bitmap
  uint16_t type() const { return static_cast<uint16_t>(tag & 0xFFFF); }
};

// The name of a named property ([MS-PST] 2.4.7): its property set and a
// numeric id or a string. Ids 0x8000 and up are per-store aliases of names.
struct PropertyName {
  std::string guid;  // the property set, 16 bytes as stored
  bool is_string = false;
  uint32_t lid = 0;  // numeric name
  std::string name;  // string name, UTF-8
  bool operator<(const PropertyName& o) const {
    if (guid != o.guid) return guid < o.guid;
    if (is_string != o.is_string) return is_string < o.is_string;
    return is_string ? name < o.name : lid < o.lid;
  }
};

}  // namespace mbx::pst::ltp
