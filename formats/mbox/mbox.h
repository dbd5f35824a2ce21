// \brief mbox (mboxrd) and mboxdir (one mbox file per folder) backends.
//
// mbox: messages separated by "From <envelope> <asctime date>" lines; a From_
// line counts only at the start of the file or after an empty line, and the
// empty line before it belongs to the separator, not to the message. mboxrd
// quoting: a body line matching ^>*From gains one '>' on write, loses one on
// read. Flags live in Status: (R seen, O old) and X-Status: (A answered,
// F flagged, T draft, D deleted); kFlagForwarded has no mbox form.
//
// mboxdir: a directory holding one mbox file per folder. What readpst
// (libpst 0.6) actually writes, checked on the shared sample PST/OST files:
//   readpst -o DIR x.pst      flat: "Inbox.mbox", "Sent Items.mbox", ... (every
//                             folder, nested ones too, at the top level;
//                             appointments in "X.calendar", contacts in
//                             "X.contacts": not mbox, ignored)
//   readpst -r [-D] -o DIR    recursive: "<Root>/Inbox/mbox",
//                             "<Root>/Inbox/Projects/mbox" (a file named "mbox"
//                             inside each folder's directory; "calendar",
//                             "contacts", "journal" beside it, ignored)
//   readpst -u                as -r plus ".type" and ".size" files (ignored)
// This backend reads both: a file "P/N.mbox" is folder "P/N", a file "P/mbox"
// is folder "P" (so a top-level "mbox" file is the root folder). Both may
// exist for one folder; they are read in path order. The sink writes folder
// "A/B" to "A/B.mbox" (root: "mbox") unless a file for that folder already
// exists, which it then appends to. Folder name components are escaped as %XX
// for '%', '/', control bytes and a leading '.', so "..", "." and hidden names
// cannot escape or hide; reading decodes %XX.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "engine/mailbox.h"
#include "formats/registry.h"

namespace mbx::mbox {

// One message as found in an mbox file.
struct RawEntry {
  std::string_view from_line;  // the "From ..." separator line without its line end
  std::string_view stored;     // the message as stored (still mboxrd-quoted), without the
                               // separator's trailing blank line
  size_t offset = 0;           // byte offset of the From_ line in the file
};

// Splits an mbox image into messages. A From_ line counts only at the start
// of the file or after an empty line. Bytes before the first From_ line are
// reported through `junk_prefix` (nullptr: ignored).
std::vector<RawEntry> Split(std::string_view file, std::string_view* junk_prefix = nullptr);

// mboxrd: ">*From " at a line start gains one '>' on write, loses one on read.
std::string Quote(std::string_view message);
std::string Unquote(std::string_view stored);

// The envelope sender and the date of a From_ line ("From a@b Tue Jul  1 08:52:37 2003").
std::pair<std::string, int64_t> ParseFromLine(std::string_view from_line);

// Flags from the message's Status: and X-Status: headers.
MessageFlags FlagsFromHeaders(std::string_view headers);
// The Status: and X-Status: values that express `flags` ("RO", "AF"); empty when none.
std::pair<std::string, std::string> StatusValues(MessageFlags flags);

// `path` is an mbox file. The sink appends under an fcntl lock plus a dotlock
// and, on failure, truncates back to the length of the last good Flush().
Result<std::unique_ptr<MailboxSource>> OpenSource(const std::string& path);
Result<std::unique_ptr<MailboxSink>> OpenSink(const std::string& path, const SinkOptions& opts);

// An mbox source whose messages and folder carry `folder` instead of "" (mboxdir
// uses one per file).
Result<std::unique_ptr<MailboxSource>> OpenSource(const std::string& path, std::string folder);

// The mbox sink with its Flush() split in two, so that mboxdir can make several
// files durable together or roll all of them back.
class FileSink : public MailboxSink {
 public:
  // Writes and fsyncs the staged data. On failure the file is already
  // truncated back to the last good length.
  virtual Status Prepare() = 0;
  // Makes the Prepare()d data the new last good state.
  virtual void Commit() = 0;
  // Rollback() (inherited) also undoes a Prepare() not yet committed.
};
Result<std::unique_ptr<FileSink>> OpenFileSink(const std::string& path, const SinkOptions& opts);

// `dir` holds one mbox per folder: "Inbox.mbox", "Inbox/Projects.mbox", or
// readpst -r's "Inbox/mbox"; a top-level "mbox" file, if any, is the root folder.
Result<std::unique_ptr<MailboxSource>> OpenDirSource(const std::string& dir);
Result<std::unique_ptr<MailboxSink>> OpenDirSink(const std::string& dir, const SinkOptions& opts);

// Folder path <-> mbox file path relative to the mboxdir ("" <-> "mbox",
// "A/B" <-> "A/B.mbox"), escaping each component (see above).
std::string FolderToFile(std::string_view folder);
std::string EscapeComponent(std::string_view component);
std::string UnescapeComponent(std::string_view name);

}  // namespace mbx::mbox
