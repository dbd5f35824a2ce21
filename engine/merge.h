// \brief The merge pipeline: read -> select -> fingerprint -> dedupe -> write.
//
// One reader pulls messages from the sources in order and numbers them; a pool
// of workers selects and fingerprints them in parallel; one committer takes
// them back in number order, decides duplicates ("first seen wins") and stages
// them into the sink, flushing in durable batches. Memory is bounded by the
// bytes in flight, and the output is the same for any number of workers.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "engine/fingerprint.h"
#include "engine/mailbox.h"
#include "engine/report.h"
#include "engine/select.h"

namespace mbx {

enum class MergeMode {
  kMerge,         // skip duplicates
  kCopy,          // write everything
  kArchive,       // merge, then remove from the source every message now durably in the target
  kReplace,       // merge, and a duplicate takes the place of the target's equal
  kReplaceNewer,  // as kReplace, only when the source's copy was modified later
};
enum class DedupeScope { kFolder, kMailbox };

struct MergeOptions {
  MergeMode mode = MergeMode::kMerge;
  DedupeRule dedupe = DedupeRule::kAuto;
  DedupeScope scope = DedupeScope::kFolder;
  Selection selection;
  // When set, every message goes below this target folder instead of the
  // same-named folders ("Recovered" puts Inbox/X into Recovered/Inbox/X).
  std::string target_folder;
  // Parallelism. 1: one thread does everything in turn. N > 1: a reader, N
  // workers converting and fingerprinting, and a committer, in parallel (and
  // a source may read ahead on N - 1 threads: MailboxSource::SetReadThreads).
  int jobs = 1;
  bool dry_run = false;
  // Folders the target already has, so "projects" in the target takes
  // "Projects" from a source (folder names match case-insensitively).
  std::vector<std::string> existing_target_folders;
  // Durability batches: a flush after this many messages or bytes. With
  // jobs > 1 the next batch is staged while the sink makes the last one
  // durable (StartFlush/FinishFlush); a batch counts as written only then.
  // An mbox sink writes a batch out in 1 MiB pieces as it grows.
  size_t batch_messages = 1000;
  size_t batch_bytes = 32u << 20;
  // Back-pressure: at most this many message bytes between reader and committer.
  size_t max_inflight_bytes = 64u << 20;
  // Set from a signal handler to stop after the messages in flight.
  const std::atomic<bool>* cancel = nullptr;
  // Called by the committer after each message: (messages done, bytes done).
  std::function<void(uint64_t, uint64_t)> progress;
  // For a target that cannot keep a message's MIME bytes (a PST stores
  // properties and renders MIME on reading): the form in which it shows its
  // messages to ScanExisting. Source messages are fingerprinted in that form
  // too, so a message already there is found. Called by workers: thread-safe.
  std::function<Result<std::string>(const Message&)> dedupe_form;
};

// Runs one merge. The sink must be open; sources are read once, in order.
// Never fails as a whole: problems are recorded in the report (failures,
// fatal), whose ExitCode() is the process exit status.
RunReport RunMerge(const std::vector<MailboxSource*>& sources, MailboxSink* sink,
                   const MergeOptions& options);

// A sink that writes nothing (for --dry-run): it stages into thin air and
// reports as existing the messages of `existing` (may be null).
std::unique_ptr<MailboxSink> NewDryRunSink(std::unique_ptr<MailboxSource> existing,
                                           std::string description, bool single_folder);

std::string_view ToString(MergeMode m);
std::string_view ToString(DedupeRule r);

}  // namespace mbx
