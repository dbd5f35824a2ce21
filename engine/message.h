// \brief The message model: one message as it travels from a source to a sink.
//
// A message keeps its source's native form. MIME sources hand over the RFC 5322
// bytes untouched; later backends (PST) attach their own native object and a
// converter, so a PST -> PST merge never goes through MIME. A sink asks for the
// form it needs (Message::Mime()) and conversion happens only then.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "engine/status.h"

namespace mbx {

// Message state flags, the union of what Maildir, mbox and MAPI can express.
enum MessageFlag : uint8_t {
  kFlagSeen = 1 << 0,      // Maildir S, mbox Status: R, MAPI MSGFLAG_READ
  kFlagAnswered = 1 << 1,  // Maildir R, mbox X-Status: A
  kFlagFlagged = 1 << 2,   // Maildir F, mbox X-Status: F
  kFlagDeleted = 1 << 3,   // Maildir T, mbox X-Status: D
  kFlagDraft = 1 << 4,     // Maildir D, mbox X-Status: T
  kFlagForwarded = 1 << 5, // Maildir P (passed)
  kFlagOld = 1 << 6,       // mbox Status: O (not "recent"; Maildir cur/ vs new/)
};
using MessageFlags = uint8_t;

// A sink's own form of a message, made ahead of time on a worker thread
// (MailboxSink::Convert). Sinks subclass it; the engine only carries it.
class SinkForm {
 public:
  virtual ~SinkForm() = default;
  // About how many bytes it holds (the pipeline's memory budget counts them).
  virtual size_t SizeHint() const = 0;
};

// A backend-specific native message (e.g. a MAPI property bag). Backends
// subclass it; the engine only passes it through and asks it for MIME.
class NativeMessage {
 public:
  virtual ~NativeMessage() = default;
  // A short name of the native form ("mapi"), for reports.
  virtual std::string_view Kind() const = 0;
  // Renders the message as RFC 5322 bytes.
  virtual Result<std::string> ToMime() const = 0;
  // About how many bytes the message holds (for memory budgets before conversion).
  virtual size_t SizeHint() const { return 0; }
};

// See Message::folder.
inline constexpr std::string_view kStoreFolderPrefix = "/";
inline bool IsStoreFolder(std::string_view folder) {
  return folder.substr(0, kStoreFolderPrefix.size()) == kStoreFolderPrefix;
}
// A path as a mailbox folder: what a message that is not associated means by
// a folder that starts with the prefix (a hostile source's "/etc").
inline std::string_view MailboxFolderOf(std::string_view folder) {
  while (IsStoreFolder(folder)) folder.remove_prefix(kStoreFolderPrefix.size());
  return folder;
}

// Seconds since the Unix epoch, UTC.
using UnixTime = int64_t;

struct Message {
  // Folder path below the mailbox root, components separated by '/', "" for
  // the root itself (an mbox file's only folder, a Maildir's INBOX). A path
  // starting with kStoreFolderPrefix names a folder of the store outside the
  // mailbox's folders (a PST's Common Views): only associated items have one,
  // only a PST sink takes them, and the engine never maps it under another
  // folder.
  std::string folder;

  // RFC 5322 bytes when the native form is MIME (native == nullptr), exactly as
  // stored (an mbox reader has already removed the From_ line and undone
  // mboxrd quoting). Empty when `native` is set and not yet converted.
  std::string mime;
  std::shared_ptr<const NativeMessage> native;

  MessageFlags flags = 0;

  // Times known from the container rather than the headers (0 = unknown):
  // the mbox From_ line date, the Maildir delivery stamp, the file's mtime.
  UnixTime container_delivered = 0;
  UnixTime container_modified = 0;

  // The mbox envelope sender from the From_ line, kept so mbox -> mbox is exact.
  std::string envelope_sender;

  // When non-empty: a file holding exactly `mime`'s bytes (a Maildir or EML
  // file), so a sink on the same file system may hard-link instead of copying.
  std::string backing_file;

  // The source's own handle on this message (an mbox offset, a PST node id),
  // handed back to MailboxSource::RemoveMessages() in archive mode.
  uint64_t source_token = 0;

  // A folder's associated (FAI) item, not a message a user sees: a view,
  // rule, form or setting (MSGFLAG_ASSOCIATED). Only PST sources yield them
  // (--associated), and only PST targets have a place for them.
  bool associated = false;

  // Where it came from, for errors and reports: "inbox.mbox message 12 (offset 4096)".
  std::string origin;

  // Set by a source when this message could not be read; the engine counts it
  // as failed (with this reason) and goes on.
  std::optional<Status> read_error;

  // The target sink's own form of this message, when its Convert() made one.
  std::shared_ptr<const SinkForm> sink_form;

  bool IsMime() const { return native == nullptr; }
  // The RFC 5322 form, converting from the native form when needed.
  Result<std::string_view> Mime() const;
  // The MIME size once known (after Mime()), else the native form's size hint.
  size_t ByteSize() const;
  // Bytes held by the MIME rendering of a native message (0 until Mime()
  // renders it): held beside the native form, which stays.
  size_t RenderedBytes() const { return converted_.size(); }

 private:
  mutable std::string converted_;
};

}  // namespace mbx
