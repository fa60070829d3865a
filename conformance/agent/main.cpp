// agent-conformance: drives any endpoint of Kata's agent protocol (katana-agent, kata-agent)
// through a realistic pod lifecycle and checks every result:
//
//   Check/Version/GetGuestDetails -> CreateSandbox (hostname, pod shm storage, shared pid ns)
//   -> two busybox containers built in the guest with CopyFile, sharing the pod's pid, IPC and
//   UTS namespaces and its shm -> exec with stdin and stdout, exit codes, signals (also to
//   exited processes) -> stats, update, pause/resume, list processes -> an OOM-killed
//   container and GetOOMEvent -> bad input and a client that disconnects mid-call ->
//   teardown (RemoveContainer, DestroySandbox).
//
// Output is TAP ("ok 3 - exec: cat echoes stdin"). Exit status: 0 all passed, 1 failures,
// 2 usage, 77 when the agent cannot be reached (skip). --strict also checks katana's precise
// status codes where Kata's agent differs (e.g. NOT_FOUND for a signal to an exited process).
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fcntl.h>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <sys/stat.h>
#include <unistd.h>
#include <utility>
#include <vector>

#include <katana/core/error.hpp>
#include <katana/core/str_cat.hpp>
#include <katana/oci/default_spec.hpp>
#include <katana/ttrpc/service.hpp>
#include <katana/ttrpc/status.hpp>
#include <katana/ttrpc/transport.hpp>

#include "client.hpp"
#include "convert.hpp"
// convert.hpp brings agent.pb.h (and undefines glibc's major/minor first).
#include "health.pb.h"

namespace {

namespace kt = katana::ttrpc;
using katana::result;
using katana::str_cat;
using namespace std::chrono_literals;
using empty = google::protobuf::Empty;
using katana_agent_test::agent_client;
using katana_agent_test::base;
using katana_agent_test::build_rootfs;
using katana_agent_test::open_client;
using katana_agent_test::rootfs_of;
using katana_agent_test::why_not;

constexpr std::string_view usage =
    R"(usage: agent-conformance --server-address ADDR [--busybox PATH] [--strict] [--no-oom]
  ADDR: unix:///path (also a virtio-serial port's host socket), vsock://CID:PORT,
        hvsock://UDS:PORT
  --busybox PATH  a static busybox to build the containers' rootfs from (/bin/busybox)
  --strict        also check katana's precise status codes
  --no-oom        skip the OOM-kill scenario (it needs a memory cgroup)
)";

struct options {
  std::string address;
  std::string busybox = "/bin/busybox";
  bool strict = false;
  bool oom = true;
};

// ---- the check harness -----------------------------------------------------------------------

struct harness {
  int n = 0;
  int failed = 0;
  std::vector<std::string> failures;

  /// Runs one check: it returns empty for success, or why it failed.
  void check(std::string_view name, const std::function<std::string()>& body) {
    ++n;
    std::string why;
    try {
      why = body();
    } catch (const std::exception& e) {
      why = str_cat("exception: ", e.what());
    }
    if (why.empty()) {
      std::printf("ok %d - %s\n", n, std::string(name).c_str());
    } else {
      ++failed;
      failures.push_back(str_cat(name, ": ", why));
      std::printf("not ok %d - %s # %s\n", n, std::string(name).c_str(), why.c_str());
    }
    std::fflush(stdout);
  }
};

template <class T>
std::string expect_code(const result<T>& r, kt::code want, bool strict) {
  if (r) {
    return str_cat("succeeded, expected ", kt::to_string(want));
  }
  const auto got = kt::to_code(r.error().code);
  if (strict && got != want) {
    return str_cat("status ", kt::to_string(got), " (", kt::status_message(r.error()),
                   "), expected ", kt::to_string(want));
  }
  return {};
}

// ---- the pod -----------------------------------------------------------------------------------

grpc::CreateContainerRequest container_request(const std::string& cid,
                                               std::vector<std::string> args,
                                               bool share_pid) {
  auto s = katana::oci::default_spec(false);
  s.process->terminal = false;
  s.process->args = std::move(args);
  s.process->env = {"PATH=/bin", "HOME=/"};
  // The pod's containers may signal and inspect each other, as in a shared pid namespace.
  for (auto* set : {&s.process->capabilities->bounding, &s.process->capabilities->effective,
                    &s.process->capabilities->permitted}) {
    set->push_back("CAP_SYS_PTRACE");
  }
  s.root->path = rootfs_of(cid);
  s.root->readonly = false;
  s.hostname.clear();  // the pod's UTS namespace carries the sandbox's hostname
  auto& lx = *s.linux_;
  std::erase_if(lx.namespaces, [](const katana::oci::linux_namespace& ns) {
    return ns.type == "network" || ns.type == "cgroup";
  });
  lx.cgroups_path = str_cat("/katana-conformance-", cid);  // no parent left behind
  // The pod's shm: the sandbox's ephemeral storage, bind-mounted into every container.
  std::erase_if(s.mounts, [](const katana::oci::mount& m) { return m.destination == "/dev/shm"; });
  s.mounts.push_back({.destination = "/dev/shm",
                      .type = "bind",
                      .source = str_cat(base, "/sandbox/shm"),
                      .options = {"rbind", "rw"}});
  grpc::CreateContainerRequest r;
  r.set_container_id(cid);
  r.set_exec_id(cid);
  r.set_sandbox_pidns(share_pid);
  *r.mutable_oci() = katana::agent::convert::to_pb(s);
  return r;
}

grpc::Process exec_process(std::vector<std::string> args) {
  katana::oci::process p;
  p.args = std::move(args);
  p.cwd = "/";
  p.env = {"PATH=/bin"};
  grpc::Process out;
  katana::agent::convert::to_pb(p, out);
  return out;
}

struct pod {
  agent_client& c;
  const options& opt;
  harness& h;

  template <class Req>
  static void ids(Req& r, const std::string& cid, const std::string& eid) {
    r.set_container_id(cid);
    r.set_exec_id(eid);
  }

  result<empty> exec(const std::string& cid,
                     const std::string& eid,
                     std::vector<std::string> args) {
    grpc::ExecProcessRequest r;
    ids(r, cid, eid);
    *r.mutable_process() = exec_process(std::move(args));
    return c.call("ExecProcess", r);
  }
  result<int> wait(const std::string& cid,
                   const std::string& eid,
                   std::chrono::milliseconds timeout = 30s) {
    grpc::WaitProcessRequest r;
    ids(r, cid, eid);
    auto out = c.call<grpc::WaitProcessResponse>("WaitProcess", r, timeout);
    if (!out) {
      return katana::unexpected<katana::error>(std::move(out).error());
    }
    return out->status();
  }
  /// stdout (or stderr) until EOF.
  result<std::string> read_all(const std::string& cid, const std::string& eid, bool out = true) {
    std::string all;
    for (int i = 0; i < 10000; ++i) {
      grpc::ReadStreamRequest r;
      ids(r, cid, eid);
      r.set_len(32768);
      auto d = c.call<grpc::ReadStreamResponse>(out ? "ReadStdout" : "ReadStderr", r, 30s);
      if (!d) {
        return katana::unexpected<katana::error>(std::move(d).error());
      }
      if (d->data().empty()) {
        return all;
      }
      all += d->data();
    }
    return katana::fail(katana::errc::internal, "stream did not end");
  }
  /// Runs a command in a container: (exit status, stdout).
  result<std::pair<int, std::string>> run(const std::string& cid,
                                          const std::string& eid,
                                          std::vector<std::string> args) {
    if (auto e = exec(cid, eid, std::move(args)); !e) {
      return katana::unexpected<katana::error>(std::move(e).error());
    }
    auto out = read_all(cid, eid);
    if (!out) {
      return katana::unexpected<katana::error>(std::move(out).error());
    }
    (void)read_all(cid, eid, false);
    auto st = wait(cid, eid);
    if (!st) {
      return katana::unexpected<katana::error>(std::move(st).error());
    }
    return std::pair{*st, *out};
  }
};

int run_suite(const options& opt) {
  katana::asio::io_context io;
  auto client = open_client(io, opt.address);
  if (!client) {
    std::fprintf(stderr, "agent-conformance: cannot reach %s: %s\n", opt.address.c_str(),
                 client.error().message().c_str());
    return 77;
  }
  auto& c = **client;
  harness h;
  pod p{c, opt, h};
  const std::string sid = str_cat("conf", ::getpid());
  const std::string a = sid + "-a";  // the pod's first container: its pid ns is the pod's
  const std::string b = sid + "-b";  // a second container joining the pod's namespaces
  const std::string m = sid + "-m";  // an OOM victim
  const auto strict = opt.strict;

  // -- health and guest --------------------------------------------------------------------------
  h.check("Check answers SERVING", [&] {
    grpc::CheckRequest r;
    auto s = c.typed<grpc::HealthCheckResponse>("grpc.Health", "Check", r, 10s);
    if (!s) {
      return why_not(s);
    }
    return s->status() == grpc::HealthCheckResponse::SERVING ? std::string()
                                                             : std::string("not SERVING");
  });
  h.check("Version names the agent", [&] {
    grpc::CheckRequest r;
    auto s = c.typed<grpc::VersionCheckResponse>("grpc.Health", "Version", r, 10s);
    if (!s) {
      return why_not(s);
    }
    return s->agent_version().empty() ? std::string("empty agent_version") : std::string();
  });
  h.check("GetGuestDetails reports a memory block size and handlers", [&] {
    grpc::GuestDetailsRequest r;
    r.set_mem_block_size(true);
    auto d = c.call<grpc::GuestDetailsResponse>("GetGuestDetails", r);
    if (!d) {
      return why_not(d);
    }
    if (d->mem_block_size_bytes() != 0 &&
        (d->mem_block_size_bytes() & (d->mem_block_size_bytes() - 1)) != 0) {
      return str_cat("mem_block_size_bytes ", d->mem_block_size_bytes(), " is not a power of 2");
    }
    return d->agent_details().storage_handlers_size() == 0 ? std::string("no storage handlers")
                                                           : std::string();
  });

  // -- sandbox -----------------------------------------------------------------------------------
  h.check("CreateSandbox with a hostname, the pod's shm and a shared pid namespace", [&] {
    grpc::CreateSandboxRequest r;
    r.set_hostname("katana-conformance");
    r.set_sandbox_id(sid);
    r.set_sandbox_pidns(true);
    auto* shm = r.add_storages();
    shm->set_driver("ephemeral");
    shm->set_source("shm");
    shm->set_fstype("tmpfs");
    for (const auto* o : {"noexec", "nosuid", "nodev", "mode=1777", "size=8388608"}) {
      shm->add_options(o);
    }
    shm->set_mount_point(str_cat(base, "/sandbox/shm"));
    return why_not(c.call("CreateSandbox", r));
  });
  h.check("GetVolumeStats reports the pod's shm (8 MiB tmpfs) in bytes and inodes", [&] {
    grpc::VolumeStatsRequest r;
    r.set_volume_guest_path(str_cat(base, "/sandbox/shm"));
    auto v = c.call<grpc::VolumeStatsResponse>("GetVolumeStats", r);
    if (!v) {
      return why_not(v);
    }
    if (v->usage_size() != 2 || v->usage(0).unit() != grpc::VolumeUsage::BYTES ||
        v->usage(1).unit() != grpc::VolumeUsage::INODES) {
      return str_cat("usage should be [BYTES, INODES], got ", v->usage_size(), " entries");
    }
    if (v->usage(0).total() != 8388608) {
      return str_cat("total bytes ", v->usage(0).total(), ", not 8388608");
    }
    if (v->usage(0).used() + v->usage(0).available() != v->usage(0).total()) {
      return std::string("used + available != total bytes");
    }
    return v->volume_condition().abnormal() ? "abnormal: " + v->volume_condition().message()
                                            : std::string();
  });
  h.check("CopyFile builds container A's rootfs", [&] { return build_rootfs(c, a, opt.busybox); });
  h.check("CopyFile builds container B's rootfs", [&] { return build_rootfs(c, b, opt.busybox); });
  h.check("CopyFile refuses paths outside /run/kata-containers", [&] {
    grpc::CopyFileRequest r;
    r.set_path(str_cat(base, "/../../etc/katana-conformance"));
    r.set_file_size(1);
    r.set_data("x");
    r.set_file_mode(S_IFREG | 0644);
    return expect_code(c.call("CopyFile", r), kt::code::permission_denied, strict);
  });

  // -- containers --------------------------------------------------------------------------------
  h.check("CreateContainer A (first container: its pid namespace becomes the pod's)", [&] {
    return why_not(c.call(
        "CreateContainer",
        container_request(a, {"/bin/sh", "-c", "echo A:$(hostname); exec sleep 3600"}, true)));
  });
  h.check("StartContainer A; its stdout shows the pod's hostname", [&] {
    grpc::StartContainerRequest r;
    r.set_container_id(a);
    if (auto s = c.call("StartContainer", r); !s) {
      return why_not(s);
    }
    grpc::ReadStreamRequest rd;
    rd.set_container_id(a);
    rd.set_exec_id(a);
    rd.set_len(100);
    auto d = c.call<grpc::ReadStreamResponse>("ReadStdout", rd, 10s);
    if (!d) {
      return why_not(d);
    }
    return d->data() == "A:katana-conformance\n" ? std::string()
                                                 : str_cat("stdout \"", d->data(), "\"");
  });
  h.check("CreateContainer + StartContainer B in the pod's namespaces", [&] {
    if (auto s = c.call("CreateContainer", container_request(b, {"/bin/sleep", "3600"}, true));
        !s) {
      return why_not(s);
    }
    grpc::StartContainerRequest r;
    r.set_container_id(b);
    return why_not(c.call("StartContainer", r));
  });
  h.check("B sees A's processes (shared pid namespace)", [&] {
    auto r = p.run(b, "ps", {"/bin/ps", "-o", "args"});
    if (!r) {
      return why_not(r);
    }
    return r->second.find("sleep 3600") != std::string::npos &&
                   r->second.find("/bin/sleep 3600") != std::string::npos
               ? std::string()
               : str_cat("ps in B: \"", r->second, "\"");
  });
  h.check("A and B share the UTS namespace and the pod's /dev/shm", [&] {
    auto w = p.run(a, "shm-write", {"/bin/sh", "-c", "echo from-a > /dev/shm/note; hostname"});
    if (!w) {
      return why_not(w);
    }
    auto r = p.run(b, "shm-read", {"/bin/sh", "-c", "cat /dev/shm/note; hostname"});
    if (!r) {
      return why_not(r);
    }
    return r->second == "from-a\nkatana-conformance\n" && w->second == "katana-conformance\n"
               ? std::string()
               : str_cat("A wrote \"", w->second, "\", B read \"", r->second, "\"");
  });

  // -- exec, stdio, exit codes, signals ----------------------------------------------------------
  h.check("exec with stdin and stdout: cat echoes, CloseStdin ends it", [&] {
    if (auto e = p.exec(a, "cat", {"/bin/cat"}); !e) {
      return why_not(e);
    }
    grpc::WriteStreamRequest w;
    w.set_container_id(a);
    w.set_exec_id("cat");
    w.set_data("ping\npong\n");
    auto n = c.call<grpc::WriteStreamResponse>("WriteStdin", w);
    if (!n) {
      return why_not(n);
    }
    if (n->len() != 10) {
      return str_cat("WriteStdin wrote ", n->len(), " bytes");
    }
    grpc::CloseStdinRequest cl;
    cl.set_container_id(a);
    cl.set_exec_id("cat");
    if (auto s = c.call("CloseStdin", cl); !s) {
      return why_not(s);
    }
    auto out = p.read_all(a, "cat");
    if (!out) {
      return why_not(out);
    }
    auto st = p.wait(a, "cat");
    if (!st) {
      return why_not(st);
    }
    return *out == "ping\npong\n" && *st == 0 ? std::string()
                                              : str_cat("stdout \"", *out, "\", status ", *st);
  });
  h.check("exit codes: exit 42 is 42, stderr is separate", [&] {
    auto r = p.exec(a, "exit42", {"/bin/sh", "-c", "echo out; echo err >&2; exit 42"});
    if (!r) {
      return why_not(r);
    }
    auto out = p.read_all(a, "exit42");
    auto err = p.read_all(a, "exit42", false);
    auto st = p.wait(a, "exit42");
    if (!out || !err || !st) {
      return why_not(!out   ? result<int>(katana::unexpected<katana::error>(out.error()))
                     : !err ? result<int>(katana::unexpected<katana::error>(err.error()))
                            : st);
    }
    return *out == "out\n" && *err == "err\n" && *st == 42
               ? std::string()
               : str_cat("stdout \"", *out, "\" stderr \"", *err, "\" status ", *st);
  });
  h.check("SignalProcess SIGTERM: WaitProcess answers 128 + 15", [&] {
    if (auto e = p.exec(a, "sleeper", {"/bin/sleep", "1000"}); !e) {
      return why_not(e);
    }
    grpc::SignalProcessRequest s;
    s.set_container_id(a);
    s.set_exec_id("sleeper");
    s.set_signal(SIGTERM);
    if (auto r = c.call("SignalProcess", s); !r) {
      return why_not(r);
    }
    auto st = p.wait(a, "sleeper");
    if (!st) {
      return why_not(st);
    }
    return *st == 143 ? std::string() : str_cat("status ", *st);
  });
  h.check("a signal to an exited process fails (NOT_FOUND)", [&] {
    if (auto e = p.exec(a, "done", {"/bin/true"}); !e) {
      return why_not(e);
    }
    grpc::WaitProcessRequest w;
    w.set_container_id(a);
    w.set_exec_id("done");
    if (auto st = c.call<grpc::WaitProcessResponse>("WaitProcess", w); !st) {
      return why_not(st);
    }
    grpc::SignalProcessRequest s;
    s.set_container_id(a);
    s.set_exec_id("done");
    s.set_signal(SIGKILL);
    return expect_code(c.call("SignalProcess", s), kt::code::not_found, strict);
  });

  // -- resources ---------------------------------------------------------------------------------
  h.check("StatsContainer: memory and pids of A", [&] {
    grpc::StatsContainerRequest r;
    r.set_container_id(a);
    auto s = c.call<grpc::StatsContainerResponse>("StatsContainer", r);
    if (!s) {
      return why_not(s);
    }
    const auto& cg = s->cgroup_stats();
    if (cg.pids_stats().current() < 1) {
      return str_cat("pids.current ", cg.pids_stats().current());
    }
    return cg.memory_stats().usage().usage() == 0 ? std::string("memory usage 0") : std::string();
  });
  h.check("UpdateContainer: a pids limit on B", [&] {
    grpc::UpdateContainerRequest r;
    r.set_container_id(b);
    r.mutable_resources()->mutable_pids()->set_limit(64);
    if (auto u = c.call("UpdateContainer", r); !u) {
      return why_not(u);
    }
    grpc::StatsContainerRequest s;
    s.set_container_id(b);
    auto st = c.call<grpc::StatsContainerResponse>("StatsContainer", s);
    if (!st) {
      return why_not(st);
    }
    return st->cgroup_stats().pids_stats().limit() == 64
               ? std::string()
               : str_cat("pids.limit ", st->cgroup_stats().pids_stats().limit());
  });
  h.check("PauseContainer / ResumeContainer B", [&] {
    grpc::PauseContainerRequest pr;
    pr.set_container_id(b);
    if (auto r = c.call("PauseContainer", pr); !r) {
      return why_not(r);
    }
    // While frozen, nothing new runs in B.
    auto frozen = p.exec(b, "while-paused", {"/bin/true"});
    grpc::ResumeContainerRequest rr;
    rr.set_container_id(b);
    if (auto r = c.call("ResumeContainer", rr); !r) {
      return why_not(r);
    }
    if (frozen) {
      auto st = p.wait(b, "while-paused");
      if (!st) {
        return why_not(st);
      }
    }
    auto after = p.run(b, "after-resume", {"/bin/echo", "thawed"});
    if (!after) {
      return why_not(after);
    }
    return after->second == "thawed\n" ? std::string() : str_cat("stdout \"", after->second, "\"");
  });
  if (opt.oom) {
    h.check("an OOM kill in a 16 MiB container is reported by GetOOMEvent", [&] {
      grpc::StatsContainerRequest probe;
      probe.set_container_id(a);
      if (auto s = c.call<grpc::StatsContainerResponse>("StatsContainer", probe); !s) {
        return "not run: the agent has no memory cgroup to contain it (StatsContainer: " +
               why_not(s) + ")";
      }
      if (auto s = build_rootfs(c, m, opt.busybox); !s.empty()) {
        return s;
      }
      // Bounded: 16 B doubled 22 times is 64 MiB (a few copies in the shell), far over the
      // limit, but finite should the limit not hold.
      auto req = container_request(
          m,
          {"/bin/sh", "-c",
           "x=aaaaaaaaaaaaaaaa; i=0; while [ $i -lt 22 ]; do x=$x$x; i=$((i+1)); done; exit 3"},
          true);
      auto* mem = req.mutable_oci()->mutable_linux()->mutable_resources()->mutable_memory();
      mem->set_limit(16 << 20);
      mem->set_swap(16 << 20);
      if (auto r = c.call("CreateContainer", req); !r) {
        return why_not(r);
      }
      grpc::StartContainerRequest st;
      st.set_container_id(m);
      if (auto r = c.call("StartContainer", st); !r) {
        return why_not(r);
      }
      grpc::GetOOMEventRequest oom;
      auto ev = c.call<grpc::OOMEvent>("GetOOMEvent", oom, 30s);
      auto status = p.wait(m, m, 30s);
      grpc::RemoveContainerRequest rm;
      rm.set_container_id(m);
      (void)c.call("RemoveContainer", rm);
      if (!ev) {
        return why_not(ev);
      }
      if (ev->container_id() != m) {
        return str_cat("OOM event for \"", ev->container_id(), "\"");
      }
      return status && *status == 137 ? std::string()
                                      : str_cat("victim's status ", status ? *status : -1);
    });
  }

  // -- bad input
  // -----------------------------------------------------------------------------------
  h.check("bad input: invalid spec, unknown storage driver, unknown ids", [&] {
    auto bad = container_request(sid + "-bad", {"/bin/true"}, true);
    bad.mutable_oci()->mutable_process()->set_cwd("relative");
    if (auto s = expect_code(c.call("CreateContainer", bad), kt::code::invalid_argument, strict);
        !s.empty()) {
      return "invalid spec: " + s;
    }
    auto floppy = container_request(sid + "-bad", {"/bin/true"}, true);
    auto* st = floppy.add_storages();
    st->set_driver("floppy");
    st->set_mount_point(str_cat(base, "/floppy"));
    if (auto s = expect_code(c.call("CreateContainer", floppy), kt::code::invalid_argument, strict);
        !s.empty()) {
      return "storage driver: " + s;
    }
    grpc::StartContainerRequest unknown;
    unknown.set_container_id(sid + "-nope");
    if (auto s = expect_code(c.call("StartContainer", unknown), kt::code::not_found, strict);
        !s.empty()) {
      return "unknown container: " + s;
    }
    grpc::WaitProcessRequest w;
    w.set_container_id(a);
    w.set_exec_id("no-such-exec");
    if (auto s = expect_code(c.call<grpc::WaitProcessResponse>("WaitProcess", w),
                             kt::code::not_found, strict);
        !s.empty()) {
      return "unknown exec: " + s;
    }
    grpc::CheckRequest check;
    return why_not(c.typed<grpc::HealthCheckResponse>("grpc.Health", "Check", check, 10s));
  });
  h.check("a client that disconnects mid-call does not hurt the agent", [&] {
    auto other = open_client(io, opt.address);
    if (!other) {
      return other.error().message();
    }
    if (auto e = p.exec(a, "orphan-wait", {"/bin/sleep", "1000"}); !e) {
      return why_not(e);
    }
    grpc::WaitProcessRequest w;
    w.set_container_id(a);
    w.set_exec_id("orphan-wait");
    // The call times out on the client side and the connection closes under it.
    (void)(*other)->call<grpc::WaitProcessResponse>("WaitProcess", w, 300ms);
    (*other)->close();
    other->reset();
    grpc::SignalProcessRequest s;
    s.set_container_id(a);
    s.set_exec_id("orphan-wait");
    s.set_signal(SIGKILL);
    if (auto r = c.call("SignalProcess", s); !r) {
      return why_not(r);
    }
    auto st = p.wait(a, "orphan-wait");
    if (!st) {
      return why_not(st);
    }
    return *st == 137 ? std::string() : str_cat("status ", *st);
  });

  // -- teardown
  // ------------------------------------------------------------------------------------
  h.check("RemoveContainer B and A (running: killed)", [&] {
    for (const auto& id : {b, a}) {
      grpc::RemoveContainerRequest r;
      r.set_container_id(id);
      r.set_timeout(10);
      if (auto x = c.call("RemoveContainer", r); !x) {
        return str_cat(id, ": ", why_not(x));
      }
    }
    grpc::StatsContainerRequest s;
    s.set_container_id(a);
    return expect_code(c.call<grpc::StatsContainerResponse>("StatsContainer", s),
                       kt::code::not_found, strict);
  });
  h.check("DestroySandbox", [&] {
    grpc::DestroySandboxRequest r;
    return why_not(c.call("DestroySandbox", r));
  });

  std::printf("1..%d\n# %d passed, %d failed\n", h.n, h.n - h.failed, h.failed);
  for (const auto& f : h.failures) {
    std::printf("# FAILED: %s\n", f.c_str());
  }
  return h.failed == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char* argv[]) {
  options opt;
  const std::span<char*> args(argv, static_cast<std::size_t>(argc));
  for (std::size_t i = 1; i < args.size(); ++i) {
    const std::string_view a = args[i];
    if (a == "--server-address" && i + 1 < args.size()) {
      opt.address = args[++i];
    } else if (a == "--busybox" && i + 1 < args.size()) {
      opt.busybox = args[++i];
    } else if (a == "--strict") {
      opt.strict = true;
    } else if (a == "--no-oom") {
      opt.oom = false;
    } else {
      std::fputs(usage.data(), stderr);
      return 2;
    }
  }
  if (opt.address.empty()) {
    std::fputs(usage.data(), stderr);
    return 2;
  }
  ::signal(SIGPIPE, SIG_IGN);
  try {
    return run_suite(opt);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "agent-conformance: %s\n", e.what());
    return 1;
  }
}
