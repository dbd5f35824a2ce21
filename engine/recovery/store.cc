#include "engine/recovery/store.h"

#include <dirent.h>
#include <strings.h>

#include <algorithm>
#include <cctype>
#include <cstdio>

#include "engine/fs.h"
#include "formats/ldif/ldif.h"

namespace mbx::recovery {
namespace {

bool EqualsNoCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && strncasecmp(a.data(), b.data(), a.size()) == 0;
}

bool StartsWithNoCase(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && strncasecmp(s.data(), prefix.data(), prefix.size()) == 0;
}

// Free/Busy and other system mailboxes of Exchange 5.5/2000/2003.
bool IsSystemName(std::string_view name) {
  return StartsWithNoCase(name, "SCHEDULE+ FREE BUSY") || StartsWithNoCase(name, "SystemMailbox") ||
         StartsWithNoCase(name, "Schedule+ Free/Busy");
}

Result<std::optional<Guid>> GuidAttr(const ldif::Record& r, std::string_view attr, const std::string& file) {
  const std::string* v = r.Get(attr);
  if (!v) return std::optional<Guid>();
  auto g = Guid::FromBytes(*v);
  if (!g.ok()) {
    return Status::Corruption("LDIF '" + file + "' entry '" + r.dn + "' (line " + std::to_string(r.line) +
                              "): " + std::string(attr) + " " + g.status().message());
  }
  return std::optional<Guid>(*g);
}

}  // namespace

Result<Guid> Guid::FromBytes(std::string_view raw) {
  if (raw.size() != 16) {
    return Status::Corruption("is " + std::to_string(raw.size()) + " bytes long, a GUID is 16");
  }
  Guid g;
  std::copy(raw.begin(), raw.end(), g.bytes.begin());
  return g;
}

std::string Guid::ToString() const {
  const auto& b = bytes;
  char buf[40];
  std::snprintf(buf, sizeof buf, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[3], b[2],
                b[1], b[0], b[5], b[4], b[7], b[6], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
  return buf;
}

Result<Guid> Guid::Parse(std::string_view text) {
  if (text.size() == 38 && text.front() == '{' && text.back() == '}') text = text.substr(1, 36);
  if (text.size() != 36 || text[8] != '-' || text[13] != '-' || text[18] != '-' || text[23] != '-') {
    return Status::InvalidArgument("'" + std::string(text) + "' is not a GUID");
  }
  std::string hex;
  for (char c : text) {
    if (c == '-') continue;
    if (!std::isxdigit(static_cast<unsigned char>(c))) {
      return Status::InvalidArgument("'" + std::string(text) + "' is not a GUID");
    }
    hex += c;
  }
  uint8_t v[16];
  for (int i = 0; i < 16; ++i) v[i] = static_cast<uint8_t>(std::stoi(hex.substr(2 * i, 2), nullptr, 16));
  // Text order -> wire order: the first three fields are little-endian.
  static constexpr int kOrder[16] = {3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15};
  Guid g;
  for (int i = 0; i < 16; ++i) g.bytes[static_cast<size_t>(kOrder[i])] = v[i];
  return g;
}

Result<Store> Store::Open(const std::string& dir) {
  Store s;
  s.dir_ = dir;
  while (s.dir_.size() > 1 && s.dir_.back() == '/') s.dir_.pop_back();
  if (!fs::IsDir(s.dir_)) return Status::NotFound("store '" + dir + "' is not a directory");
  std::string ldif_path = s.dir_ + "/directory.ldif";
  if (!fs::IsFile(ldif_path)) {
    return Status::NotFound("store '" + dir + "' has no directory.ldif (export the directory with ldifde or ldapsearch)");
  }
  MBX_ASSIGN_OR_RETURN(auto records, ldif::ParseFile(ldif_path));
  for (const auto& r : records) {
    MBX_ASSIGN_OR_RETURN(auto object_guid, GuidAttr(r, "objectGUID", ldif_path));
    MBX_ASSIGN_OR_RETURN(auto mailbox_guid, GuidAttr(r, "msExchMailboxGUID", ldif_path));
    const std::string* alias = r.Get("mailNickname");
    const std::string* display = r.Get("displayName");
    const std::string* cn = r.Get("cn");
    std::string name = display ? *display : cn ? *cn : alias ? *alias : r.dn;
    if (IsSystemName(name) || (alias && IsSystemName(*alias))) {
      s.system_.push_back({r.dn, name, mailbox_guid ? mailbox_guid : object_guid});
      continue;
    }
    if (!alias && !mailbox_guid) continue;  // not a mail user (groups, OUs, contacts)
    User u;
    u.dn = r.dn;
    u.alias = alias ? *alias : "";
    u.display_name = display ? *display : u.alias;
    if (const std::string* m = r.Get("mail")) u.mail = *m;
    if (const std::string* l = r.Get("legacyExchangeDN")) u.legacy_dn = *l;
    u.object_guid = object_guid;
    u.mailbox_guid = mailbox_guid;
    if (u.alias.empty()) {
      return Status::Corruption("LDIF '" + ldif_path + "' entry '" + r.dn + "' (line " + std::to_string(r.line) +
                                ") has a mailbox but no mailNickname");
    }
    s.users_.push_back(std::move(u));
  }
  std::string mdir = s.MailboxesDir();
  if (fs::IsDir(mdir)) {
    DIR* d = ::opendir(mdir.c_str());
    if (!d) return Status::FromErrno("opendir '" + mdir + "'", errno);
    std::vector<std::string> names;
    while (dirent* e = ::readdir(d)) {
      std::string n = e->d_name;
      if (n == "." || n == "..") continue;
      names.push_back(n);
    }
    ::closedir(d);
    std::sort(names.begin(), names.end());
    for (const auto& n : names) {
      size_t dot = n.find('.');
      std::string stem = n.substr(0, dot);
      std::string ext = dot == std::string::npos ? "" : n.substr(dot);
      auto g = Guid::Parse(stem);
      std::string path = mdir + "/" + n;
      // Our own files beside a mailbox: a rewritten PST's backup (GUID.pst.bak),
      // a rewrite's temp file or an mbox's undo/replace journal. Not mailboxes,
      // and not worth a warning.
      if (g.ok() && (EqualsNoCase(ext, ".pst.bak") || ext.find(".mbxmerge-") != std::string::npos)) continue;
      bool is_dir = fs::IsDir(path);
      bool known = is_dir ? ext.empty()
                          : (EqualsNoCase(ext, ".pst") || EqualsNoCase(ext, ".ost") || EqualsNoCase(ext, ".mbox"));
      if (!g.ok() || !known || s.by_guid_.count(*g)) {
        s.ignored_.push_back(path);
        continue;
      }
      s.by_guid_[*g] = s.mailboxes_.size();
      s.mailboxes_.push_back({*g, path});
    }
  }
  return s;
}

const StoreMailbox* Store::FindMailbox(const Guid& guid) const {
  auto it = by_guid_.find(guid);
  return it == by_guid_.end() ? nullptr : &mailboxes_[it->second];
}

const User* Store::FindUserByAlias(std::string_view alias) const {
  for (const auto& u : users_) {
    if (EqualsNoCase(u.alias, alias)) return &u;
  }
  return nullptr;
}

}  // namespace mbx::recovery
