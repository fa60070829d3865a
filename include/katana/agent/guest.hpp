// Guest-wide RPCs that do not touch containers: GetGuestDetails (memory block size),
// OnlineCPUMem, SetGuestDateTime, GetMetrics (Prometheus text), and the guest hooks
// CreateSandbox's guest_hook_path names.
#pragma once

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <linux/random.h>
#include <sstream>
#include <string>
#include <string_view>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <system_error>
#include <unistd.h>
#include <vector>

#include <katana/config.hpp>
#include <katana/core/error.hpp>
#include <katana/core/str_cat.hpp>
#include <katana/core/try.hpp>
#include <katana/core/unique_fd.hpp>
#include <katana/oci/spec.hpp>

namespace katana::inline v0::agent {

namespace detail {
inline result<std::string> read_small_file(const std::filesystem::path& p) {
  unique_fd fd(::open(p.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) {
    return fail_errno("open " + p.string());
  }
  std::string out;
  char buf[4096];
  for (;;) {
    const ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0) {
      return fail_errno("read " + p.string());
    }
    if (n == 0 || out.size() > (1U << 20)) {
      return out;
    }
    out.append(buf, static_cast<std::size_t>(n));
  }
}

inline status write_small_file(const std::filesystem::path& p, std::string_view text) {
  unique_fd fd(::open(p.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd) {
    return fail_errno("open " + p.string());
  }
  if (::write(fd.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size())) {
    return fail_errno("write " + p.string());
  }
  return {};
}

inline std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\t')) {
    s.remove_suffix(1);
  }
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
    s.remove_prefix(1);
  }
  return s;
}
}  // namespace detail

/// /sys/devices/system/memory/block_size_bytes (hex, no 0x), or 0 when the guest has none.
inline result<std::uint64_t> memory_block_size(const std::filesystem::path& sys_root = "/sys") {
  const auto p = sys_root / "devices" / "system" / "memory" / "block_size_bytes";
  std::error_code ec;
  if (!std::filesystem::exists(p, ec)) {
    return std::uint64_t{0};
  }
  const auto text = KATANA_TRY(detail::read_small_file(p));
  const auto t = detail::trim(text);
  std::uint64_t v = 0;
  const auto [end, err] = std::from_chars(t.data(), t.data() + t.size(), v, 16);
  if (err != std::errc() || end != t.data() + t.size()) {
    return fail(errc::parse_error, str_cat(p.string(), ": \"", t, "\" is not a hex number"));
  }
  return v;
}

/// Whether /sys/devices/system/memory/probe exists (memory hot-plug by probe).
inline bool memory_hotplug_probe(const std::filesystem::path& sys_root = "/sys") {
  std::error_code ec;
  return std::filesystem::exists(sys_root / "devices" / "system" / "memory" / "probe", ec);
}

/// Onlines offline CPUs (at most `nb_cpus`, 0 = all) and, unless `cpu_only`, offline memory
/// blocks. Returns how many CPUs it onlined.
inline result<std::uint32_t> online_cpu_mem(const std::filesystem::path& sys_root,
                                            std::uint32_t nb_cpus,
                                            bool cpu_only) {
  std::uint32_t onlined = 0;
  std::error_code ec;
  const auto cpus = sys_root / "devices" / "system" / "cpu";
  std::vector<std::filesystem::path> cpu_dirs;
  for (std::filesystem::directory_iterator it(cpus, ec), end; !ec && it != end; it.increment(ec)) {
    const auto name = it->path().filename().string();
    if (name.size() > 3 && name.rfind("cpu", 0) == 0 &&
        std::all_of(name.begin() + 3, name.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      cpu_dirs.push_back(it->path());
    }
  }
  std::sort(cpu_dirs.begin(), cpu_dirs.end());
  for (const auto& dir : cpu_dirs) {
    if (nb_cpus != 0 && onlined >= nb_cpus) {
      break;
    }
    const auto online = dir / "online";
    if (!std::filesystem::exists(online, ec)) {
      continue;  // cpu0 often cannot go offline and has no file
    }
    const auto state = KATANA_TRY(detail::read_small_file(online));
    if (detail::trim(state) == "0") {
      KATANA_TRY(detail::write_small_file(online, "1"), "online " + dir.filename().string());
      ++onlined;
    }
  }
  if (!cpu_only) {
    const auto mem = sys_root / "devices" / "system" / "memory";
    for (std::filesystem::directory_iterator it(mem, ec), end; !ec && it != end; it.increment(ec)) {
      const auto state = it->path() / "state";
      if (it->path().filename().string().rfind("memory", 0) != 0 ||
          !std::filesystem::exists(state)) {
        continue;
      }
      const auto s = KATANA_TRY(detail::read_small_file(state));
      if (detail::trim(s) == "offline") {
        KATANA_TRY(detail::write_small_file(state, "online"),
                   "online " + it->path().filename().string());
      }
    }
  }
  return onlined;
}

/// ReseedRandomDev: writes `data` into the pool behind `random` (/dev/random) and asks the
/// kernel to reseed its CRNG (RNDRESEEDCRNG), as Kata's agent does.
inline status reseed_random(const std::filesystem::path& random, std::string_view data) {
  if (data.empty()) {
    return fail(errc::invalid_argument, "ReseedRandomDev: no data");
  }
  unique_fd fd(::open(random.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd) {
    return fail_errno("open " + random.string());
  }
  if (::write(fd.get(), data.data(), data.size()) != static_cast<ssize_t>(data.size())) {
    return fail_errno("write " + random.string());
  }
  (void)::ioctl(fd.get(), RNDRESEEDCRNG);  // not a character device in tests; no harm
  return {};
}

/// settimeofday(2).
inline status set_date_time(std::int64_t sec, std::int64_t usec) {
  if (usec < 0 || usec >= 1000000) {
    return fail(errc::invalid_argument, str_cat("Usec ", usec, " is not in [0, 1000000)"));
  }
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(sec);
  tv.tv_usec = static_cast<suseconds_t>(usec);
  if (::settimeofday(&tv, nullptr) != 0) {
    return fail_errno("settimeofday");
  }
  return {};
}

/// Kata's guest hooks: every executable file in <dir>/prestart, <dir>/poststart and
/// <dir>/poststop (sorted by name) is appended to the spec's hooks of that kind, with the
/// hook's own name as argv[0].
inline void append_guest_hooks(oci::spec& spec, const std::filesystem::path& dir) {
  if (dir.empty()) {
    return;
  }
  const auto scan = [&](std::string_view kind) {
    std::vector<oci::hook> out;
    std::error_code ec;
    std::vector<std::filesystem::path> files;
    for (std::filesystem::directory_iterator it(dir / kind, ec), end; !ec && it != end;
         it.increment(ec)) {
      struct stat st {};
      if (::stat(it->path().c_str(), &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 0111)) {
        files.push_back(it->path());
      }
    }
    std::sort(files.begin(), files.end());
    for (const auto& f : files) {
      out.push_back({f.string(), {f.filename().string()}, {}, std::nullopt});
    }
    return out;
  };
  auto prestart = scan("prestart");
  auto poststart = scan("poststart");
  auto poststop = scan("poststop");
  if (prestart.empty() && poststart.empty() && poststop.empty()) {
    return;
  }
  if (!spec.hooks) {
    spec.hooks.emplace();
  }
  spec.hooks->prestart.insert(spec.hooks->prestart.end(), prestart.begin(), prestart.end());
  spec.hooks->poststart.insert(spec.hooks->poststart.end(), poststart.begin(), poststart.end());
  spec.hooks->poststop.insert(spec.hooks->poststop.end(), poststop.begin(), poststop.end());
}

/// Numbers for GetMetrics.
struct agent_metrics {
  std::size_t containers = 0;
  std::size_t processes = 0;
  std::uint64_t oom_events = 0;
  std::uint64_t rpc_calls = 0;
};

/// GetMetrics: the agent's own process (from /proc/self), the guest's memory and load, and the
/// agent's counters, in Prometheus text exposition format.
inline std::string prometheus_metrics(const agent_metrics& m,
                                      const std::filesystem::path& proc = "/proc") {
  std::string out;
  const auto gauge = [&](std::string_view name, std::string_view help, std::string_view labels,
                         std::string_view value, std::string_view type = "gauge") {
    if (out.find(str_cat("# TYPE ", name, " ")) == std::string::npos) {
      out += str_cat("# HELP ", name, " ", help, "\n# TYPE ", name, " ", type, "\n");
    }
    out += str_cat(name, labels, " ", value, "\n");
  };
  if (auto status = detail::read_small_file(proc / "self" / "status")) {
    std::istringstream in(*status);
    std::string line;
    while (std::getline(in, line)) {
      for (const auto& [key, metric] : {std::pair<std::string_view, std::string_view>{
                                            "VmRSS:", "kata_agent_process_resident_memory_bytes"},
                                        {"VmSize:", "kata_agent_process_virtual_memory_bytes"}}) {
        if (line.rfind(key, 0) == 0) {
          const auto v = detail::trim(std::string_view(line).substr(key.size()));
          std::uint64_t kb = 0;
          std::from_chars(v.data(), v.data() + v.size(), kb);
          gauge(metric, "Agent process memory in bytes.", "", str_cat(kb * 1024));
        }
      }
      for (const auto& [key, kind] :
           {std::pair<std::string_view, std::string_view>{"RssAnon:", "anon"},
            {"RssFile:", "file"},
            {"RssShmem:", "shmem"},
            {"VmHWM:", "peak"}}) {
        if (line.rfind(key, 0) == 0) {
          const auto v = detail::trim(std::string_view(line).substr(key.size()));
          std::uint64_t kb = 0;
          std::from_chars(v.data(), v.data() + v.size(), kb);
          gauge("katana_agent_process_memory_bytes",
                "Agent process resident memory by kind (anon, file, shmem; peak is VmHWM).",
                str_cat("{kind=\"", kind, "\"}"), str_cat(kb * 1024));
        }
      }
      if (line.rfind("Threads:", 0) == 0) {
        gauge("kata_agent_process_threads", "Agent process threads.", "",
              detail::trim(std::string_view(line).substr(8)));
      }
    }
  }
  std::error_code ec;
  std::size_t fds = 0;
  for (std::filesystem::directory_iterator it(proc / "self" / "fd", ec), end; !ec && it != end;
       it.increment(ec)) {
    ++fds;
  }
  gauge("kata_agent_process_open_fds", "Agent process open file descriptors.", "", str_cat(fds));
  if (auto meminfo = detail::read_small_file(proc / "meminfo")) {
    std::istringstream in(*meminfo);
    std::string line;
    while (std::getline(in, line)) {
      const auto colon = line.find(':');
      if (colon == std::string::npos) {
        continue;
      }
      const auto key = line.substr(0, colon);
      if (key != "MemTotal" && key != "MemFree" && key != "MemAvailable" && key != "Cached" &&
          key != "SwapTotal" && key != "SwapFree") {
        continue;
      }
      const auto v = detail::trim(std::string_view(line).substr(colon + 1));
      std::uint64_t kb = 0;
      std::from_chars(v.data(), v.data() + v.size(), kb);
      gauge("kata_guest_meminfo", "Guest /proc/meminfo, in bytes.", str_cat("{item=\"", key, "\"}"),
            str_cat(kb * 1024));
    }
  }
  if (auto load = detail::read_small_file(proc / "loadavg")) {
    std::istringstream in(*load);
    std::string l1, l5, l15;
    in >> l1 >> l5 >> l15;
    gauge("kata_guest_load", "Guest load average.", "{item=\"load1\"}", l1);
    gauge("kata_guest_load", "Guest load average.", "{item=\"load5\"}", l5);
    gauge("kata_guest_load", "Guest load average.", "{item=\"load15\"}", l15);
  }
  gauge("katana_agent_containers", "Containers the agent manages.", "", str_cat(m.containers));
  gauge("katana_agent_processes", "Container processes the agent tracks.", "",
        str_cat(m.processes));
  gauge("katana_agent_oom_events_total", "OOM kills reported in containers.", "",
        str_cat(m.oom_events), "counter");
  gauge("katana_agent_rpc_calls_total", "Agent RPCs served.", "", str_cat(m.rpc_calls), "counter");
  return out;
}

}  // namespace katana::inline v0::agent
