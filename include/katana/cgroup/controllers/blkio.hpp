// blkio (v1) / io (v2): weight, leafWeight, per-device weights, read/write bps/iops throttles.
//  v1: blkio.weight (CFQ) or blkio.bfq.weight (BFQ, kernels without CFQ), blkio.leaf_weight,
//      blkio.(bfq.)weight_device, blkio.throttle.{read,write}_{bps,iops}_device.
//  v2: io.bfq.weight when BFQ is there (same 1..1000 scale), else io.weight with runc's
//      blkio -> io conversion; io.max "MAJ:MIN rbps=N wbps=N riops=N wiops=N". v2 has no leaf
//      weights (ignored with a warning).
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <katana/cgroup/controllers/controller.hpp>
#include <katana/cgroup/convert.hpp>

namespace katana::inline v0::cgroup::controllers {

struct blkio {
  static constexpr std::string_view name = "blkio";
  static constexpr std::string_view v2_name = "io";
  /// The linux.resources field it serves, for error messages.
  static constexpr std::string_view field = "blockIO";

  static bool needed(const oci::linux_resources& r) {
    if (!r.block_io) {
      return false;
    }
    const auto& b = *r.block_io;
    return (b.weight && *b.weight != 0) || (b.leaf_weight && *b.leaf_weight != 0) ||
           !b.weight_device.empty() || !b.throttle_read_bps_device.empty() ||
           !b.throttle_write_bps_device.empty() || !b.throttle_read_iops_device.empty() ||
           !b.throttle_write_iops_device.empty();
  }

  static status validate(const oci::linux_resources& r) {
    if (!r.block_io) {
      return {};
    }
    const auto& b = *r.block_io;
    const auto weight = [](std::string_view what, const std::optional<std::uint16_t>& w) {
      if (w && *w != 0 && (*w < 10 || *w > 1000)) {
        return status(detail::invalid(what, *w, "must be between 10 and 1000"));
      }
      return status();
    };
    KATANA_TRY(weight("blockIO.weight", b.weight));
    KATANA_TRY(weight("blockIO.leafWeight", b.leaf_weight));
    for (const auto& wd : b.weight_device) {
      KATANA_TRY(check_device("blockIO.weightDevice", wd.major, wd.minor));
      KATANA_TRY(weight("blockIO.weightDevice.weight", wd.weight));
      KATANA_TRY(weight("blockIO.weightDevice.leafWeight", wd.leaf_weight));
    }
    for (const auto* list : {&b.throttle_read_bps_device, &b.throttle_write_bps_device,
                             &b.throttle_read_iops_device, &b.throttle_write_iops_device}) {
      for (const auto& td : *list) {
        KATANA_TRY(check_device("blockIO.throttle*Device", td.major, td.minor));
      }
    }
    return {};
  }

  static status apply_v1(const dir& d, const oci::linux_resources& r, const logging::logger&) {
    if (!r.block_io) {
      return {};
    }
    const auto& b = *r.block_io;
    // CFQ's blkio.weight is gone from recent kernels; BFQ's file takes the same scale.
    const bool cfq = d.has("blkio.weight");
    const std::string_view weight_file = cfq ? "blkio.weight" : "blkio.bfq.weight";
    const std::string_view weight_device_file =
        cfq ? "blkio.weight_device" : "blkio.bfq.weight_device";
    const bool any_weight =
        (b.weight && *b.weight != 0) || std::any_of(b.weight_device.begin(), b.weight_device.end(),
                                                    [](const auto& wd) { return wd.weight; });
    if (any_weight && !d.has(weight_file)) {
      return detail::missing_file("blkio.weight",
                                  "neither CFQ nor BFQ proportional weights are available");
    }
    if (b.weight && *b.weight != 0) {
      KATANA_TRY(d.write(weight_file, str_cat(*b.weight)));
    }
    if (b.leaf_weight && *b.leaf_weight != 0) {
      if (!d.has("blkio.leaf_weight")) {
        return detail::missing_file("blkio.leaf_weight", "leaf weights need the CFQ scheduler");
      }
      KATANA_TRY(d.write("blkio.leaf_weight", str_cat(*b.leaf_weight)));
    }
    for (const auto& wd : b.weight_device) {
      if (wd.weight) {
        KATANA_TRY(d.write(weight_device_file, str_cat(wd.major, ":", wd.minor, " ", *wd.weight)));
      }
      if (wd.leaf_weight) {
        if (!d.has("blkio.leaf_weight_device")) {
          return detail::missing_file("blkio.leaf_weight_device",
                                      "leaf weights need the CFQ scheduler");
        }
        KATANA_TRY(d.write("blkio.leaf_weight_device",
                           str_cat(wd.major, ":", wd.minor, " ", *wd.leaf_weight)));
      }
    }
    const auto throttle = [&](std::string_view file,
                              const std::vector<oci::linux_throttle_device>& list) -> status {
      for (const auto& td : list) {
        KATANA_TRY(d.write(file, str_cat(td.major, ":", td.minor, " ", td.rate)));
      }
      return {};
    };
    KATANA_TRY(throttle("blkio.throttle.read_bps_device", b.throttle_read_bps_device));
    KATANA_TRY(throttle("blkio.throttle.write_bps_device", b.throttle_write_bps_device));
    KATANA_TRY(throttle("blkio.throttle.read_iops_device", b.throttle_read_iops_device));
    return throttle("blkio.throttle.write_iops_device", b.throttle_write_iops_device);
  }

  static status apply_v2(const dir& d, const oci::linux_resources& r, const logging::logger& log) {
    if (!r.block_io) {
      return {};
    }
    const auto& b = *r.block_io;
    const bool bfq = d.has("io.bfq.weight");
    if (b.weight && *b.weight != 0) {
      if (bfq) {
        KATANA_TRY(d.write("io.bfq.weight", str_cat(*b.weight)));
      } else {
        KATANA_TRY(d.write("io.weight", str_cat(blkio_weight_to_io_weight(*b.weight))));
      }
    }
    for (const auto& wd : b.weight_device) {
      if (!wd.weight) {
        continue;
      }
      if (bfq) {
        KATANA_TRY(d.write("io.bfq.weight", str_cat(wd.major, ":", wd.minor, " ", *wd.weight)));
      } else {
        KATANA_TRY(d.write("io.weight", str_cat(wd.major, ":", wd.minor, " ",
                                                blkio_weight_to_io_weight(*wd.weight))));
      }
    }
    if ((b.leaf_weight && *b.leaf_weight != 0) ||
        std::any_of(b.weight_device.begin(), b.weight_device.end(),
                    [](const auto& wd) { return wd.leaf_weight.has_value(); })) {
      log.warn("linux.resources.blockIO leaf weights ignored: cgroup v2 has none");
    }
    const auto throttle = [&](std::string_view key,
                              const std::vector<oci::linux_throttle_device>& list) -> status {
      for (const auto& td : list) {
        const std::string rate = td.rate == 0 ? std::string("max") : str_cat(td.rate);
        KATANA_TRY(d.write("io.max", str_cat(td.major, ":", td.minor, " ", key, "=", rate)));
      }
      return {};
    };
    KATANA_TRY(throttle("rbps", b.throttle_read_bps_device));
    KATANA_TRY(throttle("wbps", b.throttle_write_bps_device));
    KATANA_TRY(throttle("riops", b.throttle_read_iops_device));
    return throttle("wiops", b.throttle_write_iops_device);
  }

  static status stats_v1(const dir& d, cgroup::stats& s) {
    // CFQ's recursive files when present, else the throttle layer's (always there).
    const auto pick = [&](std::string_view cfq, std::string_view throttle) {
      return d.has(cfq) ? cfq : throttle;
    };
    KATANA_TRY(read_v1_file(
        d, pick("blkio.io_service_bytes_recursive", "blkio.throttle.io_service_bytes_recursive"),
        s.blkio.io_service_bytes));
    return read_v1_file(d,
                        pick("blkio.io_serviced_recursive", "blkio.throttle.io_serviced_recursive"),
                        s.blkio.io_serviced);
  }

  static status stats_v2(const dir& d, cgroup::stats& s) {
    const auto text = KATANA_TRY(detail::read_optional(d, "io.stat"));
    if (!text) {
      return {};
    }
    s.blkio = {};
    cgroup::detail::for_each_line(*text, [&](std::string_view line) {
      auto [dev, rest] = cgroup::detail::split_pair(line);
      const auto [maj, min] = cgroup::detail::split_pair(dev, ':');
      const auto major = cgroup::detail::parse_u64(maj);
      const auto minor = cgroup::detail::parse_u64(min);
      if (!major || !minor) {
        return;
      }
      while (!rest.empty()) {
        auto [item, tail] = cgroup::detail::split_pair(rest);
        rest = tail;
        const auto [key, value] = cgroup::detail::split_pair(item, '=');
        const auto v = cgroup::detail::parse_u64(value);
        if (!v) {
          continue;
        }
        const auto add = [&](std::vector<blkio_entry>& to, std::string op) {
          to.push_back({*major, *minor, std::move(op), *v});
        };
        if (key == "rbytes") {
          add(s.blkio.io_service_bytes, "Read");
        } else if (key == "wbytes") {
          add(s.blkio.io_service_bytes, "Write");
        } else if (key == "dbytes") {
          add(s.blkio.io_service_bytes, "Discard");
        } else if (key == "rios") {
          add(s.blkio.io_serviced, "Read");
        } else if (key == "wios") {
          add(s.blkio.io_serviced, "Write");
        } else if (key == "dios") {
          add(s.blkio.io_serviced, "Discard");
        }
      }
    });
    return {};
  }

 private:
  static status check_device(std::string_view what, std::int64_t major, std::int64_t minor) {
    if (major < 0 || minor < 0) {
      return detail::invalid(what, str_cat(major, ":", minor), "needs a device number");
    }
    return {};
  }

  // "8:0 Read 4096" lines; the "Total" lines are dropped.
  static status read_v1_file(const dir& d, std::string_view file, std::vector<blkio_entry>& out) {
    const auto text = KATANA_TRY(detail::read_optional(d, file));
    out.clear();
    if (!text) {
      return {};
    }
    cgroup::detail::for_each_line(*text, [&](std::string_view line) {
      const auto [dev, rest] = cgroup::detail::split_pair(line);
      const auto [op, value] = cgroup::detail::split_pair(rest);
      const auto [maj, min] = cgroup::detail::split_pair(dev, ':');
      const auto major = cgroup::detail::parse_u64(maj);
      const auto minor = cgroup::detail::parse_u64(min);
      const auto v = cgroup::detail::parse_u64(value);
      if (major && minor && v && !op.empty()) {
        out.push_back({*major, *minor, std::string(op), *v});
      }
    });
    return {};
  }
};

}  // namespace katana::inline v0::cgroup::controllers
