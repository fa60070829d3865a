// cgroup::v2: the unified hierarchy. Controllers are enabled top-down in the parents'
// cgroup.subtree_control (all that are available, like runc, or only those the resources need);
// devices are an eBPF program (bpf_devices.hpp); freezing is cgroup.freeze. The root is
// /sys/fs/cgroup on unified hosts and can be any cgroup2 mount (hybrid hosts' .../unified).
#pragma once

#include <algorithm>
#include <set>
#include <string>
#include <string_view>
#include <sys/types.h>
#include <vector>

#include <katana/cgroup/concepts.hpp>
#include <katana/cgroup/controllers/all.hpp>
#include <katana/cgroup/fs.hpp>
#include <katana/cgroup/mountinfo.hpp>
#include <katana/cgroup/path.hpp>
#include <katana/config.hpp>
#include <katana/core/error.hpp>
#include <katana/core/log.hpp>
#include <katana/core/try.hpp>

namespace katana::inline v0::cgroup {

/// Which controllers v2 enables in the parents' cgroup.subtree_control.
enum class enable_policy {
  all_available,  // every controller the parent offers, at create() (runc, crun)
  needed,         // only those the resources need, when they are applied
};

struct v2_options {
  std::string root = "/sys/fs/cgroup";
  enable_policy enable = enable_policy::all_available;
  logging::logger log = detail::null_logger();
};

/// The controllers whose usage v2 stats() reads (cpu.stat exists without the cpu controller).
using v2_stats_controllers = controller_list<controllers::cpu,
                                             controllers::memory,
                                             controllers::pids,
                                             controllers::blkio,
                                             controllers::hugetlb>;

class v2 {
 public:
  static constexpr std::string_view name = "cgroupfs_v2";
  using options = v2_options;

  explicit v2(options o = {}) : opts_(std::move(o)) {}

  /// Probes the host; errc::unsupported unless it is unified.
  static result<v2> make(options o = {}) {
    const host_layout layout = KATANA_TRY(probe_host(o.root));
    if (layout.mode != hierarchy_mode::unified) {
      return fail(errc::unsupported, str_cat("cgroup v2: ", o.root, " is not a unified hierarchy (",
                                             to_string(layout.mode), ")"));
    }
    o.root = layout.unified;
    return v2(std::move(o));
  }

  status create(const config& cfg) {
    const std::string p = KATANA_TRY(checked_path(cfg.path));
    std::set<std::string, std::less<>> want;
    if (cfg.resources) {
      KATANA_TRY(validate_resources(*cfg.resources), str_cat("cgroup ", p));
      want = needed_controllers(*cfg.resources);
    }
    KATANA_TRY(make_path(opts_.root, p, [&](const dir& parent, const dir&, bool) {
      return enable_in(parent, want);
    }));
    path_ = p;
    if (cfg.resources) {
      return apply(*cfg.resources);
    }
    return {};
  }

  status open(const config& cfg) {
    const std::string p = KATANA_TRY(checked_path(cfg.path));
    KATANA_TRY(dir::open(opts_.root + "/" + p));
    path_ = p;
    return {};
  }

  status add_task(pid_t pid) {
    const dir d = KATANA_TRY(leaf());
    return d.write("cgroup.procs", str_cat(pid)).transform_error(in_dir(d));
  }

  status apply(const oci::linux_resources& r) {
    KATANA_TRY(require_path());
    KATANA_TRY(validate_resources(r), str_cat("cgroup ", path_));
    return resource_controllers::for_each(
        [&](auto* k) { return apply_controller<std::remove_pointer_t<decltype(k)>>(r); });
  }

  /// One controller's part: enables it down the path when needed, then writes it.
  template <controller K>
  status apply_controller(const oci::linux_resources& r) {
    if (!K::needed(r)) {
      return {};
    }
    if constexpr (!K::v2_name.empty()) {
      KATANA_TRY(ensure_controller<K>());
    }
    const dir d = KATANA_TRY(leaf());
    return K::apply_v2(d, r, opts_.log).transform_error(in_dir(d));
  }

  status freeze(freezer_state s) {
    const dir d = KATANA_TRY(leaf());
    if (!d.has("cgroup.freeze")) {
      return fail(errc::unsupported, "freeze: cgroup.freeze needs Linux 5.2");
    }
    return controllers::freezer::freeze_v2(d, s).transform_error(in_dir(d));
  }

  result<freezer_state> state() const {
    const dir d = KATANA_TRY(leaf());
    if (!d.has("cgroup.freeze")) {
      return freezer_state::thawed;
    }
    return controllers::freezer::state_v2(d).transform_error(in_dir(d));
  }

  result<std::vector<pid_t>> pids() const {
    const dir d = KATANA_TRY(leaf());
    return d.procs().transform_error(in_dir(d));
  }

  /// rmdir (sub-cgroups first) with runk's retries; never kills anything.
  status remove() {
    KATANA_TRY(require_path());
    auto st = with_retries([&] { return remove_path(opts_.root, path_); });
    if (st) {
      return st;
    }
    if (auto left = pids(); left && !left->empty()) {
      return tasks_remain(path_, *left);
    }
    return unexpected<error>(std::move(st).error().wrap("failed to remove cgroups paths"));
  }

  [[nodiscard]] std::string_view path() const noexcept { return path_; }
  [[nodiscard]] const std::string& root() const noexcept { return opts_.root; }

  result<cgroup::stats> stats() const {
    cgroup::stats s;
    KATANA_TRY(v2_stats_controllers::for_each(
        [&](auto* k) { return stats_controller<std::remove_pointer_t<decltype(k)>>(s); }));
    return s;
  }

  template <class K>
  status stats_controller(cgroup::stats& s) const {
    const dir d = KATANA_TRY(leaf());
    return K::stats_v2(d, s).transform_error(in_dir(d));
  }

  /// The controllers available to this cgroup (its cgroup.controllers), or to the root before
  /// create().
  result<std::vector<std::string>> controllers() const {
    const dir d = KATANA_TRY(path_.empty() ? dir::open(opts_.root) : leaf());
    const std::string text = KATANA_TRY(d.read("cgroup.controllers"), d.path());
    return words(text);
  }

  /// The v2 controllers these resources need enabled.
  static std::set<std::string, std::less<>> needed_controllers(const oci::linux_resources& r) {
    std::set<std::string, std::less<>> out;
    (void)resource_controllers::for_each([&](auto* k) -> status {
      using K = std::remove_pointer_t<decltype(k)>;
      if (!K::v2_name.empty() && K::needed(r)) {
        out.emplace(K::v2_name);
      }
      return {};
    });
    return out;
  }

 private:
  static std::vector<std::string> words(std::string_view text) {
    std::vector<std::string> out;
    text = detail::trim(text);
    while (!text.empty()) {
      const auto [w, rest] = detail::split_pair(text);
      if (!w.empty()) {
        out.emplace_back(w);
      }
      text = rest;
    }
    return out;
  }

  // Enables controllers in `parent` for its children: everything offered (all_available),
  // or the wanted ones. Under all_available a refusal is tolerated (runc: "some controllers
  // might not be enabled when rootless or containerized"); wanted ones must succeed.
  status enable_in(const dir& parent, const std::set<std::string, std::less<>>& wanted) const {
    const auto offered = words(KATANA_TRY(parent.read("cgroup.controllers"), parent.path()));
    const auto enabled = words(KATANA_TRY(parent.read("cgroup.subtree_control"), parent.path()));
    const auto has = [](const std::vector<std::string>& v, std::string_view c) {
      return std::find(v.begin(), v.end(), c) != v.end();
    };
    if (opts_.enable == enable_policy::all_available) {
      std::string all;
      for (const auto& c : offered) {
        if (!has(enabled, c)) {
          all += str_cat(all.empty() ? "" : " ", "+", c);
        }
      }
      if (!all.empty() && !parent.write("cgroup.subtree_control", all)) {
        for (const auto& c : offered) {
          if (!has(enabled, c)) {
            if (auto st = parent.write("cgroup.subtree_control", "+" + c); !st) {
              opts_.log.debug("cgroup v2: controller not enabled",
                              {{"controller", c}, {"dir", parent.path()}, {"error", st.error()}});
            }
          }
        }
      }
    }
    for (const auto& c : wanted) {
      if (has(enabled, c)) {
        continue;
      }
      if (!has(offered, c)) {
        return fail(errc::unsupported,
                    str_cat("the ", c, " cgroup controller is not available in ", parent.path(),
                            " (cgroup.controllers: ", str_join(offered), ")"));
      }
      KATANA_TRY(parent.write("cgroup.subtree_control", "+" + c).transform_error(in_dir(parent)));
    }
    return {};
  }

  static std::string str_join(const std::vector<std::string>& v) {
    std::string out;
    for (const auto& s : v) {
      out += str_cat(out.empty() ? "" : " ", s);
    }
    return out.empty() ? std::string("none") : out;
  }

  template <class K>
  status ensure_controller() {
    const std::set<std::string, std::less<>> want{std::string(K::v2_name)};
    auto st = make_path(
        opts_.root, path_,
        [&](const dir& parent, const dir&, bool) { return enable_in(parent, want); },
        /*create=*/false);
    if (!st) {
      return unexpected<error>(std::move(st).error().wrap(
          str_cat("linux.resources.", K::field, " needs the ", K::v2_name, " controller")));
    }
    return {};
  }

  result<dir> leaf() const {
    KATANA_TRY(require_path());
    return dir::open(opts_.root + "/" + path_);
  }

  static result<std::string> checked_path(std::string_view p) {
    std::string clean = KATANA_TRY(clean_path(p));
    if (clean.empty()) {
      return fail(errc::invalid_argument,
                  str_cat("cgroup path \"", p, "\" names the hierarchy root"));
    }
    return clean;
  }

  [[nodiscard]] status require_path() const {
    if (path_.empty()) {
      return fail(errc::invalid_argument, "cgroup: create() or open() has not been called");
    }
    return {};
  }

  options opts_;
  std::string path_;
};

static_assert(manager<v2> && has_stats<v2>);

}  // namespace katana::inline v0::cgroup
