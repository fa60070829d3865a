// katana-agent's configuration from the kernel command line (PROTOCOLS.md §3.5, Kata's
// src/agent/src/config.rs): `agent.<key>[=<value>]` words. Kata's keys: log, server_addr,
// debug_console, debug_console_vport, log_vport, hotplug_timeout, container_pipe_size,
// devmode, trace. katana's: modules (comma-separated kernel modules to load at boot; without
// it PID 1 loads every module of modules.dep, which in katana's initrd is just what it needs),
// channel (auto | virtio-serial | vsock, when server_addr is not given) and log_format.
// Unknown agent.* keys are kept (and logged) so newer runtimes do not break older agents.
#pragma once

#include <charconv>
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <katana/config.hpp>
#include <katana/core/error.hpp>
#include <katana/core/log.hpp>
#include <katana/core/str_cat.hpp>
#include <katana/core/try.hpp>

namespace katana::inline v0::agent {

struct agent_config {
  std::string log_level = "info";
  std::string log_format = "json";
  /// Where to serve: "vsock://-1:1024", "unix:///run/a.sock", "serial://agent.channel.0"
  /// (a virtio-serial port by name) or "serial:///dev/vport1p1". Empty: from `channel`.
  std::string server_addr;
  /// "auto": the virtio-serial port agent.channel.0 if it appears, else vsock port 1024.
  std::string channel = "auto";
  bool debug_console = false;
  std::uint32_t debug_console_vport = 0;
  std::uint32_t log_vport = 0;
  std::chrono::seconds hotplug_timeout{3};
  std::uint32_t container_pipe_size = 0;
  bool devmode = false;
  bool trace = false;
  /// Kernel modules to load at boot, in order (with their dependencies). Without
  /// agent.modules, PID 1 loads every module of the initrd's modules.dep.
  std::vector<std::string> modules;
  bool modules_given = false;
  /// agent.* words this agent does not know (key=value as given).
  std::vector<std::string> unknown;
};

inline constexpr std::string_view default_vsock_address = "vsock://-1:1024";
inline constexpr std::string_view virtio_serial_port_name = "agent.channel.0";

namespace detail {
inline result<std::uint32_t> parse_u32(std::string_view key, std::string_view v) {
  std::uint32_t n = 0;
  const auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  if (ec != std::errc() || p != v.data() + v.size() || v.empty()) {
    return fail(errc::invalid_config, str_cat("agent.", key, "=\"", v, "\" is not a number"));
  }
  return n;
}

inline result<bool> parse_bool(std::string_view key, std::string_view v, bool has_value) {
  if (!has_value || v == "1" || v == "true" || v == "on" || v == "yes") {
    return true;
  }
  if (v == "0" || v == "false" || v == "off" || v == "no") {
    return false;
  }
  return fail(errc::invalid_config, str_cat("agent.", key, "=\"", v, "\" is not a boolean"));
}

/// Splits a kernel command line into words, honouring double quotes (param="a b").
inline std::vector<std::string> cmdline_words(std::string_view cmdline) {
  std::vector<std::string> out;
  std::string cur;
  bool quoted = false;
  bool any = false;
  for (const char c : cmdline) {
    if (c == '"') {
      quoted = !quoted;
      any = true;
      continue;
    }
    if (!quoted && (c == ' ' || c == '\t' || c == '\n')) {
      if (any) {
        out.push_back(std::move(cur));
        cur.clear();
        any = false;
      }
      continue;
    }
    cur += c;
    any = true;
  }
  if (any) {
    out.push_back(std::move(cur));
  }
  return out;
}
}  // namespace detail

/// Applies one "agent.key[=value]" setting (the "agent." prefix already removed).
inline status apply_agent_param(agent_config& cfg,
                                std::string_view key,
                                std::string_view value,
                                bool has_value) {
  if (key == "log" || key == "log_level") {
    KATANA_TRY(logging::parse_level(value), "agent.log");
    cfg.log_level = std::string(value);
  } else if (key == "log_format") {
    if (value != "json" && value != "text") {
      return fail(errc::invalid_config,
                  str_cat("agent.log_format=\"", value, "\" is neither json nor text"));
    }
    cfg.log_format = std::string(value);
  } else if (key == "server_addr") {
    cfg.server_addr = std::string(value);
  } else if (key == "channel") {
    if (value != "auto" && value != "virtio-serial" && value != "vsock") {
      return fail(errc::invalid_config,
                  str_cat("agent.channel=\"", value, "\" is not auto, virtio-serial or vsock"));
    }
    cfg.channel = std::string(value);
  } else if (key == "debug_console") {
    cfg.debug_console = KATANA_TRY(detail::parse_bool(key, value, has_value));
  } else if (key == "debug_console_vport") {
    cfg.debug_console_vport = KATANA_TRY(detail::parse_u32(key, value));
  } else if (key == "log_vport") {
    cfg.log_vport = KATANA_TRY(detail::parse_u32(key, value));
  } else if (key == "hotplug_timeout") {
    cfg.hotplug_timeout = std::chrono::seconds(KATANA_TRY(detail::parse_u32(key, value)));
  } else if (key == "container_pipe_size") {
    cfg.container_pipe_size = KATANA_TRY(detail::parse_u32(key, value));
  } else if (key == "devmode") {
    cfg.devmode = KATANA_TRY(detail::parse_bool(key, value, has_value));
    if (cfg.devmode) {
      cfg.log_level = "debug";
    }
  } else if (key == "trace") {
    cfg.trace = KATANA_TRY(detail::parse_bool(key, value, has_value));
  } else if (key == "modules") {
    cfg.modules_given = true;
    std::string_view rest = value;
    while (!rest.empty()) {
      const auto comma = rest.find(',');
      const auto name = rest.substr(0, comma);
      rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
      if (name.empty()) {
        continue;
      }
      if (name.find('/') != std::string_view::npos || name.size() > 64) {
        return fail(errc::invalid_config,
                    str_cat("agent.modules: \"", name, "\" is not a module name"));
      }
      cfg.modules.emplace_back(name);
    }
  } else {
    cfg.unknown.push_back(has_value ? str_cat(key, "=", value) : std::string(key));
  }
  return {};
}

/// Reads every agent.* word of a kernel command line into `cfg` (later words win, as in Kata).
inline status parse_kernel_cmdline(std::string_view cmdline, agent_config& cfg) {
  for (const auto& word : detail::cmdline_words(cmdline)) {
    constexpr std::string_view prefix = "agent.";
    if (word.size() <= prefix.size() || word.compare(0, prefix.size(), prefix) != 0) {
      continue;
    }
    const std::string_view kv = std::string_view(word).substr(prefix.size());
    const auto eq = kv.find('=');
    const bool has_value = eq != std::string_view::npos;
    KATANA_TRY(apply_agent_param(cfg, kv.substr(0, eq),
                                 has_value ? kv.substr(eq + 1) : std::string_view{}, has_value));
  }
  return {};
}

}  // namespace katana::inline v0::agent
