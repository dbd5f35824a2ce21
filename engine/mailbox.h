// \brief MailboxSource and MailboxSink: the one narrow seam every format backend implements.
//
// A backend is one folder under formats/ with a source (pull messages out) and
// a sink (stage messages in, make them durable in batches). The engine never
// sees file layouts; backends never see dedupe, selection or threads.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "engine/message.h"
#include "engine/status.h"

namespace mbx {

struct FolderInfo {
  std::string path;  // "" for the root, else "A/B/C"
  uint64_t messages = 0;
  uint64_t bytes = 0;
};

// Reads one mailbox. Not thread-safe: one thread pulls at a time.
// Sources never modify what they read.
class MailboxSource {
 public:
  virtual ~MailboxSource() = default;

  // "maildir:/srv/mail/alice" style text for messages and reports.
  virtual std::string Describe() const = 0;

  // The folder tree, parents before children, root first, with message counts
  // and byte sizes. May scan the whole mailbox.
  virtual Result<std::vector<FolderInfo>> ListFolders() = 0;

  // Restricts Next() to folders for which `want(path)` is true, so unselected
  // folders are not even read. Call before the first Next(). Default: all.
  virtual void SetFolderFilter(std::function<bool(std::string_view folder)> want) {
    folder_filter_ = std::move(want);
  }

  // --jobs: the source may read ahead of Next() on up to `threads` threads of
  // its own (one file handle each), as long as Next() still returns the same
  // messages in the same order. Call before the first Next(). Default: ignored.
  virtual void SetReadThreads(int threads) { (void)threads; }

  // Pulls the next message in a deterministic order (folders in ListFolders()
  // order, messages in storage order). Returns false at the end. A message that
  // cannot be read is returned with `read_error` set and `origin` naming it, so
  // the run goes on; a non-OK Result means the source is unusable from here on.
  virtual Result<bool> Next(Message* out) = 0;

  // --mode archive for whole-file sources (an mbox, a PST), which cannot
  // unlink one message the way Maildir and EML sources do (backing_file):
  // rewrites the source atomically without the messages whose
  // Message::source_token is in `tokens`. Called only after the target is
  // durable. A message that changed since Next() returned it is kept and
  // reported through `kept`, never removed blindly.
  virtual bool CanRemoveMessages() const { return false; }
  // Says that RemoveMessages() will follow this run; call before the first
  // Next(). A source that must recognize a message at removal time (an
  // mbox hashes each message's bytes as it reads them) does that work only
  // then, not on every merge.
  virtual void WillRemoveMessages() {}
  virtual Status RemoveMessages(const std::vector<uint64_t>& tokens,
                                const std::function<void(uint64_t token, std::string why)>& kept) {
    (void)tokens;
    (void)kept;
    return Status::Unsupported(Describe() + " cannot remove single messages");
  }

 protected:
  bool WantFolder(std::string_view path) const { return !folder_filter_ || folder_filter_(path); }

 private:
  std::function<bool(std::string_view)> folder_filter_;
};

// A message already present in a sink, as seen by the dedupe index.
struct ExistingMessage {
  std::string_view folder;
  // At least the whole header block of the message (may include some body).
  std::string_view head;
  // Opaque to the engine; hand it to MailboxSink::ReadExisting() for the bytes.
  uint64_t locator = 0;
  // True when `head` is the whole message: the engine digests it at once and
  // never calls ReadExisting() for it.
  bool head_is_complete = false;
};

// Writes one mailbox. Not thread-safe: the pipeline's committer thread owns it.
// Contract: Stage() writes nothing durable; Flush() makes every staged message
// durable (after it returns OK they count as merged); a failed Flush() or
// Rollback() leaves the mailbox exactly as after the last good Flush().
class MailboxSink {
 public:
  virtual ~MailboxSink() = default;

  virtual std::string Describe() const = 0;

  // True when the sink has one folder only (a single .mbox file): every source
  // folder is merged into it.
  virtual bool SingleFolder() const { return false; }

  // --jobs: the sink may write what Stage() was given on a thread of its
  // own, behind the caller, as long as Flush() still makes everything staged
  // durable and reports any failure. Call before the first Stage(). Default:
  // ignored.
  virtual void SetWriteThreads(int threads) { (void)threads; }

  // Calls `fn` for each message already in the mailbox (for dedupe).
  virtual Status ScanExisting(const std::function<Status(const ExistingMessage&)>& fn) = 0;

  // The full bytes of an existing message seen by ScanExisting().
  virtual Result<std::string> ReadExisting(uint64_t locator) = 0;

  // Stages `msg` into `folder` (already mapped to this mailbox's folders;
  // missing folders are created). Errors concern this message only unless the
  // sink is unusable, which later calls report too.
  virtual Status Stage(const Message& msg, std::string_view folder) = 0;

  // Whether Stage() needs `msg`'s MIME form. The engine renders a native
  // message's MIME on its worker threads only when something needs it: this,
  // a selection criterion or dedupe. Thread-safe; looks at `msg` only.
  virtual bool NeedsMime(const Message& msg) const {
    (void)msg;
    return true;
  }

  // Converts `msg` into the sink's own form ahead of Stage() (setting
  // msg->sink_form, which Stage() then uses): the engine calls it on its
  // worker threads, so conversion runs in parallel instead of on the one
  // committer thread. A sink whose Stage() converts nothing has nothing to do
  // here. An error fails this message only. Thread-safe.
  virtual Status Convert(Message* msg) const {
    (void)msg;
    return Status::Ok();
  }

  // The folder name ScanExisting() reports for a message staged into
  // `folder`. Sinks that rewrite names for their medium (Maildir++ dots,
  // unsafe file names, length limits) say how, so that a rerun's dedupe
  // looks in the folder the first run wrote to.
  virtual std::string StoredFolderName(std::string_view folder) const {
    return std::string(folder);
  }

  // Makes everything staged durable (fsync, rename, directory fsync).
  virtual Status Flush() = 0;

  // Flush() in two halves, so that the next batch is staged while this one
  // is made durable: StartFlush() takes everything staged so far and starts
  // writing it; FinishFlush() waits for that and says how it went. Between
  // them Stage() may be called (it stages the next batch), Flush() and
  // Close() may not. A failure of either drops everything staged since the
  // last good flush, the next batch too; Rollback() is still the caller's to
  // call. Sinks that cannot write behind the caller do the whole Flush() in
  // StartFlush() (the default).
  virtual Status StartFlush() { return Flush(); }
  virtual Status FinishFlush() { return Status::Ok(); }

  // Drops everything staged since the last Flush().
  virtual void Rollback() = 0;

  // Flushes and releases locks. Idempotent.
  virtual Status Close() = 0;

  // --mode replace and replace-newer: true when the sink can put a message in
  // the place of an existing one.
  virtual bool CanReplace() const { return false; }

  // Stages `msg` as Stage() does and removes the existing message `existing`
  // (a ScanExisting() locator) once `msg` is durable: after the next good
  // Flush() exactly one of the two is in the mailbox, even across a crash.
  virtual Status StageReplacing(const Message& msg, std::string_view folder, uint64_t existing) {
    (void)msg;
    (void)folder;
    (void)existing;
    return Status::Unsupported(Describe() + " cannot replace messages");
  }

  // When the existing message was last modified, for --mode replace-newer
  // (0 = unknown, and then it is never replaced).
  virtual UnixTime ExistingModified(uint64_t existing) {
    (void)existing;
    return 0;
  }
};

}  // namespace mbx
