#include "formats/mbxz/mbxz.h"

#include <fcntl.h>
#include <unistd.h>
#include <zstd.h>

#include <boost/iostreams/device/array.hpp>
#include <boost/iostreams/device/file_descriptor.hpp>
#include <boost/iostreams/filter/zstd.hpp>
#include <boost/iostreams/filtering_stream.hpp>
#include <algorithm>
#include <cstring>
#include <map>

#include "engine/fs.h"

namespace mbx::mbxz {
namespace io = boost::iostreams;
namespace {

constexpr char kMagic[] = {'M', 'B', 'X', 'Z', 1};
constexpr int kLevel = 3;

void PutVarint(std::string* out, uint64_t v) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>((v & 0x7F) | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

void PutFixed64(std::string* out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}

void PutString(std::string* out, std::string_view s) {
  PutVarint(out, s.size());
  out->append(s);
}

// Reads from a decompressing stream; every getter fails on a short read.
class RecordReader {
 public:
  explicit RecordReader(std::istream& in) : in_(in) {}
  bool Byte(uint8_t* v) {
    int c = in_.get();
    if (c == EOF) return false;
    *v = static_cast<uint8_t>(c);
    return true;
  }
  bool Varint(uint64_t* v) {
    *v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      uint8_t b;
      if (!Byte(&b)) return false;
      *v |= static_cast<uint64_t>(b & 0x7F) << shift;
      if (!(b & 0x80)) return true;
    }
    return false;
  }
  bool Fixed64(uint64_t* v) {
    char buf[8];
    if (!in_.read(buf, 8)) return false;
    *v = 0;
    for (int i = 0; i < 8; ++i) *v |= static_cast<uint64_t>(static_cast<uint8_t>(buf[i])) << (8 * i);
    return true;
  }
  bool String(std::string* s, uint64_t max) {
    uint64_t n;
    if (!Varint(&n)) return false;
    if (n > max) {
      too_long_ = n;
      return false;
    }
    // Grows with the bytes actually read: a corrupt length must cost no more
    // memory than the stream holds (it is a truncation, not a 1 TB allocation).
    constexpr uint64_t kChunk = uint64_t{1} << 20;
    s->clear();
    while (s->size() < n) {
      const size_t at = s->size();
      const size_t step = static_cast<size_t>(std::min(kChunk, n - at));
      s->resize(at + step);
      if (!in_.read(s->data() + at, static_cast<std::streamsize>(step))) return false;
    }
    return true;
  }
  // The length the last String() refused for exceeding its limit, else 0.
  uint64_t too_long() const { return too_long_; }

 private:
  std::istream& in_;
  uint64_t too_long_ = 0;
};

// A bundle message larger than this is refused: no real message comes near
// it, and a zstd frame can expand a few MB into terabytes (a decompression bomb).
constexpr uint64_t kMaxMessageBytes = uint64_t{1} << 30;

class BundleSource : public MailboxSource {
 public:
  BundleSource(std::string path, fs::MappedFile map) : path_(std::move(path)), map_(std::move(map)) {}

  std::string Describe() const override { return "mbxz:" + path_; }

  Result<std::vector<FolderInfo>> ListFolders() override {
    BundleSource again(path_, fs::MappedFile());
    MBX_ASSIGN_OR_RETURN(again.map_, fs::MappedFile::Open(path_));
    std::map<std::string, FolderInfo> folders;
    folders[""] = FolderInfo{"", 0, 0};
    Message m;
    for (;;) {
      MBX_ASSIGN_OR_RETURN(bool more, again.Next(&m));
      if (!more) break;
      if (m.read_error) continue;
      // Parents first: make every ancestor exist.
      for (size_t slash = m.folder.find('/'); slash != std::string::npos; slash = m.folder.find('/', slash + 1)) {
        folders.try_emplace(m.folder.substr(0, slash), FolderInfo{m.folder.substr(0, slash), 0, 0});
      }
      auto& f = folders.try_emplace(m.folder, FolderInfo{m.folder, 0, 0}).first->second;
      f.messages++;
      f.bytes += m.mime.size();
    }
    std::vector<FolderInfo> out;
    for (auto& [_, f] : folders) out.push_back(std::move(f));
    return out;
  }

  Result<bool> Next(Message* out) override {
    for (;;) {
      if (!stream_) {
        if (done_) return false;
        MBX_ASSIGN_OR_RETURN(bool opened, OpenFrame());
        if (!opened) return cut_empty_ ? Truncated(out) : false;
      }
      RecordReader r(*stream_);
      uint8_t tag;
      if (!r.Byte(&tag)) return Truncated(out);
      if (tag == 'F') {
        uint64_t count;
        if (!r.Fixed64(&count)) return Truncated(out);
        if (count != in_frame_) {
          return Status::Corruption(Describe() + " frame " + std::to_string(frame_) + " says " +
                                    std::to_string(count) + " messages, holds " + std::to_string(in_frame_));
        }
        stream_.reset();
        continue;
      }
      if (tag != 'M') return Status::Corruption(Describe() + ": unknown record in frame " + std::to_string(frame_));
      *out = Message{};
      uint8_t flags;
      uint64_t delivered, modified;
      if (!r.String(&out->folder, 1 << 16) || !r.Byte(&flags) || !r.Fixed64(&delivered) || !r.Fixed64(&modified) ||
          !r.String(&out->envelope_sender, 1 << 16) || !r.String(&out->mime, kMaxMessageBytes)) {
        const uint64_t claimed = r.too_long();
        Result<bool> stop = Truncated(out);
        if (claimed != 0) {
          // Nothing after it can be found without reading it: the bundle stops here.
          out->origin = Describe() + " message " + std::to_string(index_ + 1);
          out->read_error = Status::Corruption(
              "a field claims " + std::to_string(claimed) + " bytes, more than the " +
              std::to_string(kMaxMessageBytes >> 20) +
              " MiB a bundle message may hold (corrupt, or a decompression bomb); "
              "later messages are not read");
        }
        return stop;
      }
      out->flags = flags;
      out->container_delivered = static_cast<UnixTime>(delivered);
      out->container_modified = static_cast<UnixTime>(modified);
      ++in_frame_;
      ++index_;
      out->origin = Describe() + " message " + std::to_string(index_);
      if (!WantFolder(out->folder)) continue;
      return true;
    }
  }

 private:
  // Starts decompressing the next zstd frame; false at the end of the file.
  // Empty frames are skipped in a loop: a file of nothing but empty frames
  // must not recurse once per frame.
  Result<bool> OpenFrame() {
    for (;;) {
      std::string_view data = map_.data();
      if (offset_ >= data.size()) {
        done_ = true;
        return false;
      }
      size_t size = ZSTD_findFrameCompressedSize(data.data() + offset_, data.size() - offset_);
      bool cut = ZSTD_isError(size);
      if (cut) {
        done_ = true;
        if (frame_ == 0) return Status::Corruption("'" + path_ + "' is not an mbxz bundle (" + ZSTD_getErrorName(size) + ")");
        // The last frame was cut short: read what it holds, then report the cut.
        size = data.size() - offset_;
      }
      stream_ = std::make_unique<io::filtering_istream>();
      stream_->push(io::zstd_decompressor());
      stream_->push(io::array_source(data.data() + offset_, size));
      stream_->exceptions(std::ios::goodbit);
      offset_ += size;
      ++frame_;
      in_frame_ = 0;
      char magic[sizeof kMagic];
      try {
        stream_->read(magic, sizeof magic);
        if (stream_->gcount() == 0 && cut) {
          cut_empty_ = true;  // nothing of the last frame survived the cut
          return false;
        }
        if (stream_->gcount() == 0) {
          // An empty frame (Boost's compressor may end a stream with one): skip it.
          stream_.reset();
          --frame_;
          continue;
        }
        if (stream_->gcount() != sizeof magic || std::memcmp(magic, kMagic, sizeof magic) != 0) {
          return Status::Corruption(Describe() + ": frame " + std::to_string(frame_) + " has no MBXZ header");
        }
      } catch (const std::exception& e) {
        return Status::Corruption(Describe() + ": frame " + std::to_string(frame_) + ": " + e.what());
      }
      return true;
    }
  }

  // The stream ended inside a frame: hand out one failed message naming the cut, then stop.
  Result<bool> Truncated(Message* out) {
    stream_.reset();
    cut_empty_ = false;
    done_ = true;
    offset_ = map_.data().size();
    *out = Message{};
    out->origin = Describe() + " after message " + std::to_string(index_);
    out->read_error = Status::Corruption("the bundle is truncated: frame " + std::to_string(frame_) +
                                         " ends before its end record; later messages are missing");
    return true;
  }

  std::string path_;
  fs::MappedFile map_;
  std::unique_ptr<io::filtering_istream> stream_;
  size_t offset_ = 0;
  uint64_t frame_ = 0, in_frame_ = 0, index_ = 0;
  bool done_ = false;
  bool cut_empty_ = false;
};

class BundleSink : public MailboxSink {
 public:
  BundleSink(std::string path, std::string tmp, fs::Fd fd, fs::MailboxLock lock, bool existed)
      : path_(std::move(path)), tmp_(std::move(tmp)), fd_(std::move(fd)), lock_(std::move(lock)),
        existed_(existed) {}
  ~BundleSink() override {
    if (!closed_) ::unlink(tmp_.c_str());
  }

  std::string Describe() const override { return "mbxz:" + path_; }

  Status ScanExisting(const std::function<Status(const ExistingMessage&)>& fn) override {
    if (!existed_) return Status::Ok();
    MBX_ASSIGN_OR_RETURN(auto src, OpenSource(path_));
    Message m;
    for (;;) {
      MBX_ASSIGN_OR_RETURN(bool more, src->Next(&m));
      if (!more) return Status::Ok();
      if (m.read_error) return m.read_error->WithContext("existing bundle");
      ExistingMessage e;
      e.folder = m.folder;
      e.head = m.mime;
      e.head_is_complete = true;
      MBX_RETURN_IF_ERROR(fn(e));
    }
  }

  Result<std::string> ReadExisting(uint64_t) override {
    return Status::Unsupported("bundle messages are handed over whole");
  }

  Status Stage(const Message& msg, std::string_view folder) override {
    auto mime = msg.Mime();
    if (!mime.ok()) return mime.status();
    staged_.push_back('M');
    PutString(&staged_, folder);
    staged_.push_back(static_cast<char>(msg.flags));
    PutFixed64(&staged_, static_cast<uint64_t>(msg.container_delivered));
    PutFixed64(&staged_, static_cast<uint64_t>(msg.container_modified));
    PutString(&staged_, msg.envelope_sender);
    PutString(&staged_, *mime);
    ++staged_count_;
    return Status::Ok();
  }

  Status Flush() override {
    if (staged_count_ == 0) return Status::Ok();
    MBX_RETURN_IF_ERROR(WriteFrame());
    return fs::FsyncFd(fd_.get(), tmp_);
  }

  void Rollback() override {
    staged_.clear();
    staged_count_ = 0;
  }

  Status Close() override {
    if (closed_) return Status::Ok();
    MBX_RETURN_IF_ERROR(Flush());
    if (!existed_ && frames_ == 0) MBX_RETURN_IF_ERROR(WriteFrame());  // an empty, valid bundle
    MBX_RETURN_IF_ERROR(fs::FsyncFd(fd_.get(), tmp_));
    if (frames_ > 0 || !existed_) {
      if (::rename(tmp_.c_str(), path_.c_str()) != 0) {
        return Status::FromErrno("rename '" + tmp_ + "' to '" + path_ + "'", errno);
      }
      MBX_RETURN_IF_ERROR(fs::FsyncDir(fs::Dirname(path_)));
    } else {
      ::unlink(tmp_.c_str());
    }
    closed_ = true;
    lock_.Release();
    return Status::Ok();
  }

 private:
  // One zstd frame: header, the staged records, the end record.
  Status WriteFrame() {
    std::string tail(1, 'F');
    PutFixed64(&tail, staged_count_);
    try {
      io::filtering_ostream out;
      out.push(io::zstd_compressor(io::zstd_params(kLevel)));
      out.push(io::file_descriptor_sink(fd_.get(), io::never_close_handle));
      out.exceptions(std::ios::badbit | std::ios::failbit);
      out.write(kMagic, sizeof kMagic);
      out.write(staged_.data(), static_cast<std::streamsize>(staged_.size()));
      out.write(tail.data(), static_cast<std::streamsize>(tail.size()));
      out.reset();  // ends the frame and writes it out
    } catch (const std::exception& e) {
      return Status::IOError("writing '" + tmp_ + "': " + e.what());
    }
    ++frames_;
    staged_.clear();
    staged_count_ = 0;
    return Status::Ok();
  }

  std::string path_, tmp_;
  fs::Fd fd_;
  fs::MailboxLock lock_;
  bool existed_;
  bool closed_ = false;
  std::string staged_;
  uint64_t staged_count_ = 0;
  uint64_t frames_ = 0;
};

}  // namespace

bool HasZstdMagic(const std::string& path) {
  auto head = fs::ReadPrefix(path, 4);
  return head.ok() && *head == std::string("\x28\xB5\x2F\xFD", 4);
}

Result<std::unique_ptr<MailboxSource>> OpenSource(const std::string& path) {
  MBX_ASSIGN_OR_RETURN(auto map, fs::MappedFile::Open(path));
  if (map.data().size() < 4 || map.data().substr(0, 4) != std::string_view("\x28\xB5\x2F\xFD", 4)) {
    return Status::InvalidArgument("'" + path + "' is not an mbxz bundle (no zstd frame at its start)");
  }
  return std::unique_ptr<MailboxSource>(new BundleSource(path, std::move(map)));
}

Result<std::unique_ptr<MailboxSink>> OpenSink(const std::string& path, const SinkOptions& opts) {
  bool existed = fs::Exists(path);
  if (!existed && !opts.create) return Status::NotFound("bundle '" + path + "' does not exist");
  if (existed && !HasZstdMagic(path)) {
    return Status::InvalidArgument("'" + path + "' exists and is not an mbxz bundle");
  }
  MBX_RETURN_IF_ERROR(fs::MakeDirs(fs::Dirname(path)));
  std::string tmp = path + ".tmp";
  MBX_ASSIGN_OR_RETURN(auto lock, fs::MailboxLock::Acquire(path, -1));  // PATH.lock
  MBX_ASSIGN_OR_RETURN(fs::Fd fd, fs::Open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644));
  if (existed) {
    // Keep the old frames: new batches are appended after them.
    MBX_RETURN_IF_ERROR(fs::CopyInto(path, fd.get(), tmp));
  }
  return std::unique_ptr<MailboxSink>(new BundleSink(path, tmp, std::move(fd), std::move(lock), existed));
}

}  // namespace mbx::mbxz
