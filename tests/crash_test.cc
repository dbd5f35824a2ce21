// kill -9 at many points of merge and recover, then run the same command
// again: nothing lost, nothing doubled, sources intact.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "formats/registry.h"
#include "formats/pst/check/check.h"
#include "tests/test_util.h"

extern char** environ;

namespace mbx {
namespace {

namespace stdfs = std::filesystem;
using testing::ReadFileOrDie;
using testing::RunMbxgen;
using testing::RunMbxmerge;
using testing::TempDir;

// Starts mbxmerge, kills it with SIGKILL after `delay_us`; true if it had
// already finished by then (with exit status 0).
bool RunAndKill(const std::vector<std::string>& args, useconds_t delay_us) {
  std::vector<std::string> argv{testing::MbxmergePath()};
  argv.insert(argv.end(), args.begin(), args.end());
  std::vector<char*> cargv;
  for (auto& a : argv) cargv.push_back(a.data());
  cargv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
  pid_t pid;
  if (posix_spawn(&pid, cargv[0], &fa, nullptr, cargv.data(), environ) != 0) return false;
  posix_spawn_file_actions_destroy(&fa);
  ::usleep(delay_us);
  ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

std::map<std::string, size_t> Sizes(const std::string& dir) {
  std::map<std::string, size_t> out;
  for (const auto& f : testing::ListFilesRecursive(dir)) out[f] = stdfs::file_size(dir + "/" + f);
  return out;
}

// A PST target is all or nothing: killed before the end, no PST exists (only
// the temporary file beside it, replaced by the next run); the run that gets
// through holds every message once and passes the strict checker.
TEST(PstCrashTest, PstTargetKilledAnywhereIsAllOrNothing) {
  TempDir tmp;
  auto g = RunMbxgen({"mailbox", "--format", "mbox", "--out", tmp / "src.mbox", "--messages", "1500", "--seed",
                      "78", "--manifest", tmp / "m.tsv"});
  ASSERT_EQ(g.exit_code, 0) << g.err;
  const std::string target = tmp / "out.pst";
  std::vector<std::string> cmd{"merge", "--from", tmp / "src.mbox", "--into", target, "--batch", "25", "--quiet"};
  int kills = 0;
  bool done = false;
  for (useconds_t delay = 2000; !done && kills < 40; delay += 2500 + 900 * static_cast<useconds_t>(kills % 5)) {
    done = RunAndKill(cmd, delay);
    // Killed after the rename but before exiting: the file is complete.
    if (!done && stdfs::exists(target)) done = true;
    if (!done) {
      ++kills;
      EXPECT_FALSE(stdfs::exists(target)) << "a partial PST after kill " << kills;
    }
  }
  if (!done) {
    auto r = RunMbxmerge(cmd);
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  EXPECT_GE(kills, 3) << "the run was too fast to be killed; nothing was tested";
  auto report = pst::check::CheckPst(target);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_TRUE(report->violations.empty());
  auto ids = testing::MbxgenIdCounts(target);
  auto want = testing::ManifestIds(tmp / "m.tsv");
  for (const auto& id : want) EXPECT_EQ(ids[id], 1) << id << " after " << kills << " kills";
  EXPECT_EQ(ids.size(), want.size());
}

class CrashTest : public ::testing::TestWithParam<const char*> {};

// Kill a merge again and again at growing delays until a run gets through;
// every run after a kill is the same command.
TEST_P(CrashTest, MergeKilledAnywhereResumesExactlyOnce) {
  TempDir tmp;
  std::string target_kind = GetParam();
  auto g = RunMbxgen({"pair", "--format", "mbox", "--out-a", tmp / "src/a.mbox", "--out-b", tmp / "src/b.mbox",
                      "--messages", "1500", "--dup-rate", "0.2", "--seed", "77", "--manifest", tmp / "m.tsv"});
  ASSERT_EQ(g.exit_code, 0) << g.err;
  auto sources_before = Sizes(tmp / "src");
  std::string target = target_kind == "mbox" ? tmp / "out.mbox" : "maildir:" + tmp / "out";
  std::vector<std::string> cmd{"merge", "--from", tmp / "src/a.mbox", "--from", tmp / "src/b.mbox", "--into",
                               target, "--batch", "25", "--jobs", "2", "--quiet"};
  int kills = 0;
  bool done = false;
  for (useconds_t delay = 2000; !done && kills < 40; delay += 1500 + 700 * static_cast<useconds_t>(kills % 5)) {
    done = RunAndKill(cmd, delay);
    if (!done) ++kills;
  }
  if (!done) {
    auto r = RunMbxmerge(cmd);
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  EXPECT_GE(kills, 3) << "the run was too fast to be killed; nothing was tested";
  auto ids = testing::MbxgenIdCounts(target);
  auto want = testing::ManifestIds(tmp / "m.tsv");
  for (const auto& id : want) EXPECT_EQ(ids[id], 1) << id << " after " << kills << " kills";
  EXPECT_EQ(ids.size(), want.size());
  EXPECT_EQ(Sizes(tmp / "src"), sources_before);
  EXPECT_FALSE(stdfs::exists(tmp / "out.mbox.mbxmerge-undo"));
}

INSTANTIATE_TEST_SUITE_P(Targets, CrashTest, ::testing::Values("mbox", "maildir"));

TEST(CrashRecoverTest, RecoverKilledAnywhereResumesWithCompleteChangeFile) {
  TempDir tmp;
  auto g = RunMbxgen({"store", "--out", tmp / "store", "--users", "12", "--messages", "60", "--seed", "5",
                      "--manifest", tmp / "m.tsv"});
  ASSERT_EQ(g.exit_code, 0) << g.err;
  std::vector<std::string> cmd{"recover", "--store", tmp / "store", "--batch", "5", "--quiet"};
  int kills = 0;
  bool done = false;
  for (useconds_t delay = 3000; !done && kills < 40; delay += 2500) {
    done = RunAndKill(cmd, delay);
    if (!done) ++kills;
  }
  if (!done) {
    auto r = RunMbxmerge(cmd);
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  EXPECT_GE(kills, 3);
  // The users manifest: alias, display, state, objectGUID, connected, original, files...
  std::istringstream users(ReadFileOrDie(tmp / "m.tsv.users"));
  std::string line;
  size_t blank_connected = 0;
  std::string ldif = ReadFileOrDie(tmp / "store/reconnect.ldif");
  while (std::getline(users, line)) {
    std::vector<std::string> c;
    std::stringstream ss(line);
    std::string col;
    while (std::getline(ss, col, '\t')) c.push_back(col);
    if (c.size() < 6 || c[2] != "blank-connected") continue;
    ++blank_connected;
    std::string blank_file = c[6];
    while (!blank_file.empty() && blank_file.back() == '/') blank_file.pop_back();
    EXPECT_TRUE(stdfs::exists(tmp / ("store/retired/" + blank_file))) << c[0];
    EXPECT_FALSE(stdfs::exists(tmp / ("store/mailboxes/" + blank_file))) << c[0];
  }
  ASSERT_GT(blank_connected, 5u);
  size_t records = 0;
  for (size_t p = 0; (p = ldif.find("changetype: modify", p)) != std::string::npos; ++p) ++records;
  EXPECT_EQ(records, blank_connected);
  // Every message of every blank-connected user is in its original mailbox exactly once.
  std::map<std::string, std::set<std::string>> expect;  // original file -> ids
  std::istringstream msgs(ReadFileOrDie(tmp / "m.tsv"));
  std::map<std::string, std::string> original_of;
  std::istringstream users2(ReadFileOrDie(tmp / "m.tsv.users"));
  while (std::getline(users2, line)) {
    std::vector<std::string> c;
    std::stringstream ss(line);
    std::string col;
    while (std::getline(ss, col, '\t')) c.push_back(col);
    if (c.size() >= 8 && c[2] == "blank-connected") original_of[c[0]] = c[7];
  }
  while (std::getline(msgs, line)) {
    std::vector<std::string> c;
    std::stringstream ss(line);
    std::string col;
    while (std::getline(ss, col, '\t')) c.push_back(col);
    if (c.size() >= 3 && original_of.count(c[0])) expect[original_of[c[0]]].insert(c[2]);
  }
  ASSERT_EQ(expect.size(), blank_connected);
  for (const auto& [file, ids] : expect) {
    std::string path = tmp / ("store/mailboxes/" + file);
    while (!path.empty() && path.back() == '/') path.pop_back();
    auto got = testing::MbxgenIdCounts(path);
    for (const auto& id : ids) EXPECT_EQ(got[id], 1) << file << " " << id;
  }
}

}  // namespace
}  // namespace mbx
