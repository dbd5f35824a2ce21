// \brief Outlook PST/OST source over libpff: folders of the information store,
// messages copied out as MapiMessage (mapi.h) and rendered as MIME on demand.
//
// The root of the mailbox is the top of the information store (the IPM
// subtree, "Top of Personal Folders"). Special folders map by role, as
// Dovecot and imapsync's automap name them: Inbox -> "" (INBOX; its
// subfolders -> "INBOX/Sub"), Sent Items -> "Sent", Deleted Items -> "Trash",
// Drafts -> "Drafts", Junk E-mail -> "Junk"; roles come from the store's and
// root folder's entry IDs, English names as a fallback. Search folders are
// skipped. libpff is touched only from the thread calling Next() and
// ListFolders(): every message is copied out in Next(), so its ToMime() runs
// on any thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "engine/mailbox.h"
#include "engine/status.h"

namespace mbx::pst {

// True when the file starts with the PST/OST signature "!BDN".
bool HasPstMagic(const std::string& path);

struct PstSourceOptions {
  // Also yield each folder's associated (FAI) contents, after its messages,
  // marked Message::associated: views, rules, forms, navigation settings.
  bool associated = false;
  // Also yield the messages libpff recovers from unallocated space
  // (libpff_file_recover_items) and its orphans (nodes whose parent folder is
  // gone), in the folder kRecoveredFolder. Recovered folders are not offered,
  // nor items libpff cannot type; associated ones only with `associated`.
  bool recover_deleted = false;
};

// A PST folder's display name as one component of the source's folder paths:
// no '/', no control bytes, never empty, "." or "..".
std::string FolderComponent(std::string name);

// Where --recover-deleted puts what it recovers.
inline constexpr std::string_view kRecoveredFolder = "Recovered Items";

// Opens a PST or OST for reading. A file that is not a PST gives
// InvalidArgument ("'x.pst' is not a PST/OST file: ...").
Result<std::unique_ptr<MailboxSource>> OpenSource(const std::string& path,
                                                  const PstSourceOptions& opts = {});

class PropertyBag;

// A folder of a PST source with its own properties (container class,
// comment, ...), as the PST sink needs them to rebuild the folder.
struct PstFolder {
  std::string path;  // as the source's messages name it
  uint32_t nid = 0;  // its node in the file
  std::shared_ptr<const PropertyBag> props;
};

// The folders of a source opened by OpenSource(), empty ones included, in
// walk order; an empty vector for any other source.
std::vector<PstFolder> FoldersOf(MailboxSource* source);

// The properties of the folder a PST source message came from, or nullptr
// (a recovered item, or any other source's message).
std::shared_ptr<const PropertyBag> FolderPropsOf(const Message& msg);

struct PstSinkOptions {
  // Outlook's "compressible" (permutation) encoding of data blocks.
  bool compressible = false;
  // When merging into an existing PST, keep the previous file as PATH.bak.
  bool backup = true;
  // --mode replace: the existing PST's messages are shown to dedupe in
  // ScanExisting() but copied only at Close(), without those replaced
  // (StageReplacing), so the file is read twice.
  bool defer_existing = false;
};

// --mode archive with a PST source: rewrites `path` (temp file, fsync,
// rename; the previous file kept as PATH.bak) with everything our PST copy
// carries except the messages whose node ids (Message::source_token) are in
// `nids`. Ids not found are reported through `kept`.
Status RewriteWithout(const std::string& path, const std::vector<uint64_t>& nids,
                      const std::function<void(uint64_t, std::string)>& kept);

// A PST target, written by our own MS-PST writer (formats/pst/messaging) to
// a temporary file beside `path`, fsynced and renamed into place when the
// sink is closed: readers never see a partial file. An existing PST (any
// libpff reads, ANSI too) is rewritten with everything it held plus the
// merged messages; the previous file is kept as PATH.bak unless !backup.
Result<std::unique_ptr<MailboxSink>> OpenSink(const std::string& path,
                                              const PstSinkOptions& opts = {});

}  // namespace mbx::pst
