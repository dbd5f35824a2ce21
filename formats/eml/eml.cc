// Placeholder until the EML backend lands.
#include "formats/eml/eml.h"

namespace mbx::eml {
Result<std::unique_ptr<MailboxSource>> OpenSource(const std::string& path) {
  return Status::Unsupported("eml backend not built yet: " + path);
}
Result<std::unique_ptr<MailboxSink>> OpenSink(const std::string& path, const SinkOptions&) {
  return Status::Unsupported("eml backend not built yet: " + path);
}
}  // namespace mbx::eml
