#include "engine/message.h"

namespace mbx {

Result<std::string_view> Message::Mime() const {
  if (!native) return std::string_view(mime);
  if (!mime.empty()) return std::string_view(mime);
  if (converted_.empty()) {
    auto r = native->ToMime();
    if (!r.ok()) return r.status().WithContext(origin);
    converted_ = std::move(r).value();
    // Rendered by appending, so up to twice its size in capacity: it waits in
    // the pipeline, whose memory budget counts its size.
    converted_.shrink_to_fit();
  }
  return std::string_view(converted_);
}

size_t Message::ByteSize() const {
  if (!native || !mime.empty()) return mime.size();
  return converted_.empty() ? native->SizeHint() : converted_.size();
}

}  // namespace mbx
