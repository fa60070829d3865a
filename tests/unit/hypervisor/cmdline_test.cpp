// Golden QEMU command lines: the complete argv for every architecture and both x86_64 machine
// types. The x86_64 microvm and q35 lines were booted by hand under TCG (Debian's 6.1 kernel as
// an uncompressed vmlinux): the agent port, 9p and virtio-fs all showed up in the guest.
#include <algorithm>
#include <string>
#include <vector>

#include <katana/config/load.hpp>
#include <katana/config/validate.hpp>
#include <katana/hypervisor/host.hpp>
#include <katana/hypervisor/qemu/cmdline.hpp>

#include "catch.hpp"

namespace arch = katana::arch;
namespace config = katana::config;
namespace qemu = katana::hypervisor::qemu;
using katana::errc;
using argv_t = std::vector<std::string>;

namespace {

config::host_info host_of(const arch::description& a, std::uint32_t cpus, std::uint64_t mib) {
  return {.cpus = cpus,
          .memory_bytes = mib << 20,
          .arch = std::string(a.name),
          .limits = katana::hypervisor::limits_of(a)};
}

// A configuration the way the runtime gets it: parsed, adjusted to the host, validated.
config::configuration prepared(std::string_view toml, const config::host_info& host) {
  config::warnings notes;
  auto cfg = config::parse(toml, "test.toml", notes);
  REQUIRE(cfg);
  REQUIRE(config::adjust(*cfg, host, notes));
  auto st = config::validate(*cfg, host);
  INFO((st ? std::string() : st.error().message()));
  REQUIRE(st);
  return *cfg;
}

argv_t build(const config::configuration& cfg,
             const arch::description& a,
             const qemu::sandbox_params& p) {
  auto argv = qemu::command_line(*cfg.hypervisor(), cfg.agent, a, p);
  INFO((argv ? std::string() : argv.error().message()));
  REQUIRE(argv);
  return *argv;
}

qemu::sandbox_params params(qemu::accelerator accel) {
  auto p = qemu::sandbox_params::in_dir("sb1", "/run/katana/sb1");
  p.accel = accel;
  p.host_tsc_khz = 2596138;
  return p;
}

const std::string pci_bridge0 =
    "pci-bridge,bus=pcie.0,id=pci-bridge-0,chassis_nr=1,shpc=off,addr=2,io-reserve=4k,"
    "mem-reserve=1m,pref64-reserve=1m";

}  // namespace

TEST_CASE("x86_64 microvm: the installed defaults under TCG", "[hypervisor][cmdline]") {
  const auto& x = arch::traits<arch::x86_64>::value;
  const auto cfg = prepared(config::default_configuration_toml, host_of(x, 2, 24576));
  CHECK(build(cfg, x, params(qemu::accelerator::tcg)) ==
        argv_t{"/usr/bin/qemu-system-x86_64",
               "-name",
               "sandbox-sb1",
               "-machine",
               "microvm,accel=tcg,x-option-roms=off",
               "-global",
               "virtio-mmio.force-legacy=false",
               "-cpu",
               "max,pmu=off",
               "-qmp",
               "unix:/run/katana/sb1/qmp.sock,server=on,wait=off",
               "-m",
               "2048M",
               "-smp",
               "1",
               "-nodefaults",
               "-no-user-config",
               "-nographic",
               "-no-reboot",
               "-kernel",
               "/usr/share/katana/vmlinux",
               "-initrd",
               "/usr/share/katana/katana-initrd.img",
               "-append",
               "tsc=reliable no_timer_check rcupdate.rcu_expedited=1 i8042.direct=1 "
               "i8042.dumbkbd=1 i8042.nopnp=1 i8042.noaux=1 noreplace-smp reboot=k "
               "cryptomgr.notests net.ifnames=0 pci=lastbus=0 console=ttyS0 quiet panic=1 "
               "tsc_early_khz=2596138 agent.server_addr=serial://agent.channel.0 "
               "cgroup_no_v1=all systemd.unified_cgroup_hierarchy=1 init_on_alloc=0",
               "-chardev",
               "file,id=console0,path=/run/katana/sb1/console.log",
               "-serial",
               "chardev:console0",
               "-object",
               "rng-random,id=rng0,filename=/dev/urandom",
               "-device",
               "virtio-rng-device,rng=rng0",
               "-device",
               "virtio-serial-device,id=serial0,max_ports=2",
               "-chardev",
               "socket,id=charch0,path=/run/katana/sb1/agent.sock,server=on,wait=off",
               "-device",
               "virtserialport,bus=serial0.0,chardev=charch0,id=channel0,name=agent.channel.0",
               "-fsdev",
               "local,id=extra-9p-kataShared,path=/run/katana/sb1/shared,security_model=none,"
               "multidevs=remap",
               "-device",
               "virtio-9p-device,fsdev=extra-9p-kataShared,mount_tag=kataShared"});
}

TEST_CASE("x86_64 q35 with KVM, virtio-fs and bridges", "[hypervisor][cmdline]") {
  const auto& x = arch::traits<arch::x86_64>::value;
  const auto cfg = prepared(R"([hypervisor.qemu]
path = "/usr/bin/qemu-system-x86_64"
kernel = "/k"
initrd = "/i"
machine_type = "q35"
cpu_features = "pmu=off"
default_vcpus = 2
default_maxvcpus = 4
default_memory = 1024
default_maxmemory = 4096
default_bridges = 2
shared_fs = "virtio-fs"
virtio_fs_cache_size = 512
[agent.kata]
enable_debug = true
)",
                            host_of(x, 8, 16384));
  CHECK(build(cfg, x, params(qemu::accelerator::kvm)) ==
        argv_t{"/usr/bin/qemu-system-x86_64",
               "-name",
               "sandbox-sb1",
               "-machine",
               "q35,accel=kvm,memory-backend=dimm1",
               "-cpu",
               "host,pmu=off",
               "-qmp",
               "unix:/run/katana/sb1/qmp.sock,server=on,wait=off",
               "-m",
               "1024M,slots=10,maxmem=5120M",
               "-smp",
               "2,cores=1,threads=1,sockets=4,maxcpus=4",
               "-object",
               "memory-backend-memfd,id=dimm1,size=1024M,share=on",
               "-nodefaults",
               "-no-user-config",
               "-nographic",
               "-no-reboot",
               "-kernel",
               "/k",
               "-initrd",
               "/i",
               "-append",
               "tsc=reliable no_timer_check rcupdate.rcu_expedited=1 i8042.direct=1 "
               "i8042.dumbkbd=1 i8042.nopnp=1 i8042.noaux=1 noreplace-smp reboot=k "
               "cryptomgr.notests net.ifnames=0 pci=lastbus=0 console=ttyS0 quiet panic=1 "
               "agent.server_addr=serial://agent.channel.0 agent.log=debug",
               "-chardev",
               "file,id=console0,path=/run/katana/sb1/console.log",
               "-serial",
               "chardev:console0",
               "-device",
               pci_bridge0,
               "-device",
               "pci-bridge,bus=pcie.0,id=pci-bridge-1,chassis_nr=2,shpc=off,addr=3,"
               "io-reserve=4k,mem-reserve=1m,pref64-reserve=1m",
               "-object",
               "rng-random,id=rng0,filename=/dev/urandom",
               "-device",
               "virtio-rng-pci,rng=rng0,romfile=",
               "-device",
               "virtio-serial-pci,id=serial0,max_ports=2,romfile=",
               "-chardev",
               "socket,id=charch0,path=/run/katana/sb1/agent.sock,server=on,wait=off",
               "-device",
               "virtserialport,bus=serial0.0,chardev=charch0,id=channel0,name=agent.channel.0",
               "-device",
               "virtio-scsi-pci,id=scsi0,romfile=",
               "-chardev",
               "socket,id=char-virtiofs,path=/run/katana/sb1/virtiofsd.sock",
               "-device",
               "vhost-user-fs-pci,chardev=char-virtiofs,tag=kataShared,queue-size=1024,"
               "cache-size=512M,romfile="});
}

TEST_CASE("x86_64 q35 image on an NVDIMM with DAX, vIOMMU", "[hypervisor][cmdline]") {
  const auto& x = arch::traits<arch::x86_64>::value;
  const auto cfg = prepared(R"([hypervisor.qemu]
path = "/usr/bin/qemu-system-x86_64"
kernel = "/k"
image = "/img"
machine_type = "q35"
enable_iommu = true
default_bridges = 0
shared_fs = "none"
block_device_driver = "virtio-blk"
entropy_source = ""
)",
                            host_of(x, 2, 4096));
  auto p = params(qemu::accelerator::kvm);
  p.image_size_bytes = 268435456;
  const auto argv = build(cfg, x, p);
  CHECK(argv.at(4) == "q35,accel=kvm,nvdimm=on,kernel_irqchip=split");
  CHECK(argv.at(10) == "2048M,slots=10,maxmem=5120M");
  const auto has = [&](std::string_view a) {
    return std::find(argv.begin(), argv.end(), a) != argv.end();
  };
  CHECK(has("intel-iommu,intremap=on,device-iotlb=on,caching-mode=on"));
  CHECK(has("memory-backend-file,id=mem0,mem-path=/img,size=268435456,readonly=on"));
  CHECK(has("nvdimm,id=nv0,memdev=mem0,unarmed=on"));
  const auto append = *(std::find(argv.begin(), argv.end(), "-append") + 1);
  CHECK(append.find("intel_iommu=on iommu=pt console=ttyS0 root=/dev/pmem0p1 "
                    "rootflags=dax,data=ordered,errors=remount-ro ro rootfstype=ext4") !=
        std::string::npos);
  // No image size, no NVDIMM.
  CHECK_FALSE(qemu::command_line(*cfg.hypervisor(), cfg.agent, x, params(qemu::accelerator::kvm)));
}

TEST_CASE("aarch64 virt: rootfs image on virtio-blk-pci without DAX", "[hypervisor][cmdline]") {
  const auto& a = arch::traits<arch::aarch64>::value;
  const auto cfg = prepared(R"([hypervisor.qemu]
path = "/usr/bin/qemu-system-aarch64"
kernel = "/k"
image = "/img"
cpu_features = "pmu=off"
shared_fs = "virtio-9p"
block_device_driver = "virtio-blk"
)",
                            host_of(a, 4, 8192));
  CHECK(build(cfg, a, params(qemu::accelerator::tcg)) ==
        argv_t{"/usr/bin/qemu-system-aarch64",
               "-name",
               "sandbox-sb1",
               "-machine",
               "virt,accel=tcg,usb=off,gic-version=max",
               "-cpu",
               "max,pmu=off",
               "-qmp",
               "unix:/run/katana/sb1/qmp.sock,server=on,wait=off",
               "-m",
               "2048M,slots=10,maxmem=9216M",
               "-smp",
               "1,cores=1,threads=1,sockets=4,maxcpus=4",
               "-nodefaults",
               "-no-user-config",
               "-nographic",
               "-no-reboot",
               "-kernel",
               "/k",
               "-append",
               "iommu.passthrough=0 console=ttyAMA0 root=/dev/vda1 "
               "rootflags=data=ordered,errors=remount-ro ro rootfstype=ext4 quiet panic=1 "
               "agent.server_addr=serial://agent.channel.0",
               "-chardev",
               "file,id=console0,path=/run/katana/sb1/console.log",
               "-serial",
               "chardev:console0",
               "-device",
               pci_bridge0,
               "-object",
               "rng-random,id=rng0,filename=/dev/urandom",
               "-device",
               "virtio-rng-pci,rng=rng0,romfile=",
               "-device",
               "virtio-serial-pci,id=serial0,max_ports=2,romfile=",
               "-chardev",
               "socket,id=charch0,path=/run/katana/sb1/agent.sock,server=on,wait=off",
               "-device",
               "virtserialport,bus=serial0.0,chardev=charch0,id=channel0,name=agent.channel.0",
               "-fsdev",
               "local,id=extra-9p-kataShared,path=/run/katana/sb1/shared,security_model=none,"
               "multidevs=remap",
               "-device",
               "virtio-9p-pci,fsdev=extra-9p-kataShared,mount_tag=kataShared,romfile=",
               "-drive",
               "id=image-0,file=/img,aio=io_uring,format=raw,if=none,readonly=on",
               "-device",
               "virtio-blk-pci,drive=image-0,romfile="});
  // With KVM the GIC follows the host.
  CHECK(build(cfg, a, params(qemu::accelerator::kvm)).at(4) ==
        "virt,accel=kvm,usb=off,gic-version=host");
}

TEST_CASE("ppc64le pseries: memory aligned to 256 MiB in -m, NVDIMM image",
          "[hypervisor][cmdline]") {
  const auto& p = arch::traits<arch::ppc64le>::value;
  // Host RAM (8000 MiB) and boot memory (1000 MiB) are not multiples of 256 MiB: maxmem is the
  // host RAM rounded down (7936) plus ppc64le's maxmem reserve; boot memory is rounded up.
  const auto cfg = prepared(R"([hypervisor.qemu]
path = "/usr/bin/qemu-system-ppc64"
kernel = "/k"
image = "/img"
machine_accelerators = "cap-cfpc=broken,cap-sbbc=broken,cap-ibs=broken,cap-large-decr=off,cap-ccf-assist=off"
default_memory = 1000
shared_fs = "virtio-9p"
block_device_driver = "virtio-blk"
)",
                            host_of(p, 4, 8000));
  CHECK(cfg.hypervisor()->machine_type == "pseries");
  auto sp = params(qemu::accelerator::kvm);
  sp.image_size_bytes = 134217728;
  CHECK(build(cfg, p, sp) ==
        argv_t{"/usr/bin/qemu-system-ppc64",
               "-name",
               "sandbox-sb1",
               "-machine",
               "pseries,accel=kvm,usb=off,cap-ail-mode-3=off,cap-cfpc=broken,cap-sbbc=broken,"
               "cap-ibs=broken,cap-large-decr=off,cap-ccf-assist=off,nvdimm=on",
               "-cpu",
               "host",
               "-qmp",
               "unix:/run/katana/sb1/qmp.sock,server=on,wait=off",
               "-m",
               "1024M,slots=10,maxmem=8960M",
               "-smp",
               "1,cores=1,threads=1,sockets=4,maxcpus=4",
               "-nodefaults",
               "-no-user-config",
               "-nographic",
               "-no-reboot",
               "-kernel",
               "/k",
               "-append",
               "rcupdate.rcu_expedited=1 reboot=k cryptomgr.notests net.ifnames=0 console=hvc0 "
               "root=/dev/pmem0p1 rootflags=data=ordered,errors=remount-ro ro rootfstype=ext4 "
               "quiet panic=1 agent.server_addr=serial://agent.channel.0",
               "-chardev",
               "file,id=console0,path=/run/katana/sb1/console.log",
               "-serial",
               "chardev:console0",
               "-device",
               "pci-bridge,bus=pci.0,id=pci-bridge-0,chassis_nr=1,shpc=off,addr=2,io-reserve=4k,"
               "mem-reserve=1m,pref64-reserve=1m",
               "-object",
               "rng-random,id=rng0,filename=/dev/urandom",
               "-device",
               "virtio-rng-pci,rng=rng0,romfile=",
               "-device",
               "virtio-serial-pci,id=serial0,max_ports=2,romfile=",
               "-chardev",
               "socket,id=charch0,path=/run/katana/sb1/agent.sock,server=on,wait=off",
               "-device",
               "virtserialport,bus=serial0.0,chardev=charch0,id=channel0,name=agent.channel.0",
               "-fsdev",
               "local,id=extra-9p-kataShared,path=/run/katana/sb1/shared,security_model=none,"
               "multidevs=remap",
               "-device",
               "virtio-9p-pci,fsdev=extra-9p-kataShared,mount_tag=kataShared,romfile=",
               "-object",
               "memory-backend-file,id=mem0,mem-path=/img,size=134217728,readonly=on",
               "-device",
               "nvdimm,id=nv0,memdev=mem0,unarmed=on"});
}

TEST_CASE("s390x: CCW devices with device numbers, SCLP console, vsock", "[hypervisor][cmdline]") {
  const auto& s = arch::traits<arch::s390x>::value;
  const auto cfg = prepared(R"([hypervisor.qemu]
path = "/usr/bin/qemu-system-s390x"
kernel = "/k"
initrd = "/i"
default_maxmemory = 4096
shared_fs = "virtio-9p"
block_device_driver = "virtio-blk"
)",
                            host_of(s, 2, 8192));
  CHECK(cfg.hypervisor()->block_device_driver == "virtio-blk-ccw");
  auto p = params(qemu::accelerator::kvm);
  p.channel = qemu::agent_channel::vsock;
  p.vsock_cid = 3;
  CHECK(build(cfg, s, p) ==
        argv_t{"/usr/bin/qemu-system-s390x",
               "-name",
               "sandbox-sb1",
               "-machine",
               "s390-ccw-virtio,accel=kvm",
               "-cpu",
               "host",
               "-qmp",
               "unix:/run/katana/sb1/qmp.sock,server=on,wait=off",
               "-m",
               "2048M,slots=10,maxmem=4096M",
               "-smp",
               "1,cores=1,threads=1,sockets=2,maxcpus=2",
               "-nodefaults",
               "-no-user-config",
               "-nographic",
               "-no-reboot",
               "-kernel",
               "/k",
               "-initrd",
               "/i",
               "-append",
               "console=ttysclp0 quiet panic=1",
               "-chardev",
               "file,id=console0,path=/run/katana/sb1/console.log",
               "-device",
               "sclpconsole,chardev=console0",
               "-object",
               "rng-random,id=rng0,filename=/dev/urandom",
               "-device",
               "virtio-rng-ccw,rng=rng0,devno=fe.0.0001",
               "-device",
               "vhost-vsock-ccw,id=vsock-3,guest-cid=3,devno=fe.0.0002",
               "-fsdev",
               "local,id=extra-9p-kataShared,path=/run/katana/sb1/shared,security_model=none,"
               "multidevs=remap",
               "-device",
               "virtio-9p-ccw,fsdev=extra-9p-kataShared,mount_tag=kataShared,devno=fe.0.0003"});
}

TEST_CASE("the compile-time overload uses the arch's traits", "[hypervisor][cmdline]") {
  const auto& x = arch::traits<arch::x86_64>::value;
  const auto cfg = prepared(config::default_configuration_toml, host_of(x, 2, 24576));
  CHECK(qemu::command_line<arch::x86_64>(*cfg.hypervisor(), cfg.agent,
                                         params(qemu::accelerator::tcg)) ==
        qemu::command_line(*cfg.hypervisor(), cfg.agent, x, params(qemu::accelerator::tcg)));
}

TEST_CASE("command lines that cannot work are refused", "[hypervisor][cmdline]") {
  const auto& x = arch::traits<arch::x86_64>::value;
  config::hypervisor_config h;
  h.path = "/q";
  h.kernel = "/k";
  h.initrd = "/i";
  const auto p = params(qemu::accelerator::tcg);
  const auto error_of = [&](const config::hypervisor_config& c, const arch::description& a,
                            const qemu::sandbox_params& sp) {
    auto r = qemu::command_line(c, {}, a, sp);
    REQUIRE_FALSE(r);
    return r.error().message();
  };
  auto c = h;
  c.machine_type = "pseries";
  CHECK(error_of(c, x, p) == "qemu: machine_type: \"pseries\" is not a x86_64 machine");
  c = h;
  c.image = "/img";
  CHECK(error_of(c, x, p) == "qemu: image: exactly one of image and initrd must be set");
  c = h;
  c.machine_type = "microvm";
  c.enable_iommu = true;
  CHECK(error_of(c, x, p) == "qemu: enable_iommu: x86_64 microvm does not support a vIOMMU");
  c = h;
  c.shared_fs = "virtio-fs-nydus";
  CHECK(error_of(c, x, p) == "qemu: shared_fs \"virtio-fs-nydus\" is not supported");
  c = h;
  auto no_sock = p;
  no_sock.virtiofsd_socket.clear();
  CHECK(error_of(c, x, no_sock) == "qemu: shared_fs: virtio-fs needs the daemon's socket");
  auto vsock = p;
  vsock.channel = qemu::agent_channel::vsock;
  vsock.vsock_cid = 2;
  CHECK(error_of(h, x, vsock) == "qemu: vsock: guest CID 2 is reserved");
  c = h;
  c.enable_virtio_mem = true;
  auto r = qemu::command_line(c, {}, x, p);
  REQUIRE_FALSE(r);
  CHECK(r.error().code == errc::unsupported);
}

TEST_CASE("VM templating: the template shares its memory file, a clone maps it private",
          "[hypervisor][cmdline][template]") {
  const auto& x = arch::traits<arch::x86_64>::value;
  const auto cfg = prepared(config::default_configuration_toml, host_of(x, 2, 24576));
  auto p = params(qemu::accelerator::tcg);
  p.template_memory = "/run/katana/vm/template/memory";
  const auto has = [](const argv_t& a, std::string_view flag, std::string_view value) {
    for (std::size_t i = 0; i + 1 < a.size(); ++i) {
      if (a[i] == flag && a[i + 1] == value) {
        return true;
      }
    }
    return false;
  };
  const auto made = build(cfg, x, p);
  CHECK(has(made, "-machine", "microvm,accel=tcg,x-option-roms=off,memory-backend=dimm1"));
  CHECK(has(made, "-object",
            "memory-backend-file,id=dimm1,size=2048M,mem-path=/run/katana/vm/template/memory,"
            "share=on"));
  CHECK(std::find(made.begin(), made.end(), "-incoming") == made.end());
  p.template_clone = true;
  const auto clone = build(cfg, x, p);
  CHECK(has(clone, "-object",
            "memory-backend-file,id=dimm1,size=2048M,mem-path=/run/katana/vm/template/memory,"
            "share=off"));
  CHECK(has(clone, "-incoming", "defer"));
  // Apart from those, the clone's command line is the template's: the device state must fit.
  argv_t a = made;
  argv_t b = clone;
  b.erase(std::find(b.begin(), b.end(), "-incoming"),
          std::find(b.begin(), b.end(), "-incoming") + 2);
  for (auto& s : b) {
    if (s.ends_with("share=off")) {
      s.replace(s.size() - 3, 3, "on");
    }
  }
  CHECK(a == b);

  auto h = *cfg.hypervisor();
  h.shared_fs = "virtio-fs";
  auto r = qemu::command_line(h, cfg.agent, x, p);
  REQUIRE_FALSE(r);
  CHECK(r.error().message().find("factory.enable_template") != std::string::npos);
}
