#include <string>

#include <katana/config/validate.hpp>

#include "catch.hpp"

namespace config = katana::config;
using katana::errc;

namespace {

config::host_info x86_host(std::uint32_t cpus = 4, std::uint64_t mib = 8192) {
  return {.cpus = cpus,
          .memory_bytes = mib << 20,
          .arch = "x86_64",
          .limits = {.max_vcpus = 240,
                     .memory_block_mib = 1,
                     .default_machine_type = "q35",
                     .machine_types = {"q35", "microvm"},
                     .supports_iommu = true}};
}

config::host_info ppc_host(std::uint32_t cpus, std::uint64_t mib) {
  return {.cpus = cpus,
          .memory_bytes = mib << 20,
          .arch = "ppc64le",
          .limits = {.max_vcpus = 128,
                     .memory_block_mib = 256,
                     .default_machine_type = "pseries",
                     .machine_types = {"pseries"}}};
}

config::configuration with_qemu(config::hypervisor_config h = {}) {
  if (h.path.empty()) {
    h.path = "/usr/bin/qemu-system-x86_64";
    h.kernel = "/k";
    h.initrd = "/i";
  }
  config::configuration c;
  c.hypervisors.emplace("qemu", std::move(h));
  return c;
}

config::hypervisor_config adjusted(config::hypervisor_config h,
                                   const config::host_info& host,
                                   config::warnings* notes = nullptr) {
  auto c = with_qemu(std::move(h));
  config::warnings local;
  REQUIRE(config::adjust(c, host, notes != nullptr ? *notes : local));
  return c.hypervisors.at("qemu");
}

std::string invalid(const config::configuration& c, const config::host_info& host = x86_host()) {
  auto st = config::validate(c, host);
  REQUIRE_FALSE(st);
  CHECK(st.error().code == errc::invalid_config);
  return st.error().message();
}

}  // namespace

TEST_CASE("vCPUs are clamped to the host as Kata does", "[config][adjust]") {
  const auto host = x86_host(4);
  config::hypervisor_config h;
  h.default_vcpus = 0;
  CHECK(adjusted(h, host).default_vcpus == 1);
  h.default_vcpus = -1;
  CHECK(adjusted(h, host).default_vcpus == 4);
  h.default_vcpus = 64;
  config::warnings notes;
  CHECK(adjusted(h, host, &notes).default_vcpus == 4);
  REQUIRE(notes.size() == 1);
  CHECK(notes[0] == "hypervisor.qemu.default_vcpus: 64 is more than the host's 4 CPUs; using 4");
  h.default_vcpus = 3;
  CHECK(adjusted(h, host).default_vcpus == 3);
}

TEST_CASE("max vCPUs: 0 means the host's CPUs, capped at the arch maximum", "[config][adjust]") {
  config::hypervisor_config h;
  CHECK(adjusted(h, x86_host(4)).default_maxvcpus == 4);
  CHECK(adjusted(h, x86_host(512)).default_maxvcpus == 240);
  CHECK(adjusted(h, ppc_host(200, 8192)).default_maxvcpus == 128);
  h.default_maxvcpus = 16;
  CHECK(adjusted(h, x86_host(4)).default_maxvcpus == 4);
  h.default_maxvcpus = 2;
  h.default_vcpus = 3;
  const auto a = adjusted(h, x86_host(4));
  CHECK(a.default_maxvcpus == 2);
  CHECK(a.default_vcpus == 2);  // never more than the maximum
}

TEST_CASE("memory is clamped to host RAM; max 0 means host RAM", "[config][adjust]") {
  config::hypervisor_config h;
  h.default_memory = 0;
  auto a = adjusted(h, x86_host(4, 8192));
  CHECK(a.default_memory == 2048);
  CHECK(a.default_maxmemory == 8192);
  h.default_memory = 16384;
  config::warnings notes;
  a = adjusted(h, x86_host(4, 8192), &notes);
  CHECK(a.default_memory == 8192);
  CHECK(notes.at(0) ==
        "hypervisor.qemu.default_memory: 16384 MiB is more than the host's 8192 "
        "MiB; using 8192 MiB");
  h.default_memory = 4096;
  h.default_maxmemory = 1024;  // less than the boot memory: raised
  a = adjusted(h, x86_host(4, 8192));
  CHECK(a.default_maxmemory == 4096);
}

TEST_CASE("ppc64le memory, default and max, is aligned to 256 MiB blocks", "[config][adjust]") {
  // A host RAM size that is not a multiple of 256 MiB (the seed's failing case came from
  // host-RAM-derived arithmetic): 8000 MiB. Configured sizes round up; the host's RAM rounds
  // down (7936), as Kata's runtime does, so the guest never gets more than the host has.
  config::hypervisor_config h;
  h.default_memory = 1000;
  h.memory_offset = 100;
  config::warnings notes;
  const auto a = adjusted(h, ppc_host(8, 8000), &notes);
  CHECK(a.default_memory == 1024);
  CHECK(a.default_maxmemory == 7936);
  CHECK(a.memory_offset == 256);
  CHECK(a.default_memory % 256 == 0);
  CHECK(a.default_maxmemory % 256 == 0);
  CHECK(a.machine_type == "pseries");
  REQUIRE(notes.size() == 3);
  CHECK(notes[0] ==
        "hypervisor.qemu.default_maxmemory: 0 means the host's 8000 MiB; using 7936 MiB "
        "(ppc64le guest memory is managed in 256 MiB blocks)");
  CHECK(notes[1] ==
        "hypervisor.qemu.default_memory: 1000 MiB rounded up to 1024 MiB (ppc64le "
        "guest memory is managed in 256 MiB blocks)");
  // More than the host has, both: the host's RAM, rounded down.
  config::hypervisor_config big;
  big.default_memory = 9000;
  big.default_maxmemory = 20000;
  config::warnings big_notes;
  const auto c = adjusted(big, ppc_host(8, 8000), &big_notes);
  CHECK(c.default_memory == 7936);
  CHECK(c.default_maxmemory == 7936);
  REQUIRE(big_notes.size() == 2);
  CHECK(big_notes[0] ==
        "hypervisor.qemu.default_memory: 9000 MiB is more than the host's 8000 MiB; using "
        "7936 MiB");
  // A configured size that would round up past the host's RAM rounds down instead.
  config::hypervisor_config near;
  near.default_memory = 7990;
  config::warnings near_notes;
  const auto n = adjusted(near, ppc_host(8, 8000), &near_notes);
  CHECK(n.default_memory == 7936);
  CHECK(n.default_maxmemory == 7936);
  // Host RAM not known: nothing to clamp to; configured sizes still align.
  config::hypervisor_config unknown;
  unknown.default_memory = 1000;
  config::warnings unknown_notes;
  const auto u = adjusted(unknown, ppc_host(8, 0), &unknown_notes);
  CHECK(u.default_memory == 1024);
  CHECK(u.default_maxmemory == 0);  // left to QEMU's default
  for (const auto& note : unknown_notes) {
    CHECK(note.find("host's 0 MiB") == std::string::npos);
  }
  // A host with less than one block still gets one.
  config::hypervisor_config tiny;
  tiny.default_memory = 100;
  const auto t = adjusted(tiny, ppc_host(1, 200));
  CHECK(t.default_memory == 256);
  CHECK(t.default_maxmemory == 256);
  // Already aligned values are left alone and not mentioned.
  config::hypervisor_config aligned;
  aligned.default_memory = 2048;
  aligned.default_maxmemory = 4096;
  config::warnings none;
  const auto b = adjusted(aligned, ppc_host(8, 8192), &none);
  CHECK(b.default_memory == 2048);
  CHECK(b.default_maxmemory == 4096);
  CHECK(none.empty());
}

TEST_CASE("bridges are capped at 5; virtio-blk becomes virtio-blk-ccw on s390x",
          "[config][adjust]") {
  config::hypervisor_config h;
  h.default_bridges = 9;
  CHECK(adjusted(h, x86_host()).default_bridges == 5);
  h.machine_type = "s390-ccw-virtio";
  h.block_device_driver = "virtio-blk";
  CHECK(adjusted(h, x86_host()).block_device_driver == "virtio-blk-ccw");
  h.machine_type = "q35";
  CHECK(adjusted(h, x86_host()).block_device_driver == "virtio-blk");
  config::hypervisor_config unset;
  CHECK(adjusted(unset, x86_host()).machine_type == "q35");
}

TEST_CASE("a VM cache is turned off with a note, as Kata does without its cache server",
          "[config][adjust]") {
  auto c = with_qemu();
  c.factory.vm_cache_number = 3;
  config::warnings notes;
  REQUIRE(config::adjust(c, x86_host(), notes));
  CHECK(c.factory.vm_cache_number == 0);
  REQUIRE(notes.size() == 1);
  CHECK(notes[0].find("factory.vm_cache_number: 3 -> 0") == 0);
  CHECK(config::validate(c, x86_host()));
  notes.clear();
  REQUIRE(config::adjust(c, x86_host(), notes));
  CHECK(notes.empty());
}

TEST_CASE("validation: a valid configuration passes", "[config][validate]") {
  auto c = with_qemu();
  config::warnings notes;
  REQUIRE(config::adjust(c, x86_host(), notes));
  CHECK(config::validate(c, x86_host()));
}

TEST_CASE("validation: image and initrd are mutually exclusive; assets required",
          "[config][validate]") {
  auto c = with_qemu();
  c.hypervisors.at("qemu").image = "/img";
  CHECK(invalid(c) ==
        "hypervisor.qemu.image: image and initrd are mutually exclusive: set one "
        "of them");
  c.hypervisors.at("qemu").image.clear();
  c.hypervisors.at("qemu").initrd.clear();
  CHECK(invalid(c) == "hypervisor.qemu.initrd: neither an initrd nor an image is set");
  c.hypervisors.at("qemu").initrd = "relative/initrd";
  CHECK(invalid(c) == "hypervisor.qemu.initrd: \"relative/initrd\" is not an absolute path");
  c.hypervisors.at("qemu").initrd = "/i";
  c.hypervisors.at("qemu").kernel.clear();
  CHECK(invalid(c) == "hypervisor.qemu.kernel: the guest kernel is not set");
  config::configuration remote;
  remote.hypervisors.emplace("remote", config::hypervisor_defaults("remote"));
  CHECK(config::validate(remote, x86_host()));  // remote needs no assets
}

TEST_CASE("validation: hypervisor table selection", "[config][validate]") {
  config::configuration none;
  CHECK(invalid(none) == "no [hypervisor.<name>] table");
  auto two = with_qemu();
  auto fc = config::hypervisor_defaults("firecracker");
  fc.path = "/fc";
  fc.kernel = "/k";
  fc.image = "/img";
  two.hypervisors.emplace("firecracker", fc);
  CHECK(invalid(two) ==
        "several hypervisor tables (firecracker, qemu): set "
        "runtime.hypervisor_name to choose one");
  two.runtime.hypervisor_name = "firecracker";
  CHECK(config::validate(two, x86_host()));
  CHECK(two.hypervisor() == &two.hypervisors.at("firecracker"));
  two.runtime.hypervisor_name = "clh";
  CHECK(invalid(two) == "runtime.hypervisor_name: there is no [hypervisor.clh] table");
}

TEST_CASE("validation: value combinations", "[config][validate]") {
  auto c = with_qemu();
  auto& h = c.hypervisors.at("qemu");
  h.machine_type = "pc";
  CHECK(invalid(c) ==
        "hypervisor.qemu.machine_type: \"pc\" is not a x86_64 machine type (q35, "
        "microvm)");
  h.machine_type = "microvm";
  h.enable_iommu = true;
  CHECK(invalid(c) == "hypervisor.qemu.enable_iommu: a vIOMMU is not supported on x86_64 microvm");
  h.machine_type = "q35";
  CHECK(config::validate(c, x86_host()));
  h.machine_type = "pseries";
  CHECK(invalid(c, ppc_host(4, 4096)) ==
        "hypervisor.qemu.enable_iommu: a vIOMMU is not supported on ppc64le pseries");
  h.enable_iommu = false;
  h.machine_type = "q35";
  h.block_device_driver = "virtio-blk-ccw";
  CHECK(invalid(c) ==
        "hypervisor.qemu.block_device_driver: virtio-blk-ccw needs machine_type "
        "\"s390-ccw-virtio\", not \"q35\"");
  h.block_device_driver = "virtio-blk";
  h.shared_fs = "virtio-fs";
  h.virtio_fs_daemon.clear();
  CHECK(invalid(c) == "hypervisor.qemu.virtio_fs_daemon: shared_fs = \"virtio-fs\" needs a daemon");
  h.virtio_fs_daemon = "/usr/lib/qemu/virtiofsd";
  h.virtio_fs_queue_size = 1000;
  CHECK(invalid(c) ==
        "hypervisor.qemu.virtio_fs_queue_size: 1000 is not a power of two up to "
        "1024");
  h.virtio_fs_queue_size = 1024;
  h.msize_9p = 100;
  CHECK(invalid(c) == "hypervisor.qemu.msize_9p: 100 is outside [4096, 1048576]");
  h.msize_9p = 8192;
  h.enable_annotations = {"kernel_(params"};
  CHECK(
      invalid(c).starts_with("hypervisor.qemu.enable_annotations: \"kernel_(params\" is not a "
                             "regular expression"));
  h.enable_annotations = {};
  c.runtime.disable_new_netns = true;
  CHECK(invalid(c) ==
        "runtime.disable_new_netns: needs internetworking_model = \"none\", not "
        "\"tcfilter\"");
  c.runtime.internetworking_model = "none";
  CHECK(config::validate(c, x86_host()));
  c.factory.enable_template = true;
  h.initrd.clear();
  h.image = "/img";
  CHECK(invalid(c) == "factory.enable_template: VM templating needs an initrd");
  c.factory.enable_template = false;
  c.runtime.dan_conf = "dans";
  CHECK(invalid(c) == "runtime.dan_conf: \"dans\" is not an absolute path");
}

TEST_CASE("probe_host_resources reports this machine", "[config][host]") {
  const auto h = config::probe_host_resources();
  CHECK(h.cpus >= 1);
  CHECK(h.memory_bytes > 0);
  CHECK_FALSE(h.arch.empty());
}
