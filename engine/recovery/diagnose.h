// \brief `mbxmerge diagnose`: the state of every user and disconnected mailbox of a store.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "engine/recovery/store.h"

namespace mbx::recovery {

enum class State {
  kOk,                 // connected to its own mailbox (GUID == objectGUID), or to the only one it has
  kBlankConnected,     // connected to another mailbox while its original sits disconnected (the KB case)
  kMissing,            // the connected mailbox's file is absent
  kReconnectPending,   // recovered: reconnect.ldif holds its change, not applied yet
  kOriginal,           // (mailbox row) a disconnected original, waiting for its user
  kOrphan,             // (mailbox row) disconnected, no user's objectGUID matches
  kLegacy,             // (mailbox row) a disconnected Schedule+ Free/Busy system mailbox, safe to delete
};

std::string_view StateName(State s);

struct MailboxSize {
  std::optional<uint64_t> messages;  // nullopt when the mailbox could not be read
  uint64_t bytes = 0;
  std::string error;
};

struct DiagnoseRow {
  State state = State::kOk;
  const User* user = nullptr;  // null for a mailbox row
  std::optional<Guid> mailbox;  // the connected mailbox, or the disconnected one of a mailbox row
  std::optional<Guid> original;  // blank-connected: the original mailbox
  std::string owner_alias;       // mailbox row in state original: whose it is
  MailboxSize size;              // of `mailbox`
  MailboxSize original_size;     // of `original`
  std::string note;
};

// Opens the mailbox at `path` (typed by what it is) and counts its messages.
MailboxSize CountMailbox(const std::string& path);

// One row per user (sorted by display name), then one per disconnected mailbox.
// `count` says whether to open mailboxes for their sizes.
std::vector<DiagnoseRow> Diagnose(const Store& store, bool count);

std::string DiagnoseTable(const std::vector<DiagnoseRow>& rows);
std::string DiagnoseJson(const std::vector<DiagnoseRow>& rows);

}  // namespace mbx::recovery
