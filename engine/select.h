// \brief Message selection as ExMerge did it: (date range) AND (any subject) AND
// (any attachment glob) AND (folder filters); an empty criterion is ignored.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/message.h"
#include "engine/status.h"

namespace mbx {

enum class DateField { kSent, kDelivered, kModified };

struct Selection {
  std::optional<UnixTime> since;  // inclusive
  std::optional<UnixTime> until;  // inclusive
  DateField date_field = DateField::kDelivered;
  std::vector<std::string> subjects;          // case-insensitive substrings
  std::vector<std::string> attachment_globs;  // matched against attachment file names
  std::vector<std::string> folder_globs;      // include; empty = all
  std::vector<std::string> exclude_folder_globs;

  bool HasMessageCriteria() const {
    return since || until || !subjects.empty() || !attachment_globs.empty();
  }
};

// Why a message was not selected, for the report.
enum class Rejection { kNone, kDate, kNoDate, kSubject, kAttachment };

// Parses "2024-01-31", "2024-01-31T10:00:00" (UTC) or an RFC 5322 date.
// `end_of_day`: a bare date means its last second (for --until).
Result<UnixTime> ParseUserDate(std::string_view text, bool end_of_day);

// Precompiled selection, shared read-only by all workers.
class Selector {
 public:
  explicit Selector(Selection sel);

  // Folder filters only. Folder paths are matched case-insensitively with
  // shell globs ('*' also crosses '/'); the root folder matches as "" and "INBOX".
  bool FolderSelected(std::string_view folder) const;

  // Date, subject and attachment criteria. Thread-safe.
  Rejection Check(const Message& msg, std::string_view mime) const;

  // The date a message is selected by (see DateField); nullopt if unknown.
  std::optional<UnixTime> MessageDate(const Message& msg, std::string_view headers) const;

  const Selection& selection() const { return sel_; }

 private:
  Selection sel_;
  std::vector<std::string> folded_subjects_;
};

}  // namespace mbx
