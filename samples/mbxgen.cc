// \brief mbxgen: a deterministic generator of realistic mailboxes.
//
// The command line of the generator in synth.h, which also makes the stores of
// `mbxmerge bench`. It is the independent oracle the end-to-end tests and
// benchmarks check mbxmerge against, so it shares no code with the engine.
// Exit status: 0 done, 1 an I/O error, 2 bad arguments.

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "samples/synth.h"

namespace mbx::gen {
namespace {

using synth::Format;

// One command line: `store` fills `store_spec`, `mailbox` and `pair` fill `mailbox`.
struct Request {
  bool store = false;
  synth::MailboxSpec mailbox;
  synth::StoreSpec store_spec;
};

// ---------------------------------------------------------------- CLI

const char kUsage[] =
    "usage:\n"
    "  mbxgen mailbox --format mbox|maildir|eml|mboxdir --out PATH --messages N\n"
    "                 [--seed S] [--avg-size BYTES] [--folders K] [--manifest FILE.tsv]\n"
    "  mbxgen pair    --format mbox|maildir|eml|mboxdir --out-a PATH_A --out-b PATH_B\n"
    "                 --messages N [--dup-rate 0.15] [--seed S] [--avg-size BYTES]\n"
    "                 [--folders K] [--manifest FILE.tsv]\n"
    "  mbxgen store   --out STORE --users N [--seed S] [--messages M] [--avg-size BYTES]\n"
    "                 [--manifest FILE.tsv]   (also writes FILE.tsv.users)\n";

[[noreturn]] void Usage(const std::string& why) {
  std::fprintf(stderr, "mbxgen: %s\n%s", why.c_str(), kUsage);
  std::exit(2);
}

uint64_t ParseUint(const std::string& flag, const std::string& v) {
  char* end = nullptr;
  errno = 0;
  unsigned long long n = std::strtoull(v.c_str(), &end, 10);
  if (v.empty() || *end || errno || v[0] == '-') Usage("bad value for " + flag + ": '" + v + "'");
  return n;
}

Request ParseArgs(int argc, char** argv) {
  if (argc < 2) Usage("missing command");
  Request r;
  synth::MailboxSpec& m = r.mailbox;
  synth::StoreSpec& st = r.store_spec;
  std::string cmd = argv[1];
  if (cmd == "--help" || cmd == "-h") {
    std::fputs(kUsage, stdout);
    std::exit(0);
  }
  if (cmd != "mailbox" && cmd != "pair" && cmd != "store") Usage("unknown command '" + cmd + "'");
  m.pair = cmd == "pair";
  r.store = cmd == "store";
  bool have_format = false, have_messages = false, have_users = false;
  for (int i = 2; i < argc; ++i) {
    std::string flag = argv[i], value;
    size_t eq = flag.find('=');
    if (eq != std::string::npos) {
      value = flag.substr(eq + 1);
      flag.resize(eq);
    } else if (i + 1 < argc) {
      value = argv[++i];
    } else {
      Usage("missing value for " + flag);
    }
    if (flag == "--users" && r.store) {
      st.users = ParseUint(flag, value);
      have_users = true;
    } else if (flag == "--format" && !r.store) {
      have_format = true;
      if (value == "mbox") {
        m.format = Format::kMbox;
      } else if (value == "maildir") {
        m.format = Format::kMaildir;
      } else if (value == "eml") {
        m.format = Format::kEml;
      } else if (value == "mboxdir") {
        m.format = Format::kMboxDir;
      } else {
        Usage("unknown format '" + value + "'");
      }
    } else if (flag == "--out" && !m.pair) {
      m.out_a = st.out = value;
    } else if (flag == "--out-a" && m.pair) {
      m.out_a = value;
    } else if (flag == "--out-b" && m.pair) {
      m.out_b = value;
    } else if (flag == "--messages") {
      m.messages = st.messages = ParseUint(flag, value);
      have_messages = true;
    } else if (flag == "--seed") {
      m.seed = st.seed = ParseUint(flag, value);
    } else if (flag == "--avg-size") {
      m.avg_size = st.avg_size = std::max<uint64_t>(ParseUint(flag, value), 300);
    } else if (flag == "--folders" && !r.store) {
      m.folders = static_cast<int>(std::min<uint64_t>(ParseUint(flag, value), 1000));
    } else if (flag == "--manifest") {
      m.manifest = st.manifest = value;
    } else if (flag == "--dup-rate" && m.pair) {
      char* end = nullptr;
      m.dup_rate = std::strtod(value.c_str(), &end);
      if (value.empty() || *end || !(m.dup_rate >= 0 && m.dup_rate <= 1))
        Usage("--dup-rate must be between 0 and 1");
    } else {
      Usage("unknown option '" + flag + "'");
    }
  }
  if (r.store) {
    if (!have_users) Usage("--users is required");
    if (st.users < 3 || st.users > 100'000) Usage("--users must be between 3 and 100000");
    if (st.messages > 100'000) Usage("--messages is too large");
    if (st.out.empty()) Usage("--out is required");
    return r;
  }
  if (!have_format) Usage("--format is required");
  if (!have_messages) Usage("--messages is required");
  if (m.out_a.empty() || (m.pair && m.out_b.empty()))
    Usage(m.pair ? "--out-a and --out-b are required" : "--out is required");
  if (m.pair && m.out_a == m.out_b) Usage("--out-a and --out-b must differ");
  if (m.messages > 50'000'000) Usage("--messages is too large");
  if (m.folders < 1) Usage("--folders must be at least 1");
  if (m.format == Format::kMbox && m.folders != 1) {
    std::fprintf(stderr, "mbxgen: note: an mbox file has one folder; ignoring --folders\n");
    m.folders = 1;
  }
  return r;
}

int Main(int argc, char** argv) {
  Request r = ParseArgs(argc, argv);
  std::string error = r.store ? synth::WriteStore(r.store_spec) : synth::WriteMailboxes(r.mailbox);
  if (error.empty()) return 0;
  std::fprintf(stderr, "mbxgen: %s\n", error.c_str());
  return 1;
}

}  // namespace
}  // namespace mbx::gen

int main(int argc, char** argv) { return mbx::gen::Main(argc, argv); }
