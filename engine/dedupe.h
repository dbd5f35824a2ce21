// \brief The dedupe index: which messages a target already holds, per scope.
//
// Two levels: entries are found by header key; two messages are duplicates
// only when their full SHA-256 digests are equal, so a header-key collision
// can never drop a message. Target messages enter with their header key only;
// their digest is computed on first collision, from bytes the caller loads.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <unordered_map>
#include <vector>

#include "engine/fingerprint.h"
#include "engine/status.h"

namespace mbx {

// REQUIRES: external synchronization (the pipeline's committer owns it).
class DedupeIndex {
 public:
  using Loader = std::function<Result<std::string>(uint64_t locator)>;

  explicit DedupeIndex(DedupeRule rule) : rule_(rule) {}

  // A message already in the target, digest not yet known.
  void AddExisting(uint32_t scope, const HeaderKey& key, uint64_t locator);

  // A message already in the target whose digest is known.
  void AddExistingDigest(uint32_t scope, const HeaderKey& key, const Digest& digest,
                         uint64_t locator);

  // What CheckAndInsert() found equal: a target message's locator, or
  // kWrittenThisRun for a message this run wrote (or already replaced).
  static constexpr uint64_t kWrittenThisRun = UINT64_MAX;

  // True when an equal message is already in `scope` (then `*match`, if
  // given, says which); otherwise records this one (as written by this run)
  // and returns false. `load` reads an existing target message for its
  // digest when its header key collides.
  Result<bool> CheckAndInsert(uint32_t scope, const HeaderKey& key, const Digest& digest,
                              const Loader& load, uint64_t* match = nullptr);

  // --mode replace: the target message that the last CheckAndInsert() matched
  // is being replaced, so later equals count as written by this run.
  void MarkLastMatchReplaced();

  // Forgets entries inserted since the last Commit() (their write was rolled back).
  void Rollback();
  // Forgets the most recent insertion (its write failed).
  void UndoLast();
  void Commit() { pending_.clear(); }

  size_t size() const { return entries_.size(); }
  size_t digests_loaded() const { return digests_loaded_; }

 private:
  struct Entry {
    Digest digest;
    uint64_t locator;
    uint32_t next;  // chain of entries with the same (scope, key); kNone ends it
    bool has_digest;
  };
  static constexpr uint32_t kNone = UINT32_MAX;
  static uint64_t Slot(uint32_t scope, const HeaderKey& key);

  DedupeRule rule_;
  std::unordered_map<uint64_t, uint32_t> heads_;
  std::vector<Entry> entries_;
  std::vector<uint64_t> pending_;  // slots whose head was added since Commit()
  size_t digests_loaded_ = 0;
  uint32_t last_match_ = kNone;
};

}  // namespace mbx
