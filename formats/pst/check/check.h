// \brief Strict PST checker (scanpst's job) and a canonical structure dump over our PST reader.
//
// libpff and readpst verify neither block nor page CRCs and can silently skip a
// broken tree, so every PST our writer produces goes through CheckPst: header,
// pages, B-trees, blocks, reference counts, allocation maps, counters, heaps,
// property and table contexts, and the messaging-layer links between folders,
// tables and messages. Conventions not in the spec follow what Outlook writes
// (see the comments in check.cc).
#pragma once

#include <string>
#include <vector>

#include "engine/status.h"

namespace mbx::pst::check {

struct Violation {
  std::string location;  // "page @0x4600 (NBT level 1)", "node 0x200024 (message in 'Inbox')"
  std::string message;
};

struct CheckReport {
  std::vector<Violation> violations;
  int nodes = 0, blocks = 0, pages = 0, folders = 0, messages = 0;
  // Facts worth knowing that are not violations (e.g. PMap-reserved space).
  std::vector<std::string> notes;
};

// Checks a Unicode PST. The Result is an error only when the file cannot be
// opened or is not a PST we can read (ANSI and 4 KiB-page files are
// Unsupported); every problem inside a readable file is a Violation.
Result<CheckReport> CheckPst(const std::string& path);

// One line per node in NID order, then its properties, table columns and rows,
// and subnodes, indented. With mask_volatile, values that legitimately differ
// between two stores (times, GUIDs, record/search/source/change keys, entry
// IDs and other binaries embedding the store's provider UID) print as
// <masked>. Deterministic and diff-friendly; the format is described in check.cc.
Result<std::string> DumpStructure(const std::string& path, bool mask_volatile);

}  // namespace mbx::pst::check
