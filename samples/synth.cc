// \brief The generator behind mbxgen and `mbxmerge bench` (see synth.h).
//
// Every message's content is a pure function of (seed, index), so a duplicate
// copy is rebuilt from the same inputs as its original.

#include "samples/synth.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace mbx::synth {
namespace {

// An I/O error: unwinds to the public entry points, which return its text.
struct GenError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

[[noreturn]] void Die(const std::string& msg) { throw GenError(msg); }

// ---------------------------------------------------------------- randomness

uint64_t SplitMix(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

uint64_t Hash(uint64_t a, uint64_t b, uint64_t c = 0) {
  return SplitMix(SplitMix(SplitMix(a) ^ b) + c);
}

// Purposes, so that streams for different aspects of one message never overlap.
enum Stream : uint64_t {
  kStreamWhere = 1,
  kStreamKinds,
  kStreamMeta,
  kStreamIdentity,
  kStreamBody,
  kStreamCopy,  // + copy number
  kStreamLookalike = 20,
};

class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t Next() {
    state_ += 0x9E3779B97F4A7C15ull;
    uint64_t z = state_;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  uint64_t Below(uint64_t n) { return n == 0 ? 0 : (Next() >> 8) % n; }
  int64_t Range(int64_t lo, int64_t hi) { return lo + static_cast<int64_t>(Below(hi - lo + 1)); }
  double Unit() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }
  bool Chance(double p) { return Unit() < p; }
  template <typename T, size_t N>
  const T& Pick(const T (&a)[N]) {
    return a[Below(N)];
  }
  template <typename T>
  void Shuffle(std::vector<T>* v) {
    for (size_t i = v->size(); i > 1; --i) std::swap((*v)[i - 1], (*v)[Below(i)]);
  }

 private:
  uint64_t state_;
};

// ---------------------------------------------------------------- word lists

const char* const kWords[] = {
    "the",     "meeting",   "budget",    "report",     "we",        "should",   "review",
    "project", "deadline",  "next",      "week",       "please",    "find",     "attached",
    "draft",   "about",     "from",      "with",       "team",      "customer", "server",
    "update",  "release",   "schedule",  "quarter",    "numbers",   "invoice",  "contract",
    "agenda",  "minutes",   "feedback",  "proposal",   "question",  "answer",   "thanks",
    "regards", "tomorrow",  "afternoon", "office",     "travel",    "hotel",    "flight",
    "results", "analysis",  "data",      "backup",     "migration", "mailbox",  "archive",
    "folder",  "message",   "call",      "phone",      "confirm",   "agree",    "discuss",
    "issue",   "ticket",    "fix",       "deploy",     "test",      "build",    "plan",
    "roadmap", "design",    "document",  "version",    "changes",   "approved", "pending",
    "status",  "summary",   "details",   "colleagues", "friday",    "monday",   "lunch",
    "is",      "are",       "was",       "will",       "be",        "have",     "has",
    "and",     "or",        "but",       "for",        "to",        "in",       "on",
    "at",      "this",      "that",      "it",         "our",       "your",     "their",
    "a",       "an",        "of",        "by",         "as",        "all",      "some",
    "new",     "old",       "final",     "second",     "first",     "short",    "long",
    "quick",   "important", "urgent",    "small",      "large",     "open",     "closed"};

// UTF-8 words for non-ASCII text; all within Latin-1 so they also work as ISO-8859-1.
const char* const kAccentWords[] = {"Grüße", "München",     "Straße", "Änderung", "Überblick",
                                    "café",  "naïve",       "résumé", "déjà",     "Zürich",
                                    "Köln",  "Frühling",    "façade", "señor",    "mañana",
                                    "Ærø",   "smörgåsbord", "Größe",  "Fußball",  "garçon"};

struct Name {
  const char* display;
  const char* ascii;  // for the address
};
const Name kFirstNames[] = {
    {"Anna", "anna"},     {"Jürgen", "juergen"},  {"Maria", "maria"},       {"Peter", "peter"},
    {"Zoë", "zoe"},       {"Thomas", "thomas"},   {"François", "francois"}, {"Laura", "laura"},
    {"Søren", "soren"},   {"Michael", "michael"}, {"Chloé", "chloe"},       {"David", "david"},
    {"Björn", "bjoern"},  {"Sarah", "sarah"},     {"José", "jose"},         {"Emma", "emma"},
    {"Lukas", "lukas"},   {"Olivia", "olivia"},   {"Noah", "noah"},         {"Mia", "mia"},
    {"Ingrid", "ingrid"}, {"Kenji", "kenji"},     {"Priya", "priya"},       {"Omar", "omar"}};
const Name kLastNames[] = {
    {"Schmidt", "schmidt"},     {"Müller", "mueller"},    {"Smith", "smith"},
    {"García", "garcia"},       {"Dubois", "dubois"},     {"Nowak", "nowak"},
    {"Jensen", "jensen"},       {"Rossi", "rossi"},       {"Brown", "brown"},
    {"Weiß", "weiss"},          {"Tanaka", "tanaka"},     {"Patel", "patel"},
    {"Johansson", "johansson"}, {"Kowalski", "kowalski"}, {"Martin", "martin"},
    {"Lefèvre", "lefevre"},     {"Becker", "becker"},     {"Hoffmann", "hoffmann"},
    {"Wilson", "wilson"},       {"Novák", "novak"}};
const char* const kDomains[] = {"example.org",     "example.com",  "example.net",
                                "mail.example.de", "corp.example", "lists.example.org",
                                "uni.example.edu", "example.co.uk"};
const char* const kMailers[] = {
    "User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:102.0) Gecko/20100101 Thunderbird/102.9.0",
    "X-Mailer: Microsoft Outlook 16.0",
    "X-Mailer: Apple Mail (2.3696.120.41.1.1)",
    "User-Agent: Mutt/2.2.9 (2022-11-12)",
    "User-Agent: Roundcube Webmail/1.6.1",
    "X-Mailer: Evolution 3.46.4",
    "User-Agent: K-9 Mail for Android"};
const char* const kRelays[] = {"mail-wr1-f54.google.com", "mx1.example.net",
                               "smtp.corp.example",       "out.mailgun.example",
                               "relay.uni.example.edu",   "mail.example.de"};
const char* const kMx[] = {"mx.example.org", "mx2.example.org", "imap.example.org",
                           "mail.example.org"};
const char* const kAttachNames[] = {"report.pdf",          "minutes.docx", "budget 2023.xlsx",
                                    "photo.jpg",           "diagram.png",  "archive.zip",
                                    "Präsentation Q3.pdf", "résumé.docx",  "Übersicht.xlsx",
                                    "notes.txt",           "données.csv",  "Angebot_Müller.pdf"};
// Order matters: --folders 4 already has nesting and a non-ASCII name.
const char* const kFolderNames[] = {
    "Projects", "Projects/Alpha", "Entwürfe",      "Archive/2023",  "Archive/2024", "Lists/dev",
    "Reçus",    "Sent",           "Notes & Ideas", "Projects/Beta", "Archive/2022", "Travel"};
const int kTimezones[] = {0, 60, 120, -300, -480, 330, 540, 60, 60, 120};

// ---------------------------------------------------------------- kinds

enum class Kind : uint8_t {
  kPlain,
  kAlternative,
  kAttachment,
  kQuotedPrintable,
  kNested,
  kRfc822,
  kSubjectUtf8,
  kSubjectLatin1,
  kFromLines,
  kNoMessageId,
  kLookalikeMsgId,
  kLookalikeContent,
  kNulBytes,
  kRaw8BitHeader,
  kBrokenBoundary,
  kNoHeaders,
  kCount,
};
constexpr int kKindCount = static_cast<int>(Kind::kCount);
const char* const kKindNames[kKindCount] = {
    "plain",      "alternative",     "attachment",      "quoted-printable",
    "nested",     "rfc822",          "subject-utf8",    "subject-latin1",
    "from-lines", "no-message-id",   "lookalike-msgid", "lookalike-content",
    "nul-bytes",  "raw-8bit-header", "broken-boundary", "no-headers"};
// Relative weights: plain text dominates, every special kind a few percent.
const int kKindWeights[kKindCount] = {40, 9, 8, 4, 4, 3, 4, 3, 3, 3, 3, 3, 2, 2, 2, 2};

bool IsNormal(Kind k) { return k <= Kind::kNoMessageId; }
bool IsLookalike(Kind k) { return k == Kind::kLookalikeMsgId || k == Kind::kLookalikeContent; }

// ---------------------------------------------------------------- options

struct Options {
  bool pair = false;
  uint64_t users = 0;
  Format format = Format::kMbox;
  std::string out_a, out_b, manifest;
  uint64_t messages = 0;
  uint64_t seed = 1;
  uint64_t avg_size = 6000;
  int folders = 1;
  double dup_rate = 0.15;
  uint64_t b_messages = UINT64_MAX;  // pair: B's share (default: half)
  StoreFormats store_formats = StoreFormats::kMixed;
  bool headerless = true;  // store: header-less messages where the format allows them
  std::function<void(uint64_t, uint64_t)> progress;  // store: after each mailbox
};

// ---------------------------------------------------------------- the plan

constexpr uint8_t kInA = 1, kInB = 2;

struct Planned {
  Kind kind = Kind::kPlain;
  uint8_t where = kInA;
  uint8_t variant = 0;  // lookalike-msgid: 0 body differs, 1 sender differs, 2 date differs
  uint16_t folder = 0;
  uint32_t base = 0;  // the look-alike's original (its own index otherwise)
  int64_t date = 0;   // Date header, seconds since the epoch
  int tz = 0;         // Date header zone, minutes east of UTC
  uint64_t size = 0;  // target size in bytes
};

struct Ctx {
  Options opt;
  std::vector<std::string> folders;  // [0] = "" (root)
  std::vector<Planned> plan;
  std::string owner_display, owner_addr;
  // Ids: "mbxgen-<seed>-<n>" by default; a store numbers all its mailboxes'
  // messages in one sequence under its own prefix so that ids stay unique.
  std::string id_prefix;
  uint32_t id_base = 0;
};

constexpr int64_t kDateFirst = 1546300800;  // 2019-01-01T00:00:00Z
constexpr int64_t kDateLast = 1735689599;   // 2024-12-31T23:59:59Z

std::string IdOf(const Ctx& c, uint32_t idx) {
  char buf[96];
  if (!c.id_prefix.empty()) {
    std::snprintf(buf, sizeof buf, "%s-%06u", c.id_prefix.c_str(), c.id_base + idx + 1);
    return buf;
  }
  std::snprintf(buf, sizeof buf, "mbxgen-%llu-%06u", static_cast<unsigned long long>(c.opt.seed),
                idx + 1);
  return buf;
}

void MakePlan(Ctx* c) {
  const Options& o = c->opt;
  uint64_t distinct = o.messages, dups = 0, n_a = o.messages, n_b = 0;
  if (o.pair) {
    n_b = o.b_messages == UINT64_MAX ? o.messages / 2 : std::min(o.b_messages, o.messages);
    n_a = o.messages - n_b;
    // A duplicate is in both mailboxes, so there are at most as many as the
    // smaller one holds (tiny mailboxes would otherwise underflow n_a - dups).
    dups = std::min<uint64_t>({static_cast<uint64_t>(std::llround(o.dup_rate * n_b)), n_b, n_a});
    distinct = o.messages - dups;
  }
  std::vector<uint8_t> where;
  where.reserve(distinct);
  where.insert(where.end(), dups, kInA | kInB);
  where.insert(where.end(), n_a - dups, kInA);
  where.insert(where.end(), n_b - dups, kInB);
  Rng(Hash(o.seed, kStreamWhere)).Shuffle(&where);

  // Kinds: at least one of each when there is room, so small sample sets still
  // hold every trap; the rest by weight.
  std::vector<Kind> kinds;
  kinds.reserve(distinct);
  Rng kr(Hash(o.seed, kStreamKinds));
  auto allowed = [&](int k) {
    return !(o.format == Format::kMbox || o.format == Format::kMboxDir) ||
           static_cast<Kind>(k) != Kind::kNoHeaders;
  };
  int total_weight = 0;
  for (int k = 0; k < kKindCount; ++k) total_weight += allowed(k) ? kKindWeights[k] : 0;
  if (distinct >= 3 * kKindCount) {
    for (int k = 1; k < kKindCount; ++k)
      if (allowed(k)) kinds.push_back(static_cast<Kind>(k));
  }
  while (kinds.size() < distinct) {
    int r = static_cast<int>(kr.Below(total_weight));
    int k = 0;
    for (; k < kKindCount; ++k) {
      if (!allowed(k)) continue;
      if (r < kKindWeights[k]) break;
      r -= kKindWeights[k];
    }
    kinds.push_back(static_cast<Kind>(k));
  }
  kr.Shuffle(&kinds);

  c->plan.resize(distinct);
  for (uint32_t i = 0; i < distinct; ++i) {
    Planned& p = c->plan[i];
    Rng r(Hash(o.seed, kStreamMeta, i));
    p.kind = kinds[i];
    p.where = where[i];
    p.base = i;
    p.folder = c->folders.size() <= 1 || r.Chance(0.4)
                   ? 0
                   : static_cast<uint16_t>(1 + r.Below(c->folders.size() - 1));
    p.date = r.Range(kDateFirst, kDateLast);
    p.tz = r.Pick(kTimezones);
    // Exponential sizes around the average: many small, a few large.
    double f = -std::log(1.0 - r.Unit());
    p.size = static_cast<uint64_t>(static_cast<double>(o.avg_size) * std::clamp(f, 0.08, 10.0));
  }

  // Look-alikes: tie each to an original, preferably one in A while the
  // look-alike itself is only in B (the case a merge must not collapse).
  std::vector<uint32_t> b_only_plain;
  if (o.pair)
    for (uint32_t i = 0; i < distinct; ++i)
      if (c->plan[i].where == kInB && !IsLookalike(c->plan[i].kind)) b_only_plain.push_back(i);
  Rng lr(Hash(o.seed, kStreamLookalike));
  for (uint32_t i = 0; i < distinct && o.pair; ++i) {
    Planned& p = c->plan[i];
    if (!IsLookalike(p.kind) || p.where == kInB || b_only_plain.empty()) continue;
    size_t j = lr.Below(b_only_plain.size());
    std::swap(p.where, c->plan[b_only_plain[j]].where);
    b_only_plain[j] = b_only_plain.back();
    b_only_plain.pop_back();
  }
  // Candidate originals: [with Message-ID?][in A (or any when not a pair)?].
  std::vector<uint32_t> bases[2][2];
  for (uint32_t j = 0; j < distinct; ++j) {
    const Planned& q = c->plan[j];
    if (!IsNormal(q.kind)) continue;
    bool in_a = !o.pair || (q.where & kInA);
    for (int need_id = 0; need_id < 2; ++need_id) {
      if (need_id && q.kind == Kind::kNoMessageId) continue;
      bases[need_id][0].push_back(j);
      if (in_a) bases[need_id][1].push_back(j);
    }
  }
  for (uint32_t i = 0; i < distinct; ++i) {
    Planned& p = c->plan[i];
    if (!IsLookalike(p.kind)) continue;
    int need_id = p.kind == Kind::kLookalikeMsgId;
    const std::vector<uint32_t>& from =
        bases[need_id][1].empty() ? bases[need_id][0] : bases[need_id][1];
    if (from.empty()) {
      p.kind = Kind::kPlain;
      continue;
    }
    p.base = from[lr.Below(from.size())];
    const Planned& b = c->plan[p.base];
    p.folder = b.folder;
    p.tz = b.tz;
    p.date = b.date;
    p.variant = p.kind == Kind::kLookalikeMsgId ? static_cast<uint8_t>(lr.Below(3)) : 0;
    if (p.kind == Kind::kLookalikeMsgId && p.variant == 2) p.date += lr.Range(60, 86400 * 3);
  }
}

// ---------------------------------------------------------------- encodings

const char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

void AppendBase64(std::string_view in, std::string* out, bool wrap, char c62 = '+',
                  bool pad = true) {
  const auto* p = reinterpret_cast<const unsigned char*>(in.data());
  size_t n = in.size(), col = 0;
  auto put = [&](char ch) {
    out->push_back(ch == '/' ? c62 == '+' ? '/' : ',' : ch);
    if (wrap && ++col == 76) {
      out->push_back('\n');
      col = 0;
    }
  };
  size_t i = 0;
  for (; i + 3 <= n; i += 3) {
    uint32_t v = (p[i] << 16) | (p[i + 1] << 8) | p[i + 2];
    put(kB64[v >> 18]);
    put(kB64[(v >> 12) & 63]);
    put(kB64[(v >> 6) & 63]);
    put(kB64[v & 63]);
  }
  if (i < n) {
    uint32_t v = p[i] << 16;
    if (i + 1 < n) v |= p[i + 1] << 8;
    put(kB64[v >> 18]);
    put(kB64[(v >> 12) & 63]);
    if (i + 1 < n) put(kB64[(v >> 6) & 63]);
    if (pad) {
      if (i + 1 >= n) put('=');
      put('=');
    }
  }
  if (wrap && col != 0) out->push_back('\n');
}

void AppendHex2(unsigned char ch, std::string* out) {
  static const char kHex[] = "0123456789ABCDEF";
  out->push_back(kHex[ch >> 4]);
  out->push_back(kHex[ch & 15]);
}

// Quoted-printable (RFC 2045) with soft breaks at 76 columns.
void AppendQp(std::string_view in, std::string* out) {
  size_t col = 0;
  for (size_t i = 0; i < in.size(); ++i) {
    auto ch = static_cast<unsigned char>(in[i]);
    if (ch == '\n') {
      out->push_back('\n');
      col = 0;
      continue;
    }
    bool at_eol = i + 1 == in.size() || in[i + 1] == '\n';
    bool literal = (ch >= 33 && ch <= 126 && ch != '=') || (ch == ' ' && !at_eol);
    size_t len = literal ? 1 : 3;
    if (col + len > 75) {
      out->append("=\n");
      col = 0;
    }
    if (literal) {
      out->push_back(static_cast<char>(ch));
    } else {
      out->push_back('=');
      AppendHex2(ch, out);
    }
    col += len;
  }
}

// UTF-8 (Latin-1 range only) to ISO-8859-1.
std::string ToLatin1(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    auto ch = static_cast<unsigned char>(s[i]);
    if (ch < 0x80) {
      out.push_back(static_cast<char>(ch));
    } else if ((ch & 0xE0) == 0xC0 && i + 1 < s.size()) {
      out.push_back(static_cast<char>(((ch & 0x1F) << 6) | (s[++i] & 0x3F)));
    } else {
      out.push_back('?');
    }
  }
  return out;
}

bool IsAscii(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char ch) { return (ch & 0x80) == 0; });
}

// RFC 2047 B words in UTF-8, split on character boundaries, folded.
std::string EncodeWordsUtf8(std::string_view s) {
  std::string out;
  size_t i = 0;
  while (i < s.size()) {
    size_t end = std::min(s.size(), i + 42);
    while (end < s.size() && (static_cast<unsigned char>(s[end]) & 0xC0) == 0x80) --end;
    if (!out.empty()) out.append("\n ");
    out.append("=?UTF-8?B?");
    AppendBase64(s.substr(i, end - i), &out, false);
    out.append("?=");
    i = end;
  }
  return out;
}

// RFC 2047 Q words in ISO-8859-1, folded.
std::string EncodeWordsLatin1(std::string_view utf8) {
  std::string s = ToLatin1(utf8), out, word;
  auto flush = [&] {
    if (word.empty()) return;
    if (!out.empty()) out.append("\n ");
    out.append("=?ISO-8859-1?Q?").append(word).append("?=");
    word.clear();
  };
  for (char c : s) {
    auto ch = static_cast<unsigned char>(c);
    if (ch == ' ') {
      word.push_back('_');
    } else if (std::isalnum(ch) && ch < 0x80) {
      word.push_back(c);
    } else {
      word.push_back('=');
      AppendHex2(ch, &word);
    }
    if (word.size() > 45) flush();
  }
  flush();
  return out;
}

// RFC 2231 extended value: utf-8''percent-encoded.
std::string Rfc2231(std::string_view s) {
  std::string out = "utf-8''";
  for (char c : s) {
    auto ch = static_cast<unsigned char>(c);
    if (ch < 0x80 && (std::isalnum(ch) || std::strchr("!#$&+-.^_`|~", ch))) {
      out.push_back(c);
    } else {
      out.push_back('%');
      AppendHex2(ch, &out);
    }
  }
  return out;
}

// IMAP modified UTF-7 (RFC 3501 5.1.3), as Dovecot names Maildir++ folders.
std::string ModifiedUtf7(std::string_view s) {
  std::string out;
  size_t i = 0;
  while (i < s.size()) {
    auto ch = static_cast<unsigned char>(s[i]);
    if (ch >= 0x20 && ch < 0x7F) {
      out.append(ch == '&' ? "&-" : std::string(1, static_cast<char>(ch)));
      ++i;
      continue;
    }
    std::string utf16;
    while (i < s.size() &&
           !(static_cast<unsigned char>(s[i]) >= 0x20 && static_cast<unsigned char>(s[i]) < 0x7F)) {
      auto b0 = static_cast<unsigned char>(s[i]);
      uint32_t cp;
      size_t len;
      if (b0 < 0x80) {
        cp = b0, len = 1;
      } else if ((b0 & 0xE0) == 0xC0) {
        cp = b0 & 0x1F, len = 2;
      } else if ((b0 & 0xF0) == 0xE0) {
        cp = b0 & 0x0F, len = 3;
      } else {
        cp = b0 & 0x07, len = 4;
      }
      for (size_t k = 1; k < len && i + k < s.size(); ++k) cp = (cp << 6) | (s[i + k] & 0x3F);
      i += len;
      auto put16 = [&](uint32_t u) {
        utf16.push_back(static_cast<char>(u >> 8));
        utf16.push_back(static_cast<char>(u & 0xFF));
      };
      if (cp >= 0x10000) {
        cp -= 0x10000;
        put16(0xD800 | (cp >> 10));
        put16(0xDC00 | (cp & 0x3FF));
      } else {
        put16(cp);
      }
    }
    out.push_back('&');
    AppendBase64(utf16, &out, false, ',', false);
    out.push_back('-');
  }
  return out;
}

// ---------------------------------------------------------------- dates

struct Civil {
  int year, month, day, hour, minute, second, weekday;  // weekday 0 = Sunday
};

Civil ToCivil(int64_t t) {
  int64_t days = t >= 0 ? t / 86400 : (t - 86399) / 86400;
  int64_t secs = t - days * 86400;
  Civil c{};
  c.weekday = static_cast<int>(((days % 7) + 11) % 7);  // 1970-01-01 was a Thursday
  // Howard Hinnant's civil_from_days.
  int64_t z = days + 719468;
  int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  auto doe = static_cast<unsigned>(z - era * 146097);
  unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  unsigned mp = (5 * doy + 2) / 153;
  c.day = static_cast<int>(doy - (153 * mp + 2) / 5 + 1);
  c.month = static_cast<int>(mp < 10 ? mp + 3 : mp - 9);
  c.year = static_cast<int>(yoe + era * 400 + (c.month <= 2));
  c.hour = static_cast<int>(secs / 3600);
  c.minute = static_cast<int>(secs / 60 % 60);
  c.second = static_cast<int>(secs % 60);
  return c;
}

const char* const kDayNames[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
const char* const kMonthNames[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

// RFC 5322 date in the given zone: "Tue, 05 Mar 2019 14:22:01 +0100".
std::string RfcDate(int64_t t, int tz) {
  Civil c = ToCivil(t + tz * 60);
  char buf[64];
  int a = std::abs(tz);
  std::snprintf(buf, sizeof buf, "%s, %02d %s %04d %02d:%02d:%02d %c%02d%02d", kDayNames[c.weekday],
                c.day, kMonthNames[c.month - 1], c.year, c.hour, c.minute, c.second,
                tz < 0 ? '-' : '+', a / 60, a % 60);
  return buf;
}

// asctime() form in UTC for the mbox From_ line: "Tue Mar  5 14:22:01 2019".
std::string AscDate(int64_t t) {
  Civil c = ToCivil(t);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%s %s %2d %02d:%02d:%02d %04d", kDayNames[c.weekday],
                kMonthNames[c.month - 1], c.day, c.hour, c.minute, c.second, c.year);
  return buf;
}

// ---------------------------------------------------------------- text

void AppendWord(Rng& r, bool accents, bool capital, std::string* out) {
  const char* w = accents && r.Chance(0.2) ? r.Pick(kAccentWords) : r.Pick(kWords);
  size_t at = out->size();
  out->append(w);
  if (capital && (*out)[at] >= 'a' && (*out)[at] <= 'z') (*out)[at] -= 32;
}

// Paragraphs of sentences wrapped at 72 columns, about `target` bytes.
void AppendText(Rng& r, size_t target, bool accents, std::string* out) {
  size_t start = out->size();
  do {
    size_t line_start = out->size();
    int sentences = static_cast<int>(r.Range(1, 5));
    for (int s = 0; s < sentences; ++s) {
      int words = static_cast<int>(r.Range(4, 14));
      for (int w = 0; w < words; ++w) {
        if (out->size() > line_start) {
          if (out->size() - line_start > 66) {
            out->push_back('\n');
            line_start = out->size();
          } else {
            out->push_back(' ');
          }
        }
        AppendWord(r, accents, w == 0, out);
      }
      out->push_back(r.Chance(0.1) ? '?' : '.');
    }
    out->append("\n\n");
  } while (out->size() - start < target);
}

struct Person {
  std::string display, addr;
};

Person MakePerson(Rng& r) {
  const Name& f = r.Pick(kFirstNames);
  const Name& l = r.Pick(kLastNames);
  Person p;
  p.display = std::string(f.display) + " " + l.display;
  p.addr = std::string(f.ascii) + "." + l.ascii + "@" + r.Pick(kDomains);
  return p;
}

std::string Mailbox(const Person& p, Rng& r) {
  if (r.Chance(0.1)) return p.addr;
  if (!IsAscii(p.display)) return EncodeWordsUtf8(p.display) + " <" + p.addr + ">";
  if (r.Chance(0.2)) {
    size_t sp = p.display.find(' ');
    return "\"" + p.display.substr(sp + 1) + ", " + p.display.substr(0, sp) + "\" <" + p.addr + ">";
  }
  return p.display + " <" + p.addr + ">";
}

std::string Hex(uint64_t v, int digits) {
  std::string s(digits, '0');
  for (int i = digits - 1; i >= 0; --i, v >>= 4) s[i] = "0123456789ABCDEF"[v & 15];
  return s;
}

// ---------------------------------------------------------------- identity

struct Identity {
  std::string from, from_addr, to, cc, subject, message_id, mailer, in_reply_to;
  std::string raw_subject;  // the subject as plain UTF-8 text, for inner messages
};

std::string SubjectText(Rng& r, bool accents) {
  std::string s;
  static const char* const kPrefixes[] = {"Re: ", "Fwd: ", "AW: ", "RE: ", "Re: Re: "};
  if (r.Chance(0.3)) s = r.Pick(kPrefixes);
  int words = static_cast<int>(r.Range(2, 7));
  for (int i = 0; i < words; ++i) {
    if (i) s.push_back(' ');
    AppendWord(r, accents, i == 0, &s);
  }
  if (accents && IsAscii(s)) s.append(" ").append(r.Pick(kAccentWords));
  return s;
}

Identity MakeIdentity(const Ctx& c, uint32_t idx) {
  const Planned& p = c.plan[idx];
  if (IsLookalike(p.kind)) {
    Identity id = MakeIdentity(c, p.base);
    Rng r(Hash(c.opt.seed, kStreamIdentity, idx));
    if (p.kind == Kind::kLookalikeContent) {
      // Same subject, sender and date; its own Message-ID (none if the original has none).
      if (!id.message_id.empty())
        id.message_id = "<" + Hex(SplitMix(Hash(c.opt.seed, 0) + idx), 16) + ".lookalike@" +
                        id.from_addr.substr(id.from_addr.find('@') + 1) + ">";
    } else if (p.variant == 1) {
      Person other = MakePerson(r);
      while (other.addr == id.from_addr) other = MakePerson(r);
      id.from = Mailbox(other, r);
      id.from_addr = other.addr;
    }
    return id;
  }
  Rng r(Hash(c.opt.seed, kStreamIdentity, idx));
  Identity id;
  Person from = MakePerson(r);
  id.from = Mailbox(from, r);
  id.from_addr = from.addr;
  Person owner{c.owner_display, c.owner_addr};
  if (r.Chance(0.15)) {
    // Sent by the owner.
    from = owner;
    id.from = Mailbox(owner, r);
    id.from_addr = owner.addr;
    owner = MakePerson(r);
  }
  id.to = Mailbox(owner, r);
  for (int n = static_cast<int>(r.Range(0, 3)); n > 0; --n) {
    Person p = MakePerson(r);
    id.to.append(",\n\t").append(Mailbox(p, r));
  }
  if (r.Chance(0.25)) {
    Person p = MakePerson(r);
    id.cc = Mailbox(p, r);
  }
  bool accents = p.kind == Kind::kSubjectUtf8 || p.kind == Kind::kSubjectLatin1 ||
                 p.kind == Kind::kRaw8BitHeader;
  id.raw_subject = SubjectText(r, accents);
  if (p.kind == Kind::kSubjectUtf8) {
    id.subject = EncodeWordsUtf8(id.raw_subject);
  } else if (p.kind == Kind::kSubjectLatin1) {
    id.subject = EncodeWordsLatin1(id.raw_subject);
  } else if (p.kind == Kind::kRaw8BitHeader) {
    // Raw bytes where only ASCII is allowed: UTF-8 in the subject, Latin-1 in the name.
    id.subject = id.raw_subject;
    id.from = ToLatin1("Jürgen Weiß") + " <" + id.from_addr + ">";
  } else {
    id.subject = id.raw_subject;
  }
  if (p.kind != Kind::kNoMessageId) {
    Civil d = ToCivil(p.date);
    char stamp[32];
    std::snprintf(stamp, sizeof stamp, "%04d%02d%02d%02d%02d%02d.", d.year, d.month, d.day, d.hour,
                  d.minute, d.second);
    id.message_id = "<" + std::string(stamp) + Hex(SplitMix(Hash(c.opt.seed, 0) + idx), 16) + "@" +
                    id.from_addr.substr(id.from_addr.find('@') + 1) + ">";
  }
  id.mailer = r.Pick(kMailers);
  if (id.raw_subject.rfind("Re", 0) == 0 || id.raw_subject.rfind("AW", 0) == 0)
    id.in_reply_to = "<" + Hex(r.Next(), 12) + "@" + r.Pick(kDomains) + ">";
  return id;
}

// ---------------------------------------------------------------- bodies

struct Body {
  std::string headers;  // MIME-Version, Content-Type, Content-Transfer-Encoding lines
  std::string text;
};

std::string Boundary(Rng& r) { return "----=_Part_" + Hex(r.Next(), 12) + "." + Hex(r.Next(), 8); }

void AppendRandomBytes(Rng& r, size_t n, std::string* out) {
  size_t at = out->size();
  out->resize(at + n);
  for (size_t i = 0; i < n; i += 8) {
    uint64_t v = r.Next();
    std::memcpy(out->data() + at + i, &v, std::min<size_t>(8, n - i));
  }
}

void AppendAttachment(Rng& r, size_t raw_size, std::string* out) {
  std::string name = r.Pick(kAttachNames);
  std::string ext = name.substr(name.rfind('.') + 1);
  std::string type = ext == "pdf"    ? "application/pdf"
                     : ext == "jpg"  ? "image/jpeg"
                     : ext == "png"  ? "image/png"
                     : ext == "zip"  ? "application/zip"
                     : ext == "txt"  ? "text/plain; charset=utf-8"
                     : ext == "csv"  ? "text/csv; charset=utf-8"
                     : ext == "docx" ? "application/vnd.openxmlformats-officedocument."
                                       "wordprocessingml.document"
                                     : "application/vnd.openxmlformats-officedocument."
                                       "spreadsheetml.sheet";
  bool text = ext == "txt" || ext == "csv";
  out->append("Content-Type: ").append(type);
  if (IsAscii(name)) {
    out->append(";\n\tname=\"").append(name).append("\"\n");
  } else {
    out->append(";\n\tname=\"").append(EncodeWordsUtf8(name)).append("\"\n");
  }
  out->append("Content-Disposition: attachment;\n\t");
  if (IsAscii(name)) {
    out->append("filename=\"").append(name).append("\"\n");
  } else {
    out->append("filename*=").append(Rfc2231(name)).append("\n");
  }
  std::string data;
  if (text) {
    AppendText(r, raw_size, true, &data);
    out->append("Content-Transfer-Encoding: quoted-printable\n\n");
    AppendQp(data, out);
    if (out->back() != '\n') out->push_back('\n');
    return;
  }
  static const char* const kMagic[] = {"%PDF-1.4\n", "\x89PNG\r\n\x1a\n", "PK\x03\x04",
                                       "\xFF\xD8\xFF\xE0"};
  data = ext == "pdf" ? kMagic[0] : ext == "png" ? kMagic[1] : ext == "jpg" ? kMagic[3] : kMagic[2];
  AppendRandomBytes(r, raw_size, &data);
  out->append("Content-Transfer-Encoding: base64\n\n");
  AppendBase64(data, out, true);
}

std::string Html(std::string_view text) {
  std::string h = "<html><head><meta charset=\"utf-8\"></head><body>\n<p>";
  for (char c : text) {
    if (c == '\n') {
      h.append("<br>\n");
    } else if (c == '<') {
      h.append("&lt;");
    } else {
      h.push_back(c);
    }
  }
  h.append("</p>\n</body></html>\n");
  return h;
}

// Text part of size n with a plain-text Content-Type, QP when it is not ASCII.
void AppendTextPart(Rng& r, size_t n, bool accents, std::string* out) {
  std::string text;
  AppendText(r, n, accents, &text);
  if (IsAscii(text)) {
    out->append("Content-Type: text/plain; charset=us-ascii\nContent-Transfer-Encoding: 7bit\n\n");
    out->append(text);
  } else {
    out->append(
        "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: quoted-printable\n\n");
    AppendQp(text, out);
  }
}

void AppendAlternative(Rng& r, size_t n, std::string* out) {
  std::string b = Boundary(r), text;
  AppendText(r, n / 2, r.Chance(0.3), &text);
  out->append("--" + b + "\n");
  out->append("Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: ");
  out->append(IsAscii(text) ? "7bit\n\n" : "8bit\n\n").append(text);
  out->append("--" + b + "\n");
  out->append(
      "Content-Type: text/html; charset=utf-8\nContent-Transfer-Encoding: quoted-printable\n\n");
  AppendQp(Html(text), out);
  out->append("\n--" + b + "--\n");
  out->insert(0, "Content-Type: multipart/alternative;\n\tboundary=\"" + b + "\"\n\n");
}

size_t Overhead(uint64_t size, size_t headers) {
  return size > headers + 200 ? size - headers : 200;
}

Body MakeBody(const Ctx& c, uint32_t idx) {
  const Planned& p = c.plan[idx];
  if (p.kind == Kind::kLookalikeMsgId && p.variant != 0) return MakeBody(c, p.base);
  Rng r(Hash(c.opt.seed, kStreamBody, idx));
  Body b;
  const size_t n = Overhead(p.size, 1600);
  const std::string mime = "MIME-Version: 1.0\n";
  switch (p.kind) {
    case Kind::kPlain:
    case Kind::kNoMessageId:
    case Kind::kLookalikeMsgId:
    case Kind::kLookalikeContent:
    case Kind::kSubjectUtf8:
    case Kind::kRaw8BitHeader: {
      bool utf8 = r.Chance(0.2) || p.kind == Kind::kSubjectUtf8;
      AppendText(r, n, utf8, &b.text);
      if (r.Chance(0.3)) b.text.append("-- \n").append(c.owner_display).append("\n");
      bool ascii = IsAscii(b.text);
      if (r.Chance(0.3) && ascii) break;  // no MIME headers at all: plain RFC 822
      b.headers = mime + "Content-Type: text/plain; charset=" + (ascii ? "us-ascii" : "utf-8") +
                  (r.Chance(0.3) ? "; format=flowed" : "") +
                  "\nContent-Transfer-Encoding: " + (ascii ? "7bit" : "8bit") + "\n";
      break;
    }
    case Kind::kSubjectLatin1: {
      std::string text;
      AppendText(r, n, true, &text);
      b.text = ToLatin1(text);
      b.headers = mime + "Content-Type: text/plain; charset=ISO-8859-1\n" +
                  "Content-Transfer-Encoding: 8bit\n";
      break;
    }
    case Kind::kQuotedPrintable: {
      std::string text;
      AppendText(r, n, true, &text);
      text.append("Preis: 100 € = 1+1=2, Tabelle:\tA\tB   \nZeile mit Leerzeichen am Ende   \n");
      AppendQp(text, &b.text);
      b.headers = mime + "Content-Type: text/plain; charset=utf-8\n" +
                  "Content-Transfer-Encoding: quoted-printable\n";
      break;
    }
    case Kind::kAlternative: {
      std::string part;
      AppendAlternative(r, n, &part);
      size_t split = part.find("\n\n");
      b.headers = mime + part.substr(0, split + 1);
      b.text = part.substr(split + 2);
      break;
    }
    case Kind::kAttachment:
    case Kind::kBrokenBoundary: {
      std::string bd = Boundary(r);
      int parts = static_cast<int>(r.Range(1, 3));
      size_t text_n = std::min<size_t>(n / 4 + 100, 2000);
      size_t att_n = (n - std::min(n, text_n)) * 3 / 4 / parts + 64;
      b.text = "This is a multi-part message in MIME format.\n\n--" + bd + "\n";
      AppendTextPart(r, text_n, r.Chance(0.3), &b.text);
      for (int i = 0; i < parts; ++i) {
        b.text.append("\n--" + bd + "\n");
        AppendAttachment(r, att_n, &b.text);
      }
      b.text.append("\n--" + bd + "--\n");
      std::string declared = bd;
      if (p.kind == Kind::kBrokenBoundary) {
        switch (r.Below(3)) {
          case 0:  // declared boundary never occurs
            declared = bd + "-declared";
            break;
          case 1:  // no closing delimiter, body truncated mid-part
            b.text.resize(b.text.size() - bd.size() - 5);
            b.text.resize(b.text.size() * 3 / 4);
            b.text.append("\n");
            break;
          default:  // boundary parameter missing altogether
            declared.clear();
        }
      }
      b.headers = mime + "Content-Type: multipart/mixed" +
                  (declared.empty() ? "" : ";\n\tboundary=\"" + declared + "\"") + "\n";
      break;
    }
    case Kind::kNested: {
      std::string outer = Boundary(r), related = Boundary(r), alt;
      AppendAlternative(r, n / 2, &alt);
      b.text = "--" + outer + "\nContent-Type: multipart/related;\n\tboundary=\"" + related +
               "\"\n\n--" + related + "\n" + alt + "\n--" + related + "\n" +
               "Content-Type: image/png\nContent-ID: <logo." + Hex(r.Next(), 8) +
               "@mbxgen>\nContent-Disposition: inline; filename=\"logo.png\"\n" +
               "Content-Transfer-Encoding: base64\n\n";
      std::string png = "\x89PNG\r\n\x1a\n";
      AppendRandomBytes(r, 300 + r.Below(700), &png);
      AppendBase64(png, &b.text, true);
      b.text.append("\n--" + related + "--\n\n--" + outer + "\n");
      AppendAttachment(r, n / 3 + 100, &b.text);
      b.text.append("\n--" + outer + "--\n");
      b.headers = mime + "Content-Type: multipart/mixed;\n\tboundary=\"" + outer + "\"\n";
      break;
    }
    case Kind::kRfc822: {
      std::string bd = Boundary(r);
      Person from = MakePerson(r);
      b.text = "--" + bd + "\nContent-Type: text/plain; charset=us-ascii\n\n";
      AppendText(r, 200, false, &b.text);
      b.text.append("--" + bd + "\nContent-Type: message/rfc822\n" +
                    "Content-Disposition: attachment; filename=\"forwarded.eml\"\n\n");
      // The inner message: full headers, but no X-Mbxgen-Id (it is not a message of the box).
      int64_t inner_date = p.date - r.Range(3600, 86400 * 30);
      b.text.append("Message-ID: <" + Hex(r.Next(), 16) + "@" +
                    from.addr.substr(from.addr.find('@') + 1) + ">\n");
      b.text.append("Date: " + RfcDate(inner_date, p.tz) + "\n");
      b.text.append("From: " + Mailbox(from, r) + "\nTo: " + c.owner_addr + "\n");
      b.text.append("Subject: " + SubjectText(r, false) + "\nMIME-Version: 1.0\n");
      std::string alt;
      AppendAlternative(r, n * 2 / 3, &alt);
      b.text.append(alt);
      b.text.append("\n--" + bd + "--\n");
      b.headers = mime + "Content-Type: multipart/mixed;\n\tboundary=\"" + bd + "\"\n";
      break;
    }
    case Kind::kFromLines: {
      AppendText(r, n / 2, false, &b.text);
      b.text.append(
          "From the archive, as discussed:\n"
          ">From the quoted reply, already escaped once.\n"
          ">>From two levels deep.\n"
          "From  two spaces after From.\n"
          "From: not a header, just text\n"
          "Fromage is not a From_ line.\n"
          "\n"
          "From alice@example.org Thu Jan  1 00:00:00 2020\n"
          "That line above looks exactly like an mbox separator.\n\n");
      AppendText(r, n / 2, false, &b.text);
      b.text.append("From the end.\n");
      break;
    }
    case Kind::kNulBytes: {
      AppendText(r, n / 2, false, &b.text);
      b.text.append("Binary junk follows: ");
      b.text.push_back('\0');
      b.text.append("after a NUL");
      b.text.push_back('\0');
      b.text.push_back('\0');
      b.text.append(" and two more.\n");
      AppendText(r, n / 2, false, &b.text);
      break;
    }
    case Kind::kNoHeaders: {
      b.text = "This message has no headers at all; it is only a body.\n\n";
      AppendText(r, n, false, &b.text);
      break;
    }
    case Kind::kCount:
      break;
  }
  return b;
}

// ---------------------------------------------------------------- copies

// What differs between two deliveries of one message.
struct CopyInfo {
  int64_t delivered = 0;
  bool crlf = false;
  bool in_new = false;
  std::string flags;     // Maildir info flags
  std::string envelope;  // mbox From_ line sender
  std::string trace_head, trace_tail, status;
  uint32_t micros = 0, pid = 0;
};

CopyInfo MakeCopy(const Ctx& c, uint32_t idx, int copy) {
  const Planned& p = c.plan[idx];
  Rng r(Hash(c.opt.seed, kStreamCopy + copy, idx));
  CopyInfo ci;
  ci.delivered = p.date + (copy == 0 ? r.Range(2, 900) : r.Range(600, 86400 * 4));
  ci.crlf = p.kind != Kind::kNoHeaders &&
            (p.where == (kInA | kInB) && copy == 1 ? r.Chance(0.3) : r.Chance(0.02));
  ci.in_new = r.Chance(0.1);
  static const char* const kFlags[] = {"S", "S", "S", "RS", "FS", "PS", "", "RS", "S", "ST", "DS"};
  ci.flags = r.Pick(kFlags);
  ci.micros = static_cast<uint32_t>(r.Below(1000000));
  ci.pid = static_cast<uint32_t>(r.Range(1000, 65000));
  static const char* const kStatus[] = {"Status: RO\n", "Status: RO\nX-Status: A\n", "Status: O\n",
                                        "", "Status: RO\nX-Status: F\n"};
  ci.status = r.Pick(kStatus);

  Rng ir(Hash(c.opt.seed, kStreamIdentity, p.base));  // the original sender's domain
  Person from = MakePerson(ir);
  std::string owner = c.owner_addr;
  const char* const aliases[] = {"", "+inbox", "+lists"};
  std::string alias = owner;
  alias.insert(alias.find('@'), r.Pick(aliases));
  ci.envelope = r.Chance(0.2)   ? "MAILER-DAEMON"
                : r.Chance(0.3) ? "bounces+" + Hex(r.Next(), 8) + "@" + r.Pick(kDomains)
                                : from.addr;
  std::string& h = ci.trace_head;
  if (ci.envelope != "MAILER-DAEMON") h.append("Return-Path: <" + ci.envelope + ">\n");
  if (r.Chance(0.8)) h.append("Delivered-To: " + alias + "\n");
  if (r.Chance(0.5)) h.append("X-Original-To: " + owner + "\n");
  int hops = static_cast<int>(r.Range(1, 3));
  int64_t t = ci.delivered;
  for (int i = 0; i < hops; ++i) {
    const char* relay = r.Pick(kRelays);
    char ip[32];
    std::snprintf(ip, sizeof ip, "%d.%d.%d.%d", static_cast<int>(r.Range(11, 223)),
                  static_cast<int>(r.Below(256)), static_cast<int>(r.Below(256)),
                  static_cast<int>(r.Range(1, 254)));
    h.append(std::string("Received: from ") + relay + " (" + relay + " [" + ip + "])\n\tby " +
             r.Pick(kMx) + " (Postfix) with ESMTPS id " + Hex(r.Next(), 10) + "\n\tfor <" + owner +
             ">; " + RfcDate(t, 60) + "\n");
    t -= r.Range(1, 60);
  }
  std::string& tail = ci.trace_tail;
  if (r.Chance(0.7)) {
    double score = static_cast<double>(r.Range(-50, 60)) / 10.0;
    char buf[160];
    std::snprintf(buf, sizeof buf,
                  "X-Spam-Flag: %s\nX-Spam-Score: %.1f\nX-Spam-Status: %s, score=%.1f "
                  "required=5.0\n\ttests=BAYES_%02d,DKIM_SIGNED,DKIM_VALID\n",
                  score >= 5 ? "YES" : "NO", score, score >= 5 ? "Yes" : "No", score,
                  static_cast<int>(r.Below(100)));
    tail.append(buf);
  }
  return ci;
}

// The message bytes of one copy (LF, or CRLF when the copy says so).
std::string BuildMessage(const Ctx& c, uint32_t idx, const CopyInfo& ci, Format fmt) {
  const Planned& p = c.plan[idx];
  Body body = MakeBody(c, idx);
  std::string m;
  m.reserve(body.text.size() + 2048);
  if (p.kind == Kind::kNoHeaders) {
    // No header block at all; the id rides in the body so that tests still find it.
    m = body.text;
    m.append("X-Mbxgen-Id: " + IdOf(c, idx) + "\n");
  } else {
    Identity id = MakeIdentity(c, idx);
    m.append(ci.trace_head);
    if (!id.message_id.empty()) m.append("Message-ID: " + id.message_id + "\n");
    m.append("Date: " + RfcDate(p.date, p.tz) + "\n");
    m.append("From: " + id.from + "\n");
    m.append("To: " + id.to + "\n");
    if (!id.cc.empty()) m.append("Cc: " + id.cc + "\n");
    m.append("Subject: " + id.subject + "\n");
    if (!id.in_reply_to.empty())
      m.append("In-Reply-To: " + id.in_reply_to + "\nReferences: " + id.in_reply_to + "\n");
    m.append(id.mailer + "\n");
    m.append(body.headers);
    m.append("X-Mbxgen-Id: " + IdOf(c, idx) + "\n");
    m.append(ci.trace_tail);
    if (fmt == Format::kMbox || fmt == Format::kMboxDir) m.append(ci.status);
    m.append("\n");
    m.append(body.text);
  }
  if (m.back() != '\n') m.push_back('\n');
  if (!ci.crlf) return m;
  std::string crlf;
  crlf.reserve(m.size() + m.size() / 40);
  for (char ch : m) {
    if (ch == '\n') crlf.push_back('\r');
    crlf.push_back(ch);
  }
  return crlf;
}

// ---------------------------------------------------------------- output

void MakeDirs(const std::string& path) {
  for (size_t i = 1; i <= path.size(); ++i) {
    if (i != path.size() && path[i] != '/') continue;
    std::string part = path.substr(0, i);
    if (::mkdir(part.c_str(), 0755) != 0 && errno != EEXIST)
      Die("cannot create directory '" + part + "': " + std::strerror(errno));
  }
}

void WriteFile(const std::string& path, std::string_view data, int64_t mtime) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) Die("cannot create '" + path + "': " + std::strerror(errno));
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) Die("cannot write '" + path + "': " + std::strerror(errno));
    data.remove_prefix(static_cast<size_t>(n));
  }
  if (mtime != 0) {
    timespec ts[2] = {{static_cast<time_t>(mtime), 0}, {static_cast<time_t>(mtime), 0}};
    ::futimens(fd, ts);
  }
  if (::close(fd) != 0) Die("cannot write '" + path + "': " + std::strerror(errno));
}

void RequireEmptyOrAbsent(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return;
  if (!S_ISDIR(st.st_mode)) Die("'" + path + "' exists and is not a directory");
  if (::rmdir(path.c_str()) == 0) return;  // empty: recreated below
  Die("output directory '" + path + "' is not empty");
}

class MboxFile {
 public:
  explicit MboxFile(const std::string& path) : path_(path) {
    f_ = std::fopen(path.c_str(), "wb");
    if (!f_) Die("cannot create '" + path + "': " + std::strerror(errno));
    std::setvbuf(f_, nullptr, _IOFBF, 1 << 20);
  }
  // Unwinding from an error: the file is incomplete anyway.
  ~MboxFile() {
    if (f_) std::fclose(f_);
  }
  void Close() {
    FILE* f = f_;
    f_ = nullptr;
    if (std::fclose(f) != 0) Die("cannot write '" + path_ + "'");
  }
  MboxFile(const MboxFile&) = delete;
  MboxFile& operator=(const MboxFile&) = delete;

  // mboxrd: every line matching ^>*From  gets one more '>'.
  void Append(const std::string& msg, const CopyInfo& ci) {
    std::string from = "From " + ci.envelope + " " + AscDate(ci.delivered) + "\n";
    Put(from.data(), from.size());
    const char* p = msg.data();
    const char* end = p + msg.size();
    while (p < end) {
      const char* q = p;
      while (q < end && *q == '>') ++q;
      if (end - q >= 5 && std::memcmp(q, "From ", 5) == 0) Put(">", 1);
      const char* nl = static_cast<const char*>(std::memchr(p, '\n', end - p));
      const char* stop = nl ? nl + 1 : end;
      Put(p, stop - p);
      p = stop;
    }
    Put("\n", 1);
  }

 private:
  void Put(const char* d, size_t n) {
    if (std::fwrite(d, 1, n, f_) != n) Die("cannot write '" + path_ + "': " + std::strerror(errno));
  }
  std::string path_;
  FILE* f_ = nullptr;
};

std::string MaildirFolderDir(const std::string& root, const std::string& folder) {
  if (folder.empty()) return root;
  std::string name;
  size_t start = 0;
  while (true) {
    size_t slash = folder.find('/', start);
    name += "." + ModifiedUtf7(folder.substr(start, slash - start));
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
  return root + "/" + name;
}

struct Tally {
  uint64_t copies = 0, bytes = 0;
};

// Writes one mailbox (copy 0 = A, copy 1 = B) holding the messages with `bit`,
// in format `fmt` with the first `nfolders` folders (a store's blank mailbox
// has fewer folders than its original, and may differ in format).
Tally WriteMailbox(const Ctx& c, const std::string& out, uint8_t bit, int copy, Format fmt,
                   size_t nfolders) {
  std::vector<std::pair<int64_t, uint32_t>> order;
  std::vector<CopyInfo> infos(c.plan.size());
  for (uint32_t i = 0; i < c.plan.size(); ++i) {
    if (!(c.plan[i].where & bit)) continue;
    infos[i] = MakeCopy(c, i, copy);
    order.emplace_back(infos[i].delivered, i);
  }
  std::sort(order.begin(), order.end());

  std::vector<std::unique_ptr<MboxFile>> mboxes(c.folders.size());
  std::vector<std::string> dirs(c.folders.size());
  std::vector<uint32_t> counters(c.folders.size(), 0);
  if (fmt == Format::kMbox) {
    size_t slash = out.rfind('/');
    if (slash != std::string::npos && slash > 0) MakeDirs(out.substr(0, slash));
    mboxes[0] = std::make_unique<MboxFile>(out);
  } else {
    RequireEmptyOrAbsent(out);
    MakeDirs(out);
    for (size_t f = 0; f < nfolders && f < c.folders.size(); ++f) {
      const std::string& name = c.folders[f];
      if (fmt == Format::kMboxDir) {
        std::string path = name.empty() ? out + "/mbox" : out + "/" + name + ".mbox";
        MakeDirs(path.substr(0, path.rfind('/')));
        mboxes[f] = std::make_unique<MboxFile>(path);
      } else if (fmt == Format::kEml) {
        dirs[f] = name.empty() ? out : out + "/" + name;
        MakeDirs(dirs[f]);
      } else {
        dirs[f] = MaildirFolderDir(out, name);
        for (const char* sub : {"/cur", "/new", "/tmp"}) MakeDirs(dirs[f] + sub);
        if (!name.empty()) WriteFile(dirs[f] + "/maildirfolder", "", 0);
      }
    }
  }

  uint32_t q = 0;
  Tally tally;
  for (const auto& [when, idx] : order) {
    const CopyInfo& ci = infos[idx];
    const uint16_t f = c.plan[idx].folder;
    std::string msg = BuildMessage(c, idx, ci, fmt);
    ++q;
    ++tally.copies;
    tally.bytes += msg.size();
    if (fmt == Format::kMbox || fmt == Format::kMboxDir) {
      mboxes[f]->Append(msg, ci);
    } else if (fmt == Format::kEml) {
      WriteFile(dirs[f] + "/" + std::to_string(++counters[f]) + ".eml", msg, ci.delivered);
    } else {
      char name[128];
      std::snprintf(name, sizeof name, "%lld.M%uP%uQ%u.mbxgen,S=%zu",
                    static_cast<long long>(ci.delivered), ci.micros, ci.pid, q, msg.size());
      std::string path = dirs[f] + (ci.in_new ? "/new/" : "/cur/") + name;
      if (!ci.in_new) path += ":2," + ci.flags;
      WriteFile(path, msg, ci.delivered);
    }
  }
  for (auto& m : mboxes)
    if (m) m->Close();
  return tally;
}

void WriteManifest(const Ctx& c) {
  std::string m;
  for (uint32_t i = 0; i < c.plan.size(); ++i) {
    const Planned& p = c.plan[i];
    std::string mid = p.kind == Kind::kNoHeaders ? "" : MakeIdentity(c, i).message_id;
    m.append(IdOf(c, i)).append("\t").append(c.folders[p.folder]).append("\t");
    m.append(kKindNames[static_cast<int>(p.kind)]).append("\t");
    m.append(p.where == (kInA | kInB) ? "both" : p.where == kInA ? "A" : "B").append("\t");
    m.append(std::to_string(p.date)).append("\t").append(mid.empty() ? "-" : mid).append("\n");
  }
  WriteFile(c.opt.manifest, m, 0);
}

// ---------------------------------------------------------------- store

// A mailbox store with the failure of Microsoft KB 278447: the store lost the
// directory, every user got a new blank mailbox (random mailbox GUID) and the
// original one, named by the user's objectGUID, sits disconnected.

constexpr uint64_t kStreamStore = 0x5702E;  // far from the per-message streams

enum class UserState { kBlankConnected, kOk, kMissing, kOrphan, kLegacy };
const char* const kStateNames[] = {"blank-connected", "ok", "missing", "orphan", "legacy"};

// 16 bytes in wire (directory) order.
struct Guid {
  unsigned char b[16] = {};
};

Guid NewGuid(Rng& r) {
  Guid g;
  for (int half = 0; half < 2; ++half) {
    uint64_t v = r.Next();
    for (int i = 0; i < 8; ++i) g.b[half * 8 + i] = static_cast<unsigned char>(v >> (8 * i));
  }
  g.b[7] = static_cast<unsigned char>((g.b[7] & 0x0F) | 0x40);  // version 4 (little-endian field)
  g.b[8] = static_cast<unsigned char>((g.b[8] & 0x3F) | 0x80);  // RFC 4122 variant
  return g;
}

// The text form Windows shows: the first three fields little-endian, lower case.
std::string GuidText(const Guid& g) {
  const unsigned char* b = g.b;
  char buf[40];
  std::snprintf(buf, sizeof buf,
                "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[3], b[2],
                b[1], b[0], b[5], b[4], b[7], b[6], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
                b[15]);
  return buf;
}

std::string GuidRaw(const Guid& g) { return std::string(reinterpret_cast<const char*>(g.b), 16); }

struct StoreRow {  // a user, or the orphan or legacy mailbox
  UserState state = UserState::kOk;
  std::string alias, display, first, last, last_ascii, mail;
  Guid object_guid, connected, original;
  bool has_object = false, has_connected = false, has_original = false;
  Format original_fmt = Format::kMbox, connected_fmt = Format::kMbox;
};

std::string MailboxFileName(const Guid& g, Format f) {
  return GuidText(g) + (f == Format::kMbox ? ".mbox" : "/");
}

const char kDomainDn[] = "DC=corp,DC=example";
const char kMailDomain[] = "corp.example";
const char kAdminGroup[] = "First Administrative Group";
const char kHomeMdb[] =
    "CN=Mailbox Store (EXCH01),CN=First Storage Group,CN=InformationStore,CN=EXCH01,"
    "CN=Servers,CN=First Administrative Group,CN=Administrative Groups,CN=Corp,"
    "CN=Microsoft Exchange,CN=Services,CN=Configuration,DC=corp,DC=example";

// RFC 2849 SAFE-STRING; anything else is written base64 ("attr:: ").
bool LdifSafe(std::string_view v) {
  if (v.empty()) return true;
  if (v[0] == ' ' || v[0] == ':' || v[0] == '<' || v.back() == ' ') return false;
  return std::all_of(v.begin(), v.end(), [](char ch) {
    auto u = static_cast<unsigned char>(ch);
    return u != 0 && u != '\n' && u != '\r' && u < 0x80;
  });
}

// One attribute: a group of "name: value" lines (several values = a multi-valued attribute).
struct LdifAttr {
  std::string name;
  std::vector<std::string> values;
  bool binary = false;
};

void AppendLdifLine(const std::string& name, const std::string& value, bool binary, bool fold,
                    std::string* out) {
  std::string line = name;
  if (binary || !LdifSafe(value)) {
    line.append(":: ");
    AppendBase64(value, &line, false);
  } else {
    line.append(": ").append(value);
  }
  // Folded lines are at most 76 columns; a continuation starts with one space.
  if (!fold || line.size() <= 76) {
    out->append(line).push_back('\n');
    return;
  }
  out->append(line, 0, 76).push_back('\n');
  for (size_t pos = 76; pos < line.size(); pos += 75)
    out->append(" ").append(line, pos, 75).push_back('\n');
}

void AppendLdifEntry(Rng& r, const std::string& dn, std::vector<LdifAttr> attrs, bool fold,
                     std::string* out) {
  // Readers must accept any attribute order: every entry gets its own.
  r.Shuffle(&attrs);
  AppendLdifLine("dn", dn, false, fold, out);
  for (const LdifAttr& a : attrs)
    for (const std::string& v : a.values) AppendLdifLine(a.name, v, a.binary, fold, out);
  out->push_back('\n');
}

std::vector<StoreRow> PlanStore(const Options& o) {
  const uint64_t n = o.users;
  uint64_t ok = n >= 8 ? std::max<uint64_t>(2, (3 * n + 25) / 50) : 1;
  std::vector<UserState> states(n, UserState::kBlankConnected);
  for (uint64_t i = 0; i < ok; ++i) states[i] = UserState::kOk;
  states[ok] = UserState::kMissing;
  Rng sr(Hash(o.seed, kStreamStore, 1));
  sr.Shuffle(&states);

  std::vector<StoreRow> rows;
  std::vector<std::string> displays, aliases;
  Rng nr(Hash(o.seed, kStreamStore, 2));
  Rng gr(Hash(o.seed, kStreamStore, 3));
  constexpr size_t kCombos =
      (sizeof kFirstNames / sizeof kFirstNames[0]) * (sizeof kLastNames / sizeof kLastNames[0]);
  for (uint64_t i = 0; i < n; ++i) {
    StoreRow u;
    u.state = states[i];
    const Name* f = nullptr;
    const Name* l = nullptr;
    for (int attempt = 0;; ++attempt) {
      f = &nr.Pick(kFirstNames);
      l = &nr.Pick(kLastNames);
      u.display = std::string(f->display) + " " + l->display;
      // The first two always have a non-ASCII name (displayName:: base64).
      if (i < 2 && IsAscii(u.display)) continue;
      bool taken = std::find(displays.begin(), displays.end(), u.display) != displays.end();
      if (!taken) break;
      if (displays.size() >= kCombos / 2 || attempt > 100) {
        u.display += " " + std::to_string(i + 1);
        break;
      }
    }
    u.first = f->display;
    u.last = l->display;
    u.last_ascii = l->ascii;
    std::string base = std::string(1, f->ascii[0]) + l->ascii;
    u.alias = base;
    for (int k = 2; std::find(aliases.begin(), aliases.end(), u.alias) != aliases.end(); ++k)
      u.alias = base + std::to_string(k);
    displays.push_back(u.display);
    aliases.push_back(u.alias);
    u.mail = u.alias + "@" + kMailDomain;
    u.object_guid = NewGuid(gr);
    u.has_object = true;
    u.has_connected = true;
    if (u.state == UserState::kBlankConnected) {
      u.connected = NewGuid(gr);
      u.original = u.object_guid;
      u.has_original = true;
    } else {
      u.connected = u.object_guid;
      u.original = u.object_guid;
      u.has_original = u.state == UserState::kOk;
    }
    rows.push_back(u);
  }
  StoreRow orphan;
  orphan.state = UserState::kOrphan;
  orphan.alias = "-";
  orphan.display = "-";
  orphan.original = NewGuid(gr);
  orphan.has_original = true;
  rows.push_back(orphan);
  StoreRow legacy;
  legacy.state = UserState::kLegacy;
  legacy.object_guid = NewGuid(gr);
  legacy.has_object = true;
  legacy.original = NewGuid(gr);
  legacy.has_original = true;
  std::string upper = GuidText(legacy.original);
  for (char& ch : upper) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  legacy.alias = "SystemMailbox{" + upper + "}";
  legacy.display = std::string("SCHEDULE+ FREE BUSY INFORMATION - ") + kAdminGroup;
  legacy.mail = legacy.alias + "@" + kMailDomain;
  rows.push_back(legacy);

  // About half of the mailboxes are mbox files, the rest Maildir++ directories
  // (unless one format is asked for).
  std::vector<Format*> boxes;
  for (StoreRow& row : rows) {
    if (row.has_original) boxes.push_back(&row.original_fmt);
    if (row.state == UserState::kBlankConnected) boxes.push_back(&row.connected_fmt);
  }
  std::vector<Format> fmts(boxes.size(), Format::kMaildir);
  std::fill(fmts.begin(), fmts.begin() + static_cast<std::ptrdiff_t>(fmts.size() / 2),
            Format::kMbox);
  Rng(Hash(o.seed, kStreamStore, 4)).Shuffle(&fmts);
  if (o.store_formats != StoreFormats::kMixed) {
    Format only = o.store_formats == StoreFormats::kMbox      ? Format::kMbox
                  : o.store_formats == StoreFormats::kMaildir ? Format::kMaildir
                                                              : Format::kEml;
    std::fill(fmts.begin(), fmts.end(), only);
  }
  for (size_t i = 0; i < boxes.size(); ++i) *boxes[i] = fmts[i];
  for (StoreRow& row : rows)
    if (row.state != UserState::kBlankConnected) row.connected_fmt = row.original_fmt;
  return rows;
}

std::string DirectoryLdif(const Options& o, const std::vector<StoreRow>& rows) {
  const std::string users_ou = std::string("OU=Users,") + kDomainDn;
  const std::string staff = std::string("CN=All Staff,OU=Groups,") + kDomainDn;
  std::string out =
      "# Directory export of " + std::string(kDomainDn) + " (ldifde -f directory.ldif -d \"" +
      kDomainDn +
      "\" -r \"(|(objectClass=user)(objectClass=group)(objectClass=organizationalUnit)" +
      "(objectClass=msExchSystemMailbox))\")\n" + "# generated by mbxgen store --seed " +
      std::to_string(o.seed) + " --users " + std::to_string(o.users) + "\n" + "version: 1\n\n";
  Rng r(Hash(o.seed, kStreamStore, 5));
  Rng gr(Hash(o.seed, kStreamStore, 6));
  auto guid_attr = [](const char* name, const Guid& g) {
    return LdifAttr{name, {GuidRaw(g)}, true};
  };
  out.append("# organizational unit of the mail users\n");
  AppendLdifEntry(r, users_ou,
                  {{"objectClass", {"top", "organizationalUnit"}},
                   {"ou", {"Users"}},
                   {"description", {"Mail users of corp.example, migrated from Exchange 5.5"}},
                   guid_attr("objectGUID", NewGuid(gr))},
                  false, &out);
  std::vector<std::string> members;
  size_t index = 0;
  for (const StoreRow& u : rows) {
    if (u.state == UserState::kOrphan || u.state == UserState::kLegacy) continue;
    const std::string dn = "CN=" + u.display + "," + users_ou;
    std::vector<LdifAttr> attrs = {
        {"objectClass", {"top", "person", "organizationalPerson", "user"}},
        {"cn", {u.display}},
        {"displayName", {u.display}},
        {"givenName", {u.first}},
        {"sn", {u.last}},
        {"distinguishedName", {dn}},
        {"sAMAccountName", {u.alias}},
        {"mailNickname", {u.alias}},
        {"mail", {u.mail}},
        {"proxyAddresses",
         {"SMTP:" + u.mail, "smtp:" + u.alias + "@corp.local",
          "X400:c=US;a= ;p=Corp;o=Exchange;s=" + u.last_ascii + ";"}},
        {"legacyExchangeDN",
         {std::string("/o=Corp/ou=") + kAdminGroup + "/cn=Recipients/cn=" + u.alias}},
        {"homeMDB", {kHomeMdb}},
        guid_attr("objectGUID", u.object_guid),
        guid_attr("msExchMailboxGUID", u.connected)};
    if (index % 2 == 0) {
      attrs.push_back({"memberOf", {staff}});
      members.push_back(dn);
    }
    // Some entries keep long lines unfolded (LDIF allows both).
    bool fold = index % 3 != 1;
    if (index % 4 == 0) out.append("# user " + std::to_string(index + 1) + "\n");
    AppendLdifEntry(r, dn, attrs, fold, &out);
    ++index;
  }
  out.append("# a group without a mailbox\n");
  AppendLdifEntry(r, staff,
                  {{"objectClass", {"top", "group"}},
                   {"cn", {"All Staff"}},
                   {"groupType", {"-2147483646"}},
                   {"member", members},
                   guid_attr("objectGUID", NewGuid(gr))},
                  true, &out);
  for (const StoreRow& s : rows) {
    if (s.state != UserState::kLegacy) continue;
    out.append("# the Schedule+ Free/Busy system mailbox of the administrative group\n");
    const std::string dn = "CN=" + s.alias + ",CN=Microsoft Exchange System Objects," + kDomainDn;
    AppendLdifEntry(r, dn,
                    {{"objectClass", {"top", "msExchSystemMailbox"}},
                     {"cn", {s.display}},
                     {"displayName", {s.display}},
                     {"mailNickname", {s.alias}},
                     {"legacyExchangeDN",
                      {std::string("/o=Corp/ou=") + kAdminGroup + "/cn=Recipients/cn=" + s.alias}},
                     guid_attr("objectGUID", s.object_guid),
                     guid_attr("msExchMailboxGUID", s.original)},
                    true, &out);
  }
  return out;
}

std::vector<std::string> MakeFolders(int k) {
  std::vector<std::string> folders{""};
  for (int i = 1; i < k; ++i) {
    constexpr int kNamed = sizeof kFolderNames / sizeof kFolderNames[0];
    folders.push_back(i <= kNamed ? kFolderNames[i - 1] : "Folder " + std::to_string(i));
  }
  return folders;
}

// Keeps the blank mailbox's messages in its first `kb` folders; a look-alike
// moves with its original so that both stay in one folder.
void ConfineB(Ctx* c, size_t kb) {
  std::vector<bool> group_in_b(c->plan.size(), false);
  for (const Planned& p : c->plan)
    if (p.where & kInB) group_in_b[p.base] = true;
  for (Planned& p : c->plan)
    if (group_in_b[p.base] && p.folder >= kb) p.folder = static_cast<uint16_t>(p.folder % kb);
}

void RunStore(const Options& o, StoreResult* res) {
  std::vector<StoreRow> rows = PlanStore(o);
  RequireEmptyOrAbsent(o.out_a);
  const std::string mdir = o.out_a + "/mailboxes";
  MakeDirs(mdir);
  WriteFile(o.out_a + "/directory.ldif", DirectoryLdif(o, rows), 0);

  std::string manifest, users;
  uint32_t next_id = 0;
  for (size_t i = 0; i < rows.size(); ++i) {
    const StoreRow& u = rows[i];
    const bool blank = u.state == UserState::kBlankConnected;
    const char* state = kStateNames[static_cast<int>(u.state)];
    std::string conn_file = "-", orig_file = "-";
    if (u.has_original) orig_file = MailboxFileName(u.original, u.original_fmt);
    if (blank) conn_file = MailboxFileName(u.connected, u.connected_fmt);
    if (u.state == UserState::kOk) conn_file = orig_file;
    StoreUser row{u.alias,
                  u.display,
                  state,
                  u.has_object ? GuidText(u.object_guid) : "-",
                  u.has_connected ? GuidText(u.connected) : "-",
                  u.has_original ? GuidText(u.original) : "-",
                  conn_file,
                  orig_file};
    users.append(row.alias + "\t" + row.display + "\t" + row.state + "\t" + row.object_guid + "\t" +
                 row.connected + "\t" + row.original + "\t" + row.connected_file + "\t" +
                 row.original_file + "\n");
    res->users.push_back(std::move(row));
    if (!u.has_original) continue;  // missing: no mailbox at all

    Ctx c;
    Rng r(Hash(o.seed, kStreamStore + 1, i));
    c.opt.pair = blank;
    c.opt.seed = Hash(o.seed, kStreamStore + 2, i);
    c.opt.avg_size = o.avg_size;
    c.opt.dup_rate = o.dup_rate;
    uint64_t m = o.messages;
    if (u.state == UserState::kLegacy) {
      m = std::min<uint64_t>(m, 3);
    } else if (m >= 4) {
      m = m - m / 4 + r.Below(m / 2 + 1);  // +-25%: mailboxes differ in size
    }
    c.opt.messages = m;
    c.opt.b_messages =
        std::max<uint64_t>(m / 3, std::min<uint64_t>(m, 2));  // less new than old mail
    const bool any_mbox =
        u.original_fmt == Format::kMbox || (blank && u.connected_fmt == Format::kMbox);
    // The plan's format decides only whether header-less messages are allowed (never in mbox).
    c.opt.format = any_mbox || !o.headerless ? Format::kMbox : Format::kMaildir;
    int nf = u.original_fmt == Format::kMbox || u.state == UserState::kLegacy
                 ? 1
                 : static_cast<int>(r.Range(3, 5));
    c.opt.folders = nf;
    c.folders = MakeFolders(nf);
    c.id_prefix = "mbxgen-store" + std::to_string(o.seed);
    c.id_base = next_id;
    if (u.state == UserState::kOrphan) {
      Rng pr(Hash(c.opt.seed, 0, 0));
      Person p = MakePerson(pr);
      c.owner_display = p.display;
      c.owner_addr = p.addr;
    } else {
      c.owner_display = u.display;
      c.owner_addr = u.mail;
    }
    MakePlan(&c);
    size_t kb = 1;
    if (blank && u.connected_fmt != Format::kMbox)
      kb = std::min<size_t>(c.folders.size(), static_cast<size_t>(r.Range(1, 3)));
    if (blank) ConfineB(&c, kb);
    std::string orig_path = mdir + "/" + orig_file;
    if (orig_path.back() == '/') orig_path.pop_back();
    Tally t = WriteMailbox(c, orig_path, kInA, 0, u.original_fmt, c.folders.size());
    ++res->mailboxes;
    res->copies += t.copies;
    res->bytes += t.bytes;
    if (blank) {
      std::string conn_path = mdir + "/" + conn_file;
      if (conn_path.back() == '/') conn_path.pop_back();
      t = WriteMailbox(c, conn_path, kInB, 1, u.connected_fmt, kb);
      ++res->mailboxes;
      res->copies += t.copies;
      res->bytes += t.bytes;
    }
    if (o.progress) o.progress(res->copies, res->bytes);
    for (uint32_t k = 0; k < c.plan.size(); ++k) {
      const Planned& p = c.plan[k];
      StoreMessage msg{u.alias,
                       state,
                       IdOf(c, k),
                       c.folders[p.folder],
                       kKindNames[static_cast<int>(p.kind)],
                       p.where == (kInA | kInB) ? "both"
                       : p.where == kInA        ? "A"
                                                : "B",
                       p.date};
      manifest.append(msg.alias + "\t" + msg.state + "\t" + msg.id + "\t" + msg.folder + "\t" +
                      msg.kind + "\t" + msg.in + "\t" + std::to_string(msg.date) + "\n");
      res->messages.push_back(std::move(msg));
    }
    next_id += static_cast<uint32_t>(c.plan.size());
  }
  if (!o.manifest.empty()) {
    WriteFile(o.manifest, manifest, 0);
    WriteFile(o.manifest + ".users", users, 0);
  }
}

}  // namespace

std::string WriteMailboxes(const MailboxSpec& spec) {
  Ctx c;
  c.opt.pair = spec.pair;
  c.opt.format = spec.format;
  c.opt.out_a = spec.out_a;
  c.opt.out_b = spec.out_b;
  c.opt.manifest = spec.manifest;
  c.opt.messages = spec.messages;
  c.opt.b_messages = spec.b_messages;
  c.opt.seed = spec.seed;
  c.opt.avg_size = std::max<uint64_t>(spec.avg_size, 300);
  // An mbox file has one folder.
  c.opt.folders = spec.format == Format::kMbox ? 1 : std::max(spec.folders, 1);
  c.opt.dup_rate = spec.dup_rate;
  try {
    c.folders = MakeFolders(c.opt.folders);
    Rng owner(Hash(c.opt.seed, 0, 0));
    Person p = MakePerson(owner);
    c.owner_display = p.display;
    c.owner_addr = p.addr;
    MakePlan(&c);
    WriteMailbox(c, c.opt.out_a, kInA, 0, c.opt.format, c.folders.size());
    if (c.opt.pair) WriteMailbox(c, c.opt.out_b, kInB, 1, c.opt.format, c.folders.size());
    if (!c.opt.manifest.empty()) WriteManifest(c);
  } catch (const GenError& e) {
    return e.what();
  }
  return "";
}

std::string WriteStore(const StoreSpec& spec, StoreResult* result) {
  if (spec.users < 3 || spec.users > 100'000) return "a store needs between 3 and 100000 users";
  if (spec.out.empty()) return "no output directory";
  Options o;
  o.users = spec.users;
  o.out_a = spec.out;
  o.manifest = spec.manifest;
  o.messages = spec.messages;
  o.seed = spec.seed;
  o.avg_size = std::max<uint64_t>(spec.avg_size, 300);
  o.dup_rate = std::clamp(spec.dup_rate, 0.0, 1.0);
  o.store_formats = spec.formats;
  o.headerless = spec.headerless;
  o.progress = spec.progress;
  StoreResult local;
  StoreResult* res = result ? result : &local;
  *res = StoreResult();
  try {
    RunStore(o, res);
  } catch (const GenError& e) {
    return e.what();
  }
  return "";
}

}  // namespace mbx::synth
