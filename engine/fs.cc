#include "engine/fs.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <signal.h>

#include <cerrno>
#include <cstdlib>
#include <ctime>
#include <cstring>
#include <utility>

#include "engine/faultpoint.h"

namespace mbx::fs {

Fd& Fd::operator=(Fd&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = o.Release();
  }
  return *this;
}

Fd::~Fd() {
  if (fd_ >= 0) ::close(fd_);
}

Result<Fd> Open(const std::string& path, int flags, mode_t mode) {
  int fd;
  do {
    fd = ::open(path.c_str(), flags | O_CLOEXEC, mode);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) return Status::FromErrno("open '" + path + "'", errno);
  return Fd(fd);
}

Status WriteAll(int fd, std::string_view data, const std::string& path_for_errors) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno("write '" + path_for_errors + "'", errno);
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return Status::Ok();
}

Status PwriteAll(int fd, std::string_view data, uint64_t offset, const std::string& what) {
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t n =
        ::pwrite(fd, data.data() + done, data.size() - done, static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Status::FromErrno("cannot write " + what, errno);
    done += static_cast<size_t>(n);
  }
  return Status::Ok();
}

Result<size_t> PreadUpTo(int fd, char* buf, size_t size, uint64_t offset, const std::string& what) {
  size_t got = 0;
  while (got < size) {
    const ssize_t n = ::pread(fd, buf + got, size - got, static_cast<off_t>(offset + got));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Status::FromErrno("cannot read " + what, errno);
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  return got;
}

Result<Fd> OpenScratch(const std::string& dir) {
  const std::string where = dir.empty() ? "." : dir;
  int fd = -1;
#ifdef O_TMPFILE
  fd = ::open(where.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (fd >= 0) return Fd(fd);
#endif
  std::string name = Join(where, ".mbxmerge-scratch-XXXXXX");
  fd = ::mkostemp(name.data(), O_CLOEXEC);
  if (fd < 0) return Status::FromErrno("cannot create a scratch file in '" + where + "'", errno);
  ::unlink(name.c_str());
  return Fd(fd);
}

Status FsyncFd(int fd, const std::string& path_for_errors) {
  if (::fsync(fd) != 0) return Status::FromErrno("fsync '" + path_for_errors + "'", errno);
  return Status::Ok();
}

Status FsyncDir(const std::string& dir) {
  MBX_ASSIGN_OR_RETURN(Fd fd, Open(dir.empty() ? "." : dir, O_RDONLY | O_DIRECTORY));
  return FsyncFd(fd.get(), dir);
}

Result<std::string> ReadPrefix(const std::string& path, size_t max) {
  MBX_ASSIGN_OR_RETURN(Fd fd, Open(path, O_RDONLY));
  std::string out;
  struct stat st;
  if (::fstat(fd.get(), &st) == 0 && st.st_size > 0) {
    out.reserve(std::min<size_t>(max, static_cast<size_t>(st.st_size)));
  }
  char buf[65536];
  while (out.size() < max) {
    ssize_t n = ::read(fd.get(), buf, std::min(sizeof buf, max - out.size()));
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno("read '" + path + "'", errno);
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

Result<std::string> ReadFile(const std::string& path) { return ReadPrefix(path, SIZE_MAX); }

Status CopyInto(const std::string& from, int to_fd, const std::string& to_for_errors) {
  MBX_ASSIGN_OR_RETURN(Fd in, Open(from, O_RDONLY));
  std::string buf(1 << 20, '\0');
  for (;;) {
    ssize_t n = ::read(in.get(), buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno("read '" + from + "'", errno);
    }
    if (n == 0) return Status::Ok();
    MBX_RETURN_IF_ERROR(WriteAll(to_fd, std::string_view(buf.data(), static_cast<size_t>(n)), to_for_errors));
  }
}

Status AtomicWriteFile(const std::string& path, std::string_view data) {
  std::string tmp = path + ".tmp." + std::to_string(::getpid());
  {
    MBX_ASSIGN_OR_RETURN(Fd fd, Open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644));
    Status s = WriteAll(fd.get(), data, tmp);
    if (s.ok()) MBX_CRASH_POINT("fs.atomic-write.after-temp-write");
    if (s.ok()) s = FsyncFd(fd.get(), tmp);
    if (!s.ok()) {
      ::unlink(tmp.c_str());
      return s;
    }
    MBX_CRASH_POINT("fs.atomic-write.after-fsync");
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return Status::FromErrno("rename '" + tmp + "' to '" + path + "'", err);
  }
  MBX_CRASH_POINT("fs.atomic-write.after-rename");
  return FsyncDir(Dirname(path));
}

bool ProcessGone(long pid) { return pid > 0 && ::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH; }

void RemoveStaleTemps(const std::string& path) {
  const std::string prefix = Basename(path) + ".tmp.";
  DIR* d = ::opendir(Dirname(path).c_str());
  if (d == nullptr) return;
  bool removed = false;
  while (const dirent* e = ::readdir(d)) {
    std::string_view name(e->d_name);
    if (!name.starts_with(prefix)) continue;
    std::string digits(name.substr(prefix.size()));
    char* end = nullptr;
    long pid = std::strtol(digits.c_str(), &end, 10);
    if (digits.empty() || *end != '\0' || !ProcessGone(pid)) continue;
    removed |= ::unlinkat(::dirfd(d), e->d_name, 0) == 0;
  }
  ::closedir(d);
  if (removed) (void)FsyncDir(Dirname(path));
}

Status MakeDirs(const std::string& path, mode_t mode) {
  if (path.empty() || IsDir(path)) return Status::Ok();
  std::string parent = Dirname(path);
  if (parent != path) MBX_RETURN_IF_ERROR(MakeDirs(parent, mode));
  if (::mkdir(path.c_str(), mode) != 0 && errno != EEXIST) {
    return Status::FromErrno("mkdir '" + path + "'", errno);
  }
  return FsyncDir(parent);
}

bool Exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

bool IsDir(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

bool IsFile(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

std::string Dirname(std::string_view path) {
  while (path.size() > 1 && path.back() == '/') path.remove_suffix(1);
  size_t slash = path.rfind('/');
  if (slash == std::string_view::npos) return ".";
  if (slash == 0) return "/";
  return std::string(path.substr(0, slash));
}

std::string Basename(std::string_view path) {
  while (path.size() > 1 && path.back() == '/') path.remove_suffix(1);
  size_t slash = path.rfind('/');
  return std::string(slash == std::string_view::npos ? path : path.substr(slash + 1));
}

std::string Join(std::string_view a, std::string_view b) {
  if (a.empty()) return std::string(b);
  if (b.empty()) return std::string(a);
  std::string out(a);
  if (out.back() != '/') out += '/';
  out += b;
  return out;
}

const std::string& Hostname() {
  static const std::string kHost = [] {
    char buf[256] = {};
    if (::gethostname(buf, sizeof buf - 1) != 0 || buf[0] == '\0') return std::string("localhost");
    std::string out;
    for (const char* p = buf; *p; ++p) {
      if (*p == '/') out += "\\057";
      else if (*p == ':') out += "\\072";
      else out += *p;
    }
    return out;
  }();
  return kHost;
}

MappedFile::MappedFile(MappedFile&& o) noexcept
    : addr_(std::exchange(o.addr_, nullptr)), size_(std::exchange(o.size_, 0)) {}

MappedFile& MappedFile::operator=(MappedFile&& o) noexcept {
  if (this != &o) {
    if (addr_) ::munmap(addr_, size_);
    addr_ = std::exchange(o.addr_, nullptr);
    size_ = std::exchange(o.size_, 0);
  }
  return *this;
}

MappedFile::~MappedFile() {
  if (addr_) ::munmap(addr_, size_);
}

Result<MappedFile> MappedFile::Open(const std::string& path) {
  MBX_ASSIGN_OR_RETURN(Fd fd, fs::Open(path, O_RDONLY));
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return Status::FromErrno("stat '" + path + "'", errno);
  if (!S_ISREG(st.st_mode)) return Status::InvalidArgument("'" + path + "' is not a regular file");
  MappedFile m;
  if (st.st_size == 0) return m;
  void* addr = ::mmap(nullptr, static_cast<size_t>(st.st_size), PROT_READ, MAP_PRIVATE, fd.get(), 0);
  if (addr == MAP_FAILED) return Status::FromErrno("mmap '" + path + "'", errno);
  ::madvise(addr, static_cast<size_t>(st.st_size), MADV_SEQUENTIAL);
  m.addr_ = addr;
  m.size_ = static_cast<size_t>(st.st_size);
  return m;
}

void MappedFile::DontNeed(size_t offset, size_t length) const {
  if (!addr_ || offset >= size_) return;
  long page = ::sysconf(_SC_PAGESIZE);
  size_t start = offset / static_cast<size_t>(page) * static_cast<size_t>(page);
  size_t end = std::min(size_, offset + length);
  if (end > start) ::madvise(static_cast<char*>(addr_) + start, end - start, MADV_DONTNEED);
}

namespace {

// A dotlock is stale when the process whose pid it holds is gone, or, when it
// holds no pid (other programs write empty dotlocks), when it is older than
// five minutes, as procmail's lockfile rule has it.
bool DotlockIsStale(const std::string& dot) {
  auto text = ReadPrefix(dot, 64);
  if (text.ok()) {
    char* end = nullptr;
    long pid = std::strtol(text->c_str(), &end, 10);
    if (end != text->c_str() && pid > 0) return ::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH;
  }
  struct stat st;
  return ::stat(dot.c_str(), &st) == 0 && ::time(nullptr) - st.st_mtime > 300;
}

}  // namespace

MailboxLock::MailboxLock(MailboxLock&& o) noexcept
    : dotlock_(std::move(o.dotlock_)), fd_(std::exchange(o.fd_, -1)) {
  o.dotlock_.clear();
}

MailboxLock& MailboxLock::operator=(MailboxLock&& o) noexcept {
  if (this != &o) {
    Release();
    dotlock_ = std::move(o.dotlock_);
    o.dotlock_.clear();
    fd_ = std::exchange(o.fd_, -1);
  }
  return *this;
}

MailboxLock::~MailboxLock() { Release(); }

Result<MailboxLock> MailboxLock::Acquire(const std::string& path, int fd) {
  MailboxLock lock;
  if (fd >= 0) {
    // An open-file-description lock: unlike a classic POSIX lock it is not
    // dropped when this process closes some other descriptor of the same file,
    // and a second sink in the same process conflicts with the first.
    struct flock fl = {};
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    fl.l_pid = 0;
    if (::fcntl(fd, F_OFD_SETLK, &fl) != 0) {
      if (errno == EACCES || errno == EAGAIN) {
        return Status::Busy("'" + path + "' is locked by another process (fcntl lock)");
      }
      return Status::FromErrno("fcntl lock '" + path + "'", errno);
    }
    lock.fd_ = fd;
  }
  std::string dot = path + ".lock";
  // Write the pid to a unique file, then link() it to the dotlock name: the
  // dotlock appears with its pid in it or not at all, even if we are killed.
  std::string tmp = dot + "." + std::to_string(::getpid()) + ".tmp";
  {
    int tfd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (tfd < 0) return Status::FromErrno("create dotlock '" + tmp + "'", errno);
    std::string pid = std::to_string(::getpid()) + "\n";
    bool wrote = ::write(tfd, pid.data(), pid.size()) == static_cast<ssize_t>(pid.size());
    ::close(tfd);
    if (!wrote) {
      ::unlink(tmp.c_str());
      return Status::IOError("cannot write dotlock '" + tmp + "'");
    }
  }
  int link_error = 0;
  for (int attempt = 0; attempt < 2; ++attempt) {
    link_error = ::link(tmp.c_str(), dot.c_str()) == 0 ? 0 : errno;
    if (link_error != EEXIST) break;
    if (attempt == 0 && DotlockIsStale(dot)) {
      ::unlink(dot.c_str());  // left by a process that died (kill -9, crash)
      continue;
    }
  }
  ::unlink(tmp.c_str());
  if (link_error == EEXIST) {
    return Status::Busy("'" + path + "' is locked by another process (dotlock '" + dot + "' exists)");
  }
  if (link_error != 0) return Status::FromErrno("create dotlock '" + dot + "'", link_error);
  lock.dotlock_ = dot;
  return lock;
}

void MailboxLock::Release() {
  if (!dotlock_.empty()) {
    ::unlink(dotlock_.c_str());
    dotlock_.clear();
  }
  if (fd_ >= 0) {
    struct flock fl = {};
    fl.l_type = F_UNLCK;
    fl.l_whence = SEEK_SET;
    fl.l_pid = 0;
    ::fcntl(fd_, F_OFD_SETLK, &fl);
    fd_ = -1;
  }
}

}  // namespace mbx::fs
