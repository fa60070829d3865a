// Definitions for load.hpp: the only place in katana that includes <toml.hpp>.
// Every toml11 call is behind check_toml_text (see detail/toml_text.hpp for why) and inside a
// try block; toml11's exceptions become katana::error with toml11's location text.
#pragma once

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <fcntl.h>
#include <filesystem>
#include <new>
#include <sstream>
#include <string>
#include <string_view>
#include <sys/stat.h>
#include <system_error>
#include <tuple>
#include <unistd.h>
#include <utility>
#include <vector>

#include <toml.hpp>

#include <katana/config/load.hpp>
#include <katana/core/str_cat.hpp>
#include <katana/core/try.hpp>
#include <katana/core/unique_fd.hpp>

namespace katana::inline v0::config {
namespace detail {

struct toml_document {
  std::string_view name;
  warnings& notes;

  /// "configuration.toml:12" for a value toml11 knows the place of, else the file name.
  [[nodiscard]] std::string where(const toml::value& v) const {
    const auto loc = v.location();
    if (loc.file_name() != name || loc.line_str().empty()) {
      return std::string(name);
    }
    return str_cat(name, ":", loc.line());
  }
};

/// A table's entries in file order (toml11 keeps them in an unordered_map).
inline std::vector<std::pair<const std::string*, const toml::value*>> in_file_order(
    const toml::value& table) {
  // Each place is computed once: toml11 counts the lines from the top of the file for every
  // location(), and calling it inside the comparison made loading the default file ~5 ms.
  struct entry {
    std::size_t line;
    std::size_t column;
    const std::string* key;
    const toml::value* value;
  };
  std::vector<entry> places;
  places.reserve(table.as_table().size());
  for (const auto& [k, v] : table.as_table()) {
    const auto loc = v.location();
    places.push_back({loc.line(), loc.column(), &k, &v});
  }
  std::sort(places.begin(), places.end(), [](const entry& a, const entry& b) {
    return std::tie(a.line, a.column, *a.key) < std::tie(b.line, b.column, *b.key);
  });
  std::vector<std::pair<const std::string*, const toml::value*>> out;
  out.reserve(places.size());
  for (const auto& e : places) {
    out.emplace_back(e.key, e.value);
  }
  return out;
}

inline std::string_view toml_type_name(const toml::value& v) {
  switch (v.type()) {
    case toml::value_t::boolean:
      return "a boolean";
    case toml::value_t::integer:
      return "an integer";
    case toml::value_t::floating:
      return "a float";
    case toml::value_t::string:
      return "a string";
    case toml::value_t::array:
      return "an array";
    case toml::value_t::table:
      return "a table";
    case toml::value_t::offset_datetime:
    case toml::value_t::local_datetime:
    case toml::value_t::local_date:
    case toml::value_t::local_time:
      return "a date/time";
    case toml::value_t::empty:
      break;
  }
  return "nothing";
}

/// What a member type expects, for "expected X, got Y".
template <class Section>
std::string_view expected_name(const member<Section>& m) {
  constexpr std::string_view names[] = {"a boolean",          "an integer", "an integer",
                                        "an integer",         "a number",   "a string",
                                        "an array of strings"};
  return names[m.index()];
}

/// toml11 value -> config::value; the toml type name when it has no counterpart.
inline result<value> decode(const toml::value& v) {
  switch (v.type()) {
    case toml::value_t::boolean:
      return value(v.as_boolean());
    case toml::value_t::integer:
      return value(static_cast<std::int64_t>(v.as_integer()));
    case toml::value_t::floating:
      return value(static_cast<double>(v.as_floating()));
    case toml::value_t::string:
      return value(v.as_string().str);
    case toml::value_t::array: {
      std::vector<std::string> list;
      for (const auto& e : v.as_array()) {
        if (!e.is_string()) {
          auto element = toml_type_name(e);
          element.remove_prefix(element.find(' ') + 1);  // "an integer" -> "integer"
          return fail(errc::invalid_config, str_cat("an array of ", element, "s"));
        }
        list.push_back(e.as_string().str);
      }
      return value(std::move(list));
    }
    default:
      return fail(errc::invalid_config, std::string(toml_type_name(v)));
  }
}

template <class Section, std::size_t N>
status apply_table(Section& section,
                   const field<Section> (&fields)[N],
                   const toml::value& table,
                   std::string_view path,
                   std::string_view kind,
                   const toml_document& doc) {
  const unsigned kind_mask = kind.empty() ? 0u : hypervisor_kind_mask(kind);
  for (const auto& [key, v] : in_file_order(table)) {
    const auto* f = find_field(fields, *key);
    if (f == nullptr) {
      doc.notes.push_back(
          v->is_table()
              ? str_cat(doc.where(*v), ": unknown section [", path, ".", *key, "] (ignored)")
              : str_cat(doc.where(*v), ": unknown key ", path, ".", *key, " (ignored)"));
      continue;
    }
    if (kind_mask != 0 && (f->kinds & kind_mask) == 0) {
      doc.notes.push_back(
          str_cat(doc.where(*v), ": ", path, ".", *key, " is not a ", kind, " setting (ignored)"));
      continue;
    }
    auto decoded = decode(*v);
    if (!decoded) {
      return fail(errc::invalid_config,
                  str_cat(doc.where(*v), ": ", path, ".", *key, ": expected ",
                          expected_name(f->target), ", got ", decoded.error().context));
    }
    if (auto st = assign(section, *f, std::move(*decoded)); !st) {
      return fail(errc::invalid_config,
                  str_cat(doc.where(*v), ": ", path, ".", *key, ": ", st.error().context));
    }
  }
  return {};
}

inline status expect_table(const toml::value& v, std::string_view path, const toml_document& doc) {
  if (!v.is_table()) {
    return fail(errc::invalid_config,
                str_cat(doc.where(v), ": ", path, ": expected a table, got ", toml_type_name(v)));
  }
  return {};
}

inline status apply_document(configuration& cfg,
                             const toml::value& root,
                             const toml_document& doc) {
  for (const auto& [key, v] : in_file_order(root)) {
    if (*key == "hypervisor") {
      KATANA_TRY(expect_table(*v, "hypervisor", doc));
      for (const auto& [kind, h] : in_file_order(*v)) {
        const std::string path = str_cat("hypervisor.", *kind);
        if (hypervisor_kind_mask(*kind) == 0) {
          doc.notes.push_back(str_cat(doc.where(*h), ": unknown section [", path, "] (ignored)"));
          continue;
        }
        KATANA_TRY(expect_table(*h, path, doc));
        auto it = cfg.hypervisors.try_emplace(*kind, hypervisor_defaults(*kind)).first;
        KATANA_TRY(apply_table(it->second, hypervisor_fields, *h, path, *kind, doc));
      }
    } else if (*key == "agent") {
      KATANA_TRY(expect_table(*v, "agent", doc));
      for (const auto& [name, a] : in_file_order(*v)) {
        if (*name != "kata") {
          doc.notes.push_back(
              str_cat(doc.where(*a), ": unknown section [agent.", *name, "] (ignored)"));
          continue;
        }
        KATANA_TRY(expect_table(*a, "agent.kata", doc));
        KATANA_TRY(apply_table(cfg.agent, agent_fields, *a, "agent.kata", "", doc));
      }
    } else if (*key == "runtime") {
      KATANA_TRY(expect_table(*v, "runtime", doc));
      KATANA_TRY(apply_table(cfg.runtime, runtime_fields, *v, "runtime", "", doc));
    } else if (*key == "factory") {
      KATANA_TRY(expect_table(*v, "factory", doc));
      KATANA_TRY(apply_table(cfg.factory, factory_fields, *v, "factory", "", doc));
    } else if (v->is_table()) {
      doc.notes.push_back(str_cat(doc.where(*v), ": unknown section [", *key, "] (ignored)"));
    } else {
      doc.notes.push_back(str_cat(doc.where(*v), ": unknown key ", *key, " (ignored)"));
    }
  }
  return {};
}

/// toml11's message without its trailing newline.
inline std::string toml_message(const char* what) {
  std::string s(what);
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) {
    s.pop_back();
  }
  return s;
}

inline result<toml::value> parse_toml(std::string_view text,
                                      std::string_view name,
                                      const toml_text_limits& limits) {
  KATANA_TRY(check_toml_text(text, name, limits));
  try {
    std::istringstream in{std::string(text)};
    return toml::parse(in, std::string(name));
  } catch (const std::bad_alloc&) {
    throw;
  } catch (const std::exception& e) {
    return fail(errc::parse_error, toml_message(e.what()));
  }
}

inline result<std::string> read_config_file(const std::filesystem::path& path, std::size_t limit) {
  unique_fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
  if (!fd) {
    return fail_errno(str_cat("open ", path.native()));
  }
  struct ::stat st {};
  if (::fstat(fd.get(), &st) != 0) {
    return fail_errno(str_cat("stat ", path.native()));
  }
  if (!S_ISREG(st.st_mode)) {
    return fail(errc::invalid_config, str_cat(path.native(), ": not a regular file"));
  }
  std::string text;
  char buf[16384];
  for (;;) {
    const auto n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      return fail_errno(str_cat("read ", path.native()));
    }
    if (n == 0) {
      return text;
    }
    text.append(buf, static_cast<std::size_t>(n));
    if (text.size() > limit) {
      return fail(errc::parse_error,
                  str_cat(path.native(), ": larger than the limit of ", limit, " bytes"));
    }
  }
}

inline bool is_regular_file(const std::filesystem::path& p) {
  std::error_code ec;
  return std::filesystem::is_regular_file(p, ec);
}

}  // namespace detail

inline status merge(configuration& cfg,
                    std::string_view text,
                    std::string_view name,
                    warnings& notes,
                    const detail::toml_text_limits& limits) {
  const auto root = KATANA_TRY(detail::parse_toml(text, name, limits));
  try {
    return detail::apply_document(cfg, root, detail::toml_document{name, notes});
  } catch (const std::bad_alloc&) {
    throw;
  } catch (const std::exception& e) {  // toml11 accessors; not expected after the type checks
    return fail(errc::parse_error, detail::toml_message(e.what()));
  }
}

inline result<configuration> parse(std::string_view text,
                                   std::string_view name,
                                   warnings& notes,
                                   const detail::toml_text_limits& limits) {
  configuration cfg;
  KATANA_TRY(merge(cfg, text, name, notes, limits));
  return cfg;
}

inline result<configuration> embedded_defaults() {
  warnings notes;
  return parse(default_configuration_toml, embedded_name, notes);
}

inline result<loaded_configuration> load(const load_options& options) {
  namespace fs = std::filesystem;
  loaded_configuration out;
  fs::path chosen;
  if (!options.path.empty()) {
    chosen = options.path;
  } else if (const char* env = options.use_environment ? std::getenv(conf_file_env) : nullptr;
             env != nullptr && *env != '\0') {
    chosen = env;
  } else {
    for (const auto& p : options.search_paths) {
      if (detail::is_regular_file(p)) {
        chosen = p;
        break;
      }
    }
  }
  fs::path drop_in_dir;
  if (!chosen.empty()) {
    const auto text =
        KATANA_TRY(detail::read_config_file(chosen, options.limits.max_bytes), "configuration");
    KATANA_TRY(merge(out.config, text, chosen.native(), out.notes, options.limits));
    out.sources.push_back(chosen.native());
    drop_in_dir = chosen.parent_path() / "config.d";
  } else if (options.embedded_fallback) {
    KATANA_TRY(
        merge(out.config, default_configuration_toml, embedded_name, out.notes, options.limits));
    out.sources.emplace_back(embedded_name);
    if (!options.search_paths.empty()) {
      drop_in_dir = options.search_paths.front().parent_path() / "config.d";
    }
  } else {
    std::string looked;
    for (const auto& p : options.search_paths) {
      looked += looked.empty() ? p.native() : ", " + p.native();
    }
    return fail(errc::not_found, str_cat("no configuration file (looked at ", looked, ")"));
  }

  std::error_code ec;
  if (!options.drop_ins || drop_in_dir.empty() || !fs::is_directory(drop_in_dir, ec)) {
    return out;
  }
  std::vector<fs::path> files;
  for (fs::directory_iterator it(drop_in_dir, ec), end; !ec && it != end; it.increment(ec)) {
    const auto& p = it->path();
    const auto file = p.filename().native();
    if (file.starts_with(".")) {
      continue;
    }
    if (p.extension() != ".toml" || !detail::is_regular_file(p)) {
      out.notes.push_back(str_cat(p.native(), ": not a *.toml file (skipped)"));
      continue;
    }
    files.push_back(p);
  }
  if (ec) {
    return fail(ec, str_cat("read ", drop_in_dir.native()));
  }
  std::sort(files.begin(), files.end());
  for (const auto& p : files) {
    const auto text =
        KATANA_TRY(detail::read_config_file(p, options.limits.max_bytes), "configuration drop-in");
    KATANA_TRY(merge(out.config, text, p.native(), out.notes, options.limits));
    out.sources.push_back(p.native());
  }
  return out;
}

}  // namespace katana::inline v0::config
