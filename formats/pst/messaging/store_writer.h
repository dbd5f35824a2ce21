// \brief The messaging-layer PST writer ([MS-PST] 2.4): a new Unicode store
// laid out as Outlook creates one, folders of any depth, and messages with
// their property context, recipient table, attachments and contents-table row.
//
// Messages stream to disk as they are added. Their contents-table rows wait
// in a scratch file beside the output, so memory holds only the folders and
// the node and block indexes (about 130 bytes a message) until Finish()
// streams out the tables, the B-trees and the header.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "engine/status.h"
#include "formats/pst/disk/disk.h"
#include "formats/pst/ltp/writer.h"
#include "formats/pst/ndb/writer.h"

namespace mbx::pst::messaging {

struct OutMessage;
class RowSpool;

// A named property's value: the writer gives the name an id in this store's
// name-to-id map ([MS-PST] 2.4.7).
struct NamedValue {
  ltp::PropertyName name;
  uint16_t type = 0;
  std::string value;  // as in ltp::Property
};

struct OutAttachment {
  std::vector<ltp::Property> props;  // name, MIME type, content id, method...
  std::string data;                  // by-value bytes (PidTagAttachDataBinary)
  // An embedded message (PidTagAttachMethod 5) instead of `data`.
  std::shared_ptr<const OutMessage> embedded;
  std::vector<NamedValue> named;
  // Columns its attachment table should have beyond Outlook's template (the
  // source's, for a copy); filled from `props`.
  std::vector<uint32_t> table_columns;
};

struct OutMessage {
  // The message's own properties: everything but where it lives (the writer
  // adds the size, search key and times when they are missing).
  std::vector<ltp::Property> props;
  // One property list per recipient row (0x0C15 type, 0x3001 name, 0x3003
  // address, 0x3002 address type, 0x39FE SMTP address...).
  std::vector<std::vector<ltp::Property>> recipients;
  // Named properties of recipients[i] (may be shorter than `recipients`).
  std::vector<std::vector<NamedValue>> recipients_named;
  std::vector<OutAttachment> attachments;
  std::vector<NamedValue> named;
};

// Folders every store has, by the NIDs Outlook gives them.
inline constexpr uint32_t kNidIpmSubtree = 0x8022;
inline constexpr uint32_t kNidSearchRoot = 0x8042;
inline constexpr uint32_t kNidDeletedItems = 0x8062;
inline constexpr uint32_t kNidCommonViews = 0x8082;

enum class SpecialFolder { kInbox, kOutbox, kSentItems, kDrafts, kJunk };

class StoreWriter {
 public:
  struct Options {
    std::string display_name = "Personal Folders";
    disk::CryptMethod crypt = disk::CryptMethod::kNone;
    // Node and block index entries kept in memory (ndb::NdbWriter::Options).
    size_t index_spill_entries = size_t{1} << 16;
  };
  // Creates a new store at `path` (the caller writes to a temporary name and
  // renames after Finish()).
  static Result<std::unique_ptr<StoreWriter>> Create(const std::string& path, Options options);
  ~StoreWriter();

  // A new folder under `parent` (kNidIpmSubtree for a top-level folder of
  // the mailbox; disk::kNidRootFolder for one beside the IPM subtree, as an
  // OST's Shortcuts or Views, which only FAI items go into). The root folder
  // itself takes no messages.
  Result<uint32_t> CreateFolder(uint32_t parent, std::string_view name_utf8,
                                std::string_view container_class = "IPF.Note");
  // The child of `parent` named `name` (case-insensitive ASCII), or 0.
  uint32_t FindFolder(uint32_t parent, std::string_view name_utf8) const;
  // Marks a folder as the store's Inbox, Sent Items, ... (entry IDs on the
  // store and root folder, the receive folder table).
  void SetSpecialFolder(SpecialFolder role, uint32_t nid) { special_[role] = nid; }

  // Writes a message into `folder`; returns its NID.
  Result<uint32_t> AddMessage(uint32_t folder, const OutMessage& message);
  // Writes an associated (FAI) message into `folder`'s associated contents
  // table ([MS-PST] 2.4.4.6): an NID_TYPE_ASSOC_MESSAGE node with
  // MSGFLAG_ASSOCIATED set; returns its NID.
  Result<uint32_t> AddAssociatedMessage(uint32_t folder, const OutMessage& message);
  // Writes a message node whose nidParent is `parent` (which need not exist)
  // and which no contents table lists: what a crash or a deletion can leave
  // behind. For tests of recovery only; the result fails `mbxmerge check`.
  Result<uint32_t> AddUnlistedMessageForTesting(uint32_t parent, const OutMessage& message);

  // Properties of a folder beyond its name and counts (container class,
  // comment, views...), written with the folder. The writer's own (name,
  // counts, subfolder flag) win; PidTagContainerClass also goes to the
  // folder's hierarchy-table row.
  Status SetFolderProperties(uint32_t folder, std::vector<ltp::Property> props,
                             const std::vector<NamedValue>& named);
  // The folder's container class ("IPF.Note"), "" when it has none or there is no such folder.
  std::string ContainerClass(uint32_t folder) const;

  Status Finish();

  uint64_t bytes_written() const { return ndb_->bytes_written(); }

 private:
  struct Folder {
    uint32_t nid = 0;
    uint32_t parent = 0;
    std::string name;
    std::string container_class;
    std::vector<uint32_t> children;
    // Where the contents-table rows wait in the spool, in order.
    std::vector<uint64_t> contents;
    std::vector<uint64_t> associated;        // FAI rows
    std::vector<ltp::Property> props;        // SetFolderProperties
    uint32_t unread = 0;
  };
  enum class Listing { kContents, kAssociated, kNone };
  Result<uint32_t> Add(uint32_t folder, const OutMessage& m, Listing listing);
  struct WrittenMessage {
    uint64_t bid_data = 0, bid_sub = 0;
    uint64_t size = 0;                 // PidTagMessageSize
    std::vector<ltp::Property> props;  // as written, for the contents table row
  };
  StoreWriter(std::unique_ptr<ndb::NdbWriter> ndb, std::unique_ptr<RowSpool> spool,
              Options options);
  Result<WrittenMessage> WriteMessage(const OutMessage& m, int depth);
  Result<uint16_t> NamedPropertyId(const ltp::PropertyName& name);
  Status AddNamed(const std::vector<NamedValue>& named, std::vector<ltp::Property>* props);
  Status WriteSkeleton();
  Result<uint64_t> WriteTable(uint32_t nid, const ltp::TableSchema& schema,
                              const std::vector<ltp::RowValues>& rows);
  // A folder's contents or FAI table from its spooled rows.
  Result<uint64_t> WriteSpooledTable(uint32_t nid, const ltp::TableSchema& schema,
                                     const std::vector<uint64_t>& rows);
  Result<uint64_t> WritePc(uint32_t nid, uint32_t parent, std::vector<ltp::Property> props);
  Status WriteFolder(const Folder& f);
  Status WriteStoreAndMaps();
  std::string EntryId(uint32_t nid) const;
  ltp::RowValues HierarchyRow(const Folder& f) const;

  std::unique_ptr<ndb::NdbWriter> ndb_;
  std::unique_ptr<RowSpool> spool_;
  Options options_;
  std::string record_key_;  // the store's provider UID
  // The name-to-id map: names_[i] is property id 0x8000 + i.
  std::vector<ltp::PropertyName> names_;
  std::map<ltp::PropertyName, uint16_t> name_ids_;
  std::map<uint32_t, Folder> folders_;
  std::map<SpecialFolder, uint32_t> special_;
  // Blocks of the empty template tables, shared by every empty table.
  uint64_t empty_hierarchy_ = 0, empty_contents_ = 0, empty_assoc_ = 0, empty_search_ = 0,
           empty_recipients_ = 0, empty_attachments_ = 0;
  bool finished_ = false;
};

// Property encoders for callers building OutMessage.
ltp::Property StringProp(uint16_t id, std::string_view utf8);
ltp::Property BinaryProp(uint16_t id, std::string_view bytes);
ltp::Property Int32Prop(uint16_t id, uint32_t v);
ltp::Property BoolProp(uint16_t id, bool v);
ltp::Property TimeProp(uint16_t id, uint64_t filetime);
ltp::Property Int64Prop(uint16_t id, uint64_t v);

}  // namespace mbx::pst::messaging
