// katana-ctl check: the configuration's hypervisor table, the host facts behind it
// (hypervisor/host_check.hpp) and the cgroup mode, as one summary line plus what is wrong
// (default), every check (--verbose) or JSON (--json).
#include "check_cmd.hpp"

#include <cstdio>
#include <string>

#include <nlohmann/json.hpp>

#include <katana/cgroup/mountinfo.hpp>
#include <katana/config/load.hpp>
#include <katana/config/validate.hpp>
#include <katana/core/str_cat.hpp>
#include <katana/hypervisor/host.hpp>
#include <katana/hypervisor/host_check.hpp>

namespace katana_ctl {

const std::string_view check_usage = R"(
  check [--verbose] [--json] [--config F]
                                        can this host run a sandbox VM? (KVM or TCG, QEMU,
                                        kernel and initrd, virtiofsd, vsock, cgroups, root);
                                        exit 0 when it can
)";

namespace {

namespace hv = katana::hypervisor;
using katana::errc;
using katana::fail;
using katana::str_cat;

void print_check(const hv::host_check& c) {
  std::printf("  %-8s %-14s %s\n", std::string(to_string(c.status)).c_str(), c.name.c_str(),
              c.detail.c_str());
}

}  // namespace

katana::result<int> check_command(std::vector<std::string_view> args) {
  bool verbose = false, json = false;
  std::string config_file;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const auto a = args[i];
    if (a == "--verbose" || a == "-v") {
      verbose = true;
    } else if (a == "--json") {
      json = true;
    } else if (a == "--config" && i + 1 < args.size()) {
      config_file = std::string(args[++i]);
    } else if (a.starts_with("--config=")) {
      config_file = std::string(a.substr(9));
    } else {
      return fail(errc::invalid_argument, str_cat("check: unexpected argument \"", a, "\""));
    }
  }

  // The configuration: its problems are a failed check, not an early exit, so the rest of the
  // report still shows. Without a usable hypervisor table the defaults stand in.
  katana::config::load_options lo;
  if (!config_file.empty()) {
    lo.path = config_file;
  }
  katana::config::hypervisor_config table;
  std::string source, config_error;
  bool assets_known = true;
  katana::config::warnings config_notes;
  if (auto loaded = katana::config::load(lo); !loaded) {
    config_error = loaded.error().message();
    assets_known = false;
  } else {
    auto cfg = std::move(loaded->config);
    config_notes = std::move(loaded->notes);
    for (const auto& s : loaded->sources) {
      source += source.empty() ? s : ", " + s;
    }
    const auto host = hv::detect_host();
    if (const auto* h = cfg.hypervisor(); h == nullptr) {
      config_error = cfg.selected_hypervisor().error().message();
      assets_known = false;
    } else if (const auto kind = *cfg.selected_hypervisor(); kind != "qemu") {
      config_error = "[hypervisor." + kind + "] is selected; katana runs VMs with QEMU only";
      table = *h;
    } else if (auto adjusted = katana::config::adjust(cfg, host, config_notes); !adjusted) {
      config_error = adjusted.error().message();
      table = *cfg.hypervisor();
    } else if (auto valid = katana::config::validate(cfg, host); !valid) {
      config_error = valid.error().message();
      table = *cfg.hypervisor();
    } else {
      table = *cfg.hypervisor();
    }
  }

  auto facts = hv::gather_host_facts(table);
  facts.config_source = source;
  facts.config_error = config_error;
  facts.assets_known = assets_known;
  facts.config_notes = std::move(config_notes);
  if (auto layout = katana::cgroup::probe_host(); layout) {
    facts.cgroup_mode = std::string(to_string(layout->mode));
  }
  const auto report = hv::evaluate_host(facts);

  if (json) {
    auto checks = nlohmann::json::array();
    for (const auto& c : report.checks) {
      checks.push_back(
          {{"name", c.name}, {"status", std::string(to_string(c.status))}, {"detail", c.detail}});
    }
    const nlohmann::json out = {{"runnable", report.runnable},
                                {"accelerator", report.accelerator},
                                {"summary", report.summary},
                                {"checks", std::move(checks)}};
    std::printf("%s\n", out.dump(2).c_str());
    return report.runnable ? 0 : 1;
  }
  std::printf("%s\n", report.summary.c_str());
  for (const auto& c : report.checks) {
    const bool problem =
        c.status == hv::check_status::fail || c.status == hv::check_status::warning;
    if (verbose || problem) {
      print_check(c);
    }
  }
  return report.runnable ? 0 : 1;
}

}  // namespace katana_ctl
