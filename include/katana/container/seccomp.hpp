// linux.seccomp -> a BPF program, built with libseccomp in the parent (before fork) and
// loaded raw by the container init with seccomp(2) as its last step before exec.
//
// translate_seccomp() is the pure part (names -> numbers, actions, argument comparisons);
// compile_seccomp() runs libseccomp and exports the program with seccomp_export_bpf.
#pragma once

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <seccomp.h>
#include <string>
#include <sys/mman.h>
#include <unistd.h>
#include <vector>

#include <katana/config.hpp>
#include <katana/core/error.hpp>
#include <katana/core/scope_exit.hpp>
#include <katana/core/str_cat.hpp>
#include <katana/core/try.hpp>
#include <katana/core/unique_fd.hpp>
#include <katana/oci/names.hpp>
#include <katana/oci/spec.hpp>

namespace katana::inline v0::container {

/// One libseccomp argument comparison.
struct seccomp_condition {
  unsigned index = 0;
  scmp_compare op = SCMP_CMP_EQ;
  std::uint64_t a = 0;  // datum_a (the mask for SCMP_CMP_MASKED_EQ)
  std::uint64_t b = 0;  // datum_b
  bool operator==(const seccomp_condition&) const = default;
};

/// One seccomp_rule_add_array call.
struct seccomp_rule {
  std::string name;  // for messages
  int syscall = 0;
  std::uint32_t action = 0;
  std::vector<seccomp_condition> conditions;  // all must hold (AND)
  bool operator==(const seccomp_rule&) const = default;
};

/// The translated filter.
struct seccomp_filter {
  std::uint32_t default_action = SCMP_ACT_ALLOW;
  std::vector<std::uint32_t> architectures;  // SCMP_ARCH_* tokens; the native one is implied
  std::uint32_t flags = 0;                   // SECCOMP_FILTER_FLAG_* for seccomp(2)
  std::vector<seccomp_rule> rules;
  std::vector<std::string> unknown_syscalls;  // names this libseccomp does not know (skipped)
  bool needs_listener = false;                // some action is SCMP_ACT_NOTIFY
};

/// A BPF program ready for seccomp(SECCOMP_SET_MODE_FILTER, flags, &prog()).
struct seccomp_program {
  std::vector<sock_filter> instructions;
  std::uint32_t flags = 0;
  sock_fprog prog() const noexcept {
    return {static_cast<unsigned short>(instructions.size()),
            const_cast<sock_filter*>(instructions.data())};
  }
};

/// The libseccomp action value of a spec action; errno_ret is used by ERRNO and TRACE.
inline result<std::uint32_t> seccomp_action_value(std::string_view name,
                                                  std::optional<std::uint32_t> errno_ret) {
  auto action = oci::parse_seccomp_action(name);
  if (!action) {
    return fail(errc::invalid_spec, str_cat("seccomp: unknown action ", name));
  }
  const std::uint32_t err = errno_ret.value_or(EPERM);
  switch (*action) {
    case oci::seccomp_action::kill:
    case oci::seccomp_action::kill_thread:
      return SCMP_ACT_KILL_THREAD;
    case oci::seccomp_action::kill_process:
      return SCMP_ACT_KILL_PROCESS;
    case oci::seccomp_action::trap:
      return SCMP_ACT_TRAP;
    case oci::seccomp_action::errno_:
      return SCMP_ACT_ERRNO(err);
    case oci::seccomp_action::trace:
      return SCMP_ACT_TRACE(err);
    case oci::seccomp_action::allow:
      return SCMP_ACT_ALLOW;
    case oci::seccomp_action::log:
      return SCMP_ACT_LOG;
    case oci::seccomp_action::notify:
      return SCMP_ACT_NOTIFY;
  }
  return fail(errc::invalid_spec, str_cat("seccomp: unknown action ", name));
}

inline result<scmp_compare> seccomp_operator_value(std::string_view name) {
  auto op = oci::parse_seccomp_operator(name);
  if (!op) {
    return fail(errc::invalid_spec, str_cat("seccomp: unknown operator ", name));
  }
  switch (*op) {
    case oci::seccomp_operator::ne:
      return SCMP_CMP_NE;
    case oci::seccomp_operator::lt:
      return SCMP_CMP_LT;
    case oci::seccomp_operator::le:
      return SCMP_CMP_LE;
    case oci::seccomp_operator::eq:
      return SCMP_CMP_EQ;
    case oci::seccomp_operator::ge:
      return SCMP_CMP_GE;
    case oci::seccomp_operator::gt:
      return SCMP_CMP_GT;
    case oci::seccomp_operator::masked_eq:
      return SCMP_CMP_MASKED_EQ;
  }
  return fail(errc::invalid_spec, str_cat("seccomp: unknown operator ", name));
}

/// Spec -> rules, as runc does: syscalls unknown to libseccomp are skipped, rules whose action
/// is the default action are dropped, and several comparisons of the same argument become
/// separate rules (libseccomp ANDs the comparisons of one rule, the spec means OR for these).
inline result<seccomp_filter> translate_seccomp(const oci::linux_seccomp& s) {
  seccomp_filter f;
  f.default_action = KATANA_TRY(seccomp_action_value(s.default_action, s.default_errno_ret));
  f.needs_listener = s.default_action == "SCMP_ACT_NOTIFY";
  for (const std::string& arch : s.architectures) {
    auto name = oci::libseccomp_arch_name(arch);
    if (!name) {
      return fail(errc::invalid_spec, "seccomp: unknown architecture " + arch);
    }
    const std::string n(*name);
    const std::uint32_t token = seccomp_arch_resolve_name(n.c_str());
    if (token == 0) {
      return fail(errc::unsupported, "seccomp: libseccomp does not know architecture " + arch);
    }
    f.architectures.push_back(token);
  }
  for (const std::string& flag : s.flags) {
    auto bit = oci::seccomp_flag(flag);
    if (!bit) {
      return fail(errc::invalid_spec, "seccomp: unknown flag " + flag);
    }
    f.flags |= *bit;
  }
  for (const oci::linux_syscall& sc : s.syscalls) {
    const std::uint32_t action = KATANA_TRY(seccomp_action_value(sc.action, sc.errno_ret));
    if (sc.action == "SCMP_ACT_NOTIFY") {
      f.needs_listener = true;
    }
    if (action == f.default_action) {
      continue;
    }
    std::vector<seccomp_condition> conditions;
    bool same_index = false;
    for (const oci::linux_seccomp_arg& a : sc.args) {
      if (a.index > 5) {
        return fail(errc::invalid_spec, str_cat("seccomp: argument index ", a.index, " > 5"));
      }
      const scmp_compare op = KATANA_TRY(seccomp_operator_value(a.op));
      for (const seccomp_condition& c : conditions) {
        same_index = same_index || c.index == a.index;
      }
      conditions.push_back({a.index, op, a.value, a.value_two});
    }
    for (const std::string& name : sc.names) {
      const int nr = seccomp_syscall_resolve_name(name.c_str());
      if (nr == __NR_SCMP_ERROR) {
        f.unknown_syscalls.push_back(name);
        continue;
      }
      if (same_index) {
        for (const seccomp_condition& c : conditions) {
          f.rules.push_back({name, nr, action, {c}});
        }
      } else {
        f.rules.push_back({name, nr, action, conditions});
      }
    }
  }
  if (f.needs_listener) {
    f.flags |= SECCOMP_FILTER_FLAG_NEW_LISTENER;
  }
  return f;
}

/// libseccomp: the translated filter -> BPF (seccomp_export_bpf through a memfd).
inline result<seccomp_program> compile_seccomp(const seccomp_filter& f) {
  scmp_filter_ctx ctx = seccomp_init(f.default_action);
  if (ctx == nullptr) {
    return fail(errc::invalid_spec, "seccomp: seccomp_init rejected the default action");
  }
  auto release = scope_exit([&]() noexcept { seccomp_release(ctx); });
  // Load the filter raw: no libseccomp flag may change what the program does at load time,
  // but NO_NEW_PRIVS must not be set by libseccomp (init decides) and TSYNC is a load flag.
  if (const int rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0); rc != 0) {
    return fail_errno("seccomp: disable CTL_NNP", -rc);
  }
  for (const std::uint32_t arch : f.architectures) {
    const int rc = seccomp_arch_add(ctx, arch);
    if (rc != 0 && rc != -EEXIST) {
      return fail_errno(str_cat("seccomp: add architecture ", arch), -rc);
    }
  }
  for (const seccomp_rule& r : f.rules) {
    std::vector<scmp_arg_cmp> args;
    args.reserve(r.conditions.size());
    for (const seccomp_condition& c : r.conditions) {
      args.push_back({c.index, c.op, c.a, c.b});
    }
    const int rc = seccomp_rule_add_array(ctx, r.action, r.syscall,
                                          static_cast<unsigned>(args.size()), args.data());
    if (rc != 0) {
      return fail_errno("seccomp: add rule for " + r.name, -rc);
    }
  }
  unique_fd mem(::memfd_create("katana-seccomp", MFD_CLOEXEC));
  if (!mem) {
    return fail_errno("seccomp: memfd_create");
  }
  if (const int rc = seccomp_export_bpf(ctx, mem.get()); rc != 0) {
    return fail_errno("seccomp: seccomp_export_bpf", -rc);
  }
  const off_t size = ::lseek(mem.get(), 0, SEEK_END);
  if (size < 0 || size % static_cast<off_t>(sizeof(sock_filter)) != 0) {
    return fail(errc::internal, "seccomp: exported program has an odd size");
  }
  seccomp_program p;
  p.flags = f.flags;
  p.instructions.resize(static_cast<std::size_t>(size) / sizeof(sock_filter));
  const ssize_t n = ::pread(mem.get(), p.instructions.data(), static_cast<std::size_t>(size), 0);
  if (n != size) {
    return fail_errno("seccomp: read exported program");
  }
  if (p.instructions.size() > BPF_MAXINSNS) {
    return fail(errc::invalid_spec, str_cat("seccomp: program has ", p.instructions.size(),
                                            " instructions, the kernel takes ", BPF_MAXINSNS));
  }
  return p;
}

/// translate + compile.
inline result<seccomp_program> build_seccomp(const oci::linux_seccomp& s) {
  const seccomp_filter f = KATANA_TRY(translate_seccomp(s));
  return compile_seccomp(f);
}

}  // namespace katana::inline v0::container
