// Associated (FAI) contents, folder properties and recovered items of PSTs:
// the PST source behind --associated and --recover-deleted, the writer's
// associated contents tables, and PST -> PST carrying both.
//
// Oracles: libpff's pffexport 20180714 does not export FAI at all (it never
// calls libpff_folder_get_sub_associated_content), so FAI counts are checked
// against what Outlook itself recorded (PidTagAssociatedContentCount 0x3617
// on each folder) and against our own NDB/LTP reader, which parses the
// associated contents tables without libpff. Recovered and orphan items are
// checked against `pffexport -m recovered -l`.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <map>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "engine/message.h"
#include "engine/recovery/store.h"
#include "formats/ldif/ldif.h"
#include "formats/pst/disk/disk.h"
#include "formats/pst/ltp/reader.h"
#include "formats/pst/mapi.h"
#include "formats/pst/messaging/store_writer.h"
#include "formats/pst/ndb/reader.h"
#include "formats/pst/pst.h"
#include "tests/pst_oracles.h"
#include "tests/test_util.h"

namespace mbx {
namespace {

using pst::messaging::Int32Prop;
using pst::messaging::OutMessage;
using pst::messaging::StoreWriter;
using pst::messaging::StringProp;
using testing::PstCheckViolations;
using testing::RunMbxmerge;
using testing::TempDir;

OutMessage Mail(const std::string& subject) {
  OutMessage m;
  m.props = {StringProp(0x001A, "IPM.Note"), StringProp(0x0037, subject),
             StringProp(0x1000, "body of " + subject), Int32Prop(0x0E07, 1)};
  return m;
}

OutMessage Fai(const std::string& cls, const std::string& subject, const std::string& blob) {
  OutMessage m;
  m.props = {StringProp(0x001A, cls), StringProp(0x0037, subject),
             pst::messaging::BinaryProp(0x7C07, blob)};
  return m;
}

// What a synthetic store holds: Inbox (3 mails, 3 FAI: two views with one
// empty subject and different contents, and a rule), Calendar
// (IPF.Appointment, a comment, 1 FAI), Contacts (IPF.Contact, no FAI).
struct Synthetic {
  uint32_t inbox = 0, calendar = 0, contacts = 0;
};

Synthetic WriteSynthetic(const std::string& path,
                         const std::function<void(StoreWriter&, const Synthetic&)>& extra = {}) {
  auto w = StoreWriter::Create(path, {});
  EXPECT_TRUE(w.ok()) << w.status().ToString();
  StoreWriter& s = **w;
  Synthetic ids;
  ids.inbox = *s.CreateFolder(pst::messaging::kNidIpmSubtree, "Inbox");
  s.SetSpecialFolder(pst::messaging::SpecialFolder::kInbox, ids.inbox);
  ids.calendar = *s.CreateFolder(pst::messaging::kNidIpmSubtree, "Calendar", "IPF.Appointment");
  EXPECT_TRUE(s.SetFolderProperties(ids.calendar, {StringProp(0x3004, "team calendar")}, {}).ok());
  ids.contacts = *s.CreateFolder(pst::messaging::kNidIpmSubtree, "Contacts", "IPF.Contact");
  for (const char* subj : {"one", "two", "three"})
    EXPECT_TRUE(s.AddMessage(ids.inbox, Mail(subj)).ok());
  EXPECT_TRUE(
      s.AddAssociatedMessage(ids.inbox, Fai("IPM.Microsoft.FolderDesign.NamedView", "", "view A"))
          .ok());
  EXPECT_TRUE(
      s.AddAssociatedMessage(ids.inbox, Fai("IPM.Microsoft.FolderDesign.NamedView", "", "view B"))
          .ok());
  EXPECT_TRUE(
      s.AddAssociatedMessage(ids.inbox, Fai("IPM.Rule.Version2.Message", "rule", "r")).ok());
  EXPECT_TRUE(
      s.AddAssociatedMessage(ids.calendar, Fai("IPM.Configuration.Calendar", "cfg", "c")).ok());
  if (extra) extra(s, ids);
  EXPECT_TRUE(s.Finish().ok());
  return ids;
}

// A PST as our source shows it.
struct Seen {
  std::map<std::string, std::multiset<std::string>> messages;  // folder -> subjects
  std::map<std::string, std::multiset<std::string>> fai;       // folder -> "class|subject"
  std::map<std::string, std::string> container_class, comment;
  std::map<std::string, uint32_t> assoc_count_prop;  // 0x3617 where the folder has it
  std::map<std::string, uint32_t> nid;
  std::vector<std::string> failed;
  size_t fai_total = 0;
};

Seen Read(const std::string& path, pst::PstSourceOptions opts) {
  Seen out;
  auto src = pst::OpenSource(path, opts);
  EXPECT_TRUE(src.ok()) << src.status().ToString();
  if (!src.ok()) return out;
  for (const auto& f : pst::FoldersOf(src->get())) {
    if (out.nid.count(f.path)) continue;  // the first folder of a path is the one filled first
    out.nid[f.path] = f.nid;
    if (auto c = f.props->String(0x3613)) out.container_class[f.path] = *c;
    if (auto c = f.props->String(0x3004)) out.comment[f.path] = *c;
    if (auto n = f.props->Int(0x3617)) out.assoc_count_prop[f.path] = static_cast<uint32_t>(*n);
  }
  Message m;
  for (;;) {
    auto more = (*src)->Next(&m);
    EXPECT_TRUE(more.ok()) << more.status().ToString();
    if (!more.ok() || !*more) break;
    if (m.read_error) {
      out.failed.push_back(m.folder + ": " + m.read_error->ToString());
      continue;
    }
    const pst::MapiMessage* mapi = pst::MapiOf(m);
    EXPECT_NE(mapi, nullptr);
    if (mapi == nullptr) continue;
    const std::string subject = mapi->props.StringOr(pst::kPidSubject);
    if (m.associated) {
      out.fai[m.folder].insert(mapi->props.StringOr(pst::kPidMessageClass) + "|" + subject);
      ++out.fai_total;
    } else {
      out.messages[m.folder].insert(subject);
    }
  }
  return out;
}

// Rows of every folder's associated contents table and the folder's 0x3617,
// read by our own NDB/LTP reader (not libpff): folder NID -> (rows, 0x3617).
std::map<uint32_t, std::pair<size_t, int64_t>> AssocTables(const std::string& path) {
  std::map<uint32_t, std::pair<size_t, int64_t>> out;
  auto r = pst::ndb::NdbReader::Open(path);
  if (!r.ok()) {
    ADD_FAILURE() << r.status().ToString();
    return out;
  }
  EXPECT_TRUE(r->LoadTrees().ok());
  auto open = [&](const pst::ndb::NodeEntry& n,
                  pst::ltp::NodeContext* ctx) -> Result<pst::ltp::Heap> {
    MBX_ASSIGN_OR_RETURN(auto data, r->ReadData(n.bid_data));
    MBX_ASSIGN_OR_RETURN(ctx->subnodes, r->ReadSubnodes(n.bid_sub));
    ctx->ndb = &*r;
    return pst::ltp::Heap::Open(std::move(data));
  };
  for (const auto& n : r->nodes()) {
    if (pst::disk::NidTypeOf(n.nid) != pst::disk::kNidTypeNormalFolder) continue;
    const auto* t = r->FindNode(pst::disk::WithNidType(static_cast<uint32_t>(n.nid),
                                                       pst::disk::kNidTypeAssocContentsTable));
    if (t == nullptr) continue;
    pst::ltp::NodeContext tctx, pctx;
    auto theap = open(*t, &tctx);
    auto pheap = open(n, &pctx);
    if (!theap.ok() || !pheap.ok()) continue;
    auto table = pst::ltp::ReadTableContext(*theap, tctx);
    auto pc = pst::ltp::ReadPropertyContext(*pheap, pctx);
    EXPECT_TRUE(table.ok() && pc.ok());
    if (!table.ok() || !pc.ok()) continue;
    int64_t count = -1;
    if (const auto* p = pst::ltp::FindProperty(*pc, 0x3617); p != nullptr && p->value.size() >= 4)
      count = pst::disk::Get32(reinterpret_cast<const uint8_t*>(p->value.data()));
    out[static_cast<uint32_t>(n.nid)] = {table->rows.size(), count};
  }
  return out;
}

pst::PstSourceOptions WithFai() {
  pst::PstSourceOptions o;
  o.associated = true;
  return o;
}
pst::PstSourceOptions WithRecovered(bool associated = false) {
  pst::PstSourceOptions o;
  o.associated = associated;
  o.recover_deleted = true;
  return o;
}

std::string Join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& e : v) s += e + "\n";
  return s;
}

// ---- the writer and the source, on synthetic stores ----

TEST(PstFaiTest, WriterKeepsAssociatedContentsAndSourceYieldsThemOnlyOnRequest) {
  TempDir dir;
  const std::string path = dir / "fai.pst";
  const Synthetic ids = WriteSynthetic(path);
  EXPECT_EQ(PstCheckViolations(path), "");

  const Seen plain = Read(path, {});
  EXPECT_EQ(plain.fai_total, 0u);
  EXPECT_EQ(plain.messages.at("").size(), 3u);

  const Seen fai = Read(path, WithFai());
  EXPECT_TRUE(fai.failed.empty()) << Join(fai.failed);
  EXPECT_EQ(fai.messages, plain.messages);  // FAI never shows up as a message
  EXPECT_EQ(fai.fai.at(""), (std::multiset<std::string>{"IPM.Microsoft.FolderDesign.NamedView|",
                                                        "IPM.Microsoft.FolderDesign.NamedView|",
                                                        "IPM.Rule.Version2.Message|rule"}));
  EXPECT_EQ(fai.fai.at("Calendar"), (std::multiset<std::string>{"IPM.Configuration.Calendar|cfg"}));
  EXPECT_EQ(fai.fai.count("Contacts"), 0u);
  EXPECT_EQ(fai.container_class.at("Calendar"), "IPF.Appointment");
  EXPECT_EQ(fai.container_class.at("Contacts"), "IPF.Contact");
  EXPECT_EQ(fai.comment.at("Calendar"), "team calendar");

  // Our own reader sees the same tables, and the counts the writer recorded.
  const auto tables = AssocTables(path);
  EXPECT_EQ(tables.at(ids.inbox), std::make_pair(size_t{3}, int64_t{3}));
  EXPECT_EQ(tables.at(ids.calendar), std::make_pair(size_t{1}, int64_t{1}));
  EXPECT_EQ(tables.at(ids.contacts).first, 0u);
}

// An orphan in libpff's sense is a node whose parent folder does not exist;
// libpff reports it, pffexport exports it, and --recover-deleted offers it.
TEST(PstFaiTest, OrphanMessageOfSyntheticStoreIsRecovered) {
  if (!testing::HaveProgram("pffexport")) GTEST_SKIP() << "pffexport (pff-tools) not installed";
  TempDir dir;
  const std::string path = dir / "orphan.pst";
  WriteSynthetic(path, [](StoreWriter& s, const Synthetic& ids) {
    // A folder NID that was never allocated: the message's folder is gone.
    EXPECT_TRUE(
        s.AddUnlistedMessageForTesting(pst::disk::MakeNid(pst::disk::kNidTypeNormalFolder, 0x7000),
                                       Mail("lost and found"))
            .ok());
    // Parent exists but its contents table does not list it: libpff never
    // sees it (it lists a folder's messages from the contents table, and the
    // node is no orphan), so neither does --recover-deleted.
    EXPECT_TRUE(s.AddUnlistedMessageForTesting(ids.inbox, Mail("unlisted")).ok());
  });
  const Seen plain = Read(path, {});
  EXPECT_EQ(plain.messages.count("Recovered Items"), 0u);
  const Seen rec = Read(path, WithRecovered());
  EXPECT_TRUE(rec.failed.empty()) << Join(rec.failed);
  EXPECT_EQ(rec.messages.at("Recovered Items"), (std::multiset<std::string>{"lost and found"}));
  EXPECT_EQ(rec.messages.at(""), plain.messages.at(""));

  // pffexport finds the same one orphan and nothing else.
  auto r = testing::Run({"pffexport", "-q", "-m", "recovered", "-t", dir / "x", path});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(testing::ListFilesRecursive(dir / "x.orphans").empty(), false);
  int orphans = 0;
  for (const auto& f : testing::ListFilesRecursive(dir / "x.orphans"))
    if (f.find("OutlookHeaders.txt") != std::string::npos) ++orphans;
  EXPECT_EQ(orphans, 1);

  // Merged into a new PST: the orphan lands in "Recovered Items".
  const std::string out = dir / "out.pst";
  auto m = RunMbxmerge({"merge", "--from", path, "--into", out, "--recover-deleted", "-q"});
  ASSERT_EQ(m.exit_code, 0) << m.out << m.err;
  EXPECT_EQ(PstCheckViolations(out), "");
  EXPECT_EQ(Read(out, {}).messages.at("Recovered Items"),
            (std::multiset<std::string>{"lost and found"}));
}

// ---- PST -> PST ----

TEST(PstFaiTest, PstToPstCarriesFaiAndFolderPropertiesAndRerunDoublesNothing) {
  TempDir dir;
  const std::string src = dir / "src.pst";
  WriteSynthetic(src);
  const std::string out = dir / "out.pst";
  for (int run = 0; run < 2; ++run) {
    auto r =
        RunMbxmerge({"merge", "--from", src, "--into", out, "--associated", "-q", "--no-backup"});
    ASSERT_EQ(r.exit_code, 0) << "run " << run << ": " << r.out << r.err;
    EXPECT_EQ(PstCheckViolations(out), "") << "run " << run;
    const Seen a = Read(src, WithFai());
    const Seen b = Read(out, WithFai());
    EXPECT_EQ(b.messages, a.messages) << "run " << run;
    EXPECT_EQ(b.fai, a.fai) << "run " << run;
    EXPECT_EQ(b.container_class.at("Calendar"), "IPF.Appointment");
    // Contacts holds nothing, so the merge has no reason to create it.
    EXPECT_EQ(b.container_class.count("Contacts"), 0u);
    EXPECT_EQ(b.comment.at("Calendar"), "team calendar");
    const auto tables = AssocTables(out);
    for (const auto& [folder, nid] : b.nid) {
      const size_t want = b.fai.count(folder) ? b.fai.at(folder).size() : 0;
      EXPECT_EQ(tables.count(nid) ? tables.at(nid).first : 0, want) << folder;
    }
  }
}

// FAI outside the mailbox's folders: on the top of the IPM subtree, in
// Common Views, in the search root and in folders beside the subtree (an
// OST's Shortcuts). The source names them by store paths, the sink puts them
// in the target store's own folders (by role) or beside its subtree, and
// --target-folder does not move them: they belong to the store.
TEST(PstFaiTest, StoreFoldersFaiGoesToTheTargetStoresOwnFolders) {
  using pst::messaging::kNidCommonViews;
  using pst::messaging::kNidIpmSubtree;
  using pst::messaging::kNidSearchRoot;
  TempDir dir;
  const std::string src = dir / "src.pst";
  uint32_t shortcuts = 0, sub = 0;
  WriteSynthetic(src, [&](StoreWriter& s, const Synthetic&) {
    EXPECT_TRUE(
        s.AddAssociatedMessage(kNidIpmSubtree, Fai("IPM.Configuration.Top", "top", "t")).ok());
    EXPECT_TRUE(
        s.AddAssociatedMessage(kNidCommonViews, Fai("IPM.Microsoft.WunderBar.Link", "", "nav 1"))
            .ok());
    EXPECT_TRUE(
        s.AddAssociatedMessage(kNidCommonViews, Fai("IPM.Microsoft.WunderBar.Link", "", "nav 2"))
            .ok());
    EXPECT_TRUE(
        s.AddAssociatedMessage(kNidSearchRoot, Fai("IPM.Configuration.Finder", "f", "f")).ok());
    shortcuts = *s.CreateFolder(pst::disk::kNidRootFolder, "Shortcuts");
    sub = *s.CreateFolder(shortcuts, "Group");
    EXPECT_TRUE(
        s.AddAssociatedMessage(shortcuts, Fai("IPM.Microsoft.WunderBar.SFInfo", "s", "s")).ok());
    EXPECT_TRUE(s.AddAssociatedMessage(sub, Fai("IPM.Microsoft.WunderBar.Link", "g", "g")).ok());
    // The root folder itself takes no messages: its tables are fixed.
    EXPECT_FALSE(s.AddAssociatedMessage(pst::disk::kNidRootFolder, Fai("IPM.X", "x", "x")).ok());
  });
  EXPECT_EQ(PstCheckViolations(src), "");
  const std::map<std::string, std::multiset<std::string>> store_fai = {
      {"/IPM_SUBTREE", {"IPM.Configuration.Top|top"}},
      {"/IPM_COMMON_VIEWS", {"IPM.Microsoft.WunderBar.Link|", "IPM.Microsoft.WunderBar.Link|"}},
      {"/Search Root", {"IPM.Configuration.Finder|f"}},
      {"/Shortcuts", {"IPM.Microsoft.WunderBar.SFInfo|s"}},
      {"/Shortcuts/Group", {"IPM.Microsoft.WunderBar.Link|g"}}};
  auto only_store = [](const Seen& s) {
    std::map<std::string, std::multiset<std::string>> out;
    for (const auto& [folder, items] : s.fai)
      if (IsStoreFolder(folder)) out[folder] = items;
    return out;
  };
  EXPECT_EQ(only_store(Read(src, WithFai())), store_fai);
  EXPECT_TRUE(only_store(Read(src, {})).empty());  // without --associated: nothing of it
  EXPECT_EQ(Read(src, {}).messages.count("/IPM_SUBTREE"), 0u);

  const std::string out = dir / "out.pst";
  for (int run = 0; run < 2; ++run) {
    auto r = RunMbxmerge({"merge", "--from", src, "--into", out, "--associated", "--target-folder",
                          "Restored", "-q", "--no-backup"});
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
    EXPECT_EQ(PstCheckViolations(out), "") << "run " << run;
    const Seen b = Read(out, WithFai());
    EXPECT_EQ(only_store(b), store_fai) << "run " << run;         // a rerun doubles nothing
    EXPECT_EQ(b.fai.at("Restored").size(), 3u) << "run " << run;  // the mailbox's do move
    const auto tables = AssocTables(out);
    EXPECT_EQ(tables.at(kNidIpmSubtree).first, 1u);
    EXPECT_EQ(tables.at(kNidCommonViews).first, 2u);
    EXPECT_EQ(tables.at(kNidSearchRoot).first, 1u);
    EXPECT_EQ(tables.at(b.nid.at("/Shortcuts")).first, 1u);
    EXPECT_EQ(tables.at(b.nid.at("/Shortcuts/Group")).first, 1u);
  }
}

TEST(PstFaiTest, AssociatedIsRefusedForMimeTargets) {
  TempDir dir;
  const std::string src = dir / "src.pst";
  WriteSynthetic(src);
  auto r = RunMbxmerge({"merge", "--from", src, "--into", dir / "md", "--associated", "-q"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("associated (FAI)"), std::string::npos) << r.err;
}

// The store commands take --associated and --recover-deleted too: recovering
// a blank PST mailbox into its original PST carries the blank's FAI and its
// orphans (into "Recovered Items"); without the flags, neither.
TEST(PstFaiTest, RecoverCarriesAssociatedAndRecoveredItemsOfPstMailboxes) {
  auto guid = [](int n) {
    std::string raw(16, '\0');
    for (size_t i = 0; i < raw.size(); ++i) raw[i] = static_cast<char>(n * 17 + static_cast<int>(i));
    return *recovery::Guid::FromBytes(raw);
  };
  for (bool with_flags : {true, false}) {
    SCOPED_TRACE(with_flags ? "with the flags" : "without the flags");
    TempDir dir;
    const std::string store = dir / "store", mb = store + "/mailboxes/";
    std::filesystem::create_directories(mb);
    const std::string blank = mb + guid(11).ToString() + ".pst", original = mb + guid(1).ToString() + ".pst";
    WriteSynthetic(blank, [](StoreWriter& s, const Synthetic&) {
      EXPECT_TRUE(s.AddUnlistedMessageForTesting(pst::disk::MakeNid(pst::disk::kNidTypeNormalFolder, 0x7000),
                                                 Mail("lost and found"))
                      .ok());
    });
    {
      auto w = StoreWriter::Create(original, {});
      ASSERT_TRUE(w.ok()) << w.status().ToString();
      auto inbox = (*w)->CreateFolder(pst::messaging::kNidIpmSubtree, "Inbox");
      ASSERT_TRUE(inbox.ok());
      (*w)->SetSpecialFolder(pst::messaging::SpecialFolder::kInbox, *inbox);
      ASSERT_TRUE((*w)->AddMessage(*inbox, Mail("old mail")).ok());
      ASSERT_TRUE((*w)->Finish().ok());
    }
    const recovery::Guid object = guid(1), mailbox = guid(11);
    std::string ldif = "version: 1\n\n";
    ldif += "dn: CN=Erin Ek,OU=Users,DC=corp,DC=example\nobjectClass: user\ndisplayName: Erin Ek\n";
    ldif += ldif::FormatAttribute("objectGUID", object.Raw());
    ldif += "mailNickname: erin\n";
    ldif += ldif::FormatAttribute("msExchMailboxGUID", mailbox.Raw());
    testing::WriteFileOrDie(store + "/directory.ldif", ldif);

    std::vector<std::string> args{"recover", "--store", store, "-q"};
    if (with_flags) args.insert(args.end(), {"--associated", "--recover-deleted"});
    auto r = RunMbxmerge(args);
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
    EXPECT_EQ(PstCheckViolations(original), "");
    const Seen got = Read(original, WithFai());
    const Seen want = Read(dir / "store/retired/" + guid(11).ToString() + ".pst", WithFai());
    EXPECT_EQ(got.messages.at(""), (std::multiset<std::string>{"old mail", "one", "two", "three"}));
    if (with_flags) {
      EXPECT_EQ(got.fai.at(""), want.fai.at(""));
      EXPECT_EQ(got.fai.at("Calendar"), want.fai.at("Calendar"));
      EXPECT_EQ(got.messages.at("Recovered Items"), (std::multiset<std::string>{"lost and found"}));
    } else {
      EXPECT_EQ(got.fai_total, 0u);
      EXPECT_EQ(got.messages.count("Recovered Items"), 0u);
    }
  }
}

// Rewriting an existing PST (merging mail into it, no --associated) keeps
// its FAI items and folder properties; a rerun adds nothing.
TEST(PstFaiTest, RewritingAnExistingPstKeepsItsFaiAndFolderProperties) {
  TempDir dir;
  const std::string target = dir / "target.pst";
  WriteSynthetic(target);
  const Seen before = Read(target, WithFai());
  testing::WriteFileOrDie(
      dir / "new.mbox",
      "From a@example.com Mon Jan  1 00:00:00 2024\n"
      "From: a@example.com\nTo: b@example.com\nSubject: merged in\n"
      "Message-ID: <merged@example.com>\nDate: Mon, 1 Jan 2024 00:00:00 +0000\n\n"
      "hello\n");
  for (int run = 0; run < 2; ++run) {
    auto r =
        RunMbxmerge({"merge", "--from", dir / "new.mbox", "--into", target, "-q", "--no-backup"});
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
    EXPECT_EQ(PstCheckViolations(target), "");
    const Seen after = Read(target, WithFai());
    EXPECT_EQ(after.fai, before.fai) << "run " << run;
    EXPECT_EQ(after.container_class.at("Calendar"), "IPF.Appointment");
    EXPECT_EQ(after.container_class.at("Contacts"), "IPF.Contact");
    EXPECT_EQ(after.comment.at("Calendar"), "team calendar");
    auto want = before.messages;
    want[""].insert("merged in");
    EXPECT_EQ(after.messages, want) << "run " << run;
  }
}

// ---- real Outlook files ----

std::vector<std::string> RealFiles() { return testing::SharedOutlookFiles(); }

// libpff's FAI per folder equals the count Outlook recorded on the folder and,
// for the Unicode PSTs our reader opens, the rows of the folder's table.
TEST(PstFaiTest, RealFilesFaiCountsAgreeWithOutlooksOwnCounts) {
  const auto files = RealFiles();
  if (files.empty()) GTEST_SKIP() << "../shared/data is absent";
  size_t total = 0;
  for (const auto& path : files) {
    SCOPED_TRACE(path);
    const Seen s = Read(path, WithFai());
    EXPECT_TRUE(s.failed.empty()) << Join(s.failed);
    const bool is_ost = path.size() > 4 && path.substr(path.size() - 4) == ".ost";
    auto tables = pst::ndb::NdbReader::Open(path).ok()
                      ? AssocTables(path)
                      : std::map<uint32_t, std::pair<size_t, int64_t>>();
    for (const auto& [folder, nid] : s.nid) {
      const size_t got = s.fai.count(folder) ? s.fai.at(folder).size() : 0;
      total += got;
      if (auto it = s.assoc_count_prop.find(folder); it != s.assoc_count_prop.end()) {
        // An OST's folder properties come from the server, whose count leaves
        // out FAI items Outlook made in the local cache (the Outlook.com OST
        // here: Inbox 13 vs 11, Calendar 6 vs 2, Contacts 2 vs 0); a PST's
        // count is Outlook's own and must match.
        if (is_ost) {
          EXPECT_GE(got, it->second) << "folder '" << folder << "' (0x3617 from the server)";
        } else {
          EXPECT_EQ(got, it->second) << "folder '" << folder << "' (0x3617 as Outlook wrote it)";
        }
      }
      if (auto it = tables.find(nid); it != tables.end()) {
        EXPECT_EQ(got, it->second.first) << "folder '" << folder << "' (our reader's table rows)";
      }
    }
  }
  EXPECT_GT(total, 0u) << "the real files are known to hold FAI items (views, configuration)";
}

// Nothing is left behind: every row of every associated contents table in
// the file (our own reader's count, folders outside the IPM subtree and the
// subtree's top included) is an item the source yields with --associated.
TEST(PstFaiTest, RealFilesEveryAssociatedItemIsYielded) {
  const auto files = RealFiles();
  if (files.empty()) GTEST_SKIP() << "../shared/data is absent";
  for (const auto& path : files) {
    SCOPED_TRACE(path);
    if (!pst::ndb::NdbReader::Open(path).ok()) continue;  // ANSI: our reader does not read it
    const Seen s = Read(path, WithFai());
    size_t rows = 0;
    std::string where;
    for (const auto& [nid, t] : AssocTables(path)) {
      rows += t.first;
      if (t.first > 0) where += " folder " + std::to_string(nid) + ": " + std::to_string(t.first);
    }
    EXPECT_EQ(s.fai_total, rows) << "rows by folder:" << where;
  }
}

TEST(PstFaiTest, RealFilesPstToPstKeepFaiAndContainerClasses) {
  const auto files = RealFiles();
  if (files.empty()) GTEST_SKIP() << "../shared/data is absent";
  TempDir dir;
  for (const auto& path : files) {
    SCOPED_TRACE(path);
    const std::string out = dir / (path.substr(path.rfind('/') + 1) + ".out.pst");
    const Seen a = Read(path, WithFai());
    for (int run = 0; run < 2; ++run) {
      auto r = RunMbxmerge(
          {"merge", "--from", path, "--into", out, "--associated", "-q", "--no-backup"});
      ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
      EXPECT_EQ(PstCheckViolations(out), "");
      const Seen b = Read(out, WithFai());
      EXPECT_EQ(b.fai, a.fai) << "run " << run;
      for (const auto& [folder, cls] : a.container_class) {
        if (!a.fai.count(folder) && !a.messages.count(folder))
          continue;  // not created: nothing in it
        if (b.container_class.count(folder)) {
          EXPECT_EQ(b.container_class.at(folder), cls) << folder;
        } else {
          ADD_FAILURE() << "folder '" << folder << "' missing";
        }
      }
    }
  }
}

// The messages libpff recovers (unallocated space) and its orphans, as
// pffexport -m recovered lists them: "Processing <type>: N (identifier: ID)".
// We offer message nodes (NID type 4) only; pffexport also exports a
// recovered contents table (NID type 0x0E) that libpff types as an e-mail.
TEST(PstFaiTest, RealFilesRecoveredItemsMatchPffexport) {
  if (!testing::HaveProgram("pffexport")) GTEST_SKIP() << "pffexport (pff-tools) not installed";
  const auto files = RealFiles();
  if (files.empty()) GTEST_SKIP() << "../shared/data is absent";
  TempDir dir;
  const std::regex line(R"(Processing ([a-z ]+): \d+ \(identifier: (\d+)\))");
  size_t total = 0;
  for (const auto& path : files) {
    SCOPED_TRACE(path);
    const std::string base = dir / path.substr(path.rfind('/') + 1);
    auto r =
        testing::Run({"pffexport", "-q", "-m", "recovered", "-l", base + ".log", "-t", base, path});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const std::string log = testing::ReadFileOrDie(base + ".log");
    size_t want = 0;
    for (std::sregex_iterator it(log.begin(), log.end(), line), end; it != end; ++it) {
      const uint32_t id = static_cast<uint32_t>(std::stoul((*it)[2]));
      if ((*it)[1] != "folder" && (id & 0x1F) == 0x04) ++want;
    }
    const Seen s = Read(path, WithRecovered());
    const size_t got =
        (s.messages.count("Recovered Items") ? s.messages.at("Recovered Items").size() : 0) +
        static_cast<size_t>(std::count_if(
            s.failed.begin(), s.failed.end(),
            [](const std::string& f) { return f.rfind("Recovered Items:", 0) == 0; }));
    EXPECT_EQ(got, want) << log;
    total += got;
  }
  EXPECT_GT(total, 0u) << "libpff recovers messages from pstsdk-sample1.pst and others";
}

}  // namespace
}  // namespace mbx
