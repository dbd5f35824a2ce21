// \brief Helpers shared by the fuzz harnesses: a scratch file per process for
// the readers that open paths, and draining a MailboxSource.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

#include "engine/mailbox.h"

namespace mbx::fuzz {

// A directory of this process's own under $TMPDIR (/dev/shm when present:
// the PST harnesses write every input to a file).
inline const std::string& ScratchDir() {
  static const std::string dir = [] {
    std::filesystem::path base =
        std::filesystem::exists("/dev/shm") ? "/dev/shm" : std::filesystem::temp_directory_path();
    if (const char* t = std::getenv("MBX_FUZZ_TMPDIR")) base = t;
    auto d = base / ("mbx-fuzz-" + std::to_string(getpid()));
    std::filesystem::create_directories(d);
    return d.string();
  }();
  static const bool cleanup_registered = [] {
    std::atexit([] {
      std::error_code ec;
      std::filesystem::remove_all(ScratchDir(), ec);
    });
    return true;
  }();
  (void)cleanup_registered;
  return dir;
}

// Writes `data` to ScratchDir()/name and returns the path.
inline std::string WriteScratch(std::string_view name, const uint8_t* data, size_t size) {
  std::string path = ScratchDir() + "/" + std::string(name);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  out.close();
  if (!out) {
    std::fprintf(stderr, "fuzz: cannot write %s\n", path.c_str());
    std::abort();
  }
  return path;
}

// Lists the folders and reads every message to the end, converting each to
// MIME as a MIME sink would. Returns how many messages were read.
inline size_t Drain(MailboxSource& source) {
  (void)source.Describe();
  (void)source.ListFolders();
  size_t n = 0;
  for (;;) {
    Message msg;
    auto more = source.Next(&msg);
    if (!more.ok() || !*more) break;
    ++n;
    if (msg.read_error) continue;
    auto mime = msg.Mime();
    (void)mime;
  }
  return n;
}

}  // namespace mbx::fuzz
