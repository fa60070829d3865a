// [hypervisor.<name>] of a Kata-compatible configuration.toml: one aggregate for every
// hypervisor kind (qemu, clh, firecracker, stratovirt, remote, dragonball), with Kata's key
// names and code defaults, plus katana's additions `accelerator` and `kvm_probe_timeout_ms`.
// Sizes are MiB, timeouts as the key says. `hypervisor_fields` maps every key onto a member.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <katana/config/schema.hpp>

namespace katana::inline v0::config {

/// The hypervisor kinds a [hypervisor.<name>] table may name.
inline constexpr std::string_view hypervisor_kinds[] = {"qemu",       "clh",    "firecracker",
                                                        "stratovirt", "remote", "dragonball"};

/// The bit of field::kinds for a hypervisor kind; 0 for an unknown name.
constexpr unsigned hypervisor_kind_mask(std::string_view kind) noexcept {
  for (unsigned i = 0; i < std::size(hypervisor_kinds); ++i) {
    if (hypervisor_kinds[i] == kind) {
      return 1u << i;
    }
  }
  return 0;
}

struct hypervisor_config {
  // Assets
  std::string path;  // the VMM binary
  std::string kernel;
  std::string initrd;  // initrd and image are mutually exclusive
  std::string image;
  std::string rootfs_type = "ext4";
  std::string vm_rootfs_driver;  // runtime-rs: virtio-pmem, virtio-blk-pci, ...; "" = arch default
  std::string firmware;
  std::string firmware_volume;
  std::vector<std::string> pflashes;
  std::string kernel_params;  // user parameters: override same-name defaults
  std::string kernel_verity_params;
  std::string ctlpath;  // dragonball
  std::string jailer_path;
  // Machine
  std::string machine_type;  // "" = the arch's default (q35, virt, pseries, s390-ccw-virtio)
  std::string machine_accelerators;
  std::string cpu_features;
  std::string accelerator = "auto";  // katana: auto (KVM if it really works, else TCG), kvm, tcg
  std::uint32_t kvm_probe_timeout_ms = 2000;  // katana: bound of the KVM probe
  std::string seccompsandbox;
  std::string extra_monitor_socket;
  bool confidential_guest = false;
  bool sev_snp_guest = false;
  std::string snp_id_block;
  std::string snp_id_auth;
  std::uint64_t snp_guest_policy = 196608;
  std::uint32_t tdx_quote_generation_service_socket_port = 4050;
  // CPU and memory
  std::int32_t default_vcpus = 1;      // 0 -> 1, < 0 -> host CPUs, > host CPUs -> host CPUs
  std::uint32_t default_maxvcpus = 0;  // 0 -> host CPUs capped at the arch maximum
  double overhead_vcpus = 0;
  std::uint32_t default_memory = 2048;
  std::uint32_t default_maxmemory = 0;  // 0 -> host RAM
  std::uint32_t overhead_memory = 0;
  std::uint32_t memory_slots = 10;
  std::uint64_t memory_offset = 0;
  bool enable_virtio_mem = false;
  bool enable_mem_prealloc = false;
  bool enable_hugepages = false;
  bool reclaim_guest_freed_memory = false;
  std::string file_mem_backend;
  std::vector<std::string> valid_file_mem_backends;
  bool enable_guest_swap = false;
  // Devices
  std::uint32_t default_bridges = 1;  // at most 5
  std::string block_device_driver = "virtio-scsi";
  std::string block_device_aio = "io_uring";
  bool block_device_cache_set = false;
  bool block_device_cache_direct = false;
  bool block_device_cache_noflush = false;
  bool disable_block_device_use = true;
  bool disable_image_nvdimm = false;
  bool enable_iothreads = false;
  std::uint32_t indep_iothreads = 0;
  bool enable_vhost_user_store = false;
  std::string vhost_user_store_path = "/var/run/kata-containers/vhost-user";
  std::vector<std::string> valid_vhost_user_store_paths;
  std::uint32_t vhost_user_reconnect_timeout_sec = 0;
  bool enable_iommu = false;
  bool enable_iommu_platform = false;
  std::string hot_plug_vfio = "no-port";
  std::string cold_plug_vfio = "no-port";
  std::uint32_t pcie_root_port = 0;
  std::uint32_t pcie_switch_port = 0;
  bool disable_vhost_net = false;
  std::uint64_t rx_rate_limiter_max_rate = 0;
  std::uint64_t tx_rate_limiter_max_rate = 0;
  bool use_legacy_serial = false;
  std::string entropy_source = "/dev/urandom";
  std::vector<std::string> valid_entropy_sources;
  std::uint32_t queue_size = 0;  // dragonball
  std::uint32_t num_queues = 0;
  // Shared file system
  std::string shared_fs = "virtio-fs";
  std::string virtio_fs_daemon = "/usr/lib/qemu/virtiofsd";
  std::vector<std::string> valid_virtio_fs_daemon_paths;
  std::string virtio_fs_cache = "never";
  std::uint32_t virtio_fs_cache_size = 0;  // DAX window; 0 disables DAX
  std::uint32_t virtio_fs_queue_size = 1024;
  std::vector<std::string> virtio_fs_extra_args;
  std::uint32_t msize_9p = 8192;
  // Security, debugging, policy
  std::vector<std::string> valid_hypervisor_paths;
  std::vector<std::string> valid_jailer_paths;
  std::vector<std::string> enable_annotations;  // regexes matched against annotation suffixes
  bool enable_debug = false;
  bool disable_nesting_checks = false;
  bool disable_selinux = false;
  bool disable_guest_selinux = true;
  bool rootless = false;
  std::string guest_hook_path;
  std::string guest_memory_dump_path;
  bool guest_memory_dump_paging = false;
  std::uint32_t hypervisor_loglevel = 1;  // clh
  std::uint64_t net_rate_limiter_bw_max_rate = 0;
  std::uint64_t net_rate_limiter_bw_one_time_burst = 0;
  std::uint64_t net_rate_limiter_ops_max_rate = 0;
  std::uint64_t net_rate_limiter_ops_one_time_burst = 0;
  std::uint64_t disk_rate_limiter_bw_max_rate = 0;
  std::uint64_t disk_rate_limiter_bw_one_time_burst = 0;
  std::uint64_t disk_rate_limiter_ops_max_rate = 0;
  std::uint64_t disk_rate_limiter_ops_one_time_burst = 0;

  friend bool operator==(const hypervisor_config&, const hypervisor_config&) = default;
};

/// Code defaults of a kind that differ from QEMU's (Kata's per-hypervisor Makefile values).
inline hypervisor_config hypervisor_defaults(std::string_view kind) {
  hypervisor_config h;
  if (kind == "clh") {
    h.block_device_driver = "virtio-blk";
    h.disable_image_nvdimm = true;
  } else if (kind == "firecracker" || kind == "stratovirt") {
    h.block_device_driver = "virtio-mmio";
  } else if (kind == "dragonball") {
    h.block_device_driver = "virtio-blk-pci";
    h.vm_rootfs_driver = "virtio-blk-pci";
    h.shared_fs = "inline-virtio-fs";
    h.default_bridges = 0;
  } else if (kind == "remote") {
    h.shared_fs = "none";
  }
  return h;
}

namespace detail {
inline constexpr std::string_view shared_fs_choices[] = {"virtio-fs", "virtio-fs-nydus",
                                                         "virtio-9p", "inline-virtio-fs", "none"};
inline constexpr std::string_view block_driver_choices[] = {
    "virtio-scsi",    "virtio-blk",     "virtio-mmio",     "nvdimm",
    "virtio-blk-ccw", "virtio-blk-pci", "virtio-blk-mmio", "virtio-pmem"};
inline constexpr std::string_view rootfs_driver_choices[] = {
    "", "virtio-pmem", "virtio-blk-pci", "virtio-blk-mmio", "virtio-blk-ccw", "nvdimm"};
inline constexpr std::string_view aio_choices[] = {"threads", "native", "io_uring"};
inline constexpr std::string_view cache_choices[] = {"never", "metadata", "auto", "always"};
inline constexpr std::string_view rootfs_type_choices[] = {"ext4", "xfs", "erofs"};
inline constexpr std::string_view vfio_port_choices[] = {"no-port", "bridge-port", "root-port",
                                                         "switch-port"};
inline constexpr std::string_view accelerator_choices[] = {"auto", "kvm", "tcg"};
inline constexpr std::string_view monitor_choices[] = {"", "hmp", "qmp", "qmp-pretty"};
}  // namespace detail

// clang-format off
inline constexpr field<hypervisor_config> hypervisor_fields[] = {
  {.key = "path", .target = &hypervisor_config::path, .flags = absolute_path | annotatable,
   .valid_paths = &hypervisor_config::valid_hypervisor_paths, .valid_paths_key = "valid_hypervisor_paths"},
  {.key = "kernel", .target = &hypervisor_config::kernel, .flags = absolute_path | annotatable},
  {.key = "initrd", .target = &hypervisor_config::initrd, .flags = absolute_path | annotatable},
  {.key = "image", .target = &hypervisor_config::image, .flags = absolute_path | annotatable},
  {.key = "rootfs_type", .target = &hypervisor_config::rootfs_type, .choices = detail::rootfs_type_choices},
  {.key = "vm_rootfs_driver", .target = &hypervisor_config::vm_rootfs_driver, .choices = detail::rootfs_driver_choices},
  {.key = "firmware", .target = &hypervisor_config::firmware, .flags = absolute_path | annotatable},
  {.key = "firmware_volume", .target = &hypervisor_config::firmware_volume, .flags = absolute_path | annotatable},
  {.key = "pflashes", .target = &hypervisor_config::pflashes, .flags = absolute_path, .kinds = hv_qemu},
  {.key = "kernel_params", .target = &hypervisor_config::kernel_params, .flags = annotatable | appends},
  {.key = "kernel_verity_params", .target = &hypervisor_config::kernel_verity_params, .flags = annotatable},
  {.key = "ctlpath", .target = &hypervisor_config::ctlpath, .flags = absolute_path, .kinds = hv_dragonball},
  {.key = "jailer_path", .target = &hypervisor_config::jailer_path, .flags = absolute_path | annotatable,
   .valid_paths = &hypervisor_config::valid_jailer_paths, .valid_paths_key = "valid_jailer_paths",
   .kinds = hv_firecracker},
  {.key = "valid_jailer_paths", .target = &hypervisor_config::valid_jailer_paths, .kinds = hv_firecracker},
  {.key = "machine_type", .target = &hypervisor_config::machine_type, .flags = annotatable, .kinds = hv_qemu | hv_stratovirt},
  {.key = "machine_accelerators", .target = &hypervisor_config::machine_accelerators, .flags = annotatable, .kinds = hv_qemu},
  {.key = "cpu_features", .target = &hypervisor_config::cpu_features, .flags = annotatable, .kinds = hv_qemu},
  {.key = "accelerator", .target = &hypervisor_config::accelerator, .flags = annotatable,
   .choices = detail::accelerator_choices, .kinds = hv_qemu},
  {.key = "kvm_probe_timeout_ms", .target = &hypervisor_config::kvm_probe_timeout_ms, .kinds = hv_qemu},
  {.key = "seccompsandbox", .target = &hypervisor_config::seccompsandbox, .kinds = hv_qemu},
  {.key = "extra_monitor_socket", .target = &hypervisor_config::extra_monitor_socket,
   .choices = detail::monitor_choices, .kinds = hv_qemu},
  {.key = "confidential_guest", .target = &hypervisor_config::confidential_guest},
  {.key = "sev_snp_guest", .target = &hypervisor_config::sev_snp_guest, .kinds = hv_qemu},
  {.key = "snp_id_block", .target = &hypervisor_config::snp_id_block, .kinds = hv_qemu},
  {.key = "snp_id_auth", .target = &hypervisor_config::snp_id_auth, .kinds = hv_qemu},
  {.key = "snp_guest_policy", .target = &hypervisor_config::snp_guest_policy, .kinds = hv_qemu},
  {.key = "tdx_quote_generation_service_socket_port",
   .target = &hypervisor_config::tdx_quote_generation_service_socket_port, .kinds = hv_qemu},
  {.key = "default_vcpus", .target = &hypervisor_config::default_vcpus, .flags = round_up_fraction | annotatable},
  {.key = "default_maxvcpus", .target = &hypervisor_config::default_maxvcpus, .flags = annotatable,
   .annotation = "default_max_vcpus"},
  {.key = "overhead_vcpus", .target = &hypervisor_config::overhead_vcpus, .kinds = hv_dragonball},
  {.key = "default_memory", .target = &hypervisor_config::default_memory, .flags = annotatable},
  {.key = "default_maxmemory", .target = &hypervisor_config::default_maxmemory, .flags = annotatable,
   .annotation = "default_max_memory"},
  {.key = "overhead_memory", .target = &hypervisor_config::overhead_memory, .kinds = hv_dragonball},
  {.key = "memory_slots", .target = &hypervisor_config::memory_slots, .flags = annotatable},
  {.key = "memory_offset", .target = &hypervisor_config::memory_offset, .flags = annotatable},
  {.key = "enable_virtio_mem", .target = &hypervisor_config::enable_virtio_mem, .flags = annotatable},
  {.key = "enable_mem_prealloc", .target = &hypervisor_config::enable_mem_prealloc, .flags = annotatable},
  {.key = "enable_hugepages", .target = &hypervisor_config::enable_hugepages, .flags = annotatable},
  {.key = "reclaim_guest_freed_memory", .target = &hypervisor_config::reclaim_guest_freed_memory},
  {.key = "file_mem_backend", .target = &hypervisor_config::file_mem_backend, .flags = absolute_path | annotatable,
   .valid_paths = &hypervisor_config::valid_file_mem_backends, .valid_paths_key = "valid_file_mem_backends"},
  {.key = "valid_file_mem_backends", .target = &hypervisor_config::valid_file_mem_backends},
  {.key = "enable_guest_swap", .target = &hypervisor_config::enable_guest_swap, .flags = annotatable},
  {.key = "default_bridges", .target = &hypervisor_config::default_bridges, .flags = annotatable},
  {.key = "block_device_driver", .target = &hypervisor_config::block_device_driver, .flags = annotatable,
   .choices = detail::block_driver_choices},
  {.key = "block_device_aio", .target = &hypervisor_config::block_device_aio, .flags = annotatable,
   .choices = detail::aio_choices},
  {.key = "block_device_cache_set", .target = &hypervisor_config::block_device_cache_set, .flags = annotatable},
  {.key = "block_device_cache_direct", .target = &hypervisor_config::block_device_cache_direct, .flags = annotatable},
  {.key = "block_device_cache_noflush", .target = &hypervisor_config::block_device_cache_noflush, .flags = annotatable},
  {.key = "disable_block_device_use", .target = &hypervisor_config::disable_block_device_use, .flags = annotatable},
  {.key = "disable_image_nvdimm", .target = &hypervisor_config::disable_image_nvdimm, .flags = annotatable},
  {.key = "enable_iothreads", .target = &hypervisor_config::enable_iothreads, .flags = annotatable},
  {.key = "indep_iothreads", .target = &hypervisor_config::indep_iothreads},
  {.key = "enable_vhost_user_store", .target = &hypervisor_config::enable_vhost_user_store, .flags = annotatable},
  {.key = "vhost_user_store_path", .target = &hypervisor_config::vhost_user_store_path, .flags = absolute_path | annotatable,
   .valid_paths = &hypervisor_config::valid_vhost_user_store_paths,
   .valid_paths_key = "valid_vhost_user_store_paths"},
  {.key = "valid_vhost_user_store_paths", .target = &hypervisor_config::valid_vhost_user_store_paths},
  {.key = "vhost_user_reconnect_timeout_sec", .target = &hypervisor_config::vhost_user_reconnect_timeout_sec},
  {.key = "enable_iommu", .target = &hypervisor_config::enable_iommu, .flags = annotatable},
  {.key = "enable_iommu_platform", .target = &hypervisor_config::enable_iommu_platform, .flags = annotatable},
  {.key = "hot_plug_vfio", .target = &hypervisor_config::hot_plug_vfio, .flags = annotatable,
   .choices = detail::vfio_port_choices},
  {.key = "cold_plug_vfio", .target = &hypervisor_config::cold_plug_vfio, .flags = annotatable,
   .choices = detail::vfio_port_choices},
  {.key = "pcie_root_port", .target = &hypervisor_config::pcie_root_port, .flags = annotatable},
  {.key = "pcie_switch_port", .target = &hypervisor_config::pcie_switch_port},
  {.key = "disable_vhost_net", .target = &hypervisor_config::disable_vhost_net, .flags = annotatable},
  {.key = "rx_rate_limiter_max_rate", .target = &hypervisor_config::rx_rate_limiter_max_rate, .flags = annotatable},
  {.key = "tx_rate_limiter_max_rate", .target = &hypervisor_config::tx_rate_limiter_max_rate, .flags = annotatable},
  {.key = "use_legacy_serial", .target = &hypervisor_config::use_legacy_serial, .flags = annotatable},
  {.key = "entropy_source", .target = &hypervisor_config::entropy_source, .flags = absolute_path | annotatable,
   .valid_paths = &hypervisor_config::valid_entropy_sources, .valid_paths_key = "valid_entropy_sources"},
  {.key = "valid_entropy_sources", .target = &hypervisor_config::valid_entropy_sources},
  {.key = "queue_size", .target = &hypervisor_config::queue_size, .kinds = hv_dragonball},
  {.key = "num_queues", .target = &hypervisor_config::num_queues, .kinds = hv_dragonball},
  {.key = "shared_fs", .target = &hypervisor_config::shared_fs, .flags = annotatable,
   .choices = detail::shared_fs_choices},
  {.key = "virtio_fs_daemon", .target = &hypervisor_config::virtio_fs_daemon, .flags = absolute_path | annotatable,
   .valid_paths = &hypervisor_config::valid_virtio_fs_daemon_paths,
   .valid_paths_key = "valid_virtio_fs_daemon_paths"},
  {.key = "valid_virtio_fs_daemon_paths", .target = &hypervisor_config::valid_virtio_fs_daemon_paths},
  {.key = "virtio_fs_cache", .target = &hypervisor_config::virtio_fs_cache, .flags = annotatable,
   .choices = detail::cache_choices},
  {.key = "virtio_fs_cache_size", .target = &hypervisor_config::virtio_fs_cache_size, .flags = annotatable},
  {.key = "virtio_fs_queue_size", .target = &hypervisor_config::virtio_fs_queue_size},
  {.key = "virtio_fs_extra_args", .target = &hypervisor_config::virtio_fs_extra_args,
   .flags = annotatable | list_json},
  {.key = "msize_9p", .target = &hypervisor_config::msize_9p, .flags = annotatable,
   .kinds = hv_qemu | hv_stratovirt},
  {.key = "valid_hypervisor_paths", .target = &hypervisor_config::valid_hypervisor_paths},
  {.key = "enable_annotations", .target = &hypervisor_config::enable_annotations},
  {.key = "enable_debug", .target = &hypervisor_config::enable_debug},
  {.key = "disable_nesting_checks", .target = &hypervisor_config::disable_nesting_checks},
  {.key = "disable_selinux", .target = &hypervisor_config::disable_selinux},
  {.key = "disable_guest_selinux", .target = &hypervisor_config::disable_guest_selinux},
  {.key = "rootless", .target = &hypervisor_config::rootless, .flags = annotatable},
  {.key = "guest_hook_path", .target = &hypervisor_config::guest_hook_path, .flags = absolute_path | annotatable},
  {.key = "guest_memory_dump_path", .target = &hypervisor_config::guest_memory_dump_path, .flags = absolute_path},
  {.key = "guest_memory_dump_paging", .target = &hypervisor_config::guest_memory_dump_paging},
  {.key = "hypervisor_loglevel", .target = &hypervisor_config::hypervisor_loglevel, .kinds = hv_clh},
  {.key = "net_rate_limiter_bw_max_rate", .target = &hypervisor_config::net_rate_limiter_bw_max_rate, .kinds = hv_clh},
  {.key = "net_rate_limiter_bw_one_time_burst", .target = &hypervisor_config::net_rate_limiter_bw_one_time_burst,
   .kinds = hv_clh},
  {.key = "net_rate_limiter_ops_max_rate", .target = &hypervisor_config::net_rate_limiter_ops_max_rate, .kinds = hv_clh},
  {.key = "net_rate_limiter_ops_one_time_burst", .target = &hypervisor_config::net_rate_limiter_ops_one_time_burst,
   .kinds = hv_clh},
  {.key = "disk_rate_limiter_bw_max_rate", .target = &hypervisor_config::disk_rate_limiter_bw_max_rate, .kinds = hv_clh},
  {.key = "disk_rate_limiter_bw_one_time_burst", .target = &hypervisor_config::disk_rate_limiter_bw_one_time_burst,
   .kinds = hv_clh},
  {.key = "disk_rate_limiter_ops_max_rate", .target = &hypervisor_config::disk_rate_limiter_ops_max_rate, .kinds = hv_clh},
  {.key = "disk_rate_limiter_ops_one_time_burst", .target = &hypervisor_config::disk_rate_limiter_ops_one_time_burst,
   .kinds = hv_clh},
};
// clang-format on

}  // namespace katana::inline v0::config
