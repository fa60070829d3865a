// Architectures katana knows: tags, their generated traits, the host's tag, and lookup by
// name at run time.
//
//   static_assert(arch::traits<arch::ppc64le>::memory_block_mib == 256);
//   const arch::description* d = arch::find("aarch64");
//   arch::visit(arch::host_id, [](auto tag) { return arch::traits<decltype(tag)>::qemu_binary; });
#pragma once

#include <string_view>
#include <tuple>
#include <utility>

#include <katana/arch/generated/aarch64.hpp>
#include <katana/arch/generated/ppc64le.hpp>
#include <katana/arch/generated/s390x.hpp>
#include <katana/arch/generated/x86_64.hpp>
#include <katana/arch/tags.hpp>
#include <katana/arch/traits.hpp>

namespace katana::inline v0::arch {

/// Every architecture tag, in a fixed order.
using all = std::tuple<x86_64, aarch64, ppc64le, s390x>;

enum class id { x86_64, aarch64, ppc64le, s390x };

/// Calls f(tag) with the tag of `a`.
template <class F>
constexpr decltype(auto) visit(id a, F&& f) {
  switch (a) {
    case id::aarch64:
      return std::forward<F>(f)(aarch64{});
    case id::ppc64le:
      return std::forward<F>(f)(ppc64le{});
    case id::s390x:
      return std::forward<F>(f)(s390x{});
    case id::x86_64:
      break;
  }
  return std::forward<F>(f)(x86_64{});
}

/// The table of `a`.
constexpr const description& describe(id a) noexcept {
  switch (a) {
    case id::aarch64:
      return traits<aarch64>::value;
    case id::ppc64le:
      return traits<ppc64le>::value;
    case id::s390x:
      return traits<s390x>::value;
    case id::x86_64:
      break;
  }
  return traits<x86_64>::value;
}

/// The table of an architecture by its uname -m name (also Go's amd64/arm64), or null.
constexpr const description* find(std::string_view name) noexcept {
  if (name == "amd64") {
    name = "x86_64";
  } else if (name == "arm64") {
    name = "aarch64";
  }
  for (const id a : {id::x86_64, id::aarch64, id::ppc64le, id::s390x}) {
    if (describe(a).name == name) {
      return &describe(a);
    }
  }
  return nullptr;
}

#if defined(__x86_64__)
using host = x86_64;
inline constexpr id host_id = id::x86_64;
#elif defined(__aarch64__)
using host = aarch64;
inline constexpr id host_id = id::aarch64;
#elif defined(__powerpc64__) && defined(__LITTLE_ENDIAN__)
using host = ppc64le;
inline constexpr id host_id = id::ppc64le;
#elif defined(__s390x__)
using host = s390x;
inline constexpr id host_id = id::s390x;
#else
#error "katana supports x86_64, aarch64, ppc64le and s390x hosts"
#endif

/// The architecture katana is compiled for (guests run the host's architecture).
using host_arch = host;

}  // namespace katana::inline v0::arch
