// \brief Mailbox locations: parse "mbox:PATH", "maildir:PATH", ... and open the backend.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "engine/mailbox.h"
#include "engine/status.h"

namespace mbx {

enum class FormatKind {
  kMbox,     // one file, one folder (mboxrd)
  kMaildir,  // Maildir++: cur/ new/ tmp/, subfolders as .Sub.Folder
  kEml,      // a directory tree, one .eml file per message
  kMboxDir,  // one mbox file per folder: Inbox.mbox, Inbox/Projects.mbox
  kPst,      // an Outlook PST or OST file
  kPstDir,   // a folder of PST/OST files, as a source: each file's folders under its name
  kBundle,   // an .mbxz bundle: zstd-compressed messages with folders and flags
};

std::string_view FormatName(FormatKind kind);  // "mbox", "maildir", "eml", "mboxdir", "pst", ...

struct Location {
  FormatKind kind = FormatKind::kMaildir;
  std::string path;
  bool exists = false;
  std::string ToString() const;  // "maildir:/path"
};

// Resolves a location spec. An explicit prefix wins; else an existing path is
// typed by what it is (file -> mbox; directory with cur/ new/ tmp/ -> Maildir;
// directory of PST/OST files only -> pstdir; other directory -> EML tree; a
// file starting with "!BDN" or named *.pst/*.ost -> PST); else by suffix (.mbox -> mbox, .pst/.ost -> PST). When
// `for_target` and the path does not exist, a bare name means a new Maildir.
Result<Location> ParseLocation(std::string_view spec, bool for_target);

struct SinkOptions {
  // Hard-link Maildir/EML source files into a Maildir/EML target on the same
  // file system instead of copying the bytes.
  bool allow_hardlinks = true;
  // Flush() uses one syncfs()-style batch instead of an fsync per file.
  bool batch_sync = true;
  // Create the mailbox when it does not exist.
  bool create = true;
  // A new PST target uses Outlook's "compressible" (permutation) encoding.
  bool pst_compressible = false;
  // Merging into an existing PST keeps the previous file as PATH.bak.
  bool pst_backup = true;
  // --mode replace*: a PST target, which rewrites its existing messages,
  // copies them at Close() instead, without the ones replaced.
  bool replace_mode = false;
};

struct SourceOptions {
  // PST/OST: also yield associated (FAI) contents (--associated).
  bool pst_associated = false;
  // PST/OST: also yield what libpff recovers of deleted and orphan items,
  // in a "Recovered Items" folder (--recover-deleted).
  bool pst_recover_deleted = false;
};

// Opens a source; `opts` concern only the formats they name.
Result<std::unique_ptr<MailboxSource>> OpenSource(const Location& loc,
                                                  const SourceOptions& opts = {});
Result<std::unique_ptr<MailboxSink>> OpenSink(const Location& loc, const SinkOptions& opts);

// The form a target of `kind` compares messages in for dedupe
// (MergeOptions::dedupe_form), or an empty function when it keeps MIME bytes.
std::function<Result<std::string>(const Message&)> DedupeFormFor(FormatKind kind);

}  // namespace mbx
