// OCI hooks run by the runtime itself (prestart, createRuntime, poststart, poststop): each gets
// the state document on stdin, its args and env, and is killed after its timeout. The hooks
// run inside the container (createContainer, startContainer) go through init.hpp's run_hook
// too; this header prepares their input and turns their outcome into errors.
#pragma once

#include <cerrno>
#include <string>
#include <string_view>
#include <sys/mman.h>
#include <sys/wait.h>
#include <vector>

#include <katana/config.hpp>
#include <katana/container/init.hpp>
#include <katana/container/init_config.hpp>
#include <katana/core/error.hpp>
#include <katana/core/str_cat.hpp>
#include <katana/core/unique_fd.hpp>
#include <katana/oci/spec.hpp>
#include <katana/oci/state.hpp>
#include <katana/oci/state_json.hpp>

namespace katana::inline v0::container {

/// A sealed-size memfd holding `text` (what hooks read as stdin).
inline result<unique_fd> memfd_with(std::string_view name, std::string_view text) {
  const std::string n(name);
  unique_fd fd(::memfd_create(n.c_str(), MFD_CLOEXEC));
  if (!fd) {
    return fail_errno("memfd_create " + n);
  }
  std::size_t done = 0;
  while (done < text.size()) {
    const ssize_t w = ::write(fd.get(), text.data() + done, text.size() - done);
    if (w < 0) {
      if (errno == EINTR) {
        continue;
      }
      return fail_errno("write " + n);
    }
    done += static_cast<std::size_t>(w);
  }
  return fd;
}

/// The state document hooks receive.
inline result<unique_fd> hook_state_fd(const oci::state& s) {
  return memfd_with("katana-hook-state", oci::to_json(s));
}

/// The error of one hook outcome; `kind` names the hook list ("prestart").
inline status hook_status(std::string_view kind, const oci::hook& h, const hook_outcome& r) {
  if (r.err == ETIMEDOUT) {
    return fail(errc::timeout,
                str_cat(kind, " hook ", h.path, " timed out after ", h.timeout.value_or(0), "s"));
  }
  if (r.err != 0) {
    return fail_errno(str_cat(kind, " hook ", h.path), r.err);
  }
  if (WIFSIGNALED(r.wait_status)) {
    return fail(errc::internal,
                str_cat(kind, " hook ", h.path, " killed by signal ", WTERMSIG(r.wait_status)));
  }
  if (!r.ok()) {
    return fail(errc::internal, str_cat(kind, " hook ", h.path, " exited with status ",
                                        WEXITSTATUS(r.wait_status)));
  }
  return {};
}

/// Runs `hooks` in order, each with `state` on stdin; stops at the first failure.
inline status run_hooks(std::string_view kind,
                        const std::vector<oci::hook>& hooks,
                        const oci::state& state) {
  if (hooks.empty()) {
    return {};
  }
  unique_fd in = KATANA_TRY(hook_state_fd(state));
  for (const oci::hook& h : hooks) {
    string_arena arena;
    std::vector<std::string> args = h.args;
    if (args.empty()) {
      args.push_back(h.path);
    }
    const hook_step step{arena.add(h.path), arena.add_array(args), arena.add_array(h.env),
                         h.timeout.value_or(0)};
    KATANA_TRY(hook_status(kind, h, run_hook(step, in.get())));
  }
  return {};
}

/// Like run_hooks, but runs every hook and only logs failures' text into the result (runc
/// runs all poststop hooks and warns); returns the first error.
inline status run_all_hooks(std::string_view kind,
                            const std::vector<oci::hook>& hooks,
                            const oci::state& state) {
  status first;
  for (const oci::hook& h : hooks) {
    auto r = run_hooks(kind, {h}, state);
    if (!r && first) {
      first = std::move(r);
    }
  }
  return first;
}

}  // namespace katana::inline v0::container
