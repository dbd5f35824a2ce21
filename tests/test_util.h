// \brief Shared test helpers: scratch directories, running the mbxmerge binary, files.
#pragma once

#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace mbx::testing {

// A fresh directory under $TMPDIR, removed (recursively) on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string operator/(std::string_view name) const { return path_ + "/" + std::string(name); }

 private:
  std::string path_;
};

struct CommandResult {
  int exit_code = -1;
  std::string out;  // stdout
  std::string err;  // stderr
};

// Runs `argv` (no shell), capturing stdout and stderr.
CommandResult Run(const std::vector<std::string>& argv);
// The mbxmerge binary under test.
std::string MbxmergePath();
// Runs the mbxmerge binary under test with `args`.
CommandResult RunMbxmerge(const std::vector<std::string>& args);
// Runs the sample generator (mbxgen) with `args`.
CommandResult RunMbxgen(const std::vector<std::string>& args);
// True when `program` is on PATH.
bool HaveProgram(const std::string& program);

std::string ReadFileOrDie(const std::string& path);
void WriteFileOrDie(const std::string& path, std::string_view data);
// Every regular file below `dir`, relative paths, sorted.
std::vector<std::string> ListFilesRecursive(const std::string& dir);
// The fields of `s` between separators (an empty string gives one empty field).
std::vector<std::string> Split(const std::string& s, char sep);

// The X-Mbxgen-Id of a generated message (the first line that starts with
// it; header-less messages carry it at the end of the body), "" if none.
std::string MbxgenId(std::string_view mime);
// X-Mbxgen-Id -> how many messages of the mailbox `spec` carry it. Problems
// are counted too, so that comparisons see them: messages without an id under
// "(no id)", unreadable ones under "(unreadable)", a mailbox that cannot be
// opened or read to the end under "(cannot open)".
std::map<std::string, int> MbxgenIdCounts(const std::string& spec);
// The ids (first column) of an mbxgen manifest.
std::set<std::string> ManifestIds(const std::string& tsv_path);

// The shared real-data folder (../shared/data or $MBX_SHARED_DATA), "" if absent.
std::string SharedDataDir();

// The real Outlook PST/OST files of SharedDataDir()/outlook that are present
// (none without the shared data).
std::vector<std::string> SharedOutlookFiles();

}  // namespace mbx::testing
