// state.json: container_state <-> JSON (camelCase, as runk's status.json), written atomically.
#pragma once

#include <cerrno>
#include <cstdio>
#include <fcntl.h>
#include <filesystem>
#include <string>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <katana/config.hpp>
#include <katana/container/state.hpp>
#include <katana/core/error.hpp>
#include <katana/core/str_cat.hpp>
#include <katana/core/try.hpp>
#include <katana/core/unique_fd.hpp>
#include <katana/oci/detail/read_file.hpp>
#include <katana/oci/spec_json.hpp>

namespace katana::inline v0::container {

inline std::string to_json(const container_state& s) {
  nlohmann::ordered_json j;
  j["ociVersion"] = s.oci_version;
  j["id"] = s.id;
  j["pid"] = s.pid;
  j["processStartTime"] = s.process_start_time;
  j["bundle"] = s.bundle;
  j["rootfs"] = s.rootfs;
  j["created"] = s.created;
  j["cgroupPath"] = s.cgroup_path;
  j["annotations"] = s.annotations;
  j["config"] = nlohmann::ordered_json::parse(oci::to_json(s.config));
  return j.dump(2);
}

inline result<container_state> parse_container_state(const std::string& text,
                                                     const std::string& source) {
  try {
    // ordered_json, as everywhere else: one basic_json instantiation per binary (each is
    // ~100 KB of parser and serializer in a static katana-runk).
    const auto j = nlohmann::ordered_json::parse(text);
    container_state s;
    s.oci_version = j.at("ociVersion").get<std::string>();
    s.id = j.at("id").get<std::string>();
    s.pid = j.at("pid").get<int>();
    s.process_start_time = j.at("processStartTime").get<std::uint64_t>();
    s.bundle = j.at("bundle").get<std::string>();
    s.rootfs = j.at("rootfs").get<std::string>();
    s.created = j.at("created").get<std::string>();
    s.cgroup_path = j.value("cgroupPath", std::string{});
    s.annotations = j.value("annotations", std::map<std::string, std::string>{});
    s.config = KATANA_TRY(oci::parse_spec(j.at("config").dump(), source + ": config"));
    return s;
  } catch (const nlohmann::ordered_json::exception& e) {
    return fail(errc::parse_error, source + ": " + e.what());
  }
}

inline result<container_state> load_container_state(const std::filesystem::path& dir) {
  const auto path = state_file(dir);
  const std::string text = KATANA_TRY(oci::detail::read_small_file(path, std::size_t{16} << 20));
  return parse_container_state(text, path.native());
}

/// Writes state.json atomically (temporary file, fsync, rename), mode 0600.
inline status save_container_state(const std::filesystem::path& dir, const container_state& s) {
  const auto path = state_file(dir);
  const auto tmp = dir / ".state.json.tmp";
  const std::string text = to_json(s);
  unique_fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (!fd) {
    return fail_errno("create " + tmp.native());
  }
  std::size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd.get(), text.data() + done, text.size() - done);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      return fail_errno("write " + tmp.native());
    }
    done += static_cast<std::size_t>(n);
  }
  if (::fsync(fd.get()) != 0) {
    return fail_errno("fsync " + tmp.native());
  }
  fd.reset();
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    return fail_errno("rename " + tmp.native() + " to " + path.native());
  }
  return {};
}

}  // namespace katana::inline v0::container
