// The OCI runtime state document (`runtime state <id>` output, the hooks' stdin).
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>

#include <katana/config.hpp>

namespace katana::inline v0::oci {

enum class container_status { creating, created, running, stopped };

constexpr std::string_view to_string(container_status s) {
  switch (s) {
    case container_status::creating:
      return "creating";
    case container_status::created:
      return "created";
    case container_status::running:
      return "running";
    case container_status::stopped:
      return "stopped";
  }
  return "unknown";
}

constexpr std::optional<container_status> parse_container_status(std::string_view s) {
  for (auto v : {container_status::creating, container_status::created, container_status::running,
                 container_status::stopped}) {
    if (to_string(v) == s) {
      return v;
    }
  }
  return std::nullopt;
}

struct state {
  std::string oci_version;
  std::string id;
  container_status status = container_status::creating;
  int pid = 0;  // required while created or running; omitted from JSON when 0
  std::string bundle;
  std::map<std::string, std::string> annotations;
  bool operator==(const state&) const = default;
};

}  // namespace katana::inline v0::oci
