// \brief The synthetic mailbox generator behind `mbxgen` and `mbxmerge bench`.
//
// It is the independent oracle the end-to-end tests and benchmarks check
// mbxmerge against, so it shares no code with the engine (C++ standard library
// only): a bug there cannot hide itself here. Everything is derived from the
// seed (no clock, pid or hostname), so the output is byte-identical for the
// same spec. Errors are returned as text; what was written before stays.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace mbx::synth {

enum class Format { kMbox, kMaildir, kEml, kMboxDir };

// `mbxgen mailbox` (one mailbox) and `mbxgen pair` (two overlapping ones).
struct MailboxSpec {
  bool pair = false;
  Format format = Format::kMbox;
  std::string out_a, out_b;          // out_b: pair only
  std::string manifest;              // optional TSV of every message
  uint64_t messages = 0;             // pair: in total, A gets N - B's share
  uint64_t b_messages = UINT64_MAX;  // pair: B's share (default: half)
  uint64_t seed = 1;
  uint64_t avg_size = 6000;
  int folders = 1;
  double dup_rate = 0.15;  // pair: share of B's messages also in A
};

// The formats of a store's mailboxes: about half mbox, half Maildir++ (what
// `mbxgen store` writes), or all of one format.
enum class StoreFormats { kMixed, kMbox, kMaildir, kEml };

// `mbxgen store`: a store in the KB 278447 situation (see samples/README.md).
struct StoreSpec {
  std::string out;         // STORE; must be absent or empty
  std::string manifest;    // optional: FILE (messages) and FILE.users
  uint64_t users = 0;      // 3..100000
  uint64_t messages = 20;  // per user, +-25%
  uint64_t seed = 1;
  uint64_t avg_size = 6000;
  // Share of a blank mailbox's messages that are also in the original one.
  double dup_rate = 0.4;
  StoreFormats formats = StoreFormats::kMixed;
  // Maildir and EML mailboxes hold a few messages without any header (an
  // mbox cannot); false leaves them out there too.
  bool headerless = true;
  // Told after each mailbox: messages and bytes written so far.
  std::function<void(uint64_t copies, uint64_t bytes)> progress;
};

// A user of the store, or its orphan or legacy mailbox (the users manifest).
struct StoreUser {
  std::string alias, display;
  std::string state;                             // blank-connected, ok, missing, orphan, legacy
  std::string object_guid, connected, original;  // GUID text or "-"
  // Below STORE/mailboxes/: "GUID.mbox", "GUID/" (a directory) or "-".
  std::string connected_file, original_file;
};

// A distinct message of the store (the messages manifest).
struct StoreMessage {
  std::string alias, state;
  std::string id;  // its X-Mbxgen-Id header
  std::string folder, kind;
  std::string in;  // "A" (the original mailbox), "B" (the blank one) or "both"
  int64_t date = 0;
};

struct StoreResult {
  std::vector<StoreUser> users;
  std::vector<StoreMessage> messages;
  uint64_t mailboxes = 0;  // files and directories under STORE/mailboxes
  uint64_t copies = 0;     // messages written, a duplicate counted in each mailbox
  uint64_t bytes = 0;      // their bytes (without mbox From_ lines and quoting)
};

// Returns "" on success, else the error.
std::string WriteMailboxes(const MailboxSpec& spec);
std::string WriteStore(const StoreSpec& spec, StoreResult* result = nullptr);

}  // namespace mbx::synth
