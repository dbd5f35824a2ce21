#include "engine/recovery/recover.h"

#include <dirent.h>
#include <fcntl.h>
#include <strings.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>

#include "engine/faultpoint.h"
#include "engine/log.h"
#include "engine/recovery/diagnose.h"
#include "engine/recovery/mailbox_merges.h"
#include "formats/ldif/ldif.h"
#include "formats/registry.h"

namespace mbx::recovery {
namespace {

std::string Lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return std::string(s);
}

constexpr char kReconnectHeader[] =
    "# mbxmerge: reconnect each recovered user to its original mailbox.\n"
    "# Apply with:  ldifde -i -f reconnect.ldif   or   ldapmodify -f reconnect.ldif\n"
    "\n";

std::string ReconnectRecord(const User& u) {
  return ldif::FormatReplace(u.dn, "msExchMailboxGUID", u.object_guid->Raw()) + "\n";
}

Status AppendDurably(const std::string& path, std::string_view data) {
  MBX_ASSIGN_OR_RETURN(fs::Fd fd, fs::Open(path, O_WRONLY | O_CREAT | O_APPEND, 0644));
  MBX_RETURN_IF_ERROR(fs::WriteAll(fd.get(), data, path));
  return fs::FsyncFd(fd.get(), path);
}

// Journal steps in the order a user goes through them.
int StepRank(std::string_view step) {
  if (step == "retired") return 4;
  if (step == "reconnected") return 3;
  if (step == "merged") return 2;
  return step.empty() ? 0 : 1;
}

// Every user's furthest step over all the store's journals (the unsharded one
// and each shard's), so a user finished under one split is not redone under
// another. Other live shards' journals may grow meanwhile, but only for their
// own users, never for ours (the store lock keeps concurrent runs disjoint).
Result<std::map<std::string, std::string>> FurthestSteps(const Store& store) {
  std::vector<std::string> paths{store.StateDir() + "/recover.journal"};
  if (DIR* d = ::opendir(store.StateDir().c_str())) {
    while (dirent* e = ::readdir(d)) {
      if (std::string_view(e->d_name).starts_with("shard-"))
        paths.push_back(store.StateDir() + "/" + e->d_name + "/recover.journal");
    }
    ::closedir(d);
  }
  std::map<std::string, std::string> steps;
  for (const auto& path : paths) {
    MBX_ASSIGN_OR_RETURN(Journal j, Journal::Open(path));
    for (const auto& [key, step] : j.Entries()) {
      if (StepRank(step) > StepRank(steps[key])) steps[key] = step;
    }
  }
  return steps;
}

// Serializes the writers of STORE/reconnect.ldif: the shards' appends (each
// with its journal record) and a starting run's rewrite. An flock on a file of
// its own, because the rewrite renames a new reconnect.ldif into place.
Result<fs::Fd> LockReconnect(const Store& store) {
  std::string path = store.StateDir() + "/reconnect.lock";
  MBX_ASSIGN_OR_RETURN(fs::Fd fd, fs::Open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644));
  while (::flock(fd.get(), LOCK_EX) != 0) {
    if (errno != EINTR) return Status::FromErrno("flock '" + path + "'", errno);
  }
  return fd;
}

}  // namespace

Result<std::vector<std::string>> ReadMailboxList(const std::string& path) {
  auto text = fs::ReadFile(path);
  if (!text.ok()) return text.status().WithContext("--mailboxes");
  std::vector<std::string> out;
  std::istringstream in(*text);
  std::string line;
  while (std::getline(in, line)) {
    size_t hash = line.find('#');
    if (hash != std::string::npos) line.resize(hash);
    line = Trim(line);
    if (!line.empty()) out.push_back(line);
  }
  return out;
}

Result<std::pair<std::string, std::string>> ParseRange(std::string_view text) {
  size_t dots = text.find("..");
  if (dots == std::string_view::npos) {
    return Status::InvalidArgument("--range takes FROM..TO (e.g. 'A..M'), not '" +
                                   std::string(text) + "'");
  }
  return std::make_pair(Trim(text.substr(0, dots)), Trim(text.substr(dots + 2)));
}

Result<std::pair<int, int>> ParseShard(std::string_view text) {
  int k = 0, n = 0;
  char extra = 0;
  std::string t(text);
  if (std::sscanf(t.c_str(), "%d/%d%c", &k, &n, &extra) != 2 || n < 1 || k < 1 || k > n) {
    return Status::InvalidArgument("--shard takes K/N with 1 <= K <= N (e.g. 2/4), not '" + t +
                                   "'");
  }
  return std::make_pair(k, n);
}

int ShardOf(std::string_view alias, int n) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (char c : Lower(alias)) {
    h ^= static_cast<unsigned char>(c);
    h *= 0x100000001b3ULL;
  }
  return static_cast<int>(h % static_cast<uint64_t>(n)) + 1;
}

Result<std::vector<const User*>> SelectUsers(const Store& store, const MailboxFilter& filter) {
  std::vector<bool> name_used(filter.names.size(), false);
  std::vector<const User*> out;
  for (const auto& u : store.users()) {
    if (!filter.names.empty()) {
      bool any = false;
      for (size_t i = 0; i < filter.names.size(); ++i) {
        if (strcasecmp(filter.names[i].c_str(), u.alias.c_str()) == 0 ||
            strcasecmp(filter.names[i].c_str(), u.display_name.c_str()) == 0) {
          any = true;
          name_used[i] = true;
        }
      }
      if (!any) continue;
    }
    if (filter.range) {
      std::string name = Lower(u.display_name);
      const auto& [from, to] = *filter.range;
      // Inclusive on both ends; "to" covers every name it is a prefix of ("A..M" takes "Mallory").
      if (!from.empty() && name < Lower(from)) continue;
      if (!to.empty() && name > Lower(to) && name.rfind(Lower(to), 0) != 0) continue;
    }
    if (filter.shard && ShardOf(u.alias, filter.shard->second) != filter.shard->first) continue;
    out.push_back(&u);
  }
  std::string unknown;
  for (size_t i = 0; i < filter.names.size(); ++i) {
    if (!name_used[i]) unknown += (unknown.empty() ? "" : ", ") + filter.names[i];
  }
  if (!unknown.empty()) {
    return Status::InvalidArgument("--mailboxes names no user with this alias or display name: " +
                                   unknown);
  }
  return out;
}

std::string RunStateDir(const Store& store, std::optional<std::pair<int, int>> shard) {
  if (!shard) return store.StateDir();
  return store.StateDir() + "/shard-" + std::to_string(shard->first) + "-of-" +
         std::to_string(shard->second);
}

Result<StoreLock> LockStore(const Store& store, std::optional<std::pair<int, int>> shard) {
  MBX_RETURN_IF_ERROR(fs::MakeDirs(store.StateDir()));
  std::string path = store.StateDir() + "/lock";
  StoreLock lock;
  MBX_ASSIGN_OR_RETURN(lock.store_, fs::Open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644));
  auto busy = [&](const std::string& why) {
    return Status::Busy("store '" + store.dir() + "' is in use by another mbxmerge run (" + why +
                        ")");
  };
  // OFD locks: per open file, not per process, so they work across threads and
  // are dropped when the process dies however it dies (kill -9 included).
  struct flock fl = {};
  fl.l_whence = SEEK_SET;
  fl.l_type = shard ? F_RDLCK : F_WRLCK;
  fl.l_start = shard ? shard->second : 0;
  fl.l_len = shard ? 1 : 0;
  if (::fcntl(lock.store_.get(), F_OFD_SETLK, &fl) != 0) {
    if (errno != EACCES && errno != EAGAIN)
      return Status::FromErrno("fcntl lock '" + path + "'", errno);
    return busy(shard ? "an unsharded run holds '" + path + "'" : "'" + path + "' is locked");
  }
  if (!shard) return lock;
  // Another split holds some other byte. Both runs take their byte before
  // looking, so of two racing splits at least one sees the other.
  for (auto [start, len] : {std::pair<off_t, off_t>{0, shard->second}, {shard->second + 1, 0}}) {
    struct flock probe = {};
    probe.l_whence = SEEK_SET;
    probe.l_type = F_WRLCK;
    probe.l_start = start;
    probe.l_len = len;
    if (::fcntl(lock.store_.get(), F_OFD_GETLK, &probe) != 0)
      return Status::FromErrno("fcntl probe '" + path + "'", errno);
    if (probe.l_type != F_UNLCK) {
      return busy("a run with --shard ?/" + std::to_string(probe.l_start) +
                  " holds it; the shards of two splits overlap");
    }
  }
  std::string dir = RunStateDir(store, shard);
  MBX_RETURN_IF_ERROR(fs::MakeDirs(dir));
  MBX_ASSIGN_OR_RETURN(lock.shard_, fs::Open(dir + "/lock", O_RDWR | O_CREAT | O_CLOEXEC, 0644));
  struct flock ex = {};
  ex.l_whence = SEEK_SET;
  ex.l_type = F_WRLCK;
  if (::fcntl(lock.shard_.get(), F_OFD_SETLK, &ex) != 0) {
    if (errno != EACCES && errno != EAGAIN)
      return Status::FromErrno("fcntl lock '" + dir + "/lock'", errno);
    return busy("shard " + std::to_string(shard->first) + "/" + std::to_string(shard->second) +
                " is being run already");
  }
  return lock;
}

Result<Journal> Journal::OpenForAppend(const std::string& path) {
  MBX_ASSIGN_OR_RETURN(Journal j, Open(path));
  // A line torn by a power cut would glue itself to the next record: cut it.
  if (fs::IsFile(path)) {
    MBX_ASSIGN_OR_RETURN(std::string text, fs::ReadFile(path));
    size_t keep = text.rfind('\n');
    keep = keep == std::string::npos ? 0 : keep + 1;
    if (keep != text.size()) {
      if (::truncate(path.c_str(), static_cast<off_t>(keep)) != 0)
        return Status::FromErrno("truncate the torn end of '" + path + "'", errno);
      MBX_ASSIGN_OR_RETURN(fs::Fd fd, fs::Open(path, O_WRONLY));
      MBX_RETURN_IF_ERROR(fs::FsyncFd(fd.get(), path));
    }
  }
  return j;
}

Result<Journal> Journal::Open(const std::string& path) {
  Journal j;
  j.path_ = path;
  if (fs::IsFile(path)) {
    MBX_ASSIGN_OR_RETURN(std::string text, fs::ReadFile(path));
    size_t pos = 0;
    while (pos < text.size()) {
      size_t nl = text.find('\n', pos);
      if (nl == std::string::npos) break;  // torn last line: that step did not finish
      std::string line = text.substr(pos, nl - pos);
      pos = nl + 1;
      size_t t1 = line.find('\t');
      if (t1 == std::string::npos) continue;
      size_t t2 = line.find('\t', t1 + 1);
      std::string step = line.substr(0, t1);
      std::string key =
          line.substr(t1 + 1, t2 == std::string::npos ? std::string::npos : t2 - t1 - 1);
      std::string detail = t2 == std::string::npos ? "" : line.substr(t2 + 1);
      auto it = std::find_if(j.order_.begin(), j.order_.end(),
                             [&](const auto& e) { return e.first == key; });
      if (it == j.order_.end()) {
        j.order_.emplace_back(key, step);
        j.details_.push_back(detail);
      } else {
        it->second = step;
        if (!detail.empty()) j.details_[static_cast<size_t>(it - j.order_.begin())] = detail;
      }
    }
  }
  return j;
}

std::string Journal::Step(const std::string& key) const {
  for (const auto& [k, s] : order_) {
    if (k == key) return s;
  }
  return "";
}

std::string Journal::Detail(const std::string& key) const {
  for (size_t i = 0; i < order_.size(); ++i) {
    if (order_[i].first == key) return details_[i];
  }
  return "";
}

Status Journal::Record(const std::string& key, const std::string& step, const std::string& detail) {
  return RecordAll({{key, step, detail}});
}

Status Journal::RecordAll(const std::vector<Entry>& entries) {
  if (entries.empty()) return Status::Ok();
  std::string text;
  for (const Entry& e : entries) text += e.step + "\t" + e.key + "\t" + e.detail + "\n";
  MBX_RETURN_IF_ERROR(AppendDurably(path_, text));
  for (const Entry& e : entries) {
    auto it =
        std::find_if(order_.begin(), order_.end(), [&](const auto& o) { return o.first == e.key; });
    if (it == order_.end()) {
      order_.emplace_back(e.key, e.step);
      details_.push_back(e.detail);
    } else {
      it->second = e.step;
    }
  }
  return Status::Ok();
}

int RecoverResult::ExitCode() const {
  for (const auto& u : users) {
    if (u.status == "failed") return 1;
  }
  return 0;
}

std::string RecoverResult::Summary() const {
  std::string out;
  char line[1024];
  std::map<std::string, size_t> by_status;
  uint64_t written = 0, dups = 0;
  for (const auto& u : users) {
    FolderCounts c = u.merge.Total();
    std::snprintf(line, sizeof line, "  %-16s %-18s %6llu read %6llu dup %6llu %s  %s\n",
                  u.alias.c_str(), u.status.c_str(), static_cast<unsigned long long>(c.read),
                  static_cast<unsigned long long>(c.duplicates),
                  static_cast<unsigned long long>(c.written), dry_run ? "to write" : "written",
                  u.error.c_str());
    out += line;
    written += c.written;
    dups += c.duplicates;
    by_status[u.status]++;
  }
  out += dry_run ? "DRY RUN: " : "";
  out += command + ": " + std::to_string(users.size()) + " users (";
  bool first = true;
  for (const auto& [status, n] : by_status) {
    out += (first ? "" : ", ") + std::to_string(n) + " " + status;
    first = false;
  }
  std::snprintf(line, sizeof line, "); %llu messages %s, %llu duplicates skipped; %.1f s\n",
                static_cast<unsigned long long>(written), dry_run ? "to write" : "written",
                static_cast<unsigned long long>(dups), seconds);
  out += line;
  if (!dry_run && !reconnect_file.empty()) {
    out += "Directory changes: " + reconnect_file + " (apply with ldifde -i -f or ldapmodify -f)\n";
  }
  return out;
}

std::string RecoverResult::ToJson() const {
  nlohmann::json j;
  j["command"] = command;
  j["dry_run"] = dry_run;
  j["reconnect_file"] = reconnect_file;
  j["seconds"] = seconds;
  j["shard"] =
      shard ? nlohmann::json(std::to_string(shard->first) + "/" + std::to_string(shard->second))
            : nlohmann::json(nullptr);
  j["users"] = nlohmann::json::array();
  for (const auto& u : users) {
    FolderCounts c = u.merge.Total();
    nlohmann::json o{{"alias", u.alias},
                     {"displayName", u.display_name},
                     {"status", u.status},
                     {"blank", u.blank},
                     {"original", u.original},
                     {"read", c.read},
                     {"selected", c.selected},
                     {"duplicates_skipped", c.duplicates},
                     {"written", c.written},
                     {"failed", c.failed},
                     {"bytes_written", c.bytes_written}};
    o["failures"] = nlohmann::json::array();
    for (const auto& f : u.merge.failures)
      o["failures"].push_back({{"message", f.origin}, {"reason", f.reason}});
    if (!u.error.empty()) o["error"] = u.error;
    j["users"].push_back(std::move(o));
  }
  j["exit_status"] = ExitCode();
  return j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

bool MergeMailbox(const Location& from, const Location& into, const MergeOptions& options,
                  const SourceOptions& source_options, bool dry_run, bool create_target, UserOutcome* out) {
  auto fail = [&](const Status& s, std::string_view what) {
    out->status = "failed";
    out->error = s.WithContext(what).message();
    return false;
  };
  SourceOptions sopts = source_options;
  sopts.pst_associated = sopts.pst_associated && into.kind == FormatKind::kPst;
  auto src = OpenSource(from, sopts);
  if (!src.ok()) return fail(src.status(), "source mailbox");
  std::unique_ptr<MailboxSink> sink;
  if (dry_run) {
    std::unique_ptr<MailboxSource> existing;
    if (fs::Exists(into.path)) {
      auto e = OpenSource(into);
      if (!e.ok()) return fail(e.status(), "target mailbox");
      existing = std::move(e).value();
    }
    sink = NewDryRunSink(std::move(existing), into.ToString(), into.kind == FormatKind::kMbox);
  } else {
    SinkOptions sopt;
    sopt.create = create_target;
    sopt.replace_mode = options.mode == MergeMode::kReplace || options.mode == MergeMode::kReplaceNewer;
    auto s = OpenSink(into, sopt);
    if (!s.ok()) return fail(s.status(), "target mailbox");
    sink = std::move(s).value();
  }
  MergeOptions mopt = options;
  mopt.dry_run = dry_run;
  mopt.dedupe_form = DedupeFormFor(into.kind);
  std::vector<MailboxSource*> sources{src->get()};
  out->merge = RunMerge(sources, sink.get(), mopt);
  out->merged = true;
  if (out->merge.ExitCode() != 0) {
    out->status = "failed";
    out->error = !out->merge.fatal.empty()
                     ? out->merge.fatal
                     : std::to_string(out->merge.Total().failed) +
                           " messages could not be merged; the source is kept";
    return false;
  }
  return true;
}

Result<RecoverResult> Recover(const Store& store, const RecoverOptions& opt) {
  auto t0 = std::chrono::steady_clock::now();
  MBX_ASSIGN_OR_RETURN(auto users, SelectUsers(store, opt.filter));
  RecoverResult result;
  result.dry_run = opt.dry_run;
  result.reconnect_file = store.dir() + "/reconnect.ldif";

  result.shard = opt.filter.shard;
  std::optional<StoreLock> lock;
  std::optional<Journal> journal;
  std::map<std::string, std::string> steps;  // alias -> furthest step in any journal
  if (!opt.dry_run) {
    MBX_ASSIGN_OR_RETURN(auto l, LockStore(store, opt.filter.shard));
    lock.emplace(std::move(l));
    MBX_ASSIGN_OR_RETURN(auto j,
                         Journal::OpenForAppend(RunStateDir(store, opt.filter.shard) + "/recover.journal"));
    journal.emplace(std::move(j));
    // Rewrite the change file from the journals: whatever a killed run appended
    // after its last journaled step is dropped here and appended again below.
    MBX_ASSIGN_OR_RETURN(fs::Fd guard, LockReconnect(store));
    MBX_ASSIGN_OR_RETURN(steps, FurthestSteps(store));
    std::string text = kReconnectHeader;
    for (const auto& u : store.users()) {
      auto it = steps.find(u.alias);
      if (it != steps.end() && StepRank(it->second) >= StepRank("reconnected") && u.object_guid)
        text += ReconnectRecord(u);
    }
    MBX_RETURN_IF_ERROR(fs::AtomicWriteFile(result.reconnect_file, text));
    MBX_CRASH_POINT("recover.after-ldif-rewrite");
  }

  // Pass 1: what each selected user needs, in order.
  struct Work {
    const User* u = nullptr;
    UserOutcome out;
    std::string step;
    const StoreMailbox* blank = nullptr;
    std::string skip_status, fail;  // decided without merging
    std::optional<Location> from, into;
  };
  std::vector<Work> work;
  std::vector<DiagnoseRow> rows = Diagnose(store, /*count=*/false);
  for (const User* u : users) {
    const DiagnoseRow* row = nullptr;
    for (const auto& r : rows) {
      if (r.user == u) row = &r;
    }
    Work w;
    w.u = u;
    w.step = steps.count(u->alias) ? steps[u->alias] : "";
    if (w.step.empty() && (!row || row->state != State::kBlankConnected)) continue;
    w.out.alias = u->alias;
    w.out.display_name = u->display_name;
    w.out.blank = u->mailbox_guid ? u->mailbox_guid->ToString() : "";
    w.out.original = u->object_guid ? u->object_guid->ToString() : "";
    w.blank = store.FindMailbox(*u->mailbox_guid);
    const StoreMailbox* original = store.FindMailbox(*u->object_guid);
    if (w.step == "retired") {
      w.skip_status = "already-recovered";
    } else if (!original) {
      w.fail = "original mailbox " + w.out.original + " is gone from mailboxes/";
    } else if (w.step.empty() || w.step == "started") {
      if (!w.blank) {
        w.fail = "blank mailbox " + w.out.blank + " is gone from mailboxes/";
      } else {
        auto src_loc = ParseLocation(w.blank->path, false);
        auto dst_loc = ParseLocation(original->path, false);
        if (!src_loc.ok() || !dst_loc.ok()) {
          w.fail = (!src_loc.ok() ? src_loc.status() : dst_loc.status()).message();
        } else {
          w.from = *src_loc;
          w.into = *dst_loc;
        }
      }
    }
    work.push_back(std::move(w));
  }

  // Pass 2: the merges (step 1), several mailboxes at a time when --jobs
  // allows; everything after them stays in user order on this thread, so
  // reconnect.ldif, the journal and the report do not depend on timing.
  MergeOptions mopt = opt.merge;
  // A resumed run relies on dedupe to write nothing twice.
  if (mopt.mode == MergeMode::kCopy) mopt.mode = MergeMode::kMerge;
  if (mopt.dedupe == DedupeRule::kNone) mopt.dedupe = DedupeRule::kAuto;
  std::mutex say_mu;
  auto say = [&](const std::string& line) {
    std::lock_guard<std::mutex> g(say_mu);
    if (opt.say) opt.say(line);
  };
  auto merge_one = [&](Work& w, const MergeOptions& o) {
    say(w.u->alias + ": merging " + w.blank->path + " into " + w.into->path);
    return MergeMailbox(*w.from, *w.into, o, opt.source, opt.dry_run, /*create_target=*/false, &w.out);
  };
  MailboxMerges merges(work.size(), opt.merge.jobs, mopt);
  for (size_t i = 0; i < work.size(); ++i) {
    if (work[i].from) merges.Add(i, [&, i](const MergeOptions& o) { return merge_one(work[i], o); });
  }
  merges.Start();

  // Pass 3: steps 2 and 3, in user order, a group of users at a time: the
  // next user (waiting for its merge) and every user after it whose merge has
  // finished meanwhile go through each step together, with one durable
  // append per step for the whole group instead of seven fsyncs per user.
  // With --jobs 2 and small mailboxes those fsyncs on this one thread were
  // what the run waited for (1,000 of them for 100 users).
  for (size_t wi = 0; wi < work.size();) {
    std::vector<Work*> group;  // in user order; each ends with an outcome
    std::vector<Work*> fresh;  // merged just now: not yet journaled
    size_t end = wi;
    for (; end < work.size(); ++end) {
      Work& w = work[end];
      if (end > wi && w.from && !merges.Finished(end)) break;
      group.push_back(&w);
      if (!w.skip_status.empty() || !w.fail.empty() || !w.from) continue;
      if (!merges.Wait(end)) continue;  // failed: MergeMailbox set its outcome's status
      if (opt.dry_run) {
        w.out.status = "planned";
      } else {
        fresh.push_back(&w);
      }
    }
    wi = end;
    // Merged just now: journaled as merged together with the reconnection
    // below, in one durable append rather than two. A run killed before that
    // append merges these users again, which writes nothing (dedupe), and
    // then appends their change records again (the start of every run
    // rewrites reconnect.ldif from the journals).
    std::vector<Journal::Entry> merged;
    for (size_t k = 0; k < fresh.size(); ++k) MBX_CRASH_POINT("recover.after-merge");  // per user
    for (Work* w : fresh) {
      merged.push_back({w->u->alias, "merged", w->out.blank});
      w->step = "merged";
    }
    auto at_step = [&](std::string_view step) {
      std::vector<Work*> out;
      for (Work* w : group) {
        if (w->skip_status.empty() && w->fail.empty() && w->out.status.empty() && w->step == step)
          out.push_back(w);
      }
      return out;
    };
    // Step 2: the directory change.
    if (auto users = at_step("merged"); !users.empty()) {
      // Append and journal under the flock: a run starting meanwhile must not
      // rewrite the file between the two and drop a change of a live shard.
      MBX_ASSIGN_OR_RETURN(fs::Fd guard, LockReconnect(store));
      MBX_ASSIGN_OR_RETURN(fs::Fd ldif,
                           fs::Open(result.reconnect_file, O_WRONLY | O_CREAT | O_APPEND, 0644));
      std::vector<Journal::Entry> reconnected = std::move(merged);
      for (Work* w : users) {
        // Each record in two writes, so that a crash point can tear it as a power cut may.
        std::string record = ReconnectRecord(*w->u);
        std::string_view r = record;
        MBX_RETURN_IF_ERROR(
            fs::WriteAll(ldif.get(), r.substr(0, r.size() / 2), result.reconnect_file));
        MBX_CRASH_POINT("recover.ldif.mid-append");
        MBX_RETURN_IF_ERROR(
            fs::WriteAll(ldif.get(), r.substr(r.size() / 2), result.reconnect_file));
        reconnected.push_back({w->u->alias, "reconnected", ""});
      }
      MBX_RETURN_IF_ERROR(fs::FsyncFd(ldif.get(), result.reconnect_file));
      MBX_CRASH_POINT("recover.ldif.after-append");
      if (Status s = journal->RecordAll(reconnected); !s.ok()) return s;
      MBX_CRASH_POINT("recover.after-journal-reconnected");
      for (Work* w : users) w->step = "reconnected";
    }
    // Step 3: retire the blank mailboxes (moved, never deleted).
    if (auto users = at_step("reconnected"); !users.empty()) {
      bool moved = false;
      std::vector<Journal::Entry> retired;
      for (Work* w : users) {
        if (const StoreMailbox* blank = w->blank) {
          if (!moved) MBX_RETURN_IF_ERROR(fs::MakeDirs(store.RetiredDir()));
          std::string to = store.RetiredDir() + "/" + fs::Basename(blank->path);
          if (fs::Exists(to))
            return Status::IOError("cannot retire '" + blank->path + "': '" + to + "' exists");
          MBX_CRASH_POINT("recover.retire.before-rename");
          if (::rename(blank->path.c_str(), to.c_str()) != 0) {
            return Status::FromErrno("rename '" + blank->path + "' to '" + to + "'", errno);
          }
          MBX_CRASH_POINT("recover.retire.after-rename");
          moved = true;
        }
        retired.push_back({w->u->alias, "retired", ""});
      }
      if (moved) {
        MBX_RETURN_IF_ERROR(fs::FsyncDir(store.RetiredDir()));
        MBX_RETURN_IF_ERROR(fs::FsyncDir(store.MailboxesDir()));
      }
      if (Status s = journal->RecordAll(retired); !s.ok()) return s;
      for (size_t k = 0; k < users.size(); ++k) MBX_CRASH_POINT("recover.after-journal-retired");
      for (Work* w : users) w->step = "retired";
    }
    // Outcomes in user order: recovered, planned, failed (by its merge or
    // before it), or skipped.
    for (Work* w : group) {
      if (!w->skip_status.empty()) {
        w->out.status = w->skip_status;
        result.users.push_back(std::move(w->out));
      } else if (!w->fail.empty()) {
        result.AddFailed(std::move(w->out), w->fail);
      } else {
        if (w->out.status.empty()) w->out.status = "recovered";
        result.users.push_back(std::move(w->out));
      }
    }
  }
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return result;
}

}  // namespace mbx::recovery
