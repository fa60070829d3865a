// katana-ctl agent: any AgentService or Health call from JSON, answer as JSON.
#include "agent_cmd.hpp"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fcntl.h>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unistd.h>
#include <utility>
#include <vector>

#include <google/protobuf/descriptor.h>
#include <google/protobuf/dynamic_message.h>
#include <google/protobuf/message.h>
#include <google/protobuf/util/json_util.h>

#include <katana/agent/channel.hpp>
#include <katana/core/error.hpp>
#include <katana/core/str_cat.hpp>
#include <katana/core/try.hpp>
#include <katana/ttrpc/client.hpp>
#include <katana/ttrpc/status.hpp>
#include <katana/ttrpc/transport.hpp>

#include "agent.pb.h"
#include "health.pb.h"

namespace katana_ctl {

const std::string_view agent_usage =
    R"(  agent --server-address ADDR [--timeout SECONDS] CALL [JSON|@FILE|-]
                                        perform one grpc.AgentService or grpc.Health call
                                        (CALL: CreateSandbox, Check, grpc.Health/Version, ...;
                                        list: CALL "list"); the request is JSON (protobuf
                                        field names), the response is printed as JSON.
                                        ADDR: unix:///path, vsock://CID:PORT, hvsock://UDS:PORT
)";

namespace {

namespace pb = google::protobuf;
namespace kt = katana::ttrpc;
using katana::errc;
using katana::result;
using katana::status;

constexpr std::string_view services[] = {"grpc.AgentService", "grpc.Health"};

const pb::DescriptorPool& pool() {
  // Referencing the messages links their generated files in (static library).
  (void)grpc::CreateContainerRequest::descriptor();
  (void)grpc::CheckRequest::descriptor();
  return *pb::DescriptorPool::generated_pool();
}

result<const pb::MethodDescriptor*> find_method(std::string_view call) {
  std::string_view service;
  std::string_view method = call;
  if (const auto slash = call.find('/'); slash != std::string_view::npos) {
    service = call.substr(0, slash);
    method = call.substr(slash + 1);
  }
  for (const auto s : services) {
    if (!service.empty() && service != s) {
      continue;
    }
    const auto* sd = pool().FindServiceByName(std::string(s));
    if (sd == nullptr) {
      continue;
    }
    if (const auto* m = sd->FindMethodByName(std::string(method))) {
      return m;
    }
  }
  return katana::fail(
      errc::invalid_argument,
      katana::str_cat("unknown call \"", call, "\" (katana-ctl agent --server-address X list)"));
}

result<std::string> read_request(std::string_view arg) {
  if (arg.empty()) {
    return std::string("{}");
  }
  if (arg != "-" && arg.front() != '@') {
    return std::string(arg);
  }
  const std::string path = arg == "-" ? std::string("/dev/stdin") : std::string(arg.substr(1));
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return katana::fail_errno("open " + path);
  }
  std::string out;
  char buf[65536];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) {
      ::close(fd);
      if (n < 0) {
        return katana::fail_errno("read " + path);
      }
      return out;
    }
    out.append(buf, static_cast<std::size_t>(n));
  }
}

struct call_result {
  std::optional<result<std::string>> out;
};

template <class Stream>
katana::task<void> do_call(Stream stream,
                           std::string service,
                           std::string method,
                           std::string payload,
                           std::chrono::nanoseconds timeout,
                           call_result& res) {
  kt::basic_client<Stream> client(std::move(stream));
  kt::call_options opts;
  opts.timeout = timeout;
  res.out = co_await client.call(service, method, std::move(payload), std::move(opts));
}

template <class Connect>
result<std::string> run_call(Connect connect,
                             std::string service,
                             std::string method,
                             std::string payload,
                             std::chrono::nanoseconds timeout) {
  katana::asio::io_context io;
  call_result res;
  std::optional<katana::error> conn_error;
  katana::asio::co_spawn(
      io,
      [&]() -> katana::task<void> {
        auto s = co_await connect();
        if (!s) {
          conn_error = std::move(s).error();
          co_return;
        }
        co_await do_call(std::move(*s), service, method, std::move(payload), timeout, res);
      },
      katana::asio::detached);
  while (!res.out && !conn_error) {
    if (io.run_one() == 0) {
      break;
    }
  }
  if (conn_error) {
    return katana::unexpected<katana::error>(std::move(*conn_error));
  }
  if (!res.out) {
    return katana::fail(errc::internal, "the call did not complete");
  }
  return std::move(*res.out);
}

result<std::string> call_agent(std::string_view address,
                               std::string service,
                               std::string method,
                               std::string payload,
                               std::chrono::nanoseconds timeout) {
  if (address.substr(0, 8) == "vsock://") {
    const auto rest = address.substr(8);
    const auto colon = rest.rfind(':');
    if (colon == std::string_view::npos) {
      return katana::fail(errc::invalid_argument, "expected vsock://CID:PORT");
    }
    const auto cid = static_cast<std::uint32_t>(std::stoul(std::string(rest.substr(0, colon))));
    const auto port = static_cast<std::uint32_t>(std::stoul(std::string(rest.substr(colon + 1))));
    return run_call([cid, port] { return katana::agent::connect_vsock(cid, port); },
                    std::move(service), std::move(method), std::move(payload), timeout);
  }
  if (address.substr(0, 9) == "hvsock://") {
    const auto rest = address.substr(9);
    const auto colon = rest.rfind(':');
    if (colon == std::string_view::npos) {
      return katana::fail(errc::invalid_argument, "expected hvsock://UDS:PORT");
    }
    const std::string uds(rest.substr(0, colon));
    const auto port = static_cast<std::uint32_t>(std::stoul(std::string(rest.substr(colon + 1))));
    return run_call([uds, port] { return kt::connect_hybrid_vsock(uds, port); }, std::move(service),
                    std::move(method), std::move(payload), timeout);
  }
  const std::string addr(address);
  return run_call([addr] { return kt::connect_unix(addr); }, std::move(service), std::move(method),
                  std::move(payload), timeout);
}

}  // namespace

katana::status agent_command(std::vector<std::string_view> args) {
  std::string address;
  double timeout_s = 60;
  std::vector<std::string_view> rest;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const auto a = args[i];
    const auto value = [&](std::string_view name) -> result<std::string> {
      if (a.size() > name.size() && a.substr(0, name.size()) == name && a[name.size()] == '=') {
        return std::string(a.substr(name.size() + 1));
      }
      if (a == name && i + 1 < args.size()) {
        return std::string(args[++i]);
      }
      return katana::fail(errc::invalid_argument, std::string(name) + " needs a value");
    };
    if (a.substr(0, 16) == "--server-address") {
      address = KATANA_TRY(value("--server-address"));
    } else if (a.substr(0, 9) == "--timeout") {
      const auto t = KATANA_TRY(value("--timeout"));
      char* end = nullptr;
      timeout_s = std::strtod(t.c_str(), &end);
      if (end == t.c_str() || *end != '\0' || timeout_s < 0) {
        return katana::fail(errc::invalid_argument, "--timeout needs a number of seconds");
      }
    } else {
      rest.push_back(a);
    }
  }
  if (rest.empty()) {
    return katana::fail(errc::invalid_argument,
                        "agent: missing CALL (katana-ctl agent --server-address ADDR CALL [JSON])");
  }
  if (rest.front() == "list") {
    for (const auto s : services) {
      if (const auto* sd = pool().FindServiceByName(std::string(s))) {
        for (int m = 0; m < sd->method_count(); ++m) {
          std::printf("%s/%s\n", std::string(s).c_str(), sd->method(m)->name().c_str());
        }
      }
    }
    return {};
  }
  if (address.empty()) {
    return katana::fail(errc::invalid_argument, "agent: --server-address is required");
  }
  if (rest.size() > 2) {
    return katana::fail(errc::invalid_argument,
                        katana::str_cat("agent: unexpected argument \"", rest[2], "\""));
  }
  const auto* method = KATANA_TRY(find_method(rest.front()));
  const auto json = KATANA_TRY(read_request(rest.size() > 1 ? rest[1] : std::string_view{}));

  auto& factory = *pb::MessageFactory::generated_factory();
  (void)pool();
  std::unique_ptr<pb::Message> req(factory.GetPrototype(method->input_type())->New());
  pb::util::JsonParseOptions parse;
  parse.ignore_unknown_fields = false;
  if (const auto st = pb::util::JsonStringToMessage(json, req.get(), parse); !st.ok()) {
    return katana::fail(errc::invalid_argument,
                        katana::str_cat("agent: request for ", method->full_name(), ": ",
                                        std::string(st.message())));
  }
  std::string payload;
  req->SerializeToString(&payload);
  const auto timeout = std::chrono::duration_cast<std::chrono::nanoseconds>(
      std::chrono::duration<double>(timeout_s));
  auto out = call_agent(address, method->service()->full_name(), method->name(), std::move(payload),
                        timeout);
  if (!out) {
    return katana::unexpected<katana::error>(
        std::move(out).error().wrap(katana::str_cat("agent: ", method->full_name())));
  }
  std::unique_ptr<pb::Message> resp(factory.GetPrototype(method->output_type())->New());
  if (!resp->ParseFromString(*out)) {
    return katana::fail(errc::parse_error,
                        katana::str_cat("agent: ", method->full_name(), ": the response is not a ",
                                        method->output_type()->full_name()));
  }
  pb::util::JsonPrintOptions print;
  print.preserve_proto_field_names = true;
  print.always_print_primitive_fields = true;
  std::string text;
  (void)pb::util::MessageToJsonString(*resp, &text, print);
  std::printf("%s\n", text.c_str());
  return {};
}

}  // namespace katana_ctl
