// The container engine's high-level API, used by the guest agent and katana-runk:
//   create (init blocked on <state dir>/exec.fifo, state.json written) -> start (FIFO opened,
//   poststart hooks) -> wait / kill -> destroy (poststop hooks, state dir removed);
//   run = create + start without the FIFO; exec = a new process in a running container's
//   namespaces (runc exec).
// The cgroup manager plugs in through create_options::join_cgroups ("place this pid").
#pragma once

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <fcntl.h>
#include <filesystem>
#include <functional>
#include <poll.h>
#include <string>
#include <string_view>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <utility>
#include <vector>

#include <katana/config.hpp>
#include <katana/container/console.hpp>
#include <katana/container/hooks.hpp>
#include <katana/container/init_config.hpp>
#include <katana/container/launch.hpp>
#include <katana/container/state.hpp>
#include <katana/container/state_json.hpp>
#include <katana/container/syscalls.hpp>
#include <katana/core/error.hpp>
#include <katana/core/safe_path.hpp>
#include <katana/core/scope_exit.hpp>
#include <katana/core/str_cat.hpp>
#include <katana/core/try.hpp>
#include <katana/core/unique_fd.hpp>
#include <katana/oci/spec.hpp>
#include <katana/oci/validate.hpp>

namespace katana::inline v0::container {

struct create_options {
  std::string id;
  std::filesystem::path bundle;
  std::filesystem::path state_dir;       // <root>/<id>: created (0700), must not hold a state
  std::filesystem::path console_socket;  // required when process.terminal
  std::filesystem::path pid_file;        // decimal pid, no newline
  int stdio[3] = {-1, -1, -1};           // the process's stdio (-1: inherit the caller's)
  /// "Place this pid in the container's cgroups" (cgroup::manager::add_task plugs in here).
  std::function<status(int pid)> join_cgroups;
  /// Writes state.json for later processes (runk); a caller that keeps the container in
  /// memory (the agent) skips it.
  bool save_state = true;
};

struct exec_options {
  std::filesystem::path console_socket;
  std::filesystem::path pid_file;
  int stdio[3] = {-1, -1, -1};
  std::function<status(int pid)> join_cgroups;
};

/// A JSON string literal of `s`.
inline std::string json_quote(std::string_view s) {
  std::string out = "\"";
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += ch;
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += ch;
    }
  }
  return out + "\"";
}

/// A runtime started with stdin, stdout or stderr closed would give those numbers to what it
/// makes for the init (sync socket, FIFO, memfds), and a container without stdio of its own
/// would get them as its stdio: /dev/null fills them first, as a daemon does.
inline status fill_std_fds() {
  for (int fd = 0; fd < 3; ++fd) {
    if (::fcntl(fd, F_GETFD) >= 0 || errno != EBADF) {
      continue;
    }
    const int null = ::open("/dev/null", O_RDWR);  // stdio: inherited on purpose
    if (null < 0) {
      return fail_errno(str_cat("open /dev/null for the closed fd ", fd));
    }
    if (null != fd) {  // the lowest free number is fd, unless another thread took it
      const int rc = ::dup2(null, fd);
      ::close(null);
      if (rc < 0) {
        return fail_errno(str_cat("dup2 /dev/null to the closed fd ", fd));
      }
    }
  }
  return {};
}

/// Is /sys/fs/cgroup a cgroup2 mount (unified hierarchy)?
inline bool host_is_cgroup2() {
  struct statfs st {};
  return ::statfs("/sys/fs/cgroup", &st) == 0 && st.f_type == 0x63677270;  // CGROUP2_SUPER_MAGIC
}

/// The host's cgroup hierarchies, for the spec's cgroup mounts (none: nothing is read).
inline result<std::vector<cgroup_hierarchy>> probe_cgroup_hierarchies(const oci::spec& spec) {
  const bool wanted = std::any_of(spec.mounts.begin(), spec.mounts.end(), [](const oci::mount& m) {
    return m.type == "cgroup" || m.type == "cgroup2";
  });
  if (!wanted) {
    return std::vector<cgroup_hierarchy>{};
  }
  const cgroup::dir self = KATANA_TRY(cgroup::dir::open("/proc/self"), "is /proc mounted?");
  const std::string text = KATANA_TRY(self.read("mountinfo"), "/proc/self");
  const auto mounts = KATANA_TRY(cgroup::parse_mountinfo(text), "/proc/self/mountinfo");
  return cgroup_hierarchies_of(mounts);
}

/// The mount point holding `path` (the longest mount point above it in /proc/self/mountinfo).
inline result<std::filesystem::path> mount_point_of(const std::filesystem::path& path) {
  const cgroup::dir self = KATANA_TRY(cgroup::dir::open("/proc/self"), "is /proc mounted?");
  const std::string text = KATANA_TRY(self.read("mountinfo"), "/proc/self");
  const auto mounts = KATANA_TRY(cgroup::parse_mountinfo(text), "/proc/self/mountinfo");
  std::string best = "/";
  const std::string& p = path.native();
  for (const cgroup::mount_entry& m : mounts) {
    const std::string& mp = m.mount_point;
    const bool above = mp == "/" || p == mp || (p.starts_with(mp) && p[mp.size()] == '/');
    if (above && mp.size() > best.size()) {
      best = mp;
    }
  }
  return std::filesystem::path(best);
}

/// Writes the pid file: decimal, no newline (runk, runc).
inline status write_pid_file(const std::filesystem::path& path, int pid) {
  if (path.empty()) {
    return {};
  }
  const auto tmp = path.parent_path() / ("." + path.filename().native() + ".tmp");
  unique_fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!fd) {
    return fail_errno("create pid file " + tmp.native());
  }
  const std::string text = std::to_string(pid);
  if (::write(fd.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size())) {
    return fail_errno("write pid file " + tmp.native());
  }
  fd.reset();
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    return fail_errno("rename pid file to " + path.native());
  }
  return {};
}

/// Creates every mount point not below an earlier mount with scoped_mkdir_all, in the host's
/// view before the init starts: a symlink in the rootfs can only redirect inside it. The init
/// opens them again with RESOLVE_IN_ROOT, so the check is repeated where it matters.
inline status create_mount_points(const rootfs_plan& plan, const std::filesystem::path& rootfs) {
  const scoped_root root = KATANA_TRY(scoped_root::open(rootfs));
  for (std::size_t i = 0; i < plan.mounts.size(); ++i) {
    const planned_mount& m = plan.mounts[i];
    if (covered_by_earlier_mount(plan, i) || m.kind == mount_kind::symlink ||
        m.kind == mount_kind::remount) {
      continue;
    }
    if (!m.file) {
      KATANA_TRY(root.mkdir_all(m.destination));
      continue;
    }
    const std::filesystem::path dest(m.destination);
    const pinned_path dir = KATANA_TRY(root.mkdir_all(dest.parent_path()));
    const std::string name = dest.filename().native();
    const int fd = ::openat(dir.fd(), name.c_str(),
                            O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd >= 0) {
      ::close(fd);
    } else if (errno != EEXIST) {
      return fail_errno("create mount point " + (dir.target() / name).native());
    }
  }
  return {};
}

/// A container this process created or loaded from its state directory.
template <syscalls S = linux_syscalls>
class basic_container {
 public:
  /// Sets up the container and leaves its init blocked before exec (state "created").
  static result<basic_container> create(const oci::spec& spec, const create_options& opt) {
    return make(spec, opt, launch_mode::create);
  }
  /// create + start in one step, without the FIFO.
  static result<basic_container> run(const oci::spec& spec, const create_options& opt) {
    return make(spec, opt, launch_mode::run);
  }
  /// A container created earlier (maybe by another process).
  static result<basic_container> load(const std::filesystem::path& state_dir) {
    basic_container c;
    c.dir_ = state_dir;
    c.state_ = KATANA_TRY(load_container_state(state_dir));
    return c;
  }

  [[nodiscard]] int pid() const noexcept { return state_.pid; }
  [[nodiscard]] const container_state& state() const noexcept { return state_; }
  [[nodiscard]] const std::filesystem::path& state_dir() const noexcept { return dir_; }
  [[nodiscard]] runtime_status status(bool frozen = false) const {
    return current_status(state_, dir_, frozen, process_.pidfd.get());
  }

  /// Releases a created init: opens the exec FIFO, removes it, runs the poststart hooks.
  katana::status start() {
    const runtime_status st = status();
    if (st != runtime_status::created) {
      return fail(errc::invalid_argument,
                  str_cat("cannot start a container in the ", to_string(st), " state"));
    }
    KATANA_TRY(release_fifo());
    KATANA_TRY(await_exec(process_));
    return run_poststart();
  }

  /// Waits for the init to exit (this process must be its parent): its exit code, or 128 +
  /// the signal that killed it.
  result<int> wait() {
    if (exit_code_) {
      return *exit_code_;
    }
    const int st = KATANA_TRY(wait_child(state_.pid));
    exit_code_ = exit_code(st);
    return *exit_code_;
  }

  /// Signals the init. A stopped container cannot be killed (runk's message).
  katana::status kill(int sig) {
    const runtime_status st = status();
    if (st == runtime_status::stopped) {
      return fail(errc::unavailable, str_cat("container not running: container ", state_.id,
                                             " can't be killed because it is stopped"));
    }
    if (::kill(state_.pid, sig) != 0) {
      return fail_errno(str_cat("kill ", state_.pid));
    }
    return {};
  }

  /// Kills what is left, runs the poststop hooks and removes the state directory.
  katana::status destroy() {
    if (status() != runtime_status::stopped) {
      ::kill(state_.pid, SIGKILL);
      if (!exit_code_) {
        int st = 0;
        if (::waitpid(state_.pid, &st, 0) == state_.pid) {
          exit_code_ = exit_code(st);
        } else {
          // Not our child (loaded from state): poll until it is gone.
          for (int i = 0; i < 500 && status() != runtime_status::stopped; ++i) {
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
          }
        }
      }
    }
    katana::status hooks;
    if (state_.config.hooks) {
      hooks = run_all_hooks("poststop", state_.config.hooks->poststop,
                            oci_state(state_, runtime_status::stopped));
    }
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
    if (ec) {
      return fail_errno("remove " + dir_.native(), ec.value());
    }
    return hooks;
  }

  /// A new process in this container's namespaces (runc exec): the same setup minus rootfs.
  result<process_handle> exec(const oci::process& proc, const exec_options& opt = {}) {
    KATANA_TRY(fill_std_fds());
    const runtime_status st = status();
    if (st != runtime_status::created && st != runtime_status::running) {
      return fail(errc::invalid_argument,
                  str_cat("cannot exec in a stopped or paused container, state: ", to_string(st)));
    }
    oci::spec spec = state_.config;
    spec.process = proc;
    unique_fd console;
    if (proc.terminal) {
      if (opt.console_socket.empty()) {
        return fail(errc::invalid_argument,
                    "cannot allocate a pseudo-TTY without setting a console socket");
      }
      console = KATANA_TRY(connect_console_socket(opt.console_socket));
    }
    prepare_options po;
    po.mode = launch_mode::exec;
    po.bundle = state_.bundle;
    po.join_pid = state_.pid;
    po.console_socket = console.get();
    for (int i = 0; i < 3; ++i) {
      po.stdio[i] = opt.stdio[i];
    }
    auto prepared = KATANA_TRY(prepare_init(spec, po), "exec");
    S sys{};
    launch_callbacks cb;
    cb.join_cgroups = opt.join_cgroups;
    process_handle h = KATANA_TRY(launch(*prepared, sys, cb), "exec");
    KATANA_TRY(write_pid_file(opt.pid_file, h.pid));
    return h;
  }

 private:
  static result<basic_container> make(const oci::spec& spec,
                                      const create_options& opt,
                                      launch_mode mode) {
    KATANA_TRY(fill_std_fds());
    KATANA_TRY(oci::validate(spec));
    std::error_code ec;
    const auto bundle = std::filesystem::canonical(opt.bundle, ec);
    if (ec) {
      return fail_errno("invalid bundle path " + opt.bundle.native(), ec.value());
    }
    if (!spec.root) {
      return fail(errc::invalid_spec, "root config was not present in the spec file");
    }
    std::filesystem::path root(spec.root->path);
    if (root.is_relative()) {
      root = bundle / root;
    }
    // On 9p (cache=mmap) a dentry goes with its last reference, so every lookup below the
    // rootfs would walk its parents again. Closed before the init is cloned: it must not see
    // a directory outside its root.
    unique_fd root_pin(::open(root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    const auto rootfs = std::filesystem::canonical(root, ec);
    if (ec) {
      return fail_errno("rootfs " + root.native(), ec.value());
    }
    if (std::filesystem::exists(state_file(opt.state_dir), ec)) {
      return fail(errc::already_exists, str_cat("container ", opt.id, " already exists at path ",
                                                opt.state_dir.native()));
    }
    const bool made_dir = !std::filesystem::exists(opt.state_dir, ec);
    if (made_dir) {
      std::filesystem::create_directories(opt.state_dir, ec);
      if (ec) {
        return fail_errno("create state directory " + opt.state_dir.native(), ec.value());
      }
      ::chmod(opt.state_dir.c_str(), 0700);
    }
    auto remove_dir = scope_exit([&] {
      std::error_code ignore;
      if (made_dir) {
        std::filesystem::remove_all(opt.state_dir, ignore);
      } else {
        std::filesystem::remove(exec_fifo_path(opt.state_dir), ignore);
      }
    });

    basic_container c;
    c.dir_ = opt.state_dir;
    container_state& s = c.state_;
    s.oci_version = spec.oci_version;
    s.id = opt.id;
    s.bundle = bundle.native();
    s.rootfs = rootfs.native();
    s.annotations = spec.annotations;
    s.cgroup_path =
        spec.linux_ && !spec.linux_->cgroups_path.empty() ? spec.linux_->cgroups_path : opt.id;
    s.config = spec;

    unique_fd fifo;
    if (mode == launch_mode::create) {
      const auto path = exec_fifo_path(opt.state_dir);
      if (::mkfifo(path.c_str(), 0622) != 0) {
        return fail_errno("mkfifo " + path.native());
      }
      fifo.reset(::open(path.c_str(), O_PATH | O_CLOEXEC));
      if (!fifo) {
        return fail_errno("open " + path.native());
      }
    }
    unique_fd console;
    if (spec.process && spec.process->terminal) {
      if (opt.console_socket.empty()) {
        return fail(errc::invalid_argument,
                    "cannot allocate a pseudo-TTY without setting a console socket");
      }
      console = KATANA_TRY(connect_console_socket(opt.console_socket));
    }
    unique_fd listener;
    if (spec.linux_ && spec.linux_->seccomp && !spec.linux_->seccomp->listener_path.empty()) {
      listener = KATANA_TRY(connect_console_socket(spec.linux_->seccomp->listener_path),
                            "seccomp listener");
    }
    prepare_options po;
    po.mode = mode;
    po.seccomp_listener = listener.get();
    po.bundle = bundle;
    po.rootfs = rootfs;
    po.exec_fifo = fifo.get();
    po.console_socket = console.get();
    for (int i = 0; i < 3; ++i) {
      po.stdio[i] = opt.stdio[i];
    }
    po.host.cgroup2 = host_is_cgroup2();
    po.host.cgroups = KATANA_TRY(probe_cgroup_hierarchies(spec), "cgroup mount");
    if (spec.linux_ && spec.linux_->rootfs_propagation.find("shared") != std::string::npos) {
      po.rootfs_mount = KATANA_TRY(mount_point_of(rootfs), "linux.rootfsPropagation");
    }
    auto prepared = KATANA_TRY(prepare_init(spec, po));
    KATANA_TRY(create_mount_points(prepared->plan, rootfs));

    const auto hooks = spec.hooks.value_or(oci::hooks{});
    launch_callbacks cb;
    cb.join_cgroups = opt.join_cgroups;
    if (!hooks.prestart.empty() || !hooks.create_runtime.empty()) {
      cb.create_runtime = [&](int pid) -> katana::status {
        s.pid = pid;
        const oci::state st = oci_state(s, runtime_status::creating);
        KATANA_TRY(run_hooks("prestart", hooks.prestart, st));
        return run_hooks("createRuntime", hooks.create_runtime, st);
      };
    }
    // The init reads the states by position, and only for its own hooks or a seccomp listener:
    // without them, no JSON and no memfds.
    const bool init_needs_states =
        !hooks.create_container.empty() || !hooks.start_container.empty() || listener;
    if (init_needs_states) {
      cb.hook_states = [&](int pid) -> result<std::vector<unique_fd>> {
        s.pid = pid;
        std::vector<unique_fd> fds;
        fds.push_back(KATANA_TRY(hook_state_fd(oci_state(s, runtime_status::creating))));
        fds.push_back(KATANA_TRY(hook_state_fd(oci_state(s, runtime_status::created))));
        if (listener) {
          const std::string metadata =
              spec.linux_ ? spec.linux_->seccomp->listener_metadata : std::string{};
          fds.push_back(KATANA_TRY(memfd_with(
              "katana-seccomp-state",
              str_cat("{\"ociVersion\":\"", oci::spec_version,
                      "\",\"fds\":[\"seccompFd\"],\"pid\":", pid,
                      ",\"metadata\":", json_quote(metadata),
                      ",\"state\":", oci::to_json(oci_state(s, runtime_status::creating)), "}"))));
        }
        return fds;
      };
    }
    S sys{};
    root_pin.reset();
    c.process_ = KATANA_TRY(launch(*prepared, sys, cb));
    s.pid = c.process_.pid;
    auto kill_init = scope_exit([&] { detail::kill_and_reap(s.pid); });
    if (opt.save_state) {  // for another process's pid-reuse check; this one has the pidfd
      s.process_start_time = KATANA_TRY(read_proc_stat(s.pid)).start_time;
    }
    s.created = rfc3339_now();
    if (opt.save_state) {
      KATANA_TRY(save_container_state(opt.state_dir, s));
    }
    KATANA_TRY(write_pid_file(opt.pid_file, s.pid));
    if (mode == launch_mode::run) {
      KATANA_TRY(c.run_poststart());
    }
    kill_init.release();
    remove_dir.release();
    return c;
  }

  katana::status release_fifo() {
    const auto path = exec_fifo_path(dir_);
    unique_fd fd(::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
    if (!fd) {
      return fail_errno("open " + path.native());
    }
    // The init's blocking open(O_WRONLY) returns now; it writes one byte and execs.
    for (;;) {
      pollfd p{fd.get(), POLLIN, 0};
      const int r = ::poll(&p, 1, 100);
      if (r < 0 && errno != EINTR) {
        return fail_errno("poll " + path.native());
      }
      if (r > 0 && (p.revents & POLLIN) != 0) {
        char byte = 0;
        if (::read(fd.get(), &byte, 1) == 1) {
          break;
        }
      }
      if (r > 0 && (p.revents & POLLHUP) != 0) {
        return fail(errc::unavailable, "container init closed the exec FIFO without starting");
      }
      if (status() == runtime_status::stopped) {
        return fail(errc::unavailable, "container init exited before start");
      }
    }
    std::filesystem::remove(path);
    return {};
  }

  katana::status run_poststart() {
    if (!state_.config.hooks) {
      return {};
    }
    return run_hooks("poststart", state_.config.hooks->poststart,
                     oci_state(state_, runtime_status::running));
  }

  std::filesystem::path dir_;
  container_state state_;
  process_handle process_;
  std::optional<int> exit_code_;
};

using container = basic_container<linux_syscalls>;

}  // namespace katana::inline v0::container
