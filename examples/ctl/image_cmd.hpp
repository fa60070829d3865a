// katana-ctl image build: the guest kernel (an uncompressed vmlinux from Debian's
// linux-image package, for PVH direct boot) and the initrd (katana-agent as /init plus the
// kernel modules the guest needs), at the paths the default configuration expects.
#pragma once

#include <string_view>
#include <vector>

#include <katana/core/error.hpp>

namespace katana_ctl {

extern const std::string_view image_usage;

/// `katana-ctl image build [--agent PATH] [--output-dir DIR] [--cache-dir DIR]`; args excludes
/// "image".
katana::status image_command(std::vector<std::string_view> args);

}  // namespace katana_ctl
