// \brief Plain C++ MAPI objects: a message's properties, recipients and
// attachments, copied out of the PST so they outlive the libpff handles.
//
// The PST reader fills these on its reader thread; MIME rendering
// (mapi_to_mime.h) runs later on any thread and never touches libpff.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "formats/pst/ltp/types.h"

namespace mbx {
struct Message;
}

namespace mbx::pst {

// MAPI property types ([MS-OXCDATA] 2.11.1) that the renderer looks at.
enum PropType : uint16_t {
  kPtInt16 = 0x0002,
  kPtInt32 = 0x0003,
  kPtBoolean = 0x000b,
  kPtInt64 = 0x0014,
  kPtString8 = 0x001e,  // stored as UTF-8 here (converted from the file's code page)
  kPtUnicode = 0x001f,  // stored as UTF-8 here
  kPtSysTime = 0x0040,  // FILETIME: 100 ns ticks since 1601-01-01 UTC
  kPtBinary = 0x0102,
  kPtMvBinary = 0x1102,
};

// Property identifiers (the upper 16 bits of a tag) used by the renderer.
enum PropId : uint16_t {
  kPidImportance = 0x0017,
  kPidSearchKey = 0x300B,
  kPidMessageClass = 0x001a,
  kPidSensitivity = 0x0036,
  kPidSubject = 0x0037,
  kPidClientSubmitTime = 0x0039,
  kPidSentRepresentingName = 0x0042,
  kPidSentRepresentingAddrType = 0x0064,
  kPidSentRepresentingEmail = 0x0065,
  kPidTransportHeaders = 0x007d,
  kPidRecipientType = 0x0c15,
  kPidSenderName = 0x0c1a,
  kPidSenderAddrType = 0x0c1e,
  kPidSenderEmail = 0x0c1f,
  kPidDeliveryTime = 0x0e06,
  kPidMessageFlags = 0x0e07,
  kPidMessageSize = 0x0e08,
  kPidBody = 0x1000,
  kPidRtfCompressed = 0x1009,
  kPidHtml = 0x1013,
  kPidInternetMessageId = 0x1035,
  kPidReferences = 0x1039,
  kPidInReplyTo = 0x1042,
  kPidFlagStatus = 0x1090,
  kPidDisplayName = 0x3001,
  kPidAddrType = 0x3002,
  kPidEmailAddress = 0x3003,
  kPidCreationTime = 0x3007,
  kPidLastModificationTime = 0x3008,
  kPidAttachDataBin = 0x3701,
  kPidAttachFilename = 0x3704,
  kPidAttachMethod = 0x3705,
  kPidAttachLongFilename = 0x3707,
  kPidAttachMimeTag = 0x370e,
  kPidAttachContentId = 0x3712,
  kPidAttachContentLocation = 0x3713,
  kPidAttachFlags = 0x3714,
  kPidSmtpAddress = 0x39fe,
  kPidInternetCodepage = 0x3fde,
  kPidSenderSmtpAddress = 0x5d01,
  kPidSentRepresentingSmtpAddress = 0x5d02,
  kPidAttachmentHidden = 0x7ffe,
};

// Message flags ([MS-OXCMSG] PidTagMessageFlags).
inline constexpr uint32_t kMsgFlagRead = 0x0001;
inline constexpr uint32_t kMsgFlagUnsent = 0x0008;

struct PropValue {
  uint16_t type = 0;
  // Strings: UTF-8. Integers, booleans, times: the little-endian bytes as
  // stored. Binary: the bytes. Multi-valued binary: `values`.
  std::string data;
  std::vector<std::string> values;
  // For a named property (id 0x8000 and up): its name in the source's
  // name-to-id map, which gives the id its meaning.
  std::optional<ltp::PropertyName> name;
};

// The properties of one MAPI object, by property id (named properties, ids
// 0x8000 and up, are kept under the id libpff reports).
//
// A vector sorted by id, not a map: a message's bags hold a few dozen
// properties each, read in id order, and a node per property made allocating
// and freeing them a fifth of a PST -> mbox conversion. Set() may move the
// values: pointers from Find() and views from Bytes() last until the next Set().
class PropertyBag {
 public:
  using Entry = std::pair<uint16_t, PropValue>;

  void Set(uint16_t id, PropValue v) { Slot(id) = std::move(v); }
  void SetString(uint16_t id, std::string utf8) {
    Slot(id) = PropValue{kPtUnicode, std::move(utf8), {}};
  }
  void SetInt32(uint16_t id, int32_t v);
  void SetFileTime(uint16_t id, uint64_t filetime);
  void SetBinary(uint16_t id, std::string bytes) {
    Slot(id) = PropValue{kPtBinary, std::move(bytes), {}};
  }

  const PropValue* Find(uint16_t id) const;
  bool Has(uint16_t id) const { return Find(id) != nullptr; }
  // A string property (PT_STRING8/PT_UNICODE) as UTF-8; nullopt if absent or not a string.
  std::optional<std::string> String(uint16_t id) const;
  // A string, or "" when absent.
  std::string StringOr(uint16_t id) const { return String(id).value_or(""); }
  // An integer or boolean property; nullopt if absent.
  std::optional<int64_t> Int(uint16_t id) const;
  // A PT_SYSTIME property as Unix seconds; nullopt if absent or zero.
  std::optional<int64_t> UnixTime(uint16_t id) const;
  // The bytes of any property (binary, string, or raw integer bytes).
  std::optional<std::string_view> Bytes(uint16_t id) const;

  // Every property, in id order.
  const std::vector<Entry>& all() const { return props_; }

 private:
  // The value of `id`, inserted empty in its place when absent.
  PropValue& Slot(uint16_t id);
  // The order of props_, for binary search by id.
  static bool IdBefore(const Entry& e, uint16_t id);

  std::vector<Entry> props_;
};

struct MapiMessage;

struct MapiAttachment {
  PropertyBag props;
  std::string data;                       // by-value contents
  std::unique_ptr<MapiMessage> embedded;  // an embedded message (PR_ATTACH_METHOD 5)
  // The columns of the attachment table it was listed in (tags, ids below
  // 0x8000), when known: an OST's are wider than Outlook's PST template, and
  // a copy keeps them.
  std::vector<uint32_t> table_columns;
};

struct MapiMessage {
  PropertyBag props;
  std::vector<PropertyBag> recipients;  // one bag per row of the recipient table
  std::vector<MapiAttachment> attachments;
};

// The MAPI form of a message read from a PST/OST by our source (pst.h), or
// nullptr for any other message.
const MapiMessage* MapiOf(const mbx::Message& msg);

// FILETIME (100 ns since 1601) -> Unix seconds.
int64_t FileTimeToUnix(uint64_t filetime);
// Unix seconds -> FILETIME.
uint64_t UnixToFileTime(int64_t unix_time);

}  // namespace mbx::pst
