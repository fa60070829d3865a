// OCI capability names -> the bit masks capset(2), PR_CAPBSET_DROP and PR_CAP_AMBIENT take.
// Pure: no I/O.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <katana/config.hpp>
#include <katana/container/syscalls.hpp>
#include <katana/core/error.hpp>
#include <katana/core/try.hpp>
#include <katana/oci/names.hpp>
#include <katana/oci/spec.hpp>

namespace katana::inline v0::container {

/// The mask of a list of capability names ("CAP_KILL" ...); unknown names are errors.
inline result<std::uint64_t> capability_mask(const std::vector<std::string>& names,
                                             std::string_view set = "capabilities") {
  std::uint64_t mask = 0;
  for (const std::string& n : names) {
    auto number = oci::capability_number(n);
    if (!number) {
      return fail(errc::invalid_spec,
                  "process.capabilities." + std::string(set) + ": unknown capability " + n);
    }
    mask |= std::uint64_t{1} << static_cast<unsigned>(*number);
  }
  return mask;
}

/// All five sets.
inline result<capability_masks> capability_sets(const oci::linux_capabilities& caps) {
  capability_masks m;
  m.bounding = KATANA_TRY(capability_mask(caps.bounding, "bounding"));
  m.effective = KATANA_TRY(capability_mask(caps.effective, "effective"));
  m.inheritable = KATANA_TRY(capability_mask(caps.inheritable, "inheritable"));
  m.permitted = KATANA_TRY(capability_mask(caps.permitted, "permitted"));
  m.ambient = KATANA_TRY(capability_mask(caps.ambient, "ambient"));
  return m;
}

/// Every capability the kernel headers katana was built with know (bits 0..last_capability).
inline constexpr std::uint64_t all_capabilities =
    (std::uint64_t{1} << (static_cast<unsigned>(oci::last_capability) + 1)) - 1;

}  // namespace katana::inline v0::container
