// \brief The dedupe index: which messages a target already holds, per scope.
//
// Two levels: entries are found by header key; two messages are duplicates
// only when their full SHA-256 digests are equal, so a header-key collision
// can never drop a message. Target messages enter with their header key only;
// their digest is computed on first collision, from bytes the caller loads.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "engine/fingerprint.h"
#include "engine/status.h"

namespace mbx {

// REQUIRES: external synchronization (the pipeline's committer owns it).
class DedupeIndex {
 public:
  using Loader = std::function<Result<std::string>(uint64_t locator)>;

  explicit DedupeIndex(DedupeRule rule) : rule_(rule) {}

  // A message already in the target, digest not yet known. Target messages
  // are added before the run's own (CheckAndInsert) and never rolled back.
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
  void Commit() { committed_ = count_; }
  // Commits the entries inserted before size() was `mark`: a batch whose
  // write finished while the next one was being staged.
  void CommitThrough(size_t mark) { committed_ = static_cast<uint32_t>(mark); }

  size_t size() const { return count_; }
  size_t digests_loaded() const { return digests_loaded_; }

 private:
  // 48 bytes per message, plus 4 / load factor (0.44..0.875) for its table
  // cell: under 64 bytes per message at any size (issue: bounded memory).
  struct Entry {
    Digest digest;
    uint64_t tag;      // Slot() with bit 0 set once `digest` is known
    uint64_t locator;  // a target message, or kWrittenThisRun
  };
  static_assert(sizeof(Entry) == 48);
  static constexpr uint32_t kNone = UINT32_MAX;
  static constexpr size_t kChunkEntries = size_t{1}
                                          << 13;  // 384 KiB chunks: no vector doubling slack
  static uint64_t Slot(uint32_t scope, const HeaderKey& key);

  Entry& At(uint32_t i) { return chunks_[i / kChunkEntries][i % kChunkEntries]; }
  uint32_t Append(const Entry& e);
  void Index(uint32_t entry);    // enters an appended entry into the table
  void Unindex(uint32_t entry);  // removes it (backward-shift deletion)
  void Grow();
  size_t Home(uint64_t tag) const {
    return static_cast<size_t>((tag * 0x9E3779B97F4A7C15ULL) >> shift_);
  }

 public:
  // Heap bytes held by the index (entries and table), for the memory bound.
  size_t MemoryBytes() const {
    return chunks_.size() * kChunkEntries * sizeof(Entry) + table_.size() * sizeof(uint32_t) +
           chunks_.capacity() * sizeof(chunks_[0]);
  }

 private:
  DedupeRule rule_;
  std::vector<std::unique_ptr<Entry[]>> chunks_;
  uint32_t count_ = 0;      // entries in use
  uint32_t committed_ = 0;  // entries up to the last Commit() (Rollback() keeps them)
  // Open addressing, linear probing: each cell holds an entry number or kNone.
  // Entries of the same slot simply sit in successive cells.
  std::vector<uint32_t> table_;
  int shift_ = 64;
  size_t digests_loaded_ = 0;
  uint32_t last_match_ = kNone;
};

}  // namespace mbx
