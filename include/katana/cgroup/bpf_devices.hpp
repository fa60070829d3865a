// cgroup v2 device control: a BPF_PROG_TYPE_CGROUP_DEVICE program built from OCI device rules
// (the instruction emitter runc's devicefilter.go and crun's ebpf.c write by hand), loaded with
// bpf(BPF_PROG_LOAD) and attached with BPF_CGROUP_DEVICE, replacing the programs this manager
// attached before.
//
// Semantics (cgroup v1's devices.allow/deny, as runc and crun implement them on v2): the rules
// are tried last to first and the first that matches decides; nothing matching is denied.
// A rule matches the device type ('a' matches all and ignores major/minor), the major and minor
// when given (-1 or absent is a wildcard), and the access: an allow rule needs every requested
// access in its set, a deny rule matches when any requested access is in its set.
#pragma once

#include <bit>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <limits>
#include <linux/bpf.h>
#include <span>
#include <string>
#include <string_view>
#include <sys/syscall.h>
#include <unistd.h>
#include <vector>

#include <katana/config.hpp>
#include <katana/core/error.hpp>
#include <katana/core/str_cat.hpp>
#include <katana/core/try.hpp>
#include <katana/core/unique_fd.hpp>
#include <katana/oci/spec.hpp>

namespace katana::inline v0::cgroup::bpf {

/// struct bpf_insn without bitfields (regs packs dst_reg and src_reg the way the host's
/// bitfields do), so it can be built in constexpr code and compared.
struct insn {
  std::uint8_t code = 0;
  std::uint8_t regs = 0;
  std::int16_t off = 0;
  std::int32_t imm = 0;

  [[nodiscard]] constexpr std::uint8_t dst() const noexcept {
    return std::endian::native == std::endian::little ? regs & 0x0f : regs >> 4;
  }
  [[nodiscard]] constexpr std::uint8_t src() const noexcept {
    return std::endian::native == std::endian::little ? regs >> 4 : regs & 0x0f;
  }
  bool operator==(const insn&) const = default;
};
static_assert(sizeof(insn) == sizeof(bpf_insn));

enum reg : std::uint8_t { r0, r1, r2, r3, r4, r5 };

constexpr std::uint8_t pack_regs(std::uint8_t dst, std::uint8_t src) noexcept {
  return std::endian::native == std::endian::little ? static_cast<std::uint8_t>((src << 4) | dst)
                                                    : static_cast<std::uint8_t>((dst << 4) | src);
}

// The few instruction forms a device filter needs (the kernel's filter.h macros).
constexpr insn ldx_w(reg dst, reg src, std::int16_t off) noexcept {
  return {BPF_LDX | BPF_MEM | BPF_W, pack_regs(dst, src), off, 0};
}
constexpr insn alu32_imm(std::uint8_t op, reg dst, std::int32_t imm) noexcept {
  return {static_cast<std::uint8_t>(BPF_ALU | op | BPF_K), pack_regs(dst, 0), 0, imm};
}
constexpr insn mov32_reg(reg dst, reg src) noexcept {
  return {BPF_ALU | BPF_MOV | BPF_X, pack_regs(dst, src), 0, 0};
}
constexpr insn jmp_imm(std::uint8_t op, reg dst, std::int32_t imm, std::int16_t off) noexcept {
  return {static_cast<std::uint8_t>(BPF_JMP | op | BPF_K), pack_regs(dst, 0), off, imm};
}
constexpr insn jmp_reg(std::uint8_t op, reg dst, reg src, std::int16_t off) noexcept {
  return {static_cast<std::uint8_t>(BPF_JMP | op | BPF_X), pack_regs(dst, src), off, 0};
}
constexpr insn exit_insn() noexcept {
  return {BPF_JMP | BPF_EXIT, 0, 0, 0};
}

/// One checked rule: bpf type (0 = any), access bits, major/minor (-1 = any).
struct device_rule {
  bool allow = false;
  std::int32_t type = 0;  // BPF_DEVCG_DEV_BLOCK, BPF_DEVCG_DEV_CHAR, 0 for 'a'
  std::int32_t access = 0;
  std::int64_t major = -1;
  std::int64_t minor = -1;
};

/// Checks an OCI rule: type a/b/c (empty is a), access a subset of "rwm" (empty is rwm),
/// major/minor -1, absent, or in [0, INT32_MAX]. errc::invalid_spec naming the field.
inline result<device_rule> check_rule(const oci::linux_device_cgroup& r, std::size_t index) {
  const auto field = [&](std::string_view f) {
    return str_cat("linux.resources.devices[", index, "].", f);
  };
  device_rule out;
  out.allow = r.allow;
  if (r.type == "c") {
    out.type = BPF_DEVCG_DEV_CHAR;
  } else if (r.type == "b") {
    out.type = BPF_DEVCG_DEV_BLOCK;
  } else if (!r.type.empty() && r.type != "a") {
    return fail(errc::invalid_spec, field("type") + " \"" + r.type + "\" is not a, b or c");
  }
  for (const char c : r.access.empty() ? std::string_view("rwm") : std::string_view(r.access)) {
    switch (c) {
      case 'r':
        out.access |= BPF_DEVCG_ACC_READ;
        break;
      case 'w':
        out.access |= BPF_DEVCG_ACC_WRITE;
        break;
      case 'm':
        out.access |= BPF_DEVCG_ACC_MKNOD;
        break;
      default:
        return fail(errc::invalid_spec,
                    field("access") + " \"" + r.access + "\" is not a subset of \"rwm\"");
    }
  }
  const auto number = [&](std::string_view f, const std::optional<std::int64_t>& v,
                          std::int64_t& to) -> status {
    if (!v || *v == -1) {
      return {};
    }
    if (*v < 0 || *v > std::numeric_limits<std::int32_t>::max()) {
      return fail(errc::invalid_spec, str_cat(field(f), " (", *v, ") is out of range"));
    }
    to = *v;
    return {};
  };
  KATANA_TRY(number("major", r.major, out.major));
  KATANA_TRY(number("minor", r.minor, out.minor));
  if (out.type == 0) {
    out.major = out.minor = -1;  // as in v1: 'a' is every device
  }
  return out;
}

inline constexpr std::int32_t all_access =
    BPF_DEVCG_ACC_READ | BPF_DEVCG_ACC_WRITE | BPF_DEVCG_ACC_MKNOD;

namespace detail {
inline result<std::vector<insn>> finish(std::vector<insn> p, std::size_t rules) {
  if (p.size() > BPF_MAXINSNS) {
    return fail(errc::invalid_spec,
                str_cat("linux.resources.devices: ", rules, " rules need more than ", BPF_MAXINSNS,
                        " BPF instructions"));
  }
  return p;
}
}  // namespace detail

/// The filter for `rules`. Registers: r2 = type, r3 = access, r4 = major, r5 = minor (from
/// struct bpf_cgroup_dev_ctx at r1); each rule is a block that jumps to the next block on a
/// mismatch and returns its verdict otherwise; the last block denies. A rule that matches
/// every request ends the program (the rules before it can never decide).
inline result<std::vector<insn>> device_filter(const std::vector<oci::linux_device_cgroup>& rules) {
  std::vector<insn> p = {
      ldx_w(r2, r1, 0),                // access_type
      alu32_imm(BPF_AND, r2, 0xFFFF),  // type: lower 16 bits
      ldx_w(r3, r1, 0),                //
      alu32_imm(BPF_RSH, r3, 16),      // access: upper 16 bits
      ldx_w(r4, r1, 4),                // major
      ldx_w(r5, r1, 8),                // minor
  };
  for (std::size_t i = rules.size(); i-- > 0;) {
    const device_rule r = KATANA_TRY(check_rule(rules[i], i));
    // Each check is emitted with a placeholder offset, patched to the end of the block.
    std::vector<insn> block;
    std::vector<std::size_t> jumps;
    const auto jump = [&](insn j) {
      jumps.push_back(block.size());
      block.push_back(j);
    };
    if (r.type != 0) {
      jump(jmp_imm(BPF_JNE, r2, r.type, 0));
    }
    if (r.access != all_access) {
      block.push_back(mov32_reg(r1, r3));
      block.push_back(alu32_imm(BPF_AND, r1, r.access));
      if (r.allow) {
        jump(jmp_reg(BPF_JNE, r1, r3, 0));  // some requested access is not allowed here
      } else {
        jump(jmp_imm(BPF_JEQ, r1, 0, 0));  // none of the requested access is denied here
      }
    }
    if (r.major >= 0) {
      jump(jmp_imm(BPF_JNE, r4, static_cast<std::int32_t>(r.major), 0));
    }
    if (r.minor >= 0) {
      jump(jmp_imm(BPF_JNE, r5, static_cast<std::int32_t>(r.minor), 0));
    }
    block.push_back(alu32_imm(BPF_MOV, r0, r.allow ? 1 : 0));
    block.push_back(exit_insn());
    for (const std::size_t j : jumps) {
      block[j].off = static_cast<std::int16_t>(block.size() - j - 1);
    }
    p.insert(p.end(), block.begin(), block.end());
    if (jumps.empty()) {
      // Matches everything: whatever follows is unreachable, and the verifier refuses
      // unreachable instructions.
      return detail::finish(std::move(p), rules.size());
    }
  }
  p.push_back(alu32_imm(BPF_MOV, r0, 0));
  p.push_back(exit_insn());
  return detail::finish(std::move(p), rules.size());
}

/// A readable listing ("r2 &= 0xffff", "if r4 != 1 goto +2") for logs and test failures.
inline std::string disassemble(std::span<const insn> prog) {
  std::string out;
  for (std::size_t i = 0; i < prog.size(); ++i) {
    const insn& x = prog[i];
    const auto r = [](std::uint8_t n) {
      return str_cat("r", static_cast<int>(n));
    };
    const auto cls = x.code & 0x07;
    const auto op = x.code & 0xf0;
    std::string line;
    if (x.code == (BPF_LDX | BPF_MEM | BPF_W)) {
      line = str_cat(r(x.dst()), " = *(u32 *)(", r(x.src()), " + ", x.off, ")");
    } else if (cls == BPF_ALU) {
      const std::string rhs = (x.code & BPF_X) ? r(x.src()) : str_cat(x.imm);
      const std::string_view sym = op == BPF_MOV   ? "="
                                   : op == BPF_AND ? "&="
                                   : op == BPF_RSH ? ">>="
                                                   : "?=";
      line = str_cat("w", static_cast<int>(x.dst()), " ", sym, " ", rhs);
    } else if (x.code == (BPF_JMP | BPF_EXIT)) {
      line = "exit";
    } else if (cls == BPF_JMP) {
      const std::string rhs = (x.code & BPF_X) ? r(x.src()) : str_cat(x.imm);
      const std::string_view sym = op == BPF_JNE ? "!=" : op == BPF_JEQ ? "==" : "?";
      line = str_cat("if ", r(x.dst()), " ", sym, " ", rhs, " goto +", x.off);
    } else {
      line = str_cat("code ", static_cast<int>(x.code));
    }
    out += str_cat(i, ": ", line, "\n");
  }
  return out;
}

namespace detail {
inline long sys_bpf(int cmd, bpf_attr& attr) noexcept {
  return ::syscall(__NR_bpf, cmd, &attr, sizeof attr);
}
template <class T>
std::uint64_t ptr(T* p) noexcept {
  return static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(p));
}
}  // namespace detail

/// bpf(BPF_PROG_LOAD) of a device program. A refusal names why: the errno and, when the
/// verifier said something, its log.
inline result<unique_fd> load_device_program(std::span<const insn> prog) {
  static constexpr char license[] = "Apache";
  std::string log(64 * 1024, '\0');
  bpf_attr attr;
  std::memset(&attr, 0, sizeof attr);
  attr.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
  attr.insns = detail::ptr(prog.data());
  attr.insn_cnt = static_cast<std::uint32_t>(prog.size());
  attr.license = detail::ptr(license);
  std::memcpy(attr.prog_name, "katana_devices", sizeof "katana_devices");
  long fd = detail::sys_bpf(BPF_PROG_LOAD, attr);
  if (fd < 0 && errno != EPERM && errno != ENOSYS) {
    // Again with the verifier's log, to say why.
    attr.log_level = 1;
    attr.log_buf = detail::ptr(log.data());
    attr.log_size = static_cast<std::uint32_t>(log.size());
    fd = detail::sys_bpf(BPF_PROG_LOAD, attr);
  }
  if (fd < 0) {
    const int err = errno;
    log.resize(std::strlen(log.c_str()));
    std::string why = "bpf(BPF_PROG_LOAD) of the BPF_PROG_TYPE_CGROUP_DEVICE program";
    if (err == EPERM) {
      why += " (needs CAP_SYS_ADMIN or CAP_BPF; a seccomp profile may deny bpf)";
    } else if (err == ENOSYS) {
      why += " (the kernel has no bpf(2))";
    } else if (err == EINVAL) {
      why += " (the kernel lacks CONFIG_CGROUP_BPF, or refused the program)";
    }
    if (!log.empty()) {
      why += ": verifier: " + log;
    }
    return fail_errno(why, err);
  }
  return unique_fd(static_cast<int>(fd));
}

/// The ids of the device programs attached to a cgroup (BPF_PROG_QUERY).
inline result<std::vector<std::uint32_t>> attached_device_programs(int cgroup_fd) {
  std::vector<std::uint32_t> ids(64);
  bpf_attr attr;
  std::memset(&attr, 0, sizeof attr);
  attr.query.target_fd = static_cast<std::uint32_t>(cgroup_fd);
  attr.query.attach_type = BPF_CGROUP_DEVICE;
  attr.query.prog_ids = detail::ptr(ids.data());
  attr.query.prog_cnt = static_cast<std::uint32_t>(ids.size());
  if (detail::sys_bpf(BPF_PROG_QUERY, attr) < 0) {
    return fail_errno("bpf(BPF_PROG_QUERY) of the cgroup's device programs");
  }
  ids.resize(attr.query.prog_cnt);
  return ids;
}

/// Attaches `prog_fd` to the cgroup (BPF_F_ALLOW_MULTI), then detaches the device programs
/// that were there before, so there is no window without a filter (runc's order).
inline status attach_device_program(int cgroup_fd, int prog_fd) {
  const auto old = attached_device_programs(cgroup_fd).value_or(std::vector<std::uint32_t>{});
  const auto attach = [&] {
    bpf_attr attr;
    std::memset(&attr, 0, sizeof attr);
    attr.target_fd = static_cast<std::uint32_t>(cgroup_fd);
    attr.attach_bpf_fd = static_cast<std::uint32_t>(prog_fd);
    attr.attach_type = BPF_CGROUP_DEVICE;
    attr.attach_flags = BPF_F_ALLOW_MULTI;
    return detail::sys_bpf(BPF_PROG_ATTACH, attr) == 0;
  };
  const auto detach = [&](std::uint32_t id) {
    bpf_attr get;
    std::memset(&get, 0, sizeof get);
    get.prog_id = id;
    const unique_fd old_fd(static_cast<int>(detail::sys_bpf(BPF_PROG_GET_FD_BY_ID, get)));
    if (!old_fd) {
      return;
    }
    bpf_attr attr;
    std::memset(&attr, 0, sizeof attr);
    attr.target_fd = static_cast<std::uint32_t>(cgroup_fd);
    attr.attach_bpf_fd = static_cast<std::uint32_t>(old_fd.get());
    attr.attach_type = BPF_CGROUP_DEVICE;
    (void)detail::sys_bpf(BPF_PROG_DETACH, attr);
  };
  if (!attach()) {
    const int err = errno;
    if (old.empty()) {
      return fail_errno("bpf(BPF_PROG_ATTACH, BPF_CGROUP_DEVICE)", err);
    }
    // Someone attached without BPF_F_ALLOW_MULTI: replace theirs.
    for (const auto id : old) {
      detach(id);
    }
    if (!attach()) {
      return fail_errno("bpf(BPF_PROG_ATTACH, BPF_CGROUP_DEVICE)");
    }
    return {};
  }
  for (const auto id : old) {
    detach(id);
  }
  return {};
}

/// device_filter + load + attach: the v2 devices "controller".
inline status apply_device_rules(int cgroup_fd,
                                 const std::vector<oci::linux_device_cgroup>& rules) {
  const auto prog = KATANA_TRY(device_filter(rules));
  const unique_fd fd = KATANA_TRY(load_device_program(prog));
  return attach_device_program(cgroup_fd, fd.get());
}

}  // namespace katana::inline v0::cgroup::bpf
