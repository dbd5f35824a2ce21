// mbxmerge command line: parse flags, open mailboxes, call the engine, print.
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <limits.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <functional>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "engine/fs.h"
#include "engine/log.h"
#include "engine/merge.h"
#include "engine/progress.h"
#include "engine/recovery/bench.h"
#include "engine/recovery/diagnose.h"
#include "engine/recovery/recover.h"
#include "engine/report_merge.h"
#include "formats/maildir/maildir.h"
#include "formats/pst/check/check.h"
#include "formats/registry.h"

namespace {

using mbx::Status;

constexpr int kExitOk = 0;
constexpr int kExitUsage = 2;
constexpr int kExitFatal = 3;

std::atomic<bool> g_cancel{false};

void OnSignal(int) {
  if (g_cancel.exchange(true)) _exit(130);  // second Ctrl-C: stop now
}

int Fail(int code, const std::string& msg) {
  std::fprintf(stderr, "mbxmerge: error: %s\n", msg.c_str());
  return code;
}

int ExitFor(const Status& s) {
  return s.code() == Status::Code::kInvalidArgument || s.code() == Status::Code::kNotFound ||
                 s.code() == Status::Code::kCorruption || s.code() == Status::Code::kUnsupported
             ? kExitUsage
             : kExitFatal;
}

std::string HumanBytes(uint64_t b) {
  char buf[32];
  if (b < 10'000) {
    std::snprintf(buf, sizeof buf, "%llu B", static_cast<unsigned long long>(b));
  } else if (b < 10'000'000) {
    std::snprintf(buf, sizeof buf, "%.1f KB", static_cast<double>(b) / 1e3);
  } else if (b < 10'000'000'000ULL) {
    std::snprintf(buf, sizeof buf, "%.1f MB", static_cast<double>(b) / 1e6);
  } else {
    std::snprintf(buf, sizeof buf, "%.2f GB", static_cast<double>(b) / 1e9);
  }
  return buf;
}

struct MergeArgs {
  std::vector<std::string> from;
  std::string into;
  std::string mode = "merge";
  std::string dedupe = "auto";
  std::string dedupe_scope = "folder";
  std::string since, until;
  std::vector<std::string> folders, exclude_folders, subjects, attachments;
  std::string target_folder;
  std::string date_field = "delivered";
  int jobs = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  bool dry_run = false;
  bool no_hardlinks = false;
  std::string pst_encoding = "none";
  bool no_backup = false;
  bool associated = false, recover_deleted = false;  // PST/OST sources
  size_t batch = 1000;
  std::string report, log_file, log_level = "info";
  bool quiet = false;
};

struct ListArgs {
  std::string source;
  bool json = false;
};

struct CheckArgs {
  std::string file;
  bool json = false, dump = false, mask = false;
};

// Total bytes of the sources for the progress bar (files: their size;
// directories: the folder listing's byte counts).
uint64_t EstimateBytes(const std::vector<std::unique_ptr<mbx::MailboxSource>>& sources,
                       const std::vector<mbx::Location>& locs) {
  uint64_t total = 0;
  for (size_t i = 0; i < locs.size(); ++i) {
    struct stat st;
    if (locs[i].kind == mbx::FormatKind::kMbox && ::stat(locs[i].path.c_str(), &st) == 0) {
      total += static_cast<uint64_t>(st.st_size);
      continue;
    }
    auto folders = sources[i]->ListFolders();
    if (folders.ok()) {
      for (const auto& f : *folders) total += f.bytes;
    }
  }
  return total;
}

// Turns the merge flags into engine options; exit status 2 on a bad flag.
int BuildMergeOptions(const MergeArgs& a, mbx::MergeOptions& opt) {
  if (a.mode == "merge") {
    opt.mode = mbx::MergeMode::kMerge;
  } else if (a.mode == "copy") {
    opt.mode = mbx::MergeMode::kCopy;
  } else if (a.mode == "archive") {
    opt.mode = mbx::MergeMode::kArchive;
    if (a.dedupe == "none") return Fail(kExitUsage, "--mode archive needs dedupe (not --dedupe none)");
  } else if (a.mode == "replace" || a.mode == "replace-newer") {
    opt.mode = a.mode == "replace" ? mbx::MergeMode::kReplace : mbx::MergeMode::kReplaceNewer;
    if (a.dedupe == "none") return Fail(kExitUsage, "--mode " + a.mode + " needs dedupe (not --dedupe none)");
  } else {
    return Fail(kExitUsage,
                "--mode must be merge, copy, archive, replace or replace-newer, not '" + a.mode + "'");
  }
  if (a.dedupe == "auto") opt.dedupe = mbx::DedupeRule::kAuto;
  else if (a.dedupe == "content") opt.dedupe = mbx::DedupeRule::kContent;
  else if (a.dedupe == "message-id") opt.dedupe = mbx::DedupeRule::kMessageId;
  else if (a.dedupe == "search-key") opt.dedupe = mbx::DedupeRule::kSearchKey;
  else if (a.dedupe == "none") opt.dedupe = mbx::DedupeRule::kNone;
  else return Fail(kExitUsage, "--dedupe must be auto, content, message-id, search-key or none, not '" + a.dedupe + "'");
  if (a.dedupe_scope == "folder") opt.scope = mbx::DedupeScope::kFolder;
  else if (a.dedupe_scope == "mailbox") opt.scope = mbx::DedupeScope::kMailbox;
  else return Fail(kExitUsage, "--dedupe-scope must be folder or mailbox, not '" + a.dedupe_scope + "'");
  if (a.date_field == "sent") opt.selection.date_field = mbx::DateField::kSent;
  else if (a.date_field == "delivered") opt.selection.date_field = mbx::DateField::kDelivered;
  else if (a.date_field == "modified") opt.selection.date_field = mbx::DateField::kModified;
  else return Fail(kExitUsage, "--date-field must be sent, delivered or modified, not '" + a.date_field + "'");
  if (!a.since.empty()) {
    auto d = mbx::ParseUserDate(a.since, false);
    if (!d.ok()) return Fail(kExitUsage, "--since: " + d.status().message());
    opt.selection.since = *d;
  }
  if (!a.until.empty()) {
    auto d = mbx::ParseUserDate(a.until, true);
    if (!d.ok()) return Fail(kExitUsage, "--until: " + d.status().message());
    opt.selection.until = *d;
  }
  if (opt.selection.since && opt.selection.until && *opt.selection.since > *opt.selection.until) {
    return Fail(kExitUsage, "--since is after --until: nothing could be selected");
  }
  if (a.jobs < 1 || a.jobs > 256) return Fail(kExitUsage, "--jobs must be between 1 and 256");
  opt.selection.subjects = a.subjects;
  opt.selection.attachment_globs = a.attachments;
  opt.selection.folder_globs = a.folders;
  opt.selection.exclude_folder_globs = a.exclude_folders;
  opt.target_folder = a.target_folder;
  while (!opt.target_folder.empty() && opt.target_folder.back() == '/') opt.target_folder.pop_back();
  while (!opt.target_folder.empty() && opt.target_folder.front() == '/') opt.target_folder.erase(0, 1);
  opt.jobs = a.jobs;
  opt.dry_run = a.dry_run;
  opt.batch_messages = a.batch;
  opt.cancel = &g_cancel;

  return kExitOk;
}

int InitLogging(const MergeArgs& a) {
  auto level = mbx::log::ParseLevel(a.log_level);
  if (!level.ok()) return Fail(kExitUsage, level.status().message());
  if (Status s = mbx::log::Init(a.log_file, *level, a.quiet); !s.ok()) return Fail(kExitUsage, s.message());
  return kExitOk;
}

int RunMergeCommand(const MergeArgs& a) {
  mbx::MergeOptions opt;
  if (int rc = BuildMergeOptions(a, opt); rc != kExitOk) return rc;
  if (int rc = InitLogging(a); rc != kExitOk) return rc;
  // Sources.
  std::vector<mbx::Location> locs;
  std::vector<std::unique_ptr<mbx::MailboxSource>> sources;
  for (const auto& spec : a.from) {
    auto loc = mbx::ParseLocation(spec, /*for_target=*/false);
    if (!loc.ok()) return Fail(kExitUsage, "--from " + spec + ": " + loc.status().message());
    auto src = mbx::OpenSource(*loc, mbx::SourceOptions{a.associated, a.recover_deleted});
    if (!src.ok()) return Fail(kExitUsage,
                               "--from " + spec + ": " + src.status().message());
    if (opt.mode == mbx::MergeMode::kArchive && !(*src)->CanRemoveMessages()) {
      return Fail(kExitUsage, "--mode archive: --from " + spec + " is " + std::string(mbx::FormatName(loc->kind)) +
                                  ", which cannot have messages removed (a read-only format or location)");
    }
    locs.push_back(*loc);
    sources.push_back(std::move(src).value());
  }

  // Target.
  auto target = mbx::ParseLocation(a.into, /*for_target=*/true);
  if (!target.ok()) return Fail(kExitUsage, "--into " + a.into + ": " + target.status().message());
  // FAI items are folder settings (views, rules, forms), not mail: a MIME
  // mailbox has no place for them, and writing them as messages would show
  // them to the user.
  if (a.associated && target->kind != mbx::FormatKind::kPst) {
    return Fail(kExitUsage, "--associated: --into " + a.into + " is " + std::string(mbx::FormatName(target->kind)) +
                                ", which has no place for associated (FAI) contents; only a PST target takes them");
  }
  for (const auto& l : locs) {
    char a_real[PATH_MAX], b_real[PATH_MAX];
    if (target->exists && ::realpath(l.path.c_str(), a_real) && ::realpath(target->path.c_str(), b_real) &&
        std::string(a_real) == b_real) {
      return Fail(kExitUsage, "--into " + a.into + " is also a source: a mailbox cannot be merged into itself");
    }
  }
  std::unique_ptr<mbx::MailboxSource> existing;
  // A directory that is not a Maildir yet (empty, or left half-made by a killed
  // run) is a new target: the sink completes its layout.
  bool half_made = target->kind == mbx::FormatKind::kMaildir && !mbx::maildir::IsMaildir(target->path);
  if (target->exists && !half_made) {
    auto ex = mbx::OpenSource(*target);
    if (!ex.ok()) return Fail(kExitFatal, "--into " + a.into + ": " + ex.status().message());
    existing = std::move(ex).value();
    if (target->kind != mbx::FormatKind::kMbox) {
      auto folders = existing->ListFolders();
      if (!folders.ok()) return Fail(kExitFatal, "--into " + a.into + ": " + folders.status().message());
      for (const auto& f : *folders) opt.existing_target_folders.push_back(f.path);
      auto again = mbx::OpenSource(*target);  // ListFolders may have consumed it
      if (!again.ok()) return Fail(kExitFatal, "--into " + a.into + ": " + again.status().message());
      existing = std::move(again).value();
    }
  }
  // A PST keeps properties, not MIME bytes: compare in the form it renders.
  opt.dedupe_form = mbx::DedupeFormFor(target->kind);
  std::unique_ptr<mbx::MailboxSink> sink;
  if (a.dry_run) {
    sink = mbx::NewDryRunSink(std::move(existing), target->ToString(), target->kind == mbx::FormatKind::kMbox);
  } else {
    existing.reset();
    mbx::SinkOptions sopt;
    sopt.allow_hardlinks = !a.no_hardlinks;
    sopt.pst_compressible = a.pst_encoding == "compressible";
    sopt.pst_backup = !a.no_backup;
    sopt.replace_mode = opt.mode == mbx::MergeMode::kReplace || opt.mode == mbx::MergeMode::kReplaceNewer;
    auto s = mbx::OpenSink(*target, sopt);
    if (!s.ok()) return Fail(kExitFatal, "--into " + a.into + ": " + s.status().message());
    sink = std::move(s).value();
    if ((opt.mode == mbx::MergeMode::kReplace || opt.mode == mbx::MergeMode::kReplaceNewer) &&
        !sink->CanReplace()) {
      return Fail(kExitUsage, "--mode " + a.mode + ": --into " + a.into + " is " +
                                  std::string(mbx::FormatName(target->kind)) + ", which cannot replace messages");
    }
  }

  bool show_progress = !a.quiet && ::isatty(2);
  uint64_t total = show_progress ? EstimateBytes(sources, locs) : 0;
  if (show_progress) {
    // ListFolders may have advanced the sources: reopen them.
    for (size_t i = 0; i < locs.size(); ++i) {
      auto src = mbx::OpenSource(locs[i], mbx::SourceOptions{a.associated, a.recover_deleted});
      if (!src.ok()) return Fail(kExitUsage, "--from " + a.from[i] + ": " + src.status().message());
      sources[i] = std::move(src).value();
    }
  }
  mbx::ProgressBar bar(show_progress, total, a.dry_run ? "planning" : "merging");
  opt.progress = [&bar](uint64_t m, uint64_t b) { bar.Update(m, b); };

  struct sigaction sa = {};
  sa.sa_handler = OnSignal;
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);

  std::vector<mbx::MailboxSource*> raw;
  for (auto& s : sources) raw.push_back(s.get());
  mbx::log::Info("merge into " + target->ToString() + " from " + std::to_string(raw.size()) + " source(s)");
  mbx::RunReport report = mbx::RunMerge(raw, sink.get(), opt);
  bar.Finish();

  for (const auto& f : report.failures) mbx::log::Warn(f.origin + ": " + f.reason);
  if (!report.fatal.empty()) {
    mbx::log::Error(report.fatal);
    // Even with --quiet: a run that stopped must say why.
    if (a.quiet) std::fprintf(stderr, "mbxmerge: error: %s\n", report.fatal.c_str());
  }
  if (!a.quiet) std::fputs(report.Summary().c_str(), stdout);
  if (!a.report.empty()) {
    Status s = mbx::fs::AtomicWriteFile(a.report, report.ToJson());
    if (!s.ok()) {
      std::fprintf(stderr, "mbxmerge: error: writing the report: %s\n", s.message().c_str());
      return kExitFatal;
    }
  }
  mbx::log::Flush();
  return report.ExitCode();
}

int RunListCommand(const ListArgs& a) {
  auto loc = mbx::ParseLocation(a.source, /*for_target=*/false);
  if (!loc.ok()) return Fail(kExitUsage, a.source + ": " + loc.status().message());
  auto src = mbx::OpenSource(*loc);
  if (!src.ok()) return Fail(kExitUsage, a.source + ": " + src.status().message());
  auto folders = (*src)->ListFolders();
  if (!folders.ok()) return Fail(ExitFor(folders.status()), a.source + ": " + folders.status().message());
  if (a.json) {
    nlohmann::json j = nlohmann::json::array();
    for (const auto& f : *folders) {
      j.push_back({{"folder", f.path}, {"messages", f.messages}, {"bytes", f.bytes}});
    }
    std::cout << j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
    return kExitOk;
  }
  std::printf("%s\n", loc->ToString().c_str());
  std::printf("%-50s %10s %12s\n", "FOLDER", "MESSAGES", "SIZE");
  uint64_t total_m = 0, total_b = 0;
  for (const auto& f : *folders) {
    size_t depth = f.path.empty() ? 0 : static_cast<size_t>(std::count(f.path.begin(), f.path.end(), '/')) + 1;
    std::string name = f.path.empty() ? "(root)" : f.path.substr(f.path.rfind('/') == std::string::npos ? 0 : f.path.rfind('/') + 1);
    std::string shown = std::string(2 * depth, ' ') + name;
    std::printf("%-50s %10llu %12s\n", shown.c_str(), static_cast<unsigned long long>(f.messages),
                HumanBytes(f.bytes).c_str());
    total_m += f.messages;
    total_b += f.bytes;
  }
  std::printf("%-50s %10llu %12s\n", "TOTAL", static_cast<unsigned long long>(total_m), HumanBytes(total_b).c_str());
  return kExitOk;
}

// `check`: 0 clean, 1 violations found, 2 not a PST we can read.
int RunCheckCommand(const CheckArgs& a) {
  if (a.dump) {
    auto dump = mbx::pst::check::DumpStructure(a.file, a.mask);
    if (!dump.ok()) return Fail(kExitUsage, dump.status().message());
    std::fwrite(dump->data(), 1, dump->size(), stdout);
    return kExitOk;
  }
  auto report = mbx::pst::check::CheckPst(a.file);
  if (!report.ok()) return Fail(kExitUsage, report.status().message());
  const auto& r = *report;
  if (a.json) {
    nlohmann::json j = {{"file", a.file},       {"nodes", r.nodes},
                        {"blocks", r.blocks},   {"pages", r.pages},
                        {"folders", r.folders}, {"messages", r.messages},
                        {"notes", r.notes},     {"violations", nlohmann::json::array()}};
    for (const auto& v : r.violations)
      j["violations"].push_back({{"location", v.location}, {"message", v.message}});
    std::cout << j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
  } else {
    for (const auto& v : r.violations) {
      std::printf("%s: %s: %s\n", a.file.c_str(), v.location.c_str(), v.message.c_str());
    }
    for (const auto& n : r.notes) std::printf("%s: note: %s\n", a.file.c_str(), n.c_str());
    std::printf("%zu violation%s; %d nodes, %d blocks, %d folders, %d messages\n",
                r.violations.size(), r.violations.size() == 1 ? "" : "s", r.nodes, r.blocks,
                r.folders, r.messages);
  }
  return r.violations.empty() ? kExitOk : 1;
}

struct StoreArgs {
  std::string store;
  std::string mailboxes_file, range, shard;
  bool json = false;
};

void AddStoreFlags(CLI::App* cmd, StoreArgs& s) {
  cmd->add_option("--store", s.store, "The store: a directory with directory.ldif and mailboxes/")->required();
  cmd->add_option("--mailboxes", s.mailboxes_file, "Only the users named in FILE (alias or display name per line, # comments)");
  cmd->add_option("--range", s.range, "Only users whose display name is in FROM..TO (inclusive, any case), e.g. A..M");
  cmd->add_option("--shard", s.shard, "Only shard K of N (K/N), a stable partition by alias for N machines");
}

int OpenStore(const StoreArgs& a, mbx::recovery::Store* store, mbx::recovery::MailboxFilter* filter) {
  auto s = mbx::recovery::Store::Open(a.store);
  if (!s.ok()) return Fail(kExitUsage, s.status().message());
  *store = std::move(s).value();
  if (!a.mailboxes_file.empty()) {
    auto names = mbx::recovery::ReadMailboxList(a.mailboxes_file);
    if (!names.ok()) return Fail(kExitUsage, names.status().message());
    filter->names = *names;
  }
  if (!a.range.empty()) {
    auto r = mbx::recovery::ParseRange(a.range);
    if (!r.ok()) return Fail(kExitUsage, r.status().message());
    filter->range = *r;
  }
  if (!a.shard.empty()) {
    auto r = mbx::recovery::ParseShard(a.shard);
    if (!r.ok()) return Fail(kExitUsage, r.status().message());
    filter->shard = *r;
  }
  return kExitOk;
}

int RunDiagnoseCommand(const StoreArgs& a) {
  mbx::recovery::Store store;
  mbx::recovery::MailboxFilter filter;
  if (int rc = OpenStore(a, &store, &filter); rc != kExitOk) return rc;
  auto users = mbx::recovery::SelectUsers(store, filter);
  if (!users.ok()) return Fail(kExitUsage, users.status().message());
  bool filtered = !filter.names.empty() || filter.range || filter.shard;
  auto rows = mbx::recovery::Diagnose(store, /*count=*/true);
  if (filtered) {
    std::vector<mbx::recovery::DiagnoseRow> kept;
    for (auto& r : rows) {
      if (!r.user || std::find(users->begin(), users->end(), r.user) != users->end()) kept.push_back(std::move(r));
    }
    rows = std::move(kept);
  }
  std::fputs(a.json ? mbx::recovery::DiagnoseJson(rows).c_str() : mbx::recovery::DiagnoseTable(rows).c_str(),
             stdout);
  for (const auto& path : store.ignored()) {
    std::fprintf(stderr, "mbxmerge: warning: ignored '%s': not named GUID.pst, GUID.ost, GUID.mbox or GUID/, or a second mailbox for one GUID\n",
                 path.c_str());
  }
  return kExitOk;
}

// Runs recover, export or import: the common parsing, logging, signals and reporting.
int RunStoreCommand(const StoreArgs& sa, const MergeArgs& ma,
                    const std::function<mbx::Result<mbx::recovery::RecoverResult>(
                        const mbx::recovery::Store&, const mbx::MergeOptions&, const mbx::recovery::MailboxFilter&,
                        const std::function<void(const std::string&)>&)>& run) {
  mbx::MergeOptions merge;
  if (int rc = BuildMergeOptions(ma, merge); rc != kExitOk) return rc;
  if (int rc = InitLogging(ma); rc != kExitOk) return rc;
  mbx::recovery::Store store;
  mbx::recovery::MailboxFilter filter;
  if (int rc = OpenStore(sa, &store, &filter); rc != kExitOk) return rc;
  merge.cancel = &g_cancel;
  bool tty = !ma.quiet && ::isatty(2);
  auto say = [tty](const std::string& line) {
    mbx::log::Info(line);
    if (tty) std::fprintf(stderr, "%s\n", line.c_str());
  };
  struct sigaction sigs = {};
  sigs.sa_handler = OnSignal;
  ::sigaction(SIGINT, &sigs, nullptr);
  ::sigaction(SIGTERM, &sigs, nullptr);
  auto result = run(store, merge, filter, say);
  if (!result.ok()) {
    return Fail(result.status().code() == Status::Code::kBusy || result.status().code() == Status::Code::kIOError
                    ? kExitFatal
                    : kExitUsage,
                result.status().message());
  }
  for (const auto& u : result->users) {
    if (!u.error.empty()) mbx::log::Warn(u.alias + ": " + u.error);
    for (const auto& f : u.merge.failures) mbx::log::Warn(u.alias + ": " + f.origin + ": " + f.reason);
  }
  if (!ma.quiet) std::fputs(result->Summary().c_str(), stdout);
  if (!ma.report.empty()) {
    if (Status s = mbx::fs::AtomicWriteFile(ma.report, result->ToJson()); !s.ok()) {
      return Fail(kExitFatal, "writing the report: " + s.message());
    }
  }
  mbx::log::Flush();
  if (g_cancel.load()) return kExitFatal;
  return result->ExitCode();
}

// The projection after `recover --dry-run`: the selected users' diagnose
// counts at the rates of a short calibration bench. A dry run writes nothing,
// so its own speed says little about a real run; the calibration runs the
// real recover on a small generated store shaped like this one (its main
// mailbox format and average message size) in $TMPDIR. Never fails the run.
int PrintRecoverProjection(const StoreArgs& sa, const MergeArgs& ma) {
  mbx::recovery::Store store;
  mbx::recovery::MailboxFilter filter;
  if (int rc = OpenStore(sa, &store, &filter); rc != kExitOk) return rc;
  auto users = mbx::recovery::SelectUsers(store, filter);
  if (!users.ok()) return Fail(kExitUsage, users.status().message());
  auto rows = mbx::recovery::Diagnose(store, /*count=*/true);
  mbx::recovery::StoreWork work = mbx::recovery::MeasureWork(store, rows, *users);
  mbx::recovery::BenchRates rates;
  if (!work.users.empty()) {
    mbx::MergeOptions merge;
    if (int rc = BuildMergeOptions(ma, merge); rc != kExitOk) return rc;
    bool tty = ::isatty(2);
    if (tty) std::fprintf(stderr, "calibrating the projection: a short bench in $TMPDIR ...\n");
    auto calibrated = mbx::recovery::Calibrate(work, merge, [tty](const std::string& line) {
      if (tty) std::fprintf(stderr, "%s\n", line.c_str());
    });
    if (!calibrated.ok()) {
      std::fprintf(stderr, "mbxmerge: warning: no time projection: %s\n", calibrated.status().message().c_str());
      return kExitOk;
    }
    rates = *calibrated;
  }
  auto projection = mbx::recovery::Project(std::move(work), rates, "a calibration bench");
  std::fputs(mbx::recovery::ProjectionText(store.dir(), projection).c_str(), stdout);
  return kExitOk;
}

struct BenchArgs {
  uint64_t users = 20, messages = 500, size = 6000, seed = 1;
  double dup_rate = 0.4;
  std::string format = "maildir";
  int jobs = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  std::string store, dir;
  bool keep = false, json = false;
};

// `bench`: 0 measured and verified; 1 the recovered store did not verify;
// 2 bad arguments; 3 the bench could not run.
int RunBenchCommand(const BenchArgs& a, bool size_given, bool format_given) {
  mbx::recovery::BenchOptions opt;
  opt.users = a.users;
  opt.messages = a.messages;
  opt.avg_size = a.size;
  opt.dup_rate = a.dup_rate;
  opt.format = a.format;
  opt.seed = a.seed;
  opt.dir = a.dir;
  opt.keep = a.keep;
  opt.progress_bars = ::isatty(2);
  opt.say = [](const std::string& line) { std::fprintf(stderr, "bench: %s\n", line.c_str()); };
  // Refuse bad options before counting a possibly large store.
  if (Status s = mbx::recovery::CheckBenchOptions(opt); !s.ok()) return Fail(kExitUsage, s.message());
  MergeArgs ma;
  ma.jobs = a.jobs;
  if (int rc = BuildMergeOptions(ma, opt.merge); rc != kExitOk) return rc;
  std::optional<mbx::recovery::StoreWork> work;
  std::string store_dir;
  if (!a.store.empty()) {
    auto store = mbx::recovery::Store::Open(a.store);
    if (!store.ok()) return Fail(kExitUsage, "--store: " + store.status().message());
    std::fprintf(stderr, "bench: counting the messages of %s\n", store->dir().c_str());
    auto rows = mbx::recovery::Diagnose(*store, /*count=*/true);
    std::vector<const mbx::recovery::User*> everyone;
    for (const auto& u : store->users()) everyone.push_back(&u);
    work = mbx::recovery::MeasureWork(*store, rows, everyone);
    store_dir = store->dir();
    // Rates fit a store best when measured on mail like its own.
    if (!format_given) opt.format = work->format;
    if (!size_given && work->AvgMessageBytes() > 0)
      opt.avg_size = std::clamp<uint64_t>(work->AvgMessageBytes(), 300, 16u << 20);
  }
  struct sigaction sigs = {};
  sigs.sa_handler = OnSignal;
  ::sigaction(SIGINT, &sigs, nullptr);
  ::sigaction(SIGTERM, &sigs, nullptr);
  auto result = mbx::recovery::RunBench(opt);
  if (!result.ok()) return Fail(ExitFor(result.status()), result.status().message());
  std::optional<mbx::recovery::Projection> projection;
  if (work) projection = mbx::recovery::Project(std::move(*work), result->rates, "this bench");
  if (a.json) {
    std::fputs(mbx::recovery::BenchJson(*result, projection ? &*projection : nullptr).c_str(), stdout);
  } else {
    std::fputs(mbx::recovery::BenchTable(*result).c_str(), stdout);
    if (projection) std::fputs(mbx::recovery::ProjectionText(store_dir, *projection).c_str(), stdout);
  }
  if (g_cancel.load()) return kExitFatal;
  return result->verified ? kExitOk : 1;
}

int RunRecoverCommand(const StoreArgs& sa, const MergeArgs& ma) {
  int rc = RunStoreCommand(sa, ma, [&](const auto& store, const auto& merge, const auto& filter, const auto& say) {
    mbx::recovery::RecoverOptions opt;
    opt.merge = merge;
    opt.source = mbx::SourceOptions{ma.associated, ma.recover_deleted};
    opt.filter = filter;
    opt.dry_run = ma.dry_run;
    opt.say = say;
    return mbx::recovery::Recover(store, opt);
  });
  // The plan says what a real run would do; the projection, how long it would take.
  if (ma.dry_run && !ma.quiet && (rc == kExitOk || rc == 1) && !g_cancel.load()) PrintRecoverProjection(sa, ma);
  return rc;
}

int RunTransferCommand(const StoreArgs& sa, const MergeArgs& ma, const std::string& dir, const std::string& format,
                       bool is_export) {
  mbx::FormatKind kind = mbx::FormatKind::kBundle;
  if (format == "pst") kind = mbx::FormatKind::kPst;
  else if (format == "mbox") kind = mbx::FormatKind::kMbox;
  else if (format == "maildir") kind = mbx::FormatKind::kMaildir;
  else if (format != "mbxz") return Fail(kExitUsage, "--format must be mbxz, pst, mbox or maildir, not '" + format + "'");
  return RunStoreCommand(sa, ma, [&](const auto& store, const auto& merge, const auto& filter, const auto& say) {
    mbx::recovery::TransferOptions opt;
    opt.merge = merge;
    opt.source = mbx::SourceOptions{ma.associated, ma.recover_deleted};
    opt.filter = filter;
    opt.dir = dir;
    opt.format = kind;
    opt.dry_run = ma.dry_run;
    opt.say = say;
    return is_export ? mbx::recovery::Export(store, opt) : mbx::recovery::Import(store, opt);
  });
}

// `report --merge`: joins the shards' JSON reports; 0 all done, 1 some work
// failed or a shard is missing, 2 a bad or overlapping report.
struct ReportArgs {
  std::vector<std::string> merge;
  std::string out;
  bool quiet = false;
};

int RunReportCommand(const ReportArgs& a) {
  auto joined = mbx::MergeReports(a.merge);
  if (!joined.ok()) return Fail(ExitFor(joined.status()), joined.status().message());
  if (a.out.empty()) {
    std::fputs(joined->json.c_str(), stdout);
  } else {
    if (Status s = mbx::fs::AtomicWriteFile(a.out, joined->json); !s.ok()) {
      return Fail(kExitFatal, "writing the joined report: " + s.message());
    }
    if (!a.quiet) std::fputs(joined->summary.c_str(), stdout);
  }
  return joined->exit_code;
}

// The flags of every command that merges (merge, recover, import).
void AddMergeFlags(CLI::App* cmd, MergeArgs& m) {
  cmd->add_option("--mode", m.mode,
                  "ExMerge's import methods. merge: skip duplicates (default); copy: write everything;\n"
                  "archive: merge, then remove from the source what is durably in the target (an mbox or\n"
                  "PST source is rewritten without it, atomically); replace: a duplicate takes the place of\n"
                  "the target's copy; replace-newer: only when the source's copy was modified later")
      ->capture_default_str();
  cmd->add_option("--dedupe", m.dedupe, "auto | content | message-id (lossy) | search-key (MAPI PR_SEARCH_KEY, as ExMerge) | none;\nsee README 'Duplicates'")
      ->capture_default_str();
  cmd->add_option("--dedupe-scope", m.dedupe_scope,
                  "folder: a duplicate must be in the mapped target folder; mailbox: anywhere")
      ->capture_default_str();
  cmd->add_option("--since", m.since, "Only messages on or after DATE (YYYY-MM-DD[THH:MM:SS], UTC)");
  cmd->add_option("--until", m.until, "Only messages on or before DATE (a bare date includes that whole day)");
  cmd->add_option("--date-field", m.date_field, "Which date --since/--until test: sent | delivered | modified")
      ->capture_default_str();
  cmd->add_option("--folder", m.folders, "Only folders matching GLOB, e.g. 'Inbox/Projects*' (repeatable)");
  cmd->add_option("--exclude-folder", m.exclude_folders, "Skip folders matching GLOB (repeatable)");
  cmd->add_option("--subject", m.subjects, "Only messages whose subject contains TEXT, any case (repeatable: any)");
  cmd->add_option("--attachment", m.attachments, "Only messages with an attachment named GLOB (repeatable: any)");
  cmd->add_option("--target-folder", m.target_folder, "Put everything below this target folder");
  cmd->add_option("--jobs,-j", m.jobs,
                  "Parallel workers (default: one per CPU). 1 runs the whole merge on one "
                  "thread; the output is the same for every N")->capture_default_str();
  cmd->add_flag("--dry-run", m.dry_run, "Plan and count; write nothing");
  cmd->add_flag("--associated", m.associated,
                "PST/OST sources: also carry each folder's associated (FAI) contents (views, rules, forms)\n"
                "into PST targets (merge: the target must be a PST; store commands: PST mailboxes only)");
  cmd->add_flag("--recover-deleted", m.recover_deleted,
                "PST/OST sources: also carry the deleted and orphan messages libpff can recover, into a\n"
                "'Recovered Items' folder");
  cmd->add_flag("--no-hardlinks", m.no_hardlinks, "Always copy message files, never hard-link them");
  cmd->add_option("--pst-encoding", m.pst_encoding,
                  "How a new PST target encodes its data blocks: none (default) or compressible "
                  "(Outlook's permutation encoding)")
      ->check(CLI::IsMember({"none", "compressible"}));
  cmd->add_flag("--no-backup", m.no_backup,
                "Merging into an existing PST rewrites it; do not keep the previous file as FILE.pst.bak");
  cmd->add_option("--batch", m.batch, "Messages per durable batch (fsync, rename); smaller loses less work to a crash")
      ->capture_default_str()
      ->check(CLI::Range(size_t{1}, size_t{1000000}));
  cmd->add_option("--report", m.report, "Write a JSON report to FILE");
  cmd->add_option("--log", m.log_file, "Append a log to FILE");
  cmd->add_option("--log-level", m.log_level, "debug | info | warn | error | off")->capture_default_str();
  cmd->add_flag("--quiet,-q", m.quiet, "No progress bar and no summary");
}

}  // namespace

int main(int argc, char** argv) {
  // An mboxdir target keeps one mbox open per folder (a folder of PSTs can
  // have thousands): use all the file descriptors the hard limit allows.
  if (struct rlimit rl {}; ::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &rl);
  }
  CLI::App app{
      "mbxmerge: merge mailboxes with no duplicates and nothing lost.\n"
      "Mailbox locations: FILE.mbox or mbox:PATH (one mbox file), maildir:DIR (Maildir++),\n"
      "eml:DIR (a tree of .eml files), mboxdir:DIR (one mbox per folder, readpst's layout),\n"
      "pst:FILE (Outlook PST/OST), pstdir:DIR (a folder of PST/OST files, each under its own name;\n"
      "a source only), mbxz:FILE (mbxmerge's zstd bundle).\n"
      "An existing path is typed by what it is; a new --into path by suffix (.mbox, .mbxz) or else Maildir.\n"
      "Store commands (diagnose, recover, export, import) work on STORE/directory.ldif + STORE/mailboxes/.",
      "mbxmerge"};
  app.require_subcommand(1);
  // ExMerge kept its settings in ExMerge.ini: any option can come from a file,
  // top-level keys or a [merge] / [recover] / [export] / [import] section.
  app.set_config("--config", "", "Read options from an INI or TOML file (command-line flags win)");
  app.allow_config_extras(CLI::config_extras_mode::error);
  app.fallthrough();  // `mbxmerge recover --config run.ini` as well as `mbxmerge --config run.ini recover`
  app.set_version_flag("--version", "mbxmerge 0.1.0");

  MergeArgs m;
  auto* merge = app.add_subcommand("merge", "Merge messages from sources into a target mailbox");
  merge->add_option("--from", m.from, "Source mailbox (repeatable)")->required();
  merge->add_option("--into", m.into, "Target mailbox; created if it does not exist")->required();
  AddMergeFlags(merge, m);
  merge->footer(
      "Selection: (date range) AND (any --subject) AND (any --attachment) AND (folder filters).\n"
      "Exit status: 0 all done; 1 some messages could not be carried (see the summary, --log, --report);\n"
      "2 usage or configuration error; 3 fatal (target unusable).\n"
      "Example: mbxmerge merge --from blank.mbox --from maildir:/srv/old --into maildir:/srv/alice --report r.json");

  ListArgs l;
  auto* list = app.add_subcommand("list", "Show a mailbox's folder tree with message counts and sizes");
  list->add_option("source", l.source, "Mailbox location")->required();
  list->add_flag("--json", l.json, "Print JSON instead of a table");

  CheckArgs chk;
  auto* check = app.add_subcommand(
      "check", "Verify a PST file strictly against [MS-PST] (scanpst's job, read only)");
  check->add_option("file", chk.file, "PST file (Unicode, 512-byte pages)")->required();
  check->add_flag("--json", chk.json, "Print the report as JSON");
  check->add_flag("--dump", chk.dump,
                  "Print a canonical dump of every node (properties, tables) instead");
  check->add_flag("--mask-volatile", chk.mask,
                  "With --dump: print times, GUIDs, keys and entry IDs as <masked>");
  check->footer(
      "Checks the header, every B-tree page and block (CRCs, signatures, back-links, key order,\n"
      "entry limits), reference counts, the allocation maps, the NID/BID counters, every heap,\n"
      "property and table context, and the folder/table/message links.\n"
      "Each violation prints as FILE: location: message; notes (not violations) as FILE: note: ...\n"
      "Exit status: 0 no violations; 1 violations found; 2 unreadable or not a PST this reader\n"
      "supports (ANSI wVer 14/15, 4 KiB-page OST wVer 36).");

  StoreArgs diag_args;
  auto* diagnose = app.add_subcommand("diagnose", "Show the state of every user and disconnected mailbox of a store");
  AddStoreFlags(diagnose, diag_args);
  diagnose->add_flag("--json", diag_args.json, "Print a JSON array, one object per row");
  diagnose->footer(
      "States: ok, blank-connected (connected to a new mailbox while the original sits disconnected: recover it),\n"
      "missing (mailbox file absent), reconnect-pending (recovered, reconnect.ldif not applied yet),\n"
      "original / orphan / legacy (disconnected mailboxes: a user's original, nobody's, a Free/Busy system mailbox).");

  StoreArgs rec_store;
  MergeArgs rec_merge;
  auto* recover = app.add_subcommand("recover", "Merge each blank-connected user's blank mailbox into its original one");
  AddStoreFlags(recover, rec_store);
  AddMergeFlags(recover, rec_merge);
  recover->footer(
      "For every selected blank-connected user: merge the blank mailbox into the original (dedupe on), append the\n"
      "user's change to STORE/reconnect.ldif, move the blank mailbox to STORE/retired/. Journaled in STORE/.mbxmerge/:\n"
      "a run that was stopped or killed resumes where it stopped when run again.\n"
      "--dry-run also projects the run's time: the selected users' diagnose counts at the rates of a few seconds'\n"
      "calibration bench (a small generated store in $TMPDIR in the store's main mailbox format and average\n"
      "message size, recovered with these --jobs; see `mbxmerge bench`). Not with --quiet.");

  StoreArgs exp_store;
  MergeArgs exp_merge;
  std::string exp_dir, exp_format = "mbxz";
  auto* exp = app.add_subcommand("export", "ExMerge step 1: each selected user's mailbox into DIR/<alias>.mbxz");
  AddStoreFlags(exp, exp_store);
  exp->add_option("--to", exp_dir, "Directory for the export files (created if missing)")->required();
  exp->add_option("--format", exp_format, "mbxz (zstd bundle) | mbox | maildir | pst (needs the PST writer)")
      ->capture_default_str();
  AddMergeFlags(exp, exp_merge);

  StoreArgs imp_store;
  MergeArgs imp_merge;
  std::string imp_dir;
  auto* imp = app.add_subcommand("import", "ExMerge step 2: merge each DIR/<alias>.* into that user's mailbox");
  AddStoreFlags(imp, imp_store);
  imp->add_option("--from", imp_dir, "Directory of export files named by alias (.mbxz, .pst, .mbox, or a Maildir)")
      ->required();
  AddMergeFlags(imp, imp_merge);

  BenchArgs bench_args;
  auto* bench = app.add_subcommand(
      "bench", "Measure recover throughput on this machine with a generated store; project a store's recover time");
  bench->add_option("--users", bench_args.users, "Users of the generated store (at least 3)")->capture_default_str();
  bench->add_option("--messages", bench_args.messages, "Messages per user, blank and original mailbox together (+-25%)")
      ->capture_default_str();
  auto* bench_size = bench->add_option("--size", bench_args.size, "Average message size in bytes (300 ..)");
  bench_size->capture_default_str();
  bench->add_option("--dup-rate", bench_args.dup_rate,
                    "Share of a blank mailbox's messages that are also in the original (0..1)")
      ->capture_default_str();
  auto* bench_format =
      bench->add_option("--format", bench_args.format, "Mailbox format of the generated store: maildir | mbox | eml | pst");
  bench_format->capture_default_str();
  bench->add_option("--jobs,-j", bench_args.jobs, "CPUs of the recover, as for recover --jobs")->capture_default_str();
  bench->add_option("--seed", bench_args.seed, "Generator seed")->capture_default_str();
  bench->add_option("--store", bench_args.store,
                    "Also project how long recovering this store would take, from its diagnose counts");
  bench->add_option("--dir", bench_args.dir,
                    "Generate the store in DIR (absent or empty) instead of a new directory under $TMPDIR;\n"
                    "put it on the real store's file system to measure that disk");
  bench->add_flag("--keep", bench_args.keep, "Leave the generated (and by then recovered) store in place");
  bench->add_flag("--json", bench_args.json, "Print JSON instead of a table");
  bench->footer(
      "Generates a store in the KB 278447 state (as mbxgen store; all mailboxes in --format), runs diagnose and\n"
      "recover on it through the same code as those commands, checks that every generated message is in its\n"
      "original mailbox exactly once, and removes the store unless --keep. Per stage: wall time, messages and\n"
      "MB read (generate: written), msg/s, MB/s, peak memory (the stage's own VmHWM, reset through\n"
      "/proc/self/clear_refs; else the process peak from getrusage, marked *).\n"
      "The recover stage is split into merging the blank mailboxes (msg/s, MB/s), scanning the originals for\n"
      "duplicates (MB/s) and the rest per user. --store STORE projects STORE's recover time from its diagnose\n"
      "counts at these rates; --format and --size then default to STORE's main format and average message size.\n"
      "`recover --dry-run` prints the same projection, from a few seconds' calibration bench of that shape.\n"
      "Exit status: 0 measured and verified; 1 the recovered store did not verify; 2 bad arguments; 3 fatal.\n"
      "Example: mbxmerge bench --users 50 --messages 2000 --jobs 2 --store /srv/store");

  ReportArgs rep;
  auto* report =
      app.add_subcommand("report", "Join the JSON reports of the shards of one run (--shard K/N)");
  report
      ->add_option("--merge", rep.merge,
                   "The shards' reports (recover, export, import or merge --report)")
      ->required();
  report->add_option("--out", rep.out, "Write the joined report to FILE (default: print it)");
  report->add_flag("--quiet,-q", rep.quiet, "With --out: no summary");
  report->footer(
      "Users are concatenated (each tagged with its shard and report), totals summed,\n"
      "failures kept with their shard; the shard list and any missing shard are recorded.\n"
      "Refused (exit 2): an unreadable or invalid file, mixed commands, dry and real runs,\n"
      "shards of different N, one shard twice, a user in two reports (shards must be disjoint).\n"
      "Exit status: 0 all done; 1 some user failed or a shard of the split is missing (rerun\n"
      "that shard alone, then join again); 2 refused. See docs/scale-out.md.\n"
      "Example: mbxmerge report --merge r1.json r2.json r3.json --out recover.json");

  try {
    app.parse(argc, argv);
  } catch (const CLI::Success& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return kExitUsage;
  }
  if (merge->parsed()) return RunMergeCommand(m);
  if (list->parsed()) return RunListCommand(l);
  if (check->parsed()) return RunCheckCommand(chk);
  if (diagnose->parsed()) return RunDiagnoseCommand(diag_args);
  if (recover->parsed()) return RunRecoverCommand(rec_store, rec_merge);
  if (exp->parsed()) return RunTransferCommand(exp_store, exp_merge, exp_dir, exp_format, /*is_export=*/true);
  if (imp->parsed()) return RunTransferCommand(imp_store, imp_merge, imp_dir, "mbxz", /*is_export=*/false);
  if (report->parsed()) return RunReportCommand(rep);
  if (bench->parsed()) return RunBenchCommand(bench_args, bench_size->count() > 0, bench_format->count() > 0);
  return kExitUsage;
}
