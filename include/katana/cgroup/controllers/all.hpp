// Every controller, in the order managers apply them (cpuset before cpu, devices late, unified
// last so that it wins), and validate_resources(), which checks a whole linux.resources before
// anything is written.
#pragma once

#include <katana/cgroup/controllers/blkio.hpp>
#include <katana/cgroup/controllers/controller.hpp>
#include <katana/cgroup/controllers/cpu.hpp>
#include <katana/cgroup/controllers/cpuset.hpp>
#include <katana/cgroup/controllers/devices.hpp>
#include <katana/cgroup/controllers/freezer.hpp>
#include <katana/cgroup/controllers/hugetlb.hpp>
#include <katana/cgroup/controllers/memory.hpp>
#include <katana/cgroup/controllers/network.hpp>
#include <katana/cgroup/controllers/pids.hpp>
#include <katana/cgroup/controllers/rdma.hpp>
#include <katana/cgroup/controllers/unified.hpp>

namespace katana::inline v0::cgroup {

/// A list of controller types; for_each calls f(type_tag<K>{}) in order.
template <class... K>
struct controller_list {
  template <class F>
  static status for_each(F&& f) {
    status st;
    // Stops at the first error.
    (void)((st = f(static_cast<K*>(nullptr)), static_cast<bool>(st)) && ...);
    return st;
  }
};

using resource_controllers = controller_list<controllers::cpuset,
                                             controllers::cpu,
                                             controllers::memory,
                                             controllers::pids,
                                             controllers::blkio,
                                             controllers::hugetlb,
                                             controllers::net_cls,
                                             controllers::net_prio,
                                             controllers::rdma,
                                             controllers::devices,
                                             controllers::unified>;

static_assert(controller<controllers::cpu> && controller<controllers::cpuset> &&
              controller<controllers::memory> && controller<controllers::pids> &&
              controller<controllers::blkio> && controller<controllers::hugetlb> &&
              controller<controllers::devices> && controller<controllers::net_cls> &&
              controller<controllers::net_prio> && controller<controllers::rdma> &&
              controller<controllers::unified> && controller<controllers::cpuacct>);

/// Checks every part of the resources without touching the host.
inline status validate_resources(const oci::linux_resources& r) {
  return resource_controllers::for_each([&](auto* k) {
    using K = std::remove_pointer_t<decltype(k)>;
    return K::validate(r);
  });
}

}  // namespace katana::inline v0::cgroup
