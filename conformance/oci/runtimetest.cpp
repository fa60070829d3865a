// runtimetest: the in-container checker of the OCI conformance suite (youki's contest model).
// Static, copied into the busybox rootfs. Each argument is one expectation "check=value";
// it prints "ok <arg>" or "not ok <arg>: <why>" and exits 1 if any check failed.
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <grp.h>
#include <sstream>
#include <string>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <unistd.h>
#include <vector>

namespace {

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) {
    s.pop_back();
  }
  return s;
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::string cur;
  for (const char c : s) {
    if (c == sep) {
      out.push_back(cur);
      cur.clear();
    } else {
      cur.push_back(c);
    }
  }
  out.push_back(cur);
  return out;
}

/// The value of a "Key:\tvalue" line of /proc/self/status.
std::string status_field(const std::string& key) {
  std::istringstream in(read_file("/proc/self/status"));
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(key + ":", 0) == 0) {
      std::string v = line.substr(key.size() + 1);
      while (!v.empty() && (v.front() == '\t' || v.front() == ' ')) {
        v.erase(v.begin());
      }
      return v;
    }
  }
  return {};
}

/// The mount entry (fields of /proc/self/mountinfo) whose mount point is `path`, last wins.
std::vector<std::string> mount_entry(const std::string& path) {
  std::istringstream in(read_file("/proc/self/mountinfo"));
  std::vector<std::string> found;
  for (std::string line; std::getline(in, line);) {
    const auto f = split(line, ' ');
    if (f.size() > 4 && f[4] == path) {
      found = f;
    }
  }
  return found;
}

bool has_option(const std::string& opts, const std::string& want) {
  for (const auto& o : split(opts, ',')) {
    if (o == want) {
      return true;
    }
  }
  return false;
}

/// Returns an empty string on success, else the reason.
std::string check(const std::string& name, const std::string& v) {
  if (name == "hostname") {
    char buf[256] = {};
    ::gethostname(buf, sizeof buf - 1);
    return buf == v ? "" : std::string("hostname is ") + buf;
  }
  if (name == "env") {  // K=V present
    const auto eq = v.find('=');
    const char* got = std::getenv(v.substr(0, eq).c_str());
    return got != nullptr && v.substr(eq + 1) == got
               ? ""
               : "got " + std::string(got != nullptr ? got : "(unset)");
  }
  if (name == "cwd") {
    char buf[4096] = {};
    return ::getcwd(buf, sizeof buf) != nullptr && buf == v ? "" : std::string("cwd is ") + buf;
  }
  if (name == "uid") {
    return std::to_string(::getuid()) == v && std::to_string(::geteuid()) == v
               ? ""
               : "uid is " + std::to_string(::getuid());
  }
  if (name == "gid") {
    return std::to_string(::getgid()) == v ? "" : "gid is " + std::to_string(::getgid());
  }
  if (name == "groups") {  // comma-separated supplementary gids, order-insensitive
    gid_t groups[256];
    const int n = ::getgroups(256, groups);
    std::string got;
    for (const auto& want : split(v, ',')) {
      bool found = false;
      for (int i = 0; i < n; ++i) {
        found = found || std::to_string(groups[i]) == want;
      }
      if (!found) {
        return "missing group " + want;
      }
    }
    return "";
  }
  if (name == "nnp") {
    const int got = ::prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0);
    return std::to_string(got) == v ? "" : "no_new_privs is " + std::to_string(got);
  }
  if (name == "capeff" || name == "capbnd" || name == "capprm" || name == "capamb" ||
      name == "capinh") {
    const std::string key = name == "capeff"   ? "CapEff"
                            : name == "capbnd" ? "CapBnd"
                            : name == "capprm" ? "CapPrm"
                            : name == "capamb" ? "CapAmb"
                                               : "CapInh";
    const std::string got = status_field(key);
    return std::strtoull(got.c_str(), nullptr, 16) == std::strtoull(v.c_str(), nullptr, 16)
               ? ""
               : key + " is " + got;
  }
  if (name == "rlimit") {  // NOFILE:hard:soft
    const auto f = split(v, ':');
    if (f.size() != 3 || f[0] != "NOFILE") {
      return "bad expectation";
    }
    rlimit rl{};
    ::getrlimit(RLIMIT_NOFILE, &rl);
    return std::to_string(rl.rlim_max) == f[1] && std::to_string(rl.rlim_cur) == f[2]
               ? ""
               : "NOFILE is " + std::to_string(rl.rlim_max) + ":" + std::to_string(rl.rlim_cur);
  }
  if (name == "masked") {  // empty file/dir or /dev/null
    struct stat st {};
    if (::stat(v.c_str(), &st) != 0) {
      return "";  // absent is masked enough
    }
    if (S_ISDIR(st.st_mode)) {
      const auto e = mount_entry(v);
      return !e.empty() && e.size() > 8 && e[e.size() - 3] == "tmpfs" ? "" : "not a tmpfs";
    }
    return read_file(v).empty() ? "" : "readable content";
  }
  if (name == "readonly") {
    const auto e = mount_entry(v);
    return !e.empty() && has_option(e[5], "ro") ? "" : "not mounted read-only";
  }
  if (name == "mount") {  // /path:fstype
    const auto f = split(v, ':');
    const auto e = mount_entry(f[0]);
    if (e.empty()) {
      return "not a mount point";
    }
    for (std::size_t i = 6; i + 1 < e.size(); ++i) {
      if (e[i] == "-") {
        return e[i + 1] == f[1] ? "" : "fstype is " + e[i + 1];
      }
    }
    return "bad mountinfo";
  }
  if (name == "mountopt") {  // /path:opt (per-mount option, e.g. ro, nosuid)
    const auto f = split(v, ':');
    const auto e = mount_entry(f[0]);
    return !e.empty() && has_option(e[5], f[1]) ? "" : "option missing";
  }
  if (name == "propagation") {  // /path:shared|slave|private (mountinfo's optional fields)
    const auto f = split(v, ':');
    const auto e = mount_entry(f[0]);
    if (e.empty()) {
      return "not a mount point";
    }
    bool shared = false;
    bool slave = false;
    for (std::size_t i = 6; i < e.size() && e[i] != "-"; ++i) {
      shared = shared || e[i].rfind("shared:", 0) == 0;
      slave = slave || e[i].rfind("master:", 0) == 0;
    }
    const std::string got = shared  ? (slave ? "shared+slave" : "shared")
                            : slave ? "slave"
                                    : "private";
    return got == f[1] ? "" : "propagation is " + got;
  }
  if (name == "rootro") {
    return ::access("/", W_OK) != 0 && errno == EROFS ? "" : "root is writable";
  }
  if (name == "writable") {
    const std::string p = v + "/.runtimetest";
    const int fd = ::open(p.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
    if (fd < 0) {
      return std::string("create: ") + std::strerror(errno);
    }
    ::close(fd);
    ::unlink(p.c_str());
    return "";
  }
  if (name == "sysctl") {  // net.ipv4.ip_forward=1
    const auto eq = v.find('=');
    std::string path = "/proc/sys/" + v.substr(0, eq);
    for (char& c : path) {
      c = c == '.' ? '/' : c;
    }
    const std::string got = trim(read_file(path));
    return got == v.substr(eq + 1) ? "" : "is " + got;
  }
  if (name == "oom") {
    const std::string got = trim(read_file("/proc/self/oom_score_adj"));
    return got == v ? "" : "oom_score_adj is " + got;
  }
  if (name == "seccomp") {  // mode in /proc/self/status
    const std::string got = status_field("Seccomp");
    return got == v ? "" : "Seccomp is " + got;
  }
  if (name == "mkdir-errno") {  // seccomp ERRNO rule on mkdir/mkdirat
    errno = 0;
    const int rc = ::mkdir("/tmp/.runtimetest-dir", 0700);
    const int e = errno;
    ::rmdir("/tmp/.runtimetest-dir");
    return rc != 0 && std::to_string(e) == v
               ? ""
               : "mkdir gave rc " + std::to_string(rc) + " errno " + std::to_string(e);
  }
  if (name == "device") {  // /dev/x:c:major:minor
    const auto f = split(v, ':');
    struct stat st {};
    if (::stat(f[0].c_str(), &st) != 0) {
      return std::string("stat: ") + std::strerror(errno);
    }
    const bool type_ok = f[1] == "c" ? S_ISCHR(st.st_mode) : S_ISBLK(st.st_mode);
    return type_ok && std::to_string(major(st.st_rdev)) == f[2] &&
                   std::to_string(minor(st.st_rdev)) == f[3]
               ? ""
               : "wrong device node";
  }
  if (name == "exists") {
    return ::access(v.c_str(), F_OK) == 0 ? "" : "missing";
  }
  if (name == "absent") {
    return ::access(v.c_str(), F_OK) != 0 ? "" : "present";
  }
  if (name == "pid") {
    return std::to_string(::getpid()) == v ? "" : "pid is " + std::to_string(::getpid());
  }
  if (name == "ns-differs") {  // namespace differs from the one named in the host file
    // v = nsname:inode-of-the-host (from the harness)
    const auto f = split(v, ':');
    char buf[128] = {};
    const std::string link = "/proc/self/ns/" + f[0];
    if (::readlink(link.c_str(), buf, sizeof buf - 1) < 0) {
      return "readlink failed";
    }
    return std::string(buf).find(f[1]) == std::string::npos ? "" : "shares the host's " + f[0];
  }
  if (name == "cgroup-file") {  // relative/path/in/cgroupfs=value (searched under /sys/fs/cgroup)
    const auto eq = v.find('=');
    const std::string got = trim(read_file("/sys/fs/cgroup/" + v.substr(0, eq)));
    return got == v.substr(eq + 1) ? "" : "is \"" + got + "\"";
  }
  if (name == "umask") {
    const mode_t m = ::umask(0);
    ::umask(m);
    char buf[8];
    std::snprintf(buf, sizeof buf, "%04o", m);
    return v == buf ? "" : std::string("umask is ") + buf;
  }
  return "unknown check";
}

}  // namespace

int main(int argc, char** argv) {
  int failed = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const auto eq = arg.find('=');
    const std::string name = arg.substr(0, eq);
    const std::string value = eq == std::string::npos ? "" : arg.substr(eq + 1);
    const std::string why = check(name, value);
    if (why.empty()) {
      std::printf("ok %s\n", arg.c_str());
    } else {
      std::printf("not ok %s: %s\n", arg.c_str(), why.c_str());
      ++failed;
    }
  }
  std::fflush(stdout);
  return failed == 0 ? 0 : 1;
}
