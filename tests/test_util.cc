#include "tests/test_util.h"

#include "formats/registry.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

extern char** environ;

namespace mbx::testing {
namespace stdfs = std::filesystem;

TempDir::TempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string tmpl = std::string(base && *base ? base : "/tmp") + "/mbxtest.XXXXXX";
  if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
  path_ = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  stdfs::remove_all(path_, ec);
}

namespace {
std::string Drain(int fd) {
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}
}  // namespace

CommandResult Run(const std::vector<std::string>& argv) {
  int out_pipe[2], err_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0 || ::pipe2(err_pipe, O_CLOEXEC) != 0) throw std::runtime_error("pipe");
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, out_pipe[1], 1);
  posix_spawn_file_actions_adddup2(&fa, err_pipe[1], 2);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid;
  int rc = posix_spawnp(&pid, args[0], &fa, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  CommandResult r;
  if (rc != 0) {
    ::close(out_pipe[0]);
    ::close(err_pipe[0]);
    r.err = "spawn failed: " + argv[0];
    return r;
  }
  std::string err;
  std::thread t([&] { err = Drain(err_pipe[0]); });
  r.out = Drain(out_pipe[0]);
  t.join();
  r.err = std::move(err);
  ::close(out_pipe[0]);
  ::close(err_pipe[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

std::string MbxmergePath() { return MBX_BINARY; }

CommandResult RunMbxmerge(const std::vector<std::string>& args) {
  std::vector<std::string> argv{MBX_BINARY};
  argv.insert(argv.end(), args.begin(), args.end());
  return Run(argv);
}

CommandResult RunMbxgen(const std::vector<std::string>& args) {
  std::vector<std::string> argv{MBX_GEN_BINARY};
  argv.insert(argv.end(), args.begin(), args.end());
  return Run(argv);
}

bool HaveProgram(const std::string& program) {
  return Run({"sh", "-c", "command -v " + program}).exit_code == 0;
}

std::string ReadFileOrDie(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void WriteFileOrDie(const std::string& path, std::string_view data) {
  stdfs::create_directories(stdfs::path(path).parent_path());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) throw std::runtime_error("cannot write " + path);
  out.write(data.data(), static_cast<std::streamsize>(data.size()));
}

std::vector<std::string> ListFilesRecursive(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : stdfs::recursive_directory_iterator(dir)) {
    if (e.is_regular_file()) out.push_back(stdfs::relative(e.path(), dir).string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::string MbxgenId(std::string_view mime) {
  static constexpr std::string_view kTag = "X-Mbxgen-Id: ";
  size_t at = 0;
  for (;;) {
    at = mime.find(kTag, at);
    if (at == std::string_view::npos) return "";
    if (at == 0 || mime[at - 1] == '\n') break;
    at += kTag.size();
  }
  size_t end = mime.find_first_of("\r\n", at);
  return std::string(mime.substr(at + kTag.size(), end == std::string_view::npos ? std::string_view::npos
                                                                                  : end - at - kTag.size()));
}

std::map<std::string, int> MbxgenIdCounts(const std::string& spec) {
  std::map<std::string, int> out;
  auto loc = ParseLocation(spec, false);
  if (!loc.ok()) {
    out["(cannot open)"]++;
    return out;
  }
  auto src = OpenSource(*loc);
  if (!src.ok()) {
    out["(cannot open)"]++;
    return out;
  }
  Message m;
  for (;;) {
    auto more = (*src)->Next(&m);
    if (!more.ok()) {
      out["(cannot open)"]++;
      break;
    }
    if (!*more) break;
    if (m.read_error) {
      out["(unreadable)"]++;
      continue;
    }
    // Native (PST) messages are rendered as MIME first.
    auto mime = m.Mime();
    if (!mime.ok()) {
      out["(unreadable)"]++;
      continue;
    }
    std::string id = MbxgenId(*mime);
    out[id.empty() ? "(no id)" : id]++;
  }
  return out;
}

std::set<std::string> ManifestIds(const std::string& tsv_path) {
  std::set<std::string> out;
  std::istringstream in(ReadFileOrDie(tsv_path));
  std::string line;
  while (std::getline(in, line)) out.insert(line.substr(0, line.find('\t')));
  return out;
}

std::string SharedDataDir() {
  const char* env = std::getenv("MBX_SHARED_DATA");
  std::string dir = env && *env ? env : std::string(MBX_SOURCE_DIR) + "/../shared/data";
  std::error_code ec;
  return stdfs::is_directory(dir, ec) ? dir : "";
}

}  // namespace mbx::testing

namespace mbx::testing {

std::vector<std::string> SharedOutlookFiles() {
  const std::string dir = SharedDataDir();
  if (dir.empty()) return {};
  std::vector<std::string> out;
  for (const char* name :
       {"pstextractortest@outlook.com.ost", "pstextractortestpdf@outlook.com.ost", "pstsdk-sample1.pst",
        "pstsdk-sample2.pst", "pstsdk-submessage.pst", "pstsdk-test_ansi.pst", "pstsdk-test_unicode.pst"}) {
    const std::string p = dir + "/outlook/" + name;
    if (stdfs::is_regular_file(p)) out.push_back(p);
  }
  return out;
}

std::vector<std::string> Split(const std::string& s, char sep) {
  std::vector<std::string> f;
  size_t start = 0;
  for (;;) {
    size_t at = s.find(sep, start);
    f.push_back(s.substr(start, at - start));
    if (at == std::string::npos) return f;
    start = at + 1;
  }
}

}  // namespace mbx::testing
