#include "formats/registry.h"

#include "engine/fs.h"
#include "formats/eml/eml.h"
#include "formats/maildir/maildir.h"
#include "formats/mbox/mbox.h"
#include "formats/mbxz/mbxz.h"
#include "formats/pst/mime_to_mapi.h"
#include "formats/pst/pst.h"

namespace mbx {
namespace {

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

}  // namespace

std::string_view FormatName(FormatKind kind) {
  switch (kind) {
    case FormatKind::kMbox:
      return "mbox";
    case FormatKind::kMaildir:
      return "maildir";
    case FormatKind::kEml:
      return "eml";
    case FormatKind::kMboxDir:
      return "mboxdir";
    case FormatKind::kPst:
      return "pst";
    case FormatKind::kPstDir:
      return "pstdir";
    case FormatKind::kBundle:
      return "mbxz";
  }
  return "?";
}

std::string Location::ToString() const { return std::string(FormatName(kind)) + ":" + path; }

Result<Location> ParseLocation(std::string_view spec, bool for_target) {
  static constexpr std::pair<std::string_view, FormatKind> kPrefixes[] = {
      {"mbox:", FormatKind::kMbox}, {"maildir:", FormatKind::kMaildir},
      {"eml:", FormatKind::kEml},   {"mboxdir:", FormatKind::kMboxDir},
      {"pst:", FormatKind::kPst},   {"mbxz:", FormatKind::kBundle},
      {"pstdir:", FormatKind::kPstDir},
  };
  if (spec.empty()) return Status::InvalidArgument("empty mailbox location");
  Location loc;
  bool typed = false;
  for (const auto& [prefix, kind] : kPrefixes) {
    if (spec.substr(0, prefix.size()) == prefix) {
      loc.kind = kind;
      loc.path = std::string(spec.substr(prefix.size()));
      typed = true;
      break;
    }
  }
  if (!typed) loc.path = std::string(spec);
  if (loc.path.empty())
    return Status::InvalidArgument("mailbox location '" + std::string(spec) + "' has no path");
  while (loc.path.size() > 1 && loc.path.back() == '/') loc.path.pop_back();
  loc.exists = fs::Exists(loc.path);

  if (typed) {
    bool want_file = loc.kind == FormatKind::kMbox || loc.kind == FormatKind::kPst ||
                     loc.kind == FormatKind::kBundle;
    if (loc.exists && want_file && !fs::IsFile(loc.path)) {
      return Status::InvalidArgument("'" + loc.path + "' is not a file, but " +
                                     std::string(FormatName(loc.kind)) + ": names one file");
    }
    if (loc.exists && !want_file && !fs::IsDir(loc.path)) {
      return Status::InvalidArgument("'" + loc.path + "' is not a directory, but " +
                                     std::string(FormatName(loc.kind)) + ": names a directory");
    }
  } else if (loc.exists) {
    if (fs::IsFile(loc.path)) {
      if (pst::HasPstMagic(loc.path) || pst::HasPstSuffix(loc.path)) {
        loc.kind = FormatKind::kPst;
      } else if (EndsWith(loc.path, ".mbxz") || mbxz::HasZstdMagic(loc.path)) {
        loc.kind = FormatKind::kBundle;
      } else {
        loc.kind = FormatKind::kMbox;
      }
    } else if (fs::IsDir(loc.path)) {
      loc.kind = maildir::IsMaildir(loc.path)  ? FormatKind::kMaildir
                 : pst::IsPstFolder(loc.path) ? FormatKind::kPstDir
                                              : FormatKind::kEml;
    } else {
      return Status::InvalidArgument("'" + loc.path + "' is neither a file nor a directory");
    }
  } else if (pst::HasPstSuffix(loc.path)) {
    loc.kind = FormatKind::kPst;
  } else if (EndsWith(loc.path, ".mbxz")) {
    loc.kind = FormatKind::kBundle;
  } else if (EndsWith(loc.path, ".mbox") || EndsWith(loc.path, ".mbx")) {
    loc.kind = FormatKind::kMbox;
  } else {
    loc.kind = FormatKind::kMaildir;
  }
  if (!loc.exists && !for_target) {
    return Status::NotFound("mailbox '" + loc.path + "' does not exist");
  }
  if (for_target && loc.kind == FormatKind::kPstDir) {
    return Status::InvalidArgument("'" + loc.path +
                                   "': a folder of PST files is a source only; merge into "
                                   "pst:FILE, mboxdir:DIR or another mailbox");
  }
  return loc;
}

Result<std::unique_ptr<MailboxSource>> OpenSource(const Location& loc, const SourceOptions& opts) {
  switch (loc.kind) {
    case FormatKind::kMbox:
      return mbox::OpenSource(loc.path);
    case FormatKind::kMboxDir:
      return mbox::OpenDirSource(loc.path);
    case FormatKind::kMaildir:
      return maildir::OpenSource(loc.path);
    case FormatKind::kEml:
      return eml::OpenSource(loc.path);
    case FormatKind::kPst:
      return pst::OpenSource(loc.path, {opts.pst_associated, opts.pst_recover_deleted});
    case FormatKind::kPstDir:
      return pst::OpenFolderSource(loc.path, {opts.pst_associated, opts.pst_recover_deleted});
    case FormatKind::kBundle:
      return mbxz::OpenSource(loc.path);
  }
  return Status::Unsupported("unknown mailbox format");
}

Result<std::unique_ptr<MailboxSink>> OpenSink(const Location& loc, const SinkOptions& opts) {
  switch (loc.kind) {
    case FormatKind::kMbox:
      return mbox::OpenSink(loc.path, opts);
    case FormatKind::kMboxDir:
      return mbox::OpenDirSink(loc.path, opts);
    case FormatKind::kMaildir:
      return maildir::OpenSink(loc.path, opts);
    case FormatKind::kEml:
      return eml::OpenSink(loc.path, opts);
    case FormatKind::kPst: {
      pst::PstSinkOptions p;
      p.compressible = opts.pst_compressible;
      p.backup = opts.pst_backup;
      p.defer_existing = opts.replace_mode;
      return pst::OpenSink(loc.path, p);
    }
    case FormatKind::kBundle:
      return mbxz::OpenSink(loc.path, opts);
    case FormatKind::kPstDir:
      return Status::InvalidArgument("'" + loc.path +
                                     "': a folder of PST files is a source only; merge into "
                                     "pst:FILE, mboxdir:DIR or another mailbox");
  }
  return Status::Unsupported("unknown mailbox format");
}

std::function<Result<std::string>(const Message&)> DedupeFormFor(FormatKind kind) {
  if (kind == FormatKind::kPst) return pst::PstDedupeForm;
  return {};
}

}  // namespace mbx
