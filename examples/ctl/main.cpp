// katana-ctl: the operator's tool. Today: OCI bundle helpers; later issues add agent, vm, image.
#include <cstdio>
#include <exception>
#include <fcntl.h>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <unistd.h>
#include <vector>

#include <katana/core/error.hpp>
#include <katana/core/log.hpp>
#include <katana/core/try.hpp>
#include <katana/oci/default_spec.hpp>
#include <katana/oci/spec_json.hpp>
#include <katana/oci/validate.hpp>

#include "agent_cmd.hpp"
#include "check_cmd.hpp"
#include "image_cmd.hpp"
#if KATANA_CTL_VM
#include "vm_cmd.hpp"
#endif

namespace {

namespace fs = std::filesystem;
using katana::errc;
using katana::result;
using katana::status;

constexpr std::string_view usage =
    R"(usage: katana-ctl [--log-level LEVEL] [--log-format json|text] COMMAND

commands:
  version                               print the version
  oci spec [--bundle DIR] [--rootless]  write a default config.json into DIR (default: .)
  oci validate [--bundle DIR] [--all]   validate DIR/config.json and print it normalised;
                                        --all lists every problem instead of the first
)";

struct args {
  std::vector<std::string_view> rest;
  // Takes "--name VALUE" or "--name=VALUE" out of rest; what follows "--" (a container's
  // command line) is not looked at.
  result<std::string> option(std::string_view name, std::string fallback) {
    for (std::size_t i = 0; i < rest.size() && rest[i] != "--"; ++i) {
      const auto a = rest[i];
      if (a == name) {
        if (i + 1 >= rest.size() || rest[i + 1] == "--") {
          return katana::fail(errc::invalid_argument, std::string(name) + " needs a value");
        }
        std::string v(rest[i + 1]);
        rest.erase(rest.begin() + static_cast<std::ptrdiff_t>(i),
                   rest.begin() + static_cast<std::ptrdiff_t>(i + 2));
        return v;
      }
      if (a.size() > name.size() && a.substr(0, name.size()) == name && a[name.size()] == '=') {
        std::string v(a.substr(name.size() + 1));
        rest.erase(rest.begin() + static_cast<std::ptrdiff_t>(i));
        return v;
      }
    }
    return fallback;
  }
  bool flag(std::string_view name) {
    for (auto it = rest.begin(); it != rest.end() && *it != "--"; ++it) {
      if (*it == name) {
        rest.erase(it);
        return true;
      }
    }
    return false;
  }
  status no_more() const {
    if (!rest.empty()) {
      return katana::fail(errc::invalid_argument,
                          "unexpected argument \"" + std::string(rest.front()) + "\"");
    }
    return {};
  }
};

status write_new_file(const fs::path& path, std::string_view content) {
  // O_EXCL: never overwrite a user's config.json (runc spec refuses too).
  katana::unique_fd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
  if (!fd) {
    return katana::fail_errno("create " + path.string());
  }
  while (!content.empty()) {
    const ssize_t n = ::write(fd.get(), content.data(), content.size());
    if (n < 0) {
      return katana::fail_errno("write " + path.string());
    }
    content.remove_prefix(static_cast<std::size_t>(n));
  }
  return {};
}

status oci_spec(args& a) {
  const fs::path bundle = KATANA_TRY(a.option("--bundle", "."));
  const bool rootless = a.flag("--rootless");
  KATANA_TRY(a.no_more());
  const auto spec = katana::oci::default_spec(rootless);
  return write_new_file(bundle / "config.json", katana::oci::to_json(spec, 2) + "\n");
}

status oci_validate(args& a, const katana::logging::logger& lg) {
  const fs::path bundle = KATANA_TRY(a.option("--bundle", "."));
  const bool all = a.flag("--all");
  KATANA_TRY(a.no_more());
  const auto config = bundle / "config.json";
  const auto spec = KATANA_TRY(katana::oci::load_spec(config));
  if (all) {
    const auto problems = katana::oci::validate_all(spec);
    for (const auto& p : problems) {
      std::fprintf(stderr, "katana-ctl: %s: %s\n", config.c_str(), p.c_str());
    }
    if (!problems.empty()) {
      return katana::fail(errc::invalid_spec,
                          config.string() + ": " + std::to_string(problems.size()) + " problems");
    }
  } else {
    KATANA_TRY(katana::oci::validate(spec), config.string());
  }
  lg.info("bundle is valid", {{"config", config.string()}});
  std::fputs((katana::oci::to_json(spec, 2) + "\n").c_str(), stdout);
  return {};
}

status run(args a) {
  const auto level = KATANA_TRY(a.option("--log-level", "info"));
  const auto format = KATANA_TRY(a.option("--log-format", "text"));
  if (format != "json" && format != "text") {
    return katana::fail(errc::invalid_argument,
                        "--log-format must be json or text, not \"" + format + "\"");
  }
  const auto lg = KATANA_TRY(katana::logging::logger::open(
      {.format = format == "json" ? katana::logging::format::json : katana::logging::format::text,
       .levels = level}));
  const auto ctl = lg.component("ctl");

  if (a.rest.empty() || a.rest.front() == "help" || a.rest.front() == "--help" ||
      a.rest.front() == "-h") {
    std::fputs(usage.data(), a.rest.empty() ? stderr : stdout);
    std::fputs(katana_ctl::check_usage.data(), a.rest.empty() ? stderr : stdout);
    std::fputs(katana_ctl::image_usage.data(), a.rest.empty() ? stderr : stdout);
#if KATANA_CTL_VM
    std::fputs(katana_ctl::vm_usage.data(), a.rest.empty() ? stderr : stdout);
#endif
    std::fputs(katana_ctl::agent_usage.data(), a.rest.empty() ? stderr : stdout);
    return a.rest.empty() ? katana::fail(errc::invalid_argument, "no command given")
                          : katana::status{};
  }
  const auto cmd = a.rest.front();
  a.rest.erase(a.rest.begin());
  if (cmd == "version") {
    KATANA_TRY(a.no_more());
    std::printf("katana-ctl %s\nOCI runtime spec %s\n", katana::version_string,
                katana::oci::spec_version.data());
    return {};
  }
  if (cmd == "agent") {
    return katana_ctl::agent_command(std::move(a.rest));
  }
#if KATANA_CTL_VM
  if (cmd == "vm") {
    auto code = KATANA_TRY(katana_ctl::vm_command(std::move(a.rest)));
    std::fflush(stdout);
    std::fflush(stderr);
    std::exit(code);
  }
#endif
  if (cmd == "check") {
    const auto code = KATANA_TRY(katana_ctl::check_command(std::move(a.rest)));
    std::fflush(stdout);
    std::exit(code);
  }
  if (cmd == "image") {
    return katana_ctl::image_command(std::move(a.rest));
  }
  if (cmd == "oci" && !a.rest.empty()) {
    const auto sub = a.rest.front();
    a.rest.erase(a.rest.begin());
    if (sub == "spec") {
      return oci_spec(a);
    }
    if (sub == "validate") {
      return oci_validate(a, ctl);
    }
    return katana::fail(errc::invalid_argument, "unknown command \"oci " + std::string(sub) + "\"");
  }
  return katana::fail(errc::invalid_argument, "unknown command \"" + std::string(cmd) +
                                                  "\" (katana-ctl --help lists them)");
}

}  // namespace

int main(int argc, char* argv[]) {
  try {
    const std::span<char*> argv_span(argv, static_cast<std::size_t>(argc));
    args a{{argv_span.begin() + 1, argv_span.end()}};
    if (auto r = run(std::move(a)); !r) {
      std::fprintf(stderr, "katana-ctl: %s\n", r.error().message().c_str());
      return r.error().code == errc::invalid_argument ? 2 : 1;
    }
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "katana-ctl: internal error: %s\n", e.what());
  } catch (...) {
    std::fprintf(stderr, "katana-ctl: internal error\n");
  }
  return 70;  // EX_SOFTWARE
}
