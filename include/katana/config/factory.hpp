// [factory] of a Kata-compatible configuration.toml (VM templating and the VM cache).
#pragma once

#include <cstdint>
#include <string>

#include <katana/config/schema.hpp>

namespace katana::inline v0::config {

struct factory_config {
  bool enable_template = false;  // requires an initrd (not an image)
  std::string template_path = "/run/vc/vm/template";
  std::uint32_t vm_cache_number = 0;
  std::string vm_cache_endpoint = "/var/run/kata-containers/cache.sock";

  friend bool operator==(const factory_config&, const factory_config&) = default;
};

// clang-format off
inline constexpr field<factory_config> factory_fields[] = {
  {.key = "enable_template", .target = &factory_config::enable_template},
  {.key = "template_path", .target = &factory_config::template_path, .flags = absolute_path},
  {.key = "vm_cache_number", .target = &factory_config::vm_cache_number},
  {.key = "vm_cache_endpoint", .target = &factory_config::vm_cache_endpoint, .flags = absolute_path},
};
// clang-format on

}  // namespace katana::inline v0::config
