// Tests of `mbxmerge bench` and of the recover time projection it shares with
// `recover --dry-run`. Counts are checked against mbxgen's manifests and
// `diagnose --json`, never against the bench's own figures; no timing asserts.

#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <string>
#include <vector>

#include "engine/recovery/bench.h"
#include "tests/test_util.h"

namespace mbx::testing {
namespace {

namespace stdfs = std::filesystem;
using nlohmann::json;

// Runs mbxmerge with $TMPDIR set to `tmp`, so that a default scratch store
// lands where the test can see whether it was removed.
CommandResult RunWithTmp(const std::string& tmp, const std::vector<std::string>& args) {
  std::vector<std::string> argv{"env", "TMPDIR=" + tmp, MbxmergePath()};
  argv.insert(argv.end(), args.begin(), args.end());
  return Run(argv);
}

using testing::Split;

// What `mbxgen store` writes for these arguments, from its manifests: the
// bench generates the same store (in one format instead of mixed ones, which
// changes message kinds, not counts).
struct Expected {
  uint64_t distinct = 0;      // distinct messages
  uint64_t copies = 0;        // messages in all mailboxes (a duplicate twice)
  uint64_t blank_copies = 0;  // messages in the blank mailboxes of blank-connected users
  uint64_t recovered = 0;     // distinct messages of blank-connected users
  uint64_t blank_users = 0;
};

Expected FromMbxgen(const TempDir& t, const std::string& users, const std::string& messages,
                    const std::string& seed) {
  CommandResult g = RunMbxgen({"store", "--out", t / "ref", "--users", users, "--messages",
                               messages, "--seed", seed, "--manifest", t / "ref.tsv"});
  EXPECT_EQ(g.exit_code, 0) << g.err;
  Expected e;
  for (const std::string& line : Split(ReadFileOrDie(t / "ref.tsv"), '\n')) {
    if (line.empty()) continue;
    std::vector<std::string> f = Split(line, '\t');
    EXPECT_EQ(f.size(), 7u) << line;
    if (f.size() != 7) continue;
    const std::string& state = f[1];
    const std::string& in = f[5];
    ++e.distinct;
    e.copies += in == "both" ? 2 : 1;
    if (state == "blank-connected") {
      ++e.recovered;
      if (in != "A") ++e.blank_copies;
    }
  }
  for (const std::string& line : Split(ReadFileOrDie(t / "ref.tsv.users"), '\n')) {
    if (line.find("\tblank-connected\t") != std::string::npos) ++e.blank_users;
  }
  return e;
}

const json* StageOf(const json& j, const std::string& name) {
  for (const auto& s : j["stages"]) {
    if (s["name"] == name) return &s;
  }
  return nullptr;
}

TEST(BenchCmdTest, SmallBenchMeasuresEveryStageAndVerifies) {
  TempDir t;
  const std::string tmp = t / "tmp";
  stdfs::create_directories(tmp);
  Expected want = FromMbxgen(t, "3", "20", "1");
  ASSERT_GT(want.blank_copies, 0u);

  CommandResult r =
      RunWithTmp(tmp, {"bench", "--users", "3", "--messages", "20", "--jobs", "2", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  json j = json::parse(r.out);
  EXPECT_EQ(j["generated"]["users"], 3);
  EXPECT_EQ(j["generated"]["distinct_messages"], want.distinct);
  EXPECT_EQ(j["generated"]["messages"], want.copies);
  EXPECT_GT(j["generated"]["bytes"].get<uint64_t>(), 0u);

  const json* diagnose = StageOf(j, "diagnose");
  const json* recover = StageOf(j, "recover");
  const json* verify = StageOf(j, "verify");
  ASSERT_TRUE(diagnose && recover && verify) << r.out;
  // Diagnose counted every message of every mailbox, and in Maildir a
  // message's bytes are its file's: all that was generated.
  EXPECT_EQ((*diagnose)["messages"], want.copies);
  EXPECT_EQ((*diagnose)["bytes"], j["generated"]["bytes"]);
  // Recover read every message of the blank mailboxes.
  EXPECT_EQ((*recover)["messages"], want.blank_copies);
  EXPECT_GT((*recover)["bytes"].get<uint64_t>(), 0u);
  // Verify read the recovered originals: each distinct message once.
  EXPECT_EQ((*verify)["messages"], want.recovered);
  for (const auto& s : j["stages"]) {
    EXPECT_GT(s["messages"].get<uint64_t>(), 0u) << s;
    EXPECT_GT(s["bytes"].get<uint64_t>(), 0u) << s;
    EXPECT_GT(s["peak_rss_bytes"].get<uint64_t>(), 0u) << s;
    EXPECT_GE(s["seconds"].get<double>(), 0.0) << s;
  }
  EXPECT_EQ(j["recover"]["users"], want.blank_users);
  EXPECT_EQ(
      j["recover"]["written"].get<uint64_t>() + j["recover"]["duplicates_skipped"].get<uint64_t>(),
      want.blank_copies);
  EXPECT_GT(j["rates"]["merge_messages_per_s"].get<double>(), 0);
  EXPECT_EQ(j["rates"]["jobs"], 2);
  EXPECT_EQ(j["verified"], true) << j["verify_errors"];
  EXPECT_FALSE(j.contains("projection"));
  // The scratch store is gone.
  EXPECT_TRUE(stdfs::is_empty(tmp)) << stdfs::directory_iterator(tmp)->path();
}

TEST(BenchCmdTest, TablePrintsEveryStage) {
  TempDir t;
  CommandResult r =
      RunWithTmp(t.path(), {"bench", "--users", "3", "--messages", "6", "--format", "mbox"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  for (const char* stage : {"generate", "diagnose", "recover", "verify"}) {
    EXPECT_TRUE(
        std::regex_search(r.out, std::regex(std::string("\n") + stage + " +[0-9.]+ +[0-9]+ ")))
        << r.out;
  }
  EXPECT_NE(r.out.find("verified: every distinct message"), std::string::npos) << r.out;
  EXPECT_NE(r.err.find("bench: recovering"), std::string::npos) << r.err;
  EXPECT_TRUE(stdfs::is_empty(t.path()));
}

TEST(BenchCmdTest, KeepLeavesARecoveredStoreThatDiagnoseAccepts) {
  TempDir t;
  const std::string store = t / "kept";
  CommandResult r = RunMbxmerge({"bench", "--users", "4", "--messages", "10", "--format", "eml",
                                 "--keep", "--dir", store, "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  json j = json::parse(r.out);
  EXPECT_EQ(j["store"], store);
  EXPECT_EQ(j["kept"], true);
  EXPECT_EQ(j["verified"], true) << j["verify_errors"];

  CommandResult d = RunMbxmerge({"diagnose", "--store", store, "--json"});
  ASSERT_EQ(d.exit_code, 0) << d.err;
  std::map<std::string, int> states;
  for (const auto& row : json::parse(d.out)) states[row["state"]]++;
  // Recovered: every blank-connected user waits for reconnect.ldif now.
  EXPECT_EQ(states["blank-connected"], 0);
  EXPECT_EQ(states["reconnect-pending"], j["recover"]["users"].get<int>());
  EXPECT_EQ(states["ok"], 1);
  EXPECT_EQ(states["missing"], 1);
  EXPECT_TRUE(stdfs::is_regular_file(store + "/reconnect.ldif"));
  EXPECT_TRUE(stdfs::is_directory(store + "/retired"));

  // A non-empty --dir is refused, and left alone.
  CommandResult again = RunMbxmerge({"bench", "--users", "3", "--messages", "5", "--dir", store});
  EXPECT_EQ(again.exit_code, 2);
  EXPECT_NE(again.err.find("not empty"), std::string::npos) << again.err;
  EXPECT_TRUE(stdfs::is_regular_file(store + "/directory.ldif"));
}

// The generated Maildirs become PSTs through our writer, recover merges PST
// into PST, verify reads the PSTs back. (A copy with CRLF line endings that
// carries a text attachment is not found as a duplicate in a PST target yet;
// this small store has none.)
TEST(BenchCmdTest, PstStoreVerifies) {
  TempDir t;
  CommandResult r = RunWithTmp(t.path(), {"bench", "--users", "3", "--messages", "8", "--size",
                                          "2000", "--format", "pst", "--jobs", "2", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  json j = json::parse(r.out);
  EXPECT_EQ(j["verified"], true) << j["verify_errors"];
  EXPECT_EQ(j["options"]["format"], "pst");
  EXPECT_GT(StageOf(j, "recover")->at("messages").get<uint64_t>(), 0u);
}

struct DiagnoseTotals {
  uint64_t users = 0, merge_messages = 0, merge_bytes = 0, scan_messages = 0, scan_bytes = 0;
};

// The work of recovering the blank-connected users of `store` (all, or `only`), from `diagnose
// --json`.
DiagnoseTotals FromDiagnose(const std::string& store, const std::string& only = "") {
  CommandResult d = RunMbxmerge({"diagnose", "--store", store, "--json"});
  EXPECT_EQ(d.exit_code, 0) << d.err;
  DiagnoseTotals t;
  for (const auto& row : json::parse(d.out)) {
    if (row["state"] != "blank-connected") continue;
    if (!only.empty() && row["alias"] != only) continue;
    ++t.users;
    t.merge_messages += row["messages"].get<uint64_t>();
    t.merge_bytes += row["bytes"].get<uint64_t>();
    t.scan_messages += row["original_messages"].get<uint64_t>();
    t.scan_bytes += row["original_bytes"].get<uint64_t>();
  }
  return t;
}

// "projected recover time for S: T (U users; M messages, H (B bytes) to merge ...; M2 messages, H2
// (B2 bytes) in the originals ..."
DiagnoseTotals FromProjectionLine(const std::string& out, const std::string& store) {
  DiagnoseTotals t;
  std::smatch m;
  std::regex re("projected recover time for " +
                std::regex_replace(store, std::regex(R"([.^$|()\[\]{}*+?\\])"), R"(\$&)") +
                ": [^(]+\\((\\d+) users?; (\\d+) messages, [^(]+\\((\\d+) bytes\\) to merge [^;]+; "
                "(\\d+) messages, "
                "[^(]+\\((\\d+) bytes\\) in the originals");
  EXPECT_TRUE(std::regex_search(out, m, re)) << out;
  if (m.size() != 6) return t;
  t.users = std::stoull(m[1]);
  t.merge_messages = std::stoull(m[2]);
  t.merge_bytes = std::stoull(m[3]);
  t.scan_messages = std::stoull(m[4]);
  t.scan_bytes = std::stoull(m[5]);
  return t;
}

void ExpectSame(const DiagnoseTotals& got, const DiagnoseTotals& want) {
  EXPECT_EQ(got.users, want.users);
  EXPECT_EQ(got.merge_messages, want.merge_messages);
  EXPECT_EQ(got.merge_bytes, want.merge_bytes);
  EXPECT_EQ(got.scan_messages, want.scan_messages);
  EXPECT_EQ(got.scan_bytes, want.scan_bytes);
}

class ProjectionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    CommandResult g =
        RunMbxgen({"store", "--out", store_, "--users", "8", "--messages", "15", "--seed", "3"});
    ASSERT_EQ(g.exit_code, 0) << g.err;
    want_ = FromDiagnose(store_);
    ASSERT_GT(want_.users, 1u);
    ASSERT_GT(want_.merge_messages, 0u);
  }
  // Neither the bench nor the dry run touched the store.
  void ExpectUntouched() {
    EXPECT_FALSE(stdfs::exists(store_ + "/.mbxmerge"));
    EXPECT_FALSE(stdfs::exists(store_ + "/reconnect.ldif"));
    EXPECT_FALSE(stdfs::exists(store_ + "/retired"));
  }
  TempDir t_;
  std::string store_ = t_ / "store";
  DiagnoseTotals want_;
};

TEST_F(ProjectionTest, BenchWithStoreProjectsItsDiagnoseCounts) {
  CommandResult r = RunWithTmp(t_.path(), {"bench", "--users", "3", "--messages", "10", "--store",
                                           store_, "--jobs", "1", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  json j = json::parse(r.out);
  ASSERT_TRUE(j.contains("projection")) << r.out;
  const json& p = j["projection"];
  DiagnoseTotals got{p["users"].size(), p["merge_messages"], p["merge_bytes"], p["scan_messages"],
                     p["scan_bytes"]};
  ExpectSame(got, want_);
  EXPECT_GT(p["seconds"].get<double>(), 0);
  EXPECT_EQ(p["rates_from"], "this bench");
  EXPECT_EQ(p["rates"]["jobs"], 1);
  // mbxgen's store is half mbox, half Maildir: the bench took one of them, and the store's average
  // size.
  EXPECT_TRUE(j["options"]["format"] == "mbox" || j["options"]["format"] == "maildir")
      << j["options"];
  EXPECT_EQ(j["options"]["format"], p["format"]);
  EXPECT_NE(j["options"]["size"], 6000);
  ExpectUntouched();

  // An explicit --format wins over the store's.
  CommandResult eml = RunWithTmp(t_.path(), {"bench", "--users", "3", "--messages", "4", "--store",
                                             store_, "--format", "eml", "--size", "1000"});
  ASSERT_EQ(eml.exit_code, 0) << eml.out << eml.err;
  EXPECT_NE(eml.out.find("(eml, ~1000-byte messages"), std::string::npos) << eml.out;
  ExpectSame(FromProjectionLine(eml.out, store_), want_);
}

TEST_F(ProjectionTest, RecoverDryRunPrintsTheSameProjection) {
  CommandResult r =
      RunWithTmp(t_.path(), {"recover", "--store", store_, "--dry-run", "--jobs", "2"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  // After the plan.
  size_t plan = r.out.find("DRY RUN: recover:");
  size_t projection = r.out.find("projected recover time for");
  ASSERT_NE(plan, std::string::npos) << r.out;
  ASSERT_NE(projection, std::string::npos) << r.out;
  EXPECT_LT(plan, projection);
  ExpectSame(FromProjectionLine(r.out, store_), want_);
  EXPECT_NE(r.out.find("by a calibration bench"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("--jobs 2"), std::string::npos) << r.out;
  ExpectUntouched();

  // Only the selected users.
  CommandResult d = RunMbxmerge({"diagnose", "--store", store_, "--json"});
  std::string alias;
  for (const auto& row : json::parse(d.out)) {
    if (row["state"] == "blank-connected") alias = row["alias"];
  }
  WriteFileOrDie(t_ / "one.txt", alias + "\n");
  CommandResult one = RunWithTmp(
      t_.path(), {"recover", "--store", store_, "--dry-run", "--mailboxes", t_ / "one.txt"});
  ASSERT_EQ(one.exit_code, 0) << one.out << one.err;
  ExpectSame(FromProjectionLine(one.out, store_), FromDiagnose(store_, alias));

  // --quiet prints neither plan nor projection (and spends no time calibrating).
  CommandResult quiet = RunMbxmerge({"recover", "--store", store_, "--dry-run", "--quiet"});
  ASSERT_EQ(quiet.exit_code, 0) << quiet.err;
  EXPECT_EQ(quiet.out.find("projected"), std::string::npos) << quiet.out;
  ExpectUntouched();
  // The calibration's scratch stores are gone.
  for (const auto& e : stdfs::directory_iterator(t_.path()))
    EXPECT_EQ(e.path().filename().string().rfind("mbxmerge-bench-", 0), std::string::npos)
        << e.path();
}

TEST(BenchCmdTest, BadArgumentsAreRefusedWithExitTwo) {
  TempDir t;
  struct Case {
    std::vector<std::string> args;
    std::string says;
  };
  const std::vector<Case> cases = {
      {{"--users", "0"}, "--users"},       {{"--users", "2"}, "--users"},
      {{"--messages", "0"}, "--messages"}, {{"--format", "nope"}, "--format"},
      {{"--size", "10"}, "--size"},        {{"--dup-rate", "1.5"}, "--dup-rate"},
      {{"--jobs", "0"}, "--jobs"},         {{"--store", "/nonexistent"}, "/nonexistent"},
      {{"--users", "lots"}, "--users"},
  };
  for (const auto& c : cases) {
    std::vector<std::string> args{"bench"};
    args.insert(args.end(), c.args.begin(), c.args.end());
    CommandResult r = RunWithTmp(t.path(), args);
    EXPECT_EQ(r.exit_code, 2) << c.args[0] << ": " << r.out << r.err;
    EXPECT_NE(r.err.find(c.says), std::string::npos) << r.err;
    EXPECT_TRUE(r.out.empty()) << r.out;
  }
  EXPECT_TRUE(stdfs::is_empty(t.path())) << "a refused bench generated nothing";
}

// The projection arithmetic, in process.
TEST(BenchProjectionTest, ProjectAddsEachUsersCosts) {
  recovery::StoreWork work;
  work.users.push_back({"a", 100, 4'000'000, 300, 30'000'000});
  work.users.push_back({"b", 50, 1'000'000, 0, 0});
  work.merge_messages = 150;
  work.merge_bytes = 5'000'000;
  work.scan_messages = 300;
  work.scan_bytes = 30'000'000;
  recovery::BenchRates rates;
  rates.merge_bytes_per_s = 1'000'000;  // 1 MB/s merging
  rates.merge_messages_per_s = 30;
  rates.scan_bytes_per_s = 10'000'000;  // 10 MB/s scanning
  rates.jobs = 2;
  rates.format = "maildir";
  recovery::Projection p = recovery::Project(work, rates, "a test");
  // a: 30/10 + 4/1 = 7; b: 0 + 1/1 = 1.
  EXPECT_DOUBLE_EQ(p.seconds, 8.0);
  std::string text = recovery::ProjectionText("/srv/store", p);
  EXPECT_EQ(text.rfind("projected recover time for /srv/store: 8.0 s (2 users; 150 messages, "
                       "5000.0 KB (5000000 bytes) "
                       "to merge",
                       0),
            0u)
      << text;
  EXPECT_NE(text.find("300 messages, 30.0 MB (30000000 bytes) in the originals"), std::string::npos)
      << text;
  EXPECT_NE(text.find("--jobs 2"), std::string::npos) << text;

  // Rates too quick to measure add nothing rather than dividing by zero.
  recovery::BenchRates none;
  EXPECT_DOUBLE_EQ(recovery::Project(work, none, "x").seconds, 0.0);
  recovery::StoreWork empty;
  EXPECT_NE(recovery::ProjectionText("/s", recovery::Project(empty, rates, "x"))
                .find("nothing to recover"),
            std::string::npos);

  EXPECT_EQ(recovery::HumanDuration(42), "42 s");
  EXPECT_EQ(recovery::HumanDuration(200), "3 min 20 s");
  EXPECT_EQ(recovery::HumanDuration(2 * 3600 + 5 * 60), "2 h 05 min");
}

}  // namespace
}  // namespace mbx::testing
