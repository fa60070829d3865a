#include <sys/mount.h>

#include <katana/container/mount_options.hpp>

#include "catch.hpp"

namespace kc = katana::container;

TEST_CASE("mount_options: flags, clears, propagation, recursive attrs and data", "[container]") {
  auto o = kc::parse_mount_options({"nosuid", "noexec", "nodev", "ro", "mode=755", "size=64k",
                                    "rslave", "private", "rro", "rnosuid", "strictatime"});
  REQUIRE(o);
  CHECK(o->flags == (MS_NOSUID | MS_NOEXEC | MS_NODEV | MS_RDONLY | MS_STRICTATIME));
  CHECK(o->data == "mode=755,size=64k");
  CHECK(o->propagation == std::vector<unsigned long>{MS_SLAVE | MS_REC, MS_PRIVATE});
  CHECK(o->attr_set == (0x1U | 0x2U));
  CHECK(o->attr_clr == 0);
  CHECK_FALSE(o->bind());
}

TEST_CASE("mount_options: later options override earlier ones", "[container]") {
  auto o = kc::parse_mount_options({"ro", "rw", "nosuid", "suid", "noatime", "atime"});
  REQUIRE(o);
  CHECK(o->flags == 0);
  CHECK(o->clear_flags == (MS_RDONLY | MS_NOSUID | MS_NOATIME));
  auto r = kc::parse_mount_options({"rro", "rrw"});
  REQUIRE(r);
  CHECK(r->attr_set == 0);
  CHECK(r->attr_clr == 0x1);
}

TEST_CASE("mount_options: bind, rbind and atime attributes", "[container]") {
  auto b = kc::parse_mount_options({"bind"});
  REQUIRE(b);
  CHECK(b->bind());
  CHECK_FALSE(b->recursive());
  auto rb = kc::parse_mount_options({"rbind", "ro"});
  REQUIRE(rb);
  CHECK(rb->bind());
  CHECK(rb->recursive());
  CHECK((rb->flags & MS_RDONLY) != 0);
  auto a = kc::parse_mount_options({"rnoatime"});
  REQUIRE(a);
  CHECK(a->attr_set == 0x10);
  CHECK(a->attr_clr == 0x70);
  CHECK(kc::parse_mount_options({"defaults"})->flags == 0);
}

TEST_CASE("mount_options: idmap and tmpcopyup are reported as unsupported", "[container]") {
  auto i = kc::parse_mount_options({"idmap"});
  REQUIRE_FALSE(i);
  CHECK(i.error().code == katana::errc::unsupported);
  CHECK_FALSE(kc::parse_mount_options({"tmpcopyup"}));
}
