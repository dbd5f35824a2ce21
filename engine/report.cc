#include "engine/report.h"

#include <cstdio>
#include <nlohmann/json.hpp>

namespace mbx {

void FolderCounts::Add(const FolderCounts& o) {
  read += o.read;
  selected += o.selected;
  not_selected += o.not_selected;
  duplicates += o.duplicates;
  written += o.written;
  failed += o.failed;
  archived += o.archived;
  replaced += o.replaced;
  bytes_read += o.bytes_read;
  bytes_written += o.bytes_written;
}

FolderCounts SourceReport::Total() const {
  FolderCounts t;
  for (const auto& [_, c] : folders) t.Add(c);
  return t;
}

FolderCounts RunReport::Total() const {
  FolderCounts t;
  for (const auto& s : sources) t.Add(s.Total());
  return t;
}

int RunReport::ExitCode() const {
  if (!fatal.empty()) return 3;
  return Total().failed > 0 || !failures.empty() ? 1 : 0;
}

namespace {

nlohmann::json CountsJson(const FolderCounts& c) {
  return {{"read", c.read},
          {"selected", c.selected},
          {"not_selected", c.not_selected},
          {"duplicates_skipped", c.duplicates},
          {"written", c.written},
          {"failed", c.failed},
          {"archived", c.archived},
          {"replaced", c.replaced},
          {"bytes_read", c.bytes_read},
          {"bytes_written", c.bytes_written}};
}

std::string Mb(uint64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f MB", static_cast<double>(bytes) / 1e6);
  return buf;
}

}  // namespace

std::string RunReport::ToJson() const {
  nlohmann::json j;
  j["command"] = command;
  j["target"] = target;
  j["mode"] = mode;
  j["dedupe"] = dedupe;
  j["dry_run"] = dry_run;
  j["jobs"] = jobs;
  j["single_folder_target"] = single_folder_target;
  j["existing_messages_in_target"] = existing_messages;
  j["timings"] = {{"total_seconds", seconds_total}, {"scan_target_seconds", seconds_scan_target}};
  j["totals"] = CountsJson(Total());
  j["sources"] = nlohmann::json::array();
  for (const auto& s : sources) {
    nlohmann::json js;
    js["source"] = s.source;
    js["totals"] = CountsJson(s.Total());
    js["folders"] = nlohmann::json::array();
    for (const auto& [name, c] : s.folders) {
      nlohmann::json f = CountsJson(c);
      auto arrow = name.find(" -> ");
      f["folder"] = arrow == std::string::npos ? name : name.substr(0, arrow);
      f["target_folder"] = arrow == std::string::npos ? name : name.substr(arrow + 4);
      js["folders"].push_back(std::move(f));
    }
    j["sources"].push_back(std::move(js));
  }
  j["failures"] = nlohmann::json::array();
  for (const auto& f : failures) j["failures"].push_back({{"message", f.origin}, {"reason", f.reason}});
  j["fatal"] = fatal.empty() ? nlohmann::json(nullptr) : nlohmann::json(fatal);
  j["exit_status"] = ExitCode();
  return j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

std::string RunReport::Summary() const {
  std::string out;
  char line[512];
  FolderCounts t = Total();
  std::snprintf(line, sizeof line, "%s%s into %s (mode %s, dedupe %s, %d jobs)\n",
                dry_run ? "DRY RUN: " : "", command.c_str(), target.c_str(), mode.c_str(), dedupe.c_str(),
                jobs);
  out += line;
  if (single_folder_target) out += "  note: the target is a single mbox file: every source folder was merged into it\n";
  for (const auto& s : sources) {
    FolderCounts c = s.Total();
    std::snprintf(line, sizeof line, "  %s: %llu read, %llu selected, %llu duplicates skipped, %llu %s, %llu failed\n",
                  s.source.c_str(), static_cast<unsigned long long>(c.read),
                  static_cast<unsigned long long>(c.selected), static_cast<unsigned long long>(c.duplicates),
                  static_cast<unsigned long long>(c.written), dry_run ? "would be written" : "written",
                  static_cast<unsigned long long>(c.failed));
    out += line;
    size_t shown = 0;
    for (const auto& [name, fc] : s.folders) {
      if (s.folders.size() == 1) break;
      if (++shown > 12) {
        std::snprintf(line, sizeof line, "      ... %zu more folders (see --report)\n", s.folders.size() - 12);
        out += line;
        break;
      }
      std::snprintf(line, sizeof line, "      %-40s %6llu read %6llu dup %6llu written %4llu failed\n",
                    name.empty() ? "(root)" : name.c_str(), static_cast<unsigned long long>(fc.read),
                    static_cast<unsigned long long>(fc.duplicates), static_cast<unsigned long long>(fc.written),
                    static_cast<unsigned long long>(fc.failed));
      out += line;
    }
  }
  double rate = seconds_total > 0 ? static_cast<double>(t.read) / seconds_total : 0;
  std::snprintf(line, sizeof line,
                "Total: %llu read (%s), %llu duplicates skipped, %llu %s (%s), %llu failed; %.2f s, %.0f msg/s\n",
                static_cast<unsigned long long>(t.read), Mb(t.bytes_read).c_str(),
                static_cast<unsigned long long>(t.duplicates), static_cast<unsigned long long>(t.written),
                dry_run ? "would be written" : "written", Mb(t.bytes_written).c_str(),
                static_cast<unsigned long long>(t.failed), seconds_total, rate);
  out += line;
  size_t n = 0;
  for (const auto& f : failures) {
    if (++n > 10) {
      std::snprintf(line, sizeof line, "  ... %zu more failures (see --report / --log)\n", failures.size() - 10);
      out += line;
      break;
    }
    out += "  FAILED " + f.origin + ": " + f.reason + "\n";
  }
  if (t.archived > 0) {
    std::snprintf(line, sizeof line, "Archived: %llu messages removed from the sources (now durable in the target)\n",
                  static_cast<unsigned long long>(t.archived));
    out += line;
  }
  if (t.replaced > 0) {
    std::snprintf(line, sizeof line, "Replaced: %llu of the written messages took the place of their equal in the target\n",
                  static_cast<unsigned long long>(t.replaced));
    out += line;
  }
  if (!fatal.empty()) out += "FATAL: " + fatal + "\n";
  return out;
}

}  // namespace mbx
