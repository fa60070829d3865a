// The device rules every container's cgroup gets after the spec's own (runc's
// specconv.AllowedDevices, Kata rustjail's DEFAULT_ALLOWED_DEVICES), shared by katana-runk and
// the agent.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <katana/config.hpp>
#include <katana/oci/spec.hpp>

namespace katana::inline v0::cgroup {

/// Appends the default allow rules plus one for each linux.devices entry, so that a "deny
/// all" spec still gets working /dev/null, /dev/pts and mknod of its own devices.
inline void add_default_device_rules(oci::linux_resources& r,
                                     const std::vector<oci::linux_device>& devices) {
  const auto add = [&](std::string type, std::optional<std::int64_t> major,
                       std::optional<std::int64_t> minor, std::string access) {
    r.devices.push_back({true, std::move(type), major, minor, std::move(access)});
  };
  for (const auto& d : devices) {
    add(d.type == "u" ? "c" : d.type, d.major, d.minor, "rwm");
  }
  add("c", std::nullopt, std::nullopt, "m");
  add("b", std::nullopt, std::nullopt, "m");
  add("c", 1, 3, "rwm");               // null
  add("c", 1, 8, "rwm");               // random
  add("c", 1, 7, "rwm");               // full
  add("c", 5, 0, "rwm");               // tty
  add("c", 1, 5, "rwm");               // zero
  add("c", 1, 9, "rwm");               // urandom
  add("c", 136, std::nullopt, "rwm");  // pts
  add("c", 5, 2, "rwm");               // ptmx
  add("c", 10, 200, "rwm");            // tun
}

}  // namespace katana::inline v0::cgroup
