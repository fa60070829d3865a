#include <katana/container/seccomp.hpp>

#include "catch.hpp"

namespace kc = katana::container;
namespace oci = katana::oci;

namespace {
oci::linux_syscall rule(std::vector<std::string> names,
                        std::string action,
                        std::vector<oci::linux_seccomp_arg> args = {},
                        std::optional<std::uint32_t> errno_ret = std::nullopt) {
  oci::linux_syscall s;
  s.names = std::move(names);
  s.action = std::move(action);
  s.args = std::move(args);
  s.errno_ret = errno_ret;
  return s;
}
}  // namespace

TEST_CASE("seccomp: actions, errno values, flags and architectures translate", "[container]") {
  oci::linux_seccomp s;
  s.default_action = "SCMP_ACT_ERRNO";
  s.default_errno_ret = 38;
  s.architectures = {"SCMP_ARCH_X86_64", "SCMP_ARCH_X86"};
  s.flags = {"SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG",
             "SECCOMP_FILTER_FLAG_SPEC_ALLOW"};
  s.syscalls = {
      rule({"read", "write"}, "SCMP_ACT_ALLOW"), rule({"mkdirat"}, "SCMP_ACT_ERRNO", {}, 1),
      rule({"ptrace"}, "SCMP_ACT_TRACE", {}, 7), rule({"reboot"}, "SCMP_ACT_KILL_PROCESS"),
      rule({"swapon"}, "SCMP_ACT_KILL"),         rule({"kexec_load"}, "SCMP_ACT_TRAP"),
      rule({"getpid"}, "SCMP_ACT_LOG"),          rule({"no_such_syscall_x"}, "SCMP_ACT_ALLOW"),
      rule({"close"}, "SCMP_ACT_ERRNO", {}, 38)};  // == default: dropped
  auto f = kc::translate_seccomp(s);
  REQUIRE(f);
  CHECK(f->default_action == SCMP_ACT_ERRNO(38));
  CHECK(f->architectures.size() == 2);
  CHECK(f->flags ==
        (SECCOMP_FILTER_FLAG_TSYNC | SECCOMP_FILTER_FLAG_LOG | SECCOMP_FILTER_FLAG_SPEC_ALLOW));
  REQUIRE(f->rules.size() == 8);
  CHECK(f->rules[0].action == SCMP_ACT_ALLOW);
  CHECK(f->rules[2].name == "mkdirat");
  CHECK(f->rules[2].action == SCMP_ACT_ERRNO(1));
  CHECK(f->rules[3].action == SCMP_ACT_TRACE(7));
  CHECK(f->rules[4].action == SCMP_ACT_KILL_PROCESS);
  CHECK(f->rules[5].action == SCMP_ACT_KILL_THREAD);
  CHECK(f->rules[6].action == SCMP_ACT_TRAP);
  CHECK(f->rules[7].action == SCMP_ACT_LOG);
  CHECK(f->unknown_syscalls == std::vector<std::string>{"no_such_syscall_x"});
  CHECK_FALSE(f->needs_listener);
  auto p = kc::compile_seccomp(*f);
  REQUIRE(p);
  CHECK(p->instructions.size() > 10);
  CHECK(p->prog().len == p->instructions.size());
}

TEST_CASE("seccomp: argument comparisons, MASKED_EQ and same-index splitting", "[container]") {
  oci::linux_seccomp s;
  s.default_action = "SCMP_ACT_ALLOW";
  s.syscalls = {
      rule({"personality"}, "SCMP_ACT_ERRNO",
           {{0, 0x8, 0, "SCMP_CMP_EQ"}, {0, 0xffffffff, 0, "SCMP_CMP_EQ"}}),
      rule({"clone"}, "SCMP_ACT_ERRNO", {{0, 0x7e020000, 0, "SCMP_CMP_MASKED_EQ"}}),
      rule({"socket"}, "SCMP_ACT_ERRNO", {{0, 40, 0, "SCMP_CMP_NE"}, {1, 3, 0, "SCMP_CMP_GE"}}),
  };
  auto f = kc::translate_seccomp(s);
  REQUIRE(f);
  REQUIRE(f->rules.size() == 4);
  CHECK(f->rules[0].conditions.size() == 1);  // split: same argument index twice
  CHECK(f->rules[1].conditions.size() == 1);
  CHECK(f->rules[1].conditions[0].a == 0xffffffff);
  CHECK(f->rules[2].conditions[0].op == SCMP_CMP_MASKED_EQ);
  CHECK(f->rules[2].conditions[0].a == 0x7e020000);
  CHECK(f->rules[3].conditions.size() == 2);
  CHECK(f->rules[3].conditions[1].op == SCMP_CMP_GE);
  CHECK(kc::compile_seccomp(*f));
}

TEST_CASE("seccomp: NOTIFY asks for a listener, bad names are errors", "[container]") {
  oci::linux_seccomp s;
  s.default_action = "SCMP_ACT_ALLOW";
  s.syscalls = {rule({"mount"}, "SCMP_ACT_NOTIFY")};
  auto f = kc::translate_seccomp(s);
  REQUIRE(f);
  CHECK(f->needs_listener);
  CHECK((f->flags & SECCOMP_FILTER_FLAG_NEW_LISTENER) != 0);

  s.syscalls = {rule({"mount"}, "SCMP_ACT_FLY")};
  CHECK_FALSE(kc::translate_seccomp(s));
  s.syscalls = {rule({"mount"}, "SCMP_ACT_ERRNO", {{0, 1, 0, "SCMP_CMP_ALMOST"}})};
  CHECK_FALSE(kc::translate_seccomp(s));
  s.syscalls = {rule({"mount"}, "SCMP_ACT_ERRNO", {{6, 1, 0, "SCMP_CMP_EQ"}})};
  CHECK_FALSE(kc::translate_seccomp(s));
  s.syscalls.clear();
  s.architectures = {"SCMP_ARCH_VAX"};
  CHECK_FALSE(kc::translate_seccomp(s));
}
