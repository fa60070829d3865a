// katana-agent's RPC layer over a real ttrpc connection with the generated client: the
// protobuf <-> katana conversion, statuses on the wire, UNIMPLEMENTED with reasons, and a
// client that goes away in the middle of calls.
#include "rpc.hpp"

#include <algorithm>
#include <chrono>
#include <optional>
#include <string>

#include <boost/asio/local/connect_pair.hpp>

#include <katana/agent/service.hpp>
#include <katana/oci/default_spec.hpp>
#include <katana/testing/fake_engine.hpp>
#include <katana/ttrpc/transport.hpp>

#include "catch.hpp"
#include "support.hpp"

namespace ag = katana::agent;
namespace kt = katana::ttrpc;
using namespace std::chrono_literals;

namespace {

using agent_t = ag::basic_agent<katana::testing::fake_engine, katana_test::recording_mounter>;

struct rig {
  katana::asio::io_context io;
  katana_test::temp_dir tmp;
  std::shared_ptr<agent_t> agent;
  std::optional<kt::unix_server> server;
  std::optional<kt::unix_client> client;

  rig() {
    ag::agent_options o;
    o.run_dir = tmp.path / "run";
    o.share_namespaces = false;
    o.systemd = false;
    o.log = katana::logging::logger([](std::string_view) {}, katana::logging::format::json,
                                    katana::logging::level::off);
    agent =
        std::make_shared<agent_t>(io.get_executor(), katana::testing::fake_engine{}, std::move(o));
    agent->start();
    kt::service_table table;
    ag::register_services(table, std::make_shared<ag::rpc_service<agent_t>>(agent));
    connect(std::move(table));
  }
  void connect(kt::service_table table) {
    kt::unix_socket a(io), b(io);
    katana::asio::local::connect_pair(a, b);
    server.emplace(std::move(table));
    katana::asio::co_spawn(io, server->serve_connection(std::move(a)), katana::asio::detached);
    client.emplace(std::move(b));
  }

  template <class Resp, class Req>
  katana::result<Resp> call(std::string_view service, std::string_view method, const Req& req) {
    return katana_test::run(io, kt::unary_call<Resp>(*client, service, method, req, {}));
  }
  template <class Resp = google::protobuf::Empty, class Req>
  katana::result<Resp> agent_call(std::string_view method, const Req& req) {
    return call<Resp>("grpc.AgentService", method, req);
  }
};

kt::code code_of(const katana::error& e) {
  return kt::to_code(e.code);
}

grpc::CreateContainerRequest container(const std::string& id, std::vector<std::string> args) {
  katana::oci::spec s;
  s.oci_version = "1.0.2";
  s.root = katana::oci::root{"/", false};
  s.process.emplace();
  s.process->args = std::move(args);
  s.process->cwd = "/";
  grpc::CreateContainerRequest r;
  r.set_container_id(id);
  *r.mutable_oci() = ag::convert::to_pb(s);
  return r;
}

}  // namespace

TEST_CASE("convert: the default OCI spec survives protobuf and back", "[agent][convert]") {
  auto s = katana::oci::default_spec(false);
  s.hostname = "h";
  s.annotations["a"] = "b";
  s.linux_->resources.emplace();
  s.linux_->resources->memory = katana::oci::linux_memory{.limit = 1 << 20, .swap = -1};
  s.linux_->resources->cpu = katana::oci::linux_cpu{.shares = 512, .quota = 5000, .cpus = "0-1"};
  s.linux_->resources->pids = katana::oci::linux_pids{42};
  s.linux_->resources->devices.push_back(
      {.allow = true, .type = "c", .major = 1, .minor = 3, .access = "rwm"});
  s.linux_->uid_mappings.push_back({0, 1000, 1});
  s.linux_->sysctl["net.ipv4.ip_forward"] = "1";
  s.linux_->seccomp = katana::oci::linux_seccomp{};
  s.linux_->seccomp->default_action = "SCMP_ACT_ERRNO";
  s.linux_->seccomp->syscalls.push_back(
      {.names = {"mount"},
       .action = "SCMP_ACT_ALLOW",
       .errno_ret = 1,
       .args = {{.index = 1, .value = 2, .value_two = 3, .op = "SCMP_CMP_EQ"}}});
  s.hooks = katana::oci::hooks{};
  s.hooks->poststop.push_back({"/bin/true", {"true", "x"}, {"A=1"}, 5});
  s.process->oom_score_adj = 100;
  s.process->rlimits.push_back({"RLIMIT_NOFILE", 1024, 512});

  const grpc::Spec pb = ag::convert::to_pb(s);
  CHECK(pb.linux().resources().memory().limit() == 1 << 20);
  CHECK(pb.process().args(0) == s.process->args[0]);
  const auto back = ag::convert::from_pb(pb);
  CHECK(back.process == s.process);
  CHECK(back.root == s.root);
  CHECK(back.mounts == s.mounts);
  CHECK(back.hooks == s.hooks);
  CHECK(back.annotations == s.annotations);
  CHECK(back.linux_->namespaces == s.linux_->namespaces);
  CHECK(back.linux_->masked_paths == s.linux_->masked_paths);
  CHECK(back.linux_->readonly_paths == s.linux_->readonly_paths);
  CHECK(back.linux_->uid_mappings == s.linux_->uid_mappings);
  CHECK(back.linux_->sysctl == s.linux_->sysctl);
  CHECK(back.linux_->seccomp == s.linux_->seccomp);
  CHECK(back.linux_->resources->memory == s.linux_->resources->memory);
  CHECK(back.linux_->resources->cpu == s.linux_->resources->cpu);
  CHECK(back.linux_->resources->pids == s.linux_->resources->pids);
  CHECK(back.linux_->resources->devices.back() == s.linux_->resources->devices.back());
  // The default spec's "deny all" rule has no major/minor: -1 on the wire, absent again.
  CHECK(back.linux_->resources->devices.size() == s.linux_->resources->devices.size());
}

TEST_CASE("rpc: a container through the wire", "[agent][rpc]") {
  rig r;
  grpc::CheckRequest check;
  auto health = r.call<grpc::HealthCheckResponse>("grpc.Health", "Check", check);
  REQUIRE(health);
  CHECK(health->status() == grpc::HealthCheckResponse::SERVING);
  auto version = r.call<grpc::VersionCheckResponse>("grpc.Health", "Version", check);
  REQUIRE(version);
  CHECK(version->agent_version().find("katana-agent") == 0);

  grpc::CreateSandboxRequest sb;
  sb.set_sandbox_id("s1");
  REQUIRE(r.agent_call("CreateSandbox", sb));
  REQUIRE(r.agent_call("CreateContainer", container("c1", {"/bin/sh", "-c", "echo hi; exit 7"})));
  grpc::StartContainerRequest start;
  start.set_container_id("c1");
  REQUIRE(r.agent_call("StartContainer", start));
  grpc::ReadStreamRequest rd;
  rd.set_container_id("c1");
  rd.set_len(1024);
  auto out = r.agent_call<grpc::ReadStreamResponse>("ReadStdout", rd);
  REQUIRE(out);
  CHECK(out->data() == "hi\n");
  grpc::WaitProcessRequest wait;
  wait.set_container_id("c1");
  auto st = r.agent_call<grpc::WaitProcessResponse>("WaitProcess", wait);
  REQUIRE(st);
  CHECK(st->status() == 7);
  auto eof = r.agent_call<grpc::ReadStreamResponse>("ReadStdout", rd);
  REQUIRE(eof);
  CHECK(eof->data().empty());
  grpc::StatsContainerRequest stats;
  stats.set_container_id("c1");
  auto s = r.agent_call<grpc::StatsContainerResponse>("StatsContainer", stats);
  REQUIRE(s);
  CHECK(s->cgroup_stats().memory_stats().usage().limit() == 1U << 30);
  grpc::RemoveContainerRequest rm;
  rm.set_container_id("c1");
  REQUIRE(r.agent_call("RemoveContainer", rm));
  grpc::DestroySandboxRequest destroy;
  REQUIRE(r.agent_call("DestroySandbox", destroy));
}

TEST_CASE("rpc: statuses for bad input, UNIMPLEMENTED with a reason", "[agent][rpc]") {
  rig r;
  grpc::StartContainerRequest start;
  start.set_container_id("nope");
  CHECK(code_of(r.agent_call("StartContainer", start).error()) == kt::code::not_found);
  auto bad = container("c1", {"/bin/true"});
  bad.mutable_oci()->mutable_process()->set_cwd("not/absolute");
  const auto e = r.agent_call("CreateContainer", bad).error();
  CHECK(code_of(e) == kt::code::invalid_argument);
  CHECK(e.context.find("cwd") != std::string::npos);
  grpc::CreateContainerRequest nospec;
  nospec.set_container_id("c2");
  CHECK(code_of(r.agent_call("CreateContainer", nospec).error()) == kt::code::invalid_argument);
  grpc::ExecProcessRequest exec;
  exec.set_container_id("c1");
  exec.set_exec_id("e1");
  CHECK(code_of(r.agent_call("ExecProcess", exec).error()) == kt::code::invalid_argument);
  grpc::CopyFileRequest cf;
  cf.set_path("/etc/shadow");
  CHECK(code_of(r.agent_call("CopyFile", cf).error()) == kt::code::permission_denied);

  grpc::AddSwapRequest swap;
  const auto un = r.agent_call("AddSwap", swap).error();
  CHECK(code_of(un) == kt::code::unimplemented);
  CHECK(un.context.find("not implemented") != std::string::npos);
  // Networking: listing is harmless, a host-mode agent refuses to change its host's network.
  grpc::ListInterfacesRequest li;
  const auto ifs = r.agent_call<grpc::Interfaces>("ListInterfaces", li);
  REQUIRE(ifs);
  CHECK(std::any_of(ifs->interfaces().begin(), ifs->interfaces().end(),
                    [](const types::Interface& i) { return i.name() == "lo"; }));
  grpc::ListRoutesRequest lr;
  CHECK(r.agent_call<grpc::Routes>("ListRoutes", lr));
  grpc::UpdateRoutesRequest ur;
  ur.mutable_routes()->add_routes()->set_gateway("10.0.0.1");
  const auto denied = r.agent_call<grpc::Routes>("UpdateRoutes", ur).error();
  CHECK(code_of(denied) == kt::code::permission_denied);
  CHECK(denied.context.find("UpdateRoutes") != std::string::npos);
  grpc::UpdateInterfaceRequest ui;
  ui.mutable_interface()->set_hwaddr("02:00:00:00:00:01");
  CHECK(code_of(r.agent_call<types::Interface>("UpdateInterface", ui).error()) ==
        kt::code::permission_denied);
  CHECK(code_of(r.call<google::protobuf::Empty>("grpc.AgentService", "NoSuchCall", li).error()) ==
        kt::code::unimplemented);
  // Still serving.
  grpc::CheckRequest check;
  CHECK(r.call<grpc::HealthCheckResponse>("grpc.Health", "Check", check));
}

TEST_CASE("rpc: GetVolumeStats reports a path's bytes and inodes as Kata does", "[agent][rpc]") {
  rig r;
  grpc::VolumeStatsRequest req;
  req.set_volume_guest_path(r.tmp.path.native());
  const auto st = r.agent_call<grpc::VolumeStatsResponse>("GetVolumeStats", req);
  REQUIRE(st);
  REQUIRE(st->usage_size() == 2);
  const auto& bytes = st->usage(0);
  CHECK(bytes.unit() == grpc::VolumeUsage::BYTES);
  CHECK(bytes.total() > 0);
  CHECK(bytes.used() + bytes.available() == bytes.total());
  CHECK(st->usage(1).unit() == grpc::VolumeUsage::INODES);
  CHECK(st->usage(1).used() + st->usage(1).available() == st->usage(1).total());
  CHECK_FALSE(st->volume_condition().abnormal());
  CHECK(st->volume_condition().message() == "OK");

  req.set_volume_guest_path((r.tmp.path / "no-such-volume").native());
  const auto missing = r.agent_call<grpc::VolumeStatsResponse>("GetVolumeStats", req).error();
  CHECK(code_of(missing) == kt::code::not_found);
  CHECK(missing.context.find("no-such-volume") != std::string::npos);
  req.set_volume_guest_path("relative/path");
  CHECK(code_of(r.agent_call<grpc::VolumeStatsResponse>("GetVolumeStats", req).error()) ==
        kt::code::invalid_argument);
}

TEST_CASE("volume stats: statfs numbers in Kata's shape, never wrapping", "[agent]") {
  struct statfs st {};
  st.f_bsize = 4096;
  st.f_blocks = 100;
  st.f_bfree = 40;
  st.f_bavail = 30;  // Kata counts root's reserve as available too
  st.f_files = 50;
  st.f_ffree = 45;
  auto v = ag::to_volume_stats(st);
  REQUIRE(v.usage.size() == 2);
  CHECK(v.usage[0].total == 409600);
  CHECK(v.usage[0].available == 163840);
  CHECK(v.usage[0].used == 245760);
  CHECK(v.usage[1].total == 50);
  CHECK(v.usage[1].available == 45);
  CHECK(v.usage[1].used == 5);
  st.f_files = 0;  // no inode accounting (e.g. some network filesystems)
  st.f_ffree = 7;
  CHECK(ag::to_volume_stats(st).usage[1].used == 0);
}

TEST_CASE("rpc: a client that disconnects mid-call leaves the agent working", "[agent][rpc]") {
  rig r;
  REQUIRE(r.agent_call("CreateContainer", container("c1", {"/bin/sleep", "100"})));
  grpc::StartContainerRequest start;
  start.set_container_id("c1");
  REQUIRE(r.agent_call("StartContainer", start));
  // A long-poll, a blocked read and a wait are in flight when the client goes away.
  grpc::WaitProcessRequest wait;
  wait.set_container_id("c1");
  grpc::ReadStreamRequest rd;
  rd.set_container_id("c1");
  rd.set_len(10);
  grpc::GetOOMEventRequest oom;
  for (int i = 0; i < 3; ++i) {
    katana::asio::co_spawn(
        r.io,
        [&, i]() -> katana::task<void> {
          auto& c = *r.client;
          if (i == 0) {
            (void)co_await kt::unary_call<grpc::WaitProcessResponse>(c, "grpc.AgentService",
                                                                     "WaitProcess", wait, {});
          } else if (i == 1) {
            (void)co_await kt::unary_call<grpc::ReadStreamResponse>(c, "grpc.AgentService",
                                                                    "ReadStdout", rd, {});
          } else {
            (void)co_await kt::unary_call<grpc::OOMEvent>(c, "grpc.AgentService", "GetOOMEvent",
                                                          oom, {});
          }
        },
        katana::asio::detached);
  }
  katana_test::spin(r.io, 100ms);
  r.client.reset();
  katana_test::spin(r.io, 100ms);
  // A new client gets full service.
  kt::service_table table;
  ag::register_services(table, std::make_shared<ag::rpc_service<agent_t>>(r.agent));
  r.connect(std::move(table));
  grpc::SignalProcessRequest sig;
  sig.set_container_id("c1");
  sig.set_signal(9);
  REQUIRE(r.agent_call("SignalProcess", sig));
  auto st = r.agent_call<grpc::WaitProcessResponse>("WaitProcess", wait);
  REQUIRE(st);
  CHECK(st->status() == 137);
  grpc::RemoveContainerRequest rm;
  rm.set_container_id("c1");
  REQUIRE(r.agent_call("RemoveContainer", rm));
  CHECK(r.agent->tracked_processes() == 0);
}

TEST_CASE("rpc: a read whose caller timed out takes no output", "[agent][rpc]") {
  rig r;
  REQUIRE(
      r.agent_call("CreateContainer", container("c1", {"/bin/sh", "-c", "sleep 0.5; echo late"})));
  grpc::StartContainerRequest start;
  start.set_container_id("c1");
  REQUIRE(r.agent_call("StartContainer", start));
  grpc::ReadStreamRequest rd;
  rd.set_container_id("c1");
  rd.set_len(100);
  kt::call_options quick;
  quick.timeout = 100ms;
  auto early = katana_test::run(
      r.io, kt::unary_call<grpc::ReadStreamResponse>(*r.client, "grpc.AgentService", "ReadStdout",
                                                     rd, std::move(quick)));
  REQUIRE(!early);
  CHECK(code_of(early.error()) == kt::code::deadline_exceeded);
  auto late = r.agent_call<grpc::ReadStreamResponse>("ReadStdout", rd);
  REQUIRE(late);
  CHECK(late->data() == "late\n");
  grpc::RemoveContainerRequest rm;
  rm.set_container_id("c1");
  REQUIRE(r.agent_call("RemoveContainer", rm));
}

TEST_CASE("rpc: Kata 2.x's ListProcesses", "[agent][rpc]") {
  rig r;
  REQUIRE(r.agent_call("CreateContainer", container("c1", {"/bin/sleep", "100"})));
  grpc::ListProcessesRequest lp;
  lp.set_container_id("c1");
  lp.set_format("json");
  auto json = r.agent_call<grpc::ListProcessesResponse>("ListProcesses", lp);
  REQUIRE(json);
  CHECK(json->process_list().front() == '[');
  CHECK(json->process_list().back() == ']');
  lp.set_format("table");
  auto table = r.agent_call<grpc::ListProcessesResponse>("ListProcesses", lp);
  REQUIRE(table);
  CHECK(table->process_list().rfind("PID CMD\n", 0) == 0);
  lp.set_container_id("nope");
  CHECK(code_of(r.agent_call<grpc::ListProcessesResponse>("ListProcesses", lp).error()) ==
        kt::code::not_found);
  grpc::RemoveContainerRequest rm;
  rm.set_container_id("c1");
  REQUIRE(r.agent_call("RemoveContainer", rm));
}
