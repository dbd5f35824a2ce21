// \brief What a run did, per folder: read, selected, duplicates skipped,
// written, failed (with reasons), bytes and timings; as JSON and as a summary.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace mbx {

struct FailedMessage {
  std::string origin;  // names file, folder and message
  std::string reason;
};

struct FolderCounts {
  uint64_t read = 0;
  uint64_t selected = 0;
  uint64_t not_selected = 0;
  uint64_t duplicates = 0;
  uint64_t written = 0;  // durable in the target
  uint64_t failed = 0;
  uint64_t archived = 0;  // removed from the source (--mode archive)
  uint64_t replaced = 0;  // written in the place of the target's equal (--mode replace*);
                          // also counted in `written`
  uint64_t bytes_read = 0;
  uint64_t bytes_written = 0;
  void Add(const FolderCounts& o);
};

struct SourceReport {
  std::string source;  // "mbox:/path"
  // Keyed by "source folder -> target folder".
  std::map<std::string, FolderCounts> folders;
  std::string target_folder_note;  // e.g. single-folder target
  FolderCounts Total() const;
};

struct RunReport {
  std::string command;  // "merge"
  std::string target;
  std::string mode;
  std::string dedupe;
  bool dry_run = false;
  bool single_folder_target = false;
  int jobs = 1;
  std::vector<SourceReport> sources;
  std::vector<FailedMessage> failures;
  std::string fatal;  // non-empty when the run stopped early
  double seconds_total = 0;
  double seconds_scan_target = 0;
  uint64_t existing_messages = 0;
  FolderCounts Total() const;

  // 0 all done; 1 some messages failed; 3 fatal.
  int ExitCode() const;
  std::string ToJson() const;
  // A one-screen human summary.
  std::string Summary() const;
};

}  // namespace mbx
