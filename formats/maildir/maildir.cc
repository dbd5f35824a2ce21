// Maildir++ backend. Layout (as Courier and Dovecot use it):
//   DIR/{cur,new,tmp}          the root folder "" (INBOX)
//   DIR/.A.B/{cur,new,tmp}     folder "A/B", with an empty "maildirfolder" file
// Component names are IMAP modified UTF-7 on disk; '.' is the hierarchy
// separator there, so a '.' inside a folder name is written as '_'.
#include "formats/maildir/maildir.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <set>
#include <utility>
#include <vector>

#include "engine/faultpoint.h"
#include "engine/fs.h"
#include "formats/mime/mime.h"

namespace mbx::maildir {
namespace {

constexpr size_t kHeadBytes = 16 * 1024;
constexpr size_t kMaxHeadBytes = 16 * 1024 * 1024;  // a header block larger than this is junk

// ---- UTF-8 / UTF-16 helpers for modified UTF-7 ----

// Decodes one code point at `*i`; invalid sequences yield U+FFFD and advance one byte.
char32_t NextCodePoint(std::string_view s, size_t* i) {
  auto b = static_cast<unsigned char>(s[*i]);
  if (b < 0x80) {
    ++*i;
    return b;
  }
  int len = b >= 0xF0 && b <= 0xF4 ? 4 : b >= 0xE0 ? 3 : b >= 0xC2 && b < 0xE0 ? 2 : 0;
  if (len == 0 || *i + len > s.size()) {
    ++*i;
    return 0xFFFD;
  }
  char32_t cp = b & (0xFF >> (len + 1));
  for (int k = 1; k < len; ++k) {
    auto c = static_cast<unsigned char>(s[*i + k]);
    if ((c & 0xC0) != 0x80) {
      ++*i;
      return 0xFFFD;
    }
    cp = (cp << 6) | (c & 0x3F);
  }
  // Overlong forms, surrogates and values past U+10FFFF are invalid.
  if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
      (cp >= 0xD800 && cp <= 0xDFFF)) {
    ++*i;
    return 0xFFFD;
  }
  *i += len;
  return cp;
}

void AppendUtf8(char32_t cp, std::string* out) {
  if (cp < 0x80) {
    *out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    *out += static_cast<char>(0xC0 | (cp >> 6));
    *out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    *out += static_cast<char>(0xE0 | (cp >> 12));
    *out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    *out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    *out += static_cast<char>(0xF0 | (cp >> 18));
    *out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    *out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    *out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

constexpr char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

int B64Value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == ',') return 63;
  return -1;
}

void FlushUtf16Run(const std::vector<uint16_t>& units, std::string* out) {
  *out += '&';
  uint32_t bits = 0;
  int nbits = 0;
  for (uint16_t u : units) {
    for (int shift = 8; shift >= 0; shift -= 8) {
      bits = (bits << 8) | ((u >> shift) & 0xFF);
      nbits += 8;
      while (nbits >= 6) {
        nbits -= 6;
        *out += kB64[(bits >> nbits) & 0x3F];
      }
    }
  }
  if (nbits > 0) *out += kB64[(bits << (6 - nbits)) & 0x3F];
  *out += '-';
}

// ---- file helpers ----

// Regular files (and symlinks) in `dir` not starting with '.', sorted by name.
// A missing directory is empty (a Maildir may lack new/ after a copy).
Result<std::vector<std::string>> ListFiles(const std::string& dir) {
  std::vector<std::string> out;
  DIR* d = ::opendir(dir.c_str());
  if (!d) {
    if (errno == ENOENT || errno == ENOTDIR) return out;
    return Status::FromErrno("open directory '" + dir + "'", errno);
  }
  errno = 0;
  while (struct dirent* e = ::readdir(d)) {
    if (e->d_name[0] == '.') continue;
    bool file = e->d_type == DT_REG;
    if (e->d_type == DT_UNKNOWN || e->d_type == DT_LNK) {
      struct stat st;
      if (::stat((dir + "/" + e->d_name).c_str(), &st) == 0) {
        file = S_ISREG(st.st_mode);
      } else {
        // A dangling symlink is listed so that reading it reports the problem.
        file = e->d_type == DT_LNK;
      }
    }
    if (file) out.emplace_back(e->d_name);
    errno = 0;
  }
  int err = errno;
  ::closedir(d);
  if (err != 0) return Status::FromErrno("read directory '" + dir + "'", err);
  std::sort(out.begin(), out.end());
  return out;
}

// Reads a whole file opened without following it into a FIFO or directory.
// `vanished` is set when the file is gone (ENOENT).
Result<std::string> ReadFileStat(const std::string& path, struct stat* st, bool* vanished) {
  *vanished = false;
  int fd;
  do {
    fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) {
    *vanished = errno == ENOENT;
    return Status::FromErrno("open '" + path + "'", errno);
  }
  fs::Fd owned(fd);
  if (::fstat(fd, st) != 0) return Status::FromErrno("stat '" + path + "'", errno);
  if (!S_ISREG(st->st_mode)) return Status::IOError("'" + path + "' is not a regular file");
  std::string data;
  data.resize(static_cast<size_t>(st->st_size));
  size_t got = 0;
  for (;;) {
    if (got == data.size()) data.resize(data.size() + 65536);  // the file grew
    ssize_t n = ::read(fd, data.data() + got, data.size() - got);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno("read '" + path + "'", errno);
    }
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  data.resize(got);
  return data;
}

}  // namespace

namespace internal {

Result<std::string> ReadMessageFile(const std::string& path, UnixTime* mtime, bool* vanished) {
  struct stat st;
  auto r = ReadFileStat(path, &st, vanished);
  if (r.ok()) *mtime = st.st_mtim.tv_sec;
  return r;
}

Result<std::string> ReadHead(const std::string& path, bool* vanished) {
  *vanished = false;
  size_t limit = kHeadBytes;
  for (;;) {
    auto head = fs::ReadPrefix(path, limit);
    if (!head.ok()) {
      *vanished = !fs::Exists(path);
      return head.status();
    }
    if (head->size() < limit || limit >= kMaxHeadBytes || mime::BodyOffset(*head) < head->size()) {
      return head;
    }
    limit *= 4;
  }
}

Status SyncFiles(const std::vector<std::string>& files, bool batch) {
  if (batch) {
    std::set<std::string> dirs;
    for (const auto& f : files) dirs.insert(fs::Dirname(f));
    std::set<dev_t> synced;
    for (const auto& dir : dirs) {
      MBX_ASSIGN_OR_RETURN(fs::Fd fd, fs::Open(dir, O_RDONLY | O_DIRECTORY));
      struct stat st;
      if (::fstat(fd.get(), &st) != 0) return Status::FromErrno("stat '" + dir + "'", errno);
      if (!synced.insert(st.st_dev).second) continue;
      if (::syncfs(fd.get()) != 0) return Status::FromErrno("syncfs '" + dir + "'", errno);
    }
    return Status::Ok();
  }
  for (const auto& f : files) {
    MBX_ASSIGN_OR_RETURN(fs::Fd fd, fs::Open(f, O_RDONLY));
    MBX_RETURN_IF_ERROR(fs::FsyncFd(fd.get(), f));
  }
  return Status::Ok();
}

std::vector<std::string> SplitFolder(std::string_view path) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= path.size()) {
    size_t slash = path.find('/', start);
    if (slash == std::string_view::npos) slash = path.size();
    if (slash > start) out.emplace_back(path.substr(start, slash - start));
    start = slash + 1;
  }
  return out;
}

}  // namespace internal

namespace {

using internal::ReadHead;
using internal::SplitFolder;

// ",S=<size>" in the unique part of a file name, as Dovecot and we write it.
std::optional<uint64_t> SizeHint(std::string_view name) {
  name = name.substr(0, name.find(':'));
  size_t p = name.find(",S=");
  if (p == std::string_view::npos) return std::nullopt;
  uint64_t v = 0;
  size_t i = p + 3;
  size_t start = i;
  for (; i < name.size() && name[i] >= '0' && name[i] <= '9' && i - start < 19; ++i) {
    v = v * 10 + static_cast<uint64_t>(name[i] - '0');
  }
  if (i == start) return std::nullopt;
  return v;
}

// The leading decimal timestamp of "1700000000.M1P2.host"; 0 when absent.
UnixTime DeliveryStamp(std::string_view name) {
  UnixTime t = 0;
  size_t i = 0;
  for (; i < name.size() && i < 12 && name[i] >= '0' && name[i] <= '9'; ++i)
    t = t * 10 + (name[i] - '0');
  if (i == 0 || i >= name.size() || name[i] != '.') return 0;
  return t;
}

std::string NormalizeFolder(std::string_view folder) {
  std::string out;
  for (const auto& c : SplitFolder(folder)) {
    if (!out.empty()) out += '/';
    out += c;
  }
  return out;
}

bool IsDovecotFile(std::string_view name) {
  return name.substr(0, 7) == "dovecot" || name == "subscriptions" || name == "maildirfolder";
}

bool HasMessageDirs(const std::string& dir) {
  return fs::IsDir(dir + "/cur") || fs::IsDir(dir + "/new");
}

struct FolderDir {
  std::string path;  // "A/B"
  std::string dir;   // "/root/.A.B"
};

// The root first, then every Maildir++ subfolder in tree order. A subfolder
// counts when it has cur/ or new/ (tmp/ is often lost by copies and archives).
Result<std::vector<FolderDir>> ListFolderDirs(const std::string& root) {
  std::vector<FolderDir> subs;
  DIR* d = ::opendir(root.c_str());
  if (!d) return Status::FromErrno("open Maildir '" + root + "'", errno);
  errno = 0;
  while (struct dirent* e = ::readdir(d)) {
    std::string_view name = e->d_name;
    if (name.size() < 2 || name[0] != '.' || name == ".." || IsDovecotFile(name)) continue;
    if (e->d_type != DT_DIR && e->d_type != DT_UNKNOWN && e->d_type != DT_LNK) continue;
    std::string dir = root + "/" + e->d_name;
    std::string folder = FolderForDirName(name);
    if (!folder.empty() && fs::IsDir(dir) && HasMessageDirs(dir)) subs.push_back({folder, dir});
    errno = 0;
  }
  int err = errno;
  ::closedir(d);
  if (err != 0) return Status::FromErrno("read Maildir '" + root + "'", err);
  std::sort(subs.begin(), subs.end(), [](const FolderDir& a, const FolderDir& b) {
    // Component by component, so that parents come before children.
    auto ca = SplitFolder(a.path), cb = SplitFolder(b.path);
    if (ca != cb) return ca < cb;
    return a.dir < b.dir;
  });
  std::vector<FolderDir> out;
  out.push_back({"", root});
  for (auto& s : subs) out.push_back(std::move(s));
  return out;
}

// ---- source ----

class MaildirSource : public MailboxSource {
 public:
  explicit MaildirSource(std::string root) : root_(std::move(root)) {}

  std::string Describe() const override { return "maildir:" + root_; }

  // Archive mode unlinks each message's own file (Message::backing_file).
  bool CanRemoveMessages() const override { return true; }

  Result<std::vector<FolderInfo>> ListFolders() override {
    MBX_ASSIGN_OR_RETURN(auto dirs, ListFolderDirs(root_));
    std::vector<FolderInfo> out;
    for (const auto& f : dirs) {
      FolderInfo info;
      info.path = f.path;
      for (const char* sub : {"/new", "/cur"}) {
        std::string dir = f.dir + sub;
        MBX_ASSIGN_OR_RETURN(auto names, ListFiles(dir));
        for (const auto& n : names) {
          ++info.messages;
          if (auto hint = SizeHint(n)) {
            info.bytes += *hint;
          } else {
            struct stat st;
            if (::stat((dir + "/" + n).c_str(), &st) == 0)
              info.bytes += static_cast<uint64_t>(st.st_size);
          }
        }
      }
      out.push_back(std::move(info));
    }
    return out;
  }

  Result<bool> Next(Message* out) override {
    if (!listed_) {
      MBX_ASSIGN_OR_RETURN(folders_, ListFolderDirs(root_));
      listed_ = true;
    }
    while (folder_ < folders_.size()) {
      const FolderDir& f = folders_[folder_];
      if (!files_loaded_) {
        files_.clear();
        file_ = 0;
        if (WantFolder(f.path)) {
          for (bool cur : {false, true}) {
            MBX_ASSIGN_OR_RETURN(auto names, ListFiles(f.dir + (cur ? "/cur" : "/new")));
            for (auto& n : names) files_.push_back({cur, std::move(n)});
          }
        }
        files_loaded_ = true;
      }
      if (file_ < files_.size()) {
        Read(f, files_[file_++], out);
        return true;
      }
      ++folder_;
      files_loaded_ = false;
    }
    return false;
  }

 private:
  struct File {
    bool cur;
    std::string name;
  };

  void Read(const FolderDir& f, const File& file, Message* out) {
    *out = Message();
    std::string rel = std::string(file.cur ? "cur/" : "new/") + file.name;
    std::string path = f.dir + "/" + rel;
    out->folder = f.path;
    out->origin = "maildir '" + root_ + "' folder '" + f.path + "' file '" + rel + "'";
    out->flags = FlagsFromName(file.name) | (file.cur ? kFlagOld : 0);
    struct stat st;
    bool vanished = false;
    auto data = ReadFileStat(path, &st, &vanished);
    if (!data.ok()) {
      if (vanished) {
        out->read_error = Status::NotFound(
            out->origin +
            ": the file vanished between listing and reading (another program, e.g. a mail "
            "client, moved or deleted it); run again to pick it up under its new name");
      } else {
        out->read_error = data.status().WithContext(out->origin);
      }
      return;
    }
    out->mime = std::move(data).value();
    out->container_modified = st.st_mtim.tv_sec;
    out->container_delivered = DeliveryStamp(file.name);
    if (out->container_delivered == 0) out->container_delivered = st.st_mtim.tv_sec;
    out->backing_file = path;
  }

  std::string root_;
  bool listed_ = false;
  std::vector<FolderDir> folders_;
  size_t folder_ = 0;
  bool files_loaded_ = false;
  std::vector<File> files_;
  size_t file_ = 0;
};

// ---- sink ----

// A message written ahead into the Maildir's tmp/ by Convert() on a worker
// thread, so that the committer only renames it. Stage() claims it; one
// never claimed (a duplicate, a stopped run) is removed with its form. A
// crash leaves it in tmp/, where the next open finds it orphaned.
class WrittenAhead : public SinkForm {
 public:
  WrittenAhead(const void* sink, std::string path, std::string name)
      : sink_(sink), path_(std::move(path)), name_(std::move(name)) {}
  ~WrittenAhead() override {
    if (!claimed_.load()) ::unlink(path_.c_str());
  }
  size_t SizeHint() const override { return 0; }  // on disk, not in memory

  // The sink that wrote it takes the file over (once): from then on the
  // sink removes it on Rollback() and this form leaves it alone.
  bool Claim(const void* sink) const { return sink == sink_ && !claimed_.exchange(true); }
  const std::string& path() const { return path_; }
  const std::string& name() const { return name_; }

 private:
  const void* sink_;
  std::string path_;
  std::string name_;
  mutable std::atomic<bool> claimed_{false};
};

class MaildirSink : public MailboxSink {
 public:
  MaildirSink(std::string root, const SinkOptions& opts, DirLock lock)
      : root_(std::move(root)), opts_(opts), lock_(std::move(lock)) {}

  ~MaildirSink() override {
    if (!closed_) {
      Rollback();
      lock_.Release();
    }
  }

  std::string Describe() const override { return "maildir:" + root_; }

  Status Init() {
    struct stat st;
    if (::stat(root_.c_str(), &st) != 0) return Status::FromErrno("stat '" + root_ + "'", errno);
    root_dev_ = st.st_dev;
    MBX_RETURN_IF_ERROR(FinishReplacements());
    MBX_ASSIGN_OR_RETURN(auto dirs, ListFolderDirs(root_));
    for (auto& d : dirs) {
      RemoveOrphanedTmpFiles(d.dir + "/tmp");
      existing_dirs_.emplace(d.path, d.dir);
    }
    return Status::Ok();
  }

  // Files a killed run of ours staged in tmp/ and never renamed: named by
  // UniqueName() on this host by a process that is gone. Nothing else is
  // touched: another MDA's delivery in progress stays.
  static void RemoveOrphanedTmpFiles(const std::string& tmp_dir) {
    DIR* d = ::opendir(tmp_dir.c_str());
    if (d == nullptr) return;
    const std::string host_part = "." + fs::Hostname() + ",S=";
    while (const dirent* e = ::readdir(d)) {
      std::string_view name(e->d_name);
      size_t p = name.find('P'), q = name.find('Q');
      if (name.find(".M") == std::string_view::npos || p == std::string_view::npos ||
          q == std::string_view::npos || q < p || name.find(host_part) == std::string_view::npos)
        continue;
      std::string pid(name.substr(p + 1, q - p - 1));
      char* end = nullptr;
      long n = std::strtol(pid.c_str(), &end, 10);
      if (pid.empty() || *end != '\0' || !fs::ProcessGone(n)) continue;
      ::unlinkat(::dirfd(d), e->d_name, 0);
    }
    ::closedir(d);
  }

  bool CanReplace() const override { return true; }

  Status StageReplacing(const Message& msg, std::string_view folder, uint64_t existing) override {
    MBX_ASSIGN_OR_RETURN(std::string old_path, ExistingPath(existing));
    MBX_RETURN_IF_ERROR(Stage(msg, folder));
    staged_.back().replaces = std::move(old_path);
    return Status::Ok();
  }

  UnixTime ExistingModified(uint64_t existing) override {
    auto path = ExistingPath(existing);
    struct stat st;
    if (!path.ok() || ::stat(path->c_str(), &st) != 0) return 0;
    return st.st_mtim.tv_sec;
  }

  Status ScanExisting(const std::function<Status(const ExistingMessage&)>& fn) override {
    MBX_ASSIGN_OR_RETURN(scan_folders_, ListFolderDirs(root_));
    arena_.clear();
    entry_offset_.clear();
    entry_folder_.clear();
    for (uint32_t fi = 0; fi < scan_folders_.size(); ++fi) {
      const FolderDir& f = scan_folders_[fi];
      for (const char* sub : {"new/", "cur/"}) {
        MBX_ASSIGN_OR_RETURN(auto names, ListFiles(f.dir + "/" + sub));
        for (const auto& n : names) {
          std::string rel = sub + n;
          bool vanished = false;
          auto head = ReadHead(f.dir + "/" + rel, &vanished);
          if (!head.ok()) {
            if (vanished) continue;  // moved by a mail client; it shows up under its new name
            return head.status().WithContext("maildir '" + root_ + "' folder '" + f.path + "'");
          }
          uint64_t locator = entry_offset_.size();
          entry_offset_.push_back(arena_.size());
          entry_folder_.push_back(fi);
          arena_ += rel;
          arena_ += '\0';
          ExistingMessage em;
          em.folder = f.path;
          em.head = *head;
          em.locator = locator;
          MBX_RETURN_IF_ERROR(fn(em));
        }
      }
    }
    return Status::Ok();
  }

  Result<std::string> ReadExisting(uint64_t locator) override {
    MBX_ASSIGN_OR_RETURN(std::string path, ExistingPath(locator));
    struct stat st;
    bool vanished = false;
    auto data = ReadFileStat(path, &st, &vanished);
    if (!data.ok()) {
      const FolderDir& f = scan_folders_[entry_folder_[locator]];
      return data.status().WithContext("maildir '" + root_ + "' folder '" + f.path + "'");
    }
    return data;
  }

  // Where existing message `locator` is now. A mail client may have moved it
  // (new/ -> cur/) or changed its flags since the scan: then the file with the
  // same unique name (the part before ':') is it.
  Result<std::string> ExistingPath(uint64_t locator) const {
    if (locator >= entry_offset_.size()) {
      return Status::InvalidArgument("maildir '" + root_ + "': no existing message " +
                                     std::to_string(locator));
    }
    const FolderDir& f = scan_folders_[entry_folder_[locator]];
    std::string rel(arena_.c_str() + entry_offset_[locator]);
    std::string path = f.dir + "/" + rel;
    if (fs::Exists(path)) return path;
    size_t colon = rel.find(':');
    std::string unique = rel.substr(4, colon == std::string::npos ? std::string::npos : colon - 4);
    for (const char* sub : {"/cur", "/new"}) {
      auto names = ListFiles(f.dir + sub);
      if (!names.ok()) continue;
      for (const auto& n : *names) {
        if (n.compare(0, unique.size(), unique) == 0 &&
            (n.size() == unique.size() || n[unique.size()] == ':')) {
          return f.dir + sub + "/" + n;
        }
      }
    }
    return Status::NotFound("maildir '" + root_ + "' folder '" + f.path + "': message '" + rel +
                            "' is gone");
  }

  std::string StoredFolderName(std::string_view folder) const override {
    std::string path = NormalizeFolder(folder);
    if (path.empty() || existing_dirs_.count(path)) return path;
    // What ListFolderDirs() reads back from the directory EnsureFolder() makes.
    return FolderForDirName(DirNameForFolder(path));
  }

  // --jobs > 1: writes the message into the root's tmp/ on the worker
  // thread, so that the committer's Stage() only takes the file over. The
  // committer's own time was the limit of a Maildir merge: creating and
  // writing every file one after another, then waiting for each batch's
  // sync while the workers idled. Now the workers write the next batch
  // during that sync. Errors are left to Stage(), which then writes the
  // message itself and names the folder in its error.
  Status Convert(Message* msg) const override {
    if (opts_.allow_hardlinks && !msg->backing_file.empty() && msg->IsMime()) {
      return Status::Ok();  // Stage() will hard-link it
    }
    auto data = msg->Mime();
    if (!data.ok()) return Status::Ok();
    std::string name = UniqueName(data->size());
    std::string path = root_ + "/tmp/" + name;
    if (!WriteNewFile(path, *data).ok()) return Status::Ok();
    MBX_CRASH_POINT("maildir.convert.after-write");
    msg->sink_form = std::make_shared<WrittenAhead>(this, std::move(path), std::move(name));
    return Status::Ok();
  }

  Status Stage(const Message& msg, std::string_view folder) override {
    if (closed_) return Status::InvalidArgument("maildir '" + root_ + "': sink is closed");
    MBX_ASSIGN_OR_RETURN(Folder * f, EnsureFolder(folder));
    auto ahead = dynamic_cast<const WrittenAhead*>(msg.sink_form.get());
    if (ahead != nullptr && f->on_root_device && ahead->Claim(this)) {
      staged_.push_back({f, ahead->name(), ahead->path(), msg.flags, {}});
      return Status::Ok();
    }
    auto context = [&] {
      return "maildir '" + root_ + "' folder '" + f->path + "' message " + msg.origin;
    };
    auto data = msg.Mime();
    if (!data.ok()) return data.status().WithContext(context());
    std::string name = UniqueName(data->size());
    std::string tmp = f->dir + "/tmp/" + name;
    bool linked = false;
    if (opts_.allow_hardlinks && !msg.backing_file.empty() && msg.IsMime()) {
      // EXDEV (other file system), EPERM (protected_hardlinks), ...: copy instead.
      linked = ::link(msg.backing_file.c_str(), tmp.c_str()) == 0;
    }
    if (!linked) {
      Status s = WriteNewFile(tmp, *data);
      if (!s.ok()) return s.WithContext(context());
    }
    staged_.push_back({f, std::move(name), std::move(tmp), msg.flags, {}});
    return Status::Ok();
  }

  Status Flush() override {
    if (staged_.empty()) return Status::Ok();
    MBX_RETURN_IF_ERROR(SyncStagedData());
    MBX_CRASH_POINT("maildir.flush.after-data-sync");
    // --mode replace: journal "new file <TAB> old file" before the new files
    // appear, so that a crash anywhere leaves exactly one of each pair once
    // the next open has finished the journal (FinishReplacements).
    std::string journal;
    for (const auto& s : staged_) {
      if (!s.replaces.empty()) journal += FinalPath(s) + "\t" + s.replaces + "\n";
    }
    if (!journal.empty()) {
      MBX_RETURN_IF_ERROR(fs::AtomicWriteFile(JournalPath(), journal));
      MBX_CRASH_POINT("maildir.flush.after-journal");
    }
    // Rename into place; on any failure undo the renames done so far, so the
    // mailbox is as after the last good Flush() and the staged files stay in tmp/.
    std::vector<std::string> finals;
    finals.reserve(staged_.size());
    std::set<std::string> dirs_to_sync;
    Status failed;
    for (const auto& s : staged_) {
      std::string final_path = FinalPath(s);
      std::string dir = fs::Dirname(final_path);
      if (::rename(s.tmp.c_str(), final_path.c_str()) != 0) {
        failed = Status::FromErrno("rename '" + s.tmp + "' to '" + final_path + "'", errno);
        break;
      }
      finals.push_back(std::move(final_path));
      dirs_to_sync.insert(dir);
      MBX_CRASH_POINT("maildir.flush.after-rename");
    }
    if (failed.ok()) {
      MBX_CRASH_POINT("maildir.flush.after-renames");
      for (const auto& dir : dirs_to_sync) {
        failed = fs::FsyncDir(dir);
        if (!failed.ok()) break;
      }
    }
    if (!failed.ok()) {
      for (size_t i = 0; i < finals.size(); ++i)
        ::rename(finals[i].c_str(), staged_[i].tmp.c_str());
      if (!journal.empty()) ::unlink(JournalPath().c_str());
      return failed.WithContext("maildir '" + root_ + "' flush");
    }
    staged_.clear();
    MBX_CRASH_POINT("maildir.flush.after-dir-sync");
    if (!journal.empty()) return FinishReplacements();
    return Status::Ok();
  }

  Status FinishReplacements() { return internal::FinishReplacementJournal(root_); }

  void Rollback() override {
    for (const auto& s : staged_) ::unlink(s.tmp.c_str());
    staged_.clear();
  }

  Status Close() override {
    if (closed_) return Status::Ok();
    Status s = Flush();
    if (!s.ok()) Rollback();
    lock_.Release();
    closed_ = true;
    return s;
  }

 private:
  struct Folder {
    std::string path;
    std::string dir;
    // Whether a file in the root's tmp/ can be renamed into it (not so for
    // a folder directory that is a symlink to another file system).
    bool on_root_device = true;
  };
  struct Staged {
    Folder* folder;
    std::string name;
    std::string tmp;  // where it is until Flush(): its folder's tmp/ or the root's
    MessageFlags flags;
    std::string replaces;  // --mode replace: the existing file this one takes the place of
  };

  // Creates `path` (which must not exist) holding `data`; removes it on failure.
  static Status WriteNewFile(const std::string& path, std::string_view data) {
    MBX_ASSIGN_OR_RETURN(fs::Fd fd, fs::Open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0600));
    Status s = fs::WriteAll(fd.get(), data, path);
    if (s.ok() && ::close(fd.Release()) != 0) s = Status::FromErrno("close '" + path + "'", errno);
    if (!s.ok()) ::unlink(path.c_str());
    return s;
  }
  static std::string FinalPath(const Staged& s) {
    bool cur = s.flags != 0;
    return s.folder->dir + (cur ? "/cur/" : "/new/") + s.name + (cur ? InfoSuffix(s.flags) : "");
  }
  std::string JournalPath() const { return internal::ReplacementJournalPath(root_); }

  Result<Folder*> EnsureFolder(std::string_view folder) {
    std::string path = NormalizeFolder(folder);
    auto it = folders_.find(path);
    if (it != folders_.end()) return &it->second;
    std::string dir;
    if (path.empty()) {
      dir = root_;
    } else if (auto e = existing_dirs_.find(path); e != existing_dirs_.end()) {
      dir = e->second;
    } else {
      dir = root_ + "/" + DirNameForFolder(path);
    }
    for (const char* sub : {"/tmp", "/new", "/cur"}) {
      Status s = fs::MakeDirs(dir + sub, 0700);
      if (!s.ok()) return s.WithContext("maildir '" + root_ + "' folder '" + path + "'");
    }
    if (!path.empty() && !fs::Exists(dir + "/maildirfolder")) {
      // Maildir++ marks subfolders so that deliver agents know the quota root is "..".
      auto fd = fs::Open(dir + "/maildirfolder", O_WRONLY | O_CREAT, 0600);
      if (!fd.ok()) return fd.status().WithContext("maildir '" + root_ + "' folder '" + path + "'");
      MBX_RETURN_IF_ERROR(fs::FsyncDir(dir));
    }
    struct stat st;
    bool on_root_device = ::stat(dir.c_str(), &st) == 0 && st.st_dev == root_dev_;
    auto [ins, _] = folders_.emplace(path, Folder{path, dir, on_root_device});
    return &ins->second;
  }

  // "<sec>.M<usec>P<pid>Q<n>.<host>,S=<size>": unique per host without any
  // coordination (time, pid and a per-sink counter; we also hold the lock).
  // Thread-safe: Convert() calls it on the workers.
  std::string UniqueName(size_t size) const {
    struct timeval tv;
    ::gettimeofday(&tv, nullptr);
    return std::to_string(tv.tv_sec) + ".M" + std::to_string(tv.tv_usec) + "P" +
           std::to_string(::getpid()) + "Q" + std::to_string(++counter_) + "." + fs::Hostname() +
           ",S=" + std::to_string(size);
  }

  Status SyncStagedData() {
    std::vector<std::string> files;
    files.reserve(staged_.size());
    for (const auto& s : staged_) files.push_back(s.tmp);
    return internal::SyncFiles(files, opts_.batch_sync);
  }

  std::string root_;
  SinkOptions opts_;
  DirLock lock_;
  bool closed_ = false;
  mutable std::atomic<uint64_t> counter_{0};
  dev_t root_dev_ = 0;
  std::map<std::string, std::string> existing_dirs_;  // folder path -> directory at open
  std::map<std::string, Folder> folders_;             // folders written to (stable addresses)
  std::vector<Staged> staged_;

  // ScanExisting() results, compact for a million messages: "new/<name>\0"
  // strings in one arena, located by offset, plus the folder index.
  std::vector<FolderDir> scan_folders_;
  std::string arena_;
  std::vector<uint64_t> entry_offset_;
  std::vector<uint32_t> entry_folder_;
};

}  // namespace

MessageFlags FlagsFromName(std::string_view filename) {
  size_t p = filename.rfind(":2,");
  if (p == std::string_view::npos) return 0;
  MessageFlags flags = 0;
  for (char c : filename.substr(p + 3)) {
    switch (c) {
      case 'P':
        flags |= kFlagForwarded;
        break;
      case 'R':
        flags |= kFlagAnswered;
        break;
      case 'S':
        flags |= kFlagSeen;
        break;
      case 'T':
        flags |= kFlagDeleted;
        break;
      case 'D':
        flags |= kFlagDraft;
        break;
      case 'F':
        flags |= kFlagFlagged;
        break;
      default:
        break;  // lower-case letters are Dovecot keywords; others unknown
    }
  }
  return flags;
}

std::string InfoSuffix(MessageFlags flags) {
  std::string out = ":2,";
  if (flags & kFlagDraft) out += 'D';
  if (flags & kFlagFlagged) out += 'F';
  if (flags & kFlagForwarded) out += 'P';
  if (flags & kFlagAnswered) out += 'R';
  if (flags & kFlagSeen) out += 'S';
  if (flags & kFlagDeleted) out += 'T';
  return out;
}

std::string EncodeModifiedUtf7(std::string_view utf8) {
  std::string out;
  std::vector<uint16_t> run;
  size_t i = 0;
  while (i < utf8.size()) {
    char32_t cp = NextCodePoint(utf8, &i);
    if (cp >= 0x20 && cp <= 0x7E) {
      if (!run.empty()) {
        FlushUtf16Run(run, &out);
        run.clear();
      }
      out += static_cast<char>(cp);
      if (cp == '&') out += '-';
      continue;
    }
    if (cp >= 0x10000) {
      cp -= 0x10000;
      run.push_back(static_cast<uint16_t>(0xD800 | (cp >> 10)));
      run.push_back(static_cast<uint16_t>(0xDC00 | (cp & 0x3FF)));
    } else {
      run.push_back(static_cast<uint16_t>(cp));
    }
  }
  if (!run.empty()) FlushUtf16Run(run, &out);
  return out;
}

std::optional<std::string> DecodeModifiedUtf7(std::string_view s) {
  std::string out;
  size_t i = 0;
  while (i < s.size()) {
    if (s[i] != '&') {
      out += s[i++];
      continue;
    }
    size_t end = s.find('-', i + 1);
    if (end == std::string_view::npos) return std::nullopt;
    if (end == i + 1) {
      out += '&';
      i = end + 1;
      continue;
    }
    uint32_t bits = 0;
    int nbits = 0;
    std::vector<uint16_t> units;
    for (size_t k = i + 1; k < end; ++k) {
      int v = B64Value(s[k]);
      if (v < 0) return std::nullopt;
      bits = (bits << 6) | static_cast<uint32_t>(v);
      nbits += 6;
      if (nbits >= 16) {
        nbits -= 16;
        units.push_back(static_cast<uint16_t>((bits >> nbits) & 0xFFFF));
      }
    }
    if (nbits >= 6 || (bits & ((1u << nbits) - 1)) != 0 || units.empty()) return std::nullopt;
    for (size_t k = 0; k < units.size(); ++k) {
      char32_t cp = units[k];
      if (cp >= 0xD800 && cp <= 0xDBFF && k + 1 < units.size() && units[k + 1] >= 0xDC00 &&
          units[k + 1] <= 0xDFFF) {
        cp = 0x10000 + ((cp - 0xD800) << 10) + (units[++k] - 0xDC00);
      } else if (cp >= 0xD800 && cp <= 0xDFFF) {
        return std::nullopt;
      }
      AppendUtf8(cp, &out);
    }
    i = end + 1;
  }
  return out;
}

std::string DirNameForFolder(std::string_view folder) {
  std::string out;
  for (std::string c : SplitFolder(folder)) {
    std::replace(c.begin(), c.end(), '.', '_');
    // FolderForDirName() reads NUL back as '_': store it so, one name for one folder.
    std::replace(c.begin(), c.end(), '\0', '_');
    out += '.';
    out += EncodeModifiedUtf7(c);
  }
  // Maildir++ flattens the whole path into one directory name, which the file
  // system caps at 255 bytes. A longer one keeps its start (cut outside a
  // "&...-" run) and ends in a hash of the whole, so that it stays distinct.
  constexpr size_t kMaxDirName = 255, kHashLen = 9;  // "~" and 8 hex digits
  if (out.size() > kMaxDirName) {
    uint32_t hash = 2166136261u;  // FNV-1a
    for (unsigned char ch : out) hash = (hash ^ ch) * 16777619u;
    size_t cut = kMaxDirName - kHashLen;
    const size_t amp = out.rfind('&', cut - 1);
    if (amp != std::string::npos && out.find('-', amp) >= cut) cut = amp;
    out.resize(cut);
    char tail[16];
    std::snprintf(tail, sizeof tail, "~%08x", hash);
    out += tail;
  }
  return out;
}

std::string FolderForDirName(std::string_view dirname) {
  if (dirname.size() < 2 || dirname[0] != '.' || dirname == "..") return "";
  std::string out;
  size_t start = 1;
  while (start <= dirname.size()) {
    size_t dot = dirname.find('.', start);
    if (dot == std::string_view::npos) dot = dirname.size();
    std::string_view comp = dirname.substr(start, dot - start);
    start = dot + 1;
    if (comp.empty()) continue;
    auto decoded = DecodeModifiedUtf7(comp);
    std::string c = decoded ? *decoded : std::string(comp);
    // '/' is our separator and NUL is never part of a name.
    std::replace(c.begin(), c.end(), '/', '_');
    std::replace(c.begin(), c.end(), '\0', '_');
    if (!out.empty()) out += '/';
    out += c;
  }
  return out;
}

bool IsMaildir(const std::string& dir) {
  return fs::IsDir(dir + "/cur") && fs::IsDir(dir + "/new") && fs::IsDir(dir + "/tmp");
}

Result<std::unique_ptr<MailboxSource>> OpenSource(const std::string& dir) {
  if (!fs::IsDir(dir)) return Status::NotFound("maildir '" + dir + "' is not a directory");
  if (!HasMessageDirs(dir)) {
    return Status::InvalidArgument("'" + dir + "' is not a Maildir (no cur/ or new/)");
  }
  return std::unique_ptr<MailboxSource>(new MaildirSource(dir));
}

Result<std::unique_ptr<MailboxSink>> OpenSink(const std::string& dir, const SinkOptions& opts) {
  if (!fs::Exists(dir) && !opts.create)
    return Status::NotFound("maildir '" + dir + "' does not exist");
  if (fs::Exists(dir) && !fs::IsDir(dir)) {
    return Status::InvalidArgument("maildir '" + dir + "' exists and is not a directory");
  }
  for (const char* sub : {"/tmp", "/new", "/cur"}) {
    Status s = fs::MakeDirs(dir + sub, 0700);
    if (!s.ok()) return s.WithContext("maildir '" + dir + "'");
  }
  MBX_ASSIGN_OR_RETURN(DirLock lock, DirLock::Acquire(dir));
  auto sink = std::make_unique<MaildirSink>(dir, opts, std::move(lock));
  MBX_RETURN_IF_ERROR(sink->Init());
  return std::unique_ptr<MailboxSink>(std::move(sink));
}

// ---- DirLock ----

DirLock::DirLock(DirLock&& o) noexcept
    : dir_fd_(std::exchange(o.dir_fd_, -1)), dotlock_(std::exchange(o.dotlock_, {})) {}

DirLock& DirLock::operator=(DirLock&& o) noexcept {
  if (this != &o) {
    Release();
    dir_fd_ = std::exchange(o.dir_fd_, -1);
    dotlock_ = std::exchange(o.dotlock_, {});
  }
  return *this;
}

DirLock::~DirLock() { Release(); }

Result<DirLock> DirLock::Acquire(const std::string& dir) {
  DirLock lock;
  MBX_ASSIGN_OR_RETURN(fs::Fd fd, fs::Open(dir, O_RDONLY | O_DIRECTORY));
  // flock() is per open file description, so a second sink in the same
  // process is refused too (fcntl() locks would not do that).
  if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK) {
      return Status::Busy("'" + dir + "' is being written by another mbxmerge run (flock held)");
    }
    return Status::FromErrno("flock '" + dir + "'", errno);
  }
  lock.dir_fd_ = fd.Release();
  std::string dot = dir + "/.mbxmerge.lock";
  for (int attempt = 0; attempt < 2; ++attempt) {
    int dfd = ::open(dot.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (dfd >= 0) {
      std::string pid = std::to_string(::getpid()) + "\n";
      (void)!::write(dfd, pid.data(), pid.size());
      ::close(dfd);
      lock.dotlock_ = dot;
      return lock;
    }
    if (errno != EEXIST) return Status::FromErrno("create lock file '" + dot + "'", errno);
    // We hold the flock, so whoever made the dotlock is gone: it is stale.
    ::unlink(dot.c_str());
  }
  return Status::Busy("'" + dir + "' is locked: cannot replace the stale lock file '" + dot + "'");
}

void DirLock::Release() {
  if (!dotlock_.empty()) {
    ::unlink(dotlock_.c_str());
    dotlock_.clear();
  }
  if (dir_fd_ >= 0) {
    ::close(dir_fd_);  // drops the flock
    dir_fd_ = -1;
  }
}

namespace internal {

std::string ReplacementJournalPath(const std::string& root) { return root + "/.mbxmerge-replace"; }

// An old file goes only if its new file is in place; a pair whose new file
// never appeared keeps the old one.
Status FinishReplacementJournal(const std::string& root) {
  std::string path = ReplacementJournalPath(root);
  if (!fs::IsFile(path)) return Status::Ok();
  MBX_ASSIGN_OR_RETURN(std::string text, fs::ReadFile(path));
  std::set<std::string> dirs;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) nl = text.size();
    std::string_view line(text.data() + pos, nl - pos);
    pos = nl + 1;
    size_t tab = line.find('\t');
    if (tab == std::string_view::npos) continue;
    std::string new_file(line.substr(0, tab)), old_file(line.substr(tab + 1));
    if (!fs::Exists(new_file)) continue;
    if (::unlink(old_file.c_str()) != 0 && errno != ENOENT) {
      return Status::FromErrno("'" + root + "': remove the replaced '" + old_file + "'", errno);
    }
    dirs.insert(fs::Dirname(old_file));
    MBX_CRASH_POINT("maildir.replace.after-unlink");
  }
  for (const auto& d : dirs) MBX_RETURN_IF_ERROR(fs::FsyncDir(d));
  MBX_CRASH_POINT("maildir.replace.before-journal-remove");
  if (::unlink(path.c_str()) != 0) return Status::FromErrno("remove '" + path + "'", errno);
  return fs::FsyncDir(root);
}

}  // namespace internal

}  // namespace mbx::maildir
