// \brief The .mbxz bundle: messages with their folder paths, flags and dates in
// a zstd-compressed stream, for ExMerge-style two-step export and import.
//
// File layout: one or more zstd frames, each decompressing to
//   "MBXZ" u8(version = 1)
//   records:  'M' varint(len) folder  u8 flags  i64le delivered  i64le modified
//                 varint(len) envelope-sender  varint(len) mime
//   end:      'F' u64le(number of 'M' records in this frame)
// A frame that does not end with its 'F' record was cut short (a truncated
// file); the messages before the cut are still read. Appending to a bundle
// adds frames, so merging into an existing bundle never rewrites old ones.
#pragma once

#include <memory>
#include <string>

#include "engine/mailbox.h"
#include "formats/registry.h"

namespace mbx::mbxz {

// True when the file starts with a zstd frame (magic 28 B5 2F FD).
bool HasZstdMagic(const std::string& path);

Result<std::unique_ptr<MailboxSource>> OpenSource(const std::string& path);
// Writes to PATH.tmp (existing frames copied first), fsyncs each batch as a
// frame, renames over PATH on Close().
Result<std::unique_ptr<MailboxSink>> OpenSink(const std::string& path, const SinkOptions& opts);

}  // namespace mbx::mbxz
