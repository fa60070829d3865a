// Guest InfiniBand devices for VFIO containers (SEEDS-INVENTORY §2.2, Kata's
// expose_guest_infiniband_devices / container_has_vfio_device / snapshot_infiniband).
//
// A VF cold-plugged in guest-kernel mode binds to mlx5_core inside the VM and mlx5_ib creates
// character devices under /dev/infiniband (uverbs*, rdma_cm, umad*). A container only reaches
// them when they are in its spec, so a container that carries at least one VFIO device gets
// every char device found there, each with an `rwm` cgroup rule. No /dev/infiniband, or an
// empty one, changes nothing. Containers without a VFIO device are never widened.
#pragma once

#include <algorithm>
#include <filesystem>
#include <string>
#include <string_view>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <system_error>
#include <vector>

#include <katana/config.hpp>
#include <katana/core/error.hpp>
#include <katana/core/str_cat.hpp>
#include <katana/oci/spec.hpp>

namespace katana::inline v0::agent {

/// Device types that are VFIO devices (vfio-pci, vfio-pci-gk, vfio-ap, vfio-ap-cold, vfio).
inline bool is_vfio_device_type(std::string_view type) noexcept {
  return type == "vfio" || type == "vfio-pci" || type == "vfio-pci-gk" || type == "vfio-ap" ||
         type == "vfio-ap-cold";
}

/// True when any of the device types is a VFIO one.
template <class Range, class TypeOf>
bool container_has_vfio_device(const Range& devices, TypeOf type_of) {
  return std::any_of(std::begin(devices), std::end(devices),
                     [&](const auto& d) { return is_vfio_device_type(type_of(d)); });
}

namespace detail {
inline std::vector<std::string> sorted_names(const std::filesystem::path& dir, bool& present) {
  std::vector<std::string> names;
  std::error_code ec;
  present = std::filesystem::is_directory(dir, ec);
  if (!present) {
    return names;
  }
  for (std::filesystem::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    names.push_back(it->path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}
}  // namespace detail

/// Adds every character device below `dev_root`/infiniband (the guest's /dev) to
/// spec.linux.devices (as /dev/infiniband/<name>) with an allow rule `c major:minor rwm` in
/// spec.linux.resources.devices. Devices the spec already lists are left alone. Returns how
/// many were added.
inline result<std::size_t> expose_guest_infiniband_devices(
    oci::spec& spec, const std::filesystem::path& dev_root = "/dev") {
  bool present = false;
  const auto dir = dev_root / "infiniband";
  const auto names = detail::sorted_names(dir, present);
  std::size_t added = 0;
  for (const auto& name : names) {
    struct stat st {};
    if (::lstat((dir / name).c_str(), &st) != 0) {
      return fail_errno(str_cat("stat ", (dir / name).string()));
    }
    if (!S_ISCHR(st.st_mode)) {
      continue;
    }
    if (!spec.linux_) {
      spec.linux_.emplace();
    }
    auto& lx = *spec.linux_;
    const std::string path = "/dev/infiniband/" + name;
    const auto maj = static_cast<std::int64_t>(::gnu_dev_major(st.st_rdev));
    const auto min = static_cast<std::int64_t>(::gnu_dev_minor(st.st_rdev));
    const bool listed = std::any_of(lx.devices.begin(), lx.devices.end(),
                                    [&](const oci::linux_device& d) { return d.path == path; });
    if (!listed) {
      oci::linux_device d;
      d.path = path;
      d.type = "c";
      d.major = maj;
      d.minor = min;
      d.file_mode = static_cast<std::uint32_t>(st.st_mode & 07777);
      d.uid = st.st_uid;
      d.gid = st.st_gid;
      lx.devices.push_back(std::move(d));
      ++added;
    }
    if (!lx.resources) {
      lx.resources.emplace();
    }
    auto& rules = lx.resources->devices;
    const bool allowed =
        std::any_of(rules.begin(), rules.end(), [&](const oci::linux_device_cgroup& r) {
          return r.allow && r.type == "c" && r.major == maj && r.minor == min && r.access == "rwm";
        });
    if (!allowed) {
      rules.push_back({.allow = true, .type = "c", .major = maj, .minor = min, .access = "rwm"});
    }
  }
  return added;
}

/// One line for the log: what /sys/class/infiniband, /sys/class/infiniband_verbs and
/// /dev/infiniband hold, e.g.
/// "/sys/class/infiniband=[mlx5_0] /sys/class/infiniband_verbs=[uverbs0]
///  /dev/infiniband=[rdma_cm,uverbs0]" (absent directories read "absent").
inline std::string snapshot_infiniband(const std::filesystem::path& sys_root = "/sys",
                                       const std::filesystem::path& dev_root = "/dev") {
  std::string out;
  const auto add = [&](std::string_view label, const std::filesystem::path& dir) {
    bool present = false;
    const auto names = detail::sorted_names(dir, present);
    out += out.empty() ? "" : " ";
    out += label;
    out += "=";
    if (!present) {
      out += "absent";
      return;
    }
    out += "[";
    for (std::size_t i = 0; i < names.size(); ++i) {
      out += i == 0 ? "" : ",";
      out += names[i];
    }
    out += "]";
  };
  add("/sys/class/infiniband", sys_root / "class" / "infiniband");
  add("/sys/class/infiniband_verbs", sys_root / "class" / "infiniband_verbs");
  add("/dev/infiniband", dev_root / "infiniband");
  return out;
}

}  // namespace katana::inline v0::agent
