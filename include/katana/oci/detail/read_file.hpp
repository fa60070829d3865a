// Reads a small regular file whole, with a size cap (config.json, state.json).
#pragma once

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <fcntl.h>
#include <filesystem>
#include <string>
#include <sys/stat.h>
#include <unistd.h>

#include <katana/core/error.hpp>
#include <katana/core/str_cat.hpp>
#include <katana/core/unique_fd.hpp>

namespace katana::inline v0::oci::detail {

inline result<std::string> read_small_file(const std::filesystem::path& path, std::size_t limit) {
  // O_NONBLOCK: opening a FIFO must not wait for a writer; it is refused below anyway.
  unique_fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
  if (!fd) {
    return fail_errno(str_cat("open ", path.native()));
  }
  struct ::stat st {};
  if (::fstat(fd.get(), &st) != 0) {
    return fail_errno(str_cat("stat ", path.native()));
  }
  if (S_ISDIR(st.st_mode)) {
    return fail_errno(str_cat("read ", path.native()), EISDIR);
  }
  if (!S_ISREG(st.st_mode)) {
    return fail(errc::invalid_argument, str_cat(path.native(), ": not a regular file"));
  }
  const auto too_big = [&] {
    return fail(errc::invalid_argument,
                str_cat(path.native(), ": larger than the limit of ", limit, " bytes"));
  };
  if (static_cast<std::size_t>(st.st_size) > limit) {
    return too_big();
  }
  std::string text(static_cast<std::size_t>(st.st_size), '\0');
  std::size_t used = 0;
  for (;;) {
    // The file may grow after fstat: read until EOF, one byte past the limit at most.
    if (used == text.size()) {
      if (text.size() > limit) {
        return too_big();
      }
      text.resize(std::min(limit + 1, std::max<std::size_t>(4096, text.size() * 2)));
    }
    const auto n = ::read(fd.get(), text.data() + used, text.size() - used);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      return fail_errno(str_cat("read ", path.native()));
    }
    if (n == 0) {
      break;
    }
    used += static_cast<std::size_t>(n);
  }
  if (used > limit) {
    return too_big();
  }
  text.resize(used);
  return text;
}

}  // namespace katana::inline v0::oci::detail
