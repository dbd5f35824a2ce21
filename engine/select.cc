#include "engine/select.h"

#include <fnmatch.h>

#include <cstdio>
#include <ctime>

#include "formats/mime/mime.h"

namespace mbx {
namespace {

bool GlobMatch(const std::string& glob, const std::string& text) {
  return ::fnmatch(glob.c_str(), text.c_str(), FNM_CASEFOLD) == 0;
}

bool AnyGlob(const std::vector<std::string>& globs, std::string_view folder) {
  std::string path(folder);
  for (const auto& g : globs) {
    if (GlobMatch(g, path)) return true;
    if (folder.empty() && GlobMatch(g, "INBOX")) return true;
  }
  return false;
}

}  // namespace

Result<UnixTime> ParseUserDate(std::string_view text, bool end_of_day) {
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, s = 0;
  std::string t(text);
  int consumed = 0;
  bool have_time = false;
  if (std::sscanf(t.c_str(), "%4d-%2d-%2d%n", &y, &mo, &d, &consumed) == 3) {
    if (static_cast<size_t>(consumed) < t.size()) {
      int c2 = 0;
      if ((t[static_cast<size_t>(consumed)] == 'T' || t[static_cast<size_t>(consumed)] == ' ') &&
          std::sscanf(t.c_str() + consumed + 1, "%2d:%2d%n", &h, &mi, &c2) == 2) {
        have_time = true;
        int c3 = 0;
        size_t at = static_cast<size_t>(consumed + 1 + c2);
        if (at < t.size() && t[at] == ':' && std::sscanf(t.c_str() + at + 1, "%2d%n", &s, &c3) == 1) {
          at += 1 + static_cast<size_t>(c3);
        }
        if (at < t.size() && !(t.substr(at) == "Z" || t.substr(at) == "z")) {
          return Status::InvalidArgument("cannot parse date '" + t + "' (use YYYY-MM-DD or YYYY-MM-DDTHH:MM:SS, UTC)");
        }
      } else {
        return Status::InvalidArgument("cannot parse date '" + t + "' (use YYYY-MM-DD or YYYY-MM-DDTHH:MM:SS, UTC)");
      }
    }
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 60) {
      return Status::InvalidArgument("date '" + t + "' is out of range");
    }
    struct tm tm = {};
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = s;
    UnixTime v = ::timegm(&tm);
    if (!have_time && end_of_day) v += 86399;
    return v;
  }
  if (auto v = mime::ParseDate(text)) return *v;
  return Status::InvalidArgument("cannot parse date '" + t + "' (use YYYY-MM-DD or YYYY-MM-DDTHH:MM:SS, UTC)");
}

Selector::Selector(Selection sel) : sel_(std::move(sel)) {
  for (const auto& s : sel_.subjects) folded_subjects_.push_back(mime::CaseFold(s));
}

bool Selector::FolderSelected(std::string_view folder) const {
  if (!sel_.folder_globs.empty() && !AnyGlob(sel_.folder_globs, folder)) return false;
  if (AnyGlob(sel_.exclude_folder_globs, folder)) return false;
  return true;
}

std::optional<UnixTime> Selector::MessageDate(const Message& msg, std::string_view headers) const {
  auto header_date = [&]() -> std::optional<UnixTime> {
    if (auto v = mime::FindField(headers, "date")) return mime::ParseDate(*v);
    return std::nullopt;
  };
  auto delivered = [&]() -> std::optional<UnixTime> {
    if (msg.container_delivered) return msg.container_delivered;
    if (auto v = mime::FirstReceivedDate(headers)) return v;
    return header_date();
  };
  switch (sel_.date_field) {
    case DateField::kSent:
      if (auto v = header_date()) return v;
      return delivered();
    case DateField::kDelivered:
      return delivered();
    case DateField::kModified:
      if (msg.container_modified) return msg.container_modified;
      return delivered();
  }
  return std::nullopt;
}

Rejection Selector::Check(const Message& msg, std::string_view mime) const {
  if (!sel_.HasMessageCriteria()) return Rejection::kNone;
  std::string_view headers = mime::HeaderBlock(mime);
  if (sel_.since || sel_.until) {
    auto date = MessageDate(msg, headers);
    if (!date) return Rejection::kNoDate;
    if (sel_.since && *date < *sel_.since) return Rejection::kDate;
    if (sel_.until && *date > *sel_.until) return Rejection::kDate;
  }
  if (!folded_subjects_.empty()) {
    auto raw = mime::FindField(headers, "subject");
    std::string subject = raw ? mime::CaseFold(mime::DecodeHeader(*raw)) : std::string();
    bool any = false;
    for (const auto& s : folded_subjects_) {
      if (subject.find(s) != std::string::npos) {
        any = true;
        break;
      }
    }
    if (!any) return Rejection::kSubject;
  }
  if (!sel_.attachment_globs.empty()) {
    bool any = false;
    for (const auto& name : mime::AttachmentNames(mime)) {
      for (const auto& g : sel_.attachment_globs) {
        if (GlobMatch(g, name)) {
          any = true;
          break;
        }
      }
      if (any) break;
    }
    if (!any) return Rejection::kAttachment;
  }
  return Rejection::kNone;
}

}  // namespace mbx
