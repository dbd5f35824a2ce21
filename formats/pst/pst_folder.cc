// A folder of PST/OST files as one source (pst.h OpenFolderSource): ExMerge
// and Outlook exports leave one file per mailbox in a directory, and one
// process converting them all pays the start-up once and keeps the worker pool
// busy across files.
#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <map>
#include <set>

#include "formats/pst/pst.h"

namespace mbx::pst {
namespace {

std::string Quoted(std::string_view s) { return "'" + std::string(s) + "'"; }

struct Entry {
  std::string path;
  std::string name;  // the top folder its folders go under
  bool is_pst = false;
};

// The regular files of `dir`, by name; each PST/OST named after its file
// without the extension (with it, when two files would share a name).
// `*subdirs` tells whether it has subdirectories (which are not read).
Result<std::vector<Entry>> Scan(const std::string& dir, bool* subdirs = nullptr) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return Status::FromErrno("open directory " + Quoted(dir), errno);
  std::vector<std::string> names;
  while (const dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n == "." || n == "..") continue;
    struct stat st {};
    if (::stat((dir + "/" + n).c_str(), &st) != 0) continue;
    if (S_ISREG(st.st_mode)) names.push_back(n);
    if (S_ISDIR(st.st_mode) && subdirs != nullptr) *subdirs = true;
  }
  ::closedir(d);
  std::sort(names.begin(), names.end());
  std::vector<Entry> out;
  std::map<std::string, int> stems;
  for (const std::string& n : names) {
    Entry e{dir + "/" + n, n, false};
    e.is_pst = HasPstMagic(e.path);
    if (e.is_pst && HasPstSuffix(n)) e.name = n.substr(0, n.size() - 4);
    e.name = FolderComponent(e.name);
    ++stems[e.name];
    out.push_back(std::move(e));
  }
  for (Entry& e : out) {
    const size_t slash = e.path.rfind('/');
    if (stems[e.name] > 1) e.name = FolderComponent(e.path.substr(slash + 1));
  }
  return out;
}

// A PST source's folder path under its file's folder: its Inbox ("") is
// NAME/Inbox, the Inbox's subfolders (INBOX/Sub) NAME/Inbox/Sub, others
// NAME/PATH. Store folders (--associated: Common Views...) stay the store's:
// every file's FAI there goes to the target's one.
std::string Under(const std::string& name, std::string_view path) {
  if (IsStoreFolder(path)) return std::string(path);  // the target store's own
  if (path.empty()) return name + "/Inbox";
  if (path.substr(0, 6) == "INBOX/") return name + "/Inbox/" + std::string(path.substr(6));
  return name + "/" + std::string(path);
}

class PstFolderSource : public MailboxSource {
 public:
  PstFolderSource(std::string dir, std::vector<Entry> files, PstSourceOptions opts)
      : dir_(std::move(dir)), files_(std::move(files)), opts_(opts) {}

  std::string Describe() const override { return "pstdir:" + dir_; }

  void SetFolderFilter(std::function<bool(std::string_view folder)> want) override {
    want_ = std::move(want);
  }
  void SetReadThreads(int threads) override { threads_ = threads; }

  Result<std::vector<FolderInfo>> ListFolders() override {
    std::vector<FolderInfo> out{FolderInfo{"", 0, 0}};
    for (const Entry& f : files_) {
      if (!f.is_pst) continue;
      auto src = OpenSource(f.path, opts_);
      if (!src.ok()) continue;  // Next() reports it
      auto folders = (*src)->ListFolders();
      if (!folders.ok()) continue;
      out.push_back(FolderInfo{f.name, 0, 0});
      for (const FolderInfo& info : *folders)
        out.push_back(FolderInfo{Under(f.name, info.path), info.messages, info.bytes});
    }
    return out;
  }

  Result<bool> Next(Message* out) override {
    for (;;) {
      if (!current_) {
        if (next_ >= files_.size()) return false;
        const Entry& f = files_[next_++];
        if (Status why = Open(f); !why.ok()) {
          // One failed item naming the file; the other files are still read.
          *out = Message();
          out->folder = f.name;
          out->origin = "pst " + Quoted(f.path);
          out->read_error = why;
          return true;
        }
        if (!current_) continue;  // nothing selected in it
      }
      auto more = current_->Next(out);
      if (!more.ok()) {
        const Entry& f = files_[next_ - 1];
        current_.reset();
        *out = Message();
        out->folder = f.name;
        out->origin = "pst " + Quoted(f.path);
        out->read_error = more.status().WithContext(out->origin + " (the rest of the file)");
        return true;
      }
      if (!*more) {
        current_.reset();  // one file open at a time
        continue;
      }
      out->folder = Under(files_[next_ - 1].name, out->folder);
      return true;
    }
  }

 private:
  Status Open(const Entry& f) {
    if (!f.is_pst) {
      return Status::InvalidArgument(Quoted(f.path) +
                                     " is not a PST/OST file (no !BDN signature); skipped");
    }
    MBX_ASSIGN_OR_RETURN(current_, OpenSource(f.path, opts_));
    const std::string name = f.name;
    if (want_) {
      current_->SetFolderFilter(
          [want = want_, name](std::string_view path) { return want(Under(name, path)); });
    }
    current_->SetReadThreads(threads_);
    return Status::Ok();
  }

  std::string dir_;
  std::vector<Entry> files_;
  PstSourceOptions opts_;
  std::function<bool(std::string_view)> want_;
  int threads_ = 1;
  size_t next_ = 0;
  std::unique_ptr<MailboxSource> current_;
};

}  // namespace

bool IsPstFolder(const std::string& dir) {
  bool subdirs = false;
  auto files = Scan(dir, &subdirs);
  if (!files.ok() || files->empty() || subdirs) return false;
  return std::all_of(files->begin(), files->end(), [](const Entry& e) { return e.is_pst; });
}

Result<std::unique_ptr<MailboxSource>> OpenFolderSource(const std::string& dir,
                                                        const PstSourceOptions& opts) {
  MBX_ASSIGN_OR_RETURN(std::vector<Entry> files, Scan(dir));
  if (std::none_of(files.begin(), files.end(), [](const Entry& e) { return e.is_pst; })) {
    return Status::InvalidArgument(Quoted(dir) + " holds no PST/OST file");
  }
  return std::unique_ptr<MailboxSource>(new PstFolderSource(dir, std::move(files), opts));
}

}  // namespace mbx::pst
