// Host facts for config::adjust and the QEMU command line: CPUs, RAM, the architecture's
// limits from the generated arch tables, and the TSC frequency (for tsc_early_khz under TCG).
#pragma once

#include <cmath>
#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>

#include <katana/arch/arch.hpp>
#include <katana/config/validate.hpp>

namespace katana::inline v0::hypervisor {

/// The config-side view of an architecture table.
inline config::arch_limits limits_of(const arch::description& d) {
  config::arch_limits l;
  l.max_vcpus = d.max_vcpus;
  l.memory_block_mib = d.memory_block_mib;
  l.default_machine_type = std::string(d.default_machine);
  for (const auto& m : d.machines) {
    l.machine_types.emplace_back(m.type);
    l.supports_iommu = l.supports_iommu || m.iommu;
  }
  return l;
}

/// This host: online CPUs, RAM, uname's machine and that architecture's limits.
inline config::host_info detect_host() {
  auto h = config::probe_host_resources();
  const auto* d = arch::find(h.arch);
  if (d == nullptr) {
    d = &arch::describe(arch::host_id);
    h.arch = std::string(d->name);
  }
  h.limits = limits_of(*d);
  return h;
}

/// The TSC frequency in kHz from /proc/cpuinfo text ("cpu MHz : 2596.138" -> 2596138); 0 if
/// there is none. Under TCG the guest's rdtsc is the host's TSC.
inline std::uint32_t tsc_khz_from_cpuinfo(std::string_view cpuinfo) {
  std::istringstream in{std::string(cpuinfo)};
  std::string line;
  while (std::getline(in, line)) {
    if (!line.starts_with("cpu MHz")) {
      continue;
    }
    const auto colon = line.find(':');
    if (colon == std::string::npos) {
      continue;
    }
    std::istringstream value(line.substr(colon + 1));
    double mhz = 0;
    if (value >> mhz && mhz > 0 && mhz < 1e6) {
      return static_cast<std::uint32_t>(std::llround(mhz * 1000.0));
    }
  }
  return 0;
}

/// The host's TSC frequency in kHz, 0 when unknown.
inline std::uint32_t host_tsc_khz() {
  std::ifstream f("/proc/cpuinfo");
  std::stringstream text;
  text << f.rdbuf();
  return tsc_khz_from_cpuinfo(text.str());
}

}  // namespace katana::inline v0::hypervisor
