// katana-ctl vm run: a container in a sandbox VM (QEMU + katana-agent), without containerd.
#pragma once

#include <string_view>
#include <vector>

#include <katana/core/error.hpp>

namespace katana_ctl {

extern const std::string_view vm_usage;

/// vm run's exit code when the run itself failed (as docker run's and podman run's).
inline constexpr int vm_run_failed = 125;

/// `katana-ctl vm run --rootfs DIR [--config F] -- CMD ARGS`; args excludes "vm". Returns the
/// container's exit code, or vm_run_failed (the error printed) when the run failed.
katana::result<int> vm_command(std::vector<std::string_view> args);

}  // namespace katana_ctl
