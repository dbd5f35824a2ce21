// Placeholder until the Maildir backend lands.
#include "formats/maildir/maildir.h"

#include "engine/fs.h"

namespace mbx::maildir {
bool IsMaildir(const std::string& dir) {
  return fs::IsDir(dir + "/cur") && fs::IsDir(dir + "/new") && fs::IsDir(dir + "/tmp");
}
Result<std::unique_ptr<MailboxSource>> OpenSource(const std::string& path) {
  return Status::Unsupported("maildir backend not built yet: " + path);
}
Result<std::unique_ptr<MailboxSink>> OpenSink(const std::string& path, const SinkOptions&) {
  return Status::Unsupported("maildir backend not built yet: " + path);
}
}  // namespace mbx::maildir
