// \brief `mbxmerge report --merge`: joins the JSON reports of the shards of one
// run (recover, export, import with --shard K/N, or plain merge runs) into one.
#pragma once

#include <string>
#include <vector>

#include "engine/status.h"

namespace mbx {

struct MergedReports {
  std::string json;     // the joined report
  std::string summary;  // a few lines for a terminal
  // 0: every input finished its work; 1: some user or message failed, or a
  // shard of the split is missing.
  int exit_code = 0;
};

// Joins the reports at `paths`. Store reports: users concatenated (each tagged
// with its shard and file), totals summed, failures kept with their shard,
// the shard list and the missing shards recorded. Merge reports: runs
// concatenated, totals summed. Errors (InvalidArgument, naming the file): an
// unreadable or invalid file, mixed commands or dry-run and real runs, shards
// of different splits, a shard given twice, a user (or a source merged into a
// target) in two reports: shards must be disjoint.
Result<MergedReports> MergeReports(const std::vector<std::string>& paths);

}  // namespace mbx
