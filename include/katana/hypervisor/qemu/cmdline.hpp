// The QEMU command line of a sandbox VM: a pure function of the (adjusted) hypervisor and agent
// configuration, an architecture table and the sandbox's paths. No I/O, no process; launching
// and QMP are elsewhere.
//
//   auto params = qemu::sandbox_params::in_dir("sb1", "/run/katana/sb1");
//   params.accel = qemu::accelerator::tcg;
//   params.host_tsc_khz = hypervisor::host_tsc_khz();
//   auto argv = KATANA_TRY(qemu::command_line(*cfg.hypervisor(), cfg.agent,
//                                             arch::traits<arch::host>::value, params));
//
// Devices, in order: console, PCI bridges, vIOMMU, entropy, agent channel (virtio-serial port
// agent.channel.0 or vhost-vsock), SCSI controller, shared file system (9p or vhost-user-fs with
// shared memfd guest memory), root file system image (NVDIMM or virtio-blk). Device names follow
// the machine's virtio transport: virtio-x-pci, virtio-x-device (virtio-mmio), virtio-x-ccw.
#pragma once

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <katana/arch/arch.hpp>
#include <katana/config/agent.hpp>
#include <katana/config/hypervisor.hpp>
#include <katana/core/error.hpp>
#include <katana/core/str_cat.hpp>
#include <katana/hypervisor/qemu/kernel_params.hpp>

namespace katana::inline v0::hypervisor::qemu {

/// The mount tag the agent mounts the shared directory by (Kata's).
inline constexpr std::string_view shared_fs_tag = "kataShared";

/// Where a sandbox's VM finds its host-side endpoints.
struct sandbox_params {
  std::string id;
  std::filesystem::path dir;  // the sandbox directory
  std::filesystem::path qmp_socket;
  std::filesystem::path console_log;
  agent_channel channel = agent_channel::virtio_serial;
  std::filesystem::path agent_socket;      // virtio-serial: QEMU listens here, the host connects
  std::uint32_t vsock_cid = 0;             // vsock: the guest CID (>= 3)
  std::filesystem::path shared_dir;        // virtio-9p: the directory shared with the guest
  std::filesystem::path virtiofsd_socket;  // virtio-fs: the daemon's vhost-user socket
  accelerator accel = accelerator::tcg;    // resolved: the probe has run
  std::uint32_t host_tsc_khz = 0;          // for tsc_early_khz under TCG (x86_64)
  std::uint64_t image_size_bytes = 0;      // an NVDIMM image's size (its memory backend size)
  /// VM templating: the guest's memory is this file. The template maps it shared (its memory
  /// ends up there); a clone maps it private and waits for the template's device state.
  std::filesystem::path template_memory;
  bool template_clone = false;

  /// The standard layout of a sandbox directory: qmp.sock, console.log, agent.sock, shared/,
  /// virtiofsd.sock.
  static sandbox_params in_dir(std::string id, const std::filesystem::path& dir) {
    sandbox_params p;
    p.id = std::move(id);
    p.dir = dir;
    p.qmp_socket = dir / "qmp.sock";
    p.console_log = dir / "console.log";
    p.agent_socket = dir / "agent.sock";
    p.shared_dir = dir / "shared";
    p.virtiofsd_socket = dir / "virtiofsd.sock";
    return p;
  }
};

namespace detail {

inline unexpected<error> refuse(std::string_view key, std::string text) {
  return fail(errc::invalid_config, str_cat("qemu: ", key, ": ", text));
}

class argv_builder {
 public:
  explicit argv_builder(const arch::machine& m) : machine_(m) {}

  void add(std::string_view opt) { argv_.emplace_back(opt); }
  void add(std::string_view opt, std::string value) {
    argv_.emplace_back(opt);
    argv_.push_back(std::move(value));
  }
  /// -device <name><suffix>,<props>[,romfile=][,devno=fe.0.NNNN]
  void device(std::string_view name, std::string_view props = {}) {
    std::string d = str_cat(name, arch::device_suffix(machine_.transport));
    if (!props.empty()) {
      d += ',';
      d += props;
    }
    finish_device(d);
  }
  /// A device whose name carries no transport suffix but sits on the machine's bus.
  void plain_device(std::string d) { add("-device", std::move(d)); }

  std::vector<std::string> take() && { return std::move(argv_); }

 private:
  void finish_device(std::string& d) {
    if (machine_.transport == arch::virtio_transport::pci) {
      d += ",romfile=";  // no option ROM files needed
    } else if (machine_.transport == arch::virtio_transport::ccw) {
      static constexpr char hex[] = "0123456789abcdef";
      const unsigned n = ++devno_;
      d += str_cat(",devno=fe.0.", hex[(n >> 12) & 15], hex[(n >> 8) & 15], hex[(n >> 4) & 15],
                   hex[n & 15]);
    }
    add("-device", std::move(d));
  }

  const arch::machine& machine_;
  std::vector<std::string> argv_;
  unsigned devno_ = 0;
};

inline std::string comma_join(std::initializer_list<std::string_view> parts) {
  std::string out;
  for (const auto p : parts) {
    if (p.empty()) {
      continue;
    }
    if (!out.empty()) {
      out += ',';
    }
    out += p;
  }
  return out;
}

}  // namespace detail

/// The complete argv (argv[0] is the configured QEMU binary). Expects a configuration that
/// config::adjust has seen (vCPUs >= 1, machine type set; an empty one means the arch default).
inline result<std::vector<std::string>> command_line(const config::hypervisor_config& h,
                                                     const config::agent_config& agent,
                                                     const arch::description& a,
                                                     const sandbox_params& p) {
  using detail::refuse;
  const std::string_view machine_type = h.machine_type.empty() ? a.default_machine : h.machine_type;
  const auto* m = a.find_machine(machine_type);
  if (m == nullptr) {
    return refuse("machine_type", str_cat("\"", machine_type, "\" is not a ", a.name, " machine"));
  }
  if (h.path.empty() || h.kernel.empty()) {
    return refuse("path", "the QEMU binary and the kernel must be set");
  }
  if (h.image.empty() == h.initrd.empty()) {
    return refuse("image", "exactly one of image and initrd must be set");
  }
  if (h.enable_iommu && !m->iommu) {
    return refuse("enable_iommu", str_cat(a.name, " ", m->type, " does not support a vIOMMU"));
  }
  if (h.confidential_guest || h.enable_virtio_mem) {
    return fail(errc::unsupported, "qemu: confidential guests and virtio-mem are not supported");
  }
  if (p.channel == agent_channel::vsock && p.vsock_cid < 3) {
    return refuse("vsock", str_cat("guest CID ", p.vsock_cid, " is reserved"));
  }
  const bool virtio_fs = h.shared_fs == "virtio-fs";
  const bool virtio_9p = h.shared_fs == "virtio-9p";
  if (!virtio_fs && !virtio_9p && h.shared_fs != "none") {
    return fail(errc::unsupported,
                str_cat("qemu: shared_fs \"", h.shared_fs, "\" is not supported"));
  }
  if (virtio_fs && p.virtiofsd_socket.empty()) {
    return refuse("shared_fs", "virtio-fs needs the daemon's socket");
  }
  if (virtio_9p && p.shared_dir.empty()) {
    return refuse("shared_fs", "virtio-9p needs the shared directory");
  }
  const auto image = choose_image_attachment(h, a, *m);
  if (image == image_attachment::nvdimm && p.image_size_bytes == 0) {
    return refuse("image", "an NVDIMM image needs its size");
  }

  const std::uint64_t mem = h.default_memory;
  const bool templated = !p.template_memory.empty();
  if (templated && (virtio_fs || h.enable_hugepages || !h.file_mem_backend.empty())) {
    return refuse("factory.enable_template",
                  "a VM template cannot be combined with virtio-fs, hugepages or "
                  "file_mem_backend (they need the guest memory shared)");
  }
  const bool shared_memory =
      templated || virtio_fs || h.enable_hugepages || !h.file_mem_backend.empty();
  const bool kvm = p.accel == accelerator::kvm;

  detail::argv_builder b(*m);
  b.add(h.path);
  b.add("-name", str_cat("sandbox-", p.id));
  b.add("-machine",
        detail::comma_join({m->type, kvm ? "accel=kvm" : "accel=tcg", m->options,
                            kvm ? m->kvm_options : m->tcg_options, h.machine_accelerators,
                            image == image_attachment::nvdimm ? "nvdimm=on" : "",
                            shared_memory ? "memory-backend=dimm1" : "",
                            h.enable_iommu && kvm ? "kernel_irqchip=split" : ""}));
  for (const auto g : m->globals) {
    b.add("-global", std::string(g));
  }
  b.add("-cpu", detail::comma_join({kvm ? a.cpu_model_kvm : a.cpu_model_tcg, h.cpu_features}));
  b.add("-qmp", str_cat("unix:", p.qmp_socket.native(), ",server=on,wait=off"));

  // Memory and vCPUs; hot-plug headroom only where the machine can hot-plug.
  const std::uint32_t vcpus = h.default_vcpus > 0 ? static_cast<std::uint32_t>(h.default_vcpus) : 1;
  const std::uint32_t max_vcpus = std::max(vcpus, h.default_maxvcpus);
  if (m->hotplug) {
    const std::uint64_t maxmem =
        std::max<std::uint64_t>(h.default_maxmemory, mem) + h.memory_offset + a.maxmem_reserve_mib;
    b.add("-m", str_cat(mem, "M,slots=", h.memory_slots, ",maxmem=", maxmem, "M"));
    b.add("-smp", str_cat(vcpus, ",cores=1,threads=1,sockets=", max_vcpus, ",maxcpus=", max_vcpus));
  } else {
    b.add("-m", str_cat(mem, "M"));
    b.add("-smp", str_cat(vcpus));
  }
  if (shared_memory) {
    const std::string prealloc = h.enable_mem_prealloc ? ",prealloc=on" : "";
    if (templated) {
      b.add("-object", str_cat("memory-backend-file,id=dimm1,size=", mem,
                               "M,mem-path=", p.template_memory.native(),
                               p.template_clone ? ",share=off" : ",share=on"));
    } else if (!h.file_mem_backend.empty()) {
      b.add("-object", str_cat("memory-backend-file,id=dimm1,size=", mem,
                               "M,mem-path=", h.file_mem_backend, ",share=on", prealloc));
    } else {
      b.add("-object", str_cat("memory-backend-memfd,id=dimm1,size=", mem, "M,share=on",
                               h.enable_hugepages ? ",hugetlb=on" : "", prealloc));
    }
  } else if (h.enable_mem_prealloc) {
    b.add("-mem-prealloc");
  }
  if (p.template_clone) {
    b.add("-incoming", "defer");
  }
  if (!h.seccompsandbox.empty()) {
    b.add("-sandbox", h.seccompsandbox);
  }
  b.add("-nodefaults");
  b.add("-no-user-config");
  b.add("-nographic");
  b.add("-no-reboot");
  if (!h.firmware.empty()) {
    b.add("-bios", h.firmware);
  }
  for (const auto& flash : h.pflashes) {
    b.add("-drive", str_cat("if=pflash,format=raw,file=", flash));
  }
  b.add("-kernel", h.kernel);
  if (!h.initrd.empty()) {
    b.add("-initrd", h.initrd);
  }
  b.add("-append", join_kernel_params(kernel_params({.hypervisor = h,
                                                     .agent = agent,
                                                     .arch = a,
                                                     .machine = *m,
                                                     .accel = p.accel,
                                                     .channel = p.channel,
                                                     .host_tsc_khz = p.host_tsc_khz})));

  // Console: a log file in the sandbox directory.
  b.add("-chardev", str_cat("file,id=console0,path=", p.console_log.native()));
  if (a.console == arch::console_kind::sclp) {
    b.plain_device("sclpconsole,chardev=console0");
  } else {
    b.add("-serial", "chardev:console0");
  }

  if (m->pci_bridges) {
    for (std::uint32_t i = 0; i < std::min<std::uint32_t>(h.default_bridges, 5); ++i) {
      b.plain_device(str_cat("pci-bridge,bus=", m->root_bus, ",id=pci-bridge-", i,
                             ",chassis_nr=", i + 1, ",shpc=off,addr=", i + 2,
                             ",io-reserve=4k,mem-reserve=1m,pref64-reserve=1m"));
    }
  }
  if (h.enable_iommu) {
    b.plain_device("intel-iommu,intremap=on,device-iotlb=on,caching-mode=on");
  }
  if (!h.entropy_source.empty()) {
    b.add("-object", str_cat("rng-random,id=rng0,filename=", h.entropy_source));
    b.device("virtio-rng", "rng=rng0");
  }

  // The agent channel.
  if (p.channel == agent_channel::virtio_serial) {
    // One port is used; the default 31 makes the guest set up 64 virtqueues at probe.
    b.device("virtio-serial", "id=serial0,max_ports=2");
    b.add("-chardev",
          str_cat("socket,id=charch0,path=", p.agent_socket.native(), ",server=on,wait=off"));
    b.plain_device(
        str_cat("virtserialport,bus=serial0.0,chardev=charch0,id=channel0,name=", agent_port_name));
  } else {
    b.device("vhost-vsock", str_cat("id=vsock-", p.vsock_cid, ",guest-cid=", p.vsock_cid));
  }

  if (h.block_device_driver == "virtio-scsi") {
    b.device("virtio-scsi", "id=scsi0");
  }

  // The shared file system.
  if (virtio_9p) {
    b.add("-fsdev", str_cat("local,id=extra-9p-", shared_fs_tag, ",path=", p.shared_dir.native(),
                            ",security_model=none,multidevs=remap"));
    b.device("virtio-9p", str_cat("fsdev=extra-9p-", shared_fs_tag, ",mount_tag=", shared_fs_tag));
  } else if (virtio_fs) {
    b.add("-chardev", str_cat("socket,id=char-virtiofs,path=", p.virtiofsd_socket.native()));
    b.device(
        "vhost-user-fs",
        str_cat("chardev=char-virtiofs,tag=", shared_fs_tag, ",queue-size=", h.virtio_fs_queue_size,
                h.virtio_fs_cache_size != 0 ? str_cat(",cache-size=", h.virtio_fs_cache_size, "M")
                                            : std::string()));
  }

  // The root file system image.
  if (image == image_attachment::nvdimm) {
    b.add("-object", str_cat("memory-backend-file,id=mem0,mem-path=", h.image,
                             ",size=", p.image_size_bytes, ",readonly=on"));
    b.plain_device("nvdimm,id=nv0,memdev=mem0,unarmed=on");
  } else if (image == image_attachment::virtio_blk) {
    b.add("-drive", str_cat("id=image-0,file=", h.image, ",aio=", h.block_device_aio,
                            ",format=raw,if=none,readonly=on"));
    b.device("virtio-blk", "drive=image-0");
  }
  return std::move(b).take();
}

/// The same for a compile-time architecture: command_line<arch::x86_64>(h, agent, params).
template <class Arch>
result<std::vector<std::string>> command_line(const config::hypervisor_config& h,
                                              const config::agent_config& agent,
                                              const sandbox_params& p) {
  return command_line(h, agent, arch::traits<Arch>::value, p);
}

}  // namespace katana::inline v0::hypervisor::qemu
