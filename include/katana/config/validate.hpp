// Adjusting a configuration to the host (Kata's clamping rules) and checking it.
//
//   config::host_info host = hypervisor::detect_host();   // or hand-made in tests
//   config::warnings notes;
//   KATANA_TRY(config::adjust(cfg, host, notes));
//   KATANA_TRY(config::validate(cfg, host));
//
// Host facts are injected, so results are deterministic. The arch facts (memory block size,
// vCPU limit, default machine) come from the generated arch traits through the hypervisor
// component; config/ itself depends on core/ only.
#pragma once

#include <algorithm>
#include <cstdint>
#include <regex>
#include <string>
#include <string_view>
#include <sys/sysinfo.h>
#include <sys/utsname.h>
#include <type_traits>
#include <unistd.h>
#include <vector>

#include <katana/config/configuration.hpp>
#include <katana/core/error.hpp>
#include <katana/core/str_cat.hpp>
#include <katana/core/try.hpp>

namespace katana::inline v0::config {

/// What the guest architecture imposes on a configuration.
struct arch_limits {
  std::uint32_t max_vcpus = 0;             // KVM/QEMU maximum; 0 = no limit known
  std::uint64_t memory_block_mib = 0;      // guest memory granularity (256 on ppc64le); 0/1 = none
  std::string default_machine_type;        // used when machine_type is empty
  std::vector<std::string> machine_types;  // known machine types; empty = not checked
  bool supports_iommu = false;             // a vIOMMU (x86_64 q35 only)
};

/// The host a configuration is adjusted to.
struct host_info {
  std::uint32_t cpus = 1;
  std::uint64_t memory_bytes = 0;
  std::string arch;  // "x86_64", "aarch64", "ppc64le", "s390x"
  arch_limits limits;
};

/// Online CPUs, RAM and uname's machine; `limits` stays empty (see hypervisor::detect_host).
inline host_info probe_host_resources() {
  host_info h;
  const long n = ::sysconf(_SC_NPROCESSORS_ONLN);
  h.cpus = n > 0 ? static_cast<std::uint32_t>(n) : 1;
  struct ::sysinfo si {};
  if (::sysinfo(&si) == 0) {
    h.memory_bytes = static_cast<std::uint64_t>(si.totalram) * si.mem_unit;
  }
  struct ::utsname u {};
  if (::uname(&u) == 0) {
    h.arch = u.machine;
  }
  return h;
}

namespace detail {

inline std::uint64_t round_up(std::uint64_t v, std::uint64_t block) {
  return block > 1 ? (v + block - 1) / block * block : v;
}

/// Clamps and rounds the [hypervisor.<kind>] table.
inline status adjust_hypervisor(hypervisor_config& h,
                                std::string_view kind,
                                const host_info& host,
                                warnings& notes) {
  const std::string where = str_cat("hypervisor.", kind);
  const auto note = [&](std::string_view key, std::string text) {
    notes.push_back(str_cat(where, ".", key, ": ", text));
  };
  const std::int64_t cpus = host.cpus > 0 ? host.cpus : 1;
  // vCPUs: 0 -> 1, < 0 -> all host CPUs, > host CPUs -> host CPUs.
  if (h.default_vcpus == 0) {
    h.default_vcpus = 1;
  } else if (h.default_vcpus < 0) {
    h.default_vcpus = static_cast<std::int32_t>(cpus);
  } else if (h.default_vcpus > cpus) {
    note("default_vcpus",
         str_cat(h.default_vcpus, " is more than the host's ", cpus, " CPUs; using ", cpus));
    h.default_vcpus = static_cast<std::int32_t>(cpus);
  }
  // Max vCPUs: 0 or > host CPUs -> host CPUs; then the arch maximum.
  if (h.default_maxvcpus == 0 || h.default_maxvcpus > cpus) {
    if (h.default_maxvcpus > cpus) {
      note("default_maxvcpus",
           str_cat(h.default_maxvcpus, " is more than the host's ", cpus, " CPUs; using ", cpus));
    }
    h.default_maxvcpus = static_cast<std::uint32_t>(cpus);
  }
  if (host.limits.max_vcpus != 0 && h.default_maxvcpus > host.limits.max_vcpus) {
    note("default_maxvcpus", str_cat(h.default_maxvcpus, " is more than the ", host.arch,
                                     " maximum of ", host.limits.max_vcpus));
    h.default_maxvcpus = host.limits.max_vcpus;
  }
  if (static_cast<std::uint32_t>(h.default_vcpus) > h.default_maxvcpus) {
    h.default_vcpus = static_cast<std::int32_t>(h.default_maxvcpus);
  }

  // Memory (MiB): 0 -> 2048 / host RAM, clamped to host RAM, then aligned to the arch's block:
  // up, except where the value is the host's RAM, which is rounded down (as Kata's runtime
  // does on ppc64le) so that the guest does not get more than the host has.
  const std::uint64_t block = host.limits.memory_block_mib;
  const std::uint64_t host_mib = host.memory_bytes >> 20;
  const std::uint64_t host_aligned = block > 1 && host_mib != 0
                                         ? std::max<std::uint64_t>(host_mib / block * block, block)
                                         : host_mib;
  if (h.default_memory == 0) {
    h.default_memory = 2048;
  }
  if (host_mib != 0 && h.default_memory > host_mib) {
    note("default_memory", str_cat(h.default_memory, " MiB is more than the host's ", host_mib,
                                   " MiB; using ", host_aligned, " MiB"));
    h.default_memory = static_cast<std::uint32_t>(host_aligned);
  }
  if (h.default_maxmemory == 0 || (host_mib != 0 && h.default_maxmemory > host_mib)) {
    if (h.default_maxmemory != 0) {
      note("default_maxmemory", str_cat(h.default_maxmemory, " MiB is more than the host's ",
                                        host_mib, " MiB; using ", host_aligned, " MiB"));
    } else if (host_aligned != host_mib) {
      note("default_maxmemory",
           str_cat("0 means the host's ", host_mib, " MiB; using ", host_aligned, " MiB (",
                   host.arch, " guest memory is managed in ", block, " MiB blocks)"));
    }
    h.default_maxmemory = static_cast<std::uint32_t>(host_aligned);
  }
  // within_host: a guest size, which may not round up past the host's RAM.
  const auto align = [&](std::string_view key, auto& v, bool within_host) {
    const auto up = round_up(v, block);
    if (up != v && within_host && host_mib != 0 && up > host_mib) {
      note(key, str_cat(v, " MiB rounded down to ", host_aligned, " MiB (", host.arch,
                        " guest memory is managed in ", block, " MiB blocks; the host has ",
                        host_mib, " MiB)"));
      v = static_cast<std::remove_reference_t<decltype(v)>>(host_aligned);
    } else if (up != v) {
      note(key, str_cat(v, " MiB rounded up to ", up, " MiB (", host.arch,
                        " guest memory is managed in ", block, " MiB blocks)"));
      v = static_cast<std::remove_reference_t<decltype(v)>>(up);
    }
  };
  if (round_up(h.default_memory, block) > UINT32_MAX ||
      round_up(h.default_maxmemory, block) > UINT32_MAX) {
    return fail(errc::invalid_config, str_cat(where, ".default_maxmemory: too large"));
  }
  align("default_memory", h.default_memory, true);
  align("default_maxmemory", h.default_maxmemory, true);
  align("memory_offset", h.memory_offset, false);
  if (h.default_maxmemory != 0 && h.default_memory > h.default_maxmemory) {
    note("default_maxmemory",
         str_cat(h.default_maxmemory, " MiB is less than default_memory; using ", h.default_memory,
                 " MiB"));
    h.default_maxmemory = h.default_memory;
  }

  if (h.default_bridges > 5) {
    note("default_bridges", str_cat(h.default_bridges, " is more than 5; using 5"));
    h.default_bridges = 5;
  }
  if (h.machine_type.empty() && kind == "qemu") {
    h.machine_type = host.limits.default_machine_type;
  }
  // Kata rewrites virtio-blk to its CCW form on s390x's machine.
  if (h.block_device_driver == "virtio-blk" && h.machine_type == "s390-ccw-virtio") {
    h.block_device_driver = "virtio-blk-ccw";
  }
  return {};
}

inline status invalid(std::string_view where, std::string_view key, std::string text) {
  return fail(errc::invalid_config, str_cat(where, ".", key, ": ", text));
}

template <class Section, std::size_t N>
status check_paths(const Section& s, const field<Section> (&table)[N], std::string_view where) {
  for (const auto& f : table) {
    if ((f.flags & absolute_path) == 0) {
      continue;
    }
    const auto check = [&](const std::string& p) -> status {
      if (!p.empty() && p.front() != '/') {
        return invalid(where, f.key, str_cat(in_quotes(p), " is not an absolute path"));
      }
      return {};
    };
    if (const auto* m = std::get_if<std::string Section::*>(&f.target)) {
      KATANA_TRY(check(s.**m));
    } else if (const auto* l = std::get_if<std::vector<std::string> Section::*>(&f.target)) {
      for (const auto& p : s.**l) {
        KATANA_TRY(check(p));
      }
    }
  }
  return {};
}

inline status validate_hypervisor(const hypervisor_config& h,
                                  std::string_view kind,
                                  const host_info& host) {
  const std::string where = str_cat("hypervisor.", kind);
  const auto bad = [&](std::string_view key, std::string text) {
    return invalid(where, key, text);
  };
  KATANA_TRY(check_paths(h, hypervisor_fields, where));
  if (!h.image.empty() && !h.initrd.empty()) {
    return bad("image", "image and initrd are mutually exclusive: set one of them");
  }
  if (kind != "remote") {
    if (h.path.empty()) {
      return bad("path", "the hypervisor binary is not set");
    }
    if (h.kernel.empty()) {
      return bad("kernel", "the guest kernel is not set");
    }
    if (h.image.empty() && h.initrd.empty()) {
      return bad("initrd", "neither an initrd nor an image is set");
    }
  }
  if (h.default_memory < 64) {
    return bad("default_memory", str_cat(h.default_memory, " MiB is too small for a guest"));
  }
  if (h.msize_9p < 4096 || h.msize_9p > 1048576) {
    return bad("msize_9p", str_cat(h.msize_9p, " is outside [4096, 1048576]"));
  }
  if (h.shared_fs == "virtio-fs" || h.shared_fs == "virtio-fs-nydus") {
    if (h.virtio_fs_daemon.empty()) {
      return bad("virtio_fs_daemon", "shared_fs = \"" + h.shared_fs + "\" needs a daemon");
    }
  }
  if (h.virtio_fs_queue_size == 0 || (h.virtio_fs_queue_size & (h.virtio_fs_queue_size - 1)) != 0 ||
      h.virtio_fs_queue_size > 1024) {
    return bad("virtio_fs_queue_size",
               str_cat(h.virtio_fs_queue_size, " is not a power of two up to 1024"));
  }
  if (h.block_device_driver == "virtio-blk-ccw" && h.machine_type != "s390-ccw-virtio" &&
      !h.machine_type.empty()) {
    return bad("block_device_driver",
               str_cat("virtio-blk-ccw needs machine_type \"s390-ccw-virtio\", not ",
                       in_quotes(h.machine_type)));
  }
  if (kind == "qemu" && !host.limits.machine_types.empty() && !h.machine_type.empty()) {
    bool known = false;
    for (const auto& m : host.limits.machine_types) {
      known = known || m == h.machine_type;
    }
    if (!known) {
      std::string list;
      for (const auto& m : host.limits.machine_types) {
        list += list.empty() ? m : ", " + m;
      }
      return bad("machine_type", str_cat(in_quotes(h.machine_type), " is not a ", host.arch,
                                         " machine type (", list, ")"));
    }
  }
  if (h.enable_iommu && (!host.limits.supports_iommu || h.machine_type != "q35")) {
    return bad("enable_iommu", str_cat("a vIOMMU is not supported on ", host.arch, " ",
                                       h.machine_type.empty() ? "" : h.machine_type));
  }
  if (kind == "qemu" && h.kvm_probe_timeout_ms == 0) {
    return bad("kvm_probe_timeout_ms", "must be positive");
  }
  if (h.confidential_guest && h.shared_fs != "none" && h.shared_fs != "virtio-fs" &&
      h.shared_fs != "virtio-fs-nydus") {
    return bad("shared_fs", "a confidential guest cannot share files over " + h.shared_fs);
  }
  for (const auto& re : h.enable_annotations) {
    try {
      std::regex compiled(re, std::regex::ECMAScript);
      (void)compiled;
    } catch (const std::regex_error& e) {
      return bad("enable_annotations",
                 str_cat(in_quotes(re), " is not a regular expression (", e.what(), ")"));
    }
  }
  return {};
}

}  // namespace detail

/// Applies Kata's rules for a host: vCPUs (0 -> 1, < 0 -> host CPUs, > host CPUs -> host CPUs;
/// max vCPUs 0 -> host CPUs capped at the arch maximum), memory (clamped to host RAM, max 0 ->
/// host RAM, both rounded up to the arch's memory block with a note), bridges <= 5, the arch's
/// default machine type, virtio-blk -> virtio-blk-ccw on s390-ccw-virtio. Every change that is
/// not a plain default is described in `notes`.
inline status adjust(configuration& cfg, const host_info& host, warnings& notes) {
  for (auto& [kind, h] : cfg.hypervisors) {
    KATANA_TRY(detail::adjust_hypervisor(h, kind, host, notes));
  }
  // Kata's runtime, when its VM cache server cannot be reached, warns and boots without it.
  if (cfg.factory.vm_cache_number > 0) {
    notes.push_back(str_cat("factory.vm_cache_number: ", cfg.factory.vm_cache_number,
                            " -> 0 (katana has no VM cache server; sandboxes boot, or start from "
                            "the VM template with enable_template)"));
    cfg.factory.vm_cache_number = 0;
  }
  return {};
}

/// Checks what adjust() cannot repair: absolute paths, image xor initrd, kernel and binary set,
/// value combinations (virtio-fs needs a daemon, vIOMMU only on x86_64 q35, disable_new_netns
/// only without a network model, templating needs an initrd, ...). The first problem is the
/// error, naming its key: "hypervisor.qemu.image: image and initrd are mutually exclusive ...".
inline status validate(const configuration& cfg, const host_info& host) {
  KATANA_TRY(cfg.selected_hypervisor());
  for (const auto& [kind, h] : cfg.hypervisors) {
    if (hypervisor_kind_mask(kind) == 0) {
      return fail(errc::invalid_config,
                  str_cat("[hypervisor.", kind, "] is not a known hypervisor"));
    }
    KATANA_TRY(detail::validate_hypervisor(h, kind, host));
  }
  KATANA_TRY(detail::check_paths(cfg.runtime, runtime_fields, "runtime"));
  KATANA_TRY(detail::check_paths(cfg.factory, factory_fields, "factory"));
  if (cfg.runtime.disable_new_netns && cfg.runtime.internetworking_model != "none") {
    return detail::invalid("runtime", "disable_new_netns",
                           str_cat("needs internetworking_model = \"none\", not \"",
                                   cfg.runtime.internetworking_model, "\""));
  }
  if (cfg.runtime.create_container_timeout == 0) {
    return detail::invalid("runtime", "create_container_timeout", "must be positive");
  }
  if (cfg.agent.dial_timeout == 0) {
    return detail::invalid("agent.kata", "dial_timeout", "must be positive");
  }
  if (cfg.factory.enable_template) {
    const auto* h = cfg.hypervisor();
    if (h != nullptr && h->initrd.empty()) {
      return detail::invalid("factory", "enable_template", "VM templating needs an initrd");
    }
  }
  return {};
}

}  // namespace katana::inline v0::config
