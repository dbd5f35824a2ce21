#include "formats/pst/pst.h"

#include <libpff.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string_view>
#include <thread>
#include <vector>

#include "formats/pst/disk/disk.h"
#include "formats/pst/ltp/reader.h"
#include "formats/pst/mapi.h"
#include "formats/pst/mapi_to_mime.h"
#include "formats/pst/native_store.h"

namespace mbx::pst {
namespace {

// Owns a libpff_error_t; Out() hands libpff a fresh slot.
class Error {
 public:
  Error() = default;
  Error(const Error&) = delete;
  Error& operator=(const Error&) = delete;
  ~Error() { Clear(); }
  libpff_error_t** Out() {
    Clear();
    return &e_;
  }
  // The first line of libpff's message ("" when there is none).
  std::string Text() const {
    if (e_ == nullptr) return "";
    char buf[1024] = {};
    libpff_error_sprint(e_, buf, sizeof buf);
    std::string s(buf);
    size_t nl = s.find('\n');
    if (nl != std::string::npos) s.resize(nl);
    while (!s.empty() && (s.back() == '.' || s.back() == ' ')) s.pop_back();
    return s;
  }

 private:
  void Clear() {
    if (e_ != nullptr) libpff_error_free(&e_);
  }
  libpff_error_t* e_ = nullptr;
};

struct ItemDeleter {
  void operator()(libpff_item_t* p) const { libpff_item_free(&p, nullptr); }
};
using Item = std::unique_ptr<libpff_item_t, ItemDeleter>;

struct RecordSetDeleter {
  void operator()(libpff_record_set_t* p) const { libpff_record_set_free(&p, nullptr); }
};
struct RecordEntryDeleter {
  void operator()(libpff_record_entry_t* p) const { libpff_record_entry_free(&p, nullptr); }
};

std::string Quoted(std::string_view s) { return "'" + std::string(s) + "'"; }

// The name of a named property's record entry, through the store's
// name-to-id map; nullopt when libpff cannot resolve it.
std::optional<ltp::PropertyName> ReadPropertyName(libpff_record_entry_t* raw) {
  Error err;
  libpff_name_to_id_map_entry_t* entry = nullptr;
  if (libpff_record_entry_get_name_to_id_map_entry(raw, &entry, err.Out()) != 1 || entry == nullptr)
    return std::nullopt;
  // The entry belongs to libpff's map (the API has no free for it).
  ltp::PropertyName name;
  uint8_t guid[16] = {};
  if (libpff_name_to_id_map_entry_get_guid(entry, guid, sizeof guid, err.Out()) != 1)
    return std::nullopt;
  name.guid.assign(reinterpret_cast<const char*>(guid), sizeof guid);
  uint8_t type = 0;
  if (libpff_name_to_id_map_entry_get_type(entry, &type, err.Out()) != 1) return std::nullopt;
  if (type == LIBPFF_NAME_TO_ID_MAP_ENTRY_TYPE_STRING) {
    // (libpff garbles surrogate pairs here, in the UTF-8 and the UTF-16 getter alike, and
    // gives no access to the raw name: a non-BMP character in a name comes out wrong.)
    size_t size = 0;
    if (libpff_name_to_id_map_entry_get_utf8_string_size(entry, &size, err.Out()) != 1 || size == 0)
      return std::nullopt;
    std::string s(size, '\0');
    if (libpff_name_to_id_map_entry_get_utf8_string(entry, reinterpret_cast<uint8_t*>(s.data()),
                                                    size, err.Out()) != 1)
      return std::nullopt;
    while (!s.empty() && s.back() == '\0') s.pop_back();
    name.is_string = true;
    name.name = std::move(s);
  } else {
    if (libpff_name_to_id_map_entry_get_number(entry, &name.lid, err.Out()) != 1)
      return std::nullopt;
  }
  return name;
}

// Copies one record set (a property bag) out of libpff. Entries libpff cannot
// read are left out; they never fail the object.
PropertyBag ReadRecordSet(libpff_record_set_t* set) {
  PropertyBag bag;
  Error err;
  int n = 0;
  if (libpff_record_set_get_number_of_entries(set, &n, err.Out()) != 1) return bag;
  for (int i = 0; i < n; ++i) {
    libpff_record_entry_t* raw = nullptr;
    if (libpff_record_set_get_entry_by_index(set, i, &raw, err.Out()) != 1 || raw == nullptr)
      continue;
    std::unique_ptr<libpff_record_entry_t, RecordEntryDeleter> entry(raw);
    uint32_t entry_type = 0;
    uint32_t value_type = 0;
    if (libpff_record_entry_get_entry_type(raw, &entry_type, err.Out()) != 1) continue;
    if (libpff_record_entry_get_value_type(raw, &value_type, err.Out()) != 1) continue;
    if (entry_type > 0xffff || value_type > 0xffff) continue;
    uint16_t id = static_cast<uint16_t>(entry_type);
    // Attachment contents are read through the attachment API, once.
    if (id == kPidAttachDataBin) continue;
    PropValue v;
    v.type = static_cast<uint16_t>(value_type);
    if (id >= 0x8000) v.name = ReadPropertyName(raw);
    if (v.type == kPtUnicode) {
      // Converted here from the raw UTF-16: libpff's own conversion (20180714)
      // garbles surrogate pairs, so emoji and other non-BMP text came out wrong.
      size_t size = 0;
      if (libpff_record_entry_get_data_size(raw, &size, err.Out()) != 1) continue;
      std::string utf16(size, '\0');
      if (size > 0 && libpff_record_entry_get_data(raw, reinterpret_cast<uint8_t*>(utf16.data()),
                                                   size, err.Out()) != 1) {
        continue;
      }
      v.data = disk::Utf16leToUtf8(utf16);
      while (!v.data.empty() && v.data.back() == '\0') v.data.pop_back();
    } else if (v.type == kPtString8) {
      size_t size = 0;
      if (libpff_record_entry_get_data_as_utf8_string_size(raw, &size, err.Out()) != 1) continue;
      std::string s(size, '\0');
      if (size > 0 && libpff_record_entry_get_data_as_utf8_string(
                          raw, reinterpret_cast<uint8_t*>(s.data()), size, err.Out()) != 1) {
        continue;
      }
      while (!s.empty() && s.back() == '\0') s.pop_back();
      v.data = std::move(s);
    } else if (v.type == kPtMvBinary) {
      // Split here from the raw packed bytes: libpff's multi-value API
      // (20180714) reports no values at all for some valid ones.
      size_t size = 0;
      if (libpff_record_entry_get_data_size(raw, &size, err.Out()) != 1) continue;
      std::string packed(size, '\0');
      if (size > 0 && libpff_record_entry_get_data(raw, reinterpret_cast<uint8_t*>(packed.data()),
                                                   size, err.Out()) != 1) {
        continue;
      }
      auto values = ltp::DecodeMultiValue(v.type, packed);
      if (!values.ok()) continue;
      v.values = std::move(values).value();
    } else {
      size_t size = 0;
      if (libpff_record_entry_get_data_size(raw, &size, err.Out()) != 1) continue;
      v.data.resize(size);
      if (size > 0 && libpff_record_entry_get_data(raw, reinterpret_cast<uint8_t*>(v.data.data()),
                                                   size, err.Out()) != 1) {
        continue;
      }
    }
    bag.Set(id, std::move(v));
  }
  return bag;
}

// The properties of record set `index` of `item` (0: the object's own).
Result<PropertyBag> ReadProps(libpff_item_t* item, int index) {
  Error err;
  libpff_record_set_t* raw = nullptr;
  if (libpff_item_get_record_set_by_index(item, index, &raw, err.Out()) != 1 || raw == nullptr) {
    return Status::Corruption("cannot read its properties: " + err.Text());
  }
  std::unique_ptr<libpff_record_set_t, RecordSetDeleter> set(raw);
  return ReadRecordSet(raw);
}

uint32_t ItemId(libpff_item_t* item) {
  Error err;
  uint32_t id = 0;
  libpff_item_get_identifier(item, &id, err.Out());
  return id;
}

constexpr int kMaxEmbeddingDepth = 16;

// Copies a message with its recipients and attachments (embedded messages
// recursively) out of libpff.
Result<MapiMessage> ReadMessage(libpff_item_t* item, int depth) {
  MapiMessage m;
  MBX_ASSIGN_OR_RETURN(m.props, ReadProps(item, 0));
  Error err;

  libpff_item_t* rec_raw = nullptr;
  int r = libpff_message_get_recipients(item, &rec_raw, err.Out());
  if (r == -1) return Status::Corruption("cannot read its recipient table: " + err.Text());
  if (r == 1 && rec_raw != nullptr) {
    Item recipients(rec_raw);
    int sets = 0;
    if (libpff_item_get_number_of_record_sets(rec_raw, &sets, err.Out()) != 1) {
      return Status::Corruption("cannot read its recipient table: " + err.Text());
    }
    for (int i = 0; i < sets; ++i) {
      MBX_ASSIGN_OR_RETURN(PropertyBag bag, ReadProps(rec_raw, i));
      m.recipients.push_back(std::move(bag));
    }
  }

  int count = 0;
  if (libpff_message_get_number_of_attachments(item, &count, err.Out()) != 1) {
    return Status::Corruption("cannot read its attachment table: " + err.Text());
  }
  // The attachment table's columns, for a copy to keep (MapiAttachment).
  std::vector<uint32_t> columns;
  if (count > 0) {
    libpff_item_t* table_raw = nullptr;
    if (libpff_message_get_attachments(item, &table_raw, err.Out()) == 1 && table_raw != nullptr) {
      Item table(table_raw);
      libpff_record_set_t* set_raw = nullptr;
      if (libpff_item_get_record_set_by_index(table_raw, 0, &set_raw, err.Out()) == 1 &&
          set_raw != nullptr) {
        std::unique_ptr<libpff_record_set_t, RecordSetDeleter> set(set_raw);
        int n = 0;
        if (libpff_record_set_get_number_of_entries(set_raw, &n, err.Out()) != 1) n = 0;
        for (int i = 0; i < n; ++i) {
          libpff_record_entry_t* e_raw = nullptr;
          if (libpff_record_set_get_entry_by_index(set_raw, i, &e_raw, err.Out()) != 1 ||
              e_raw == nullptr)
            continue;
          std::unique_ptr<libpff_record_entry_t, RecordEntryDeleter> e(e_raw);
          uint32_t entry_type = 0, value_type = 0;
          if (libpff_record_entry_get_entry_type(e_raw, &entry_type, err.Out()) == 1 &&
              libpff_record_entry_get_value_type(e_raw, &value_type, err.Out()) == 1 &&
              entry_type < 0x8000)
            columns.push_back(entry_type << 16 | value_type);
        }
      }
    }
    // Without them (an error above), the copy has the template's columns.
  }
  for (int i = 0; i < count; ++i) {
    std::string which = "attachment " + std::to_string(i + 1);
    libpff_item_t* att_raw = nullptr;
    if (libpff_message_get_attachment(item, i, &att_raw, err.Out()) != 1 || att_raw == nullptr) {
      return Status::Corruption("cannot read " + which + ": " + err.Text());
    }
    Item att(att_raw);
    MapiAttachment a;
    a.table_columns = columns;
    auto props = ReadProps(att_raw, 0);
    if (!props.ok()) return props.status().WithContext(which);
    a.props = std::move(props).value();
    int type = 0;
    if (libpff_attachment_get_type(att_raw, &type, err.Out()) != 1) {
      return Status::Corruption("cannot read the type of " + which + ": " + err.Text());
    }
    if (type == LIBPFF_ATTACHMENT_TYPE_DATA) {
      size64_t size = 0;
      if (libpff_attachment_get_data_size(att_raw, &size, err.Out()) != 1) {
        return Status::Corruption("cannot read the size of " + which + ": " + err.Text());
      }
      a.data.resize(size);
      size_t done = 0;
      while (done < a.data.size()) {
        ssize_t got = libpff_attachment_data_read_buffer(
            att_raw, reinterpret_cast<uint8_t*>(a.data.data() + done), a.data.size() - done,
            err.Out());
        if (got <= 0)
          return Status::Corruption("cannot read the data of " + which + ": " + err.Text());
        done += static_cast<size_t>(got);
      }
    } else if (type == LIBPFF_ATTACHMENT_TYPE_ITEM) {
      if (depth >= kMaxEmbeddingDepth)
        return Status::Corruption("embedded messages nested too deeply");
      libpff_item_t* sub_raw = nullptr;
      if (libpff_attachment_get_item(att_raw, &sub_raw, err.Out()) != 1 || sub_raw == nullptr) {
        return Status::Corruption("cannot read the embedded message of " + which + ": " +
                                  err.Text());
      }
      Item sub(sub_raw);
      auto embedded = ReadMessage(sub_raw, depth + 1);
      if (!embedded.ok()) return embedded.status().WithContext("embedded message in " + which);
      a.embedded = std::make_unique<MapiMessage>(std::move(embedded).value());
    }
    m.attachments.push_back(std::move(a));
  }
  return m;
}

// Opens `path` read-only through libpff; nullptr and the reason on failure.
libpff_file_t* OpenLibpff(const std::string& path, std::string* why) {
  Error err;
  libpff_file_t* file = nullptr;
  if (libpff_file_initialize(&file, err.Out()) != 1) {
    *why = "cannot initialize libpff: " + err.Text();
    return nullptr;
  }
  if (libpff_file_open(file, path.c_str(), LIBPFF_OPEN_READ, err.Out()) != 1) {
    *why = err.Text();
    libpff_file_free(&file, nullptr);
    return nullptr;
  }
  return file;
}

void CloseLibpff(libpff_file_t* file) {
  libpff_file_close(file, nullptr);
  libpff_file_free(&file, nullptr);
}

// Reads one message by node id on one thread: nullopt when it finds no such
// node (the caller reads it then).
using MessageReader = std::function<std::optional<Result<MapiMessage>>(uint32_t nid)>;

// Reads messages ahead of Next() on helper threads, by node id. Each helper
// makes its own MessageReader (a libpff handle is never shared between
// threads; our own reader is shared, read-only). Next() submits messages in
// its order and takes them in that order, so what it returns does not depend
// on how many helpers there are. While it waits, Next()'s thread reads queued
// messages itself.
class ReadAhead {
 public:
  // `make_reader` runs on each helper; an empty reader means that helper reads nothing.
  ReadAhead(std::function<MessageReader()> make_reader, int threads) {
    for (int i = 0; i < threads; ++i)
      threads_.emplace_back([this, make_reader] { Run(make_reader); });
  }
  ~ReadAhead() {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    work_.notify_all();
    for (auto& t : threads_) t.join();
  }

  uint64_t Submit(uint32_t nid) {
    std::lock_guard lock(mu_);
    jobs_.push_back({next_ticket_, nid});
    work_.notify_one();
    return next_ticket_++;
  }

  // Waits until `ticket` is read and returns true with its message in *out
  // (nullopt: a helper found no item by that id, so the caller reads it).
  // Returns false with *job set when a message is still queued: the caller
  // reads that one and hands it back through Complete().
  bool Take(uint64_t ticket, std::optional<Result<MapiMessage>>* out, uint64_t* job) {
    std::unique_lock lock(mu_);
    done_cv_.wait(lock, [&] { return done_.count(ticket) > 0 || !jobs_.empty(); });
    auto it = done_.find(ticket);
    if (it == done_.end()) {
      *job = jobs_.front().ticket;
      jobs_.pop_front();
      return false;
    }
    *out = std::move(it->second);
    done_.erase(it);
    return true;
  }

  void Complete(uint64_t ticket, std::optional<Result<MapiMessage>> r) {
    {
      std::lock_guard lock(mu_);
      done_.emplace(ticket, std::move(r));
    }
    done_cv_.notify_all();
  }

 private:
  struct Job {
    uint64_t ticket;
    uint32_t nid;
  };

  void Run(const std::function<MessageReader()>& make_reader) {
    // Whatever a helper does not read, Next()'s thread reads.
    MessageReader read = make_reader();
    if (!read) return;
    for (;;) {
      Job job;
      {
        std::unique_lock lock(mu_);
        work_.wait(lock, [&] { return stop_ || !jobs_.empty(); });
        if (stop_) break;
        job = jobs_.front();
        jobs_.pop_front();
      }
      Complete(job.ticket, read(job.nid));
    }
  }

  std::mutex mu_;
  std::condition_variable work_, done_cv_;
  std::deque<Job> jobs_;
  std::map<uint64_t, std::optional<Result<MapiMessage>>> done_;
  uint64_t next_ticket_ = 0;
  bool stop_ = false;
  std::vector<std::thread> threads_;
};

// True when `now` is the file `opened` described: not replaced or written since.
bool SameFile(const struct stat& now, const struct stat& opened) {
  return now.st_dev == opened.st_dev && now.st_ino == opened.st_ino &&
         now.st_size == opened.st_size && now.st_mtim.tv_sec == opened.st_mtim.tv_sec &&
         now.st_mtim.tv_nsec == opened.st_mtim.tv_nsec;
}

// A message read by node id through a libpff handle: nullopt when libpff has no such item.
std::optional<Result<MapiMessage>> ReadByIdentifier(libpff_file_t* file, uint32_t nid) {
  Error err;
  libpff_item_t* raw = nullptr;
  if (libpff_file_get_item_by_identifier(file, nid, &raw, err.Out()) != 1 || raw == nullptr)
    return std::nullopt;
  Item item(raw);
  return ReadMessage(raw, 0);
}

// Each helper's own libpff handle on the file, if it is still the one opened.
std::function<MessageReader()> LibpffReaders(const std::string& path, const struct stat& opened) {
  return [path, opened]() -> MessageReader {
    struct stat now {};
    if (::stat(path.c_str(), &now) != 0 || !SameFile(now, opened)) return nullptr;
    std::string why;
    libpff_file_t* raw = OpenLibpff(path, &why);
    if (raw == nullptr) return nullptr;
    std::shared_ptr<libpff_file_t> file(raw, CloseLibpff);
    return [file](uint32_t nid) { return ReadByIdentifier(file.get(), nid); };
  };
}

class MapiNative : public NativeMessage {
 public:
  MapiNative(MapiMessage m, std::shared_ptr<const PropertyBag> folder)
      : m_(std::move(m)), folder_(std::move(folder)), size_hint_(EstimateSize(m_)) {}
  std::string_view Kind() const override { return "mapi"; }
  Result<std::string> ToMime() const override { return RenderMime(m_); }
  size_t SizeHint() const override { return size_hint_; }
  const MapiMessage& mapi() const { return m_; }
  const std::shared_ptr<const PropertyBag>& folder() const { return folder_; }

 private:
  // What the message holds in memory until it is committed: its property
  // bags (map nodes and values), the attachments, and the MIME rendered from
  // them (base64 adds a third). The pipeline's in-flight budget counts this,
  // so it must not undercount: a calendar item is mostly properties.
  static size_t BagSize(const PropertyBag& bag) {
    size_t n = 0;
    for (const auto& [id, v] : bag.all()) {
      n += 96 + v.data.size() + (v.name ? 64 + v.name->name.size() : 0);
      for (const auto& x : v.values) n += 32 + x.size();
    }
    return n;
  }
  static size_t EstimateSize(const MapiMessage& m) {
    // The bodies are there twice: as properties and in the MIME.
    size_t n = 4096 + 2 * BagSize(m.props);
    for (const auto& r : m.recipients) n += BagSize(r);
    for (const auto& a : m.attachments) {
      n += BagSize(a.props) + a.data.size() + a.data.size() * 4 / 3 +
           (a.embedded ? EstimateSize(*a.embedded) : 0);
    }
    return n;
  }
  MapiMessage m_;
  // The properties of the folder it came from, so a PST target can rebuild
  // the folder (container class, comment) when it creates it.
  std::shared_ptr<const PropertyBag> folder_;
  size_t size_hint_;
};

}  // namespace

const MapiMessage* MapiOf(const Message& msg) {
  const auto* native = dynamic_cast<const MapiNative*>(msg.native.get());
  return native == nullptr ? nullptr : &native->mapi();
}

std::shared_ptr<const PropertyBag> FolderPropsOf(const Message& msg) {
  const auto* native = dynamic_cast<const MapiNative*>(msg.native.get());
  return native == nullptr ? nullptr : native->folder();
}

namespace {

std::string FolderName(libpff_item_t* folder) {
  // The display name from the folder's own properties, which ReadRecordSet()
  // converts itself: libpff's name getters garble surrogate pairs (emoji).
  if (auto props = ReadProps(folder, 0); props.ok())
    if (auto name = props->String(kPidDisplayName)) return *name;
  Error err;
  size_t size = 0;
  if (libpff_folder_get_utf8_name_size(folder, &size, err.Out()) != 1 || size == 0) return "";
  std::string s(size, '\0');
  if (libpff_folder_get_utf8_name(folder, reinterpret_cast<uint8_t*>(s.data()), size, err.Out()) !=
      1)
    return "";
  while (!s.empty() && s.back() == '\0') s.pop_back();
  return s;
}

// The node id an entry ID names: its last four bytes ([MS-PST] 2.4.3.3).
std::optional<uint32_t> EntryIdNid(std::string_view eid) {
  if (eid.size() < 24) return std::nullopt;
  const auto* p = reinterpret_cast<const unsigned char*>(eid.data() + eid.size() - 4);
  return p[0] | (p[1] << 8) | (p[2] << 16) | (static_cast<uint32_t>(p[3]) << 24);
}

enum class Role { kNone, kInbox, kSent, kTrash, kDrafts, kJunk };

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  return out;
}

Role RoleByName(std::string_view name) {
  std::string n = Lower(name);
  static constexpr std::pair<std::string_view, Role> kNames[] = {
      {"inbox", Role::kInbox},
      {"posteingang", Role::kInbox},
      {"boîte de réception", Role::kInbox},
      {"bandeja de entrada", Role::kInbox},
      {"posta in arrivo", Role::kInbox},
      {"postvak in", Role::kInbox},
      {"inkorgen", Role::kInbox},
      {"caixa de entrada", Role::kInbox},
      {"sent items", Role::kSent},
      {"sent", Role::kSent},
      {"sent mail", Role::kSent},
      {"deleted items", Role::kTrash},
      {"trash", Role::kTrash},
      {"drafts", Role::kDrafts},
      {"junk e-mail", Role::kJunk},
      {"junk email", Role::kJunk},
      {"junk", Role::kJunk},
      {"spam", Role::kJunk},
  };
  for (const auto& [k, r] : kNames) {
    if (k == n) return r;
  }
  return Role::kNone;
}

std::string_view RolePath(Role r) {
  switch (r) {
    case Role::kInbox:
      return "";
    case Role::kSent:
      return "Sent";
    case Role::kTrash:
      return "Trash";
    case Role::kDrafts:
      return "Drafts";
    case Role::kJunk:
      return "Junk";
    case Role::kNone:
      break;
  }
  return "";
}

// The folder tree of a store as the walk sees it: libpff items, or node ids
// of our own reader.
template <class Node>
class FolderTree {
 public:
  virtual ~FolderTree() = default;
  virtual std::optional<Node> Root() = 0;
  virtual std::optional<PropertyBag> StoreProps() = 0;
  // A folder's own properties; empty when they cannot be read.
  virtual PropertyBag Props(const Node& folder) = 0;
  virtual std::string Name(const Node& folder) = 0;
  virtual std::vector<Node> SubFolders(const Node& folder) = 0;
  virtual uint32_t Id(const Node& folder) = 0;
};

template <class Node>
struct WalkedFolder {
  std::string path;
  Node node;
  bool ipm_root = false;  // the top of the store: its path "" is the Inbox's
  // Outside the mailbox's folders (a store path, kStoreFolderPrefix): only
  // its associated (FAI) items are offered.
  bool fai_only = false;
};

// The folders a source offers, in walk order: the top of the information
// store first (when it holds messages of its own), then the Inbox, then every
// other folder depth first, special folders under their role's path, search
// folders left out. With `store_folders` (--associated) also, for their FAI
// only, the top itself and the folders beside it (Common Views, Finder,
// Shortcuts...), under store paths ("/IPM_SUBTREE", "/IPM_COMMON_VIEWS").
template <class Node>
class FolderWalk {
 public:
  FolderWalk(FolderTree<Node>& tree, bool store_folders)
      : tree_(tree), store_folders_(store_folders) {}

  Result<std::vector<WalkedFolder<Node>>> Run(const std::function<int(const Node&)>& own_messages) {
    std::optional<Node> root = tree_.Root();
    if (!root) return Status::Corruption("cannot read the root folder");

    // Role entry IDs: Sent Items and Deleted Items on the message store;
    // Drafts and Junk on the root folder (and the Inbox, which has no entry
    // ID there, so it is found by name).
    std::optional<uint32_t> ipm_nid;
    if (std::optional<PropertyBag> props = tree_.StoreProps()) {
      if (auto b = props->Bytes(0x35e0)) ipm_nid = EntryIdNid(*b);
      if (auto b = props->Bytes(0x35e3)) AddRole(EntryIdNid(*b), Role::kTrash);
      if (auto b = props->Bytes(0x35e4)) AddRole(EntryIdNid(*b), Role::kSent);
      if (auto b = props->Bytes(0x35e6)) common_views_nid_ = EntryIdNid(*b);
      if (auto b = props->Bytes(0x35e7)) finder_nid_ = EntryIdNid(*b);
    }
    CollectRoleIds(*root);

    std::optional<Node> ipm = ipm_nid ? FindFolder(*root, *ipm_nid, 0) : std::nullopt;
    if (!ipm) ipm = FindByName(*root, 0);
    if (!ipm) ipm = root;
    CollectRoleIds(*ipm);

    if (own_messages(*ipm) > 0) out_.push_back({"", *ipm, true});
    std::vector<std::pair<Node, Role>> kids;
    for (Node& child : tree_.SubFolders(*ipm)) {
      const uint32_t id = tree_.Id(child);
      Role role = Role::kNone;
      auto it = std::find_if(role_ids_.begin(), role_ids_.end(),
                             [&](const auto& p) { return p.first == id; });
      if (it != role_ids_.end()) role = it->second;
      if (role == Role::kNone) role = RoleByName(tree_.Name(child));
      kids.emplace_back(std::move(child), role);
    }
    // Only one folder may take each role (the first, by entry ID before name).
    std::vector<Role> taken;
    for (auto& [child, role] : kids) {
      if (role != Role::kNone && std::find(taken.begin(), taken.end(), role) != taken.end())
        role = Role::kNone;
      if (role != Role::kNone) taken.push_back(role);
    }
    for (auto& [child, role] : kids) {
      if (role == Role::kInbox) out_.push_back({"", child, false});
    }
    for (auto& [child, role] : kids) {
      if (IsSearchFolder(child)) continue;
      if (role == Role::kInbox) {
        for (const Node& sub : tree_.SubFolders(child)) Walk(sub, "INBOX/");
      } else if (role != Role::kNone) {
        AddFolder(child, std::string(RolePath(role)));
      } else {
        Walk(child, "");
      }
    }
    if (store_folders_ && tree_.Id(*ipm) != tree_.Id(*root)) WalkStoreFolders(*root, *ipm);
    return std::move(out_);
  }

 private:
  void AddRole(std::optional<uint32_t> nid, Role r) {
    if (nid) role_ids_.emplace_back(*nid, r);
  }

  // The top of the IPM subtree and the folders beside it (its parent's other
  // children: the root of a PST, "Root - Mailbox" of an OST), FAI only. The
  // ones every store has go by their role, so that they land in the target's
  // own: Outlook's names differ between PSTs and OSTs.
  void WalkStoreFolders(const Node& root, const Node& ipm) {
    const uint32_t ipm_id = tree_.Id(ipm);
    std::optional<Node> parent = ParentOf(root, ipm_id, 0);
    if (!parent) return;
    for (const Node& child : tree_.SubFolders(*parent)) {
      const uint32_t id = tree_.Id(child);
      std::string name = tree_.Name(child);
      std::string component;
      if (id == ipm_id) {
        component = std::string(kStoreIpmSubtree);
      } else if (id == common_views_nid_ || name == "IPM_COMMON_VIEWS" || name == "Common Views") {
        component = std::string(kStoreCommonViews);
      } else if (id == finder_nid_ || name == "Finder" || name == "Search Root") {
        component = std::string(kStoreSearchRoot);
      } else if (IsSearchFolder(child, /*fai_only=*/true)) {
        continue;  // a search folder's contents are other folders' messages
      } else {
        component = FolderComponent(std::move(name));
      }
      const std::string path = std::string(kStoreFolderPrefix) + component;
      if (id == ipm_id) {
        out_.push_back({path, child, false, true});  // its subfolders are the mailbox's
      } else {
        AddFolder(child, path, /*fai_only=*/true);
      }
    }
  }

  std::optional<Node> ParentOf(const Node& f, uint32_t nid, int depth) {
    if (depth > 3) return std::nullopt;
    for (const Node& c : tree_.SubFolders(f)) {
      if (tree_.Id(c) == nid) return f;
      if (auto hit = ParentOf(c, nid, depth + 1)) return hit;
    }
    return std::nullopt;
  }

  static constexpr uint32_t kNidTypeSearch = 0x03;  // NID_TYPE_SEARCH_FOLDER

  void CollectRoleIds(const Node& folder) {
    PropertyBag props = tree_.Props(folder);
    if (auto b = props.Bytes(0x36d7))
      AddRole(EntryIdNid(*b), Role::kDrafts);       // PR_IPM_DRAFTS_ENTRYID
    if (const PropValue* v = props.Find(0x36d8)) {  // PR_ADDITIONAL_REN_ENTRYIDS
      if (v->values.size() > 4) AddRole(EntryIdNid(v->values[4]), Role::kJunk);
    }
  }

  // By PR_FOLDER_TYPE == FOLDER_SEARCH; outside the mailbox's folders
  // (`fai_only`) also by its node type, as the spam search folder of a PST's
  // root has no folder type.
  bool IsSearchFolder(const Node& folder, bool fai_only = false) {
    if (fai_only && (tree_.Id(folder) & 0x1F) == kNidTypeSearch) return true;
    return tree_.Props(folder).Int(0x3601).value_or(1) == 2;
  }

  std::optional<Node> FindFolder(const Node& f, uint32_t nid, int depth) {
    if (tree_.Id(f) == nid) return f;
    if (depth > 3) return std::nullopt;
    for (const Node& c : tree_.SubFolders(f)) {
      if (auto hit = FindFolder(c, nid, depth + 1)) return hit;
    }
    return std::nullopt;
  }

  std::optional<Node> FindByName(const Node& f, int depth) {
    if (depth > 2) return std::nullopt;
    const std::vector<Node> subs = tree_.SubFolders(f);
    for (const Node& c : subs) {
      std::string n = tree_.Name(c);
      if (n == "Top of Personal Folders" || n == "Top of Outlook data file" || n == "IPM_SUBTREE" ||
          n == "Top of Information Store") {
        return c;
      }
    }
    for (const Node& c : subs) {
      if (tree_.Name(c) == "Root - Mailbox") {
        if (auto hit = FindByName(c, depth + 1)) return hit;
      }
    }
    return std::nullopt;
  }

  // `fai_only`: a store folder and its subfolders (WalkStoreFolders).
  void AddFolder(const Node& f, const std::string& path, bool fai_only = false) {
    out_.push_back({path, f, false, fai_only});
    for (const Node& sub : tree_.SubFolders(f)) Walk(sub, path + "/", fai_only);
  }

  void Walk(const Node& f, const std::string& prefix, bool fai_only = false) {
    if (IsSearchFolder(f, fai_only)) return;
    AddFolder(f, prefix + FolderComponent(tree_.Name(f)), fai_only);
  }

  FolderTree<Node>& tree_;
  bool store_folders_;
  std::optional<uint32_t> common_views_nid_, finder_nid_;
  std::vector<std::pair<uint32_t, Role>> role_ids_;
  std::vector<WalkedFolder<Node>> out_;
};

using LibpffNode = std::shared_ptr<libpff_item_t>;

class LibpffTree : public FolderTree<LibpffNode> {
 public:
  explicit LibpffTree(libpff_file_t* file) : file_(file) {}
  std::optional<LibpffNode> Root() override {
    Error err;
    libpff_item_t* raw = nullptr;
    if (libpff_file_get_root_folder(file_, &raw, err.Out()) != 1 || raw == nullptr)
      return std::nullopt;
    return LibpffNode(raw, ItemDeleter());
  }
  std::optional<PropertyBag> StoreProps() override {
    Error err;
    libpff_item_t* raw = nullptr;
    if (libpff_file_get_message_store(file_, &raw, err.Out()) != 1 || raw == nullptr)
      return std::nullopt;
    Item store(raw);
    auto props = ReadProps(raw, 0);
    if (!props.ok()) return std::nullopt;
    return std::move(props).value();
  }
  PropertyBag Props(const LibpffNode& f) override {
    auto props = ReadProps(f.get(), 0);
    return props.ok() ? std::move(props).value() : PropertyBag();
  }
  std::string Name(const LibpffNode& f) override { return FolderName(f.get()); }
  std::vector<LibpffNode> SubFolders(const LibpffNode& folder) override {
    std::vector<LibpffNode> out;
    Error err;
    int n = 0;
    if (libpff_folder_get_number_of_sub_folders(folder.get(), &n, err.Out()) != 1) return out;
    for (int i = 0; i < n; ++i) {
      libpff_item_t* raw = nullptr;
      if (libpff_folder_get_sub_folder(folder.get(), i, &raw, err.Out()) == 1 && raw != nullptr)
        out.emplace_back(raw, ItemDeleter());
    }
    return out;
  }
  uint32_t Id(const LibpffNode& f) override { return ItemId(f.get()); }

 private:
  libpff_file_t* file_;
};

class NativeTree : public FolderTree<uint32_t> {
 public:
  explicit NativeTree(const native::Store& store) : store_(store) {}
  std::optional<uint32_t> Root() override {
    if (!store_.Has(disk::kNidRootFolder)) return std::nullopt;
    return disk::kNidRootFolder;
  }
  std::optional<PropertyBag> StoreProps() override {
    auto props = store_.ReadProps(disk::kNidMessageStore);
    if (!props.ok()) return std::nullopt;
    return std::move(props).value();
  }
  // Read once: the walk asks for a folder's properties several times (name,
  // folder type, role entry IDs) and the source keeps them.
  PropertyBag Props(const uint32_t& nid) override {
    auto it = props_.find(nid);
    if (it == props_.end()) {
      auto props = store_.ReadProps(nid);
      it = props_.emplace(nid, props.ok() ? std::move(props).value() : PropertyBag()).first;
    }
    return it->second;
  }
  std::string Name(const uint32_t& nid) override { return Props(nid).StringOr(kPidDisplayName); }
  std::vector<uint32_t> SubFolders(const uint32_t& nid) override {
    return store_.Children(nid, disk::kNidTypeNormalFolder);
  }
  uint32_t Id(const uint32_t& nid) override { return nid; }

 private:
  const native::Store& store_;
  std::map<uint32_t, PropertyBag> props_;
};

struct FolderEntry {
  std::string path;
  std::shared_ptr<libpff_item_t> item;  // read through libpff
  std::vector<uint32_t> message_nids;   // read through our own reader
  std::vector<uint32_t> fai_nids;
  uint32_t id = 0;
  int messages = 0;
  int associated = 0;     // FAI items (libpff's sub associated contents)
  bool ipm_root = false;  // the top of the store: its path "" is the Inbox's
  bool fai_only = false;  // a store folder (WalkedFolder::fai_only): no messages
  std::shared_ptr<const PropertyBag> props;
};

// NID types ([MS-PST] 2.2.2.1) of what --recover-deleted offers.
constexpr uint32_t kNidTypeNormalMessage = 0x04;
constexpr uint32_t kNidTypeAssocMessage = 0x08;

// An item libpff recovered or found orphaned, offered in kRecoveredFolder.
struct RecoveredEntry {
  std::shared_ptr<libpff_item_t> item;
  uint32_t id = 0;
  bool orphan = false;
};

// A PST source over one of two readers: our own (native::Store) for the
// Unicode PSTs and OSTs it reads, libpff for the rest (ANSI files, deleted-item
// recovery). With our own reader, a message it cannot read is read again
// through libpff before it counts as failed.
class PstSourceImpl : public MailboxSource {
 public:
  PstSourceImpl(std::string path, libpff_file_t* file, std::shared_ptr<const native::Store> store,
                PstSourceOptions opts)
      : path_(std::move(path)), file_(file), store_(std::move(store)), opts_(opts) {}
  ~PstSourceImpl() override {
    read_ahead_.reset();
    ahead_.clear();
    folders_.clear();
    recovered_.clear();
    if (file_ != nullptr) CloseLibpff(file_);
  }

  std::string Describe() const override { return "pst:" + path_; }

  // Archive mode rewrites a PST (never an OST: Outlook's cache of a server
  // mailbox is not ours to change) without the archived messages.
  bool CanRemoveMessages() const override { return !is_ost_; }

  Status RemoveMessages(const std::vector<uint64_t>& tokens,
                        const std::function<void(uint64_t, std::string)>& kept) override {
    struct stat st {};
    if (::stat(path_.c_str(), &st) != 0) return Status::FromErrno("stat '" + path_ + "'", errno);
    if (!SameFile(st, opened_)) {
      return Status::Busy("PST " + Quoted(path_) +
                          " changed since it was read (is Outlook using it?); nothing was removed");
    }
    return RewriteWithout(path_, tokens, kept);
  }

  // What the file was when opened, to notice a change before rewriting it.
  void Opened(const struct stat& st, bool is_ost) {
    opened_ = st;
    is_ost_ = is_ost;
  }

  bool native() const { return store_ != nullptr; }

  Status Load() {
    if (store_) {
      NativeTree tree(*store_);
      auto walked = FolderWalk<uint32_t>(tree, opts_.associated).Run([&](const uint32_t& nid) {
        return static_cast<int>(store_->Children(nid, kNidTypeNormalMessage).size());
      });
      if (!walked.ok()) return walked.status().WithContext("pst " + Quoted(path_));
      for (auto& w : *walked) {
        FolderEntry e;
        e.path = std::move(w.path);
        e.id = w.node;
        e.ipm_root = w.ipm_root;
        e.fai_only = w.fai_only;
        if (!w.fai_only) e.message_nids = store_->Children(w.node, kNidTypeNormalMessage);
        e.fai_nids = store_->Children(w.node, kNidTypeAssocMessage);
        e.messages = static_cast<int>(e.message_nids.size());
        e.associated = static_cast<int>(e.fai_nids.size());
        e.props = std::make_shared<const PropertyBag>(tree.Props(w.node));
        folders_.push_back(std::move(e));
      }
      return Status::Ok();
    }
    LibpffTree tree(file_);
    auto walked = FolderWalk<LibpffNode>(tree, opts_.associated).Run([](const LibpffNode& f) {
      return Count(f.get());
    });
    if (!walked.ok()) return walked.status().WithContext("pst " + Quoted(path_));
    for (auto& w : *walked) {
      FolderEntry e;
      e.path = std::move(w.path);
      e.item = w.node;
      e.id = ItemId(w.node.get());
      e.ipm_root = w.ipm_root;
      e.fai_only = w.fai_only;
      e.messages = w.fai_only ? 0 : Count(w.node.get());
      Error err;
      int n = 0;
      if (libpff_folder_get_number_of_sub_associated_contents(w.node.get(), &n, err.Out()) == 1)
        e.associated = n;
      e.props = std::make_shared<const PropertyBag>(tree.Props(w.node));
      folders_.push_back(std::move(e));
    }
    if (opts_.recover_deleted) LoadRecovered();
    return Status::Ok();
  }

  std::vector<PstFolder> Folders() const {
    std::vector<PstFolder> out;
    for (const FolderEntry& f : folders_) {
      // Store folders only when they hold something: an OST has a dozen.
      if (!f.ipm_root && (!f.fai_only || f.associated > 0))
        out.push_back(PstFolder{f.path, f.id, f.props});
    }
    return out;
  }

  Result<std::vector<FolderInfo>> ListFolders() override {
    std::vector<FolderInfo> out;
    out.push_back(FolderInfo{"", 0, 0});
    for (const FolderEntry& f : folders_) {
      if (f.fai_only) continue;  // no messages, only FAI
      FolderInfo* info = nullptr;
      for (FolderInfo& o : out) {
        if (o.path == f.path) info = &o;
      }
      if (info == nullptr) {
        out.push_back(FolderInfo{f.path, 0, 0});
        info = &out.back();
      }
      info->messages += static_cast<uint64_t>(f.messages);
      info->bytes += FolderBytes(f);
    }
    if (!recovered_.empty() || recover_error_) {
      out.push_back(FolderInfo{std::string(kRecoveredFolder), recovered_.size(), 0});
    }
    return out;
  }

  void SetReadThreads(int threads) override { read_threads_ = threads; }

  Result<bool> Next(Message* out) override {
    if (!started_) Start();
    if (read_ahead_) {
      // Keep the helpers a window ahead of the message handed out.
      while (ahead_.size() < kReadAheadWindow * static_cast<size_t>(read_threads_)) {
        Pending p;
        if (!NextItem(&p)) break;
        if (p.nid != 0) p.ticket = read_ahead_->Submit(p.nid);
        ahead_.push_back(std::move(p));
      }
      if (!ahead_.empty()) {
        Pending p = std::move(ahead_.front());
        ahead_.pop_front();
        *out = std::move(p.msg);
        if (p.nid != 0) {
          std::optional<Result<MapiMessage>> read;
          uint64_t job = 0;
          while (!read_ahead_->Take(p.ticket, &read, &job)) {
            // Still queued: read it here (this one or one behind it).
            const Pending* queued = &p;
            for (const Pending& q : ahead_)
              if (q.nid != 0 && q.ticket == job) queued = &q;
            read_ahead_->Complete(job, ReadHere(*queued));
          }
          FillMessage(Settle(std::move(read), p), p.nid, std::move(p.folder_props), out);
        }
        return true;
      }
      read_ahead_.reset();  // every folder is read: the helpers (and their handles) go
    } else {
      Pending p;
      if (NextItem(&p)) {
        *out = std::move(p.msg);
        if (p.nid != 0) FillMessage(Settle(std::nullopt, p), p.nid, std::move(p.folder_props), out);
        return true;
      }
    }
    if (recover_error_) {
      *out = Message();
      out->folder = std::string(kRecoveredFolder);
      out->origin = "pst " + Quoted(path_) + " deleted items";
      out->read_error =
          Status::Corruption(out->origin + ": libpff cannot scan for them: " + *recover_error_);
      recover_error_.reset();
      return true;
    }
    while (recovered_next_ < recovered_.size()) {
      const RecoveredEntry& r = recovered_[recovered_next_++];
      if (!WantFolder(kRecoveredFolder)) continue;
      *out = Message();
      out->folder = std::string(kRecoveredFolder);
      out->associated = disk_nid_type(r.id) == kNidTypeAssocMessage;
      out->origin = "pst " + Quoted(path_) + (r.orphan ? " orphan item " : " recovered item ") +
                    std::to_string(r.id);
      FillMessage(ReadMessage(r.item.get(), 0), ItemId(r.item.get()), nullptr, out);
      return true;
    }
    return false;
  }

 private:
  static uint32_t disk_nid_type(uint32_t nid) { return nid & 0x1F; }

  // The next message of the selected folders, as far as the folder walk
  // knows it: its folder, origin and node id (0 when it could not be
  // opened: then a read error). False at the end.
  struct Pending {
    Message msg;
    uint32_t nid = 0;
    std::shared_ptr<libpff_item_t> item;  // the libpff reader's item
    std::shared_ptr<const PropertyBag> folder_props;
    uint64_t ticket = 0;  // its read-ahead job
  };
  bool NextItem(Pending* p) {
    while (folder_ < folders_.size()) {
      const FolderEntry& f = folders_[folder_];
      // FAI items follow the folder's messages; the store's top has none of
      // its own here (its path is the Inbox's).
      const int fai = opts_.associated && !f.ipm_root ? f.associated : 0;
      if (!WantFolder(f.path) || message_ >= f.messages + fai) {
        ++folder_;
        message_ = 0;
        continue;
      }
      int index = message_++;
      const bool assoc = index >= f.messages;
      if (assoc) index -= f.messages;
      Message& out = p->msg;
      out.folder = f.path;
      out.associated = assoc;
      std::string where = "pst " + Quoted(path_) + " folder " + Quoted(DisplayPath(f)) + " ";
      if (assoc) where += "associated (FAI) ";
      p->folder_props = f.props;
      if (store_) {
        p->nid = assoc ? f.fai_nids[static_cast<size_t>(index)]
                       : f.message_nids[static_cast<size_t>(index)];
        out.origin = where + "item " + std::to_string(p->nid);
        return true;
      }
      Error err;
      libpff_item_t* raw = nullptr;
      const int got =
          assoc ? libpff_folder_get_sub_associated_content(f.item.get(), index, &raw, err.Out())
                : libpff_folder_get_sub_message(f.item.get(), index, &raw, err.Out());
      if (got != 1 || raw == nullptr) {
        out.origin = where + "item #" + std::to_string(index + 1);
        out.read_error = Status::Corruption(out.origin + ": libpff cannot open it: " + err.Text());
        return true;
      }
      p->item.reset(raw, ItemDeleter());
      p->nid = ItemId(raw);
      out.origin = where + "item " + std::to_string(p->nid);
      return true;
    }
    return false;
  }

  // Reads a message on Next()'s thread, through the source's own reader.
  std::optional<Result<MapiMessage>> ReadHere(const Pending& p) {
    if (store_) return store_->ReadMessage(p.nid);
    if (p.item) return ReadMessage(p.item.get(), 0);
    return ReadByIdentifier(file_, p.nid);
  }

  // The message as read (nullopt: not read yet). A message our own reader
  // cannot read is read again through libpff; only when both fail does it
  // count as failed, with both reasons.
  Result<MapiMessage> Settle(std::optional<Result<MapiMessage>> read, const Pending& p) {
    if (!read) read = ReadHere(p);
    if (!read) return Status::Corruption("libpff finds no item " + std::to_string(p.nid));
    if (read->ok() || !store_) return std::move(*read);
    const Status ours = read->status();
    if (file_ == nullptr && !libpff_failed_) {
      std::string why;
      file_ = OpenLibpff(path_, &why);
      if (file_ == nullptr) {
        libpff_failed_ = true;
        libpff_why_ = why;
      }
    }
    if (file_ == nullptr)
      return Status::Corruption(ours.message() + "; libpff cannot open the file: " + libpff_why_);
    std::optional<Result<MapiMessage>> again = ReadByIdentifier(file_, p.nid);
    if (again && again->ok()) return std::move(*again);
    return Status::Corruption(ours.message() +
                              "; libpff: " + (again ? again->status().message() : "no such item"));
  }

  // Read-ahead pays for its helper threads only on files with more than a
  // few messages. --jobs N: N - 1 helpers and Next()'s own thread.
  static constexpr int kReadAheadMinMessages = 64;
  static constexpr size_t kReadAheadWindow = 4;  // messages per reading thread

  void Start() {
    started_ = true;
    if (read_threads_ < 2) return;
    int messages = 0;
    for (const FolderEntry& f : folders_) {
      if (WantFolder(f.path))
        messages += f.messages + (opts_.associated && !f.ipm_root ? f.associated : 0);
    }
    if (messages < kReadAheadMinMessages) return;
    std::function<MessageReader()> readers;
    if (store_) {
      readers = [store = store_]() -> MessageReader {
        return [store](uint32_t nid) { return std::optional(store->ReadMessage(nid)); };
      };
    } else {
      readers = LibpffReaders(path_, opened_);
    }
    read_ahead_ = std::make_unique<ReadAhead>(std::move(readers), read_threads_ - 1);
  }

  void FillMessage(Result<MapiMessage> m, uint32_t nid,
                   std::shared_ptr<const PropertyBag> folder_props, Message* out) {
    out->source_token = nid;
    if (!m.ok()) {
      out->read_error = m.status().WithContext(out->origin);
      return;
    }
    const PropertyBag& p = m->props;
    uint32_t mflags = static_cast<uint32_t>(p.Int(kPidMessageFlags).value_or(0));
    if (mflags & kMsgFlagRead) out->flags |= kFlagSeen | kFlagOld;
    if (mflags & kMsgFlagUnsent) out->flags |= kFlagDraft;
    if (p.Int(kPidFlagStatus).value_or(0) == 2) out->flags |= kFlagFlagged;
    int64_t verb = p.Int(0x1081).value_or(0);  // PR_LAST_VERB_EXECUTED
    if (verb == 102 || verb == 103) out->flags |= kFlagAnswered;
    if (verb == 104) out->flags |= kFlagForwarded;
    out->container_delivered = p.UnixTime(kPidDeliveryTime).value_or(0);
    out->container_modified = p.UnixTime(kPidLastModificationTime).value_or(0);
    out->native = std::make_shared<MapiNative>(std::move(m).value(), std::move(folder_props));
  }

  // What libpff recovers from unallocated space and its orphans: messages
  // only (by NID type: libpff also types a recovered contents table as an
  // e-mail), associated ones only with --associated.
  void LoadRecovered() {
    Error err;
    if (libpff_file_recover_items(file_, 0, err.Out()) != 1) {
      recover_error_ = err.Text();
    } else {
      int n = 0;
      if (libpff_file_get_number_of_recovered_items(file_, &n, err.Out()) == 1) {
        for (int i = 0; i < n; ++i) {
          libpff_item_t* raw = nullptr;
          if (libpff_file_get_recovered_item_by_index(file_, i, &raw, err.Out()) == 1 &&
              raw != nullptr)
            AddRecovered(std::shared_ptr<libpff_item_t>(raw, ItemDeleter()), false);
        }
      }
    }
    int n = 0;
    if (libpff_file_get_number_of_orphan_items(file_, &n, err.Out()) == 1) {
      for (int i = 0; i < n; ++i) {
        libpff_item_t* raw = nullptr;
        if (libpff_file_get_orphan_item_by_index(file_, i, &raw, err.Out()) == 1 && raw != nullptr)
          AddRecovered(std::shared_ptr<libpff_item_t>(raw, ItemDeleter()), true);
      }
    }
  }

  void AddRecovered(std::shared_ptr<libpff_item_t> item, bool orphan) {
    Error err;
    uint8_t type = 0;
    if (libpff_item_get_type(item.get(), &type, err.Out()) != 1) return;
    if (type == LIBPFF_ITEM_TYPE_FOLDER) return;
    const uint32_t id = ItemId(item.get());
    const uint32_t nid_type = disk_nid_type(id);
    if (nid_type != kNidTypeNormalMessage &&
        !(opts_.associated && nid_type == kNidTypeAssocMessage))
      return;
    recovered_.push_back(RecoveredEntry{std::move(item), id, orphan});
  }

  static int Count(libpff_item_t* folder) {
    Error err;
    int n = 0;
    if (libpff_folder_get_number_of_sub_messages(folder, &n, err.Out()) != 1) return 0;
    return n;
  }

  // The folder as Outlook names it, for messages ("Inbox", not "").
  std::string DisplayPath(const FolderEntry& f) const {
    if (!f.path.empty()) return f.path;
    std::string n = f.props ? f.props->StringOr(kPidDisplayName) : "";
    return n.empty() ? "(root)" : n;
  }

  uint64_t FolderBytes(const FolderEntry& f) {
    uint64_t total = 0;
    if (store_) {
      for (uint32_t nid : f.message_nids) {
        if (auto props = store_->ReadProps(nid); props.ok())
          total += static_cast<uint64_t>(props->Int(kPidMessageSize).value_or(0));
      }
      return total;
    }
    Error err;
    for (int i = 0; i < f.messages; ++i) {
      libpff_item_t* raw = nullptr;
      if (libpff_folder_get_sub_message(f.item.get(), i, &raw, err.Out()) != 1 || raw == nullptr)
        continue;
      Item item(raw);
      uint32_t size = 0;
      if (libpff_message_get_size(raw, &size, err.Out()) == 1) total += size;
    }
    return total;
  }

  std::string path_;
  struct stat opened_ {};
  bool is_ost_ = false;
  libpff_file_t* file_;                         // null with our own reader, until a fallback
  std::shared_ptr<const native::Store> store_;  // our own reader, when it reads the file
  bool libpff_failed_ = false;                  // a fallback found libpff cannot open it
  std::string libpff_why_;
  std::vector<FolderEntry> folders_;
  size_t folder_ = 0;
  int message_ = 0;
  PstSourceOptions opts_;
  int read_threads_ = 1;
  bool started_ = false;
  std::unique_ptr<ReadAhead> read_ahead_;  // with --jobs > 1 on a file worth it
  std::deque<Pending> ahead_;              // submitted to read_ahead_, in order
  std::vector<RecoveredEntry> recovered_;
  size_t recovered_next_ = 0;
  std::optional<std::string> recover_error_;  // libpff could not scan for deleted items
};

}  // namespace

std::string FolderComponent(std::string name) {
  for (char& c : name) {
    if (c == '/' || (static_cast<unsigned char>(c) < 32)) c = '_';
  }
  if (name.empty() || name == "." || name == "..") name = "_" + name + "_";
  return name;
}

bool HasPstSuffix(std::string_view path) {
  std::string lower(path.size() >= 4 ? path.substr(path.size() - 4) : path);
  for (char& c : lower) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  return lower == ".pst" || lower == ".ost";
}

bool HasPstMagic(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) return false;
  char magic[4] = {};
  size_t n = std::fread(magic, 1, 4, f);
  std::fclose(f);
  return n == 4 && std::memcmp(magic, "!BDN", 4) == 0;
}

std::vector<PstFolder> FoldersOf(MailboxSource* source) {
  const auto* pst = dynamic_cast<const PstSourceImpl*>(source);
  return pst == nullptr ? std::vector<PstFolder>() : pst->Folders();
}

Result<std::unique_ptr<MailboxSource>> OpenSource(const std::string& path,
                                                  const PstSourceOptions& opts) {
  FILE* probe = std::fopen(path.c_str(), "rb");
  if (probe == nullptr) return Status::FromErrno("open " + Quoted(path), errno);
  std::fclose(probe);
  if (!HasPstMagic(path)) {
    return Status::InvalidArgument(
        Quoted(path) + " is not a PST/OST file: it does not start with the signature !BDN");
  }
  // [MS-PST] 2.2.2.6: wMagicClient is "SM" in a PST, "SO" in an OST.
  char head[10] = {};
  struct stat st {};
  if (FILE* f = std::fopen(path.c_str(), "rb")) {
    if (std::fread(head, 1, sizeof head, f) != sizeof head) head[8] = 0;
    ::fstat(::fileno(f), &st);
    std::fclose(f);
  }
  const bool is_ost = !(head[8] == 'S' && head[9] == 'M');

  PstReader reader = opts.reader;
  if (reader == PstReader::kAuto) {
    // The escape hatch, and the benchmarks' way to compare the two readers.
    const char* env = std::getenv("MBXMERGE_PST_READER");
    if (env != nullptr && std::string_view(env) == "libpff") reader = PstReader::kLibpff;
  }
  // Our own reader unless libpff is asked for or needed (deleted-item
  // recovery is libpff's); a file it cannot read goes to libpff whole.
  if (reader != PstReader::kLibpff && !opts.recover_deleted) {
    Status why;
    auto store = native::Store::Open(path);
    if (store.ok()) {
      auto src = std::make_unique<PstSourceImpl>(path, nullptr, std::move(store).value(), opts);
      src->Opened(st, is_ost);
      why = src->Load();
      if (why.ok()) return std::unique_ptr<MailboxSource>(std::move(src));
    } else {
      why = store.status();
    }
    if (reader == PstReader::kNative) return why;
  }

  std::string why;
  libpff_file_t* file = OpenLibpff(path, &why);
  if (file == nullptr)
    return Status::InvalidArgument(Quoted(path) + " is not a PST/OST file libpff can open: " + why);
  auto src = std::make_unique<PstSourceImpl>(path, file, nullptr, opts);
  src->Opened(st, is_ost);
  MBX_RETURN_IF_ERROR(src->Load());
  return std::unique_ptr<MailboxSource>(std::move(src));
}

bool ReadsNatively(MailboxSource* source) {
  const auto* pst = dynamic_cast<const PstSourceImpl*>(source);
  return pst != nullptr && pst->native();
}

}  // namespace mbx::pst
