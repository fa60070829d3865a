// hugetlb: per page size limits. v1 hugetlb.<size>.limit_in_bytes, v2 hugetlb.<size>.max; the
// reservation limits (.rsvd.) get the same value where the kernel has them (runc does so too).
#pragma once

#include <cstdint>
#include <dirent.h>
#include <string>
#include <string_view>
#include <vector>

#include <katana/cgroup/controllers/controller.hpp>

namespace katana::inline v0::cgroup::controllers {

struct hugetlb {
  static constexpr std::string_view name = "hugetlb";
  static constexpr std::string_view v2_name = "hugetlb";
  /// The linux.resources field it serves, for error messages.
  static constexpr std::string_view field = "hugepageLimits";

  static bool needed(const oci::linux_resources& r) { return !r.hugepage_limits.empty(); }

  /// "2MB", "1GB", "64KB": digits then KB, MB or GB (the kernel's names).
  static bool valid_page_size(std::string_view s) {
    if (s.size() < 3) {
      return false;
    }
    const auto unit = s.substr(s.size() - 2);
    if (unit != "KB" && unit != "MB" && unit != "GB") {
      return false;
    }
    for (const char c : s.substr(0, s.size() - 2)) {
      if (c < '0' || c > '9') {
        return false;
      }
    }
    return true;
  }

  static status validate(const oci::linux_resources& r) {
    for (const auto& h : r.hugepage_limits) {
      if (!valid_page_size(h.page_size)) {
        return detail::invalid("hugepageLimits.pageSize", str_cat("\"", h.page_size, "\""),
                               "must be a size such as 2MB or 1GB");
      }
    }
    return {};
  }

  static status apply_v1(const dir& d, const oci::linux_resources& r, const logging::logger&) {
    return apply(d, r, ".limit_in_bytes", ".rsvd.limit_in_bytes");
  }
  static status apply_v2(const dir& d, const oci::linux_resources& r, const logging::logger&) {
    return apply(d, r, ".max", ".rsvd.max");
  }

  static status stats_v1(const dir& d, cgroup::stats& s) {
    for (const auto& size : page_sizes(d, ".limit_in_bytes")) {
      auto& h = s.hugetlb[size];
      const std::string base = "hugetlb." + size;
      KATANA_TRY(detail::read_u64_into(d, base + ".usage_in_bytes", h.usage));
      KATANA_TRY(detail::read_u64_into(d, base + ".max_usage_in_bytes", h.max_usage));
      KATANA_TRY(detail::read_u64_into(d, base + ".failcnt", h.failcnt));
    }
    return {};
  }
  static status stats_v2(const dir& d, cgroup::stats& s) {
    for (const auto& size : page_sizes(d, ".max")) {
      auto& h = s.hugetlb[size];
      const std::string base = "hugetlb." + size;
      KATANA_TRY(detail::read_u64_into(d, base + ".current", h.usage));
      const auto events = KATANA_TRY(detail::read_optional(d, base + ".events"));
      if (events) {
        h.failcnt = cgroup::detail::find_key(*events, "max").value_or(0);
      }
    }
    return {};
  }

  /// The kernel's name for a huge page size in kB: 2048 -> "2MB", 1048576 -> "1GB".
  static std::string page_size_name(std::uint64_t kb) {
    if (kb % (1024 * 1024) == 0) {
      return str_cat(kb / (1024 * 1024), "GB");
    }
    if (kb % 1024 == 0) {
      return str_cat(kb / 1024, "MB");
    }
    return str_cat(kb, "KB");
  }

  /// The host's huge page sizes, from /sys/kernel/mm/hugepages/hugepages-<N>kB (as runc).
  static std::vector<std::string> host_page_sizes() {
    std::vector<std::string> out;
    DIR* d = ::opendir("/sys/kernel/mm/hugepages");
    if (d == nullptr) {
      return out;
    }
    while (const dirent* e = ::readdir(d)) {
      std::string_view n(e->d_name);
      if (!n.starts_with("hugepages-") || !n.ends_with("kB")) {
        continue;
      }
      n.remove_prefix(10);
      n.remove_suffix(2);
      if (auto kb = cgroup::detail::parse_u64(n); kb && *kb != 0 && *kb != unlimited) {
        out.push_back(page_size_name(*kb));
      }
    }
    ::closedir(d);
    return out;
  }

  /// The page sizes this cgroup has files for.
  static std::vector<std::string> page_sizes(const dir& d, std::string_view suffix) {
    std::vector<std::string> out;
    for (auto& size : host_page_sizes()) {
      if (d.has(str_cat("hugetlb.", size, suffix))) {
        out.push_back(std::move(size));
      }
    }
    return out;
  }

 private:
  static status apply(const dir& d,
                      const oci::linux_resources& r,
                      std::string_view limit_suffix,
                      std::string_view rsvd_suffix) {
    for (const auto& h : r.hugepage_limits) {
      const std::string file = str_cat("hugetlb.", h.page_size, limit_suffix);
      if (!d.has(file)) {
        return detail::missing_file(file, str_cat("no ", h.page_size, " huge pages on this host"));
      }
      KATANA_TRY(d.write(file, str_cat(h.limit)));
      const std::string rsvd = str_cat("hugetlb.", h.page_size, rsvd_suffix);
      if (d.has(rsvd)) {
        KATANA_TRY(d.write(rsvd, str_cat(h.limit)));
      }
    }
    return {};
  }
};

}  // namespace katana::inline v0::cgroup::controllers
