// linux.resources.unified: cgroup v2 file name -> value, written verbatim after everything
// else (so it wins). Keys must be plain file names: '/', "..", "." and NUL are refused, and so
// are the membership files (cgroup.procs, cgroup.threads, ...) that would move tasks around.
#pragma once

#include <string>
#include <string_view>

#include <katana/cgroup/controllers/controller.hpp>

namespace katana::inline v0::cgroup::controllers {

struct unified {
  static constexpr std::string_view name = "unified";
  static constexpr std::string_view v2_name = "";
  /// The linux.resources field it serves, for error messages.
  static constexpr std::string_view field = "unified";

  static bool needed(const oci::linux_resources& r) { return !r.unified.empty(); }

  static status validate_key(std::string_view key) {
    const auto bad = [&](std::string_view why) {
      return fail(errc::invalid_spec, str_cat("linux.resources.unified key \"", key, "\" ", why));
    };
    if (key.empty() || key == "." || key == "..") {
      return bad("is not a file name");
    }
    if (key.find('/') != std::string_view::npos || key.find('\0') != std::string_view::npos) {
      return bad("must be a file name in the container's cgroup (no '/')");
    }
    if (key.find("..") != std::string_view::npos) {
      return bad("must not contain \"..\"");
    }
    if (key.find('.') == std::string_view::npos) {
      return bad("is not a cgroup interface file (<controller>.<name>)");
    }
    for (const std::string_view f : {"cgroup.procs", "cgroup.threads", "cgroup.subtree_control",
                                     "cgroup.kill", "cgroup.freeze", "cgroup.type"}) {
      if (key == f) {
        return bad("is managed by the runtime, not by resources");
      }
    }
    return {};
  }

  static status validate(const oci::linux_resources& r) {
    for (const auto& [k, v] : r.unified) {
      KATANA_TRY(validate_key(k));
    }
    return {};
  }

  static status apply_v1(const dir&, const oci::linux_resources& r, const logging::logger&) {
    if (r.unified.empty()) {
      return {};
    }
    return fail(errc::unsupported,
                "linux.resources.unified needs cgroup v2, and this host's cgroups are v1");
  }

  static status apply_v2(const dir& d, const oci::linux_resources& r, const logging::logger&) {
    for (const auto& [k, v] : r.unified) {
      KATANA_TRY(validate_key(k));
      auto st = d.write(k, v);
      if (!st && st.error().code == std::errc::no_such_file_or_directory) {
        const std::string ctl = k.substr(0, k.find('.'));
        return fail(errc::unsupported,
                    str_cat("linux.resources.unified: ", k, ": no such file (is the ", ctl,
                            " controller enabled in ", d.path(), "?)"));
      }
      KATANA_TRY(std::move(st), "linux.resources.unified");
    }
    return {};
  }
};

}  // namespace katana::inline v0::cgroup::controllers
