// The RPC layer of katana-agent: grpc.AgentService and grpc.Health as the generated bindings
// want them (task<result<Resp>> snake_case(server_context&, const Req&)), each translating its
// request with convert.hpp and calling basic_agent. Methods this class does not have answer
// UNIMPLEMENTED (generated default); a few answer it with a reason.
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include <katana/agent/service.hpp>
#include <katana/agent/volume_stats.hpp>
#include <katana/config.hpp>
#include <katana/core/error.hpp>
#include <katana/core/str_cat.hpp>
#include <katana/ttrpc/server.hpp>
#include <katana/ttrpc/service.hpp>

#include "convert.hpp"
// convert.hpp undefines glibc's major()/minor() before the generated headers.
#include "agent.ttrpc.hpp"
#include "agent_legacy.pb.h"
#include "health.ttrpc.hpp"

namespace katana::inline v0::agent {

/// A cancellation that fires at the call's deadline (when the caller sent a timeout), so a
/// long-poll whose caller stopped waiting takes nothing more (an event, output) for nobody.
class deadline_cancellation {
 public:
  deadline_cancellation(const ttrpc::server_context& ctx, asio::any_io_executor ex)
      : c_(std::make_shared<cancellation>()) {
    if (ctx.deadline) {
      timer_.emplace(std::move(ex), *ctx.deadline);
      timer_->async_wait([c = c_](boost::system::error_code ec) {
        if (!ec) {
          c->cancel();
        }
      });
    }
  }
  deadline_cancellation(const deadline_cancellation&) = delete;
  deadline_cancellation& operator=(const deadline_cancellation&) = delete;
  ~deadline_cancellation() {
    if (timer_) {
      timer_->cancel();
    }
  }
  cancellation* get() noexcept { return c_.get(); }

 private:
  std::shared_ptr<cancellation> c_;
  std::optional<asio::steady_timer> timer_;
};

/// Implements the RPCs on a basic_agent (held by shared_ptr, shared with the binary).
template <class Agent>
class rpc_service {
  using ctx = ttrpc::server_context;
  using empty = google::protobuf::Empty;
  template <class T>
  using reply = task<result<T>>;

 public:
  explicit rpc_service(std::shared_ptr<Agent> a) : a_(std::move(a)) {}

  reply<empty> create_sandbox(ctx&, const grpc::CreateSandboxRequest& req) {
    return done(a_->create_sandbox(convert::from_pb(req)));
  }
  reply<empty> destroy_sandbox(ctx&, const grpc::DestroySandboxRequest&) {
    return done(a_->destroy_sandbox());
  }
  reply<empty> create_container(ctx&, const grpc::CreateContainerRequest& req) {
    return done(a_->create_container(convert::from_pb(req)));
  }
  reply<empty> start_container(ctx&, const grpc::StartContainerRequest& req) {
    return done(a_->start_container(req.container_id()));
  }
  reply<empty> remove_container(ctx&, const grpc::RemoveContainerRequest& req) {
    return done(a_->remove_container(req.container_id(), req.timeout()));
  }
  reply<empty> exec_process(ctx&, const grpc::ExecProcessRequest& req) {
    if (!req.has_process()) {
      return failed<empty>(errc::invalid_argument, "ExecProcess: no process");
    }
    return done(
        a_->exec_process(req.container_id(), req.exec_id(), convert::from_pb(req.process())));
  }
  reply<empty> signal_process(ctx&, const grpc::SignalProcessRequest& req) {
    return done(a_->signal_process(req.container_id(), req.exec_id(), req.signal()));
  }
  reply<grpc::WaitProcessResponse> wait_process(ctx& c, const grpc::WaitProcessRequest& req) {
    auto a = a_;
    deadline_cancellation cancel(c, co_await asio::this_coro::executor);
    auto r = co_await a->wait_process(req.container_id(), req.exec_id(), cancel.get());
    if (!r) {
      co_return unexpected<error>(std::move(r).error());
    }
    grpc::WaitProcessResponse resp;
    resp.set_status(*r);
    co_return resp;
  }
  reply<grpc::ReadStreamResponse> read_stdout(ctx& c, const grpc::ReadStreamRequest& req) {
    return read(c, req, true);
  }
  reply<grpc::ReadStreamResponse> read_stderr(ctx& c, const grpc::ReadStreamRequest& req) {
    return read(c, req, false);
  }
  reply<grpc::WriteStreamResponse> write_stdin(ctx&, const grpc::WriteStreamRequest& req) {
    auto a = a_;
    auto r = co_await a->write_stdin(req.container_id(), req.exec_id(), req.data());
    if (!r) {
      co_return unexpected<error>(std::move(r).error());
    }
    grpc::WriteStreamResponse resp;
    resp.set_len(*r);
    co_return resp;
  }
  reply<empty> close_stdin(ctx&, const grpc::CloseStdinRequest& req) {
    return done(a_->close_stdin(req.container_id(), req.exec_id()));
  }
  reply<empty> tty_win_resize(ctx&, const grpc::TtyWinResizeRequest& req) {
    return done(a_->tty_win_resize(req.container_id(), req.exec_id(), req.row(), req.column()));
  }
  reply<empty> update_container(ctx&, const grpc::UpdateContainerRequest& req) {
    return done(a_->update_container(req.container_id(), convert::from_pb(req.resources())));
  }
  reply<grpc::StatsContainerResponse> stats_container(ctx&,
                                                      const grpc::StatsContainerRequest& req) {
    auto a = a_;
    auto r = co_await a->stats_container(req.container_id());
    if (!r) {
      co_return unexpected<error>(std::move(r).error());
    }
    co_return convert::to_pb(*r);
  }
  reply<empty> pause_container(ctx&, const grpc::PauseContainerRequest& req) {
    return done(a_->pause_container(req.container_id()));
  }
  reply<empty> resume_container(ctx&, const grpc::ResumeContainerRequest& req) {
    return done(a_->resume_container(req.container_id()));
  }
  reply<grpc::OOMEvent> get_oom_event(ctx& c, const grpc::GetOOMEventRequest&) {
    auto a = a_;
    deadline_cancellation cancel(c, co_await asio::this_coro::executor);
    auto r = co_await a->get_oom_event(cancel.get());
    if (!r) {
      co_return unexpected<error>(std::move(r).error());
    }
    grpc::OOMEvent ev;
    ev.set_container_id(*r);
    co_return ev;
  }
  reply<empty> online_cpu_mem(ctx&, const grpc::OnlineCPUMemRequest& req) {
    return done(a_->online_cpu_mem(req.wait(), req.nb_cpus(), req.cpu_only()));
  }
  reply<empty> mem_hotplug_by_probe(ctx&, const grpc::MemHotplugByProbeRequest& req) {
    return done(a_->mem_hotplug_by_probe(
        {req.memhotplugprobeaddr().begin(), req.memhotplugprobeaddr().end()}));
  }
  reply<empty> reseed_random_dev(ctx&, const grpc::ReseedRandomDevRequest& req) {
    return done(a_->reseed_random_dev(req.data()));
  }
  reply<grpc::GuestDetailsResponse> get_guest_details(ctx&, const grpc::GuestDetailsRequest& req) {
    auto a = a_;
    auto r = co_await a->get_guest_details(req.mem_block_size(), req.mem_hotplug_probe());
    if (!r) {
      co_return unexpected<error>(std::move(r).error());
    }
    co_return convert::to_pb(*r);
  }
  reply<empty> set_guest_date_time(ctx&, const grpc::SetGuestDateTimeRequest& req) {
    return done(a_->set_guest_date_time(req.sec(), req.usec()));
  }
  reply<types::Interface> update_interface(ctx&, const grpc::UpdateInterfaceRequest& req) {
    auto a = a_;
    auto r = co_await a->update_interface(convert::from_pb(req.interface()));
    if (!r) {
      co_return unexpected<error>(std::move(r).error());
    }
    co_return convert::to_pb(*r);
  }
  reply<grpc::Interfaces> list_interfaces(ctx&, const grpc::ListInterfacesRequest&) {
    auto a = a_;
    auto r = co_await a->list_interfaces();
    if (!r) {
      co_return unexpected<error>(std::move(r).error());
    }
    grpc::Interfaces out;
    for (const auto& i : *r) {
      *out.add_interfaces() = convert::to_pb(i);
    }
    co_return out;
  }
  reply<grpc::Routes> update_routes(ctx&, const grpc::UpdateRoutesRequest& req) {
    std::vector<net_route> routes;
    for (const auto& r : req.routes().routes()) {
      routes.push_back(convert::from_pb(r));
    }
    auto a = a_;
    auto r = co_await a->update_routes(std::move(routes));
    if (!r) {
      co_return unexpected<error>(std::move(r).error());
    }
    co_return convert::to_pb(*r);
  }
  reply<grpc::Routes> list_routes(ctx&, const grpc::ListRoutesRequest&) {
    auto a = a_;
    auto r = co_await a->list_routes();
    if (!r) {
      co_return unexpected<error>(std::move(r).error());
    }
    co_return convert::to_pb(*r);
  }
  reply<empty> add_arp_neighbors(ctx&, const grpc::AddARPNeighborsRequest& req) {
    std::vector<arp_neighbor> ns;
    for (const auto& n : req.neighbors().arpneighbors()) {
      ns.push_back(convert::from_pb(n));
    }
    return done(a_->add_arp_neighbors(std::move(ns)));
  }
  reply<empty> copy_file(ctx&, const grpc::CopyFileRequest& req) {
    return done(a_->copy_file(convert::from_pb(req)));
  }
  /// Kata answers it for any guest path it can open: statfs, no volume bookkeeping.
  reply<grpc::VolumeStatsResponse> get_volume_stats(ctx&, const grpc::VolumeStatsRequest& req) {
    auto r = read_volume_stats(req.volume_guest_path());
    if (!r) {
      co_return unexpected<error>(std::move(r).error());
    }
    grpc::VolumeStatsResponse out;
    for (const auto& u : r->usage) {
      auto* v = out.add_usage();
      v->set_available(u.available);
      v->set_total(u.total);
      v->set_used(u.used);
      v->set_unit(u.what == volume_usage::unit::bytes ? grpc::VolumeUsage::BYTES
                                                      : grpc::VolumeUsage::INODES);
    }
    // Reachable is all Kata's agent checks for the condition.
    out.mutable_volume_condition()->set_abnormal(false);
    out.mutable_volume_condition()->set_message("OK");
    co_return out;
  }
  reply<grpc::Metrics> get_metrics(ctx&, const grpc::GetMetricsRequest&) {
    auto a = a_;
    auto r = co_await a->get_metrics();
    if (!r) {
      co_return unexpected<error>(std::move(r).error());
    }
    grpc::Metrics m;
    m.set_metrics(*r);
    co_return m;
  }

  /// Kata 2.x's ListProcesses: "json" gives the pids as a JSON array, anything else a table
  /// of PID and command line (from /proc; the guest has no ps).
  reply<grpc::ListProcessesResponse> list_processes(ctx&, const grpc::ListProcessesRequest& req) {
    auto a = a_;
    auto r = co_await a->list_processes(req.container_id());
    if (!r) {
      co_return unexpected<error>(std::move(r).error());
    }
    std::string out;
    if (req.format() == "json") {
      out = "[";
      for (std::size_t i = 0; i < r->size(); ++i) {
        out += str_cat(i == 0 ? "" : ",", (*r)[i]);
      }
      out += "]";
    } else {
      out = "PID CMD\n";
      for (const pid_t pid : *r) {
        std::string cmd =
            detail::read_small_file(a->options().proc_root / std::to_string(pid) / "cmdline")
                .value_or("");
        std::replace(cmd.begin(), cmd.end(), '\0', ' ');
        while (!cmd.empty() && cmd.back() == ' ') {
          cmd.pop_back();
        }
        out += str_cat(pid, " ", cmd, "\n");
      }
    }
    grpc::ListProcessesResponse resp;
    resp.set_process_list(std::move(out));
    co_return resp;
  }

  // grpc.Health
  reply<grpc::HealthCheckResponse> check(ctx&, const grpc::CheckRequest&) {
    grpc::HealthCheckResponse r;
    r.set_status(grpc::HealthCheckResponse::SERVING);
    co_return r;
  }
  reply<grpc::VersionCheckResponse> version(ctx&, const grpc::CheckRequest&) {
    grpc::VersionCheckResponse r;
    r.set_grpc_version("ttrpc");
    r.set_agent_version(std::string("katana-agent ") + version_string);
    co_return r;
  }

 private:
  static reply<empty> done(task<status> t) {
    auto r = co_await std::move(t);
    if (!r) {
      co_return unexpected<error>(std::move(r).error());
    }
    co_return empty{};
  }
  template <class T>
  static reply<T> failed(errc c, std::string why) {
    co_return fail(c, std::move(why));
  }
  reply<grpc::ReadStreamResponse> read(ctx& c, const grpc::ReadStreamRequest& req, bool out) {
    auto a = a_;
    deadline_cancellation cancel(c, co_await asio::this_coro::executor);
    auto r =
        co_await a->read_stream(req.container_id(), req.exec_id(), out, req.len(), cancel.get());
    if (!r) {
      co_return unexpected<error>(std::move(r).error());
    }
    grpc::ReadStreamResponse resp;
    resp.set_data(std::move(*r));
    co_return resp;
  }

  std::shared_ptr<Agent> a_;
};

/// Registers AgentService and Health for `impl`; RPCs katana does not implement answer
/// UNIMPLEMENTED with the reason.
template <class Agent>
void register_services(ttrpc::service_table& table, std::shared_ptr<rpc_service<Agent>> impl) {
  grpc::register_agent_service(table, impl);
  grpc::register_health(table, impl);
  ttrpc::register_method<grpc::ListProcessesRequest, grpc::ListProcessesResponse>(
      table, "grpc.AgentService", "ListProcesses", impl,
      [](auto& s, ttrpc::server_context& c, const grpc::ListProcessesRequest& req) {
        return s.list_processes(c, req);
      });
  constexpr std::string_view svc = "grpc.AgentService";
  const auto no = [&](std::string_view method, std::string_view why) {
    ttrpc::register_unsupported(table, svc, method, why);
  };
  no("GetIPTables", "is not implemented: the guest has no iptables");
  no("SetIPTables", "is not implemented: the guest has no iptables");
  no("UpdateEphemeralMounts", "is not implemented yet");
  no("RemoveStaleVirtiofsShareMounts", "is not implemented yet");
  no("GetDiagnosticData", "is not implemented yet");
  no("MemAgentMemcgSet", "is not implemented: katana-agent has no mem-agent");
  no("MemAgentCompactSet", "is not implemented: katana-agent has no mem-agent");
  no("AddSwap", "is not implemented yet");
  no("AddSwapPath", "is not implemented yet");
  no("ResizeVolume", "is not implemented yet");
  no("SetPolicy", "is not implemented: katana-agent has no policy engine");
}

}  // namespace katana::inline v0::agent
