// The one place tests include Catch2 from (v2 in Debian 12), so moving to v3 is a one-file change.
#pragma once

#include <catch2/catch.hpp>
