#include "formats/memory/memory.h"

#include <algorithm>

namespace mbx::memory {

Result<std::vector<FolderInfo>> MemorySource::ListFolders() {
  std::vector<FolderInfo> out;
  for (const auto& m : messages_) {
    auto it = std::find_if(out.begin(), out.end(), [&](const FolderInfo& f) { return f.path == m.folder; });
    if (it == out.end()) {
      out.push_back({m.folder, 0, 0});
      it = out.end() - 1;
    }
    it->messages++;
    it->bytes += m.mime.size();
  }
  return out;
}

Result<bool> MemorySource::Next(Message* out) {
  while (next_ < messages_.size()) {
    const Message& m = messages_[next_++];
    if (!WantFolder(m.folder)) continue;
    *out = m;
    if (out->origin.empty()) out->origin = name_ + " message " + std::to_string(next_);
    return true;
  }
  return false;
}

Status MemorySink::ScanExisting(const std::function<Status(const ExistingMessage&)>& fn) {
  existing_.clear();
  for (const auto& [folder, msgs] : durable_) {
    for (size_t i = 0; i < msgs.size(); ++i) {
      existing_.emplace_back(folder, i);
      ExistingMessage e;
      e.folder = folder;
      e.head = msgs[i].mime;  // the whole message: the engine must still only trust the digest
      e.locator = existing_.size() - 1;
      MBX_RETURN_IF_ERROR(fn(e));
    }
  }
  return Status::Ok();
}

Result<std::string> MemorySink::ReadExisting(uint64_t locator) {
  ++read_existing_calls_;
  if (locator >= existing_.size()) return Status::NotFound("no existing message " + std::to_string(locator));
  const auto& [folder, idx] = existing_[locator];
  return durable_.at(folder)[idx].mime;
}

Status MemorySink::Stage(const Message& msg, std::string_view folder) {
  if (++stage_calls_ == fail_stage_at_) return Status::IOError("injected stage failure");
  auto mime = msg.Mime();
  if (!mime.ok()) return mime.status();
  staged_.push_back({single_folder_ ? std::string() : std::string(folder), StoredMessage{std::string(*mime), msg.flags}});
  return Status::Ok();
}

Status MemorySink::Flush() {
  if (staged_.empty()) return Status::Ok();
  if (++flush_calls_ == fail_flush_at_) return Status::IOError("injected flush failure");
  for (auto& [folder, m] : staged_) durable_[folder].push_back(std::move(m));
  staged_.clear();
  ++flushes_;
  return Status::Ok();
}

}  // namespace mbx::memory
