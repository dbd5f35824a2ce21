// \brief Three independent PST readers (pffexport, readpst, pst-extractor) as test oracles.
//
// Each loader runs one reader that nobody here wrote on a PST/OST and brings its
// output into one normalized model, so that tests can check that all three see
// what mbxmerge wrote (and agree with each other on real Outlook files):
//   - ReadWithPffexport:    libpff's `pffexport -d -m items -f all` export tree;
//   - ReadWithReadpst:      libpst's `readpst -D -e -b`, one .eml per item, parsed with GMime;
//   - ReadWithPstExtractor: the npm package pst-extractor via tests/node/pst_dump.js.
// A file a reader cannot open is an error, never an empty store: pffexport exits 0
// without writing anything when the root folder is unreadable (a truncated file), so
// "no export tree" counts as an error as well.
//
// Normalizations (applied by every loader alike, so that they compare):
//  - Folder paths are relative to the IPM subtree ("Top of Personal Folders",
//    "Top of Outlook data file", "Top of Information Store", or an OST's
//    "Root - Mailbox/IPM_SUBTREE"), which is "" itself; names are joined with
//    "/". Folders outside it (Search Root, SPAM Search Folder 2, Finder, ...)
//    are dropped. pst-extractor finds the subtree by PR_IPM_SUBTREE_ENTRYID (OSTs,
//    which lack it: node 0x2142, as libpst does); readpst starts there by itself
//    (its top directory is named after the store and maps to ""); pffexport
//    exports the whole root, so its subtree is found by the names above.
//  - Every folder-name component and attachment name has the characters that
//    either tool rewrites in file names ("/\:!$%&*+;<>?@|~", C0 controls, DEL)
//    replaced with '_' (pffexport's libcpath and readpst's check_filename).
//    Not undone: readpst's numeric suffix for two sibling folders of one name.
//  - pffexport attachment files lose their "<n>_" prefix.
//  - Subjects and display names: trimmed, runs of white space collapsed to one space.
//  - Addresses: an address counts only if it is SMTP (has '@', does not start
//    with '/'); EX addresses ("/O=...") and readpst's "MAILER-DAEMON" become "".
//    sender_email is the first SMTP one of PR_SENDER_SMTP_ADDRESS and
//    PR_SENDER_EMAIL_ADDRESS (readpst: the From address). Each to/cc/bcc entry is
//    the recipient's SMTP address (PR_SMTP_ADDRESS, else PR_EMAIL_ADDRESS; readpst:
//    the header address), else its display name; lower-cased, trimmed, sorted.
//  - body (plain text, UTF-8): CRLF and CR become LF, trailing blanks of each line,
//    trailing empty lines and NULs are removed. "" when the item has no plain body
//    (readpst: no text/plain part; pffexport: no Message.txt).
//  - attachments: (name, lower-case SHA-256 hex of the bytes), sorted. An
//    embedded message is ("message/rfc822: " + its subject, ""); pst-extractor
//    cannot open embedded messages and gives the attachment's display name instead.
//  - kind: from PR_MESSAGE_CLASS (pffexport via ItemValues.txt, pst-extractor
//    directly). readpst does not say: a .eml is kMail unless it carries the
//    text/calendar part with a "method" parameter that readpst writes only for
//    meeting items (then kMeeting; that part and readpst's "i<digits>.ics" copy
//    are not listed as attachments); any other file (.ics, .vcf, ...) is kOther.
//
// What each reader leaves out (on top of the above):
//  - pffexport and readpst skip IPM.Post items entirely; only pst-extractor reports them.
//  - readpst writes a folder only if it has items or subfolders (Deleted Items is
//    read thanks to -D). It takes From/To/Cc from PR_TRANSPORT_MESSAGE_HEADERS when
//    the item has them (so it checks the stored headers, not PR_SENDER_* or the
//    recipient table), otherwise it writes From: "name" <SMTP or MAILER-DAEMON> and
//    To/Cc from PR_DISPLAY_TO/PR_DISPLAY_CC, i.e. display names only.
//  - pffexport writes neither recipients nor attachments of meeting items
//    (IPM.Schedule.Meeting.*).
//  - pst-extractor 1.12.0 cannot open the ANSI (32-bit) files here: its ANSI branch
//    pages are searched with a JavaScript `>` on Long objects (always false), so the
//    name-to-id map node is looked up in the wrong subtree and the open fails. It
//    also assumes 8176-byte row-matrix blocks: in an OST with 4 KiB pages it reads
//    only the first block of a big contents table (24 of 160 rows). It cannot open
//    embedded messages (PSTAttachment.embeddedPSTMessage returns null).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "engine/status.h"

namespace mbx::testing {

enum class OracleKind {
  kMail,     // IPM.Note*, REPORT.* (what mbxmerge writes)
  kMeeting,  // IPM.Schedule.Meeting.*
  kPost,     // IPM.Post*
  kOther,    // appointments, contacts, tasks, ...
};

struct OracleMessage {
  OracleKind kind = OracleKind::kMail;
  std::string message_class;  // as the reader reports it; "" for readpst
  std::string subject;
  std::string sender_name;
  std::string sender_email;  // SMTP only, lower-case
  std::string body;          // normalized plain text
  std::string body_html;     // UTF-8 (pffexport's raw PR_HTML converted from PR_INTERNET_CPID)
  std::string message_id;    // without angle brackets; "" if unknown
  int64_t submit_time = -1;  // PR_CLIENT_SUBMIT_TIME (readpst: Date), seconds since the epoch
  std::vector<std::string> to, cc, bcc;
  std::vector<std::pair<std::string, std::string>> attachments;  // (name, sha256 hex)
};

struct OracleFolder {
  std::string path;
  std::vector<OracleMessage> messages;
};

// Folder path -> folder; the IPM subtree itself is "". Every folder the reader
// reports is present, empty ones included.
using OracleStore = std::map<std::string, OracleFolder>;

enum class Oracle { kPffexport, kReadpst, kPstExtractor };
inline constexpr Oracle kAllOracles[] = {Oracle::kPffexport, Oracle::kReadpst,
                                         Oracle::kPstExtractor};

// "pffexport", "readpst", "pst-extractor".
const char* OracleName(Oracle oracle);
// "" when the reader can run here, else why not (for GTEST_SKIP).
std::string OracleUnavailableReason(Oracle oracle);

Result<OracleStore> ReadWithPffexport(const std::string& pst_path);
Result<OracleStore> ReadWithReadpst(const std::string& pst_path);
Result<OracleStore> ReadWithPstExtractor(const std::string& pst_path);
Result<OracleStore> ReadWithOracle(Oracle oracle, const std::string& pst_path);

// The normalization of folder-name components and attachment names (see above).
std::string OracleFileName(std::string_view name);
// One property as `pffexport -d` dumps it in ItemValues.txt.
struct PffValue {
  uint32_t value_type = 0;
  std::string bytes;    // "" when the dump has no Value: lines (an empty value)
  std::string maps_to;  // a named property's name: "0x00008580" or "Keywords"
};
using PffSet = std::map<uint32_t, PffValue>;  // property id (Entry type) -> value
// ItemValues.txt / RecipientsItemValues.txt: one PffSet per "Set:" index.
std::vector<PffSet> ParsePffItemValues(std::string_view text);

// What `mbxmerge check` (pst::check::CheckPst) finds in a PST, one line per
// violation ("location: message"), or the error when the file cannot be
// checked; "" when the file is clean.
std::string PstCheckViolations(const std::string& path);

// Lower-case hex SHA-256 of `data` (attachment digests).
std::string Sha256Hex(std::string_view data);

// The body normalization (see above).
std::string NormalizeOracleBody(std::string_view text);

bool IsMailItem(const OracleMessage& message);

// What CompareOracleStores looks at; combine with |.
enum OracleAspect : unsigned {
  kOracleFolderTree = 1u << 0,   // the set of folder paths (see CompareOptions::tree)
  kOracleCounts = 1u << 1,       // per folder, the number of compared messages
  kOracleSubjects = 1u << 2,     // per folder, the subjects as a multiset
  kOracleSenders = 1u << 3,      // per message: sender name and SMTP address
  kOracleRecipients = 1u << 4,   // per message: to, cc, bcc
  kOracleBodies = 1u << 5,       // per message: the normalized plain body
  kOracleAttachments = 1u << 6,  // per message: attachment names and digests
  kOracleHtmlBodies = 1u << 7,   // per message: the HTML body, normalized like body
  kOracleAllAspects = (1u << 8) - 1,
};

struct CompareOptions {
  unsigned aspects = kOracleAllAspects;
  enum class Tree {
    kEqual,        // both report the same folders
    kLeftInRight,  // every left folder exists on the right (left = readpst, which omits empty ones)
  } tree = Tree::kEqual;
  // Messages taken into account (others are ignored); default: mail items.
  std::function<bool(const std::string& folder, const OracleMessage&)> message_filter =
      [](const std::string&, const OracleMessage& m) { return IsMailItem(m); };
  // Folders taken into account at all; empty means every folder.
  std::function<bool(const std::string& folder)> folder_filter;
  std::string left_name = "left";
  std::string right_name = "right";
};

// A human-readable list of differences, one per line; "" when the stores agree
// on the chosen aspects. Messages of one folder are paired by subject (then
// submit time, sender); per-message aspects are compared only for subjects that
// occur equally often on both sides (the others show up under kOracleSubjects).
std::string CompareOracleStores(const OracleStore& left, const OracleStore& right,
                                const CompareOptions& options = {});

// A compact listing of a store (folders, kinds, subjects) for failure messages.
std::string DescribeOracleStore(const OracleStore& store);

}  // namespace mbx::testing
