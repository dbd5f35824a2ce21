#include "engine/recovery/diagnose.h"

#include <strings.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "engine/fs.h"
#include "formats/ldif/ldif.h"
#include "formats/registry.h"

namespace mbx::recovery {

std::string_view StateName(State s) {
  switch (s) {
    case State::kOk: return "ok";
    case State::kBlankConnected: return "blank-connected";
    case State::kMissing: return "missing";
    case State::kReconnectPending: return "reconnect-pending";
    case State::kOriginal: return "original";
    case State::kOrphan: return "orphan";
    case State::kLegacy: return "legacy";
  }
  return "?";
}

MailboxSize CountMailbox(const std::string& path) {
  MailboxSize out;
  auto loc = ParseLocation(path, false);
  if (!loc.ok()) {
    out.error = loc.status().message();
    return out;
  }
  auto src = OpenSource(*loc);
  if (!src.ok()) {
    out.error = src.status().message();
    return out;
  }
  auto folders = (*src)->ListFolders();
  if (!folders.ok()) {
    out.error = folders.status().message();
    return out;
  }
  uint64_t m = 0;
  for (const auto& f : *folders) {
    m += f.messages;
    out.bytes += f.bytes;
  }
  out.messages = m;
  return out;
}

namespace {

// DNs that reconnect.ldif already changes.
std::set<std::string> PendingReconnects(const Store& store) {
  std::set<std::string> out;
  std::string path = store.dir() + "/reconnect.ldif";
  if (!fs::IsFile(path)) return out;
  auto text = fs::ReadFile(path);
  if (!text.ok()) return out;
  // A change file: parse its dn lines only (the content parser refuses changetype).
  auto lines = *text;
  size_t pos = 0;
  std::string folded;
  std::vector<std::string> logical;
  while (pos < lines.size()) {
    size_t nl = lines.find('\n', pos);
    std::string line = lines.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
    pos = nl == std::string::npos ? lines.size() : nl + 1;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (!line.empty() && line[0] == ' ' && !logical.empty()) {
      logical.back() += line.substr(1);
    } else {
      logical.push_back(line);
    }
  }
  for (const auto& l : logical) {
    if (l.rfind("dn:: ", 0) == 0) {
      auto d = ldif::Base64Decode(l.substr(5));
      if (d.ok()) out.insert(*d);
    } else if (l.rfind("dn: ", 0) == 0) {
      out.insert(l.substr(4));
    }
  }
  return out;
}

std::string Human(uint64_t b) {
  char buf[32];
  if (b < 10'000) std::snprintf(buf, sizeof buf, "%llu B", static_cast<unsigned long long>(b));
  else if (b < 10'000'000) std::snprintf(buf, sizeof buf, "%.1f KB", static_cast<double>(b) / 1e3);
  else std::snprintf(buf, sizeof buf, "%.1f MB", static_cast<double>(b) / 1e6);
  return buf;
}

// Pads to `width` columns counting UTF-8 characters, not bytes, so that
// non-ASCII display names keep the table aligned.
std::string Pad(std::string_view text, size_t width) {
  size_t chars = 0;
  for (unsigned char c : text) chars += (c & 0xC0) != 0x80;
  std::string out(text);
  if (chars < width) out.append(width - chars, ' ');
  return out;
}

}  // namespace

std::vector<DiagnoseRow> Diagnose(const Store& store, bool count) {
  std::vector<DiagnoseRow> rows;
  std::set<Guid> connected;
  for (const auto& u : store.users()) {
    if (u.mailbox_guid) connected.insert(*u.mailbox_guid);
  }
  std::set<std::string> pending = PendingReconnects(store);
  auto size_of = [&](const Guid& g) {
    MailboxSize s;
    const StoreMailbox* mb = store.FindMailbox(g);
    if (mb && count) s = CountMailbox(mb->path);
    return s;
  };

  std::vector<const User*> users;
  for (const auto& u : store.users()) {
    if (u.mailbox_guid) users.push_back(&u);
  }
  std::stable_sort(users.begin(), users.end(), [](const User* a, const User* b) {
    return strcasecmp(a->display_name.c_str(), b->display_name.c_str()) < 0;
  });
  for (const User* u : users) {
    DiagnoseRow r;
    r.user = u;
    r.mailbox = u->mailbox_guid;
    const StoreMailbox* mb = store.FindMailbox(*u->mailbox_guid);
    const StoreMailbox* orig = u->object_guid ? store.FindMailbox(*u->object_guid) : nullptr;
    bool original_free = orig && !connected.count(*u->object_guid);
    if (pending.count(u->dn) && orig) {
      r.state = State::kReconnectPending;
      r.original = u->object_guid;
      r.original_size = size_of(*u->object_guid);
      r.note = "reconnect.ldif connects it to " + u->object_guid->ToString() + "; apply it with ldifde -i or ldapmodify";
    } else if (!mb) {
      r.state = State::kMissing;
      r.note = "no mailbox file for " + u->mailbox_guid->ToString() + " under mailboxes/";
    } else if (u->object_guid && *u->mailbox_guid == *u->object_guid) {
      r.state = State::kOk;
      r.size = size_of(*u->mailbox_guid);
    } else if (original_free) {
      r.state = State::kBlankConnected;
      r.original = u->object_guid;
      r.size = size_of(*u->mailbox_guid);
      r.original_size = size_of(*u->object_guid);
    } else {
      r.state = State::kOk;
      r.size = size_of(*u->mailbox_guid);
      r.note = "connected mailbox differs from objectGUID; no original mailbox found";
    }
    rows.push_back(std::move(r));
  }

  std::map<Guid, const User*> owner;
  for (const auto& u : store.users()) {
    if (u.object_guid) owner[*u.object_guid] = &u;
  }
  for (const auto& mb : store.mailboxes()) {
    if (connected.count(mb.guid)) continue;
    DiagnoseRow r;
    r.mailbox = mb.guid;
    r.size = size_of(mb.guid);
    bool legacy = false;
    for (const auto& s : store.system_objects()) {
      if (s.guid && *s.guid == mb.guid) {
        legacy = true;
        r.note = s.name;
      }
    }
    if (legacy) {
      r.state = State::kLegacy;
    } else if (auto it = owner.find(mb.guid); it != owner.end()) {
      r.state = State::kOriginal;
      r.owner_alias = it->second->alias;
      r.note = "original mailbox of " + it->second->alias;
    } else {
      r.state = State::kOrphan;
    }
    rows.push_back(std::move(r));
  }
  return rows;
}

std::string DiagnoseTable(const std::vector<DiagnoseRow>& rows) {
  std::string out;
  char line[1024];
  std::snprintf(line, sizeof line, "%-18s %-16s %-24s %-36s %9s %10s  %s\n", "STATE", "ALIAS", "DISPLAY NAME",
                "MAILBOX", "MESSAGES", "SIZE", "NOTE");
  out += line;
  std::map<std::string, int> counts;
  for (const auto& r : rows) {
    std::string msgs = r.size.messages ? std::to_string(*r.size.messages) : "-";
    std::string note = r.note;
    if (r.state == State::kBlankConnected && r.original) {
      note = "original " + r.original->ToString() + " (" +
             (r.original_size.messages ? std::to_string(*r.original_size.messages) : std::string("?")) + " messages)";
    }
    if (!r.size.error.empty()) note += (note.empty() ? "" : "; ") + std::string("unreadable: ") + r.size.error;
    std::snprintf(line, sizeof line, "%-18s %s %s %-36s %9s %10s  %s\n", std::string(StateName(r.state)).c_str(),
                  Pad(r.user ? r.user->alias : "-", 16).c_str(), Pad(r.user ? r.user->display_name : "-", 24).c_str(),
                  r.mailbox ? r.mailbox->ToString().c_str() : "-", msgs.c_str(),
                  r.size.messages ? Human(r.size.bytes).c_str() : "-", note.c_str());
    out += line;
    counts[std::string(StateName(r.state))]++;
  }
  out += "\n";
  bool first = true;
  for (const auto& [state, n] : counts) {
    out += (first ? "" : ", ") + std::to_string(n) + " " + state;
    first = false;
  }
  out += "\n";
  return out;
}

std::string DiagnoseJson(const std::vector<DiagnoseRow>& rows) {
  nlohmann::json j = nlohmann::json::array();
  auto guid = [](const std::optional<Guid>& g) { return g ? nlohmann::json(g->ToString()) : nlohmann::json(nullptr); };
  for (const auto& r : rows) {
    nlohmann::json o;
    o["alias"] = r.user ? nlohmann::json(r.user->alias) : nlohmann::json(nullptr);
    o["displayName"] = r.user ? nlohmann::json(r.user->display_name) : nlohmann::json(nullptr);
    o["state"] = StateName(r.state);
    o["mailbox"] = guid(r.mailbox);
    o["objectGUID"] = r.user ? guid(r.user->object_guid) : nlohmann::json(nullptr);
    o["messages"] = r.size.messages ? nlohmann::json(*r.size.messages) : nlohmann::json(nullptr);
    o["bytes"] = r.size.bytes;
    if (r.original) {
      o["original"] = r.original->ToString();
      o["original_messages"] =
          r.original_size.messages ? nlohmann::json(*r.original_size.messages) : nlohmann::json(nullptr);
      o["original_bytes"] = r.original_size.bytes;
    }
    if (!r.owner_alias.empty()) o["owner"] = r.owner_alias;
    if (!r.note.empty()) o["note"] = r.note;
    if (!r.size.error.empty()) o["error"] = r.size.error;
    j.push_back(std::move(o));
  }
  return j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

}  // namespace mbx::recovery
