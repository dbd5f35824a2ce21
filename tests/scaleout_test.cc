// Scale-out (docs/scale-out.md): N shards of one store run at once, a killed
// shard rerun alone, `report --merge`, and the local, Slurm and Kubernetes
// job files run here with their index variables set.

#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "engine/recovery/recover.h"
#include "tests/test_util.h"

namespace mbx::testing {
namespace {

namespace stdfs = std::filesystem;
using recovery::LockStore;
using recovery::ShardOf;
using recovery::Store;

const std::string kSourceDir = stdfs::path(__FILE__).parent_path().parent_path().string();

nlohmann::json ReadJson(const std::string& path) {
  return nlohmann::json::parse(ReadFileOrDie(path));
}

// Runs every command at the same time; results in the same order.
std::vector<CommandResult> RunAtOnce(const std::vector<std::vector<std::string>>& argvs) {
  std::vector<CommandResult> out(argvs.size());
  std::vector<std::thread> threads;
  for (size_t i = 0; i < argvs.size(); ++i)
    threads.emplace_back([&, i] { out[i] = testing::Run(argvs[i]); });
  for (auto& t : threads) t.join();
  return out;
}

std::vector<std::string> Recover(const std::string& store, const std::string& shard,
                                 const std::string& report) {
  return {MbxmergePath(), "recover", "--store", store,      "--shard", shard,
          "--jobs",       "1",       "--quiet", "--report", report};
}

// The records of a reconnect.ldif; a block that is neither a comment nor a
// whole "dn:" record (a torn append) is counted under "(torn)".
std::multiset<std::string> LdifRecords(const std::string& text) {
  std::multiset<std::string> out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find("\n\n", pos);
    std::string block = text.substr(pos, end == std::string::npos ? std::string::npos : end - pos);
    pos = end == std::string::npos ? text.size() : end + 2;
    while (!block.empty() && block.front() == '\n') block.erase(0, 1);
    if (block.empty() || block[0] == '#') continue;
    // Unfolded, a whole record is exactly: dn, changetype, replace, value, "-".
    std::vector<std::string> lines;
    size_t at = 0;
    while (at <= block.size()) {
      size_t nl = block.find('\n', at);
      std::string line = block.substr(at, nl == std::string::npos ? std::string::npos : nl - at);
      at = nl == std::string::npos ? block.size() + 1 : nl + 1;
      if (!line.empty() && line[0] == ' ' && !lines.empty()) {
        lines.back() += line.substr(1);
      } else {
        lines.push_back(line);
      }
    }
    bool whole = lines.size() == 5 && lines[0].rfind("dn:", 0) == 0 &&
                 lines[1] == "changetype: modify" && lines[2] == "replace: msExchMailboxGUID" &&
                 lines[3].rfind("msExchMailboxGUID:: ", 0) == 0 && lines[4] == "-";
    out.insert(whole ? block : "(torn)");
  }
  return out;
}

std::set<std::string> Listing(const std::string& dir) {
  std::set<std::string> out;
  if (!stdfs::is_directory(dir)) return out;
  for (const auto& e : stdfs::directory_iterator(dir)) out.insert(e.path().filename().string());
  return out;
}

// A store generated once, and the unsharded run on a copy of it: the reference
// every sharded run must equal.
class ScaleOutTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    tmp_ = new TempDir();
    auto g = RunMbxgen({"store", "--out", *tmp_ / "base", "--users", "24", "--messages", "8",
                        "--seed", "71", "--avg-size", "800"});
    ASSERT_EQ(g.exit_code, 0) << g.err;
    stdfs::copy(*tmp_ / "base", *tmp_ / "one", stdfs::copy_options::recursive);
    auto r = RunMbxmerge({"recover", "--store", *tmp_ / "one", "--jobs", "1", "--quiet", "--report",
                          *tmp_ / "one.json"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    reference_ = new nlohmann::json(ReadJson(*tmp_ / "one.json"));
  }
  static void TearDownTestSuite() {
    delete reference_;
    delete tmp_;
  }

  void SetUp() override {
    ASSERT_NE(reference_, nullptr);
    ASSERT_GE((*reference_)["users"].size(), 12u);  // enough users for every shard to have some
  }

  // A fresh copy of the generated store.
  std::string CopyOfStore(const std::string& name) {
    std::string dir = work_ / name;
    stdfs::copy(*tmp_ / "base", dir, stdfs::copy_options::recursive);
    return dir;
  }

  // `dir` after sharded runs equals the unsharded run's store: the same
  // messages in every mailbox (nothing lost, nothing doubled), the same blank
  // mailboxes retired, the same directory changes, none torn.
  void ExpectSameAsUnsharded(const std::string& dir) {
    const std::string one = *tmp_ / "one";
    EXPECT_EQ(Listing(dir + "/mailboxes"), Listing(one + "/mailboxes"));
    EXPECT_EQ(Listing(dir + "/retired"), Listing(one + "/retired"));
    for (const auto& name : Listing(one + "/mailboxes")) {
      EXPECT_EQ(MbxgenIdCounts(dir + "/mailboxes/" + name),
                MbxgenIdCounts(one + "/mailboxes/" + name))
          << name;
    }
    auto records = LdifRecords(ReadFileOrDie(dir + "/reconnect.ldif"));
    EXPECT_EQ(records.count("(torn)"), 0u);
    EXPECT_EQ(records, LdifRecords(ReadFileOrDie(one + "/reconnect.ldif")));
    EXPECT_EQ(records.size(), (*reference_)["users"].size());
  }

  // The joined report holds exactly the reference's users, each once.
  static void ExpectSameUsers(const nlohmann::json& joined) {
    std::multiset<std::string> got, want;
    for (const auto& u : joined["users"]) got.insert(u["alias"].get<std::string>());
    for (const auto& u : (*reference_)["users"]) want.insert(u["alias"].get<std::string>());
    EXPECT_EQ(got, want);
  }

  std::string Shard(int k) const { return std::to_string(k) + "/3"; }

  static TempDir* tmp_;
  static nlohmann::json* reference_;
  TempDir work_;
};

TempDir* ScaleOutTest::tmp_ = nullptr;
nlohmann::json* ScaleOutTest::reference_ = nullptr;

TEST_F(ScaleOutTest, ThreeShardsAtOnceEqualTheUnshardedRun) {
  std::string store = CopyOfStore("many");
  std::vector<std::vector<std::string>> runs;
  for (int k = 1; k <= 3; ++k)
    runs.push_back(Recover(store, Shard(k), work_ / ("r" + std::to_string(k) + ".json")));
  auto results = RunAtOnce(runs);
  for (const auto& r : results) ASSERT_EQ(r.exit_code, 0) << r.err;

  auto m = RunMbxmerge({"report", "--merge", work_ / "r1.json", work_ / "r2.json",
                        work_ / "r3.json", "--out", work_ / "joined.json"});
  ASSERT_EQ(m.exit_code, 0) << m.err;
  auto joined = ReadJson(work_ / "joined.json");
  ExpectSameUsers(joined);
  ExpectSameAsUnsharded(store);

  // Every user recovered, by the shard its alias hashes to, with the same counts as unsharded.
  std::map<std::string, nlohmann::json> want;
  for (const auto& u : (*reference_)["users"]) want[u["alias"]] = u;
  uint64_t written = 0, read = 0, dups = 0;
  for (int k = 1; k <= 3; ++k) {
    auto shard = ReadJson(work_ / ("r" + std::to_string(k) + ".json"));
    EXPECT_EQ(shard["shard"], Shard(k));
    EXPECT_FALSE(shard["users"].empty())
        << "shard " << k << " got no user: the split did not split";
    for (const auto& u : shard["users"]) {
      written += u["written"].get<uint64_t>();
      read += u["read"].get<uint64_t>();
      dups += u["duplicates_skipped"].get<uint64_t>();
    }
  }
  for (const auto& u : joined["users"]) {
    std::string alias = u["alias"];
    EXPECT_EQ(u["status"], "recovered") << alias;
    EXPECT_EQ(u["shard"], Shard(ShardOf(alias, 3))) << alias;
    EXPECT_EQ(u["written"], want[alias]["written"]) << alias;
    EXPECT_EQ(u["duplicates_skipped"], want[alias]["duplicates_skipped"]) << alias;
  }
  // Merged totals are the sum of the shards', which is the unsharded run's.
  uint64_t ref_written = 0;
  for (const auto& u : (*reference_)["users"]) ref_written += u["written"].get<uint64_t>();
  EXPECT_EQ(joined["totals"]["written"].get<uint64_t>(), written);
  EXPECT_EQ(joined["totals"]["read"].get<uint64_t>(), read);
  EXPECT_EQ(joined["totals"]["duplicates_skipped"].get<uint64_t>(), dups);
  EXPECT_EQ(written, ref_written);
  EXPECT_GT(written, 0u);
  EXPECT_EQ(joined["totals"]["users"], (*reference_)["users"].size());
  EXPECT_EQ(joined["shards"]["missing"], nlohmann::json::array());
  EXPECT_EQ(joined["merged_from"].size(), 3u);
  EXPECT_EQ(joined["exit_status"], 0);
}

// The store lock lets the shards of one split run together and refuses the
// runs that would overlap them.
TEST_F(ScaleOutTest, StoreLockAdmitsOneSplitAndRefusesOverlaps) {
  std::string store = CopyOfStore("locked");
  auto s = Store::Open(store);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  {
    auto held = LockStore(*s, std::make_pair(1, 3));  // shard 1/3 is running
    ASSERT_TRUE(held.ok()) << held.status().ToString();
    auto r = RunMbxmerge({"recover", "--store", store, "--shard", "2/3", "--quiet"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    // Export takes the same lock (its exit 1 is the store's users without a mailbox).
    r = RunMbxmerge(
        {"export", "--store", store, "--shard", "3/3", "--to", work_ / "exp", "--quiet"});
    EXPECT_NE(r.exit_code, 3) << r.err;
    EXPECT_EQ(r.err.find("in use"), std::string::npos) << r.err;
    r = RunMbxmerge({"recover", "--store", store, "--shard", "1/3", "--quiet"});
    EXPECT_EQ(r.exit_code, 3);
    EXPECT_NE(r.err.find("shard 1/3 is being run already"), std::string::npos) << r.err;
    r = RunMbxmerge({"recover", "--store", store, "--shard", "1/4", "--quiet"});
    EXPECT_EQ(r.exit_code, 3);
    EXPECT_NE(r.err.find("overlap"), std::string::npos) << r.err;
    r = RunMbxmerge({"recover", "--store", store, "--quiet"});
    EXPECT_EQ(r.exit_code, 3);
    EXPECT_NE(r.err.find("in use by another mbxmerge run"), std::string::npos) << r.err;
  }
  {
    auto whole = LockStore(*s);  // an unsharded run
    ASSERT_TRUE(whole.ok()) << whole.status().ToString();
    auto r = RunMbxmerge({"recover", "--store", store, "--shard", "1/3", "--quiet"});
    EXPECT_EQ(r.exit_code, 3);
    EXPECT_NE(r.err.find("in use by another mbxmerge run"), std::string::npos) << r.err;
  }
  // Released: the rest of the split finishes the store.
  for (const char* k : {"1/3", "3/3"}) {
    auto r = RunMbxmerge({"recover", "--store", store, "--shard", k, "--quiet"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
  }
  ExpectSameAsUnsharded(store);
}

// A shard SIGKILLed mid-run while the others run, then rerun alone, leaves the
// store as one unsharded run: nothing lost, nothing doubled, no torn record.
class KilledShardTest : public ScaleOutTest, public ::testing::WithParamInterface<const char*> {};

TEST_P(KilledShardTest, RerunAloneFinishesWithNothingLostOrDoubled) {
  // The shard with the most users, so that the kill comes with work left.
  std::map<int, int> per_shard;
  for (const auto& u : (*reference_)["users"])
    per_shard[ShardOf(u["alias"].get<std::string>(), 3)]++;
  int victim = 1;
  for (const auto& [k, n] : per_shard) {
    if (n > per_shard[victim]) victim = k;
  }
  ASSERT_GE(per_shard[victim], 3);

  std::string store = CopyOfStore("killed");
  std::vector<std::vector<std::string>> runs;
  for (int k = 1; k <= 3; ++k) {
    auto argv = Recover(store, Shard(k), work_ / ("r" + std::to_string(k) + ".json"));
    if (k == victim)
      argv.insert(argv.begin(), {"env", std::string("MBXMERGE_CRASH_AT=") + GetParam()});
    runs.push_back(argv);
  }
  auto results = RunAtOnce(runs);
  for (int k = 1; k <= 3; ++k) {
    if (k == victim) {
      ASSERT_EQ(results[static_cast<size_t>(k - 1)].exit_code, 128 + 9)
          << "shard " << k << " was not killed";
    } else {
      ASSERT_EQ(results[static_cast<size_t>(k - 1)].exit_code, 0)
          << results[static_cast<size_t>(k - 1)].err;
    }
  }
  std::string victim_report = work_ / ("r" + std::to_string(victim) + ".json");
  EXPECT_FALSE(stdfs::exists(victim_report));

  // Joining now names the missing shard.
  std::vector<std::string> reports;
  for (int k = 1; k <= 3; ++k) {
    if (k != victim) reports.push_back(work_ / ("r" + std::to_string(k) + ".json"));
  }
  std::vector<std::string> args{"report", "--merge"};
  args.insert(args.end(), reports.begin(), reports.end());
  auto partial = RunMbxmerge(args);
  EXPECT_EQ(partial.exit_code, 1) << partial.err;
  EXPECT_EQ(nlohmann::json::parse(partial.out)["shards"]["missing"],
            nlohmann::json::array({Shard(victim)}));

  auto rerun = RunMbxmerge({"recover", "--store", store, "--shard", Shard(victim), "--jobs", "1",
                            "--quiet", "--report", victim_report});
  ASSERT_EQ(rerun.exit_code, 0) << rerun.err;
  reports.push_back(victim_report);
  args = {"report", "--merge"};
  args.insert(args.end(), reports.begin(), reports.end());
  args.insert(args.end(), {"--out", work_ / "joined.json"});
  auto m = RunMbxmerge(args);
  ASSERT_EQ(m.exit_code, 0) << m.err;
  auto joined = ReadJson(work_ / "joined.json");
  ExpectSameUsers(joined);
  ExpectSameAsUnsharded(store);
  // The victim's users finished before the kill report as already recovered
  // by its rerun; at least one was left to do, so the kill was mid-run.
  std::map<std::string, int> victim_status;
  for (const auto& u : joined["users"]) {
    std::string status = u["status"];
    if (u["shard"] == Shard(victim)) {
      victim_status[status]++;
    } else {
      EXPECT_EQ(status, "recovered") << u.dump();
    }
  }
  EXPECT_GE(victim_status["already-recovered"], 1) << joined.dump();
  EXPECT_GE(victim_status["recovered"], 1) << joined.dump();
  EXPECT_EQ(victim_status["already-recovered"] + victim_status["recovered"], per_shard[victim]);

  // A second rerun finds the shard done and changes nothing.
  auto again = RunMbxmerge({"recover", "--store", store, "--shard", Shard(victim), "--quiet",
                            "--report", work_ / "again.json"});
  ASSERT_EQ(again.exit_code, 0) << again.err;
  auto again_report = ReadJson(work_ / "again.json");  // kept alive for the loop
  for (const auto& u : again_report["users"]) EXPECT_EQ(u["status"], "already-recovered");
  ExpectSameAsUnsharded(store);
}

INSTANTIATE_TEST_SUITE_P(
    CrashPoints, KilledShardTest,
    ::testing::Values("recover.ldif.mid-append:2",  // a torn record in the shared file
                      "recover.after-merge:2"),     // merged, not yet journaled
    [](const auto& info) {
      return std::string(info.index == 0 ? "TornLdif" : "MergedNotJournaled");
    });

// An unsharded run killed between a user's reconnect and retire, finished by
// a split: the shards read the unsharded journal, so that user is retired and
// its directory change kept, not skipped as "reconnect pending" nor dropped.
TEST_F(ScaleOutTest, ASplitFinishesAKilledUnshardedRun) {
  std::string store = CopyOfStore("resplit");
  auto killed =
      testing::Run({"env", "MBXMERGE_CRASH_AT=recover.after-journal-reconnected:2", MbxmergePath(),
                    "recover", "--store", store, "--jobs", "1", "--quiet"});
  ASSERT_EQ(killed.exit_code, 128 + 9) << killed.err;
  std::vector<std::vector<std::string>> runs;
  for (int k = 1; k <= 3; ++k)
    runs.push_back(Recover(store, Shard(k), work_ / ("r" + std::to_string(k) + ".json")));
  for (const auto& r : RunAtOnce(runs)) ASSERT_EQ(r.exit_code, 0) << r.err;
  auto m =
      RunMbxmerge({"report", "--merge", work_ / "r1.json", work_ / "r2.json", work_ / "r3.json"});
  ASSERT_EQ(m.exit_code, 0) << m.err;
  ExpectSameUsers(nlohmann::json::parse(m.out));
  ExpectSameAsUnsharded(store);
}

// The job files of docs/: the local xargs run, the Slurm array script and the
// Kubernetes Indexed Job's command, each run here for N=3 with its index set.
class JobFilesTest : public ScaleOutTest {
 protected:
  // `env PATH=<dir with mbxmerge>:$PATH VARS... argv...`: the job files call plain `mbxmerge`.
  std::vector<std::string> Env(const std::vector<std::string>& vars,
                               const std::vector<std::string>& argv) {
    std::string bin = work_ / "bin";
    if (!stdfs::exists(bin + "/mbxmerge")) {
      stdfs::create_directories(bin);
      stdfs::create_symlink(MbxmergePath(), bin + "/mbxmerge");
    }
    const char* path = std::getenv("PATH");
    std::vector<std::string> out{"env", "PATH=" + bin + ":" + (path ? path : "/usr/bin:/bin")};
    out.insert(out.end(), vars.begin(), vars.end());
    out.insert(out.end(), argv.begin(), argv.end());
    return out;
  }

  void JoinAndCompare(const std::string& store, const std::string& reports,
                      const std::string& joined_path) {
    std::vector<std::string> args{"report", "--merge"};
    for (int k = 1; k <= 3; ++k)
      args.push_back(reports + "/recover-" + std::to_string(k) + "-of-3.json");
    args.insert(args.end(), {"--out", joined_path});
    auto m = RunMbxmerge(args);
    ASSERT_EQ(m.exit_code, 0) << m.err;
    ExpectSameUsers(ReadJson(joined_path));
    ExpectSameAsUnsharded(store);
  }
};

TEST_F(JobFilesTest, LocalParallelRunOfTheGuide) {
  std::string doc = ReadFileOrDie(kSourceDir + "/docs/scale-out.md");
  size_t marker = doc.find("<!-- tested:");
  ASSERT_NE(marker, std::string::npos);
  size_t start = doc.find("```sh\n", marker);
  ASSERT_NE(start, std::string::npos);
  start += 6;
  std::string block = doc.substr(start, doc.find("```", start) - start);
  ASSERT_NE(block.find("xargs -P"), std::string::npos) << block;

  std::string store = CopyOfStore("local");
  std::string reports = work_ / "reports";
  auto r = testing::Run(Env({"STORE=" + store, "REPORTS=" + reports, "N=3"}, {"sh", "-ec", block}));
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  auto joined = ReadJson(reports + "/recover.json");
  EXPECT_EQ(joined["merged_from"].size(), 3u);
  JoinAndCompare(store, reports, work_ / "joined.json");
}

TEST_F(JobFilesTest, SlurmArrayScriptRunsEachIndex) {
  std::string script = kSourceDir + "/docs/slurm/recover-array.sbatch";
  auto syntax = testing::Run({"bash", "-n", script});
  ASSERT_EQ(syntax.exit_code, 0) << syntax.err;
  std::string text = ReadFileOrDie(script);
  EXPECT_NE(text.find("#SBATCH --array=1-"), std::string::npos);
  EXPECT_NE(text.find("SLURM_ARRAY_TASK_ID"), std::string::npos);

  std::string store = CopyOfStore("slurm");
  std::string reports = work_ / "reports";
  std::vector<std::vector<std::string>> tasks;
  for (int k = 1; k <= 3; ++k) {
    tasks.push_back(
        Env({"STORE=" + store, "REPORTS=" + reports, "SLURM_ARRAY_TASK_ID=" + std::to_string(k),
             "SLURM_ARRAY_TASK_COUNT=3", "SLURM_CPUS_PER_TASK=1"},
            {"bash", script}));
  }
  for (const auto& r : RunAtOnce(tasks)) ASSERT_EQ(r.exit_code, 0) << r.err;
  JoinAndCompare(store, reports, work_ / "joined.json");

  // A rerun of one task names N itself; an index outside 1..N is refused.
  auto rerun = testing::Run(Env({"STORE=" + store, "REPORTS=" + reports, "SLURM_ARRAY_TASK_ID=2",
                                 "SLURM_ARRAY_TASK_COUNT=1", "SHARDS=3"},
                                {"bash", script}));
  EXPECT_EQ(rerun.exit_code, 0) << rerun.err;
  auto rerun_report = ReadJson(reports + "/recover-2-of-3.json");  // kept alive for the loop
  for (const auto& u : rerun_report["users"]) EXPECT_EQ(u["status"], "already-recovered");
  auto outside = testing::Run(Env(
      {"STORE=" + store, "REPORTS=" + reports, "SLURM_ARRAY_TASK_ID=4", "SLURM_ARRAY_TASK_COUNT=3"},
      {"bash", script}));
  EXPECT_EQ(outside.exit_code, 2) << outside.err;
}

TEST_F(JobFilesTest, KubernetesIndexedJobRunsEachIndex) {
  std::string yaml = kSourceDir + "/docs/k8s/recover-indexed-job.yaml";
  auto parsed = testing::Run({"python3", "-c",
                              "import json, sys, yaml\n"
                              "print(json.dumps(list(yaml.safe_load_all(open(sys.argv[1])))))",
                              yaml});
  ASSERT_EQ(parsed.exit_code, 0) << "the YAML does not parse (python3-yaml installed?): "
                                 << parsed.err;
  auto docs = nlohmann::json::parse(parsed.out);
  ASSERT_EQ(docs.size(), 1u);
  const auto& job = docs[0];
  EXPECT_EQ(job["apiVersion"], "batch/v1");
  EXPECT_EQ(job["kind"], "Job");
  EXPECT_EQ(job["spec"]["completionMode"], "Indexed");
  const auto& pod = job["spec"]["template"]["spec"];
  EXPECT_EQ(pod["restartPolicy"], "Never");
  ASSERT_EQ(pod["containers"].size(), 1u);
  const auto& c = pod["containers"][0];
  std::map<std::string, std::string> env;
  for (const auto& e : c["env"]) env[e["name"]] = e["value"];
  ASSERT_TRUE(env.count("SHARDS") && env.count("STORE") && env.count("REPORTS"));
  int n = std::stoi(env["SHARDS"]);
  EXPECT_EQ(job["spec"]["completions"], n);
  EXPECT_EQ(job["spec"]["parallelism"], n);
  // The store is on a shared volume mounted where STORE points.
  ASSERT_EQ(c["volumeMounts"].size(), 1u);
  std::string mount = c["volumeMounts"][0]["mountPath"];
  EXPECT_EQ(env["STORE"].rfind(mount + "/", 0), 0u) << env["STORE"];
  EXPECT_TRUE(pod["volumes"][0].contains("persistentVolumeClaim"));
  ASSERT_EQ(c["command"], nlohmann::json::array({"/bin/sh", "-c"}));
  std::string script = c["args"][0];
  EXPECT_NE(script.find("JOB_COMPLETION_INDEX"), std::string::npos);

  // The container's command for indexes 0..2 of a 3-shard job, at once.
  std::string store = CopyOfStore("k8s");
  std::string reports = work_ / "reports";
  std::vector<std::vector<std::string>> pods;
  for (int i = 0; i < 3; ++i) {
    pods.push_back(Env({"SHARDS=3", "STORE=" + store, "REPORTS=" + reports,
                        "JOB_COMPLETION_INDEX=" + std::to_string(i)},
                       {"/bin/sh", "-c", script}));
  }
  for (const auto& r : RunAtOnce(pods)) ASSERT_EQ(r.exit_code, 0) << r.err;
  JoinAndCompare(store, reports, work_ / "joined.json");
}

// `report --merge` refuses what cannot be joined, naming the file.
TEST(ReportMergeTest, RefusesOverlapsMixesAndBadFiles) {
  TempDir t;
  auto user = [](const std::string& alias, const std::string& status, int written) {
    return nlohmann::json{{"alias", alias},          {"status", status},
                          {"read", written},         {"written", written},
                          {"duplicates_skipped", 1}, {"failures", nlohmann::json::array()}};
  };
  auto report = [&](const std::string& name, const std::string& command, const std::string& shard,
                    std::vector<nlohmann::json> users) {
    nlohmann::json j{{"command", command}, {"dry_run", false}, {"shard", shard},
                     {"users", users},     {"seconds", 1.5},   {"exit_status", 0}};
    WriteFileOrDie(t / name, j.dump());
    return t / name;
  };
  std::string a = report("a.json", "recover", "1/2", {user("alice", "recovered", 3)});
  std::string b = report("b.json", "recover", "2/2",
                         {user("bob", "recovered", 4), user("carol", "recovered", 0)});
  std::string overlap = report("overlap.json", "recover", "2/2", {user("ALICE", "recovered", 3)});
  std::string twice = report("twice.json", "recover", "1/2", {user("dave", "recovered", 1)});
  std::string exp = report("exp.json", "export", "2/2", {user("bob", "exported", 4)});
  std::string other_n = report("n3.json", "recover", "2/3", {user("bob", "recovered", 4)});
  auto failed = user("erin", "failed", 0);
  failed["error"] = "1 messages could not be merged; the source is kept";
  failed["failures"] = nlohmann::json::array({{{"message", "cur/123"}, {"reason", "unreadable"}}});
  std::string with_failure =
      report("fail.json", "recover", "2/2", {user("bob", "recovered", 4), failed});
  WriteFileOrDie(t / "bad.json", "{\"command\": \"recover\", \"users\": [");
  WriteFileOrDie(t / "alien.json", "{\"foo\": 1}");

  auto ok = RunMbxmerge({"report", "--merge", a, b});
  ASSERT_EQ(ok.exit_code, 0) << ok.err;
  auto joined = nlohmann::json::parse(ok.out);
  EXPECT_EQ(joined["totals"]["written"], 7);
  EXPECT_EQ(joined["totals"]["duplicates_skipped"], 3);
  EXPECT_EQ(joined["totals"]["users"], 3);
  EXPECT_EQ(joined["users"][1]["shard"], "2/2");
  EXPECT_EQ(joined["users"][1]["report"], b);
  EXPECT_EQ(joined["shards"]["present"], nlohmann::json::array({"1/2", "2/2"}));
  EXPECT_EQ(joined["seconds"], 1.5);
  EXPECT_EQ(joined["seconds_sum"], 3.0);

  auto expect_refused = [&](const std::vector<std::string>& files,
                            const std::vector<std::string>& words) {
    std::vector<std::string> args{"report", "--merge"};
    args.insert(args.end(), files.begin(), files.end());
    auto r = RunMbxmerge(args);
    EXPECT_EQ(r.exit_code, 2) << r.out;
    for (const auto& w : words)
      EXPECT_NE(r.err.find(w), std::string::npos) << w << " not in: " << r.err;
    EXPECT_TRUE(r.out.empty()) << r.out;
  };
  expect_refused({a, overlap}, {"alice", "disjoint", a, overlap});
  expect_refused({a, twice}, {"shard 1/2", a, twice});
  expect_refused({a, exp}, {"one command", exp});
  expect_refused({a, other_n}, {"share N", other_n});
  expect_refused({a, t / "bad.json"}, {t / "bad.json", "not valid JSON"});
  expect_refused({a, t / "alien.json"}, {t / "alien.json", "not an mbxmerge report"});
  expect_refused({a, t / "missing.json"}, {t / "missing.json"});

  // A joined report is not joined again.
  ASSERT_EQ(RunMbxmerge({"report", "--merge", a, b, "--out", t / "j.json", "--quiet"}).exit_code,
            0);
  expect_refused({t / "j.json"}, {"already a joined report"});

  // Failures are kept with their shard; a failed user or a missing shard is exit 1.
  auto f = RunMbxmerge({"report", "--merge", a, with_failure});
  EXPECT_EQ(f.exit_code, 1) << f.err;
  auto fj = nlohmann::json::parse(f.out);
  ASSERT_EQ(fj["failures"].size(), 2u);
  EXPECT_EQ(fj["failures"][0]["shard"], "2/2");
  EXPECT_EQ(fj["failures"][0]["alias"], "erin");
  EXPECT_EQ(fj["failures"][1]["reason"], "unreadable");
  auto alone = RunMbxmerge({"report", "--merge", a});
  EXPECT_EQ(alone.exit_code, 1);
  EXPECT_EQ(nlohmann::json::parse(alone.out)["shards"]["missing"], nlohmann::json::array({"2/2"}));

  auto help = RunMbxmerge({"report", "--help"});
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_NE(help.out.find("--merge"), std::string::npos);
  EXPECT_EQ(RunMbxmerge({"report"}).exit_code, 2);
}

// Plain `merge --report` files join too: runs listed, totals summed.
TEST(ReportMergeTest, JoinsMergeReports) {
  TempDir t;
  for (const char* seed : {"1", "2"}) {
    auto g = RunMbxgen({"mailbox", "--format", "mbox", "--out", t / (std::string(seed) + ".mbox"),
                        "--messages", "5", "--seed", seed});
    ASSERT_EQ(g.exit_code, 0) << g.err;
    auto r = RunMbxmerge({"merge", "--from", t / (std::string(seed) + ".mbox"), "--into",
                          t / (std::string("box") + seed), "--quiet", "--report",
                          t / (std::string(seed) + ".json")});
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  auto m = RunMbxmerge({"report", "--merge", t / "1.json", t / "2.json"});
  ASSERT_EQ(m.exit_code, 0) << m.err;
  auto j = nlohmann::json::parse(m.out);
  EXPECT_EQ(j["command"], "merge");
  ASSERT_EQ(j["runs"].size(), 2u);
  auto one = nlohmann::json::parse(ReadFileOrDie(t / "1.json"));
  auto two = nlohmann::json::parse(ReadFileOrDie(t / "2.json"));
  for (const char* key : {"read", "written", "duplicates_skipped", "bytes_written"}) {
    EXPECT_EQ(j["totals"][key].get<uint64_t>(),
              one["totals"][key].get<uint64_t>() + two["totals"][key].get<uint64_t>())
        << key;
  }
  EXPECT_GT(j["totals"]["written"].get<uint64_t>(), 0u);
  auto twice = RunMbxmerge({"report", "--merge", t / "1.json", t / "1.json"});
  EXPECT_EQ(twice.exit_code, 2);
  EXPECT_NE(twice.err.find("disjoint"), std::string::npos) << twice.err;
}

}  // namespace
}  // namespace mbx::testing
