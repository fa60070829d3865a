// evaluate_host on made-up hosts; gather_host_facts on this one (no verdict asserted: it
// depends on the machine) and on files it must find or miss.
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <unistd.h>

#include <katana/hypervisor/host_check.hpp>

#include "catch.hpp"

namespace hv = katana::hypervisor;
using hv::check_status;

namespace {

hv::file_fact present(std::string path, std::string detail = {}) {
  return {.path = std::move(path), .exists = true, .usable = true, .detail = std::move(detail)};
}

/// A host where everything is in place and KVM works.
hv::host_facts good_host() {
  hv::host_facts f;
  f.arch = "x86_64";
  f.qemu_binary = "qemu-system-x86_64";
  f.machine_type = "microvm";
  f.accelerator = "auto";
  f.kvm_probed = true;
  f.kvm = {true, "KVM_RUN exited with HLT"};
  f.vhost_vsock = true;
  f.qemu = present("/usr/bin/qemu-system-x86_64", "QEMU emulator version 7.2.19");
  f.shared_fs = "virtio-9p";
  f.virtiofsd = present("/usr/lib/qemu/virtiofsd");
  f.kernel = present("/usr/share/katana/vmlinux");
  f.kernel_is_elf = true;
  f.initrd = present("/usr/share/katana/katana-initrd.img");
  f.host_tsc_khz = 2596138;
  f.cgroup_mode = "unified";
  f.root = true;
  f.config_source = "<embedded defaults>";
  return f;
}

const hv::host_check& find(const hv::host_report& r, std::string_view name) {
  for (const auto& c : r.checks) {
    if (c.name == name) {
      return c;
    }
  }
  FAIL("no check named " << name);
  std::abort();
}

std::size_t count(const hv::host_report& r, check_status s) {
  std::size_t n = 0;
  for (const auto& c : r.checks) {
    n += c.status == s ? 1 : 0;
  }
  return n;
}

}  // namespace

TEST_CASE("host check: a host with working KVM runs VMs with KVM", "[host_check]") {
  const auto r = hv::evaluate_host(good_host());
  CHECK(r.runnable);
  CHECK(r.accelerator == "kvm");
  CHECK(r.summary == "a VM can run here: QEMU with KVM");
  CHECK(count(r, check_status::fail) == 0);
  CHECK(count(r, check_status::warning) == 0);
  CHECK(find(r, "qemu").detail == "/usr/bin/qemu-system-x86_64: QEMU emulator version 7.2.19");
  CHECK(find(r, "cgroup").detail == "unified (v2)");
}

TEST_CASE("host check: KVM that hangs falls back to TCG, runnable with a note", "[host_check]") {
  auto f = good_host();
  f.kvm = {false, "KVM_RUN did not return within 2000 ms (nested KVM hangs)"};
  f.vhost_vsock = false;
  f.vhost_vsock_detail = "no /dev/vhost-vsock";
  f.cgroup_mode = "hybrid";
  const auto r = hv::evaluate_host(f);
  CHECK(r.runnable);
  CHECK(r.accelerator == "tcg");
  CHECK(r.summary.find("TCG") != std::string::npos);
  CHECK(r.summary.find("nested KVM hangs") != std::string::npos);
  CHECK(find(r, "kvm").status == check_status::note);
  CHECK(find(r, "vhost-vsock").status == check_status::note);
  CHECK(find(r, "vhost-vsock").detail == "no /dev/vhost-vsock: the agent channel is virtio-serial");
  CHECK(find(r, "cgroup").detail == "hybrid (v1 and v2)");
}

TEST_CASE("host check: accelerator = kvm without a usable KVM fails", "[host_check]") {
  auto f = good_host();
  f.accelerator = "kvm";
  f.kvm = {false, "no /dev/kvm"};
  const auto r = hv::evaluate_host(f);
  CHECK_FALSE(r.runnable);
  CHECK(r.accelerator.empty());
  CHECK(r.summary == "no VM can run here: 1 problem");
  CHECK(find(r, "kvm").status == check_status::fail);
  CHECK(find(r, "kvm").detail.find("no /dev/kvm") != std::string::npos);
}

TEST_CASE("host check: a configuration that does not load fails once, its notes are shown",
          "[host_check]") {
  auto f = good_host();
  f.config_error = "bad.toml:1: missing key-value separator";
  f.assets_known = false;
  f.qemu = {};
  f.kernel = {};
  f.initrd = {};
  const auto r = hv::evaluate_host(f);
  CHECK_FALSE(r.runnable);
  CHECK(r.summary == "no VM can run here: 1 problem");  // not also "no kernel configured"
  CHECK(find(r, "assets").status == check_status::note);

  auto g = good_host();
  g.config_notes = {"hypervisor.qemu.default_vcpus: 64 is more than the host's 2 CPUs; using 2"};
  const auto ok = hv::evaluate_host(g);
  CHECK(ok.runnable);
  std::size_t notes = 0;
  for (const auto& c : ok.checks) {
    notes += c.name == "configuration-note" && c.status == check_status::note &&
             c.detail == g.config_notes[0];
  }
  CHECK(notes == 1);
}

TEST_CASE("host check: accelerator = tcg does not probe and still runs", "[host_check]") {
  auto f = good_host();
  f.accelerator = "tcg";
  f.kvm_probed = false;
  f.kvm = {};
  const auto r = hv::evaluate_host(f);
  CHECK(r.runnable);
  CHECK(r.accelerator == "tcg");
  CHECK(find(r, "kvm").status == check_status::note);
}

TEST_CASE("host check: missing assets are failures that say how to get them", "[host_check]") {
  auto f = good_host();
  f.kernel = {.path = "/usr/share/katana/vmlinux"};
  f.initrd = {.path = "/usr/share/katana/katana-initrd.img"};
  f.qemu = {.path = "/usr/bin/qemu-system-x86_64"};
  const auto r = hv::evaluate_host(f);
  CHECK_FALSE(r.runnable);
  CHECK(r.summary == "no VM can run here: 3 problems");
  CHECK(find(r, "kernel").detail ==
        "/usr/share/katana/vmlinux does not exist (katana-ctl image build installs it)");
  CHECK(find(r, "initrd").status == check_status::fail);
  CHECK(find(r, "qemu").detail.find("apt-get install qemu-system-x86") != std::string::npos);
}

TEST_CASE("host check: microvm needs an ELF kernel", "[host_check]") {
  auto f = good_host();
  f.kernel_is_elf = false;
  CHECK(find(hv::evaluate_host(f), "kernel").status == check_status::fail);
  f.machine_type = "q35";  // a bzImage is fine there
  CHECK(find(hv::evaluate_host(f), "kernel").status == check_status::ok);
}

TEST_CASE("host check: virtiofsd matters only for shared_fs = virtio-fs", "[host_check]") {
  auto f = good_host();
  f.virtiofsd = {.path = "/usr/lib/qemu/virtiofsd"};
  auto r = hv::evaluate_host(f);
  CHECK(r.runnable);
  CHECK(find(r, "virtiofsd").status == check_status::note);
  f.shared_fs = "virtio-fs";
  r = hv::evaluate_host(f);
  CHECK_FALSE(r.runnable);
  CHECK(find(r, "virtiofsd").status == check_status::fail);
}

TEST_CASE("host check: image instead of initrd; neither fails", "[host_check]") {
  auto f = good_host();
  f.initrd = {};
  f.image = present("/usr/share/katana/rootfs.img");
  auto r = hv::evaluate_host(f);
  CHECK(r.runnable);
  CHECK(find(r, "image").status == check_status::ok);
  f.image = {};
  r = hv::evaluate_host(f);
  CHECK_FALSE(r.runnable);
  CHECK(find(r, "initrd").detail == "neither initrd nor image is configured");
}

TEST_CASE("host check: not root, bad configuration, unknown TSC, no cgroups", "[host_check]") {
  auto f = good_host();
  f.root = false;
  f.config_error = "configuration.toml:3: hypervisor.qemu.path: expected a string";
  f.kvm = {false, "no /dev/kvm"};
  f.host_tsc_khz = 0;
  f.cgroup_mode = "none";
  const auto r = hv::evaluate_host(f);
  CHECK_FALSE(r.runnable);
  CHECK(find(r, "root").status == check_status::fail);
  CHECK(find(r, "configuration").detail == f.config_error);
  CHECK(find(r, "tsc").status == check_status::warning);
  CHECK(find(r, "cgroup").status == check_status::warning);
  CHECK(count(r, check_status::fail) == 2);
}

TEST_CASE("host check: a QEMU for another arch is a warning", "[host_check]") {
  auto f = good_host();
  f.qemu = present("/usr/bin/qemu-system-aarch64");
  const auto r = hv::evaluate_host(f);
  CHECK(r.runnable);
  CHECK(find(r, "qemu").status == check_status::warning);
}

TEST_CASE("host check: gather finds files, ELF kernels and what is missing", "[host_check]") {
  namespace fs = std::filesystem;
  const fs::path dir =
      fs::temp_directory_path() / ("katana-host-check-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  {
    std::ofstream(dir / "vmlinux") << "\x7F"
                                      "ELF and more";
    std::ofstream(dir / "empty.img");
  }
  katana::config::hypervisor_config h;
  h.accelerator = "tcg";  // no probe in a unit test
  h.path = "/bin/sh";     // executable, but not `--version`-clean everywhere: not asserted
  h.kernel = (dir / "vmlinux").string();
  h.initrd = (dir / "empty.img").string();
  h.virtio_fs_daemon = (dir / "missing-virtiofsd").string();
  h.shared_fs = "virtio-9p";
  const auto f = hv::gather_host_facts(h, {.run_qemu = false});
  fs::remove_all(dir);
  CHECK_FALSE(f.kvm_probed);
  CHECK(f.qemu.exists);
  CHECK(f.qemu.usable);
  CHECK(f.kernel.usable);
  CHECK(f.kernel_is_elf);
  CHECK(f.initrd.exists);
  CHECK_FALSE(f.initrd.usable);
  CHECK(f.initrd.detail == "empty or unreadable");
  CHECK_FALSE(f.virtiofsd.exists);
  CHECK(f.root == (::geteuid() == 0));
  const auto r = hv::evaluate_host(f);
  CHECK(find(r, "initrd").status == check_status::fail);
  CHECK(find(r, "virtiofsd").status == check_status::note);
}

TEST_CASE("host check: version_line runs a binary and keeps its first line", "[host_check]") {
  namespace fs = std::filesystem;
  CHECK(hv::detail::version_line("/nonexistent/qemu").empty());
  const fs::path script =
      fs::temp_directory_path() / ("katana-version-" + std::to_string(::getpid()));
  {
    std::ofstream(script) << "#!/bin/sh\necho \"QEMU emulator version 7.2 $1\"\necho second line\n";
  }
  fs::permissions(script, fs::perms::owner_all);
  CHECK(hv::detail::version_line(script.string()) == "QEMU emulator version 7.2 --version");
  { std::ofstream(script) << "#!/bin/sh\necho fails\nexit 1\n"; }
  CHECK(hv::detail::version_line(script.string()).empty());  // a failing binary has no version
  fs::remove(script);
}
