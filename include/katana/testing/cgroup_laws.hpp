// The laws every cgroup::manager obeys (concepts.hpp), checked against a live child process:
//   create → pids() is empty → open() from a second instance sees the cgroup → add_task(child)
//   → pids() contains it (in both instances) → apply({}) is a no-op → stats() works (has_stats)
//   → freeze(frozen) → state() == frozen → freeze(thawed) → state() == thawed → remove() fails
//   with EBUSY while the task remains and kills nothing (pids() still has it) → the task is
//   killed and reaped → pids() is empty → remove() succeeds → remove() again succeeds → open()
//   of the removed cgroup fails.
// check_cgroup_manager_laws returns the first broken law as an error (errc::internal, naming
// it), so any test framework can report it; run it over the fake and every real policy the host
// supports (tests/unit/cgroup/laws_test.cpp).
#pragma once

#include <algorithm>
#include <chrono>
#include <csignal>
#include <string>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <system_error>
#include <thread>
#include <unistd.h>
#include <vector>

#include <katana/cgroup/concepts.hpp>
#include <katana/config.hpp>
#include <katana/core/error.hpp>
#include <katana/core/scope_exit.hpp>
#include <katana/core/str_cat.hpp>

namespace katana::inline v0::testing {

/// A child that sleeps in pause() until killed (and dies with its parent).
inline pid_t spawn_sleeper() {
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) {
      ::_exit(0);
    }
    for (;;) {
      ::pause();
    }
  }
  return pid;
}

/// SIGKILL and reap; safe to call twice.
inline void kill_and_reap(pid_t& pid) {
  if (pid > 0) {
    ::kill(pid, SIGKILL);
    while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
    }
    pid = -1;
  }
}

namespace detail {
inline unexpected<error> law_broken(std::string_view law, std::string_view what) {
  return fail(errc::internal, str_cat("cgroup law \"", law, "\" broken: ", what));
}
template <class T>
std::string why(const result<T>& r) {
  return r ? std::string("succeeded") : r.error().message();
}
inline bool contains(const std::vector<pid_t>& v, pid_t p) {
  return std::find(v.begin(), v.end(), p) != v.end();
}
}  // namespace detail

/// Checks the laws on a fresh cgroup at `path` (relative to the hierarchy root, must not
/// exist). make() returns a new, unbound manager each call. The cgroup is removed in the end,
/// also on failure (best effort), and the child is always killed.
template <cgroup::manager C, class Make>
status check_cgroup_manager_laws(Make&& make, const std::string& path) {
  using detail::law_broken;
  using detail::why;
  C c = make();
  pid_t child = -1;
  const scope_exit cleanup([&] {
    kill_and_reap(child);
    (void)c.remove();
  });

  if (auto st = c.create({path, std::nullopt}); !st) {
    return law_broken("create succeeds", st.error().message());
  }
  if (c.path() != path) {
    return law_broken("path() is the created path",
                      str_cat("\"", c.path(), "\" != \"", path, "\""));
  }
  if (auto p = c.pids(); !p || !p->empty()) {
    return law_broken("a new cgroup has no tasks", p ? str_cat(p->size(), " tasks") : why(p));
  }
  C other = make();
  if (auto st = other.open({path, std::nullopt}); !st) {
    return law_broken("open() binds to an existing cgroup", st.error().message());
  }
  {
    C missing = make();
    if (auto st = missing.open({path + "-missing", std::nullopt}); st) {
      return law_broken("open() of a missing cgroup fails", "it succeeded");
    }
  }

  child = spawn_sleeper();
  if (child < 0) {
    return fail_errno("fork");
  }
  if (auto st = c.add_task(child); !st) {
    return law_broken("add_task(child) succeeds", st.error().message());
  }
  if (auto p = c.pids(); !p || !detail::contains(*p, child)) {
    return law_broken("pids() contains the added task", why(p));
  }
  if (auto p = other.pids(); !p || !detail::contains(*p, child)) {
    return law_broken("another instance's pids() contains the added task", why(p));
  }
  if (auto st = c.apply(oci::linux_resources{}); !st) {
    return law_broken("apply() of empty resources is a no-op", st.error().message());
  }
  if constexpr (cgroup::has_stats<C>) {
    if (auto s = c.stats(); !s) {
      return law_broken("stats() succeeds", s.error().message());
    }
  }

  if (auto st = c.freeze(cgroup::freezer_state::frozen); !st) {
    return law_broken("freeze(frozen) succeeds", st.error().message());
  }
  if (auto s = c.state(); !s || *s != cgroup::freezer_state::frozen) {
    return law_broken("state() is frozen after freeze(frozen)",
                      s ? std::string(cgroup::to_string(*s)) : why(s));
  }
  if (auto s = other.state(); !s || *s != cgroup::freezer_state::frozen) {
    return law_broken("another instance sees the frozen state",
                      s ? std::string(cgroup::to_string(*s)) : why(s));
  }
  if (auto st = c.freeze(cgroup::freezer_state::thawed); !st) {
    return law_broken("freeze(thawed) succeeds", st.error().message());
  }
  if (auto s = c.state(); !s || *s != cgroup::freezer_state::thawed) {
    return law_broken("state() is thawed after freeze(thawed)",
                      s ? std::string(cgroup::to_string(*s)) : why(s));
  }
  if (c.freeze(cgroup::freezer_state::freezing)) {
    return law_broken("freeze(freezing) is refused", "it succeeded");
  }

  if (auto st = c.remove(); st) {
    return law_broken("remove() fails while a task remains", "it succeeded");
  } else if (st.error().code != std::errc::device_or_resource_busy) {
    return law_broken("remove() with a task left fails with EBUSY", st.error().message());
  }
  if (::kill(child, 0) != 0) {
    return law_broken("remove() kills nothing", "the child is gone");
  }
  if (auto p = c.pids(); !p || !detail::contains(*p, child)) {
    return law_broken("a failed remove() leaves the cgroup intact", why(p));
  }

  kill_and_reap(child);
  // The kernel drops an exited task from cgroup.procs as it exits; allow it a moment.
  bool empty = false;
  for (int i = 0; i < 100 && !empty; ++i) {
    auto p = c.pids();
    empty = p && p->empty();
    if (!empty) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  if (!empty) {
    return law_broken("pids() is empty once the task is reaped", why(c.pids()));
  }
  if (auto st = c.remove(); !st) {
    return law_broken("remove() succeeds once no task remains", st.error().message());
  }
  if (auto st = c.remove(); !st) {
    return law_broken("remove() is idempotent", st.error().message());
  }
  if (auto st = other.remove(); !st) {
    return law_broken("remove() of a cgroup another instance removed succeeds",
                      st.error().message());
  }
  {
    C again = make();
    if (auto st = again.open({path, std::nullopt}); st) {
      return law_broken("open() of a removed cgroup fails", "it succeeded");
    }
  }
  return {};
}

}  // namespace katana::inline v0::testing
