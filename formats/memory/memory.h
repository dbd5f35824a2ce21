// \brief In-memory mailboxes: a test seam for the engine (as leveldb's MemEnv),
// with fault injection on the sink.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "engine/mailbox.h"

namespace mbx::memory {

// Messages handed out in the order given (folders in first-seen order).
class MemorySource : public MailboxSource {
 public:
  explicit MemorySource(std::vector<Message> messages, std::string name = "memory:source")
      : messages_(std::move(messages)), name_(std::move(name)) {}
  std::string Describe() const override { return name_; }
  Result<std::vector<FolderInfo>> ListFolders() override;
  Result<bool> Next(Message* out) override;

 private:
  std::vector<Message> messages_;
  std::string name_;
  size_t next_ = 0;
};

struct StoredMessage {
  std::string mime;
  MessageFlags flags = 0;
};

// A mailbox in memory. `durable` is what survived the last good Flush().
class MemorySink : public MailboxSink {
 public:
  explicit MemorySink(bool single_folder = false) : single_folder_(single_folder) {}
  std::string Describe() const override { return "memory:target"; }
  bool SingleFolder() const override { return single_folder_; }
  Status ScanExisting(const std::function<Status(const ExistingMessage&)>& fn) override;
  Result<std::string> ReadExisting(uint64_t locator) override;
  Status Stage(const Message& msg, std::string_view folder) override;
  Status Flush() override;
  void Rollback() override { staged_.clear(); }
  Status Close() override { return Flush(); }

  // Pre-existing content (before the run).
  void Preload(const std::string& folder, std::string mime) { durable_[folder].push_back({std::move(mime), 0}); }
  // Fault injection: the Nth Stage() call (1-based) fails; the Nth Flush() fails.
  void FailStageAt(int n) { fail_stage_at_ = n; }
  void FailFlushAt(int n) { fail_flush_at_ = n; }

  const std::map<std::string, std::vector<StoredMessage>>& durable() const { return durable_; }
  int flushes() const { return flushes_; }
  int read_existing_calls() const { return read_existing_calls_; }

 private:
  bool single_folder_;
  std::map<std::string, std::vector<StoredMessage>> durable_;
  std::vector<std::pair<std::string, StoredMessage>> staged_;
  std::vector<std::pair<std::string, size_t>> existing_;  // locator -> (folder, index)
  int stage_calls_ = 0, flush_calls_ = 0, flushes_ = 0, read_existing_calls_ = 0;
  int fail_stage_at_ = 0, fail_flush_at_ = 0;
};

}  // namespace mbx::memory
