#include "engine/recovery/bench.h"

#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "engine/fs.h"
#include "engine/progress.h"
#include "engine/recovery/recover.h"
#include "formats/registry.h"
#include "samples/synth.h"

namespace mbx::recovery {
namespace {

namespace stdfs = std::filesystem;
using Clock = std::chrono::steady_clock;

std::string Users(uint64_t n) { return std::to_string(n) + (n == 1 ? " user" : " users"); }

double SecondsSince(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

std::string Human(double bytes) {
  char buf[32];
  if (bytes < 10'000) {
    std::snprintf(buf, sizeof buf, "%.0f B", bytes);
  } else if (bytes < 10e6) {
    std::snprintf(buf, sizeof buf, "%.1f KB", bytes / 1e3);
  } else if (bytes < 10e9) {
    std::snprintf(buf, sizeof buf, "%.1f MB", bytes / 1e6);
  } else {
    std::snprintf(buf, sizeof buf, "%.2f GB", bytes / 1e9);
  }
  return buf;
}

// Peak memory of one stage. getrusage's ru_maxrss is the process's peak so
// far, which a later, smaller stage cannot show; writing "5" to
// /proc/self/clear_refs resets the kernel's peak (VmHWM) to the current RSS.
class PeakMeter {
 public:
  void Start() {
    std::ofstream f("/proc/self/clear_refs");
    f << "5";
    f.flush();
    reset_ = static_cast<bool>(f);
  }
  uint64_t Peak(std::string* source) const {
    if (reset_) {
      std::ifstream status("/proc/self/status");
      std::string line;
      while (std::getline(status, line)) {
        if (line.rfind("VmHWM:", 0) == 0) {
          *source = "VmHWM";
          return std::strtoull(line.c_str() + 6, nullptr, 10) * 1024;
        }
      }
    }
    struct rusage ru = {};
    ::getrusage(RUSAGE_SELF, &ru);
    *source = "ru_maxrss";
    return static_cast<uint64_t>(ru.ru_maxrss) * 1024;
  }

 private:
  bool reset_ = false;
};

// Times a stage and takes its peak memory.
class StageClock {
 public:
  explicit StageClock(std::string name) {
    stage_.name = std::move(name);
    meter_.Start();
    t0_ = Clock::now();
  }
  BenchStage Done(uint64_t messages, uint64_t bytes) {
    stage_.seconds = SecondsSince(t0_);
    stage_.messages = messages;
    stage_.bytes = bytes;
    stage_.peak_rss = meter_.Peak(&stage_.peak_rss_source);
    return stage_;
  }

 private:
  BenchStage stage_;
  PeakMeter meter_;
  Clock::time_point t0_;
};

// The scratch store: removed on every way out unless kept.
class Scratch {
 public:
  Scratch() = default;
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  ~Scratch() { Remove(); }
  void Remove() {
    if (keep_ || remove_.empty()) return;
    std::error_code ec;
    stdfs::remove_all(remove_, ec);
    if (recreate_) stdfs::create_directory(remove_, ec);
    remove_.clear();
  }
  Status Make(const std::string& dir) {
    if (dir.empty()) {
      const char* tmp = std::getenv("TMPDIR");
      std::string base = tmp && *tmp ? tmp : "/tmp";
      std::string pattern = base + "/mbxmerge-bench-XXXXXX";
      if (!::mkdtemp(pattern.data()))
        return Status::FromErrno("create a scratch directory in '" + base + "'", errno);
      remove_ = pattern;
      store_ = pattern + "/store";
      return Status::Ok();
    }
    std::error_code ec;
    if (stdfs::exists(dir, ec)) {
      if (!stdfs::is_directory(dir, ec))
        return Status::InvalidArgument("--dir '" + dir + "' is not a directory");
      if (!stdfs::is_empty(dir, ec))
        return Status::InvalidArgument("--dir '" + dir + "' is not empty");
      recreate_ = true;
    }
    remove_ = dir;
    store_ = dir;
    return Status::Ok();
  }
  void Keep() { keep_ = true; }
  const std::string& store() const { return store_; }

 private:
  std::string remove_, store_;
  bool recreate_ = false, keep_ = false;
};

std::string FormatOf(const std::string& path) {
  auto loc = ParseLocation(path, false);
  if (!loc.ok()) return "maildir";
  switch (loc->kind) {
    case FormatKind::kMbox:
      return "mbox";
    case FormatKind::kEml:
    case FormatKind::kMboxDir:
      return "eml";
    case FormatKind::kPst:
      return "pst";
    default:
      return "maildir";
  }
}

// A PST bench store: the generator writes MIME formats only (it shares no
// code with the engine), so each generated Maildir becomes GUID.pst through
// our own PST writer.
Status ConvertToPst(const std::string& maildir, const MergeOptions& base) {
  MBX_ASSIGN_OR_RETURN(Location from, ParseLocation("maildir:" + maildir, false));
  MBX_ASSIGN_OR_RETURN(Location to, ParseLocation("pst:" + maildir + ".pst", true));
  MBX_ASSIGN_OR_RETURN(auto src, OpenSource(from));
  SinkOptions sopt;
  sopt.pst_backup = false;
  MBX_ASSIGN_OR_RETURN(auto sink, OpenSink(to, sopt));
  MergeOptions m;
  m.mode = MergeMode::kCopy;
  m.dedupe = DedupeRule::kNone;
  m.jobs = base.jobs;
  m.cancel = base.cancel;
  RunReport r = RunMerge({src.get()}, sink.get(), m);
  if (r.ExitCode() != 0) {
    return Status::IOError(
        "converting '" + maildir + "' to PST: " +
        (r.fatal.empty() ? std::to_string(r.Total().failed) + " messages failed" : r.fatal));
  }
  std::error_code ec;
  stdfs::remove_all(maildir, ec);
  if (ec) return Status::IOError("removing '" + maildir + "': " + ec.message());
  return Status::Ok();
}

// The X-Mbxgen-Id of a generated message: a header line, or the body's last
// line for a message without headers.
std::string MbxgenId(std::string_view msg) {
  static constexpr std::string_view kKey = "X-Mbxgen-Id: ";
  for (size_t pos = 0; (pos = msg.find(kKey, pos)) != std::string_view::npos; pos += kKey.size()) {
    if (pos != 0 && msg[pos - 1] != '\n') continue;
    size_t start = pos + kKey.size();
    size_t end = msg.find_first_of("\r\n", start);
    return std::string(
        msg.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start));
  }
  return "";
}

// Counts the generated ids in a mailbox; adds to `messages` and `bytes`.
Result<std::map<std::string, int>> CountIds(const std::string& path, uint64_t* messages,
                                            uint64_t* bytes) {
  MBX_ASSIGN_OR_RETURN(Location loc, ParseLocation(path, false));
  MBX_ASSIGN_OR_RETURN(auto src, OpenSource(loc));
  std::map<std::string, int> ids;
  Message m;
  for (;;) {
    MBX_ASSIGN_OR_RETURN(bool more, src->Next(&m));
    if (!more) break;
    ++*messages;
    if (m.read_error) {
      ids["(unreadable: " + m.origin + ")"]++;
      continue;
    }
    auto mime = m.Mime();  // a PST renders its message here
    if (!mime.ok()) {
      ids["(unreadable: " + m.origin + ")"]++;
      continue;
    }
    *bytes += mime->size();
    ids[MbxgenId(*mime)]++;
  }
  return ids;
}

// Message and byte counts of every mailbox diagnose counted, each once (an
// original shows in its user's row and in its own mailbox row).
std::pair<uint64_t, uint64_t> DiagnosedTotals(const std::vector<DiagnoseRow>& rows) {
  std::map<Guid, const MailboxSize*> sizes;
  for (const auto& r : rows) {
    if (r.mailbox && r.size.messages) sizes.emplace(*r.mailbox, &r.size);
    if (r.original && r.original_size.messages) sizes.emplace(*r.original, &r.original_size);
  }
  uint64_t m = 0, b = 0;
  for (const auto& [guid, s] : sizes) {
    m += *s->messages;
    b += s->bytes;
  }
  return {m, b};
}

Status Verify(const std::string& store_dir, const synth::StoreResult& gen, const RecoverResult& rec,
              BenchResult* out, uint64_t* messages, uint64_t* bytes) {
  MBX_ASSIGN_OR_RETURN(Store store, Store::Open(store_dir));
  std::map<std::string, std::vector<const synth::StoreMessage*>> by_alias;
  for (const auto& m : gen.messages) by_alias[m.alias].push_back(&m);
  std::map<std::string, std::string> outcome;
  for (const auto& u : rec.users) outcome[u.alias] = u.status;
  auto error = [&](std::string e) {
    if (out->verify_errors.size() < 20) out->verify_errors.push_back(std::move(e));
  };
  for (const auto& u : gen.users) {
    if (u.state != "blank-connected") continue;
    if (outcome[u.alias] != "recovered") {
      error(u.alias + ": recover says '" + outcome[u.alias] + "', not recovered");
      continue;
    }
    auto original = Guid::Parse(u.original);
    auto blank = Guid::Parse(u.connected);
    if (!original.ok() || !blank.ok()) {
      error(u.alias + ": bad GUID in the generator's manifest");
      continue;
    }
    if (store.FindMailbox(*blank)) error(u.alias + ": the blank mailbox is still under mailboxes/");
    const StoreMailbox* target = store.FindMailbox(*original);
    if (!target) {
      error(u.alias + ": the original mailbox " + u.original + " is gone");
      continue;
    }
    auto ids = CountIds(target->path, messages, bytes);
    if (!ids.ok()) {
      error(u.alias + ": " + ids.status().message());
      continue;
    }
    for (const auto* m : by_alias[u.alias]) {
      auto it = ids->find(m->id);
      int n = it == ids->end() ? 0 : it->second;
      if (n != 1)
        error(u.alias + ": message " + m->id + " is " + std::to_string(n) + " times in " +
              target->path);
      if (it != ids->end()) ids->erase(it);
    }
    for (const auto& [id, n] : *ids) {
      error(u.alias + ": " +
            (id.empty() ? std::string("a message without X-Mbxgen-Id") : "'" + id + "'") + " in " +
            target->path + " was not generated for this user");
    }
  }
  return Status::Ok();
}

}  // namespace

const BenchStage* BenchResult::Stage(std::string_view name) const {
  for (const auto& s : stages) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

uint64_t StoreWork::AvgMessageBytes() const {
  uint64_t m = merge_messages + scan_messages;
  return m == 0 ? 0 : (merge_bytes + scan_bytes) / m;
}

StoreWork MeasureWork(const Store& store, const std::vector<DiagnoseRow>& rows,
                      const std::vector<const User*>& selected) {
  StoreWork w;
  std::set<const User*> chosen(selected.begin(), selected.end());
  std::map<std::string, uint64_t> bytes_by_format;
  auto note = [&](const std::optional<Guid>& g, const MailboxSize& s) {
    const StoreMailbox* mb = g ? store.FindMailbox(*g) : nullptr;
    if (!mb) return;
    if (!s.messages) {
      w.unreadable.push_back(mb->path + (s.error.empty() ? "" : ": " + s.error));
      return;
    }
    bytes_by_format[FormatOf(mb->path)] += s.bytes + 1;  // +1: an empty mailbox still has a format
  };
  for (const auto& r : rows) {
    if (!r.user || r.state != State::kBlankConnected || !chosen.count(r.user)) continue;
    UserWork u;
    u.alias = r.user->alias;
    u.merge_messages = r.size.messages.value_or(0);
    u.merge_bytes = r.size.bytes;
    u.scan_messages = r.original_size.messages.value_or(0);
    u.scan_bytes = r.original_size.bytes;
    note(r.mailbox, r.size);
    note(r.original, r.original_size);
    w.merge_messages += u.merge_messages;
    w.merge_bytes += u.merge_bytes;
    w.scan_messages += u.scan_messages;
    w.scan_bytes += u.scan_bytes;
    w.users.push_back(std::move(u));
  }
  uint64_t best = 0;
  for (const auto& [format, b] : bytes_by_format) {
    if (b > best) {
      best = b;
      w.format = format;
    }
  }
  return w;
}

Status CheckBenchOptions(const BenchOptions& options) {
  if (options.format != "maildir" && options.format != "mbox" && options.format != "eml" &&
      options.format != "pst") {
    return Status::InvalidArgument("--format must be maildir, mbox, eml or pst, not '" +
                                   options.format + "'");
  }
  if (options.users < 3 || options.users > 100'000) {
    return Status::InvalidArgument(
        "--users must be between 3 and 100000 (a bench store has one ok, one missing "
        "and at least one blank-connected user), not " +
        std::to_string(options.users));
  }
  if (options.messages < 1 || options.messages > 100'000) {
    return Status::InvalidArgument("--messages must be between 1 and 100000, not " +
                                   std::to_string(options.messages));
  }
  if (options.avg_size < 300 || options.avg_size > (16u << 20)) {
    return Status::InvalidArgument("--size must be between 300 and 16777216 bytes, not " +
                                   std::to_string(options.avg_size));
  }
  if (!(options.dup_rate >= 0 && options.dup_rate <= 1)) {
    return Status::InvalidArgument("--dup-rate must be between 0 and 1");
  }
  return Status::Ok();
}

Result<BenchResult> RunBench(const BenchOptions& options) {
  BenchResult result;
  result.options = options;
  result.options.say = nullptr;
  result.options.merge.progress = nullptr;
  auto say = [&](const std::string& line) {
    if (options.say) options.say(line);
  };
  MBX_RETURN_IF_ERROR(CheckBenchOptions(options));
  synth::StoreFormats formats = options.format == "mbox"  ? synth::StoreFormats::kMbox
                                : options.format == "eml" ? synth::StoreFormats::kEml
                                                          : synth::StoreFormats::kMaildir;
  Scratch scratch;
  MBX_RETURN_IF_ERROR(scratch.Make(options.dir));
  if (options.keep) scratch.Keep();
  result.store = scratch.store();
  result.kept = options.keep;

  MergeOptions merge = options.merge;
  // The recover command's options as `recover` would build them; a bench
  // measures whole mailboxes, so no selection and no target folder.
  merge.dry_run = false;
  merge.selection = Selection();
  merge.target_folder.clear();
  merge.existing_target_folders.clear();
  merge.progress = nullptr;
  result.rates.format = options.format;
  result.rates.jobs = merge.jobs;
  result.rates.avg_message_bytes = options.avg_size;

  // Stage 1: the store.
  synth::StoreResult gen;
  {
    say("generating " + std::to_string(options.users) + " users x ~" +
        std::to_string(options.messages) + " " + options.format + " messages of ~" +
        std::to_string(options.avg_size) + " bytes in " + result.store);
    StageClock clock("generate");
    ProgressBar bar(options.progress_bars, 0, "generating");
    synth::StoreSpec spec;
    spec.out = result.store;
    spec.users = options.users;
    spec.messages = options.messages;
    spec.seed = options.seed;
    spec.avg_size = options.avg_size;
    spec.dup_rate = options.dup_rate;
    spec.formats = formats;
    // A PST item always has headers or properties to render them from; a
    // header-less MIME file is an artifact of Maildir and EML folders.
    spec.headerless = options.format != "pst";
    spec.progress = [&bar](uint64_t copies, uint64_t bytes) { bar.Update(copies, bytes); };
    std::string err = synth::WriteStore(spec, &gen);
    if (!err.empty()) return Status::IOError("generating the bench store: " + err);
    if (options.format == "pst") {
      for (const auto& u : gen.users) {
        for (const std::string* file : {&u.original_file, &u.connected_file}) {
          if (file->size() < 2 || file->back() != '/') continue;
          std::string dir = result.store + "/mailboxes/" + file->substr(0, file->size() - 1);
          if (!fs::IsDir(dir)) continue;  // an ok user's one mailbox, converted already
          MBX_RETURN_IF_ERROR(ConvertToPst(dir, merge));
        }
      }
    }
    bar.Finish();
    result.stages.push_back(clock.Done(gen.copies, gen.bytes));
  }
  result.users = options.users;
  result.mailboxes = gen.mailboxes;
  result.distinct_messages = gen.messages.size();
  result.copies = gen.copies;
  result.bytes = gen.bytes;

  // Stage 2: diagnose, as `mbxmerge diagnose` does it.
  MBX_ASSIGN_OR_RETURN(Store store, Store::Open(result.store));
  StoreWork work;
  {
    say("diagnosing the store (" + std::to_string(store.mailboxes().size()) + " mailboxes)");
    StageClock clock("diagnose");
    std::vector<DiagnoseRow> rows = Diagnose(store, /*count=*/true);
    auto [m, b] = DiagnosedTotals(rows);
    result.stages.push_back(clock.Done(m, b));
    std::vector<const User*> everyone;
    for (const auto& u : store.users()) everyone.push_back(&u);
    work = MeasureWork(store, rows, everyone);
  }

  // Stage 3: recover, as `mbxmerge recover` does it.
  RecoverResult recovered;
  {
    say("recovering " + std::to_string(work.users.size()) + " blank-connected " +
        (work.users.size() == 1 ? "user (" : "users (") + std::to_string(work.merge_messages) +
        " messages to merge, --jobs " + std::to_string(merge.jobs) + ")");
    StageClock clock("recover");
    ProgressBar bar(options.progress_bars, work.merge_bytes, "recovering");
    // Recover may merge several mailboxes at once, each counting from zero on
    // its own committer thread: add up each thread's steps.
    std::atomic<uint64_t> total_m{0}, total_b{0};
    RecoverOptions ropt;
    ropt.merge = merge;
    ropt.merge.progress = [&](uint64_t m, uint64_t b) {
      thread_local uint64_t last_m = 0, last_b = 0;
      if (m < last_m || b < last_b) last_m = last_b = 0;  // a new merge on this thread
      uint64_t now_m = total_m += m - last_m;
      uint64_t now_b = total_b += b - last_b;
      last_m = m;
      last_b = b;
      bar.Update(now_m, now_b);
    };
    MBX_ASSIGN_OR_RETURN(recovered, Recover(store, ropt));
    bar.Finish();
    uint64_t read = 0, read_bytes = 0;
    double merge_seconds = 0, scan_seconds = 0;
    for (const auto& u : recovered.users) {
      FolderCounts c = u.merge.Total();
      read += c.read;
      read_bytes += c.bytes_read;
      result.written += c.written;
      result.duplicates += c.duplicates;
      if (u.status == "recovered") ++result.recovered_users;
      scan_seconds += u.merge.seconds_scan_target;
      merge_seconds += u.merge.seconds_total - u.merge.seconds_scan_target;
    }
    BenchStage stage = clock.Done(read, read_bytes);
    // The stage's wall time, shared out between scanning and merging as the
    // merges' own timings split them. Merges of several mailboxes overlap and
    // each user has bookkeeping besides (journal, reconnect.ldif, retiring):
    // wall-clock rates carry both, as a real run of many users would.
    BenchRates& r = result.rates;
    r.users = work.users.size();
    r.seconds = stage.seconds;
    double busy = merge_seconds + scan_seconds;
    if (busy > 0 && merge_seconds > 0) {
      double wall = stage.seconds * merge_seconds / busy;
      r.merge_messages_per_s = static_cast<double>(work.merge_messages) / wall;
      r.merge_bytes_per_s = static_cast<double>(work.merge_bytes) / wall;
    }
    if (busy > 0 && scan_seconds > 0) {
      r.scan_bytes_per_s =
          static_cast<double>(work.scan_bytes) / (stage.seconds * scan_seconds / busy);
    }
    result.stages.push_back(stage);
  }

  // Stage 4: every distinct message in its original mailbox exactly once.
  {
    say("verifying the recovered mailboxes against the generator's manifest");
    StageClock clock("verify");
    uint64_t m = 0, b = 0;
    MBX_RETURN_IF_ERROR(Verify(result.store, gen, recovered, &result, &m, &b));
    result.verified = result.verify_errors.empty() && result.recovered_users == work.users.size();
    result.stages.push_back(clock.Done(m, b));
  }
  if (options.keep) {
    say("kept the store (recovered now) in " + result.store);
  } else {
    // Unlinking thousands of files that are on disk by now can take a while.
    say("removing the bench store");
    scratch.Remove();
  }
  return result;
}

Result<BenchRates> Calibrate(const StoreWork& work, const MergeOptions& merge,
                             const std::function<void(const std::string&)>& say) {
  BenchOptions o;
  o.format = work.format;
  uint64_t avg = work.AvgMessageBytes();
  o.avg_size = std::clamp<uint64_t>(avg == 0 ? 6000 : avg, 300, 4u << 20);
  // Eight users (five of them blank-connected, so that merges overlap as in
  // a real run) and about 24 MB: a few seconds.
  o.users = 8;
  o.messages = std::clamp<uint64_t>(24'000'000 / (o.users * o.avg_size), 20, 1000);
  o.merge = merge;
  o.say = [&](const std::string& line) {
    if (say) say("calibrating: " + line);
  };
  MBX_ASSIGN_OR_RETURN(BenchResult r, RunBench(o));
  if (!r.verified) {
    return Status::Corruption(
        "the calibration bench's recover did not verify: " +
        (r.verify_errors.empty() ? std::string("users failed") : r.verify_errors.front()));
  }
  return r.rates;
}

Projection Project(StoreWork work, const BenchRates& rates, std::string rates_from) {
  Projection p;
  p.rates = rates;
  p.rates_from = std::move(rates_from);
  for (const auto& u : work.users) {
    if (rates.scan_bytes_per_s > 0)
      p.seconds += static_cast<double>(u.scan_bytes) / rates.scan_bytes_per_s;
    if (rates.merge_bytes_per_s > 0)
      p.seconds += static_cast<double>(u.merge_bytes) / rates.merge_bytes_per_s;
  }
  p.work = std::move(work);
  return p;
}

std::string HumanDuration(double seconds) {
  char buf[64];
  if (seconds < 10) {
    std::snprintf(buf, sizeof buf, "%.1f s", seconds);
  } else if (seconds < 60) {
    std::snprintf(buf, sizeof buf, "%.0f s", seconds);
  } else if (seconds < 3600) {
    auto s = static_cast<long long>(seconds + 0.5);
    std::snprintf(buf, sizeof buf, "%lld min %02lld s", s / 60, s % 60);
  } else {
    auto m = static_cast<long long>(seconds / 60 + 0.5);
    std::snprintf(buf, sizeof buf, "%lld h %02lld min", m / 60, m % 60);
  }
  return buf;
}

std::string ProjectionText(const std::string& store_dir, const Projection& p) {
  const StoreWork& w = p.work;
  const BenchRates& r = p.rates;
  std::string out = "projected recover time for " + store_dir + ": ";
  if (w.users.empty()) {
    out += "0 s (no selected user is blank-connected: nothing to recover)\n";
  } else {
    char line[1024];
    std::snprintf(line, sizeof line,
                  "%s (%s; %llu messages, %s (%llu bytes) to merge from the blank mailboxes; "
                  "%llu messages, %s (%llu bytes) in the originals to scan for duplicates)\n",
                  HumanDuration(p.seconds).c_str(), Users(w.users.size()).c_str(),
                  static_cast<unsigned long long>(w.merge_messages),
                  Human(static_cast<double>(w.merge_bytes)).c_str(),
                  static_cast<unsigned long long>(w.merge_bytes),
                  static_cast<unsigned long long>(w.scan_messages),
                  Human(static_cast<double>(w.scan_bytes)).c_str(),
                  static_cast<unsigned long long>(w.scan_bytes));
    out += line;
    std::string scan =
        r.scan_bytes_per_s > 0 ? Human(r.scan_bytes_per_s) + "/s" : "too quick to tell";
    std::snprintf(line, sizeof line,
                  "  at %.0f msg/s / %s/s merging and %s scanning, measured on this machine by %s "
                  "(%s, ~%llu-byte messages, --jobs %d, %s in %.1f s)\n",
                  r.merge_messages_per_s, Human(r.merge_bytes_per_s).c_str(), scan.c_str(),
                  p.rates_from.c_str(), r.format.c_str(),
                  static_cast<unsigned long long>(r.avg_message_bytes), r.jobs,
                  Users(r.users).c_str(), r.seconds);
    out += line;
  }
  if (!w.unreadable.empty()) {
    out += "  not counted (diagnose could not read them): ";
    for (size_t i = 0; i < w.unreadable.size(); ++i) out += (i ? "; " : "") + w.unreadable[i];
    out += "\n";
  }
  return out;
}

std::string BenchTable(const BenchResult& r) {
  std::string out;
  char line[512];
  std::snprintf(line, sizeof line,
                "mbxmerge bench: %llu users, %llu mailboxes, %llu messages (%llu distinct), %s; "
                "%s, --jobs %d, "
                "seed %llu\n",
                static_cast<unsigned long long>(r.users),
                static_cast<unsigned long long>(r.mailboxes),
                static_cast<unsigned long long>(r.copies),
                static_cast<unsigned long long>(r.distinct_messages),
                Human(static_cast<double>(r.bytes)).c_str(), r.options.format.c_str(), r.rates.jobs,
                static_cast<unsigned long long>(r.options.seed));
  out += line;
  std::snprintf(line, sizeof line, "%-9s %9s %10s %10s %10s %9s %11s\n", "STAGE", "SECONDS",
                "MESSAGES", "MB", "MSG/S", "MB/S", "PEAK MEM");
  out += line;
  for (const auto& s : r.stages) {
    std::snprintf(line, sizeof line, "%-9s %9.2f %10llu %10.1f %10.0f %9.1f %11s%s\n",
                  s.name.c_str(), s.seconds, static_cast<unsigned long long>(s.messages),
                  static_cast<double>(s.bytes) / 1e6, s.MessagesPerSecond(),
                  s.BytesPerSecond() / 1e6, Human(static_cast<double>(s.peak_rss)).c_str(),
                  s.peak_rss_source == "VmHWM" ? "" : " *");
    out += line;
  }
  const BenchRates& k = r.rates;
  std::string scan =
      k.scan_bytes_per_s > 0 ? Human(k.scan_bytes_per_s) + "/s" : "too quick to tell";
  std::snprintf(line, sizeof line,
                "recover: %s, %llu messages written, %llu duplicates skipped; merging %.0f "
                "msg/s, %s/s; scanning the originals %s\n",
                Users(r.recovered_users).c_str(), static_cast<unsigned long long>(r.written),
                static_cast<unsigned long long>(r.duplicates), k.merge_messages_per_s,
                Human(k.merge_bytes_per_s).c_str(), scan.c_str());
  out += line;
  if (std::any_of(r.stages.begin(), r.stages.end(),
                  [](const BenchStage& s) { return s.peak_rss_source != "VmHWM"; }))
    out +=
        "* the process's peak so far (getrusage): the kernel did not let the bench reset it per "
        "stage\n";
  if (r.verified) {
    out += "verified: every distinct message of the " + Users(r.recovered_users) +
           " recovered is in the original mailbox exactly once\n";
  } else {
    out += "NOT VERIFIED: the recovered store differs from what was generated:\n";
    for (const auto& e : r.verify_errors) out += "  " + e + "\n";
  }
  if (r.kept) out += "store kept in " + r.store + "\n";
  return out;
}

std::string BenchJson(const BenchResult& r, const Projection* projection) {
  using nlohmann::json;
  json j;
  j["command"] = "bench";
  j["store"] = r.store;
  j["kept"] = r.kept;
  j["options"] = {{"users", r.options.users},   {"messages", r.options.messages},
                  {"size", r.options.avg_size}, {"dup_rate", r.options.dup_rate},
                  {"format", r.options.format}, {"seed", r.options.seed},
                  {"jobs", r.rates.jobs}};
  j["generated"] = {{"users", r.users},
                    {"mailboxes", r.mailboxes},
                    {"distinct_messages", r.distinct_messages},
                    {"messages", r.copies},
                    {"bytes", r.bytes}};
  j["stages"] = json::array();
  for (const auto& s : r.stages) {
    j["stages"].push_back({{"name", s.name},
                           {"seconds", s.seconds},
                           {"messages", s.messages},
                           {"bytes", s.bytes},
                           {"messages_per_s", s.MessagesPerSecond()},
                           {"mb_per_s", s.BytesPerSecond() / 1e6},
                           {"peak_rss_bytes", s.peak_rss},
                           {"peak_rss_source", s.peak_rss_source}});
  }
  j["recover"] = {
      {"users", r.recovered_users}, {"written", r.written}, {"duplicates_skipped", r.duplicates}};
  auto rates = [](const BenchRates& k) {
    return json{{"format", k.format},
                {"jobs", k.jobs},
                {"avg_message_bytes", k.avg_message_bytes},
                {"users", k.users},
                {"seconds", k.seconds},
                {"merge_messages_per_s", k.merge_messages_per_s},
                {"merge_bytes_per_s", k.merge_bytes_per_s},
                {"scan_bytes_per_s", k.scan_bytes_per_s}};
  };
  j["rates"] = rates(r.rates);
  j["verified"] = r.verified;
  j["verify_errors"] = r.verify_errors;
  if (projection) {
    const StoreWork& w = projection->work;
    json users = json::array();
    for (const auto& u : w.users) {
      users.push_back({{"alias", u.alias},
                       {"merge_messages", u.merge_messages},
                       {"merge_bytes", u.merge_bytes},
                       {"scan_messages", u.scan_messages},
                       {"scan_bytes", u.scan_bytes}});
    }
    j["projection"] = {{"seconds", projection->seconds},
                       {"users", users},
                       {"merge_messages", w.merge_messages},
                       {"merge_bytes", w.merge_bytes},
                       {"scan_messages", w.scan_messages},
                       {"scan_bytes", w.scan_bytes},
                       {"format", w.format},
                       {"unreadable", w.unreadable},
                       {"rates_from", projection->rates_from},
                       {"rates", rates(projection->rates)}};
  }
  return j.dump(2, ' ', false, json::error_handler_t::replace) + "\n";
}

}  // namespace mbx::recovery
