// Fuzzes the mbox splitter (formats/mbox/mbox.h): Split, Unquote, the From_
// line and flag parsers, and an mbox file source reading every message.
// Checks that entries stay inside the file in order, that mboxrd quoting
// round-trips, and that the Status:/X-Status: values of any flags parse back.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "formats/mbox/mbox.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

void Check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "fuzz_mbox: %s\n", what);
    std::abort();
  }
}

bool Inside(std::string_view part, std::string_view whole) {
  return part.data() >= whole.data() && part.data() + part.size() <= whole.data() + whole.size();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace mbx;  // NOLINT
  const std::string_view file(reinterpret_cast<const char*>(data), size);

  std::string_view junk;
  const auto entries = mbox::Split(file, &junk);
  Check(entries.size() <= file.size(), "more messages than bytes");
  size_t last_offset = 0;
  for (size_t i = 0; i < entries.size(); ++i) {
    const auto& e = entries[i];
    Check(Inside(e.stored, file), "entry outside the file");
    Check(i == 0 || e.offset > last_offset, "entries out of order");
    last_offset = e.offset;
    if (!e.from_line.empty()) {
      Check(Inside(e.from_line, file) && e.from_line.starts_with("From "), "bad From_ line");
      (void)mbox::ParseFromLine(e.from_line);
    }
    const std::string message = mbox::Unquote(e.stored);
    Check(mbox::Unquote(mbox::Quote(message)) == message, "Unquote(Quote(m)) != m");
    (void)mbox::FlagsFromHeaders(message);
  }
  Check(mbox::Unquote(mbox::Quote(file)) == file, "Unquote(Quote(file)) != file");
  (void)mbox::ParseFromLine(file);

  // Every flag set mbox can express parses back from the values written for it.
  constexpr MessageFlags kMboxFlags =
      kFlagSeen | kFlagOld | kFlagAnswered | kFlagFlagged | kFlagDraft | kFlagDeleted;
  const MessageFlags flags = size > 0 ? data[0] & kMboxFlags : 0;
  const auto [status, xstatus] = mbox::StatusValues(flags);
  const std::string headers = "Status: " + status + "\nX-Status: " + xstatus + "\n\n";
  Check(mbox::FlagsFromHeaders(headers) == flags, "FlagsFromHeaders(StatusValues(f)) != f");

  auto source = mbox::OpenSource(fuzz::WriteScratch("in.mbox", data, size));
  if (source.ok()) fuzz::Drain(**source);
  return 0;
}
