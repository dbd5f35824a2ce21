// \brief EML tree backend: folders are directories, one .eml file per message.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "engine/mailbox.h"
#include "formats/registry.h"

namespace mbx::eml {

// A safe file or directory name component: no '/', NUL, control characters,
// no "." or "..", no leading '.', no Windows-reserved names, at most
// `max_bytes` bytes of valid UTF-8. Never empty.
std::string SanitizeComponent(std::string_view name, size_t max_bytes = 120);

Result<std::unique_ptr<MailboxSource>> OpenSource(const std::string& dir);
Result<std::unique_ptr<MailboxSink>> OpenSink(const std::string& dir, const SinkOptions& opts);

}  // namespace mbx::eml
