// Placeholder until the mbox backend lands.
#include "formats/mbox/mbox.h"

namespace mbx::mbox {
Result<std::unique_ptr<MailboxSource>> OpenSource(const std::string& path) {
  return Status::Unsupported("mbox backend not built yet: " + path);
}
Result<std::unique_ptr<MailboxSink>> OpenSink(const std::string& path, const SinkOptions&) {
  return Status::Unsupported("mbox backend not built yet: " + path);
}
}  // namespace mbx::mbox
