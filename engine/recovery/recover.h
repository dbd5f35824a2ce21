// \brief The store commands' common parts: mailbox selection, the store lock,
// the journal; and `recover` itself.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "engine/fs.h"
#include "engine/merge.h"
#include "engine/recovery/store.h"
#include "formats/registry.h"

namespace mbx::recovery {

// Which users a store command works on. Every given criterion must hold.
struct MailboxFilter {
  std::vector<std::string> names;  // aliases or display names (from --mailboxes FILE)
  std::optional<std::pair<std::string, std::string>> range;  // inclusive, on display name, any case
  std::optional<std::pair<int, int>> shard;                  // K/N, 1 <= K <= N, by alias
};

// "--mailboxes FILE": one alias or display name per line, '#' comments.
Result<std::vector<std::string>> ReadMailboxList(const std::string& path);
// "A..M" (either side may be empty: "..M", "N..").
Result<std::pair<std::string, std::string>> ParseRange(std::string_view text);
// "K/N".
Result<std::pair<int, int>> ParseShard(std::string_view text);
// The stable shard (1..n) of an alias: FNV-1a of its lower-case form, mod n.
int ShardOf(std::string_view alias, int n);

// Users matching `filter`, in directory order. Names in the list that match
// no user are an error (a typo must not silently skip a mailbox).
Result<std::vector<const User*>> SelectUsers(const Store& store, const MailboxFilter& filter);

// A run's claim on a store, released on destruction. STORE/.mbxmerge/lock is
// an open-file-description lock: an unsharded run holds all of it and excludes
// every other run; shard K/N holds byte N shared plus an exclusive
// STORE/.mbxmerge/shard-K-of-N/lock, so the N shards of one split run at once
// while a second run of the same shard, a shard of another split (their users
// would overlap) or an unsharded run is refused with Busy.
class StoreLock {
 private:
  friend Result<StoreLock> LockStore(const Store&, std::optional<std::pair<int, int>>);
  fs::Fd store_, shard_;
};
Result<StoreLock> LockStore(const Store& store,
                            std::optional<std::pair<int, int>> shard = std::nullopt);

// Where a run keeps its journal: STORE/.mbxmerge, or STORE/.mbxmerge/shard-K-of-N.
std::string RunStateDir(const Store& store, std::optional<std::pair<int, int>> shard);

// An append-only, fsynced log of finished steps: "step\talias\tdetail\n".
// A torn last line (a run killed mid-write) is ignored.
class Journal {
 public:
  static Result<Journal> Open(const std::string& path);
  // Open() for the run that appends to it (holding its lock): also cuts off a
  // torn last line, so the next record starts on a line of its own.
  static Result<Journal> OpenForAppend(const std::string& path);
  // The last step recorded for `key` ("" if none).
  std::string Step(const std::string& key) const;
  std::string Detail(const std::string& key) const;
  Status Record(const std::string& key, const std::string& step, const std::string& detail = "");
  struct Entry {
    std::string key, step, detail;
  };
  // Several records in one durable append (one fsync).
  Status RecordAll(const std::vector<Entry>& entries);
  // Keys in first-recorded order, with their last step.
  const std::vector<std::pair<std::string, std::string>>& Entries() const { return order_; }

 private:
  std::string path_;
  std::vector<std::pair<std::string, std::string>> order_;  // key, step
  std::vector<std::string> details_;
};

struct RecoverOptions {
  MergeOptions merge;
  SourceOptions source;  // --associated, --recover-deleted (PST/OST mailboxes)
  MailboxFilter filter;
  bool dry_run = false;
  // Told about each user as it starts ("alice: merging 120 messages ...").
  std::function<void(const std::string&)> say;
};

struct UserOutcome {
  std::string alias;
  std::string display_name;
  std::string status;  // recovered, already-recovered, failed, planned
  std::string blank, original;  // GUID texts
  RunReport merge;
  bool merged = false;
  std::string error;
};

// The outcome of a store command (recover, export, import): one row per user.
struct RecoverResult {
  std::vector<UserOutcome> users;
  std::string reconnect_file;
  bool dry_run = false;
  std::string command = "recover";
  std::optional<std::pair<int, int>> shard;  // --shard K/N, recorded for `report --merge`
  double seconds = 0;
  int ExitCode() const;  // 0 all recovered; 1 some users failed
  // Records `out` as failed with `error`.
  void AddFailed(UserOutcome&& out, std::string error) {  // &&: `error` may be built from `out`
    out.status = "failed";
    out.error = std::move(error);
    users.push_back(std::move(out));
  }
  std::string Summary() const;
  std::string ToJson() const;
};

// Merges mailbox `from` into `into` for a store command (a dry-run sink when
// `dry_run`). Fills out->merge; on failure sets out->status/error, returns false.
// Associated (FAI) contents are asked of the source only when `into` is a PST:
// no other format has a place for them, and a store may mix formats.
bool MergeMailbox(const Location& from, const Location& into, const MergeOptions& options,
                  const SourceOptions& source_options, bool dry_run, bool create_target, UserOutcome* out);

// For every selected blank-connected user: merge the blank mailbox into the
// original one, append the user's change to STORE/reconnect.ldif, move the
// blank mailbox to STORE/retired/. Each step is journaled, so a killed run
// resumes where it stopped. A user that fails does not stop the others.
// A shard journals in its own directory and reads every journal of the store,
// so a user finished under one split is not redone under another; the appends
// to reconnect.ldif of concurrent shards are serialized by an flock.
Result<RecoverResult> Recover(const Store& store, const RecoverOptions& options);

}  // namespace mbx::recovery

namespace mbx::recovery {

struct TransferOptions {
  MergeOptions merge;
  SourceOptions source;  // --associated, --recover-deleted (PST/OST mailboxes)
  MailboxFilter filter;
  std::string dir;                  // export: --to DIR; import: --from DIR
  FormatKind format = FormatKind::kBundle;  // export file format
  bool dry_run = false;
  std::function<void(const std::string&)> say;
};

// ExMerge step 1: each selected user's connected mailbox into DIR/<alias>.mbxz
// (merged into the file when it exists: a rerun adds nothing twice).
Result<RecoverResult> Export(const Store& store, const TransferOptions& options);

// ExMerge step 2: each DIR/<alias>.{mbxz,pst,mbox} (or DIR/<alias>/ Maildir) merged
// into the connected mailbox of the user with that alias.
Result<RecoverResult> Import(const Store& store, const TransferOptions& options);

}  // namespace mbx::recovery
