// Hostile input through the real mbxmerge binary: attachment, subject and folder
// names that try to leave the target or break file names; messages of absurd
// size and shape; truncated, bit-flipped and cyclic PST files. Every command
// runs under a wall-time and a memory limit, so a hang or a blow-up fails the
// test instead of hanging CI. See docs/reliability.md for the list of cases.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "engine/mailbox.h"
#include "formats/mime/mime.h"
#include "formats/pst/disk/disk.h"
#include "formats/pst/ndb/reader.h"
#include "formats/registry.h"
#include "tests/test_util.h"

#if defined(__SANITIZE_ADDRESS__)
#define MBX_HOSTILE_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MBX_HOSTILE_ASAN 1
#endif
#endif

namespace mbx {
namespace {

namespace stdfs = std::filesystem;
namespace ndb = pst::ndb;
using testing::TempDir;
using testing::WriteFileOrDie;

// ---- running the CLI under limits ----

#ifdef MBX_HOSTILE_ASAN
// ASan reserves terabytes of address space, so RLIMIT_AS cannot be used; the
// resident size is watched instead, with room for ASan's own overhead.
constexpr bool kUseAddressLimit = false;
constexpr uint64_t kMemoryLimit = uint64_t{3} << 30;
constexpr int kSecondsLimit = 170;
// Under ASan (Debug, -O0, a slow malloc) sizes and case counts are cut: the
// same code paths, not the issue's figures, which the release run proves.
constexpr size_t kScaleDown = 10;
constexpr int kCaseDivisor = 2;
#else
constexpr bool kUseAddressLimit = true;
constexpr uint64_t kMemoryLimit = uint64_t{2} << 30;
constexpr int kSecondsLimit = 60;
constexpr size_t kScaleDown = 1;
constexpr int kCaseDivisor = 1;
#endif

struct LimitedRun {
  int exit_code = -1;  // when the process exited
  int signal = 0;      // when a signal ended it
  bool timed_out = false;
  bool over_memory = false;  // killed for its resident size
  uint64_t peak_rss = 0;     // bytes
  double seconds = 0;        // wall time, for MBX_HOSTILE_VERBOSE only (no timing asserts)
  std::string out, err;
  std::string command;

  // Ended on its own with one of `codes`.
  bool EndedWith(std::initializer_list<int> codes) const {
    return signal == 0 && !timed_out && !over_memory &&
           std::find(codes.begin(), codes.end(), exit_code) != codes.end();
  }
  std::string Describe() const {
    std::string s = "`mbxmerge " + command + "`: ";
    if (timed_out)
      s += "killed after " + std::to_string(kSecondsLimit) + " s (hang?)";
    else if (over_memory)
      s += "killed at " + std::to_string(peak_rss >> 20) + " MiB resident";
    else if (signal)
      s += "ended by signal " + std::to_string(signal) + " (" + strsignal(signal) + ")";
    else
      s += "exit " + std::to_string(exit_code);
    s += ", peak " + std::to_string(peak_rss >> 20) + " MiB\nstderr: " + err.substr(0, 2000) +
         "\nstdout (end): " + out.substr(out.size() > 3000 ? out.size() - 3000 : 0);
    return s;
  }
};

// The child's peak resident size (VmHWM), once it runs mbxmerge: before exec
// the forked child still shows the test's own image. 0 until then.
uint64_t PeakResident(pid_t pid) {
  const std::string proc = "/proc/" + std::to_string(pid);
  std::ifstream comm(proc + "/comm");
  std::string name;
  comm >> name;
  if (name != "mbxmerge") return 0;
  std::ifstream status(proc + "/status");
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stoull(line.substr(6)) * 1024;  // kB
  }
  return 0;
}

// Runs mbxmerge `args` with stdin from /dev/null; kills it past the time or
// memory limit. MBX_HOSTILE_VERBOSE=1 prints each run's outcome, time and
// peak memory (the figures of docs/reliability.md).
LimitedRun RunLimited(const std::vector<std::string>& args, bool announce = true) {
  LimitedRun r;
  for (const auto& a : args) r.command += (r.command.empty() ? "" : " ") + a.substr(0, 200);
  std::vector<std::string> argv{testing::MbxmergePath()};
  argv.insert(argv.end(), args.begin(), args.end());
  std::vector<char*> cargv;
  for (auto& a : argv) cargv.push_back(a.data());
  cargv.push_back(nullptr);
  int out_pipe[2], err_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0 || ::pipe2(err_pipe, O_CLOEXEC) != 0) {
    r.err = "pipe failed";
    return r;
  }
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(out_pipe[1], 1);
    ::dup2(err_pipe[1], 2);
    int devnull = ::open("/dev/null", O_RDONLY);
    if (devnull >= 0) ::dup2(devnull, 0);
    struct rlimit core = {0, 0};
    ::setrlimit(RLIMIT_CORE, &core);
    if (kUseAddressLimit) {
      struct rlimit as = {kMemoryLimit, kMemoryLimit};
      ::setrlimit(RLIMIT_AS, &as);
    }
    ::execv(cargv[0], cargv.data());
    ::_exit(127);
  }
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  const auto start = std::chrono::steady_clock::now();
  struct pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
  std::string* sinks[2] = {&r.out, &r.err};
  int open_fds = 2;
  bool killed = false;
  int status = 0;
  for (;;) {
    if (open_fds > 0) {
      ::poll(fds, 2, 50);
      for (int i = 0; i < 2; ++i) {
        if (fds[i].fd < 0 || fds[i].revents == 0) continue;
        char buf[65536];
        ssize_t n = ::read(fds[i].fd, buf, sizeof buf);
        if (n > 0) {
          if (sinks[i]->size() < (1u << 20)) sinks[i]->append(buf, static_cast<size_t>(n));
        } else if (n == 0 || errno != EINTR) {
          ::close(fds[i].fd);
          fds[i].fd = -1;
          --open_fds;
        }
      }
    } else {
      ::usleep(20'000);
    }
    r.peak_rss = std::max(r.peak_rss, PeakResident(pid));
    const pid_t done = ::waitpid(pid, &status, WNOHANG);
    if (done == pid) break;
    if (killed) continue;
    if (r.peak_rss > kMemoryLimit) {
      r.over_memory = true;
    } else if (std::chrono::steady_clock::now() - start > std::chrono::seconds(kSecondsLimit)) {
      r.timed_out = true;
    }
    if (r.over_memory || r.timed_out) {
      ::kill(pid, SIGKILL);
      killed = true;
    }
  }
  // What the child wrote between the last poll and its exit is still in the
  // pipes: read it to the end (losing it made this test flaky under load).
  for (int i = 0; i < 2; ++i) {
    while (fds[i].fd >= 0 && ::poll(&fds[i], 1, 1000) > 0) {
      char buf[65536];
      ssize_t n = ::read(fds[i].fd, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      if (sinks[i]->size() < (1u << 20)) sinks[i]->append(buf, static_cast<size_t>(n));
    }
  }
  for (auto& f : fds)
    if (f.fd >= 0) ::close(f.fd);
  if (WIFEXITED(status)) r.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status) && !killed) r.signal = WTERMSIG(status);
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (announce && std::getenv("MBX_HOSTILE_VERBOSE") != nullptr) {
    std::printf("[hostile] exit %d, %.1f s, peak %llu MiB: %s\n", r.exit_code, r.seconds,
                static_cast<unsigned long long>(r.peak_rss >> 20),
                r.command.substr(0, 150).c_str());
  }
  return r;
}

// Runs every command, a few at a time (each is mostly waiting on start-up and I/O).
[[maybe_unused]] std::vector<LimitedRun> RunAllLimited(
    const std::vector<std::vector<std::string>>& commands) {
  std::vector<LimitedRun> out(commands.size());
  std::atomic<size_t> next{0};
  std::vector<std::thread> workers;
  for (int t = 0; t < 4; ++t) {
    workers.emplace_back([&] {
      for (size_t i; (i = next++) < commands.size();) out[i] = RunLimited(commands[i], false);
    });
  }
  for (auto& w : workers) w.join();
  return out;
}

// ---- file system checks ----

// Every path below `root` (files, directories, links), relative.
std::set<std::string> Tree(const std::string& root) {
  std::set<std::string> out;
  std::error_code ec;
  for (auto it = stdfs::recursive_directory_iterator(root, ec);
       !ec && it != stdfs::recursive_directory_iterator(); it.increment(ec)) {
    out.insert(stdfs::relative(it->path(), root).string());
  }
  return out;
}

// The names below `root` that no file system should be asked to hold:
// components over 255 bytes, control characters, "." and "..".
std::vector<std::string> BadNames(const std::string& root) {
  std::vector<std::string> bad;
  for (const auto& rel : Tree(root)) {
    for (const auto& comp : stdfs::path(rel)) {
      const std::string c = comp.string();
      bool ctl = std::any_of(c.begin(), c.end(), [](char ch) {
        auto u = static_cast<unsigned char>(ch);
        return u < 0x20 || u == 0x7f;
      });
      if (c.size() > 255 || ctl || c == "." || c == ".." || c.empty()) {
        bad.push_back(rel.substr(0, 300));
        break;
      }
    }
  }
  return bad;
}

// Messages in a mailbox, read in-process; unreadable ones and a source that
// fails count as -1 each, so that a mismatch shows.
int CountMessages(const std::string& spec) {
  auto loc = ParseLocation(spec, false);
  if (!loc.ok()) return -1000;
  auto src = OpenSource(*loc);
  if (!src.ok()) return -1000;
  int n = 0;
  Message m;
  for (;;) {
    auto more = (*src)->Next(&m);
    if (!more.ok()) return -1000;
    if (!*more) break;
    n += m.read_error ? -1 : 1;
  }
  return n;
}

// ---- making hostile mailboxes ----

std::string Msg(const std::string& id, const std::string& extra_headers = "",
                const std::string& body = "body\n") {
  return "From: a@example.com\nTo: b@example.com\nSubject: " + id + "\nMessage-ID: <" + id +
         "@hostile.test>\nDate: Mon, 1 Jan 2024 00:00:00 +0000\n" + extra_headers + "\n" + body;
}

std::string MboxOf(const std::vector<std::string>& messages) {
  std::string out;
  for (const auto& m : messages) out += "From a@example.com Mon Jan  1 00:00:00 2024\n" + m + "\n";
  return out;
}

std::string Base64(std::string_view in) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8) | uint8_t(in[i + 2]);
    for (int k = 3; k >= 0; --k) out += kAlphabet[(v >> (6 * k)) & 63];
  }
  if (i + 1 == in.size()) {
    uint32_t v = uint8_t(in[i]) << 16;
    out += kAlphabet[v >> 18];
    out += kAlphabet[(v >> 12) & 63];
    out += "==";
  } else if (i + 2 == in.size()) {
    uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8);
    out += kAlphabet[v >> 18];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

// Hostile names: traversal, absolute, dots, NUL, control characters, Windows
// reserved names, 10,000 characters.
const std::vector<std::string>& HostileNames() {
  static const std::vector<std::string> names = {
      "../../etc/passwd",
      "/etc/passwd",
      "..",
      ".",
      std::string("a\0b/../../x", 11),
      "a\x01"
      "b\nc\x7f"
      "d",
      "CON",
      "NUL",
      "COM1",
      "aux.txt",
      std::string(10000, 'L'),
      "\xE2\x80\xAE"
      "exe.txt",
      "a/./b/../c",
      "",
  };
  return names;
}

// One message per hostile name, carried as attachment file name (RFC 2231
// and RFC 2047 forms) and as subject (which names .eml files).
std::vector<std::string> AttachmentNameMessages() {
  std::vector<std::string> out;
  int i = 0;
  for (const auto& name : HostileNames()) {
    std::string pct;
    for (unsigned char c : name) {
      char hex[4];
      std::snprintf(hex, sizeof hex, "%%%02X", c);
      pct += hex;
    }
    const std::string id = "att" + std::to_string(i++);
    const std::string encoded_word = "=?UTF-8?B?" + Base64(name) + "?=";
    std::string headers = "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=BB\n";
    std::string body =
        "--BB\nContent-Type: text/plain\n\nbody\n"
        "--BB\nContent-Type: application/octet-stream\n"
        "Content-Disposition: attachment; filename*=UTF-8''" +
        pct +
        "\n"
        "Content-Transfer-Encoding: base64\n\naGVsbG8=\n"
        "--BB\nContent-Type: application/octet-stream; name=\"" +
        encoded_word +
        "\"\n"
        "Content-Disposition: attachment; filename=\"" +
        encoded_word +
        "\"\n\nhello\n"
        "--BB--\n";
    std::string m = Msg(id, headers, body);
    // The subject (which names .eml files) carries the name too.
    const std::string subj = "Subject: " + id + "\n";
    m.replace(m.find(subj), subj.size(), "Subject: " + encoded_word + "\n");
    out.push_back(m);
  }
  return out;
}

// Writes `messages` (folder, MIME) with our own sink of `spec`'s kind.
void WriteWithSink(const std::string& spec,
                   const std::vector<std::pair<std::string, std::string>>& messages) {
  auto loc = ParseLocation(spec, true);
  ASSERT_TRUE(loc.ok()) << loc.status().ToString();
  auto sink = OpenSink(*loc, SinkOptions{});
  ASSERT_TRUE(sink.ok()) << sink.status().ToString();
  for (const auto& [folder, mime] : messages) {
    Message m;
    m.mime = mime;
    m.origin = "test";
    Status s = (*sink)->Stage(m, folder);
    ASSERT_TRUE(s.ok()) << s.ToString();
  }
  Status s = (*sink)->Close();
  ASSERT_TRUE(s.ok()) << s.ToString();
}

// Folder paths built from the hostile names: each alone, nested, and a
// folder 300 levels deep.
std::vector<std::string> HostileFolderPaths() {
  std::vector<std::string> out;
  for (const auto& n : HostileNames()) {
    out.push_back(n);
    out.push_back("Inbox/" + n + "/child");
  }
  std::string deep;
  for (int i = 0; i < 100; ++i) deep += (i ? "/" : "") + std::string("d") + std::to_string(i);
  out.push_back(deep);
  out.push_back(std::string(300, 'M') + "/" + std::string(300, 'N') + "/" + std::string(300, 'O'));
  return out;
}

// ---- the name checks ----

const char* const kTargets[] = {"eml:%/t-eml",   "maildir:%/t-maildir", "mboxdir:%/t-mboxdir",
                                "mbox:%/t.mbox", "pst:%/t.pst",         "mbxz:%/t.mbxz"};

std::string Fill(const char* pattern, const std::string& dir) {
  std::string s = pattern;
  s.replace(s.find('%'), 1, dir);
  return s;
}

// Merges `source` into every target kind inside `dir` and checks: exit 0,
// nothing created or changed outside the target, valid names only, every
// message there.
void MergeIntoEveryTarget(const std::string& dir, const std::string& source, int expected) {
  ASSERT_EQ(CountMessages(source), expected) << source;
  for (const char* pattern : kTargets) {
    const std::string target = Fill(pattern, dir + "/out");
    const std::string target_path = target.substr(target.find(':') + 1);
    SCOPED_TRACE(target);
    stdfs::create_directories(dir + "/out");
    const std::set<std::string> before = Tree(dir);
    LimitedRun r = RunLimited({"merge", "--from", source, "--into", target});
    ASSERT_TRUE(r.EndedWith({0})) << r.Describe();
    std::set<std::string> added;
    const std::string target_rel = stdfs::relative(target_path, dir).string();
    for (const auto& p : Tree(dir)) {
      if (before.count(p) == 0 && p != target_rel && p.rfind(target_rel + "/", 0) != 0)
        added.insert(p);
    }
    EXPECT_TRUE(added.empty()) << "created outside the target: " << *added.begin();
    std::vector<std::string> beside;
    for (const auto& e : stdfs::directory_iterator(dir + "/out"))
      if (e.path().string() != target_path) beside.push_back(e.path().filename().string());
    EXPECT_TRUE(beside.empty()) << "left beside the target: " << beside.front();
    if (stdfs::is_directory(target_path)) {
      auto bad = BadNames(target_path);
      EXPECT_TRUE(bad.empty()) << bad.size() << " bad names, first: " << bad.front();
    }
    EXPECT_EQ(CountMessages(target), expected);
    // Merging again finds everything there already (the target reads back
    // whole), in the folder the sink stored it under whatever it renamed.
    LimitedRun again = RunLimited({"merge", "--from", source, "--into", target, "-q"});
    EXPECT_TRUE(again.EndedWith({0})) << again.Describe();
    EXPECT_EQ(CountMessages(target), expected) << "a second merge duplicated or lost messages";
    stdfs::remove_all(dir + "/out");
  }
}

TEST(HostileNamesTest, AttachmentNamesAndSubjectsIntoEveryTarget) {
  TempDir tmp;
  auto msgs = AttachmentNameMessages();
  WriteFileOrDie(tmp / "src.mbox", MboxOf(msgs));
  MergeIntoEveryTarget(tmp.path(), "mbox:" + tmp / "src.mbox", static_cast<int>(msgs.size()));
}

TEST(HostileNamesTest, AttachmentNamesSurviveIntoPst) {
  TempDir tmp;
  auto msgs = AttachmentNameMessages();
  WriteFileOrDie(tmp / "src.mbox", MboxOf(msgs));
  LimitedRun r = RunLimited({"merge", "--from", tmp / "src.mbox", "--into", tmp / "t.pst", "-q"});
  ASSERT_TRUE(r.EndedWith({0})) << r.Describe();
  // The names are data in a PST: kept as written, never used as paths.
  auto loc = ParseLocation(tmp / "t.pst", false);
  ASSERT_TRUE(loc.ok());
  auto src = OpenSource(*loc);
  ASSERT_TRUE(src.ok());
  std::set<std::string> names;
  Message m;
  while (true) {
    auto more = (*src)->Next(&m);
    ASSERT_TRUE(more.ok());
    if (!*more) break;
    ASSERT_FALSE(m.read_error) << m.read_error->ToString();
    auto mime = m.Mime();
    ASSERT_TRUE(mime.ok());
    for (auto& n : mime::AttachmentNames(*mime)) names.insert(n);
  }
  EXPECT_TRUE(names.count("../../etc/passwd"));
  EXPECT_TRUE(names.count("/etc/passwd"));
  EXPECT_TRUE(names.count(std::string(10000, 'L')));
}

TEST(HostileNamesTest, MaildirFolderNamesIntoEveryTarget) {
  TempDir tmp;
  // Maildir++ folder directories whose decoded names are hostile (modified
  // UTF-7: &AC4- is '.', &AC8- is '/', &AAA- is NUL).
  const std::vector<std::string> dirs = {
      ".&AC4ALg-",
      ".&AC4-",
      ".&AC8-etc&AC8-passwd",
      ".&AC4ALgAv-&AC4ALgAv-etc",
      ".a&AAA-b",
      ".a&AAE-b&AAo-c&AH8-d",
      ".CON",
      ".NUL",
      ".COM1",
      ".aux&AC4-txt",
      "." + std::string(250, 'L'),
      ".x.&AC4ALg-.&AC4ALg-.y",
      ".&ACo-",
      ".a&AFw-b",
      ".&ACA-",
  };
  const std::string root = tmp / "src";
  int n = 0;
  for (const char* sub : {"cur", "new", "tmp"}) stdfs::create_directories(root + "/" + sub);
  for (const auto& d : dirs) {
    for (const char* sub : {"cur", "new", "tmp"})
      stdfs::create_directories(root + "/" + d + "/" + sub);
    WriteFileOrDie(root + "/" + d + "/cur/1700000000.M" + std::to_string(n) + "P1.host:2,S",
                   Msg("maildir" + std::to_string(n)));
    ++n;
  }
  MergeIntoEveryTarget(tmp.path(), "maildir:" + root, n);
}

TEST(HostileNamesTest, MboxdirFolderNamesIntoEveryTarget) {
  TempDir tmp;
  const std::string root = tmp / "src";
  // Escaped file names (%XX) whose folder names are hostile, and a chain of
  // long directory names.
  std::vector<std::string> files = {
      "%2E%2E.mbox",
      "%2E.mbox",
      "..%2F..%2Fetc.mbox",
      "%2Fetc%2Fpasswd.mbox",
      "a%00b.mbox",
      "a%01b%0Ac%7Fd.mbox",
      "CON.mbox",
      "NUL.mbox",
      "COM1.mbox",
      "aux.txt.mbox",
      std::string(240, 'L') + ".mbox",
      "%2E%2E/%2E%2E/x.mbox",
  };
  std::string chain;
  for (int i = 0; i < 12; ++i) chain += std::string(250, static_cast<char>('a' + i)) + "/";
  files.push_back(chain + "leaf.mbox");
  int n = 0;
  for (const auto& f : files)
    WriteFileOrDie(root + "/" + f, MboxOf({Msg("mboxdir" + std::to_string(n++))}));
  MergeIntoEveryTarget(tmp.path(), "mboxdir:" + root, n);
}

TEST(HostileNamesTest, PstFolderNamesIntoEveryTarget) {
  TempDir tmp;
  std::vector<std::pair<std::string, std::string>> msgs;
  int n = 0;
  for (const auto& f : HostileFolderPaths())
    msgs.emplace_back(f, Msg("pstfolder" + std::to_string(n++)));
  WriteWithSink("pst:" + tmp / "src.pst", msgs);
  MergeIntoEveryTarget(tmp.path(), "pst:" + tmp / "src.pst", n);
}

TEST(HostileNamesTest, BundleFolderNamesIntoEveryTarget) {
  TempDir tmp;
  std::vector<std::pair<std::string, std::string>> msgs;
  int n = 0;
  for (const auto& f : HostileFolderPaths())
    msgs.emplace_back(f, Msg("bundlefolder" + std::to_string(n++)));
  WriteWithSink("mbxz:" + tmp / "src.mbxz", msgs);
  MergeIntoEveryTarget(tmp.path(), "mbxz:" + tmp / "src.mbxz", n);
}

// ---- size and shape ----

// A zstd frame of raw and RLE blocks (RFC 8878), written by hand so that its
// content can claim anything and a few bytes can expand to gigabytes.
class ZstdFrame {
 public:
  ZstdFrame() {
    out_ = std::string("\x28\xB5\x2F\xFD", 4);
    out_ += '\x00';  // no content size, no checksum, not single-segment
    out_ += '\x50';  // window 1 MiB
  }
  ZstdFrame& Raw(std::string_view data) {
    for (size_t at = 0; at < data.size(); at += kMaxBlock) {
      const size_t n = std::min(kMaxBlock, data.size() - at);
      Header(n, 0);
      out_.append(data.substr(at, n));
    }
    return *this;
  }
  ZstdFrame& Rle(char byte, uint64_t count) {
    for (uint64_t done = 0; done < count; done += kMaxBlock) {
      Header(static_cast<size_t>(std::min<uint64_t>(kMaxBlock, count - done)), 1);
      out_ += byte;
    }
    return *this;
  }
  std::string Finish() {
    Header(0, 0, true);
    return out_;
  }

 private:
  static constexpr size_t kMaxBlock = 128 * 1024;
  void Header(size_t size, int type, bool last = false) {
    const uint32_t v =
        (last ? 1u : 0u) | (static_cast<uint32_t>(type) << 1) | (static_cast<uint32_t>(size) << 3);
    out_ += static_cast<char>(v & 0xFF);
    out_ += static_cast<char>((v >> 8) & 0xFF);
    out_ += static_cast<char>((v >> 16) & 0xFF);
  }
  std::string out_;
};

std::string Varint(uint64_t v) {
  std::string out;
  while (v >= 0x80) {
    out += static_cast<char>((v & 0x7F) | 0x80);
    v >>= 7;
  }
  out += static_cast<char>(v);
  return out;
}

std::string Fixed64(uint64_t v) {
  std::string out;
  for (int i = 0; i < 8; ++i) out += static_cast<char>((v >> (8 * i)) & 0xFF);
  return out;
}

// The start of an mbxz message record ('M', folder, flags, times, sender) up
// to and including the MIME length, which may lie.
std::string BundleRecordHead(uint64_t mime_length) {
  return std::string("MBXZ\x01", 5) + "M" + Varint(5) + "Inbox" + std::string(1, '\0') +
         Fixed64(0) + Fixed64(0) + Varint(0) + Varint(mime_length);
}

// One good message in an mbox: the run must go on past the hostile one.
std::string WriteGoodMbox(const TempDir& tmp) {
  WriteFileOrDie(tmp / "good.mbox", MboxOf({Msg("good")}));
  return tmp / "good.mbox";
}

TEST(HostileShapesTest, MultipartsNested10000DeepAndRfc822Nested2000Deep) {
  TempDir tmp;
  std::string nested = Msg("nested-multipart", "MIME-Version: 1.0\n", "");
  nested.pop_back();  // the header block's empty line comes from the first part header
  for (int i = 0; i < 10000; ++i)
    nested += "Content-Type: multipart/mixed; boundary=b" + std::to_string(i) + "\n\n--b" +
              std::to_string(i) + "\n";
  nested += "Content-Type: text/plain\n\ndeep\n";
  for (int i = 9999; i >= 0; --i) nested += "--b" + std::to_string(i) + "--\n";
  std::string rfc822 = "Content-Type: text/plain\n\ninner\n";
  for (int i = 0; i < 2000; ++i)
    rfc822 = "Content-Type: message/rfc822\n\nFrom: x@example.com\nSubject: level " +
             std::to_string(i) + "\n" + rfc822;
  std::string m822 = Msg("nested-rfc822", "MIME-Version: 1.0\n", "");
  m822.pop_back();  // as above
  m822 += rfc822;
  WriteFileOrDie(tmp / "src.mbox", MboxOf({Msg("before"), nested, m822, Msg("after")}));
  const std::vector<std::string> targets = {"pst:" + tmp / "t.pst", "eml:" + tmp / "t-eml",
                                            "mbox:" + tmp / "t.mbox"};
  for (const auto& target : targets) {
    LimitedRun r = RunLimited({"merge", "--from", tmp / "src.mbox", "--into", target});
    EXPECT_TRUE(r.EndedWith({0})) << r.Describe();
    EXPECT_EQ(CountMessages(target), 4) << target;
  }
  LimitedRun check = RunLimited({"check", tmp / "t.pst"});
  EXPECT_TRUE(check.EndedWith({0})) << check.Describe();
}

TEST(HostileShapesTest, HundredThousandRecipientsIntoPstAndMbox) {
  TempDir tmp;
  std::string to = "To: ";
  const int n = static_cast<int>(100000 / kScaleDown);
  auto address = [](int i) {
    return "user" + std::to_string(i) + "@example" + std::to_string(i % 100) + ".com";
  };
  for (int i = 0; i < n; ++i) to += (i ? ",\n " : "") + address(i);
  std::string m = Msg("recipients");
  m.replace(m.find("To: b@example.com"), 17, to);
  WriteFileOrDie(tmp / "src.mbox", MboxOf({m, Msg("after")}));
  const std::vector<std::string> targets = {"pst:" + tmp / "t.pst", "mbox:" + tmp / "t.mbox"};
  for (const auto& target : targets) {
    LimitedRun r = RunLimited({"merge", "--from", tmp / "src.mbox", "--into", target});
    EXPECT_TRUE(r.EndedWith({0})) << r.Describe();
  }
  EXPECT_EQ(CountMessages("mbox:" + tmp / "t.mbox"), 2);
  // 100,000 recipient rows need an XXBLOCK: its XBLOCKs must add up.
  LimitedRun check = RunLimited({"check", tmp / "t.pst"});
  EXPECT_TRUE(check.EndedWith({0})) << check.Describe();
  // Every recipient became a row and comes back.
  auto loc = ParseLocation(tmp / "t.pst", false);
  ASSERT_TRUE(loc.ok());
  auto src = OpenSource(*loc);
  ASSERT_TRUE(src.ok());
  Message msg;
  bool found = false;
  int messages = 0;
  while (true) {
    auto more = (*src)->Next(&msg);
    ASSERT_TRUE(more.ok());
    if (!*more) break;
    ASSERT_FALSE(msg.read_error);
    ++messages;
    auto mime = msg.Mime();
    ASSERT_TRUE(mime.ok());
    if (mime->find(address(n - 1)) == std::string_view::npos) continue;
    found = true;
    EXPECT_NE(mime->find("user0@example0.com"), std::string_view::npos);
    EXPECT_NE(mime->find(address(n / 2 + 321)), std::string_view::npos);
  }
  EXPECT_TRUE(found);
  EXPECT_EQ(messages, 2);
}

TEST(HostileShapesTest, FiftyMegabyteHeaders) {
  TempDir tmp;
  const size_t k50MB = (50u << 20) / kScaleDown;
  // One field of 50 MB (folded lines) and 3.7 million fields of 14 bytes.
  std::string one;
  {
    std::string value;
    value.reserve(k50MB + 100);
    const std::string line(76, 'x');
    while (value.size() < k50MB) value += line + "\n ";
    one = Msg("one-huge-field", "X-Huge: " + value + "end\n");
  }
  std::string many;
  {
    std::string fields;
    fields.reserve(k50MB + 100);
    for (int i = 0; fields.size() < k50MB; ++i) fields += "X-F" + std::to_string(i) + ": v\n";
    many = Msg("many-fields", fields);
  }
  WriteFileOrDie(tmp / "one.mbox", MboxOf({one, Msg("after-one")}));
  one.clear();
  one.shrink_to_fit();
  WriteFileOrDie(tmp / "many.mbox", MboxOf({many, Msg("after-many")}));
  many.clear();
  many.shrink_to_fit();
  struct Case {
    std::string source, target;
  };
  // MIME targets keep the bytes; a PST target parses the header (GMime kept
  // one object per field: 3 GB for the many-fields one before it was cut down).
  for (const Case& c : {Case{tmp / "one.mbox", "eml:" + tmp / "one-eml"},
                        Case{tmp / "many.mbox", "pst:" + tmp / "many.pst"}}) {
    LimitedRun r = RunLimited({"merge", "--from", c.source, "--into", c.target});
    EXPECT_TRUE(r.EndedWith({0})) << r.Describe();
    EXPECT_EQ(CountMessages(c.target), 2) << c.target;
  }
}

TEST(HostileShapesTest, Base64Bombs) {
  TempDir tmp;
  // 16 MB of zeros as one base64 attachment (decoded for a PST target).
  std::string zeros = Base64(std::string((16u << 20) / kScaleDown, '\0'));
  std::string wrapped;
  wrapped.reserve(zeros.size() + zeros.size() / 76 + 1);
  for (size_t i = 0; i < zeros.size(); i += 76) wrapped += zeros.substr(i, 76) + "\n";
  zeros.clear();
  const std::string big =
      Msg("base64-zeros", "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=BB\n",
          "--BB\nContent-Type: text/plain\n\nx\n--BB\nContent-Type: application/octet-stream; "
          "name=z.bin\nContent-Transfer-Encoding: base64\n\n" +
              wrapped + "--BB--\n");
  wrapped.clear();
  // message/rfc822 parts nested 24 deep, each level base64-encoded: each
  // level is 4/3 the size of the one inside, and a converter that decodes
  // them all at once would hold every level.
  std::string inner = "From: x@example.com\nSubject: core\nContent-Type: text/plain\n\n" +
                      std::string(2000, 'c') + "\n";
  for (int i = 0; i < 24; ++i) {
    std::string enc = Base64(inner), lines;
    for (size_t k = 0; k < enc.size(); k += 76) lines += enc.substr(k, 76) + "\n";
    inner =
        "From: x@example.com\nSubject: level " + std::to_string(i) +
        "\nMIME-Version: 1.0\nContent-Type: message/rfc822\nContent-Transfer-Encoding: base64\n\n" +
        lines;
  }
  const std::string nested =
      "From: a@example.com\nTo: b@example.com\nMessage-ID: <base64-nested@hostile.test>\n" + inner;
  WriteFileOrDie(tmp / "src.mbox", MboxOf({big, nested, Msg("after")}));
  // A PST target decodes every part (a MIME target keeps the bytes as they are).
  LimitedRun r = RunLimited({"merge", "--from", tmp / "src.mbox", "--into", tmp / "t.pst"});
  EXPECT_TRUE(r.EndedWith({0})) << r.Describe();
  EXPECT_EQ(CountMessages(tmp / "t.pst"), 3);
}

TEST(HostileShapesTest, BundleDecompressionBombs) {
  TempDir tmp;
  const std::string good = WriteGoodMbox(tmp);
  // A message length of 2^40 - 1 with a few bytes behind it.
  WriteFileOrDie(tmp / "claims-1tb.mbxz",
                 ZstdFrame().Raw(BundleRecordHead((uint64_t{1} << 40) - 1) + "From: x").Finish());
  // 900 MB claimed (under the limit), 1 KB there: refused as truncated,
  // having cost only what is there.
  WriteFileOrDie(tmp / "claims-900mb.mbxz",
                 ZstdFrame().Raw(BundleRecordHead(900u << 20) + std::string(1024, 'x')).Finish());
  // 4 GiB of real content from a 128 KB file: over the limit, refused unread.
  WriteFileOrDie(tmp / "expands-4gb.mbxz",
                 ZstdFrame()
                     .Raw(BundleRecordHead(uint64_t{4} << 30) + "From: x\n\n")
                     .Rle('A', uint64_t{4} << 30)
                     .Finish());
  // 64 MB from 2 KB: under the limit, merged.
  const std::string head = "From: x@example.com\nSubject: rle\nMessage-ID: <rle@hostile.test>\n\n";
  const uint64_t body = 64u << 20;
  WriteFileOrDie(tmp / "expands-64mb.mbxz",
                 ZstdFrame()
                     .Raw(BundleRecordHead(head.size() + body + 1) + head)
                     .Rle('A', body)
                     .Raw("\nF" + Fixed64(1))
                     .Finish());
  struct Case {
    std::string file;
    int exit_code;
    std::string error;
  };
  for (const Case& c :
       {Case{"claims-1tb.mbxz", 1, "more than the"}, Case{"claims-900mb.mbxz", 1, "truncated"},
        Case{"expands-4gb.mbxz", 1, "more than the"}, Case{"expands-64mb.mbxz", 0, ""}}) {
    SCOPED_TRACE(c.file);
    const std::string target = tmp / (c.file + ".out.mbox");
    LimitedRun r = RunLimited({"merge", "--from", tmp / c.file, "--from", good, "--into", target});
    EXPECT_TRUE(r.EndedWith({c.exit_code})) << r.Describe();
    if (!c.error.empty()) {
      EXPECT_NE(r.out.find(c.error), std::string::npos) << r.Describe();
      EXPECT_NE(r.out.find(c.file), std::string::npos)
          << "the failure names the bundle: " << r.Describe();
    }
    EXPECT_EQ(CountMessages(target), c.exit_code == 0 ? 2 : 1) << "the good source still arrives";
  }
}

TEST(HostileShapesTest, MboxWithA100MegabyteLine) {
  TempDir tmp;
  std::string line((100u << 20) / kScaleDown, 'y');
  WriteFileOrDie(tmp / "src.mbox",
                 MboxOf({Msg("before"), Msg("long-line", "", line + "\n"), Msg("after")}));
  line.clear();
  line.shrink_to_fit();
  LimitedRun r =
      RunLimited({"merge", "--from", tmp / "src.mbox", "--into", "eml:" + tmp / "t-eml"});
  EXPECT_TRUE(r.EndedWith({0})) << r.Describe();
  EXPECT_EQ(CountMessages("eml:" + tmp / "t-eml"), 3);
}

// ---- corrupt and cyclic PSTs ----

// A small PST of our writer's with every structure worth corrupting: B-trees
// of two levels, folders, an XBLOCK (a 100 KB body), an SIBLOCK (400
// attachments), nested subnodes (an attached message).
std::string WriteBasePst(const TempDir& tmp) {
  std::vector<std::pair<std::string, std::string>> msgs;
  for (int i = 0; i < 40; ++i)
    msgs.emplace_back(i % 3 == 0   ? "Inbox"
                      : i % 3 == 1 ? "Inbox/Sub"
                                   : "Archive",
                      Msg("base" + std::to_string(i)));
  msgs.emplace_back("Inbox", Msg("big-body", "", std::string(100000, 'b') + "\n"));
  std::string parts;
  for (int i = 0; i < 400; ++i)
    parts +=
        "--BB\nContent-Type: application/octet-stream\nContent-Disposition: attachment; "
        "filename=a" +
        std::to_string(i) + ".bin\n\nx\n";
  msgs.emplace_back("Inbox", Msg("many-attachments",
                                 "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=BB\n",
                                 parts + "--BB--\n"));
  msgs.emplace_back(
      "Inbox",
      Msg("attached-message", "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=BB\n",
          "--BB\nContent-Type: text/plain\n\nsee attached\n--BB\nContent-Type: message/rfc822\n\n" +
              Msg("inner") + "--BB--\n"));
  const std::string path = tmp / "base.pst";
  WriteWithSink("pst:" + path, msgs);
  return path;
}

// Every B-tree page of a Unicode PST, as the reader walks it.
struct PageInfo {
  ndb::Tree tree;
  uint64_t ib;
  int level;
};

class PageCollector : public pst::ndb::TreeObserver {
 public:
  void OnPage(const pst::ndb::BtPageVisit& v) override {
    pages.push_back({v.tree, v.ib, v.page[pst::disk::page::kCLevel]});
  }
  void OnProblem(std::string, std::string) override {}
  std::vector<PageInfo> pages;
};

// Byte-level editing of a PST image that keeps CRCs right, so that a reader
// must cope with the structure itself, not just reject a checksum.
class PstImage {
 public:
  explicit PstImage(const std::string& path) : bytes_(testing::ReadFileOrDie(path)) {
    auto r = pst::ndb::NdbReader::Open(path);
    if (!r.ok()) return;
    PageCollector pages;
    if (!r->LoadTrees(&pages).ok()) return;
    pages_ = pages.pages;
    nodes_ = r->nodes();
    blocks_ = r->blocks();
    ok_ = true;
  }
  bool ok() const { return ok_; }
  std::string& bytes() { return bytes_; }
  const std::vector<PageInfo>& pages() const { return pages_; }
  const std::vector<pst::ndb::NodeEntry>& nodes() const { return nodes_; }
  const std::vector<pst::ndb::BlockEntry>& blocks() const { return blocks_; }

  uint8_t* At(uint64_t ib) { return reinterpret_cast<uint8_t*>(bytes_.data()) + ib; }
  static void Put32(uint8_t* p, uint32_t v) {
    for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
  }
  static void Put64(uint8_t* p, uint64_t v) {
    for (int i = 0; i < 8; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
  }
  uint32_t PageCrc(uint64_t ib) { return pst::disk::Crc(At(ib), pst::disk::page::kTrailer); }
  void FixPageCrc(uint64_t ib) { Put32(At(ib) + pst::disk::page::kCrc, PageCrc(ib)); }
  uint8_t* BlockTrailer(const pst::ndb::BlockEntry& b) {
    return At(b.ib) + pst::disk::BlockStoredSize(b.cb) - pst::disk::kBlockTrailerSize;
  }
  uint32_t BlockCrc(const pst::ndb::BlockEntry& b) { return pst::disk::Crc(At(b.ib), b.cb); }
  void FixBlockCrc(const pst::ndb::BlockEntry& b) { Put32(BlockTrailer(b) + 4, BlockCrc(b)); }

  // The first page of `tree` at `level` or above, nullptr if none.
  const PageInfo* Page(ndb::Tree tree, int min_level) const {
    for (const auto& p : pages_)
      if (p.tree == tree && p.level >= min_level) return &p;
    return nullptr;
  }
  // The NBT leaf entry of `nid` (32 bytes), nullptr if not found.
  uint8_t* NodeEntry(uint64_t nid, uint64_t* page_ib) {
    for (const auto& p : pages_) {
      if (p.tree != ndb::Tree::kNbt || p.level != 0) continue;
      const size_t count = At(p.ib)[pst::disk::page::kCEnt];
      for (size_t i = 0; i < count; ++i) {
        uint8_t* e = At(p.ib) + i * pst::disk::kNbtLeafEntrySize;
        if (pst::disk::Get64(e) == nid) {
          *page_ib = p.ib;
          return e;
        }
      }
    }
    return nullptr;
  }
  // The first internal block whose payload starts with `btype`, `level`.
  const pst::ndb::BlockEntry* InternalBlock(uint8_t btype, uint8_t level) {
    for (const auto& b : blocks_) {
      if (!pst::disk::IsInternalBid(b.bid) || b.cb < 8) continue;
      if (At(b.ib)[0] == btype && At(b.ib)[1] == level) return &b;
    }
    return nullptr;
  }
  const pst::ndb::BlockEntry* Block(uint64_t bid) {
    for (const auto& b : blocks_)
      if (pst::disk::BidKey(b.bid) == pst::disk::BidKey(bid)) return &b;
    return nullptr;
  }

 private:
  std::string bytes_;
  bool ok_ = false;
  std::vector<PageInfo> pages_;
  std::vector<pst::ndb::NodeEntry> nodes_;
  std::vector<pst::ndb::BlockEntry> blocks_;
};

// A hostile PST and what each command may answer: list 0/2/3, check 0/1/2,
// merge 0-3 (docs: exit statuses), never a signal, a hang or a blow-up.
struct PstCase {
  std::string name;
  std::string bytes;
};

// `into_existing` also merges into a copy of each as an existing PST target
// (the rewrite path, which reads every existing message first).
void ExpectEveryCommandCopes(const TempDir& tmp, const std::vector<PstCase>& cases,
                             bool into_existing) {
  const std::string good = WriteGoodMbox(tmp);
  std::vector<std::vector<std::string>> commands;
  std::vector<std::string> labels;
  for (size_t i = 0; i < cases.size(); ++i) {
    const std::string base = tmp / ("case" + std::to_string(i));
    WriteFileOrDie(base + ".pst", cases[i].bytes);
    commands.push_back({"list", "--json", base + ".pst"});
    commands.push_back({"check", base + ".pst"});
    commands.push_back({"merge", "--from", base + ".pst", "--into", base + ".mbox", "-q"});
    if (into_existing) {
      WriteFileOrDie(base + "-into.pst", cases[i].bytes);
      commands.push_back({"merge", "--from", good, "--into", "pst:" + base + "-into.pst", "-q"});
    }
    while (labels.size() < commands.size()) labels.push_back(cases[i].name);
  }
  const std::vector<LimitedRun> runs = RunAllLimited(commands);
  for (size_t i = 0; i < runs.size(); ++i) {
    const LimitedRun& r = runs[i];
    const std::string& cmd = commands[i][0];
    const bool ok = cmd == "list"    ? r.EndedWith({0, 2, 3})
                    : cmd == "check" ? r.EndedWith({0, 1, 2})
                                     : r.EndedWith({0, 1, 2, 3});
    EXPECT_TRUE(ok) << labels[i] << ": " << r.Describe();
    // MBX_HOSTILE_VERBOSE=1 prints each outcome (for docs/reliability.md).
    if (std::getenv("MBX_HOSTILE_VERBOSE") != nullptr) {
      std::string first = r.err.substr(0, r.err.find('\n'));
      std::printf("[hostile] %-58s %-6s exit %d, %.1f s, peak %llu MiB  %s\n",
                  labels[i].substr(0, 58).c_str(), cmd.c_str(), r.exit_code, r.seconds,
                  static_cast<unsigned long long>(r.peak_rss >> 20), first.substr(0, 140).c_str());
    }
  }
}

// Real PSTs when the shared data is there, else ours; always ours too.
std::vector<std::pair<std::string, std::string>> CorruptionSubjects(const TempDir& tmp) {
  std::vector<std::pair<std::string, std::string>> out;
  out.emplace_back("ours", testing::ReadFileOrDie(WriteBasePst(tmp)));
  for (const auto& f : testing::SharedOutlookFiles()) {
    const std::string name = stdfs::path(f).filename().string();
    if (name == "pstsdk-sample1.pst" || name == "pstsdk-test_ansi.pst")
      out.emplace_back(name, testing::ReadFileOrDie(f));
  }
  return out;
}

TEST(HostilePstTest, TruncatedAtManyOffsets) {
  TempDir tmp;
  std::vector<PstCase> cases;
  for (const auto& [name, bytes] : CorruptionSubjects(tmp)) {
    const size_t n = bytes.size();
    const std::set<size_t> cuts =
        kCaseDivisor > 1 ? std::set<size_t>{0, 564, n / 4, n / 2, n - 1}
                         : std::set<size_t>{0, 300, 564, 17 * 1024, n / 4, n / 2, 3 * n / 4, n - 1};
    for (size_t cut : cuts)
      cases.push_back({name + " cut at " + std::to_string(cut), bytes.substr(0, cut)});
  }
  ExpectEveryCommandCopes(tmp, cases, false);
}

TEST(HostilePstTest, BitFlipped) {
  TempDir tmp;
  std::vector<PstCase> cases;
  std::mt19937 rng(20240101);
  for (const auto& [name, bytes] : CorruptionSubjects(tmp)) {
    // Anywhere in the file (mostly message data, which must still read).
    for (int i = 0; i < 4 / kCaseDivisor; ++i) {
      std::string b = bytes;
      const size_t at = rng() % b.size();
      b[at] = static_cast<char>(b[at] ^ (1u << (rng() % 8)));
      cases.push_back({name + " bit flipped at " + std::to_string(at), b});
    }
    // In the header.
    for (int i = 0; i < 3 / kCaseDivisor; ++i) {
      std::string b = bytes;
      const size_t at = rng() % 564;
      b[at] = static_cast<char>(b[at] ^ (1u << (rng() % 8)));
      cases.push_back({name + " header bit flipped at " + std::to_string(at), b});
    }
    // In B-tree pages and internal blocks, with the CRC made right again.
    const std::string path = tmp / (name + ".orig");
    WriteFileOrDie(path, bytes);
    PstImage probe(path);
    if (!probe.ok()) continue;  // ANSI: our reader does not parse it
    for (int i = 0; i < 5 / kCaseDivisor; ++i) {
      PstImage img(path);
      const auto& pg = img.pages()[rng() % img.pages().size()];
      const size_t at = rng() % pst::disk::page::kTrailer;
      img.At(pg.ib)[at] ^= static_cast<uint8_t>(1u << (rng() % 8));
      img.FixPageCrc(pg.ib);
      cases.push_back(
          {name + " page @" + std::to_string(pg.ib) + " byte " + std::to_string(at), img.bytes()});
    }
    std::vector<pst::ndb::BlockEntry> internal;
    for (const auto& b : probe.blocks())
      if (pst::disk::IsInternalBid(b.bid) && b.cb >= 8) internal.push_back(b);
    for (int i = 0; i < 5 / kCaseDivisor && !internal.empty(); ++i) {
      PstImage img(path);
      const auto& b = internal[rng() % internal.size()];
      const size_t at = rng() % b.cb;
      img.At(b.ib)[at] ^= static_cast<uint8_t>(1u << (rng() % 8));
      img.FixBlockCrc(b);
      cases.push_back(
          {name + " internal block @" + std::to_string(b.ib) + " byte " + std::to_string(at),
           img.bytes()});
    }
  }
  ExpectEveryCommandCopes(tmp, cases, false);
}

TEST(HostilePstTest, StructuresThatPointInCycles) {
  TempDir tmp;
  const std::string path = WriteBasePst(tmp);
  PstImage probe(path);
  ASSERT_TRUE(probe.ok());
  // The CRC helpers agree with what the writer wrote.
  {
    PstImage img(path);
    const auto& pg = img.pages().front();
    ASSERT_EQ(img.PageCrc(pg.ib), pst::disk::Get32(img.At(pg.ib) + pst::disk::page::kCrc));
    const auto& b = img.blocks().front();
    ASSERT_EQ(img.BlockCrc(b), pst::disk::Get32(img.BlockTrailer(b) + 4));
  }
  std::vector<PstCase> cases;
  // A B-tree page whose first child is the page itself, for both trees.
  for (ndb::Tree tree : {ndb::Tree::kNbt, ndb::Tree::kBbt}) {
    PstImage img(path);
    const PageInfo* root = img.Page(tree, 1);
    ASSERT_NE(root, nullptr) << "the base PST needs two-level B-trees";
    uint8_t* e = img.At(root->ib);
    PstImage::Put64(e + 8, pst::disk::Get64(img.At(root->ib) + pst::disk::page::kBid));
    PstImage::Put64(e + 16, root->ib);
    img.FixPageCrc(root->ib);
    cases.push_back(
        {std::string(ndb::TreeName(tree)) + " page whose child is itself", img.bytes()});
    // Every child entry the same page: a walk without a visited set reads it over and over.
    PstImage img2(path);
    uint8_t* p = img2.At(root->ib);
    const size_t count = p[pst::disk::page::kCEnt];
    for (size_t i = 1; i < count; ++i) std::memcpy(p + i * 24 + 8, p + 8, 16);
    img2.FixPageCrc(root->ib);
    cases.push_back(
        {std::string(ndb::TreeName(tree)) + " page whose children are one page", img2.bytes()});
  }
  // Folders whose parent is themselves, and two folders each other's parent.
  std::vector<uint64_t> folders;
  for (const auto& n : probe.nodes())
    if (pst::disk::NidTypeOf(n.nid) == pst::disk::kNidTypeNormalFolder &&
        n.nid != pst::disk::kNidRootFolder)
      folders.push_back(n.nid);
  ASSERT_GE(folders.size(), 3u);
  for (uint64_t nid : {folders.front(), folders.back()}) {
    PstImage img(path);
    uint64_t page = 0;
    uint8_t* e = img.NodeEntry(nid, &page);
    ASSERT_NE(e, nullptr);
    PstImage::Put32(e + 24, static_cast<uint32_t>(nid));
    img.FixPageCrc(page);
    cases.push_back({"folder " + std::to_string(nid) + " is its own parent", img.bytes()});
  }
  {
    PstImage img(path);
    const uint64_t a = folders[folders.size() - 1], b = folders[folders.size() - 2];
    uint64_t pa = 0, pb = 0;
    uint8_t* ea = img.NodeEntry(a, &pa);
    PstImage::Put32(ea + 24, static_cast<uint32_t>(b));
    img.FixPageCrc(pa);
    uint8_t* eb = img.NodeEntry(b, &pb);
    PstImage::Put32(eb + 24, static_cast<uint32_t>(a));
    img.FixPageCrc(pb);
    cases.push_back({"two folders each other's parent", img.bytes()});
  }
  // An XBLOCK that lists itself as a data block.
  {
    PstImage img(path);
    const auto* x = img.InternalBlock(pst::disk::kBlockTypeXBlock, 1);
    ASSERT_NE(x, nullptr) << "the base PST needs an XBLOCK";
    PstImage::Put64(img.At(x->ib) + 8, x->bid);
    img.FixBlockCrc(*x);
    cases.push_back({"XBLOCK listing itself", img.bytes()});
  }
  // An SLBLOCK entry whose own subnodes are that SLBLOCK (subnodes nested forever).
  {
    PstImage img(path);
    const auto* sl = img.InternalBlock(pst::disk::kBlockTypeSubnode, 0);
    ASSERT_NE(sl, nullptr);
    const size_t count = pst::disk::Get16(img.At(sl->ib) + 2);
    for (size_t i = 0; i < count; ++i) PstImage::Put64(img.At(sl->ib) + 8 + i * 24 + 16, sl->bid);
    img.FixBlockCrc(*sl);
    cases.push_back({"SLBLOCK whose entries' subnodes are itself", img.bytes()});
  }
  // An SIBLOCK that lists itself where its SLBLOCKs belong.
  {
    PstImage img(path);
    const auto* si = img.InternalBlock(pst::disk::kBlockTypeSubnode, 1);
    ASSERT_NE(si, nullptr) << "the base PST needs an SIBLOCK";
    const size_t count = pst::disk::Get16(img.At(si->ib) + 2);
    for (size_t i = 0; i < count; ++i) PstImage::Put64(img.At(si->ib) + 8 + i * 16 + 8, si->bid);
    img.FixBlockCrc(*si);
    cases.push_back({"SIBLOCK listing itself", img.bytes()});
  }
  // A heap's B-tree whose index node lists itself at every entry, 200 levels
  // deep: a walk by level alone reads it entries^200 times.
  for (const auto& n : probe.nodes()) {
    if (pst::disk::NidTypeOf(n.nid) != pst::disk::kNidTypeNormalMessage) continue;
    PstImage img(path);
    const auto* b = img.Block(n.bid_data);
    if (b == nullptr || pst::disk::IsInternalBid(b->bid)) continue;
    uint8_t* hn = img.At(b->ib);
    if (hn[2] != pst::disk::kHeapSig || hn[3] != pst::disk::kClientSigPc) continue;
    const uint32_t user_root = pst::disk::Get32(hn + 4);
    const uint8_t* map = hn + pst::disk::Get16(hn);
    auto alloc = [&](uint32_t hid, size_t* size) -> uint8_t* {
      const size_t index = (hid >> 5) & 0x7FF;
      const size_t from = pst::disk::Get16(map + 4 + 2 * (index - 1)),
                   to = pst::disk::Get16(map + 4 + 2 * index);
      *size = to - from;
      return hn + from;
    };
    size_t header_size = 0, root_size = 0;
    uint8_t* header = alloc(user_root, &header_size);
    const uint32_t root_hid = pst::disk::Get32(header + 4);
    uint8_t* root_node = alloc(root_hid, &root_size);
    const size_t key = header[1];
    header[3] = 200;  // bIdxLevels
    for (size_t off = 0; off + key + 4 <= root_size; off += key + 4)
      PstImage::Put32(root_node + off + key, root_hid);
    img.FixBlockCrc(*b);
    cases.push_back({"heap B-tree node listing itself 200 levels deep", img.bytes()});
    break;
  }
  ASSERT_EQ(cases.size(), 4u + 2 + 1 + 4);
  ExpectEveryCommandCopes(tmp, cases, true);
}

}  // namespace
}  // namespace mbx
