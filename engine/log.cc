#include "engine/log.h"

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <memory>
#include <vector>

namespace mbx::log {
namespace {

std::shared_ptr<spdlog::logger>& Logger() {
  static std::shared_ptr<spdlog::logger> logger;
  return logger;
}

spdlog::level::level_enum ToSpd(Level l) {
  switch (l) {
    case Level::kDebug: return spdlog::level::debug;
    case Level::kInfo: return spdlog::level::info;
    case Level::kWarn: return spdlog::level::warn;
    case Level::kError: return spdlog::level::err;
    case Level::kOff: return spdlog::level::off;
  }
  return spdlog::level::info;
}

}  // namespace

Result<Level> ParseLevel(std::string_view name) {
  if (name == "debug") return Level::kDebug;
  if (name == "info") return Level::kInfo;
  if (name == "warn" || name == "warning") return Level::kWarn;
  if (name == "error") return Level::kError;
  if (name == "off") return Level::kOff;
  return Status::InvalidArgument("unknown log level '" + std::string(name) + "' (debug, info, warn, error, off)");
}

Status Init(const std::string& file, Level level, bool quiet) {
  std::vector<spdlog::sink_ptr> sinks;
  try {
    auto err = std::make_shared<spdlog::sinks::stderr_sink_mt>();
    err->set_level(quiet ? spdlog::level::off : std::max(ToSpd(level), spdlog::level::warn));
    err->set_pattern("mbxmerge: %l: %v");
    sinks.push_back(err);
    if (!file.empty()) {
      auto f = std::make_shared<spdlog::sinks::basic_file_sink_mt>(file, /*truncate=*/false);
      f->set_level(ToSpd(level));
      f->set_pattern("%Y-%m-%dT%H:%M:%S.%e %l %v");
      sinks.push_back(f);
    }
  } catch (const spdlog::spdlog_ex& e) {
    return Status::IOError("cannot open log file '" + file + "': " + e.what());
  }
  auto logger = std::make_shared<spdlog::logger>("mbxmerge", sinks.begin(), sinks.end());
  logger->set_level(ToSpd(level));
  logger->flush_on(spdlog::level::warn);
  Logger() = logger;
  return Status::Ok();
}

void Write(Level level, std::string_view message) {
  auto& l = Logger();
  if (!l) return;
  l->log(ToSpd(level), "{}", message);
}

void Flush() {
  if (auto& l = Logger()) l->flush();
}

}  // namespace mbx::log
