// \brief Maildir++ backend: cur/ new/ tmp/, subfolders as ".Sub.Folder".
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/mailbox.h"
#include "formats/registry.h"

namespace mbx::maildir {

// Flags from a Maildir file name's info part (":2,FRS").
MessageFlags FlagsFromName(std::string_view filename);
// The info suffix for `flags`: ":2," followed by the flag letters in ASCII order.
std::string InfoSuffix(MessageFlags flags);

// Folder path ("Sub/Folder") <-> Maildir++ directory name (".Sub.Folder").
// Non-ASCII names use IMAP modified UTF-7 as Dovecot does; '.' inside a
// component is not representable and becomes '_'.
// DirNameForFolder("") is "" (the Maildir itself); empty components are dropped.
// FolderForDirName returns "" for a name that is not a subfolder (".", "..",
// no leading '.'); a component that is not valid modified UTF-7 is kept as is.
std::string DirNameForFolder(std::string_view folder);
std::string FolderForDirName(std::string_view dirname);

// IMAP modified UTF-7 (RFC 3501 5.1.3) for one name component. Invalid UTF-8
// input bytes become U+FFFD. DecodeModifiedUtf7 returns nullopt for malformed
// input; bytes outside "&...-" runs (also raw 8-bit) pass through unchanged.
std::string EncodeModifiedUtf7(std::string_view utf8);
std::optional<std::string> DecodeModifiedUtf7(std::string_view mutf7);

// True when `dir` has cur/, new/ and tmp/.
bool IsMaildir(const std::string& dir);

Result<std::unique_ptr<MailboxSource>> OpenSource(const std::string& dir);
// Creates the Maildir (and subfolders on demand) when missing. Writes go
// tmp/ -> fsync -> rename into new/ (or cur/ when the message has flags);
// with --jobs > 1 the worker threads write into the root's tmp/ (Convert())
// and the rename moves the file into its folder.
// The sink holds DirLock on `dir` until Close().
Result<std::unique_ptr<MailboxSink>> OpenSink(const std::string& dir, const SinkOptions& opts);

// The writer's lock on a mailbox directory (Maildir or EML tree), so two
// mbxmerge runs never write the same one: flock() on the directory itself plus
// a "<dir>/.mbxmerge.lock" dotlock holding the pid (visible to users and to
// tools that do not speak flock). A dotlock left by a crashed run is broken
// when the flock is free (flock dies with its process). Released on destruction.
class DirLock {
 public:
  DirLock() = default;
  DirLock(DirLock&& o) noexcept;
  DirLock& operator=(DirLock&& o) noexcept;
  DirLock(const DirLock&) = delete;
  DirLock& operator=(const DirLock&) = delete;
  ~DirLock();
  // Fails with Busy when another sink (in any process) holds the lock.
  static Result<DirLock> Acquire(const std::string& dir);
  void Release();

 private:
  int dir_fd_ = -1;
  std::string dotlock_;
};

// Helpers shared with the EML tree backend (formats/eml), not a public API.
namespace internal {
// Reads a whole regular file (never blocks on a FIFO). `vanished` is set when
// it does not exist (any more); `mtime` receives its modification time.
Result<std::string> ReadMessageFile(const std::string& path, UnixTime* mtime, bool* vanished);
// The start of a file (16 KiB), extended until the header block is complete.
Result<std::string> ReadHead(const std::string& path, bool* vanished);
// Makes the data of `files` durable: one syncfs() per file system when
// `batch`, else an fsync() per file.
Status SyncFiles(const std::vector<std::string>& files, bool batch);
// "A//B/" -> {"A", "B"}.
std::vector<std::string> SplitFolder(std::string_view folder);
// --mode replace: ROOT/.mbxmerge-replace holds "new file<TAB>old file" lines,
// written (atomically) before the new files appear; finishing it removes
// each old file whose new one is in place, then the journal.
std::string ReplacementJournalPath(const std::string& root);
Status FinishReplacementJournal(const std::string& root);
}  // namespace internal

}  // namespace mbx::maildir
