// The guest kernel command line for a QEMU sandbox, in a fixed order:
//   arch defaults, vIOMMU params, console=, root= params (image boot), quiet|debug, panic=1,
//   tsc_early_khz=<host TSC> (x86_64 under TCG), agent.* params, then the configuration's
//   kernel_params - each of which replaces an earlier parameter of the same name.
#pragma once

#include <algorithm>
#include <cstdint>
#include <iterator>
#include <string>
#include <string_view>
#include <vector>

#include <katana/arch/traits.hpp>
#include <katana/config/agent.hpp>
#include <katana/config/hypervisor.hpp>
#include <katana/core/str_cat.hpp>

namespace katana::inline v0::hypervisor::qemu {

enum class accelerator { kvm, tcg };

constexpr std::string_view to_string(accelerator a) noexcept {
  return a == accelerator::kvm ? "kvm" : "tcg";
}

/// How host and agent talk.
enum class agent_channel {
  virtio_serial,  // virtserialport agent.channel.0 <-> a host unix socket
  vsock,          // vhost-vsock, agent on port 1024
};

/// The virtio-serial port name the agent looks for in /sys/class/virtio-ports/*/name.
inline constexpr std::string_view agent_port_name = "agent.channel.0";
/// agent.server_addr for the virtio-serial channel, as katana-agent parses it (agent/config.hpp);
/// vsock is the agent's default address.
inline constexpr std::string_view virtio_serial_server_addr = "serial://agent.channel.0";
inline constexpr std::uint32_t agent_vsock_port = 1024;
inline constexpr std::uint32_t debug_console_vport = 1026;

/// How a root file system image is attached.
enum class image_attachment { none, nvdimm, virtio_blk };

/// NVDIMM when the arch prefers it, the machine has NVDIMMs and the configuration allows it;
/// virtio-blk otherwise; none for an initrd boot.
inline image_attachment choose_image_attachment(const config::hypervisor_config& h,
                                                const arch::description& a,
                                                const arch::machine& m) {
  if (h.image.empty()) {
    return image_attachment::none;
  }
  if (a.rootfs_driver == "nvdimm" && m.nvdimm && !h.disable_image_nvdimm) {
    return image_attachment::nvdimm;
  }
  return image_attachment::virtio_blk;
}

struct kernel_params_input {
  const config::hypervisor_config& hypervisor;
  const config::agent_config& agent;
  const arch::description& arch;
  const arch::machine& machine;
  accelerator accel = accelerator::tcg;
  agent_channel channel = agent_channel::virtio_serial;
  std::uint32_t host_tsc_khz = 0;  // 0: unknown, tsc_early_khz is left out
};

namespace detail {

inline std::vector<std::string> split_params(std::string_view s) {
  std::vector<std::string> out;
  std::size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n')) {
      ++i;
    }
    const auto start = i;
    while (i < s.size() && s[i] != ' ' && s[i] != '\t' && s[i] != '\n') {
      ++i;
    }
    if (i > start) {
      out.emplace_back(s.substr(start, i - start));
    }
  }
  return out;
}

inline std::string_view param_name(std::string_view p) {
  return p.substr(0, p.find('='));
}

/// root=, rootflags=, ro, rootfstype= for an image (the order Kata's tests fix).
inline void append_root_params(std::vector<std::string>& out,
                               const config::hypervisor_config& h,
                               image_attachment how,
                               bool dax) {
  if (how == image_attachment::none) {
    return;
  }
  out.emplace_back(how == image_attachment::nvdimm ? "root=/dev/pmem0p1" : "root=/dev/vda1");
  if (h.rootfs_type == "ext4") {
    out.emplace_back(dax ? "rootflags=dax,data=ordered,errors=remount-ro"
                         : "rootflags=data=ordered,errors=remount-ro");
  } else if (dax) {  // xfs, erofs
    out.emplace_back("rootflags=dax");
  }
  out.emplace_back("ro");
  out.emplace_back("rootfstype=" + h.rootfs_type);
}

}  // namespace detail

/// The kernel parameters, one per element.
inline std::vector<std::string> kernel_params(const kernel_params_input& in) {
  const auto& h = in.hypervisor;
  std::vector<std::string> out(in.arch.kernel_params.begin(), in.arch.kernel_params.end());
  if (h.enable_iommu) {
    out.insert(out.end(), in.arch.iommu_kernel_params.begin(), in.arch.iommu_kernel_params.end());
  }
  out.push_back(str_cat("console=", in.arch.console_param));
  const auto how = choose_image_attachment(h, in.arch, in.machine);
  // virtio-blk does not support DAX; aarch64's table never asks for it (kernel 6.18 panic).
  detail::append_root_params(out, h, how, how == image_attachment::nvdimm && in.arch.rootfs_dax);
  out.emplace_back(h.enable_debug ? "debug" : "quiet");
  out.emplace_back("panic=1");
  if (in.arch.tsc_early_khz && in.accel == accelerator::tcg && in.host_tsc_khz != 0) {
    out.push_back(str_cat("tsc_early_khz=", in.host_tsc_khz));
  }
  if (in.channel == agent_channel::virtio_serial) {
    out.push_back(str_cat("agent.server_addr=", virtio_serial_server_addr));
  }
  if (in.agent.enable_debug) {
    out.emplace_back("agent.log=debug");
  }
  if (in.agent.debug_console_enabled) {
    out.emplace_back("agent.debug_console");
    if (in.channel == agent_channel::vsock) {
      out.push_back(str_cat("agent.debug_console_vport=", debug_console_vport));
    }
  }
  if (in.agent.enable_tracing) {
    out.emplace_back("agent.trace=true");
  }
  if (in.agent.container_pipe_size != 0) {
    out.push_back(str_cat("agent.container_pipe_size=", in.agent.container_pipe_size));
  }
  // The configuration's parameters win over defaults of the same name.
  auto user = detail::split_params(h.kernel_params);
  std::erase_if(out, [&](const std::string& p) {
    return std::any_of(user.begin(), user.end(), [&](const std::string& u) {
      return detail::param_name(u) == detail::param_name(p);
    });
  });
  out.insert(out.end(), std::make_move_iterator(user.begin()), std::make_move_iterator(user.end()));
  return out;
}

/// The parameters as one -append string.
inline std::string join_kernel_params(const std::vector<std::string>& params) {
  std::string out;
  for (const auto& p : params) {
    if (!out.empty()) {
      out += ' ';
    }
    out += p;
  }
  return out;
}

}  // namespace katana::inline v0::hypervisor::qemu
