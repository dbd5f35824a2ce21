// ExMerge's two-step procedure over a store: export, then import.
#include <dirent.h>
#include <strings.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <mutex>
#include <optional>
#include <set>

#include "engine/faultpoint.h"
#include "engine/recovery/mailbox_merges.h"
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

// One user's export or import, decided before any merge runs.
struct Transfer {
  UserOutcome out;
  std::string key, say;
  std::string skip_status, fail;  // decided without merging
  std::optional<Location> from, into;
};

// Runs the merges of `work` (several at a time when --jobs allows), then
// journals and reports each user in order, so neither depends on timing.
Status RunTransfers(std::vector<Transfer>& work, const TransferOptions& opt, bool create_target,
                    const char* done_status, const char* crash_point, TransferJournal& journal,
                    RecoverResult* result) {
  MergeOptions mopt = opt.merge;
  // A resumed run relies on dedupe to write nothing twice.
  if (mopt.mode == MergeMode::kCopy) mopt.mode = MergeMode::kMerge;
  std::mutex say_mu;
  MailboxMerges merges(work.size(), opt.merge.jobs, mopt);
  for (size_t i = 0; i < work.size(); ++i) {
    if (!work[i].from) continue;
    merges.Add(i, [&, i](const MergeOptions& o) {
      Transfer& t = work[i];
      if (opt.say) {
        std::lock_guard<std::mutex> g(say_mu);
        opt.say(t.say);
      }
      return MergeMailbox(*t.from, *t.into, o, opt.source, opt.dry_run, create_target, &t.out);
    });
  }
  merges.Start();
  for (size_t i = 0; i < work.size(); ++i) {
    Transfer& t = work[i];
    if (!t.fail.empty()) {
      result->AddFailed(std::move(t.out), t.fail);
      continue;
    }
    if (!t.skip_status.empty()) {
      t.out.status = t.skip_status;
    } else if (merges.Wait(i)) {
      t.out.status = opt.dry_run ? "planned" : done_status;
      MBX_CRASH_POINT(crash_point);
      MBX_RETURN_IF_ERROR(journal.MarkDone(t.key));
    }
    result->users.push_back(std::move(t.out));
  }
  return Status::Ok();
}

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
  // Pass 1: each user's export; pass 2: the merges, several at a time
  // (--jobs); pass 3: journal and report in user order.
  std::vector<Transfer> work;
  for (const User* u : users) {
    Transfer& t = work.emplace_back();
    UserOutcome& out = t.out;
    out.alias = u->alias;
    out.display_name = u->display_name;
    out.blank = u->mailbox_guid ? u->mailbox_guid->ToString() : "";
    const StoreMailbox* mb = u->mailbox_guid ? store.FindMailbox(*u->mailbox_guid) : nullptr;
    if (!mb) {
      t.fail = "no mailbox file for " + out.blank;
      continue;
    }
    auto from = ParseLocation(mb->path, false);
    if (!from.ok()) {
      t.fail = from.status().message();
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
    t.key = TransferJournal::Key(u->alias, mb->path, to.path);
    if (journal.Done(t.key)) {
      t.skip_status = "already-exported";
      continue;
    }
    t.say = u->alias + ": exporting " + mb->path + " to " + to.path;
    t.from = *from;
    t.into = to;
  }
  MBX_RETURN_IF_ERROR(RunTransfers(work, opt, /*create_target=*/true, "exported", "export.after-merge", journal,
                                   &result));
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
  std::vector<Transfer> work;
  for (const auto& name : names) {
    std::string path = fs::Join(opt.dir, name);
    std::string alias;
    for (std::string_view ext : {".mbxz", ".pst", ".ost", ".mbox"}) {
      if (EndsWithNoCase(name, ext)) alias = name.substr(0, name.size() - ext.size());
    }
    if (alias.empty() && fs::IsDir(path)) alias = name;
    if (alias.empty()) continue;  // not an export file (.tmp, .lock, notes)
    const User* u = store.FindUserByAlias(alias);
    if (u && !wanted.count(u)) continue;
    Transfer& t = work.emplace_back();
    UserOutcome& out = t.out;
    out.alias = alias;
    if (!u) {
      t.fail = "'" + path + "' names no user with alias '" + alias + "'";
      continue;
    }
    out.display_name = u->display_name;
    const StoreMailbox* mb = u->mailbox_guid ? store.FindMailbox(*u->mailbox_guid) : nullptr;
    if (!mb) {
      t.fail = "user '" + alias + "' has no mailbox file to import into";
      continue;
    }
    out.original = mb->guid.ToString();
    auto from = ParseLocation(path, false);
    auto into = ParseLocation(mb->path, false);
    if (!from.ok() || !into.ok()) {
      t.fail = (!from.ok() ? from.status() : into.status()).message();
      continue;
    }
    t.key = TransferJournal::Key(alias, path, mb->path);
    if (journal.Done(t.key)) {
      t.skip_status = "already-imported";
      continue;
    }
    t.say = alias + ": importing " + path + " into " + mb->path;
    t.from = *from;
    t.into = *into;
  }
  MBX_RETURN_IF_ERROR(RunTransfers(work, opt, /*create_target=*/false, "imported", "import.after-merge", journal,
                                   &result));
  MBX_RETURN_IF_ERROR(journal.Finish(result));
  result.seconds = Since(t0);
  return result;
}

}  // namespace mbx::recovery
