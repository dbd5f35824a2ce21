// mbxmerge command line: parse flags, open mailboxes, call the engine, print.
#include <signal.h>
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
#include <string>
#include <thread>
#include <vector>

#include "engine/fs.h"
#include "engine/log.h"
#include "engine/merge.h"
#include "engine/progress.h"
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
  bool associated = false, recover_deleted = false;  // PST sources; merge only
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

int RunRecoverCommand(const StoreArgs& sa, const MergeArgs& ma) {
  return RunStoreCommand(sa, ma, [&](const auto& store, const auto& merge, const auto& filter, const auto& say) {
    mbx::recovery::RecoverOptions opt;
    opt.merge = merge;
    opt.filter = filter;
    opt.dry_run = ma.dry_run;
    opt.say = say;
    return mbx::recovery::Recover(store, opt);
  });
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
  cmd->add_option("--jobs,-j", m.jobs, "Worker threads (default: hardware threads)")->capture_default_str();
  cmd->add_flag("--dry-run", m.dry_run, "Plan and count; write nothing");
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
  CLI::App app{
      "mbxmerge: merge mailboxes with no duplicates and nothing lost.\n"
      "Mailbox locations: FILE.mbox or mbox:PATH (one mbox file), maildir:DIR (Maildir++),\n"
      "eml:DIR (a tree of .eml files), mboxdir:DIR (one mbox per folder, readpst's layout),\n"
      "pst:FILE (Outlook PST/OST, read only), mbxz:FILE (mbxmerge's zstd bundle).\n"
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
  merge->add_flag("--associated", m.associated,
                  "PST/OST sources: also carry each folder's associated (FAI) contents (views, rules, forms); "
                  "the target must be a PST");
  merge->add_flag("--recover-deleted", m.recover_deleted,
                  "PST/OST sources: also carry the deleted and orphan messages libpff can recover, into a "
                  "'Recovered Items' folder");
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
      "a run that was stopped or killed resumes where it stopped when run again.");

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
  return kExitUsage;
}
