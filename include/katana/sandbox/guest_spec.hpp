// The OCI spec the host sends the guest agent for a container: the container manager's spec
// with what only the host handles taken out, as Kata's runtime does before CreateContainer
// (its constrainGRPCSpec). Pure: no I/O.
//
//   - hooks: they ran on the host;
//   - seccomp, unless disable_guest_seccomp is false;
//   - SELinux labels: cleared when guest SELinux is off; otherwise the guest label, or the
//     process label with its type set to container_t;
//   - resources: device rules, pids, block I/O and network classes are host cgroup settings,
//     and cpuset CPUs/memory nodes name host CPUs; the guest keeps CPU and memory limits;
//   - namespaces: no network namespace (containers use the VM's network, where the pod's
//     interfaces are) and no cgroup namespace; the other paths are host paths and are emptied;
//   - VFIO character devices when the guest kernel drives them (vfio_mode = "guest-kernel").
#pragma once

#include <algorithm>
#include <string>
#include <string_view>

#include <katana/config.hpp>
#include <katana/oci/spec.hpp>

namespace katana::inline v0::sandbox {

struct guest_spec_options {
  bool pass_seccomp = false;          // !disable_guest_seccomp
  bool disable_guest_selinux = true;  // [hypervisor.*] disable_guest_selinux
  std::string guest_selinux_label;    // [runtime] guest_selinux_label
  bool strip_vfio = true;             // vfio_mode == "guest-kernel"
};

/// Kata's type for a container process in the guest.
inline constexpr std::string_view guest_selinux_container_type = "container_t";

namespace detail {

/// "user:role:type:level" with the type replaced; a label without a type field is kept.
inline std::string with_selinux_type(std::string_view label, std::string_view type) {
  const auto a = label.find(':');
  const auto b = a == std::string_view::npos ? a : label.find(':', a + 1);
  if (b == std::string_view::npos) {
    return std::string(label);
  }
  const auto c = label.find(':', b + 1);
  std::string out(label.substr(0, b + 1));
  out += type;
  if (c != std::string_view::npos) {
    out += label.substr(c);
  }
  return out;
}

}  // namespace detail

inline void constrain_for_guest(oci::spec& spec, const guest_spec_options& o) {
  spec.hooks.reset();
  if (spec.process && !spec.process->selinux_label.empty()) {
    if (o.disable_guest_selinux) {
      spec.process->selinux_label.clear();
      if (spec.linux_) {
        spec.linux_->mount_label.clear();
      }
    } else if (!o.guest_selinux_label.empty()) {
      spec.process->selinux_label = o.guest_selinux_label;
    } else {
      spec.process->selinux_label =
          detail::with_selinux_type(spec.process->selinux_label, guest_selinux_container_type);
    }
  }
  if (!spec.linux_) {
    return;
  }
  auto& l = *spec.linux_;
  if (!o.pass_seccomp) {
    l.seccomp.reset();
  }
  if (l.resources) {
    auto& r = *l.resources;
    r.devices.clear();
    r.pids.reset();
    r.block_io.reset();
    r.network.reset();
    if (r.cpu) {
      r.cpu->cpus.clear();
      r.cpu->mems.clear();
    }
  }
  std::erase_if(l.namespaces, [](const oci::linux_namespace& ns) {
    return ns.type == "network" || ns.type == "cgroup";
  });
  for (auto& ns : l.namespaces) {
    ns.path.clear();
  }
  if (o.strip_vfio) {
    std::erase_if(l.devices, [](const oci::linux_device& d) {
      return d.type == "c" && d.path.starts_with("/dev/vfio/");
    });
  }
}

}  // namespace katana::inline v0::sandbox
