// katana-ctl agent when katana is built without the protocol bindings (KATANA_BUILD_CODEGEN=OFF).
#include "agent_cmd.hpp"

namespace katana_ctl {

const std::string_view agent_usage =
    "  agent ...                             (not built: needs KATANA_BUILD_CODEGEN)\n";

katana::status agent_command(std::vector<std::string_view>) {
  return katana::fail(katana::errc::unsupported,
                      "agent: this katana-ctl was built without the agent protocol bindings");
}

}  // namespace katana_ctl
