// ttrpc-bench: unary round-trip latency (p50, p99) and calls/s over ONE unix-socket connection,
// katana (C++ client -> ttrpc-echo-server) against the reference Go ttrpc (ttrpc-peer bench ->
// ttrpc-peer server), with 1 and with 64 concurrent callers, in one invocation. Prints a table
// and writes JSON.
//
//   ttrpc-bench [--duration S] [--warmup S] [--payload BYTES] [--callers 1,64] [--rounds N]
//               [--json PATH] [--echo-server PATH] [--go-peer PATH]
//
// Both sides call katana.test.Echo with a BytesValue of --payload bytes, marshalled and
// unmarshalled on every call, servers in their own processes. A call counts when it starts after
// the warm-up and ends before the measured window closes; calls/s = counted calls / window.
// With --rounds N the whole matrix runs N times, katana and Go alternating row by row, and each
// (impl, callers) reports its best round (most calls/s): on a shared machine the other load
// only ever slows a round down. Every round is kept in the JSON.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <unistd.h>
#include <vector>

#include <google/protobuf/wrappers.pb.h>
#include <nlohmann/json.hpp>

#include <katana/ttrpc/transport.hpp>

#include "process.hpp"

namespace {

using katana::task;
using katana::test::child_process;
using katana::test::temp_dir;
using clock_type = std::chrono::steady_clock;
namespace asio = boost::asio;
namespace pb = google::protobuf;

constexpr const char* service = "katana.test.Echo";

struct options {
  double duration_s = 3.0;
  double warmup_s = 0.5;
  std::size_t payload = 64;
  std::vector<int> callers{1, 64};
  int rounds = 1;
  std::string json = "bench/results/ttrpc.json";
  std::string echo_server = KATANA_TTRPC_ECHO_SERVER;
  std::string go_peer = KATANA_TTRPC_GO_PEER;
};

struct row {
  std::string impl;
  int callers = 0;
  std::size_t calls = 0;
  double seconds = 0;
  double calls_per_sec = 0;
  double p50_us = 0;
  double p99_us = 0;
  std::size_t errors = 0;
  std::string first_error;
};

double percentile_us(const std::vector<clock_type::duration>& sorted, double p) {
  if (sorted.empty()) {
    return 0;
  }
  const auto i = static_cast<std::size_t>(p * static_cast<double>(sorted.size() - 1));
  return std::chrono::duration<double, std::micro>(sorted[i]).count();
}

// katana's client, on this thread, against the C++ server at `socket`.
row run_katana(const std::string& socket, int callers, const options& o) {
  asio::io_context io(1);
  row r{"katana", callers};
  // Connect first; the client (whose read loop keeps io busy) is made once run() returned.
  std::optional<katana::ttrpc::unix_socket> sock;
  asio::co_spawn(
      io,
      [&]() -> task<void> {
        auto s = co_await katana::ttrpc::connect_unix(socket);
        if (s) {
          sock.emplace(std::move(*s));
        } else {
          r.first_error = s.error().message();
        }
      },
      asio::detached);
  io.run();
  if (!sock) {
    r.errors = 1;
    return r;
  }
  std::optional<katana::ttrpc::unix_client> client;
  client.emplace(std::move(*sock));

  const std::string data(o.payload, 'p');
  std::vector<clock_type::duration> lat;
  lat.reserve(1U << 20);
  const auto begin = clock_type::now();
  const auto measure_from = begin + std::chrono::duration_cast<clock_type::duration>(
                                        std::chrono::duration<double>(o.warmup_s));
  const auto end = measure_from + std::chrono::duration_cast<clock_type::duration>(
                                      std::chrono::duration<double>(o.duration_s));
  int running = callers;
  io.restart();
  for (int i = 0; i < callers; ++i) {
    asio::co_spawn(
        io,
        [&]() -> task<void> {
          pb::BytesValue in;
          pb::BytesValue out;
          for (;;) {
            const auto t0 = clock_type::now();
            if (t0 > end) {
              break;
            }
            in.set_value(data);
            auto res = co_await client->call(service, "Echo", in.SerializeAsString());
            const auto t1 = clock_type::now();
            if (!res || !out.ParseFromString(*res) || out.value().size() != data.size()) {
              if (r.errors++ == 0) {
                r.first_error = res ? "bad response" : res.error().message();
              }
            } else if (t0 >= measure_from && t1 <= end) {
              lat.push_back(t1 - t0);
            }
          }
          if (--running == 0) {
            client->close();  // ends the read loop, so io.run() returns
          }
        },
        asio::detached);
  }
  io.run();
  std::sort(lat.begin(), lat.end());
  r.calls = lat.size();
  r.seconds = o.duration_s;
  r.calls_per_sec = static_cast<double>(lat.size()) / o.duration_s;
  r.p50_us = percentile_us(lat, 0.50);
  r.p99_us = percentile_us(lat, 0.99);
  return r;
}

// The Go client (ttrpc-peer bench), in its own process, against the Go server at `socket`.
row run_go(const std::string& socket, int callers, const options& o, const temp_dir& dir) {
  row r{"go", callers};
  const auto ms = [](double s) {
    return std::to_string(static_cast<long>(s * 1000)) + "ms";
  };
  auto client = child_process::spawn(
      {o.go_peer, "bench", "--socket", socket, "--callers", std::to_string(callers), "--duration",
       ms(o.duration_s), "--warmup", ms(o.warmup_s), "--payload", std::to_string(o.payload)},
      dir.file("go-bench.log"));
  if (!client) {
    r.errors = 1;
    r.first_error = client.error().message();
    return r;
  }
  const auto rc =
      client->wait_for(std::chrono::seconds(60 + static_cast<long>(o.duration_s + o.warmup_s)));
  const auto output = client->output();
  if (!rc || *rc != 0) {
    r.errors = 1;
    r.first_error = "ttrpc-peer bench failed: " + output;
    return r;
  }
  // The JSON is the last line; anything before it is the peer's diagnostics.
  std::istringstream lines(output);
  std::string line;
  std::string last;
  while (std::getline(lines, line)) {
    if (!line.empty() && line.front() == '{') {
      last = line;
    } else if (!line.empty()) {
      std::cerr << "ttrpc-peer: " << line << "\n";
    }
  }
  try {
    const auto j = nlohmann::json::parse(last);
    r.calls = j.at("calls").get<std::size_t>();
    r.seconds = j.at("seconds").get<double>();
    r.calls_per_sec = j.at("calls_per_sec").get<double>();
    r.p50_us = j.at("p50_us").get<double>();
    r.p99_us = j.at("p99_us").get<double>();
    r.errors = j.at("errors").get<std::size_t>();
  } catch (const std::exception& e) {
    r.errors = 1;
    r.first_error = std::string("cannot read ttrpc-peer's result: ") + e.what() + ": " + output;
  }
  return r;
}

std::optional<options> parse_args(int argc, char* argv[]) {
  options o;
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    const bool has_value = i + 1 < argc;
    const std::string v = has_value ? argv[i + 1] : "";
    if (a == "--duration" && has_value) {
      o.duration_s = std::stod(v);
    } else if (a == "--warmup" && has_value) {
      o.warmup_s = std::stod(v);
    } else if (a == "--payload" && has_value) {
      o.payload = std::stoul(v);
    } else if (a == "--callers" && has_value) {
      o.callers.clear();
      std::istringstream s(v);
      for (std::string n; std::getline(s, n, ',');) {
        o.callers.push_back(std::stoi(n));
      }
    } else if (a == "--rounds" && has_value) {
      o.rounds = std::stoi(v);
    } else if (a == "--json" && has_value) {
      o.json = v;
    } else if (a == "--echo-server" && has_value) {
      o.echo_server = v;
    } else if (a == "--go-peer" && has_value) {
      o.go_peer = v;
    } else {
      std::cerr << "usage: " << argv[0]
                << " [--duration S] [--warmup S] [--payload BYTES] [--callers 1,64] [--rounds N] "
                   "[--json PATH]"
                   " [--echo-server PATH] [--go-peer PATH]\n";
      return std::nullopt;
    }
    ++i;
  }
  if (o.duration_s <= 0 || o.warmup_s < 0 || o.callers.empty() || o.rounds < 1) {
    std::cerr << "ttrpc-bench: bad options\n";
    return std::nullopt;
  }
  return o;
}

std::string read_first_line(const char* path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return line;
}

std::string fixed(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

}  // namespace

int main(int argc, char* argv[]) {
  const auto o = parse_args(argc, argv);
  if (!o) {
    return 2;
  }
  if (o->go_peer.empty()) {
    std::cerr << "ttrpc-bench: no Go peer (" << KATANA_TTRPC_GO_PEER_MISSING << ")\n";
    return 1;
  }
  const std::string load_before = read_first_line("/proc/loadavg");

  temp_dir dir("katana-ttrpc-bench");
  const std::string katana_socket = dir.file("katana.sock");
  const std::string go_socket = dir.file("go.sock");
  auto katana_server =
      child_process::spawn({o->echo_server, "--socket", katana_socket}, dir.file("katana.log"));
  auto go_server =
      child_process::spawn({o->go_peer, "server", "--socket", go_socket}, dir.file("go.log"));
  if (!katana_server || !go_server) {
    std::cerr << "ttrpc-bench: cannot start the servers\n";
    return 1;
  }
  for (auto [server, socket] :
       {std::pair{&*katana_server, &katana_socket}, std::pair{&*go_server, &go_socket}}) {
    if (auto up = katana::test::wait_for_socket(*socket, *server); !up) {
      std::cerr << "ttrpc-bench: " << up.error().message() << "\n";
      return 1;
    }
  }

  std::vector<row> all;   // every round
  std::vector<row> rows;  // the best round of each (impl, callers)
  for (int round = 1; round <= o->rounds; ++round) {
    for (const int callers : o->callers) {
      for (const bool katana_side : {true, false}) {
        auto r = katana_side ? run_katana(katana_socket, callers, *o)
                             : run_go(go_socket, callers, *o, dir);
        std::fprintf(stderr, "  round %d: %-6s %3d callers: %8.0f calls/s, p50 %.1f us\n", round,
                     r.impl.c_str(), callers, r.calls_per_sec, r.p50_us);
        all.push_back(r);
        auto best = std::find_if(rows.begin(), rows.end(), [&](const row& b) {
          return b.impl == r.impl && b.callers == r.callers;
        });
        if (best == rows.end()) {
          rows.push_back(std::move(r));
        } else if (r.calls_per_sec > best->calls_per_sec) {
          const auto errors = best->errors + r.errors;
          *best = std::move(r);
          best->errors = errors;
        } else {
          best->errors += r.errors;
        }
      }
    }
  }
  const int katana_rc = katana_server->terminate();
  const int go_rc = go_server->terminate();

  // ---- table ----
  std::printf(
      "\nttrpc unary Echo, %zu-byte payload, one unix-socket connection, %.1f s per row "
      "after %.1f s warm-up, best of %d round(s) (load before: %s)\n\n",
      o->payload, o->duration_s, o->warmup_s, o->rounds, load_before.c_str());
  std::printf("%-8s %8s %12s %10s %10s %8s\n", "impl", "callers", "calls/s", "p50 us", "p99 us",
              "errors");
  for (const auto& r : rows) {
    std::printf("%-8s %8d %12.0f %10.1f %10.1f %8zu\n", r.impl.c_str(), r.callers, r.calls_per_sec,
                r.p50_us, r.p99_us, r.errors);
  }
  std::printf("\n");
  nlohmann::json ratios = nlohmann::json::array();
  bool targets_met = true;
  bool ok = katana_rc == 0 && go_rc == 0;
  for (const int callers : o->callers) {
    const row* k = nullptr;
    const row* g = nullptr;
    for (const auto& r : rows) {
      if (r.callers == callers) {
        (r.impl == "katana" ? k : g) = &r;
      }
      if (r.errors > 0) {
        ok = false;
        std::fprintf(stderr, "ttrpc-bench: %s, %d callers: %zu errors, first: %s\n", r.impl.c_str(),
                     r.callers, r.errors, r.first_error.c_str());
      }
    }
    if (k == nullptr || g == nullptr || g->calls_per_sec <= 0 || g->p50_us <= 0) {
      continue;
    }
    const double cps = k->calls_per_sec / g->calls_per_sec;
    const double p50 = k->p50_us / g->p50_us;
    const bool met = cps >= 2.0 && p50 <= 0.5;
    targets_met = targets_met && met;
    std::printf("%3d callers: katana/go calls/s %sx (target >= 2x), p50 %sx (target <= 0.5x): %s\n",
                callers, fixed(cps, 2).c_str(), fixed(p50, 2).c_str(), met ? "met" : "MISSED");
    ratios.push_back({{"callers", callers},
                      {"calls_per_sec_ratio", cps},
                      {"p50_ratio", p50},
                      {"targets_met", met}});
  }

  // ---- JSON ----
  nlohmann::json j;
  j["benchmark"] = "ttrpc unary Echo round trip, one unix-socket connection";
  j["payload_bytes"] = o->payload;
  j["duration_s"] = o->duration_s;
  j["warmup_s"] = o->warmup_s;
  j["rounds"] = o->rounds;
  j["build_type"] = KATANA_BENCH_BUILD_TYPE;
  j["nproc"] = std::thread::hardware_concurrency();
  j["loadavg_before"] = load_before;
  j["loadavg_after"] = read_first_line("/proc/loadavg");
  j["go_ttrpc"] = "github.com/containerd/ttrpc 1.1.1 (Debian golang-github-containerd-ttrpc-dev)";
  j["results"] = nlohmann::json::array();
  for (const auto& r : rows) {
    j["results"].push_back({{"impl", r.impl},
                            {"callers", r.callers},
                            {"calls", r.calls},
                            {"calls_per_sec", r.calls_per_sec},
                            {"p50_us", r.p50_us},
                            {"p99_us", r.p99_us},
                            {"errors", r.errors}});
  }
  j["rounds_all"] = nlohmann::json::array();
  for (const auto& r : all) {
    j["rounds_all"].push_back({{"impl", r.impl},
                               {"callers", r.callers},
                               {"calls_per_sec", r.calls_per_sec},
                               {"p50_us", r.p50_us},
                               {"p99_us", r.p99_us},
                               {"errors", r.errors}});
  }
  j["ratios"] = ratios;
  j["targets"] = "katana >= 2x Go's calls/s and <= 0.5x Go's p50";
  j["targets_met"] = targets_met;
  if (!o->json.empty()) {
    std::error_code ec;
    const auto parent = std::filesystem::path(o->json).parent_path();
    if (!parent.empty()) {
      std::filesystem::create_directories(parent, ec);
    }
    std::ofstream out(o->json);
    out << j.dump(2) << "\n";
    if (!out) {
      std::cerr << "ttrpc-bench: cannot write " << o->json << "\n";
      return 1;
    }
    std::printf("\nwrote %s\n", o->json.c_str());
  }
  return ok ? 0 : 1;
}
