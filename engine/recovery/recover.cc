#include "engine/recovery/recover.h"

#include <fcntl.h>
#include <strings.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "engine/log.h"
#include "engine/recovery/diagnose.h"
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

Result<fs::MailboxLock> LockStore(const Store& store) {
  MBX_RETURN_IF_ERROR(fs::MakeDirs(store.StateDir()));
  std::string path = store.StateDir() + "/lock";
  MBX_ASSIGN_OR_RETURN(fs::Fd fd, fs::Open(path, O_RDWR | O_CREAT, 0644));
  auto lock = fs::MailboxLock::Acquire(path, fd.get());
  if (!lock.ok()) {
    return Status::Busy("store '" + store.dir() + "' is in use by another mbxmerge run (" +
                        lock.status().message() + ")");
  }
  fd.Release();  // the lock owns the descriptor now; closing it would drop the fcntl lock
  return lock;
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
  MBX_RETURN_IF_ERROR(AppendDurably(path_, step + "\t" + key + "\t" + detail + "\n"));
  auto it =
      std::find_if(order_.begin(), order_.end(), [&](const auto& e) { return e.first == key; });
  if (it == order_.end()) {
    order_.emplace_back(key, step);
    details_.push_back(detail);
  } else {
    it->second = step;
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
                  bool dry_run, bool create_target, UserOutcome* out) {
  auto fail = [&](const Status& s, std::string_view what) {
    out->status = "failed";
    out->error = s.WithContext(what).message();
    return false;
  };
  auto src = OpenSource(from);
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

  std::optional<fs::MailboxLock> lock;
  std::optional<Journal> journal;
  if (!opt.dry_run) {
    MBX_ASSIGN_OR_RETURN(auto l, LockStore(store));
    lock.emplace(std::move(l));
    MBX_ASSIGN_OR_RETURN(auto j, Journal::Open(store.StateDir() + "/recover.journal"));
    journal.emplace(std::move(j));
    // Rewrite the change file from the journal: whatever a killed run appended
    // after its last journaled step is dropped here and appended again below.
    std::string text = kReconnectHeader;
    for (const auto& [alias, step] : journal->Entries()) {
      if (step != "reconnected" && step != "retired") continue;
      if (const User* u = store.FindUserByAlias(alias); u && u->object_guid)
        text += ReconnectRecord(*u);
    }
    MBX_RETURN_IF_ERROR(fs::AtomicWriteFile(result.reconnect_file, text));
  }

  std::vector<DiagnoseRow> rows = Diagnose(store, /*count=*/false);
  for (const User* u : users) {
    const DiagnoseRow* row = nullptr;
    for (const auto& r : rows) {
      if (r.user == u) row = &r;
    }
    std::string step = journal ? journal->Step(u->alias) : "";
    bool in_progress = !step.empty();
    if (!in_progress && (!row || row->state != State::kBlankConnected)) continue;

    UserOutcome out;
    out.alias = u->alias;
    out.display_name = u->display_name;
    out.blank = u->mailbox_guid ? u->mailbox_guid->ToString() : "";
    out.original = u->object_guid ? u->object_guid->ToString() : "";
    if (step == "retired") {
      out.status = "already-recovered";
      result.users.push_back(std::move(out));
      continue;
    }
    const StoreMailbox* blank = store.FindMailbox(*u->mailbox_guid);
    const StoreMailbox* original = store.FindMailbox(*u->object_guid);
    if (!original) {
      result.AddFailed(std::move(out),
                       "original mailbox " + out.original + " is gone from mailboxes/");
      continue;
    }
    // Step 1: merge the blank mailbox into the original one.
    if (step.empty() || step == "started") {
      if (!blank) {
        result.AddFailed(std::move(out), "blank mailbox " + out.blank + " is gone from mailboxes/");
        continue;
      }
      if (opt.say) opt.say(u->alias + ": merging " + blank->path + " into " + original->path);
      auto src_loc = ParseLocation(blank->path, false);
      auto dst_loc = ParseLocation(original->path, false);
      if (!src_loc.ok() || !dst_loc.ok()) {
        result.AddFailed(std::move(out),
                         (!src_loc.ok() ? src_loc.status() : dst_loc.status()).message());
        continue;
      }
      MergeOptions mopt = opt.merge;
      // ExMerge's import methods apply to the store commands too (--mode).
      mopt.mode = opt.merge.mode;
      // A resumed run relies on dedupe to write nothing twice.
      if (mopt.mode == MergeMode::kCopy) mopt.mode = MergeMode::kMerge;
      // A resumed run relies on dedupe to write nothing twice.
      if (mopt.mode == MergeMode::kCopy) mopt.mode = MergeMode::kMerge;
      if (mopt.dedupe == DedupeRule::kNone) mopt.dedupe = DedupeRule::kAuto;
      if (!MergeMailbox(*src_loc, *dst_loc, mopt, opt.dry_run, /*create_target=*/false, &out)) {
        result.users.push_back(std::move(out));
        continue;
      }
      if (opt.dry_run) {
        out.status = "planned";
        result.users.push_back(std::move(out));
        continue;
      }
      if (Status s = journal->Record(u->alias, "merged", out.blank); !s.ok()) return s;
      step = "merged";
    }
    // Step 2: the directory change.
    if (step == "merged") {
      if (Status s = AppendDurably(result.reconnect_file, ReconnectRecord(*u)); !s.ok()) return s;
      if (Status s = journal->Record(u->alias, "reconnected"); !s.ok()) return s;
      step = "reconnected";
    }
    // Step 3: retire the blank mailbox (moved, never deleted).
    if (step == "reconnected") {
      if (blank) {
        MBX_RETURN_IF_ERROR(fs::MakeDirs(store.RetiredDir()));
        std::string to = store.RetiredDir() + "/" + fs::Basename(blank->path);
        if (fs::Exists(to))
          return Status::IOError("cannot retire '" + blank->path + "': '" + to + "' exists");
        if (::rename(blank->path.c_str(), to.c_str()) != 0) {
          return Status::FromErrno("rename '" + blank->path + "' to '" + to + "'", errno);
        }
        MBX_RETURN_IF_ERROR(fs::FsyncDir(store.RetiredDir()));
        MBX_RETURN_IF_ERROR(fs::FsyncDir(store.MailboxesDir()));
      }
      if (Status s = journal->Record(u->alias, "retired"); !s.ok()) return s;
    }
    out.status = "recovered";
    result.users.push_back(std::move(out));
  }
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return result;
}

}  // namespace mbx::recovery
