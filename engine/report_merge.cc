#include "engine/report_merge.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <utility>

#include "engine/fs.h"

namespace mbx {
namespace {

using nlohmann::json;

struct Input {
  std::string path;
  json report;
  std::string shard;  // "K/N", "" for an unsharded run
  int k = 0, n = 0;
};

Status Bad(const std::string& path, const std::string& why) {
  return Status::InvalidArgument("report '" + path + "': " + why);
}

bool IsStoreCommand(const std::string& c) {
  return c == "recover" || c == "export" || c == "import";
}

// Adds every unsigned count of `from` to `into` (new counters need no change here).
void SumCounts(const json& from, json* into) {
  for (const auto& [key, value] : from.items()) {
    if (!value.is_number_unsigned()) continue;
    uint64_t prev = into->contains(key) ? (*into)[key].get<uint64_t>() : 0;
    (*into)[key] = prev + value.get<uint64_t>();
  }
}

Result<Input> Load(const std::string& path) {
  auto text = fs::ReadFile(path);
  if (!text.ok()) return Bad(path, text.status().message());
  Input in;
  in.path = path;
  in.report = json::parse(*text, nullptr, /*allow_exceptions=*/false);
  if (in.report.is_discarded()) return Bad(path, "not valid JSON");
  const json& r = in.report;
  if (!r.is_object() || !r.contains("command") || !r["command"].is_string())
    return Bad(path, "not an mbxmerge report (no \"command\")");
  if (r.contains("merged_from"))
    return Bad(path, "already a joined report; join the shards' own reports");
  std::string command = r["command"];
  if (IsStoreCommand(command)) {
    if (!r.contains("users") || !r["users"].is_array())
      return Bad(path, "a " + command + " report without a \"users\" list");
    for (const auto& u : r["users"]) {
      if (!u.is_object() || !u.contains("alias") || !u["alias"].is_string())
        return Bad(path, "a user without an \"alias\"");
    }
  } else if (command == "merge") {
    if (!r.contains("sources") || !r["sources"].is_array() || !r.contains("totals") ||
        !r["totals"].is_object())
      return Bad(path, "a merge report without \"sources\" and \"totals\"");
  } else {
    return Bad(path, "unknown command '" + command + "'");
  }
  if (r.contains("shard") && r["shard"].is_string()) {
    in.shard = r["shard"];
    char extra = 0;
    if (std::sscanf(in.shard.c_str(), "%d/%d%c", &in.k, &in.n, &extra) != 2 || in.n < 1 ||
        in.k < 1 || in.k > in.n)
      return Bad(path, "bad \"shard\" '" + in.shard + "'");
  }
  return in;
}

// Store reports: one row per user, each user in exactly one shard.
void JoinStore(const std::vector<Input>& inputs, json* out, std::string* summary, int* exit_code) {
  json users = json::array(), failures = json::array(), totals = json::object();
  std::map<std::string, size_t> by_status;
  for (const auto& in : inputs) {
    for (json u : in.report["users"]) {
      u["shard"] = in.shard.empty() ? json(nullptr) : json(in.shard);
      u["report"] = in.path;
      SumCounts(u, &totals);
      std::string status = u.value("status", "");
      by_status[status]++;
      if (status == "failed") *exit_code = 1;
      if (u.contains("error"))
        failures.push_back({{"shard", u["shard"]}, {"alias", u["alias"]}, {"error", u["error"]}});
      if (u.contains("failures") && u["failures"].is_array()) {
        for (const auto& f : u["failures"]) {
          failures.push_back({{"shard", u["shard"]},
                              {"alias", u["alias"]},
                              {"message", f.value("message", "")},
                              {"reason", f.value("reason", "")}});
        }
      }
      users.push_back(std::move(u));
    }
  }
  totals["users"] = users.size();
  totals["by_status"] = by_status;
  (*out)["totals"] = totals;
  (*out)["users"] = std::move(users);
  (*out)["failures"] = std::move(failures);
  std::set<std::string> ldif;
  for (const auto& in : inputs) {
    if (in.report.contains("reconnect_file") && in.report["reconnect_file"].is_string() &&
        !in.report["reconnect_file"].get<std::string>().empty())
      ldif.insert(in.report["reconnect_file"].get<std::string>());
  }
  if (!ldif.empty()) (*out)["reconnect_files"] = ldif;
  *summary += std::to_string(totals["users"].get<size_t>()) + " users (";
  bool first = true;
  for (const auto& [status, count] : by_status) {
    *summary += (first ? "" : ", ") + std::to_string(count) + " " + status;
    first = false;
  }
  *summary += "); " + std::to_string(totals.value("written", uint64_t{0})) + " messages written, " +
              std::to_string(totals.value("duplicates_skipped", uint64_t{0})) +
              " duplicates skipped\n";
}

// Merge reports: one row per run (target and its sources).
void JoinMerge(const std::vector<Input>& inputs, json* out, std::string* summary, int* exit_code) {
  json runs = json::array(), failures = json::array(), totals = json::object();
  for (const auto& in : inputs) {
    const json& r = in.report;
    SumCounts(r["totals"], &totals);
    if (r.value("exit_status", 0) != 0) *exit_code = 1;
    runs.push_back({{"report", in.path},
                    {"shard", in.shard.empty() ? json(nullptr) : json(in.shard)},
                    {"target", r.value("target", "")},
                    {"totals", r["totals"]},
                    {"sources", r["sources"]},
                    {"fatal", r.contains("fatal") ? r["fatal"] : json(nullptr)},
                    {"exit_status", r.value("exit_status", 0)}});
    if (r.contains("failures") && r["failures"].is_array()) {
      for (const auto& f : r["failures"]) {
        failures.push_back({{"report", in.path},
                            {"target", r.value("target", "")},
                            {"message", f.value("message", "")},
                            {"reason", f.value("reason", "")}});
      }
    }
  }
  (*out)["totals"] = totals;
  (*out)["runs"] = std::move(runs);
  (*out)["failures"] = std::move(failures);
  *summary += std::to_string(inputs.size()) + " merge runs; " +
              std::to_string(totals.value("written", uint64_t{0})) + " messages written, " +
              std::to_string(totals.value("duplicates_skipped", uint64_t{0})) +
              " duplicates skipped, " + std::to_string(totals.value("failed", uint64_t{0})) +
              " failed\n";
}

}  // namespace

Result<MergedReports> MergeReports(const std::vector<std::string>& paths) {
  if (paths.empty()) return Status::InvalidArgument("no reports to join");
  std::vector<Input> inputs;
  for (const auto& p : paths) {
    MBX_ASSIGN_OR_RETURN(Input in, Load(p));
    inputs.push_back(std::move(in));
  }
  const Input& first = inputs.front();
  std::string command = first.report["command"];
  bool dry_run = first.report.value("dry_run", false);
  std::map<std::string, std::string> shard_file;  // "K/N" -> report
  std::map<std::string, std::string> owner;       // user alias or source->target -> report
  for (const auto& in : inputs) {
    std::string c = in.report["command"];
    if (c != command) {
      return Bad(in.path, "is a '" + c + "' report but '" + first.path + "' is a '" + command +
                              "' report: join the reports of one command");
    }
    if (in.report.value("dry_run", false) != dry_run)
      return Bad(in.path, "mixes a dry run and a real run (see '" + first.path + "')");
    if (!in.shard.empty()) {
      if (in.n != first.n) {
        return Bad(in.path, "is shard " + in.shard + " but '" + first.path + "' is " +
                                (first.shard.empty() ? "not sharded" : "shard " + first.shard) +
                                ": the shards of one split share N");
      }
      auto [it, fresh] = shard_file.emplace(in.shard, in.path);
      if (!fresh) {
        return Bad(in.path, "shard " + in.shard + " is also in '" + it->second +
                                "': give only the report of the shard's last run");
      }
    }
    std::vector<std::string> keys;
    if (IsStoreCommand(command)) {
      // Case-insensitive, as the store finds users by alias.
      for (const auto& u : in.report["users"]) {
        std::string alias = u["alias"];
        for (auto& ch : alias) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        keys.push_back(alias);
      }
    } else {
      for (const auto& s : in.report["sources"])
        keys.push_back(s.value("source", "") + " -> " + in.report.value("target", ""));
    }
    for (const auto& key : keys) {
      auto [it, fresh] = owner.emplace(key, in.path);
      if (!fresh) {
        std::string what = IsStoreCommand(command) ? "user '" + key + "'" : "run '" + key + "'";
        return Bad(in.path, what + " is also in '" + it->second +
                                "': shards must be disjoint (same --shard N for every shard, "
                                "one report per shard)");
      }
    }
  }
  for (const auto& in : inputs) {
    if (in.shard.empty() != first.shard.empty())
      return Bad(in.path, "mixes sharded and unsharded reports (see '" + first.path + "')");
  }

  MergedReports result;
  json out;
  out["command"] = command;
  out["dry_run"] = dry_run;
  json from = json::array();
  double seconds_sum = 0, seconds_max = 0;
  for (const auto& in : inputs) {
    double s = in.report.contains("seconds") && in.report["seconds"].is_number()
                   ? in.report["seconds"].get<double>()
               : in.report.contains("timings") ? in.report["timings"].value("total_seconds", 0.0)
                                               : 0.0;
    seconds_sum += s;
    seconds_max = std::max(seconds_max, s);
    from.push_back({{"report", in.path},
                    {"shard", in.shard.empty() ? json(nullptr) : json(in.shard)},
                    {"exit_status", in.report.value("exit_status", 0)},
                    {"seconds", s}});
    if (in.report.value("exit_status", 0) != 0) result.exit_code = 1;
  }
  out["merged_from"] = std::move(from);
  // The shards run at once: the slowest is the wall time, the sum the work.
  out["seconds"] = seconds_max;
  out["seconds_sum"] = seconds_sum;
  result.summary = "report --merge: " + command + ", " + std::to_string(inputs.size()) + " reports";
  if (!first.shard.empty()) {
    json missing = json::array();
    for (int k = 1; k <= first.n; ++k) {
      std::string s = std::to_string(k) + "/" + std::to_string(first.n);
      if (!shard_file.count(s)) missing.push_back(s);
    }
    out["shards"] = {{"count", first.n}, {"present", json::array()}, {"missing", missing}};
    for (const auto& [s, file] : shard_file) out["shards"]["present"].push_back(s);
    if (!missing.empty()) {
      result.exit_code = 1;
      result.summary += "; MISSING shards " + missing.dump();
    }
  }
  result.summary += "\n";
  if (IsStoreCommand(command)) {
    JoinStore(inputs, &out, &result.summary, &result.exit_code);
  } else {
    JoinMerge(inputs, &out, &result.summary, &result.exit_code);
  }
  out["exit_status"] = result.exit_code;
  result.json = out.dump(2, ' ', false, json::error_handler_t::replace) + "\n";
  return result;
}

}  // namespace mbx
