// \brief Maildir++ backend: cur/ new/ tmp/, subfolders as ".Sub.Folder".
#pragma once

#include <memory>
#include <string>
#include <string_view>

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
std::string DirNameForFolder(std::string_view folder);
std::string FolderForDirName(std::string_view dirname);

// True when `dir` has cur/, new/ and tmp/.
bool IsMaildir(const std::string& dir);

Result<std::unique_ptr<MailboxSource>> OpenSource(const std::string& dir);
// Creates the Maildir (and subfolders on demand) when missing. Writes go
// tmp/ -> fsync -> rename into new/ (or cur/ when the message has flags).
Result<std::unique_ptr<MailboxSink>> OpenSink(const std::string& dir, const SinkOptions& opts);

}  // namespace mbx::maildir
