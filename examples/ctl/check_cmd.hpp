// katana-ctl check: can this host run a sandbox VM (Kata's `kata-runtime check`)?
#pragma once

#include <string_view>
#include <vector>

#include <katana/core/error.hpp>

namespace katana_ctl {

extern const std::string_view check_usage;

/// `katana-ctl check [--verbose] [--json] [--config F]`; args excludes "check". Returns the exit
/// code: 0 when a VM can run (with KVM or TCG), 1 when not.
katana::result<int> check_command(std::vector<std::string_view> args);

}  // namespace katana_ctl
