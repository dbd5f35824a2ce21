// \brief Outlook PST/OST source: folders of the information store, messages
// copied out as MapiMessage (mapi.h) and rendered as MIME on demand.
//
// Two readers: our own NDB/LTP reader (native_store.h) for Unicode PSTs and
// OSTs, 4 KiB-page ones included, and libpff for ANSI files, deleted-item
// recovery and any message ours cannot read (PstReader). Both give the same
// folders, messages and properties (tests/pst_roundtrip_test.cc).
//
// The root of the mailbox is the top of the information store (the IPM
// subtree, "Top of Personal Folders"). Special folders map by role, as
// Dovecot and imapsync's automap name them: Inbox -> "" (INBOX; its
// subfolders -> "INBOX/Sub"), Sent Items -> "Sent", Deleted Items -> "Trash",
// Drafts -> "Drafts", Junk E-mail -> "Junk"; roles come from the store's and
// root folder's entry IDs, English names as a fallback. Search folders are
// skipped. libpff is touched only from the thread calling Next() and
// ListFolders() (read-ahead helpers open handles of their own): every message
// is copied out in Next(), so its ToMime() runs on any thread.
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
// True when `path` ends in .pst or .ost, in any case.
bool HasPstSuffix(std::string_view path);

// Which reader a PST source reads through.
enum class PstReader {
  // Our own NDB/LTP reader (formats/pst/native_store.h) for Unicode PSTs and
  // OSTs, 4 KiB-page ones included; libpff for the rest, and for each message
  // ours cannot read. MBXMERGE_PST_READER=libpff in the environment makes it
  // kLibpff.
  kAuto,
  kLibpff,  // libpff alone
  kNative,  // our own reader alone: an error where it cannot open the file
};

struct PstSourceOptions {
  // Also yield each folder's associated (FAI) contents, after its messages,
  // marked Message::associated: views, rules, forms, navigation settings.
  bool associated = false;
  // Also yield the messages libpff recovers from unallocated space
  // (libpff_file_recover_items) and its orphans (nodes whose parent folder is
  // gone), in the folder kRecoveredFolder. Recovered folders are not offered,
  // nor items libpff cannot type; associated ones only with `associated`.
  bool recover_deleted = false;
  // --recover-deleted always reads through libpff.
  PstReader reader = PstReader::kAuto;
};

// True when a source opened by OpenSource() reads through our own reader.
bool ReadsNatively(MailboxSource* source);

// A PST folder's display name as one component of the source's folder paths:
// no '/', no control bytes, never empty, "." or "..".
std::string FolderComponent(std::string name);

// Store folders (mbx::kStoreFolderPrefix) that every store has, which the
// source names by role and the sink maps to its own: the top of the IPM
// subtree ("Top of Personal Folders", an OST's "IPM_SUBTREE"), Common Views
// (PidTagCommonViewsEntryId) and the search root (PidTagFinderEntryId).
// Other store folders keep their names ("/Shortcuts").
inline constexpr std::string_view kStoreIpmSubtree = "IPM_SUBTREE";
inline constexpr std::string_view kStoreCommonViews = "IPM_COMMON_VIEWS";
inline constexpr std::string_view kStoreSearchRoot = "Search Root";

// Where --recover-deleted puts what it recovers.
inline constexpr std::string_view kRecoveredFolder = "Recovered Items";

// Opens a PST or OST for reading. A file that is not a PST gives
// InvalidArgument ("'x.pst' is not a PST/OST file: ...").
Result<std::unique_ptr<MailboxSource>> OpenSource(const std::string& path,
                                                  const PstSourceOptions& opts = {});

// A folder of PST/OST files (ExMerge's one file per mailbox) as one source:
// the files in name order, one open at a time, each file's folders under a
// folder named after it ("alice.pst": its Inbox is "alice/Inbox", its Sent
// Items "alice/Sent"). A file that is not a PST, or cannot be opened, is one
// failed item naming it, and the other files are still read. Subdirectories
// are not read. InvalidArgument when `dir` holds no PST/OST file.
Result<std::unique_ptr<MailboxSource>> OpenFolderSource(const std::string& dir,
                                                        const PstSourceOptions& opts = {});
// True for a directory that holds PST/OST files and nothing else (no
// subdirectories): what an unprefixed source location of that kind means.
bool IsPstFolder(const std::string& dir);

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
