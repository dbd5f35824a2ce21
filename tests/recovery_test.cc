// The store workflow: GUIDs, the store, diagnose, selection, journal, recover.
#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "engine/recovery/diagnose.h"
#include "engine/recovery/recover.h"
#include "engine/recovery/store.h"
#include "formats/ldif/ldif.h"
#include "formats/registry.h"
#include "tests/test_util.h"

namespace mbx::recovery {
namespace {

namespace stdfs = std::filesystem;
using testing::ReadFileOrDie;
using testing::RunMbxgen;
using testing::RunMbxmerge;
using testing::TempDir;
using testing::WriteFileOrDie;

TEST(GuidTest, TextFormSwapsTheFirstThreeFields) {
  std::string wire("\xff\x19\x96\x6f\x86\x8b\x11\xd0\xb4\x2d\x00\xc0\x4f\xc9\x64\xff", 16);
  auto g = Guid::FromBytes(wire);
  ASSERT_TRUE(g.ok());
  EXPECT_EQ(g->ToString(), "6f9619ff-8b86-d011-b42d-00c04fc964ff");
  auto back = Guid::Parse("{6F9619FF-8B86-D011-B42D-00C04FC964FF}");
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, *g);
  EXPECT_EQ(back->Raw(), wire);
  EXPECT_FALSE(Guid::Parse("6f9619ff-8b86-d011-b42d").ok());
  EXPECT_FALSE(Guid::Parse("6f9619ff-8b86-d011-b42d-00c04fc964fg").ok());
  EXPECT_FALSE(Guid::FromBytes("short").ok());
}

Guid G(int n) {
  Guid g;
  for (size_t i = 0; i < 16; ++i) g.bytes[i] = static_cast<uint8_t>(n * 17 + static_cast<int>(i));
  return g;
}

std::string UserEntry(const std::string& alias, const std::string& display, const Guid& object,
                      const Guid* mailbox) {
  std::string e = ldif::FormatAttribute("dn", "CN=" + display + ",OU=Users,DC=corp,DC=example");
  e += "objectClass: user\n";
  e += ldif::FormatAttribute("displayName", display);
  e += ldif::FormatAttribute("objectGUID", object.Raw());
  e += "mailNickname: " + alias + "\n";
  if (mailbox) e += ldif::FormatAttribute("msExchMailboxGUID", mailbox->Raw());
  e += "mail: " + alias + "@corp.example\n\n";
  return e;
}

// A small KB 278447 store:
//   alice  blank-connected (blank Maildir G(11) -> original Maildir G(1))
//   bob    ok (mbox G(2))
//   carol  missing (connected to G(13), which has no file)
//   dave   blank-connected (blank mbox G(14) -> original mbox G(4))
//   G(20)  orphan; G(21) legacy free/busy
class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = tmp_ / "store";
    std::string mb = store_ + "/mailboxes/";
    stdfs::create_directories(mb);
    Gen({"pair", "--format", "maildir", "--out-a", mb + G(1).ToString(), "--out-b",
         mb + G(11).ToString(), "--messages", "120", "--folders", "3", "--dup-rate", "0.3",
         "--seed", "31", "--manifest", tmp_ / "alice.tsv"});
    Gen({"pair", "--format", "mbox", "--out-a", mb + G(4).ToString() + ".mbox", "--out-b",
         mb + G(14).ToString() + ".mbox", "--messages", "60", "--dup-rate", "0.3", "--seed", "32",
         "--manifest", tmp_ / "dave.tsv"});
    Gen({"mailbox", "--format", "mbox", "--out", mb + G(2).ToString() + ".mbox", "--messages", "5",
         "--seed", "33"});
    Gen({"mailbox", "--format", "mbox", "--out", mb + G(20).ToString() + ".mbox", "--messages", "3",
         "--seed", "34"});
    Gen({"mailbox", "--format", "mbox", "--out", mb + G(21).ToString() + ".mbox", "--messages", "1",
         "--seed", "35"});
    WriteFileOrDie(mb + "notes.txt", "not a mailbox");
    Guid g11 = G(11), g2 = G(2), g13 = G(13), g14 = G(14), g21 = G(21);
    std::string ldif = "version: 1\n# exported by ldifde\n\n";
    ldif += UserEntry("alice", "Alice Archer", G(1), &g11);
    ldif += UserEntry("bob", "Bob Baker", G(2), &g2);
    ldif += UserEntry("carol", "Carol Cole", G(3), &g13);
    ldif += UserEntry("dave", "Dave Dunn", G(4), &g14);
    ldif += "dn: CN=Sales,OU=Groups,DC=corp,DC=example\nobjectClass: group\ncn: Sales\n\n";
    ldif += "dn: CN=fb,DC=corp\ncn: SCHEDULE+ FREE BUSY INFORMATION - First Administrative Group\n";
    ldif += ldif::FormatAttribute("msExchMailboxGUID", g21.Raw());
    WriteFileOrDie(store_ + "/directory.ldif", ldif);
  }

  static void Gen(const std::vector<std::string>& args) {
    auto r = RunMbxgen(args);
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }

  std::map<std::string, State> States() {
    auto store = Store::Open(store_);
    EXPECT_TRUE(store.ok()) << store.status().ToString();
    std::map<std::string, State> out;
    for (const auto& r : Diagnose(*store, true)) {
      out[r.user ? r.user->alias : r.mailbox->ToString()] = r.state;
    }
    return out;
  }

  static std::map<std::string, int> Ids(const std::string& path) {
    return testing::MbxgenIdCounts(path);
  }
  static std::set<std::string> ManifestIds(const std::string& tsv) {
    return testing::ManifestIds(tsv);
  }

  TempDir tmp_;
  std::string store_;
};

TEST_F(StoreTest, DiagnoseFindsEveryState) {
  auto states = States();
  EXPECT_EQ(states["alice"], State::kBlankConnected);
  EXPECT_EQ(states["bob"], State::kOk);
  EXPECT_EQ(states["carol"], State::kMissing);
  EXPECT_EQ(states["dave"], State::kBlankConnected);
  EXPECT_EQ(states[G(1).ToString()], State::kOriginal);
  EXPECT_EQ(states[G(4).ToString()], State::kOriginal);
  EXPECT_EQ(states[G(20).ToString()], State::kOrphan);
  EXPECT_EQ(states[G(21).ToString()], State::kLegacy);
  EXPECT_EQ(states.size(), 8u);
  auto store = Store::Open(store_);
  ASSERT_EQ(store->ignored().size(), 1u);  // notes.txt
}

TEST_F(StoreTest, DiagnoseJsonFromTheCli) {
  auto r = RunMbxmerge({"diagnose", "--store", store_, "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j.size(), 8u);
  bool saw_alice = false;
  for (const auto& row : j) {
    ASSERT_TRUE(row.contains("alias") && row.contains("state") && row.contains("mailbox") &&
                row.contains("objectGUID") && row.contains("messages") && row.contains("bytes"));
    if (row["alias"] == "alice") {
      saw_alice = true;
      EXPECT_EQ(row["state"], "blank-connected");
      EXPECT_EQ(row["mailbox"], G(11).ToString());
      EXPECT_EQ(row["objectGUID"], G(1).ToString());
      EXPECT_GT(row["messages"].get<int>(), 0);
      EXPECT_EQ(row["original"], G(1).ToString());
    }
    if (row["alias"].is_null()) {
      EXPECT_TRUE(row["objectGUID"].is_null());
    }
  }
  EXPECT_TRUE(saw_alice);
  auto table = RunMbxmerge({"diagnose", "--store", store_});
  EXPECT_EQ(table.exit_code, 0);
  EXPECT_NE(table.out.find("blank-connected"), std::string::npos);
  EXPECT_NE(table.out.find("2 blank-connected"), std::string::npos) << table.out;
}

TEST_F(StoreTest, SelectionByListRangeAndShard) {
  auto store = Store::Open(store_);
  ASSERT_TRUE(store.ok());
  auto aliases = [&](const MailboxFilter& f) {
    std::vector<std::string> out;
    auto users = SelectUsers(*store, f);
    EXPECT_TRUE(users.ok()) << users.status().ToString();
    for (const User* u : *users) out.push_back(u->alias);
    return out;
  };
  MailboxFilter byname;
  byname.names = {"Bob Baker", "DAVE"};
  EXPECT_EQ(aliases(byname), (std::vector<std::string>{"bob", "dave"}));
  MailboxFilter range;
  range.range = std::make_pair(std::string("b"), std::string("carol"));
  EXPECT_EQ(aliases(range), (std::vector<std::string>{"bob", "carol"}));
  MailboxFilter typo;
  typo.names = {"alice", "zed"};
  auto bad = SelectUsers(*store, typo);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("zed"), std::string::npos);
  // Shards partition the users: their union is everyone, each exactly once.
  std::multiset<std::string> all;
  for (int k = 1; k <= 3; ++k) {
    MailboxFilter f;
    f.shard = std::make_pair(k, 3);
    for (const auto& a : aliases(f)) all.insert(a);
  }
  EXPECT_EQ(all, (std::multiset<std::string>{"alice", "bob", "carol", "dave"}));
  EXPECT_FALSE(ParseShard("0/3").ok());
  EXPECT_FALSE(ParseShard("4/3").ok());
  EXPECT_FALSE(ParseRange("a-m").ok());
}

TEST_F(StoreTest, RecoverMergesWritesReconnectLdifAndRetiresTheBlank) {
  auto orig_alice = ManifestIds(tmp_ / "alice.tsv");
  auto dry = RunMbxmerge({"recover", "--store", store_, "--dry-run", "--quiet"});
  ASSERT_EQ(dry.exit_code, 0) << dry.err;
  EXPECT_FALSE(stdfs::exists(store_ + "/reconnect.ldif"));
  EXPECT_FALSE(stdfs::exists(store_ + "/.mbxmerge"));

  auto r = RunMbxmerge({"recover", "--store", store_, "--report", tmp_ / "r.json", "--quiet"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  // Every distinct message of alice's two mailboxes is in the original exactly once.
  auto ids = Ids(store_ + "/mailboxes/" + G(1).ToString());
  for (const auto& id : orig_alice) EXPECT_EQ(ids[id], 1) << id;
  EXPECT_EQ(ids.size(), orig_alice.size());
  auto dave = Ids(store_ + "/mailboxes/" + G(4).ToString() + ".mbox");
  for (const auto& id : ManifestIds(tmp_ / "dave.tsv")) EXPECT_EQ(dave[id], 1) << id;
  // The blank mailboxes were moved, never deleted.
  EXPECT_TRUE(stdfs::exists(store_ + "/retired/" + G(11).ToString()));
  EXPECT_TRUE(stdfs::exists(store_ + "/retired/" + G(14).ToString() + ".mbox"));
  EXPECT_FALSE(stdfs::exists(store_ + "/mailboxes/" + G(11).ToString()));
  // The change file: exactly the two users, each reconnected to its objectGUID.
  std::string expect =
      std::string(
          "# mbxmerge: reconnect each recovered user to its original mailbox.\n"
          "# Apply with:  ldifde -i -f reconnect.ldif   or   ldapmodify -f reconnect.ldif\n\n") +
      ldif::FormatReplace("CN=Alice Archer,OU=Users,DC=corp,DC=example", "msExchMailboxGUID",
                          G(1).Raw()) +
      "\n" +
      ldif::FormatReplace("CN=Dave Dunn,OU=Users,DC=corp,DC=example", "msExchMailboxGUID",
                          G(4).Raw()) +
      "\n";
  EXPECT_EQ(ReadFileOrDie(store_ + "/reconnect.ldif"), expect);
  auto report = nlohmann::json::parse(ReadFileOrDie(tmp_ / "r.json"));
  ASSERT_EQ(report["users"].size(), 2u);
  EXPECT_EQ(report["users"][0]["status"], "recovered");
  EXPECT_GT(report["users"][0]["duplicates_skipped"].get<int>(), 0);
  // Diagnose now shows the pending directory change; a second run has nothing to do.
  auto states = States();
  EXPECT_EQ(states["alice"], State::kReconnectPending);
  EXPECT_EQ(states["dave"], State::kReconnectPending);
  auto again = RunMbxmerge({"recover", "--store", store_, "--report", tmp_ / "r2.json", "--quiet"});
  ASSERT_EQ(again.exit_code, 0) << again.err;
  auto r2 = nlohmann::json::parse(ReadFileOrDie(tmp_ / "r2.json"));
  for (const auto& u : r2["users"]) EXPECT_EQ(u["status"], "already-recovered");
  EXPECT_EQ(ReadFileOrDie(store_ + "/reconnect.ldif"), expect);
}

// PST mailboxes in the store: the blank one is merged into the original PST
// (rewritten beside itself with our writer), duplicates skipped.
TEST_F(StoreTest, RecoverWithPstMailboxes) {
  const std::string mb = store_ + "/mailboxes/";
  for (int g : {4, 14}) {
    auto r = RunMbxmerge({"merge", "--from", mb + G(g).ToString() + ".mbox", "--into",
                          mb + G(g).ToString() + ".pst", "--quiet"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    stdfs::remove(mb + G(g).ToString() + ".mbox");
  }
  EXPECT_EQ(States()["dave"], State::kBlankConnected);
  WriteFileOrDie(tmp_ / "dave.txt", "dave\n");
  auto r = RunMbxmerge({"recover", "--store", store_, "--mailboxes", tmp_ / "dave.txt", "--quiet",
                        "--report", tmp_ / "r.json"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  const std::string original = mb + G(4).ToString() + ".pst";
  auto dave = Ids(original);
  const auto want = ManifestIds(tmp_ / "dave.tsv");
  for (const auto& id : want) EXPECT_EQ(dave[id], 1) << id;
  EXPECT_EQ(dave.size(), want.size());
  auto report = nlohmann::json::parse(ReadFileOrDie(tmp_ / "r.json"));
  EXPECT_GT(report["users"][0]["duplicates_skipped"].get<int>(), 0);
  EXPECT_TRUE(stdfs::exists(store_ + "/retired/" + G(14).ToString() + ".pst"));
  auto check = RunMbxmerge({"check", original});
  EXPECT_EQ(check.exit_code, 0) << check.out;
  EXPECT_EQ(States()["dave"], State::kReconnectPending);
  // The rewritten PST's backup stays beside it, and is not taken for a mailbox.
  EXPECT_TRUE(stdfs::exists(original + ".bak"));
  auto diag = RunMbxmerge({"diagnose", "--store", store_});
  EXPECT_EQ(diag.exit_code, 0);
  EXPECT_EQ(diag.err.find(".bak"), std::string::npos) << diag.err;
}

TEST_F(StoreTest, ResumeAfterAKilledRunAtEachStep) {
  // A run that died after alice's merge, with a half-written reconnect record:
  // the rerun must finish alice and dave, once each.
  const std::string mb = store_ + "/mailboxes/";
  auto merged = RunMbxmerge(
      {"merge", "--from", mb + G(11).ToString(), "--into", mb + G(1).ToString(), "--quiet"});
  ASSERT_EQ(merged.exit_code, 0) << merged.err;
  stdfs::create_directories(store_ + "/.mbxmerge");
  WriteFileOrDie(store_ + "/.mbxmerge/recover.journal",
                 "merged\talice\t" + G(11).ToString() + "\nreconn");
  WriteFileOrDie(store_ + "/reconnect.ldif", "dn: CN=Alice Archer,OU=Users,DC=co");
  auto r = RunMbxmerge({"recover", "--store", store_, "--quiet", "--report", tmp_ / "r.json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::string ldif = ReadFileOrDie(store_ + "/reconnect.ldif");
  EXPECT_EQ(ldif.find("DC=co\n"), std::string::npos);  // the torn record is gone
  size_t alice = 0, dave = 0;
  for (size_t p = 0; (p = ldif.find("dn: CN=Alice", p)) != std::string::npos; ++p) ++alice;
  for (size_t p = 0; (p = ldif.find("dn: CN=Dave", p)) != std::string::npos; ++p) ++dave;
  EXPECT_EQ(alice, 1u);
  EXPECT_EQ(dave, 1u);
  EXPECT_TRUE(stdfs::exists(store_ + "/retired/" + G(11).ToString()));
  auto ids = Ids(store_ + "/mailboxes/" + G(1).ToString());
  for (const auto& id : ManifestIds(tmp_ / "alice.tsv")) EXPECT_EQ(ids[id], 1) << id;

  // Retired but not journaled (killed right after the rename): the rerun just records it.
  WriteFileOrDie(store_ + "/.mbxmerge/recover.journal",
                 "merged\talice\t\nreconnected\talice\t\nmerged\tdave\t\nreconnected\tdave\t\n");
  r = RunMbxmerge({"recover", "--store", store_, "--quiet", "--report", tmp_ / "r2.json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(ReadFileOrDie(tmp_ / "r2.json"));
  ASSERT_EQ(j["users"].size(), 2u);
  EXPECT_EQ(j["users"][0]["status"], "recovered");
  EXPECT_EQ(j["users"][0]["written"], 0);
}

TEST_F(StoreTest, ALockedStoreIsRefused) {
  auto store = Store::Open(store_);
  ASSERT_TRUE(store.ok());
  auto lock = LockStore(*store);
  ASSERT_TRUE(lock.ok()) << lock.status().ToString();
  auto r = RunMbxmerge({"recover", "--store", store_, "--quiet"});
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_NE(r.err.find("in use by another mbxmerge run"), std::string::npos) << r.err;
  EXPECT_TRUE(stdfs::exists(store_ + "/mailboxes/" + G(11).ToString()));
}

TEST_F(StoreTest, BadDirectoryIsAClearError) {
  WriteFileOrDie(store_ + "/directory.ldif", "dn: cn=x\nobjectGUID:: AAEC\nmailNickname: x\n");
  auto r = RunMbxmerge({"diagnose", "--store", store_});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("directory.ldif"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("16"), std::string::npos) << r.err;
  r = RunMbxmerge({"diagnose", "--store", tmp_ / "nowhere"});
  EXPECT_EQ(r.exit_code, 2);
}

// Export and import keep a journal: killed after the second user, the rerun
// skips the users already done and finishes the rest; a finished run forgets
// the journal, so the next run reads everything again.
TEST_F(StoreTest, ExportAndImportResumeFromTheirJournal) {
  WriteFileOrDie(tmp_ / "list.txt", "alice\nbob\ndave\n");
  const std::string mb = store_ + "/mailboxes/";
  std::map<std::string, std::string> connected = {{"alice", mb + G(11).ToString()},
                                                  {"bob", mb + G(2).ToString() + ".mbox"},
                                                  {"dave", mb + G(14).ToString() + ".mbox"}};
  std::vector<std::string> exp = {testing::MbxmergePath(),
                                  "export",
                                  "--store",
                                  store_,
                                  "--to",
                                  tmp_ / "exp",
                                  "--mailboxes",
                                  tmp_ / "list.txt",
                                  "--quiet",
                                  "--report",
                                  tmp_ / "e.json"};
  std::vector<std::string> killed = {"env", "MBXMERGE_CRASH_AT=export.after-merge:2"};
  killed.insert(killed.end(), exp.begin(), exp.end());
  ASSERT_EQ(testing::Run(killed).exit_code, 128 + 9);
  std::vector<std::string> args(exp.begin() + 1, exp.end());
  auto r = RunMbxmerge(args);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::map<std::string, std::string> status;
  const auto report = nlohmann::json::parse(ReadFileOrDie(tmp_ / "e.json"));
  for (const auto& u : report["users"])
    status[u["alias"].get<std::string>()] = u["status"].get<std::string>();
  // The first user was journaled before the kill; the second was exported
  // but not journaled, so it is exported again (dedupe writes nothing twice).
  EXPECT_EQ(status["alice"], "already-exported");
  EXPECT_EQ(status["bob"], "exported");
  EXPECT_EQ(status["dave"], "exported");
  for (const auto& [alias, path] : connected)
    EXPECT_EQ(Ids(tmp_ / ("exp/" + alias + ".mbxz")), Ids(path)) << alias;
  EXPECT_FALSE(stdfs::exists(store_ + "/.mbxmerge/export.journal"));
  // The journal is gone: a new run exports every user again, writing nothing new.
  r = RunMbxmerge(args);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto again = nlohmann::json::parse(ReadFileOrDie(tmp_ / "e.json"));
  for (const auto& u : again["users"]) {
    EXPECT_EQ(u["status"], "exported") << u["alias"];
    EXPECT_EQ(u["written"], 0) << u["alias"];
  }

  // Import into emptied mailboxes, killed after the first user.
  std::map<std::string, std::map<std::string, int>> before;
  for (const auto& [alias, path] : connected) before[alias] = Ids(path);
  WriteFileOrDie(connected["bob"], "");
  WriteFileOrDie(connected["dave"], "");
  std::vector<std::string> imp = {testing::MbxmergePath(),
                                  "import",
                                  "--store",
                                  store_,
                                  "--from",
                                  tmp_ / "exp",
                                  "--quiet",
                                  "--report",
                                  tmp_ / "i.json"};
  killed = {"env", "MBXMERGE_CRASH_AT=import.after-merge:1"};
  killed.insert(killed.end(), imp.begin(), imp.end());
  ASSERT_EQ(testing::Run(killed).exit_code, 128 + 9);
  r = RunMbxmerge(std::vector<std::string>(imp.begin() + 1, imp.end()));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const auto& [alias, path] : connected) EXPECT_EQ(Ids(path), before[alias]) << alias;
  EXPECT_FALSE(stdfs::exists(store_ + "/.mbxmerge/import.journal"));
}

TEST_F(StoreTest, ExportImportRoundTripThroughMbxz) {
  WriteFileOrDie(tmp_ / "list.txt", "# the ones with mailboxes\nalice\nBob Baker\ndave\n");
  const std::string mb = store_ + "/mailboxes/";
  std::map<std::string, std::string> connected = {{"alice", mb + G(11).ToString()},
                                                  {"bob", mb + G(2).ToString() + ".mbox"},
                                                  {"dave", mb + G(14).ToString() + ".mbox"}};
  std::map<std::string, std::map<std::string, int>> before;
  for (const auto& [alias, path] : connected) before[alias] = Ids(path);

  auto r = RunMbxmerge({"export", "--store", store_, "--to", tmp_ / "exp", "--mailboxes",
                        tmp_ / "list.txt", "--quiet", "--report", tmp_ / "e.json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const auto& [alias, _] : connected) {
    EXPECT_TRUE(stdfs::exists(tmp_ / ("exp/" + alias + ".mbxz"))) << alias;
    EXPECT_EQ(Ids(tmp_ / ("exp/" + alias + ".mbxz")), before[alias]) << alias;
  }
  EXPECT_FALSE(stdfs::exists(tmp_ / "exp/carol.mbxz"));

  // Empty the connected mailboxes, then import: everything comes back, once.
  stdfs::remove_all(connected["alice"]);
  for (const char* sub : {"cur", "new", "tmp"})
    stdfs::create_directories(connected["alice"] + "/" + sub);
  WriteFileOrDie(connected["bob"], "");
  WriteFileOrDie(connected["dave"], "");
  r = RunMbxmerge({"import", "--store", store_, "--from", tmp_ / "exp", "--quiet", "--report",
                   tmp_ / "i.json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const auto& [alias, path] : connected) EXPECT_EQ(Ids(path), before[alias]) << alias;
  auto folders = [](const std::string& path) {
    std::set<std::string> out;
    auto src = OpenSource(*ParseLocation(path, false));
    Message m;
    while (*(*src)->Next(&m)) out.insert(m.folder);
    return out;
  };
  EXPECT_GE(folders(connected["alice"]).size(), 2u);

  r = RunMbxmerge({"import", "--store", store_, "--from", tmp_ / "exp", "--quiet", "--report",
                   tmp_ / "i2.json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(ReadFileOrDie(tmp_ / "i2.json"));
  for (const auto& u : j["users"]) EXPECT_EQ(u["written"], 0) << u["alias"];

  // Export to PST (our writer), then import from those PSTs into emptied
  // mailboxes: everything comes back, once; every PST passes the checker.
  r = RunMbxmerge({"export", "--store", store_, "--to", tmp_ / "pst", "--format", "pst",
                   "--mailboxes", tmp_ / "list.txt", "--quiet"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const auto& [alias, path] : connected) {
    const std::string pst = tmp_ / ("pst/" + alias + ".pst");
    ASSERT_TRUE(stdfs::exists(pst)) << alias;
    EXPECT_EQ(Ids(pst), before[alias]) << alias;
    auto check = RunMbxmerge({"check", pst});
    EXPECT_EQ(check.exit_code, 0) << check.out << check.err;
  }
  // Exporting again into the same PSTs finds everything there.
  r = RunMbxmerge({"export", "--store", store_, "--to", tmp_ / "pst", "--format", "pst",
                   "--mailboxes", tmp_ / "list.txt", "--quiet", "--report", tmp_ / "e2.json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto e2 = nlohmann::json::parse(ReadFileOrDie(tmp_ / "e2.json"));
  for (const auto& u : e2["users"]) EXPECT_EQ(u["written"], 0) << u["alias"];
  stdfs::remove_all(connected["alice"]);
  for (const char* sub : {"cur", "new", "tmp"})
    stdfs::create_directories(connected["alice"] + "/" + sub);
  WriteFileOrDie(connected["bob"], "");
  WriteFileOrDie(connected["dave"], "");
  stdfs::remove_all(tmp_ / "exp");
  r = RunMbxmerge({"import", "--store", store_, "--from", tmp_ / "pst", "--quiet"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const auto& [alias, path] : connected) EXPECT_EQ(Ids(path), before[alias]) << alias;
}

TEST_F(StoreTest, OptionsFromAConfigFile) {
  WriteFileOrDie(tmp_ / "run.ini", "# like ExMerge.ini\n[recover]\nstore = \"" + store_ +
                                       "\"\nrange = \"a..b\"\nreport = \"" + tmp_ / "r.json" +
                                       "\"\nquiet = true\n");
  auto r = RunMbxmerge({"recover", "--config", tmp_ / "run.ini"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(ReadFileOrDie(tmp_ / "r.json"));
  ASSERT_EQ(j["users"].size(), 1u);  // the range a..b takes alice only
  EXPECT_EQ(j["users"][0]["alias"], "alice");
  EXPECT_TRUE(stdfs::exists(store_ + "/retired/" + G(11).ToString()));
  EXPECT_TRUE(
      stdfs::exists(store_ + "/mailboxes/" + G(14).ToString() + ".mbox"));  // dave untouched

  WriteFileOrDie(tmp_ / "bad.ini", "[recover]\nstore = \"" + store_ + "\"\nmailbox-list = \"x\"\n");
  r = RunMbxmerge({"recover", "--config", tmp_ / "bad.ini"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("mailbox-list"), std::string::npos) << r.err;
}

// N machines each recovering one shard end with the same store as one run.
TEST(ShardTest, ShardsTogetherEqualTheUnshardedRun) {
  TempDir tmp;
  auto g = RunMbxgen(
      {"store", "--out", tmp / "one", "--users", "14", "--messages", "15", "--seed", "9"});
  ASSERT_EQ(g.exit_code, 0) << g.err;
  stdfs::copy(tmp / "one", tmp / "many", stdfs::copy_options::recursive);
  ASSERT_EQ(RunMbxmerge({"recover", "--store", tmp / "one", "--quiet"}).exit_code, 0);
  size_t nonempty = 0;
  for (const char* shard : {"1/3", "2/3", "3/3"}) {
    auto r = RunMbxmerge({"recover", "--store", tmp / "many", "--shard", shard, "--report",
                          tmp / "s.json", "--quiet"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    nonempty += !nlohmann::json::parse(ReadFileOrDie(tmp / "s.json"))["users"].empty();
  }
  EXPECT_GE(nonempty, 2u);  // the users really were split
  auto records = [](const std::string& ldif) {
    std::multiset<std::string> out;
    size_t pos = ldif.find("\n\n");
    while (pos != std::string::npos && pos + 2 < ldif.size()) {
      size_t end = ldif.find("\n\n", pos + 2);
      out.insert(
          ldif.substr(pos + 2, end == std::string::npos ? std::string::npos : end - pos - 2));
      pos = end;
    }
    return out;
  };
  EXPECT_EQ(records(ReadFileOrDie(tmp / "many/reconnect.ldif")),
            records(ReadFileOrDie(tmp / "one/reconnect.ldif")));
  EXPECT_GT(records(ReadFileOrDie(tmp / "one/reconnect.ldif")).size(), 5u);
  auto listing = [](const std::string& dir) {
    std::set<std::string> out;
    for (const auto& e : stdfs::directory_iterator(dir)) out.insert(e.path().filename().string());
    return out;
  };
  EXPECT_EQ(listing(tmp / "many/retired"), listing(tmp / "one/retired"));
  for (const auto& name : listing(tmp / "one/mailboxes")) {
    std::string a = tmp / ("one/mailboxes/" + name), b = tmp / ("many/mailboxes/" + name);
    auto ids_a = testing::MbxgenIdCounts(a), ids_b = testing::MbxgenIdCounts(b);
    EXPECT_EQ(ids_a, ids_b) << name;
  }
}

// --jobs N merges N mailboxes at a time; everything after the merges stays in
// user order, so the change file, the report and every mailbox are the same as
// with one job, byte for byte where order is visible. Export and import too.
TEST(ParallelStoreTest, JobsMergeMailboxesConcurrentlyWithTheSameResult) {
  TempDir tmp;
  auto g = RunMbxgen({"store", "--out", tmp / "j1", "--users", "12", "--messages", "25", "--seed", "21"});
  ASSERT_EQ(g.exit_code, 0) << g.err;
  stdfs::copy(tmp / "j1", tmp / "j3", stdfs::copy_options::recursive);
  for (const char* jobs : {"1", "3"}) {
    const std::string store = tmp / (std::string("j") + jobs);
    // Export first: after recover the directory still names the blank mailboxes.
    auto e = RunMbxmerge({"export", "--store", store, "--to", tmp / (std::string("x") + jobs), "--jobs", jobs,
                          "--quiet", "--report", tmp / (std::string("e") + jobs + ".json")});
    EXPECT_LE(e.exit_code, 1) << e.err;  // users without a mailbox file fail, the same with any --jobs
    auto r = RunMbxmerge({"recover", "--store", store, "--jobs", jobs, "--batch", "7", "--quiet", "--report",
                          tmp / (std::string("r") + jobs + ".json")});
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  EXPECT_EQ(ReadFileOrDie(tmp / "j1/reconnect.ldif"), ReadFileOrDie(tmp / "j3/reconnect.ldif"));
  for (const char* report : {"r", "e"}) {
    auto a = nlohmann::json::parse(ReadFileOrDie(tmp / (std::string(report) + "1.json")));
    auto b = nlohmann::json::parse(ReadFileOrDie(tmp / (std::string(report) + "3.json")));
    ASSERT_EQ(a["users"].size(), b["users"].size()) << report;
    ASSERT_GT(a["users"].size(), 3u) << report;
    for (size_t i = 0; i < a["users"].size(); ++i) {
      for (const char* k : {"alias", "status", "read", "written", "duplicates_skipped", "bytes_written", "error"}) {
        EXPECT_EQ(a["users"][i].value(k, nlohmann::json()), b["users"][i].value(k, nlohmann::json()))
            << report << " user " << i << " " << k;
      }
    }
  }
  for (const char* dir : {"mailboxes", "retired"}) {
    for (const auto& e : stdfs::directory_iterator(tmp / (std::string("j1/") + dir))) {
      const std::string name = e.path().filename().string();
      EXPECT_EQ(testing::MbxgenIdCounts(e.path().string()),
                testing::MbxgenIdCounts(tmp / (std::string("j3/") + dir + "/" + name)))
          << dir << "/" << name;
    }
  }
  for (const auto& e : stdfs::directory_iterator(tmp / "x1")) {
    const std::string name = e.path().filename().string();
    EXPECT_EQ(testing::MbxgenIdCounts(e.path().string()), testing::MbxgenIdCounts(tmp / ("x3/" + name))) << name;
  }
}

TEST(JournalTest, IgnoresATornLastLine) {
  TempDir tmp;
  WriteFileOrDie(tmp / "j", "merged\ta\tx\nreconnected\ta\t\nmerged\tb\t\nretir");
  auto j = Journal::Open(tmp / "j");
  ASSERT_TRUE(j.ok());
  EXPECT_EQ(j->Step("a"), "reconnected");
  EXPECT_EQ(j->Step("b"), "merged");
  EXPECT_EQ(j->Detail("a"), "x");
  EXPECT_EQ(j->Step("c"), "");
}

// Several records in one append (recover journals a group of users at once):
// read back in order, each user's last step and first detail.
TEST(JournalTest, RecordAllAppendsEveryRecordInOrder) {
  TempDir tmp;
  {
    auto j = Journal::OpenForAppend(tmp / "j");
    ASSERT_TRUE(j.ok());
    ASSERT_TRUE(j->RecordAll({{"a", "merged", "ga"}, {"b", "merged", "gb"}}).ok());
    ASSERT_TRUE(j->RecordAll({{"a", "reconnected", ""}, {"b", "reconnected", ""}}).ok());
    ASSERT_TRUE(j->RecordAll({}).ok());
    EXPECT_EQ(j->Step("b"), "reconnected");
  }
  EXPECT_EQ(ReadFileOrDie(tmp / "j"),
            "merged\ta\tga\nmerged\tb\tgb\nreconnected\ta\t\nreconnected\tb\t\n");
  auto j = Journal::Open(tmp / "j");
  ASSERT_TRUE(j.ok());
  ASSERT_EQ(j->Entries().size(), 2u);
  EXPECT_EQ(j->Entries()[0], (std::pair<std::string, std::string>{"a", "reconnected"}));
  EXPECT_EQ(j->Entries()[1], (std::pair<std::string, std::string>{"b", "reconnected"}));
  EXPECT_EQ(j->Detail("a"), "ga");
  EXPECT_EQ(j->Detail("b"), "gb");
}

// A torn line after a power cut ("retired\tb" cut short: a prefix of another
// user's record) must not glue itself to the next record.
TEST(JournalTest, AppendingCutsOffATornLastLine) {
  TempDir tmp;
  WriteFileOrDie(tmp / "j", "merged\tbo\t\nmerged\tbob\t\nretired\tbo");
  {
    auto j = Journal::OpenForAppend(tmp / "j");
    ASSERT_TRUE(j.ok());
    EXPECT_EQ(j->Step("bo"), "merged");
    ASSERT_TRUE(j->Record("bob", "reconnected").ok());
  }
  EXPECT_EQ(ReadFileOrDie(tmp / "j"), "merged\tbo\t\nmerged\tbob\t\nreconnected\tbob\t\n");
  auto again = Journal::Open(tmp / "j");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->Step("bo"), "merged");
  EXPECT_EQ(again->Step("bob"), "reconnected");
}

}  // namespace
}  // namespace mbx::recovery
