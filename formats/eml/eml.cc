// EML tree backend: DIR is the root folder "", DIR/A/B the folder "A/B"; each
// "*.eml" file (any case) is one message. Written names are
// "<NNNNNN>-<subject>.eml", numbered per folder after the highest existing one.
#include "formats/eml/eml.h"

#include <dirent.h>
#include <fcntl.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <map>
#include <optional>
#include <set>
#include <utility>
#include <vector>

#include "engine/faultpoint.h"
#include "engine/fs.h"
#include "formats/maildir/maildir.h"
#include "formats/mime/mime.h"
#include "formats/pst/vcard_ical.h"

namespace mbx::eml {
namespace {

using maildir::internal::SplitFolder;

constexpr size_t kMaxFileName = 120;
// Written folder trees stay well inside what ListTree reads (64 levels) and PATH_MAX.
constexpr size_t kMaxFolderDepth = 32;
constexpr size_t kMaxFolderPathBytes = 2048;
// Hidden, and without the .eml suffix: never read as a message.
constexpr std::string_view kTmpPrefix = ".mbxmerge-tmp.";

bool IsEmlName(std::string_view name) {
  return name.size() > 4 && name[0] != '.' &&
         strncasecmp(name.data() + name.size() - 4, ".eml", 4) == 0;
}

struct DirEntries {
  std::vector<std::string> files;  // *.eml, sorted
  std::vector<std::string> dirs;   // subdirectories (not hidden, not symlinks), sorted
};

Result<DirEntries> ListDir(const std::string& dir) {
  DirEntries out;
  DIR* d = ::opendir(dir.c_str());
  if (!d) {
    if (errno == ENOENT) return out;
    return Status::FromErrno("open directory '" + dir + "'", errno);
  }
  errno = 0;
  while (struct dirent* e = ::readdir(d)) {
    std::string_view name = e->d_name;
    if (name.empty() || name[0] == '.') continue;
    unsigned char type = e->d_type;
    if (type == DT_UNKNOWN) {
      struct stat st;
      if (::lstat((dir + "/" + e->d_name).c_str(), &st) == 0) {
        type = S_ISDIR(st.st_mode)   ? DT_DIR
               : S_ISREG(st.st_mode) ? DT_REG
               : S_ISLNK(st.st_mode) ? DT_LNK
                                     : DT_UNKNOWN;
      }
    }
    // Directory symlinks are not followed (no loops, nothing outside the tree);
    // a symlinked .eml file is read like a file.
    if (type == DT_DIR) {
      out.dirs.emplace_back(name);
    } else if ((type == DT_REG || type == DT_LNK) && IsEmlName(name)) {
      out.files.emplace_back(name);
    }
    errno = 0;
  }
  int err = errno;
  ::closedir(d);
  if (err != 0) return Status::FromErrno("read directory '" + dir + "'", err);
  std::sort(out.files.begin(), out.files.end());
  std::sort(out.dirs.begin(), out.dirs.end());
  return out;
}

struct FolderDir {
  std::string path;  // "" or "A/B"
  std::string dir;
};

// Every non-hidden directory of the tree, parents first, siblings by name.
Status ListTree(const std::string& dir, const std::string& path, std::vector<FolderDir>* out,
                int depth = 0) {
  if (depth > 64) return Status::Unsupported("eml tree deeper than 64 levels at '" + dir + "'");
  out->push_back({path, dir});
  MBX_ASSIGN_OR_RETURN(auto entries, ListDir(dir));
  for (const auto& d : entries.dirs) {
    MBX_RETURN_IF_ERROR(ListTree(dir + "/" + d, path.empty() ? d : path + "/" + d, out, depth + 1));
  }
  return Status::Ok();
}

// ---- name sanitizing ----

// Decodes one UTF-8 code point; invalid sequences give -1 and advance one byte.
int32_t NextCodePoint(std::string_view s, size_t* i) {
  auto b = static_cast<unsigned char>(s[*i]);
  if (b < 0x80) {
    ++*i;
    return b;
  }
  size_t len = b >= 0xF0 && b <= 0xF4 ? 4 : b >= 0xE0 ? 3 : b >= 0xC2 && b < 0xE0 ? 2 : 0;
  if (len == 0 || *i + len > s.size()) {
    ++*i;
    return -1;
  }
  int32_t cp = b & (0xFF >> (len + 1));
  for (size_t k = 1; k < len; ++k) {
    auto c = static_cast<unsigned char>(s[*i + k]);
    if ((c & 0xC0) != 0x80) {
      ++*i;
      return -1;
    }
    cp = (cp << 6) | (c & 0x3F);
  }
  if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
      (cp >= 0xD800 && cp <= 0xDFFF)) {
    ++*i;
    return -1;
  }
  *i += len;
  return cp;
}

// Characters that reorder or hide text (bidi overrides disguise extensions).
bool IsInvisibleFormat(int32_t cp) {
  return cp == 0x200B || cp == 0x200E || cp == 0x200F || (cp >= 0x202A && cp <= 0x202E) ||
         (cp >= 0x2066 && cp <= 0x2069) || cp == 0xFEFF || cp == 0x2028 || cp == 0x2029;
}

bool IsWindowsReserved(std::string_view name) {
  std::string base(name.substr(0, name.find('.')));
  while (!base.empty() && base.back() == ' ') base.pop_back();
  for (auto& c : base) c = static_cast<char>(toupper(static_cast<unsigned char>(c)));
  static const std::set<std::string> kReserved = {"CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"};
  if (kReserved.count(base)) return true;
  if (base.size() >= 4 && (base.compare(0, 3, "COM") == 0 || base.compare(0, 3, "LPT") == 0)) {
    std::string_view tail = std::string_view(base).substr(3);
    // Windows also reserves the superscript digits ¹ ² ³.
    return (tail.size() == 1 && tail[0] >= '1' && tail[0] <= '9') || tail == "\xC2\xB9" ||
           tail == "\xC2\xB2" || tail == "\xC2\xB3";
  }
  return false;
}

void TrimTrailingDotsAndSpaces(std::string* s) {
  while (!s->empty() && (s->back() == '.' || s->back() == ' ')) s->pop_back();
}

// Cuts `s` to at most `max` bytes without splitting a UTF-8 sequence.
void TruncateUtf8(std::string* s, size_t max) {
  if (s->size() <= max) return;
  size_t n = max;
  while (n > 0 && (static_cast<unsigned char>((*s)[n]) & 0xC0) == 0x80) --n;
  s->resize(n);
}

std::string Sanitize(std::string_view name, size_t max_bytes, bool check_reserved) {
  max_bytes = std::max<size_t>(max_bytes, 8);
  std::string out;
  out.reserve(std::min(name.size(), max_bytes + 8));
  size_t i = 0;
  // Stops a little past the limit: a 10 MB subject costs no more than a short one.
  while (i < name.size() && out.size() <= max_bytes + 4) {
    size_t start = i;
    int32_t cp = NextCodePoint(name, &i);
    if (cp < 0) {
      out += '_';  // invalid UTF-8
    } else if (cp == ' ' || cp == '\t' || cp == '\n' || cp == '\r') {
      if (!out.empty() && out.back() != ' ') out += ' ';  // no leading space, no runs
    } else if (cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp <= 0x9F)) {
      out += '_';  // NUL and other control characters
    } else if (cp < 0x80 && std::string_view("/\\:*?\"<>|").find(static_cast<char>(cp)) !=
                                std::string_view::npos) {
      out += '_';  // the separator and characters Windows forbids
    } else if (!IsInvisibleFormat(cp)) {
      out.append(name.substr(start, i - start));
    }
  }
  if (!out.empty() && out[0] == '.') out[0] = '_';  // hidden files, "." and ".."
  TruncateUtf8(&out, max_bytes);
  TrimTrailingDotsAndSpaces(&out);
  if (check_reserved && IsWindowsReserved(out)) {
    out.insert(0, "_");
    TruncateUtf8(&out, max_bytes);
    TrimTrailingDotsAndSpaces(&out);
  }
  if (out.empty()) out = "_";
  return out;
}

// The leading number of "000123-subject.eml", or 0.
uint64_t NumberOf(std::string_view name) {
  uint64_t n = 0;
  size_t i = 0;
  for (; i < name.size() && i < 18 && name[i] >= '0' && name[i] <= '9'; ++i)
    n = n * 10 + (name[i] - '0');
  return i > 0 && i < name.size() && name[i] == '-' ? n : 0;
}

// ---- source ----

class EmlSource : public MailboxSource {
 public:
  explicit EmlSource(std::string root) : root_(std::move(root)) {}

  std::string Describe() const override { return "eml:" + root_; }

  // Archive mode unlinks each message's own file (Message::backing_file).
  bool CanRemoveMessages() const override { return true; }

  Result<std::vector<FolderInfo>> ListFolders() override {
    std::vector<FolderDir> dirs;
    MBX_RETURN_IF_ERROR(ListTree(root_, "", &dirs));
    std::vector<FolderInfo> out;
    for (const auto& f : dirs) {
      FolderInfo info;
      info.path = f.path;
      MBX_ASSIGN_OR_RETURN(auto entries, ListDir(f.dir));
      for (const auto& n : entries.files) {
        ++info.messages;
        struct stat st;
        if (::stat((f.dir + "/" + n).c_str(), &st) == 0)
          info.bytes += static_cast<uint64_t>(st.st_size);
      }
      out.push_back(std::move(info));
    }
    return out;
  }

  Result<bool> Next(Message* out) override {
    if (!listed_) {
      MBX_RETURN_IF_ERROR(ListTree(root_, "", &folders_));
      listed_ = true;
    }
    while (folder_ < folders_.size()) {
      const FolderDir& f = folders_[folder_];
      if (!files_loaded_) {
        files_.clear();
        file_ = 0;
        if (WantFolder(f.path)) {
          MBX_ASSIGN_OR_RETURN(auto entries, ListDir(f.dir));
          files_ = std::move(entries.files);
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
  void Read(const FolderDir& f, const std::string& name, Message* out) {
    *out = Message();
    std::string path = f.dir + "/" + name;
    out->folder = f.path;
    out->origin = "eml '" + root_ + "' folder '" + f.path + "' file '" + name + "'";
    UnixTime mtime = 0;
    bool vanished = false;
    auto data = maildir::internal::ReadMessageFile(path, &mtime, &vanished);
    if (!data.ok()) {
      out->read_error = vanished ? Status::NotFound(out->origin +
                                                    ": the file vanished between listing and "
                                                    "reading (moved or deleted by another program)")
                                 : data.status().WithContext(out->origin);
      return;
    }
    out->mime = std::move(data).value();
    // EML files carry no delivery time; the mtime is usually the export time.
    out->container_modified = mtime;
    out->backing_file = path;
  }

  std::string root_;
  bool listed_ = false;
  std::vector<FolderDir> folders_;
  size_t folder_ = 0;
  bool files_loaded_ = false;
  std::vector<std::string> files_;
  size_t file_ = 0;
};

// ---- sink ----

class EmlSink : public MailboxSink {
 public:
  EmlSink(std::string root, const SinkOptions& opts, maildir::DirLock lock)
      : root_(std::move(root)), opts_(opts), lock_(std::move(lock)) {}

  ~EmlSink() override {
    if (!closed_) {
      Rollback();
      lock_.Release();
    }
  }

  std::string Describe() const override { return "eml:" + root_; }

  Status ScanExisting(const std::function<Status(const ExistingMessage&)>& fn) override {
    std::vector<FolderDir> dirs;
    MBX_RETURN_IF_ERROR(ListTree(root_, "", &dirs));
    arena_.clear();
    entry_offset_.clear();
    for (const auto& f : dirs) {
      MBX_ASSIGN_OR_RETURN(auto entries, ListDir(f.dir));
      for (const auto& n : entries.files) {
        std::string rel = f.path.empty() ? n : f.path + "/" + n;
        bool vanished = false;
        auto head = maildir::internal::ReadHead(root_ + "/" + rel, &vanished);
        if (!head.ok()) {
          if (vanished) continue;
          return head.status().WithContext("eml '" + root_ + "' folder '" + f.path + "'");
        }
        ExistingMessage em;
        em.folder = f.path;
        em.head = *head;
        em.locator = entry_offset_.size();
        entry_offset_.push_back(arena_.size());
        arena_ += rel;
        arena_ += '\0';
        MBX_RETURN_IF_ERROR(fn(em));
      }
    }
    return Status::Ok();
  }

  Result<std::string> ReadExisting(uint64_t locator) override {
    if (locator >= entry_offset_.size()) {
      return Status::InvalidArgument("eml '" + root_ + "': no existing message " +
                                     std::to_string(locator));
    }
    UnixTime mtime;
    bool vanished;
    return maildir::internal::ReadMessageFile(ExistingPath(locator), &mtime, &vanished);
  }

  std::string ExistingPath(uint64_t locator) const {
    return root_ + "/" + (arena_.c_str() + entry_offset_[locator]);
  }

  bool CanReplace() const override { return true; }

  // The new .eml takes the old one's place (and its .ics/.vcf, if any):
  // journaled like Maildir's (maildir::internal::FinishReplacementJournal).
  Status StageReplacing(const Message& msg, std::string_view folder, uint64_t existing) override {
    if (existing >= entry_offset_.size())
      return Status::InvalidArgument("eml '" + root_ + "': no existing message " +
                                     std::to_string(existing));
    size_t at = staged_.size();
    MBX_RETURN_IF_ERROR(Stage(msg, folder));
    staged_[at].replaces = ExistingPath(existing);
    return Status::Ok();
  }

  UnixTime ExistingModified(uint64_t existing) override {
    struct stat st;
    if (existing >= entry_offset_.size() || ::stat(ExistingPath(existing).c_str(), &st) != 0)
      return 0;
    return st.st_mtim.tv_sec;
  }

  std::string StoredFolderName(std::string_view folder) const override {
    return SafeFolderPath(folder);
  }

  Status Stage(const Message& msg, std::string_view folder) override {
    if (closed_) return Status::InvalidArgument("eml '" + root_ + "': sink is closed");
    MBX_ASSIGN_OR_RETURN(Folder * f, EnsureFolder(folder));
    auto context = [&] {
      return "eml '" + root_ + "' folder '" + f->path + "' message " + msg.origin;
    };
    auto data = msg.Mime();
    if (!data.ok()) return data.status().WithContext(context());

    char num[24];
    std::snprintf(num, sizeof num, "%06llu-", static_cast<unsigned long long>(f->next));
    std::string subject;
    if (auto raw = mime::FindField(mime::HeaderBlock(*data), "Subject"))
      subject = mime::DecodeHeader(*raw);
    std::string name = num;
    size_t budget = kMaxFileName - name.size() - 4;
    name += subject.empty() ? "untitled" : Sanitize(subject, budget, false);
    name += ".eml";

    std::string tmp = f->dir + "/" + std::string(kTmpPrefix) + std::to_string(::getpid()) + "." +
                      std::to_string(++counter_);
    bool linked = false;
    if (opts_.allow_hardlinks && !msg.backing_file.empty() && msg.IsMime()) {
      linked = ::link(msg.backing_file.c_str(), tmp.c_str()) == 0;  // else copy (EXDEV, ...)
    }
    if (!linked) {
      auto fd = fs::Open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0644);
      if (!fd.ok()) return fd.status().WithContext(context());
      Status s = fs::WriteAll(fd->get(), *data, tmp);
      if (s.ok() && ::close(fd->Release()) != 0)
        s = Status::FromErrno("close '" + tmp + "'", errno);
      if (!s.ok()) {
        ::unlink(tmp.c_str());
        return s.WithContext(context());
      }
    }
    // A vCard/iCalendar part we rendered (pst/vcard_ical.h) also goes beside
    // the message as NAME.vcf/.ics: staged, synced and renamed with the .eml.
    std::optional<pst::PimFile> pim = pst::FindPimPart(*data);
    std::string pim_tmp;
    if (pim) {
      pim_tmp = f->dir + "/" + std::string(kTmpPrefix) + std::to_string(::getpid()) + "." +
                std::to_string(++counter_);
      Status s;
      if (auto fd = fs::Open(pim_tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0644); !fd.ok()) {
        s = fd.status();
      } else {
        s = fs::WriteAll(fd->get(), pim->data, pim_tmp);
        if (s.ok() && ::close(fd->Release()) != 0)
          s = Status::FromErrno("close '" + pim_tmp + "'", errno);
        if (!s.ok()) ::unlink(pim_tmp.c_str());
      }
      if (!s.ok()) {
        ::unlink(tmp.c_str());
        return s.WithContext(context());
      }
    }
    ++f->next;
    std::string base = f->dir + "/" + name.substr(0, name.size() - 4);
    staged_.push_back({f, std::move(tmp), base + ".eml"});
    if (pim) staged_.push_back({f, std::move(pim_tmp), base + "." + pim->extension});
    return Status::Ok();
  }

  Status Flush() override {
    if (staged_.empty()) return Status::Ok();
    std::vector<std::string> tmps;
    for (const auto& s : staged_) tmps.push_back(s.tmp);
    MBX_RETURN_IF_ERROR(maildir::internal::SyncFiles(tmps, opts_.batch_sync));
    // --mode replace: "new <TAB> old" before the new files appear.
    std::string journal;
    for (const auto& s : staged_) {
      if (s.replaces.empty()) continue;
      journal += s.final_path + "\t" + s.replaces + "\n";
      std::string old_base = s.replaces.substr(0, s.replaces.size() - 4);  // without ".eml"
      for (const char* ext : {".ics", ".vcf"}) {
        if (fs::Exists(old_base + ext)) journal += s.final_path + "\t" + old_base + ext + "\n";
      }
    }
    if (!journal.empty())
      MBX_RETURN_IF_ERROR(
          fs::AtomicWriteFile(maildir::internal::ReplacementJournalPath(root_), journal));
    MBX_CRASH_POINT("eml.flush.after-data-sync");
    size_t done = 0;
    std::set<std::string> dirs;
    Status failed;
    for (; done < staged_.size(); ++done) {
      const auto& s = staged_[done];
      // We hold the lock and number past the highest existing file, so a
      // clash means another program wrote here: never replace its file.
      if (fs::Exists(s.final_path)) {
        failed =
            Status::IOError("'" + s.final_path + "' appeared while writing (another program?)");
        break;
      }
      if (::rename(s.tmp.c_str(), s.final_path.c_str()) != 0) {
        failed = Status::FromErrno("rename '" + s.tmp + "' to '" + s.final_path + "'", errno);
        break;
      }
      dirs.insert(s.folder->dir);
      MBX_CRASH_POINT("eml.flush.after-rename");
    }
    if (failed.ok()) {
      MBX_CRASH_POINT("eml.flush.after-renames");
      for (const auto& d : dirs) {
        failed = fs::FsyncDir(d);
        if (!failed.ok()) break;
      }
    }
    if (!failed.ok()) {
      // Back to the state of the last good Flush(); the staged files stay for Rollback().
      for (size_t i = 0; i < done; ++i)
        ::rename(staged_[i].final_path.c_str(), staged_[i].tmp.c_str());
      if (!journal.empty()) ::unlink(maildir::internal::ReplacementJournalPath(root_).c_str());
      return failed.WithContext("eml '" + root_ + "' flush");
    }
    for (auto& [_, f] : folders_) f.committed = f.next;
    staged_.clear();
    if (!journal.empty()) return maildir::internal::FinishReplacementJournal(root_);
    return Status::Ok();
  }

  void Rollback() override {
    for (const auto& s : staged_) ::unlink(s.tmp.c_str());
    for (auto& [_, f] : folders_) f.next = f.committed;
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
    uint64_t next = 1;       // number of the next staged file
    uint64_t committed = 1;  // `next` as of the last Flush()
  };
  struct Staged {
    Folder* folder;
    std::string tmp;
    std::string final_path;
    std::string replaces = {};  // --mode replace: the existing .eml this one takes the place of
  };

  // The folder path `folder` is stored under: safe directory names, the tree
  // cut to what the reader (ListTree) walks and to PATH_MAX.
  static std::string SafeFolderPath(std::string_view folder) {
    std::string path;
    const auto comps = SplitFolder(folder);
    for (size_t i = 0; i < comps.size(); ++i) {
      std::string c = comps[i];
      // Deeper than the reader goes, or a path near PATH_MAX: the rest of the
      // path becomes one last directory name.
      if (i + 1 < comps.size() && (i + 1 == kMaxFolderDepth || path.size() > kMaxFolderPathBytes)) {
        for (size_t k = i + 1; k < comps.size(); ++k) c += "_" + comps[k];
        i = comps.size();
      }
      path += (path.empty() ? "" : "/") + SanitizeComponent(c);
    }
    return path;
  }

  Result<Folder*> EnsureFolder(std::string_view folder) {
    const std::string path = SafeFolderPath(folder);
    const std::string dir = path.empty() ? root_ : root_ + "/" + path;
    auto it = folders_.find(path);
    if (it != folders_.end()) return &it->second;
    Status s = fs::MakeDirs(dir);
    if (!s.ok()) return s.WithContext("eml '" + root_ + "' folder '" + path + "'");
    RemoveLeftoverTemps(dir);
    MBX_ASSIGN_OR_RETURN(auto entries, ListDir(dir));
    uint64_t max = 0;
    for (const auto& n : entries.files) max = std::max(max, NumberOf(n));
    auto [ins, _] = folders_.emplace(path, Folder{path, dir, max + 1, max + 1});
    return &ins->second;
  }

  // Temp files of a crashed run (we hold the lock, so no live run owns them).
  static void RemoveLeftoverTemps(const std::string& dir) {
    DIR* d = ::opendir(dir.c_str());
    if (!d) return;
    std::vector<std::string> stale;
    while (struct dirent* e = ::readdir(d)) {
      if (std::string_view(e->d_name).starts_with(kTmpPrefix)) stale.emplace_back(e->d_name);
    }
    ::closedir(d);
    for (const auto& n : stale) ::unlink((dir + "/" + n).c_str());
  }

  std::string root_;
  SinkOptions opts_;
  maildir::DirLock lock_;
  bool closed_ = false;
  uint64_t counter_ = 0;
  std::map<std::string, Folder> folders_;  // stable addresses
  std::vector<Staged> staged_;

  // ScanExisting(): root-relative paths, NUL-terminated in one arena.
  std::string arena_;
  std::vector<uint64_t> entry_offset_;
};

}  // namespace

std::string SanitizeComponent(std::string_view name, size_t max_bytes) {
  return Sanitize(name, max_bytes, true);
}

Result<std::unique_ptr<MailboxSource>> OpenSource(const std::string& dir) {
  if (!fs::IsDir(dir)) return Status::NotFound("eml tree '" + dir + "' is not a directory");
  return std::unique_ptr<MailboxSource>(new EmlSource(dir));
}

Result<std::unique_ptr<MailboxSink>> OpenSink(const std::string& dir, const SinkOptions& opts) {
  if (!fs::Exists(dir) && !opts.create)
    return Status::NotFound("eml tree '" + dir + "' does not exist");
  if (fs::Exists(dir) && !fs::IsDir(dir)) {
    return Status::InvalidArgument("eml tree '" + dir + "' exists and is not a directory");
  }
  Status s = fs::MakeDirs(dir);
  if (!s.ok()) return s.WithContext("eml tree '" + dir + "'");
  MBX_ASSIGN_OR_RETURN(maildir::DirLock lock, maildir::DirLock::Acquire(dir));
  // A replacement a killed run left half done.
  MBX_RETURN_IF_ERROR(maildir::internal::FinishReplacementJournal(dir));
  return std::unique_ptr<MailboxSink>(new EmlSink(dir, opts, std::move(lock)));
}

}  // namespace mbx::eml
