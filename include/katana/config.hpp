// Project-wide configuration: version, ABI namespace and dependency workarounds.
#pragma once

// Boost 1.74's asio/awaitable.hpp uses std::exchange without including <utility>.
#include <utility>

#define KATANA_VERSION_MAJOR 0
#define KATANA_VERSION_MINOR 1
#define KATANA_VERSION_PATCH 0
#define KATANA_VERSION_STRING "0.1.0"

// Everything lives in katana::inline v0 so incompatible builds never link together silently.
namespace katana::inline v0 {
inline constexpr const char* version_string = KATANA_VERSION_STRING;
}  // namespace katana::inline v0
