// OCI annotations that override configuration values, with Kata's gating rules:
//
//   io.katacontainers.config.hypervisor.<key>  accepted only if <key> matches one of the regular
//                                              expressions in enable_annotations (a search, as
//                                              Go's regexp.FindString: a non-empty match
//                                              anywhere); path-valued keys must also match a
//                                              glob in their valid_*_paths list (fnmatch with
//                                              FNM_PATHNAME, as Go's filepath.Match). An empty
//                                              list refuses everything.
//   io.katacontainers.config.agent.<key>       not gated (Kata does not gate them either)
//   io.katacontainers.config.runtime.<key>
//
// Overrides apply to a copy; the caller adjusts and validates the result as usual.
//
//   auto r = KATANA_TRY(config::apply_annotations(cfg, spec.annotations));
#pragma once

#include <cstdint>
#include <fnmatch.h>
#include <regex>
#include <string>
#include <string_view>
#include <utility>

#include <katana/config/configuration.hpp>
#include <katana/core/error.hpp>
#include <katana/core/str_cat.hpp>
#include <katana/core/try.hpp>

namespace katana::inline v0::config {

inline constexpr std::string_view annotation_prefix = "io.katacontainers.config.";
inline constexpr std::string_view hypervisor_annotation_prefix =
    "io.katacontainers.config.hypervisor.";
inline constexpr std::string_view agent_annotation_prefix = "io.katacontainers.config.agent.";
inline constexpr std::string_view runtime_annotation_prefix = "io.katacontainers.config.runtime.";

/// Kata refuses less guest memory than this through an annotation.
inline constexpr std::uint32_t min_annotation_memory_mib = 256;

struct annotated_configuration {
  configuration config;
  warnings notes;  // annotations under io.katacontainers.config. that were ignored
};

namespace detail {

/// Kata's regexpContains: some pattern has a non-empty match somewhere in `key`.
inline result<bool> annotation_enabled(const std::vector<std::string>& patterns,
                                       std::string_view key) {
  for (const auto& p : patterns) {
    try {
      const std::regex re(p, std::regex::ECMAScript);
      std::match_results<std::string_view::const_iterator> m;
      if (std::regex_search(key.begin(), key.end(), m, re) && m.length(0) > 0) {
        return true;
      }
    } catch (const std::regex_error& e) {
      return fail(errc::invalid_config, str_cat("enable_annotations: ", in_quotes(p),
                                                " is not a regular expression (", e.what(), ")"));
    }
  }
  return false;
}

inline bool path_allowed(const std::vector<std::string>& globs, const std::string& path) {
  for (const auto& g : globs) {
    if (::fnmatch(g.c_str(), path.c_str(), FNM_PATHNAME) == 0) {
      return true;
    }
  }
  return false;
}

inline status apply_hypervisor_annotation(hypervisor_config& h,
                                          std::string_view kind,
                                          std::string_view name,
                                          std::string_view suffix,
                                          std::string_view text,
                                          warnings& notes) {
  const std::string table = str_cat("hypervisor.", kind);
  auto enabled = annotation_enabled(h.enable_annotations, suffix);
  if (!enabled) {
    return unexpected<error>(std::move(enabled).error().wrap(str_cat("annotation ", name)));
  }
  if (!*enabled) {
    return fail(errc::invalid_config,
                str_cat("annotation ", name, " is not enabled: ", table, ".enable_annotations ",
                        h.enable_annotations.empty()
                            ? std::string("is empty")
                            : str_cat("has no pattern matching ", in_quotes(suffix))));
  }
  const auto* f = find_annotation(hypervisor_fields, suffix);
  if (f == nullptr || (f->kinds & hypervisor_kind_mask(kind)) == 0) {
    notes.push_back(str_cat("annotation ", name, ": not a ", kind, " setting; ignored"));
    return {};
  }
  if (f->valid_paths != nullptr) {
    const std::string path(text);
    if (!path_allowed(h.*(f->valid_paths), path)) {
      return fail(errc::invalid_config,
                  str_cat("annotation ", name, ": ", in_quotes(path), " is not allowed by ", table,
                          ".", f->valid_paths_key,
                          (h.*(f->valid_paths)).empty() ? " (empty: every path is refused)" : ""));
    }
  }
  KATANA_TRY(assign_text(h, *f, text), str_cat("annotation ", name));
  if (suffix == "default_memory" && h.default_memory < min_annotation_memory_mib) {
    return fail(errc::invalid_config,
                str_cat("annotation ", name, ": ", h.default_memory,
                        " MiB is less than the minimum of ", min_annotation_memory_mib, " MiB"));
  }
  return {};
}

template <class Section, std::size_t N>
status apply_plain_annotation(Section& s,
                              const field<Section> (&table)[N],
                              std::string_view name,
                              std::string_view suffix,
                              std::string_view text,
                              warnings& notes) {
  const auto* f = find_annotation(table, suffix);
  if (f == nullptr) {
    notes.push_back(str_cat("annotation ", name, " is not supported; ignored"));
    return {};
  }
  KATANA_TRY(assign_text(s, *f, text), str_cat("annotation ", name));
  return {};
}

}  // namespace detail

/// Applies every io.katacontainers.config.* annotation of `annotations` (any range of
/// (key, value) pairs, e.g. oci::spec::annotations) to a copy of `base`. Other annotations are
/// not looked at. The first refused or malformed annotation is the error:
///   "annotation io.katacontainers.config.hypervisor.path is not enabled:
///    hypervisor.qemu.enable_annotations has no pattern matching \"path\""
template <class Annotations>
result<annotated_configuration> apply_annotations(const configuration& base,
                                                  const Annotations& annotations) {
  annotated_configuration out{base, {}};
  for (const auto& [key, text_value] : annotations) {
    const std::string_view name(key);
    const std::string_view text(text_value);
    if (name.starts_with(hypervisor_annotation_prefix)) {
      const auto kind = base.selected_hypervisor();
      if (!kind) {
        return unexpected<error>(kind.error().wrap(str_cat("annotation ", name)));
      }
      KATANA_TRY(detail::apply_hypervisor_annotation(
          out.config.hypervisors.find(*kind)->second, *kind, name,
          name.substr(hypervisor_annotation_prefix.size()), text, out.notes));
    } else if (name.starts_with(agent_annotation_prefix)) {
      KATANA_TRY(detail::apply_plain_annotation(out.config.agent, agent_fields, name,
                                                name.substr(agent_annotation_prefix.size()), text,
                                                out.notes));
    } else if (name.starts_with(runtime_annotation_prefix)) {
      KATANA_TRY(detail::apply_plain_annotation(out.config.runtime, runtime_fields, name,
                                                name.substr(runtime_annotation_prefix.size()), text,
                                                out.notes));
    } else if (name.starts_with(annotation_prefix)) {
      out.notes.push_back(str_cat("annotation ", name, " is not supported; ignored"));
    }
  }
  return out;
}

}  // namespace katana::inline v0::config
