// The cgroup v2 device filter: the emitted instructions (a golden listing), their meaning (run
// through a small interpreter of the instructions the emitter uses, against v1 semantics), and
// - as root, where the kernel allows - loading the program, attaching it to a test cgroup in
// the cgroup2 hierarchy and checking that a child in that cgroup cannot open /dev/null.
#include <cerrno>
#include <cstdint>
#include <fcntl.h>
#include <linux/bpf.h>
#include <string>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

#include <katana/cgroup/bpf_devices.hpp>
#include <katana/cgroup/v2.hpp>

#include "catch.hpp"
#include "cgroup_test_support.hpp"

using katana::errc;
namespace cgroup = katana::cgroup;
namespace bpf = katana::cgroup::bpf;
namespace oci = katana::oci;

namespace {

// Runs a device program on struct bpf_cgroup_dev_ctx {access_type, major, minor}; throws on
// anything the emitter should never produce (so a test fails loudly).
int run(const std::vector<bpf::insn>& prog,
        std::uint32_t type,
        std::uint32_t access,
        std::uint32_t major,
        std::uint32_t minor) {
  const std::uint32_t ctx[3] = {(access << 16) | type, major, minor};
  std::uint64_t reg[11] = {};
  std::size_t pc = 0;
  for (int steps = 0; steps < 100000 && pc < prog.size(); ++steps) {
    const bpf::insn& x = prog[pc++];
    const auto d = x.dst();
    const auto s = x.src();
    const auto cls = x.code & 0x07;
    const auto op = x.code & 0xf0;
    const auto imm = static_cast<std::uint64_t>(static_cast<std::int64_t>(x.imm));
    if (x.code == (BPF_LDX | BPF_MEM | BPF_W)) {
      REQUIRE(s == 1);
      REQUIRE(x.off % 4 == 0);
      REQUIRE((x.off >= 0 && x.off <= 8));
      reg[d] = ctx[x.off / 4];
    } else if (cls == BPF_ALU) {
      const std::uint32_t rhs =
          (x.code & BPF_X) ? static_cast<std::uint32_t>(reg[s]) : static_cast<std::uint32_t>(x.imm);
      const auto lhs = static_cast<std::uint32_t>(reg[d]);
      if (op == BPF_MOV) {
        reg[d] = rhs;
      } else if (op == BPF_AND) {
        reg[d] = lhs & rhs;
      } else if (op == BPF_RSH) {
        reg[d] = lhs >> rhs;
      } else {
        FAIL("unexpected ALU op " << op);
      }
    } else if (x.code == (BPF_JMP | BPF_EXIT)) {
      return static_cast<int>(reg[0]);
    } else if (cls == BPF_JMP) {
      const std::uint64_t rhs = (x.code & BPF_X) ? reg[s] : imm;
      bool taken = false;
      if (op == BPF_JNE) {
        taken = reg[d] != rhs;
      } else if (op == BPF_JEQ) {
        taken = reg[d] == rhs;
      } else {
        FAIL("unexpected jump op " << op);
      }
      if (taken) {
        pc += static_cast<std::size_t>(x.off);
      }
    } else {
      FAIL("unexpected instruction code " << static_cast<int>(x.code));
    }
  }
  FAIL("the program ran off its end");
  return -1;
}

constexpr std::uint32_t chr = BPF_DEVCG_DEV_CHAR;
constexpr std::uint32_t blk = BPF_DEVCG_DEV_BLOCK;
constexpr std::uint32_t R = BPF_DEVCG_ACC_READ;
constexpr std::uint32_t W = BPF_DEVCG_ACC_WRITE;
constexpr std::uint32_t M = BPF_DEVCG_ACC_MKNOD;

oci::linux_device_cgroup rule(bool allow,
                              std::string type,
                              std::optional<std::int64_t> major,
                              std::optional<std::int64_t> minor,
                              std::string access) {
  return {allow, std::move(type), major, minor, std::move(access)};
}

// runc's default device rules for a container.
std::vector<oci::linux_device_cgroup> default_rules() {
  return {
      rule(false, "a", std::nullopt, std::nullopt, "rwm"),
      rule(true, "c", std::nullopt, std::nullopt, "m"),
      rule(true, "b", std::nullopt, std::nullopt, "m"),
      rule(true, "c", 1, 3, "rwm"),     // null
      rule(true, "c", 1, 5, "rwm"),     // zero
      rule(true, "c", 1, 7, "rwm"),     // full
      rule(true, "c", 5, 0, "rwm"),     // tty
      rule(true, "c", 1, 8, "rwm"),     // random
      rule(true, "c", 1, 9, "rwm"),     // urandom
      rule(true, "c", 136, -1, "rwm"),  // pts
      rule(true, "c", 5, 2, "rwm"),     // ptmx
  };
}

}  // namespace

TEST_CASE("device_filter emits runc-style blocks, last rule first", "[cgroup][bpf]") {
  auto prog = bpf::device_filter({rule(false, "", std::nullopt, std::nullopt, "rwm"),
                                  rule(true, "c", 1, 3, "rwm"), rule(true, "b", 8, -1, "r")});
  REQUIRE(prog);
  CHECK(bpf::disassemble(*prog) ==
        "0: r2 = *(u32 *)(r1 + 0)\n"
        "1: w2 &= 65535\n"
        "2: r3 = *(u32 *)(r1 + 0)\n"
        "3: w3 >>= 16\n"
        "4: r4 = *(u32 *)(r1 + 4)\n"
        "5: r5 = *(u32 *)(r1 + 8)\n"
        // b 8:* r
        "6: if r2 != 1 goto +6\n"
        "7: w1 = r3\n"
        "8: w1 &= 2\n"
        "9: if r1 != r3 goto +3\n"
        "10: if r4 != 8 goto +2\n"
        "11: w0 = 1\n"
        "12: exit\n"
        // c 1:3 rwm
        "13: if r2 != 2 goto +4\n"
        "14: if r4 != 1 goto +3\n"
        "15: if r5 != 3 goto +2\n"
        "16: w0 = 1\n"
        "17: exit\n"
        // a *:* rwm (deny): matches everything, so it ends the program (the verifier refuses
        // unreachable instructions, so no default block follows)
        "18: w0 = 0\n"
        "19: exit\n");
  // The block layout: jumps land on the next block's first instruction.
  CHECK((*prog)[6] == bpf::jmp_imm(BPF_JNE, bpf::r2, BPF_DEVCG_DEV_BLOCK, 6));
  CHECK((*prog)[6].dst() == 2);
  CHECK((*prog)[9].src() == 3);
}

TEST_CASE("device_filter follows cgroup v1 semantics", "[cgroup][bpf]") {
  const auto prog = *bpf::device_filter(default_rules());
  CHECK(run(prog, chr, R | W, 1, 3) == 1);  // /dev/null
  CHECK(run(prog, chr, R, 1, 9) == 1);
  CHECK(run(prog, chr, R | W, 136, 7) == 1);  // any pts
  CHECK(run(prog, chr, M, 4, 64) == 1);       // mknod of any char device
  CHECK(run(prog, blk, M, 8, 0) == 1);
  CHECK(run(prog, blk, R, 8, 0) == 0);      // reading a disk
  CHECK(run(prog, chr, R, 1, 4) == 0);      // /dev/port
  CHECK(run(prog, chr, R | M, 1, 1) == 0);  // mknod+read of /dev/mem

  // A deny rule matches when any requested access is denied.
  const auto deny_w = *bpf::device_filter(
      {rule(true, "a", std::nullopt, std::nullopt, "rwm"), rule(false, "c", 1, 3, "w")});
  CHECK(run(deny_w, chr, R, 1, 3) == 1);
  CHECK(run(deny_w, chr, W, 1, 3) == 0);
  CHECK(run(deny_w, chr, R | W, 1, 3) == 0);
  CHECK(run(deny_w, chr, W, 1, 4) == 1);
  CHECK(run(deny_w, blk, W, 1, 3) == 1);

  // An allow rule needs every requested access.
  const auto allow_r = *bpf::device_filter({rule(true, "c", 1, 3, "r")});
  CHECK(run(allow_r, chr, R, 1, 3) == 1);
  CHECK(run(allow_r, chr, R | W, 1, 3) == 0);

  // The last matching rule wins; 'a' ignores major/minor, as in v1.
  const auto order =
      *bpf::device_filter({rule(true, "c", 1, 3, "rwm"), rule(false, "a", 1, 3, "rwm")});
  CHECK(run(order, chr, R, 1, 3) == 0);
  CHECK(run(order, chr, R, 9, 9) == 0);
  CHECK(order.size() == 8);  // prologue + the terminal block; the allow rule is unreachable

  // Allow-all in the middle: only the rules after it are emitted.
  const auto mid = *bpf::device_filter({rule(false, "c", 1, 3, "rwm"),
                                        rule(true, "a", std::nullopt, std::nullopt, "rwm"),
                                        rule(false, "c", 1, 5, "w")});
  CHECK(run(mid, chr, R, 1, 3) == 1);
  CHECK(run(mid, chr, W, 1, 5) == 0);
  CHECK(run(mid, chr, R, 1, 5) == 1);

  // No rules: everything is denied (a program is installed only when rules exist).
  const auto none = *bpf::device_filter({});
  CHECK(none.size() == 8);
  CHECK(run(none, chr, R, 1, 3) == 0);
}

TEST_CASE("device_filter refuses bad rules by index", "[cgroup][bpf]") {
  auto r = bpf::device_filter({rule(true, "c", 1, 3, "rwm"), rule(true, "p", 1, 3, "r")});
  REQUIRE_FALSE(r);
  CHECK(r.error().code == errc::invalid_spec);
  CHECK(r.error().message() == "linux.resources.devices[1].type \"p\" is not a, b or c");
  CHECK_FALSE(bpf::device_filter({rule(true, "c", -7, 3, "r")}));
  CHECK_FALSE(bpf::device_filter({rule(true, "c", 1, 3, "q")}));
}

TEST_CASE("the device program loads", "[cgroup][bpf][root]") {
  KATANA_CGROUP_REQUIRE_ROOT();
  const auto prog = *bpf::device_filter(default_rules());
  auto fd = bpf::load_device_program(prog);
  if (!fd && fd.error().code == std::errc::operation_not_permitted) {
    WARN("skipped: the kernel refuses BPF_PROG_LOAD here: " << fd.error().message());
    return;
  }
  INFO(bpf::disassemble(prog));
  INFO((fd ? "" : fd.error().message()));
  REQUIRE(fd);
  CHECK(fd->get() >= 0);
  CHECK((::fcntl(fd->get(), F_GETFD) & FD_CLOEXEC) != 0);
}

TEST_CASE("an attached device program denies /dev/null to a child in the cgroup",
          "[cgroup][bpf][root]") {
  KATANA_CGROUP_REQUIRE_ROOT();
  const auto& l = katana_test::cg::layout();
  if (l.unified.empty()) {
    WARN("skipped: no cgroup2 hierarchy is mounted on this host");
    return;
  }
  const katana_test::cg::scratch parent("bpf");
  cgroup::v2 m({.root = l.unified, .enable = cgroup::enable_policy::needed});
  REQUIRE(m.create({parent / "c", std::nullopt}));
  oci::linux_resources r;
  r.devices = {rule(false, "a", std::nullopt, std::nullopt, "rwm"), rule(true, "c", 1, 5, "rwm")};
  auto applied = m.apply(r);
  if (!applied && applied.error().code == std::errc::operation_not_permitted) {
    WARN("skipped: the kernel refuses the device program: " << applied.error().message());
    return;
  }
  INFO((applied ? "" : applied.error().message()));
  REQUIRE(applied);
  const auto dirfd = cgroup::dir::open(l.unified + "/" + (parent / "c"));
  REQUIRE(dirfd);
  CHECK(bpf::attached_device_programs(dirfd->fd())->size() == 1);
  REQUIRE(m.apply(r));  // replaces, does not stack
  CHECK(bpf::attached_device_programs(dirfd->fd())->size() == 1);

  // The child waits until it is in the cgroup, then reports: 0 = /dev/null denied with EPERM
  // and /dev/zero opened, else the step that went wrong.
  int go[2];
  REQUIRE(::pipe2(go, O_CLOEXEC) == 0);
  katana_test::cg::child_guard child{::fork()};
  REQUIRE(child.pid >= 0);
  if (child.pid == 0) {
    char c;
    ::close(go[1]);
    if (::read(go[0], &c, 1) != 1) {
      ::_exit(10);
    }
    const int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (null_fd >= 0) {
      ::_exit(1);
    }
    if (errno != EPERM) {
      ::_exit(2);
    }
    const int zero_fd = ::open("/dev/zero", O_RDONLY | O_CLOEXEC);
    ::_exit(zero_fd >= 0 ? 0 : 3);
  }
  ::close(go[0]);
  REQUIRE(m.add_task(child.pid));
  REQUIRE(::write(go[1], "x", 1) == 1);
  ::close(go[1]);
  int status = 0;
  REQUIRE(::waitpid(child.pid, &status, 0) == child.pid);
  child.pid = -1;
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);  // 1: /dev/null opened, 2: not EPERM, 3: /dev/zero denied
  REQUIRE(m.remove());
}
