// katana-archgen: turns an architecture table (codegen/archgen/tables/<arch>.toml) into
// include/katana/arch/generated/<arch>.hpp, a constexpr `katana::arch::traits<Arch>`
// specialisation. A build-time tool: it may use toml11 and exceptions; the library does not.
//
//   katana-archgen TABLE.toml OUTPUT.hpp [TABLE.toml OUTPUT.hpp ...]
//
// Every key of a table is required and unknown keys are errors, so tables stay exact.
#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <toml.hpp>

namespace {

struct machine {
  std::string type, options, kvm_options, tcg_options, transport, root_bus;
  bool pci_bridges = false, hotplug = false, nvdimm = false, iommu = false;
  std::vector<std::string> globals;
};

struct table {
  std::string arch, qemu_binary, default_machine, cpu_model_kvm, cpu_model_tcg, cpu_features;
  std::string machine_accelerators, block_device_driver, console, console_param, rootfs_driver;
  std::int64_t max_vcpus = 0, memory_block_mib = 0, maxmem_reserve_mib = 0;
  bool rootfs_dax = false, tsc_early_khz = false;
  std::vector<std::string> kernel_params, iommu_kernel_params;
  std::vector<machine> machines;
};

[[noreturn]] void die(const std::string& what) {
  throw std::runtime_error(what);
}

// Reads the keys of `v` through `read`, then refuses any key it did not ask for.
class reader {
 public:
  reader(const toml::value& v, std::string where) : v_(v), where_(std::move(where)) {
    if (!v_.is_table()) {
      die(where_ + ": expected a table");
    }
  }
  template <class T>
  T get(const std::string& key) {
    seen_.insert(key);
    if (!v_.contains(key)) {
      die(where_ + ": missing key " + key);
    }
    return toml::find<T>(v_, key);
  }
  template <class T>
  T get_or(const std::string& key, T fallback) {
    seen_.insert(key);
    return v_.contains(key) ? toml::find<T>(v_, key) : fallback;
  }
  void finish() const {
    for (const auto& [k, ignored] : v_.as_table()) {
      if (!seen_.contains(k)) {
        die(where_ + ": unknown key " + k);
      }
    }
  }

 private:
  const toml::value& v_;
  std::string where_;
  std::set<std::string> seen_;
};

void expect_one_of(const std::string& where, const std::string& v, std::set<std::string> allowed) {
  if (!allowed.contains(v)) {
    die(where + ": \"" + v + "\" is not allowed");
  }
}

table read_table(const std::filesystem::path& path) {
  const auto doc = toml::parse(path.string());
  reader r(doc, path.filename().string());
  table t;
  t.arch = r.get<std::string>("arch");
  t.qemu_binary = r.get<std::string>("qemu_binary");
  t.default_machine = r.get<std::string>("default_machine");
  t.max_vcpus = r.get<std::int64_t>("max_vcpus");
  t.memory_block_mib = r.get<std::int64_t>("memory_block_mib");
  t.maxmem_reserve_mib = r.get<std::int64_t>("maxmem_reserve_mib");
  t.cpu_model_kvm = r.get<std::string>("cpu_model_kvm");
  t.cpu_model_tcg = r.get<std::string>("cpu_model_tcg");
  t.cpu_features = r.get<std::string>("cpu_features");
  t.machine_accelerators = r.get<std::string>("machine_accelerators");
  t.block_device_driver = r.get<std::string>("block_device_driver");
  t.console = r.get<std::string>("console");
  t.console_param = r.get<std::string>("console_param");
  t.rootfs_driver = r.get<std::string>("rootfs_driver");
  t.rootfs_dax = r.get<bool>("rootfs_dax");
  t.tsc_early_khz = r.get<bool>("tsc_early_khz");
  t.kernel_params = r.get<std::vector<std::string>>("kernel_params");
  t.iommu_kernel_params = r.get<std::vector<std::string>>("iommu_kernel_params");
  const auto name = path.filename().string();
  expect_one_of(name + ": console", t.console, {"serial", "sclp"});
  expect_one_of(name + ": rootfs_driver", t.rootfs_driver, {"nvdimm", "virtio-blk"});
  if (t.max_vcpus <= 0 || t.memory_block_mib <= 0 || t.maxmem_reserve_mib < 0) {
    die(name + ": max_vcpus and memory_block_mib must be positive");
  }
  if (t.rootfs_dax && t.rootfs_driver != "nvdimm") {
    die(name + ": DAX needs an NVDIMM rootfs (virtio-blk does not support DAX)");
  }
  r.get<toml::array>("machine");
  for (const auto& m : toml::find<toml::array>(doc, "machine")) {
    reader mr(m, name + ": [[machine]]");
    machine out;
    out.type = mr.get<std::string>("type");
    out.options = mr.get<std::string>("options");
    out.kvm_options = mr.get_or<std::string>("kvm_options", "");
    out.tcg_options = mr.get_or<std::string>("tcg_options", "");
    out.transport = mr.get<std::string>("transport");
    out.root_bus = mr.get<std::string>("root_bus");
    out.pci_bridges = mr.get<bool>("pci_bridges");
    out.hotplug = mr.get<bool>("hotplug");
    out.nvdimm = mr.get<bool>("nvdimm");
    out.iommu = mr.get<bool>("iommu");
    out.globals = mr.get_or<std::vector<std::string>>("globals", {});
    mr.finish();
    expect_one_of(name + ": machine " + out.type + " transport", out.transport,
                  {"pci", "mmio", "ccw"});
    t.machines.push_back(std::move(out));
  }
  r.finish();
  bool found = false;
  for (const auto& m : t.machines) {
    found = found || m.type == t.default_machine;
  }
  if (!found) {
    die(name + ": default_machine " + t.default_machine + " is not a [[machine]]");
  }
  return t;
}

std::string quote(const std::string& s) {
  std::string out = "\"";
  for (const char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
    }
    out += c;
  }
  return out + "\"";
}

std::string ident(std::string s) {
  for (auto& c : s) {
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))) {
      c = '_';
    }
  }
  return s;
}

std::string string_array(const std::vector<std::string>& items) {
  std::string out = "std::array<std::string_view, " + std::to_string(items.size()) + ">{";
  for (std::size_t i = 0; i < items.size(); ++i) {
    out += (i == 0 ? "" : ", ") + quote(items[i]);
  }
  return out + "}";
}

std::string render(const table& t, const std::string& source) {
  const std::string ns = "detail::" + ident(t.arch) + "_table";
  std::ostringstream o;
  o << "// Code generated by katana-archgen from " << source << ". DO NOT EDIT.\n"
    << "// Regenerate: cmake --build <build> --target katana_regen_arch\n"
    << "#pragma once\n\n"
    << "#include <array>\n#include <cstdint>\n#include <span>\n#include <string_view>\n\n"
    << "#include <katana/arch/tags.hpp>\n#include <katana/arch/traits.hpp>\n\n"
    << "namespace katana::inline v0::arch {\n\n"
    << "// clang-format off\n"
    << "namespace " << ns << " {\n"
    << "inline constexpr auto kernel_params = " << string_array(t.kernel_params) << ";\n"
    << "inline constexpr auto iommu_kernel_params = " << string_array(t.iommu_kernel_params)
    << ";\n";
  for (const auto& m : t.machines) {
    o << "inline constexpr auto " << ident(m.type) << "_globals = " << string_array(m.globals)
      << ";\n";
  }
  o << "inline constexpr std::array<machine, " << t.machines.size() << "> machines = {{\n";
  for (const auto& m : t.machines) {
    o << "    {.type = " << quote(m.type) << ", .options = " << quote(m.options)
      << ", .kvm_options = " << quote(m.kvm_options) << ", .tcg_options = " << quote(m.tcg_options)
      << ",\n     .transport = virtio_transport::" << m.transport
      << ", .root_bus = " << quote(m.root_bus) << ", .pci_bridges = " << std::boolalpha
      << m.pci_bridges << ", .hotplug = " << m.hotplug << ", .nvdimm = " << m.nvdimm
      << ", .iommu = " << m.iommu << ",\n     .globals = " << ident(m.type) << "_globals},\n";
  }
  o << "}};\n"
    << "}  // namespace " << ns << "\n\n"
    << "template <>\n"
    << "struct traits<" << t.arch << "> {\n"
    << "  static constexpr std::string_view name = " << quote(t.arch) << ";\n"
    << "  static constexpr std::string_view qemu_binary = " << quote(t.qemu_binary) << ";\n"
    << "  static constexpr std::string_view default_machine = " << quote(t.default_machine) << ";\n"
    << "  static constexpr std::span<const machine> machines = " << ns << "::machines;\n"
    << "  static constexpr std::uint32_t max_vcpus = " << t.max_vcpus << ";\n"
    << "  static constexpr std::uint64_t memory_block_mib = " << t.memory_block_mib << ";\n"
    << "  static constexpr std::uint64_t maxmem_reserve_mib = " << t.maxmem_reserve_mib << ";\n"
    << "  static constexpr std::string_view cpu_model_kvm = " << quote(t.cpu_model_kvm) << ";\n"
    << "  static constexpr std::string_view cpu_model_tcg = " << quote(t.cpu_model_tcg) << ";\n"
    << "  static constexpr std::string_view cpu_features = " << quote(t.cpu_features) << ";\n"
    << "  static constexpr std::string_view machine_accelerators = "
    << quote(t.machine_accelerators) << ";\n"
    << "  static constexpr std::string_view block_device_driver = " << quote(t.block_device_driver)
    << ";\n"
    << "  static constexpr console_kind console = console_kind::" << t.console << ";\n"
    << "  static constexpr std::string_view console_param = " << quote(t.console_param) << ";\n"
    << "  static constexpr std::string_view rootfs_driver = " << quote(t.rootfs_driver) << ";\n"
    << "  static constexpr bool rootfs_dax = " << t.rootfs_dax << ";\n"
    << "  static constexpr bool tsc_early_khz = " << t.tsc_early_khz << ";\n"
    << "  static constexpr std::span<const std::string_view> kernel_params = " << ns
    << "::kernel_params;\n"
    << "  static constexpr std::span<const std::string_view> iommu_kernel_params = " << ns
    << "::iommu_kernel_params;\n\n"
    << "  static constexpr description value = {\n"
    << "      .name = name, .qemu_binary = qemu_binary, .default_machine = default_machine,\n"
    << "      .machines = machines, .max_vcpus = max_vcpus, .memory_block_mib = memory_block_mib,\n"
    << "      .maxmem_reserve_mib = maxmem_reserve_mib, .cpu_model_kvm = cpu_model_kvm,\n"
    << "      .cpu_model_tcg = cpu_model_tcg, .cpu_features = cpu_features,\n"
    << "      .machine_accelerators = machine_accelerators,\n"
    << "      .block_device_driver = block_device_driver, .console = console,\n"
    << "      .console_param = console_param, .rootfs_driver = rootfs_driver,\n"
    << "      .rootfs_dax = rootfs_dax, .tsc_early_khz = tsc_early_khz,\n"
    << "      .kernel_params = kernel_params, .iommu_kernel_params = iommu_kernel_params};\n"
    << "};\n"
    << "// clang-format on\n\n"
    << "}  // namespace katana::inline v0::arch\n";
  return o.str();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3 || argc % 2 == 0) {
    std::cerr << "usage: katana-archgen TABLE.toml OUTPUT.hpp [TABLE.toml OUTPUT.hpp ...]\n";
    return 2;
  }
  try {
    for (int i = 1; i + 1 < argc; i += 2) {
      const std::filesystem::path in = argv[i];
      const std::filesystem::path out = argv[i + 1];
      const auto text = render(read_table(in), "codegen/archgen/tables/" + in.filename().string());
      std::ofstream f(out, std::ios::binary | std::ios::trunc);
      f << text;
      if (!f.flush()) {
        throw std::runtime_error("write " + out.string() + " failed");
      }
    }
  } catch (const std::exception& e) {
    std::cerr << "katana-archgen: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
