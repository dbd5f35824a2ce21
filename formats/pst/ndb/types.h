// \brief Node-database values shared by our PST reader and writer.
#pragma once

#include <cstdint>

namespace mbx::pst::ndb {

// One entry of a subnode tree (SLENTRY, [MS-PST] 2.2.2.8.3.3.1.1).
struct SubnodeEntry {
  uint64_t nid = 0;
  uint64_t bid_data = 0;
  uint64_t bid_sub = 0;  // 0: none
};

}  // namespace mbx::pst::ndb
