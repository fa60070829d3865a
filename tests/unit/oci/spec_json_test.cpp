#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <sys/stat.h>
#include <unistd.h>

#include <katana/core/scope_exit.hpp>
#include <katana/oci/spec_json.hpp>

#include "catch.hpp"
#include "fixtures.hpp"

using katana::errc;
namespace oci = katana::oci;

namespace {

// The error message of a document that must not parse.
std::string parse_error_of(std::string_view text) {
  auto r = oci::parse_spec(text);
  REQUIRE_FALSE(r);
  return r.error().message();
}

// A minimal document with `member` spliced into "process".
std::string with_process(std::string_view member) {
  return std::string(R"({"ociVersion":"1.2.0","process":{"cwd":"/",)") + std::string(member) + "}}";
}

std::filesystem::path temp_dir() {
  std::string tmpl = (std::filesystem::temp_directory_path() / "katana-oci-XXXXXX").string();
  REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
  return tmpl;
}

}  // namespace

TEST_CASE("full config.json: every member is read", "[oci][json]") {
  auto r = oci::parse_spec(katana_test::full_config);
  INFO((r ? "" : r.error().message()));
  REQUIRE(r);
  const oci::spec& s = *r;
  CHECK(s.oci_version == "1.2.0");
  REQUIRE(s.process);
  const auto& p = *s.process;
  CHECK(p.terminal);
  CHECK(p.console_size == oci::console_size{25, 80});
  CHECK(p.user.uid == 1000);
  CHECK(p.user.umask == 18u);
  CHECK(p.user.additional_gids == std::vector<std::uint32_t>{5, 6, 4294967295u});
  CHECK(p.args.at(2) == "ünïcödé ✓");
  CHECK(p.env.at(1) == "EMPTY=");
  CHECK(p.capabilities->ambient == std::vector<std::string>{"CAP_BPF"});
  CHECK(p.rlimits.at(1).hard == 18446744073709551615u);
  CHECK(p.oom_score_adj == -500);
  CHECK(p.scheduler->policy == "SCHED_DEADLINE");
  CHECK(p.scheduler->nice == -3);
  CHECK(p.scheduler->period == 30000);
  CHECK(p.io_priority->class_ == "IOPRIO_CLASS_BE");
  CHECK(p.io_priority->priority == 4);
  CHECK(p.exec_cpu_affinity->final == "0-3,7");
  CHECK(p.apparmor_profile == "katana-default");
  CHECK(s.root->path == "/run/bundle/rootfs");
  CHECK(s.root->readonly);
  CHECK(s.hostname == "box");
  CHECK(s.domainname == "example.org");
  REQUIRE(s.mounts.size() == 2);
  CHECK(s.mounts[1].uid_mappings.at(0).host_id == 100000);
  CHECK(s.hooks->prestart.at(0).timeout == 5);
  CHECK(s.hooks->poststop.at(0).args.at(1) == "-f");
  CHECK(s.annotations.at("empty").empty());
  REQUIRE(s.linux_);
  const auto& l = *s.linux_;
  CHECK(l.sysctl.at("kernel.shmmax") == "4294967296");
  const auto& res = *l.resources;
  CHECK(res.devices.at(2).major == 8);
  CHECK_FALSE(res.devices.at(2).minor);
  CHECK(res.memory->kernel == -1);
  CHECK(res.memory->swappiness == 0u);
  CHECK(res.memory->disable_oom_killer == false);
  CHECK(res.memory->check_before_update == true);
  CHECK(res.cpu->burst == 1000000u);
  CHECK(res.cpu->idle == 0);
  CHECK(res.pids->limit == 32771);
  CHECK(res.block_io->weight_device.at(0).leaf_weight == 300);
  CHECK_FALSE(res.block_io->weight_device.at(1).leaf_weight);
  CHECK(res.block_io->throttle_read_iops_device.at(0).rate == 18446744073709551615u);
  CHECK(res.hugepage_limits.at(1).page_size == "64KB");
  CHECK(res.network->class_id == 1048577u);
  CHECK(res.rdma.at("mlx4_0").hca_objects == 1000u);
  CHECK_FALSE(res.rdma.at("mlx4_0").hca_handles);
  CHECK(res.unified.at("memory.high") == "max");
  CHECK(l.cgroups_path == "/myRuntime/myContainer");
  CHECK(l.namespaces.at(7).path == "/proc/1/ns/time");
  CHECK(l.devices.at(0).file_mode == 438u);
  CHECK_FALSE(l.devices.at(1).uid);
  const auto& sc = *l.seccomp;
  CHECK(sc.default_errno_ret == 1u);
  CHECK(sc.flags.size() == 2);
  CHECK(sc.listener_metadata == "metadata");
  CHECK(sc.syscalls.at(1).args.at(1).value_two == 8);
  CHECK(sc.syscalls.at(3).errno_ret == 38u);
  CHECK(l.rootfs_propagation == "rslave");
  CHECK(l.intel_rdt->enable_mbm);
  CHECK(l.intel_rdt->schemata == "L3:0=ff");
  CHECK(l.personality->domain == "LINUX32");
  CHECK(l.time_offsets.at("monotonic").nanosecs == 500);
  CHECK(l.time_offsets.at("boottime").secs == -1);
}

TEST_CASE("full config.json round-trips through to_json", "[oci][json]") {
  auto s = oci::parse_spec(katana_test::full_config);
  REQUIRE(s);
  for (int indent : {-1, 0, 2, 8}) {
    const std::string text = oci::to_json(*s, indent);
    auto again = oci::parse_spec(text);
    INFO(text);
    REQUIRE(again);
    CHECK(*again == *s);
    CHECK(oci::to_json(*again, indent) == text);
  }
  const std::string compact = oci::to_json(*s);
  // The spec's camelCase names are written, unknown sections are not.
  for (std::string_view name : {"\"ociVersion\"",
                                "\"cgroupsPath\"",
                                "\"rootfsPropagation\"",
                                "\"noNewPrivileges\"",
                                "\"oomScoreAdj\"",
                                "\"consoleSize\"",
                                "\"additionalGids\"",
                                "\"apparmorProfile\"",
                                "\"selinuxLabel\"",
                                "\"ioPriority\"",
                                "\"intelRdt\"",
                                "\"timeOffsets\"",
                                "\"mountLabel\"",
                                "\"maskedPaths\"",
                                "\"readonlyPaths\"",
                                "\"containerID\"",
                                "\"hostID\"",
                                "\"defaultErrnoRet\"",
                                "\"errnoRet\"",
                                "\"valueTwo\"",
                                "\"hugepageLimits\"",
                                "\"pageSize\"",
                                "\"throttleReadBpsDevice\"",
                                "\"throttleWriteIOPSDevice\"",
                                "\"realtimeRuntime\"",
                                "\"disableOOMKiller\"",
                                "\"kernelTCP\"",
                                "\"leafWeight\"",
                                "\"weightDevice\"",
                                "\"fileMode\"",
                                "\"execCPUAffinity\"",
                                "\"checkBeforeUpdate\"",
                                "\"listenerPath\"",
                                "\"closID\"",
                                "\"l3CacheSchema\"",
                                "\"enableCMT\"",
                                "\"classID\"",
                                "\"hcaHandles\"",
                                "\"createRuntime\"",
                                "\"startContainer\"",
                                "\"class\"",
                                "\"blockIO\""}) {
    INFO(name);
    CHECK(compact.find(name) != std::string::npos);
  }
  CHECK(compact.find("windows") == std::string::npos);
  CHECK(compact.find("futureField") == std::string::npos);
  CHECK(compact.starts_with(R"({"ociVersion":"1.2.0","process":{"terminal":true,)"));
}

TEST_CASE("to_json omits unset members and keeps Go's always-written ones", "[oci][json]") {
  oci::spec s;
  s.oci_version = "1.2.0";
  CHECK(oci::to_json(s) == R"({"ociVersion":"1.2.0"})");
  s.process.emplace();
  s.process->cwd = "/";
  s.linux_.emplace().devices.push_back(oci::linux_device{"/dev/null", "c", 1, 3, {}, {}, {}});
  CHECK(oci::to_json(s) ==
        R"({"ociVersion":"1.2.0","process":{"user":{"uid":0,"gid":0},"cwd":"/"},)"
        R"("linux":{"devices":[{"path":"/dev/null","type":"c","major":1,"minor":3}]}})");
  s.process->oom_score_adj = 0;  // set to zero is not unset
  CHECK(oci::to_json(s).find(R"("oomScoreAdj":0)") != std::string::npos);
  CHECK(oci::parse_spec(oci::to_json(s)) == s);
}

TEST_CASE("runc spec output parses", "[oci][json]") {
  auto r = oci::parse_spec(katana_test::runc_spec);
  REQUIRE(r);
  CHECK(r->oci_version == "1.0.2-dev");
  CHECK(r->process->args == std::vector<std::string>{"sh"});
  CHECK(r->process->capabilities->ambient.size() == 3);
  CHECK(r->process->rlimits.at(0).soft == 1024);
  CHECK(r->mounts.size() == 7);
  CHECK(r->mounts.at(0).options.empty());
  CHECK(r->linux_->resources->devices.at(0).access == "rwm");
  CHECK(r->linux_->namespaces.size() == 5);
  CHECK(r->linux_->masked_paths.size() == 10);
  CHECK(oci::parse_spec(oci::to_json(*r, 1)) == *r);

  auto rootless = oci::parse_spec(katana_test::runc_spec_rootless);
  REQUIRE(rootless);
  CHECK(rootless->linux_->uid_mappings.at(0).size == 1);
  CHECK(rootless->linux_->namespaces.back().type == "user");
  CHECK_FALSE(rootless->linux_->resources);
}

TEST_CASE("malformed JSON is a parse_error naming the byte", "[oci][json]") {
  auto r = oci::parse_spec(R"({"ociVersion": "1.2.0", )");
  REQUIRE_FALSE(r);
  CHECK(r.error().code == errc::parse_error);
  CHECK(r.error().message().starts_with("config.json: parse error at byte 25: "));
  CHECK(r.error().message().find("[json.exception") == std::string::npos);

  CHECK(parse_error_of("").starts_with("config.json: parse error at byte 1: "));
  CHECK(parse_error_of("   ").find("unexpected end of input") != std::string::npos);
  CHECK(parse_error_of(R"({"ociVersion":"1.2.0"} x)").find("parse error at byte") !=
        std::string::npos);
  CHECK(parse_error_of(R"({"ociVersion":"1.2.0",})").find("parse error") != std::string::npos);
  CHECK(parse_error_of("{'ociVersion':'1'}").find("parse error") != std::string::npos);
  CHECK(parse_error_of(R"({"ociVersion":"1.2.0" /* c */})").find("parse error") !=
        std::string::npos);
  CHECK(parse_error_of(R"({"ociVersion":"\ud800"})").find("parse error") != std::string::npos);
  // Not UTF-8: a Latin-1 byte and an overlong encoding.
  CHECK(parse_error_of("{\"ociVersion\":\"1.2.0\",\"hostname\":\"caf\xe9\"}")
            .find("ill-formed UTF-8") != std::string::npos);
  CHECK(parse_error_of("{\"ociVersion\":\"\xc0\xaf\"}").find("parse error") != std::string::npos);
  CHECK(oci::parse_spec(std::string_view("{\"ociVersion\":\"1\0\"}", 19)).error().code ==
        errc::parse_error);
  CHECK(oci::parse_spec("\xef\xbb\xbf{\"ociVersion\":\"1.2.0\"}"));  // BOM is skipped
}

TEST_CASE("the document must be an object with ociVersion", "[oci][json]") {
  CHECK(parse_error_of("null") == "config.json: expected object, got null");
  CHECK(parse_error_of("[]") == "config.json: expected object, got array");
  CHECK(parse_error_of("\"x\"") == "config.json: expected object, got string");
  CHECK(parse_error_of("42") == "config.json: expected object, got number");
  CHECK(parse_error_of("{}") == "config.json: ociVersion: missing required field");
  CHECK(parse_error_of(R"({"ociVersion":null})") ==
        "config.json: ociVersion: expected string, got null");
  auto r = oci::parse_spec("{}");
  CHECK(r.error().code == errc::invalid_spec);
  CHECK(oci::parse_spec("{}", "/b/config.json").error().message() ==
        "/b/config.json: ociVersion: missing required field");
}

TEST_CASE("deeply nested input is refused without recursion", "[oci][json]") {
  const std::string deep = std::string(100000, '[') + std::string(100000, ']');
  auto r = oci::parse_spec(deep);
  REQUIRE_FALSE(r);
  CHECK(r.error().code == errc::parse_error);
  CHECK(r.error().message() ==
        "config.json: parse error at byte 257: nested deeper than 256 levels");
  // Unbalanced and inside an unknown member: the same.
  CHECK(parse_error_of(R"({"ociVersion":"1.2.0","x":)" + std::string(100000, '{'))
            .find("nested deeper than 256 levels") != std::string::npos);
  // Brackets inside strings do not count.
  const std::string in_string =
      R"({"ociVersion":"1.2.0","hostname":")" + std::string(100000, '[') + "\"}";
  auto ok = oci::parse_spec(in_string);
  REQUIRE(ok);
  CHECK(ok->hostname.size() == 100000);
  // Deep but allowed nesting in an unknown member is ignored.
  const std::string allowed =
      R"({"ociVersion":"1.2.0","x":)" + std::string(250, '[') + std::string(250, ']') + "}";
  CHECK(oci::parse_spec(allowed));
}

TEST_CASE("wrong types are errors naming the member", "[oci][json]") {
  CHECK(parse_error_of(with_process(R"("user":{"uid":"0"})")) ==
        "config.json: process.user.uid: expected unsigned integer, got string");
  CHECK(parse_error_of(with_process(R"("terminal":"true")")) ==
        "config.json: process.terminal: expected boolean, got string");
  CHECK(parse_error_of(with_process(R"("terminal":1)")) ==
        "config.json: process.terminal: expected boolean, got number");
  CHECK(parse_error_of(with_process(R"("args":"sh")")) ==
        "config.json: process.args: expected array, got string");
  CHECK(parse_error_of(with_process(R"("args":["sh",1])")) ==
        "config.json: process.args[1]: expected string, got number");
  CHECK(parse_error_of(with_process(R"("args":["sh",null])")) ==
        "config.json: process.args[1]: expected string, got null");
  CHECK(parse_error_of(with_process(R"("oomScoreAdj":true)")) ==
        "config.json: process.oomScoreAdj: expected integer, got boolean");
  CHECK(parse_error_of(with_process(R"("capabilities":["CAP_KILL"])")) ==
        "config.json: process.capabilities: expected object, got array");
  CHECK(parse_error_of(R"({"ociVersion":1.2})") ==
        "config.json: ociVersion: expected string, got number");
  CHECK(parse_error_of(R"({"ociVersion":"1.2.0","annotations":{"a":"b","c":1}})") ==
        "config.json: annotations[\"c\"]: expected string, got number");
  CHECK(parse_error_of(R"({"ociVersion":"1.2.0","annotations":["a"]})") ==
        "config.json: annotations: expected object, got array");
  CHECK(
      parse_error_of(
          R"({"ociVersion":"1.2.0","linux":{"resources":{"rdma":{"mlx":{"hcaHandles":"1"}}}}})") ==
      "config.json: linux.resources.rdma[\"mlx\"].hcaHandles: expected unsigned integer, got "
      "string");
  CHECK(parse_error_of(R"({"ociVersion":"1.2.0","mounts":[{"destination":"/a"},{}]})") ==
        "config.json: mounts[1].destination: missing required field");
  CHECK(
      parse_error_of(
          R"({"ociVersion":"1.2.0","linux":{"seccomp":{"defaultAction":"SCMP_ACT_ALLOW",)"
          R"("syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":1}]}]}}})") ==
      "config.json: linux.seccomp.syscalls[0].args[0].op: missing required field");
  CHECK(parse_error_of(R"({"ociVersion":"1.2.0","process":{}})") ==
        "config.json: process.cwd: missing required field");
  CHECK(parse_error_of(R"({"ociVersion":"1.2.0","root":{"readonly":true}})") ==
        "config.json: root.path: missing required field");
  CHECK(parse_error_of(R"({"ociVersion":"1.2.0","hostname":"a\u0000b"})") ==
        "config.json: hostname: string contains a NUL character");
}

TEST_CASE("integers are range-checked, never truncated", "[oci][json]") {
  CHECK(parse_error_of(with_process(R"("user":{"uid":4294967296})")) ==
        "config.json: process.user.uid: 4294967296 is out of range for uint32");
  CHECK(oci::parse_spec(with_process(R"("user":{"uid":4294967295})"))->process->user.uid ==
        4294967295u);
  CHECK(parse_error_of(with_process(R"("user":{"uid":-1})")) ==
        "config.json: process.user.uid: expected unsigned integer, got -1");
  CHECK(parse_error_of(with_process(R"("user":{"gid":1.5})")) ==
        "config.json: process.user.gid: expected unsigned integer, got 1.5");
  CHECK(parse_error_of(with_process(R"("user":{"gid":1e3})")) ==
        "config.json: process.user.gid: expected unsigned integer, got 1000.0");
  CHECK(parse_error_of(with_process(
            R"("rlimits":[{"type":"RLIMIT_CPU","hard":18446744073709551616,"soft":0}])")) ==
        "config.json: process.rlimits[0].hard: 1.8446744073709552e+19 is out of range for uint64");
  CHECK(parse_error_of(with_process(R"("oomScoreAdj":2147483648)")) ==
        "config.json: process.oomScoreAdj: 2147483648 is out of range for int32");
  CHECK(parse_error_of(with_process(R"("oomScoreAdj":-2147483649)")) ==
        "config.json: process.oomScoreAdj: -2147483649 is out of range for int32");
  CHECK(oci::parse_spec(with_process(R"("oomScoreAdj":-2147483648)"))->process->oom_score_adj ==
        -2147483647 - 1);
  CHECK(parse_error_of(
            R"({"ociVersion":"1.2.0","linux":{"resources":{"blockIO":{"weight":65536}}}})") ==
        "config.json: linux.resources.blockIO.weight: 65536 is out of range for uint16");
  CHECK(
      parse_error_of(
          R"({"ociVersion":"1.2.0","linux":{"resources":{"memory":{"limit":9223372036854775808}}}})") ==
      "config.json: linux.resources.memory.limit: 9223372036854775808 is out of range for int64");
  auto min = oci::parse_spec(
      R"({"ociVersion":"1.2.0","linux":{"resources":{"memory":{"limit":-9223372036854775808}}}})");
  REQUIRE(min);
  CHECK(*min->linux_->resources->memory->limit == INT64_MIN);
  CHECK(oci::parse_spec(with_process(R"("user":{"uid":-0})"))->process->user.uid == 0);
}

TEST_CASE("null is absent for optional members and unknown members are ignored", "[oci][json]") {
  auto r = oci::parse_spec(
      R"({"ociVersion":"1.2.0","process":null,"mounts":null,"hostname":null,"annotations":null,)"
      R"("linux":{"seccomp":{"defaultAction":"SCMP_ACT_ALLOW","syscalls":null}},)"
      R"("newThing":{"a":[1,{"b":null}]},"hooks":{"futureHook":[{"path":"/x"}]}})");
  REQUIRE(r);
  CHECK_FALSE(r->process);
  CHECK(r->mounts.empty());
  CHECK(r->hostname.empty());
  CHECK(r->linux_->seccomp->syscalls.empty());
  CHECK(r->hooks);
  // Duplicate keys: the last one wins, as in Go.
  CHECK(oci::parse_spec(R"({"ociVersion":"1.0.0","ociVersion":"1.2.0"})")->oci_version == "1.2.0");
}

TEST_CASE("to_json never throws on strings that are not UTF-8", "[oci][json]") {
  oci::spec s;
  s.oci_version = "1.2.0";
  s.hostname = "caf\xe9";
  std::string text;
  REQUIRE_NOTHROW(text = oci::to_json(s));
  CHECK(text == "{\"ociVersion\":\"1.2.0\",\"hostname\":\"caf\xef\xbf\xbd\"}");
  s.hostname = "tab\tquote\"nl\n";
  CHECK(oci::parse_spec(oci::to_json(s))->hostname == s.hostname);
}

TEST_CASE("load_spec reads a file and reports errno with the path", "[oci][json]") {
  const auto dir = temp_dir();
  const katana::scope_exit cleanup([&]() noexcept {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  });

  auto missing = oci::load_spec(dir / "config.json");
  REQUIRE_FALSE(missing);
  CHECK(missing.error().message() ==
        "open " + (dir / "config.json").string() + ": No such file or directory");
  CHECK(missing.error().code == std::errc::no_such_file_or_directory);

  auto directory = oci::load_spec(dir);
  REQUIRE_FALSE(directory);
  CHECK(directory.error().message() == "read " + dir.string() + ": Is a directory");

  const auto fifo = dir / "fifo";
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  auto from_fifo = oci::load_spec(fifo);  // must not block waiting for a writer
  REQUIRE_FALSE(from_fifo);
  CHECK(from_fifo.error().message() == fifo.string() + ": not a regular file");

  const auto big = dir / "big.json";
  {
    std::ofstream out(big);
    out << R"({"ociVersion":"1.2.0","hostname":")";
    out << std::string(oci::max_spec_size, 'a') << "\"}";
  }
  auto too_big = oci::load_spec(big);
  REQUIRE_FALSE(too_big);
  CHECK(too_big.error().message() == big.string() + ": larger than the limit of 16777216 bytes");

  const auto good = dir / "config.json";
  {
    std::ofstream out(good);
    out << katana_test::full_config;
  }
  auto loaded = oci::load_spec(good);
  REQUIRE(loaded);
  CHECK(*loaded == *oci::parse_spec(katana_test::full_config));

  {
    std::ofstream out(good);
    out << R"({"ociVersion":"1.2.0","process":{"cwd":7}})";
  }
  CHECK(oci::load_spec(good).error().message() ==
        good.string() + ": process.cwd: expected string, got number");

  {
    std::ofstream out(good);  // empty file
  }
  CHECK(oci::load_spec(good).error().code == errc::parse_error);

  if (::geteuid() != 0) {  // root reads anything
    REQUIRE(::chmod(good.c_str(), 0) == 0);
    CHECK(oci::load_spec(good).error().code == std::errc::permission_denied);
  }
}

TEST_CASE("every prefix and many mutations of a config fail cleanly", "[oci][json]") {
  const std::string full(katana_test::full_config);
  std::size_t refused = 0;
  for (std::size_t n = 0; n < full.size(); ++n) {
    auto r = oci::parse_spec(std::string_view(full).substr(0, n));
    REQUIRE_FALSE(r);  // no prefix is a complete document
    refused += r.error().code == errc::parse_error ? 1u : 0u;
  }
  CHECK(refused == full.size());
  // Byte flips (deterministic LCG): any outcome but an exception or a crash is fine, and
  // whatever parses must round-trip.
  std::uint64_t x = 0x2545f4914f6cdd1d;
  constexpr char chars[] = "{}[]\",:0-9.eE \\u\x00\xff\x80tfn";
  const std::string_view alphabet(chars, sizeof chars - 1);
  for (int i = 0; i < 3000; ++i) {
    std::string doc = full;
    for (int k = 0; k < 4; ++k) {
      x = x * 6364136223846793005u + 1442695040888963407u;
      doc[(x >> 33) % doc.size()] = alphabet[(x >> 13) % alphabet.size()];
    }
    katana::result<oci::spec> r = katana::fail(errc::internal, "");
    REQUIRE_NOTHROW(r = oci::parse_spec(doc));
    if (r) {
      auto again = oci::parse_spec(oci::to_json(*r));
      REQUIRE(again);
      CHECK(*again == *r);
    } else {
      INFO(r.error().message());
      CHECK(r.error().code != errc::internal);
    }
  }
}

TEST_CASE("numbers beyond double are parse errors", "[oci][json]") {
  CHECK(parse_error_of(with_process(R"("user":{"uid":1e999})")) ==
        "config.json: parse error: number overflow parsing '1e999'");
  CHECK(parse_error_of(R"({"ociVersion":"1.2.0","x":-1e400})") ==
        "config.json: parse error: number overflow parsing '-1e400'");
}
