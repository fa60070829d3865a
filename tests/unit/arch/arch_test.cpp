#include <string_view>

#include <katana/arch/arch.hpp>

#include "catch.hpp"

namespace arch = katana::arch;

// The seeds' rules are data in the tables; check them at compile time.
static_assert(arch::traits<arch::ppc64le>::memory_block_mib == 256);
static_assert(arch::traits<arch::aarch64>::rootfs_driver == "virtio-blk");
static_assert(!arch::traits<arch::aarch64>::rootfs_dax);
static_assert(arch::traits<arch::x86_64>::rootfs_dax);
static_assert(arch::traits<arch::s390x>::machines[0].transport == arch::virtio_transport::ccw);
static_assert(arch::traits<arch::x86_64>::max_vcpus == 240);
static_assert(arch::traits<arch::aarch64>::max_vcpus == 123);
static_assert(arch::traits<arch::ppc64le>::max_vcpus == 128);
static_assert(arch::traits<arch::s390x>::max_vcpus == 248);
// Dereferencing (not comparing with nullptr): GCC 12 with -fsanitize=undefined cannot fold
// a pointer-to-element null comparison in a constant expression.
static_assert(arch::traits<arch::x86_64>::value.find_machine("microvm")->type == "microvm");
static_assert(arch::traits<arch::x86_64>::value.find_machine("microvm")->transport ==
              arch::virtio_transport::mmio);
static_assert(arch::describe(arch::id::s390x).name == "s390x");
static_assert(arch::find("amd64") == &arch::traits<arch::x86_64>::value);
static_assert(arch::find("arm64") == &arch::traits<arch::aarch64>::value);
static_assert(arch::find("riscv64") == nullptr);
static_assert(arch::device_suffix(arch::virtio_transport::mmio) == "-device");

TEST_CASE("every table has its default machine and a QEMU binary", "[arch]") {
  for (const auto id : {arch::id::x86_64, arch::id::aarch64, arch::id::ppc64le, arch::id::s390x}) {
    const auto& d = arch::describe(id);
    INFO(d.name);
    CHECK(d.find_machine(d.default_machine) != nullptr);
    CHECK(d.qemu_binary.starts_with("qemu-system-"));
    CHECK(d.memory_block_mib >= 1);
    CHECK((d.rootfs_driver == "nvdimm" || !d.rootfs_dax));  // virtio-blk does not support DAX
    CHECK(arch::find(d.name) == &d);
  }
}

TEST_CASE("per-architecture facts", "[arch]") {
  const auto& x = arch::traits<arch::x86_64>::value;
  CHECK(x.default_machine == "q35");
  CHECK(x.console_param == "ttyS0");
  CHECK(x.tsc_early_khz);
  CHECK(x.kernel_params.size() == 12);
  CHECK(x.find_machine("q35")->root_bus == "pcie.0");
  CHECK(x.find_machine("microvm")->globals.size() == 1);
  CHECK_FALSE(x.find_machine("microvm")->hotplug);
  const auto& a = arch::traits<arch::aarch64>::value;
  CHECK(a.console_param == "ttyAMA0");
  CHECK(a.find_machine("virt")->kvm_options == "gic-version=host");
  CHECK(a.find_machine("virt")->tcg_options == "gic-version=max");
  const auto& p = arch::traits<arch::ppc64le>::value;
  CHECK(p.console_param == "hvc0");
  CHECK(p.machine_accelerators.starts_with("cap-cfpc=broken"));
  const auto& s = arch::traits<arch::s390x>::value;
  CHECK(s.console == arch::console_kind::sclp);
  CHECK(s.maxmem_reserve_mib == 0);
  CHECK_FALSE(s.find_machine("s390-ccw-virtio")->nvdimm);
}

TEST_CASE("visit dispatches to the tag; the host is known", "[arch]") {
  const auto name =
      arch::visit(arch::id::ppc64le, [](auto tag) { return arch::traits<decltype(tag)>::name; });
  CHECK(name == "ppc64le");
  CHECK(arch::describe(arch::host_id).name == arch::traits<arch::host>::name);
}
