// \brief MIME -> PST: the properties, recipients and attachments Outlook
// shows for an RFC 5322 message ([MS-OXCMAIL] in spirit, the common subset).
#pragma once

#include <string_view>

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

// The MIME a message shows after a trip into a PST and back through our PST
// source: the form a PST target compares messages in for dedupe
// (MergeOptions::dedupe_form). Thread-safe.
Result<std::string> PstDedupeForm(const Message& msg);

}  // namespace mbx::pst
