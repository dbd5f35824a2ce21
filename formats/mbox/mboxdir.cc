// Placeholder until the mboxdir backend lands.
#include "formats/mbox/mbox.h"

namespace mbx::mbox {
Result<std::unique_ptr<MailboxSource>> OpenDirSource(const std::string& path) {
  return Status::Unsupported("mboxdir backend not built yet: " + path);
}
Result<std::unique_ptr<MailboxSink>> OpenDirSink(const std::string& path, const SinkOptions&) {
  return Status::Unsupported("mboxdir backend not built yet: " + path);
}
}  // namespace mbx::mbox
