// The edge between Kata's agent protocol (protobuf, package grpc) and katana's types: the OCI
// spec of oci.proto <-> katana::oci::spec, Storage, Device, and the stats and details the
// agent answers. Protobuf messages never get past this file into the agent's logic.
//
// proto3 has no presence for scalars; like Kata's grpc_to_oci, a zero number means "not set"
// for the optional limits of the spec (a memory limit of 0, a CPU quota of 0, ...).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <katana/agent/copy_file.hpp>
#include <katana/agent/devices.hpp>
#include <katana/agent/engine.hpp>
#include <katana/agent/network.hpp>
#include <katana/agent/sandbox.hpp>
#include <katana/agent/storage.hpp>
#include <katana/oci/spec.hpp>

// glibc's major()/minor() macros (sys/sysmacros.h) collide with LinuxDevice's accessors.
#undef major
#undef minor
#include "agent.pb.h"
#include "oci.pb.h"

namespace katana::inline v0::agent::convert {

namespace detail {
template <class Repeated>
std::vector<std::string> strings(const Repeated& r) {
  return {r.begin(), r.end()};
}
template <class Repeated>
void put_strings(Repeated* out, const std::vector<std::string>& in) {
  for (const auto& s : in) {
    out->Add(std::string(s));
  }
}
template <class T, class N>
std::optional<T> nonzero(N v) {
  if (v == 0) {
    return std::nullopt;
  }
  return static_cast<T>(v);
}
}  // namespace detail

// ---- protobuf -> katana --------------------------------------------------------------------

inline oci::process from_pb(const grpc::Process& p) {
  oci::process o;
  o.terminal = p.terminal();
  if (p.has_consolesize()) {
    o.console_size = oci::console_size{p.consolesize().height(), p.consolesize().width()};
  }
  if (p.has_user()) {
    o.user.uid = p.user().uid();
    o.user.gid = p.user().gid();
    o.user.additional_gids.assign(p.user().additionalgids().begin(),
                                  p.user().additionalgids().end());
    o.user.username = p.user().username();
  }
  o.args = detail::strings(p.args());
  o.env = detail::strings(p.env());
  o.cwd = p.cwd();
  if (p.has_capabilities()) {
    const auto& c = p.capabilities();
    o.capabilities =
        oci::linux_capabilities{detail::strings(c.bounding()), detail::strings(c.effective()),
                                detail::strings(c.inheritable()), detail::strings(c.permitted()),
                                detail::strings(c.ambient())};
  }
  for (const auto& r : p.rlimits()) {
    o.rlimits.push_back({r.type(), r.hard(), r.soft()});
  }
  o.no_new_privileges = p.nonewprivileges();
  o.apparmor_profile = p.apparmorprofile();
  o.oom_score_adj = detail::nonzero<int>(p.oomscoreadj());
  o.selinux_label = p.selinuxlabel();
  return o;
}

inline oci::linux_resources from_pb(const grpc::LinuxResources& r) {
  oci::linux_resources o;
  for (const auto& d : r.devices()) {
    oci::linux_device_cgroup rule;
    rule.allow = d.allow();
    rule.type = d.type();
    // -1 is "all" in Kata's Go runtime; proto3 cannot say "unset", so both mean a wildcard.
    if ((d.major)() >= 0 && !(d.type() == "a" && (d.major)() == 0)) {
      rule.major = (d.major)();
    }
    if ((d.minor)() >= 0 && !(d.type() == "a" && (d.minor)() == 0)) {
      rule.minor = (d.minor)();
    }
    rule.access = d.access();
    o.devices.push_back(std::move(rule));
  }
  if (r.has_memory()) {
    const auto& m = r.memory();
    oci::linux_memory mem;
    mem.limit = detail::nonzero<std::int64_t>(m.limit());
    mem.reservation = detail::nonzero<std::int64_t>(m.reservation());
    mem.swap = detail::nonzero<std::int64_t>(m.swap());
    mem.kernel = detail::nonzero<std::int64_t>(m.kernel());
    mem.kernel_tcp = detail::nonzero<std::int64_t>(m.kerneltcp());
    mem.swappiness = detail::nonzero<std::uint64_t>(m.swappiness());
    if (m.disableoomkiller()) {
      mem.disable_oom_killer = true;
    }
    o.memory = mem;
  }
  if (r.has_cpu()) {
    const auto& c = r.cpu();
    oci::linux_cpu cpu;
    cpu.shares = detail::nonzero<std::uint64_t>(c.shares());
    cpu.quota = detail::nonzero<std::int64_t>(c.quota());
    cpu.period = detail::nonzero<std::uint64_t>(c.period());
    cpu.realtime_runtime = detail::nonzero<std::int64_t>(c.realtimeruntime());
    cpu.realtime_period = detail::nonzero<std::uint64_t>(c.realtimeperiod());
    cpu.cpus = c.cpus();
    cpu.mems = c.mems();
    o.cpu = cpu;
  }
  if (r.has_pids()) {
    o.pids = oci::linux_pids{r.pids().limit()};
  }
  if (r.has_blockio()) {
    const auto& b = r.blockio();
    oci::linux_block_io io;
    io.weight = detail::nonzero<std::uint16_t>(b.weight());
    io.leaf_weight = detail::nonzero<std::uint16_t>(b.leafweight());
    for (const auto& w : b.weightdevice()) {
      io.weight_device.push_back({(w.major)(), (w.minor)(),
                                  detail::nonzero<std::uint16_t>(w.weight()),
                                  detail::nonzero<std::uint16_t>(w.leafweight())});
    }
    const auto throttle = [](const auto& in, std::vector<oci::linux_throttle_device>& out) {
      for (const auto& t : in) {
        out.push_back({(t.major)(), (t.minor)(), t.rate()});
      }
    };
    throttle(b.throttlereadbpsdevice(), io.throttle_read_bps_device);
    throttle(b.throttlewritebpsdevice(), io.throttle_write_bps_device);
    throttle(b.throttlereadiopsdevice(), io.throttle_read_iops_device);
    throttle(b.throttlewriteiopsdevice(), io.throttle_write_iops_device);
    o.block_io = std::move(io);
  }
  for (const auto& h : r.hugepagelimits()) {
    o.hugepage_limits.push_back({h.pagesize(), h.limit()});
  }
  if (r.has_network()) {
    oci::linux_network n;
    n.class_id = detail::nonzero<std::uint32_t>(r.network().classid());
    for (const auto& p : r.network().priorities()) {
      n.priorities.push_back({p.name(), p.priority()});
    }
    o.network = std::move(n);
  }
  return o;
}

inline std::vector<oci::hook> from_pb_hooks(
    const google::protobuf::RepeatedPtrField<grpc::Hook>& hooks) {
  std::vector<oci::hook> out;
  for (const auto& h : hooks) {
    out.push_back({h.path(), detail::strings(h.args()), detail::strings(h.env()),
                   detail::nonzero<int>(h.timeout())});
  }
  return out;
}

inline oci::spec from_pb(const grpc::Spec& s) {
  oci::spec o;
  o.oci_version = s.version();
  if (s.has_process()) {
    o.process = from_pb(s.process());
  }
  if (s.has_root()) {
    o.root = oci::root{s.root().path(), s.root().readonly()};
  }
  o.hostname = s.hostname();
  for (const auto& m : s.mounts()) {
    oci::mount mount;
    mount.destination = m.destination();
    mount.source = m.source();
    mount.type = m.type();
    mount.options = detail::strings(m.options());
    o.mounts.push_back(std::move(mount));
  }
  if (s.has_hooks()) {
    const auto& h = s.hooks();
    oci::hooks hooks;
    hooks.prestart = from_pb_hooks(h.prestart());
    hooks.poststart = from_pb_hooks(h.poststart());
    hooks.poststop = from_pb_hooks(h.poststop());
    hooks.create_runtime = from_pb_hooks(h.createruntime());
    hooks.create_container = from_pb_hooks(h.createcontainer());
    hooks.start_container = from_pb_hooks(h.startcontainer());
    o.hooks = std::move(hooks);
  }
  o.annotations.insert(s.annotations().begin(), s.annotations().end());
  if (s.has_linux()) {
    const auto& l = s.linux();
    oci::linux_spec lx;
    for (const auto& m : l.uidmappings()) {
      lx.uid_mappings.push_back({m.containerid(), m.hostid(), m.size()});
    }
    for (const auto& m : l.gidmappings()) {
      lx.gid_mappings.push_back({m.containerid(), m.hostid(), m.size()});
    }
    lx.sysctl.insert(l.sysctl().begin(), l.sysctl().end());
    if (l.has_resources()) {
      lx.resources = from_pb(l.resources());
    }
    lx.cgroups_path = l.cgroupspath();
    for (const auto& n : l.namespaces()) {
      lx.namespaces.push_back({n.type(), n.path()});
    }
    for (const auto& d : l.devices()) {
      oci::linux_device dev;
      dev.path = d.path();
      dev.type = d.type();
      dev.major = (d.major)();
      dev.minor = (d.minor)();
      dev.file_mode = detail::nonzero<std::uint32_t>(d.filemode());
      dev.uid = d.uid();
      dev.gid = d.gid();
      lx.devices.push_back(std::move(dev));
    }
    if (l.has_seccomp()) {
      const auto& sc = l.seccomp();
      oci::linux_seccomp seccomp;
      seccomp.default_action = sc.defaultaction();
      seccomp.architectures = detail::strings(sc.architectures());
      seccomp.flags = detail::strings(sc.flags());
      for (const auto& call : sc.syscalls()) {
        oci::linux_syscall sys;
        sys.names = detail::strings(call.names());
        sys.action = call.action();
        if (call.has_errnoret()) {
          sys.errno_ret = call.errnoret();
        }
        for (const auto& a : call.args()) {
          sys.args.push_back(
              {static_cast<std::uint32_t>(a.index()), a.value(), a.valuetwo(), a.op()});
        }
        seccomp.syscalls.push_back(std::move(sys));
      }
      lx.seccomp = std::move(seccomp);
    }
    lx.rootfs_propagation = l.rootfspropagation();
    lx.masked_paths = detail::strings(l.maskedpaths());
    lx.readonly_paths = detail::strings(l.readonlypaths());
    lx.mount_label = l.mountlabel();
    if (l.has_intelrdt() && !l.intelrdt().l3cacheschema().empty()) {
      lx.intel_rdt = oci::linux_intel_rdt{};
      lx.intel_rdt->l3_cache_schema = l.intelrdt().l3cacheschema();
    }
    o.linux_ = std::move(lx);
  }
  return o;
}

inline storage from_pb(const grpc::Storage& s) {
  storage o;
  o.driver = s.driver();
  o.driver_options = detail::strings(s.driver_options());
  o.source = s.source();
  o.fstype = s.fstype();
  o.options = detail::strings(s.options());
  o.mount_point = s.mount_point();
  o.shared = s.shared();
  if (s.has_fs_group()) {
    o.fs_group = s.fs_group().group_id();
  }
  return o;
}

inline device from_pb(const grpc::Device& d) {
  return {d.id(), d.type(), d.vm_path(), d.container_path(), detail::strings(d.options())};
}

inline container_request from_pb(const grpc::CreateContainerRequest& r) {
  container_request o;
  o.container_id = r.container_id();
  o.exec_id = r.exec_id();
  for (const auto& d : r.devices()) {
    o.devices.push_back(from_pb(d));
  }
  for (const auto& s : r.storages()) {
    o.storages.push_back(from_pb(s));
  }
  if (r.has_oci()) {
    o.spec = from_pb(r.oci());
  }
  o.sandbox_pidns = r.sandbox_pidns();
  return o;
}

inline sandbox_request from_pb(const grpc::CreateSandboxRequest& r) {
  sandbox_request o;
  o.hostname = r.hostname();
  o.dns = detail::strings(r.dns());
  for (const auto& s : r.storages()) {
    o.storages.push_back(from_pb(s));
  }
  o.sandbox_pidns = r.sandbox_pidns();
  o.sandbox_id = r.sandbox_id();
  o.guest_hook_path = r.guest_hook_path();
  for (const auto& m : r.kernel_modules()) {
    o.kernel_modules.push_back({m.name(), detail::strings(m.parameters())});
  }
  return o;
}

inline copy_file_request from_pb(const grpc::CopyFileRequest& r) {
  return {r.path(), r.file_size(), r.file_mode(), r.dir_mode(),
          r.uid(),  r.gid(),       r.offset(),    r.data()};
}

// ---- katana -> protobuf --------------------------------------------------------------------

inline void to_pb(const oci::process& o, grpc::Process& p) {
  p.set_terminal(o.terminal);
  if (o.console_size) {
    p.mutable_consolesize()->set_height(o.console_size->height);
    p.mutable_consolesize()->set_width(o.console_size->width);
  }
  auto* u = p.mutable_user();
  u->set_uid(o.user.uid);
  u->set_gid(o.user.gid);
  for (const auto g : o.user.additional_gids) {
    u->add_additionalgids(g);
  }
  u->set_username(o.user.username);
  detail::put_strings(p.mutable_args(), o.args);
  detail::put_strings(p.mutable_env(), o.env);
  p.set_cwd(o.cwd);
  if (o.capabilities) {
    auto* c = p.mutable_capabilities();
    detail::put_strings(c->mutable_bounding(), o.capabilities->bounding);
    detail::put_strings(c->mutable_effective(), o.capabilities->effective);
    detail::put_strings(c->mutable_inheritable(), o.capabilities->inheritable);
    detail::put_strings(c->mutable_permitted(), o.capabilities->permitted);
    detail::put_strings(c->mutable_ambient(), o.capabilities->ambient);
  }
  for (const auto& r : o.rlimits) {
    auto* rl = p.add_rlimits();
    rl->set_type(r.type);
    rl->set_hard(r.hard);
    rl->set_soft(r.soft);
  }
  p.set_nonewprivileges(o.no_new_privileges);
  p.set_apparmorprofile(o.apparmor_profile);
  p.set_oomscoreadj(o.oom_score_adj.value_or(0));
  p.set_selinuxlabel(o.selinux_label);
}

inline void to_pb(const oci::linux_resources& o, grpc::LinuxResources& r) {
  for (const auto& d : o.devices) {
    auto* rule = r.add_devices();
    rule->set_allow(d.allow);
    rule->set_type(d.type);
    rule->set_major(d.major.value_or(-1));
    rule->set_minor(d.minor.value_or(-1));
    rule->set_access(d.access);
  }
  if (o.memory) {
    auto* m = r.mutable_memory();
    m->set_limit(o.memory->limit.value_or(0));
    m->set_reservation(o.memory->reservation.value_or(0));
    m->set_swap(o.memory->swap.value_or(0));
    m->set_kernel(o.memory->kernel.value_or(0));
    m->set_kerneltcp(o.memory->kernel_tcp.value_or(0));
    m->set_swappiness(o.memory->swappiness.value_or(0));
    m->set_disableoomkiller(o.memory->disable_oom_killer.value_or(false));
  }
  if (o.cpu) {
    auto* c = r.mutable_cpu();
    c->set_shares(o.cpu->shares.value_or(0));
    c->set_quota(o.cpu->quota.value_or(0));
    c->set_period(o.cpu->period.value_or(0));
    c->set_realtimeruntime(o.cpu->realtime_runtime.value_or(0));
    c->set_realtimeperiod(o.cpu->realtime_period.value_or(0));
    c->set_cpus(o.cpu->cpus);
    c->set_mems(o.cpu->mems);
  }
  if (o.pids) {
    r.mutable_pids()->set_limit(o.pids->limit);
  }
  if (o.block_io) {
    auto* b = r.mutable_blockio();
    b->set_weight(o.block_io->weight.value_or(0));
    b->set_leafweight(o.block_io->leaf_weight.value_or(0));
    for (const auto& w : o.block_io->weight_device) {
      auto* wd = b->add_weightdevice();
      wd->set_major(w.major);
      wd->set_minor(w.minor);
      wd->set_weight(w.weight.value_or(0));
      wd->set_leafweight(w.leaf_weight.value_or(0));
    }
    const auto throttle = [](const std::vector<oci::linux_throttle_device>& in, auto* out) {
      for (const auto& t : in) {
        auto* td = out->Add();
        td->set_major(t.major);
        td->set_minor(t.minor);
        td->set_rate(t.rate);
      }
    };
    throttle(o.block_io->throttle_read_bps_device, b->mutable_throttlereadbpsdevice());
    throttle(o.block_io->throttle_write_bps_device, b->mutable_throttlewritebpsdevice());
    throttle(o.block_io->throttle_read_iops_device, b->mutable_throttlereadiopsdevice());
    throttle(o.block_io->throttle_write_iops_device, b->mutable_throttlewriteiopsdevice());
  }
  for (const auto& h : o.hugepage_limits) {
    auto* hl = r.add_hugepagelimits();
    hl->set_pagesize(h.page_size);
    hl->set_limit(h.limit);
  }
  if (o.network) {
    auto* n = r.mutable_network();
    n->set_classid(o.network->class_id.value_or(0));
    for (const auto& p : o.network->priorities) {
      auto* pr = n->add_priorities();
      pr->set_name(p.name);
      pr->set_priority(p.priority);
    }
  }
}

inline void to_pb_hooks(const std::vector<oci::hook>& in,
                        google::protobuf::RepeatedPtrField<grpc::Hook>* out) {
  for (const auto& h : in) {
    auto* hook = out->Add();
    hook->set_path(h.path);
    detail::put_strings(hook->mutable_args(), h.args);
    detail::put_strings(hook->mutable_env(), h.env);
    hook->set_timeout(h.timeout.value_or(0));
  }
}

inline void to_pb(const oci::spec& o, grpc::Spec& s) {
  s.set_version(o.oci_version);
  if (o.process) {
    to_pb(*o.process, *s.mutable_process());
  }
  if (o.root) {
    s.mutable_root()->set_path(o.root->path);
    s.mutable_root()->set_readonly(o.root->readonly);
  }
  s.set_hostname(o.hostname);
  for (const auto& m : o.mounts) {
    auto* mount = s.add_mounts();
    mount->set_destination(m.destination);
    mount->set_source(m.source);
    mount->set_type(m.type);
    detail::put_strings(mount->mutable_options(), m.options);
  }
  if (o.hooks) {
    auto* h = s.mutable_hooks();
    to_pb_hooks(o.hooks->prestart, h->mutable_prestart());
    to_pb_hooks(o.hooks->poststart, h->mutable_poststart());
    to_pb_hooks(o.hooks->poststop, h->mutable_poststop());
    to_pb_hooks(o.hooks->create_runtime, h->mutable_createruntime());
    to_pb_hooks(o.hooks->create_container, h->mutable_createcontainer());
    to_pb_hooks(o.hooks->start_container, h->mutable_startcontainer());
  }
  for (const auto& [k, v] : o.annotations) {
    (*s.mutable_annotations())[k] = v;
  }
  if (!o.linux_) {
    return;
  }
  const auto& lx = *o.linux_;
  auto* l = s.mutable_linux();
  for (const auto& m : lx.uid_mappings) {
    auto* id = l->add_uidmappings();
    id->set_containerid(m.container_id);
    id->set_hostid(m.host_id);
    id->set_size(m.size);
  }
  for (const auto& m : lx.gid_mappings) {
    auto* id = l->add_gidmappings();
    id->set_containerid(m.container_id);
    id->set_hostid(m.host_id);
    id->set_size(m.size);
  }
  for (const auto& [k, v] : lx.sysctl) {
    (*l->mutable_sysctl())[k] = v;
  }
  if (lx.resources) {
    to_pb(*lx.resources, *l->mutable_resources());
  }
  l->set_cgroupspath(lx.cgroups_path);
  for (const auto& n : lx.namespaces) {
    auto* ns = l->add_namespaces();
    ns->set_type(n.type);
    ns->set_path(n.path);
  }
  for (const auto& d : lx.devices) {
    auto* dev = l->add_devices();
    dev->set_path(d.path);
    dev->set_type(d.type);
    dev->set_major(d.major);
    dev->set_minor(d.minor);
    dev->set_filemode(d.file_mode.value_or(0));
    dev->set_uid(d.uid.value_or(0));
    dev->set_gid(d.gid.value_or(0));
  }
  if (lx.seccomp) {
    auto* sc = l->mutable_seccomp();
    sc->set_defaultaction(lx.seccomp->default_action);
    detail::put_strings(sc->mutable_architectures(), lx.seccomp->architectures);
    detail::put_strings(sc->mutable_flags(), lx.seccomp->flags);
    for (const auto& call : lx.seccomp->syscalls) {
      auto* sys = sc->add_syscalls();
      detail::put_strings(sys->mutable_names(), call.names);
      sys->set_action(call.action);
      if (call.errno_ret) {
        sys->set_errnoret(*call.errno_ret);
      }
      for (const auto& a : call.args) {
        auto* arg = sys->add_args();
        arg->set_index(a.index);
        arg->set_value(a.value);
        arg->set_valuetwo(a.value_two);
        arg->set_op(a.op);
      }
    }
  }
  l->set_rootfspropagation(lx.rootfs_propagation);
  detail::put_strings(l->mutable_maskedpaths(), lx.masked_paths);
  detail::put_strings(l->mutable_readonlypaths(), lx.readonly_paths);
  l->set_mountlabel(lx.mount_label);
  if (lx.intel_rdt) {
    l->mutable_intelrdt()->set_l3cacheschema(lx.intel_rdt->l3_cache_schema);
  }
}

inline grpc::Spec to_pb(const oci::spec& o) {
  grpc::Spec s;
  to_pb(o, s);
  return s;
}

inline grpc::StatsContainerResponse to_pb(const container_stats& st) {
  grpc::StatsContainerResponse r;
  auto* cg = r.mutable_cgroup_stats();
  auto* cpu = cg->mutable_cpu_stats();
  cpu->mutable_cpu_usage()->set_total_usage(st.cpu.total_ns);
  cpu->mutable_cpu_usage()->set_usage_in_usermode(st.cpu.user_ns);
  cpu->mutable_cpu_usage()->set_usage_in_kernelmode(st.cpu.kernel_ns);
  for (const auto v : st.cpu.per_cpu_ns) {
    cpu->mutable_cpu_usage()->add_percpu_usage(v);
  }
  cpu->mutable_throttling_data()->set_periods(st.cpu.periods);
  cpu->mutable_throttling_data()->set_throttled_periods(st.cpu.throttled_periods);
  cpu->mutable_throttling_data()->set_throttled_time(st.cpu.throttled_time_ns);
  auto* mem = cg->mutable_memory_stats();
  mem->set_cache(st.memory.cache);
  mem->mutable_usage()->set_usage(st.memory.usage);
  mem->mutable_usage()->set_max_usage(st.memory.max_usage);
  mem->mutable_usage()->set_failcnt(st.memory.failcnt);
  mem->mutable_usage()->set_limit(st.memory.limit);
  mem->mutable_swap_usage()->set_usage(st.memory.swap_usage);
  mem->mutable_swap_usage()->set_limit(st.memory.swap_limit);
  mem->set_use_hierarchy(true);
  for (const auto& [k, v] : st.memory.stat) {
    (*mem->mutable_stats())[k] = v;
  }
  cg->mutable_pids_stats()->set_current(st.pids.current);
  cg->mutable_pids_stats()->set_limit(st.pids.limit);
  auto* blk = cg->mutable_blkio_stats();
  for (const auto& e : st.io_service_bytes) {
    auto* x = blk->add_io_service_bytes_recursive();
    x->set_major(e.major);
    x->set_minor(e.minor);
    x->set_op(e.op);
    x->set_value(e.value);
  }
  for (const auto& e : st.io_serviced) {
    auto* x = blk->add_io_serviced_recursive();
    x->set_major(e.major);
    x->set_minor(e.minor);
    x->set_op(e.op);
    x->set_value(e.value);
  }
  for (const auto& [size, h] : st.hugetlb) {
    auto& x = (*cg->mutable_hugetlb_stats())[size];
    x.set_usage(h.usage);
    x.set_max_usage(h.max_usage);
    x.set_failcnt(h.failcnt);
  }
  return r;
}

inline grpc::GuestDetailsResponse to_pb(const guest_details& d) {
  grpc::GuestDetailsResponse r;
  r.set_mem_block_size_bytes(d.mem_block_size_bytes);
  r.set_support_mem_hotplug_probe(d.support_mem_hotplug_probe);
  auto* a = r.mutable_agent_details();
  a->set_version(d.version);
  a->set_init_daemon(d.init_daemon);
  detail::put_strings(a->mutable_device_handlers(), d.device_handlers);
  detail::put_strings(a->mutable_storage_handlers(), d.storage_handlers);
  a->set_supports_seccomp(d.supports_seccomp);
  return r;
}

// ---- network (types.proto) ---------------------------------------------------------------

inline ip_address from_pb(const types::IPAddress& a) {
  return {a.family() == types::v6, a.address(), a.mask()};
}
inline void to_pb(const ip_address& a, types::IPAddress* out) {
  out->set_family(a.v6 ? types::v6 : types::v4);
  out->set_address(a.address);
  out->set_mask(a.mask);
}

inline net_interface from_pb(const types::Interface& i) {
  net_interface n;
  n.device = i.device();
  n.name = i.name();
  for (const auto& a : i.ipaddresses()) {
    n.addresses.push_back(from_pb(a));
  }
  n.mtu = i.mtu();
  n.hw_addr = i.hwaddr();
  n.device_path = i.devicepath();
  n.type = i.type();
  n.raw_flags = i.raw_flags();
  return n;
}
inline types::Interface to_pb(const net_interface& n) {
  types::Interface i;
  i.set_device(n.device);
  i.set_name(n.name);
  for (const auto& a : n.addresses) {
    to_pb(a, i.add_ipaddresses());
  }
  i.set_mtu(n.mtu);
  i.set_hwaddr(n.hw_addr);
  i.set_devicepath(n.device_path);
  i.set_type(n.type);
  i.set_raw_flags(n.raw_flags);
  return i;
}

inline net_route from_pb(const types::Route& r) {
  return {r.dest(),  r.gateway(), r.device(), r.source(), r.scope(), r.family() == types::v6,
          r.flags(), r.mtu()};
}
inline void to_pb(const net_route& n, types::Route* r) {
  r->set_dest(n.dest);
  r->set_gateway(n.gateway);
  r->set_device(n.device);
  r->set_source(n.source);
  r->set_scope(n.scope);
  r->set_family(n.v6 ? types::v6 : types::v4);
  r->set_flags(n.flags);
  r->set_mtu(n.mtu);
}
inline grpc::Routes to_pb(const std::vector<net_route>& routes) {
  grpc::Routes out;
  for (const auto& r : routes) {
    to_pb(r, out.add_routes());
  }
  return out;
}

inline arp_neighbor from_pb(const types::ARPNeighbor& n) {
  return {from_pb(n.toipaddress()), n.device(), n.lladdr(), n.state(), n.flags()};
}

}  // namespace katana::inline v0::agent::convert
