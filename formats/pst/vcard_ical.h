// \brief Contacts as vCard 3.0 (RFC 2426/6350) and appointments and meeting
// messages as iCalendar (RFC 5545/5546), from a MapiMessage (mapi.h), and
// the reverse look-up the EML sink uses to write them beside the message.
//
// Pure functions of the message (no clock, no randomness), like the MIME
// rendering they feed (mapi_to_mime.h). Property ids follow [MS-OXOCNTC]
// (contacts) and [MS-OXOCAL] (calendar); named properties are found by their
// property set and long id, whatever id the source store gave them.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "formats/pst/mapi.h"

namespace mbx::pst {

// The PRODID every vCard and iCalendar object we write carries; it is how a
// part "written by us" is recognized again (FindPimPart).
inline constexpr std::string_view kPimProdId = "-//mbxmerge//PST PIM export//EN";

// What a contact or calendar item adds to its MIME rendering.
struct PimPart {
  std::string content_type;  // "text/vcard; charset=utf-8" or "text/calendar; ...; method=X"
  std::string filename;      // the attachment's name; "" for a meeting's alternative part
  std::string text;          // the vCard/iCalendar object, CRLF line ends, folded
  bool alternative = false;  // meeting messages: an alternative to the body, not an attachment
};

// The vCard of an IPM.Contact, the iCalendar of an IPM.Appointment (METHOD
// PUBLISH) or an IPM.Schedule.Meeting.* message (REQUEST, CANCEL or REPLY);
// nullopt for any other message class.
std::optional<PimPart> RenderPimPart(const MapiMessage& m);

// The objects themselves (any message class; the caller decides).
std::string RenderVCard(const MapiMessage& m);
// `method` is the iCalendar METHOD ("PUBLISH", "REQUEST", "CANCEL", "REPLY").
std::string RenderICalendar(const MapiMessage& m, std::string_view method);

// The first text/calendar or text/vcard part that we wrote (its content
// carries kPimProdId) in a MIME message, outside attached messages:
// extension ("ics"/"vcf") and the decoded bytes. nullopt when there is none.
struct PimFile {
  std::string extension;
  std::string data;
};
std::optional<PimFile> FindPimPart(std::string_view mime);

}  // namespace mbx::pst
