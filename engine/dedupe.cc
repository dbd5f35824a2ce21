#include "engine/dedupe.h"

#include <cstring>

namespace mbx {

uint64_t DedupeIndex::Slot(uint32_t scope, const HeaderKey& key) {
  // The header key is a SHA-256 prefix: 64 of its bits are as good as any hash.
  // Bit 0 is the entry's "digest known" flag, so the top bit is dropped.
  uint64_t h;
  std::memcpy(&h, key.data(), sizeof h);
  return (h ^ (static_cast<uint64_t>(scope) * 0x9E3779B97F4A7C15ULL)) << 1;
}

uint32_t DedupeIndex::Append(const Entry& e) {
  if (count_ % kChunkEntries == 0 && count_ / kChunkEntries == chunks_.size()) {
    chunks_.push_back(std::make_unique<Entry[]>(kChunkEntries));
  }
  uint32_t i = count_++;
  At(i) = e;
  Index(i);
  return i;
}

void DedupeIndex::Grow() {
  size_t cells = table_.empty() ? 1024 : table_.size() * 2;
  table_.assign(cells, kNone);
  shift_ = 64 - __builtin_ctzll(cells);
  for (uint32_t i = 0; i < count_; ++i) {
    size_t mask = table_.size() - 1;
    size_t c = Home(At(i).tag & ~uint64_t{1});
    while (table_[c] != kNone) c = (c + 1) & mask;
    table_[c] = i;
  }
}

void DedupeIndex::Index(uint32_t entry) {
  // Grow at 7/8 full; the new entry is already counted in count_.
  if (static_cast<size_t>(count_) * 8 > table_.size() * 7) {
    Grow();  // re-enters every entry, this one included
    return;
  }
  size_t mask = table_.size() - 1;
  size_t c = Home(At(entry).tag & ~uint64_t{1});
  while (table_[c] != kNone) c = (c + 1) & mask;
  table_[c] = entry;
}

void DedupeIndex::Unindex(uint32_t entry) {
  size_t mask = table_.size() - 1;
  size_t c = Home(At(entry).tag & ~uint64_t{1});
  while (table_[c] != entry) c = (c + 1) & mask;
  // Backward-shift deletion: move later cells of the run into the hole when
  // their home position allows it, so lookups never meet a false gap.
  size_t hole = c;
  for (size_t n = (hole + 1) & mask; table_[n] != kNone; n = (n + 1) & mask) {
    size_t home = Home(At(table_[n]).tag & ~uint64_t{1});
    // Movable when home is not cyclically in (hole, n].
    bool movable = hole <= n ? (home <= hole || home > n) : (home <= hole && home > n);
    if (movable) {
      table_[hole] = table_[n];
      hole = n;
    }
  }
  table_[hole] = kNone;
}

// Target messages are never rolled back: with no run entries pending (they
// are added before the run writes anything), they count as committed.
void DedupeIndex::AddExisting(uint32_t scope, const HeaderKey& key, uint64_t locator) {
  Append(Entry{Digest{}, Slot(scope, key), locator});
  if (committed_ + 1 == count_) committed_ = count_;
}

void DedupeIndex::AddExistingDigest(uint32_t scope, const HeaderKey& key, const Digest& digest,
                                    uint64_t locator) {
  Append(Entry{digest, Slot(scope, key) | 1, locator});
  if (committed_ + 1 == count_) committed_ = count_;
}

Result<bool> DedupeIndex::CheckAndInsert(uint32_t scope, const HeaderKey& key, const Digest& digest,
                                         const Loader& load, uint64_t* match) {
  last_match_ = kNone;
  const uint64_t slot = Slot(scope, key);
  if (!table_.empty()) {
    size_t mask = table_.size() - 1;
    for (size_t c = Home(slot); table_[c] != kNone; c = (c + 1) & mask) {
      uint32_t i = table_[c];
      Entry& e = At(i);
      if ((e.tag & ~uint64_t{1}) != slot) continue;
      if (!(e.tag & 1)) {
        MBX_ASSIGN_OR_RETURN(std::string bytes, load(e.locator));
        e.digest = ComputeDigest(bytes, rule_);
        e.tag |= 1;
        ++digests_loaded_;
      }
      if (e.digest == digest) {
        last_match_ = i;
        if (match) *match = e.locator;
        return true;
      }
    }
  }
  Append(Entry{digest, slot | 1, kWrittenThisRun});
  return false;
}

void DedupeIndex::MarkLastMatchReplaced() {
  if (last_match_ != kNone) At(last_match_).locator = kWrittenThisRun;
}

void DedupeIndex::UndoLast() {
  if (count_ == committed_) return;
  Unindex(--count_);
  last_match_ = kNone;
}

void DedupeIndex::Rollback() {
  while (count_ > committed_) Unindex(--count_);
  last_match_ = kNone;
}

}  // namespace mbx
