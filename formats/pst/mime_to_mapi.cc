#include "formats/pst/mime_to_mapi.h"

#include <gmime/gmime.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>

#include "engine/fingerprint.h"
#include "formats/mime/mime.h"
#include "formats/pst/ltp/reader.h"
#include "formats/pst/mapi.h"
#include "formats/pst/mapi_to_mime.h"

namespace mbx::pst {
namespace {

using messaging::BinaryProp;
using messaging::BoolProp;
using messaging::Int32Prop;
using messaging::StringProp;

// The first 16 bytes of the SHA-256 of `bytes`: the keys this file derives
// from content (a search key made from MIME, an FAI item's identity).
std::string Sha256Prefix(std::string_view bytes) {
  const Digest d = Sha256Of(bytes);
  return std::string(reinterpret_cast<const char*>(d.data()), 16);
}
using messaging::TimeProp;

struct GUnref {
  void operator()(void* p) const {
    if (p) g_object_unref(p);
  }
};
template <typename T>
using GPtr = std::unique_ptr<T, GUnref>;

void InitGMime() {
  static std::once_flag once;
  std::call_once(once, [] { g_mime_init(); });
}

Result<messaging::OutMessage> MimeToMapiAt(const Message& msg, int depth);

struct Address {
  std::string name;
  std::string email;
};

void CollectAddresses(InternetAddressList* list, std::vector<Address>* out) {
  if (list == nullptr) return;
  const int n = internet_address_list_length(list);
  for (int i = 0; i < n; ++i) {
    InternetAddress* a = internet_address_list_get_address(list, i);
    if (INTERNET_ADDRESS_IS_GROUP(a)) {
      CollectAddresses(internet_address_group_get_members(INTERNET_ADDRESS_GROUP(a)), out);
      continue;
    }
    const char* addr = internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(a));
    const char* name = internet_address_get_name(a);
    Address x;
    x.email = addr ? addr : "";
    x.name = name && *name ? mime::DecodeHeader(name) : x.email;
    if (!x.email.empty() || !x.name.empty()) out->push_back(std::move(x));
  }
}

std::string StreamBytes(GMimeObject* obj, bool decode_content) {
  GPtr<GMimeStream> mem(g_mime_stream_mem_new());
  if (decode_content && GMIME_IS_PART(obj)) {
    GMimeDataWrapper* content = g_mime_part_get_content(GMIME_PART(obj));
    if (content != nullptr) g_mime_data_wrapper_write_to_stream(content, mem.get());
  } else {
    g_mime_object_write_to_stream(obj, nullptr, mem.get());
  }
  GByteArray* bytes = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(mem.get()));
  return bytes ? std::string(reinterpret_cast<const char*>(bytes->data), bytes->len)
               : std::string();
}

struct Walk {
  std::string text;
  std::string html;
  bool have_text = false, have_html = false;
  int msg_depth = 0;  // how deep this message is embedded
  std::vector<messaging::OutAttachment> attachments;
};

void AddAttachment(GMimeObject* obj, std::string data, std::string name, Walk* w) {
  messaging::OutAttachment a;
  GMimeContentType* ct = g_mime_object_get_content_type(obj);
  std::string mime_type = "application/octet-stream";
  if (ct != nullptr) {
    char* s = g_mime_content_type_get_mime_type(ct);
    if (s) {
      mime_type = s;
      g_free(s);
    }
  }
  if (name.empty()) name = mime_type == "message/rfc822" ? "message.eml" : "attachment";
  a.props.push_back(StringProp(kPidAttachLongFilename, name));
  a.props.push_back(StringProp(kPidAttachFilename, name));
  a.props.push_back(StringProp(kPidAttachMimeTag, mime_type));
  a.props.push_back(StringProp(kPidDisplayName, name));
  if (const char* cid = g_mime_object_get_content_id(obj); cid && *cid) {
    a.props.push_back(StringProp(kPidAttachContentId, cid));
  }
  a.data = std::move(data);
  w->attachments.push_back(std::move(a));
}

// LF -> CRLF, leaving CRLF alone.
std::string Crlf(std::string_view s) {
  std::string out;
  out.reserve(s.size() + s.size() / 40);
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\n' && (i == 0 || s[i - 1] != '\r')) out.push_back('\r');
    out.push_back(s[i]);
  }
  return out;
}

// 7bit, 8bit, quoted-printable or none: encodings whose line ends are lines.
bool LineEncoded(GMimePart* part) {
  switch (g_mime_part_get_content_encoding(part)) {
    case GMIME_CONTENT_ENCODING_DEFAULT:
    case GMIME_CONTENT_ENCODING_7BIT:
    case GMIME_CONTENT_ENCODING_8BIT:
    case GMIME_CONTENT_ENCODING_QUOTEDPRINTABLE:
      return true;
    default:
      return false;
  }
}

// False for the charsets whose line break is not the byte LF (UTF-16, UTF-32,
// UCS-2/4): inserting a CR byte there would break the text.
bool AsciiLineBreaks(GMimeContentType* ct) {
  const char* charset = g_mime_content_type_get_parameter(ct, "charset");
  if (charset == nullptr) return true;
  for (const char* wide :
       {"utf-16", "utf16", "utf-32", "utf32", "ucs-2", "ucs2", "ucs-4", "ucs4"}) {
    if (g_ascii_strncasecmp(charset, wide, std::strlen(wide)) == 0) return false;
  }
  return true;
}

void WalkPart(GMimeObject* obj, int depth, Walk* w) {
  if (depth > 64 || obj == nullptr) return;
  if (GMIME_IS_MULTIPART(obj)) {
    GMimeMultipart* mp = GMIME_MULTIPART(obj);
    const int n = g_mime_multipart_get_count(mp);
    for (int i = 0; i < n; ++i) WalkPart(g_mime_multipart_get_part(mp, i), depth + 1, w);
    return;
  }
  if (GMIME_IS_MESSAGE_PART(obj)) {
    // message/rfc822: an embedded message, as Outlook stores a forwarded one.
    GMimeMessage* inner = g_mime_message_part_get_message(GMIME_MESSAGE_PART(obj));
    Message embedded;
    embedded.mime = inner ? StreamBytes(GMIME_OBJECT(inner), false) : std::string();
    auto out = MimeToMapiAt(embedded, w->msg_depth + 1);
    if (out.ok()) {
      messaging::OutAttachment a;
      std::string subject;
      for (const auto& p : out->props)
        if (p.id == kPidSubject) subject = disk::Utf16leToUtf8(p.value);
      a.props.push_back(StringProp(kPidDisplayName, subject));
      a.props.push_back(StringProp(kPidAttachMimeTag, "message/rfc822"));
      a.embedded = std::make_shared<const messaging::OutMessage>(std::move(*out));
      w->attachments.push_back(std::move(a));
    } else {
      AddAttachment(obj, std::move(embedded.mime), "message.eml", w);
    }
    return;
  }
  if (!GMIME_IS_PART(obj)) return;
  GMimePart* part = GMIME_PART(obj);
  const char* fname = g_mime_part_get_filename(part);
  std::string name = fname && *fname ? mime::DecodeHeader(fname) : std::string();
  const char* disposition = g_mime_object_get_disposition(obj);
  const bool is_attachment = disposition && g_ascii_strcasecmp(disposition, "attachment") == 0;
  GMimeContentType* ct = g_mime_object_get_content_type(obj);
  const bool text_plain = ct && g_mime_content_type_is_type(ct, "text", "plain");
  const bool text_html = ct && g_mime_content_type_is_type(ct, "text", "html");
  if (!is_attachment && name.empty() && GMIME_IS_TEXT_PART(obj) && (text_plain || text_html)) {
    char* t = g_mime_text_part_get_text(GMIME_TEXT_PART(obj));
    std::string s = t ? t : "";
    g_free(t);
    if (text_plain && !w->have_text) {
      w->text = std::move(s);
      w->have_text = true;
      return;
    }
    if (text_html && !w->have_html) {
      w->html = std::move(s);
      w->have_html = true;
      return;
    }
  }
  std::string data = StreamBytes(obj, true);
  if (ct != nullptr && g_mime_content_type_is_type(ct, "text", "*") && LineEncoded(part) &&
      AsciiLineBreaks(ct)) {
    // RFC 2046 4.1.1: text breaks lines with CRLF. A line-based transfer
    // encoding decodes to the transport's line ends instead, so an mbox's LF
    // copy and an EML's CRLF copy would store different attachments.
    data = Crlf(data);
  }
  AddAttachment(obj, std::move(data), std::move(name), w);
}

std::string Header(std::string_view headers, std::string_view name) {
  auto v = mime::FindField(headers, name);
  return v ? mime::DecodeHeader(mime::Unfold(*v)) : std::string();
}

std::string RawHeader(std::string_view headers, std::string_view name) {
  auto v = mime::FindField(headers, name);
  if (!v) return {};
  std::string s = mime::Unfold(*v);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.pop_back();
  return s;
}

std::string Join(const std::vector<Address>& list) {
  std::string out;
  for (const auto& a : list) {
    if (!out.empty()) out += "; ";
    out += a.name;
  }
  return out;
}

// GMime keeps one object per header field: a header block of millions of
// fields costs it gigabytes and minutes. Only the address and MIME fields are
// read from its parse (the rest comes from our own scanner over `headers`), so
// a large block is cut down to those before parsing.
constexpr size_t kParseWholeHeaderBelow = 1 << 20;

bool GMimeNeedsField(std::string_view name) {
  auto is = [&](std::string_view want) {
    return name.size() == want.size() &&
           g_ascii_strncasecmp(name.data(), want.data(), want.size()) == 0;
  };
  return is("From") || is("Sender") || is("Reply-To") || is("To") || is("Cc") || is("Bcc") ||
         is("MIME-Version") ||
         (name.size() > 8 && g_ascii_strncasecmp(name.data(), "Content-", 8) == 0);
}

// `mime` with only the fields GMime needs when its header block is large, else "".
std::string TrimmedForParse(std::string_view mime, std::string_view headers) {
  if (headers.size() < kParseWholeHeaderBelow) return {};
  std::string out;
  mime::FieldScanner scan(headers);
  mime::Field f;
  while (scan.Next(&f)) {
    if (!GMimeNeedsField(f.name)) continue;
    out.append(f.name);
    out += ": ";
    out.append(f.value);
    out += '\n';
  }
  out += '\n';
  out.append(mime.substr(std::min(mime.size(), mime::BodyOffset(mime))));
  return out;
}

}  // namespace

Result<messaging::OutMessage> MimeToMapi(const Message& msg) { return MimeToMapiAt(msg, 0); }

namespace {

// PR_SEARCH_KEY of a message made from MIME: the one it had in a PST before
// (our X-Mbxmerge-Search-Key header), else derived from its bytes, so that the
// same message always gets the same key and --dedupe search-key finds it again.
std::string SearchKeyFor(std::string_view headers, std::string_view mime) {
  std::string hex;
  for (char c : mime::Unfold(RawHeader(headers, kSearchKeyHeader))) {
    if (std::isxdigit(static_cast<unsigned char>(c))) hex += c;
  }
  std::string key;
  if (!hex.empty() && hex.size() % 2 == 0 && hex.size() <= 512) {
    for (size_t i = 0; i < hex.size(); i += 2) {
      key += static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16));
    }
    return key;
  }
  return Sha256Prefix(mime);
}

Result<messaging::OutMessage> MimeToMapiAt(const Message& msg, int depth) {
  if (depth > 16) return Status::InvalidArgument("message/rfc822 parts nested too deep");
  MBX_ASSIGN_OR_RETURN(std::string_view mime, msg.Mime());
  InitGMime();
  const std::string_view headers = mime::HeaderBlock(mime);
  const std::string trimmed = TrimmedForParse(mime, headers);
  const std::string_view parse = trimmed.empty() ? mime : std::string_view(trimmed);
  GPtr<GMimeStream> stream(g_mime_stream_mem_new_with_buffer(parse.data(), parse.size()));
  GPtr<GMimeParser> parser(g_mime_parser_new_with_stream(stream.get()));
  g_mime_parser_set_format(parser.get(), GMIME_FORMAT_MESSAGE);
  GPtr<GMimeMessage> m(g_mime_parser_construct_message(parser.get(), nullptr));
  messaging::OutMessage out;
  if (!m) {
    // Not MIME at all (no header block, binary junk): keep every byte as the
    // body, so that nothing is lost and the message still reads back.
    const std::string subject = Header(headers, "Subject");
    out.props = {StringProp(kPidMessageClass, "IPM.Note"), StringProp(kPidSubject, subject),
                 StringProp(kPidBody, std::string(mime)),
                 Int32Prop(kPidMessageFlags, (msg.flags & kFlagSeen) ? kMsgFlagRead : 0),
                 BinaryProp(kPidSearchKey, SearchKeyFor(headers, mime))};
    if (!headers.empty())
      out.props.push_back(StringProp(kPidTransportHeaders, Crlf(headers) + "\r\n"));
    if (msg.container_delivered != 0)
      out.props.push_back(TimeProp(kPidDeliveryTime, UnixToFileTime(msg.container_delivered)));
    return out;
  }

  auto& p = out.props;
  p.push_back(StringProp(kPidMessageClass, "IPM.Note"));
  const std::string subject = Header(headers, "Subject");
  p.push_back(StringProp(kPidSubject, subject));
  p.push_back(StringProp(0x0E1D, subject));  // PidTagNormalizedSubject
  p.push_back(StringProp(0x0070, subject));  // PidTagConversationTopic

  std::vector<Address> from, to, cc, bcc;
  CollectAddresses(g_mime_message_get_from(m.get()), &from);
  CollectAddresses(g_mime_message_get_addresses(m.get(), GMIME_ADDRESS_TYPE_TO), &to);
  CollectAddresses(g_mime_message_get_addresses(m.get(), GMIME_ADDRESS_TYPE_CC), &cc);
  CollectAddresses(g_mime_message_get_addresses(m.get(), GMIME_ADDRESS_TYPE_BCC), &bcc);
  if (!from.empty()) {
    const auto& f = from[0];
    for (uint16_t id : {kPidSenderName, kPidSentRepresentingName})
      p.push_back(StringProp(id, f.name));
    for (uint16_t id : {kPidSenderEmail, kPidSentRepresentingEmail, kPidSenderSmtpAddress,
                        kPidSentRepresentingSmtpAddress})
      p.push_back(StringProp(id, f.email));
    for (uint16_t id : {kPidSenderAddrType, kPidSentRepresentingAddrType})
      p.push_back(StringProp(id, "SMTP"));
  }
  p.push_back(StringProp(0x0E04, Join(to)));   // PidTagDisplayTo
  p.push_back(StringProp(0x0E03, Join(cc)));   // PidTagDisplayCc
  p.push_back(StringProp(0x0E02, Join(bcc)));  // PidTagDisplayBcc
  auto add_recipients = [&](const std::vector<Address>& list, uint32_t type) {
    for (const auto& a : list) {
      out.recipients.push_back(
          {Int32Prop(kPidRecipientType, type), StringProp(kPidDisplayName, a.name),
           StringProp(kPidEmailAddress, a.email), StringProp(kPidAddrType, "SMTP"),
           StringProp(kPidSmtpAddress, a.email), Int32Prop(0x0FFE, 6),  // MAPI_MAILUSER
           Int32Prop(0x3900, 0), BoolProp(0x0E0F, true), BoolProp(0x3A40, false),
           StringProp(0x39FF, a.name)});
    }
  };
  add_recipients(to, 1);
  add_recipients(cc, 2);
  add_recipients(bcc, 3);

  const auto date = mime::ParseDate(RawHeader(headers, "Date"));
  std::optional<int64_t> delivered = mime::FirstReceivedDate(headers);
  if (!delivered && msg.container_delivered != 0) delivered = msg.container_delivered;
  if (!delivered) delivered = date;
  if (date) p.push_back(TimeProp(kPidClientSubmitTime, UnixToFileTime(*date)));
  if (delivered) p.push_back(TimeProp(kPidDeliveryTime, UnixToFileTime(*delivered)));
  if (const auto v = RawHeader(headers, "Message-ID"); !v.empty())
    p.push_back(StringProp(kPidInternetMessageId, v));
  if (const auto v = RawHeader(headers, "In-Reply-To"); !v.empty())
    p.push_back(StringProp(kPidInReplyTo, v));
  if (const auto v = RawHeader(headers, "References"); !v.empty())
    p.push_back(StringProp(kPidReferences, v));
  p.push_back(StringProp(kPidTransportHeaders, Crlf(headers) + "\r\n"));
  p.push_back(BinaryProp(kPidSearchKey, SearchKeyFor(headers, mime)));

  // Importance ([MS-OXCMAIL] 2.2.3.2.3): Importance or X-Priority.
  uint32_t importance = 1;
  const std::string imp = mime::CaseFold(RawHeader(headers, "Importance"));
  const std::string xp = RawHeader(headers, "X-Priority");
  if (imp == "high" || (!xp.empty() && (xp[0] == '1' || xp[0] == '2'))) importance = 2;
  if (imp == "low" || (!xp.empty() && (xp[0] == '4' || xp[0] == '5'))) importance = 0;
  p.push_back(Int32Prop(kPidImportance, importance));
  const std::string sens = mime::CaseFold(RawHeader(headers, "Sensitivity"));
  p.push_back(Int32Prop(kPidSensitivity, sens == "personal"               ? 1
                                         : sens == "private"              ? 2
                                         : sens == "company-confidential" ? 3
                                                                          : 0));

  Walk w;
  w.msg_depth = depth;
  WalkPart(g_mime_message_get_mime_part(m.get()), 0, &w);
  if (w.have_text) p.push_back(StringProp(kPidBody, Crlf(w.text)));
  if (w.have_html) {
    p.push_back(BinaryProp(kPidHtml, w.html));
    p.push_back(Int32Prop(kPidInternetCodepage, 65001));
  }
  out.attachments = std::move(w.attachments);

  uint32_t flags = 0;
  if (msg.flags & kFlagSeen) flags |= kMsgFlagRead;
  if (msg.flags & kFlagDraft) flags |= kMsgFlagUnsent;
  if (!out.attachments.empty()) flags |= 0x10;  // MSGFLAG_HASATTACH
  p.push_back(Int32Prop(kPidMessageFlags, flags));
  if (msg.flags & kFlagFlagged) p.push_back(Int32Prop(kPidFlagStatus, 2));
  // Answered / forwarded: PidTagLastVerbExecuted (102 reply, 104 forward).
  if (msg.flags & kFlagAnswered)
    p.push_back(Int32Prop(0x1081, 102));
  else if (msg.flags & kFlagForwarded)
    p.push_back(Int32Prop(0x1081, 104));
  return out;
}

}  // namespace

namespace {

// Properties that describe where an object lived or that the writer derives.
bool IsLocationOrDerived(uint16_t id) {
  switch (id) {
    case 0x0E08:  // PidTagMessageSize
    case 0x0E09:  // PidTagParentEntryId
    case 0x0E12:  // PidTagMessageRecipients (object)
    case 0x0E13:  // PidTagMessageAttachments (object)
    case 0x0E20:  // PidTagAttachSize
    case 0x0FF9:  // PidTagRecordKey
    case 0x0FFF:  // PidTagEntryId
    case 0x3701:  // PidTagAttachDataBinary: set from the attachment's bytes
    case 0x67F2:
    case 0x67F3:  // table row id and version
      return true;
    default:
      return false;
  }
}

// Recipient columns the writer sets. A recipient's entry ID, record and
// search keys name its address-book entry, not a place in the store: kept.
bool IsRecipientDerived(uint16_t id) {
  return id == 0x3000 /* PidTagRowid */ || id == 0x67F2 || id == 0x67F3;
}

// One value in the writer's form; nullopt for a type the writer does not carry.
std::optional<ltp::Property> ConvertValue(uint16_t id, const PropValue& v) {
  if (v.type == kPtUnicode || v.type == kPtString8) return StringProp(id, v.data);
  if (v.type == kPtMvBinary)
    return ltp::Property{id, disk::kPtypMultipleBinary,
                         ltp::EncodeMulti(disk::kPtypMultipleBinary, v.values)};
  if (const size_t fixed = disk::FixedSizeOf(v.type); fixed != 0) {
    if (v.data.size() == fixed) return ltp::Property{id, v.type, v.data};
    return std::nullopt;
  }
  if (v.type == disk::kPtypBinary) return BinaryProp(id, v.data);
  if (v.type == disk::kPtypMultipleString && v.data.size() >= 4 &&
      4 + 4 * uint64_t{disk::Get32(reinterpret_cast<const uint8_t*>(v.data.data()))} <=
          v.data.size())
    return ltp::Property{id, v.type, v.data};  // count, offsets, UTF-16 values: as stored
  if (v.type == disk::kPtypMultipleString8 && v.data.size() >= 4) {
    // 8-bit strings (an ANSI store's): each value as text, stored as UTF-16.
    auto raw = ltp::DecodeMultiValue(v.type, v.data);
    if (!raw.ok()) return std::nullopt;
    std::vector<std::string> values;
    for (std::string_view value : *raw) {
      while (!value.empty() && value.back() == '\0') value.remove_suffix(1);
      std::string text;
      AppendCodepage(&text, value, 1252);  // the code page libpff assumes, as for 8-bit strings
      values.push_back(disk::Utf8ToUtf16le(text));
    }
    return ltp::Property{id, disk::kPtypMultipleString,
                         ltp::EncodeMulti(disk::kPtypMultipleString, values)};
  }
  const size_t element = (v.type & 0x1000) != 0 ? disk::FixedSizeOf(v.type & 0x0FFF) : 0;
  if (element != 0 && v.data.size() % element == 0)
    return ltp::Property{id, v.type, v.data};  // packed fixed-size multi-values, as stored
  return std::nullopt;
}

// A property bag in the writer's form: named properties by name, so that the
// writer gives them this store's ids.
std::vector<ltp::Property> ConvertBag(const PropertyBag& bag,
                                      std::vector<messaging::NamedValue>* named,
                                      bool (*skip)(uint16_t id) = IsLocationOrDerived) {
  std::vector<ltp::Property> out;
  for (const auto& [id, v] : bag.all()) {
    if (skip(id)) continue;
    auto p = ConvertValue(id, v);
    if (!p) continue;
    if (id < 0x8000) {
      out.push_back(std::move(*p));
    } else if (v.name && named != nullptr) {
      named->push_back({*v.name, p->type, std::move(p->value)});
    }
  }
  return out;
}

// Folder properties that say where the folder lived or that the writer sets.
bool IsFolderLocationOrDerived(uint16_t id) {
  if (IsLocationOrDerived(id)) return true;
  if (id >= 0x36D0 && id <= 0x36D9) return true;  // special folders' entry IDs (root, Inbox)
  switch (id) {
    case 0x0E30:  // PidTagReplItemid
    case 0x0E33:  // PidTagReplChangenum
    case 0x0E34:  // PidTagReplVersionhistory
    case 0x0E38:  // PidTagReplFlags
    case 0x0E3C:  // PidTagReplCopiedfromVersionhistory
    case 0x0E3D:  // PidTagReplCopiedfromItemid
    case 0x3001:  // PidTagDisplayName: the sink names the folder
    case 0x3601:  // PidTagFolderType
    case 0x3602:  // PidTagContentCount
    case 0x3603:  // PidTagContentUnreadCount
    case 0x360A:  // PidTagSubfolders
    case 0x3616:  // PidTagDefaultViewEntryId
    case 0x3617:  // PidTagAssociatedContentCount
    case 0x36E4:  // PidTagFreeBusyEntryIds
    case 0x65E0:  // PidTagSourceKey
    case 0x65E1:  // PidTagParentSourceKey
    case 0x65E2:  // PidTagChangeKey
    case 0x65E3:  // PidTagPredecessorChangeList
    case 0x6635:  // PST's hidden content counts
    case 0x6636:
    case 0x6748:  // PidTagFolderId
    case 0x6749:  // PidTagParentFolderId
      return true;
    default:
      return false;
  }
}

}  // namespace

std::vector<ltp::Property> FolderPropsToOut(const PropertyBag& bag,
                                            std::vector<messaging::NamedValue>* named) {
  return ConvertBag(bag, named, IsFolderLocationOrDerived);
}

std::string FaiIdentity(const MapiMessage& m) {
  if (auto key = m.props.Bytes(0x300B); key && !key->empty()) return std::string(*key);
  // Named properties by name: their ids differ from store to store.
  std::string canon;
  auto field = [&canon](std::string_view s) {
    canon += std::to_string(s.size());
    canon += ':';
    canon += s;
  };
  for (const auto& [id, v] : m.props.all()) {
    if (IsLocationOrDerived(id) || id == 0x300B) continue;
    if (id >= 0x8000) {
      if (!v.name) continue;
      field(v.name->guid);
      field(v.name->is_string ? v.name->name : std::to_string(v.name->lid));
    } else {
      field(std::to_string(id));
    }
    field(std::to_string(v.type));
    field(v.data);
    for (const auto& e : v.values) field(e);
  }
  return Sha256Prefix(canon);
}

std::string FaiDedupeForm(const MapiMessage& m) {
  const std::string id = FaiIdentity(m);
  const std::string hex = ToHex(reinterpret_cast<const uint8_t*>(id.data()), id.size());
  std::string subject = m.props.StringOr(kPidMessageClass) + " " + m.props.StringOr(kPidSubject);
  for (char& c : subject) {
    if (c == '\r' || c == '\n') c = ' ';
  }
  return "Message-ID: <" + hex + "@associated.mbxmerge.invalid>\r\nSubject: [FAI] " + subject +
         "\r\nContent-Type: application/x-mbxmerge-associated\r\n\r\n" + hex + "\r\n";
}

messaging::OutMessage MapiToOut(const MapiMessage& m) {
  messaging::OutMessage out;
  out.props = ConvertBag(m.props, &out.named);
  for (const auto& r : m.recipients) {
    out.recipients_named.emplace_back();
    out.recipients.push_back(ConvertBag(r, &out.recipients_named.back(), IsRecipientDerived));
  }
  for (const auto& a : m.attachments) {
    messaging::OutAttachment oa;
    oa.props = ConvertBag(a.props, &oa.named);
    for (uint32_t tag : a.table_columns) {
      // 8-bit string columns become Unicode ones, as the values do.
      if ((tag & 0xFFFF) == kPtString8) tag = (tag & 0xFFFF0000) | kPtUnicode;
      if ((tag & 0xFFFF) == disk::kPtypMultipleString8)
        tag = (tag & 0xFFFF0000) | disk::kPtypMultipleString;
      oa.table_columns.push_back(tag);
    }
    if (a.embedded) {
      oa.embedded = std::make_shared<const messaging::OutMessage>(MapiToOut(*a.embedded));
    } else {
      oa.data = a.data;
    }
    out.attachments.push_back(std::move(oa));
  }
  return out;
}

namespace {

PropertyBag ToBag(const std::vector<ltp::Property>& props) {
  PropertyBag bag;
  for (const auto& p : props) {
    if (p.type == disk::kPtypString) {
      bag.SetString(p.id, disk::Utf16leToUtf8(p.value));
    } else if (p.type == disk::kPtypMultipleBinary && p.value.size() >= 4) {
      const auto* b = reinterpret_cast<const uint8_t*>(p.value.data());
      const uint32_t n = disk::Get32(b);
      PropValue v;
      v.type = kPtMvBinary;
      for (uint32_t i = 0; i < n && 4 + 4 * (uint64_t{i} + 1) <= p.value.size(); ++i) {
        const uint32_t from = disk::Get32(b + 4 + 4 * i);
        const uint32_t to =
            i + 1 < n ? disk::Get32(b + 8 + 4 * i) : static_cast<uint32_t>(p.value.size());
        if (from <= to && to <= p.value.size()) v.values.push_back(p.value.substr(from, to - from));
      }
      bag.Set(p.id, std::move(v));
    } else {
      bag.Set(p.id, PropValue{p.type, p.value, {}, std::nullopt});
    }
  }
  return bag;
}

MapiMessage OutToMapi(const messaging::OutMessage& m) {
  MapiMessage out;
  out.props = ToBag(m.props);
  for (const auto& r : m.recipients) out.recipients.push_back(ToBag(r));
  for (const auto& a : m.attachments) {
    MapiAttachment ma;
    ma.props = ToBag(a.props);
    if (a.embedded) {
      ma.embedded = std::make_unique<MapiMessage>(OutToMapi(*a.embedded));
      if (!ma.props.Has(kPidAttachMethod)) ma.props.SetInt32(kPidAttachMethod, 5);
    } else {
      ma.data = a.data;
    }
    out.attachments.push_back(std::move(ma));
  }
  return out;
}

}  // namespace

Result<std::string> PstDedupeForm(const Message& msg) {
  if (const MapiMessage* mapi = MapiOf(msg))
    return msg.associated ? FaiDedupeForm(*mapi) : RenderMime(*mapi);
  MBX_ASSIGN_OR_RETURN(auto out, MimeToMapi(msg));
  return RenderMime(OutToMapi(out));
}

}  // namespace mbx::pst
