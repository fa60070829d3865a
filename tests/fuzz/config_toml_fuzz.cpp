// libFuzzer target: configuration.toml parsing (toml11 behind katana's text gate), then
// adjusting and validating whatever parsed, never crash or read out of bounds. The seeds in
// run.sh include `[']\xb1[']\xb1`, the input that makes toml11 3.7.1 read past its buffer
// (ToruNiina/toml11#199) when it is given to toml11 directly.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include <katana/config/load.hpp>
#include <katana/config/validate.hpp>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  katana::config::warnings notes;
  auto cfg = katana::config::parse(in, "fuzz.toml", notes);
  if (!cfg) {
    return 0;
  }
  katana::config::host_info host{.cpus = 2,
                                 .memory_bytes = std::uint64_t{24} << 30,
                                 .arch = "ppc64le",
                                 .limits = {.max_vcpus = 128, .memory_block_mib = 256}};
  if (katana::config::adjust(*cfg, host, notes)) {
    (void)katana::config::validate(*cfg, host);
  }
  return 0;
}
