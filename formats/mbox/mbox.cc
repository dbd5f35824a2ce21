// mbox (mboxrd) source and sink.
#include "formats/mbox/mbox.h"

#include <fcntl.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <thread>
#include <utility>

#include "engine/faultpoint.h"
#include "engine/fs.h"
#include "formats/mbox/find.h"
#include "formats/mime/mime.h"

namespace mbx::mbox {
namespace {

// PATH.mbxmerge-undo holds the file length before an append in progress.
std::string UndoPath(const std::string& path) { return path + ".mbxmerge-undo"; }

constexpr std::string_view kFrom = "From ";
constexpr MessageFlags kMboxFlags =
    kFlagSeen | kFlagOld | kFlagAnswered | kFlagFlagged | kFlagDraft | kFlagDeleted;
// Release consumed pages of the mapping in steps of this size.
constexpr size_t kDontNeedStep = 16 << 20;

// True when the line that ends with the '\n' at `nl` is empty ("" or "\r").
bool LineBeforeIsEmpty(std::string_view f, size_t nl) {
  return nl == 0 || f[nl - 1] == '\n' || (f[nl - 1] == '\r' && (nl == 1 || f[nl - 2] == '\n'));
}

// The smallest offset >= `from` where a From_ line starts, or npos.
size_t FindFromLine(std::string_view f, size_t from) {
  if (from == 0) {
    if (f.starts_with(kFrom)) return 0;
    from = 1;
  }
  size_t i = from - 1;  // a candidate '\n' that ends the previous line
  while (i < f.size()) {
    size_t nl = internal::FindBytes(f, "\nFrom ", i);
    if (nl == std::string_view::npos) return nl;
    if (LineBeforeIsEmpty(f, nl)) return nl + 1;
    i = nl + 1;
  }
  return std::string_view::npos;
}

// `end` moved back over one trailing empty line in [start, end), if there is one.
size_t DropSeparator(std::string_view f, size_t start, size_t end) {
  if (end <= start || f[end - 1] != '\n') return end;
  size_t ls = end - 1;
  if (ls == start || f[ls - 1] == '\n') return ls;
  if (f[ls - 1] == '\r' && (ls - 1 == start || f[ls - 2] == '\n')) return ls - 1;
  return end;
}

bool AllWhitespace(std::string_view s) {
  for (char c : s) {
    if (c != '\n' && c != '\r' && c != ' ' && c != '\t') return false;
  }
  return true;
}

// Pulls messages out of an mbox image one at a time. The junk before the first
// From_ line comes first, as an entry with an empty from_line.
class Splitter {
 public:
  explicit Splitter(std::string_view f) : f_(f) {}

  bool Next(RawEntry* e) {
    if (!started_) {
      started_ = true;
      pos_ = FindFromLine(f_, 0);
      size_t junk_end = pos_ == std::string_view::npos ? f_.size() : pos_;
      junk_ = f_.substr(0, junk_end);
      if (!AllWhitespace(junk_)) {
        size_t end = pos_ == std::string_view::npos ? junk_end : DropSeparator(f_, 0, junk_end);
        *e = RawEntry{{}, f_.substr(0, end), 0};
        return true;
      }
    }
    if (pos_ == std::string_view::npos || pos_ >= f_.size()) return false;
    size_t eol = f_.find('\n', pos_);
    size_t body = eol == std::string_view::npos ? f_.size() : eol + 1;
    std::string_view from_line =
        f_.substr(pos_, (eol == std::string_view::npos ? f_.size() : eol) - pos_);
    if (from_line.ends_with('\r')) from_line.remove_suffix(1);
    size_t next = FindFromLine(f_, body);
    size_t end = DropSeparator(f_, body, next == std::string_view::npos ? f_.size() : next);
    *e = RawEntry{from_line, f_.substr(body, end - body), pos_};
    pos_ = next;
    return true;
  }

  std::string_view junk() const { return junk_; }

 private:
  std::string_view f_;
  bool started_ = false;
  size_t pos_ = 0;
  std::string_view junk_;
};

bool IsJunk(const RawEntry& e) { return e.from_line.empty(); }

std::string MessageBytes(const RawEntry& e) {
  return IsJunk(e) ? std::string(e.stored) : Unquote(e.stored);
}

// Offset just past the header block's terminating empty line (or the end).
size_t HeaderEnd(std::string_view msg) {
  size_t pos = 0;
  while (pos < msg.size()) {
    size_t nl = msg.find('\n', pos);
    if (nl == std::string_view::npos) return msg.size();
    if (nl == pos || (nl == pos + 1 && msg[pos] == '\r')) return nl + 1;
    pos = nl + 1;
  }
  return msg.size();
}

bool NameIs(std::string_view line, std::string_view name) {
  return line.size() > name.size() && line[name.size()] == ':' &&
         ::strncasecmp(line.data(), name.data(), name.size()) == 0;
}

// One header field in a header block: [begin, end) including continuation
// lines and the final line end.
struct FieldSpan {
  size_t begin, end;
  std::string_view value;  // after ':' and leading blanks, line end excluded
};

// Finds each Status:/X-Status: field in `headers` (the header block, no body).
template <typename Fn>
void ForEachStatusField(std::string_view headers, Fn fn) {
  size_t pos = 0;
  while (pos < headers.size()) {
    size_t end = pos;
    for (;;) {
      size_t nl = headers.find('\n', end);
      if (nl == std::string_view::npos) {
        end = headers.size();
        break;
      }
      end = nl + 1;
      if (end >= headers.size() || (headers[end] != ' ' && headers[end] != '\t')) break;
    }
    std::string_view line = headers.substr(pos, end - pos);
    bool x = NameIs(line, "X-Status");
    if (x || NameIs(line, "Status")) {
      std::string_view v = line.substr(x ? 9 : 7);
      while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
      while (!v.empty() && (v.back() == '\n' || v.back() == '\r')) v.remove_suffix(1);
      fn(x, FieldSpan{pos, end, v});
    }
    pos = end;
  }
}

// The message with its Status:/X-Status: fields replaced by ones expressing `flags`.
std::string RewriteStatus(std::string_view msg, MessageFlags flags) {
  size_t hend = HeaderEnd(msg);
  std::string_view headers = msg.substr(0, hend);
  // Where the header block's content ends: before its empty line, if any.
  size_t insert = hend;
  if (hend > 0 && msg[hend - 1] == '\n') {
    size_t ls = hend - 1;
    if (ls == 0 || msg[ls - 1] == '\n') {
      insert = ls;
    } else if (msg[ls - 1] == '\r' && (ls == 1 || msg[ls - 2] == '\n')) {
      insert = ls - 1;
    }
  }
  std::string_view eol = msg.substr(0, hend).find("\r\n") != std::string_view::npos ? "\r\n" : "\n";
  std::string out;
  out.reserve(msg.size() + 32);
  size_t copied = 0;
  ForEachStatusField(headers.substr(0, insert), [&](bool, const FieldSpan& f) {
    out.append(msg.substr(copied, f.begin - copied));
    copied = f.end;
  });
  out.append(msg.substr(copied, insert - copied));
  if (!out.empty() && out.back() != '\n') out.append(eol);
  auto [status, xstatus] = StatusValues(flags);
  if (!status.empty()) out.append("Status: ").append(status).append(eol);
  if (!xstatus.empty()) out.append("X-Status: ").append(xstatus).append(eol);
  out.append(msg.substr(insert));
  return out;
}

// The envelope is one From_ line token: no line ends, and blanks only inside a
// leading quoted local part ("a b"@x), which ParseFromLine() reads back whole.
std::string SafeEnvelope(std::string_view s) {
  std::string out;
  bool quoted = !s.empty() && s.front() == '"';
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (quoted && i > 0 && c == '"') quoted = false;
    bool bad = c == '\n' || c == '\r' || c == '\0' || (!quoted && (c == ' ' || c == '\t'));
    out += bad ? '_' : c;
  }
  return out;
}

std::string EnvelopeFor(const Message& msg, std::string_view headers) {
  if (!msg.envelope_sender.empty()) return SafeEnvelope(msg.envelope_sender);
  for (std::string_view name : {"Return-Path", "From"}) {
    if (auto f = mime::FindField(headers, name)) {
      std::string a = mime::FirstAddress(*f);
      if (!a.empty() && a != "<>") return SafeEnvelope(a);
    }
  }
  return "MAILER-DAEMON";
}

int64_t DateFor(const Message& msg, std::string_view headers) {
  if (msg.container_delivered != 0) return msg.container_delivered;
  if (auto f = mime::FindField(headers, "Date")) {
    if (auto t = mime::ParseDate(*f)) return *t;
  }
  return 0;
}

// Recognizes a message at removal time as the one read before.
uint64_t Fingerprint(const RawEntry& e) {
  return std::hash<std::string_view>{}(e.stored) ^ (e.stored.size() * 0x9E3779B97F4A7C15ULL);
}

// Rewrites the mbox at `path`, which the caller holds locked through
// `locked_fd`, without the messages whose From_ line offsets are keys of
// `remove` and whose bytes still have the fingerprint mapped to them; the
// others are reported through `kept`. Everything else (the junk before the
// first From_ line, every other message, mail delivered since) is copied byte
// for byte to a temp file, which is synced and renamed over the mbox with its
// owner and mode.
Status RewriteWithout(const std::string& path, int locked_fd,
                      const std::map<uint64_t, uint64_t>& remove,
                      const std::function<void(uint64_t, std::string)>& kept) {
  struct stat held, named;
  if (::fstat(locked_fd, &held) != 0) return Status::FromErrno("stat '" + path + "'", errno);
  if (::stat(path.c_str(), &named) != 0 || named.st_ino != held.st_ino ||
      named.st_dev != held.st_dev) {
    return Status::Busy("mbox '" + path + "' was replaced while it was being locked");
  }
  MBX_ASSIGN_OR_RETURN(fs::MappedFile now, fs::MappedFile::Open(path));
  std::string_view file = now.data();
  std::vector<RawEntry> entries = Split(file);
  // The file's bytes as runs to keep: the junk prefix, then every message
  // (From_ line to the next From_ line) that is not removed.
  std::vector<std::string_view> keep;
  size_t start = entries.empty() ? file.size() : entries.front().offset;
  keep.push_back(file.substr(0, start));
  size_t removed = 0;
  std::set<uint64_t> found;
  for (size_t i = 0; i < entries.size(); ++i) {
    const RawEntry& e = entries[i];
    size_t end = i + 1 < entries.size() ? entries[i + 1].offset : file.size();
    auto w = remove.find(e.offset);
    if (w != remove.end()) {
      found.insert(e.offset);
      if (w->second == Fingerprint(e)) {
        ++removed;
        continue;
      }
      kept(e.offset, "mbox '" + path + "' changed at offset " + std::to_string(e.offset) +
                         " since it was read");
    }
    keep.push_back(file.substr(e.offset, end - e.offset));
  }
  for (const auto& [offset, _] : remove) {
    if (!found.count(offset))
      kept(offset,
           "mbox '" + path + "' has no message at offset " + std::to_string(offset) + " any more");
  }
  if (removed == 0) return Status::Ok();
  std::string tmp = path + ".mbxmerge-tmp";
  ::unlink(tmp.c_str());  // left by a run killed mid-rewrite
  MBX_ASSIGN_OR_RETURN(fs::Fd out, fs::Open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0600));
  // Keep the mailbox's owner and mode (a spool file is often user:mail 0660).
  (void)::fchown(out.get(), held.st_uid, held.st_gid);
  Status st;
  if (::fchmod(out.get(), held.st_mode & 07777) != 0)
    st = Status::FromErrno("chmod '" + tmp + "'", errno);
  for (std::string_view run : keep) {
    if (!st.ok()) break;
    st = fs::WriteAll(out.get(), run, tmp);
  }
  if (st.ok()) MBX_CRASH_POINT("mbox.rewrite.after-temp-write");
  if (st.ok()) st = fs::FsyncFd(out.get(), tmp);
  if (st.ok()) MBX_CRASH_POINT("mbox.rewrite.before-rename");
  if (st.ok() && ::rename(tmp.c_str(), path.c_str()) != 0)
    st = Status::FromErrno("rename '" + tmp + "' to '" + path + "'", errno);
  if (!st.ok()) {
    ::unlink(tmp.c_str());
    return st;
  }
  MBX_CRASH_POINT("mbox.rewrite.after-rename");
  return fs::FsyncDir(fs::Dirname(path));
}

// --mode replace into an mbox: "length offset fingerprint" lines, one per
// existing message to remove once the batch that brings its replacement is
// committed (the file has reached `length`). Written before that batch is
// appended; applied at Close() and by the next open after a crash.
std::string ReplaceJournalPath(const std::string& path) { return path + ".mbxmerge-replace"; }

// Applies the replace journal of the mbox at `path` (locked through
// `locked_fd`): removes what committed batches replaced, then the journal.
// True when the file was rewritten (the caller's descriptor is then stale).
Result<bool> ApplyReplaceJournal(const std::string& path, int locked_fd) {
  std::string journal = ReplaceJournalPath(path);
  if (!fs::IsFile(journal)) return false;
  MBX_ASSIGN_OR_RETURN(std::string text, fs::ReadFile(journal));
  struct stat st;
  if (::fstat(locked_fd, &st) != 0) return Status::FromErrno("stat '" + path + "'", errno);
  std::map<uint64_t, uint64_t> remove;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) break;  // torn: its batch was not appended either
    unsigned long long length = 0, offset = 0, fingerprint = 0;
    if (std::sscanf(text.c_str() + pos, "%llu %llu %llu", &length, &offset, &fingerprint) == 3 &&
        length <= static_cast<unsigned long long>(st.st_size)) {
      remove.emplace(offset, fingerprint);
    }
    pos = nl + 1;
  }
  bool rewritten = false;
  if (!remove.empty()) {
    auto before = st.st_ino;
    MBX_RETURN_IF_ERROR(RewriteWithout(path, locked_fd, remove, [](uint64_t, std::string) {}));
    struct stat now;
    rewritten = ::stat(path.c_str(), &now) == 0 && now.st_ino != before;
  }
  if (::unlink(journal.c_str()) != 0) return Status::FromErrno("remove '" + journal + "'", errno);
  MBX_RETURN_IF_ERROR(fs::FsyncDir(fs::Dirname(path)));
  return rewritten;
}

class MboxSource : public MailboxSource {
 public:
  MboxSource(std::string path, std::string folder, fs::MappedFile map)
      : path_(std::move(path)),
        folder_(std::move(folder)),
        map_(std::move(map)),
        splitter_(map_.data()) {}

  std::string Describe() const override { return "mbox:" + path_; }

  Result<std::vector<FolderInfo>> ListFolders() override {
    if (!info_) {
      FolderInfo fi{folder_, 0, 0};
      Splitter s(map_.data());
      RawEntry e;
      size_t released = 0;
      while (s.Next(&e)) {
        ++fi.messages;
        fi.bytes += e.stored.size();
        if (e.offset - released >= kDontNeedStep) {
          map_.DontNeed(released, e.offset - released);
          released = e.offset;
        }
      }
      map_.DontNeed(released, map_.data().size() - released);
      info_ = fi;
    }
    return std::vector<FolderInfo>{*info_};
  }

  Result<bool> Next(Message* out) override {
    if (!WantFolder(folder_)) return false;
    RawEntry e;
    if (!splitter_.Next(&e)) {
      map_.DontNeed(released_, map_.data().size() - released_);
      return false;
    }
    ++count_;
    // Everything before this message has been copied out already.
    if (e.offset - released_ >= kDontNeedStep) {
      map_.DontNeed(released_, e.offset - released_);
      released_ = e.offset;
    }
    *out = Message{};
    out->folder = folder_;
    out->mime = MessageBytes(e);
    out->flags = FlagsFromHeaders(out->mime);
    if (!IsJunk(e)) {
      auto [sender, date] = ParseFromLine(e.from_line);
      out->envelope_sender = std::move(sender);
      out->container_delivered = date;
    }
    out->origin = "mbox '" + path_ + "' message " + std::to_string(count_) + " (offset " +
                  std::to_string(e.offset) + ")";
    out->source_token = e.offset;
    if (will_remove_) read_.push_back({e.offset, Fingerprint(e)});
    return true;
  }

  bool CanRemoveMessages() const override { return true; }
  void WillRemoveMessages() override { will_remove_ = true; }

  // Archive mode: rewrites the file without the messages at `tokens` (their
  // From_ line offsets), under the same locks an MDA honours, through a temp
  // file, fsync and rename. The file is read again under the lock, and a
  // message is removed only if it is still at its offset with the bytes it had
  // when Next() read it; mail appended since is kept.
  Status RemoveMessages(const std::vector<uint64_t>& tokens,
                        const std::function<void(uint64_t, std::string)>& kept) override {
    MBX_ASSIGN_OR_RETURN(fs::Fd fd, fs::Open(path_, O_RDWR));
    MBX_ASSIGN_OR_RETURN(fs::MailboxLock lock, fs::MailboxLock::Acquire(path_, fd.get()));
    std::map<uint64_t, uint64_t> remove;
    for (uint64_t t : tokens) {
      auto r = std::lower_bound(read_.begin(), read_.end(), ReadMark{t, 0});
      if (r != read_.end() && r->offset == t) {
        remove.emplace(t, r->fingerprint);
      } else {
        kept(t, "mbox '" + path_ + "': no message was read at offset " + std::to_string(t));
      }
    }
    return RewriteWithout(path_, fd.get(), remove, kept);
  }

 private:
  // What Next() saw of a message, to recognize it at removal time.
  struct ReadMark {
    uint64_t offset;
    uint64_t fingerprint;
    bool operator<(const ReadMark& o) const { return offset < o.offset; }
  };

  std::string path_;
  std::string folder_;
  fs::MappedFile map_;
  Splitter splitter_;
  bool will_remove_ = false;
  std::vector<ReadMark> read_;  // in offset order, as Next() reads (only if will_remove_)
  std::optional<FolderInfo> info_;
  uint64_t count_ = 0;
  size_t released_ = 0;
};

void RequoteInto(std::string_view s, bool quote, std::string* out);

// Runs one job at a time on a thread of its own: the mbox sink's spills, so
// that the committer stages the next messages while the kernel copies the
// last ones into the file (a third of the committer's time in a --jobs 2
// PST -> mbox merge went to write()).
class BehindWriter {
 public:
  BehindWriter() : thread_([this] { Loop(); }) {}
  ~BehindWriter() {
    {
      std::lock_guard lock(mu_);
      quit_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  // Waits for the job before, then starts `job`.
  void Start(std::function<void()> job) {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return !job_; });
    job_ = std::move(job);
    cv_.notify_all();
  }
  // Whether a job is still running.
  bool Busy() {
    std::lock_guard lock(mu_);
    return static_cast<bool>(job_);
  }
  // Waits until the last job has finished.
  void Wait() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return !job_; });
  }

 private:
  void Loop() {
    std::unique_lock lock(mu_);
    for (;;) {
      cv_.wait(lock, [&] { return job_ || quit_; });
      if (!job_) return;
      lock.unlock();
      job_();
      lock.lock();
      job_ = nullptr;
      cv_.notify_all();
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::function<void()> job_;
  bool quit_ = false;
  std::thread thread_;  // last: starts once the rest is ready
};

class MboxSink : public FileSink {
 public:
  MboxSink(std::string path, fs::Fd fd, fs::MailboxLock lock, size_t len)
      : path_(std::move(path)), fd_(std::move(fd)), lock_(std::move(lock)), good_len_(len) {}

  ~MboxSink() override {
    if (map_ != nullptr) ::munmap(map_, map_len_);
    if (!closed_) Rollback();
  }

  Status Init() {
    if (good_len_ == 0) return Status::Ok();
    void* addr = ::mmap(nullptr, good_len_, PROT_READ, MAP_PRIVATE, fd_.get(), 0);
    if (addr == MAP_FAILED) return Status::FromErrno("mmap '" + path_ + "'", errno);
    map_ = addr;
    map_len_ = good_len_;
    std::string_view f = Existing();
    // Appending a From_ line needs an empty line before it.
    if (f.ends_with('\n')) {
      if (!LineBeforeIsEmpty(f, f.size() - 1)) separator_ = "\n";
    } else {
      separator_ = "\n\n";
    }
    return Status::Ok();
  }

  std::string Describe() const override { return "mbox:" + path_; }
  bool SingleFolder() const override { return true; }

  void SetWriteThreads(int threads) override {
    if (threads > 1 && !writer_) writer_ = std::make_unique<BehindWriter>();
  }

  Status ScanExisting(const std::function<Status(const ExistingMessage&)>& fn) override {
    MBX_RETURN_IF_ERROR(usable_);
    if (!scanned_) {
      Splitter s(Existing());
      RawEntry e;
      while (s.Next(&e)) entries_.push_back(e);
      scanned_ = true;
    }
    for (size_t i = 0; i < entries_.size(); ++i) {
      const RawEntry& e = entries_[i];
      ExistingMessage m;
      m.folder = "";
      m.locator = i;
      // Without quoted lines the stored bytes are the message: hand over all.
      if (IsJunk(e) || internal::FindBytes(e.stored, ">From ") == std::string_view::npos) {
        m.head = e.stored;
        m.head_is_complete = true;
      } else {
        m.head = e.stored.substr(0, HeaderEnd(e.stored));
      }
      MBX_RETURN_IF_ERROR(fn(m));
    }
    if (map_ != nullptr) ::madvise(map_, map_len_, MADV_DONTNEED);
    return Status::Ok();
  }

  Result<std::string> ReadExisting(uint64_t locator) override {
    if (locator >= entries_.size()) {
      return Status::InvalidArgument("mbox '" + path_ + "': no existing message " +
                                     std::to_string(locator));
    }
    return MessageBytes(entries_[locator]);
  }

  bool CanReplace() const override { return true; }

  // The existing message goes when the file is closed, after the batch that
  // brings `msg` is committed; the journal makes that hold across a crash.
  Status StageReplacing(const Message& msg, std::string_view folder, uint64_t existing) override {
    if (existing >= entries_.size())
      return Status::InvalidArgument("mbox '" + path_ + "': no existing message " +
                                     std::to_string(existing));
    MBX_RETURN_IF_ERROR(Stage(msg, folder));
    const RawEntry& e = entries_[existing];
    if (!IsJunk(e)) staged_removals_.emplace_back(e.offset, Fingerprint(e));
    return Status::Ok();
  }

  Status Stage(const Message& msg, std::string_view) override {
    MBX_RETURN_IF_ERROR(usable_);
    if (closed_) return Status::InvalidArgument("mbox '" + path_ + "': sink is closed");
    if (staged_.size() >= kSpillBytes &&
        (staged_.size() >= kSpillMaxBytes || !writer_ || !writer_->Busy())) {
      MBX_RETURN_IF_ERROR(Spill());
    }
    auto mime_r = msg.Mime();
    if (!mime_r.ok()) return mime_r.status();
    std::string_view mime = *mime_r;
    // Once per batch, not by doubling: the copies a growing buffer makes
    // were a tenth of the committer's time.
    if (staged_.empty()) staged_.reserve(kSpillBytes + mime.size() + 512);
    std::string_view headers = mime.substr(0, HeaderEnd(mime));
    std::string rewritten;
    if (FlagsFromHeaders(headers) != (msg.flags & kMboxFlags)) {
      rewritten = RewriteStatus(mime, msg.flags);
      mime = rewritten;
      headers = mime.substr(0, HeaderEnd(mime));
    }
    staged_.append("From ").append(EnvelopeFor(msg, headers)).append(" ");
    staged_.append(mime::FormatAsctime(DateFor(msg, headers))).append("\n");
    RequoteInto(mime, /*quote=*/true, &staged_);
    if (!staged_.ends_with('\n')) staged_.append("\n");
    staged_.append("\n");
    return Status::Ok();
  }

  Status Prepare() override {
    MBX_RETURN_IF_ERROR(SpillsDone());
    if (staged_.empty() && spilled_ == 0) return Status::Ok();
    if (!staged_removals_.empty()) {
      // Before the replacements can be committed: what they replace.
      size_t length = good_len_ + BatchBytes();
      for (const auto& [offset, fingerprint] : staged_removals_) {
        replace_journal_ += std::to_string(length) + " " + std::to_string(offset) + " " +
                            std::to_string(fingerprint) + "\n";
      }
      staged_removals_.clear();
      MBX_RETURN_IF_ERROR(fs::AtomicWriteFile(ReplaceJournalPath(path_), replace_journal_));
    }
    Status s = WriteBatchEnd(spilled_ == 0, staged_);
    if (!s.ok()) {
      Rollback();
      return s;
    }
    MBX_CRASH_POINT("mbox.append.after-fsync");
    prepared_ = BatchBytes();
    spilled_ = 0;
    // Released, not kept for the next batch: an mboxdir target holds one sink
    // per folder, and a thousand idle batch buffers would be most of its memory.
    std::string().swap(staged_);
    std::string().swap(spilling_);
    return Status::Ok();
  }

  void Commit() override {
    if (prepared_ != 0 || fs::Exists(UndoPath(path_))) {
      ::unlink(UndoPath(path_).c_str());
      MBX_CRASH_POINT("mbox.commit.after-undo-remove");
      (void)fs::FsyncDir(fs::Dirname(path_));
    }
    good_len_ += prepared_;
    if (prepared_ != 0) separator_.clear();
    prepared_ = 0;
  }

  Status Flush() override {
    MBX_RETURN_IF_ERROR(FinishFlush());
    MBX_RETURN_IF_ERROR(Prepare());
    Commit();
    return Status::Ok();
  }

  // With a writer thread (--jobs > 1): the batch's last bytes, its fsync and
  // its commit run there while the caller stages the next batch (waiting
  // for the fsync was most of the committer's time on a disk). Later spills
  // wait for it, so the next batch starts its undo record from the new
  // length.
  Status StartFlush() override {
    if (!writer_ || !staged_removals_.empty()) return Flush();
    MBX_RETURN_IF_ERROR(FinishFlush());
    MBX_RETURN_IF_ERROR(SpillsDone());
    if (staged_.empty() && spilled_ == 0) return Status::Ok();
    bool first = spilled_ == 0;
    size_t batch_bytes = BatchBytes();
    spilling_.swap(staged_);
    staged_.clear();
    spilled_ = 0;
    flushing_ = true;
    writer_->Start([this, first, batch_bytes] {
      Status s = WriteBatchEnd(first, spilling_);
      if (s.ok()) {
        MBX_CRASH_POINT("mbox.append.after-fsync");
        prepared_ = batch_bytes;
        Commit();
      }
      flush_error_ = s;
    });
    return Status::Ok();
  }

  Status FinishFlush() override {
    if (!flushing_) return Status::Ok();
    writer_->Wait();
    flushing_ = false;
    Status s = std::exchange(flush_error_, Status::Ok());
    if (!s.ok()) Rollback();  // this batch and whatever the next has spilled
    return s;
  }

  void Rollback() override {
    if (writer_) writer_->Wait();  // before the file is cut back under it
    spill_error_ = Status::Ok();
    staged_.clear();
    staged_removals_.clear();
    prepared_ = 0;
    spilled_ = 0;
    lost_batch_ = Status::Ok();
    if (!usable_.ok() || !fd_.valid()) return;
    struct stat st;
    if (::fstat(fd_.get(), &st) == 0 && static_cast<size_t>(st.st_size) == good_len_) return;
    if (::ftruncate(fd_.get(), static_cast<off_t>(good_len_)) != 0) {
      usable_ = Status::FromErrno("truncate '" + path_ + "' back to " + std::to_string(good_len_) +
                                      " bytes after a failed write",
                                  errno);
      return;
    }
    Status s = fs::FsyncFd(fd_.get(), path_);
    if (!s.ok()) usable_ = s;
  }

  Status Close() override {
    if (closed_) return Status::Ok();
    Status s = Flush();  // finishes a started flush first
    if (!s.ok()) Rollback();
    // --mode replace: now remove what the committed batches replaced.
    if (s.ok() && !replace_journal_.empty()) s = ApplyReplaceJournal(path_, fd_.get()).status();
    closed_ = true;
    lock_.Release();
    fd_ = fs::Fd();
    return s;
  }

 private:
  // A batch is written to the file as it grows, this much at a time, rather
  // than held whole until Prepare(): a 32 MiB batch held, and then copied
  // while it grows, was a quarter of a merge's peak memory. Only Prepare()'s
  // fsync makes it durable, and until Commit() the undo record written first
  // cuts it off again at the next open. 1 MiB rather than 4: the buffer
  // stays in the CPU's cache between spills, and the fsync at the batch's
  // end waits for a shorter tail (a PST -> mbox merge: 8-12% faster with
  // --jobs 1 and 2, half the system time).
  static constexpr size_t kSpillBytes = 1 << 20;
  // While the writer thread is still busy (a batch's fsync behind), staging
  // goes on up to this much rather than waiting for it.
  static constexpr size_t kSpillMaxBytes = 4 << 20;

  // Bytes of the batch so far: already in the file, and still staged.
  size_t BatchBytes() const {
    return (spilled_ == 0 ? separator_.size() : spilled_) + staged_.size();
  }

  // The batch's first write past the last good length: the undo record
  // first, then the separator the file needs.
  Status StartBatch() {
    // Journal first: until Commit() removes it, the next open cuts the file back here.
    MBX_RETURN_IF_ERROR(fs::AtomicWriteFile(UndoPath(path_), std::to_string(good_len_) + "\n"));
    MBX_CRASH_POINT("mbox.append.after-undo-record");
    if (::lseek(fd_.get(), static_cast<off_t>(good_len_), SEEK_SET) < 0) {
      return Status::FromErrno("seek '" + path_ + "'", errno);
    }
    if (!separator_.empty()) MBX_RETURN_IF_ERROR(fs::WriteAll(fd_.get(), separator_, path_));
    return Status::Ok();
  }

  // Writes a batch's last bytes (all of it if `first`: nothing spilled) and
  // fsyncs. In two writes, so that a crash point can tear the batch as a
  // power cut may.
  Status WriteBatchEnd(bool first, std::string_view batch) {
    MBX_RETURN_IF_ERROR(first ? StartBatch() : Status::Ok());
    MBX_RETURN_IF_ERROR(fs::WriteAll(fd_.get(), batch.substr(0, batch.size() / 2), path_));
    MBX_CRASH_POINT("mbox.append.mid-write");
    MBX_RETURN_IF_ERROR(fs::WriteAll(fd_.get(), batch.substr(batch.size() / 2), path_));
    MBX_CRASH_POINT("mbox.append.after-write");
    MBX_RETURN_IF_ERROR(fs::FsyncFd(fd_.get(), path_));
    // Durable, and never read again by this run: the file's pages leave the
    // cache. A merge that writes gigabytes would otherwise fill it with its
    // own clean pages, and its later writes got dearer (RESULTS.md (h)). The
    // whole file, not from this batch's start: the kernel keeps a (large)
    // page that the range covers only in part.
    (void)::posix_fadvise(fd_.get(), 0, 0, POSIX_FADV_DONTNEED);
    return Status::Ok();
  }

  // Writes what is staged so far (not durable yet), on the writer thread if
  // there is one. A failure leaves the file as after the last good Flush():
  // the batch's earlier messages are gone, and the batch's Prepare() says so.
  Status Spill() {
    MBX_RETURN_IF_ERROR(FinishSpill());
    bool first = spilled_ == 0;
    spilled_ = BatchBytes();
    spilling_.swap(staged_);
    staged_.clear();  // the buffer of the spill before, kept for the next
    if (!writer_) {
      spill_error_ = WriteSpill(first);
      return FinishSpill();
    }
    writer_->Start([this, first] { spill_error_ = WriteSpill(first); });
    return Status::Ok();
  }

  Status WriteSpill(bool first) {
    MBX_RETURN_IF_ERROR(first ? StartBatch() : Status::Ok());
    MBX_RETURN_IF_ERROR(fs::WriteAll(fd_.get(), spilling_, path_));
    MBX_CRASH_POINT("mbox.append.after-spill");
    // Start writing the batch so far to the disk now (from its start to the
    // end of the file), so that Prepare()'s fsync waits for the last spill
    // only, not the whole batch.
    ::sync_file_range(fd_.get(), static_cast<off64_t>(good_len_), 0, SYNC_FILE_RANGE_WRITE);
    return Status::Ok();
  }

  // Before a batch's end is written: the sink usable, the last spill
  // finished, and no spill of this batch lost (reported once).
  Status SpillsDone() {
    MBX_RETURN_IF_ERROR(usable_);
    MBX_RETURN_IF_ERROR(FinishSpill());
    if (!lost_batch_.ok()) return std::exchange(lost_batch_, Status::Ok());
    return Status::Ok();
  }

  // Waits for the spill in progress; if it failed, drops the batch.
  Status FinishSpill() {
    if (writer_) writer_->Wait();
    Status s = std::exchange(spill_error_, Status::Ok());
    if (!s.ok()) {
      Rollback();
      lost_batch_ = s;
    }
    return s;
  }

  std::string_view Existing() const { return {static_cast<const char*>(map_), map_len_}; }

  std::string path_;
  fs::Fd fd_;
  fs::MailboxLock lock_;
  size_t good_len_;        // file length after the last good Flush()
  std::string separator_;  // written before the first message appended to a file that lacks it
  std::string staged_;
  std::string spilling_;  // what Spill() is writing (or wrote last)
  Status spill_error_;    // set by the spill in progress, read after it
  bool flushing_ = false;  // StartFlush() started a flush that FinishFlush() has not seen end
  Status flush_error_;     // set by that flush, read after it
  size_t spilled_ = 0;  // bytes of this batch written by Spill() (with the separator)
  Status lost_batch_;   // why Spill() had to drop the batch, until Prepare() reports it
  size_t prepared_ = 0;
  Status usable_;
  bool closed_ = false;
  void* map_ = nullptr;  // the file as it was at open
  size_t map_len_ = 0;
  bool scanned_ = false;
  std::vector<RawEntry> entries_;
  std::vector<std::pair<uint64_t, uint64_t>> staged_removals_;  // offset, fingerprint
  std::string replace_journal_;  // as last written to ReplaceJournalPath()
  std::unique_ptr<BehindWriter> writer_;  // --jobs > 1: spills are written behind Stage()
};

// Appends `s` to `out`, rewriting lines matching ^>*From (quote) or ^>+From
// (unquote). Jumps from one "From " to the next instead of walking every
// line: messages are unquoted on the reader thread, and the line walk was a
// tenth of its time.
void RequoteInto(std::string_view s, bool quote, std::string* out) {
  const std::string_view needle = quote ? "From " : ">From ";
  size_t copied = 0;
  for (size_t at = internal::FindBytes(s, needle); at != std::string_view::npos;
       at = internal::FindBytes(s, needle, at + needle.size())) {
    size_t line = at;  // back over the '>' run before "From " (or before ">From ")
    while (line > 0 && s[line - 1] == '>') --line;
    if (line == 0 || s[line - 1] == '\n') {
      out->append(s.substr(copied, line - copied));
      if (quote) {
        *out += '>';
        copied = line;
      } else {
        copied = line + 1;  // drop one '>'
      }
    }
  }
  out->append(s.substr(copied));
}

std::string Requote(std::string_view s, bool quote) {
  std::string out;
  out.reserve(s.size() + (quote ? 64 : 0));
  RequoteInto(s, quote, &out);
  return out;
}

}  // namespace

std::vector<RawEntry> Split(std::string_view file, std::string_view* junk_prefix) {
  std::vector<RawEntry> out;
  Splitter s(file);
  RawEntry e;
  while (s.Next(&e)) {
    if (!IsJunk(e)) out.push_back(e);
  }
  if (junk_prefix != nullptr) *junk_prefix = s.junk();
  return out;
}

std::string Quote(std::string_view message) { return Requote(message, true); }
std::string Unquote(std::string_view stored) { return Requote(stored, false); }

std::pair<std::string, int64_t> ParseFromLine(std::string_view line) {
  if (line.starts_with(kFrom)) line.remove_prefix(kFrom.size());
  while (!line.empty() && (line.front() == ' ' || line.front() == '\t')) line.remove_prefix(1);
  size_t i = 0;
  if (!line.empty() && line.front() == '"') {
    // A quoted local part may hold blanks: "a b"@example.com
    size_t q = line.find('"', 1);
    i = q == std::string_view::npos ? line.size() : q + 1;
  }
  while (i < line.size() && line[i] != ' ' && line[i] != '\t') ++i;
  std::string sender(line.substr(0, i));
  std::string_view rest = line.substr(i);
  while (!rest.empty() && (rest.front() == ' ' || rest.front() == '\t')) rest.remove_prefix(1);
  while (!rest.empty() && (rest.back() == ' ' || rest.back() == '\t')) rest.remove_suffix(1);
  int64_t date = 0;
  if (auto t = mime::ParseDate(rest)) date = *t;
  return {std::move(sender), date};
}

MessageFlags FlagsFromHeaders(std::string_view headers) {
  headers = headers.substr(0, HeaderEnd(headers));
  MessageFlags flags = 0;
  bool seen_status = false, seen_xstatus = false;
  ForEachStatusField(headers, [&](bool x, const FieldSpan& f) {
    bool& seen = x ? seen_xstatus : seen_status;
    if (seen) return;  // the first of each counts
    seen = true;
    for (char c : f.value) {
      if (!x && c == 'R') flags |= kFlagSeen;
      if (!x && c == 'O') flags |= kFlagOld;
      if (x && c == 'A') flags |= kFlagAnswered;
      if (x && c == 'F') flags |= kFlagFlagged;
      if (x && c == 'T') flags |= kFlagDraft;
      if (x && c == 'D') flags |= kFlagDeleted;
    }
  });
  return flags;
}

std::pair<std::string, std::string> StatusValues(MessageFlags flags) {
  std::string status, xstatus;
  if (flags & kFlagSeen) status += 'R';
  if (flags & kFlagOld) status += 'O';
  if (flags & kFlagAnswered) xstatus += 'A';
  if (flags & kFlagFlagged) xstatus += 'F';
  if (flags & kFlagDraft) xstatus += 'T';
  if (flags & kFlagDeleted) xstatus += 'D';
  return {status, xstatus};
}

Result<std::unique_ptr<MailboxSource>> OpenSource(const std::string& path, std::string folder) {
  MBX_ASSIGN_OR_RETURN(fs::MappedFile map, fs::MappedFile::Open(path));
  return std::unique_ptr<MailboxSource>(
      std::make_unique<MboxSource>(path, std::move(folder), std::move(map)));
}

Result<std::unique_ptr<MailboxSource>> OpenSource(const std::string& path) {
  return OpenSource(path, std::string());
}

Result<std::unique_ptr<FileSink>> OpenFileSink(const std::string& path, const SinkOptions& opts) {
  bool existed = fs::Exists(path);
  if (!existed && !opts.create) return Status::NotFound("mbox '" + path + "' does not exist");
  if (!existed) MBX_RETURN_IF_ERROR(fs::MakeDirs(fs::Dirname(path)));
  MBX_ASSIGN_OR_RETURN(fs::Fd fd, fs::Open(path, O_RDWR | O_CREAT, 0600));
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return Status::FromErrno("stat '" + path + "'", errno);
  if (!S_ISREG(st.st_mode))
    return Status::InvalidArgument("mbox '" + path + "' is not a regular file");
  MBX_ASSIGN_OR_RETURN(fs::MailboxLock lock, fs::MailboxLock::Acquire(path, fd.get()));
  // A batch whose append was never confirmed (the run was killed mid-write):
  // cut it off, so the rerun appends it again, whole and once.
  std::string undo = UndoPath(path);
  // A run killed while writing its undo record or replace journal left temps.
  fs::RemoveStaleTemps(undo);
  fs::RemoveStaleTemps(path + ".mbxmerge-replace");
  if (fs::IsFile(undo)) {
    MBX_ASSIGN_OR_RETURN(std::string text, fs::ReadFile(undo));
    char* end = nullptr;
    unsigned long long len = std::strtoull(text.c_str(), &end, 10);
    if (end == text.c_str())
      return Status::Corruption("mbox undo record '" + undo + "' is unreadable");
    if (::fstat(fd.get(), &st) != 0) return Status::FromErrno("stat '" + path + "'", errno);
    if (static_cast<unsigned long long>(st.st_size) > len) {
      if (::ftruncate(fd.get(), static_cast<off_t>(len)) != 0) {
        return Status::FromErrno("truncate '" + path + "' to its last confirmed length", errno);
      }
      MBX_RETURN_IF_ERROR(fs::FsyncFd(fd.get(), path));
    }
    ::unlink(undo.c_str());
    MBX_RETURN_IF_ERROR(fs::FsyncDir(fs::Dirname(path)));
  }
  // A replacement a killed run committed but did not finish removing.
  MBX_ASSIGN_OR_RETURN(bool rewritten, ApplyReplaceJournal(path, fd.get()));
  if (rewritten) {
    // The descriptor and lock are on the old file: start over on the new one.
    lock.Release();
    fd = fs::Fd();
    return OpenFileSink(path, opts);
  }
  // Re-read the length under the lock: another writer may have appended.
  if (::fstat(fd.get(), &st) != 0) return Status::FromErrno("stat '" + path + "'", errno);
  if (!existed) MBX_RETURN_IF_ERROR(fs::FsyncDir(fs::Dirname(path)));
  auto sink = std::make_unique<MboxSink>(path, std::move(fd), std::move(lock),
                                         static_cast<size_t>(st.st_size));
  MBX_RETURN_IF_ERROR(sink->Init());
  return std::unique_ptr<FileSink>(std::move(sink));
}

Result<std::unique_ptr<MailboxSink>> OpenSink(const std::string& path, const SinkOptions& opts) {
  MBX_ASSIGN_OR_RETURN(auto sink, OpenFileSink(path, opts));
  return std::unique_ptr<MailboxSink>(std::move(sink));
}

}  // namespace mbx::mbox
