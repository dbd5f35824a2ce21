// \brief mbox (mboxrd) and mboxdir (one mbox file per folder) backends.
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

// `dir` holds one mbox per folder: "Inbox.mbox", "Inbox/Projects.mbox" (readpst's
// layout); a top-level "mbox" file, if any, is the root folder.
Result<std::unique_ptr<MailboxSource>> OpenDirSource(const std::string& dir);
Result<std::unique_ptr<MailboxSink>> OpenDirSink(const std::string& dir, const SinkOptions& opts);

}  // namespace mbx::mbox
