// \brief File-system helpers with the durability rules of mbxmerge: every write is
// atomic (temp, fsync, rename) or journaled, and every error names the path.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "engine/status.h"

namespace mbx::fs {

// An owned file descriptor; closes on destruction.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(Fd&& o) noexcept : fd_(o.Release()) {}
  Fd& operator=(Fd&& o) noexcept;
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd();
  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  int Release() {
    int f = fd_;
    fd_ = -1;
    return f;
  }

 private:
  int fd_ = -1;
};

Result<Fd> Open(const std::string& path, int flags, mode_t mode = 0644);
Status WriteAll(int fd, std::string_view data, const std::string& path_for_errors);
// pwrite() of all of `data` at `offset`.
Status PwriteAll(int fd, std::string_view data, uint64_t offset, const std::string& what);
// pread() into `buf` from `offset` until `size` bytes or the end of the file;
// returns how many were read.
Result<size_t> PreadUpTo(int fd, char* buf, size_t size, uint64_t offset, const std::string& what);
// An unnamed scratch file in `dir` (O_TMPFILE, or a unique name unlinked at
// once): it takes disk space beside the output and vanishes with the process.
Result<Fd> OpenScratch(const std::string& dir);
Status FsyncFd(int fd, const std::string& path_for_errors);
// fsync()s a directory so that entries created or renamed in it are durable.
Status FsyncDir(const std::string& dir);
Result<std::string> ReadFile(const std::string& path);
// Reads at most `max` bytes from the start of the file.
Result<std::string> ReadPrefix(const std::string& path, size_t max);
// Appends the whole content of file `from` to `to_fd` in bounded chunks.
Status CopyInto(const std::string& from, int to_fd, const std::string& to_for_errors);
// Writes `data` to a temporary file beside `path`, fsyncs it, renames it over
// `path` and fsyncs the directory.
Status AtomicWriteFile(const std::string& path, std::string_view data);
// Removes the temporary files AtomicWriteFile(path) left behind when its
// process was killed (PATH.tmp.PID of a process that no longer exists).
void RemoveStaleTemps(const std::string& path);
// True when no process `pid` exists on this host.
bool ProcessGone(long pid);
// mkdir -p; fsyncs each directory it creates' parent.
Status MakeDirs(const std::string& path, mode_t mode = 0755);
bool Exists(const std::string& path);
bool IsDir(const std::string& path);
bool IsFile(const std::string& path);
std::string Dirname(std::string_view path);
std::string Basename(std::string_view path);
std::string Join(std::string_view a, std::string_view b);
// This machine's name, sanitized for Maildir file names ('/' and ':' escaped).
const std::string& Hostname();

// A memory-mapped read-only file (empty files map to an empty view).
class MappedFile {
 public:
  MappedFile() = default;
  MappedFile(MappedFile&& o) noexcept;
  MappedFile& operator=(MappedFile&& o) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile();
  static Result<MappedFile> Open(const std::string& path);
  std::string_view data() const { return {static_cast<const char*>(addr_), size_}; }
  // Tells the kernel the given range will not be needed again (bounds page cache use).
  void DontNeed(size_t offset, size_t length) const;

 private:
  void* addr_ = nullptr;
  size_t size_ = 0;
};

// An exclusive lock on a mailbox: fcntl() lock on `fd` plus a PATH.lock
// dotlock file (as mutt, procmail and Dovecot do for mbox). Released on destruction.
class MailboxLock {
 public:
  MailboxLock() = default;
  MailboxLock(MailboxLock&& o) noexcept;
  MailboxLock& operator=(MailboxLock&& o) noexcept;
  ~MailboxLock();
  // Fails with Busy when another process holds either lock.
  static Result<MailboxLock> Acquire(const std::string& path, int fd);
  void Release();

 private:
  std::string dotlock_;
  int fd_ = -1;
};

}  // namespace mbx::fs
