// Micro-benchmarks of the per-message hot paths: header scanning, body
// splitting, fingerprints, mbox splitting and quoting, and a PST message's
// way to MIME (UTF-16 text, quoted-printable, base64, the whole rendering). Inputs are built in
// memory and deterministically, so runs are comparable across commits.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "engine/dedupe.h"
#include "engine/fingerprint.h"
#include "formats/mbox/mbox.h"
#include "formats/mime/mime.h"
#include "formats/pst/disk/disk.h"
#include "formats/pst/mapi.h"
#include "formats/pst/mapi_to_mime.h"

namespace {

// A header block as delivered by a large provider: a trace chain, DKIM/ARC,
// folded fields, RFC 2047 words; Message-ID near the end, as is common.
std::string HeaderBlock(int n) {
  std::string h;
  h += "Return-Path: <alice" + std::to_string(n) + "@example.org>\n";
  h += "Delivered-To: bob@example.net\n";
  for (int hop = 0; hop < 4; ++hop) {
    h += "Received: from mx" + std::to_string(hop) + ".example.org (mx.example.org [192.0.2." +
         std::to_string(10 + hop) + "])\n\tby mail.example.net (Postfix) with ESMTPS id 4F2C3" +
         std::to_string(n) +
         "\n\tfor <bob@example.net>; Tue, 1 Jul 2003 10:52:" + std::to_string(10 + hop) +
         " +0200 (CEST)\n";
  }
  h += "DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=example.org; s=20230601;\n"
       "\th=to:subject:message-id:date:from:mime-version:from:to:cc:subject\n"
       "\t :date:message-id:reply-to;\n"
       "\tbh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=;\n"
       "\tb=kXo3Yh2pJ6vY3mF8qZ1cN0bT7sLwRr9eUaQdHgVjKpMnBoCiDxEyFzGtHuIvJwKx\n"
       "\t LyMzNaObPcQdRe SfTgUhViWjXkYlZm0n1o2p3q4r5s6t7u8v9w0x1y2z3A4B5C6D7E8F9\n";
  h += "ARC-Authentication-Results: i=1; mx.example.net;\n"
       "       dkim=pass header.i=@example.org header.s=20230601 header.b=kXo3Yh2p;\n"
       "       spf=pass (example.net: domain of alice@example.org designates 192.0.2.10 as "
       "permitted sender) smtp.mailfrom=alice@example.org\n";
  h += "X-Google-Smtp-Source: "
       "AGHT+IGq3m8Jm0d9cK7pL2sQ4vR6tU8wX0yZ2aB4cD6eF8gH0iJ2kL4mN6oP8qR0sT2uV4w\n";
  h += "MIME-Version: 1.0\n";
  h += "From: =?UTF-8?Q?Alice_M=C3=BCller?= <alice" + std::to_string(n) + "@example.org>\n";
  h += "Date: Tue, 1 Jul 2003 10:52:37 +0200\n";
  h += "Subject: =?UTF-8?B?UmU6IFF1YXJ0YWxzYmVyaWNodCBRMyDigJMgRW50d3VyZg==?= #" +
       std::to_string(n) + "\n";
  h += "To: Bob <bob@example.net>, Carol <carol@example.net>,\n Dave <dave@example.net>\n";
  h += "Cc: team@example.net\n";
  h += "In-Reply-To: <prev" + std::to_string(n) + "@mail.example.org>\n";
  h += "References: <root@mail.example.org> <prev" + std::to_string(n) + "@mail.example.org>\n";
  h += "Message-ID: <CAF" + std::to_string(n * 7919) + ".x4@mail.example.org>\n";
  h += "Content-Type: multipart/alternative; boundary=\"000000000000b1e5a705f0e3c1d2\"\n";
  return h;
}

// A message of about `size` bytes: the header block, an empty line, text lines
// (a few starting with "From " so mboxrd quoting is exercised).
std::string Message(int n, size_t size) {
  std::string m = HeaderBlock(n);
  m += "\n";
  static constexpr std::string_view kLines[] = {
      "Hello Bob, here is the quarterly report draft we discussed on Monday.\n",
      "From the figures in section 3 it is clear that the numbers moved.\n",
      "> quoted text of the previous message, wrapped at seventy-two columns\n",
      "--000000000000b1e5a705f0e3c1d2\n",
      "Content-Type: text/plain; charset=\"UTF-8\"\n",
  };
  for (size_t i = 0; m.size() < size; ++i) m += kLines[(i * 7 + n) % std::size(kLines)];
  return m;
}

// An mbox image of about `bytes`, messages of 1 to ~30 KB, mboxrd-quoted.
std::string MboxImage(size_t bytes, size_t* count) {
  std::string img;
  img.reserve(bytes + 64 * 1024);
  uint32_t x = 12345;
  *count = 0;
  while (img.size() < bytes) {
    x = x * 1103515245u + 12345u;  // deterministic sizes
    size_t size = 1024 + (x >> 8) % (30 * 1024);
    img += "From alice@example.org Tue Jul  1 08:52:37 2003\n";
    img += mbx::mbox::Quote(Message(static_cast<int>(*count), size));
    img += "\n";
    ++*count;
  }
  return img;
}

void BM_FieldScanner(benchmark::State& state) {
  const std::string headers = HeaderBlock(1);
  int64_t fields = 0;
  for (auto _ : state) {
    mbx::mime::FieldScanner scanner(headers);
    mbx::mime::Field f;
    while (scanner.Next(&f)) {
      benchmark::DoNotOptimize(f);
      ++fields;
    }
  }
  if (fields == 0) state.SkipWithError("FieldScanner found no fields");
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * headers.size()));
  state.SetItemsProcessed(fields);
}
BENCHMARK(BM_FieldScanner);

// `name` late in the block (Message-ID) and absent (a full scan).
void BM_FindField(benchmark::State& state, std::string_view name, bool present) {
  const std::string headers = HeaderBlock(1);
  if (mbx::mime::FindField(headers, name).has_value() != present) {
    state.SkipWithError("FindField setup: unexpected result");
    return;
  }
  for (auto _ : state) benchmark::DoNotOptimize(mbx::mime::FindField(headers, name));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * headers.size()));
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}
BENCHMARK_CAPTURE(BM_FindField, message_id, std::string_view("message-id"), true);
BENCHMARK_CAPTURE(BM_FindField, absent, std::string_view("X-Not-There"), false);

void BM_BodyOffset(benchmark::State& state) {
  const std::string msg = Message(1, 16 * 1024);
  const size_t expected = HeaderBlock(1).size() + 1;
  if (mbx::mime::BodyOffset(msg) != expected) {
    state.SkipWithError("BodyOffset setup: wrong offset");
    return;
  }
  for (auto _ : state) benchmark::DoNotOptimize(mbx::mime::BodyOffset(msg));
  // What it has to read: the header block, not the body.
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * expected));
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}
BENCHMARK(BM_BodyOffset);

void BM_ComputeHeaderKey(benchmark::State& state) {
  const auto rule = static_cast<mbx::DedupeRule>(state.range(0));
  const std::string msg = Message(1, 16 * 1024);
  const mbx::HeaderKey k = mbx::ComputeHeaderKey(msg, rule);
  if (k == mbx::ComputeHeaderKey(Message(2, 16 * 1024), rule)) {
    state.SkipWithError("ComputeHeaderKey setup: different messages share a key");
    return;
  }
  for (auto _ : state) benchmark::DoNotOptimize(mbx::ComputeHeaderKey(msg, rule));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * mbx::mime::BodyOffset(msg)));
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}
BENCHMARK(BM_ComputeHeaderKey)
    ->Arg(static_cast<int>(mbx::DedupeRule::kAuto))
    ->Arg(static_cast<int>(mbx::DedupeRule::kMessageId))
    ->ArgName("rule");

// Whole-message digests over message sizes from a short note to a big attachment.
void BM_ComputeDigest(benchmark::State& state) {
  const std::string msg = Message(1, static_cast<size_t>(state.range(0)));
  if (mbx::ComputeDigest(msg, mbx::DedupeRule::kAuto) ==
      mbx::ComputeDigest(Message(2, msg.size()), mbx::DedupeRule::kAuto)) {
    state.SkipWithError("ComputeDigest setup: different messages share a digest");
    return;
  }
  for (auto _ : state) benchmark::DoNotOptimize(mbx::ComputeDigest(msg, mbx::DedupeRule::kAuto));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * msg.size()));
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}
BENCHMARK(BM_ComputeDigest)->Arg(4 << 10)->Arg(40 << 10)->Arg(1 << 20)->ArgName("bytes");

void BM_MboxSplit(benchmark::State& state) {
  size_t count = 0;
  const std::string img = MboxImage(20u << 20, &count);
  if (mbx::mbox::Split(img).size() != count) {
    state.SkipWithError("mbox::Split setup: wrong message count");
    return;
  }
  for (auto _ : state) benchmark::DoNotOptimize(mbx::mbox::Split(img));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * img.size()));
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * count));
}
BENCHMARK(BM_MboxSplit)->Unit(benchmark::kMillisecond);

// mboxrd quoting of a message on its way into an mbox (every message the mbox
// sink writes goes through it).
void BM_MboxQuote(benchmark::State& state) {
  const std::string msg = Message(1, 40 * 1024);
  if (mbx::mbox::Unquote(mbx::mbox::Quote(msg)) != msg) {
    state.SkipWithError("mbox::Quote setup: does not round-trip");
    return;
  }
  for (auto _ : state) benchmark::DoNotOptimize(mbx::mbox::Quote(msg));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * msg.size()));
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}
BENCHMARK(BM_MboxQuote);

// A text body as Outlook stores it: CRLF lines of prose, some accented
// words, the odd "From " and '=' that quoted-printable must encode.
std::string TextBody(size_t size) {
  static constexpr std::string_view kLines[] = {
      "Hello Bob, here is the quarterly report draft we discussed on Monday.\r\n",
      "From the figures in section 3 it is clear that the numbers moved.\r\n",
      "Viele Gr\xc3\xbc\xc3\x9f, aus K\xc3\xb6ln, und sch\xc3\xb6ne Feiertage!\r\n",
      "Total = 4,200 EUR (see the attached spreadsheet for the details).\r\n",
      "\r\n",
  };
  std::string body;
  for (size_t i = 0; body.size() < size; ++i) body += kLines[(i * 7) % std::size(kLines)];
  return body;
}

void BM_EncodeQuotedPrintable(benchmark::State& state) {
  const std::string body = TextBody(static_cast<size_t>(state.range(0)));
  const std::string qp = mbx::mime::EncodeQuotedPrintable(body);
  if (qp.find("\n=46rom the figures") == std::string::npos ||
      qp.find("Total =3D") == std::string::npos) {
    state.SkipWithError("EncodeQuotedPrintable setup: 'From ' or '=' not encoded");
    return;
  }
  for (auto _ : state) benchmark::DoNotOptimize(mbx::mime::EncodeQuotedPrintable(body));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * body.size()));
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}
BENCHMARK(BM_EncodeQuotedPrintable)->Arg(4 << 10)->Arg(64 << 10)->ArgName("bytes");

// PtypString values (UTF-16LE) to UTF-8: every string property a PST message
// has, its text body the largest. ASCII text and text with accents.
void BM_Utf16leToUtf8(benchmark::State& state) {
  std::string body = TextBody(64 << 10);
  if (state.range(0) == 0) {
    for (char& c : body) {
      if ((c & 0x80) != 0) c = 'e';
    }
  }
  const std::string utf16 = mbx::pst::disk::Utf8ToUtf16le(body);
  if (mbx::pst::disk::Utf16leToUtf8(utf16) != body) {
    state.SkipWithError("Utf16leToUtf8 setup: does not round-trip");
    return;
  }
  for (auto _ : state) benchmark::DoNotOptimize(mbx::pst::disk::Utf16leToUtf8(utf16));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * utf16.size()));
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}
BENCHMARK(BM_Utf16leToUtf8)->Arg(0)->Arg(1)->ArgName("accents");

// A PST message rendered as MIME, the PST sources' per-message work: headers
// from properties, a quoted-printable text body, an HTML body and a base64
// attachment of `bytes`.
void BM_RenderMime(benchmark::State& state) {
  using namespace mbx::pst;
  MapiMessage m;
  m.props.SetString(kPidSubject, "Quarterly report, draft 3");
  m.props.SetString(kPidSentRepresentingName, "Alice Example");
  m.props.SetString(kPidSentRepresentingAddrType, "SMTP");
  m.props.SetString(kPidSentRepresentingEmail, "alice@example.org");
  m.props.SetFileTime(kPidClientSubmitTime, UnixToFileTime(1268673125));
  m.props.SetString(kPidInternetMessageId, "report-3@example.org");
  const std::string body = TextBody(8 << 10);
  m.props.SetString(kPidBody, body);
  m.props.SetBinary(kPidHtml, "<html><body><pre>" + body + "</pre></body></html>");
  m.props.SetInt32(kPidInternetCodepage, 65001);
  MapiAttachment a;
  a.props.SetString(kPidAttachLongFilename, "report.xlsx");
  a.props.SetInt32(kPidAttachMethod, 1);
  std::mt19937 rng(3);
  for (int64_t i = 0; i < state.range(0); ++i) a.data.push_back(static_cast<char>(rng()));
  m.attachments.push_back(std::move(a));
  const size_t in_bytes = body.size() * 2 + 34 + static_cast<size_t>(state.range(0));
  if (mbx::mime::AttachmentNames(RenderMime(m)) != std::vector<std::string>{"report.xlsx"}) {
    state.SkipWithError("RenderMime setup: the attachment is not in the rendering");
    return;
  }
  for (auto _ : state) benchmark::DoNotOptimize(RenderMime(m));
  // Counted as what it reads: the text body, the HTML body, the attachment.
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * in_bytes));
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}
BENCHMARK(BM_RenderMime)->Arg(32 << 10)->Arg(1 << 20)->ArgName("attachment_bytes");

// The dedupe index filled with N distinct messages (random keys and digests,
// as SHA-256 gives): insertions per second and bytes per entry, by size, to
// show both stay flat from a thousand to a million messages.
void BM_DedupeCheckAndInsert(benchmark::State& state) {
  const size_t n = static_cast<size_t>(state.range(0));
  std::mt19937_64 rng(7);
  std::vector<std::pair<mbx::HeaderKey, mbx::Digest>> input(n);
  for (auto& [k, d] : input) {
    for (auto& b : k) b = static_cast<uint8_t>(rng());
    for (auto& b : d) b = static_cast<uint8_t>(rng());
  }
  auto no_load = [](uint64_t) -> mbx::Result<std::string> { return mbx::Status::NotFound("unused"); };
  size_t bytes = 0;
  for (auto _ : state) {
    mbx::DedupeIndex idx(mbx::DedupeRule::kAuto);
    for (const auto& [k, d] : input) benchmark::DoNotOptimize(idx.CheckAndInsert(0, k, d, no_load));
    bytes = idx.MemoryBytes();
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * n));
  state.counters["bytes_per_entry"] = static_cast<double>(bytes) / static_cast<double>(n);
}
BENCHMARK(BM_DedupeCheckAndInsert)->Arg(1000)->Arg(100000)->Arg(1000000)->ArgName("messages")->Unit(benchmark::kMillisecond);

}  // namespace
