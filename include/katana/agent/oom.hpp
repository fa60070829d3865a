// OOM notifications from a container's memory cgroup, as oom_watch values (engine.hpp):
// cgroup v1: an eventfd registered in cgroup.event_control for memory.oom_control;
// cgroup v2: inotify on memory.events, reporting when its oom_kill counter grows.
#pragma once

#include <charconv>
#include <cstdint>
#include <fcntl.h>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <katana/agent/engine.hpp>
#include <katana/agent/guest.hpp>
#include <katana/config.hpp>
#include <katana/core/error.hpp>
#include <katana/core/str_cat.hpp>
#include <katana/core/try.hpp>
#include <katana/core/unique_fd.hpp>

namespace katana::inline v0::agent {

/// The "oom_kill N" counter of a v2 memory.events file.
inline result<std::uint64_t> read_oom_kill_count(const std::filesystem::path& events) {
  const auto text = KATANA_TRY(detail::read_small_file(events));
  std::string_view rest = text;
  while (!rest.empty()) {
    const auto nl = rest.find('\n');
    const auto line = rest.substr(0, nl);
    rest = nl == std::string_view::npos ? std::string_view{} : rest.substr(nl + 1);
    constexpr std::string_view key = "oom_kill ";
    if (line.substr(0, key.size()) == key) {
      std::uint64_t v = 0;
      const auto num = line.substr(key.size());
      std::from_chars(num.data(), num.data() + num.size(), v);
      return v;
    }
  }
  return std::uint64_t{0};
}

/// cgroup v2: watches <dir>/memory.events.
inline result<oom_watch> watch_oom_v2(const std::filesystem::path& dir) {
  const auto events = dir / "memory.events";
  unique_fd fd(::inotify_init1(IN_NONBLOCK | IN_CLOEXEC));
  if (!fd) {
    return fail_errno("inotify_init1");
  }
  if (::inotify_add_watch(fd.get(), events.c_str(), IN_MODIFY) < 0) {
    return fail_errno("inotify_add_watch " + events.string());
  }
  auto last = std::make_shared<std::uint64_t>(KATANA_TRY(read_oom_kill_count(events)));
  const int raw = fd.get();
  oom_watch w;
  w.fd = std::move(fd);
  w.check = [raw, events, last]() -> result<bool> {
    char buf[4096];
    while (::read(raw, buf, sizeof buf) > 0) {
    }
    const auto now = KATANA_TRY(read_oom_kill_count(events));
    const bool grew = now > *last;
    *last = now;
    return grew;
  };
  return w;
}

/// cgroup v1: an eventfd notified through <dir>/cgroup.event_control.
inline result<oom_watch> watch_oom_v1(const std::filesystem::path& dir) {
  unique_fd efd(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (!efd) {
    return fail_errno("eventfd");
  }
  const auto control = dir / "memory.oom_control";
  unique_fd ofd(::open(control.c_str(), O_RDONLY | O_CLOEXEC));
  if (!ofd) {
    return fail_errno("open " + control.string());
  }
  const auto line = str_cat(efd.get(), " ", ofd.get());
  KATANA_TRY(detail::write_small_file(dir / "cgroup.event_control", line));
  auto keep = std::make_shared<unique_fd>(std::move(ofd));  // must stay open while watched
  const int raw = efd.get();
  oom_watch w;
  w.fd = std::move(efd);
  w.check = [raw, keep]() -> result<bool> {
    std::uint64_t n = 0;
    return ::read(raw, &n, sizeof n) == static_cast<ssize_t>(sizeof n) && n > 0;
  };
  return w;
}

/// v2 when `dir` has memory.events, else v1.
inline result<oom_watch> watch_oom(const std::filesystem::path& dir) {
  std::error_code ec;
  if (std::filesystem::exists(dir / "memory.events", ec)) {
    return watch_oom_v2(dir);
  }
  return watch_oom_v1(dir);
}

}  // namespace katana::inline v0::agent
