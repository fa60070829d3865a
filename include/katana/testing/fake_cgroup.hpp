// testing::fake_cgroup: an in-memory cgroup::manager (and has_stats) for tests of code that
// drives cgroups (the container engine, katana-runk) without root. It records every call,
// keeps a pid list per cgroup like the kernel (a task is in one cgroup; dead tasks drop out),
// validates resources exactly like the real policies, refuses remove() while tasks remain
// (EBUSY), and can be told to fail the next call of an operation. Instances made from one
// fake_cgroup_tree share their cgroups, so open() sees what another instance created.
// fake_systemd_cgroup adds systemd_delegated.
#pragma once

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <sys/types.h>
#include <vector>

#include <katana/cgroup/concepts.hpp>
#include <katana/cgroup/controllers/all.hpp>
#include <katana/cgroup/fs.hpp>
#include <katana/cgroup/path.hpp>
#include <katana/config.hpp>
#include <katana/core/error.hpp>
#include <katana/core/str_cat.hpp>
#include <katana/core/try.hpp>

namespace katana::inline v0::testing {

/// The cgroups fakes share.
struct fake_cgroup_tree {
  struct node {
    std::vector<pid_t> tasks;
    cgroup::freezer_state freezer = cgroup::freezer_state::thawed;
    std::optional<oci::linux_resources> resources;  // the last applied
  };
  std::map<std::string, node, std::less<>> nodes;

  /// Whether `pid` is a live task (not gone, not a zombie), as the kernel would list it.
  static bool alive(pid_t pid) {
    std::ifstream in(str_cat("/proc/", pid, "/stat"));
    std::string line;
    if (!std::getline(in, line)) {
      return false;
    }
    const auto close = line.rfind(')');
    return close != std::string::npos && close + 2 < line.size() && line[close + 2] != 'Z' &&
           line[close + 2] != 'X';
  }

  void prune() {
    for (auto& [path, n] : nodes) {
      std::erase_if(n.tasks, [](pid_t p) { return !alive(p); });
    }
  }
};

class fake_cgroup {
 public:
  static constexpr std::string_view name = "fake";

  explicit fake_cgroup(
      std::shared_ptr<fake_cgroup_tree> tree = std::make_shared<fake_cgroup_tree>())
      : tree_(std::move(tree)) {}

  /// Every call in order: "create a/b", "open a/b", "add_task 42", "apply", "freeze frozen",
  /// "state", "pids", "remove", "stats" (const queries record too, hence mutable).
  mutable std::vector<std::string> calls;
  /// The next call of an operation ("create", "add_task", ...) fails with this error.
  std::map<std::string, error, std::less<>> fail_next;

  status create(const cgroup::config& cfg) {
    KATANA_TRY(enter("create", cfg.path));
    const std::string p = KATANA_TRY(checked(cfg.path));
    if (cfg.resources) {
      KATANA_TRY(cgroup::validate_resources(*cfg.resources), "cgroup " + p);
    }
    auto& n = tree_->nodes[p];
    if (cfg.resources) {
      n.resources = cfg.resources;
    }
    path_ = p;
    return {};
  }

  status open(const cgroup::config& cfg) {
    KATANA_TRY(enter("open", cfg.path));
    const std::string p = KATANA_TRY(checked(cfg.path));
    if (!tree_->nodes.contains(p)) {
      return fail_errno("open cgroup " + p, ENOENT);
    }
    path_ = p;
    return {};
  }

  status add_task(pid_t pid) {
    KATANA_TRY(enter("add_task", str_cat(pid)));
    auto* n = KATANA_TRY(current());
    if (!fake_cgroup_tree::alive(pid)) {
      return fail_errno("cgroup.procs", ESRCH);
    }
    for (auto& [p, other] : tree_->nodes) {
      std::erase(other.tasks, pid);  // a task is in exactly one cgroup
    }
    n->tasks.push_back(pid);
    return {};
  }

  status apply(const oci::linux_resources& r) {
    KATANA_TRY(enter("apply", ""));
    auto* n = KATANA_TRY(current());
    KATANA_TRY(cgroup::validate_resources(r), "cgroup " + path_);
    n->resources = r;
    return {};
  }

  status freeze(cgroup::freezer_state s) {
    KATANA_TRY(enter("freeze", cgroup::to_string(s)));
    auto* n = KATANA_TRY(current());
    if (s == cgroup::freezer_state::freezing) {
      return fail(errc::invalid_argument, "freeze: request frozen or thawed, not freezing");
    }
    n->freezer = s;
    return {};
  }

  result<cgroup::freezer_state> state() const {
    record("state", "");
    const auto* n = KATANA_TRY(current());
    return n->freezer;
  }

  result<std::vector<pid_t>> pids() const {
    record("pids", "");
    tree_->prune();
    const auto* n = KATANA_TRY(current());
    return n->tasks;
  }

  status remove() {
    KATANA_TRY(enter("remove", ""));
    const auto it = tree_->nodes.find(path_);
    if (it == tree_->nodes.end()) {
      return {};
    }
    tree_->prune();
    if (!it->second.tasks.empty()) {
      return cgroup::tasks_remain(path_, it->second.tasks);
    }
    // Sub-cgroups go with it, as rmdir of the tree does.
    std::erase_if(tree_->nodes, [&](const auto& kv) {
      return kv.first == path_ || kv.first.starts_with(path_ + "/");
    });
    return {};
  }

  [[nodiscard]] std::string_view path() const noexcept { return path_; }

  result<cgroup::stats> stats() const {
    record("stats", "");
    tree_->prune();
    const auto* n = KATANA_TRY(current());
    cgroup::stats s;
    s.pids.current = n->tasks.size();
    if (n->resources && n->resources->pids && n->resources->pids->limit > 0) {
      s.pids.limit = static_cast<std::uint64_t>(n->resources->pids->limit);
    }
    if (n->resources && n->resources->memory && n->resources->memory->limit.value_or(0) > 0) {
      s.memory.limit = static_cast<std::uint64_t>(*n->resources->memory->limit);
    }
    return s;
  }

  /// The state the fakes share (for assertions).
  [[nodiscard]] const fake_cgroup_tree& tree() const noexcept { return *tree_; }
  /// The resources last applied to this cgroup.
  [[nodiscard]] std::optional<oci::linux_resources> applied() const {
    const auto it = tree_->nodes.find(path_);
    return it == tree_->nodes.end() ? std::nullopt : it->second.resources;
  }

 private:
  status enter(std::string_view op, std::string_view arg) {
    record(op, arg);
    if (auto it = fail_next.find(op); it != fail_next.end()) {
      error e = std::move(it->second);
      fail_next.erase(it);
      return unexpected<error>(std::move(e));
    }
    return {};
  }
  void record(std::string_view op, std::string_view arg) const {
    calls.push_back(arg.empty() ? std::string(op) : str_cat(op, " ", arg));
  }

  static result<std::string> checked(std::string_view p) {
    std::string clean = KATANA_TRY(cgroup::clean_path(p));
    if (clean.empty()) {
      return fail(errc::invalid_argument,
                  str_cat("cgroup path \"", p, "\" names the hierarchy root"));
    }
    return clean;
  }

  result<fake_cgroup_tree::node*> current() const {
    if (path_.empty()) {
      return fail(errc::invalid_argument, "cgroup: create() or open() has not been called");
    }
    const auto it = tree_->nodes.find(path_);
    if (it == tree_->nodes.end()) {
      return fail_errno("open cgroup " + path_, ENOENT);
    }
    return &it->second;
  }

  std::shared_ptr<fake_cgroup_tree> tree_;
  std::string path_;
};

static_assert(cgroup::manager<fake_cgroup> && cgroup::has_stats<fake_cgroup>);
static_assert(!cgroup::systemd_delegated<fake_cgroup>);

/// A fake whose cgroup is a systemd unit: "slice:prefix:name" paths only.
class fake_systemd_cgroup : public fake_cgroup {
 public:
  static constexpr std::string_view name = "fake_systemd";
  using fake_cgroup::fake_cgroup;

  status create(const cgroup::config& cfg) {
    KATANA_TRY(bind(cfg));
    return fake_cgroup::create({unit_path_, cfg.resources});
  }
  status open(const cgroup::config& cfg) {
    KATANA_TRY(bind(cfg));
    return fake_cgroup::open({unit_path_, std::nullopt});
  }
  [[nodiscard]] std::string_view unit_name() const noexcept { return unit_; }
  [[nodiscard]] std::string_view slice() const noexcept { return slice_; }

 private:
  status bind(const cgroup::config& cfg) {
    const auto p = KATANA_TRY(cgroup::parse_systemd_path(cfg.path));
    unit_ = cgroup::unit_name(p);
    slice_ = p.slice.empty() ? "system.slice" : p.slice;
    unit_path_ = KATANA_TRY(cgroup::systemd_to_cgroupfs(cfg.path));
    return {};
  }
  std::string unit_;
  std::string slice_;
  std::string unit_path_;
};

static_assert(cgroup::systemd_delegated<fake_systemd_cgroup>);

}  // namespace katana::inline v0::testing
