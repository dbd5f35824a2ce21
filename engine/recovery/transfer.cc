// ExMerge's two-step procedure over a store: export, then import.
#include <dirent.h>
#include <strings.h>

#include <algorithm>
#include <chrono>
#include <set>

#include "engine/recovery/recover.h"

namespace mbx::recovery {
namespace {

// An alias as a file name: no path separators, no leading dot, no control bytes.
std::string FileStem(std::string_view alias) {
  std::string out;
  for (unsigned char c : alias)
    out += (c == '/' || c < 0x20 || c == 0x7F) ? '_' : static_cast<char>(c);
  if (out.empty() || out[0] == '.') out.insert(out.begin(), '_');
  return out;
}

bool EndsWithNoCase(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() &&
         strncasecmp(s.data() + s.size() - suffix.size(), suffix.data(), suffix.size()) == 0;
}

double Since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

Result<RecoverResult> Export(const Store& store, const TransferOptions& opt) {
  auto t0 = std::chrono::steady_clock::now();
  if (opt.format != FormatKind::kBundle && opt.format != FormatKind::kMbox &&
      opt.format != FormatKind::kMaildir && opt.format != FormatKind::kPst) {
    return Status::InvalidArgument("export writes mbxz, pst, mbox or maildir");
  }
  MBX_ASSIGN_OR_RETURN(auto users, SelectUsers(store, opt.filter));
  std::optional<fs::MailboxLock> lock;
  if (!opt.dry_run) {
    MBX_ASSIGN_OR_RETURN(auto l, LockStore(store));
    lock.emplace(std::move(l));
    MBX_RETURN_IF_ERROR(fs::MakeDirs(opt.dir));
  }
  RecoverResult result;
  result.command = "export";
  result.dry_run = opt.dry_run;
  for (const User* u : users) {
    UserOutcome out;
    out.alias = u->alias;
    out.display_name = u->display_name;
    out.blank = u->mailbox_guid ? u->mailbox_guid->ToString() : "";
    const StoreMailbox* mb = u->mailbox_guid ? store.FindMailbox(*u->mailbox_guid) : nullptr;
    if (!mb) {
      result.AddFailed(std::move(out), "no mailbox file for " + out.blank);
      continue;
    }
    auto from = ParseLocation(mb->path, false);
    if (!from.ok()) {
      result.AddFailed(std::move(out), from.status().message());
      continue;
    }
    Location to;
    to.kind = opt.format;
    std::string ext = opt.format == FormatKind::kBundle ? ".mbxz"
                      : opt.format == FormatKind::kMbox ? ".mbox"
                      : opt.format == FormatKind::kPst  ? ".pst"
                                                        : "";
    to.path = fs::Join(opt.dir, FileStem(u->alias) + ext);
    to.exists = fs::Exists(to.path);
    if (opt.say) opt.say(u->alias + ": exporting " + mb->path + " to " + to.path);
    MergeOptions mopt = opt.merge;
    // ExMerge's import methods apply to the store commands too (--mode).
    mopt.mode = opt.merge.mode;
    // A resumed run relies on dedupe to write nothing twice.
    if (mopt.mode == MergeMode::kCopy) mopt.mode = MergeMode::kMerge;
    if (MergeMailbox(*from, to, mopt, opt.dry_run, /*create_target=*/true, &out)) {
      out.status = opt.dry_run ? "planned" : "exported";
    }
    result.users.push_back(std::move(out));
  }
  result.seconds = Since(t0);
  return result;
}

Result<RecoverResult> Import(const Store& store, const TransferOptions& opt) {
  auto t0 = std::chrono::steady_clock::now();
  MBX_ASSIGN_OR_RETURN(auto selected, SelectUsers(store, opt.filter));
  std::set<const User*> wanted(selected.begin(), selected.end());
  DIR* d = ::opendir(opt.dir.c_str());
  if (!d) return Status::FromErrno("--from '" + opt.dir + "'", errno);
  std::vector<std::string> names;
  while (dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n != "." && n != ".." && n[0] != '.') names.push_back(n);
  }
  ::closedir(d);
  std::sort(names.begin(), names.end());

  std::optional<fs::MailboxLock> lock;
  if (!opt.dry_run) {
    MBX_ASSIGN_OR_RETURN(auto l, LockStore(store));
    lock.emplace(std::move(l));
  }
  RecoverResult result;
  result.command = "import";
  result.dry_run = opt.dry_run;
  for (const auto& name : names) {
    std::string path = fs::Join(opt.dir, name);
    std::string alias;
    for (std::string_view ext : {".mbxz", ".pst", ".ost", ".mbox"}) {
      if (EndsWithNoCase(name, ext)) alias = name.substr(0, name.size() - ext.size());
    }
    if (alias.empty() && fs::IsDir(path)) alias = name;
    if (alias.empty()) continue;  // not an export file (.tmp, .lock, notes)
    UserOutcome out;
    out.alias = alias;
    const User* u = store.FindUserByAlias(alias);
    if (!u) {
      result.AddFailed(std::move(out), "'" + path + "' names no user with alias '" + alias + "'");
      continue;
    }
    if (!wanted.count(u)) continue;
    out.display_name = u->display_name;
    const StoreMailbox* mb = u->mailbox_guid ? store.FindMailbox(*u->mailbox_guid) : nullptr;
    if (!mb) {
      result.AddFailed(std::move(out), "user '" + alias + "' has no mailbox file to import into");
      continue;
    }
    out.original = mb->guid.ToString();
    auto from = ParseLocation(path, false);
    auto into = ParseLocation(mb->path, false);
    if (!from.ok() || !into.ok()) {
      result.AddFailed(std::move(out), (!from.ok() ? from.status() : into.status()).message());
      continue;
    }
    if (opt.say) opt.say(alias + ": importing " + path + " into " + mb->path);
    MergeOptions mopt = opt.merge;
    // ExMerge's import methods apply to the store commands too (--mode).
    mopt.mode = opt.merge.mode;
    // A resumed run relies on dedupe to write nothing twice.
    if (mopt.mode == MergeMode::kCopy) mopt.mode = MergeMode::kMerge;
    if (MergeMailbox(*from, *into, mopt, opt.dry_run, /*create_target=*/false, &out)) {
      out.status = opt.dry_run ? "planned" : "imported";
    }
    result.users.push_back(std::move(out));
  }
  result.seconds = Since(t0);
  return result;
}

}  // namespace mbx::recovery
