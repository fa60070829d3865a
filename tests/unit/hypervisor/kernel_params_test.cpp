#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <katana/arch/arch.hpp>
#include <katana/hypervisor/host.hpp>
#include <katana/hypervisor/qemu/kernel_params.hpp>

#include "catch.hpp"

namespace arch = katana::arch;
namespace config = katana::config;
namespace qemu = katana::hypervisor::qemu;
using strings = std::vector<std::string>;

namespace {

std::string params(const config::hypervisor_config& h,
                   const config::agent_config& agent,
                   const arch::description& a,
                   qemu::accelerator accel = qemu::accelerator::tcg,
                   qemu::agent_channel channel = qemu::agent_channel::virtio_serial) {
  const auto* m = a.find_machine(h.machine_type.empty() ? a.default_machine : h.machine_type);
  REQUIRE(m != nullptr);
  return qemu::join_kernel_params(qemu::kernel_params({.hypervisor = h,
                                                       .agent = agent,
                                                       .arch = a,
                                                       .machine = *m,
                                                       .accel = accel,
                                                       .channel = channel,
                                                       .host_tsc_khz = 2596138}));
}

constexpr std::string_view x86_defaults =
    "tsc=reliable no_timer_check rcupdate.rcu_expedited=1 i8042.direct=1 i8042.dumbkbd=1 "
    "i8042.nopnp=1 i8042.noaux=1 noreplace-smp reboot=k cryptomgr.notests net.ifnames=0 "
    "pci=lastbus=0";

}  // namespace

TEST_CASE("x86_64 initrd boot under TCG", "[hypervisor][kernel_params]") {
  config::hypervisor_config h;
  h.machine_type = "microvm";
  h.initrd = "/i";
  const auto& x = arch::traits<arch::x86_64>::value;
  CHECK(params(h, {}, x) == std::string(x86_defaults) +
                                " console=ttyS0 quiet panic=1 tsc_early_khz=2596138"
                                " agent.server_addr=serial://agent.channel.0");
  // With KVM the guest calibrates its TSC itself.
  CHECK(params(h, {}, x, qemu::accelerator::kvm).find("tsc_early_khz") == std::string::npos);
}

TEST_CASE("agent parameters come from [agent.kata]", "[hypervisor][kernel_params]") {
  config::hypervisor_config h;
  h.initrd = "/i";
  h.enable_debug = true;
  config::agent_config agent;
  agent.enable_debug = true;
  agent.debug_console_enabled = true;
  agent.enable_tracing = true;
  agent.container_pipe_size = 1024;
  const auto p = params(h, agent, arch::traits<arch::s390x>::value, qemu::accelerator::kvm,
                        qemu::agent_channel::vsock);
  CHECK(p ==
        "console=ttysclp0 debug panic=1 agent.log=debug agent.debug_console "
        "agent.debug_console_vport=1026 agent.trace=true agent.container_pipe_size=1024");
}

TEST_CASE("configured kernel_params replace defaults of the same name",
          "[hypervisor][kernel_params]") {
  config::hypervisor_config h;
  h.initrd = "/i";
  h.kernel_params = "console=hvc0 quiet=1 cgroup_no_v1=all panic=0";
  const auto p = params(h, {}, arch::traits<arch::ppc64le>::value, qemu::accelerator::kvm);
  CHECK(p ==
        "rcupdate.rcu_expedited=1 reboot=k cryptomgr.notests net.ifnames=0 "
        "agent.server_addr=serial://agent.channel.0 console=hvc0 quiet=1 "
        "cgroup_no_v1=all panic=0");
}

TEST_CASE("image boot: DAX on an x86_64 NVDIMM, never on aarch64 or virtio-blk",
          "[hypervisor][kernel_params]") {
  config::hypervisor_config h;
  h.image = "/img";
  h.machine_type = "q35";
  const auto x = params(h, {}, arch::traits<arch::x86_64>::value, qemu::accelerator::kvm);
  CHECK(x.find("root=/dev/pmem0p1 rootflags=dax,data=ordered,errors=remount-ro ro "
               "rootfstype=ext4") != std::string::npos);
  h.machine_type = "microvm";  // no NVDIMM on microvm: virtio-blk, no DAX
  const auto mv = params(h, {}, arch::traits<arch::x86_64>::value, qemu::accelerator::kvm);
  CHECK(mv.find("root=/dev/vda1 rootflags=data=ordered,errors=remount-ro ro rootfstype=ext4") !=
        std::string::npos);
  h.machine_type = "";
  const auto a = params(h, {}, arch::traits<arch::aarch64>::value, qemu::accelerator::kvm);
  CHECK(a ==
        "iommu.passthrough=0 console=ttyAMA0 root=/dev/vda1 "
        "rootflags=data=ordered,errors=remount-ro ro rootfstype=ext4 quiet panic=1 "
        "agent.server_addr=serial://agent.channel.0");
  CHECK(a.find("dax") == std::string::npos);
  h.rootfs_type = "erofs";
  CHECK(params(h, {}, arch::traits<arch::aarch64>::value)
            .find("root=/dev/vda1 ro rootfstype=erofs") != std::string::npos);
  const auto p = params(h, {}, arch::traits<arch::ppc64le>::value);  // NVDIMM without DAX
  CHECK(p.find("root=/dev/pmem0p1 ro rootfstype=erofs") != std::string::npos);
  h.machine_type = "q35";
  CHECK(params(h, {}, arch::traits<arch::x86_64>::value)
            .find("root=/dev/pmem0p1 rootflags=dax ro "
                  "rootfstype=erofs") != std::string::npos);
}

TEST_CASE("vIOMMU parameters on x86_64", "[hypervisor][kernel_params]") {
  config::hypervisor_config h;
  h.initrd = "/i";
  h.machine_type = "q35";
  h.enable_iommu = true;
  CHECK(params(h, {}, arch::traits<arch::x86_64>::value, qemu::accelerator::kvm)
            .find("pci=lastbus=0 intel_iommu=on iommu=pt console=ttyS0") != std::string::npos);
}

TEST_CASE("cpu MHz stands for the TSC only without a measured or scaled CPU clock",
          "[hypervisor][host]") {
  namespace h = katana::hypervisor;
  const std::string vm =
      "processor\t: 0\ncpu MHz\t\t: 2095.999\nflags\t\t: fpu tsc constant_tsc "
      "nonstop_tsc tsc_known_freq\nvmx flags\t: aperfmperf\n";
  CHECK(h::cpuinfo_mhz_is_tsc(vm, false));
  CHECK_FALSE(h::cpuinfo_mhz_is_tsc(vm, true));  // a cpufreq driver scales the clock
  const std::string metal =
      "processor\t: 0\ncpu MHz\t\t: 3400.000\nflags\t\t: fpu tsc constant_tsc aperfmperf\n";
  CHECK_FALSE(h::cpuinfo_mhz_is_tsc(metal, false));  // "cpu MHz" is sampled from APERF/MPERF
  CHECK_FALSE(h::cpuinfo_mhz_is_tsc("processor\t: 0\nflags\t\t: fpu tsc\n", false));
  CHECK_FALSE(h::cpuinfo_mhz_is_tsc("processor\t: 0\n", false));
#if defined(__x86_64__)
  // Measured here, it agrees with what the host reports (within 2 %).
  const auto measured = h::measure_tsc_khz();
  REQUIRE(measured > 0);
  std::ifstream f("/proc/cpuinfo");
  std::stringstream text;
  text << f.rdbuf();
  const auto reported = h::tsc_khz_from_cpuinfo(text.str());
  if (h::cpuinfo_mhz_is_tsc(text.str(),
                            std::filesystem::exists("/sys/devices/system/cpu/cpu0/cpufreq"))) {
    CHECK(std::abs(static_cast<double>(measured) - reported) < reported * 0.02);
  }
  CHECK(h::host_tsc_khz() > 0);
#endif
}

TEST_CASE("the host TSC frequency comes from /proc/cpuinfo", "[hypervisor][host]") {
  CHECK(katana::hypervisor::tsc_khz_from_cpuinfo(
            "processor\t: 0\nmodel name\t: AMD EPYC\ncpu MHz\t\t: 2596.138\n") == 2596138);
  CHECK(katana::hypervisor::tsc_khz_from_cpuinfo("processor\t: 0\n") == 0);
  CHECK(katana::hypervisor::tsc_khz_from_cpuinfo("cpu MHz : garbage\n") == 0);
  const auto host = katana::hypervisor::detect_host();
  CHECK(host.limits.max_vcpus == arch::traits<arch::host>::max_vcpus);
  CHECK(host.limits.default_machine_type == arch::traits<arch::host>::default_machine);
}
