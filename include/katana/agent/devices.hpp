// Devices the runtime hot- or cold-plugs into the guest (CreateContainer's `devices`): finding
// each one's node inside the VM (a PCI path, an MMIO or SCSI address, a VFIO group) and making
// the container's spec name the guest's node instead of the host's. VFIO containers also get
// the guest's InfiniBand devices (infiniband.hpp).
//
// A PCI path ("02/03") lists device slots from the root bus down through bridges, as Kata's
// pcipath does: 02 on bus 0000:00 is a bridge whose secondary bus holds slot 03.
#pragma once

#include <algorithm>
#include <charconv>
#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <system_error>
#include <vector>

#include <katana/agent/infiniband.hpp>
#include <katana/config.hpp>
#include <katana/core/error.hpp>
#include <katana/core/log.hpp>
#include <katana/core/str_cat.hpp>
#include <katana/core/try.hpp>
#include <katana/oci/spec.hpp>
#include <katana/ttrpc/asio.hpp>

namespace katana::inline v0::agent {

/// agent.proto's Device.
struct device {
  std::string id;
  std::string type;  // "blk", "mmioblk", "scsi", "nvdimm", "vfio-pci", "vfio-pci-gk", ...
  std::string vm_path;
  std::string container_path;
  std::vector<std::string> options;
  bool operator==(const device&) const = default;
};

/// Where the guest's sysfs and /dev are (tests point these at fake trees), and how long a
/// hot-plugged device may take to appear.
struct device_env {
  std::filesystem::path sys_root = "/sys";
  std::filesystem::path dev_root = "/dev";
  std::chrono::milliseconds timeout{3000};
  std::chrono::milliseconds poll_interval{20};
};

inline constexpr std::string_view device_handlers[] = {"blk",      "mmioblk",     "scsi", "nvdimm",
                                                       "vfio-pci", "vfio-pci-gk", "vfio"};

namespace detail {

inline std::optional<unsigned> parse_hex(std::string_view s) {
  unsigned v = 0;
  const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v, 16);
  if (ec != std::errc() || p != s.data() + s.size() || s.empty()) {
    return std::nullopt;
  }
  return v;
}

inline std::string hex2(unsigned v) {
  constexpr char digits[] = "0123456789abcdef";
  std::string s(2, '0');
  s[0] = digits[(v >> 4) & 0xf];
  s[1] = digits[v & 0xf];
  return s;
}

inline std::vector<std::string> list_dir(const std::filesystem::path& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (std::filesystem::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    out.push_back(it->path().filename().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

/// Calls `probe` until it yields a value or `timeout` passes (its last error then).
template <class Probe>
task<decltype(std::declval<Probe&>()())> poll_until(Probe probe,
                                                    std::chrono::milliseconds timeout,
                                                    std::chrono::milliseconds interval) {
  const auto end = std::chrono::steady_clock::now() + timeout;
  asio::steady_timer timer(co_await asio::this_coro::executor);
  for (;;) {
    auto r = probe();
    if (r || std::chrono::steady_clock::now() >= end) {
      co_return r;
    }
    timer.expires_after(interval);
    boost::system::error_code ec;
    co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
}

}  // namespace detail

/// Checks a PCI path's syntax: 1 to 8 slots of at most two hex digits (< 0x20) split by '/'.
inline status check_pci_path(std::string_view p) {
  std::size_t n = 0;
  std::string_view rest = p;
  while (true) {
    const auto slash = rest.find('/');
    const auto slot = rest.substr(0, slash);
    const auto v = detail::parse_hex(slot);
    if (slot.size() > 2 || !v || *v >= 0x20) {
      return fail(errc::invalid_argument, str_cat("invalid PCI path \"", p, "\""));
    }
    ++n;
    if (slash == std::string_view::npos) {
      break;
    }
    rest = rest.substr(slash + 1);
  }
  if (n > 8) {
    return fail(errc::invalid_argument, str_cat("PCI path \"", p, "\" is too deep"));
  }
  return {};
}

/// The sysfs directory of the device at a PCI path (function 0), e.g. "02/03" ->
/// /sys/devices/pci0000:00/0000:00:02.0/0000:01:03.0. errc::not_found while it is absent.
inline result<std::filesystem::path> pci_device_dir(const std::filesystem::path& sys_root,
                                                    std::string_view pci_path) {
  KATANA_TRY(check_pci_path(pci_path));
  std::filesystem::path dir = sys_root / "devices" / "pci0000:00";
  std::string bus = "0000:00";
  std::string_view rest = pci_path;
  std::error_code ec;
  while (true) {
    const auto slash = rest.find('/');
    const auto slot = *detail::parse_hex(rest.substr(0, slash));
    const std::string name = str_cat(bus, ":", detail::hex2(slot), ".0");
    dir /= name;
    if (!std::filesystem::is_directory(dir, ec)) {
      return fail(errc::not_found,
                  str_cat("PCI device ", name, " (PCI path ", pci_path, ") not present"));
    }
    if (slash == std::string_view::npos) {
      return dir;
    }
    rest = rest.substr(slash + 1);
    const auto buses = detail::list_dir(dir / "pci_bus");
    if (buses.size() != 1) {
      return fail(errc::not_found, str_cat("PCI device ", name, " (PCI path ", pci_path,
                                           ") is not a bridge with one bus"));
    }
    bus = buses.front();
  }
}

/// The block device (e.g. "vda") of the virtio-blk device at a PCI path.
inline result<std::string> pci_block_device(const std::filesystem::path& sys_root,
                                            std::string_view pci_path) {
  const auto dir = KATANA_TRY(pci_device_dir(sys_root, pci_path));
  for (const auto& sub : detail::list_dir(dir)) {
    if (sub.rfind("virtio", 0) != 0) {
      continue;
    }
    const auto blocks = detail::list_dir(dir / sub / "block");
    if (!blocks.empty()) {
      return blocks.front();
    }
  }
  return fail(errc::not_found, str_cat("no block device at PCI path ", pci_path, " yet"));
}

/// The block device (e.g. "sda") of a SCSI address "<target>:<lun>" on any host.
inline result<std::string> scsi_block_device(const std::filesystem::path& sys_root,
                                             std::string_view addr) {
  const auto colon = addr.find(':');
  if (colon == std::string_view::npos) {
    return fail(errc::invalid_argument, str_cat("invalid SCSI address \"", addr, "\""));
  }
  const auto suffix = str_cat(":0:", addr);  // host:channel:target:lun, channel 0
  for (const auto& name : detail::list_dir(sys_root / "bus" / "scsi" / "devices")) {
    if (name.size() > suffix.size() && name.substr(name.size() - suffix.size()) == suffix &&
        name.find(':') == name.size() - suffix.size()) {
      const auto blocks = detail::list_dir(sys_root / "bus" / "scsi" / "devices" / name / "block");
      if (!blocks.empty()) {
        return blocks.front();
      }
    }
  }
  return fail(errc::not_found, str_cat("no SCSI disk at ", addr, " yet"));
}

/// A device node's type ('b' or 'c') and numbers.
struct node_info {
  char type = 'c';
  std::int64_t major = 0;
  std::int64_t minor = 0;
  std::uint32_t mode = 0;
};

inline result<node_info> stat_node(const std::filesystem::path& p) {
  struct stat st {};
  if (::stat(p.c_str(), &st) != 0) {
    return fail_errno("stat " + p.string());
  }
  if (!S_ISBLK(st.st_mode) && !S_ISCHR(st.st_mode)) {
    return fail(errc::invalid_argument, p.string() + " is not a device node");
  }
  return node_info{S_ISBLK(st.st_mode) ? 'b' : 'c',
                   static_cast<std::int64_t>(::gnu_dev_major(st.st_rdev)),
                   static_cast<std::int64_t>(::gnu_dev_minor(st.st_rdev)),
                   static_cast<std::uint32_t>(st.st_mode & 07777)};
}

/// Makes the spec's device at `container_path` (or a new entry) the guest node `node`, and
/// moves the cgroup rules that named the host's numbers to the guest's (Kata's
/// update_spec_device).
inline void update_spec_device(oci::spec& spec,
                               const std::string& container_path,
                               const node_info& node) {
  if (!spec.linux_) {
    spec.linux_.emplace();
  }
  auto& lx = *spec.linux_;
  auto it = std::find_if(lx.devices.begin(), lx.devices.end(),
                         [&](const oci::linux_device& d) { return d.path == container_path; });
  std::optional<std::pair<std::int64_t, std::int64_t>> old;
  if (it == lx.devices.end()) {
    oci::linux_device d;
    d.path = container_path;
    d.type = std::string(1, node.type);
    d.file_mode = node.mode;
    lx.devices.push_back(d);
    it = std::prev(lx.devices.end());
  } else {
    old = std::pair{it->major, it->minor};
  }
  it->major = node.major;
  it->minor = node.minor;
  if (!lx.resources) {
    lx.resources.emplace();
  }
  bool ruled = false;
  for (auto& r : lx.resources->devices) {
    if (old && r.major == old->first && r.minor == old->second) {
      r.major = node.major;
      r.minor = node.minor;
      ruled = ruled || r.allow;
    }
  }
  if (!ruled) {
    lx.resources->devices.push_back({.allow = true,
                                     .type = std::string(1, node.type),
                                     .major = node.major,
                                     .minor = node.minor,
                                     .access = "rwm"});
  }
}

/// The guest node for a block-ish device, waiting for hot-plug.
inline task<result<std::filesystem::path>> device_node(const device_env& env, device d) {
  if (d.type == "blk") {
    if (d.id.empty() && !d.vm_path.empty()) {
      co_return std::filesystem::path(d.vm_path);
    }
    KATANA_CO_TRY(check_pci_path(d.id));
    auto name = co_await detail::poll_until([&] { return pci_block_device(env.sys_root, d.id); },
                                            env.timeout, env.poll_interval);
    if (!name) {
      co_return unexpected<error>(std::move(name).error());
    }
    co_return env.dev_root / *name;
  }
  if (d.type == "scsi") {
    auto name = co_await detail::poll_until([&] { return scsi_block_device(env.sys_root, d.id); },
                                            env.timeout, env.poll_interval);
    if (!name) {
      co_return unexpected<error>(std::move(name).error());
    }
    co_return env.dev_root / *name;
  }
  // mmioblk, nvdimm: the runtime names the guest node.
  const std::string path = d.vm_path.empty() ? d.id : d.vm_path;
  if (path.empty() || path.front() != '/') {
    co_return fail(errc::invalid_argument,
                   str_cat(d.type, " device \"", d.id, "\" needs an absolute vm_path"));
  }
  const std::filesystem::path node = path;
  auto ok = co_await detail::poll_until(
      [&]() -> status {
        std::error_code ec;
        if (std::filesystem::exists(node, ec)) {
          return {};
        }
        return fail(errc::not_found, str_cat(node.string(), " did not appear"));
      },
      env.timeout, env.poll_interval);
  if (!ok) {
    co_return unexpected<error>(std::move(ok).error());
  }
  co_return node;
}

/// The guest's VFIO group of the device at a PCI path ("/sys/.../iommu_group" -> "5").
inline result<std::string> vfio_group(const std::filesystem::path& sys_root,
                                      std::string_view pci_path) {
  const auto dir = KATANA_TRY(pci_device_dir(sys_root, pci_path));
  std::error_code ec;
  const auto target = std::filesystem::read_symlink(dir / "iommu_group", ec);
  if (ec) {
    return fail(errc::not_found, str_cat("PCI path ", pci_path, " has no IOMMU group yet"));
  }
  return target.filename().string();
}

/// Applies CreateContainer's devices to the spec. VFIO containers also get the guest's
/// InfiniBand devices, with a one-line diagnostic snapshot in the log.
inline task<status> add_devices(const device_env& env,
                                std::vector<device> devices,
                                oci::spec& spec,
                                logging::logger log) {
  for (const auto& d : devices) {
    const bool known = std::find(std::begin(device_handlers), std::end(device_handlers), d.type) !=
                       std::end(device_handlers);
    if (!known) {
      co_return fail(errc::invalid_argument,
                     str_cat("device \"", d.id, "\": unknown device type \"", d.type, "\""));
    }
    if (is_vfio_device_type(d.type)) {
      // options: "<host BDF>=<guest PCI path>" per function.
      for (const auto& opt : d.options) {
        const auto eq = opt.find('=');
        if (eq == std::string::npos) {
          co_return fail(errc::invalid_argument, str_cat("vfio device \"", d.id, "\": option \"",
                                                         opt, "\" is not <host BDF>=<PCI path>"));
        }
        const std::string pci = opt.substr(eq + 1);
        KATANA_CO_TRY(check_pci_path(pci), "vfio device \"" + d.id + "\"");
        if (d.type == "vfio-pci-gk") {
          // Bound to a guest driver: wait until the device is there; nothing to map.
          auto there = co_await detail::poll_until(
              [&] { return pci_device_dir(env.sys_root, pci); }, env.timeout, env.poll_interval);
          if (!there) {
            co_return unexpected<error>(std::move(there).error());
          }
          continue;
        }
        auto group = co_await detail::poll_until([&] { return vfio_group(env.sys_root, pci); },
                                                 env.timeout, env.poll_interval);
        if (!group) {
          co_return unexpected<error>(std::move(group).error());
        }
        if (!d.container_path.empty()) {
          const auto node = KATANA_CO_TRY(stat_node(env.dev_root / "vfio" / *group));
          update_spec_device(spec, d.container_path, node);
          for (auto& sd : spec.linux_->devices) {
            if (sd.path == d.container_path) {
              sd.path = "/dev/vfio/" + *group;
            }
          }
        }
      }
      continue;
    }
    auto node = co_await device_node(env, d);
    if (!node) {
      co_return unexpected<error>(std::move(node).error().wrap("device \"" + d.id + "\""));
    }
    if (!d.container_path.empty()) {
      const auto info = KATANA_CO_TRY(stat_node(*node), "device \"" + d.id + "\"");
      update_spec_device(spec, d.container_path, info);
    }
  }
  if (container_has_vfio_device(devices,
                                [](const device& d) -> std::string_view { return d.type; })) {
    log.info("vfio container: guest infiniband",
             {{"snapshot", snapshot_infiniband(env.sys_root, env.dev_root)}});
    const auto added = KATANA_CO_TRY(expose_guest_infiniband_devices(spec, env.dev_root));
    if (added > 0) {
      log.info("exposed guest infiniband devices", {{"count", added}});
    }
  }
  co_return status{};
}

}  // namespace katana::inline v0::agent
