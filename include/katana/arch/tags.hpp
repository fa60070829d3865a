// Architecture tags: the types `traits<Arch>` is specialised on.
#pragma once

#include <katana/config.hpp>

namespace katana::inline v0::arch {

struct x86_64 {};
struct aarch64 {};
struct ppc64le {};
struct s390x {};

}  // namespace katana::inline v0::arch
