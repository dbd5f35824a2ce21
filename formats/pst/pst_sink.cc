// The PST sink: `merge --into NEW.pst`. Messages are converted when staged,
// written into a temporary store beside the target on Flush(), and the store
// is finished, fsynced and renamed over the target on Close(): a reader never
// sees a partial PST, and a run that dies leaves only the temporary file,
// which the next run replaces.
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <vector>

#include "engine/faultpoint.h"
#include "engine/fs.h"
#include "formats/pst/disk/disk.h"
#include "formats/pst/mapi.h"
#include "formats/pst/messaging/store_writer.h"
#include "formats/pst/mime_to_mapi.h"
#include "formats/pst/pst.h"

namespace mbx::pst {
namespace {

using messaging::SpecialFolder;
using messaging::StoreWriter;

std::vector<std::string> SplitPath(std::string_view folder) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (start <= folder.size()) {
    size_t slash = folder.find('/', start);
    if (slash == std::string_view::npos) slash = folder.size();
    if (slash > start) parts.emplace_back(folder.substr(start, slash - start));
    start = slash + 1;
  }
  return parts;
}

// Outlook's special folders a mailbox folder's first component maps to (and
// the path our PST source gives each back); Trash is Deleted Items.
struct Special {
  const char* key;
  const char* name;
  SpecialFolder role;
  const char* source_path;
};
constexpr Special kSpecial[] = {{"inbox", "Inbox", SpecialFolder::kInbox, ""},
                                {"sent", "Sent Items", SpecialFolder::kSentItems, "Sent"},
                                {"sent items", "Sent Items", SpecialFolder::kSentItems, "Sent"},
                                {"drafts", "Drafts", SpecialFolder::kDrafts, "Drafts"},
                                {"junk", "Junk E-mail", SpecialFolder::kJunk, "Junk"},
                                {"junk e-mail", "Junk E-mail", SpecialFolder::kJunk, "Junk"},
                                {"outbox", "Outbox", SpecialFolder::kOutbox, "Outbox"}};

// A folder name as the PST stores it and our PST source reads it back: through
// UTF-16 (invalid UTF-8 becomes U+FFFD) and FolderComponent() (no control
// bytes). Folders are created under this name, so that two source names that
// read back the same are one folder, not two with one dedupe scope.
std::string StoredComponent(const std::string& name) {
  return FolderComponent(disk::Utf16leToUtf8(disk::Utf8ToUtf16le(name)));
}

// The writer's folder for a store folder's first component that names a
// role (pst.h), else 0.
uint32_t StoreRoleFolder(std::string_view component) {
  if (component == kStoreIpmSubtree) return messaging::kNidIpmSubtree;
  if (component == kStoreCommonViews) return messaging::kNidCommonViews;
  if (component == kStoreSearchRoot) return messaging::kNidSearchRoot;
  return 0;
}

// About how many bytes a message in the writer's form holds.
size_t OutSize(const messaging::OutMessage& m) {
  size_t n = sizeof m;
  for (const auto& p : m.props) n += sizeof p + p.value.size();
  for (const auto& v : m.named) n += sizeof v + v.value.size();
  for (const auto& r : m.recipients)
    for (const auto& p : r) n += sizeof p + p.value.size();
  for (const auto& a : m.attachments) {
    n += sizeof a + a.data.size();
    for (const auto& p : a.props) n += sizeof p + p.value.size();
    if (a.embedded) n += OutSize(*a.embedded);
  }
  return n;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

// Where a mailbox folder goes in the store: under the special folder its
// first component names ("" is the Inbox; Trash is Deleted Items), else under
// the top of the store; `first` is the first component below that.
struct Placement {
  const Special* special = nullptr;
  bool trash = false;
  size_t first = 0;
};
Placement PlaceFolder(const std::vector<std::string>& parts) {
  const std::string top = parts.empty() ? "inbox" : Lower(parts[0]);
  if (top == "trash" || top == "deleted items") return {nullptr, true, 1};
  for (const auto& s : kSpecial) {
    if (top == s.key) return {&s, false, parts.empty() ? size_t{0} : size_t{1}};
  }
  return {};
}

class PstSink : public MailboxSink {
 public:
  PstSink(std::string path, std::string temp, std::unique_ptr<StoreWriter> store,
          std::unique_ptr<MailboxSource> existing, const PstSinkOptions& opts)
      : path_(std::move(path)),
        temp_(std::move(temp)),
        store_(std::move(store)),
        existing_(std::move(existing)),
        backup_(opts.backup),
        defer_(opts.defer_existing) {}

  // Archive mode of a PST source: these existing messages are left out.
  void Exclude(const std::vector<uint64_t>& nids) { skip_.insert(nids.begin(), nids.end()); }
  // Which of them were found (and so left out).
  const std::set<uint64_t>& Skipped() const { return skipped_; }

  bool CanReplace() const override { return true; }

  Status StageReplacing(const Message& msg, std::string_view folder, uint64_t existing) override {
    if (!defer_) {
      return Status::Unsupported(
          "PST " + Quoted() + " was opened without replace mode: its messages are copied already");
    }
    if (existing >= existing_nids_.size())
      return Status::InvalidArgument("PST " + Quoted() + ": no existing message " +
                                     std::to_string(existing));
    MBX_RETURN_IF_ERROR(Stage(msg, folder));
    staged_.back().replaces = existing_nids_[existing];
    return Status::Ok();
  }

  UnixTime ExistingModified(uint64_t existing) override {
    return existing < existing_modified_.size() ? existing_modified_[existing] : 0;
  }
  ~PstSink() override {
    if (!closed_) ::unlink(temp_.c_str());
  }

  std::string Describe() const override { return "pst:" + path_; }

  // Merging into an existing PST rewrites it: its folders and messages are
  // copied into the new store first (in this one pass, which also shows
  // them to the dedupe index), then the merged messages follow.
  Status ScanExisting(const std::function<Status(const ExistingMessage&)>& fn) override {
    return CopyExisting(&fn);
  }
  Result<std::string> ReadExisting(uint64_t) override {
    return Status::NotFound("existing PST messages are shown whole to ScanExisting");
  }

  // The path our PST source gives the folder FolderFor() makes: special
  // folders by role (the Inbox's subfolders under "INBOX/"), the others by
  // display name, one FolderComponent() each. (A new top folder that the
  // source maps by its English name, such as "Spam", may come back as its role.)
  std::string StoredFolderName(std::string_view folder) const override {
    const std::vector<std::string> parts = SplitPath(folder);
    if (IsStoreFolder(folder)) {
      std::string out(kStoreFolderPrefix);
      for (size_t i = 0; i < parts.size(); ++i) {
        if (i > 0) out += '/';
        out += i == 0 && StoreRoleFolder(parts[0]) != 0 ? parts[0] : StoredComponent(parts[i]);
      }
      return out;
    }
    const Placement at = PlaceFolder(parts);
    std::string out;
    if (at.trash) {
      out = "Trash";
    } else if (at.special != nullptr && at.special->role == SpecialFolder::kInbox) {
      out = parts.size() > 1 ? "INBOX" : "";
    } else if (at.special != nullptr) {
      out = at.special->source_path;
    }
    for (size_t i = at.first; i < parts.size(); ++i) {
      if (!out.empty()) out += '/';
      out += StoredComponent(parts[i]);
    }
    return out;
  }

  // A message from a PST is written from its properties.
  bool NeedsMime(const Message& msg) const override { return MapiOf(msg) == nullptr; }

  Status Convert(Message* msg) const override {
    MBX_ASSIGN_OR_RETURN(auto out, WriterForm(*msg));
    auto form = std::make_shared<Converted>();
    form->bytes = OutSize(out);
    form->out = std::move(out);
    msg->sink_form = std::move(form);
    return Status::Ok();
  }

  Status Stage(const Message& msg, std::string_view folder) override {
    if (broken_) return Status::IOError("PST " + Quoted() + " is unusable after an earlier error");
    std::shared_ptr<const messaging::OutMessage> out;
    if (const auto* form = dynamic_cast<const Converted*>(msg.sink_form.get())) {
      out = std::shared_ptr<const messaging::OutMessage>(msg.sink_form, &form->out);
    } else {
      MBX_ASSIGN_OR_RETURN(auto made, WriterForm(msg));
      out = std::make_shared<const messaging::OutMessage>(std::move(made));
    }
    // A message from a PST brings its folder's properties (container
    // class...) for a folder created for it. Store folders are for FAI only.
    if (!msg.associated) folder = MailboxFolderOf(folder);
    staged_.push_back(
        {std::string(folder), std::move(out), msg.associated, FolderPropsOf(msg), {}});
    return Status::Ok();
  }

  Status Flush() override {
    if (broken_) return Status::IOError("PST " + Quoted() + " is unusable after an earlier error");
    MBX_RETURN_IF_ERROR(CopyExisting(nullptr));
    for (auto& st : staged_) {
      if (st.replaces) skip_.insert(*st.replaces);
      auto nid = FolderFor(st.folder);
      Status s =
          nid.ok() && st.folder_props ? ApplyFolderProps(*nid, *st.folder_props) : nid.status();
      if (s.ok())
        s = st.associated ? store_->AddAssociatedMessage(*nid, *st.message).status()
                          : store_->AddMessage(*nid, *st.message).status();
      if (!s.ok()) {
        broken_ = true;
        staged_.clear();
        return s.WithContext("PST " + Quoted());
      }
    }
    staged_.clear();
    return Status::Ok();
  }

  void Rollback() override { staged_.clear(); }

  Status Close() override {
    if (closed_) return Status::Ok();
    MBX_RETURN_IF_ERROR(Flush());
    if (copy_at_close_) {
      // Replace mode: the existing messages now, minus those replaced.
      copy_at_close_ = false;
      MBX_ASSIGN_OR_RETURN(std::unique_ptr<MailboxSource> src, OpenExisting());
      MBX_RETURN_IF_ERROR(EachExisting(src.get(), nullptr, /*write=*/true));
    }
    MBX_CRASH_POINT("pst.close.before-finish");
    MBX_RETURN_IF_ERROR(store_->Finish().WithContext("PST " + Quoted()));
    MBX_CRASH_POINT("pst.close.after-finish");
    if (replacing_ && backup_) {
      // The previous file stays as PATH.bak (a hard link: the original is
      // never without a name); then the new one takes its place atomically.
      const std::string bak = path_ + ".bak";
      ::unlink(bak.c_str());
      if (::link(path_.c_str(), bak.c_str()) != 0)
        return Status::FromErrno("cannot keep '" + path_ + "' as '" + bak + "'", errno);
    }
    MBX_CRASH_POINT("pst.close.before-rename");
    if (::rename(temp_.c_str(), path_.c_str()) != 0)
      return Status::FromErrno("cannot rename '" + temp_ + "' to '" + path_ + "'", errno);
    MBX_CRASH_POINT("pst.close.after-rename");
    closed_ = true;
    return fs::FsyncDir(fs::Dirname(path_));
  }

 private:
  std::string Quoted() const { return "'" + path_ + "'"; }

  // The writer's form made by Convert(), kept alive by the message.
  struct Converted : SinkForm {
    messaging::OutMessage out;
    size_t bytes = 0;
    size_t SizeHint() const override { return bytes; }
  };

  // The writer's form of any message: a PST message keeps its properties;
  // any other is built from MIME.
  static Result<messaging::OutMessage> WriterForm(const Message& msg) {
    if (const MapiMessage* mapi = MapiOf(msg)) return OutFor(*mapi, msg.associated);
    if (msg.associated)
      return Status::Unsupported(msg.origin + ": an associated (FAI) item without its properties");
    return MimeToMapi(msg);
  }

  // The writer's form of a PST message. An FAI item without a search key
  // gets its identity as one, so the copy is recognized on the next run.
  static messaging::OutMessage OutFor(const MapiMessage& mapi, bool associated) {
    messaging::OutMessage out = MapiToOut(mapi);
    if (associated && !mapi.props.Has(0x300B))
      out.props.push_back(messaging::BinaryProp(0x300B, FaiIdentity(mapi)));
    return out;
  }

  // A folder takes the properties of the first source folder that fills it
  // (for an existing PST's folders: their own); later ones do not change it.
  Status ApplyFolderProps(uint32_t nid, const PropertyBag& props) {
    if (!props_applied_.insert(nid).second) return Status::Ok();
    std::vector<messaging::NamedValue> named;
    auto out = FolderPropsToOut(props, &named);
    return store_->SetFolderProperties(nid, std::move(out), named);
  }

  // Copies the existing PST's folders (empty ones too) with their
  // properties, its messages and its associated (FAI) items, once. A message
  // that cannot be read stops the run: rewriting the file without it would
  // lose it.
  Status CopyExisting(const std::function<Status(const ExistingMessage&)>* fn) {
    if (!existing_) return Status::Ok();
    existing_.reset();
    replacing_ = true;
    MBX_ASSIGN_OR_RETURN(std::unique_ptr<MailboxSource> src, OpenExisting());
    MBX_RETURN_IF_ERROR(FolderFor("").status());
    for (const PstFolder& f : FoldersOf(src.get())) {
      MBX_ASSIGN_OR_RETURN(uint32_t nid, FolderFor(f.path));
      if (f.props) MBX_RETURN_IF_ERROR(ApplyFolderProps(nid, *f.props));
    }
    // Replace mode shows the messages now and writes them at Close().
    bool write = !(defer_ && fn != nullptr);
    copy_at_close_ = !write;
    return EachExisting(src.get(), fn, write);
  }

  Result<std::unique_ptr<MailboxSource>> OpenExisting() {
    PstSourceOptions everything;
    everything.associated = true;
    return OpenSource(path_, everything);
  }

  // Shows each existing message to `fn` (the dedupe scan) and, when `write`,
  // copies it into the new store unless it is left out (skip_).
  Status EachExisting(MailboxSource* src, const std::function<Status(const ExistingMessage&)>* fn,
                      bool write) {
    Message m;
    for (;;) {
      auto more = src->Next(&m);
      if (!more.ok()) return more.status().WithContext("existing PST " + Quoted());
      if (!*more) break;
      if (m.read_error)
        return m.read_error->WithContext("existing PST " + Quoted() + ": " + m.origin +
                                         " cannot be read, so the file is not rewritten");
      const MapiMessage* mapi = MapiOf(m);
      if (mapi == nullptr)
        return Status::Corruption("existing PST " + Quoted() + ": not a MAPI message");
      if (write) {
        if (skip_.count(m.source_token)) {
          skipped_.insert(m.source_token);
        } else {
          MBX_CRASH_POINT("pst.copy-existing.message");
          MBX_ASSIGN_OR_RETURN(uint32_t folder, FolderFor(m.folder));
          const messaging::OutMessage out = OutFor(*mapi, m.associated);
          MBX_RETURN_IF_ERROR((m.associated ? store_->AddAssociatedMessage(folder, out)
                                            : store_->AddMessage(folder, out))
                                  .status());
        }
      }
      if (fn != nullptr) {
        std::string fai_form;
        std::string_view form;
        if (m.associated) {
          fai_form = FaiDedupeForm(*mapi);
          form = fai_form;
        } else {
          MBX_ASSIGN_OR_RETURN(form, m.Mime());
        }
        ExistingMessage e;
        e.folder = m.folder;
        e.head = form;
        e.head_is_complete = true;
        if (defer_) {
          // Replace mode needs to name it later (StageReplacing).
          e.locator = existing_nids_.size();
          existing_nids_.push_back(m.source_token);
          existing_modified_.push_back(m.container_modified);
        }
        MBX_RETURN_IF_ERROR((*fn)(e));
      }
    }
    return Status::Ok();
  }

  // Maps a mailbox folder to the store: "" and INBOX to the Inbox, Sent,
  // Trash, Drafts and Junk to Outlook's special folders, the rest by name
  // under the top of the store.
  Result<uint32_t> FolderFor(const std::string& folder) {
    auto it = folder_nids_.find(folder);
    if (it != folder_nids_.end()) return it->second;
    const std::vector<std::string> parts = SplitPath(folder);
    if (IsStoreFolder(folder)) {
      MBX_ASSIGN_OR_RETURN(uint32_t nid, StoreFolderFor(parts));
      folder_nids_[folder] = nid;
      return nid;
    }
    const Placement at = PlaceFolder(parts);
    uint32_t nid = messaging::kNidIpmSubtree;
    if (at.trash) {
      nid = messaging::kNidDeletedItems;
    } else if (at.special != nullptr) {
      nid = store_->FindFolder(messaging::kNidIpmSubtree, at.special->name);
      if (nid == 0) {
        MBX_ASSIGN_OR_RETURN(nid,
                             store_->CreateFolder(messaging::kNidIpmSubtree, at.special->name));
        store_->SetSpecialFolder(at.special->role, nid);
      }
    }
    for (size_t i = at.first; i < parts.size(); ++i) {
      const std::string name = StoredComponent(parts[i]);
      uint32_t child = store_->FindFolder(nid, name);
      if (child == 0) {
        MBX_ASSIGN_OR_RETURN(child, store_->CreateFolder(nid, name));
      }
      nid = child;
    }
    folder_nids_[folder] = nid;
    return nid;
  }

  // A store folder (kStoreFolderPrefix): the store's own by role
  // (StoreRoleFolder), others by name under the root, beside the IPM subtree.
  Result<uint32_t> StoreFolderFor(const std::vector<std::string>& parts) {
    if (parts.empty())
      return Status::InvalidArgument("PST " + Quoted() + ": the store folder '" +
                                     std::string(kStoreFolderPrefix) + "' names no folder");
    uint32_t nid = StoreRoleFolder(parts[0]);
    size_t first = nid != 0 ? 1 : 0;
    if (nid == 0) nid = disk::kNidRootFolder;
    for (size_t i = first; i < parts.size(); ++i) {
      const std::string name = StoredComponent(parts[i]);
      uint32_t child = store_->FindFolder(nid, name);
      if (child == 0) {
        MBX_ASSIGN_OR_RETURN(child, store_->CreateFolder(nid, name));
      }
      nid = child;
    }
    return nid;
  }

  std::string path_;
  std::string temp_;
  std::unique_ptr<StoreWriter> store_;
  std::unique_ptr<MailboxSource> existing_;  // the PST being merged into, until copied
  bool backup_ = true;
  bool defer_ = false;          // replace mode: existing messages are copied at Close()
  bool copy_at_close_ = false;  // ... and have not been yet
  bool replacing_ = false;
  std::set<uint64_t> skip_;              // existing messages left out (replaced, or archived away)
  std::set<uint64_t> skipped_;           // those of them found
  std::vector<uint64_t> existing_nids_;  // replace mode: locator -> node id
  std::vector<UnixTime> existing_modified_;  // replace mode: locator -> last modified
  struct Staged {
    std::string folder;
    std::shared_ptr<const messaging::OutMessage> message;
    bool associated = false;
    std::shared_ptr<const PropertyBag> folder_props;  // of its source folder, if a PST's
    std::optional<uint64_t> replaces;                 // the existing message it replaces
  };
  std::vector<Staged> staged_;
  std::map<std::string, uint32_t> folder_nids_;
  std::set<uint32_t> props_applied_;
  bool broken_ = false;
  bool closed_ = false;
};

}  // namespace

namespace {

Result<std::unique_ptr<PstSink>> NewSink(const std::string& path, const PstSinkOptions& opts) {
  // An existing PST (any PST or OST libpff reads, ANSI too) is rewritten
  // with its content plus the merged messages.
  std::unique_ptr<MailboxSource> existing;
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0 && st.st_size > 0) {
    MBX_ASSIGN_OR_RETURN(existing, OpenSource(path));
  }
  const std::string temp = path + ".mbxmerge-tmp";
  StoreWriter::Options options;
  if (opts.compressible) options.crypt = disk::CryptMethod::kPermute;
  std::string base = fs::Basename(path);
  if (base.size() > 4 && Lower(base.substr(base.size() - 4)) == ".pst")
    base.resize(base.size() - 4);
  options.display_name = base.empty() ? "Personal Folders" : base;
  MBX_ASSIGN_OR_RETURN(auto store, StoreWriter::Create(temp, options));
  return std::make_unique<PstSink>(path, temp, std::move(store), std::move(existing), opts);
}

}  // namespace

Result<std::unique_ptr<MailboxSink>> OpenSink(const std::string& path, const PstSinkOptions& opts) {
  MBX_ASSIGN_OR_RETURN(auto sink, NewSink(path, opts));
  return std::unique_ptr<MailboxSink>(std::move(sink));
}

Status RewriteWithout(const std::string& path, const std::vector<uint64_t>& nids,
                      const std::function<void(uint64_t, std::string)>& kept) {
  PstSinkOptions opts;
  opts.backup = true;
  MBX_ASSIGN_OR_RETURN(auto sink, NewSink(path, opts));
  sink->Exclude(nids);
  MBX_RETURN_IF_ERROR(sink->Close());
  for (uint64_t nid : nids) {
    if (!sink->Skipped().count(nid))
      kept(nid, "PST '" + path + "' has no message node " + std::to_string(nid) + " any more");
  }
  return Status::Ok();
}

}  // namespace mbx::pst
