// \brief `mbxmerge bench`: merge throughput measured on this machine with the
// real store workflow, and the projection of a real store's recover time.
//
// A bench generates a synthetic KB 278447 store (samples/synth.h) in a
// scratch directory, runs Diagnose() and Recover() on it exactly as the
// `diagnose` and `recover` commands do, times each stage, checks the result
// against the generator's manifest and removes the store again. The rates it
// measures, applied to a real store's diagnose counts, project how long
// recovering that store would take (`bench --store`, `recover --dry-run`).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "engine/merge.h"
#include "engine/recovery/diagnose.h"
#include "engine/recovery/store.h"
#include "engine/status.h"

namespace mbx::recovery {

struct BenchOptions {
  uint64_t users = 20;      // at least 3: one ok, one missing, the rest blank-connected
  uint64_t messages = 500;  // per user (+-25%), blank and original mailbox together
  uint64_t avg_size = 6000;
  double dup_rate = 0.4;           // share of a blank mailbox's messages also in the original
  std::string format = "maildir";  // maildir, mbox, eml or pst
  uint64_t seed = 1;
  // The store directory (absent or empty); "" for a fresh one under $TMPDIR.
  std::string dir;
  bool keep = false;  // leave the store (recovered by then) in place
  // The recover command's merge options (--jobs, --dedupe, ...). Their
  // selection, target folder and dry-run parts are ignored.
  MergeOptions merge;
  bool progress_bars = false;  // draw progress bars on stderr
  // Told when a stage starts and ends.
  std::function<void(const std::string&)> say;
};

struct BenchStage {
  std::string name;  // generate, diagnose, recover, verify
  double seconds = 0;
  uint64_t messages = 0;  // input: messages the stage read (generate: wrote)
  uint64_t bytes = 0;
  uint64_t peak_rss = 0;  // bytes
  // "VmHWM" (the stage's own peak: reset before it through /proc/self/clear_refs)
  // or "ru_maxrss" (the process's peak so far: the kernel could not reset it).
  std::string peak_rss_source;
  double MessagesPerSecond() const {
    return seconds > 0 ? static_cast<double>(messages) / seconds : 0;
  }
  double BytesPerSecond() const { return seconds > 0 ? static_cast<double>(bytes) / seconds : 0; }
};

// Throughput of the recover stage, split the way a projection needs it: the
// stage's wall time is shared out between scanning and merging as the merges'
// own timings split them, so the rates carry what else a run does (mailboxes
// merged in parallel, each user's journal, reconnect.ldif and retiring).
struct BenchRates {
  std::string format;
  int jobs = 1;
  uint64_t avg_message_bytes = 0;
  uint64_t users = 0;  // users the rates were measured on
  double seconds = 0;  // the recover stage they come from
  // Merging the blank mailboxes' messages (read, fingerprint, dedupe, write).
  double merge_messages_per_s = 0, merge_bytes_per_s = 0;
  // Showing the originals' messages to the dedupe index (0: too quick to tell).
  double scan_bytes_per_s = 0;
};

struct BenchResult {
  BenchOptions options;  // as run (say and merge.progress cleared)
  std::string store;     // the store directory
  bool kept = false;
  // What the generator wrote.
  uint64_t users = 0, mailboxes = 0, distinct_messages = 0, copies = 0, bytes = 0;
  std::vector<BenchStage> stages;
  uint64_t recovered_users = 0, written = 0, duplicates = 0;
  BenchRates rates;
  bool verified = false;
  std::vector<std::string> verify_errors;  // the first few
  const BenchStage* Stage(std::string_view name) const;
};

// InvalidArgument naming the option (--users, --format, ...) when `options` is out of range.
Status CheckBenchOptions(const BenchOptions& options);

// Generates, diagnoses, recovers and verifies. An error means the bench could
// not run (bad options, no scratch space, a store that cannot be opened); a
// recover that loses or doubles messages is a result with verified == false.
Result<BenchResult> RunBench(const BenchOptions& options);

// What recovering the selected blank-connected users of a store means, from
// its diagnose counts.
struct UserWork {
  std::string alias;
  uint64_t merge_messages = 0, merge_bytes = 0;  // the blank mailbox
  uint64_t scan_messages = 0, scan_bytes = 0;    // the original mailbox
};
struct StoreWork {
  std::vector<UserWork> users;
  uint64_t merge_messages = 0, merge_bytes = 0, scan_messages = 0, scan_bytes = 0;
  // The format most of these bytes are in (maildir, mbox, eml, pst): the one to bench.
  std::string format = "maildir";
  std::vector<std::string> unreadable;  // mailboxes diagnose could not count
  uint64_t AvgMessageBytes() const;
};
// `rows` from Diagnose(store, /*count=*/true); `selected` from SelectUsers().
StoreWork MeasureWork(const Store& store, const std::vector<DiagnoseRow>& rows,
                      const std::vector<const User*>& selected);

// A few seconds' bench shaped like `work` (its format and average message
// size), for the rates of a projection.
Result<BenchRates> Calibrate(const StoreWork& work, const MergeOptions& merge,
                             const std::function<void(const std::string&)>& say);

struct Projection {
  StoreWork work;
  BenchRates rates;
  std::string rates_from;  // "this bench", "a calibration bench"
  double seconds = 0;
};
// The sum over users of scan bytes / scan rate + merge bytes / merge rate.
Projection Project(StoreWork work, const BenchRates& rates, std::string rates_from);

std::string HumanDuration(double seconds);  // "42 s", "3 min 20 s", "2 h 05 min"
std::string ProjectionText(const std::string& store_dir, const Projection& p);
std::string BenchTable(const BenchResult& r);
// `projection` may be null.
std::string BenchJson(const BenchResult& r, const Projection* projection);

}  // namespace mbx::recovery
