#include <katana/container/capabilities.hpp>
#include <katana/container/console.hpp>
#include <katana/container/container.hpp>
#include <katana/container/hooks.hpp>
#include <katana/container/init.hpp>
#include <katana/container/init_config.hpp>
#include <katana/container/launch.hpp>
#include <katana/container/mount_options.hpp>
#include <katana/container/mount_plan.hpp>
#include <katana/container/recording_syscalls.hpp>
#include <katana/container/seccomp.hpp>
#include <katana/container/state.hpp>
#include <katana/container/state_json.hpp>
#include <katana/container/syscalls.hpp>

#include "catch.hpp"

template class katana::container::init_steps<katana::container::recording_syscalls>;
template class katana::container::init_steps<katana::container::linux_syscalls>;
template class katana::container::basic_container<katana::container::linux_syscalls>;
