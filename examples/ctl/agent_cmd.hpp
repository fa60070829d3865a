// katana-ctl agent: Kata's agent-ctl job. Performs one grpc.AgentService or grpc.Health call
// on an agent, the request given as JSON (protobuf's JSON mapping), and prints the response
// as JSON.
#pragma once

#include <string_view>
#include <vector>

#include <katana/core/error.hpp>

namespace katana_ctl {

/// The help text of the subcommand (for katana-ctl --help).
extern const std::string_view agent_usage;

/// `katana-ctl agent --server-address ADDR [--timeout SECONDS] CALL [JSON]`; args excludes
/// "agent".
katana::status agent_command(std::vector<std::string_view> args);

}  // namespace katana_ctl
