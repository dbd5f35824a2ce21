// Tests of `mbxgen store`, the generator of a mailbox store with the failure
// of Microsoft KB 278447. The LDIF, the GUIDs and the user states are decoded
// and recomputed here independently of the generator (own base64, own
// unfolding, own GUID text form), from the directory and the mailbox listing.

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <map>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "tests/test_util.h"

namespace mbx::testing {
namespace {

namespace stdfs = std::filesystem;

void Gen(const std::vector<std::string>& args) {
  CommandResult r = RunMbxgen(args);
  ASSERT_EQ(r.exit_code, 0) << r.err;
}

std::vector<std::string> StoreArgs(const std::string& out, const std::string& manifest, int users,
                                   int messages, const std::string& seed) {
  return {"store",
          "--out",
          out,
          "--users",
          std::to_string(users),
          "--messages",
          std::to_string(messages),
          "--seed",
          seed,
          "--avg-size",
          "1000",
          "--manifest",
          manifest};
}

using testing::Split;

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines = Split(text, '\n');
  if (!lines.empty() && lines.back().empty()) lines.pop_back();
  return lines;
}

// ------------------------------------------------------------ independent decoding

std::string Base64Decode(const std::string& in) {
  static const std::string kAlphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (char ch : in) {
    if (ch == '=') break;
    size_t v = kAlphabet.find(ch);
    EXPECT_NE(v, std::string::npos) << "bad base64 '" << in << "'";
    if (v == std::string::npos) return "";
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xFF));
    }
  }
  return out;
}

// Windows text form of 16 GUID bytes in wire order: the first three fields little-endian.
std::string GuidText(const std::string& raw) {
  EXPECT_EQ(raw.size(), 16u);
  if (raw.size() != 16) return "";
  static const int kOrder[16] = {3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15};
  std::string s;
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) s.push_back('-');
    char buf[3];
    std::snprintf(buf, sizeof buf, "%02x", static_cast<unsigned char>(raw[kOrder[i]]));
    s += buf;
  }
  return s;
}

bool IsAscii(const std::string& s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return (c & 0x80) == 0; });
}

struct Entry {
  std::string dn;
  std::multimap<std::string, std::string> attrs;  // decoded values
  std::set<std::string> base64;                   // attributes written with "::"
  std::string Get(const std::string& name) const {
    auto it = attrs.find(name);
    return it == attrs.end() ? "" : it->second;
  }
  bool Has(const std::string& name, const std::string& value) const {
    auto [b, e] = attrs.equal_range(name);
    return std::any_of(b, e, [&](const auto& kv) { return kv.second == value; });
  }
};

struct Ldif {
  std::vector<Entry> entries;
  int folded_lines = 0;  // physical lines continued by the next one
};

// RFC 2849: "version: 1" first, comments, records separated by blank lines,
// lines folded with a leading space on the continuation line.
Ldif ParseLdif(const std::string& text) {
  Ldif out;
  std::vector<std::string> physical = Split(text, '\n');
  std::vector<std::string> logical;
  for (size_t i = 0; i < physical.size(); ++i) {
    const std::string& line = physical[i];
    EXPECT_EQ(line.find('\r'), std::string::npos);
    if (!line.empty() && line[0] == ' ') {
      EXPECT_FALSE(logical.empty() || logical.back().empty())
          << "continuation of nothing: " << line;
      if (!logical.empty()) logical.back() += line.substr(1);
      continue;
    }
    if (i + 1 < physical.size() && !physical[i + 1].empty() && physical[i + 1][0] == ' ') {
      ++out.folded_lines;
      EXPECT_EQ(line.size(), 76u) << "folded line not at 76 columns: " << line;
    }
    logical.push_back(line);
  }
  bool version_seen = false;
  Entry cur;
  bool in_entry = false;
  for (const std::string& line : logical) {
    if (!line.empty() && line[0] == '#') continue;
    if (line.empty()) {
      if (in_entry) out.entries.push_back(cur);
      cur = Entry();
      in_entry = false;
      continue;
    }
    size_t colon = line.find(':');
    EXPECT_NE(colon, std::string::npos) << line;
    if (colon == std::string::npos) continue;
    std::string name = line.substr(0, colon);
    bool b64 = line.compare(colon, 2, "::") == 0;
    EXPECT_NE(line.compare(colon, 2, ":<"), 0) << line;
    size_t vstart = colon + (b64 ? 2 : 1);
    while (vstart < line.size() && line[vstart] == ' ') ++vstart;
    std::string raw = line.substr(vstart);
    std::string value = b64 ? Base64Decode(raw) : raw;
    if (!b64) {
      EXPECT_TRUE(IsAscii(value)) << "non-ASCII value not base64: " << line;
    }
    if (!version_seen) {
      EXPECT_EQ(line, "version: 1") << "the first line must be the version";
      version_seen = true;
      continue;
    }
    if (!in_entry) {
      EXPECT_EQ(name, "dn") << line;
      cur.dn = value;
      in_entry = true;
      if (b64) cur.base64.insert("dn");
      continue;
    }
    cur.attrs.emplace(name, value);
    if (b64) cur.base64.insert(name);
  }
  if (in_entry) out.entries.push_back(cur);
  EXPECT_TRUE(version_seen);
  return out;
}

TEST(MbxgenStoreTest, GuidTextFormIsTheWindowsOne) {
  const std::string raw("\xff\x19\x96\x6f\x86\x8b\x11\xd0\xb4\x2d\x00\xc0\x4f\xc9\x64\xff", 16);
  EXPECT_EQ(GuidText(raw), "6f9619ff-8b86-d011-b42d-00c04fc964ff");
  EXPECT_EQ(Base64Decode("/xmWb4aLEdC0LQDAT8lk/w=="), raw);
}

// ------------------------------------------------------------ manifests

struct UserRow {
  std::string alias, display, state, object_guid, connected, original, connected_file,
      original_file;
};

std::vector<UserRow> ReadUsers(const std::string& path) {
  std::vector<UserRow> rows;
  for (const std::string& line : Lines(ReadFileOrDie(path))) {
    std::vector<std::string> f = Split(line, '\t');
    EXPECT_EQ(f.size(), 8u) << line;
    if (f.size() != 8) continue;
    rows.push_back({f[0], f[1], f[2], f[3], f[4], f[5], f[6], f[7]});
  }
  return rows;
}

struct MsgRow {
  std::string alias, state, id, folder, kind, in;
  long long date = 0;
};

std::vector<MsgRow> ReadMessages(const std::string& path) {
  std::vector<MsgRow> rows;
  for (const std::string& line : Lines(ReadFileOrDie(path))) {
    std::vector<std::string> f = Split(line, '\t');
    EXPECT_EQ(f.size(), 7u) << line;
    if (f.size() != 7) continue;
    rows.push_back({f[0], f[1], f[2], f[3], f[4], f[5], std::stoll(f[6])});
  }
  return rows;
}

// ------------------------------------------------------------ mailboxes

struct Copy {
  std::string folder;  // logical folder, "" = root
  std::string data;
};

std::string IdOf(const std::string& msg) {
  const std::string key = "X-Mbxgen-Id: ";
  for (size_t pos = 0; (pos = msg.find(key, pos)) != std::string::npos; pos += key.size()) {
    if (pos != 0 && msg[pos - 1] != '\n') continue;
    size_t end = msg.find_first_of("\r\n", pos);
    return msg.substr(pos + key.size(), end - pos - key.size());
  }
  return "";
}

// mboxrd: a message starts at a "From " line at the start or after a blank line.
std::vector<std::string> SplitMbox(const std::string& data) {
  std::vector<size_t> starts;
  if (data.rfind("From ", 0) == 0) starts.push_back(0);
  for (size_t pos = 0; (pos = data.find("\n\nFrom ", pos)) != std::string::npos; ++pos)
    starts.push_back(pos + 2);
  std::vector<std::string> msgs;
  for (size_t i = 0; i < starts.size(); ++i) {
    size_t begin = data.find('\n', starts[i]) + 1;
    size_t end = i + 1 < starts.size() ? starts[i + 1] - 1 : data.size() - 1;
    // mboxrd: one '>' less on every line matching ^>+From .
    std::string m;
    for (const std::string& line : Split(data.substr(begin, end - begin), '\n')) {
      size_t q = line.find_first_not_of('>');
      bool quoted = q != 0 && q != std::string::npos && line.compare(q, 5, "From ") == 0;
      m += (quoted ? line.substr(1) : line) + "\n";
    }
    m.pop_back();
    msgs.push_back(m);
  }
  return msgs;
}

// Maildir++ directory names of the folders a store mailbox can have.
const std::map<std::string, std::string> kMaildirFolders = {{"", ""},
                                                            {".Projects", "Projects"},
                                                            {".Projects.Alpha", "Projects/Alpha"},
                                                            {".Entw&APw-rfe", "Entwürfe"},
                                                            {".Archive.2023", "Archive/2023"}};

// id -> copies in the mailbox at `path` (an mbox file or a Maildir++ directory).
std::map<std::string, std::vector<Copy>> ReadMailbox(const std::string& path) {
  std::map<std::string, std::vector<Copy>> out;
  if (stdfs::is_regular_file(path)) {
    for (const std::string& m : SplitMbox(ReadFileOrDie(path))) out[IdOf(m)].push_back({"", m});
    return out;
  }
  for (const std::string& rel : ListFilesRecursive(path)) {
    stdfs::path p(rel);
    std::string name = p.filename().string();
    if (name[0] == '.' || name == "maildirfolder") continue;  // .gitkeep
    std::string sub = p.parent_path().filename().string();
    std::string dir = p.parent_path().parent_path().string();
    EXPECT_TRUE(sub == "cur" || sub == "new") << path << "/" << rel;
    auto f = kMaildirFolders.find(dir);
    EXPECT_NE(f, kMaildirFolders.end()) << path << "/" << rel;
    std::string data = ReadFileOrDie(path + "/" + rel);
    out[IdOf(data)].push_back({f == kMaildirFolders.end() ? "?" : f->second, data});
  }
  return out;
}

// Number of folders of a Maildir++ directory (root included); 1 for an mbox file.
size_t FolderCount(const std::string& path) {
  if (!stdfs::is_directory(path)) return 1;
  size_t n = 1;
  for (const auto& e : stdfs::directory_iterator(path))
    if (e.is_directory() && e.path().filename().string()[0] == '.') ++n;
  return n;
}

std::string Lf(std::string s) {
  s.erase(std::remove(s.begin(), s.end(), '\r'), s.end());
  return s;
}

std::string HeaderLine(const std::string& msg, const std::string& name) {
  std::string lf = "\n" + Lf(msg);
  size_t at = lf.find("\n" + name + ": ");
  if (at == std::string::npos || at > lf.find("\n\n")) return "";
  return lf.substr(at + 1, lf.find('\n', at + 1) - at - 1);
}

// ------------------------------------------------------------ the checks

const std::string kUsersDn = "OU=Users,DC=corp,DC=example";
const std::string kFreeBusy = "SCHEDULE+ FREE BUSY INFORMATION - First Administrative Group";
const std::regex kGuidRe("[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}");

// Checks a store against its manifests; returns the users' states by alias.
std::map<std::string, std::string> CheckStore(const std::string& store, const std::string& manifest,
                                              size_t users_wanted) {
  std::string text = ReadFileOrDie(store + "/directory.ldif");
  Ldif ldif = ParseLdif(text);
  EXPECT_GT(ldif.folded_lines, 0) << "some long lines should be folded";

  // The directory.
  struct User {
    std::string alias, display, object_guid, mailbox_guid;
  };
  std::vector<User> users;
  std::set<std::string> aliases;
  std::string system_mailbox;
  int non_ascii = 0, groups = 0, ous = 0;
  for (const Entry& e : ldif.entries) {
    if (e.Has("objectClass", "organizationalUnit")) ++ous;
    if (e.Has("objectClass", "group")) {
      ++groups;
      EXPECT_EQ(e.Get("msExchMailboxGUID"), "") << e.dn;
    }
    if (e.Get("cn") == kFreeBusy) {
      EXPECT_EQ(e.Get("displayName"), kFreeBusy);
      std::string nick = e.Get("mailNickname");
      EXPECT_TRUE(std::regex_match(nick, std::regex(R"(SystemMailbox\{[0-9A-Fa-f-]{36}\})")))
          << nick;
      EXPECT_FALSE(e.Has("objectClass", "user"));
      system_mailbox = GuidText(e.Get("msExchMailboxGUID"));
      continue;
    }
    if (!e.Has("objectClass", "user")) continue;
    User u{e.Get("mailNickname"), e.Get("displayName"), GuidText(e.Get("objectGUID")),
           GuidText(e.Get("msExchMailboxGUID"))};
    EXPECT_EQ(e.dn, "CN=" + u.display + "," + kUsersDn);
    EXPECT_EQ(e.Get("cn"), u.display);
    EXPECT_FALSE(u.alias.empty()) << e.dn;
    EXPECT_TRUE(std::none_of(u.alias.begin(), u.alias.end(), [](char c) {
      return std::isupper(c);
    })) << u.alias;
    EXPECT_TRUE(aliases.insert(u.alias).second) << "duplicate alias " << u.alias;
    EXPECT_EQ(e.Get("mail"), u.alias + "@corp.example");
    EXPECT_EQ(e.Get("legacyExchangeDN"),
              "/o=Corp/ou=First Administrative Group/cn=Recipients/cn=" + u.alias);
    EXPECT_TRUE(e.base64.count("objectGUID") && e.base64.count("msExchMailboxGUID")) << e.dn;
    if (!IsAscii(u.display)) {
      ++non_ascii;
      EXPECT_TRUE(e.base64.count("displayName")) << e.dn;
      EXPECT_NE(text.find("displayName:: "), std::string::npos);
    }
    users.push_back(u);
  }
  EXPECT_EQ(users.size(), users_wanted);
  EXPECT_GE(non_ascii, 1);
  EXPECT_GE(groups, 1);
  EXPECT_GE(ous, 1);
  EXPECT_FALSE(system_mailbox.empty()) << "no Schedule+ Free/Busy entry";

  // Attribute order varies: the line after two different entries' dn differs somewhere.
  std::set<std::string> after_dn;
  std::vector<std::string> lines = Split(text, '\n');
  for (size_t i = 0; i + 1 < lines.size(); ++i)
    if (lines[i].rfind("dn:", 0) == 0) {
      size_t j = i + 1;
      while (j < lines.size() && !lines[j].empty() && lines[j][0] == ' ') ++j;
      after_dn.insert(lines[j].substr(0, lines[j].find(':')));
    }
  EXPECT_GE(after_dn.size(), 3u) << "attribute order should vary between entries";

  // The mailboxes: "<guid>.mbox" files and "<guid>" Maildir++ directories.
  std::map<std::string, std::string> files;  // guid -> file name as in the manifest
  int mbox = 0, maildir = 0;
  for (const auto& e : stdfs::directory_iterator(store + "/mailboxes")) {
    std::string name = e.path().filename().string();
    if (e.is_directory()) {
      EXPECT_TRUE(std::regex_match(name, kGuidRe)) << name;
      EXPECT_TRUE(stdfs::is_directory(e.path() / "cur")) << name;
      files[name] = name + "/";
      ++maildir;
    } else {
      EXPECT_EQ(name.size(), 41u) << name;
      EXPECT_EQ(name.substr(36), ".mbox") << name;
      EXPECT_TRUE(std::regex_match(name.substr(0, 36), kGuidRe)) << name;
      files[name.substr(0, 36)] = name;
      ++mbox;
    }
  }
  EXPECT_GE(mbox, 1);
  EXPECT_GE(maildir, 1);
  EXPECT_LE(std::abs(mbox - maildir), 1) << "about half mbox, half Maildir";

  // States recomputed from the directory and the listing.
  std::set<std::string> connected, object_guids;
  for (const User& u : users) {
    connected.insert(u.mailbox_guid);
    object_guids.insert(u.object_guid);
  }
  std::map<std::string, UserRow> want;  // alias -> expected users-manifest row
  for (const User& u : users) {
    UserRow r{u.alias, u.display, "", u.object_guid, u.mailbox_guid, "-", "-", "-"};
    if (!files.count(u.mailbox_guid)) {
      r.state = "missing";
    } else if (u.mailbox_guid == u.object_guid) {
      r.state = "ok";
      r.original = u.object_guid;
      r.connected_file = r.original_file = files[u.object_guid];
    } else if (files.count(u.object_guid) && !connected.count(u.object_guid)) {
      r.state = "blank-connected";
      r.original = u.object_guid;
      r.connected_file = files[u.mailbox_guid];
      r.original_file = files[u.object_guid];
    } else {
      ADD_FAILURE() << u.alias << ": no KB 278447 state";
    }
    want[u.alias] = r;
  }
  int orphans = 0, legacy = 0;
  for (const auto& [guid, file] : files) {
    if (connected.count(guid) || object_guids.count(guid)) continue;
    if (guid == system_mailbox) {
      ++legacy;
      continue;
    }
    ++orphans;
    want["-"] = {"-", "-", "orphan", "-", "-", guid, "-", file};
  }
  EXPECT_EQ(orphans, 1);
  EXPECT_EQ(legacy, 1);
  EXPECT_TRUE(files.count(system_mailbox)) << "the Free/Busy mailbox must exist";

  std::map<std::string, std::string> states;
  std::map<std::string, UserRow> by_alias;
  std::vector<UserRow> got = ReadUsers(manifest + ".users");
  EXPECT_EQ(got.size(), users_wanted + 2);
  for (const UserRow& r : got) {
    by_alias[r.alias] = r;
    states[r.alias] = r.state;
    if (r.state == "legacy") {
      EXPECT_EQ(r.display, kFreeBusy);
      EXPECT_EQ(r.original, system_mailbox);
      EXPECT_EQ(r.original_file, files[system_mailbox]);
      EXPECT_EQ(r.connected, "-");
      continue;
    }
    auto it = want.find(r.alias);
    if (it == want.end()) {
      ADD_FAILURE() << "unexpected row " << r.alias;
      continue;
    }
    const UserRow& w = it->second;
    EXPECT_EQ(r.display, w.display) << r.alias;
    EXPECT_EQ(r.state, w.state) << r.alias;
    EXPECT_EQ(r.object_guid, w.object_guid) << r.alias;
    EXPECT_EQ(r.connected, w.connected) << r.alias;
    EXPECT_EQ(r.original, w.original) << r.alias;
    EXPECT_EQ(r.connected_file, w.connected_file) << r.alias;
    EXPECT_EQ(r.original_file, w.original_file) << r.alias;
  }

  // Every message id sits exactly where the manifest says, nowhere else.
  std::map<std::string, std::map<std::string, std::vector<Copy>>> boxes;  // file -> id -> copies
  for (const auto& [guid, file] : files) {
    std::string path = store + "/mailboxes/" + file;
    if (path.back() == '/') path.pop_back();
    boxes[file] = ReadMailbox(path);
  }
  std::set<std::string> ids;
  size_t expected_copies = 0;
  std::map<std::string, std::set<std::string>> blank_folders;  // alias -> folders in B
  for (const MsgRow& m : ReadMessages(manifest)) {
    EXPECT_TRUE(ids.insert(m.id).second) << "duplicate id " << m.id;
    auto u = by_alias.find(m.alias);
    if (u == by_alias.end()) {
      ADD_FAILURE() << "message " << m.id << " of unknown alias " << m.alias;
      continue;
    }
    EXPECT_EQ(m.state, u->second.state) << m.id;
    std::vector<std::string> in;
    if (m.in == "A" || m.in == "both") in.push_back(u->second.original_file);
    if (m.in == "B" || m.in == "both") in.push_back(u->second.connected_file);
    if (m.in != "A") {
      EXPECT_EQ(m.state, "blank-connected") << m.id;
      blank_folders[m.alias].insert(m.folder);
    }
    std::vector<const Copy*> copies;
    for (const std::string& file : in) {
      auto& box = boxes[file];
      auto it = box.find(m.id);
      if (it == box.end() || it->second.size() != 1) {
        ADD_FAILURE() << m.id << " not exactly once in " << file;
        continue;
      }
      EXPECT_EQ(it->second[0].folder, m.folder) << m.id << " in " << file;
      copies.push_back(&it->second[0]);
    }
    expected_copies += in.size();
    if (copies.size() == 2) {
      // A duplicate: same identity and body, other trace headers.
      EXPECT_NE(copies[0]->data, copies[1]->data) << m.id;
      EXPECT_EQ(HeaderLine(copies[0]->data, "Message-ID"),
                HeaderLine(copies[1]->data, "Message-ID"));
      std::string a = Lf(copies[0]->data), b = Lf(copies[1]->data);
      EXPECT_EQ(a.substr(a.find("\n\n")), b.substr(b.find("\n\n"))) << m.id;
    }
  }
  size_t found = 0;
  for (const auto& [file, box] : boxes)
    for (const auto& [id, copies] : box) {
      EXPECT_TRUE(ids.count(id)) << "id '" << id << "' in " << file << " is not in the manifest";
      found += copies.size();
    }
  EXPECT_EQ(found, expected_copies);

  // Blank mailboxes hold only the root or a folder or two; originals have more.
  for (const UserRow& r : got) {
    if (r.state != "blank-connected") continue;
    std::string blank = store + "/mailboxes/" + r.connected_file;
    std::string orig = store + "/mailboxes/" + r.original_file;
    if (blank.back() == '/') blank.pop_back();
    if (orig.back() == '/') orig.pop_back();
    EXPECT_LE(FolderCount(blank), 3u) << r.alias;
    EXPECT_LE(blank_folders[r.alias].size(), 3u) << r.alias;
    if (stdfs::is_directory(orig)) {
      EXPECT_GE(FolderCount(orig), 3u) << r.alias;
    }
  }
  return states;
}

std::map<std::string, int> CountStates(const std::map<std::string, std::string>& states) {
  std::map<std::string, int> n;
  for (const auto& [alias, state] : states) ++n[state];
  return n;
}

TEST(MbxgenStoreTest, StoreIsConsistentWithItsManifests) {
  TempDir t;
  Gen(StoreArgs(t / "store", t / "m.tsv", 12, 10, "5"));
  std::map<std::string, int> n = CountStates(CheckStore(t / "store", t / "m.tsv", 12));
  EXPECT_EQ(n["missing"], 1);
  EXPECT_EQ(n["orphan"], 1);
  EXPECT_EQ(n["legacy"], 1);
  EXPECT_GE(n["ok"], 1);
  EXPECT_GE(n["blank-connected"], 6);
  EXPECT_EQ(n["ok"] + n["blank-connected"], 11);
  // Some mail reached both mailboxes.
  std::string m = ReadFileOrDie(t / "m.tsv");
  EXPECT_NE(m.find("\tboth\t"), std::string::npos);
  EXPECT_NE(m.find("\tB\t"), std::string::npos);
}

TEST(MbxgenStoreTest, FiftyUsersScaleTheProportions) {
  TempDir t;
  Gen(StoreArgs(t / "store", t / "m.tsv", 50, 3, "9"));
  std::map<std::string, int> n = CountStates(CheckStore(t / "store", t / "m.tsv", 50));
  EXPECT_EQ(n["missing"], 1);
  EXPECT_EQ(n["orphan"], 1);
  EXPECT_EQ(n["legacy"], 1);
  EXPECT_EQ(n["ok"], 3);
  EXPECT_EQ(n["blank-connected"], 46);
}

// Two messages a user: the pairs are so small that the duplicates asked for
// by the dup rate exceed one side (this used to abort in mbxgen).
TEST(MbxgenStoreTest, TinyMailboxesAreConsistentToo) {
  TempDir t;
  Gen(StoreArgs(t / "store", t / "m.tsv", 10, 2, "7"));
  std::map<std::string, int> n = CountStates(CheckStore(t / "store", t / "m.tsv", 10));
  EXPECT_EQ(n["missing"], 1);
  EXPECT_EQ(n["ok"] + n["blank-connected"], 9);
}

bool SameTree(const std::string& a, const std::string& b) {
  std::vector<std::string> fa = ListFilesRecursive(a), fb = ListFilesRecursive(b);
  if (fa != fb) return false;
  for (const std::string& f : fa)
    if (ReadFileOrDie(a + "/" + f) != ReadFileOrDie(b + "/" + f)) return false;
  return true;
}

TEST(MbxgenStoreTest, Deterministic) {
  TempDir t;
  Gen(StoreArgs(t / "x/store", t / "x/m.tsv", 9, 8, "3"));
  Gen(StoreArgs(t / "y/store", t / "y/m.tsv", 9, 8, "3"));
  Gen(StoreArgs(t / "z/store", t / "z/m.tsv", 9, 8, "4"));
  EXPECT_TRUE(SameTree(t / "x", t / "y"));
  EXPECT_FALSE(ListFilesRecursive(t / "x").empty());
  EXPECT_NE(ReadFileOrDie(t / "x/store/directory.ldif"),
            ReadFileOrDie(t / "z/store/directory.ldif"));
  EXPECT_NE(ReadFileOrDie(t / "x/m.tsv"), ReadFileOrDie(t / "z/m.tsv"));
}

TEST(MbxgenStoreTest, RefusesBadArguments) {
  TempDir t;
  EXPECT_EQ(RunMbxgen({"store", "--out", t / "s"}).exit_code, 2);  // no --users
  EXPECT_EQ(RunMbxgen({"store", "--out", t / "s", "--users", "2"}).exit_code, 2);
  EXPECT_EQ(RunMbxgen({"store", "--users", "10"}).exit_code, 2);
  EXPECT_EQ(RunMbxgen({"store", "--out", t / "s", "--users", "10", "--format", "mbox"}).exit_code,
            2);
  WriteFileOrDie(t / "full/x", "x");
  EXPECT_EQ(RunMbxgen({"store", "--out", t / "full", "--users", "10"}).exit_code, 1);
}

// samples/data/store is generated by the command in samples/README.md.
TEST(MbxgenStoreTest, CheckedInStoreIsCurrent) {
  stdfs::path src = stdfs::path(__FILE__).parent_path().parent_path();
  std::string data = (src / "samples/data/store").string();
  if (!stdfs::is_directory(data)) GTEST_SKIP() << "no " << data;
  TempDir t;
  Gen({"store", "--out", t / "store", "--users", "10", "--messages", "12", "--seed", "1",
       "--avg-size", "1500", "--manifest", t / "manifest.tsv"});
  std::vector<std::string> want = ListFilesRecursive(t.path());
  std::vector<std::string> got;
  for (const std::string& f : ListFilesRecursive(data))
    if (stdfs::path(f).filename() != ".gitkeep") got.push_back(f);
  EXPECT_EQ(got, want);
  for (const std::string& f : want)
    EXPECT_TRUE(ReadFileOrDie(data + "/" + f) == ReadFileOrDie(t / f)) << f;
  CheckStore(data + "/store", data + "/manifest.tsv", 10);
}

}  // namespace
}  // namespace mbx::testing
