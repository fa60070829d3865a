// cgroup::controller (youki style): one struct per controller with static functions that check
// and write one part of oci::linux_resources into an open cgroup directory, in the v1 and v2
// spellings. Managers decide which directory (and whether the controller exists at all).
#pragma once

#include <concepts>
#include <optional>
#include <string>
#include <string_view>

#include <katana/cgroup/fs.hpp>
#include <katana/cgroup/stats.hpp>
#include <katana/config.hpp>
#include <katana/core/error.hpp>
#include <katana/core/log.hpp>
#include <katana/core/str_cat.hpp>
#include <katana/core/try.hpp>
#include <katana/oci/spec.hpp>

namespace katana::inline v0::cgroup {

// clang-format off
/// K::name is the v1 controller (its hierarchy); K::v2_name the v2 controller that must be
/// enabled for it ("" when none is: devices use eBPF, freezing is core). needed() says whether
/// the resources touch it, validate() checks them without I/O (errc::invalid_spec naming the
/// field), apply_v1/apply_v2 write them.
template <class K>
concept controller =
    requires(const dir& d, const oci::linux_resources& r, const logging::logger& log) {
      { K::name } -> std::convertible_to<std::string_view>;
      { K::v2_name } -> std::convertible_to<std::string_view>;
      { K::field } -> std::convertible_to<std::string_view>;
      { K::needed(r) } -> std::same_as<bool>;
      { K::validate(r) } -> std::same_as<status>;
      { K::apply_v1(d, r, log) } -> std::same_as<status>;
      { K::apply_v2(d, r, log) } -> std::same_as<status>;
    };

/// Controllers that also report usage.
template <class K>
concept stats_controller = controller<K> && requires(const dir& d, cgroup::stats& s) {
  { K::stats_v1(d, s) } -> std::same_as<status>;
  { K::stats_v2(d, s) } -> std::same_as<status>;
};
// clang-format on

namespace controllers::detail {

/// errc::invalid_spec: "linux.resources.<field> (<value>) <why>".
template <class V>
unexpected<error> invalid(std::string_view field, const V& value, std::string_view why) {
  return fail(errc::invalid_spec, str_cat("linux.resources.", field, " (", value, ") ", why));
}

/// -1 (unlimited) or at least `min`; nullopt passes.
template <class T>
status limit_at_least(std::string_view field, const std::optional<T>& v, std::int64_t min = 0) {
  if (v && *v != -1 && static_cast<std::int64_t>(*v) < min) {
    return invalid(field, *v, str_cat("must be -1 (unlimited) or at least ", min));
  }
  return {};
}

/// Writes `a` then `b`; when the kernel refuses `a` with EINVAL (a relation between the two
/// values, e.g. quota/period or the v1 memory/memsw order), writes `b` first, then `a`.
inline status write_pair(const dir& d,
                         std::string_view file_a,
                         std::string_view value_a,
                         std::string_view file_b,
                         std::string_view value_b) {
  auto first = d.write(file_a, value_a);
  if (!first) {
    if (first.error().code != std::errc::invalid_argument) {
      return first;
    }
    KATANA_TRY(d.write(file_b, value_b));
    return d.write(file_a, value_a);
  }
  return d.write(file_b, value_b);
}

/// A missing interface file for a value that was asked for: "<file>: not available on this
/// host (<why>)", errc::unsupported.
inline unexpected<error> missing_file(std::string_view file, std::string_view why) {
  return fail(errc::unsupported, str_cat(file, ": not available on this host (", why, ")"));
}

/// A read that tolerates a missing file (stats of a controller the host lacks).
inline result<std::optional<std::string>> read_optional(const dir& d, std::string_view file) {
  auto r = d.read(file);
  if (!r) {
    if (r.error().code == std::errc::no_such_file_or_directory) {
      return std::optional<std::string>();
    }
    return unexpected<error>(std::move(r).error());
  }
  return std::optional<std::string>(std::move(*r));
}

inline status read_u64_into(const dir& d, std::string_view file, std::uint64_t& out) {
  const auto text = KATANA_TRY(read_optional(d, file));
  if (text) {
    out = KATANA_TRY(cgroup::detail::parse_u64(*text), std::string(file));
  }
  return {};
}

}  // namespace controllers::detail
}  // namespace katana::inline v0::cgroup
