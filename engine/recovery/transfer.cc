// ExMerge's two-step procedure over a store: export, then import.
#include <dirent.h>
#include <strings.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <optional>
#include <set>

#include "engine/faultpoint.h"
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

// Which users a transfer run has finished, so that a run killed at any point
// and started again resumes where it stopped instead of reading every mailbox
// again (dedupe alone would already keep it from writing anything twice). A
// run that finishes with every user done removes it: the next run of the same
// command starts afresh and picks up mail that arrived since.
class TransferJournal {
 public:
  static Result<TransferJournal> Open(const Store& store, const TransferOptions& opt,
                                      std::string_view name) {
    TransferJournal t;
    if (opt.dry_run) return t;
    t.path_ = RunStateDir(store, opt.filter.shard) + "/" + std::string(name) + ".journal";
    MBX_ASSIGN_OR_RETURN(Journal j, Journal::OpenForAppend(t.path_));
    t.journal_.emplace(std::move(j));
    return t;
  }
  // One key per mailbox pair: the same alias to another directory is other work.
  static std::string Key(const std::string& alias, const std::string& from, const std::string& to) {
    std::string k = alias + " " + from + " -> " + to;
    for (char& c : k)
      if (c == '\t' || c == '\n' || c == '\r') c = ' ';
    return k;
  }
  bool Done(const std::string& key) const { return journal_ && journal_->Step(key) == "done"; }
  Status MarkDone(const std::string& key) {
    return journal_ ? journal_->Record(key, "done") : Status::Ok();
  }
  // Forgets the run once every user is done.
  Status Finish(const RecoverResult& result) {
    if (!journal_ || result.ExitCode() != 0) return Status::Ok();
    if (::unlink(path_.c_str()) != 0 && errno != ENOENT)
      return Status::FromErrno("remove '" + path_ + "'", errno);
    return Status::Ok();
  }

 private:
  std::string path_;
  std::optional<Journal> journal_;
};

}  // namespace

Result<RecoverResult> Export(const Store& store, const TransferOptions& opt) {
  auto t0 = std::chrono::steady_clock::now();
  if (opt.format != FormatKind::kBundle && opt.format != FormatKind::kMbox &&
      opt.format != FormatKind::kMaildir && opt.format != FormatKind::kPst) {
    return Status::InvalidArgument("export writes mbxz, pst, mbox or maildir");
  }
  MBX_ASSIGN_OR_RETURN(auto users, SelectUsers(store, opt.filter));
  std::optional<StoreLock> lock;
  if (!opt.dry_run) {
    MBX_ASSIGN_OR_RETURN(auto l, LockStore(store, opt.filter.shard));
    lock.emplace(std::move(l));
    MBX_RETURN_IF_ERROR(fs::MakeDirs(opt.dir));
  }
  MBX_ASSIGN_OR_RETURN(TransferJournal journal, TransferJournal::Open(store, opt, "export"));
  RecoverResult result;
  result.command = "export";
  result.shard = opt.filter.shard;
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
    const std::string key = TransferJournal::Key(u->alias, mb->path, to.path);
    if (journal.Done(key)) {
      out.status = "already-exported";
      result.users.push_back(std::move(out));
      continue;
    }
    if (opt.say) opt.say(u->alias + ": exporting " + mb->path + " to " + to.path);
    MergeOptions mopt = opt.merge;
    // ExMerge's import methods apply to the store commands too (--mode).
    mopt.mode = opt.merge.mode;
    // A resumed run relies on dedupe to write nothing twice.
    if (mopt.mode == MergeMode::kCopy) mopt.mode = MergeMode::kMerge;
    if (MergeMailbox(*from, to, mopt, opt.dry_run, /*create_target=*/true, &out)) {
      out.status = opt.dry_run ? "planned" : "exported";
      MBX_CRASH_POINT("export.after-merge");
      MBX_RETURN_IF_ERROR(journal.MarkDone(key));
    }
    result.users.push_back(std::move(out));
  }
  MBX_RETURN_IF_ERROR(journal.Finish(result));
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

  std::optional<StoreLock> lock;
  if (!opt.dry_run) {
    MBX_ASSIGN_OR_RETURN(auto l, LockStore(store, opt.filter.shard));
    lock.emplace(std::move(l));
  }
  MBX_ASSIGN_OR_RETURN(TransferJournal journal, TransferJournal::Open(store, opt, "import"));
  RecoverResult result;
  result.command = "import";
  result.shard = opt.filter.shard;
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
    const std::string key = TransferJournal::Key(alias, path, mb->path);
    if (journal.Done(key)) {
      out.status = "already-imported";
      result.users.push_back(std::move(out));
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
      MBX_CRASH_POINT("import.after-merge");
      MBX_RETURN_IF_ERROR(journal.MarkDone(key));
    }
    result.users.push_back(std::move(out));
  }
  MBX_RETURN_IF_ERROR(journal.Finish(result));
  result.seconds = Since(t0);
  return result;
}

}  // namespace mbx::recovery
