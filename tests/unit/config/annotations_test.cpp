#include <map>
#include <string>
#include <utility>
#include <vector>

#include <katana/config/annotations.hpp>

#include "catch.hpp"

namespace config = katana::config;
using katana::errc;
using annotations = std::map<std::string, std::string>;

namespace {

config::configuration base() {
  config::configuration c;
  auto& h = c.hypervisors["qemu"];
  h.path = "/usr/bin/qemu-system-x86_64";
  h.kernel = "/usr/share/katana/vmlinux";
  h.initrd = "/usr/share/katana/katana-initrd.img";
  h.kernel_params = "cgroup_no_v1=all";
  h.enable_annotations = {"kernel_params", "default_.*",   "^path$",
                          "virtio_fs_.*",  "enable_iommu", "entropy_source"};
  h.valid_hypervisor_paths = {"/usr/bin/qemu-system-*"};
  h.valid_virtio_fs_daemon_paths = {"/usr/lib/qemu/virtiofsd", "/opt/*/virtiofsd"};
  return c;
}

config::annotated_configuration apply_ok(const config::configuration& c, const annotations& a) {
  auto r = config::apply_annotations(c, a);
  INFO((r ? std::string() : r.error().message()));
  REQUIRE(r);
  return *r;
}

std::string refused(const config::configuration& c, const annotations& a) {
  auto r = config::apply_annotations(c, a);
  REQUIRE_FALSE(r);
  CHECK(r.error().code == errc::invalid_config);
  return r.error().message();
}

}  // namespace

TEST_CASE("enabled hypervisor annotations override a copy", "[config][annotations]") {
  const auto c = base();
  const auto r = apply_ok(c, {{"io.katacontainers.config.hypervisor.default_vcpus", "2.5"},
                              {"io.katacontainers.config.hypervisor.default_memory", "4096"},
                              {"io.katacontainers.config.hypervisor.default_max_vcpus", "8"},
                              {"io.katacontainers.config.hypervisor.kernel_params", "debug x=1"},
                              {"io.katacontainers.config.hypervisor.enable_iommu", "t"},
                              {"io.katacontainers.config.hypervisor.virtio_fs_extra_args",
                               R"(["-o", "cache=\"none\""])"},
                              {"com.example.unrelated", "ignored"}});
  const auto& h = r.config.hypervisors.at("qemu");
  CHECK(h.default_vcpus == 3);  // Kata parses a float and rounds up
  CHECK(h.default_memory == 4096);
  CHECK(h.default_maxvcpus == 8);
  CHECK(h.kernel_params == "cgroup_no_v1=all debug x=1");  // appended
  CHECK(h.enable_iommu);
  CHECK(h.virtio_fs_extra_args == std::vector<std::string>{"-o", "cache=\"none\""});
  CHECK(r.notes.empty());
  CHECK(c.hypervisors.at("qemu").default_memory == 2048);  // the original is untouched
}

TEST_CASE("a hypervisor annotation needs a matching enable_annotations regex",
          "[config][annotations]") {
  auto c = base();
  CHECK(refused(c, {{"io.katacontainers.config.hypervisor.kernel", "/boot/x"}}) ==
        "annotation io.katacontainers.config.hypervisor.kernel is not enabled: "
        "hypervisor.qemu.enable_annotations has no pattern matching \"kernel\"");
  // Kata's regexpContains is a search: "path" alone would also enable jailer_path, so base()
  // anchors it; an unanchored pattern matches anywhere in the key.
  c.hypervisors.at("qemu").enable_annotations = {"ker"};
  CHECK(apply_ok(c, {{"io.katacontainers.config.hypervisor.kernel", "/boot/x"}})
            .config.hypervisors.at("qemu")
            .kernel == "/boot/x");
  // A pattern whose only match is empty does not count (Go's FindString returns "").
  c.hypervisors.at("qemu").enable_annotations = {"z*"};
  CHECK_FALSE(config::apply_annotations(
      c, annotations{{"io.katacontainers.config.hypervisor.kernel", "/boot/x"}}));
  c.hypervisors.at("qemu").enable_annotations.clear();
  CHECK(refused(c, {{"io.katacontainers.config.hypervisor.default_memory", "512"}}) ==
        "annotation io.katacontainers.config.hypervisor.default_memory is not enabled: "
        "hypervisor.qemu.enable_annotations is empty");
  c.hypervisors.at("qemu").enable_annotations = {"("};
  CHECK(refused(c, {{"io.katacontainers.config.hypervisor.default_memory", "512"}})
            .starts_with("annotation io.katacontainers.config.hypervisor.default_memory: "
                         "enable_annotations: \"(\" is not a regular expression"));
}

TEST_CASE("path-valued annotations must match a valid_*_paths glob", "[config][annotations]") {
  auto c = base();
  CHECK(apply_ok(c, {{"io.katacontainers.config.hypervisor.path", "/usr/bin/qemu-system-aarch64"}})
            .config.hypervisors.at("qemu")
            .path == "/usr/bin/qemu-system-aarch64");
  CHECK(refused(c, {{"io.katacontainers.config.hypervisor.path", "/tmp/evil-qemu"}}) ==
        "annotation io.katacontainers.config.hypervisor.path: \"/tmp/evil-qemu\" is not allowed "
        "by hypervisor.qemu.valid_hypervisor_paths");
  // '*' does not cross '/' (filepath.Match semantics).
  CHECK(refused(c, {{"io.katacontainers.config.hypervisor.virtio_fs_daemon", "/opt/a/b/virtiofsd"}})
            .ends_with("is not allowed by hypervisor.qemu.valid_virtio_fs_daemon_paths"));
  CHECK(apply_ok(c, {{"io.katacontainers.config.hypervisor.virtio_fs_daemon", "/opt/x/virtiofsd"}})
            .config.hypervisors.at("qemu")
            .virtio_fs_daemon == "/opt/x/virtiofsd");
  // An empty list refuses every path.
  CHECK(refused(c, {{"io.katacontainers.config.hypervisor.entropy_source", "/dev/random"}}) ==
        "annotation io.katacontainers.config.hypervisor.entropy_source: \"/dev/random\" is not "
        "allowed by hypervisor.qemu.valid_entropy_sources (empty: every path is refused)");
}

TEST_CASE("malformed annotation values are errors naming the annotation", "[config][annotations]") {
  const auto c = base();
  CHECK(refused(c, {{"io.katacontainers.config.hypervisor.default_memory", "lots"}}) ==
        "annotation io.katacontainers.config.hypervisor.default_memory: \"lots\" is not a number");
  CHECK(refused(c, {{"io.katacontainers.config.hypervisor.default_memory", "128"}}) ==
        "annotation io.katacontainers.config.hypervisor.default_memory: 128 MiB is less than the "
        "minimum of 256 MiB");
  CHECK(refused(c, {{"io.katacontainers.config.hypervisor.enable_iommu", "yes"}}) ==
        "annotation io.katacontainers.config.hypervisor.enable_iommu: \"yes\" is not a boolean");
  CHECK(refused(c, {{"io.katacontainers.config.hypervisor.virtio_fs_extra_args", "-o x"}}) ==
        "annotation io.katacontainers.config.hypervisor.virtio_fs_extra_args: \"-o x\" is not a "
        "JSON array of strings");
  CHECK(refused(c, {{"io.katacontainers.config.hypervisor.default_max_vcpus", "-2"}}) ==
        "annotation io.katacontainers.config.hypervisor.default_max_vcpus: expected a "
        "non-negative integer, got -2");
}

TEST_CASE("agent and runtime annotations are not gated", "[config][annotations]") {
  auto c = base();
  c.hypervisors.at("qemu").enable_annotations.clear();
  const auto r = apply_ok(c, {{"io.katacontainers.config.agent.kernel_modules", "e1000e a=1;i915"},
                              {"io.katacontainers.config.agent.enable_tracing", "true"},
                              {"io.katacontainers.config.agent.container_pipe_size", "2097152"},
                              {"io.katacontainers.config.runtime.disable_guest_seccomp", "false"},
                              {"io.katacontainers.config.runtime.experimental", "a b"},
                              {"io.katacontainers.config.runtime.internetworking_model", "macvtap"},
                              {"io.katacontainers.config.runtime.create_container_timeout", "120"},
                              {"io.katacontainers.config.agent.policy", "cGFja2FnZQ=="},
                              {"io.katacontainers.config.hypervisor_typo.x", "1"}});
  CHECK(r.config.agent.kernel_modules == std::vector<std::string>{"e1000e a=1", "i915"});
  CHECK(r.config.agent.enable_tracing);
  CHECK(r.config.agent.container_pipe_size == 2097152);
  CHECK_FALSE(r.config.runtime.disable_guest_seccomp);
  CHECK(r.config.runtime.experimental == std::vector<std::string>{"a", "b"});
  CHECK(r.config.runtime.internetworking_model == "macvtap");
  CHECK(r.config.runtime.create_container_timeout == 120);
  REQUIRE(r.notes.size() == 2);
  CHECK(r.notes[0] == "annotation io.katacontainers.config.agent.policy is not supported; ignored");
  CHECK(refused(c, {{"io.katacontainers.config.runtime.vfio_mode", "magic"}}) ==
        "annotation io.katacontainers.config.runtime.vfio_mode: \"magic\" is not one of "
        "guest-kernel, vfio");
  // Keys that are not annotatable are not settable: agent.enable_debug.
  CHECK(apply_ok(c, {{"io.katacontainers.config.agent.enable_debug", "true"}}).notes.size() == 1);
}

TEST_CASE("an enabled but unknown hypervisor annotation is a note", "[config][annotations]") {
  auto c = base();
  c.hypervisors.at("qemu").enable_annotations = {".*"};
  const auto r = apply_ok(c, {{"io.katacontainers.config.hypervisor.jailer_path", "/j"},
                              {"io.katacontainers.config.hypervisor.bogus", "1"}});
  CHECK(r.notes.size() == 2);
  CHECK(r.config.hypervisors.at("qemu").jailer_path.empty());  // not a qemu key
}
