// \brief A store of mailboxes and its directory (the KB 278447 setting):
//
//   STORE/directory.ldif                 the directory, as ldifde/ldapsearch export it
//   STORE/mailboxes/GUID.pst|.mbox|GUID/ one mailbox per mailbox GUID, any format
//
// A user's mailbox is the one its msExchMailboxGUID names (connected); every
// other mailbox is disconnected. After the failed upgrade a user is connected
// to a new blank mailbox while the original one, whose GUID equals the user's
// objectGUID, sits disconnected.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/status.h"

namespace mbx::recovery {

// A GUID as 16 bytes in directory (wire) order. The text form is the one
// Windows shows: the first three fields little-endian ("6f9619ff-8b86-d011-...").
struct Guid {
  std::array<uint8_t, 16> bytes{};
  static Result<Guid> FromBytes(std::string_view raw);
  // Accepts the text form with or without braces, any case.
  static Result<Guid> Parse(std::string_view text);
  std::string ToString() const;  // lower case, no braces
  std::string_view Raw() const { return {reinterpret_cast<const char*>(bytes.data()), bytes.size()}; }
  bool operator==(const Guid&) const = default;
  auto operator<=>(const Guid&) const = default;
};

struct User {
  std::string dn;
  std::string alias;         // mailNickname
  std::string display_name;  // displayName
  std::string mail;
  std::string legacy_dn;  // legacyExchangeDN
  std::optional<Guid> object_guid;
  std::optional<Guid> mailbox_guid;  // msExchMailboxGUID: the connected mailbox
};

// A directory object that is not a user: Schedule+ Free/Busy and other system
// mailboxes, recognized by name.
struct SystemObject {
  std::string dn;
  std::string name;
  std::optional<Guid> guid;  // objectGUID or msExchMailboxGUID
};

struct StoreMailbox {
  Guid guid;
  std::string path;  // file or directory under mailboxes/
};

class Store {
 public:
  // Reads STORE/directory.ldif and lists STORE/mailboxes/. Errors name the file and line.
  static Result<Store> Open(const std::string& dir);

  const std::string& dir() const { return dir_; }
  const std::vector<User>& users() const { return users_; }
  const std::vector<SystemObject>& system_objects() const { return system_; }
  const std::vector<StoreMailbox>& mailboxes() const { return mailboxes_; }
  // Mailboxes whose name is not a GUID, or that share a GUID: reported, never touched.
  const std::vector<std::string>& ignored() const { return ignored_; }

  const StoreMailbox* FindMailbox(const Guid& guid) const;
  const User* FindUserByAlias(std::string_view alias) const;  // case-insensitive

  std::string MailboxesDir() const { return dir_ + "/mailboxes"; }
  std::string RetiredDir() const { return dir_ + "/retired"; }
  std::string StateDir() const { return dir_ + "/.mbxmerge"; }

 private:
  std::string dir_;
  std::vector<User> users_;
  std::vector<SystemObject> system_;
  std::vector<StoreMailbox> mailboxes_;
  std::map<Guid, size_t> by_guid_;
  std::vector<std::string> ignored_;
};

}  // namespace mbx::recovery
