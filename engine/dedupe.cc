#include "engine/dedupe.h"

#include <cstring>

namespace mbx {

uint64_t DedupeIndex::Slot(uint32_t scope, const HeaderKey& key) {
  // The header key is a SHA-256 prefix: 64 of its bits are as good as any hash.
  uint64_t h;
  std::memcpy(&h, key.data(), sizeof h);
  return h ^ (static_cast<uint64_t>(scope) * 0x9E3779B97F4A7C15ULL);
}

void DedupeIndex::AddExisting(uint32_t scope, const HeaderKey& key, uint64_t locator) {
  uint64_t slot = Slot(scope, key);
  auto [it, inserted] = heads_.try_emplace(slot, kNone);
  entries_.push_back(Entry{Digest{}, locator, it->second, false});
  it->second = static_cast<uint32_t>(entries_.size() - 1);
}

void DedupeIndex::AddExistingDigest(uint32_t scope, const HeaderKey& key, const Digest& digest,
                                    uint64_t locator) {
  uint64_t slot = Slot(scope, key);
  auto [it, inserted] = heads_.try_emplace(slot, kNone);
  entries_.push_back(Entry{digest, locator, it->second, true});
  it->second = static_cast<uint32_t>(entries_.size() - 1);
}

Result<bool> DedupeIndex::CheckAndInsert(uint32_t scope, const HeaderKey& key, const Digest& digest,
                                         const Loader& load, uint64_t* match) {
  last_match_ = kNone;
  uint64_t slot = Slot(scope, key);
  auto [it, inserted] = heads_.try_emplace(slot, kNone);
  for (uint32_t i = it->second; i != kNone; i = entries_[i].next) {
    Entry& e = entries_[i];
    if (!e.has_digest) {
      MBX_ASSIGN_OR_RETURN(std::string bytes, load(e.locator));
      e.digest = ComputeDigest(bytes, rule_);
      e.has_digest = true;
      ++digests_loaded_;
    }
    if (e.digest == digest) {
      last_match_ = i;
      if (match) *match = e.locator;
      return true;
    }
  }
  entries_.push_back(Entry{digest, kWrittenThisRun, it->second, true});
  it->second = static_cast<uint32_t>(entries_.size() - 1);
  pending_.push_back(slot);
  return false;
}

void DedupeIndex::MarkLastMatchReplaced() {
  if (last_match_ != kNone) entries_[last_match_].locator = kWrittenThisRun;
}

void DedupeIndex::UndoLast() {
  if (pending_.empty()) return;
  auto it = heads_.find(pending_.back());
  it->second = entries_[it->second].next;
  entries_.pop_back();
  pending_.pop_back();
}

void DedupeIndex::Rollback() {
  // Entries are only ever pushed at the back and at the head of their chain,
  // so undoing in reverse order restores the chains exactly.
  for (auto s = pending_.rbegin(); s != pending_.rend(); ++s) {
    auto it = heads_.find(*s);
    uint32_t idx = it->second;
    it->second = entries_[idx].next;
    entries_.pop_back();
  }
  pending_.clear();
}

}  // namespace mbx
