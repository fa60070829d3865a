// A program outside the tree that uses the installed headers through find_package(katana).
#include <cstdio>

#include <katana/core/error.hpp>
#include <katana/oci/spec_json.hpp>

int main() {
  auto spec = katana::oci::parse_spec(R"({"ociVersion":"1.2.0","root":{"path":"rootfs"}})");
  if (!spec) {
    std::fprintf(stderr, "consumer: %s\n", spec.error().message().c_str());
    return 1;
  }
  std::printf("consumer: ociVersion %s, root %s\n", spec->oci_version.c_str(),
              spec->root ? spec->root->path.c_str() : "-");
  return 0;
}
