// libFuzzer target: a byte stream as a ttrpc connection would deliver it. Frames are cut with
// the decoder; every frame's data goes through both envelope decoders; what decodes must
// re-encode to something that decodes to the same value.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include <katana/ttrpc/envelope.hpp>
#include <katana/ttrpc/wire.hpp>

namespace {
template <class Message, class Decode>
void check_round_trip(std::string_view data, Decode decode) {
  auto first = decode(data);
  if (!first) {
    return;
  }
  const std::string again = katana::ttrpc::encode(*first);
  auto second = decode(again);
  if (!second || !(*second == *first)) {
    std::abort();
  }
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using katana::ttrpc::frame_decoder;
  std::string_view rest(reinterpret_cast<const char*>(data), size);
  // A small limit makes the oversize path reachable with small inputs.
  constexpr std::uint32_t limit = 512;
  while (!rest.empty()) {
    const auto out = frame_decoder::next(rest, limit);
    if (out.what == frame_decoder::event::need_more) {
      break;
    }
    if (out.consumed == 0 || out.consumed > rest.size()) {
      std::abort();
    }
    rest.remove_prefix(out.consumed);
    if (out.what == frame_decoder::event::oversized) {
      if (out.header.length <= limit) {
        std::abort();
      }
      rest.remove_prefix(std::min<std::size_t>(rest.size(), out.header.length));
      continue;
    }
    if (out.data.size() != out.header.length) {
      std::abort();
    }
    check_round_trip<katana::ttrpc::request>(out.data, katana::ttrpc::decode_request);
    check_round_trip<katana::ttrpc::response>(out.data, katana::ttrpc::decode_response);
  }
  return 0;
}
