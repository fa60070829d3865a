// [runtime] of a Kata-compatible configuration.toml.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <katana/config/schema.hpp>

namespace katana::inline v0::config {

struct runtime_config {
  bool enable_debug = false;
  std::string name;             // runtime-rs: selects the tables below
  std::string hypervisor_name;  // "" = the only [hypervisor.*] table
  std::string agent_name = "kata";
  std::string internetworking_model = "tcfilter";
  bool disable_guest_seccomp = true;
  bool enable_vcpus_pinning = false;
  std::string guest_selinux_label;
  bool enable_tracing = false;
  std::string jaeger_endpoint;
  std::string jaeger_user;
  std::string jaeger_password;
  bool disable_new_netns = false;  // only with internetworking_model = "none"
  bool sandbox_cgroup_only = false;
  bool static_sandbox_resource_mgmt = false;
  std::vector<std::string> sandbox_bind_mounts;  // "/path" or "/path:ro|rw"
  std::string vfio_mode = "guest-kernel";
  bool disable_guest_empty_dir = true;
  std::string emptydir_mode = "shared-fs";
  std::vector<std::string> experimental;
  bool experimental_force_guest_pull = false;
  bool enable_pprof = false;
  std::uint32_t create_container_timeout = 60;  // seconds
  std::string dan_conf = "/run/kata-containers/dans";
  std::string pod_resource_api_sock;

  friend bool operator==(const runtime_config&, const runtime_config&) = default;
};

namespace detail {
inline constexpr std::string_view network_model_choices[] = {"tcfilter", "macvtap", "none"};
inline constexpr std::string_view vfio_mode_choices[] = {"guest-kernel", "vfio"};
inline constexpr std::string_view emptydir_choices[] = {"shared-fs", "block-encrypted"};
}  // namespace detail

// clang-format off
inline constexpr field<runtime_config> runtime_fields[] = {
  {.key = "enable_debug", .target = &runtime_config::enable_debug},
  {.key = "name", .target = &runtime_config::name},
  {.key = "hypervisor_name", .target = &runtime_config::hypervisor_name},
  {.key = "agent_name", .target = &runtime_config::agent_name},
  {.key = "internetworking_model", .target = &runtime_config::internetworking_model,
   .flags = annotatable, .choices = detail::network_model_choices},
  {.key = "disable_guest_seccomp", .target = &runtime_config::disable_guest_seccomp, .flags = annotatable},
  {.key = "enable_vcpus_pinning", .target = &runtime_config::enable_vcpus_pinning, .flags = annotatable},
  {.key = "guest_selinux_label", .target = &runtime_config::guest_selinux_label, .flags = annotatable},
  {.key = "enable_tracing", .target = &runtime_config::enable_tracing},
  {.key = "jaeger_endpoint", .target = &runtime_config::jaeger_endpoint},
  {.key = "jaeger_user", .target = &runtime_config::jaeger_user},
  {.key = "jaeger_password", .target = &runtime_config::jaeger_password},
  {.key = "disable_new_netns", .target = &runtime_config::disable_new_netns, .flags = annotatable},
  {.key = "sandbox_cgroup_only", .target = &runtime_config::sandbox_cgroup_only, .flags = annotatable},
  {.key = "static_sandbox_resource_mgmt", .target = &runtime_config::static_sandbox_resource_mgmt},
  {.key = "sandbox_bind_mounts", .target = &runtime_config::sandbox_bind_mounts, .flags = absolute_path},
  {.key = "vfio_mode", .target = &runtime_config::vfio_mode, .flags = annotatable,
   .choices = detail::vfio_mode_choices},
  {.key = "disable_guest_empty_dir", .target = &runtime_config::disable_guest_empty_dir},
  {.key = "emptydir_mode", .target = &runtime_config::emptydir_mode, .choices = detail::emptydir_choices},
  {.key = "experimental", .target = &runtime_config::experimental, .flags = annotatable | list_space},
  {.key = "experimental_force_guest_pull", .target = &runtime_config::experimental_force_guest_pull,
   .flags = annotatable},
  {.key = "enable_pprof", .target = &runtime_config::enable_pprof, .flags = annotatable},
  {.key = "create_container_timeout", .target = &runtime_config::create_container_timeout, .flags = annotatable},
  {.key = "dan_conf", .target = &runtime_config::dan_conf, .flags = absolute_path},
  {.key = "pod_resource_api_sock", .target = &runtime_config::pod_resource_api_sock, .flags = absolute_path},
};
// clang-format on

}  // namespace katana::inline v0::config
