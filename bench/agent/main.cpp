// agent-bench: the agent's memory and container latency through Kata's agent protocol.
//   RSS (VmRSS of the agent's pid) idle, after CreateSandbox, with N running containers and
//   after teardown; CreateContainer, StartContainer and their sum per container, and
//   RemoveContainer. Prints a table and writes JSON (--json).
//   agent-bench --server-address ADDR [--agent-pid PID] [-n 10] [--busybox PATH] [--json FILE]
//               [--label TEXT]
// Without --agent-pid (an agent in a VM) the RSS is the agent's own report in GetMetrics.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <numeric>
#include <span>
#include <sstream>
#include <string>
#include <string_view>
#include <sys/types.h>
#include <thread>
#include <unistd.h>
#include <vector>

#include <katana/core/str_cat.hpp>
#include <katana/oci/default_spec.hpp>

#include "client.hpp"
#include "convert.hpp"
#include "health.pb.h"

namespace {

using katana::str_cat;
using katana_agent_test::agent_client;
using katana_agent_test::why_not;
using clock_type = std::chrono::steady_clock;
using namespace std::chrono_literals;

struct options {
  std::string address;
  pid_t pid = 0;
  int n = 10;
  std::string busybox = "/bin/busybox";
  std::string json;
  std::string label = "katana-agent";
};

/// Resident memory of the agent in KiB: all of it (VmRSS: mostly the binary's text pages,
/// shared with the page cache or the initrd's tmpfs), its anonymous part (heap, stacks: what
/// the agent itself allocates) and the peak (VmHWM; -1 when unknown).
struct memory {
  long rss = -1;
  long anon = -1;
  long peak = -1;
};

memory rss_kb(pid_t pid) {
  std::ifstream in(str_cat("/proc/", pid, "/status"));
  std::string line;
  memory m;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) {
      m.rss = std::stol(line.substr(6));
    } else if (line.rfind("RssAnon:", 0) == 0) {
      m.anon = std::stol(line.substr(8));
    } else if (line.rfind("VmHWM:", 0) == 0) {
      m.peak = std::stol(line.substr(6));
    }
  }
  return m;
}

struct summary {
  double mean = 0, p50 = 0, min = 0, max = 0;
};

summary summarize(std::vector<double> v) {
  summary s;
  if (v.empty()) {
    return s;
  }
  std::sort(v.begin(), v.end());
  s.mean = std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
  s.p50 = v[v.size() / 2];
  s.min = v.front();
  s.max = v.back();
  return s;
}

std::string json_summary(const summary& s) {
  std::ostringstream o;
  o.precision(3);
  o << std::fixed << "{\"mean\":" << s.mean << ",\"p50\":" << s.p50 << ",\"min\":" << s.min
    << ",\"max\":" << s.max << "}";
  return o.str();
}

double ms_since(clock_type::time_point t0) {
  return std::chrono::duration<double, std::milli>(clock_type::now() - t0).count();
}

/// The same numbers as the agent reports them in GetMetrics (for an agent in a VM).
memory rss_from_metrics(agent_client& c) {
  grpc::GetMetricsRequest req;
  memory m;
  auto r = c.call<grpc::Metrics>("GetMetrics", req, 10s);
  if (!r) {
    return m;
  }
  std::istringstream in(r->metrics());
  std::string line;
  const auto value = [&](std::string_view key) -> long {
    return line.rfind(key, 0) == 0 ? std::stol(line.substr(key.size())) / 1024 : -1;
  };
  while (std::getline(in, line)) {
    if (const auto v = value("kata_agent_process_resident_memory_bytes "); v >= 0) {
      m.rss = v;
    } else if (const auto a = value("katana_agent_process_memory_bytes{kind=\"anon\"} "); a >= 0) {
      m.anon = a;
    } else if (const auto p = value("katana_agent_process_memory_bytes{kind=\"peak\"} "); p >= 0) {
      m.peak = p;
    }
  }
  return m;
}

int run(const options& opt) {
  katana::asio::io_context io;
  auto client = katana_agent_test::open_client(io, opt.address);
  if (!client) {
    std::fprintf(stderr, "agent-bench: %s\n", client.error().message().c_str());
    return 77;
  }
  auto& c = **client;
  const auto rss = [&] {
    return opt.pid > 0 ? rss_kb(opt.pid) : rss_from_metrics(c);
  };
  const auto fail = [](std::string_view what, const std::string& why) {
    std::fprintf(stderr, "agent-bench: %.*s: %s\n", static_cast<int>(what.size()), what.data(),
                 why.c_str());
    return 1;
  };
  grpc::CheckRequest check;
  if (auto r = c.typed<grpc::HealthCheckResponse>("grpc.Health", "Check", check, 10s); !r) {
    return fail("Check", why_not(r));
  }
  std::this_thread::sleep_for(200ms);
  const auto idle = rss();

  const std::string sid = str_cat("bench", ::getpid());
  grpc::CreateSandboxRequest sb;
  sb.set_hostname("bench");
  sb.set_sandbox_id(sid);
  sb.set_sandbox_pidns(false);
  if (auto r = c.call("CreateSandbox", sb); !r) {
    return fail("CreateSandbox", why_not(r));
  }
  std::this_thread::sleep_for(200ms);
  const auto after_sandbox = rss();

  // One read-only busybox rootfs shared by every container.
  const std::string rootfs_id = sid + "-rootfs";
  if (auto s = katana_agent_test::build_rootfs(c, rootfs_id, opt.busybox); !s.empty()) {
    return fail("rootfs", s);
  }
  std::vector<double> create_ms, start_ms, both_ms, remove_ms;
  std::vector<std::string> ids;
  for (int i = 0; i < opt.n; ++i) {
    const std::string id = str_cat(sid, "-", i);
    auto s = katana::oci::default_spec(false);
    s.process->terminal = false;
    s.process->args = {"/bin/sleep", "3600"};
    s.process->env = {"PATH=/bin"};
    s.root->path = katana_agent_test::rootfs_of(rootfs_id);
    s.root->readonly = true;
    s.hostname = "bench";
    std::erase_if(s.linux_->namespaces, [](const katana::oci::linux_namespace& ns) {
      return ns.type == "network" || ns.type == "cgroup";
    });
    s.linux_->cgroups_path = str_cat("/katana-bench-", id);
    grpc::CreateContainerRequest cr;
    cr.set_container_id(id);
    cr.set_exec_id(id);
    *cr.mutable_oci() = katana::agent::convert::to_pb(s);
    const auto t0 = clock_type::now();
    if (auto r = c.call("CreateContainer", cr); !r) {
      return fail(str_cat("CreateContainer ", id), why_not(r));
    }
    const auto t1 = clock_type::now();
    grpc::StartContainerRequest st;
    st.set_container_id(id);
    if (auto r = c.call("StartContainer", st); !r) {
      return fail(str_cat("StartContainer ", id), why_not(r));
    }
    create_ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
    start_ms.push_back(ms_since(t1));
    both_ms.push_back(ms_since(t0));
    ids.push_back(id);
  }
  std::this_thread::sleep_for(300ms);
  const auto with_n = rss();
  for (const auto& id : ids) {
    grpc::RemoveContainerRequest rm;
    rm.set_container_id(id);
    rm.set_timeout(10);
    const auto t0 = clock_type::now();
    if (auto r = c.call("RemoveContainer", rm); !r) {
      return fail(str_cat("RemoveContainer ", id), why_not(r));
    }
    remove_ms.push_back(ms_since(t0));
  }
  grpc::DestroySandboxRequest ds;
  if (auto r = c.call("DestroySandbox", ds); !r) {
    return fail("DestroySandbox", why_not(r));
  }
  std::this_thread::sleep_for(200ms);
  const auto after = rss();

  const auto cs = summarize(create_ms);
  const auto ss = summarize(start_ms);
  const auto bs = summarize(both_ms);
  const auto rs = summarize(remove_ms);
  std::printf("%-44s %10s %10s\n", opt.label.c_str(), "RSS KiB", "anon KiB");
  const auto mem_row = [](const std::string& name, const memory& m) {
    std::printf("%-44s %10ld %10ld\n", name.c_str(), m.rss, m.anon);
  };
  mem_row("idle (after Check)", idle);
  mem_row("after CreateSandbox", after_sandbox);
  mem_row(str_cat("with ", opt.n, " running containers"), with_n);
  mem_row("after teardown", after);
  std::printf("%-44s %10ld\n", "peak (VmHWM)", std::max(with_n.peak, after.peak));
  std::printf("\n%-30s %9s %9s %9s %9s\n", "latency (ms)", "mean", "p50", "min", "max");
  const auto row = [](const char* name, const summary& s) {
    std::printf("%-30s %9.2f %9.2f %9.2f %9.2f\n", name, s.mean, s.p50, s.min, s.max);
  };
  row("CreateContainer", cs);
  row("StartContainer", ss);
  row("CreateContainer+StartContainer", bs);
  row("RemoveContainer (running)", rs);

  if (!opt.json.empty()) {
    std::ofstream out(opt.json);
    const auto mem_json = [](const memory& m) {
      return str_cat("{\"rss\":", m.rss, ",\"anon\":", m.anon, "}");
    };
    out << "{\"label\":\"" << opt.label << "\",\"containers\":" << opt.n
        << ",\"memory_kib\":{\"idle\":" << mem_json(idle)
        << ",\"after_create_sandbox\":" << mem_json(after_sandbox)
        << ",\"with_containers\":" << mem_json(with_n) << ",\"after_teardown\":" << mem_json(after)
        << ",\"peak\":" << std::max(with_n.peak, after.peak)
        << "},\"latency_ms\":{\"create\":" << json_summary(cs) << ",\"start\":" << json_summary(ss)
        << ",\"create_plus_start\":" << json_summary(bs) << ",\"remove\":" << json_summary(rs)
        << "}}\n";
  }
  return 0;
}

}  // namespace

int main(int argc, char* argv[]) {
  options opt;
  const std::span<char*> args(argv, static_cast<std::size_t>(argc));
  for (std::size_t i = 1; i < args.size(); ++i) {
    const std::string_view a = args[i];
    const bool more = i + 1 < args.size();
    if (a == "--server-address" && more) {
      opt.address = args[++i];
    } else if (a == "--agent-pid" && more) {
      opt.pid = static_cast<pid_t>(std::stol(args[++i]));
    } else if (a == "-n" && more) {
      opt.n = std::stoi(args[++i]);
    } else if (a == "--busybox" && more) {
      opt.busybox = args[++i];
    } else if (a == "--json" && more) {
      opt.json = args[++i];
    } else if (a == "--label" && more) {
      opt.label = args[++i];
    } else {
      std::fputs(
          "usage: agent-bench --server-address ADDR [--agent-pid PID] [-n 10] [--busybox PATH] "
          "[--json FILE] [--label TEXT]\n",
          stderr);
      return 2;
    }
  }
  if (opt.address.empty()) {
    std::fputs("agent-bench: --server-address is required\n", stderr);
    return 2;
  }
  return run(opt);
}
