// \brief Logging: a thin front over spdlog so that only one file pays for its headers.
#pragma once

#include <string>
#include <string_view>

#include "engine/status.h"

namespace mbx::log {

enum class Level { kDebug, kInfo, kWarn, kError, kOff };

Result<Level> ParseLevel(std::string_view name);

// Warnings and errors go to stderr (unless `quiet`); everything at `level`
// and above goes to `file` when non-empty.
Status Init(const std::string& file, Level level, bool quiet);

void Write(Level level, std::string_view message);
inline void Debug(std::string_view m) { Write(Level::kDebug, m); }
inline void Info(std::string_view m) { Write(Level::kInfo, m); }
inline void Warn(std::string_view m) { Write(Level::kWarn, m); }
inline void Error(std::string_view m) { Write(Level::kError, m); }
void Flush();

}  // namespace mbx::log
