// mboxdir: a directory of mbox files, one per folder (readpst's layouts).
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <map>
#include <system_error>

#include "engine/fs.h"
#include "formats/mbox/mbox.h"

namespace mbx::mbox {
namespace {

namespace stdfs = std::filesystem;

constexpr std::string_view kSuffix = ".mbox";
constexpr int kMaxDepth = 64;

std::vector<std::string_view> SplitFolder(std::string_view folder) {
  std::vector<std::string_view> out;
  size_t pos = 0;
  while (pos <= folder.size()) {
    size_t slash = folder.find('/', pos);
    if (slash == std::string_view::npos) slash = folder.size();
    if (slash > pos) out.push_back(folder.substr(pos, slash - pos));
    pos = slash + 1;
  }
  return out;
}

// "A//B/" -> "A/B": empty components have no file name.
std::string NormalizeFolder(std::string_view folder) {
  std::string out;
  for (std::string_view c : SplitFolder(folder)) {
    if (!out.empty()) out += '/';
    out.append(c);
  }
  return out;
}

// Parents before children, root first: compare component by component.
bool FolderLess(const std::string& a, const std::string& b) {
  auto ca = SplitFolder(a), cb = SplitFolder(b);
  return std::lexicographical_compare(ca.begin(), ca.end(), cb.begin(), cb.end());
}

std::string JoinFolder(std::string_view parent, std::string_view child) {
  if (parent.empty()) return std::string(child);
  return std::string(parent) + "/" + std::string(child);
}

using FolderFiles = std::map<std::string, std::vector<std::string>>;

// Collects the mbox files below `dir` by folder. Other files are not mail.
Status Walk(const std::string& dir, const std::string& folder, int depth, FolderFiles* out) {
  if (depth > kMaxDepth)
    return Status::Unsupported("mboxdir '" + dir + "': folders nested too deep");
  std::error_code ec;
  stdfs::directory_iterator it(dir, ec);
  if (ec) return Status::IOError("mboxdir: cannot list '" + dir + "': " + ec.message());
  std::vector<std::string> names;
  for (; it != stdfs::directory_iterator(); it.increment(ec)) {
    if (ec) return Status::IOError("mboxdir: cannot list '" + dir + "': " + ec.message());
    names.push_back(it->path().filename().string());
  }
  std::sort(names.begin(), names.end());
  for (const std::string& name : names) {
    std::string path = fs::Join(dir, name);
    std::error_code sec;
    auto st = stdfs::symlink_status(path, sec);
    if (sec) continue;
    if (stdfs::is_directory(st)) {
      MBX_RETURN_IF_ERROR(Walk(path, JoinFolder(folder, UnescapeComponent(name)), depth + 1, out));
    } else if (stdfs::is_regular_file(stdfs::status(path, sec)) && !sec) {
      if (name == "mbox") {
        (*out)[NormalizeFolder(folder)].push_back(path);
      } else if (name.size() > kSuffix.size() && name.ends_with(kSuffix)) {
        std::string base = UnescapeComponent(name.substr(0, name.size() - kSuffix.size()));
        (*out)[NormalizeFolder(JoinFolder(folder, base))].push_back(path);
      }
    }
  }
  return Status::Ok();
}

// The folder Walk() reads back from the file FolderToFile() names.
std::string FolderOfFile(std::string_view rel) {
  const auto comps = SplitFolder(rel);
  std::string folder;
  for (size_t i = 0; i < comps.size(); ++i) {
    std::string_view c = comps[i];
    if (i + 1 == comps.size()) {
      if (c == "mbox") break;
      if (c.ends_with(kSuffix)) c.remove_suffix(kSuffix.size());
    }
    folder = JoinFolder(folder, UnescapeComponent(c));
  }
  return NormalizeFolder(folder);
}

Result<FolderFiles> Scan(const std::string& dir) {
  FolderFiles files;
  MBX_RETURN_IF_ERROR(Walk(dir, "", 0, &files));
  for (auto& [folder, list] : files) std::sort(list.begin(), list.end());
  return files;
}

class MboxDirSource : public MailboxSource {
 public:
  MboxDirSource(std::string dir, FolderFiles files) : dir_(std::move(dir)) {
    // The tree is complete: ancestors (and the root) are listed even without a file.
    std::vector<std::string> names = {""};
    for (const auto& [folder, list] : files) {
      std::string prefix;
      for (std::string_view c : SplitFolder(folder)) {
        prefix = JoinFolder(prefix, c);
        names.push_back(prefix);
      }
    }
    std::sort(names.begin(), names.end(), FolderLess);
    names.erase(std::unique(names.begin(), names.end()), names.end());
    for (auto& n : names) {
      auto it = files.find(n);
      folders_.push_back({n, it == files.end() ? std::vector<std::string>{} : it->second});
    }
  }

  std::string Describe() const override { return "mboxdir:" + dir_; }

  Result<std::vector<FolderInfo>> ListFolders() override {
    std::vector<FolderInfo> out;
    for (const auto& f : folders_) {
      FolderInfo fi{f.path, 0, 0};
      for (const auto& file : f.files) {
        auto src = OpenSource(file, f.path);
        if (!src.ok()) continue;  // Next() reports it as an unreadable message
        auto info = (*src)->ListFolders();
        if (!info.ok() || info->empty()) continue;
        fi.messages += (*info)[0].messages;
        fi.bytes += (*info)[0].bytes;
      }
      out.push_back(std::move(fi));
    }
    return out;
  }

  bool CanRemoveMessages() const override { return true; }
  void WillRemoveMessages() override { will_remove_ = true; }

  // Archive mode: each file rewrites itself without its removed messages.
  Status RemoveMessages(const std::vector<uint64_t>& tokens,
                        const std::function<void(uint64_t, std::string)>& kept) override {
    if (cur_) {
      read_.push_back(std::move(cur_));
      ++file_;
    }
    std::map<size_t, std::vector<uint64_t>> by_file;
    for (uint64_t t : tokens)
      by_file[static_cast<size_t>(t >> kOffsetBits)].push_back(t & kOffsetMask);
    Status first_error;
    for (auto& [file, offsets] : by_file) {
      auto unmasked = [&, f = file](uint64_t offset, std::string why) {
        kept((static_cast<uint64_t>(f) << kOffsetBits) | offset, std::move(why));
      };
      Status s = file < read_.size() ? read_[file]->RemoveMessages(offsets, unmasked)
                                     : Status::InvalidArgument("mboxdir '" + dir_ + "': no file " +
                                                               std::to_string(file) + " was read");
      if (!s.ok()) {
        // That file is left as it was; its messages are reported as kept.
        for (uint64_t o : offsets) unmasked(o, s.ToString());
        if (first_error.ok()) first_error = s;
      }
    }
    (void)first_error;  // reported per message above
    return Status::Ok();
  }

  Result<bool> Next(Message* out) override {
    for (;;) {
      if (cur_) {
        MBX_ASSIGN_OR_RETURN(bool more, cur_->Next(out));
        if (more) {
          out->source_token =
              (static_cast<uint64_t>(read_.size()) << kOffsetBits) | out->source_token;
          return true;
        }
        // Kept (its mapping released) for RemoveMessages().
        read_.push_back(std::move(cur_));
        ++file_;
      }
      if (folder_ >= folders_.size()) return false;
      const Folder& f = folders_[folder_];
      if (file_ >= f.files.size() || !WantFolder(f.path)) {
        ++folder_;
        file_ = 0;
        continue;
      }
      auto src = OpenSource(f.files[file_], f.path);
      if (!src.ok()) {
        *out = Message{};
        out->folder = f.path;
        out->origin = "mboxdir '" + dir_ + "' file '" + f.files[file_] + "'";
        out->read_error = src.status();
        ++file_;
        return true;
      }
      cur_ = std::move(src).value();
      if (will_remove_) cur_->WillRemoveMessages();
    }
  }

 private:
  struct Folder {
    std::string path;
    std::vector<std::string> files;
  };
  std::string dir_;
  std::vector<Folder> folders_;
  size_t folder_ = 0, file_ = 0;
  std::unique_ptr<MailboxSource> cur_;
  bool will_remove_ = false;
  // Tokens are (index in read_ << 40) | offset in that file: 1 TiB per file.
  static constexpr unsigned kOffsetBits = 40;
  static constexpr uint64_t kOffsetMask = (uint64_t{1} << kOffsetBits) - 1;
  std::vector<std::unique_ptr<MailboxSource>> read_;  // files read, in order
};

class MboxDirSink : public MailboxSink {
 public:
  MboxDirSink(std::string dir, SinkOptions opts, FolderFiles existing)
      : dir_(std::move(dir)), opts_(opts), existing_(std::move(existing)) {}

  std::string Describe() const override { return "mboxdir:" + dir_; }

  Status ScanExisting(const std::function<Status(const ExistingMessage&)>& fn) override {
    std::vector<std::string> folders;
    for (const auto& [folder, files] : existing_) folders.push_back(folder);
    std::sort(folders.begin(), folders.end(), FolderLess);
    for (const std::string& folder : folders) {
      MBX_ASSIGN_OR_RETURN(size_t idx, SinkFor(folder));
      const Entry& e = *sinks_[idx];
      MBX_RETURN_IF_ERROR(e.sink->ScanExisting([&](const ExistingMessage& m) {
        ExistingMessage copy = m;
        copy.folder = e.folder;
        copy.locator = (static_cast<uint64_t>(idx) << kLocalBits) | m.locator;
        return fn(copy);
      }));
    }
    return Status::Ok();
  }

  Result<std::string> ReadExisting(uint64_t locator) override {
    uint64_t idx = locator >> kLocalBits;
    if (idx >= sinks_.size()) {
      return Status::InvalidArgument("mboxdir '" + dir_ + "': no existing message " +
                                     std::to_string(locator));
    }
    return sinks_[idx]->sink->ReadExisting(locator & ((uint64_t{1} << kLocalBits) - 1));
  }

  std::string StoredFolderName(std::string_view folder) const override {
    std::string path = NormalizeFolder(folder);
    if (existing_.count(path)) return path;
    return FolderOfFile(FolderToFile(path));
  }

  Status Stage(const Message& msg, std::string_view folder) override {
    if (closed_) return Status::InvalidArgument("mboxdir '" + dir_ + "': sink is closed");
    MBX_ASSIGN_OR_RETURN(size_t idx, SinkFor(NormalizeFolder(folder)));
    return sinks_[idx]->sink->Stage(msg, "");
  }

  // All files or none: each is written and fsynced, and only when every one
  // succeeded do they all count as flushed.
  Status Flush() override {
    for (auto& e : sinks_) {
      Status s = e->sink->Prepare();
      if (!s.ok()) {
        Rollback();
        return s;
      }
    }
    for (auto& e : sinks_) e->sink->Commit();
    return Status::Ok();
  }

  void Rollback() override {
    for (auto& e : sinks_) e->sink->Rollback();
  }

  Status Close() override {
    if (closed_) return Status::Ok();
    Status s = Flush();
    for (auto& e : sinks_) {
      Status c = e->sink->Close();
      if (s.ok()) s = c;
    }
    closed_ = true;
    return s;
  }

 private:
  static constexpr int kLocalBits = 40;

  struct Entry {
    std::string folder;
    std::unique_ptr<FileSink> sink;
  };

  Result<size_t> SinkFor(const std::string& folder) {
    auto it = index_.find(folder);
    if (it != index_.end()) return it->second;
    std::string path;
    auto ex = existing_.find(folder);
    if (ex != existing_.end() && !ex->second.empty()) {
      path = ex->second.front();
    } else {
      path = fs::Join(dir_, FolderToFile(folder));
    }
    auto sink = OpenFileSink(path, opts_);
    if (!sink.ok())
      return sink.status().WithContext("mboxdir '" + dir_ + "' folder '" + folder + "'");
    sinks_.push_back(std::make_unique<Entry>(Entry{folder, std::move(sink).value()}));
    index_[folder] = sinks_.size() - 1;
    return sinks_.size() - 1;
  }

  std::string dir_;
  SinkOptions opts_;
  FolderFiles existing_;
  std::vector<std::unique_ptr<Entry>> sinks_;
  std::map<std::string, size_t> index_;
  bool closed_ = false;
};

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

// NAME_MAX is 255 bytes and the sink adds ".mbox.lock.<pid>.tmp": a longer
// escaped name keeps its start (not cutting a %XX escape or a UTF-8 sequence)
// and ends in a hash of the whole, so that it stays distinct.
std::string LimitName(std::string name) {
  constexpr size_t kMaxName = 200, kHashLen = 9;  // "~" and 8 hex digits
  if (name.size() <= kMaxName) return name;
  uint32_t hash = 2166136261u;  // FNV-1a
  for (unsigned char ch : name) hash = (hash ^ ch) * 16777619u;
  size_t cut = kMaxName - kHashLen;
  if (name[cut - 1] == '%')
    cut -= 1;
  else if (name[cut - 2] == '%')
    cut -= 2;
  while (cut > 0 && (static_cast<unsigned char>(name[cut]) & 0xC0) == 0x80) --cut;
  name.resize(cut);
  char tail[16];
  std::snprintf(tail, sizeof tail, "~%08x", hash);
  return name + tail;
}

}  // namespace

std::string EscapeComponent(std::string_view component) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (size_t i = 0; i < component.size(); ++i) {
    auto b = static_cast<unsigned char>(component[i]);
    if (b == '%' || b == '/' || b < 0x20 || b == 0x7f || (i == 0 && b == '.')) {
      out += '%';
      out += kHex[b >> 4];
      out += kHex[b & 15];
    } else {
      out += static_cast<char>(b);
    }
  }
  return out;
}

std::string UnescapeComponent(std::string_view name) {
  std::string out;
  for (size_t i = 0; i < name.size(); ++i) {
    if (name[i] == '%' && i + 2 < name.size() && HexValue(name[i + 1]) >= 0 &&
        HexValue(name[i + 2]) >= 0) {
      out += static_cast<char>(HexValue(name[i + 1]) * 16 + HexValue(name[i + 2]));
      i += 2;
    } else {
      out += name[i];
    }
  }
  return out;
}

std::string FolderToFile(std::string_view folder) {
  auto comps = SplitFolder(folder);
  if (comps.empty()) return "mbox";
  // Written trees stay inside what Walk() reads and PATH_MAX: past that depth
  // or length the rest of the path becomes one last name.
  constexpr size_t kMaxWriteDepth = 32, kMaxPathBytes = 2048;
  std::string out;
  for (size_t i = 0; i < comps.size(); ++i) {
    std::string c(comps[i]);
    if (i + 1 < comps.size() && (i + 1 == kMaxWriteDepth || out.size() > kMaxPathBytes)) {
      for (size_t k = i + 1; k < comps.size(); ++k) c += "_" + std::string(comps[k]);
      i = comps.size();
    }
    if (!out.empty()) out += '/';
    out += LimitName(EscapeComponent(c));
  }
  return out + std::string(kSuffix);
}

Result<std::unique_ptr<MailboxSource>> OpenDirSource(const std::string& dir) {
  if (!fs::IsDir(dir)) return Status::NotFound("mboxdir '" + dir + "' is not a directory");
  MBX_ASSIGN_OR_RETURN(FolderFiles files, Scan(dir));
  return std::unique_ptr<MailboxSource>(std::make_unique<MboxDirSource>(dir, std::move(files)));
}

Result<std::unique_ptr<MailboxSink>> OpenDirSink(const std::string& dir, const SinkOptions& opts) {
  if (!fs::IsDir(dir)) {
    if (fs::Exists(dir)) return Status::InvalidArgument("mboxdir '" + dir + "' is not a directory");
    if (!opts.create) return Status::NotFound("mboxdir '" + dir + "' does not exist");
    MBX_RETURN_IF_ERROR(fs::MakeDirs(dir));
  }
  MBX_ASSIGN_OR_RETURN(FolderFiles files, Scan(dir));
  return std::unique_ptr<MailboxSink>(std::make_unique<MboxDirSink>(dir, opts, std::move(files)));
}

}  // namespace mbx::mbox
