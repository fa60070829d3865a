#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <unistd.h>

#include <katana/config/load.hpp>
#include <katana/config/validate.hpp>

#include "../temp_dir.hpp"
#include "catch.hpp"

namespace config = katana::config;
namespace fs = std::filesystem;
using katana::errc;

namespace {

config::configuration parse_ok(std::string_view text, config::warnings* notes = nullptr) {
  config::warnings local;
  auto cfg = config::parse(text, "configuration.toml", notes != nullptr ? *notes : local);
  INFO((cfg ? std::string() : cfg.error().message()));
  REQUIRE(cfg);
  return *cfg;
}

std::string parse_error(std::string_view text) {
  config::warnings notes;
  auto cfg = config::parse(text, "configuration.toml", notes);
  REQUIRE_FALSE(cfg);
  return cfg.error().message();
}

// A scratch directory, removed at the end of the test.
struct temp_dir : katana_test::temp_dir {
  temp_dir() : katana_test::temp_dir("katana-config") {}
  fs::path write(const fs::path& rel, std::string_view text) const {
    const auto p = path / rel;
    fs::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary) << text;
    return p;
  }
};

// Sets (or unsets) an environment variable for the scope.
struct scoped_env {
  std::string name;
  std::string old;
  bool had;
  scoped_env(std::string n, const char* value) : name(std::move(n)) {
    const char* o = std::getenv(name.c_str());
    had = o != nullptr;
    old = had ? o : "";
    if (value != nullptr) {
      ::setenv(name.c_str(), value, 1);
    } else {
      ::unsetenv(name.c_str());
    }
  }
  ~scoped_env() {
    if (had) {
      ::setenv(name.c_str(), old.c_str(), 1);
    } else {
      ::unsetenv(name.c_str());
    }
  }
};

config::load_options isolated(const temp_dir& d) {
  config::load_options o;
  o.use_environment = false;
  o.search_paths = {d.path / "etc/configuration.toml", d.path / "share/configuration.toml"};
  return o;
}

}  // namespace

TEST_CASE("every section and key type is read", "[config][load]") {
  const auto cfg = parse_ok(R"(
[hypervisor.qemu]
path = "/usr/bin/qemu-system-x86_64"
kernel = "/k"
initrd = "/i"
machine_type = "q35"
accelerator = "tcg"
kvm_probe_timeout_ms = 500
default_vcpus = 2
default_maxvcpus = 4
default_memory = 1024
memory_offset = 64
enable_virtio_mem = true
shared_fs = "virtio-fs"
virtio_fs_extra_args = ["--thread-pool-size=1", "-o", "announce_submounts"]
enable_annotations = ["kernel_params", "default_.*"]

[hypervisor.firecracker]
path = "/usr/bin/firecracker"
jailer_path = "/usr/bin/jailer"

[agent.kata]
enable_debug = true
kernel_modules = ["e1000e InterruptThrottleRate=3000", "i915"]
dial_timeout = 10
channel = "vsock"

[runtime]
internetworking_model = "none"
disable_new_netns = true
sandbox_bind_mounts = ["/opt/a", "/opt/b:ro"]
experimental = ["force_guest_pull"]
create_container_timeout = 30

[factory]
enable_template = true
template_path = "/run/t"
)");
  REQUIRE(cfg.hypervisors.size() == 2);
  const auto& q = cfg.hypervisors.at("qemu");
  CHECK(q.path == "/usr/bin/qemu-system-x86_64");
  CHECK(q.accelerator == "tcg");
  CHECK(q.kvm_probe_timeout_ms == 500);
  CHECK(q.default_vcpus == 2);
  CHECK(q.default_maxvcpus == 4);
  CHECK(q.default_memory == 1024);
  CHECK(q.memory_offset == 64);
  CHECK(q.enable_virtio_mem);
  CHECK(q.virtio_fs_extra_args.size() == 3);
  CHECK(q.enable_annotations == std::vector<std::string>{"kernel_params", "default_.*"});
  CHECK(q.memory_slots == 10);  // absent keys keep Kata's code defaults
  CHECK(q.block_device_driver == "virtio-scsi");
  const auto& fc = cfg.hypervisors.at("firecracker");
  CHECK(fc.jailer_path == "/usr/bin/jailer");
  CHECK(fc.block_device_driver == "virtio-mmio");  // the firecracker default
  CHECK(cfg.agent.enable_debug);
  CHECK(cfg.agent.kernel_modules.size() == 2);
  CHECK(cfg.agent.dial_timeout == 10);
  CHECK(cfg.agent.channel == "vsock");
  CHECK(cfg.runtime.internetworking_model == "none");
  CHECK(cfg.runtime.disable_new_netns);
  CHECK(cfg.runtime.sandbox_bind_mounts.size() == 2);
  CHECK(cfg.runtime.experimental == std::vector<std::string>{"force_guest_pull"});
  CHECK(cfg.runtime.create_container_timeout == 30);
  CHECK(cfg.factory.enable_template);
  CHECK(cfg.factory.template_path == "/run/t");
}

TEST_CASE("a float vCPU count is rounded up (Kata's float32 default_vcpus)", "[config][load]") {
  const auto cfg = parse_ok("[hypervisor.qemu]\ndefault_vcpus = 1.5\n");
  CHECK(cfg.hypervisors.at("qemu").default_vcpus == 2);
}

TEST_CASE("wrong types are errors naming file, line and key", "[config][load]") {
  CHECK(parse_error("# comment\n\n[hypervisor.qemu]\npath = \"/q\"\ndefault_vcpus = \"two\"\n") ==
        "configuration.toml:5: hypervisor.qemu.default_vcpus: expected an integer, got a string");
  CHECK(parse_error("[agent.kata]\nenable_debug = 1\n") ==
        "configuration.toml:2: agent.kata.enable_debug: expected a boolean, got an integer");
  CHECK(parse_error("[runtime]\nexperimental = [1, 2]\n") ==
        "configuration.toml:2: runtime.experimental: expected an array of strings, got an array "
        "of integers");
  CHECK(parse_error("[hypervisor.qemu]\nkernel = {a = 1}\n") ==
        "configuration.toml:2: hypervisor.qemu.kernel: expected a string, got a table");
  CHECK(parse_error("[hypervisor.qemu]\nmemory_slots = -1\n") ==
        "configuration.toml:2: hypervisor.qemu.memory_slots: expected a non-negative integer, got "
        "-1");
  CHECK(parse_error("[hypervisor.qemu]\ndefault_vcpus = 9999999999\n")
            .starts_with("configuration.toml:2: hypervisor.qemu.default_vcpus: 9999999999 is out "
                         "of range"));
  CHECK(parse_error("runtime = 3\n") ==
        "configuration.toml:1: runtime: expected a table, got an "
        "integer");
}

TEST_CASE("values outside their choices and relative paths are errors", "[config][load]") {
  CHECK(parse_error("[hypervisor.qemu]\nshared_fs = \"nfs\"\n") ==
        "configuration.toml:2: hypervisor.qemu.shared_fs: \"nfs\" is not one of virtio-fs, "
        "virtio-fs-nydus, virtio-9p, inline-virtio-fs, none");
  CHECK(parse_error("[hypervisor.qemu]\naccelerator = \"hvf\"\n") ==
        "configuration.toml:2: hypervisor.qemu.accelerator: \"hvf\" is not one of auto, kvm, tcg");
  CHECK(parse_error("[hypervisor.qemu]\nkernel = \"vmlinux\"\n") ==
        "configuration.toml:2: hypervisor.qemu.kernel: \"vmlinux\" is not an absolute path");
  CHECK(parse_error("[runtime]\nsandbox_bind_mounts = [\"/a\", \"b\"]\n") ==
        "configuration.toml:2: runtime.sandbox_bind_mounts: element 1: \"b\" is not an absolute "
        "path");
}

TEST_CASE("unknown keys and sections are warnings", "[config][load]") {
  config::warnings notes;
  const auto cfg = parse_ok(R"(top = true
[hypervisor.qemu]
path = "/q"
no_such_key = 1
jailer_path = "/j"

[hypervisor.bochs]
path = "/b"

[hypervisor.dragonball.factory]
enable_template = true

[agent.kata.mem_agent]
enable = true

[agent.other]
x = 1

[mystery]
a = 1
)",
                            &notes);
  CHECK(cfg.hypervisors.contains("qemu"));
  CHECK_FALSE(cfg.hypervisors.contains("bochs"));
  CHECK(cfg.hypervisors.at("qemu").jailer_path.empty());
  const auto has = [&](std::string_view text) {
    for (const auto& n : notes) {
      if (n.find(text) != std::string::npos) {
        return true;
      }
    }
    return false;
  };
  INFO(notes.size());
  CHECK(has("configuration.toml:4: unknown key hypervisor.qemu.no_such_key (ignored)"));
  CHECK(has("configuration.toml:5: hypervisor.qemu.jailer_path is not a qemu setting (ignored)"));
  CHECK(has("unknown section [hypervisor.bochs] (ignored)"));
  CHECK(has("unknown section [hypervisor.dragonball.factory] (ignored)"));
  CHECK(has("unknown section [agent.kata.mem_agent] (ignored)"));
  CHECK(has("unknown section [agent.other] (ignored)"));
  CHECK(has("unknown section [mystery] (ignored)"));
  CHECK(has("configuration.toml:1: unknown key top (ignored)"));
}

TEST_CASE("syntax errors carry toml11's location text", "[config][load]") {
  const auto e = parse_error("[hypervisor.qemu]\npath = \n");
  CHECK(e.find("configuration.toml") != std::string::npos);
  CHECK(e.find("2") != std::string::npos);
  config::warnings notes;
  auto cfg = config::parse("a = [1,\n", "x.toml", notes);
  REQUIRE_FALSE(cfg);
  CHECK(cfg.error().code == errc::parse_error);
}

TEST_CASE("the text gate keeps toml11 3.7.1 away from input it over-reads", "[config][load]") {
  // ToruNiina/toml11#199: heap-buffer-overflow in parse_literal_string on this input.
  CHECK(parse_error("[']\xb1[']\xb1") == "configuration.toml:1:4: invalid UTF-8 (byte 0xb1)");
  CHECK(parse_error("a = \"ok\"\nb = \"\xc3\x28\"\n") ==
        "configuration.toml:2:6: invalid UTF-8 (byte 0xc3)");
  CHECK(parse_error("a = '\xed\xa0\x80'\n") ==  // a UTF-16 surrogate, as toml11 also refuses
        "configuration.toml:1:6: invalid UTF-8 (byte 0xed)");
  CHECK(parse_error("a = \"x\\\xb1\"\n") == "configuration.toml:1:8: invalid UTF-8 (byte 0xb1)");
  CHECK(parse_error("a = 1\x01\n") ==
        "configuration.toml:1:6: control character 0x01 is not allowed in TOML");
  CHECK(parse_error("a = 1\rb = 2\n") ==
        "configuration.toml:1:6: carriage return not followed by a line feed");
  CHECK(parse_error("a = " + std::string(40, '[') + std::string(40, ']') + "\n") ==
        "configuration.toml:1:37: nested deeper than 32 levels");
  CHECK(parse_error("a = \"" + std::string(300, '[') + "\"\n") ==
        "configuration.toml: more than 256 '[' and '{' characters");
  // Valid UTF-8, CR LF, tabs and brackets inside strings pass.
  const auto cfg = parse_ok(
      "[runtime]\r\nguest_selinux_label = \"caf\xc3\xa9 \xf0\x9f\x90\xb3 [[[[\"\t# "
      "\xe2\x9c\x93\r\n");
  CHECK(cfg.runtime.guest_selinux_label == "caf\xc3\xa9 \xf0\x9f\x90\xb3 [[[[");
  config::warnings notes;
  auto big = config::parse(std::string((1 << 20) + 1, '#'), "big.toml", notes);
  REQUIRE_FALSE(big);
  CHECK(big.error().message() == "big.toml: 1048577 bytes is more than the limit of 1048576");
}

TEST_CASE("the embedded defaults are config/configuration.toml", "[config][defaults]") {
  std::ifstream f(KATANA_SOURCE_DIR "/config/configuration.toml", std::ios::binary);
  REQUIRE(f);
  std::stringstream text;
  text << f.rdbuf();
  INFO(
      "regenerate: cmake -DINPUT=config/configuration.toml "
      "-DOUTPUT=include/katana/config/defaults.hpp -P config/embed_defaults.cmake");
  CHECK(text.str() == config::default_configuration_toml);
}

TEST_CASE("the embedded defaults parse without warnings and validate on this host",
          "[config][defaults]") {
  config::warnings notes;
  auto cfg = config::parse(config::default_configuration_toml, "defaults", notes);
  REQUIRE(cfg);
  CHECK(notes.empty());
  const auto* q = cfg->hypervisor();
  REQUIRE(q != nullptr);
  CHECK(q->path == "/usr/bin/qemu-system-x86_64");
  CHECK(q->machine_type == "microvm");
  CHECK(q->accelerator == "auto");
  CHECK(q->kernel == "/usr/share/katana/vmlinux");
  CHECK(q->initrd == "/usr/share/katana/katana-initrd.img");
  CHECK(q->shared_fs == "virtio-9p");
  CHECK(cfg->agent.channel == "virtio-serial");
  const config::host_info host{.cpus = 2,
                               .memory_bytes = std::uint64_t{24} << 30,
                               .arch = "x86_64",
                               .limits = {.max_vcpus = 240,
                                          .memory_block_mib = 1,
                                          .default_machine_type = "q35",
                                          .machine_types = {"q35", "microvm"},
                                          .supports_iommu = true}};
  CHECK(config::adjust(*cfg, host, notes));
  CHECK(notes.empty());
  auto st = config::validate(*cfg, host);
  INFO((st ? std::string() : st.error().message()));
  CHECK(st);
}

TEST_CASE("lookup order: explicit path, KATANA_CONF_FILE, /etc, /usr/share, embedded",
          "[config][load]") {
  temp_dir d;
  const auto share = d.write("share/configuration.toml", "[hypervisor.qemu]\npath = \"/share\"\n");
  auto opts = isolated(d);
  auto r = config::load(opts);
  REQUIRE(r);
  CHECK(r->sources == std::vector<std::string>{share.native()});
  CHECK(r->config.hypervisors.at("qemu").path == "/share");

  const auto etc = d.write("etc/configuration.toml", "[hypervisor.qemu]\npath = \"/etc\"\n");
  r = config::load(opts);
  REQUIRE(r);
  CHECK(r->config.hypervisors.at("qemu").path == "/etc");

  const auto env_file = d.write("env.toml", "[hypervisor.qemu]\npath = \"/env\"\n");
  {
    scoped_env env(config::conf_file_env, env_file.c_str());
    opts.use_environment = true;
    r = config::load(opts);
    REQUIRE(r);
    CHECK(r->config.hypervisors.at("qemu").path == "/env");

    const auto explicit_file = d.write("x.toml", "[hypervisor.qemu]\npath = \"/explicit\"\n");
    opts.path = explicit_file;
    r = config::load(opts);
    REQUIRE(r);
    CHECK(r->config.hypervisors.at("qemu").path == "/explicit");
    opts.path.clear();
  }
  {
    scoped_env env(config::conf_file_env, (d.path / "missing.toml").c_str());
    r = config::load(opts);
    REQUIRE_FALSE(r);
    CHECK(r.error().code == std::errc::no_such_file_or_directory);
  }
  opts.use_environment = false;
  opts.path = d.path / "nope.toml";
  CHECK_FALSE(config::load(opts));

  temp_dir empty;
  auto none = isolated(empty);
  r = config::load(none);
  REQUIRE(r);
  CHECK(r->sources == std::vector<std::string>{std::string(config::embedded_name)});
  CHECK(r->config.hypervisors.at("qemu").machine_type == "microvm");
  none.embedded_fallback = false;
  r = config::load(none);
  REQUIRE_FALSE(r);
  CHECK(r.error().code == errc::not_found);
}

TEST_CASE("config.d drop-ins override in lexical order", "[config][load]") {
  temp_dir d;
  const auto base = d.write("etc/configuration.toml", R"([hypervisor.qemu]
path = "/base"
default_memory = 1024
default_vcpus = 1
[agent.kata]
kernel_modules = ["a"]
)");
  const auto second =
      d.write("etc/config.d/20-memory.toml", "[hypervisor.qemu]\ndefault_memory = 4096\n");
  const auto first = d.write("etc/config.d/10-cpus.toml",
                             "[hypervisor.qemu]\ndefault_vcpus = 2\ndefault_memory = 512\n"
                             "[agent.kata]\nkernel_modules = []\n");
  d.write("etc/config.d/README", "not toml");
  d.write("etc/config.d/.hidden.toml", "this = is not toml");
  auto r = config::load(isolated(d));
  REQUIRE(r);
  CHECK(r->sources == std::vector<std::string>{base.native(), first.native(), second.native()});
  const auto& q = r->config.hypervisors.at("qemu");
  CHECK(q.path == "/base");
  CHECK(q.default_vcpus == 2);
  CHECK(q.default_memory == 4096);  // 20-memory.toml comes after 10-cpus.toml
  CHECK(r->config.agent.kernel_modules.empty());
  REQUIRE(r->notes.size() == 1);
  CHECK(r->notes[0].find("README: not a *.toml file (skipped)") != std::string::npos);

  d.write("etc/config.d/30-bad.toml", "[hypervisor.qemu]\ndefault_memory = \"lots\"\n");
  auto bad = config::load(isolated(d));
  REQUIRE_FALSE(bad);
  CHECK(bad.error().message() == (d.path / "etc/config.d/30-bad.toml").native() +
                                     ":2: hypervisor.qemu.default_memory: expected an integer, "
                                     "got a string");
  auto no_drop_ins = isolated(d);
  no_drop_ins.drop_ins = false;
  r = config::load(no_drop_ins);
  REQUIRE(r);
  CHECK(r->config.hypervisors.at("qemu").default_memory == 1024);
}
