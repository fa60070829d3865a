// Host facts for config::adjust and the QEMU command line: CPUs, RAM, the architecture's
// limits from the generated arch tables, and the TSC frequency (for tsc_early_khz under TCG).
#pragma once

#include <chrono>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <time.h>
#include <unistd.h>
#if defined(__x86_64__)
#include <x86intrin.h>
#endif

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

/// Whether /proc/cpuinfo's "cpu MHz" can stand for the TSC rate: not where the kernel reports
/// a measured or scaled clock there (APERF/MPERF sampling, a cpufreq driver), as on most bare
/// metal, and only with a TSC that ticks at a constant rate.
inline bool cpuinfo_mhz_is_tsc(std::string_view cpuinfo, bool has_cpufreq) {
  const auto flags_at = cpuinfo.find("\nflags");
  if (flags_at == std::string_view::npos) {
    return false;
  }
  auto flags = cpuinfo.substr(flags_at + 1);
  flags = flags.substr(0, flags.find('\n'));
  const auto has = [&](std::string_view f) {
    for (std::size_t at = flags.find(f); at != std::string_view::npos; at = flags.find(f, at + 1)) {
      const bool starts = at == 0 || flags[at - 1] == ' ' || flags[at - 1] == '\t';
      const bool ends = at + f.size() == flags.size() || flags[at + f.size()] == ' ';
      if (starts && ends) {
        return true;
      }
    }
    return false;
  };
  return has("constant_tsc") && !has("aperfmperf") && !has_cpufreq;
}

/// The TSC rate in kHz measured against CLOCK_MONOTONIC_RAW over about `span`; 0 where there
/// is no TSC to read (not x86_64) or the readings kept being interrupted.
inline std::uint32_t measure_tsc_khz(
    std::chrono::microseconds span = std::chrono::microseconds(2000)) {
#if defined(__x86_64__)
  struct sample {
    std::uint64_t tsc;
    std::int64_t ns;
  };
  // The clock between two TSC reads; a sample whose reads are far apart was interrupted.
  const auto take = [](sample& out) {
    for (int i = 0; i < 8; ++i) {
      timespec ts{};
      const std::uint64_t a = __rdtsc();
      ::clock_gettime(CLOCK_MONOTONIC_RAW, &ts);
      const std::uint64_t b = __rdtsc();
      if (b - a < 20000) {
        out = {a + (b - a) / 2, std::int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec};
        return true;
      }
    }
    return false;
  };
  sample x{}, y{};
  if (!take(x)) {
    return 0;
  }
  std::this_thread::sleep_for(span);
  if (!take(y) || y.ns <= x.ns) {
    return 0;
  }
  return static_cast<std::uint32_t>(
      std::llround(static_cast<double>(y.tsc - x.tsc) * 1e6 / static_cast<double>(y.ns - x.ns)));
#else
  (void)span;
  return 0;
#endif
}

/// The TSC rate measured once per host boot: kept in `cache` (on /run, a tmpfs) so that every
/// launch passes the same tsc_early_khz, and a VM template's fingerprint stays the same.
inline std::uint32_t measured_tsc_khz_cached(
    const std::filesystem::path& cache = "/run/katana/tsc_khz") {
  {
    std::ifstream in(cache);
    std::uint32_t khz = 0;
    if (in >> khz && khz > 0) {
      return khz;
    }
  }
  const auto khz = measure_tsc_khz();
  if (khz != 0) {
    std::error_code ec;
    std::filesystem::create_directories(cache.parent_path(), ec);
    const auto part = cache.native() + ".part." + std::to_string(::getpid());
    if (std::ofstream(part) << khz << "\n") {
      std::filesystem::rename(part, cache, ec);
    }
    std::filesystem::remove(part, ec);
  }
  return khz;
}

/// The host's TSC frequency in kHz, 0 when unknown: /proc/cpuinfo's "cpu MHz" where that is
/// the TSC's rate (most VMs), else measured (2 ms, once per host boot).
inline std::uint32_t host_tsc_khz() {
  std::ifstream f("/proc/cpuinfo");
  std::stringstream text;
  text << f.rdbuf();
  const std::string cpuinfo = text.str();
  std::error_code ec;
  const bool cpufreq = std::filesystem::exists("/sys/devices/system/cpu/cpu0/cpufreq", ec);
  if (cpuinfo_mhz_is_tsc(cpuinfo, cpufreq)) {
    if (const auto khz = tsc_khz_from_cpuinfo(cpuinfo); khz != 0) {
      return khz;
    }
  }
  return measured_tsc_khz_cached();
}

}  // namespace katana::inline v0::hypervisor
