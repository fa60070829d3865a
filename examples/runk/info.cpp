// katana-runk: state, list, ps, pause, resume, events, update, features, spec.
#include <algorithm>
#include <cstdio>
#include <iterator>
#include <set>
#include <string>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

#include <nlohmann/json.hpp>

#include <katana/container/state_json.hpp>
#include <katana/oci/default_spec.hpp>
#include <katana/oci/detail/codec_json.hpp>
#include <katana/oci/names.hpp>
#include <katana/oci/spec_json.hpp>

#include "runk.hpp"

namespace runk {

namespace {

using ojson = nlohmann::ordered_json;

void print(const std::string& text) {
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fputc('\n', stdout);
}

/// The owner of a uid from /etc/passwd, else "#<uid>" (runk; no NSS in a static binary).
std::string owner_name(uid_t uid) {
  const auto text = katana::oci::detail::read_small_file("/etc/passwd", 16 << 20);
  std::string_view rest = text ? std::string_view(*text) : std::string_view{};
  while (!rest.empty()) {
    const std::string_view line = rest.substr(0, rest.find('\n'));
    rest.remove_prefix(std::min(rest.size(), line.size() + 1));
    const auto c1 = line.find(':');
    const auto c2 = line.find(':', c1 + 1);
    const auto c3 = line.find(':', c2 + 1);
    if (c1 == std::string::npos || c2 == std::string::npos || c3 == std::string::npos) {
      continue;
    }
    if (line.substr(c2 + 1, c3 - c2 - 1) == std::to_string(uid)) {
      return std::string(line.substr(0, c1));
    }
  }
  return "#" + std::to_string(uid);
}

ojson state_json(const globals& g, const loaded_container& l) {
  const auto st = l.status();
  const auto& s = l.c.state();
  ojson j;
  j["ociVersion"] = s.oci_version;
  j["id"] = s.id;
  j["pid"] = st == kc::runtime_status::stopped ? 0 : s.pid;
  j["status"] = std::string(kc::to_string(st));
  j["bundle"] = s.bundle;
  j["rootfs"] = s.rootfs;
  j["created"] = s.created;
  struct stat sb {};
  const uid_t uid = ::stat((g.root / s.id).c_str(), &sb) == 0 ? sb.st_uid : 0;
  j["owner"] = owner_name(uid);
  if (!s.annotations.empty()) {
    j["annotations"] = s.annotations;
  }
  return j;
}

katana::result<loaded_container> load(const globals& g,
                                      std::string_view cmd,
                                      args_t args,
                                      std::span<const flag> flags,
                                      parsed_args* out = nullptr) {
  auto a = KATANA_TRY(parse_args(args, flags, out != nullptr ? 1 : 0));
  if (a.positional.empty()) {
    return fail(errc::invalid_argument,
                katana::str_cat("\"", cmd, "\" requires exactly 1 argument(s): the container id"));
  }
  if (out == nullptr && a.positional.size() != 1) {
    return fail(errc::invalid_argument,
                katana::str_cat("\"", cmd, "\" requires exactly 1 argument(s): the container id"));
  }
  const std::string id = a.positional[0];
  if (out != nullptr) {
    *out = std::move(a);
  }
  return load_container(g, id, katana::str_cat("container \"", id, "\" does not exist"));
}

ojson stats_json(const cg::stats& s) {
  const auto limit = [](std::uint64_t v) -> ojson {
    return v == cg::unlimited ? ojson(0) : ojson(v);
  };
  ojson cpu;
  cpu["usage"] = {{"total", s.cpu.usage.total_ns},
                  {"percpu", s.cpu.usage.per_cpu_ns},
                  {"kernel", s.cpu.usage.system_ns},
                  {"user", s.cpu.usage.user_ns}};
  cpu["throttling"] = {{"periods", s.cpu.throttling.periods},
                       {"throttledPeriods", s.cpu.throttling.throttled_periods},
                       {"throttledTime", s.cpu.throttling.throttled_time_ns}};
  ojson mem;
  mem["cache"] = s.memory.cache;
  mem["usage"] = {{"limit", limit(s.memory.limit)},
                  {"usage", s.memory.usage},
                  {"max", s.memory.max_usage},
                  {"failcnt", s.memory.failcnt}};
  mem["swap"] = {{"limit", limit(s.memory.swap_limit)}, {"usage", s.memory.swap_usage}};
  mem["raw"] = ojson::object();
  for (const auto& [k, v] : s.memory.stat) {
    mem["raw"][k] = v;
  }
  ojson blkio = ojson::object();
  const auto entries = [](const std::vector<cg::blkio_entry>& v) {
    ojson a = ojson::array();
    for (const auto& e : v) {
      a.push_back({{"major", e.major}, {"minor", e.minor}, {"op", e.op}, {"value", e.value}});
    }
    return a;
  };
  blkio["ioServiceBytesRecursive"] = entries(s.blkio.io_service_bytes);
  blkio["ioServicedRecursive"] = entries(s.blkio.io_serviced);
  ojson huge = ojson::object();
  for (const auto& [size, h] : s.hugetlb) {
    huge[size] = {{"usage", h.usage}, {"max", h.max_usage}, {"failcnt", h.failcnt}};
  }
  ojson d;
  d["cpu"] = cpu;
  d["memory"] = mem;
  d["pids"] = {{"current", s.pids.current}, {"limit", limit(s.pids.limit)}};
  d["blkio"] = blkio;
  d["hugetlb"] = huge;
  return d;
}

}  // namespace

katana::result<int> cmd_state(const globals& g, args_t args) {
  const auto l = KATANA_TRY(load(g, "state", args, {}));
  print(state_json(g, l).dump(2));
  return 0;
}

katana::result<int> cmd_list(const globals& g, args_t args) {
  constexpr flag flags[] = {{"quiet", 'q', false}, {"format", 'f', true}};
  const auto a = KATANA_TRY(parse_args(args, flags));
  const std::string format = a.get("format").value_or("table");
  if (format != "table" && format != "json") {
    return fail(errc::invalid_argument, "invalid format option: \"" + format + "\"");
  }
  std::vector<ojson> rows;
  std::error_code ec;
  std::set<std::string> ids;
  for (const auto& e : fs::directory_iterator(g.root, ec)) {
    if (e.is_directory(ec)) {
      ids.insert(e.path().filename().native());
    }
  }
  for (const std::string& id : ids) {
    auto l = load_container(g, id, "gone");
    if (!l) {
      continue;  // Possibly a race with another runk command.
    }
    rows.push_back(state_json(g, *l));
  }
  if (a.has("quiet")) {
    for (const auto& r : rows) {
      print(r["id"].get<std::string>());
    }
    return 0;
  }
  if (format == "json") {
    ojson arr = ojson::array();
    for (auto& r : rows) {
      arr.push_back(std::move(r));
    }
    print(arr.dump());
    return 0;
  }
  // Go's tabwriter(minwidth 12, tabwidth 1, padding 3, ' ').
  std::vector<std::vector<std::string>> table{
      {"ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"}};
  for (const auto& r : rows) {
    table.push_back({r["id"].get<std::string>(), std::to_string(r["pid"].get<int>()),
                     r["status"].get<std::string>(), r["bundle"].get<std::string>(),
                     r["created"].get<std::string>(), r["owner"].get<std::string>()});
  }
  std::vector<std::size_t> width(6, 0);
  for (const auto& row : table) {
    for (std::size_t i = 0; i < row.size(); ++i) {
      width[i] = std::max(width[i], std::max<std::size_t>(12, row[i].size() + 3));
    }
  }
  for (const auto& row : table) {
    std::string line;
    for (std::size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) {
        line.append(width[i] - row[i].size(), ' ');
      }
    }
    print(line);
  }
  return 0;
}

katana::result<int> cmd_ps(const globals& g, args_t args) {
  constexpr flag flags[] = {{"format", 'f', true}};
  parsed_args a;
  const auto l = KATANA_TRY(load(g, "ps", args, flags, &a));
  const std::string format = a.get("format").value_or("table");
  if (format != "table" && format != "json") {
    return fail(errc::invalid_argument, "unknown format: " + format);
  }
  std::vector<pid_t> pids;
  if (l.cgroup && !l.cgroups_disabled) {
    pids = KATANA_TRY(l.cgroup->pids());
  } else if (l.status() != kc::runtime_status::stopped) {
    pids.push_back(l.c.pid());
  }
  if (format == "json") {
    print(ojson(pids).dump());
    return 0;
  }
  std::string cmd = "ps";
  if (a.positional.size() > 1) {
    for (std::size_t i = 1; i < a.positional.size(); ++i) {
      cmd += " '" + a.positional[i] + "'";
    }
  } else {
    cmd += " -ef";
  }
  FILE* f = ::popen(cmd.c_str(), "r");
  if (f == nullptr) {
    return katana::fail_errno("run " + cmd);
  }
  std::string out;
  char buf[4096];
  for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, f)) > 0;) {
    out.append(buf, n);
  }
  ::pclose(f);
  std::vector<std::string> lines;
  for (std::size_t pos = 0; pos < out.size();) {
    const auto nl = out.find('\n', pos);
    lines.push_back(out.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos));
    pos = nl == std::string::npos ? out.size() : nl + 1;
  }
  if (lines.empty()) {
    return fail(errc::not_found, "no processes found");
  }
  std::size_t pid_col = std::string::npos;
  const auto header = words(lines[0]);
  if (const auto it = std::find(header.begin(), header.end(), "PID"); it != header.end()) {
    pid_col = static_cast<std::size_t>(it - header.begin());
  }
  if (pid_col == std::string::npos) {
    return fail(errc::parse_error, "could't find PID field in ps output");
  }
  print(lines[0]);
  for (std::size_t i = 1; i < lines.size(); ++i) {
    const auto w = words(lines[i]);
    const auto pid = pid_col < w.size() ? parse_int(w[pid_col]) : std::nullopt;
    if (pid && std::find(pids.begin(), pids.end(), *pid) != pids.end()) {
      print(lines[i]);
    }
  }
  return 0;
}

katana::result<int> cmd_pause(const globals& g, args_t args) {
  auto l = KATANA_TRY(load(g, "pause", args, {}));
  const auto st = l.status();
  if (st != kc::runtime_status::running && st != kc::runtime_status::created) {
    return fail(
        errc::invalid_argument,
        katana::str_cat("failed to pause container: current status is: ", kc::to_string(st)));
  }
  if (!l.cgroup || l.cgroups_disabled) {
    return fail(errc::unsupported, "failed to pause container: cgroups are disabled for it");
  }
  KATANA_TRY(l.cgroup->freeze(cg::freezer_state::frozen), "failed to pause container");
  return 0;
}

katana::result<int> cmd_resume(const globals& g, args_t args) {
  auto l = KATANA_TRY(load(g, "resume", args, {}));
  const auto st = l.status();
  if (st != kc::runtime_status::paused) {
    return fail(
        errc::invalid_argument,
        katana::str_cat("failed to resume container: current status is: ", kc::to_string(st)));
  }
  KATANA_TRY(l.cgroup->freeze(cg::freezer_state::thawed), "failed to resume container");
  return 0;
}

katana::result<int> cmd_events(const globals& g, args_t args) {
  constexpr flag flags[] = {{"stats", 0, false}, {"interval", 0, true}};
  const auto a = KATANA_TRY(parse_args(args, flags));
  const std::string id = KATANA_TRY(one_id("events", a));
  const auto l =
      KATANA_TRY(load_container(g, id, katana::str_cat("container \"", id, "\" does not exist")));
  // Go durations: "5s", "500ms", "1m"; a bare number is seconds.
  std::string iv = a.get("interval").value_or("5s");
  double mult = 1.0;
  if (iv.ends_with("ms")) {
    mult = 0.001;
    iv.resize(iv.size() - 2);
  } else if (iv.ends_with('s')) {
    iv.pop_back();
  } else if (iv.ends_with('m')) {
    mult = 60;
    iv.pop_back();
  }
  const auto n = parse_int(iv);
  if (!n || *n <= 0) {
    return fail(errc::invalid_argument,
                "invalid value \"" + a.get("interval").value_or("") + "\" for --interval");
  }
  const auto interval = std::chrono::duration<double>(*n * mult);
  for (;;) {
    cg::stats s;
    if (l.cgroup && !l.cgroups_disabled) {
      s = KATANA_TRY(l.cgroup->stats(), "stats");
    }
    ojson e;
    e["type"] = "stats";
    e["id"] = id;
    e["data"] = stats_json(s);
    print(e.dump());
    std::fflush(stdout);
    if (a.has("stats") || l.status() == kc::runtime_status::stopped) {
      return 0;
    }
    std::this_thread::sleep_for(interval);
  }
}

katana::result<int> cmd_update(const globals& g, args_t args) {
  constexpr flag flags[] = {
      {"resources", 'r', true},        {"blkio-weight", 0, true},      {"cpu-period", 0, true},
      {"cpu-quota", 0, true},          {"cpu-share", 0, true},         {"cpu-rt-period", 0, true},
      {"cpu-rt-runtime", 0, true},     {"cpuset-cpus", 0, true},       {"cpuset-mems", 0, true},
      {"kernel-memory", 0, true},      {"kernel-memory-tcp", 0, true}, {"memory", 0, true},
      {"memory-reservation", 0, true}, {"memory-swap", 0, true},       {"pids-limit", 0, true},
      {"l3-cache-schema", 0, true},    {"mem-bw-schema", 0, true},
  };
  const auto a = KATANA_TRY(parse_args(args, flags));
  const std::string id = KATANA_TRY(one_id("update", a));
  auto l =
      KATANA_TRY(load_container(g, id, katana::str_cat("container \"", id, "\" does not exist")));
  if (l.status() == kc::runtime_status::stopped) {
    return fail(errc::invalid_argument, "cannot update a stopped container " + id);
  }
  kc::container_state s = l.c.state();
  auto& lin = s.config.linux_ ? *s.config.linux_ : s.config.linux_.emplace();
  katana::oci::linux_resources r = lin.resources.value_or(katana::oci::linux_resources{});
  if (auto file = a.get("resources")) {
    std::string text;
    if (*file == "-") {
      text = KATANA_TRY(read_all(STDIN_FILENO));
    } else {
      text = KATANA_TRY(katana::oci::detail::read_small_file(*file, 1 << 20));
    }
    r = KATANA_TRY(katana::oci::detail::parse_document<katana::oci::linux_resources>(
        text, *file == "-" ? "resources (stdin)" : *file));
  }
  if (auto v = a.get("memory")) {
    auto& m = r.memory ? *r.memory : r.memory.emplace();
    m.limit = KATANA_TRY(parse_size("memory", *v));
  }
  if (auto v = a.get("memory-reservation")) {
    auto& m = r.memory ? *r.memory : r.memory.emplace();
    m.reservation = KATANA_TRY(parse_size("memory-reservation", *v));
  }
  if (auto v = a.get("memory-swap")) {
    auto& m = r.memory ? *r.memory : r.memory.emplace();
    m.swap = KATANA_TRY(parse_size("memory-swap", *v));
  }
  const auto cpu_ref = [&]() -> katana::oci::linux_cpu& {
    return r.cpu ? *r.cpu : r.cpu.emplace();
  };
  if (auto v = a.get("cpu-period")) {
    cpu_ref().period = KATANA_TRY(parse_number<std::uint64_t>("cpu-period", *v));
  }
  if (auto v = a.get("cpu-quota")) {
    cpu_ref().quota = KATANA_TRY(parse_number<std::int64_t>("cpu-quota", *v));
  }
  if (auto v = a.get("cpu-share")) {
    cpu_ref().shares = KATANA_TRY(parse_number<std::uint64_t>("cpu-share", *v));
  }
  if (auto v = a.get("cpu-rt-period")) {
    cpu_ref().realtime_period = KATANA_TRY(parse_number<std::uint64_t>("cpu-rt-period", *v));
  }
  if (auto v = a.get("cpu-rt-runtime")) {
    cpu_ref().realtime_runtime = KATANA_TRY(parse_number<std::int64_t>("cpu-rt-runtime", *v));
  }
  if (auto v = a.get("cpuset-cpus")) {
    cpu_ref().cpus = *v;
  }
  if (auto v = a.get("cpuset-mems")) {
    cpu_ref().mems = *v;
  }
  if (auto v = a.get("pids-limit")) {
    (r.pids ? *r.pids : r.pids.emplace()).limit =
        KATANA_TRY(parse_number<std::int64_t>("pids-limit", *v));
  }
  if (auto v = a.get("blkio-weight")) {
    (r.block_io ? *r.block_io : r.block_io.emplace()).weight =
        KATANA_TRY(parse_number<std::uint16_t>("blkio-weight", *v));
  }
  katana::oci::spec probe = s.config;
  probe.linux_->resources = r;
  KATANA_TRY(katana::oci::validate(probe), "resources");
  if (!l.cgroup || l.cgroups_disabled) {
    return fail(errc::unsupported, "cannot update resources: cgroups are disabled for " + id);
  }
  KATANA_TRY(l.cgroup->apply(r), "update resources");
  lin.resources = r;
  KATANA_TRY(kc::save_container_state(g.root / id, s));
  return 0;
}

katana::result<int> cmd_features(const globals&, args_t) {
  ojson j;
  j["ociVersionMin"] = "1.0.0";
  j["ociVersionMax"] = std::string(katana::oci::spec_version);
  j["hooks"] = {"prestart",       "createRuntime", "createContainer",
                "startContainer", "poststart",     "poststop"};
  j["mountOptions"] = {"async",         "atime",       "bind",        "defaults",  "dev",
                       "diratime",      "dirsync",     "exec",        "iversion",  "lazytime",
                       "loud",          "mand",        "noatime",     "nodev",     "nodiratime",
                       "noexec",        "noiversion",  "nolazytime",  "nomand",    "norelatime",
                       "nostrictatime", "nosuid",      "nosymfollow", "private",   "rbind",
                       "relatime",      "remount",     "ro",          "rprivate",  "rshared",
                       "rslave",        "runbindable", "rw",          "shared",    "silent",
                       "slave",         "strictatime", "sync",        "symfollow", "unbindable"};
  ojson lin;
  lin["namespaces"] = {"cgroup", "ipc", "mount", "network", "pid", "user", "uts"};
  ojson caps = ojson::array();
  for (int i = 0; i <= katana::oci::last_capability; ++i) {
    caps.push_back(std::string(katana::oci::capability_name(i)));
  }
  lin["capabilities"] = caps;
  lin["cgroup"] = {{"v1", true}, {"v2", true}, {"systemd", false}, {"systemdUser", false}};
  ojson sc;
  sc["enabled"] = true;
  ojson actions = ojson::array();
  for (const auto& a : katana::oci::seccomp_actions) {
    actions.push_back(std::string(a.name));
  }
  ojson ops = ojson::array();
  for (const auto& o : katana::oci::seccomp_operators) {
    ops.push_back(std::string(o.name));
  }
  ojson archs = ojson::array();
  for (const auto& ar : katana::oci::seccomp_architectures) {
    archs.push_back(std::string(ar.name));
  }
  ojson sflags = ojson::array();
  for (const auto& f : katana::oci::seccomp_flags) {
    sflags.push_back(std::string(f.name));
  }
  sc["actions"] = actions;
  sc["operators"] = ops;
  sc["archs"] = archs;
  sc["knownFlags"] = sflags;
  sc["supportedFlags"] = sflags;
  lin["seccomp"] = sc;
  lin["apparmor"] = {{"enabled", false}};
  lin["selinux"] = {{"enabled", false}};
  j["linux"] = lin;
  j["annotations"] = {{"io.github.katana.runk.version", std::string(version)},
                      {"org.opencontainers.runc.checkpoint.enabled", "false"}};
  print(j.dump(4));
  return 0;
}

katana::result<int> cmd_spec(const globals&, args_t args) {
  constexpr flag flags[] = {{"bundle", 'b', true}, {"rootless", 0, false}};
  const auto a = KATANA_TRY(parse_args(args, flags));
  const fs::path dir = a.get("bundle").value_or(".");
  const fs::path file = dir / "config.json";
  std::error_code ec;
  if (fs::exists(file, ec)) {
    return fail(errc::already_exists, "File " + file.native() + " exists. Remove it first");
  }
  const auto spec = katana::oci::default_spec(a.has("rootless"));
  KATANA_TRY(write_text_file(file, katana::oci::to_json(spec, 4) + "\n"));
  return 0;
}

}  // namespace runk
