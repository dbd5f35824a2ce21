// Fault injection (issues 4 and 8): kill -9 at every named crash point
// (engine/faultpoint.h) a merge or recover run passes, run the same command
// again, and check that nothing was lost or doubled, the sources are intact and
// the result equals an uninterrupted run's. Also a full disk and a read-only
// target: one clear error, exit status 3, a valid target, an intact source.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <functional>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "engine/recovery/store.h"
#include "formats/ldif/ldif.h"
#include "formats/registry.h"
#include "tests/test_util.h"

extern char** environ;

namespace mbx {
namespace {

namespace stdfs = std::filesystem;
using testing::ReadFileOrDie;
using testing::RunMbxgen;
using testing::RunMbxmerge;
using testing::TempDir;

struct Child {
  int status = 0;
  std::string out;  // stdout and stderr
  bool Killed() const { return WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL; }
  int ExitCode() const { return WIFEXITED(status) ? WEXITSTATUS(status) : -1; }
};

struct SpawnOptions {
  std::vector<std::string> env;  // NAME=VALUE added to a copy of ours without MBXMERGE_CRASH_*
  rlim_t max_file_size = RLIM_INFINITY;
  uid_t uid = 0;  // run as this user (and its group) when we are root and it is not 0
};

// Runs mbxmerge with `args`, keeping its stdout and stderr together.
Child Spawn(const std::vector<std::string>& args, const SpawnOptions& opt = {}) {
  std::vector<std::string> argv{testing::MbxmergePath()};
  argv.insert(argv.end(), args.begin(), args.end());
  std::vector<std::string> envs;
  for (char** e = environ; *e; ++e) {
    if (!std::string_view(*e).starts_with("MBXMERGE_CRASH_")) envs.emplace_back(*e);
  }
  envs.insert(envs.end(), opt.env.begin(), opt.env.end());
  std::vector<char*> cargv, cenv;
  for (auto& a : argv) cargv.push_back(a.data());
  cargv.push_back(nullptr);
  for (auto& e : envs) cenv.push_back(e.data());
  cenv.push_back(nullptr);
  char err_path[] = "/tmp/mbx-fault-stderr-XXXXXX";
  int err_fd = ::mkstemp(err_path);
  if (err_fd < 0) return {};
  ::unlink(err_path);
  pid_t pid = ::fork();
  if (pid == 0) {
    // Only async-signal-safe calls between fork and exec.
    ::dup2(err_fd, 1);
    ::dup2(err_fd, 2);
    if (opt.max_file_size != RLIM_INFINITY) {
      // A write past the limit must fail with EFBIG, as on a full disk, not kill.
      ::signal(SIGXFSZ, SIG_IGN);
      struct rlimit rl = {opt.max_file_size, opt.max_file_size};
      if (::setrlimit(RLIMIT_FSIZE, &rl) != 0) ::_exit(126);
    }
    if (opt.uid != 0 && (::setgid(opt.uid) != 0 || ::setuid(opt.uid) != 0)) ::_exit(125);
    ::execve(cargv[0], cargv.data(), cenv.data());
    ::_exit(127);
  }
  Child c;
  ::waitpid(pid, &c.status, 0);
  ::lseek(err_fd, 0, SEEK_SET);
  char buf[4096];
  for (ssize_t n; (n = ::read(err_fd, buf, sizeof buf)) > 0;) c.out.append(buf, size_t(n));
  ::close(err_fd);
  return c;
}

// Every regular file below `dir` (relative path -> bytes).
std::map<std::string, std::string> Files(const std::string& dir) {
  std::map<std::string, std::string> out;
  if (!stdfs::exists(dir)) return out;
  if (stdfs::is_regular_file(dir)) return {{"", ReadFileOrDie(dir)}};
  for (const auto& f : testing::ListFilesRecursive(dir)) out[f] = ReadFileOrDie(dir + "/" + f);
  return out;
}

// A mailbox as its messages: "folder|flags|bytes" -> count. Names, order and
// leftovers (tmp/, journals) do not matter; content, folders and flags do.
std::map<std::string, int> Content(const std::string& spec) {
  std::map<std::string, int> out;
  auto loc = ParseLocation(spec, false);
  if (!loc.ok()) return {{"(cannot open) " + loc.status().ToString(), 1}};
  auto src = OpenSource(*loc);
  if (!src.ok()) return {{"(cannot open) " + src.status().ToString(), 1}};
  Message m;
  for (;;) {
    auto more = (*src)->Next(&m);
    if (!more.ok()) return {{"(unreadable) " + more.status().ToString(), 1}};
    if (!*more) break;
    auto mime = m.Mime();
    std::string bytes = mime.ok() ? std::string(*mime) : "(unreadable)";
    out[m.folder + "|" + std::to_string(m.flags) + "|" + bytes]++;
  }
  return out;
}

// Point name -> times reached, from a MBXMERGE_CRASH_LIST file.
std::map<std::string, int> ReadPointList(const std::string& path) {
  std::map<std::string, int> out;
  std::istringstream in(stdfs::exists(path) ? ReadFileOrDie(path) : "");
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) out[line]++;
  }
  return out;
}

void CopyTree(const std::string& from, const std::string& to) {
  stdfs::remove_all(to);
  stdfs::copy(from, to, stdfs::copy_options::recursive);
}

void Gen(const std::vector<std::string>& args) {
  auto r = RunMbxgen(args);
  ASSERT_EQ(r.exit_code, 0) << r.err;
}

void Merge(const std::vector<std::string>& args) {
  std::vector<std::string> a{"merge"};
  a.insert(a.end(), args.begin(), args.end());
  a.push_back("--quiet");
  auto r = RunMbxmerge(a);
  ASSERT_EQ(r.exit_code, 0) << r.err;
}

// ---- merge scenarios ----

struct MergeScenario {
  const char* name;
  // Writes the sources (and a pre-filled target) below `w`, the manifest to `manifest`.
  std::function<void(const std::string& w, const std::string& manifest)> make;
  std::vector<std::string> sources;  // below w
  std::string target;                // a spec, with "W" for w
  std::vector<std::string> options;
  bool archive = false;
  bool replace = false;
};

// gtest prints the name, not the bytes.
void PrintTo(const MergeScenario& sc, std::ostream* os) { *os << sc.name; }

std::string Subst(const std::string& s, const std::string& w) {
  return s.rfind("W", 0) == 0 ? w + s.substr(1) : s;
}
std::string SubstSpec(const std::string& spec, const std::string& w) {
  size_t colon = spec.find(':');
  if (colon == std::string::npos) return Subst(spec, w);
  return spec.substr(0, colon + 1) + Subst(spec.substr(colon + 1), w);
}

std::vector<MergeScenario> MergeScenarios() {
  auto pair = [](const char* format, int seed, bool folders) {
    return [=](const std::string& w, const std::string& manifest) {
      bool mbox = std::string(format) == "mbox";
      std::vector<std::string> args{"pair",
                                    "--format",
                                    format,
                                    "--out-a",
                                    w + (mbox ? "/a.mbox" : "/a"),
                                    "--out-b",
                                    w + (mbox ? "/b.mbox" : "/b"),
                                    "--messages",
                                    "40",
                                    "--dup-rate",
                                    "0.25",
                                    "--seed",
                                    std::to_string(seed),
                                    "--manifest",
                                    manifest};
      if (folders) args.insert(args.end(), {"--folders", "3"});
      Gen(args);
    };
  };
  std::vector<MergeScenario> out;
  out.push_back({"mbox_mbox_to_maildir",
                 pair("mbox", 101, false),
                 {"W/a.mbox", "W/b.mbox"},
                 "maildir:W/out",
                 {}});
  out.push_back({"maildir_to_mbox",
                 [=](const std::string& w, const std::string& m) {
                   pair("maildir", 102, true)(w, m);
                   Merge({"--from", "maildir:" + w + "/a", "--into", w + "/out.mbox"});
                   stdfs::remove_all(w + "/a");
                 },
                 {"maildir:W/b"},
                 "W/out.mbox",
                 {}});
  out.push_back({"archive_from_mbox",
                 [=](const std::string& w, const std::string& m) {
                   pair("mbox", 103, false)(w, m);
                   Merge({"--from", w + "/a.mbox", "--into", "maildir:" + w + "/out"});
                   stdfs::remove(w + "/a.mbox");
                 },
                 {"W/b.mbox"},
                 "maildir:W/out",
                 {"--mode", "archive"},
                 /*archive=*/true});
  out.push_back({"archive_from_maildir",
                 pair("maildir", 104, true),
                 {"maildir:W/b"},
                 "maildir:W/a",
                 {"--mode", "archive"},
                 /*archive=*/true});
  out.push_back({"replace_message_id_into_maildir",
                 pair("maildir", 105, true),
                 {"maildir:W/b"},
                 "maildir:W/a",
                 {"--mode", "replace", "--dedupe", "message-id"},
                 /*archive=*/false,
                 /*replace=*/true});
  out.push_back({"mbox_to_eml",
                 [](const std::string& w, const std::string& m) {
                   Gen({"mailbox", "--format", "mbox", "--out", w + "/a.mbox", "--messages", "36",
                        "--seed", "106", "--manifest", m});
                 },
                 {"W/a.mbox"},
                 "eml:W/out",
                 {}});
  return out;
}

class MergeFaultTest : public ::testing::TestWithParam<MergeScenario> {
 protected:
  void SetUp() override {
    const MergeScenario& sc = GetParam();
    base_ = tmp_ / "base";
    work_ = tmp_ / "work";
    stdfs::create_directories(base_);
    sc.make(base_, tmp_ / "m.tsv");
    want_ = testing::ManifestIds(tmp_ / "m.tsv");
    ASSERT_GE(want_.size(), 30u);
  }

  std::vector<std::string> Command() const {
    const MergeScenario& sc = GetParam();
    std::vector<std::string> cmd{"merge"};
    for (const auto& s : sc.sources) cmd.insert(cmd.end(), {"--from", SubstSpec(s, work_)});
    cmd.insert(cmd.end(),
               {"--into", SubstSpec(sc.target, work_), "--batch", "5", "--jobs", "2", "--quiet"});
    cmd.insert(cmd.end(), sc.options.begin(), sc.options.end());
    return cmd;
  }
  std::string Target() const { return SubstSpec(GetParam().target, work_); }
  std::vector<std::string> SourceSpecs() const {
    std::vector<std::string> out;
    for (const auto& s : GetParam().sources) out.push_back(SubstSpec(s, work_));
    return out;
  }
  static std::string PathOf(const std::string& spec) {
    size_t colon = spec.find(':');
    return colon == std::string::npos ? spec : spec.substr(colon + 1);
  }
  std::map<std::string, int> SourceIds() const {
    std::map<std::string, int> ids;
    for (const auto& s : SourceSpecs()) {
      for (const auto& [id, n] : testing::MbxgenIdCounts(s)) ids[id] += n;
    }
    return ids;
  }
  // Sources and target as messages.
  std::pair<std::vector<std::map<std::string, int>>, std::map<std::string, int>> State() const {
    std::vector<std::map<std::string, int>> sources;
    for (const auto& s : SourceSpecs()) sources.push_back(Content(s));
    return {sources, Content(Target())};
  }

  // The invariants of a finished run.
  void CheckFinished(const std::string& what) const {
    const MergeScenario& sc = GetParam();
    auto ids = testing::MbxgenIdCounts(Target());
    for (const auto& id : want_) EXPECT_EQ(ids[id], 1) << what << ": " << id;
    EXPECT_EQ(ids.size(), want_.size()) << what << ": ids not from the manifest in the target";
    if (!sc.archive) {
      for (const auto& s : SourceSpecs()) {
        std::string p = PathOf(s);
        EXPECT_TRUE(Files(p) == Files(base_ + p.substr(work_.size())))
            << what << ": source " << p << " changed";
      }
    }
    std::string t = PathOf(Target());
    EXPECT_FALSE(stdfs::exists(t + ".mbxmerge-undo")) << what;
    EXPECT_FALSE(stdfs::exists(t + "/.mbxmerge-replace")) << what;
    // Messages written ahead into tmp/ and left by a killed run, and the
    // duplicates' files written in vain, are all gone.
    if (stdfs::is_directory(t)) {
      for (const auto& e : stdfs::recursive_directory_iterator(t)) {
        if (e.is_directory() && e.path().filename() == "tmp") {
          EXPECT_TRUE(stdfs::is_empty(e.path())) << what << ": files left in " << e.path();
        }
      }
    }
  }

  TempDir tmp_;
  std::string base_, work_;
  std::set<std::string> want_;
};

TEST_P(MergeFaultTest, KilledAtEveryPointResumesToTheSameResult) {
  const MergeScenario& sc = GetParam();
  const std::string list = tmp_ / "points";
  // The uninterrupted run: the reference, and the points it passes.
  CopyTree(base_, work_);
  Child ref = Spawn(Command(), {{"MBXMERGE_CRASH_LIST=" + list}});
  ASSERT_EQ(ref.ExitCode(), 0) << ref.out;
  CheckFinished("uninterrupted run");
  auto reference = State();
  std::map<std::string, int> points = ReadPointList(list);
  ASSERT_GE(points.size(), 6u) << "too few crash points reached; is MBXMERGE_CRASH_LIST honoured?";
  if (sc.archive) {
    for (const auto& s : reference.first) EXPECT_TRUE(s.empty()) << "archive left messages";
  }

  int crashes = 0;
  for (const auto& [point, count] : points) {
    // Every point the first time; between messages and between batches also
    // in the middle of the run, so that a resume after several durable
    // batches is tested too.
    std::set<int> nths{1};
    if (count >= 3 && (point == "merge.commit.after-stage" || point == "merge.batch.after-flush"))
      nths.insert((count + 1) / 2);
    for (int nth : nths) {
      std::string at = point + ":" + std::to_string(nth);
      SCOPED_TRACE(std::string(sc.name) + " killed at " + at);
      CopyTree(base_, work_);
      auto source_ids_before = SourceIds();
      Child killed = Spawn(Command(), {{"MBXMERGE_CRASH_AT=" + at}});
      ASSERT_TRUE(killed.Killed()) << "status " << killed.status << ": " << killed.out;
      ++crashes;
      // At the instant of the crash: what left a source is in the target.
      auto in_target = testing::MbxgenIdCounts(Target());
      auto source_ids = SourceIds();
      for (const auto& [id, n] : source_ids_before) {
        if (source_ids[id] < n) {
          EXPECT_GE(in_target[id], 1) << "lost from the source: " << id;
        }
      }
      if (!sc.replace) {
        // (--mode replace may hold both copies until the journal is finished.)
        for (const auto& [id, n] : in_target) EXPECT_LE(n, 1) << "doubled at the crash: " << id;
      }
      Child again = Spawn(Command());
      ASSERT_EQ(again.ExitCode(), 0) << again.out;
      CheckFinished("after the rerun");
      auto state = State();
      EXPECT_TRUE(state.first == reference.first)
          << "the sources differ from an uninterrupted run's";
      EXPECT_TRUE(state.second == reference.second)
          << "the target differs from an uninterrupted run's";
      if (HasFailure()) return;  // one broken point is enough to read
    }
  }
  EXPECT_GE(crashes, static_cast<int>(points.size()));
  // Quoted by docs/reliability.md.
  std::printf("[ faults   ] merge %s: %d kill -9 at %zu points, every rerun equal to the uninterrupted run\n",
              sc.name, crashes, points.size());
}

INSTANTIATE_TEST_SUITE_P(Merge, MergeFaultTest, ::testing::ValuesIn(MergeScenarios()),
                         [](const auto& info) { return std::string(info.param.name); });

// ---- recover ----

struct StoreUser {
  std::string alias, state, object_guid, blank_file, original_file;
};

std::vector<StoreUser> ReadStoreUsers(const std::string& path) {
  std::vector<StoreUser> out;
  std::istringstream in(ReadFileOrDie(path));
  for (std::string line; std::getline(in, line);) {
    std::vector<std::string> c;
    std::stringstream ss(line);
    for (std::string col; std::getline(ss, col, '\t');) c.push_back(col);
    if (c.size() < 8) continue;
    auto strip = [](std::string f) {
      while (!f.empty() && f.back() == '/') f.pop_back();
      return f;
    };
    out.push_back({c[0], c[2], c[3], strip(c[6]), strip(c[7])});
  }
  return out;
}

class RecoverFaultTest : public ::testing::Test {
 protected:
  void SetUp() override {
    base_ = tmp_ / "base";
    work_ = tmp_ / "work";
    Gen({"store", "--out", base_, "--users", "4", "--messages", "30", "--seed", "9", "--manifest",
         tmp_ / "m.tsv"});
    users_ = ReadStoreUsers(tmp_ / "m.tsv.users");
    std::istringstream msgs(ReadFileOrDie(tmp_ / "m.tsv"));
    for (std::string line; std::getline(msgs, line);) {
      std::vector<std::string> c;
      std::stringstream ss(line);
      for (std::string col; std::getline(ss, col, '\t');) c.push_back(col);
      if (c.size() >= 3) ids_of_[c[0]].insert(c[2]);
    }
    for (const auto& u : users_) blank_connected_ += u.state == "blank-connected";
    ASSERT_GE(blank_connected_, 2u);
  }

  std::vector<std::string> Command() const {
    return {"recover", "--store", work_, "--batch", "5", "--jobs", "2", "--quiet"};
  }

  // Every mailbox file of mailboxes/ and retired/ as messages, and the change file.
  std::map<std::string, std::map<std::string, int>> State() const {
    std::map<std::string, std::map<std::string, int>> out;
    for (const char* dir : {"/mailboxes", "/retired"}) {
      if (!stdfs::exists(work_ + dir)) continue;
      for (const auto& e : stdfs::directory_iterator(work_ + dir)) {
        std::string p = e.path().string();
        out[p.substr(work_.size())] = Content(p);
      }
    }
    std::string ldif = work_ + "/reconnect.ldif";
    out["reconnect.ldif"] = {{stdfs::exists(ldif) ? ReadFileOrDie(ldif) : "(none)", 1}};
    return out;
  }

  // reconnect.ldif: whole records only, one per recovered user, each replacing
  // msExchMailboxGUID with the user's objectGUID; the LDIF reader parses them.
  void CheckChangeFile() const {
    std::string text = ReadFileOrDie(work_ + "/reconnect.ldif");
    ASSERT_TRUE(text.ends_with("\n")) << "torn change file";
    auto store = recovery::Store::Open(work_);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    // ldif::Parse reads directory exports; the change lines are checked and
    // taken out here, the rest (dn, base64, folding) goes through the reader.
    std::string content;
    size_t changes = 0;
    std::istringstream blocks(text);
    std::string block, line;
    auto finish = [&] {
      if (block.empty()) return;
      bool has_dn = block.rfind("dn:", 0) == 0;
      if (has_dn) {
        EXPECT_NE(block.find("\nchangetype: modify\nreplace: msExchMailboxGUID\n"),
                  std::string::npos)
            << block;
        EXPECT_TRUE(block.ends_with("\n-\n")) << "an incomplete change record:\n" << block;
        ++changes;
      }
      std::istringstream bl(block);
      for (std::string l; std::getline(bl, l);) {
        if (l == "-" || l == "changetype: modify") continue;
        content += l + "\n";
      }
      content += "\n";
      block.clear();
    };
    while (std::getline(blocks, line)) {
      if (line.empty()) {
        finish();
      } else if (line[0] != '#') {
        block += line + "\n";
      }
    }
    finish();
    auto records = ldif::Parse(content, "reconnect.ldif");
    ASSERT_TRUE(records.ok()) << records.status().ToString() << "\n" << text;
    EXPECT_EQ(records->size(), changes);
    EXPECT_EQ(records->size(), blank_connected_);
    std::set<std::string> seen;
    for (const auto& r : *records) {
      const recovery::User* user = nullptr;
      for (const auto& u : store->users()) {
        if (u.dn == r.dn) user = &u;
      }
      ASSERT_NE(user, nullptr) << r.dn;
      EXPECT_TRUE(seen.insert(user->alias).second) << "twice: " << user->alias;
      ASSERT_NE(r.Get("replace"), nullptr);
      EXPECT_EQ(*r.Get("replace"), "msExchMailboxGUID");
      const std::string* guid = r.Get("msExchMailboxGUID");
      ASSERT_NE(guid, nullptr);
      ASSERT_TRUE(user->object_guid.has_value());
      EXPECT_EQ(*guid, user->object_guid->Raw()) << user->alias;
    }
    for (const auto& u : users_) {
      if (u.state == "blank-connected") {
        EXPECT_TRUE(seen.count(u.alias)) << u.alias;
      }
    }
  }

  void CheckFinished() const {
    for (const auto& u : users_) {
      if (u.state != "blank-connected") continue;
      SCOPED_TRACE(u.alias);
      // The blank mailbox was moved, not changed; its mail is in the original once.
      EXPECT_FALSE(stdfs::exists(work_ + "/mailboxes/" + u.blank_file));
      EXPECT_TRUE(Files(work_ + "/retired/" + u.blank_file) ==
                  Files(base_ + "/mailboxes/" + u.blank_file))
          << "the retired blank mailbox differs from the original blank mailbox";
      auto got = testing::MbxgenIdCounts(work_ + "/mailboxes/" + u.original_file);
      for (const auto& id : ids_of_.at(u.alias)) EXPECT_EQ(got[id], 1) << id;
      EXPECT_EQ(got.size(), ids_of_.at(u.alias).size());
    }
    CheckChangeFile();
  }

  TempDir tmp_;
  std::string base_, work_;
  std::vector<StoreUser> users_;
  std::map<std::string, std::set<std::string>> ids_of_;  // alias -> ids
  size_t blank_connected_ = 0;
};

TEST_F(RecoverFaultTest, KilledAtEveryPointResumesToTheSameResult) {
  const std::string list = tmp_ / "points";
  CopyTree(base_, work_);
  Child ref = Spawn(Command(), {{"MBXMERGE_CRASH_LIST=" + list}});
  ASSERT_EQ(ref.ExitCode(), 0) << ref.out;
  CheckFinished();
  auto reference = State();
  auto points = ReadPointList(list);
  for (const char* p : {"recover.after-merge", "recover.ldif.mid-append",
                        "recover.retire.after-rename", "recover.after-journal-retired"}) {
    EXPECT_EQ(points[p], static_cast<int>(blank_connected_)) << p;
  }
  int crashes = 0;
  for (const auto& [point, count] : points) {
    // The first user's; a torn change record and a retirement also for the
    // last user, when reconnect.ldif already holds records to keep.
    std::set<int> nths{1};
    if ((point == "recover.ldif.mid-append" || point == "recover.retire.after-rename") && count > 1)
      nths.insert(count);
    for (int nth : nths) {
      std::string at = point + ":" + std::to_string(nth);
      SCOPED_TRACE("recover killed at " + at);
      CopyTree(base_, work_);
      Child killed = Spawn(Command(), {{"MBXMERGE_CRASH_AT=" + at}});
      ASSERT_TRUE(killed.Killed()) << "status " << killed.status << ": " << killed.out;
      ++crashes;
      Child again = Spawn(Command());
      ASSERT_EQ(again.ExitCode(), 0) << again.out;
      CheckFinished();
      EXPECT_TRUE(State() == reference) << "the store differs from an uninterrupted run's";
      if (HasFailure()) return;
    }
  }
  std::printf("[ faults   ] recover: %d kill -9 at %zu points, every rerun equal to the uninterrupted run\n", crashes,
              points.size());
}

// The union of the points the runs above pass: at least 20 distinct ones.
TEST(FaultPointsTest, RunsPassTwentyOrMoreDistinctPoints) {
  TempDir tmp;
  std::set<std::string> all;
  for (const auto& sc : MergeScenarios()) {
    std::string w = tmp / (std::string(sc.name));
    stdfs::create_directories(w);
    sc.make(w, tmp / (std::string(sc.name) + ".tsv"));
    std::vector<std::string> cmd{"merge"};
    for (const auto& s : sc.sources) cmd.insert(cmd.end(), {"--from", SubstSpec(s, w)});
    cmd.insert(cmd.end(), {"--into", SubstSpec(sc.target, w), "--batch", "5", "--quiet"});
    cmd.insert(cmd.end(), sc.options.begin(), sc.options.end());
    std::string list = tmp / (std::string(sc.name) + ".points");
    Child c = Spawn(cmd, {{"MBXMERGE_CRASH_LIST=" + list}});
    ASSERT_EQ(c.ExitCode(), 0) << sc.name << ": " << c.out;
    for (const auto& [p, n] : ReadPointList(list)) all.insert(p);
  }
  Gen({"store", "--out", tmp / "store", "--users", "5", "--messages", "20", "--seed", "9"});
  Child c = Spawn({"recover", "--store", tmp / "store", "--batch", "5", "--quiet"},
                  {{"MBXMERGE_CRASH_LIST=" + (tmp / "recover.points")}});
  ASSERT_EQ(c.ExitCode(), 0) << c.out;
  for (const auto& [p, n] : ReadPointList(tmp / "recover.points")) all.insert(p);
  std::string names;
  for (const auto& p : all) names += p + " ";
  EXPECT_GE(all.size(), 20u) << names;
  // Each family of points is reached by some run.
  for (const char* prefix : {"merge.", "fs.", "maildir.", "mbox.", "eml.", "recover."}) {
    EXPECT_NE(names.find(prefix), std::string::npos) << prefix << " in " << names;
  }
}

// A crash point that is not named never fires, and MBXMERGE_CRASH_AT alone
// (without a list) is enough to kill.
TEST(FaultPointsTest, OnlyTheNamedPointAndOccurrenceKill) {
  TempDir tmp;
  Gen({"mailbox", "--format", "mbox", "--out", tmp / "a.mbox", "--messages", "12", "--seed", "3"});
  std::vector<std::string> cmd{
      "merge",   "--from", tmp / "a.mbox", "--into", "maildir:" + tmp / "o",
      "--batch", "5",      "--quiet"};
  EXPECT_EQ(Spawn(cmd, {{"MBXMERGE_CRASH_AT=no.such.point"}}).ExitCode(), 0);
  // 12 messages in batches of 5: three flushes, so the 4th never comes.
  stdfs::remove_all(tmp / "o");
  EXPECT_EQ(Spawn(cmd, {{"MBXMERGE_CRASH_AT=merge.batch.after-flush:4"}}).ExitCode(), 0);
  stdfs::remove_all(tmp / "o");
  Child c = Spawn(cmd, {{"MBXMERGE_CRASH_AT=merge.batch.after-flush:2"}});
  EXPECT_TRUE(c.Killed()) << c.status;
  // Killed after the second batch was durable: exactly ten messages are there.
  size_t n = 0;
  for (const auto& [m, k] : Content("maildir:" + tmp / "o")) n += static_cast<size_t>(k);
  EXPECT_EQ(n, 10u);
}

// ---- issue 8: a full disk and a read-only target ----

// RLIMIT_FSIZE makes the target's append fail with EFBIG half way, as a full
// disk would: one error naming the target, exit status 3, the target valid
// (whole messages, none twice), the source intact; with room the same
// command finishes the job.
//
// With small batches, and with batches past the 1 MiB at which the mbox sink
// writes a growing batch out before its fsync (so the disk fills in the
// middle of a batch, in a write of MboxSink::Spill(): with --jobs 2 on the
// sink's writer thread, behind the committer).
class FullDiskTest : public ::testing::TestWithParam<std::tuple<bool, int>> {};

TEST_P(FullDiskTest, OneClearErrorValidTargetIntactSourceAndRerunFinishes) {
  const auto [big_batches, jobs] = GetParam();
  TempDir tmp;
  std::vector<std::string> gen{"mailbox", "--format", "mbox",       "--out",      tmp / "src.mbox",
                               "--seed",  "8",        "--manifest", tmp / "m.tsv"};
  if (big_batches) {
    gen.insert(gen.end(), {"--messages", "80", "--avg-size", "200000"});  // ~16 MB
  } else {
    gen.insert(gen.end(), {"--messages", "60"});
  }
  Gen(gen);
  auto source = Files(tmp / "src.mbox");
  const std::string target = tmp / "out.mbox";
  // Not --quiet: the summary's FATAL line is the error under test.
  std::vector<std::string> cmd{"merge",
                               "--from",
                               tmp / "src.mbox",
                               "--into",
                               target,
                               "--batch",
                               big_batches ? "30" : "5",
                               "--jobs",
                               std::to_string(jobs)};
  SpawnOptions full;
  full.max_file_size = stdfs::file_size(tmp / "src.mbox") / 2;
  Child c = Spawn(cmd, full);
  EXPECT_EQ(c.ExitCode(), 3) << c.out;
  size_t fatal = c.out.find("FATAL: ");
  ASSERT_NE(fatal, std::string::npos) << c.out;
  EXPECT_EQ(c.out.find("FATAL: ", fatal + 1), std::string::npos) << "more than one fatal error";
  std::string line = c.out.substr(fatal, c.out.find('\n', fatal) - fatal);
  EXPECT_NE(line.find(target), std::string::npos) << "the error does not name the target: " << line;
  EXPECT_NE(line.find("File too large"), std::string::npos) << line;
  auto ids = testing::MbxgenIdCounts(target);
  EXPECT_GT(ids.size(), 0u) << "nothing was written before the disk was full";
  auto want = testing::ManifestIds(tmp / "m.tsv");
  for (const auto& [id, n] : ids) {
    EXPECT_EQ(n, 1) << id;
    EXPECT_TRUE(want.count(id)) << "not a whole message: " << id;
  }
  EXPECT_LT(ids.size(), want.size());
  EXPECT_LE(stdfs::file_size(target), full.max_file_size);
  EXPECT_FALSE(stdfs::exists(target + ".mbxmerge-undo"));
  EXPECT_TRUE(Files(tmp / "src.mbox") == source);

  Child again = Spawn(cmd);
  ASSERT_EQ(again.ExitCode(), 0) << again.out;
  ids = testing::MbxgenIdCounts(target);
  for (const auto& id : want) EXPECT_EQ(ids[id], 1) << id;
  EXPECT_EQ(ids.size(), want.size());
  EXPECT_TRUE(Files(tmp / "src.mbox") == source);
}

INSTANTIATE_TEST_SUITE_P(Batches, FullDiskTest,
                         ::testing::Combine(::testing::Bool(), ::testing::Values(1, 2)),
                         [](const auto& info) {
                           return std::string(std::get<0>(info.param) ? "PastSpill" : "Small") +
                                  "Jobs" + std::to_string(std::get<1>(info.param));
                         });

// A batch past 1 MiB is partly in the mbox before its fsync: killed there,
// the next run cuts it off (the undo record was written first) and writes
// every message exactly once. --jobs 2: killed on the sink's writer thread.
class MboxSpillTest : public ::testing::TestWithParam<int> {};

TEST_P(MboxSpillTest, KilledAfterAPartOfABatchIsWrittenTheRerunIsExact) {
  TempDir tmp;
  Gen({"mailbox", "--format", "mbox", "--out", tmp / "src.mbox", "--messages", "60", "--seed", "9",
       "--avg-size", "200000", "--manifest",
       tmp / "m.tsv"});  // ~12 MB: one batch, spilled many times
  const std::string target = tmp / "out.mbox";
  std::vector<std::string> cmd{"merge", "--from",  tmp / "src.mbox", "--into",
                               target,  "--quiet", "--jobs",         std::to_string(GetParam())};
  SpawnOptions crash;
  crash.env = {"MBXMERGE_CRASH_AT=mbox.append.after-spill:2"};
  Child killed = Spawn(cmd, crash);
  ASSERT_TRUE(killed.Killed()) << "status " << killed.status << ": " << killed.out;
  // Two parts of the batch are in the file, not durable, the undo record there.
  EXPECT_GE(stdfs::file_size(target), 2u << 20);
  EXPECT_TRUE(stdfs::exists(target + ".mbxmerge-undo"));

  Child again = Spawn(cmd);
  ASSERT_EQ(again.ExitCode(), 0) << again.out;
  auto ids = testing::MbxgenIdCounts(target);
  auto want = testing::ManifestIds(tmp / "m.tsv");
  for (const auto& id : want) EXPECT_EQ(ids[id], 1) << id;
  EXPECT_EQ(ids.size(), want.size());
  EXPECT_FALSE(stdfs::exists(target + ".mbxmerge-undo"));
}

INSTANTIATE_TEST_SUITE_P(Jobs, MboxSpillTest, ::testing::Values(1, 2));

void ChmodTree(const std::string& dir, stdfs::perms dirs) {
  stdfs::permissions(dir, dirs);
  for (const auto& e : stdfs::recursive_directory_iterator(dir)) {
    if (e.is_directory()) stdfs::permissions(e.path(), dirs);
  }
}

// A read-only Maildir target: one error naming it, exit status 3, the target
// and the source unchanged; made writable, the same command finishes the job.
// As root, chmod does not bind, so the runs are made as user nobody.
TEST(ReadOnlyTargetTest, OneClearErrorNothingChangedAndRerunFinishes) {
  TempDir tmp;
  Gen({"pair", "--format", "maildir", "--out-a", tmp / "a", "--out-b", tmp / "b", "--messages",
       "30", "--folders", "2", "--dup-rate", "0.3", "--seed", "12", "--manifest", tmp / "m.tsv"});
  SpawnOptions opt;
  if (::geteuid() == 0) {
    opt.uid = 65534;  // nobody
    stdfs::permissions(tmp.path(), stdfs::perms::all, stdfs::perm_options::add);
    for (const auto& e : stdfs::recursive_directory_iterator(tmp.path())) {
      if (::lchown(e.path().c_str(), opt.uid, opt.uid) != 0) GTEST_SKIP() << "cannot chown as root";
    }
    if (::lchown(tmp.path().c_str(), opt.uid, opt.uid) != 0) GTEST_SKIP() << "cannot chown as root";
  }
  const std::string target = tmp / "a";
  std::vector<std::string> cmd{
      "merge", "--from", "maildir:" + tmp / "b", "--into", "maildir:" + target, "--batch",
      "5",     "--quiet"};
  auto target_before = Files(target);
  auto source_before = Files(tmp / "b");
  const auto r_x = stdfs::perms::owner_read | stdfs::perms::owner_exec | stdfs::perms::group_read |
                   stdfs::perms::group_exec | stdfs::perms::others_read | stdfs::perms::others_exec;
  ChmodTree(target, r_x);
  // Writable again before any way out, so that TempDir can remove it.
  auto writable = [&] { ChmodTree(target, r_x | stdfs::perms::owner_write); };
  if (opt.uid == 0 && ::access(target.c_str(), W_OK) == 0) {
    writable();
    GTEST_SKIP() << "chmod 0555 does not make the target read-only for this user";
  }
  Child c = Spawn(cmd, opt);
  if (c.ExitCode() == 125 || c.ExitCode() == 127) {
    writable();
    GTEST_SKIP() << "cannot run mbxmerge as user nobody (setuid or exec refused): " << c.out;
  }
  EXPECT_EQ(c.ExitCode(), 3) << c.out;
  EXPECT_NE(c.out.find(target), std::string::npos) << "the error does not name the target:\n"
                                                   << c.out;
  EXPECT_TRUE(Files(target) == target_before) << "the read-only target was changed";
  EXPECT_TRUE(Files(tmp / "b") == source_before);

  writable();
  Child again = Spawn(cmd, opt);
  ASSERT_EQ(again.ExitCode(), 0) << again.out;
  auto ids = testing::MbxgenIdCounts("maildir:" + target);
  auto want = testing::ManifestIds(tmp / "m.tsv");
  for (const auto& id : want) EXPECT_EQ(ids[id], 1) << id;
  EXPECT_EQ(ids.size(), want.size());
  EXPECT_TRUE(Files(tmp / "b") == source_before);
}

}  // namespace
}  // namespace mbx
