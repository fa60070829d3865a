// libFuzzer target: config.json parsing and validation never crash, and whatever parses
// re-serialises to JSON that parses to the same spec.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include <katana/oci/spec_json.hpp>
#include <katana/oci/validate.hpp>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  auto spec = katana::oci::parse_spec(in);
  if (!spec) {
    return 0;
  }
  (void)katana::oci::validate(*spec);
  (void)katana::oci::validate_all(*spec);
  auto again = katana::oci::parse_spec(katana::oci::to_json(*spec));
  if (!again || !(*again == *spec)) {
    std::abort();
  }
  return 0;
}
