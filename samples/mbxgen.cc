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

struct Options {
  bool pair = false;
  bool store = false;
  uint64_t users = 0;
  Format format = Format::kMbox;
  std::string out_a, out_b, manifest;
  uint64_t messages = 0;
  uint64_t seed = 1;
  uint64_t avg_size = 6000;
  int folders = 1;
  double dup_rate = 0.15;
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

Options ParseArgs(int argc, char** argv) {
  if (argc < 2) Usage("missing command");
  Options o;
  std::string cmd = argv[1];
  if (cmd == "--help" || cmd == "-h") {
    std::fputs(kUsage, stdout);
    std::exit(0);
  }
  if (cmd != "mailbox" && cmd != "pair" && cmd != "store") Usage("unknown command '" + cmd + "'");
  o.pair = cmd == "pair";
  o.store = cmd == "store";
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
    if (flag == "--users" && o.store) {
      o.users = ParseUint(flag, value);
      have_users = true;
    } else if (flag == "--format" && !o.store) {
      have_format = true;
      if (value == "mbox") {
        o.format = Format::kMbox;
      } else if (value == "maildir") {
        o.format = Format::kMaildir;
      } else if (value == "eml") {
        o.format = Format::kEml;
      } else if (value == "mboxdir") {
        o.format = Format::kMboxDir;
      } else {
        Usage("unknown format '" + value + "'");
      }
    } else if (flag == "--out" && !o.pair) {
      o.out_a = value;
    } else if (flag == "--out-a" && o.pair) {
      o.out_a = value;
    } else if (flag == "--out-b" && o.pair) {
      o.out_b = value;
    } else if (flag == "--messages") {
      o.messages = ParseUint(flag, value);
      have_messages = true;
    } else if (flag == "--seed") {
      o.seed = ParseUint(flag, value);
    } else if (flag == "--avg-size") {
      o.avg_size = ParseUint(flag, value);
    } else if (flag == "--folders" && !o.store) {
      o.folders = static_cast<int>(std::min<uint64_t>(ParseUint(flag, value), 1000));
    } else if (flag == "--manifest") {
      o.manifest = value;
    } else if (flag == "--dup-rate" && o.pair) {
      char* end = nullptr;
      o.dup_rate = std::strtod(value.c_str(), &end);
      if (value.empty() || *end || !(o.dup_rate >= 0 && o.dup_rate <= 1))
        Usage("--dup-rate must be between 0 and 1");
    } else {
      Usage("unknown option '" + flag + "'");
    }
  }
  if (o.store) {
    if (!have_users) Usage("--users is required");
    if (o.users < 3 || o.users > 100'000) Usage("--users must be between 3 and 100000");
    if (!have_messages) o.messages = 20;
    if (o.messages > 100'000) Usage("--messages is too large");
    if (o.out_a.empty()) Usage("--out is required");
    if (o.avg_size < 300) o.avg_size = 300;
    return o;
  }
  if (!have_format) Usage("--format is required");
  if (!have_messages) Usage("--messages is required");
  if (o.out_a.empty() || (o.pair && o.out_b.empty()))
    Usage(o.pair ? "--out-a and --out-b are required" : "--out is required");
  if (o.pair && o.out_a == o.out_b) Usage("--out-a and --out-b must differ");
  if (o.messages > 50'000'000) Usage("--messages is too large");
  if (o.folders < 1) Usage("--folders must be at least 1");
  if (o.avg_size < 300) o.avg_size = 300;
  if (o.format == Format::kMbox && o.folders != 1) {
    std::fprintf(stderr, "mbxgen: note: an mbox file has one folder; ignoring --folders\n");
    o.folders = 1;
  }
  return o;
}

int Main(int argc, char** argv) {
  Options o = ParseArgs(argc, argv);
  std::string error;
  if (o.store) {
    synth::StoreSpec spec;
    spec.out = o.out_a;
    spec.manifest = o.manifest;
    spec.users = o.users;
    spec.messages = o.messages;
    spec.seed = o.seed;
    spec.avg_size = o.avg_size;
    error = synth::WriteStore(spec);
  } else {
    synth::MailboxSpec spec;
    spec.pair = o.pair;
    spec.format = o.format;
    spec.out_a = o.out_a;
    spec.out_b = o.out_b;
    spec.manifest = o.manifest;
    spec.messages = o.messages;
    spec.seed = o.seed;
    spec.avg_size = o.avg_size;
    spec.folders = o.folders;
    spec.dup_rate = o.dup_rate;
    error = synth::WriteMailboxes(spec);
  }
  if (error.empty()) return 0;
  std::fprintf(stderr, "mbxgen: %s\n", error.c_str());
  return 1;
}

}  // namespace
}  // namespace mbx::gen

int main(int argc, char** argv) { return mbx::gen::Main(argc, argv); }
