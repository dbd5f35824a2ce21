// \brief MIME -> PST: the properties, recipients and attachments Outlook
// shows for an RFC 5322 message ([MS-OXCMAIL] in spirit, the common subset).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "engine/message.h"
#include "engine/status.h"
#include "formats/pst/mapi.h"
#include "formats/pst/messaging/store_writer.h"

namespace mbx::pst {

// Builds the MAPI form of `msg` (its MIME bytes): subject, sender, To/Cc/Bcc
// recipients, submit and delivery times, Message-ID, In-Reply-To,
// References, the original header block as PR_TRANSPORT_MESSAGE_HEADERS,
// text and HTML bodies, attachments by value (inline parts with their
// content IDs), message/rfc822 parts as embedded messages, read/flag state.
Result<messaging::OutMessage> MimeToMapi(const Message& msg);

// PST -> PST: the properties of a message read from a PST (mapi.h), its
// recipients and attachments, as stored: bodies (text, HTML, compressed RTF)
// and every property of a standard type, except those that say where the
// object lived (entry IDs, sizes: the writer sets its own). Named properties
// (0x8000 and up) travel by name (property set and id or string) and get the
// target store's ids. Embedded messages stay embedded messages, recursively.
// (Named properties of recipients are not carried.)
messaging::OutMessage MapiToOut(const MapiMessage& m);

// A folder's own properties in the writer's form (for
// StoreWriter::SetFolderProperties): container class, comment, views and
// the rest, without what the writer sets itself (name, counts, subfolder
// flag) or what says where the folder lived (entry IDs, source keys, the
// special-folder entry IDs a root or Inbox holds). Named properties by name.
std::vector<ltp::Property> FolderPropsToOut(const PropertyBag& bag,
                                            std::vector<messaging::NamedValue>* named);

// What identifies an associated (FAI) item across copies, 16 bytes: its
// PidTagSearchKey when it has one, else a digest of its message class,
// subject and properties (without location ones). The PST sink stores the
// latter as the copy's search key, so the copy has the same identity.
std::string FaiIdentity(const MapiMessage& m);

// The dedupe form of an FAI item: the identity as Message-ID and body and
// the message class and subject, so that two different views with one empty
// subject stay two, and a rerun finds the copies it wrote.
std::string FaiDedupeForm(const MapiMessage& m);

// The MIME a message shows after a trip into a PST and back through our PST
// source: the form a PST target compares messages in for dedupe
// (MergeOptions::dedupe_form); FaiDedupeForm for an associated item. Thread-safe.
Result<std::string> PstDedupeForm(const Message& msg);

}  // namespace mbx::pst
